package htable

import (
	"bufio"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// fakeClock is a settable clock in whole seconds.
type fakeClock struct{ sec atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.sec.Store(1_700_000_000)
	return c
}
func (f *fakeClock) Now() time.Time          { return time.Unix(f.sec.Load(), 0) }
func (f *fakeClock) Advance(d time.Duration) { f.sec.Add(int64(d / time.Second)) }

func newModule(t *testing.T, clk *fakeClock, tables ...string) *Module {
	t.Helper()
	cfg := DefaultConfig()
	cfg.HTable = tables
	m, err := New(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func ctx(worker int) *kemi.Ctx {
	return &kemi.Ctx{Msg: sipmsg.Faked(), Route: kemi.RouteRequest, Worker: kemi.NewWorkerState(worker)}
}

// call runs KSR.htable.<name>(args...) through the export table.
func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...any) val.Value {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name != name {
			continue
		}
		if len(args) != len(e.Params) {
			t.Fatalf("%s: %d args, want %d", name, len(args), len(e.Params))
		}
		vs := make([]val.Value, len(args))
		for i, a := range args {
			switch x := a.(type) {
			case int:
				if e.Params[i] != kemi.PInt {
					t.Fatalf("%s arg %d: int given, %s declared", name, i, e.Params[i])
				}
				vs[i] = val.OfInt(int64(x))
			case string:
				if e.Params[i] != kemi.PStr {
					t.Fatalf("%s arg %d: str given, %s declared", name, i, e.Params[i])
				}
				vs[i] = val.OfStr(x)
			}
		}
		return e.Fn(c, vs)
	}
	t.Fatalf("no export %s", name)
	return val.NullValue
}

func I(n int64) val.Value  { return val.OfInt(n) }
func S(s string) val.Value { return val.OfStr(s) }

var N = val.NullValue

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{in: "ipban=>size=8;autoexpire=300;", want: Spec{Name: "ipban", Size: 8, AutoExpire: 300, UpdateExpire: true}},
		{in: "a=>", want: Spec{Name: "a", Size: 4, UpdateExpire: true}},
		{in: " b => size = 5 ; initval=-3;updateexpire=0;dmqreplicate=1",
			want: Spec{Name: "b", Size: 5, HasInitVal: true, InitVal: -3, DMQReplicate: 1}},
		{in: "c=>initval=0", want: Spec{Name: "c", Size: 4, HasInitVal: true, UpdateExpire: true}},
		{in: "noarrow;size=4", wantErr: "=>"},
		{in: "=>size=4", wantErr: "empty table name"},
		{in: "d=>size=x", wantErr: "size"},
		{in: "d=>autoexpire=-1", wantErr: "autoexpire"},
		{in: "d=>colour=blue", wantErr: "colour"},
		{in: "d=>dbtable=htable_a", wantErr: "dbtable"},
		{in: "d=>size=4;dbmode=1", wantErr: "dbmode"},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSpec(%q) err = %v, want mention of %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestSlotCount(t *testing.T) {
	for _, tt := range []struct{ size, want int }{{0, 8}, {1, 8}, {2, 4}, {4, 16}, {14, 16384}, {20, 16384}, {40, 16384}} {
		if got := slotCount(tt.size); got != tt.want {
			t.Errorf("slotCount(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, defs := range [][]string{{"a=>size=4", "a=>size=5"}, {"a=>bogus=1"}} {
		if _, err := New(Config{HTable: defs}); err == nil {
			t.Errorf("New(%q) succeeded", defs)
		}
	}
}

// step is one KSR.htable call and its expected result.
type step struct {
	fn   string
	args []any
	want val.Value
}

func runSteps(t *testing.T, m *Module, c *kemi.Ctx, steps []step) {
	t.Helper()
	for i, s := range steps {
		if got := call(t, m, c, s.fn, s.args...); got != s.want {
			t.Errorf("step %d: %s(%v) = %#v, want %#v", i, s.fn, s.args, got, s.want)
		}
	}
}

func TestKEMIBasics(t *testing.T) {
	m := newModule(t, newClock(), "t=>size=4", "iv=>initval=10", "u=>")
	runSteps(t, m, ctx(0), []step{
		{"sht_get", []any{"t", "k"}, N},
		{"sht_gete", []any{"t", "k"}, S("")},
		{"sht_getw", []any{"t", "k"}, S("<null>")},
		{"sht_get", []any{"nope", "k"}, N},
		{"sht_gete", []any{"nope", "k"}, S("")},
		{"sht_is_null", []any{"t", "k"}, I(1)},
		{"sht_is_null", []any{"nope", "k"}, I(2)},
		{"sht_is_null", []any{"iv", "k"}, I(-2)},
		{"sht_sets", []any{"t", "k", "v1"}, I(1)},
		{"sht_get", []any{"t", "k"}, S("v1")},
		{"sht_is_null", []any{"t", "k"}, I(-1)},
		{"sht_seti", []any{"t", "k", 42}, I(1)},
		{"sht_get", []any{"t", "k"}, I(42)},
		{"sht_sets", []any{"nope", "k", "v"}, I(-1)},
		{"sht_seti", []any{"nope", "k", 1}, I(-1)},
		{"sht_inc", []any{"t", "k"}, I(43)},
		{"sht_dec", []any{"t", "k"}, I(42)},
		{"sht_inc", []any{"t", "missing"}, I(-255)},
		{"sht_inc", []any{"nope", "k"}, I(-255)},
		{"sht_sets", []any{"t", "s", "str"}, I(1)},
		{"sht_inc", []any{"t", "s"}, I(-255)},
		{"sht_get", []any{"iv", "x"}, I(10)},
		{"sht_inc", []any{"iv", "x"}, I(11)},
		{"sht_dec", []any{"iv", "y"}, I(9)},
		{"sht_get", []any{"iv", "y"}, I(9)},
		{"sht_rm", []any{"t", "k"}, I(1)},
		{"sht_rm", []any{"t", "k"}, I(1)},
		{"sht_rm", []any{"nope", "k"}, I(-1)},
		{"sht_get", []any{"t", "k"}, N},
		{"sht_setxs", []any{"u", "a", "x", 60}, I(1)},
		{"sht_setxi", []any{"u", "b", 7, 60}, I(0)}, // 5.6.3 returns 0 here
		{"sht_setxi", []any{"nope", "b", 7, 60}, I(-1)},
		{"sht_get", []any{"u", "b"}, I(7)},
		{"sht_setex", []any{"u", "b", 10}, I(1)},
		{"sht_setex", []any{"u", "zz", 10}, I(1)},
		{"sht_setex", []any{"nope", "b", 10}, I(-1)},
		{"sht_reset", []any{"u"}, I(0)},
		{"sht_reset", []any{"nope"}, I(-1)},
		{"sht_get", []any{"u", "a"}, N},
	})
}

func TestExpiry(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, "ipban=>size=8;autoexpire=300;", "keep=>autoexpire=300;updateexpire=0", "plain=>")
	var mu sync.Mutex
	var expired []string
	m.SetExpiredHook(func(table, key string, v val.Value) {
		mu.Lock()
		expired = append(expired, table+"/"+key+"="+v.String())
		mu.Unlock()
	})
	c := ctx(0)
	call(t, m, c, "sht_seti", "ipban", "1.2.3.4", 1)
	call(t, m, c, "sht_seti", "keep", "k", 1)
	call(t, m, c, "sht_setxs", "plain", "short", "s", 10)
	call(t, m, c, "sht_sets", "plain", "forever", "f")

	clk.Advance(200 * time.Second)
	call(t, m, c, "sht_seti", "ipban", "1.2.3.4", 2) // updateexpire: now+300 again
	call(t, m, c, "sht_seti", "keep", "k", 2)        // keeps the first expiry

	steps := []struct {
		advance time.Duration
		table   string
		key     string
		want    val.Value
	}{
		{0, "plain", "short", N}, // 10 s item long gone
		{0, "plain", "forever", S("f")},
		{100 * time.Second, "keep", "k", I(2)},     // t0+300: expire == now, still there
		{1 * time.Second, "keep", "k", N},          // t0+301
		{0, "ipban", "1.2.3.4", I(2)},              // refreshed at t0+200
		{200 * time.Second, "ipban", "1.2.3.4", N}, // t0+501 > t0+500
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if got := call(t, m, c, "sht_get", s.table, s.key); got != s.want {
			t.Errorf("step %d: %s[%s] = %#v, want %#v", i, s.table, s.key, got, s.want)
		}
	}
	if n := m.Sweep(); n != 3 {
		t.Errorf("Sweep removed %d, want 3", n)
	}
	mu.Lock()
	got := strings.Join(expired, ",")
	mu.Unlock()
	for _, want := range []string{"plain/short=s", "keep/k=2", "ipban/1.2.3.4=2"} {
		if !strings.Contains(got, want) {
			t.Errorf("expired hook got %q, missing %q", got, want)
		}
	}
	if n := m.Sweep(); n != 0 {
		t.Errorf("second Sweep removed %d", n)
	}
	if v, _ := m.Get("plain", "forever"); v != S("f") {
		t.Errorf("forever item = %#v", v)
	}
}

func TestSetExAndShtEx(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, "t=>autoexpire=100")
	c := ctx(0)
	call(t, m, c, "sht_sets", "t", "a", "x")
	tests := []struct {
		name string
		run  func()
		want val.Value
	}{
		{"autoexpire", func() {}, I(100)},
		{"setex 10", func() { call(t, m, c, "sht_setex", "t", "a", 10) }, I(10)},
		{"pv set", func() { _ = pv.Set(c, "$shtex(t=>a)", I(50)) }, I(50)},
		{"advance", func() { clk.Advance(20 * time.Second) }, I(30)},
		{"setex 0 means never", func() { call(t, m, c, "sht_setex", "t", "a", 0) }, I(0)},
		{"missing", func() { call(t, m, c, "sht_rm", "t", "a") }, I(0)},
	}
	for _, tt := range tests {
		tt.run()
		got, err := pv.Get(c, "$shtex(t=>a)")
		if err != nil || got != tt.want {
			t.Errorf("%s: $shtex = %#v, %v; want %#v", tt.name, got, err, tt.want)
		}
	}
	// the item set with setex 0 above must survive any delay
	call(t, m, c, "sht_sets", "t", "b", "y")
	call(t, m, c, "sht_setex", "t", "b", 0)
	clk.Advance(10000 * time.Second)
	if got := call(t, m, c, "sht_get", "t", "b"); got != S("y") {
		t.Errorf("non-expiring item = %#v", got)
	}
}

func TestIncExpiredWithInitval(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, "cnt=>autoexpire=60;initval=0")
	c := ctx(0)
	runSteps(t, m, c, []step{
		{"sht_inc", []any{"cnt", "ip"}, I(1)},
		{"sht_inc", []any{"cnt", "ip"}, I(2)},
	})
	clk.Advance(61 * time.Second)
	runSteps(t, m, c, []step{
		{"sht_get", []any{"cnt", "ip"}, I(0)}, // initval
		{"sht_inc", []any{"cnt", "ip"}, I(1)}, // starts again from initval
	})
}

