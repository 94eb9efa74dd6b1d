package rr

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// side is one socket of the proxy: where the request came in, or where
// it leaves.
type side struct {
	proto string
	ip    string
	port  int
}

// sameRealm is the negation of Kamailio's COND_IF_DIFF_REALMS: same
// address, port and transport.
func sameRealm(a, b side) bool {
	if a.port != b.port || a.proto != b.proto {
		return false
	}
	if a.ip == b.ip {
		return true
	}
	x, y := net.ParseIP(strings.Trim(a.ip, "[]")), net.ParseIP(strings.Trim(b.ip, "[]"))
	return x != nil && y != nil && x.Equal(y)
}

// hostPort is the address part Kamailio's SUBST_{RCV,SND}_ALL writes:
// IPv6 in brackets, ":port" unless 5060, ";transport=" unless UDP.
func (s side) hostPort() string {
	ip := s.ip
	if strings.IndexByte(ip, ':') >= 0 && !strings.HasPrefix(ip, "[") {
		ip = "[" + ip + "]"
	}
	if s.port != sipPort && s.port != 0 {
		ip += ":" + strconv.Itoa(s.port)
	}
	if s.proto != "udp" && s.proto != "" {
		ip += ";transport=" + protoName(s.proto)
	}
	return ip
}

// protoName is the transport parameter value of a transport: WebSocket
// over TLS is written "ws", as Kamailio does.
func protoName(proto string) string {
	switch proto {
	case "", "udp":
		return "udp"
	case "wss":
		return "ws"
	}
	return proto
}

// RecordRouteHeaders returns the bodies of the Record-Route headers to
// insert, top first, into a copy of request in sent from the local
// socket outProto:outIP:outPort. nil when nothing was record-routed.
func (mod *Module) RecordRouteHeaders(in *sipmsg.Msg, outProto, outIP string, outPort int) []string {
	st := getState(in)
	if len(st.rrs) == 0 {
		return nil
	}
	rcv := side{strings.ToLower(in.Proto), in.DstIP, in.DstPort}
	snd := side{strings.ToLower(outProto), outIP, outPort}
	double := mod.cfg.EnableDoubleRR
	diffRealm := double == 2 || !sameRealm(rcv, snd)
	diffProto := double == 2 || rcv.proto != snd.proto
	lr := ";lr"
	if mod.cfg.EnableFullLR != 0 {
		lr = ";lr=on"
	}
	var out []string
	for _, e := range st.rrs {
		start := "<sip:"
		if e.sips {
			start = "<sips:"
		}
		if e.user != "" {
			start += e.user + "@"
		}
		ftag := ""
		if e.tag != "" {
			ftag = ";ftag=" + e.tag
		}
		switch e.kind {
		case kindLocal:
			// build_rr: prefix, socket address, [;r2=on], ;lr, ftag,
			// params, add_rr_param text.
			one := func(s side, r2 bool, extra string) string {
				v := start + s.hostPort()
				if r2 {
					v += ";r2=on"
				}
				return v + lr + ftag + e.params + e.buf + extra + ">"
			}
			if double != 0 && diffRealm {
				out = append(out, one(snd, true, e.extraOut), one(rcv, true, e.extraIn))
			} else {
				out = append(out, one(rcv, false, e.extraIn))
			}
		case kindAdvertised:
			// build_advertised_rr: the transport only when the two
			// transports differ, ftag before ;lr.
			one := func(s side, extra string) string {
				v := start + e.addr
				if diffProto {
					v += ";transport=" + protoName(s.proto)
				}
				if double != 0 && diffRealm {
					v += ";r2=on"
				}
				return v + ftag + lr + e.buf + extra + ">"
			}
			if double != 0 && diffProto {
				out = append(out, one(snd, e.extraOut), one(rcv, e.extraIn))
			} else {
				out = append(out, one(rcv, e.extraIn))
			}
		case kindPreset:
			out = append(out, start+e.addr+ftag+e.buf+lr+e.extraIn+">")
		}
	}
	return out
}

// OnForward inserts this proxy's Record-Route header(s) at the top of
// out, the copy of in about to be sent from the local socket
// outProto:outIP:outPort. The forwarding code (stateless forward, and tm
// for every branch) calls it once per outgoing copy, after
// in.ApplyEdits(out) (which also removes the Route headers loose_route
// consumed) and after adding its Via, so the Record-Route ends above the
// Via as Kamailio writes it. in is the message the script acted on: for a
// branch route, the branch's copy. c is only used for logging and may be
// nil.
func (mod *Module) OnForward(c *kemi.Ctx, out *sip.Request, in *sipmsg.Msg, outProto, outIP string, outPort int) {
	if out == nil || in == nil {
		return
	}
	vals := mod.RecordRouteHeaders(in, outProto, outIP, outPort)
	for i := len(vals) - 1; i >= 0; i-- {
		out.PrependHeader(recordRouteHeader(vals[i]))
	}
	if c != nil && len(vals) > 0 {
		c.Log.Debug().Strs("record_route", vals).Msg("rr: inserted")
	}
}

// recordRouteHeader returns a typed sipgo header for v when sipgo renders
// it back unchanged, else a generic header carrying v as is.
func recordRouteHeader(v string) sip.Header {
	h := &sip.RecordRouteHeader{}
	var u sip.Uri
	if strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">") && strings.Count(v, "<") == 1 &&
		sip.ParseUri(v[1:len(v)-1], &u) == nil {
		h.Address = u
		if h.Value() == v {
			return h
		}
	}
	return sip.NewHeader("Record-Route", v)
}
