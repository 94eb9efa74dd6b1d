package rr

import (
	"slices"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// step is one KEMI call and its expected return value.
type step struct {
	fn   string
	args []any // string or int
	want int64
}

func call(fn string, want int64, args ...any) step { return step{fn, args, want} }

func run(t *testing.T, mod *Module, c *kemi.Ctx, steps []step) {
	t.Helper()
	exps := map[string]kemi.Export{}
	for _, e := range mod.Exports() {
		exps[e.Name] = e
	}
	for _, s := range steps {
		e, ok := exps[s.fn]
		if !ok {
			t.Fatalf("no export %s", s.fn)
		}
		var args []val.Value
		for _, a := range s.args {
			switch v := a.(type) {
			case string:
				args = append(args, val.OfStr(v))
			case int:
				args = append(args, val.OfInt(int64(v)))
			}
		}
		if len(args) != len(e.Params) {
			t.Fatalf("%s: %d args for %d params", s.fn, len(args), len(e.Params))
		}
		if got := e.Fn(c, args); got != val.OfInt(s.want) {
			t.Fatalf("%s%v = %v, want %d", s.fn, s.args, got, s.want)
		}
	}
}

// upstreamBye is a BYE from the callee (From tag b1) within a dialog the
// caller (tag a1) started through this proxy.
const upstreamBye = "BYE sip:alice@192.0.2.10 SIP/2.0\n" +
	"Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-2\n" +
	"Route: <sip:10.0.0.1;lr;ftag=a1>\n" +
	"From: <sip:bob@example.com>;tag=b1\n" +
	"To: <sip:alice@example.com>;tag=a1\n" +
	"Call-ID: c1@192.0.2.10\n" +
	"CSeq: 7 BYE\n" +
	"Content-Length: 0\n\n"

func TestRecordRoute(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		raw   string
		setup func(c *kemi.Ctx)
		steps []step
		out   string // outgoing socket proto:ip:port
		want  []string
	}{
		{
			name:  "udp in, same socket out: one RR, port 5060 omitted",
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "enable_full_lr",
			cfg:   func(c *Config) { c.EnableFullLR = 1 },
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr=on;ftag=a1>"},
		},
		{
			name:  "udp to tcp: double RR, outgoing side on top",
			steps: []step{call("record_route", 1)},
			out:   "tcp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;transport=tcp;r2=on;lr;ftag=a1>", "<sip:10.0.0.1;r2=on;lr;ftag=a1>"},
		},
		{
			name:  "other interface and port: double RR",
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.2:5080",
			want:  []string{"<sip:10.0.0.2:5080;r2=on;lr;ftag=a1>", "<sip:10.0.0.1;r2=on;lr;ftag=a1>"},
		},
		{
			name:  "enable_double_rr 0: only the receiving socket",
			cfg:   func(c *Config) { c.EnableDoubleRR = 0 },
			steps: []step{call("record_route", 1)},
			out:   "tcp:10.0.0.2:5080",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "enable_double_rr 2: always two",
			cfg:   func(c *Config) { c.EnableDoubleRR = 2 },
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;r2=on;lr;ftag=a1>", "<sip:10.0.0.1;r2=on;lr;ftag=a1>"},
		},
		{
			name:  "append_fromtag 0",
			cfg:   func(c *Config) { c.AppendFromtag = 0 },
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr>"},
		},
		{
			name: "record_route_params and add_rr_param before and after, on both headers",
			steps: []step{
				call("add_rr_param", 1, ";b=1"),
				call("record_route_params", 1, ";p=1"),
				call("add_rr_param", 1, ";c=2"),
			},
			out: "udp:10.0.0.2:5080",
			want: []string{
				"<sip:10.0.0.2:5080;r2=on;lr;ftag=a1;p=1;b=1;c=2>",
				"<sip:10.0.0.1;r2=on;lr;ftag=a1;p=1;b=1;c=2>",
			},
		},
		{
			name:  "add_rr_param after record_route, single RR",
			steps: []step{call("record_route", 1), call("add_rr_param", 1, ";nat=yes")},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1;nat=yes>"},
		},
		{
			name:  "add_username",
			cfg:   func(c *Config) { c.AddUsername = 1 },
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:bob@10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "add_username: user of the new R-URI when the received one has none",
			cfg:   func(c *Config) { c.AddUsername = 1 },
			raw:   request("INVITE", "sip:example.com", ""),
			setup: func(c *kemi.Ctx) { _ = c.Msg.SetRURI("sip:carol@example.com") },
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:carol@10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "ignore_user changes the first letter",
			cfg:   func(c *Config) { c.AddUsername, c.IgnoreUser = 1, "bob" },
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:xob@10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "custom_user_avp",
			cfg:   func(c *Config) { c.AddUsername, c.CustomUserAVP = 1, "$avp(rru)" },
			setup: func(c *kemi.Ctx) { c.Msg.PushAVP("rru", val.OfStr("dave")) },
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:dave@10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "sips R-URI",
			raw:   request("INVITE", "sips:bob@example.com", ""),
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sips:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "sips R-URI with ignore_sips",
			cfg:   func(c *Config) { c.IgnoreSips = 1 },
			raw:   request("INVITE", "sips:bob@example.com", ""),
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "upstream request: ftag is the To tag",
			raw:   crlf(upstreamBye),
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "IPv6 in, tcp out",
			setup: func(c *kemi.Ctx) { c.Msg.DstIP = "2001:db8::1" },
			steps: []step{call("record_route", 1)},
			out:   "tcp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;transport=tcp;r2=on;lr;ftag=a1>", "<sip:[2001:db8::1];r2=on;lr;ftag=a1>"},
		},
		{
			name:  "received Record-Route stays below ours",
			raw:   invite("Record-Route: <sip:up.example.com;lr>"),
			steps: []step{call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>", "<sip:up.example.com;lr>"},
		},
		{
			name:  "second record_route: -1, one RR",
			steps: []step{call("record_route", 1), call("record_route", -1), call("record_route_params", -1, ";x")},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "branch route: not marked done, both added",
			setup: func(c *kemi.Ctx) { c.Route = kemi.RouteBranch },
			steps: []step{call("record_route", 1), call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>", "<sip:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "remove_record_route: nothing written, still counts as done",
			steps: []step{call("record_route", 1), call("remove_record_route", 1), call("record_route", -1)},
			out:   "tcp:10.0.0.1:5060",
			want:  nil,
		},
		{
			name:  "add_rr_param: 512 bytes at most before record_route",
			steps: []step{call("add_rr_param", 1, ";"+strings.Repeat("a", 511)), call("add_rr_param", -1, ";b")},
			out:   "udp:10.0.0.1:5060",
		},
		{
			name: "record_route_preset_one with params before; add after: -1 with double RR (first still gets it)",
			steps: []step{
				call("add_rr_param", 1, ";b=1"),
				call("record_route_preset_one", 1, "192.0.2.99:5090;transport=tcp"),
				call("add_rr_param", -1, ";c"),
				call("record_route", -1),
			},
			out:  "tcp:10.0.0.1:5060",
			want: []string{"<sip:192.0.2.99:5090;transport=tcp;ftag=a1;b=1;lr;c>"},
		},
		{
			name:  "record_route_preset_one, enable_double_rr 0: add_rr_param after is 1",
			cfg:   func(c *Config) { c.EnableDoubleRR = 0 },
			steps: []step{call("record_route_preset_one", 1, "rr.example.com"), call("add_rr_param", 1, ";c")},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:rr.example.com;ftag=a1;lr;c>"},
		},
		{
			name: "record_route_preset with two addresses, upstream still From tag",
			raw:  crlf(upstreamBye),
			steps: []step{
				call("record_route_preset", 1, "a.example.com", "b.example.com;transport=tcp"),
				call("add_rr_param", 1, ";x"),
			},
			out:  "udp:10.0.0.1:5060",
			want: []string{"<sip:a.example.com;ftag=b1;lr;x>", "<sip:b.example.com;transport=tcp;ftag=b1;lr;x>"},
		},
		{
			name:  "record_route_preset with empty second address: one",
			steps: []step{call("record_route_preset", 1, "a.example.com", "")},
			out:   "tcp:10.0.0.1:5060",
			want:  []string{"<sip:a.example.com;ftag=a1;lr>"},
		},
		{
			name:  "record_route_preset with two addresses needs enable_double_rr",
			cfg:   func(c *Config) { c.EnableDoubleRR = 0 },
			steps: []step{call("record_route_preset", -1, "a.example.com", "b.example.com"), call("record_route", 1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:10.0.0.1;lr;ftag=a1>"},
		},
		{
			name:  "advertised address, same socket",
			steps: []step{call("record_route_advertised_address", 1, "203.0.113.5:5070"), call("record_route", -1)},
			out:   "udp:10.0.0.1:5060",
			want:  []string{"<sip:203.0.113.5:5070;ftag=a1;lr>"},
		},
		{
			name:  "advertised address, udp to tcp: two with transport",
			steps: []step{call("record_route_advertised_address", 1, "203.0.113.5"), call("add_rr_param", 1, ";p")},
			out:   "tcp:10.0.0.1:5060",
			want:  []string{"<sip:203.0.113.5;transport=tcp;r2=on;ftag=a1;lr;p>", "<sip:203.0.113.5;transport=udp;r2=on;ftag=a1;lr;p>"},
		},
		{
			name:  "advertised address, other socket same transport: one with r2 (as Kamailio)",
			steps: []step{call("record_route_advertised_address", 1, "203.0.113.5")},
			out:   "udp:10.0.0.2:5080",
			want:  []string{"<sip:203.0.113.5;r2=on;ftag=a1;lr>"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mod := newModule(t, tc.cfg)
			raw := tc.raw
			if raw == "" {
				raw = invite()
			}
			c := newCtx(t, raw)
			if tc.setup != nil {
				tc.setup(c)
			}
			run(t, mod, c, tc.steps)
			proto, rest, _ := strings.Cut(tc.out, ":")
			i := strings.LastIndexByte(rest, ':')
			port := 0
			for _, d := range rest[i+1:] {
				port = port*10 + int(d-'0')
			}
			_, got := wire(mod, c, proto, rest[:i], port)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Record-Route:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// The Record-Route goes above everything, the proxy's Via included when
// the forwarder adds it before calling OnForward.
func TestOnForwardPosition(t *testing.T) {
	mod := newModule(t, nil)
	c := newCtx(t, invite())
	run(t, mod, c, []step{call("record_route", 1)})
	out := c.Msg.Req.Clone()
	c.Msg.ApplyEdits(out)
	out.PrependHeader(sipmsg.ParseEditHeaders("Via: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK-p\r\n")...)
	mod.OnForward(c, out, c.Msg, "tcp", "10.0.0.1", 5060)
	hs := out.Headers()
	if len(hs) < 3 || hs[0].Name() != "Record-Route" || hs[1].Name() != "Record-Route" || hs[2].Name() != "Via" {
		t.Fatalf("headers: %v", out.String())
	}
	if rr := out.RecordRoute(); rr == nil || rr.Value() != "<sip:10.0.0.1;transport=tcp;r2=on;lr;ftag=a1>" {
		t.Fatalf("RecordRoute() = %v", rr)
	}
	// The received message is untouched.
	if c.Msg.Req.RecordRoute() != nil {
		t.Fatal("received request got a Record-Route")
	}
	// Nothing record-routed: OnForward adds nothing.
	c2 := newCtx(t, invite())
	out2 := c2.Msg.Req.Clone()
	mod.OnForward(nil, out2, c2.Msg, "udp", "10.0.0.1", 5060)
	if len(out2.Headers()) != len(c2.Msg.Req.Headers()) {
		t.Fatal("headers added without record_route")
	}
}

// A parameter sipgo cannot render back is kept verbatim (generic header).
func TestOnForwardVerbatimParams(t *testing.T) {
	mod := newModule(t, nil)
	c := newCtx(t, invite())
	run(t, mod, c, []step{call("record_route_params", 1, `;x="a b"`)})
	_, got := wire(mod, c, "udp", "10.0.0.1", 5060)
	if want := []string{`<sip:10.0.0.1;lr;ftag=a1;x="a b">`}; !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
}

// Each branch works on its own copy of the message (Msg and Ext map
// copied): a Record-Route added in one branch's copy stays out of the
// others.
func TestStatePerBranchCopy(t *testing.T) {
	mod := newModule(t, nil)
	c := newCtx(t, invite())
	run(t, mod, c, []step{call("record_route", 1)})

	copyMsg := func() *sipmsg.Msg {
		cp := *c.Msg
		cp.Ext = map[string]any{}
		for k, v := range c.Msg.Ext {
			cp.Ext[k] = v
		}
		return &cp
	}
	b1, b2 := copyMsg(), copyMsg()
	bc := *c
	bc.Route, bc.Msg = kemi.RouteBranch, b1
	run(t, mod, &bc, []step{call("add_rr_param", 1, ";b1")})
	if got := mod.RecordRouteHeaders(b1, "udp", "10.0.0.1", 5060); !slices.Equal(got, []string{"<sip:10.0.0.1;lr;ftag=a1;b1>"}) {
		t.Fatalf("branch 1: %q", got)
	}
	if got := mod.RecordRouteHeaders(b2, "udp", "10.0.0.1", 5060); !slices.Equal(got, []string{"<sip:10.0.0.1;lr;ftag=a1>"}) {
		t.Fatalf("branch 2: %q", got)
	}
	if got := mod.RecordRouteHeaders(c.Msg, "udp", "10.0.0.1", 5060); !slices.Equal(got, []string{"<sip:10.0.0.1;lr;ftag=a1>"}) {
		t.Fatalf("original: %q", got)
	}
}

func TestRecordRouteErrors(t *testing.T) {
	mod := newModule(t, nil)
	// No From header: the ftag cannot be taken.
	raw := crlf("INVITE sip:bob@example.com SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		"To: <sip:bob@example.com>\n" +
		"Call-ID: c9\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
	c := newCtx(t, raw)
	run(t, mod, c, []step{call("record_route", -1), call("record_route_preset_one", -1, "x"), call("record_route_advertised_address", -1, "x")})
	// A reply cannot be record-routed.
	res := crlf("SIP/2.0 200 OK\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		"From: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\n" +
		"Call-ID: c9\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
	c = newCtx(t, res)
	run(t, mod, c, []step{call("record_route", -1), call("loose_route", -1), call("check_route_param", -1, "."), call("next_hop_route", -1)})
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{CustomUserAVP: "$var(x)"},
		{CustomUserAVP: "$avp("},
		{EnableDoubleRR: 3},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := New(DefaultConfig(), nil); err != nil {
		t.Fatal(err)
	}
}
