package reference

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/internal/siptest"
)

// TestRegister covers ksr_route_auth for REGISTER (auth_check on the
// subscriber table, auth_challenge) and ksr_route_registrar (save into
// usrloc, written through to the location table).
func TestRegister(t *testing.T) {
	e := startEnv(t)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Run("digest-401-then-200", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				r := a.RegisterRequest(600)
				a.Send(r)
				ch := a.ExpectFinal(r)
				siptest.AssertStatus(t, ch, 401, "Unauthorized")
				siptest.AssertMatches(t, ch, r.Sent())
				c, err := siptest.ChallengeOf(ch)
				if err != nil {
					t.Fatal(err)
				}
				if c.Realm != domain || c.Header != "WWW-Authenticate" || len(c.QOP) != 0 || c.Stale {
					t.Errorf("challenge %+v: want realm %q in WWW-Authenticate, no qop (auth_challenge flags 0), not stale", c, domain)
				}
				r = a.Authorize(r, ch)
				a.Send(r)
				ok := a.ExpectFinal(r)
				siptest.AssertStatus(t, ok, 200, "OK")
				siptest.AssertMatches(t, ok, r.Sent())
				assertBinding(t, ok, a.Contact(), 600)
				assertRegistered(t, e, a, 600)
				a.ExpectNoMore(quiet)
			})
			t.Run("max-expires", func(t *testing.T) {
				// registrar max_expires 3600
				a := e.ua(t, proto, "alice")
				_, ok := a.Register(7200)
				assertBinding(t, ok, a.Contact(), 3600)
				assertRegistered(t, e, a, 3600)
			})
			t.Run("wrong-password-401-again", func(t *testing.T) {
				c := e.ua(t, proto, "carol")
				r := c.RegisterRequest(600)
				c.Send(r)
				ch := c.ExpectFinal(r)
				siptest.AssertStatus(t, ch, 401, "Unauthorized")
				r = c.Authorize(r, ch, func(cr *siptest.Credentials) { cr.Password = "not-" + cr.Password })
				c.Send(r)
				again := c.ExpectFinal(r)
				siptest.AssertStatus(t, again, 401, "Unauthorized")
				if c1, c2 := mustChallenge(t, ch), mustChallenge(t, again); c1.Nonce == c2.Nonce {
					t.Errorf("the second 401 has the same nonce %q", c1.Nonce)
				}
				if got := e.p.Mods.Usrloc.Lookup(c.User); len(got) != 0 {
					t.Errorf("carol has contacts after a wrong password: %+v", got)
				}
				c.ExpectNoMore(quiet)
			})
			t.Run("unknown-user-401", func(t *testing.T) {
				m := siptest.NewUA(t, proto, e.addr[proto], "mallory", "guess", domain, siptest.WithTimeout(step))
				r := m.RegisterRequest(600)
				m.Send(r)
				ch := m.ExpectFinal(r)
				siptest.AssertStatus(t, ch, 401, "Unauthorized")
				r = m.Authorize(r, ch)
				m.Send(r)
				siptest.AssertStatus(t, m.ExpectFinal(r), 401, "Unauthorized")
			})
			t.Run("replayed-nonce-count-refused", func(t *testing.T) {
				// auth nonce_count (kemigo's default 1): credentials with a
				// qop carry nc, which must grow for one nonce. A replayed nc
				// is a stale nonce (-4) to auth_check, as in Kamailio; the
				// script answers it with a new challenge (flags 0: no
				// stale=true).
				a := e.ua(t, proto, "alice")
				r := a.RegisterRequest(600)
				a.Send(r)
				ch := a.ExpectFinal(r)
				siptest.AssertStatus(t, ch, 401, "Unauthorized")
				withNC := func(nc int) func(*siptest.Credentials) {
					return func(cr *siptest.Credentials) { cr.QOP, cr.NC, cr.CNonce = "auth", nc, "0a4f113b" }
				}
				r1 := a.Authorize(r, ch, withNC(1))
				a.Send(r1)
				siptest.AssertStatus(t, a.ExpectFinal(r1), 200, "OK")

				replay := r1.Next() // same Authorization: nonce, nc=00000001, cnonce, response
				replay.Headers = r1.Headers
				a.Send(replay)
				res := a.ExpectFinal(replay)
				siptest.AssertStatus(t, res, 401, "Unauthorized")
				if c := mustChallenge(t, res); c.Nonce == mustChallenge(t, ch).Nonce {
					t.Errorf("replay answered with the same nonce")
				}

				r3 := a.Authorize(replay, ch, withNC(2)) // the first nonce, nc=2: fine
				a.Send(r3)
				siptest.AssertStatus(t, a.ExpectFinal(r3), 200, "OK")
				a.ExpectNoMore(quiet)
			})
			t.Run("credentials-without-qop-reusable", func(t *testing.T) {
				// auth_challenge(..., 0) offers no qop, so RFC 2617 UAs send
				// no nc: with one_time_nonce 0 (the cfg's), the same
				// credentials are accepted again until the nonce expires.
				a := e.ua(t, proto, "alice")
				r := a.RegisterRequest(600)
				a.Send(r)
				r = a.Authorize(r, a.ExpectFinal(r))
				a.Send(r)
				siptest.AssertStatus(t, a.ExpectFinal(r), 200, "OK")
				again := r.Next()
				again.Headers = r.Headers
				a.Send(again)
				siptest.AssertStatus(t, a.ExpectFinal(again), 200, "OK")
			})
			t.Run("unregister", func(t *testing.T) {
				a := e.ua(t, proto, "alice")
				a.Register(600)
				assertRegistered(t, e, a, 600)
				r := a.RegisterRequest(0)
				a.Send(r)
				r = a.Authorize(r, a.ExpectFinal(r))
				a.Send(r)
				ok := a.ExpectFinal(r)
				siptest.AssertStatus(t, ok, 200, "OK")
				for _, c := range siptest.SplitHeaderValues(siptest.Headers(ok, "Contact")) {
					if siptest.HeaderURI(c) == a.Contact() {
						t.Errorf("200 still lists the removed contact: %s", c)
					}
				}
				if c := findContact(e, a); c != nil {
					t.Errorf("usrloc still has %s", c.URI)
				}
				e.waitCount(t, 0, "SELECT count(*) FROM location WHERE username = ? AND contact = ?", a.User, a.Contact())
			})
			t.Run("save-error", func(t *testing.T) {
				// registrar.save() < 0: "Contact: *" with an Expires other
				// than 0 is refused with 400 by save itself; the script
				// then calls sl_reply_error(), which sends a second final
				// reply: Kamailio 5.6.3 answers exactly so (checked with
				// its registrar and sl), P-Registrar-Error on both.
				a := e.ua(t, proto, "alice")
				r := a.RegisterRequest(600)
				r.Contact = "-"
				r.Headers = append(r.Headers, "Contact: *")
				a.Send(r)
				r = a.Authorize(r, a.ExpectFinal(r))
				a.Send(r)
				const why = "* used in contact and expires is not zero"
				res := a.ExpectFinal(r)
				siptest.AssertStatus(t, res, 400, "Bad Request")
				siptest.AssertHeader(t, res, "P-Registrar-Error", why)
				res = a.ExpectFinal(r)
				siptest.AssertStatus(t, res, 500, "I'm terribly sorry, server error occurred (1/SL)")
				siptest.AssertHeader(t, res, "P-Registrar-Error", why)
				a.ExpectNoMore(quiet)
			})
			t.Run("behind-nat", func(t *testing.T) {
				// A private Contact address: nat_uac_test(19) matches (1),
				// so fix_nated_register() stores the source address in
				// $avp(RECEIVED) (received_avp of nathelper and registrar),
				// and FLT_NATS makes the script set FLB_NATB and
				// FLB_NATSIPPING, saved as the contact's cflags.
				a := e.ua(t, proto, "alice")
				private := "sip:" + a.User + "@192.168.1.10:5060"
				if proto == "tcp" {
					private += ";transport=tcp"
				}
				r := a.RegisterRequest(600)
				r.Contact = private
				a.Send(r)
				r = a.Authorize(r, a.ExpectFinal(r))
				a.Send(r)
				ok := a.ExpectFinal(r)
				siptest.AssertStatus(t, ok, 200, "OK")
				received := "sip:" + a.Local()
				if proto == "tcp" {
					received += ";transport=tcp"
				}
				b := binding(ok, private)
				if !strings.Contains(b, `received="`+received+`"`) {
					t.Errorf("200 Contact %q: want received=%q", b, received)
				}
				var got *contactView
				for _, c := range e.p.Mods.Usrloc.Lookup(a.User) {
					if c.URI == private {
						got = &contactView{URI: c.URI, Received: c.Received, CFlags: c.CFlags}
					}
				}
				if got == nil {
					t.Fatalf("usrloc has no %s", private)
				}
				const natb, natsipping = 1 << 6, 1 << 7
				if got.Received != received || got.CFlags&(natb|natsipping) != natb|natsipping {
					t.Errorf("usrloc contact %+v: want received %s and cflags with bits 6 and 7", got, received)
				}
				e.waitCount(t, 1, "SELECT count(*) FROM location WHERE username = ? AND contact = ? AND received = ? AND keepalive = 1",
					a.User, private, received)
			})
		})
	}
}

