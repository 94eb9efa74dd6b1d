package rtpproxy

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// fakeProxy is an rtpproxy on 127.0.0.1 speaking the control protocol.
type fakeProxy struct {
	conn   net.PacketConn
	mu     sync.Mutex
	cmds   []string
	silent bool                // never answer
	answer func(string) string // reply to a session command
	caps   map[string]string   // VF answers
}

func newFake(t *testing.T, setup ...func(*fakeProxy)) *fakeProxy {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProxy{conn: conn, caps: map[string]string{reqCProtoVer: "1", repCProtoVer: "1", ptlCProtoVer: "1"}}
	f.answer = func(cmd string) string {
		switch cmd[0] {
		case 'U':
			return "35000 203.0.113.1"
		case 'L':
			return "35002 203.0.113.1"
		}
		return "0"
	}
	for _, fn := range setup {
		fn(f)
	}
	t.Cleanup(func() { conn.Close() })
	go f.serve()
	return f
}

func (f *fakeProxy) sock() string { return "udp:" + f.conn.LocalAddr().String() }

func (f *fakeProxy) serve() {
	buf := make([]byte, 4096)
	for {
		n, addr, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		cookie, cmd, _ := strings.Cut(string(buf[:n]), " ")
		f.mu.Lock()
		f.cmds = append(f.cmds, cmd)
		silent, answer := f.silent, f.answer
		f.mu.Unlock()
		if silent {
			continue
		}
		f.conn.WriteTo([]byte(cookie+" "+f.reply(cmd, answer)+"\n"), addr)
	}
}

func (f *fakeProxy) reply(cmd string, answer func(string) string) string {
	switch {
	case cmd == "V":
		return supCProtoVer
	case strings.HasPrefix(cmd, "VF "):
		if r, ok := f.caps[cmd[3:]]; ok {
			return r
		}
		return "0"
	}
	return answer(cmd)
}

// commands returns the commands received, without the version tests.
func (f *fakeProxy) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.cmds {
		if c != "V" && !strings.HasPrefix(c, "VF ") {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeProxy) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

const offerSDP = "v=0\n" +
	"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\n" +
	"s=-\n" +
	"c=IN IP4 192.0.2.10\n" +
	"t=0 0\n" +
	"m=audio 49170 RTP/AVP 0 8 101\n" +
	"a=rtpmap:101 telephone-event/8000\n" +
	"a=rtcp:49171\n"

const answerSDP = "v=0\n" +
	"o=bob 1 1 IN IP4 198.51.100.20\n" +
	"s=-\n" +
	"t=0 0\n" +
	"m=audio 5004 RTP/AVP 0\n" +
	"c=IN IP4 198.51.100.20\n"

func sipRequest(method, toTag, sdp string) *sipmsg.Msg {
	to := "To: <sip:bob@example.com>\n"
	if toTag != "" {
		to = "To: <sip:bob@example.com>;tag=" + toTag + "\n"
	}
	body := crlf(sdp)
	ct := ""
	if sdp != "" {
		ct = "Content-Type: application/sdp\n"
	}
	raw := crlf(method+" sip:bob@example.com SIP/2.0\n"+
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-v1\n"+
		"From: <sip:alice@example.com>;tag=a1\n"+
		to+
		"Call-ID: c1@192.0.2.10\n"+
		"CSeq: 1 "+method+"\n"+
		ct) + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		panic(err)
	}
	m.SrcIP, m.SrcPort, m.DstIP, m.DstPort, m.Proto = "192.0.2.10", 5060, "192.0.2.1", 5060, "udp"
	return m
}

func sipReply(code int, reason, method, sdp string) *sipmsg.Msg {
	body := crlf(sdp)
	ct := ""
	if sdp != "" {
		ct = "Content-Type: application/sdp\n"
	}
	raw := crlf("SIP/2.0 "+itoa(code)+" "+reason+"\n"+
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-p1\n"+
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-v1\n"+
		"From: <sip:alice@example.com>;tag=a1\n"+
		"To: <sip:bob@example.com>;tag=b2\n"+
		"Call-ID: c1@192.0.2.10\n"+
		"CSeq: 1 "+method+"\n"+
		ct) + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		panic(err)
	}
	m.SrcIP, m.SrcPort, m.DstIP, m.DstPort, m.Proto = "198.51.100.20", 5060, "192.0.2.1", 5060, "udp"
	return m
}

