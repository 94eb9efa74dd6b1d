package ksr

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

const invite = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
	"Via: SIP/2.0/TCP 10.0.0.2:5070;branch=z9hG4bK2\r\n" +
	"From: \"Alice\" <sip:alice@proxy.example.com>;tag=ftag\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: call-1\r\n" +
	"CSeq: 7 INVITE\r\n" +
	"Contact: <sip:alice@10.0.0.1:5060>\r\n" +
	"X-Multi: a\r\n" +
	"X-Multi: bb\r\n" +
	"X-Multi:  Hello World \r\n" +
	"Content-Length: 0\r\n\r\n"

const reply = "SIP/2.0 200 OK\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
	"Via: SIP/2.0/TCP [2001:db8::5]:5070;branch=z9hG4bK2\r\n" +
	"From: <sip:alice@example.org>;tag=ftag\r\n" +
	"To: <sip:bob@192.168.1.1>;tag=ttag\r\n" +
	"Call-ID: call-1\r\n" +
	"CSeq: 7 REGISTER\r\n" +
	"Content-Length: 0\r\n\r\n"

func req(method string) string {
	return method + " sip:bob@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:alice@example.org>;tag=ftag\r\nTo: <sip:bob@example.com>\r\n" +
		"Call-ID: c\r\nCSeq: 1 " + method + "\r\nContent-Length: 0\r\n\r\n"
}

// fakeMe listens on 127.0.0.1, 192.168.1.1, [::1] and proxy.example.com, UDP port 5060.
type fakeMe struct{}

func (fakeMe) IsMyself(host string, port int, proto string) bool {
	switch strings.Trim(host, "[]") {
	case "127.0.0.1", "192.168.1.1", "::1", "proxy.example.com":
		return (port == 0 || port == 5060) && (proto == "" || proto == "udp")
	}
	return false
}

func newCtx(t *testing.T, raw string) *kemi.Ctx {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	m.Proto, m.SrcIP, m.SrcPort, m.DstIP, m.DstPort = "udp", "10.0.0.1", 5060, "192.168.1.1", 5060
	return &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
}

var (
	S = val.OfStr
	I = func(i int) val.Value { return val.OfInt(int64(i)) }
	B = val.OfBool
	N = val.NullValue
)

type tcase struct {
	fn    string // "name" for KSR.name, "mod.name" otherwise
	msg   string // default: invite
	setup func(c *kemi.Ctx)
	args  []val.Value
	want  val.Value
	check func(t *testing.T, c *kemi.Ctx)
}

func set(name string, v val.Value) func(c *kemi.Ctx) {
	return func(c *kemi.Ctx) { pv.Set(c, name, v) }
}

func proto(p string) func(c *kemi.Ctx) { return func(c *kemi.Ctx) { c.Msg.Proto = p } }

