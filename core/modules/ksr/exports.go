// Package ksr exports Kamailio's core KEMI functions: KSR.<fn> (module ""),
// KSR.pv.* and KSR.hdr.*, with the names, parameter and return types of
// the 5.6.3 catalog and the return codes of src/core/kemi.c.
package ksr

import (
	"sync"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/rs/zerolog"
)

// Myself tells whether an address is one of the proxy's listening sockets
// or aliases. port 0 and proto "" match any port / transport.
type Myself interface {
	IsMyself(host string, port int, proto string) bool
}

// Module holds what the core functions need beyond the message.
type Module struct {
	me Myself

	mu     sync.Mutex
	sflags map[*kemi.WorkerState]uint32 // script flags: per process in Kamailio, so per worker here
}

// New returns the module; me may be nil (then nothing is "myself").
func New(me Myself) *Module {
	return &Module{me: me, sflags: map[*kemi.WorkerState]uint32{}}
}

// Exports is the KEMI declaration of KSR.*, KSR.pv.* and KSR.hdr.*.
func (m *Module) Exports() []kemi.Export {
	S, I, P := kemi.S, kemi.I, kemi.P
	none := []kemi.ParamType(nil)
	const rI, rB, rX, rN = kemi.RInt, kemi.RBool, kemi.RXval, kemi.RNone
	e := func(mod, name string, params []kemi.ParamType, ret kemi.RetType, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: mod, Name: name, Params: params, Ret: ret, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		// logging
		e("", "dbg", S(1), rN, "log at debug level", logAt(zerolog.DebugLevel, "")),
		e("", "info", S(1), rN, "log at info level", logAt(zerolog.InfoLevel, "")),
		e("", "notice", S(1), rN, "log at notice level", logAt(zerolog.InfoLevel, "notice")),
		e("", "warn", S(1), rN, "log at warning level", logAt(zerolog.WarnLevel, "")),
		e("", "err", S(1), rN, "log at error level", logAt(zerolog.ErrorLevel, "")),
		e("", "crit", S(1), rN, "log at critical level", logAt(zerolog.ErrorLevel, "crit")),
		e("", "log", S(2), rN, "log(level, text): level dbg/info/notice/warn/err/crit", kLog),
		e("", "get_debug", none, rI, "current debug level (Kamailio numbering)", getDebug),

		// is_myself
		e("", "is_myself", S(1), rB, "URI or host is a local socket or alias", m.isMyself),
		e("", "is_myself_ruri", none, rB, "current R-URI is local", m.isMyselfRURI),
		e("", "is_myself_duri", none, rB, "$du is local", m.isMyselfDURI),
		e("", "is_myself_nhuri", none, rB, "next hop ($du, else R-URI) is local", m.isMyselfNHURI),
		e("", "is_myself_furi", none, rB, "From URI is local", m.isMyselfAddr("From")),
		e("", "is_myself_turi", none, rB, "To URI is local", m.isMyselfAddr("To")),
		e("", "is_myself_suri", none, rB, "source address URI is local", m.isMyselfSURI),
		e("", "is_myself_srcip", none, rB, "source IP is local", m.isMyselfSrcIP),

		// flags
		e("", "setflag", I(1), rB, "set message flag 0..31", msgFlag(opSet)),
		e("", "resetflag", I(1), rB, "reset message flag", msgFlag(opReset)),
		e("", "isflagset", I(1), rB, "test message flag", msgFlag(opTest)),
		e("", "setbflag", I(1), rB, "set branch-0 flag", bFlag(opSet, false)),
		e("", "resetbflag", I(1), rB, "reset branch-0 flag", bFlag(opReset, false)),
		e("", "isbflagset", I(1), rB, "test branch-0 flag", bFlag(opTest, false)),
		e("", "setbiflag", I(2), rB, "setbiflag(flag, branch)", bFlag(opSet, true)),
		e("", "resetbiflag", I(2), rB, "resetbiflag(flag, branch)", bFlag(opReset, true)),
		e("", "isbiflagset", I(2), rB, "isbiflagset(flag, branch)", bFlag(opTest, true)),
		e("", "setsflag", I(1), rB, "set script flag (per worker)", m.sFlag(opSet)),
		e("", "resetsflag", I(1), rB, "reset script flag", m.sFlag(opReset)),
		e("", "issflagset", I(1), rB, "test script flag", m.sFlag(opTest)),

		// R-URI and destination
		e("", "seturi", S(1), rB, "rewrite the R-URI", setURI),
		e("", "setuser", S(1), rB, "rewrite the R-URI user", setPart("$rU")),
		e("", "sethost", S(1), rB, "rewrite the R-URI host", setPart("$rd")),
		e("", "setdsturi", S(1), rB, "set $du", setDstURI),
		e("", "resetdsturi", none, rB, "reset $du", resetDstURI),
		e("", "isdsturiset", none, rB, "$du is set", isDstURISet),
		e("", "force_rport", none, rB, "add rport to the received Via, reply to the source port", forceRport),
		e("", "add_local_rport", none, rB, "add rport to the proxy's own Via", addLocalRport),
		e("", "set_drop", none, rN, "drop the message when the route ends (not in request_route)", setDrop),
		e("", "route", S(1), rI, "run a native cfg route: there are none in kemigo, so -1", route),

		// method tests
		e("", "is_method", S(1), rB, "method (CSeq method for replies) is s; 'A|B' lists allowed", isMethod),
		e("", "is_method_in", S(1), rB, "method matches any letter IABCMREPSNOFGUKDTV", isMethodIn),
		e("", "is_INVITE", none, rB, "method is INVITE", methodIs("INVITE")),
		e("", "is_ACK", none, rB, "method is ACK", methodIs("ACK")),
		e("", "is_BYE", none, rB, "method is BYE", methodIs("BYE")),
		e("", "is_CANCEL", none, rB, "method is CANCEL", methodIs("CANCEL")),
		e("", "is_REGISTER", none, rB, "method is REGISTER", methodIs("REGISTER")),
		e("", "is_OPTIONS", none, rB, "method is OPTIONS", methodIs("OPTIONS")),
		e("", "is_NOTIFY", none, rB, "method is NOTIFY", methodIs("NOTIFY")),
		e("", "is_SUBSCRIBE", none, rB, "method is SUBSCRIBE", methodIs("SUBSCRIBE")),
		e("", "is_PUBLISH", none, rB, "method is PUBLISH", methodIs("PUBLISH")),
		e("", "is_MESSAGE", none, rB, "method is MESSAGE", methodIs("MESSAGE")),
		e("", "is_INFO", none, rB, "method is INFO", methodIs("INFO")),
		e("", "is_UPDATE", none, rB, "method is UPDATE", methodIs("UPDATE")),
		e("", "is_PRACK", none, rB, "method is PRACK", methodIs("PRACK")),
		e("", "is_REFER", none, rB, "method is REFER", methodIs("REFER")),
		e("", "is_KDMQ", none, rB, "method is KDMQ", methodIs("KDMQ")),
		e("", "is_GET", none, rB, "method is GET", methodIs("GET")),
		e("", "is_POST", none, rB, "method is POST", methodIs("POST")),
		e("", "is_PUT", none, rB, "method is PUT", methodIs("PUT")),
		e("", "is_DELETE", none, rB, "method is DELETE", methodIs("DELETE")),

		// transport tests
		e("", "is_UDP", none, rB, "received over UDP", protoIs("udp")),
		e("", "is_TCP", none, rB, "received over TCP", protoIs("tcp")),
		e("", "is_TLS", none, rB, "received over TLS", protoIs("tls")),
		e("", "is_WS", none, rB, "received over WS", protoIs("ws")),
		e("", "is_WSS", none, rB, "received over WSS", protoIs("wss")),
		e("", "is_WSX", none, rB, "received over WS or WSS", protoIs("ws", "wss")),
		e("", "is_SCTP", none, rB, "received over SCTP", protoIs("sctp")),
		e("", "is_proto", S(1), rB, "received over any of the letters e(tls) s(sctp) t(tcp) u(udp) v(ws) w(wss)", isProto),
		e("", "is_IPv4", none, rB, "received on an IPv4 socket", isAF(4)),
		e("", "is_IPv6", none, rB, "received on an IPv6 socket", isAF(6)),
		e("", "is_src_port", I(1), rB, "source port is p", isSrcPort),
		e("", "is_dst_port", I(1), rB, "local port is p", isDstPort),
		e("", "to_UDP", none, rB, "next hop transport is UDP", toProto("udp")),
		e("", "to_TCP", none, rB, "next hop transport is TCP", toProto("tcp")),
		e("", "to_TLS", none, rB, "next hop transport is TLS", toProto("tls")),
		e("", "to_WS", none, rB, "next hop transport is WS", toProto("ws")),
		e("", "to_WSS", none, rB, "next hop transport is WSS", toProto("wss")),
		e("", "to_WSX", none, rB, "next hop transport is WS or WSS", toProto("ws", "wss")),
		e("", "to_SCTP", none, rB, "next hop transport is SCTP", toProto("sctp")),
		e("", "to_IPv4", none, rB, "next hop host is an IPv4 address", toAF(4)),
		e("", "to_IPv6", none, rB, "next hop host is an IPv6 address", toAF(6)),

		// KSR.pv
		e("pv", "get", S(1), rX, "PV value; None when null or invalid", pvGetMode(nullNone)),
		e("pv", "getw", S(1), rX, "PV value; \"<null>\" when null", pvGetMode(nullPrint)),
		e("pv", "gete", S(1), rX, "PV value; \"\" when null", pvGetMode(nullEmpty)),
		e("pv", "getvn", P("si"), rX, "PV value; the int default when null", pvGetVN),
		e("pv", "getvs", S(2), rX, "PV value; the str default when null", pvGetVS),
		e("pv", "geti", S(1), rI, "PV value as int; 0 when null or not numeric", pvGetI),
		e("pv", "sets", S(2), rB, "assign a str", pvSets),
		e("pv", "seti", P("si"), rB, "assign an int", pvSeti),
		e("pv", "unset", S(1), rB, "assign null", pvUnset),
		e("pv", "is_null", S(1), rB, "PV is null, or the name is invalid", pvIsNull),

		// KSR.hdr
		e("hdr", "append", S(1), rI, "queue a header after the last one", hdrAppend),
		e("hdr", "append_after", S(2), rI, "append_after(text, name): queue after the first name header", hdrAppendAfter),
		e("hdr", "insert", S(1), rI, "queue a header before the first one", hdrInsert),
		e("hdr", "insert_before", S(2), rI, "insert_before(text, name): queue before the first name header", hdrInsertBefore),
		e("hdr", "remove", S(1), rI, "queue the removal of every name header", hdrRemove),
		e("hdr", "rmappend", S(2), rI, "rmappend(name, text): remove then append", hdrRmAppend),
		e("hdr", "rminsert", S(2), rI, "rminsert(name, text): remove then insert", hdrRmInsert),
		e("hdr", "is_present", S(1), rI, "1 if a name header was received, else -1", hdrIsPresent),
		e("hdr", "append_to_reply", S(1), rI, "add a header to locally generated replies", hdrAppendToReply),
		e("hdr", "get", S(1), rX, "first name header body; None if absent", hdrGet(nullNone, false)),
		e("hdr", "gete", S(1), rX, "first name header body; \"\" if absent", hdrGet(nullEmpty, false)),
		e("hdr", "getw", S(1), rX, "first name header body; \"<null>\" if absent", hdrGet(nullPrint, false)),
		e("hdr", "get_idx", P("si"), rX, "i-th name header body (negative from the end)", hdrGet(nullNone, true)),
		e("hdr", "gete_idx", P("si"), rX, "i-th body; \"\" if absent", hdrGet(nullEmpty, true)),
		e("hdr", "getw_idx", P("si"), rX, "i-th body; \"<null>\" if absent", hdrGet(nullPrint, true)),
		e("hdr", "match_content", S(4), rB, "match_content(name, op eq/ne/sw/in, value, which f/l/a/o)", hdrMatchContent),
	}
}
