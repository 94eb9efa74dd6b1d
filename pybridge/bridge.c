/* kemigo's CPython bridge: the only file that calls the CPython C API.
 *
 * Threading model (see ../shared design notes): Py_InitializeEx runs on a
 * dedicated thread that never runs scripts; each worker is an interpreter
 * (the main one, or its own sub-interpreter with its own GIL on 3.12+) with
 * a Go goroutine locked to its OS thread that owns one persistent
 * PyThreadState. A route may also run inline on the thread that read the
 * message (kg_attach_here), with a thread state of the worker's
 * interpreter made for that thread; Go's Worker.mu keeps one thread at a
 * time in a worker. The KSR module is multi-phase (PEP
 * 489) so every interpreter gets its own copy. */
#include "bridge.h"
#include "_cgo_export.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
/* Python 3.13 stopped exporting _Py_DumpTraceback (python/cpython#107215;
 * 3.15 exports it again as PyUnstable_DumpTraceback): kg_dump_stack walks
 * the frames itself, with the frame layout of the installed headers. */
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#elif PY_VERSION_HEX < 0x030D0000
/* Exported by libpython 3.11 and 3.12 (internal/pycore_traceback.h): what
 * faulthandler uses to write a thread's stack from a signal handler. */
extern void _Py_DumpTraceback(int fd, PyThreadState *tstate);
#endif

/* ---- the export table, filled by Go before Python starts (read-only after) */
typedef struct {
	const char *module;
	const char *name;
	const char *params; /* "s"/"i" per parameter */
	int ret;
	PyMethodDef def;
} kg_export;

static kg_export *exports;
static int n_exports, cap_exports;
static char *helper_source;
static PyInterpreterState *main_interp;

/* A thread state of a worker's interpreter on another OS thread: routes run
 * inline on the thread that read the message (kg_attach_here). */
typedef struct {
	pthread_t tid;
	PyThreadState *ts;
} kg_here;
#define KG_MAX_HERE 64

struct kg_worker {
	int id;
	int mode;
	PyThreadState *ts; /* the worker's own thread's */
	PyInterpreterState *interp;
	PyThreadState *volatile cur; /* the attached one, for kg_dump_stack */
	PyObject *helper;            /* the _kemigo module */
	PyObject *handler;           /* the route handler (object or module) */
	PyObject *msgtype;           /* Router.msg type of this interpreter */
	int style3s;
	/* Touched only by the thread holding the worker (Go's Worker.mu). */
	kg_here here[KG_MAX_HERE];
	int nhere;
};

/* The worker attached on this thread (NULL between jobs). */
static __thread kg_worker *tls_cur;
#define CUR_ID (tls_cur ? tls_cur->id : -1)
static __thread char *tls_err;
static __thread char *tls_err_file;
static __thread int tls_err_line;
/* What this thread runs, for the fatal signal handler: -1 a thread kemigo
 * did not start (Go's own, or one a script started), 0 Go code, 1 Python
 * or C extension code (between a kg_* entry and a call back into Go). */
static __thread volatile sig_atomic_t tls_in_py = -1;

#define PY_ENTER                                                                                                       \
	sig_atomic_t saved_in_py = tls_in_py;                                                                          \
	tls_in_py = 1
#define PY_LEAVE() (tls_in_py = saved_in_py)

int kg_version_hex(void) { return PY_VERSION_HEX; }

