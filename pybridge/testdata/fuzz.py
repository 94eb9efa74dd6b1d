# Route of FuzzBridge (fuzz_test.go): moves the fuzzed values across the
# bridge both ways and records what came out, for Go to check.
import KSR


class kamailio:
    def fuzz(self, msg):
        out = []
        try:
            s = msg.getHeader("X-Fuzz")  # Go -> Python str
            out.append("get:ok")
        except UnicodeDecodeError:
            s = None
            out.append("get:UnicodeDecodeError")
        if s is not None:
            try:
                KSR.t.record(s)  # Python -> Go str argument
                out.append("rec:ok")
            except ValueError:
                out.append("rec:ValueError")
            out.append("len:%d" % len(s))
        i = int(msg.getHeader("X-Int"))
        for v in (i, -i, i * 3, i // 7):
            try:
                out.append("add:%d" % KSR.t.add(v))  # int argument and int result
            except OverflowError:
                out.append("add:OverflowError")
        try:
            out.append("xval:%r" % (KSR.t.xval(i),))  # None, int or str result
        except OverflowError:
            out.append("xval:OverflowError")
        KSR.t.record("|".join(out))
        return 1


def mod_init():
    return kamailio()
