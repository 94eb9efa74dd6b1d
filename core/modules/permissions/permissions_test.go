package permissions

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

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

func exec(t *testing.T, d *db.DB, q string, args ...any) {
	t.Helper()
	if _, err := d.Exec(d.Rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// addr inserts an address row; tag "" is NULL.
func addr(t *testing.T, d *db.DB, grp int, ip string, mask, port int, tag string) {
	t.Helper()
	var tg any
	if tag != "" {
		tg = tag
	}
	exec(t, d, "INSERT INTO address (grp, ip_addr, mask, port, tag) VALUES (?, ?, ?, ?, ?)", grp, ip, mask, port, tg)
}

func reqFrom(t *testing.T, proto, ip string, port int, from, ruri string) *kemi.Ctx {
	t.Helper()
	if from == "" {
		from = "sip:alice@example.com"
	}
	if ruri == "" {
		ruri = "sip:bob@example.com"
	}
	raw := "INVITE " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n" +
		"From: <" + from + ">;tag=1\r\nTo: <" + ruri + ">\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	m.Proto, m.SrcIP, m.SrcPort = proto, ip, port
	return &kemi.Ctx{Msg: m, Route: kemi.RouteRequest, Worker: kemi.NewWorkerState(0)}
}

func newModule(t *testing.T, d *db.DB, f func(*Config)) *Module {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DBURL = "test"
	if f != nil {
		f(&cfg)
	}
	m, err := New(cfg, WithDB(d))
	if err != nil {
		t.Fatal(err)
	}
	return m
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

func addressFixture(t *testing.T) *db.DB {
	d := openSQLite(t)
	addr(t, d, 1, "192.0.2.10", 32, 0, "gw1")
	addr(t, d, 1, "10.0.0.0", 8, 5060, "lan")
	addr(t, d, 2, "192.0.2.10", 32, 5080, "gw1-alt")
	addr(t, d, 2, "2001:db8::", 32, 0, "")
	addr(t, d, 3, "sip.example.net", 0, 5060, "dns")
	addr(t, d, 3, "198.51.100.7", 0, 0, "")
	addr(t, d, 4, "[2001:db8:ffff::1]", 0, 0, "v6host")
	addr(t, d, 5, "10.1.0.0", 16, 0, "lan5")
	addr(t, d, 6, "203.0.113.77", 24, 0, "net6") // host bits set: still the /24
	return d
}

func TestAllowSourceAddress(t *testing.T) {
	d := addressFixture(t)
	tests := []struct {
		name  string
		group int
		ip    string
		port  int
		want  int64
		tag   string
	}{
		{"host any port", 1, "192.0.2.10", 5062, 1, "gw1"},
		{"host other group", 3, "192.0.2.10", 5060, -1, ""},
		{"host with port", 2, "192.0.2.10", 5080, 1, "gw1-alt"},
		{"host wrong port", 2, "192.0.2.10", 5060, -1, ""},
		{"other host", 1, "192.0.2.11", 5060, -1, ""},
		{"subnet with port", 1, "10.200.3.4", 5060, 1, "lan"},
		{"subnet wrong port", 1, "10.200.3.4", 5070, -1, ""},
		{"subnet edge", 1, "11.0.0.0", 5060, -1, ""},
		{"mask 0 is a host", 3, "198.51.100.7", 1, 1, ""},
		{"mask 0 host exact", 3, "198.51.100.8", 1, -1, ""},
		{"IPv6 subnet", 2, "2001:db8:1234::5", 5060, 1, ""},
		{"IPv6 bracketed source", 2, "[2001:db8::9]", 5060, 1, ""},
		{"IPv6 outside", 2, "2001:db9::1", 5060, -1, ""},
		{"IPv6 host (bracketed in table)", 4, "2001:db8:ffff::1", 5060, 1, "v6host"},
		{"IPv4 not in IPv6 subnet", 2, "32.1.13.184", 5060, -1, ""},
		{"subnet masked", 6, "203.0.113.1", 5060, 1, "net6"},
		{"host names are not source addresses", 3, "sip.example.net", 5060, -1, ""},
		{"negative group", -1, "192.0.2.10", 5060, -1, ""},
	}
	m := newModule(t, d, func(c *Config) { c.PeerTagAVP = "$avp(peer)" })
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := reqFrom(t, "udp", tt.ip, tt.port, "", "")
			if got := call(t, m, c, "allow_source_address", tt.group); got != tt.want {
				t.Errorf("allow_source_address(%d) from %s:%d = %d, want %d", tt.group, tt.ip, tt.port, got, tt.want)
			}
			// allow_address with the same values behaves the same.
			ip := strings.Trim(tt.ip, "[]")
			if tt.name != "host names are not source addresses" {
				if got := call(t, m, c, "allow_address", tt.group, ip, tt.port); got != tt.want {
					t.Errorf("allow_address = %d, want %d", got, tt.want)
				}
			}
			tag := c.Msg.AVP("peer")
			if (tt.tag == "") != (len(tag) == 0) || (tt.tag != "" && tag[0].S != tt.tag) {
				t.Errorf("$avp(peer) = %v, want %q", tag, tt.tag)
			}
		})
	}
}

