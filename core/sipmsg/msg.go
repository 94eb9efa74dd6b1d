// Package sipmsg wraps a parsed SIP message with the per-message routing state
// that Kamailio keeps in struct sip_msg: the new R-URI, the destination URI,
// flags, AVPs and the queued header edits ("lumps") applied when the message
// is sent on.
package sipmsg

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/val"
)

// Replier sends a reply for a received request back where RFC 3261 §18.2.2
// and RFC 3581 say. The transport sets it when the message arrives.
type Replier interface {
	SendReply(m *Msg, res *sip.Response) error
}

// HeaderEdit is one queued header change.
type HeaderEdit struct {
	Op     EditOp
	Text   string // raw header text "Name: value\r\n" (one or more lines)
	Anchor string // header name for AppendAfter / InsertBefore (lower case)
}

// EditOp is the kind of a queued header change.
type EditOp uint8

const (
	EditAppend       EditOp = iota // after the last header
	EditInsert                     // before the first header
	EditAppendAfter                // after the first header named Anchor
	EditInsertBefore               // before the first header named Anchor
	EditRemove                     // every header named Anchor
)

var msgIDs atomic.Uint64

// Msg is one SIP message being routed.
type Msg struct {
	ID  uint64
	Req *sip.Request  // nil for replies
	Res *sip.Response // nil for requests

	// Where it came from and on which local socket.
	Proto   string // "udp", "tcp", "tls", ...
	SrcIP   string
	SrcPort int
	DstIP   string // local address the message arrived on ($Ri)
	DstPort int    // local port ($Rp)
	Recv    time.Time
	Replier Replier
	// Placed, when set, is called once the message has a place in its
	// worker's order (running, or queued): the UDP readers hold the
	// socket's order until then, so messages keep their arrival order.
	Placed func()
	Faked  bool // the dummy message used outside routes (SPEC §2.3)

	// Routing state.
	NewURI      string // rewritten R-URI; "" when unchanged
	newURIP     *sip.Uri
	ruri        string // Req.Recipient as a string, made on first use (RURI)
	DstURI      string // $du
	Flags       uint32 // message flags ($mf)
	BFlags      uint32 // branch-0 flags ($bf)
	Edits       []HeaderEdit
	ReplyHdrs   []string // headers for locally generated replies (hdr.append_to_reply)
	AVPs        map[string][]val.Value
	ForceRport  bool
	NoReply     bool // sanity marked it: send no reply
	Replied     int  // number of replies sent for this request (sl/tm)
	Relayed     bool // forwarded (stateless or stateful)
	LastErr     int  // Kamailio's prev_ser_error, for sl_reply_error
	RRDone      bool // record_route already called
	RRParams    string
	ToTag       string // deterministic local To-tag, computed on first use
	ToTagPrefix string

	// Destination set beyond branch 0 (registrar.lookup, append_branch).
	Branches []Branch
	// Branch-0 extras set by registrar.lookup.
	Path     string // Path of the R-URI contact, turned into Route headers
	SendSock string // forced send socket ($fs), "proto:ip:port"
	ConnID   int64  // id of the TCP connection the message came on (0 for UDP)
	// Scratch space modules keep per message (keyed by module name).
	Ext map[string]any
}

// NewRequest wraps a received request.
func NewRequest(req *sip.Request) *Msg {
	return &Msg{ID: msgIDs.Add(1), Req: req, Recv: time.Now()}
}

// NewReply wraps a received reply.
func NewReply(res *sip.Response) *Msg {
	return &Msg{ID: msgIDs.Add(1), Res: res, Recv: time.Now()}
}

// SIP returns the underlying message.
func (m *Msg) SIP() sip.Message {
	if m.Req != nil {
		return m.Req
	}
	return m.Res
}

// IsRequest reports whether m is a request.
func (m *Msg) IsRequest() bool { return m.Req != nil }

// Method returns the request method, or the CSeq method of a reply.
func (m *Msg) Method() string {
	if m.Req != nil {
		return string(m.Req.Method)
	}
	if cs := m.Res.CSeq(); cs != nil {
		return string(cs.MethodName)
	}
	return ""
}

