package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestStartPprof(t *testing.T) {
	for _, bad := range []string{"0.0.0.0:6060", "192.0.2.1:6060", "example.com:6060", "6060"} {
		if _, err := startPprof(bad, zerolog.Nop()); err == nil {
			t.Errorf("startPprof(%q) accepted", bad)
		}
	}
	stop, err := startPprof("", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop()

	// a free loopback port
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	stop, err = startPprof(addr, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	res, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "allocs") {
		t.Fatalf("GET /debug/pprof/: %d\n%s", res.StatusCode, body)
	}
	res, err = http.Get("http://" + addr + "/debug/pprof/allocs")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /debug/pprof/allocs: %v %v", err, res)
	}
	res.Body.Close()
}
