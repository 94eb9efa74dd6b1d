package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

func TestRuntimeEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"added", []string{"A=1"}, []string{"A=1", "GODEBUG=" + sysmonSetting}, true},
		{"appended to GODEBUG", []string{"GODEBUG=madvdontneed=1", "B=2"},
			[]string{"GODEBUG=madvdontneed=1," + sysmonSetting, "B=2"}, true},
		{"empty GODEBUG", []string{"GODEBUG="}, []string{"GODEBUG=" + sysmonSetting}, true},
		{"user's schedtrace kept", []string{"GODEBUG=gctrace=1,schedtrace=1000"}, []string{"GODEBUG=gctrace=1,schedtrace=1000"}, false},
		{"opt out", []string{"KEMIGO_GO_SYSMON=default", "GODEBUG=x=1"}, []string{"KEMIGO_GO_SYSMON=default", "GODEBUG=x=1"}, false},
		{"other value of the opt-out variable", []string{"KEMIGO_GO_SYSMON=1"}, []string{"KEMIGO_GO_SYSMON=1", "GODEBUG=" + sysmonSetting}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]string(nil), tc.env...)
			got, changed := runtimeEnv(in)
			if changed != tc.changed || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("runtimeEnv(%q) = %q, %v; want %q, %v", tc.env, got, changed, tc.want, tc.changed)
			}
			if !reflect.DeepEqual(in, tc.env) {
				t.Errorf("runtimeEnv changed its argument: %q", in)
			}
		})
	}
}

func TestExecWithRuntimeSettingsChild(t *testing.T) {
	if os.Getenv("KEMIGO_EXEC_CHILD") == "" {
		t.Skip("helper for TestExecWithRuntimeSettings")
	}
	execWithRuntimeSettings()
	comm, _ := os.ReadFile("/proc/self/comm")
	os.Stdout.WriteString("\nGODEBUG=" + os.Getenv("GODEBUG") + "\ncomm=" + string(comm))
	os.Exit(0)
}

// The process runs again (same PID, same arguments) with the setting, once.
func TestExecWithRuntimeSettings(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", "GODEBUG=gctrace=0," + sysmonSetting},
		{"KEMIGO_GO_SYSMON=default", "GODEBUG=gctrace=0"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExecWithRuntimeSettingsChild$")
		cmd.Env = append(os.Environ(), "KEMIGO_EXEC_CHILD=1", "GODEBUG=gctrace=0", tc.env)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var got []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "GODEBUG=") {
				got = append(got, l)
			}
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("with %q: child printed %q, want one %q", tc.env, got, tc.want)
		}
	}
}

func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	if got := setGCPercent(200); got != 200 || debug.SetGCPercent(200) != 200 {
		t.Errorf("gc_percent 200: %d in effect", got)
	}
	debug.SetGCPercent(100)
	if got := setGCPercent(0); got != 100 {
		t.Errorf("gc_percent 0: %d in effect, want Go's 100", got)
	}
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50) // as the runtime read it at start
	if got := setGCPercent(200); got != 50 {
		t.Errorf("GOGC=50 and gc_percent 200: %d in effect, want GOGC's 50", got)
	}
}

// The exec keeps the process's name (/proc/self/comm), which an exec of
// /proc/self/exe would turn into "exe".
func TestExecKeepsName(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestExecWithRuntimeSettingsChild$")
	cmd.Env = append(os.Environ(), "KEMIGO_EXEC_CHILD=comm")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := filepath.Base(os.Args[0])
	if len(want) > 15 {
		want = want[:15] // TASK_COMM_LEN
	}
	if !strings.Contains(string(out), "\ncomm="+want+"\n") {
		t.Errorf("child printed %q, want comm=%s", out, want)
	}
}
