package nathelper

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/siputils"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// NatUACTest is nat_uac_test(flags): 1 when any of the selected tests
// finds the sender behind NAT, else -1. The bits are the Test* constants
// (SPEC §9.13); 19 = private Contact, received, rport.
func (m *Module) NatUACTest(c *kemi.Ctx, flags int) int {
	msg := c.Msg
	via := topVia(msg)
	if flags&TestRport != 0 && via != nil {
		port := via.Port
		if port == 0 {
			port = 5060
		}
		if msg.SrcPort != port {
			return 1
		}
	}
	if flags&TestReceived != 0 && via != nil && !viaMatchesSource(msg, via.Host) {
		return 1
	}
	if flags&TestContact1918 != 0 {
		if _, pu, ok := firstContact(msg); ok && m.is1918(pu.Host) == 1 {
			return 1
		}
	}
	if flags&TestSDP1918 != 0 && m.sdp1918(msg) {
		return 1
	}
	if flags&TestVia1918 != 0 && via != nil && m.is1918(via.Host) == 1 {
		return 1
	}
	if flags&TestSource1918 != 0 && m.is1918(srcIP(msg)) == 1 {
		return 1
	}
	if flags&TestWS != 0 {
		if p := strings.ToLower(msg.Proto); p == "ws" || p == "wss" {
			return 1
		}
	}
	if flags&TestContactPort != 0 {
		if _, pu, ok := firstContact(msg); ok {
			port := pu.PortNo
			if port == 0 {
				port = 5060
			}
			if msg.SrcPort != port {
				return 1
			}
		}
	}
	if flags&TestSDPCLine != 0 && sdpCLineMismatch(msg) > 0 {
		return 1
	}
	if flags&TestDest != 0 && testDestination(msg) > 0 {
		return 1
	}
	return -1
}

func topVia(msg *sipmsg.Msg) *sip.ViaHeader {
	if v := msg.SIP().Via(); v != nil {
		return v
	}
	return nil
}

// viaMatchesSource is Kamailio's check_via_address without DNS: the Via
// host is the source IP written as text (IPv6 ignoring case, with or
// without brackets).
func viaMatchesSource(msg *sipmsg.Msg, host string) bool {
	src := srcIP(msg)
	if strings.IndexByte(src, ':') >= 0 {
		return strings.EqualFold(strings.Trim(host, "[]"), src) || sameIP(host, src)
	}
	return host == src
}

// ---- SDP ----

type sdpSession struct {
	ip      string // session c= address
	ipv4    bool
	streams []sdpStream
}

type sdpStream struct {
	ip   string
	ipv4 bool
}

// parseSDP splits an application/sdp body into sessions (v= lines) with
// their session and media c= addresses; nil when the message has no SDP.
func parseSDP(msg *sipmsg.Msg) []sdpSession {
	ct, _ := msg.HeaderValue("content-type")
	if !strings.Contains(strings.ToLower(ct), "application/sdp") {
		return nil
	}
	body := msg.SIP().Body()
	if len(body) == 0 {
		return nil
	}
	var out []sdpSession
	var cur *sdpSession
	inMedia := false
	for _, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		switch line[0] {
		case 'v':
			out = append(out, sdpSession{})
			cur, inMedia = &out[len(out)-1], false
		case 'm':
			if cur == nil {
				continue
			}
			cur.streams = append(cur.streams, sdpStream{})
			inMedia = true
		case 'c':
			if cur == nil {
				continue
			}
			f := strings.Fields(line[2:])
			if len(f) < 3 {
				continue
			}
			ip := strings.SplitN(f[2], "/", 2)[0]
			v4 := strings.EqualFold(f[1], "IP4")
			if inMedia {
				s := &cur.streams[len(cur.streams)-1]
				s.ip, s.ipv4 = ip, v4
			} else {
				cur.ip, cur.ipv4 = ip, v4
			}
		}
	}
	return out
}

// sdp1918 is Kamailio's sdp_1918: a media (or session) IPv4 connection
// address that is private.
func (m *Module) sdp1918(msg *sipmsg.Msg) bool {
	for _, s := range parseSDP(msg) {
		for _, st := range s.streams {
			ip, v4 := st.ip, st.ipv4
			if ip == "" {
				ip, v4 = s.ip, s.ipv4
			}
			if !v4 || ip == "0.0.0.0" {
				break
			}
			if m.is1918(ip) == 1 {
				return true
			}
		}
	}
	return false
}

// sdpCLineMismatch is test_sdp_cline: the number of sessions whose c=
// address is not the source IP (sessions are counted up to the first
// without a session-level c=).
func sdpCLineMismatch(msg *sipmsg.Msg) int {
	n := 0
	for _, s := range parseSDP(msg) {
		if s.ip == "" {
			break
		}
		if !sameIP(s.ip, srcIP(msg)) {
			n++
		}
	}
	return n
}

// ---- destination ----

func defaultPort(proto string) int {
	if strings.EqualFold(proto, "tls") {
		return 5061
	}
	return 5060
}

// testDestination is nh_test_destination: 1 when the request goes to a
// WebSocket or to a $du that is not the R-URI host:port; for a reply, when
// the 2nd Via is WebSocket, its rport differs from its port or its
// received differs from its host.
func testDestination(msg *sipmsg.Msg) int {
	if !msg.IsRequest() {
		var vias []*sip.ViaHeader
		for _, h := range msg.Res.GetHeaders("Via") {
			if v, ok := h.(*sip.ViaHeader); ok {
				vias = append(vias, v)
			}
		}
		if len(vias) < 2 {
			return 0
		}
		v := vias[1]
		if t := strings.ToLower(v.Transport); t == "ws" || t == "wss" {
			return 1
		}
		if rp, ok := v.Params.Get("rport"); ok && rp != "" {
			dport, err := strconv.Atoi(rp)
			if err != nil {
				return -1
			}
			if dport != 0 {
				port := v.Port
				if port == 0 {
					port = defaultPort(v.Transport)
				}
				if dport != port {
					return 1
				}
			}
		}
		rcv, ok := v.Params.Get("received")
		if !ok {
			return 0
		}
		return hostsDiffer(rcv, v.Host)
	}
	ru, err := siputils.ParseURI(msg.RURI())
	if err != nil {
		return -1
	}
	if msg.DstURI == "" {
		if p := ru.Proto(); p == "ws" || p == "wss" {
			return 1
		}
		return 0
	}
	du, err := siputils.ParseURI(msg.DstURI)
	if err != nil {
		return -1
	}
	if p := du.Proto(); p == "ws" || p == "wss" {
		return 1
	}
	dport, rport := du.PortNo, ru.PortNo
	if dport == 0 {
		dport = defaultPort(du.Proto())
	}
	if rport == 0 {
		rport = defaultPort(ru.Proto())
	}
	if dport != rport {
		return 1
	}
	if du.Host == "" {
		return 0
	}
	return hostsDiffer(du.Host, ru.Host)
}

func hostsDiffer(d, r string) int {
	dip, rip := net.ParseIP(strings.Trim(d, "[]")), net.ParseIP(strings.Trim(r, "[]"))
	switch {
	case dip == nil && rip == nil:
		if r == "" || r == d {
			return 0
		}
		return 1
	case dip == nil || rip == nil:
		return 1
	case dip.Equal(rip):
		return 0
	}
	return 1
}