func expect(name string, want val.Value) func(t *testing.T, c *kemi.Ctx) {
	return func(t *testing.T, c *kemi.Ctx) {
		t.Helper()
		if got, _ := pv.Get(c, name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
}

func edits(want ...sipmsg.HeaderEdit) func(t *testing.T, c *kemi.Ctx) {
	return func(t *testing.T, c *kemi.Ctx) {
		t.Helper()
		if len(c.Msg.Edits) != len(want) {
			t.Fatalf("edits = %+v, want %+v", c.Msg.Edits, want)
		}
		for i := range want {
			if c.Msg.Edits[i] != want[i] {
				t.Errorf("edit %d = %+v, want %+v", i, c.Msg.Edits[i], want[i])
			}
		}
	}
}

// logged checks the single log line written to the buffer set by logTo.
func logTo(buf *bytes.Buffer) func(c *kemi.Ctx) {
	return func(c *kemi.Ctx) { buf.Reset(); c.Log = zerolog.New(buf).Level(zerolog.TraceLevel) }
}

func logged(buf *bytes.Buffer, level, msg string) func(t *testing.T, c *kemi.Ctx) {
	return func(t *testing.T, c *kemi.Ctx) {
		t.Helper()
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("log output %q: %v", buf.String(), err)
		}
		if rec["level"] != level || rec["message"] != msg {
			t.Errorf("logged %v, want level=%s message=%q", rec, level, msg)
		}
	}
}

func cases() []tcase {
	var lb bytes.Buffer
	t1, f1 := B(true), B(false)
	return []tcase{
		// logging: the text as is, minus the trailing newline; return 0
		{fn: "info", setup: logTo(&lb), args: []val.Value{S("hello $ru\n")}, want: I(0), check: logged(&lb, "info", "hello $ru")},
		{fn: "dbg", setup: logTo(&lb), args: []val.Value{S("d\n")}, want: I(0), check: logged(&lb, "debug", "d")},
		{fn: "notice", setup: logTo(&lb), args: []val.Value{S("n")}, want: I(0), check: logged(&lb, "info", "n")},
		{fn: "warn", setup: logTo(&lb), args: []val.Value{S("w\n")}, want: I(0), check: logged(&lb, "warn", "w")},
		{fn: "err", setup: logTo(&lb), args: []val.Value{S("e\n")}, want: I(0), check: logged(&lb, "error", "e")},
		{fn: "crit", setup: logTo(&lb), args: []val.Value{S("c\n")}, want: I(0), check: logged(&lb, "error", "c")},
		{fn: "log", setup: logTo(&lb), args: []val.Value{S("WARN"), S("x\n")}, want: I(0), check: logged(&lb, "warn", "x")},
		{fn: "log", setup: logTo(&lb), args: []val.Value{S("dbg"), S("x")}, want: I(0), check: logged(&lb, "debug", "x")},
		{fn: "log", setup: logTo(&lb), args: []val.Value{S("bogus"), S("x")}, want: I(0), check: logged(&lb, "error", "x")},
		{fn: "get_debug", setup: func(c *kemi.Ctx) { c.Log = zerolog.New(nil).Level(zerolog.InfoLevel) }, want: I(2)},

		// is_myself: any port when none is given; loopback is local
		{fn: "is_myself", args: []val.Value{S("127.0.0.1")}, want: t1},
		{fn: "is_myself", args: []val.Value{S("sip:127.0.0.1")}, want: t1},
		{fn: "is_myself", args: []val.Value{S("sip:bob@192.168.1.1:5060;transport=udp")}, want: t1},
		{fn: "is_myself", args: []val.Value{S("sip:192.168.1.1:5070")}, want: f1},
		{fn: "is_myself", args: []val.Value{S("sip:192.168.1.1;transport=tcp")}, want: f1},
		{fn: "is_myself", args: []val.Value{S("sip:[::1]")}, want: t1},
		{fn: "is_myself", args: []val.Value{S("example.com")}, want: f1},
		{fn: "is_myself", args: []val.Value{S("")}, want: f1},
		{fn: "is_myself_ruri", want: f1},
		{fn: "is_myself_ruri", setup: set("$ru", S("sip:x@proxy.example.com")), want: t1},
		{fn: "is_myself_ruri", msg: reply, want: f1},
		{fn: "is_myself_duri", want: f1},
		{fn: "is_myself_duri", setup: set("$du", S("sip:127.0.0.1")), want: t1},
		{fn: "is_myself_nhuri", want: f1},
		{fn: "is_myself_nhuri", setup: set("$ru", S("sip:127.0.0.1")), want: t1},
		{fn: "is_myself_nhuri", setup: func(c *kemi.Ctx) { pv.Set(c, "$ru", S("sip:127.0.0.1")); pv.Set(c, "$du", S("sip:10.9.9.9")) }, want: f1},
		{fn: "is_myself_furi", want: t1},
		{fn: "is_myself_furi", msg: reply, want: f1},
		{fn: "is_myself_turi", want: f1},
		{fn: "is_myself_turi", msg: reply, want: t1},
		{fn: "is_myself_suri", want: f1},
		{fn: "is_myself_suri", setup: func(c *kemi.Ctx) { c.Msg.SrcIP = "127.0.0.1" }, want: t1},
		{fn: "is_myself_suri", setup: func(c *kemi.Ctx) { c.Msg.SrcIP = "127.0.0.1"; c.Msg.Proto = "tcp" }, want: f1},
		{fn: "is_myself_srcip", want: f1},
		{fn: "is_myself_srcip", setup: func(c *kemi.Ctx) { c.Msg.SrcIP = "127.0.0.1"; c.Msg.SrcPort = 40000 }, want: t1},

		// message flags: 0..31, out of range False
		{fn: "setflag", args: []val.Value{I(3)}, want: t1, check: expect("$mf", I(8))},
		{fn: "setflag", args: []val.Value{I(31)}, want: t1, check: expect("$mf", I(-1<<31))},
		{fn: "setflag", args: []val.Value{I(32)}, want: f1, check: expect("$mf", I(0))},
		{fn: "setflag", args: []val.Value{I(-1)}, want: f1},
		{fn: "resetflag", setup: set("$mf", I(12)), args: []val.Value{I(2)}, want: t1, check: expect("$mf", I(8))},
		{fn: "resetflag", args: []val.Value{I(40)}, want: f1},
		{fn: "isflagset", setup: set("$mf", I(8)), args: []val.Value{I(3)}, want: t1},
		{fn: "isflagset", setup: set("$mf", I(8)), args: []val.Value{I(2)}, want: f1},
		{fn: "isflagset", args: []val.Value{I(32)}, want: f1},
		// branch flags: branch 0 is $bf
		{fn: "setbflag", args: []val.Value{I(1)}, want: t1, check: expect("$bf", I(2))},
		{fn: "setbflag", args: []val.Value{I(33)}, want: f1},
		{fn: "resetbflag", setup: set("$bf", I(3)), args: []val.Value{I(0)}, want: t1, check: expect("$bf", I(2))},
		{fn: "isbflagset", setup: set("$bf", I(2)), args: []val.Value{I(1)}, want: t1},
		{fn: "isbflagset", args: []val.Value{I(1)}, want: f1},
		{fn: "setbiflag", args: []val.Value{I(4), I(0)}, want: t1, check: expect("$bf", I(16))},
		{fn: "setbiflag", args: []val.Value{I(4), I(1)}, want: f1, check: expect("$bf", I(0))},
		{fn: "setbiflag", args: []val.Value{I(32), I(0)}, want: f1},
		{fn: "resetbiflag", setup: set("$bf", I(16)), args: []val.Value{I(4), I(0)}, want: t1, check: expect("$bf", I(0))},
		{fn: "resetbiflag", args: []val.Value{I(4), I(2)}, want: f1},
		{fn: "isbiflagset", setup: set("$bf", I(16)), args: []val.Value{I(4), I(0)}, want: t1},
		{fn: "isbiflagset", setup: set("$bf", I(16)), args: []val.Value{I(4), I(1)}, want: f1},
		// script flags (per worker)
		{fn: "setsflag", args: []val.Value{I(5)}, want: t1},
		{fn: "setsflag", args: []val.Value{I(32)}, want: f1},
		{fn: "resetsflag", args: []val.Value{I(5)}, want: t1},
		{fn: "resetsflag", args: []val.Value{I(-2)}, want: f1},
		{fn: "issflagset", args: []val.Value{I(5)}, want: f1},
		{fn: "issflagset", args: []val.Value{I(99)}, want: f1},

		// R-URI, $du
		{fn: "seturi", args: []val.Value{S("sip:carol@example.net")}, want: t1, check: expect("$ru", S("sip:carol@example.net"))},
		{fn: "seturi", args: []val.Value{S("sip:bob@h:port")}, want: f1, check: expect("$ru", S("sip:bob@example.com"))},
		{fn: "seturi", msg: reply, args: []val.Value{S("sip:x@y")}, want: f1},
		{fn: "setuser", args: []val.Value{S("dave")}, want: t1, check: expect("$ru", S("sip:dave@example.com"))},
		{fn: "setuser", args: []val.Value{S("")}, want: t1, check: expect("$ru", S("sip:example.com"))},
		{fn: "setuser", msg: reply, args: []val.Value{S("dave")}, want: f1},
		{fn: "sethost", args: []val.Value{S("example.net")}, want: t1, check: expect("$ru", S("sip:bob@example.net"))},
		{fn: "sethost", args: []val.Value{S("")}, want: f1},
		{fn: "setdsturi", args: []val.Value{S("sip:10.0.0.9:5080")}, want: t1, check: expect("$du", S("sip:10.0.0.9:5080"))},
		{fn: "resetdsturi", setup: set("$du", S("sip:x")), want: t1, check: expect("$du", N)},
		{fn: "isdsturiset", want: f1},
		{fn: "isdsturiset", setup: set("$du", S("sip:x")), want: t1},
		{fn: "force_rport", want: t1, check: func(t *testing.T, c *kemi.Ctx) {
			if !c.Msg.ForceRport {
				t.Error("ForceRport not set")
			}
		}},
		{fn: "add_local_rport", want: t1},
		{fn: "set_drop", want: I(0), check: func(t *testing.T, c *kemi.Ctx) {
			if !c.Drop {
				t.Error("Drop not set")
			}
		}},
		{fn: "route", args: []val.Value{S("RELAY")}, want: I(-1)},

		// methods
		{fn: "is_method", args: []val.Value{S("INVITE")}, want: t1},
		{fn: "is_method", args: []val.Value{S("invite")}, want: t1},
		{fn: "is_method", args: []val.Value{S("BYE")}, want: f1},
		{fn: "is_method", args: []val.Value{S("BYE|INVITE")}, want: t1},
		{fn: "is_method", args: []val.Value{S("BYE|ACK")}, want: f1},
		{fn: "is_method", args: []val.Value{S("BYE|FOO")}, want: f1},
		{fn: "is_method", args: []val.Value{S("")}, want: f1},
		{fn: "is_method", msg: reply, args: []val.Value{S("REGISTER")}, want: t1},
		{fn: "is_method", msg: req("FOO"), args: []val.Value{S("foo")}, want: t1},
		{fn: "is_method", msg: req("FOO"), args: []val.Value{S("FOO|BAR")}, want: f1},
		{fn: "is_method_in", args: []val.Value{S("I")}, want: t1},
		{fn: "is_method_in", args: []val.Value{S("abi")}, want: t1},
		{fn: "is_method_in", args: []val.Value{S("AB")}, want: f1},
		{fn: "is_method_in", args: []val.Value{S("XZ")}, want: f1},
		{fn: "is_method_in", args: []val.Value{S("")}, want: f1},
		{fn: "is_method_in", msg: req("INFO"), args: []val.Value{S("I")}, want: f1},
		{fn: "is_method_in", msg: req("PRACK"), args: []val.Value{S("E")}, want: t1},
		{fn: "is_method_in", msg: req("REFER"), args: []val.Value{S("F")}, want: t1},
		{fn: "is_method_in", msg: req("POST"), args: []val.Value{S("T")}, want: t1},
		{fn: "is_method_in", msg: req("PUT"), args: []val.Value{S("V")}, want: t1},
		{fn: "is_method_in", msg: req("PUBLISH"), args: []val.Value{S("RP")}, want: t1},
		{fn: "is_method_in", msg: reply, args: []val.Value{S("R")}, want: t1},
		{fn: "is_method_in", msg: req("FOO"), args: []val.Value{S("IABCMREPSNOFGUKDTV")}, want: f1},
		{fn: "is_INVITE", want: t1},
		{fn: "is_INVITE", msg: reply, want: f1},
		{fn: "is_ACK", msg: req("ACK"), want: t1},
		{fn: "is_ACK", want: f1},
		{fn: "is_BYE", msg: req("BYE"), want: t1},
		{fn: "is_CANCEL", msg: req("CANCEL"), want: t1},
		{fn: "is_REGISTER", msg: reply, want: t1},
		{fn: "is_OPTIONS", msg: req("OPTIONS"), want: t1},
		{fn: "is_NOTIFY", msg: req("NOTIFY"), want: t1},
		{fn: "is_SUBSCRIBE", msg: req("SUBSCRIBE"), want: t1},
		{fn: "is_PUBLISH", msg: req("PUBLISH"), want: t1},
		{fn: "is_MESSAGE", msg: req("MESSAGE"), want: t1},
		{fn: "is_INFO", msg: req("INFO"), want: t1},
		{fn: "is_UPDATE", msg: req("UPDATE"), want: t1},
		{fn: "is_PRACK", msg: req("PRACK"), want: t1},
		{fn: "is_REFER", msg: req("REFER"), want: t1},
		{fn: "is_KDMQ", msg: req("KDMQ"), want: t1},
		{fn: "is_GET", msg: req("GET"), want: t1},
		{fn: "is_POST", msg: req("POST"), want: t1},
		{fn: "is_PUT", msg: req("PUT"), want: t1},
		{fn: "is_DELETE", msg: req("DELETE"), want: t1},
		{fn: "is_DELETE", want: f1},

		// transport of the received message
		{fn: "is_UDP", want: t1},
		{fn: "is_UDP", setup: proto("tcp"), want: f1},
		{fn: "is_TCP", setup: proto("tcp"), want: t1},
		{fn: "is_TLS", setup: proto("tls"), want: t1},
		{fn: "is_TLS", want: f1},
		{fn: "is_WS", setup: proto("ws"), want: t1},
		{fn: "is_WSS", setup: proto("wss"), want: t1},
		{fn: "is_WSS", setup: proto("ws"), want: f1},
		{fn: "is_WSX", setup: proto("ws"), want: t1},
		{fn: "is_WSX", setup: proto("wss"), want: t1},
		{fn: "is_WSX", want: f1},
		{fn: "is_SCTP", setup: proto("sctp"), want: t1},
		{fn: "is_proto", args: []val.Value{S("tu")}, want: t1},
		{fn: "is_proto", args: []val.Value{S("TE")}, want: f1},
		{fn: "is_proto", setup: proto("tls"), args: []val.Value{S("e")}, want: t1},
		{fn: "is_proto", setup: proto("wss"), args: []val.Value{S("w")}, want: t1},
		{fn: "is_proto", setup: proto("ws"), args: []val.Value{S("v")}, want: t1},
		{fn: "is_proto", setup: proto("sctp"), args: []val.Value{S("s")}, want: t1},
		{fn: "is_proto", args: []val.Value{S("")}, want: f1},
		{fn: "is_IPv4", want: t1},
		{fn: "is_IPv4", setup: func(c *kemi.Ctx) { c.Msg.DstIP = "::1" }, want: f1},
		{fn: "is_IPv6", setup: func(c *kemi.Ctx) { c.Msg.DstIP = "::1" }, want: t1},
		{fn: "is_IPv6", want: f1},
		{fn: "is_src_port", args: []val.Value{I(5060)}, want: t1},
		{fn: "is_src_port", args: []val.Value{I(5061)}, want: f1},
		{fn: "is_dst_port", args: []val.Value{I(5060)}, want: t1},
		{fn: "is_dst_port", args: []val.Value{I(0)}, want: f1},

		// next hop: $du, else the R-URI (no transport param: none of to_*); replies: 2nd Via
		{fn: "to_UDP", want: f1},
		{fn: "to_UDP", setup: set("$du", S("sip:10.0.0.9;transport=udp")), want: t1},
		{fn: "to_TCP", setup: set("$ru", S("sip:b@h;transport=TCP")), want: t1},
		{fn: "to_TCP", msg: reply, want: t1},
		{fn: "to_TLS", setup: set("$du", S("sip:h;transport=tls")), want: t1},
		{fn: "to_WS", setup: set("$du", S("sip:h;transport=ws")), want: t1},
		{fn: "to_WSS", setup: set("$du", S("sip:h;transport=wss")), want: t1},
		{fn: "to_WSX", setup: set("$du", S("sip:h;transport=ws")), want: t1},
		{fn: "to_WSX", want: f1},
		{fn: "to_SCTP", setup: set("$du", S("sip:h;transport=sctp")), want: t1},
		{fn: "to_IPv4", want: f1},
		{fn: "to_IPv4", setup: set("$du", S("sip:10.0.0.9:5080")), want: t1},
		{fn: "to_IPv6", setup: set("$ru", S("sip:b@[2001:db8::1]")), want: t1},
		{fn: "to_IPv6", msg: reply, want: t1},
		{fn: "to_IPv4", msg: reply, setup: func(c *kemi.Ctx) {}, want: f1},

		// KSR.pv
		{fn: "pv.get", args: []val.Value{S("$rU")}, want: S("bob")},
		{fn: "pv.get", args: []val.Value{S("$sp")}, want: I(5060)},
		{fn: "pv.get", args: []val.Value{S("$cs")}, want: S("7")},
		{fn: "pv.get", args: []val.Value{S("$rs")}, want: N},
		{fn: "pv.get", msg: reply, args: []val.Value{S("$rs")}, want: I(200)},
		{fn: "pv.get", args: []val.Value{S("$var(x)")}, want: I(0)},
		{fn: "pv.get", args: []val.Value{S("$avp(x)")}, want: N},
		{fn: "pv.get", args: []val.Value{S("$nosuch")}, want: N},
		{fn: "pv.get", args: []val.Value{S("rU")}, want: N},
		{fn: "pv.get", setup: set("$var(h)", S("X-Multi")), args: []val.Value{S("$(hdr($var(h))[1])")}, want: S("bb")},
		{fn: "pv.getw", args: []val.Value{S("$du")}, want: S("<null>")},
		{fn: "pv.getw", args: []val.Value{S("$nosuch")}, want: S("<null>")},
		{fn: "pv.getw", args: []val.Value{S("$rd")}, want: S("example.com")},
		{fn: "pv.gete", args: []val.Value{S("$du")}, want: S("")},
		{fn: "pv.gete", args: []val.Value{S("$sp")}, want: I(5060)},
		{fn: "pv.getvn", args: []val.Value{S("$du"), I(7)}, want: I(7)},
		{fn: "pv.getvn", args: []val.Value{S("$bad("), I(-1)}, want: I(-1)},
		{fn: "pv.getvn", args: []val.Value{S("$rU"), I(7)}, want: S("bob")},
		{fn: "pv.getvs", args: []val.Value{S("$du"), S("none")}, want: S("none")},
		{fn: "pv.getvs", args: []val.Value{S("$sp"), S("none")}, want: I(5060)},
		{fn: "pv.geti", args: []val.Value{S("$sp")}, want: I(5060)},
		{fn: "pv.geti", args: []val.Value{S("$cs")}, want: I(7)},
		{fn: "pv.geti", args: []val.Value{S("$rp")}, want: I(5060)},
		{fn: "pv.geti", setup: set("$var(x)", S("abc")), args: []val.Value{S("$var(x)")}, want: I(0)},
		{fn: "pv.geti", args: []val.Value{S("$du")}, want: I(0)},
		{fn: "pv.geti", args: []val.Value{S("$nosuch")}, want: I(0)},
		{fn: "pv.sets", args: []val.Value{S("$var(x)"), S("v")}, want: t1, check: expect("$var(x)", S("v"))},
		{fn: "pv.sets", args: []val.Value{S("$ru"), S("sip:z@example.com")}, want: t1, check: expect("$rU", S("z"))},
		{fn: "pv.sets", args: []val.Value{S("$si"), S("1.2.3.4")}, want: f1},
		{fn: "pv.sets", args: []val.Value{S("$nosuch"), S("x")}, want: f1},
		{fn: "pv.sets", args: []val.Value{S("$mf"), S("1")}, want: f1},
		{fn: "pv.seti", args: []val.Value{S("$var(x)"), I(5)}, want: t1, check: expect("$var(x)", I(5))},
		{fn: "pv.seti", args: []val.Value{S("$ru"), I(5)}, want: f1},
		{fn: "pv.seti", args: []val.Value{S("$avp(a)"), I(5)}, want: t1, check: expect("$avp(a)", I(5))},
		{fn: "pv.seti", setup: set("$var(k)", S("ip")), args: []val.Value{S("$avp($var(k)_$si)"), I(1)}, want: t1,
			check: expect("$avp(ip_10.0.0.1)", I(1))},
		{fn: "pv.unset", setup: set("$var(x)", S("v")), args: []val.Value{S("$var(x)")}, want: t1, check: expect("$var(x)", I(0))},
		{fn: "pv.unset", setup: set("$du", S("sip:x")), args: []val.Value{S("$du")}, want: t1, check: expect("$du", N)},
		{fn: "pv.unset", setup: func(c *kemi.Ctx) { pv.Set(c, "$avp(a)", I(1)); pv.Set(c, "$avp(a)", I(2)) },
			args: []val.Value{S("$avp(a)")}, want: t1, check: expect("$avp(a)", I(1))},
		{fn: "pv.unset", setup: func(c *kemi.Ctx) { pv.Set(c, "$avp(a)", I(1)); pv.Set(c, "$avp(a)", I(2)) },
			args: []val.Value{S("$(avp(a)[*])")}, want: t1, check: expect("$avp(a)", N)},
		{fn: "pv.unset", args: []val.Value{S("$ru")}, want: f1},
		{fn: "pv.is_null", args: []val.Value{S("$du")}, want: t1},
		{fn: "pv.is_null", args: []val.Value{S("$rU")}, want: f1},
		{fn: "pv.is_null", args: []val.Value{S("$var(x)")}, want: f1},
		{fn: "pv.is_null", args: []val.Value{S("$nosuch")}, want: t1},
		{fn: "pv.is_null", args: []val.Value{S("garbage")}, want: t1},

		// KSR.hdr: edits are queued, reads see the received message
		{fn: "hdr.append", args: []val.Value{S("X-Added: 1\r\n")}, want: I(1),
			check: edits(sipmsg.HeaderEdit{Op: sipmsg.EditAppend, Text: "X-Added: 1\r\n"})},
		{fn: "hdr.append_after", args: []val.Value{S("X-A: 1\r\n"), S("Call-ID")}, want: I(1),
			check: edits(sipmsg.HeaderEdit{Op: sipmsg.EditAppendAfter, Text: "X-A: 1\r\n", Anchor: "call-id"})},
		{fn: "hdr.append_after", args: []val.Value{S("X-A: 1\r\n"), S("")}, want: I(-1), check: edits()},
		{fn: "hdr.insert", args: []val.Value{S("X-I: 1\r\n")}, want: I(1),
			check: edits(sipmsg.HeaderEdit{Op: sipmsg.EditInsert, Text: "X-I: 1\r\n"})},
		{fn: "hdr.insert_before", args: []val.Value{S("X-I: 1\r\n"), S("To")}, want: I(1),
			check: edits(sipmsg.HeaderEdit{Op: sipmsg.EditInsertBefore, Text: "X-I: 1\r\n", Anchor: "to"})},
		{fn: "hdr.insert_before", args: []val.Value{S("X-I: 1\r\n"), S("Bad Name")}, want: I(-1), check: edits()},
		{fn: "hdr.remove", args: []val.Value{S("X-Multi")}, want: I(1),
			check: func(t *testing.T, c *kemi.Ctx) {
				edits(sipmsg.HeaderEdit{Op: sipmsg.EditRemove, Anchor: "x-multi"})(t, c)
				expect("$hdr(X-Multi)", S("a"))(t, c) // still visible
			}},
		{fn: "hdr.remove", args: []val.Value{S("X-None")}, want: I(1)},
		{fn: "hdr.remove", args: []val.Value{S("")}, want: I(-1)},
		{fn: "hdr.rmappend", args: []val.Value{S("X-Multi"), S("X-Multi: z\r\n")}, want: I(1),
			check: edits(sipmsg.HeaderEdit{Op: sipmsg.EditRemove, Anchor: "x-multi"},
				sipmsg.HeaderEdit{Op: sipmsg.EditAppend, Text: "X-Multi: z\r\n"})},
		{fn: "hdr.rmappend", args: []val.Value{S(""), S("X: z\r\n")}, want: I(-1), check: edits()},
		{fn: "hdr.rminsert", args: []val.Value{S("Via"), S("X-V: z\r\n")}, want: I(1),
			check: edits(sipmsg.HeaderEdit{Op: sipmsg.EditRemove, Anchor: "via"},
				sipmsg.HeaderEdit{Op: sipmsg.EditInsert, Text: "X-V: z\r\n"})},
		{fn: "hdr.is_present", args: []val.Value{S("x-multi")}, want: I(1)},
		{fn: "hdr.is_present", args: []val.Value{S("v")}, want: I(1)},
		{fn: "hdr.is_present", args: []val.Value{S("X-Added")}, want: I(-1)},
		{fn: "hdr.is_present", setup: func(c *kemi.Ctx) { hdrAppend(c, []val.Value{S("X-Added: 1\r\n")}) },
			args: []val.Value{S("X-Added")}, want: I(-1)},
		{fn: "hdr.append_to_reply", args: []val.Value{S("X-Reply-Hdr: yes\r\n")}, want: I(1),
			check: func(t *testing.T, c *kemi.Ctx) {
				if len(c.Msg.ReplyHdrs) != 1 || c.Msg.ReplyHdrs[0] != "X-Reply-Hdr: yes\r\n" {
					t.Errorf("ReplyHdrs = %q", c.Msg.ReplyHdrs)
				}
			}},
		{fn: "hdr.get", args: []val.Value{S("X-Multi")}, want: S("a")},
		{fn: "hdr.get", args: []val.Value{S("call-id")}, want: S("call-1")},
		{fn: "hdr.get", args: []val.Value{S("i")}, want: S("call-1")},
		{fn: "hdr.get", args: []val.Value{S("X-None")}, want: N},
		{fn: "hdr.get", setup: func(c *kemi.Ctx) { hdrAppend(c, []val.Value{S("X-Added: 1\r\n")}) },
			args: []val.Value{S("X-Added")}, want: N},
		{fn: "hdr.gete", args: []val.Value{S("X-None")}, want: S("")},
		{fn: "hdr.gete", args: []val.Value{S("CSeq")}, want: S("7 INVITE")},
		{fn: "hdr.getw", args: []val.Value{S("X-None")}, want: S("<null>")},
		{fn: "hdr.getw", args: []val.Value{S("To")}, want: S("<sip:bob@example.com>")},
		{fn: "hdr.get_idx", args: []val.Value{S("X-Multi"), I(1)}, want: S("bb")},
		{fn: "hdr.get_idx", args: []val.Value{S("X-Multi"), I(-1)}, want: S("Hello World")},
		{fn: "hdr.get_idx", args: []val.Value{S("X-Multi"), I(-3)}, want: S("a")},
		{fn: "hdr.get_idx", args: []val.Value{S("X-Multi"), I(3)}, want: N},
		{fn: "hdr.get_idx", args: []val.Value{S("X-Multi"), I(-4)}, want: N},
		{fn: "hdr.get_idx", args: []val.Value{S("Via"), I(1)}, want: S("SIP/2.0/TCP 10.0.0.2:5070;branch=z9hG4bK2")},
		{fn: "hdr.gete_idx", args: []val.Value{S("X-Multi"), I(5)}, want: S("")},
		{fn: "hdr.gete_idx", args: []val.Value{S("X-Multi"), I(0)}, want: S("a")},
		{fn: "hdr.getw_idx", args: []val.Value{S("X-Multi"), I(5)}, want: S("<null>")},
		{fn: "hdr.getw_idx", args: []val.Value{S("X-Multi"), I(-2)}, want: S("bb")},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("eq"), S("A"), S("f")}, want: t1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("eq"), S("bb"), S("f")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("eq"), S("bb"), S("o")}, want: t1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("eq"), S("hello world"), S("l")}, want: t1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("in"), S("b"), S("a")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("in"), S(""), S("a")}, want: t1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("in"), S("WORLD"), S("o")}, want: t1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("sw"), S("hel"), S("last")}, want: t1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("sw"), S("hel"), S("first")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("ne"), S("zz"), S("f")}, want: t1},
		// 5.6.3: "ne" is only true when the lengths differ
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("ne"), S("z"), S("f")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("re"), S("a"), S("f")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("xx"), S("a"), S("f")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("eq"), S("a"), S("")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-Multi"), S("eq"), S("a"), S("z")}, want: f1},
		{fn: "hdr.match_content", args: []val.Value{S("X-None"), S("eq"), S("a"), S("a")}, want: f1},
	}
}

