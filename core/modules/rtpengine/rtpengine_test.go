package rtpengine

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// fakeEngine is an rtpengine on 127.0.0.1 speaking the NG protocol.
type fakeEngine struct {
	conn   net.PacketConn
	mu     sync.Mutex
	raw    []string // commands as received (after the cookie)
	cmds   []*Dict
	silent bool
	// reply builds the answer to a command other than ping
	reply func(cmd *Dict) *Dict
}

func newEngine(t *testing.T, setup ...func(*fakeEngine)) *fakeEngine {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{conn: conn}
	f.reply = func(cmd *Dict) *Dict {
		r := NewDict()
		r.Set("result", "ok")
		name, _ := cmd.Str("command")
		switch name {
		case "offer", "answer":
			sdp, _ := cmd.Str("sdp")
			r.Set("sdp", rewrite(sdp, name))
		case "query":
			tot := NewDict()
			rtp := NewDict()
			rtp.Set("bytes", int64(1000))
			rtp.Set("packets", int64(10))
			tot.Set("RTP", rtp)
			r.Set("totals", tot)
			r.Set("tags", []any{"a1", "b2"})
		}
		return r
	}
	for _, fn := range setup {
		fn(f)
	}
	t.Cleanup(func() { conn.Close() })
	go f.serve()
	return f
}

// rewrite is what the fake does to an SDP: its own address and port.
func rewrite(sdp, cmd string) string {
	port := "30000"
	if cmd == "answer" {
		port = "30002"
	}
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		switch {
		case strings.HasPrefix(l, "c="):
			l = "c=IN IP4 203.0.113.5"
		case strings.HasPrefix(l, "m="):
			f := strings.Fields(l)
			f[1] = port
			l = strings.Join(f, " ")
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n")
}

func (f *fakeEngine) sock() string { return "udp:" + f.conn.LocalAddr().String() }

func (f *fakeEngine) serve() {
	buf := make([]byte, 65536)
	for {
		n, addr, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		cookie, payload, _ := strings.Cut(string(buf[:n]), " ")
		cmd, err := DecodeDict([]byte(payload))
		if err != nil {
			continue
		}
		f.mu.Lock()
		silent := f.silent
		name, _ := cmd.Str("command")
		if name != "ping" {
			f.raw = append(f.raw, payload)
			f.cmds = append(f.cmds, cmd)
		}
		f.mu.Unlock()
		if silent {
			continue
		}
		var r *Dict
		if name == "ping" {
			r = NewDict()
			r.Set("result", "pong")
		} else {
			r = f.reply(cmd)
		}
		out, _ := Encode(r)
		f.conn.WriteTo(append([]byte(cookie+" "), out...), addr)
	}
}

func (f *fakeEngine) last() *Dict {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cmds) == 0 {
		return nil
	}
	return f.cmds[len(f.cmds)-1]
}

func (f *fakeEngine) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cmds)
}

func (f *fakeEngine) lastRaw() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raw[len(f.raw)-1]
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

const offerSDP = "v=0\n" +
	"o=alice 1 1 IN IP4 192.0.2.10\n" +
	"s=-\n" +
	"c=IN IP4 192.0.2.10\n" +
	"t=0 0\n" +
	"m=audio 49170 RTP/AVP 0 8\n"

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
		ct) + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
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
	raw := crlf("SIP/2.0 "+strconv.Itoa(code)+" "+reason+"\n"+
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-p1\n"+
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-v1\n"+
		"From: <sip:alice@example.com>;tag=a1\n"+
		"To: <sip:bob@example.com>;tag=b2\n"+
		"Call-ID: c1@192.0.2.10\n"+
		"CSeq: 1 "+method+"\n"+
		ct) + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		panic(err)
	}
	m.SrcIP, m.SrcPort, m.DstIP, m.DstPort, m.Proto = "198.51.100.20", 5060, "192.0.2.1", 5060, "udp"
	return m
}

