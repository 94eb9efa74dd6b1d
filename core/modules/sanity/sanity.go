// Package sanity is Kamailio's sanity module: structural checks of a SIP
// message, each answered with its own error reply (sanity.c, 5.6.3).
package sanity

import (
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/siputils"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// Module is the sanity module.
type Module struct {
	cfg          Config
	proxyRequire []string // extensions accepted in Proxy-Require

	mu   sync.Mutex
	info map[*kemi.WorkerState]replyInfo // noreply mode: the reply to send, per worker
}

// replyInfo is the reply a failed check recorded in noreply mode
// (Kamailio's ksr_sanity_info_t, kept per process there, per worker here).
type replyInfo struct {
	code   int
	reason string
	msgID  uint64
}

// New returns the module.
func New(cfg Config) *Module {
	return &Module{
		cfg:          cfg,
		proxyRequire: parseStrList(cfg.ProxyRequire),
		info:         map[*kemi.WorkerState]replyInfo{},
	}
}

// Result of one check.
const (
	passed = 1
	failed = 0
)

// checker runs the checks of one sanity_check call.
type checker struct {
	mod *Module
	c   *kemi.Ctx
	m   *sipmsg.Msg
}

// Check is sanity_check(msgChecks, uriChecks): it runs the selected checks
// in Kamailio's order and stops at the first failure. It returns 1 when
// all pass and -1 otherwise; for a failed request other than ACK the
// check's error reply has been sent (or recorded, with noreply=1) unless
// the message is marked no-reply.
func (mod *Module) Check(c *kemi.Ctx, msgChecks, uriChecks int) int {
	if mod.cfg.NoReply != 0 {
		mod.mu.Lock()
		delete(mod.info, c.Worker)
		mod.mu.Unlock()
	}
	k := &checker{mod: mod, c: c, m: c.Msg}
	steps := []struct {
		bit int
		fn  func() int
	}{
		{CheckRURISIPVersion, k.ruriSIPVersion},
		{CheckRURIScheme, k.ruriScheme},
		{CheckRequiredHdrs, k.requiredHeaders},
		{CheckVia1Header, k.via1Header},
		{CheckViaSIPVersion, func() int { return passed }}, // a no-op in 5.6.3
		{CheckViaProtocol, func() int { return passed }},   // a no-op in 5.6.3
		{CheckCSeqMethod, k.cseqMethod},
		{CheckCSeqValue, k.cseqValue},
		{CheckContentLength, k.contentLength},
		{CheckExpires, k.expires},
		{CheckProxyRequire, k.proxyRequire},
		{CheckParseURIs, func() int { return k.parseURIs(uriChecks) }},
		{CheckDigest, k.digest},
		{CheckAuthorization, k.authorization},
		{CheckDupTags, k.dupTags},
	}
	for _, s := range steps {
		if msgChecks&s.bit != 0 && s.fn() != passed {
			return -1
		}
	}
	return 1
}

// CheckDefaults is sanity_check_defaults(): the default_checks and
// uri_checks modparams.
func (mod *Module) CheckDefaults(c *kemi.Ctx) int {
	return mod.Check(c, mod.cfg.DefaultChecks, mod.cfg.URIChecks)
}

// Reply is sanity_reply(): in noreply mode it sends the reply the last
// failed check recorded for this message (500 "Server Sanity Failure" when
// there is none). It does nothing (1) for replies, ACKs, outside noreply
// mode and for messages marked no-reply; -1 when sending fails.
func (mod *Module) Reply(c *kemi.Ctx) int {
	m := c.Msg
	if !m.IsRequest() || m.Method() == string(sip.ACK) || mod.cfg.NoReply == 0 || m.NoReply {
		return 1
	}
	mod.mu.Lock()
	ri, ok := mod.info[c.Worker]
	mod.mu.Unlock()
	code, reason := 500, "Server Sanity Failure"
	if ok && ri.code != 0 && ri.reason != "" && ri.msgID == m.ID {
		code, reason = ri.code, ri.reason
	}
	if err := m.Reply(code, reason); err != nil {
		c.Log.Error().Err(err).Int("code", code).Msg("sanity: cannot send reply")
		return -1
	}
	return 1
}

// reply is Kamailio's sanity_reply(): nothing for replies and ACKs; in
// noreply mode the reply is recorded, otherwise sent unless the message
// is marked no-reply.
func (k *checker) reply(code int, reason string) {
	m := k.m
	if !m.IsRequest() || m.Method() == string(sip.ACK) {
		return
	}
	if k.mod.cfg.NoReply != 0 {
		k.mod.mu.Lock()
		k.mod.info[k.c.Worker] = replyInfo{code: code, reason: reason, msgID: m.ID}
		k.mod.mu.Unlock()
		return
	}
	if m.NoReply {
		return
	}
	if err := m.Reply(code, reason); err != nil {
		k.c.Log.Warn().Err(err).Int("code", code).Msg("sanity: failed to send reply")
	}
}

// ruriSIPVersion (1): the request-line version must be "<x>/2.0". For a
// reply Kamailio reads the reason phrase here (a union in msg_start), so
// replies fail unless the phrase is empty or ends in "/2.0".
func (k *checker) ruriSIPVersion() int {
	var ver string
	if k.m.IsRequest() {
		ver = k.m.Req.SipVersion
	} else {
		ver = k.m.Res.Reason
	}
	if ver == "" {
		return passed
	}
	i := strings.IndexByte(ver, '/')
	if i < 0 {
		return failed
	}
	if ver[i+1:] != "2.0" {
		k.reply(505, "Version Not Supported (R-URI)")
		return failed
	}
	return passed
}

// ruriScheme (2): the current R-URI must parse with a supported scheme
// (sip, sips, tel, urn). Replies have no R-URI and fail.
func (k *checker) ruriScheme() int {
	if !k.m.IsRequest() {
		return failed
	}
	if _, err := siputils.ParseURI(k.m.RURI()); err != nil {
		k.reply(400, "Bad Request URI")
		return failed
	}
	return passed
}

// requiredHeaders (4): From, To, Call-ID and CSeq must be present (else
// the message is marked no-reply) and not duplicated (no reply either).
func (k *checker) requiredHeaders() int {
	count := map[string]int{}
	for _, h := range k.m.AllHeaders() {
		switch n := sipmsg.CanonicalName(h.Name()); n {
		case "from", "to", "call-id", "cseq":
			count[n]++
		}
	}
	if count["from"] == 0 || count["to"] == 0 || count["call-id"] == 0 || count["cseq"] == 0 {
		k.m.NoReply = true
		return failed
	}
	for _, n := range count {
		if n > 1 {
			return failed
		}
	}
	return passed
}

// via1Header (16384): the top Via must exist and have a host; else the
// message is marked no-reply (there is nowhere to send a reply).
func (k *checker) via1Header() int {
	h := k.m.Header("via")
	host := ""
	switch v := h.(type) {
	case nil:
	case *sip.ViaHeader:
		host = v.Host
	default:
		// "SIP/2.0/UDP host[:port][;params]"
		f := strings.Fields(h.Value())
		if len(f) > 1 {
			host = strings.TrimSpace(strings.SplitN(strings.Join(f[1:], " "), ";", 2)[0])
		}
	}
	if host == "" {
		k.m.NoReply = true
		return failed
	}
	return passed
}

// cseq returns the first CSeq header's number and method text.
func (k *checker) cseq() (num, method string, ok bool) {
	h := k.m.Header("cseq")
	switch v := h.(type) {
	case nil:
		return "", "", false
	case *sip.CSeqHeader:
		return strconv.FormatUint(uint64(v.SeqNo), 10), string(v.MethodName), true
	default:
		f := strings.Fields(h.Value())
		switch len(f) {
		case 0:
			return "", "", true
		case 1:
			return f[0], "", true
		}
		return f[0], f[1], true
	}
}

// cseqMethod (32): the CSeq method must equal the request method. sipgo
// upper-cases the request-line method, so the comparison ignores case.
// Replies fail (Kamailio compares with the status-line version).
func (k *checker) cseqMethod() int {
	_, method, ok := k.cseq()
	if !ok {
		return failed
	}
	if method == "" {
		k.reply(400, "Missing method in CSeq header")
		return failed
	}
	want := "SIP/2.0"
	if k.m.IsRequest() {
		want = string(k.m.Req.Method)
	}
	if !strings.EqualFold(method, want) {
		k.reply(400, "CSeq method does not match request method")
		return failed
	}
	return passed
}

// cseqValue (64): the CSeq number must be a valid unsigned int.
func (k *checker) cseqValue() int {
	num, _, ok := k.cseq()
	if !ok {
		k.m.NoReply = true
		return failed
	}
	if num == "" {
		k.reply(400, "Missing number in CSeq header")
		return failed
	}
	if !validUint(num) {
		k.reply(400, "CSeq number is illegal")
		return failed
	}
	return passed
}

// contentLength (128): the first Content-Length must equal the body length.
func (k *checker) contentLength() int {
	h := k.m.Header("content-length")
	if h == nil {
		return passed
	}
	var cl uint64
	if v, ok := h.(*sip.ContentLengthHeader); ok {
		cl = uint64(*v)
	} else {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			k.reply(400, "Content-Length Failure")
			return failed
		}
		cl = n
	}
	if cl != uint64(len(k.m.SIP().Body())) {
		k.reply(400, "Content-Length mis-match")
		return failed
	}
	return passed
}

