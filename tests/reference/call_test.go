package reference

import (
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/internal/siptest"
)

// register registers u (401, then 200) and removes its bindings when the
// test ends, so the next subtest's lookup does not fork to a closed socket.
func (e *env) register(t *testing.T, us ...*siptest.UA) {
	t.Helper()
	for _, u := range us {
		u.Register(3600)
		user := u.User
		t.Cleanup(func() { _ = e.p.Mods.Usrloc.Remove(user) })
	}
}

// authRequest sends r, which must be challenged with a 407 (r is a local
// subscriber's request), ACKs the 407 when r is an INVITE, then sends r
// again with credentials and returns that request.
func authRequest(t *testing.T, a *siptest.UA, r *siptest.Req) *siptest.Req {
	t.Helper()
	a.Send(r)
	res := a.ExpectFinal(r)
	siptest.AssertStatus(t, res, 407, "Proxy Authentication Required")
	siptest.AssertMatches(t, res, r.Sent())
	if c := mustChallenge(t, res); c.Realm != domain || c.Header != "Proxy-Authenticate" {
		t.Errorf("challenge %+v: want realm %q in Proxy-Authenticate", c, domain)
	}
	if r.Method == "INVITE" {
		a.Send(r.ACKFor(res))
	}
	r = a.Authorize(r, res)
	a.Send(r)
	return r
}

// recordRoute is the proxy's Record-Route for proto (rr enable_full_lr 1,
// append_fromtag 0; one header, the same socket in and out).
func (e *env) recordRoute(proto string) string {
	rr := "<sip:" + e.addr[proto]
	if proto == "tcp" {
		rr += ";transport=tcp"
	}
	return rr + ";lr=on>"
}

// fromProxy checks that a request reached its UA from the proxy's socket,
// with the R-URI want and without Route headers (the proxy's own Route
// was consumed by loose_route).
func (e *env) fromProxy(t *testing.T, req *sip.Request, proto, ruri string) {
	t.Helper()
	if req == nil {
		t.Fatal("no request")
	}
	if proto == "udp" && req.Source() != e.addr[proto] {
		t.Errorf("%s came from %s, not from the proxy %s", req.Method, req.Source(), e.addr[proto])
	}
	if got := req.Recipient.String(); got != ruri {
		t.Errorf("%s R-URI %q, want %q", req.Method, got, ruri)
	}
	if rt := siptest.Headers(req, "Route"); len(rt) != 0 {
		t.Errorf("%s reached the UA with Route %q", req.Method, rt)
	}
}

// call is an established call between two phones.
type call struct {
	inv  *siptest.Req    // A's authenticated INVITE
	in   *sip.Request    // that INVITE as B received it
	ok   *sip.Response   // the 200 as A received it
	bOK  *sip.Response   // the 200 B sent
	dlg  *siptest.Dialog // A's side
	prov []*sip.Response // provisionals at A
}

// establish places a call from a to b (both registered): INVITE → 407 →
// ACK → INVITE with credentials → B: 100, 180, 200 → A: ACK.
func (e *env) establish(t *testing.T, a, b *siptest.UA) *call {
	t.Helper()
	inv := a.NewRequest("INVITE", e.uri(nameOf(e, b)))
	inv.Body = sdp(a.Client)
	inv = authRequest(t, a, inv)
	in := b.ExpectRequest("INVITE")
	b.Reply(in, 100, "")
	b.Reply(in, 180, "")
	bOK := b.Reply(in, 200, "")
	ok, prov := a.ExpectFinalAll(inv)
	siptest.AssertStatus(t, ok, 200, "OK")
	dlg := a.DialogFrom(inv, ok)
	a.Send(dlg.ACK())
	ack := b.ExpectRequest("ACK")
	e.fromProxy(t, ack, a.Proto, b.Contact())
	return &call{inv: inv, in: in, ok: ok, bOK: bOK, dlg: dlg, prov: prov}
}

// nameOf maps a UA back to its subscriber name.
func nameOf(e *env, u *siptest.UA) string {
	for name, user := range e.users {
		if user == u.User {
			return name
		}
	}
	return u.User
}