type env struct {
	m   *Module
	log *bytes.Buffer
	tx  *sipmsg.Msg
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{log: &bytes.Buffer{}}
	m, err := New(cfg, WithTimeout(80*time.Millisecond),
		WithTxRequest(func(*kemi.Ctx) *sipmsg.Msg { return e.tx }))
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

func cfgFor(socks ...string) Config {
	cfg := DefaultConfig()
	cfg.RtpengineSock = StringList(socks)
	cfg.RtpengineRetr = 2
	return cfg
}

func body(m *sipmsg.Msg) string { return string(m.SIP().Body()) }

func checkLength(t *testing.T, m *sipmsg.Msg) {
	t.Helper()
	cl := m.SIP().ContentLength()
	if cl == nil || int(*cl) != len(m.SIP().Body()) {
		t.Fatalf("Content-Length %v, body %d bytes", cl, len(m.SIP().Body()))
	}
	back, err := sipmsg.Parse([]byte(m.SIP().String()))
	if err != nil || string(back.SIP().Body()) != string(m.SIP().Body()) {
		t.Fatalf("re-parse: %v", err)
	}
}

func benc(s string) string { return strconv.Itoa(len(s)) + ":" + s }

func TestOfferWireFormat(t *testing.T) {
	f := newEngine(t)
	e := newEnv(t, cfgFor(f.sock()))
	inv := sipRequest("INVITE", "", offerSDP)
	flags := "trust-address replace-origin replace-session-connection ICE=remove RTP/SAVP codec-strip-PCMA " +
		"transcode-G722 direction=internal direction=external via-branch=1 repacketize=20 SDES-off rtcp-mux-demux TOS=184"
	if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpengine_offer", flags); r != 1 {
		t.Fatalf("offer = %d, log %s", r, e.log)
	}
	sdp := crlf(offerSDP)
	want := "d" +
		benc("supports") + "l" + benc("load limit") + "e" +
		benc("sdp") + benc(sdp) +
		benc("ICE") + benc("remove") +
		benc("repacketize") + "i20e" +
		benc("TOS") + "i184e" +
		benc("direction") + "l" + benc("internal") + benc("external") + "e" +
		benc("flags") + "l" + benc("trust-address") + "e" +
		benc("replace") + "l" + benc("origin") + benc("session-connection") + "e" +
		benc("codec") + "d" + benc("strip") + "l" + benc("PCMA") + "e" + benc("transcode") + "l" + benc("G722") + "ee" +
		benc("transport-protocol") + benc("RTP/SAVP") +
		benc("rtcp-mux") + "l" + benc("demux") + "e" +
		benc("SDES") + "l" + benc("off") + "e" +
		benc("call-id") + benc("c1@192.0.2.10") +
		benc("via-branch") + benc("z9hG4bK-v1") +
		benc("received-from") + "l" + benc("IP4") + benc("192.0.2.10") + "e" +
		benc("from-tag") + benc("a1") +
		benc("command") + benc("offer") +
		"e"
	if got := f.lastRaw(); got != want {
		t.Fatalf("wire:\n got %q\nwant %q", got, want)
	}
	wantSDP := crlf("v=0\no=alice 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\nm=audio 30000 RTP/AVP 0 8\n")
	if body(inv) != wantSDP {
		t.Fatalf("SDP %q, want %q", body(inv), wantSDP)
	}
	checkLength(t, inv)
}