func TestMatchAndRemove(t *testing.T) {
	m := newModule(t, newClock(), "t=>")
	c := ctx(0)
	fill := func() {
		call(t, m, c, "sht_reset", "t")
		call(t, m, c, "sht_sets", "t", "user:alice", "sip:alice@a.example")
		call(t, m, c, "sht_sets", "t", "user:bob", "sip:bob@b.example")
		call(t, m, c, "sht_seti", "t", "count", 5)
	}
	fill()
	runSteps(t, m, c, []step{
		{"sht_match_name", []any{"t", "eq", "count"}, I(1)},
		{"sht_match_name", []any{"t", "eq", "nobody"}, I(-1)},
		{"sht_match_name", []any{"t", "sw", "user:"}, I(1)},
		{"sht_match_name", []any{"t", "re", "^USER:B"}, I(1)}, // case-insensitive
		{"sht_match_name", []any{"t", "ne", "count"}, I(1)},
		{"sht_match_name", []any{"t", "xx", "count"}, I(-1)},
		{"sht_match_name", []any{"t", "re", "("}, I(-1)},
		{"sht_match_name", []any{"t", "eq", ""}, I(-1)},
		{"sht_match_name", []any{"nope", "eq", "count"}, I(-1)},
		{"sht_match_str_value", []any{"t", "sw", "sip:bob"}, I(1)},
		{"sht_match_str_value", []any{"t", "eq", "5"}, I(-1)}, // ints never match by value
		{"sht_match_str_value", []any{"t", "re", "example$"}, I(1)},
	})
	tests := []struct {
		fn   string
		args []any
		want val.Value
		left []string
	}{
		{"sht_rm_name_re", []any{"t", "^user:"}, I(1), []string{"count"}},
		{"sht_rm_name_re", []any{"t", "("}, I(-1), []string{"count", "user:alice", "user:bob"}},
		{"sht_rm_name_re", []any{"t", ""}, I(-1), []string{"count", "user:alice", "user:bob"}},
		{"sht_rm_name_re", []any{"nope", "x"}, I(1), []string{"count", "user:alice", "user:bob"}},
		{"sht_rm_value_re", []any{"t", "bob"}, I(1), []string{"count", "user:alice"}},
		{"sht_rm_name", []any{"t", "sw", "user:a"}, I(1), []string{"count", "user:bob"}},
		{"sht_rm_name", []any{"t", "re", "o"}, I(1), []string{"user:alice"}},
		{"sht_rm_name", []any{"t", "eq", "count"}, I(-1), []string{"count", "user:alice", "user:bob"}},
		{"sht_rm_name", []any{"nope", "sw", "u"}, I(-1), []string{"count", "user:alice", "user:bob"}},
		{"sht_rm_value", []any{"t", "sw", "sip:alice"}, I(1), []string{"count", "user:bob"}},
		{"sht_rm_value", []any{"t", "re", "."}, I(1), []string{"count"}},
	}
	for _, tt := range tests {
		fill()
		if got := call(t, m, c, tt.fn, tt.args...); got != tt.want {
			t.Errorf("%s(%v) = %#v, want %#v", tt.fn, tt.args, got, tt.want)
		}
		items, _ := m.Dump("t")
		var keys []string
		for _, it := range items {
			keys = append(keys, it.Key)
		}
		if strings.Join(keys, ",") != strings.Join(tt.left, ",") {
			t.Errorf("%s(%v) left %v, want %v", tt.fn, tt.args, keys, tt.left)
		}
	}
}

