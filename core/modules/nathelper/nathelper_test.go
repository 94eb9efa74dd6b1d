package nathelper

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/registrar"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

type fakeReplier struct{ sent []*sip.Response }

func (f *fakeReplier) SendReply(_ *sipmsg.Msg, res *sip.Response) error {
	f.sent = append(f.sent, res)
	return nil
}

// msg builds a request; hdrs are extra header lines, body an SDP body.
type opts struct {
	method, ruri, via, hdrs, body string
	proto, src                    string
	port                          int
}

func build(t *testing.T, o opts) *kemi.Ctx {
	t.Helper()
	if o.method == "" {
		o.method = "INVITE"
	}
	if o.ruri == "" {
		o.ruri = "sip:bob@example.com"
	}
	if o.via == "" {
		o.via = "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK-1;rport"
	}
	if o.proto == "" {
		o.proto = "udp"
	}
	if o.src == "" {
		o.src = "203.0.113.7"
	}
	if o.port == 0 {
		o.port = 40000
	}
	ct := ""
	if o.body != "" {
		ct = "Content-Type: application/sdp\n"
	}
	raw := o.method + " " + o.ruri + " SIP/2.0\n" +
		"Via: " + o.via + "\n" +
		"From: <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:bob@example.com>\n" +
		"Call-ID: c1\n" +
		"CSeq: 1 " + o.method + "\n" +
		o.hdrs + ct +
		"Content-Length: " + itoa(len(strings.ReplaceAll(o.body, "\n", "\r\n"))) + "\n\n" + o.body
	m, err := sipmsg.Parse([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	m.Proto, m.SrcIP, m.SrcPort, m.DstIP, m.DstPort = o.proto, o.src, o.port, "10.0.0.1", 5060
	m.Replier = &fakeReplier{}
	return &kemi.Ctx{Msg: m, Route: kemi.RouteRequest}
}

func itoa(n int) string { return strconv.Itoa(n) }

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...any) int64 {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name != name {
			continue
		}
		vs := make([]val.Value, len(args))
		for i, a := range args {
			switch x := a.(type) {
			case int:
				vs[i] = val.OfInt(int64(x))
			case string:
				vs[i] = val.OfStr(x)
			}
			if (vs[i].Kind == val.Int) != (e.Params[i] == kemi.PInt) {
				t.Fatalf("%s arg %d has the wrong type", name, i)
			}
		}
		v := e.Fn(c, vs)
		if v.Kind != val.Int {
			t.Fatalf("%s returned %#v", name, v)
		}
		return v.I
	}
	t.Fatalf("no export %s", name)
	return 0
}

