# Checks of `kemigo test` itself (cmd/kemigo/test_test.go runs this file
# explicitly; its name keeps directory runs from collecting it).
from kemigo_testing import KemigoError, Relay, Reply, ScriptError, sip_request

KEMIGO_CONFIG = "relay.toml"
KEMIGO_SCRIPT = "relay.py"


def test_relay_then_replies(kemigo):
    r = kemigo.request(method="INVITE", user="bob", body="v=0\r\n")
    assert r.status == "ok"
    assert r.isflagset(3) and r.flags == {3}
    assert r.du == "sip:192.0.2.50:5090"
    assert r.pv("$du") == "sip:192.0.2.50:5090"
    assert [x.code for x in r.replies] == [100]
    relay = r.relay
    assert isinstance(relay, Relay)
    assert relay.dest == ("udp", "192.0.2.50", 5090)
    assert relay.method == "INVITE" and relay.ruri == "sip:bob@127.0.0.1:5060"
    assert relay.header("X-Relayed") == "yes"
    assert len(relay.header_values("v")) == 2  # compact name: Via
    assert relay.header("Max-Forwards") == "70"  # only KSR.maxfwd lowers it
    assert relay.body == "v=0\r\n"
    assert kemigo.pv("$var(method)") == "INVITE"
    ringing = kemigo.reply(relay, 180)
    assert [(x.code, x.reason) for x in ringing.replies] == [(180, "Ringing")]
    assert isinstance(ringing.reply, Reply)
    assert ringing.reply.dest == ("udp", "127.0.0.1", 5080)
    assert len(ringing.reply.header_values("Via")) == 1
    assert ringing.logged("reply 180", level="info")
    ok = kemigo.reply(relay, 200, to_tag="callee")
    assert ok.reply.code == 200
    assert ok.reply.header("To").endswith(";tag=callee")


def test_timeout_runs_failure_route(kemigo):
    kemigo.request(method="INVITE", user="carol")
    ev = kemigo.wait(0.4)
    assert ev.logged("failure route: 408")
    assert [x.code for x in ev.replies] == [480]


def test_exception_gives_500(kemigo):
    r = kemigo.request(method="OPTIONS", user="bob", x_test="raise")
    assert r.status == "exception"
    assert "ValueError: asked to fail" in r.exception
    assert r.reply.status == (500, "Server Internal Error")
    assert r.relayed == []


def test_text_message_over_tcp(kemigo):
    text = sip_request("MESSAGE", "sip:bob@127.0.0.1:5060", proto="tcp", src=("127.0.0.1", 40000),
                       body="hello", headers=[("X-A", "1"), ("X-A", "2")])
    r = kemigo.request(text, proto="tcp", src=("127.0.0.1", 40000))
    assert r.relay.method == "MESSAGE"
    assert r.relay.header_values("X-A") == ["1", "2"]
    assert r.relay.header("Content-Type") == "text/plain"


def test_var_is_reset_between_tests(kemigo):
    assert kemigo.pv("$var(method)") in (None, 0, "")


def test_errors_are_exceptions(kemigo, tmp_path):
    try:
        kemigo.receive("not SIP at all")
    except KemigoError as e:
        assert "does not parse" in str(e)
    else:
        raise AssertionError("no KemigoError")
    bad = tmp_path / "bad.py"
    bad.write_text("import KSR\nsyntax error here\n")
    try:
        kemigo.load(str(bad))
    except ScriptError as e:
        assert "SyntaxError" in e.text and e.line == 2
    else:
        raise AssertionError("no ScriptError")
    # the script loaded before still routes
    assert kemigo.request(method="OPTIONS", user="bob").relay is not None
