package db

import (
	"path/filepath"
	"testing"
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
