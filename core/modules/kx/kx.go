// Package kx is Kamailio's kemix module: fast typed getters for message
// attributes (KSR.kx.*), with no PV name parsing.
package kx

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// SocketInfo describes the local sockets of a message; the transport layer
// provides it. Without it, the socket names are null, the advertised
// address is the receiving one, no send socket is forced and there is no
// connection id.
type SocketInfo interface {
	// RecvSocket returns the name (socket "name" attribute, "" if none)
	// and the advertised host and port ("" / 0 if none) of the socket m
	// arrived on.
	RecvSocket(m *sipmsg.Msg) (name, advHost string, advPort int)
	// SendSocket returns the socket forced for sending m ($fs), as
	// "proto:ip:port", with its name and port; ok is false when none is.
	SendSocket(m *sipmsg.Msg) (sock, name string, port int, ok bool)
	// ConnID returns the id of the TCP/TLS/WS connection m arrived on.
	ConnID(m *sipmsg.Msg) (id int, ok bool)
}

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now for get_timestamp.
func WithClock(now func() time.Time) Option { return func(m *Module) { m.now = now } }

// WithSockets sets the socket information provider.
func WithSockets(s SocketInfo) Option { return func(m *Module) { m.sockets = s } }

// WithEnv replaces os.LookupEnv for get_env / get_envn.
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(m *Module) { m.lookupEnv = lookup }
}

// Module holds the define table and the providers.
type Module struct {
	mu        sync.RWMutex
	defines   map[string]string
	now       func() time.Time
	sockets   SocketInfo
	lookupEnv func(string) (string, bool)
}

// coreDefines are the defines Kamailio 5.6.3 sets itself (pp_define_core).
var coreDefines = []string{"KAMAILIO_5", "KAMAILIO_5_6", "KAMAILIO_5_6_3"}

// New builds the module.
func New(cfg Config, opts ...Option) *Module {
	m := &Module{defines: map[string]string{}, now: time.Now, lookupEnv: os.LookupEnv}
	for _, d := range coreDefines {
		m.defines[d] = ""
	}
	for k, v := range cfg.Defines {
		m.defines[k] = v
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Define adds or replaces a define, e.g. "MOD_htable" for each loaded
// module as Kamailio does.
func (m *Module) Define(name, value string) {
	m.mu.Lock()
	m.defines[name] = value
	m.mu.Unlock()
}

func (m *Module) define(name string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.defines[name]
	return v, ok
}

// Null modes of xval getters (SR_KEMI_XVAL_NULL_*).
type nullMode uint8

const (
	nullNone  nullMode = iota // None
	nullPrint                 // "<null>"
	nullEmpty                 // ""
)

func xnull(mode nullMode) val.Value {
	switch mode {
	case nullPrint:
		return val.OfStr("<null>")
	case nullEmpty:
		return val.OfStr("")
	}
	return val.NullValue
}

// xstr returns s, or the null of mode when !ok.
func xstr(s string, ok bool, mode nullMode) val.Value {
	if !ok {
		return xnull(mode)
	}
	return val.OfStr(s)
}

// --- R-URI ---

func getRURI(c *kemi.Ctx) val.Value {
	if !c.Msg.IsRequest() {
		return val.NullValue
	}
	return val.OfStr(c.Msg.RURI())
}

func getOURI(c *kemi.Ctx) val.Value {
	if !c.Msg.IsRequest() {
		return val.NullValue
	}
	return val.OfStr(c.Msg.Req.Recipient.String())
}

// Attributes of a URI.
const (
	attrUser = iota
	attrHost
)

// uriAttr returns the user or host of a parsed URI ("" when absent). A
// host that is an IPv6 address keeps its brackets, as Kamailio's does.
func uriAttr(u *sip.Uri, attr int) string {
	if u == nil {
		return ""
	}
	if u.Scheme != "" && u.Scheme != "sip" && u.Scheme != "sips" {
		// tel: and other schemes: the user is the part before parameters
		if attr == attrUser && (u.Scheme == "tel" || u.Scheme == "tels") {
			user, _, _ := strings.Cut(u.Raw(), ";")
			return user
		}
		return ""
	}
	if attr == attrUser {
		return u.User
	}
	h := u.Host
	if strings.IndexByte(h, ':') >= 0 && !strings.HasPrefix(h, "[") {
		h = "[" + h + "]"
	}
	return h
}

func getRURIAttr(attr int, mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		if !c.Msg.IsRequest() {
			return xnull(mode)
		}
		s := uriAttr(c.Msg.RURIParsed(), attr)
		return xstr(s, s != "", mode)
	}
}

// --- From / To ---

// headerURI returns the URI text of the first From/To/Contact-like header
// named name: the part between '<' and '>', or the addr-spec before any
// header parameter.
func headerURI(m *sipmsg.Msg, name string) (string, bool) {
	v, ok := m.HeaderValue(name)
	if !ok {
		return "", false
	}
	return addrURI(firstAddr(v))
}

// firstAddr returns the first comma-separated entry of an address list,
// ignoring commas inside quotes and angle brackets.
func firstAddr(v string) string {
	inQ, inB := false, false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if inQ {
				i++
			}
		case '"':
			inQ = !inQ
		case '<':
			if !inQ {
				inB = true
			}
		case '>':
			if !inQ {
				inB = false
			}
		case ',':
			if !inQ && !inB {
				return v[:i]
			}
		}
	}
	return v
}

