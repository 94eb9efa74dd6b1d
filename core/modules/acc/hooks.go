package acc

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// The hooks below are Kamailio's acc_onreply (TMCB_RESPONSE_OUT),
// on_missed (TMCB_ON_FAILURE) and acc_onack (TMCB_E2EACK_IN). flags are
// the message flags of the transaction's request as they are when the
// event happens (sipmsg.Msg.Flags of the request tm keeps, including what
// failure routes set or reset). c may be nil; its logger is used for the
// records and its message is replaced by req to evaluate the extras.

func (m *Module) accOn(flags uint32) bool {
	return flagOn(flags, m.cfg.LogFlag) || flagOn(flags, m.cfg.DBFlag)
}

func (m *Module) missedOn(flags uint32) bool {
	return flagOn(flags, m.cfg.LogMissedFlag) || flagOn(flags, m.cfg.DBMissedFlag)
}

// skipCancel: CANCEL transactions are accounted only with report_cancels.
func (m *Module) skipCancel(req *sipmsg.Msg) bool {
	return m.cfg.ReportCancels == 0 && req.Method() == "CANCEL"
}

// shouldAccReply is Kamailio's should_acc_reply: a reply >= 300 only with
// failed_transaction_flag (and not filtered); below 300 only with
// log_flag or db_flag, and a provisional one only with early_media and a
// body.
func (m *Module) shouldAccReply(flags uint32, code int, hasBody bool) bool {
	if code >= 300 {
		return flagOn(flags, m.cfg.FailedTransactionFlag) && !m.failedFilter[code]
	}
	if !m.accOn(flags) {
		return false
	}
	if code < 200 && !(m.cfg.EarlyMedia != 0 && hasBody) {
		return false
	}
	return true
}

// OnFinal accounts a transaction when its final reply (code >= 200) goes
// upstream, relayed or local. tm calls it once per transaction. toTag is
// the To tag of that reply ("" takes the request's). In order:
//
//  1. an INVITE answered >= 300 with log_missed_flag / db_missed_flag in
//     flags is a missed call: "ACC: call missed:" is logged
//     (log_missed_flag) and a missed_calls row is written
//     (db_missed_flag); those two flags are then cleared for step 2;
//  2. the transaction is accounted ("ACC: transaction answered:" log line
//     with log_flag, db_table_acc row with db_flag) when the reply is
//     < 300 and log_flag or db_flag is set, or when it is >= 300,
//     failed_transaction_flag is set and the code is not in failed_filter.
//
// CANCEL transactions are skipped unless report_cancels is 1.
func (m *Module) OnFinal(c *kemi.Ctx, req *sipmsg.Msg, flags uint32, code int, reason string, toTag string) {
	if req == nil || req.Req == nil || m.skipCancel(req) {
		return
	}
	if reason == "" {
		reason = ErrorText(code)
	}
	cc := m.ctxFor(c, req)
	if req.Method() == "INVITE" && code >= 300 && m.missedOn(flags) {
		flags = m.missed(cc, req, flags, code, reason, toTag)
	}
	if !m.shouldAccReply(flags, code, false) {
		return
	}
	m.answered(cc, req, flags, code, reason, toTag, TextAnswered)
}

// OnFailure is for tm to call before it runs a failure route of an
// INVITE (Kamailio's TMCB_ON_FAILURE): the failed attempt is reported as
// a missed call when log_missed_flag / db_missed_flag is set, and the
// returned flags have those flags cleared. tm must store them in the
// request, so that the failure route sees them cleared (a script that
// sets them again gets the next failure reported too) and OnFinal does
// not report the same attempt twice.
func (m *Module) OnFailure(c *kemi.Ctx, req *sipmsg.Msg, flags uint32, code int, reason string, toTag string) uint32 {
	if req == nil || req.Req == nil || req.Method() != "INVITE" || !m.missedOn(flags) {
		return flags
	}
	if reason == "" {
		reason = ErrorText(code)
	}
	return m.missed(m.ctxFor(c, req), req, flags, code, reason, toTag)
}

// OnProvisional accounts a provisional reply going upstream: only with
// early_media, log_flag or db_flag, and a reply body (183 with SDP). It
// writes an "ACC: transaction answered:" record like OnFinal's.
func (m *Module) OnProvisional(c *kemi.Ctx, req *sipmsg.Msg, flags uint32, code int, reason string, toTag string, hasBody bool) {
	if req == nil || req.Req == nil || code >= 200 || m.skipCancel(req) {
		return
	}
	if !m.shouldAccReply(flags, code, hasBody) {
		return
	}
	if reason == "" {
		reason = ErrorText(code)
	}
	m.answered(m.ctxFor(c, req), req, flags, code, reason, toTag, TextAnswered)
}