// expires (256): the first Expires must hold an unsigned int.
func (k *checker) expires() int {
	h := k.m.Header("expires")
	if h == nil {
		return passed
	}
	t := strings.Trim(h.Value(), " \t\r\n")
	if t == "" {
		k.reply(400, "Bad Expires Header")
		return failed
	}
	if !validUint(expiresText(t)) {
		k.reply(400, "Expires value is illegal")
		return failed
	}
	return passed
}

// expiresText is the part of a trimmed Expires body that parse_expires
// keeps: the digits before a white space, else the whole body.
func expiresText(t string) string {
	if len(t) > 10 {
		return t
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9':
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return t[:i]
		default:
			return t
		}
	}
	return t
}

// proxyRequire (512): every extension of the first Proxy-Require must be
// in the proxy_require modparam (case-sensitive). A missing one gets an
// "Unsupported:" header and 420.
func (k *checker) proxyRequire() int {
	h := k.m.Header("proxy-require")
	if h == nil {
		return passed
	}
	exts := parseStrList(h.Value())
	if exts == nil {
		k.reply(400, "Bad Proxy Require Header")
		return failed
	}
	for _, e := range exts {
		supported := false
		for _, l := range k.mod.proxyRequire {
			if l == e {
				supported = true
				break
			}
		}
		if !supported {
			if k.m.IsRequest() {
				k.m.ReplyHdrs = append(k.m.ReplyHdrs, "Unsupported: "+e+"\r\n")
			}
			k.reply(420, "Bad Proxy Require Extension")
			return failed
		}
	}
	return passed
}

