package kx

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

const invite = "INVITE sip:bob@biloxi.example.com:5070;transport=tcp SIP/2.0\r\n" +
	"Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"Alice, A.\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n" +
	"To: Bob <sip:bob@biloxi.example.com>\r\n" +
	"Call-ID: 3848276298220188511@atlanta.example.com\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:alice@client.atlanta.example.com;transport=tcp>;expires=60, <sip:a2@x>\r\n" +
	"User-Agent: Phone/1.0\r\n" +
	"Proxy-Authorization: Digest username=\"alice@atlanta.example.com\", realm=\"atlanta.example.com\", nonce=\"x\", uri=\"sip:bob@biloxi.example.com\", response=\"y\"\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 4\r\n\r\n" +
	"v=0\n"

const reply = "SIP/2.0 486 Busy Here\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
	"From: <sip:alice@a.example>;tag=1\r\n" +
	"To: sip:bob@[2001:db8::1];tag=2\r\n" +
	"Call-ID: c1\r\n" +
	"CSeq: 7 BYE\r\n" +
	"Content-Length: 0\r\n\r\n"

const register = "REGISTER sip:registrar.example SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2\r\n" +
	"From: <tel:+15551234;phone-context=x>;tag=1\r\n" +
	"To: <sip:registrar.example>\r\n" +
	"Call-ID: c2\r\n" +
	"CSeq: 1 REGISTER\r\n" +
	"Contact: *\r\n" +
	"Authorization: Digest username=\"carol\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"z\"\r\n" +
	"Content-Length: 0\r\n\r\n"

func parse(t *testing.T, raw string) *sipmsg.Msg {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m
}

type fakeSockets struct{}

func (fakeSockets) RecvSocket(m *sipmsg.Msg) (string, string, int) { return "lan", "203.0.113.5", 5080 }
func (fakeSockets) SendSocket(m *sipmsg.Msg) (string, string, int, bool) {
	return "udp:192.0.2.1:5060", "wan", 5060, true
}
func (fakeSockets) ConnID(m *sipmsg.Msg) (int, bool) { return 42, true }

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...string) val.Value {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name == name {
			if len(args) != len(e.Params) {
				t.Fatalf("%s: %d args, want %d", name, len(args), len(e.Params))
			}
			vs := make([]val.Value, len(args))
			for i, a := range args {
				vs[i] = val.OfStr(a)
			}
			return e.Fn(c, vs)
		}
	}
	t.Fatalf("no export %s", name)
	return val.NullValue
}

var (
	N          = val.NullValue
	S          = val.OfStr
	I          = func(n int) val.Value { return val.OfInt(int64(n)) }
	B          = val.OfBool
	fixedClock = func() time.Time { return time.Unix(1700000000, 0) }
)

