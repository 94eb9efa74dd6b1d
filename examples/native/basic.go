// Package native holds route scripts written in Go instead of Python, for
// benchmarks of the same logic with and without the Python bridge, and as
// a pattern for users who want a native route.
//
// Basic is Kamailio's reference KEMI Python script
// (/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py)
// transcribed line by line: the same callbacks, the same KSR functions
// called in the same order with the same arguments, the same tests on their
// results (Python's truthiness included). Each KSR function is resolved
// once from the proxy's export table when the route is built, and called
// through its Export.Fn — the entry point the Python bridge calls — so the
// two differ only by the bridge.
//
// Run it with `kemigo run --native basic -c bench/sip/kemigo.toml`.
package native

import (
	"fmt"
	"strings"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/core/val"
)

// Flags of the reference script (kamailio.cfg defines).
const (
	fltAcc       = 1
	fltAccMissed = 2
	fltAccFailed = 3
	fltNATS      = 5

	flbNATB       = 6
	flbNATSIPPING = 7
)

// exit is the script's -255: "stop the parent route".
const exit = -255

// fn is one resolved KSR function.
type fn struct{ e *kemi.Export }

// call runs the function and returns its result as Python would see it
// after the bridge's conversion (pybridge setRet): an int for int/bool/none
// returns (bool as 0/1), the value for xval/str.
func (f fn) call(c *kemi.Ctx, args []val.Value) val.Value {
	v := f.e.Fn(c, args)
	switch f.e.Ret {
	case kemi.RBool:
		if v.Kind != val.Null && v.I != 0 || v.Kind == val.Str && v.S != "" {
			return val.OfBool(true)
		}
		return val.OfBool(false)
	case kemi.RNone:
		return val.OfInt(0)
	case kemi.RInt:
		return val.OfInt(v.AsInt())
	case kemi.RStr:
		if v.Kind == val.Null {
			return val.OfStr("")
		}
	}
	return v
}

// i is call for int and bool results.
func (f fn) i(c *kemi.Ctx, args []val.Value) int64 { return f.call(c, args).I }

// b is Python's truthiness of the result (`if KSR.x():`, `not KSR.x()`).
func (f fn) b(c *kemi.Ctx, args []val.Value) bool {
	v := f.call(c, args)
	switch v.Kind {
	case val.Str:
		return v.S != ""
	case val.Null:
		return false
	}
	return v.I != 0
}

// Constant argument lists, built once: KEMI functions do not keep or
// change their args.
func ints(n ...int64) []val.Value {
	out := make([]val.Value, len(n))
	for i, x := range n {
		out[i] = val.OfInt(x)
	}
	return out
}

func strs(s ...string) []val.Value {
	out := make([]val.Value, len(s))
	for i, x := range s {
		out[i] = val.OfStr(x)
	}
	return out
}

func si(s string, n int64) []val.Value { return []val.Value{val.OfStr(s), val.OfInt(n)} }
func is(n int64, s string) []val.Value { return []val.Value{val.OfInt(n), val.OfStr(s)} }

// pyStr is Python's str() of a KSR result.
func pyStr(v val.Value) string {
	switch v.Kind {
	case val.Null:
		return "None"
	case val.Bool:
		if v.I != 0 {
			return "True"
		}
		return "False"
	}
	return v.String()
}

