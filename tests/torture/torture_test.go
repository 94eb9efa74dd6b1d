package torture

// TestTorture sends the RFC 4475 torture messages (and the RFC 5118 IPv6
// ones) over UDP and TCP to kemigo running Kamailio's reference KEMI
// script, unchanged, with a configuration like kamailio-basic-kemi.cfg.
//
// What each message must get is in the table below: the replies the
// client receives (in order; provisional ones included), or none. A
// message sipgo cannot parse is dropped and logged ("malformed SIP message
// dropped"; over TCP the connection closes); a message the script's
// sanity_check refuses without a reply is logged by the script
// ("Malformed SIP message from ..."); the test waits for that line rather
// than for a timeout. Where the outcome differs from what RFC 4475 (and
// INDEX.tsv's proxy_action) expects, the row says why: the reference
// script, Kamailio's own behaviour that kemigo follows, or sipgo's parser.
//
// What the test changes in the messages, and why:
//
//   - over UDP, the sent-by of a request's top Via becomes the client's
//     address: replies to UDP go to the top Via (RFC 3261 §18.2.2; the
//     received= kemigo adds only fixes the IP, the port would be 5060),
//     and the sent-by hosts are foreign (192.0.2.x, example.com). Over TCP
//     a request is sent byte for byte: replies follow the connection.
//   - "ruri-host": the R-URI's host:port becomes the proxy's address, the
//     user part (what the message tests) kept, so the request is for this
//     proxy and goes through the whole script (to usrloc's lookup: 404);
//     as sent, the script answers 403 "Not relaying" (example.com is not
//     local and neither is the From), which says little about parsing.
//   - "forward": the R-URI becomes a user registered at the proxy whose
//     contact is the test client, and the top Via's sent-by the client
//     (also over TCP: with a foreign sent-by, the script's NAT test would
//     call rtpproxy, which is not running). The client receives the
//     routed request (the body and unknown headers must arrive
//     unchanged), answers it, and gets the answer relayed back.
//   - responses: the top Via's sent-by becomes the proxy's address (else
//     kemigo drops the reply as not its own, as Kamailio does), and a
//     second Via pointing at the client is inserted after it, so the
//     reply is relayed back to the client (except bcast.dat, whose second
//     Via, the broadcast address, is the point).
//
// Nothing may leave loopback: send_only_to is set (a refused destination
// is logged) and DNS is off (see TestMain). Every message runs in its own
// subtest, in parallel, each on its own socket (and its own user for
// "forward"); at the end no transaction may remain (tm's Active() back to
// 0 within a bounded wait), the script must have raised no exception, and
// the proxy must still answer.

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/tests/harness"
)

// rewrite is what the test changes in a message before sending it (see
// the comment at the top of this file).
type rewrite int

const (
	rwDefault  rewrite = iota // requests: top Via sent-by → client over UDP
	rwRURIHost                // + R-URI host:port → the proxy
	rwForward                 // R-URI → a registered user, top Via → client (every transport)
	rwResponse                // responses: top Via → proxy, then a Via to the client
	rwResBare                 // responses: top Via → proxy only
)

// drop says how the test knows a message was dropped: a log line, or only
// silence.
type drop int

const (
	dropSipgo  drop = iota + 1 // sipgo could not parse it: "malformed SIP message dropped" (TCP: connection closed)
	dropSanity                 // the script's sanity_check failed without reply: "Malformed SIP message from <client>"
	dropReply                  // a response not relayed: "reply not forwarded" / nothing to relay to
	dropWait                   // a stream transport waits for more bytes: nothing happens
)

// outcome is what the client receives for a message on one transport.
type outcome struct {
	codes  []int  // status codes received, in order (1xx included); nil: none
	reason string // reason phrase of the last code, when checked
	drop   drop   // with no codes: how the drop shows
	// anyOrder: the replies answer different requests (Call-IDs), which
	// may run on different workers: their order is not fixed.
	anyOrder bool
}

func got(codes ...int) outcome { return outcome{codes: codes} }
func gotR(code int, reason string) outcome {
	return outcome{codes: []int{code}, reason: reason}
}
func dropped(d drop) outcome { return outcome{drop: d} }

