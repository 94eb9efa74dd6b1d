// Command overload drives kemigo past what it can serve and checks that it
// sheds load cleanly (issue "Hardening", item 4).
//
// It starts kemigo on the unchanged reference script
// (kamailio-basic-kemi-python.py) and SIPp clients sending OPTIONS
// keepalives (options.xml: 200 and 503 both end a call), then:
//
//  1. search: SIPp at each rate of -ladder for -step; the sustainable rate
//     is the highest one with no 503, no failed call, and SIPp keeping
//     97 % of the rate asked;
//  2. overload: -factor (2) times the sustainable rate for -overload;
//  3. recovery: half the sustainable rate for -recovery.
//
// and reports, per phase and over the whole run: the calls SIPp made, the
// 200s and 503s it got, its failed calls (no final reply after its
// retransmissions, or another reply), its retransmissions and unexpected
// messages; the proxy's received OPTIONS, 200 replies (sl) and overload
// rejections (503); the kernel's drops on the proxy's socket; and, each
// second, the worker queue depth, the 503s and the proxy's RSS.
//
// Accounting: every OPTIONS the proxy received got exactly one final reply
// when received = 200s sent + 503s sent, and SIPp saw no failed call.
//
// One SIPp process cannot offer twice what kemigo serves on a whole core
// (about 7 000 OPTIONS/s for SIPp against about 28 000/s for kemigo on the
// 2-vCPU machine of docs/RELIABILITY.md), so by default the proxy runs a
// fixed share of the time: the harness stops and continues it (SIGSTOP,
// SIGCONT) so that it runs -duty of every -period (10 % of 10 ms: a CPU
// ten times slower, whatever else the machine runs). A CPU share by
// niceness against busy loops was tried first: the proxy then also lost
// its CPU to every other process of a shared machine, for long enough that
// the kernel dropped datagrams before kemigo could read (and shed) them.
// Run it from the repository root after `make build`:
//
//	go run ./bench/overload -kemigo ./kemigo
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kemigo/kemigo/bench/internal/harness"
)

const refScript = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

type options struct {
	kemigo, script, out      string
	proxyCPU, sippCPU        string
	duty                     float64
	period                   time.Duration
	ladder                   []float64
	step, overload, recovery time.Duration
	factor                   float64
	queueLen, workers        int
	sustainable              float64
}

// phase is one SIPp run and what the proxy counted meanwhile.
type phase struct {
	Name      string
	Rate      float64 // asked
	Achieved  float64 // created / elapsed
	Sipp      harness.SippResult
	Got200    int64
	Got503    int64
	Re200     int64 // 200s SIPp got again (answers to its retransmissions)
	Re503     int64
	ReRetrans int64   // OPTIONS SIPp sent again
	ProxyRecv float64 // OPTIONS received
	Proxy200  float64 // sl 200 replies
	Proxy503  float64 // overload rejections
	UDPDrops  int64
	ProxyCPU  float64 // CPU seconds over the phase
	MaxQueue  float64
	MaxRSSKiB int64
	Pass      bool
	Why       string
}

type sample struct {
	T        float64 `json:"t"`
	Phase    string  `json:"phase"`
	Recv     float64 `json:"recv_per_s"`
	Shed     float64 `json:"shed_per_s"`
	Queue    float64 `json:"queue"`
	RSSKiB   int64   `json:"rss_kib"`
	Gorout   float64 `json:"goroutines"`
	CPUShare float64 `json:"cpu_share"`
}

