# keepalive_reject.py - a small kemigo route script in app_python3s style
# (module-level functions, no mod_init/class).
#
# What it does, for every request it receives:
#
#   1. drops requests from sources banned in the "ipban" htable;
#   2. Max-Forwards: 483 when it reaches 0 (KSR.maxfwd);
#   3. structural checks (KSR.sanity): a bad message is logged and dropped
#      (the sanity module answers 400 itself where Kamailio does);
#   4. SIP scanners (by User-Agent): 403, and their IP is banned for the
#      ipban table's autoexpire;
#   5. a rate note per source IP: requests are counted in the "rate" htable
#      over a fixed window; every local reply carries an X-Rate-Note header,
#      and above RATE_LIMIT the request gets 503 with Retry-After;
#   6. methods it does not know: 405 with an Allow header;
#   7. OPTIONS for the proxy itself (no user in the R-URI): 200 Keepalive;
#   8. everything else: 403 - this example answers, it never relays.
#
# Run it (see README.md):
#   kemigo run -c examples/keepalive_reject.toml
#
# Kamailio's app_python3s calls ksr_request_route() with no argument,
# kemigo passes the msg object when the function takes one: "msg=None"
# makes this script run unchanged on both.

import KSR

ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER")
SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "sipsak-scan")


def define(name, default):
    """An integer define ([kx.defines] in kemigo.toml, #!define in Kamailio)."""
    if KSR.kx.ifdef(name):
        return KSR.kx.get_defn(name)
    return default


def script_child_init(rank=0):
    KSR.info("keepalive_reject.py ready in worker rank %d" % rank)
    return 0


def ksr_request_route(msg=None):
    method = msg.Method if msg is not None else KSR.kx.get_method()
    src = KSR.pv.get("$si")

    # 1. banned sources get nothing back
    if KSR.htable.sht_is_null("ipban", src) < 0:
        KSR.dbg("dropping " + method + " from banned " + src)
        return 1

    # 2. loops and long paths
    if KSR.maxfwd.process_maxfwd(10) < 0:
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return 1

    # 3. malformed requests (same masks as Kamailio's example scripts)
    if KSR.sanity.sanity_check(17895, 7) < 0:
        KSR.err("Malformed SIP message from " + src + ":" + str(KSR.pv.get("$sp")))
        return 1

    # 4. scanners: forbid, and ban the source
    ua = KSR.pv.gete("$ua").lower()
    for s in SCANNERS:
        if s in ua:
            KSR.pv.seti("$sht(ipban=>$si)", 1)
            KSR.warn("banned " + src + " (User-Agent " + KSR.pv.gete("$ua") + ")")
            if method != "ACK":
                KSR.sl.sl_send_reply(403, "Forbidden")
            return 1

    # 5. rate note: a fixed window per source IP (the rate table's autoexpire,
    #    with updateexpire=0 so that counting does not extend it)
    limit = define("RATE_LIMIT", 20)
    window = define("RATE_WINDOW", 10)
    n = KSR.htable.sht_inc("rate", src)
    if n < 0:
        KSR.err("htable 'rate' is not configured (sht_inc returned %d)" % n)
        n = 0
    KSR.hdr.append_to_reply("X-Rate-Note: %d/%d in %ds\r\n" % (n, limit, window))
    if n > limit:
        if n == limit + 1:
            KSR.notice("rate note: %s sent more than %d requests in %ds" % (src, limit, window))
        if method != "ACK":
            KSR.hdr.append_to_reply("Retry-After: %d\r\n" % window)
            KSR.sl.sl_send_reply(503, "Rate Limit Exceeded")
        return 1

    if method == "ACK":
        # an ACK to one of our negative replies ends here: never answered
        KSR.dbg("ACK for " + KSR.pv.get("$ru") + " absorbed")
        return 1

    # 6. unknown methods
    if method not in ALLOWED:
        KSR.hdr.append_to_reply("Allow: " + ", ".join(ALLOWED) + "\r\n")
        KSR.sl.sl_send_reply(405, "Method Not Allowed")
        return 1

    # 7. keepalives for the proxy itself
    if method == "OPTIONS" and KSR.is_myself_ruri() and KSR.corex.has_ruri_user() < 0:
        KSR.hdr.append_to_reply("Allow: " + ", ".join(ALLOWED) + "\r\n")
        KSR.sl.sl_send_reply(200, "Keepalive")
        return 1

    # 8. no relaying in this example
    KSR.info("rejecting " + method + " to " + KSR.pv.get("$ru") + " from " + src)
    KSR.sl.sl_send_reply(403, "Relaying Forbidden")
    return 1
