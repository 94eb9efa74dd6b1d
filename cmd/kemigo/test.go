package main

// kemigo test: Python route tests on the real core, in-process. The proxy is
// built with an unbound transport (every message it sends is captured), one
// worker in the main interpreter, and a private KEMI module, KSR.kemigo_test,
// through which the Python side (python/kemigo_testing) feeds it SIP text and
// reads back what the core did. The test session itself (pytest when the
// embedded Python can import it, else kemigo_testing's built-in runner) runs
// as one job of that worker, and each request is routed nested, on the same
// worker, synchronously.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/kemigo/kemigo/pybridge"
	"github.com/rs/zerolog"
)

const testUsage = `usage: kemigo test [-c kemigo.toml] [--script FILE] [--runner auto|pytest|builtin]
                   [--log-level debug] [-k EXPR] [-x] [-v] [-q] [PATHS...] [-- RUNNER_ARGS...]

Runs the Python route tests in PATHS (files or directories; default: tests/
when it exists, else the current directory) against kemigo's core. A test
file may name its own configuration and script, relative to itself:
  KEMIGO_CONFIG = "../kemigo.toml"
  KEMIGO_SCRIPT = "../route.py"
Files with different configurations run in separate sessions.`

// testOpts are the parsed command line of kemigo test.
type testOpts struct {
	cfgFile    string
	script     string
	runner     string // auto, pytest, builtin
	logLevel   string
	paths      []string
	runnerArgs []string
}

func parseTestArgs(args []string) (testOpts, error) {
	o := testOpts{runner: "auto", logLevel: "debug"}
	valueOf := func(i *int, name string) (string, error) {
		a := args[*i]
		if k := strings.IndexByte(a, '='); k >= 0 {
			return a[k+1:], nil
		}
		if *i+1 >= len(args) {
			return "", fmt.Errorf("%s needs a value\n%s", name, testUsage)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := a
		if k := strings.IndexByte(a, '='); k >= 0 && strings.HasPrefix(a, "-") {
			name = a[:k]
		}
		var err error
		switch name {
		case "--":
			o.runnerArgs = append(o.runnerArgs, args[i+1:]...)
			i = len(args)
		case "-c", "--c", "-config", "--config":
			o.cfgFile, err = valueOf(&i, "-c")
		case "-script", "--script":
			o.script, err = valueOf(&i, "--script")
		case "-runner", "--runner":
			o.runner, err = valueOf(&i, "--runner")
		case "-log-level", "--log-level":
			o.logLevel, err = valueOf(&i, "--log-level")
		case "-k":
			var v string
			v, err = valueOf(&i, "-k")
			o.runnerArgs = append(o.runnerArgs, "-k", v)
		case "-x", "-v", "-q", "--exitfirst", "--verbose", "--quiet":
			o.runnerArgs = append(o.runnerArgs, a)
		case "-h", "-help", "--help":
			return o, errors.New(testUsage)
		default:
			if strings.HasPrefix(a, "-") && a != "-" {
				return o, fmt.Errorf("unknown option %s (runner options go after --)\n%s", a, testUsage)
			}
			o.paths = append(o.paths, a)
		}
		if err != nil {
			return o, err
		}
	}
	switch o.runner {
	case "auto", "pytest", "builtin":
	default:
		return o, fmt.Errorf("--runner %q: use auto, pytest or builtin", o.runner)
	}
	if _, err := zerolog.ParseLevel(o.logLevel); err != nil || o.logLevel == "" {
		return o, fmt.Errorf("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	if len(o.paths) == 0 {
		if st, err := os.Stat("tests"); err == nil && st.IsDir() {
			o.paths = []string{"tests"}
		} else {
			o.paths = []string{"."}
		}
	}
	return o, nil
}

// testGroup is the tests of one configuration: one proxy, one session.
type testGroup struct {
	cfgFile string // "" for the defaults
	paths   []string
}

var configMarker = regexp.MustCompile(`(?m)^KEMIGO_CONFIG\s*(?::[^=]*)?=\s*(?:r?)["']([^"']+)["']`)

// skipDir mirrors pytest's default norecursedirs.
func skipDir(name string) bool {
	switch name {
	case "__pycache__", "node_modules", "venv", "build", "dist", "CVS", "_darcs", "{arch}":
		return true
	}
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".egg")
}

func isTestFile(name string) bool {
	return strings.HasSuffix(name, ".py") && (strings.HasPrefix(name, "test_") || strings.HasSuffix(name, "_test.py"))
}

// testFiles expands a PATHS argument ("file.py", "file.py::test_x", "dir")
// into the files the runner will collect, each with the argument to give it.
func testFiles(arg string) ([][2]string, error) {
	p := arg
	if k := strings.Index(p, "::"); k >= 0 {
		p = p[:k]
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return [][2]string{{p, arg}}, nil
	}
	var out [][2]string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "pyvenv.cfg")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if isTestFile(d.Name()) {
			out = append(out, [2]string{path, path})
		}
		return nil
	})
	return out, err
}

