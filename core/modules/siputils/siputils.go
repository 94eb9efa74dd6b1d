// Package siputils is Kamailio's siputils module: SIP message checks
// (has_totag, is_first_hop, ...), R-URI parameter helpers, URI and header
// name comparison, and the OPTIONS keepalive reply.
package siputils

import (
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// Myself says whether host (an IP or name, IPv6 without brackets), port
// (0: any) and proto ("udp", "tcp", ...; "": any) is one of this proxy's
// listening addresses, as Kamailio's check_self.
type Myself interface {
	IsMyself(host string, port int, proto string) bool
}

// maxURISize is Kamailio's MAX_URI_SIZE.
const maxURISize = 1024

// Module is the siputils module.
type Module struct {
	cfg    Config
	myself Myself

	// AuthorizedUser returns the user part of the digest username in the
	// credentials that the auth module marked authorized for m (Kamailio's
	// get_authorized_cred). is_user() returns -1 while it is nil or
	// reports none, as Kamailio does before any www/proxy_authorize.
	AuthorizedUser func(m *sipmsg.Msg) (user string, ok bool)

	now func() time.Time
}

// New returns the module. myself may be nil: then no address is this
// proxy (is_first_hop on a reply with Record-Route returns -1).
func New(cfg Config, myself Myself) *Module {
	return &Module{cfg: cfg, myself: myself, now: time.Now}
}

// HasToTag returns 1 if the To header has a non-empty tag, else -1
// (also -1 when there is no To).
func HasToTag(m *sipmsg.Msg) int {
	if tag, ok := headerTag(m.Header("to")); ok && tag != "" {
		return 1
	}
	return -1
}

// headerTag returns the tag parameter of a From/To header.
func headerTag(h sip.Header) (string, bool) {
	var params sip.HeaderParams
	switch v := h.(type) {
	case nil:
		return "", false
	case *sip.ToHeader:
		params = v.Params
	case *sip.FromHeader:
		params = v.Params
	default:
		val := h.Value()
		if i := strings.LastIndexByte(val, '>'); i >= 0 {
			val = val[i+1:]
		} else if i := strings.IndexByte(val, ';'); i >= 0 {
			val = val[i:]
		} else {
			return "", false
		}
		ps, _ := ParseParams(val)
		for _, p := range ps {
			if strings.EqualFold(p.Name, "tag") {
				return p.Value, true
			}
		}
		return "", false
	}
	for _, kv := range params {
		if strings.EqualFold(kv.K, "tag") {
			return kv.V, true
		}
	}
	return "", false
}

// IsRequest returns 1 for a request, else -1.
func IsRequest(m *sipmsg.Msg) int {
	if m.IsRequest() {
		return 1
	}
	return -1
}

// IsReply returns 1 for a reply, else -1.
func IsReply(m *sipmsg.Msg) int {
	if m.Res != nil {
		return 1
	}
	return -1
}

// IsFirstHop is is_first_hop_mode(mode). For a request: 1 when there is
// no second Via. For a reply: 1 when there is no Record-Route, or when the
// top Record-Route URI is this proxy (mode 0: its host must be an IP
// address, and a reply coming from that very address is a loop: -1).
func (mod *Module) IsFirstHop(m *sipmsg.Msg, mode int) int {
	if m.IsRequest() {
		if len(m.Headers("via")) < 2 {
			return 1
		}
		return -1
	}
	rr := m.Header("record-route")
	if rr == nil {
		return 1
	}
	var uri string
	if h, ok := rr.(*sip.RecordRouteHeader); ok {
		uri = h.Address.String()
	} else {
		uri = NameAddrURI(rr.Value())
	}
	u, err := ParseURI(uri)
	if err != nil {
		return -1
	}
	host := strings.TrimSuffix(strings.TrimPrefix(u.Host, "["), "]")
	var ip net.IP
	if mode == 0 {
		if ip = net.ParseIP(host); ip == nil {
			return -1
		}
	}
	port := 0
	if u.Port != "" {
		port = u.PortNo
	}
	proto := ""
	if _, ok := u.Param("transport"); ok {
		proto = u.Proto()
	}
	if mod.myself == nil || !mod.myself.IsMyself(host, port, proto) {
		return -1
	}
	if mode == 0 {
		src := net.ParseIP(m.SrcIP)
		if src != nil && ip.Equal(src) &&
			(m.SrcPort == u.PortNo || (u.Port == "" && m.SrcPort == 5060)) &&
			(strings.EqualFold(proto, m.Proto) || (proto == "" && strings.EqualFold(m.Proto, "udp"))) {
			return -1
		}
	}
	return 1
}

// IsURI returns 1 if s is a URI Kamailio can parse, else -1.
func IsURI(s string) int {
	if s == "" {
		return -1
	}
	if _, err := ParseURI(s); err != nil {
		return -1
	}
	return 1
}

// IsUser returns 1 if user equals the user part of the authorized digest
// username, else -1.
func (mod *Module) IsUser(m *sipmsg.Msg, user string) int {
	if mod.AuthorizedUser == nil {
		return -1
	}
	u, ok := mod.AuthorizedUser(m)
	if !ok || u == "" || u != user {
		return -1
	}
	return 1
}

// rURI parses the current R-URI ($ru) the Kamailio way; nil for replies
// or when it does not parse.
func rURI(m *sipmsg.Msg) *URI {
	if !m.IsRequest() {
		return nil
	}
	u, err := ParseURI(m.RURI())
	if err != nil {
		return nil
	}
	return u
}

// RURIHasUser reports whether the current R-URI parses and has a user part.
func RURIHasUser(m *sipmsg.Msg) bool {
	u := rURI(m)
	return u != nil && u.User != ""
}

// URIParamValue is uri_param(name) (value nil: the parameter must have no
// value) and uri_param_value(name, value): 1 when the R-URI's first
// parameter called name (case-sensitive) matches, else -1.
func URIParamValue(m *sipmsg.Msg, name string, value *string) int {
	u := rURI(m)
	if u == nil {
		return -1
	}
	ps, err := u.ParamList()
	if err != nil {
		return -1
	}
	for _, p := range ps {
		if p.Name != name {
			continue
		}
		if value != nil {
			if p.Value == *value {
				return 1
			}
			return -1
		}
		if p.Value == "" {
			return 1
		}
		return -1
	}
	return -1
}

// URIParamAny returns 1 if the R-URI has the parameter (case-insensitive),
// with or without a value, else -1.
func URIParamAny(m *sipmsg.Msg, name string) int {
	u := rURI(m)
	if u == nil || u.Params == "" {
		return -1
	}
	ps, err := u.ParamList()
	if err != nil {
		return -1
	}
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return 1
		}
	}
	return -1
}

