package acc

import "github.com/kemigo/kemigo/core/db"

// Kamailio 5.6 table versions (utils/kamctl/*/acc-create.sql).
const (
	AccTableVersion         = 5
	MissedCallsTableVersion = 4
)

func init() {
	db.Register(accTable("acc", AccTableVersion, "acc_callid_idx", "callid_idx"))
	db.Register(accTable("missed_calls", MissedCallsTableVersion, "missed_calls_callid_idx", "callid_idx"))
}

// accTable is Kamailio's acc / missed_calls schema (the two are the same):
// id, method, from_tag, to_tag, callid, sip_code, sip_reason, time, with an
// index on callid. Extra columns (db_extra) are not part of it; see
// EnsureExtraColumns.
func accTable(name string, version int, idx, myIdx string) db.Table {
	cols := func(id, ts string, q func(string) string) string {
		return "CREATE TABLE " + q(name) + " (\n" +
			"    " + q("id") + " " + id + " PRIMARY KEY NOT NULL,\n" +
			"    " + q("method") + " VARCHAR(16) DEFAULT '' NOT NULL,\n" +
			"    " + q("from_tag") + " VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    " + q("to_tag") + " VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    " + q("callid") + " VARCHAR(255) DEFAULT '' NOT NULL,\n" +
			"    " + q("sip_code") + " VARCHAR(3) DEFAULT '' NOT NULL,\n" +
			"    " + q("sip_reason") + " VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    " + q("time") + " " + ts + " NOT NULL\n)"
	}
	plain := func(s string) string { return s }
	tick := func(s string) string { return "`" + s + "`" }
	return db.Table{Name: name, Version: version, Create: map[db.Dialect][]string{
		db.SQLite: {
			cols("INTEGER", "TIMESTAMP WITHOUT TIME ZONE", plain),
			"CREATE INDEX " + idx + " ON " + name + " (callid)",
		},
		db.Postgres: {
			cols("SERIAL", "TIMESTAMP WITHOUT TIME ZONE", plain),
			"CREATE INDEX " + idx + " ON " + name + " (callid)",
		},
		db.MySQL: {
			cols("INT(10) UNSIGNED AUTO_INCREMENT", "DATETIME", tick),
			"CREATE INDEX " + myIdx + " ON " + name + " (`callid`)",
		},
	}}
}