// fileConfig returns the KEMIGO_CONFIG a test file names (absolute), or "".
func fileConfig(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	m := configMarker.FindSubmatch(b)
	if m == nil {
		return "", nil
	}
	c := string(m[1])
	if !filepath.IsAbs(c) {
		c = filepath.Join(filepath.Dir(file), c)
	}
	if _, err := os.Stat(c); err != nil {
		return "", fmt.Errorf("%s: KEMIGO_CONFIG: %w", file, err)
	}
	return filepath.Abs(c)
}

// groupTests splits the PATHS by configuration. With one configuration the
// paths are given to the runner as they are.
func groupTests(o testOpts) ([]testGroup, error) {
	def := ""
	if o.cfgFile != "" {
		var err error
		if def, err = filepath.Abs(o.cfgFile); err != nil {
			return nil, err
		}
	}
	var order []string
	byCfg := map[string][]string{}
	seen := map[string]bool{}
	for _, arg := range o.paths {
		files, err := testFiles(arg)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			c, err := fileConfig(f[0])
			if err != nil {
				return nil, err
			}
			if c == "" {
				c = def
			}
			if _, ok := byCfg[c]; !ok {
				order = append(order, c)
			}
			if !seen[f[1]] {
				seen[f[1]] = true
				byCfg[c] = append(byCfg[c], f[1])
			}
		}
	}
	if len(order) <= 1 {
		c := def
		if len(order) == 1 {
			c = order[0]
		}
		return []testGroup{{cfgFile: c, paths: o.paths}}, nil
	}
	groups := make([]testGroup, 0, len(order))
	for _, c := range order {
		groups = append(groups, testGroup{cfgFile: c, paths: byCfg[c]})
	}
	return groups, nil
}

// findTestingPackage returns the directory holding kemigo_testing/ (to put
// on sys.path): $KEMIGO_PYTHONPATH, python/ or share/kemigo/python beside
// or above the binary, the current directory or the tests, a virtualenv's
// site-packages, or the system's.
func findTestingPackage(cfg config.Config, paths []string) (string, error) {
	has := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "kemigo_testing", "_boot.py"))
		return err == nil
	}
	var cands []string
	if env := os.Getenv("KEMIGO_PYTHONPATH"); env != "" {
		cands = append(cands, filepath.SplitList(env)...)
	}
	var bases []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		bases = append(bases, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		bases = append(bases, wd)
	}
	for _, p := range paths { // tests inside a kemigo checkout
		if a, err := filepath.Abs(strings.SplitN(p, "::", 2)[0]); err == nil {
			bases = append(bases, a)
		}
	}
	for _, b := range bases {
		for d, i := b, 0; i < 8; i++ {
			cands = append(cands, filepath.Join(d, "python"), filepath.Join(d, "share", "kemigo", "python"))
			up := filepath.Dir(d)
			if up == d {
				break
			}
			d = up
		}
	}
	if v := cfg.AppPython3.Virtualenv; v != "" {
		m, _ := filepath.Glob(filepath.Join(v, "lib", "python3*", "site-packages"))
		cands = append(cands, m...)
	}
	cands = append(cands, cfg.AppPython3.ExtraPaths...)
	cands = append(cands, "/usr/local/share/kemigo/python", "/usr/share/kemigo/python")
	m, _ := filepath.Glob("/usr/local/lib/python3*/dist-packages")
	cands = append(cands, m...)
	cands = append(cands, "/usr/lib/python3/dist-packages")
	for _, c := range cands {
		if has(c) {
			return filepath.Abs(c)
		}
	}
	return "", errors.New("the Python package kemigo_testing (kemigo test) was not found: " +
		"set KEMIGO_PYTHONPATH to the python/ directory of kemigo's source, or pip install it into the virtualenv of [app_python3]")
}

