package htable

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Null modes of the xval getters (SR_KEMI_XVAL_NULL_*).
type nullMode uint8

const (
	nullNone  nullMode = iota // None
	nullPrint                 // "<null>"
	nullEmpty                 // ""
)

func xnull(mode nullMode) val.Value {
	switch mode {
	case nullPrint:
		return val.OfStr("<null>")
	case nullEmpty:
		return val.OfStr("")
	}
	return val.NullValue
}

// noIntVal is what sht_inc/sht_dec return on failure (KSR_HT_KEMI_NOINTVAL).
const noIntVal = -255

func (m *Module) table(c *kemi.Ctx, name string) *Table {
	t := m.tables[name]
	if t == nil {
		c.Log.Error().Str("table", name).Msg("htable: no such htable")
	}
	return t
}

// sht_get / sht_gete / sht_getw
func (m *Module) kGet(mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		t := m.table(c, a[0].S)
		if t == nil {
			return xnull(mode)
		}
		v := t.value(owner(c), a[1].S)
		if v.IsNull() {
			return xnull(mode)
		}
		return v
	}
}

// sht_is_null: 1 when the item is missing, -1 when it exists, -2 for a
// table with initval (never null), 2 for an unknown table.
func (m *Module) kIsNull(c *kemi.Ctx, a []val.Value) val.Value {
	t := m.tables[a[0].S]
	switch {
	case t == nil:
		return kemi.RetInt(2)
	case t.spec.HasInitVal:
		return kemi.RetInt(-2)
	case t.exists(owner(c), a[1].S):
		return kemi.RetInt(-1)
	}
	return kemi.RetInt(1)
}

// sht_sets / sht_seti
func (m *Module) kSet(c *kemi.Ctx, a []val.Value) val.Value {
	t := m.table(c, a[0].S)
	if t == nil {
		return kemi.RetInt(-1)
	}
	t.set(owner(c), a[1].S, a[2], 0)
	return kemi.RetInt(1)
}

// sht_setxs / sht_setxi: value plus expiry. As in 5.6.3, sht_setxi
// returns 0 on success while sht_setxs returns 1.
func (m *Module) kSetX(okRet int) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		t := m.table(c, a[0].S)
		if t == nil {
			return kemi.RetInt(-1)
		}
		t.set(owner(c), a[1].S, a[2], a[3].I)
		return kemi.RetInt(okRet)
	}
}

// sht_setex: change the expiry of an existing item.
func (m *Module) kSetEx(c *kemi.Ctx, a []val.Value) val.Value {
	t := m.table(c, a[0].S)
	if t == nil {
		return kemi.RetInt(-1)
	}
	t.setExpire(owner(c), a[1].S, a[2].I)
	return kemi.RetInt(1)
}

// sht_inc / sht_dec: the new value, or -255.
func (m *Module) kAdd(delta int64) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		t := m.tables[a[0].S]
		if t == nil {
			return kemi.RetInt(noIntVal)
		}
		n, ok := t.add(owner(c), a[1].S, delta)
		if !ok {
			return kemi.RetInt(noIntVal)
		}
		return val.OfInt(n)
	}
}

// sht_rm: 1 (even when the item was missing), -1 for an unknown table.
func (m *Module) kRm(c *kemi.Ctx, a []val.Value) val.Value {
	t := m.table(c, a[0].S)
	if t == nil {
		return kemi.RetInt(-1)
	}
	t.del(owner(c), a[1].S)
	return kemi.RetInt(1)
}

// sht_rm_name_re / sht_rm_value_re: 1 (also for an unknown table, as in
// Kamailio), -1 for an empty or bad expression.
func (m *Module) kRmRE(byValue bool) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		t := m.tables[a[0].S]
		if t == nil {
			return kemi.RetInt(1)
		}
		if a[1].S == "" {
			return kemi.RetInt(-1)
		}
		re, err := compileRE(a[1].S)
		if err != nil {
			c.Log.Error().Err(err).Str("re", a[1].S).Msg("htable: bad regular expression")
			return kemi.RetInt(-1)
		}
		t.removeMatching(owner(c), byValue, re.MatchString)
		return kemi.RetInt(1)
	}
}

