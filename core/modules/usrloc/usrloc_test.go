package usrloc

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/kemigo/kemigo/core/db"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Unix(1700000000, 0)} }

func mustNew(t *testing.T, cfg Config, clk *clock) *Module {
	t.Helper()
	m, err := New(cfg, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func insert(t *testing.T, d *Domain, aor string, cs ...Contact) {
	t.Helper()
	if err := d.Update(aor, func(r *Record) error {
		for _, c := range cs {
			if _, err := r.Insert(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func uris(cs []Contact) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.URI)
	}
	return strings.Join(out, " ")
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name     string
		descTime int
		contacts []Contact // inserted in this order
		want     string
	}{
		{"q first", 0, []Contact{{URI: "sip:a", Q: 500}, {URI: "sip:b", Q: 1000}, {URI: "sip:c", Q: 100}}, "sip:b sip:a sip:c"},
		{"same q: registration order (as Kamailio)", 0, []Contact{{URI: "sip:a", Q: 500}, {URI: "sip:b", Q: 500}}, "sip:a sip:b"},
		{"no q after q=0", 0, []Contact{{URI: "sip:a", Q: QUnspecified}, {URI: "sip:b", Q: 0}}, "sip:b sip:a"},
		{"desc_time_order", 1, []Contact{{URI: "sip:a", Q: 1000}, {URI: "sip:b", Q: 100}}, "sip:b sip:a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DescTimeOrder = tt.descTime
			m := mustNew(t, cfg, newClock())
			d := m.Domain("location")
			for _, c := range tt.contacts {
				c.Expires = m.Now() + 100
				insert(t, d, "alice", c)
			}
			cs, ok := d.Get("alice")
			if !ok || uris(cs) != tt.want {
				t.Errorf("order %q, want %q", uris(cs), tt.want)
			}
		})
	}
	// a refresh makes a contact the most recent of its q
	m := mustNew(t, DefaultConfig(), newClock())
	d := m.Domain("location")
	insert(t, d, "bob", Contact{URI: "sip:a", Q: 500}, Contact{URI: "sip:b", Q: 500})
	d.Update("bob", func(r *Record) error {
		for _, c := range r.Contacts() {
			if c.URI == "sip:a" {
				n := *c
				n.CSeq++
				return r.Set(c, n)
			}
		}
		return nil
	})
	if cs, _ := d.Get("bob"); uris(cs) != "sip:a sip:b" {
		t.Errorf("after refresh %q", uris(cs))
	}
}

func TestFind(t *testing.T) {
	clk := newClock()
	now := clk.now().Unix()
	stored := Contact{URI: "sip:a@1.2.3.4", CallID: "cid", CSeq: 10, LastModified: now, Path: "<sip:p;lr>"}
	tests := []struct {
		name    string
		mode    int
		uri     string
		callid  string
		path    string
		cseq    int
		age     time.Duration
		wantRes int
	}{
		{"same call, higher cseq", MatchContact, "sip:a@1.2.3.4", "cid", "", 11, 0, 0},
		{"same call, lower cseq", MatchContact, "sip:a@1.2.3.4", "cid", "", 9, 0, -1},
		{"retransmission", MatchContact, "sip:a@1.2.3.4", "cid", "", 10, 0, -2},
		{"same cseq after cseq_delay", MatchContact, "sip:a@1.2.3.4", "cid", "", 10, 30 * time.Second, -1},
		{"other call-id, lower cseq", MatchContact, "sip:a@1.2.3.4", "other", "", 1, 0, 0},
		{"unknown contact", MatchContact, "sip:b@1.2.3.4", "cid", "", 11, 0, 1},
		{"contact+callid: other call-id", MatchContactCallID, "sip:a@1.2.3.4", "other", "", 11, 0, 1},
		{"callid only", MatchCallIDOnly, "sip:zzz", "cid", "", 11, 0, 0},
		{"contact+path mismatch", MatchContactPath, "sip:a@1.2.3.4", "cid", "<sip:q;lr>", 11, 0, 1},
		{"contact+path match", MatchContactPath, "sip:a@1.2.3.4", "cid", "<sip:p;lr>", 11, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MatchingMode = tt.mode
			c := newClock()
			m := mustNew(t, cfg, c)
			d := m.Domain("location")
			insert(t, d, "alice", stored)
			c.add(tt.age)
			d.Update("alice", func(r *Record) error {
				_, res := r.Find(tt.uri, tt.callid, tt.path, tt.path != "", tt.cseq)
				if res != tt.wantRes {
					t.Errorf("Find = %d, want %d", res, tt.wantRes)
				}
				return nil
			})
		})
	}
	// by instance (angle brackets ignored), reg-id must match
	m := mustNew(t, DefaultConfig(), clk)
	d := m.Domain("location")
	insert(t, d, "alice", Contact{URI: "sip:x", Instance: "<urn:uuid:1>", RegID: 1})
	d.Update("alice", func(r *Record) error {
		if c, res := r.FindByInstance("sip:y", "c", "", false, 1, "urn:uuid:1", 1); res != 0 || c.URI != "sip:x" {
			t.Errorf("by instance: %v %d", c, res)
		}
		if _, res := r.FindByInstance("sip:x", "c", "", false, 1, "<urn:uuid:1>", 2); res != 1 {
			t.Errorf("other reg-id: %d", res)
		}
		return nil
	})
}

func TestExpiryTimer(t *testing.T) {
	clk := newClock()
	m := mustNew(t, DefaultConfig(), clk)
	var expired []string
	m.SetExpiredHook(func(c Contact) { expired = append(expired, c.URI) })
	d := m.Domain("location")
	now := m.Now()
	insert(t, d, "alice", Contact{URI: "sip:short", Expires: now + 60}, Contact{URI: "sip:long", Expires: now + 3600},
		Contact{URI: "sip:permanent", Expires: 0})
	insert(t, d, "bob", Contact{URI: "sip:bob", Expires: now + 30})

	if n := m.Timer(); n != 0 {
		t.Fatalf("timer removed %d before expiry", n)
	}
	clk.add(61 * time.Second)
	// expired but not yet swept: Get still has it, Lookup hides it
	if cs, _ := d.Get("alice"); len(cs) != 3 {
		t.Errorf("Get before sweep: %d contacts", len(cs))
	}
	if got := uris(m.Lookup("alice")); got != "sip:long sip:permanent" && got != "sip:permanent sip:long" {
		t.Errorf("Lookup = %q", got)
	}
	if n := m.Timer(); n != 2 {
		t.Errorf("timer removed %d, want 2", n)
	}
	if len(expired) != 2 {
		t.Errorf("expired hook saw %v", expired)
	}
	if _, ok := d.Get("bob"); ok {
		t.Error("empty record kept")
	}
	if cs, _ := d.Get("alice"); len(cs) != 2 {
		t.Errorf("alice has %d contacts", len(cs))
	}
	clk.add(10 * 365 * 24 * time.Hour)
	m.Timer()
	if got := uris(m.Lookup("alice")); got != "sip:permanent" {
		t.Errorf("after years: %q", got)
	}
}

func TestStartStop(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TimerInterval = 1
	m := mustNew(t, cfg, newClock())
	m.Start()
	m.Start()
	m.Stop()
	m.Stop()
}

func TestGoAPI(t *testing.T) {
	m := mustNew(t, DefaultConfig(), newClock())
	if m.Lookup("x") != nil || m.Remove("x") != ErrNotFound {
		t.Error("no location domain yet")
	}
	d := m.Domain(DefaultDomain)
	o := m.Domain("other")
	insert(t, d, "alice", Contact{URI: "sip:a", Expires: m.Now() + 10})
	insert(t, o, "bob", Contact{URI: "sip:b", Expires: m.Now() + 10})
	dump := m.Dump()
	if len(dump) != 2 || dump[0].AOR != "alice" || dump[0].Domain != "location" || dump[1].Domain != "other" {
		t.Errorf("Dump = %+v", dump)
	}
	if got := m.Lookup("alice"); len(got) != 1 || got[0].RUID == "" || got[0].AOR != "alice" || got[0].Domain != "location" {
		t.Errorf("Lookup = %+v", got)
	}
	if err := m.Remove("alice"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("alice"); err != ErrNotFound {
		t.Errorf("second Remove = %v", err)
	}
	if got := m.Domains(); strings.Join(got, ",") != "location,other" {
		t.Errorf("Domains = %v", got)
	}
	c, ok := o.ByRUID("", o.mustFirst(t, "bob").RUID)
	if !ok || c.URI != "sip:b" {
		t.Errorf("ByRUID = %v %v", c, ok)
	}
	if _, ok := o.ByRUID("alice", c.RUID); ok {
		t.Error("ByRUID found it under another AoR")
	}
}

func (d *Domain) mustFirst(t *testing.T, aor string) Contact {
	cs, ok := d.Get(aor)
	if !ok || len(cs) == 0 {
		t.Fatalf("no contact for %s", aor)
	}
	return cs[0]
}

func TestConfig(t *testing.T) {
	var got struct {
		U Config `toml:"usrloc"`
	}
	got.U = DefaultConfig()
	if _, err := toml.Decode("[usrloc]\npreload = \"location\"\nnat_bflag = 6\ndb_mode = 0\n", &got); err != nil {
		t.Fatal(err)
	}
	if len(got.U.Preload) != 1 || got.U.NATFlag() != 64 {
		t.Errorf("%+v", got.U)
	}
	if _, err := toml.Decode("[usrloc]\npreload = [\"location\", \"pbx\"]\n", &got); err != nil || len(got.U.Preload) != 2 {
		t.Errorf("%v %+v", err, got.U)
	}
	for _, bad := range []Config{{DBMode: 2}, {DBMode: 3}, {DBMode: -1}, {DBMode: 1}, {MatchingMode: 4}, {NATBFlag: 40}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	m := mustNew(t, Config{Preload: StringList{"location"}, NATBFlag: -1}, newClock())
	if _, ok := m.FindDomain("location"); !ok {
		t.Error("preload did not create the domain")
	}
	if m.NATFlag() != 0 || m.Config().TimerInterval != 60 {
		t.Errorf("defaults: %+v", m.Config())
	}
}

func TestConcurrent(t *testing.T) {
	m := mustNew(t, DefaultConfig(), newClock())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d := m.Domain("location")
				aor := "u" + string(rune('a'+i%5))
				d.Update(aor, func(r *Record) error {
					_, err := r.Insert(Contact{URI: "sip:x", Expires: m.Now() + 100, CSeq: i})
					if len(r.Contacts()) > 3 {
						r.Delete(r.Contacts()[3])
					}
					return err
				})
				d.Get(aor)
				if i%50 == 0 {
					m.Timer()
					m.Dump()
				}
			}
		}(w)
	}
	wg.Wait()
}

