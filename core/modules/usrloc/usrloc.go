// Package usrloc is Kamailio's usrloc module: the location service the
// registrar writes REGISTER bindings into and reads them from. Records are
// kept in memory per domain (location table) and AoR, shared by every
// worker; expired contacts are removed by a timer. With db_mode 1 every
// change is written through to Kamailio's `location` table; with db_mode 2
// (write-back) changes only mark the contacts in memory and the timer
// writes them all in one transaction every timer_interval seconds (and
// Close at shutdown). With both the table is loaded when a domain is
// created.
package usrloc

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kemigo/kemigo/core/db"
	"github.com/rs/zerolog"
)

// Contact flags (the `flags` column).
const (
	FlagMem uint32 = 1 // FL_MEM: kept in memory only, never written to the database
)

// AllMethods is the methods mask of a contact that accepts every method.
const AllMethods uint32 = 0xFFFFFFFF

// QUnspecified is the q of a contact registered without one.
const QUnspecified = -1

// DefaultDomain is the usrloc domain scripts use ("location").
const DefaultDomain = "location"

// Contact is one binding of an AoR.
type Contact struct {
	Domain       string // usrloc domain (location table) name
	AOR          string
	URI          string // the contact address
	Received     string // source address the contact is reached at, as a SIP URI
	Path         string // Path header bodies, comma-joined
	Expires      int64  // absolute time, Unix seconds; 0: never expires
	Q            int    // 0..1000, QUnspecified
	CallID       string
	CSeq         int
	Flags        uint32 // usrloc flags (FlagMem)
	CFlags       uint32 // branch flags saved with the contact
	UserAgent    string
	Socket       string // local socket it registered on, "proto:ip:port"
	Methods      uint32 // accepted methods (Kamailio METHOD_* bits), AllMethods
	Instance     string // +sip.instance, without quotes
	RegID        uint32 // reg-id (RFC 5626)
	RUID         string // record unique id
	LastModified int64  // Unix seconds
	ConnID       int64  // TCP connection it registered over, 0: none
	ServerID     int
	Keepalive    int

	seq     uint64  // modification order, for sorting
	dbState dbState // db_mode 2: what the next flush writes for it
}

// dbState is the write-back state of a contact (Kamailio's cstate_t).
type dbState uint8

const (
	// dbSynced: nothing to write (the row is up to date, or there is no
	// row to have: FlagMem contacts, memory-only domains).
	dbSynced dbState = iota
	// dbNew: never written; the next flush inserts it.
	dbNew
	// dbDirty: changed since it was written; the next flush updates its
	// row (inserting it when the row is missing).
	dbDirty
)

// Valid reports whether the contact has not expired at now (Unix seconds):
// Kamailio's VALID_CONTACT.
func (c *Contact) Valid(now int64) bool { return c.Expires == 0 || c.Expires > now }

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now (tests drive expiry with it).
func WithClock(now func() time.Time) Option { return func(m *Module) { m.clock = now } }

// WithLogger sets the logger of the timer and the database layer.
func WithLogger(l zerolog.Logger) Option { return func(m *Module) { m.log = l } }

// ExpiredFunc is called by the timer for every contact it removes because
// it expired (Kamailio's UL_CONTACT_EXPIRE callback), outside any lock.
type ExpiredFunc func(c Contact)

// Module is the location service.
type Module struct {
	cfg   Config
	clock func() time.Time
	log   zerolog.Logger
	db    *db.DB

	domMu   sync.RWMutex
	domains map[string]*Domain

	seq     atomic.Uint64
	ruidSeq atomic.Uint64
	ruidPfx string

	hookMu  sync.Mutex
	expired ExpiredFunc

	// wb is db_mode 2. flushMu serialises the write-back flushes (and
	// the closing of the database).
	wb      bool
	flushMu sync.Mutex

	runMu sync.Mutex
	stop  chan struct{}
	done  chan struct{}
}

