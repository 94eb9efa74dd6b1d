package sl

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// fakeReplier records the replies "sent".
type fakeReplier struct {
	sent []*sip.Response
	err  error
}

func (f *fakeReplier) SendReply(m *sipmsg.Msg, res *sip.Response) error {
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, res)
	return nil
}

func request(t *testing.T, method, extra string) (*kemi.Ctx, *fakeReplier) {
	t.Helper()
	raw := method + " sip:bob@biloxi.example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n" +
		"To: Bob <sip:bob@biloxi.example.com>" + extra + "\r\n" +
		"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n" +
		"CSeq: 314159 " + method + "\r\n" +
		"Content-Length: 0\r\n\r\n"
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeReplier{}
	m.Replier = r
	m.Proto, m.SrcIP, m.SrcPort = "udp", "192.0.2.10", 5060
	return &kemi.Ctx{Msg: m, Route: kemi.RouteRequest}, r
}

func replyCtx(t *testing.T, code int) *kemi.Ctx {
	t.Helper()
	raw := "SIP/2.0 " + strconv.Itoa(code) + " Whatever\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &kemi.Ctx{Msg: m, Route: kemi.RouteReply}
}

func toTag(res *sip.Response) string {
	if to := res.To(); to != nil {
		t, _ := to.Params.Get("tag")
		return t
	}
	return ""
}

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

func TestSlSendReply(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		toExtra string
		code    int
		reason  string
		setup   func(c *kemi.Ctx, r *fakeReplier)
		want    int64
		sent    bool
		wantTag string // "local", "", or an exact tag
	}{
		{name: "404", method: "INVITE", code: 404, reason: "Not Found", want: 1, sent: true, wantTag: "local"},
		{name: "100 has no tag", method: "INVITE", code: 100, reason: "Trying", want: 1, sent: true, wantTag: ""},
		{name: "180 gets a tag", method: "INVITE", code: 180, reason: "Ringing", want: 1, sent: true, wantTag: "local"},
		{name: "existing tag kept", method: "BYE", toExtra: ";tag=abc", code: 200, reason: "OK", want: 1, sent: true, wantTag: "abc"},
		{name: "ACK", method: "ACK", code: 200, reason: "OK", want: -1},
		{name: "no-reply", method: "INVITE", code: 403, reason: "Forbidden", want: -2,
			setup: func(c *kemi.Ctx, _ *fakeReplier) { c.Msg.NoReply = true }},
		{name: "send error", method: "INVITE", code: 403, reason: "Forbidden", want: -1,
			setup: func(_ *kemi.Ctx, r *fakeReplier) { r.err = errors.New("boom") }},
		{name: "no reply path", method: "OPTIONS", code: 200, reason: "OK", want: -1,
			setup: func(c *kemi.Ctx, _ *fakeReplier) { c.Msg.Replier = nil }},
		{name: "bad code", method: "INVITE", code: 99, reason: "x", want: -1},
		{name: "bad code high", method: "INVITE", code: 700, reason: "x", want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(DefaultConfig())
			c, r := request(t, tt.method, tt.toExtra)
			if tt.setup != nil {
				tt.setup(c, r)
			}
			if got := call(t, m, c, "sl_send_reply", tt.code, tt.reason); got != tt.want {
				t.Fatalf("sl_send_reply = %d, want %d", got, tt.want)
			}
			if !tt.sent {
				if len(r.sent) != 0 {
					t.Fatalf("a reply was sent: %v", r.sent[0].StartLine())
				}
				return
			}
			if len(r.sent) != 1 {
				t.Fatalf("%d replies sent", len(r.sent))
			}
			res := r.sent[0]
			if res.StatusCode != tt.code || res.Reason != tt.reason {
				t.Errorf("sent %d %q", res.StatusCode, res.Reason)
			}
			switch tag := toTag(res); tt.wantTag {
			case "local":
				if tag == "" || tag != c.Msg.LocalToTag() {
					t.Errorf("To-tag %q, want the local tag %q", tag, c.Msg.LocalToTag())
				}
			default:
				if tag != tt.wantTag {
					t.Errorf("To-tag %q, want %q", tag, tt.wantTag)
				}
			}
			if c.Msg.Replied != 1 {
				t.Errorf("Replied = %d", c.Msg.Replied)
			}
		})
	}
}

