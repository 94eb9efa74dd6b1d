package ksr

import (
	"strings"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// nullMode is how an xval getter returns null (sr_kemi_xval_null).
type nullMode uint8

const (
	nullNone  nullMode = iota // None
	nullEmpty                 // ""
	nullPrint                 // "<null>"
)

func nullAs(mode nullMode) val.Value {
	switch mode {
	case nullEmpty:
		return val.OfStr("")
	case nullPrint:
		return val.OfStr("<null>")
	}
	return val.NullValue
}

// xval keeps a value as KEMI returns it: int or str (bool has no xval form).
func xval(v val.Value) val.Value {
	if v.Kind == val.Bool {
		return val.OfInt(v.I)
	}
	return v
}

// ---- KSR.pv (kemi.c sr_kemi_pv_*) ----

// pvGet evaluates name; ok is false (and an error logged) when the name is
// invalid or the value cannot be read.
func pvGet(c *kemi.Ctx, name string) (val.Value, bool) {
	v, err := pv.Get(c, name)
	if err != nil {
		c.Log.Error().Err(err).Msgf("unable to get pv value for [%s]", name)
		return val.NullValue, false
	}
	return xval(v), true
}

func pvGetMode(mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		v, _ := pvGet(c, a[0].S)
		if v.IsNull() {
			return nullAs(mode)
		}
		return v
	}
}

func pvGetVN(c *kemi.Ctx, a []val.Value) val.Value {
	if v, _ := pvGet(c, a[0].S); !v.IsNull() {
		return v
	}
	return val.OfInt(a[1].I)
}

func pvGetVS(c *kemi.Ctx, a []val.Value) val.Value {
	if v, _ := pvGet(c, a[0].S); !v.IsNull() {
		return v
	}
	return val.OfStr(a[1].S)
}

// pvGetI: null, errors and non-numeric strings give 0.
func pvGetI(c *kemi.Ctx, a []val.Value) val.Value {
	v, err := pv.Get(c, a[0].S)
	if err != nil {
		c.Log.Warn().Err(err).Msgf("unable to get pv value for [%s]", a[0].S)
		return vZero
	}
	return val.OfInt(int64(int32(v.AsInt()))) // a C int in Kamailio
}

func pvSet(c *kemi.Ctx, name string, v val.Value) val.Value {
	if err := pv.Set(c, name, v); err != nil {
		c.Log.Error().Err(err).Msgf("unable to set pv [%s]", name)
		return vFalse
	}
	return vTrue
}

func pvSets(c *kemi.Ctx, a []val.Value) val.Value  { return pvSet(c, a[0].S, val.OfStr(a[1].S)) }
func pvSeti(c *kemi.Ctx, a []val.Value) val.Value  { return pvSet(c, a[0].S, val.OfInt(a[1].I)) }
func pvUnset(c *kemi.Ctx, a []val.Value) val.Value { return pvSet(c, a[0].S, val.NullValue) }

// pvIsNull is True also for an invalid name or an unreadable value.
func pvIsNull(c *kemi.Ctx, a []val.Value) val.Value {
	v, err := pv.Get(c, a[0].S)
	if err != nil {
		c.Log.Error().Err(err).Msgf("cannot get pv spec for [%s]", a[0].S)
		return vTrue
	}
	return val.OfBool(v.IsNull())
}

// ---- KSR.hdr (kemi.c sr_kemi_hdr_*) ----

// validHName rejects what parse_hname2_short turns into HDR_ERROR_T.
func validHName(c *kemi.Ctx, name string) bool {
	if name == "" || strings.ContainsAny(name, ": \t\r\n") {
		c.Log.Error().Msgf("error parsing header name [%s]", name)
		return false
	}
	return true
}

func queue(c *kemi.Ctx, op sipmsg.EditOp, text, anchor string) val.Value {
	c.Msg.QueueEdit(sipmsg.HeaderEdit{Op: op, Text: text, Anchor: strings.ToLower(anchor)})
	return val.OfInt(1)
}

func hdrAppend(c *kemi.Ctx, a []val.Value) val.Value {
	return queue(c, sipmsg.EditAppend, a[0].S, "")
}