func itoa(n int) string { return strconv.Itoa(n) }

type env struct {
	m   *Module
	log *bytes.Buffer
	tx  *sipmsg.Msg // the transaction's request for replies
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{log: &bytes.Buffer{}}
	m, err := New(cfg, WithTimeout(80*time.Millisecond),
		WithTxRequest(func(c *kemi.Ctx) *sipmsg.Msg { return e.tx }))
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

func (e *env) ctx(msg *sipmsg.Msg, route kemi.RouteType) *kemi.Ctx {
	return &kemi.Ctx{Msg: msg, Route: route, Worker: kemi.NewWorkerState(0), BranchIdx: -1,
		Log: zerolog.New(e.log).Level(zerolog.TraceLevel)}
}

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...any) int {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name != name {
			continue
		}
		if len(args) != len(e.Params) {
			t.Fatalf("%s: %d args, want %d", name, len(args), len(e.Params))
		}
		vs := make([]val.Value, len(args))
		for i, a := range args {
			switch x := a.(type) {
			case int:
				vs[i] = val.OfInt(int64(x))
			case string:
				vs[i] = val.OfStr(x)
			}
		}
		return int(e.Fn(c, vs).I)
	}
	t.Fatalf("no export %s", name)
	return 0
}

func body(m *sipmsg.Msg) string { return string(m.SIP().Body()) }

func checkLength(t *testing.T, m *sipmsg.Msg) {
	t.Helper()
	cl := m.SIP().ContentLength()
	if cl == nil || int(*cl) != len(m.SIP().Body()) {
		t.Fatalf("Content-Length %v, body %d bytes", cl, len(m.SIP().Body()))
	}
	// the message as sent parses back with the new body
	back, err := sipmsg.Parse([]byte(m.SIP().String()))
	if err != nil || string(back.SIP().Body()) != string(m.SIP().Body()) {
		t.Fatalf("re-parse: %v", err)
	}
}

func TestOfferAnswer(t *testing.T) {
	f := newFake(t)
	cfg := DefaultConfig()
	cfg.RtpproxySock = StringList{f.sock()}
	e := newEnv(t, cfg)

	inv := sipRequest("INVITE", "", offerSDP)
	if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpproxy_offer", "co"); r != 1 {
		t.Fatalf("offer = %d, log %s", r, e.log)
	}
	want := crlf("v=0\n" +
		"o=alice 2890844526 2890844526 IN IP4 203.0.113.1\n" +
		"s=-\n" +
		"c=IN IP4 203.0.113.1\n" +
		"t=0 0\n" +
		"m=audio 35000 RTP/AVP 0 8 101\n" +
		"a=rtpmap:101 telephone-event/8000\n" +
		"a=rtcp:35001\n" +
		"a=nortpproxy:yes\n")
	if got := body(inv); got != want {
		t.Fatalf("offer SDP:\n%s\nwant\n%s", got, want)
	}
	checkLength(t, inv)
	if got, want := f.all(), []string{"V", "VF " + reqCProtoVer, "VF " + repCProtoVer, "VF " + ptlCProtoVer,
		"Uc0,8,101 c1@192.0.2.10 192.0.2.10 49170 a1;1"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("commands %q, want %q", got, want)
	}

	// the 200 OK: the session is looked up; no flags, so o= stays
	ok := sipReply(200, "OK", "INVITE", answerSDP)
	if r := call(t, e.m, e.ctx(ok, kemi.RouteTMReply), "rtpproxy_answer0"); r != 1 {
		t.Fatalf("answer = %d, log %s", r, e.log)
	}
	want = crlf("v=0\n" +
		"o=bob 1 1 IN IP4 198.51.100.20\n" +
		"s=-\n" +
		"t=0 0\n" +
		"m=audio 35002 RTP/AVP 0\n" +
		"c=IN IP4 203.0.113.1\n" +
		"a=nortpproxy:yes\n")
	if got := body(ok); got != want {
		t.Fatalf("answer SDP:\n%s\nwant\n%s", got, want)
	}
	checkLength(t, ok)
	cmds := f.commands()
	if got := cmds[len(cmds)-1]; got != "Lc0 c1@192.0.2.10 198.51.100.20 5004 a1;1 b2;1" {
		t.Fatalf("answer command %q", got)
	}

	// proxied already: -2, unless f
	inv2 := sipRequest("INVITE", "", body(inv))
	if r := call(t, e.m, e.ctx(inv2, kemi.RouteRequest), "rtpproxy_offer0"); r != -2 {
		t.Fatalf("offer of a proxied SDP = %d", r)
	}
	if r := call(t, e.m, e.ctx(inv2, kemi.RouteRequest), "rtpproxy_offer", "f"); r != 1 {
		t.Fatalf("offer f = %d", r)
	}
	if strings.Count(body(inv2), "a=nortpproxy:yes") != 1 {
		t.Fatalf("marker doubled: %s", body(inv2))
	}

	// answer on a request other than ACK
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_answer0"); r != -1 {
		t.Fatalf("answer on INVITE = %d", r)
	}
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_offer", "q"); r != -1 {
		t.Fatalf("unknown flag = %d", r)
	}
}

