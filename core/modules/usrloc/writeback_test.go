package usrloc

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/db"
)

// wbEnv is a db_mode 2 module on a SQLite file, with a second connection
// to look at the table.
type wbEnv struct {
	t   *testing.T
	cfg Config
	clk *clock
	m   *Module
	sdb *db.DB
}

func newWB(t *testing.T) *wbEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DBMode = 2
	cfg.DBURL = "sqlite://" + filepath.Join(t.TempDir(), "loc.db")
	cfg.Preload = StringList{DefaultDomain}
	cfg.UseDomain = 1
	cfg.NATBFlag = 3
	clk := newClock()
	e := &wbEnv{t: t, cfg: cfg, clk: clk, m: mustNew(t, cfg, clk)}
	sdb, err := db.Open(cfg.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	e.sdb = sdb
	return e
}

func (e *wbEnv) dom() *Domain { return e.m.Domain(DefaultDomain) }

// rows returns "callid/cseq" of every row of the table, sorted.
func (e *wbEnv) rows(table string) string {
	e.t.Helper()
	rs, err := e.sdb.Query("SELECT callid, cseq FROM " + table)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var cid string
		var cseq int
		if err := rs.Scan(&cid, &cseq); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s/%d", cid, cseq))
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// flush runs one flush and returns how many statements it wrote (deletes,
// inserts and updates).
func (e *wbEnv) flush() int {
	e.t.Helper()
	e.m.flushMu.Lock()
	defer e.m.flushMu.Unlock()
	n, err := e.m.flushLocked(nil, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *wbEnv) contact(callid string, cseq int) Contact {
	return Contact{URI: "sip:" + callid + "@192.0.2.1", Expires: e.m.Now() + 3600, Q: QUnspecified, CallID: callid,
		CSeq: cseq, Methods: AllMethods, LastModified: e.m.Now(), UserAgent: "ua"}
}

// set applies fn to a copy of the contact with that Call-ID and stores it
// with Record.Set.
func (e *wbEnv) set(aor, callid string, fn func(c *Contact)) {
	e.t.Helper()
	err := e.dom().Update(aor, func(r *Record) error {
		for _, c := range r.Contacts() {
			if c.CallID == callid {
				n := *c
				fn(&n)
				return r.Set(c, n)
			}
		}
		return ErrNotFound
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *wbEnv) del(aor, callid string) {
	e.t.Helper()
	err := e.dom().Update(aor, func(r *Record) error {
		for _, c := range r.Contacts() {
			if c.CallID == callid {
				return r.Delete(c)
			}
		}
		return ErrNotFound
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestWriteBack(t *testing.T) {
	const aor = "alice@example.com"
	tests := []struct {
		name   string
		setup  func(e *wbEnv) // flushed before the step
		step   func(e *wbEnv)
		before string // rows after the step, before the flush
		writes int    // statements of the flush
		after  string // rows after the flush
	}{
		{
			name:   "insert",
			step:   func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1), e.contact("c2", 5)) },
			before: "", writes: 2, after: "c1/1 c2/5",
		},
		{
			name:   "update",
			setup:  func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1)) },
			step:   func(e *wbEnv) { e.set(aor, "c1", func(c *Contact) { c.CSeq = 2 }) },
			before: "c1/1", writes: 1, after: "c1/2",
		},
		{
			name:  "updated twice: one update",
			setup: func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1)) },
			step: func(e *wbEnv) {
				e.set(aor, "c1", func(c *Contact) { c.CSeq = 2 })
				e.set(aor, "c1", func(c *Contact) { c.CSeq = 3 })
			},
			before: "c1/1", writes: 1, after: "c1/3",
		},
		{
			name: "inserted then updated: one insert of the latest values",
			step: func(e *wbEnv) {
				insert(e.t, e.dom(), aor, e.contact("c1", 1))
				e.set(aor, "c1", func(c *Contact) { c.CSeq = 4 })
			},
			before: "", writes: 1, after: "c1/4",
		},
		{
			name:   "delete",
			setup:  func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1), e.contact("c2", 1)) },
			step:   func(e *wbEnv) { e.del(aor, "c1") },
			before: "c1/1 c2/1", writes: 1, after: "c2/1",
		},
		{
			name: "inserted then deleted: nothing",
			step: func(e *wbEnv) {
				insert(e.t, e.dom(), aor, e.contact("c1", 1))
				e.del(aor, "c1")
			},
			before: "", writes: 0, after: "",
		},
		{
			name:  "updated then deleted: one delete",
			setup: func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1)) },
			step: func(e *wbEnv) {
				e.set(aor, "c1", func(c *Contact) { c.CSeq = 2 })
				e.del(aor, "c1")
			},
			before: "c1/1", writes: 1, after: "",
		},
		{
			name:   "Remove (RPC ul.rm)",
			setup:  func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1), e.contact("c2", 1)) },
			step:   func(e *wbEnv) { e.m.Remove(aor) },
			before: "c1/1 c2/1", writes: 2, after: "",
		},
		{
			name: "memory-only contacts are never written",
			step: func(e *wbEnv) {
				c := e.contact("mem", 1)
				c.Flags = FlagMem
				insert(e.t, e.dom(), aor, c)
				e.set(aor, "mem", func(c *Contact) { c.CSeq = 2 })
			},
			before: "", writes: 0, after: "",
		},
		{
			name:   "a contact made memory-only loses its row",
			setup:  func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1)) },
			step:   func(e *wbEnv) { e.set(aor, "c1", func(c *Contact) { c.Flags |= FlagMem; c.CSeq = 2 }) },
			before: "c1/1", writes: 1, after: "",
		},
		{
			name:  "memory-only and back: the row is written again",
			setup: func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1)) },
			step: func(e *wbEnv) {
				e.set(aor, "c1", func(c *Contact) { c.Flags |= FlagMem; c.CSeq = 2 })
				e.set(aor, "c1", func(c *Contact) { c.Flags &^= FlagMem; c.CSeq = 3 })
			},
			before: "c1/1", writes: 2, after: "c1/3",
		},
		{
			name:  "a memory-only delete keeps the row (as db_mode 1)",
			setup: func(e *wbEnv) { insert(e.t, e.dom(), aor, e.contact("c1", 1)) },
			step: func(e *wbEnv) {
				e.dom().Update(aor, func(r *Record) error { return r.DeleteAllAs(true) })
			},
			before: "c1/1", writes: 0, after: "c1/1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWB(t)
			if tt.setup != nil {
				tt.setup(e)
				e.flush()
			}
			tt.step(e)
			if got := e.rows("location"); got != tt.before {
				t.Errorf("before the flush: rows %q, want %q", got, tt.before)
			}
			if n := e.flush(); n != tt.writes {
				t.Errorf("flush wrote %d statements, want %d", n, tt.writes)
			}
			if got := e.rows("location"); got != tt.after {
				t.Errorf("after the flush: rows %q, want %q", got, tt.after)
			}
			if n := e.flush(); n != 0 {
				t.Errorf("second flush wrote %d", n)
			}
		})
	}
}