static PyObject *kemi_trampoline(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

void kg_register_export(int id, const char *module, const char *name, const char *params, int ret) {
	if (id >= cap_exports) {
		int ncap = cap_exports ? cap_exports * 2 : 256;
		while (ncap <= id)
			ncap *= 2;
		exports = realloc(exports, sizeof(kg_export) * ncap);
		memset(exports + cap_exports, 0, sizeof(kg_export) * (ncap - cap_exports));
		cap_exports = ncap;
	}
	kg_export *e = &exports[id];
	e->module = strdup(module);
	e->name = strdup(name);
	e->params = strdup(params);
	e->ret = ret;
	e->def.ml_name = e->name;
	e->def.ml_meth = (PyCFunction)(void (*)(void))kemi_trampoline;
	e->def.ml_flags = METH_FASTCALL;
	e->def.ml_doc = NULL;
	if (id >= n_exports)
		n_exports = id + 1;
}

static void set_tls_str(char **dst, const char *s) {
	free(*dst);
	*dst = s ? strdup(s) : NULL;
}

/* ---- KEMI function calls: one trampoline for every export; self is the
 * export id as a Python int. */
static PyObject *kemi_trampoline(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
	long id = PyLong_AsLong(self);
	kg_export *e = &exports[id];
	int np = (int)strlen(e->params);
	if (nargs != np) {
		PyErr_Format(PyExc_TypeError, "KSR%s%s.%s() takes exactly %d argument%s (%zd given)",
		             e->module[0] ? "." : "", e->module, e->name, np, np == 1 ? "" : "s", nargs);
		return NULL;
	}
	kg_arg cargs[8];
	for (int i = 0; i < np; i++) {
		PyObject *a = args[i];
		if (e->params[i] == 'i') {
			if (!PyLong_Check(a)) {
				PyObject *idx = PyNumber_Check(a) && !PyFloat_Check(a) ? PyNumber_Index(a) : NULL;
				if (idx == NULL) {
					PyErr_Clear();
					PyErr_Format(PyExc_TypeError, "KSR%s%s.%s() argument %d must be int, not %.50s",
					             e->module[0] ? "." : "", e->module, e->name, i + 1, Py_TYPE(a)->tp_name);
					return NULL;
				}
				long long v = PyLong_AsLongLong(idx);
				Py_DECREF(idx);
				cargs[i].i = v;
			} else {
				cargs[i].i = PyLong_AsLongLong(a);
			}
			if (PyErr_Occurred() || cargs[i].i > 2147483647LL || cargs[i].i < -2147483648LL) {
				PyErr_Clear();
				PyErr_Format(PyExc_OverflowError, "KSR%s%s.%s() argument %d does not fit a C int",
				             e->module[0] ? "." : "", e->module, e->name, i + 1);
				return NULL;
			}
			cargs[i].is_str = 0;
		} else {
			if (!PyUnicode_Check(a)) {
				PyErr_Format(PyExc_TypeError, "KSR%s%s.%s() argument %d must be str, not %.50s",
				             e->module[0] ? "." : "", e->module, e->name, i + 1, Py_TYPE(a)->tp_name);
				return NULL;
			}
			Py_ssize_t len;
			const char *s = PyUnicode_AsUTF8AndSize(a, &len);
			if (s == NULL)
				return NULL;
			if ((Py_ssize_t)strlen(s) != len) {
				PyErr_Format(PyExc_ValueError, "KSR%s%s.%s() argument %d contains a NUL character",
				             e->module[0] ? "." : "", e->module, e->name, i + 1);
				return NULL;
			}
			cargs[i].is_str = 1;
			cargs[i].s = s;
			cargs[i].len = len;
		}
	}
	kg_ret r = {0, 0, NULL};
	sig_atomic_t in_py = tls_in_py;
	tls_in_py = 0;
	kgGoCall(CUR_ID, (int)id, cargs, np, &r);
	tls_in_py = in_py;
	switch (r.kind) {
	case 1:
		return PyLong_FromLongLong(r.i);
	case 2:
		return r.obj;
	case 3:
		return PyBool_FromLong((long)r.i);
	case 4:
		return NULL;
	default:
		Py_RETURN_NONE;
	}
}

PyObject *kg_new_str(const char *s, Py_ssize_t len) { return PyUnicode_DecodeUTF8(s, len, "strict"); }

void kg_raise(int kind, const char *msg) {
	PyObject *t = PyExc_RuntimeError;
	switch (kind) {
	case 1: t = PyExc_TypeError; break;
	case 2: t = PyExc_ValueError; break;
	case 3: t = PyExc_AttributeError; break;
	case 4: t = PyExc_OverflowError; break;
	}
	PyErr_SetString(t, msg);
}

/* ---- the msg object (type Router.msg), a thin view of the current message.
 * It holds only the id of the Go-side context; Go refuses ids that are no
 * longer running, so a saved msg raises after its callback ended. */
typedef struct {
	PyObject_HEAD uint64_t ctxid;
} kg_msg;

static PyObject *msg_op(PyObject *self, int op, PyObject *a1, PyObject *a2, PyObject *a3) {
	kg_msg *m = (kg_msg *)self;
	const char *s[3] = {NULL, NULL, NULL};
	Py_ssize_t l[3] = {0, 0, 0};
	PyObject *in[3] = {a1, a2, a3};
	for (int i = 0; i < 3; i++) {
		if (in[i] == NULL)
			continue;
		if (!PyUnicode_Check(in[i])) {
			PyErr_Format(PyExc_TypeError, "msg argument %d must be str, not %.50s", i + 1, Py_TYPE(in[i])->tp_name);
			return NULL;
		}
		s[i] = PyUnicode_AsUTF8AndSize(in[i], &l[i]);
		if (s[i] == NULL)
			return NULL;
	}
	kg_ret r = {0, 0, NULL};
	sig_atomic_t in_py = tls_in_py;
	tls_in_py = 0;
	kgGoMsgOp(CUR_ID, m->ctxid, op, (char *)s[0], (int)l[0], (char *)s[1], (int)l[1], (char *)s[2], (int)l[2],
	          a1 != NULL, a2 != NULL, a3 != NULL, &r);
	tls_in_py = in_py;
	switch (r.kind) {
	case 1:
		return PyLong_FromLongLong(r.i);
	case 2:
		return r.obj;
	case 3:
		return PyBool_FromLong((long)r.i);
	case 4:
		return NULL;
	default:
		Py_RETURN_NONE;
	}
}

enum { OP_TYPE, OP_METHOD, OP_STATUS, OP_RURI, OP_SRC, OP_DST, OP_GETHDR, OP_REWRITE, OP_SETDST, OP_CALLFN };

static PyObject *msg_get(PyObject *self, void *closure) {
	int op = (int)(intptr_t)closure;
	if (op == OP_SRC || op == OP_DST) {
		/* Go returns "ip port" as one string; split here into a tuple */
		PyObject *s = msg_op(self, op, NULL, NULL, NULL);
		if (s == NULL || s == Py_None)
			return s;
		PyObject *parts = PyUnicode_RSplit(s, NULL, 1);
		Py_DECREF(s);
		if (parts == NULL)
			return NULL;
		PyObject *port = PyLong_FromUnicodeObject(PyList_GET_ITEM(parts, 1), 10);
		PyObject *t = port ? PyTuple_Pack(2, PyList_GET_ITEM(parts, 0), port) : NULL;
		Py_XDECREF(port);
		Py_DECREF(parts);
		return t;
	}
	return msg_op(self, op, NULL, NULL, NULL);
}

static PyObject *msg_getHeader(PyObject *self, PyObject *arg) { return msg_op(self, OP_GETHDR, arg, NULL, NULL); }
static PyObject *msg_rewrite_ruri(PyObject *self, PyObject *arg) { return msg_op(self, OP_REWRITE, arg, NULL, NULL); }
static PyObject *msg_set_dst_uri(PyObject *self, PyObject *arg) { return msg_op(self, OP_SETDST, arg, NULL, NULL); }
static PyObject *msg_call_function(PyObject *self, PyObject *args) {
	PyObject *a1 = NULL, *a2 = NULL, *a3 = NULL;
	if (!PyArg_UnpackTuple(args, "call_function", 1, 3, &a1, &a2, &a3))
		return NULL;
	return msg_op(self, OP_CALLFN, a1, a2, a3);
}
static PyObject *msg_copy(PyObject *self, PyObject *unused) {
	kg_msg *n = PyObject_New(kg_msg, Py_TYPE(self));
	if (n == NULL)
		return NULL;
	n->ctxid = ((kg_msg *)self)->ctxid;
	return (PyObject *)n;
}

static void msg_dealloc(PyObject *self) {
	PyTypeObject *tp = Py_TYPE(self);
	PyObject_Free(self);
	Py_DECREF(tp);
}

static PyGetSetDef msg_getset[] = {
    {"Type", msg_get, NULL, "SIP_REQUEST, SIP_REPLY or SIP_INVALID", (void *)(intptr_t)OP_TYPE},
    {"Method", msg_get, NULL, "request method", (void *)(intptr_t)OP_METHOD},
    {"Status", msg_get, NULL, "reply status code as str", (void *)(intptr_t)OP_STATUS},
    {"RURI", msg_get, NULL, "original request URI", (void *)(intptr_t)OP_RURI},
    {"src_address", msg_get, NULL, "(ip, port) of the sender", (void *)(intptr_t)OP_SRC},
    {"dst_address", msg_get, NULL, "(ip, port) of the local socket", (void *)(intptr_t)OP_DST},
    {NULL}};

static PyMethodDef msg_methods[] = {
    {"getHeader", msg_getHeader, METH_O, "body of the first header with that name, or None"},
    {"rewrite_ruri", msg_rewrite_ruri, METH_O, "set the request URI ($ru)"},
    {"set_dst_uri", msg_set_dst_uri, METH_O, "set the destination URI ($du)"},
    {"call_function", msg_call_function, METH_VARARGS, "run a module function by name"},
    {"copy", msg_copy, METH_NOARGS, "another view of the same message"},
    {NULL}};

static PyType_Slot msg_slots[] = {
    {Py_tp_dealloc, msg_dealloc},
    {Py_tp_getset, msg_getset},
    {Py_tp_methods, msg_methods},
    {Py_tp_doc, "the SIP message a route runs for (app_python3's Router.msg)"},
    {0, NULL}};

static PyType_Spec msg_spec = {"Router.msg", sizeof(kg_msg), 0, Py_TPFLAGS_DEFAULT, msg_slots};

/* ---- the KSR module (multi-phase, one instance per interpreter) */
static int ksr_exec(PyObject *m) {
	PyObject *subs = PyDict_New();
	if (subs == NULL)
		return -1;
	for (int i = 0; i < n_exports; i++) {
		kg_export *e = &exports[i];
		if (e->name == NULL)
			continue;
		PyObject *target = m;
		if (e->module[0]) {
			target = PyDict_GetItemString(subs, e->module);
			if (target == NULL) {
				char full[256];
				snprintf(full, sizeof full, "KSR.%s", e->module);
				target = PyModule_New(full);
				if (target == NULL || PyDict_SetItemString(subs, e->module, target) < 0 ||
				    PyModule_AddObjectRef(m, e->module, target) < 0) {
					Py_XDECREF(target);
					Py_DECREF(subs);
					return -1;
				}
				Py_DECREF(target); /* subs and m hold it */
			}
		}
		PyObject *id = PyLong_FromLong(i);
		PyObject *modname = PyUnicode_FromString(e->module[0] ? e->module : "KSR");
		PyObject *fn = PyCFunction_NewEx(&e->def, id, modname);
		Py_XDECREF(id);
		Py_XDECREF(modname);
		if (fn == NULL || PyModule_AddObjectRef(target, e->name, fn) < 0) {
			Py_XDECREF(fn);
			Py_DECREF(subs);
			return -1;
		}
		Py_DECREF(fn);
	}
	Py_DECREF(subs);
	if (PyModule_AddIntConstant(m, "__version__", 1002) < 0)
		return -1;
	PyObject *tp = PyType_FromModuleAndSpec(m, &msg_spec, NULL);
	if (tp == NULL)
		return -1;
	if (PyModule_AddObjectRef(m, "_msgtype", tp) < 0) {
		Py_DECREF(tp);
		return -1;
	}
	Py_DECREF(tp);
	return 0;
}

static PyModuleDef_Slot ksr_slots[] = {{Py_mod_exec, ksr_exec},
#if PY_VERSION_HEX >= 0x030C0000
                                       {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
                                       {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
                                       {0, NULL}};

static struct PyModuleDef ksr_def = {PyModuleDef_HEAD_INIT, "KSR", "Kamailio KEMI functions, served by kemigo", 0, NULL,
                                     ksr_slots};

static PyObject *PyInit_KSR(void) { return PyModuleDef_Init(&ksr_def); }

/* ---- fatal signals
 *
 * Python's faulthandler is enabled at start-up (PyConfig.faulthandler,
 * writing to stderr). Enabling it replaces the handlers the Go runtime
 * installed for SIGSEGV, SIGBUS, SIGFPE, SIGABRT and SIGILL, and
 * faulthandler's handler ends by re-raising the signal: Go then sees a
 * signal sent by a process, which it never turns into a panic, so a nil
 * pointer dereference in Go code (a recoverable panic, e.g. in a KEMI
 * function) would kill the process. For the three signals Go turns into
 * panics, kg_fatal_signal sits in front of both: a fault on a thread that
 * runs Python (or C extension) code gets faulthandler's report (Fatal
 * Python error, the Python stacks), then Go's handler with the original
 * signal information, which reports the fault and exits (status 2); a fault
 * in Go code goes straight to Go's handler, as if Python were not there.
 * SIGABRT and SIGILL are never recovered by Go and stay with faulthandler. */
static const int kg_fatal_sigs[] = {SIGSEGV, SIGBUS, SIGFPE};
#define KG_NFATAL ((int)(sizeof kg_fatal_sigs / sizeof kg_fatal_sigs[0]))
static struct sigaction kg_go_sa[KG_NFATAL]; /* the Go runtime's handlers */
static struct sigaction kg_fh_sa[KG_NFATAL]; /* faulthandler's */
static int kg_fh_set[KG_NFATAL];

static int same_handler(const struct sigaction *a, const struct sigaction *b) {
	if ((a->sa_flags & SA_SIGINFO) != (b->sa_flags & SA_SIGINFO))
		return 0;
	if (a->sa_flags & SA_SIGINFO)
		return a->sa_sigaction == b->sa_sigaction;
	return a->sa_handler == b->sa_handler;
}

static void call_handler(const struct sigaction *sa, int sig, siginfo_t *info, void *uctx) {
	if (sa->sa_flags & SA_SIGINFO) {
		if (sa->sa_sigaction != NULL)
			sa->sa_sigaction(sig, info, uctx);
		return;
	}
	if (sa->sa_handler == SIG_IGN)
		return;
	if (sa->sa_handler == SIG_DFL) {
		/* the default action: a real fault repeats on return and kills */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
		if (info == NULL || info->si_code <= 0)
			raise(sig);
		return;
	}
	sa->sa_handler(sig);
}

static void kg_fatal_signal(int sig, siginfo_t *info, void *uctx) {
	int i = 0;
	while (i < KG_NFATAL && kg_fatal_sigs[i] != sig)
		i++;
	if (i == KG_NFATAL)
		return;
	int saved_errno = errno;
	int py = tls_in_py;
	if (py < 0) /* not a thread kemigo runs Python on: a script's own thread? */
		py = PyGILState_GetThisThreadState() != NULL;
	if (py && kg_fh_set[i]) {
		/* faulthandler writes its report, puts Go's handler back and
		 * raises the signal again: blocked here (sa_mask), that one stays
		 * pending while Go's handler, below, reports the real fault. */
		call_handler(&kg_fh_sa[i], sig, info, uctx);
	}
	errno = saved_errno;
	call_handler(&kg_go_sa[i], sig, info, uctx);
}

static void save_go_handlers(void) {
	for (int i = 0; i < KG_NFATAL; i++)
		sigaction(kg_fatal_sigs[i], NULL, &kg_go_sa[i]);
}

static void install_fatal_handlers(void) {
	for (int i = 0; i < KG_NFATAL; i++) {
		sigaction(kg_fatal_sigs[i], NULL, &kg_fh_sa[i]);
		kg_fh_set[i] = !same_handler(&kg_fh_sa[i], &kg_go_sa[i]) &&
		               ((kg_fh_sa[i].sa_flags & SA_SIGINFO) ||
		                (kg_fh_sa[i].sa_handler != SIG_DFL && kg_fh_sa[i].sa_handler != SIG_IGN));
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = kg_fatal_signal;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
		sigfillset(&sa.sa_mask); /* as the Go runtime's handlers */
		sigaction(kg_fatal_sigs[i], &sa, NULL);
	}
}

/* ---- start-up */
static void fetch_error(void);

int kg_init(const char *helper_src, char *err, int errlen) {
	helper_source = strdup(helper_src);
	if (PyImport_AppendInittab("KSR", PyInit_KSR) < 0) {
		snprintf(err, errlen, "PyImport_AppendInittab failed");
		return -1;
	}
	save_go_handlers();
	PyConfig cfg;
	PyConfig_InitPythonConfig(&cfg);
	cfg.install_signal_handlers = 0; /* Go keeps every signal, ... */
	cfg.faulthandler = 1;            /* ... faulthandler aside (see above) */
	cfg.parse_argv = 0;
	tls_in_py = 1;
	PyStatus st = Py_InitializeFromConfig(&cfg);
	PyConfig_Clear(&cfg);
	if (PyStatus_Exception(st)) {
		tls_in_py = 0;
		snprintf(err, errlen, "Python initialisation failed: %s", st.err_msg ? st.err_msg : "?");
		return -1;
	}
	main_interp = PyInterpreterState_Main();
	/* Some stdlib extensions of 3.12 keep static types that the first
	 * interpreter to import them initialises; if that is a sub-interpreter
	 * with its own allocator, the next one corrupts memory. Importing them
	 * here first makes the main interpreter own them. */
	PyRun_SimpleString("import datetime, decimal, json, re, collections, functools, socket, select, hashlib, random\n");
	PyErr_Clear();
	PyEval_SaveThread(); /* this thread never runs scripts */
	tls_in_py = 0;
	install_fatal_handlers();
	return 0;
}

static int worker_setup(kg_worker *w, char *err, int errlen) {
	PyObject *ksr = PyImport_ImportModule("KSR");
	if (ksr == NULL)
		goto fail;
	w->msgtype = PyObject_GetAttrString(ksr, "_msgtype");
	Py_DECREF(ksr);
	if (w->msgtype == NULL)
		goto fail;
	PyObject *code = Py_CompileString(helper_source, "<kemigo>", Py_file_input);
	if (code == NULL)
		goto fail;
	w->helper = PyImport_ExecCodeModule("_kemigo", code);
	Py_DECREF(code);
	if (w->helper == NULL)
		goto fail;
	return 0;
fail:
	fetch_error();
	snprintf(err, errlen, "worker %d: %s", w->id, tls_err ? tls_err : "python error");
	return -1;
}

/* Make ts the thread state PyGILState_GetThisThreadState() returns on this
 * thread. The first thread state created on a thread is the one bound to
 * it; a sub-interpreter's is created while the temporary main-interpreter
 * one holds that place, and deleting that one leaves none. Without it,
 * faulthandler finds no Python stack for a crash in a worker, and
 * PyGILState_Ensure() in a C extension would switch to the main
 * interpreter. A thread state of the same interpreter created now is
 * bound: it replaces ts (whose GIL is held), and is returned. */
static PyThreadState *bind_thread_state(PyThreadState *ts) {
	if (PyGILState_GetThisThreadState() != NULL)
		return ts;
	PyThreadState *nts = PyThreadState_New(PyThreadState_GetInterpreter(ts));
	if (nts == NULL)
		return ts;
	PyThreadState_Swap(nts);
	PyThreadState_Clear(ts);
	PyThreadState_Delete(ts);
	return nts;
}

kg_worker *kg_worker_new(int id, int mode, char *err, int errlen) {
	kg_worker *w = calloc(1, sizeof *w);
	w->id = id;
	w->mode = mode;
	tls_cur = w;
	tls_in_py = 0;
	PY_ENTER;
	PyThreadState *tmp = PyThreadState_New(main_interp);
	PyEval_RestoreThread(tmp);
	if (mode == KG_MODE_MAIN) {
		w->ts = tmp;
	} else {
#if PY_VERSION_HEX >= 0x030C0000
		PyInterpreterConfig cfg = {
		    .use_main_obmalloc = 0,
		    .allow_fork = 0,
		    .allow_exec = 0,
		    .allow_threads = 1,
		    .allow_daemon_threads = 0,
		    .check_multi_interp_extensions = 1,
		    .gil = PyInterpreterConfig_OWN_GIL,
		};
		if (mode == KG_MODE_SHARED) {
			cfg.use_main_obmalloc = 1;
			cfg.check_multi_interp_extensions = 0;
			cfg.allow_daemon_threads = 1;
			cfg.gil = PyInterpreterConfig_SHARED_GIL;
		}
		PyThreadState *ts = NULL;
		PyStatus st = Py_NewInterpreterFromConfig(&ts, &cfg);
		if (PyStatus_Exception(st) || ts == NULL) {
			snprintf(err, errlen, "cannot create sub-interpreter: %s", st.err_msg ? st.err_msg : "?");
			PyThreadState_Clear(tmp);
			PyThreadState_DeleteCurrent();
			free(w);
			PY_LEAVE();
			return NULL;
		}
#else
		if (mode == KG_MODE_OWN) {
			snprintf(err, errlen, "a per-interpreter GIL needs Python 3.12 or later");
			PyThreadState_Clear(tmp);
			PyThreadState_DeleteCurrent();
			free(w);
			PY_LEAVE();
			return NULL;
		}
		PyThreadState *ts = Py_NewInterpreter();
		if (ts == NULL) {
			snprintf(err, errlen, "cannot create sub-interpreter");
			PyThreadState_Clear(tmp);
			PyThreadState_DeleteCurrent();
			free(w);
			PY_LEAVE();
			return NULL;
		}
#endif
		/* drop the helper thread state of the main interpreter */
		PyEval_SaveThread();
		PyEval_RestoreThread(tmp);
		PyThreadState_Clear(tmp);
		PyThreadState_DeleteCurrent();
		PyEval_RestoreThread(ts);
		w->ts = bind_thread_state(ts);
	}
	w->interp = PyThreadState_GetInterpreter(w->ts);
	if (worker_setup(w, err, errlen) < 0) {
		PyEval_SaveThread();
		tls_cur = NULL;
		PY_LEAVE();
		return NULL;
	}
	PyEval_SaveThread();
	tls_cur = NULL;
	PY_LEAVE();
	return w;
}

void kg_worker_free(kg_worker *w) {
	if (w == NULL)
		return;
	/* The interpreter itself is left alive: Py_EndInterpreter crashes in
	 * some stdlib extensions of 3.13.0 (seen with PyYAML's imports) and a
	 * worker only ends when the engine does (shutdown, tests). Dropping our
	 * references lets the script's objects be collected. */
	PY_ENTER;
	PyEval_RestoreThread(w->ts);
	Py_CLEAR(w->handler);
	Py_CLEAR(w->helper);
	Py_CLEAR(w->msgtype);
	PyEval_SaveThread();
	PY_LEAVE();
	/* the thread states of w->here are left with the interpreter */
	free(w);
}

void kg_attach(kg_worker *w) {
	PyEval_RestoreThread(w->ts);
	w->cur = w->ts;
	tls_cur = w;
}

/* Attach w on the calling thread, whatever thread it is: the thread state
 * of w's interpreter made for this thread (on its first use here) takes
 * w's GIL. The caller holds the worker, so w->here has one user. Returns
 * 0 when this thread has no room for one more thread state (the caller
 * then hands the job to w's own thread). */
int kg_attach_here(kg_worker *w) {
	pthread_t self = pthread_self();
	PyThreadState *ts = NULL;
	for (int i = 0; i < w->nhere; i++) {
		if (pthread_equal(w->here[i].tid, self)) {
			ts = w->here[i].ts;
			break;
		}
	}
	if (ts == NULL) {
		if (w->nhere == KG_MAX_HERE)
			return 0;
		ts = PyThreadState_New(w->interp);
		if (ts == NULL)
			return 0;
		w->here[w->nhere].tid = self;
		w->here[w->nhere].ts = ts;
		w->nhere++;
	}
	if (tls_in_py < 0)
		tls_in_py = 0; /* a Go thread that now runs Python too */
	PyEval_RestoreThread(ts);
	w->cur = ts;
	tls_cur = w;
	return 1;
}

void kg_detach(kg_worker *w) {
	w->cur = NULL;
	tls_cur = NULL;
	(void)PyEval_SaveThread();
}

/* ---- errors */
static void fetch_error(void) {
	PyObject *t, *v, *tb;
	PyErr_Fetch(&t, &v, &tb);
	if (t == NULL) {
		set_tls_str(&tls_err, "unknown error");
		return;
	}
	PyErr_NormalizeException(&t, &v, &tb);
	if (tb != NULL && v != NULL)
		PyException_SetTraceback(v, tb);
	PyObject *res = NULL;
	if (tls_cur != NULL && tls_cur->helper != NULL) {
		PyObject *script = PyObject_CallMethod(tls_cur->helper, "script_path", NULL);
		if (script == NULL) {
			PyErr_Clear();
			script = PyUnicode_FromString("");
		}
		res = PyObject_CallMethod(tls_cur->helper, "format_exc", "OOOO", t, v ? v : Py_None, tb ? tb : Py_None, script);
		Py_XDECREF(script);
	}
	if (res != NULL && PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 3) {
		set_tls_str(&tls_err, PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 0)));
		set_tls_str(&tls_err_file, PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 1)));
		tls_err_line = (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 2));
	} else {
		PyErr_Clear();
		PyObject *s = v ? PyObject_Str(v) : NULL;
		set_tls_str(&tls_err, s ? PyUnicode_AsUTF8(s) : "python error");
		Py_XDECREF(s);
		set_tls_str(&tls_err_file, "");
		tls_err_line = 0;
	}
	Py_XDECREF(res);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
	PyErr_Clear(); /* never leak an error into the next call (5.6.3 bug) */
}