func TestGetters(t *testing.T) {
	inv := parse(t, invite)
	inv.Proto, inv.SrcIP, inv.SrcPort, inv.DstIP, inv.DstPort = "tcp", "192.0.2.10", 40000, "192.0.2.1", 5060
	rewritten := parse(t, invite)
	rewritten.Proto, rewritten.SrcIP, rewritten.SrcPort = "wss", "2001:db8::9", 443
	if err := rewritten.SetRURI("sip:carol@chicago.example.com"); err != nil {
		t.Fatal(err)
	}
	rewritten.DstURI = "sip:proxy.example:5080"
	rpl := parse(t, reply)
	rpl.Proto, rpl.SrcIP, rpl.SrcPort = "udp", "10.0.0.2", 5060
	reg := parse(t, register)
	reg.Proto, reg.SrcIP, reg.SrcPort = "udp", "10.0.0.1", 5060
	faked := sipmsg.Faked()

	tests := []struct {
		msg  *sipmsg.Msg
		fn   string
		want val.Value
	}{
		{inv, "get_ruri", S("sip:bob@biloxi.example.com:5070;transport=tcp")},
		{inv, "get_ouri", S("sip:bob@biloxi.example.com:5070;transport=tcp")},
		{inv, "get_ruser", S("bob")},
		{inv, "get_rhost", S("biloxi.example.com")},
		{rewritten, "get_ruri", S("sip:carol@chicago.example.com")},
		{rewritten, "get_ouri", S("sip:bob@biloxi.example.com:5070;transport=tcp")},
		{rewritten, "get_ruser", S("carol")},
		{reg, "get_ruser", N},
		{reg, "gete_ruser", S("")},
		{reg, "getw_ruser", S("<null>")},
		{rpl, "get_ruri", N},
		{rpl, "get_ouri", N},
		{rpl, "get_rhost", N},
		{rpl, "gete_rhost", S("")},
		{rpl, "getw_rhost", S("<null>")},

		{inv, "get_furi", S("sip:alice@atlanta.example.com")},
		{inv, "get_fuser", S("alice")},
		{inv, "get_fhost", S("atlanta.example.com")},
		{inv, "get_turi", S("sip:bob@biloxi.example.com")},
		{inv, "get_tuser", S("bob")},
		{inv, "get_thost", S("biloxi.example.com")},
		{rpl, "get_turi", S("sip:bob@[2001:db8::1]")},
		{rpl, "get_thost", S("[2001:db8::1]")},
		{reg, "get_furi", S("tel:+15551234;phone-context=x")},
		{reg, "get_fuser", S("+15551234")},
		{reg, "get_fhost", N},
		{reg, "gete_fhost", S("")},
		{reg, "getw_fhost", S("<null>")},
		{reg, "get_tuser", N},
		{reg, "gete_tuser", S("")},
		{reg, "getw_tuser", S("<null>")},
		{reg, "get_thost", S("registrar.example")},

		{inv, "get_cturi", S("sip:alice@client.atlanta.example.com;transport=tcp")},
		{reg, "get_cturi", N},
		{reg, "gete_cturi", S("")},
		{reg, "getw_cturi", S("<null>")},
		{rpl, "get_cturi", N},

		{inv, "get_ua", S("Phone/1.0")},
		{inv, "gete_ua", S("Phone/1.0")},
		{rpl, "get_ua", N},
		{rpl, "gete_ua", S("")},
		{rpl, "getw_ua", S("<null>")},

		{inv, "get_au", S("alice")},
		{reg, "get_au", S("carol")},
		{reg, "gete_au", S("carol")},
		{rpl, "get_au", N},
		{rpl, "gete_au", S("")},
		{rpl, "getw_au", S("<null>")},

		{inv, "get_method", S("INVITE")},
		{rpl, "get_method", S("BYE")},
		{inv, "get_status", I(-1)},
		{rpl, "get_status", I(486)},
		{inv, "gets_status", N},
		{rpl, "gets_status", S("486")},
		{inv, "get_msgtype", I(1)},
		{rpl, "get_msgtype", I(2)},
		{inv, "get_callid", S("3848276298220188511@atlanta.example.com")},
		{rpl, "get_callid", S("c1")},

		{inv, "get_body", S("v=0\n")},
		{inv, "gete_body", S("v=0\n")},
		{inv, "get_bodylen", I(4)},
		{rpl, "get_body", N},
		{rpl, "gete_body", S("")},
		{rpl, "getw_body", S("<null>")},
		{rpl, "get_bodylen", I(0)},

		{inv, "get_duri", N},
		{inv, "gete_duri", S("")},
		{inv, "getw_duri", S("<null>")},
		{rewritten, "get_duri", S("sip:proxy.example:5080")},
		{inv, "get_nhuri", S("sip:bob@biloxi.example.com:5070;transport=tcp")},
		{rewritten, "get_nhuri", S("sip:proxy.example:5080")},
		{rpl, "get_nhuri", N},

		{inv, "get_srcip", S("192.0.2.10")},
		{inv, "get_srcport", I(40000)},
		{inv, "get_srcuri", S("sip:192.0.2.10:40000;transport=tcp")},
		{rpl, "get_srcuri", S("sip:10.0.0.2:5060")},
		{rewritten, "get_srcuri", S("sip:[2001:db8::9]:443;transport=ws")},
		{inv, "get_srcaddr_sock", S("tcp:192.0.2.10:40000")},
		{rewritten, "get_srcaddr_sock", S("ws:[2001:db8::9]:443")},
		{inv, "get_proto", S("tcp")},
		{rewritten, "get_proto", S("wss")},
		{inv, "get_protoid", I(2)},
		{rewritten, "get_protoid", I(6)},
		{faked, "get_protoid", I(1)},

		{inv, "get_rcvip", S("192.0.2.1")},
		{inv, "get_rcvport", I(5060)},
		{inv, "get_rcvaddr_sock", S("tcp:192.0.2.1:5060")},
		{rpl, "get_rcvip", N},
		{rpl, "get_rcvport", I(0)},
		{rpl, "get_rcvaddr_sock", S("")},
		{inv, "get_rcvadvip", S("192.0.2.1")},
		{inv, "get_rcvadvport", I(5060)},
		{inv, "get_rcv_sock_name", N},
		{inv, "get_send_sock", N},
		{inv, "get_send_sock_name", N},
		{inv, "get_send_sock_port", I(0)},
		{inv, "get_conid", I(-1)},
		{inv, "get_timestamp", I(1700000000)},
	}
	m := New(DefaultConfig(), WithClock(fixedClock))
	for _, tt := range tests {
		c := &kemi.Ctx{Msg: tt.msg}
		if got := call(t, m, c, tt.fn); got != tt.want {
			t.Errorf("%s on %s = %#v, want %#v", tt.fn, tt.msg.Method(), got, tt.want)
		}
	}

	buf := call(t, m, &kemi.Ctx{Msg: inv}, "get_msgbuf")
	if !strings.HasPrefix(buf.S, "INVITE sip:bob@") || !strings.HasSuffix(buf.S, "\r\n\r\nv=0\n") {
		t.Errorf("get_msgbuf = %q", buf.S)
	}
	if n := call(t, m, &kemi.Ctx{Msg: inv}, "get_msglen"); n != I(len(buf.S)) {
		t.Errorf("get_msglen = %#v, want %d", n, len(buf.S))
	}
}