func mod(t *testing.T, cfg Config) *Module {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sent applies the queued edits and returns the Contact lines of the
// forwarded request.
func sent(c *kemi.Ctx) string {
	out := c.Msg.Req.Clone()
	c.Msg.ApplyEdits(out)
	var lines []string
	for _, h := range out.Headers() {
		if sipmsg.HeaderMatches(h, "contact") {
			lines = append(lines, h.Value())
		}
	}
	return strings.Join(lines, " | ")
}

const sdpPriv = "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
const sdpPub = "v=0\no=- 1 1 IN IP4 203.0.113.7\ns=-\nc=IN IP4 203.0.113.7\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
const sdpMediaPriv = "v=0\no=- 1 1 IN IP4 203.0.113.7\ns=-\nc=IN IP4 203.0.113.7\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 192.168.0.9\n"

func TestNatUACTest(t *testing.T) {
	priv := "Contact: <sip:alice@192.168.1.2:5060>\n"
	pub := "Contact: <sip:alice@203.0.113.7:40000>\n"
	tests := []struct {
		name  string
		flags int
		o     opts
		du    string
		want  int64
	}{
		{"1 private contact", 1, opts{hdrs: priv}, "", 1},
		{"1 public contact", 1, opts{hdrs: pub}, "", -1},
		{"1 no contact", 1, opts{}, "", -1},
		{"1 star", 1, opts{hdrs: "Contact: *\n"}, "", -1},
		{"1 hostname", 1, opts{hdrs: "Contact: <sip:alice@pc.example.com>\n"}, "", -1},
		{"1 shared address space", 1, opts{hdrs: "Contact: <sip:a@100.64.1.1>\n"}, "", 1},
		{"2 via host is not the source", 2, opts{}, "", 1},
		{"2 via host is the source", 2, opts{via: "SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK-1"}, "", -1},
		{"4 private via", 4, opts{}, "", 1},
		{"4 public via", 4, opts{via: "SIP/2.0/UDP 203.0.113.7;branch=z9hG4bK-1"}, "", -1},
		{"8 private sdp", 8, opts{body: sdpPriv}, "", 1},
		{"8 private media c=", 8, opts{body: sdpMediaPriv}, "", 1},
		{"8 public sdp", 8, opts{body: sdpPub}, "", -1},
		{"8 no sdp", 8, opts{}, "", -1},
		{"16 via port differs", 16, opts{}, "", 1},
		{"16 no via port means 5060", 16, opts{via: "SIP/2.0/UDP 192.168.1.2;branch=z9hG4bK-1", port: 5060}, "", -1},
		{"32 private source", 32, opts{src: "10.1.2.3"}, "", 1},
		{"32 public source", 32, opts{}, "", -1},
		{"64 websocket", 64, opts{proto: "ws"}, "", 1},
		{"64 udp", 64, opts{}, "", -1},
		{"128 contact port differs", 128, opts{hdrs: priv}, "", 1},
		{"128 contact port is the source", 128, opts{hdrs: pub}, "", -1},
		{"128 no contact port means 5060", 128, opts{hdrs: "Contact: <sip:a@1.2.3.4>\n", port: 5060}, "", -1},
		{"256 sdp c= is not the source", 256, opts{body: sdpPriv}, "", 1},
		{"256 sdp c= is the source", 256, opts{body: sdpPub}, "", -1},
		{"512 no $du", 512, opts{}, "", -1},
		{"512 ws R-URI", 512, opts{ruri: "sip:bob@example.com;transport=ws"}, "", 1},
		{"512 $du elsewhere", 512, opts{ruri: "sip:bob@198.51.100.1"}, "sip:198.51.100.2", 1},
		{"512 $du other port", 512, opts{ruri: "sip:bob@198.51.100.1"}, "sip:198.51.100.1:5080", 1},
		{"512 $du same", 512, opts{ruri: "sip:bob@198.51.100.1:5060"}, "sip:198.51.100.1", -1},
		{"19 = 1+2+16 all public", 19, opts{hdrs: pub, via: "SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK-1"}, "", -1},
		{"19 rport only", 19, opts{hdrs: pub, via: "SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK-1"}, "", 1},
		{"0 no test", 0, opts{hdrs: priv}, "", -1},
	}
	m := mod(t, DefaultConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := build(t, tt.o)
			c.Msg.DstURI = tt.du
			if got := call(t, m, c, "nat_uac_test", tt.flags); got != tt.want {
				t.Errorf("nat_uac_test(%d) = %d, want %d", tt.flags, got, tt.want)
			}
		})
	}
	// 512 on replies: the 2nd Via
	for _, tt := range []struct {
		via2 string
		want int64
	}{
		{"SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-2", 1},
		{"SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK-2;rport=40000;received=203.0.113.7", 1},
		{"SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK-2;received=203.0.113.7", 1},
		{"SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK-2;received=203.0.113.7", -1},
		{"SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK-2", -1},
	} {
		raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1\r\nVia: " + tt.via2 +
			"\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
		rm, err := sipmsg.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		rm.SrcIP, rm.SrcPort, rm.Proto = "198.51.100.1", 5060, "udp"
		if got := call(t, m, &kemi.Ctx{Msg: rm, Route: kemi.RouteReply}, "nat_uac_test", 512); got != tt.want {
			t.Errorf("reply via2 %q: %d, want %d", tt.via2, got, tt.want)
		}
	}
}

func TestIsRFC1918(t *testing.T) {
	for _, tt := range []struct {
		addr string
		mode int
		want int64
	}{
		{"10.1.2.3", 1, 1}, {"172.16.0.1", 1, 1}, {"172.31.255.255", 1, 1}, {"172.32.0.1", 1, -1},
		{"192.168.44.1", 1, 1}, {"100.64.0.1", 1, 1}, {"100.127.255.255", 1, 1}, {"100.128.0.1", 1, -1},
		{"192.0.0.5", 1, 1}, {"192.0.0.200", 1, 1}, {"192.0.0.200", 0, -1}, {"192.0.0.5", 0, 1},
		{"8.8.8.8", 1, -1}, {"", 1, -1}, {"fd00::1", 1, -1}, {"example.com", 1, -1},
	} {
		cfg := DefaultConfig()
		cfg.NATAddrMode = tt.mode
		m := mod(t, cfg)
		if got := call(t, m, build(t, opts{}), "is_rfc1918", tt.addr); got != tt.want {
			t.Errorf("is_rfc1918(%q) mode %d = %d, want %d", tt.addr, tt.mode, got, tt.want)
		}
	}
}

