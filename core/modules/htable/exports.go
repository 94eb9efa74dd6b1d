package htable

import "github.com/kemigo/kemigo/core/kemi"

// Exports declares KSR.htable.* (catalog.tsv, module htable).
func (m *Module) Exports() []kemi.Export {
	x := func(name, params string, ret kemi.RetType, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "htable", Name: name, Params: kemi.P(params), Ret: ret, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		x("sht_lock", "ss", kemi.RInt, "lock the slot of key in table (re-entrant per worker)", m.kLock),
		x("sht_unlock", "ss", kemi.RInt, "unlock the slot of key in table", m.kUnlock),
		x("sht_reset", "s", kemi.RInt, "remove every item of the table; 0 on success", m.kReset),
		x("sht_iterator_start", "ss", kemi.RInt, "start iterator iname over table", m.kIterStart),
		x("sht_iterator_next", "s", kemi.RInt, "move iterator to the next item; -1 at the end", m.kIterNext),
		x("sht_iterator_end", "s", kemi.RInt, "close the iterator", m.kIterEnd),
		x("sht_iterator_rm", "s", kemi.RInt, "remove the current item and move on; -2 when none is left", m.kIterRm),
		x("sht_iterator_sets", "ss", kemi.RInt, "set the current item to a string", m.kIterSet),
		x("sht_iterator_seti", "si", kemi.RInt, "set the current item to an integer", m.kIterSet),
		x("sht_iterator_setex", "si", kemi.RInt, "set the expiry of the current item", m.kIterSetEx),
		x("sht_rm", "ss", kemi.RInt, "remove an item", m.kRm),
		x("sht_rm_name_re", "ss", kemi.RInt, "remove items whose name matches a regex", m.kRmRE(false)),
		x("sht_rm_value_re", "ss", kemi.RInt, "remove items whose string value matches a regex", m.kRmRE(true)),
		x("sht_rm_name", "sss", kemi.RInt, "remove items by name (op re or sw)", m.kRmOp(false)),
		x("sht_rm_value", "sss", kemi.RInt, "remove items by string value (op re or sw)", m.kRmOp(true)),
		x("sht_match_name", "sss", kemi.RInt, "1 if an item name matches (op eq, ne, re, sw)", m.kMatch(false)),
		x("sht_match_str_value", "sss", kemi.RInt, "1 if an item string value matches (op eq, ne, re, sw)", m.kMatch(true)),
		x("sht_get", "ss", kemi.RXval, "item value, None when missing", m.kGet(nullNone)),
		x("sht_gete", "ss", kemi.RXval, "item value, \"\" when missing", m.kGet(nullEmpty)),
		x("sht_getw", "ss", kemi.RXval, "item value, \"<null>\" when missing", m.kGet(nullPrint)),
		x("sht_sets", "sss", kemi.RInt, "set a string item", m.kSet),
		x("sht_seti", "ssi", kemi.RInt, "set an integer item", m.kSet),
		x("sht_setex", "ssi", kemi.RInt, "set the expiry of an item (seconds, 0: never)", m.kSetEx),
		x("sht_setxi", "ssii", kemi.RInt, "set an integer item with expiry; 0 on success (5.6.3)", m.kSetX(0)),
		x("sht_setxs", "sssi", kemi.RInt, "set a string item with expiry", m.kSetX(1)),
		x("sht_is_null", "ss", kemi.RInt, "1 if missing, -1 if set, -2 for initval tables, 2 for unknown tables", m.kIsNull),
		x("sht_inc", "ss", kemi.RInt, "increment an integer item; the new value or -255", m.kAdd(1)),
		x("sht_dec", "ss", kemi.RInt, "decrement an integer item; the new value or -255", m.kAdd(-1)),
	}
}
