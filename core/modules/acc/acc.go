// Package acc is Kamailio's acc module: transaction accounting to the log
// and to a database, driven by message flags, plus the KSR.acc.* functions
// that account the current request on demand.
//
// The transaction layer calls the hooks (OnFinal, OnFailure, OnProvisional,
// OnACK) at the points where Kamailio's tm runs acc's callbacks; see
// README.md for exactly when each record is written.
package acc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// Texts that start each log line (acc.h).
const (
	TextRequest  = "ACC: request accounted: "
	TextMissed   = "ACC: call missed: "
	TextAnswered = "ACC: transaction answered: "
	TextAcked    = "ACC: request acknowledged: "
)

// ErrNoDB is returned when database accounting is asked for without db_url.
var ErrNoDB = errors.New("acc: db support not configured (db_url)")

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now (the record timestamps).
func WithClock(now func() time.Time) Option { return func(m *Module) { m.clock = now } }

// WithLogger sets the logger used when a hook has no context.
func WithLogger(l zerolog.Logger) Option { return func(m *Module) { m.log = l } }

// WithDB makes the module use an open database instead of opening db_url
// (the proxy may share one connection pool). The module does not close it.
func WithDB(d *db.DB) Option { return func(m *Module) { m.db = d } }

// Module is the acc module.
type Module struct {
	cfg          Config
	clock        func() time.Time
	log          zerolog.Logger
	level        zerolog.Level
	klevel       string
	logExtra     []extra
	dbExtra      []extra
	failedFilter map[int]bool
	db           *db.DB
	ownDB        bool
	coreCols     []string
	writer       // background writer of the database rows (writer.go)
}

// extra is one "name=$pv" pair of log_extra / db_extra.
type extra struct {
	name string
	pv   string
}

// New builds the module. It parses the extras and the failed filter,
// checks the flags, and opens db_url when set (unless WithDB gave a
// connection). Without db_url, db_flag and db_missed_flag are ignored, as
// in Kamailio.
func New(cfg Config, opts ...Option) (*Module, error) {
	m := &Module{cfg: cfg, clock: time.Now, log: zerolog.Nop()}
	m.stmts.Max = maxStmts
	m.queueSize = DefaultQueueSize
	for _, o := range opts {
		o(m)
	}
	for name, f := range map[string]int{
		"failed_transaction_flag": cfg.FailedTransactionFlag, "log_flag": cfg.LogFlag,
		"log_missed_flag": cfg.LogMissedFlag, "db_flag": cfg.DBFlag, "db_missed_flag": cfg.DBMissedFlag,
	} {
		if f < -1 || f > 31 {
			return nil, fmt.Errorf("acc: %s %d out of range (-1, 0..31)", name, f)
		}
	}
	if cfg.TimeMode != 0 {
		return nil, fmt.Errorf("acc: time_mode %d is not supported (only 0)", cfg.TimeMode)
	}
	var err error
	if m.failedFilter, err = parseFailedFilter(cfg.FailedFilter); err != nil {
		return nil, err
	}
	if m.logExtra, err = parseExtras(cfg.LogExtra); err != nil {
		return nil, fmt.Errorf("acc: log_extra: %w", err)
	}
	if m.dbExtra, err = parseExtras(cfg.DBExtra); err != nil {
		return nil, fmt.Errorf("acc: db_extra: %w", err)
	}
	m.level, m.klevel = logLevel(cfg.LogLevel)
	def := DefaultConfig()
	cols := []*string{&m.cfg.AccMethodColumn, &m.cfg.AccFromTagColumn, &m.cfg.AccToTagColumn,
		&m.cfg.AccCallidColumn, &m.cfg.AccSipCodeColumn, &m.cfg.AccSipReasonColumn, &m.cfg.AccTimeColumn}
	defs := []string{def.AccMethodColumn, def.AccFromTagColumn, def.AccToTagColumn,
		def.AccCallidColumn, def.AccSipCodeColumn, def.AccSipReasonColumn, def.AccTimeColumn}
	for i, c := range cols {
		if *c == "" {
			*c = defs[i]
		}
		if !isIdent(*c) {
			return nil, fmt.Errorf("acc: bad column name %q", *c)
		}
		m.coreCols = append(m.coreCols, *c)
	}
	for _, e := range m.dbExtra {
		if !isIdent(e.name) {
			return nil, fmt.Errorf("acc: db_extra: bad column name %q", e.name)
		}
	}
	if m.cfg.DBTableAcc == "" {
		m.cfg.DBTableAcc = def.DBTableAcc
	}
	if m.cfg.DBTableMissedCalls == "" {
		m.cfg.DBTableMissedCalls = def.DBTableMissedCalls
	}
	if m.db == nil && cfg.DBURL != "" {
		d, err := db.Open(cfg.DBURL)
		if err != nil {
			return nil, fmt.Errorf("acc: %w", err)
		}
		m.db, m.ownDB = d, true
	}
	if m.db == nil {
		m.cfg.DBFlag, m.cfg.DBMissedFlag = -1, -1
	} else {
		m.queries = map[string]string{}
		for _, t := range []string{m.cfg.DBTableAcc, m.cfg.DBTableMissedCalls} {
			if isIdent(t) {
				m.queries[t] = m.insertQuery(t)
			}
		}
	}
	return m, nil
}

