import KSR
from KSR import pv


def mod_init():
    return Handler()


class Handler:
    def ksr_request_route(self, msg):
        KSR.sl.sl_send_reply(200)                  # line 11: wrong count
        KSR.dispatcher.ds_select_dst(1, 4)         # line 12: module missing
        KSR.tm.t_on_failure("nowhere")             # line 13: no such route
        KSR.tm.t_on_failure("fail")                # fine
        pv.get("$ru")                               # fine
        KSR.nosuchfn()                              # line 16: not implemented
        return 1

    def fail(self, msg):
        pass
