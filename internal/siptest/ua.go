package siptest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// UA is a SIP phone for tests: one Client socket towards the proxy, used
// both as UAC (requests built from Req, Digest credentials computed from a
// 401/407) and as UAS (the requests the proxy routes to the UA's Contact,
// which is the client's own address — over TCP the proxy reuses the
// client's connection, as a registered phone expects).
//
//	a := siptest.NewUA(t, "udp", proxyAddr, "alice", "secret", "127.0.0.1")
//	reg := a.Register(3600)                       // 401, then 200
//	inv := a.NewRequest("INVITE", "sip:bob@127.0.0.1")
//	a.Send(inv)
//	res := a.ExpectFinal(inv)                     // 407
//	a.Send(inv.ACKFor(res))
//	inv = a.Authorize(inv, res)                   // same call, CSeq+1, credentials
//	a.Send(inv)
//	in := b.ExpectRequest("INVITE")               // b: another UA
//	b.Reply(in, 180, ""); b.Reply(in, 200, "")
//	ok := a.ExpectFinal(inv)
//	dlg := a.DialogFrom(inv, ok)
//	a.Send(dlg.ACK())
//
// Messages are read through the UA (ExpectFinal, ExpectRequest,
// ExpectResponse, ExpectNoMore): a message that does not match what one of
// them waits for stays queued for the next. Do not mix them with the
// embedded Client's Expect/Recv, which do not see that queue.
type UA struct {
	*Client
	User     string
	Password string
	Domain   string // domain of the AoR, and the digest realm ($fd)

	mu      sync.Mutex
	pending []Received
	tags    map[string]string // our To tag per dialog (Call-ID + From tag)
}

// NewUA opens a client socket (Dial) for the user user@domain.
func NewUA(t testing.TB, proto, server, user, password, domain string, opts ...Option) *UA {
	t.Helper()
	return &UA{Client: Dial(t, proto, server, opts...), User: user, Password: password, Domain: domain,
		tags: map[string]string{}}
}

// AOR is the UA's address of record, sip:user@domain.
func (u *UA) AOR() string { return "sip:" + u.User + "@" + u.Domain }

// Contact is the UA's contact URI: its own address and transport.
func (u *UA) Contact() string {
	return "sip:" + u.User + "@" + u.Local() + ";transport=" + u.Proto
}

// Req is a request a UA sends. NewRequest fills the identifiers; the
// fields can be changed before Send.
type Req struct {
	Method      string
	RURI        string
	From        string // From URI; "" is the UA's AoR
	FromTag     string
	To          string // To URI; "" is the AoR for REGISTER, the R-URI otherwise
	ToTag       string
	CallID      string
	CSeq        int
	Branch      string
	MaxForwards int      // 0 is 70; negative leaves the header out
	Contact     string   // "" is the UA's Contact (not sent for CANCEL, ACK, BYE); "-" for none
	Route       []string // Route header values, in order
	Headers     []string // more header lines ("Name: value")
	ContentType string
	Body        string
}

// NewRequest starts a request (a new call: fresh Call-ID, From tag,
// branch; CSeq 1).
func (u *UA) NewRequest(method, ruri string) *Req {
	return &Req{Method: method, RURI: ruri, FromTag: NewID(4), CallID: NewID(8) + "@siptest",
		CSeq: 1, Branch: NewBranch()}
}

// Clone copies r (and its slices).
func (r *Req) Clone() *Req {
	n := *r
	n.Route = append([]string(nil), r.Route...)
	n.Headers = append([]string(nil), r.Headers...)
	return &n
}

// Next is the next request of r's call: CSeq+1, a new branch, the same
// headers except credentials.
func (r *Req) Next() *Req {
	n := r.Clone()
	n.CSeq++
	n.Branch = NewBranch()
	n.Headers = n.Headers[:0]
	for _, h := range r.Headers {
		name, _, _ := strings.Cut(h, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "authorization", "proxy-authorization":
			continue
		}
		n.Headers = append(n.Headers, h)
	}
	return n
}

