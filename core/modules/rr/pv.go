package rr

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

// The PV classes are registered once, process-wide; they act on the most
// recently built Module (as htable's).
var (
	active  atomic.Pointer[Module]
	pvsOnce sync.Once
)

// registerPVs adds rr's pseudo-variables: $route_uri (URI of the first
// Route header), $fti / $tti (From / To tag as in the initial request,
// by is_direction), $rdir(id|name) (1 / "downstream" or 2 / "upstream").
func registerPVs(m *Module) {
	active.Store(m)
	pvsOnce.Do(func() {
		pv.Register("route_uri", &pv.Class{Get: pvRouteURI})
		pv.Register("fti", &pv.Class{Get: pvTagInitial(false)})
		pv.Register("tti", &pv.Class{Get: pvTagInitial(true)})
		pv.Register("rdir", &pv.Class{NeedsInner: true, Get: pvRdir})
	})
}

func pvRouteURI(c *kemi.Ctx, _ *pv.Spec, _ string) (val.Value, error) {
	if c == nil || c.Msg == nil {
		return val.NullValue, nil
	}
	routes, ok := routeSet(c.Msg)
	if !ok || len(routes) == 0 {
		return val.NullValue, nil
	}
	return val.OfStr(routes[0].uri.String()), nil
}

// pvTagInitial: $fti is the From tag, or the To tag for an upstream
// request; $tti the other one. Null when the header or tag is missing.
func pvTagInitial(to bool) func(*kemi.Ctx, *pv.Spec, string) (val.Value, error) {
	return func(c *kemi.Ctx, _ *pv.Spec, _ string) (val.Value, error) {
		m := active.Load()
		if c == nil || c.Msg == nil || m == nil || c.Msg.Req == nil {
			return val.NullValue, nil
		}
		useTo := to
		if m.direction(c.Msg) == dirUp {
			useTo = !to
		}
		name := "from"
		if useTo {
			name = "to"
		}
		tag, ok := headerTag(c.Msg.Header(name))
		if !ok || tag == "" {
			return val.NullValue, nil
		}
		return val.OfStr(tag), nil
	}
}

func pvRdir(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
	if inner != "id" && inner != "name" {
		return val.NullValue, fmt.Errorf("%w: $rdir(%s)", pv.ErrSyntax, inner)
	}
	m := active.Load()
	d := dirDown
	if m != nil && c != nil && c.Msg != nil && c.Msg.Req != nil {
		d = m.direction(c.Msg)
	}
	if inner == "name" {
		if d == dirUp {
			return val.OfStr("upstream"), nil
		}
		return val.OfStr("downstream"), nil
	}
	return val.OfInt(int64(d)), nil
}
