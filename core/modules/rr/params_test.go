package rr

import (
	"testing"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

func TestCheckRouteParam(t *testing.T) {
	ours := bye("Route: <sip:10.0.0.1;lr;ftag=a1;nat=yes>", "Route: <sip:p2.example.com;lr;x=1>")
	strict := request("BYE", "sip:10.0.0.1;lr;ftag=a1", "b1", "Route: <sip:p2.example.com;lr>", "Route: <sip:bob@192.0.2.20>")
	tests := []struct {
		name  string
		raw   string
		loose bool // call loose_route first
		re    string
		want  int64
	}{
		{"after loose_route: match", ours, true, "nat=yes", 1},
		{"case-insensitive", ours, true, "NAT=YES", 1},
		{"leading ';' included", ours, true, "^;lr;ftag=a1;", 1},
		{"without it no match", ours, true, "^lr", -1},
		{"ERE alternation", ours, true, "nat=(no|yes)$", 1},
		{"POSIX class", ours, true, "ftag=[[:alnum:]]+", 1},
		{"no match", ours, true, "foo", -1},
		{"params of the next Route are not ours", ours, true, "x=1", -1},
		{"bad regex", ours, true, "(", -1},
		{"without loose_route: top Route ours", ours, false, "nat=yes", 1},
		{"top Route not ours", bye("Route: <sip:p2.example.com;lr;nat=yes>"), true, "nat", -1},
		{"top Route not ours, no loose_route", bye("Route: <sip:p2.example.com;lr;nat=yes>"), false, "nat", -1},
		{"no Route", bye(), true, ".", -1},
		{"our Route without params", bye("Route: <sip:10.0.0.1>", "Route: <sip:p2.example.com;lr>"), true, ".", -1},
		{"after strict translation: R-URI params", strict, true, "ftag=a1", 1},
		{"after strict translation: no leading ';' (5.6.3)", strict, true, "^;", -1},
		{"after strict translation: starts with lr", strict, true, "^lr", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mod := newModule(t, nil)
			c := newCtx(t, tc.raw)
			if tc.loose {
				mod.LooseRoute(c, 0)
			}
			run(t, mod, c, []step{call("check_route_param", tc.want, tc.re)})
		})
	}
}

func TestIsDirection(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		raw   string
		loose bool
		dir   string
		want  int64
	}{
		{"caller's BYE is downstream", nil, bye("Route: <sip:10.0.0.1;lr;ftag=a1>"), true, "downstream", 1},
		{"caller's BYE is not upstream", nil, bye("Route: <sip:10.0.0.1;lr;ftag=a1>"), true, "upstream", -1},
		{"callee's BYE is upstream", nil, crlf(upstreamBye), true, "upstream", 1},
		{"callee's BYE, before loose_route", nil, crlf(upstreamBye), false, "UpStream", 1},
		{"callee's BYE is not downstream", nil, crlf(upstreamBye), true, "downstream", -1},
		{"no ftag: downstream", nil, bye("Route: <sip:10.0.0.1;lr>"), true, "downstream", 1},
		{"initial request: downstream", nil, invite(), false, "downstream", 1},
		{"Route not ours: downstream", nil, bye("Route: <sip:p2.example.com;lr;ftag=zz>"), true, "downstream", 1},
		{"ftag differs from the From tag", nil, bye("Route: <sip:10.0.0.1;lr;ftag=b1>"), true, "upstream", 1},
		{"unknown direction: E_CFG", nil, crlf(upstreamBye), true, "sideways", -6},
		{"append_fromtag 0: E_CFG", func(c *Config) { c.AppendFromtag = 0 }, crlf(upstreamBye), true, "upstream", -6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mod := newModule(t, tc.cfg)
			c := newCtx(t, tc.raw)
			if tc.loose {
				mod.LooseRoute(c, 0)
			}
			run(t, mod, c, []step{call("is_direction", tc.want, tc.dir)})
		})
	}
}

// The direction is computed once per message, as Kamailio caches it.
func TestDirectionCached(t *testing.T) {
	mod := newModule(t, nil)
	// R-URI ours with an ftag of the callee: only after the strict
	// translation do the R-URI params count.
	c := newCtx(t, request("BYE", "sip:10.0.0.1;lr;ftag=zz", "b1", "Route: <sip:bob@192.0.2.20>"))
	run(t, mod, c, []step{call("is_direction", 1, "downstream"), call("loose_route", 1), call("is_direction", 1, "downstream")})
	c = newCtx(t, request("BYE", "sip:10.0.0.1;lr;ftag=zz", "b1", "Route: <sip:bob@192.0.2.20>"))
	run(t, mod, c, []step{call("loose_route", 1), call("is_direction", 1, "upstream")})
}

func TestRouteParam(t *testing.T) {
	mod := newModule(t, nil)
	c := newCtx(t, bye(`Route: <sip:10.0.0.1;lr;ftag=a1;e;ftagx=2;q="x y">`))
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"ftag", "a1", true},
		{"e", "", true},
		{"lr", "", true},
		{"ftagx", "2", true},
		{"FTAG", "", false},
		{"nope", "", false},
	} {
		got, ok := mod.RouteParam(c.Msg, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s = %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPVs(t *testing.T) {
	newModule(t, nil)
	get := func(c *kemi.Ctx, name string) val.Value {
		t.Helper()
		v, err := pv.Get(c, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	up := newCtx(t, crlf(upstreamBye))
	down := newCtx(t, bye("Route: <sip:10.0.0.1;lr;ftag=a1>, <sip:p2.example.com;lr>"))
	none := newCtx(t, invite())
	checks := []struct {
		c    *kemi.Ctx
		name string
		want val.Value
	}{
		{down, "$route_uri", val.OfStr("sip:10.0.0.1;lr;ftag=a1")},
		{none, "$route_uri", val.NullValue},
		{up, "$fti", val.OfStr("a1")},
		{up, "$tti", val.OfStr("b1")},
		{down, "$fti", val.OfStr("a1")},
		{down, "$tti", val.OfStr("b1")},
		{none, "$tti", val.NullValue},
		{up, "$rdir(id)", val.OfInt(2)},
		{up, "$rdir(name)", val.OfStr("upstream")},
		{down, "$rdir(id)", val.OfInt(1)},
		{down, "$rdir(name)", val.OfStr("downstream")},
	}
	for _, ck := range checks {
		if got := get(ck.c, ck.name); got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, got, ck.want)
		}
	}
	if _, err := pv.Get(down, "$rdir(x)"); err == nil {
		t.Error("$rdir(x) accepted")
	}
}

// TestExportsMatchCatalog checks names, parameter and return types
// against the 5.6.3 catalog, and that every rr function of it exists.
func TestExportsMatchCatalog(t *testing.T) {
	checkCatalog(t, "rr", newModule(t, nil).Exports())
}
