package sanity

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// recorder is a sipmsg.Replier that keeps what would go on the wire.
type recorder struct{ sent []*sip.Response }

func (r *recorder) SendReply(_ *sipmsg.Msg, res *sip.Response) error {
	r.sent = append(r.sent, res)
	return nil
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// invite builds a valid INVITE; edit rewrites it (plain string replace
// on the LF text) before the CRLF conversion.
func invite(edits ...string) string {
	s := "INVITE sip:bob@example.com SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		"Max-Forwards: 70\n" +
		"From: \"Alice\" <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:bob@example.com>\n" +
		"Call-ID: c1@192.0.2.10\n" +
		"CSeq: 1 INVITE\n" +
		"Contact: <sip:alice@192.0.2.10:5060>\n" +
		"Content-Length: 0\n\n"
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			panic("edit target not found: " + edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return crlf(s)
}

const okReply = "SIP/2.0 200 OK\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
	"From: <sip:alice@example.com>;tag=a1\n" +
	"To: <sip:bob@example.com>;tag=b1\n" +
	"Call-ID: c1@192.0.2.10\n" +
	"CSeq: 1 INVITE\n" +
	"Content-Length: 0\n\n"

func ctxFor(t *testing.T, raw string) (*kemi.Ctx, *recorder) {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	r := &recorder{}
	m.Replier = r
	m.Proto, m.SrcIP, m.SrcPort = "udp", "192.0.2.10", 5060
	return &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}, r
}

const (
	reqChecks = 17895 // the example script's request-route checks
	repChecks = 17604 // the example script's reply-route checks
)

func TestSanityCheck(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		msgChecks int
		uriChecks int
		cfg       func(*Config)
		want      int
		code      int    // reply sent on the wire, 0 for none
		reason    string // checked when not empty
		noReply   bool   // Msg.NoReply after the call
		replyHdr  string // a header the reply must carry
	}{
		{name: "valid request, example checks", raw: invite(), msgChecks: reqChecks, uriChecks: 7, want: 1},
		{name: "valid request, every check", raw: invite(), msgChecks: 32767, uriChecks: 15, want: 1},
		{name: "no check selected", raw: invite("SIP/2.0\nVia", "SIP/3.0\nVia"), msgChecks: 0, uriChecks: 0, want: 1},

		// 1: R-URI SIP version
		{name: "1: SIP/3.0", raw: invite("SIP/2.0\nVia", "SIP/3.0\nVia"), msgChecks: 1, want: -1, code: 505, reason: "Version Not Supported (R-URI)"},
		{name: "1: version without slash fails silently", raw: invite("SIP/2.0\nVia", "SIPX\nVia"), msgChecks: 1, want: -1},
		{name: "1: ACK gets no reply", raw: invite("INVITE sip", "ACK sip", "SIP/2.0\nVia", "SIP/3.0\nVia", "1 INVITE", "1 ACK"), msgChecks: 1, want: -1},

		// 2: R-URI scheme
		{name: "2: http scheme", raw: invite("INVITE sip:bob@example.com", "INVITE http://bob@example.com"), msgChecks: 2, want: -1, code: 400, reason: "Bad Request URI"},
		{name: "2: port above 65535", raw: invite("INVITE sip:bob@example.com", "INVITE sip:bob@example.com:70000"), msgChecks: 2, want: -1, code: 400},
		{name: "2: tel URI accepted", raw: invite("INVITE sip:bob@example.com", "INVITE tel:+4312345"), msgChecks: 2, want: 1},
		{name: "2: sips accepted", raw: invite("INVITE sip:bob@example.com", "INVITE sips:bob@example.com"), msgChecks: 2, want: 1},

		// 4: required headers
		{name: "4: missing Call-ID marks no-reply", raw: invite("Call-ID: c1@192.0.2.10\n", ""), msgChecks: 4, want: -1, noReply: true},
		{name: "4: missing To", raw: invite("To: <sip:bob@example.com>\n", ""), msgChecks: 4, want: -1, noReply: true},
		{name: "4: duplicate From (no reply in 5.6.3)", raw: invite("Call-ID:", "From: <sip:mallory@example.com>;tag=m\nCall-ID:"), msgChecks: 4, want: -1},
		{name: "4: duplicate From in compact form", raw: invite("Call-ID:", "f: <sip:mallory@example.com>;tag=m\nCall-ID:"), msgChecks: 4, want: -1},
		{name: "4: duplicate CSeq", raw: invite("Contact:", "CSeq: 2 INVITE\nContact:"), msgChecks: 4, want: -1},

		// 16384: top Via host
		{name: "16384: Via without host", raw: invite("UDP 192.0.2.10:5060;branch", "UDP ;branch"), msgChecks: 16384, want: -1, noReply: true},
		{name: "16384: no Via", raw: invite("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n", ""), msgChecks: 16384, want: -1, noReply: true},
		{name: "16384 runs before 32: no 400", raw: invite("UDP 192.0.2.10:5060;branch", "UDP ;branch", "1 INVITE", "1 BYE"), msgChecks: 16384 | 32, want: -1, noReply: true},
		{name: "8 and 16 are no-ops", raw: invite("SIP/2.0/UDP", "SIP/3.0/FOO"), msgChecks: 8 | 16, want: 1},

		// 32: CSeq method
		{name: "32: CSeq method differs", raw: invite("1 INVITE", "1 BYE"), msgChecks: 32, want: -1, code: 400, reason: "CSeq method does not match request method"},
		{name: "32: missing CSeq, no reply", raw: invite("CSeq: 1 INVITE\n", ""), msgChecks: 32, want: -1},

		// 64: CSeq number
		{name: "64: valid number", raw: invite("CSeq: 1 ", "CSeq: 2147483647 "), msgChecks: 64, want: 1},
		{name: "64: missing CSeq marks no-reply", raw: invite("CSeq: 1 INVITE\n", ""), msgChecks: 64, want: -1, noReply: true},

		// 128: Content-Length
		{name: "128: body matches", raw: invite("Content-Length: 0\n\n", "Content-Type: text/plain\nContent-Length: 5\n\nhello"), msgChecks: 128, want: 1},
		{name: "128: no Content-Length passes", raw: invite("Content-Length: 0\n", ""), msgChecks: 128, want: 1},
		{name: "128: first Content-Length differs from body", raw: invite("Content-Length: 0\n\n", "Content-Length: 9\nContent-Length: 5\n\nhello"), msgChecks: 128, want: -1, code: 400, reason: "Content-Length mis-match"},

		// 256: Expires
		{name: "256: valid", raw: invite("Contact:", "Expires: 3600\nContact:"), msgChecks: 256, want: 1},
		{name: "256: digits then space", raw: invite("Contact:", "Expires: 3600 x\nContact:"), msgChecks: 256, want: 1},
		{name: "256: 2^32 passes like str2valid_uint", raw: invite("Contact:", "Expires: 4294967296\nContact:"), msgChecks: 256, want: 1},
		{name: "256: above 2^32", raw: invite("Contact:", "Expires: 4294967297\nContact:"), msgChecks: 256, want: -1, code: 400, reason: "Expires value is illegal"},
		{name: "256: not a number", raw: invite("Contact:", "Expires: soon\nContact:"), msgChecks: 256, want: -1, code: 400, reason: "Expires value is illegal"},
		{name: "256: empty", raw: invite("Contact:", "Expires:\nContact:"), msgChecks: 256, want: -1, code: 400, reason: "Bad Expires Header"},

		// 512: Proxy-Require
		{name: "512: unsupported extension", raw: invite("Contact:", "Proxy-Require: foo\nContact:"), msgChecks: 512, want: -1, code: 420, reason: "Bad Proxy Require Extension", replyHdr: "Unsupported: foo"},
		{name: "512: supported extensions", raw: invite("Contact:", "Proxy-Require: foo, bar\nContact:"), msgChecks: 512, cfg: func(c *Config) { c.ProxyRequire = "bar , foo" }, want: 1},
		{name: "512: tokens are case-sensitive", raw: invite("Contact:", "Proxy-Require: Foo\nContact:"), msgChecks: 512, cfg: func(c *Config) { c.ProxyRequire = "foo" }, want: -1, code: 420, replyHdr: "Unsupported: Foo"},
		{name: "512: empty header", raw: invite("Contact:", "Proxy-Require:\nContact:"), msgChecks: 512, want: -1, code: 400, reason: "Bad Proxy Require Header"},

		// 1024: URIs
		{name: "1024: bad R-URI", raw: invite("INVITE sip:bob@example.com", "INVITE sip:bob@exa_mple.com"), msgChecks: 1024, uriChecks: 1, want: -1, code: 400, reason: "Bad Request URI"},
		{name: "1024: bad From URI", raw: invite("<sip:alice@example.com>", "<sip:alice@exa_mple.com>"), msgChecks: 1024, uriChecks: 2, want: -1, code: 400, reason: "Invalid From Header"},
		{name: "1024: From not checked without uri bit 2", raw: invite("<sip:alice@example.com>", "<sip:alice@exa_mple.com>"), msgChecks: 1024, uriChecks: 1 | 4 | 8, want: 1},
		{name: "1024: bad To URI", raw: invite("To: <sip:bob@example.com>", "To: <http://bob@example.com>"), msgChecks: 1024, uriChecks: 4, want: -1, code: 400, reason: "Ivalid To Header"},
		{name: "1024: missing From marks no-reply", raw: invite("From: \"Alice\" <sip:alice@example.com>;tag=a1\n", ""), msgChecks: 1024, uriChecks: 2, want: -1, noReply: true},
		{name: "1024: bad Contact URI", raw: invite("Contact: <sip:alice@192.0.2.10:5060>", "Contact: <sip:alice@192.0.2.10:123456>"), msgChecks: 1024, uriChecks: 8, want: -1, code: 400, reason: "Bad Contact URI"},
		{name: "1024: Contact star", raw: invite("Contact: <sip:alice@192.0.2.10:5060>", "Contact: *"), msgChecks: 1024, uriChecks: 8, want: 1},

		// 2048 / 8192: digest credentials
		{name: "2048: good credentials", raw: invite("Contact:", `Authorization: Digest username="alice", realm="example.com", nonce="n1", uri="sip:bob@example.com", response="0123456789abcdef0123456789abcdef"`+"\nContact:"), msgChecks: 2048, want: 1},
		{name: "2048: empty response", raw: invite("Contact:", `Proxy-Authorization: Digest username="alice", realm="example.com", nonce="n1", uri="sip:bob@example.com", response=""`+"\nContact:"), msgChecks: 2048, want: -1, code: 400, reason: "Auth Empty Response"},
		{name: "2048: empty username", raw: invite("Contact:", `Authorization: Digest username="", realm="r", nonce="n1", uri="sip:b@e", response="x"`+"\nContact:"), msgChecks: 2048, want: -1, code: 400, reason: "Auth Empty User"},
		{name: "2048: empty nonce", raw: invite("Contact:", `Authorization: Digest username="a", realm="r", nonce="", uri="sip:b@e", response="x"`+"\nContact:"), msgChecks: 2048, want: -1, code: 400, reason: "Auth Empty Nonce"},
		{name: "2048: no realm", raw: invite("Contact:", `Authorization: Digest username="a", nonce="n", uri="sip:b@e", response="x"`+"\nContact:"), msgChecks: 2048, want: -1, code: 400, reason: "Bad Auth Credentials"},
		{name: "2048: qop=auth without nc", raw: invite("Contact:", `Authorization: Digest username="a", realm="r", nonce="n", uri="sip:b@e", response="x", qop=auth, cnonce="c"`+"\nContact:"), msgChecks: 2048, want: -1, code: 400, reason: "Bad Auth Credentials"},
		{name: "2048: unterminated quote", raw: invite("Contact:", `Authorization: Digest username="a, realm=r`+"\nContact:"), msgChecks: 2048, want: -1, code: 400, reason: "Bad Auth Header"},
		{name: "2048: Basic fails without reply", raw: invite("Contact:", "Authorization: Basic YWxpY2U6c2VjcmV0\nContact:"), msgChecks: 2048, want: -1},
		{name: "8192: Basic passes", raw: invite("Contact:", "Authorization: Basic YWxpY2U6c2VjcmV0\nContact:"), msgChecks: 8192, want: 1},
		{name: "8192: broken digest", raw: invite("Contact:", `Authorization: Digest username="a"`+"\nContact:"), msgChecks: 8192, want: -1, code: 400, reason: "Bad Auth Credentials"},

		// 4096: duplicate tags
		{name: "4096: From tag twice (different case)", raw: invite(";tag=a1", ";tag=a1;TAG=a2"), msgChecks: 4096, want: -1, code: 400, reason: "Many From Tag Params"},
		{name: "4096: single tags", raw: invite("To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=b1"), msgChecks: 4096, want: 1},

		// reply suppression
		{name: "ACK: failure without reply", raw: invite("INVITE sip", "ACK sip", "1 INVITE", "1 ACK", "Contact:", "Expires: x\nContact:"), msgChecks: 256, want: -1},
		{name: "noreply modparam: recorded, not sent", raw: invite("1 INVITE", "1 BYE"), msgChecks: 32, cfg: func(c *Config) { c.NoReply = 1 }, want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			mod := New(cfg)
			c, rec := ctxFor(t, tc.raw)
			if got := mod.Check(c, tc.msgChecks, tc.uriChecks); got != tc.want {
				t.Fatalf("Check = %d, want %d", got, tc.want)
			}
			if tc.code == 0 {
				if len(rec.sent) != 0 {
					t.Fatalf("unexpected reply %d %s", rec.sent[0].StatusCode, rec.sent[0].Reason)
				}
			} else {
				if len(rec.sent) != 1 {
					t.Fatalf("%d replies sent, want one %d", len(rec.sent), tc.code)
				}
				res := rec.sent[0]
				if res.StatusCode != tc.code || (tc.reason != "" && res.Reason != tc.reason) {
					t.Fatalf("reply %d %q, want %d %q", res.StatusCode, res.Reason, tc.code, tc.reason)
				}
				if cs := res.CSeq(); cs == nil || res.CallID() == nil || res.Via() == nil {
					t.Fatalf("reply lacks transaction headers:\n%s", res)
				}
				if tc.replyHdr != "" && !strings.Contains(res.String(), tc.replyHdr+"\r\n") {
					t.Fatalf("reply lacks %q:\n%s", tc.replyHdr, res)
				}
			}
			if c.Msg.NoReply != tc.noReply {
				t.Fatalf("NoReply = %v, want %v", c.Msg.NoReply, tc.noReply)
			}
		})
	}
}