const char *kg_last_error(void) { return tls_err ? tls_err : ""; }
const char *kg_last_error_file(void) { return tls_err_file ? tls_err_file : ""; }
int kg_last_error_line(void) { return tls_err_line; }
const char *kg_style(void) { return tls_cur && tls_cur->style3s ? "python3s" : "python3"; }

/* ---- scripts */
static int load(const char *path, const char *style, const char *mod_init, const char *child_init, int rank,
                const char *extra_paths) {
	PyObject *h = PyObject_CallMethod(tls_cur->helper, "load", "ssssis", path, style, mod_init, child_init, rank, extra_paths);
	if (h == NULL) {
		fetch_error();
		return -1;
	}
	Py_XSETREF(tls_cur->handler, h);
	PyObject *st = PyObject_GetAttrString(tls_cur->helper, "_state");
	PyObject *sty = st ? PyDict_GetItemString(st, "style") : NULL;
	tls_cur->style3s = sty && PyUnicode_Check(sty) && strcmp(PyUnicode_AsUTF8(sty), "python3s") == 0;
	Py_XDECREF(st);
	return 0;
}

static int has_route(const char *name) {
	if (tls_cur->handler == NULL)
		return 0;
	PyObject *fn = PyObject_GetAttrString(tls_cur->handler, name);
	if (fn == NULL) {
		PyErr_Clear();
		return 0;
	}
	int ok = PyCallable_Check(fn);
	Py_DECREF(fn);
	return ok;
}

