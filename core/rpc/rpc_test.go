package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// reply is a decoded response.
type reply struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
	ID      json.RawMessage `json:"id"`
}

func testServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s := New(cfg, zerolog.Nop())
	s.Register("test.add", "Adds two integers.", func(_ context.Context, p []any) (any, error) {
		a, err := Int(p, 0)
		if err != nil {
			return nil, err
		}
		b, err := Int(p, 1)
		if err != nil {
			return nil, err
		}
		return a + b, nil
	})
	s.Register("test.notfound", "", func(context.Context, []any) (any, error) {
		return nil, Errorf(404, "Key not found in htable.")
	})
	s.Register("test.fail", "", func(context.Context, []any) (any, error) {
		return nil, errors.New("plain failure")
	})
	s.Register("test.panic", "", func(context.Context, []any) (any, error) { panic("boom") })
	s.Register("test.params", "", func(_ context.Context, p []any) (any, error) { return p, nil })
	s.Register("test.nil", "", func(context.Context, []any) (any, error) { return nil, nil })
	return s
}

// sockPath returns a short socket path (unix paths are limited to ~108
// bytes) in a directory that does not exist yet.
func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "kgrpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "run", "k.sock")
}

func decode(t *testing.T, b []byte) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("bad response %q: %v", b, err)
	}
	if r.JSONRPC != "2.0" {
		t.Fatalf("response without jsonrpc 2.0: %s", b)
	}
	return r
}

func TestHandleBytes(t *testing.T) {
	s := testServer(t, Config{})
	ctx := context.Background()
	cases := []struct {
		req       string
		result    string
		code      int
		msg       string
		id        string
		msgPrefix bool
	}{
		{req: `{"jsonrpc":"2.0","method":"test.add","params":[2,3],"id":1}`, result: `5`, id: `1`},
		{req: `{"jsonrpc":"2.0","method":"test.add","params":{"a":2,"b":"40"},"id":"x"}`, result: `42`, id: `"x"`},
		{req: `{"jsonrpc":"2.0","method":"test.add","params":[2],"id":2}`, code: 400, msg: "missing parameter 2", id: `2`},
		{req: `{"jsonrpc":"2.0","method":"nope","id":3}`, code: 500, msg: "Method Not Found", id: `3`},
		{req: `{"jsonrpc":"2.0","method":"test.notfound","id":4}`, code: 404, msg: "Key not found in htable.", id: `4`},
		{req: `{"jsonrpc":"2.0","method":"test.fail","id":5}`, code: 500, msg: "plain failure", id: `5`},
		{req: `{"jsonrpc":"2.0","method":"test.panic","id":6}`, code: 500, msg: "Internal Error: boom", id: `6`},
		{req: `{"jsonrpc":"2.0","method":"test.add","params":5,"id":7}`, code: -32602, msg: "Invalid Parameters", id: `7`},
		{req: `{"method":"test.add","id":8}`, code: -32600, msg: "Invalid Request", id: `8`},
		{req: `{"jsonrpc":"1.0","method":"test.add","id":9}`, code: -32600, msg: "Invalid Request", id: `9`},
		{req: `{"jsonrpc":"2.0","method":"test.add",`, code: -32700, msg: "Parse Error", id: `null`},
		{req: `"hello"`, code: -32600, msg: "Invalid Request", id: `null`},
		{req: `{"jsonrpc":"2.0","method":"test.nil","id":10}`, result: `null`, id: `10`},
		{req: `{"jsonrpc":"2.0","method":"test.params","params":[1,1.5,"s",null,true,[1],{"k":2}]}`,
			result: `[1,1.5,"s",null,true,[1],{"k":2}]`, id: `null`},
		{req: `{"jsonrpc":"2.0","method":"system.methodHelp","params":["test.add"],"id":11}`, result: `"Adds two integers."`, id: `11`},
		{req: `{"jsonrpc":"2.0","method":"system.methodHelp","params":["test.nil"],"id":12}`, result: `"undocumented"`, id: `12`},
		{req: `{"jsonrpc":"2.0","method":"system.methodHelp","params":["x.y"],"id":13}`, code: 400, msg: "command not found", id: `13`},
		{req: `{"jsonrpc":"2.0","method":"system.methodHelp","id":14}`, code: 400, msg: "Method Name Expected", id: `14`},
	}
	for _, c := range cases {
		r := decode(t, s.HandleBytes(ctx, []byte(c.req)))
		if string(r.ID) != c.id {
			t.Errorf("%s: id %s, want %s", c.req, r.ID, c.id)
		}
		if c.code != 0 {
			if r.Error == nil || r.Error.Code != c.code || r.Error.Message != c.msg {
				t.Errorf("%s: error %+v, want %d %q", c.req, r.Error, c.code, c.msg)
			}
			if r.Result != nil {
				t.Errorf("%s: error response with a result", c.req)
			}
			continue
		}
		if r.Error != nil || string(r.Result) != c.result {
			t.Errorf("%s: result %s (error %+v), want %s", c.req, r.Result, r.Error, c.result)
		}
	}
}

