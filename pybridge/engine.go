// Package pybridge runs KEMI route scripts in embedded CPython. bridge.c is
// the only code that calls CPython; this file drives it: one Python main
// thread that never runs scripts, and N workers, each a goroutine locked to
// its OS thread with a persistent thread state in its own interpreter.
package pybridge

/*
#cgo pkg-config: python3-embed
#cgo CFLAGS: -O2 -Wall -Wno-unused-function
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// maxWorkers bounds the workers one process starts over its life.
const maxWorkers = 4096

//go:embed helper.py
var helperSource string

// Interpreter modes of a worker.
const (
	ModeMain   = C.KG_MODE_MAIN
	ModeShared = C.KG_MODE_SHARED
	ModeOwn    = C.KG_MODE_OWN
)

// Route call outcomes.
const (
	RouteOK      = C.KG_OK
	RouteMissing = C.KG_MISSING
	RouteExc     = C.KG_EXC
	RouteExit    = C.KG_EXIT
)

// PyVersionHex is PY_VERSION_HEX of the Python kemigo was built against.
var PyVersionHex = int(C.kg_version_hex())

// PyVersion is "3.11" style.
func PyVersion() string { return fmt.Sprintf("%d.%d", PyVersionHex>>24, (PyVersionHex>>16)&0xff) }

// OwnGIL reports whether this Python can give each worker its own GIL.
func OwnGIL() bool { return PyVersionHex >= 0x030C0000 }

// Options configure the engine (the [app_python3] config section).
type Options struct {
	Script     string   // the route script (modparam "load")
	Style      string   // "auto", "python3" (app_python3) or "python3s" (app_python3s)
	ModInit    string   // mod_init_function, default "mod_init"
	ChildInit  string   // child_init_method, default "child_init"
	Workers    int      // 0: 1 on Python 3.11, NumCPU on 3.12+
	Single     bool     // one worker in the main interpreter (C extensions that refuse sub-interpreters)
	ExtraPaths []string // prepended to sys.path (libraries, a virtualenv's site-packages)
	// QueueLen is how many jobs may wait per worker before Submit and
	// Dispatch refuse a new one (default 1024); jobs of in-dialog traffic
	// (SubmitInDialog, Dispatch with inDialog) may use a reserve of
	// DialogReserve-1 times as many more, so an overload sheds new calls
	// and registrations, not the BYEs, ACKs and replies of calls going on.
	QueueLen int
	// Queued turns off inline dispatch: every message is handed to its
	// worker's own thread (the behaviour before inline dispatch; kept for
	// comparisons and as a fallback).
	Queued bool
	// WatchdogTimeout: a worker running one job for longer is logged as
	// stuck, with its Python stack (watchdog.go); 0 turns the watchdog off.
	WatchdogTimeout time.Duration
	// Table is this engine's export table (nil: the one given to Init). It
	// must have the layout given to Init (same functions, ids and types):
	// the C binding is fixed once per process, but each proxy built in one
	// process (tests) binds its own module instances.
	Table *kemi.Table
}

// Engine owns the Python workers.
type Engine struct {
	table   *kemi.Table
	opts    Options
	log     zerolog.Logger
	workers []*Worker
	mode    int
	// mu guards closed: senders hold it shared, Close exclusively, so no
	// job is sent on a closed queue (tm timers may fire during shutdown).
	mu     sync.RWMutex
	closed bool
	wdStop chan struct{} // closed by Close to stop the watchdog
	wdDone chan struct{}
}

// Worker is one Python worker: an OS thread with its own interpreter.
type Worker struct {
	ID     int
	eng    *Engine
	cw     *C.kg_worker
	jobs   chan func(*Worker)
	State  *kemi.WorkerState
	stack  []*kemi.Ctx
	ids    []uint64
	seq    uint64
	faked  *kemi.Ctx
	cnames map[string]*C.char
	args   []valueBuf
	done   chan struct{}
	Busy   atomic.Bool // running a job (read by tests and the watchdog)
	// jobStart is when the running job started (monotonic, see monoNow),
	// 0 between jobs; the watchdog reads it.
	jobStart atomic.Int64
	// cwMu guards cw against kg_worker_free while the watchdog reads the
	// worker's stack.
	cwMu sync.Mutex
	// mu is held by whoever runs Python in this worker: its own goroutine
	// for a queued job, or a reader goroutine running a route inline
	// (Dispatch). One thread at a time per interpreter, as in Kamailio one
	// message at a time per process.
	mu sync.Mutex
	// queued counts jobs sent to jobs and not yet started: Dispatch runs
	// inline only when none waits, so a worker keeps its messages in order;
	// Submit refuses beyond QueueLen of them (the running job not counted).
	queued atomic.Int64
	// Inline counts jobs run by Dispatch on the caller's thread.
	Inline atomic.Uint64
}

var (
	initOnce  sync.Once
	initErr   error
	theTable  *kemi.Table
	regMu     sync.Mutex
	registry  [maxWorkers]atomic.Pointer[Worker]
	nextWID   int
	pyMainErr = errors.New("python main thread")
)

func sameLayout(a, b *kemi.Table) error {
	if len(a.All()) != len(b.All()) {
		return fmt.Errorf("pybridge: export table has %d functions, the process started with %d", len(b.All()), len(a.All()))
	}
	for i, e := range a.All() {
		f := b.All()[i]
		if e.Module != f.Module || e.Name != f.Name || e.Ret != f.Ret || len(e.Params) != len(f.Params) {
			return fmt.Errorf("pybridge: export %d is %s, the process started with %s", i, f.FullName(), e.FullName())
		}
		for j := range e.Params {
			if e.Params[j] != f.Params[j] {
				return fmt.Errorf("pybridge: %s parameter types differ from the process's table", f.FullName())
			}
		}
	}
	return nil
}

// Init starts CPython with the given export table. It must be called once
// per process, before New; the table cannot change afterwards.
func Init(table *kemi.Table) error {
	initOnce.Do(func() {
		theTable = table
		for _, e := range table.All() {
			var ps strings.Builder
			for _, p := range e.Params {
				if p == kemi.PInt {
					ps.WriteByte('i')
				} else {
					ps.WriteByte('s')
				}
			}
			m, n, p := C.CString(e.Module), C.CString(e.Name), C.CString(ps.String())
			C.kg_register_export(C.int(e.ID), m, n, p, C.int(e.Ret))
			C.free(unsafe.Pointer(m))
			C.free(unsafe.Pointer(n))
			C.free(unsafe.Pointer(p))
		}
		ready := make(chan error)
		go func() {
			// The thread that initialises Python keeps it; it never runs
			// scripts, so no script can touch signals (Go keeps them).
			runtime.LockOSThread()
			src := C.CString(helperSource)
			var ebuf [512]C.char
			if C.kg_init(src, &ebuf[0], C.int(len(ebuf))) != 0 {
				ready <- fmt.Errorf("%w: %s", pyMainErr, C.GoString(&ebuf[0]))
				return
			}
			ready <- nil
			select {} // keep this thread (and its locked OS thread) alive
		}()
		initErr = <-ready
	})
	if initErr == nil && table != theTable {
		return sameLayout(theTable, table)
	}
	return initErr
}

// New starts the workers and loads the script in each. On any failure the
// workers already started are stopped.
func New(opts Options, log zerolog.Logger) (*Engine, error) {
	if theTable == nil {
		return nil, errors.New("pybridge: Init not called")
	}
	if opts.Style == "" {
		opts.Style = "auto"
	}
	if opts.ModInit == "" {
		opts.ModInit = "mod_init"
	}
	if opts.ChildInit == "" {
		opts.ChildInit = "child_init"
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 1024
	}
	e := &Engine{table: theTable, opts: opts, log: log}
	if opts.Table != nil {
		if err := sameLayout(theTable, opts.Table); err != nil {
			return nil, err
		}
		e.table = opts.Table
	}
	n := opts.Workers
	switch {
	case opts.Single:
		if n > 1 {
			log.Warn().Int("workers", n).Msg("single-interpreter mode runs one worker")
		}
		n, e.mode = 1, ModeMain
	case OwnGIL():
		if n <= 0 {
			n = runtime.NumCPU()
		}
		e.mode = ModeOwn
	default:
		if n <= 0 {
			n = 1
		}
		if n == 1 {
			e.mode = ModeMain
		} else {
			// Python 3.11: one GIL for every interpreter. Sub-interpreters
			// still give each worker its own globals, but not parallelism.
			log.Warn().Int("workers", n).Str("python", PyVersion()).
				Msg("workers share one GIL before Python 3.12; more than one worker adds no parallelism")
			e.mode = ModeShared
		}
	}
	if opts.Script != "" {
		if _, err := os.Stat(opts.Script); err != nil {
			return nil, fmt.Errorf("script: %w", err)
		}
	}
	for i := 0; i < n; i++ {
		w, err := e.startWorker(i)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.workers = append(e.workers, w)
	}
	e.startWatchdog(opts.WatchdogTimeout)
	return e, nil
}

// Mode returns the interpreter mode of the workers.
func (e *Engine) Mode() string {
	switch e.mode {
	case ModeOwn:
		return "subinterpreter-own-gil"
	case ModeShared:
		return "subinterpreter-shared-gil"
	}
	return "main-interpreter"
}

// Workers returns the workers.
func (e *Engine) Workers() []*Worker { return e.workers }

// Options returns the options the engine runs with.
func (e *Engine) Options() Options { return e.opts }

// Table returns the export table.
func (e *Engine) Table() *kemi.Table { return e.table }

func (e *Engine) startWorker(idx int) (*Worker, error) {
	regMu.Lock()
	wid := nextWID
	nextWID++
	regMu.Unlock()
	if wid >= maxWorkers {
		return nil, errors.New("pybridge: too many workers started in this process")
	}
	w := &Worker{
		ID:     idx,
		eng:    e,
		jobs:   make(chan func(*Worker), e.opts.QueueLen*DialogReserve),
		State:  kemi.NewWorkerState(idx),
		cnames: map[string]*C.char{},
		done:   make(chan struct{}),
	}
	w.faked = &kemi.Ctx{Msg: sipmsg.Faked(), Worker: w.State, BranchIdx: -1,
		Log: e.log.With().Int("worker", idx).Logger()}
	ready := make(chan error)
	go w.run(wid, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Worker) run(wid int, ready chan<- error) {
	runtime.LockOSThread() // a PyThreadState belongs to its OS thread
	defer close(w.done)
	var ebuf [1024]C.char
	registry[wid].Store(w)
	cw := C.kg_worker_new(C.int(wid), C.int(w.eng.mode), &ebuf[0], C.int(len(ebuf)))
	if cw == nil {
		ready <- fmt.Errorf("python worker %d: %s", w.ID, C.GoString(&ebuf[0]))
		return
	}
	w.cw = cw
	if w.eng.opts.Script != "" {
		C.kg_attach(cw)
		err := w.load(w.eng.opts.Script)
		C.kg_detach(cw)
		if err != nil {
			w.free()
			ready <- err
			return
		}
	}
	ready <- nil
	for job := range w.jobs {
		w.mu.Lock()
		w.queued.Add(-1) // running now: the worker is held
		C.kg_attach(cw)
		w.runJob(job)
		C.kg_detach(cw)
		w.mu.Unlock()
	}
	w.mu.Lock() // no inline job runs any more
	w.free()
	w.mu.Unlock()
}

// runJob runs one job, attached, with the marks the watchdog reads.
func (w *Worker) runJob(job func(*Worker)) {
	w.jobStart.Store(monoNow())
	w.Busy.Store(true)
	job(w)
	w.Busy.Store(false)
	w.jobStart.Store(0)
}

// ScriptError is a script failure with its location.
type ScriptError struct {
	Text string // the traceback
	File string
	Line int
}

func (e *ScriptError) Error() string {
	last := strings.TrimSpace(e.Text)
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, last)
	}
	return last
}

func lastError() *ScriptError {
	return &ScriptError{
		Text: C.GoString(C.kg_last_error()),
		File: C.GoString(C.kg_last_error_file()),
		Line: int(C.kg_last_error_line()),
	}
}

// load imports the script and runs mod_init/child_init (worker attached).
func (w *Worker) load(script string) error {
	o := w.eng.opts
	abs, _ := filepath.Abs(script)
	cs := []*C.char{C.CString(abs), C.CString(o.Style), C.CString(o.ModInit), C.CString(o.ChildInit),
		C.CString(strings.Join(o.ExtraPaths, string(os.PathListSeparator)))}
	defer func() {
		for _, c := range cs {
			C.free(unsafe.Pointer(c))
		}
	}()
	w.push(w.faked)
	rc := C.kg_load(cs[0], cs[1], cs[2], cs[3], C.int(w.State.Rank), cs[4])
	w.pop()
	if rc != 0 {
		return lastError()
	}
	return nil
}

// Load imports a script into this worker, replacing the handler only on
// success (worker attached: call it from a job or a KEMI function).
func (w *Worker) Load(script string) error { return w.load(script) }

// Style returns "python3" or "python3s" for the loaded script (worker attached).
func (w *Worker) Style() string { return C.GoString(C.kg_style()) }

// DialogReserve: in-dialog jobs may fill a worker's queue up to
// DialogReserve × QueueLen.
const DialogReserve = 4

// Submit queues a job for worker i; false when QueueLen jobs wait already.
func (e *Engine) Submit(i int, job func(*Worker)) bool { return e.submit(i, job, false) }

// SubmitInDialog is Submit for in-dialog traffic (requests with a To tag,
// ACKs, replies), which may use the queue's reserve.
func (e *Engine) SubmitInDialog(i int, job func(*Worker)) bool { return e.submit(i, job, true) }

func (e *Engine) submit(i int, job func(*Worker), inDialog bool) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return false
	}
	return e.workers[i].enqueue(job, e.limit(inDialog))
}

// limit is how many queued jobs a new one may find (0: no limit, wait).
func (e *Engine) limit(inDialog bool) int64 {
	if inDialog {
		return int64(e.opts.QueueLen * DialogReserve)
	}
	return int64(e.opts.QueueLen)
}

// enqueue sends job to the worker's own thread (e.mu held shared) unless
// limit jobs wait already; limit 0 waits for room instead.
func (w *Worker) enqueue(job func(*Worker), limit int64) bool {
	if n := w.queued.Add(1); limit > 0 && n > limit {
		w.queued.Add(-1)
		return false
	}
	if limit == 0 {
		w.jobs <- job
		return true
	}
	select {
	case w.jobs <- job:
		return true
	default:
		w.queued.Add(-1)
		return false
	}
}

// Dispatch runs job on worker i now, on the calling goroutine's thread,
// when the worker is idle and has nothing queued; else it queues the job
// as Submit does (false when the queue is full). Running on the thread
// that read the message spares the wake-up of the worker's thread and
// the move of the message between threads (the largest cost of a short
// route); a caller that must keep reading while a route runs long (the
// UDP readers) has another goroutine reading beside it. placed, when not
// nil, is called once the job has its place (about to run, queued, or
// refused), before it runs. inDialog jobs may use the queue's reserve
// (SubmitInDialog). Never call it from a job.
func (e *Engine) Dispatch(i int, job func(*Worker), placed func(), inDialog bool) bool {
	w := e.workers[i]
	e.mu.RLock()
	if e.closed || e.opts.Queued || w.queued.Load() != 0 || !w.mu.TryLock() {
		ok := !e.closed && w.enqueue(job, e.limit(inDialog))
		e.mu.RUnlock()
		if placed != nil {
			placed()
		}
		return ok
	}
	// w.mu now keeps the worker alive (its goroutine frees it under w.mu)
	// and nothing is queued before this job (queued jobs count until they
	// hold w.mu).
	e.mu.RUnlock()
	if placed != nil {
		placed()
	}
	runtime.LockOSThread()
	if C.kg_attach_here(w.cw) == 0 { // no room for one more thread's state
		runtime.UnlockOSThread()
		w.mu.Unlock()
		return e.submit(i, job, inDialog)
	}
	w.runJob(job)
	C.kg_detach(w.cw)
	runtime.UnlockOSThread()
	w.Inline.Add(1)
	w.mu.Unlock()
	return true
}

// SubmitWait queues a job for worker i, waiting for room (internal work
// such as timers, which must not be lost). Never call it from worker i.
func (e *Engine) SubmitWait(i int, job func(*Worker)) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	e.workers[i].enqueue(job, 0)
}

// Run runs job on worker i and waits for it.
func (e *Engine) Run(i int, job func(*Worker)) {
	done := make(chan struct{})
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return
	}
	e.workers[i].enqueue(func(w *Worker) { job(w); close(done) }, 0)
	e.mu.RUnlock()
	<-done
}

// QueueLen returns how many jobs wait for worker i.
func (e *Engine) QueueLen(i int) int { return len(e.workers[i].jobs) }

// Close stops every worker after its queued jobs.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	for _, w := range e.workers {
		close(w.jobs)
	}
	e.mu.Unlock()
	for _, w := range e.workers {
		<-w.done
	}
	e.stopWatchdog()
}

// Reload loads script again in every worker, each between two jobs. If any
// worker fails, the error is returned; workers that failed keep the old
// script. (Validation first in worker 0 keeps the others on the old script
// when the new one is broken.)
func (e *Engine) Reload(script string) error {
	if script == "" {
		script = e.opts.Script
	}
	var first error
	e.Run(0, func(w *Worker) { first = w.load(script) })
	if first != nil {
		return first
	}
	for i := 1; i < len(e.workers); i++ {
		var err error
		e.Run(i, func(w *Worker) { err = w.load(script) })
		if err != nil {
			return err
		}
	}
	e.opts.Script = script
	return nil
}

// RouteResult is what happened when a route ran.
type RouteResult struct {
	Status   int // RouteOK, RouteMissing, RouteExc, RouteExit
	Err      *ScriptError
	Duration time.Duration
}

// CallRoute runs the named callback for c on this worker (attached).
// param is passed as the second argument when not empty (event routes).
func (w *Worker) CallRoute(c *kemi.Ctx, name string, param string) RouteResult {
	cn := w.cnames[name]
	if cn == nil {
		cn = C.CString(name)
		w.cnames[name] = cn
	}
	var cp *C.char
	if param != "" {
		cp = C.CString(param)
		defer C.free(unsafe.Pointer(cp))
	}
	id := w.push(c)
	t0 := time.Now()
	rc := int(C.kg_call_route(cn, C.uint64_t(id), cp, 0))
	r := RouteResult{Status: rc, Duration: time.Since(t0)}
	w.pop()
	if rc == RouteExc || rc == RouteExit {
		r.Err = lastError()
	}
	return r
}

// HasRoute reports whether the handler has a callable with that name (attached).
func (w *Worker) HasRoute(name string) bool {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return C.kg_has_route(cn) != 0
}

// Helper runs a function of the _kemigo helper module (attached); for tools.
func (w *Worker) Helper(fn, a1, a2 string, n int64) (string, error) {
	cs := []*C.char{C.CString(fn), C.CString(a1), C.CString(a2)}
	defer func() {
		for _, c := range cs {
			C.free(unsafe.Pointer(c))
		}
	}()
	var out *C.char
	w.push(w.faked)
	rc := C.kg_run_helper(cs[0], cs[1], cs[2], C.longlong(n), &out)
	w.pop()
	if rc != 0 {
		return "", lastError()
	}
	s := C.GoString(out)
	C.free(unsafe.Pointer(out))
	return s, nil
}

func (w *Worker) push(c *kemi.Ctx) uint64 {
	w.seq++
	w.stack = append(w.stack, c)
	w.ids = append(w.ids, w.seq)
	return w.seq
}

func (w *Worker) pop() {
	w.stack = w.stack[:len(w.stack)-1]
	w.ids = w.ids[:len(w.ids)-1]
}

// current returns the innermost running context, or the faked one.
func (w *Worker) current() *kemi.Ctx {
	if n := len(w.stack); n > 0 {
		return w.stack[n-1]
	}
	return w.faked
}

func (w *Worker) ctxByID(id uint64) *kemi.Ctx {
	for i := len(w.ids) - 1; i >= 0; i-- {
		if w.ids[i] == id {
			return w.stack[i]
		}
	}
	return nil
}
