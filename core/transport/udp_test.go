package transport

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

const udpOptions = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1;rport\r\n" +
	"From: <sip:a@x>;tag=1\r\nTo: <sip:x>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"

// UDP readers hand each datagram on with its source address and port,
// over IPv4 and IPv6; a reply goes back to that source; Close stops the
// readers and frees the port.
func TestUDPReaders(t *testing.T) {
	for _, tc := range []struct{ ip, client string }{{"127.0.0.1", "127.0.0.1"}, {"::1", "::1"}} {
		t.Run(tc.ip, func(t *testing.T) {
			tp, err := New([]Listen{{Proto: "udp", IP: tc.ip}}, nil, TLSConfig{}, zerolog.Nop())
			if err != nil {
				t.Skipf("%s: %v", tc.ip, err)
			}
			tp.SetUDPReaders(2)
			got := make(chan *sipmsg.Msg, 4)
			tp.Start(func(m *sipmsg.Msg) {
				got <- m
				res := m.BuildReply(200, "OK")
				if err := m.SendReply(res); err != nil {
					t.Errorf("reply: %v", err)
				}
			})
			s := tp.Sockets()[0]
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(tc.client)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			dst := &net.UDPAddr{IP: net.ParseIP(tc.ip), Port: s.Port}
			for i := 0; i < 3; i++ {
				if _, err := c.WriteToUDP([]byte(udpOptions), dst); err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-got:
					cp := c.LocalAddr().(*net.UDPAddr).Port
					if m.SrcIP != tc.client || m.SrcPort != cp {
						t.Errorf("source %s:%d, want %s:%d", m.SrcIP, m.SrcPort, tc.client, cp)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("datagram not delivered")
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 2048)
				n, from, err := c.ReadFromUDP(buf)
				if err != nil {
					t.Fatalf("no reply: %v", err)
				}
				if from.Port != s.Port || string(buf[:len("SIP/2.0 200 OK")]) != "SIP/2.0 200 OK" {
					t.Errorf("reply from %v: %q", from, buf[:n])
				}
			}
			done := make(chan struct{})
			go func() { tp.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return")
			}
			// the port is free again: the socket was closed
			again, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(tc.ip), Port: s.Port})
			if err != nil {
				t.Errorf("port %s still taken after Close: %v", strconv.Itoa(s.Port), err)
			} else {
				again.Close()
			}
		})
	}
}
