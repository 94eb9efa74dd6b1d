// Package reload checks the promise of hot reload: under a SIPp call load
// through the proxy, ten reloads (one of a script that raises at import)
// cause no failed call, the broken one is reported with its line, and the
// control interface shows the live state meanwhile.
package reload

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/rpc"
	"github.com/kemigo/kemigo/internal/siptest"
)

func writeScript(t *testing.T, path, ver string, broken bool) {
	t.Helper()
	tmpl, err := os.ReadFile("route.py.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	b := ""
	if broken {
		b = `raise RuntimeError("broken on purpose")`
	}
	src := strings.NewReplacer("@VER@", ver, "@BROKEN@", b).Replace(string(tmpl))
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadUnderSIPpLoad(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (apt-get install sip-tester)")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "route.py")
	writeScript(t, script, "v0", false)
	uasPort := freePort(t)
	httpPort := freePort(t)
	cfg := config.Default()
	cfg.AppPython3.Load = script
	cfg.KX.Defines = map[string]string{"UAS": fmt.Sprintf("sip:127.0.0.1:%d", uasPort)}
	cfg.TM.WaitTimer = 500
	cfg.JSONRPCS = rpc.Config{Socket: filepath.Join(dir, "ctl.sock"), HTTP: fmt.Sprintf("127.0.0.1:%d", httpPort)}
	p, udp, _ := siptest.StartProxy(t, cfg)
	if err := p.StartControl("test"); err != nil {
		t.Fatal(err)
	}

	// one registered contact, so ul.dump has something to show
	reg := siptest.Dial(t, "udp", udp)
	_, res := reg.Exchange(`REGISTER sip:${server} SIP/2.0
Via: SIP/2.0/UDP ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:watcher@127.0.0.1>;tag=${tag}
To: <sip:watcher@127.0.0.1>
Call-ID: ${call_id}
CSeq: 1 REGISTER
Contact: <sip:watcher@${local}>
Expires: 600
Content-Length: 0

`)
	siptest.AssertStatus(t, res, 200, "OK")

	uas := exec.Command(sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", fmt.Sprint(uasPort), "-nostdin")
	uas.Dir = dir
	if err := uas.Start(); err != nil {
		t.Fatalf("sipp uas: %v", err)
	}
	t.Cleanup(func() { _ = uas.Process.Kill(); _ = uas.Wait() })

	// 600 calls at 60/s: about ten seconds of load
	const calls = 600
	uac := exec.Command(sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)),
		"-r", "60", "-m", fmt.Sprint(calls), "-l", "200", "-nostdin", "-timeout", "60s", "-timeout_error",
		"-trace_stat", "-stf", filepath.Join(dir, "uac.csv"), udp)
	uac.Dir = dir
	var uacOut strings.Builder
	uac.Stdout, uac.Stderr = &uacOut, &uacOut
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)

	ctx := context.Background()
	var sawMetrics, sawUL bool
	for i := 1; i <= 10; i++ {
		broken := i == 4
		writeScript(t, script, fmt.Sprintf("v%d", i), broken)
		res, err := p.RPC.Call(ctx, "app_python.reload")
		if broken {
			if err == nil || !strings.Contains(err.Error(), "route.py:8") {
				t.Fatalf("reload of the broken script: %v %v, want an error naming route.py:8", res, err)
			}
			t.Logf("broken script reported: %v", err)
		} else if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		// live state during the load
		if r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)); err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if strings.Contains(string(b), `kemigo_sip_requests_received_total{method="INVITE"}`) && strings.Contains(string(b), "kemigo_tm_active_transactions") {
				sawMetrics = true
			}
		}
		if d, err := p.RPC.Call(ctx, "ul.dump"); err == nil && strings.Contains(fmt.Sprint(d), "watcher") {
			sawUL = true
		}
		time.Sleep(700 * time.Millisecond)
	}
	if err := uac.Wait(); err != nil {
		t.Fatalf("sipp uac failed (%v):\n%s", err, uacOut.String())
	}
	if !sawMetrics || !sawUL {
		t.Fatalf("live state not visible during the load: metrics %v, ul.dump %v", sawMetrics, sawUL)
	}
	// every transaction ends
	deadline := time.Now().Add(5 * time.Second)
	for p.Mods.TM.Active() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := p.Mods.TM.Active(); n != 0 {
		t.Fatalf("%d transactions left after the load", n)
	}
	t.Logf("%d calls, 10 reloads (1 broken), 0 failed calls", calls)
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := siptest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