func TestSameTagOnTwoReplies(t *testing.T) {
	m := New(DefaultConfig())
	c, r := request(t, "INVITE", "")
	c.Msg.ReplyHdrs = []string{"X-Reply-Hdr: yes\r\n"}
	if call(t, m, c, "sl_send_reply", 180, "Ringing") != 1 || call(t, m, c, "sl_send_reply", 200, "Probe OK") != 1 ||
		call(t, m, c, "sl_send_reply", 200, "second") != 1 {
		t.Fatal("send failed")
	}
	if len(r.sent) != 3 {
		t.Fatalf("%d replies", len(r.sent))
	}
	tag := toTag(r.sent[0])
	for i, res := range r.sent {
		if toTag(res) != tag || tag == "" {
			t.Errorf("reply %d To-tag %q, want %q", i, toTag(res), tag)
		}
		if h := res.GetHeader("X-Reply-Hdr"); h == nil || h.Value() != "yes" {
			t.Errorf("reply %d lacks the append_to_reply header", i)
		}
		if res.GetHeader("Contact") != nil {
			t.Errorf("reply %d has a Contact", i)
		}
	}
	if r.sent[2].Reason != "second" {
		t.Errorf("third reply reason %q", r.sent[2].Reason)
	}
	st := m.Stats()
	if st["200_replies"] != 2 || st["1xx_replies"] != 1 || st["sent_replies"] != 3 || st["sent_err_replies"] != 0 {
		t.Errorf("stats %v", st)
	}
}

func TestRedirectContact(t *testing.T) {
	tests := []struct {
		name     string
		rich     int
		rewrite  string
		branches []Branch
		code     int
		want     string // Contact value, "" for none
	}{
		{name: "no dest set", code: 302},
		{name: "rewritten ruri", code: 302, rewrite: "sip:carol@chicago.example.com",
			want: "<sip:carol@chicago.example.com>"},
		{name: "not for 2xx", code: 200, rewrite: "sip:carol@chicago.example.com"},
		{name: "branches", code: 300, rewrite: "sip:a@x",
			branches: []Branch{{URI: "sip:b@y", Q: 500}, {URI: "sip:c@z", Q: 1000}, {URI: "sip:d@w", Q: QUnspecified}},
			want:     "<sip:a@x>, <sip:b@y>;q=0.5, <sip:c@z>;q=1, <sip:d@w>"},
		{name: "branches only", code: 301, branches: []Branch{{URI: "sip:b@y", Q: 250}},
			want: "<sip:b@y>;q=0.25"},
		{name: "rich flags and path", code: 302, rich: 3,
			branches: []Branch{{URI: "sip:b@y", Q: QUnspecified, Flags: 6, Path: "<sip:p1;lr>"}},
			want:     "<sip:b@y?Route=%3csip:p1%3blr%3e>;flags=6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RichRedirect = tt.rich
			m := New(cfg)
			if tt.branches != nil {
				m.SetBranches(func(*sipmsg.Msg) []Branch { return tt.branches })
			}
			c, r := request(t, "INVITE", "")
			c.Msg.ReplyHdrs = []string{"X-A: 1\r\n"}
			if tt.rewrite != "" {
				if err := c.Msg.SetRURI(tt.rewrite); err != nil {
					t.Fatal(err)
				}
			}
			if got := call(t, m, c, "sl_send_reply", tt.code, "Moved"); got != 1 {
				t.Fatalf("sl_send_reply = %d", got)
			}
			h := r.sent[0].GetHeader("Contact")
			switch {
			case tt.want == "" && h != nil:
				t.Errorf("unexpected Contact %q", h.Value())
			case tt.want != "" && (h == nil || h.Value() != tt.want):
				t.Errorf("Contact = %v, want %q", h, tt.want)
			}
			if len(c.Msg.ReplyHdrs) != 1 {
				t.Errorf("ReplyHdrs changed: %q", c.Msg.ReplyHdrs)
			}
			if tt.want != "" {
				// the Contact follows the append_to_reply headers
				hs := r.sent[0].Headers()
				ia, ic := -1, -1
				for i, h := range hs {
					switch strings.ToLower(h.Name()) {
					case "x-a":
						ia = i
					case "contact":
						ic = i
					}
				}
				if ia < 0 || ic < ia {
					t.Errorf("header order: X-A at %d, Contact at %d", ia, ic)
				}
			}
		})
	}
}

