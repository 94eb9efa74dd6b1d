package transport

import (
	"errors"
	"net"
	"sync"
	"time"
)

// StreamLinger is how long an accepted TCP or TLS connection stays open for
// writing after sipgo stopped reading it because its data could not be
// parsed (a framing error such as a bad or duplicated Content-Length, or a
// message over 64 KB): the replies to the messages read before it (a 400
// from sanity, say) still reach the peer, then the connection closes, as
// RFC 4475 §3.1.2.3 and §3.3.9 suggest.
var StreamLinger = time.Second

// StreamWriteTimeout bounds one write on an accepted connection (Kamailio's
// tcp_send_timeout, 10 s): a peer that stops reading cannot hold the
// worker that replies to it longer. The connection is closed then.
var StreamWriteTimeout = 10 * time.Second

// streams is the registry of accepted TCP and TLS connections, by
// transport and remote address: replies and requests to a peer are
// written on its connection.
type streams struct {
	mu    sync.Mutex
	conns map[string]*streamConn
}

func (s *streams) init() { s.conns = map[string]*streamConn{} }

func streamKey(proto, raddr string) string { return proto + "|" + raddr }

func (s *streams) add(c *streamConn) {
	s.mu.Lock()
	s.conns[c.key] = c
	s.mu.Unlock()
}

func (s *streams) forget(c *streamConn) {
	s.mu.Lock()
	if s.conns[c.key] == c {
		delete(s.conns, c.key)
	}
	s.mu.Unlock()
}

// get returns the accepted connection of sock's transport from raddr.
func (s *streams) get(sock *Socket, raddr string) *streamConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[streamKey(sock.Proto, raddr)]
}

func (s *streams) closeAll() {
	s.mu.Lock()
	all := make([]*streamConn, 0, len(s.conns))
	for _, c := range s.conns {
		all = append(all, c)
	}
	s.conns = map[string]*streamConn{}
	s.mu.Unlock()
	for _, c := range all {
		_ = c.Conn.Close()
	}
}

// streamListener registers every connection it accepts.
type streamListener struct {
	net.Listener
	t    *Transport
	sock *Socket
}

func (l *streamListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &streamConn{Conn: c, t: l.t, sock: l.sock, key: streamKey(l.sock.Proto, c.RemoteAddr().String())}
	l.t.streams.add(sc)
	return sc, nil
}

// streamConn is an accepted connection. sipgo reads it and closes it when
// the peer goes, on a read error, or when it cannot parse the stream; in
// the last case the close is delayed by StreamLinger (reads stop at once).
type streamConn struct {
	net.Conn
	t    *Transport
	sock *Socket
	key  string

	mu      sync.Mutex
	readErr bool // a Read failed: the peer closed, or the connection broke
	closed  bool
}

// send writes one whole message, within StreamWriteTimeout.
func (c *streamConn) send(b []byte) error {
	if StreamWriteTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(StreamWriteTimeout))
	}
	_, err := c.Conn.Write(b)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.log.Warn().Str("socket", c.sock.String()).Str("dst", c.RemoteAddr().String()).
				Dur("timeout", StreamWriteTimeout).Msg("write timed out: connection closed")
			_ = c.Conn.Close()
		}
	}
	return err
}

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.mu.Lock()
		c.readErr = true
		c.mu.Unlock()
	}
	return n, err
}

func (c *streamConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	linger := !c.readErr && !c.t.closing.Load() && StreamLinger > 0
	c.mu.Unlock()
	if !linger {
		c.t.streams.forget(c)
		return c.Conn.Close()
	}
	// sipgo gave up on the stream (its own log line says why).
	c.t.log.Warn().Str("socket", c.sock.String()).Str("src", c.RemoteAddr().String()).
		Dur("linger", StreamLinger).Msg("connection closed after unparsable data")
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.CloseRead()
	}
	time.AfterFunc(StreamLinger, func() {
		c.t.streams.forget(c)
		_ = c.Conn.Close()
	})
	return nil
}
