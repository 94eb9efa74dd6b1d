import KSR

seen = []


def ksr_request_route():
    KSR.t.record("3s-noarg")


def with_msg(msg):
    KSR.t.record("3s:" + msg.Method)
