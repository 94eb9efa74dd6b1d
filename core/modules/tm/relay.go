package tm

import (
	"errors"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// target is where a branch goes.
type target struct {
	uri, dst string
	flags    uint32
	path     string
	socket   string
}

var errNoAddr = errors.New("unresolvable destination")

// nextHop turns the branch's $du (or URI) into proto, host, port.
func nextHop(t target, force string) (proto, host string, port int, err error) {
	raw := t.dst
	if raw == "" {
		raw = t.uri
	}
	var u sip.Uri
	if err := sip.ParseUri(raw, &u); err != nil {
		return "", "", 0, err
	}
	proto = "udp"
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" {
		proto = strings.ToLower(tp)
	} else if strings.EqualFold(u.Scheme, "sips") {
		proto = "tls"
	}
	if force != "" {
		proto = force
	}
	host = strings.Trim(u.Host, "[]")
	port = u.Port
	if port == 0 {
		port = 5060
		if proto == "tls" {
			port = 5061
		}
	}
	if net.ParseIP(host) == nil {
		addrs, lerr := net.LookupHost(host)
		if lerr != nil || len(addrs) == 0 {
			return "", "", 0, errNoAddr
		}
		host = addrs[0]
	}
	return proto, host, port, nil
}

// targets lists branch 0 (the current R-URI) and every extra branch.
func targets(msg *sipmsg.Msg) []target {
	ts := []target{{uri: msg.RURI(), dst: msg.DstURI, flags: msg.BFlags, path: msg.Path, socket: msg.SendSock}}
	for _, b := range msg.Branches {
		ts = append(ts, target{uri: b.URI, dst: b.DstURI, flags: b.Flags, path: b.Path, socket: b.Socket})
	}
	return ts
}

// relay forwards c's request statefully (t_relay). forceProto/addr
// override the next hop (t_relay_to_proto_addr).
func (m *Module) relay(c *kemi.Ctx, forceProto, forceHost string, forcePort int) int {
	msg := c.Msg
	if msg.Req == nil {
		return EUnspec
	}
	if msg.Req.Method == sip.ACK {
		// The ACK of a negative final we sent is hop-by-hop: tm consumes
		// it even without t_check_trans (Kamailio's t_newtran returns 0
		// for it, and t_relay with it); only an end-to-end ACK goes on.
		if m.HandleACK(msg.Req) {
			return 0
		}
		return m.forwardACK(c, forceProto, forceHost, forcePort)
	}
	if msg.Req.Method == sip.CANCEL {
		return m.relayCancel(c)
	}
	tx := m.txOf(c)
	inFailure := c.Route == kemi.RouteFailure
	if tx == nil {
		var created bool
		tx, created = m.newTx(c)
		if !created {
			// a retransmission: resend the last reply
			tx.retransmitReply()
			return 0
		}
	}
	c.Tx = tx
	if tx.isInvite && !inFailure && tx.lastReply == nil && m.cfg.AutoInv100 != 0 && !tx.local100 {
		tx.local100 = true
		res := msg.BuildReply(100, m.cfg.Inv100Reason)
		tx.sendUpstream(res, false)
	}
	ts := targets(msg)
	sent, dropped, firstErr := 0, 0, 0
	for _, t := range ts {
		rc := m.sendBranch(c, tx, t, forceProto, forceHost, forcePort)
		switch {
		case rc > 0:
			sent++
		case rc == ECfg:
			dropped++
		default:
			if firstErr == 0 {
				firstErr = rc
			}
		}
	}
	msg.ClearBranches()
	if sent == 0 {
		rc := firstErr
		if rc == 0 {
			rc = ECfg
		}
		msg.LastErr = rc
		if !inFailure && tx.lastReply == nil || tx.lastReply != nil && tx.lastReply.StatusCode < 200 {
			tx.delayedErr = rc
		}
		if !inFailure && len(tx.branches) == 0 {
			// nothing pending: the transaction ends with the delayed reply
		}
		return rc
	}
	msg.Relayed = true
	return 1
}