// row is one torture message.
type row struct {
	name string
	rw   rewrite
	// udp is the outcome over UDP (and udp6), tcp over TCP (and tcp6);
	// tcp is udp when zero.
	udp, tcp outcome
	// answer is what the client answers to the forwarded request
	// (rwForward; 0: 486 to INVITE, 200 otherwise).
	answer int
	// why, when set, says why the outcome is not what RFC 4475 §3 (and
	// INDEX.tsv) expects: "script:" the reference script decides,
	// "kamailio:" kemigo does what Kamailio 5.6 does, "sipgo:" sipgo's
	// parser decides (with what Kamailio does instead).
	why string
}

var rfc4475Rows = []row{
	// §3.1.1 valid messages
	{name: "wsinv", udp: gotR(400, "Ivalid To Header"),
		why: "sipgo: keeps the folded LWS of \"TO :\\r\\n sip:vivekg@chair-dnrc.example.com ;   tag    = ...\" in the URI host, so sanity_check's To URI check fails (400, Kamailio's own misspelt reason); Kamailio parses it and, the To having a tag, loose-routes it to services.example.com"},
	{name: "intmeth", rw: rwRURIHost, udp: gotR(404, "Not Found")},
	{name: "esc01", rw: rwRURIHost, udp: gotR(404, "Not Found")},
	{name: "escnull", udp: gotR(401, "Unauthorized")}, // REGISTER: challenged before anything is stored
	{name: "esc02", rw: rwRURIHost, udp: gotR(484, "Address Incomplete")},
	{name: "lwsdisp", rw: rwForward, udp: got(200)},
	{name: "longreq", rw: rwForward, udp: got(100, 486)},
	{name: "dblreq", udp: gotR(401, "Unauthorized"), tcp: outcome{codes: []int{401, 403}, anyOrder: true},
		why: "tcp: on a stream the trailing INVITE is the next message (the REGISTER's Content-Length ends it), routed too (403 Not relaying); then its body overruns its Content-Length and the connection closes after the replies"},
	{name: "semiuri", rw: rwRURIHost, udp: gotR(404, "Not Found")},
	{name: "transports", rw: rwForward, udp: got(200)},
	{name: "mpart01", rw: rwForward, udp: got(200)},
	{name: "unreason", rw: rwResponse, udp: got(200)},
	{name: "noreason", rw: rwResponse, udp: got(100)},

	// §3.1.2 invalid messages
	{name: "badinv01", udp: dropped(dropSipgo),
		why: "sipgo: refuses the Via (\"Malformed protocol name\"); Kamailio's core drops a message whose first Via does not parse too, with no reply"},
	{name: "clerr", udp: dropped(dropSipgo), tcp: dropped(dropWait),
		why: "sipgo: over UDP the short body fails the parse (Kamailio: sanity_check 128 answers 400 Content-Length mis-match); over TCP the proxy waits for the rest, as the RFC says"},
	{name: "ncl", udp: dropped(dropSipgo),
		why: "sipgo: a negative Content-Length fails the parse (RFC: 400); over TCP the connection closes, as the RFC says"},
	{name: "scalar02", udp: dropped(dropSipgo),
		why: "sipgo: the CSeq number overflows its parser (RFC: 400; Kamailio: sanity_check 64, 400 CSeq number is illegal)"},
	{name: "scalarlg", rw: rwResponse, udp: dropped(dropSipgo)},
	{name: "quotbal", udp: dropped(dropSipgo),
		why: "sipgo: the unterminated quote fails the parse (RFC: 400, or infer the quote; Kamailio: sanity_check's To URI check, 400)"},
	{name: "ltgtruri", udp: dropped(dropSipgo),
		why: "sipgo: <> around the R-URI fail the parse (RFC: 400; Kamailio: sanity_check 2, 400 Bad Request URI)"},
	{name: "lwsruri", udp: dropped(dropSipgo),
		why: "sipgo: a request line of four elements is not a request (RFC: 400; Kamailio drops it too, the first line not parsing)"},
	{name: "lwsstart", udp: dropped(dropSipgo),
		why: "sipgo: double SP in the request line is refused (RFC: 400, or accept)"},
	{name: "trws", udp: dropped(dropSipgo),
		why: "sipgo: trailing SP after SIP/2.0 is refused (RFC: 400, or accept)"},
	{name: "escruri", udp: gotR(403, "Not relaying"),
		why: "script: parsed and routed; the script refuses to relay to example.com (RFC: 400, or strip the ?headers when forwarding)"},
	{name: "baddate", rw: rwForward, udp: got(100, 486)}, // RFC: a proxy may route it (Date does not matter to it)
	{name: "regbadct", udp: gotR(401, "Unauthorized"),
		why: "kamailio: the script challenges a REGISTER before looking at its Contact (sanity_check 17895,7 checks the R-URI, From and To URIs only); RFC: 400"},
	{name: "badaspec", udp: dropped(dropSipgo),
		why: "sipgo: spaces in the To addr-spec fail the parse (RFC: 400; Kamailio: sanity_check's To URI check, 400)"},
	{name: "baddn", udp: dropped(dropSipgo), tcp: dropped(dropWait),
		why: "sipgo: over UDP the missing final CRLF fails the parse; over TCP the headers are not over yet, the proxy waits (RFC: 400)"},
	{name: "badvers", udp: gotR(505, "Version Not Supported (R-URI)")},
	{name: "mismatch01", udp: gotR(400, "CSeq method does not match request method")},
	{name: "mismatch02", udp: gotR(400, "CSeq method does not match request method"),
		why: "kamailio: sanity_check 32 answers 400 (the RFC prefers 501, and accepts 400)"},
	{name: "bigcode", rw: rwResponse, udp: dropped(dropSipgo)},

	// §3.2 transaction layer
	{name: "badbranch", rw: rwForward, udp: got(200)}, // RFC 2543 branch: routed, the answer matches it back

	// §3.3 application layer
	{name: "insuf", udp: dropped(dropSanity),
		why: "kamailio: sanity_check 4 marks a request without Call-ID, From or To as not to be answered (5.6.3); RFC: 400"},
	{name: "unkscm", udp: gotR(400, "Bad Request URI"),
		why: "kamailio: sanity_check 2 answers 400 for a scheme its URI parser does not know (Kamailio's 416 branch is unreachable); RFC: 416"},
	{name: "novelsc", udp: dropped(dropSipgo),
		why: "sipgo: the soap.beep: R-URI fails the parse (RFC: 416 or 404; Kamailio: sanity_check 2, 400 Bad Request URI)"},
	{name: "unksm2", udp: gotR(400, "Invalid From Header"),
		why: "kamailio: sanity_check's From URI check refuses http: (RFC: route it like any REGISTER, a registrar answers 400)"},
	{name: "bext01", udp: gotR(403, "Not relaying"),
		why: "script: its sanity_check mask 17895 leaves out 512 (Proxy-Require), so no 420; the foreign R-URI gets 403 (RFC: 420 with Unsupported)"},
	{name: "invut", rw: rwForward, answer: 415, udp: got(100, 415)},
	{name: "regaut01", udp: gotR(401, "Unauthorized")},
	{name: "multi01", udp: dropped(dropSanity),
		why: "kamailio: sanity_check 4 fails duplicated Call-ID/From/To/CSeq without a reply (5.6.3); RFC: 400"},
	{name: "mcl01", udp: gotR(400, "Content-Length mis-match"),
		why: "tcp: sipgo frames with one Content-Length; sanity_check 128 answers 400, then the rest of the stream fails to parse and the connection closes (the RFC's advice)"},
	{name: "bcast", rw: rwResBare, udp: dropped(dropReply),
		why: "the reply's next Via is 255.255.255.255: kemigo's transport refuses the broadcast address (Kamailio tries, and sendto fails without SO_BROADCAST)"},
	{name: "zeromf", udp: gotR(483, "Too Many Hops")},
	{name: "cparam01", udp: gotR(401, "Unauthorized")},
	{name: "cparam02", udp: gotR(401, "Unauthorized")},
	{name: "regescrt", udp: gotR(401, "Unauthorized")},
	{name: "sdp01", rw: rwForward, answer: 406, udp: got(100, 406)},

	// §3.4 backward compatibility
	{name: "inv2543", rw: rwForward, udp: got(100, 486), tcp: dropped(dropSipgo),
		why: "tcp: no Content-Length, which a stream requires (RFC 3261 §18.3): its body cannot be framed, the connection closes"},

	// not in RFC 4475's text, only in its archive
	{name: "test", udp: dropped(dropSipgo)},
}

