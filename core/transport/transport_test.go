package transport

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

func newUDP(t *testing.T) *Transport {
	t.Helper()
	tp, err := New([]Listen{{Proto: "udp", IP: "127.0.0.1"}}, nil, TLSConfig{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	return tp
}

func options() *sip.Request {
	return sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1"})
}

// TestSendOnly: send_only_to refuses any address outside its networks,
// and host names before any DNS query; broadcast and unspecified
// addresses are refused even without it. Nothing is sent off loopback
// here: only refusals and loopback sends are tried.
func TestSendOnly(t *testing.T) {
	tp := newUDP(t)
	for _, host := range []string{"255.255.255.255", "0.0.0.0", "::", "::ffff:255.255.255.255"} {
		if err := tp.SendTo(options(), "udp", host, 5060); !errors.Is(err, ErrSendRefused) {
			t.Errorf("no send_only_to, %s: %v", host, err)
		}
	}
	tp.SetSendOnly([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	for _, host := range []string{"192.0.2.1", "10.0.0.1", "example.com", "localhost", "2001:db8::1", "[2001:db8::1]", "::ffff:192.0.2.1"} {
		if err := tp.SendTo(options(), "udp", host, 5060); !errors.Is(err, ErrSendRefused) {
			t.Errorf("%s: %v, want refused", host, err)
		}
	}
	// allowed: a loopback peer gets it
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")})
	if err != nil {
		t.Skipf("127.0.0.2: %v", err)
	}
	defer peer.Close()
	pa := peer.LocalAddr().(*net.UDPAddr)
	for _, host := range []string{"127.0.0.2", "::ffff:127.0.0.2"} {
		if err := tp.SendTo(options(), "udp", host, pa.Port); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	for _, c := range []TLSConfig{
		{Certificate: "c.pem"},
		{PrivateKey: "k.pem"},
		{Certificate: "c.pem", PrivateKey: "k.pem", RequireCertificate: 1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := New([]Listen{{Proto: "tls", IP: "127.0.0.1"}}, nil, TLSConfig{}, zerolog.Nop()); err == nil {
		t.Error("a TLS socket without a certificate")
	}
	if _, err := New([]Listen{{Proto: "tls", IP: "127.0.0.1"}}, nil,
		TLSConfig{Certificate: "/nonexistent/c.pem", PrivateKey: "/nonexistent/k.pem"}, zerolog.Nop()); err == nil {
		t.Error("missing certificate files accepted")
	}
}

// TestStreamWriteTimeout: a peer that does not read cannot block a write
// on its connection longer than StreamWriteTimeout; the connection is
// closed then.
func TestStreamWriteTimeout(t *testing.T) {
	old := StreamWriteTimeout
	StreamWriteTimeout = 50 * time.Millisecond
	defer func() { StreamWriteTimeout = old }()
	a, b := net.Pipe() // synchronous: a write waits for a reader
	defer b.Close()
	tp := &Transport{log: zerolog.Nop()}
	tp.streams.init()
	c := &streamConn{Conn: a, t: tp, sock: &Socket{Proto: "tcp", IP: "127.0.0.1", Port: 5060}, key: "tcp|x"}
	t0 := time.Now()
	err := c.send([]byte("SIP/2.0 200 OK\r\n\r\n"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("send: %v, want a timeout", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("send returned after %s", d)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("connection not closed after the timeout: %v", err)
	}
}
