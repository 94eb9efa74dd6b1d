"""pytest plugin of `kemigo test` (loaded with -p kemigo_testing.plugin):
the `kemigo` fixture."""
from __future__ import annotations

from typing import Iterator

import pytest

from . import core


@pytest.fixture
def kemigo(request) -> Iterator["core.Kemigo"]:
    """kemigo's core with the route script loaded, fresh for each test:
    htables and $var emptied, the script imported again."""
    if not core.in_kemigo():
        pytest.fail("the kemigo fixture works inside kemigo only: run `kemigo test %s`"
                    % request.node.nodeid.split("::")[0], pytrace=False)
    k = core.session()
    k._begin(request.module)
    try:
        yield k
    finally:
        k._end()


def pytest_report_header(config):
    if not core.in_kemigo():
        return None
    k = core.session()
    lines = ["kemigo %s, Python %s, sockets %s" % (
        k.info.get("kemigo"), k.info.get("python"),
        " ".join("%s:%s:%s" % (s["proto"], s["host"], s["port"]) for s in k.sockets))]
    if k.config:
        lines.append("kemigo config: %s" % k.config)
    if k.default_script:
        lines.append("kemigo script: %s" % k.default_script)
    return lines
