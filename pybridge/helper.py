# Python side of kemigo's bridge, executed as module "_kemigo" in every
# worker interpreter. It loads route scripts in both styles (app_python3 and
# app_python3s), formats tracebacks with the script's file and line, and makes
# missing KSR sub-modules and functions fail clearly at call time.
import importlib.util
import os
import sys
import traceback
import types

import KSR

_state = {"mod": None, "handler": None, "style": None}


class _Missing:
    """Stands for a KSR name kemigo does not implement; calling it raises."""

    def __init__(self, path, module_missing):
        self._path = path
        self._module_missing = module_missing

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(self._path + "." + name, self._module_missing)

    def __call__(self, *args, **kwargs):
        if self._module_missing:
            mod = self._path.split(".")[1]
            raise AttributeError(
                f"{self._path}: kemigo does not implement the KSR.{mod} module")
        raise AttributeError(f"{self._path}: kemigo does not implement this function")

    def __repr__(self):
        return f"<not implemented: {self._path}>"


def _ksr_getattr(name):
    if name.startswith("__"):
        raise AttributeError(f"module 'KSR' has no attribute '{name}'")
    return _Missing("KSR." + name, True)


def _sub_getattr(prefix):
    def getattr_(name):
        if name.startswith("__"):
            raise AttributeError(f"module '{prefix}' has no attribute '{name}'")
        return _Missing(prefix + "." + name, False)
    return getattr_


def _setup_ksr():
    KSR.__getattr__ = _ksr_getattr
    for name, sub in list(vars(KSR).items()):
        if isinstance(sub, types.ModuleType):
            sub.__getattr__ = _sub_getattr("KSR." + name)
            sys.modules["KSR." + name] = sub
    # Legacy Router module of app_python3 5.6 (removed in 6.0).
    router = types.ModuleType("Router")
    logger = types.ModuleType("Router.Logger")
    for i, n in enumerate(["L_ALERT", "L_BUG", "L_CRIT2", "L_CRIT", "L_ERR", "L_WARN",
                           "L_NOTICE", "L_INFO", "L_DBG"]):
        setattr(logger, n, i - 5)
    for n in ["LM_GEN1", "LM_GEN2", "LM_ALERT", "LM_CRIT", "LM_ERR", "LM_WARN",
              "LM_NOTICE", "LM_INFO", "LM_DBG"]:
        setattr(logger, n, getattr(KSR, n[3:].lower(), KSR.info))
    ranks = types.ModuleType("Router.Ranks")
    for n, v in [("PROC_MAIN", 0), ("PROC_TIMER", -1), ("PROC_RPC", -2), ("PROC_FIFO", -2),
                 ("PROC_TCP_MAIN", -4), ("PROC_UNIXSOCK", -5), ("PROC_ATTENDANT", -10),
                 ("PROC_INIT", -127), ("PROC_NOCHLDINIT", -128), ("PROC_SIPINIT", 1),
                 ("PROC_SIPRPC", 127)]:
        setattr(ranks, n, v)
    router.Logger, router.Ranks, router.Core = logger, ranks, types.ModuleType("Router.Core")
    for m in (router, logger, ranks, router.Core):
        sys.modules[m.__name__] = m


_setup_ksr()


def _module_name(path):
    base = os.path.basename(path)
    for ext in (".pyc", ".pyo", ".py"):
        if base.endswith(ext):
            return base[: -len(ext)]
    raise ImportError(f"{path}: doesn't look like a python script")


def load(path, style, mod_init, child_init, rank, extra_paths):
    """Import the script into a fresh module object and initialise it.
    Returns the handler; raises on any failure (the old script stays)."""
    for p in reversed([p for p in extra_paths.split(os.pathsep) if p]):
        if p not in sys.path:
            sys.path.insert(0, p)
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    if not sys.path or sys.path[0] != d:
        sys.path.insert(0, d)
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    old = sys.modules.get(name)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
        if style == "auto":
            style = "python3" if callable(getattr(mod, mod_init, None)) else "python3s"
        if style == "python3":
            fn = getattr(mod, mod_init, None)
            if not callable(fn):
                raise RuntimeError(f"{path}: {mod_init}() not found or not callable")
            handler = fn()
            if handler is None:
                raise RuntimeError(f"{path}: {mod_init}() returned None")
            ci = getattr(handler, child_init, None)
            if callable(ci):
                rc = ci(rank)
                if not isinstance(rc, int) or rc < 0:
                    raise RuntimeError(f"{path}: {child_init}({rank}) returned {rc!r}, not an int >= 0")
        elif style == "python3s":
            handler = mod
            si = getattr(mod, mod_init, None) if mod_init != "mod_init" else getattr(mod, "script_init", None)
            if callable(si):
                si()
            sci = getattr(mod, child_init, None) if child_init != "child_init" else getattr(mod, "script_child_init", None)
            if callable(sci):
                _call_flex(sci, rank)
        else:
            raise ValueError(f"unknown script style {style!r}")
    except BaseException:
        if old is not None:
            sys.modules[name] = old
        raise
    _state.update(mod=mod, handler=handler, style=style)
    return handler