// sendBranch builds, runs the branch route for and sends one branch.
func (m *Module) sendBranch(c *kemi.Ctx, tx *Tx, t target, forceProto, forceHost string, forcePort int) int {
	idx := tx.nbranch
	// The branch route sees a view of the request with this branch's URI.
	view := *c.Msg
	view.NewURI = ""
	if t.uri != c.Msg.Req.Recipient.String() {
		_ = view.SetRURI(t.uri)
	}
	view.DstURI = t.dst
	view.BFlags = t.flags
	view.Branches = nil
	view.Edits = append([]sipmsg.HeaderEdit(nil), c.Msg.Edits...)
	view.Ext = maps.Clone(c.Msg.Ext) // per-branch module state (rr params)
	if tx.onBranch != "" && c.Call != nil {
		bc := c.Sub(&view, kemi.RouteBranch)
		bc.BranchIdx = idx
		bc.Tx = tx
		c.Call(bc, tx.onBranch, "")
		if bc.Drop {
			return ECfg
		}
	}
	t.uri, t.dst, t.flags = view.RURI(), view.DstURI, view.BFlags
	proto, host, port, err := nextHop(t, forceProto)
	if forceHost != "" {
		host, port = forceHost, forcePort
		if port == 0 {
			port = 5060
		}
	}
	if err != nil {
		c.Log.Warn().Err(err).Str("uri", t.uri).Msg("t_relay: bad destination")
		if errors.Is(err, errNoAddr) {
			return EBadAddress
		}
		return EBadURI
	}
	lip, lport, ok := m.env.LocalAddr(proto)
	if !ok {
		c.Log.Warn().Str("proto", proto).Msg("t_relay: no socket for this transport")
		return ESend
	}
	out := c.Msg.Req.Clone()
	view.ApplyEdits(out)
	var ru sip.Uri
	if err := sip.ParseUri(t.uri, &ru); err != nil {
		return EBadURI
	}
	out.Recipient = ru
	if t.path != "" {
		for _, p := range strings.Split(t.path, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out.PrependHeader(sip.NewHeader("Route", p))
			}
		}
	}
	fixReceived(out, c.Msg)
	b := &branch{tx: tx, idx: idx, proto: proto, host: host, port: port, uri: t.uri, flags: t.flags}
	b.id = "z9hG4bK" + tx.id + "." + strconv.Itoa(idx)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(proto),
		Host: lip, Port: lport, Params: sip.HeaderParams{{K: "branch", V: b.id}}}
	out.PrependHeader(via)
	for _, h := range m.onForward {
		h(c.Sub(&view, c.Route), out, c.Msg, proto, lip, lport)
	}
	out.SetTransport(strings.ToUpper(proto))
	b.req = out
	tx.nbranch++
	tx.branches = append(tx.branches, b)
	m.mu.Lock()
	m.client[b.id] = b
	m.mu.Unlock()
	m.runOnsend(c, out)
	if err := m.env.SendTo(out, proto, host, port); err != nil {
		c.Log.Warn().Err(err).Str("dst", sipmsg.JoinHostPort(host, port)).Msg("t_relay: send failed")
		b.finalCode = 477
		b.reply = nil
		return ESend
	}
	m.armBranch(b)
	return 1
}

// fixReceived adds received/rport to the request's top Via as RFC 3261
// §18.2.1 and RFC 3581 ask, so replies find their way back.
func fixReceived(out *sip.Request, in *sipmsg.Msg) {
	v := out.Via()
	if v == nil || in.SrcIP == "" {
		return
	}
	rp, hasRport := v.Params.Get("rport")
	needRecv := strings.Trim(v.Host, "[]") != in.SrcIP
	if !needRecv && !(hasRport && rp == "") && !in.ForceRport {
		return
	}
	nv := v.Clone()
	if needRecv || hasRport || in.ForceRport {
		nv.Params.Remove("received")
		nv.Params.Add("received", in.SrcIP)
	}
	if (hasRport && rp == "") || in.ForceRport {
		nv.Params.Remove("rport")
		nv.Params.Add("rport", strconv.Itoa(in.SrcPort))
	}
	*v = *nv
}

