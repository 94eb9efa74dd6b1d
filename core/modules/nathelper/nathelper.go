// Package nathelper is Kamailio's nathelper module without keepalive
// pinging and SDP rewriting: NAT detection (nat_uac_test, is_rfc1918),
// Contact fixing (fix_nated_contact, set_contact_alias, add_contact_alias,
// add_rcv_param), alias handling (handle_ruri_alias, set_alias_to_pv) and
// fix_nated_register for the registrar.
package nathelper

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/siputils"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// nat_uac_test bits.
const (
	TestContact1918 = 0x01 // Contact URI host is a private address
	TestReceived    = 0x02 // source IP differs from the top Via host
	TestVia1918     = 0x04 // top Via host is a private address
	TestSDP1918     = 0x08 // SDP connection address is private
	TestRport       = 0x10 // source port differs from the top Via port
	TestSource1918  = 0x20 // source IP is private
	TestWS          = 0x40 // arrived over WebSocket
	TestContactPort = 0x80 // Contact port differs from the source port
	TestSDPCLine    = 0x100
	TestDest        = 0x200
)

// ExtContactURI is the Msg.Ext key holding the first contact's URI after
// fix_nated_contact / set_contact_alias: Kamailio changes the parsed
// contact in place, so the registrar (save) and later tests see the new
// address although the header edit itself is only applied when the
// message is sent. (The registrar reads the same key.)
const ExtContactURI = "nathelper.contact"

const extEdit = "nathelper"

// Module is the nathelper module.
type Module struct {
	cfg    Config
	rcvAVP string
}

// New builds the module.
func New(cfg Config) (*Module, error) {
	name, err := avpName(cfg.ReceivedAVP)
	if err != nil {
		return nil, err
	}
	return &Module{cfg: cfg, rcvAVP: name}, nil
}

// ---- addresses ----

type nets struct {
	n    *net.IPNet
	mode int // 0: always, 1: only with nat_addr_mode 1
}

var privNets = func() []nets {
	var out []nets
	for _, s := range []struct {
		cidr string
		mode int
	}{
		{"10.0.0.0/8", 0}, {"172.16.0.0/12", 0}, {"192.168.0.0/16", 0},
		{"100.64.0.0/10", 0}, {"192.0.0.0/29", 0}, {"192.0.0.0/24", 1},
	} {
		_, n, _ := net.ParseCIDR(s.cidr)
		out = append(out, nets{n, s.mode})
	}
	return out
}()

// is1918 is Kamailio's is1918addr: 1 private, 0 public, -1 not an IPv4
// address.
func (m *Module) is1918(addr string) int {
	ip := net.ParseIP(strings.TrimSpace(addr))
	if ip == nil || ip.To4() == nil || strings.IndexByte(addr, ':') >= 0 {
		return -1
	}
	for _, n := range privNets {
		if n.mode == 1 && m.cfg.NATAddrMode != 1 {
			continue
		}
		if n.n.Contains(ip) {
			return 1
		}
	}
	return 0
}

// IsRFC1918 is is_rfc1918(address): 1 when address is an IPv4 address of
// a private network (RFC 1918, RFC 6598 shared space, 192.0.0.0/29), else
// -1.
func (m *Module) IsRFC1918(addr string) int {
	if m.is1918(addr) == 1 {
		return 1
	}
	return -1
}

func srcIP(msg *sipmsg.Msg) string { return strings.Trim(msg.SrcIP, "[]") }

// bracketIP adds [] around an IPv6 address.
func bracketIP(ip string) string {
	if strings.IndexByte(ip, ':') >= 0 {
		return "[" + ip + "]"
	}
	return ip
}

func sameIP(a, b string) bool {
	x, y := net.ParseIP(strings.Trim(a, "[]")), net.ParseIP(strings.Trim(b, "[]"))
	return x != nil && y != nil && x.Equal(y)
}

// protoNum is Kamailio's PROTO_* number of a transport name.
func protoNum(p string) int {
	switch strings.ToLower(p) {
	case "udp":
		return 1
	case "tcp":
		return 2
	case "tls":
		return 3
	case "sctp":
		return 4
	case "ws":
		return 5
	case "wss":
		return 6
	}
	return 0
}

