package siptest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Challenge is one Digest challenge of a WWW-Authenticate or
// Proxy-Authenticate header (RFC 2617 §3.2.1, RFC 7616 §3.3).
type Challenge struct {
	Realm     string
	Nonce     string
	Opaque    string
	Algorithm string   // as sent ("" when absent: MD5)
	QOP       []string // the qop values offered
	Stale     bool
	// Header names the header the challenge came in; the credentials
	// answering it go in AuthHeader.
	Header string
}

// AuthHeader is the request header answering the challenge: Authorization
// for WWW-Authenticate, Proxy-Authorization for Proxy-Authenticate.
func (ch Challenge) AuthHeader() string {
	if strings.EqualFold(ch.Header, "Proxy-Authenticate") {
		return "Proxy-Authorization"
	}
	return "Authorization"
}

// Offers reports whether qop is one of the offered qop values.
func (ch Challenge) Offers(qop string) bool {
	for _, q := range ch.QOP {
		if strings.EqualFold(q, qop) {
			return true
		}
	}
	return false
}

// ParseChallenge parses the value of a WWW-Authenticate or
// Proxy-Authenticate header ("Digest realm=..., nonce=..."). The Header
// field is left empty.
func ParseChallenge(v string) (Challenge, error) {
	var ch Challenge
	s := strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(s, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return ch, fmt.Errorf("siptest: challenge %q is not Digest", v)
	}
	params, err := parseAuthParams(rest)
	if err != nil {
		return ch, fmt.Errorf("siptest: challenge %q: %w", v, err)
	}
	for k, val := range params {
		switch k {
		case "realm":
			ch.Realm = val
		case "nonce":
			ch.Nonce = val
		case "opaque":
			ch.Opaque = val
		case "algorithm":
			ch.Algorithm = val
		case "qop":
			for _, q := range strings.Split(val, ",") {
				if q = strings.TrimSpace(q); q != "" {
					ch.QOP = append(ch.QOP, q)
				}
			}
		case "stale":
			ch.Stale = strings.EqualFold(val, "true")
		}
	}
	if ch.Nonce == "" {
		return ch, fmt.Errorf("siptest: challenge %q has no nonce", v)
	}
	return ch, nil
}

// parseAuthParams splits `k=v, k="v, with comma", ...` (keys lower-cased).
func parseAuthParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("bad parameter at %q", s)
		}
		k := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var v string
		if strings.HasPrefix(s, `"`) {
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, fmt.Errorf("unterminated quoted value of %s", k)
			}
			v = strings.ReplaceAll(s[1:end], `\"`, `"`)
			s = s[end+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			v = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		out[k] = v
	}
}

// ChallengeOf returns the first Digest challenge of a 401 (WWW-Authenticate)
// or 407 (Proxy-Authenticate) reply.
func ChallengeOf(res *sip.Response) (Challenge, error) {
	if res == nil {
		return Challenge{}, fmt.Errorf("siptest: no reply to take a challenge from")
	}
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		if v, ok := Header(res, name); ok {
			ch, err := ParseChallenge(v)
			ch.Header = name
			return ch, err
		}
	}
	return Challenge{}, fmt.Errorf("siptest: %d %s has no challenge header", res.StatusCode, res.Reason)
}

// Credentials is what a UAC answers a Digest challenge with.
type Credentials struct {
	User     string
	Password string
	Method   string // the request method
	URI      string // the digest-uri: normally the R-URI
	// QOP: "" uses "auth" when the challenge offers it and no qop
	// otherwise (RFC 2617 §3.2.2); a value is sent as it is, offered or
	// not (to test a server's nonce-count handling).
	QOP    string
	NC     int    // nonce count, with a qop (0 is sent as 1)
	CNonce string // "" picks a random one, with a qop
	Body   []byte // the request body, for qop=auth-int
}

// Authorize computes the Digest credentials answering ch (RFC 2617 §3.2.2,
// RFC 7616 §3.4; MD5, SHA-256 and their -sess variants) and returns the
// header value: `Digest username="...", realm="...", ...`.
func (ch Challenge) Authorize(cr Credentials) (string, error) {
	alg := ch.Algorithm
	base, sess := strings.CutSuffix(strings.ToUpper(alg), "-SESS")
	var newHash func() hash.Hash
	switch base {
	case "", "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	default:
		return "", fmt.Errorf("siptest: digest algorithm %q not supported", alg)
	}
	h := func(s string) string {
		d := newHash()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
	qop := cr.QOP
	if qop == "" && ch.Offers("auth") {
		qop = "auth"
	}
	nc, cnonce := "", cr.CNonce
	if qop != "" {
		n := cr.NC
		if n <= 0 {
			n = 1
		}
		nc = fmt.Sprintf("%08x", n)
		if cnonce == "" {
			cnonce = NewID(8)
		}
	}
	ha1 := h(cr.User + ":" + ch.Realm + ":" + cr.Password)
	if sess {
		ha1 = h(ha1 + ":" + ch.Nonce + ":" + cnonce)
	}
	a2 := cr.Method + ":" + cr.URI
	if strings.EqualFold(qop, "auth-int") {
		a2 += ":" + h(string(cr.Body))
	}
	ha2 := h(a2)
	var resp string
	if qop != "" {
		resp = h(ha1 + ":" + ch.Nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)
	} else {
		resp = h(ha1 + ":" + ch.Nonce + ":" + ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`,
		cr.User, ch.Realm, ch.Nonce, cr.URI, resp)
	if alg != "" {
		fmt.Fprintf(&b, ", algorithm=%s", alg)
	}
	if ch.Opaque != "" {
		fmt.Fprintf(&b, `, opaque="%s"`, ch.Opaque)
	}
	if qop != "" {
		fmt.Fprintf(&b, `, qop=%s, nc=%s, cnonce="%s"`, qop, nc, cnonce)
	}
	return b.String(), nil
}