// ACKFor is the ACK of an INVITE answered by the non-2xx final res
// (RFC 3261 §17.1.1.3): same branch, R-URI, Call-ID, From, Route and
// CSeq number, the To of the reply.
func (r *Req) ACKFor(res *sip.Response) *Req {
	n := r.Clone()
	n.Method = "ACK"
	n.ToTag = toTag(res)
	n.Headers = nil
	n.ContentType, n.Body = "", ""
	n.Contact = "-"
	return n
}

// Cancel is the CANCEL of r (RFC 3261 §9.1): same branch, R-URI, Call-ID,
// From, To, Route and CSeq number.
func (r *Req) Cancel() *Req {
	n := r.Clone()
	n.Method = "CANCEL"
	n.Headers = nil
	n.ContentType, n.Body = "", ""
	n.Contact = "-"
	return n
}

// Sent describes r for AssertMatches.
func (r *Req) Sent() *Sent {
	return &Sent{CallID: r.CallID, Branch: r.Branch, Tag: r.FromTag, CSeq: r.CSeq}
}

// Text renders r as the UA sends it.
func (u *UA) Text(r *Req) string {
	var b strings.Builder
	line := func(format string, a ...any) {
		fmt.Fprintf(&b, format, a...)
		b.WriteString("\r\n")
	}
	from := r.From
	if from == "" {
		from = u.AOR()
	}
	to := r.To
	if to == "" {
		to = r.RURI
		if r.Method == "REGISTER" {
			to = u.AOR()
		}
	}
	line("%s %s SIP/2.0", r.Method, r.RURI)
	line("Via: SIP/2.0/%s %s;branch=%s;rport", strings.ToUpper(u.Proto), u.Local(), r.Branch)
	switch {
	case r.MaxForwards == 0:
		line("Max-Forwards: 70")
	case r.MaxForwards > 0:
		line("Max-Forwards: %d", r.MaxForwards)
	}
	line("From: <%s>;tag=%s", from, r.FromTag)
	if r.ToTag != "" {
		line("To: <%s>;tag=%s", to, r.ToTag)
	} else {
		line("To: <%s>", to)
	}
	line("Call-ID: %s", r.CallID)
	line("CSeq: %d %s", r.CSeq, r.Method)
	for _, rt := range r.Route {
		line("Route: %s", rt)
	}
	switch {
	case r.Contact == "-":
	case r.Contact != "":
		line("Contact: <%s>", r.Contact)
	case r.Method != "CANCEL" && r.Method != "ACK" && r.Method != "BYE":
		line("Contact: <%s>", u.Contact())
	}
	for _, h := range r.Headers {
		line("%s", h)
	}
	line("User-Agent: kemigo-siptest-ua")
	if r.Body != "" {
		ct := r.ContentType
		if ct == "" {
			ct = "application/sdp"
		}
		line("Content-Type: %s", ct)
	}
	line("Content-Length: %d", len(r.Body))
	b.WriteString("\r\n")
	b.WriteString(r.Body)
	return b.String()
}

// Send sends r; failures are fatal to the test.
func (u *UA) Send(r *Req) *Sent {
	u.helper()
	raw := u.Text(r)
	if err := u.SendRaw([]byte(raw)); err != nil {
		u.fatal(err)
	}
	s := r.Sent()
	s.Raw = raw
	return s
}

// Credentials returns the UA's credentials for r (user, password, method,
// digest-uri = R-URI, body).
func (u *UA) Credentials(r *Req) Credentials {
	return Credentials{User: u.User, Password: u.Password, Method: r.Method, URI: r.RURI, Body: []byte(r.Body)}
}

// Authorize is the next request of r's call (Next) carrying credentials
// that answer the challenge of res (401 or 407). edit, when given, may
// change the credentials first (a wrong password, a forced qop and nc).
func (u *UA) Authorize(r *Req, res *sip.Response, edit ...func(*Credentials)) *Req {
	u.helper()
	ch, err := ChallengeOf(res)
	if err != nil {
		u.fatal(err)
		return nil
	}
	n := r.Next()
	cr := u.Credentials(n)
	for _, e := range edit {
		e(&cr)
	}
	v, err := ch.Authorize(cr)
	if err != nil {
		u.fatal(err)
		return nil
	}
	n.Headers = append(n.Headers, ch.AuthHeader()+": "+v)
	return n
}

