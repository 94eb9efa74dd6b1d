// Package transport is kemigo's only user of sipgo's transport layer: it
// opens the listen sockets (UDP, TCP, TLS), hands every parsed message to
// the proxy with its source and local socket, sends replies where RFC 3261
// §18.2.2 and RFC 3581 say, and knows which addresses are "myself".
package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// Socket is one listen address.
type Socket struct {
	Proto string // udp, tcp, tls
	IP    string
	Port  int
	layer *sip.TransportLayer
	udp   *net.UDPConn
	tcp   net.Listener // TCP, and the TCP listener under TLS
	// UDP: kemigo's readers (udp.go) and the parser they share
	readers *udpReaders
	parser  *sip.Parser
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
	// sendOnly, when not empty, restricts every destination (replies and
	// forwarded messages) to these networks ([core] send_only_to): other
	// addresses, and host names (no DNS query is made), are refused.
	sendOnly []netip.Prefix
	// maxHeaders bounds the header fields of a received message (0: no
	// bound); see SetMaxHeaders.
	maxHeaders int
	udpReaders int         // goroutines reading each UDP socket (SetUDPReaders)
	udpBuffer  int         // SO_RCVBUF asked for each UDP socket (SetUDPBuffer)
	tlsServer  *tls.Config // nil without a TLS socket
	streams    streams     // accepted TCP and TLS connections
	closing    atomic.Bool
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
	// sipgo's default logger only serves code outside a transport layer
	// (connection reference counts, at debug level): keep it quiet. Each
	// layer gets a sipgoLog, which reports parse failures.
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(discard{}, nil)))
	// Forwarded INVITEs with SDP easily pass sipgo's 1300-byte default.
	sip.UDPMTUSize = 65535
	// sipgo reads each datagram into a buffer of this size, and a longer
	// datagram would be cut silently (a message without Content-Length
	// would then pass with a truncated body): take the largest UDP
	// payload. Stream reads are parsed incrementally and are not limited
	// by it; sip.ParseMaxMessageLength (65535) bounds a message on both.
	sip.TransportBufferReadSize = 65535
}

// layerInfo is what the log adapter of one sipgo transport layer (one
// local ip:port, UDP and TCP) knows.
type layerInfo struct {
	addr string
	// lastUDP is the source of the datagram being parsed: sipgo reads and
	// parses a socket's datagrams on one goroutine, the read filter first.
	lastUDP atomic.Pointer[string]
}

func (li *layerInfo) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if p.Transport == "UDP" && p.RemoteAddr != nil {
		s := p.RemoteAddr.String()
		li.lastUDP.Store(&s)
	}
	return data, nil
}

// sipgoLog is the slog handler of a sipgo transport layer: a message sipgo
// cannot parse is dropped there (nothing is answered), and this reports it
// at warn level with the socket, the source (UDP) and the start of the
// data, once per message; sipgo's other warnings and errors are passed on;
// its debug and info lines are dropped.
type sipgoLog struct {
	t     *Transport
	li    *layerInfo
	attrs []slog.Attr
}

