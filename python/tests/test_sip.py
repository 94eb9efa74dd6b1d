"""Tests of the SIP builders of kemigo_testing. They need no kemigo: run
them with plain pytest (python3 -m pytest python/tests) or kemigo test."""
from kemigo_testing import normalize, parse, sip_reply, sip_request
from kemigo_testing.sip import header_name


def hdr(text, name):
    return [v for n, v in parse(text)[1] if n.lower() == name.lower()]


def test_defaults():
    t = sip_request()
    start, hdrs, body = parse(t)
    assert start == "OPTIONS sip:127.0.0.1:5060 SIP/2.0"
    names = [n for n, _ in hdrs]
    assert names == ["Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "User-Agent", "Content-Length"]
    assert hdr(t, "Via")[0].startswith("SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK")
    assert hdr(t, "Via")[0].endswith(";rport")
    assert hdr(t, "CSeq") == ["1 OPTIONS"]
    assert ";tag=" in hdr(t, "From")[0] and ";tag=" not in hdr(t, "To")[0]
    assert t.endswith("\r\n\r\n") and "\n" not in t.replace("\r\n", "")
    assert body == ""


def test_fresh_ids():
    a, b = sip_request(), sip_request()
    assert hdr(a, "Call-ID") != hdr(b, "Call-ID")
    assert hdr(a, "Via") != hdr(b, "Via")


def test_invite_with_body_and_extras():
    t = sip_request("invite", user="bob", host="proxy.example.com", proto="tcp", src=("10.0.0.1", 4000),
                    body="v=0\n", user_agent="friendly-scanner", x_test=["1", "2"], call_id="c1",
                    headers=[("P-Custom", "v")])
    start, hdrs, body = parse(t)
    assert start == "INVITE sip:bob@proxy.example.com SIP/2.0"
    assert hdr(t, "Via")[0].startswith("SIP/2.0/TCP 10.0.0.1:4000;")
    assert hdr(t, "Contact") == ["<sip:alice@10.0.0.1:4000;transport=tcp>"]
    assert hdr(t, "User-Agent") == ["friendly-scanner"]
    assert hdr(t, "X-Test") == ["1", "2"]
    assert hdr(t, "P-Custom") == ["v"]
    assert hdr(t, "Call-ID") == ["c1"]
    assert hdr(t, "Content-Type") == ["application/sdp"]
    assert hdr(t, "Content-Length") == ["5"]
    assert body == "v=0\r\n"


def test_omit_and_override():
    t = sip_request("OPTIONS", max_forwards=None, user_agent=None, cseq="7 INFO", content_length=None)
    assert hdr(t, "Max-Forwards") == [] and hdr(t, "User-Agent") == [] and hdr(t, "Content-Length") == []
    assert hdr(t, "CSeq") == ["7 INFO"]
    t = sip_request("REGISTER", user="alice", from_uri="sip:alice@example.com", to_tag="x")
    assert hdr(t, "To") == ["<sip:alice@example.com>;tag=x"]


def test_header_names():
    assert header_name("user_agent") == "User-Agent"
    assert header_name("call_id") == "Call-ID"
    assert header_name("www_authenticate") == "WWW-Authenticate"
    assert header_name("x_rate_note") == "X-Rate-Note"


def test_normalize_hand_written():
    t = normalize("""
        OPTIONS sip:127.0.0.1 SIP/2.0
        Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1
        Call-ID: x

        hello
        """)
    assert t.startswith("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia:")
    start, hdrs, body = parse(t)
    assert hdrs[-1] == ("Content-Length", str(len(body)))
    assert body == "hello\r\n"
    assert normalize(t) == t


def test_reply_to_request():
    req = sip_request("INVITE", user="bob", record_route="<sip:proxy;lr>")
    req = req.replace("Via: ", "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp\r\nVia: ", 1)
    r = sip_reply(req, 180)
    start, hdrs, _ = parse(r)
    assert start == "SIP/2.0 180 Ringing"
    assert len(hdr(r, "Via")) == 2 and hdr(r, "Via")[0] == "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp"
    assert hdr(r, "Record-Route") == ["<sip:proxy;lr>"]
    assert ";tag=" in hdr(r, "To")[0]
    assert hdr(r, "CSeq") == ["1 INVITE"]
    assert hdr(sip_reply(req, 100), "To") == hdr(req, "To")
    assert hdr(sip_reply(req, 486, to_tag="t1"), "To")[0].endswith(";tag=t1")
    assert parse(sip_reply(req, 699))[0] == "SIP/2.0 699 Unknown"
