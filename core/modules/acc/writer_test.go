package acc

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/rs/zerolog"
)

// stallWriter creates the queue without its goroutine, so that rows stay
// queued until startStalled; the tests see exactly what is queued, what
// is written synchronously, and what goes in one batch.
func stallWriter(m *Module) {
	m.startOnce.Do(func() {
		m.q = make(chan job, m.queueSize)
		m.done = make(chan struct{})
		m.started.Store(true)
	})
}

func startStalled(m *Module) { go m.writeLoop() }

// count reads a table's row count without waiting for the writer.
func (e *env) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// reasons returns the sip_reason column of the rows, sorted.
func reasonsOf(rows []string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, strings.Split(r, "|")[5])
	}
	sort.Strings(out)
	return out
}

// createUnique makes table acc_u, acc's columns with a unique sip_reason.
func createUnique(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.db.Exec("CREATE TABLE acc_u (id INTEGER PRIMARY KEY NOT NULL, method TEXT, from_tag TEXT, to_tag TEXT, " +
		"callid TEXT, sip_code TEXT, sip_reason TEXT UNIQUE, time TEXT)"); err != nil {
		t.Fatal(err)
	}
}

func TestQueueFullWritesSynchronously(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	e := setup(t, cfg, true, WithQueueSize(2))
	e.c.Msg = request("INVITE", "")
	stallWriter(e.m)
	for i := 0; i < 5; i++ {
		if got := call(t, e.m, e.c, "acc_db_request", fmt.Sprintf("200 r%d", i), "acc"); got != 1 {
			t.Fatalf("acc_db_request %d = %d", i, got)
		}
	}
	// two rows wait in the queue; the other three were written by the caller
	if n := e.count(t, "acc"); n != 3 {
		t.Fatalf("%d rows written synchronously, want 3", n)
	}
	if st := e.m.Stats(); st != (Stats{Queued: 2, Written: 3, QueueFull: 3}) {
		t.Fatalf("stats %+v", st)
	}
	startStalled(e.m)
	got := reasonsOf(e.rows(t, "acc"))
	if strings.Join(got, ",") != "r0,r1,r2,r3,r4" {
		t.Fatalf("rows %q", got)
	}
	if st := e.m.Stats(); st.Written != 5 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBatchWithBadRow(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	e := setup(t, cfg, true)
	createUnique(t, e)
	e.c.Msg = request("INVITE", "")
	stallWriter(e.m)
	for _, c := range []string{"200 a", "200 b", "200 a", "200 c"} {
		// queued: the duplicate is only found by the writer
		if got := call(t, e.m, e.c, "acc_db_request", c, "acc_u"); got != 1 {
			t.Fatalf("acc_db_request %q = %d", c, got)
		}
	}
	if n := e.count(t, "acc_u"); n != 0 {
		t.Fatalf("%d rows before the writer ran", n)
	}
	startStalled(e.m) // the four rows are one batch: it fails, then each row is written alone
	got := reasonsOf(e.rows(t, "acc_u"))
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("rows %q", got)
	}
	if st := e.m.Stats(); st.Written != 3 || st.Failed != 1 || st.Queued != 4 {
		t.Fatalf("stats %+v", st)
	}
	var found bool
	sc := bufio.NewScanner(bytes.NewReader(e.log.Bytes()))
	for sc.Scan() {
		var ev struct {
			Level   string
			Message string
			Table   string
			Error   string
			Row     map[string]any
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Message == "acc: record not stored" {
			found = true
			if ev.Level != "error" || ev.Table != "acc_u" || ev.Row["sip_reason"] != "a" || ev.Row["callid"] != "c1@192.0.2.10" ||
				!strings.Contains(ev.Error, "UNIQUE") {
				t.Errorf("log line %s", sc.Text())
			}
		}
	}
	if !found {
		t.Fatalf("failed row not logged: %s", e.log.String())
	}
}

func TestSynchronousMode(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	e := setup(t, cfg, true, WithQueueSize(0))
	createUnique(t, e)
	e.c.Msg = request("INVITE", "")
	if got := call(t, e.m, e.c, "acc_db_request", "200 a", "acc_u"); got != 1 {
		t.Fatalf("first = %d", got)
	}
	if n := e.count(t, "acc_u"); n != 1 {
		t.Fatalf("%d rows right after the call", n)
	}
	// synchronous: the insert error is the return code
	if got := call(t, e.m, e.c, "acc_db_request", "200 a", "acc_u"); got != -1 {
		t.Fatalf("duplicate = %d, want -1", got)
	}
	if e.m.started.Load() {
		t.Fatal("writer started without a queue")
	}
	e.m.Flush() // no-op
	if st := e.m.Stats(); st != (Stats{Written: 1, Failed: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestUncachedStatements(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	e := setup(t, cfg, true)
	for i := 0; i < maxStmts; i++ { // the cache is full: acc's INSERT is not prepared
		if _, err := e.m.stmts.Get(context.Background(), e.m.db, fmt.Sprintf("SELECT %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	e.c.Msg = request("INVITE", "")
	stallWriter(e.m)
	for _, c := range []string{"200 a", "200 b"} {
		if got := call(t, e.m, e.c, "acc_db_request", c, "acc"); got != 1 {
			t.Fatalf("acc_db_request = %d", got)
		}
	}
	startStalled(e.m)
	if got := reasonsOf(e.rows(t, "acc")); strings.Join(got, ",") != "a,b" {
		t.Fatalf("rows %q", got)
	}
	if n := e.m.stmts.Len(); n != maxStmts {
		t.Fatalf("%d statements cached, want the bound %d", n, maxStmts)
	}
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCloseSharedDB: workers account rows while Close runs; a
// row is either queued (written by Close) or, after Close, written
// synchronously into the shared database: every 1 returned is a row.
func TestConcurrentCloseSharedDB(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	cfg.DBExtra = "src_user=$fU"
	e := setup(t, cfg, true, WithQueueSize(16))
	if err := e.m.EnsureExtraColumns(); err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 150
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &kemi.Ctx{Msg: request("INVITE", ""), Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
			n := 0
			for i := 0; i < each; i++ {
				if call(t, e.m, c, "acc_db_request", "200 OK", "acc") == 1 {
					n++
				}
				if i%50 == 0 {
					e.m.Flush()
				}
			}
			mu.Lock()
			ok += n
			mu.Unlock()
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ok != workers*each {
		t.Errorf("%d calls returned 1, want %d", ok, workers*each)
	}
	if n := e.count(t, "acc"); n != ok {
		t.Fatalf("%d rows, %d calls returned 1", n, ok)
	}
	if err := e.m.Close(); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if st := e.m.Stats(); st.Failed != 0 || st.Written != uint64(ok) {
		t.Fatalf("stats %+v", st)
	}
}

// BenchmarkAccDB accounts one answered INVITE per op into a SQLite file
// (db_flag, two db_extra columns), written synchronously on the caller
// (queue 0, the old behaviour) or queued for the background writer.
//
// ns/op is the wall time per record, the writing included (the queued
// cases Flush every burst of 1024 records, inside the timer); caller-ns/op
// is what the accounting worker spends per record (the OnFinal call
// alone); queue-full/op is the share of records the caller had to write
// itself because the queue was full ("queued-flood" never flushes, so the
// caller outruns the writer and falls back to synchronous writes).
// "-full" runs with SQLite's default synchronous=FULL (core/db's DSN
// before synchronous=NORMAL), the others with core/db's DSN.
func BenchmarkAccDB(b *testing.B) {
	for _, bc := range []struct {
		name  string
		queue int
		burst int // Flush every burst records (0: never)
		full  bool
	}{
		{"sync-full", 0, 0, true},
		{"sync", 0, 0, false},
		{"queued-full", DefaultQueueSize, 1024, true},
		{"queued", DefaultQueueSize, 1024, false},
		{"queued-flood", DefaultQueueSize, 0, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "acc.db")
			d, err := db.Open("sqlite://" + path)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			if err := d.Init(); err != nil {
				b.Fatal(err)
			}
			if bc.full {
				// every connection of the pool gets FULL, as with the old DSN
				d.Close()
				if d, err = openFull(path); err != nil {
					b.Fatal(err)
				}
				defer d.Close()
			}
			cfg := DefaultConfig()
			cfg.DBFlag = 1
			cfg.DBExtra = "src_user=$fU;src_ip=$si"
			cfg.DBURL = d.URL
			m, err := New(cfg, WithDB(d), WithQueueSize(bc.queue))
			if err != nil {
				b.Fatal(err)
			}
			if err := m.EnsureExtraColumns(); err != nil {
				b.Fatal(err)
			}
			req := request("INVITE", "")
			c := &kemi.Ctx{Msg: req, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
			b.ReportAllocs()
			b.ResetTimer()
			var caller time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				m.OnFinal(c, req, 1<<1, 200, "OK", "b2")
				caller += time.Since(t0)
				if bc.burst > 0 && (i+1)%bc.burst == 0 {
					m.Flush()
				}
			}
			m.Flush()
			b.StopTimer()
			st := m.Stats()
			b.ReportMetric(float64(caller.Nanoseconds())/float64(b.N), "caller-ns/op")
			b.ReportMetric(float64(st.QueueFull)/float64(b.N), "queue-full/op")
			if st.Written != uint64(b.N) || st.Failed != 0 {
				b.Fatalf("stats %+v, N %d", st, b.N)
			}
			m.Close()
		})
	}
}

// openFull opens a SQLite file as core/db did before synchronous=NORMAL.
func openFull(path string) (*db.DB, error) {
	s, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	return &db.DB{DB: s, Dialect: db.SQLite, URL: "sqlite://" + path}, s.Ping()
}
