package auth

// FuzzDigest feeds Digest credentials (the body of an Authorization or
// Proxy-Authorization header) to the parser (ParseCredentials, Kamailio's
// parse_digest_cred) and through the whole check (CheckResponse: nonce
// decoding and MAC, nonce-count and one-time-nonce tables, algorithms,
// qop, the response) and pv_auth_check's path. It must never panic, and
// every parsed value must be a piece of the header. The seeds are valid
// credentials for nonces the fuzzed module issued (fixed secret and
// clock), so mutations get past the nonce check, and the Authorization
// headers of the torture messages.
//
//	go test ./core/modules/auth -run '^$' -fuzz FuzzDigest -fuzztime 60s

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/internal/fuzzseed"
)

const fuzzInvite = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n" +
	"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\nTo: <sip:bob@example.com>\r\n" +
	"Call-ID: call-1@pc33\r\nCSeq: 2 INVITE\r\nContent-Length: 5\r\n\r\nv=0\r\n"

func fuzzModule(f *testing.F) *Module {
	cfg := DefaultConfig()
	cfg.Secret = "fuzz"
	cfg.Algorithm = "MD5,SHA-256,MD5-sess"
	cfg.NCArraySize = 1 << 10
	cfg.OTNInFlightNo = 1 << 10
	clk := time.Unix(1_700_000_000, 0)
	m, err := New(cfg, WithClock(func() time.Time { return clk }))
	if err != nil {
		f.Fatal(err)
	}
	return m
}

func FuzzDigest(f *testing.F) {
	m := fuzzModule(f)
	msg, err := sipmsg.Parse([]byte(fuzzInvite))
	if err != nil {
		f.Fatal(err)
	}
	msg.Replier = &fakeReplier{}
	nonce := nonceRE.FindStringSubmatch(m.challengeHF(msg, "example.com", false, "auth", false))[1]
	base := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE"}
	for _, cl := range []client{
		base,
		{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE", qop: "auth", nc: "00000001", cnonce: "0a4f113b"},
		{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE", qop: "auth-int", nc: "00000002", cnonce: "x", body: "v=0\r\n"},
		{alg: SHA256, algParam: "SHA-256", user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE", qop: "auth", nc: "00000003", cnonce: "y"},
		{alg: MD5Sess, algParam: "MD5-sess", user: "alice@example.com", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE", qop: "auth", nc: "00000004", cnonce: "z"},
	} {
		h := cl.header("X", nonce)
		f.Add(strings.TrimPrefix(h, "X: "))
	}
	for _, v := range append(fuzzseed.HeaderValues("Authorization"), fuzzseed.HeaderValues("Proxy-Authorization")...) {
		f.Add(v)
	}
	// the first seed is accepted: the fuzzer starts past the nonce check
	if rc := checkSeed(m, msg, strings.TrimPrefix(base.header("X", nonce), "X: ")); rc != 1 {
		f.Fatalf("seed credentials: CheckResponse = %d, want 1", rc)
	}
	f.Add(`Digest username="a",,realm=,nonce="`)
	f.Add(`Basic YWxpY2U6c2VjcmV0`)
	f.Fuzz(func(t *testing.T, body string) {
		cr, rc := ParseCredentials(body)
		if rc == parseOK {
			for _, v := range []string{cr.Username, cr.Realm, cr.Nonce, cr.URI, cr.Response, cr.CNonce, cr.Opaque, cr.QOP, cr.NC, cr.Alg} {
				if !strings.Contains(body, v) {
					t.Fatalf("parsed value %q is not in %q", v, body)
				}
			}
			_ = cr.complete()
			_, _ = SplitUsername(cr.Username)
			_, _ = ParseAlgorithm(cr.Alg)
		}
		for _, hdr := range []string{HdrProxyAuthorization, HdrAuthorization} {
			fm := withHeader(msg, hdr, body)
			fc := &kemi.Ctx{Msg: fm, Route: kemi.RouteRequest}
			_ = m.CheckResponse(fc, hdr, "example.com", alice)
			_ = m.HasCredentials(fc, "example.com")
			_ = m.PVAuthCheck(fc, "example.com", "secret", 1, 1)
			_ = m.ConsumeCredentials(fc)
			_ = CheckIdentity(fm, "alice", true, false)
		}
	})
}

// withHeader is a copy of msg with one more header.
func withHeader(msg *sipmsg.Msg, name, value string) *sipmsg.Msg {
	req := msg.Req.Clone()
	req.AppendHeader(sip.NewHeader(name, value))
	fm := sipmsg.NewRequest(req)
	fm.Proto, fm.SrcIP, fm.SrcPort = "udp", "192.0.2.10", 5060
	fm.Replier = &fakeReplier{}
	return fm
}

func checkSeed(m *Module, msg *sipmsg.Msg, body string) int {
	fm := withHeader(msg, HdrProxyAuthorization, body)
	return m.CheckResponse(&kemi.Ctx{Msg: fm, Route: kemi.RouteRequest}, HdrProxyAuthorization, "example.com", alice)
}
