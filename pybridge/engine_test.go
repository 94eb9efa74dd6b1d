package pybridge

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// recorder collects what scripts pass to KSR.t.record, per worker.
var (
	recMu    sync.Mutex
	recorded []string
)

func takeRecords() []string {
	recMu.Lock()
	defer recMu.Unlock()
	r := recorded
	recorded = nil
	return r
}

func testTable() *kemi.Table {
	t := kemi.NewTable()
	t.Register(
		kemi.Export{Name: "info", Params: kemi.S(1), Ret: kemi.RNone, Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return val.NullValue }},
		kemi.Export{Module: "t", Name: "record", Params: kemi.S(1), Ret: kemi.RInt, Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
			recMu.Lock()
			recorded = append(recorded, a[0].S)
			recMu.Unlock()
			return val.OfInt(1)
		}},
		kemi.Export{Module: "t", Name: "add", Params: kemi.I(1), Ret: kemi.RInt, Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return val.OfInt(a[0].I + 1) }},
		kemi.Export{Module: "t", Name: "xval", Params: kemi.I(1), Ret: kemi.RXval, Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
			switch a[0].I {
			case 0:
				return val.NullValue
			case 1:
				return val.OfInt(42)
			}
			return val.OfStr("héllo")
		}},
		kemi.Export{Module: "t", Name: "flag", Params: nil, Ret: kemi.RBool, Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return val.OfBool(true) }},
		kemi.Export{Module: "t", Name: "none", Params: nil, Ret: kemi.RNone, Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return val.NullValue }},
		// a bug in a KEMI function: a nil pointer dereference (faults_test.go)
		kemi.Export{Module: "t", Name: "nilderef", Params: nil, Ret: kemi.RInt, Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
			var p *kemi.Ctx
			return val.OfInt(int64(p.BranchIdx))
		}},
	)
	return t
}