func TestAllowAddressNames(t *testing.T) {
	m := newModule(t, addressFixture(t), nil)
	c := reqFrom(t, "udp", "192.0.2.1", 5060, "", "")
	for _, tt := range []struct {
		group int
		addr  string
		port  int
		want  int64
	}{
		{3, "sip.example.net", 5060, 1},
		{3, "sip.example.net", 5061, -1},
		{3, "SIP.example.net", 5060, -1}, // exact comparison
		{1, "sip.example.net", 5060, -1},
		{3, "other.example.net", 5060, -1},
	} {
		if got := call(t, m, c, "allow_address", tt.group, tt.addr, tt.port); got != tt.want {
			t.Errorf("allow_address(%d, %s, %d) = %d, want %d", tt.group, tt.addr, tt.port, got, tt.want)
		}
	}
}

func TestAddressGroup(t *testing.T) {
	m := newModule(t, addressFixture(t), nil)
	tests := []struct {
		ip   string
		port int
		want int64
	}{
		{"192.0.2.10", 5080, 2}, // newest record of the address first
		{"192.0.2.10", 5060, 1},
		{"10.1.2.3", 5060, 1}, // subnets by group: 1 before 5
		{"10.1.2.3", 5070, 5},
		{"10.2.2.3", 5070, -1},
		{"2001:db8::77", 1, 2},
		{"sip.example.net", 5060, 3}, // names: allow_address_group only
		{"192.0.2.99", 5060, -1},
	}
	for _, tt := range tests {
		c := reqFrom(t, "udp", tt.ip, tt.port, "", "")
		if got := call(t, m, c, "allow_address_group", tt.ip, tt.port); got != tt.want {
			t.Errorf("allow_address_group(%s, %d) = %d, want %d", tt.ip, tt.port, got, tt.want)
		}
		want := tt.want
		if strings.Contains(tt.ip, "example") { // names are not source addresses
			want = -1
		}
		if got := call(t, m, c, "allow_source_address_group"); got != want {
			t.Errorf("allow_source_address_group from %s:%d = %d, want %d", tt.ip, tt.port, got, want)
		}
	}
}