// New builds the location service. With db_mode 1 or 2 it opens db_url,
// creates the location table when missing and loads the preloaded
// domains. Call Start to run the expiry timer and Close at shutdown.
func New(cfg Config, opts ...Option) (*Module, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.TimerInterval <= 0 {
		cfg.TimerInterval = DefaultConfig().TimerInterval
	}
	if cfg.CSeqDelay < 0 {
		cfg.CSeqDelay = 0
	}
	m := &Module{
		cfg:     cfg,
		clock:   time.Now,
		log:     zerolog.Nop(),
		domains: map[string]*Domain{},
	}
	for _, o := range opts {
		o(m)
	}
	m.ruidPfx = fmt.Sprintf("uloc-%x-%x", m.clock().Unix(), os.Getpid())
	m.wb = cfg.DBMode == 2
	if cfg.DBMode == 1 || cfg.DBMode == 2 {
		d, err := db.Open(cfg.DBURL)
		if err != nil {
			return nil, fmt.Errorf("usrloc: %w", err)
		}
		m.db = d
	}
	for _, name := range cfg.Preload {
		if _, err := m.register(name); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// Config returns the configuration in use.
func (m *Module) Config() Config { return m.cfg }

// UseDomain reports whether AoRs include the domain (use_domain).
func (m *Module) UseDomain() bool { return m.cfg.UseDomain != 0 }

// NATFlag is the branch-flag mask of nat_bflag (0 when unset).
func (m *Module) NATFlag() uint32 { return m.cfg.NATFlag() }

// Now returns the module clock in Unix seconds.
func (m *Module) Now() int64 { return m.clock().Unix() }

// NewRUID returns a new record unique id ("uloc-<time>-<pid>-<n>", as
// Kamailio's sruid).
func (m *Module) NewRUID() string {
	return m.ruidPfx + "-" + strconv.FormatUint(m.ruidSeq.Add(1), 16)
}

// SetExpiredHook sets the function called for each expired contact.
func (m *Module) SetExpiredHook(f ExpiredFunc) {
	m.hookMu.Lock()
	m.expired = f
	m.hookMu.Unlock()
}

// Domain returns the named domain, creating it (and loading its table
// with db_mode 1 and 2) on first use: a KEMI script has no fixup that would
// register it at start-up (SPEC §9.6).
func (m *Module) Domain(name string) *Domain {
	d, err := m.register(name)
	if err != nil {
		m.log.Error().Err(err).Str("domain", name).Msg("usrloc: loading the domain failed; it works in memory")
	}
	return d
}

// FindDomain returns an existing domain.
func (m *Module) FindDomain(name string) (*Domain, bool) {
	m.domMu.RLock()
	defer m.domMu.RUnlock()
	d, ok := m.domains[name]
	return d, ok
}

// Domains returns the domain names, sorted.
func (m *Module) Domains() []string {
	m.domMu.RLock()
	defer m.domMu.RUnlock()
	out := make([]string, 0, len(m.domains))
	for n := range m.domains {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// register returns the domain, creating and loading it when new. The
// domain is usable even when loading failed (the error is returned too).
func (m *Module) register(name string) (*Domain, error) {
	if d, ok := m.FindDomain(name); ok {
		return d, nil
	}
	m.domMu.Lock()
	defer m.domMu.Unlock()
	if d, ok := m.domains[name]; ok {
		return d, nil
	}
	d := newDomain(m, name)
	var err error
	if m.db != nil {
		err = m.loadDomain(d)
	}
	m.domains[name] = d
	return d, err
}

// Close stops the timer, writes the pending changes (db_mode 2) and
// closes the database.
func (m *Module) Close() error {
	m.Stop()
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	if m.db == nil {
		return nil
	}
	var ferr error
	if m.wb {
		if _, ferr = m.flushLocked(nil, 0); ferr != nil {
			m.log.Error().Err(ferr).Msg("usrloc: the flush at shutdown failed; the pending location changes are lost")
			ferr = fmt.Errorf("usrloc: final flush: %w", ferr)
		}
	}
	err := m.db.Close()
	m.db = nil
	return errors.Join(ferr, err)
}

// Flush writes the pending changes of db_mode 2 to the database now, in
// one transaction (the timer does it every timer_interval seconds, Close
// at shutdown; Kamailio's ul.flush). On an error the changes stay pending
// for the next flush. It does nothing with the other modes.
func (m *Module) Flush() error {
	if !m.wb {
		return nil
	}
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	_, err := m.flushLocked(nil, 0)
	return err
}

// Start runs the expiry timer every timer_interval seconds until Stop.
func (m *Module) Start() {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.stop != nil {
		return
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.run(m.stop, m.done, time.Duration(m.cfg.TimerInterval)*time.Second)
}

// Stop ends the timer and waits for it.
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
			m.Timer()
		}
	}
}

// Timer removes every expired contact (and empty records) from memory and
// from the database; with db_mode 2 it then writes every pending change,
// the deletion of the expired contacts included, in one transaction. It is
// what the timer runs. It returns how many contacts it removed.
func (m *Module) Timer() int {
	now := m.Now()
	var gone []Contact
	if m.wb {
		m.flushMu.Lock()
		m.flushLocked(&gone, now) // an error is logged; the changes stay pending
		m.flushMu.Unlock()
	} else {
		m.forSlots(func(d *Domain, s *slot) {
			s.mu.Lock()
			m.sweep(d, s, now, &gone)
			s.mu.Unlock()
		})
	}
	m.hookMu.Lock()
	f := m.expired
	m.hookMu.Unlock()
	if f != nil {
		for _, c := range gone {
			f(c)
		}
	}
	return len(gone)
}

// forSlots calls fn for every slot of every domain.
func (m *Module) forSlots(fn func(d *Domain, s *slot)) {
	m.domMu.RLock()
	doms := make([]*Domain, 0, len(m.domains))
	for _, d := range m.domains {
		doms = append(doms, d)
	}
	m.domMu.RUnlock()
	for _, d := range doms {
		for i := range d.slots {
			fn(d, &d.slots[i])
		}
	}
}

// sweep removes the expired contacts of a slot (locked), appending them to
// gone: deleted from the database at once with db_mode 1, queued for the
// flush with db_mode 2.
func (m *Module) sweep(d *Domain, s *slot, now int64, gone *[]Contact) {
	for aor, r := range s.records {
		keep := r.contacts[:0]
		for _, c := range r.contacts {
			if c.Valid(now) {
				keep = append(keep, c)
				continue
			}
			if m.wb {
				d.deleteLater(s, c)
			} else if err := m.dbDelete(c); err != nil {
				m.log.Error().Err(err).Str("aor", c.AOR).Msg("usrloc: deleting an expired contact from the database failed")
			}
			*gone = append(*gone, *c)
		}
		clear(r.contacts[len(keep):])
		r.contacts = keep
		if len(r.contacts) == 0 {
			delete(s.records, aor)
		}
	}
}

// ---- write-back (db_mode 2) ----

// wbBatch is what one flush writes.
type wbBatch struct {
	dels []wbDel
	ops  []wbOp
}

// wbDel is a row to delete (Domain and RUID of c are set).
type wbDel struct {
	s *slot
	c Contact
}

// wbOp is a contact to insert or update: row is its copy taken under the
// slot lock; s, aor and c find the live contact again if the write fails.
type wbOp struct {
	s      *slot
	aor    string
	c      *Contact
	row    Contact
	insert bool
}

// flushLocked (flushMu held) collects the pending changes of every slot,
// sweeping the expired contacts first when gone is not nil, and writes
// them in one transaction. Each slot is locked only while it is collected:
// workers keep saving during the write; a contact they change meanwhile is
// marked again and goes with the next flush. When the write fails the
// changes are put back.
func (m *Module) flushLocked(gone *[]Contact, now int64) (int, error) {
	var b wbBatch
	m.forSlots(func(d *Domain, s *slot) {
		s.mu.Lock()
		if gone != nil {
			m.sweep(d, s, now, gone)
		}
		for _, c := range s.deleted {
			b.dels = append(b.dels, wbDel{s: s, c: c})
		}
		s.deleted = nil
		for aor, r := range s.records {
			for _, c := range r.contacts {
				if c.dbState == dbNew || c.dbState == dbDirty {
					b.ops = append(b.ops, wbOp{s: s, aor: aor, c: c, row: *c, insert: c.dbState == dbNew})
					c.dbState = dbSynced
				}
			}
		}
		s.mu.Unlock()
	})
	n := len(b.dels) + len(b.ops)
	if n == 0 {
		return 0, nil
	}
	var err error
	start := time.Now()
	if m.db == nil {
		err = errors.New("usrloc: the database is closed")
	} else {
		err = m.writeBatch(&b)
	}
	if err != nil {
		m.requeue(&b)
		m.log.Error().Err(err).Int("deletes", len(b.dels)).Int("writes", len(b.ops)).
			Msg("usrloc: write-back flush failed; the changes stay pending")
		return 0, err
	}
	m.log.Debug().Int("deletes", len(b.dels)).Int("writes", len(b.ops)).Dur("took", time.Since(start)).
		Msg("usrloc: write-back flush")
	return n, nil
}

// requeue puts the changes of a failed flush back: the deletions, and the
// contacts still present, as dirty (an update that inserts the row when it
// is missing, which is also right if the failed commit did reach the
// database). A contact deleted during the flush queued its own deletion
// then (it looked written), which is harmless when no row was written.
func (m *Module) requeue(b *wbBatch) {
	for _, d := range b.dels {
		d.s.mu.Lock()
		d.s.deleted = append(d.s.deleted, d.c)
		d.s.mu.Unlock()
	}
	for _, o := range b.ops {
		o.s.mu.Lock()
		if r := o.s.records[o.aor]; r != nil && o.c.Flags&FlagMem == 0 && o.c.dbState == dbSynced {
			for _, c := range r.contacts {
				if c == o.c {
					c.dbState = dbDirty
					break
				}
			}
		}
		o.s.mu.Unlock()
	}
}

// persistable reports why changes to the domain's contacts cannot be
// written back (nil when they can).
func (d *Domain) persistable() error {
	if !validTable(d.name) {
		return fmt.Errorf("usrloc: domain %q cannot be a table name", d.name)
	}
	if d.noDB {
		return fmt.Errorf("usrloc: domain %q has no usable table (see the error logged when it was created)", d.name)
	}
	return nil
}

// deleteLater queues the deletion of c's row for the next flush (slot
// locked), unless c has no row: FlagMem, never written, or a domain
// without a table.
func (d *Domain) deleteLater(s *slot, c *Contact) {
	if c.Flags&FlagMem == 0 {
		d.deleteRowLater(s, c)
	}
}

// deleteRowLater is deleteLater without the FlagMem test (for a contact
// that has just become memory-only).
func (d *Domain) deleteRowLater(s *slot, c *Contact) {
	if c.dbState == dbNew || d.persistable() != nil {
		return
	}
	s.deleted = append(s.deleted, Contact{Domain: c.Domain, AOR: c.AOR, RUID: c.RUID})
}

// ---- domains and records ----

const nSlots = 256

// Domain is one usrloc domain (location table): AoR records in hash slots,
// each slot with its own lock.
type Domain struct {
	m     *Module
	name  string
	noDB  bool // db_mode 2: its table could not be created; changes are refused
	slots [nSlots]slot
}

type slot struct {
	mu      sync.Mutex
	records map[string]*Record
	deleted []Contact // db_mode 2: rows to delete at the next flush (Domain, RUID)
}

func newDomain(m *Module, name string) *Domain {
	d := &Domain{m: m, name: name}
	for i := range d.slots {
		d.slots[i].records = map[string]*Record{}
	}
	return d
}

// Name is the domain (table) name.
func (d *Domain) Name() string { return d.name }

func (d *Domain) slot(aor string) *slot {
	h := fnv.New32a()
	h.Write([]byte(aor))
	return &d.slots[h.Sum32()%nSlots]
}

// Record is the set of contacts of one AoR. It is only handed out inside
// Domain.Update, under the AoR's lock; its methods write through to the
// database (db_mode 1) or mark the changes for the next flush (db_mode 2).
type Record struct {
	d        *Domain
	s        *slot
	aor      string
	contacts []*Contact // sorted: see sortContacts
}

// AOR returns the address of record.
func (r *Record) AOR() string { return r.aor }

// Contacts returns the contacts, best first. The pointers are live: change
// them only through Record methods.
func (r *Record) Contacts() []*Contact { return r.contacts }

// ErrNotFound is returned when an AoR or contact does not exist.
var ErrNotFound = errors.New("usrloc: not found")

// Update runs fn with the record of aor under its lock. The record exists
// (empty) for the call even if the AoR has no contact; an empty record is
// dropped afterwards. fn's error is returned.
func (d *Domain) Update(aor string, fn func(r *Record) error) error {
	s := d.slot(aor)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[aor]
	if r == nil {
		r = &Record{d: d, s: s, aor: aor}
	}
	err := fn(r)
	if len(r.contacts) == 0 {
		delete(s.records, aor)
	} else {
		s.records[aor] = r
	}
	return err
}

// Get returns copies of the contacts of aor, best first (expired contacts
// the timer has not removed yet included), and whether the AoR has a
// record.
func (d *Domain) Get(aor string) ([]Contact, bool) {
	s := d.slot(aor)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[aor]
	if r == nil {
		return nil, false
	}
	out := make([]Contact, len(r.contacts))
	for i, c := range r.contacts {
		out[i] = *c
	}
	return out, true
}

// Remove deletes every contact of aor. ErrNotFound when it has none.
func (d *Domain) Remove(aor string) error {
	found := false
	err := d.Update(aor, func(r *Record) error {
		found = len(r.contacts) > 0
		return r.DeleteAll()
	})
	if err == nil && !found {
		return ErrNotFound
	}
	return err
}

// AORs returns every AoR of the domain, sorted.
func (d *Domain) AORs() []string {
	var out []string
	for i := range d.slots {
		s := &d.slots[i]
		s.mu.Lock()
		for aor := range s.records {
			out = append(out, aor)
		}
		s.mu.Unlock()
	}
	sort.Strings(out)
	return out
}

// ByRUID finds a contact by its ruid in the record of aor (or in the whole
// domain when aor is "").
func (d *Domain) ByRUID(aor, ruid string) (Contact, bool) {
	find := func(s *slot, aor string) (Contact, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for a, r := range s.records {
			if aor != "" && a != aor {
				continue
			}
			for _, c := range r.contacts {
				if c.RUID == ruid {
					return *c, true
				}
			}
		}
		return Contact{}, false
	}
	if aor != "" {
		return find(d.slot(aor), aor)
	}
	for i := range d.slots {
		if c, ok := find(&d.slots[i], ""); ok {
			return c, true
		}
	}
	return Contact{}, false
}

// Insert adds a contact (Domain, AOR and, when empty, RUID are filled in)
// and writes it to the database (db_mode 2: at the next flush) unless it
// carries FlagMem.
func (r *Record) Insert(c Contact) (*Contact, error) {
	m := r.d.m
	c.Domain, c.AOR = r.d.name, r.aor
	if c.RUID == "" {
		c.RUID = m.NewRUID()
	}
	nc := &c
	nc.seq = m.seq.Add(1)
	nc.dbState = dbSynced
	r.contacts = append(r.contacts, nc)
	r.sort()
	if m.wb {
		if nc.Flags&FlagMem != 0 {
			return nc, nil
		}
		if err := r.d.persistable(); err != nil {
			return nc, err
		}
		nc.dbState = dbNew
		return nc, nil
	}
	return nc, m.dbInsert(nc)
}

// Set replaces the contact's fields by those of ci (RUID, Domain and AOR
// are kept), as Kamailio's update_ucontact, reorders the record and writes
// the change through (db_mode 2: marks it for the next flush).
func (r *Record) Set(c *Contact, ci Contact) error {
	m := r.d.m
	wasMem := c.Flags&FlagMem != 0
	state := c.dbState
	ci.Domain, ci.AOR, ci.RUID = c.Domain, c.AOR, c.RUID
	*c = ci
	c.seq = m.seq.Add(1)
	c.dbState = state
	r.sort()
	if m.wb {
		return r.markSet(c, wasMem)
	}
	if c.Flags&FlagMem != 0 {
		if !wasMem {
			return m.dbDelete(&Contact{RUID: c.RUID, Domain: c.Domain})
		}
		return nil
	}
	return m.dbUpdate(c)
}

// markSet is Set's write-back part: an insert not flushed yet stays an
// insert (of the latest values), a written contact becomes dirty, one that
// turns memory-only has its row deleted.
func (r *Record) markSet(c *Contact, wasMem bool) error {
	if c.Flags&FlagMem != 0 {
		if !wasMem {
			r.d.deleteRowLater(r.s, c)
		}
		c.dbState = dbSynced
		return nil
	}
	if err := r.d.persistable(); err != nil {
		return err
	}
	switch {
	case wasMem:
		c.dbState = dbDirty // no row normally; the update inserts it
	case c.dbState == dbSynced:
		c.dbState = dbDirty
	}
	return nil
}

// Delete removes one contact.
func (r *Record) Delete(c *Contact) error {
	for i, x := range r.contacts {
		if x == c {
			r.contacts = append(r.contacts[:i], r.contacts[i+1:]...)
			if r.d.m.wb {
				r.d.deleteLater(r.s, c)
				return nil
			}
			return r.d.m.dbDelete(c)
		}
	}
	return ErrNotFound
}

// DeleteAs removes one contact, from the database too unless memOnly
// (Kamailio's registrar marks contacts it deletes with FL_MEM when save
// runs with the memory-only flag).
func (r *Record) DeleteAs(c *Contact, memOnly bool) error {
	setMem(c, memOnly)
	return r.Delete(c)
}

// DeleteAllAs removes every contact, from the database too unless memOnly.
func (r *Record) DeleteAllAs(memOnly bool) error {
	for _, c := range r.contacts {
		setMem(c, memOnly)
	}
	return r.DeleteAll()
}

func setMem(c *Contact, mem bool) {
	if mem {
		c.Flags |= FlagMem
	} else {
		c.Flags &^= FlagMem
	}
}

// Snapshot returns copies of the record's contacts, best first.
func (r *Record) Snapshot() []Contact {
	out := make([]Contact, len(r.contacts))
	for i, c := range r.contacts {
		out[i] = *c
	}
	return out
}

// DeleteAll removes every contact of the record.
func (r *Record) DeleteAll() error {
	var first error
	for _, c := range r.contacts {
		if r.d.m.wb {
			r.d.deleteLater(r.s, c)
			continue
		}
		if err := r.d.m.dbDelete(c); err != nil && first == nil {
			first = err
		}
	}
	r.contacts = nil
	return first
}

// sort orders the contacts as lookup and the 200 OK list them, as
// Kamailio's mem_insert_ucontact: by q, highest first (a contact without q
// after q=0), equal q in registration order; with desc_time_order by
// modification only, newest first.
func (r *Record) sort() {
	byTime := r.d.m.cfg.DescTimeOrder != 0
	sort.SliceStable(r.contacts, func(i, j int) bool {
		a, b := r.contacts[i], r.contacts[j]
		if byTime {
			return a.seq > b.seq
		}
		return a.Q > b.Q
	})
}

// Find looks a REGISTER contact up the way Kamailio's get_ucontact does
// (matching_mode, then Call-ID/CSeq): it returns the match and 0; nil and
// 1 when there is none; the match and -1 for an out-of-order CSeq (same
// Call-ID, lower CSeq, or the same CSeq after cseq_delay); the match and
// -2 for a retransmission (same Call-ID and CSeq within cseq_delay). path
// is used by matching_mode 2 when hasPath.
func (r *Record) Find(uri, callid, path string, hasPath bool, cseq int) (*Contact, int) {
	m := r.d.m
	var found *Contact
	noCallID := false
	for _, c := range r.contacts {
		ok := false
		switch m.cfg.MatchingMode {
		case MatchContactCallID:
			ok = c.URI == uri && c.CallID == callid
			noCallID = true
		case MatchContactPath:
			ok = c.URI == uri && (!hasPath || c.Path == path)
		case MatchCallIDOnly:
			ok = c.CallID == callid
		default:
			ok = c.URI == uri
		}
		if ok {
			found = c
			break
		}
	}
	if found == nil {
		return nil, 1
	}
	if noCallID || found.CallID == callid {
		if cseq < found.CSeq {
			return found, -1
		}
		if cseq == found.CSeq {
			if found.LastModified+int64(m.cfg.CSeqDelay) > m.Now() {
				return found, -2
			}
			return found, -1
		}
	}
	return found, 0
}

// FindByInstance is Kamailio's get_ucontact_by_instance: with an instance
// the contact with the same +sip.instance (angle brackets ignored) and
// reg-id matches, with 0 or 1 as result; without one it is Find.
func (r *Record) FindByInstance(uri, callid, path string, hasPath bool, cseq int, instance string, regID uint32) (*Contact, int) {
	if instance == "" {
		return r.Find(uri, callid, path, hasPath, cseq)
	}
	want := trimAngle(instance)
	for _, c := range r.contacts {
		if c.Instance != "" && c.RegID == regID && trimAngle(c.Instance) == want {
			return c, 0
		}
	}
	return nil, 1
}

func trimAngle(s string) string {
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}

// ---- Go API (RPC) ----

// AORDump is one AoR with its contacts.
type AORDump struct {
	Domain   string
	AOR      string
	Contacts []Contact
}

// Dump returns every record of every domain, by domain then AoR.
func (m *Module) Dump() []AORDump {
	var out []AORDump
	for _, name := range m.Domains() {
		d, _ := m.FindDomain(name)
		for _, aor := range d.AORs() {
			cs, ok := d.Get(aor)
			if ok && len(cs) > 0 {
				out = append(out, AORDump{Domain: name, AOR: aor, Contacts: cs})
			}
		}
	}
	return out
}

// Lookup returns the contacts of aor in the "location" domain (expired
// ones the timer has not removed yet excluded), best first.
func (m *Module) Lookup(aor string) []Contact {
	d, ok := m.FindDomain(DefaultDomain)
	if !ok {
		return nil
	}
	cs, _ := d.Get(aor)
	now := m.Now()
	out := cs[:0]
	for _, c := range cs {
		if c.Valid(now) {
			out = append(out, c)
		}
	}
	return out
}

// Remove deletes every contact of aor in the "location" domain.
func (m *Module) Remove(aor string) error {
	d, ok := m.FindDomain(DefaultDomain)
	if !ok {
		return ErrNotFound
	}
	return d.Remove(aor)
}
