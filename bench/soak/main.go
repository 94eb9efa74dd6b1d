// Command soak runs calls through kemigo for a long time and checks that
// nothing degrades (issue "Hardening", item 4; `make soak`).
//
// kemigo runs the unchanged reference script (kamailio-basic-kemi-python.py)
// with permissions' address table allowing 127.0.0.1 (group 1), so that it
// relays calls to a foreign R-URI: a SIPp UAC (uac.xml) calls a SIPp UAS
// (uas.xml) through it: INVITE, 100/180/200, ACK and BYE along the
// Record-Route, 200. With -find, short steps of -ladder first find the
// sustainable call rate (no failed call, SIPp keeping 97 % of the rate);
// the soak then runs at half of it (or at -rate) for -duration.
//
// Checks: zero failed calls on both sides; the proxy's RSS (/proc) and
// goroutine count (/metrics go_goroutines) flat between the start, the
// middle and the end of the load; no transaction left afterwards (the
// kemigo_tm_active_transactions gauge back to 0). Every -sample the
// figures are appended to timeline.csv, so a run still going has partial
// results. From the repository root, after `make build`:
//
//	go run ./bench/soak -kemigo ./kemigo -find -duration 30m
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kemigo/kemigo/bench/internal/harness"
)

const refScript = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

type options struct {
	kemigo, script, out string
	proxyCPU, sippCPU   string
	rate                float64
	find                bool
	ladder              []float64
	step, duration      time.Duration
	sample, settle      time.Duration
	workers             int
}

// snapshot is the state of the proxy at one moment.
type snapshot struct {
	Label      string  `json:"label"`
	T          float64 `json:"t_s"`
	RSSKiB     int64   `json:"rss_kib"`
	HWMKiB     int64   `json:"hwm_kib"`
	Threads    int64   `json:"threads"`
	Goroutines float64 `json:"goroutines"`
	HeapAlloc  float64 `json:"go_heap_alloc_bytes"`
	TMActive   float64 `json:"tm_active"`
	Invites    float64 `json:"invites_received"`
	Overload   float64 `json:"overload_rejections"`
	CPUSec     float64 `json:"cpu_s"`
	UACOK      int64   `json:"uac_successful"`
	UACFailed  int64   `json:"uac_failed"`
	// datagrams the kernel dropped on each socket (/proc/net/udp)
	DropsProxy int64 `json:"drops_proxy"`
	DropsUAC   int64 `json:"drops_uac"`
	DropsUAS   int64 `json:"drops_uas"`
}

