package tm

import (
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// HandleReply processes a received reply on its transaction's worker,
// after the core reply route. It returns false when the reply matches no
// transaction (the proxy then forwards it statelessly).
func (m *Module) HandleReply(c *kemi.Ctx) bool {
	res := c.Msg.Res
	v := res.Via()
	if v == nil {
		return false
	}
	id, _ := v.Params.Get("branch")
	m.mu.Lock()
	b := m.client[id]
	m.mu.Unlock()
	if b == nil {
		return false
	}
	tx := b.tx
	if tx.done {
		return true
	}
	code := res.StatusCode
	if cs := res.CSeq(); cs != nil && cs.MethodName == sip.CANCEL {
		if code >= 200 {
			b.cancelAnswered = true
			if b.cancelRetr != nil {
				b.cancelRetr.Stop()
			}
		}
		return true // the reply to our CANCEL ends here
	}
	if b.finalCode >= 200 {
		// a retransmitted final: re-ACK non-2xx, forward 2xx again (RFC 3261 §13.3.1.4)
		if code >= 300 && tx.isInvite {
			m.ackBranch(b, res)
		} else if code < 300 && code >= 200 && tx.isInvite {
			tx.relayReply(c, b, res)
		}
		return true
	}
	if code < 200 {
		cancelling := b.cancelled || b.wantCancel || tx.canceled
		if !b.provisonal {
			b.provisonal = true
			if b.retrTimer != nil && tx.isInvite {
				b.retrTimer.Stop()
			}
			if tx.isInvite && !cancelling {
				// fr_inv_timer replaces fr_timer after the first provisional
				if b.frTimer != nil {
					b.frTimer.Stop()
				}
				b.frTimer = tx.after(tx.frInvTimer, func(call kemi.CallFunc, ws *kemi.WorkerState) { b.timeout(call, ws) })
			}
		}
		if cancelling && tx.isInvite {
			// A provisional on a cancelled branch only sends (or resends)
			// the branch's CANCEL: no onreply route, nothing relayed
			// (Kamailio's reply_received, F_RB_CANCELED).
			if b.cancelled {
				b.resendCancel()
			} else {
				m.sendCancel(b, "")
			}
			return true
		}
	}
	// tm onreply route (the transaction's AVPs and flags are visible)
	drop := false
	if tx.onReply != "" && c.Call != nil {
		// Kamailio's reply_received: the transaction's flags, the
		// branch's flags and the AVPs go to the reply's context, and
		// back after the route
		c.Msg.Flags, c.Msg.BFlags, c.Msg.AVPs = tx.Req.Flags, b.flags, tx.Req.AVPs
		rc := tx.ctx(c.Msg, kemi.RouteTMReply, c.Call, c.Worker, b.idx)
		rc.Reply = c.Msg
		c.Call(rc, tx.onReply, "")
		tx.Req.Flags, b.flags, tx.Req.AVPs = c.Msg.Flags, c.Msg.BFlags, c.Msg.AVPs
		drop = rc.Drop
	}
	switch {
	case code < 200:
		if code > 100 && !drop && !tx.final {
			tx.relayReply(c, b, res)
		}
	case code < 300:
		b.finalCode, b.reply = code, res
		b.stopTimers()
		tx.relayReply(c, b, res)
		if tx.isInvite {
			// RFC 3261 §16.7 step 10: cancel every other pending branch
			for _, o := range tx.branches {
				if o != b && o.finalCode < 200 {
					m.sendCancel(o, `SIP;cause=200;text="Call completed elsewhere"`)
				}
			}
		}
		m.maybeFinish(tx)
	default:
		b.finalCode, b.reply = code, res
		b.stopTimers()
		if tx.isInvite {
			m.ackBranch(b, res)
		}
		if code >= 600 && tx.isInvite {
			for _, o := range tx.branches {
				if o != b && o.finalCode < 200 {
					m.sendCancel(o, "")
				}
			}
		}
		m.branchFinal(tx, b, c.Call, c.Worker)
	}
	return true
}

// relayReply forwards a downstream reply upstream without our Via.
func (tx *Tx) relayReply(c *kemi.Ctx, b *branch, res *sip.Response) {
	out := res.Clone()
	out.RemoveHeader("Via") // removes only the top one
	if c != nil && c.Msg != nil && c.Msg.Res == res {
		c.Msg.ApplyEdits(out)
	}
	final := res.StatusCode >= 200
	if final && !tx.final {
		tx.finalUpstream(out)
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		tx.answered = true
	}
	tx.sendUpstream(out, true)
}

// branchFinal handles a branch that ended without 2xx: when every branch is
// final, run the failure route or relay the best reply.
func (m *Module) branchFinal(tx *Tx, b *branch, call kemi.CallFunc, ws *kemi.WorkerState) {
	if tx.onBranchFailure != "" && call != nil {
		fc := tx.ctx(tx.Req, kemi.RouteBranchFailure, call, ws, b.idx)
		if b.reply != nil {
			fc.Reply = sipmsg.NewReply(b.reply)
		}
		call(fc, tx.onBranchFailure, "")
	}
	for _, o := range tx.branches {
		if o.finalCode < 200 {
			return
		}
	}
	if tx.answered || tx.final {
		m.maybeFinish(tx)
		return
	}
	best := tx.best()
	if tx.onFailure != "" && call != nil && best != nil && best.finalCode >= 300 {
		name := tx.onFailure
		tx.onFailure = "" // must be armed again inside the failure route
		nb := len(tx.branches)
		fc := tx.ctx(tx.Req, kemi.RouteFailure, call, ws, best.idx)
		if best.reply != nil {
			fc.Reply = sipmsg.NewReply(best.reply)
		}
		tx.runFailureHooks(fc, best)
		tx.Req.ClearBranches()
		tx.inFailure = true
		call(fc, name, "")
		tx.inFailure = false
		if tx.final {
			m.maybeFinish(tx)
			return
		}
		if len(tx.branches) > nb {
			for _, o := range tx.branches[nb:] {
				if o.finalCode < 200 {
					return // serial forking: wait for the new branches
				}
			}
		}
	}
	if tx.final {
		return
	}
	code := best.finalCode
	var out *sip.Response
	if best.reply != nil && !best.timedOut && best.reply.StatusCode == code && best.reply.Via() != nil {
		out = best.reply.Clone()
		out.RemoveHeader("Via")
		if code == 503 {
			// RFC 3261 §16.7 step 6: a 503 from downstream goes up as 500
			out.StatusCode, out.Reason = 500, "Server Internal Error"
		}
		tx.mergeAuth(out)
	} else {
		if tx.canceled {
			code = 487
		}
		out = tx.Req.BuildReply(code, reasonOf(code))
	}
	if tx.canceled && code < 300 {
		out = tx.Req.BuildReply(487, "Request Terminated")
	}
	tx.finalUpstream(out)
	tx.sendUpstream(out, true)
	m.maybeFinish(tx)
}

func reasonOf(code int) string {
	switch code {
	case 408:
		return "Request Timeout"
	case 487:
		return "Request Terminated"
	case 477:
		return "Unfortunately error on sending to next hop occurred"
	case 500:
		return "Server Internal Error"
	}
	return "Error"
}

// best picks the reply to send upstream (RFC 3261 §16.7 step 6): a 6xx
// wins, else the lowest class; within 4xx, 408 is least preferred.
func (tx *Tx) best() *branch {
	var best *branch
	prio := func(b *branch) int {
		c := b.finalCode
		switch {
		case c >= 600:
			return 0
		case c == 408 || c == 477:
			return 4990
		case c == 503:
			return 5990
		}
		return c*10 + 1
	}
	for _, b := range tx.branches {
		if b.finalCode < 200 {
			continue
		}
		if best == nil || prio(b) < prio(best) {
			best = b
		}
	}
	return best
}

// mergeAuth collects the challenges of every 401/407 branch into out.
func (tx *Tx) mergeAuth(out *sip.Response) {
	if out.StatusCode != 401 && out.StatusCode != 407 {
		return
	}
	seen := map[string]bool{}
	for _, h := range out.Headers() {
		seen[h.Name()+":"+h.Value()] = true
	}
	for _, b := range tx.branches {
		if b.reply == nil || (b.finalCode != 401 && b.finalCode != 407) {
			continue
		}
		for _, n := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
			for _, h := range b.reply.GetHeaders(n) {
				if k := h.Name() + ":" + h.Value(); !seen[k] {
					seen[k] = true
					out.AppendHeader(sip.HeaderClone(h))
				}
			}
		}
	}
}