type contactView struct {
	URI, Received string
	CFlags        uint32
}

func mustChallenge(t *testing.T, res *sip.Response) siptest.Challenge {
	t.Helper()
	c, err := siptest.ChallengeOf(res)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// binding returns the Contact value of the 200 for uri ("" when absent).
func binding(ok *sip.Response, uri string) string {
	for _, c := range siptest.SplitHeaderValues(siptest.Headers(ok, "Contact")) {
		if siptest.HeaderURI(c) == uri {
			return c
		}
	}
	return ""
}

// assertBinding checks that the 200 lists contact with ;expires=expires
// (one second less when the clock ticked in between).
func assertBinding(t *testing.T, ok *sip.Response, contact string, expires int) {
	t.Helper()
	b := binding(ok, contact)
	if b == "" {
		t.Errorf("200 OK does not list %s:\n%s", contact, ok)
		return
	}
	if !strings.Contains(b, ";expires="+strconv.Itoa(expires)) && !strings.Contains(b, ";expires="+strconv.Itoa(expires-1)) {
		t.Errorf("200 OK Contact %q: want ;expires=%d", b, expires)
	}
}

func findContact(e *env, a *siptest.UA) *contactView {
	for _, c := range e.p.Mods.Usrloc.Lookup(a.User) {
		if c.URI == a.Contact() {
			return &contactView{URI: c.URI, Received: c.Received, CFlags: c.CFlags}
		}
	}
	return nil
}

// assertRegistered checks the binding in usrloc (p.Mods.Usrloc.Lookup)
// and in the location table.
func assertRegistered(t *testing.T, e *env, a *siptest.UA, expires int) {
	t.Helper()
	var found bool
	now := time.Now().Unix()
	for _, c := range e.p.Mods.Usrloc.Lookup(a.User) {
		if c.URI != a.Contact() {
			continue
		}
		found = true
		if left := c.Expires - now; left < int64(expires)-2 || left > int64(expires) {
			t.Errorf("usrloc %s expires in %ds, want %d", c.URI, left, expires)
		}
		if want := proto(a) + ":" + e.addr[proto(a)]; c.Socket != want {
			t.Errorf("usrloc %s socket %q, want %q", c.URI, c.Socket, want)
		}
		if c.UserAgent != "kemigo-siptest-ua" {
			t.Errorf("usrloc %s user agent %q", c.URI, c.UserAgent)
		}
	}
	if !found {
		t.Errorf("usrloc has no contact %s for %s: %+v", a.Contact(), a.User, e.p.Mods.Usrloc.Lookup(a.User))
	}
	e.waitCount(t, 1, "SELECT count(*) FROM location WHERE username = ? AND contact = ?", a.User, a.Contact())
}

func proto(a *siptest.UA) string { return a.Proto }