func TestManage(t *testing.T) {
	f := newEngine(t)
	cfg := cfgFor(f.sock())
	cfg.RtpInstPvar = "$var(rtpe)"
	e := newEnv(t, cfg)
	type want struct {
		command, from, to string
		sdp               bool
	}
	check := func(name string, r int, w want) {
		t.Helper()
		if r != 1 {
			t.Fatalf("%s = %d, log %s", name, r, e.log)
		}
		d := f.last()
		cmd, _ := d.Str("command")
		from, _ := d.Str("from-tag")
		to, hasTo := d.Str("to-tag")
		_, hasSDP := d.Str("sdp")
		if cmd != w.command || from != w.from || to != w.to || (w.to == "" && hasTo) || hasSDP != w.sdp {
			t.Fatalf("%s sent command=%q from=%q to=%q sdp=%v, want %+v", name, cmd, from, to, hasSDP, w)
		}
	}
	// early offer
	inv := sipRequest("INVITE", "", offerSDP)
	e.tx = inv
	c := e.ctx(inv, kemi.RouteRequest)
	check("INVITE", call(t, e.m, c, "rtpengine_manage0"), want{"offer", "a1", "", true})
	if v := c.Worker.Vars["rtpe"]; v.S != f.sock() {
		t.Errorf("rtp_inst_pvar = %v", v)
	}
	ok := sipReply(200, "OK", "INVITE", offerSDP)
	check("200", call(t, e.m, e.ctx(ok, kemi.RouteTMReply), "rtpengine_manage", ""), want{"answer", "a1", "b2", true})
	if !strings.Contains(body(ok), "m=audio 30002 ") {
		t.Errorf("200 body %q", body(ok))
	}
	checkLength(t, ok)
	// late offer
	late := sipRequest("INVITE", "", "")
	e.tx = late
	n := f.count()
	if r := call(t, e.m, e.ctx(late, kemi.RouteRequest), "rtpengine_manage0"); r != -1 || f.count() != n {
		t.Fatalf("INVITE without SDP = %d", r)
	}
	ok = sipReply(200, "OK", "INVITE", offerSDP)
	check("late 200", call(t, e.m, e.ctx(ok, kemi.RouteTMReply), "rtpengine_manage0"), want{"offer", "b2", "a1", true})
	ack := sipRequest("ACK", "b2", offerSDP)
	check("ACK", call(t, e.m, e.ctx(ack, kemi.RouteRequest), "rtpengine_manage0"), want{"answer", "b2", "a1", true})
	// no transaction: a reply with SDP is an answer
	e.tx = nil
	check("183", call(t, e.m, e.ctx(sipReply(183, "Session Progress", "INVITE", offerSDP), kemi.RouteReply), "rtpengine_manage0"),
		want{"answer", "a1", "b2", true})
	// deletes: no to-tag unless asked
	check("BYE", call(t, e.m, e.ctx(sipRequest("BYE", "b2", ""), kemi.RouteRequest), "rtpengine_manage0"), want{"delete", "a1", "", false})
	check("BYE to-tag", call(t, e.m, e.ctx(sipRequest("BYE", "b2", ""), kemi.RouteRequest), "rtpengine_manage", "to-tag"), want{"delete", "a1", "b2", false})
	check("CANCEL", call(t, e.m, e.ctx(sipRequest("CANCEL", "", ""), kemi.RouteRequest), "rtpengine_manage0"), want{"delete", "a1", "", false})
	check("failure route", call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteFailure), "rtpengine_manage0"), want{"delete", "a1", "", false})
	check("486", call(t, e.m, e.ctx(sipReply(486, "Busy Here", "INVITE", ""), kemi.RouteTMReply), "rtpengine_manage0"), want{"delete", "a1", "", false})
	check("UPDATE", call(t, e.m, e.ctx(sipRequest("UPDATE", "b2", offerSDP), kemi.RouteRequest), "rtpengine_manage0"), want{"offer", "a1", "b2", true})
	n = f.count()
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteBranchFailure), "rtpengine_manage0"); r != 1 || f.count() != n {
		t.Errorf("branch failure = %d", r)
	}
	if r := call(t, e.m, e.ctx(sipRequest("OPTIONS", "", ""), kemi.RouteRequest), "rtpengine_manage0"); r != -1 {
		t.Errorf("OPTIONS = %d", r)
	}
}

