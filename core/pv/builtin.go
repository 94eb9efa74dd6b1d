package pv

// The builtin PV classes of Kamailio's pv module (SPEC §8), with the types
// and writability of 5.6.3: pv_get_strintval PVs ($rp, $cs, ...) are str,
// PV_TYPE_INT ones ($sp, $rs, $mf, ...) are int, absent values are null.
//
// Writes to $fu $fU $fd $fn $tu $tU $td $tn are queued header edits
// (sipmsg.Msg.QueueReplace): later reads still see the received header and
// the change shows in the forwarded message, as Kamailio's lumps do.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

func init() {
	for name, c := range builtins() {
		Register(name, c)
	}
}

type getFn func(c *kemi.Ctx) val.Value
type setFn func(c *kemi.Ctx, v val.Value) error

// ro and rw build classes without a name in parentheses.
func ro(g getFn) *Class { return rw(g, nil) }
func rw(g getFn, s setFn) *Class {
	c := &Class{Get: func(c *kemi.Ctx, _ *Spec, _ string) (val.Value, error) { return g(c), nil }}
	if s != nil {
		c.Set = func(c *kemi.Ctx, _ *Spec, _ string, v val.Value) error { return s(c, v) }
	}
	return c
}

func str(s string) val.Value { return val.OfStr(s) }

// strOrNull is how Kamailio returns optional parts: empty is null.
func strOrNull(s string) val.Value {
	if s == "" {
		return val.NullValue
	}
	return val.OfStr(s)
}

