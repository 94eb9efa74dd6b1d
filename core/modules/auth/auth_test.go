package auth

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// fakeReplier records the replies "sent".
type fakeReplier struct{ sent []*sip.Response }

func (f *fakeReplier) SendReply(m *sipmsg.Msg, res *sip.Response) error {
	f.sent = append(f.sent, res)
	return nil
}

type reqOpts struct {
	method string
	ruri   string
	from   string // user@host
	to     string
	toTag  string
	callID string
	body   string
	hdrs   []string // extra "Name: value"
}

func newReq(t *testing.T, o reqOpts) (*kemi.Ctx, *fakeReplier) {
	t.Helper()
	if o.method == "" {
		o.method = "INVITE"
	}
	if o.ruri == "" {
		o.ruri = "sip:bob@example.com"
	}
	if o.from == "" {
		o.from = "alice@example.com"
	}
	if o.to == "" {
		o.to = "bob@example.com"
	}
	if o.callID == "" {
		o.callID = "call-1@pc33"
	}
	to := "<sip:" + o.to + ">"
	if o.toTag != "" {
		to += ";tag=" + o.toTag
	}
	var b strings.Builder
	b.WriteString(o.method + " " + o.ruri + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: <sip:" + o.from + ">;tag=1928301774\r\n")
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Call-ID: " + o.callID + "\r\n")
	b.WriteString("CSeq: 2 " + o.method + "\r\n")
	for _, h := range o.hdrs {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(o.body), o.body)
	m, err := sipmsg.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeReplier{}
	m.Replier = r
	m.Proto, m.SrcIP, m.SrcPort = "udp", "192.0.2.10", 5060
	return &kemi.Ctx{Msg: m, Route: kemi.RouteRequest}, r
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newModule(t *testing.T, mod func(*Config)) (*Module, *clock) {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m, err := New(cfg, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	return m, clk
}

var nonceRE = regexp.MustCompile(`nonce="([^"]+)"`)

// challenge runs auth_challenge on a fresh request and returns the nonce.
func challenge(t *testing.T, m *Module, o reqOpts, flags int) string {
	t.Helper()
	c, r := newReq(t, o)
	if rc := m.AuthChallenge(c, "example.com", flags); rc != 1 {
		t.Fatalf("auth_challenge = %d", rc)
	}
	if len(r.sent) != 1 {
		t.Fatalf("%d replies", len(r.sent))
	}
	hdr := "Proxy-Authenticate"
	if o.method == "REGISTER" {
		hdr = "WWW-Authenticate"
	}
	h := r.sent[0].GetHeader(hdr)
	if h == nil {
		t.Fatalf("no %s in %s", hdr, r.sent[0])
	}
	sm := nonceRE.FindStringSubmatch(h.Value())
	if sm == nil {
		t.Fatalf("no nonce in %q", h.Value())
	}
	return sm[1]
}

// client builds Digest credentials as a UA does.
type client struct {
	alg      Algorithm
	algParam string // "" = omit
	user     string
	realm    string
	pw       string
	ha1      string // overrides user/realm/pw
	qop      string
	nc       string
	cnonce   string
	uri      string
	method   string
	body     string
	response string // overrides the computed response
	upper    bool   // send the response in upper-case hex
}

func (cl client) header(name, nonce string) string {
	alg := cl.alg
	if alg.Name == "" {
		alg = MD5
	}
	ha1 := cl.ha1
	if ha1 == "" {
		ha1 = HA1(alg, cl.user, cl.realm, cl.pw)
	}
	if alg.Sess {
		ha1 = alg.H(ha1 + ":" + nonce + ":" + cl.cnonce)
	}
	resp := cl.response
	if resp == "" {
		resp = Response(alg, ha1, nonce, cl.nc, cl.cnonce, cl.qop, cl.method, cl.uri, cl.qop == "auth-int", []byte(cl.body))
	}
	if cl.upper {
		resp = strings.ToUpper(resp)
	}
	s := fmt.Sprintf(`%s: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`,
		name, cl.user, cl.realm, nonce, cl.uri, resp)
	if cl.algParam != "" {
		s += ", algorithm=" + cl.algParam
	}
	if cl.qop != "" {
		s += fmt.Sprintf(`, qop=%s, nc=%s`, cl.qop, cl.nc)
		if cl.cnonce != "" {
			s += fmt.Sprintf(`, cnonce="%s"`, cl.cnonce)
		}
	}
	return s
}

func users(pw map[string]string) HA1Func {
	return func(user, realm, alg string) (string, bool, error) {
		p, ok := pw[user]
		if !ok {
			return "", false, nil
		}
		a, _ := ParseAlgorithm(alg)
		return HA1(a, user, realm, p), true, nil
	}
}

var alice = users(map[string]string{"alice": "secret"})

func TestChallengeFormat(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*Config)
		method string
		realm  string
		flags  int
		code   int
		want   []string // regexps, one per header line
	}{
		{name: "INVITE no qop", method: "INVITE", realm: "example.com", code: 407,
			want: []string{`^Proxy-Authenticate: Digest realm="example.com", nonce="[A-Za-z0-9_-]+"$`}},
		{name: "REGISTER", method: "REGISTER", realm: "example.com", code: 401,
			want: []string{`^WWW-Authenticate: Digest realm="example.com", nonce="[A-Za-z0-9_-]+"$`}},
		{name: "qop auth", method: "INVITE", realm: "example.com", flags: 1, code: 407,
			want: []string{`^Proxy-Authenticate: Digest realm="example.com", nonce="[^"]+", qop="auth"$`}},
		{name: "qop auth-int", method: "INVITE", realm: "example.com", flags: 2, code: 407,
			want: []string{`^Proxy-Authenticate: Digest realm="example.com", nonce="[^"]+", qop="auth-int"$`}},
		{name: "stale", method: "REGISTER", realm: "example.com", flags: 17, code: 401,
			want: []string{`^WWW-Authenticate: Digest realm="example.com", nonce="[^"]+", qop="auth", stale=true$`}},
		{name: "SHA-256", cfg: func(c *Config) { c.Algorithm = "SHA-256" }, method: "INVITE", realm: "example.com", flags: 1, code: 407,
			want: []string{`^Proxy-Authenticate: Digest realm="example.com", nonce="[^"]+", qop="auth", algorithm=SHA-256$`}},
		{name: "SHA-256 and MD5", cfg: func(c *Config) { c.Algorithm = "SHA-256, MD5" }, method: "REGISTER", realm: "example.com", code: 401,
			want: []string{`^WWW-Authenticate: Digest realm="example.com", nonce="[^"]+", algorithm=SHA-256$`,
				`^WWW-Authenticate: Digest realm="example.com", nonce="[^"]+", algorithm=MD5$`}},
		{name: "realm from PV", method: "INVITE", realm: "$fd", code: 407,
			want: []string{`^Proxy-Authenticate: Digest realm="example.com", nonce="[^"]+"$`}},
		{name: "realm prefix", cfg: func(c *Config) { c.RealmPrefix = "sip." }, method: "INVITE", realm: "sip.example.org", code: 407,
			want: []string{`^Proxy-Authenticate: Digest realm="example.org", nonce="[^"]+"$`}},
		{name: "header names", cfg: func(c *Config) { c.ProxyChallengeHeader = "X-Challenge" }, method: "INVITE", realm: "r", code: 407,
			want: []string{`^X-Challenge: Digest realm="r", nonce="[^"]+"$`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newModule(t, tt.cfg)
			c, r := newReq(t, reqOpts{method: tt.method})
			if got := call(t, m, c, "auth_challenge", tt.realm, tt.flags); got != 1 {
				t.Fatalf("auth_challenge = %d", got)
			}
			if len(r.sent) != 1 {
				t.Fatalf("%d replies", len(r.sent))
			}
			res := r.sent[0]
			wantReason := map[int]string{401: "Unauthorized", 407: "Proxy Authentication Required"}[tt.code]
			if res.StatusCode != tt.code || res.Reason != wantReason {
				t.Errorf("reply %d %q", res.StatusCode, res.Reason)
			}
			lines := strings.Split(strings.TrimSuffix(c.Msg.ReplyHdrs[0], "\r\n"), "\r\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("challenge %q, want %d lines", c.Msg.ReplyHdrs[0], len(tt.want))
			}
			for i, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("line %d %q does not match %s", i, lines[i], re)
				}
				name, value, _ := strings.Cut(lines[i], ": ")
				if hs := res.GetHeaders(name); len(hs) != len(tt.want) || hs[i].Value() != value {
					t.Errorf("reply headers %v", hs)
				}
			}
		})
	}
}

