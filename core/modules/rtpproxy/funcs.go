package rtpproxy

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
)

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

// viaBranch returns the branch of the n-th Via (1-based).
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

// sdpBody returns the SDP body of m ("" when it has none): the body of
// an application/sdp message, or of one without Content-Type that looks
// like SDP. Multipart bodies are not searched.
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

// setBody replaces the body of the message being forwarded (sipgo updates
// Content-Length).
func setBody(m *sipmsg.Msg, body string) {
	m.SIP().SetBody([]byte(body))
}

func ipFamily(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		return "IP6"
	}
	return "IP4"
}

// callIDWithVia is the Call-ID sent to rtpproxy: with ";<via branch>"
// (flags 1/2/3) or ";<extra_id_pv>" (flag b).
func (m *Module) callIDWithVia(c *kemi.Ctx, callid string, via int, extra bool) (string, bool) {
	if via > 0 {
		b := viaBranch(c.Msg, via)
		if b == "" {
			c.Log.Error().Msg("rtpproxy: can't get Via branch")
			return "", false
		}
		return callid + ";" + b, true
	}
	if extra && m.cfg.ExtraIDPv != "" {
		return callid + ";" + pv.Expand(c, m.cfg.ExtraIDPv), true
	}
	return callid, true
}

// run sends cmd to a proxy chosen for callid, choosing another one (or
// failing) when the chosen one does not answer.
func (m *Module) run(c *kemi.Ctx, callid string, build func(n *node) string) (string, *node, bool) {
	for {
		n := m.selectNode(c, callid)
		if n == nil {
			c.Log.Error().Msg("rtpproxy: no available proxies")
			return "", nil, false
		}
		m.setInstPvar(c, n)
		reply, err := m.command(c, n, build(n))
		if err == nil {
			return reply, n, true
		}
	}
}

// ---- offer / answer (force_rtp_proxy) ----

