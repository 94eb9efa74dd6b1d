package rtpengine

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// Op is an NG command.
type Op int

// The NG commands (Kamailio's rtpe_operation).
const (
	OpOffer Op = iota
	OpAnswer
	OpDelete
	OpStartRecording
	OpQuery
	OpPing
	OpStopRecording
	OpBlockDTMF
	OpUnblockDTMF
	OpBlockMedia
	OpUnblockMedia
	OpSilenceMedia
	OpUnsilenceMedia
	OpStartForwarding
	OpStopForwarding
	OpPlayMedia
	OpStopMedia
	OpPlayDTMF
)

var commandStrings = [...]string{
	OpOffer: "offer", OpAnswer: "answer", OpDelete: "delete", OpStartRecording: "start recording",
	OpQuery: "query", OpPing: "ping", OpStopRecording: "stop recording", OpBlockDTMF: "block DTMF",
	OpUnblockDTMF: "unblock DTMF", OpBlockMedia: "block media", OpUnblockMedia: "unblock media",
	OpSilenceMedia: "silence media", OpUnsilenceMedia: "unsilence media", OpStartForwarding: "start forwarding",
	OpStopForwarding: "stop forwarding", OpPlayMedia: "play media", OpStopMedia: "stop media", OpPlayDTMF: "play DTMF",
}

func (o Op) String() string { return commandStrings[o] }

// Errors rtpengine may answer that make Kamailio try another instance.
const (
	sessLimitMsg  = "Parallel session limit reached"
	outOfPortsMsg = "Ran out of ports"
)

var transports = map[int]string{
	0: "RTP/AVP", 1: "RTP/SAVP", 2: "RTP/AVPF", 3: "RTP/SAVPF", 4: "UDP/TLS/RTP/SAVP", 6: "UDP/TLS/RTP/SAVPF",
}

// ---- message helpers ----

func isReply(m *sipmsg.Msg) bool { return m.Req == nil }

func fromTag(m *sipmsg.Msg) string {
	if f := m.SIP().From(); f != nil {
		t, _ := f.Params.Get("tag")
		return t
	}
	return ""
}

func toTag(m *sipmsg.Msg) string {
	if t := m.SIP().To(); t != nil {
		tag, _ := t.Params.Get("tag")
		return tag
	}
	return ""
}

func viaBranch(m *sipmsg.Msg, n int) string {
	i := 0
	for _, h := range m.Headers("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		i++
		if i == n {
			b, _ := v.Params.Get("branch")
			return b
		}
	}
	return ""
}

// sdpBody returns the SDP body of m ("" when none): the body of an
// application/sdp message, or of one without Content-Type that looks like
// SDP. Multipart bodies are not searched.
func sdpBody(m *sipmsg.Msg) string {
	b := m.SIP().Body()
	if len(b) == 0 {
		return ""
	}
	if ct, ok := m.HeaderValue("Content-Type"); ok {
		v := strings.ToLower(strings.TrimSpace(ct))
		if i := strings.IndexByte(v, ';'); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if v != "application/sdp" {
			return ""
		}
	} else if !strings.HasPrefix(string(b), "v=") {
		return ""
	}
	return string(b)
}

// ---- flags ----

// ngFlags is what parse_flags builds from the flags string.
type ngFlags struct {
	via, transport            int
	to, directional           bool
	dict                      *Dict
	flags, direction, replace []any
	rtcpMux, sdes, t38        []any
	codec                     *Dict
	callID, fromTag, toTag    string
}

// keyValPrefix is str_key_val_prefix: "foo=bar" or "foo-bar" give "bar".
func keyValPrefix(key, val string, hasVal bool, prefix string) (string, bool) {
	if key == prefix {
		if !hasVal || val == "" {
			return "", false
		}
		return val, true
	}
	if !strings.HasPrefix(key, prefix) {
		return "", false
	}
	rest := key[len(prefix):]
	if len(rest) < 2 || rest[0] != '-' {
		return "", false
	}
	return rest[1:], true
}

func (ng *ngFlags) codecAdd(name, v string) {
	l, _ := ng.codec.List(name)
	ng.codec.Set(name, append(l, v))
}