func TestPV(t *testing.T) {
	newModule(t, newClock(), "ipban=>size=8;autoexpire=300;", "iv=>initval=3")
	// a stand-in for $si so that nested PV names can be tested here
	pv.Register("testsi", &pv.Class{Get: func(c *kemi.Ctx, _ *pv.Spec, _ string) (val.Value, error) {
		return val.OfStr(c.Msg.SrcIP), nil
	}})
	c := ctx(0)
	c.Msg.SrcIP = "10.0.0.1"
	tests := []struct {
		name   string
		set    *val.Value
		pvname string
		want   val.Value
		err    bool
	}{
		{name: "missing", pvname: "$sht(ipban=>$testsi)", want: N},
		{name: "seti nested", set: &val.Value{Kind: val.Int, I: 1}, pvname: "$sht(ipban=>$testsi)", want: I(1)},
		{name: "literal key sees it", pvname: "$sht(ipban=>10.0.0.1)", want: I(1)},
		{name: "sets", set: &val.Value{Kind: val.Str, S: "x"}, pvname: "$sht(ipban=>k)", want: S("x")},
		{name: "null deletes", set: &val.NullValue, pvname: "$sht(ipban=>k)", want: N},
		{name: "initval", pvname: "$sht(iv=>x)", want: I(3)},
		{name: "unknown table reads null", pvname: "$sht(nope=>x)", want: N},
		{name: "unknown table write fails", set: &val.Value{Kind: val.Int, I: 1}, pvname: "$sht(nope=>x)", err: true},
		{name: "no arrow", pvname: "$sht(ipban)", err: true},
		{name: "shtinc", pvname: "$shtinc(iv=>c)", want: I(4)},
		{name: "shtinc again", pvname: "$shtinc(iv=>c)", want: I(5)},
		{name: "shtdec", pvname: "$shtdec(iv=>c)", want: I(4)},
		{name: "shtinc no initval", pvname: "$shtinc(ipban=>none)", want: N},
	}
	for _, tt := range tests {
		var err error
		if tt.set != nil {
			err = pv.Set(c, tt.pvname, *tt.set)
			if tt.err {
				if err == nil {
					t.Errorf("%s: Set succeeded", tt.name)
				}
				continue
			}
		}
		var got val.Value
		if err == nil {
			got, err = pv.Get(c, tt.pvname)
		}
		if tt.err {
			if err == nil {
				t.Errorf("%s: no error", tt.name)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %s = %#v, %v; want %#v", tt.name, tt.pvname, got, err, tt.want)
		}
	}
}

func TestCountPV(t *testing.T) {
	m := newModule(t, newClock(), "t=>")
	c := ctx(0)
	call(t, m, c, "sht_sets", "t", "alice@a", "gold")
	call(t, m, c, "sht_sets", "t", "bob@a", "silver")
	call(t, m, c, "sht_sets", "t", "carol@b", "gold")
	call(t, m, c, "sht_seti", "t", "n1", 7)
	call(t, m, c, "sht_seti", "t", "n2", 7)
	tests := []struct {
		pv   string
		want int64
	}{
		{"$shtcn(t=>**)", 5},
		{"$shtcn(t=>@a$)", 2},
		{"$shtcn(t=>~~^B)", 1},
		{"$shtcn(t=>~%@b)", 1},
		{"$shtcn(t=>%~n)", 2},
		{"$shtcn(t=>==bob@a)", 1},
		{"$shtcn(t=>eq7)", 0}, // int match is for values only
		{"$shtcv(t=>==gold)", 2},
		{"$shtcv(t=>eq7)", 2},
		{"$shtcv(t=>^s)", 1},
		{"$shtcv(t=>~~7)", 0}, // ints never match a string op
	}
	for _, tt := range tests {
		got, err := pv.Get(c, tt.pv)
		if err != nil || got != I(tt.want) {
			t.Errorf("%s = %#v, %v; want %d", tt.pv, got, err, tt.want)
		}
	}
}

func TestIterator(t *testing.T) {
	m := newModule(t, newClock(), "t=>size=2", "empty=>")
	c := ctx(3)
	want := map[string]int64{"a": 1, "b": 2, "c": 3, "d": 4}
	for k, v := range want {
		call(t, m, c, "sht_seti", "t", k, int(v))
	}
	if r := call(t, m, c, "sht_iterator_start", "i1", "t"); r != I(1) {
		t.Fatalf("start = %#v", r)
	}
	seen := map[string]int64{}
	for call(t, m, c, "sht_iterator_next", "i1") == I(1) {
		k, _ := pv.Get(c, "$shtitkey(i1)")
		v, _ := pv.Get(c, "$shtitval(i1)")
		seen[k.S] = v.I
		// update while iterating: no deadlock in kemigo
		call(t, m, c, "sht_iterator_seti", "i1", int(v.I*10))
	}
	if len(seen) != 4 {
		t.Fatalf("iterated %v", seen)
	}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("iterated %s=%d, want %d", k, seen[k], v)
		}
		if got := call(t, m, c, "sht_get", "t", k); got != I(v*10) {
			t.Errorf("after seti %s = %#v", k, got)
		}
	}
	runSteps(t, m, c, []step{
		{"sht_iterator_next", []any{"i1"}, I(-1)}, // stays at the end
		{"sht_iterator_rm", []any{"i1"}, I(-1)},   // no current item
		{"sht_iterator_end", []any{"i1"}, I(1)},
		{"sht_iterator_end", []any{"i1"}, I(-1)},
		{"sht_iterator_next", []any{"i1"}, I(-1)},
		{"sht_iterator_start", []any{"i1", "nope"}, I(-1)},
		{"sht_iterator_start", []any{"i1", "empty"}, I(1)},
		{"sht_iterator_next", []any{"i1"}, I(-1)},
		{"sht_iterator_sets", []any{"i1", "x"}, I(-1)},
	})

	// remove everything: rm moves to the next item, -2 after the last one
	call(t, m, c, "sht_iterator_start", "i2", "t")
	call(t, m, c, "sht_iterator_next", "i2")
	var rc []int64
	for {
		r := call(t, m, c, "sht_iterator_rm", "i2").I
		rc = append(rc, r)
		if r != 1 {
			break
		}
	}
	if len(rc) != 4 || rc[3] != -2 {
		t.Errorf("rm codes %v, want 1,1,1,-2", rc)
	}
	if items, _ := m.Dump("t"); len(items) != 0 {
		t.Errorf("left %v", items)
	}
	if v, _ := pv.Get(c, "$shtitkey(i2)"); !v.IsNull() {
		t.Errorf("$shtitkey after the end = %#v", v)
	}

	// sets / setex on the current item
	call(t, m, c, "sht_seti", "t", "z", 1)
	call(t, m, c, "sht_iterator_start", "i3", "t")
	call(t, m, c, "sht_iterator_next", "i3")
	runSteps(t, m, c, []step{
		{"sht_iterator_sets", []any{"i3", "str"}, I(1)},
		{"sht_iterator_setex", []any{"i3", 30}, I(1)},
		{"sht_get", []any{"t", "z"}, S("str")},
	})
	if v, _ := pv.Get(c, "$shtex(t=>z)"); v != I(30) {
		t.Errorf("$shtex after iterator setex = %#v", v)
	}

	// four iterators per worker, names below 32 characters
	for _, n := range []string{"i1", "i4"} {
		if r := call(t, m, c, "sht_iterator_start", n, "t"); r != I(1) {
			t.Errorf("start %s = %#v", n, r)
		}
	}
	runSteps(t, m, c, []step{
		{"sht_iterator_start", []any{"i5", "t"}, I(-1)},
		{"sht_iterator_start", []any{"i1", "t"}, I(1)}, // restart reuses the slot
		{"sht_iterator_end", []any{"i4"}, I(1)},
		{"sht_iterator_start", []any{strings.Repeat("x", 32), "t"}, I(-1)},
		{"sht_iterator_start", []any{strings.Repeat("x", 31), "t"}, I(1)},
	})
	// another worker has its own iterators
	if r := call(t, m, ctx(4), "sht_iterator_next", "i3"); r != I(-1) {
		t.Errorf("worker 4 sees worker 3's iterator")
	}
}