// outcome is what the Python session reports at its end.
type outcome struct {
	Code    int    `json:"code"`
	Runner  string `json:"runner"`
	Passed  int    `json:"passed"`
	Failed  int    `json:"failed"`
	Errors  int    `json:"errors"`
	Skipped int    `json:"skipped"`
}

var errTestsFailed = errFindings // exit status 1, the runner already said why

func cmdTest(args []string) error {
	o, err := parseTestArgs(args)
	if err != nil {
		return err
	}
	groups, err := groupTests(o)
	if err != nil {
		return err
	}
	var total outcome
	failed := false
	for _, g := range groups {
		if len(groups) > 1 {
			name := g.cfgFile
			if name == "" {
				name = "default configuration"
			} else if rel, err := filepath.Rel(mustWd(), name); err == nil && !strings.HasPrefix(rel, "..") {
				name = rel
			}
			fmt.Printf("==== kemigo test: %s: %s\n", name, strings.Join(g.paths, " "))
		}
		res, err := runTestGroup(o, g)
		if err != nil {
			return err
		}
		total.Passed += res.Passed
		total.Failed += res.Failed
		total.Errors += res.Errors
		total.Skipped += res.Skipped
		if res.Code != 0 {
			failed = true
		}
	}
	if len(groups) > 1 {
		fmt.Printf("==== kemigo test: %d passed, %d failed, %d errors, %d skipped in %d sessions\n",
			total.Passed, total.Failed, total.Errors, total.Skipped, len(groups))
	}
	if failed {
		return errTestsFailed
	}
	return nil
}

func mustWd() string {
	wd, _ := os.Getwd()
	return wd
}

// runTestGroup builds a proxy for one configuration and runs the session.
func runTestGroup(o testOpts, g testGroup) (outcome, error) {
	cfg := config.Default()
	if g.cfgFile != "" {
		var err error
		if cfg, err = config.Load(g.cfgFile); err != nil {
			return outcome{}, err
		}
	}
	if o.script != "" {
		cfg.AppPython3.Load, cfg.AppPython3.ScriptName = o.script, ""
	}
	// One worker in the main interpreter: Debian's pytest (and any C
	// extension a script imports) works there, and tests run in order.
	cfg.Workers = 1
	cfg.AppPython3.SingleInterpreter = true
	cfg.AppPython3.Watch = false
	pyDir, err := findTestingPackage(cfg, g.paths)
	if err != nil {
		return outcome{}, err
	}
	cfg.AppPython3.ExtraPaths = append([]string{pyDir}, cfg.AppPython3.ExtraPaths...)
	lv, _ := zerolog.ParseLevel(o.logLevel) // checked by parseTestArgs
	h := &harness{logs: &logSink{}, results: map[int64]*kemi.Ctx{}}
	log := zerolog.New(h.logs).Level(lv).With().Timestamp().Logger()
	p, err := proxy.NewWith(cfg, log, proxy.Options{Capture: h.capture, NoScript: true, ExtraExports: h.exports()})
	if err != nil {
		return outcome{}, err
	}
	h.p = p
	p.Start()
	defer p.Close()

	script := cfg.Script()
	if script != "" {
		if abs, err := filepath.Abs(script); err == nil {
			script = abs
		}
	}
	var socks []map[string]any
	for _, s := range p.TP.Sockets() {
		socks = append(socks, map[string]any{"proto": s.Proto, "host": s.IP, "port": s.Port})
	}
	info := map[string]any{
		"config":  g.cfgFile,
		"script":  script,
		"sockets": socks,
		"python":  pybridge.PyVersion(),
		"kemigo":  Version,
		"runner":  o.runner,
		"paths":   g.paths,
		"args":    o.runnerArgs,
	}
	ib, _ := json.Marshal(info)
	h.info = string(ib)

	var res outcome
	var runErr error
	p.Engine.Run(0, func(w *pybridge.Worker) {
		h.w = w
		h.top = &kemi.Ctx{Msg: sipmsg.Faked(), Worker: w.State, BranchIdx: -1, Log: log}
		boot := filepath.Join(pyDir, "kemigo_testing", "_boot.py")
		if err := w.Load(boot); err != nil {
			var se *pybridge.ScriptError
			if errors.As(err, &se) {
				err = errors.New(se.Text)
			}
			runErr = fmt.Errorf("cannot start the test runner (%s): %w", boot, err)
			return
		}
		r := w.CallRoute(h.top, "kemigo_test_run", h.info)
		switch {
		case r.Status == pybridge.RouteMissing:
			runErr = errors.New("the test runner has no kemigo_test_run")
		case r.Err != nil && h.done == nil:
			runErr = fmt.Errorf("the test runner failed:\n%s", r.Err.Text)
		case h.done == nil:
			runErr = errors.New("the test runner ended without a result")
		}
	})
	if runErr != nil {
		return res, runErr
	}
	return *h.done, nil
}

