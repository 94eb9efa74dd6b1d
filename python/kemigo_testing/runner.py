"""Test runners of `kemigo test`: pytest when the embedded Python can import
it, else a small built-in runner with the same basics (test_*.py files,
test_* functions and Test* classes, fixtures by argument name, assertion
details, captured output shown for failures)."""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import io
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import core

__all__ = ["session_main", "run_builtin", "Skipped", "skip", "parametrize"]


class Skipped(Exception):
    """Raised by skip() under the built-in runner."""


def _pytest_active() -> bool:
    return "pytest" in sys.modules and getattr(_state, "runner", "") != "builtin"


class _State:
    runner = ""


_state = _State()


def skip(reason: str = "") -> None:
    """Skip the current test (or, at module level, the whole file), under
    pytest and under the built-in runner."""
    if _pytest_active():
        import pytest
        pytest.skip(reason, allow_module_level=True)
    raise Skipped(reason)


def parametrize(argnames: str, argvalues, ids=None):
    """pytest.mark.parametrize under pytest; the built-in runner expands it too."""
    if _pytest_active() or (_state.runner == "" and _has_pytest()):
        import pytest
        return pytest.mark.parametrize(argnames, argvalues, ids=ids)
    names = [n.strip() for n in argnames.split(",") if n.strip()] if isinstance(argnames, str) else list(argnames)

    def deco(fn):
        sets = getattr(fn, "_kemigo_params", [])
        sets.append((names, list(argvalues), ids))
        fn._kemigo_params = sets
        return fn
    return deco


def _has_pytest() -> bool:
    try:
        import pytest  # noqa: F401
        return True
    except ImportError:
        return False


# ---------------------------------------------------------------- session

def session_main(info: Dict[str, Any]) -> None:
    """Entry point called by kemigo (through _boot) with the session info."""
    import KSR
    if not hasattr(sys, "argv") or not sys.argv or not sys.argv[0]:
        sys.argv = ["kemigo-test"]
    core._session = core.Kemigo(info)
    runner = info.get("runner") or "auto"
    paths = list(info.get("paths") or ["."])
    args = list(info.get("args") or [])
    result = {"code": 3, "runner": runner, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    try:
        if runner == "pytest" or (runner == "auto" and _has_pytest()):
            _state.runner = "pytest"
            result.update(_run_pytest(paths, args, info))
        else:
            _state.runner = "builtin"
            result.update(run_builtin(paths, args, info))
    except BaseException:  # noqa: B902 - the runner itself failed: say why
        traceback.print_exc()
        result["code"] = 3
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        KSR.kemigo_test.done(json.dumps(result))  # type: ignore[attr-defined]


def _run_pytest(paths: List[str], args: List[str], info: Dict[str, Any]) -> Dict[str, Any]:
    try:
        import pytest
    except ImportError:
        print("kemigo test: --runner pytest, but this Python (%s) cannot import pytest "
              "(Debian: apt-get install python3-pytest, for the Debian Python only)" % info.get("python"))
        return {"code": 4, "runner": "pytest"}

    class Counter:
        """Collects the outcome counts for kemigo's closing line."""

        def __init__(self) -> None:
            self.stats: Dict[str, int] = {}

        def pytest_terminal_summary(self, terminalreporter) -> None:
            for k in ("passed", "failed", "error", "skipped"):
                self.stats[k] = len(terminalreporter.stats.get(k, []))

    print("kemigo test: pytest %s, Python %s, kemigo %s%s" % (
        pytest.__version__, info.get("python"), info.get("kemigo"),
        ", config " + info["config"] if info.get("config") else ""))
    argv = list(args) + list(paths) + [
        "-p", "kemigo_testing.plugin",
        # faulthandler's signal handlers would replace the Go runtime's.
        "-p", "no:faulthandler",
        # no .pytest_cache in the source tree
        "-p", "no:cacheprovider",
    ]
    counter = Counter()
    code = pytest.main(argv, plugins=[counter])
    st = counter.stats
    return {"code": int(code), "runner": "pytest", "passed": st.get("passed", 0), "failed": st.get("failed", 0),
            "errors": st.get("error", 0), "skipped": st.get("skipped", 0)}


# ---------------------------------------------------------------- built-in runner

_NORECURSE = {"__pycache__", "node_modules", "venv", "build", "dist", "CVS", "_darcs", "{arch}"}


def _is_test_file(name: str) -> bool:
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _collect_files(arg: str) -> List[Tuple[str, Optional[str]]]:
    path: str = arg
    sel: Optional[str] = None
    if "::" in arg:
        path, sel = arg.split("::", 1)
    if os.path.isdir(path):
        out: List[Tuple[str, Optional[str]]] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in _NORECURSE and not d.startswith(".")
                             and not d.endswith(".egg") and not os.path.exists(os.path.join(root, d, "pyvenv.cfg")))
            for f in sorted(files):
                if _is_test_file(f):
                    out.append((os.path.join(root, f), None))
        return out
    if not os.path.exists(path):
        raise FileNotFoundError("%s: no such file or directory" % path)
    return [(path, sel)]


