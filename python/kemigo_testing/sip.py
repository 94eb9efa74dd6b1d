"""SIP text builders and a small parser for route tests.

Pure Python: importable anywhere (no KSR needed), so the builders can be
used and tested outside kemigo too.
"""
from __future__ import annotations

import re
import secrets
import textwrap
from typing import Iterable, List, Optional, Sequence, Tuple, Union

__all__ = [
    "sip_request",
    "sip_reply",
    "normalize",
    "parse",
    "header_name",
    "canonical",
    "REASONS",
    "DEFAULT_SRC",
]

Header = Tuple[str, str]

# RFC 3261 §7.3.3 compact forms and a few more (RFC 3515, 3841, 4028, 6665).
COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
    "v": "Via", "r": "Refer-To", "b": "Referred-By", "a": "Accept-Contact",
    "j": "Reject-Contact", "d": "Request-Disposition", "x": "Session-Expires",
    "o": "Event", "u": "Allow-Events",
}

# Header names whose usual spelling is not Title-Case of the words.
_SPECIAL = {
    "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version", "rack": "RAck", "rseq": "RSeq",
    "p-asserted-identity": "P-Asserted-Identity", "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match", "rtp-rxstat": "RTP-RxStat",
}

# Where requests come from unless a test says otherwise: a user agent on
# loopback (not a port the examples' proxies listen on).
DEFAULT_SRC = ("127.0.0.1", 5080)

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


def header_name(key: str) -> str:
    """A Python keyword argument name as a SIP header name:
    user_agent -> User-Agent, call_id -> Call-ID, x_test -> X-Test."""
    low = key.strip("_").replace("_", "-").lower()
    if low in _SPECIAL:
        return _SPECIAL[low]
    return "-".join(w[:1].upper() + w[1:] for w in low.split("-"))


def canonical(name: str) -> str:
    """Lower-case header name with compact forms expanded (for lookups)."""
    n = name.strip()
    if len(n) == 1:
        n = COMPACT.get(n.lower(), n)
    return n.lower()


def _token(n: int = 8) -> str:
    return secrets.token_hex(n)


def _hostport(host: str, port: Optional[int]) -> str:
    if ":" in host and not host.startswith("["):
        host = "[" + host + "]"
    return host if not port else "%s:%d" % (host, port)


def _values(v) -> List[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v if x is not None]
    return [str(v)]


def sip_request(
    method: str = "OPTIONS",
    ruri: Optional[str] = None,
    *,
    user: Optional[str] = None,
    host: str = "127.0.0.1:5060",
    proto: str = "udp",
    src: Tuple[str, int] = DEFAULT_SRC,
    via: Union[str, Sequence[str], None] = "",
    from_uri: Optional[str] = None,
    from_tag: Optional[str] = "",
    to_uri: Optional[str] = None,
    to_tag: Optional[str] = None,
    call_id: Optional[str] = "",
    cseq: Union[int, str, None] = 1,
    max_forwards: Union[int, str, None] = 70,
    contact: Optional[str] = "",
    user_agent: Optional[str] = "kemigo-test",
    content_type: Optional[str] = None,
    body: Union[str, bytes] = "",
    headers: Iterable[Header] = (),
    content_length: Union[int, str, None] = "",
    **extra,
) -> str:
    """Build the text of a SIP request (CRLF line ends, Content-Length set).

    Every standard header has a default and can be replaced by a keyword
    argument, or left out with None: via, from_uri/from_tag, to_uri/to_tag,
    call_id, cseq (a number, or "2 INVITE"), max_forwards, contact (default
    only for INVITE, REGISTER, SUBSCRIBE and REFER), user_agent,
    content_length. Any other keyword is one more header, its name spelled
    from the keyword (x_test="1" -> "X-Test: 1"; a list gives the header
    several times); headers=[(name, value), ...] adds headers verbatim, in
    order, after those.

    ruri defaults to sip:[user@]host, where host is the proxy's address
    (kemigo.request() fills it in from the configuration). src and proto go
    into the top Via (with rport), and must match what the request is
    received from: kemigo.request() passes the same ones.
    """
    method = method.upper()
    if ruri is None:
        ruri = "sip:" + (user + "@" if user else "") + host
    src_host, src_port = src[0], int(src[1])
    lines: List[Header] = []
    if via == "":
        via = "SIP/2.0/%s %s;branch=z9hG4bK%s;rport" % (
            proto.upper(), _hostport(src_host, src_port), _token(6))
    for v in _values(via):
        lines.append(("Via", v))
    for v in _values(max_forwards):
        lines.append(("Max-Forwards", v))
    if from_uri is None:
        from_uri = "sip:%s@%s" % ("alice", _hostport(src_host, None))
    if from_tag == "":
        from_tag = _token(4)
    lines.append(("From", "<%s>%s" % (from_uri, ";tag=" + from_tag if from_tag else "")))
    if to_uri is None:
        to_uri = ruri if method != "REGISTER" else from_uri
    lines.append(("To", "<%s>%s" % (to_uri, ";tag=" + to_tag if to_tag else "")))
    if call_id == "":
        call_id = _token(8) + "@kemigo.test"
    for v in _values(call_id):
        lines.append(("Call-ID", v))
    if cseq is not None:
        cs = str(cseq)
        lines.append(("CSeq", cs if " " in cs.strip() else "%s %s" % (cs, method)))
    if contact == "":
        contact = None
        if method in ("INVITE", "REGISTER", "SUBSCRIBE", "REFER"):
            contact = "<sip:alice@%s;transport=%s>" % (_hostport(src_host, src_port), proto.lower())
    for v in _values(contact):
        lines.append(("Contact", v))
    for v in _values(user_agent):
        lines.append(("User-Agent", v))
    for k, v in extra.items():
        for x in _values(v):
            lines.append((header_name(k), x))
    lines.extend((str(n), str(v)) for n, v in headers)
    return _assemble("%s %s SIP/2.0" % (method, ruri), lines, body, content_type, content_length)