func TestReload(t *testing.T) {
	d := openSQLite(t)
	addr(t, d, 1, "192.0.2.10", 32, 0, "")
	m := newModule(t, d, nil)
	c := reqFrom(t, "udp", "192.0.2.20", 5060, "", "")
	// Loaded on first use.
	if got := m.AllowSourceAddress(c, 1); got != -1 {
		t.Fatalf("before insert: %d", got)
	}
	addr(t, d, 1, "192.0.2.0", 27, 0, "")
	if got := m.AllowSourceAddress(c, 1); got != -1 {
		t.Errorf("cached: new row seen before reload (%d)", got)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := m.AllowSourceAddress(c, 1); got != 1 {
		t.Errorf("after reload: %d", got)
	}
	if n := len(m.Addresses()); n != 2 {
		t.Errorf("Addresses: %d", n)
	}
	// A bad record makes the reload fail and keeps the current tables.
	addr(t, d, 1, "192.0.2.0", 33, 0, "")
	if err := m.Reload(); err == nil {
		t.Error("reload with mask 33 succeeded")
	}
	if got := m.AllowSourceAddress(c, 1); got != 1 {
		t.Errorf("after failed reload: %d", got)
	}
	exec(t, d, "DELETE FROM address")
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := m.AllowSourceAddress(c, 1); got != -1 {
		t.Errorf("after emptying: %d", got)
	}
}

func TestInvalidRecords(t *testing.T) {
	for _, tt := range []struct {
		name string
		ins  func(t *testing.T, d *db.DB)
	}{
		{"group 0", func(t *testing.T, d *db.DB) { addr(t, d, 0, "192.0.2.1", 32, 0, "") }},
		{"IPv4 mask 33", func(t *testing.T, d *db.DB) { addr(t, d, 1, "192.0.2.1", 33, 0, "") }},
		{"IPv6 mask 129", func(t *testing.T, d *db.DB) { addr(t, d, 1, "2001:db8::", 129, 0, "") }},
		{"negative mask", func(t *testing.T, d *db.DB) { addr(t, d, 1, "192.0.2.1", -1, 0, "") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := openSQLite(t)
			tt.ins(t, d)
			if err := newModule(t, d, nil).Load(); err == nil {
				t.Error("Load succeeded")
			}
		})
	}
}

func TestMaxSubnets(t *testing.T) {
	d := openSQLite(t)
	addr(t, d, 1, "10.0.0.0", 8, 0, "")
	addr(t, d, 1, "172.16.0.0", 12, 0, "")
	addr(t, d, 1, "192.0.2.1", 32, 0, "")
	m := newModule(t, d, func(c *Config) { c.MaxSubnets = 1 })
	for ip, want := range map[string]int{"10.1.1.1": 1, "172.16.1.1": -1, "192.0.2.1": 1} {
		if got := m.AllowSourceAddress(reqFrom(t, "udp", ip, 5060, "", ""), 1); got != want {
			t.Errorf("%s: %d, want %d", ip, got, want)
		}
	}
}

func TestNotConfigured(t *testing.T) {
	m, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	c := reqFrom(t, "udp", "192.0.2.10", 5060, "", "")
	for name, args := range map[string][]any{
		"allow_source_address": {1}, "allow_address": {1, "192.0.2.10", 5060}, "allow_source_address_group": {},
		"allow_address_group": {"192.0.2.10", 5060}, "allow_trusted": {},
	} {
		if got := call(t, m, c, name, args...); got != -1 {
			t.Errorf("%s = %d", name, got)
		}
	}
	if err := m.Reload(); err == nil {
		t.Error("Reload without a source succeeded")
	}
}

func TestVersionCheck(t *testing.T) {
	d := openSQLite(t)
	exec(t, d, "UPDATE version SET table_version = 5 WHERE table_name = 'address'")
	if err := newModule(t, d, nil).Load(); err == nil || !strings.Contains(err.Error(), "version 5") {
		t.Errorf("Load = %v", err)
	}
}

func TestAddressFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "address.list")
	text := "# group address mask port tag\n" +
		"1 192.0.2.10\n" +
		"  \n" +
		"1 10.0.0.0 8 5060 lan # comment\n" +
		"2 2001:db8:: 32\n" +
		"3 sip.example.net 0 5060\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := New(func() Config { c := DefaultConfig(); c.AddressFile = path; c.PeerTagAVP = "$avp(t)"; return c }())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		group int
		ip    string
		port  int
		want  int
	}{
		{1, "192.0.2.10", 1, 1}, {1, "10.9.9.9", 5060, 1}, {1, "10.9.9.9", 5061, -1},
		{2, "2001:db8::1", 5060, 1}, {1, "192.0.2.11", 1, -1},
	} {
		c := reqFrom(t, "udp", tt.ip, tt.port, "", "")
		if got := m.AllowSourceAddress(c, tt.group); got != tt.want {
			t.Errorf("%d %s:%d = %d, want %d", tt.group, tt.ip, tt.port, got, tt.want)
		}
		if tt.ip == "10.9.9.9" && tt.want == 1 {
			if v := c.Msg.AVP("t"); len(v) != 1 || v[0].S != "lan" {
				t.Errorf("tag %v", v)
			}
		}
	}
	if got := m.AllowAddress(reqFrom(t, "udp", "192.0.2.1", 1, "", ""), 3, "sip.example.net", 5060); got != 1 {
		t.Errorf("name from file: %d", got)
	}
	for _, bad := range []string{"1\n", "x 192.0.2.1\n", "1 192.0.2.1 40\n"} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := m.Reload(); err == nil {
			t.Errorf("file %q loaded", bad)
		}
	}
}

