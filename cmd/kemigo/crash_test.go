package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/pybridge"
)

// A crash in C code called by a route (an extension, ctypes) ends the
// process. kemigo enables Python's faulthandler, so stderr (where `kemigo
// run` logs) gets "Fatal Python error: Segmentation fault" and the Python
// stack of the thread that crashed, then the Go runtime's report of the
// signal (every goroutine), and the process exits with status 2. The test
// runs `kemigo run` (cmdRun, in this test binary started again) and makes
// its route crash.

const runChildEnv = "KEMIGO_RUN_ARGS"

func TestKemigoRunChild(t *testing.T) {
	raw := os.Getenv(runChildEnv)
	if raw == "" {
		t.Skip("helper for TestCrashReport")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	execWithRuntimeSettings() // as main does for run
	if err := cmdRun(args); err != nil {
		os.Stderr.WriteString("kemigo: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

const crashReq = `OPTIONS sip:${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:siptest@${local_ip}>;tag=${tag}
To: <sip:${server}>
Call-ID: ${call_id}
CSeq: ${cseq} OPTIONS
X-Crash: ${crash}
Content-Length: ${content_length}

`

// lockedBuf is a goroutine-safe buffer for the child's stderr.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func markLine(t *testing.T, file, name string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), "# MARK:"+name) {
			return n
		}
	}
	t.Fatalf("%s: no MARK:%s", file, name)
	return 0
}

func TestCrashReport(t *testing.T) {
	script, _ := filepath.Abs("testdata/crash.py")
	frame := `File "` + script + `", line ` + strconv.Itoa(markLine(t, script, "crash")) + " in crash_now"
	cases := []struct {
		name   string
		single bool   // [app_python3] single_interpreter
		crash  string // X-Crash
		skip   string
	}{
		// 3.11: one worker in the main interpreter; 3.12+: a sub-interpreter
		// per CPU, where 3.12's ctypes refuses to load
		{name: "default-workers", crash: "yes",
			skip: map[bool]string{true: "Python 3.12's ctypes does not load in sub-interpreters with their own GIL"}[pybridge.PyVersion() == "3.12"]},
		{name: "single-interpreter", single: true, crash: "yes"},
		{name: "script-thread", single: true, crash: "thread"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			port, err := siptest.FreePort("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			listen := "127.0.0.1:" + strconv.Itoa(port)
			cfg := filepath.Join(t.TempDir(), "kemigo.toml")
			text := "log_format = \"json\"\n[jsonrpcs]\nsocket = \"\"\nhttp = \"\"\n[app_python3]\nsingle_interpreter = " +
				strconv.FormatBool(tc.single) + "\n"
			if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			args, _ := json.Marshal([]string{"-c", cfg, "--script", script, "--listen", "udp:" + listen})
			cmd := exec.Command(os.Args[0], "-test.run=^TestKemigoRunChild$")
			cmd.Env = append(os.Environ(), runChildEnv+"="+string(args), "GOTRACEBACK=")
			stderr := &lockedBuf{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				_ = cmd.Process.Kill()
				if t.Failed() {
					t.Logf("kemigo stderr:\n%s", stderr.String())
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(stderr.String(), "kemigo started") {
				if time.Now().After(deadline) {
					t.Fatal("kemigo did not start")
				}
				time.Sleep(20 * time.Millisecond)
			}
			c := siptest.Dial(t, "udp", listen)
			_, res := c.Exchange(crashReq, "crash", "no")
			siptest.AssertStatus(t, res, 200, "Alive")
			c.Send(crashReq, "crash", tc.crash)
			var werr error
			select {
			case werr = <-exited:
			case <-time.After(10 * time.Second):
				t.Fatal("kemigo still runs after the crash")
			}
			ee, ok := werr.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Errorf("exit: %v, want exit status 2", werr)
			}
			if ok {
				if ws, _ := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
					t.Errorf("killed by %v", ws.Signal())
				}
			}
			out := stderr.String()
			py := strings.Index(out, "Fatal Python error: Segmentation fault")
			goRep := strings.Index(out, "SIGSEGV: segmentation violation")
			if py < 0 || goRep < 0 || goRep < py {
				t.Fatalf("want faulthandler's report, then Go's")
			}
			pyRep := out[py:goRep]
			if !strings.Contains(pyRep, "Current thread 0x") || !strings.Contains(pyRep, frame) {
				t.Errorf("faulthandler's report does not show the crashing thread at %s:\n%s", frame, pyRep)
			}
			if tc.crash == "yes" && !strings.Contains(pyRep, "in ksr_request_route") {
				t.Errorf("no route frame in:\n%s", pyRep)
			}
			if tc.crash == "yes" && !strings.Contains(out[goRep:], "pybridge._Cfunc_kg_call_route") {
				t.Errorf("Go's report does not show the route call")
			}
			// nothing answered the crashing request
			if r, err := c.Recv(100 * time.Millisecond); err == nil {
				t.Errorf("unexpected reply %s", r.Raw)
			}
		})
	}
}