var rfc5118Rows = []row{
	{name: "ipv6-good", udp: gotR(401, "Unauthorized")},
	{name: "ipv6-bad", udp: dropped(dropSipgo),
		why: "sipgo: an IPv6 R-URI host without [] fails the parse (RFC: 400; Kamailio: sanity_check 2, 400 Bad Request URI)"},
	{name: "port-ambiguous", udp: gotR(401, "Unauthorized")},
	{name: "port-unambiguous", udp: gotR(401, "Unauthorized")},
	{name: "via-received-param-with-delim", udp: gotR(404, "Not here")}, // in-dialog BYE without our Route
	{name: "via-received-param-no-delim", udp: gotR(403, "Not relaying")},
	{name: "ipv6-in-sdp", udp: gotR(403, "Not relaying")},
	{name: "mult-ip-in-header", udp: gotR(404, "Not here")},
	{name: "mult-ip-in-sdp", udp: gotR(403, "Not relaying")},
	{name: "ipv4-mapped-ipv6", udp: gotR(403, "Not relaying")},
	{name: "ipv6-bug-abnf-3-colons", udp: gotR(403, "Not relaying")},
	{name: "ipv6-correct-abnf-2-colons", udp: gotR(403, "Not relaying")},
}

// sut is the proxy under test.
type sut struct{ *harness.SUT }

