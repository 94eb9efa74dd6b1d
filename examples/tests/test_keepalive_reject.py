"""Route tests of examples/keepalive_reject.py on kemigo's core, with its
configuration (htables ipban and rate, the RATE_LIMIT/RATE_WINDOW defines).

Run: kemigo test examples/tests/test_keepalive_reject.py
"""
import KSR  # the real KSR: tests may call it too (on a dummy message)

from kemigo_testing import parametrize

KEMIGO_CONFIG = "../keepalive_reject.toml"
KEMIGO_SCRIPT = "../keepalive_reject.py"

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
LIMIT = int(KSR.kx.get_defn("RATE_LIMIT"))
WINDOW = int(KSR.kx.get_defn("RATE_WINDOW"))


def note(n):
    return "%d/%d in %ds" % (n, LIMIT, WINDOW)


def test_keepalive(kemigo):
    r = kemigo.request(method="OPTIONS")  # R-URI: the proxy, no user
    assert r.reply.status == (200, "Keepalive")
    assert r.reply.header("Allow") == ALLOW
    assert r.reply.header("X-Rate-Note") == note(1)
    assert r.reply.header("Server") == "kemigo"
    assert r.relayed == []


def test_unknown_method_405(kemigo):
    r = kemigo.request(method="PUBLISH", user="alice")
    assert r.reply.status == (405, "Method Not Allowed")
    assert r.reply.header("Allow") == ALLOW


def test_no_relaying(kemigo):
    r = kemigo.request(method="INVITE", user="alice")
    assert r.reply.status == (403, "Relaying Forbidden")
    assert "Allow" not in r.reply
    assert r.relayed == []
    assert r.logged("rejecting INVITE to sip:alice@", level="info")


def test_max_forwards_0(kemigo):
    r = kemigo.request(method="OPTIONS", max_forwards=0)
    assert r.reply.status == (483, "Too Many Hops")
    assert r.reply.header("X-Rate-Note") is None  # checked before the rate note


def test_sanity_cseq_mismatch_400(kemigo):
    r = kemigo.request(method="OPTIONS", user="alice", cseq="1 INFO")
    assert r.reply.code == 400
    assert r.logged("Malformed SIP message from 127.0.0.1", level="error")


def test_ack_is_never_answered(kemigo):
    r = kemigo.request(method="ACK", user="alice")
    assert r.sent == []


@parametrize("ua", ["friendly-scanner", "sipvicious/0.3", "SIPCLI"])
def test_scanner_is_banned(kemigo, ua):
    scanner = ("192.0.2.66", 5060)
    r = kemigo.request(method="OPTIONS", user_agent=ua, src=scanner)
    assert r.reply.status == (403, "Forbidden")
    assert r.logged("banned 192.0.2.66", level="warn")
    assert kemigo.pv("$sht(ipban=>192.0.2.66)") == 1
    # from now on that source gets nothing back, others still do
    again = kemigo.request(method="OPTIONS", src=scanner)
    assert again.sent == []
    assert again.logged("dropping OPTIONS from banned 192.0.2.66")
    assert kemigo.request(method="OPTIONS").reply.code == 200


def test_each_test_starts_clean(kemigo):
    # the ban of the test above is gone: htables are emptied for every test
    assert kemigo.pv("$sht(ipban=>192.0.2.66)") is None
    assert kemigo.request(method="OPTIONS", src=("192.0.2.66", 5060)).reply.code == 200


def test_source_banned_beforehand(kemigo):
    # test code can call KSR itself, here to prepare the htable
    KSR.htable.sht_seti("ipban", "203.0.113.9", 1)
    r = kemigo.request(method="OPTIONS", src=("203.0.113.9", 5060))
    assert r.sent == []
    assert r.logged("dropping OPTIONS from banned 203.0.113.9", level="debug")


def test_rate_note_then_503(kemigo):
    src = ("198.51.100.7", 5060)
    for i in range(1, LIMIT + 1):
        r = kemigo.request(method="OPTIONS", src=src)
        assert r.reply.code == 200
        assert r.reply.header("X-Rate-Note") == note(i)
    r = kemigo.request(method="OPTIONS", src=src)
    assert r.reply.status == (503, "Rate Limit Exceeded")
    assert r.reply.header("Retry-After") == str(WINDOW)
    assert r.reply.header("X-Rate-Note") == note(LIMIT + 1)
    assert r.logged("rate note: 198.51.100.7 sent more than %d requests" % LIMIT)
    # counted per source: another address is not limited
    assert kemigo.request(method="OPTIONS", src=("198.51.100.8", 5060)).reply.code == 200


def test_tcp(kemigo):
    r = kemigo.request(method="OPTIONS", proto="tcp", src=("127.0.0.1", 40000))
    assert r.reply.status == (200, "Keepalive")
    assert r.reply.dest == ("tcp", "127.0.0.1", 40000)