// protoName is proto_type_to_str (WSS prints as "ws").
func protoName(n int) string {
	switch n {
	case 1:
		return "udp"
	case 2:
		return "tcp"
	case 3:
		return "tls"
	case 4:
		return "sctp"
	case 5, 6:
		return "ws"
	}
	return ""
}

// SrcURI is Kamailio's get_src_uri (short form): "sip:<ip>:<port>" plus
// ";transport=<proto>" for anything but UDP.
func SrcURI(msg *sipmsg.Msg) string {
	u := "sip:" + bracketIP(srcIP(msg)) + ":" + strconv.Itoa(msg.SrcPort)
	if p := strings.ToLower(msg.Proto); p != "" && p != "udp" {
		u += ";transport=" + p
	}
	return u
}

// ---- the Contact headers, as edited ----

type editContact struct {
	display string
	uri     string
	params  string // ";p=v..." as received
	star    bool
}

// contactEdit is the per-message view of the Contact headers: their
// current (edited) text, which is queued as a replacement of every Contact
// header, and what Kamailio's parsed first contact would say.
type contactEdit struct {
	orig     []editContact
	cur      []editContact
	changed  bool // fix_nated_contact / set_contact_alias done
	aliasAdd bool // add_contact_alias done
}

func contactsOf(msg *sipmsg.Msg) []editContact {
	var out []editContact
	for _, h := range msg.Headers("contact") {
		var chs []*sip.ContactHeader
		if ch, ok := h.(*sip.ContactHeader); ok {
			chs = []*sip.ContactHeader{ch}
		} else if hs, err := sip.HeadersParser(sip.DefaultHeadersParser()).ParseHeader(nil, []byte("Contact: "+h.Value())); err == nil {
			for _, x := range hs {
				if ch, ok := x.(*sip.ContactHeader); ok {
					chs = append(chs, ch)
				}
			}
		}
		for _, ch := range chs {
			ec := editContact{display: ch.DisplayName, star: ch.Address.Wildcard}
			if !ec.star {
				ec.uri = ch.Address.String()
			}
			if len(ch.Params) > 0 {
				var b strings.Builder
				b.WriteByte(';')
				ch.Params.ToStringWrite(';', &b)
				ec.params = b.String()
			}
			out = append(out, ec)
		}
	}
	return out
}

func edits(msg *sipmsg.Msg) *contactEdit {
	if e, ok := msg.Ext[extEdit].(*contactEdit); ok {
		return e
	}
	cs := contactsOf(msg)
	e := &contactEdit{orig: cs, cur: append([]editContact(nil), cs...)}
	if msg.Ext == nil {
		msg.Ext = map[string]any{}
	}
	msg.Ext[extEdit] = e
	return e
}

func (ec editContact) render() string {
	if ec.star {
		return "*"
	}
	s := ""
	if ec.display != "" {
		s = "\"" + ec.display + "\" "
	}
	return s + "<" + ec.uri + ">" + ec.params
}

// queue replaces the Contact headers of the outgoing message by the
// edited ones.
func (e *contactEdit) queue(msg *sipmsg.Msg) {
	var b strings.Builder
	for _, c := range e.cur {
		b.WriteString("Contact: ")
		b.WriteString(c.render())
		b.WriteString("\r\n")
	}
	msg.QueueReplace("Contact", b.String())
}

// firstContact is Kamailio's get_contact_uri: the first contact's URI as
// the parsed message currently says, parsed; ok is false with no contact,
// a star or an unparsable URI without host.
func firstContact(msg *sipmsg.Msg) (string, *siputils.URI, bool) {
	e := edits(msg)
	if len(e.orig) == 0 || e.orig[0].star {
		return "", nil, false
	}
	uri := e.orig[0].uri
	if s, ok := msg.Ext[ExtContactURI].(string); ok && s != "" {
		uri = s
	}
	pu, err := siputils.ParseURI(uri)
	if err != nil || pu.Host == "" {
		return uri, nil, false
	}
	return uri, pu, true
}