func TestOfferFlagsAndAddresses(t *testing.T) {
	tests := []struct {
		name, flags, sdp, reply string
		ip                      string // rtpproxy_offer_ip
		cmd, want               string
	}{
		{name: "media c= only, session c= kept without c",
			sdp:  "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.11\n",
			cmd:  "Uc0 c1@192.0.2.10 192.0.2.10 4000 a1;1",
			want: "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 35000 RTP/AVP 0\nc=IN IP4 203.0.113.1\na=nortpproxy:yes\n"},
		{name: "flag c also rewrites the session c=", flags: "c",
			sdp:  "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.11\n",
			cmd:  "Uc0 c1@192.0.2.10 192.0.2.10 4000 a1;1",
			want: "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\nm=audio 35000 RTP/AVP 0\nc=IN IP4 203.0.113.1\na=nortpproxy:yes\n"},
		{name: "trust the SDP address (r), repacketize, symmetric, two streams", flags: "rwz20",
			sdp:   "v=0\no=a 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\nm=audio 4000 RTP/AVP 0\nm=video 4002 RTP/AVP 96\n",
			reply: "35000",
			cmd:   "USZ20c0 c1@192.0.2.10 10.0.0.5 4000 a1;1|USZ20c96 c1@192.0.2.10 10.0.0.5 4002 a1;2",
			want:  "v=0\no=a 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 35000 RTP/AVP 0\nm=video 35000 RTP/AVP 96\na=nortpproxy:yes\n"},
		{name: "hold address stays null, port 0 stays", flags: "",
			sdp:  "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 0 RTP/AVP 0\n",
			cmd:  "Uc0 c1@192.0.2.10 192.0.2.10 0 a1;1",
			want: "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 0 RTP/AVP 0\na=nortpproxy:yes\n"},
		{name: "IPv6 reply changes the family", flags: "o",
			sdp:   "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 4000 RTP/AVP 0\n",
			reply: "35000 2001:db8::1 6",
			cmd:   "Uc0 c1@192.0.2.10 192.0.2.10 4000 a1;1",
			want:  "v=0\no=a 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\nm=audio 35000 RTP/AVP 0\na=nortpproxy:yes\n"},
		{name: "IPv6 SDP", flags: "ie",
			sdp:   "v=0\no=a 1 1 IN IP6 2001:db8::10\ns=-\nc=IN IP6 2001:db8::10\nt=0 0\nm=audio 4000 RTP/SAVP 0\n",
			reply: "35000 2001:db8::1 6",
			cmd:   "UIE6c0 c1@192.0.2.10 192.0.2.10 4000 a1;1",
			want:  "v=0\no=a 1 1 IN IP6 2001:db8::10\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\nm=audio 35000 RTP/SAVP 0\na=nortpproxy:yes\n"},
		{name: "forced ip", ip: "198.51.100.99",
			sdp:  "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 4000 RTP/AVP 0\n",
			cmd:  "Uc0 c1@192.0.2.10 192.0.2.10 4000 a1;1",
			want: "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 198.51.100.99\nt=0 0\nm=audio 35000 RTP/AVP 0\na=nortpproxy:yes\n"},
		{name: "via branch in the call-id", flags: "1",
			sdp:  "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 4000 RTP/AVP 0\n",
			cmd:  "Uc0 c1@192.0.2.10;z9hG4bK-v1 192.0.2.10 4000 a1;1",
			want: "v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\nm=audio 35000 RTP/AVP 0\na=nortpproxy:yes\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(f *fakeProxy) {
				if tc.reply != "" {
					f.answer = func(string) string { return tc.reply }
				}
			})
			cfg := DefaultConfig()
			cfg.RtpproxySock = StringList{f.sock()}
			e := newEnv(t, cfg)
			inv := sipRequest("INVITE", "", tc.sdp)
			c := e.ctx(inv, kemi.RouteRequest)
			var r int
			if tc.ip != "" {
				r = call(t, e.m, c, "rtpproxy_offer_ip", tc.flags, tc.ip)
			} else {
				r = call(t, e.m, c, "rtpproxy_offer", tc.flags)
			}
			if r != 1 {
				t.Fatalf("offer = %d, log %s", r, e.log)
			}
			if got := strings.Join(f.commands(), "|"); got != tc.cmd {
				t.Errorf("commands %q, want %q", got, tc.cmd)
			}
			if got := body(inv); got != crlf(tc.want) {
				t.Errorf("SDP:\n%s\nwant\n%s", got, crlf(tc.want))
			}
			checkLength(t, inv)
		})
	}
}