// ---- persistence ----

func TestSQLitePersistence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "loc.db")
	cfg := DefaultConfig()
	cfg.DBMode = 1
	cfg.DBURL = "sqlite://" + file
	cfg.UseDomain = 1
	cfg.NATBFlag = 3
	clk := newClock()
	m := mustNew(t, cfg, clk)
	d := m.Domain("location")
	now := m.Now()
	full := Contact{URI: "sip:alice@192.168.1.2:5060;transport=tcp", Received: "sip:203.0.113.7:40000;transport=tcp",
		Path: "<sip:edge.example.com;lr>", Expires: now + 3600, Q: 500, CallID: "call-1", CSeq: 7,
		CFlags: 8 | 1, UserAgent: "phone/1.0", Socket: "tcp:10.0.0.1:5060", Methods: 1 | 8 | 512,
		Instance: "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>", RegID: 1, LastModified: now, ConnID: 42}
	minimal := Contact{URI: "sip:alice@198.51.100.9", Expires: now + 60, Q: QUnspecified, CallID: "call-2", CSeq: 1,
		UserAgent: "n/a", Methods: AllMethods, LastModified: now}
	memOnly := Contact{URI: "sip:mem@x", Expires: now + 60, CallID: "c3", Flags: FlagMem, Methods: AllMethods, Q: 1000}
	insert(t, d, "alice@example.com", full, minimal, memOnly)
	insert(t, d, "gone@example.com", Contact{URI: "sip:gone@x", Expires: now + 10, CallID: "c4", Methods: AllMethods})
	insert(t, m.Domain("location"), "perm@example.com", Contact{URI: "sip:perm@x", Expires: 0, CallID: "c5", Methods: AllMethods})

	// update one contact, delete the memory-only one
	d.Update("alice@example.com", func(r *Record) error {
		for _, c := range r.Contacts() {
			switch c.URI {
			case minimal.URI:
				n := *c
				n.CSeq, n.Expires = 2, now+120
				if err := r.Set(c, n); err != nil {
					t.Error(err)
				}
			}
		}
		return nil
	})
	clk.add(20 * time.Second)
	if n := m.Timer(); n != 1 {
		t.Errorf("timer removed %d", n)
	}

	// the rows are there, in Kamailio's columns
	sdb, err := db.Open(cfg.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var n int
	sdb.QueryRow("SELECT count(*) FROM location").Scan(&n)
	if n != 3 {
		t.Errorf("%d rows, want 3 (mem-only and expired ones absent)", n)
	}
	var user, domain, exp string
	var ka, conn int
	var q float64
	if err := sdb.QueryRow("SELECT username, domain, expires, keepalive, connection_id, q FROM location WHERE callid = 'call-1'").
		Scan(&user, &domain, &exp, &ka, &conn, &q); err != nil {
		t.Fatal(err)
	}
	if user != "alice" || domain != "example.com" || ka != 1 || conn != 42 || q != 0.5 ||
		exp != time.Unix(now+3600, 0).Format("2006-01-02 15:04:05") {
		t.Errorf("row: %s %s %s ka=%d conn=%d q=%v", user, domain, exp, ka, conn, q)
	}
	var methods, socket any
	sdb.QueryRow("SELECT methods, socket FROM location WHERE callid = 'call-2'").Scan(&methods, &socket)
	if methods != nil || socket != nil {
		t.Errorf("NULL columns: methods=%v socket=%v", methods, socket)
	}
	m.Close()

	// restart: everything comes back (but the TCP connection id)
	m2 := mustNew(t, cfg, clk)
	d2 := m2.Domain("location")
	cs, ok := d2.Get("alice@example.com")
	if !ok || len(cs) != 2 {
		t.Fatalf("reloaded %d contacts", len(cs))
	}
	byURI := map[string]Contact{}
	for _, c := range cs {
		byURI[c.URI] = c
	}
	got := byURI[full.URI]
	want := full
	want.Domain, want.AOR, want.RUID, want.ConnID, want.Keepalive, want.seq = "location", "alice@example.com", got.RUID, 0, 1, got.seq
	if got != want {
		t.Errorf("reloaded\n got  %+v\n want %+v", got, want)
	}
	if got := byURI[minimal.URI]; got.CSeq != 2 || got.Expires != now+120 || got.Q != QUnspecified || got.Methods != AllMethods || got.Socket != "" {
		t.Errorf("reloaded minimal %+v", got)
	}
	if got := m2.Lookup("perm@example.com"); len(got) != 1 || got[0].Expires != 0 {
		t.Errorf("permanent contact %+v", got)
	}
	// removal is written through too
	if err := m2.Remove("alice@example.com"); err != nil {
		t.Fatal(err)
	}
	sdb.QueryRow("SELECT count(*) FROM location").Scan(&n)
	if n != 1 {
		t.Errorf("%d rows after Remove", n)
	}
	// another domain gets its own table
	insert(t, m2.Domain("location_pbx"), "x@example.com", Contact{URI: "sip:x", Expires: m2.Now() + 100, CallID: "c", Methods: AllMethods})
	sdb.QueryRow("SELECT count(*) FROM location_pbx").Scan(&n)
	if n != 1 {
		t.Errorf("location_pbx rows %d", n)
	}
	// names that cannot be tables stay in memory and fail to persist
	if err := m2.Domain("bad name;").Update("x", func(r *Record) error { _, err := r.Insert(Contact{URI: "sip:x"}); return err }); err == nil {
		t.Error("insert into a bad table name succeeded")
	}
}