func TestFixNatedRegister(t *testing.T) {
	for _, tt := range []struct {
		name, avp, proto, src string
		want                  string
	}{
		{"udp", "$avp(RECEIVED)", "udp", "203.0.113.7", "sip:203.0.113.7:40000"},
		{"tcp", "$avp(RECEIVED)", "tcp", "203.0.113.7", "sip:203.0.113.7:40000;transport=tcp"},
		{"ipv6 tls", "$avp(s:rcv)", "tls", "2001:db8::1", "sip:[2001:db8::1]:40000;transport=tls"},
		{"no received_avp", "", "udp", "203.0.113.7", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ReceivedAVP = tt.avp
			m := mod(t, cfg)
			c := build(t, opts{method: "REGISTER", proto: tt.proto, src: tt.src})
			if got := call(t, m, c, "fix_nated_register"); got != 1 {
				t.Errorf("fix_nated_register = %d", got)
			}
			got := ""
			for _, vs := range c.Msg.AVPs {
				got = vs[0].S
			}
			if got != tt.want {
				t.Errorf("AVP %q, want %q", got, tt.want)
			}
			if tt.avp != "" {
				name, _ := avpName(tt.avp)
				if v, _ := pv.Get(c, "$avp("+name+")"); v.S != tt.want {
					t.Errorf("$avp = %v", v)
				}
			}
		})
	}
	if _, err := New(Config{ReceivedAVP: "RECEIVED"}); err == nil {
		t.Error("bad received_avp accepted")
	}
}