// finalUpstream records the final reply of the transaction.
func (tx *Tx) finalUpstream(res *sip.Response) {
	if tx.final {
		return
	}
	tx.final = true
	tx.finalCode = res.StatusCode
	m := tx.mod
	switch c := res.StatusCode; {
	case c < 300:
		m.stats.Replied2xx.Add(1)
	case c < 400:
		m.stats.Replied3xx.Add(1)
	case c < 500:
		m.stats.Replied4xx.Add(1)
	case c < 600:
		m.stats.Replied5xx.Add(1)
	default:
		m.stats.Replied6xx.Add(1)
	}
	for _, h := range m.onFinal {
		c := tx.ctx(tx.Req, kemi.RouteNone, nil, nil, -1)
		h(c, tx.Req, res.StatusCode, res.Reason, res)
	}
}

// sendUpstream sends a reply to the request's sender and remembers it
// for retransmissions.
func (tx *Tx) sendUpstream(res *sip.Response, relayed bool) {
	tx.lastReply = res
	if err := tx.Req.Replier.SendReply(tx.Req, res); err != nil {
		tx.mod.log.Warn().Err(err).Int("code", res.StatusCode).Msg("reply not sent upstream")
	}
	tx.Req.Replied++
	if res.StatusCode >= 300 && tx.isInvite && tx.Req.Proto == "udp" {
		tx.armG(tx.mod.t1())
	}
}

