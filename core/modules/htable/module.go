// Package htable is Kamailio's htable module: named in-memory hash tables
// shared by every worker, with per-item expiry, the $sht(...) family of
// pseudo-variables and the KSR.htable.* functions.
package htable

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// ErrNoTable is returned by the Go API for an unknown table name.
var ErrNoTable = errors.New("htable: no such table")

var errBadOp = errors.New("htable: unsupported match operator")

// ExpiredFunc is called by the sweeper for each item removed because it
// expired, outside any table lock. The proxy uses it to run the
// "htable:expired:<table>" event route (event_callback); $shtrecord(key)
// and $shtrecord(value) read the record while it runs.
type ExpiredFunc func(table, key string, v val.Value)

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now (tests drive expiry with it).
func WithClock(now func() time.Time) Option { return func(m *Module) { m.clock = now } }

// WithLogger sets the logger of the sweeper and the Go API.
func WithLogger(l zerolog.Logger) Option { return func(m *Module) { m.log = l } }

// Module holds the tables.
type Module struct {
	cfg    Config
	clock  func() time.Time
	log    zerolog.Logger
	tables map[string]*Table // read-only after New
	names  []string

	hookMu  sync.Mutex
	expired ExpiredFunc
	record  atomic.Pointer[expiredRecord] // record being reported to expired

	heldMu sync.Mutex
	held   map[int]map[*slot]struct{} // script locks per owner

	itMu  sync.Mutex
	iters map[int]map[string]*iterator // per owner (worker)

	runMu sync.Mutex
	stop  chan struct{}
	done  chan struct{}
}

type expiredRecord struct {
	table, key string
	v          val.Value
}

// New builds the module from its configuration: it parses every table
// definition (an error names the bad table or attribute) and registers the
// $sht, $shtex, $shtcn, $shtcv, $shtinc, $shtdec, $shtitkey, $shtitval and
// $shtrecord pseudo-variables for this module. Call Start to run the
// expiry sweeper.
func New(cfg Config, opts ...Option) (*Module, error) {
	m := &Module{
		cfg:    cfg,
		clock:  time.Now,
		log:    zerolog.Nop(),
		tables: map[string]*Table{},
		held:   map[int]map[*slot]struct{}{},
		iters:  map[int]map[string]*iterator{},
	}
	for _, o := range opts {
		o(m)
	}
	if m.cfg.TimerInterval <= 0 {
		m.cfg.TimerInterval = DefaultConfig().TimerInterval
	}
	now := func() int64 { return m.clock().Unix() }
	for _, def := range cfg.HTable {
		sp, err := ParseSpec(def)
		if err != nil {
			return nil, err
		}
		if _, dup := m.tables[sp.Name]; dup {
			return nil, fmt.Errorf("htable %s: defined twice", sp.Name)
		}
		m.tables[sp.Name] = newTable(sp, now)
		m.names = append(m.names, sp.Name)
	}
	sort.Strings(m.names)
	registerPVs(m)
	return m, nil
}

// Table returns the named table, or nil.
func (m *Module) Table(name string) *Table { return m.tables[name] }

// Tables returns the table names, sorted.
func (m *Module) Tables() []string { return append([]string(nil), m.names...) }

// SetExpiredHook sets the function called for expired items (nil: none).
func (m *Module) SetExpiredHook(f ExpiredFunc) {
	m.hookMu.Lock()
	m.expired = f
	m.hookMu.Unlock()
}