// RegisterRequest is a REGISTER of the UA's Contact to sip:<domain> with
// an Expires header.
func (u *UA) RegisterRequest(expires int) *Req {
	r := u.NewRequest("REGISTER", "sip:"+u.Domain)
	r.Headers = append(r.Headers, "Expires: "+strconv.Itoa(expires))
	return r
}

// Register registers the UA's Contact: REGISTER, then, on a 401, the
// REGISTER with credentials. It returns the challenge (nil when none
// came) and the final reply of the last REGISTER, which must be a 200
// (anything else fails the test).
func (u *UA) Register(expires int) (challenge, ok *sip.Response) {
	u.helper()
	r := u.RegisterRequest(expires)
	u.Send(r)
	res := u.ExpectFinal(r)
	if res.StatusCode == 401 {
		challenge = res
		r = u.Authorize(r, res)
		u.Send(r)
		res = u.ExpectFinal(r)
	}
	if res.StatusCode != 200 {
		u.fatal(fmt.Errorf("siptest: %s: REGISTER got %d %s\n%s", u.AOR(), res.StatusCode, res.Reason, res))
	}
	return challenge, res
}

// next returns the first queued message, else waits up to d for one.
func (u *UA) next(d time.Duration) (Received, error) {
	u.mu.Lock()
	if len(u.pending) > 0 {
		r := u.pending[0]
		u.pending = u.pending[1:]
		u.mu.Unlock()
		return r, nil
	}
	u.mu.Unlock()
	r, err := u.Recv(d)
	if err == nil {
		if req, ok := r.Msg.(*sip.Request); ok {
			req.SetSource(r.From)
		}
	}
	return r, err
}

// requeue puts messages back in front of the queue, in order.
func (u *UA) requeue(rs []Received) {
	if len(rs) == 0 {
		return
	}
	u.mu.Lock()
	u.pending = append(append([]Received(nil), rs...), u.pending...)
	u.mu.Unlock()
}

// await reads messages until match accepts one, keeping the others queued.
func (u *UA) await(what string, d time.Duration, match func(Received) bool) (Received, bool) {
	u.helper()
	deadline := time.Now().Add(d)
	var skipped []Received
	defer func() { u.requeue(skipped) }()
	for {
		left := time.Until(deadline)
		if left <= 0 {
			left = time.Millisecond
		}
		r, err := u.next(left)
		if errors.Is(err, ErrTimeout) {
			var got []string
			for _, s := range skipped {
				got = append(got, firstLine(s.Raw))
			}
			u.fatal(fmt.Errorf("siptest: %s (%s %s): no %s within %s (other messages: %q)", u.AOR(), u.Proto, u.Local(), what, d, got))
			return Received{}, false
		}
		if err != nil {
			u.fatal(fmt.Errorf("siptest: %s: %w in %q", u.AOR(), err, r.Raw))
			return Received{}, false
		}
		if match(r) {
			return r, true
		}
		skipped = append(skipped, r)
	}
}

func (u *UA) wait(d []time.Duration) time.Duration {
	if len(d) > 0 {
		return d[0]
	}
	return u.timeout()
}

// ExpectResponse waits for the next response to r (same Call-ID, CSeq
// number and method), provisional or final.
func (u *UA) ExpectResponse(r *Req, d ...time.Duration) *sip.Response {
	u.helper()
	got, ok := u.await(fmt.Sprintf("reply to %s CSeq %d", r.Method, r.CSeq), u.wait(d), func(m Received) bool {
		res, ok := m.Msg.(*sip.Response)
		return ok && answers(res, r)
	})
	if !ok {
		return nil
	}
	return got.Msg.(*sip.Response)
}

// ExpectFinal waits for the final response to r, skipping (and dropping)
// its provisional responses; Provisionals returns them too.
func (u *UA) ExpectFinal(r *Req, d ...time.Duration) *sip.Response {
	u.helper()
	res, _ := u.ExpectFinalAll(r, d...)
	return res
}

// ExpectFinalAll is ExpectFinal that also returns the provisional
// responses received before the final one, in order.
func (u *UA) ExpectFinalAll(r *Req, d ...time.Duration) (*sip.Response, []*sip.Response) {
	u.helper()
	deadline := time.Now().Add(u.wait(d))
	var prov []*sip.Response
	for {
		left := time.Until(deadline)
		if left <= 0 {
			left = time.Millisecond
		}
		res := u.ExpectResponse(r, left)
		if res == nil {
			return nil, prov
		}
		if res.StatusCode >= 200 {
			return res, prov
		}
		prov = append(prov, res)
	}
}