func TestOtherCommands(t *testing.T) {
	f := newEngine(t)
	e := newEnv(t, cfgFor(f.sock()))
	c := e.ctx(sipRequest("INVITE", "b2", offerSDP), kemi.RouteRequest)
	for _, tc := range []struct {
		fn      string
		args    []any
		command string
		from    string // "" = none
		extra   string // a key that must be there
	}{
		{"start_recording", nil, "start recording", "a1", ""},
		{"stop_recording", nil, "stop recording", "a1", ""},
		{"block_dtmf0", nil, "block DTMF", "", ""},
		{"block_dtmf", []any{"directional"}, "block DTMF", "a1", ""},
		{"unblock_dtmf", []any{"from-tag=zz"}, "unblock DTMF", "zz", ""},
		{"block_media0", nil, "block media", "", ""},
		{"unblock_media0", nil, "unblock media", "", ""},
		{"silence_media0", nil, "silence media", "", ""},
		{"unsilence_media0", nil, "unsilence media", "", ""},
		{"play_media", []any{"file=/tmp/x.wav"}, "play media", "a1", "file"},
		{"stop_media0", nil, "stop media", "a1", ""},
		{"rtpengine_query0", nil, "query", "a1", ""},
		{"rtpengine_delete", []any{"delete-delay=0"}, "delete", "a1", "delete delay"},
		{"rtpengine_answer0", nil, "answer", "b2", "sdp"},                 // request + answer: tags swapped
		{"rtpengine_offer", []any{"force-answer"}, "answer", "b2", "sdp"}, // forced to answer
	} {
		if r := call(t, e.m, c, tc.fn, tc.args...); r != 1 {
			t.Errorf("%s = %d, log %s", tc.fn, r, e.log)
			continue
		}
		d := f.last()
		cmd, _ := d.Str("command")
		from, _ := d.Str("from-tag")
		if cmd != tc.command || from != tc.from {
			t.Errorf("%s sent command=%q from-tag=%q, want %q %q", tc.fn, cmd, from, tc.command, tc.from)
		}
		if tc.extra != "" {
			if _, ok := d.Get(tc.extra); !ok {
				t.Errorf("%s: no %q in %q", tc.fn, tc.extra, d.Keys())
			}
		}
	}
	if r := call(t, e.m, c, "rtpengine_answer", "force-answer"); r != -1 {
		t.Errorf("force-answer on answer = %d", r)
	}
	if r := call(t, e.m, c, "rtpengine_offer", "force-answer=1 call-id"); r != -1 {
		t.Errorf("call-id without value = %d", r)
	}
	if r := call(t, e.m, c, "rtpengine_delete", "force-answer"); r != -1 {
		t.Errorf("force-answer on delete = %d", r)
	}
	if r := call(t, e.m, c, "rtpengine_offer", "via-branch=next"); r != -1 {
		t.Errorf("via-branch=next = %d", r)
	}

	// query_v
	if r := call(t, e.m, c, "rtpengine_query_v", "j", "$var(q)"); r != 1 {
		t.Fatalf("query_v = %d, log %s", r, e.log)
	}
	if got := c.Worker.Vars["q"].S; got != `{"result":"ok","totals":{"RTP":{"bytes":1000,"packets":10}},"tags":["a1","b2"]}` {
		t.Errorf("query_v j: %s", got)
	}
	if r := call(t, e.m, c, "rtpengine_query_v", "jp", "$var(q)"); r != 1 {
		t.Fatal(r)
	}
	if got := c.Worker.Vars["q"].S; got != "{\n\t\"result\":\t\"ok\",\n\t\"totals\":\t{\n\t\t\"RTP\":\t{\n\t\t\t\"bytes\":\t1000,\n\t\t\t\"packets\":\t10\n\t\t}\n\t},\n\t\"tags\":\t[\"a1\", \"b2\"]\n}" {
		t.Errorf("query_v jp: %q", got)
	}
	if r := call(t, e.m, c, "rtpengine_query_v", "x", "$var(q)"); r != -1 {
		t.Errorf("bad format = %d", r)
	}
	if r := call(t, e.m, c, "rtpengine_query_v", "j", "$ru("); r != -1 {
		t.Errorf("bad pv = %d", r)
	}
}

