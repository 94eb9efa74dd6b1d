package pike

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}
func (f *fakeClock) Now() time.Time          { return time.Unix(0, f.ns.Load()) }
func (f *fakeClock) Advance(d time.Duration) { f.ns.Add(int64(d)) }

func newModule(t *testing.T, clk *fakeClock, density int, log zerolog.Logger) *Module {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ReqsDensityPerUnit = density
	cfg.RemoveLatency = 4
	m, err := New(cfg, WithClock(clk.Now), WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ctxFrom(ip string, log zerolog.Logger) *kemi.Ctx {
	msg := sipmsg.Faked()
	msg.SrcIP = ip
	return &kemi.Ctx{Msg: msg, Route: kemi.RouteRequest, Worker: kemi.NewWorkerState(0), Log: log, BranchIdx: -1}
}

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...string) int {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name == name {
			vs := make([]val.Value, len(args))
			for i, a := range args {
				vs[i] = val.OfStr(a)
			}
			if len(vs) != len(e.Params) {
				t.Fatalf("%s: %d args, want %d", name, len(vs), len(e.Params))
			}
			return int(e.Fn(c, vs).I)
		}
	}
	t.Fatalf("no export %s", name)
	return 0
}

// burst sends n requests and returns the results.
func burst(t *testing.T, m *Module, c *kemi.Ctx, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = call(t, m, c, "pike_check_req")
	}
	return out
}

func countOf(rs []int, v int) int {
	n := 0
	for _, r := range rs {
		if r == v {
			n++
		}
	}
	return n
}

func TestBurstBlocksThenUnblocks(t *testing.T) {
	cases := []struct {
		name    string
		ip      string
		density int
		allowed int // requests of a fresh burst that pass
	}{
		// density 16 (the example cfg): Kamailio answered 21 of 40 (SPEC §9.12)
		{"ipv4 density 16", "127.0.0.2", 16, 21},
		{"ipv4 density 30", "192.0.2.7", 30, 38},
		// 16 bytes: 3 hits on the first node, 15 splits, then 15 leaf hits
		{"ipv6 density 16", "2001:db8::1", 16, 3 + 15 + 15},
		{"mapped ipv4 counts as ipv4", "::ffff:192.0.2.8", 16, 21},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			var buf bytes.Buffer
			log := zerolog.New(&buf)
			m := newModule(t, clk, tc.density, zerolog.Nop())
			c := ctxFrom(tc.ip, log)
			rs := burst(t, m, c, tc.allowed+10)
			for i := 0; i < tc.allowed; i++ {
				if rs[i] != Allowed {
					t.Fatalf("request %d: %d, want 1 (results %v)", i+1, rs[i], rs)
				}
			}
			if rs[tc.allowed] != NewlyBlocked {
				t.Fatalf("request %d: %d, want -2 (results %v)", tc.allowed+1, rs[tc.allowed], rs)
			}
			for i := tc.allowed + 1; i < len(rs); i++ {
				if rs[i] != Blocked {
					t.Fatalf("request %d: %d, want -1", i+1, rs[i])
				}
			}
			if n := strings.Count(buf.String(), "pike blocking"); n != 1 {
				t.Errorf("logged %d blocking lines, want 1: %s", n, buf.String())
			}
			if !strings.Contains(buf.String(), `"level":"warn"`) {
				t.Errorf("blocking not logged at warn (L_WARN): %s", buf.String())
			}
			if !m.IsBlocked(tc.ip) {
				t.Error("IsBlocked false during the block")
			}

			// next window: the previous window is still hot -> blocked
			clk.Advance(2 * time.Second)
			if r := call(t, m, c, "pike_check_req"); r != Blocked {
				t.Fatalf("next window: %d, want -1", r)
			}
			// a quiet window (under the density) unblocks
			clk.Advance(4 * time.Second)
			if r := call(t, m, c, "pike_check_req"); r != Allowed {
				t.Fatalf("after a quiet window: %d, want 1", r)
			}
			if m.IsBlocked(tc.ip) {
				t.Error("IsBlocked true after unblocking")
			}
		})
	}
}

func TestSteadyRateUnderDensityNeverBlocks(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, 16, zerolog.Nop())
	c := ctxFrom("198.51.100.1", zerolog.Nop())
	for w := 0; w < 20; w++ {
		for _, r := range burst(t, m, c, 15) {
			if r != Allowed {
				t.Fatalf("window %d: got %d", w, r)
			}
		}
		clk.Advance(2 * time.Second)
	}
}

func TestAddressesCountedSeparately(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, 16, zerolog.Nop())
	a := ctxFrom("10.0.0.1", zerolog.Nop())
	b := ctxFrom("10.0.0.2", zerolog.Nop())
	if rs := burst(t, m, a, 30); countOf(rs, NewlyBlocked) != 1 {
		t.Fatalf("a not blocked: %v", rs)
	}
	// b shares the 10.0.0 prefix (already split): its own leaf needs the density
	rs := burst(t, m, b, 16)
	if countOf(rs, Allowed) != 16 {
		t.Fatalf("b blocked because of a: %v", rs)
	}
	if r := call(t, m, b, "pike_check_req"); r != NewlyBlocked {
		t.Fatalf("b 17th: %d", r)
	}
}

