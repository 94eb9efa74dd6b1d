package registrar

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// fakeReplier records the replies "sent".
type fakeReplier struct {
	sent []*sip.Response
	err  error
}

func (f *fakeReplier) SendReply(_ *sipmsg.Msg, res *sip.Response) error {
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, res)
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t   *testing.T
	clk *clock
	ul  *usrloc.Module
	reg *Module
}

func newEnv(t *testing.T, cfg Config, ucfg usrloc.Config) *env {
	t.Helper()
	clk := &clock{t: time.Unix(1700000000, 0)}
	ul, err := usrloc.New(ucfg, usrloc.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ul.Close() })
	reg, err := New(cfg, ul, WithClock(clk.now), WithRand(func() int { return 50 }))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, clk: clk, ul: ul, reg: reg}
}

func defEnv(t *testing.T) *env { return newEnv(t, DefaultConfig(), usrloc.DefaultConfig()) }

func parse(t *testing.T, raw string) *sipmsg.Msg {
	t.Helper()
	m, err := sipmsg.Parse([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	m.Proto, m.SrcIP, m.SrcPort, m.DstIP, m.DstPort = "udp", "203.0.113.7", 40000, "10.0.0.1", 5060
	return m
}

// register builds a REGISTER for alice@example.com.
func register(t *testing.T, cseq int, callid, hdrs string) (*kemi.Ctx, *fakeReplier) {
	t.Helper()
	if callid == "" {
		callid = "reg-1@192.168.1.2"
	}
	raw := "REGISTER sip:example.com SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK-" + fmt.Sprint(cseq) + ";rport\n" +
		"Max-Forwards: 70\n" +
		"From: <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:alice@example.com>\n" +
		"Call-ID: " + callid + "\n" +
		"CSeq: " + fmt.Sprint(cseq) + " REGISTER\n" +
		hdrs +
		"Content-Length: 0\n\n"
	m := parse(t, raw)
	r := &fakeReplier{}
	m.Replier = r
	return &kemi.Ctx{Msg: m, Route: kemi.RouteRequest}, r
}

// request builds a request to ruri.
func request(t *testing.T, method, ruri, toTag string) *kemi.Ctx {
	t.Helper()
	raw := method + " " + ruri + " SIP/2.0\n" +
		"Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-x\n" +
		"From: <sip:bob@example.org>;tag=b1\n" +
		"To: <" + ruri + ">" + toTag + "\n" +
		"Call-ID: call-x\n" +
		"CSeq: 1 " + method + "\n" +
		"Content-Length: 0\n\n"
	return &kemi.Ctx{Msg: parse(t, raw), Route: kemi.RouteRequest}
}

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...any) int64 {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name != name {
			continue
		}
		if len(args) != len(e.Params) {
			t.Fatalf("%s: %d args for %d params", name, len(args), len(e.Params))
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

func bindings(e *env, aor string) string {
	var out []string
	now := e.ul.Now()
	cs, _ := e.ul.Domain("location").Get(aor)
	for _, c := range cs {
		if c.Valid(now) {
			out = append(out, fmt.Sprintf("%s;%d", c.URI, c.Expires-now))
		}
	}
	return strings.Join(out, " ")
}

type step struct {
	cseq     int
	callid   string
	hdrs     string
	flags    int
	advance  time.Duration
	want     int64
	code     int      // reply code, 0: no reply
	has      []string // in the reply
	hasnt    []string
	bindings string // "uri;seconds-left ..." after the step ("-" for none)
}

func TestSave(t *testing.T) {
	ct := func(s string) string { return "Contact: " + s + "\n" }
	const a = "<sip:alice@192.168.1.2:5060>"
	tests := []struct {
		name  string
		cfg   func(c *Config)
		steps []step
	}{
		{name: "register, refresh, remove", steps: []step{
			{cseq: 1, hdrs: ct(a) + "Expires: 3600\n", want: 1, code: 200,
				has:      []string{"Contact: <sip:alice@192.168.1.2:5060>;expires=3600\r\n", "Date: Tue, 14 Nov 2023 22:13:20 GMT", "To: <sip:alice@example.com>;tag="},
				bindings: "sip:alice@192.168.1.2:5060;3600"},
			{cseq: 2, advance: 100 * time.Second, hdrs: ct(a) + "Expires: 1800\n", want: 2, code: 200,
				has: []string{";expires=1800"}, bindings: "sip:alice@192.168.1.2:5060;1800"},
			{cseq: 3, hdrs: ct(a) + "Expires: 0\n", want: 3, code: 200, hasnt: []string{"Contact:"}, bindings: "-"},
		}},
		{name: "contact expires param wins over header", steps: []step{
			{cseq: 1, hdrs: ct(a+";expires=120") + "Expires: 3600\n", want: 1, code: 200,
				has: []string{a + ";expires=120"}, bindings: "sip:alice@192.168.1.2:5060;120"},
			{cseq: 2, hdrs: ct(a + ";expires=0"), want: 3, code: 200, bindings: "-"},
		}},
		{name: "default_expires", steps: []step{
			{cseq: 1, hdrs: ct(a), want: 1, code: 200, bindings: "sip:alice@192.168.1.2:5060;3600"},
		}},
		{name: "invalid Expires counts as absent", steps: []step{
			{cseq: 1, hdrs: ct(a) + "Expires: Thu, 01 Dec 1994 16:00:00 GMT\n", want: 1, code: 200, bindings: "sip:alice@192.168.1.2:5060;3600"},
		}},
		{name: "several contacts with q", steps: []step{
			{cseq: 1, hdrs: ct(a+";q=0.5, <sip:alice@10.1.1.1>;q=1.0") + ct("<sip:alice@10.2.2.2>;q=0.25;expires=60") + "Expires: 600\n",
				want: 1, code: 200,
				has:      []string{"Contact: <sip:alice@10.1.1.1>;q=1;expires=600, <sip:alice@192.168.1.2:5060>;q=0.5;expires=600, <sip:alice@10.2.2.2>;q=0.25;expires=60\r\n"},
				bindings: "sip:alice@10.1.1.1;600 sip:alice@192.168.1.2:5060;600 sip:alice@10.2.2.2;60"},
			{cseq: 2, hdrs: "", want: 4, code: 200, has: []string{"<sip:alice@10.1.1.1>;q=1;expires=600"},
				bindings: "sip:alice@10.1.1.1;600 sip:alice@192.168.1.2:5060;600 sip:alice@10.2.2.2;60"},
		}},
		{name: "star removes every binding", steps: []step{
			{cseq: 1, hdrs: ct(a+", <sip:alice@10.1.1.1>") + "Expires: 600\n", want: 1, code: 200},
			{cseq: 2, hdrs: ct("*") + "Expires: 0\n", want: 3, code: 200, hasnt: []string{"Contact:"}, bindings: "-"},
		}},
		{name: "star needs Expires 0", steps: []step{
			{cseq: 1, hdrs: ct("*") + "Expires: 60\n", want: -1, code: 400, has: []string{"P-Registrar-Error: * used in contact and expires is not zero"}},
			{cseq: 2, hdrs: ct("*"), want: -1, code: 400},
			{cseq: 3, hdrs: ct("*") + ct(a) + "Expires: 0\n", want: -1, code: 400, has: []string{"* used in contact and more than 1 contact"}},
		}},
		{name: "min_expires raises", steps: []step{
			{cseq: 1, hdrs: ct(a) + "Expires: 10\n", want: 1, code: 200, has: []string{";expires=60"}, bindings: "sip:alice@192.168.1.2:5060;60"},
		}},
		{name: "min_expires_mode: 423", cfg: func(c *Config) { c.MinExpiresMode = 1 }, steps: []step{
			{cseq: 1, hdrs: ct(a) + "Expires: 10\n", want: -1, code: 423, has: []string{"Min-Expires: 60\r\n", "Interval Too Brief"}, bindings: "-"},
			{cseq: 2, hdrs: ct(a) + "Expires: 0\n", want: 1, code: 200, bindings: "-"},
		}},
		{name: "max_expires caps", cfg: func(c *Config) { c.MaxExpires = 300 }, steps: []step{
			{cseq: 1, hdrs: ct(a) + "Expires: 7200\n", want: 1, code: 200, has: []string{";expires=300"}, bindings: "sip:alice@192.168.1.2:5060;300"},
		}},
		{name: "expires_range", cfg: func(c *Config) { c.ExpiresRange = 20 }, steps: []step{
			{cseq: 1, hdrs: ct(a) + "Expires: 1000\n", want: 1, code: 200, bindings: "sip:alice@192.168.1.2:5060;900"},
			{cseq: 2, flags: SaveNoVariation, hdrs: ct(a) + "Expires: 1000\n", want: 2, code: 200, bindings: "sip:alice@192.168.1.2:5060;1000"},
		}},
		{name: "out of order CSeq", steps: []step{
			{cseq: 5, hdrs: ct(a), want: 1, code: 200},
			{cseq: 4, hdrs: ct(a) + "Expires: 60\n", want: -1, code: 400,
				has: []string{"P-Registrar-Error: Invalid CSeq number", "Contact: <sip:alice@192.168.1.2:5060>;expires=3600"}, bindings: "sip:alice@192.168.1.2:5060;3600"},
			{cseq: 4, callid: "other-call", hdrs: ct(a) + "Expires: 60\n", want: 2, code: 200, bindings: "sip:alice@192.168.1.2:5060;60"},
		}},
		{name: "retransmission is ignored", steps: []step{
			{cseq: 5, hdrs: ct(a), want: 1, code: 200},
			{cseq: 5, advance: 5 * time.Second, hdrs: ct(a) + "Expires: 60\n", want: 1, code: 200, bindings: "sip:alice@192.168.1.2:5060;3595"},
		}},
		{name: "same address twice in one REGISTER", steps: []step{
			{cseq: 1, hdrs: ct(a+";expires=100") + ct(a+";expires=200"), want: 1, code: 200, bindings: "sip:alice@192.168.1.2:5060;200"},
		}},
		{name: "max_contacts on insert", cfg: func(c *Config) { c.MaxContacts = 1 }, steps: []step{
			{cseq: 1, hdrs: ct(a + ", <sip:alice@10.1.1.1>"), want: -2, code: 503,
				has: []string{"Too many registered contacts"}, bindings: "-"},
			{cseq: 2, hdrs: ct(a), want: 1, code: 200},
			{cseq: 3, hdrs: ct("<sip:alice@10.1.1.1>"), want: -2, code: 503, bindings: "sip:alice@192.168.1.2:5060;3600"},
			{cseq: 4, hdrs: ct(a + ";expires=0, <sip:alice@10.1.1.1>"), want: 1, code: 200, bindings: "sip:alice@10.1.1.1;3600"},
		}},
		{name: "retry_after on 5xx", cfg: func(c *Config) { c.MaxContacts = 1; c.RetryAfter = 30 }, steps: []step{
			{cseq: 1, hdrs: ct(a + ", <sip:alice@10.1.1.1>"), want: -2, code: 503, has: []string{"Retry-After: 30\r\n"}},
		}},
		{name: "single contact flag", steps: []step{
			{cseq: 1, hdrs: ct(a + ", <sip:alice@10.1.1.1>"), want: 1, code: 200},
			{cseq: 2, flags: SaveSingle, hdrs: ct("<sip:alice@10.9.9.9>"), want: 1, code: 200, bindings: "sip:alice@10.9.9.9;3600"},
			{cseq: 3, flags: SaveSingle, hdrs: ct("<sip:alice@10.9.9.9>;expires=50"), want: 2, code: 200, bindings: "sip:alice@10.9.9.9;60"},
		}},
		{name: "no reply flag", steps: []step{
			{cseq: 1, flags: SaveNoReply, hdrs: ct(a), want: 1, code: 0, bindings: "sip:alice@192.168.1.2:5060;3600"},
		}},
		{name: "bad q", steps: []step{
			{cseq: 1, hdrs: ct(a + ";q=2"), want: -1, code: 400, has: []string{"Invalid q param in contact"}, bindings: "-"},
			{cseq: 2, hdrs: ct(a + ";q=0."), want: -1, code: 400},
		}},
		{name: "bad reg-id", steps: []step{
			{cseq: 1, hdrs: ct(a + ";+sip.instance=\"<urn:uuid:1>\";reg-id=0"), want: -1, code: 400, has: []string{"Invalid Reg-Id number"}},
		}},
		{name: "empty Expires", steps: []step{
			{cseq: 1, hdrs: ct(a) + "Expires:\n", want: -1, code: 400, has: []string{"Expires parse error"}},
		}},
		{name: "contact too long", cfg: func(c *Config) { c.ContactMaxSize = 20 }, steps: []step{
			{cseq: 1, hdrs: ct(a), want: -1, code: 400, has: []string{"Contact/received too long"}},
		}},
		{name: "Require: outbound", steps: []step{
			{cseq: 1, hdrs: ct(a) + "Require: outbound\n", want: -1, code: 420, has: []string{"Unsupported: outbound\r\n"}},
		}},
		{name: "instance: new address updates, new Call-ID drops the others", steps: []step{
			{cseq: 1, hdrs: ct(a + ";+sip.instance=\"<urn:uuid:1>\";reg-id=1"), want: 1, code: 200,
				has: []string{";+sip.instance=\"<urn:uuid:1>\";reg-id=1"}},
			{cseq: 2, hdrs: ct("<sip:alice@10.3.3.3>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"), want: 2, code: 200,
				bindings: "sip:alice@10.3.3.3;3600"},
			{cseq: 1, callid: "new-call", hdrs: ct("<sip:alice@10.4.4.4>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"), want: 2, code: 200,
				bindings: "sip:alice@10.4.4.4;3600"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e := newEnv(t, cfg, usrloc.DefaultConfig())
			for i, s := range tt.steps {
				e.clk.add(s.advance)
				c, r := register(t, s.cseq, s.callid, s.hdrs)
				if got := call(t, e.reg, c, "save", "location", s.flags); got != s.want {
					t.Errorf("step %d: save = %d, want %d", i, got, s.want)
				}
				if s.code == 0 {
					if len(r.sent) != 0 {
						t.Errorf("step %d: reply sent", i)
					}
				} else if len(r.sent) != 1 || r.sent[0].StatusCode != s.code {
					t.Errorf("step %d: replies %v, want one %d", i, codes(r.sent), s.code)
				} else {
					txt := r.sent[0].String()
					for _, h := range s.has {
						if !strings.Contains(txt, h) {
							t.Errorf("step %d: reply lacks %q:\n%s", i, h, txt)
						}
					}
					for _, h := range s.hasnt {
						if strings.Contains(txt, h) {
							t.Errorf("step %d: reply has %q:\n%s", i, h, txt)
						}
					}
				}
				if s.bindings != "" {
					want := s.bindings
					if want == "-" {
						want = ""
					}
					if got := bindings(e, "alice"); got != want {
						t.Errorf("step %d: bindings %q, want %q", i, got, want)
					}
				}
			}
		})
	}
}

func codes(rs []*sip.Response) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.StatusCode)
	}
	return out
}

func TestSaveContactInfo(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReceivedAVP = "$avp(RECEIVED)"
	ucfg := usrloc.DefaultConfig()
	e := newEnv(t, cfg, ucfg)
	c, r := register(t, 7, "", "Contact: <sip:alice@192.168.1.2:5060>;methods=\"INVITE, MESSAGE\"\n"+
		"User-Agent: phone/1.0\nAllow: INVITE, BYE\n")
	c.Msg.BFlags = 0x41
	c.Msg.PushAVP("RECEIVED", val.OfStr("sip:203.0.113.7:40000"))
	if got := call(t, e.reg, c, "save", "location", 0); got != 1 {
		t.Fatalf("save = %d", got)
	}
	if !strings.Contains(r.sent[0].String(), ";expires=3600;received=\"sip:203.0.113.7:40000\"") {
		t.Errorf("reply: %s", r.sent[0])
	}
	cs := e.ul.Lookup("alice")
	if len(cs) != 1 {
		t.Fatalf("%d contacts", len(cs))
	}
	got := cs[0]
	if got.Received != "sip:203.0.113.7:40000" || got.CallID != "reg-1@192.168.1.2" || got.CSeq != 7 ||
		got.UserAgent != "phone/1.0" || got.CFlags != 0x41 || got.Socket != "udp:10.0.0.1:5060" ||
		got.Methods != 1|256 || got.Q != -1 || got.RUID == "" || got.ConnID != 0 || got.LastModified != e.ul.Now() {
		t.Errorf("contact %+v", got)
	}

	// Allow header when the contact has no methods param, TCP connection id,
	// received param of the contact beats the AVP
	c, _ = register(t, 8, "", "Contact: <sip:alice@192.168.1.2:5060;transport=tcp>;received=\"sip:1.1.1.1:9\"\nAllow: INVITE, BYE\n")
	c.Msg.Proto, c.Msg.ConnID = "tcp", 77
	c.Msg.PushAVP("RECEIVED", val.OfStr("sip:203.0.113.7:40000;transport=tcp"))
	call(t, e.reg, c, "save", "location", 0)
	for _, ct := range e.ul.Lookup("alice") {
		if strings.Contains(ct.URI, "tcp") && (ct.Methods != 1|8 || ct.ConnID != 77 || ct.Received != "sip:1.1.1.1:9" ||
			ct.Socket != "tcp:10.0.0.1:5060" || ct.UserAgent != "n/a") {
			t.Errorf("tcp contact %+v", ct)
		}
	}
}

func TestSaveURIAndAOR(t *testing.T) {
	tests := []struct {
		name      string
		useDomain int
		caseSens  int
		prefix    string
		to        string
		wantAOR   string
	}{
		{"user only", 0, 0, "", "sip:Alice@Example.COM", "alice"},
		{"use_domain", 1, 0, "", "sip:Alice@Example.COM", "alice@example.com"},
		{"case_sensitive", 1, 1, "", "sip:Alice@Example.COM", "Alice@example.com"},
		{"case_sensitive without domain", 0, 1, "", "sip:Alice@Example.COM", "Alice"},
		{"realm_prefix", 1, 0, "sip.", "sip:bob@sip.example.com", "bob@example.com"},
		{"escaped user", 0, 0, "", "sip:b%6Fb@x.com", "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.CaseSensitive, cfg.RealmPrefix = tt.caseSens, tt.prefix
			ucfg := usrloc.DefaultConfig()
			ucfg.UseDomain = tt.useDomain
			e := newEnv(t, cfg, ucfg)
			c, _ := register(t, 1, "", "Contact: <sip:x@1.2.3.4>\n")
			if got := call(t, e.reg, c, "save_uri", "location", 0, tt.to); got != 1 {
				t.Fatalf("save_uri = %d", got)
			}
			if aors := e.ul.Domain("location").AORs(); len(aors) != 1 || aors[0] != tt.wantAOR {
				t.Errorf("AoRs %v, want %s", aors, tt.wantAOR)
			}
		})
	}
	e := defEnv(t)
	c, r := register(t, 1, "", "Contact: <sip:x@1.2.3.4>\n")
	if got := call(t, e.reg, c, "save_uri", "location", 0, "not a uri"); got != -1 || len(r.sent) != 0 {
		t.Errorf("bad uri: %d, %d replies", got, len(r.sent))
	}
}