// harness is what the KSR.kemigo_test functions work on.
type harness struct {
	p       *proxy.Proxy
	w       *pybridge.Worker
	top     *kemi.Ctx // context of the test code itself (the faked message)
	logs    *logSink
	info    string
	mu      sync.Mutex
	sent    []sentMsg
	results map[int64]*kemi.Ctx
	nextID  int64
	done    *outcome
}

// sentMsg is one message the core sent, as Python sees it.
type sentMsg struct {
	Kind    string      `json:"kind"` // "reply" or "request"
	Proto   string      `json:"proto"`
	Host    string      `json:"host"`
	Port    int         `json:"port"`
	Code    int         `json:"code,omitempty"`
	Reason  string      `json:"reason,omitempty"`
	Method  string      `json:"method,omitempty"`
	RURI    string      `json:"ruri,omitempty"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
	Text    string      `json:"text"`
}

// capture is the transport's Capture hook: it records the message as it is
// now (tm keeps and may change its own copy afterwards).
func (h *harness) capture(msg sip.Message, proto, host string, port int) {
	s := sentMsg{Proto: strings.ToLower(proto), Host: host, Port: port, Body: string(msg.Body()), Text: msg.String()}
	var hdrs []sip.Header
	switch m := msg.(type) {
	case *sip.Response:
		s.Kind, s.Code, s.Reason = "reply", m.StatusCode, m.Reason
		hdrs = m.Headers()
	case *sip.Request:
		s.Kind, s.Method, s.RURI = "request", string(m.Method), m.Recipient.String()
		hdrs = m.Headers()
	}
	s.Headers = [][2]string{}
	for _, hd := range hdrs {
		s.Headers = append(s.Headers, [2]string{hd.Name(), hd.Value()})
	}
	h.mu.Lock()
	h.sent = append(h.sent, s)
	h.mu.Unlock()
}

func (h *harness) sentSince(i int) []sentMsg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sentMsg{}, h.sent[i:]...)
}

func (h *harness) sentLen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sent)
}

// logSink keeps every log line (zerolog writes one JSON object per call).
type logSink struct {
	mu    sync.Mutex
	lines [][]byte
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, append([]byte(nil), p...))
	l.mu.Unlock()
	return len(p), nil
}

func (l *logSink) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// logLine is one log entry as Python sees it.
type logLine struct {
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields"`
}

func (l *logSink) Since(i int) []logLine {
	l.mu.Lock()
	lines := l.lines
	if i > len(lines) || i < 0 {
		i = len(lines)
	}
	lines = lines[i:]
	l.mu.Unlock()
	out := make([]logLine, 0, len(lines))
	for _, b := range lines {
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			out = append(out, logLine{Level: "?", Message: strings.TrimSpace(string(b)), Fields: map[string]any{}})
			continue
		}
		ll := logLine{Fields: map[string]any{}}
		for k, v := range m {
			switch k {
			case zerolog.LevelFieldName:
				ll.Level, _ = v.(string)
			case zerolog.MessageFieldName:
				ll.Message, _ = v.(string)
			case zerolog.TimestampFieldName:
			default:
				ll.Fields[k] = v
			}
		}
		out = append(out, ll)
	}
	return out
}

