// Package rr is Kamailio's rr module (target 5.6.3): Record-Route
// insertion (record_route and its preset / advertised variants, with
// parameters), loose routing of requests that carry a route set
// (loose_route, RFC 3261 §16.4 / §16.12, with strict-router translation),
// and the checks on the Route that pointed to this proxy
// (check_route_param, is_direction, next_hop_route).
//
// Record-Route headers depend on the socket a request leaves on, so
// record_route only records what to insert (per message, in
// Msg.Ext["rr"]); the forwarding code calls Module.OnForward on every
// outgoing copy to insert the header(s). Route headers consumed by
// loose_route are removed through a queued header edit (Msg.QueueReplace
// of "Route"), applied by Msg.ApplyEdits on the outgoing copy like every
// other header edit: reads in the script keep seeing the received Route
// headers, as with Kamailio's lumps.
package rr

import (
	"fmt"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// Myself says whether host (an IP or name, IPv6 without brackets), port
// (0: any) and proto ("udp", "tcp", ...; "": any) is one of this proxy's
// listening addresses, as Kamailio's check_self.
type Myself interface {
	IsMyself(host string, port int, proto string) bool
}

// SocketFinder is optionally implemented by the Myself given to New: it
// returns the local socket ("proto:ip:port", the sipmsg.Msg.SendSock
// format) matching host, port (0: any) and proto ("": any, tried in the
// order udp, tcp, tls, sctp), as Kamailio's grep_sock_info. Without it,
// rr finds the socket only when host is an IP address and the port is
// known, by asking IsMyself for each transport.
type SocketFinder interface {
	FindSocket(host string, port int, proto string) (sock string, ok bool)
}

// Kamailio return codes used by the module.
const (
	rrDriven    = 1  // RR_DRIVEN
	rrError     = -1 // RR_ERROR / RR_NOT_DRIVEN
	rrPreloaded = -3 // RR_PRELOADED
	eCfg        = -6 // E_CFG
)

const (
	sipPort        = 5060
	rrParamBufSize = 512 // RR_PARAM_BUF_SIZE
	extKey         = "rr"
)

// Module is the rr module.
type Module struct {
	cfg     Config
	myself  Myself
	userAVP string // custom_user_avp PV name, "" when unset
}

// New returns the module. myself may be nil: then no address is this
// proxy (loose_route never removes a Route). custom_user_avp must be an
// $avp(...) name.
func New(cfg Config, myself Myself) (*Module, error) {
	m := &Module{cfg: cfg, myself: myself}
	if s := strings.TrimSpace(cfg.CustomUserAVP); s != "" {
		spec, err := pv.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("rr: custom_user_avp: %w", err)
		}
		if spec.Class != "avp" {
			return nil, fmt.Errorf("rr: custom_user_avp %q is not an AVP", s)
		}
		m.userAVP = s
	}
	if cfg.EnableDoubleRR < 0 || cfg.EnableDoubleRR > 2 {
		return nil, fmt.Errorf("rr: enable_double_rr %d not in 0..2", cfg.EnableDoubleRR)
	}
	registerPVs(m)
	return m, nil
}

// rrKind is how a queued Record-Route is built.
type rrKind uint8

const (
	kindLocal      rrKind = iota // record_route: the sockets' addresses
	kindAdvertised               // record_route_advertised_address
	kindPreset                   // record_route_preset(_one)
)

// rrEntry is one queued Record-Route (one or two headers when sent).
type rrEntry struct {
	kind   rrKind
	sips   bool
	user   string
	tag    string // ftag value, "" for none
	params string // record_route_params argument
	buf    string // add_rr_param text given before the Record-Route
	addr   string // advertised address / preset text
	// add_rr_param text given after: to the outbound (top) header of a
	// double Record-Route, and to the inbound (or only) one.
	extraOut, extraIn string
}

// state is the per-message rr state, stored as a value in Msg.Ext["rr"]
// so that a copy of the message (per branch) with a copied Ext map has
// its own. Slices are never appended to in place.
type state struct {
	rrs []rrEntry
	// routed: loose_route found the URI that pointed to this proxy;
	// routedParams are its parameters (without the leading ';'),
	// fromRURI when that URI was the R-URI (previous hop strict router).
	routed       bool
	routedParams string
	fromRURI     bool
	routeAddr    bool  // FL_ROUTE_ADDR: next hop taken from a Route after ours
	dir          uint8 // cached is_direction result (dirDown / dirUp), 0 unknown
}

