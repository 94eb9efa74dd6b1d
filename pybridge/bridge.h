/* The only interface between kemigo's Go code and CPython. Go calls the kg_*
 * functions below; bridge.c is the only file that touches the CPython API
 * (plus the tiny helpers Go needs to build return values). */
#ifndef KEMIGO_BRIDGE_H
#define KEMIGO_BRIDGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* worker interpreter modes */
#define KG_MODE_MAIN 0   /* the main interpreter (one worker only) */
#define KG_MODE_SHARED 1 /* sub-interpreter sharing the main GIL (3.11 with N>1) */
#define KG_MODE_OWN 2    /* sub-interpreter with its own GIL (3.12+, PEP 684) */

/* route call results */
#define KG_OK 0
#define KG_MISSING 1 /* the callback does not exist or is not callable */
#define KG_EXC 2     /* the callback raised; see kg_last_error() */
#define KG_EXIT 3    /* the callback called sys.exit() */

/* argument and return passing for KEMI calls */
typedef struct {
	int is_str;
	long long i;
	const char *s;
	Py_ssize_t len;
} kg_arg;

typedef struct {
	int kind; /* 0 null, 1 int, 2 str, 3 bool, 4 error (exception already set) */
	long long i;
	PyObject *obj; /* for str: a new reference built by kg_new_str */
} kg_ret;

typedef struct kg_worker kg_worker;

int kg_version_hex(void);
void kg_register_export(int id, const char *module, const char *name, const char *params, int ret);
int kg_init(const char *helper_src, char *err, int errlen);
kg_worker *kg_worker_new(int id, int mode, char *err, int errlen);
void kg_worker_free(kg_worker *w);
void kg_attach(kg_worker *w);      /* on the worker's own thread */
int kg_attach_here(kg_worker *w); /* on any thread; 0: no room, not attached */
void kg_detach(kg_worker *w);

/* With the worker attached: */
int kg_run_helper(const char *fn, const char *a1, const char *a2, long long n, char **out);
int kg_load(const char *path, const char *style, const char *mod_init, const char *child_init, int rank, const char *extra_paths);
int kg_call_route(const char *name, uint64_t ctxid, const char *param, int strict);
int kg_has_route(const char *name);
const char *kg_last_error(void);
const char *kg_last_error_file(void);
int kg_last_error_line(void);
const char *kg_style(void);

/* Write the Python stack of worker w to fd without taking its GIL, the way
 * faulthandler does (a best-effort read of frames that may be changing:
 * for a stuck worker). Safe from any thread while w exists. */
void kg_dump_stack(kg_worker *w, int fd);

/* helpers for Go callbacks */
PyObject *kg_new_str(const char *s, Py_ssize_t len);
void kg_raise(int kind, const char *msg);
#endif