func table() *kemi.Table {
	t := kemi.NewTable()
	t.Register(New(fakeMe{}).Exports()...)
	return t
}

func TestExports(t *testing.T) {
	tbl := table()
	tested := map[string]bool{}
	for i, tc := range cases() {
		mod, name := "", tc.fn
		if j := strings.IndexByte(tc.fn, '.'); j >= 0 {
			mod, name = tc.fn[:j], tc.fn[j+1:]
		}
		e := tbl.Lookup(mod, name)
		if e == nil {
			t.Errorf("case %d: %s not exported", i, tc.fn)
			continue
		}
		tested[e.FullName()] = true
		args := tc.args
		if len(args) != len(e.Params) {
			t.Errorf("case %d: %s needs %d args, has %d", i, tc.fn, len(e.Params), len(args))
			continue
		}
		msg := tc.msg
		if msg == "" {
			msg = invite
		}
		c := newCtx(t, msg)
		if tc.setup != nil {
			tc.setup(c)
		}
		got := e.Fn(c, args)
		if got != tc.want {
			t.Errorf("case %d: %s(%v) = %#v, want %#v", i, e.FullName(), args, got, tc.want)
		}
		if tc.check != nil {
			tc.check(t, c)
		}
	}
	for _, e := range tbl.All() {
		if !tested[e.FullName()] {
			t.Errorf("%s has no test case", e.FullName())
		}
	}
}