func TestSaveExpiryWithClock(t *testing.T) {
	e := defEnv(t)
	c, _ := register(t, 1, "", "Contact: <sip:alice@192.168.1.2>;expires=60\n")
	call(t, e.reg, c, "save", "location", 0)
	lk := request(t, "INVITE", "sip:alice@example.com", "")
	if got := call(t, e.reg, lk, "lookup", "location"); got != 1 {
		t.Fatalf("lookup = %d", got)
	}
	e.clk.add(61 * time.Second)
	lk = request(t, "INVITE", "sip:alice@example.com", "")
	if got := call(t, e.reg, lk, "lookup", "location"); got != -1 {
		t.Errorf("lookup after expiry = %d", got)
	}
	if got := call(t, e.reg, lk, "registered", "location"); got != -1 {
		t.Errorf("registered after expiry = %d", got)
	}
	// the 200 of a query no longer lists it
	c, r := register(t, 2, "", "")
	if got := call(t, e.reg, c, "save", "location", 0); got != 4 || strings.Contains(r.sent[0].String(), "Contact:") {
		t.Errorf("query after expiry: %d %s", got, r.sent[0])
	}
	if n := e.ul.Timer(); n != 1 {
		t.Errorf("timer removed %d", n)
	}
}

func setup(t *testing.T, e *env, contacts string, cflags uint32) {
	t.Helper()
	c, _ := register(t, 1, "", contacts)
	c.Msg.BFlags = cflags
	if got := call(t, e.reg, c, "save", "location", 0); got != 1 {
		t.Fatalf("save = %d", got)
	}
}