func builtins() map[string]*Class {
	b := map[string]*Class{
		// request line
		"rm": ro(func(c *kemi.Ctx) val.Value { return strOrNull(c.Msg.Method()) }),
		"ru": rw(func(c *kemi.Ctx) val.Value {
			if !c.Msg.IsRequest() {
				return val.NullValue
			}
			return str(c.Msg.RURI())
		}, setRURI),
		"rU": rw(ruriAttr('U'), setRURIUser),
		"rd": rw(ruriAttr('d'), setRURIHost),
		"rp": rw(ruriAttr('p'), setRURIPort),
		"rz": ro(ruriAttr('z')),
		"ou": ro(func(c *kemi.Ctx) val.Value {
			if !c.Msg.IsRequest() {
				return val.NullValue
			}
			return str(c.Msg.Req.Recipient.String())
		}),
		"oU": ro(ouriAttr('U')),
		"od": ro(ouriAttr('d')),
		"op": ro(ouriAttr('p')),
		"rv": ro(func(c *kemi.Ctx) val.Value {
			if c.Msg.IsRequest() {
				return str(c.Msg.Req.SipVersion)
			}
			return str(c.Msg.Res.SipVersion)
		}),
		"mt": ro(func(c *kemi.Ctx) val.Value {
			if c.Msg.IsRequest() {
				return val.OfInt(1)
			}
			return val.OfInt(2)
		}),
		"rs": ro(func(c *kemi.Ctx) val.Value {
			if c.Msg.IsRequest() {
				return val.NullValue
			}
			return val.OfInt(int64(c.Msg.Res.StatusCode))
		}),
		"rr": ro(func(c *kemi.Ctx) val.Value {
			if c.Msg.IsRequest() {
				return val.NullValue
			}
			return str(c.Msg.Res.Reason)
		}),

		// routing state
		"du": rw(func(c *kemi.Ctx) val.Value { return strOrNull(c.Msg.DstURI) }, setDstURI),
		// flag masks reach KEMI as a C int: flag 31 makes them negative
		"mf": rw(func(c *kemi.Ctx) val.Value { return val.OfInt(int64(int32(c.Msg.Flags))) },
			flagsSetter(func(m *sipmsg.Msg) *uint32 { return &m.Flags })),
		"bf": rw(func(c *kemi.Ctx) val.Value { return val.OfInt(int64(int32(c.Msg.BFlags))) },
			flagsSetter(func(m *sipmsg.Msg) *uint32 { return &m.BFlags })),
		"T_branch_idx": ro(func(c *kemi.Ctx) val.Value { return val.OfInt(int64(c.BranchIdx)) }),

		// From / To
		"fu": rw(addrAttr("From", 'u'), addrSetter("From", 'u')),
		"fU": rw(addrAttr("From", 'U'), addrSetter("From", 'U')),
		"fd": rw(addrAttr("From", 'd'), addrSetter("From", 'd')),
		"fn": rw(addrAttr("From", 'n'), addrSetter("From", 'n')),
		"ft": ro(addrAttr("From", 't')),
		"tu": rw(addrAttr("To", 'u'), addrSetter("To", 'u')),
		"tU": rw(addrAttr("To", 'U'), addrSetter("To", 'U')),
		"td": rw(addrAttr("To", 'd'), addrSetter("To", 'd')),
		"tn": rw(addrAttr("To", 'n'), addrSetter("To", 'n')),
		"tt": ro(addrAttr("To", 't')),

		// transport
		"si": ro(func(c *kemi.Ctx) val.Value { return str(c.Msg.SrcIP) }),
		"sp": ro(func(c *kemi.Ctx) val.Value { return val.OfInt(int64(c.Msg.SrcPort)) }),
		"su": ro(func(c *kemi.Ctx) val.Value { return str(SrcURI(c.Msg)) }),
		"Ri": ro(rcvIP),
		"Rp": ro(rcvPort),
		// No advertised addresses in kemigo yet: Kamailio then gives the
		// socket's own address.
		"RAi": ro(rcvIP),
		"RAp": ro(rcvPort),
		"Ru": ro(func(c *kemi.Ctx) val.Value {
			if c.Msg.DstIP == "" {
				return val.NullValue
			}
			return str(addrURI(c.Msg.DstIP, c.Msg.DstPort, c.Msg.Proto))
		}),
		"pr": ro(proto),

		// headers
		"ci": ro(func(c *kemi.Ctx) val.Value { return strOrNull(c.Msg.CallID()) }),
		"cs": ro(func(c *kemi.Ctx) val.Value {
			if cs := c.Msg.SIP().CSeq(); cs != nil {
				return str(strconv.FormatUint(uint64(cs.SeqNo), 10))
			}
			return val.NullValue
		}),
		"ua": ro(hdrBody("User-Agent", false)),
		"ct": ro(hdrBody("Contact", true)),
		"cT": ro(hdrBody("Content-Type", true)),
		"cl": ro(func(c *kemi.Ctx) val.Value {
			if cl := c.Msg.SIP().ContentLength(); cl != nil {
				return val.OfInt(int64(*cl))
			}
			return val.NullValue
		}),
		// kemigo keeps no copy of the received buffer: $mb and $ml use the
		// message as sipgo serializes it.
		"ml":  ro(func(c *kemi.Ctx) val.Value { return val.OfInt(int64(len(c.Msg.SIP().String()))) }),
		"mb":  ro(func(c *kemi.Ctx) val.Value { return str(c.Msg.SIP().String()) }),
		"rb":  ro(func(c *kemi.Ctx) val.Value { return str(string(c.Msg.SIP().Body())) }),
		"hdr": {Get: getHdr, NeedsInner: true},

		// script variables and AVPs
		"var": {Get: getVar(false), Set: setVar(false), NeedsInner: true},
		"vz":  {Get: getVar(false), Set: setVar(false), NeedsInner: true},
		"vn":  {Get: getVar(true), Set: setVar(true), NeedsInner: true},
		"avp": {Get: getAVP, Set: setAVP, NeedsInner: true},

		// time
		"TS":   ro(func(c *kemi.Ctx) val.Value { return val.OfInt(time.Now().Unix()) }),
		"Ts":   ro(func(c *kemi.Ctx) val.Value { return val.OfInt(msgTime(c).Unix()) }),
		"time": {Get: getTime, NeedsInner: true},
	}
	// Long aliases Kamailio also accepts.
	for alias, name := range map[string]string{"ruri": "ru", "ouri": "ou", "duri": "du",
		"from": "fu", "to": "tu", "proto": "pr", "src_ip": "si"} {
		b[alias] = b[name]
	}
	return b
}

// ---- R-URI ----

// uriAttr returns a part of u as $rU/$rd/$rp/$rz do (pv_get_xuri_attr).
func uriAttr(u *sip.Uri, what byte) val.Value {
	if u == nil {
		return val.NullValue
	}
	switch what {
	case 'U':
		return strOrNull(u.User)
	case 'd':
		return strOrNull(u.Host)
	case 'p':
		// a str in 5.6.3; the default port when absent
		if u.Port > 0 {
			return str(strconv.Itoa(u.Port))
		}
		if t, _ := u.UriParams.Get("transport"); strings.EqualFold(t, "tls") {
			return str("5061")
		}
		return str("5060")
	case 'z':
		if u.Scheme == "" {
			return str("sip")
		}
		return str(strings.ToLower(u.Scheme))
	}
	return val.NullValue
}