// sht_rm_name / sht_rm_value (table, op, value): op is "re" or "sw".
func (m *Module) kRmOp(byValue bool) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		t := m.table(c, a[0].S)
		if t == nil {
			return kemi.RetInt(-1)
		}
		op := parseOp(a[1].S)
		if op != opRE && op != opSW {
			c.Log.Warn().Str("op", a[1].S).Msg("htable: unsupported match operator")
			return kemi.RetInt(-1)
		}
		if a[2].S == "" {
			return kemi.RetInt(-1)
		}
		test, err := matcher(op, a[2].S)
		if err != nil {
			c.Log.Error().Err(err).Str("re", a[2].S).Msg("htable: bad regular expression")
			return kemi.RetInt(-1)
		}
		t.removeMatching(owner(c), byValue, test)
		return kemi.RetInt(1)
	}
}

// sht_match_name / sht_match_str_value (table, op, value): 1 when some
// item name (string value) matches; op is eq, ne, re or sw.
func (m *Module) kMatch(byValue bool) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		t := m.table(c, a[0].S)
		if t == nil {
			return kemi.RetInt(-1)
		}
		op := parseOp(a[1].S)
		if op == 0 {
			c.Log.Warn().Str("op", a[1].S).Msg("htable: unsupported match operator")
			return kemi.RetInt(-1)
		}
		if a[2].S == "" {
			return kemi.RetInt(-1)
		}
		test, err := matcher(op, a[2].S)
		if err != nil {
			c.Log.Error().Err(err).Str("re", a[2].S).Msg("htable: bad regular expression")
			return kemi.RetInt(-1)
		}
		if t.matchAny(owner(c), byValue, test) {
			return kemi.RetInt(1)
		}
		return kemi.RetInt(-1)
	}
}

// sht_reset: removes every item. Returns 0 on success (as Kamailio's KEMI
// export does), -1 for an unknown table.
func (m *Module) kReset(c *kemi.Ctx, a []val.Value) val.Value {
	t := m.table(c, a[0].S)
	if t == nil {
		return kemi.RetInt(-1)
	}
	t.reset(owner(c))
	return kemi.RetInt(0)
}

// sht_lock / sht_unlock (table, key): the slot of key, re-entrant for the
// same worker. 1, or -1 for an unknown table.
func (m *Module) kLock(c *kemi.Ctx, a []val.Value) val.Value {
	t := m.table(c, a[0].S)
	if t == nil {
		return kemi.RetInt(-1)
	}
	m.lockKey(owner(c), t, a[1].S)
	return kemi.RetInt(1)
}

func (m *Module) kUnlock(c *kemi.Ctx, a []val.Value) val.Value {
	t := m.table(c, a[0].S)
	if t == nil {
		return kemi.RetInt(-1)
	}
	if !m.unlockKey(owner(c), t, a[1].S) {
		c.Log.Warn().Str("table", a[0].S).Str("key", a[1].S).Msg("htable: sht_unlock of a slot this worker does not hold")
	}
	return kemi.RetInt(1)
}

func (m *Module) kIterStart(c *kemi.Ctx, a []val.Value) val.Value {
	return kemi.RetInt(m.iterStart(owner(c), a[0].S, a[1].S))
}

func (m *Module) kIterNext(c *kemi.Ctx, a []val.Value) val.Value {
	return kemi.RetInt(m.iterNext(owner(c), a[0].S))
}

func (m *Module) kIterEnd(c *kemi.Ctx, a []val.Value) val.Value {
	return kemi.RetInt(m.iterEnd(owner(c), a[0].S))
}

func (m *Module) kIterRm(c *kemi.Ctx, a []val.Value) val.Value {
	return kemi.RetInt(m.iterRm(owner(c), a[0].S))
}

func (m *Module) kIterSet(c *kemi.Ctx, a []val.Value) val.Value {
	return kemi.RetInt(m.iterSet(owner(c), a[0].S, a[1]))
}

func (m *Module) kIterSetEx(c *kemi.Ctx, a []val.Value) val.Value {
	return kemi.RetInt(m.iterSetEx(owner(c), a[0].S, a[1].I))
}