def _call_flex(fn, *args):
    n = _argcount(fn)
    return fn(*args[:n]) if n >= 0 else fn(*args)


def _argcount(fn):
    """How many positional args fn takes (-1 if it takes *args)."""
    code = getattr(fn, "__code__", None)
    if code is None and hasattr(fn, "__func__"):
        code = fn.__func__.__code__
    if code is None:
        return -1
    if code.co_flags & 0x04:
        return -1
    n = code.co_argcount
    if hasattr(fn, "__self__") and fn.__self__ is not None:
        n -= 1
    return n


def nargs(fn):
    return _argcount(fn)


def format_exc(etype, value, tb, script):
    """Traceback text plus (file, line) of the innermost frame in the script
    (or the innermost frame at all; SyntaxError reports its own location)."""
    text = "".join(traceback.format_exception(etype, value, tb))
    fname, line = "", 0
    if isinstance(value, SyntaxError) and value.filename:
        fname, line = value.filename, value.lineno or 0
    else:
        frames = traceback.extract_tb(tb)
        for fr in frames:
            fname, line = fr.filename, fr.lineno
        if script:
            for fr in frames:
                if os.path.abspath(fr.filename) == script:
                    fname, line = fr.filename, fr.lineno
    return text, fname, line or 0


def script_path():
    mod = _state["mod"]
    return os.path.abspath(mod.__file__) if mod is not None else ""


def check(path, table_json, _n=0):
    """Static check of a route script against kemigo's export table: every
    KSR.* call kemigo lacks or calls with the wrong number of arguments, and
    t_on_* route names the handler lacks. Returns JSON findings."""
    import ast
    import json

    table = json.loads(table_json)  # {"module": {"fn": nparams}}
    src = open(path, encoding="utf-8").read()
    tree = ast.parse(src, filename=path)
    ksr_names = set()
    mod_alias = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "KSR":
                    ksr_names.add(a.asname or "KSR")
                elif a.name.startswith("KSR."):
                    if a.asname:
                        mod_alias[a.asname] = a.name.split(".", 1)[1]
                    else:
                        ksr_names.add("KSR")
        elif isinstance(node, ast.ImportFrom) and node.module == "KSR":
            for a in node.names:
                mod_alias[a.asname or a.name] = a.name
    findings = []
    handler = _state["handler"]
    route_setters = {"t_on_branch", "t_on_failure", "t_on_reply", "t_on_branch_failure"}

    def add(node, msg):
        findings.append({"file": path, "line": node.lineno, "col": node.col_offset, "msg": msg})

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        chain = []
        cur = node.func
        while isinstance(cur, ast.Attribute):
            chain.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name):
            continue
        chain.reverse()
        if cur.id in ksr_names:
            if len(chain) == 1:
                module, fn = "", chain[0]
            elif len(chain) == 2:
                module, fn = chain
            else:
                continue
        elif cur.id in mod_alias and len(chain) == 1:
            module, fn = mod_alias[cur.id], chain[0]
        else:
            continue
        full = "KSR." + (module + "." if module else "") + fn
        if module == "x" and fn == "modf":
            continue
        if module and module not in table:
            add(node, f"{full}: kemigo does not implement the KSR.{module} module")
            continue
        params = table.get(module, {}).get(fn)
        if params is None:
            add(node, f"{full}: kemigo does not implement this function")
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or node.keywords:
            if node.keywords:
                add(node, f"{full}: KEMI functions take no keyword arguments")
            continue
        if len(node.args) != params:
            add(node, f"{full}() takes {params} argument{'s' if params != 1 else ''}, {len(node.args)} given")
            continue
        if module == "tm" and fn in route_setters and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and node.args[0].value:
            name = node.args[0].value
            target = getattr(handler, name, None)
            if not callable(target):
                add(node, f"{full}(\"{name}\"): the handler has no callable {name}")
    findings.sort(key=lambda f: (f["line"], f["col"]))
    return json.dumps(findings)