func TestSanityAlreadyNoReply(t *testing.T) {
	mod := New(DefaultConfig())
	c, rec := ctxFor(t, invite("1 INVITE", "1 BYE"))
	c.Msg.NoReply = true
	if got := mod.Check(c, 32, 0); got != -1 || len(rec.sent) != 0 {
		t.Fatalf("got %d, %d replies", got, len(rec.sent))
	}
}

func TestSanityReplyChecks(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		msgChecks int
		uriChecks int
		want      int
		noReply   bool
	}{
		{"valid reply, example checks", okReply, repChecks, 6, 1, false},
		{"reply: R-URI checks fail", okReply, 2, 0, -1, false},
		{"reply: R-URI version reads the reason phrase", okReply, 1, 0, -1, false},
		{"reply: CSeq method check fails", okReply, 32, 0, -1, false},
		{"reply: Via without host", strings.Replace(okReply, "UDP 192.0.2.10:5060;", "UDP ;", 1), repChecks, 6, -1, true},
		{"reply: bad To URI", strings.Replace(okReply, "To: <sip:bob@example.com>", "To: <sip:bob@exa_mple.com>", 1), repChecks, 6, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mod := New(DefaultConfig())
			c, rec := ctxFor(t, crlf(tc.raw))
			if got := mod.Check(c, tc.msgChecks, tc.uriChecks); got != tc.want {
				t.Fatalf("Check = %d, want %d", got, tc.want)
			}
			if len(rec.sent) != 0 {
				t.Fatalf("a reply was answered")
			}
			if c.Msg.NoReply != tc.noReply {
				t.Fatalf("NoReply = %v", c.Msg.NoReply)
			}
		})
	}
}

