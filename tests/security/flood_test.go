package security

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/tests/harness"
)

// TestPikeFlood: four sources (127.0.0.2 to 127.0.0.5) each send a burst
// of keep-alive OPTIONS over UDP, at the same time. With the example configuration's pike
// settings (16 requests per 2 s window) each source gets a few dozen
// answers (pike lets about 21 through from a fresh IPv4 address), is then
// reported ("ALERT: pike blocking"), banned in $sht(ipban=>$si) and
// dropped without answer; a source that did not flood (127.0.0.6), and the
// proxy's own address, are still answered. The proxy keeps working: its
// workers drain the burst, and no transaction is left.
func TestPikeFlood(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, ""), harness.Options{})
	// 60 requests a source, one every 2 ms: far over the density of 16 per
	// window, inside one 2 s window, and slow enough that the kernel does
	// not drop datagrams on the proxy's socket (its receive buffer holds
	// about 160 of them by default): the test is about pike, not about the
	// kernel.
	const burst = 60
	srcs := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	clients := map[string]*siptest.Client{}
	for _, ip := range srcs {
		clients[ip] = siptest.Dial(t, "udp", s.Addrs["udp"], siptest.WithLocalIP(ip))
	}
	var wg sync.WaitGroup
	for _, ip := range srcs {
		wg.Add(1)
		go func(c *siptest.Client) {
			defer wg.Done()
			for i := 0; i < burst; i++ {
				c.Send(siptest.Options)
				time.Sleep(2 * time.Millisecond)
			}
		}(clients[ip])
	}
	wg.Wait()
	// count the answers until each source has had none for a second
	var mu sync.Mutex
	answered := map[string]int{}
	for _, ip := range srcs {
		wg.Add(1)
		go func(ip string, c *siptest.Client) {
			defer wg.Done()
			for {
				r, err := c.Recv(time.Second)
				if err != nil {
					return
				}
				if res, ok := r.Msg.(*sip.Response); ok && res.StatusCode == 200 {
					mu.Lock()
					answered[ip]++
					mu.Unlock()
				}
			}
		}(ip, clients[ip])
	}
	wg.Wait()
	for _, ip := range srcs {
		n := answered[ip]
		t.Logf("%s: %d of %d answered", ip, n, burst)
		if n == 0 || n > 3*16+16 {
			t.Errorf("%s: %d of %d answered; pike lets about 21 through (16 per window)", ip, n, burst)
		}
		s.Logs.WaitFor(t, "pike alert for "+ip, siptest.All(siptest.AtLevel("error"),
			siptest.MessageContains(fmt.Sprintf("ALERT: pike blocking OPTIONS from sip:siptest@%s (IP:%s:", ip, ip))))
		if v, err := s.P.Mods.HTable.Get("ipban", ip); err != nil || v.IsNull() {
			t.Errorf("%s not in ipban: %v %v", ip, v, err)
		}
		// banned: no answer any more
		clients[ip].Send(siptest.Options)
		clients[ip].ExpectNone(300 * time.Millisecond)
	}
	for _, ip := range []string{"127.0.0.6", "127.0.0.1"} {
		c := siptest.Dial(t, "udp", s.Addrs["udp"], siptest.WithLocalIP(ip))
		_, res := c.Exchange(siptest.Options)
		siptest.AssertStatus(t, res, 200, "Keepalive")
	}
	s.WaitIdle(t, 3*time.Second)
	if n := s.P.Overloaded.Load(); n != 0 {
		t.Logf("%d requests shed by overload (503)", n)
	}
}