// Start runs the sweeper every timer_interval seconds until Stop.
func (m *Module) Start() {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.stop != nil {
		return
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.run(m.stop, m.done, time.Duration(m.cfg.TimerInterval)*time.Second)
}

// Stop ends the sweeper and waits for it.
func (m *Module) Stop() {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.stop == nil {
		return
	}
	close(m.stop)
	<-m.done
	m.stop, m.done = nil, nil
}

func (m *Module) run(stop, done chan struct{}, every time.Duration) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Sweep removes every expired item now (one timer run) and reports each
// to the expired hook. It returns how many items it removed.
func (m *Module) Sweep() int {
	m.hookMu.Lock()
	hook := m.expired
	m.hookMu.Unlock()
	n := 0
	for _, name := range m.names {
		gone := m.tables[name].sweep()
		n += len(gone)
		if hook == nil {
			continue
		}
		for _, e := range gone {
			m.report(hook, name, e)
		}
	}
	return n
}

func (m *Module) report(hook ExpiredFunc, table string, e expiredItem) {
	m.record.Store(&expiredRecord{table: table, key: e.key, v: e.v})
	defer m.record.Store(nil)
	defer func() {
		if r := recover(); r != nil {
			m.log.Error().Interface("panic", r).Str("table", table).Msg("htable: expired hook failed")
		}
	}()
	hook(table, e.key, e.v)
}

// owner returns the lock owner id of a callback context.
func owner(c *kemi.Ctx) int {
	if c != nil && c.Worker != nil {
		return c.Worker.ID + 1
	}
	return mainOwner
}

// lockKey is sht_lock for owner; it records the lock so UnlockAll can
// release it.
func (m *Module) lockKey(o int, t *Table, key string) {
	s := t.slotLock(o, key)
	m.heldMu.Lock()
	set := m.held[o]
	if set == nil {
		set = map[*slot]struct{}{}
		m.held[o] = set
	}
	set[s] = struct{}{}
	m.heldMu.Unlock()
}

// unlockKey is sht_unlock for owner.
func (m *Module) unlockKey(o int, t *Table, key string) bool {
	s, ok := t.slotUnlock(o, key)
	if ok {
		s.mu.Lock()
		free := s.owner != o
		s.mu.Unlock()
		if free {
			m.heldMu.Lock()
			delete(m.held[o], s)
			m.heldMu.Unlock()
		}
	}
	return ok
}

// UnlockAll releases every sht_lock held by worker id (whatever the
// nesting depth) and drops its iterators. The proxy may call it when a
// callback ends, so that a script that raised between sht_lock and
// sht_unlock does not block the other workers forever (Kamailio would).
func (m *Module) UnlockAll(worker int) {
	o := worker + 1
	m.heldMu.Lock()
	set := m.held[o]
	delete(m.held, o)
	m.heldMu.Unlock()
	for s := range set {
		releaseAll(s, o)
	}
	m.itMu.Lock()
	delete(m.iters, o)
	m.itMu.Unlock()
}

// Item is one table entry as the Go API returns it.
type Item struct {
	Key    string
	Value  val.Value
	Expire int64 // Unix seconds; 0 when the item does not expire
}

// Get returns the value of key (null when missing; initval for tables
// that have one). It waits for script locks like any other worker.
func (m *Module) Get(table, key string) (val.Value, error) {
	t := m.tables[table]
	if t == nil {
		return val.NullValue, fmt.Errorf("%w: %s", ErrNoTable, table)
	}
	return t.value(anonOwner, key), nil
}

// Set stores v under key with the table's default expiry; a null v
// deletes the item.
func (m *Module) Set(table, key string, v val.Value) error {
	return m.SetEx(table, key, v, 0)
}

// SetEx stores v under key and, when expire > 0, makes it expire that
// many seconds from now (htable.setxs / setxi). A null v deletes the item.
func (m *Module) SetEx(table, key string, v val.Value, expire int) error {
	t := m.tables[table]
	if t == nil {
		return fmt.Errorf("%w: %s", ErrNoTable, table)
	}
	if v.IsNull() {
		t.del(anonOwner, key)
		return nil
	}
	t.set(anonOwner, key, v, int64(expire))
	return nil
}

// SetExpire changes the expiry of an existing item (htable.setex):
// expire > 0 is seconds from now, otherwise the item no longer expires.
func (m *Module) SetExpire(table, key string, expire int) error {
	t := m.tables[table]
	if t == nil {
		return fmt.Errorf("%w: %s", ErrNoTable, table)
	}
	t.setExpire(anonOwner, key, int64(expire))
	return nil
}

// Delete removes key and reports whether it was there.
func (m *Module) Delete(table, key string) (bool, error) {
	t := m.tables[table]
	if t == nil {
		return false, fmt.Errorf("%w: %s", ErrNoTable, table)
	}
	return t.del(anonOwner, key), nil
}

// Reset removes every item of the table (htable.flush).
func (m *Module) Reset(table string) error {
	t := m.tables[table]
	if t == nil {
		return fmt.Errorf("%w: %s", ErrNoTable, table)
	}
	t.reset(anonOwner)
	return nil
}

// Dump returns the live items of the table sorted by key (htable.dump).
func (m *Module) Dump(table string) ([]Item, error) {
	t := m.tables[table]
	if t == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoTable, table)
	}
	var out []Item
	t.each(anonOwner, func(k string, it item) (bool, bool) {
		out = append(out, Item{Key: k, Value: it.v, Expire: it.expire})
		return false, true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