// fakeTM is a StatefulReplier.
type fakeTM struct {
	handled bool
	rc      int
	calls   []string
}

func (f *fakeTM) TReply(c *kemi.Ctx, code int, reason string) (bool, int) {
	f.calls = append(f.calls, strconv.Itoa(code)+" "+reason)
	return f.handled, f.rc
}

func TestSendReply(t *testing.T) {
	tests := []struct {
		name      string
		tm        *fakeTM
		bindTM    int
		reply     bool
		noReply   bool
		want      int64
		stateless bool // a stateless reply went out
		tmCalled  bool
	}{
		{name: "no tm: stateless", want: 1, stateless: true},
		{name: "tm without transaction", tm: &fakeTM{handled: false}, bindTM: 1, want: 1, stateless: true, tmCalled: true},
		{name: "tm with transaction", tm: &fakeTM{handled: true, rc: 1}, bindTM: 1, want: 1, tmCalled: true},
		{name: "tm failure", tm: &fakeTM{handled: true, rc: -3}, bindTM: 1, want: -1, tmCalled: true},
		{name: "bind_tm=0", tm: &fakeTM{handled: true, rc: 1}, bindTM: 0, want: 1, stateless: true},
		{name: "no-reply first", tm: &fakeTM{handled: true, rc: 1}, bindTM: 1, noReply: true, want: -2},
		{name: "on a reply without transaction", reply: true, want: -1},
		{name: "on a reply with transaction", tm: &fakeTM{handled: true, rc: 1}, bindTM: 1, reply: true, want: 1, tmCalled: true},
	}
	for _, tt := range tests {
		for _, fn := range []string{"send_reply", "send_reply_mode"} {
			t.Run(tt.name+"/"+fn, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.BindTM = tt.bindTM
				m := New(cfg)
				if tt.tm != nil {
					tt.tm.calls = nil
					m.SetStateful(tt.tm)
				}
				var c *kemi.Ctx
				r := &fakeReplier{}
				if tt.reply {
					c = replyCtx(t, 200)
				} else {
					c, r = request(t, "INVITE", "")
				}
				c.Msg.NoReply = tt.noReply
				args := []any{486, "Busy Here"}
				if fn == "send_reply_mode" {
					args = append(args, 3)
				}
				if got := call(t, m, c, fn, args...); got != tt.want {
					t.Errorf("%s = %d, want %d", fn, got, tt.want)
				}
				if (len(r.sent) == 1) != tt.stateless {
					t.Errorf("stateless replies: %d", len(r.sent))
				}
				if tt.tm != nil && (len(tt.tm.calls) == 1) != tt.tmCalled {
					t.Errorf("tm calls: %v", tt.tm.calls)
				}
				if tt.tmCalled && tt.tm.calls[0] != "486 Busy Here" {
					t.Errorf("tm got %q", tt.tm.calls[0])
				}
			})
		}
	}
}

