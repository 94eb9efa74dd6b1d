package acc

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

const ts = 1_700_000_000

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func request(method, extra string) *sipmsg.Msg {
	raw := crlf(method + " sip:bob@example.com SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		extra +
		"From: \"Alice\" <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:bob@example.com>\n" +
		"Call-ID: c1@192.0.2.10\n" +
		"CSeq: 1 " + method + "\n" +
		"Content-Length: 0\n\n")
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		panic(err)
	}
	m.SrcIP, m.SrcPort, m.Proto = "192.0.2.10", 5060, "udp"
	return m
}

type env struct {
	m   *Module
	log *bytes.Buffer
	db  *db.DB
	c   *kemi.Ctx
}

// setup builds the module with a SQLite database in a temp dir (when
// withDB) holding Kamailio's acc tables.
func setup(t *testing.T, cfg Config, withDB bool, opts ...Option) *env {
	t.Helper()
	e := &env{log: &bytes.Buffer{}}
	if withDB {
		d, err := db.Open("sqlite://" + filepath.Join(t.TempDir(), "acc.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Init(); err != nil {
			t.Fatal(err)
		}
		e.db = d
		cfg.DBURL = d.URL
	}
	m, err := New(cfg, append([]Option{WithClock(func() time.Time { return time.Unix(ts, 0) }), WithDB(e.db)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	e.c = &kemi.Ctx{Msg: sipmsg.Faked(), Route: kemi.RouteTMReply, Worker: kemi.NewWorkerState(0),
		Log: zerolog.New(e.log).Level(zerolog.TraceLevel), BranchIdx: -1}
	return e
}

// lines returns the logged messages.
func (e *env) lines(t *testing.T) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(e.log.Bytes()))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad log line %q", sc.Text())
		}
		msg, _ := ev["message"].(string)
		out = append(out, msg)
	}
	return out
}