func TestErrorsAndFailover(t *testing.T) {
	// an error reply
	bad := newEngine(t, func(f *fakeEngine) {
		f.reply = func(*Dict) *Dict {
			r := NewDict()
			r.Set("result", "error")
			r.Set("error-reason", "Unknown call-id")
			return r
		}
	})
	e := newEnv(t, cfgFor(bad.sock()))
	inv := sipRequest("INVITE", "", offerSDP)
	if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpengine_offer0"); r != -1 {
		t.Fatalf("error reply = %d", r)
	}
	if !strings.Contains(e.log.String(), "proxy replied with error: Unknown call-id") || body(inv) != crlf(offerSDP) {
		t.Errorf("log %s", e.log)
	}
	// a reply without sdp, and one that is not ok
	for _, res := range []func(*Dict) *Dict{
		func(*Dict) *Dict { d := NewDict(); d.Set("result", "ok"); return d },
		func(*Dict) *Dict { d := NewDict(); d.Set("result", "pong"); return d },
		func(*Dict) *Dict { d := NewDict(); d.Set("nothing", "x"); return d },
	} {
		f := newEngine(t, func(f *fakeEngine) { f.reply = res })
		e := newEnv(t, cfgFor(f.sock()))
		if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpengine_offer0"); r != -1 {
			t.Errorf("bad reply = %d", r)
		}
	}

	// load limit / session limit: the next instance gets it
	full := newEngine(t, func(f *fakeEngine) {
		f.reply = func(*Dict) *Dict {
			r := NewDict()
			r.Set("result", "error")
			r.Set("error-reason", sessLimitMsg)
			return r
		}
	})
	busy := newEngine(t, func(f *fakeEngine) {
		f.reply = func(*Dict) *Dict { r := NewDict(); r.Set("result", "load limit"); return r }
	})
	good := newEngine(t)
	dead := newEngine(t, func(f *fakeEngine) { f.silent = true })
	e = newEnv(t, cfgFor(full.sock()+" "+busy.sock()+" "+dead.sock()+" "+good.sock()))
	for i := 0; i < 5; i++ {
		inv := sipRequest("INVITE", "", offerSDP)
		if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpengine_offer0"); r != 1 {
			t.Fatalf("failover %d = %d, log %s", i, r, e.log)
		}
	}
	if good.count() != 5 {
		t.Errorf("good instance got %d commands", good.count())
	}

	// the call stays on its instance
	a, b := newEngine(t), newEngine(t)
	e = newEnv(t, cfgFor(a.sock()+" "+b.sock()))
	for i := 0; i < 4; i++ {
		m := sipRequest("INVITE", "", offerSDP)
		if r := call(t, e.m, e.ctx(m, kemi.RouteRequest), "rtpengine_offer0"); r != 1 {
			t.Fatal(r)
		}
	}
	if a.count() != 4 && b.count() != 4 {
		t.Errorf("call split over instances: %d / %d", a.count(), b.count())
	}
}