func TestContactRewrites(t *testing.T) {
	tests := []struct {
		name    string
		contact string
		src     string
		proto   string
		port    int
		fn      string
		args    []any
		want    int64
		sent    string // Contact values after the edits ("" = unchanged)
	}{
		{name: "fix_nated_contact", contact: "\"Al\" <sip:alice@192.168.1.2:5062;transport=udp;maddr=10.0.0.9>;expires=60, <sip:alice@10.1.1.1>",
			fn: "fix_nated_contact", want: 1,
			sent: "\"Al\" <sip:alice@203.0.113.7:40000;transport=udp>;expires=60 | <sip:alice@10.1.1.1>"},
		{name: "fix_nated_contact ipv6", contact: "<sip:alice@[fd00::2]:5060>", src: "2001:db8::7", fn: "fix_nated_contact", want: 1,
			sent: "<sip:alice@[2001:db8::7]:40000>"},
		{name: "fix_nated_contact no user", contact: "<sip:192.168.1.2>", fn: "fix_nated_contact", want: 1,
			sent: "<sip:203.0.113.7:40000>"},
		{name: "fix_nated_contact without contact", fn: "fix_nated_contact", want: -1},
		{name: "fix_nated_contact star", contact: "*", fn: "fix_nated_contact", want: -1},
		{name: "set_contact_alias", contact: "<sip:alice@192.168.1.2:5060;transport=tcp>;expires=60", proto: "tcp",
			fn: "set_contact_alias", want: 1,
			sent: "<sip:alice@192.168.1.2:5060;transport=tcp;alias=203.0.113.7~40000~2>;expires=60"},
		{name: "set_contact_alias_trim", contact: "<sip:alice@192.168.1.2;alias=1.1.1.1~5060~1>",
			fn: "set_contact_alias_trim", want: 1, sent: "<sip:alice@192.168.1.2;alias=203.0.113.7~40000~1>"},
		{name: "add_contact_alias", contact: "sip:alice@192.168.1.2:5060;transport=tcp", proto: "tcp",
			fn: "add_contact_alias", want: 1, sent: "<sip:alice@192.168.1.2:5060;alias=203.0.113.7~40000~2>;transport=tcp"},
		{name: "add_contact_alias before uri params", contact: "<sip:alice@192.168.1.2;ob>",
			fn: "add_contact_alias", want: 1, sent: "<sip:alice@192.168.1.2;alias=203.0.113.7~40000~1;ob>"},
		{name: "add_contact_alias not needed", contact: "<sip:alice@203.0.113.7:40000>",
			fn: "add_contact_alias", want: 2},
		{name: "add_contact_alias not needed, port 5060 implied", contact: "<sip:alice@203.0.113.7>", port: 5060,
			fn: "add_contact_alias", want: 2},
		{name: "add_contact_alias other transport", contact: "<sip:alice@203.0.113.7:40000;transport=tcp>",
			fn: "add_contact_alias", want: 1, sent: "<sip:alice@203.0.113.7:40000;alias=203.0.113.7~40000~1;transport=tcp>"},
		{name: "add_contact_alias no contact", fn: "add_contact_alias", want: 2},
		{name: "add_contact_alias_addr", contact: "<sip:alice@192.168.1.2>", fn: "add_contact_alias_addr",
			args: []any{"198.51.100.4", "5080", "tls"}, want: 1, sent: "<sip:alice@192.168.1.2;alias=198.51.100.4~5080~3>"},
		{name: "add_contact_alias_addr bad ip", contact: "<sip:alice@192.168.1.2>", fn: "add_contact_alias_addr",
			args: []any{"nope", "5080", "tls"}, want: -1},
		{name: "add_contact_alias_addr bad port", contact: "<sip:alice@192.168.1.2>", fn: "add_contact_alias_addr",
			args: []any{"1.2.3.4", "70000", "udp"}, want: -1},
		{name: "add_contact_alias_addr bad proto", contact: "<sip:alice@192.168.1.2>", fn: "add_contact_alias_addr",
			args: []any{"1.2.3.4", "5060", "carrier-pigeon"}, want: -1},
		{name: "add_contact_alias_addr no contact", fn: "add_contact_alias_addr", args: []any{"1.2.3.4", "5060", "udp"}, want: 2},
		{name: "add_rcv_param header param", contact: "<sip:a@192.168.1.2>;expires=60, <sip:b@192.168.1.3>",
			fn: "add_rcv_param", args: []any{0}, want: 1,
			sent: "<sip:a@192.168.1.2>;expires=60;received=\"sip:203.0.113.7:40000\" | <sip:b@192.168.1.3>;received=\"sip:203.0.113.7:40000\""},
		{name: "add_rcv_param uri param", contact: "<sip:a@192.168.1.2>", fn: "add_rcv_param", args: []any{1}, want: 1,
			sent: "<sip:a@192.168.1.2;received=sip:203.0.113.7:40000>"},
		{name: "add_rcv_param uri param over tcp", contact: "<sip:a@192.168.1.2>", proto: "tcp", fn: "add_rcv_param", args: []any{1}, want: -1},
	}
	m := mod(t, DefaultConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdrs := ""
			if tt.contact != "" {
				hdrs = "Contact: " + tt.contact + "\n"
			}
			c := build(t, opts{hdrs: hdrs, src: tt.src, proto: tt.proto, port: tt.port})
			before := sent(c)
			if got := call(t, m, c, tt.fn, tt.args...); got != tt.want {
				t.Fatalf("%s = %d, want %d", tt.fn, got, tt.want)
			}
			want := tt.sent
			if want == "" {
				want = before
			}
			if got := sent(c); got != want {
				t.Errorf("Contact sent\n got  %s\n want %s", got, want)
			}
			// the received message is untouched
			if got, _ := c.Msg.HeaderValue("contact"); tt.contact != "" && tt.contact != "*" && strings.Contains(got, "203.0.113.7~") {
				t.Errorf("original changed: %s", got)
			}
		})
	}
}

func TestContactTwice(t *testing.T) {
	m := mod(t, DefaultConfig())
	c := build(t, opts{hdrs: "Contact: <sip:alice@192.168.1.2:5060>\n"})
	if call(t, m, c, "fix_nated_contact") != 1 {
		t.Fatal("first call")
	}
	for _, fn := range []string{"fix_nated_contact", "set_contact_alias"} {
		if got := call(t, m, c, fn); got != -1 {
			t.Errorf("%s after fix_nated_contact = %d", fn, got)
		}
	}
	// the fixed contact is the source address: nothing to add (Kamailio too)
	if got := call(t, m, c, "add_contact_alias"); got != 2 {
		t.Errorf("add_contact_alias after fix_nated_contact = %d", got)
	}
	if got := call(t, m, c, "add_contact_alias_addr", "1.2.3.4", "5060", "udp"); got != -1 {
		t.Errorf("add_contact_alias_addr after fix_nated_contact = %d", got)
	}
	// later tests see the fixed contact, as in Kamailio
	if got := call(t, m, c, "nat_uac_test", 1|128); got != -1 {
		t.Errorf("nat_uac_test after fix = %d", got)
	}
	// add_rcv_param composes with the earlier change
	call(t, m, c, "add_rcv_param", 0)
	if got := sent(c); got != "<sip:alice@203.0.113.7:40000>;received=\"sip:203.0.113.7:40000\"" {
		t.Errorf("sent %s", got)
	}
	c = build(t, opts{hdrs: "Contact: <sip:alice@192.168.1.2:5060>\n"})
	call(t, m, c, "add_contact_alias")
	if got := call(t, m, c, "add_contact_alias"); got != -1 {
		t.Errorf("second add_contact_alias = %d", got)
	}
	// add_contact_alias does not change what later readers see
	if got := call(t, m, c, "nat_uac_test", 1); got != 1 {
		t.Errorf("nat_uac_test after add_contact_alias = %d", got)
	}
}