// Basic is the reference script in Go. Build it with NewBasic.
type Basic struct {
	// core
	isMyself, isMyselfRURI, isMyselfFURI                           fn
	isCANCEL, isOPTIONS, isREGISTER, isINVITE, isBYE, isACK        fn
	isNOTIFY, isMethodIn, setflag, isflagset, setbflag, isbflagset fn
	isdsturiset, forceRport, setDrop                               fn
	dbg, err                                                       fn
	// pv, hdr
	pvGet, pvGete, pvIsNull, pvSeti fn
	hdrRemove, hdrAppend            fn
	// modules
	pikeCheckReq                                         fn
	hasUserAgent, hasRURIUser                            fn
	processMaxfwd                                        fn
	slSendReply, slReplyError, sendReply                 fn
	sanityCheck                                          fn
	natUACTest, fixNatedRegister, setContactAlias        fn
	handleRURIAlias                                      fn
	isFirstHop, hasTotag, isRequest, isReply             fn
	tCheckTrans, tNewtran, tIsSet, tRelay                fn
	tOnBranch, tOnReply, tOnFailure, tIsCanceled         fn
	tPrecheckTrans, tIsBranchRoute                       fn
	looseRoute, recordRoute, checkRouteParam, addRRParam fn
	allowSourceAddress                                   fn
	authCheck, authChallenge, consumeCredentials         fn
	save, lookup                                         fn
	rtpproxyManage                                       fn

	// constant arguments
	aRoute, aIS, aIBSU, aISU, aRP                      []val.Value
	aBranchRoute, aOnreplyRoute, aFailureRoute         []val.Value
	aBranchManage, aOnreplyManage, aFailureManage      []val.Value
	aFltAcc, aFltAccMissed, aFltAccFailed, aFltNATS    []val.Value
	aFlbNATB, aFlbNATSIPPING                           []val.Value
	aSi, aRm, aFu, aSp, aFd, aUa, aRu, aRs, aBranchIdx []val.Value
	aIPBan, aIPBanSet                                  []val.Value
	aMaxfwd, aSanityReq, aSanityRes, aNATTest          []val.Value
	aR200Processed, aR483, aR200Keepalive, aR484       []val.Value
	aR404NotHere, aR404, aR405, aR403                  []val.Value
	aLocation, aSaveLocation, aPHint, aNatYes          []val.Value
	aRRNatYes, aCO                                     []val.Value
	aDbgReply, aDbgResponse                            []val.Value
}

