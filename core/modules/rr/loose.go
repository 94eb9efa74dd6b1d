package rr

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// routeEntry is one URI of the received route set.
type routeEntry struct {
	hdr  int     // index of the Route header it is in
	uri  sip.Uri // parsed URI
	text string  // the name-addr as written back when the header is rebuilt
}

// routeSet returns the received Route entries in order (a header with
// several comma-separated values gives several entries). sipgo already
// splits such headers into one *sip.RouteHeader per value; Route headers
// added as generic headers are split here.
func routeSet(m *sipmsg.Msg) ([]routeEntry, bool) {
	var out []routeEntry
	for i, h := range m.Headers("route") {
		if rh, ok := h.(*sip.RouteHeader); ok {
			out = append(out, routeEntry{hdr: i, uri: rh.Address, text: rh.Value()})
			continue
		}
		for _, part := range splitComma(h.Value()) {
			var u sip.Uri
			if _, err := sip.ParseAddressValue(part, &u, nil); err != nil {
				return nil, false
			}
			out = append(out, routeEntry{hdr: i, uri: u, text: part})
		}
	}
	return out, true
}

// splitComma splits a header value at commas outside quotes and <>.
func splitComma(v string) []string {
	var out []string
	quoted, angle, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			if p := strings.TrimSpace(v[start:i]); p != "" {
				out = append(out, p)
			}
			start = i + 1
		}
	}
	if p := strings.TrimSpace(v[start:]); p != "" {
		out = append(out, p)
	}
	return out
}

// uriParam finds a URI parameter by name, ignoring case, as Kamailio's
// URI parser does for the parameters it knows.
func uriParam(u *sip.Uri, name string) (string, bool) {
	for _, kv := range u.UriParams {
		if strings.EqualFold(strings.TrimSpace(kv.K), name) {
			return kv.V, true
		}
	}
	return "", false
}

// paramsString renders the URI parameters without the leading ';'.
func paramsString(u *sip.Uri) string { return u.UriParams.ToString(';') }

// isStrict: a URI without the lr parameter is a strict router.
func isStrict(u *sip.Uri) bool {
	_, lr := uriParam(u, "lr")
	return !lr
}

// is2rr: the URI has the r2 parameter of a double Record-Route.
func is2rr(u *sip.Uri) bool {
	_, r2 := uriParam(u, "r2")
	return r2
}

// maddrURI is get_maddr_uri: "sip:<maddr>[:port]" when the URI has a
// maddr parameter, else the URI itself.
func maddrURI(u *sip.Uri) string {
	if maddr, ok := uriParam(u, "maddr"); ok {
		s := "sip:" + maddr
		if u.Port > 0 {
			s += ":" + strconv.Itoa(u.Port)
		}
		return s
	}
	return u.String()
}

// isMyself is rr's is_myself: the host (any transport, port 5060 when
// the URI has none) is one of ours, the user is not ignore_user and the
// URI has no gr (GRUU) parameter.
func (mod *Module) isMyself(u *sip.Uri) bool {
	host := strings.Trim(u.Host, "[]")
	if host == "" || mod.myself == nil {
		return false
	}
	port := u.Port
	if port == 0 {
		port = sipPort
	}
	if !mod.myself.IsMyself(host, port, "") {
		return false
	}
	if mod.cfg.IgnoreUser != "" && u.User == mod.cfg.IgnoreUser {
		return false
	}
	if _, gr := uriParam(u, "gr"); gr {
		return false
	}
	return true
}

