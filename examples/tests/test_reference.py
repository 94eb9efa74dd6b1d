"""Route tests of Kamailio's reference KEMI script, unchanged, on kemigo's
core: /usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py
(Debian package "kamailio").

Run: kemigo test examples/tests/test_reference.py
"""
import os

from kemigo_testing import sip_request, skip

KEMIGO_SCRIPT = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

if not os.path.exists(KEMIGO_SCRIPT):
    skip("install the Debian package kamailio for its example KEMI scripts")

# The reference script's FLT_ACC flag (accounting of INVITEs).
FLT_ACC = 1


def test_options_keepalive(kemigo):
    # OPTIONS to the proxy itself, no user in the R-URI: 200 Keepalive
    r = kemigo.request(method="OPTIONS", ruri="sip:" + kemigo.address)
    assert r.status == "ok"
    assert [(x.code, x.reason) for x in r.replies] == [(200, "Keepalive")]
    assert r.relayed == []
    # the reply goes back where the request came from (Via rport)
    assert r.reply.dest == ("udp", "127.0.0.1", 5080)
    assert r.reply.header("Call-ID") == r.pv("$ci")


def test_keepalive_over_tcp(kemigo):
    r = kemigo.request(method="OPTIONS", ruri="sip:" + kemigo.address, proto="tcp", src=("127.0.0.1", 40001))
    assert r.reply.code == 200
    assert r.reply.proto == "tcp"


def test_friendly_scanner(kemigo):
    r = kemigo.request(method="OPTIONS", user="bob", user_agent="friendly-scanner")
    assert r.reply.status == (200, "Processed")


def test_max_forwards_zero(kemigo):
    r = kemigo.request(method="OPTIONS", user="bob", max_forwards=0)
    assert r.reply.status == (483, "Too Many Hops")
    assert len(r.replies) == 1


def test_sanity_cseq_method_mismatch(kemigo):
    # sanity_check(17895, 7): the sanity module itself answers 400, then the
    # script logs and stops
    r = kemigo.request(method="OPTIONS", user="bob", cseq="1 INFO")
    assert r.reply.status == (400, "CSeq method does not match request method")
    assert r.logged("Malformed SIP message from 127.0.0.1:5080", level="error")


def test_sanity_duplicate_call_id_dropped(kemigo):
    # a second Call-ID header fails sanity without any reply (as 5.6.3)
    r = kemigo.request(method="OPTIONS", user="bob", call_id=["dup-1@kemigo.test", "dup-1@kemigo.test"])
    assert r.sent == []
    assert r.logged("Malformed SIP message from")


def test_no_accounting_flag_for_options(kemigo):
    # FLT_ACC is set for INVITEs only
    r = kemigo.request(method="OPTIONS", ruri="sip:" + kemigo.address)
    assert not r.isflagset(FLT_ACC)
    assert r.flags == frozenset()


def test_hand_written_message(kemigo):
    # SIP text works too; line ends and Content-Length are fixed up
    r = kemigo.request("""
        OPTIONS sip:127.0.0.1:5060 SIP/2.0
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-hand-1;rport
        Max-Forwards: 70
        From: <sip:alice@127.0.0.1>;tag=1
        To: <sip:127.0.0.1:5060>
        Call-ID: hand-written-1@kemigo.test
        CSeq: 1 OPTIONS
        """)
    assert r.reply.code == 200
    assert r.reply.header("To").endswith(";tag=" + r.reply.header("To").split(";tag=")[1])
    assert r.pv("$ci") == "hand-written-1@kemigo.test"


def test_mod_init_logged(kemigo):
    # every test imports the script again: mod_init and child_init run
    assert any("from Python mod init" in line.message for line in kemigo.logs)