func TestSchemaRegistered(t *testing.T) {
	var loc *db.Table
	for _, tb := range db.Tables() {
		if tb.Name == "location" {
			tb := tb
			loc = &tb
		}
	}
	if loc == nil || loc.Version != 9 {
		t.Fatalf("location table not registered: %+v", loc)
	}
	for _, d := range []db.Dialect{db.SQLite, db.Postgres, db.MySQL} {
		stmts := loc.Create[d]
		if len(stmts) != 5 {
			t.Errorf("%s: %d statements", d, len(stmts))
			continue
		}
		for _, col := range []string{"ruid", "username", "domain", "contact", "received", "path", "expires", "q", "callid",
			"cseq", "last_modified", "flags", "cflags", "user_agent", "socket", "methods", "instance", "reg_id",
			"server_id", "connection_id", "keepalive", "partition"} {
			if !strings.Contains(stmts[0], col) {
				t.Errorf("%s: no column %s", d, col)
			}
		}
	}
	// a fresh SQLite database initialised by core/db gets the table and its version
	sdb, err := db.Open("sqlite://" + filepath.Join(t.TempDir(), "init.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if err := sdb.Init(); err != nil {
		t.Fatal(err)
	}
	if v, err := sdb.TableVersion("location"); err != nil || v != 9 {
		t.Errorf("version %d %v", v, err)
	}
}

func TestExportsMatchCatalog(t *testing.T) {
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skip("catalog.tsv not available:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if col := strings.Split(sc.Text(), "\t"); len(col) >= 4 && col[0] == "usrloc" {
			t.Errorf("catalog has usrloc.%s: export it", col[1])
		}
	}
	if exps := mustNew(t, DefaultConfig(), newClock()).Exports(); len(exps) != 0 {
		t.Errorf("%d exports", len(exps))
	}
}
