// Package auth is Kamailio's auth module: HTTP Digest authentication of
// SIP requests (RFC 2617, RFC 7616 with MD5 and SHA-256, qop auth and
// auth-int), signed expiring nonces with nonce-count and one-time-nonce
// replay protection, challenges (401/407), and the API credential
// back-ends such as auth_db build on (CheckResponse).
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// Return codes of the authentication functions (Kamailio's
// auth_cfg_result_t).
const (
	AuthOK            = 1
	AuthError         = -1
	AuthInvalidPasswd = -2
	AuthUserUnknown   = -3
	AuthStaleNonce    = -4
	AuthNoCredentials = -5
	AuthNonceReused   = -6
	AuthUserMismatch  = -8
)

// The credentials headers.
const (
	HdrAuthorization      = "Authorization"
	HdrProxyAuthorization = "Proxy-Authorization"
)

// Challenge flags (auth_challenge, www_challenge, proxy_challenge).
const (
	FlagQOPAuth    = 1  // qop="auth"
	FlagQOPAuthInt = 2  // qop="auth-int"
	FlagNo500      = 4  // no 500 reply when the challenge cannot be built
	FlagStale      = 16 // stale=true
)

// HA1Func returns H(A1) for a digest username (as sent, possibly
// "user@domain"), the realm being checked and a base algorithm name
// ("MD5" or "SHA-256"). found is false when the user does not exist; an
// error means the credential store failed.
type HA1Func func(user, realm, alg string) (ha1 string, found bool, err error)

// ReplyFunc sends a local reply to the current request and returns 1, or
// a negative value on failure (sl.Module.SendReplyStateful / SendReply).
type ReplyFunc func(c *kemi.Ctx, code int, reason string) int

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now (tests drive nonce expiry with it).
func WithClock(now func() time.Time) Option { return func(m *Module) { m.now = now } }

type replyHooks struct{ stateful, stateless ReplyFunc }

// Module holds the nonce secret and replay tables.
type Module struct {
	cfg      Config
	algs     []Algorithm
	printAlg bool
	secret1  []byte
	secret2  []byte
	now      func() time.Time
	upSince  atomic.Int64
	nid      atomic.Uint32
	nc       *ncTable
	otn      *otnTable
	chAVP    string

	mu    sync.Mutex
	hooks atomic.Pointer[replyHooks]
}

// New builds the module. It fails on an unknown algorithm or a
// challenge_attr that is not an AVP.
func New(cfg Config, opts ...Option) (*Module, error) {
	m := &Module{cfg: cfg, now: time.Now}
	for _, o := range opts {
		o(m)
	}
	if strings.TrimSpace(cfg.Algorithm) == "" {
		m.algs = []Algorithm{MD5}
	} else {
		m.printAlg = true
		for _, name := range strings.Split(cfg.Algorithm, ",") {
			a, ok := ParseAlgorithm(name)
			if !ok {
				return nil, fmt.Errorf("auth: algorithm %q: want MD5, SHA-256, MD5-sess or SHA-256-sess", strings.TrimSpace(name))
			}
			m.algs = append(m.algs, a)
		}
	}
	if cfg.ChallengeAttr == "" {
		cfg.ChallengeAttr = "$digest_challenge"
	}
	name, ok := avpName(cfg.ChallengeAttr)
	if !ok {
		return nil, fmt.Errorf("auth: challenge_attr %q is not an AVP ($avp(name) or $name)", cfg.ChallengeAttr)
	}
	m.chAVP = name
	if m.cfg.ProxyChallengeHeader == "" {
		m.cfg.ProxyChallengeHeader = "Proxy-Authenticate"
	}
	if m.cfg.WWWChallengeHeader == "" {
		m.cfg.WWWChallengeHeader = "WWW-Authenticate"
	}
	if cfg.Secret == "" {
		m.secret1, m.secret2 = make([]byte, 32), make([]byte, 32)
		if _, err := rand.Read(m.secret1); err != nil {
			return nil, err
		}
		if _, err := rand.Read(m.secret2); err != nil {
			return nil, err
		}
	} else {
		m.secret1 = derive(cfg.Secret, "kemigo auth nonce")
		m.secret2 = derive(cfg.Secret, "kemigo auth checks")
	}
	if cfg.NonceCount != 0 {
		m.nc = newNCTable(cfg.NCArraySize)
	}
	if cfg.OneTimeNonce != 0 {
		m.otn = newOTNTable(cfg.OTNInFlightNo)
	}
	if m.nc != nil || m.otn != nil {
		var b [4]byte
		_, _ = rand.Read(b[:])
		m.nid.Store(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	}
	m.upSince.Store(m.now().Unix())
	m.hooks.Store(&replyHooks{})
	return m, nil
}

func derive(secret, label string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(label))
	return h.Sum(nil)
}