/* Run a helper function of _kemigo with string args; *out gets a malloc'd
 * str() of the result. Used by the check and test tools, not on the hot path. */
static int run_helper(const char *fn, const char *a1, const char *a2, long long n, char **out) {
	PyObject *r = PyObject_CallMethod(tls_cur->helper, fn, "ssL", a1, a2, n);
	if (r == NULL) {
		fetch_error();
		return -1;
	}
	PyObject *s = PyObject_Str(r);
	Py_DECREF(r);
	if (s == NULL) {
		fetch_error();
		return -1;
	}
	*out = strdup(PyUnicode_AsUTF8(s));
	Py_DECREF(s);
	return 0;
}

/* Call a route by name. Kamailio looks the name up on the handler at every
 * call, so methods added at run time work. strict routes log a missing name
 * as an error (Go does that from the KG_MISSING result). */
static int call_route(const char *name, uint64_t ctxid, const char *param, int strict) {
	(void)strict;
	if (tls_cur->handler == NULL)
		return KG_MISSING;
	PyObject *fn = PyObject_GetAttrString(tls_cur->handler, name);
	if (fn == NULL) {
		PyErr_Clear();
		return KG_MISSING;
	}
	if (!PyCallable_Check(fn)) {
		Py_DECREF(fn);
		return KG_MISSING;
	}
	kg_msg *msg = PyObject_New(kg_msg, (PyTypeObject *)tls_cur->msgtype);
	if (msg == NULL) {
		Py_DECREF(fn);
		fetch_error();
		return KG_EXC;
	}
	msg->ctxid = ctxid;
	PyObject *res;
	int nargs = param ? 2 : 1;
	if (tls_cur->style3s) {
		/* app_python3s callbacks take no msg; kemigo passes it when the
		 * function accepts one */
		PyObject *n = PyObject_CallMethod(tls_cur->helper, "nargs", "O", fn);
		long want = n ? PyLong_AsLong(n) : 0;
		Py_XDECREF(n);
		PyErr_Clear();
		if (want >= 0 && want < nargs)
			nargs = (int)want;
		if (nargs == 0)
			res = PyObject_CallNoArgs(fn);
		else if (param && nargs == 1 && want >= 0) {
			/* 3s event routes get (evname) */
			PyObject *p = PyUnicode_FromString(param);
			res = p ? PyObject_CallOneArg(fn, p) : NULL;
			Py_XDECREF(p);
		}
		else if (nargs == 1)
			res = PyObject_CallOneArg(fn, (PyObject *)msg);
		else
			res = PyObject_CallFunction(fn, "Os", (PyObject *)msg, param);
	} else if (param) {
		res = PyObject_CallFunction(fn, "Os", (PyObject *)msg, param);
	} else {
		res = PyObject_CallOneArg(fn, (PyObject *)msg);
	}
	msg->ctxid = 0;
	Py_DECREF(msg);
	Py_DECREF(fn);
	if (res == NULL) {
		if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
			fetch_error();
			return KG_EXIT;
		}
		fetch_error();
		return KG_EXC;
	}
	Py_DECREF(res); /* the return value means nothing to the core (SPEC 5.1) */
	return KG_OK;
}

