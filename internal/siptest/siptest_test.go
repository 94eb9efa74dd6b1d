package siptest

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/config"
)

func TestRender(t *testing.T) {
	got, err := Render("\nMESSAGE sip:${server} SIP/2.0\nVia: SIP/2.0/${transport} ${local};branch=${branch}\n"+
		"Content-Length: ${content_length}\n\nhello\n", Vars{
		"server": "127.0.0.1:5060", "transport": "UDP", "local": "127.0.0.2:4000", "branch": "z9hG4bK-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "MESSAGE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:4000;branch=z9hG4bK-1\r\n" +
		"Content-Length: 7\r\n\r\nhello\r\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// no empty line: one is added; an explicit content_length wins
	got, err = Render("OPTIONS sip:x SIP/2.0\r\nContent-Length: ${content_length}", Vars{"content_length": "9"})
	if err != nil || got != "OPTIONS sip:x SIP/2.0\r\nContent-Length: 9\r\n\r\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := Render("OPTIONS sip:${nope} SIP/2.0\n", Vars{}); err == nil || !strings.Contains(err.Error(), "${nope}") {
		t.Fatalf("unknown placeholder: err %v", err)
	}
	if _, err := Render("OPTIONS sip:${x", Vars{}); err == nil {
		t.Fatal("unterminated placeholder accepted")
	}
}

func TestReadStreamMessage(t *testing.T) {
	in := "\r\n\r\nSIP/2.0 200 OK\r\nl: 3\r\n\r\nabcSIP/2.0 404 Nope\r\nContent-Length: 0\r\n\r\n"
	rd := bufio.NewReader(strings.NewReader(in))
	a, err := ReadStreamMessage(rd)
	if err != nil || string(a) != "SIP/2.0 200 OK\r\nl: 3\r\n\r\nabc" {
		t.Fatalf("first: %q %v", a, err)
	}
	b, err := ReadStreamMessage(rd)
	if err != nil || !strings.HasPrefix(string(b), "SIP/2.0 404 Nope") {
		t.Fatalf("second: %q %v", b, err)
	}
	if _, err := ReadStreamMessage(rd); err == nil {
		t.Fatal("no error at EOF")
	}
}

// fakeServer answers every request with 200 OK (sipgo builds the reply)
// over UDP and TCP on one port, without any proxy.
func fakeServer(t *testing.T) string {
	t.Helper()
	port, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close(); l.Close() })
	answer := func(raw []byte) []byte {
		m, err := sip.ParseMessage(raw)
		if err != nil {
			return []byte("SIP/2.0 400 Bad\r\nContent-Length: 0\r\n\r\n")
		}
		res := sip.NewResponseFromRequest(m.(*sip.Request), 200, "OK", nil)
		return []byte(res.String())
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := u.ReadFrom(buf)
			if err != nil {
				return
			}
			u.WriteTo(answer(buf[:n]), from)
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				for {
					raw, err := ReadStreamMessage(rd)
					if err != nil {
						return
					}
					c.Write(answer(raw))
				}
			}()
		}
	}()
	return addr
}

func TestClientAgainstFakeServer(t *testing.T) {
	addr := fakeServer(t)
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			c := Dial(t, proto, addr, WithLocalIP("127.0.0.2"))
			if c.LocalIP != "127.0.0.2" || c.LocalPort == 0 {
				t.Fatalf("bound to %s", c.Local())
			}
			sent, res := c.Exchange(Options)
			AssertStatus(t, res, 200, "OK")
			AssertMatches(t, res, sent)
			AssertHeaderContains(t, res, "Via", "SIP/2.0/"+strings.ToUpper(proto)+" "+c.Local())
			if sent.CSeq != 1 {
				t.Errorf("first CSeq %d", sent.CSeq)
			}
			// a fixed Call-ID across messages, and a second exchange on the socket
			s2, res2 := c.Exchange(Options, "call_id", sent.CallID)
			AssertMatches(t, res2, s2)
			if s2.CallID != sent.CallID || s2.CSeq != 2 {
				t.Errorf("second message: %+v", s2)
			}
			c.ExpectNone(100 * time.Millisecond)
		})
	}
}

func TestDialRejectsNonLoopback(t *testing.T) {
	if _, err := NewClient("udp", "192.0.2.1:5060"); err == nil {
		t.Error("non-loopback server accepted")
	}
	if _, err := NewClient("udp", "127.0.0.1:5060", WithLocalIP("192.0.2.1")); err == nil {
		t.Error("non-loopback local address accepted")
	}
	if _, err := NewClient("sctp", "127.0.0.1:5060"); err == nil {
		t.Error("sctp accepted")
	}
}

func TestStartProxy(t *testing.T) {
	cfg := config.Default()
	cfg.AppPython3.Load = "testdata/echo.py"
	p, udp, tcp := StartProxy(t, cfg)
	if Logs(p) == nil {
		t.Fatal("no log buffer")
	}
	for proto, addr := range map[string]string{"udp": udp, "tcp": tcp} {
		c := Dial(t, proto, addr, WithLocalIP("127.0.0.3"))
		sent, res := c.Exchange(Options)
		AssertStatus(t, res, 200, "Echo OPTIONS")
		AssertMatches(t, res, sent)
		AssertHeader(t, res, "X-Echo-Src", "127.0.0.3")
	}
	Logs(p).WaitFor(t, "from the script", All(AtLevel("info"), MessageContains("siptest echo OPTIONS")))
	if !Logs(p).Contains("kemigo started") {
		t.Error("start not logged")
	}
}

// Two proxies in one process, one after the other (each subtest's
// cleanup closes its proxy before the next starts).
func TestStartProxyTwice(t *testing.T) {
	for i := 0; i < 2; i++ {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			cfg := config.Default()
			cfg.AppPython3.Load = "testdata/echo.py"
			_, udp, _ := StartProxy(t, cfg)
			c := Dial(t, "udp", udp)
			_, res := c.Exchange(Options)
			AssertStatus(t, res, 200, "Echo OPTIONS")
		})
	}
}
