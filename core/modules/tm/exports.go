package tm

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

func ri(i int) val.Value { return val.OfInt(int64(i)) }

// Exports is the KEMI table of tm and tmx.
func (m *Module) Exports() []kemi.Export {
	onName := func(set func(tx *Tx, p *pending, n string)) kemi.Func {
		return func(c *kemi.Ctx, a []val.Value) val.Value {
			tx := m.txOf(c)
			set(tx, pendingOf(c), a[0].S)
			return ri(1)
		}
	}
	return []kemi.Export{
		{Module: "tm", Name: "t_relay", Ret: kemi.RInt, Doc: "Relay the request statefully to $du or the R-URI, forking to every branch.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return ri(m.relay(c, "", "", 0)) }},
		{Module: "tm", Name: "t_relay_to_proto", Params: kemi.S(1), Ret: kemi.RInt, Doc: "Relay statefully forcing the transport.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return ri(m.relay(c, strings.ToLower(a[0].S), "", 0)) }},
		{Module: "tm", Name: "t_relay_to_proto_addr", Params: kemi.P("ssi"), Ret: kemi.RInt, Doc: "Relay statefully to proto, host and port.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ri(m.relay(c, strings.ToLower(a[0].S), a[1].S, int(a[2].I)))
			}},
		{Module: "tm", Name: "t_relay_to_flags", Params: kemi.I(1), Ret: kemi.RInt, Doc: "Relay statefully (flags accepted, ignored).",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return ri(m.relay(c, "", "", 0)) }},
		{Module: "tm", Name: "t_on_branch", Params: kemi.S(1), Ret: kemi.RInt, Doc: "Name the branch route callback.",
			Fn: onName(func(tx *Tx, p *pending, n string) {
				if tx != nil {
					tx.onBranch = n
				}
				p.onBranch = n
			})},
		{Module: "tm", Name: "t_on_failure", Params: kemi.S(1), Ret: kemi.RInt, Doc: "Name the failure route callback.",
			Fn: onName(func(tx *Tx, p *pending, n string) {
				if tx != nil {
					tx.onFailure = n
				}
				p.onFailure = n
			})},
		{Module: "tm", Name: "t_on_reply", Params: kemi.S(1), Ret: kemi.RInt, Doc: "Name the onreply route callback.",
			Fn: onName(func(tx *Tx, p *pending, n string) {
				if tx != nil {
					tx.onReply = n
				}
				p.onReply = n
			})},
		{Module: "tm", Name: "t_on_branch_failure", Params: kemi.S(1), Ret: kemi.RInt, Doc: "Name the branch failure route callback.",
			Fn: onName(func(tx *Tx, p *pending, n string) {
				if tx != nil {
					tx.onBranchFailure = n
				}
				p.onBranchFailure = n
			})},
		{Module: "tm", Name: "t_is_set", Params: kemi.S(1), Ret: kemi.RInt, Doc: "1 if branch_route, failure_route or onreply_route is set, else -1.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				var b, f, o string
				if tx := m.txOf(c); tx != nil {
					b, f, o = tx.onBranch, tx.onFailure, tx.onReply
				} else if p, ok := c.Msg.Ext["tm.pending"].(*pending); ok {
					b, f, o = p.onBranch, p.onFailure, p.onReply
				}
				set := ""
				if s := a[0].S; s != "" {
					switch s[0] {
					case 'b':
						set = b
					case 'f':
						set = f
					case 'o':
						set = o
					}
				}
				if set != "" {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_check_trans", Ret: kemi.RInt, Doc: "Match the message to a transaction (0: retransmission absorbed / ACK consumed).",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return ri(m.checkTrans(c)) }},
		{Module: "tm", Name: "t_lookup_request", Ret: kemi.RInt, Doc: "1 if the request belongs to a transaction, else -1.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if c.Msg.Req != nil && m.lookup(c.Msg.Req) != nil {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_lookup_cancel", Ret: kemi.RInt, Doc: "1 if the CANCEL matches an INVITE transaction, else -1.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if c.Msg.Req != nil && c.Msg.Req.Method == sip.CANCEL && m.lookupInvite(c.Msg.Req) != nil {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_newtran", Ret: kemi.RInt, Doc: "Create the server transaction (0 for a retransmission).",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if c.Msg.Req == nil || c.Msg.Faked {
					return ri(-1)
				}
				if c.Msg.Req.Method == sip.ACK {
					return ri(1)
				}
				if m.txOf(c) != nil {
					return ri(EScript)
				}
				tx, created := m.newTx(c)
				if !created {
					tx.retransmitReply()
					return ri(0)
				}
				return ri(1)
			}},
		{Module: "tm", Name: "t_reply", Params: kemi.P("is"), Ret: kemi.RInt, Doc: "Reply statefully (-1 without a transaction).",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				tx := m.txOf(c)
				if tx == nil {
					return ri(-1)
				}
				return ri(tx.Reply(int(a[0].I), a[1].S))
			}},
		{Module: "tm", Name: "t_send_reply", Params: kemi.P("is"), Ret: kemi.RInt, Doc: "Reply statefully, creating the transaction if needed.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if c.Msg.Req == nil || c.Msg.Req.Method == sip.ACK {
					return ri(-1)
				}
				tx := m.txOf(c)
				if tx == nil {
					var created bool
					tx, created = m.newTx(c)
					if !created {
						tx.retransmitReply()
						return ri(0)
					}
				}
				return ri(tx.Reply(int(a[0].I), a[1].S))
			}},
		{Module: "tm", Name: "t_retransmit_reply", Ret: kemi.RInt, Doc: "Resend the last reply of the transaction.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				tx := m.txOf(c)
				if tx == nil || tx.lastReply == nil {
					return ri(-1)
				}
				tx.retransmitReply()
				return ri(1)
			}},
		{Module: "tm", Name: "t_release", Ret: kemi.RInt, Doc: "Release the transaction.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				tx := m.txOf(c)
				if tx == nil {
					return ri(-1)
				}
				tx.release()
				return ri(1)
			}},
		{Module: "tm", Name: "t_is_canceled", Ret: kemi.RInt, Doc: "1 if a CANCEL hit the transaction, else -1.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if tx := m.txOf(c); tx != nil && tx.canceled {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_is_expired", Ret: kemi.RInt, Doc: "1 if the transaction ended, -1 if not, -2 without one.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				tx := m.txOf(c)
				if tx == nil {
					return ri(-2)
				}
				if tx.done {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_set_fr", Params: kemi.I(2), Ret: kemi.RInt, Doc: "Set fr_inv_timer and fr_timer (ms) for this transaction.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				m.setFr(c, a[0].I, a[1].I)
				return ri(1)
			}},
		{Module: "tm", Name: "t_set_fr_inv", Params: kemi.I(1), Ret: kemi.RInt, Doc: "Set fr_inv_timer (ms) for this transaction.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				m.setFr(c, a[0].I, 0)
				return ri(1)
			}},
		{Module: "tm", Name: "t_reset_fr", Ret: kemi.RInt, Doc: "Reset the transaction's timers to the module defaults.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				m.setFr(c, int64(m.cfg.FrInvTimer), int64(m.cfg.FrTimer))
				return ri(1)
			}},
		{Module: "tm", Name: "t_set_auto_inv_100", Params: kemi.I(1), Ret: kemi.RInt, Doc: "Accepted; the module setting applies.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return ri(1) }},
		{Module: "tm", Name: "t_get_status_code", Ret: kemi.RInt, Doc: "Status code of the transaction's final reply, or -1.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				tx := m.txOf(c)
				if tx == nil {
					return ri(-1)
				}
				if tx.final {
					return ri(tx.finalCode)
				}
				return ri(0)
			}},
		{Module: "tm", Name: "t_get_branch_index", Ret: kemi.RInt, Doc: "Index of the current branch, or -1.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return ri(c.BranchIdx) }},
		{Module: "tm", Name: "t_branch_timeout", Ret: kemi.RInt, Doc: "1 in a failure route if the winning branch timed out.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if b := m.curBranch(c); b != nil && b.timedOut {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_branch_replied", Ret: kemi.RInt, Doc: "1 in a failure route if the winning branch got a reply.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if b := m.curBranch(c); b != nil && (b.provisonal || (b.reply != nil && !b.timedOut)) {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_any_timeout", Ret: kemi.RInt, Doc: "1 if any branch timed out.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if tx := m.txOf(c); tx != nil {
					for _, b := range tx.branches {
						if b.timedOut {
							return ri(1)
						}
					}
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_any_replied", Ret: kemi.RInt, Doc: "1 if any branch got a reply.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if tx := m.txOf(c); tx != nil {
					for _, b := range tx.branches {
						if b.provisonal || (b.reply != nil && !b.timedOut) {
							return ri(1)
						}
					}
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_check_status", Params: kemi.S(1), Ret: kemi.RInt, Doc: "1 if the reply code being processed matches the regex.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				code := m.replyCode(c)
				re, err := regexp.Compile(a[0].S)
				if err != nil || code <= 0 {
					return ri(-1)
				}
				if re.MatchString(strconv.Itoa(code)) {
					return ri(1)
				}
				return ri(-1)
			}},
		{Module: "tm", Name: "t_grep_status", Params: kemi.I(1), Ret: kemi.RInt, Doc: "1 if some branch got a reply with that code.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				if tx := m.txOf(c); tx != nil {
					for _, b := range tx.branches {
						if b.finalCode == int(a[0].I) {
							return ri(1)
						}
					}
				}
				return ri(-1)
			}},
		{Module: "tmx", Name: "t_precheck_trans", Ret: kemi.RInt, Doc: "1 if another worker is already handling this request, else -1.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return ri(m.precheckTrans(c)) }},
		{Module: "tmx", Name: "t_is_branch_route", Ret: kemi.RInt, Doc: "1 inside a branch route.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return isRoute(c, kemi.RouteBranch) }},
		{Module: "tmx", Name: "t_is_failure_route", Ret: kemi.RInt, Doc: "1 inside a failure route.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return isRoute(c, kemi.RouteFailure) }},
		{Module: "tmx", Name: "t_is_reply_route", Ret: kemi.RInt, Doc: "1 inside a tm onreply route.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return isRoute(c, kemi.RouteTMReply) }},
		{Module: "tmx", Name: "t_is_request_route", Ret: kemi.RInt, Doc: "1 inside the request route.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return isRoute(c, kemi.RouteRequest) }},
		{Module: "tmx", Name: "t_cancel_branches", Params: kemi.S(1), Ret: kemi.RInt, Doc: "Cancel pending branches: all, others or this.",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				tx := m.txOf(c)
				if tx == nil {
					return ri(-1)
				}
				for _, b := range tx.branches {
					if a[0].S == "others" && b.idx == c.BranchIdx || a[0].S == "this" && b.idx != c.BranchIdx {
						continue
					}
					m.sendCancel(b, "")
				}
				return ri(1)
			}},
	}
}

func isRoute(c *kemi.Ctx, r kemi.RouteType) val.Value {
	if c.Route == r {
		return ri(1)
	}
	return ri(-1)
}

func (m *Module) setFr(c *kemi.Ctx, inv, fr int64) {
	p := pendingOf(c)
	if inv > 0 {
		p.frInv = time.Duration(inv) * time.Millisecond
	}
	if fr > 0 {
		p.fr = time.Duration(fr) * time.Millisecond
	}
	if tx := m.txOf(c); tx != nil {
		if inv > 0 {
			tx.frInvTimer = p.frInv
		}
		if fr > 0 {
			tx.frTimer = p.fr
		}
	}
}

func (m *Module) curBranch(c *kemi.Ctx) *branch {
	tx := m.txOf(c)
	if tx == nil || c.BranchIdx < 0 || c.BranchIdx >= len(tx.branches) {
		return nil
	}
	return tx.branches[c.BranchIdx]
}

func (m *Module) replyCode(c *kemi.Ctx) int {
	if c.Msg != nil && c.Msg.Res != nil {
		return c.Msg.Res.StatusCode
	}
	if c.Reply != nil && c.Reply.Res != nil {
		return c.Reply.Res.StatusCode
	}
	if b := m.curBranch(c); b != nil {
		return b.finalCode
	}
	return 0
}

// checkTrans implements t_check_trans (SPEC §9.3).
func (m *Module) checkTrans(c *kemi.Ctx) int {
	switch c.Route {
	case kemi.RouteBranch, kemi.RouteFailure, kemi.RouteTMReply, kemi.RouteBranchFailure:
		return 1
	}
	msg := c.Msg
	if msg.Res != nil {
		v := msg.Res.Via()
		if v == nil {
			return -1
		}
		id, _ := v.Params.Get("branch")
		m.mu.Lock()
		b := m.client[id]
		m.mu.Unlock()
		if b != nil {
			c.BranchIdx = b.idx
			return 1
		}
		return -1
	}
	if msg.Req == nil || msg.Faked {
		return -1
	}
	switch msg.Req.Method {
	case sip.CANCEL:
		if m.lookupInvite(msg.Req) != nil {
			return 1
		}
		return -1
	case sip.ACK:
		if m.HandleACK(msg.Req) {
			return 0
		}
		return -1
	}
	if tx := m.lookup(msg.Req); tx != nil && tx.Req != msg {
		tx.retransmitReply()
		return 0
	}
	return -1
}

// precheckTrans implements tmx.t_precheck_trans: with Call-ID affinity a
// racing copy can only come from the same worker after the first one
// finished, so this mostly returns -1, as it should.
func (m *Module) precheckTrans(c *kemi.Ctx) int {
	req := c.Msg.Req
	if req == nil || req.Method == sip.ACK || req.Method == sip.CANCEL {
		return -1
	}
	var ft, br string
	if f := req.From(); f != nil {
		ft, _ = f.Params.Get("tag")
	}
	if v := req.Via(); v != nil {
		br, _ = v.Params.Get("branch")
	}
	var cs uint32
	if h := req.CSeq(); h != nil {
		cs = h.SeqNo
	}
	k := c.Msg.CallID() + "|" + ft + "|" + strconv.FormatUint(uint64(cs), 10) + "|" + br
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.precheck[k] > 0 {
		return 1
	}
	m.precheck[k]++
	if c.Msg.Ext == nil {
		c.Msg.Ext = map[string]any{}
	}
	c.Msg.Ext["tm.precheck"] = k
	return -1
}

func init() {
	pv.Register("T_reply_code", &pv.Class{Get: func(c *kemi.Ctx, s *pv.Spec, inner string) (val.Value, error) {
		if c.Reply != nil && c.Reply.Res != nil {
			return val.OfInt(int64(c.Reply.Res.StatusCode)), nil
		}
		if tx, ok := c.Tx.(*Tx); ok && tx != nil {
			if b := tx.best(); b != nil && !tx.final {
				return val.OfInt(int64(b.finalCode)), nil
			}
			return val.OfInt(int64(tx.finalCode)), nil
		}
		return val.OfInt(0), nil
	}})
}
