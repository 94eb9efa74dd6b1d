package security

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/rpc"
	"github.com/kemigo/kemigo/tests/harness"
)

// TestControlInterface, end to end through proxy.StartControl: by default
// the control interface listens on a unix socket and on loopback HTTP
// only; a non-loopback HTTP address is refused unless allow_remote is set,
// which needs a token; with a token every HTTP request must carry it
// (JSON-RPC and /metrics alike); the unix socket is 0660 and answers
// JSON-RPC.
func TestControlInterface(t *testing.T) {
	harness.NeedScript(t)
	def := config.Default().JSONRPCS
	if host, _, err := net.SplitHostPort(def.HTTP); err != nil || !rpc.IsLoopbackHost(host) {
		t.Errorf("default jsonrpcs http %q is not loopback", def.HTTP)
	}
	if def.AllowRemote {
		t.Error("allow_remote is on by default")
	}
	for _, bad := range []string{"0.0.0.0:0", "[::]:0", "192.0.2.1:5071"} {
		if _, err := config.Parse("[jsonrpcs]\nhttp = \"" + bad + "\"\n"); err == nil {
			t.Errorf("config accepts jsonrpcs http %q without allow_remote", bad)
		}
	}
	if _, err := config.Parse("[jsonrpcs]\nhttp = \"0.0.0.0:0\"\nallow_remote = true\n"); err == nil {
		t.Error("config accepts allow_remote without a token")
	}

	s := harness.Start(t, harness.BasicConfig(t, ""), harness.Options{})
	// StartControl checks the address too (a configuration built in code)
	s.P.Cfg.JSONRPCS = rpc.Config{HTTP: "0.0.0.0:0"}
	if err := s.P.StartControl("test"); err == nil {
		t.Fatal("StartControl listened on 0.0.0.0 without allow_remote")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "kemigo.sock")
	s.P.Cfg.JSONRPCS = rpc.Config{Socket: sock, HTTP: "127.0.0.1:0", Token: "t0ken"}
	if err := s.P.StartControl("test"); err != nil {
		t.Fatal(err)
	}
	addr := s.P.RPC.HTTPAddr()
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Errorf("HTTP on %s", addr)
	}

	call := `{"jsonrpc":"2.0","method":"core.version","id":1}`
	post := func(path, token string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(call))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := post("/RPC", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := post("/RPC", "wrong"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	if code, body := post("/RPC", "t0ken"); code != 200 || !strings.Contains(body, `"result"`) {
		t.Errorf("with the token: %d %s", code, body)
	}
	for _, tok := range []string{"", "t0ken"} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := 401
		if tok != "" {
			want = 200
		}
		if res.StatusCode != want || (want == 200 && !strings.Contains(string(b), "kemigo_")) {
			t.Errorf("GET /metrics token %q: %d", tok, res.StatusCode)
		}
	}

	// the unix socket: 0660, JSON-RPC
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm()&^0o660 != 0 {
		t.Errorf("socket mode %v", fi.Mode())
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte(call + "\n")); err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Result any `json:"result"`
		Error  any `json:"error"`
	}
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil || resp.Result == nil {
		t.Errorf("unix socket: %+v %v", resp, err)
	}
}