func TestLock(t *testing.T) {
	m := newModule(t, newClock(), "t=>size=4")
	w1, w2 := ctx(1), ctx(2)
	runSteps(t, m, w1, []step{
		{"sht_lock", []any{"t", "k"}, I(1)},
		{"sht_lock", []any{"t", "k"}, I(1)}, // re-entrant
		{"sht_lock", []any{"nope", "k"}, I(-1)},
		{"sht_seti", []any{"t", "k", 1}, I(1)}, // the owner keeps access
		{"sht_unlock", []any{"t", "k"}, I(1)},
	})
	done := make(chan struct{})
	go func() {
		call(t, m, w2, "sht_inc", "t", "k")
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("worker 2 wrote into a slot worker 1 still holds")
	case <-time.After(50 * time.Millisecond):
	}
	call(t, m, w1, "sht_unlock", "t", "k")
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("worker 2 still blocked after the unlock")
	}
	if v, _ := m.Get("t", "k"); v != I(2) {
		t.Errorf("k = %#v, want 2", v)
	}

	// UnlockAll frees a slot left locked (script raised before sht_unlock)
	call(t, m, w1, "sht_lock", "t", "k")
	call(t, m, w1, "sht_lock", "t", "k")
	done2 := make(chan struct{})
	go func() {
		_ = m.Set("t", "k", val.OfInt(9))
		close(done2)
	}()
	time.Sleep(20 * time.Millisecond)
	m.UnlockAll(w1.Worker.ID)
	select {
	case <-done2:
	case <-time.After(2 * time.Second):
		t.Fatal("UnlockAll did not release the slot")
	}
	// unlocking a slot not held is harmless
	if r := call(t, m, w2, "sht_unlock", "t", "k"); r != I(1) {
		t.Errorf("stray unlock = %#v", r)
	}
}