func (m *Module) runOnsend(c *kemi.Ctx, out *sip.Request) {
	if m.onsend == "" || c.Call == nil {
		return
	}
	om := sipmsg.NewRequest(out)
	om.Proto, om.SrcIP, om.SrcPort, om.DstIP, om.DstPort = c.Msg.Proto, c.Msg.SrcIP, c.Msg.SrcPort, c.Msg.DstIP, c.Msg.DstPort
	oc := c.Sub(om, kemi.RouteOnSend)
	c.Call(oc, m.onsend, "")
}

// armBranch starts retransmissions (UDP) and the final-reply timer.
func (m *Module) armBranch(b *branch) {
	tx := b.tx
	if b.proto == "udp" {
		b.retrIntv = m.t1()
		b.scheduleRetr()
	}
	d := tx.frTimer
	b.frTimer = tx.after(d, func(call kemi.CallFunc, ws *kemi.WorkerState) { b.timeout(call, ws) })
}

func (b *branch) scheduleRetr() {
	tx := b.tx
	b.retrTimer = time.AfterFunc(b.retrIntv, func() {
		tx.mod.env.Exec(tx.worker, func(call kemi.CallFunc, ws *kemi.WorkerState) {
			if tx.done || b.finalCode >= 200 || (tx.isInvite && b.provisonal) {
				return
			}
			_ = tx.mod.env.SendTo(b.req, b.proto, b.host, b.port)
			b.retrIntv *= 2
			if !tx.isInvite && b.retrIntv > tx.mod.t2() {
				b.retrIntv = tx.mod.t2()
			}
			if b.provisonal && !tx.isInvite {
				b.retrIntv = tx.mod.t2()
			}
			b.scheduleRetr()
		})
	})
}

// timeout fires fr_timer / fr_inv_timer: the branch ends with a local 408.
func (b *branch) timeout(call kemi.CallFunc, ws *kemi.WorkerState) {
	tx := b.tx
	if tx.done || b.finalCode >= 200 {
		return
	}
	b.timedOut = true
	if b.retrTimer != nil {
		b.retrTimer.Stop()
	}
	if tx.isInvite && b.provisonal && !b.cancelled {
		tx.mod.sendCancel(b, "")
	}
	res := sip.NewResponse(408, "Request Timeout")
	b.finalCode = 408
	b.reply = res
	tx.mod.branchFinal(tx, b, call, ws)
}

// forwardACK forwards an ACK statelessly (end-to-end ACK of a 2xx).
func (m *Module) forwardACK(c *kemi.Ctx, forceProto, forceHost string, forcePort int) int {
	msg := c.Msg
	t := targets(msg)[0]
	proto, host, port, err := nextHop(t, forceProto)
	if forceHost != "" {
		host, port = forceHost, forcePort
	}
	if err != nil {
		return EBadURI
	}
	lip, lport, ok := m.env.LocalAddr(proto)
	if !ok {
		return ESend
	}
	out := msg.Req.Clone()
	msg.ApplyEdits(out)
	var ru sip.Uri
	if sip.ParseUri(t.uri, &ru) == nil {
		out.Recipient = ru
	}
	fixReceived(out, msg)
	id := "z9hG4bK" + m.idPrefix + "a" + strconv.FormatUint(m.seq.Add(1), 36)
	out.PrependHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(proto),
		Host: lip, Port: lport, Params: sip.HeaderParams{{K: "branch", V: id}}})
	for _, h := range m.onForward {
		h(c, out, msg, proto, lip, lport)
	}
	m.runOnsend(c, out)
	if err := m.env.SendTo(out, proto, host, port); err != nil {
		return ESend
	}
	msg.Relayed = true
	return 1
}

