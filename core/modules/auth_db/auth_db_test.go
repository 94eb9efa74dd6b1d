package auth_db

import (
	"bufio"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/auth"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// ---- databases ----

func openSQLite(t *testing.T) *db.DB {
	t.Helper()
	d, err := db.Open("sqlite://" + filepath.Join(t.TempDir(), "kemigo.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	return d
}

// openServer opens a shared test server, or skips when it is not there.
func openServer(t *testing.T, url, what string) *db.DB {
	t.Helper()
	d, err := db.Open(url)
	if err != nil {
		t.Skipf("%s not reachable at %s (%v): start it to run this test", what, url, err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(); err != nil {
		// Another test process may have created the tables meanwhile.
		if ok, _ := d.HasTable(SubscriberTable); !ok {
			t.Fatalf("%s: init: %v", what, err)
		}
	}
	return d
}

type backend struct {
	name string
	open func(t *testing.T) *db.DB
}

var backends = []backend{
	{"sqlite", openSQLite},
	{"postgres", func(t *testing.T) *db.DB {
		return openServer(t, "postgres://postgres@127.0.0.1:5432/test", "PostgreSQL")
	}},
	{"mysql", func(t *testing.T) *db.DB { return openServer(t, "mysql://root@127.0.0.1:3306/test", "MariaDB/MySQL") }},
}

// testDomain is a domain no other test run uses, so shared servers can
// run several test processes at once.
func testDomain(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "kemigo-test-" + hex.EncodeToString(b[:]) + ".example"
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// ---- SIP helpers ----

type fakeReplier struct{ sent []*sip.Response }

func (f *fakeReplier) SendReply(m *sipmsg.Msg, res *sip.Response) error {
	f.sent = append(f.sent, res)
	return nil
}

type reqOpts struct {
	method, from, to string
	hdrs             []string
}

func newReq(t *testing.T, o reqOpts) (*kemi.Ctx, *fakeReplier) {
	t.Helper()
	if o.method == "" {
		o.method = "INVITE"
	}
	raw := o.method + " sip:bob@" + "example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n" +
		"From: <sip:" + o.from + ">;tag=1928301774\r\n" +
		"To: <sip:" + o.to + ">\r\n" +
		"Call-ID: call-1@pc33\r\n" +
		"CSeq: 2 " + o.method + "\r\n"
	for _, h := range o.hdrs {
		raw += h + "\r\n"
	}
	raw += "Content-Length: 0\r\n\r\n"
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeReplier{}
	m.Replier = r
	m.Proto, m.SrcIP, m.SrcPort = "udp", "192.0.2.10", 5060
	return &kemi.Ctx{Msg: m, Route: kemi.RouteRequest, Worker: kemi.NewWorkerState(0)}, r
}

var nonceRE = regexp.MustCompile(`nonce="([^"]+)"`)

func challenge(t *testing.T, a *auth.Module, method, realm string) string {
	t.Helper()
	c, r := newReq(t, reqOpts{method: method, from: "x@y", to: "x@y"})
	if rc := a.AuthChallenge(c, realm, auth.FlagQOPAuth); rc != 1 || len(r.sent) != 1 {
		t.Fatalf("auth_challenge = %d, %d sent", rc, len(r.sent))
	}
	return nonceRE.FindStringSubmatch(c.Msg.ReplyHdrs[0])[1]
}

// creds builds Digest credentials as a UA would.
func creds(alg auth.Algorithm, hdr, username, realm, password, nonce, method string) string {
	return credsHashed(alg, hdr, username, realm, realm, password, nonce, method)
}

// credsHashed sends realm but hashes with hashRealm.
func credsHashed(alg auth.Algorithm, hdr, username, realm, hashRealm, password, nonce, method string) string {
	uri := "sip:bob@example.com"
	ha1 := auth.HA1(alg, username, hashRealm, password)
	resp := auth.Response(alg, ha1, nonce, "00000001", "c0ffee", "auth", method, uri, false, nil)
	return fmt.Sprintf(`%s: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="c0ffee"`,
		hdr, username, realm, nonce, uri, resp, alg.Name)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newAuth(t *testing.T, alg string) (*auth.Module, *clock) {
	t.Helper()
	cfg := auth.DefaultConfig()
	cfg.Algorithm = alg
	clk := &clock{t: time.Now()}
	a, err := auth.New(cfg, auth.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	return a, clk
}

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...any) int64 {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name != name {
			continue
		}
		vs := make([]val.Value, len(args))
		for i, a := range args {
			switch x := a.(type) {
			case int:
				vs[i] = val.OfInt(int64(x))
			case string:
				vs[i] = val.OfStr(x)
			}
		}
		return e.Fn(c, vs).I
	}
	t.Fatalf("no export %s", name)
	return 0
}

// ---- tests ----

func TestSubscriberRoundTrip(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			d := b.open(t)
			dom := testDomain(t)
			uri := "alice@" + dom
			t.Cleanup(func() { _ = RemoveUser(d, uri) })
			if v, err := d.TableVersion(SubscriberTable); err != nil || v != 7 {
				t.Errorf("subscriber version %d, %v", v, err)
			}
			if err := AddUser(d, uri, "secret"); err != nil {
				t.Fatalf("AddUser: %v", err)
			}
			if err := AddUser(d, "sip:"+uri, "other"); !errors.Is(err, ErrUserExists) {
				t.Errorf("second AddUser: %v", err)
			}
			s, err := GetUser(d, uri)
			if err != nil {
				t.Fatal(err)
			}
			want := Subscriber{ID: s.ID, Username: "alice", Domain: dom, Password: "secret",
				HA1: md5hex("alice:" + dom + ":secret"), HA1B: md5hex("alice@" + dom + ":" + dom + ":secret")}
			if s != want {
				t.Errorf("GetUser = %+v, want %+v", s, want)
			}
			if err := SetPassword(d, uri, "n3w"); err != nil {
				t.Fatal(err)
			}
			if s, _ := GetUser(d, uri); s.Password != "n3w" || s.HA1 != md5hex("alice:"+dom+":n3w") {
				t.Errorf("after SetPassword: %+v", s)
			}
			list, err := ListUsers(d)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range list {
				if s.Domain == dom {
					n++
				}
			}
			if n != 1 {
				t.Errorf("ListUsers has %d rows for %s", n, dom)
			}
			if err := RemoveUser(d, uri); err != nil {
				t.Fatalf("RemoveUser: %v", err)
			}
			if _, err := GetUser(d, uri); !errors.Is(err, ErrNoUser) {
				t.Errorf("GetUser after rm: %v", err)
			}
			if err := RemoveUser(d, uri); !errors.Is(err, ErrNoUser) {
				t.Errorf("second RemoveUser: %v", err)
			}
			if err := SetPassword(d, uri, "x"); !errors.Is(err, ErrNoUser) {
				t.Errorf("SetPassword on missing user: %v", err)
			}
		})
	}
}

func TestSplitUser(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com": "alice example.com", "sip:alice@example.com": "alice example.com",
		"SIPS:bob@h": "bob h", "alice": "", "@example.com": "", "alice@": "", "a:b@c": "", "a@b@c": "",
	} {
		u, d, err := SplitUser(in)
		got := ""
		if err == nil {
			got = u + " " + d
		}
		if got != want {
			t.Errorf("SplitUser(%q) = %q, %v", in, got, err)
		}
	}
	ha1, ha1b := HA1Values("alice", "example.com", "secret")
	if ha1 != md5hex("alice:example.com:secret") || ha1b != md5hex("alice@example.com:example.com:secret") {
		t.Errorf("HA1Values = %s %s", ha1, ha1b)
	}
}

type authCase struct {
	name     string
	cfg      func(*Config)
	alg      string // auth algorithm modparam
	method   string
	username string // digest username; {d} is the domain
	password string
	from, to string // {d} is the domain
	realm    string // checked realm; default the domain
	table    string
	flags    int
	noCreds  bool
	advance  time.Duration
	want     int
	wantAVPs map[string]string
	credsHdr string
	credsRlm string // realm in the credentials; default the checked realm
	hashRlm  string // realm the UA hashes with; default credsRlm
}

func authCases() []authCase {
	return []authCase{
		{name: "MD5 ha1", want: 1},
		{name: "wrong password", password: "guess", want: -2},
		{name: "unknown user", username: "mallory", want: -3},
		{name: "username with domain uses ha1b", username: "alice@{d}", want: 1},
		{name: "calculate_ha1", cfg: func(c *Config) { c.CalculateHA1 = 1 }, want: 1},
		{name: "calculate_ha1 with domain", cfg: func(c *Config) { c.CalculateHA1 = 1 }, username: "alice@{d}", want: 1},
		{name: "calculate_ha1 SHA-256", cfg: func(c *Config) { c.CalculateHA1 = 1 }, alg: "SHA-256", want: 1},
		{name: "calculate_ha1 SHA-256 wrong password", cfg: func(c *Config) { c.CalculateHA1 = 1 }, alg: "SHA-256", password: "guess", want: -2},
		{name: "SHA-256 with MD5 ha1 stored", alg: "SHA-256", want: -1},
		{name: "use_domain: realm is the domain", cfg: func(c *Config) { c.UseDomain = 1 }, want: 1},
		{name: "use_domain: other realm", cfg: func(c *Config) { c.UseDomain = 1 }, realm: "elsewhere.example", want: -3},
		{name: "use_domain: username domain wins", cfg: func(c *Config) { c.UseDomain = 1 }, username: "alice@{d}", realm: "elsewhere.example", hashRlm: "{d}", want: 1},
		{name: "REGISTER uses Authorization", method: "REGISTER", from: "alice@{d}", to: "alice@{d}", want: 1},
		{name: "REGISTER ignores Proxy-Authorization", method: "REGISTER", credsHdr: "Proxy-Authorization", want: -5},
		{name: "no credentials", noCreds: true, want: -5},
		{name: "credentials for another realm", credsRlm: "other.example", want: -5},
		{name: "stale nonce", advance: 301 * time.Second, want: -4},
		{name: "identity ok", flags: FlagCheckID, want: 1},
		{name: "identity mismatch", flags: FlagCheckID, from: "carol@{d}", want: -8},
		{name: "identity skipped for INVITE", flags: FlagCheckID | FlagSkipFwd, from: "carol@{d}", want: 1},
		{name: "identity REGISTER third party", method: "REGISTER", flags: FlagCheckID, from: "alice@{d}", to: "bob@{d}", want: -8},
		{name: "identity not skipped for REGISTER", method: "REGISTER", flags: FlagCheckID | FlagSkipFwd, from: "carol@{d}", to: "carol@{d}", want: -8},
		{name: "ACK", method: "ACK", noCreds: true, table: "no_such_table", want: 1},
		{name: "CANCEL", method: "CANCEL", noCreds: true, want: 1},
		{name: "PRACK", method: "PRACK", noCreds: true, flags: FlagCheckID, from: "carol@{d}", want: 1},
		{name: "empty realm", realm: "-", want: -1},
		{name: "empty table", table: "-", want: -1},
		{name: "bad table name", table: "subscriber; DROP TABLE x", want: -1},
		{name: "missing table", table: "no_such_table", want: -1},
		{name: "load_credentials after success", cfg: func(c *Config) { c.LoadCredentials = "password;$var(h)=ha1;$avp(uid)=id" },
			want: 1, wantAVPs: map[string]string{"password": "secret", "uid": "*"}},
		{name: "load_credentials not after failure", cfg: func(c *Config) { c.LoadCredentials = "password" },
			password: "guess", want: -2, wantAVPs: map[string]string{}},
		{name: "force_generate_avps", cfg: func(c *Config) { c.LoadCredentials = "password"; c.ForceGenerateAVPs = 1 },
			password: "guess", want: -2, wantAVPs: map[string]string{"password": "secret"}},
	}
}

func TestAuthCheck(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			d := b.open(t)
			dom := testDomain(t)
			for _, u := range []string{"alice", "bob"} {
				if err := AddUser(d, u+"@"+dom, "secret"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = RemoveUser(d, u+"@"+dom) })
			}
			for _, tt := range authCases() {
				t.Run(tt.name, func(t *testing.T) { runAuthCase(t, d, dom, tt) })
			}
		})
	}
}

