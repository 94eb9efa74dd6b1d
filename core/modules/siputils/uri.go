package siputils

import (
	"errors"
	"strconv"
	"strings"
)

// URIType is the scheme class Kamailio's parse_uri gives a URI.
type URIType uint8

const (
	URIError URIType = iota
	URISip
	URISips
	URITel
	URIUrn
)

// URI is a SIP, SIPS, TEL or URN URI split the way Kamailio's parse_uri
// (core/parser/parse_uri.c) splits it. Fields hold the text as written.
type URI struct {
	Type    URIType
	User    string // for tel: the number
	Passwd  string
	Host    string // "[...]" kept for IPv6 references; "" for tel:
	Port    string // digits as written, "" when absent
	PortNo  int
	Params  string // text after the first ';' (without it) up to '?'
	Headers string // text after '?'

	raw         string
	paramsStart int // offset of Params in raw, -1 when there is no ';'
	paramsEnd   int
	headersAt   int // offset of the '?' that starts Headers, -1 when none
}

// ErrBadURI is returned by ParseURI for every URI that Kamailio rejects.
var ErrBadURI = errors.New("bad uri")

// String returns the URI text that was parsed.
func (u *URI) String() string { return u.raw }

// ParseURI parses s with the acceptance rules of Kamailio's parse_uri,
// which are stricter than sipgo's: only the sip, sips, tel and urn schemes,
// a non-empty host with only alphanumerics, '.' and '-' after a user part,
// a numeric port of at most five digits and at most 65535, no '@' after the
// user part, and no ';' in the URI headers. A URI without a user part gets
// no host character check, as in Kamailio.
func ParseURI(s string) (*URI, error) {
	u := &URI{raw: s, paramsStart: -1, paramsEnd: -1, headersAt: -1}
	if len(s) < 5 {
		return nil, ErrBadURI
	}
	off := 4
	switch strings.ToLower(s[:4]) {
	case "sip:":
		u.Type = URISip
	case "sips":
		if s[4] != ':' {
			return nil, ErrBadURI
		}
		u.Type = URISips
		off = 5
	case "tel:":
		u.Type = URITel
	case "urn:":
		u.Type = URIUrn
	default:
		return nil, ErrBadURI
	}
	rest := s[off:]
	if rest == "" {
		return nil, ErrBadURI
	}
	if u.Type == URIUrn {
		// urn:<nid>:<nss> is accepted as long as it does not start with a
		// character parse_uri refuses at the first position.
		if rest[0] == ':' || rest[0] == ']' {
			return nil, ErrBadURI
		}
		u.Host = rest
		return u, nil
	}

	hostPart, hostOff := rest, off
	hasUser := false
	if rest[0] != '[' {
		if at := strings.IndexByte(rest, '@'); at >= 0 {
			ui := rest[:at]
			if ui == "" || ui[0] == ':' || strings.ContainsAny(ui, "[]") {
				return nil, ErrBadURI
			}
			if i := strings.IndexByte(ui, ':'); i >= 0 {
				u.User, u.Passwd = ui[:i], ui[i+1:]
				if u.User == "" || strings.IndexByte(u.Passwd, ':') >= 0 {
					return nil, ErrBadURI
				}
			} else {
				u.User = ui
			}
			hostPart, hostOff = rest[at+1:], off+at+1
			hasUser = true
			if strings.IndexByte(hostPart, '@') >= 0 {
				return nil, ErrBadURI
			}
		}
	}

	var tail string
	tailOff := 0
	if strings.HasPrefix(hostPart, "[") {
		end := strings.IndexByte(hostPart, ']')
		if end < 0 || strings.ContainsAny(hostPart[1:end], "[&@;?") {
			return nil, ErrBadURI
		}
		u.Host = hostPart[:end+1]
		tail, tailOff = hostPart[end+1:], hostOff+end+1
		if tail != "" && strings.IndexByte(":;?", tail[0]) < 0 {
			return nil, ErrBadURI
		}
	} else {
		if hostPart == "" {
			return nil, ErrBadURI
		}
		// Without a user part the first character is taken before any
		// delimiter is looked for (parse_uri's URI_INIT state).
		start := 0
		if !hasUser {
			if hostPart[0] == ':' || hostPart[0] == ']' {
				return nil, ErrBadURI
			}
			start = 1
		}
		end := len(hostPart)
		if i := strings.IndexAny(hostPart[start:], ":;?"); i >= 0 {
			end = start + i
		}
		u.Host = hostPart[:end]
		tail, tailOff = hostPart[end:], hostOff+end
		if hasUser {
			if u.Host == "" || !isAlnum(u.Host[0]) {
				return nil, ErrBadURI
			}
			for i := 0; i < len(u.Host); i++ {
				c := u.Host[i]
				if !isAlnum(c) && c != '.' && c != '-' {
					return nil, ErrBadURI
				}
			}
		} else if strings.ContainsAny(u.Host, "[]") {
			return nil, ErrBadURI
		}
	}

	if strings.HasPrefix(tail, ":") {
		p := tail[1:]
		end := len(p)
		if i := strings.IndexAny(p, ";?"); i >= 0 {
			end = i
		}
		u.Port = p[:end]
		if len(u.Port) > 5 {
			return nil, ErrBadURI
		}
		for i := 0; i < len(u.Port); i++ {
			if u.Port[i] < '0' || u.Port[i] > '9' {
				return nil, ErrBadURI
			}
		}
		if u.Port != "" {
			u.PortNo, _ = strconv.Atoi(u.Port)
			if u.PortNo > 65535 {
				return nil, ErrBadURI
			}
		}
		tail, tailOff = p[end:], tailOff+1+end
	}
	if strings.HasPrefix(tail, ";") {
		p := tail[1:]
		end := len(p)
		if i := strings.IndexByte(p, '?'); i >= 0 {
			end = i
		}
		u.Params = p[:end]
		u.paramsStart, u.paramsEnd = tailOff+1, tailOff+1+end
		tail, tailOff = p[end:], tailOff+1+end
	}
	if strings.HasPrefix(tail, "?") {
		u.headersAt = tailOff
		u.Headers = tail[1:]
		if strings.IndexByte(u.Headers, ';') >= 0 {
			return nil, ErrBadURI
		}
	}
	if u.Type == URITel {
		u.User, u.Host = u.Host, ""
	}
	return u, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Param is one "name[=value]" parameter.
type Param struct {
	Name     string
	Value    string // without surrounding quotes
	HasValue bool
}

// ErrBadParams is returned by ParseParams on an unterminated quoted value.
var ErrBadParams = errors.New("bad parameters")

// ParseParams splits a ';'-separated parameter list as Kamailio's
// parse_params does: names and values are trimmed, quoted values lose
// their quotes, empty elements are skipped.
func ParseParams(s string) ([]Param, error) {
	var out []Param
	for _, el := range splitParams(s) {
		el = strings.TrimSpace(el)
		if el == "" {
			continue
		}
		p := Param{Name: el}
		if i := strings.IndexByte(el, '='); i >= 0 {
			p.Name = strings.TrimSpace(el[:i])
			p.Value = strings.TrimSpace(el[i+1:])
			p.HasValue = true
			if strings.HasPrefix(p.Value, "\"") {
				if len(p.Value) < 2 || !strings.HasSuffix(p.Value, "\"") {
					return nil, ErrBadParams
				}
				p.Value = p.Value[1 : len(p.Value)-1]
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// splitParams splits on ';' outside double quotes.
func splitParams(s string) []string {
	var out []string
	start, inQ := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQ = !inQ
		case ';':
			if !inQ {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// ParamList parses u.Params.
func (u *URI) ParamList() ([]Param, error) { return ParseParams(u.Params) }

// Param returns the first parameter named name (case-insensitive).
func (u *URI) Param(name string) (Param, bool) {
	ps, err := u.ParamList()
	if err != nil {
		return Param{}, false
	}
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return Param{}, false
}

// WithoutParam returns the URI text with the first parameter named name
// (case-insensitive) removed, and whether one was found.
func (u *URI) WithoutParam(name string) (string, bool) {
	if u.paramsStart < 0 {
		return u.raw, false
	}
	els := splitParams(u.Params)
	idx := -1
	for i, el := range els {
		n := strings.TrimSpace(el)
		if j := strings.IndexByte(n, '='); j >= 0 {
			n = strings.TrimSpace(n[:j])
		}
		if n != "" && strings.EqualFold(n, name) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return u.raw, false
	}
	els = append(els[:idx], els[idx+1:]...)
	before := u.raw[:u.paramsStart-1] // without the ';'
	after := u.raw[u.paramsEnd:]
	if len(els) == 0 {
		return before + after, true
	}
	return before + ";" + strings.Join(els, ";") + after, true
}

// WithParam returns the URI text with ";param" added after the existing
// parameters, before any URI headers.
func (u *URI) WithParam(param string) string {
	if u.headersAt < 0 {
		return u.raw + ";" + param
	}
	return u.raw[:u.headersAt] + ";" + param + u.raw[u.headersAt:]
}

// Proto returns the lower-case value of the transport parameter, or "".
func (u *URI) Proto() string {
	if p, ok := u.Param("transport"); ok {
		return strings.ToLower(p.Value)
	}
	return ""
}

// NameAddrURI extracts the URI from a name-addr / addr-spec header value
// such as `"Bob" <sip:bob@b>;tag=1` or `sip:bob@b;tag=1`.
func NameAddrURI(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			return v[i+1 : i+j]
		}
		return v[i+1:]
	}
	if i := strings.IndexByte(v, ';'); i >= 0 {
		return strings.TrimSpace(v[:i])
	}
	return v
}
