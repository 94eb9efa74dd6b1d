// Package permissions is Kamailio's permissions module, its address and
// trusted parts: source addresses matched against groups of IP
// addresses, subnets (CIDR) and host names with an optional port, kept
// in memory and reloadable, and trusted peers (source IP, protocol, From
// and R-URI patterns).
package permissions

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// load_backends bits.
const (
	LoadAddressDB = 1 << 0
	LoadTrustedDB = 1 << 1
)

const queryTimeout = 10 * time.Second

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// Option changes how New builds the module.
type Option func(*Module)

// WithDB makes the module use an open database instead of opening
// db_url (the module does not close it).
func WithDB(d *db.DB) Option { return func(m *Module) { m.conn, m.shared = d, true } }

// WithLogger sets the logger of loads and reloads.
func WithLogger(l zerolog.Logger) Option { return func(m *Module) { m.log = l } }

// Module holds the in-memory tables.
type Module struct {
	cfg Config
	log zerolog.Logger

	dbMu   sync.Mutex
	conn   *db.DB
	shared bool

	loadMu  sync.Mutex
	loaded  bool
	addr    atomic.Pointer[addressTables]
	trusted atomic.Pointer[trustedTable]
	regexps sync.Map // pattern -> *regexp.Regexp (nil when invalid), db_mode 0
}

// New builds the module. Nothing is read until Load (or the first
// check, which loads): the proxy calls Load at start-up so a broken
// table stops it, as Kamailio's mod_init does.
func New(cfg Config, opts ...Option) (*Module, error) {
	m := &Module{cfg: cfg, log: zerolog.Nop()}
	for _, o := range opts {
		o(m)
	}
	for _, col := range []string{cfg.AddressTable, cfg.GrpCol, cfg.IPAddrCol, cfg.MaskCol, cfg.PortCol, cfg.TagCol,
		cfg.TrustedTable, cfg.SourceCol, cfg.ProtoCol, cfg.FromCol, cfg.RuriCol, cfg.PriorityCol} {
		if !identRE.MatchString(col) {
			return nil, fmt.Errorf("permissions: bad table or column name %q", col)
		}
	}
	if cfg.PeerTagAVP != "" {
		if _, err := pv.Parse(cfg.PeerTagAVP); err != nil {
			return nil, fmt.Errorf("permissions: peer_tag_avp: %w", err)
		}
	}
	if m.cfg.MaxSubnets <= 0 {
		m.cfg.MaxSubnets = 512
	}
	return m, nil
}

// Close closes the database if the module opened it.
func (m *Module) Close() error {
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	if m.conn == nil || m.shared {
		return nil
	}
	err := m.conn.Close()
	m.conn = nil
	return err
}

func (m *Module) db() (*db.DB, error) {
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	if m.conn != nil {
		return m.conn, nil
	}
	if m.cfg.DBURL == "" {
		return nil, errors.New("permissions: db_url not set")
	}
	d, err := db.Open(m.cfg.DBURL)
	if err != nil {
		return nil, err
	}
	m.conn = d
	return d, nil
}

func (m *Module) addressEnabled() bool {
	return m.cfg.LoadBackends&LoadAddressDB != 0 && (m.cfg.AddressFile != "" || m.cfg.DBURL != "" || m.shared)
}

func (m *Module) trustedEnabled() bool {
	return m.cfg.LoadBackends&LoadTrustedDB != 0 && (m.cfg.DBURL != "" || m.shared)
}

