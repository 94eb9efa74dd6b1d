package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// Go's sysmon thread sleeps deeply whenever every P is idle, and the next
// syscall or cgo call wakes it, after which it polls every 20 µs until the
// Ps are idle again. A proxy that answers one datagram at a time at a few
// thousand per second pays that wake-up and those polls for every message:
// 17 % of kemigo's CPU per OPTIONS at 6000/s in bench/sip/ab.py (RESULTS.md,
// "sysmon"). With schedtrace set, sysmon never sleeps deeply: it backs off
// to one poll per 10 ms when it has nothing to take back, and no syscall
// wakes it. The period is the largest the runtime takes (2^31-1 ms, 24.8
// days), so no trace is printed until the machine has been up that long,
// then one SCHED line on stderr per 24.8 days. The runtime reads GODEBUG
// only at start, hence the exec.
const sysmonSetting = "schedtrace=2147483647"

// sysmonOptOut in the environment keeps Go's default sysmon.
const sysmonOptOut = "KEMIGO_GO_SYSMON"

// runtimeEnv returns the environment to run kemigo in and whether it
// differs from env: GODEBUG gets sysmonSetting unless it sets schedtrace
// itself or KEMIGO_GO_SYSMON=default.
func runtimeEnv(env []string) ([]string, bool) {
	godebug, at := "", -1
	for i, kv := range env {
		switch {
		case kv == sysmonOptOut+"=default":
			return env, false
		case strings.HasPrefix(kv, "GODEBUG="):
			godebug, at = kv[len("GODEBUG="):], i
		}
	}
	for _, f := range strings.Split(godebug, ",") {
		if strings.HasPrefix(f, "schedtrace=") {
			return env, false
		}
	}
	out := append([]string(nil), env...)
	if godebug != "" {
		godebug += ","
	}
	if at >= 0 {
		out[at] = "GODEBUG=" + godebug + sysmonSetting
	} else {
		out = append(out, "GODEBUG="+sysmonSetting)
	}
	return out, true
}

// execWithRuntimeSettings runs this same program again with runtimeEnv's
// environment when it differs (on Linux); it returns only when there is
// nothing to change or the exec failed, and kemigo then runs as it is.
func execWithRuntimeSettings() {
	if runtime.GOOS != "linux" {
		return
	}
	env, changed := runtimeEnv(os.Environ())
	if !changed {
		return
	}
	// The binary's own path, so the process keeps its name (ps, top,
	// systemd); /proc/self/exe when that path is gone (an upgrade
	// replaced the file), which names the process "exe".
	path, err := os.Executable()
	if err != nil || strings.HasSuffix(path, " (deleted)") {
		path = "/proc/self/exe"
	}
	_ = syscall.Exec(path, os.Args, env)
}

// setGCPercent applies [core] gc_percent unless GOGC is in the
// environment or pct is 0, and returns the percent in effect (-1: off).
func setGCPercent(pct int) int {
	if os.Getenv("GOGC") != "" || pct == 0 {
		cur := debug.SetGCPercent(100)
		debug.SetGCPercent(cur)
		return cur
	}
	debug.SetGCPercent(pct)
	return pct
}
