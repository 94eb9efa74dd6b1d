package proxy_test

// Script faults (issue "Hardening", item 3): exceptions in every kind of
// route, a route that never returns (the watchdog), a route that blocks
// (bounded queues, 503), KSR used from a thread the script started. A
// C-level crash is tested in cmd/kemigo (it ends the process).

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/pybridge"
)

const faultsScript = "testdata/faults.py"

// faultInvite goes through testdata/faults.py to ${target}.
const faultInvite = `INVITE sip:callee@${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:alice@${local_ip}>;tag=${tag}
To: <sip:callee@${server}>
Call-ID: ${call_id}
CSeq: ${cseq} INVITE
Contact: <sip:alice@${local};transport=${proto}>
X-Target: ${target}
Content-Length: ${content_length}

`

// faultAck acknowledges a negative final reply (same branch and CSeq).
const faultAck = `ACK sip:callee@${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:alice@${local_ip}>;tag=${tag}
To: <sip:callee@${server}>;tag=${to_tag}
Call-ID: ${call_id}
CSeq: ${cseq} ACK
Content-Length: ${content_length}

`

// faultOptions is an OPTIONS whose X-Test header tells faults.py what to do.
const faultOptions = `OPTIONS sip:${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:siptest@${local_ip}>;tag=${tag}
To: <sip:${server}>
Call-ID: ${call_id}
CSeq: ${cseq} OPTIONS
X-Test: ${what}
X-Flag: ${flag}
X-Sleep: ${sleep}
Content-Length: ${content_length}

`

func faultsConfig() config.Config {
	cfg := config.Default()
	cfg.AppPython3.Load = faultsScript
	return cfg
}

func options(c *siptest.Client, what string, kv ...string) *siptest.Sent {
	return c.Send(faultOptions, append([]string{"what", what, "flag", "-", "sleep", "0"}, kv...)...)
}

// TestExceptionInEveryRoute: an exception in each kind of route is logged
// with its route, traceback, file and line, and the proxy goes on: the call
// completes (500 for the request route, the UAS's 486 otherwise) and the
// next request is served.
func TestExceptionInEveryRoute(t *testing.T) {
	script := absPath(t, faultsScript)
	p, udp, _ := siptest.StartProxy(t, faultsConfig())
	logs := siptest.Logs(p)
	uas := siptest.StartUAS(t, "udp", "127.0.0.2", siptest.Answer(486, 20*time.Millisecond)...)
	c := siptest.Dial(t, "udp", udp)
	cases := []struct {
		kind, route, exc string
		code             int
	}{
		{"request", "ksr_request_route", "ValueError: fault in the request route", 500},
		{"reply", "ksr_reply_route", "KeyError: 'fault in the reply route'", 486},
		{"onreply", "faults_onreply", "RuntimeError: fault in the onreply route", 486},
		{"failure", "faults_failure", "ZeroDivisionError: integer division or modulo by zero", 486},
		{"branch", "faults_branch", "LookupError: fault in the branch route", 486},
		{"onsend", "ksr_onsend_route", "AttributeError: fault in the onsend route", 486},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			callID := "raise-" + tc.kind + "-" + siptest.NewID(8)
			sent := c.Send(faultInvite, "call_id", callID, "target", uas.URI())
			var final *sip.Response
			for final == nil {
				res := c.Expect()
				if res.CSeq() != nil && res.CSeq().MethodName == sip.INVITE && res.StatusCode >= 200 {
					final = res
				}
			}
			if final.StatusCode != tc.code {
				t.Errorf("final reply %d %s, want %d", final.StatusCode, final.Reason, tc.code)
			}
			if tc.kind != "request" {
				toTag, _ := final.To().Params.Get("tag")
				c.Send(faultAck, "call_id", callID, "branch", sent.Branch, "tag", sent.Tag,
					"cseq", strconv.Itoa(sent.CSeq), "to_tag", toTag)
			}
			e := logs.WaitFor(t, "exception in "+tc.route, siptest.All(
				siptest.AtLevel("error"), siptest.FieldIs("callid", callID), siptest.FieldIs("route", tc.route),
				siptest.MessageContains("unhandled exception")))
			if got := e.Str("file"); got != script {
				t.Errorf("file %q, want %q", got, script)
			}
			if got, _ := e.Int("line"); got != markLine(t, script, tc.kind) {
				t.Errorf("line %d, want %d", got, markLine(t, script, tc.kind))
			}
			if tb := e.Str("traceback"); !strings.HasPrefix(tb, "Traceback (most recent call last):") ||
				!strings.Contains(tb, tc.exc) || !strings.Contains(tb, `File "`+script+`", line `+strconv.Itoa(markLine(t, script, tc.kind))) {
				t.Errorf("traceback:\n%s", tb)
			}
			want := tc.route + ": unhandled exception in the Python code at " + script + ":" + strconv.Itoa(markLine(t, script, tc.kind))
			if e.Message() != want {
				t.Errorf("message %q, want %q", e.Message(), want)
			}
			// still serving
			_, res := c.Exchange(faultOptions, "what", "ok", "flag", "-", "sleep", "0")
			siptest.AssertStatus(t, res, 200, "Handled")
		})
	}
	if n := p.Exceptions.Load(); n < uint64(len(cases)) {
		t.Errorf("Exceptions counter %d, want at least %d", n, len(cases))
	}
	calls := map[string]bool{} // retransmissions aside
	for _, r := range uas.Requests("INVITE") {
		calls[r.Req.CallID().Value()] = true
	}
	if len(calls) != len(cases)-1 {
		t.Errorf("UAS got the INVITEs of %d calls, want %d", len(calls), len(cases)-1)
	}
}