func TestManage(t *testing.T) {
	f := newFake(t)
	cfg := DefaultConfig()
	cfg.RtpproxySock = StringList{f.sock()}
	cfg.RtpInstPvar = "$var(rtpp)"
	e := newEnv(t, cfg)
	last := func() string {
		cmds := f.commands()
		if len(cmds) == 0 {
			return ""
		}
		return cmds[len(cmds)-1]
	}
	n := func() int { return len(f.commands()) }

	// early offer: INVITE with SDP, answer in the 200 OK
	inv := sipRequest("INVITE", "", offerSDP)
	e.tx = inv
	c := e.ctx(inv, kemi.RouteRequest)
	if r := call(t, e.m, c, "rtpproxy_manage", "co"); r != 1 || !strings.HasPrefix(last(), "U") {
		t.Fatalf("manage INVITE = %d, %q", r, last())
	}
	if v := c.Worker.Vars["rtpp"]; v.S != f.sock() {
		t.Errorf("rtp_inst_pvar = %v", v)
	}
	ok := sipReply(200, "OK", "INVITE", answerSDP)
	if r := call(t, e.m, e.ctx(ok, kemi.RouteTMReply), "rtpproxy_manage0"); r != 1 || last() != "Lc0 c1@192.0.2.10 198.51.100.20 5004 a1;1 b2;1" {
		t.Fatalf("manage 200 = %d, %q", r, last())
	}
	// late offer: INVITE without SDP, offer in the 200 OK, answer in the ACK
	late := sipRequest("INVITE", "", "")
	e.tx = late
	before := n()
	if r := call(t, e.m, e.ctx(late, kemi.RouteRequest), "rtpproxy_manage0"); r != -1 || n() != before {
		t.Fatalf("manage INVITE without SDP = %d", r)
	}
	ok = sipReply(200, "OK", "INVITE", answerSDP)
	if r := call(t, e.m, e.ctx(ok, kemi.RouteTMReply), "rtpproxy_manage0"); r != 1 || last() != "Uc0 c1@192.0.2.10 198.51.100.20 5004 b2;1 a1;1" {
		t.Fatalf("manage late 200 = %d, %q", r, last())
	}
	ack := sipRequest("ACK", "b2", offerSDP)
	if r := call(t, e.m, e.ctx(ack, kemi.RouteRequest), "rtpproxy_manage0"); r != 1 || last() != "Lc0,8,101 c1@192.0.2.10 192.0.2.10 49170 b2;1 a1;1" {
		t.Fatalf("manage ACK = %d, %q", r, last())
	}
	// without a transaction a reply is an answer
	e.tx = nil
	ok = sipReply(183, "Session Progress", "INVITE", answerSDP)
	if r := call(t, e.m, e.ctx(ok, kemi.RouteReply), "rtpproxy_manage0"); r != 1 || !strings.HasPrefix(last(), "L") {
		t.Fatalf("manage 183 = %d, %q", r, last())
	}
	// deletes
	for _, tc := range []struct {
		name  string
		msg   *sipmsg.Msg
		route kemi.RouteType
		flags string
		want  string
	}{
		{"BYE", sipRequest("BYE", "b2", ""), kemi.RouteRequest, "", "D c1@192.0.2.10 a1 b2"},
		{"CANCEL", sipRequest("CANCEL", "", ""), kemi.RouteRequest, "co", "D c1@192.0.2.10 a1"},
		{"failure route", sipRequest("INVITE", "", offerSDP), kemi.RouteFailure, "", "D c1@192.0.2.10 a1"},
		{"486", sipReply(486, "Busy Here", "INVITE", ""), kemi.RouteTMReply, "t", "D c1@192.0.2.10 a1"},
	} {
		if r := call(t, e.m, e.ctx(tc.msg, tc.route), "rtpproxy_manage", tc.flags); r != 1 || last() != tc.want {
			t.Errorf("%s: manage = %d, %q, want %q", tc.name, r, last(), tc.want)
		}
	}
	before = n()
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteBranchFailure), "rtpproxy_manage0"); r != 1 || n() != before {
		t.Errorf("branch failure route = %d", r)
	}
	if r := call(t, e.m, e.ctx(sipRequest("OPTIONS", "", ""), kemi.RouteRequest), "rtpproxy_manage0"); r != -1 {
		t.Errorf("OPTIONS = %d", r)
	}
	if r := call(t, e.m, e.ctx(sipRequest("BYE", "b2", ""), kemi.RouteRequest), "rtpproxy_destroy", "1"); r != 1 || last() != "D c1@192.0.2.10;z9hG4bK-v1 a1 b2" {
		t.Errorf("destroy 1 = %d %q", r, last())
	}
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_manage_ip", "", "198.51.100.7"); r != 1 {
		t.Errorf("manage_ip = %d", r)
	}
}