// TestReturnKinds checks that each function returns what its Ret declares.
func TestReturnKinds(t *testing.T) {
	tbl := table()
	for i, tc := range cases() {
		mod, name := "", tc.fn
		if j := strings.IndexByte(tc.fn, '.'); j >= 0 {
			mod, name = tc.fn[:j], tc.fn[j+1:]
		}
		e := tbl.Lookup(mod, name)
		if e == nil {
			continue
		}
		ok := false
		switch e.Ret {
		case kemi.RInt:
			ok = tc.want.Kind == val.Int
		case kemi.RBool:
			ok = tc.want.Kind == val.Bool
		case kemi.RNone:
			ok = tc.want == val.OfInt(0)
		case kemi.RXval:
			ok = tc.want.Kind != val.Bool
		}
		if !ok {
			t.Errorf("case %d: %s declared %s, case expects %#v", i, e.FullName(), e.Ret, tc.want)
		}
	}
}

func TestSflagsPerWorker(t *testing.T) {
	m := New(nil)
	tbl := kemi.NewTable()
	tbl.Register(m.Exports()...)
	set, is := tbl.Lookup("", "setsflag"), tbl.Lookup("", "issflagset")
	c1 := newCtx(t, invite)
	set.Fn(c1, []val.Value{I(4)})
	c1b := newCtx(t, reply)
	c1b.Worker = c1.Worker
	if got := is.Fn(c1b, []val.Value{I(4)}); got != B(true) {
		t.Errorf("same worker: %v", got)
	}
	if got := is.Fn(newCtx(t, invite), []val.Value{I(4)}); got != B(false) {
		t.Errorf("other worker: %v", got)
	}
	// with no Myself, nothing is local
	if got := tbl.Lookup("", "is_myself").Fn(c1, []val.Value{S("127.0.0.1")}); got != B(false) {
		t.Errorf("nil Myself: %v", got)
	}
}