// Force is force_rtp_proxy: it asks rtpproxy for a session ("U", offer)
// or looks it up ("L", answer) for each media stream of the SDP and
// rewrites the SDP of the message: m= ports, a=rtcp ports, the media
// c= address (the session one when a stream has none), plus the session
// c= with flag c and the o= address with flag o. ip is the address to use
// when rtpproxy returns none (forcedIP: always). Returns 1, -1 on error
// or when no proxy answers, -2 when the SDP is already proxied (marker
// line present, no flag f).
func (m *Module) Force(c *kemi.Ctx, flags, ip string, offer, forcedIP bool) int {
	msg := c.Msg
	opts := ""
	rep := ""
	via, extra, lookup, force, real, orgip, commip, autobridge := 0, false, false, false, false, false, false, false
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case '1':
			via = 1
		case '2':
			via = 2
		case '3':
			via = 1
			if isReply(msg) {
				via = 2
			}
		case 'a', 'A':
			opts += "A"
			real = true
		case 'b':
			extra = true
		case 'i', 'I':
			opts += "I"
		case 'e', 'E':
			opts += "E"
		case 'l', 'L':
			if !offer {
				return -1
			}
			lookup = true
		case 'f', 'F':
			force = true
		case 'r', 'R':
			real = true
		case 'c', 'C':
			commip = true
		case 'o', 'O':
			orgip = true
		case 'x', 'X':
			autobridge = true
		case 'w', 'W':
			opts += "S"
		case 'z', 'Z':
			rep += "Z"
			for i+1 < len(flags) && flags[i+1] >= '0' && flags[i+1] <= '9' {
				i++
				rep += flags[i : i+1]
			}
		case 't', 'T':
			// only for rtpproxy_destroy
		default:
			c.Log.Error().Msgf("rtpproxy: unknown option `%c'", flags[i])
			return -1
		}
	}
	create := offer
	body := sdpBody(msg)
	if body == "" {
		c.Log.Error().Msg("rtpproxy: can't extract body from the message")
		return -1
	}
	callid := msg.CallID()
	if callid == "" {
		c.Log.Error().Msg("rtpproxy: can't get Call-Id field")
		return -1
	}
	from, to := fromTag(msg), toTag(msg)
	if from == "" {
		c.Log.Error().Msg("rtpproxy: can't get From tag")
		return -1
	}
	cid, ok := m.callIDWithVia(c, callid, via, extra)
	if !ok {
		return -1
	}
	if lookup {
		if to == "" {
			return -1
		}
		if !isReply(msg) {
			from, to = to, from
		}
		create = false
	} else if (isReply(msg) && offer) || (!isReply(msg) && !offer) {
		if to == "" {
			return -1
		}
		from, to = to, from
	}
	sd := parseSDP(body)
	proxied := m.cfg.NortpproxyStr != "" && sd.hasLine(m.cfg.NortpproxyStr)
	if proxied && !force {
		return -2
	}
	if sd.numStreams() == 0 {
		c.Log.Error().Msg("rtpproxy: sdp w/o streams")
		return -1
	}
	letter := "L"
	if create {
		letter = "U"
	}
	srcPF := ipFamily(msg.SrcIP)
	medianum := 0
	// the addresses as received: a session c= rewritten for one stream is
	// still the old address of the next ones
	type addr struct{ pf, ip string }
	old := map[*stream]addr{}
	for _, ss := range sd.sessions {
		for _, st := range ss.streams {
			pf, ip := sd.addr(st.c)
			if ip == "" {
				pf, ip = sd.addr(ss.c)
			}
			old[st] = addr{pf, ip}
		}
	}
	for _, ss := range sd.sessions {
		cAltered, oDone := false, !orgip
		for _, st := range ss.streams {
			oldPF, oldIP := old[st].pf, old[st].ip
			medianum++
			cmdIP, newPF := msg.SrcIP, srcPF
			if real {
				cmdIP, newPF = oldIP, oldPF
			}
			o := opts
			if autobridge {
				if oldPF == "IP6" {
					o += "EI"
				} else {
					o += "IE"
				}
			}
			if oldPF == "IP6" {
				o += "6"
			}
			num := strconv.Itoa(medianum)
			reply, _, ok := m.run(c, callid, func(n *node) string {
				var b strings.Builder
				b.WriteString(letter)
				b.WriteString(o)
				nrep, nptl := n.caps()
				if rep != "" {
					if nrep {
						b.WriteString(rep)
					} else {
						c.Log.Warn().Msg("rtpproxy: re-packetization is requested but is not supported by the selected RTP proxy node")
					}
				}
				if nptl && strings.HasPrefix(st.proto, "RTP/") && st.payloads != "" {
					var pts []string
					for _, p := range strings.Fields(st.payloads) {
						if d := digits(p); d != "" {
							pts = append(pts, d)
						}
					}
					if len(pts) > 0 {
						b.WriteString("c" + strings.Join(pts, ","))
					}
				}
				b.WriteString(" " + cid + " " + cmdIP + " " + st.port + " " + from + ";" + num)
				if to != "" {
					b.WriteString(" " + to + ";" + num)
					if letter == "U" && m.cfg.TimeoutSocket != "" {
						b.WriteString(" " + m.cfg.TimeoutSocket)
					}
				}
				return b.String()
			})
			if !ok {
				return -1
			}
			argv := strings.Fields(reply)
			if len(argv) < 1 {
				c.Log.Error().Msg("rtpproxy: no reply from rtp proxy")
				return -1
			}
			port, err := strconv.Atoi(argv[0])
			if err != nil || port <= 0 || port > 65535 {
				if port != 0 || !lookup {
					c.Log.Error().Msgf("rtpproxy: incorrect port %s in reply from rtp proxy", argv[0])
				}
				return -1
			}
			if len(argv) == 2 {
				newPF = "IP4"
			} else if len(argv) >= 3 {
				newPF = "IP4"
				if strings.HasPrefix(argv[2], "6") {
					newPF = "IP6"
				}
			}
			var newIP string
			switch {
			case isNullAddr(oldIP, oldPF):
				newIP = "0.0.0.0"
				if newPF == "IP6" {
					newIP = "::"
				}
			case forcedIP || len(argv) < 2:
				newIP = ip
			default:
				newIP = argv[1]
			}
			if newIP == "" {
				c.Log.Error().Msg("rtpproxy: no media address to use")
				return -1
			}
			newPort := strconv.Itoa(port)
			if st.port != "0" {
				sd.setPort(st, newPort)
			}
			if st.rtcp >= 0 {
				sd.setRTCPPort(st.rtcp, strconv.Itoa(port+1))
			}
			if st.c >= 0 {
				sd.setAddr(st.c, newPF, newIP)
			} else if !cAltered && ss.c >= 0 {
				sd.setAddr(ss.c, newPF, newIP)
				cAltered = true
			}
			if commip && ss.c >= 0 && !cAltered {
				sd.setAddr(ss.c, newPF, newIP)
				cAltered = true
			}
			if !oDone && ss.o >= 0 {
				sd.setAddr(ss.o, newPF, newIP)
				oDone = true
			}
		}
	}
	if !proxied && m.cfg.NortpproxyStr != "" {
		sd.appendLine(m.cfg.NortpproxyStr)
	}
	setBody(msg, sd.String())
	return 1
}