func jsonStr(v any) val.Value {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return val.OfStr(string(b))
}

func errJSON(format string, a ...any) val.Value {
	return jsonStr(map[string]string{"error": fmt.Sprintf(format, a...)})
}

// exports is the private KSR.kemigo_test module (not in `kemigo stubs`).
func (h *harness) exports() []kemi.Export {
	x := func(name, params string, ret kemi.RetType, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "kemigo_test", Name: name, Params: kemi.P(params), Ret: ret, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		x("info", "", kemi.RStr, "JSON: configuration, script, sockets of this test session", h.kInfo),
		x("load", "s", kemi.RStr, "load a route script; \"\" or JSON {error, file, line}", h.kLoad),
		x("receive", "sssi", kemi.RStr, "route SIP text (proto, src ip, src port); JSON of what the core did", h.kReceive),
		x("pv", "is", kemi.RStr, "JSON {value} of a PV after the route of result id (0: outside a message)", h.kPV),
		x("reset", "", kemi.RStr, "empty the htables and $var; JSON {log}", h.kReset),
		x("logs", "i", kemi.RStr, "JSON of the log lines from index i", h.kLogs),
		x("run_pending", "", kemi.RStr, "run the timer jobs queued for the worker; JSON of what they did", h.kRunPending),
		x("done", "s", kemi.RInt, "the session's outcome (JSON)", h.kDone),
	}
}

func (h *harness) kInfo(c *kemi.Ctx, a []val.Value) val.Value { return val.OfStr(h.info) }

func (h *harness) kLoad(c *kemi.Ctx, a []val.Value) val.Value {
	if h.w == nil {
		return errJSON("no worker")
	}
	if err := h.w.Load(a[0].S); err != nil {
		var se *pybridge.ScriptError
		if errors.As(err, &se) {
			return jsonStr(map[string]any{"error": se.Text, "file": se.File, "line": se.Line})
		}
		return errJSON("%v", err)
	}
	return jsonStr(map[string]any{"style": h.w.Style()})
}

// routeResult is what one received message made the core do.
type routeResult struct {
	ID      int64          `json:"id"`
	Status  string         `json:"status"` // ok, exception, exit, missing
	Error   map[string]any `json:"error,omitempty"`
	Sent    []sentMsg      `json:"sent"`
	Logs    []logLine      `json:"logs"`
	Flags   uint32         `json:"flags"`
	BFlags  uint32         `json:"bflags"`
	RURI    string         `json:"ruri"`
	DU      string         `json:"du"`
	Replied int            `json:"replied"`
	Relayed bool           `json:"relayed"`
	Log     int            `json:"log"` // log index after the route
}

func (h *harness) kReceive(c *kemi.Ctx, a []val.Value) val.Value {
	if h.w == nil {
		return errJSON("no worker")
	}
	text, proto, ip, port := a[0].S, strings.ToLower(a[1].S), a[2].S, int(a[3].I)
	m, err := sipmsg.Parse([]byte(text))
	if err != nil {
		return errJSON("the SIP message does not parse: %v", err)
	}
	sock := h.p.TP.Socket(proto)
	if sock == nil {
		var have []string
		for _, s := range h.p.TP.Sockets() {
			have = append(have, s.String())
		}
		return errJSON("no %s socket to receive on (listen: %s)", proto, strings.Join(have, ", "))
	}
	m.Proto, m.SrcIP, m.SrcPort = proto, ip, port
	m.DstIP, m.DstPort = sock.IP, sock.Port
	m.Replier = h.p.TP
	sm := m.SIP()
	sm.SetTransport(strings.ToUpper(proto))
	sm.SetSource(sipmsg.JoinHostPort(ip, port))
	sm.SetDestination(sipmsg.JoinHostPort(sock.IP, sock.Port))

	s0, l0 := h.sentLen(), h.logs.Len()
	h.p.Route(h.w, m)
	r := h.collect(s0, l0)
	h.nextID++
	r.ID = h.nextID
	route := kemi.RouteRequest
	if m.Req == nil {
		route = kemi.RouteReply
	}
	h.results[r.ID] = &kemi.Ctx{Msg: m, Route: route, Worker: h.w.State, BranchIdx: -1, Log: h.p.Log}
	r.Flags, r.BFlags = m.Flags, m.BFlags
	r.RURI, r.DU = m.RURI(), m.DstURI
	r.Replied, r.Relayed = m.Replied, m.Relayed
	return jsonStr(r)
}