const (
	dirDown uint8 = 1 // RR_FLOW_DOWNSTREAM
	dirUp   uint8 = 2 // RR_FLOW_UPSTREAM
)

func getState(m *sipmsg.Msg) state {
	st, _ := m.Ext[extKey].(state)
	return st
}

func setState(m *sipmsg.Msg, st state) {
	if m.Ext == nil {
		m.Ext = map[string]any{}
	}
	m.Ext[extKey] = st
}

// ---- Record-Route ----

// RecordRoute is record_route() / record_route_params(params): it queues
// this proxy's Record-Route, written by OnForward with the receiving and
// sending sockets. params is appended after ";lr" and ";ftag=" (give it
// with its leading ';'). -1 when a Record-Route was already added to the
// message (not counting ones added in a branch route) or on a parse
// error; 1 otherwise.
func (mod *Module) RecordRoute(c *kemi.Ctx, params string) int {
	m := c.Msg
	if m.RRDone || m.Req == nil {
		if m.RRDone {
			c.Log.Error().Msg("rr: double attempt to record-route")
		}
		return -1
	}
	e, ok := mod.newEntry(c, kindLocal)
	if !ok {
		return -1
	}
	e.params = params
	e.buf = m.RRParams
	m.RRParams = ""
	st := getState(m)
	st.rrs = append(slices.Clip(st.rrs), e)
	setState(m, st)
	if c.Route != kemi.RouteBranch {
		m.RRDone = true
	}
	return 1
}

// RecordRoutePreset is record_route_preset(addr1, addr2): Record-Route
// "<sip:[user@]addr1[;ftag=..][params];lr>", and a second one with addr2
// when addr2 is not empty (which needs enable_double_rr). Nothing is added
// automatically to the address: it is written as given. -1 after an
// earlier Record-Route, or with addr2 and enable_double_rr 0.
func (mod *Module) RecordRoutePreset(c *kemi.Ctx, addr1, addr2 string) int {
	m := c.Msg
	if m.RRDone || m.Req == nil {
		return -1
	}
	if addr2 != "" && mod.cfg.EnableDoubleRR == 0 {
		c.Log.Error().Msg("rr: double record-route preset while enable_double_rr is 0")
		return -1
	}
	st := getState(m)
	rrs := slices.Clip(st.rrs)
	addrs := []string{addr1}
	if addr2 != "" {
		addrs = append(addrs, addr2)
	}
	for _, a := range addrs {
		e, ok := mod.newEntry(c, kindPreset)
		if !ok {
			return -1
		}
		e.addr = a
		e.buf = m.RRParams
		rrs = append(rrs, e)
	}
	st.rrs = rrs
	setState(m, st)
	m.RRParams = ""
	m.RRDone = true
	return 1
}

// RecordRoutePresetOne is record_route_preset_one(addr).
func (mod *Module) RecordRoutePresetOne(c *kemi.Ctx, addr string) int {
	m := c.Msg
	if m.RRDone || m.Req == nil {
		return -1
	}
	e, ok := mod.newEntry(c, kindPreset)
	if !ok {
		return -1
	}
	e.addr = addr
	e.buf = m.RRParams
	st := getState(m)
	st.rrs = append(slices.Clip(st.rrs), e)
	setState(m, st)
	m.RRDone = true
	return 1
}

// RecordRouteAdvertised is record_route_advertised_address(addr): like
// record_route with addr ("host[:port]") in place of the socket
// addresses; a ";transport=" of each side is added when the two
// transports differ, and two headers are written only then.
func (mod *Module) RecordRouteAdvertised(c *kemi.Ctx, addr string) int {
	m := c.Msg
	if m.RRDone || m.Req == nil {
		return -1
	}
	e, ok := mod.newEntry(c, kindAdvertised)
	if !ok {
		return -1
	}
	e.addr = addr
	e.buf = m.RRParams
	st := getState(m)
	st.rrs = append(slices.Clip(st.rrs), e)
	setState(m, st)
	m.RRDone = true
	return 1
}