func runAuthCase(t *testing.T, d *db.DB, dom string, tt authCase) {
	sub := func(s string) string { return strings.ReplaceAll(s, "{d}", dom) }
	cfg := DefaultConfig()
	if tt.cfg != nil {
		tt.cfg(&cfg)
	}
	a, clk := newAuth(t, tt.alg)
	m, err := New(cfg, a, WithDB(d))
	if err != nil {
		t.Fatal(err)
	}
	method := tt.method
	if method == "" {
		method = "INVITE"
	}
	realm := tt.realm
	switch realm {
	case "":
		realm = dom
	case "-":
		realm = ""
	}
	table := tt.table
	switch table {
	case "":
		table = SubscriberTable
	case "-":
		table = ""
	}
	username := sub(tt.username)
	if username == "" {
		username = "alice"
	}
	password := tt.password
	if password == "" {
		password = "secret"
	}
	from, to := sub(tt.from), sub(tt.to)
	if from == "" {
		from = "alice@" + dom
	}
	if to == "" {
		to = "bob@" + dom
	}
	hdr := tt.credsHdr
	if hdr == "" {
		hdr = "Proxy-Authorization"
		if method == "REGISTER" {
			hdr = "Authorization"
		}
	}
	credRealm := tt.credsRlm
	if credRealm == "" {
		credRealm = realm
	}
	hashRealm := sub(tt.hashRlm)
	if hashRealm == "" {
		hashRealm = credRealm
	}
	var hdrs []string
	if !tt.noCreds {
		alg := auth.MD5
		if tt.alg == "SHA-256" {
			alg = auth.SHA256
		}
		nonce := challenge(t, a, method, credRealm)
		hdrs = append(hdrs, credsHashed(alg, hdr, username, credRealm, hashRealm, password, nonce, method))
	}
	clk.t = clk.t.Add(tt.advance)
	c, _ := newReq(t, reqOpts{method: method, from: from, to: to, hdrs: hdrs})
	if got := call(t, m, c, "auth_check", realm, table, tt.flags); got != int64(tt.want) {
		t.Fatalf("auth_check = %d, want %d", got, tt.want)
	}
	if tt.wantAVPs != nil {
		for name, want := range tt.wantAVPs {
			v := c.Msg.AVP(name)
			if len(v) != 1 || (want != "*" && v[0].String() != want) {
				t.Errorf("$avp(%s) = %v, want %q", name, v, want)
			}
		}
		if len(tt.wantAVPs) == 0 && len(c.Msg.AVPs) != 0 {
			t.Errorf("AVPs %v", c.Msg.AVPs)
		}
		if _, ok := tt.wantAVPs["uid"]; ok {
			if v := c.Msg.AVP("uid"); len(v) == 1 && v[0].Kind != val.Int {
				t.Errorf("$avp(uid) kind %v, want int", v[0].Kind)
			}
			if v, err := pv.Get(c, "$var(h)"); err != nil || v.S != md5hex("alice:"+dom+":secret") {
				t.Errorf("$var(h) = %v, %v", v, err)
			}
		}
	}
}

