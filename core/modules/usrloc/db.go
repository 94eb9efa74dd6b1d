package usrloc

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kemigo/kemigo/core/db"
)

// LocationVersion is the version of Kamailio 5.6's location table.
const LocationVersion = 9

// Kamailio 5.6's location table (utils/kamctl/*/usrloc-create.sql).
var locationTable = db.Table{Name: "location", Version: LocationVersion, Create: map[db.Dialect][]string{
	db.SQLite: {
		`CREATE TABLE location (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
)`,
		"CREATE INDEX location_account_contact_idx ON location (username, domain, contact)",
		"CREATE INDEX location_expires_idx ON location (expires)",
		"CREATE INDEX location_tcpcon_idx ON location (connection_id)",
		"CREATE INDEX location_connection_idx ON location (server_id, connection_id)",
	},
	db.Postgres: {
		`CREATE TABLE location (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
)`,
		"CREATE INDEX location_account_contact_idx ON location (username, domain, contact)",
		"CREATE INDEX location_expires_idx ON location (expires)",
		"CREATE INDEX location_tcpcon_idx ON location (connection_id)",
		"CREATE INDEX location_connection_idx ON location (server_id, connection_id)",
	},
	db.MySQL: {
		"CREATE TABLE `location` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `ruid` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `username` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `domain` VARCHAR(64) DEFAULT NULL,\n" +
			"    `contact` VARCHAR(512) DEFAULT '' NOT NULL,\n" +
			"    `received` VARCHAR(128) DEFAULT NULL,\n" +
			"    `path` VARCHAR(512) DEFAULT NULL,\n" +
			"    `expires` DATETIME DEFAULT '2030-05-28 21:32:15' NOT NULL,\n" +
			"    `q` FLOAT(10,2) DEFAULT 1.0 NOT NULL,\n" +
			"    `callid` VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,\n" +
			"    `cseq` INT(11) DEFAULT 1 NOT NULL,\n" +
			"    `last_modified` DATETIME DEFAULT '2000-01-01 00:00:01' NOT NULL,\n" +
			"    `flags` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `cflags` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `user_agent` VARCHAR(255) DEFAULT '' NOT NULL,\n" +
			"    `socket` VARCHAR(64) DEFAULT NULL,\n" +
			"    `methods` INT(11) DEFAULT NULL,\n" +
			"    `instance` VARCHAR(255) DEFAULT NULL,\n" +
			"    `reg_id` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `server_id` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `connection_id` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `keepalive` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `partition` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    CONSTRAINT ruid_idx UNIQUE (`ruid`)\n" +
			")",
		"CREATE INDEX account_contact_idx ON location (`username`, `domain`, `contact`)",
		"CREATE INDEX expires_idx ON location (`expires`)",
		"CREATE INDEX tcpcon_idx ON location (`connection_id`)",
		"CREATE INDEX connection_idx ON location (`server_id`, `connection_id`)",
	},
}}

// Kamailio 5.6's location_attrs table (created with location by kamdbctl;
// kemigo does not use it).
var locationAttrsTable = db.Table{Name: "location_attrs", Version: 1, Create: map[db.Dialect][]string{
	db.SQLite: {
		`CREATE TABLE location_attrs (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    aname VARCHAR(64) DEFAULT '' NOT NULL,
    atype INTEGER DEFAULT 0 NOT NULL,
    avalue VARCHAR(512) DEFAULT '' NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL
)`,
		"CREATE INDEX location_attrs_account_record_idx ON location_attrs (username, domain, ruid)",
		"CREATE INDEX location_attrs_last_modified_idx ON location_attrs (last_modified)",
	},
	db.Postgres: {
		`CREATE TABLE location_attrs (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    aname VARCHAR(64) DEFAULT '' NOT NULL,
    atype INTEGER DEFAULT 0 NOT NULL,
    avalue VARCHAR(512) DEFAULT '' NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL
)`,
		"CREATE INDEX location_attrs_account_record_idx ON location_attrs (username, domain, ruid)",
		"CREATE INDEX location_attrs_last_modified_idx ON location_attrs (last_modified)",
	},
	db.MySQL: {
		"CREATE TABLE `location_attrs` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `ruid` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `username` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `domain` VARCHAR(64) DEFAULT NULL,\n" +
			"    `aname` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `atype` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `avalue` VARCHAR(512) DEFAULT '' NOT NULL,\n" +
			"    `last_modified` DATETIME DEFAULT '2000-01-01 00:00:01' NOT NULL\n" +
			")",
		"CREATE INDEX account_record_idx ON location_attrs (`username`, `domain`, `ruid`)",
		"CREATE INDEX last_modified_idx ON location_attrs (`last_modified`)",
	},
}}