func TestConcurrentInc(t *testing.T) {
	m := newModule(t, newClock(), "c=>size=3;initval=0", "s=>size=2")
	const workers, per = 16, 500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := ctx(w)
			for i := 0; i < per; i++ {
				call(t, m, c, "sht_inc", "c", "total")
				// atomic read-modify-write through sht_lock, as scripts do
				call(t, m, c, "sht_lock", "s", "n")
				v := call(t, m, c, "sht_get", "s", "n")
				call(t, m, c, "sht_seti", "s", "n", int(v.AsInt()+1))
				call(t, m, c, "sht_unlock", "s", "n")
				_ = pv.Set(c, "$sht(s=>other)", val.OfStr("x"))
				_, _ = m.Dump("s")
			}
		}(w)
	}
	wg.Wait()
	if v, _ := m.Get("c", "total"); v != I(workers*per) {
		t.Errorf("total = %#v, want %d", v, workers*per)
	}
	if v, _ := m.Get("s", "n"); v != I(workers*per) {
		t.Errorf("locked counter = %#v, want %d", v, workers*per)
	}
}

func TestGoAPI(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, "b=>", "a=>autoexpire=10")
	if got := m.Tables(); strings.Join(got, ",") != "a,b" {
		t.Errorf("Tables = %v", got)
	}
	if m.Table("a") == nil || m.Table("zz") != nil {
		t.Error("Table lookup")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Set("a", "k2", S("v")))
	must(m.Set("a", "k1", I(1)))
	must(m.SetEx("b", "x", S("y"), 5))
	items, err := m.Dump("a")
	must(err)
	now := clk.Now().Unix()
	want := []Item{{"k1", I(1), now + 10}, {"k2", S("v"), now + 10}}
	if len(items) != 2 || items[0] != want[0] || items[1] != want[1] {
		t.Errorf("Dump = %+v, want %+v", items, want)
	}
	must(m.SetExpire("a", "k1", 0))
	if items, _ := m.Dump("a"); items[0].Expire != 0 {
		t.Errorf("SetExpire 0 left %d", items[0].Expire)
	}
	if ok, _ := m.Delete("a", "k2"); !ok {
		t.Error("Delete k2 = false")
	}
	if ok, _ := m.Delete("a", "k2"); ok {
		t.Error("second Delete k2 = true")
	}
	must(m.Set("a", "k1", N)) // null deletes
	if v, _ := m.Get("a", "k1"); !v.IsNull() {
		t.Errorf("k1 = %#v after null Set", v)
	}
	must(m.Reset("b"))
	for _, err := range []error{
		m.Set("zz", "k", I(1)), m.SetExpire("zz", "k", 1), m.Reset("zz"),
		func() error { _, e := m.Get("zz", "k"); return e }(),
		func() error { _, e := m.Dump("zz"); return e }(),
		func() error { _, e := m.Delete("zz", "k"); return e }(),
	} {
		if err == nil {
			t.Error("unknown table accepted")
		}
	}
}

