# Route script of the kemigo test Go tests: relays everything statefully to
# 192.0.2.50:5090, with a failure route for timeouts.
import KSR

FLT_SEEN = 3


def mod_init():
    return kemigo_relay()


class kemigo_relay:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        KSR.setflag(FLT_SEEN)
        KSR.pv.sets("$var(method)", KSR.pv.get("$rm"))
        if KSR.pv.gete("$hdr(X-Test)") == "raise":
            raise ValueError("asked to fail")
        if KSR.is_INVITE():
            KSR.tm.t_on_failure("ksr_failure_timeout")
        KSR.pv.sets("$du", "sip:192.0.2.50:5090")
        KSR.hdr.append("X-Relayed: yes\r\n")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def ksr_failure_timeout(self, msg):
        KSR.info("failure route: %d" % KSR.pv.get("$T_reply_code"))
        KSR.tm.t_reply(480, "Nobody There")
        return 1

    def ksr_reply_route(self, msg):
        KSR.info("reply %d" % KSR.pv.get("$rs"))
        return 1