// LooseRoute is loose_route() (mode 0) and loose_route_mode(mode): route
// a request by its Route headers.
//
//   - -1: no Route header, no To header, an unparsable Route or R-URI,
//     or (mode 0) the R-URI is ours with a double Route of ours and
//     nothing after it;
//   - 1: routed by the Route set: the top Route, when ours, is removed
//     (with the second one of a double Record-Route, whose socket becomes
//     the send socket); the next Route is the next hop: $du for a loose
//     router, or the R-URI for a strict one (the R-URI is then saved as
//     the last Route). A request within a dialog whose only Route was
//     ours also returns 1 (nothing else changes);
//   - 1 too when the R-URI is ours (mode 0; the previous hop was a strict
//     router): the last Route becomes the R-URI again;
//   - -3: a request without To tag (preloaded route) whose only Route(s)
//     pointed to this proxy: they are removed, the R-URI is the next hop.
//
// Mode non-zero skips the strict-router test on the R-URI.
func (mod *Module) LooseRoute(c *kemi.Ctx, mode int) int {
	m := c.Msg
	if m.Req == nil {
		return rrError
	}
	routes, ok := routeSet(m)
	if len(routes) == 0 {
		return rrError
	}
	if !ok {
		c.Log.Error().Msg("rr: failed to parse Route header")
		return rrError
	}
	ruri := m.RURIParsed()
	if ruri == nil {
		return rrError
	}
	tag, ok := headerTag(m.Header("to"))
	if !ok {
		c.Log.Error().Msg("rr: To header field not found")
		return rrError
	}
	if tag == "" {
		return mod.afterLoose(c, routes, true)
	}
	if mode == 0 && mod.isMyself(ruri) {
		return mod.afterStrict(c, routes, ruri)
	}
	return mod.afterLoose(c, routes, false)
}

// afterLoose: the previous hop was a loose router.
func (mod *Module) afterLoose(c *kemi.Ctx, routes []routeEntry, preloaded bool) int {
	m := c.Msg
	st := getState(m)
	st.routed, st.routedParams, st.fromRURI = false, "", false
	removed := make([]bool, len(routes))
	status := rrDriven
	i := 0
	top := &routes[0]
	if mod.isMyself(&top.uri) {
		st.routed, st.routedParams = true, paramsString(&top.uri)
		double := mod.cfg.EnableDoubleRR != 0 && is2rr(&top.uri)
		if mod.cfg.ForceSendSocket != 0 && !double {
			mod.forceSocket(c, &top.uri, true, false)
		}
		removed[0], i = true, 1
		if i < len(routes) && double {
			mod.forceSocket(c, &routes[1].uri, true, true)
			removed[1], i = true, 2
		}
		if i >= len(routes) {
			if preloaded {
				status = rrPreloaded
			}
			mod.rewriteRoutes(m, routes, removed, "")
			setState(m, st)
			return status
		}
		st.routeAddr = true
	}
	next := &routes[i]
	saved := ""
	if isStrict(&next.uri) {
		// Next hop is a strict router: it goes into the R-URI, the
		// R-URI as received becomes the last Route.
		saved = "<" + m.Req.Recipient.String() + ">"
		if err := m.SetRURI(maddrURI(&next.uri)); err != nil {
			c.Log.Error().Err(err).Msg("rr: failed to rewrite request URI")
			return rrError
		}
		removed[i] = true
	} else {
		m.DstURI = maddrURI(&next.uri)
	}
	mod.rewriteRoutes(m, routes, removed, saved)
	setState(m, st)
	return status
}

// afterStrict: the R-URI is ours, the previous hop was a strict router.
func (mod *Module) afterStrict(c *kemi.Ctx, routes []routeEntry, ruri *sip.Uri) int {
	m := c.Msg
	st := getState(m)
	st.routed, st.routedParams, st.fromRURI = false, "", false
	removed := make([]bool, len(routes))
	i := 0
	if mod.cfg.EnableDoubleRR != 0 && is2rr(&routes[0].uri) && mod.isMyself(&routes[0].uri) {
		mod.forceSocket(c, &routes[0].uri, false, true)
		removed[0], i = true, 1
		if i >= len(routes) {
			mod.rewriteRoutes(m, routes, removed, "")
			setState(m, st)
			return rrError
		}
	}
	st.routed, st.routedParams, st.fromRURI = true, paramsString(ruri), true
	next := &routes[i]
	if isStrict(&next.uri) {
		// Strict router next too: behave like one.
		if err := m.SetRURI(maddrURI(&next.uri)); err != nil {
			c.Log.Error().Err(err).Msg("rr: failed to rewrite request URI")
			return rrError
		}
		removed[i] = true
	} else {
		// Loose router next: recover the R-URI the strict router put
		// into the last Route.
		m.DstURI = maddrURI(&next.uri)
		last := len(routes) - 1
		if err := m.SetRURI(maddrURI(&routes[last].uri)); err != nil {
			c.Log.Error().Err(err).Msg("rr: failed to rewrite R-URI")
			return rrError
		}
		removed[last] = true
	}
	mod.rewriteRoutes(m, routes, removed, "")
	setState(m, st)
	return rrDriven
}

