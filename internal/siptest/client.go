// Package siptest is a small SIP test client for loopback tests, and a
// helper that starts an in-process kemigo proxy on free loopback ports.
//
// A Client sends raw SIP text (with ${...} placeholders for its own
// address, the Call-ID, the branch, ...; see Render) over UDP or TCP from a
// socket bound to a 127.0.0.x address, and reads what comes back, parsed by
// sipgo (sip.ParseMessage), with a timeout:
//
//	c := siptest.Dial(t, "udp", addr)
//	sent := c.Send(siptest.Options)                 // a ready-made OPTIONS
//	res := c.Expect()                                // fails the test after DefaultTimeout
//	siptest.AssertStatus(t, res, 200, "Keepalive")
//	siptest.AssertMatches(t, res, sent)
//	c.ExpectNone(500 * time.Millisecond)             // nothing else arrives
package siptest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// DefaultTimeout bounds one exchange (Expect, Exchange).
const DefaultTimeout = 2 * time.Second

// DefaultQuiet is how long ExpectNone waits by default.
const DefaultQuiet = 700 * time.Millisecond

// ErrTimeout is returned by Recv when nothing arrived in time.
var ErrTimeout = errors.New("siptest: timeout waiting for a SIP message")

// Options is an OPTIONS to the proxy itself (no R-URI user), with every
// placeholder Send fills in.
const Options = `OPTIONS sip:${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:siptest@${local_ip}>;tag=${tag}
To: <sip:${server}>
Call-ID: ${call_id}
CSeq: ${cseq} OPTIONS
Contact: <sip:siptest@${local};transport=${proto}>
User-Agent: kemigo-siptest
Content-Length: ${content_length}

`

// Received is one message read by a Client.
type Received struct {
	Msg  sip.Message // nil when Err is set
	Raw  []byte
	From string // source address ip:port
	Err  error  // the parse error, for bytes sipgo refused
}

// Sent describes one message a Client sent.
type Sent struct {
	Raw    string
	CallID string
	Branch string
	Tag    string
	CSeq   int
}

// Client is a SIP test client bound to a loopback address.
type Client struct {
	T          testing.TB
	Proto      string // "udp", "tcp" or "tls"
	LocalIP    string
	LocalPort  int
	ServerIP   string
	ServerPort int
	Timeout    time.Duration // Expect's wait; DefaultTimeout when 0

	udp    *net.UDPConn
	tcp    net.Conn // TCP, or TLS over TCP
	tlsCfg *tls.Config
	server *net.UDPAddr
	in     chan Received
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	cseq   int
	closed bool
}

// Option configures Dial.
type Option func(*Client)

// WithLocalIP binds the client to ip (a 127.0.0.0/8 address; default 127.0.0.1).
func WithLocalIP(ip string) Option { return func(c *Client) { c.LocalIP = ip } }

// WithTLS sets the TLS client configuration of a "tls" client (its
// RootCAs must trust the server's certificate; ServerName defaults to the
// server's address).
func WithTLS(cfg *tls.Config) Option { return func(c *Client) { c.tlsCfg = cfg } }

// WithTimeout sets the wait of Expect and Exchange (at most 3 s is wise).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.Timeout = d } }

