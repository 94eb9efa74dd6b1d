# Route script of core/proxy/faults_test.go (app_python3 style).
#
# INVITEs are relayed statefully to their X-Target header, with a branch,
# an onreply and a failure route armed; the Call-ID "raise-<kind>-..."
# makes the route of that kind raise (request, reply, onreply, failure,
# branch, onsend). OPTIONS do what their X-Test header says. Lines marked
# "MARK:<name>" are looked up by the test.
import os
import threading
import time

import KSR


def mod_init():
    return Faults()


def fault(kind):
    return KSR.pv.get("$ci").startswith("raise-" + kind + "-")


def spin_until(flag):
    n = 0
    while not os.path.exists(flag):  # MARK:loop
        n += 1
    return n


def from_thread(msg):
    out = []

    def run():
        try:
            KSR.info("from a thread the script started\n")
            out.append("no error")
        except Exception as e:
            out.append(type(e).__name__ + ": " + str(e))

    th = threading.Thread(target=run)
    th.start()
    th.join()
    return out[0]


class Faults:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            return self.options(msg)
        if fault("request"):
            raise ValueError("fault in the request route")  # MARK:request
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1  # retransmission, or the ACK of a negative reply
        if KSR.siputils.has_totag() > 0:
            if KSR.tm.t_relay() < 0:
                KSR.sl.sl_reply_error()
            return 1
        KSR.setdsturi(KSR.hdr.get("X-Target"))
        KSR.tm.t_on_branch("faults_branch")
        KSR.tm.t_on_reply("faults_onreply")
        KSR.tm.t_on_failure("faults_failure")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def options(self, msg):
        what = KSR.hdr.get("X-Test")
        if what == "loop":
            spin_until(KSR.hdr.get("X-Flag"))
            KSR.sl.sl_send_reply(200, "Unstuck")
        elif what == "sleep":
            time.sleep(float(KSR.hdr.get("X-Sleep")))
            KSR.sl.sl_send_reply(200, "Slept")
        elif what == "thread":
            KSR.info("thread result: " + from_thread(msg) + "\n")
            KSR.sl.sl_send_reply(200, "Thread Done")
        else:
            KSR.sl.sl_send_reply(200, "Handled")
        return 1

    def ksr_reply_route(self, msg):
        if fault("reply") and KSR.pv.get("$rs") == 180:
            raise KeyError("fault in the reply route")  # MARK:reply
        return 1

    def faults_onreply(self, msg):
        if fault("onreply"):
            raise RuntimeError("fault in the onreply route")  # MARK:onreply
        return 1

    def faults_failure(self, msg):
        if fault("failure"):
            return 1 // (KSR.pv.get("$T_reply_code") - 486)  # MARK:failure
        return 1

    def faults_branch(self, msg):
        if fault("branch"):
            raise LookupError("fault in the branch route")  # MARK:branch
        return 1

    def ksr_onsend_route(self, msg):
        if fault("onsend"):
            raise AttributeError("fault in the onsend route")  # MARK:onsend
        return 1
