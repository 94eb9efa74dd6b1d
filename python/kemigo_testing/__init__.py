"""Route tests for kemigo: run your KEMI route script on kemigo's real core.

Write tests with the `kemigo` fixture and run them with `kemigo test`:

    from kemigo_testing import sip_request

    KEMIGO_SCRIPT = "../route.py"

    def test_keepalive(kemigo):
        r = kemigo.request(sip_request("OPTIONS", "sip:127.0.0.1:5060"))
        assert r.reply.code == 200

See docs/TESTING.md in kemigo's source.
"""
from .core import (Events, Kemigo, KemigoError, LogLine, Message, Relay, Reply, Result, ScriptError,
                   in_kemigo)
from .runner import Skipped, parametrize, skip
from .sip import normalize, parse, sip_reply, sip_request

__version__ = "0.1.0"

__all__ = [
    "Events", "Kemigo", "KemigoError", "LogLine", "Message", "Relay", "Reply", "Result", "ScriptError",
    "Skipped", "in_kemigo", "normalize", "parametrize", "parse", "sip_reply", "sip_request", "skip",
]