func main() {
	var o options
	ladder := ""
	flag.StringVar(&o.kemigo, "kemigo", "./kemigo", "kemigo binary (make build)")
	flag.StringVar(&o.script, "script", refScript, "route script")
	flag.StringVar(&o.out, "out", "", "output directory (default bench/out/overload/<time>)")
	flag.StringVar(&o.proxyCPU, "proxy-cpu", "0", "CPU list of the proxy (taskset); empty: not pinned")
	flag.StringVar(&o.sippCPU, "sipp-cpu", "", "CPU list of SIPp (taskset); empty: not pinned")
	flag.Float64Var(&o.duty, "duty", 0.1, "share of each period the proxy runs (1: not throttled)")
	flag.DurationVar(&o.period, "period", 10*time.Millisecond, "throttling period")
	flag.StringVar(&ladder, "ladder", "500,750,1000,1250,1500,1750,2000,2500,3000,3500,4000,5000,6000", "rates (OPTIONS/s) of the search")
	flag.Float64Var(&o.sustainable, "sustainable", 0, "skip the search: this rate is sustainable")
	flag.DurationVar(&o.step, "step", 10*time.Second, "duration of each search step")
	flag.DurationVar(&o.overload, "overload", 60*time.Second, "duration of the overload phase")
	flag.DurationVar(&o.recovery, "recovery", 60*time.Second, "duration of the recovery phase")
	flag.Float64Var(&o.factor, "factor", 2, "overload rate / sustainable rate")
	flag.IntVar(&o.queueLen, "queue-len", 1024, "queue_len of the proxy")
	flag.IntVar(&o.workers, "workers", 0, "workers of the proxy (0: its default)")
	flag.Parse()
	for _, s := range strings.Split(ladder, ",") {
		if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && v > 0 {
			o.ladder = append(o.ladder, v)
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	err := run(ctx, o)
	harness.StopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.out == "" {
		o.out = filepath.Join("bench", "out", "overload", time.Now().UTC().Format("20060102-150405"))
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	scenario, err := filepath.Abs(filepath.Join("bench", "overload", "options.xml"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(scenario); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	kemigo, err := filepath.Abs(o.kemigo)
	if err != nil {
		return err
	}
	rep, err := harness.NewTee(filepath.Join(out, "report.txt"))
	if err != nil {
		return err
	}
	sipPort, err := harness.FreePort()
	if err != nil {
		return err
	}
	httpPort, err := harness.FreePort()
	if err != nil {
		return err
	}
	httpAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
	cfg := fmt.Sprintf(`# written by bench/overload
listen = ["udp:127.0.0.1:%d"]
workers = %d
queue_len = %d
log_level = "warn"
log_format = "json"
send_only_to = ["127.0.0.0/8"]

[app_python3]
load = %q

[htable]
htable = ["ipban=>size=8;autoexpire=300;"]

[jsonrpcs]
socket = ""
http = %q
`, sipPort, o.workers, o.queueLen, o.script, httpAddr)
	cfgPath := filepath.Join(out, "kemigo.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	version := output(kemigo, "version")
	sippVersion := output("sipp", "-v")
	rep.Printf("# kemigo overload run, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	rep.Printf("kemigo: %s\nSIPp: %s\nCPUs: %d; load average at start: %s\n", strings.TrimSpace(version),
		firstLine(sippVersion), numCPU(), harness.LoadAvg())
	rep.Printf("proxy: taskset -c %q, runs %.0f %% of every %s; SIPp: taskset -c %q\n", o.proxyCPU, 100*o.duty, o.period, o.sippCPU)
	rep.Printf("command: %s\noutput: %s\n\n", strings.Join(os.Args, " "), out)

	proxy, err := harness.Start("kemigo", out, filepath.Join(out, "kemigo.log"), nil,
		harness.Pinned(o.proxyCPU, 0, kemigo, "run", "-c", cfgPath)...)
	if err != nil {
		return err
	}
	if err := harness.WaitReady(httpAddr, proxy, 20*time.Second); err != nil {
		return err
	}
	stopThrottle := func() {}
	if o.duty < 1 {
		stopThrottle = throttle(proxy, o.duty, o.period)
	}
	defer stopThrottle()

	// the sampler: one line per second over the whole run
	var smu sync.Mutex
	var samples []sample
	cur := "idle"
	setPhase := func(p string) { smu.Lock(); cur = p; smu.Unlock() }
	sctx, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		t0 := time.Now()
		var lastRecv, lastShed, lastCPU float64
		lastT := time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
			m, err := harness.Scrape(httpAddr)
			if err != nil {
				continue
			}
			ps, _ := harness.ReadProc(proxy.PID())
			now := time.Now()
			dt := now.Sub(lastT).Seconds()
			recv := m.Get(`kemigo_sip_requests_received_total{method="OPTIONS"}`)
			shed := m.Get("kemigo_overload_rejections_total")
			smu.Lock()
			samples = append(samples, sample{T: math.Round(now.Sub(t0).Seconds()*10) / 10, Phase: cur,
				Recv: (recv - lastRecv) / dt, Shed: (shed - lastShed) / dt, Queue: m.Get(`kemigo_worker_queue_depth{worker="0"}`),
				RSSKiB: ps.RSSKiB, Gorout: m.Get("go_goroutines"), CPUShare: (ps.CPUSec - lastCPU) / dt})
			smu.Unlock()
			lastRecv, lastShed, lastCPU, lastT = recv, shed, ps.CPUSec, now
		}
	}()

	runPhase := func(name string, rate float64, d time.Duration) (phase, error) {
		setPhase(name)
		ph := phase{Name: name, Rate: rate}
		m0, err := harness.Scrape(httpAddr)
		if err != nil {
			return ph, err
		}
		s0, err := harness.Stats(httpAddr)
		if err != nil {
			return ph, err
		}
		p0, _ := harness.ReadProc(proxy.PID())
		d0 := harness.UDPDrops(sipPort)
		calls := int(rate * d.Seconds())
		sr := harness.SippRun{Dir: filepath.Join(out, "sipp"), Scenario: scenario,
			Target: "127.0.0.1:" + strconv.Itoa(sipPort), Rate: rate, Calls: calls, CPUs: o.sippCPU,
			Limit:   int(30 * rate), // calls waiting for a reply: up to 30 s of them
			Timeout: d + 60*time.Second}
		phStart := time.Now()
		res, err := sr.Run(ctx, name)
		if err != nil {
			return ph, err
		}
		time.Sleep(500 * time.Millisecond) // the last replies
		m1, err := harness.Scrape(httpAddr)
		if err != nil {
			return ph, err
		}
		s1, err := harness.Stats(httpAddr)
		if err != nil {
			return ph, err
		}
		p1, _ := harness.ReadProc(proxy.PID())
		ph.Sipp = res
		ph.Got503 = res.Counts["1_503_Recv"]
		ph.Got200 = res.Counts["2_200_Recv"]
		ph.Re503 = res.Counts["1_503_Retrans"]
		ph.Re200 = res.Counts["2_200_Retrans"]
		ph.ReRetrans = res.Counts["0_OPTIONS_Retrans"]
		ph.ProxyRecv = m1.Get(`kemigo_sip_requests_received_total{method="OPTIONS"}`) - m0.Get(`kemigo_sip_requests_received_total{method="OPTIONS"}`)
		ph.Proxy503 = s1["core:overload_rejected"] - s0["core:overload_rejected"]
		ph.Proxy200 = s1["sl:200_replies"] - s0["sl:200_replies"]
		ph.UDPDrops = harness.UDPDrops(sipPort) - d0
		ph.ProxyCPU = p1.CPUSec - p0.CPUSec
		if res.Elapsed > 0 {
			ph.Achieved = float64(res.Created) / res.Elapsed.Seconds()
		}
		smu.Lock()
		for _, s := range samples {
			if s.Phase == name {
				ph.MaxQueue = math.Max(ph.MaxQueue, s.Queue)
				if s.RSSKiB > ph.MaxRSSKiB {
					ph.MaxRSSKiB = s.RSSKiB
				}
			}
		}
		smu.Unlock()
		switch {
		case res.Failed > 0:
			ph.Why = fmt.Sprintf("%d failed calls", res.Failed)
		case ph.Proxy503 > 0 || ph.Got503 > 0:
			ph.Why = fmt.Sprintf("%.0f shed (503)", ph.Proxy503)
		case ph.Achieved < 0.97*rate:
			ph.Why = fmt.Sprintf("SIPp made %.0f/s of %.0f/s", ph.Achieved, rate)
		case res.Retrans > 0 || ph.UDPDrops > 0:
			ph.Why = fmt.Sprintf("%d retransmissions, %d datagrams dropped by the kernel", res.Retrans, ph.UDPDrops)
		default:
			ph.Pass = true
		}
		rep.Printf("%-10s %6.0f/s asked, %7.0f/s made, %6d calls in %5.1fs: 200 %6d, 503 %6d, failed %d, retrans %d, unexpected %d | proxy: recv %6.0f, 200 %6.0f, 503 %6.0f, kernel drops %d, CPU %.1f%%, max queue %.0f, max RSS %.1f MiB | %s\n",
			name, rate, ph.Achieved, res.Created, time.Since(phStart).Seconds(), ph.Got200, ph.Got503, res.Failed, res.Retrans,
			res.OutOfCall+res.DeadCall, ph.ProxyRecv, ph.Proxy200, ph.Proxy503, ph.UDPDrops,
			100*ph.ProxyCPU/time.Since(phStart).Seconds(), ph.MaxQueue, float64(ph.MaxRSSKiB)/1024, passWord(ph))
		return ph, nil
	}

	var phases []phase
	sustainable := o.sustainable
	if sustainable == 0 {
		rep.Printf("## search (%s per step)\n\n", o.step)
		for _, r := range o.ladder {
			ph, err := runPhase("search-"+strconv.Itoa(int(r)), r, o.step)
			if err != nil {
				return err
			}
			phases = append(phases, ph)
			if !ph.Pass {
				break
			}
			sustainable = r
		}
		if sustainable == 0 {
			return fmt.Errorf("no rate of the ladder was sustainable")
		}
		if last := phases[len(phases)-1]; last.Pass {
			rep.Printf("\nevery step passed: the generator, not the proxy, is the limit; raise -proxy-nice or the ladder\n")
		}
		time.Sleep(2 * time.Second)
	}
	rep.Printf("\nsustainable rate: %.0f OPTIONS/s\n\n## overload and recovery\n\n", sustainable)
	over, err := runPhase("overload", o.factor*sustainable, o.overload)
	if err != nil {
		return err
	}
	rec, err := runPhase("recovery", sustainable/2, o.recovery)
	if err != nil {
		return err
	}
	phases = append(phases, over, rec)
	stopSampler()
	swg.Wait()
	if !proxy.Running() {
		return fmt.Errorf("the proxy exited: %v", proxy.Err())
	}

	// accounting over the whole run
	var calls, got200, got503, failed, retrans, unexpected, re200, re503, reqRetrans int64
	var recv, sent200, sent503 float64
	var drops int64
	for _, ph := range phases {
		calls += ph.Sipp.Created
		got200 += ph.Got200
		got503 += ph.Got503
		re200 += ph.Re200
		re503 += ph.Re503
		reqRetrans += ph.ReRetrans
		failed += ph.Sipp.Failed
		retrans += ph.Sipp.Retrans
		unexpected += ph.Sipp.OutOfCall + ph.Sipp.DeadCall
		recv += ph.ProxyRecv
		sent200 += ph.Proxy200
		sent503 += ph.Proxy503
		drops += ph.UDPDrops
	}
	rep.Printf("\n## accounting (whole run)\n\n")
	rep.Printf("SIPp: %d calls; %d got 200, %d got 503 (sum %d); %d failed; %d OPTIONS sent again (%d retransmissions in all), answered by %d more 200s and %d more 503s; %d unexpected messages\n",
		calls, got200, got503, got200+got503, failed, reqRetrans, retrans, re200, re503, unexpected)
	rep.Printf("proxy: %.0f OPTIONS received; %.0f answered 200, %.0f answered 503 (sum %.0f); kernel drops on its socket %d\n",
		recv, sent200, sent503, sent200+sent503, drops)
	ok := true
	check := func(cond bool, what string) {
		mark := "ok  "
		if !cond {
			mark, ok = "FAIL", false
		}
		rep.Printf("  [%s] %s\n", mark, what)
	}
	check(failed == 0, "no failed call (every OPTIONS got a final reply)")
	check(recv == sent200+sent503, "every OPTIONS received got exactly one final reply: received = 200s + 503s")
	check(recv == float64(calls+reqRetrans-drops), "the proxy read every OPTIONS SIPp sent but those the kernel dropped")
	check(got200+got503 == calls, "every call ended with one final reply (200 or 503)")
	extra := sent200 + sent503 - float64(got200+got503)
	check(extra >= 0 && extra <= float64(reqRetrans), fmt.Sprintf("the %.0f replies beyond one per call answer OPTIONS SIPp sent again (%d)", extra, reqRetrans))
	check(over.Proxy503 > 0, "the overload phase was shed with 503")
	check(over.Achieved >= 0.9*over.Rate, fmt.Sprintf("SIPp offered at least 90 %% of the overload rate (%.0f of %.0f/s: %.2f times the sustainable rate)",
		over.Achieved, over.Rate, over.Achieved/sustainable))
	check(rec.Proxy503 == 0 && rec.Sipp.Failed == 0, "recovery: no 503 and no failure at half the sustainable rate")
	check(over.MaxQueue <= float64(o.queueLen), fmt.Sprintf("the queue stayed within queue_len (max %.0f)", over.MaxQueue))
	shedShare := 0.0
	if over.ProxyRecv > 0 {
		shedShare = over.Proxy503 / over.ProxyRecv
	}
	rep.Printf("\noverload phase: %.0f/s offered, %.0f/s served (200), %.0f/s shed (%.0f %%)\n",
		over.Achieved, over.Proxy200/over.Sipp.Elapsed.Seconds(), over.Proxy503/over.Sipp.Elapsed.Seconds(), 100*shedShare)
	for _, ph := range []phase{over, rec} {
		rep.Printf("%s: time to the final reply (200 or 503, SIPp's repartition): p50 %s, p90 %s, p99 %s\n", ph.Name,
			ph.Sipp.Percentile("1", 50), ph.Sipp.Percentile("1", 90), ph.Sipp.Percentile("1", 99))
	}
	rep.Printf("RSS: %.1f MiB max in the overload phase, %.1f MiB max in recovery\n",
		float64(over.MaxRSSKiB)/1024, float64(rec.MaxRSSKiB)/1024)

	// the per-second timeline
	var tl strings.Builder
	tl.WriteString("t_s,phase,recv_per_s,shed_per_s,queue,rss_kib,goroutines,proxy_cpu_share\n")
	smu.Lock()
	for _, s := range samples {
		fmt.Fprintf(&tl, "%.1f,%s,%.0f,%.0f,%.0f,%d,%.0f,%.3f\n", s.T, s.Phase, s.Recv, s.Shed, s.Queue, s.RSSKiB, s.Gorout, s.CPUShare)
	}
	smu.Unlock()
	if err := os.WriteFile(filepath.Join(out, "timeline.csv"), []byte(tl.String()), 0o644); err != nil {
		return err
	}
	_ = harness.WriteJSON(filepath.Join(out, "phases.json"), phases)
	stopThrottle()
	_ = proxy.Stop(10 * time.Second)
	if !ok {
		return fmt.Errorf("some checks failed; see %s", filepath.Join(out, "report.txt"))
	}
	rep.Printf("\nall checks passed\n")
	return nil
}

// throttle lets p run duty of every period (SIGSTOP, SIGCONT) until the
// returned function is called, which leaves it running.
func throttle(p *harness.Proc, duty float64, period time.Duration) func() {
	run := time.Duration(float64(period) * duty)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		pid := p.PID()
		defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
		next := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-p.Done():
				return
			default:
			}
			_ = syscall.Kill(pid, syscall.SIGCONT)
			next = next.Add(run)
			time.Sleep(time.Until(next))
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			next = next.Add(period - run)
			time.Sleep(time.Until(next))
			if time.Until(next) < -period { // fell behind: start again from now
				next = time.Now()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}

func passWord(ph phase) string {
	if ph.Pass {
		return "sustained"
	}
	return "not sustained: " + ph.Why
}

// output runs a command and returns what it printed.
func output(name string, args ...string) string {
	b, _ := osexec.Command(name, args...).CombinedOutput()
	return string(b)
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
