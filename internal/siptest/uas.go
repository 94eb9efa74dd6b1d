package siptest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Step is one reply a UAS sends to an INVITE, Delay after the previous
// step (or after the INVITE for the first one).
type Step struct {
	Code   int
	Reason string // "" picks the usual phrase
	Delay  time.Duration
}

// Ring is the usual start of an answer: 100 Trying and 180 Ringing at once.
var Ring = []Step{{Code: 100}, {Code: 180}}

// Answer is Ring followed by code after d.
func Answer(code int, d time.Duration) []Step {
	return append(append([]Step(nil), Ring...), Step{Code: code, Delay: d})
}

// UASRequest is one request a UAS received.
type UASRequest struct {
	Req  *sip.Request
	Raw  []byte
	From string // source ip:port
	At   time.Time
}

// UAS is a scripted user agent server on a loopback address, over UDP or
// TCP. It answers each new INVITE with its steps (Answer, SetAnswer), a
// retransmitted INVITE (same top Via branch) with the last reply sent, a
// CANCEL with 200 and then (CancelDelay later) 487 to the INVITE if it had
// no final yet, BYE and any other request but ACK with 200. It records
// every request received, ACKs included; Silence turns the answer to other
// methods off. Replies go back over the request's TCP connection, or for
// UDP to the packet's source address.
type UAS struct {
	T     testing.TB
	Proto string // "udp" or "tcp"
	IP    string
	Port  int
	User  string // user part of Contact and URI ("callee")
	// CancelDelay separates the 200 to a CANCEL from the 487 to its
	// INVITE, so the two reach a proxy in a known order.
	CancelDelay time.Duration

	silent map[string]bool
	udp    *net.UDPConn
	tcp    net.Listener

	mu      sync.Mutex
	steps   []Step
	reqs    []UASRequest
	invites map[string]*uasInvite // by top Via branch
	conns   map[net.Conn]bool
	notify  chan struct{}
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// uasInvite is the server side of one INVITE.
type uasInvite struct {
	req   *sip.Request
	reply func([]byte) error
	tag   string
	last  []byte // last reply sent
	final bool
	timer *time.Timer
}

// StartUAS starts a UAS of proto on ip (a 127.0.0.0/8 address, free port)
// answering INVITEs with steps. It is closed in t.Cleanup.
func StartUAS(t testing.TB, proto, ip string, steps ...Step) *UAS {
	t.Helper()
	u, err := NewUAS(proto, ip, steps...)
	if err != nil {
		t.Fatal(err)
	}
	u.T = t
	t.Cleanup(u.Close)
	return u
}

// NewUAS is StartUAS without a testing.TB (the caller closes it).
func NewUAS(proto, ip string, steps ...Step) (*UAS, error) {
	proto = strings.ToLower(proto)
	a := net.ParseIP(ip)
	if a == nil || !a.IsLoopback() {
		return nil, fmt.Errorf("siptest: UAS address %q is not a loopback address", ip)
	}
	u := &UAS{Proto: proto, IP: ip, User: "callee", CancelDelay: 100 * time.Millisecond,
		steps: steps, invites: map[string]*uasInvite{}, conns: map[net.Conn]bool{},
		notify: make(chan struct{}), done: make(chan struct{})}
	var err error
	switch proto {
	case "udp":
		if u.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: a}); err != nil {
			return nil, fmt.Errorf("siptest: UAS bind udp %s: %w", ip, err)
		}
		u.Port = u.udp.LocalAddr().(*net.UDPAddr).Port
		u.wg.Add(1)
		go u.readUDP()
	case "tcp":
		if u.tcp, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
			return nil, fmt.Errorf("siptest: UAS listen tcp %s: %w", ip, err)
		}
		u.Port = u.tcp.Addr().(*net.TCPAddr).Port
		u.wg.Add(1)
		go u.accept()
	default:
		return nil, fmt.Errorf("siptest: transport %q is not udp or tcp", proto)
	}
	return u, nil
}

