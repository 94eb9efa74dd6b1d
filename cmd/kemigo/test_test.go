package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Each `kemigo test` run starts Python with its own export table (the
// KSR.kemigo_test functions added), so it runs in a child process: this
// test binary again, running only TestCmdTestChild.
const childEnv = "KEMIGO_CMDTEST_ARGS"

func TestCmdTestChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("helper for the kemigo test tests")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	if err := cmdTest(args); err != nil {
		if err != errTestsFailed {
			os.Stdout.WriteString("kemigo: " + err.Error() + "\n")
		}
		os.Exit(1)
	}
	os.Exit(0)
}

// runKemigoTest runs `kemigo test args...` and returns its output and exit code.
func runKemigoTest(t *testing.T, args ...string) (string, int) {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCmdTestChild$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("kemigo test %v: %v\n%s", args, err, out)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

var (
	runnersOnce sync.Once
	runnerList  []string
)

// runners returns the runners to try: pytest only when this Python has it
// (Debian's python3-pytest serves its own Python 3.11 only).
func runners(t *testing.T) []string {
	runnersOnce.Do(func() {
		runnerList = []string{"pytest", "builtin"}
		out, _ := runKemigoTest(t, "--runner", "pytest", "testdata/routetest/relay_checks.py", "-k", "nothing_matches")
		if strings.Contains(out, "cannot import pytest") {
			t.Log("this Python has no pytest: the built-in runner only")
			runnerList = []string{"builtin"}
		}
	})
	return runnerList
}

func TestKemigoTestExamples(t *testing.T) {
	for _, r := range runners(t) {
		t.Run(r, func(t *testing.T) {
			out, code := runKemigoTest(t, "--runner", r, "../../examples/tests")
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			if !strings.Contains(out, "passed") || someFailed.MatchString(out) {
				t.Errorf("output:\n%s", out)
			}
			if _, err := os.Stat(referenceScriptPath); err == nil && someSkipped.MatchString(out) {
				t.Errorf("the reference script is installed, yet tests were skipped:\n%s", out)
			}
		})
	}
}

var (
	someFailed  = regexp.MustCompile(`\b[1-9][0-9]* (failed|errors?)\b`)
	someSkipped = regexp.MustCompile(`\b[1-9][0-9]* skipped\b`)
)

const referenceScriptPath = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

func TestKemigoTestRouteChecks(t *testing.T) {
	for _, r := range runners(t) {
		t.Run(r, func(t *testing.T) {
			out, code := runKemigoTest(t, "--runner", r, "testdata/routetest/relay_checks.py")
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			if !strings.Contains(out, "6 passed") {
				t.Errorf("want 6 passed:\n%s", out)
			}
		})
	}
}

// TestKemigoTestBuilders runs python/tests (the SIP builders; no fixture).
func TestKemigoTestBuilders(t *testing.T) {
	out, code := runKemigoTest(t, "--runner", "builtin", "../../python/tests")
	if code != 0 || someFailed.MatchString(out) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestKemigoTestFailure(t *testing.T) {
	for _, r := range runners(t) {
		t.Run(r, func(t *testing.T) {
			out, code := runKemigoTest(t, "--runner", r, "testdata/failing_tests.py")
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			for _, want := range []string{"1 failed", "1 passed", "test_fails", ">>> OPTIONS sip:bob@"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestKemigoTestNothingCollected(t *testing.T) {
	out, code := runKemigoTest(t, "--runner", "builtin", "testdata/routetest/relay_checks.py", "-k", "no_such_test")
	if code != 1 || !strings.Contains(out, "no tests ran") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestKemigoTestBadScript(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.py")
	if err := os.WriteFile(bad, []byte("import KSR\ndef mod_init():\n    return 1/0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(dir, "test_bad.py")
	if err := os.WriteFile(tf, []byte("KEMIGO_SCRIPT = 'bad.py'\n\ndef test_x(kemigo):\n    pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runKemigoTest(t, "--runner", "builtin", tf)
	if code != 1 || !strings.Contains(out, "ZeroDivisionError") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestParseTestArgs(t *testing.T) {
	o, err := parseTestArgs([]string{"-c", "a.toml", "x", "--script=s.py", "-k", "foo and not bar", "y", "-x", "--", "--tb=short", "-c", "z"})
	if err != nil {
		t.Fatal(err)
	}
	want := testOpts{cfgFile: "a.toml", script: "s.py", runner: "auto", logLevel: "debug",
		paths: []string{"x", "y"}, runnerArgs: []string{"-k", "foo and not bar", "-x", "--tb=short", "-c", "z"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	if _, err := parseTestArgs([]string{"--tb=short"}); err == nil {
		t.Error("unknown option accepted")
	}
	if _, err := parseTestArgs([]string{"--runner", "nose"}); err == nil {
		t.Error("unknown runner accepted")
	}
}

func TestGroupTests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.toml", "")
	write("sub/b.toml", "")
	write("test_one.py", "x = 1\n")
	write("test_two.py", "KEMIGO_CONFIG = \"a.toml\"\n")
	write("sub/three_test.py", "KEMIGO_CONFIG = 'b.toml'\n")
	write("sub/helper.py", "KEMIGO_CONFIG = 'nope.toml'\n")
	write(".hidden/test_four.py", "")
	write("venv/test_five.py", "")

	// one configuration: the paths go to the runner unchanged
	g, err := groupTests(testOpts{paths: []string{filepath.Join(dir, "test_one.py")}})
	if err != nil || len(g) != 1 || g[0].cfgFile != "" || g[0].paths[0] != filepath.Join(dir, "test_one.py") {
		t.Fatalf("%+v %v", g, err)
	}
	g, err = groupTests(testOpts{paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, x := range g {
		got[filepath.Base(x.cfgFile)] = x.paths
	}
	want := map[string][]string{
		".":      {filepath.Join(dir, "test_one.py")},
		"a.toml": {filepath.Join(dir, "test_two.py")},
		"b.toml": {filepath.Join(dir, "sub", "three_test.py")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	write("test_bad.py", "KEMIGO_CONFIG = 'missing.toml'\n")
	if _, err := groupTests(testOpts{paths: []string{dir}}); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing config: %v", err)
	}
}