func TestUnconfiguredAndNotResponding(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	for _, fn := range []string{"rtpengine_offer0", "rtpengine_manage0", "rtpengine_delete0", "start_recording", "rtpengine_answer0"} {
		e.log.Reset()
		inv := sipRequest("INVITE", "b2", offerSDP)
		if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), fn); r != -1 {
			t.Errorf("%s unconfigured = %d", fn, r)
		}
		if !strings.Contains(e.log.String(), `"level":"error"`) || !strings.Contains(e.log.String(), "no rtpengine configured") {
			t.Errorf("%s log: %s", fn, e.log)
		}
		if body(inv) != crlf(offerSDP) {
			t.Errorf("%s changed the body", fn)
		}
	}
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "set_rtpengine_set", 0); r != -1 {
		t.Errorf("set_rtpengine_set unconfigured = %d", r)
	}

	f := newEngine(t, func(f *fakeEngine) { f.silent = true })
	cfg := cfgFor(f.sock())
	cfg.AggressiveRedetection = 0 // else every call pings the disabled instance again
	e = newEnv(t, cfg)
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpengine_offer0"); r != -1 {
		t.Fatalf("silent = %d", r)
	}
	if !strings.Contains(e.log.String(), "no available proxies") || !strings.Contains(e.log.String(), "did not respond to ping") {
		t.Errorf("log %s", e.log)
	}
	start := time.Now()
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpengine_offer0"); r != -1 || time.Since(start) > 50*time.Millisecond {
		t.Errorf("disabled instance: %d after %v", r, time.Since(start))
	}
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "set_rtpengine_set", 0); r != -2 {
		t.Errorf("set with no active instance = %d", r)
	}

	// an instance that stops answering after its ping
	g := newEngine(t)
	e = newEnv(t, cfgFor(g.sock()))
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpengine_offer0"); r != 1 {
		t.Fatal(r)
	}
	g.mu.Lock()
	g.silent = true
	g.mu.Unlock()
	e.log.Reset()
	if r := call(t, e.m, e.ctx(sipRequest("INVITE", "", offerSDP), kemi.RouteRequest), "rtpengine_offer0"); r != -1 {
		t.Fatalf("dead instance = %d", r)
	}
	if !strings.Contains(e.log.String(), "timeout waiting reply") {
		t.Errorf("log %s", e.log)
	}
}

func TestSetsAndSdpPvs(t *testing.T) {
	one, two := newEngine(t), newEngine(t, func(f *fakeEngine) {
		f.reply = func(cmd *Dict) *Dict {
			sdp, _ := cmd.Str("sdp")
			r := NewDict()
			r.Set("result", "ok")
			r.Set("sdp", sdp+"a=second\r\n")
			return r
		}
	})
	cfg := cfgFor(one.sock(), "1 == "+two.sock())
	e := newEnv(t, cfg)
	inv := sipRequest("INVITE", "", offerSDP)
	c := e.ctx(inv, kemi.RouteRequest)
	if r := call(t, e.m, c, "set_rtpengine_set", 1); r != 1 {
		t.Fatal(r)
	}
	if r := call(t, e.m, c, "rtpengine_offer0"); r != 1 || one.count() != 0 || two.count() != 1 {
		t.Fatalf("set 1: %d %d %d", r, one.count(), two.count())
	}
	if r := call(t, e.m, c, "set_rtpengine_set", 9); r != -1 {
		t.Errorf("unknown set = %d", r)
	}
	// two sets: the first one's SDP goes to the second, the result to the message
	inv = sipRequest("INVITE", "", offerSDP)
	c = e.ctx(inv, kemi.RouteRequest)
	if r := call(t, e.m, c, "set_rtpengine_set2", 0, 1); r != 1 {
		t.Fatal(r)
	}
	if r := call(t, e.m, c, "rtpengine_offer0"); r != 1 {
		t.Fatalf("offer with two sets = %d, log %s", r, e.log)
	}
	got, _ := two.last().Str("sdp")
	if !strings.Contains(got, "m=audio 30000 ") {
		t.Errorf("second set got %q", got)
	}
	if !strings.HasSuffix(body(inv), "a=second\r\n") || !strings.Contains(body(inv), "c=IN IP4 203.0.113.5") {
		t.Errorf("body %q", body(inv))
	}
	// answer goes to the callee side (set 2) first
	ok := sipReply(200, "OK", "INVITE", offerSDP)
	c = e.ctx(ok, kemi.RouteTMReply)
	call(t, e.m, c, "set_rtpengine_set2", 0, 1)
	n1, n2 := one.count(), two.count()
	if r := call(t, e.m, c, "rtpengine_answer0"); r != 1 || one.count() != n1+1 || two.count() != n2+1 {
		t.Fatalf("answer with two sets = %d", r)
	}
	if got, _ := one.last().Str("sdp"); !strings.HasSuffix(got, "a=second\r\n") {
		t.Errorf("answer order: set 0 got %q", got)
	}
	// the choice does not carry over to another message
	inv = sipRequest("INVITE", "", offerSDP)
	n1 = one.count()
	if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpengine_offer0"); r != 1 || one.count() != n1+1 {
		t.Errorf("default set not used: %d", r)
	}

	// read_sdp_pv / write_sdp_pv
	cfg = cfgFor(one.sock())
	cfg.ReadSdpPv = "$var(in)"
	cfg.WriteSdpPv = "$var(out)"
	e = newEnv(t, cfg)
	inv = sipRequest("INVITE", "", offerSDP)
	c = e.ctx(inv, kemi.RouteRequest)
	c.Worker.Vars["in"] = val.OfStr(crlf("v=0\nc=IN IP4 10.1.1.1\nm=audio 7000 RTP/AVP 0\n"))
	if r := call(t, e.m, c, "rtpengine_offer0"); r != 1 {
		t.Fatal(r)
	}
	if got := c.Worker.Vars["out"].S; got != crlf("v=0\nc=IN IP4 203.0.113.5\nm=audio 30000 RTP/AVP 0\n") {
		t.Errorf("write_sdp_pv %q", got)
	}
	if body(inv) != crlf(offerSDP) {
		t.Error("body changed with write_sdp_pv")
	}
}

