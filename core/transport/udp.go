package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// UDP sockets are read by kemigo's own goroutines (sipgo parses what they
// read): one reader per worker, as Kamailio has one receiver process per
// child, so that with inline dispatch the goroutine that read a message
// runs its route too. A reader busy in a long route must not stop the
// socket: when no reader has been waiting for udpStallAfter, or the
// datagrams read have waited in the kernel that long (their receive
// timestamp), an extra reader starts (up to the workers + 1); it takes
// messages off the socket and, the workers being busy, queues them, so an
// overload gets 503s instead of silent kernel drops. An extra reader ends
// once another one waits again and the backlog is gone.
const udpStallAfter = 20 * time.Millisecond

// udpReaders is the reader state of one UDP socket.
type udpReaders struct {
	min, max int          // readers always running; at most
	running  atomic.Int32 // reader goroutines
	waiting  atomic.Int32 // readers ready to read (in a read, or waiting for order)
	// order is held from a read until the message has its place in its
	// worker's order (sipmsg.Msg.Placed): readers take datagrams off the
	// socket one at a time, and a 180 read before a 200 is never routed
	// after it.
	order    sync.Mutex
	lastRead atomic.Int64 // monoNow of the last datagram read
	timed    bool         // SO_TIMESTAMPNS is on: datagrams carry their receive time
}

var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// SetUDPReaders sets how many goroutines read each UDP socket (at least
// one; the proxy gives its worker count). Call it before Start.
func (t *Transport) SetUDPReaders(n int) { t.udpReaders = max(n, 1) }

// SetUDPBuffer asks for a receive buffer of n bytes on each UDP socket
// ([core] maxbuffer; the kernel caps it at net.core.rmem_max; 0 leaves
// the default). Call it before Start.
func (t *Transport) SetUDPBuffer(n int) { t.udpBuffer = n }

// serveUDP starts the readers of a UDP socket and the watch that adds one
// when they are all held up.
func (t *Transport) serveUDP(s *Socket) {
	r := &udpReaders{min: t.udpReaders, max: t.udpReaders + 1}
	if t.udpBuffer > 0 {
		if err := s.udp.SetReadBuffer(t.udpBuffer); err != nil {
			t.log.Warn().Err(err).Str("socket", s.String()).Int("maxbuffer", t.udpBuffer).Msg("UDP receive buffer not set")
		}
	}
	if rc, err := s.udp.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			r.timed = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1) == nil
		})
	}
	r.lastRead.Store(monoNow())
	s.readers = r
	for i := 0; i < r.min; i++ {
		t.startUDPReader(s, false)
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(udpStallAfter / 2)
		defer tick.Stop()
		for range tick.C {
			if t.closing.Load() {
				return
			}
			if r.waiting.Load() == 0 && monoNow()-r.lastRead.Load() >= int64(udpStallAfter) {
				t.startUDPReader(s, true)
			}
		}
	}()
}

func (t *Transport) startUDPReader(s *Socket, extra bool) {
	r := s.readers
	if n := r.running.Add(1); extra && int(n) > r.max {
		r.running.Add(-1)
		return
	}
	t.wg.Add(1)
	go t.readUDP(s, extra)
}

// readUDP is one reader of a UDP socket.
func (t *Transport) readUDP(s *Socket, extra bool) {
	r := s.readers
	defer t.wg.Done()
	defer r.running.Add(-1)
	buf := make([]byte, sip.TransportBufferReadSize)
	var oob []byte
	if r.timed {
		oob = make([]byte, 64)
	}
	held := false
	placed := func() {
		if held {
			held = false
			r.order.Unlock()
		}
	}
	for {
		r.waiting.Add(1)
		r.order.Lock()
		held = true
		n, oobn, _, src, err := s.udp.ReadMsgUDPAddrPort(buf, oob)
		r.waiting.Add(-1)
		if err != nil {
			placed()
			if errors.Is(err, net.ErrClosed) || t.closing.Load() {
				return
			}
			t.log.Warn().Err(err).Str("socket", s.String()).Msg("UDP read error")
			continue
		}
		now := monoNow()
		r.lastRead.Store(now)
		late := false
		if oobn > 0 {
			if rx, ok := rxTime(oob[:oobn]); ok {
				late = time.Since(rx) >= udpStallAfter
			}
		}
		if late && int(r.running.Load()) < r.max {
			t.startUDPReader(s, true)
		}
		t.datagram(s, buf[:n], src, placed)
		placed() // dropped, or a handler that does not place
		if extra && !late && r.waiting.Load() > 0 {
			return
		}
	}
}

// rxTime reads the SO_TIMESTAMPNS control message (a struct timespec).
func rxTime(oob []byte) (time.Time, bool) {
	const hdr = syscall.SizeofCmsghdr
	for len(oob) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return time.Time{}, false
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			d := oob[hdr:]
			sec := int64(binary.NativeEndian.Uint64(d[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(d[8:16]))
			return time.Unix(sec, nsec), true
		}
		oob = oob[cmsgAlign(l):]
	}
	return time.Time{}, false
}

func cmsgAlign(l int) int { return (l + 7) &^ 7 }

// datagram parses one datagram with sipgo's parser and hands it on, as
// sipgo's own UDP reader does: CRLF keep-alives and empty datagrams are
// skipped, an unparsable message is dropped and logged.
func (t *Transport) datagram(s *Socket, data []byte, src netip.AddrPort, placed func()) {
	if len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0 {
		return
	}
	if len(bytes.Trim(data, "\x00")) == 0 {
		return
	}
	msg, err := s.parser.ParseSIP(data)
	if err != nil {
		t.logMalformed(s.String(), addrPortString(src), string(data), err.Error())
		return
	}
	msg.SetTransport("UDP") // sipmsg's replies copy it
	t.deliver(s, msg, src.Addr().Unmap().String(), int(src.Port()), placed)
}

// addrPortString is a source as sipgo writes it (host:port, IPv6 in
// brackets, an IPv4-mapped address as IPv4), for the log.
func addrPortString(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String() + ":" + strconv.Itoa(int(ap.Port()))
	}
	return netip.AddrPortFrom(a, ap.Port()).String()
}
