package htable

import "github.com/kemigo/kemigo/core/val"

// Iterator limits of Kamailio (HT_ITERATOR_SIZE, HT_ITERATOR_NAME_SIZE).
const (
	maxIterators    = 4
	maxIteratorName = 32
)

// iterator walks a snapshot of a table's keys. Kamailio keeps the slot
// locked between sht_iterator_next calls; kemigo takes no lock between
// calls, so other workers are never blocked by an iteration (and the
// script may update the table while iterating). Keys removed meanwhile
// are skipped; values are read live.
type iterator struct {
	t    *Table
	keys []string
	pos  int    // index in keys of the current item
	cur  string // current key
	has  bool   // an item is current
}

// Iterator return codes (KEMI level).
const (
	itOK    = 1
	itFail  = -1
	itNoMor = -2
)

func (m *Module) iterStart(o int, name, table string) int {
	if name == "" || table == "" {
		return itFail
	}
	m.itMu.Lock()
	defer m.itMu.Unlock()
	set := m.iters[o]
	if set == nil {
		set = map[string]*iterator{}
		m.iters[o] = set
	}
	if _, ok := set[name]; !ok {
		if len(set) >= maxIterators {
			return itFail // no iterator available
		}
		if len(name) >= maxIteratorName {
			return itFail // name too long
		}
	}
	t := m.tables[table]
	if t == nil {
		// Kamailio keeps the slot, bound to no table.
		set[name] = &iterator{}
		return itFail
	}
	set[name] = &iterator{t: t, keys: t.keys(o), pos: -1}
	return itOK
}

func (m *Module) iter(o int, name string) *iterator {
	m.itMu.Lock()
	defer m.itMu.Unlock()
	return m.iters[o][name]
}

// advance moves to the next key still present.
func (it *iterator) advance(o int) bool {
	for it.pos+1 < len(it.keys) {
		it.pos++
		if it.t.exists(o, it.keys[it.pos]) {
			it.cur, it.has = it.keys[it.pos], true
			return true
		}
	}
	it.pos = len(it.keys)
	it.cur, it.has = "", false
	return false
}

func (m *Module) iterNext(o int, name string) int {
	it := m.iter(o, name)
	if it == nil || it.t == nil {
		return itFail
	}
	if it.advance(o) {
		return itOK
	}
	return itFail
}

func (m *Module) iterEnd(o int, name string) int {
	m.itMu.Lock()
	defer m.itMu.Unlock()
	if _, ok := m.iters[o][name]; !ok {
		return itFail
	}
	delete(m.iters[o], name)
	return itOK
}

// iterRm removes the current item and moves to the next one: 1 when there
// is a next item, -2 when the removed one was the last.
func (m *Module) iterRm(o int, name string) int {
	it := m.iter(o, name)
	if it == nil || it.t == nil || !it.has {
		return itFail
	}
	it.t.del(o, it.cur)
	if it.advance(o) {
		return itOK
	}
	return itNoMor
}

func (m *Module) iterSet(o int, name string, v val.Value) int {
	it := m.iter(o, name)
	if it == nil || it.t == nil || !it.has {
		return itFail
	}
	it.t.set(o, it.cur, v, 0)
	return itOK
}

func (m *Module) iterSetEx(o int, name string, exv int64) int {
	it := m.iter(o, name)
	if it == nil || it.t == nil || !it.has {
		return itFail
	}
	it.t.setExpire(o, it.cur, exv)
	return itOK
}

// iterCurrent returns the current key and value ($shtitkey, $shtitval).
func (m *Module) iterCurrent(o int, name string) (string, val.Value, bool) {
	it := m.iter(o, name)
	if it == nil || it.t == nil || !it.has {
		return "", val.NullValue, false
	}
	i, ok := it.t.get(o, it.cur)
	if !ok {
		return it.cur, val.NullValue, true
	}
	return it.cur, i.v, true
}