// catalog holds the 5.6.3 catalog.tsv rows of modules core, pv and hdr:
// "module function params ret".
const catalog = `core add_local_rport none bool
core add_tcp_alias int int
core add_tcp_alias_via none int
core crit str none
core dbg str none
core err str none
core force_rport none bool
core forward none int
core forward_uri str int
core get_debug none int
core info str none
core is_ACK none bool
core is_BYE none bool
core is_CANCEL none bool
core is_DELETE none bool
core is_GET none bool
core is_INFO none bool
core is_INVITE none bool
core is_IPv4 none bool
core is_IPv6 none bool
core is_KDMQ none bool
core is_MESSAGE none bool
core is_NOTIFY none bool
core is_OPTIONS none bool
core is_POST none bool
core is_PRACK none bool
core is_PUBLISH none bool
core is_PUT none bool
core is_REFER none bool
core is_REGISTER none bool
core is_SCTP none bool
core is_SUBSCRIBE none bool
core is_TCP none bool
core is_TLS none bool
core is_UDP none bool
core is_UPDATE none bool
core is_WS none bool
core is_WSS none bool
core is_WSX none bool
core is_dst_port int bool
core is_method str bool
core is_method_in str bool
core is_myself str bool
core is_myself_duri none bool
core is_myself_furi none bool
core is_myself_nhuri none bool
core is_myself_ruri none bool
core is_myself_srcip none bool
core is_myself_suri none bool
core is_myself_turi none bool
core is_proto str bool
core is_src_port int bool
core isbflagset int bool
core isbiflagset int,int bool
core isdsturiset none bool
core isflagset int bool
core issflagset int bool
core log str,str none
core notice str none
core resetbflag int bool
core resetbiflag int,int bool
core resetdsturi none bool
core resetflag int bool
core resetsflag int bool
core route str int
core set_advertised_address str int
core set_advertised_port str int
core set_drop none none
core set_forward_close none bool
core set_forward_no_connect none bool
core set_reply_close none bool
core set_reply_no_connect none bool
core setbflag int bool
core setbiflag int,int bool
core setdsturi str bool
core setflag int bool
core sethost str bool
core setsflag int bool
core seturi str bool
core setuser str bool
core to_IPv4 none bool
core to_IPv6 none bool
core to_SCTP none bool
core to_TCP none bool
core to_TLS none bool
core to_UDP none bool
core to_WS none bool
core to_WSS none bool
core to_WSX none bool
core warn str none
hdr append str int
hdr append_after str,str int
hdr append_to_reply str int
hdr get str xval
hdr get_idx str,int xval
hdr gete str xval
hdr gete_idx str,int xval
hdr getw str xval
hdr getw_idx str,int xval
hdr insert str int
hdr insert_before str,str int
hdr is_present str int
hdr match_content str,str,str,str bool
hdr remove str int
hdr rmappend str,str int
hdr rminsert str,str int
pv get str xval
pv gete str xval
pv geti str int
pv getvn str,int xval
pv getvs str,str xval
pv getw str xval
pv is_null str bool
pv seti str,int bool
pv sets str,str bool
pv unset str bool`