// localIP is the address the message arrived on (Kamailio's rcv.dst_ip),
// used as media address when rtpproxy returns none.
func localIP(m *sipmsg.Msg) string { return m.DstIP }

// Offer is rtpproxy_offer(flags).
func (m *Module) Offer(c *kemi.Ctx, flags string) int {
	return m.Force(c, flags, localIP(c.Msg), true, false)
}

// Answer is rtpproxy_answer(flags): -1 on a request other than ACK.
func (m *Module) Answer(c *kemi.Ctx, flags string) int {
	if !isReply(c.Msg) && c.Msg.Req.Method != sip.ACK {
		return -1
	}
	return m.Force(c, flags, localIP(c.Msg), false, false)
}

// ---- destroy (unforce_rtp_proxy) ----

// Destroy is rtpproxy_destroy(flags): "D" for the call (or the branch,
// flags 1/2/3/b); flag t leaves the To tag out. 1, or -1.
func (m *Module) Destroy(c *kemi.Ctx, flags string) int {
	msg := c.Msg
	via, to, extra := 0, true, false
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case '1':
			via = 1
		case '2':
			via = 2
		case '3':
			via = 1
			if isReply(msg) {
				via = 2
			}
		case 't', 'T':
			to = false
		case 'b':
			extra = true
		case 'a', 'A', 'i', 'I', 'e', 'E', 'l', 'L', 'f', 'F', 'r', 'R', 'c', 'C', 'o', 'O', 'x', 'X', 'w', 'W', 'z', 'Z':
			// accepted: rtpproxy_manage passes them on
		default:
			c.Log.Error().Msgf("rtpproxy: unknown option `%c'", flags[i])
			return -1
		}
	}
	callid := msg.CallID()
	if callid == "" {
		c.Log.Error().Msg("rtpproxy: can't get Call-Id field")
		return -1
	}
	totag := ""
	if to {
		totag = toTag(msg)
	}
	from := fromTag(msg)
	if from == "" {
		c.Log.Error().Msg("rtpproxy: can't get From tag")
		return -1
	}
	cid, ok := m.callIDWithVia(c, callid, via, extra)
	if !ok {
		return -1
	}
	cmd := "D " + cid + " " + from
	if totag != "" {
		cmd += " " + totag
	}
	if _, _, ok := m.run(c, callid, func(*node) string { return cmd }); !ok {
		return -1
	}
	return 1
}

// ---- manage ----

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

