package acc

import (
	"errors"
	"strings"

	"github.com/kemigo/kemigo/core/kemi"
)

// parseComment is Kamailio's acc_param_parse / acc_parse_code for a KEMI
// comment: "486 Busy Here" gives code "486" and reason "Busy Here"; text
// without a leading three-digit code is all reason. Pseudo-variables are
// refused, as KEMI does not expand them here.
func parseComment(s string) (code, reason string, err error) {
	if s == "" {
		return "", "", errors.New("acc: invalid parameters (empty comment)")
	}
	if strings.IndexByte(s, '$') >= 0 {
		return "", "", errors.New("acc: cfg variable detected - not supported")
	}
	if len(s) >= 3 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) {
		return s[:3], strings.TrimLeft(s[3:], " \t\r\n\v\f"), nil
	}
	return "", s, nil
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// requestRecord builds the record of the current message for a KEMI call.
func (m *Module) requestRecord(c *kemi.Ctx, comment string) (record, bool) {
	code, reason, err := parseComment(comment)
	if err != nil {
		c.Log.Error().Err(err).Msg("acc: failed execution")
		return record{}, false
	}
	r := m.newRecord(c.Msg, "", m.upstream(c.Msg))
	r.code, r.reason = code, reason
	return r, true
}

// LogRequest is acc_log_request(comment): 1, or -1 on a bad comment.
func (m *Module) LogRequest(c *kemi.Ctx, comment string) int {
	r, ok := m.requestRecord(c, comment)
	if !ok {
		return -1
	}
	r.text = TextRequest
	m.logRecord(c, r)
	return 1
}

// DBRequest is acc_db_request(comment, table): 1 once the row is queued
// for the background writer (Kamailio returns 1 after its insert), or -1:
// bad comment, bad table name, no db_url, a table or column the INSERT
// cannot be prepared for, or a failed insert when the row is written
// synchronously (full queue). A database error met by the writer after
// the row was queued is logged with the row ("acc: record not stored"),
// not returned.
func (m *Module) DBRequest(c *kemi.Ctx, comment, table string) int {
	r, ok := m.requestRecord(c, comment)
	if !ok {
		return -1
	}
	if table == "" {
		c.Log.Error().Msg("acc: no acc table name")
		return -1
	}
	if err := m.dbRecord(c, r, table); err != nil {
		c.Log.Error().Err(err).Msg("acc: acc db request failed")
		return -1
	}
	return 1
}

// Request is acc_request(comment, table): the log record always, the
// database row when db_url is set. It returns the result of the last
// one done (1 or -1).
func (m *Module) Request(c *kemi.Ctx, comment, table string) int {
	r, ok := m.requestRecord(c, comment)
	if !ok {
		return -1
	}
	r.text = TextRequest
	m.logRecord(c, r)
	ret := 1
	if m.db != nil {
		if err := m.dbRecord(c, r, table); err != nil {
			c.Log.Error().Err(err).Msg("acc: acc db request failed")
			ret = -1
		}
	}
	return ret
}
