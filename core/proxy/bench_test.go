package proxy

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/pybridge"
	"github.com/rs/zerolog"
)

// benchRefScript is Kamailio's own example KEMI Python script (Debian package
// kamailio). An OPTIONS to the proxy's address with no R-URI user is
// answered "200 Keepalive" by its ksr_route_reqinit.
const benchRefScript = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

// The proxies of the benchmarks of this file, by dispatch mode, are built
// once: one process has one CPython, and every proxy built in it must have
// the same export table.
var (
	benchMu      sync.Mutex
	benchProxies = map[string]*Proxy{}
)

func benchFreeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// benchKeepaliveProxy starts a proxy with one worker on the reference script,
// listening on a free UDP port of 127.0.0.1, with the given dispatch mode.
func benchKeepaliveProxy(b *testing.B, dispatch string) *Proxy {
	b.Helper()
	if _, err := os.Stat(benchRefScript); err != nil {
		b.Skipf("reference script absent (%v): apt-get install kamailio, or run make test-deps", err)
	}
	benchMu.Lock()
	defer benchMu.Unlock()
	if p := benchProxies[dispatch]; p != nil {
		return p
	}
	var err error
	for try := 0; try < 5; try++ {
		var port int
		if port, err = benchFreeUDPPort(); err != nil {
			break
		}
		cfg := config.Default()
		cfg.Listen = []string{fmt.Sprintf("udp:127.0.0.1:%d", port)}
		cfg.Workers = 1
		cfg.Dispatch = dispatch
		cfg.AppPython3.Load = benchRefScript
		cfg.HTable.HTable = []string{"ipban=>size=8;autoexpire=300;"}
		var p *Proxy
		if p, err = New(cfg, zerolog.Nop()); err == nil {
			p.Start()
			benchProxies[dispatch] = p
			return p
		}
	}
	b.Fatal(err)
	return nil
}

func benchKeepaliveOptions(port, srcPort, n int) string {
	return fmt.Sprintf("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-bench-%d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:bench@127.0.0.1>;tag=bench-%d\r\n"+
		"To: <sip:127.0.0.1:%d>\r\n"+
		"Call-ID: bench-%d@127.0.0.1\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"User-Agent: kemigo-bench\r\n"+
		"Content-Length: 0\r\n\r\n", port, srcPort, n, n, port, n)
}

// benchDiscardReplier serializes the reply as the transport would before
// writing it, and keeps only its status line.
type benchDiscardReplier struct {
	buf  strings.Builder
	last int
	n    int
}

func (d *benchDiscardReplier) SendReply(m *sipmsg.Msg, res *sip.Response) error {
	d.buf.Reset()
	res.StringWrite(&d.buf)
	d.last = res.StatusCode
	d.n++
	return nil
}

// BenchmarkOptionsKeepalive is one OPTIONS keepalive handled by the
// reference script, answered 200 Keepalive.
//
// route: parse the datagram, build the message, run ksr_request_route on
// the worker's thread (already attached) with every KSR call it makes, build
// and serialize the reply; only the socket write is left out.
//
// udp: a client socket sends the OPTIONS to the proxy and waits for the
// 200, one at a time: the whole path with the UDP reader running the route
// inline (dispatch "inline", the default) and the reply write. ns/op is
// the round-trip latency; allocs/op counts both sides (the client's are a
// few). udp-queued: the same with dispatch "queued", every message handed
// to the worker's own thread.
func BenchmarkOptionsKeepalive(b *testing.B) {
	p := benchKeepaliveProxy(b, "inline")
	port := p.TP.Sockets()[0].Port

	b.Run("route", func(b *testing.B) {
		raws := make([][]byte, 64)
		for i := range raws {
			raws[i] = []byte(benchKeepaliveOptions(port, 5070, i))
		}
		rep := &benchDiscardReplier{}
		var failed error
		b.ReportAllocs()
		p.Engine.Run(0, func(w *pybridge.Worker) {
			handle := func(i int) error {
				m, err := sipmsg.Parse(raws[i%len(raws)])
				if err != nil {
					return err
				}
				m.Proto, m.SrcIP, m.SrcPort = "udp", "127.0.0.1", 5070
				m.DstIP, m.DstPort = "127.0.0.1", port
				m.Replier = rep
				p.Route(w, m)
				return nil
			}
			if failed = handle(0); failed != nil {
				return
			}
			if rep.n != 1 || rep.last != 200 || !strings.Contains(rep.buf.String(), " 200 Keepalive\r\n") {
				failed = fmt.Errorf("want one 200 Keepalive, got %d replies, last:\n%s", rep.n, rep.buf.String())
				return
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := handle(i); err != nil {
					failed = err
					return
				}
			}
			b.StopTimer()
		})
		if failed != nil {
			b.Fatal(failed)
		}
		if rep.last != 200 {
			b.Fatalf("last reply %d", rep.last)
		}
	})

	for _, mode := range []string{"inline", "queued"} {
		name := "udp"
		if mode == "queued" {
			name = "udp-queued"
		}
		b.Run(name, func(b *testing.B) { benchUDPRoundTrip(b, benchKeepaliveProxy(b, mode).TP.Sockets()[0].Port) })
	}
}