// Dial opens a client socket of proto ("udp", "tcp" or "tls") bound to a
// free port of a loopback address and, for TCP and TLS, connects it to
// server ("ip:port"; TLS: see WithTLS).
// The socket is closed in t.Cleanup. Any failure is fatal to the test.
func Dial(t testing.TB, proto, server string, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(proto, server, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.T = t
	t.Cleanup(c.Close)
	return c
}

// NewClient is Dial without a testing.TB (the caller closes it). Its
// methods that take no TB then panic instead of failing a test.
func NewClient(proto, server string, opts ...Option) (*Client, error) {
	proto = strings.ToLower(proto)
	c := &Client{Proto: proto, LocalIP: "127.0.0.1", in: make(chan Received, 64), done: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	ip := net.ParseIP(c.LocalIP)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("siptest: local address %q is not a loopback address", c.LocalIP)
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("siptest: server %q: %w", server, err)
	}
	if sip4 := net.ParseIP(host); sip4 == nil || !sip4.IsLoopback() {
		return nil, fmt.Errorf("siptest: server %q is not a loopback address", server)
	}
	c.ServerIP = host
	c.ServerPort, _ = strconv.Atoi(port)
	switch proto {
	case "udp":
		c.server, err = net.ResolveUDPAddr("udp", server)
		if err != nil {
			return nil, err
		}
		c.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, fmt.Errorf("siptest: bind udp %s: %w", c.LocalIP, err)
		}
		c.LocalPort = c.udp.LocalAddr().(*net.UDPAddr).Port
		c.wg.Add(1)
		go c.readUDP()
	case "tcp", "tls":
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 3 * time.Second}
		if proto == "tls" {
			cfg := c.tlsCfg
			if cfg == nil {
				cfg = &tls.Config{}
			}
			if cfg.ServerName == "" {
				cfg = cfg.Clone()
				cfg.ServerName = host
			}
			c.tcp, err = tls.DialWithDialer(&d, "tcp", server, cfg)
		} else {
			c.tcp, err = d.Dial("tcp", server)
		}
		if err != nil {
			return nil, fmt.Errorf("siptest: connect %s %s from %s: %w", proto, server, c.LocalIP, err)
		}
		c.LocalPort = c.tcp.LocalAddr().(*net.TCPAddr).Port
		c.wg.Add(1)
		go c.readTCP()
	default:
		return nil, fmt.Errorf("siptest: transport %q is not udp, tcp or tls", proto)
	}
	return c, nil
}

// Local returns the client's address as ip:port.
func (c *Client) Local() string { return net.JoinHostPort(c.LocalIP, strconv.Itoa(c.LocalPort)) }

// Server returns the address the client sends to.
func (c *Client) Server() string { return net.JoinHostPort(c.ServerIP, strconv.Itoa(c.ServerPort)) }

// Close closes the socket and waits for the reader.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	if c.udp != nil {
		_ = c.udp.Close()
	}
	if c.tcp != nil {
		_ = c.tcp.Close()
	}
	c.wg.Wait()
}

// Vars returns the placeholder values for the next message: the client's
// addresses, and a fresh Call-ID, branch, tag and CSeq.
func (c *Client) Vars() Vars {
	c.mu.Lock()
	c.cseq++
	n := c.cseq
	c.mu.Unlock()
	return Vars{
		"local_ip":    c.LocalIP,
		"local_port":  strconv.Itoa(c.LocalPort),
		"local":       c.Local(),
		"server_ip":   c.ServerIP,
		"server_port": strconv.Itoa(c.ServerPort),
		"server":      c.Server(),
		"transport":   strings.ToUpper(c.Proto),
		"proto":       c.Proto,
		"call_id":     NewID(8) + "@siptest",
		"branch":      NewBranch(),
		"tag":         NewID(4),
		"cseq":        strconv.Itoa(n),
	}
}

// Send renders tmpl (see Render) and sends it. kv are extra placeholder
// name/value pairs, which override the defaults ("call_id", "x@y" keeps a
// Call-ID across messages). Errors fail the test.
func (c *Client) Send(tmpl string, kv ...string) *Sent {
	c.helper()
	s, err := c.Render(tmpl, kv...)
	if err != nil {
		c.fatal(err)
		return nil
	}
	if err := c.SendRaw([]byte(s.Raw)); err != nil {
		c.fatal(err)
	}
	return s
}

// Render renders tmpl with the client's placeholders and kv, without sending.
func (c *Client) Render(tmpl string, kv ...string) (*Sent, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("siptest: odd number of placeholder arguments %q", kv)
	}
	v := c.Vars()
	for i := 0; i < len(kv); i += 2 {
		v[kv[i]] = kv[i+1]
	}
	raw, err := Render(tmpl, v)
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(v["cseq"])
	return &Sent{Raw: raw, CallID: v["call_id"], Branch: v["branch"], Tag: v["tag"], CSeq: n}, nil
}

// SendRaw sends b as it is (one datagram for UDP).
func (c *Client) SendRaw(b []byte) error {
	var err error
	if c.udp != nil {
		_, err = c.udp.WriteToUDP(b, c.server)
	} else {
		_ = c.tcp.SetWriteDeadline(time.Now().Add(3 * time.Second))
		_, err = c.tcp.Write(b)
	}
	if err != nil {
		return fmt.Errorf("siptest: send %s %s: %w", c.Proto, c.Server(), err)
	}
	return nil
}

// Recv waits up to d for the next message (or unparsable data).
func (c *Client) Recv(d time.Duration) (Received, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-c.in:
		return r, r.Err
	case <-t.C:
		return Received{}, ErrTimeout
	}
}