func TestSanityCheckDefaults(t *testing.T) {
	mod := New(DefaultConfig())
	if DefaultConfig().DefaultChecks != 3047 || DefaultConfig().URIChecks != 7 {
		t.Fatalf("defaults %+v", DefaultConfig())
	}
	c, rec := ctxFor(t, invite())
	if got := mod.CheckDefaults(c); got != 1 {
		t.Fatalf("valid: %d", got)
	}
	// default checks include 512 with an empty proxy_require list.
	c, rec = ctxFor(t, invite("Contact:", "Proxy-Require: sec-agree\nContact:"))
	if got := mod.CheckDefaults(c); got != -1 || len(rec.sent) != 1 || rec.sent[0].StatusCode != 420 {
		t.Fatalf("got %d, replies %v", got, rec.sent)
	}
}

func TestSanityReplyFunction(t *testing.T) {
	// noreply=0: sanity_reply does nothing.
	mod := New(DefaultConfig())
	c, rec := ctxFor(t, invite())
	if got := mod.Reply(c); got != 1 || len(rec.sent) != 0 {
		t.Fatalf("noreply=0: %d, %d replies", got, len(rec.sent))
	}

	cfg := DefaultConfig()
	cfg.NoReply = 1
	mod = New(cfg)

	// The failed check's reply is sent by sanity_reply.
	c, rec = ctxFor(t, invite("Contact:", "Proxy-Require: foo\nContact:"))
	if got := mod.Check(c, 512, 0); got != -1 || len(rec.sent) != 0 {
		t.Fatalf("check: %d, %d replies", got, len(rec.sent))
	}
	if got := mod.Reply(c); got != 1 || len(rec.sent) != 1 {
		t.Fatalf("reply: %d, %d replies", got, len(rec.sent))
	}
	if res := rec.sent[0]; res.StatusCode != 420 || res.Reason != "Bad Proxy Require Extension" ||
		!strings.Contains(res.String(), "Unsupported: foo\r\n") {
		t.Fatalf("reply:\n%s", res)
	}

	// Another message of the same worker: nothing recorded for it.
	c2, rec2 := ctxFor(t, invite())
	c2.Worker = c.Worker
	if got := mod.Reply(c2); got != 1 || len(rec2.sent) != 1 || rec2.sent[0].StatusCode != 500 ||
		rec2.sent[0].Reason != "Server Sanity Failure" {
		t.Fatalf("other message: %d %v", got, rec2.sent)
	}

	// A passing check clears what an earlier one recorded.
	c3, rec3 := ctxFor(t, invite("1 INVITE", "1 BYE"))
	c3.Worker = c.Worker
	mod.Check(c3, 32, 0)
	mod.Check(c3, 1, 0)
	if mod.Reply(c3); len(rec3.sent) != 1 || rec3.sent[0].StatusCode != 500 {
		t.Fatalf("after reset: %v", rec3.sent)
	}

	// No reply for ACK, replies, or messages marked no-reply.
	c4, rec4 := ctxFor(t, invite("UDP 192.0.2.10:5060;branch", "UDP ;branch"))
	mod.Check(c4, 16384, 0)
	if got := mod.Reply(c4); got != 1 || len(rec4.sent) != 0 {
		t.Fatalf("no-reply message answered")
	}
	c5, rec5 := ctxFor(t, crlf(okReply))
	if got := mod.Reply(c5); got != 1 || len(rec5.sent) != 0 {
		t.Fatalf("reply answered")
	}
}