// parseFlags is Kamailio's parse_flags: space-separated "key" and
// "key=value" items. Known keys fill lists or fields; others go to the
// "flags" list (bare) or the dictionary (with a value).
func (ng *ngFlags) parse(op *Op, s string) error {
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return nil
		}
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		item := s[:end]
		s = s[end:]
		key, val, hasVal := strings.Cut(item, "=")
		if key == "" {
			return nil // Kamailio stops at an empty key
		}
		fail := func(why string) error {
			if hasVal {
				return fmt.Errorf("error processing flag `%s' (value '%s'): %s", key, val, why)
			}
			return fmt.Errorf("error processing flag `%s': %s", key, why)
		}
		if v, ok := keyValPrefix(key, val, hasVal, "replace"); ok {
			ng.replace = append(ng.replace, v)
			continue
		}
		if v, ok := keyValPrefix(key, val, hasVal, "SDES"); ok {
			ng.sdes = append(ng.sdes, v)
			continue
		}
		if v, ok := keyValPrefix(key, val, hasVal, "T38"); ok {
			ng.t38 = append(ng.t38, v)
			continue
		}
		if v, ok := keyValPrefix(key, val, hasVal, "T.38"); ok {
			ng.t38 = append(ng.t38, v)
			continue
		}
		if v, ok := keyValPrefix(key, val, hasVal, "rtcp-mux"); ok {
			ng.rtcpMux = append(ng.rtcpMux, v)
			continue
		}
		codec := false
		for _, cf := range []struct{ p1, p2, name string }{
			{"transcode", "codec-transcode", "transcode"}, {"codec-strip", "", "strip"},
			{"codec-offer", "", "offer"}, {"codec-mask", "", "mask"}, {"codec-set", "", "set"},
			{"codec-except", "", "except"},
		} {
			v, ok := keyValPrefix(key, val, hasVal, cf.p1)
			if !ok && cf.p2 != "" {
				v, ok = keyValPrefix(key, val, hasVal, cf.p2)
			}
			if ok {
				ng.codecAdd(cf.name, v)
				codec = true
				break
			}
		}
		if codec {
			continue
		}
		switch {
		case key == "RTP" && !hasVal:
			ng.transport = (ng.transport | 0x100) &^ 0x001
		case key == "AVP" && !hasVal:
			ng.transport = (ng.transport | 0x100) &^ 0x002
		case key == "TOS" && hasVal:
			n, _ := strconv.Atoi(val)
			ng.dict.Set("TOS", int64(n))
		case key == "SRTP" && !hasVal:
			ng.transport |= 0x101
		case key == "AVPF" && !hasVal:
			ng.transport |= 0x102
		case key == "DTLS" && !hasVal:
			ng.transport |= 0x104
		case key == "to-tag":
			if hasVal {
				ng.toTag = val
			}
			ng.to = true
		case key == "RTP/AVP" && !hasVal:
			ng.transport = 0x100
		case key == "call-id":
			if !hasVal {
				return fail("missing value")
			}
			ng.callID = val
		case (key == "internal" || key == "external"):
			ng.direction = append(ng.direction, key)
		case key == "RTP/AVPF" && !hasVal:
			ng.transport = 0x102
		case key == "RTP/SAVP" && !hasVal:
			ng.transport = 0x101
		case key == "from-tag":
			if !hasVal {
				return fail("missing value")
			}
			ng.fromTag = val
			ng.directional = true
		case key == "RTP/SAVPF" && !hasVal:
			ng.transport = 0x103
		case key == "direction" && hasVal:
			ng.direction = append(ng.direction, val)
		case key == "via-branch":
			if !hasVal {
				return fail("missing value")
			}
			switch {
			case strings.HasPrefix(val, "1"), strings.HasPrefix(val, "2"):
				ng.via = int(val[0] - '0')
			case val == "auto":
				ng.via = 3
			case val == "extra":
				ng.via = -1
			case val == "next":
				ng.via = -2
			case val == "auto-next" || val == "next-auto":
				ng.via = -3
			case val == "auto-extra" || val == "extra-auto":
				ng.via = -4
			default:
				return fail("invalid value")
			}
		case key == "repacketize":
			if !hasVal {
				return fail("missing value")
			}
			n, _ := strconv.Atoi(digitsPrefix(val))
			if n == 0 {
				return fail("invalid value")
			}
			ng.dict.Set("repacketize", int64(n))
		case key == "directional":
			ng.directional = true
		case key == "force-answer":
			if *op != OpOffer {
				return fail("cannot force answer in non-offer command")
			}
			*op = OpAnswer
		case key == "delete-delay" && hasVal:
			n, _ := strconv.Atoi(val)
			ng.dict.Set("delete delay", int64(n))
		case key == "UDP/TLS/RTP/SAVP" && !hasVal:
			ng.transport = 0x104
		case key == "UDP/TLS/RTP/SAVPF" && !hasVal:
			ng.transport = 0x106
		case !hasVal:
			ng.flags = append(ng.flags, key)
		default:
			ng.dict.Set(key, val)
		}
	}
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// ---- the command ----