func TestLookup(t *testing.T) {
	const three = "Contact: <sip:alice@10.0.0.1>;q=0.1, <sip:alice@10.0.0.2>;q=1.0, <sip:alice@10.0.0.3>;q=0.5\n"
	type br struct {
		uri string
		q   int
	}
	tests := []struct {
		name     string
		cfg      func(c *Config)
		contacts string
		method   string
		ruri     string
		toTag    string
		fn       string
		args     []any
		want     int64
		wantRURI string
		wantDU   string
		branches []br
	}{
		{name: "q order", contacts: three, want: 1, wantRURI: "sip:alice@10.0.0.2",
			branches: []br{{"sip:alice@10.0.0.3", 500}, {"sip:alice@10.0.0.1", 100}}},
		{name: "append_branches off", cfg: func(c *Config) { c.AppendBranches = 0 }, contacts: three, want: 1, wantRURI: "sip:alice@10.0.0.2"},
		{name: "lookup_to_dset", fn: "lookup_to_dset", args: []any{"location", ""}, contacts: three, want: 1,
			wantRURI: "sip:alice@example.com",
			branches: []br{{"sip:alice@10.0.0.2", 1000}, {"sip:alice@10.0.0.3", 500}, {"sip:alice@10.0.0.1", 100}}},
		{name: "lookup_uri", fn: "lookup_uri", args: []any{"location", "sip:alice@example.com"}, ruri: "sip:other@example.com",
			contacts: three, want: 1, wantRURI: "sip:alice@10.0.0.2", branches: []br{{"sip:alice@10.0.0.3", 500}, {"sip:alice@10.0.0.1", 100}}},
		{name: "not registered", contacts: three, ruri: "sip:nobody@example.com", want: -1, wantRURI: "sip:nobody@example.com"},
		{name: "bad uri", fn: "lookup_uri", args: []any{"location", "garbage"}, contacts: three, want: -3},
		{name: "other table", fn: "lookup", args: []any{"elsewhere"}, contacts: three, want: -1},
		{name: "method filtering", cfg: func(c *Config) { c.MethodFiltering = 1 },
			contacts: "Contact: <sip:alice@10.0.0.1>;methods=\"MESSAGE\"\n", want: -2},
		{name: "method filtering allows in-dialog", cfg: func(c *Config) { c.MethodFiltering = 1 }, toTag: ";tag=x",
			contacts: "Contact: <sip:alice@10.0.0.1>;methods=\"MESSAGE\"\n", want: 1, wantRURI: "sip:alice@10.0.0.1"},
		{name: "method filtering skips", cfg: func(c *Config) { c.MethodFiltering = 1 },
			contacts: "Contact: <sip:alice@10.0.0.1>;methods=\"MESSAGE\";q=1, <sip:alice@10.0.0.2>;q=0.5\nAllow: INVITE\n",
			want:     1, wantRURI: "sip:alice@10.0.0.2"},
		{name: "received gives $du", contacts: "Contact: <sip:alice@192.168.1.2>;received=\"sip:203.0.113.7:40000\"\n",
			want: 1, wantRURI: "sip:alice@192.168.1.2", wantDU: "sip:203.0.113.7:40000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e := newEnv(t, cfg, usrloc.DefaultConfig())
			setup(t, e, tt.contacts, 0)
			method, ruri := tt.method, tt.ruri
			if method == "" {
				method = "INVITE"
			}
			if ruri == "" {
				ruri = "sip:alice@example.com"
			}
			c := request(t, method, ruri, tt.toTag)
			c.Msg.DstURI = "sip:stale"
			fn, args := tt.fn, tt.args
			if fn == "" {
				fn, args = "lookup", []any{"location"}
			}
			if got := call(t, e.reg, c, fn, args...); got != tt.want {
				t.Fatalf("%s = %d, want %d", fn, got, tt.want)
			}
			if tt.wantRURI != "" && c.Msg.RURI() != tt.wantRURI {
				t.Errorf("R-URI %s, want %s", c.Msg.RURI(), tt.wantRURI)
			}
			if tt.want == 1 && fn != "lookup_to_dset" && c.Msg.DstURI != tt.wantDU {
				t.Errorf("$du %q, want %q", c.Msg.DstURI, tt.wantDU)
			}
			var got []br
			for _, b := range c.Msg.Branches {
				got = append(got, br{b.URI, b.Q})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.branches) {
				t.Errorf("branches %v, want %v", got, tt.branches)
			}
		})
	}
}

