package proxy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/rpc"
	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/pybridge"
)

func writeVersion(t *testing.T, path, ver string, broken bool) {
	t.Helper()
	tmpl, err := os.ReadFile("testdata/reload_v.py.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	b := ""
	if broken {
		b = `raise RuntimeError("broken on purpose")`
	}
	src := strings.NewReplacer("VER", ver, "BROKEN", b).Replace(string(tmpl))
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

const invite = `INVITE sip:callee@${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:caller@${local_ip}>;tag=${tag}
To: <sip:callee@${server}>
Call-ID: ${call_id}
CSeq: 1 INVITE
Contact: <sip:caller@${local}>
X-Target: TARGET
Content-Length: ${content_length}

`

// TestReloadUnderLoad: ten reloads (one of a script that raises at import)
// while OPTIONS keep flowing and an INVITE is ringing: no request fails, the
// broken script is reported with its line and the old one keeps serving, and
// the ringing call's failure route runs from the new code, found by name.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "route.py")
	writeVersion(t, script, "v0", false)
	cfg := config.Default()
	cfg.AppPython3.Load = script
	cfg.TM.FrInvTimer = 5000
	cfg.TM.WaitTimer = 200
	cfg.JSONRPCS = rpc.Config{Socket: filepath.Join(dir, "ctl.sock")}
	p, udp, _ := siptest.StartProxy(t, cfg)
	if err := p.StartControl("test"); err != nil {
		t.Fatal(err)
	}
	uas := siptest.StartUAS(t, "udp", "127.0.0.1", siptest.Answer(486, 1500*time.Millisecond)...)

	// background load: OPTIONS from several clients until told to stop
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := siptest.NewClient("udp", udp)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				c.Send(siptest.Options)
				r, err := c.Recv(2 * time.Second)
				if err != nil || r.Msg == nil {
					failed.Add(1)
					continue
				}
				if res, ok := r.Msg.(*sip.Response); !ok || res.StatusCode != 200 || !strings.HasPrefix(res.Reason, "OK v") {
					failed.Add(1)
				}
			}
		}()
	}

	caller := siptest.Dial(t, "udp", udp)
	caller.Send(strings.Replace(invite, "TARGET", "sip:"+uas.Addr(), 1))
	deadline := time.Now().Add(3 * time.Second)
	for {
		res := caller.Expect(3 * time.Second)
		if res.StatusCode == 180 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 180")
		}
	}

	// ten reloads: v1..v9 and one broken (the 5th)
	for i := 1; i <= 10; i++ {
		broken := i == 5
		ver := "v" + string(rune('0'+i%10))
		writeVersion(t, script, ver, broken)
		res, err := p.RPC.Call(context.Background(), "app_python.reload")
		if broken {
			var se *pybridge.ScriptError
			if err == nil {
				t.Fatalf("reload %d of a broken script succeeded: %v", i, res)
			}
			if !strings.Contains(err.Error(), "route.py:4") {
				if !(asScriptErr(err, &se) && se.Line == 4) {
					t.Fatalf("broken reload error lacks file:line: %v", err)
				}
			}
			continue
		}
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	// v0 is loaded again last? no: the last good one is v0 (10%10)
	final := caller.Expect(4 * time.Second)
	for final.StatusCode < 200 {
		final = caller.Expect(4 * time.Second)
	}
	close(stop)
	wg.Wait()
	if final.StatusCode != 480 || final.Reason != "Gone v0" {
		t.Fatalf("ringing call ended with %d %q, want 480 from the last loaded script", final.StatusCode, final.Reason)
	}
	if sent.Load() < 20 || failed.Load() != 0 {
		t.Fatalf("load: %d sent, %d failed", sent.Load(), failed.Load())
	}
	t.Logf("%d OPTIONS during 10 reloads, 0 failed", sent.Load())
}

func asScriptErr(err error, se **pybridge.ScriptError) bool {
	for e := err; e != nil; {
		if s, ok := e.(*pybridge.ScriptError); ok {
			*se = s
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}