def _import_test_module(path: str):
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    # like pytest's "prepend" import mode: the first directory above the
    # file's package goes first on sys.path
    base = d
    pkg: List[str] = []
    while os.path.exists(os.path.join(base, "__init__.py")):
        pkg.insert(0, os.path.basename(base))
        base = os.path.dirname(base)
    if base not in sys.path:
        sys.path.insert(0, base)
    name = ".".join(pkg + [os.path.basename(path)[:-3]])
    old = sys.modules.get(name)
    if old is not None and os.path.abspath(getattr(old, "__file__", "") or "") != path:
        name = "kemigo_test_%d_%s" % (len(sys.modules), name.replace(".", "_"))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot import %s" % path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


class _Item:
    def __init__(self, nodeid: str, fn: Callable, module, cls=None, params: Optional[Dict[str, Any]] = None):
        self.nodeid, self.fn, self.module, self.cls, self.params = nodeid, fn, module, cls, params or {}


def _expand(nodeid: str, fn: Callable, module, cls=None) -> List[_Item]:
    items = [_Item(nodeid, fn, module, cls)]
    for names, values, ids in reversed(getattr(fn, "_kemigo_params", [])):
        new = []
        for it in items:
            for i, v in enumerate(values):
                vals = v if len(names) > 1 else (v,)
                pid = ids[i] if ids and i < len(ids) else "-".join(_id_of(x, names[j], i) for j, x in enumerate(vals))
                params = dict(it.params)
                params.update(zip(names, vals))
                base, _, rest = it.nodeid.partition("[")
                nid = base + "[" + (rest[:-1] + "-" if rest else "") + pid + "]"
                new.append(_Item(nid, fn, module, cls, params))
        items = new
    return items


def _id_of(v: Any, name: str, i: int) -> str:
    if isinstance(v, (str, int, float, bool)) or v is None:
        s = str(v)
        return s if s and len(s) <= 40 else "%s%d" % (name, i)
    return "%s%d" % (name, i)


def _collect(mod, rel: str, sel: Optional[str]) -> List[_Item]:
    items: List[_Item] = []
    for name, obj in list(vars(mod).items()):
        if name.startswith("test") and inspect.isfunction(obj) and obj.__module__ == mod.__name__:
            items.extend(_expand("%s::%s" % (rel, name), obj, mod))
        elif name.startswith("Test") and inspect.isclass(obj) and obj.__module__ == mod.__name__ \
                and "__init__" not in vars(obj):
            for mname, m in vars(obj).items():
                if mname.startswith("test") and inspect.isfunction(m):
                    items.extend(_expand("%s::%s::%s" % (rel, name, mname), m, mod, obj))
    items.sort(key=lambda it: (getattr(it.fn, "__code__", None) and it.fn.__code__.co_firstlineno) or 0)
    if sel:
        items = [it for it in items if it.nodeid.split("::", 1)[1] == sel
                 or it.nodeid.split("::", 1)[1].split("[")[0] == sel
                 or it.nodeid.split("::", 1)[1].startswith(sel + "::")]
    return items


def _match_k(expr: str, nodeid: str) -> bool:
    """-k: substrings with and/or/not, as pytest's keyword expressions."""
    words = expr.replace("(", " ( ").replace(")", " ) ").split()
    out = []
    for w in words:
        if w in ("and", "or", "not", "(", ")"):
            out.append(w)
        else:
            out.append(repr(w.lower() in nodeid.lower()))
    try:
        return bool(eval(" ".join(out), {"__builtins__": {}}))
    except SyntaxError:
        return expr.lower() in nodeid.lower()


# fixtures of the built-in runner, by argument name

def _fixture_kemigo(item: _Item, stack: contextlib.ExitStack):
    k = core.session()
    k._begin(item.module)
    stack.callback(k._end)
    return k


def _fixture_tmp_path(item: _Item, stack: contextlib.ExitStack):
    d = tempfile.TemporaryDirectory(prefix="kemigo-test-")
    stack.callback(d.cleanup)
    return Path(d.name)