func TestRecordingAndStreams(t *testing.T) {
	f := newFake(t)
	cfg := DefaultConfig()
	cfg.RtpproxySock = StringList{f.sock()}
	e := newEnv(t, cfg)
	c := e.ctx(sipRequest("INVITE", "b2", offerSDP), kemi.RouteRequest)
	for _, tc := range []struct {
		fn   string
		args []any
		want string
	}{
		{"start_recording", nil, "R c1@192.0.2.10 a1 b2"},
		{"rtpproxy_stream2uac", []any{"/tmp/hold.wav", -1}, "P-1 c1@192.0.2.10 /tmp/hold.wav session a1;1 b2;1"},
		{"rtpproxy_stream2uas", []any{"x", 2}, "P2 c1@192.0.2.10 x session b2;1 a1;1"},
		{"rtpproxy_stop_stream2uac", nil, "S c1@192.0.2.10 a1;1 b2;1"},
		{"rtpproxy_stop_stream2uas", nil, "S c1@192.0.2.10 b2;1 a1;1"},
	} {
		if r := call(t, e.m, c, tc.fn, tc.args...); r != 1 {
			t.Errorf("%s = %d", tc.fn, r)
		}
		cmds := f.commands()
		if got := cmds[len(cmds)-1]; got != tc.want {
			t.Errorf("%s sent %q, want %q", tc.fn, got, tc.want)
		}
	}
	// an rtpproxy without payload type lists cannot stream
	f2 := newFake(t, func(f *fakeProxy) { f.caps[ptlCProtoVer] = "0" })
	cfg.RtpproxySock = StringList{f2.sock()}
	e2 := newEnv(t, cfg)
	if r := call(t, e2.m, e2.ctx(sipRequest("INVITE", "b2", ""), kemi.RouteRequest), "rtpproxy_stream2uac", "x", 1); r != -1 {
		t.Errorf("stream without ptl = %d", r)
	}
	// and gets no "c" payload list
	inv := sipRequest("INVITE", "", offerSDP)
	if r := call(t, e2.m, e2.ctx(inv, kemi.RouteRequest), "rtpproxy_offer0"); r != 1 {
		t.Fatal(r)
	}
	if got := f2.commands(); len(got) != 1 || got[0] != "U c1@192.0.2.10 192.0.2.10 49170 a1;1" {
		t.Errorf("commands %q", got)
	}
}