func TestCheckIP(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, 4, zerolog.Nop())
	c := ctxFrom("127.0.0.1", zerolog.Nop())
	tests := []struct {
		ip   string
		want int
	}{
		{"", -1},
		{"not-an-ip", -1},
		{"203.0.113.5", 1},
	}
	for _, tc := range tests {
		if got := call(t, m, c, "pike_check_ip", tc.ip); got != tc.want {
			t.Errorf("pike_check_ip(%q) = %d, want %d", tc.ip, got, tc.want)
		}
	}
	// pike_check_ip counts against the given address, not the source
	var got []int
	for i := 0; i < 12; i++ {
		got = append(got, call(t, m, c, "pike_check_ip", "203.0.113.5"))
	}
	if countOf(got, NewlyBlocked) != 1 {
		t.Fatalf("pike_check_ip never blocked: %v", got)
	}
	if m.IsBlocked("127.0.0.1") {
		t.Error("source address blocked by pike_check_ip")
	}
}

func TestSweepForgetsIdleAddresses(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	m := newModule(t, clk, 4, zerolog.New(&buf))
	c := ctxFrom("192.0.2.1", zerolog.Nop())
	burst(t, m, c, 20)
	if !m.IsBlocked("192.0.2.1") {
		t.Fatal("not blocked")
	}
	if m.Nodes() != 4 {
		t.Fatalf("nodes = %d, want 4", m.Nodes())
	}
	clk.Advance(1 * time.Second)
	if n := m.Sweep(); n != 0 {
		t.Fatalf("removed %d nodes too early", n)
	}
	// 4 s remove_latency: the leaf goes, then each prefix in turn
	clk.Advance(4 * time.Second)
	m.Sweep()
	if !strings.Contains(buf.String(), "pike unblocking ip 192.0.2.1") {
		t.Errorf("unblocking not logged: %s", buf.String())
	}
	for i := 0; i < 10 && m.Nodes() > 0; i++ {
		clk.Advance(5 * time.Second)
		m.Sweep()
	}
	if m.Nodes() != 0 {
		t.Fatalf("nodes left: %d", m.Nodes())
	}
	if r := call(t, m, c, "pike_check_req"); r != Allowed {
		t.Fatalf("after removal: %d", r)
	}
}

func TestConcurrentBurstBlocksOnce(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, 30, zerolog.Nop())
	var wg sync.WaitGroup
	var newly, blocked, allowed atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c := ctxFrom("192.0.2.99", zerolog.Nop())
			other := ctxFrom("198.51.100."+string(rune('1'+g)), zerolog.Nop())
			for i := 0; i < 50; i++ {
				switch m.CheckReq(c) {
				case NewlyBlocked:
					newly.Add(1)
				case Blocked:
					blocked.Add(1)
				default:
					allowed.Add(1)
				}
				m.CheckReq(other)
				if i%10 == 0 {
					m.Sweep()
				}
			}
		}(g)
	}
	wg.Wait()
	if newly.Load() != 1 || allowed.Load() != 38 {
		t.Fatalf("newly=%d allowed=%d blocked=%d", newly.Load(), allowed.Load(), blocked.Load())
	}
}

func TestStartStop(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg != DefaultConfig() {
		t.Fatalf("defaults not applied: %+v", m.cfg)
	}
	m.Start()
	m.Start()
	m.Stop()
	m.Stop()
}

func TestLogLevels(t *testing.T) {
	for _, tc := range []struct {
		k    int
		want zerolog.Level
	}{{-5, zerolog.ErrorLevel}, {-1, zerolog.ErrorLevel}, {0, zerolog.WarnLevel}, {1, zerolog.InfoLevel}, {2, zerolog.InfoLevel}, {3, zerolog.DebugLevel}} {
		if got := logLevel(tc.k); got != tc.want {
			t.Errorf("logLevel(%d) = %v, want %v", tc.k, got, tc.want)
		}
	}
}

// TestExportsMatchCatalog checks the declared KEMI functions against the
// Kamailio 5.6.3 catalog.
func TestExportsMatchCatalog(t *testing.T) {
	m, _ := New(DefaultConfig())
	checkCatalog(t, "pike", m.Exports(), true)
}

func checkCatalog(t *testing.T, module string, exps []kemi.Export, all bool) {
	t.Helper()
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skipf("catalog not available: %v", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= 4 && cols[0] == module {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range exps {
		if e.Module != module {
			t.Errorf("%s declared under module %q", e.Name, e.Module)
		}
		var ps []string
		for _, p := range e.Params {
			ps = append(ps, p.String())
		}
		params := strings.Join(ps, ",")
		if params == "" {
			params = "none"
		}
		got[e.Name] = params + " -> " + e.Ret.String()
	}
	for name, sig := range want {
		if g, ok := got[name]; (ok || all) && g != sig {
			t.Errorf("%s.%s: got %q, catalog %q", module, name, g, sig)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s.%s is not in the catalog", module, name)
		}
	}
	kemi.NewTable().Register(exps...)
}