// OnACK accounts the end-to-end ACK of an INVITE transaction that was
// answered with status (report_ack 1, log_flag / db_flag in the INVITE's
// flags): "ACC: request acknowledged:" with the ACK's own values, the
// transaction's status and its standard reason phrase.
func (m *Module) OnACK(c *kemi.Ctx, req, ack *sipmsg.Msg, flags uint32, status int) {
	if m.cfg.ReportAck == 0 || ack == nil || ack.Req == nil || !m.accOn(flags) {
		return
	}
	cc := m.ctxFor(c, ack)
	r := m.newRecord(ack, "", m.upstream(ack))
	if ack.SIP().To() == nil && req != nil {
		if t := req.SIP().To(); t != nil {
			r.toTag, _ = t.Params.Get("tag")
		}
	}
	r.text, r.code, r.reason = TextAcked, strconv.Itoa(status), ErrorText(status)
	m.emit(cc, r, flags, m.cfg.LogFlag, m.cfg.DBFlag, m.cfg.DBTableAcc)
}

// FinalHook adapts OnFinal to tm's final-reply hook: the flags are the
// request's, the To tag is the reply's.
func (m *Module) FinalHook(c *kemi.Ctx, req *sipmsg.Msg, code int, reason string, res *sip.Response) {
	if req == nil {
		return
	}
	toTag := ""
	if res != nil {
		if t := res.To(); t != nil {
			toTag, _ = t.Params.Get("tag")
		}
	}
	m.OnFinal(c, req, req.Flags, code, reason, toTag)
}

// missed writes the missed-call records and returns flags without the
// missed flags (Kamailio's on_missed).
func (m *Module) missed(c *kemi.Ctx, req *sipmsg.Msg, flags uint32, code int, reason, toTag string) uint32 {
	r := m.newRecord(req, toTag, m.upstream(req))
	r.text, r.code, r.reason = TextMissed, strconv.Itoa(code), reason
	var reset uint32
	if flagOn(flags, m.cfg.LogMissedFlag) {
		m.logRecord(c, r)
		reset |= 1 << uint(m.cfg.LogMissedFlag)
	}
	if flagOn(flags, m.cfg.DBMissedFlag) {
		if err := m.dbRecord(c, r, m.cfg.DBTableMissedCalls); err != nil {
			c.Log.Error().Err(err).Msg("acc: missed call not stored")
		}
		reset |= 1 << uint(m.cfg.DBMissedFlag)
	}
	return flags &^ reset
}

// answered writes the transaction records (Kamailio's acc_onreply).
func (m *Module) answered(c *kemi.Ctx, req *sipmsg.Msg, flags uint32, code int, reason, toTag, text string) {
	r := m.newRecord(req, toTag, m.upstream(req))
	r.text, r.code, r.reason = text, strconv.Itoa(code), reason
	m.emit(c, r, flags, m.cfg.LogFlag, m.cfg.DBFlag, m.cfg.DBTableAcc)
}

func (m *Module) emit(c *kemi.Ctx, r record, flags uint32, logFlag, dbFlag int, table string) {
	if flagOn(flags, logFlag) {
		m.logRecord(c, r)
	}
	if flagOn(flags, dbFlag) {
		if err := m.dbRecord(c, r, table); err != nil {
			c.Log.Error().Err(err).Msg("acc: record not stored")
		}
	}
}

// upstream is rr's is_direction(upstream) as detect_direction uses it:
// the ";ftag=" of the first Route header differs from the From tag.
func (m *Module) upstream(req *sipmsg.Msg) bool {
	if m.cfg.DetectDirection == 0 || req.Req == nil {
		return false
	}
	rt, ok := req.HeaderValue("Route")
	if !ok {
		return false
	}
	ftag := uriParam(rt, "ftag")
	if ftag == "" {
		return false
	}
	f := req.Req.From()
	if f == nil {
		return false
	}
	tag, _ := f.Params.Get("tag")
	return tag != "" && tag != ftag
}

// uriParam returns a parameter of the first URI in a Route value.
func uriParam(v, name string) string {
	if i := strings.IndexByte(v, ','); i >= 0 && !strings.Contains(v[:i], "<") {
		v = v[:i]
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	}
	parts := strings.Split(v, ";")
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(val)
		}
	}
	return ""
}
