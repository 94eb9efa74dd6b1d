package db

import (
	"context"
	"path/filepath"
	"testing"
)

func TestStmts(t *testing.T) {
	open := func() *DB {
		d, err := Open("sqlite://" + filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if _, err := d.Exec("CREATE TABLE t (a INTEGER)"); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ctx := context.Background()
	d := open()
	c := &Stmts{Max: 2}
	q1, q2, q3 := "SELECT a FROM t", "SELECT a FROM t WHERE a = ?", "SELECT count(*) FROM t"
	s1, err := c.Get(ctx, d, q1)
	if err != nil || s1 == nil {
		t.Fatalf("first Get: %v %v", s1, err)
	}
	if again, _ := c.Get(ctx, d, q1); again != s1 {
		t.Error("the same query was prepared twice")
	}
	if s2, _ := c.Get(ctx, d, q2); s2 == nil {
		t.Error("second query not prepared")
	}
	if s3, err := c.Get(ctx, d, q3); s3 != nil || err != nil {
		t.Errorf("past Max: %v %v, want no statement and no error", s3, err)
	}
	if _, err := (&Stmts{Max: 2}).Get(ctx, d, "SELECT nope FROM t"); err == nil {
		t.Error("a bad query prepared without error")
	}
	// another database: the old statements are closed and dropped
	d2 := open()
	if s, _ := c.Get(ctx, d2, q3); s == nil || c.Len() != 1 {
		t.Errorf("after a new database: %v, %d cached", s, c.Len())
	}
	if _, err := s1.Query(); err == nil {
		t.Error("a statement of the old database still works")
	}
	c.Close()
	if s, err := c.Get(ctx, d2, q1); s != nil || err != nil || c.Len() != 0 {
		t.Errorf("after Close: %v %v, %d cached", s, err, c.Len())
	}
}

func TestStmtsReset(t *testing.T) {
	d, err := Open("sqlite://" + filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := &Stmts{Max: 4}
	s1, _ := c.Get(context.Background(), d, "SELECT 1")
	c.Reset()
	if _, err := s1.Query(); err == nil {
		t.Error("statement still open after Reset")
	}
	if s2, err := c.Get(context.Background(), d, "SELECT 1"); s2 == nil || err != nil || s2 == s1 {
		t.Errorf("after Reset: %v %v, want a new statement", s2, err)
	}
}
