package pv

// FuzzPV feeds pseudo-variable names and format strings to the name parser
// (Parse, with nested PVs and indexes), Get, Set and Expand (xlog-style
// text with PVs) on a fixed INVITE. It must never panic, and a name that
// parses must parse the same again (the cache).
//
//	go test ./core/pv -run '^$' -fuzz FuzzPV -fuzztime 60s

import (
	"strconv"
	"testing"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

func FuzzPV(f *testing.F) {
	for _, s := range []string{
		"$ru", "$rU", "$(ru)", "$hdr(Via)", "$(hdr(Via)[1])", "$(hdr(X-Multi)[-1])", "$(hdr(X-Multi)[*])",
		"$var(x)", "$vz(x)", "$vn(x)", "$avp(x)", "$(avp(x)[0])", "$hdr($var(h))", "$var($hdr(X-Multi))",
		"$time(%Y-%m-%d)", "$TS", "$T_branch_idx", "$fu", "$fn", "$tt", "$du", "$mb", "$(",
		"$(hdr(a)[", "$hdr(", "$$", "$(((", "$hdr(Via)[99999999999999999999]", "$(hdr(Via)[-9223372036854775808])",
	} {
		f.Add(s, "from $fu to $tu: $hdr(Via) $(hdr(X-Multi)[*]) $var(x) $$ $( $hdr(")
	}
	m0, err := sipmsg.Parse([]byte(testInvite))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, text string) {
		m, _ := sipmsg.Parse([]byte(testInvite))
		_ = m0
		m.Proto, m.SrcIP, m.SrcPort, m.DstIP, m.DstPort = "udp", "10.0.0.1", 5060, "192.168.1.1", 5060
		c := &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
		s1, err1 := Parse(name)
		s2, err2 := Parse(name)
		if (err1 == nil) != (err2 == nil) || (s1 != nil && s2 != nil && *s1 != *s2) {
			t.Fatalf("Parse(%q) twice: %+v %v / %+v %v", name, s1, err1, s2, err2)
		}
		if v, err := Get(c, name); err == nil {
			_ = v.String()
		}
		_ = Set(c, name, val.OfStr(text))
		_ = Set(c, name, val.OfInt(int64(len(text))))
		_ = Set(c, name, val.NullValue)
		_ = Expand(c, text)
		_ = Expand(c, name)
		_ = Expand(c, name+text)
	})
}

// TestCacheBounded: names built from message data do not grow the cache
// of parsed names without end (found while fuzzing: every distinct name
// stayed cached).
func TestCacheBounded(t *testing.T) {
	for i := 0; i < 3*int(CacheLimit); i++ {
		if _, err := Parse("$hdr(X-Bounded-" + strconv.Itoa(i) + ")"); err != nil {
			t.Fatal(err)
		}
	}
	if n := cacheLen(); n > int(CacheLimit) {
		t.Fatalf("%d names cached, limit %d", n, CacheLimit)
	}
	if s, err := Parse("$ru"); err != nil || s.Class != "ru" {
		t.Fatalf("after the purge: %+v %v", s, err)
	}
}

// cacheLen is the number of cached names.
func cacheLen() int {
	n := 0
	cache.Range(func(_, _ any) bool { n++; return true })
	return n
}