func TestReplyError(t *testing.T) {
	tests := []struct {
		lastErr int
		code    int
		reason  string
	}{
		{0, 500, "I'm terribly sorry, server error occurred (1/SL)"},
		{-1, 500, "I'm terribly sorry, server error occurred (1/SL)"},
		{-6, 500, "I'm terribly sorry, server error occurred (6/SL)"},
		{-400, 400, "Bad Request (400/SL)"},
		{-9, 400, "Transaction tuple incomplete (9/SL)"},
		{-13, 400, "Bad To (13/SL)"},
		{-15, 400, "Invalid character in q parameter (15/SL)"},
		{-477, 477, "Unfortunately error on sending to next hop occurred (477/SL)"},
		{-478, 478, "Unresolvable destination (478/SL)"},
		{-479, 479, "Regretfully, we were not able to process the URI (479/SL)"},
		{479, 479, "Regretfully, we were not able to process the URI (479/SL)"},
		{-487, 487, "Transaction canceled (487/SL)"},
		{-11, 500, "Error in external logic (11/SL)"},
		{-12, 500, "Forking capacity exceeded (12/SL)"},
		{-2, 500, "No error (2/SL)"},
	}
	for _, tt := range tests {
		m := New(DefaultConfig())
		c, r := request(t, "INVITE", "")
		c.Msg.LastErr = tt.lastErr
		if got := call(t, m, c, "sl_reply_error"); got != 1 {
			t.Errorf("LastErr %d: sl_reply_error = %d", tt.lastErr, got)
		}
		if len(r.sent) != 1 || r.sent[0].StatusCode != tt.code || r.sent[0].Reason != tt.reason {
			if len(r.sent) == 1 {
				t.Errorf("LastErr %d: sent %d %q, want %d %q", tt.lastErr, r.sent[0].StatusCode, r.sent[0].Reason, tt.code, tt.reason)
			} else {
				t.Errorf("LastErr %d: %d replies", tt.lastErr, len(r.sent))
			}
		}
	}
	m := New(DefaultConfig())
	c, r := request(t, "INVITE", "")
	c.Msg.NoReply = true
	if got := call(t, m, c, "sl_reply_error"); got != -2 || len(r.sent) != 0 {
		t.Errorf("no-reply: %d, %d sent", got, len(r.sent))
	}
	c, r = request(t, "ACK", "")
	if got := call(t, m, c, "sl_reply_error"); got != 1 || len(r.sent) != 0 {
		t.Errorf("ACK: %d, %d sent", got, len(r.sent))
	}
}

type fakeForwarder struct {
	code   int
	reason string
	err    error
	n      int
}

func (f *fakeForwarder) ForwardReply(c *kemi.Ctx, m *sipmsg.Msg, code int, reason string) error {
	f.n++
	f.code, f.reason = code, reason
	return f.err
}

func TestForwardReply(t *testing.T) {
	tests := []struct {
		name       string
		request    bool
		status     int
		code       string
		reason     string
		fwd        *fakeForwarder
		want       int64
		wantCode   int
		wantReason string
	}{
		{name: "as is", status: 408, fwd: &fakeForwarder{}, want: 1},
		{name: "new code and reason", status: 408, code: "404", reason: "Not found", fwd: &fakeForwarder{}, want: 1, wantCode: 404, wantReason: "Not found"},
		{name: "reason only", status: 486, reason: "Busy", fwd: &fakeForwarder{}, want: 1, wantReason: "Busy"},
		{name: "class change", status: 408, code: "503", fwd: &fakeForwarder{}, want: -1},
		{name: "bad length", status: 408, code: "40", fwd: &fakeForwarder{}, want: -1},
		{name: "bad digit", status: 408, code: "4x4", fwd: &fakeForwarder{}, want: -1},
		{name: "on a request", request: true, fwd: &fakeForwarder{}, want: -1},
		{name: "no forwarder", status: 408, want: -1},
		{name: "forward error", status: 408, fwd: &fakeForwarder{err: errors.New("down")}, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(DefaultConfig())
			if tt.fwd != nil {
				m.SetForwarder(tt.fwd)
			}
			var c *kemi.Ctx
			if tt.request {
				c, _ = request(t, "INVITE", "")
			} else {
				c = replyCtx(t, tt.status)
			}
			if got := call(t, m, c, "sl_forward_reply", tt.code, tt.reason); got != tt.want {
				t.Fatalf("sl_forward_reply = %d, want %d", got, tt.want)
			}
			if tt.want == 1 && (tt.fwd.code != tt.wantCode || tt.fwd.reason != tt.wantReason) {
				t.Errorf("forwarded with %d %q", tt.fwd.code, tt.fwd.reason)
			}
			if tt.want != 1 && tt.fwd != nil && tt.fwd.err == nil && tt.fwd.n != 0 {
				t.Errorf("forwarder called")
			}
		})
	}
}

