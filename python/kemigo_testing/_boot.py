# Loaded by `kemigo test` as the route script of its worker, so that the
# test session runs as one job of that worker: kemigo calls
# kemigo_test_run(msg, info_json), which runs pytest or the built-in runner.
#
# It is loaded with the configured script style and init names, whatever
# they are: mod_init() (app_python3) and module-level functions
# (app_python3s) both exist, and any other init name resolves to _init.
import json
import os
import sys

# no __pycache__ beside test files, scripts and this package
sys.dont_write_bytecode = True

_here = os.path.dirname(os.path.abspath(__file__))
_parent = os.path.dirname(_here)
# the loader put this file's directory first on sys.path: put the
# directory that holds the kemigo_testing package there instead
while _here in sys.path:
    sys.path.remove(_here)
if _parent not in sys.path:
    sys.path.insert(0, _parent)


def kemigo_test_run(msg=None, info=""):
    from kemigo_testing import runner
    runner.session_main(json.loads(info))
    return 1


class _Handler:
    def kemigo_test_run(self, msg=None, info=""):
        return kemigo_test_run(msg, info)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a: 0


def _init(*a):
    return _Handler()


mod_init = _init


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _init
