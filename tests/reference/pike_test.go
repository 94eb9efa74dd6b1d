package reference

import (
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/internal/siptest"
)

// TestPikeFlood: a source that is not the proxy itself sends a burst of
// keep-alive OPTIONS. pike (sampling_time_unit 2, reqs_density_per_unit
// 16) blocks it; the script logs "ALERT: pike blocking ..." and puts the
// address in the ipban htable; while it is there every request from it is
// dropped before pike is asked again. Once the ban expired (autoexpire 2 s
// in the test, 300 in the cfg) and pike forgot the burst, it is answered
// again.
func TestPikeFlood(t *testing.T) {
	const burst = 40
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			// a proxy of its own: pike's tree starts empty
			e := startEnv(t)
			ip := "127.0.0.2"
			f := siptest.NewUA(t, proto, e.addr[proto], "flood", "", ip, siptest.WithLocalIP(ip), siptest.WithTimeout(step))
			keepalive := func() *siptest.Req { return f.NewRequest("OPTIONS", "sip:"+e.addr[proto]) }

			for i := 0; i < burst; i++ {
				f.Send(keepalive())
			}
			answered := 0
			for {
				r, err := f.Recv(quiet)
				if errors.Is(err, siptest.ErrTimeout) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if res, ok := r.Msg.(*sip.Response); !ok || res.StatusCode != 200 || res.Reason != "Keepalive" {
					t.Fatalf("unexpected:\n%s", r.Raw)
				}
				answered++
			}
			// README of pike: with density 16 an IPv4 address gets 21
			// requests through (Kamailio: "40 OPTIONS got 21 replies")
			if answered < 16 || answered >= burst {
				t.Errorf("%d of %d keep-alives answered, want pike to stop the burst after about 21", answered, burst)
			}
			t.Logf("%d of %d keep-alives answered", answered, burst)
			e.logs.WaitFor(t, "pike's own blocking line", siptest.All(
				siptest.MessageContains("pike blocking ip "+ip)))
			e.logs.WaitFor(t, "the script's ALERT", siptest.All(siptest.AtLevel("error"),
				siptest.MessageContains("ALERT: pike blocking OPTIONS from sip:flood@"+ip+" (IP:"+f.Local()+")")))
			if v, err := e.p.Mods.HTable.Get("ipban", ip); err != nil || v.IsNull() {
				t.Fatalf("$sht(ipban=>%s) = %v, %v: want the ban", ip, v, err)
			}

			// banned: dropped without asking pike
			r := keepalive()
			f.Send(r)
			e.logs.WaitFor(t, "request from blocked IP", siptest.All(siptest.FieldIs("callid", r.CallID),
				siptest.MessageContains("request from blocked IP - OPTIONS from sip:flood@"+ip+" (IP:"+f.Local()+")")))
			f.ExpectNoMore(quiet)

			// the ban expires (autoexpire), then pike unblocks the address
			// after a sampling window without requests
			waitUntil(t, "ipban entry of "+ip+" expired", func() bool {
				v, err := e.p.Mods.HTable.Get("ipban", ip)
				return err == nil && v.IsNull()
			})
			waitUntil(t, "pike unblocked "+ip, func() bool { return !e.p.Mods.Pike.IsBlocked(ip) })
			r = keepalive()
			f.Send(r)
			siptest.AssertStatus(t, f.ExpectFinal(r), 200, "Keepalive")
			f.ExpectNoMore(quiet)
		})
	}
}

// waitUntil polls cond for up to step.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(step)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s", what, step)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