// callIDFor returns a new Call-ID that hashes to worker w.
func callIDFor(t *testing.T, p *proxy.Proxy, w int) string {
	t.Helper()
	for i := 0; i < 10000; i++ {
		id := siptest.NewID(10) + "@w" + strconv.Itoa(w)
		if p.WorkerFor(id) == w {
			return id
		}
	}
	t.Fatalf("no Call-ID for worker %d", w)
	return ""
}

// TestWatchdogStuckWorker: a request route in an endless loop. The watchdog
// logs the worker with its Python stack; that worker's queue fills and its
// new messages get 503 with Retry-After; on Python 3.12+ (a GIL per worker)
// the other worker keeps serving; when the loop ends, the queued messages
// are served and the worker is logged as responsive again.
func TestWatchdogStuckWorker(t *testing.T) {
	script := absPath(t, faultsScript)
	cfg := faultsConfig()
	cfg.Workers = 1 // Python 3.11: one GIL for every worker
	if pybridge.OwnGIL() {
		cfg.Workers = 2
	}
	cfg.QueueLen = 4
	cfg.AppPython3.WatchdogTimeout = 200
	p, udp, _ := siptest.StartProxy(t, cfg)
	logs := siptest.Logs(p)
	flag := filepath.Join(t.TempDir(), "unstick")
	c := siptest.Dial(t, "udp", udp)

	stuckID := callIDFor(t, p, 0)
	t0 := time.Now()
	options(c, "loop", "flag", flag, "call_id", stuckID)
	e := logs.WaitFor(t, "about the stuck worker", siptest.All(siptest.AtLevel("error"),
		siptest.MessageContains("has been running one job")))
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("reported after %s, before watchdog_timeout", d)
	}
	frame := `File "` + script + `", line ` + strconv.Itoa(markLine(t, script, "loop")) + " in spin_until"
	if st := e.Str("stack"); !strings.HasPrefix(st, "Stack (most recent call first):") || !strings.Contains(st, frame) ||
		!strings.Contains(st, " in options\n") || !strings.Contains(st, " in ksr_request_route\n") {
		t.Errorf("stack does not show %s:\n%s", frame, st)
	}
	if !strings.Contains(e.Message(), "In the script: "+frame) {
		t.Errorf("message does not name the script's frame: %s", e.Message())
	}
	if w, ok := e.Int("worker"); !ok || w != 0 {
		t.Errorf("worker %v, want 0", e["worker"])
	}

	t.Run("other-worker-serves", func(t *testing.T) {
		if !pybridge.OwnGIL() {
			t.Skipf("Python %s: one worker by default (workers share one GIL before 3.12), so there is no other worker; the watchdog's stack logging is tested above with one worker", pybridge.PyVersion())
		}
		for i := 0; i < 3; i++ {
			_, res := c.Exchange(faultOptions, "what", "ok", "flag", "-", "sleep", "0", "call_id", callIDFor(t, p, 1))
			siptest.AssertStatus(t, res, 200, "Handled")
		}
	})

	// the stuck worker's queue (4) fills: 6 more messages, 2 get 503
	for i := 0; i < cfg.QueueLen+2; i++ {
		options(c, "ok", "call_id", callIDFor(t, p, 0))
	}
	codes := map[string]int{}
	for i := 0; i < 2; i++ {
		res := c.Expect()
		codes[strconv.Itoa(res.StatusCode)+" "+res.Reason]++
		if res.StatusCode == 503 {
			siptest.AssertHeader(t, res, "Retry-After", "5")
		}
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < cfg.QueueLen+1; i++ {
		res := c.Expect()
		codes[strconv.Itoa(res.StatusCode)+" "+res.Reason]++
	}
	c.ExpectNone(200 * time.Millisecond)
	want := map[string]int{"503 Service Unavailable": 2, "200 Handled": cfg.QueueLen, "200 Unstuck": 1}
	if len(codes) != len(want) || codes["503 Service Unavailable"] != 2 || codes["200 Handled"] != cfg.QueueLen || codes["200 Unstuck"] != 1 {
		t.Errorf("replies %v, want %v", codes, want)
	}
	logs.WaitFor(t, "about the worker being responsive again", siptest.All(siptest.AtLevel("warn"),
		siptest.MessageContains("python worker responsive again")))
	if es := logs.Find(siptest.MessageContains("has been running one job")); len(es) != 1 {
		t.Errorf("stuck job reported %d times, want once", len(es))
	}
}

