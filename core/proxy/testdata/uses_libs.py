import KSR
import mylib   # from [app_python3] extra_paths
import yaml    # Debian's python3-yaml, reached through extra_paths on any Python


def mod_init():
    return Handler()


class Handler:
    def ksr_request_route(self, msg):
        doc = yaml.safe_load("answer: 42")
        KSR.sl.sl_send_reply(200, mylib.greet() + " " + str(doc["answer"]))
        return 1