// newEntry fills the user, ftag and scheme of a Record-Route the way
// record.c does for each kind.
func (mod *Module) newEntry(c *kemi.Ctx, kind rrKind) (rrEntry, bool) {
	m := c.Msg
	e := rrEntry{kind: kind}
	if mod.cfg.AddUsername != 0 {
		e.user = mod.customUser(c)
		if e.user == "" {
			e.user = m.Req.Recipient.User
			if e.user == "" && m.NewURI != "" {
				if u := m.RURIParsed(); u != nil {
					e.user = u.User
				}
			}
		}
		if kind == kindLocal && mod.cfg.IgnoreUser != "" && e.user == mod.cfg.IgnoreUser {
			if e.user[0] == 'x' {
				e.user = "y" + e.user[1:]
			} else {
				e.user = "x" + e.user[1:]
			}
		}
	}
	if mod.cfg.AppendFromtag != 0 {
		name := "from"
		if kind != kindPreset && mod.direction(m) == dirUp {
			name = "to"
		}
		tag, ok := headerTag(m.Header(name))
		if !ok {
			c.Log.Error().Str("header", name).Msg("rr: header parsing failed")
			return e, false
		}
		e.tag = tag
	}
	if mod.cfg.IgnoreSips == 0 {
		if u := m.RURIParsed(); u != nil && strings.EqualFold(u.Scheme, "sips") {
			e.sips = true
		}
	}
	return e, true
}

// customUser returns the custom_user_avp value, "" when unset or empty.
func (mod *Module) customUser(c *kemi.Ctx) string {
	if mod.userAVP == "" {
		return ""
	}
	v, err := pv.Get(c, mod.userAVP)
	if err != nil || v.IsNull() {
		return ""
	}
	return v.String()
}

// AddRRParam is add_rr_param(param): param (with its leading ';') goes
// into this proxy's Record-Route. Before record_route it is kept for it
// (at most 512 bytes in all, else -1); after, it is added to the queued
// Record-Route: with enable_double_rr to both headers of a double
// Record-Route, and -1 (the first still gets it) when the first queued
// Record-Route is a single preset, as Kamailio's lump search does.
func (mod *Module) AddRRParam(c *kemi.Ctx, param string) int {
	m := c.Msg
	st := getState(m)
	if len(st.rrs) == 0 {
		if len(m.RRParams)+len(param) > rrParamBufSize {
			c.Log.Error().Msg("rr: maximum size of rr_param_buf exceeded")
			return -1
		}
		m.RRParams += param
		return 1
	}
	// The lumps Kamailio searches: one per header it may write, in order.
	type slot struct {
		i   int
		out bool
	}
	var slots []slot
	for i, e := range st.rrs {
		if e.kind != kindPreset && mod.cfg.EnableDoubleRR != 0 {
			slots = append(slots, slot{i, true})
		}
		slots = append(slots, slot{i, false})
	}
	rrs := slices.Clone(st.rrs)
	add := func(s slot) {
		if s.out {
			rrs[s.i].extraOut += param
		} else {
			rrs[s.i].extraIn += param
		}
	}
	add(slots[0])
	rc := 1
	if mod.cfg.EnableDoubleRR != 0 {
		if len(slots) > 1 {
			add(slots[1])
		} else {
			c.Log.Error().Msg("rr: failed to locate double RR lump")
			rc = -1
		}
	}
	st.rrs = rrs
	setState(m, st)
	return rc
}

// RemoveRecordRoute is remove_record_route(): drops the Record-Route
// headers queued for the message. The message still counts as
// record-routed (a later record_route returns -1), as in Kamailio.
func (mod *Module) RemoveRecordRoute(c *kemi.Ctx) int {
	st := getState(c.Msg)
	if len(st.rrs) > 0 {
		st.rrs = nil
		setState(c.Msg, st)
	}
	return 1
}

// headerTag returns the tag parameter of a From/To header; ok is false
// when there is no header.
func headerTag(h sip.Header) (tag string, ok bool) {
	switch v := h.(type) {
	case nil:
		return "", false
	case *sip.FromHeader:
		t, _ := v.Params.Get("tag")
		return t, true
	case *sip.ToHeader:
		t, _ := v.Params.Get("tag")
		return t, true
	}
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(h.Value(), &u, &params); err != nil {
		return "", false
	}
	t, _ := params.Get("tag")
	return t, true
}