// addrURI extracts the URI of one name-addr / addr-spec.
func addrURI(a string) (string, bool) {
	inQ := false
	for i := 0; i < len(a); i++ {
		switch a[i] {
		case '\\':
			if inQ {
				i++
			}
		case '"':
			inQ = !inQ
		case '<':
			if inQ {
				continue
			}
			end := strings.IndexByte(a[i+1:], '>')
			if end < 0 {
				return "", false
			}
			u := strings.TrimSpace(a[i+1 : i+1+end])
			return u, u != ""
		}
	}
	u, _, _ := strings.Cut(a, ";")
	u = strings.TrimSpace(u)
	return u, u != ""
}

func parseURI(s string) *sip.Uri {
	u := &sip.Uri{}
	if err := sip.ParseUri(s, u); err != nil {
		return nil
	}
	return u
}

func getHdrURI(name string) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		s, ok := headerURI(c.Msg, name)
		return xstr(s, ok, nullNone)
	}
}

func getHdrURIAttr(name string, attr int, mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		s, ok := headerURI(c.Msg, name)
		if !ok {
			return xnull(mode)
		}
		a := uriAttr(parseURI(s), attr)
		return xstr(a, a != "", mode)
	}
}

// --- Contact ---

func getContactURI(mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		v, ok := c.Msg.HeaderValue("contact")
		if !ok || strings.TrimSpace(v) == "*" {
			return xnull(mode)
		}
		s, ok := addrURI(firstAddr(v))
		return xstr(s, ok, mode)
	}
}

// --- headers and body ---

func getUA(mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		s, ok := c.Msg.HeaderValue("user-agent")
		return xstr(s, ok, mode)
	}
}

func getCallID(c *kemi.Ctx, _ []val.Value) val.Value {
	s, _ := c.Msg.HeaderValue("call-id")
	return val.OfStr(s)
}

func getMethod(c *kemi.Ctx, _ []val.Value) val.Value {
	s := c.Msg.Method()
	return xstr(s, s != "", nullNone)
}

func getStatus(c *kemi.Ctx, _ []val.Value) val.Value {
	if c.Msg.IsRequest() {
		return kemi.RetInt(-1)
	}
	return kemi.RetInt(c.Msg.Res.StatusCode)
}

func getsStatus(c *kemi.Ctx, _ []val.Value) val.Value {
	if c.Msg.IsRequest() {
		return val.NullValue
	}
	return val.OfStr(strconv.Itoa(c.Msg.Res.StatusCode))
}

func getBody(mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		b := c.Msg.SIP().Body()
		return xstr(string(b), len(b) > 0, mode)
	}
}

func getBodyLen(c *kemi.Ctx, _ []val.Value) val.Value {
	return kemi.RetInt(len(c.Msg.SIP().Body()))
}

func getMsgBuf(c *kemi.Ctx, _ []val.Value) val.Value {
	return val.OfStr(c.Msg.SIP().String())
}

func getMsgLen(c *kemi.Ctx, _ []val.Value) val.Value {
	return kemi.RetInt(len(c.Msg.SIP().String()))
}

func getMsgType(c *kemi.Ctx, _ []val.Value) val.Value {
	if c.Msg.IsRequest() {
		return kemi.RetInt(1)
	}
	return kemi.RetInt(2)
}

// --- destination ---

func getDURI(mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		return xstr(c.Msg.DstURI, c.Msg.DstURI != "", mode)
	}
}

func getNHURI(c *kemi.Ctx, a []val.Value) val.Value {
	if c.Msg.DstURI != "" {
		return val.OfStr(c.Msg.DstURI)
	}
	return getRURI(c)
}

