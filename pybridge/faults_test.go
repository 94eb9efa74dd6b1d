package pybridge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// markLine returns the 1-based line of file holding "MARK:<name>".
func markLine(t *testing.T, file, name string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), "# MARK:"+name) {
			return n
		}
	}
	t.Fatalf("%s: no MARK:%s", file, name)
	return 0
}

// syncBuf is a goroutine-safe log buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// entries decodes the JSON log lines.
func (s *syncBuf) entries() []map[string]any {
	s.mu.Lock()
	text := s.b.String()
	s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(text, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (s *syncBuf) wait(t *testing.T, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range s.entries() {
			if match(e) {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("no log entry %s; log:\n%s", what, s.b.String())
	return nil
}

func msgContains(sub string) func(map[string]any) bool {
	return func(e map[string]any) bool { m, _ := e["message"].(string); return strings.Contains(m, sub) }
}

// TestWatchdogLogsStuckWorkerStack: a route that does not return is
// reported by the watchdog with the worker's Python stack (read without its
// GIL), once; when it returns, the worker is reported responsive again. On
// 3.12+ (a GIL per worker) the other worker serves meanwhile.
func TestWatchdogLogsStuckWorkerStack(t *testing.T) {
	script, _ := filepath.Abs("testdata/faults.py")
	workers := 1
	if OwnGIL() {
		workers = 2
	}
	logs := &syncBuf{}
	e, err := New(Options{Script: script, Workers: workers, WatchdogTimeout: 150 * time.Millisecond},
		zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	flag := filepath.Join(t.TempDir(), "unstick")
	done := make(chan RouteResult, 1)
	if !e.Submit(0, func(w *Worker) {
		c := ctxFor(t)
		c.Worker = w.State
		done <- w.CallRoute(c, "spin", flag)
	}) {
		t.Fatal("queue full")
	}
	stuck := logs.wait(t, "about the stuck worker", msgContains("has been running one job"))
	stack, _ := stuck["stack"].(string)
	want := `File "` + script + `", line ` + strconv.Itoa(markLine(t, script, "spin")) + " in spin_until"
	if !strings.HasPrefix(stack, "Stack (most recent call first):\n") || !strings.Contains(stack, want) ||
		!strings.Contains(stack, " in spin\n") {
		t.Errorf("stack does not show %q:\n%s", want, stack)
	}
	if w, ok := stuck["worker"].(float64); !ok || w != 0 || stuck["level"] != "error" {
		t.Errorf("entry %v", stuck)
	}
	if msg, _ := stuck["message"].(string); !strings.Contains(msg, want) {
		t.Errorf("message does not name the innermost frame %q: %s", want, msg)
	}
	if workers == 2 {
		takeRecords()
		if r := call(t, e, 1, "ksr_request_route"); r.Status != RouteOK {
			t.Errorf("worker 1 while worker 0 is stuck: %+v", r)
		}
		if got := takeRecords(); len(got) != 1 || got[0] != "ok" {
			t.Errorf("worker 1 records %v", got)
		}
	} else {
		t.Logf("Python %s: one worker by default (one GIL); the other-worker part of this test needs 3.12+", PyVersion())
	}
	// reported once per job
	time.Sleep(400 * time.Millisecond)
	if n := len(filterEntries(logs.entries(), msgContains("has been running one job"))); n != 1 {
		t.Errorf("stuck worker reported %d times, want 1", n)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.Status != RouteOK {
			t.Errorf("spin: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the spinning route did not end after its flag file appeared")
	}
	logs.wait(t, "about the worker being responsive again", msgContains("responsive again"))
}

func filterEntries(es []map[string]any, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, e := range es {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// TestPythonStackIdle: the stack of a worker between jobs has no frame.
func TestPythonStackIdle(t *testing.T) {
	e := newEngine(t, "testdata/faults.py", 1)
	if s := e.Workers()[0].PythonStack(); s != "Stack (most recent call first):\n  <no Python frame>\n" {
		t.Fatalf("idle stack %q", s)
	}
}

// TestGoPanicInKEMIFunctionStillRecovered: faulthandler is enabled and owns
// SIGSEGV, yet a nil pointer dereference in Go code called from Python is
// still Go's recoverable panic (kg_fatal_signal hands faults in Go code to
// Go's handler): the script gets a RuntimeError and the process goes on.
func TestGoPanicInKEMIFunctionStillRecovered(t *testing.T) {
	e := newEngine(t, "testdata/faults.py", 1)
	takeRecords()
	for i := 0; i < 2; i++ { // twice: faulthandler would only fire once
		if r := call(t, e, 0, "go_panic"); r.Status != RouteOK {
			t.Fatalf("go_panic: %+v", r)
		}
	}
	got := takeRecords()
	if len(got) != 2 || !strings.Contains(got[0], "RuntimeError: KSR.t.nilderef failed: runtime error: invalid memory address or nil pointer dereference") {
		t.Fatalf("records %q", got)
	}
}

// TestKSRFromScriptThread: KSR functions and the msg object used from a
// thread the script started raise a RuntimeError saying why.
func TestKSRFromScriptThread(t *testing.T) {
	workers := []int{1}
	if OwnGIL() {
		workers = append(workers, 2) // sub-interpreters with their own GIL
	}
	for _, n := range workers {
		t.Run(strconv.Itoa(n)+"-workers", func(t *testing.T) {
			e := newEngine(t, "testdata/faults.py", n)
			takeRecords()
			if r := call(t, e, n-1, "from_thread"); r.Status != RouteOK {
				t.Fatalf("from_thread: %+v", r)
			}
			got := takeRecords()
			want := []string{
				"KSR: RuntimeError: KSR.t.record() called outside a message context: KSR functions run only on the " +
					"kemigo worker thread that runs the route, not on a thread the script started",
				"msg: RuntimeError: msg used outside a message context: the msg object works only on the kemigo " +
					"worker thread that runs the route, not on a thread the script started",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