// ExpectRequest waits for the next request of method received by the UA
// (other messages stay queued). Its source address is set (Source()).
func (u *UA) ExpectRequest(method string, d ...time.Duration) *sip.Request {
	u.helper()
	got, ok := u.await(method+" request", u.wait(d), func(m Received) bool {
		req, ok := m.Msg.(*sip.Request)
		return ok && string(req.Method) == method
	})
	if !ok {
		return nil
	}
	return got.Msg.(*sip.Request)
}

// ExpectNoMore fails the test when a message is queued or arrives within
// d (DefaultQuiet).
func (u *UA) ExpectNoMore(d ...time.Duration) {
	u.helper()
	wait := DefaultQuiet
	if len(d) > 0 {
		wait = d[0]
	}
	r, err := u.next(wait)
	if errors.Is(err, ErrTimeout) {
		return
	}
	u.fail(fmt.Errorf("siptest: %s (%s %s): expected no more messages, got:\n%s", u.AOR(), u.Proto, u.Local(), r.Raw))
}

// Reply answers a request the UA received: one To tag per dialog,
// Record-Route copied into 18x/2xx (sipgo's NewResponseFromRequest), the
// UA's Contact in 18x/2xx to INVITE unless hdrs has one. hdrs are added
// ("Name: value").
func (u *UA) Reply(req *sip.Request, code int, reason string, hdrs ...string) *sip.Response {
	u.helper()
	return u.ReplyBody(req, code, reason, "", hdrs...)
}

// ReplyBody is Reply with a body (an SDP answer: Content-Type
// application/sdp unless hdrs has a Content-Type).
func (u *UA) ReplyBody(req *sip.Request, code int, reason, body string, hdrs ...string) *sip.Response {
	u.helper()
	if reason == "" {
		reason = reasonPhrase(code)
	}
	var b []byte
	if body != "" {
		b = []byte(body)
		ct := true
		for _, h := range hdrs {
			name, _, _ := strings.Cut(h, ":")
			if n := strings.TrimSpace(name); strings.EqualFold(n, "Content-Type") || n == "c" {
				ct = false
			}
		}
		if ct {
			hdrs = append(hdrs, "Content-Type: application/sdp")
		}
	}
	res := sip.NewResponseFromRequest(req, code, reason, b)
	if to := res.To(); to != nil && code > 100 {
		tag, ok := req.To().Params.Get("tag")
		if !ok || tag == "" {
			key := req.CallID().Value()
			if ft, ok := req.From().Params.Get("tag"); ok {
				key += ";" + ft
			}
			u.mu.Lock()
			if tag = u.tags[key]; tag == "" {
				tag = NewID(4)
				u.tags[key] = tag
			}
			u.mu.Unlock()
		}
		to.Params.Remove("tag")
		to.Params.Add("tag", tag)
	}
	contact := req.Method == sip.INVITE && code > 100 && code < 300
	for _, h := range hdrs {
		name, value, _ := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if strings.EqualFold(name, "Contact") || name == "m" {
			contact = false
		}
		res.AppendHeader(sip.NewHeader(name, strings.TrimSpace(value)))
	}
	if contact {
		res.AppendHeader(sip.NewHeader("Contact", "<"+u.Contact()+">"))
	}
	if err := u.SendRaw([]byte(res.String())); err != nil {
		u.fatal(err)
	}
	return res
}

// Dialog is the UAC side of a dialog an INVITE's 2xx established
// (RFC 3261 §12.1.2).
type Dialog struct {
	CallID    string
	LocalTag  string
	RemoteTag string
	LocalURI  string
	RemoteURI string
	Target    string   // remote target: the 2xx's Contact URI
	Routes    []string // route set: the 2xx's Record-Route, reversed
	CSeq      int      // CSeq of the last request sent in the dialog
	invite    *Req
}