// --- auth ---

// getAU returns the user part of the digest username of the
// Proxy-Authorization header, else of the Authorization header (null for
// ACK and CANCEL, and when there is no parsable digest credential).
func getAU(mode nullMode) kemi.Func {
	return func(c *kemi.Ctx, _ []val.Value) val.Value {
		if !c.Msg.IsRequest() {
			return xnull(mode)
		}
		if meth := c.Msg.Req.Method; meth == sip.ACK || meth == sip.CANCEL {
			return xnull(mode)
		}
		v, ok := c.Msg.HeaderValue("proxy-authorization")
		if !ok {
			if v, ok = c.Msg.HeaderValue("authorization"); !ok {
				return xnull(mode)
			}
		}
		u, ok := digestUsername(v)
		if !ok {
			return xnull(mode)
		}
		user, _, _ := strings.Cut(u, "@")
		return val.OfStr(user)
	}
}

// digestUsername returns the username parameter of a Digest credential.
func digestUsername(cred string) (string, bool) {
	cred = strings.TrimSpace(cred)
	scheme, rest, ok := strings.Cut(cred, " ")
	if !ok || !strings.EqualFold(scheme, "digest") {
		return "", false
	}
	for _, p := range splitParams(rest) {
		name, value, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(name), "username") {
			value = strings.TrimSpace(value)
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = strings.ReplaceAll(value[1:len(value)-1], `\"`, `"`)
			}
			return value, true
		}
	}
	return "", false
}

