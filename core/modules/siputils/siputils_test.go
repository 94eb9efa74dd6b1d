package siputils

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

type recorder struct{ sent []*sip.Response }

func (r *recorder) SendReply(_ *sipmsg.Msg, res *sip.Response) error {
	r.sent = append(r.sent, res)
	return nil
}

// me is this proxy: 198.51.100.1:5060 over udp and tcp, named proxy.example.net.
type me struct{}

func (me) IsMyself(host string, port int, proto string) bool {
	if host != "198.51.100.1" && host != "proxy.example.net" && host != "2001:db8::1" {
		return false
	}
	if port != 0 && port != 5060 {
		return false
	}
	return proto == "" || proto == "udp" || proto == "tcp"
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func request(method, ruri, extra string) string {
	return crlf(method + " " + ruri + " SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		"From: <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:bob@example.com>\n" +
		"Call-ID: c1@192.0.2.10\n" +
		"CSeq: 1 " + method + "\n" +
		extra +
		"Content-Length: 0\n\n")
}

func reply(extra string) string {
	return crlf("SIP/2.0 200 OK\n" +
		"Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-2\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		extra +
		"From: <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:bob@example.com>;tag=b1\n" +
		"Call-ID: c1@192.0.2.10\n" +
		"CSeq: 1 INVITE\n" +
		"Content-Length: 0\n\n")
}

func ctxFor(t *testing.T, raw string) (*kemi.Ctx, *recorder) {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	r := &recorder{}
	m.Replier = r
	m.Proto, m.SrcIP, m.SrcPort = "udp", "192.0.2.20", 5060
	return &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}, r
}