func TestHandleRURIAlias(t *testing.T) {
	tests := []struct {
		name     string
		ruri     string
		fn       string
		args     []any
		want     int64
		wantRURI string
		wantDU   string
	}{
		{"udp", "sip:alice@192.168.1.2:5060;alias=203.0.113.7~40000~1", "handle_ruri_alias", nil, 1,
			"sip:alice@192.168.1.2:5060", "sip:203.0.113.7:40000"},
		{"tcp, params kept", "sip:alice@192.168.1.2;ob;alias=203.0.113.7~40000~2;x=y", "handle_ruri_alias", nil, 1,
			"sip:alice@192.168.1.2;ob;x=y", "sip:203.0.113.7:40000;transport=tcp"},
		{"wss prints ws", "sip:alice@h;alias=203.0.113.7~443~6", "handle_ruri_alias", nil, 1,
			"sip:alice@h", "sip:203.0.113.7:443;transport=ws"},
		{"first alias", "sip:a@h;alias=1.1.1.1~1~1;alias=2.2.2.2~2~1", "handle_ruri_alias_mode", []any{0}, 1,
			"sip:a@h;alias=2.2.2.2~2~1", "sip:1.1.1.1:1"},
		{"last alias", "sip:a@h;alias=1.1.1.1~1~1;alias=2.2.2.2~2~1", "handle_ruri_alias_mode", []any{1}, 1,
			"sip:a@h;alias=1.1.1.1~1~1", "sip:2.2.2.2:2"},
		{"no params", "sip:alice@192.168.1.2", "handle_ruri_alias", nil, 2, "sip:alice@192.168.1.2", ""},
		{"no alias", "sip:alice@192.168.1.2;transport=tcp", "handle_ruri_alias", nil, 2, "sip:alice@192.168.1.2;transport=tcp", ""},
		{"no tilde", "sip:a@h;alias=1.1.1.1", "handle_ruri_alias", nil, -1, "sip:a@h;alias=1.1.1.1", ""},
		{"no proto", "sip:a@h;alias=1.1.1.1~5060~", "handle_ruri_alias", nil, -1, "sip:a@h;alias=1.1.1.1~5060~", ""},
		{"bad proto", "sip:a@h;alias=1.1.1.1~5060~9", "handle_ruri_alias", nil, -1, "sip:a@h;alias=1.1.1.1~5060~9", ""},
		{"junk after proto", "sip:a@h;alias=1.1.1.1~5060~12", "handle_ruri_alias", nil, -1, "sip:a@h;alias=1.1.1.1~5060~12", ""},
	}
	m := mod(t, DefaultConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := build(t, opts{})
			// a rewritten R-URI keeps its text (sipgo's rendering of the
			// request line merges parameters with the same name)
			if err := c.Msg.SetRURI(tt.ruri); err != nil {
				t.Fatal(err)
			}
			if got := call(t, m, c, tt.fn, tt.args...); got != tt.want {
				t.Fatalf("%s = %d, want %d", tt.fn, got, tt.want)
			}
			if c.Msg.RURI() != tt.wantRURI || c.Msg.DstURI != tt.wantDU {
				t.Errorf("ruri %s du %s", c.Msg.RURI(), c.Msg.DstURI)
			}
		})
	}
}

