package htable

import (
	"hash/fnv"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/kemigo/kemigo/core/val"
)

// item is one stored value. expire is a Unix time in seconds; 0 means the
// item never expires. As in Kamailio an item is expired once expire < now.
type item struct {
	v      val.Value
	expire int64
}

func (it item) expired(now int64) bool { return it.expire != 0 && it.expire < now }

// slot is one lock shard. Short critical sections hold mu. Script-level
// locks (sht_lock) set owner; while a slot is owned, other owners wait on
// cond, as other Kamailio processes wait on the slot lock. The owner may
// lock again (re-entrant, like ht_slot_lock) and keeps full access.
type slot struct {
	mu    sync.Mutex
	cond  sync.Cond
	owner int // 0: not script-locked
	depth int // extra re-entrant sht_lock calls by owner
	items map[string]item
}

// Owner ids: anonymous callers (Go API, sweeper) use 0 and only wait for
// script locks; workers use their id + 1; route code without a worker uses
// mainOwner.
const (
	anonOwner = 0
	mainOwner = -1
)

// Table is one shared hash table.
type Table struct {
	spec  Spec
	slots []slot
	mask  uint32
	now   func() int64 // Unix seconds
}

func newTable(sp Spec, now func() int64) *Table {
	n := slotCount(sp.Size)
	t := &Table{spec: sp, slots: make([]slot, n), mask: uint32(n - 1), now: now}
	for i := range t.slots {
		s := &t.slots[i]
		s.cond.L = &s.mu
		s.items = map[string]item{}
	}
	return t
}

// Name returns the table name.
func (t *Table) Name() string { return t.spec.Name }

// Spec returns the table definition.
func (t *Table) Spec() Spec { return t.spec }

func (t *Table) slotIndex(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() & t.mask)
}

// lock takes slot idx's mutex once no other owner holds its script lock.
// The caller must unlock s.mu.
func (t *Table) lock(idx, owner int) *slot {
	s := &t.slots[idx]
	s.mu.Lock()
	for s.owner != 0 && s.owner != owner {
		s.cond.Wait()
	}
	return s
}

// defaultExpire is the expiry of an item (re)set without an explicit one.
func (t *Table) defaultExpire(now int64) int64 {
	if t.spec.AutoExpire > 0 {
		return now + t.spec.AutoExpire
	}
	return 0
}

// get returns the live item for key.
func (t *Table) get(owner int, key string) (item, bool) {
	now := t.now()
	s := t.lock(t.slotIndex(key), owner)
	it, ok := s.items[key]
	s.mu.Unlock()
	if !ok || it.expired(now) {
		return item{}, false
	}
	return it, true
}

// value returns the value for key as $sht reads it: the item, or initval
// when the table has one, or null.
func (t *Table) value(owner int, key string) val.Value {
	if it, ok := t.get(owner, key); ok {
		return it.v
	}
	if t.spec.HasInitVal {
		return val.OfInt(t.spec.InitVal)
	}
	return val.NullValue
}

// set stores v (int or str; bool is stored as int). exv > 0 sets the
// item's expiry to now+exv; otherwise a new item gets the table's
// autoexpire and an updated one keeps its expiry unless updateexpire is on
// (ht_set_cell_ex). An expired item counts as absent.
func (t *Table) set(owner int, key string, v val.Value, exv int64) {
	if v.Kind == val.Bool {
		v = val.OfInt(v.I)
	}
	now := t.now()
	s := t.lock(t.slotIndex(key), owner)
	old, ok := s.items[key]
	var exp int64
	switch {
	case exv > 0:
		exp = now + exv
	case ok && !old.expired(now) && !t.spec.UpdateExpire:
		exp = old.expire
	default:
		exp = t.defaultExpire(now)
	}
	s.items[key] = item{v: v, expire: exp}
	s.mu.Unlock()
}

// del removes key and reports whether a live item was there.
func (t *Table) del(owner int, key string) bool {
	now := t.now()
	s := t.lock(t.slotIndex(key), owner)
	it, ok := s.items[key]
	delete(s.items, key)
	s.mu.Unlock()
	return ok && !it.expired(now)
}