// forwardUser is the subscriber a rwForward row registers as over proto
// (one per transport: the subtests run at the same time).
func forwardUser(r row, proto string) string { return "t-" + r.name + "-" + proto }

func TestTorture(t *testing.T) {
	harness.NeedScript(t)
	msgs4475, msgs5118 := rfc4475(t), rfc5118(t)
	if len(rfc4475Rows) != len(msgs4475) || len(rfc5118Rows) != len(msgs5118) {
		t.Fatalf("the table has %d+%d rows for %d+%d messages", len(rfc4475Rows), len(rfc5118Rows), len(msgs4475), len(msgs5118))
	}
	var users []string
	for _, r := range rfc4475Rows {
		if r.rw == rwForward {
			users = append(users, forwardUser(r, "udp"), forwardUser(r, "tcp"))
		}
	}
	s := &sut{harness.Start(t, harness.BasicConfig(t, "", users...), harness.Options{IPv6: true})}
	protos4 := []string{"udp", "tcp"}
	protos6 := protos4
	if s.Addrs["udp6"] != "" {
		protos6 = append(protos6, "udp6", "tcp6")
	} else {
		t.Log("::1 is not available: the RFC 5118 messages run over IPv4 only")
	}

	t.Run("rfc4475", func(t *testing.T) {
		for _, r := range rfc4475Rows {
			m, ok := msgs4475[r.name]
			if !ok {
				t.Fatalf("no message %s", r.name)
			}
			for _, proto := range protos4 {
				t.Run(proto+"/"+r.name, func(t *testing.T) {
					t.Parallel()
					s.run(t, r, m, proto)
				})
			}
		}
	})
	t.Run("rfc5118", func(t *testing.T) {
		for _, r := range rfc5118Rows {
			m, ok := msgs5118[r.name]
			if !ok {
				t.Fatalf("no message %s", r.name)
			}
			for _, proto := range protos6 {
				t.Run(proto+"/"+r.name, func(t *testing.T) {
					t.Parallel()
					s.run(t, r, m, proto)
				})
			}
		}
	})

	// No transaction left behind, no exception, nothing sent off loopback
	// but the refused broadcast, and the proxy still answers.
	s.WaitIdle(t, 5*time.Second)
	if n := s.P.Exceptions.Load(); n != 0 {
		t.Errorf("the script raised %d exceptions", n)
	}
	for _, e := range s.OffLoopback() {
		if !strings.HasPrefix(e.Str("dst"), "255.255.255.255:") {
			t.Errorf("refused destination other than bcast.dat's broadcast: %s", e)
		}
	}
	if es := s.Logs.Find(siptest.MessageContains("panic")); len(es) > 0 {
		t.Errorf("panics logged: %v", es)
	}
	for _, proto := range protos4 {
		c := siptest.Dial(t, proto, s.Addrs[proto])
		_, res := c.Exchange(siptest.Options)
		siptest.AssertStatus(t, res, 200, "Keepalive")
	}
}