func hdrInsert(c *kemi.Ctx, a []val.Value) val.Value {
	return queue(c, sipmsg.EditInsert, a[0].S, "")
}

func hdrAppendAfter(c *kemi.Ctx, a []val.Value) val.Value {
	if !validHName(c, a[1].S) {
		return val.OfInt(-1)
	}
	return queue(c, sipmsg.EditAppendAfter, a[0].S, a[1].S)
}

func hdrInsertBefore(c *kemi.Ctx, a []val.Value) val.Value {
	if !validHName(c, a[1].S) {
		return val.OfInt(-1)
	}
	return queue(c, sipmsg.EditInsertBefore, a[0].S, a[1].S)
}

// hdrRemove returns 1 even when no such header was received.
func hdrRemove(c *kemi.Ctx, a []val.Value) val.Value {
	if !validHName(c, a[0].S) {
		return val.OfInt(-1)
	}
	return queue(c, sipmsg.EditRemove, "", a[0].S)
}

func hdrRmAppend(c *kemi.Ctx, a []val.Value) val.Value {
	if r := hdrRemove(c, a[:1]); r.I < 0 {
		return r
	}
	return hdrAppend(c, a[1:])
}

func hdrRmInsert(c *kemi.Ctx, a []val.Value) val.Value {
	if r := hdrRemove(c, a[:1]); r.I < 0 {
		return r
	}
	return hdrInsert(c, a[1:])
}

// hdrIsPresent looks at the received headers: queued edits are invisible.
func hdrIsPresent(c *kemi.Ctx, a []val.Value) val.Value {
	if !validHName(c, a[0].S) || len(c.Msg.Headers(a[0].S)) == 0 {
		return val.OfInt(-1)
	}
	return val.OfInt(1)
}

func hdrAppendToReply(c *kemi.Ctx, a []val.Value) val.Value {
	c.Msg.ReplyHdrs = append(c.Msg.ReplyHdrs, a[0].S)
	return val.OfInt(1)
}

// hdrGet returns the body of the first (or idx-th, negative from the end)
// received header with that name.
func hdrGet(mode nullMode, withIdx bool) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		if a[0].S == "" {
			c.Log.Error().Msg("error parsing header name []")
			return nullAs(mode)
		}
		hs := c.Msg.Headers(a[0].S)
		idx := 0
		if withIdx {
			idx = int(a[1].I)
		}
		if idx < 0 {
			idx += len(hs)
		}
		if idx < 0 || idx >= len(hs) {
			return nullAs(mode)
		}
		return val.OfStr(hs[idx].Value())
	}
}

// hdrMatchContent follows kemi.c exactly, including that "ne" is only
// true when the lengths differ (same length, different text: False).
func hdrMatchContent(c *kemi.Ctx, a []val.Value) val.Value {
	name, op, want, which := a[0].S, strings.ToLower(a[1].S), a[2].S, a[3].S
	if name == "" {
		return vFalse
	}
	switch op {
	case "eq", "ne", "sw", "in":
	case "re":
		c.Log.Error().Msgf("operator not implemented: %s", a[1].S)
		return vFalse
	default:
		c.Log.Error().Msgf("invalid operator: %s", a[1].S)
		return vFalse
	}
	if which == "" || !strings.ContainsRune("flaoFLAO", rune(which[0])) {
		c.Log.Error().Msgf("invalid header index: %s", which)
		return vFalse
	}
	w := which[0] | 0x20 // lower case
	matched := false
	for i, h := range c.Msg.Headers(name) {
		body := strings.TrimSpace(h.Value())
		matched = false
		switch op {
		case "eq":
			matched = len(body) == len(want) && strings.EqualFold(body, want)
		case "ne":
			matched = len(body) != len(want)
		case "sw":
			matched = len(body) >= len(want) && strings.EqualFold(body[:len(want)], want)
		case "in":
			matched = strings.Contains(strings.ToLower(body), strings.ToLower(want))
		}
		switch {
		case w == 'f' && i == 0:
			return val.OfBool(matched)
		case w == 'a' && !matched:
			return vFalse
		case w == 'o' && matched:
			return vTrue
		}
	}
	return val.OfBool(matched) // last header's result ("l", and "a" when all matched)
}