// setExpire changes the expiry of an existing item: exv > 0 means exv
// seconds from now, otherwise never (ht_set_cell_expire).
func (t *Table) setExpire(owner int, key string, exv int64) {
	now := t.now()
	s := t.lock(t.slotIndex(key), owner)
	if it, ok := s.items[key]; ok && !it.expired(now) {
		if exv > 0 {
			it.expire = now + exv
		} else {
			it.expire = 0
		}
		s.items[key] = it
	}
	s.mu.Unlock()
}

// expireIn returns the seconds left before key expires ($shtex): 0 when
// the item is missing or does not expire.
func (t *Table) expireIn(owner int, key string) int64 {
	it, ok := t.get(owner, key)
	if !ok || it.expire == 0 {
		return 0
	}
	if d := it.expire - t.now(); d > 0 {
		return d
	}
	return 0
}

// add adds delta to an integer item (ht_cell_value_add). A missing item
// is created from initval when the table has one. It fails on a string
// item, or a missing one without initval.
func (t *Table) add(owner int, key string, delta int64) (int64, bool) {
	now := t.now()
	s := t.lock(t.slotIndex(key), owner)
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if ok && it.expired(now) {
		ok = false
	}
	if !ok {
		if !t.spec.HasInitVal {
			return 0, false
		}
		n := t.spec.InitVal + delta
		s.items[key] = item{v: val.OfInt(n), expire: t.defaultExpire(now)}
		return n, true
	}
	if it.v.Kind != val.Int {
		return 0, false
	}
	it.v.I += delta
	if t.spec.UpdateExpire {
		it.expire = t.defaultExpire(now)
	}
	s.items[key] = it
	return it.v.I, true
}

// exists reports whether a live item is stored under key.
func (t *Table) exists(owner int, key string) bool {
	_, ok := t.get(owner, key)
	return ok
}

