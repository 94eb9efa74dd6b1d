package db

import (
	"path/filepath"
	"testing"
	"time"
)

// TestSQLitePragmas checks that every connection of a SQLite file has WAL,
// synchronous=NORMAL and the busy timeout.
func TestSQLitePragmas(t *testing.T) {
	d, err := Open("sqlite://" + filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := 0; i < 3; i++ { // hold several connections at once: each runs the pragmas
		tx, err := d.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var mode string
		var sync, busy int
		if err := tx.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 1 || busy != 5000 {
			t.Fatalf("conn %d: journal_mode=%s synchronous=%d busy_timeout=%d, want wal 1 (NORMAL) 5000", i, mode, sync, busy)
		}
	}
}

func TestSQLiteMemoryAndErrors(t *testing.T) {
	d, err := Open("sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.HasTable("version"); err != nil || !ok {
		t.Fatalf("version table: %v %v", ok, err)
	}
	for _, u := range []string{"nope", "sqlite://", "oracle://x"} {
		if _, err := Open(u); err == nil {
			t.Errorf("Open(%q): no error", u)
		}
	}
	if got := (&DB{Dialect: Postgres}).Rebind("a = ? AND b = ?"); got != "a = $1 AND b = $2" {
		t.Errorf("Rebind: %q", got)
	}
}

// SQLite's queries run without a cancellable context (no watcher
// goroutines per query); a server's are bounded by the timeout.
func TestContext(t *testing.T) {
	for _, tc := range []struct {
		dialect  Dialect
		deadline bool
	}{{SQLite, false}, {Postgres, true}, {MySQL, true}} {
		ctx, cancel := (&DB{Dialect: tc.dialect}).Context(time.Second)
		_, has := ctx.Deadline()
		if has != tc.deadline || (ctx.Done() != nil) != tc.deadline {
			t.Errorf("%s: deadline %v, Done %v; want %v", tc.dialect, has, ctx.Done() != nil, tc.deadline)
		}
		cancel()
	}
}