func TestSanityReplyNoReplier(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NoReply = 1
	mod := New(cfg)
	c, _ := ctxFor(t, invite())
	c.Msg.Replier = nil
	if got := mod.Reply(c); got != -1 {
		t.Fatalf("got %d", got)
	}
}

func TestValidUint(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "1": true, "4294967295": true, "4294967296": true,
		"4294967297": false, "5000000000": false, "12345678901": false,
		"12a": false, "-1": false, "": true,
	} {
		if got := validUint(s); got != want {
			t.Errorf("validUint(%q) = %v", s, got)
		}
	}
}

func TestParseDigestCred(t *testing.T) {
	tests := []struct {
		body string
		res  int
		ok   bool
	}{
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="y"`, credOK, true},
		{`digest username=a,realm=r,nonce=n,uri=sip:x,response=y`, credOK, true},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="y", qop=auth, nc=00000001, cnonce="c"`, credOK, true},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="y", qop=auth-int`, credOK, false},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="y", qop=other`, credOK, true},
		{`Digest realm="r"`, credOK, false},
		{`Basic abc`, credNotDigest, false},
		{`Digest`, credNotDigest, false},
		{`Digestx a=b`, credNotDigest, false},
		{`Digest username`, credError, false},
		{`Digest username=, realm="r"`, credError, false},
		{`Digest username="a", `, credError, false},
	}
	for _, tc := range tests {
		c, res := parseDigestCred(tc.body)
		if res != tc.res || (res == credOK && c.complete() != tc.ok) {
			t.Errorf("%q: res %d complete %v", tc.body, res, c.complete())
		}
	}
}