// errFailed marks a failure already logged.
var errFailed = errors.New("rtpengine: command failed")

// call is Kamailio's rtpp_function_call: it builds the command for op
// from the message and the flags, sends it to an instance of set s
// (trying others on no answer, "load limit", session limit or no ports)
// and returns the decoded reply. input is the SDP to send for offer and
// answer ("" takes the message's).
func (m *Module) call(c *kemi.Ctx, s *set, op Op, flags, input string) (*Dict, error) {
	msg := c.Msg
	ng := &ngFlags{dict: NewDict(), codec: NewDict()}
	ng.callID = msg.CallID()
	if ng.callID == "" {
		c.Log.Error().Msg("rtpengine: can't get Call-Id field")
		return nil, errFailed
	}
	ng.toTag = toTag(msg)
	ng.fromTag = fromTag(msg)
	if ng.fromTag == "" {
		c.Log.Error().Msg("rtpengine: can't get From tag")
		return nil, errFailed
	}
	ng.dict.Set("supports", []any{"load limit"})
	if op == OpOffer || op == OpAnswer {
		body := input
		if body == "" {
			if m.cfg.ReadSdpPv != "" {
				v, err := pv.Get(c, m.cfg.ReadSdpPv)
				if err != nil || v.IsNull() {
					c.Log.Error().Msgf("rtpengine: error getting pvar value <%s>", m.cfg.ReadSdpPv)
					return nil, errFailed
				}
				body = v.String()
			} else {
				body = sdpBody(msg)
			}
		}
		if body == "" {
			c.Log.Error().Msg("rtpengine: can't extract body from the message")
			return nil, errFailed
		}
		ng.dict.Set("sdp", body)
	}
	ng.to = op != OpDelete
	if err := ng.parse(&op, flags); err != nil {
		c.Log.Error().Msg("rtpengine: " + err.Error())
		return nil, errFailed
	}
	d := ng.dict
	if len(ng.direction) > 0 {
		d.Set("direction", ng.direction)
	}
	if len(ng.flags) > 0 {
		d.Set("flags", ng.flags)
	}
	if len(ng.replace) > 0 {
		d.Set("replace", ng.replace)
	}
	if ng.codec.Len() > 0 {
		d.Set("codec", ng.codec)
	}
	if ng.transport&0x100 != 0 {
		if tp, ok := transports[ng.transport&0x7]; ok {
			d.Set("transport-protocol", tp)
		}
	}
	if len(ng.rtcpMux) > 0 {
		d.Set("rtcp-mux", ng.rtcpMux)
	}
	if len(ng.sdes) > 0 {
		d.Set("SDES", ng.sdes)
	}
	if len(ng.t38) > 0 {
		d.Set("T.38", ng.t38)
	}
	d.Set("call-id", ng.callID)

	viabranch := ""
	if ng.via != 0 {
		switch ng.via {
		case 3:
			ng.via = 1
			if isReply(msg) {
				ng.via = 2
			}
		case -3:
			ng.via = -2
			if isReply(msg) {
				ng.via = 1
			}
		case -4:
			ng.via = -1
			if isReply(msg) {
				ng.via = 1
			}
		}
		switch ng.via {
		case 1, 2:
			viabranch = viaBranch(msg, ng.via)
		case -1:
			if m.cfg.ExtraIDPv != "" {
				viabranch = pv.Expand(c, m.cfg.ExtraIDPv)
			}
		case -2:
			c.Log.Error().Msg("rtpengine: via-branch=next is not supported (needs the branch tm will create)")
		}
		if viabranch == "" {
			c.Log.Error().Msg("rtpengine: can't get Via branch/extra ID")
			return nil, errFailed
		}
		d.Set("via-branch", viabranch)
	}
	family := "IP4"
	if a, err := netip.ParseAddr(msg.SrcIP); err == nil && a.Is6() && !a.Is4In6() {
		family = "IP6"
	} else if err != nil {
		family = "?"
	}
	d.Set("received-from", []any{family, msg.SrcIP})

	switch {
	case op == OpBlockDTMF || op == OpBlockMedia || op == OpUnblockDTMF || op == OpUnblockMedia ||
		op == OpStartForwarding || op == OpStopForwarding || op == OpSilenceMedia || op == OpUnsilenceMedia:
		if ng.directional {
			d.Set("from-tag", ng.fromTag)
		}
	case (!isReply(msg) && op != OpAnswer) || (isReply(msg) && (op == OpDelete || op == OpAnswer)) || ng.directional:
		d.Set("from-tag", ng.fromTag)
		if ng.to && ng.toTag != "" {
			d.Set("to-tag", ng.toTag)
		}
	default:
		if ng.toTag == "" {
			c.Log.Error().Msg("rtpengine: No to-tag present")
			return nil, errFailed
		}
		d.Set("from-tag", ng.toTag)
		d.Set("to-tag", ng.fromTag)
	}
	d.Set("command", op.String())

	if s == nil {
		if len(m.sets) == 0 {
			c.Log.Error().Msg("rtpengine: no rtpengine configured (rtpengine_sock)")
		} else {
			c.Log.Error().Msg("rtpengine: script error - no valid set selected")
		}
		return nil, errFailed
	}
	queried := map[*node]bool{}
	for {
		if len(queried) >= m.cfg.QueriedNodesLimit {
			c.Log.Error().Msg("rtpengine: queried nodes limit reached")
			return nil, errFailed
		}
		n := m.selectNode(c, s, ng.callID, viabranch, queried)
		if n == nil {
			c.Log.Error().Msg("rtpengine: no available proxies")
			return nil, errFailed
		}
		queried[n] = true
		raw, err := m.send(n, d)
		if err != nil {
			c.Log.Error().Err(err).Msgf("rtpengine: command %q to <%s> failed", op.String(), n.url)
			m.disable(n)
			continue
		}
		m.setInstPvar(c, n)
		resp, err := DecodeDict(raw)
		if err != nil {
			c.Log.Error().Err(err).Msgf("rtpengine: failed to decode bencoded reply from proxy: %.200s", raw)
			return nil, errFailed
		}
		result, ok := resp.Str("result")
		if !ok {
			c.Log.Error().Msgf("rtpengine: No 'result' dictionary entry in response from proxy %s", n.url)
			return nil, errFailed
		}
		if result == "load limit" {
			c.Log.Info().Msgf("rtpengine: proxy %s has reached its load limit - trying next one", n.url)
			continue
		}
		if result == "error" {
			reason, ok := resp.Str("error-reason")
			if !ok {
				c.Log.Error().Msgf("rtpengine: proxy return error but didn't give an error reason: %.200s", raw)
				return nil, errFailed
			}
			if reason == sessLimitMsg || reason == outOfPortsMsg {
				c.Log.Warn().Msgf("rtpengine: proxy %s: %s", n.url, reason)
				continue
			}
			c.Log.Error().Msgf("rtpengine: proxy replied with error: %s", reason)
			return nil, errFailed
		}
		if op == OpDelete {
			m.unbind(ng.callID, viabranch)
		} else {
			m.bind(ng.callID, viabranch, n)
		}
		return resp, nil
	}
}