func TestLookupBranchState(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UsePath = 1
	e := newEnv(t, cfg, usrloc.DefaultConfig())
	// contact 1 over TCP via an edge proxy (Path), contact 2 NATed (received)
	c, r := register(t, 1, "", "Contact: <sip:alice@192.168.1.2;transport=tcp>;q=0.9\nPath: <sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>\nSupported: path\n")
	c.Msg.Proto, c.Msg.ConnID, c.Msg.BFlags = "tcp", 99, 0x10
	if got := call(t, e.reg, c, "save", "location", 0); got != 1 {
		t.Fatalf("save = %d", got)
	}
	if txt := r.sent[0].String(); !strings.Contains(txt, "Path: <sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>\r\n") {
		t.Errorf("200 lacks Path: %s", txt)
	}
	c, _ = register(t, 1, "call-2", "Contact: <sip:alice@192.168.1.3>;q=0.5;received=\"sip:203.0.113.9:5070\"\n")
	c.Msg.BFlags = 0x20
	call(t, e.reg, c, "save", "location", 0)

	c = request(t, "INVITE", "sip:alice@example.com", "")
	c.Msg.BFlags = 0x1
	if got := call(t, e.reg, c, "lookup", "location"); got != 1 {
		t.Fatalf("lookup = %d", got)
	}
	m := c.Msg
	if m.RURI() != "sip:alice@192.168.1.2;transport=tcp" || m.DstURI != "sip:edge1.example.com;lr" ||
		m.Path != "<sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>" || m.BFlags != 0x11 || m.SendSock != "tcp:10.0.0.1:5060" {
		t.Errorf("branch 0: ruri=%s du=%s path=%s bflags=%x sock=%s", m.RURI(), m.DstURI, m.Path, m.BFlags, m.SendSock)
	}
	ri, ok := LookupResult(m)
	if !ok || ri.ConnID != 99 || ri.Q != 900 || ri.RUID == "" {
		t.Errorf("RURIInfo %+v", ri)
	}
	if len(m.Branches) != 1 {
		t.Fatalf("branches %+v", m.Branches)
	}
	b := m.Branches[0]
	if b.URI != "sip:alice@192.168.1.3" || b.DstURI != "sip:203.0.113.9:5070" || b.Flags != 0x20 || b.Q != 500 ||
		b.Socket != "udp:10.0.0.1:5060" || b.RUID == "" || b.Path != "" || b.ConnID != 0 {
		t.Errorf("branch %+v", b)
	}
}