func TestExports(t *testing.T) {
	mod := New(DefaultConfig())
	exps := map[string]kemi.Export{}
	for _, e := range mod.Exports() {
		exps[e.Name] = e
	}
	c, rec := ctxFor(t, invite("1 INVITE", "1 BYE"))
	if got := exps["sanity_check"].Fn(c, []val.Value{val.OfInt(reqChecks), val.OfInt(7)}); got != val.OfInt(-1) {
		t.Fatalf("sanity_check = %v", got)
	}
	if len(rec.sent) != 1 || rec.sent[0].StatusCode != 400 {
		t.Fatalf("replies %v", rec.sent)
	}
	c, _ = ctxFor(t, invite())
	if got := exps["sanity_check_defaults"].Fn(c, nil); got != val.OfInt(1) {
		t.Fatalf("sanity_check_defaults = %v", got)
	}
	if got := exps["sanity_reply"].Fn(c, nil); got != val.OfInt(1) {
		t.Fatalf("sanity_reply = %v", got)
	}
	checkCatalog(t, "sanity", mod.Exports())
}

func checkCatalog(t *testing.T, module string, exps []kemi.Export) {
	t.Helper()
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skip("catalog.tsv not available:", err)
	}
	defer f.Close()
	type sig struct{ params, ret string }
	cat := map[string]sig{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) >= 4 && col[0] == module {
			cat[col[1]] = sig{col[2], col[3]}
		}
	}
	for _, e := range exps {
		want, ok := cat[e.Name]
		if !ok || e.Module != module {
			t.Errorf("%s.%s: not in the catalog", e.Module, e.Name)
			continue
		}
		params := "none"
		if len(e.Params) > 0 {
			ps := make([]string, len(e.Params))
			for i, p := range e.Params {
				ps[i] = p.String()
			}
			params = strings.Join(ps, ",")
		}
		if params != want.params || e.Ret.String() != want.ret {
			t.Errorf("%s: (%s) -> %s, catalog (%s) -> %s", e.Name, params, e.Ret, want.params, want.ret)
		}
	}
}