// URIParamRm removes the first R-URI parameter called name
// (case-insensitive). It returns 1 also when there is none, -1 when the
// R-URI cannot be parsed or rewritten.
func URIParamRm(m *sipmsg.Msg, name string) int {
	if !m.IsRequest() || len(m.RURI()) >= maxURISize {
		return -1
	}
	u := rURI(m)
	if u == nil {
		return -1
	}
	if _, err := u.ParamList(); err != nil {
		return -1
	}
	nu, found := u.WithoutParam(name)
	if !found {
		return 1
	}
	if m.SetRURI(nu) != nil {
		return -1
	}
	return 1
}

// AddURIParam appends ";param" to the R-URI parameters (before any URI
// headers). An empty param does nothing and returns 1.
func AddURIParam(m *sipmsg.Msg, param string) int {
	if param == "" {
		return 1
	}
	u := rURI(m)
	if u == nil {
		return -1
	}
	nu := u.WithParam(param)
	if len(nu) > maxURISize {
		return -1
	}
	if m.SetRURI(nu) != nil {
		return -1
	}
	return 1
}

// IsGRUU returns 1 if the R-URI has a "gr" parameter with a value, 2 if
// it has one without value, else -1.
func IsGRUU(m *sipmsg.Msg) int {
	u := rURI(m)
	if u == nil {
		return -1
	}
	p, ok := u.Param("gr")
	if !ok {
		return -1
	}
	if p.Value != "" {
		return 1
	}
	return 2
}

// IsTelNumber returns 1 for an optional '+' (followed by 1-9) and digits,
// else -2.
func IsTelNumber(s string) int {
	if s == "" {
		return -2
	}
	i := 0
	if s[0] == '+' {
		if len(s) < 2 || s[1] < '1' || s[1] > '9' {
			return -2
		}
		i = 2
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -2
		}
	}
	return 1
}

// IsNumeric returns 1 for a non-empty string of decimal digits, else -2.
func IsNumeric(s string) int {
	if s == "" {
		return -2
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -2
		}
	}
	return 1
}

// IsAlphanumEx returns 1 when every character of s is an ASCII letter or
// digit or one of eset; -2 for an empty s, -3 otherwise. IsAlphanum is
// the same with an empty eset.
func IsAlphanumEx(s, eset string) int {
	if s == "" {
		return -2
	}
	for i := 0; i < len(s); i++ {
		if isAlnum(s[i]) {
			continue
		}
		if eset == "" || strings.IndexByte(eset, s[i]) < 0 {
			return -3
		}
	}
	return 1
}

