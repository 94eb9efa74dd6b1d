# Route script for core/proxy/integration_test.go (app_python3s style):
# the X-Test header of a request picks what the route does. Lines marked
# "MARK:<name>" are found by the test, which checks the file and line
# logged for the exception raised there.
import sys

import KSR


def fail_in_helper():
    raise ValueError("boom from a helper")  # MARK:raise


def ksr_request_route(msg):
    what = KSR.hdr.gete("X-Test")
    KSR.info("errors.py " + msg.Method + " " + what)
    if what == "raise":
        fail_in_helper()
    elif what == "typeerror":
        KSR.sl.sl_send_reply("not an int", 1)  # MARK:typeerror
    elif what == "reply-then-raise":
        KSR.sl.sl_send_reply(202, "Sent Before Raise")
        raise RuntimeError("after the reply")  # MARK:after-reply
    elif what == "exit":
        sys.exit()
    elif what == "reply-then-exit":
        KSR.sl.sl_send_reply(202, "Sent Before Exit")
        sys.exit(0)
        KSR.sl.sl_send_reply(500, "Not Stopped By Exit")
    elif what == "none":
        KSR.sl.sl_send_reply(200, "Returned None")
        return None
    else:
        KSR.sl.sl_send_reply(200, "Handled")
    return 1