func main() {
	var o options
	ladder := ""
	flag.StringVar(&o.kemigo, "kemigo", "./kemigo", "kemigo binary (make build)")
	flag.StringVar(&o.script, "script", refScript, "route script")
	flag.StringVar(&o.out, "out", "", "output directory (default bench/out/soak/<time>)")
	flag.StringVar(&o.proxyCPU, "proxy-cpu", "", "CPU list of the proxy (taskset); empty: not pinned")
	flag.StringVar(&o.sippCPU, "sipp-cpu", "", "CPU list of SIPp, UAC and UAS (taskset); empty: not pinned")
	flag.Float64Var(&o.rate, "rate", 0, "calls per second of the soak (0 with -find: half the sustainable rate)")
	flag.BoolVar(&o.find, "find", false, "find the sustainable call rate first (-ladder, -step)")
	flag.StringVar(&ladder, "ladder", "100,200,300,400,500,600,700,800,1000", "call rates of the search")
	flag.DurationVar(&o.step, "step", 15*time.Second, "duration of each search step")
	flag.DurationVar(&o.duration, "duration", 30*time.Minute, "duration of the soak load")
	flag.DurationVar(&o.sample, "sample", 30*time.Second, "sampling period of timeline.csv")
	flag.DurationVar(&o.settle, "settle", 90*time.Second, "longest wait for the transactions to end after the load")
	flag.IntVar(&o.workers, "workers", 0, "workers of the proxy (0: its default)")
	flag.Parse()
	for _, s := range strings.Split(ladder, ",") {
		if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && v > 0 {
			o.ladder = append(o.ladder, v)
		}
	}
	if o.rate <= 0 && !o.find {
		fmt.Fprintln(os.Stderr, "soak: give -rate or -find")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	err := run(ctx, o)
	harness.StopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func output(name string, args ...string) string {
	b, _ := osexec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(b))
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func run(ctx context.Context, o options) error {
	if o.out == "" {
		o.out = filepath.Join("bench", "out", "soak", time.Now().UTC().Format("20060102-150405"))
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	uac, err := filepath.Abs(filepath.Join("bench", "soak", "uac.xml"))
	if err != nil {
		return err
	}
	uas := filepath.Join(filepath.Dir(uac), "uas.xml")
	if _, err := os.Stat(uas); err != nil {
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
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = harness.FreePort(); err != nil {
			return err
		}
	}
	sipPort, httpPort, uasPort, uacPort := ports[0], ports[1], ports[2], ports[3]
	httpAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
	addrFile := filepath.Join(out, "address.list")
	if err := os.WriteFile(addrFile, []byte("# group address mask port: the SIPp UAC and UAS\n1 127.0.0.1 32 0\n"), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`# written by bench/soak
listen = ["udp:127.0.0.1:%d"]
workers = %d
log_level = "warn"
log_format = "json"
send_only_to = ["127.0.0.0/8"]

[app_python3]
load = %q

[htable]
htable = ["ipban=>size=8;autoexpire=300;"]

# allow_source_address(1) > 0 for the SIPp UAC: the reference script then
# relays its INVITE to the R-URI (a foreign domain: the UAS)
[permissions]
address_file = %q

[jsonrpcs]
socket = ""
http = %q
`, sipPort, o.workers, o.script, addrFile, httpAddr)
	cfgPath := filepath.Join(out, "kemigo.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	rep.Printf("# kemigo soak run, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	rep.Printf("kemigo: %s\nSIPp: %s\nload average at start: %s\n", output(kemigo, "version"), firstLine(output("sipp", "-v")), harness.LoadAvg())
	rep.Printf("proxy: taskset -c %q; SIPp UAC and UAS: taskset -c %q\ncommand: %s\noutput: %s\n\n",
		o.proxyCPU, o.sippCPU, strings.Join(os.Args, " "), out)

	proxy, err := harness.Start("kemigo", out, filepath.Join(out, "kemigo.log"), nil,
		harness.Pinned(o.proxyCPU, 0, kemigo, "run", "-c", cfgPath)...)
	if err != nil {
		return err
	}
	if err := harness.WaitReady(httpAddr, proxy, 20*time.Second); err != nil {
		return err
	}
	uasDir := filepath.Join(out, "uas")
	if err := os.MkdirAll(uasDir, 0o755); err != nil {
		return err
	}
	uasProc, err := harness.Start("sipp uas", uasDir, filepath.Join(uasDir, "sipp.log"), nil,
		harness.Pinned(o.sippCPU, 0, "sipp", "-sf", uas, "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort), "-nostdin",
			"-trace_stat", "-stf", filepath.Join(uasDir, "uas_stat.csv"), "-fd", "1", "-trace_err",
			"-error_file", filepath.Join(uasDir, "uas_errors.log"))...)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	if !uasProc.Running() {
		return fmt.Errorf("the SIPp UAS exited: %v (see %s)", uasProc.Err(), uasDir)
	}
	uacRun := func(name string, rate float64, d time.Duration) harness.SippRun {
		return harness.SippRun{Dir: filepath.Join(out, "uac"), Scenario: uac,
			Target: "127.0.0.1:" + strconv.Itoa(sipPort), Rate: rate, Calls: int(rate * d.Seconds()), CPUs: o.sippCPU, Port: uacPort,
			Extra: []string{"-key", "uas", "127.0.0.1:" + strconv.Itoa(uasPort)}, Timeout: d + 120*time.Second}
	}

	rate := o.rate
	if o.find {
		rep.Printf("## search (%s per step)\n\n", o.step)
		sustainable := 0.0
		for _, r := range o.ladder {
			m0, _ := harness.Scrape(httpAddr)
			p0, _ := harness.ReadProc(proxy.PID())
			t0 := time.Now()
			res, err := uacRun("search-"+strconv.Itoa(int(r)), r, o.step).Run(ctx, "search-"+strconv.Itoa(int(r)))
			if err != nil {
				return err
			}
			m1, _ := harness.Scrape(httpAddr)
			p1, _ := harness.ReadProc(proxy.PID())
			achieved := 0.0
			if res.Elapsed > 0 {
				achieved = float64(res.Created) / res.Elapsed.Seconds()
			}
			shed := m1.Get("kemigo_overload_rejections_total") - m0.Get("kemigo_overload_rejections_total")
			pass := res.Failed == 0 && shed == 0 && achieved >= 0.97*r && res.Retrans == 0
			cpu := (p1.CPUSec - p0.CPUSec) / time.Since(t0).Seconds()
			perCall := 0.0
			if res.Successful > 0 {
				perCall = 1000 * (p1.CPUSec - p0.CPUSec) / float64(res.Successful)
			}
			rep.Printf("%5.0f calls/s asked, %6.1f/s made: %d calls, %d failed, %d retransmissions, %.0f shed, setup RTD %.1f ms | proxy CPU %.0f%% (%.2f ms per call) | %v\n",
				r, achieved, res.Created, res.Failed, res.Retrans, shed, res.RTD["ResponseTime1"], 100*cpu, perCall, map[bool]string{true: "sustained", false: "not sustained"}[pass])
			if !pass {
				break
			}
			sustainable = r
		}
		if sustainable == 0 {
			return fmt.Errorf("no call rate of the ladder was sustainable")
		}
		if rate <= 0 {
			rate = sustainable / 2
		}
		rep.Printf("\nsustainable: %.0f calls/s; soak at %.0f calls/s\n\n", sustainable, rate)
		// let the search's transactions end before the start snapshot
		waitTM(ctx, httpAddr, o.settle)
	}

	rep.Printf("## soak: %.0f calls/s for %s (%d calls)\n\n", rate, o.duration, int(rate*o.duration.Seconds()))
	tl, err := os.Create(filepath.Join(out, "timeline.csv"))
	if err != nil {
		return err
	}
	defer tl.Close()
	fmt.Fprintln(tl, "t_s,rss_kib,hwm_kib,threads,goroutines,go_heap_alloc_bytes,tm_active,invites,overload,cpu_s,uac_successful,uac_failed,drops_proxy,drops_uac,drops_uas")
	t0 := time.Now()
	uacStat := filepath.Join(out, "uac", "soak_stat.csv")
	snap := func(label string) snapshot {
		s := snapshot{Label: label, T: time.Since(t0).Seconds()}
		if ps, err := harness.ReadProc(proxy.PID()); err == nil {
			s.RSSKiB, s.HWMKiB, s.Threads, s.CPUSec = ps.RSSKiB, ps.HWMKiB, ps.Threads, ps.CPUSec
		}
		if m, err := harness.Scrape(httpAddr); err == nil {
			s.Goroutines = m.Get("go_goroutines")
			s.HeapAlloc = m.Get("go_memstats_alloc_bytes")
			s.TMActive = m.Get("kemigo_tm_active_transactions")
			s.Invites = m.Get(`kemigo_sip_requests_received_total{method="INVITE"}`)
			s.Overload = m.Get("kemigo_overload_rejections_total")
		}
		var r harness.SippResult
		if st, err := readStatQuiet(uacStat); err == nil {
			r = st
		}
		s.UACOK, s.UACFailed = r.Successful, r.Failed
		s.DropsProxy, s.DropsUAC, s.DropsUAS = harness.UDPDrops(sipPort), harness.UDPDrops(uacPort), harness.UDPDrops(uasPort)
		fmt.Fprintf(tl, "%.0f,%d,%d,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.2f,%d,%d,%d,%d,%d\n", s.T, s.RSSKiB, s.HWMKiB, s.Threads, s.Goroutines,
			s.HeapAlloc, s.TMActive, s.Invites, s.Overload, s.CPUSec, s.UACOK, s.UACFailed, s.DropsProxy, s.DropsUAC, s.DropsUAS)
		_ = tl.Sync()
		return s
	}
	show := func(s snapshot) {
		rep.Printf("%-7s t=%6.0fs  RSS %6.1f MiB  goroutines %4.0f  threads %3d  Go heap %6.1f MiB  tm active %5.0f  calls ok %8d  failed %d\n",
			s.Label, s.T, float64(s.RSSKiB)/1024, s.Goroutines, s.Threads, s.HeapAlloc/(1<<20), s.TMActive, s.UACOK, s.UACFailed)
	}
	uasStat := filepath.Join(uasDir, "uas_stat.csv")
	uas0, _ := readStatQuiet(uasStat) // the search's calls
	var snaps []snapshot
	start := snap("start")
	snaps = append(snaps, start)
	show(start)

	done := make(chan struct{})
	var res harness.SippResult
	var runErr error
	go func() {
		defer close(done)
		res, runErr = uacRun("soak", rate, o.duration).Run(ctx, "soak")
	}()
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
	middleTaken := false
	var last snapshot
loop:
	for {
		select {
		case <-done:
			break loop
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			last = snap("sample")
			if !middleTaken && time.Since(t0) >= o.duration/2 {
				middleTaken = true
				m := last
				m.Label = "middle"
				snaps = append(snaps, m)
				show(m)
			}
		}
	}
	if runErr != nil {
		return runErr
	}
	end := last
	end.Label = "end"
	if end.T == 0 || time.Since(t0).Seconds()-end.T > o.sample.Seconds() {
		end = snap("end")
	}
	snaps = append(snaps, end)
	show(end)
	settled := waitTM(ctx, httpAddr, o.settle)
	after := snap("after")
	after.Label = "after"
	snaps = append(snaps, after)
	show(after)

	time.Sleep(2 * time.Second) // the UAS writes its statistics every second
	uasRes, uasErr := readStatQuiet(uasStat)
	_ = uasProc.Stop(5 * time.Second)
	if r, err := readStatQuiet(uasStat); err == nil {
		uasRes, uasErr = r, nil
	}
	uasRes.Created -= uas0.Created
	uasRes.Successful -= uas0.Successful
	uasRes.Failed -= uas0.Failed
	rep.Printf("\nUAC: %d calls made at %.1f/s, %d successful, %d failed, %d retransmissions, %d unexpected\n",
		res.Created, float64(res.Created)/res.Elapsed.Seconds(), res.Successful, res.Failed, res.Retrans, res.OutOfCall+res.DeadCall)
	rep.Printf("call setup (INVITE -> 200): average %.2f ms, p50 %s, p99 %s, p99.9 %s; BYE -> 200: average %.2f ms, p99 %s\n",
		res.RTD["ResponseTime1"], res.Percentile("1", 50), res.Percentile("1", 99), res.Percentile("1", 99.9),
		res.RTD["ResponseTime2"], res.Percentile("2", 99))
	if uasErr == nil {
		rep.Printf("UAS (this soak): %d calls received, %d successful, %d failed\n", uasRes.Created, uasRes.Successful, uasRes.Failed)
	}
	rep.Printf("proxy CPU over the soak: %.1f s (%.2f ms per call)\n", end.CPUSec-start.CPUSec,
		1000*(end.CPUSec-start.CPUSec)/float64(max(res.Successful, 1)))
	rep.Printf("datagrams dropped by the kernel (full socket buffers) since the start: proxy %d, UAC %d, UAS %d\n",
		end.DropsProxy, end.DropsUAC, end.DropsUAS)
	ok := true
	check := func(cond bool, what string) {
		mark := "ok  "
		if !cond {
			mark, ok = "FAIL", false
		}
		rep.Printf("  [%s] %s\n", mark, what)
	}
	mid := snaps[1]
	if len(snaps) < 4 {
		mid = start
	}
	check(res.Failed == 0 && res.Successful == res.Created, fmt.Sprintf("zero failed calls at the UAC (%d of %d successful)", res.Successful, res.Created))
	check(uasErr == nil && uasRes.Failed == 0, "zero failed calls at the UAS")
	check(end.Overload == start.Overload, "no 503 (overload) during the soak")
	// flat: the end within 10 % (+8 MiB) of the middle, which has the
	// caches of a warm process; goroutines within 10 of the start
	check(float64(end.RSSKiB) <= 1.10*float64(mid.RSSKiB)+8*1024,
		fmt.Sprintf("RSS flat: %.1f MiB at the start, %.1f at the middle, %.1f at the end", float64(start.RSSKiB)/1024, float64(mid.RSSKiB)/1024, float64(end.RSSKiB)/1024))
	check(end.Goroutines <= mid.Goroutines+10 && after.Goroutines <= start.Goroutines+10,
		fmt.Sprintf("goroutines flat: %.0f at the start, %.0f at the middle, %.0f at the end, %.0f after", start.Goroutines, mid.Goroutines, end.Goroutines, after.Goroutines))
	check(settled && after.TMActive == 0, fmt.Sprintf("no transaction left afterwards (tm active %.0f, %.0f s after the load)", after.TMActive, after.T-end.T))
	_ = harness.WriteJSON(filepath.Join(out, "snapshots.json"), snaps)
	_ = proxy.Stop(10 * time.Second)
	if !ok {
		return fmt.Errorf("some checks failed; see %s", filepath.Join(out, "report.txt"))
	}
	rep.Printf("\nall checks passed\n")
	return nil
}

// waitTM waits until the tm active gauge is 0 (true) or d passes.
func waitTM(ctx context.Context, addr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if m, err := harness.Scrape(addr); err == nil && m.Get("kemigo_tm_active_transactions") == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(time.Second)
	}
}

// readStatQuiet reads the last line of a SIPp statistics file.
func readStatQuiet(path string) (harness.SippResult, error) {
	return harness.ReadStat(path)
}
