package siptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/rs/zerolog"
)

// LogBuffer is a goroutine-safe buffer of zerolog JSON lines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer (zerolog writes one JSON object per call).
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Contains reports whether sub appears anywhere in the log text.
func (b *LogBuffer) Contains(sub string) bool { return strings.Contains(b.String(), sub) }

// Entry is one decoded log line.
type Entry map[string]any

// Str returns a string field ("" when absent or not a string).
func (e Entry) Str(k string) string { s, _ := e[k].(string); return s }

// Int returns a numeric field (JSON numbers decode as float64), and whether
// it was there.
func (e Entry) Int(k string) (int, bool) {
	f, ok := e[k].(float64)
	return int(f), ok
}

// Level is the "level" field.
func (e Entry) Level() string { return e.Str(zerolog.LevelFieldName) }

// Message is the "message" field.
func (e Entry) Message() string { return e.Str(zerolog.MessageFieldName) }

func (e Entry) String() string {
	b, _ := json.Marshal(map[string]any(e))
	return string(b)
}

// Entries decodes every complete JSON line logged so far (lines that do not
// decode are skipped).
func (b *LogBuffer) Entries() []Entry {
	var out []Entry
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e Entry
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// Find returns the entries for which match is true.
func (b *LogBuffer) Find(match func(Entry) bool) []Entry {
	var out []Entry
	for _, e := range b.Entries() {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Wait polls the log until an entry matches or d passes.
func (b *LogBuffer) Wait(d time.Duration, match func(Entry) bool) (Entry, bool) {
	deadline := time.Now().Add(d)
	for {
		if es := b.Find(match); len(es) > 0 {
			return es[0], true
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitFor is Wait that fails the test (naming what) when nothing matched
// within DefaultTimeout.
func (b *LogBuffer) WaitFor(t testing.TB, what string, match func(Entry) bool) Entry {
	t.Helper()
	e, ok := b.Wait(DefaultTimeout, match)
	if !ok {
		t.Fatalf("no log entry %s within %s; log:\n%s", what, DefaultTimeout, b.String())
	}
	return e
}

// MessageContains matches entries whose message contains sub.
func MessageContains(sub string) func(Entry) bool {
	return func(e Entry) bool { return strings.Contains(e.Message(), sub) }
}

// AtLevel matches entries of a level ("debug", "info", "warn", "error").
func AtLevel(level string) func(Entry) bool {
	return func(e Entry) bool { return e.Level() == level }
}

// FieldIs matches entries whose field k is the string v.
func FieldIs(k, v string) func(Entry) bool {
	return func(e Entry) bool { return e.Str(k) == v }
}

// All matches entries every matcher accepts.
func All(ms ...func(Entry) bool) func(Entry) bool {
	return func(e Entry) bool {
		for _, m := range ms {
			if !m(e) {
				return false
			}
		}
		return true
	}
}

var (
	logsMu sync.Mutex
	logs   = map[*proxy.Proxy]*LogBuffer{}
)

// Logs returns the log buffer of a proxy started by StartProxy (nil for
// any other proxy).
func Logs(p *proxy.Proxy) *LogBuffer {
	logsMu.Lock()
	defer logsMu.Unlock()
	return logs[p]
}

// ProxyIP is the loopback address StartProxy listens on.
const ProxyIP = "127.0.0.1"

// StartProxy builds and starts an in-process proxy with cfg, listening on
// UDP and TCP on one free port of 127.0.0.1 (cfg.Listen is replaced), and
// logging JSON at debug level into a buffer that Logs(p) returns. The proxy
// is closed in t.Cleanup; if the test failed, its log is printed then.
// It returns the proxy and its UDP and TCP addresses ("127.0.0.1:port").
//
// pybridge.Init runs once per process: proxies of one test binary share
// CPython and must run one after the other (no t.Parallel).
func StartProxy(t testing.TB, cfg config.Config) (p *proxy.Proxy, addrUDP, addrTCP string) {
	t.Helper()
	buf := &LogBuffer{}
	log := zerolog.New(buf).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		port, err = FreePort(ProxyIP)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		hp := net.JoinHostPort(ProxyIP, strconv.Itoa(port))
		c.Listen = []string{"udp:" + hp, "tcp:" + hp}
		if err = c.Validate(); err != nil {
			t.Fatalf("siptest: config: %v", err)
		}
		p, err = proxy.New(c, log)
		if err == nil {
			addrUDP, addrTCP = hp, hp
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break // not a port race: retrying will not help
		}
	}
	if err != nil {
		t.Fatalf("siptest: proxy.New: %v\nlog:\n%s", err, buf.String())
	}
	logsMu.Lock()
	logs[p] = buf
	logsMu.Unlock()
	t.Cleanup(func() {
		p.Close()
		logsMu.Lock()
		delete(logs, p)
		logsMu.Unlock()
		if t.Failed() {
			t.Logf("proxy log:\n%s", buf.String())
		}
	})
	p.Start()
	return p, addrUDP, addrTCP
}

// FreePort returns a port of ip that is free for both UDP and TCP at the
// time of the call (bound, then closed: another process may still take it
// before the caller binds it; StartProxy retries then).
func FreePort(ip string) (int, error) {
	for i := 0; i < 20; i++ {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			return 0, fmt.Errorf("siptest: free port on %s: %w", ip, err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		u.Close()
		if err != nil {
			continue // taken for TCP: try another
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("siptest: no port of %s free for both UDP and TCP", ip)
}