// dial opens a client of proto ("udp6", "tcp6": over ::1), a UA of user
// when user is set.
func (s *sut) dial(t *testing.T, proto string, user string) (*siptest.Client, *siptest.UA) {
	base, opts := strings.TrimSuffix(proto, "6"), []siptest.Option{}
	if strings.HasSuffix(proto, "6") {
		opts = append(opts, siptest.WithLocalIP("::1"))
	}
	if user == "" {
		return siptest.Dial(t, base, s.Addrs[proto], opts...), nil
	}
	ua := siptest.NewUA(t, base, s.Addrs[proto], user, harness.Password, harness.Domain, opts...)
	return ua.Client, ua
}

// run sends one message over proto and checks the outcome.
func (s *sut) run(t *testing.T, r row, m message, proto string) {
	want := r.udp
	if strings.HasPrefix(proto, "tcp") && (r.tcp.codes != nil || r.tcp.drop != 0) {
		want = r.tcp
	}
	if r.rw == rwForward && want.codes != nil {
		s.runForward(t, r, m, proto, want)
		return
	}
	c, _ := s.dial(t, proto, "")
	raw := s.prepare(t, r, m, c)
	if err := c.SendRaw(raw); err != nil {
		t.Fatal(err)
	}
	var codes []int
	var last *sip.Response
	deadline := time.Now().Add(3 * time.Second)
	for len(codes) < len(want.codes) && time.Now().Before(deadline) {
		rcv, err := c.Recv(time.Until(deadline))
		if err != nil {
			break
		}
		res, ok := rcv.Msg.(*sip.Response)
		if !ok {
			t.Fatalf("unexpected message:\n%s", rcv.Raw)
		}
		codes = append(codes, res.StatusCode)
		last = res
	}
	if want.anyOrder {
		slices.Sort(codes)
	}
	if !slices.Equal(codes, want.codes) {
		t.Fatalf("%s: got %v, want %v (%s)", m.name, codes, want.codes, r.why)
	}
	if want.reason != "" && last != nil && last.Reason != want.reason {
		t.Errorf("reason %q, want %q", last.Reason, want.reason)
	}
	if r.name == "unreason" && last != nil {
		// the reason phrase travels opaque, byte for byte
		if first := firstLine(m.raw); !strings.HasSuffix(first, " "+last.Reason) {
			t.Errorf("relayed reason phrase %q, sent %q", last.Reason, first)
		}
	}
	if !bytes.HasPrefix(raw, []byte("SIP/")) && last != nil && last.StatusCode >= 300 && requestMethod(raw) == "INVITE" {
		if err := c.SendRaw(ackFor(raw, last)); err != nil {
			t.Fatal(err)
		}
	}
	if len(want.codes) == 0 {
		s.waitDropped(t, want.drop, m, c)
	}
	// nothing more (no second reply, no retransmission)
	if rcv, err := c.Recv(150 * time.Millisecond); err == nil || rcv.Raw != nil {
		t.Errorf("unexpected extra message:\n%s", rcv.Raw)
	}
}