def _assemble(start: str, lines: List[Header], body: Union[str, bytes], content_type: Optional[str],
              content_length: Union[int, str, None]) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "surrogateescape")
    if body and "\r\n" not in body:
        body = body.replace("\n", "\r\n")
    if body and content_type is None and not any(canonical(n) == "content-type" for n, _ in lines):
        content_type = "application/sdp" if body.startswith("v=0") else "text/plain"
    if content_type:
        lines.append(("Content-Type", content_type))
    if content_length == "":
        content_length = len(body.encode("utf-8", "surrogateescape"))
    if content_length is not None:
        lines.append(("Content-Length", str(content_length)))
    out = [start] + ["%s: %s" % (n, v) for n, v in lines]
    return "\r\n".join(out) + "\r\n\r\n" + body


def normalize(text: str) -> str:
    """Make hand-written SIP text valid: strip the indentation of a
    triple-quoted string and leading blank lines, end header lines with
    CRLF, end the headers with an empty line, and set Content-Length from
    the body when it is missing."""
    if "\r\n" not in text:
        text = textwrap.dedent(text).lstrip("\n")
        if "\n\n" in text:
            head, body = text.split("\n\n", 1)
        else:
            head, body = text.rstrip("\n"), ""
        head_lines = [ln.rstrip() for ln in head.split("\n")]
        body = body.replace("\n", "\r\n")
    else:
        if "\r\n\r\n" in text:
            head, body = text.split("\r\n\r\n", 1)
        else:
            head, body = text.rstrip("\r\n"), ""
        head_lines = head.split("\r\n")
    if not any(canonical(ln.split(":", 1)[0]) == "content-length" for ln in head_lines[1:] if ":" in ln):
        head_lines.append("Content-Length: %d" % len(body.encode("utf-8", "surrogateescape")))
    return "\r\n".join(head_lines) + "\r\n\r\n" + body


def parse(text: str) -> Tuple[str, List[Header], str]:
    """Split SIP text into (start line, [(name, value)], body); folded
    header lines are joined, names keep their spelling."""
    if "\r\n\r\n" in text:
        head, body = text.split("\r\n\r\n", 1)
    elif "\n\n" in text:
        head, body = text.split("\n\n", 1)
    else:
        head, body = text, ""
    raw = re.split(r"\r?\n", head.strip("\r\n"))
    start, hdrs = raw[0], []  # type: str, List[Header]
    for ln in raw[1:]:
        if ln[:1] in (" ", "\t") and hdrs:
            n, v = hdrs[-1]
            hdrs[-1] = (n, v + " " + ln.strip())
            continue
        if ":" not in ln:
            continue
        n, v = ln.split(":", 1)
        hdrs.append((n.strip(), v.strip()))
    return start, hdrs, body


def sip_reply(
    request: str,
    code: int,
    reason: Optional[str] = None,
    *,
    to_tag: Optional[str] = "",
    body: Union[str, bytes] = "",
    content_type: Optional[str] = None,
    headers: Iterable[Header] = (),
    **extra,
) -> str:
    """Build a reply to the request text (for example a request the proxy
    relayed): Via (all of them), From, To (with a To-tag for codes above 100,
    unless it has one or to_tag=None), Call-ID, CSeq and Record-Route are
    copied; extra keywords and headers= add headers as in sip_request()."""
    _, hdrs, _ = parse(request)
    lines: List[Header] = []
    for n, v in hdrs:
        c = canonical(n)
        if c in ("via", "from", "call-id", "cseq", "record-route"):
            lines.append((COMPACT.get(n.lower(), n) if len(n) == 1 else n, v))
        elif c == "to":
            if code > 100 and to_tag is not None and ";tag=" not in v.replace(" ", ""):
                v += ";tag=" + (to_tag or _token(4))
            lines.append(("To" if len(n) == 1 else n, v))
    for k, v in extra.items():
        for x in _values(v):
            lines.append((header_name(k), x))
    lines.extend((str(n), str(v)) for n, v in headers)
    reason = reason if reason is not None else REASONS.get(code, "Unknown")
    return _assemble("SIP/2.0 %d %s" % (code, reason), lines, body, content_type, "")