// each visits every live item slot by slot, holding each slot's mutex
// while visiting it. fn returns false to stop; del=true removes the item.
func (t *Table) each(owner int, fn func(key string, it item) (del, cont bool)) {
	now := t.now()
	for i := range t.slots {
		s := t.lock(i, owner)
		for k, it := range s.items {
			if it.expired(now) {
				continue
			}
			del, cont := fn(k, it)
			if del {
				delete(s.items, k)
			}
			if !cont {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}

// reset removes every item.
func (t *Table) reset(owner int) {
	for i := range t.slots {
		s := t.lock(i, owner)
		clear(s.items)
		s.mu.Unlock()
	}
}

// Match operators of sht_match_name / sht_rm_name (HT_RM_OP_*).
const (
	opEQ = iota + 1
	opNE
	opSW
	opRE
)

func parseOp(op string) int {
	switch op {
	case "eq":
		return opEQ
	case "ne":
		return opNE
	case "sw":
		return opSW
	case "re":
		return opRE
	}
	return 0
}

// compileRE compiles a pattern as regcomp(REG_EXTENDED|REG_ICASE|REG_NEWLINE).
func compileRE(p string) (*regexp.Regexp, error) {
	return regexp.Compile("(?im)" + p)
}

// matcher returns the test for op against mval.
func matcher(op int, mval string) (func(string) bool, error) {
	switch op {
	case opEQ:
		return func(s string) bool { return s == mval }, nil
	case opNE:
		return func(s string) bool { return s != mval }, nil
	case opSW:
		return func(s string) bool { return strings.HasPrefix(s, mval) }, nil
	case opRE:
		re, err := compileRE(mval)
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	}
	return nil, errBadOp
}

// subject returns what byValue matching looks at: the name, or the value
// when it is a string (integer values never match by value).
func subject(key string, it item, byValue bool) (string, bool) {
	if !byValue {
		return key, true
	}
	if it.v.Kind == val.Str {
		return it.v.S, true
	}
	return "", false
}

// matchAny reports whether some item name (or string value) matches.
func (t *Table) matchAny(owner int, byValue bool, test func(string) bool) bool {
	found := false
	t.each(owner, func(k string, it item) (bool, bool) {
		if s, ok := subject(k, it, byValue); ok && test(s) {
			found = true
			return false, false
		}
		return false, true
	})
	return found
}

// removeMatching deletes every item whose name (or string value) matches.
func (t *Table) removeMatching(owner int, byValue bool, test func(string) bool) int {
	n := 0
	t.each(owner, func(k string, it item) (bool, bool) {
		if s, ok := subject(k, it, byValue); ok && test(s) {
			n++
			return true, true
		}
		return false, true
	})
	return n
}

// count implements $shtcn / $shtcv (ht_count_cells_re): expr is "~~re",
// "~%suffix", "%~prefix", "==str", "eq<int>" (values only), "**" (all
// items) or else a regular expression.
func (t *Table) count(owner int, expr string, byValue bool) int {
	if expr == "" {
		return 0
	}
	var test func(k string, it item) bool
	op := ""
	if len(expr) >= 2 {
		switch expr[:2] {
		case "~~", "~%", "%~", "==", "eq", "**":
			op = expr[:2]
		}
	}
	arg := expr
	if op != "" && op != "**" {
		if len(expr) <= 2 {
			return 0
		}
		arg = expr[2:]
	}
	switch op {
	case "**":
		test = func(string, item) bool { return true }
	case "eq":
		if !byValue {
			return 0
		}
		n, _ := str2sint(arg)
		test = func(_ string, it item) bool { return it.v.Kind == val.Int && it.v.I == n }
	case "~%", "%~", "==":
		var f func(string) bool
		switch op {
		case "~%":
			f = func(s string) bool { return strings.HasSuffix(s, arg) }
		case "%~":
			f = func(s string) bool { return strings.HasPrefix(s, arg) }
		default:
			f = func(s string) bool { return s == arg }
		}
		test = func(k string, it item) bool {
			s, ok := subject(k, it, byValue)
			return ok && f(s)
		}
	default: // "~~" or a bare regular expression
		re, err := compileRE(arg)
		if err != nil {
			return 0
		}
		test = func(k string, it item) bool {
			s, ok := subject(k, it, byValue)
			return ok && re.MatchString(s)
		}
	}
	n := 0
	t.each(owner, func(k string, it item) (bool, bool) {
		if test(k, it) {
			n++
		}
		return false, true
	})
	return n
}

// keys returns the live keys in iteration order (slot by slot, then by name).
func (t *Table) keys(owner int) []string {
	now := t.now()
	var out []string
	for i := range t.slots {
		s := t.lock(i, owner)
		start := len(out)
		for k, it := range s.items {
			if !it.expired(now) {
				out = append(out, k)
			}
		}
		s.mu.Unlock()
		sort.Strings(out[start:])
	}
	return out
}

// expiredItem is an item removed by the sweeper.
type expiredItem struct {
	key string
	v   val.Value
}

// sweep removes expired items and returns them.
func (t *Table) sweep() []expiredItem {
	now := t.now()
	var out []expiredItem
	for i := range t.slots {
		s := t.lock(i, anonOwner)
		for k, it := range s.items {
			if it.expired(now) {
				delete(s.items, k)
				out = append(out, expiredItem{k, it.v})
			}
		}
		s.mu.Unlock()
	}
	return out
}

// slotLock is sht_lock: take the script lock of key's slot for owner.
// It is re-entrant for the same owner.
func (t *Table) slotLock(owner int, key string) *slot {
	s := t.lock(t.slotIndex(key), owner)
	if s.owner == owner {
		s.depth++
	} else {
		s.owner, s.depth = owner, 0
	}
	s.mu.Unlock()
	return s
}

// slotUnlock is sht_unlock. It reports whether owner held the lock.
func (t *Table) slotUnlock(owner int, key string) (*slot, bool) {
	s := &t.slots[t.slotIndex(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != owner {
		return s, false
	}
	if s.depth > 0 {
		s.depth--
		return s, true
	}
	s.owner = 0
	s.cond.Broadcast()
	return s, true
}

// releaseAll drops every script lock owner holds on s.
func releaseAll(s *slot, owner int) {
	s.mu.Lock()
	if s.owner == owner {
		s.owner, s.depth = 0, 0
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

// str2sint parses like Kamailio's str2sint: an optional sign then digits;
// it stops at the first non-digit (keeping what it read, reporting
// failure) and saturates at the int32 limits.
func str2sint(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	neg := false
	i := 0
	switch s[0] {
	case '+':
		i++
	case '-':
		neg = true
		i++
	}
	var n int64
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			if neg {
				return -n, false
			}
			return n, false
		}
		n = n*10 + int64(c-'0')
		if !neg && n > 2147483647 {
			return 2147483647, false
		}
		if neg && n > 2147483648 {
			return -2147483648, false
		}
	}
	if neg {
		return -n, true
	}
	return n, true
}
