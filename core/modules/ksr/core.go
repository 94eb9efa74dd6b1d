package ksr

import (
	"net"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

var (
	vTrue  = val.OfBool(true)
	vFalse = val.OfBool(false)
	vZero  = val.OfInt(0) // what "none" functions return to Python
)

// ---- logging ----

// logAt logs the text as is (minus the trailing newline scripts add for
// Kamailio's log). klevel names Kamailio levels zerolog lacks.
func logAt(level zerolog.Level, klevel string) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		ev := c.Log.WithLevel(level)
		if klevel != "" {
			ev = ev.Str("klevel", klevel)
		}
		ev.Msg(strings.TrimSuffix(a[0].S, "\n"))
		return vZero
	}
}

var logLevels = map[string]kemi.Func{
	"dbg":    logAt(zerolog.DebugLevel, ""),
	"info":   logAt(zerolog.InfoLevel, ""),
	"notice": logAt(zerolog.InfoLevel, "notice"),
	"warn":   logAt(zerolog.WarnLevel, ""),
	"err":    logAt(zerolog.ErrorLevel, ""),
	"crit":   logAt(zerolog.ErrorLevel, "crit"),
}

func kLog(c *kemi.Ctx, a []val.Value) val.Value {
	f, ok := logLevels[strings.ToLower(a[0].S)]
	if !ok {
		f = logLevels["err"] // unknown levels log as err
	}
	return f(c, a[1:])
}

// getDebug maps the logger's level to Kamailio's debug numbering
// (L_DBG 3, L_INFO 2, L_NOTICE 1, L_WARN 0, L_ERR -1, L_CRIT -2).
func getDebug(c *kemi.Ctx, _ []val.Value) val.Value {
	lvl := c.Log.GetLevel()
	if g := zerolog.GlobalLevel(); g > lvl {
		lvl = g
	}
	switch {
	case lvl <= zerolog.DebugLevel:
		return val.OfInt(3)
	case lvl == zerolog.InfoLevel:
		return val.OfInt(2)
	case lvl == zerolog.WarnLevel:
		return val.OfInt(0)
	case lvl == zerolog.ErrorLevel:
		return val.OfInt(-1)
	}
	return val.OfInt(-2)
}

// ---- is_myself ----

// check is Kamailio's is_myself on a string: a sip:/sips: URI (host, and
// port and transport when given) or a bare host.
func (m *Module) check(c *kemi.Ctx, s string) bool {
	if m.me == nil || s == "" {
		return false
	}
	if len(s) > 4 && (strings.HasPrefix(s, "sip:") || strings.HasPrefix(s, "sips:")) {
		u := sip.Uri{}
		if err := sip.ParseUri(s, &u); err != nil {
			c.Log.Error().Msgf("failed to parse uri [%s]", s)
			return false
		}
		t, _ := u.UriParams.Get("transport")
		return m.me.IsMyself(u.Host, u.Port, strings.ToLower(t))
	}
	return m.me.IsMyself(s, 0, "")
}

func (m *Module) isMyself(c *kemi.Ctx, a []val.Value) val.Value {
	return val.OfBool(m.check(c, a[0].S))
}

func (m *Module) isMyselfRURI(c *kemi.Ctx, _ []val.Value) val.Value {
	if !c.Msg.IsRequest() {
		return vFalse // a reply has no R-URI
	}
	return val.OfBool(m.check(c, c.Msg.RURI()))
}

func (m *Module) isMyselfDURI(c *kemi.Ctx, _ []val.Value) val.Value {
	return val.OfBool(m.check(c, c.Msg.DstURI))
}

func (m *Module) isMyselfNHURI(c *kemi.Ctx, a []val.Value) val.Value {
	if c.Msg.DstURI != "" {
		return m.isMyselfDURI(c, a)
	}
	return m.isMyselfRURI(c, a)
}

func (m *Module) isMyselfAddr(name string) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		var u *sip.Uri
		if name == "From" {
			if h := c.Msg.SIP().From(); h != nil {
				u = &h.Address
			}
		} else if h := c.Msg.SIP().To(); h != nil {
			u = &h.Address
		}
		if u == nil {
			return vFalse
		}
		return val.OfBool(m.check(c, u.String()))
	}
}

func (m *Module) isMyselfSURI(c *kemi.Ctx, _ []val.Value) val.Value {
	return val.OfBool(m.check(c, pv.SrcURI(c.Msg)))
}

func (m *Module) isMyselfSrcIP(c *kemi.Ctx, _ []val.Value) val.Value {
	return val.OfBool(m.me != nil && c.Msg.SrcIP != "" && m.me.IsMyself(c.Msg.SrcIP, 0, ""))
}

// ---- flags ----

type flagOp uint8

const (
	opSet flagOp = iota
	opReset
	opTest
)

