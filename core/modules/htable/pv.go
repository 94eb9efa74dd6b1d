package htable

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

// The PV classes are registered once, process-wide; they act on the most
// recently built Module (the pv package caches parsed names together with
// their class, so re-registering would not reach cached names).
var (
	active  atomic.Pointer[Module]
	pvsOnce sync.Once
)

func registerPVs(m *Module) {
	active.Store(m)
	pvsOnce.Do(func() {
		pv.Register("sht", &pv.Class{NeedsInner: true, Get: pvGetSht, Set: pvSetSht})
		pv.Register("shtex", &pv.Class{NeedsInner: true, Get: pvGetShtEx, Set: pvSetShtEx})
		pv.Register("shtcn", &pv.Class{NeedsInner: true, Get: pvCount(false)})
		pv.Register("shtcv", &pv.Class{NeedsInner: true, Get: pvCount(true)})
		pv.Register("shtinc", &pv.Class{NeedsInner: true, Get: pvAdd(1)})
		pv.Register("shtdec", &pv.Class{NeedsInner: true, Get: pvAdd(-1)})
		pv.Register("shtitkey", &pv.Class{NeedsInner: true, Get: pvIterKey})
		pv.Register("shtitval", &pv.Class{NeedsInner: true, Get: pvIterVal})
		pv.Register("shtrecord", &pv.Class{NeedsInner: true, Get: pvRecord})
	})
}

// splitName splits "table=>key" as pv_parse_ht_name does: the table name
// ends at '=' or white space; the key is everything after "=>".
func splitName(inner string) (table, key string, err error) {
	i := strings.Index(inner, "=>")
	if i < 0 {
		return "", "", fmt.Errorf("%w: $sht name %q needs table=>key", pv.ErrSyntax, inner)
	}
	table = strings.TrimSpace(inner[:i])
	if table == "" || strings.ContainsAny(table, " \t\r\n") {
		return "", "", fmt.Errorf("%w: $sht name %q", pv.ErrSyntax, inner)
	}
	return table, inner[i+2:], nil
}

// lookup resolves "table=>key"; t is nil for an unknown table.
func lookup(inner string) (*Module, *Table, string, error) {
	table, key, err := splitName(inner)
	if err != nil {
		return nil, nil, "", err
	}
	m := active.Load()
	if m == nil {
		return nil, nil, key, nil
	}
	return m, m.tables[table], key, nil
}

func pvGetSht(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
	_, t, key, err := lookup(inner)
	if err != nil || t == nil {
		return val.NullValue, err
	}
	return t.value(owner(c), key), nil
}

func pvSetSht(c *kemi.Ctx, _ *pv.Spec, inner string, v val.Value) error {
	_, t, key, err := lookup(inner)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("htable: no such table in $sht(%s)", inner)
	}
	if v.IsNull() {
		t.del(owner(c), key)
		return nil
	}
	t.set(owner(c), key, v, 0)
	return nil
}

func pvGetShtEx(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
	_, t, key, err := lookup(inner)
	if err != nil || t == nil {
		return val.NullValue, err
	}
	return val.OfInt(t.expireIn(owner(c), key)), nil
}

// pvSetShtEx sets the expiry of an item: an int is seconds from now (0:
// never); anything else counts as 0, as in pv_set_ht_cell_expire.
func pvSetShtEx(c *kemi.Ctx, _ *pv.Spec, inner string, v val.Value) error {
	_, t, key, err := lookup(inner)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("htable: no such table in $shtex(%s)", inner)
	}
	var n int64
	if v.Kind == val.Int {
		n = v.I
	}
	t.setExpire(owner(c), key, n)
	return nil
}

func pvCount(byValue bool) func(*kemi.Ctx, *pv.Spec, string) (val.Value, error) {
	return func(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
		_, t, expr, err := lookup(inner)
		if err != nil || t == nil {
			return val.NullValue, err
		}
		return val.OfInt(int64(t.count(owner(c), expr, byValue))), nil
	}
}

func pvAdd(delta int64) func(*kemi.Ctx, *pv.Spec, string) (val.Value, error) {
	return func(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
		_, t, key, err := lookup(inner)
		if err != nil || t == nil {
			return val.NullValue, err
		}
		n, ok := t.add(owner(c), key, delta)
		if !ok {
			return val.NullValue, nil
		}
		return val.OfInt(n), nil
	}
}

func pvIterKey(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
	m := active.Load()
	if m == nil {
		return val.NullValue, nil
	}
	k, _, ok := m.iterCurrent(owner(c), inner)
	if !ok {
		return val.NullValue, nil
	}
	return val.OfStr(k), nil
}

func pvIterVal(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
	m := active.Load()
	if m == nil {
		return val.NullValue, nil
	}
	_, v, _ := m.iterCurrent(owner(c), inner)
	return v, nil
}

// pvRecord is $shtrecord(key|value): the item being reported as expired,
// readable from the event route the expired hook runs.
func pvRecord(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
	if inner != "key" && inner != "value" {
		return val.NullValue, fmt.Errorf("%w: $shtrecord(%s)", pv.ErrSyntax, inner)
	}
	m := active.Load()
	if m == nil || c == nil || c.Route != kemi.RouteEvent {
		return val.NullValue, nil
	}
	r := m.record.Load()
	if r == nil {
		return val.NullValue, nil
	}
	if inner == "key" {
		return val.OfStr(r.key), nil
	}
	return r.v, nil
}
