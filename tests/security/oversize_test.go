package security

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/tests/harness"
)

// keepalive is an OPTIONS to the proxy (answered 200 Keepalive) with
// ${extra} header lines before Content-Length.
const keepalive = `OPTIONS sip:${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:siptest@${local_ip}>;tag=${tag}
To: <sip:${server}>
Call-ID: ${call_id}
CSeq: ${cseq} OPTIONS
${extra}Content-Length: ${content_length}

`

// pad returns header lines "X-Pad: xxx...\n" making about n bytes.
func pad(n int) string {
	var b strings.Builder
	for b.Len() < n {
		line := "X-Pad: " + strings.Repeat("x", min(900, n-b.Len())) + "\n"
		b.WriteString(line)
	}
	return b.String()
}

func lines(n int, line string) string { return strings.Repeat(line+"\n", n) }

// sized inserts X-Pad header lines before the Content-Length of the
// rendered message raw so that it is exactly size bytes long.
func sized(raw string, size int) string {
	rest := size - len(raw) // bytes of header lines to add
	const full = len("X-Pad: ") + 900 + 2
	n := (rest - 10) / full
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("X-Pad: " + strings.Repeat("x", 900) + "\r\n")
	}
	b.WriteString("X-Pad: " + strings.Repeat("x", rest-n*full-9) + "\r\n")
	return strings.Replace(raw, "Content-Length:", b.String()+"Content-Length:", 1)
}

// TestOversizedTCP: a message over 64 KB on a stream, or one announcing a
// body over 64 KB, is not parsed: the connection is closed (after
// StreamLinger) and the drop logged with the source; the proxy goes on.
func TestOversizedTCP(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, ""), harness.Options{})
	cases := []struct{ name, extra, body string }{
		{"70 KB of headers", pad(70000), ""},
		{"Content-Length of 1 GB", "", "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := siptest.Dial(t, "tcp", s.Addrs["tcp"]) // for the placeholders
			sent, err := c.Render(keepalive, "extra", tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			raw := sent.Raw
			if tc.body != "" {
				raw = strings.Replace(raw, "Content-Length: 0", "Content-Length: 1000000000", 1) + tc.body
			}
			conn, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, tcpAddr(t, s.Addrs["tcp"]))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write([]byte(raw)); err != nil {
				t.Fatal(err)
			}
			// no reply; the proxy closes the connection
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if n > 0 || err == nil {
				t.Fatalf("got %q, want the connection closed", buf[:n])
			}
			if !errors.Is(err, io.EOF) && !isReset(err) {
				t.Fatalf("read: %v, want EOF or reset (connection closed)", err)
			}
			s.Logs.WaitFor(t, "the drop", siptest.All(siptest.MessageContains("malformed SIP message dropped"),
				siptest.FieldIs("error", "Message exceeds ParseMaxMessageLength")))
			s.Logs.WaitFor(t, "the close", siptest.All(siptest.MessageContains("connection closed after unparsable data"),
				siptest.FieldIs("src", conn.LocalAddr().String())))
		})
	}
	c := siptest.Dial(t, "tcp", s.Addrs["tcp"])
	_, res := c.Exchange(siptest.Options)
	siptest.AssertStatus(t, res, 200, "Keepalive")
}

// TestOversizedUDP: the largest UDP payload (65,507 bytes) and a 40 KB
// datagram are read whole (sipgo's default 32 KB read buffer used to cut
// a datagram silently, and the 40 KB message did not parse any more); a
// datagram whose Content-Length goes past its end is dropped and logged.
func TestOversizedUDP(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, ""), harness.Options{})
	c := siptest.Dial(t, "udp", s.Addrs["udp"])
	for _, size := range []int{40000, 65507} {
		sent, err := c.Render(keepalive, "extra", "")
		if err != nil {
			t.Fatal(err)
		}
		raw := sized(sent.Raw, size)
		if err := c.SendRaw([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		res := c.Expect()
		siptest.AssertStatus(t, res, 200, "Keepalive")
		if got := res.CallID().Value(); got != sent.CallID {
			t.Errorf("%d bytes: reply to %s, sent %s", size, got, sent.CallID)
		}
	}
	sent, _ := c.Render(keepalive, "extra", "")
	raw := strings.Replace(sent.Raw, "Content-Length: 0", "Content-Length: 70000", 1) + "short body"
	if err := c.SendRaw([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	s.Logs.WaitFor(t, "the drop", siptest.All(siptest.MessageContains("malformed SIP message dropped"), siptest.FieldIs("src", c.Local())))
	c.ExpectNone(200 * time.Millisecond)
}

// TestHeaderCount: 10,000 header fields (within 64 KB) get 400 "Too Many
// Headers" before any routing ([core] max_headers, 256 by default); as
// many Via headers get no reply at all (the reply would carry them all
// back); 200 headers are fine.
func TestHeaderCount(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, ""), harness.Options{})
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			c := siptest.Dial(t, proto, s.Addrs[proto])
			_, res := c.Exchange(keepalive, "extra", lines(10000, "a:1"))
			siptest.AssertStatus(t, res, 400, "Too Many Headers")
			s.Logs.WaitFor(t, "the log line", siptest.All(siptest.MessageContains("too many headers"), siptest.FieldIs("src", c.Local())))

			c.Send(keepalive, "extra", lines(3000, "v:SIP/2.0/UDP h"))
			c.ExpectNone(300 * time.Millisecond)

			_, res = c.Exchange(keepalive, "extra", lines(200, "a:1"))
			siptest.AssertStatus(t, res, 200, "Keepalive")
		})
	}
	if n := s.P.Received.Load(); n != 2 {
		t.Errorf("%d messages reached the workers, want 2 (the two with 200 headers)", n)
	}
}

func tcpAddr(t *testing.T, hp string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", hp)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(err.Error(), "reset")
}