// NewBasic resolves every KSR function the script calls from t; it fails
// naming the first one t does not have.
func NewBasic(t *kemi.Table) (*Basic, error) {
	b := &Basic{}
	var missing []string
	get := func(module, name string) fn {
		e := t.Lookup(module, name)
		if e == nil || e.Fn == nil {
			if module == "" {
				missing = append(missing, "KSR."+name)
			} else {
				missing = append(missing, "KSR."+module+"."+name)
			}
			return fn{}
		}
		return fn{e}
	}
	b.isMyself = get("", "is_myself")
	b.isMyselfRURI = get("", "is_myself_ruri")
	b.isMyselfFURI = get("", "is_myself_furi")
	b.isCANCEL = get("", "is_CANCEL")
	b.isOPTIONS = get("", "is_OPTIONS")
	b.isREGISTER = get("", "is_REGISTER")
	b.isINVITE = get("", "is_INVITE")
	b.isBYE = get("", "is_BYE")
	b.isACK = get("", "is_ACK")
	b.isNOTIFY = get("", "is_NOTIFY")
	b.isMethodIn = get("", "is_method_in")
	b.setflag = get("", "setflag")
	b.isflagset = get("", "isflagset")
	b.setbflag = get("", "setbflag")
	b.isbflagset = get("", "isbflagset")
	b.isdsturiset = get("", "isdsturiset")
	b.forceRport = get("", "force_rport")
	b.setDrop = get("", "set_drop")
	b.dbg = get("", "dbg")
	b.err = get("", "err")
	b.pvGet = get("pv", "get")
	b.pvGete = get("pv", "gete")
	b.pvIsNull = get("pv", "is_null")
	b.pvSeti = get("pv", "seti")
	b.hdrRemove = get("hdr", "remove")
	b.hdrAppend = get("hdr", "append")
	b.pikeCheckReq = get("pike", "pike_check_req")
	b.hasUserAgent = get("corex", "has_user_agent")
	b.hasRURIUser = get("corex", "has_ruri_user")
	b.processMaxfwd = get("maxfwd", "process_maxfwd")
	b.slSendReply = get("sl", "sl_send_reply")
	b.slReplyError = get("sl", "sl_reply_error")
	b.sendReply = get("sl", "send_reply")
	b.sanityCheck = get("sanity", "sanity_check")
	b.natUACTest = get("nathelper", "nat_uac_test")
	b.fixNatedRegister = get("nathelper", "fix_nated_register")
	b.setContactAlias = get("nathelper", "set_contact_alias")
	b.handleRURIAlias = get("nathelper", "handle_ruri_alias")
	b.isFirstHop = get("siputils", "is_first_hop")
	b.hasTotag = get("siputils", "has_totag")
	b.isRequest = get("siputils", "is_request")
	b.isReply = get("siputils", "is_reply")
	b.tCheckTrans = get("tm", "t_check_trans")
	b.tNewtran = get("tm", "t_newtran")
	b.tIsSet = get("tm", "t_is_set")
	b.tRelay = get("tm", "t_relay")
	b.tOnBranch = get("tm", "t_on_branch")
	b.tOnReply = get("tm", "t_on_reply")
	b.tOnFailure = get("tm", "t_on_failure")
	b.tIsCanceled = get("tm", "t_is_canceled")
	b.tPrecheckTrans = get("tmx", "t_precheck_trans")
	b.tIsBranchRoute = get("tmx", "t_is_branch_route")
	b.looseRoute = get("rr", "loose_route")
	b.recordRoute = get("rr", "record_route")
	b.checkRouteParam = get("rr", "check_route_param")
	b.addRRParam = get("rr", "add_rr_param")
	b.allowSourceAddress = get("permissions", "allow_source_address")
	b.authCheck = get("auth_db", "auth_check")
	b.authChallenge = get("auth", "auth_challenge")
	b.consumeCredentials = get("auth", "consume_credentials")
	b.save = get("registrar", "save")
	b.lookup = get("registrar", "lookup")
	b.rtpproxyManage = get("rtpproxy", "rtpproxy_manage")
	if len(missing) > 0 {
		return nil, fmt.Errorf("native basic route: the export table lacks %s", strings.Join(missing, ", "))
	}

	b.aRoute, b.aIS = strs("Route"), strs("IS")
	b.aIBSU, b.aISU, b.aRP = strs("IBSU"), strs("ISU"), strs("RP")
	b.aBranchRoute, b.aOnreplyRoute, b.aFailureRoute = strs("branch_route"), strs("onreply_route"), strs("failure_route")
	b.aBranchManage, b.aOnreplyManage, b.aFailureManage = strs("ksr_branch_manage"), strs("ksr_onreply_manage"), strs("ksr_failure_manage")
	b.aFltAcc, b.aFltAccMissed, b.aFltAccFailed, b.aFltNATS = ints(fltAcc), ints(fltAccMissed), ints(fltAccFailed), ints(fltNATS)
	b.aFlbNATB, b.aFlbNATSIPPING = ints(flbNATB), ints(flbNATSIPPING)
	b.aSi, b.aRm, b.aFu, b.aSp, b.aFd = strs("$si"), strs("$rm"), strs("$fu"), strs("$sp"), strs("$fd")
	b.aUa, b.aRu, b.aRs, b.aBranchIdx = strs("$ua"), strs("$ru"), strs("$rs"), strs("$T_branch_idx")
	b.aIPBan, b.aIPBanSet = strs("$sht(ipban=>$si)"), si("$sht(ipban=>$si)", 1)
	b.aMaxfwd, b.aSanityReq, b.aSanityRes, b.aNATTest = ints(10), ints(17895, 7), ints(17604, 6), ints(19)
	b.aR200Processed, b.aR483 = is(200, "Processed"), is(483, "Too Many Hops")
	b.aR200Keepalive, b.aR484 = is(200, "Keepalive"), is(484, "Address Incomplete")
	b.aR404NotHere, b.aR404, b.aR405, b.aR403 = is(404, "Not here"), is(404, "Not Found"), is(405, "Method Not Allowed"), is(403, "Not relaying")
	b.aLocation, b.aSaveLocation = strs("location"), si("location", 0)
	b.aPHint, b.aNatYes, b.aRRNatYes, b.aCO = strs("P-Hint: outbound\r\n"), strs("nat=yes"), strs(";nat=yes"), strs("co")
	b.aDbgReply, b.aDbgResponse = strs("incoming reply\n"), strs("response handling - python script\n")
	return b, nil
}

// Route runs the callback name, as the Python handler's method of that
// name would; false for a name the script does not define.
func (b *Basic) Route(c *kemi.Ctx, name, param string) bool {
	switch name {
	case "ksr_request_route":
		b.requestRoute(c)
	case "ksr_reply_route":
		b.replyRoute(c)
	case "ksr_branch_manage":
		b.branchManage(c)
	case "ksr_onreply_manage":
		b.onreplyManage(c)
	case "ksr_failure_manage":
		b.failureManage(c)
	default:
		return false
	}
	return true
}

// str1 is a one-string argument list made at run time.
func str1(s string) []val.Value { return []val.Value{val.OfStr(s)} }