func trustedFixture(t *testing.T) *db.DB {
	d := openSQLite(t)
	ins := func(src, proto string, from, ruri, tag any, prio int) {
		exec(t, d, "INSERT INTO trusted (src_ip, proto, from_pattern, ruri_pattern, tag, priority) VALUES (?, ?, ?, ?, ?, ?)",
			src, proto, from, ruri, tag, prio)
	}
	ins("192.0.2.10", "udp", "^sip:alice@", nil, "t-alice", 0)
	ins("192.0.2.10", "any", nil, "^sip:bob@", "t-bob", 5)
	ins("192.0.2.20", "tcp", nil, nil, "t-tcp", 0)
	ins("192.0.2.30", "none", nil, nil, "t-none", 0)
	ins("192.0.2.40", "ANY", "(", nil, "t-badre", 0)
	ins("2001:db8::1", "any", nil, nil, nil, 0)
	return d
}

func TestAllowTrusted(t *testing.T) {
	tests := []struct {
		name    string
		proto   string
		ip      string
		from    string
		ruri    string
		tagMode int
		want    int64
		tags    []string // $avp(peer) stack, top first
		tags0   []string // with db_mode 0 when different (query by ascending priority)
	}{
		{name: "from pattern", proto: "udp", ip: "192.0.2.10", ruri: "sip:carol@example.com", want: 1, tags: []string{"t-alice"}},
		{name: "from pattern, other proto", proto: "tcp", ip: "192.0.2.10", ruri: "sip:carol@example.com", want: -1},
		{name: "ruri pattern, any proto, priority first", proto: "tcp", ip: "192.0.2.10", want: 1, tags: []string{"t-bob"}},
		{name: "peer_tag_mode counts", proto: "udp", ip: "192.0.2.10", tagMode: 1, want: 2,
			tags: []string{"t-alice", "t-bob"}, tags0: []string{"t-bob", "t-alice"}},
		{name: "neither pattern", proto: "udp", ip: "192.0.2.10", from: "sip:mallory@example.com", ruri: "sip:carol@example.com", want: -1},
		{name: "proto only", proto: "tcp", ip: "192.0.2.20", want: 1, tags: []string{"t-tcp"}},
		{name: "proto mismatch", proto: "udp", ip: "192.0.2.20", want: -1},
		{name: "unknown source", proto: "udp", ip: "192.0.2.99", want: -1},
		{name: "bad regexp never matches", proto: "udp", ip: "192.0.2.40", want: -1},
		{name: "IPv6 source, no tag", proto: "udp", ip: "[2001:db8:0::1]", want: 1},
	}
	for _, mode := range []int{0, 1} {
		d := trustedFixture(t)
		for _, tt := range tests {
			t.Run(tt.name+map[int]string{0: "/db_mode=0", 1: "/db_mode=1"}[mode], func(t *testing.T) {
				m := newModule(t, d, func(c *Config) { c.DBMode = mode; c.PeerTagAVP = "$avp(peer)"; c.PeerTagMode = tt.tagMode })
				c := reqFrom(t, tt.proto, tt.ip, 5060, tt.from, tt.ruri)
				if got := call(t, m, c, "allow_trusted"); got != tt.want {
					t.Fatalf("allow_trusted = %d, want %d", got, tt.want)
				}
				var tags []string
				for _, v := range c.Msg.AVP("peer") {
					tags = append(tags, v.S)
				}
				want := tt.tags
				if mode == 0 && tt.tags0 != nil {
					want = tt.tags0
				}
				if strings.Join(tags, ",") != strings.Join(want, ",") {
					t.Errorf("tags %v, want %v", tags, want)
				}
			})
		}
	}
}