// TestBlockingRouteOverload: a route that blocks (time.sleep) behind a
// bounded queue. A burst far above what the worker can serve is answered
// at once with 503 and Retry-After for what does not fit in the queue;
// every request gets exactly one final reply; the queue never holds more
// than queue_len jobs and the heap does not grow with the burst.
func TestBlockingRouteOverload(t *testing.T) {
	cfg := faultsConfig()
	cfg.Workers = 1
	cfg.QueueLen = 8
	p, _, tcp := siptest.StartProxy(t, cfg)
	c := siptest.Dial(t, "tcp", tcp)
	const n = 10000

	var maxQueue atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if q := int64(p.Engine.QueueLen(0)); q > maxQueue.Load() {
				maxQueue.Store(q)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	type reply struct {
		code       int
		retryAfter string
	}
	replies := map[string][]reply{}
	var mu sync.Mutex
	var nreplies atomic.Int64
	got := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < n; k++ {
			r, err := c.Recv(10 * time.Second)
			if err != nil {
				t.Errorf("after %d replies: %v", k, err)
				break
			}
			res, ok := r.Msg.(*sip.Response)
			if !ok {
				t.Errorf("not a reply: %s", r.Raw)
				continue
			}
			ra, _ := siptest.Header(res, "Retry-After")
			mu.Lock()
			replies[res.CallID().Value()] = append(replies[res.CallID().Value()], reply{res.StatusCode, ra})
			mu.Unlock()
			nreplies.Add(1)
		}
		close(got)
	}()

	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ids := make([]string, 0, n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ids = append(ids, options(c, "sleep", "sleep", "0.02").CallID)
	}
	sendTime := time.Since(t0)
	// The burst is in and its 503s are out (the client is idle): what is
	// still queued is in the heap now.
	for wait := time.Now(); nreplies.Load() < int64(p.Overloaded.Load()) && time.Since(wait) < 2*time.Second; {
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 3; i++ { // the least of three readings: other goroutines allocate too
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		if i == 0 || m.HeapAlloc < peak.HeapAlloc {
			peak = m
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-got
	close(stop)
	wg.Wait()
	c.ExpectNone(100 * time.Millisecond)

	ok, shed := 0, 0
	for _, id := range ids {
		rs := replies[id]
		if len(rs) != 1 {
			t.Errorf("%s: %d replies", id, len(rs))
			continue
		}
		switch {
		case rs[0].code == 200:
			ok++
		case rs[0].code == 503 && rs[0].retryAfter == "5":
			shed++
		default:
			t.Errorf("%s: reply %+v", id, rs[0])
		}
	}
	growth := int64(peak.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d requests sent in %s: %d served (20 ms each), %d answered 503; max queue %d; live heap %+d KiB",
		n, sendTime.Round(time.Millisecond), ok, shed, maxQueue.Load(), growth/1024)
	if ok+shed != n || shed < n/2 || ok < cfg.QueueLen {
		t.Errorf("served %d, shed %d of %d", ok, shed, n)
	}
	if q := maxQueue.Load(); q > int64(cfg.QueueLen) {
		t.Errorf("queue reached %d jobs, above queue_len %d", q, cfg.QueueLen)
	}
	if got := p.Overloaded.Load(); got != uint64(shed) {
		t.Errorf("overload counter %d, 503s %d", got, shed)
	}
	// An unbounded queue would hold every request of the burst at its end
	// (a parsed message and its job, over 2 KiB each: 20 MiB and more
	// here, measured with queue_len = 100000); the bounded one leaves the
	// test's own bookkeeping (0.5 to 4 MiB).
	if growth > 8<<20 {
		t.Errorf("live heap grew by %d KiB over the burst", growth/1024)
	}
}

// TestKSRFromScriptThreadProxy: a KSR call from a thread the route started
// raises a RuntimeError that says why; the route goes on.
func TestKSRFromScriptThreadProxy(t *testing.T) {
	p, udp, _ := siptest.StartProxy(t, faultsConfig())
	logs := siptest.Logs(p)
	c := siptest.Dial(t, "udp", udp)
	sent := options(c, "thread")
	res := c.Expect()
	siptest.AssertStatus(t, res, 200, "Thread Done")
	e := logs.WaitFor(t, "the thread's result", siptest.All(siptest.FieldIs("callid", sent.CallID),
		siptest.MessageContains("thread result:")))
	want := "thread result: RuntimeError: KSR.info() called outside a message context: KSR functions run only " +
		"on the kemigo worker thread that runs the route, not on a thread the script started"
	if strings.TrimSpace(e.Message()) != want {
		t.Errorf("got %q\nwant %q", e.Message(), want)
	}
}

// faultInDialog is faultOptions inside a dialog (a To tag).
var faultInDialog = strings.Replace(faultOptions, "To: <sip:${server}>", "To: <sip:${server}>;tag=in-dialog", 1)

// TestOverloadKeepsDialogs: behind a stuck worker, new requests get 503
// once queue_len of them wait, while in-dialog requests still find room
// (up to 4 × queue_len): an overload refuses new calls, not the BYEs of the
// calls going on. When the worker is free again every accepted request is
// served.
func TestOverloadKeepsDialogs(t *testing.T) {
	cfg := faultsConfig()
	cfg.Workers = 1
	cfg.QueueLen = 4
	p, udp, _ := siptest.StartProxy(t, cfg)
	flag := filepath.Join(t.TempDir(), "unstick")
	c := siptest.Dial(t, "udp", udp)
	options(c, "loop", "flag", flag, "call_id", callIDFor(t, p, 0))
	for wait := time.Now(); !p.Engine.Workers()[0].Busy.Load(); time.Sleep(time.Millisecond) {
		if time.Since(wait) > 5*time.Second {
			t.Fatal("the loop did not start")
		}
	}
	for i := 0; i < cfg.QueueLen; i++ { // fill the queue of new requests
		options(c, "ok", "call_id", callIDFor(t, p, 0))
	}
	for i := 0; i < 2; i++ { // no room: 503
		options(c, "ok", "call_id", callIDFor(t, p, 0))
		res := c.Expect()
		siptest.AssertStatus(t, res, 503, "Service Unavailable")
		siptest.AssertHeader(t, res, "Retry-After", "5")
	}
	const dialogs = 3 * 4 // 3 × queue_len more
	for i := 0; i < dialogs; i++ {
		c.Send(faultInDialog, "what", "ok", "flag", "-", "sleep", "0", "call_id", callIDFor(t, p, 0))
	}
	c.ExpectNone(300 * time.Millisecond) // all queued, none refused
	if got := p.Overloaded.Load(); got != 2 {
		t.Errorf("%d requests refused, want the 2 new ones", got)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for i := 0; i < 1+cfg.QueueLen+dialogs; i++ {
		res := c.Expect()
		codes[strconv.Itoa(res.StatusCode)+" "+res.Reason]++
	}
	c.ExpectNone(200 * time.Millisecond)
	if codes["200 Unstuck"] != 1 || codes["200 Handled"] != cfg.QueueLen+dialogs || len(codes) != 2 {
		t.Errorf("replies %v, want 1 Unstuck and %d Handled", codes, cfg.QueueLen+dialogs)
	}
}