// callOK is call plus the check that the result is "ok".
func (m *Module) callOK(c *kemi.Ctx, s *set, op Op, flags, input string) (*Dict, bool) {
	resp, err := m.call(c, s, op, flags, input)
	if err != nil {
		return nil, false
	}
	if r, _ := resp.Str("result"); r != "ok" {
		c.Log.Error().Msg(`rtpengine: proxy didn't return "ok" result`)
		return nil, false
	}
	return resp, true
}

// ---- sets ----

// setFor returns the set to use: the one chosen for the message for this
// direction (1: caller side first, 2: callee side first), else
// setid_default.
func (m *Module) setFor(msg *sipmsg.Msg, direction int) *set {
	id := -1
	if st, ok := msg.Ext[extKey].(*msgState); ok {
		id = st.set1
		if direction != 1 && st.set2 >= 0 {
			id = st.set2
		}
	}
	if id < 0 {
		id = m.cfg.SetidDefault
	}
	return m.sets[id]
}

// wrap is rtpengine_rtpp_set_wrap: with two sets chosen
// (set_rtpengine_set2) the operation runs on both, the SDP returned by
// the first one being sent to the second.
func (m *Module) wrap(c *kemi.Ctx, direction int, fn func(s *set, more bool) int) int {
	st := state(c.Msg)
	st.intermediate = nil
	defer func() { st.intermediate = nil }()
	more := st.set2 >= 0 && st.set2 != st.set1
	ret := fn(m.setFor(c.Msg, direction), more)
	if ret < 0 || !more {
		return ret
	}
	direction = 3 - direction
	return fn(m.setFor(c.Msg, direction), false)
}