// CallID returns the first Call-ID, or "". (sipgo's CallID() points at the
// last copy of a duplicated header; Kamailio uses the first.)
func (m *Msg) CallID() string {
	for _, h := range allHeaders(m.SIP()) {
		if cid, ok := h.(*sip.CallIDHeader); ok {
			return string(*cid)
		}
	}
	return ""
}

// HasToTag reports whether a request's To header has a tag: an in-dialog
// request.
func (m *Msg) HasToTag() bool {
	if m.Req == nil || m.Req.To() == nil {
		return false
	}
	tag, _ := m.Req.To().Params.Get("tag")
	return tag != ""
}

// RURI returns the current R-URI as a string (the rewritten one when set).
func (m *Msg) RURI() string {
	if m.Req == nil {
		return ""
	}
	if m.NewURI != "" {
		return m.NewURI
	}
	// The received R-URI does not change (SetRURI sets NewURI; the
	// parsed one must not be modified): serialize it once, not in every
	// is_myself_ruri, has_ruri_user, sanity and nathelper check.
	if m.ruri == "" {
		m.ruri = m.Req.Recipient.String()
	}
	return m.ruri
}

// RURIParsed returns the current R-URI parsed. The result must not be modified.
func (m *Msg) RURIParsed() *sip.Uri {
	if m.Req == nil {
		return nil
	}
	if m.NewURI != "" {
		if m.newURIP == nil {
			u := &sip.Uri{}
			if err := sip.ParseUri(m.NewURI, u); err != nil {
				return nil
			}
			m.newURIP = u
		}
		return m.newURIP
	}
	return &m.Req.Recipient
}

// SetRURI rewrites the R-URI ($ru). It fails on an unparsable URI.
func (m *Msg) SetRURI(uri string) error {
	u := &sip.Uri{}
	if err := sip.ParseUri(uri, u); err != nil {
		return err
	}
	m.NewURI = uri
	m.newURIP = u
	return nil
}

// ResetRURI drops a rewrite ($ru back to the original).
func (m *Msg) ResetRURI() { m.NewURI, m.newURIP = "", nil }

// SrcAddr is "ip:port" of the sender.
func (m *Msg) SrcAddr() string { return JoinHostPort(m.SrcIP, m.SrcPort) }

// JoinHostPort joins an address and port, bracketing IPv6.
func JoinHostPort(ip string, port int) string {
	var buf [64]byte
	b := buf[:0]
	if strings.IndexByte(ip, ':') >= 0 && !strings.HasPrefix(ip, "[") {
		b = append(append(append(b, '['), ip...), ']')
	} else {
		b = append(b, ip...)
	}
	b = append(b, ':')
	return string(strconv.AppendInt(b, int64(port), 10)) // one allocation
}

// Flag operations (message flags, 0..31).
func (m *Msg) SetFlag(i int)        { m.Flags |= 1 << uint(i) }
func (m *Msg) ResetFlag(i int)      { m.Flags &^= 1 << uint(i) }
func (m *Msg) IsFlagSet(i int) bool { return m.Flags&(1<<uint(i)) != 0 }

// AVP returns the stack for name (top first); nil when absent.
func (m *Msg) AVP(name string) []val.Value { return m.AVPs[name] }

// PushAVP adds a value on top of the named AVP stack.
func (m *Msg) PushAVP(name string, v val.Value) {
	if m.AVPs == nil {
		m.AVPs = map[string][]val.Value{}
	}
	m.AVPs[name] = append([]val.Value{v}, m.AVPs[name]...)
}

// DelAVP removes the top value, or every value when all is true.
func (m *Msg) DelAVP(name string, all bool) {
	s := m.AVPs[name]
	if len(s) == 0 {
		return
	}
	if all || len(s) == 1 {
		delete(m.AVPs, name)
		return
	}
	m.AVPs[name] = s[1:]
}

// QueueEdit records a header change applied when the message is sent on.
func (m *Msg) QueueEdit(e HeaderEdit) { m.Edits = append(m.Edits, e) }