// Load reads the address records (db_url or address_file) and, with
// db_mode 1, the trusted table, checking the table versions first. It
// does nothing for the parts that are not configured.
func (m *Module) Load() error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	m.loaded = true
	if m.addressEnabled() {
		if m.cfg.AddressFile == "" {
			if err := m.checkVersion(m.cfg.AddressTable, AddressVersion); err != nil {
				return err
			}
		}
		if err := m.reloadAddress(); err != nil {
			return err
		}
	}
	if m.trustedEnabled() {
		if err := m.checkVersion(m.cfg.TrustedTable, TrustedVersion); err != nil {
			return err
		}
		if m.cfg.DBMode != 0 {
			if err := m.reloadTrusted(); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensure loads on first use when Load was not called.
func (m *Module) ensure(c *kemi.Ctx) {
	m.loadMu.Lock()
	done := m.loaded
	m.loadMu.Unlock()
	if done {
		return
	}
	if err := m.Load(); err != nil {
		c.Log.Error().Err(err).Msg("permissions: loading failed")
	}
}

func (m *Module) checkVersion(table string, want int) error {
	d, err := m.db()
	if err != nil {
		return err
	}
	v, err := d.TableVersion(table)
	if err != nil {
		return fmt.Errorf("permissions: version of %s: %w", table, err)
	}
	if v != want {
		return fmt.Errorf("permissions: table %s has version %d, want %d (run `kemigo db init`)", table, v, want)
	}
	return nil
}

// Reload re-reads the address records into new tables and switches to
// them (RPC permissions.addressReload). On error the current tables stay.
func (m *Module) Reload() error {
	if !m.addressEnabled() {
		return errors.New("permissions: no address source (db_url or address_file) configured")
	}
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	m.loaded = true
	return m.reloadAddress()
}

// ---- address records ----

// Address is one address record.
type Address struct {
	Group  uint32
	Addr   string // IP address, or host name
	Mask   int    // prefix length (32/128 for a single address)
	Port   int    // 0: any
	Tag    string
	HasTag bool
	ip     netip.Addr
	prefix netip.Prefix
	isHost bool // name, not an IP
}

// addressTables are Kamailio's three address tables: single addresses,
// subnets ordered by group, host names.
type addressTables struct {
	hosts   map[netip.Addr][]*Address // newest first, as Kamailio's hash buckets
	subnets []*Address                // ordered by group, stable
	names   map[string][]*Address     // newest first
	all     []*Address                // load order
}

// parseIP is strtoipX: IPv6 when it starts with '[' or has a ':', IPv4
// otherwise; ok is false for anything else (a host name).
func parseIP(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if s[0] == '[' || strings.IndexByte(s, ':') >= 0 {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// insert is reload_address_insert.
func (t *addressTables) insert(a *Address, maxSubnets int, log zerolog.Logger) error {
	ip, ok := parseIP(a.Addr)
	if !ok {
		a.isHost = true
		t.names[a.Addr] = append([]*Address{a}, t.names[a.Addr]...)
		t.all = append(t.all, a)
		return nil
	}
	bits := ip.BitLen()
	if a.Mask < 0 || a.Mask > bits {
		return fmt.Errorf("bad mask %d for %s", a.Mask, a.Addr)
	}
	if a.Mask == 0 {
		a.Mask = bits
	}
	a.ip = ip
	if a.Mask == bits {
		t.hosts[ip] = append([]*Address{a}, t.hosts[ip]...)
		t.all = append(t.all, a)
		return nil
	}
	if len(t.subnets) >= maxSubnets {
		log.Error().Str("subnet", a.Addr).Int("max_subnets", maxSubnets).Msg("permissions: subnet table is full")
		return nil
	}
	a.prefix = netip.PrefixFrom(ip, a.Mask).Masked()
	i := len(t.subnets)
	for i > 0 && t.subnets[i-1].Group > a.Group {
		i--
	}
	t.subnets = append(t.subnets, nil)
	copy(t.subnets[i+1:], t.subnets[i:])
	t.subnets[i] = a
	t.all = append(t.all, a)
	return nil
}

func newAddressTables() *addressTables {
	return &addressTables{hosts: map[netip.Addr][]*Address{}, names: map[string][]*Address{}}
}

func (m *Module) reloadAddress() error {
	var t *addressTables
	var err error
	if m.cfg.AddressFile != "" {
		t, err = m.readAddressFile(m.cfg.AddressFile)
	} else {
		t, err = m.readAddressTable()
	}
	if err != nil {
		return err
	}
	m.addr.Store(t)
	m.log.Info().Int("records", len(t.all)).Msg("permissions: address table loaded")
	return nil
}

func (m *Module) readAddressTable() (*addressTables, error) {
	d, err := m.db()
	if err != nil {
		return nil, err
	}
	c := m.cfg
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	rows, err := d.QueryContext(ctx, fmt.Sprintf("SELECT %s, %s, %s, %s, %s FROM %s",
		c.GrpCol, c.IPAddrCol, c.MaskCol, c.PortCol, c.TagCol, c.AddressTable))
	if err != nil {
		return nil, fmt.Errorf("permissions: query %s: %w", c.AddressTable, err)
	}
	defer rows.Close()
	t := newAddressTables()
	for rows.Next() {
		var grp, mask, port sql.NullInt64
		var ip, tag sql.NullString
		if err := rows.Scan(&grp, &ip, &mask, &port, &tag); err != nil {
			return nil, fmt.Errorf("permissions: %s: %w", c.AddressTable, err)
		}
		if !grp.Valid || grp.Int64 <= 0 || grp.Int64 > 1<<32-1 || !ip.Valid || !mask.Valid || !port.Valid || port.Int64 < 0 {
			return nil, fmt.Errorf("permissions: %s: invalid record (group %v, address %v, mask %v, port %v)",
				c.AddressTable, grp, ip, mask, port)
		}
		a := &Address{Group: uint32(grp.Int64), Addr: ip.String, Mask: int(mask.Int64), Port: int(port.Int64), Tag: tag.String, HasTag: tag.Valid}
		if err := t.insert(a, m.cfg.MaxSubnets, m.log); err != nil {
			return nil, fmt.Errorf("permissions: %s: invalid record: %w", c.AddressTable, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// readAddressFile reads address_file: "group address [mask [port [tag]]]"
// per line; '#' starts a comment.
func (m *Module) readAddressFile(path string) (*addressTables, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("permissions: address_file: %w", err)
	}
	defer f.Close()
	t := newAddressTables()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("permissions: %s:%d: want \"group address [mask [port [tag]]]\"", path, n)
		}
		nums := [3]int{}
		for i := 0; i < 3; i++ {
			idx := []int{0, 2, 3}[i]
			if idx >= len(fields) {
				break
			}
			v := 0
			for _, ch := range fields[idx] {
				if ch < '0' || ch > '9' {
					return nil, fmt.Errorf("permissions: %s:%d: %q is not a number", path, n, fields[idx])
				}
				v = v*10 + int(ch-'0')
				if v > 1<<31 {
					return nil, fmt.Errorf("permissions: %s:%d: %q is too big", path, n, fields[idx])
				}
			}
			nums[i] = v
		}
		a := &Address{Group: uint32(nums[0]), Addr: fields[1], Mask: nums[1], Port: nums[2]}
		if len(fields) > 4 {
			a.Tag, a.HasTag = fields[4], true
		}
		if err := t.insert(a, m.cfg.MaxSubnets, m.log); err != nil {
			return nil, fmt.Errorf("permissions: %s:%d: %w", path, n, err)
		}
	}
	return t, sc.Err()
}

// Addresses returns the loaded address records in load order (RPC
// permissions.addressDump / subnetDump / domainDump).
func (m *Module) Addresses() []Address {
	t := m.addr.Load()
	if t == nil {
		return nil
	}
	out := make([]Address, len(t.all))
	for i, a := range t.all {
		out[i] = *a
	}
	return out
}

func portMatch(entry, port int) bool { return entry == 0 || entry == port }

func (m *Module) setTag(c *kemi.Ctx, a *Address) {
	if m.cfg.PeerTagAVP == "" || !a.HasTag {
		return
	}
	if err := pv.Set(c, m.cfg.PeerTagAVP, val.OfStr(a.Tag)); err != nil {
		c.Log.Error().Err(err).Msg("permissions: setting peer_tag_avp failed")
	}
}

// match is match_addr_hash_table then match_subnet_table (group > 0),
// or find_group_* (group < 0: any group). It returns the group matched,
// or -1.
func (m *Module) match(c *kemi.Ctx, group int64, addr string, port int, names bool) int64 {
	m.ensure(c)
	t := m.addr.Load()
	if t == nil {
		return -1
	}
	anyGroup := group < 0
	ip, isIP := parseIP(addr)
	if !isIP {
		if !names {
			return -1
		}
		for _, a := range t.names[addr] {
			if (anyGroup || int64(a.Group) == group) && portMatch(a.Port, port) {
				if !anyGroup {
					m.setTag(c, a)
				}
				return int64(a.Group)
			}
		}
		return -1
	}
	for _, a := range t.hosts[ip] {
		if (anyGroup || int64(a.Group) == group) && portMatch(a.Port, port) {
			m.setTag(c, a)
			return int64(a.Group)
		}
	}
	for _, a := range t.subnets {
		if !anyGroup && int64(a.Group) != group {
			continue
		}
		if portMatch(a.Port, port) && a.prefix.Contains(ip) {
			m.setTag(c, a)
			return int64(a.Group)
		}
	}
	return -1
}

func boolRC(group int64) int {
	if group < 0 {
		return -1
	}
	return 1
}

// AllowAddress is allow_address(group, addr, port): 1 when addr (an IP
// or a host name of a record) and port match a record of group (port 0
// in a record matches any port), else -1.
func (m *Module) AllowAddress(c *kemi.Ctx, group int, addr string, port int) int {
	if group < 0 {
		return -1
	}
	return boolRC(m.match(c, int64(group), addr, port, true))
}

// AllowSourceAddress is allow_source_address(group): allow_address with
// the source IP and port of the message.
func (m *Module) AllowSourceAddress(c *kemi.Ctx, group int) int {
	if group < 0 {
		return -1
	}
	return boolRC(m.match(c, int64(group), c.Msg.SrcIP, c.Msg.SrcPort, false))
}

// AllowAddressGroup is allow_address_group(addr, port): the group of the
// first record matching addr and port (single addresses first, then
// subnets by group, then host names), or -1.
func (m *Module) AllowAddressGroup(c *kemi.Ctx, addr string, port int) int {
	return int(m.match(c, -1, addr, port, true))
}

// AllowSourceAddressGroup is allow_source_address_group(): the group of
// the message's source address and port, or -1.
func (m *Module) AllowSourceAddressGroup(c *kemi.Ctx) int {
	return int(m.match(c, -1, c.Msg.SrcIP, c.Msg.SrcPort, false))
}
