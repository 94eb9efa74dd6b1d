// Package transport is kemigo's only user of sipgo's transport layer: it
// opens the listen sockets (UDP, TCP), hands every parsed message to the
// proxy with its source and local socket, sends replies where RFC 3261
// §18.2.2 and RFC 3581 say, and knows which addresses are "myself".
package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// Socket is one listen address.
type Socket struct {
	Proto string // udp, tcp
	IP    string
	Port  int
	layer *sip.TransportLayer
	udp   *net.UDPConn
	tcp   net.Listener
}

// String is Kamailio's socket notation, e.g. "udp:127.0.0.1:5060".
func (s *Socket) String() string { return s.Proto + ":" + sipmsg.JoinHostPort(s.IP, s.Port) }

// Handler receives every parsed message, on the reader's goroutine: it
// must hand the message off quickly.
type Handler func(m *sipmsg.Msg)

// Transport owns the listeners.
type Transport struct {
	log     zerolog.Logger
	sockets []*Socket
	aliases []alias
	handler Handler
	layers  map[string]*sip.TransportLayer // by ip:port
	wg      sync.WaitGroup
	bufPool sync.Pool
	// Capture, when set, receives every message instead of the network
	// (route tests on the real core: `kemigo test`).
	Capture func(msg sip.Message, proto, host string, port int)
}

type alias struct {
	host string
	port int // 0: any
}

// Listen describes one socket to open.
type Listen struct {
	Proto string
	IP    string
	Port  int
}

func init() {
	// sipgo logs parse failures of malformed input at error level through
	// slog; kemigo reports those itself, so keep sipgo quiet by default.
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(discard{}, nil)))
	// Forwarded INVITEs with SDP easily pass sipgo's 1300-byte default.
	sip.UDPMTUSize = 65535
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// NewUnbound registers the sockets without opening them: is_myself and
// the Via/Record-Route addresses work, and everything sent goes to
// Capture. Route tests use it.
func NewUnbound(listens []Listen, aliases []string, log zerolog.Logger, capture func(msg sip.Message, proto, host string, port int)) *Transport {
	t := &Transport{log: log, layers: map[string]*sip.TransportLayer{}, Capture: capture}
	t.bufPool.New = func() any { return new(strings.Builder) }
	t.setAliases(aliases)
	for _, l := range listens {
		t.sockets = append(t.sockets, &Socket{Proto: l.Proto, IP: l.IP, Port: l.Port})
	}
	return t
}

func (t *Transport) setAliases(aliases []string) {
	for _, a := range aliases {
		host, port := a, 0
		if h, p, err := net.SplitHostPort(a); err == nil {
			host = h
			port, _ = strconv.Atoi(p)
		}
		t.aliases = append(t.aliases, alias{strings.ToLower(strings.Trim(host, "[]")), port})
	}
}

// New opens every listen socket; messages flow once Start is called.
func New(listens []Listen, aliases []string, log zerolog.Logger) (*Transport, error) {
	t := &Transport{log: log, layers: map[string]*sip.TransportLayer{}}
	t.bufPool.New = func() any { return new(strings.Builder) }
	t.setAliases(aliases)
	for _, l := range listens {
		s := &Socket{Proto: l.Proto, IP: l.IP, Port: l.Port}
		addr := sipmsg.JoinHostPort(l.IP, l.Port)
		layer := t.layers[addr]
		if layer == nil {
			layer = sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), nil)
			t.layers[addr] = layer
		}
		s.layer = layer
		var err error
		switch l.Proto {
		case "udp":
			var ua *net.UDPAddr
			ua, err = net.ResolveUDPAddr("udp", addr)
			if err == nil {
				s.udp, err = net.ListenUDP("udp", ua)
			}
			if err == nil && s.Port == 0 {
				s.Port = s.udp.LocalAddr().(*net.UDPAddr).Port
			}
		case "tcp":
			s.tcp, err = net.Listen("tcp", addr)
			if err == nil && s.Port == 0 {
				s.Port = s.tcp.Addr().(*net.TCPAddr).Port
			}
		default:
			err = fmt.Errorf("transport %q is not supported", l.Proto)
		}
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("listen %s:%s: %w", l.Proto, addr, err)
		}
		t.sockets = append(t.sockets, s)
	}
	return t, nil
}

// Sockets returns the listen sockets.
func (t *Transport) Sockets() []*Socket { return t.sockets }

// Socket returns the first socket of a protocol, or nil.
func (t *Transport) Socket(proto string) *Socket {
	for _, s := range t.sockets {
		if s.Proto == proto {
			return s
		}
	}
	return nil
}

// Start serves every socket, calling h for each parsed message.
func (t *Transport) Start(h Handler) {
	t.handler = h
	if t.Capture != nil {
		return
	}
	byLayer := map[*sip.TransportLayer][]*Socket{}
	for _, s := range t.sockets {
		byLayer[s.layer] = append(byLayer[s.layer], s)
	}
	for layer, socks := range byLayer {
		socks := socks
		layer.OnMessage(func(msg sip.Message) { t.receive(socks, msg) })
	}
	for _, s := range t.sockets {
		s := s
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			var err error
			if s.udp != nil {
				err = s.layer.ServeUDP(s.udp)
			} else {
				err = s.layer.ServeTCP(s.tcp)
			}
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.log.Error().Err(err).Str("socket", s.String()).Msg("listener stopped")
			}
		}()
	}
}

