package pv

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

const testInvite = "INVITE sip:bob@example.com;transport=tcp SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK2\r\n" +
	"From: \"Alice\" <sip:alice@example.org>;tag=ftag\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: call-1\r\n" +
	"CSeq: 7 INVITE\r\n" +
	"Contact: <sip:alice@10.0.0.1:5060>\r\n" +
	"User-Agent: tester/1.0\r\n" +
	"X-Multi: a\r\n" +
	"X-Multi: b\r\n" +
	"X-Multi: c\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 4\r\n\r\n" +
	"v=0\n"

const testReply = "SIP/2.0 486 Busy Here\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
	"From: <sip:alice@example.org>;tag=ftag\r\n" +
	"To: <sip:bob@example.com>;tag=ttag\r\n" +
	"Call-ID: call-1\r\n" +
	"CSeq: 7 INVITE\r\n" +
	"Content-Length: 0\r\n\r\n"

const noUserReq = "OPTIONS sip:[::1]:5080 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n" +
	"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

func newCtx(t *testing.T, raw string) *kemi.Ctx {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	m.Proto, m.SrcIP, m.SrcPort, m.DstIP, m.DstPort = "udp", "10.0.0.1", 5060, "192.168.1.1", 5060
	return &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
}

func TestBuiltinGet(t *testing.T) {
	S, I, N := val.OfStr, val.OfInt, val.NullValue
	tests := []struct {
		msg  string
		name string
		want val.Value
	}{
		{testInvite, "$rm", S("INVITE")},
		{testInvite, "$ru", S("sip:bob@example.com;transport=tcp")},
		{testInvite, "$ruri", S("sip:bob@example.com;transport=tcp")},
		{testInvite, "$rU", S("bob")},
		{testInvite, "$rd", S("example.com")},
		{testInvite, "$rp", S("5060")},
		{testInvite, "$rz", S("sip")},
		{testInvite, "$ou", S("sip:bob@example.com;transport=tcp")},
		{testInvite, "$oU", S("bob")},
		{testInvite, "$od", S("example.com")},
		{testInvite, "$op", S("5060")},
		{testInvite, "$du", N},
		{testInvite, "$fu", S("sip:alice@example.org")},
		{testInvite, "$from", S("sip:alice@example.org")},
		{testInvite, "$fU", S("alice")},
		{testInvite, "$fd", S("example.org")},
		{testInvite, "$fn", S(`"Alice"`)},
		{testInvite, "$ft", S("ftag")},
		{testInvite, "$tu", S("sip:bob@example.com")},
		{testInvite, "$tU", S("bob")},
		{testInvite, "$td", S("example.com")},
		{testInvite, "$tn", N},
		{testInvite, "$tt", N},
		{testInvite, "$si", S("10.0.0.1")},
		{testInvite, "$sp", I(5060)},
		{testInvite, "$su", S("sip:10.0.0.1:5060")},
		{testInvite, "$Ri", S("192.168.1.1")},
		{testInvite, "$Rp", I(5060)},
		{testInvite, "$RAi", S("192.168.1.1")},
		{testInvite, "$RAp", I(5060)},
		{testInvite, "$Ru", S("sip:192.168.1.1:5060")},
		{testInvite, "$pr", S("udp")},
		{testInvite, "$proto", S("udp")},
		{testInvite, "$ua", S("tester/1.0")},
		{testInvite, "$ci", S("call-1")},
		{testInvite, "$cs", S("7")},
		{testInvite, "$ct", S("<sip:alice@10.0.0.1:5060>")},
		{testInvite, "$cT", S("application/sdp")},
		{testInvite, "$cl", I(4)},
		{testInvite, "$rb", S("v=0\n")},
		{testInvite, "$rs", N},
		{testInvite, "$rr", N},
		{testInvite, "$mt", I(1)},
		{testInvite, "$rv", S("SIP/2.0")},
		{testInvite, "$mf", I(0)},
		{testInvite, "$bf", I(0)},
		{testInvite, "$T_branch_idx", I(-1)},
		{testInvite, "$hdr(X-Multi)", S("a")},
		{testInvite, "$hdr(x-multi)", S("a")},
		{testInvite, "$(hdr(X-Multi)[1])", S("b")},
		{testInvite, "$(hdr(X-Multi)[-1])", S("c")},
		{testInvite, "$(hdr(X-Multi)[-3])", S("a")},
		{testInvite, "$(hdr(X-Multi)[3])", N},
		{testInvite, "$(hdr(X-Multi)[-4])", N},
		{testInvite, "$(hdr(X-Multi)[*])", S("a,b,c")},
		{testInvite, "$hdr(X-None)", N},
		{testInvite, "$hdr(v)", S("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1")},
		{testInvite, "$(hdr(Via)[1])", S("SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK2")},
		{testInvite, "$var(unset)", I(0)},
		{testInvite, "$vz(unset)", I(0)},
		{testInvite, "$vn(unset)", N},
		{testInvite, "$avp(unset)", N},
		{testReply, "$rm", S("INVITE")},
		{testReply, "$rs", I(486)},
		{testReply, "$rr", S("Busy Here")},
		{testReply, "$ru", N},
		{testReply, "$rU", N},
		{testReply, "$ou", N},
		{testReply, "$tt", S("ttag")},
		{testReply, "$mt", I(2)},
		{testReply, "$ua", N},
		{testReply, "$ct", N},
		{testReply, "$cl", I(0)},
		{testReply, "$rb", S("")},
		{noUserReq, "$rU", N},
		{noUserReq, "$rd", S("[::1]")},
		{noUserReq, "$rp", S("5080")},
		{noUserReq, "$fn", N},
	}
	for _, tt := range tests {
		c := newCtx(t, tt.msg)
		got, err := Get(c, tt.name)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s on %.10q = %#v, want %#v", tt.name, tt.msg, got, tt.want)
		}
	}
}

