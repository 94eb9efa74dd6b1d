import KSR
import sys

counter = 0


class kamailio:
    def __init__(self):
        KSR.info("init\n")

    def child_init(self, rank):
        self.rank = rank
        return 0

    def ksr_request_route(self, msg):
        global counter
        counter += 1
        KSR.t.record(msg.Method + ":" + str(counter) + ":" + str(self.rank))
        return 1

    def raises(self, msg):
        KSR.t.record("before")
        x = {}["missing"]  # line 23
        return x

    def exits(self, msg):
        KSR.t.record("exit")
        sys.exit()

    def types(self, msg):
        out = []
        for args in [(1,), ("x",), (True,), (2**40,), ()]:
            try:
                KSR.t.add(*args) if len(args) else KSR.t.add()
                out.append("ok")
            except Exception as e:
                out.append(type(e).__name__)
        KSR.t.record(",".join(out))

    def missing_mod(self, msg):
        try:
            KSR.dispatcher.ds_select_dst(1, 4)
        except AttributeError as e:
            KSR.t.record("AE:" + str(e))
        try:
            KSR.t.nope()
        except AttributeError as e:
            KSR.t.record("AE:" + str(e))

    def keep(self, msg):
        global saved
        saved = msg

    def use_saved(self, msg):
        try:
            saved.Method
        except RuntimeError as e:
            KSR.t.record("RE:" + str(e))

    def retval(self, msg):
        KSR.t.record(str(KSR.t.xval(0)) + "|" + str(KSR.t.xval(1)) + "|" + repr(KSR.t.xval(2)) + "|" + repr(KSR.t.flag()) + "|" + repr(KSR.t.none()))

    def hdr(self, msg):
        KSR.t.record(str(msg.getHeader("call-id")) + "|" + str(msg.getHeader("X-No")) + "|" + str(msg.src_address) + "|" + msg.Type + "|" + msg.RURI)

    def spin(self, msg):
        n = 0
        for i in range(3000000):
            n += i * i % 7
        KSR.t.record("spun")


def mod_init():
    return kamailio()
