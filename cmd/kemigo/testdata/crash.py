# Route script of cmd/kemigo/crash_test.go: "X-Crash: yes" makes the route
# crash in C code (ctypes reads address 0), "X-Crash: thread" makes a
# thread the route starts do it. Lines marked "MARK:<name>" are looked up
# by the test.
import threading

import KSR


def crash_now():
    import ctypes
    ctypes.string_at(0)  # MARK:crash


def ksr_request_route(msg):
    how = KSR.hdr.get("X-Crash")
    if how == "yes":
        crash_now()
    elif how == "thread":
        th = threading.Thread(target=crash_now)
        th.start()
        th.join()
    KSR.sl.sl_send_reply(200, "Alive")
    return 1