// Manage is rtpproxy_manage(flags, ip): offer, answer or destroy from the
// message (see README). ip "" uses the local address the message arrived
// on when rtpproxy returns no address.
func (m *Module) Manage(c *kemi.Ctx, flags, ip string) int {
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
		return m.Destroy(c, flags)
	}
	forced := ip != ""
	if !forced {
		ip = localIP(msg)
	}
	st := state(msg)
	hasSDP := st.sdpReq || sdpBody(msg) != ""
	if !isReply(msg) {
		if !hasSDP {
			return -1
		}
		switch method {
		case "ACK":
			return m.Force(c, flags, ip, false, forced)
		case "PRACK", "UPDATE":
			return m.Force(c, flags, ip, true, forced)
		case "INVITE":
			st.sdpReq = true
			if t := m.txRequest(c); t != nil && t != msg {
				state(t).sdpReq = true
			}
			if c.Route == kemi.RouteFailure {
				return m.Destroy(c, flags)
			}
			return m.Force(c, flags, ip, true, forced)
		}
		return -1
	}
	if msg.Res.StatusCode >= 300 {
		return m.Destroy(c, flags)
	}
	if sdpBody(msg) == "" {
		return -1
	}
	if method == "PRACK" || method == "UPDATE" {
		return m.Force(c, flags, ip, false, forced)
	}
	t := m.txRequest(c)
	if t == nil {
		return m.Force(c, flags, ip, false, forced)
	}
	if ts, ok := t.Ext[extKey].(*msgState); ok && ts.sdpReq {
		return m.Force(c, flags, ip, false, forced)
	}
	return m.Force(c, flags, ip, true, forced)
}

// ---- recording and streaming ----

// StartRecording is start_recording(): "R callid from to" (tags swapped
// in replies). 1, or -1.
func (m *Module) StartRecording(c *kemi.Ctx) int {
	msg := c.Msg
	callid, from, to := msg.CallID(), fromTag(msg), toTag(msg)
	if callid == "" || from == "" {
		c.Log.Error().Msg("rtpproxy: can't get Call-Id or From tag")
		return -1
	}
	cmd := "R " + callid
	if isReply(msg) {
		if to == "" {
			return -1
		}
		cmd += " " + to + " " + from
	} else {
		cmd += " " + from
		if to != "" {
			cmd += " " + to
		}
	}
	if _, _, ok := m.run(c, callid, func(*node) string { return cmd }); !ok {
		return -1
	}
	return 1
}

// tagPair renders "from;1 to;1" ("from;1" without a To tag).
func tagPair(from, to string) string {
	if to == "" {
		return from + ";1"
	}
	return from + ";1 " + to + ";1"
}

// Stream is rtpproxy_stream2uac / rtpproxy_stream2uas(pname, count):
// play a prompt to the caller (uac) or the callee; count -1 loops.
func (m *Module) Stream(c *kemi.Ctx, pname string, count int, toUAC bool) int {
	return m.stream(c, func(callid, from, to string) string {
		return "P" + strconv.Itoa(count) + " " + callid + " " + pname + " session " + tagPair(from, to)
	}, toUAC)
}

// StopStream is rtpproxy_stop_stream2uac / rtpproxy_stop_stream2uas().
func (m *Module) StopStream(c *kemi.Ctx, toUAC bool) int {
	return m.stream(c, func(callid, from, to string) string {
		return "S " + callid + " " + tagPair(from, to)
	}, toUAC)
}

func (m *Module) stream(c *kemi.Ctx, build func(callid, from, to string) string, toUAC bool) int {
	msg := c.Msg
	callid, from, to := msg.CallID(), fromTag(msg), toTag(msg)
	if callid == "" || from == "" {
		c.Log.Error().Msg("rtpproxy: can't get Call-Id or From tag")
		return -1
	}
	n := m.selectNode(c, callid)
	if n == nil {
		c.Log.Error().Msg("rtpproxy: no available proxies")
		return -1
	}
	if _, ptl := n.caps(); !ptl {
		c.Log.Error().Msg("rtpproxy: required functionality is not supported by the version of the RTPproxy running on the selected node")
		return -1
	}
	m.setInstPvar(c, n)
	if !toUAC {
		if to == "" {
			return -1
		}
		from, to = to, from
	}
	if _, err := m.command(c, n, build(callid, from, to)); err != nil {
		return -1
	}
	return 1
}
