# Routes of kemigo's tm integration tests (core/modules/tm/integration_test.go),
# in app_python3 style, loaded unchanged by kemigo and by Kamailio 5.6.
#
# No registrar and no rr: the test tells the proxy where to go in headers of
# the INVITE, and in-dialog requests (ACK, BYE) are sent by the caller to the
# proxy with the callee's Contact as R-URI, and relayed there.
#
#   R-URI user "bob":  $du = X-Target                       (one branch)
#   R-URI user "fork": $du = X-Target, + branch X-Target2   (parallel fork)
#   failure route:     486 with X-Fail-Target -> $ru = $du = it, relay
#                      (serial fork); with "X-Fail-Mode: du-only" only $du
#
# Every callback logs a "tmtest-..." line the test can wait for.
import KSR


def mod_init():
    return kamailio()


def callid():
    return str(KSR.pv.get("$ci"))


class kamailio:
    def __init__(self):
        pass

    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS() and KSR.corex.has_ruri_user() < 0:
            # readiness probe
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                KSR.info("tmtest-cancel callid=" + callid() + "\n")
                KSR.tm.t_relay()
            return 1
        check = -1
        if KSR.hdr.get("X-Skip-Check") is None:
            check = KSR.tm.t_check_trans()
        if check == 0:
            # a retransmission (tm resent the last reply) or the ACK of a
            # negative final reply (consumed by tm)
            KSR.info("tmtest-absorbed " + KSR.pv.get("$rm") + " callid=" + callid() + "\n")
            return 1
        if KSR.siputils.has_totag() > 0:
            # check is -1 here, also for the ACK of a relayed 2xx (Kamailio
            # 5.6.3 does not match it to the INVITE transaction)
            KSR.info("tmtest-indialog " + KSR.pv.get("$rm") + " check=" + str(check) +
                     " callid=" + callid() + "\n")
            if KSR.hdr.get("X-Target") is not None:
                KSR.setdsturi(KSR.hdr.get("X-Target"))
            if KSR.tm.t_relay() < 0:
                KSR.sl.sl_reply_error()
            return 1
        if not KSR.is_INVITE():
            KSR.sl.sl_send_reply(405, "Method Not Allowed")
            return 1
        first = KSR.hdr.get("X-Target")
        if first is None:
            KSR.sl.sl_send_reply(404, "No X-Target")
            return 1
        if KSR.pv.get("$rU") == "fork":
            second = KSR.hdr.get("X-Target2")
            if second is not None:
                # before setting $du: Kamailio's corex copies the current
                # $du (and path, branch flags, socket) into the new branch
                KSR.corex.append_branch_uri(second)
        KSR.setdsturi(first)
        KSR.tm.t_on_reply("tm_onreply")
        KSR.tm.t_on_failure("tm_failure")
        KSR.info("tmtest-relay " + KSR.pv.get("$rU") + " callid=" + callid() + "\n")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def ksr_reply_route(self, msg):
        return 1

    def tm_onreply(self, msg):
        KSR.info("tmtest-onreply code=" + str(KSR.pv.get("$rs")) + " callid=" + callid() + "\n")
        return 1

    def tm_failure(self, msg):
        code = KSR.pv.get("$T_reply_code")
        KSR.info("tmtest-failure code=" + str(code) + " callid=" + callid() + "\n")
        if KSR.tm.t_is_canceled() > 0:
            return 1
        if KSR.tm.t_check_status("486") > 0:
            nxt = KSR.hdr.get("X-Fail-Target")
            if nxt is not None:
                KSR.info("tmtest-serial to " + nxt + " callid=" + callid() + "\n")
                if KSR.hdr.get("X-Fail-Mode") != "du-only":
                    # Kamailio forwards only new branches from a failure
                    # route: a rewritten R-URI or appended branches; $du
                    # alone adds none ("no branches for forwarding")
                    KSR.seturi(nxt)
                KSR.setdsturi(nxt)
                if KSR.tm.t_relay() < 0:
                    KSR.err("tmtest-serial relay failed callid=" + callid() + "\n")
        return 1