// collect gathers what was sent and logged since the given indexes.
func (h *harness) collect(s0, l0 int) routeResult {
	r := routeResult{Status: "ok", Sent: h.sentSince(s0), Logs: h.logs.Since(l0), Log: h.logs.Len()}
	if r.Sent == nil {
		r.Sent = []sentMsg{}
	}
	for _, l := range r.Logs {
		switch {
		case strings.Contains(l.Message, "unhandled exception in the Python code"):
			r.Status = "exception"
			r.Error = map[string]any{"text": l.Fields["traceback"], "file": l.Fields["file"], "line": l.Fields["line"], "route": l.Fields["route"]}
		case l.Message == "route ended by sys.exit()" && r.Status == "ok":
			r.Status = "exit"
		case strings.HasSuffix(l.Message, " not found or is not callable") && r.Status == "ok":
			r.Status = "missing"
		}
	}
	return r
}

func pyValue(v val.Value) any {
	switch v.Kind {
	case val.Int:
		return v.I
	case val.Str:
		return v.S
	case val.Bool:
		return v.I != 0
	}
	return nil
}

func (h *harness) kPV(c *kemi.Ctx, a []val.Value) val.Value {
	ctx := h.top
	if id := a[0].I; id != 0 {
		ctx = h.results[id]
		if ctx == nil {
			return errJSON("result %d is gone (results are dropped when the next test starts)", id)
		}
	}
	v, err := pv.Get(ctx, a[1].S)
	if err != nil {
		return errJSON("%s: %v", a[1].S, err)
	}
	return jsonStr(map[string]any{"value": pyValue(v)})
}

// stateResetter is implemented by modules whose state outlives a message
// (registrations, counters): kemigo test empties it before every test.
type stateResetter interface{ ResetState() }

func (h *harness) kReset(c *kemi.Ctx, a []val.Value) val.Value {
	// timers of earlier tests that fired meanwhile run now, not in this test
	if h.w != nil {
		h.w.RunPending()
	}
	if e := h.p.Table.Lookup("htable", "sht_reset"); e != nil {
		for _, t := range h.p.Mods.HTable.Tables() {
			e.Fn(h.top, []val.Value{val.OfStr(t)})
		}
	}
	// modules keeping other state across messages (usrloc, pike...) empty
	// it when they implement ResetState
	if h.p.Mods != nil {
		mv := reflect.ValueOf(h.p.Mods).Elem()
		for i := 0; i < mv.NumField(); i++ {
			f := mv.Field(i)
			if !f.CanInterface() || (f.Kind() == reflect.Pointer && f.IsNil()) {
				continue
			}
			if r, ok := f.Interface().(stateResetter); ok {
				r.ResetState()
			}
		}
	}
	if h.w != nil {
		for k := range h.w.State.Vars {
			delete(h.w.State.Vars, k)
		}
	}
	h.results = map[int64]*kemi.Ctx{}
	return jsonStr(map[string]any{"log": h.logs.Len()})
}

func (h *harness) kLogs(c *kemi.Ctx, a []val.Value) val.Value {
	return jsonStr(h.logs.Since(int(a[0].I)))
}

func (h *harness) kRunPending(c *kemi.Ctx, a []val.Value) val.Value {
	s0, l0 := h.sentLen(), h.logs.Len()
	n := 0
	if h.w != nil {
		n = h.w.RunPending()
	}
	r := h.collect(s0, l0)
	return jsonStr(map[string]any{"jobs": n, "status": r.Status, "error": r.Error, "sent": r.Sent, "logs": r.Logs, "log": r.Log})
}

func (h *harness) kDone(c *kemi.Ctx, a []val.Value) val.Value {
	var o outcome
	if err := json.Unmarshal([]byte(a[0].S), &o); err != nil {
		o = outcome{Code: 3}
	}
	h.done = &o
	return val.OfInt(0)
}