func TestFilterACK(t *testing.T) {
	m := New(DefaultConfig())
	inv, r := request(t, "INVITE", "")
	call(t, m, inv, "sl_send_reply", 486, "Busy Here")
	tag := toTag(r.sent[0])
	ack, _ := request(t, "ACK", ";tag="+tag)
	other, _ := request(t, "ACK", ";tag=someone-else")
	untagged, _ := request(t, "ACK", "")
	bye, _ := request(t, "BYE", ";tag="+tag)
	for _, tt := range []struct {
		name string
		c    *kemi.Ctx
		want bool
	}{{"local ACK", ack, true}, {"foreign ACK", other, false}, {"no tag", untagged, false}, {"not an ACK", bye, false}} {
		if got := m.FilterACK(tt.c.Msg); got != tt.want {
			t.Errorf("%s: FilterACK = %v", tt.name, got)
		}
	}
	if ack.Msg.ToTag != "" {
		t.Error("FilterACK changed the ACK's ToTag cache")
	}
	if m.Stats()["received_ACKs"] != 1 {
		t.Errorf("stats %v", m.Stats())
	}
}

func TestLocalResponseHook(t *testing.T) {
	m := New(DefaultConfig())
	var got []int
	m.SetLocalResponseHook(func(c *kemi.Ctx, res *sip.Response) { got = append(got, res.StatusCode) })
	c, _ := request(t, "OPTIONS", "")
	call(t, m, c, "sl_send_reply", 200, "OK")
	c.Msg.NoReply = true
	call(t, m, c, "sl_send_reply", 500, "x")
	if len(got) != 1 || got[0] != 200 {
		t.Errorf("hook saw %v", got)
	}
}

func TestLTT(t *testing.T) {
	New(DefaultConfig())
	c, _ := request(t, "INVITE", "")
	for _, tt := range []struct {
		name string
		tx   any
		want val.Value
		err  bool
	}{
		{name: "$ltt(s)", want: val.OfStr(c.Msg.LocalToTag())},
		{name: "$ltt(x)", want: val.OfStr(c.Msg.LocalToTag())},
		{name: "$ltt(t)", want: val.NullValue},
		{name: "$ltt(t)", tx: struct{}{}, want: val.OfStr(c.Msg.LocalToTag())},
		{name: "$ltt(q)", err: true},
	} {
		c.Tx = tt.tx
		got, err := pv.Get(c, tt.name)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("%s (tx %v) = %#v, %v", tt.name, tt.tx, got, err)
		}
	}
	if v, _ := pv.Get(replyCtx(t, 200), "$ltt(s)"); !v.IsNull() {
		t.Errorf("$ltt on a reply = %#v", v)
	}
}

func TestHelpers(t *testing.T) {
	for q, want := range map[int]string{0: "0", -5: "0", 1000: "1", 1200: "1", 500: "0.5", 250: "0.25", 123: "0.123", 10: "0.01"} {
		if got := q2str(q); got != want {
			t.Errorf("q2str(%d) = %q, want %q", q, got, want)
		}
	}
	if got := escapeParam("<sip:a@b;lr>"); got != "%3csip:a%40b%3blr%3e" {
		t.Errorf("escapeParam = %q", got)
	}
	for code, want := range map[int]string{100: "1xx_replies", 183: "1xx_replies", 200: "200_replies", 204: "2xx_replies",
		302: "302_replies", 399: "3xx_replies", 483: "483_replies", 488: "4xx_replies", 500: "500_replies",
		503: "5xx_replies", 603: "6xx_replies", 700: "xxx_replies"} {
		if got := statNames[statIndex(code)]; got != want {
			t.Errorf("statIndex(%d) = %s, want %s", code, got, want)
		}
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
		if len(cols) >= 4 && cols[0] == "sl" {
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
	if len(got) != len(want) {
		t.Errorf("%d exports, catalog has %d", len(got), len(want))
	}
	for name, sig := range want {
		if got[name] != sig {
			t.Errorf("sl.%s: got %q, catalog %q", name, got[name], sig)
		}
	}
	kemi.NewTable().Register(exps...)
}