func TestBuiltinMiscGet(t *testing.T) {
	c := newCtx(t, testInvite)
	if v, _ := Get(c, "$rp"); v != val.OfStr("5060") {
		t.Errorf("$rp = %v", v)
	}
	c.Msg.SetRURI("sip:x@h;transport=TLS")
	if v, _ := Get(c, "$rp"); v != val.OfStr("5061") {
		t.Errorf("$rp tls = %v", v)
	}
	c.Msg.SetRURI("sips:x@h")
	if v, _ := Get(c, "$rz"); v != val.OfStr("sips") {
		t.Errorf("$rz = %v", v)
	}
	c.Msg.Proto = "tcp"
	if v, _ := Get(c, "$su"); v != val.OfStr("sip:10.0.0.1:5060;transport=tcp") {
		t.Errorf("$su = %v", v)
	}
	c.Msg.SrcIP = "2001:db8::1"
	if v, _ := Get(c, "$su"); v != val.OfStr("sip:[2001:db8::1]:5060;transport=tcp") {
		t.Errorf("$su v6 = %v", v)
	}
	if v, _ := Get(c, "$ml"); v.Kind != val.Int || v.I < 100 {
		t.Errorf("$ml = %v", v)
	}
	if v, _ := Get(c, "$mb"); v.Kind != val.Str || !strings.HasPrefix(v.S, "INVITE sip:bob@example.com") {
		t.Errorf("$mb = %v", v)
	}
	c.Msg.Recv = time.Date(2024, 3, 5, 10, 20, 30, 0, time.Local)
	for name, want := range map[string]int64{"$time(sec)": 30, "$time(min)": 20, "$time(hour)": 10,
		"$time(mday)": 5, "$time(mon)": 3, "$time(year)": 2024, "$time(wday)": 3, "$time(yday)": 65,
		"$Ts": c.Msg.Recv.Unix()} {
		if v, err := Get(c, name); err != nil || v != val.OfInt(want) {
			t.Errorf("%s = %v %v, want %d", name, v, err, want)
		}
	}
	if _, err := Get(c, "$time(bogus)"); err == nil {
		t.Error("$time(bogus) did not fail")
	}
	if v, _ := Get(c, "$TS"); v.Kind != val.Int || v.I < time.Now().Unix()-5 {
		t.Errorf("$TS = %v", v)
	}
	c.BranchIdx = 2
	if v, _ := Get(c, "$T_branch_idx"); v != val.OfInt(2) {
		t.Errorf("$T_branch_idx = %v", v)
	}
	if _, err := Get(c, "$nosuchpv"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown pv err = %v", err)
	}
}