func (t *Transport) receive(socks []*Socket, msg sip.Message) {
	proto := strings.ToLower(msg.Transport())
	var sock *Socket
	for _, s := range socks {
		if s.Proto == proto {
			sock = s
		}
	}
	if sock == nil {
		return
	}
	var m *sipmsg.Msg
	switch v := msg.(type) {
	case *sip.Request:
		m = sipmsg.NewRequest(v)
	case *sip.Response:
		m = sipmsg.NewReply(v)
	default:
		return
	}
	host, port, err := sip.ParseAddr(msg.Source())
	if err != nil {
		t.log.Warn().Str("source", msg.Source()).Msg("message with unparsable source dropped")
		return
	}
	m.Proto, m.SrcIP, m.SrcPort = proto, host, port
	m.DstIP, m.DstPort = sock.IP, sock.Port
	m.Replier = t
	t.handler(m)
}

// Close stops every listener.
func (t *Transport) Close() {
	for _, l := range t.layers {
		_ = l.Close()
	}
	for _, s := range t.sockets {
		if s.udp != nil {
			_ = s.udp.Close()
		}
		if s.tcp != nil {
			_ = s.tcp.Close()
		}
	}
	t.wg.Wait()
}

// IsMyself reports whether host (and port and proto, when not zero/empty)
// is one of the listen sockets or aliases. With no port, any port matches
// (as Kamailio's check_self with port 0).
func (t *Transport) IsMyself(host string, port int, proto string) bool {
	h := strings.ToLower(strings.Trim(host, "[]"))
	for _, s := range t.sockets {
		if (port == 0 || port == s.Port) && (proto == "" || proto == s.Proto) && sameHost(h, s.IP) {
			return true
		}
	}
	for _, a := range t.aliases {
		if a.host == h && (port == 0 || a.port == 0 || a.port == port) {
			return true
		}
	}
	return false
}

func sameHost(h, ip string) bool {
	if h == ip {
		return true
	}
	a, b := net.ParseIP(h), net.ParseIP(ip)
	return a != nil && b != nil && a.Equal(b)
}

// Serialize renders a message into a pooled builder.
func (t *Transport) serialize(msg sip.Message) string {
	b := t.bufPool.Get().(*strings.Builder)
	b.Reset()
	msg.StringWrite(b)
	s := b.String()
	t.bufPool.Put(b)
	return s
}

// SendReply sends a reply to a request received by this transport
// (RFC 3261 §18.2.2): over the same connection for TCP; for UDP to the
// received/rport address of the top Via, else its sent-by port.
func (t *Transport) SendReply(m *sipmsg.Msg, res *sip.Response) error {
	if t.Capture != nil {
		host, port := replyDest(res, m)
		t.Capture(res, m.Proto, host, port)
		return nil
	}
	sock := t.socketFor(m.Proto, m.DstIP, m.DstPort)
	if sock == nil {
		return fmt.Errorf("no socket %s:%s:%d", m.Proto, m.DstIP, m.DstPort)
	}
	if sock.udp != nil {
		host, port := replyDest(res, m)
		ua, err := net.ResolveUDPAddr("udp", sipmsg.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		_, err = sock.udp.WriteTo([]byte(t.serialize(res)), ua)
		return err
	}
	conn, err := sock.layer.GetConnection("tcp", m.SrcAddr())
	if err != nil {
		return fmt.Errorf("reply to %s: connection gone: %w", m.SrcAddr(), err)
	}
	return conn.WriteMsg(res)
}

// replyDest applies RFC 3261 §18.2.2 and RFC 3581 §4 to the top Via of a reply.
func replyDest(res *sip.Response, m *sipmsg.Msg) (string, int) {
	v := res.Via()
	if v == nil {
		return m.SrcIP, m.SrcPort
	}
	host := v.Host
	if r, ok := v.Params.Get("received"); ok && r != "" {
		host = r
	}
	if rp, ok := v.Params.Get("rport"); ok && rp != "" {
		if p, err := strconv.Atoi(rp); err == nil {
			return host, p
		}
	}
	port := v.Port
	if port == 0 {
		port = 5060
	}
	return host, port
}

func (t *Transport) socketFor(proto, ip string, port int) *Socket {
	for _, s := range t.sockets {
		if s.Proto == proto && s.IP == ip && s.Port == port {
			return s
		}
	}
	return nil
}

// SendTo sends a message (a forwarded request or reply) from a local
// socket of the given protocol to host:port.
func (t *Transport) SendTo(msg sip.Message, proto, host string, port int) error {
	if t.Capture != nil {
		t.Capture(msg, proto, host, port)
		return nil
	}
	sock := t.Socket(proto)
	if sock == nil {
		return fmt.Errorf("no %s socket to send from", proto)
	}
	if sock.udp != nil {
		ua, err := net.ResolveUDPAddr("udp", sipmsg.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		_, err = sock.udp.WriteTo([]byte(t.serialize(msg)), ua)
		return err
	}
	addr := sipmsg.JoinHostPort(host, port)
	conn, err := sock.layer.GetConnection("tcp", addr)
	if err != nil || conn == nil {
		// Open a new connection whose replies come back through our handler.
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}})
		req.SetTransport("TCP")
		req.SetDestination(addr)
		conn, err = sock.layer.ClientRequestConnection(context.Background(), req)
		if err != nil {
			return err
		}
	}
	return conn.WriteMsg(msg)
}