func TestBatchAndListMethods(t *testing.T) {
	s := testServer(t, Config{})
	out := s.HandleBytes(context.Background(), []byte(`[
		{"jsonrpc":"2.0","method":"test.add","params":[1,1],"id":1},
		{"jsonrpc":"2.0","method":"nope","id":2},
		{"jsonrpc":"2.0","method":"system.listMethods","id":3}]`))
	var rs []reply
	if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 3 {
		t.Fatalf("batch: %s (%v)", out, err)
	}
	if string(rs[0].Result) != "2" || rs[1].Error == nil {
		t.Errorf("batch results: %s", out)
	}
	var names []string
	json.Unmarshal(rs[2].Result, &names)
	if !strings.Contains(","+strings.Join(names, ",")+",", ",test.add,") {
		t.Errorf("listMethods: %v", names)
	}
	if strings.Join(names, ",") != strings.Join(s.Methods(), ",") {
		t.Errorf("listMethods %v != Methods %v", names, s.Methods())
	}
	r := decode(t, s.HandleBytes(context.Background(), []byte(`[]`)))
	if r.Error == nil || r.Error.Code != CodeInvalidRequest {
		t.Errorf("empty batch: %+v", r)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	s := testServer(t, Config{})
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	s.Register("test.add", "", func(context.Context, []any) (any, error) { return nil, nil })
}

func TestUnixSocket(t *testing.T) {
	path := sockPath(t)
	s := testServer(t, Config{Socket: path})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v", fi.Mode())
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	// Two requests on one connection, the second split across writes.
	fmt.Fprint(c, `{"jsonrpc":"2.0","method":"test.add","params":[20,22],"id":1}`)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	if r := decode(t, line); string(r.Result) != "42" {
		t.Fatalf("unix reply %s", line)
	}
	fmt.Fprint(c, `{"jsonrpc":"2.0","method":`)
	time.Sleep(10 * time.Millisecond)
	fmt.Fprint(c, `"nope","id":2}`+"\n")
	line, _ = rd.ReadBytes('\n')
	if r := decode(t, line); r.Error == nil || r.Error.Message != "Method Not Found" {
		t.Fatalf("unix reply %s", line)
	}
	// Garbage: a parse error, then the connection closes.
	fmt.Fprint(c, `{"jsonrpc" x}`)
	line, _ = rd.ReadBytes('\n')
	if r := decode(t, line); r.Error == nil || r.Error.Code != CodeParseError {
		t.Fatalf("unix reply %s", line)
	}
	if _, err := rd.ReadBytes('\n'); err != io.EOF {
		t.Errorf("connection not closed after a parse error: %v", err)
	}

	// A second server cannot take the live socket.
	s2 := New(Config{Socket: path}, zerolog.Nop())
	if err := s2.Start(); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second server on a live socket: %v", err)
		s2.Close()
	}

	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestUnixStaleSocket(t *testing.T) {
	path := sockPath(t)
	os.MkdirAll(filepath.Dir(path), 0o750)
	// A socket file nobody accepts on (a crashed kemigo).
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s := testServer(t, Config{Socket: path})
	if err := s.Start(); err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()
	// A regular file is never removed.
	os.WriteFile(path, []byte("x"), 0o600)
	s = testServer(t, Config{Socket: path})
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file at the socket path: %v", err)
		s.Close()
	}
}

