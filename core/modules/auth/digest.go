package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
)

// Credentials are the parameters of one Digest Authorization /
// Proxy-Authorization header, parsed as Kamailio's parse_digest_cred.
// A parameter that was absent has its Has* flag false.
type Credentials struct {
	Username string // whole username as sent
	User     string // user part (before '@', after an optional "sip:")
	Domain   string // domain part (after '@'), "" when absent
	Realm    string
	Nonce    string
	URI      string
	Response string
	CNonce   string
	Opaque   string
	QOP      string // as sent
	NC       string
	Alg      string // algorithm as sent

	HasUsername, HasRealm, HasNonce, HasURI, HasResponse bool
	HasCNonce, HasOpaque, HasQOP, HasNC, HasAlg          bool
}

// qop values (Kamailio's qop_type_t).
const (
	qopUnspec = iota
	qopAuth
	qopAuthInt
	qopOther
)

// qopType classifies the qop parameter as parse_qop does.
func (c *Credentials) qopType() int {
	if !c.HasQOP {
		return qopUnspec
	}
	q := strings.Trim(c.QOP, " \t\r\n")
	switch {
	case q == "":
		return qopUnspec
	case strings.EqualFold(q, "auth"):
		return qopAuth
	case strings.EqualFold(q, "auth-int"):
		return qopAuthInt
	}
	return qopOther
}

// Results of ParseCredentials (Kamailio's parse_digest_cred).
const (
	parseOK         = 0
	parseNotDigest  = 1
	parseBadDigest  = -2
	digestSchemeLen = 6
)

// ParseCredentials parses a credentials header body. It returns the
// credentials and 0, 1 when the scheme is not Digest, or -2 when the
// Digest parameters are malformed. Like Kamailio's parser it takes
// parameter values as a quoted string (no escapes) or a token ending at
// white space or ',', and skips anything after a value up to the next ','.
func ParseCredentials(body string) (Credentials, int) {
	var c Credentials
	s := strings.TrimLeft(body, " \t\r\n")
	if len(s) < digestSchemeLen+1 {
		return c, parseNotDigest
	}
	if !strings.EqualFold(s[:digestSchemeLen], "digest") || strings.IndexByte(" \r\n\t,", s[digestSchemeLen]) < 0 {
		return c, parseNotDigest
	}
	s = strings.TrimLeft(s[digestSchemeLen+1:], " \t\r\n")
	for {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return c, parseBadDigest
		}
		name := strings.ToLower(strings.Trim(s[:eq], " \t\r\n"))
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		if s == "" {
			return c, parseBadDigest
		}
		var v string
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if len(s) < 2 || end < 0 {
				return c, parseBadDigest
			}
			v, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, " \t\r\n,")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return c, parseBadDigest
			}
			v, s = s[:end], s[end:]
		}
		c.set(name, v)
		comma := strings.IndexByte(s, ',')
		if comma < 0 {
			break
		}
		s = strings.TrimLeft(s[comma+1:], " \t\r\n")
	}
	if c.HasUsername {
		c.User, c.Domain = SplitUsername(c.Username)
	}
	return c, parseOK
}

func (c *Credentials) set(name, v string) {
	switch name {
	case "username":
		c.Username, c.HasUsername = v, true
	case "realm":
		c.Realm, c.HasRealm = v, true
	case "nonce":
		c.Nonce, c.HasNonce = v, true
	case "uri":
		c.URI, c.HasURI = v, true
	case "response":
		c.Response, c.HasResponse = v, true
	case "cnonce":
		c.CNonce, c.HasCNonce = v, true
	case "opaque":
		c.Opaque, c.HasOpaque = v, true
	case "qop":
		c.QOP, c.HasQOP = v, true
	case "nc":
		c.NC, c.HasNC = v, true
	case "algorithm":
		c.Alg, c.HasAlg = v, true
	}
}