func (h *sipgoLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *sipgoLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &sipgoLog{t: h.t, li: h.li, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *sipgoLog) WithGroup(string) slog.Handler { return h }

func (h *sipgoLog) Handle(_ context.Context, r slog.Record) error {
	proto := ""
	fields := map[string]string{}
	add := func(a slog.Attr) bool {
		if a.Key == "caller" {
			switch v := a.Value.String(); v {
			case "Transport<UDP>":
				proto = "udp"
			case "Transport<TCP>":
				proto = "tcp"
			case "Transport<TLS>":
				proto = "tls"
			}
			return true
		}
		fields[a.Key] = a.Value.String()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if r.Message == "failed to parse" {
		src := ""
		if p := h.li.lastUDP.Load(); proto == "udp" && p != nil {
			src = *p
		}
		h.t.logMalformed(proto+":"+h.li.addr, src, fields["data"], fields["error"])
		return nil
	}
	ev := h.t.log.Warn()
	if r.Level >= slog.LevelError {
		ev = h.t.log.Error()
	}
	if proto != "" {
		ev = ev.Str("socket", proto+":"+h.li.addr)
	}
	for k, v := range fields {
		ev = ev.Str(k, v)
	}
	ev.Msg("sipgo: " + r.Message)
	return nil
}

// logMalformed reports a message that could not be parsed, which is
// dropped (nothing is answered): its socket, source (UDP), size and the
// start of its data.
func (t *Transport) logMalformed(socket, src, data, perr string) {
	ev := t.log.Warn().Str("socket", socket).Str("error", perr).Int("bytes", len(data))
	if src != "" {
		ev = ev.Str("src", src)
	}
	head := data
	if i := strings.IndexAny(head, "\r\n"); i >= 0 {
		head = head[:i]
	}
	if len(head) > 120 {
		head = head[:120]
	}
	ev.Str("start", strconv.Quote(head)).Msg("malformed SIP message dropped")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// NewUnbound registers the sockets without opening them: is_myself and
// the Via/Record-Route addresses work, and everything sent goes to
// Capture. Route tests use it.
func NewUnbound(listens []Listen, aliases []string, log zerolog.Logger, capture func(msg sip.Message, proto, host string, port int)) *Transport {
	t := &Transport{log: log, layers: map[string]*sip.TransportLayer{}, Capture: capture}
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

// New opens every listen socket; messages flow once Start is called. A
// "tls" socket needs tlsCfg's certificate and private key; tlsCfg also
// sets up the connections kemigo opens to TLS destinations.
func New(listens []Listen, aliases []string, tlsCfg TLSConfig, log zerolog.Logger) (*Transport, error) {
	t := &Transport{log: log, layers: map[string]*sip.TransportLayer{}}
	t.streams.init()
	t.setAliases(aliases)
	var tlsClient *tls.Config
	for _, l := range listens {
		if l.Proto == "tls" && t.tlsServer == nil {
			var err error
			if t.tlsServer, tlsClient, err = tlsCfg.build(true); err != nil {
				return nil, err
			}
		}
	}
	if tlsClient == nil {
		if _, c, err := tlsCfg.build(false); err == nil {
			tlsClient = c
		} else {
			return nil, err
		}
	}
	for _, l := range listens {
		s := &Socket{Proto: l.Proto, IP: l.IP, Port: l.Port}
		addr := sipmsg.JoinHostPort(l.IP, l.Port)
		layer := t.layers[addr]
		if layer == nil {
			li := &layerInfo{addr: addr}
			layer = sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), tlsClient,
				sip.WithTransportLayerLogger(slog.New(&sipgoLog{t: t, li: li})),
				sip.WithTransportLayerReadFilter(li.readFilter))
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
			s.parser = sip.NewParser()
		case "tcp", "tls":
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
		if s.udp != nil {
			t.serveUDP(s)
			continue
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			var err error
			switch {
			case s.Proto == "tls":
				err = s.layer.ServeTLS(&streamListener{Listener: tls.NewListener(s.tcp, t.tlsServer), t: t, sock: s})
			default:
				err = s.layer.ServeTCP(&streamListener{Listener: s.tcp, t: t, sock: s})
			}
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.log.Error().Err(err).Str("socket", s.String()).Msg("listener stopped")
			}
		}()
	}
}

// receive takes a message sipgo read from a stream: its socket among the
// layer's, and its source from sipgo's "host:port".
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
	host, port, err := sip.ParseAddr(msg.Source())
	if err != nil {
		t.log.Warn().Str("source", msg.Source()).Msg("message with unparsable source dropped")
		return
	}
	t.deliver(sock, msg, host, port, nil)
}

// deliver wraps a parsed message received on sock from host:port and
// hands it to the handler (placed: see sipmsg.Msg.Placed).
func (t *Transport) deliver(sock *Socket, msg sip.Message, host string, port int, placed func()) {
	var m *sipmsg.Msg
	switch v := msg.(type) {
	case *sip.Request:
		m = sipmsg.NewRequest(v)
	case *sip.Response:
		m = sipmsg.NewReply(v)
	default:
		return
	}
	m.Proto, m.SrcIP, m.SrcPort = sock.Proto, host, port
	m.DstIP, m.DstPort = sock.IP, sock.Port
	m.Replier = t
	m.Placed = placed
	if t.tooManyHeaders(m) {
		return
	}
	t.handler(m)
}

// SetMaxHeaders bounds the number of header fields of a received message
// ([core] max_headers; 0: no bound). Call it before Start.
func (t *Transport) SetMaxHeaders(n int) { t.maxHeaders = n }

// tooManyHeaders drops a message with more than maxHeaders header fields
// (logged). A request other than ACK is answered 400 "Too Many Headers",
// unless its Via headers alone are too many: a reply carries every Via
// back, so it would be as large as the request. sipgo has parsed the
// message already (its size is bounded by 64 KB), but nothing else runs
// on it: no worker time, no script.
func (t *Transport) tooManyHeaders(m *sipmsg.Msg) bool {
	if t.maxHeaders <= 0 {
		return false
	}
	hs := m.AllHeaders()
	if len(hs) <= t.maxHeaders {
		return false
	}
	vias := 0
	for _, h := range hs {
		if _, ok := h.(*sip.ViaHeader); ok {
			vias++
		}
	}
	ev := t.log.Warn().Str("proto", m.Proto).Str("src", m.SrcAddr()).Int("headers", len(hs)).Int("vias", vias).
		Int("max_headers", t.maxHeaders)
	if m.Req != nil && m.Req.Method != sip.ACK && m.Req.Via() != nil && vias <= t.maxHeaders {
		ev.Msg("message with too many headers: 400 sent")
		res := m.BuildReply(400, "Too Many Headers")
		if err := m.SendReply(res); err != nil {
			t.log.Warn().Err(err).Msg("400 Too Many Headers not sent")
		}
		return true
	}
	ev.Msg("message with too many headers dropped")
	return true
}

// Close stops every listener.
func (t *Transport) Close() {
	t.closing.Store(true)
	for _, l := range t.layers {
		_ = l.Close()
	}
	t.streams.closeAll()
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

// ErrSendRefused is returned for a destination outside send_only_to.
var ErrSendRefused = errors.New("destination not allowed")

// SetSendOnly restricts the destinations to nets (send_only_to); nil or
// empty lifts the restriction. Call it before Start.
func (t *Transport) SetSendOnly(nets []netip.Prefix) { t.sendOnly = nets }

// allowed applies send_only_to to a destination host (an IP literal; a
// name is refused when the restriction is on, before any DNS query).
//
// The unspecified addresses and the limited broadcast address
// (255.255.255.255, e.g. from a Via of RFC 4475 §3.3.10) are always
// refused.
func (t *Transport) allowed(msg sip.Message, proto, host string, port int) error {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err == nil {
		a = a.Unmap()
	}
	switch {
	case err == nil && (a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
	case len(t.sendOnly) == 0:
		return nil
	case err == nil:
		for _, p := range t.sendOnly {
			if p.Contains(a) {
				return nil
			}
		}
	}
	ev := t.log.Warn().Str("proto", proto).Str("dst", sipmsg.JoinHostPort(host, port))
	switch v := msg.(type) {
	case *sip.Request:
		ev = ev.Str("method", string(v.Method))
	case *sip.Response:
		ev = ev.Int("status", v.StatusCode)
	}
	ev.Msg("send refused: destination not allowed (broadcast, unspecified, or outside send_only_to)")
	return fmt.Errorf("%s:%s: %w", proto, sipmsg.JoinHostPort(host, port), ErrSendRefused)
}

// Serialize renders a message into a pooled builder.
func (t *Transport) serialize(msg sip.Message) *bytes.Buffer {
	b, _ := t.bufPool.Get().(*bytes.Buffer)
	if b == nil {
		b = new(bytes.Buffer)
	}
	b.Reset()
	msg.StringWrite(b)
	return b
}

// release gives a buffer of serialize back once its bytes are written
// (every write is synchronous); an outsized one goes to the GC.
func (t *Transport) release(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		t.bufPool.Put(b)
	}
}

// writeUDP sends msg from sock to host:port. An IP literal (the usual
// case: a Via's received or a location's contact) is used as it is,
// without formatting "host:port" and resolving it again.
func (t *Transport) writeUDP(sock *Socket, msg sip.Message, host string, port int) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("send to %s: bad port %d", host, port)
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", sipmsg.JoinHostPort(host, port))
		if rerr != nil {
			return rerr
		}
		ip, _ = netip.AddrFromSlice(ua.IP)
	}
	b := t.serialize(msg)
	_, err = sock.udp.WriteToUDPAddrPort(b.Bytes(), netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	t.release(b)
	return err
}

// writeStream sends msg over an open stream connection.
func (t *Transport) writeStream(c *streamConn, msg sip.Message) error {
	b := t.serialize(msg)
	err := c.send(b.Bytes())
	t.release(b)
	return err
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
		if err := t.allowed(res, m.Proto, host, port); err != nil {
			return err
		}
		return t.writeUDP(sock, res, host, port)
	}
	if err := t.allowed(res, m.Proto, m.SrcIP, m.SrcPort); err != nil {
		return err
	}
	// An accepted connection (also in the short while it stays open after
	// sipgo gave up reading it), else one kemigo opened.
	if c := t.streams.get(sock, m.SrcAddr()); c != nil {
		return t.writeStream(c, res)
	}
	conn, err := sock.layer.GetConnection(sock.Proto, m.SrcAddr())
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
	if err := t.allowed(msg, proto, host, port); err != nil {
		return err
	}
	sock := t.Socket(proto)
	if sock == nil {
		return fmt.Errorf("no %s socket to send from", proto)
	}
	if sock.udp != nil {
		return t.writeUDP(sock, msg, host, port)
	}
	addr := sipmsg.JoinHostPort(host, port)
	if c := t.streams.get(sock, addr); c != nil {
		return t.writeStream(c, msg)
	}
	conn, err := sock.layer.GetConnection(sock.Proto, addr)
	if err != nil || conn == nil {
		// Open a new connection whose replies come back through our handler.
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: sip.HeaderParams{{K: "transport", V: sock.Proto}}})
		req.SetTransport(strings.ToUpper(sock.Proto))
		req.SetDestination(addr)
		// sipgo refuses a request without Via ("missing Via Header"); this
		// one only carries the destination and is never sent.
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(sock.Proto),
			Host: sock.IP, Port: sock.Port, Params: sip.NewParams()})
		conn, err = sock.layer.ClientRequestConnection(context.Background(), req)
		if err != nil {
			return err
		}
	}
	return conn.WriteMsg(msg)
}