// notExported are the catalog functions this module leaves out (see README).
var notExported = map[string]bool{
	"core forward": true, "core forward_uri": true,
	"core add_tcp_alias": true, "core add_tcp_alias_via": true,
	"core set_advertised_address": true, "core set_advertised_port": true,
	"core set_forward_close": true, "core set_forward_no_connect": true,
	"core set_reply_close": true, "core set_reply_no_connect": true,
}

func TestCatalogSignatures(t *testing.T) {
	sig := func(e *kemi.Export) string {
		mod := e.Module
		if mod == "" {
			mod = "core"
		}
		ps := "none"
		if len(e.Params) > 0 {
			var p []string
			for _, x := range e.Params {
				p = append(p, x.String())
			}
			ps = strings.Join(p, ",")
		}
		return mod + " " + e.Name + " " + ps + " " + e.Ret.String()
	}
	want := map[string]string{} // "module name" -> full row
	for _, row := range strings.Split(catalog, "\n") {
		f := strings.Fields(row)
		want[f[0]+" "+f[1]] = row
	}
	exported := map[string]bool{}
	for _, e := range table().All() {
		s := sig(e)
		key := strings.Join(strings.Fields(s)[:2], " ")
		exported[key] = true
		if want[key] != s {
			t.Errorf("export %q, catalog %q", s, want[key])
		}
	}
	var missing []string
	for key := range want {
		if !exported[key] && !notExported[key] {
			missing = append(missing, key)
		}
		if exported[key] && notExported[key] {
			t.Errorf("%s is exported but listed as not exported", key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("catalog functions neither exported nor listed: %v", missing)
	}
}