// SIP request routing (request_route).
func (b *Basic) requestRoute(c *kemi.Ctx) int {
	// per request initial checks
	if b.routeReqinit(c) == exit {
		return 1
	}
	// NAT detection
	if b.routeNatdetect(c) == exit {
		return 1
	}
	// CANCEL processing
	if b.isCANCEL.b(c, nil) {
		if b.tCheckTrans.i(c, nil) > 0 {
			b.routeRelay(c)
		}
		return 1
	}
	// handle requests within SIP dialogs
	if b.routeWithindlg(c) == exit {
		return 1
	}
	// -- only initial requests (no To tag)
	// handle retransmissions
	if b.tPrecheckTrans.i(c, nil) > 0 {
		b.tCheckTrans.i(c, nil)
		return 1
	}
	if b.tCheckTrans.i(c, nil) == 0 {
		return 1
	}
	// authentication
	if b.routeAuth(c) == exit {
		return 1
	}
	// record routing for dialog forming requests (in case they are routed)
	// - remove preloaded route headers
	b.hdrRemove.call(c, b.aRoute)
	if b.isMethodIn.b(c, b.aIS) {
		b.recordRoute.call(c, nil)
	}
	// account only INVITEs
	if v := b.pvGet.call(c, b.aRm); v.Kind == val.Str && v.S == "INVITE" {
		b.setflag.call(c, b.aFltAcc)
	}
	// dispatch requests to foreign domains
	if b.routeSipout(c) == exit {
		return 1
	}
	// handle registrations
	if b.routeRegistrar(c) == exit {
		return 1
	}
	if b.hasRURIUser.i(c, nil) < 0 {
		// request with no Username in RURI
		b.slSendReply.call(c, b.aR484)
		return 1
	}
	// user location service
	b.routeLocation(c)
	return 1
}

// wrapper around tm relay function
func (b *Basic) routeRelay(c *kemi.Ctx) int {
	if b.isMethodIn.b(c, b.aIBSU) {
		if b.tIsSet.i(c, b.aBranchRoute) < 0 {
			b.tOnBranch.call(c, b.aBranchManage)
		}
	}
	if b.isMethodIn.b(c, b.aISU) {
		if b.tIsSet.i(c, b.aOnreplyRoute) < 0 {
			b.tOnReply.call(c, b.aOnreplyManage)
		}
	}
	if b.isINVITE.b(c, nil) {
		if b.tIsSet.i(c, b.aFailureRoute) < 0 {
			b.tOnFailure.call(c, b.aFailureManage)
		}
	}
	if b.tRelay.i(c, nil) < 0 {
		b.slReplyError.call(c, nil)
	}
	return exit
}

// "ALERT: pike blocking " + $rm + " from " + $fu + " (IP:" + $si + ":" + str($sp) + ")\n"
func (b *Basic) srcText(c *kemi.Ctx, prefix string) string {
	rm := b.pvGet.call(c, b.aRm)
	fu := b.pvGet.call(c, b.aFu)
	si := b.pvGet.call(c, b.aSi)
	sp := b.pvGet.call(c, b.aSp)
	return prefix + rm.S + " from " + fu.S + " (IP:" + si.S + ":" + pyStr(sp) + ")\n"
}

// Per SIP request initial checks
func (b *Basic) routeReqinit(c *kemi.Ctx) int {
	if !b.isMyself.b(c, str1(b.pvGet.call(c, b.aSi).S)) {
		if !b.pvIsNull.b(c, b.aIPBan) {
			// ip is already blocked
			b.dbg.call(c, str1(b.srcText(c, "request from blocked IP - ")))
			return exit
		}
		if b.pikeCheckReq.i(c, nil) < 0 {
			b.err.call(c, str1(b.srcText(c, "ALERT: pike blocking ")))
			b.pvSeti.call(c, b.aIPBanSet)
			return exit
		}
	}
	if b.hasUserAgent.i(c, nil) > 0 {
		ua := b.pvGete.call(c, b.aUa).S
		if strings.Contains(ua, "friendly") || strings.Contains(ua, "scanner") ||
			strings.Contains(ua, "sipcli") || strings.Contains(ua, "sipvicious") {
			b.slSendReply.call(c, b.aR200Processed)
			return exit
		}
	}
	if b.processMaxfwd.i(c, b.aMaxfwd) < 0 {
		b.slSendReply.call(c, b.aR483)
		return exit
	}
	if b.isOPTIONS.b(c, nil) && b.isMyselfRURI.b(c, nil) && b.hasRURIUser.i(c, nil) < 0 {
		b.slSendReply.call(c, b.aR200Keepalive)
		return exit
	}
	if b.sanityCheck.i(c, b.aSanityReq) < 0 {
		si := b.pvGet.call(c, b.aSi)
		sp := b.pvGet.call(c, b.aSp)
		b.err.call(c, str1("Malformed SIP message from "+si.S+":"+pyStr(sp)+"\n"))
		return exit
	}
	return 0 // Python's None
}