// armG retransmits a non-2xx final to INVITE until the ACK (Timer G/H).
func (tx *Tx) armG(d time.Duration) {
	if tx.gTimer != nil {
		tx.gTimer.Stop()
	}
	tx.gTimer = tx.after(d, func(call kemi.CallFunc, ws *kemi.WorkerState) {
		if tx.done || tx.acked || tx.lastReply == nil {
			return
		}
		_ = tx.Req.Replier.SendReply(tx.Req, tx.lastReply)
		nd := d * 2
		if nd > tx.mod.t2() {
			nd = tx.mod.t2()
		}
		tx.armG(nd)
	})
}

// retransmitReply resends the last reply for a retransmitted request.
func (tx *Tx) retransmitReply() {
	if tx.lastReply != nil {
		_ = tx.Req.Replier.SendReply(tx.Req, tx.lastReply)
	}
}

// maybeFinish schedules the release once a final went up and no branch
// is pending (wait_timer keeps it to absorb retransmissions and late 2xx).
func (m *Module) maybeFinish(tx *Tx) {
	if !tx.final {
		return
	}
	for _, b := range tx.branches {
		if b.finalCode < 200 && !b.cancelled {
			// a pending branch: release when it ends or times out
			if !tx.answered {
				return
			}
		}
	}
	if tx.waitTimer != nil {
		return
	}
	wait := time.Duration(m.cfg.WaitTimer) * time.Millisecond
	if tx.isInvite && tx.finalCode >= 300 && tx.Req.Proto == "udp" {
		// Timer H: wait for the ACK at most 64*T1
		if h := 64 * m.t1(); h > wait && !tx.acked {
			wait = h
		}
	}
	tx.waitTimer = tx.after(wait, func(call kemi.CallFunc, ws *kemi.WorkerState) { tx.release() })
}