// prepare applies the row's rewrites for client c.
func (s *sut) prepare(t *testing.T, r row, m message, c *siptest.Client) []byte {
	raw := m.raw
	proxy := s.Addrs[c.Proto]
	if strings.Contains(c.LocalIP, ":") {
		proxy = s.Addrs[c.Proto+"6"]
	}
	var ok bool
	switch r.rw {
	case rwResponse, rwResBare:
		if raw, ok = RewriteTopVia(raw, proxy); !ok {
			t.Fatal("no top Via to rewrite")
		}
		if r.rw == rwResponse {
			raw = insertAfterTopVia(raw, fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bK-torture-%s", strings.ToUpper(c.Proto), c.Local(), r.name))
		}
		return raw
	case rwForward:
		raw = rewriteRURI(raw, "sip:"+forwardUser(r, c.Proto)+"@"+proxy)
		if raw, ok = RewriteTopVia(raw, c.Local()); !ok {
			t.Fatal("no top Via to rewrite")
		}
		return raw
	case rwRURIHost:
		raw = rewriteRURIHost(raw, proxy)
	}
	if c.Proto == "udp" {
		if raw, ok = RewriteTopVia(raw, c.Local()); !ok && m.name != "test" {
			t.Fatal("no top Via to rewrite")
		}
	}
	return raw
}

// runForward runs a rwForward row: the client registers as the row's
// user; the request must reach it (the registered contact) with its body
// and its end-to-end headers; the client answers it and gets the answer
// back (after 100 Trying for an INVITE), and ACKs a non-2xx final, which
// the proxy must have ACKed on its side too.
func (s *sut) runForward(t *testing.T, r row, m message, proto string, want outcome) {
	_, ua := s.dial(t, proto, forwardUser(r, proto))
	ua.Register(3600)
	t.Cleanup(func() { unregister(t, ua) })
	raw := s.prepare(t, r, m, ua.Client)
	orig, err := sip.ParseMessage(raw)
	if err != nil {
		t.Fatalf("the message to send does not parse: %v", err)
	}
	req := orig.(*sip.Request)
	if err := ua.SendRaw(raw); err != nil {
		t.Fatal(err)
	}
	method := string(req.Method)
	in := ua.ExpectRequest(method, 3*time.Second)
	if !bytes.Equal(in.Body(), req.Body()) {
		t.Errorf("body changed on the way:\nsent %q\ngot  %q", req.Body(), in.Body())
	}
	for _, h := range req.Headers() {
		switch strings.ToLower(h.Name()) {
		case "via", "v", "route", "record-route", "max-forwards", "contact", "m", "content-length", "l":
			continue // the proxy's business
		}
		if len(in.GetHeaders(h.Name())) == 0 {
			t.Errorf("header %s lost on the way", h.Name())
		}
	}
	answer := r.answer
	if answer == 0 {
		answer = 200
		if method == "INVITE" {
			answer = 486
		}
	}
	ua.Reply(in, answer, "")
	mine := &siptest.Req{Method: method, CallID: req.CallID().Value(), CSeq: int(req.CSeq().SeqNo)}
	var codes []int
	var final *sip.Response
	for final == nil {
		res := ua.ExpectResponse(mine, 3*time.Second)
		codes = append(codes, res.StatusCode)
		if res.StatusCode >= 200 {
			final = res
		}
	}
	if !slices.Equal(codes, want.codes) {
		t.Fatalf("%s: got %v, want %v (%s)", m.name, codes, want.codes, r.why)
	}
	if method == "INVITE" && final.StatusCode >= 300 {
		if err := ua.SendRaw(ackFor(raw, final)); err != nil {
			t.Fatal(err)
		}
		ua.ExpectRequest("ACK", 3*time.Second) // tm's ACK of our answer
	}
	ua.ExpectNoMore(150 * time.Millisecond)
}

// waitDropped waits for the evidence of a drop.
func (s *sut) waitDropped(t *testing.T, d drop, m message, c *siptest.Client) {
	var what string
	var match func(siptest.Entry) bool
	switch d {
	case dropSipgo:
		if strings.HasPrefix(c.Proto, "udp") {
			what = "malformed SIP message dropped from " + c.Local()
			match = siptest.All(siptest.MessageContains("malformed SIP message dropped"), siptest.FieldIs("src", c.Local()))
		} else {
			what = "connection closed after unparsable data from " + c.Local()
			match = siptest.All(siptest.MessageContains("connection closed after unparsable data"), siptest.FieldIs("src", c.Local()))
		}
	case dropSanity:
		what = "Malformed SIP message from " + c.Local()
		match = siptest.MessageContains("Malformed SIP message from " + c.Local())
	case dropReply:
		what = "reply not forwarded (" + m.name + ")"
		match = siptest.All(siptest.MessageContains("reply not forwarded"), siptest.FieldIs("callid", callID(m.raw)))
	case dropWait:
		time.Sleep(300 * time.Millisecond)
		return
	default:
		t.Fatalf("row %s: no replies and no drop kind", m.name)
	}
	s.Logs.WaitFor(t, what, match)
}

// unregister removes the UA's binding (Expires: 0), so that no later
// lookup forks to a closed socket.
func unregister(t *testing.T, ua *siptest.UA) {
	r := ua.RegisterRequest(0)
	ua.Send(r)
	res := ua.ExpectFinal(r)
	if res.StatusCode == 401 {
		r = ua.Authorize(r, res)
		ua.Send(r)
		res = ua.ExpectFinal(r)
	}
	if res.StatusCode != 200 {
		t.Errorf("unregister: %d %s", res.StatusCode, res.Reason)
	}
}

// ---- message helpers ------------------------------------------------------

func firstLine(b []byte) string {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func requestMethod(raw []byte) string {
	m, _, _ := strings.Cut(firstLine(raw), " ")
	return m
}

var callIDRe = regexp.MustCompile(`(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)`)

func callID(raw []byte) string {
	if m := callIDRe.FindSubmatch(raw); m != nil {
		return string(m[1])
	}
	return ""
}

// requestURI returns the start line's R-URI and its offsets.
func requestURI(raw []byte) (string, int, int) {
	line := firstLine(raw)
	a := strings.IndexByte(line, ' ')
	b := strings.LastIndex(line, " SIP/")
	if a < 0 || b <= a {
		return "", 0, 0
	}
	return line[a+1 : b], a + 1, b
}

func rewriteRURI(raw []byte, uri string) []byte {
	_, a, b := requestURI(raw)
	if b == 0 {
		return raw
	}
	out := append([]byte(nil), raw[:a]...)
	out = append(out, uri...)
	return append(out, raw[b:]...)
}

// rewriteRURIHost replaces the host[:port] of the R-URI (after the last
// '@' of the user part, if any) with hostport.
func rewriteRURIHost(raw []byte, hostport string) []byte {
	uri, a, b := requestURI(raw)
	if b == 0 {
		return raw
	}
	colon := strings.IndexByte(uri, ':')
	hs := colon + 1
	if at := strings.LastIndexByte(uri, '@'); at >= 0 {
		hs = at + 1
	}
	he := len(uri)
	if i := strings.IndexAny(uri[hs:], ";?"); i >= 0 {
		he = hs + i
	}
	nu := uri[:hs] + hostport + uri[he:]
	out := append([]byte(nil), raw[:a]...)
	out = append(out, nu...)
	return append(out, raw[b:]...)
}

// insertAfterTopVia inserts a header line after the top Via header line.
func insertAfterTopVia(raw []byte, line string) []byte {
	_, end, ok := headerSpan(raw, "via", "v")
	if !ok {
		return raw
	}
	at := end + 2
	out := append([]byte(nil), raw[:at]...)
	out = append(out, line+"\r\n"...)
	return append(out, raw[at:]...)
}

// ackFor builds the ACK of an INVITE (raw) answered by the non-2xx res
// (RFC 3261 §17.1.1.3): its R-URI and top Via (as echoed), the reply's
// From, To and Call-ID, the CSeq number.
func ackFor(raw []byte, res *sip.Response) []byte {
	uri, _, _ := requestURI(raw)
	var b strings.Builder
	b.WriteString("ACK " + uri + " SIP/2.0\r\n")
	if v := res.Via(); v != nil {
		b.WriteString(v.String() + "\r\n")
	}
	b.WriteString("Max-Forwards: 70\r\n")
	if h := res.From(); h != nil {
		b.WriteString(h.String() + "\r\n")
	}
	if h := res.To(); h != nil {
		b.WriteString(h.String() + "\r\n")
	}
	if h := res.CallID(); h != nil {
		b.WriteString(h.String() + "\r\n")
	}
	if cs := res.CSeq(); cs != nil {
		b.WriteString("CSeq: " + strconv.FormatUint(uint64(cs.SeqNo), 10) + " ACK\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}