func TestUnconfiguredAndNotResponding(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	for _, fn := range []string{"rtpproxy_offer0", "rtpproxy_manage0", "rtpproxy_destroy0", "start_recording"} {
		e.log.Reset()
		inv := sipRequest("INVITE", "", offerSDP)
		if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), fn); r != -1 {
			t.Errorf("%s unconfigured = %d", fn, r)
		}
		if !strings.Contains(e.log.String(), `"level":"error"`) || !strings.Contains(e.log.String(), "no rtpproxy configured") {
			t.Errorf("%s: no error logged: %s", fn, e.log)
		}
		if body(inv) != crlf(offerSDP) {
			t.Errorf("%s changed the body", fn)
		}
	}

	// a proxy that never answers
	f := newFake(t, func(f *fakeProxy) { f.silent = true })
	cfg := DefaultConfig()
	cfg.RtpproxySock = StringList{f.sock()}
	cfg.RtpproxyRetr = 2
	e = newEnv(t, cfg)
	inv := sipRequest("INVITE", "", offerSDP)
	start := time.Now()
	if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpproxy_offer0"); r != -1 {
		t.Fatalf("silent proxy: %d", r)
	}
	if !strings.Contains(e.log.String(), "no available proxies") {
		t.Errorf("log: %s", e.log)
	}
	if got := f.all(); len(got) != 2 || got[0] != "V" {
		t.Errorf("sent %q, want two tries of V", got)
	}
	// disabled now: the next call does not wait
	start = time.Now()
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_offer0"); r != -1 || time.Since(start) > 50*time.Millisecond {
		t.Errorf("disabled proxy: %d after %v", r, time.Since(start))
	}

	// a proxy that stops answering after its test
	f2 := newFake(t)
	cfg.RtpproxySock = StringList{f2.sock()}
	e = newEnv(t, cfg)
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_offer0"); r != 1 {
		t.Fatalf("offer = %d", r)
	}
	f2.mu.Lock()
	f2.silent = true
	f2.mu.Unlock()
	e.log.Reset()
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_offer0"); r != -1 {
		t.Fatalf("offer to a dead proxy = %d", r)
	}
	if !strings.Contains(e.log.String(), "does not respond, disable it") {
		t.Errorf("log: %s", e.log)
	}

	// nothing listening (ICMP port unreachable)
	pc, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	addr := pc.LocalAddr().String()
	pc.Close()
	cfg.RtpproxySock = StringList{"udp:" + addr}
	e = newEnv(t, cfg)
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_offer0"); r != -1 {
		t.Fatalf("closed port: %d", r)
	}

	// a proxy with the wrong protocol version is not used
	f3 := newFake(t, func(f *fakeProxy) { f.caps[reqCProtoVer] = "0" })
	cfg.RtpproxySock = StringList{f3.sock()}
	e = newEnv(t, cfg)
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpproxy_offer0"); r != -1 || len(f3.commands()) != 0 {
		t.Fatalf("unsupported proxy: %d %q", r, f3.commands())
	}
}

