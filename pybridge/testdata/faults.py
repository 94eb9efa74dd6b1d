# Route script of pybridge/faults_test.go. Lines marked "MARK:<name>" are
# looked up by the test.
import os
import threading

import KSR


def spin_until(flag):
    n = 0
    while not os.path.exists(flag):  # MARK:spin
        n += 1
    return n


class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        KSR.t.record("ok")
        return 1

    def spin(self, msg, flag):
        spin_until(flag)
        KSR.t.record("unstuck")
        return 1

    def go_panic(self, msg):
        try:
            KSR.t.nilderef()
        except RuntimeError as e:
            KSR.t.record("RuntimeError: " + str(e))
        return 1

    def from_thread(self, msg):
        out = []

        def run():
            for name, fn in [("KSR", lambda: KSR.t.record("from a thread")), ("msg", lambda: msg.Method)]:
                try:
                    fn()
                    out.append(name + ": no error")
                except Exception as e:
                    out.append(name + ": " + type(e).__name__ + ": " + str(e))

        th = threading.Thread(target=run)
        th.start()
        th.join()
        for line in out:
            KSR.t.record(line)
        return 1


def mod_init():
    return kamailio()
