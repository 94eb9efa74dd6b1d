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

// benchProxy is shared by the benchmarks of this file: one process has one
// CPython, and every proxy built in it must have the same export table.
var (
	benchOnce sync.Once
	benchP    *Proxy
	benchErr  error
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
// listening on a free UDP port of 127.0.0.1.
func benchKeepaliveProxy(b *testing.B) *Proxy {
	b.Helper()
	if _, err := os.Stat(benchRefScript); err != nil {
		b.Skipf("reference script absent (%v): apt-get install kamailio, or run make test-deps", err)
	}
	benchOnce.Do(func() {
		for try := 0; try < 5; try++ {
			var port int
			if port, benchErr = benchFreeUDPPort(); benchErr != nil {
				return
			}
			cfg := config.Default()
			cfg.Listen = []string{fmt.Sprintf("udp:127.0.0.1:%d", port)}
			cfg.Workers = 1
			cfg.AppPython3.Load = benchRefScript
			cfg.HTable.HTable = []string{"ipban=>size=8;autoexpire=300;"}
			if benchP, benchErr = New(cfg, zerolog.Nop()); benchErr == nil {
				benchP.Start()
				return
			}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchP
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
// 200, one at a time: the whole path with sipgo's reader, the hand-off to
// the worker and the reply write. ns/op is the round-trip latency;
// allocs/op counts both sides (the client's are a few).
func BenchmarkOptionsKeepalive(b *testing.B) {
	p := benchKeepaliveProxy(b)
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

	b.Run("udp", func(b *testing.B) {
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
	})
}