// splitHostPort cuts a SIP URI into what is before host[:port], the
// host[:port] itself and what follows (params, headers).
func splitHostPort(uri string) (pre, hostport, post string, ok bool) {
	c := strings.IndexByte(uri, ':')
	if c < 0 {
		return "", "", "", false
	}
	start := c + 1
	end := len(uri)
	if i := strings.IndexAny(uri[start:], ";?"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(uri[start:end], '@'); at >= 0 {
		start += at + 1
	} else if at := strings.IndexByte(uri[start:], '@'); at >= 0 {
		// user part with ';' or '?' (sip:a;b@host)
		start += at + 1
		end = len(uri)
		if i := strings.IndexAny(uri[start:], ";?"); i >= 0 {
			end = start + i
		}
	}
	if start < len(uri) && uri[start] == '[' {
		if j := strings.IndexByte(uri[start:], ']'); j >= 0 && start+j+1 > end {
			end = start + j + 1
			if i := strings.IndexAny(uri[end:], ";?"); i >= 0 {
				end += i
			} else {
				end = len(uri)
			}
		}
	}
	if start >= end {
		return "", "", "", false
	}
	return uri[:start], uri[start:end], uri[end:], true
}

// removeParam removes the URI parameter name (case-insensitive) from the
// ";a=b;c" part of post, keeping URI headers.
func removeParam(post, name string) string {
	params, headers := post, ""
	if i := strings.IndexByte(post, '?'); i >= 0 {
		params, headers = post[:i], post[i:]
	}
	var keep []string
	for _, p := range strings.Split(params, ";") {
		if p == "" {
			continue
		}
		n, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(n), name) {
			continue
		}
		keep = append(keep, p)
	}
	out := ""
	if len(keep) > 0 {
		out = ";" + strings.Join(keep, ";")
	}
	return out + headers
}

// ---- KEMI functions ----

// FixNatedContact is fix_nated_contact(): the host:port of the first
// Contact URI becomes the source address (a maddr parameter is dropped).
// The change is a queued header edit, also seen by a later save. 1, or -1
// (no usable contact, or called twice).
func (m *Module) FixNatedContact(c *kemi.Ctx) int {
	msg := c.Msg
	uri, _, ok := firstContact(msg)
	if !ok {
		return -1
	}
	e := edits(msg)
	if e.changed {
		c.Log.Error().Msg("nathelper: you can't call fix_nated_contact twice, check your config!")
		return -1
	}
	pre, _, post, ok := splitHostPort(uri)
	if !ok {
		return -1
	}
	nuri := pre + bracketIP(srcIP(msg)) + ":" + strconv.Itoa(msg.SrcPort) + removeParam(post, "maddr")
	m.setFirst(msg, e, nuri)
	return 1
}

func (m *Module) setFirst(msg *sipmsg.Msg, e *contactEdit, nuri string) {
	e.cur[0].uri = nuri
	e.changed = true
	msg.Ext[ExtContactURI] = nuri
	e.queue(msg)
}

// aliasValue is "ip~port~proto" of the source address.
func aliasValue(msg *sipmsg.Msg) string {
	return bracketIP(srcIP(msg)) + "~" + strconv.Itoa(msg.SrcPort) + "~" + strconv.Itoa(protoNum(msg.Proto))
}

// SetContactAlias is set_contact_alias() / set_contact_alias_trim():
// ";alias=<ip>~<port>~<proto>" (the source address) is appended to the
// first Contact URI, after removing an existing alias with trim. Seen by a
// later save like fix_nated_contact. 1, or -1.
func (m *Module) SetContactAlias(c *kemi.Ctx, trim bool) int {
	msg := c.Msg
	uri, _, ok := firstContact(msg)
	if !ok {
		return -1
	}
	e := edits(msg)
	if e.changed {
		c.Log.Error().Msg("nathelper: you can't update contact twice, check your config!")
		return -1
	}
	if trim {
		uri = trimAlias(uri)
	}
	m.setFirst(msg, e, uri+";alias="+aliasValue(msg))
	return 1
}

// trimAlias removes the last well-formed ";alias=ip~port~proto" parameter
// (uri_trim_rcv_alias).
func trimAlias(uri string) string {
	i := strings.LastIndex(uri, ";alias=")
	if i < 0 {
		return uri
	}
	v := uri[i+len(";alias="):]
	end := len(v)
	if j := strings.IndexAny(v, ";?"); j >= 0 {
		end = j
	}
	parts := strings.Split(v[:end], "~")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || len(parts[2]) != 1 {
		return uri
	}
	return uri[:i] + v[end:]
}