// Reply sends a local reply statefully (t_reply, sl.send_reply with a
// transaction).
func (tx *Tx) Reply(code int, reason string) int {
	if tx.final && code >= 200 && !(code < 300 && tx.isInvite) {
		return -1
	}
	res := tx.Req.BuildReply(code, reason)
	if code >= 200 {
		tx.finalUpstream(res)
		for _, b := range tx.branches {
			if b.finalCode < 200 {
				tx.mod.sendCancel(b, "")
			}
		}
	}
	tx.sendUpstream(res, false)
	tx.mod.stats.RelayedLocal.Add(1)
	if code >= 200 {
		tx.mod.maybeFinish(tx)
	}
	return 1
}

// AfterRoute runs when a request route returns: a failed t_relay whose
// error was not answered gets tm's delayed error reply (SPEC §9.3).
func (m *Module) AfterRoute(c *kemi.Ctx) {
	if k, ok := c.Msg.Ext["tm.precheck"].(string); ok {
		m.mu.Lock()
		if m.precheck[k]--; m.precheck[k] <= 0 {
			delete(m.precheck, k)
		}
		m.mu.Unlock()
	}
	tx, _ := c.Tx.(*Tx)
	if tx == nil || tx.done {
		return
	}
	if tx.delayedErr != 0 && !tx.final && len(tx.pendingBranches()) == 0 {
		if c.Msg.Replied > 0 && tx.lastReply == nil {
			// the script answered statelessly (sl_reply_error): do not send
			// a second final reply (Kamailio 5.6.3 would)
			tx.final = true
			m.maybeFinish(tx)
			return
		}
		code, reason := errReply(tx.delayedErr)
		tx.Reply(code, reason)
	}
	if len(tx.branches) == 0 && !tx.final && tx.lastReply == nil && tx.delayedErr == 0 {
		// t_newtran without a reply yet: keep it until fr_timer
		tx.waitTimer = tx.after(tx.frTimer, func(call kemi.CallFunc, ws *kemi.WorkerState) {
			if !tx.final {
				tx.Reply(500, "Server Internal Error")
			}
			tx.release()
		})
	}
}

func (tx *Tx) pendingBranches() []*branch {
	var out []*branch
	for _, b := range tx.branches {
		if b.finalCode < 200 {
			out = append(out, b)
		}
	}
	return out
}

func errReply(e int) (int, string) {
	switch e {
	case ECfg:
		return 500, "I'm terribly sorry, server error occurred (6/TM)"
	case EBadAddress:
		return 478, "Unresolvable destination (478/TM)"
	case EBadURI:
		return 479, "Bad URI (479/TM)"
	case ESend:
		return 477, "Unfortunately error on sending to next hop occurred (477/TM)"
	}
	return 500, "I'm terribly sorry, server error occurred (1/TM)"
}

// HandleACK consumes the ACK of a non-2xx final sent upstream. It returns
// true when the ACK matched (t_check_trans returns 0 then).
func (m *Module) HandleACK(req *sip.Request) bool {
	tx := m.lookup(req)
	if tx == nil || !tx.final || tx.finalCode < 300 {
		return false
	}
	if tx.acked {
		return true // a retransmitted ACK
	}
	tx.acked = true
	if tx.gTimer != nil {
		tx.gTimer.Stop()
	}
	// The release was armed with Timer H (64*T1, 32 s by default) when the
	// final went up over UDP; now that the ACK is in, wait_timer is enough
	// (Kamailio puts the transaction on its wait timer on the ACK).
	if tx.waitTimer != nil {
		tx.waitTimer.Stop()
		tx.waitTimer = nil
	}
	m.maybeFinish(tx)
	return true
}

var _ = strings.TrimSpace
