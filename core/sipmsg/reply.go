package sipmsg

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// ServerHeader is added to locally generated replies, as Kamailio adds its
// "Server:" header.
var ServerHeader = "kemigo"

// tagPrefix makes local To-tags unique to this process while staying
// deterministic for one request, as Kamailio's sl tag is.
var tagPrefix = func() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime64
	}
	return h
}

// ErrNoReplier is returned when a message has no way back to its sender.
var ErrNoReplier = errors.New("message has no reply path")

// LocalToTag returns the To-tag this proxy uses in every local reply to the
// request: the same for all replies to it (RFC 3261 §8.2.6.2).
func (m *Msg) LocalToTag() string {
	if m.ToTag != "" {
		return m.ToTag
	}
	// FNV-1a 64 of Call-ID, From tag, top Via branch and CSeq number, as
	// hash/fnv computes it, without its allocations.
	h := uint64(fnvOffset64)
	h = fnvString(h, m.CallID())
	if f := m.Req.From(); f != nil {
		t, _ := f.Params.Get("tag")
		h = fnvString(h, t)
	}
	if v := m.Req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		h = fnvString(h, b)
	}
	if cs := m.Req.CSeq(); cs != nil {
		var nb [20]byte
		for _, c := range strconv.AppendUint(nb[:0], uint64(cs.SeqNo), 10) {
			h = (h ^ uint64(c)) * fnvPrime64
		}
	}
	var buf [64]byte
	b := append(append(buf[:0], tagPrefix...), '-')
	m.ToTag = string(strconv.AppendUint(b, h, 16))
	return m.ToTag
}

// BuildReply builds a local reply to request m, as Kamailio's
// build_res_buf_from_sip_req: Vias (the top one with received/rport per
// RFC 3261 §18.2.1 and RFC 3581), From, To (with a local tag from 180 on),
// Call-ID, CSeq, Record-Route for 18x/2xx, the hdr.append_to_reply headers
// and a Server header.
func (m *Msg) BuildReply(code int, reason string) *sip.Response {
	req := m.Req
	res := sip.NewResponse(code, reason)
	res.SipVersion = "SIP/2.0"
	first := true
	for _, h := range req.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		if first {
			v = v.Clone()
			m.fixTopVia(v)
			first = false
		}
		res.AppendHeader(v)
	}
	if h := req.From(); h != nil {
		res.AppendHeader(sip.HeaderClone(h))
	}
	if h := req.To(); h != nil {
		to := sip.HeaderClone(h).(*sip.ToHeader)
		if code >= 180 && !to.Params.Has("tag") {
			to.Params = to.Params.Clone()
			to.Params.Add("tag", m.LocalToTag())
		}
		res.AppendHeader(to)
	}
	if h := req.CallID(); h != nil {
		res.AppendHeader(sip.HeaderClone(h))
	}
	if h := req.CSeq(); h != nil {
		res.AppendHeader(sip.HeaderClone(h))
	}
	if (code >= 180 && code < 300) && req.Method != sip.REGISTER {
		for _, h := range req.GetHeaders("Record-Route") {
			res.AppendHeader(sip.HeaderClone(h))
		}
	}
	for _, raw := range m.ReplyHdrs {
		for _, h := range ParseRawHeaders(raw) {
			res.AppendHeader(h)
		}
	}
	if ServerHeader != "" {
		res.AppendHeader(sip.NewHeader("Server", ServerHeader))
	}
	res.SetBody(nil) // adds Content-Length: 0
	res.SetTransport(req.Transport())
	return res
}

// fixTopVia adds received= when the sent-by host differs from the source IP
// and fills rport= when the client asked for it or force_rport was called.
func (m *Msg) fixTopVia(v *sip.ViaHeader) {
	if m.SrcIP == "" {
		return
	}
	rp, hasRport := v.Params.Get("rport")
	needRecv := v.Host != m.SrcIP && strings.Trim(v.Host, "[]") != m.SrcIP
	if !needRecv && !(hasRport && rp == "") && !m.ForceRport {
		return
	}
	v.Params = v.Params.Clone()
	if needRecv || (hasRport && rp == "") || m.ForceRport {
		v.Params.Remove("received")
		v.Params.Add("received", m.SrcIP)
	}
	if (hasRport && rp == "") || m.ForceRport {
		v.Params.Remove("rport")
		v.Params.Add("rport", strconv.Itoa(m.SrcPort))
	}
}

// SendReply sends a local reply to request m and counts it.
func (m *Msg) SendReply(res *sip.Response) error {
	if m.Replier == nil {
		return ErrNoReplier
	}
	if err := m.Replier.SendReply(m, res); err != nil {
		return err
	}
	m.Replied++
	return nil
}

// Reply builds and sends a local reply (stateless).
func (m *Msg) Reply(code int, reason string) error {
	if m.Req == nil {
		return errors.New("cannot reply to a reply")
	}
	return m.SendReply(m.BuildReply(code, reason))
}

// ParseRawHeaders parses "Name: value\r\n" lines (as given to
// hdr.append) into headers. Lines without a colon are skipped.
func ParseRawHeaders(raw string) []sip.Header {
	var out []sip.Header
	for _, line := range strings.Split(strings.ReplaceAll(raw, "\r\n", "\n"), "\n") {
		if line == "" {
			continue
		}
		i := strings.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		out = append(out, sip.NewHeader(strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])))
	}
	return out
}
