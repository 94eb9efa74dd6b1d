package pybridge

/*
#include "bridge.h"
*/
import "C"

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The watchdog: a goroutine that looks at every worker a few times per
// timeout. A worker whose current job has run for longer than the timeout
// (an endless loop in a route, a blocking call with no time limit) is
// logged once per job, at error level, with its Python stack, read without
// its GIL as faulthandler does (kg_dump_stack). The watchdog does not stop
// the job: nothing can interrupt arbitrary Python (or C) code safely. The
// worker's queue fills up, and the proxy answers that worker's new
// messages with 503 while the other workers keep serving. When the job
// ends, the worker is logged as responsive again.

var monoEpoch = time.Now()

// monoNow is a monotonic clock reading in nanoseconds, never 0.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// stackLimit bounds the stack text read from a worker.
const stackLimit = 256 << 10

func (e *Engine) startWatchdog(timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	e.wdStop, e.wdDone = make(chan struct{}), make(chan struct{})
	tick := timeout / 5
	tick = min(max(tick, 10*time.Millisecond), time.Second)
	go e.watchdog(timeout, tick)
}

func (e *Engine) stopWatchdog() {
	if e.wdStop == nil {
		return
	}
	close(e.wdStop)
	<-e.wdDone
	e.wdStop = nil
}

func (e *Engine) watchdog(timeout, tick time.Duration) {
	defer close(e.wdDone)
	t := time.NewTicker(tick)
	defer t.Stop()
	reported := make([]int64, len(e.workers)) // jobStart of the job reported stuck
	for {
		select {
		case <-e.wdStop:
			return
		case <-t.C:
		}
		now := monoNow()
		for i, w := range e.workers {
			start := w.jobStart.Load()
			if r := reported[i]; r != 0 && r != start {
				reported[i] = 0
				e.log.Warn().Int("worker", w.ID).
					Dur("stuck_for", time.Duration(now-r)).
					Msg("python worker responsive again")
			}
			if start == 0 || reported[i] == start || time.Duration(now-start) < timeout {
				continue
			}
			reported[i] = start
			stack := w.PythonStack()
			busy := time.Duration(monoNow() - start)
			e.log.Error().Int("worker", w.ID).Dur("busy", busy).Dur("watchdog_timeout", timeout).
				Int("queued", len(w.jobs)).Str("stack", stack).
				Msgf("python worker %d has been running one job for %s (watchdog_timeout %s): "+
					"an endless loop or a blocking call in the script? Its messages get 503 once its queue is full. %s",
					w.ID, busy.Round(time.Millisecond), timeout, scriptFrame(stack, e.opts.Script))
		}
	}
}

// scriptFrame names the innermost frame of the script in a stack (or the
// innermost frame when none is the script's).
func scriptFrame(stack, script string) string {
	abs, _ := filepath.Abs(script)
	first := ""
	for _, l := range strings.Split(stack, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "File ") {
			continue
		}
		if abs != "" && strings.HasPrefix(l, `File "`+abs+`"`) {
			return "In the script: " + l
		}
		if first == "" {
			first = "Innermost frame: " + l
		}
	}
	return first
}

// PythonStack returns the Python stack of the worker's thread state, as
// faulthandler writes it ("Stack (most recent call first):" and one
// `File "...", line N in name` line per frame). It is read without the
// worker's GIL, from frames that the worker may be changing: meant for a
// worker that does not return (the watchdog), not for a running one.
func (w *Worker) PythonStack() string {
	r, wr, err := os.Pipe()
	if err != nil {
		return "stack not available: " + err.Error()
	}
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, stackLimit))
		_, _ = io.Copy(io.Discard, r) // never block the writer
		r.Close()
		got <- string(b)
	}()
	w.cwMu.Lock()
	if w.cw != nil {
		C.kg_dump_stack(w.cw, C.int(wr.Fd()))
	}
	w.cwMu.Unlock()
	wr.Close()
	return <-got
}

// free releases the C side of the worker (its own goroutine, at the end).
func (w *Worker) free() {
	w.cwMu.Lock()
	cw := w.cw
	w.cw = nil
	w.cwMu.Unlock()
	C.kg_worker_free(cw)
}