// Close writes every queued database row, then closes the database the
// module opened itself. Rows accounted after Close are written
// synchronously (into a shared database; the module's own is closed).
func (m *Module) Close() error {
	if m.db != nil {
		m.closeWriter()
	}
	if m.ownDB && m.db != nil {
		return m.db.Close()
	}
	return nil
}

// DB returns the accounting database (nil without db_url).
func (m *Module) DB() *db.DB { return m.db }

// logLevel maps Kamailio's log level number to zerolog (plus the name of
// Kamailio levels zerolog lacks, logged as "klevel").
func logLevel(l int) (zerolog.Level, string) {
	switch {
	case l <= -2:
		return zerolog.ErrorLevel, "crit"
	case l == -1:
		return zerolog.ErrorLevel, ""
	case l == 0:
		return zerolog.WarnLevel, ""
	case l == 1:
		return zerolog.InfoLevel, "notice"
	case l == 2:
		return zerolog.InfoLevel, ""
	}
	return zerolog.DebugLevel, ""
}

func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parseFailedFilter parses "408,480" (Kamailio's parse_failed_filter).
func parseFailedFilter(s string) (map[int]bool, error) {
	out := map[int]bool{}
	if s == "" {
		return out, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 15 {
		return nil, errors.New("acc: too many elements in failed_filter")
	}
	for _, p := range parts {
		if len(p) != 3 {
			return nil, fmt.Errorf("acc: failed_filter: response code %q must have 3 digits", p)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 300 {
			return nil, fmt.Errorf("acc: failed_filter: invalid response code %q", p)
		}
		out[n] = true
	}
	return out, nil
}

// parseExtras parses "name=$pv;name2=$pv2" (Kamailio's parse_acc_extra).
// A ';' inside the parentheses of a PV does not end it.
func parseExtras(s string) ([]extra, error) {
	var out []extra
	s = strings.TrimSpace(s)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("parse failed in %q: want name=$pv", s)
		}
		name := strings.TrimSpace(s[:eq])
		rest := strings.TrimSpace(s[eq+1:])
		end := pvEnd(rest)
		spec := strings.TrimSpace(rest[:end])
		if name == "" || strings.ContainsAny(name, " \t") || !strings.HasPrefix(spec, "$") {
			return nil, fmt.Errorf("parse failed around %q", s)
		}
		if _, err := pv.Parse(spec); err != nil && !errors.Is(err, pv.ErrUnknown) {
			// unknown classes may be registered later by other modules
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, extra{name: name, pv: spec})
		if end == len(rest) {
			break
		}
		s = strings.TrimSpace(rest[end+1:])
		if s == "" {
			return nil, fmt.Errorf("parse failed: trailing ';'")
		}
	}
	return out, nil
}

// pvEnd returns the index of the ';' ending the PV at the start of s (a
// ';' inside parentheses does not count), or len(s).
func pvEnd(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ';':
			if depth <= 0 {
				return i
			}
		}
	}
	return len(s)
}