// DialogFrom builds the dialog of inv answered by the 2xx res.
func (u *UA) DialogFrom(inv *Req, res *sip.Response) *Dialog {
	u.helper()
	target := ""
	if c, ok := Header(res, "Contact"); ok {
		target = HeaderURI(c)
	}
	if target == "" {
		u.fatal(fmt.Errorf("siptest: %d %s has no Contact: no dialog", res.StatusCode, res.Reason))
		return nil
	}
	rr := SplitHeaderValues(Headers(res, "Record-Route"))
	routes := make([]string, 0, len(rr))
	for i := len(rr) - 1; i >= 0; i-- {
		routes = append(routes, rr[i])
	}
	from := inv.From
	if from == "" {
		from = u.AOR()
	}
	to := inv.To
	if to == "" {
		to = inv.RURI
	}
	return &Dialog{CallID: inv.CallID, LocalTag: inv.FromTag, RemoteTag: toTag(res), LocalURI: from,
		RemoteURI: to, Target: target, Routes: routes, CSeq: inv.CSeq, invite: inv}
}

// DialogAsUAS is the UAS side of the dialog that the received INVITE req
// and the UA's 2xx res (from Reply) established: requests go to the
// caller's Contact along the INVITE's Record-Route, in order. Its ACK
// method must not be used.
func (u *UA) DialogAsUAS(req *sip.Request, res *sip.Response) *Dialog {
	u.helper()
	target := ""
	if c, ok := Header(req, "Contact"); ok {
		target = HeaderURI(c)
	}
	if target == "" {
		u.fatal(fmt.Errorf("siptest: the INVITE has no Contact: no dialog"))
		return nil
	}
	fromTag, _ := req.From().Params.Get("tag")
	return &Dialog{CallID: req.CallID().Value(), LocalTag: toTag(res), RemoteTag: fromTag,
		LocalURI: req.To().Address.String(), RemoteURI: req.From().Address.String(), Target: target,
		Routes: SplitHeaderValues(Headers(req, "Record-Route")), CSeq: 0}
}

// ACK is the ACK of the 2xx (a new transaction: new branch, the INVITE's
// CSeq number, sent along the route set).
func (d *Dialog) ACK() *Req {
	r := d.request("ACK")
	r.CSeq = d.invite.CSeq
	return r
}

// Request is the next request of the dialog (CSeq+1).
func (d *Dialog) Request(method string) *Req {
	d.CSeq++
	r := d.request(method)
	r.CSeq = d.CSeq
	return r
}

func (d *Dialog) request(method string) *Req {
	return &Req{Method: method, RURI: d.Target, From: d.LocalURI, FromTag: d.LocalTag, To: d.RemoteURI,
		ToTag: d.RemoteTag, CallID: d.CallID, Branch: NewBranch(), Route: append([]string(nil), d.Routes...),
		Contact: "-"}
}

// answers reports whether res is a response to r.
func answers(res *sip.Response, r *Req) bool {
	cs := res.CSeq()
	ci := res.CallID()
	return cs != nil && ci != nil && ci.Value() == r.CallID && int(cs.SeqNo) == r.CSeq &&
		string(cs.MethodName) == r.Method
}

func toTag(res *sip.Response) string {
	if to := res.To(); to != nil {
		t, _ := to.Params.Get("tag")
		return t
	}
	return ""
}

// HeaderURI returns the URI of a name-addr header value ("<sip:x>;p=1",
// "Name <sip:x>") or the value up to its first ';' when it has no <>.
func HeaderURI(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	u, _, _ := strings.Cut(strings.TrimSpace(v), ";")
	return u
}

// SplitHeaderValues splits comma-separated header values (commas inside
// <> or quotes do not split) and trims them.
func SplitHeaderValues(vals []string) []string {
	var out []string
	for _, v := range vals {
		depth, quoted, start := 0, false, 0
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '"':
				quoted = !quoted
			case quoted:
			case c == '<':
				depth++
			case c == '>':
				depth--
			case c == ',' && depth == 0:
				if s := strings.TrimSpace(v[start:i]); s != "" {
					out = append(out, s)
				}
				start = i + 1
			}
		}
		if s := strings.TrimSpace(v[start:]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// reasonPhrase is the RFC 3261 reason phrase of the usual codes.
func reasonPhrase(code int) string {
	switch code {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 603:
		return "Decline"
	}
	return "Reply"
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
