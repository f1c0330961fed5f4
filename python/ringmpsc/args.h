/* Argument conversion: Python objects to the C types the core takes. */
#ifndef RINGMPSC_PY_ARGS_H
#define RINGMPSC_PY_ARGS_H

#include "module.h"

/* timeout=None -> -1 (forever), a number of seconds >= 0 -> nanoseconds. */
int parse_timeout(PyObject *o, int64_t *out);
/* A number of seconds in [0, max_s] -> nanoseconds; TypeError / ValueError naming the argument. */
int parse_seconds(PyObject *o, const char *name, double max_s, int64_t *out);
/* An int argument in [lo, hi]; TypeError / ValueError naming the argument. */
int parse_int(PyObject *o, const char *name, long long lo, long long hi, long long *out);
/* None -> dflt, else an int in [1, hi]. */
int parse_count(PyObject *o, const char *name, long long dflt, long long hi, long long *out);
/* A C string from a str name argument. */
const char *parse_name(PyObject *o, const char *argname);
/* A group given as a gid (int) or a name (str), for a channel's region file:
 * *gid > 0, or -1 with ValueError (unknown name, group 0) or TypeError. */
int parse_group(PyObject *o, long long *gid);
/* A contiguous bytes-like argument; release it with data_release(). */
int get_data(PyObject *o, Py_buffer *b, int flags, const char *argname);

static inline void data_release(Py_buffer *b)
{
	if (b->obj)
		PyBuffer_Release(b);
}

/*
 * The arguments of a METH_FASTCALL | METH_KEYWORDS method (no argument tuple or
 * keyword dict is built; PyArg_ParseTupleAndKeywords was a fifth of a one-record
 * call). `names` are the nmax parameters in order, all positional-or-keyword, the
 * first nreq required; out[i] is NULL for one not given. TypeErrors worded as
 * PyArg_ParseTupleAndKeywords words them.
 */
static ALWAYS_INLINE int fast_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		     const char *const *names, int nreq, int nmax, PyObject **out)
{
	if (likely(!kwnames && nargs >= nreq && nargs <= nmax)) { /* positional only */
		for (int i = 0; i < nmax; i++)
			out[i] = i < nargs ? args[i] : NULL;
		return 0;
	}
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	if (unlikely(nargs + nkw > nmax)) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %d argument%s (%zd given)", fname, nmax,
			     nmax == 1 ? "" : "s", nargs + nkw);
		return -1;
	}
	int i;
	for (i = 0; i < nmax; i++)
		out[i] = i < nargs ? args[i] : NULL;
	for (Py_ssize_t k = 0; k < nkw; k++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, k);
		for (i = 0; i < nmax; i++)
			if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0)
				break;
		if (i == nmax) {
			PyErr_Format(PyExc_TypeError, "'%U' is an invalid keyword argument for %s()", key, fname);
			return -1;
		}
		if (out[i]) {
			PyErr_Format(PyExc_TypeError, "argument for %s() given by name ('%s') and position (%d)", fname,
				     names[i], i + 1);
			return -1;
		}
		out[i] = args[nargs + k];
	}
	for (i = 0; i < nreq; i++) {
		if (!out[i]) {
			PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %d)", fname, names[i],
				     i + 1);
			return -1;
		}
	}
	return 0;
}

#endif