// sendCancel sends CANCEL on a branch (RFC 3261 §9.1): same R-URI,
// Call-ID, From, To, CSeq number and the branch's single Via and Routes.
//
// A branch without any provisional reply yet is only marked: its CANCEL
// goes out with the first provisional (RFC 3261 §9.1; Kamailio's default
// cancel_b_method 1), with the reason given now.
func (m *Module) sendCancel(b *branch, reason string) {
	if b.cancelled || b.finalCode >= 200 {
		return
	}
	if !b.provisonal {
		if !b.wantCancel {
			b.wantCancel, b.cancelReason = true, reason
		}
		return
	}
	if b.wantCancel && reason == "" {
		reason = b.cancelReason
	}
	b.cancelled = true
	r := b.req
	cancel := sip.NewRequest(sip.CANCEL, r.Recipient)
	cancel.SipVersion = r.SipVersion
	if v := r.Via(); v != nil {
		cancel.AppendHeader(v.Clone())
	}
	for _, h := range r.GetHeaders("Route") {
		cancel.AppendHeader(sip.HeaderClone(h))
	}
	for _, n := range []string{"From", "To", "Call-ID"} {
		if h := r.GetHeader(n); h != nil {
			cancel.AppendHeader(sip.HeaderClone(h))
		}
	}
	if cs := r.CSeq(); cs != nil {
		cancel.AppendHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: sip.CANCEL})
	}
	cancel.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	if reason != "" {
		cancel.AppendHeader(sip.NewHeader("Reason", reason))
	}
	cancel.SetBody(nil)
	cancel.SetTransport(strings.ToUpper(b.proto))
	b.cancelReq = cancel
	if err := m.env.SendTo(cancel, b.proto, b.host, b.port); err != nil {
		m.log.Warn().Err(err).Msg("CANCEL not sent")
	}
	if b.proto == "udp" {
		// the CANCEL is a non-INVITE client transaction: Timer E until
		// its 200 or the INVITE's final reply arrives
		b.cancelIntv = m.t1()
		b.scheduleCancelRetr()
	}
}

func (b *branch) scheduleCancelRetr() {
	tx := b.tx
	b.cancelRetr = time.AfterFunc(b.cancelIntv, func() {
		tx.mod.env.Exec(tx.worker, func(call kemi.CallFunc, ws *kemi.WorkerState) {
			if tx.done || b.finalCode >= 200 || b.cancelAnswered {
				return
			}
			b.resendCancel()
			if b.cancelIntv *= 2; b.cancelIntv > tx.mod.t2() {
				b.cancelIntv = tx.mod.t2()
			}
			b.scheduleCancelRetr()
		})
	})
}

// resendCancel sends the branch's CANCEL again.
func (b *branch) resendCancel() {
	if b.cancelReq != nil {
		_ = b.tx.mod.env.SendTo(b.cancelReq, b.proto, b.host, b.port)
	}
}

// ackBranch sends the hop-by-hop ACK for a non-2xx final on an INVITE
// branch (RFC 3261 §17.1.1.3): one Via, the branch's Routes, the reply's To.
func (m *Module) ackBranch(b *branch, res *sip.Response) {
	r := b.req
	ack := sip.NewRequest(sip.ACK, r.Recipient)
	ack.SipVersion = r.SipVersion
	if v := r.Via(); v != nil {
		ack.AppendHeader(v.Clone())
	}
	for _, h := range r.GetHeaders("Route") {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := r.From(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := res.To(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	} else if h := r.To(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := r.CallID(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if cs := r.CSeq(); cs != nil {
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: sip.ACK})
	}
	ack.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	ack.SetBody(nil)
	ack.SetTransport(strings.ToUpper(b.proto))
	_ = m.env.SendTo(ack, b.proto, b.host, b.port)
}

// relayCancel answers a CANCEL and cancels the INVITE's pending branches
// (RFC 3261 §16.10). The 487 upstream comes from the branches' replies, or
// from tm when they time out.
func (m *Module) relayCancel(c *kemi.Ctx) int {
	inv := m.lookupInvite(c.Msg.Req)
	if inv == nil {
		return EUnspec
	}
	_ = c.Msg.Reply(200, "canceling")
	inv.canceled = true
	reason := ""
	if r, ok := c.Msg.HeaderValue("Reason"); ok {
		reason = r
	}
	for _, b := range inv.branches {
		if b.finalCode < 200 {
			m.sendCancel(b, reason)
		}
	}
	c.Msg.Relayed = true
	return 1
}