func TestBuiltinSet(t *testing.T) {
	S, I, N := val.OfStr, val.OfInt, val.NullValue
	type check struct {
		name string
		want val.Value
	}
	tests := []struct {
		msg    string
		name   string
		v      val.Value
		err    error // nil: success
		checks []check
	}{
		{testInvite, "$ru", S("sip:carol@example.net"), nil,
			[]check{{"$ru", S("sip:carol@example.net")}, {"$rU", S("carol")}, {"$ou", S("sip:bob@example.com;transport=tcp")}}},
		{testInvite, "$ru", I(5), ErrType, []check{{"$ru", S("sip:bob@example.com;transport=tcp")}}},
		{testInvite, "$ru", N, ErrType, nil},
		{testReply, "$ru", S("sip:x@y"), ErrReadOnly, nil},
		{testInvite, "$rU", S("dave"), nil, []check{{"$ru", S("sip:dave@example.com;transport=tcp")}}},
		{testInvite, "$rU", N, nil, []check{{"$ru", S("sip:example.com;transport=tcp")}, {"$rU", N}}},
		{testInvite, "$rU", I(1), ErrType, nil},
		{testInvite, "$rd", S("example.net"), nil, []check{{"$ru", S("sip:bob@example.net;transport=tcp")}}},
		{testInvite, "$rd", I(1), ErrType, nil},
		{testInvite, "$rp", I(5080), nil, []check{{"$ru", S("sip:bob@example.com:5080;transport=tcp")}, {"$rp", S("5080")}}},
		{testInvite, "$rp", S("5090"), nil, []check{{"$rp", S("5090")}}},
		{testInvite, "$rp", S("abc"), ErrType, nil},
		{noUserReq, "$rp", N, nil, []check{{"$ru", S("sip:[::1]")}}},
		{testInvite, "$du", S("sip:10.9.9.9:5070"), nil, []check{{"$du", S("sip:10.9.9.9:5070")}}},
		{testInvite, "$du", N, nil, []check{{"$du", N}}},
		{testInvite, "$du", I(1), ErrType, nil},
		{testInvite, "$mf", I(5), nil, []check{{"$mf", I(5)}}},
		{testInvite, "$mf", S("5"), ErrType, nil},
		{testInvite, "$bf", I(3), nil, []check{{"$bf", I(3)}}},
		{testInvite, "$var(x)", S("abc"), nil, []check{{"$var(x)", S("abc")}, {"$vz(x)", S("abc")}, {"$vn(x)", N}}},
		{testInvite, "$var(x)", I(7), nil, []check{{"$var(x)", I(7)}}},
		{testInvite, "$var(x)", N, nil, []check{{"$var(x)", I(0)}}},
		{testInvite, "$vn(x)", I(7), nil, []check{{"$vn(x)", I(7)}, {"$var(x)", I(0)}}},
		{testInvite, "$avp(a)", I(1), nil, []check{{"$avp(a)", I(1)}, {"$avp(s:a)", I(1)}}},
		{testInvite, "$si", S("1.2.3.4"), ErrReadOnly, nil},
		{testInvite, "$hdr(X-Multi)", S("x"), ErrReadOnly, nil},
		{testInvite, "$ft", S("x"), ErrReadOnly, nil},
		{testInvite, "$rs", I(1), ErrReadOnly, nil},
		// From/To writes are queued edits: reads still see the received header
		{testInvite, "$fU", S("mallory"), nil, []check{{"$fU", S("alice")}}},
		{testInvite, "$tu", N, nil, nil},
		{testInvite, "$fu", I(1), ErrType, nil},
	}
	for _, tt := range tests {
		c := newCtx(t, tt.msg)
		err := Set(c, tt.name, tt.v)
		if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("Set(%s, %v) = %v, want %v", tt.name, tt.v, err, tt.err)
			continue
		}
		for _, ck := range tt.checks {
			if got, _ := Get(c, ck.name); got != ck.want {
				t.Errorf("after Set(%s, %v): %s = %#v, want %#v", tt.name, tt.v, ck.name, got, ck.want)
			}
		}
	}
}

