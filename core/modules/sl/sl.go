// Package sl is Kamailio's sl module: stateless replies (KSR.sl.*), plus
// send_reply, which goes through tm when the request has a transaction.
package sl

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// StatefulReplier answers a request through its transaction. The tm
// module implements it: handled is false when the request has no
// transaction (sl then replies statelessly); otherwise rc is tm's result
// (negative on failure).
type StatefulReplier interface {
	TReply(c *kemi.Ctx, code int, reason string) (handled bool, rc int)
}

// ReplyForwarder sends a received reply on statelessly (Kamailio's
// forward_reply), with its status code and reason replaced when code is
// non-zero / reason is not empty. The core proxy implements it.
type ReplyForwarder interface {
	ForwardReply(c *kemi.Ctx, m *sipmsg.Msg, code int, reason string) error
}

// Branch is one entry of the destination set (append_branch, lookup).
type Branch struct {
	URI   string
	Q     int // 0..1000, or QUnspecified
	Path  string
	Flags uint32 // branch flags
}

// QUnspecified is the q value of a branch that has none.
const QUnspecified = -1

// BranchesFunc returns the extra branches of a request (not the R-URI).
type BranchesFunc func(m *sipmsg.Msg) []Branch

// LocalResponseFunc is called after a stateless reply was sent (the
// "sl:local-response" event).
type LocalResponseFunc func(c *kemi.Ctx, res *sip.Response)

// rich_redirect bits (DS_FLAGS, DS_PATH).
const (
	dsFlags = 1
	dsPath  = 2
)

type hooks struct {
	stateful  StatefulReplier
	forwarder ReplyForwarder
	branches  BranchesFunc
	localResp LocalResponseFunc
}

// Module holds the sl state: hooks to other modules and statistics.
type Module struct {
	cfg   Config
	mu    sync.Mutex // serialises hook updates
	hooks atomic.Pointer[hooks]
	stats stats
}

// New builds the module. Until SetStateful is called, send_reply is
// always stateless.
func New(cfg Config) *Module {
	m := &Module{cfg: cfg}
	m.hooks.Store(&hooks{})
	registerPVs()
	return m
}

func (m *Module) update(f func(h *hooks)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := *m.hooks.Load()
	f(&h)
	m.hooks.Store(&h)
}

// SetStateful plugs in tm (nil: stateless only).
func (m *Module) SetStateful(r StatefulReplier) { m.update(func(h *hooks) { h.stateful = r }) }

// SetForwarder plugs in the stateless reply forwarder for sl_forward_reply.
func (m *Module) SetForwarder(f ReplyForwarder) { m.update(func(h *hooks) { h.forwarder = f }) }

// SetBranches plugs in the destination set for 3xx replies.
func (m *Module) SetBranches(f BranchesFunc) { m.update(func(h *hooks) { h.branches = f }) }

// SetLocalResponseHook sets the function run after each stateless reply.
func (m *Module) SetLocalResponseHook(f LocalResponseFunc) {
	m.update(func(h *hooks) { h.localResp = f })
}

// SendReply is sl_send_reply: always stateless. It returns 1 when sent,
// -1 on error or when the request is an ACK, -2 when the message is
// marked no-reply.
func (m *Module) SendReply(c *kemi.Ctx, code int, reason string) int {
	msg := c.Msg
	if !msg.IsRequest() {
		c.Log.Error().Msg("sl: cannot reply to a reply")
		m.stats.failure()
		return -1
	}
	if msg.Req.Method == sip.ACK {
		m.stats.failure()
		return -1
	}
	if msg.NoReply {
		c.Log.Info().Msg("sl: message marked with no-reply flag")
		return -2
	}
	if code < 100 || code > 699 {
		c.Log.Error().Int("code", code).Msg("sl: invalid reply code")
		m.stats.failure()
		return -1
	}
	h := m.hooks.Load()
	res := m.build(msg, h, code, reason)
	if err := msg.SendReply(res); err != nil {
		c.Log.Error().Err(err).Int("code", code).Msg("sl: sending the reply failed")
		m.stats.failure()
		return -1
	}
	m.stats.sent(code)
	if h.localResp != nil {
		h.localResp(c, res)
	}
	return 1
}

