package rpc

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Limits of one request.
const (
	maxRequest   = 4 << 20          // bytes of one request (or batch)
	connIdle     = 10 * time.Minute // unix connection without a request
	writeTimeout = 30 * time.Second // writing one reply on the unix socket
)

type listeners struct {
	mu      sync.Mutex
	started bool
	closed  bool
	unix    net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	mux     *http.ServeMux
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

func (l *listeners) init() {
	l.mux = http.NewServeMux()
	l.conns = map[net.Conn]struct{}{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
}

// Start opens the unix socket and the HTTP listener that the configuration
// names (either may be ""), and serves them until Close. It fails when the
// HTTP address is not allowed (see Config.Validate), when another process
// listens on the socket path, or when a listener cannot be opened.
func (s *Server) Start() error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	l := &s.ln
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return errors.New("rpc: server already started")
	}
	if s.cfg.Socket != "" {
		ln, err := listenUnix(s.cfg.Socket)
		if err != nil {
			return err
		}
		l.unix = ln
	}
	if s.cfg.HTTP != "" {
		ln, err := net.Listen("tcp", s.cfg.HTTP)
		if err != nil {
			if l.unix != nil {
				l.unix.Close()
				l.unix = nil
			}
			return fmt.Errorf("jsonrpcs http: %w", err)
		}
		l.httpLn = ln
		l.httpSrv = &http.Server{
			Handler:           s.guard(l.mux),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      10 * time.Minute, // a reload may take a while
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		}
	}
	l.started = true
	if l.unix != nil {
		l.wg.Add(1)
		go s.acceptUnix(l.unix)
		s.log.Info().Str("socket", s.cfg.Socket).Msg("jsonrpcs: listening on unix socket")
	}
	if l.httpLn != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.httpSrv.Serve(l.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error().Err(err).Msg("jsonrpcs: http server stopped")
			}
		}()
		ev := s.log.Info().Str("http", l.httpLn.Addr().String()).Bool("token", s.cfg.Token != "")
		ev.Msg("jsonrpcs: listening on http")
	}
	return nil
}

// Close stops the listeners, cancels the context of running methods and
// waits for the connections to end. The socket file is removed.
func (s *Server) Close() error {
	l := &s.ln
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.cancel()
	if l.unix != nil {
		l.unix.Close()
	}
	for c := range l.conns {
		c.Close()
	}
	srv := l.httpSrv
	l.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		cancel()
	}
	l.wg.Wait()
	return nil
}

// SocketPath returns the unix socket path being served ("" if none).
func (s *Server) SocketPath() string {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	if s.ln.unix == nil {
		return ""
	}
	return s.cfg.Socket
}

// HTTPAddr returns the address the HTTP listener is bound to ("" if none);
// with port 0 in the configuration it tells the port chosen.
func (s *Server) HTTPAddr() string {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	if s.ln.httpLn == nil {
		return ""
	}
	return s.ln.httpLn.Addr().String()
}

// HandleHTTP adds a handler to the server's own HTTP listener (for example
// "GET /metrics"). It is behind the same checks as the RPC endpoint: the
// bearer token when one is configured, no browser Origin, and a loopback
// Host unless allow_remote. Call it before or after Start.
func (s *Server) HandleHTTP(pattern string, h http.Handler) {
	s.ln.mux.Handle(pattern, h)
}

// Handle registers the JSON-RPC endpoint (POST / and POST /RPC), behind
// the token, Origin and Host checks, on a mux served by someone else.
func (s *Server) Handle(mux *http.ServeMux) { s.registerRPC(mux, true) }

func (s *Server) registerRPC(mux *http.ServeMux, guarded bool) {
	var h http.Handler = http.HandlerFunc(s.serveHTTP)
	if guarded {
		h = s.guard(h)
	}
	mux.Handle("POST /{$}", h)
	mux.Handle("POST /RPC", h)
}

// guard refuses browsers (an Origin header: a web page must not drive the
// proxy through a user's loopback), DNS-rebound names when not remote, and
// requests without the bearer token when one is set.
func (s *Server) guard(next http.Handler) http.Handler {
	token := []byte(s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			http.Error(w, "cross-origin requests are not accepted", http.StatusForbidden)
			return
		}
		if !s.cfg.AllowRemote {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if !IsLoopbackHost(host) {
				http.Error(w, "Host must be a loopback address", http.StatusForbidden)
				return
			}
		}
		if len(token) > 0 {
			auth := r.Header.Get("Authorization")
			got, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), token) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kemigo"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveHTTP answers a JSON-RPC POST. As Kamailio's jsonrpcs does, a single
// request that fails gets the error code as HTTP status when it is one
// (e.g. 404, 500), 500 otherwise; the body is the JSON-RPC response.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the request", http.StatusBadRequest)
		return
	}
	out := s.HandleBytes(r.Context(), body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus(out))
	w.Write(out)
	w.Write([]byte("\n"))
}

// httpStatus maps a single error response to Kamailio's HTTP status.
func httpStatus(out []byte) int {
	if len(out) == 0 || out[0] != '{' {
		return http.StatusOK
	}
	var r struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(out, &r) != nil || r.Error == nil {
		return http.StatusOK
	}
	if c := r.Error.Code; c > 100 && c < 600 {
		return c
	}
	return http.StatusInternalServerError
}

// listenUnix creates the socket's directory, removes a stale socket file
// (one nobody accepts on) and listens; the socket is made 0660.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("jsonrpcs socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("jsonrpcs socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("jsonrpcs socket %s: another process is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("jsonrpcs socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("jsonrpcs socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("jsonrpcs socket: %w", err)
	}
	return ln, nil
}

func (s *Server) acceptUnix(ln net.Listener) {
	l := &s.ln
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			s.log.Error().Err(err).Msg("jsonrpcs: unix accept failed")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go s.serveConn(c)
	}
}

// capReader fails once more than n bytes were read since the last reset:
// it bounds one request on a stream connection.
type capReader struct {
	r io.Reader
	n int64
}

var errTooLarge = errors.New("request too large")

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// serveConn reads JSON-RPC requests (or batches) one after the other on a
// unix stream connection and writes each response followed by a newline.
func (s *Server) serveConn(c net.Conn) {
	l := &s.ln
	defer func() {
		c.Close()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		l.wg.Done()
	}()
	cr := &capReader{r: bufio.NewReader(c)}
	dec := json.NewDecoder(cr)
	for {
		cr.n = maxRequest
		c.SetReadDeadline(time.Now().Add(connIdle))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			var syn *json.SyntaxError
			switch {
			case errors.As(err, &syn):
				s.reply(c, s.encode(errResponse(nil, CodeParseError, "Parse Error")))
			case errors.Is(err, errTooLarge):
				s.reply(c, s.encode(errResponse(nil, CodeInvalidRequest, "Invalid Request: too large")))
			}
			return // EOF, timeout, closed: the stream cannot be resynchronised
		}
		if !s.reply(c, s.HandleBytes(l.ctx, raw)) {
			return
		}
	}
}

func (s *Server) reply(c net.Conn, out []byte) bool {
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.Write(append(out, '\n'))
	return err == nil
}