// flagIn checks Kamailio's flag_in_range (0..31), logging the error it logs.
func flagIn(c *kemi.Ctx, f int64) bool {
	if f < 0 || f > 31 {
		c.Log.Error().Msgf("invalid flag parameter %d", f)
		return false
	}
	return true
}

// applyFlag does op on bit f of *flags and returns the KEMI result.
func applyFlag(flags *uint32, op flagOp, f int64) val.Value {
	bit := uint32(1) << uint(f)
	switch op {
	case opSet:
		*flags |= bit
	case opReset:
		*flags &^= bit
	case opTest:
		return val.OfBool(*flags&bit != 0)
	}
	return vTrue
}

func msgFlag(op flagOp) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		if !flagIn(c, a[0].I) {
			return vFalse
		}
		return applyFlag(&c.Msg.Flags, op, a[0].I)
	}
}

// bFlag handles branch flags. kemigo keeps only branch 0 ($bf) on the
// message, so other branch indexes give False.
func bFlag(op flagOp, withBranch bool) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		if !flagIn(c, a[0].I) {
			return vFalse
		}
		if withBranch && a[1].I != 0 {
			c.Log.Debug().Msgf("branch %d flags not supported", a[1].I)
			return vFalse
		}
		return applyFlag(&c.Msg.BFlags, op, a[0].I)
	}
}

// sFlag handles script flags: process-wide in Kamailio, so per worker.
func (m *Module) sFlag(op flagOp) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		if !flagIn(c, a[0].I) {
			return vFalse
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		f := m.sflags[c.Worker]
		r := applyFlag(&f, op, a[0].I)
		m.sflags[c.Worker] = f
		return r
	}
}

// ---- R-URI, $du, misc ----

func setURI(c *kemi.Ctx, a []val.Value) val.Value {
	if err := pv.Set(c, "$ru", a[0]); err != nil {
		c.Log.Error().Err(err).Msg("updating r-uri failed")
		return vFalse
	}
	return vTrue
}

// setPart is setuser / sethost: the $rU / $rd assignments.
func setPart(name string) kemi.Func {
	return func(c *kemi.Ctx, a []val.Value) val.Value {
		if err := pv.Set(c, name, a[0]); err != nil {
			c.Log.Error().Err(err).Msg("do action failed")
			return vFalse
		}
		return vTrue
	}
}

// setDstURI always returns True, even on failure, as kemi.c does.
func setDstURI(c *kemi.Ctx, a []val.Value) val.Value {
	c.Msg.DstURI = a[0].S
	return vTrue
}

func resetDstURI(c *kemi.Ctx, _ []val.Value) val.Value {
	c.Msg.DstURI = ""
	return vTrue
}

func isDstURISet(c *kemi.Ctx, _ []val.Value) val.Value { return val.OfBool(c.Msg.DstURI != "") }

func forceRport(c *kemi.Ctx, _ []val.Value) val.Value {
	c.Msg.ForceRport = true
	return vTrue
}

// addLocalRport returns True like Kamailio, but sipmsg.Msg has no field
// for FL_ADD_LOCAL_RPORT yet, so the proxy's Via is not changed.
func addLocalRport(c *kemi.Ctx, _ []val.Value) val.Value {
	c.Log.Debug().Msg("add_local_rport: not supported, ignored")
	return vTrue
}

// setDrop marks the route context; the caller decides what it means (it is
// ignored in request_route, SPEC §5.4).
func setDrop(c *kemi.Ctx, _ []val.Value) val.Value {
	c.Drop = true
	return vZero
}

// route: KSR.route runs native cfg routes; a kemigo config has none, and
// Kamailio returns -1 for an unknown route name.
func route(c *kemi.Ctx, a []val.Value) val.Value {
	c.Log.Debug().Msgf("route [%s] not found (no native cfg routes)", a[0].S)
	return val.OfInt(-1)
}

// ---- methods ----

// standard are the methods Kamailio gives an id (parse_methods); others
// are METHOD_OTHER.
var standard = map[string]bool{"INVITE": true, "CANCEL": true, "ACK": true, "BYE": true,
	"INFO": true, "REGISTER": true, "SUBSCRIBE": true, "NOTIFY": true, "MESSAGE": true,
	"OPTIONS": true, "PRACK": true, "UPDATE": true, "REFER": true, "PUBLISH": true,
	"KDMQ": true, "GET": true, "POST": true, "PUT": true, "DELETE": true}

// letters of is_method_in (kemi.c); INFO has none.
var letters = map[byte]string{'I': "INVITE", 'A': "ACK", 'B': "BYE", 'C': "CANCEL",
	'M': "MESSAGE", 'R': "REGISTER", 'E': "PRACK", 'P': "PUBLISH", 'S': "SUBSCRIBE",
	'N': "NOTIFY", 'O': "OPTIONS", 'F': "REFER", 'G': "GET", 'U': "UPDATE", 'K': "KDMQ",
	'D': "DELETE", 'T': "POST", 'V': "PUT"}

