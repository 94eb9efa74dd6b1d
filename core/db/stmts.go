package db

import (
	"context"
	"database/sql"
	"sync"
)

// Stmts is a bounded cache of prepared statements on one database, by
// query text, for the queries a module runs per message (auth_db's
// credentials, acc's INSERTs). Table names come from the configuration
// or the script, so the number of distinct queries is bounded by Max:
// past it, and after Close, Get returns no statement and the caller runs
// the query unprepared.
type Stmts struct {
	Max int

	mu     sync.Mutex
	db     *DB
	stmts  map[string]*sql.Stmt
	closed bool
}

// Get returns the prepared statement of q on d, preparing it the first
// time (so a missing table or column is reported then), or nil when the
// cache is full or closed. A different d than before (the module opened
// its database again) drops the statements of the old one.
func (c *Stmts) Get(ctx context.Context, d *DB, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil
	}
	if c.db != d {
		c.closeAll()
		c.db = d
	}
	if st := c.stmts[q]; st != nil {
		return st, nil
	}
	if len(c.stmts) >= c.Max {
		return nil, nil
	}
	st, err := d.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[q] = st
	return st, nil
}

// Len is the number of cached statements.
func (c *Stmts) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stmts)
}

// Reset closes the cached statements (the module closed its database);
// Get prepares again. The caller makes sure none of them is in use.
func (c *Stmts) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeAll()
	c.db = nil
}

// Close closes the cached statements; Get returns nil from then on. The
// caller makes sure none of them is in use.
func (c *Stmts) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeAll()
	c.closed = true
}

func (c *Stmts) closeAll() {
	for _, st := range c.stmts {
		_ = st.Close()
	}
	c.stmts = nil
}
