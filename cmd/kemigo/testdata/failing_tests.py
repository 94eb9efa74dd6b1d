# A test file that must fail: cmd/kemigo/test_test.go checks that
# `kemigo test` exits non-zero. (Its name keeps directory runs from
# collecting it.)
KEMIGO_SCRIPT = "routetest/relay.py"


def test_passes(kemigo):
    assert kemigo.request(method="OPTIONS", user="bob").relay is not None


def test_fails(kemigo):
    r = kemigo.request(method="OPTIONS", user="bob")
    assert r.reply.code == 200  # relay.py relays: there is no reply at all
