package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/htable"
	"github.com/rs/zerolog"
)

var _ HTableAPI = (*htable.Module)(nil)

// js calls a method in-process and renders its result as JSON.
func js(t *testing.T, s *Server, method string, params ...any) (string, *Error) {
	t.Helper()
	res, err := s.Call(context.Background(), method, params...)
	if err != nil {
		return "", toError(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("%s: result not JSON: %v", method, err)
	}
	return string(b), nil
}

func mustJS(t *testing.T, s *Server, method string, params ...any) string {
	t.Helper()
	out, e := js(t, s, method, params...)
	if e != nil {
		t.Fatalf("%s %v: %v", method, params, e)
	}
	return out
}

func wantErr(t *testing.T, s *Server, code int, msg string, method string, params ...any) {
	t.Helper()
	_, e := js(t, s, method, params...)
	if e == nil || e.Code != code || e.Message != msg {
		t.Errorf("%s %v: error %+v, want %d %q", method, params, e, code, msg)
	}
}

func TestCoreMethods(t *testing.T) {
	s := New(Config{}, zerolog.Nop())
	started := time.Now().Add(-90 * time.Second)
	RegisterCore(s, "0.1.0", started, func() []any {
		return []any{Proc{IDX: 0, PID: 11, DSC: "main process"}, Proc{IDX: 1, PID: 11, DSC: "python worker 0"}}
	})
	if v := mustJS(t, s, "core.version"); !strings.HasPrefix(v, `"kemigo 0.1.0 (go`) {
		t.Errorf("core.version %s", v)
	}
	var up struct {
		Now     string `json:"now"`
		UpSince string `json:"up_since"`
		Uptime  int64  `json:"uptime"`
	}
	json.Unmarshal([]byte(mustJS(t, s, "core.uptime")), &up)
	if up.Uptime < 89 || up.Uptime > 100 || up.Now == "" || up.UpSince != started.Format(time.ANSIC) {
		t.Errorf("core.uptime %+v", up)
	}
	if v := mustJS(t, s, "core.psx"); v != `[{"IDX":0,"PID":11,"DSC":"main process"},{"IDX":1,"PID":11,"DSC":"python worker 0"}]` {
		t.Errorf("core.psx %s", v)
	}
	if v := mustJS(t, s, "core.ps"); v != `[11,"main process",11,"python worker 0"]` {
		t.Errorf("core.ps %s", v)
	}
	if v := mustJS(t, s, "core.echo", "a", int64(1)); v != `["a",1]` {
		t.Errorf("core.echo %s", v)
	}
	if v := mustJS(t, s, "core.echo"); v != `[]` {
		t.Errorf("core.echo without params %s", v)
	}
	s2 := New(Config{}, zerolog.Nop())
	RegisterCore(s2, "0.1.0", started, nil)
	if v := mustJS(t, s2, "core.psx"); !strings.Contains(v, fmt.Sprintf(`"PID":%d`, os.Getpid())) {
		t.Errorf("default core.psx %s", v)
	}
}

func TestHTableMethods(t *testing.T) {
	ht, err := htable.New(htable.Config{HTable: []string{"ipban=>size=8;autoexpire=300;", "users=>size=2;"}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{}, zerolog.Nop())
	RegisterHTable(s, ht)

	if v := mustJS(t, s, "htable.sets", "users", "alice", "sip:alice@x"); v != `"Ok. Key set to new value."` {
		t.Errorf("sets %s", v)
	}
	mustJS(t, s, "htable.seti", "users", int64(10), int64(7)) // a number key is its text
	mustJS(t, s, "htable.seti", "users", "n", "12")           // a numeric string is an int
	mustJS(t, s, "htable.sets", "users", int64(5), int64(6))
	if v := mustJS(t, s, "htable.get", "users", "alice"); v != `{"item":{"expire":"NEVER","flags":2,"name":"alice","value":"sip:alice@x"}}` {
		t.Errorf("get str %s", v)
	}
	if v := mustJS(t, s, "htable.get", "users", "10"); v != `{"item":{"expire":"NEVER","flags":0,"name":"10","value":7}}` {
		t.Errorf("get int %s", v)
	}
	if v := mustJS(t, s, "htable.get", "users", "5"); !strings.Contains(v, `"value":"6"`) {
		t.Errorf("sets with numbers %s", v)
	}
	wantErr(t, s, 500, "Key name doesn't exist in htable.", "htable.get", "users", "bob")
	wantErr(t, s, 500, "No such htable", "htable.get", "nope", "bob")
	wantErr(t, s, 500, "Not enough parameters (htable name and key name)", "htable.get", "users")
	wantErr(t, s, 500, "Not enough parameters (htable name, key name and value)", "htable.seti", "users", "k", "x")

	// Expiry: the table's autoexpire, and setxs/setex.
	mustJS(t, s, "htable.sets", "ipban", "1.2.3.4", "1")
	var g struct {
		Item struct{ Expire string } `json:"item"`
	}
	json.Unmarshal([]byte(mustJS(t, s, "htable.get", "ipban", "1.2.3.4")), &g)
	if _, err := time.ParseInLocation("2006-01-02 15:04:05", g.Item.Expire, time.Local); err != nil {
		t.Errorf("expire %q: %v", g.Item.Expire, err)
	}
	mustJS(t, s, "htable.setxi", "users", "tmp", int64(3), int64(60))
	mustJS(t, s, "htable.setxs", "users", "tmps", "v", int64(60))
	if v := mustJS(t, s, "htable.setex", "users", "alice", int64(100)); v != `"Ok"` {
		t.Errorf("setex %s", v)
	}
	json.Unmarshal([]byte(mustJS(t, s, "htable.get", "users", "alice")), &g)
	if g.Item.Expire == "NEVER" {
		t.Error("setex did not set an expiry")
	}
	wantErr(t, s, 500, "Failed to set the item", "htable.setxs", "nope", "k", "v", int64(1))

	if v := mustJS(t, s, "htable.dump", "users"); !strings.HasPrefix(v, `[{"entry":0,"size":6,"slot":[{"name":"10","type":"int","value":7},{"name":"5","type":"str","value":"6"},{"name":"alice"`) {
		t.Errorf("dump %s", v)
	}
	if v := mustJS(t, s, "htable.delete", "users", "alice"); v != `"Ok. Key deleted."` {
		t.Errorf("delete %s", v)
	}
	wantErr(t, s, 404, "Key not found in htable.", "htable.delete", "users", "alice")
	if v := mustJS(t, s, "htable.flush", "users"); v != `"Ok. Htable flushed."` {
		t.Errorf("flush %s", v)
	}
	if v := mustJS(t, s, "htable.dump", "users"); v != `[]` {
		t.Errorf("dump after flush %s", v)
	}
	wantErr(t, s, 500, "No htable name given", "htable.dump")
	if v := mustJS(t, s, "htable.listTables"); v != `[{"dbmode":0,"dbtable":"","dmqreplicate":0,"expire":300,"name":"ipban","size":256,"updateexpire":1},{"dbmode":0,"dbtable":"","dmqreplicate":0,"expire":0,"name":"users","size":4,"updateexpire":1}]` {
		t.Errorf("listTables %s", v)
	}
}

// scriptErr has the shape of pybridge.ScriptError.
type scriptErr struct {
	Text string
	File string
	Line int
}

func (e *scriptErr) Error() string {
	return fmt.Sprintf("%s:%d: SyntaxError: invalid syntax", e.File, e.Line)
}

func TestAppPythonMethods(t *testing.T) {
	s := New(Config{}, zerolog.Nop())
	var fail error
	calls := 0
	tab := kemi.NewTable()
	tab.Register(kemi.Export{Module: "sl", Name: "send_reply", Params: kemi.P("is"), Ret: kemi.RInt},
		kemi.Export{Name: "is_myself_srcip", Ret: kemi.RBool})
	a := RegisterAppPython(s, func() error { calls++; return fail }, func() any { return KEMIAPIList(tab) })

	if v := mustJS(t, s, "app_python.reload"); v != `{"new":1,"old":0}` {
		t.Errorf("reload %s", v)
	}
	if v := mustJS(t, s, "app_python3.reload"); v != `{"new":2,"old":1}` {
		t.Errorf("reload alias %s", v)
	}
	fail = fmt.Errorf("reload: %w", &scriptErr{Text: "Traceback...\nSyntaxError: invalid syntax", File: "/etc/kemigo/kemi.py", Line: 12})
	_, e := js(t, s, "app_python.reload")
	if e == nil || e.Code != 500 || !strings.Contains(e.Message, "/etc/kemigo/kemi.py:12") {
		t.Fatalf("failed reload: %+v", e)
	}
	d, _ := json.Marshal(e.Data)
	if string(d) != `{"file":"/etc/kemigo/kemi.py","line":12,"traceback":"Traceback...\nSyntaxError: invalid syntax"}` {
		t.Errorf("failed reload data %s", d)
	}
	if a.Version() != 2 || calls != 3 {
		t.Errorf("version %d after a failed reload, %d calls", a.Version(), calls)
	}
	fail = errors.New("stat kemi.py: no such file")
	_, e = js(t, s, "app_python.reload")
	if e == nil || e.Message != "Reload failed: stat kemi.py: no such file" || e.Data != nil {
		t.Errorf("plain failure: %+v", e)
	}
	fail = nil
	if old, nv, err := a.Reload(); old != 2 || nv != 3 || err != nil {
		t.Errorf("Reload() = %d %d %v", old, nv, err)
	}
	if v := mustJS(t, s, "app_python.api_list"); v != `{"methods":[{"func":{"module":"sl","name":"send_reply","params":"int, str","ret":"int"}},{"func":{"module":"","name":"is_myself_srcip","params":"none","ret":"bool"}}],"msize":2}` {
		t.Errorf("api_list %s", v)
	}
}

func TestStatsMethods(t *testing.T) {
	s := New(Config{}, zerolog.Nop())
	RegisterStats(s, func() map[string]any {
		m := map[string]any{"core:rcv_requests": uint64(10), "core:rcv_replies": 4}
		AddStats(m, "sl", map[string]uint64{"200_replies": 3, "sent_replies": 5})
		return m
	})
	if v := mustJS(t, s, "stats.get_statistics", "all"); v != `["core:rcv_replies = 4","core:rcv_requests = 10","sl:200_replies = 3","sl:sent_replies = 5"]` {
		t.Errorf("all %s", v)
	}
	if v := mustJS(t, s, "stats.get_statistics", "sl:", "rcv_requests"); v != `["sl:200_replies = 3","sl:sent_replies = 5","core:rcv_requests = 10"]` {
		t.Errorf("group and name (in parameter order) %s", v)
	}
	if v := mustJS(t, s, "stats.get_statistics", "sl:200_replies"); v != `["sl:200_replies = 3"]` {
		t.Errorf("one %s", v)
	}
	if v := mustJS(t, s, "stats.get_statistics", "nope"); v != `[]` {
		t.Errorf("unknown %s", v)
	}
	wantErr(t, s, 400, "Please provide which stats to retrieve", "stats.get_statistics")
	if v := mustJS(t, s, "stats.fetch", "core:"); v != `{"core.rcv_replies":"4","core.rcv_requests":"10"}` {
		t.Errorf("fetch %s", v)
	}
	if v := mustJS(t, s, "stats.fetchn", "sl.200_replies"); v != `{"sl.200_replies":3}` {
		t.Errorf("fetchn %s", v)
	}
}

func TestOtherModuleMethods(t *testing.T) {
	s := New(Config{}, zerolog.Nop())
	RegisterTM(s, func() TMStats { return TMStats{Current: 2, Total: 9, C2xx: 5} })
	if v := mustJS(t, s, "tm.stats"); !strings.Contains(v, `"current":2`) || !strings.Contains(v, `"2xx":5`) {
		t.Errorf("tm.stats %s", v)
	}
	var reloadErr error
	RegisterPermissions(s, func() error { return reloadErr }, nil)
	if v := mustJS(t, s, "permissions.addressReload"); v != `"Reload OK"` {
		t.Errorf("addressReload %s", v)
	}
	reloadErr = errors.New("db down")
	wantErr(t, s, 500, "Reload failed.", "permissions.addressReload")

	now := time.Now().Unix()
	rec := ULRecord{AoR: "alice@example.com", HashID: 77, Contacts: []ULContact{
		{Address: "sip:alice@10.0.0.1:5060", Expires: now + 100, Q: 1, CallID: "c1", CSeq: 3},
		{Address: "sip:alice@10.0.0.2", Expires: 0},
	}}
	RegisterUL(s, func() []ULDomain { return []ULDomain{{Name: "location", Size: 1024, Records: []ULRecord{rec}}} },
		func(table, aor string) (ULRecord, bool, error) {
			if table != "location" {
				return ULRecord{}, false, errors.New("no table")
			}
			return rec, aor == rec.AoR, nil
		})
	v := mustJS(t, s, "ul.dump")
	for _, want := range []string{`{"Domains":[{"Domain":{"AoRs":[{"Info":{"AoR":"alice@example.com","Contacts":[{"Contact":{"Address":"sip:alice@10.0.0.1:5060"`,
		`"Expires":"permanent"`, `"User-Agent":"[not set]"`, `"Stats":{"Max-Slots":0,"Records":1}`, `"HashID":77`} {
		if !strings.Contains(v, want) {
			t.Errorf("ul.dump lacks %s: %s", want, v)
		}
	}
	if v := mustJS(t, s, "ul.dump", "brief"); v != `{"Domains":[{"Domain":{"AoRs":[{"AoR":"alice@example.com"}],"Domain":"location","Size":1024,"Stats":{"Max-Slots":0,"Records":1}}}]}` {
		t.Errorf("ul.dump brief %s", v)
	}
	if v := mustJS(t, s, "ul.lookup", "location", "alice@example.com"); !strings.HasPrefix(v, `{"AoR":"alice@example.com","Contacts":[{"Contact":`) {
		t.Errorf("ul.lookup %s", v)
	}
	wantErr(t, s, 500, "AOR not found in location table", "ul.lookup", "location", "bob@example.com")
	wantErr(t, s, 500, "Domain table not found", "ul.lookup", "nope", "bob@example.com")
}