func ruriAttr(what byte) getFn {
	return func(c *kemi.Ctx) val.Value { return uriAttr(c.Msg.RURIParsed(), what) }
}

func ouriAttr(what byte) getFn {
	return func(c *kemi.Ctx) val.Value {
		if !c.Msg.IsRequest() {
			return val.NullValue
		}
		return uriAttr(&c.Msg.Req.Recipient, what)
	}
}

func setRURI(c *kemi.Ctx, v val.Value) error {
	if !c.Msg.IsRequest() {
		return fmt.Errorf("%w: no R-URI in a reply", ErrReadOnly)
	}
	if v.Kind != val.Str {
		return fmt.Errorf("%w: str value required to set R-URI", ErrType)
	}
	return c.Msg.SetRURI(v.S)
}

// editRURI changes a copy of the current R-URI and stores it.
func editRURI(c *kemi.Ctx, edit func(u *sip.Uri) error) error {
	if !c.Msg.IsRequest() {
		return fmt.Errorf("%w: no R-URI in a reply", ErrReadOnly)
	}
	cur := c.Msg.RURIParsed()
	if cur == nil {
		return fmt.Errorf("%w: R-URI does not parse", ErrType)
	}
	u := cur.Clone()
	if err := edit(u); err != nil {
		return err
	}
	return c.Msg.SetRURI(u.String())
}

func setRURIUser(c *kemi.Ctx, v val.Value) error {
	if v.Kind != val.Null && v.Kind != val.Str {
		return fmt.Errorf("%w: str value required to set R-URI user", ErrType)
	}
	return editRURI(c, func(u *sip.Uri) error {
		u.User = v.S // null or "" removes the user part
		if u.User == "" {
			u.Password = ""
		}
		return nil
	})
}

func setRURIHost(c *kemi.Ctx, v val.Value) error {
	if v.Kind != val.Str || v.S == "" {
		return fmt.Errorf("%w: str value required to set R-URI host", ErrType)
	}
	return editRURI(c, func(u *sip.Uri) error { u.Host = v.S; return nil })
}

func setRURIPort(c *kemi.Ctx, v val.Value) error {
	port := 0 // null removes the port
	switch v.Kind {
	case val.Int, val.Bool:
		port = int(v.I)
	case val.Str:
		n, err := strconv.Atoi(strings.TrimSpace(v.S))
		if err != nil {
			return fmt.Errorf("%w: bad R-URI port %q", ErrType, v.S)
		}
		port = n
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("%w: bad R-URI port %d", ErrType, port)
	}
	return editRURI(c, func(u *sip.Uri) error { u.Port = port; return nil })
}

func setDstURI(c *kemi.Ctx, v val.Value) error {
	switch v.Kind {
	case val.Null:
		c.Msg.DstURI = ""
	case val.Str:
		c.Msg.DstURI = v.S // Kamailio's set_dst_uri does not validate either
	default:
		return fmt.Errorf("%w: str value required to set dst uri", ErrType)
	}
	return nil
}

// flagsSetter assigns $mf / $bf: int only, null clears.
func flagsSetter(field func(m *sipmsg.Msg) *uint32) setFn {
	return func(c *kemi.Ctx, v val.Value) error {
		switch v.Kind {
		case val.Null:
			*field(c.Msg) = 0
		case val.Int, val.Bool:
			*field(c.Msg) = uint32(v.I)
		default:
			return fmt.Errorf("%w: assigning non-int value to flags", ErrType)
		}
		return nil
	}
}

// ---- From / To ----

// nameAddr is a From/To header value.
type nameAddr struct {
	display string // unquoted
	uri     sip.Uri
	params  sip.HeaderParams
}

func (a *nameAddr) render() string {
	h := sip.FromHeader{DisplayName: a.display, Address: a.uri, Params: a.params}
	return h.Value()
}

// receivedAddr returns the From or To of the received message.
func receivedAddr(m *sipmsg.Msg, name string) *nameAddr {
	if name == "From" {
		if f := m.SIP().From(); f != nil {
			return &nameAddr{f.DisplayName, f.Address, f.Params}
		}
		return nil
	}
	if t := m.SIP().To(); t != nil {
		return &nameAddr{t.DisplayName, t.Address, t.Params}
	}
	return nil
}