FIXTURES: Dict[str, Callable] = {"kemigo": _fixture_kemigo, "tmp_path": _fixture_tmp_path}


class _Outcome:
    def __init__(self, nodeid):
        self.nodeid, self.status, self.detail, self.output, self.secs = nodeid, "", "", "", 0.0


def _run_item(item: _Item) -> _Outcome:
    res = _Outcome(item.nodeid)
    buf = io.StringIO()
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                sig = inspect.signature(item.fn)
                kwargs = {}
                params = list(sig.parameters.values())
                if item.cls is not None:
                    params = params[1:]
                setup_fn = getattr(item.module, "setup_function", None)
                if item.cls is None and callable(setup_fn):
                    setup_fn(item.fn)
                    td = getattr(item.module, "teardown_function", None)
                    if callable(td):
                        stack.callback(td, item.fn)
                for p in params:
                    if p.name in item.params:
                        kwargs[p.name] = item.params[p.name]
                    elif p.name in FIXTURES:
                        kwargs[p.name] = FIXTURES[p.name](item, stack)
                    elif p.default is not inspect.Parameter.empty:
                        continue
                    else:
                        raise LookupError("fixture %r not found (the built-in runner has %s and "
                                          "kemigo_testing.parametrize; install pytest for more)"
                                          % (p.name, ", ".join(sorted(FIXTURES))))
                fn = item.fn
                if item.cls is not None:
                    inst = item.cls()
                    for hook in ("setup_method",):
                        h = getattr(inst, hook, None)
                        if callable(h):
                            h(fn)
                    td = getattr(inst, "teardown_method", None)
                    if callable(td):
                        stack.callback(td, fn)
                    fn = getattr(inst, item.fn.__name__)
                fn(**kwargs)
            res.status = "passed"
        except Skipped as e:
            res.status, res.detail = "skipped", str(e)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: B902 - report everything, SystemExit included
            res.status = "failed"
            res.detail = _format_failure(e)
    res.secs = time.monotonic() - t0
    res.output = buf.getvalue()
    return res


_HIDE = (os.path.abspath(__file__), os.path.abspath(os.path.join(os.path.dirname(__file__), "_boot.py")))


def _format_failure(e: BaseException) -> str:
    tb = e.__traceback__
    frames = traceback.extract_tb(tb)
    # drop the runner's own frames
    keep = [f for f in frames if os.path.abspath(f.filename) not in _HIDE]
    text = "".join(traceback.format_list(keep)) + "".join(traceback.format_exception_only(type(e), e))
    if isinstance(e, AssertionError):
        detail = _explain_assert(e)
        if detail:
            text += detail
    return text


_SIDE_EFFECTS = {"request", "reply", "receive", "load", "reset", "wait", "pop", "append", "send"}