func TestTrustedReload(t *testing.T) {
	d := trustedFixture(t)
	m := newModule(t, d, func(c *Config) { c.DBMode = 1 })
	c := reqFrom(t, "udp", "192.0.2.50", 5060, "", "")
	if got := m.AllowTrusted(c); got != -1 {
		t.Fatalf("before insert: %d", got)
	}
	exec(t, d, "INSERT INTO trusted (src_ip, proto, priority) VALUES ('192.0.2.50', 'udp', 0)")
	if got := m.AllowTrusted(c); got != -1 {
		t.Errorf("cached: %d", got)
	}
	if err := m.ReloadTrusted(); err != nil {
		t.Fatal(err)
	}
	if got := m.AllowTrusted(c); got != 1 {
		t.Errorf("after reload: %d", got)
	}
	if n := len(m.TrustedRecords()); n != 6 { // the "none" record is skipped
		t.Errorf("TrustedRecords: %d", n)
	}
	exec(t, d, "INSERT INTO trusted (src_ip, proto, priority) VALUES ('192.0.2.51', 'carrier-pigeon', 0)")
	if err := m.ReloadTrusted(); err == nil {
		t.Error("reload with an unknown protocol succeeded")
	}
	if got := m.AllowTrusted(c); got != 1 {
		t.Errorf("after failed reload: %d", got)
	}
	m0 := newModule(t, d, nil)
	if err := m0.ReloadTrusted(); err == nil {
		t.Error("ReloadTrusted with db_mode 0 succeeded")
	}
}

// TestServerSchemas loads the address table from PostgreSQL and MariaDB
// when they run locally (rows of a random group, removed afterwards).
func TestServerSchemas(t *testing.T) {
	for _, s := range []struct{ name, url string }{
		{"postgres", "postgres://postgres@127.0.0.1:5432/test"},
		{"mysql", "mysql://root@127.0.0.1:3306/test"},
	} {
		t.Run(s.name, func(t *testing.T) {
			d, err := db.Open(s.url)
			if err != nil {
				t.Skipf("%s not reachable at %s (%v): start it to run this test", s.name, s.url, err)
			}
			defer d.Close()
			if err := d.Init(); err != nil {
				if ok, _ := d.HasTable("address"); !ok {
					t.Fatal(err)
				}
			}
			var b [4]byte
			_, _ = rand.Read(b[:])
			grp := int(binary.BigEndian.Uint32(b[:])>>2) + 1000
			t.Cleanup(func() { _, _ = d.Exec(d.Rebind("DELETE FROM address WHERE grp = ?"), grp) })
			addr(t, d, grp, "192.0.2.0", 24, 5060, "srv")
			m := newModule(t, d, func(c *Config) { c.PeerTagAVP = "$avp(peer)"; c.DBMode = 1 })
			if err := m.Load(); err != nil {
				t.Fatal(err)
			}
			c := reqFrom(t, "udp", "192.0.2.7", 5060, "", "")
			if got := m.AllowSourceAddress(c, grp); got != 1 {
				t.Errorf("allow_source_address = %d", got)
			}
			if v := c.Msg.AVP("peer"); len(v) != 1 || v[0].S != "srv" {
				t.Errorf("tag %v", v)
			}
			c = reqFrom(t, "udp", "192.0.2.7", 5060, "", "")
			if got := m.AllowTrusted(c); got != -1 {
				t.Errorf("allow_trusted = %d", got)
			}
		})
	}
}

func TestExportsMatchCatalog(t *testing.T) {
	m, err := New(DefaultConfig())
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
		if len(cols) >= 4 && cols[0] == "permissions" {
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
			t.Errorf("permissions.%s: got %q, catalog %q", name, got[name], sig)
		}
	}
	kemi.NewTable().Register(exps...)
}