func TestMain(m *testing.M) {
	if err := Init(testTable()); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func newEngine(t *testing.T, script string, workers int) *Engine {
	t.Helper()
	e, err := New(Options{Script: script, Workers: workers}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

const options = "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK1\r\n" +
	"From: <sip:a@x>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: abc@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

func ctxFor(t *testing.T) *kemi.Ctx {
	m, err := sipmsg.Parse([]byte(options))
	if err != nil {
		t.Fatal(err)
	}
	m.SrcIP, m.SrcPort = "127.0.0.2", 5070
	return &kemi.Ctx{Msg: m, Log: zerolog.Nop(), BranchIdx: -1}
}

func call(t *testing.T, e *Engine, worker int, route string) RouteResult {
	var r RouteResult
	e.Run(worker, func(w *Worker) {
		c := ctxFor(t)
		c.Worker = w.State
		r = w.CallRoute(c, route, "")
	})
	return r
}

func TestRouteAndPerWorkerState(t *testing.T) {
	e := newEngine(t, "testdata/basic.py", 2)
	takeRecords()
	call(t, e, 0, "ksr_request_route")
	call(t, e, 0, "ksr_request_route")
	call(t, e, 1, "ksr_request_route")
	got := strings.Join(takeRecords(), " ")
	// globals are per worker: worker 1 starts its own counter; ranks are 1 and 2
	if want := "OPTIONS:1:1 OPTIONS:2:1 OPTIONS:1:2"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestExceptionReportsLineAndDoesNotLeak(t *testing.T) {
	e := newEngine(t, "testdata/basic.py", 1)
	takeRecords()
	r := call(t, e, 0, "raises")
	if r.Status != RouteExc || r.Err == nil {
		t.Fatalf("status %d", r.Status)
	}
	if !strings.HasSuffix(r.Err.File, "testdata/basic.py") || r.Err.Line != 23 {
		t.Fatalf("location %s:%d", r.Err.File, r.Err.Line)
	}
	if !strings.Contains(r.Err.Text, "KeyError: 'missing'") || !strings.Contains(r.Err.Text, "Traceback") {
		t.Fatalf("traceback %q", r.Err.Text)
	}
	// the next message on that worker runs normally (5.6.3 would fail it)
	if r := call(t, e, 0, "ksr_request_route"); r.Status != RouteOK {
		t.Fatalf("next route: %+v", r)
	}
	if got := takeRecords(); len(got) != 2 || got[0] != "before" {
		t.Fatalf("records %v", got)
	}
	if r := call(t, e, 0, "exits"); r.Status != RouteExit {
		t.Fatalf("sys.exit status %d", r.Status)
	}
	if r := call(t, e, 0, "no_such_route"); r.Status != RouteMissing {
		t.Fatalf("missing status %d", r.Status)
	}
}

func TestArgumentTypesAndReturns(t *testing.T) {
	e := newEngine(t, "testdata/basic.py", 1)
	takeRecords()
	call(t, e, 0, "types")
	call(t, e, 0, "retval")
	call(t, e, 0, "hdr")
	got := takeRecords()
	want := []string{
		"ok,TypeError,ok,OverflowError,TypeError",
		"None|42|'héllo'|True|0",
		"abc@x|None|('127.0.0.2', 5070)|SIP_REQUEST|sip:bob@127.0.0.1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMissingModuleAndSavedMsg(t *testing.T) {
	e := newEngine(t, "testdata/basic.py", 1)
	takeRecords()
	call(t, e, 0, "missing_mod")
	call(t, e, 0, "keep")
	call(t, e, 0, "use_saved")
	got := takeRecords()
	if len(got) != 3 || !strings.Contains(got[0], "KSR.dispatcher.ds_select_dst") ||
		!strings.Contains(got[0], "KSR.dispatcher module") || !strings.Contains(got[1], "KSR.t.nope") ||
		got[2] != "RE:self->msg is NULL" {
		t.Fatalf("got %q", got)
	}
}

func TestStyle3s(t *testing.T) {
	e := newEngine(t, "testdata/style3s.py", 1)
	takeRecords()
	call(t, e, 0, "ksr_request_route")
	call(t, e, 0, "with_msg")
	if got := strings.Join(takeRecords(), ","); got != "3s-noarg,3s:OPTIONS" {
		t.Fatalf("got %q", got)
	}
}

func TestBrokenScriptAndReloadKeepsOld(t *testing.T) {
	_, err := New(Options{Script: "testdata/broken.py", Workers: 1}, zerolog.Nop())
	se, ok := err.(*ScriptError)
	if !ok || se.Line != 5 || !strings.Contains(se.Text, "ZeroDivisionError") {
		t.Fatalf("err %v", err)
	}
	e := newEngine(t, "testdata/basic.py", 1)
	if err := e.Reload("testdata/broken.py"); err == nil {
		t.Fatal("reload of a broken script succeeded")
	}
	takeRecords()
	if r := call(t, e, 0, "ksr_request_route"); r.Status != RouteOK {
		t.Fatalf("old script gone: %+v", r)
	}
}

// TestParallelWorkers shows two workers running Python at the same time on
// Python 3.12+ (own GIL per worker): both are inside a CPU-bound route at once.
func TestParallelWorkers(t *testing.T) {
	if !OwnGIL() {
		t.Skipf("Python %s has one GIL for all interpreters; parallel workers need 3.12+", PyVersion())
	}
	e := newEngine(t, "testdata/basic.py", 2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	busyBoth := false
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ws := e.Workers()
			if ws[0].Busy.Load() && ws[1].Busy.Load() {
				mu.Lock()
				busyBoth = true
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); call(t, e, i, "spin") }(i)
	}
	wg.Wait()
	close(stop)
	if !busyBoth {
		t.Fatal("the two workers never ran Python at the same time")
	}
}

// Dispatch runs a job on the caller's thread when the worker is free, and
// queues it behind a busy or backlogged worker: either way one worker's
// jobs run one at a time and in the order they were dispatched.
func TestDispatchInlineAndQueued(t *testing.T) {
	for _, workers := range []int{1, 2} {
		e := newEngine(t, "testdata/basic.py", workers)
		takeRecords()
		route := func(w *Worker) {
			c := ctxFor(t)
			c.Worker = w.State
			if r := w.CallRoute(c, "ksr_request_route", ""); r.Status != RouteOK {
				t.Errorf("route status %d", r.Status)
			}
		}
		// idle worker: inline, and the script's globals are the worker's
		for i := 0; i < 3; i++ {
			if !e.Dispatch(0, route, nil, false) {
				t.Fatal("dispatch refused")
			}
		}
		if n := e.Workers()[0].Inline.Load(); n != 3 {
			t.Fatalf("workers=%d: %d jobs ran inline, want 3", workers, n)
		}
		if got, want := strings.Join(takeRecords(), " "), "OPTIONS:1:1 OPTIONS:2:1 OPTIONS:3:1"; got != want {
			t.Fatalf("workers=%d: got %q want %q", workers, got, want)
		}
		// an exception inline reports its line, read on the same thread
		var exc RouteResult
		e.Dispatch(0, func(w *Worker) { c := ctxFor(t); c.Worker = w.State; exc = w.CallRoute(c, "raises", "") }, nil, false)
		if exc.Status != RouteExc || exc.Err == nil || exc.Err.Line != 23 {
			t.Fatalf("workers=%d: inline exception %+v", workers, exc)
		}
		takeRecords()

		// busy worker: the jobs dispatched meanwhile queue, in order
		release := make(chan struct{})
		started := make(chan struct{})
		e.Submit(0, func(w *Worker) { close(started); <-release })
		<-started
		var mu sync.Mutex
		var order []int
		before := e.Workers()[0].Inline.Load()
		for i := 0; i < 20; i++ {
			i := i
			if !e.Dispatch(0, func(w *Worker) { mu.Lock(); order = append(order, i); mu.Unlock() }, nil, false) {
				t.Fatal("dispatch refused")
			}
		}
		close(release)
		e.Run(0, func(*Worker) {}) // after the queued jobs
		if n := e.Workers()[0].Inline.Load(); n != before {
			t.Fatalf("workers=%d: %d jobs ran inline beside a busy worker", workers, n-before)
		}
		for i, v := range order {
			if v != i {
				t.Fatalf("workers=%d: order %v", workers, order)
			}
		}
		if len(order) != 20 {
			t.Fatalf("workers=%d: %d of 20 jobs ran", workers, len(order))
		}
	}
}

// Many goroutines dispatching to the same workers at once: every route
// runs once, one at a time per worker (the script's counter sees no lost
// update), inline or queued.
func TestDispatchConcurrent(t *testing.T) {
	e := newEngine(t, "testdata/basic.py", 2)
	takeRecords()
	const per = 50
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				for !e.Dispatch(i%2, func(w *Worker) {
					c := ctxFor(t)
					c.Worker = w.State
					w.CallRoute(c, "ksr_request_route", "")
				}, nil, false) {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	e.Run(0, func(*Worker) {})
	e.Run(1, func(*Worker) {})
	max := map[string]int{}
	n := 0
	for _, r := range takeRecords() {
		var cnt, rank int
		if _, err := fmt.Sscanf(r, "OPTIONS:%d:%d", &cnt, &rank); err != nil {
			t.Fatalf("record %q", r)
		}
		n++
		if k := fmt.Sprint(rank); cnt > max[k] {
			max[k] = cnt
		}
	}
	if n != 4*per || max["1"] != 2*per || max["2"] != 2*per {
		t.Fatalf("%d routes, last counters %v; want %d and %d each", n, max, 4*per, 2*per)
	}
	t.Logf("inline: %d + %d of %d", e.Workers()[0].Inline.Load(), e.Workers()[1].Inline.Load(), 4*per)
}