func TestSweeperRuns(t *testing.T) {
	clk := newClock()
	cfg := Config{HTable: []string{"t=>autoexpire=1"}, TimerInterval: 1}
	m, err := New(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	m.SetExpiredHook(func(table, key string, v val.Value) { got <- table + "/" + key })
	_ = m.Set("t", "k", I(1))
	clk.Advance(5 * time.Second)
	m.Start()
	m.Start() // idempotent
	defer m.Stop()
	select {
	case s := <-got:
		if s != "t/k" {
			t.Errorf("expired %q", s)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("sweeper did not run")
	}
	m.Stop()
	m.Stop()
}

func TestShtRecord(t *testing.T) {
	clk := newClock()
	m := newModule(t, clk, "t=>autoexpire=1")
	_ = m.Set("t", "gone", S("bye"))
	clk.Advance(3 * time.Second)
	var key, value val.Value
	m.SetExpiredHook(func(table, k string, v val.Value) {
		c := &kemi.Ctx{Msg: sipmsg.Faked(), Route: kemi.RouteEvent}
		key, _ = pv.Get(c, "$shtrecord(key)")
		value, _ = pv.Get(c, "$shtrecord(value)")
	})
	m.Sweep()
	if key != S("gone") || value != S("bye") {
		t.Errorf("$shtrecord = %#v / %#v", key, value)
	}
	if v, _ := pv.Get(ctx(0), "$shtrecord(key)"); !v.IsNull() {
		t.Errorf("$shtrecord outside the event = %#v", v)
	}
}

func TestStr2sint(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{{"12", 12, true}, {"-7", -7, true}, {"+3", 3, true}, {"12ab", 12, false}, {"", 0, false},
		{"99999999999", 2147483647, false}, {"-99999999999", -2147483648, false}} {
		got, ok := str2sint(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("str2sint(%q) = %d, %v", tt.in, got, ok)
		}
	}
}

// TestExportsMatchCatalog checks names, parameters and return types
// against the Kamailio 5.6.3 catalog.
func TestExportsMatchCatalog(t *testing.T) {
	m := newModule(t, newClock())
	checkCatalog(t, "htable", m.Exports())
}

func checkCatalog(t *testing.T, module string, exps []kemi.Export) {
	t.Helper()
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skipf("catalog not available: %v", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= 4 && cols[0] == module {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range exps {
		if e.Module != module {
			t.Errorf("%s declared under module %q", e.Name, e.Module)
		}
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
			t.Errorf("%s.%s: got %q, catalog %q", module, name, got[name], sig)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s.%s is not in the catalog", module, name)
		}
	}
	// the table must register cleanly
	kemi.NewTable().Register(exps...)
}
