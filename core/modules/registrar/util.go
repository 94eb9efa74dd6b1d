package registrar

import (
	"errors"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/modules/siputils"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// Limits of Kamailio 5.6 (registrar.h, config.h).
const (
	receivedMaxSize = 255
	usernameMaxSize = 64
	domainMaxSize   = 128
	callidMaxSize   = 255
	maxUASize       = 255
	maxAORLen       = 256
)

// extractAOR is Kamailio's extract_aor: the AoR of a URI is its unescaped
// user part, plus "@" and the host (its realm_prefix stripped) with
// use_domain, lower-cased (only the domain part with case_sensitive).
// The parsed URI is returned too.
func (m *Module) extractAOR(uri string) (string, *siputils.URI, int) {
	pu, err := siputils.ParseURI(strings.TrimSpace(uri))
	if err != nil {
		return "", nil, rAORParse
	}
	if len(pu.User)+len(pu.Host)+1 > maxAORLen || len(pu.User) > usernameMaxSize || len(pu.Host) > domainMaxSize {
		return "", nil, rAORLen
	}
	user, ok := unescape(pu.User)
	if !ok {
		return "", nil, rUnescape
	}
	aor := user
	if m.ul.UseDomain() {
		if user != "" {
			aor += "@"
		}
		host := pu.Host
		if p := m.cfg.RealmPrefix; p != "" && len(p) < len(host) && strings.HasPrefix(host, p) {
			host = host[len(p):]
		}
		if m.cfg.CaseSensitive != 0 && user != "" {
			return aor + strings.ToLower(host), pu, rFine
		}
		aor += host
	}
	if m.cfg.CaseSensitive != 0 && user != "" {
		return aor, pu, rFine
	}
	return strings.ToLower(aor), pu, rFine
}

// unescape decodes %XX escapes (Kamailio's un_escape).
func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

var errQ = errors.New("invalid q value")

// str2q parses a q value ("0", "0.5", "1.000", ...) into 0..1000, as
// Kamailio's str2q (at most three decimals are kept).
func str2q(s string) (int, error) {
	const (
		stStart = iota
		st0
		st1
		st0Pt
		st1Pt
		st1Pt0
		st0PtN
	)
	state, q, order, digits := stStart, 0, 100, 1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case stStart:
			switch c {
			case ' ', '\t':
			case '0':
				q, state = 0, st0
			case '1':
				q, state = 1000, st1
			case '.':
				state = st0Pt
			default:
				return 0, errQ
			}
		case st0:
			switch c {
			case '0':
			case '.':
				state = st0Pt
			case '1':
				q, state = 1000, st1
			default:
				return 0, errQ
			}
		case st1:
			if c != '.' {
				return 0, errQ
			}
			state = st1Pt
		case st0Pt:
			if c < '0' || c > '9' {
				return 0, errQ
			}
			q = int(c-'0') * order
			order /= 10
			state = st0PtN
		case st1Pt:
			if c != '0' {
				return 0, errQ
			}
			state = st1Pt0
		case st1Pt0:
			if c != '0' {
				return 0, errQ
			}
		case st0PtN:
			if c < '0' || c > '9' {
				return 0, errQ
			}
			if digits <= 3 {
				q += int(c-'0') * order
				order /= 10
				digits++
			}
		}
	}
	switch state {
	case stStart, st0Pt, st1Pt:
		return 0, errQ
	}
	return q, nil
}

// q2str renders a q value as Kamailio's q2str ("" when unspecified).
func q2str(q int) string {
	switch {
	case q < 0:
		return ""
	case q >= 1000:
		return "1"
	case q == 0:
		return "0"
	}
	s := "0." + string(rune('0'+q/100))
	if q %= 100; q == 0 {
		return s
	}
	s += string(rune('0' + q/10))
	if q %= 10; q == 0 {
		return s
	}
	return s + string(rune('0'+q))
}

// Kamailio's METHOD_* bits.
var methodBits = map[string]uint32{
	"INVITE": 1, "CANCEL": 2, "ACK": 4, "BYE": 8, "INFO": 16, "REGISTER": 32,
	"SUBSCRIBE": 64, "NOTIFY": 128, "MESSAGE": 256, "OPTIONS": 512, "PRACK": 1024,
	"UPDATE": 2048, "REFER": 4096, "PUBLISH": 8192, "KDMQ": 16384, "GET": 32768,
	"POST": 65536, "PUT": 131072, "DELETE": 262144,
}

const methodOther uint32 = 524288

// methodBit returns the bit of a method name (METHOD_OTHER when unknown).
func methodBit(name string) uint32 {
	if b, ok := methodBits[strings.ToUpper(name)]; ok {
		return b
	}
	return methodOther
}