func TestSetsAndFailover(t *testing.T) {
	live, dead := newFake(t), newFake(t, func(f *fakeProxy) { f.silent = true })
	other := newFake(t)
	cfg := DefaultConfig()
	cfg.RtpproxyRetr = 1
	cfg.RtpproxySock = StringList{dead.sock() + "=1 " + live.sock() + "=1", "1 == " + other.sock()}
	e := newEnv(t, cfg)
	for i := 0; i < 6; i++ {
		inv := sipRequest("INVITE", "", offerSDP)
		*inv.Req.CallID() = sip.CallIDHeader("call-" + itoa(i))
		c := e.ctx(inv, kemi.RouteRequest)
		if r := call(t, e.m, c, "rtpproxy_offer0"); r != 1 {
			t.Fatalf("offer %d = %d, log %s", i, r, e.log)
		}
	}
	if len(live.commands()) != 6 || len(other.commands()) != 0 {
		t.Fatalf("live %d, other %d", len(live.commands()), len(other.commands()))
	}
	inv := sipRequest("INVITE", "", offerSDP)
	c := e.ctx(inv, kemi.RouteRequest)
	if r := call(t, e.m, c, "set_rtpproxy_set", 1); r != 1 {
		t.Fatal(r)
	}
	if r := call(t, e.m, c, "rtpproxy_offer0"); r != 1 || len(other.commands()) != 1 {
		t.Fatalf("set 1: %d %q", r, other.commands())
	}
	if r := call(t, e.m, c, "set_rtpproxy_set", 7); r != -1 {
		t.Fatalf("unknown set = %d", r)
	}
	for _, bad := range []string{"x == udp:1.2.3.4:5", "1 == ", "udp:1.2.3.4:99999", "udp:1.2.3.4:7=x"} {
		if _, err := New(Config{RtpproxySock: StringList{bad}}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	m, err := New(Config{RtpproxySock: StringList{"udp:127.0.0.1", "2 == unix:/run/rtpp.sock=3 udp6:[::1]:7722"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := m.sets[0].nodes[0]; n.addr != "127.0.0.1:22222" || n.mode != "udp" {
		t.Errorf("default port: %+v", n)
	}
	if n := m.sets[2].nodes; len(n) != 2 || n[0].mode != "unix" || n[0].weight != 3 || n[1].addr != "[::1]:7722" || n[1].mode != "udp6" {
		t.Errorf("set 2: %+v %+v", n[0], n[1])
	}
}

func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "rtpp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			n, _ := conn.Read(buf)
			cmd := string(buf[:n])
			mu.Lock()
			got = append(got, cmd)
			mu.Unlock()
			f := &fakeProxy{caps: map[string]string{reqCProtoVer: "1"}}
			conn.Write([]byte(f.reply(cmd, func(string) string { return "40000 192.0.2.200" }) + "\n"))
			conn.Close()
		}
	}()
	cfg := DefaultConfig()
	cfg.RtpproxySock = StringList{"unix:" + path}
	e := newEnv(t, cfg)
	inv := sipRequest("INVITE", "", offerSDP)
	if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpproxy_offer0"); r != 1 {
		t.Fatalf("offer = %d, log %s", r, e.log)
	}
	mu.Lock()
	defer mu.Unlock()
	if last := got[len(got)-1]; last != "U c1@192.0.2.10 192.0.2.10 49170 a1;1" {
		t.Errorf("unix command %q (%q)", last, got)
	}
	if !strings.Contains(body(inv), "c=IN IP4 192.0.2.200") || !strings.Contains(body(inv), "m=audio 40000 ") {
		t.Errorf("body %s", body(inv))
	}
}

func TestStringListTOML(t *testing.T) {
	var l StringList
	if err := l.UnmarshalTOML("udp:1.2.3.4:5"); err != nil || len(l) != 1 {
		t.Fatal(l, err)
	}
	if err := l.UnmarshalTOML([]any{"a", "b"}); err != nil || len(l) != 2 {
		t.Fatal(l, err)
	}
	if err := l.UnmarshalTOML(3); err == nil {
		t.Fatal("int accepted")
	}
	if err := l.UnmarshalTOML([]any{3}); err == nil {
		t.Fatal("int element accepted")
	}
}

func TestExportsMatchCatalog(t *testing.T) {
	m, _ := New(DefaultConfig())
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skipf("catalog not available: %v", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= 4 && cols[0] == "rtpproxy" {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range m.Exports() {
		if e.Module != "rtpproxy" {
			t.Errorf("%s under %q", e.Name, e.Module)
		}
		var ps []string
		for _, p := range e.Params {
			ps = append(ps, p.String())
		}
		if len(ps) == 0 {
			ps = []string{"none"}
		}
		got[e.Name] = strings.Join(ps, ",") + " -> " + e.Ret.String()
	}
	for n, s := range want {
		if got[n] != s {
			t.Errorf("rtpproxy.%s: got %q, catalog %q", n, got[n], s)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("rtpproxy.%s not in catalog", n)
		}
	}
	kemi.NewTable().Register(m.Exports()...)
}