// benchUDPRoundTrip sends keepalives to port one at a time, each waiting
// for its 200.
func benchUDPRoundTrip(b *testing.B, port int) {
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	src := conn.LocalAddr().(*net.UDPAddr).Port
	raws := make([][]byte, 64)
	for i := range raws {
		raws[i] = []byte(benchKeepaliveOptions(port, src, i))
	}
	buf := make([]byte, 4096)
	roundTrip := func(i int) error {
		if _, err := conn.Write(raws[i%len(raws)]); err != nil {
			return err
		}
		if err := conn.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			return err
		}
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("no reply to OPTIONS %d: %w", i, err)
		}
		if n < 24 || string(buf[:22]) != "SIP/2.0 200 Keepalive\r" {
			return fmt.Errorf("reply to OPTIONS %d: %q", i, buf[:min(n, 40)])
		}
		return nil
	}
	if err := roundTrip(0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := roundTrip(i); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRelayScript relays every request statefully to a fixed next hop
// with this proxy in Record-Route: the forwarding path of a routing script.
const benchRelayScript = `import KSR


def mod_init():
    return kamailio()


class kamailio:
    def __init__(self):
        pass

    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        KSR.rr.record_route()
        KSR.setdsturi("sip:127.0.0.1:5090")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1
`

func benchMessage(n int) []byte {
	return []byte(fmt.Sprintf("MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fwd-%d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:alice@127.0.0.1>;tag=fwd-%d\r\n"+
		"To: <sip:bob@127.0.0.1>\r\n"+
		"Call-ID: fwd-%d@127.0.0.1\r\n"+
		"CSeq: 1 MESSAGE\r\n"+
		"Content-Type: text/plain\r\n"+
		"Content-Length: 5\r\n\r\nhello", n, n, n))
}

// BenchmarkForward is one MESSAGE transaction through the proxy on
// unbound sockets (the transport's Capture): parse the request, run a
// route that adds Record-Route and t_relay()s it to $du (transaction,
// branch, Via, serialization), then parse the next hop's 200 and relay
// it upstream (tm's reply matching and forwarding). Only the socket writes
// are left out.
func BenchmarkForward(b *testing.B) {
	script := b.TempDir() + "/relay.py"
	if err := os.WriteFile(script, []byte(benchRelayScript), 0o644); err != nil {
		b.Fatal(err)
	}
	var out []sip.Message
	cfg := config.Default()
	cfg.Listen = []string{"udp:127.0.0.1:5060"}
	cfg.Workers = 1
	cfg.AppPython3.Load = script
	p, err := NewWith(cfg, zerolog.Nop(), Options{Capture: func(msg sip.Message, proto, host string, port int) {
		out = append(out, msg)
	}})
	if err != nil {
		b.Fatal(err)
	}
	p.Start()
	defer p.Close()
	var buf strings.Builder
	var failed error
	b.ReportAllocs()
	p.Engine.Run(0, func(w *pybridge.Worker) {
		one := func(i int) error {
			out = out[:0]
			m, err := sipmsg.Parse(benchMessage(i))
			if err != nil {
				return err
			}
			m.Proto, m.SrcIP, m.SrcPort, m.DstIP, m.DstPort = "udp", "127.0.0.1", 5070, "127.0.0.1", 5060
			m.Replier = p.TP
			p.Route(w, m)
			if len(out) != 1 {
				return fmt.Errorf("request %d: %d messages sent, want the relayed MESSAGE", i, len(out))
			}
			req, ok := out[0].(*sip.Request)
			if !ok || req.GetHeader("Record-Route") == nil {
				return fmt.Errorf("request %d: relayed %v without Record-Route", i, out[0])
			}
			buf.Reset()
			sip.NewResponseFromRequest(req, 200, "OK", nil).StringWrite(&buf)
			r, err := sipmsg.Parse([]byte(buf.String()))
			if err != nil {
				return err
			}
			r.Proto, r.SrcIP, r.SrcPort, r.DstIP, r.DstPort = "udp", "127.0.0.1", 5090, "127.0.0.1", 5060
			r.Replier = p.TP
			out = out[:0]
			p.Route(w, r)
			if len(out) != 1 {
				return fmt.Errorf("reply %d: %d messages sent, want the 200 relayed upstream", i, len(out))
			}
			if res, ok := out[0].(*sip.Response); !ok || res.StatusCode != 200 {
				return fmt.Errorf("reply %d: sent %v", i, out[0])
			}
			return nil
		}
		if failed = one(0); failed != nil {
			return
		}
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			if failed = one(i); failed != nil {
				return
			}
		}
		b.StopTimer()
	})
	if failed != nil {
		b.Fatal(failed)
	}
}