func TestSetAliasToPV(t *testing.T) {
	m := mod(t, DefaultConfig())
	c := build(t, opts{hdrs: "Contact: <sip:alice@192.168.1.2;alias=203.0.113.7~40000~2>;expires=60\n"})
	if got := call(t, m, c, "set_alias_to_pv", "$avp(alias)"); got != 1 {
		t.Fatalf("set_alias_to_pv = %d", got)
	}
	if v, _ := pv.Get(c, "$avp(alias)"); v.S != "sip:203.0.113.7:40000;transport=tcp" {
		t.Errorf("$avp(alias) = %v", v)
	}
	c = build(t, opts{hdrs: "Contact: <sip:alice@192.168.1.2>\n"})
	if got := call(t, m, c, "set_alias_to_pv", "$avp(alias)"); got != -1 {
		t.Errorf("no alias: %d", got)
	}
	c = build(t, opts{hdrs: "Contact: <sip:alice@1.2.3.4;alias=203.0.113.7~40000~1>\n"})
	if got := call(t, m, c, "set_alias_to_pv", "$ci"); got != -1 {
		t.Errorf("read-only pv: %d", got)
	}
}

// TestWithRegistrar runs the usual NAT handling of a REGISTER: the
// registrar saves the received address of fix_nated_register, and the
// address fix_nated_contact wrote.
func TestWithRegistrar(t *testing.T) {
	ul, err := usrloc.New(usrloc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	rcfg := registrar.DefaultConfig()
	rcfg.ReceivedAVP = "$avp(RECEIVED)"
	reg, err := registrar.New(rcfg, ul)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ReceivedAVP = "$avp(RECEIVED)"
	m := mod(t, cfg)
	save := func(c *kemi.Ctx) {
		for _, e := range reg.Exports() {
			if e.Name == "save" {
				if v := e.Fn(c, []val.Value{val.OfStr("location"), val.OfInt(0)}); v.I != 1 {
					t.Fatalf("save = %d", v.I)
				}
			}
		}
	}
	c := build(t, opts{method: "REGISTER", ruri: "sip:example.com", hdrs: "Contact: <sip:alice@192.168.1.2:5060>\n"})
	if call(t, m, c, "nat_uac_test", 19) != 1 || call(t, m, c, "fix_nated_register") != 1 {
		t.Fatal("nat handling")
	}
	save(c)
	cs := ul.Lookup("bob")
	if len(cs) != 1 || cs[0].URI != "sip:alice@192.168.1.2:5060" || cs[0].Received != "sip:203.0.113.7:40000" {
		t.Fatalf("saved %+v", cs)
	}
	if r := c.Msg.Replier.(*fakeReplier); !strings.Contains(r.sent[0].String(), ";received=\"sip:203.0.113.7:40000\"") {
		t.Errorf("reply %s", r.sent[0])
	}

	c = build(t, opts{method: "REGISTER", ruri: "sip:example.com", hdrs: "Contact: <sip:carol@192.168.1.5:5060>\n"})
	call(t, m, c, "fix_nated_contact")
	save(c)
	if cs := ul.Lookup("bob"); len(cs) != 2 {
		t.Fatalf("%d bindings", len(cs))
	}
	found := false
	for _, ct := range ul.Lookup("bob") {
		found = found || ct.URI == "sip:carol@203.0.113.7:40000"
	}
	if !found {
		t.Errorf("fixed contact not saved: %+v", ul.Lookup("bob"))
	}
}

func TestExportsMatchCatalog(t *testing.T) {
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skip("catalog.tsv not available:", err)
	}
	defer f.Close()
	type sig struct{ params, ret string }
	cat := map[string]sig{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) >= 4 && col[0] == "nathelper" {
			cat[col[1]] = sig{col[2], col[3]}
		}
	}
	exps := mod(t, DefaultConfig()).Exports()
	seen := map[string]bool{}
	for _, e := range exps {
		want, ok := cat[e.Name]
		if !ok || e.Module != "nathelper" {
			t.Errorf("%s.%s: not in the catalog", e.Module, e.Name)
			continue
		}
		seen[e.Name] = true
		params := "none"
		if len(e.Params) > 0 {
			ps := make([]string, len(e.Params))
			for i, p := range e.Params {
				ps[i] = p.String()
			}
			params = strings.Join(ps, ",")
		}
		if params != want.params || e.Ret.String() != want.ret {
			t.Errorf("%s: (%s) -> %s, catalog (%s) -> %s", e.Name, params, e.Ret, want.params, want.ret)
		}
	}
	for name := range cat {
		if !seen[name] && name != "fix_nated_sdp" && name != "fix_nated_sdp_ip" {
			t.Errorf("catalog nathelper.%s not exported", name)
		}
	}
	kemi.NewTable().Register(exps...)
}
