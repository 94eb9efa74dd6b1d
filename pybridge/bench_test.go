package pybridge

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// The route benchmarks use the export table of engine_test.go's TestMain:
// KSR.t.none() (no argument, returns None, does nothing in Go) is the
// cheapest KSR call, so ksr=N measures the Go→Python route call plus N
// round trips Python→Go→Python; KSR.t.add(i) adds an int argument and an
// int result.

// benchRoutes is one route per measured shape: r<N> makes N KSR.t.none()
// calls, a<N> makes N KSR.t.add(i) calls. The calls are unrolled so the
// Python loop does not count.
func benchScript(b *testing.B, counts []int) string {
	b.Helper()
	var s strings.Builder
	s.WriteString("import KSR\n\n\nclass kamailio:\n")
	s.WriteString("    def ksr_request_route(self, msg):\n        return 1\n\n")
	for _, n := range counts {
		fmt.Fprintf(&s, "    def r%d(self, msg):\n", n)
		s.WriteString(strings.Repeat("        KSR.t.none()\n", n))
		s.WriteString("        return 1\n\n")
		fmt.Fprintf(&s, "    def a%d(self, msg):\n", n)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&s, "        KSR.t.add(%d)\n", i)
		}
		s.WriteString("        return 1\n\n")
	}
	s.WriteString("\ndef mod_init():\n    return kamailio()\n")
	path := filepath.Join(b.TempDir(), "bench.py")
	if err := os.WriteFile(path, []byte(s.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchCtx(b *testing.B, w *Worker) *kemi.Ctx {
	m, err := sipmsg.Parse([]byte(options))
	if err != nil {
		b.Fatal(err)
	}
	m.SrcIP, m.SrcPort = "127.0.0.2", 5070
	return &kemi.Ctx{Msg: m, Log: zerolog.Nop(), BranchIdx: -1, Worker: w.State}
}

func benchEngine(b *testing.B, counts []int) *Engine {
	b.Helper()
	e, err := New(Options{Script: benchScript(b, counts), Workers: 1}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Close)
	return e
}

// BenchmarkRouteCall is one Go→Python route call (the worker already
// attached, as between two messages of a busy worker) whose route makes
// N KSR calls back into Go.
func BenchmarkRouteCall(b *testing.B) {
	counts := []int{0, 1, 10}
	e := benchEngine(b, counts)
	for _, n := range counts {
		for _, kind := range []string{"none", "add"} {
			if n == 0 && kind == "add" {
				continue
			}
			route := fmt.Sprintf("r%d", n)
			name := fmt.Sprintf("ksr=%d", n)
			if kind == "add" {
				route = fmt.Sprintf("a%d", n)
				name += "/int-arg"
			}
			b.Run(name, func(b *testing.B) {
				var r RouteResult
				b.ReportAllocs()
				e.Run(0, func(w *Worker) {
					c := benchCtx(b, w)
					if r = w.CallRoute(c, route, ""); r.Status != RouteOK {
						return
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						r = w.CallRoute(c, route, "")
					}
					b.StopTimer()
				})
				if r.Status != RouteOK {
					b.Fatalf("route %s: status %d %v", route, r.Status, r.Err)
				}
			})
		}
	}
}

// BenchmarkRouteCallQueued adds what the proxy pays per message to reach
// its worker: queueing the job on the worker's channel, waking the worker's
// locked OS thread, attaching its interpreter (taking the GIL) and waiting
// for the result. empty-job is that hand-off alone.
func BenchmarkRouteCallQueued(b *testing.B) {
	e := benchEngine(b, []int{0})
	benchHandoff(b, e, func(job func(*Worker)) { e.Run(0, job) })
}

// BenchmarkRouteCallInline is the same through Dispatch on an idle worker:
// the job runs on the calling goroutine's thread (lock the OS thread,
// attach the worker's interpreter with this thread's state, run, detach),
// with no other thread woken.
func BenchmarkRouteCallInline(b *testing.B) {
	e := benchEngine(b, []int{0})
	benchHandoff(b, e, func(job func(*Worker)) { e.Dispatch(0, job, nil, false) })
	if e.Workers()[0].Inline.Load() == 0 {
		b.Fatal("no job ran inline")
	}
}

// benchHandoff runs an empty job, then an empty route call, through run.
func benchHandoff(b *testing.B, e *Engine, run func(job func(*Worker))) {
	var c *kemi.Ctx
	e.Run(0, func(w *Worker) { c = benchCtx(b, w) })
	b.Run("empty-job", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			run(func(w *Worker) {})
		}
	})
	b.Run("ksr=0", func(b *testing.B) {
		b.ReportAllocs()
		var r RouteResult
		for i := 0; i < b.N; i++ {
			run(func(w *Worker) { r = w.CallRoute(c, "r0", "") })
		}
		b.StopTimer()
		if r.Status != RouteOK {
			b.Fatalf("status %d %v", r.Status, r.Err)
		}
	})
}

// heavyScript's route is CPU-bound pure Python (about 1 ms on 3.13 here),
// the route of the worker scaling check of bench/sip.
const heavyScript = `import KSR

def heavy(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) % 1000003
    return acc

class kamailio:
    def ksr_request_route(self, msg):
        heavy(20000)
        return 1

def mod_init():
    return kamailio()
`

// BenchmarkWorkerScaling runs a CPU-heavy route on 1 and on 2 workers at
// once, each worker on its own thread calling the route back to back; one
// op is one route call, and calls/s is the engine's throughput. On Python
// 3.12+ each worker's interpreter has its own GIL, so 2 workers should
// give nearly twice the calls/s of one on 2 free cores; on 3.11 they
// share one GIL. Without the SIP load generator on the same cores, this
// is the parallelism of the engine alone (bench/sip measures the proxy).
func BenchmarkWorkerScaling(b *testing.B) {
	path := filepath.Join(b.TempDir(), "heavy.py")
	if err := os.WriteFile(path, []byte(heavyScript), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e, err := New(Options{Script: path, Workers: workers}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctxs := make([]*kemi.Ctx, workers)
			for i := range ctxs {
				e.Run(i, func(w *Worker) { ctxs[i] = benchCtx(b, w) })
			}
			var wg sync.WaitGroup
			bad := make([]RouteResult, workers)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < workers; i++ {
				n := b.N / workers
				if i < b.N%workers {
					n++
				}
				wg.Add(1)
				go e.Run(i, func(w *Worker) {
					defer wg.Done()
					for k := 0; k < n; k++ {
						if r := w.CallRoute(ctxs[i], "ksr_request_route", ""); r.Status != RouteOK {
							bad[i] = r
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			for i, r := range bad {
				if r.Status != RouteOK && r.Err != nil {
					b.Fatalf("worker %d: status %d %v", i, r.Status, r.Err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
