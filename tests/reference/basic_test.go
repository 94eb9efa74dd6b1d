package reference

import (
	"strings"
	"testing"

	"github.com/kemigo/kemigo/internal/siptest"
)

// TestRequestChecks covers ksr_route_reqinit (keep-alive, scanners,
// Max-Forwards, sanity) and the ends of ksr_route_withindlg and of the
// CANCEL branch that answer 404 or nothing.
func TestRequestChecks(t *testing.T) {
	e := startEnv(t)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			server := "sip:" + e.addr[proto]
			t.Run("options-keepalive", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				r := a.NewRequest("OPTIONS", server)
				a.Send(r)
				res := a.ExpectFinal(r)
				siptest.AssertStatus(t, res, 200, "Keepalive")
				siptest.AssertMatches(t, res, r.Sent())
				a.ExpectNoMore(quiet)
			})
			for _, ua := range []string{"friendly-scanner", "sipvicious", "sipcli/v1.8", "VaxSIPUserAgent scanner"} {
				t.Run("scanner/"+ua, func(t *testing.T) {
					a := e.ua(t, proto, "alice")
					r := a.NewRequest("INVITE", e.uri("bob"))
					r.Headers = append(r.Headers, "User-Agent: "+ua)
					a.Send(r)
					siptest.AssertStatus(t, a.ExpectFinal(r), 200, "Processed")
					a.ExpectNoMore(quiet)
				})
			}
			t.Run("max-forwards-0", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				r := a.NewRequest("OPTIONS", server)
				r.MaxForwards = -1
				r.Headers = append(r.Headers, "Max-Forwards: 0")
				a.Send(r)
				siptest.AssertStatus(t, a.ExpectFinal(r), 483, "Too Many Hops")
				a.ExpectNoMore(quiet)
			})
			t.Run("sanity-failure-dropped", func(t *testing.T) {
				// sanity_check(17895, 7) check 4 (a duplicated Call-ID) fails
				// without a reply in 5.6.3; the script logs and drops.
				a := e.ua(t, proto, "alice")
				r := a.NewRequest("OPTIONS", e.uri("bob"))
				r.Headers = append(r.Headers, "Call-ID: "+r.CallID)
				a.Send(r)
				malformedLogged(t, e, a)
				a.ExpectNoMore(quiet)
			})
			t.Run("sanity-failure-400", func(t *testing.T) {
				// check 32 (CSeq method ≠ request method): sanity answers
				// 400 itself, then the script logs and stops.
				a := e.ua(t, proto, "alice")
				r := a.NewRequest("OPTIONS", e.uri("bob"))
				text := strings.Replace(a.Text(r), "CSeq: 1 OPTIONS", "CSeq: 1 INFO", 1)
				if err := a.SendRaw([]byte(text)); err != nil {
					t.Fatal(err)
				}
				asSent := r.Clone()
				asSent.Method = "INFO" // the CSeq of the reply
				siptest.AssertStatus(t, a.ExpectFinal(asSent), 400, "CSeq method does not match request method")
				malformedLogged(t, e, a)
				a.ExpectNoMore(quiet)
			})
			t.Run("in-dialog-without-route-404", func(t *testing.T) {
				// To tag, no Route: loose_route fails, not an ACK → 404 Not here
				a := e.ua(t, proto, "alice")
				r := a.NewRequest("INFO", e.uri("bob"))
				r.ToTag = "no-such-dialog"
				a.Send(r)
				siptest.AssertStatus(t, a.ExpectFinal(r), 404, "Not here")
				a.ExpectNoMore(quiet)
			})
			t.Run("ack-without-transaction-dropped", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				r := a.NewRequest("ACK", e.uri("bob"))
				r.ToTag = "no-such-dialog"
				a.Send(r)
				a.ExpectNoMore(quiet)
			})
			t.Run("cancel-without-transaction-dropped", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				a.Send(a.NewRequest("INVITE", e.uri("bob")).Cancel())
				a.ExpectNoMore(quiet)
			})
		})
	}
}

// malformedLogged waits for the script's "Malformed SIP message from
// <a's address>" error line.
func malformedLogged(t *testing.T, e *env, a *siptest.UA) {
	t.Helper()
	e.logs.WaitFor(t, "Malformed SIP message from "+a.Local(), siptest.All(
		siptest.AtLevel("error"), siptest.MessageContains("Malformed SIP message from "+a.Local())))
}