def _explain_assert(e: AssertionError) -> str:
    """pytest-like detail without assertion rewriting: the values of the two
    sides of a failing comparison, re-evaluated in the failing frame unless
    that would send a message again."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    frame, lineno = tb.tb_frame, tb.tb_lineno
    try:
        src = inspect.getsource(frame.f_code)
        start = frame.f_code.co_firstlineno
        tree = ast.parse(_dedent(src))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return ""
    node = None
    for n in ast.walk(tree):
        if isinstance(n, ast.Assert) and n.lineno + start - 1 <= lineno <= (getattr(n, "end_lineno", n.lineno) + start - 1):
            node = n
    if node is None:
        return ""
    parts = []
    test = node.test
    exprs = []
    if isinstance(test, ast.Compare):
        exprs = [test.left] + list(test.comparators)
    elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        exprs = [test.operand]
    elif isinstance(test, (ast.Call, ast.Attribute, ast.Name, ast.Subscript)):
        exprs = [test]
    for x in exprs:
        if isinstance(x, ast.Constant):
            continue
        if any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr in _SIDE_EFFECTS
               for c in ast.walk(x)):
            continue
        code = ast.unparse(x) if hasattr(ast, "unparse") else None
        if not code:
            continue
        try:
            v = eval(compile(ast.Expression(x), "<assert>", "eval"), frame.f_globals, dict(frame.f_locals))
        except Exception as ex:  # noqa: BLE001
            v = "<%s: %s>" % (type(ex).__name__, ex)
            parts.append("  where %s -> %s" % (code, v))
            continue
        r = repr(v)
        if len(r) > 800:
            r = r[:800] + "..."
        parts.append("  where %s = %s" % (code, r))
    if not parts:
        return ""
    return "assert " + (ast.unparse(test) if hasattr(ast, "unparse") else "...") + "\n" + "\n".join(parts) + "\n"


def _dedent(src: str) -> str:
    import textwrap
    return textwrap.dedent(src)


def run_builtin(paths: List[str], args: List[str], info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run the tests in paths; returns the counts and the exit code
    (0 all passed, 1 failures, 5 nothing collected)."""
    info = info or {}
    verbose = any(a in ("-v", "--verbose") for a in args)
    quiet = any(a in ("-q", "--quiet") for a in args)
    exitfirst = any(a in ("-x", "--exitfirst") for a in args)
    kexpr = None
    rest = list(args)
    while rest:
        a = rest.pop(0)
        if a == "-k" and rest:
            kexpr = rest.pop(0)
        elif a.startswith("-k") and len(a) > 2:
            kexpr = a[2:]
        elif a not in ("-v", "--verbose", "-q", "--quiet", "-x", "--exitfirst"):
            print("kemigo test: the built-in runner ignores %s (it knows -k, -x, -v, -q; install pytest for more)" % a)
    print("kemigo test: built-in runner, Python %s, kemigo %s%s" % (
        info.get("python", "%d.%d" % sys.version_info[:2]), info.get("kemigo", "?"),
        ", config " + info["config"] if info.get("config") else ""))
    t0 = time.monotonic()
    passed = failed = errors = skipped = 0
    failures: List[_Outcome] = []
    cwd = os.getcwd()
    stop = False
    for arg in paths:
        if stop:
            break
        try:
            files = _collect_files(arg)
        except FileNotFoundError as e:
            print("ERROR %s" % e)
            errors += 1
            continue
        for path, sel in files:
            if stop:
                break
            rel = os.path.relpath(path, cwd)
            try:
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    mod = _import_test_module(path)
            except Skipped as e:
                skipped += 1
                print("SKIP  %s (%s)" % (rel, e))
                continue
            except BaseException as e:  # noqa: B902
                o = _Outcome(rel)
                o.status, o.detail = "error", _format_failure(e)
                print("ERROR %s (while importing)" % rel)
                failures.append(o)
                errors += 1
                if exitfirst:
                    stop = True
                continue
            items = _collect(mod, rel, sel)
            if kexpr:
                items = [it for it in items if _match_k(kexpr, it.nodeid)]
            setup_mod = getattr(mod, "setup_module", None)
            if items and callable(setup_mod):
                try:
                    _call_flex(setup_mod, mod)
                except Skipped as e:
                    skipped += len(items)
                    print("SKIP  %s (%s)" % (rel, e))
                    continue
                except BaseException as e:  # noqa: B902
                    o = _Outcome(rel + "::setup_module")
                    o.status, o.detail = "error", _format_failure(e)
                    failures.append(o)
                    errors += 1
                    print("ERROR %s" % o.nodeid)
                    continue
            for it in items:
                o = _run_item(it)
                if o.status == "passed":
                    passed += 1
                    if not quiet:
                        print("PASS  %s%s" % (it.nodeid, " (%.3fs)" % o.secs if verbose else ""))
                elif o.status == "skipped":
                    skipped += 1
                    if not quiet:
                        print("SKIP  %s (%s)" % (it.nodeid, o.detail))
                else:
                    failed += 1
                    print("FAIL  %s" % it.nodeid)
                    failures.append(o)
                    if exitfirst:
                        stop = True
                        break
            td_mod = getattr(mod, "teardown_module", None)
            if items and callable(td_mod):
                try:
                    _call_flex(td_mod, mod)
                except BaseException as e:  # noqa: B902
                    o = _Outcome(rel + "::teardown_module")
                    o.status, o.detail = "error", _format_failure(e)
                    failures.append(o)
                    errors += 1
    for o in failures:
        print()
        print("_" * 20 + " %s %s " % ("ERROR" if o.status == "error" else "FAIL", o.nodeid) + "_" * 20)
        print(o.detail.rstrip())
        if o.output.strip():
            print("---- captured output ----")
            print(o.output.rstrip())
    secs = time.monotonic() - t0
    summary = "%d passed, %d failed" % (passed, failed)
    if errors:
        summary += ", %d errors" % errors
    if skipped:
        summary += ", %d skipped" % skipped
    total = passed + failed + errors + skipped
    if total == 0:
        print("no tests ran in %.2fs" % secs)
        code = 5
    else:
        print("%s in %.2fs" % (summary, secs))
        code = 1 if failed or errors else 0
    return {"code": code, "runner": "builtin", "passed": passed, "failed": failed, "errors": errors, "skipped": skipped}


def _call_flex(fn, *args):
    try:
        n = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n = len(args)
    return fn(*args[:n])