// flagOn is Kamailio's is_acc_flag_set.
func flagOn(flags uint32, f int) bool { return f >= 0 && f < 32 && flags&(1<<uint(f)) != 0 }

// record is one accounting event: the core values (core2strar).
type record struct {
	text    string // log prefix (TextAnswered, ...)
	method  string
	fromTag string
	toTag   string
	callID  string
	code    string // "" when a comment had no code
	reason  string
	ts      time.Time
}

// newRecord fills the core values from msg; toTag is the To tag to use
// ("" takes the message's own); upstream swaps the tags.
func (m *Module) newRecord(msg *sipmsg.Msg, toTag string, upstream bool) record {
	r := record{method: msg.Method(), callID: msg.CallID(), ts: m.clock()}
	s := msg.SIP()
	if f := s.From(); f != nil {
		r.fromTag, _ = f.Params.Get("tag")
	}
	if toTag == "" {
		if t := s.To(); t != nil {
			toTag, _ = t.Params.Get("tag")
		}
	}
	r.toTag = toTag
	if upstream {
		r.fromTag, r.toTag = r.toTag, r.fromTag
	}
	return r
}

// ctxFor returns a context whose current message is msg, for evaluating
// the extras.
func (m *Module) ctxFor(c *kemi.Ctx, msg *sipmsg.Msg) *kemi.Ctx {
	if c == nil {
		return &kemi.Ctx{Msg: msg, Worker: kemi.NewWorkerState(0), Log: m.log, BranchIdx: -1}
	}
	if c.Msg == msg && c.Worker != nil {
		return c
	}
	cc := *c
	cc.Msg = msg
	if cc.Worker == nil {
		// tm runs the final hook outside any worker callback
		cc.Worker = kemi.NewWorkerState(0)
	}
	return &cc
}

func (m *Module) logger(c *kemi.Ctx) zerolog.Logger {
	if c == nil {
		return m.log
	}
	return c.Log
}

// extraValues evaluates extras against c's message. Missing or failing
// PVs are null.
func extraValues(c *kemi.Ctx, ex []extra) []val.Value {
	out := make([]val.Value, len(ex))
	for i, e := range ex {
		v, err := pv.Get(c, e.pv)
		if err != nil {
			c.Log.Error().Err(err).Str("extra", e.name).Msg("acc: failed to get '" + e.name + "'")
			continue
		}
		out[i] = v
	}
	return out
}