func TestPathModes(t *testing.T) {
	tests := []struct {
		name      string
		mode      int
		supported string
		code      int
		path      bool
	}{
		{"strict with support", pathStrict, "Supported: path\n", 200, true},
		{"strict without Supported", pathStrict, "", 420, true},
		{"strict without path tag", pathStrict, "Supported: gruu\n", 420, true},
		{"lazy without support", pathLazy, "", 200, false},
		{"lazy with support", pathLazy, "Supported: path, gruu\n", 200, true},
		{"off", pathOff, "Supported: path\n", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.UsePath, cfg.PathMode = 1, tt.mode
			e := newEnv(t, cfg, usrloc.DefaultConfig())
			c, r := register(t, 1, "", "Contact: <sip:alice@192.168.1.2>\nPath: <sip:edge.example.com;lr>\n"+tt.supported)
			if got := call(t, e.reg, c, "save", "location", 0); got != 1 {
				t.Errorf("save = %d", got)
			}
			txt := r.sent[0].String()
			if r.sent[0].StatusCode != tt.code || strings.Contains(txt, "Path: <sip:edge") != tt.path {
				t.Errorf("reply:\n%s", txt)
			}
			if tt.code == 420 && !strings.Contains(txt, "Unsupported: path\r\n") {
				t.Errorf("no Unsupported: %s", txt)
			}
			if cs := e.ul.Lookup("alice"); len(cs) != 1 || cs[0].Path != "<sip:edge.example.com;lr>" {
				t.Errorf("stored %+v", cs)
			}
		})
	}
	// Path without lr is refused
	cfg := DefaultConfig()
	cfg.UsePath = 1
	e := newEnv(t, cfg, usrloc.DefaultConfig())
	c, r := register(t, 1, "", "Contact: <sip:alice@192.168.1.2>\nPath: <sip:edge.example.com>\nSupported: path\n")
	if got := call(t, e.reg, c, "save", "location", 0); got != -1 || r.sent[0].StatusCode != 400 {
		t.Errorf("no lr: %d %v", got, codes(r.sent))
	}
	// path_use_received: received from the first Path URI, NAT bflag added
	cfg.PathUseReceived = 1
	ucfg := usrloc.DefaultConfig()
	ucfg.NATBFlag = 5
	e = newEnv(t, cfg, ucfg)
	c, _ = register(t, 1, "", "Contact: <sip:alice@192.168.1.2>\nPath: <sip:edge.example.com;lr;received=sip:1.2.3.4%3A5066>\nSupported: path\n")
	call(t, e.reg, c, "save", "location", 0)
	if cs := e.ul.Lookup("alice"); len(cs) != 1 || cs[0].Received != "sip:1.2.3.4:5066" || cs[0].CFlags != 32 {
		t.Errorf("path received: %+v", cs)
	}
}

func TestLookupBranches(t *testing.T) {
	e := defEnv(t)
	setup(t, e, "Contact: <sip:alice@10.0.0.1>\n", 0)
	c, _ := register(t, 1, "", "Contact: <sip:bob@10.0.0.9>;q=0.7, <sip:bob@10.0.0.8>;q=0.2\n")
	call(t, e.reg, c, "save_uri", "location", 0, "sip:bob@example.com")

	lk := request(t, "INVITE", "sip:alice@example.com", "")
	lk.Msg.AppendBranch(sipmsg.Branch{URI: "sip:bob@example.com", Q: -1})
	lk.Msg.AppendBranch(sipmsg.Branch{URI: "sip:carol@example.com", Q: -1})
	lk.Msg.AppendBranch(sipmsg.Branch{URI: "sip:dave@example.com", DstURI: "sip:gw", Q: -1})
	if got := call(t, e.reg, lk, "lookup_branches", "location"); got != 1 {
		t.Fatalf("lookup_branches = %d", got)
	}
	var got []string
	for _, b := range lk.Msg.Branches {
		got = append(got, fmt.Sprintf("%s/%d", b.URI, b.Q))
	}
	want := "sip:alice@10.0.0.1 [sip:bob@10.0.0.9/700 sip:carol@example.com/-1 sip:dave@example.com/-1 sip:bob@10.0.0.8/200]"
	if s := lk.Msg.RURI() + " " + fmt.Sprint(got); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	// no branches: same as lookup
	lk = request(t, "INVITE", "sip:nobody@example.com", "")
	if got := call(t, e.reg, lk, "lookup_branches", "location"); got != -1 {
		t.Errorf("lookup_branches = %d", got)
	}
}