func post(t *testing.T, url, token string, hdr map[string]string, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func TestHTTP(t *testing.T) {
	s := testServer(t, Config{HTTP: "127.0.0.1:0", Token: "s3cret"})
	s.HandleHTTP("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "kemigo_up 1\n")
	}))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.HTTPAddr()
	add := `{"jsonrpc":"2.0","method":"test.add","params":[1,2],"id":1}`

	if code, _ := post(t, base+"/RPC", "", nil, add); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := post(t, base+"/RPC", "wrong", nil, add); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	for _, path := range []string{"/", "/RPC"} {
		code, b := post(t, base+path, "s3cret", nil, add)
		if code != 200 || string(decode(t, b).Result) != "3" {
			t.Errorf("POST %s: %d %s", path, code, b)
		}
	}
	code, b := post(t, base+"/RPC", "s3cret", nil, `{"jsonrpc":"2.0","method":"test.notfound","id":1}`)
	if code != 404 || decode(t, b).Error.Code != 404 {
		t.Errorf("404 fault: %d %s", code, b)
	}
	code, b = post(t, base+"/RPC", "s3cret", nil, `{"jsonrpc":"2.0","method":"nope","id":1}`)
	if code != 500 || decode(t, b).Error.Message != "Method Not Found" {
		t.Errorf("unknown method: %d %s", code, b)
	}
	code, _ = post(t, base+"/RPC", "s3cret", nil, `{bad`)
	if code != 500 {
		t.Errorf("parse error status: %d", code)
	}
	if code, _ := post(t, base+"/RPC", "s3cret", map[string]string{"Origin": "http://evil.example"}, add); code != 403 {
		t.Errorf("browser origin: %d", code)
	}
	if code, _ := post(t, base+"/RPC", "s3cret", map[string]string{"Host": "evil.example:5071"}, add); code != 403 {
		t.Errorf("rebound host: %d", code)
	}
	if code, _ := post(t, base+"/RPC", "s3cret", nil, strings.Repeat(" ", maxRequest+1)); code != 413 {
		t.Errorf("oversized request: %d", code)
	}
	// GET on the RPC path is not a method.
	res, err := http.Get(base + "/RPC")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 && res.StatusCode != 401 {
		t.Errorf("GET /RPC: %d", res.StatusCode)
	}
	// Extra handlers share the listener and its token.
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	res, _ = http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("metrics without token: %d", res.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer s3cret")
	res, _ = http.DefaultClient.Do(req)
	mb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(mb) != "kemigo_up 1\n" {
		t.Errorf("metrics: %d %q", res.StatusCode, mb)
	}
}

func TestHTTPNoToken(t *testing.T) {
	s := testServer(t, Config{HTTP: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, b := post(t, "http://"+s.HTTPAddr()+"/", "", nil, `{"jsonrpc":"2.0","method":"test.add","params":[1,2],"id":1}`)
	if code != 200 || string(decode(t, b).Result) != "3" {
		t.Errorf("no token configured: %d %s", code, b)
	}
}

func TestHandleOnForeignMux(t *testing.T) {
	s := testServer(t, Config{Token: "t"})
	mux := http.NewServeMux()
	s.Handle(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	if code, _ := post(t, "http://"+ln.Addr().String()+"/RPC", "", nil, `{}`); code != 401 {
		t.Errorf("foreign mux without token: %d", code)
	}
	code, b := post(t, "http://"+ln.Addr().String()+"/RPC", "t", nil, `{"jsonrpc":"2.0","method":"test.add","params":[1,2],"id":1}`)
	if code != 200 || string(decode(t, b).Result) != "3" {
		t.Errorf("foreign mux: %d %s", code, b)
	}
}

func TestListenAddressPolicy(t *testing.T) {
	refused := []Config{
		{HTTP: "0.0.0.0:5071"},
		{HTTP: ":5071"},
		{HTTP: "192.0.2.10:5071"},
		{HTTP: "[::]:5071"},
		{HTTP: "example.com:5071"},
		{HTTP: "127.0.0.1"},
		{HTTP: "0.0.0.0:5071", AllowRemote: true}, // remote needs a token
	}
	for _, c := range refused {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
		s := New(c, zerolog.Nop())
		if err := s.Start(); err == nil {
			t.Errorf("%+v: Start accepted it", c)
			s.Close()
		}
	}
	accepted := []Config{
		{HTTP: "127.0.0.1:5071"},
		{HTTP: "127.0.0.2:5071"},
		{HTTP: "[::1]:5071"},
		{HTTP: "localhost:5071"},
		{HTTP: "0.0.0.0:5071", AllowRemote: true, Token: "x"},
		{HTTP: ""},
		DefaultConfig(),
	}
	for _, c := range accepted {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v refused: %v", c, err)
		}
	}
}

func TestCloseCancelsRunning(t *testing.T) {
	path := sockPath(t)
	s := New(Config{Socket: path}, zerolog.Nop())
	started := make(chan struct{})
	s.Register("test.block", "", func(ctx context.Context, _ []any) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, `{"jsonrpc":"2.0","method":"test.block","id":1}`)
	<-started
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a method ran")
	}
}
