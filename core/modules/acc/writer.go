package acc

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kemigo/kemigo/core/db"
	"github.com/rs/zerolog"
)

// Database records are written by a background writer, not on the worker
// that accounts them (an INSERT and its commit per transaction on the
// Python worker thread cost ~22% of the proxy's CPU on authenticated calls
// and blocked the worker during the commit):
//
//   - the worker builds the row (core values and db_extra pseudo-variables
//     are read while the message is alive), checks the table once by
//     preparing its INSERT (cached per table), and puts the row on a
//     bounded queue;
//   - one writer goroutine per module drains the queue and writes what is
//     pending in batches of up to maxBatch rows, one transaction per batch,
//     with the cached INSERT rebound to the transaction (Tx.Stmt);
//   - when the queue is full the row is written synchronously by the
//     caller (no record is dropped) and Stats().QueueFull counts it;
//   - a failed batch is rolled back and its rows are written one by one,
//     so one bad row loses only itself; a row that cannot be written is
//     logged with its values (DB errors show in the log, not in the KEMI
//     return code, once the row has been queued);
//   - Close writes everything queued before it returns; Flush waits until
//     what was queued before the call is written.

const (
	// DefaultQueueSize is the number of rows that may wait for the writer.
	DefaultQueueSize = 4096
	// maxBatch is the largest number of rows written in one transaction.
	maxBatch = 256
	// batchLinger is how long the writer waits after a row for more to
	// join its transaction: at a few hundred calls per second rows come
	// one at a time, and a commit per row cost as much again as the row
	// (profile of the call benchmark at 300 calls/s). Flush ends it.
	batchLinger = 20 * time.Millisecond
	// maxStmts bounds the prepared INSERTs cached per module (table names
	// with pseudo-variables may produce many); rows of further tables are
	// written with a plain Exec (db.Stmts).
	maxStmts = 64
)

// WithQueueSize sets how many rows may wait for the background writer
// (DefaultQueueSize). 0 writes every row synchronously on the caller, as
// before the writer existed (its error is then returned to the caller).
func WithQueueSize(n int) Option {
	return func(m *Module) {
		if n < 0 {
			n = 0
		}
		m.queueSize = n
	}
}

// Stats counts the database rows.
type Stats struct {
	Queued    uint64 // rows handed to the writer
	Written   uint64 // rows written (by the writer or synchronously)
	Failed    uint64 // rows that could not be written (logged)
	QueueFull uint64 // rows written synchronously because the queue was full
}

// Stats returns the row counters.
func (m *Module) Stats() Stats {
	return Stats{Queued: m.nQueued.Load(), Written: m.nWritten.Load(),
		Failed: m.nFailed.Load(), QueueFull: m.nFull.Load()}
}

// writer is the background writer state of a Module.
type writer struct {
	queueSize int
	q         chan job
	qmu       sync.RWMutex // held for reading while sending; Close takes it to close q
	closed    atomic.Bool  // set under qmu
	started   atomic.Bool
	startOnce sync.Once
	done      chan struct{}

	stmts db.Stmts // the prepared INSERTs, by query
	// queries is the INSERT text of the configured tables (acc,
	// missed_calls), built once in New: a row of another table (a name
	// with pseudo-variables) builds its own.
	queries map[string]string

	nQueued, nWritten, nFailed, nFull atomic.Uint64
}

// insertStmt is the INSERT of one table; stmt is nil when it is not cached.
type insertStmt struct {
	table string
	query string
	stmt  *sql.Stmt
}

// dbRow is one row to write: its values are plain Go values, read from
// the message by the caller.
type dbRow struct {
	ins  insertStmt
	args []any
	log  zerolog.Logger // the caller's, for a row that cannot be written
}

// job is a row, or a Flush marker (done closed once everything queued
// before it is written).
type job struct {
	row  *dbRow
	done chan struct{}
}

// insertFor returns the INSERT of table, prepared the first time (so a
// missing table or column is reported to the caller) while the cache has
// room and the module is open.
func (m *Module) insertFor(table string) (insertStmt, error) {
	q, ok := m.queries[table]
	if !ok {
		q = m.insertQuery(table)
	}
	st, err := m.stmts.Get(context.Background(), m.db, q)
	if err != nil {
		return insertStmt{}, err
	}
	return insertStmt{table: table, query: q, stmt: st}, nil
}

// insertQuery is the INSERT statement of table (core columns, then the
// db_extra columns), with the dialect's placeholders.
func (m *Module) insertQuery(table string) string {
	n := len(m.coreCols) + len(m.dbExtra)
	cols := make([]string, 0, n)
	for _, col := range m.coreCols {
		cols = append(cols, m.quote(col))
	}
	for _, e := range m.dbExtra {
		cols = append(cols, m.quote(e.name))
	}
	q := "INSERT INTO " + m.quote(table) + " (" + strings.Join(cols, ",") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
	return m.db.Rebind(q)
}

// submit hands the row to the writer, or writes it now: with no queue
// (WithQueueSize(0)), after Close, or when the queue is full. The read
// lock keeps Close from closing the statements under a synchronous insert.
func (m *Module) submit(r *dbRow) error {
	m.qmu.RLock()
	defer m.qmu.RUnlock()
	if m.closed.Load() {
		return m.insert(r, false) // the cached statements are closed
	}
	if m.queueSize == 0 {
		return m.insert(r, true)
	}
	m.startOnce.Do(m.startWriter)
	select {
	case m.q <- job{row: r}:
		m.nQueued.Add(1)
		return nil
	default:
	}
	m.nFull.Add(1)
	return m.insert(r, true)
}