// headerURI returns the URI of a From/To/Contact header as text.
func headerURI(h sip.Header) string {
	switch v := h.(type) {
	case *sip.FromHeader:
		return v.Address.String()
	case *sip.ToHeader:
		return v.Address.String()
	case *sip.ContactHeader:
		return v.Address.String()
	}
	return siputils.NameAddrURI(h.Value())
}

// parseURIs (1024): the URIs selected by uriChecks must parse.
func (k *checker) parseURIs(uriChecks int) int {
	if uriChecks&URICheckRURI != 0 {
		if !k.m.IsRequest() {
			return failed
		}
		if _, err := siputils.ParseURI(k.m.RURI()); err != nil {
			k.reply(400, "Bad Request URI")
			return failed
		}
	}
	if uriChecks&URICheckFrom != 0 {
		h := k.m.Header("from")
		if h == nil {
			k.m.NoReply = true
			return failed
		}
		if _, err := siputils.ParseURI(headerURI(h)); err != nil {
			k.reply(400, "Invalid From Header")
			return failed
		}
	}
	if uriChecks&URICheckTo != 0 {
		h := k.m.Header("to")
		if h == nil {
			k.m.NoReply = true
			return failed
		}
		if _, err := siputils.ParseURI(headerURI(h)); err != nil {
			k.reply(400, "Ivalid To Header") // sic, as Kamailio 5.6.3 sends it
			return failed
		}
	}
	if uriChecks&URICheckContact != 0 {
		if h := k.m.Header("contact"); h != nil {
			star := false
			if v, ok := h.(*sip.ContactHeader); ok {
				star = v.Address.Wildcard
			} else {
				star = strings.TrimSpace(h.Value()) == "*"
			}
			if !star {
				if _, err := siputils.ParseURI(headerURI(h)); err != nil {
					k.reply(400, "Bad Contact URI")
					return failed
				}
			}
		}
	}
	return passed
}