// logRecord writes the log line (acc_log_request).
func (m *Module) logRecord(c *kemi.Ctx, r record) {
	var b strings.Builder
	b.WriteString(r.text)
	b.WriteString("timestamp=")
	b.WriteString(strconv.FormatInt(r.ts.Unix(), 10))
	kv := func(k, v string) {
		b.WriteByte(';')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	kv("method", r.method)
	kv("from_tag", r.fromTag)
	kv("to_tag", r.toTag)
	kv("call_id", r.callID)
	kv("code", r.code)
	kv("reason", r.reason)
	for i, v := range extraValues(c, m.logExtra) {
		s := ""
		if !v.IsNull() {
			s = v.String()
		}
		kv(m.logExtra[i].name, s)
	}
	ev := c.Log.WithLevel(m.level)
	if m.klevel != "" {
		ev = ev.Str("klevel", m.klevel)
	}
	ev.Msg(b.String())
}

// tableName expands a table name that holds PVs and checks it.
func tableName(c *kemi.Ctx, t string) (string, error) {
	if strings.IndexByte(t, '$') >= 0 {
		t = pv.Expand(c, t)
	}
	if !isIdent(t) {
		return "", fmt.Errorf("acc: bad db table name %q", t)
	}
	return t, nil
}

func (m *Module) quote(id string) string {
	if m.db.Dialect == db.MySQL {
		return "`" + id + "`"
	}
	return id
}

// dbRecord stores the record in table (acc_db_request): the row is built
// here, from c's message, and handed to the background writer (see
// writer.go). The error is about the row itself (no db_url, bad table
// name, a table or column the INSERT cannot be prepared for) or, when the
// row is written synchronously (no queue, queue full, after Close), about
// the insert; a queued row that fails later is logged by the writer.
func (m *Module) dbRecord(c *kemi.Ctx, r record, table string) error {
	if m.db == nil {
		return ErrNoDB
	}
	table, err := tableName(c, table)
	if err != nil {
		return err
	}
	ins, err := m.insertFor(table)
	if err != nil {
		return fmt.Errorf("acc: failed to insert into database: %w", err)
	}
	args := make([]any, 7, 7+len(m.dbExtra))
	args[0], args[1], args[2], args[3], args[4], args[5] = r.method, r.fromTag, r.toTag, r.callID, r.code, r.reason
	args[6] = r.ts.In(time.Local).Format("2006-01-02 15:04:05")
	for _, v := range extraValues(c, m.dbExtra) {
		switch {
		case v.IsNull() && m.cfg.AccExtraNullable == 1:
			args = append(args, nil)
		case v.IsNull():
			args = append(args, "")
		default:
			args = append(args, v.String())
		}
	}
	return m.submit(&dbRow{ins: ins, args: args, log: c.Log})
}

// EnsureExtraColumns adds the db_extra columns missing from the acc and
// missed_calls tables (VARCHAR(128), ” by default; NULL allowed with
// acc_extra_nullable), as the Kamailio docs tell users to do by hand.
// Tables whose names hold PVs are skipped.
func (m *Module) EnsureExtraColumns() error {
	if m.db == nil || len(m.dbExtra) == 0 {
		return nil
	}
	def := " VARCHAR(128) DEFAULT '' NOT NULL"
	if m.cfg.AccExtraNullable == 1 {
		def = " VARCHAR(128) DEFAULT NULL"
	}
	for _, t := range []string{m.cfg.DBTableAcc, m.cfg.DBTableMissedCalls} {
		if !isIdent(t) {
			continue
		}
		have, err := m.columns(t)
		if err != nil {
			return err
		}
		for _, e := range m.dbExtra {
			if have[strings.ToLower(e.name)] {
				continue
			}
			q := "ALTER TABLE " + m.quote(t) + " ADD COLUMN " + m.quote(e.name) + def
			if _, err := m.db.Exec(q); err != nil {
				return fmt.Errorf("acc: add column %s.%s: %w", t, e.name, err)
			}
			have[strings.ToLower(e.name)] = true
		}
	}
	return nil
}

// columns returns the lower-cased column names of a table.
func (m *Module) columns(table string) (map[string]bool, error) {
	rows, err := m.db.Query("SELECT * FROM " + m.quote(table) + " WHERE 1=0")
	if err != nil {
		return nil, fmt.Errorf("acc: table %s: %w", table, err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range names {
		out[strings.ToLower(n)] = true
	}
	return out, rows.Err()
}

// ErrorText is Kamailio's error_text(): the standard reason phrase of a
// code, used when a reply's own reason is not known.
func ErrorText(code int) string {
	if s, ok := reasons[code]; ok {
		return s
	}
	switch {
	case code >= 600:
		return "Global Failure"
	case code >= 500:
		return "Server Failure"
	case code >= 400:
		return "Request Failure"
	case code >= 300:
		return "Redirection"
	case code >= 200:
		return "Successful"
	case code >= 100:
		return "Provisional"
	}
	return "Unspecified"
}

var reasons = map[int]string{
	100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
	200: "OK",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
	410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
	416: "Unsupported URI Scheme", 417: "Bad Extension", 421: "Extension Required", 423: "Interval Too Brief",
	480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
	484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
	491: "Request Pending",
	500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
	504: "Server Time-Out", 505: "Version Not Supported", 513: "Message Too Large",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}