func (m *Module) startWriter() {
	m.q = make(chan job, m.queueSize)
	m.done = make(chan struct{})
	m.started.Store(true)
	go m.writeLoop()
}

// insert writes one row in its own statement (autocommit), with the
// cached prepared statement when useStmt.
func (m *Module) insert(r *dbRow, useStmt bool) error {
	var err error
	if useStmt && r.ins.stmt != nil {
		_, err = r.ins.stmt.Exec(r.args...)
	} else {
		_, err = m.db.Exec(r.ins.query, r.args...)
	}
	if err != nil {
		m.nFailed.Add(1)
		return fmt.Errorf("acc: failed to insert into database: %w", err)
	}
	m.nWritten.Add(1)
	return nil
}

// writeLoop is the writer goroutine: it takes what is queued, up to
// maxBatch rows, writes it in one transaction, then releases the Flush
// markers it met.
func (m *Module) writeLoop() {
	defer close(m.done)
	batch := make([]*dbRow, 0, maxBatch)
	var flushes []chan struct{}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	add := func(j job) {
		if j.row != nil {
			batch = append(batch, j.row)
		} else {
			flushes = append(flushes, j.done)
		}
	}
	for j := range m.q {
		batch, flushes = batch[:0], flushes[:0]
		add(j)
		if len(flushes) == 0 {
			linger.Reset(batchLinger)
		wait:
			for len(batch) < maxBatch && len(flushes) == 0 {
				select {
				case j, ok := <-m.q:
					if !ok {
						break wait
					}
					add(j)
				case <-linger.C:
					break wait
				}
			}
			linger.Stop()
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case j, ok := <-m.q:
				if !ok {
					break gather
				}
				add(j)
			default:
				break gather
			}
		}
		m.writeBatch(batch)
		for _, d := range flushes {
			close(d)
		}
		clear(batch) // drop the references to the written rows
	}
}

// writeBatch writes rows in one transaction. If anything fails, the
// transaction is rolled back and the rows are written one by one, so
// that a bad row loses only itself (PostgreSQL aborts the whole
// transaction on the first error). A failed COMMIT is retried row by row
// too: no row is dropped, at the risk of a duplicate if the COMMIT did
// succeed on a server whose answer was lost.
func (m *Module) writeBatch(rows []*dbRow) {
	switch len(rows) {
	case 0:
		return
	case 1:
		m.insertLogged(rows[0])
		return
	}
	if err := m.writeTx(rows); err != nil {
		for _, r := range rows {
			m.insertLogged(r)
		}
		return
	}
	m.nWritten.Add(uint64(len(rows)))
}

func (m *Module) writeTx(rows []*dbRow) error {
	tx, err := m.db.Begin()
	if err != nil {
		return err
	}
	var bound map[*sql.Stmt]*sql.Stmt
	for _, r := range rows {
		if r.ins.stmt == nil {
			if _, err := tx.Exec(r.ins.query, r.args...); err != nil {
				tx.Rollback()
				return err
			}
			continue
		}
		st := bound[r.ins.stmt]
		if st == nil {
			if bound == nil {
				bound = make(map[*sql.Stmt]*sql.Stmt, 2)
			}
			st = tx.Stmt(r.ins.stmt) // closed with the transaction
			bound[r.ins.stmt] = st
		}
		if _, err := st.Exec(r.args...); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// insertLogged writes one row for the writer and logs it when it fails.
func (m *Module) insertLogged(r *dbRow) {
	if err := m.insert(r, true); err != nil {
		m.logRow(r, err)
	}
}

// logRow logs a row that could not be written, with its values.
func (m *Module) logRow(r *dbRow, err error) {
	d := zerolog.Dict()
	for i, v := range r.args {
		name := ""
		if i < len(m.coreCols) {
			name = m.coreCols[i]
		} else if j := i - len(m.coreCols); j < len(m.dbExtra) {
			name = m.dbExtra[j].name
		}
		if v == nil {
			d = d.Interface(name, nil)
		} else {
			d = d.Str(name, fmt.Sprint(v))
		}
	}
	r.log.Error().Err(err).Str("table", r.ins.table).Dict("row", d).Msg("acc: record not stored")
}

// Flush waits until every row queued before the call is written (or has
// failed and been logged). Tests call it before reading the tables.
func (m *Module) Flush() {
	if !m.started.Load() {
		return // nothing was ever queued
	}
	m.qmu.RLock()
	if m.closed.Load() {
		m.qmu.RUnlock()
		return // Close wrote everything
	}
	done := make(chan struct{})
	m.q <- job{done: done} // the writer is draining: this does not block long
	m.qmu.RUnlock()
	<-done
}

// closeWriter stops taking rows, writes everything queued, and closes the
// cached statements. Rows accounted after it are written synchronously
// with plain Execs.
func (m *Module) closeWriter() {
	m.qmu.Lock()
	if m.closed.Load() {
		m.qmu.Unlock()
		return
	}
	m.closed.Store(true)
	started := m.started.Load()
	if started {
		close(m.q)
	}
	m.qmu.Unlock()
	if started {
		<-m.done
	}
	m.qmu.Lock() // no synchronous insert is using a statement
	m.stmts.Close()
	m.qmu.Unlock()
}
