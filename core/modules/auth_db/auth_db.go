// Package auth_db is Kamailio's auth_db module: Digest authentication
// against the credentials of a database table (Kamailio's subscriber
// schema), on top of the auth module's nonce and digest handling. It
// also holds the subscriber management used by `kemigo user`.
package auth_db

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/auth"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// auth_check flags.
const (
	FlagCheckID = 1 // identity check: From/To/R-URI user against the auth user
	FlagSkipFwd = 2 // no identity check for INVITE, BYE, PRACK, UPDATE, MESSAGE
)

// is_subscriber flags.
const (
	SubsUseDomain       = 1 // match the URI's domain too
	SubsSkipCredentials = 2 // only test existence; load_credentials not loaded
)

// queryTimeout bounds one credentials query.
const queryTimeout = 10 * time.Second

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// credential is one load_credentials entry: a column and where it goes.
type credential struct {
	column string
	pv     string
}

// Option changes how New builds the module.
type Option func(*Module)

// WithDB makes the module use an open database instead of opening
// db_url (the module does not close it).
func WithDB(d *db.DB) Option { return func(m *Module) { m.conn, m.shared = d, true } }

// WithLogger sets the logger of the Go API.
func WithLogger(l zerolog.Logger) Option { return func(m *Module) { m.log = l } }

// Module checks credentials from the database.
type Module struct {
	cfg   Config
	auth  *auth.Module
	creds []credential
	log   zerolog.Logger

	mu       sync.Mutex
	conn     *db.DB
	shared   bool
	versions sync.Map // table -> struct{} once its version was found right

	// stmts holds the prepared credential queries of conn, by query text
	// (a few: one per table and column set): preparing the SELECT again
	// for every request was a tenth of a REGISTER's CPU on SQLite.
	stmts db.Stmts
}

// maxStmts bounds the prepared queries kept (table names come from the
// script; past this, queries run unprepared).
const maxStmts = 32

// New builds the module on top of the auth module. The database is
// opened on first use. It fails on a malformed load_credentials.
func New(cfg Config, a *auth.Module, opts ...Option) (*Module, error) {
	if a == nil {
		return nil, errors.New("auth_db: the auth module is required")
	}
	m := &Module{cfg: cfg, auth: a, log: zerolog.Nop(), stmts: db.Stmts{Max: maxStmts}}
	for _, o := range opts {
		o(m)
	}
	for _, c := range []*string{&m.cfg.UserColumn, &m.cfg.DomainColumn, &m.cfg.PasswordColumn, &m.cfg.PasswordColumn2} {
		*c = strings.TrimSpace(*c)
	}
	if m.cfg.CalculateHA1 != 0 && m.cfg.PasswordColumn == "ha1" {
		m.cfg.PasswordColumn = "password"
	}
	for _, col := range []string{m.cfg.UserColumn, m.cfg.DomainColumn, m.cfg.PasswordColumn, m.cfg.PasswordColumn2} {
		if !identRE.MatchString(col) {
			return nil, fmt.Errorf("auth_db: bad column name %q", col)
		}
	}
	creds, err := parseCredentials(m.cfg.LoadCredentials)
	if err != nil {
		return nil, err
	}
	m.creds = creds
	return m, nil
}