func TestChallengeReplyPaths(t *testing.T) {
	m, _ := newModule(t, nil)
	// ACK: never answered.
	c, r := newReq(t, reqOpts{method: "ACK"})
	if got := m.AuthChallenge(c, "example.com", 0); got != -3 || len(r.sent) != 0 {
		t.Errorf("ACK: %d, %d sent", got, len(r.sent))
	}
	// Faked / no-reply message.
	c, _ = newReq(t, reqOpts{})
	c.Msg.NoReply = true
	if got := m.AuthChallenge(c, "example.com", 0); got != -3 {
		t.Errorf("no-reply: %d", got)
	}
	// Hooks: stateful by default, stateless when forced.
	var used []string
	hook := func(name string, rc int) ReplyFunc {
		return func(c *kemi.Ctx, code int, reason string) int {
			used = append(used, fmt.Sprintf("%s %d", name, code))
			return rc
		}
	}
	m.SetReplier(hook("stateful", 1), hook("stateless", 1))
	c, r = newReq(t, reqOpts{method: "REGISTER"})
	if got := m.AuthChallenge(c, "example.com", 0); got != 1 || len(r.sent) != 0 {
		t.Errorf("hook: %d, %d sent directly", got, len(r.sent))
	}
	fm, _ := newModule(t, func(c *Config) { c.ForceStatelessReply = 1 })
	fm.SetReplier(hook("stateful", 1), hook("stateless", -1))
	c, _ = newReq(t, reqOpts{})
	if got := fm.AuthChallenge(c, "example.com", 0); got != -3 {
		t.Errorf("failed stateless hook: %d", got)
	}
	if strings.Join(used, ",") != "stateful 401,stateless 407" {
		t.Errorf("hooks used: %v", used)
	}
	// A reply message cannot be challenged.
	raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	rm, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.AuthChallenge(&kemi.Ctx{Msg: rm}, "x", 0); got != -1 {
		t.Errorf("reply: %d", got)
	}
}