// Expect waits for the next message, which must be a response, and
// returns it; nothing within c.Timeout (DefaultTimeout), a request or
// unparsable data fail the test. An optional d overrides the timeout.
func (c *Client) Expect(d ...time.Duration) *sip.Response {
	c.helper()
	wait := c.timeout()
	if len(d) > 0 {
		wait = d[0]
	}
	r, err := c.Recv(wait)
	if err != nil {
		if errors.Is(err, ErrTimeout) {
			c.fatal(fmt.Errorf("siptest: no reply over %s from %s within %s", c.Proto, c.Server(), wait))
		} else {
			c.fatal(fmt.Errorf("siptest: %w in %q", err, r.Raw))
		}
		return nil
	}
	res, ok := r.Msg.(*sip.Response)
	if !ok {
		c.fatal(fmt.Errorf("siptest: expected a response, got a request:\n%s", r.Raw))
		return nil
	}
	return res
}

// ExpectNone fails the test if any message arrives within d (DefaultQuiet
// when not given).
func (c *Client) ExpectNone(d ...time.Duration) {
	c.helper()
	wait := DefaultQuiet
	if len(d) > 0 {
		wait = d[0]
	}
	r, err := c.Recv(wait)
	if errors.Is(err, ErrTimeout) {
		return
	}
	c.fail(fmt.Errorf("siptest: expected no message over %s within %s, got:\n%s", c.Proto, wait, r.Raw))
}

// Exchange sends tmpl and returns the reply (Send then Expect).
func (c *Client) Exchange(tmpl string, kv ...string) (*Sent, *sip.Response) {
	c.helper()
	s := c.Send(tmpl, kv...)
	if s == nil {
		return nil, nil
	}
	return s, c.Expect()
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) helper() {
	if c.T != nil {
		c.T.Helper()
	}
}

func (c *Client) fatal(err error) {
	if c.T == nil {
		panic(err)
	}
	c.T.Helper()
	c.T.Fatal(err)
}

func (c *Client) fail(err error) {
	if c.T == nil {
		panic(err)
	}
	c.T.Helper()
	c.T.Error(err)
}

func (c *Client) deliver(r Received) {
	select {
	case c.in <- r:
	case <-c.done:
	}
}

func (c *Client) readUDP() {
	defer c.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := c.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		raw := append([]byte(nil), buf[:n]...)
		msg, perr := sip.ParseMessage(raw)
		c.deliver(Received{Msg: msg, Raw: raw, From: from.String(), Err: perr})
	}
}

func (c *Client) readTCP() {
	defer c.wg.Done()
	rd := bufio.NewReader(c.tcp)
	from := c.tcp.RemoteAddr().String()
	for {
		raw, err := ReadStreamMessage(rd)
		if err != nil {
			if len(raw) > 0 && !errors.Is(err, net.ErrClosed) {
				c.deliver(Received{Raw: raw, From: from, Err: err})
			}
			return
		}
		msg, perr := sip.ParseMessage(raw)
		c.deliver(Received{Msg: msg, Raw: raw, From: from, Err: perr})
	}
}

// ReadStreamMessage reads one SIP message from a stream: keep-alive CRLFs
// are skipped, the headers end at an empty line and the body is
// Content-Length (or "l") bytes long (0 when the header is missing).
func ReadStreamMessage(rd *bufio.Reader) ([]byte, error) {
	var head bytes.Buffer
	clen := 0
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return append(head.Bytes(), line...), err
		}
		if head.Len() == 0 && len(bytes.TrimRight(line, "\r\n")) == 0 {
			continue // keep-alive
		}
		head.Write(line)
		l := bytes.TrimRight(line, "\r\n")
		if len(l) == 0 {
			break
		}
		if i := bytes.IndexByte(l, ':'); i > 0 {
			name := strings.ToLower(strings.TrimSpace(string(l[:i])))
			if name == "content-length" || name == "l" {
				n, err := strconv.Atoi(strings.TrimSpace(string(l[i+1:])))
				if err != nil || n < 0 {
					return head.Bytes(), fmt.Errorf("siptest: bad Content-Length %q", l)
				}
				clen = n
			}
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(rd, body); err != nil {
		return append(head.Bytes(), body...), err
	}
	return append(head.Bytes(), body...), nil
}