// rewriteRoutes queues the replacement of the Route headers by what is
// left of them after loose routing (plus the saved R-URI as last Route
// for a strict next hop). It is a queued edit, applied to the outgoing
// copy by Msg.ApplyEdits: the received headers stay readable, as with
// Kamailio's lumps, and a second loose_route on the same message
// replaces the pending edit instead of removing Routes twice.
func (mod *Module) rewriteRoutes(m *sipmsg.Msg, routes []routeEntry, removed []bool, appended string) {
	changed := appended != ""
	for _, r := range removed {
		changed = changed || r
	}
	if !changed {
		return
	}
	var b strings.Builder
	var vals []string
	flush := func() {
		if len(vals) > 0 {
			b.WriteString("Route: " + strings.Join(vals, ", ") + "\r\n")
			vals = vals[:0]
		}
	}
	for i, r := range routes {
		if i > 0 && routes[i-1].hdr != r.hdr {
			flush()
		}
		if !removed[i] {
			vals = append(vals, r.text)
		}
	}
	flush()
	if appended != "" {
		b.WriteString("Route: " + appended + "\r\n")
	}
	m.QueueReplace("route", b.String())
}

// forceSocket sets the send socket to the local one a Route of ours
// names (rr_do_force_send_socket; after_strict's grep_sock_info without
// the default port when defPort is false).
func (mod *Module) forceSocket(c *kemi.Ctx, u *sip.Uri, defPort, second bool) {
	host := strings.Trim(u.Host, "[]")
	proto, _ := uriParam(u, "transport")
	proto = strings.ToLower(proto)
	port := u.Port
	if port == 0 && defPort {
		port = sipPort
		if proto == "tls" {
			port = 5061
		}
	}
	if sock, ok := mod.findSocket(host, port, proto); ok {
		c.Msg.SendSock = sock
		return
	}
	if port != u.Port {
		if sock, ok := mod.findSocket(host, u.Port, proto); ok {
			c.Msg.SendSock = sock
			return
		}
	}
	if second && mod.cfg.EnableSocketMismatchWarning != 0 {
		ev := c.Log.Warn().Str("uri", u.String())
		if !mod.isMyself(u) {
			ev.Msg("rr: no socket found to match second RR; second RR uri is not myself")
		} else {
			ev.Msg("rr: no socket found to match second RR")
		}
	}
}

// findSocket is grep_sock_info: the local socket "proto:ip:port".
func (mod *Module) findSocket(host string, port int, proto string) (string, bool) {
	if mod.myself == nil || host == "" {
		return "", false
	}
	if f, ok := mod.myself.(SocketFinder); ok {
		return f.FindSocket(host, port, proto)
	}
	if net.ParseIP(host) == nil {
		return "", false
	}
	protos := []string{proto}
	if proto == "" {
		protos = []string{"udp", "tcp", "tls", "sctp"}
	}
	for _, p := range protos {
		// Any port (0): IsMyself cannot tell which one, so only the
		// transport's default port is tried.
		pt := port
		if pt == 0 {
			pt = sipPort
			if p == "tls" {
				pt = 5061
			}
		}
		if mod.myself.IsMyself(host, pt, p) {
			return p + ":" + sipmsg.JoinHostPort(host, pt), true
		}
	}
	return "", false
}

// routed returns the parameters of the URI that pointed to this proxy:
// the ones loose_route recorded, or else (redo_route_params) those of
// the top Route when it is ours. ok is false when there are none.
func (mod *Module) routed(m *sipmsg.Msg) (params string, fromRURI, ok bool) {
	if m.Req == nil {
		return "", false, false
	}
	routes, parsed := routeSet(m)
	if len(routes) == 0 || !parsed {
		return "", false, false
	}
	if st := getState(m); st.routed && st.routedParams != "" {
		return st.routedParams, st.fromRURI, true
	}
	if !mod.isMyself(&routes[0].uri) {
		return "", false, false
	}
	return paramsString(&routes[0].uri), false, true
}

var (
	reMu    sync.Mutex
	reCache = map[string]*regexp.Regexp{}
)