func TestDigestExchange(t *testing.T) {
	const uri = "sip:bob@example.com"
	base := client{user: "alice", realm: "example.com", pw: "secret", uri: uri, method: "INVITE"}
	with := func(f func(*client)) client { c := base; f(&c); return c }
	tests := []struct {
		name   string
		cfg    func(*Config)
		method string
		flags  int
		cl     client
		hdr    string // credentials header name; default by method
		realm  string // checked realm
		body   string
		want   int
	}{
		{name: "MD5 no qop", cl: base, want: 1},
		{name: "MD5 explicit", cl: with(func(c *client) { c.algParam = "MD5" }), want: 1},
		{name: "MD5 qop auth", flags: 1, cl: with(func(c *client) { c.qop, c.nc, c.cnonce = "auth", "00000001", "0a4f113b" }), want: 1},
		{name: "MD5 REGISTER", method: "REGISTER", cl: with(func(c *client) { c.method = "REGISTER"; c.uri = "sip:example.com" }), want: 1},
		{name: "SHA-256", cfg: func(c *Config) { c.Algorithm = "SHA-256" }, flags: 1,
			cl: with(func(c *client) {
				c.alg, c.algParam, c.qop, c.nc, c.cnonce = SHA256, "SHA-256", "auth", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
			}), want: 1},
		{name: "SHA-256 default algorithm", cfg: func(c *Config) { c.Algorithm = "SHA-256" }, cl: with(func(c *client) { c.alg = SHA256 }), want: 1},
		{name: "SHA-256 offered second", cfg: func(c *Config) { c.Algorithm = "MD5,SHA-256" }, cl: with(func(c *client) { c.alg, c.algParam = SHA256, "SHA-256" }), want: 1},
		{name: "MD5-sess", cfg: func(c *Config) { c.Algorithm = "MD5-sess" }, flags: 1,
			cl: with(func(c *client) {
				c.alg, c.algParam, c.qop, c.nc, c.cnonce = MD5Sess, "MD5-sess", "auth", "00000001", "abc"
			}), want: 1},
		{name: "auth-int", flags: 2, body: "v=0\r\n",
			cl: with(func(c *client) { c.qop, c.nc, c.cnonce, c.body = "auth-int", "00000001", "xyz", "v=0\r\n" }), want: 1},
		{name: "auth-int wrong body", flags: 2, body: "v=1\r\n",
			cl: with(func(c *client) { c.qop, c.nc, c.cnonce, c.body = "auth-int", "00000001", "xyz", "v=0\r\n" }), want: -2},
		{name: "wrong password", cl: with(func(c *client) { c.pw = "guess" }), want: -2},
		{name: "wrong password SHA-256", cfg: func(c *Config) { c.Algorithm = "SHA-256" }, cl: with(func(c *client) { c.alg, c.pw = SHA256, "guess" }), want: -2},
		{name: "unknown user", cl: with(func(c *client) { c.user = "mallory" }), want: -3},
		{name: "other realm", cl: with(func(c *client) { c.realm = "other.org" }), want: -5},
		{name: "WWW credentials on INVITE", cl: base, hdr: "Authorization", want: -5},
		{name: "realm case-insensitive", cl: with(func(c *client) { c.realm = "EXAMPLE.com" }), realm: "example.com",
			// the client hashed with its own realm spelling; the check uses the configured one
			want: -2},
		{name: "MD5 answer to SHA-256 challenge", cfg: func(c *Config) { c.Algorithm = "SHA-256" }, cl: with(func(c *client) { c.algParam = "MD5" }), want: -1},
		{name: "unknown algorithm", cl: with(func(c *client) { c.algParam = "SHA-512-256" }), want: -1},
		{name: "bad response length", cl: with(func(c *client) { c.response = "abcd" }), want: -1},
		{name: "qop without cnonce", flags: 1, cl: with(func(c *client) { c.qop, c.nc = "auth", "00000001" }), want: -1},
		{name: "upper-case hex response accepted", cl: with(func(c *client) { c.upper = true }), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newModule(t, tt.cfg)
			method := tt.method
			if method == "" {
				method = "INVITE"
			}
			nonce := challenge(t, m, reqOpts{method: method}, tt.flags)
			hdr := tt.hdr
			if hdr == "" {
				hdr = HdrProxyAuthorization
				if method == "REGISTER" {
					hdr = HdrAuthorization
				}
			}
			c, _ := newReq(t, reqOpts{method: method, body: tt.body, hdrs: []string{tt.cl.header(hdr, nonce)}})
			realm := tt.realm
			if realm == "" {
				realm = "example.com"
			}
			checkHdr := HdrProxyAuthorization
			if method == "REGISTER" {
				checkHdr = HdrAuthorization
			}
			if got := m.CheckResponse(c, checkHdr, realm, alice); got != tt.want {
				t.Errorf("CheckResponse = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCheckResponseErrors(t *testing.T) {
	m, _ := newModule(t, nil)
	nonce := challenge(t, m, reqOpts{}, 0)
	cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE"}
	c, _ := newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
	failing := func(user, realm, alg string) (string, bool, error) { return "", false, errors.New("db down") }
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", failing); got != -1 {
		t.Errorf("store error: %d", got)
	}
	var gotUser, gotRealm, gotAlg string
	spy := func(user, realm, alg string) (string, bool, error) {
		gotUser, gotRealm, gotAlg = user, realm, alg
		return alice(user, realm, alg)
	}
	cl.user = "alice@example.com"
	c, _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
	m.CheckResponse(c, HdrProxyAuthorization, "example.com", spy)
	if gotUser != "alice@example.com" || gotRealm != "example.com" || gotAlg != "MD5" {
		t.Errorf("HA1Func got %q %q %q", gotUser, gotRealm, gotAlg)
	}
	// Malformed Digest header: error; non-Digest scheme: ignored.
	c, _ = newReq(t, reqOpts{hdrs: []string{`Proxy-Authorization: Digest username="alice", realm="example.com`}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != -1 {
		t.Errorf("malformed: %d", got)
	}
	c, _ = newReq(t, reqOpts{hdrs: []string{`Proxy-Authorization: Basic YWxpY2U6c2VjcmV0`}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != -5 {
		t.Errorf("Basic: %d", got)
	}
	// The right header among several.
	cl.user = "alice"
	c, _ = newReq(t, reqOpts{hdrs: []string{
		`Proxy-Authorization: Digest username="x", realm="upstream.net", nonce="n", uri="u", response="r"`,
		cl.header("Proxy-Authorization", nonce)}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != 1 {
		t.Errorf("second header: %d", got)
	}
}

func TestNeverAuthenticated(t *testing.T) {
	m, _ := newModule(t, nil)
	for _, method := range []string{"ACK", "CANCEL", "PRACK"} {
		c, _ := newReq(t, reqOpts{method: method})
		if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != 1 {
			t.Errorf("%s: CheckResponse = %d", method, got)
		}
		if got := call(t, m, c, "pv_auth_check", "example.com", "secret", 0, 1); got != 1 {
			t.Errorf("%s: pv_auth_check = %d", method, got)
		}
	}
}

func TestNonceLifetime(t *testing.T) {
	cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE"}
	tests := []struct {
		name    string
		advance time.Duration
		want    int
	}{
		{"fresh", 0, 1},
		{"just before expiry", 300 * time.Second, 1},
		{"expired", 301 * time.Second, -4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clk := newModule(t, nil)
			nonce := challenge(t, m, reqOpts{}, 0)
			clk.t = clk.t.Add(tt.advance)
			c, r := newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
			if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != tt.want {
				t.Fatalf("CheckResponse = %d, want %d", got, tt.want)
			}
			if tt.want != -4 {
				return
			}
			// The script answers a stale nonce with a stale challenge.
			m.AuthChallenge(c, "example.com", FlagStale|FlagQOPAuth)
			if v := r.sent[0].GetHeader("Proxy-Authenticate").Value(); !strings.HasSuffix(v, `qop="auth", stale=true`) {
				t.Errorf("stale challenge %q", v)
			}
			// pv_auth_check with flag 4 stores a stale challenge by itself.
			c, _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
			if got := m.PVAuthCheck(c, "example.com", "secret", 4, 0); got != -4 {
				t.Fatalf("pv_auth_check = %d", got)
			}
			if v := c.Msg.AVP("digest_challenge"); len(v) != 1 || !strings.Contains(v[0].S, `qop="auth", stale=true`) {
				t.Errorf("$avp(digest_challenge) = %v", v)
			}
		})
	}
}

func TestNonceFromTheFutureAndRestart(t *testing.T) {
	cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE"}
	// A nonce made 10 s ahead by another instance sharing the secret.
	cfg := func(c *Config) { c.Secret = "shared" }
	other, oclk := newModule(t, cfg)
	oclk.t = oclk.t.Add(10 * time.Second)
	nonce := challenge(t, other, reqOpts{}, 0)
	m, _ := newModule(t, cfg)
	c, _ := newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != -4 {
		t.Errorf("future nonce: %d", got)
	}
	// 2 s ahead is within nonce_auth_max_drift.
	oclk.t = oclk.t.Add(-8 * time.Second)
	nonce = challenge(t, other, reqOpts{}, 0)
	c, _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != 1 {
		t.Errorf("drift: %d", got)
	}
	// A nonce made before this instance started is stale.
	oclk.t = oclk.t.Add(-60 * time.Second)
	nonce = challenge(t, other, reqOpts{}, 0)
	c, _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != -4 {
		t.Errorf("pre-start nonce: %d", got)
	}
}

func TestForgedNonce(t *testing.T) {
	cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE"}
	m, _ := newModule(t, nil)
	good := challenge(t, m, reqOpts{}, 0)
	raw, err := nonceEnc.DecodeString(good)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(i int, delta byte) string {
		b := append([]byte(nil), raw...)
		b[i] += delta
		return nonceEnc.EncodeToString(b)
	}
	other, _ := newModule(t, nil) // its own random secret, same clock
	tests := []struct {
		name  string
		nonce string
		want  int
	}{
		{"genuine", good, 1},
		{"expiry extended", tamper(2, 1), -1},
		{"random part changed", tamper(15, 1), -1},
		{"mac changed", tamper(nonceFixed+3, 1), -1},
		{"other secret", challenge(t, other, reqOpts{}, 0), -1},
		{"too short", good[:20], -1},
		{"not base64", strings.Repeat("*", len(good)), -1},
		{"Kamailio-style MD5 nonce", base64.StdEncoding.EncodeToString(raw[:24]), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", tt.nonce)}})
			if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != tt.want {
				t.Errorf("CheckResponse = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	base := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE", qop: "auth", cnonce: "c1"}
	type step struct {
		nc   string // "" = no qop
		want int
	}
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{name: "nonce_count: nc must increase", steps: []step{
			{"00000001", 1}, {"00000001", -4}, {"00000002", 1}, {"00000002", -4}, {"00000001", -4}, {"0000000a", 1}, {"00000009", -4}}},
		{name: "nonce_count: bad nc", steps: []step{{"1", -1}, {"0000000g", -1}, {"00000000", -4}}},
		{name: "nonce_count: no qop is not counted", steps: []step{{"", 1}, {"", 1}}},
		{name: "nonce_count off (Kamailio default)", cfg: func(c *Config) { c.NonceCount = 0 }, steps: []step{
			{"00000001", 1}, {"00000001", 1}}},
		{name: "one_time_nonce", cfg: func(c *Config) { c.NonceCount, c.OneTimeNonce = 0, 1 }, steps: []step{
			{"", 1}, {"", -6}, {"00000002", -6}}},
		{name: "one_time_nonce with nonce_count: nc checks win", cfg: func(c *Config) { c.OneTimeNonce = 1 }, steps: []step{
			{"00000001", 1}, {"00000002", 1}, {"", 1}, {"", -6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newModule(t, tt.cfg)
			nonce := challenge(t, m, reqOpts{}, FlagQOPAuth)
			for i, s := range tt.steps {
				cl := base
				cl.nc = s.nc
				if s.nc == "" {
					cl.qop = ""
				}
				c, _ := newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
				if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != s.want {
					t.Errorf("step %d (nc %q): %d, want %d", i, s.nc, got, s.want)
				}
			}
		})
	}
}

func TestReplayConcurrent(t *testing.T) {
	m, _ := newModule(t, func(c *Config) { c.OneTimeNonce = 1 })
	for _, qop := range []string{"auth", ""} {
		nonce := challenge(t, m, reqOpts{}, FlagQOPAuth)
		cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE", qop: qop, cnonce: "c"}
		if qop != "" {
			cl.nc = "00000001"
		}
		const n = 16
		ctxs := make([]*kemi.Ctx, n)
		for i := range ctxs {
			ctxs[i], _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
		}
		results := make(chan int, n)
		var wg sync.WaitGroup
		for _, c := range ctxs {
			wg.Go(func() { results <- m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice) })
		}
		wg.Wait()
		close(results)
		ok := 0
		for r := range results {
			if r == 1 {
				ok++
			}
		}
		if ok != 1 {
			t.Errorf("qop %q: %d of %d concurrent replays accepted", qop, ok, n)
		}
	}
}

func TestReplayTablesAreBounded(t *testing.T) {
	cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE", qop: "auth", cnonce: "c", nc: "00000001"}
	m, _ := newModule(t, func(c *Config) { c.NCArraySize = 4; c.OneTimeNonce = 1; c.OTNInFlightNo = 4 })
	first := challenge(t, m, reqOpts{}, 1)
	second := challenge(t, m, reqOpts{}, 1)
	for range 3 {
		challenge(t, m, reqOpts{}, 1)
	}
	c, _ := newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", first)}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != -4 {
		t.Errorf("nonce pushed out of the nc table: %d", got)
	}
	cl.qop, cl.nc = "", ""
	c, _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", first)}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != -6 {
		t.Errorf("nonce pushed out of the one-time table: %d", got)
	}
	c, _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", second)}})
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != 1 {
		t.Errorf("newest nonces still tracked: %d", got)
	}
	if len(m.nc.slots) != 4 || len(m.otn.bits) != 1 {
		t.Errorf("table sizes %d %d", len(m.nc.slots), len(m.otn.bits))
	}
}

func TestAuthChecks(t *testing.T) {
	cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE"}
	tests := []struct {
		name  string
		cfg   func(*Config)
		check reqOpts
		src   string
		want  int
	}{
		{name: "same call", cfg: func(c *Config) { c.AuthChecksNoDlg = 15 }, want: 1},
		{name: "other Call-ID", cfg: func(c *Config) { c.AuthChecksNoDlg = checkCallID }, check: reqOpts{callID: "other"}, want: -4},
		{name: "other R-URI", cfg: func(c *Config) { c.AuthChecksNoDlg = checkFullURI }, check: reqOpts{ruri: "sip:carol@example.com"}, want: -4},
		{name: "other source", cfg: func(c *Config) { c.AuthChecksNoDlg = checkSrcIP }, src: "192.0.2.99", want: -4},
		{name: "Call-ID ignored without the bit", cfg: func(c *Config) { c.AuthChecksNoDlg = checkFullURI }, check: reqOpts{callID: "other"}, want: 1},
		{name: "in-dialog checked with auth_checks_in_dlg (0)", cfg: func(c *Config) { c.AuthChecksNoDlg = checkCallID },
			check: reqOpts{toTag: "x", callID: "other"}, want: 1},
		{name: "in-dialog with its own checks", cfg: func(c *Config) { c.AuthChecksNoDlg, c.AuthChecksInDlg = checkCallID, checkCallID },
			check: reqOpts{toTag: "x", callID: "other"}, want: -4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newModule(t, tt.cfg)
			nonce := challenge(t, m, reqOpts{}, 0)
			o := tt.check
			o.hdrs = []string{cl.header("Proxy-Authorization", nonce)}
			c, _ := newReq(t, o)
			if tt.src != "" {
				c.Msg.SrcIP = tt.src
			}
			if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != tt.want {
				t.Errorf("CheckResponse = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCheckIdentity(t *testing.T) {
	tests := []struct {
		name      string
		o         reqOpts
		user      string
		useDomain bool
		skipFwd   bool
		want      int
	}{
		{name: "INVITE from user", o: reqOpts{}, user: "alice", want: 1},
		{name: "INVITE other user", o: reqOpts{}, user: "mallory", want: -8},
		{name: "INVITE skip forwarded", o: reqOpts{}, user: "mallory", skipFwd: true, want: 1},
		{name: "OPTIONS not skipped", o: reqOpts{method: "OPTIONS"}, user: "mallory", skipFwd: true, want: -8},
		{name: "REGISTER to user", o: reqOpts{method: "REGISTER", from: "alice@example.com", to: "alice@example.com"}, user: "alice", want: 1},
		{name: "REGISTER third party", o: reqOpts{method: "REGISTER", from: "alice@example.com", to: "bob@example.com"}, user: "bob", want: -8},
		{name: "REGISTER other domain", o: reqOpts{method: "REGISTER", from: "alice@example.com", to: "alice@example.org"}, user: "alice", want: 1},
		{name: "REGISTER other domain use_domain", o: reqOpts{method: "REGISTER", from: "alice@example.com", to: "alice@example.org"}, user: "alice", useDomain: true, want: -8},
		{name: "REGISTER not skipped", o: reqOpts{method: "REGISTER", from: "alice@example.com", to: "alice@example.com"}, user: "bob", skipFwd: true, want: -8},
		{name: "PUBLISH R-URI", o: reqOpts{method: "PUBLISH", ruri: "sip:alice@example.com", from: "alice@example.com", to: "alice@example.com"}, user: "alice", want: 1},
		{name: "PUBLISH other R-URI", o: reqOpts{method: "PUBLISH", ruri: "sip:bob@example.com", from: "alice@example.com", to: "alice@example.com"}, user: "alice", want: -8},
		{name: "PUBLISH R-URI domain", o: reqOpts{method: "PUBLISH", ruri: "sip:alice@example.org", from: "alice@example.com", to: "alice@example.com"}, user: "alice", useDomain: true, want: -8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newReq(t, tt.o)
			if got := CheckIdentity(c.Msg, tt.user, tt.useDomain, tt.skipFwd); got != tt.want {
				t.Errorf("CheckIdentity = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPVAuthCheck(t *testing.T) {
	ha1 := HA1(MD5, "alice", "example.com", "secret")
	base := client{user: "alice", realm: "example.com", pw: "secret", method: "INVITE", uri: "sip:bob@example.com"}
	tests := []struct {
		name    string
		o       reqOpts
		cl      client
		passwd  string
		flags   int
		checks  int
		want    int
		wantAVP string // regexp; "" = no AVP
	}{
		{name: "password", cl: base, passwd: "secret", want: 1},
		{name: "HA1", cl: base, passwd: ha1, flags: 1, want: 1},
		{name: "wrong password", cl: base, passwd: "x", want: -2},
		{name: "wrong password with challenge", cl: base, passwd: "x", flags: 4, want: -2,
			wantAVP: `^Proxy-Authenticate: Digest realm="example.com", nonce="[^"]+", qop="auth"\r\n$`},
		{name: "REGISTER challenge auth-int", o: reqOpts{method: "REGISTER", from: "alice@example.com", to: "alice@example.com"},
			cl: func() client { c := base; c.method = "REGISTER"; return c }(), passwd: "x", flags: 8, want: -2,
			wantAVP: `^WWW-Authenticate: Digest realm="example.com", nonce="[^"]+", qop="auth-int"\r\n$`},
		{name: "no credentials, challenge without qop", passwd: "secret", flags: 2, want: -5,
			wantAVP: `^Proxy-Authenticate: Digest realm="example.com", nonce="[^"]+"\r\n$`},
		{name: "identity ok", cl: base, passwd: "secret", checks: 1, want: 1},
		{name: "identity mismatch", o: reqOpts{from: "carol@example.com"}, cl: base, passwd: "secret", checks: 1, want: -8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newModule(t, nil)
			o := tt.o
			if o.method == "" {
				o.method = "INVITE"
			}
			nonce := challenge(t, m, reqOpts{method: o.method}, 0)
			if tt.cl.user != "" {
				name := "Proxy-Authorization"
				if o.method == "REGISTER" {
					name = "Authorization"
				}
				o.hdrs = []string{tt.cl.header(name, nonce)}
			}
			c, _ := newReq(t, o)
			if got := call(t, m, c, "pv_auth_check", "example.com", tt.passwd, tt.flags, tt.checks); got != int64(tt.want) {
				t.Fatalf("pv_auth_check = %d, want %d", got, tt.want)
			}
			avp := c.Msg.AVP("digest_challenge")
			if tt.wantAVP == "" {
				if len(avp) != 0 {
					t.Errorf("unexpected AVP %v", avp)
				}
				return
			}
			if len(avp) != 1 || !regexp.MustCompile(tt.wantAVP).MatchString(avp[0].S) {
				t.Errorf("AVP %q, want %s", avp, tt.wantAVP)
			}
		})
	}
}

func TestConsumeAndHasCredentials(t *testing.T) {
	m, _ := newModule(t, nil)
	nonce := challenge(t, m, reqOpts{}, 0)
	cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:bob@example.com", method: "INVITE"}
	upstream := `Proxy-Authorization: Digest username="x", realm="upstream.net", nonce="n", uri="u", response="r"`
	c, _ := newReq(t, reqOpts{hdrs: []string{upstream, cl.header("Proxy-Authorization", nonce), "Authorization: Basic Zm9v"}})

	for realm, want := range map[string]int{"example.com": 1, "Upstream.NET": 1, "other": -1, "$fd": 1} {
		if got := call(t, m, c, "has_credentials", realm); got != int64(want) {
			t.Errorf("has_credentials(%s) = %d", realm, got)
		}
	}
	if got := call(t, m, c, "consume_credentials"); got != -1 {
		t.Errorf("consume before check = %d", got)
	}
	if got := m.CheckResponse(c, HdrProxyAuthorization, "example.com", alice); got != 1 {
		t.Fatalf("CheckResponse = %d", got)
	}
	if got := call(t, m, c, "consume_credentials"); got != 1 {
		t.Errorf("consume = %d", got)
	}
	if got := call(t, m, c, "consume_credentials"); got != 1 {
		t.Errorf("consume again = %d", got)
	}
	// Reads still see the header; the forwarded copy does not.
	if n := len(c.Msg.Headers("Proxy-Authorization")); n != 2 {
		t.Errorf("received message changed: %d headers", n)
	}
	out := c.Msg.Req.Clone()
	c.Msg.ApplyEdits(out)
	var got []string
	for _, h := range out.Headers() {
		if strings.Contains(strings.ToLower(h.Name()), "authorization") {
			got = append(got, h.Name()+": "+h.Value())
		}
	}
	if len(got) != 2 || got[0] != upstream || got[1] != "Authorization: Basic Zm9v" {
		t.Errorf("forwarded credentials %q", got)
	}
	for _, method := range []string{"ACK", "CANCEL", "PRACK"} {
		c, _ := newReq(t, reqOpts{method: method})
		if got := call(t, m, c, "consume_credentials"); got != -1 {
			t.Errorf("%s: consume = %d", method, got)
		}
	}
	// A failed check still marks the header (Kamailio marks before checking).
	c, _ = newReq(t, reqOpts{hdrs: []string{cl.header("Proxy-Authorization", nonce)}})
	m.CheckResponse(c, HdrProxyAuthorization, "example.com", users(nil))
	if got := call(t, m, c, "consume_credentials"); got != 1 {
		t.Errorf("consume after failed check = %d", got)
	}
	if cr, ok := AuthorizedCredentials(c.Msg, "proxy-authorization"); !ok || cr.User != "alice" {
		t.Errorf("AuthorizedCredentials = %v %v", cr, ok)
	}
}

func TestAuthenticationInfo(t *testing.T) {
	for _, otn := range []int{0, 1} {
		m, _ := newModule(t, func(c *Config) { c.AddAuthinfoHdr = 1; c.OneTimeNonce = otn })
		nonce := challenge(t, m, reqOpts{method: "REGISTER"}, 1)
		cl := client{user: "alice", realm: "example.com", pw: "secret", uri: "sip:example.com", method: "REGISTER", qop: "auth", nc: "00000001", cnonce: "cn"}
		c, _ := newReq(t, reqOpts{method: "REGISTER", from: "alice@example.com", to: "alice@example.com", hdrs: []string{cl.header("Authorization", nonce)}})
		if got := m.CheckResponse(c, HdrAuthorization, "example.com", alice); got != 1 {
			t.Fatalf("CheckResponse = %d", got)
		}
		ha1 := HA1(MD5, "alice", "example.com", "secret")
		rspauth := Response(MD5, ha1, nonce, "00000001", "cn", "auth", "", "sip:example.com", false, nil)
		want := regexp.MustCompile(`^Authentication-Info: nextnonce="([^"]+)", qop=auth, rspauth="` + rspauth + `", cnonce="cn", nc=00000001\r\n$`)
		if len(c.Msg.ReplyHdrs) != 1 {
			t.Fatalf("reply headers %q", c.Msg.ReplyHdrs)
		}
		sm := want.FindStringSubmatch(c.Msg.ReplyHdrs[0])
		if sm == nil {
			t.Fatalf("otn %d: %q", otn, c.Msg.ReplyHdrs[0])
		}
		if (sm[1] == nonce) != (otn == 0) {
			t.Errorf("otn %d: nextnonce %q (nonce %q)", otn, sm[1], nonce)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		in     string
		rc     int
		user   string
		domain string
		realm  string
		qop    int
	}{
		{in: `Digest username="alice", realm="r", nonce="n", uri="sip:x", response="0"`, user: "alice", realm: "r"},
		{in: `digest USERNAME="alice@example.com",Realm=r,qop=auth`, user: "alice", domain: "example.com", realm: "r", qop: qopAuth},
		{in: `Digest username="sip:alice@example.com", qop="auth-int"`, user: "alice", domain: "example.com", qop: qopAuthInt},
		{in: `Digest username="ab", qop=foo`, user: "ab", qop: qopOther},
		{in: `Basic abc`, rc: parseNotDigest},
		{in: `Digest`, rc: parseNotDigest},
		{in: `Digest username="alice`, rc: parseBadDigest},
		{in: `Digest username`, rc: parseBadDigest},
		{in: `Digest username=`, rc: parseBadDigest},
	}
	for _, tt := range tests {
		c, rc := ParseCredentials(tt.in)
		if rc != tt.rc {
			t.Errorf("%q: rc %d, want %d", tt.in, rc, tt.rc)
			continue
		}
		if rc != 0 {
			continue
		}
		if c.User != tt.user || c.Domain != tt.domain || c.Realm != tt.realm || c.qopType() != tt.qop {
			t.Errorf("%q: %+v", tt.in, c)
		}
	}
}

func TestKnownVectors(t *testing.T) {
	// RFC 2617 §3.5 example.
	ha1 := HA1(MD5, "Mufasa", "testrealm@host.com", "Circle Of Life")
	got := Response(MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth", "GET", "/dir/index.html", false, nil)
	if got != "6629fae49393a05397450978507c4ef1" {
		t.Errorf("RFC 2617 example: %s", got)
	}
	// RFC 7616 §3.9.1 example (SHA-256).
	ha1 = HA1(SHA256, "Mufasa", "http-auth@example.org", "Circle of Life")
	got = Response(SHA256, ha1, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth", "GET", "/dir/index.html", false, nil)
	if got != "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1" {
		t.Errorf("RFC 7616 example: %s", got)
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []func(*Config){
		func(c *Config) { c.Algorithm = "SHA-1" },
		func(c *Config) { c.Algorithm = "MD5,,SHA-256" },
		func(c *Config) { c.ChallengeAttr = "digest" },
	} {
		c := DefaultConfig()
		cfg(&c)
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
	c := DefaultConfig()
	c.ChallengeAttr = "$avp(s:ch)"
	m, err := New(c)
	if err != nil || m.chAVP != "ch" {
		t.Errorf("challenge_attr $avp(s:ch): %v %q", err, m.chAVP)
	}
}

func call(t *testing.T, m *Module, c *kemi.Ctx, name string, args ...any) int64 {
	t.Helper()
	for _, e := range m.Exports() {
		if e.Name != name {
			continue
		}
		if len(args) != len(e.Params) {
			t.Fatalf("%s: %d args for %d params", name, len(args), len(e.Params))
		}
		vs := make([]val.Value, len(args))
		for i, a := range args {
			switch x := a.(type) {
			case int:
				vs[i] = val.OfInt(int64(x))
			case string:
				vs[i] = val.OfStr(x)
			}
		}
		return e.Fn(c, vs).I
	}
	t.Fatalf("no export %s", name)
	return 0
}

func TestExportsMatchCatalog(t *testing.T) {
	m, _ := newModule(t, nil)
	checkCatalog(t, "auth", m.Exports())
}

func checkCatalog(t *testing.T, module string, exps []kemi.Export) {
	t.Helper()
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skipf("catalog not available: %v", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= 4 && cols[0] == module {
			want[cols[1]] = cols[2] + " -> " + cols[3]
		}
	}
	got := map[string]string{}
	for _, e := range exps {
		var ps []string
		for _, p := range e.Params {
			ps = append(ps, p.String())
		}
		params := strings.Join(ps, ",")
		if params == "" {
			params = "none"
		}
		if e.Module != module {
			t.Errorf("%s declared under module %q", e.Name, e.Module)
		}
		got[e.Name] = params + " -> " + e.Ret.String()
	}
	if len(got) != len(want) {
		t.Errorf("%d exports, catalog has %d", len(got), len(want))
	}
	for name, sig := range want {
		if got[name] != sig {
			t.Errorf("%s.%s: got %q, catalog %q", module, name, got[name], sig)
		}
	}
	kemi.NewTable().Register(exps...)
}