// SplitUsername splits a digest username into user and domain as
// Kamailio's parse_username: "user@domain" gives both; a "sip:" style
// prefix before ':' is dropped from the user; names of two characters or
// less are not split.
func SplitUsername(whole string) (user, domain string) {
	user = whole
	if len(whole) <= 2 {
		return user, ""
	}
	if i := strings.IndexByte(whole, '@'); i >= 0 {
		domain = whole[i+1:]
		user = whole[:i]
	}
	if i := strings.IndexByte(user, ':'); i >= 0 {
		user = user[i+1:]
	}
	return user, domain
}

// complete is check_dig_cred: username, realm, nonce, uri and response
// are required; with qop auth or auth-int also cnonce and nc.
func (c *Credentials) complete() bool {
	if !c.HasUsername || !c.HasRealm || !c.HasNonce || !c.HasURI || !c.HasResponse {
		return false
	}
	if q := c.qopType(); q == qopAuth || q == qopAuthInt {
		return c.HasCNonce && c.HasNC
	}
	return true
}

// Algorithm is a digest hash algorithm (RFC 7616 §3.2).
type Algorithm struct {
	Name string // as printed in challenges: "MD5", "SHA-256", "MD5-sess", ...
	Sess bool
	new  func() hash.Hash
}

// HexLen is the length of a hex digest of the algorithm.
func (a Algorithm) HexLen() int { return a.new().Size() * 2 }

// Base is the algorithm name without "-sess": what HA1 values are stored for.
func (a Algorithm) Base() string { return strings.TrimSuffix(a.Name, "-sess") }

// H hashes s and returns lower-case hex.
func (a Algorithm) H(s string) string {
	h := a.new()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// The algorithms kemigo knows.
var (
	MD5        = Algorithm{Name: "MD5", new: md5.New}
	MD5Sess    = Algorithm{Name: "MD5-sess", Sess: true, new: md5.New}
	SHA256     = Algorithm{Name: "SHA-256", new: sha256.New}
	SHA256Sess = Algorithm{Name: "SHA-256-sess", Sess: true, new: sha256.New}
)

// ParseAlgorithm maps an algorithm name (case-insensitive) to an Algorithm.
func ParseAlgorithm(name string) (Algorithm, bool) {
	for _, a := range []Algorithm{MD5, MD5Sess, SHA256, SHA256Sess} {
		if strings.EqualFold(strings.TrimSpace(name), a.Name) {
			return a, true
		}
	}
	return Algorithm{}, false
}

// HA1 computes H(username:realm:password) in hex, the value auth_db
// stores (ha1 with the plain user, ha1b with user@domain).
func HA1(alg Algorithm, username, realm, password string) string {
	return alg.H(username + ":" + realm + ":" + password)
}

// sessHA1 turns a stored HA1 into the session key of a -sess algorithm
// (RFC 7616 §3.4.2: H(H(user:realm:pw):nonce:cnonce), hex in the middle).
func sessHA1(alg Algorithm, ha1, nonce, cnonce string) string {
	if !alg.Sess {
		return ha1
	}
	return alg.H(ha1 + ":" + nonce + ":" + cnonce)
}

// Response computes the request-digest (RFC 2617 §3.2.2.1, RFC 7616
// §3.4.1) from H(A1) as calc_response does: with a qop it is
// H(HA1:nonce:nc:cnonce:qop:HA2), otherwise H(HA1:nonce:HA2), where HA2
// is H(method:uri), or H(method:uri:H(body)) for auth-int. An empty
// method gives the rspauth of Authentication-Info.
func Response(alg Algorithm, ha1, nonce, nc, cnonce, qop, method, uri string, authInt bool, body []byte) string {
	a2 := method + ":" + uri
	if authInt {
		a2 += ":" + alg.H(string(body))
	}
	ha2 := alg.H(a2)
	if qop != "" {
		return alg.H(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)
	}
	return alg.H(ha1 + ":" + nonce + ":" + ha2)
}