// splitParams splits "a=1, b=\"x,y\"" on commas outside quotes.
func splitParams(s string) []string {
	var out []string
	inQ, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQ {
				i++
			}
		case '"':
			inQ = !inQ
		case ',':
			if !inQ {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// --- transport ---

// Protocol ids as Kamailio numbers them (PROTO_*).
var protoIDs = map[string]int{"udp": 1, "tcp": 2, "tls": 3, "sctp": 4, "ws": 5, "wss": 6}

func proto(m *sipmsg.Msg) string { return strings.ToLower(m.Proto) }

// protoURI is the protocol as written in URIs: wss is "ws" there.
func protoURI(m *sipmsg.Msg) (string, bool) {
	p := proto(m)
	if _, ok := protoIDs[p]; !ok {
		return "", false
	}
	if p == "wss" {
		p = "ws"
	}
	return p, true
}

func getProto(c *kemi.Ctx, _ []val.Value) val.Value {
	p := proto(c.Msg)
	if _, ok := protoIDs[p]; !ok {
		return val.OfStr("")
	}
	return val.OfStr(p)
}

func getProtoID(c *kemi.Ctx, _ []val.Value) val.Value {
	return kemi.RetInt(protoIDs[proto(c.Msg)])
}

func getSrcIP(c *kemi.Ctx, _ []val.Value) val.Value { return val.OfStr(c.Msg.SrcIP) }

func getSrcPort(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(c.Msg.SrcPort) }

// getSrcURI is "sip:ip:port" plus ";transport=x" unless the transport is UDP.
func getSrcURI(c *kemi.Ctx, _ []val.Value) val.Value {
	m := c.Msg
	if m.SrcIP == "" {
		return val.OfStr("")
	}
	s := "sip:" + sipmsg.JoinHostPort(m.SrcIP, m.SrcPort)
	if p := proto(m); p != "udp" && p != "" {
		pu, ok := protoURI(m)
		if !ok {
			return val.OfStr("")
		}
		s += ";transport=" + pu
	}
	return val.OfStr(s)
}

func getSrcAddrSock(c *kemi.Ctx, _ []val.Value) val.Value {
	m := c.Msg
	p, ok := protoURI(m)
	if !ok || m.SrcIP == "" {
		return val.OfStr("")
	}
	return val.OfStr(p + ":" + sipmsg.JoinHostPort(m.SrcIP, m.SrcPort))
}

func (m *Module) recvSocket(msg *sipmsg.Msg) (name, advHost string, advPort int) {
	if m.sockets == nil {
		return "", "", 0
	}
	return m.sockets.RecvSocket(msg)
}

func getRcvIP(c *kemi.Ctx, _ []val.Value) val.Value {
	return xstr(c.Msg.DstIP, c.Msg.DstIP != "", nullNone)
}

func getRcvPort(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(c.Msg.DstPort) }

func (m *Module) getRcvSockName(c *kemi.Ctx, _ []val.Value) val.Value {
	name, _, _ := m.recvSocket(c.Msg)
	return xstr(name, name != "", nullNone)
}

// getRcvAddrSock is the receiving socket as "proto:ip:port".
func getRcvAddrSock(c *kemi.Ctx, _ []val.Value) val.Value {
	m := c.Msg
	p := proto(m)
	if _, ok := protoIDs[p]; !ok || m.DstIP == "" {
		return val.OfStr("")
	}
	return val.OfStr(p + ":" + sipmsg.JoinHostPort(m.DstIP, m.DstPort))
}

func (m *Module) getRcvAdvIP(c *kemi.Ctx, a []val.Value) val.Value {
	if _, host, _ := m.recvSocket(c.Msg); host != "" {
		return val.OfStr(host)
	}
	return getRcvIP(c, a)
}

func (m *Module) getRcvAdvPort(c *kemi.Ctx, a []val.Value) val.Value {
	if _, _, port := m.recvSocket(c.Msg); port > 0 {
		return kemi.RetInt(port)
	}
	return getRcvPort(c, a)
}

func (m *Module) getSendSock(c *kemi.Ctx, _ []val.Value) val.Value {
	if m.sockets == nil {
		return val.NullValue
	}
	sock, _, _, ok := m.sockets.SendSocket(c.Msg)
	return xstr(sock, ok && sock != "", nullNone)
}

func (m *Module) getSendSockName(c *kemi.Ctx, _ []val.Value) val.Value {
	if m.sockets == nil {
		return val.NullValue
	}
	_, name, _, ok := m.sockets.SendSocket(c.Msg)
	return xstr(name, ok && name != "", nullNone)
}

func (m *Module) getSendSockPort(c *kemi.Ctx, _ []val.Value) val.Value {
	if m.sockets == nil {
		return kemi.RetInt(0)
	}
	_, _, port, ok := m.sockets.SendSocket(c.Msg)
	if !ok {
		return kemi.RetInt(0)
	}
	return kemi.RetInt(port)
}

func (m *Module) getConID(c *kemi.Ctx, _ []val.Value) val.Value {
	if m.sockets == nil {
		return kemi.RetInt(-1)
	}
	id, ok := m.sockets.ConnID(c.Msg)
	if !ok {
		return kemi.RetInt(-1)
	}
	return kemi.RetInt(id)
}

// --- misc ---

func (m *Module) getTimestamp(*kemi.Ctx, []val.Value) val.Value {
	return kemi.RetInt(int(m.now().Unix()))
}

// getDef returns the define's value; "" when it is not defined.
func (m *Module) getDef(_ *kemi.Ctx, a []val.Value) val.Value {
	v, _ := m.define(a[0].S)
	return val.OfStr(v)
}

// getDefn returns the define's value parsed as Kamailio's str2sint does
// (leading digits; 0 when undefined or not numeric).
func (m *Module) getDefn(_ *kemi.Ctx, a []val.Value) val.Value {
	v, ok := m.define(a[0].S)
	if !ok {
		return kemi.RetInt(0)
	}
	return val.OfInt(str2sint(v))
}

func (m *Module) ifdef(_ *kemi.Ctx, a []val.Value) val.Value {
	_, ok := m.define(a[0].S)
	return kemi.RetBool(ok)
}

func (m *Module) ifndef(_ *kemi.Ctx, a []val.Value) val.Value {
	_, ok := m.define(a[0].S)
	return kemi.RetBool(!ok)
}

func (m *Module) getEnv(_ *kemi.Ctx, a []val.Value) val.Value {
	if a[0].S == "" {
		return val.OfStr("")
	}
	v, _ := m.lookupEnv(a[0].S)
	return val.OfStr(v)
}

func (m *Module) getEnvn(_ *kemi.Ctx, a []val.Value) val.Value {
	if a[0].S == "" {
		return kemi.RetInt(0)
	}
	v, ok := m.lookupEnv(a[0].S)
	if !ok {
		return kemi.RetInt(0)
	}
	return val.OfInt(str2sint(v))
}

// str2sint parses like Kamailio's str2sint, keeping the value read up to
// the first non-digit and saturating at the int32 limits.
func str2sint(s string) int64 {
	if s == "" {
		return 0
	}
	neg, i := false, 0
	switch s[0] {
	case '+':
		i++
	case '-':
		neg, i = true, 1
	}
	var n int64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int64(s[i]-'0')
		if !neg && n > 2147483647 {
			return 2147483647
		}
		if neg && n > 2147483648 {
			return -2147483648
		}
	}
	if neg {
		return -n
	}
	return n
}