func addrAttr(name string, what byte) getFn {
	return func(c *kemi.Ctx) val.Value {
		a := receivedAddr(c.Msg, name)
		if a == nil {
			return val.NullValue
		}
		switch what {
		case 'u':
			return str(a.uri.String())
		case 'U':
			return strOrNull(a.uri.User)
		case 'd':
			return strOrNull(a.uri.Host)
		case 'n':
			// Kamailio keeps the quotes of a quoted display name; sipgo
			// drops them, so give them back.
			if a.display == "" {
				return val.NullValue
			}
			return str(`"` + a.display + `"`)
		case 't':
			t, _ := a.params.Get("tag")
			return strOrNull(t)
		}
		return val.NullValue
	}
}

// addrSetter queues a new From/To header built from the pending one (so
// $fU then $fd compose) or the received one.
func addrSetter(name string, what byte) setFn {
	return func(c *kemi.Ctx, v val.Value) error {
		if v.Kind != val.Null && v.Kind != val.Str {
			return fmt.Errorf("%w: str value required for %s", ErrType, name)
		}
		a := receivedAddr(c.Msg, name)
		if txt, ok := c.Msg.PendingReplace(name); ok {
			p := &nameAddr{}
			body := txt[strings.IndexByte(txt, ':')+1:]
			d, err := sip.ParseAddressValue(strings.TrimSpace(body), &p.uri, &p.params)
			if err == nil {
				p.display = d
				a = p
			}
		}
		if a == nil {
			return fmt.Errorf("%w: no %s header", ErrType, name)
		}
		a.params = a.params.Clone()
		switch what {
		case 'u':
			if v.Kind == val.Null {
				return nil // "URI cannot be deleted": a warning and success in Kamailio
			}
			u := sip.Uri{}
			if err := sip.ParseUri(v.S, &u); err != nil {
				return fmt.Errorf("%w: bad %s URI: %v", ErrType, name, err)
			}
			a.uri = u
		case 'U':
			a.uri.User = v.S
			if v.S == "" {
				a.uri.Password = ""
			}
		case 'd':
			if v.Kind == val.Null {
				return nil // "domain cannot be deleted"
			}
			a.uri.Host = v.S
		case 'n':
			a.display = strings.Trim(strings.TrimSpace(v.S), `"`)
		}
		c.Msg.QueueReplace(name, name+": "+a.render()+"\r\n")
		return nil
	}
}

// ---- transport ----

func rcvIP(c *kemi.Ctx) val.Value { return strOrNull(c.Msg.DstIP) }

func rcvPort(c *kemi.Ctx) val.Value {
	if c.Msg.DstIP == "" && c.Msg.DstPort == 0 {
		return val.NullValue
	}
	return val.OfInt(int64(c.Msg.DstPort))
}

func proto(c *kemi.Ctx) val.Value {
	if c.Msg.Proto == "" {
		return str("none")
	}
	return str(strings.ToLower(c.Msg.Proto))
}

// addrURI renders "sip:ip:port" with ";transport=" unless UDP, as
// Kamailio's get_src_uri.
func addrURI(ip string, port int, proto string) string {
	s := "sip:" + sipmsg.JoinHostPort(ip, port)
	if p := strings.ToLower(proto); p != "" && p != "udp" {
		s += ";transport=" + p
	}
	return s
}

// SrcURI is $su: the source address as a SIP URI.
func SrcURI(m *sipmsg.Msg) string { return addrURI(m.SrcIP, m.SrcPort, m.Proto) }

// ---- $hdr ----

// hdrBody returns the first header's body; emptyNull also maps an empty
// body to null (as $ct, $cT).
func hdrBody(name string, emptyNull bool) getFn {
	return func(c *kemi.Ctx) val.Value {
		v, ok := c.Msg.HeaderValue(name)
		if !ok || (emptyNull && v == "") {
			return val.NullValue
		}
		return str(v)
	}
}

// MatchHeaders returns the bodies of the headers named name ("*" for
// all), compact forms matching, in order.
func MatchHeaders(m *sipmsg.Msg, name string) []string {
	var hs []sip.Header
	if strings.TrimSpace(name) == "*" {
		hs = m.AllHeaders()
	} else {
		hs = m.Headers(name)
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Value()
	}
	return out
}

// pick selects the idx-th value, negative counting from the end; ok is
// false when out of range.
func pick[T any](vs []T, idx int) (T, bool) {
	if idx < 0 {
		idx += len(vs)
	}
	if idx < 0 || idx >= len(vs) {
		var zero T
		return zero, false
	}
	return vs[idx], true
}

