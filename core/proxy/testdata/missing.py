# Route script for core/proxy/integration_test.go (app_python3 style): the
# handler has no ksr_request_route, so every request is logged as an error
# and not answered.
import KSR


def mod_init():
    return Handler()


class Handler:
    def child_init(self, rank):
        return 0

    def ksr_reply_route(self, msg):
        return 1
