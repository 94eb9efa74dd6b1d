package reference

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/modules/acc"
	"github.com/kemigo/kemigo/core/modules/auth_db"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/internal/siptest"
)

// referenceScript is Kamailio's example KEMI script, shipped by the Debian
// package "kamailio"; the tests use it unchanged.
const referenceScript = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

const (
	// domain is the users' domain, the digest realm ($fd) and the R-URI
	// host: the proxy's address, so is_myself_furi/is_myself_ruri hold.
	domain = siptest.ProxyIP
	// trustedIP is the address of the `address` table row (group 1):
	// allow_source_address(1) lets it in without authentication.
	trustedIP = "127.0.0.4"
	// ipbanExpire is the ipban htable's autoexpire in the tests (the cfg
	// has 300 s).
	ipbanExpire = 2
	// step bounds every single wait of the tests.
	step = 5 * time.Second
	// quiet is how long a test listens to be sure nothing (more) comes.
	quiet = 400 * time.Millisecond
)

var protos = []string{"udp", "tcp"}

// the subscribers (kemigo user add / kamctl add)
var passwords = map[string]string{
	"alice": "alice-secret",
	"bob":   "bob-secret",
	"carol": "carol-secret", // a subscriber that never registers
	"dave":  "dave-secret",
}

// env is one running proxy with its database.
type env struct {
	t    *testing.T
	p    *proxy.Proxy
	logs *siptest.LogBuffer
	db   *db.DB
	url  string
	addr map[string]string // by proto
	// users maps a test name ("alice") to the username in the database
	// (unique per run on shared servers).
	users map[string]string
}

// baseConfig reads testdata/kamailio-basic.toml with the database URL.
func baseConfig(t testing.TB, dbURL string) config.Config {
	t.Helper()
	text, err := os.ReadFile("testdata/kamailio-basic.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("@DBURL@", dbURL, "@IPBAN_EXPIRE@", strconv.Itoa(ipbanExpire)).Replace(string(text))
	cfg, err := config.Parse(s)
	if err != nil {
		t.Fatalf("testdata/kamailio-basic.toml: %v", err)
	}
	return cfg
}

func needScript(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(referenceScript); err != nil {
		t.Skipf("%s not found: install the Debian package \"kamailio\" (apt-get install kamailio), which ships Kamailio's example KEMI scripts", referenceScript)
	}
}

// sqliteURL is a fresh SQLite database in the test's temporary directory.
func sqliteURL(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "kemigo.db")
}

// prepareDB creates Kamailio's tables (kemigo db init), the db_extra
// columns of acc and missed_calls (the ALTER TABLEs of the cfg's header),
// the subscribers (kemigo user add), and the address row of trustedIP.
// suffix makes the usernames unique on a shared server ("" for SQLite).
func prepareDB(t testing.TB, cfg config.Config, url, suffix string) (*db.DB, map[string]string) {
	t.Helper()
	d, err := db.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(); err != nil {
		t.Fatalf("db init %s: %v", url, err)
	}
	a, err := acc.New(cfg.Acc, acc.WithDB(d))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureExtraColumns(); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{}
	for name, pw := range passwords {
		u := name + suffix
		if err := auth_db.AddUser(d, u+"@"+domain, pw); err != nil {
			t.Fatalf("user add %s: %v", u, err)
		}
		users[name] = u
	}
	if _, err := d.Exec(d.Rebind("INSERT INTO address (grp, ip_addr, mask, port) VALUES (?, ?, ?, ?)"), 1, trustedIP, 32, 0); err != nil {
		t.Fatalf("address row: %v", err)
	}
	return d, users
}

// startEnv starts the reference script on a fresh SQLite database; edit
// functions may change the configuration first.
func startEnv(t *testing.T, edit ...func(*config.Config)) *env {
	t.Helper()
	needScript(t)
	url := sqliteURL(t)
	cfg := baseConfig(t, url)
	for _, f := range edit {
		f(&cfg)
	}
	d, users := prepareDB(t, cfg, url, "")
	return start(t, cfg, d, url, users)
}

func start(t *testing.T, cfg config.Config, d *db.DB, url string, users map[string]string) *env {
	t.Helper()
	p, udp, tcp := siptest.StartProxy(t, cfg)
	if dumpLog {
		t.Cleanup(func() { t.Logf("proxy log:\n%s", siptest.Logs(p).String()) })
	}
	return &env{t: t, p: p, logs: siptest.Logs(p), db: d, url: url,
		addr: map[string]string{"udp": udp, "tcp": tcp}, users: users}
}

// ua opens a phone for a subscriber ("alice") over proto from 127.0.0.1.
func (e *env) ua(t testing.TB, proto, name string, opts ...siptest.Option) *siptest.UA {
	t.Helper()
	user := e.users[name]
	if user == "" {
		user = name
	}
	opts = append([]siptest.Option{siptest.WithTimeout(step)}, opts...)
	return siptest.NewUA(t, proto, e.addr[proto], user, passwords[name], domain, opts...)
}

// uri is sip:<user>@<domain> for a subscriber name.
func (e *env) uri(name string) string {
	if u := e.users[name]; u != "" {
		name = u
	}
	return "sip:" + name + "@" + domain
}

// count runs a SELECT count(*) with args.
func (e *env) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	if e.p != nil && e.p.Mods.Acc != nil {
		e.p.Mods.Acc.Flush() // acc rows are written by a background writer
	}
	var n int
	if err := e.db.QueryRow(e.db.Rebind(query), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitCount polls a count query until it is want (rows are written by tm
// hooks right after the reply goes out).
func (e *env) waitCount(t testing.TB, want int, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(step)
	for {
		n := e.count(t, query, args...)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v: %d rows, want %d", query, args, n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumpLog (REFERENCE_DUMP_LOG=1) prints every proxy's log at the end of
// its test, also when it passed.
var dumpLog = os.Getenv("REFERENCE_DUMP_LOG") != ""