// Handle requests within SIP dialogs
func (b *Basic) routeWithindlg(c *kemi.Ctx) int {
	if b.hasTotag.i(c, nil) < 0 {
		return 1
	}
	// sequential request withing a dialog should
	// take the path determined by record-routing
	if b.looseRoute.i(c, nil) > 0 {
		if b.routeDlguri(c) == exit {
			return exit
		}
		if b.isBYE.b(c, nil) {
			// do accounting ...
			b.setflag.call(c, b.aFltAcc)
			// ... even if the transaction fails
			b.setflag.call(c, b.aFltAccFailed)
		} else if b.isACK.b(c, nil) {
			// ACK is forwarded statelessly
			if b.routeNatmanage(c) == exit {
				return exit
			}
		} else if b.isNOTIFY.b(c, nil) {
			// Add Record-Route for in-dialog NOTIFY as per RFC 6665.
			b.recordRoute.call(c, nil)
		}
		b.routeRelay(c)
		return exit
	}
	if b.isACK.b(c, nil) {
		if b.tCheckTrans.i(c, nil) > 0 {
			// no loose-route, but stateful ACK
			b.routeRelay(c)
			return exit
		}
		// ACK without matching transaction ... ignore and discard
		return exit
	}
	b.slSendReply.call(c, b.aR404NotHere)
	return exit
}

// Handle SIP registrations
func (b *Basic) routeRegistrar(c *kemi.Ctx) int {
	if !b.isREGISTER.b(c, nil) {
		return 1
	}
	if b.isflagset.b(c, b.aFltNATS) {
		b.setbflag.call(c, b.aFlbNATB)
		// do SIP NAT pinging
		b.setbflag.call(c, b.aFlbNATSIPPING)
	}
	if b.save.i(c, b.aSaveLocation) < 0 {
		b.slReplyError.call(c, nil)
	}
	return exit
}

// User location service
func (b *Basic) routeLocation(c *kemi.Ctx) int {
	rc := b.lookup.i(c, b.aLocation)
	if rc < 0 {
		b.tNewtran.call(c, nil)
		if rc == -1 || rc == -3 {
			b.sendReply.call(c, b.aR404)
			return exit
		} else if rc == -2 {
			b.sendReply.call(c, b.aR405)
			return exit
		}
	}
	// when routing via usrloc, log the missed calls also
	if b.isINVITE.b(c, nil) {
		b.setflag.call(c, b.aFltAccMissed)
	}
	b.routeRelay(c)
	return exit
}

// IP authorization and user uthentication
func (b *Basic) routeAuth(c *kemi.Ctx) int {
	if !b.isREGISTER.b(c, nil) {
		if b.allowSourceAddress.i(c, ints1) > 0 {
			// source IP allowed
			return 1
		}
	}
	if b.isREGISTER.b(c, nil) || b.isMyselfFURI.b(c, nil) {
		// authenticate requests
		fd := b.pvGet.call(c, b.aFd).S
		if b.authCheck.i(c, []val.Value{val.OfStr(fd), val.OfStr("subscriber"), val.OfInt(1)}) < 0 {
			fd = b.pvGet.call(c, b.aFd).S
			b.authChallenge.call(c, []val.Value{val.OfStr(fd), val.OfInt(0)})
			return exit
		}
		// user authenticated - remove auth header
		if !b.isMethodIn.b(c, b.aRP) {
			b.consumeCredentials.call(c, nil)
		}
	}
	// if caller is not local subscriber, then check if it calls
	// a local destination, otherwise deny, not an open relay here
	if !b.isMyselfFURI.b(c, nil) && !b.isMyselfRURI.b(c, nil) {
		b.slSendReply.call(c, b.aR403)
		return exit
	}
	return 1
}

