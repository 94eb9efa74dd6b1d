package permissions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

// Trusted is one trusted record.
type Trusted struct {
	SrcIP       string
	Proto       string // any, udp, tcp, tls, sctp, ws, wss
	FromPattern string // "" = none (NULL)
	RURIPattern string
	Tag         string
	HasTag      bool
	Priority    int
	from, ruri  *regexp.Regexp
	bad         bool // a pattern does not compile: never matches
}

// trustedTable is the db_mode 1 cache: records by source IP, highest
// priority first (equal priorities in load order), as hash_table_insert.
type trustedTable map[string][]*Trusted

var protos = map[string]bool{"any": true, "udp": true, "tcp": true, "tls": true, "sctp": true, "ws": true, "wss": true}

// ReloadTrusted re-reads the trusted table into the cache (db_mode 1;
// RPC permissions.trustedReload). On error the current cache stays.
func (m *Module) ReloadTrusted() error {
	if !m.trustedEnabled() {
		return errors.New("permissions: db_url not set")
	}
	if m.cfg.DBMode == 0 {
		return errors.New("permissions: the trusted table is not cached (db_mode = 0)")
	}
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	m.loaded = true
	return m.reloadTrusted()
}

func (m *Module) compile(pat string) *regexp.Regexp {
	if v, ok := m.regexps.Load(pat); ok {
		return v.(*regexp.Regexp)
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		m.log.Error().Err(err).Str("pattern", pat).Msg("permissions: invalid regular expression")
		re = nil
	}
	m.regexps.Store(pat, re)
	return re
}

func (m *Module) newTrusted(src, proto string, from, ruri, tag sql.NullString, prio int) *Trusted {
	t := &Trusted{SrcIP: src, Proto: strings.ToLower(proto), Tag: tag.String, HasTag: tag.Valid, Priority: prio}
	if from.Valid {
		t.FromPattern = from.String
		if t.from = m.compile(from.String); t.from == nil {
			t.bad = true
		}
	}
	if ruri.Valid {
		t.RURIPattern = ruri.String
		if t.ruri = m.compile(ruri.String); t.ruri == nil {
			t.bad = true
		}
	}
	return t
}

func (m *Module) reloadTrusted() error {
	d, err := m.db()
	if err != nil {
		return err
	}
	c := m.cfg
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	rows, err := d.QueryContext(ctx, fmt.Sprintf("SELECT %s, %s, %s, %s, %s, %s FROM %s",
		c.SourceCol, c.ProtoCol, c.FromCol, c.RuriCol, c.TagCol, c.PriorityCol, c.TrustedTable))
	if err != nil {
		return fmt.Errorf("permissions: query %s: %w", c.TrustedTable, err)
	}
	defer rows.Close()
	t := trustedTable{}
	n := 0
	for rows.Next() {
		var src, proto, from, ruri, tag sql.NullString
		var prio sql.NullInt64
		if err := rows.Scan(&src, &proto, &from, &ruri, &tag, &prio); err != nil {
			return fmt.Errorf("permissions: %s: %w", c.TrustedTable, err)
		}
		if !src.Valid || !proto.Valid {
			return fmt.Errorf("permissions: %s: invalid record (src_ip %v, proto %v)", c.TrustedTable, src, proto)
		}
		p := strings.ToLower(proto.String)
		if p == "none" {
			continue
		}
		if !protos[p] {
			return fmt.Errorf("permissions: %s: unknown protocol %q", c.TrustedTable, proto.String)
		}
		e := m.newTrusted(src.String, p, from, ruri, tag, int(prio.Int64))
		t[e.SrcIP] = append(t[e.SrcIP], e)
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range t {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Priority > l[j].Priority })
	}
	m.trusted.Store(&t)
	m.log.Info().Int("records", n).Msg("permissions: trusted table loaded")
	return nil
}

// queryTrusted is the db_mode 0 lookup: the records of src ordered by
// priority (ascending, as Kamailio's query does).
func (m *Module) queryTrusted(src string) ([]*Trusted, error) {
	d, err := m.db()
	if err != nil {
		return nil, err
	}
	c := m.cfg
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	rows, err := d.QueryContext(ctx, d.Rebind(fmt.Sprintf("SELECT %s, %s, %s, %s FROM %s WHERE %s = ? ORDER BY %s",
		c.ProtoCol, c.FromCol, c.RuriCol, c.TagCol, c.TrustedTable, c.SourceCol, c.PriorityCol)), src)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Trusted
	for rows.Next() {
		var proto, from, ruri, tag sql.NullString
		if err := rows.Scan(&proto, &from, &ruri, &tag); err != nil {
			return nil, err
		}
		if !proto.Valid {
			continue
		}
		out = append(out, m.newTrusted(src, proto.String, from, ruri, tag, 0))
	}
	return out, rows.Err()
}

// srcText prints the source IP as Kamailio's ip_addr2a (compressed IPv6).
func srcText(ip string) string {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")); err == nil {
		return a.String()
	}
	return ip
}

// AllowTrusted is allow_trusted(): 1 when a trusted record has the
// message's source IP, a protocol that is "any" or the message's, a
// from_pattern matching the From URI and an ruri_pattern matching the
// R-URI (absent patterns match). With peer_tag_mode 1 it returns the
// number of matching records and sets the tag of each. -1 otherwise.
func (m *Module) AllowTrusted(c *kemi.Ctx) int {
	msg := c.Msg
	if !m.trustedEnabled() {
		return -1
	}
	src := srcText(msg.SrcIP)
	var list []*Trusted
	if m.cfg.DBMode != 0 {
		m.ensure(c)
		if t := m.trusted.Load(); t != nil {
			list = (*t)[src]
		}
	} else {
		var err error
		if list, err = m.queryTrusted(src); err != nil {
			c.Log.Error().Err(err).Msg("permissions: failed to query the trusted table")
			return -1
		}
	}
	if len(list) == 0 {
		return -1
	}
	proto := strings.ToLower(msg.Proto)
	var from, ruri string
	if msg.Req != nil {
		if f := msg.Req.From(); f != nil {
			from = f.Address.String()
		}
		ruri = msg.Req.Recipient.String()
	}
	count := 0
	for _, e := range list {
		if e.Proto != "any" && proto != "" && e.Proto != proto {
			continue
		}
		if msg.Req != nil {
			if e.bad || (e.from != nil && !e.from.MatchString(from)) || (e.ruri != nil && !e.ruri.MatchString(ruri)) {
				continue
			}
		}
		if m.cfg.PeerTagAVP != "" && e.HasTag {
			if err := m.setTagValue(c, e.Tag); err != nil {
				c.Log.Error().Err(err).Msg("permissions: setting peer_tag_avp failed")
				return -1
			}
		}
		if m.cfg.PeerTagMode == 0 {
			return 1
		}
		count++
	}
	if count == 0 {
		return -1
	}
	return count
}

// TrustedRecords returns the cached trusted records (db_mode 1; RPC
// permissions.trustedDump), by source IP and priority.
func (m *Module) TrustedRecords() []Trusted {
	t := m.trusted.Load()
	if t == nil {
		return nil
	}
	keys := make([]string, 0, len(*t))
	for k := range *t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Trusted
	for _, k := range keys {
		for _, e := range (*t)[k] {
			out = append(out, *e)
		}
	}
	return out
}

func (m *Module) setTagValue(c *kemi.Ctx, tag string) error {
	return pv.Set(c, m.cfg.PeerTagAVP, val.OfStr(tag))
}