// method returns the request method, or the CSeq method of a reply.
func method(c *kemi.Ctx) string { return c.Msg.Method() }

func methodIs(name string) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		return val.OfBool(strings.EqualFold(method(c), name))
	}
}

func isMethodIn(c *kemi.Ctx, a []val.Value) val.Value {
	if a[0].S == "" {
		c.Log.Warn().Msg("invalid parameters")
		return vFalse
	}
	mth := strings.ToUpper(method(c))
	if !standard[mth] {
		return vFalse
	}
	for i := 0; i < len(a[0].S); i++ {
		l := a[0].S[i]
		if l >= 'a' && l <= 'z' {
			l -= 'a' - 'A'
		}
		want, ok := letters[l]
		if !ok {
			c.Log.Warn().Msgf("unsupported method flag: %c", a[0].S[i])
			continue
		}
		if want == mth {
			return vTrue
		}
	}
	return vFalse
}

func isMethod(c *kemi.Ctx, a []val.Value) val.Value {
	want := a[0].S
	if want == "" {
		c.Log.Warn().Msg("invalid parameters")
		return vFalse
	}
	mth := method(c)
	if !strings.Contains(want, "|") || !standard[strings.ToUpper(mth)] {
		return val.OfBool(strings.EqualFold(mth, want))
	}
	// a list: only standard method names are accepted
	found := false
	for _, w := range strings.Split(want, "|") {
		w = strings.ToUpper(strings.TrimSpace(w))
		if !standard[w] {
			c.Log.Error().Msgf("unknown method in list [%s] - use only standard SIP methods", want)
			return vFalse
		}
		if w == strings.ToUpper(mth) {
			found = true
		}
	}
	return val.OfBool(found)
}

// ---- transport ----

func protoIs(protos ...string) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		p := strings.ToLower(c.Msg.Proto)
		for _, w := range protos {
			if p == w {
				return vTrue
			}
		}
		return vFalse
	}
}

var protoLetters = map[byte]string{'e': "tls", 's': "sctp", 't': "tcp", 'u': "udp", 'v': "ws", 'w': "wss"}

func isProto(c *kemi.Ctx, a []val.Value) val.Value {
	p := strings.ToLower(c.Msg.Proto)
	for _, l := range strings.ToLower(a[0].S) {
		if l < 128 && protoLetters[byte(l)] == p && p != "" {
			return vTrue
		}
	}
	return vFalse
}

// ipFamily returns 4, 6 or 0 for a host (brackets allowed).
func ipFamily(host string) int {
	ip := net.ParseIP(strings.Trim(host, "[]"))
	switch {
	case ip == nil:
		return 0
	case ip.To4() != nil:
		return 4
	}
	return 6
}

// isAF tests the family of the local socket the message came in on.
func isAF(af int) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value { return val.OfBool(ipFamily(c.Msg.DstIP) == af) }
}

func isSrcPort(c *kemi.Ctx, a []val.Value) val.Value {
	return val.OfBool(int64(c.Msg.SrcPort) == a[0].I)
}

func isDstPort(c *kemi.Ctx, a []val.Value) val.Value {
	return val.OfBool(c.Msg.DstPort != 0 && int64(c.Msg.DstPort) == a[0].I)
}

// nextHop returns the transport and host the message goes to next: for a
// request from $du or the R-URI (transport "" when the URI has no
// transport parameter, like Kamailio's PROTO_NONE), for a reply from the
// second Via (its received= when present).
func nextHop(m *sipmsg.Msg) (proto, host string) {
	if !m.IsRequest() {
		vias := m.Headers("Via")
		if len(vias) < 2 {
			return "", ""
		}
		v, ok := vias[1].(*sip.ViaHeader)
		if !ok {
			return "", ""
		}
		host = v.Host
		if r, ok := v.Params.Get("received"); ok && r != "" {
			host = r
		}
		return strings.ToLower(v.Transport), host
	}
	s := m.DstURI
	if s == "" {
		s = m.RURI()
	}
	u := sip.Uri{}
	if err := sip.ParseUri(s, &u); err != nil {
		return "", ""
	}
	t, _ := u.UriParams.Get("transport")
	return strings.ToLower(t), u.Host
}

func toProto(protos ...string) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		p, _ := nextHop(c.Msg)
		for _, w := range protos {
			if p == w {
				return vTrue
			}
		}
		return vFalse
	}
}

func toAF(af int) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		_, h := nextHop(c.Msg)
		return val.OfBool(ipFamily(h) == af)
	}
}