// hangup: A sends BYE, B answers 200.
func (e *env) hangup(t *testing.T, a, b *siptest.UA, c *call) {
	t.Helper()
	bye := c.dlg.Request("BYE")
	a.Send(bye)
	in := b.ExpectRequest("BYE")
	e.fromProxy(t, in, a.Proto, b.Contact())
	b.Reply(in, 200, "")
	siptest.AssertStatus(t, a.ExpectFinal(bye), 200, "OK")
}

// TestCall: calls between registered subscribers through the proxy, and
// the other outcomes of an INVITE in the script.
func TestCall(t *testing.T) {
	e := startEnv(t)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Run("answered", func(t *testing.T) {
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				c := e.establish(t, a, b)

				// the INVITE at B: located (R-URI = B's contact), record-
				// routed, credentials consumed, Max-Forwards decremented
				if got := c.in.Recipient.String(); got != b.Contact() {
					t.Errorf("INVITE R-URI at B %q, want %q", got, b.Contact())
				}
				siptest.AssertHeader(t, c.in, "Record-Route", e.recordRoute(proto))
				siptest.AssertNoHeader(t, c.in, "Proxy-Authorization")
				siptest.AssertHeader(t, c.in, "Max-Forwards", "69")
				if c.in.Body() == nil || string(c.in.Body()) != c.inv.Body {
					t.Errorf("SDP changed on the way:\n%s", c.in.Body())
				}
				// what A saw: 100 (tm's), 180 and the 200 with Record-Route
				var codes []int
				for _, p := range c.prov {
					codes = append(codes, p.StatusCode)
				}
				if len(codes) != 2 || codes[0] != 100 || codes[1] != 180 {
					t.Errorf("provisionals at A %v, want [100 180]", codes)
				}
				siptest.AssertHeader(t, c.ok, "Record-Route", e.recordRoute(proto))
				siptest.AssertMatches(t, c.ok, c.inv.Sent())
				if got := siptest.HeaderURI(mustHeader(t, c.ok, "Contact")); got != b.Contact() {
					t.Errorf("200 Contact %q, want %q", got, b.Contact())
				}
				e.hangup(t, a, b, c)
				a.ExpectNoMore(quiet)
				b.ExpectNoMore(50 * time.Millisecond)
			})
			t.Run("callee-requests-in-dialog", func(t *testing.T) {
				// B → A within the dialog: loose_route; NOTIFY gets a
				// Record-Route (RFC 6665), BYE is accounted.
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				c := e.establish(t, a, b)
				bd := b.DialogAsUAS(c.in, c.bOK)
				notify := bd.Request("NOTIFY")
				notify.Headers = append(notify.Headers, "Event: dialog", "Subscription-State: active")
				b.Send(notify)
				in := a.ExpectRequest("NOTIFY")
				e.fromProxy(t, in, proto, a.Contact())
				siptest.AssertHeader(t, in, "Record-Route", e.recordRoute(proto))
				a.Reply(in, 200, "")
				siptest.AssertStatus(t, b.ExpectFinal(notify), 200, "OK")

				bye := bd.Request("BYE")
				b.Send(bye)
				in = a.ExpectRequest("BYE")
				e.fromProxy(t, in, proto, a.Contact())
				siptest.AssertNoHeader(t, in, "Record-Route")
				a.Reply(in, 200, "")
				siptest.AssertStatus(t, b.ExpectFinal(bye), 200, "OK")
				a.ExpectNoMore(quiet)
				b.ExpectNoMore(50 * time.Millisecond)
			})
			t.Run("cancel-while-ringing", func(t *testing.T) {
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				inv := a.NewRequest("INVITE", e.uri("bob"))
				inv.Body = sdp(a.Client)
				inv = authRequest(t, a, inv)
				in := b.ExpectRequest("INVITE")
				b.Reply(in, 180, "")
				if r := a.ExpectResponse(inv); r.StatusCode != 100 {
					t.Fatalf("first reply %d, want tm's 100", r.StatusCode)
				}
				siptest.AssertStatus(t, a.ExpectResponse(inv), 180, "Ringing")

				cancel := inv.Cancel()
				a.Send(cancel)
				siptest.AssertStatus(t, a.ExpectFinal(cancel), 200, "")
				inCancel := b.ExpectRequest("CANCEL")
				if got, want := topBranch(inCancel), topBranch(in); got != want {
					t.Errorf("CANCEL branch %q at B, want the INVITE's %q", got, want)
				}
				if inCancel.Recipient.String() != in.Recipient.String() {
					t.Errorf("CANCEL R-URI %s, INVITE R-URI %s", inCancel.Recipient.String(), in.Recipient.String())
				}
				b.Reply(inCancel, 200, "")
				b.Reply(in, 487, "")
				res := a.ExpectFinal(inv)
				siptest.AssertStatus(t, res, 487, "Request Terminated")
				a.Send(inv.ACKFor(res))
				// tm's own ACK of the 487 (hop by hop), not A's
				ack := b.ExpectRequest("ACK")
				if topBranch(ack) != topBranch(in) {
					t.Errorf("ACK of the 487 has branch %q, want the INVITE's %q", topBranch(ack), topBranch(in))
				}
				a.ExpectNoMore(quiet)
				b.ExpectNoMore(50 * time.Millisecond)
			})
			t.Run("invite-retransmission", func(t *testing.T) {
				// t_precheck_trans / t_check_trans: the same INVITE again
				// (same branch) is absorbed; the last reply is resent
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				inv := authRequest(t, a, a.NewRequest("INVITE", e.uri("bob")))
				in := b.ExpectRequest("INVITE")
				b.Reply(in, 180, "")
				a.ExpectResponse(inv) // 100
				siptest.AssertStatus(t, a.ExpectResponse(inv), 180, "Ringing")
				a.Send(inv) // a retransmission
				siptest.AssertStatus(t, a.ExpectResponse(inv), 180, "Ringing")
				b.ExpectNoMore(quiet) // not forwarded again
				b.Reply(in, 486, "")
				res := a.ExpectFinal(inv)
				siptest.AssertStatus(t, res, 486, "Busy Here")
				a.Send(inv.ACKFor(res))
				b.ExpectRequest("ACK")
				a.ExpectNoMore(quiet)
			})
			t.Run("subscribe-record-routed", func(t *testing.T) {
				// is_method_in("IS"): SUBSCRIBE is record-routed like INVITE
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				sub := a.NewRequest("SUBSCRIBE", e.uri("bob"))
				sub.Headers = append(sub.Headers, "Event: presence", "Expires: 60")
				sub = authRequest(t, a, sub)
				in := b.ExpectRequest("SUBSCRIBE")
				e.fromProxy(t, in, proto, b.Contact())
				siptest.AssertHeader(t, in, "Record-Route", e.recordRoute(proto))
				b.Reply(in, 200, "", "Expires: 60")
				ok := a.ExpectFinal(sub)
				siptest.AssertStatus(t, ok, 200, "OK")
				siptest.AssertHeader(t, ok, "Record-Route", e.recordRoute(proto))
				a.ExpectNoMore(quiet)
			})
			t.Run("malformed-reply-dropped", func(t *testing.T) {
				// ksr_reply_route: sanity_check(17604, 6) fails on a reply
				// with a duplicated Call-ID (check 4): the script logs it
				// and calls set_drop(), nothing goes upstream; B's next,
				// well-formed reply does
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				inv := authRequest(t, a, a.NewRequest("INVITE", e.uri("bob")))
				in := b.ExpectRequest("INVITE")
				bad := sip.NewResponseFromRequest(in, 180, "Ringing", nil)
				bad.AppendHeader(sip.NewHeader("Call-ID", in.CallID().Value()))
				if err := b.SendRaw([]byte(bad.String())); err != nil {
					t.Fatal(err)
				}
				e.logs.WaitFor(t, "Malformed SIP response from "+b.Local(), siptest.All(
					siptest.AtLevel("error"), siptest.MessageContains("Malformed SIP response from "+b.Local())))
				a.ExpectResponse(inv) // 100
				a.ExpectNoMore(quiet)
				b.Reply(in, 486, "")
				res2 := a.ExpectFinal(inv)
				siptest.AssertStatus(t, res2, 486, "Busy Here")
				a.Send(inv.ACKFor(res2))
				b.ExpectRequest("ACK")
			})
			for _, code := range []int{486, 404, 603} {
				t.Run("callee-answers-"+itoa(code), func(t *testing.T) {
					// failure route (ksr_failure_manage); tm ACKs B, A's
					// ACK stays at the proxy
					a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
					e.register(t, a, b)
					inv := a.NewRequest("INVITE", e.uri("bob"))
					inv = authRequest(t, a, inv)
					in := b.ExpectRequest("INVITE")
					b.Reply(in, code, "")
					res := a.ExpectFinal(inv)
					siptest.AssertStatus(t, res, code, "")
					a.Send(inv.ACKFor(res))
					ack := b.ExpectRequest("ACK")
					if topBranch(ack) != topBranch(in) {
						t.Errorf("ACK branch %q, want the INVITE's %q", topBranch(ack), topBranch(in))
					}
					a.ExpectNoMore(quiet)
					b.ExpectNoMore(50 * time.Millisecond)
				})
			}
			t.Run("unregistered-user-404", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				inv := authRequest(t, a, a.NewRequest("INVITE", e.uri("carol")))
				res := a.ExpectFinal(inv)
				siptest.AssertStatus(t, res, 404, "Not Found")
				a.Send(inv.ACKFor(res))
				a.ExpectNoMore(quiet)
			})
			t.Run("no-contact-accepts-method-405", func(t *testing.T) {
				// registrar method_filtering 1: dave's only contact allows
				// INVITE, ACK, BYE and CANCEL; lookup returns -2
				a, d := e.ua(t, proto, "alice"), e.ua(t, proto, "dave")
				r := d.RegisterRequest(600)
				r.Headers = append(r.Headers, "Allow: INVITE, ACK, BYE, CANCEL")
				d.Send(r)
				r = d.Authorize(r, d.ExpectFinal(r))
				d.Send(r)
				siptest.AssertStatus(t, d.ExpectFinal(r), 200, "OK")
				t.Cleanup(func() { _ = e.p.Mods.Usrloc.Remove(d.User) })
				msg := a.NewRequest("MESSAGE", e.uri("dave"))
				msg.ContentType, msg.Body = "text/plain", "hi"
				msg = authRequest(t, a, msg)
				siptest.AssertStatus(t, a.ExpectFinal(msg), 405, "Method Not Allowed")
				d.ExpectNoMore(quiet)
			})
			t.Run("ruri-without-user-484", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				inv := authRequest(t, a, a.NewRequest("INVITE", "sip:"+domain))
				res := a.ExpectFinal(inv)
				siptest.AssertStatus(t, res, 484, "Address Incomplete")
				a.Send(inv.ACKFor(res))
				a.ExpectNoMore(quiet)
			})
			t.Run("foreign-to-foreign-403", func(t *testing.T) {
				m := siptest.NewUA(t, proto, e.addr[proto], "mallory", "", "example.com", siptest.WithTimeout(step))
				inv := m.NewRequest("INVITE", "sip:victim@example.org")
				m.Send(inv)
				res := m.ExpectFinal(inv)
				siptest.AssertStatus(t, res, 403, "Not relaying")
				m.Send(inv.ACKFor(res))
				m.ExpectNoMore(quiet)
			})
			t.Run("local-user-to-foreign-domain", func(t *testing.T) {
				// ksr_route_sipout: an authenticated subscriber reaches a
				// domain that is not the proxy's (another port); the
				// request is relayed with P-Hint: outbound
				a, x := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				target := "sip:someone@" + x.Local() + ";transport=" + proto
				msg := a.NewRequest("MESSAGE", target)
				msg.ContentType, msg.Body = "text/plain", "hello"
				msg = authRequest(t, a, msg)
				in := x.ExpectRequest("MESSAGE")
				e.fromProxy(t, in, proto, target)
				siptest.AssertHeader(t, in, "P-Hint", "outbound")
				siptest.AssertNoHeader(t, in, "Record-Route") // only INVITE and SUBSCRIBE
				siptest.AssertNoHeader(t, in, "Proxy-Authorization")
				x.Reply(in, 202, "Accepted")
				siptest.AssertStatus(t, a.ExpectFinal(msg), 202, "Accepted")
			})
			t.Run("relay-failure", func(t *testing.T) {
				// ksr_route_relay: t_relay() < 0 → sl_reply_error(). Only a
				// TCP send fails at once (connection refused); a UDP send
				// cannot fail, that branch would time out after fr_timer.
				if proto != "tcp" {
					t.Skip("a UDP send does not fail: no t_relay error to answer")
				}
				a := e.ua(t, proto, "alice")
				closed, err := siptest.FreePort(siptest.ProxyIP)
				if err != nil {
					t.Fatal(err)
				}
				inv := authRequest(t, a, a.NewRequest("INVITE", "sip:nobody@127.0.0.1:"+itoa(closed)+";transport=tcp"))
				// Two final replies, as Kamailio 5.6.3 sends them: the
				// script's stateless sl_reply_error(), then tm's delayed
				// error reply of the transaction t_relay() created
				// (TM_DELAYED_REPLY). Kamailio's first one is "500 I'm
				// terribly sorry, server error occurred (1/SL)": KEMI
				// does not keep t_relay's error for sl_reply_error there;
				// kemigo does (sl README).
				res := a.ExpectFinal(inv)
				siptest.AssertStatus(t, res, 477, "Unfortunately error on sending to next hop occurred (477/SL)")
				siptest.AssertStatus(t, a.ExpectFinal(inv), 477, "Unfortunately error on sending to next hop occurred (477/TM)")
				a.Send(inv.ACKFor(res))
				a.ExpectNoMore(quiet)
			})
			t.Run("trusted-source-skips-auth", func(t *testing.T) {
				// permissions: 127.0.0.4 is in the address table, group 1
				gw := siptest.NewUA(t, proto, e.addr[proto], "gw", "", trustedIP,
					siptest.WithLocalIP(trustedIP), siptest.WithTimeout(step))
				b := e.ua(t, proto, "bob")
				e.register(t, b)
				inv := gw.NewRequest("INVITE", e.uri("bob"))
				inv.Body = sdp(gw.Client)
				gw.Send(inv)
				in := b.ExpectRequest("INVITE")
				siptest.AssertHeader(t, in, "Record-Route", e.recordRoute(proto))
				b.Reply(in, 180, "")
				b.Reply(in, 200, "")
				ok, prov := gw.ExpectFinalAll(inv)
				for _, p := range prov {
					if p.StatusCode == 407 {
						t.Errorf("trusted source challenged")
					}
				}
				siptest.AssertStatus(t, ok, 200, "OK")
				dlg := gw.DialogFrom(inv, ok)
				gw.Send(dlg.ACK())
				e.fromProxy(t, b.ExpectRequest("ACK"), proto, b.Contact())
				bye := dlg.Request("BYE")
				gw.Send(bye)
				inBye := b.ExpectRequest("BYE")
				b.Reply(inBye, 200, "")
				siptest.AssertStatus(t, gw.ExpectFinal(bye), 200, "OK")
				gw.ExpectNoMore(quiet)
			})
		})
	}
}

func mustHeader(t *testing.T, m sip.Message, name string) string {
	t.Helper()
	v, ok := siptest.Header(m, name)
	if !ok {
		t.Fatalf("no %s header in\n%s", name, m)
	}
	return v
}

func topBranch(req *sip.Request) string {
	if v := req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		return b
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// sdp is a minimal audio offer from c's address.
func sdp(c *siptest.Client) string {
	return "v=0\r\no=- 1 1 IN IP4 " + c.LocalIP + "\r\ns=-\r\nc=IN IP4 " + c.LocalIP +
		"\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
}