// Addr is the UAS address, ip:port.
func (u *UAS) Addr() string { return net.JoinHostPort(u.IP, strconv.Itoa(u.Port)) }

// URI is the UAS's SIP URI with its transport, e.g.
// "sip:callee@127.0.0.2:40000;transport=udp" (its Contact too).
func (u *UAS) URI() string { return "sip:" + u.User + "@" + u.Addr() + ";transport=" + u.Proto }

// SetAnswer replaces the steps used for INVITEs received from now on.
func (u *UAS) SetAnswer(steps ...Step) {
	u.mu.Lock()
	u.steps = steps
	u.mu.Unlock()
}

// Silence makes the UAS ignore requests of these methods (other than
// INVITE, ACK and CANCEL): they are recorded and get no reply.
func (u *UAS) Silence(methods ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.silent == nil {
		u.silent = map[string]bool{}
	}
	for _, m := range methods {
		u.silent[strings.ToUpper(m)] = true
	}
}

// Close stops the UAS: pending steps are dropped, sockets closed.
func (u *UAS) Close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	for _, inv := range u.invites {
		if inv.timer != nil {
			inv.timer.Stop()
		}
	}
	for c := range u.conns {
		_ = c.Close()
	}
	u.mu.Unlock()
	close(u.done)
	if u.udp != nil {
		_ = u.udp.Close()
	}
	if u.tcp != nil {
		_ = u.tcp.Close()
	}
	u.wg.Wait()
}

// Requests returns the requests received so far with that method ("" for
// all), in order.
func (u *UAS) Requests(method string) []UASRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []UASRequest
	for _, r := range u.reqs {
		if method == "" || string(r.Req.Method) == method {
			out = append(out, r)
		}
	}
	return out
}

// Count is len(Requests(method)).
func (u *UAS) Count(method string) int { return len(u.Requests(method)) }

// Wait waits up to d until n requests of method arrived and returns the
// n-th; ok is false on timeout.
func (u *UAS) Wait(method string, n int, d time.Duration) (UASRequest, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		u.mu.Lock()
		ch := u.notify
		u.mu.Unlock()
		if rs := u.Requests(method); len(rs) >= n {
			return rs[n-1], true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return UASRequest{}, false
		case <-u.done:
			return UASRequest{}, false
		}
	}
}

// Expect is Wait that fails the test (with what was received) on timeout;
// d defaults to DefaultTimeout.
func (u *UAS) Expect(method string, n int, d ...time.Duration) *sip.Request {
	wait := DefaultTimeout
	if len(d) > 0 {
		wait = d[0]
	}
	r, ok := u.Wait(method, n, wait)
	if !ok {
		var got []string
		for _, r := range u.Requests("") {
			got = append(got, string(r.Req.Method))
		}
		err := fmt.Errorf("siptest: UAS %s %s: no %s #%d within %s (received %v)", u.Proto, u.Addr(), method, n, wait, got)
		if u.T == nil {
			panic(err)
		}
		u.T.Helper()
		u.T.Fatal(err)
		return nil
	}
	return r.Req
}

func (u *UAS) readUDP() {
	defer u.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := u.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		raw := append([]byte(nil), buf[:n]...)
		u.handle(raw, from.String(), func(b []byte) error {
			_, err := u.udp.WriteToUDP(b, from)
			return err
		})
	}
}

func (u *UAS) accept() {
	defer u.wg.Done()
	for {
		c, err := u.tcp.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			_ = c.Close()
			return
		}
		u.conns[c] = true
		u.mu.Unlock()
		u.wg.Add(1)
		go u.serveConn(c)
	}
}

func (u *UAS) serveConn(c net.Conn) {
	defer u.wg.Done()
	defer c.Close()
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.SetWriteDeadline(time.Now().Add(3 * time.Second))
		_, err := c.Write(b)
		return err
	}
	rd := bufio.NewReader(c)
	from := c.RemoteAddr().String()
	for {
		raw, err := ReadStreamMessage(rd)
		if err != nil {
			return
		}
		u.handle(raw, from, write)
	}
}