// SetSet is set_rtpengine_set(id) / set_rtpengine_set2(id1, id2): 1, -1
// for an unknown set, -2 when the set has no enabled instance.
func (m *Module) SetSet(c *kemi.Ctx, id1, id2 int) int {
	st := state(c.Msg)
	st.set1, st.set2 = -1, -1
	for i, id := range []int{id1, id2} {
		if i == 1 && id < 0 {
			break
		}
		s := m.sets[id]
		if s == nil || id < 0 {
			c.Log.Error().Msgf("rtpengine: rtpp_proxy set %d not configured", id)
			return -1
		}
		active := 0
		for _, n := range s.nodes {
			if !n.isDisabled() {
				active++
			}
		}
		if active == 0 {
			c.Log.Warn().Msgf("rtpengine: selected proxy set ID %d but it has no active node", id)
			return -2
		}
		if i == 0 {
			st.set1 = id
		} else {
			st.set2 = id
		}
	}
	return 1
}

// ---- operations ----

// offerAnswer is rtpengine_offer_answer: the SDP rtpengine returns
// replaces the message body (sipgo updates Content-Length), or goes to
// write_sdp_pv.
func (m *Module) offerAnswer(c *kemi.Ctx, s *set, flags string, op Op, more bool) int {
	st := state(c.Msg)
	input := ""
	if st.intermediate != nil {
		input = *st.intermediate
	}
	resp, ok := m.callOK(c, s, op, flags, input)
	if !ok {
		return -1
	}
	sdp, ok := resp.Str("sdp")
	if !ok {
		c.Log.Error().Msg("rtpengine: failed to extract sdp body from proxy reply")
		return -1
	}
	if more {
		st.intermediate = &sdp
		return 1
	}
	if m.cfg.WriteSdpPv != "" {
		if err := pv.Set(c, m.cfg.WriteSdpPv, val.OfStr(sdp)); err != nil {
			c.Log.Error().Err(err).Msgf("rtpengine: error setting pvar <%s>", m.cfg.WriteSdpPv)
			return -1
		}
		return 1
	}
	c.Msg.SIP().SetBody([]byte(sdp))
	return 1
}

// Offer is rtpengine_offer(flags).
func (m *Module) Offer(c *kemi.Ctx, flags string) int {
	return m.wrap(c, 1, func(s *set, more bool) int { return m.offerAnswer(c, s, flags, OpOffer, more) })
}

// Answer is rtpengine_answer(flags) (as the KEMI export: no method check).
func (m *Module) Answer(c *kemi.Ctx, flags string) int {
	return m.wrap(c, 2, func(s *set, more bool) int { return m.offerAnswer(c, s, flags, OpAnswer, more) })
}

// Delete is rtpengine_delete(flags).
func (m *Module) Delete(c *kemi.Ctx, flags string) int {
	return m.wrap(c, 1, func(s *set, _ bool) int { return m.simple(c, s, OpDelete, flags) })
}

// Query is rtpengine_query(flags). The call statistics (mos_* PVs) are
// not extracted.
func (m *Module) Query(c *kemi.Ctx, flags string) int {
	return m.wrap(c, 1, func(s *set, _ bool) int { return m.simple(c, s, OpQuery, flags) })
}

