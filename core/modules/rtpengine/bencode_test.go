package rtpengine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	d := NewDict()
	d.Set("command", "offer")
	d.Set("flags", []any{"trust-address", int64(3)})
	d.Set("n", -7)
	sub := NewDict()
	sub.Set("strip", []string{"PCMA"})
	d.Set("codec", sub)
	d.Set("bin", []byte{0, ':', 'e'})
	d.Set("command", "answer") // replaced in place
	tests := []struct {
		in   any
		want string
	}{
		{"spam", "4:spam"},
		{"", "0:"},
		{int64(42), "i42e"},
		{0, "i0e"},
		{[]any{}, "le"},
		{NewDict(), "de"},
		{map[string]any{"z": 1, "a": "x"}, "d1:a1:x1:zi1ee"},
		{d, "d7:command6:answer5:flagsl13:trust-addressi3ee1:ni-7e5:codecd5:stripl4:PCMAee3:bin3:\x00:ee"},
	}
	for _, tc := range tests {
		got, err := Encode(tc.in)
		if err != nil || string(got) != tc.want {
			t.Errorf("Encode(%#v) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := Encode(1.5); err == nil {
		t.Error("float encoded")
	}
	if _, err := Encode([]any{struct{}{}}); err == nil {
		t.Error("struct encoded")
	}
}

func TestDecode(t *testing.T) {
	v, err := Decode([]byte("d6:result2:ok3:sdp5:v=0\r\n6:totalsd3:RTPd5:bytesi100e7:packetsi-2eee4:listl1:ai1eleee"))
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*Dict)
	if !reflect.DeepEqual(d.Keys(), []string{"result", "sdp", "totals", "list"}) {
		t.Fatalf("keys %q", d.Keys())
	}
	if s, _ := d.Str("sdp"); s != "v=0\r\n" {
		t.Errorf("sdp %q", s)
	}
	tot, _ := d.Dict("totals")
	rtp, _ := tot.Dict("RTP")
	if n, _ := rtp.Int("packets"); n != -2 {
		t.Errorf("packets %d", n)
	}
	if l, _ := d.List("list"); !reflect.DeepEqual(l, []any{"a", int64(1), []any{}}) {
		t.Errorf("list %#v", l)
	}
	if _, ok := d.Int("result"); ok {
		t.Error("string read as int")
	}
	// round trip keeps the order
	again, err := Encode(d)
	if err != nil || !strings.HasPrefix(string(again), "d6:result2:ok3:sdp") {
		t.Errorf("round trip %q %v", again, err)
	}

	bad := []string{
		"", "i", "ie", "i-e", "i-0e", "i03e", "i1x2e", "i99999999999999999999e",
		"5:abc", "3abc", "-1:a", "l", "li1e", "d", "d3:foo", "d3:fooe", "di1ei2ee",
		"x", "i1ei2e", "4:spamX", strings.Repeat("l", 100) + strings.Repeat("e", 100),
		"99999999999:a",
	}
	for _, b := range bad {
		if _, err := Decode([]byte(b)); err == nil || !errors.Is(err, ErrBencode) {
			t.Errorf("Decode(%q): %v", b, err)
		}
	}
	if _, err := DecodeDict([]byte("le")); err == nil {
		t.Error("list accepted as dict")
	}
	if d, err := DecodeDict([]byte("d1:ai1e1:ai2ee")); err != nil || d.Len() != 1 {
		t.Errorf("duplicate key: %v", err)
	} else if n, _ := d.Int("a"); n != 2 {
		t.Errorf("duplicate key value %d", n)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"d3:foo3:bare", "li1e4:spame", "i-3e", "0:"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		out, err := Encode(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		v2, err := Decode(out)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip of %q: %v", b, err)
		}
	})
}