func TestSockets(t *testing.T) {
	m := New(DefaultConfig(), WithSockets(fakeSockets{}))
	msg := parse(t, invite)
	msg.Proto, msg.DstIP, msg.DstPort = "udp", "192.0.2.1", 5060
	c := &kemi.Ctx{Msg: msg}
	for _, tt := range []struct {
		fn   string
		want val.Value
	}{
		{"get_rcv_sock_name", S("lan")},
		{"get_rcvadvip", S("203.0.113.5")},
		{"get_rcvadvport", I(5080)},
		{"get_rcvip", S("192.0.2.1")},
		{"get_send_sock", S("udp:192.0.2.1:5060")},
		{"get_send_sock_name", S("wan")},
		{"get_send_sock_port", I(5060)},
		{"get_conid", I(42)},
	} {
		if got := call(t, m, c, tt.fn); got != tt.want {
			t.Errorf("%s = %#v, want %#v", tt.fn, got, tt.want)
		}
	}
}

func TestDefinesAndEnv(t *testing.T) {
	env := map[string]string{"PORT": "5060", "NAME": "edge", "PART": "12ab"}
	m := New(Config{Defines: map[string]string{"WITH_AUTH": "", "DBURL": "mysql://x", "LIMIT": "100", "NEG": "-5x"}},
		WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	m.Define("MOD_htable", "")
	c := &kemi.Ctx{Msg: sipmsg.Faked()}
	tests := []struct {
		fn, arg string
		want    val.Value
	}{
		{"ifdef", "WITH_AUTH", B(true)},
		{"ifdef", "WITH_NAT", B(false)},
		{"ifndef", "WITH_NAT", B(true)},
		{"ifndef", "WITH_AUTH", B(false)},
		{"ifdef", "KAMAILIO_5", B(true)},
		{"ifdef", "KAMAILIO_5_6_3", B(true)},
		{"ifdef", "MOD_htable", B(true)},
		{"get_def", "DBURL", S("mysql://x")},
		{"get_def", "WITH_AUTH", S("")},
		{"get_def", "MISSING", S("")},
		{"get_defn", "LIMIT", I(100)},
		{"get_defn", "NEG", I(-5)},
		{"get_defn", "DBURL", I(0)},
		{"get_defn", "MISSING", I(0)},
		{"get_env", "NAME", S("edge")},
		{"get_env", "NOPE", S("")},
		{"get_env", "", S("")},
		{"get_envn", "PORT", I(5060)},
		{"get_envn", "PART", I(12)},
		{"get_envn", "NAME", I(0)},
		{"get_envn", "NOPE", I(0)},
	}
	for _, tt := range tests {
		if got := call(t, m, c, tt.fn, tt.arg); got != tt.want {
			t.Errorf("%s(%q) = %#v, want %#v", tt.fn, tt.arg, got, tt.want)
		}
	}
}

func TestAddrHelpers(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{`"A, B" <sip:a@b>;tag=1`, "sip:a@b", true},
		{`sip:a@b;tag=1`, "sip:a@b", true},
		{`<sip:a@b;lr>, <sip:c@d>`, "sip:a@b;lr", true},
		{`"quoted <sip:fake@x>" <sip:real@y>`, "sip:real@y", true},
		{`<>`, "", false},
		{``, "", false},
	} {
		got, ok := addrURI(firstAddr(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("addrURI(%q) = %q, %v", tt.in, got, ok)
		}
	}
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{`Digest username="bob", realm="r"`, "bob", true},
		{`digest realm="r",username=bob`, "bob", true},
		{`Basic Ym9iOnB3`, "", false},
		{`Digest realm="a,username=x"`, "", false},
	} {
		got, ok := digestUsername(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("digestUsername(%q) = %q, %v", tt.in, got, ok)
		}
	}
}

func TestAUSkipsAckCancel(t *testing.T) {
	raw := strings.Replace(strings.Replace(invite, "INVITE sip", "ACK sip", 1), "1 INVITE", "1 ACK", 1)
	m := New(DefaultConfig())
	if got := call(t, m, &kemi.Ctx{Msg: parse(t, raw)}, "get_au"); got != N {
		t.Errorf("get_au on ACK = %#v", got)
	}
}

func TestExportsMatchCatalog(t *testing.T) {
	exps := New(DefaultConfig()).Exports()
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skipf("catalog not available: %v", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= 4 && cols[0] == "kx" {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range exps {
		var ps []string
		for _, p := range e.Params {
			ps = append(ps, p.String())
		}
		params := strings.Join(ps, ",")
		if params == "" {
			params = "none"
		}
		got[e.Name] = params + " -> " + e.Ret.String()
	}
	for name, sig := range want {
		if got[name] != sig {
			t.Errorf("kx.%s: got %q, catalog %q", name, got[name], sig)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("kx.%s is not in the catalog", name)
		}
	}
	kemi.NewTable().Register(exps...)
}