// parseMethods parses a comma-separated method list (Allow, methods=).
func parseMethods(s string) (uint32, bool) {
	s = strings.Trim(strings.TrimSpace(s), "\"")
	if strings.TrimSpace(s) == "" {
		return 0, false
	}
	var out uint32
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			return 0, false
		}
		out |= methodBit(t)
	}
	return out, true
}

// splitList splits a header body on commas outside <>, quotes.
func splitList(s string) []string {
	var out []string
	depth, inQ, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQ = !inQ
		case '<':
			if !inQ {
				depth++
			}
		case '>':
			if !inQ && depth > 0 {
				depth--
			}
		case ',':
			if !inQ && depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// pathDstURI returns the first URI of a path vector (get_path_dst_uri).
func pathDstURI(path string) string {
	els := splitList(path)
	if len(els) == 0 || els[0] == "" {
		return ""
	}
	return siputils.NameAddrURI(els[0])
}

// optionTags returns the option tags of every header named name
// (Supported, Require) and whether there is such a header.
func optionTags(m *sipmsg.Msg, name string) (map[string]bool, bool) {
	hs := m.Headers(name)
	if len(hs) == 0 {
		return nil, false
	}
	out := map[string]bool{}
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
				out[t] = true
			}
		}
	}
	return out, true
}

// ---- contacts of a REGISTER ----

// regContact is one contact of the message.
type regContact struct {
	uri      string
	star     bool
	expires  string // param body ("" when absent or empty)
	q        string
	hasQ     bool
	received string
	instance string // without quotes
	regID    string
	methods  string
	hasMeth  bool
}

// msgContacts returns the contacts of m in order. The first one's URI is
// the one nathelper's fix_nated_contact / set_contact_alias set, when
// called before (Kamailio changes the parsed contact in place).
func msgContacts(m *sipmsg.Msg) ([]regContact, error) {
	var out []regContact
	for _, h := range m.Headers("contact") {
		var chs []*sip.ContactHeader
		if ch, ok := h.(*sip.ContactHeader); ok {
			chs = append(chs, ch)
		} else {
			hs, err := sip.HeadersParser(sip.DefaultHeadersParser()).ParseHeader(nil, []byte("Contact: "+h.Value()))
			if err != nil {
				return nil, err
			}
			for _, x := range hs {
				if ch, ok := x.(*sip.ContactHeader); ok {
					chs = append(chs, ch)
				}
			}
		}
		for _, ch := range chs {
			rc := regContact{star: ch.Address.Wildcard}
			if !rc.star {
				rc.uri = ch.Address.String()
			}
			for _, kv := range ch.Params {
				v := strings.TrimSpace(kv.V)
				switch strings.ToLower(kv.K) {
				case "expires":
					rc.expires = v
				case "q":
					rc.q, rc.hasQ = v, v != ""
				case "received":
					rc.received = unquote(v)
				case "+sip.instance":
					rc.instance = unquote(v)
				case "reg-id":
					rc.regID = v
				case "methods":
					rc.methods, rc.hasMeth = unquote(v), true
				}
			}
			out = append(out, rc)
		}
	}
	if len(out) > 0 && !out[0].star {
		if s, ok := m.Ext[ExtContactURI].(string); ok && s != "" {
			out[0].uri = s
		}
	}
	return out, nil
}

// ExtContactURI is the Msg.Ext key under which nathelper leaves the new
// URI of the first contact after fix_nated_contact / set_contact_alias.
const ExtContactURI = "nathelper.contact"

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// msgSocket is the local socket of m as "proto:ip:port".
func msgSocket(m *sipmsg.Msg) string {
	if m.DstIP == "" {
		return ""
	}
	p := strings.ToLower(m.Proto)
	if p == "" {
		p = "udp"
	}
	return p + ":" + sipmsg.JoinHostPort(strings.Trim(m.DstIP, "[]"), m.DstPort)
}

// parseSocket checks a "proto:host:port" socket string (parse_phostport)
// and returns it normalised.
func parseSocket(s string) (string, bool) {
	s = strings.TrimSpace(s)
	proto, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	switch strings.ToLower(proto) {
	case "udp", "tcp", "tls", "sctp", "ws", "wss":
	default:
		return "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || strings.HasSuffix(rest[:i], ":") {
		return "", false
	}
	port, err := strconv.Atoi(rest[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return "", false
	}
	return strings.ToLower(proto) + ":" + sipmsg.JoinHostPort(strings.Trim(rest[:i], "[]"), port), true
}

func isStream(proto string) bool {
	switch strings.ToLower(proto) {
	case "tcp", "tls", "ws", "wss":
		return true
	}
	return false
}

func parseURI(s string) (*siputils.URI, error) { return siputils.ParseURI(strings.TrimSpace(s)) }