func getHdr(c *kemi.Ctx, s *Spec, inner string) (val.Value, error) {
	bodies := MatchHeaders(c.Msg, inner)
	if len(bodies) == 0 {
		return val.NullValue, nil
	}
	if s.IdxAll {
		return str(strings.Join(bodies, ",")), nil
	}
	b, ok := pick(bodies, s.Idx)
	if !ok {
		return val.NullValue, nil
	}
	return str(b), nil
}

// ---- $var / $vz / $vn ----

// $var and $vz share one namespace; $vn (null allowed) has its own, as in
// Kamailio's pv_svar.c. vnKey keeps $vn names apart in WorkerState.Vars.
func vnKey(name string) string { return "\x00vn\x00" + name }

func normVal(v val.Value) val.Value {
	if v.Kind == val.Bool {
		return val.OfInt(v.I)
	}
	return v
}

func getVar(nullable bool) func(*kemi.Ctx, *Spec, string) (val.Value, error) {
	return func(c *kemi.Ctx, _ *Spec, name string) (val.Value, error) {
		if c.Worker == nil {
			return val.NullValue, fmt.Errorf("%w: no worker state", ErrUnknown)
		}
		if nullable {
			return c.Worker.Vars[vnKey(name)], nil // absent: null
		}
		if v, ok := c.Worker.Vars[name]; ok {
			return v, nil
		}
		return val.OfInt(0), nil
	}
}

func setVar(nullable bool) func(*kemi.Ctx, *Spec, string, val.Value) error {
	return func(c *kemi.Ctx, _ *Spec, name string, v val.Value) error {
		if c.Worker == nil {
			return fmt.Errorf("%w: no worker state", ErrUnknown)
		}
		switch {
		case nullable && v.IsNull():
			delete(c.Worker.Vars, vnKey(name))
		case nullable:
			c.Worker.Vars[vnKey(name)] = normVal(v)
		case v.IsNull():
			c.Worker.Vars[name] = val.OfInt(0) // unset $var is int 0
		default:
			c.Worker.Vars[name] = normVal(v)
		}
		return nil
	}
}

// ---- $avp ----

// avpName drops the "s:" string-name prefix ($avp(s:x) is $avp(x)).
func avpName(inner string) string {
	n := strings.TrimSpace(inner)
	if strings.HasPrefix(n, "s:") {
		n = n[2:]
	}
	return n
}

func getAVP(c *kemi.Ctx, s *Spec, inner string) (val.Value, error) {
	stack := c.Msg.AVP(avpName(inner))
	if len(stack) == 0 {
		return val.NullValue, nil
	}
	if s.IdxAll {
		parts := make([]string, len(stack))
		for i, v := range stack {
			parts[i] = v.String()
		}
		return str(strings.Join(parts, ", ")), nil
	}
	v, ok := pick(stack, s.Idx)
	if !ok {
		return val.NullValue, nil
	}
	return v, nil
}

// setAVP pushes a value; null deletes the top value, or all with [*];
// assigning to $(avp(x)[*]) replaces the whole stack.
func setAVP(c *kemi.Ctx, s *Spec, inner string, v val.Value) error {
	name := avpName(inner)
	if name == "" {
		return fmt.Errorf("%w: empty AVP name", ErrSyntax)
	}
	if v.IsNull() || s.IdxAll {
		c.Msg.DelAVP(name, s.IdxAll)
		if v.IsNull() {
			return nil
		}
	}
	c.Msg.PushAVP(name, normVal(v))
	return nil
}

// ---- time ----

// msgTime is the time the current message was received ($Ts, $time are
// cached per message in Kamailio).
func msgTime(c *kemi.Ctx) time.Time {
	if c.Msg.Recv.IsZero() {
		return time.Now()
	}
	return c.Msg.Recv
}

func getTime(c *kemi.Ctx, _ *Spec, inner string) (val.Value, error) {
	t := msgTime(c).Local()
	var n int
	switch strings.TrimSpace(inner) {
	case "sec":
		n = t.Second()
	case "min":
		n = t.Minute()
	case "hour":
		n = t.Hour()
	case "mday":
		n = t.Day()
	case "mon":
		n = int(t.Month())
	case "year":
		n = t.Year()
	case "wday":
		n = int(t.Weekday()) + 1
	case "yday":
		n = t.YearDay()
	case "isdst":
		if t.IsDST() {
			n = 1
		}
	default:
		return val.NullValue, fmt.Errorf("%w: $time(%s)", ErrSyntax, inner)
	}
	return val.OfInt(int64(n)), nil
}