// rows returns the rows of a table as "method|from_tag|to_tag|callid|code|reason|time[|extras]",
// once the writer has written what was queued.
func (e *env) rows(t *testing.T, table string, extras ...string) []string {
	t.Helper()
	e.m.Flush()
	cols := append([]string{"method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time"}, extras...)
	rs, err := e.db.Query("SELECT " + strings.Join(cols, ",") + " FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			if !v.Valid {
				parts = append(parts, "NULL")
			} else {
				parts = append(parts, v.String)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

var when = time.Unix(ts, 0).Local().Format("2006-01-02 15:04:05")

func flags(fs ...int) uint32 {
	var f uint32
	for _, x := range fs {
		f |= 1 << uint(x)
	}
	return f
}

func baseCfg() Config {
	cfg := DefaultConfig()
	cfg.LogFlag, cfg.LogMissedFlag, cfg.FailedTransactionFlag = 1, 2, 3
	cfg.DBFlag, cfg.DBMissedFlag = 1, 2
	cfg.LogExtra = "src_user=$fU;src_ip=$si;dst_user=$rU"
	return cfg
}

func TestOnFinal(t *testing.T) {
	answered := "ACC: transaction answered: timestamp=1700000000;method=INVITE;from_tag=a1;to_tag=b2;call_id=c1@192.0.2.10;code=200;reason=OK;src_user=alice;src_ip=192.0.2.10;dst_user=bob"
	missed486 := "ACC: call missed: timestamp=1700000000;method=INVITE;from_tag=a1;to_tag=b2;call_id=c1@192.0.2.10;code=486;reason=Busy Here;src_user=alice;src_ip=192.0.2.10;dst_user=bob"
	failed486 := "ACC: transaction answered: timestamp=1700000000;method=INVITE;from_tag=a1;to_tag=b2;call_id=c1@192.0.2.10;code=486;reason=Busy Here;src_user=alice;src_ip=192.0.2.10;dst_user=bob"
	tests := []struct {
		name   string
		cfg    func(*Config)
		method string
		flags  uint32
		code   int
		reason string
		logs   []string
		acc    []string
		missed []string
	}{
		{name: "200 with log and db flag", method: "INVITE", flags: flags(1), code: 200, reason: "OK",
			logs: []string{answered},
			acc:  []string{"INVITE|a1|b2|c1@192.0.2.10|200|OK|" + when}},
		{name: "200 without flags", method: "INVITE", code: 200, reason: "OK"},
		{name: "486 missed call", method: "INVITE", flags: flags(2), code: 486, reason: "Busy Here",
			logs:   []string{missed486},
			missed: []string{"INVITE|a1|b2|c1@192.0.2.10|486|Busy Here|" + when}},
		{name: "486 with log_flag only is not accounted", method: "INVITE", flags: flags(1), code: 486, reason: "Busy Here"},
		{name: "486 failed transaction", method: "INVITE", flags: flags(1, 3), code: 486, reason: "Busy Here",
			logs: []string{failed486},
			acc:  []string{"INVITE|a1|b2|c1@192.0.2.10|486|Busy Here|" + when}},
		{name: "486 failed flag without log or db flag", method: "INVITE", flags: flags(3), code: 486, reason: "Busy Here"},
		{name: "486 missed and failed", method: "INVITE", flags: flags(1, 2, 3), code: 486, reason: "Busy Here",
			logs:   []string{missed486, failed486},
			acc:    []string{"INVITE|a1|b2|c1@192.0.2.10|486|Busy Here|" + when},
			missed: []string{"INVITE|a1|b2|c1@192.0.2.10|486|Busy Here|" + when}},
		{name: "failed_filter", cfg: func(c *Config) { c.FailedFilter = "486,408" },
			method: "INVITE", flags: flags(1, 3), code: 486, reason: "Busy Here"},
		{name: "missed and log flag are the same flag", cfg: func(c *Config) { c.LogMissedFlag = 1; c.DBMissedFlag = -1 },
			method: "INVITE", flags: flags(1, 3), code: 486, reason: "Busy Here",
			logs: []string{missed486}},
		{name: "missed only for INVITE", method: "MESSAGE", flags: flags(2), code: 404, reason: "Not Found"},
		{name: "200 to MESSAGE", method: "MESSAGE", flags: flags(1), code: 202, reason: "Accepted",
			logs: []string{"ACC: transaction answered: timestamp=1700000000;method=MESSAGE;from_tag=a1;to_tag=b2;call_id=c1@192.0.2.10;code=202;reason=Accepted;src_user=alice;src_ip=192.0.2.10;dst_user=bob"},
			acc:  []string{"MESSAGE|a1|b2|c1@192.0.2.10|202|Accepted|" + when}},
		{name: "CANCEL skipped", method: "CANCEL", flags: flags(1), code: 200, reason: "OK"},
		{name: "CANCEL with report_cancels", cfg: func(c *Config) { c.ReportCancels = 1; c.LogExtra = "" },
			method: "CANCEL", flags: flags(1), code: 200, reason: "OK",
			logs: []string{"ACC: transaction answered: timestamp=1700000000;method=CANCEL;from_tag=a1;to_tag=b2;call_id=c1@192.0.2.10;code=200;reason=OK"},
			acc:  []string{"CANCEL|a1|b2|c1@192.0.2.10|200|OK|" + when}},
		{name: "empty reason takes the standard phrase", method: "INVITE", flags: flags(2), code: 408,
			logs:   []string{strings.ReplaceAll(strings.ReplaceAll(missed486, "486", "408"), "Busy Here", "Request Timeout")},
			missed: []string{"INVITE|a1|b2|c1@192.0.2.10|408|Request Timeout|" + when}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseCfg()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			e := setup(t, cfg, true)
			req := request(tc.method, "")
			e.m.OnFinal(e.c, req, tc.flags, tc.code, tc.reason, "b2")
			if got := e.lines(t); strings.Join(got, "\n") != strings.Join(tc.logs, "\n") {
				t.Errorf("log:\n got %q\nwant %q", got, tc.logs)
			}
			if got := e.rows(t, "acc"); strings.Join(got, "\n") != strings.Join(tc.acc, "\n") {
				t.Errorf("acc rows:\n got %q\nwant %q", got, tc.acc)
			}
			if got := e.rows(t, "missed_calls"); strings.Join(got, "\n") != strings.Join(tc.missed, "\n") {
				t.Errorf("missed_calls rows:\n got %q\nwant %q", got, tc.missed)
			}
			if e.c.Msg == req {
				t.Error("the caller's context was changed")
			}
		})
	}
}

func TestLogLevelAndNoContext(t *testing.T) {
	var buf bytes.Buffer
	cfg := baseCfg()
	cfg.LogExtra = ""
	m, err := New(cfg, WithLogger(zerolog.New(&buf)), WithClock(func() time.Time { return time.Unix(ts, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	m.OnFinal(nil, request("INVITE", ""), flags(1), 200, "OK", "")
	out := buf.String()
	if !strings.Contains(out, `"level":"info"`) || !strings.Contains(out, `"klevel":"notice"`) ||
		!strings.Contains(out, "to_tag=;call_id=") {
		t.Fatalf("log: %s", out)
	}
}

func TestContextWithoutWorker(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = "v=$var(x);u=$fU"
	e := setup(t, cfg, false)
	req := request("INVITE", "")
	// as tm calls the final hook: the request as message, no worker
	c := &kemi.Ctx{Msg: req, Log: e.c.Log, BranchIdx: -1}
	e.m.OnFinal(c, req, flags(1), 200, "OK", "b2")
	if got := e.lines(t); len(got) != 1 || !strings.HasSuffix(got[0], ";v=;u=alice") && !strings.HasSuffix(got[0], ";v=0;u=alice") {
		t.Fatalf("log %q", got)
	}
	if c.Worker != nil {
		t.Error("caller's context changed")
	}
}

func TestFailureThenFinalReportsMissedOnce(t *testing.T) {
	e := setup(t, baseCfg(), true)
	req := request("INVITE", "")
	f := flags(1, 2)
	f = e.m.OnFailure(e.c, req, f, 408, "Request Timeout", "")
	if f != flags(1) {
		t.Fatalf("flags after OnFailure = %b, want missed flag cleared", f)
	}
	// failure route does not set the flag again: the final 480 is not missed again
	e.m.OnFinal(e.c, req, f, 480, "Temporarily Unavailable", "z9")
	if got := e.rows(t, "missed_calls"); len(got) != 1 || !strings.HasPrefix(got[0], "INVITE|a1||c1@192.0.2.10|408|Request Timeout|") {
		t.Fatalf("missed rows %q", got)
	}
	// the script sets it again for the next attempt
	f = e.m.OnFailure(e.c, req, f|flags(2), 486, "Busy Here", "x1")
	if got := e.rows(t, "missed_calls"); len(got) != 2 || !strings.HasPrefix(got[1], "INVITE|a1|x1|c1@192.0.2.10|486|") {
		t.Fatalf("missed rows %q", got)
	}
	if f != flags(1) {
		t.Fatalf("flags = %b", f)
	}
	if got := e.m.OnFailure(e.c, request("BYE", ""), flags(2), 486, "", ""); got != flags(2) {
		t.Fatalf("OnFailure on BYE changed flags: %b", got)
	}
}

func TestEarlyMediaAndACK(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	cfg.EarlyMedia = 1
	cfg.ReportAck = 1
	e := setup(t, cfg, true)
	req := request("INVITE", "")
	e.m.OnProvisional(e.c, req, flags(1), 183, "Session Progress", "b2", false) // no body
	e.m.OnProvisional(e.c, req, flags(1), 183, "Session Progress", "b2", true)
	e.m.OnProvisional(e.c, req, 0, 183, "Session Progress", "b2", true) // no flag
	ack := request("ACK", "")
	ack.Req.To().Params.Add("tag", "b2")
	e.m.OnACK(e.c, req, ack, flags(1), 200)
	want := []string{
		"ACC: transaction answered: timestamp=1700000000;method=INVITE;from_tag=a1;to_tag=b2;call_id=c1@192.0.2.10;code=183;reason=Session Progress",
		"ACC: request acknowledged: timestamp=1700000000;method=ACK;from_tag=a1;to_tag=b2;call_id=c1@192.0.2.10;code=200;reason=OK",
	}
	if got := e.lines(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n got %q\nwant %q", got, want)
	}
	if got := e.rows(t, "acc"); len(got) != 2 {
		t.Fatalf("acc rows %q", got)
	}

	cfg.EarlyMedia, cfg.ReportAck = 0, 0
	e = setup(t, cfg, false)
	e.m.OnProvisional(e.c, req, flags(1), 183, "Session Progress", "b2", true)
	e.m.OnACK(e.c, req, ack, flags(1), 200)
	if got := e.lines(t); len(got) != 0 {
		t.Fatalf("logged without early_media/report_ack: %q", got)
	}
}

func TestFinalHookAdapter(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	e := setup(t, cfg, false)
	req := request("INVITE", "")
	req.Flags = flags(1)
	res := sip.NewResponseFromRequest(req.Req, 200, "OK", nil)
	res.To().Params.Add("tag", "r9")
	e.m.FinalHook(e.c, req, 200, "OK", res)
	if got := e.lines(t); len(got) != 1 || !strings.Contains(got[0], ";to_tag=r9;") {
		t.Fatalf("log %q", got)
	}
}

func TestDetectDirection(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = ""
	cfg.DetectDirection = 1
	e := setup(t, cfg, false)
	// BYE from the callee: the Route's ftag is the caller's tag, not this From tag
	up := request("BYE", "Route: <sip:192.0.2.1;lr;ftag=zz>\n")
	e.m.OnFinal(e.c, up, flags(1), 200, "OK", "b2")
	down := request("BYE", "Route: <sip:192.0.2.1;lr;ftag=a1>\n")
	e.m.OnFinal(e.c, down, flags(1), 200, "OK", "b2")
	got := e.lines(t)
	if len(got) != 2 || !strings.Contains(got[0], "from_tag=b2;to_tag=a1") || !strings.Contains(got[1], "from_tag=a1;to_tag=b2") {
		t.Fatalf("log %q", got)
	}
}

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...string) int {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name == name {
			vs := make([]val.Value, len(args))
			for i, a := range args {
				vs[i] = val.OfStr(a)
			}
			if len(vs) != len(e.Params) {
				t.Fatalf("%s: %d args, want %d", name, len(vs), len(e.Params))
			}
			return int(e.Fn(c, vs).I)
		}
	}
	t.Fatalf("no export %s", name)
	return 0
}

func TestKEMI(t *testing.T) {
	cfg := baseCfg()
	cfg.LogExtra = "ua=$hdr(User-Agent)"
	e := setup(t, cfg, true)
	e.c.Msg = request("INVITE", "User-Agent: phone\n")
	tests := []struct {
		fn   string
		args []string
		want int
		log  string
		row  string
	}{
		{fn: "acc_log_request", args: []string{"200 Call started"}, want: 1,
			log: "ACC: request accounted: timestamp=1700000000;method=INVITE;from_tag=a1;to_tag=;call_id=c1@192.0.2.10;code=200;reason=Call started;ua=phone"},
		{fn: "acc_log_request", args: []string{"just text"}, want: 1,
			log: "ACC: request accounted: timestamp=1700000000;method=INVITE;from_tag=a1;to_tag=;call_id=c1@192.0.2.10;code=;reason=just text;ua=phone"},
		{fn: "acc_log_request", args: []string{"$ru"}, want: -1},
		{fn: "acc_log_request", args: []string{""}, want: -1},
		{fn: "acc_db_request", args: []string{"404 Gone", "acc"}, want: 1,
			row: "acc:INVITE|a1||c1@192.0.2.10|404|Gone|" + when},
		{fn: "acc_db_request", args: []string{"480", "missed_calls"}, want: 1,
			row: "missed_calls:INVITE|a1||c1@192.0.2.10|480||" + when},
		{fn: "acc_db_request", args: []string{"404 Gone", "no_such_table"}, want: -1},
		{fn: "acc_db_request", args: []string{"404 Gone", "acc; DROP TABLE acc"}, want: -1},
		{fn: "acc_db_request", args: []string{"404 Gone", ""}, want: -1},
		{fn: "acc_request", args: []string{"603 Declined", "acc"}, want: 1,
			log: "ACC: request accounted: timestamp=1700000000;method=INVITE;from_tag=a1;to_tag=;call_id=c1@192.0.2.10;code=603;reason=Declined;ua=phone",
			row: "acc:INVITE|a1||c1@192.0.2.10|603|Declined|" + when},
	}
	for _, tc := range tests {
		t.Run(tc.fn+" "+strings.Join(tc.args, ","), func(t *testing.T) {
			e.log.Reset()
			accBefore, mcBefore := len(e.rows(t, "acc")), len(e.rows(t, "missed_calls"))
			if got := call(t, e.m, e.c, tc.fn, tc.args...); got != tc.want {
				t.Fatalf("%s = %d, want %d (log %s)", tc.fn, got, tc.want, e.log.String())
			}
			var msgs []string
			for _, l := range e.lines(t) {
				if strings.HasPrefix(l, "ACC:") {
					msgs = append(msgs, l)
				}
			}
			if tc.log == "" && len(msgs) != 0 || tc.log != "" && (len(msgs) != 1 || msgs[0] != tc.log) {
				t.Errorf("log %q, want %q", msgs, tc.log)
			}
			acc, mc := e.rows(t, "acc"), e.rows(t, "missed_calls")
			switch {
			case tc.row == "":
				if len(acc) != accBefore || len(mc) != mcBefore {
					t.Errorf("unexpected rows")
				}
			case strings.HasPrefix(tc.row, "acc:"):
				if len(acc) != accBefore+1 || acc[len(acc)-1] != tc.row[4:] {
					t.Errorf("acc rows %q, want last %q", acc, tc.row[4:])
				}
			default:
				if len(mc) != mcBefore+1 || mc[len(mc)-1] != tc.row[13:] {
					t.Errorf("missed rows %q, want last %q", mc, tc.row[13:])
				}
			}
		})
	}
}

func TestKEMIWithoutDB(t *testing.T) {
	e := setup(t, baseCfg(), false)
	e.c.Msg = request("INVITE", "")
	if got := call(t, e.m, e.c, "acc_db_request", "200 OK", "acc"); got != -1 {
		t.Fatalf("acc_db_request without db = %d", got)
	}
	if got := call(t, e.m, e.c, "acc_request", "200 OK", "acc"); got != 1 {
		t.Fatalf("acc_request without db = %d", got)
	}
	// db_flag is ignored without db_url, the log still works
	e.log.Reset()
	e.m.OnFinal(e.c, request("INVITE", ""), flags(1, 2), 486, "Busy Here", "")
	if got := e.lines(t); len(got) != 1 || !strings.HasPrefix(got[0], TextMissed) {
		t.Fatalf("log %q", got)
	}
}

func TestDBExtras(t *testing.T) {
	for _, nullable := range []int{0, 1} {
		cfg := baseCfg()
		cfg.LogExtra = ""
		cfg.DBExtra = "src_user=$fU;src_ip=$si;dst_ouser=$tU;ua=$hdr(User-Agent)"
		cfg.AccExtraNullable = nullable
		e := setup(t, cfg, true)
		if err := e.m.EnsureExtraColumns(); err != nil {
			t.Fatal(err)
		}
		if err := e.m.EnsureExtraColumns(); err != nil { // idempotent
			t.Fatal(err)
		}
		e.m.OnFinal(e.c, request("INVITE", ""), flags(1, 2), 487, "Request Terminated", "")
		null := ""
		if nullable == 1 {
			null = "NULL"
		}
		want := "INVITE|a1||c1@192.0.2.10|487|Request Terminated|" + when + "|alice|192.0.2.10|bob|" + null
		got := e.rows(t, "missed_calls", "src_user", "src_ip", "dst_ouser", "ua")
		if len(got) != 1 || got[0] != want {
			t.Fatalf("nullable=%d rows %q, want %q", nullable, got, want)
		}
	}
}

func TestSchemaRegistered(t *testing.T) {
	want := map[string]int{"acc": 5, "missed_calls": 4}
	for _, tb := range db.Tables() {
		v, ok := want[tb.Name]
		if !ok {
			continue
		}
		if tb.Version != v {
			t.Errorf("%s version %d, want %d", tb.Name, tb.Version, v)
		}
		for _, d := range []db.Dialect{db.SQLite, db.Postgres, db.MySQL} {
			if len(tb.Create[d]) != 2 || !strings.Contains(tb.Create[d][0], "sip_reason") {
				t.Errorf("%s %s schema: %q", tb.Name, d, tb.Create[d])
			}
		}
		delete(want, tb.Name)
	}
	if len(want) != 0 {
		t.Fatalf("not registered: %v", want)
	}
	e := setup(t, DefaultConfig(), true)
	for name, v := range map[string]int{"acc": 5, "missed_calls": 4} {
		got, err := e.db.TableVersion(name)
		if err != nil || got != v {
			t.Errorf("%s version row %d (%v)", name, got, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"flag out of range", func(c *Config) { c.LogFlag = 32 }},
		{"negative flag", func(c *Config) { c.DBFlag = -2 }},
		{"failed_filter two digits", func(c *Config) { c.FailedFilter = "48" }},
		{"failed_filter below 300", func(c *Config) { c.FailedFilter = "200" }},
		{"failed_filter trailing comma", func(c *Config) { c.FailedFilter = "408," }},
		{"extra without pv", func(c *Config) { c.LogExtra = "a=b" }},
		{"extra without name", func(c *Config) { c.LogExtra = "=$fU" }},
		{"extra trailing separator", func(c *Config) { c.LogExtra = "a=$fU;" }},
		{"bad db column", func(c *Config) { c.DBExtra = "a-b=$fU" }},
		{"bad core column", func(c *Config) { c.AccCallidColumn = "call id" }},
		{"time_mode", func(c *Config) { c.TimeMode = 1 }},
		{"bad db_url", func(c *Config) { c.DBURL = "nope" }},
	}
	for _, tc := range tests {
		cfg := DefaultConfig()
		tc.mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	ex, err := parseExtras(" a = $fU ; b=$(hdr(X;y)[0]);c=$si")
	if err != nil || len(ex) != 3 || ex[0] != (extra{"a", "$fU"}) || ex[1].pv != "$(hdr(X;y)[0])" || ex[2].name != "c" {
		t.Fatalf("parseExtras: %+v %v", ex, err)
	}
}

func TestOwnDBOpenedFromURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "own.db")
	cfg := baseCfg()
	cfg.LogExtra = ""
	cfg.DBURL = "sqlite://" + path
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DB().Init(); err != nil {
		t.Fatal(err)
	}
	c := &kemi.Ctx{Msg: request("INVITE", ""), Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
	const n = 300
	for i := 0; i < n; i++ {
		if call(t, m, c, "acc_db_request", "200 OK", "acc") != 1 {
			t.Fatal("insert failed")
		}
	}
	// Close writes what is queued before closing its database
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(cfg.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got int
	if err := d.QueryRow("SELECT count(*) FROM acc").Scan(&got); err != nil || got != n {
		t.Fatalf("%d rows after Close (%v), want %d", got, err, n)
	}
	if st := m.Stats(); st.Written != n || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExportsMatchCatalog(t *testing.T) {
	m, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skipf("catalog not available: %v", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= 4 && cols[0] == "acc" {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range m.Exports() {
		if e.Module != "acc" {
			t.Errorf("%s under module %q", e.Name, e.Module)
		}
		var ps []string
		for _, p := range e.Params {
			ps = append(ps, p.String())
		}
		if len(ps) == 0 {
			ps = []string{"none"}
		}
		got[e.Name] = strings.Join(ps, ",") + " -> " + e.Ret.String()
	}
	for n, s := range want {
		if got[n] != s {
			t.Errorf("acc.%s: got %q, catalog %q", n, got[n], s)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("acc.%s not in catalog", n)
		}
	}
	kemi.NewTable().Register(m.Exports()...)
}
