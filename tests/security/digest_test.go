package security

// Digest authentication through the wire, with the reference script: an
// INVITE from a local subscriber (From alice@127.0.0.1) to a local user is
// challenged (407); with good credentials it passes auth_check and reaches
// usrloc's lookup (404 Not Found: bob is not registered). Any refused
// credentials are challenged again (the script answers every failure of
// auth_check with auth_challenge), so "refused" is a second 407.

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/tests/harness"
)

func newAlice(t *testing.T, s *harness.SUT, proto string) *siptest.UA {
	return siptest.NewUA(t, proto, s.Addrs[proto], harness.User, harness.Password, harness.Domain)
}

// challenge sends a new INVITE to bob and returns the 407.
func challenge(t *testing.T, ua *siptest.UA, proxy string) (*siptest.Req, *sip.Response) {
	t.Helper()
	inv := ua.NewRequest("INVITE", "sip:bob@"+proxy)
	ua.Send(inv)
	res := ua.ExpectFinal(inv)
	if res.StatusCode != 407 {
		t.Fatalf("INVITE without credentials: %d %s", res.StatusCode, res.Reason)
	}
	ua.Send(inv.ACKFor(res))
	return inv, res
}

// send sends r and returns its final reply, ACKed when it is a non-2xx to
// an INVITE.
func send(t *testing.T, ua *siptest.UA, r *siptest.Req) *sip.Response {
	t.Helper()
	ua.Send(r)
	res := ua.ExpectFinal(r)
	if r.Method == "INVITE" && res.StatusCode >= 300 {
		ua.Send(r.ACKFor(res))
	}
	return res
}

// authHeader returns r's credentials header line.
func authHeader(r *siptest.Req) string {
	for _, h := range r.Headers {
		if strings.HasPrefix(h, "Proxy-Authorization:") || strings.HasPrefix(h, "Authorization:") {
			return h
		}
	}
	return ""
}

// again is the next request of r's call carrying r's credentials as they
// were (a replay).
func again(r *siptest.Req) *siptest.Req {
	n := r.Next()
	n.Headers = append(n.Headers, authHeader(r))
	return n
}

func want(t *testing.T, what string, res *sip.Response, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Errorf("%s: got %d %s, want %d", what, res.StatusCode, res.Reason, code)
	}
}

// TestDigest: good credentials pass; wrong password, forged nonce, a
// nonce replayed with the same nonce-count, and an expired nonce are
// refused. [auth] nonce_expire is 2 s so the stale case stays short.
func TestDigest(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, "\n[auth]\nnonce_expire = 2\n"), harness.Options{})
	t.Run("each", func(t *testing.T) {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(proto, func(t *testing.T) {
				t.Parallel()
				digestCases(t, s, proto)
			})
		}
	})
	s.WaitIdle(t, 3*time.Second)
}

func digestCases(t *testing.T, s *harness.SUT, proto string) {
	ua := newAlice(t, s, proto)
	proxy := s.Addrs[proto]

	inv, ch := challenge(t, ua, proxy)
	ok := ua.Authorize(inv, ch)
	want(t, "good credentials", send(t, ua, ok), 404)

	inv, ch = challenge(t, ua, proxy)
	want(t, "wrong password", send(t, ua, ua.Authorize(inv, ch, func(c *siptest.Credentials) { c.Password = "guess" })), 407)

	// forged nonce: one character changed, the response computed
	// for it (a client that made its own nonce)
	inv, ch = challenge(t, ua, proxy)
	forged := forgeNonce(t, ch)
	want(t, "forged nonce", send(t, ua, ua.Authorize(inv, forged)), 407)
	want(t, "a nonce of the right length but never issued", send(t, ua, ua.Authorize(inv, withNonce(t, ch, strings.Repeat("A", len(nonceOf(t, ch)))))), 407)

	// replay with qop=auth: the same nonce-count twice
	inv, ch = challenge(t, ua, proxy)
	q := ua.Authorize(inv, ch, func(c *siptest.Credentials) { c.QOP, c.NC = "auth", 1 })
	want(t, "qop=auth nc=1", send(t, ua, q), 404)
	want(t, "qop=auth nc=1 replayed", send(t, ua, again(q)), 407)
	q3 := ua.Authorize(inv, ch, func(c *siptest.Credentials) { c.QOP, c.NC = "auth", 3 })
	want(t, "qop=auth nc=3 (higher: accepted)", send(t, ua, q3), 404)

	// stale: the nonce expired (nonce_expire 2 s, one-second clock)
	inv, ch = challenge(t, ua, proxy)
	time.Sleep(3100 * time.Millisecond)
	want(t, "expired nonce", send(t, ua, ua.Authorize(inv, ch)), 407)
	inv, ch = challenge(t, ua, proxy)
	want(t, "fresh nonce after the stale one", send(t, ua, ua.Authorize(inv, ch)), 404)
}

// TestDigestReplayNoQOP: the reference script challenges without qop, so
// credentials carry no nonce-count, and a replay within nonce_expire
// passes unless [auth] one_time_nonce = 1 (as in Kamailio, where both
// nonce_count and one_time_nonce are off by default). With it, the
// second use of a nonce is refused.
func TestDigestReplayNoQOP(t *testing.T) {
	harness.NeedScript(t)
	for _, otn := range []bool{false, true} {
		extra, wantReplay := "", 404
		if otn {
			extra, wantReplay = "\n[auth]\none_time_nonce = 1\n", 407
		}
		func() {
			s := harness.Start(t, harness.BasicConfig(t, extra), harness.Options{})
			for _, proto := range []string{"udp", "tcp"} {
				ua := newAlice(t, s, proto)
				inv, ch := challenge(t, ua, s.Addrs[proto])
				ok := ua.Authorize(inv, ch)
				want(t, proto+": first use", send(t, ua, ok), 404)
				want(t, proto+": replay (one_time_nonce="+map[bool]string{false: "0", true: "1"}[otn]+")", send(t, ua, again(ok)), wantReplay)
				// a fresh challenge always works
				inv, ch = challenge(t, ua, s.Addrs[proto])
				want(t, proto+": fresh nonce", send(t, ua, ua.Authorize(inv, ch)), 404)
			}
			s.WaitIdle(t, 3*time.Second)
		}()
	}
}

func nonceOf(t *testing.T, ch *sip.Response) string {
	t.Helper()
	c, err := siptest.ChallengeOf(ch)
	if err != nil {
		t.Fatal(err)
	}
	return c.Nonce
}

// withNonce returns a copy of the 407 ch whose challenge carries nonce.
func withNonce(t *testing.T, ch *sip.Response, nonce string) *sip.Response {
	t.Helper()
	old := nonceOf(t, ch)
	out := ch.Clone()
	for _, h := range out.GetHeaders("Proxy-Authenticate") {
		v := strings.Replace(h.Value(), old, nonce, 1)
		out.RemoveHeader("Proxy-Authenticate")
		out.AppendHeader(sip.NewHeader("Proxy-Authenticate", v))
	}
	return out
}

// forgeNonce changes one character in the middle of the nonce (its MAC or
// its fields, base64url).
func forgeNonce(t *testing.T, ch *sip.Response) *sip.Response {
	n := []byte(nonceOf(t, ch))
	i := len(n) / 2
	if n[i] == 'A' {
		n[i] = 'B'
	} else {
		n[i] = 'A'
	}
	return withNonce(t, ch, string(n))
}
