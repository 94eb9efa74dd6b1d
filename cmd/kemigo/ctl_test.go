package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/core/rpc"
	"github.com/rs/zerolog"
)

type ctlScriptErr struct {
	Text, File string
	Line       int
}

func (e *ctlScriptErr) Error() string { return "kemi.py:3: NameError: name 'x' is not defined" }

func ctlServer(t *testing.T, cfg rpc.Config) *rpc.Server {
	t.Helper()
	s := rpc.New(cfg, zerolog.Nop())
	var fail error
	rpc.RegisterAppPython(s, func() error { return fail }, nil)
	s.Register("test.fail_next_reload", "", func(context.Context, []any) (any, error) {
		fail = &ctlScriptErr{Text: "Traceback (most recent call last):\n  File \"kemi.py\", line 3\nNameError: name 'x' is not defined\n", File: "kemi.py", Line: 3}
		return "ok", nil
	})
	s.Register("test.echo", "", func(_ context.Context, p []any) (any, error) { return p, nil })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctlSock(t *testing.T) string {
	dir, err := os.MkdirTemp("", "kgctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "k.sock")
}

func ctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runCtl(args, &out)
	return out.String(), err
}

func TestCtlRequest(t *testing.T) {
	m, p := ctlRequest([]string{"htable.sets", "ipban", "10", "s:10", "-3", "1.5", "abc"})
	if m != "htable.sets" || !reflect.DeepEqual(p, []any{"ipban", int64(10), "10", int64(-3), "1.5", "abc"}) {
		t.Errorf("%s %#v", m, p)
	}
	if m, p := ctlRequest([]string{"reload"}); m != "app_python.reload" || len(p) != 0 {
		t.Errorf("reload: %s %v", m, p)
	}
	if m, p := ctlRequest([]string{"stats"}); m != "stats.get_statistics" || !reflect.DeepEqual(p, []any{"all"}) {
		t.Errorf("stats: %s %v", m, p)
	}
}

func TestCtlUnix(t *testing.T) {
	path := ctlSock(t)
	ctlServer(t, rpc.Config{Socket: path})

	out, err := ctl(t, "-s", path, "reload")
	if err != nil || out != "{\n  \"new\": 1,\n  \"old\": 0\n}\n" {
		t.Errorf("reload: %q %v", out, err)
	}
	out, err = ctl(t, "-s", path, "test.echo", "a", "7", "s:7")
	if err != nil || out != "[\n  \"a\",\n  7,\n  \"7\"\n]\n" {
		t.Errorf("echo: %q %v", out, err)
	}
	_, err = ctl(t, "-s", path, "no.such")
	if err == nil || err.Error() != "error: 500 - Method Not Found" {
		t.Errorf("unknown method: %v", err)
	}
	ctl(t, "-s", path, "test.fail_next_reload")
	_, err = ctl(t, "-s", path, "reload")
	var ce *ctlError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "error: 500 - Reload failed: kemi.py:3: NameError") ||
		!strings.Contains(err.Error(), "Traceback (most recent call last)") {
		t.Errorf("failed reload: %v", err)
	}
	if _, err := ctl(t, "-s", path+".missing", "reload"); err == nil || !strings.Contains(err.Error(), "is kemigo running") {
		t.Errorf("missing socket: %v", err)
	}
	if _, err := ctl(t, "-s", path); err == nil || !strings.Contains(err.Error(), "no method") {
		t.Errorf("no method: %v", err)
	}
	if _, err := ctl(t, "-s", path, "-u", "http://127.0.0.1:1", "reload"); err == nil {
		t.Error("-s with -u accepted")
	}
	if out, err := ctl(t, "-h"); err != nil || !strings.Contains(out, "Usage: kemigo ctl") {
		t.Errorf("-h: %q %v", out, err)
	}
}

func TestCtlHTTP(t *testing.T) {
	s := ctlServer(t, rpc.Config{HTTP: "127.0.0.1:0", Token: "tok"})
	url := "http://" + s.HTTPAddr()
	if _, err := ctl(t, "-u", url, "reload"); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("without token: %v", err)
	}
	out, err := ctl(t, "-u", url, "--token", "tok", "reload")
	if err != nil || !strings.Contains(out, `"new": 1`) {
		t.Errorf("with token: %q %v", out, err)
	}
	t.Setenv("KEMIGO_TOKEN", "tok")
	out, err = ctl(t, "-u", url+"/RPC", "test.echo", "x")
	if err != nil || out != "[\n  \"x\"\n]\n" {
		t.Errorf("token from env: %q %v", out, err)
	}
	_, err = ctl(t, "-u", url, "nope")
	if err == nil || err.Error() != "error: 500 - Method Not Found" {
		t.Errorf("unknown method over HTTP: %v", err)
	}
}

func TestCtlConfigFile(t *testing.T) {
	path := ctlSock(t)
	ctlServer(t, rpc.Config{Socket: path})
	cfg := filepath.Join(t.TempDir(), "kemigo.toml")
	os.WriteFile(cfg, []byte("workers = 2\n[jsonrpcs]\nsocket = \""+path+"\"\n[htable]\nhtable = []\n"), 0o600)
	out, err := ctl(t, "-c", cfg, "test.echo", "1")
	if err != nil || out != "[\n  1\n]\n" {
		t.Errorf("-c: %q %v", out, err)
	}
}