func TestWriteBackColumns(t *testing.T) {
	e := newWB(t)
	now := e.m.Now()
	full := Contact{URI: "sip:alice@192.168.1.2:5060;transport=tcp", Received: "sip:203.0.113.7:40000;transport=tcp",
		Path: "<sip:edge.example.com;lr>", Expires: now + 3600, Q: 500, CallID: "call-1", CSeq: 7,
		CFlags: 8 | 1, UserAgent: "phone/1.0", Socket: "tcp:10.0.0.1:5060", Methods: 1 | 8 | 512,
		Instance: "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>", RegID: 1, LastModified: now, ConnID: 42}
	insert(t, e.dom(), "alice@example.com", full)
	if e.rows("location") != "" {
		t.Fatal("the insert reached the table before the flush")
	}
	if n := e.m.Timer(); n != 0 {
		t.Errorf("timer removed %d", n)
	}
	var user, domain, contact, received, path, exp, callid, ua, sock, inst, ruid string
	var q float64
	var cseq, cflags, methods, regID, conn, ka int
	if err := e.sdb.QueryRow("SELECT username, domain, contact, received, path, expires, q, callid, cseq, cflags, "+
		"user_agent, socket, methods, instance, reg_id, connection_id, keepalive, ruid FROM location").
		Scan(&user, &domain, &contact, &received, &path, &exp, &q, &callid, &cseq, &cflags, &ua, &sock, &methods,
			&inst, &regID, &conn, &ka, &ruid); err != nil {
		t.Fatal(err)
	}
	want := []any{"alice", "example.com", full.URI, full.Received, full.Path,
		time.Unix(now+3600, 0).Format("2006-01-02 15:04:05"), 0.5, "call-1", 7, 9, "phone/1.0", full.Socket, 521,
		full.Instance, 1, 42, 1, e.dom().mustFirst(t, "alice@example.com").RUID}
	got := []any{user, domain, contact, received, path, exp, q, callid, cseq, cflags, ua, sock, methods, inst, regID, conn, ka, ruid}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("column %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestWriteBackExpiry(t *testing.T) {
	e := newWB(t)
	var expired []string
	e.m.SetExpiredHook(func(c Contact) { expired = append(expired, c.CallID) })
	short := e.contact("short", 1)
	short.Expires = e.m.Now() + 30
	insert(t, e.dom(), "a@x", short, e.contact("long", 1))
	unflushed := e.contact("unflushed", 1)
	e.m.Timer()
	if got := e.rows("location"); got != "long/1 short/1" {
		t.Fatalf("rows %q", got)
	}
	unflushed.Expires = e.m.Now() + 30
	insert(t, e.dom(), "b@x", unflushed)
	e.clk.add(31 * time.Second)
	// the timer removes both and deletes the written one in the same flush;
	// the other was never written
	if n := e.m.Timer(); n != 2 {
		t.Errorf("timer removed %d", n)
	}
	if got := e.rows("location"); got != "long/1" {
		t.Errorf("rows after expiry %q", got)
	}
	sort.Strings(expired)
	if strings.Join(expired, ",") != "short,unflushed" {
		t.Errorf("expired hook %v", expired)
	}
	if n := e.flush(); n != 0 {
		t.Errorf("left %d pending", n)
	}
}

func TestWriteBackCloseAndRestart(t *testing.T) {
	e := newWB(t)
	insert(t, e.dom(), "alice@example.com", e.contact("c1", 1), e.contact("c2", 1))
	insert(t, e.dom(), "bob@example.com", e.contact("c3", 1))
	e.flush()
	e.set("alice@example.com", "c1", func(c *Contact) { c.CSeq, c.Q = 2, 800 })
	e.del("alice@example.com", "c2")
	insert(t, e.dom(), "carol@example.com", e.contact("c4", 1))
	before := e.dom().mustFirst(t, "alice@example.com")
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.rows("location"); got != "c1/2 c3/1 c4/1" {
		t.Errorf("rows after Close %q", got)
	}

	// a new module on the same database loads them
	m2 := mustNew(t, e.cfg, e.clk)
	d2 := m2.Domain(DefaultDomain)
	if got := strings.Join(d2.AORs(), ","); got != "alice@example.com,bob@example.com,carol@example.com" {
		t.Fatalf("reloaded AoRs %s", got)
	}
	got := d2.mustFirst(t, "alice@example.com")
	want := before
	want.seq, want.ConnID, want.dbState = got.seq, 0, dbSynced
	if got != want {
		t.Errorf("reloaded\n got  %+v\n want %+v", got, want)
	}
	// loaded contacts are clean: nothing to write until they change
	e2 := &wbEnv{t: t, cfg: e.cfg, clk: e.clk, m: m2, sdb: e.sdb}
	if n := e2.flush(); n != 0 {
		t.Errorf("flush after load wrote %d", n)
	}
	e2.set("bob@example.com", "c3", func(c *Contact) { c.CSeq = 9 })
	if n := e2.flush(); n != 1 || e.rows("location") != "c1/2 c3/9 c4/1" {
		t.Errorf("update after restart: %d writes, rows %q", n, e.rows("location"))
	}
}

func TestWriteBackFlushError(t *testing.T) {
	e := newWB(t)
	insert(t, e.dom(), "a@x", e.contact("c1", 1), e.contact("c2", 1))
	e.flush()
	// pending: an insert, an update and a delete
	insert(t, e.dom(), "a@x", e.contact("c3", 1))
	e.set("a@x", "c2", func(c *Contact) { c.CSeq = 2 })
	e.del("a@x", "c1")

	// the table goes away: the flush fails and keeps everything
	if _, err := e.sdb.Exec("ALTER TABLE location RENAME TO location_away"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Flush(); err == nil {
		t.Fatal("flush without a table succeeded")
	}
	e.m.Timer() // fails too (logged)
	// changed during the outage: still one write for it
	e.set("a@x", "c3", func(c *Contact) { c.CSeq = 3 })
	if got := e.rows("location_away"); got != "c1/1 c2/1" {
		t.Errorf("a failed flush wrote: %q", got)
	}

	if _, err := e.sdb.Exec("ALTER TABLE location_away RENAME TO location"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := e.rows("location"); got != "c2/2 c3/3" {
		t.Errorf("rows after recovery %q", got)
	}
	if n := e.flush(); n != 0 {
		t.Errorf("left %d pending", n)
	}
}

func TestWriteBackBadDomain(t *testing.T) {
	e := newWB(t)
	// names that cannot be tables are refused, and block nothing
	if err := e.m.Domain("bad name;").Update("x", func(r *Record) error { _, err := r.Insert(e.contact("bad", 1)); return err }); err == nil {
		t.Error("insert into a bad table name succeeded")
	}
	e.m.Domain("bad name;").Remove("x")
	insert(t, e.m.Domain("location_pbx"), "y@x", e.contact("pbx", 1))
	if n := e.flush(); n != 1 || e.rows("location_pbx") != "pbx/1" {
		t.Errorf("flush %d, location_pbx %q", n, e.rows("location_pbx"))
	}
}

// TestWriteBackConcurrent saves, refreshes and deletes from several
// goroutines while the timer flushes; after the last flush the table holds
// exactly the contacts in memory, with their last CSeq.
func TestWriteBackConcurrent(t *testing.T) {
	e := newWB(t)
	d := e.dom()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flushed := make(chan struct{})
	var flushes atomic.Int64
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				e.m.Timer()
				flushes.Add(1)
			}
		}
	}()
	// the workers go on until the timer has flushed a number of times
	// while they write
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 300 || flushes.Load() < 30; i++ {
				aor := fmt.Sprintf("u%d@x", i%7)
				d.Update(aor, func(r *Record) error {
					cs := r.Contacts()
					switch {
					case len(cs) > 2 && i%3 == 0:
						return r.Delete(cs[i%len(cs)])
					case len(cs) > 0 && i%2 == 0:
						c := cs[i%len(cs)]
						n := *c
						n.CSeq++
						if i%10 == 0 {
							n.Flags ^= FlagMem
						}
						return r.Set(c, n)
					}
					_, err := r.Insert(e.contact(fmt.Sprintf("w%d-%d", w, i), 1))
					return err
				})
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	<-flushed
	if err := e.m.Flush(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, aor := range d.AORs() {
		cs, _ := d.Get(aor)
		for _, c := range cs {
			if c.Flags&FlagMem == 0 {
				want = append(want, fmt.Sprintf("%s/%d", c.CallID, c.CSeq))
			}
		}
	}
	sort.Strings(want)
	if got := e.rows("location"); got != strings.Join(want, " ") {
		t.Errorf("table and memory differ\n table  %s\n memory %s", got, strings.Join(want, " "))
	}
}
