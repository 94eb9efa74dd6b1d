# siptest's own check script (app_python3s style): answers every request
# with 200 and the method in the reason, and notes it in the log.
import KSR


def ksr_request_route(msg):
    KSR.info("siptest echo " + msg.Method)
    if msg.Method != "ACK":
        KSR.hdr.append_to_reply("X-Echo-Src: " + KSR.pv.get("$si") + "\r\n")
        KSR.sl.sl_send_reply(200, "Echo " + msg.Method)
    return 1