func init() {
	db.Register(locationTable)
	db.Register(locationAttrsTable)
}

// dbTime is Kamailio's DATETIME text (db_time2str): local time.
const dbTime = "2006-01-02 15:04:05"

func toDBTime(unix int64) string { return time.Unix(unix, 0).In(time.Local).Format(dbTime) }

// fromDBTime reads a DATETIME column the way every driver returns it
// (time.Time carrying the wall clock in UTC, or text) as local time, as
// Kamailio's db_str2time does.
func fromDBTime(v any) (int64, error) {
	switch x := v.(type) {
	case time.Time:
		t := time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), 0, time.Local)
		return t.Unix(), nil
	case []byte:
		return parseDBTime(string(x))
	case string:
		return parseDBTime(x)
	case int64:
		return x, nil
	case nil:
		return 0, fmt.Errorf("null time")
	}
	return 0, fmt.Errorf("unexpected time value %T", v)
}

func parseDBTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{dbTime, "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			if layout == "2006-01-02T15:04:05Z07:00" || layout == "2006-01-02 15:04:05Z07:00" {
				t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.Local)
			}
			return t.Unix(), nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("bad time %q", s)
}

// tableStmts returns the CREATE statements of the table of domain name
// (the location schema under another name for other domains).
func tableStmts(d db.Dialect, name string) []string {
	stmts := locationTable.Create[d]
	if name == locationTable.Name {
		return stmts
	}
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = strings.ReplaceAll(s, "location", name)
	}
	return out
}

// ensureTable creates the domain's table when missing (with its version
// row when the version table exists) and checks the version of an
// existing one.
func (m *Module) ensureTable(name string) error {
	if !validTable(name) {
		return fmt.Errorf("domain %q cannot be a table name", name)
	}
	d := m.db
	ok, err := d.HasTable(name)
	if err != nil {
		return err
	}
	if ok {
		v, err := d.TableVersion(name)
		if err == nil && v != 0 && v != LocationVersion {
			return fmt.Errorf("table %s has version %d, want %d", name, v, LocationVersion)
		}
		return nil
	}
	stmts := tableStmts(d.Dialect, name)
	if len(stmts) == 0 {
		return fmt.Errorf("no schema for %s", d.Dialect)
	}
	for _, s := range stmts {
		if _, err := d.Exec(s); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	if hv, err := d.HasTable("version"); err == nil && hv {
		d.Exec(d.Rebind("DELETE FROM version WHERE table_name = ?"), name)
		d.Exec(d.Rebind("INSERT INTO version (table_name, table_version) VALUES (?, ?)"), name, LocationVersion)
	}
	m.log.Info().Str("table", name).Msg("usrloc: created the location table")
	return nil
}

// loadDomain creates the table if needed and loads its rows (Kamailio's
// preload_udomain; TCP connection ids are not restored). With db_mode 2 a
// domain whose table cannot be created refuses changes (its statements
// would fail the flush of every domain).
func (m *Module) loadDomain(d *Domain) error {
	if err := m.ensureTable(d.name); err != nil {
		d.noDB = m.wb
		return err
	}
	rows, err := m.db.Query("SELECT username, domain, contact, received, path, expires, q, callid, cseq, " +
		"last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, server_id, keepalive, ruid FROM " + d.name)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			user, contact, callid                            string
			domain, received, path, ua, sock, inst, ruid     sql.NullString
			expires, lastMod                                 any
			q                                                sql.NullFloat64
			cseq, flags, cflags, regID, srvID, ka, methods64 sql.NullInt64
		)
		if err := rows.Scan(&user, &domain, &contact, &received, &path, &expires, &q, &callid, &cseq,
			&lastMod, &flags, &cflags, &ua, &sock, &methods64, &inst, &regID, &srvID, &ka, &ruid); err != nil {
			return err
		}
		if contact == "" || callid == "" {
			m.log.Error().Str("table", d.name).Str("aor", user).Msg("usrloc: skipping a row without contact or callid")
			continue
		}
		exp, err := fromDBTime(expires)
		if err != nil {
			m.log.Error().Err(err).Str("table", d.name).Msg("usrloc: skipping a row with a bad expires")
			continue
		}
		c := Contact{
			URI: contact, Received: received.String, Path: path.String, Expires: exp,
			Q: double2q(q.Float64), CallID: callid, CSeq: int(cseq.Int64),
			Flags: uint32(flags.Int64), CFlags: uint32(cflags.Int64), UserAgent: ua.String,
			Socket: sock.String, Methods: AllMethods, Instance: inst.String,
			RegID: uint32(regID.Int64), RUID: ruid.String, ServerID: int(srvID.Int64), Keepalive: int(ka.Int64),
		}
		if methods64.Valid {
			c.Methods = uint32(methods64.Int64)
		}
		if lastMod != nil {
			if t, err := fromDBTime(lastMod); err == nil {
				c.LastModified = t
			}
		}
		aor := user
		if m.UseDomain() && domain.Valid && domain.String != "" {
			aor = user + "@" + domain.String
		}
		d.Update(aor, func(r *Record) error {
			c.Domain, c.AOR = d.name, aor
			if c.RUID == "" {
				c.RUID = m.NewRUID()
			}
			nc := c
			nc.seq = m.seq.Add(1)
			r.contacts = append(r.contacts, &nc)
			r.sort()
			return nil
		})
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	m.log.Info().Str("table", d.name).Int("contacts", n).Msg("usrloc: loaded the location table")
	return nil
}