func TestAuthorizeVersionCheck(t *testing.T) {
	d := openSQLite(t)
	if err := AddUser(d, "alice@example.com", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec("CREATE TABLE subs2 AS SELECT * FROM subscriber"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		table   string
		version int
		want    int
	}{
		{SubscriberTable, 1, 1},
		{"subs2", 1, -1}, // no version row
		{"subs2", 0, 1},
	} {
		a, _ := newAuth(t, "")
		cfg := DefaultConfig()
		cfg.VersionTable = tt.version
		m, err := New(cfg, a, WithDB(d))
		if err != nil {
			t.Fatal(err)
		}
		nonce := challenge(t, a, "REGISTER", "example.com")
		c, _ := newReq(t, reqOpts{method: "REGISTER", from: "alice@example.com", to: "alice@example.com",
			hdrs: []string{creds(auth.MD5, "Authorization", "alice", "example.com", "secret", nonce, "REGISTER")}})
		if got := m.WWWAuthorize(c, "example.com", tt.table); got != tt.want {
			t.Errorf("www_authorize(%s) version_table=%d: %d, want %d", tt.table, tt.version, got, tt.want)
		}
		nonce = challenge(t, a, "INVITE", "example.com")
		c, _ = newReq(t, reqOpts{from: "alice@example.com", to: "bob@example.com",
			hdrs: []string{creds(auth.MD5, "Proxy-Authorization", "alice", "example.com", "secret", nonce, "INVITE")}})
		if got := m.ProxyAuthorize(c, "example.com", tt.table); got != tt.want {
			t.Errorf("proxy_authorize(%s) version_table=%d: %d, want %d", tt.table, tt.version, got, tt.want)
		}
	}
}

func TestDatabaseUnavailable(t *testing.T) {
	a, _ := newAuth(t, "")
	cfg := DefaultConfig()
	cfg.DBURL = "sqlite:///nonexistent-dir-kemigo/x/y.db"
	m, err := New(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	nonce := challenge(t, a, "INVITE", "example.com")
	c, _ := newReq(t, reqOpts{from: "alice@example.com", to: "bob@example.com",
		hdrs: []string{creds(auth.MD5, "Proxy-Authorization", "alice", "example.com", "secret", nonce, "INVITE")}})
	if got := m.AuthCheck(c, "example.com", SubscriberTable, 0); got != -1 {
		t.Errorf("auth_check with no database: %d", got)
	}
	if got := m.IsSubscriber(c, "sip:alice@example.com", SubscriberTable, 0); got != -1 {
		t.Errorf("is_subscriber with no database: %d", got)
	}
}

func TestIsSubscriber(t *testing.T) {
	d := openSQLite(t)
	for _, u := range []string{"alice@example.com", "bob@example.org"} {
		if err := AddUser(d, u, "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		creds string
		uri   string
		table string
		flags int
		want  int
		avps  map[string]string
	}{
		{name: "user", uri: "sip:alice@example.com", want: 1},
		{name: "user any domain", uri: "sip:alice@elsewhere.net", want: 1},
		{name: "user and domain", uri: "sip:alice@example.com", flags: SubsUseDomain, want: 1},
		{name: "wrong domain", uri: "sip:alice@example.org", flags: SubsUseDomain, want: -2},
		{name: "unknown", uri: "sip:carol@example.com", want: -2},
		{name: "from a PV", uri: "$fu", flags: SubsUseDomain, want: 1},
		{name: "bad URI", uri: "sip:", want: -1},
		{name: "empty URI", uri: "", want: -1},
		{name: "empty table", uri: "sip:alice@example.com", table: "-", want: -1},
		{name: "missing table", uri: "sip:alice@example.com", table: "nope", want: -1},
		{name: "credentials loaded", creds: "password;$avp(h1)=ha1", uri: "sip:bob@example.org", flags: SubsUseDomain, want: 1,
			avps: map[string]string{"password": "pw-bob@example.org", "h1": md5hex("bob:example.org:pw-bob@example.org")}},
		{name: "credentials skipped", creds: "password", uri: "sip:bob@example.org", flags: SubsUseDomain | SubsSkipCredentials, want: 1,
			avps: map[string]string{}},
		{name: "read-only PV", creds: "$si=password", uri: "sip:bob@example.org", want: -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := newAuth(t, "")
			cfg := DefaultConfig()
			cfg.LoadCredentials = tt.creds
			m, err := New(cfg, a, WithDB(d))
			if err != nil {
				t.Fatal(err)
			}
			table := tt.table
			switch table {
			case "":
				table = SubscriberTable
			case "-":
				table = ""
			}
			c, _ := newReq(t, reqOpts{from: "alice@example.com", to: "bob@example.org"})
			if got := call(t, m, c, "is_subscriber", tt.uri, table, tt.flags); got != int64(tt.want) {
				t.Fatalf("is_subscriber = %d, want %d", got, tt.want)
			}
			if tt.avps != nil {
				if len(c.Msg.AVPs) != len(tt.avps) {
					t.Errorf("AVPs %v", c.Msg.AVPs)
				}
				for name, want := range tt.avps {
					if v := c.Msg.AVP(name); len(v) != 1 || v[0].S != want {
						t.Errorf("$avp(%s) = %v, want %q", name, v, want)
					}
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	a, _ := newAuth(t, "")
	for _, f := range []func(*Config){
		func(c *Config) { c.LoadCredentials = "bad column" },
		func(c *Config) { c.LoadCredentials = "$nosuchpv(x)=col" },
		func(c *Config) { c.UserColumn = "user name" },
	} {
		cfg := DefaultConfig()
		f(&cfg)
		if _, err := New(cfg, a); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Error("New without auth succeeded")
	}
	cfg := DefaultConfig()
	cfg.CalculateHA1 = 1
	m, err := New(cfg, a)
	if err != nil || m.cfg.PasswordColumn != "password" {
		t.Errorf("calculate_ha1 column: %q %v", m.cfg.PasswordColumn, err)
	}
	cfg.PasswordColumn = "pw_clear"
	if m, _ := New(cfg, a); m.cfg.PasswordColumn != "pw_clear" {
		t.Errorf("explicit password_column replaced: %q", m.cfg.PasswordColumn)
	}
}

func TestExportsMatchCatalog(t *testing.T) {
	a, _ := newAuth(t, "")
	m, err := New(DefaultConfig(), a)
	if err != nil {
		t.Fatal(err)
	}
	exps := m.Exports()
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skipf("catalog not available: %v", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= 4 && cols[0] == "auth_db" {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range exps {
		var ps []string
		for _, p := range e.Params {
			ps = append(ps, p.String())
		}
		params := strings.Join(ps, ",")
		if params == "" {
			params = "none"
		}
		got[e.Name] = params + " -> " + e.Ret.String()
	}
	if len(got) != len(want) {
		t.Errorf("%d exports, catalog has %d", len(got), len(want))
	}
	for name, sig := range want {
		if got[name] != sig {
			t.Errorf("auth_db.%s: got %q, catalog %q", name, got[name], sig)
		}
	}
	kemi.NewTable().Register(exps...)
}