// AddContactAlias is add_contact_alias(): when the first Contact URI is
// not already the source address (IP, port — 5060 when absent — and
// transport, a URI without transport counting as UDP), an
// ";alias=<ip>~<port>~<proto>" parameter is inserted after its host:port.
// 1; 2 with no Contact or nothing to do; -1 on error.
func (m *Module) AddContactAlias(c *kemi.Ctx) int {
	msg := c.Msg
	if len(msg.Headers("contact")) == 0 {
		return 2
	}
	uri, pu, ok := firstContact(msg)
	if !ok {
		c.Log.Error().Msg("nathelper: failed to get contact uri")
		return -1
	}
	if net.ParseIP(strings.Trim(pu.Host, "[]")) != nil && sameIP(pu.Host, srcIP(msg)) {
		port := pu.PortNo
		proto := pu.Proto()
		if proto == "" {
			proto = "udp"
		}
		if (port == msg.SrcPort || pu.Port == "" && msg.SrcPort == 5060) && protoNum(proto) == protoNum(msg.Proto) {
			return 2
		}
	}
	return m.insertAlias(c, uri, aliasValue(msg))
}

// AddContactAliasAddr is add_contact_alias_addr(ip, port, proto): the same
// with the given address. 1, 2 with no Contact, -1 for a bad ip, port or
// proto.
func (m *Module) AddContactAliasAddr(c *kemi.Ctx, ip, port, proto string) int {
	msg := c.Msg
	if len(msg.Headers("contact")) == 0 {
		return 2
	}
	uri, _, ok := firstContact(msg)
	if !ok {
		c.Log.Error().Msg("nathelper: failed to get contact uri")
		return -1
	}
	if net.ParseIP(strings.Trim(ip, "[]")) == nil {
		c.Log.Error().Str("ip", ip).Msg("nathelper: ip param value is not a valid IP address")
		return -1
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		c.Log.Error().Str("port", port).Msg("nathelper: port param value is not a valid port")
		return -1
	}
	n := protoNum(proto)
	if n == 0 {
		c.Log.Error().Str("proto", proto).Msg("nathelper: proto param value is not a known protocol")
		return -1
	}
	return m.insertAlias(c, uri, ip+"~"+port+"~"+strconv.Itoa(n))
}

func (m *Module) insertAlias(c *kemi.Ctx, uri, alias string) int {
	msg := c.Msg
	e := edits(msg)
	if e.changed || e.aliasAdd {
		c.Log.Error().Msg("nathelper: you can't call add_contact_alias twice, check your config!")
		return -1
	}
	pre, hp, post, ok := splitHostPort(uri)
	if !ok {
		return -1
	}
	e.cur[0].uri = pre + hp + ";alias=" + alias + post
	e.aliasAdd = true
	e.queue(msg)
	return 1
}

// AddRcvParam is add_rcv_param(mode): adds the source address as a
// received parameter to every contact, as a header parameter
// (;received="sip:ip:port") with mode 0, as a URI parameter with mode 1
// (UDP only). 1, or -1.
func (m *Module) AddRcvParam(c *kemi.Ctx, mode int) int {
	msg := c.Msg
	if mode != 0 && strings.ToLower(msg.Proto) != "udp" {
		c.Log.Error().Msg("nathelper: adding received parameter to Contact URI works only for UDP")
		return -1
	}
	src := SrcURI(msg)
	e := edits(msg)
	n := 0
	for i := range e.cur {
		if e.cur[i].star {
			continue
		}
		if mode != 0 {
			e.cur[i].uri += ";received=" + src
		} else {
			e.cur[i].params += ";received=\"" + src + "\""
		}
		n++
	}
	if n > 0 {
		e.queue(msg)
	}
	return 1
}

// FixNatedRegister is fix_nated_register(): the source address as a SIP
// URI (SrcURI) is pushed on the received_avp AVP, for the registrar to
// save as the contact's received address. 1 (also when received_avp is
// unset), -1 on error.
func (m *Module) FixNatedRegister(c *kemi.Ctx) int {
	if m.rcvAVP == "" {
		return 1
	}
	if c.Msg.SrcIP == "" {
		return -1
	}
	c.Msg.PushAVP(m.rcvAVP, val.OfStr(SrcURI(c.Msg)))
	return 1
}

