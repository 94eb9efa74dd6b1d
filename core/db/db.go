// Package db opens the databases named by Kamailio-style db_url values
// (sqlite:///path, postgres://..., mysql://...) and creates Kamailio's
// tables with Kamailio's schemas, so an existing Kamailio database works
// as it is. Modules register the tables they use; `kemigo db init`
// creates every registered table.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // mysql:// and MariaDB
	_ "github.com/jackc/pgx/v5/stdlib" // postgres://
	_ "modernc.org/sqlite"             // sqlite:// (pure Go: no C library to install)
)

// Dialect is the SQL flavour of a connection.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// DB is an open database.
type DB struct {
	*sql.DB
	Dialect Dialect
	URL     string
}

// Context is the context of one query or transaction: bounded by
// timeout on a server's database, whose connection may hang; not bounded
// on SQLite, where the busy timeout bounds the wait. A context that can
// be cancelled makes database/sql and the SQLite driver start two
// goroutines per query to watch it (a third of REGISTER's scheduling
// work in the benchmark), so SQLite's queries run without one.
func (d *DB) Context(timeout time.Duration) (context.Context, context.CancelFunc) {
	if d.Dialect == SQLite {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), timeout)
}

// DefaultURL is the embedded default: a SQLite file beside the process.
const DefaultURL = "sqlite:///var/lib/kemigo/kemigo.db"

// Open opens a db_url. Forms:
//
//	sqlite:///abs/path.db   sqlite://relative.db   sqlite://:memory:
//	postgres://user:pass@host:port/dbname   (also postgresql://)
//	mysql://user:pass@host:port/dbname
//
// A SQLite file is opened in WAL mode with synchronous=NORMAL and a 5 s
// busy timeout: commits do not fsync, so a crash of the process loses
// nothing, but an OS crash or power loss may lose the last commits.
func Open(dbURL string) (*DB, error) {
	scheme, rest, ok := strings.Cut(dbURL, "://")
	if !ok {
		return nil, fmt.Errorf("db_url %q: want scheme://...", dbURL)
	}
	var d *DB
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3", "db_sqlite":
		path := rest
		if path == "" {
			return nil, fmt.Errorf("db_url %q: no file", dbURL)
		}
		// WAL with synchronous=NORMAL: a commit appends to the WAL
		// without an fsync (the WAL is synced at checkpoints), instead
		// of SQLite's default FULL, which fsyncs every commit. The
		// database stays consistent and durable across a crash of the
		// process; only an OS crash or power loss may lose the last
		// commits before the next checkpoint.
		dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		if path == ":memory:" {
			dsn = "file::memory:?cache=shared"
		}
		s, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		if path == ":memory:" {
			s.SetMaxOpenConns(1)
		}
		d = &DB{DB: s, Dialect: SQLite}
	case "postgres", "postgresql", "pgsql":
		s, err := sql.Open("pgx", "postgres://"+rest)
		if err != nil {
			return nil, err
		}
		d = &DB{DB: s, Dialect: Postgres}
	case "mysql", "mariadb":
		u, err := url.Parse("mysql://" + rest)
		if err != nil {
			return nil, fmt.Errorf("db_url %q: %w", dbURL, err)
		}
		host := u.Host
		if !strings.Contains(host, ":") {
			host += ":3306"
		}
		auth := u.User.Username()
		if pw, ok := u.User.Password(); ok {
			auth += ":" + pw
		}
		dsn := fmt.Sprintf("%s@tcp(%s)%s?parseTime=true", auth, host, u.Path)
		s, err := sql.Open("mysql", dsn)
		if err != nil {
			return nil, err
		}
		d = &DB{DB: s, Dialect: MySQL}
	default:
		return nil, fmt.Errorf("db_url %q: unsupported scheme %q (sqlite, postgres, mysql)", dbURL, scheme)
	}
	d.URL = dbURL
	if err := d.Ping(); err != nil {
		d.Close()
		return nil, fmt.Errorf("db_url %s: %w", redact(dbURL), err)
	}
	return d, nil
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil {
		if _, ok := p.User.Password(); ok {
			p.User = url.UserPassword(p.User.Username(), "xxx")
			return p.String()
		}
	}
	return u
}

// Rebind turns "?" placeholders into the dialect's ($1, $2 for PostgreSQL).
func (d *DB) Rebind(q string) string {
	if d.Dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Table is one Kamailio table: its name, version (Kamailio's `version`
// table row) and CREATE statements per dialect (indexes included).
type Table struct {
	Name    string
	Version int
	Create  map[Dialect][]string
}

var (
	regMu  sync.Mutex
	tables = map[string]Table{}
)

// Register adds a table definition; modules call it from init().
func Register(t Table) {
	regMu.Lock()
	defer regMu.Unlock()
	tables[t.Name] = t
}

// Tables returns the registered tables sorted by name.
func Tables() []Table {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Table, 0, len(tables))
	for _, t := range tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Init creates the version table and every registered table that does not
// exist yet, recording each table's version as kamdbctl does.
func (d *DB) Init() error {
	for _, stmt := range versionTable.Create[d.Dialect] {
		if _, err := d.Exec(stmt); err != nil {
			return fmt.Errorf("create version: %w", err)
		}
	}
	for _, t := range Tables() {
		exists, err := d.HasTable(t.Name)
		if err != nil {
			return err
		}
		if exists {
			continue
		}
		stmts := t.Create[d.Dialect]
		if len(stmts) == 0 {
			return fmt.Errorf("table %s has no schema for %s", t.Name, d.Dialect)
		}
		for _, stmt := range stmts {
			if _, err := d.Exec(stmt); err != nil {
				return fmt.Errorf("create %s: %w", t.Name, err)
			}
		}
		if _, err := d.Exec(d.Rebind("DELETE FROM version WHERE table_name = ?"), t.Name); err != nil {
			return err
		}
		if _, err := d.Exec(d.Rebind("INSERT INTO version (table_name, table_version) VALUES (?, ?)"), t.Name, t.Version); err != nil {
			return err
		}
	}
	return nil
}

// HasTable reports whether a table exists.
func (d *DB) HasTable(name string) (bool, error) {
	var q string
	switch d.Dialect {
	case SQLite:
		q = "SELECT count(*) FROM sqlite_master WHERE type='table' AND name = ?"
	case Postgres:
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
	default:
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = database() AND table_name = ?"
	}
	var n int
	if err := d.QueryRow(d.Rebind(q), name).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// TableVersion reads a table's version row (0 when absent).
func (d *DB) TableVersion(name string) (int, error) {
	var v int
	err := d.QueryRow(d.Rebind("SELECT table_version FROM version WHERE table_name = ?"), name).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return v, err
}

// versionTable is Kamailio's version table (always created first).
var versionTable = Table{Name: "version", Create: map[Dialect][]string{
	SQLite:   {"CREATE TABLE IF NOT EXISTS version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_t_name_idx UNIQUE (table_name))"},
	Postgres: {"CREATE TABLE IF NOT EXISTS version (id SERIAL PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_t_name_idx UNIQUE (table_name))"},
	MySQL:    {"CREATE TABLE IF NOT EXISTS version (id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL, table_version INT UNSIGNED DEFAULT 0 NOT NULL, CONSTRAINT version_t_name_idx UNIQUE (table_name))"},
}}