// Generic runs a command whose reply only needs "ok": start/stop
// recording, block/unblock DTMF and media, silence, play/stop media.
func (m *Module) Generic(c *kemi.Ctx, op Op, flags string) int {
	return m.wrap(c, 1, func(s *set, _ bool) int { return m.simple(c, s, op, flags) })
}

func (m *Module) simple(c *kemi.Ctx, s *set, op Op, flags string) int {
	if _, ok := m.callOK(c, s, op, flags, ""); !ok {
		return -1
	}
	return 1
}

// txRequest returns the request of the callback's transaction, or nil.
func (m *Module) txRequest(c *kemi.Ctx) *sipmsg.Msg {
	if m.txReq != nil {
		return m.txReq(c)
	}
	if r, ok := c.Tx.(interface{ Request() *sipmsg.Msg }); ok {
		return r.Request()
	}
	return nil
}

// Manage is rtpengine_manage(flags): offer, answer or delete from the
// message (see README).
func (m *Module) Manage(c *kemi.Ctx, flags string) int {
	return m.wrap(c, 1, func(s *set, more bool) int { return m.manage(c, s, flags, more) })
}

func (m *Module) manage(c *kemi.Ctx, s *set, flags string, more bool) int {
	if c.Route == kemi.RouteBranchFailure {
		return 1 // the failure route deletes
	}
	msg := c.Msg
	method := msg.Method()
	switch method {
	case "INVITE", "ACK", "CANCEL", "BYE", "UPDATE", "PRACK":
	default:
		return -1
	}
	if method == "CANCEL" || method == "BYE" {
		return m.simple(c, s, OpDelete, flags)
	}
	st := state(msg)
	hasSDP := st.sdpReq || sdpBody(msg) != "" || st.intermediate != nil
	if !isReply(msg) {
		if !hasSDP {
			return -1
		}
		switch method {
		case "ACK", "PRACK":
			return m.offerAnswer(c, s, flags, OpAnswer, more)
		case "UPDATE":
			return m.offerAnswer(c, s, flags, OpOffer, more)
		case "INVITE":
			st.sdpReq = true
			if t := m.txRequest(c); t != nil && t != msg {
				state(t).sdpReq = true
			}
			if c.Route == kemi.RouteFailure {
				return m.simple(c, s, OpDelete, flags)
			}
			return m.offerAnswer(c, s, flags, OpOffer, more)
		}
		return -1
	}
	if msg.Res.StatusCode >= 300 {
		return m.simple(c, s, OpDelete, flags)
	}
	if sdpBody(msg) == "" && st.intermediate == nil {
		return -1
	}
	if method == "UPDATE" {
		return m.offerAnswer(c, s, flags, OpAnswer, more)
	}
	t := m.txRequest(c)
	if t == nil {
		return m.offerAnswer(c, s, flags, OpAnswer, more)
	}
	if ts, ok := t.Ext[extKey].(*msgState); ok && ts.sdpReq {
		return m.offerAnswer(c, s, flags, OpAnswer, more)
	}
	return m.offerAnswer(c, s, flags, OpOffer, more)
}

// QueryV is rtpengine_query_v(fmt, dpv): the whole query reply as JSON
// ("j" compact, "jp" pretty) stored in the PV dpv.
func (m *Module) QueryV(c *kemi.Ctx, format, dpv string) int {
	if format == "" || (format[0] != 'j' && format[0] != 'J') {
		c.Log.Error().Msgf("rtpengine: invalid format parameter value: %s", format)
		return -1
	}
	if _, err := pv.Parse(dpv); err != nil {
		c.Log.Error().Err(err).Msgf("rtpengine: failed to get pv spec for: %s", dpv)
		return -1
	}
	pretty := len(format) > 1 && (format[1] == 'p' || format[1] == 'P')
	return m.wrap(c, 1, func(s *set, _ bool) int {
		resp, ok := m.callOK(c, s, OpQuery, "", "")
		if !ok {
			return -1
		}
		var b strings.Builder
		writeJSON(&b, resp, pretty, 0)
		if err := pv.Set(c, dpv, val.OfStr(b.String())); err != nil {
			c.Log.Error().Err(err).Msgf("rtpengine: target pv is not writable: %s", dpv)
			return -1
		}
		return 1
	})
}