// avpName takes "$avp(name)", "$avp(s:name)" or "$name" to the AVP name.
func avpName(spec string) (string, bool) {
	s := strings.TrimSpace(spec)
	if !strings.HasPrefix(s, "$") || len(s) < 2 {
		return "", false
	}
	s = s[1:]
	if strings.HasPrefix(s, "avp(") && strings.HasSuffix(s, ")") {
		s = strings.TrimPrefix(s[4:len(s)-1], "s:")
	}
	if s == "" || strings.ContainsAny(s, "()$ ") {
		return "", false
	}
	return s, true
}

// Config returns the configuration the module was built with.
func (m *Module) Config() Config { return m.cfg }

// SetReplier plugs in the sl module: stateful is used for challenges
// (through tm when the request has a transaction, as Kamailio's freply),
// stateless when force_stateless_reply is set. Until it is called,
// replies are built and sent with sipmsg directly (stateless).
func (m *Module) SetReplier(stateful, stateless ReplyFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hooks.Store(&replyHooks{stateful: stateful, stateless: stateless})
}

func (m *Module) send(c *kemi.Ctx, code int, reason string) int {
	h := m.hooks.Load()
	f := h.stateful
	if m.cfg.ForceStatelessReply != 0 || f == nil {
		f = h.stateless
	}
	if f != nil {
		return f(c, code, reason)
	}
	msg := c.Msg
	if msg.Req == nil || msg.Req.Method == sip.ACK || msg.NoReply {
		return -1
	}
	if err := msg.Reply(code, reason); err != nil {
		c.Log.Error().Err(err).Int("code", code).Msg("auth: sending the reply failed")
		return -1
	}
	return 1
}

// stripRealm removes realm_prefix from the start of realm.
func (m *Module) stripRealm(realm string) string {
	if p := m.cfg.RealmPrefix; p != "" && len(p) <= len(realm) && strings.HasPrefix(realm, p) {
		return realm[len(p):]
	}
	return realm
}

// ChallengeHeader builds the challenge header text ("Name: Digest
// realm=..., nonce=...\r\n", one line per configured algorithm) as
// get_challenge_hf: qop from flags 1 (auth) / 2 (auth-int), stale=true
// with flag 16, the algorithm printed unless the algorithm modparam is
// empty. www selects WWW-Authenticate (else Proxy-Authenticate).
func (m *Module) ChallengeHeader(c *kemi.Ctx, realm string, flags int, www bool) string {
	qop := ""
	if flags&FlagQOPAuthInt != 0 {
		qop = "auth-int"
	} else if flags&FlagQOPAuth != 0 {
		qop = "auth"
	}
	return m.challengeHF(c.Msg, m.stripRealm(realm), flags&FlagStale != 0, qop, www)
}