// digestResult is check_digest_only's outcome.
type digestResult int

const (
	digestPassed digestResult = iota
	digestFailed
	digestNotApplicable
)

// checkDigestOnly checks every Authorization, then every
// Proxy-Authorization header: non-Digest credentials make the check not
// applicable; broken ones get a 400.
func (k *checker) checkDigestOnly() digestResult {
	hs := append(k.m.Headers("authorization"), k.m.Headers("proxy-authorization")...)
	for _, h := range hs {
		cred, res := parseDigestCred(h.Value())
		switch res {
		case credNotDigest:
			return digestNotApplicable
		case credError:
			k.reply(400, "Bad Auth Header")
			return digestFailed
		}
		if !cred.complete() {
			k.reply(400, "Bad Auth Credentials")
			return digestFailed
		}
		if cred.username.v == "" {
			k.reply(400, "Auth Empty User")
			return digestFailed
		}
		if cred.nonce.v == "" {
			k.reply(400, "Auth Empty Nonce")
			return digestFailed
		}
		if cred.response.v == "" {
			k.reply(400, "Auth Empty Response")
			return digestFailed
		}
	}
	return digestPassed
}

// digest (2048): credentials must be well-formed Digest credentials;
// other schemes fail (without a reply).
func (k *checker) digest() int {
	if k.checkDigestOnly() == digestPassed {
		return passed
	}
	return failed
}

// authorization (8192): as digest, but non-Digest credentials pass.
func (k *checker) authorization() int {
	if k.checkDigestOnly() == digestFailed {
		return failed
	}
	return passed
}

// dupTags (4096): From and To must not carry more than one tag. sipgo
// keeps one value per exactly-spelled parameter name, so only tags that
// differ in case ("tag" and "TAG") can still be seen twice.
func (k *checker) dupTags() int {
	from, to := k.m.Header("from"), k.m.Header("to")
	if from == nil || to == nil {
		k.m.NoReply = true
		return failed
	}
	if countTags(from) > 1 {
		k.reply(400, "Many From Tag Params")
		return failed
	}
	if countTags(to) > 1 {
		k.reply(400, "Many To Tag Params")
		return failed
	}
	return passed
}

func countTags(h sip.Header) int {
	var params sip.HeaderParams
	switch v := h.(type) {
	case *sip.FromHeader:
		params = v.Params
	case *sip.ToHeader:
		params = v.Params
	default:
		val := h.Value()
		if i := strings.LastIndexByte(val, '>'); i >= 0 {
			val = val[i+1:]
		} else if i := strings.IndexByte(val, ';'); i >= 0 {
			val = val[i:]
		} else {
			return 0
		}
		ps, _ := siputils.ParseParams(val)
		n := 0
		for _, p := range ps {
			if strings.EqualFold(p.Name, "tag") {
				n++
			}
		}
		return n
	}
	n := 0
	for _, kv := range params {
		if strings.EqualFold(kv.K, "tag") {
			n++
		}
	}
	return n
}

// validUint is Kamailio's str2valid_uint: at most ten digits, not above
// 4294967296 (sic: the bound itself passes, as in Kamailio).
func validUint(s string) bool {
	const mui = "4294967296"
	if len(s) > 10 {
		return false
	}
	equal := len(s) == 10
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		if equal {
			if c < mui[i] {
				equal = false
			} else if c > mui[i] {
				return false
			}
		}
	}
	return true
}

// parseStrList splits a comma separated list, trimming every element;
// nil for an empty (or blank) string.
func parseStrList(s string) []string {
	s = strings.Trim(s, " \t\r\n")
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.Trim(parts[i], " \t\r\n")
	}
	return parts
}
