// Package harness runs kemigo and SIPp for the load harnesses of bench/
// (overload, soak): it starts the proxy (and SIPp) as child processes on
// loopback addresses, reads the proxy's /metrics and JSON-RPC statistics
// and /proc, and parses SIPp's statistics files. It kills only the
// processes it started.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process started by the harness.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

var (
	procMu sync.Mutex
	procs  []*Proc
)

// Start starts argv (with taskset/nice prefixes already in it), stdout and
// stderr to logFile (truncated), in dir.
func Start(name, dir, logFile string, env []string, argv ...string) (*Proc, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	procMu.Lock()
	procs = append(procs, p)
	procMu.Unlock()
	return p, nil
}

// PID is the child's process id (taskset and nice exec the command, so it
// is the command's own).
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the exit error (after Done).
func (p *Proc) Err() error { return p.err }

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process (then SIGKILL after grace) and waits.
func (p *Proc) Stop(grace time.Duration) error {
	if !p.Running() {
		return p.err
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// StopAll stops every process the harness started that still runs.
func StopAll() {
	procMu.Lock()
	ps := append([]*Proc(nil), procs...)
	procMu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		_ = ps[i].Stop(5 * time.Second)
	}
}

// Pinned prefixes argv with taskset (cpus != "") and nice (niceness != 0).
func Pinned(cpus string, niceness int, argv ...string) []string {
	var out []string
	if cpus != "" {
		out = append(out, "taskset", "-c", cpus)
	}
	if niceness != 0 {
		out = append(out, "nice", "-n", strconv.Itoa(niceness))
	}
	return append(out, argv...)
}

// FreePort returns a loopback port free for UDP and TCP at the time of the call.
func FreePort() (int, error) {
	for i := 0; i < 50; i++ {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free port")
}

// ---- the proxy's metrics and statistics

// Metrics is one scrape of /metrics: "name{labels}" -> value.
type Metrics map[string]float64

// Get returns a series (0 when absent).
func (m Metrics) Get(series string) float64 { return m[series] }

// Scrape reads http://addr/metrics.
func Scrape(addr string) (Metrics, error) {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("/metrics: %s", res.Status)
	}
	m := Metrics{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// Stats reads Kamailio-style statistics ("group:name" -> value) through
// the JSON-RPC HTTP endpoint (stats.get_statistics all).
func Stats(addr string) (map[string]float64, error) {
	body := `{"jsonrpc":"2.0","method":"stats.get_statistics","params":["all"],"id":1}`
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Post("http://"+addr+"/", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var r struct {
		Result []string `json:"result"`
		Error  any      `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("stats.get_statistics: %v", r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Result {
		k, v, ok := strings.Cut(s, " = ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err == nil {
			out[strings.TrimSpace(k)] = f
		}
	}
	return out, nil
}

// WaitReady polls /metrics until it answers or d passes.
func WaitReady(addr string, p *Proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := Scrape(addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("proxy not ready after %s: %w", d, err)
		}
		if !p.Running() {
			return fmt.Errorf("proxy exited: %v", p.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- /proc

// ProcSample is what /proc says about a process.
type ProcSample struct {
	RSSKiB  int64   // VmRSS
	HWMKiB  int64   // VmHWM
	Threads int64   // Threads
	CPUSec  float64 // utime + stime
}

// ReadProc reads /proc/pid/status and /proc/pid/stat.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.RSSKiB = v
		case "VmHWM:":
			s.HWMKiB = v
		case "Threads:":
			s.Threads = v
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// the command may contain spaces: fields start after the last ')'
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	if len(f) > 12 {
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		s.CPUSec = (ut + st) / 100 // USER_HZ
	}
	return s, nil
}

// UDPDrops returns the kernel's drop counter of the UDP socket bound to
// 127.0.0.1:port (/proc/net/udp), -1 when not found.
func UDPDrops(port int) int64 {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return -1
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 13 && f[1] == want {
			v, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			return v
		}
	}
	return -1
}

// LoadAvg is /proc/loadavg's first three fields.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// ---- SIPp

// SippRun is one SIPp client run.
type SippRun struct {
	Dir      string
	Scenario string   // path of the scenario file
	Target   string   // host:port
	Rate     float64  // calls per second
	Calls    int      // -m
	Limit    int      // -l (0: SIPp's default)
	Port     int      // local port (0: a free one)
	Extra    []string // more arguments
	CPUs     string   // taskset
	Timeout  time.Duration
}

// SippResult is the last line of SIPp's -trace_stat file plus the totals
// of its -trace_counts file.
type SippResult struct {
	Elapsed       time.Duration
	Created       int64
	Successful    int64
	Failed        int64
	Retrans       int64
	OutOfCall     int64
	DeadCall      int64
	CallRate      float64            // SIPp's average call rate over the run
	Counts        map[string]int64   // column of the counts file -> total
	FailedDetails map[string]int64   // FailedXxx(C) columns that are not 0
	RTD           map[string]float64 // ResponseTimeN(C) (ms): the average over the run
	// Repartition: per RTD ("1", "2"), the bucket upper bounds (ms; the
	// last one +Inf) and how many responses fell in each
	Repartition map[string][]Bucket
	ExitCode    int
}

// Run runs SIPp to completion.
func (r SippRun) Run(ctx context.Context, name string) (SippResult, error) {
	var res SippResult
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return res, err
	}
	stat := filepath.Join(r.Dir, name+"_stat.csv")
	if r.Port == 0 {
		// SIPp takes -p 0 for its default, 5060
		port, err := FreePort()
		if err != nil {
			return res, err
		}
		r.Port = port
	}
	// -rtt_freq: SIPp keeps that many response times and writes them in
	// one go, in its event loop: 1 000 000 (10 MB, written after 500 000
	// calls of the soak) stalled it for 1.4 s, which the proxy saw as a
	// burst (soaks 3 and 4, docs/RELIABILITY.md); 20 000 writes ~200 KB
	// at a time.
	args := []string{"sipp", r.Target, "-sf", r.Scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(r.Port),
		"-r", strconv.FormatFloat(r.Rate, 'f', -1, 64), "-rp", "1000", "-m", strconv.Itoa(r.Calls),
		"-nostdin", "-trace_stat", "-stf", stat, "-fd", "1", "-trace_counts", "-trace_err",
		"-error_file", filepath.Join(r.Dir, name+"_errors.log"), "-trace_rtt", "-rtt_freq", "20000"}
	if r.Limit > 0 {
		args = append(args, "-l", strconv.Itoa(r.Limit))
	}
	if r.Timeout > 0 {
		args = append(args, "-timeout", strconv.Itoa(int(r.Timeout.Seconds()))+"s")
	}
	args = append(args, r.Extra...)
	before, _ := filepath.Glob(filepath.Join(r.Dir, "*_counts.csv"))
	p, err := Start("sipp "+name, r.Dir, filepath.Join(r.Dir, name+"_sipp.log"), nil, Pinned(r.CPUs, 0, args...)...)
	if err != nil {
		return res, err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		_ = p.Stop(3 * time.Second)
		return res, ctx.Err()
	}
	if ee, ok := p.Err().(*exec.ExitError); ok {
		res.ExitCode = ee.ExitCode()
	}
	if err := res.readStat(stat); err != nil {
		return res, fmt.Errorf("sipp %s (exit %d): %w", name, res.ExitCode, err)
	}
	after, _ := filepath.Glob(filepath.Join(r.Dir, "*_counts.csv"))
	for _, f := range after {
		if !contains(before, f) {
			counts := filepath.Join(r.Dir, name+"_counts.csv")
			_ = os.Rename(f, counts)
			res.Counts, _ = readCounts(counts)
		}
	}
	return res, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (res *SippResult) readStat(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return errors.New("empty statistics file " + path)
	}
	head := strings.Split(lines[0], ";")
	last := strings.Split(lines[len(lines)-1], ";")
	col := map[string]string{}
	for i, h := range head {
		if i < len(last) {
			col[h] = last[i]
		}
	}
	i64 := func(k string) int64 { v, _ := strconv.ParseInt(col[k], 10, 64); return v }
	res.Created = i64("TotalCallCreated")
	res.Successful = i64("SuccessfulCall(C)")
	res.Failed = i64("FailedCall(C)")
	res.Retrans = i64("Retransmissions(C)")
	res.OutOfCall = i64("OutOfCallMsgs(C)")
	res.DeadCall = i64("DeadCallMsgs(C)")
	res.CallRate, _ = strconv.ParseFloat(col["CallRate(C)"], 64)
	res.Elapsed = parseSippDur(col["ElapsedTime(C)"])
	res.FailedDetails = map[string]int64{}
	res.RTD = map[string]float64{}
	for _, h := range head {
		if strings.HasPrefix(h, "Failed") && strings.HasSuffix(h, "(C)") && h != "FailedCall(C)" {
			if v := i64(h); v != 0 {
				res.FailedDetails[strings.TrimSuffix(h, "(C)")] = v
			}
		}
		if strings.HasPrefix(h, "ResponseTime") && strings.HasSuffix(h, "(C)") && !strings.Contains(h, "StDev") {
			// SIPp's very last line may hold zeros: take the last non-zero
			for k := len(lines) - 1; k >= 1; k-- {
				f := strings.Split(lines[k], ";")
				if i := indexOf(head, h); i < len(f) {
					if d := parseSippDur(f[i]); d > 0 {
						res.RTD[strings.TrimSuffix(h, "(C)")] = d.Seconds() * 1000
						break
					}
				}
			}
		}
	}
	res.Repartition = map[string][]Bucket{}
	for i, h := range head {
		rest, ok := strings.CutPrefix(h, "ResponseTimeRepartition")
		if !ok {
			continue
		}
		id, bound, ok := strings.Cut(rest, "_")
		if !ok || i >= len(last) {
			continue
		}
		n, _ := strconv.ParseInt(last[i], 10, 64)
		b := Bucket{N: n}
		if v, ok := strings.CutPrefix(bound, "<"); ok {
			b.LE, _ = strconv.ParseFloat(v, 64)
		} else {
			b.LE = -1 // ">=" the last bound
		}
		res.Repartition[id] = append(res.Repartition[id], b)
	}
	return nil
}

// Bucket is one bar of SIPp's response time repartition.
type Bucket struct {
	LE float64 // upper bound in ms, -1 for the last (unbounded) one
	N  int64
}

// Percentile returns the upper bound (ms) of the bucket holding the p-th
// percentile of RTD id, "≥X" for the last bucket, "" without data.
func (r SippResult) Percentile(id string, p float64) string {
	bs := r.Repartition[id]
	var total int64
	for _, b := range bs {
		total += b.N
	}
	if total == 0 {
		return ""
	}
	var acc int64
	for i, b := range bs {
		acc += b.N
		if float64(acc) >= p/100*float64(total) {
			if b.LE < 0 {
				if i > 0 {
					return ">=" + strconv.FormatFloat(bs[i-1].LE, 'f', -1, 64) + " ms"
				}
				return "?"
			}
			return "<" + strconv.FormatFloat(b.LE, 'f', -1, 64) + " ms"
		}
	}
	return ""
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return len(l)
}

// parseSippDur reads "hh:mm:ss" or "hh:mm:ss:uuuuuu".
func parseSippDur(s string) time.Duration {
	f := strings.Split(s, ":")
	if len(f) < 3 {
		return 0
	}
	h, _ := strconv.Atoi(f[0])
	m, _ := strconv.Atoi(f[1])
	sec, _ := strconv.ParseFloat(f[2], 64)
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second))
	if len(f) > 3 {
		us, _ := strconv.Atoi(f[3])
		d += time.Duration(us) * time.Microsecond
	}
	return d
}

// readCounts sums each column of a -trace_counts file (a column holds the
// count for that period when -fd is set; the file's last line holds the
// cumulative values in SIPp 3.6, so the last line is taken).
func readCounts(path string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return nil, errors.New("empty counts file")
	}
	head := strings.Split(strings.TrimSuffix(lines[0], ";"), ";")
	last := strings.Split(strings.TrimSuffix(lines[len(lines)-1], ";"), ";")
	out := map[string]int64{}
	for i, h := range head {
		if i >= 2 && i < len(last) {
			v, _ := strconv.ParseInt(last[i], 10, 64)
			out[h] = v
		}
	}
	return out, nil
}

// CountsTimeline returns, per line of a counts file, the value of col
// (cumulative per line in SIPp 3.6).
func CountsTimeline(path, col string) ([]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head := strings.Split(strings.TrimSuffix(lines[0], ";"), ";")
	idx := -1
	for i, h := range head {
		if h == col {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("no column %s", col)
	}
	var out []int64
	for _, l := range lines[1:] {
		f := strings.Split(strings.TrimSuffix(l, ";"), ";")
		if idx < len(f) {
			v, _ := strconv.ParseInt(f[idx], 10, 64)
			out = append(out, v)
		}
	}
	return out, nil
}

// ---- output

// Tee writes to stdout and a file.
type Tee struct {
	mu sync.Mutex
	w  []io.Writer
}

// NewTee opens path for writing (truncated) and returns a Tee to it and stdout.
func NewTee(path string) (*Tee, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &Tee{w: []io.Writer{os.Stdout, f}}, nil
}

// Printf formats to every writer.
func (t *Tee) Printf(format string, a ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := fmt.Sprintf(format, a...)
	for _, w := range t.w {
		_, _ = io.WriteString(w, s)
	}
}

// WriteJSON writes v as indented JSON to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadStat reads the last line of a SIPp -trace_stat file (also while
// SIPp runs, with -fd).
func ReadStat(path string) (SippResult, error) {
	var r SippResult
	err := r.readStat(path)
	return r, err
}