const reCacheMax = 256

// compileRE compiles a POSIX extended regex the way ki_check_route_param
// does (REG_EXTENDED|REG_ICASE|REG_NEWLINE), with Go's RE2 syntax.
func compileRE(expr string) (*regexp.Regexp, error) {
	reMu.Lock()
	defer reMu.Unlock()
	if re, ok := reCache[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile("(?im)" + expr)
	if err != nil {
		return nil, err
	}
	if len(reCache) < reCacheMax {
		reCache[expr] = re
	}
	return re, nil
}

// CheckRouteParam is check_route_param(re): 1 when the parameters of
// the URI that pointed to this proxy match re (case-insensitive), -1
// otherwise (no such URI, no parameters, bad regex). The text matched is
// ";name=value;..." with the leading ';' — except after strict-router
// translation, where the R-URI parameters are matched without it (a
// 5.6.3 quirk kept as is).
func (mod *Module) CheckRouteParam(c *kemi.Ctx, expr string) int {
	params, fromRURI, ok := mod.routed(c.Msg)
	if !ok || params == "" {
		return -1
	}
	re, err := compileRE(expr)
	if err != nil {
		c.Log.Error().Err(err).Str("re", expr).Msg("rr: bad re")
		return -1
	}
	if !fromRURI {
		params = ";" + params
	}
	if re.MatchString(params) {
		return 1
	}
	return -1
}

// RouteParam is get_route_param: the value of parameter name (matched
// case-sensitively, as Kamailio does) of the URI that pointed to us.
func (mod *Module) RouteParam(m *sipmsg.Msg, name string) (string, bool) {
	params, _, ok := mod.routed(m)
	if !ok || params == "" {
		return "", false
	}
	for _, p := range splitParams(params) {
		p = strings.TrimLeft(p, " \t")
		if !strings.HasPrefix(p, name) {
			continue
		}
		rest := strings.TrimLeft(p[len(name):], " \t")
		if rest == "" {
			return "", true
		}
		if rest[0] != '=' {
			continue
		}
		v := strings.TrimSpace(rest[1:])
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
			if j := strings.IndexByte(v[1:], v[0]); j >= 0 {
				v = v[1 : 1+j]
			}
		} else if j := strings.IndexAny(v, " \t"); j >= 0 {
			v = v[:j]
		}
		return v, true
	}
	return "", false
}

// splitParams splits "a=1;b;c=\"x;y\"" at ';' outside quotes.
func splitParams(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// direction is is_direction's answer for the message, cached for the
// message like Kamailio's last_dir: upstream when the ftag parameter of
// the URI that pointed to us differs from the From tag.
func (mod *Module) direction(m *sipmsg.Msg) uint8 {
	st := getState(m)
	if st.dir != 0 {
		return st.dir
	}
	d := dirDown
	if ftag, ok := mod.RouteParam(m, "ftag"); ok && ftag != "" {
		if tag, ok := headerTag(m.Header("from")); ok && tag != "" && tag != ftag {
			d = dirUp
		}
	}
	st.dir = d
	setState(m, st)
	return d
}

// IsDirection is is_direction(dir): 1 when the request flows in
// direction dir ("downstream": from the caller, "upstream": from the
// callee), -1 otherwise; -6 (E_CFG) for another dir or when
// append_fromtag is off.
func (mod *Module) IsDirection(c *kemi.Ctx, dir string) int {
	if mod.cfg.AppendFromtag == 0 {
		c.Log.Error().Msg("rr: is_direction requires append_fromtag enabled")
		return eCfg
	}
	var want uint8
	switch {
	case strings.EqualFold(dir, "downstream"):
		want = dirDown
	case strings.EqualFold(dir, "upstream"):
		want = dirUp
	default:
		c.Log.Error().Str("dir", dir).Msg("rr: unknown direction - use 'downstream' or 'upstream'")
		return eCfg
	}
	if mod.direction(c.Msg) == want {
		return 1
	}
	return -1
}

// NextHopRoute is next_hop_route(): 1 when loose_route took the next hop
// from a Route header following ours, -1 otherwise.
func (mod *Module) NextHopRoute(c *kemi.Ctx) int {
	if getState(c.Msg).routeAddr {
		return 1
	}
	return -1
}