// HandleRURIAlias is handle_ruri_alias([mode]): when the R-URI has an
// alias=<ip>~<port>~<proto> parameter (the first; the last with mode 1),
// $du becomes sip:<ip>:<port>[;transport=<proto>] and the parameter is
// removed from the R-URI. 1; 2 when there is no alias; -1 on error.
func (m *Module) HandleRURIAlias(c *kemi.Ctx, mode int) int {
	msg := c.Msg
	if !msg.IsRequest() {
		return -1
	}
	ruri := msg.RURI()
	pu, err := siputils.ParseURI(ruri)
	if err != nil {
		c.Log.Error().Str("ruri", ruri).Msg("nathelper: while parsing Request-URI")
		return -1
	}
	if pu.Params == "" {
		return 2
	}
	// locate the param in the text (Params is the text after ';' up to '?')
	pstart := strings.Index(ruri, ";"+pu.Params)
	if pstart < 0 {
		return -1
	}
	pstart++
	params := pu.Params
	at := -1
	off := 0
	for _, p := range strings.Split(params, ";") {
		if strings.HasPrefix(p, "alias=") && len(p) > len("alias=") {
			at = off
			if mode == 0 {
				break
			}
		}
		off += len(p) + 1
	}
	if at < 0 {
		return 2
	}
	v := params[at+len("alias="):]
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	ip, rest, ok := strings.Cut(v, "~")
	if !ok {
		c.Log.Error().Msg("nathelper: no '~' in alias param value")
		return -1
	}
	port, proto, ok := strings.Cut(rest, "~")
	if !ok {
		c.Log.Error().Msg("nathelper: no second '~' in alias param value")
		return -1
	}
	if proto == "" {
		c.Log.Error().Msg("nathelper: no proto in alias param")
		return -1
	}
	if len(proto) != 1 {
		c.Log.Error().Msg("nathelper: invalid alias param value")
		return -1
	}
	du := "sip:" + ip + ":" + port
	if n := int(proto[0] - '0'); n != 1 {
		name := protoName(n)
		if name == "" {
			c.Log.Error().Msg("nathelper: unknown proto in alias param")
			return -1
		}
		du += ";transport=" + name
	}
	if err := sipURICheck(du); err != nil {
		c.Log.Error().Err(err).Str("du", du).Msg("nathelper: failed to set dst uri")
		return -1
	}
	msg.DstURI = du
	abs := pstart + at // start of "alias=" in ruri
	nuri := ruri[:abs-1] + ruri[abs+len("alias=")+len(v):]
	if err := msg.SetRURI(nuri); err != nil {
		c.Log.Error().Err(err).Str("ruri", nuri).Msg("nathelper: rewriting the R-URI failed")
		return -1
	}
	return 1
}

func sipURICheck(s string) error {
	var u sip.Uri
	return sip.ParseUri(s, &u)
}

// SetAliasToPV is set_alias_to_pv(pv): the alias parameter of the first
// contact as "sip:<ip>:<port>;transport=<proto>" written to the PV. 1, or
// -1.
func (m *Module) SetAliasToPV(c *kemi.Ctx, name string) int {
	e := edits(c.Msg)
	if len(e.orig) == 0 || e.orig[0].star {
		return -1
	}
	text := e.orig[0].render()
	i := strings.Index(text, ";alias=")
	if i < 0 {
		c.Log.Error().Msg("nathelper: alias sign couldn't be found")
		return -1
	}
	v := text[i+len(";alias="):]
	host, rest, ok := strings.Cut(v, "~")
	if !ok {
		return -1
	}
	port, rest, ok := strings.Cut(rest, "~")
	if !ok || port == "" {
		return -1
	}
	n := 0
	for j := 0; j < len(rest) && rest[j] >= '0' && rest[j] <= '9'; j++ {
		n = n*10 + int(rest[j]-'0')
	}
	uri := "sip:" + host + ":" + port + ";transport=" + protoName(n)
	if err := pv.Set(c, name, val.OfStr(uri)); err != nil {
		c.Log.Error().Err(err).Str("pv", name).Msg("nathelper: cannot write the destination pseudo-variable")
		return -1
	}
	return 1
}