func (m *Module) challengeHF(msg *sipmsg.Msg, realm string, stale bool, qop string, www bool) string {
	name := m.cfg.ProxyChallengeHeader
	if www {
		name = m.cfg.WWWChallengeHeader
	}
	nonce := m.newNonce(msg)
	var b strings.Builder
	for _, a := range m.algs {
		b.WriteString(name)
		b.WriteString(`: Digest realm="`)
		b.WriteString(realm)
		b.WriteString(`", nonce="`)
		b.WriteString(nonce)
		b.WriteByte('"')
		if qop != "" {
			b.WriteString(`, qop="`)
			b.WriteString(qop)
			b.WriteByte('"')
		}
		if stale {
			b.WriteString(", stale=true")
		}
		if m.printAlg {
			b.WriteString(", algorithm=")
			b.WriteString(a.Name)
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// Challenge is www_challenge (www) / proxy_challenge: it adds the
// challenge header to the local reply headers and sends 401
// "Unauthorized" or 407 "Proxy Authentication Required". It returns 1,
// -1 on a reply message, -3 when the reply could not be sent.
func (m *Module) Challenge(c *kemi.Ctx, realm string, flags int, www bool) int {
	if c.Msg.Req == nil {
		c.Log.Error().Msg("auth: cannot challenge a reply")
		return -1
	}
	hf := m.ChallengeHeader(c, realm, flags, www)
	c.Msg.ReplyHdrs = append(c.Msg.ReplyHdrs, hf)
	code, reason := 407, "Proxy Authentication Required"
	if www {
		code, reason = 401, "Unauthorized"
	}
	if m.send(c, code, reason) < 0 {
		return -3
	}
	return 1
}

// AuthChallenge is auth_challenge: 401 for REGISTER, 407 otherwise.
func (m *Module) AuthChallenge(c *kemi.Ctx, realm string, flags int) int {
	if c.Msg.Req == nil {
		c.Log.Error().Msg("auth: cannot challenge a reply")
		return -1
	}
	return m.Challenge(c, realm, flags, c.Msg.Req.Method == sip.REGISTER)
}

// WWWChallenge and ProxyChallenge are www_challenge / proxy_challenge.
func (m *Module) WWWChallenge(c *kemi.Ctx, realm string, flags int) int {
	return m.Challenge(c, realm, flags, true)
}
func (m *Module) ProxyChallenge(c *kemi.Ctx, realm string, flags int) int {
	return m.Challenge(c, realm, flags, false)
}

// ---- credentials state kept on the message ----

const extKey = "auth"

// mark is the credentials header pre_auth picked for a header type
// (Kamailio's "authorized" pointer of the parsed header).
type mark struct {
	index    int // among the headers of that name
	cred     Credentials
	stale    bool
	consumed bool
}

type msgState struct {
	marks map[string]*mark // by canonical header name
}

func state(msg *sipmsg.Msg, create bool) *msgState {
	if st, ok := msg.Ext[extKey].(*msgState); ok {
		return st
	}
	if !create {
		return nil
	}
	if msg.Ext == nil {
		msg.Ext = map[string]any{}
	}
	st := &msgState{marks: map[string]*mark{}}
	msg.Ext[extKey] = st
	return st
}

// AuthorizedCredentials returns the credentials of header hdrName
// ("Authorization" or "Proxy-Authorization") that the last check on msg
// used, as Kamailio's get_authorized_cred.
func AuthorizedCredentials(msg *sipmsg.Msg, hdrName string) (*Credentials, bool) {
	st := state(msg, false)
	if st == nil {
		return nil, false
	}
	mk := st.marks[sipmsg.CanonicalName(hdrName)]
	if mk == nil {
		return nil, false
	}
	return &mk.cred, true
}

// findCredentials is find_credentials: the first hdrName header whose
// Digest realm equals realm (ignoring case). It returns 0 and the index
// and credentials, 1 when none matches, -1 on a malformed Digest header.
func findCredentials(msg *sipmsg.Msg, hdrName, realm string) (int, int, Credentials) {
	for i, h := range msg.Headers(hdrName) {
		cred, rc := ParseCredentials(h.Value())
		if rc < 0 {
			return -1, 0, cred
		}
		if rc == parseOK && cred.HasRealm && strings.EqualFold(cred.Realm, realm) {
			return 0, i, cred
		}
	}
	return 1, 0, Credentials{}
}

func skipsAuth(method sip.RequestMethod) bool {
	return method == sip.ACK || method == sip.CANCEL || method == sip.PRACK
}

// preAuth is pre_auth with the result mapped to the script codes: 1 when
// the method is never authenticated (ACK, CANCEL, PRACK), 0 and the mark
// when the response must be checked, a negative code otherwise.
func (m *Module) preAuth(c *kemi.Ctx, hdrName, realm string) (int, *mark) {
	msg := c.Msg
	if msg.Req == nil {
		return AuthError, nil
	}
	if skipsAuth(msg.Req.Method) {
		return AuthOK, nil
	}
	rc, idx, cred := findCredentials(msg, hdrName, realm)
	if rc < 0 {
		c.Log.Error().Str("header", hdrName).Msg("auth: error while looking for credentials")
		return AuthError, nil
	}
	if rc > 0 {
		c.Log.Debug().Str("realm", realm).Msg("auth: credentials with realm not found")
		return AuthNoCredentials, nil
	}
	mk := &mark{index: idx, cred: cred}
	state(msg, true).marks[sipmsg.CanonicalName(hdrName)] = mk
	if !cred.complete() {
		c.Log.Error().Msg("auth: credentials are not filled properly")
		return AuthError, mk
	}
	switch r := m.checkNonce(&mk.cred, msg); r {
	case nonceOK:
	case nonceChecksBad, nonceStale:
		mk.stale = true
		return AuthStaleNonce, mk
	case nonceReused:
		return AuthNonceReused, mk
	default:
		c.Log.Debug().Int("ret", r).Msg("auth: invalid nonce value received")
		return AuthError, mk
	}
	return 0, mk
}

// credAlgorithm is the algorithm the credentials use: their algorithm
// parameter, which must be one the module offers, or the first offered.
func (m *Module) credAlgorithm(cred *Credentials) (Algorithm, bool) {
	if !cred.HasAlg || strings.TrimSpace(cred.Alg) == "" {
		return m.algs[0], true
	}
	a, ok := ParseAlgorithm(cred.Alg)
	if !ok {
		return Algorithm{}, false
	}
	for _, o := range m.algs {
		if o.Name == a.Name {
			return a, true
		}
	}
	return Algorithm{}, false
}

// CheckResponse authenticates the current request against its hdrName
// credentials ("Authorization" or "Proxy-Authorization") for realm, with
// H(A1) from ha1: Kamailio's pre_auth + check_response + post_auth, the
// core of www_authorize, proxy_authorize and auth_check. It returns 1
// (also for ACK, CANCEL and PRACK, which are never challenged), -1
// (error, malformed credentials, forged or unknown nonce, unsupported
// algorithm), -2 (wrong response), -3 (unknown user), -4 (nonce expired
// or nc replayed: re-challenge with stale), -5 (no credentials for realm)
// or -6 (one-time nonce reused).
func (m *Module) CheckResponse(c *kemi.Ctx, hdrName, realm string, ha1 HA1Func) int {
	realm = m.stripRealm(realm)
	rc, mk := m.preAuth(c, hdrName, realm)
	if rc != 0 {
		return rc
	}
	cred := &mk.cred
	alg, ok := m.credAlgorithm(cred)
	if !ok {
		c.Log.Info().Str("algorithm", cred.Alg).Msg("auth: credentials use an algorithm that is not offered")
		return AuthError
	}
	h, found, err := ha1(cred.Username, realm, alg.Base())
	if err != nil {
		c.Log.Error().Err(err).Msg("auth: credential lookup failed")
		return AuthError
	}
	if !found {
		return AuthUserUnknown
	}
	if len(cred.Response) != alg.HexLen() {
		c.Log.Debug().Int("len", len(cred.Response)).Msg("auth: response length does not match the algorithm")
		return AuthError
	}
	key := sessHA1(alg, h, cred.Nonce, cred.CNonce)
	qop := ""
	if cred.HasQOP {
		qop = cred.QOP
	}
	authInt := cred.qopType() == qopAuthInt
	var body []byte
	if authInt {
		body = c.Msg.Req.Body()
	}
	want := Response(alg, key, cred.Nonce, cred.NC, cred.CNonce, qop, string(c.Msg.Req.Method), cred.URI, authInt, body)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(cred.Response))) != 1 {
		return AuthInvalidPasswd
	}
	if m.cfg.AddAuthinfoHdr != 0 {
		m.addAuthInfo(c, alg, key, cred, qop, authInt)
	}
	return AuthOK
}

// addAuthInfo adds Authentication-Info to the local reply headers, as
// post_auth with add_authinfo_hdr: rspauth, and as nextnonce a new nonce
// with one-time nonces, else the current one.
func (m *Module) addAuthInfo(c *kemi.Ctx, alg Algorithm, key string, cred *Credentials, qop string, authInt bool) {
	rspauth := Response(alg, key, cred.Nonce, cred.NC, cred.CNonce, qop, "", cred.URI, authInt, nil)
	next := cred.Nonce
	if m.otn != nil {
		next = m.newNonce(c.Msg)
	}
	c.Msg.ReplyHdrs = append(c.Msg.ReplyHdrs, fmt.Sprintf(
		"Authentication-Info: nextnonce=\"%s\", qop=%s, rspauth=\"%s\", cnonce=\"%s\", nc=%s\r\n",
		next, qop, rspauth, cred.CNonce, cred.NC))
}

// ConsumeCredentials is consume_credentials: it queues the removal of the
// credentials header the last check used (Authorization first, then
// Proxy-Authorization) so it is not forwarded. Other headers of the same
// name stay. It returns 1, or -1 for ACK, CANCEL, PRACK and when no
// credentials were checked.
func (m *Module) ConsumeCredentials(c *kemi.Ctx) int {
	msg := c.Msg
	if msg.Req == nil || skipsAuth(msg.Req.Method) {
		return -1
	}
	st := state(msg, false)
	var name string
	var mk *mark
	if st != nil {
		for _, n := range []string{"authorization", "proxy-authorization"} {
			if mk = st.marks[n]; mk != nil {
				name = n
				break
			}
		}
	}
	if mk == nil {
		c.Log.Error().Msg("auth: no authorized credentials found (error in scripts)")
		return -1
	}
	if mk.consumed {
		return 1
	}
	var keep strings.Builder
	for i, h := range msg.Headers(name) {
		if i != mk.index {
			keep.WriteString(h.Name() + ": " + h.Value() + "\r\n")
		}
	}
	if keep.Len() > 0 {
		msg.QueueEdit(sipmsg.HeaderEdit{Op: sipmsg.EditInsertBefore, Anchor: name, Text: keep.String()})
	}
	msg.QueueEdit(sipmsg.HeaderEdit{Op: sipmsg.EditRemove, Anchor: name})
	mk.consumed = true
	return 1
}

// HasCredentials is has_credentials: 1 when a Proxy-Authorization or
// Authorization header has Digest credentials for realm, else -1.
func (m *Module) HasCredentials(c *kemi.Ctx, realm string) int {
	for _, h := range []string{HdrProxyAuthorization, HdrAuthorization} {
		if rc, _, _ := findCredentials(c.Msg, h, realm); rc == 0 {
			return 1
		}
	}
	return -1
}

// PVAuthenticate is pv_www_authenticate (Authorization) /
// pv_proxy_authenticate (Proxy-Authorization): CheckResponse with the
// password given (flags bit 1: it is already H(A1)). With flags 2, 4 or
// 8 a failure also stores a challenge header in the challenge_attr AVP
// (4 with qop=auth, 8 with qop=auth-int, stale=true when the nonce was
// stale).
func (m *Module) PVAuthenticate(c *kemi.Ctx, hdrName, realm, passwd string, flags int) int {
	ret := m.CheckResponse(c, hdrName, realm, func(user, r, alg string) (string, bool, error) {
		if flags&1 != 0 {
			return passwd, true, nil
		}
		a, _ := ParseAlgorithm(alg)
		return HA1(a, user, r, passwd), true, nil
	})
	if ret < 0 && flags&14 != 0 && c.Msg.Req != nil {
		qop := ""
		if flags&8 != 0 {
			qop = "auth-int"
		} else if flags&4 != 0 {
			qop = "auth"
		}
		stale := false
		if st := state(c.Msg, false); st != nil {
			if mk := st.marks[sipmsg.CanonicalName(hdrName)]; mk != nil {
				stale = mk.stale
			}
		}
		www := sipmsg.CanonicalName(hdrName) == "authorization"
		hf := m.challengeHF(c.Msg, m.stripRealm(realm), stale, qop, www)
		c.Msg.PushAVP(m.chAVP, val.OfStr(hf))
	}
	return ret
}

// PVAuthCheck is pv_auth_check: PVAuthenticate on Authorization for
// REGISTER, Proxy-Authorization otherwise, then with checks bit 1 the
// identity check (CheckIdentity, use_domain of this module).
func (m *Module) PVAuthCheck(c *kemi.Ctx, realm, passwd string, flags, checks int) int {
	msg := c.Msg
	if msg.Req == nil {
		return AuthError
	}
	hdr := HdrProxyAuthorization
	if msg.Req.Method == sip.REGISTER {
		hdr = HdrAuthorization
	}
	ret := m.PVAuthenticate(c, hdr, realm, passwd, flags)
	if ret != AuthOK || checks&1 == 0 {
		return ret
	}
	cred, ok := AuthorizedCredentials(msg, hdr)
	if !ok {
		if skipsAuth(msg.Req.Method) {
			return AuthOK
		}
		return AuthError
	}
	return CheckIdentity(msg, cred.User, m.cfg.UseDomain != 0, false)
}

// CheckIdentity is the identity check of auth_check and pv_auth_check
// (checks bit 1): the auth user must equal the To user for REGISTER and
// PUBLISH, the From user otherwise; for REGISTER and PUBLISH the From
// user (and host, with useDomain) must also equal the To one, and for
// PUBLISH the R-URI one. skipFwd (auth_check flag 2) skips the auth user
// comparison for INVITE, BYE, PRACK, UPDATE and MESSAGE. It returns 1,
// -8 on a mismatch, -1 when a URI is missing.
func CheckIdentity(msg *sipmsg.Msg, authUser string, useDomain, skipFwd bool) int {
	if msg.Req == nil {
		return AuthError
	}
	from := msg.Req.From()
	if from == nil {
		return AuthError
	}
	method := msg.Req.Method
	regPub := method == sip.REGISTER || method == sip.PUBLISH
	furi := &from.Address
	uri := furi
	var turi *sip.Uri
	if regPub {
		to := msg.Req.To()
		if to == nil {
			return AuthError
		}
		turi = &to.Address
		uri = turi
	}
	fwd := method == sip.INVITE || method == sip.BYE || method == sip.PRACK || method == sip.UPDATE || method == sip.MESSAGE
	if !(skipFwd && fwd) && authUser != uri.User {
		return AuthUserMismatch
	}
	if regPub {
		if furi.User != turi.User || (useDomain && furi.Host != turi.Host) {
			return AuthUserMismatch
		}
		if method == sip.PUBLISH {
			ruri := msg.RURIParsed()
			if ruri == nil {
				return AuthError
			}
			if furi.User != ruri.User || (useDomain && furi.Host != ruri.Host) {
				return AuthUserMismatch
			}
		}
	}
	return AuthOK
}