// ints1 is the argument of allow_source_address(1).
var ints1 = ints(1)

// Caller NAT detection
func (b *Basic) routeNatdetect(c *kemi.Ctx) int {
	b.forceRport.call(c, nil)
	if b.natUACTest.i(c, b.aNATTest) > 0 {
		if b.isREGISTER.b(c, nil) {
			b.fixNatedRegister.call(c, nil)
		} else if b.isFirstHop.i(c, nil) > 0 {
			b.setContactAlias.call(c, nil)
		}
		b.setflag.call(c, b.aFltNATS)
	}
	return 1
}

// RTPProxy control
func (b *Basic) routeNatmanage(c *kemi.Ctx) int {
	if b.isRequest.i(c, nil) > 0 {
		if b.hasTotag.i(c, nil) > 0 {
			if b.checkRouteParam.i(c, b.aNatYes) > 0 {
				b.setbflag.call(c, b.aFlbNATB)
			}
		}
	}
	if !(b.isflagset.b(c, b.aFltNATS) || b.isbflagset.b(c, b.aFlbNATB)) {
		return 1
	}
	b.rtpproxyManage.call(c, b.aCO)
	if b.isRequest.i(c, nil) > 0 {
		// `not KSR.siputils.has_totag()`: -1 is true in Python, so this
		// only passes for 0, as in the Python script.
		if !b.hasTotag.b(c, nil) {
			if b.tIsBranchRoute.i(c, nil) > 0 {
				b.addRRParam.call(c, b.aRRNatYes)
			}
		}
	}
	if b.isReply.i(c, nil) > 0 {
		if b.isbflagset.b(c, b.aFlbNATB) {
			b.setContactAlias.call(c, nil)
		}
	}
	return 1
}

// URI update for dialog requests
func (b *Basic) routeDlguri(c *kemi.Ctx) int {
	if !b.isdsturiset.b(c, nil) {
		b.handleRURIAlias.call(c, nil)
	}
	return 1
}

// Routing to foreign domains
func (b *Basic) routeSipout(c *kemi.Ctx) int {
	if b.isMyselfRURI.b(c, nil) {
		return 1
	}
	b.hdrAppend.call(c, b.aPHint)
	b.routeRelay(c)
	return exit
}

// Manage outgoing branches (branch_route)
func (b *Basic) branchManage(c *kemi.Ctx) int {
	idx := b.pvGet.call(c, b.aBranchIdx)
	ru := b.pvGet.call(c, b.aRu)
	b.dbg.call(c, str1("new branch ["+pyStr(idx)+"] to "+ru.S+"\n"))
	b.routeNatmanage(c)
	return 1
}

// Manage incoming replies (onreply_route)
func (b *Basic) onreplyManage(c *kemi.Ctx) int {
	b.dbg.call(c, b.aDbgReply)
	scode := b.pvGet.call(c, b.aRs).AsInt()
	if scode > 100 && scode < 299 {
		b.routeNatmanage(c)
	}
	return 1
}

// Manage failure routing cases (failure_route)
func (b *Basic) failureManage(c *kemi.Ctx) int {
	if b.routeNatmanage(c) == exit {
		return 1
	}
	if b.tIsCanceled.i(c, nil) > 0 {
		return 1
	}
	return 1
}

// SIP response handling (reply_route)
func (b *Basic) replyRoute(c *kemi.Ctx) int {
	b.dbg.call(c, b.aDbgResponse)
	if b.sanityCheck.i(c, b.aSanityRes) < 0 {
		si := b.pvGet.call(c, b.aSi)
		sp := b.pvGet.call(c, b.aSp)
		b.err.call(c, str1("Malformed SIP response from "+si.S+":"+pyStr(sp)+"\n"))
		b.setDrop.call(c, nil)
		return exit
	}
	return 1
}

// Routes returns the native route sets by name (kemigo run --native NAME).
func Routes() []string { return []string{"basic"} }

// New builds the named native route set on an export table.
func New(name string, t *kemi.Table) (proxy.NativeRoutes, error) {
	switch name {
	case "basic":
		return NewBasic(t)
	}
	return nil, fmt.Errorf("no native route %q (have: %s)", name, strings.Join(Routes(), ", "))
}