func TestRegisteredUnregister(t *testing.T) {
	e := defEnv(t)
	setup(t, e, "Contact: <sip:alice@10.0.0.1>, <sip:alice@10.0.0.2>\n", 0)
	c := request(t, "INVITE", "sip:alice@example.com", "")
	for _, tt := range []struct {
		fn   string
		args []any
		want int64
	}{
		{"registered", []any{"location"}, 1},
		{"registered_uri", []any{"location", "sip:alice@other.net"}, 1},
		{"registered_uri", []any{"location", "sip:bob@example.com"}, -1},
		{"registered_uri", []any{"location", "bad"}, -1},
		{"registered_flags", []any{"location", "", 1}, 1},
		{"registered_action", []any{"location", "", 1, 2}, 1},
		{"registered", []any{"nothere"}, -1},
	} {
		if got := call(t, e.reg, c, tt.fn, tt.args...); got != tt.want {
			t.Errorf("%s%v = %d, want %d", tt.fn, tt.args, got, tt.want)
		}
	}
	ruid := e.ul.Lookup("alice")[0].RUID
	for _, tt := range []struct {
		fn   string
		args []any
		want int64
		left int
	}{
		{"unregister_ruid", []any{"location", "sip:alice@example.com", "no-such-ruid"}, -3, 2},
		{"unregister_ruid", []any{"location", "sip:bob@example.com", ruid}, -3, 2},
		{"unregister_ruid", []any{"location", "", ruid}, -1, 2},
		{"unregister_ruid", []any{"location", "sip:alice@example.com", ruid}, 1, 1},
		{"unregister", []any{"location", ""}, -1, 1},
		{"unregister", []any{"location", "sip:alice@example.com"}, 1, 0},
		{"unregister", []any{"location", "sip:alice@example.com"}, 1, 0},
	} {
		if got := call(t, e.reg, c, tt.fn, tt.args...); got != tt.want {
			t.Errorf("%s%v = %d, want %d", tt.fn, tt.args, got, tt.want)
		}
		if n := len(e.ul.Lookup("alice")); n != tt.left {
			t.Errorf("%s%v: %d bindings left, want %d", tt.fn, tt.args, n, tt.left)
		}
	}
	// a reply: registered uses the To URI
	res, _ := sipmsg.Parse([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.1.1.1;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:carol@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"))
	setup(t, e, "Contact: <sip:alice@10.0.0.1>\n", 0)
	if got := call(t, e.reg, &kemi.Ctx{Msg: res, Route: kemi.RouteReply}, "registered", "location"); got != -1 {
		t.Errorf("registered on a reply for carol = %d", got)
	}
}

type fakeTM struct {
	handled bool
	rc      int
	calls   []string
	hdrs    []string
}

func (f *fakeTM) TReply(c *kemi.Ctx, code int, reason string) (bool, int) {
	f.calls = append(f.calls, fmt.Sprint(code, " ", reason))
	f.hdrs = append([]string(nil), c.Msg.ReplyHdrs...)
	return f.handled, f.rc
}

func TestReplyPaths(t *testing.T) {
	// stateful: tm gets the code and the headers in ReplyHdrs
	e := defEnv(t)
	tm := &fakeTM{handled: true, rc: 1}
	e.reg.SetStateful(tm)
	c, r := register(t, 1, "", "Contact: <sip:alice@10.0.0.1>\n")
	if got := call(t, e.reg, c, "save", "location", 0); got != 1 {
		t.Errorf("save = %d", got)
	}
	if len(r.sent) != 0 || len(tm.calls) != 1 || tm.calls[0] != "200 OK" || !strings.HasPrefix(tm.hdrs[0], "Contact: <sip:alice@10.0.0.1>;expires=3600") {
		t.Errorf("stateless %d, tm %v %v", len(r.sent), tm.calls, tm.hdrs)
	}
	// tm without a transaction: stateless
	tm.handled = false
	c, r = register(t, 2, "", "Contact: <sip:alice@10.0.0.1>\n")
	call(t, e.reg, c, "save", "location", 0)
	if len(r.sent) != 1 {
		t.Errorf("no stateless reply")
	}
	// tm failure, send failure, no-reply: -1 (the bindings are saved)
	tm.handled, tm.rc = true, -1
	c, _ = register(t, 3, "", "Contact: <sip:alice@10.0.0.1>\n")
	if got := call(t, e.reg, c, "save", "location", 0); got != -1 {
		t.Errorf("tm failure: save = %d", got)
	}
	e.reg.SetStateful(nil)
	c, r = register(t, 4, "", "Contact: <sip:alice@10.0.0.1>\n")
	r.err = errors.New("down")
	if got := call(t, e.reg, c, "save", "location", 0); got != -1 {
		t.Errorf("send failure: save = %d", got)
	}
	c, r = register(t, 5, "", "Contact: <sip:alice@10.0.0.1>\n")
	c.Msg.NoReply = true
	if got := call(t, e.reg, c, "save", "location", 0); got != -1 || len(r.sent) != 0 {
		t.Errorf("no-reply: save = %d", got)
	}
	// failure route replies on success, not on errors; reply route never
	c, r = register(t, 6, "", "Contact: <sip:alice@10.0.0.1>\n")
	c.Route = kemi.RouteFailure
	call(t, e.reg, c, "save", "location", 0)
	if len(r.sent) != 1 {
		t.Errorf("failure route: %d replies", len(r.sent))
	}
	c, r = register(t, 7, "", "Contact: <sip:alice@10.0.0.1>;q=9\n")
	c.Route = kemi.RouteFailure
	if got := call(t, e.reg, c, "save", "location", 0); got != -1 || len(r.sent) != 0 {
		t.Errorf("failure route error: %d, %d replies", got, len(r.sent))
	}

	// 0x02 then reg_send_reply
	c, r = register(t, 8, "", "Contact: <sip:alice@10.0.0.1>;expires=100\n")
	if got := call(t, e.reg, c, "save", "location", SaveNoReply); got != 2 || len(r.sent) != 0 {
		t.Fatalf("save 0x02 = %d, %d replies", got, len(r.sent))
	}
	if got := call(t, e.reg, c, "reg_send_reply"); got != 1 || len(r.sent) != 1 ||
		!strings.Contains(r.sent[0].String(), "Contact: <sip:alice@10.0.0.1>;expires=100") {
		t.Errorf("reg_send_reply = %d %v", got, r.sent)
	}
	// 0x02|0x10 prepares the headers for a reply the script sends
	c, r = register(t, 9, "", "Contact: <sip:alice@10.0.0.1>;expires=200\n")
	call(t, e.reg, c, "save", "location", SaveNoReply|SavePrepReply)
	if len(r.sent) != 0 || len(c.Msg.ReplyHdrs) < 2 || !strings.Contains(c.Msg.ReplyHdrs[0], ";expires=200") {
		t.Errorf("prepared %v", c.Msg.ReplyHdrs)
	}
	c.Msg.Reply(200, "OK")
	if !strings.Contains(r.sent[0].String(), ";expires=200") {
		t.Errorf("script reply %s", r.sent[0])
	}
	if st := e.reg.Stats(); st["accepted_regs"] < 5 || st["rejected_regs"] != 1 {
		t.Errorf("stats %v", st)
	}
}

func TestSaveOnReply(t *testing.T) {
	e := defEnv(t)
	raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.1.1.1;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=1\r\n" +
		"To: <sip:alice@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.1>;expires=300\r\nContent-Length: 0\r\n\r\n"
	m, _ := sipmsg.Parse([]byte(raw))
	r := &fakeReplier{}
	m.Replier = r
	if got := call(t, e.reg, &kemi.Ctx{Msg: m, Route: kemi.RouteReply}, "save", "location", 0); got != 1 || len(r.sent) != 0 {
		t.Errorf("save on reply = %d, %d replies", got, len(r.sent))
	}
	if got := bindings(e, "alice"); got != "sip:alice@10.0.0.1;300" {
		t.Errorf("bindings %q", got)
	}
}

func TestQOverrideSockHdr(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SockFlag, cfg.SockHdrName = 3, "X-Sock"
	e := newEnv(t, cfg, usrloc.DefaultConfig())
	c, _ := register(t, 1, "", "Contact: <sip:alice@10.0.0.1>;q=0.1, <sip:alice@10.0.0.2>\nX-Sock: tcp:10.9.9.9:5080\n")
	if got := call(t, e.reg, c, "set_q_override", "0.75"); got != 1 {
		t.Errorf("set_q_override = %d", got)
	}
	if got := call(t, e.reg, c, "set_q_override", "7"); got != -1 {
		t.Errorf("set_q_override(7) = %d", got)
	}
	c.Msg.SetFlag(3)
	call(t, e.reg, c, "save", "location", 0)
	for _, ct := range e.ul.Lookup("alice") {
		if ct.Q != 750 || ct.Socket != "tcp:10.9.9.9:5080" {
			t.Errorf("contact %+v", ct)
		}
	}
	lk := request(t, "INVITE", "sip:alice@example.com", "")
	if got := call(t, e.reg, lk, "add_sock_hdr", "X-Sock"); got != 1 {
		t.Errorf("add_sock_hdr = %d", got)
	}
	if got := call(t, e.reg, lk, "add_sock_hdr", ""); got != -1 {
		t.Errorf("add_sock_hdr('') = %d", got)
	}
	out := lk.Msg.Req.Clone()
	lk.Msg.ApplyEdits(out)
	if !strings.Contains(out.String(), "X-Sock: udp:10.0.0.1:5060\r\n") {
		t.Errorf("forwarded: %s", out)
	}
}

func TestULC(t *testing.T) {
	e := defEnv(t)
	setup(t, e, "Contact: <sip:alice@10.0.0.1>;q=1, <sip:alice@10.0.0.2>;q=0.5;+sip.instance=\"<urn:uuid:9>\";reg-id=2\nUser-Agent: ua\n", 0x4)
	w := kemi.NewWorkerState(3)
	c := request(t, "INVITE", "sip:alice@example.com", "")
	c.Worker = w
	if got := call(t, e.reg, c, "reg_fetch_contacts", "location", "sip:alice@example.com", "caller"); got != 1 {
		t.Fatalf("reg_fetch_contacts = %d", got)
	}
	now := e.ul.Now()
	for name, want := range map[string]val.Value{
		"$ulc(caller=>count)":           val.OfInt(2),
		"$ulc(caller=>aor)":             val.OfStr("alice"),
		"$ulc(caller=>domain)":          val.OfStr("location"),
		"$ulc(caller=>addr)":            val.OfStr("sip:alice@10.0.0.1"),
		"$(ulc(caller=>addr)[1])":       val.OfStr("sip:alice@10.0.0.2"),
		"$(ulc(caller=>q)[1])":          val.OfInt(500),
		"$ulc(caller=>expires)":         val.OfInt(now + 3600),
		"$ulc(caller=>cflags)":          val.OfInt(4),
		"$ulc(caller=>user_agent)":      val.OfStr("ua"),
		"$ulc(caller=>instance)":        val.NullValue,
		"$(ulc(caller=>instance)[1])":   val.OfStr("<urn:uuid:9>"),
		"$(ulc(caller=>regid)[1])":      val.OfInt(2),
		"$ulc(caller=>socket)":          val.OfStr("udp:10.0.0.1:5060"),
		"$ulc(caller=>conid)":           val.NullValue,
		"$ulc(caller=>callid)":          val.OfStr("reg-1@192.168.1.2"),
		"$ulc(caller=>received)":        val.OfStr(""),
		"$(ulc(caller=>addr)[5])":       val.NullValue,
		"$ulc(nosuch=>addr)":            val.NullValue,
		"$ulc(caller=>modified)":        val.OfInt(now),
		"$ulc(caller=>methods)":         val.OfInt(int64(usrloc.AllMethods)),
		"$ulc(caller=>server_id)":       val.OfInt(0),
		"$ulc(caller=>flags)":           val.OfInt(0),
		"$ulc(caller=>cseq)":            val.OfInt(1),
		"$ulc(caller=>path)":            val.OfStr(""),
		"$(ulc(caller=>ruid)[0])":       val.OfStr(e.ul.Lookup("alice")[0].RUID),
		"$ulc(caller=>aorhash)":         val.OfInt(int64(aorHash("alice"))),
		"$(ulc(caller=>user_agent)[1])": val.OfStr("ua"),
	} {
		got, err := pv.Get(c, name)
		if err != nil || got != want {
			t.Errorf("%s = %#v, %v; want %#v", name, got, err, want)
		}
	}
	if _, err := pv.Get(c, "$ulc(caller=>bogus)"); err == nil {
		t.Error("bogus attribute accepted")
	}
	// another worker does not see the profile
	other := request(t, "INVITE", "sip:alice@example.com", "")
	other.Worker = kemi.NewWorkerState(4)
	if v, _ := pv.Get(other, "$ulc(caller=>count)"); !v.IsNull() {
		t.Errorf("other worker sees %v", v)
	}
	if got := call(t, e.reg, c, "reg_free_contacts", "caller"); got != 1 {
		t.Errorf("reg_free_contacts = %d", got)
	}
	if v, _ := pv.Get(c, "$ulc(caller=>count)"); !v.IsNull() {
		t.Errorf("after free %v", v)
	}
	if got := call(t, e.reg, c, "reg_fetch_contacts", "location", "sip:nobody@example.com", "caller"); got != -1 {
		t.Errorf("fetch unknown = %d", got)
	}
	if got := call(t, e.reg, c, "reg_fetch_contacts", "location", "", "caller"); got != -1 {
		t.Errorf("fetch empty uri = %d", got)
	}
	if got := call(t, e.reg, c, "reg_free_contacts", ""); got != -1 {
		t.Errorf("free '' = %d", got)
	}
}

func TestGRUU(t *testing.T) {
	e := defEnv(t)
	c, r := register(t, 1, "", "Contact: <sip:alice@10.0.0.1>;+sip.instance=\"<urn:uuid:f81d4fae>\"\nSupported: gruu\n")
	call(t, e.reg, c, "save", "location", 0)
	txt := r.sent[0].String()
	ruid := e.ul.Lookup("alice")[0].RUID
	temp := "sip:" + ruid + "-" + hashHex(aorHash("alice")) + "@example.com;gr"
	if !strings.Contains(txt, ";pub-gruu=\"sip:alice@example.com;gr=urn:uuid:f81d4fae\"") ||
		!strings.Contains(txt, ";temp-gruu=\""+temp+"\"") {
		t.Fatalf("reply: %s", txt)
	}
	setup2, _ := register(t, 2, "call-2", "Contact: <sip:alice@10.0.0.2>;q=1\n")
	call(t, e.reg, setup2, "save", "location", 0)

	for _, tt := range []struct {
		ruri, want string
		ret        int64
		branches   int
	}{
		{"sip:alice@example.com;gr=urn:uuid:f81d4fae", "sip:alice@10.0.0.1", 1, 0},
		{temp, "sip:alice@10.0.0.1", 1, 0},
		{"sip:alice@example.com;gr=urn:uuid:other", "", -1, 0},
		{"sip:nope-zz@example.com;gr", "", -3, 0},
		{"sip:nope-1@example.com;gr", "", -1, 0},
		{"sip:alice@example.com", "sip:alice@10.0.0.2", 1, 1},
	} {
		lk := request(t, "INVITE", tt.ruri, "")
		got := call(t, e.reg, lk, "lookup", "location")
		if got != tt.ret || (tt.want != "" && lk.Msg.RURI() != tt.want) || len(lk.Msg.Branches) != tt.branches {
			t.Errorf("%s: %d %s %d branches", tt.ruri, got, lk.Msg.RURI(), len(lk.Msg.Branches))
		}
	}
}

// TestSQLiteRoundTrip saves through the registrar, restarts usrloc on the
// same database and looks the bindings up again, with write-through
// (db_mode 1) and write-back (db_mode 2: Close writes the pending changes).
func TestSQLiteRoundTrip(t *testing.T) {
	for _, mode := range []int{1, 2} {
		t.Run(fmt.Sprintf("db_mode=%d", mode), func(t *testing.T) { sqliteRoundTrip(t, mode) })
	}
}

func sqliteRoundTrip(t *testing.T, mode int) {
	file := filepath.Join(t.TempDir(), "kemigo.db")
	ucfg := usrloc.DefaultConfig()
	ucfg.DBMode, ucfg.DBURL = mode, "sqlite://"+file
	e := newEnv(t, DefaultConfig(), ucfg)
	c, _ := register(t, 1, "", "Contact: <sip:alice@10.0.0.1>;q=0.5, <sip:alice@10.0.0.2>;q=0.8\nUser-Agent: ua\n")
	c.Msg.BFlags = 2
	call(t, e.reg, c, "save", "location", 0)
	c, _ = register(t, 1, "", "Contact: <sip:mem@10.0.0.3>\n")
	call(t, e.reg, c, "save_uri", "location", SaveMemOnly, "sip:mem@example.com")
	e.ul.Close()

	ul2, err := usrloc.New(ucfg, usrloc.WithClock(e.clk.now))
	if err != nil {
		t.Fatal(err)
	}
	defer ul2.Close()
	reg2, _ := New(DefaultConfig(), ul2)
	lk := request(t, "INVITE", "sip:alice@example.com", "")
	if got := call(t, reg2, lk, "lookup", "location"); got != 1 {
		t.Fatalf("lookup after restart = %d", got)
	}
	if lk.Msg.RURI() != "sip:alice@10.0.0.2" || len(lk.Msg.Branches) != 1 || lk.Msg.Branches[0].URI != "sip:alice@10.0.0.1" ||
		lk.Msg.BFlags != 2 || lk.Msg.Branches[0].Q != 500 {
		t.Errorf("after restart: %s %+v bflags=%d", lk.Msg.RURI(), lk.Msg.Branches, lk.Msg.BFlags)
	}
	lk = request(t, "INVITE", "sip:mem@example.com", "")
	if got := call(t, reg2, lk, "lookup", "location"); got != -1 {
		t.Errorf("memory-only binding survived: %d", got)
	}
	// the refresh after restart updates the same rows (same ruid)
	before := ul2.Lookup("alice")
	c, _ = register(t, 2, "", "Contact: <sip:alice@10.0.0.1>;q=0.5;expires=90\n")
	if got := call(t, reg2, c, "save", "location", 0); got != 2 {
		t.Errorf("refresh = %d", got)
	}
	after := ul2.Lookup("alice")
	ruids := func(cs []usrloc.Contact) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.RUID)
		}
		sort.Strings(s)
		return strings.Join(s, ",")
	}
	if ruids(before) != ruids(after) {
		t.Errorf("ruids changed: %s -> %s", ruids(before), ruids(after))
	}
}