// parseCredentials parses load_credentials as parse_aaa_pvs: entries
// separated by ';', each "column" (stored in $avp(column)) or
// "$pv=column" (the last '=' separates them).
func parseCredentials(def string) ([]credential, error) {
	var out []credential
	for _, part := range strings.Split(def, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var c credential
		if i := strings.LastIndexByte(part, '='); i > 0 {
			c.pv, c.column = strings.TrimSpace(part[:i]), strings.TrimSpace(part[i+1:])
		} else {
			c.column = part
			c.pv = "$avp(" + part + ")"
		}
		if !identRE.MatchString(c.column) {
			return nil, fmt.Errorf("auth_db: load_credentials: bad column %q", c.column)
		}
		if _, err := pv.Parse(c.pv); err != nil {
			return nil, fmt.Errorf("auth_db: load_credentials: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// DB returns the database, opening db_url on first use.
func (m *Module) DB() (*db.DB, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != nil {
		return m.conn, nil
	}
	d, err := db.Open(m.cfg.DBURL)
	if err != nil {
		return nil, err
	}
	m.conn = d
	return d, nil
}

// Close closes the database if the module opened it.
func (m *Module) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil || m.shared {
		return nil
	}
	m.stmts.Reset()
	err := m.conn.Close()
	m.conn = nil
	return err
}

func (m *Module) checkVersion(d *db.DB, table string) error {
	if m.cfg.VersionTable == 0 {
		return nil
	}
	if _, ok := m.versions.Load(table); ok {
		return nil
	}
	v, err := d.TableVersion(table)
	if err != nil {
		return err
	}
	if v != SubscriberVersion {
		return fmt.Errorf("table %s has version %d, want %d (run `kemigo db init`, or set version_table = 0)", table, v, SubscriberVersion)
	}
	m.versions.Store(table, struct{}{})
	return nil
}

// row is one credentials row: the password value, then the
// load_credentials columns.
type row struct {
	pass  string
	extra []any
}

// query selects cols from table for user (and domain when not "").
// found is false when no row matches.
func (m *Module) query(table, user, domain string, cols []string) ([]any, bool, error) {
	if !identRE.MatchString(table) {
		return nil, false, fmt.Errorf("bad table name %q", table)
	}
	d, err := m.DB()
	if err != nil {
		return nil, false, err
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + table + " WHERE " + m.cfg.UserColumn + " = ?"
	args := []any{user}
	if domain != "" {
		q += " AND " + m.cfg.DomainColumn + " = ?"
		args = append(args, domain)
	}
	ctx, cancel := d.Context(queryTimeout)
	defer cancel()
	q = d.Rebind(q)
	st, err := m.stmts.Get(ctx, d, q)
	if err != nil {
		return nil, false, err
	}
	var rows *sql.Rows
	if st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = d.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, false, err
	}
	return vals, true, nil
}

func (m *Module) credColumns() []string {
	cols := make([]string, len(m.creds))
	for i, c := range m.creds {
		cols[i] = c.column
	}
	return cols
}

// getHA1 is get_ha1: the row of the digest user (user part, and with
// use_domain its domain part, else the realm). It reads ha1b for
// usernames with a domain part, ha1 otherwise, or the password column
// with calculate_ha1.
func (m *Module) getHA1(table, whole, realm string) (*row, bool, error) {
	user, domain := auth.SplitUsername(whole)
	col := m.cfg.PasswordColumn
	if domain != "" && m.cfg.CalculateHA1 == 0 {
		col = m.cfg.PasswordColumn2
	}
	if domain == "" {
		domain = realm
	}
	if m.cfg.UseDomain == 0 {
		domain = ""
	}
	vals, found, err := m.query(table, user, domain, append([]string{col}, m.credColumns()...))
	if err != nil || !found {
		return nil, found, err
	}
	return &row{pass: valueString(vals[0]), extra: vals[1:]}, true, nil
}

func valueString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

func toValue(v any) (val.Value, bool) {
	switch x := v.(type) {
	case nil:
		return val.NullValue, false
	case int64:
		return val.OfInt(x), true
	case int32:
		return val.OfInt(int64(x)), true
	case bool:
		if x {
			return val.OfInt(1), true
		}
		return val.OfInt(0), true
	case []byte:
		return val.OfStr(string(x)), true
	case string:
		return val.OfStr(x), true
	case float64:
		return val.OfStr(strconv.FormatFloat(x, 'f', -1, 64)), true
	case time.Time:
		return val.OfStr(x.Format("2006-01-02 15:04:05")), true
	}
	return val.OfStr(fmt.Sprint(v)), true
}

// generate copies the load_credentials columns to their PVs (NULL
// columns are skipped).
func (m *Module) generate(c *kemi.Ctx, vals []any) error {
	for i, cr := range m.creds {
		if i >= len(vals) {
			break
		}
		v, ok := toValue(vals[i])
		if !ok {
			continue
		}
		if err := pv.Set(c, cr.pv, v); err != nil {
			return fmt.Errorf("load_credentials %s: %w", cr.pv, err)
		}
	}
	return nil
}

// Authorize is www_authorize (hdrName "Authorization") / proxy_authorize
// ("Proxy-Authorization") with credentials from table: 1, or -1 (error,
// including a failed query), -2 (wrong password), -3 (unknown user), -4
// (stale nonce), -5 (no credentials), -6 (nonce reused).
func (m *Module) Authorize(c *kemi.Ctx, realm, table, hdrName string) int {
	var found *row
	ret := m.auth.CheckResponse(c, hdrName, realm, func(whole, r, algName string) (string, bool, error) {
		rw, ok, err := m.getHA1(table, whole, r)
		if err != nil || !ok {
			return "", ok, err
		}
		found = rw
		if m.cfg.ForceGenerateAVPs != 0 {
			if err := m.generate(c, rw.extra); err != nil {
				c.Log.Error().Err(err).Msg("auth_db: loading credentials failed")
			}
		}
		alg, _ := auth.ParseAlgorithm(algName)
		if m.cfg.CalculateHA1 != 0 {
			return auth.HA1(alg, whole, r, rw.pass), true, nil
		}
		if len(rw.pass) != alg.HexLen() {
			return "", false, fmt.Errorf("the stored HA1 of %q is not a %s hash (store %s HA1 values or set calculate_ha1)", whole, alg.Name, alg.Name)
		}
		return rw.pass, true, nil
	})
	if ret == auth.AuthOK && found != nil && m.cfg.ForceGenerateAVPs == 0 {
		if err := m.generate(c, found.extra); err != nil {
			c.Log.Error().Err(err).Msg("auth_db: loading credentials failed")
		}
	}
	return ret
}

func (m *Module) authorizeChecked(c *kemi.Ctx, realm, table, hdrName string) int {
	if realm == "" {
		c.Log.Error().Msg("auth_db: invalid realm parameter - empty value")
		return auth.AuthError
	}
	if table == "" {
		c.Log.Error().Msg("auth_db: invalid table parameter")
		return auth.AuthError
	}
	if d, err := m.DB(); err != nil {
		c.Log.Error().Err(err).Msg("auth_db: database unavailable")
		return auth.AuthError
	} else if err := m.checkVersion(d, table); err != nil {
		c.Log.Error().Err(err).Msg("auth_db: table version check failed")
		return auth.AuthError
	}
	return m.Authorize(c, realm, table, hdrName)
}

// WWWAuthorize is www_authorize(realm, table): Authorization credentials.
func (m *Module) WWWAuthorize(c *kemi.Ctx, realm, table string) int {
	return m.authorizeChecked(c, realm, table, auth.HdrAuthorization)
}

// ProxyAuthorize is proxy_authorize(realm, table): Proxy-Authorization.
func (m *Module) ProxyAuthorize(c *kemi.Ctx, realm, table string) int {
	return m.authorizeChecked(c, realm, table, auth.HdrProxyAuthorization)
}

// AuthCheck is auth_check(realm, table, flags): Authorization for
// REGISTER, Proxy-Authorization otherwise; ACK and CANCEL always 1. With
// flags bit 1 a successful check is followed by the identity check
// (auth.CheckIdentity, this module's use_domain); bit 2 skips it for
// INVITE, BYE, PRACK, UPDATE and MESSAGE. Returns 1, -1..-6 as
// Authorize, or -8 on an identity mismatch.
func (m *Module) AuthCheck(c *kemi.Ctx, realm, table string, flags int) int {
	msg := c.Msg
	if msg.Req == nil {
		c.Log.Error().Msg("auth_db: auth_check needs a request")
		return auth.AuthError
	}
	if msg.Req.Method == sip.ACK || msg.Req.Method == sip.CANCEL {
		return auth.AuthOK
	}
	if realm == "" {
		c.Log.Error().Msg("auth_db: invalid realm parameter - empty value")
		return auth.AuthError
	}
	if table == "" {
		c.Log.Error().Msg("auth_db: invalid table parameter - empty value")
		return auth.AuthError
	}
	hdr := auth.HdrProxyAuthorization
	if msg.Req.Method == sip.REGISTER {
		hdr = auth.HdrAuthorization
	}
	ret := m.Authorize(c, realm, table, hdr)
	// PRACK is accepted without credentials: there is nothing to compare.
	if ret != auth.AuthOK || flags&FlagCheckID == 0 || msg.Req.Method == sip.PRACK {
		return ret
	}
	cred, ok := auth.AuthorizedCredentials(msg, hdr)
	if !ok {
		return ret
	}
	return auth.CheckIdentity(msg, cred.User, m.cfg.UseDomain != 0, flags&FlagSkipFwd != 0)
}

// IsSubscriber is is_subscriber(uri, table, flags): 1 when the user of
// uri (and its domain, with flags bit 1) is in table, loading the
// load_credentials columns unless flags bit 2 is set; -1 on a bad URI,
// table or query, -2 when there is no such user, -3 when a column could
// not be stored.
func (m *Module) IsSubscriber(c *kemi.Ctx, uri, table string, flags int) int {
	if uri == "" {
		c.Log.Error().Msg("auth_db: invalid uri parameter - empty value")
		return -1
	}
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil || u.Host == "" {
		c.Log.Error().Err(err).Str("uri", uri).Msg("auth_db: invalid uri parameter format")
		return -1
	}
	if table == "" {
		c.Log.Error().Msg("auth_db: invalid table parameter - empty value")
		return -1
	}
	domain := ""
	if flags&SubsUseDomain != 0 {
		domain = u.Host
	}
	cols := m.credColumns()
	if flags&SubsSkipCredentials != 0 || len(cols) == 0 {
		cols = []string{m.cfg.UserColumn}
	}
	vals, found, err := m.query(table, u.User, domain, cols)
	if err != nil {
		c.Log.Error().Err(err).Msg("auth_db: failed to query database")
		return -1
	}
	if !found {
		return -2
	}
	if flags&SubsSkipCredentials == 0 && len(m.creds) > 0 {
		if err := m.generate(c, vals); err != nil {
			c.Log.Error().Err(err).Msg("auth_db: loading credentials failed")
			return -3
		}
	}
	return 1
}