func TestVarPersistsPerWorker(t *testing.T) {
	c1 := newCtx(t, testInvite)
	Set(c1, "$var(n)", val.OfInt(3))
	c2 := newCtx(t, testReply)
	c2.Worker = c1.Worker // next message, same worker
	if v, _ := Get(c2, "$var(n)"); v != val.OfInt(3) {
		t.Errorf("$var across messages = %v", v)
	}
	c3 := newCtx(t, testInvite) // another worker
	if v, _ := Get(c3, "$var(n)"); v != val.OfInt(0) {
		t.Errorf("$var in other worker = %v", v)
	}
}

func TestAVPStack(t *testing.T) {
	c := newCtx(t, testInvite)
	for _, v := range []val.Value{val.OfInt(1), val.OfStr("two"), val.OfInt(3)} {
		if err := Set(c, "$avp(x)", v); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]val.Value{
		"$avp(x)":         val.OfInt(3),
		"$(avp(x)[0])":    val.OfInt(3),
		"$(avp(x)[1])":    val.OfStr("two"),
		"$(avp(x)[2])":    val.OfInt(1),
		"$(avp(x)[-1])":   val.OfInt(1),
		"$(avp(x)[3])":    val.NullValue,
		"$(avp(x)[*])":    val.OfStr("3, two, 1"),
		"$(avp(s:x)[-2])": val.OfStr("two"),
	} {
		if got, _ := Get(c, name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	Set(c, "$avp(x)", val.NullValue) // deletes the top value
	if got, _ := Get(c, "$avp(x)"); got != val.OfStr("two") {
		t.Errorf("after unset top = %v", got)
	}
	Set(c, "$(avp(x)[*])", val.OfStr("only")) // replaces the stack
	if got, _ := Get(c, "$(avp(x)[*])"); got != val.OfStr("only") {
		t.Errorf("after [*] assign = %v", got)
	}
	Set(c, "$(avp(x)[*])", val.NullValue) // deletes all
	if got, _ := Get(c, "$avp(x)"); !got.IsNull() {
		t.Errorf("after [*] unset = %v", got)
	}
}

func TestFromToEditsCompose(t *testing.T) {
	c := newCtx(t, testInvite)
	must := func(name string, v val.Value) {
		t.Helper()
		if err := Set(c, name, v); err != nil {
			t.Fatalf("Set(%s): %v", name, err)
		}
	}
	must("$fU", val.OfStr("carol"))
	must("$fd", val.OfStr("example.net"))
	must("$fn", val.OfStr(`"Carol C"`))
	must("$tu", val.OfStr("sip:dave@example.com"))
	must("$tn", val.OfStr("Dave"))
	if got, _ := Get(c, "$fu"); got != val.OfStr("sip:alice@example.org") {
		t.Errorf("$fu read after write = %v (edits must be invisible)", got)
	}
	out := c.Msg.Req.Clone()
	c.Msg.ApplyEdits(out)
	s := out.String()
	for _, want := range []string{
		"From: \"Carol C\" <sip:carol@example.net>;tag=ftag\r\n",
		"To: \"Dave\" <sip:dave@example.com>\r\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("forwarded message lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "From:") != 1 || strings.Count(s, "To:") != 1 {
		t.Errorf("duplicated From/To:\n%s", s)
	}
	// unsetting the user removes it
	must("$fU", val.NullValue)
	out = c.Msg.Req.Clone()
	c.Msg.ApplyEdits(out)
	if !strings.Contains(out.String(), "<sip:example.net>;tag=ftag") {
		t.Errorf("user not removed:\n%s", out.String())
	}
}

func TestDynamicName(t *testing.T) {
	c := newCtx(t, testInvite)
	Set(c, "$var(h)", val.OfStr("X-Multi"))
	if got, _ := Get(c, "$hdr($var(h))"); got != val.OfStr("a") {
		t.Errorf("$hdr($var(h)) = %v", got)
	}
	Set(c, "$avp(k_$si)", val.OfInt(9))
	if got, _ := Get(c, "$avp(k_10.0.0.1)"); got != val.OfInt(9) {
		t.Errorf("dynamic avp = %v", got)
	}
}