/* The entry points that run Python, marked for the fatal signal handler. */
int kg_load(const char *path, const char *style, const char *mod_init, const char *child_init, int rank,
            const char *extra_paths) {
	PY_ENTER;
	int rc = load(path, style, mod_init, child_init, rank, extra_paths);
	PY_LEAVE();
	return rc;
}

int kg_has_route(const char *name) {
	PY_ENTER;
	int rc = has_route(name);
	PY_LEAVE();
	return rc;
}

int kg_run_helper(const char *fn, const char *a1, const char *a2, long long n, char **out) {
	PY_ENTER;
	int rc = run_helper(fn, a1, a2, n, out);
	PY_LEAVE();
	return rc;
}

int kg_call_route(const char *name, uint64_t ctxid, const char *param, int strict) {
	PY_ENTER;
	int rc = call_route(name, ctxid, param, strict);
	PY_LEAVE();
	return rc;
}

/* ---- the stack of a running worker, read without its GIL (the watchdog) */
#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
static void put(int fd, const char *s, size_t n) {
	while (n > 0) {
		ssize_t k = write(fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}
#define PUTS(fd, s) put(fd, s, strlen(s))

static void put_decimal(int fd, long v) {
	char buf[24], *p = buf + sizeof buf;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		*--p = '-';
	put(fd, p, (size_t)(buf + sizeof buf - p));
}

/* A str as faulthandler writes it: ASCII, others escaped, 500 at most. */
static void put_str(int fd, PyObject *o) {
	if (o == NULL || !PyUnicode_Check(o)) {
		PUTS(fd, "???");
		return;
	}
	Py_ssize_t n = PyUnicode_GET_LENGTH(o), max = 500;
	int kind = PyUnicode_KIND(o);
	const void *data = PyUnicode_DATA(o);
	char buf[600];
	size_t len = 0;
	for (Py_ssize_t i = 0; i < n && i < max; i++) {
		if (len > sizeof buf - 12) {
			put(fd, buf, len);
			len = 0;
		}
		Py_UCS4 c = PyUnicode_READ(kind, data, i);
		if (c >= ' ' && c < 0x7f)
			buf[len++] = (char)c;
		else
			len += (size_t)snprintf(buf + len, 12, c <= 0xff ? "\\x%02x" : c <= 0xffff ? "\\u%04x" : "\\U%08x",
			                        (unsigned)c);
	}
	put(fd, buf, len);
	if (n > max)
		PUTS(fd, "...");
}

/* Python/traceback.c's dump_traceback() of 3.13, which libpython no longer
 * exports: the same walk and the same output. */
static void dump_traceback(int fd, PyThreadState *ts) {
	PUTS(fd, "Stack (most recent call first):\n");
	_PyInterpreterFrame *frame = ts->current_frame;
	if (frame == NULL) {
		PUTS(fd, "  <no Python frame>\n");
		return;
	}
	for (unsigned depth = 0; frame != NULL; depth++) {
		if (frame->owner == FRAME_OWNED_BY_CSTACK) { /* a C trampoline */
			frame = frame->previous;
			if (frame == NULL)
				break;
		}
		if (depth >= 100) {
			PUTS(fd, "  ...\n");
			break;
		}
		PyCodeObject *code = (PyCodeObject *)PyUnstable_InterpreterFrame_GetCode(frame);
		PUTS(fd, "  File \"");
		put_str(fd, code != NULL && PyCode_Check(code) ? code->co_filename : NULL);
		PUTS(fd, "\", line ");
		int line = PyUnstable_InterpreterFrame_GetLine(frame);
		if (line >= 0)
			put_decimal(fd, line);
		else
			PUTS(fd, "???");
		PUTS(fd, " in ");
		put_str(fd, code != NULL && PyCode_Check(code) ? code->co_name : NULL);
		PUTS(fd, "\n");
		frame = frame->previous;
	}
}
#endif

void kg_dump_stack(kg_worker *w, int fd) {
	if (w == NULL)
		return;
	PyThreadState *ts = w->cur; /* the thread running it, if any */
	if (ts == NULL)
		ts = w->ts;
	if (ts == NULL)
		return;
#if PY_VERSION_HEX < 0x030D0000
	_Py_DumpTraceback(fd, ts);
#elif PY_VERSION_HEX < 0x030E0000
	dump_traceback(fd, ts);
#elif PY_VERSION_HEX >= 0x030F0000
	(void)PyUnstable_DumpTraceback(fd, ts);
#else
	static const char msg[] = "Stack: not available with Python 3.14 (libpython does not export the function)\n";
	ssize_t k = write(fd, msg, sizeof msg - 1);
	(void)k;
#endif
}