func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "rtpe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := dir + "/ng"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 65536)
			n, _ := conn.Read(buf)
			cmd, err := DecodeDict(buf[:n])
			r := NewDict()
			if err != nil {
				r.Set("result", "error")
				r.Set("error-reason", "cookie sent on a stream socket?")
			} else if name, _ := cmd.Str("command"); name == "ping" {
				r.Set("result", "pong")
			} else {
				r.Set("result", "ok")
				r.Set("sdp", "v=0\r\n")
			}
			out, _ := Encode(r)
			conn.Write(out)
			conn.Close()
		}
	}()
	e := newEnv(t, cfgFor("unix:"+path))
	inv := sipRequest("INVITE", "", offerSDP)
	if r := call(t, e.m, e.ctx(inv, kemi.RouteRequest), "rtpengine_offer0"); r != 1 || body(inv) != "v=0\r\n" {
		t.Fatalf("unix offer = %d, body %q, log %s", r, body(inv), e.log)
	}
}

func TestConfig(t *testing.T) {
	for _, bad := range []string{"x == udp:1.2.3.4:5", "1 ==", "udp:1.2.3.4", "udp:1.2.3.4:0", "http://x", "udp:1.2.3.4:5=w"} {
		if _, err := New(Config{RtpengineSock: StringList{bad}}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	m, err := New(Config{RtpengineSock: StringList{"udp:127.0.0.1:2223=2 udp6:[::1]:2223", "3 == unix:/run/ng.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := m.sets[0].nodes; len(n) != 2 || n[0].weight != 2 || n[0].addr != "127.0.0.1:2223" || n[1].addr != "[::1]:2223" || n[1].mode != "udp6" {
		t.Errorf("set 0 %+v %+v", n[0], n[1])
	}
	if n := m.sets[3].nodes; len(n) != 1 || n[0].mode != "unix" || n[0].addr != "/run/ng.sock" {
		t.Errorf("set 3 %+v", n[0])
	}
	if m.cfg.RtpengineRetr != 5 || m.cfg.QueriedNodesLimit != 30 || m.tout != time.Second {
		t.Errorf("defaults %+v", m.cfg)
	}
	var l StringList
	if err := l.UnmarshalTOML("udp:1.2.3.4:5"); err != nil || len(l) != 1 {
		t.Error(err)
	}
	if err := l.UnmarshalTOML([]any{"a", 1}); err == nil {
		t.Error("int accepted")
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
		if len(cols) >= 4 && cols[0] == "rtpengine" {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range m.Exports() {
		if e.Module != "rtpengine" {
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
			t.Errorf("rtpengine.%s: got %q, catalog %q", n, got[n], s)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("rtpengine.%s not in catalog", n)
		}
	}
	kemi.NewTable().Register(m.Exports()...)
}