// build makes the reply; for 3xx it adds the destination set as Contact,
// after the hdr.append_to_reply headers.
func (m *Module) build(msg *sipmsg.Msg, h *hooks, code int, reason string) *sip.Response {
	if code < 300 || code >= 400 {
		return msg.BuildReply(code, reason)
	}
	contact := m.destSet(msg, h)
	if contact == "" {
		return msg.BuildReply(code, reason)
	}
	saved := msg.ReplyHdrs
	msg.ReplyHdrs = append(saved[:len(saved):len(saved)], contact)
	defer func() { msg.ReplyHdrs = saved }()
	return msg.BuildReply(code, reason)
}

// destSet renders the destination set as a Contact header, as
// print_dset: the R-URI when it was rewritten, then the branches. It
// returns "" when the set is empty.
func (m *Module) destSet(msg *sipmsg.Msg, h *hooks) string {
	var set []Branch
	if msg.NewURI != "" {
		set = append(set, Branch{URI: msg.NewURI, Q: QUnspecified, Flags: msg.BFlags})
	}
	if h.branches != nil {
		set = append(set, h.branches(msg)...)
	}
	if len(set) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Contact: ")
	for i, br := range set {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('<')
		b.WriteString(br.URI)
		if m.cfg.RichRedirect&dsPath != 0 && br.Path != "" {
			b.WriteString("?Route=")
			b.WriteString(escapeParam(br.Path))
		}
		b.WriteByte('>')
		if br.Q != QUnspecified {
			b.WriteString(";q=")
			b.WriteString(q2str(br.Q))
		}
		if m.cfg.RichRedirect&dsFlags != 0 {
			b.WriteString(";flags=")
			b.WriteString(strconv.FormatUint(uint64(br.Flags), 10))
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// q2str renders a q value (0..1000) as Kamailio does: "1", "0", "0.5", "0.25".
func q2str(q int) string {
	switch {
	case q >= 1000:
		return "1"
	case q <= 0:
		return "0"
	}
	s := fmt.Sprintf("0.%03d", q)
	return strings.TrimRight(s, "0")
}

// escapeParam %-escapes a path for a URI header as escape_param does.
func escapeParam(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z',
			strings.IndexByte("-_.!~*'()[]/:&+$", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// SendReplyStateful is send_reply: through tm when the request has a
// transaction (and bind_tm is on), otherwise stateless. It returns 1, -1
// on failure or when the message is a reply without a transaction, -2
// when it is marked no-reply.
func (m *Module) SendReplyStateful(c *kemi.Ctx, code int, reason string) int {
	if c.Msg.NoReply {
		c.Log.Info().Msg("sl: message marked with no-reply flag")
		return -2
	}
	if h := m.hooks.Load(); m.cfg.BindTM != 0 && h.stateful != nil {
		if handled, rc := h.stateful.TReply(c, code, reason); handled {
			if rc < 0 {
				c.Log.Error().Int("code", code).Int("rc", rc).Msg("sl: failed to reply stateful (tm)")
				return -1
			}
			return 1
		}
	}
	if !c.Msg.IsRequest() {
		return -1
	}
	return m.SendReply(c, code, reason)
}

// Kamailio's internal error codes (error.h) that err2reason knows.
const (
	eUnspec          = -1
	eOutOfMem        = -2
	eBadTupel        = -9
	eExec            = -11
	eTooManyBranches = -12
	eBadTo           = -13
	eQInvChar        = -15
	eQEmpty          = -16
	eQTooBig         = -17
	eQDecMissing     = -18
	eBadReq          = -400
	eSend            = -477
	eBadAddress      = -478
	eBadURI          = -479
	eCanceled        = -487
)

// ErrToReason maps an internal error to a reply code and reason, as
// Kamailio's err2reason_phrase with the "SL" signature. 0 (nothing
// recorded) counts as E_UNSPEC; a positive value is taken as its negation.
func ErrToReason(e int) (int, string) {
	switch {
	case e == 0:
		e = eUnspec
	case e > 0:
		e = -e
	}
	code, text := 500, "I'm terribly sorry, server error occurred"
	switch e {
	case eSend:
		code, text = 477, "Unfortunately error on sending to next hop occurred"
	case eBadAddress:
		code, text = 478, "Unresolvable destination"
	case eBadReq:
		code, text = 400, "Bad Request"
	case eBadURI:
		code, text = 479, "Regretfully, we were not able to process the URI"
	case eBadTupel:
		code, text = 400, "Transaction tuple incomplete"
	case eBadTo:
		code, text = 400, "Bad To"
	case eExec:
		text = "Error in external logic"
	case eTooManyBranches:
		text = "Forking capacity exceeded"
	case eQInvChar:
		code, text = 400, "Invalid character in q parameter"
	case eQEmpty:
		code, text = 400, "Empty q parameter"
	case eQTooBig:
		code, text = 400, "Q parameter too big"
	case eQDecMissing:
		code, text = 400, "Decimal part missing in q"
	case eCanceled:
		code, text = 487, "Transaction canceled"
	case eOutOfMem:
		text = "No error" // out-of-memory is not disclosed in release builds
	}
	return code, fmt.Sprintf("%s (%d/SL)", text, -e)
}

// ReplyError is sl_reply_error: a stateless reply describing Msg.LastErr.
// It returns 1 (even if sending failed, as Kamailio does), -2 when the
// message is marked no-reply.
func (m *Module) ReplyError(c *kemi.Ctx) int {
	if c.Msg.NoReply {
		c.Log.Info().Msg("sl: message marked with no-reply flag")
		return -2
	}
	code, reason := ErrToReason(c.Msg.LastErr)
	m.SendReply(c, code, reason)
	c.Log.Error().Str("reason", reason).Msg("sl: stateless error reply used")
	return 1
}

// ForwardReply is sl_forward_reply: forward the current reply statelessly,
// optionally with a new code (same class, three digits) and reason.
func (m *Module) ForwardReply(c *kemi.Ctx, code, reason string) int {
	msg := c.Msg
	if msg.IsRequest() {
		c.Log.Error().Msg("sl: sl_forward_reply needs a reply")
		return -1
	}
	ncode := 0
	if code != "" {
		old := strconv.Itoa(msg.Res.StatusCode)
		if len(code) != 3 || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
			c.Log.Error().Str("code", code).Msg("sl: invalid reply code value")
			return -1
		}
		if len(old) != 3 || code[0] != old[0] {
			c.Log.Error().Str("code", code).Msg("sl: reply code class cannot be changed")
			return -1
		}
		ncode, _ = strconv.Atoi(code)
	}
	fwd := m.hooks.Load().forwarder
	if fwd == nil {
		c.Log.Error().Msg("sl: sl_forward_reply is not available (no reply forwarder)")
		return -1
	}
	if err := fwd.ForwardReply(c, msg, ncode, reason); err != nil {
		c.Log.Error().Err(err).Msg("sl: forwarding the reply failed")
		return -1
	}
	return 1
}

// FilterACK reports whether m is an ACK for a reply this proxy sent itself
// (its To-tag is the local one), which Kamailio's sl absorbs before the
// request route ("sl:filtered-ack"). The proxy drops such ACKs.
func (m *Module) FilterACK(msg *sipmsg.Msg) bool {
	if !msg.IsRequest() || msg.Req.Method != sip.ACK {
		return false
	}
	to := msg.Req.To()
	if to == nil {
		return false
	}
	tag, ok := to.Params.Get("tag")
	if !ok || tag == "" {
		return false
	}
	probe := *msg // LocalToTag caches on the Msg; keep the ACK untouched
	probe.ToTag = ""
	if tag != probe.LocalToTag() {
		return false
	}
	m.stats.filteredACK()
	return true
}