func TestParseURI(t *testing.T) {
	good := []struct {
		in                             string
		typ                            URIType
		user, pass, host, port, params string
		headers                        string
	}{
		{"sip:bob@example.com", URISip, "bob", "", "example.com", "", "", ""},
		{"SIP:bob@example.com:5070;transport=tcp?subject=x", URISip, "bob", "", "example.com", "5070", "transport=tcp", "subject=x"},
		{"sips:alice:secret@[2001:db8::1]:5061;lr", URISips, "alice", "secret", "[2001:db8::1]", "5061", "lr", ""},
		{"sip:example.com", URISip, "", "", "example.com", "", "", ""},
		{"sip:example.com:5060", URISip, "", "", "example.com", "5060", "", ""},
		{"sip:ex_ample.com", URISip, "", "", "ex_ample.com", "", "", ""}, // no user: no host check
		{"sip:+4312345;npdi@gw.example.com;user=phone", URISip, "+4312345;npdi", "", "gw.example.com", "", "user=phone", ""},
		{"sip:[2001:db8::1]", URISip, "", "", "[2001:db8::1]", "", "", ""},
		{"tel:+43-1-234;phone-context=example.com", URITel, "+43-1-234", "", "", "", "phone-context=example.com", ""},
		{"urn:service:sos", URIUrn, "", "", "service:sos", "", "", ""},
		{"sip:bob@example.com:", URISip, "bob", "", "example.com", "", "", ""},
	}
	for _, tc := range good {
		u, err := ParseURI(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if u.Type != tc.typ || u.User != tc.user || u.Passwd != tc.pass || u.Host != tc.host ||
			u.Port != tc.port || u.Params != tc.params || u.Headers != tc.headers {
			t.Errorf("%q: got %+v", tc.in, *u)
		}
	}
	bad := []string{
		"", "sip:", "sip", "http://example.com", "mailto:bob@example.com", "sipx:bob@example.com",
		"sip:@example.com", "sip::pw@example.com", "sip:bob@", "sip:bob@ex_ample.com",
		"sip:bob@-example.com", "sip:bob@example.com:99999", "sip:bob@example.com:123456",
		"sip:bob@example.com:50a", "sip:example.com:abc", "sip:bob@host@other", "sip:[2001:db8::1",
		"sip:[2001:db8::1]x", "sip:bob@example.com?a=b;c", "sip:b[o]b@example.com", "sip:bob:p:w@example.com",
		"sip:]x",
	}
	for _, in := range bad {
		if _, err := ParseURI(in); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestURIEdit(t *testing.T) {
	tests := []struct {
		in, rm, rmWant, add, addWant string
	}{
		{"sip:b@h;a=1;lr;c=3?x=y", "LR", "sip:b@h;a=1;c=3?x=y", "p=1", "sip:b@h;a=1;lr;c=3;p=1?x=y"},
		{"sip:b@h;a=1", "a", "sip:b@h", "lr", "sip:b@h;a=1;lr"},
		{"sip:b@h?x=y", "a", "sip:b@h?x=y", "lr", "sip:b@h;lr?x=y"},
		{"sip:b@h", "a", "sip:b@h", "lr", "sip:b@h;lr"},
		{"sip:b@h;a;b", "b", "sip:b@h;a", "c", "sip:b@h;a;b;c"},
	}
	for _, tc := range tests {
		u, err := ParseURI(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got, _ := u.WithoutParam(tc.rm); got != tc.rmWant {
			t.Errorf("%q without %q = %q, want %q", tc.in, tc.rm, got, tc.rmWant)
		}
		if got := u.WithParam(tc.add); got != tc.addWant {
			t.Errorf("%q with %q = %q, want %q", tc.in, tc.add, got, tc.addWant)
		}
	}
}

func TestHasToTagAndKind(t *testing.T) {
	tests := []struct {
		name                  string
		raw                   string
		totag, isReq, isReply int
	}{
		{"initial INVITE", request("INVITE", "sip:bob@example.com", ""), -1, 1, -1},
		{"in-dialog BYE", strings.Replace(request("BYE", "sip:bob@192.0.2.30", ""), "To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=b1", 1), 1, 1, -1},
		{"upper-case TAG", strings.Replace(request("BYE", "sip:bob@192.0.2.30", ""), "To: <sip:bob@example.com>", "t: <sip:bob@example.com>;TAG=b1", 1), 1, 1, -1},
		{"reply", reply(""), 1, -1, 1},
		{"no To", strings.Replace(request("INVITE", "sip:bob@example.com", ""), "To: <sip:bob@example.com>\r\n", "", 1), -1, 1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := ctxFor(t, tc.raw)
			if got := HasToTag(c.Msg); got != tc.totag {
				t.Errorf("has_totag = %d", got)
			}
			if got := IsRequest(c.Msg); got != tc.isReq {
				t.Errorf("is_request = %d", got)
			}
			if got := IsReply(c.Msg); got != tc.isReply {
				t.Errorf("is_reply = %d", got)
			}
		})
	}
}

func TestIsFirstHop(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		srcIP   string
		srcPort int
		proto   string
		mode    int
		want    int
	}{
		{"request, one Via", request("INVITE", "sip:bob@example.com", ""), "192.0.2.10", 5060, "udp", 0, 1},
		{"request, two Vias", strings.Replace(request("INVITE", "sip:bob@example.com", ""), "Via:", "Via: SIP/2.0/UDP 192.0.2.99;branch=z9hG4bK-0\r\nVia:", 1), "192.0.2.10", 5060, "udp", 0, -1},
		{"request, two Vias in one header", strings.Replace(request("INVITE", "sip:bob@example.com", ""), "branch=z9hG4bK-1", "branch=z9hG4bK-1, SIP/2.0/UDP 192.0.2.99;branch=z9hG4bK-0", 1), "192.0.2.10", 5060, "udp", 0, -1},
		{"reply, no Record-Route", reply(""), "192.0.2.20", 5060, "udp", 0, 1},
		{"reply, top RR is me", reply("Record-Route: <sip:198.51.100.1;lr>\nRecord-Route: <sip:192.0.2.50;lr>\n"), "192.0.2.20", 5060, "udp", 0, 1},
		{"reply, top RR is me, from me: loop", reply("Record-Route: <sip:198.51.100.1;lr>\n"), "198.51.100.1", 5060, "udp", 0, -1},
		{"reply, from me on another port", reply("Record-Route: <sip:198.51.100.1;lr>\n"), "198.51.100.1", 5070, "udp", 0, 1},
		{"reply, from me over tcp, RR without transport", reply("Record-Route: <sip:198.51.100.1;lr>\n"), "198.51.100.1", 5060, "tcp", 0, 1},
		{"reply, RR with port and transport, from it", reply("Record-Route: <sip:198.51.100.1:5060;transport=tcp;lr>\n"), "198.51.100.1", 5060, "tcp", 0, -1},
		{"reply, top RR is not me", reply("Record-Route: <sip:192.0.2.50;lr>\nRecord-Route: <sip:198.51.100.1;lr>\n"), "192.0.2.20", 5060, "udp", 0, -1},
		{"reply, RR is my name, mode 0 needs an IP", reply("Record-Route: <sip:proxy.example.net;lr>\n"), "192.0.2.20", 5060, "udp", 0, -1},
		{"reply, RR is my name, mode 1", reply("Record-Route: <sip:proxy.example.net;lr>\n"), "192.0.2.20", 5060, "udp", 1, 1},
		{"reply, RR is my IPv6", reply("Record-Route: <sip:[2001:db8::1];lr>\n"), "192.0.2.20", 5060, "udp", 0, 1},
		{"reply, RR on another port of my host", reply("Record-Route: <sip:198.51.100.1:5080;lr>\n"), "192.0.2.20", 5060, "udp", 0, -1},
	}
	mod := New(DefaultConfig(), me{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := ctxFor(t, tc.raw)
			c.Msg.SrcIP, c.Msg.SrcPort, c.Msg.Proto = tc.srcIP, tc.srcPort, tc.proto
			if got := mod.IsFirstHop(c.Msg, tc.mode); got != tc.want {
				t.Fatalf("is_first_hop_mode(%d) = %d, want %d", tc.mode, got, tc.want)
			}
		})
	}
	// Without a Myself nothing is this proxy.
	c, _ := ctxFor(t, reply("Record-Route: <sip:198.51.100.1;lr>\n"))
	if got := New(DefaultConfig(), nil).IsFirstHop(c.Msg, 0); got != -1 {
		t.Fatalf("nil myself: %d", got)
	}
}

func TestRURIParams(t *testing.T) {
	ruri := "sip:bob@example.com;transport=tcp;lr;foo=Bar;gr"
	tests := []struct {
		name string
		fn   func(m *sipmsg.Msg) int
		want int
	}{
		{"uri_param lr", func(m *sipmsg.Msg) int { return URIParamValue(m, "lr", nil) }, 1},
		{"uri_param with value", func(m *sipmsg.Msg) int { return URIParamValue(m, "foo", nil) }, -1},
		{"uri_param is case-sensitive", func(m *sipmsg.Msg) int { return URIParamValue(m, "LR", nil) }, -1},
		{"uri_param missing", func(m *sipmsg.Msg) int { return URIParamValue(m, "maddr", nil) }, -1},
		{"uri_param_value", func(m *sipmsg.Msg) int { v := "Bar"; return URIParamValue(m, "foo", &v) }, 1},
		{"uri_param_value other value", func(m *sipmsg.Msg) int { v := "bar"; return URIParamValue(m, "foo", &v) }, -1},
		{"uri_param_any with value", func(m *sipmsg.Msg) int { return URIParamAny(m, "FOO") }, 1},
		{"uri_param_any without", func(m *sipmsg.Msg) int { return URIParamAny(m, "lr") }, 1},
		{"uri_param_any missing", func(m *sipmsg.Msg) int { return URIParamAny(m, "x") }, -1},
		{"is_gruu without value", IsGRUU, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := ctxFor(t, request("INVITE", ruri, ""))
			if got := tc.fn(c.Msg); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
	c, _ := ctxFor(t, request("INVITE", "sip:bob@example.com;gr=urn:uuid:f81d4fae", ""))
	if got := IsGRUU(c.Msg); got != 1 {
		t.Fatalf("is_gruu with value = %d", got)
	}
	c, _ = ctxFor(t, request("INVITE", "sip:bob@example.com", ""))
	if IsGRUU(c.Msg) != -1 || URIParamAny(c.Msg, "lr") != -1 {
		t.Fatalf("no params")
	}
	c, _ = ctxFor(t, reply(""))
	if IsGRUU(c.Msg) != -1 || URIParamValue(c.Msg, "lr", nil) != -1 || URIParamAny(c.Msg, "lr") != -1 ||
		URIParamRm(c.Msg, "lr") != -1 || AddURIParam(c.Msg, "lr") != -1 {
		t.Fatalf("reply has no R-URI")
	}
}

func TestRURIRewrite(t *testing.T) {
	c, _ := ctxFor(t, request("INVITE", "sip:bob@example.com;transport=tcp;lr", ""))
	m := c.Msg
	if got := URIParamRm(m, "TRANSPORT"); got != 1 || m.RURI() != "sip:bob@example.com;lr" {
		t.Fatalf("rm: %d %q", got, m.RURI())
	}
	if got := URIParamRm(m, "nothere"); got != 1 || m.RURI() != "sip:bob@example.com;lr" {
		t.Fatalf("rm missing: %d %q", got, m.RURI())
	}
	if got := AddURIParam(m, "foo=bar"); got != 1 || m.RURI() != "sip:bob@example.com;lr;foo=bar" {
		t.Fatalf("add: %d %q", got, m.RURI())
	}
	if URIParamValue(m, "foo", ptr("bar")) != 1 {
		t.Fatalf("added param not seen")
	}
	if got := AddURIParam(m, ""); got != 1 || m.RURI() != "sip:bob@example.com;lr;foo=bar" {
		t.Fatalf("add empty: %d %q", got, m.RURI())
	}
	if got := AddURIParam(m, strings.Repeat("x", 1100)); got != -1 {
		t.Fatalf("too long: %d", got)
	}
	if err := m.SetRURI("sip:carol@example.org?subject=hi"); err != nil {
		t.Fatal(err)
	}
	if got := AddURIParam(m, "lr"); got != 1 || m.RURI() != "sip:carol@example.org;lr?subject=hi" {
		t.Fatalf("add before headers: %d %q", got, m.RURI())
	}
	if got := URIParamRm(m, "lr"); got != 1 || m.RURI() != "sip:carol@example.org?subject=hi" {
		t.Fatalf("rm before headers: %d %q", got, m.RURI())
	}
}

func ptr(s string) *string { return &s }

func TestIsUser(t *testing.T) {
	mod := New(DefaultConfig(), nil)
	c, _ := ctxFor(t, request("INVITE", "sip:bob@example.com", ""))
	if got := mod.IsUser(c.Msg, "alice"); got != -1 {
		t.Fatalf("no auth: %d", got)
	}
	mod.AuthorizedUser = func(m *sipmsg.Msg) (string, bool) { return "alice", m == c.Msg }
	if got := mod.IsUser(c.Msg, "alice"); got != 1 {
		t.Fatalf("alice: %d", got)
	}
	if got := mod.IsUser(c.Msg, "Alice"); got != -1 {
		t.Fatalf("case: %d", got)
	}
}

func TestStringChecks(t *testing.T) {
	tests := []struct {
		fn   string
		in   string
		set  string
		want int
	}{
		{"is_uri", "sip:bob@example.com", "", 1},
		{"is_uri", "tel:+431234", "", 1},
		{"is_uri", "bob@example.com", "", -1},
		{"is_uri", "", "", -1},
		{"is_tel_number", "+431234", "", 1},
		{"is_tel_number", "01234", "", 1},
		{"is_tel_number", "+0123", "", -2},
		{"is_tel_number", "+", "", -2},
		{"is_tel_number", "12-34", "", -2},
		{"is_tel_number", "", "", -2},
		{"is_numeric", "0123", "", 1},
		{"is_numeric", "+123", "", -2},
		{"is_numeric", "", "", -2},
		{"is_alphanum", "abcXYZ019", "", 1},
		{"is_alphanum", "abc-1", "", -3},
		{"is_alphanum", "", "", -2},
		{"is_alphanumex", "abc-1_x", "-_", 1},
		{"is_alphanumex", "abc-1.x", "-_", -3},
		{"is_alphanumex", "", "-", -2},
	}
	mod := New(DefaultConfig(), nil)
	exps := map[string]kemi.Export{}
	for _, e := range mod.Exports() {
		exps[e.Name] = e
	}
	c, _ := ctxFor(t, request("INVITE", "sip:bob@example.com", ""))
	for _, tc := range tests {
		args := []val.Value{val.OfStr(tc.in)}
		if tc.fn == "is_alphanumex" {
			args = append(args, val.OfStr(tc.set))
		}
		if got := exps[tc.fn].Fn(c, args); got != val.OfInt(int64(tc.want)) {
			t.Errorf("%s(%q) = %v, want %d", tc.fn, tc.in, got, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		fn, a, b string
		want     int
	}{
		{"cmp_uri", "sip:bob@example.com", "sip:bob@EXAMPLE.com", 1},
		{"cmp_uri", "sip:bob@example.com", "sip:Bob@example.com", -1},
		{"cmp_uri", "sip:bob@example.com", "sips:bob@example.com", -1},
		{"cmp_uri", "sip:bob@example.com", "sip:bob@example.com:5060", -1},
		{"cmp_uri", "sip:bob@example.com;transport=tcp", "sip:bob@example.com;TRANSPORT=TCP", 1},
		{"cmp_uri", "sip:bob@example.com;transport=tcp", "sip:bob@example.com;transport=udp", -1},
		{"cmp_uri", "sip:bob@example.com;transport=tcp", "sip:bob@example.com", 1},
		{"cmp_uri", "sip:bob@example.com;user=phone", "sip:bob@example.com", -1},
		{"cmp_uri", "sip:bob@example.com;lr", "sip:bob@example.com;foo=1", 1},
		{"cmp_uri", "sip:bob@example.com", "http://bob@example.com", -2},
		{"cmp_aor", "sip:bob@example.com;transport=tcp", "sip:bob@EXAMPLE.COM", 1},
		{"cmp_aor", "sip:bob@example.com", "sip:bob@example.com:5060", 1},
		{"cmp_aor", "sip:bob@example.com:5070", "sip:bob@example.com", -1},
		{"cmp_aor", "sip:bob@example.com:5070", "sip:bob@example.com:5080", -1},
		{"cmp_aor", "sip:bob@example.com", "sips:bob@example.com", 1},
		{"cmp_aor", "sip:bob@example.com", "sip:alice@example.com", -1},
		{"cmp_aor", "sip:bob@example.com", "bob", -2},
		{"cmp_hdr_name", "From", "f", 1},
		{"cmp_hdr_name", "via", "V", 1},
		{"cmp_hdr_name", "X-Foo ", "x-foo", 1},
		{"cmp_hdr_name", "From", "To", -1},
		{"cmp_hdr_name", "X-Foo", "X-Bar", -1},
		{"cmp_hdr_name", "", "To", -2},
	}
	mod := New(DefaultConfig(), nil)
	exps := map[string]kemi.Export{}
	for _, e := range mod.Exports() {
		exps[e.Name] = e
	}
	c, _ := ctxFor(t, request("INVITE", "sip:bob@example.com", ""))
	for _, tc := range tests {
		if got := exps[tc.fn].Fn(c, []val.Value{val.OfStr(tc.a), val.OfStr(tc.b)}); got != val.OfInt(int64(tc.want)) {
			t.Errorf("%s(%q, %q) = %v, want %d", tc.fn, tc.a, tc.b, got, tc.want)
		}
	}
}

func TestOptionsReply(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OptionsSupport = "path, outbound"
	mod := New(cfg, nil)

	c, rec := ctxFor(t, request("OPTIONS", "sip:198.51.100.1", ""))
	if got := mod.OptionsReply(c.Msg); got != 1 {
		t.Fatalf("options_reply = %d", got)
	}
	if len(rec.sent) != 1 || rec.sent[0].StatusCode != 200 || rec.sent[0].Reason != "OK" {
		t.Fatalf("replies %v", rec.sent)
	}
	wire := rec.sent[0].String()
	for _, h := range []string{"Accept: */*\r\n", "Accept-Encoding: \r\n", "Accept-Language: en\r\n", "Supported: path, outbound\r\n", "CSeq: 1 OPTIONS\r\n"} {
		if !strings.Contains(wire, h) {
			t.Errorf("reply lacks %q:\n%s", h, wire)
		}
	}

	for _, raw := range []string{
		request("OPTIONS", "sip:bob@198.51.100.1", ""), // user part
		request("INVITE", "sip:198.51.100.1", ""),      // not OPTIONS
		reply(""), // a reply
	} {
		c, rec := ctxFor(t, raw)
		if got := mod.OptionsReply(c.Msg); got != -1 || len(rec.sent) != 0 {
			t.Errorf("got %d, %d replies for\n%s", got, len(rec.sent), raw)
		}
	}

	c, _ = ctxFor(t, request("OPTIONS", "sip:198.51.100.1", ""))
	c.Msg.Replier = nil
	if got := mod.OptionsReply(c.Msg); got != -1 {
		t.Fatalf("without replier: %d", got)
	}
}

func TestHdrDateCheck(t *testing.T) {
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	mod := New(DefaultConfig(), nil)
	mod.now = func() time.Time { return now }
	tests := []struct {
		date  string
		tdiff int
		want  int
	}{
		{"Fri, 01 Mar 2024 11:59:30 GMT", 60, 1},
		{"Fri, 01 Mar 2024 11:58:30 GMT", 60, -4},
		{"Fri, 01 Mar 2024 12:00:00 GMT", 0, 1},
		{"2024-03-01T12:00:00Z", 60, -1},
		{"", 60, -1},
	}
	for _, tc := range tests {
		extra := ""
		if tc.date != "" {
			extra = "Date: " + tc.date + "\n"
		}
		c, _ := ctxFor(t, request("INVITE", "sip:bob@example.com", extra))
		if got := mod.HdrDateCheck(c.Msg, tc.tdiff); got != tc.want {
			t.Errorf("Date %q tdiff %d: %d, want %d", tc.date, tc.tdiff, got, tc.want)
		}
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
		if len(col) >= 4 && col[0] == "siputils" {
			cat[col[1]] = sig{col[2], col[3]}
		}
	}
	for _, e := range New(DefaultConfig(), nil).Exports() {
		want, ok := cat[e.Name]
		if !ok || e.Module != "siputils" {
			t.Errorf("%s.%s: not in the catalog", e.Module, e.Name)
			continue
		}
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
}