func TestConfigCheck(t *testing.T) {
	ul, _ := usrloc.New(usrloc.DefaultConfig())
	for _, f := range []func(c *Config){
		func(c *Config) { c.OutboundMode = 1 },
		func(c *Config) { c.PathMode = 3 },
		func(c *Config) { c.DefaultQ = 1001 },
		func(c *Config) { c.ReceivedAVP = "RECEIVED" },
		func(c *Config) { c.ExpiresRange = 101 },
	} {
		cfg := DefaultConfig()
		f(&cfg)
		if _, err := New(cfg, ul); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
	for spec, want := range map[string]string{"$avp(RECEIVED)": "RECEIVED", "$avp(s:rcv)": "rcv", "": ""} {
		if got, err := rcvAVPName(spec); err != nil || got != want {
			t.Errorf("rcvAVPName(%q) = %q %v", spec, got, err)
		}
	}
}

func TestHelpers(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "1": 1000, "0.5": 500, "0.123": 123, "0.1234": 123, "1.000": 1000, " 0.25": 250, ".5": 500, "00.5": 500} {
		if got, err := str2q(s); err != nil || got != want {
			t.Errorf("str2q(%q) = %d %v", s, got, err)
		}
	}
	for _, s := range []string{"", "2", "1.5", "0.", "1.", "x", "0.5x", "10"} {
		if _, err := str2q(s); err == nil {
			t.Errorf("str2q(%q) accepted", s)
		}
	}
	for q, want := range map[int]string{-1: "", 0: "0", 1000: "1", 500: "0.5", 250: "0.25", 123: "0.123", 10: "0.01"} {
		if got := q2str(q); got != want {
			t.Errorf("q2str(%d) = %q", q, got)
		}
	}
	if v, ok := parseMethods("INVITE, bye,FOO"); !ok || v != 1|8|methodOther {
		t.Errorf("parseMethods = %d", v)
	}
	if got := pathDstURI("<sip:a;lr>,<sip:b;lr>"); got != "sip:a;lr" {
		t.Errorf("pathDstURI = %q", got)
	}
	for s, want := range map[string]string{"udp:1.2.3.4:5060": "udp:1.2.3.4:5060", "TCP:[::1]:5061": "tcp:[::1]:5061", "x:1:2": "", "udp:1.2.3.4": ""} {
		if got, _ := parseSocket(s); got != want {
			t.Errorf("parseSocket(%q) = %q", s, got)
		}
	}
	if v, ok := parseExpiresHF("60 "); !ok || v != 60 {
		t.Errorf("parseExpiresHF")
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
		if len(col) >= 4 && col[0] == "registrar" {
			cat[col[1]] = sig{col[2], col[3]}
		}
	}
	exps := defEnv(t).reg.Exports()
	seen := map[string]bool{}
	for _, e := range exps {
		want, ok := cat[e.Name]
		if !ok || e.Module != "registrar" {
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
		if !seen[name] {
			t.Errorf("catalog registrar.%s not exported", name)
		}
	}
	kemi.NewTable().Register(exps...)
}