// handle processes one received message (responses are ignored).
func (u *UAS) handle(raw []byte, from string, reply func([]byte) error) {
	msg, err := sip.ParseMessage(raw)
	if err != nil {
		return
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return
	}
	req.SetSource(from)
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.reqs = append(u.reqs, UASRequest{Req: req, Raw: raw, From: from, At: time.Now()})
	close(u.notify)
	u.notify = make(chan struct{})
	br := topBranch(req)
	switch req.Method {
	case sip.INVITE:
		if inv := u.invites[br]; inv != nil {
			last := inv.last
			u.mu.Unlock()
			if last != nil {
				_ = reply(last) // a retransmission: the last reply again
			}
			return
		}
		inv := &uasInvite{req: req, reply: reply, tag: NewID(4)}
		u.invites[br] = inv
		steps := append([]Step(nil), u.steps...)
		u.mu.Unlock()
		u.play(inv, steps)
	case sip.ACK:
		u.mu.Unlock()
	case sip.CANCEL:
		inv := u.invites[br]
		u.mu.Unlock()
		_ = reply(u.response(req, 200, "", ""))
		if inv == nil {
			return
		}
		u.mu.Lock()
		if inv.final {
			u.mu.Unlock()
			return
		}
		inv.final = true // no further step
		if inv.timer != nil {
			inv.timer.Stop()
		}
		inv.timer = time.AfterFunc(u.CancelDelay, func() {
			b := u.response(inv.req, 487, "", inv.tag)
			u.mu.Lock()
			inv.last = b
			closed := u.closed
			u.mu.Unlock()
			if !closed {
				_ = inv.reply(b)
			}
		})
		u.mu.Unlock()
	default:
		silent := u.silent[string(req.Method)]
		u.mu.Unlock()
		if !silent {
			_ = reply(u.response(req, 200, "", ""))
		}
	}
}

// play sends steps[0] after its delay, then the rest.
func (u *UAS) play(inv *uasInvite, steps []Step) {
	if len(steps) == 0 {
		return
	}
	s := steps[0]
	send := func() {
		u.mu.Lock()
		if u.closed || inv.final {
			u.mu.Unlock()
			return
		}
		b := u.response(inv.req, s.Code, s.Reason, inv.tag)
		inv.last = b
		if s.Code >= 200 {
			inv.final = true
		}
		u.mu.Unlock()
		if err := inv.reply(b); err != nil && !errors.Is(err, net.ErrClosed) {
			return
		}
		u.play(inv, steps[1:])
	}
	if s.Delay <= 0 {
		send()
		return
	}
	u.mu.Lock()
	inv.timer = time.AfterFunc(s.Delay, send)
	u.mu.Unlock()
}

// response renders a reply to req (to-tag tag for codes above 100).
func (u *UAS) response(req *sip.Request, code int, reason, tag string) []byte {
	if reason == "" {
		reason = phrase(code)
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil {
		to.Params.Remove("tag")
		if code > 100 && tag != "" {
			to.Params.Add("tag", tag)
		} else if code > 100 {
			if rt, ok := req.To().Params.Get("tag"); ok {
				to.Params.Add("tag", rt)
			} else {
				to.Params.Add("tag", NewID(4))
			}
		}
	}
	if code > 100 && code < 300 && req.Method == sip.INVITE {
		res.AppendHeader(sip.NewHeader("Contact", "<"+u.URI()+">"))
	}
	res.AppendHeader(sip.NewHeader("Server", "kemigo-siptest-uas"))
	return []byte(res.String())
}

func topBranch(req *sip.Request) string {
	if v := req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		return b
	}
	return ""
}

func phrase(code int) string {
	switch code {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 500:
		return "Server Internal Error"
	case 603:
		return "Decline"
	}
	return "Reply"
}