// OptionsReply answers an OPTIONS request for this proxy (R-URI without a
// user part) with 200 OK and the Accept, Accept-Encoding,
// Accept-Language and Supported headers from the modparams. It returns
// -1 for other requests, replies, or when sending fails.
func (mod *Module) OptionsReply(m *sipmsg.Msg) int {
	if !m.IsRequest() || m.Method() != string(sip.OPTIONS) {
		return -1
	}
	u := rURI(m)
	if u == nil || u.User != "" {
		return -1
	}
	m.ReplyHdrs = append(m.ReplyHdrs,
		"Accept: "+mod.cfg.OptionsAccept+"\r\n"+
			"Accept-Encoding: "+mod.cfg.OptionsAcceptEncoding+"\r\n"+
			"Accept-Language: "+mod.cfg.OptionsAcceptLanguage+"\r\n"+
			"Supported: "+mod.cfg.OptionsSupport+"\r\n")
	if err := m.Reply(200, "OK"); err != nil {
		return -1
	}
	return 1
}

// dateLayout is the RFC 3261 SIP-date (RFC 1123 date in GMT).
const dateLayout = "Mon, 02 Jan 2006 15:04:05 GMT"

// HdrDateCheck returns 1 if the Date header is not older than tdiff
// seconds, -4 if it is, -1 when there is no Date or it does not parse.
func (mod *Module) HdrDateCheck(m *sipmsg.Msg, tdiff int) int {
	v, ok := m.HeaderValue("date")
	if !ok {
		return -1
	}
	t, err := time.Parse(dateLayout, strings.TrimSpace(v))
	if err != nil {
		return -1
	}
	if mod.now().Unix() > t.Unix()+int64(tdiff) {
		return -4
	}
	return 1
}

// cmpResult maps a Kamailio comparison result (0 match, >0 no match,
// <0 error) to the KEMI return code (1, -1, -2).
func cmpResult(r int) int {
	switch {
	case r == 0:
		return 1
	case r > 0:
		return -1
	}
	return -2
}

// CmpURI compares two URIs as Kamailio's cmp_uri (RFC 3261 §19.1.4 in
// part): scheme type, user, password and port exactly, host ignoring
// case, and the parameters present in both ignoring case; user, ttl,
// method and maddr must not be in one URI only when the other has no
// parameters at all. 1 match, -1 no match, -2 parse error.
func CmpURI(s1, s2 string) int {
	u1, err1 := ParseURI(s1)
	u2, err2 := ParseURI(s2)
	if err1 != nil || err2 != nil {
		return -2
	}
	return cmpResult(cmpURI(u1, u2))
}

func cmpURI(u1, u2 *URI) int {
	if u1.Type != u2.Type || u1.User != u2.User || u1.Port != u2.Port ||
		u1.Passwd != u2.Passwd || !strings.EqualFold(u1.Host, u2.Host) {
		return 1
	}
	if u1.Params == "" && u2.Params == "" {
		return 0
	}
	special := func(u *URI) bool {
		for _, n := range []string{"user", "ttl", "method", "maddr"} {
			if _, ok := u.Param(n); ok {
				return true
			}
		}
		return false
	}
	if u1.Params == "" && special(u2) || u2.Params == "" && special(u1) {
		return 1
	}
	p1, err := u1.ParamList()
	if err != nil {
		return -1
	}
	p2, err := u2.ParamList()
	if err != nil {
		return -1
	}
	for _, a := range p1 {
		for _, b := range p2 {
			if strings.EqualFold(a.Name, b.Name) && !strings.EqualFold(a.Value, b.Value) {
				return 1
			}
		}
	}
	return 0
}

// CmpAOR compares the address-of-record parts of two URIs: user exactly,
// host ignoring case, port with a missing port equal to 5060. 1 match,
// -1 no match, -2 parse error.
func CmpAOR(s1, s2 string) int {
	u1, err1 := ParseURI(s1)
	u2, err2 := ParseURI(s2)
	if err1 != nil || err2 != nil {
		return -2
	}
	if u1.User != u2.User || !strings.EqualFold(u1.Host, u2.Host) {
		return -1
	}
	if u1.Port != u2.Port {
		p1, p2 := u1.PortNo, u2.PortNo
		if u1.Port == "" {
			p1 = 5060
		}
		if u2.Port == "" {
			p2 = 5060
		}
		if p1 != p2 {
			return -1
		}
	}
	return 1
}

// CmpHdrName compares two header names: compact and long forms of a
// header match, other names compare ignoring case. 1 match, -1 no match,
// -2 for an empty name.
func CmpHdrName(n1, n2 string) int {
	n1 = strings.TrimRight(n1, " \t\r\n")
	n2 = strings.TrimRight(n2, " \t\r\n")
	if n1 == "" || n2 == "" || strings.ContainsAny(n1, ": \t") || strings.ContainsAny(n2, ": \t") {
		return -2
	}
	if sipmsg.CanonicalName(n1) == sipmsg.CanonicalName(n2) {
		return 1
	}
	return -1
}