func q2double(q int) float64 {
	if q == QUnspecified {
		return -1
	}
	return float64(q) / 1000
}

func double2q(f float64) int {
	if f == -1 {
		return QUnspecified
	}
	if f < 0 {
		return QUnspecified
	}
	return int(f*1000 + 0.5)
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// split returns the username and domain columns of an AoR.
func (m *Module) split(aor string) (string, any) {
	if !m.UseDomain() {
		return aor, nil
	}
	if i := strings.IndexByte(aor, '@'); i >= 0 {
		return aor[:i], aor[i+1:]
	}
	return aor, nil
}

func (m *Module) rowValues(c *Contact) []any {
	var methods any
	if c.Methods != AllMethods {
		methods = int64(c.Methods)
	}
	conn := c.ConnID
	if conn == 0 {
		conn = -1
	}
	ka := 0
	if c.CFlags&m.NATFlag() != 0 {
		ka = 1
	}
	return []any{nullStr(c.Received), nullStr(c.Path), toDBTime(c.Expires), q2double(c.Q), c.CallID, c.CSeq,
		toDBTime(c.LastModified), int64(c.Flags), int64(c.CFlags), c.UserAgent, nullStr(c.Socket), methods,
		nullStr(c.Instance), int64(c.RegID), c.ServerID, conn, ka}
}

const rowCols = "received, path, expires, q, callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, server_id, connection_id, keepalive"

// execer runs the location statements: the database itself (db_mode 1)
// or the transaction of a write-back flush (db_mode 2).
type execer interface {
	Exec(query string, args ...any) (sql.Result, error)
	QueryRow(query string, args ...any) *sql.Row
}

func (m *Module) dbInsert(c *Contact) error {
	if m.db == nil {
		return nil
	}
	return m.execInsert(m.db, c)
}

func (m *Module) execInsert(x execer, c *Contact) error {
	if c.Flags&FlagMem != 0 {
		return nil
	}
	if !validTable(c.Domain) {
		return fmt.Errorf("usrloc: domain %q cannot be a table name", c.Domain)
	}
	user, dom := m.split(c.AOR)
	args := append([]any{c.RUID, user, dom, c.URI}, m.rowValues(c)...)
	q := "INSERT INTO " + c.Domain + " (ruid, username, domain, contact, " + rowCols + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + ")"
	_, err := x.Exec(m.db.Rebind(q), args...)
	return err
}

func (m *Module) dbUpdate(c *Contact) error {
	if m.db == nil {
		return nil
	}
	return m.execUpdate(m.db, c)
}

func (m *Module) execUpdate(x execer, c *Contact) error {
	if c.Flags&FlagMem != 0 {
		return nil
	}
	if !validTable(c.Domain) {
		return fmt.Errorf("usrloc: domain %q cannot be a table name", c.Domain)
	}
	args := append([]any{c.URI}, m.rowValues(c)...)
	args = append(args, c.RUID)
	q := "UPDATE " + c.Domain + " SET contact = ?, " + strings.ReplaceAll(rowCols, ",", " = ?,") + " = ? WHERE ruid = ?"
	res, err := x.Exec(m.db.Rebind(q), args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		// no row: the contact was memory-only before (MySQL also reports
		// 0 for a row left unchanged, hence the check)
		var k int
		if err := x.QueryRow(m.db.Rebind("SELECT count(*) FROM "+c.Domain+" WHERE ruid = ?"), c.RUID).Scan(&k); err != nil {
			return err
		}
		if k == 0 {
			return m.execInsert(x, c)
		}
	}
	return nil
}

// validTable reports whether a domain name can be used as a table name.
func validTable(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (m *Module) dbDelete(c *Contact) error {
	if m.db == nil {
		return nil
	}
	return m.execDelete(m.db, c)
}

func (m *Module) execDelete(x execer, c *Contact) error {
	if c.Flags&FlagMem != 0 {
		return nil
	}
	if !validTable(c.Domain) {
		return fmt.Errorf("usrloc: domain %q cannot be a table name", c.Domain)
	}
	_, err := x.Exec(m.db.Rebind("DELETE FROM "+c.Domain+" WHERE ruid = ?"), c.RUID)
	return err
}

// txStmts runs the statements of one flush on its transaction, preparing
// each distinct statement once (a flush repeats the same few statements
// for every contact).
type txStmts struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (x *txStmts) stmt(q string) (*sql.Stmt, error) {
	if st, ok := x.stmts[q]; ok {
		return st, nil
	}
	st, err := x.tx.Prepare(q)
	if err != nil {
		return nil, err
	}
	x.stmts[q] = st
	return st, nil
}

func (x *txStmts) Exec(q string, args ...any) (sql.Result, error) {
	st, err := x.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.Exec(args...)
}

func (x *txStmts) QueryRow(q string, args ...any) *sql.Row {
	st, err := x.stmt(q)
	if err != nil {
		return x.tx.QueryRow(q, args...) // reports the error through Scan
	}
	return st.QueryRow(args...)
}

func (x *txStmts) close() {
	for _, st := range x.stmts {
		st.Close()
	}
}

// writeBatch writes the changes of one write-back flush in one
// transaction: the deletions first (a contact deleted and then inserted
// again under the same ruid ends with its row), then the inserts and
// updates. Nothing is written when it fails.
func (m *Module) writeBatch(b *wbBatch) (err error) {
	tx, err := m.db.Begin()
	if err != nil {
		return err
	}
	x := &txStmts{tx: tx, stmts: map[string]*sql.Stmt{}}
	defer func() {
		x.close()
		if err != nil {
			tx.Rollback()
		}
	}()
	for i := range b.dels {
		if err := m.execDelete(x, &b.dels[i].c); err != nil {
			return fmt.Errorf("delete %s from %s: %w", b.dels[i].c.RUID, b.dels[i].c.Domain, err)
		}
	}
	for i := range b.ops {
		o := &b.ops[i]
		if o.insert {
			err = m.execInsert(x, &o.row)
		} else {
			err = m.execUpdate(x, &o.row)
		}
		if err != nil {
			return fmt.Errorf("write %s to %s: %w", o.row.RUID, o.row.Domain, err)
		}
	}
	return tx.Commit()
}
