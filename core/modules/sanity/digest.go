package sanity

import "strings"

// optStr is a digest parameter value that may be absent.
type optStr struct {
	v   string
	set bool
}

// digestCred holds the parameters of Digest credentials that
// check_dig_cred looks at.
type digestCred struct {
	username, realm, nonce, uri, response, cnonce, nc, qop optStr
}

// Results of parseDigestCred (Kamailio's parse_digest_cred).
const (
	credOK        = 0
	credNotDigest = 1
	credError     = -2
)

// parseDigestCred parses an Authorization / Proxy-Authorization body the
// way Kamailio's digest parser does: the "Digest" scheme followed by
// white space or ','; then name=value parameters, each value a quoted
// string or a token ending at white space or ','; anything up to the next
// ',' after a value is skipped.
func parseDigestCred(body string) (digestCred, int) {
	var c digestCred
	s := strings.TrimLeft(body, " \t\r\n")
	if len(s) < 7 {
		return c, credNotDigest
	}
	if !strings.EqualFold(s[:6], "digest") || strings.IndexByte(" \r\n\t,", s[6]) < 0 {
		return c, credNotDigest
	}
	s = strings.TrimLeft(s[7:], " \t\r\n")
	for {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return c, credError
		}
		name := strings.ToLower(strings.Trim(s[:eq], " \t\r\n"))
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		if s == "" {
			return c, credError
		}
		var v string
		if s[0] == '"' {
			if len(s) < 2 {
				return c, credError
			}
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return c, credError
			}
			v, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, " \t\r\n,")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return c, credError
			}
			v, s = s[:end], s[end:]
		}
		if p := c.field(name); p != nil {
			*p = optStr{v: v, set: true}
		}
		comma := strings.IndexByte(s, ',')
		if comma < 0 {
			return c, credOK
		}
		s = strings.TrimLeft(s[comma+1:], " \t\r\n")
	}
}

func (c *digestCred) field(name string) *optStr {
	switch name {
	case "username":
		return &c.username
	case "realm":
		return &c.realm
	case "nonce":
		return &c.nonce
	case "uri":
		return &c.uri
	case "response":
		return &c.response
	case "cnonce":
		return &c.cnonce
	case "nc":
		return &c.nc
	case "qop":
		return &c.qop
	}
	return nil
}

// complete is check_dig_cred: username, realm, nonce, uri and response
// must be present; with qop=auth or auth-int also cnonce and nc.
func (c *digestCred) complete() bool {
	if !c.username.set || !c.realm.set || !c.nonce.set || !c.uri.set || !c.response.set {
		return false
	}
	if q := strings.Trim(c.qop.v, " \t\r\n"); c.qop.set &&
		(strings.EqualFold(q, "auth") || strings.EqualFold(q, "auth-int")) {
		if !c.cnonce.set || !c.nc.set {
			return false
		}
	}
	return true
}
