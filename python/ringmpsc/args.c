/* Argument conversion (args.h). */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "args.h"

int parse_timeout(PyObject *o, int64_t *out)
{
	if (o == NULL || o == Py_None) {
		*out = -1;
		return 0;
	}
	if (PyBool_Check(o) || !(PyFloat_Check(o) || PyLong_Check(o) || PyNumber_Check(o))) {
		PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds or None, not '%.100s'",
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	double s = PyFloat_AsDouble(o);
	if (s == -1.0 && PyErr_Occurred()) {
		if (PyErr_ExceptionMatches(PyExc_TypeError)) {
			PyErr_Clear();
			PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds or None, not '%.100s'",
				     Py_TYPE(o)->tp_name);
		}
		return -1;
	}
	if (isnan(s) || s < 0) {
		PyErr_Format(PyExc_ValueError, "timeout must be None or a non-negative number of seconds, got %R", o);
		return -1;
	}
	if (s * 1e9 >= 9.0e18) { /* centuries: the same as forever */
		*out = -1;
		return 0;
	}
	int64_t ns = (int64_t)(s * 1e9);
	*out = (s > 0 && ns == 0) ? 1 : ns;
	return 0;
}

int parse_seconds(PyObject *o, const char *name, double max_s, int64_t *out)
{
	if (PyBool_Check(o) || !(PyFloat_Check(o) || PyLong_Check(o) || PyNumber_Check(o))) {
		PyErr_Format(PyExc_TypeError, "%s must be a number of seconds, not '%.100s'", name, Py_TYPE(o)->tp_name);
		return -1;
	}
	double s = PyFloat_AsDouble(o);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (isnan(s) || s < 0 || s > max_s) {
		PyErr_Format(PyExc_ValueError, "%s must be a number of seconds in 0..%g, got %R", name, max_s, o);
		return -1;
	}
	*out = (int64_t)(s * 1e9);
	return 0;
}

int parse_int(PyObject *o, const char *name, long long lo, long long hi, long long *out)
{
	int overflow = 0;
	long long v;
	if (PyLong_CheckExact(o)) { /* the common case: no __index__ call, no new reference */
		v = PyLong_AsLongLongAndOverflow(o, &overflow);
	} else {
		if (PyBool_Check(o) || !PyIndex_Check(o)) {
			PyErr_Format(PyExc_TypeError, "%s must be an int, not '%.100s'", name, Py_TYPE(o)->tp_name);
			return -1;
		}
		PyObject *i = PyNumber_Index(o);
		if (!i)
			return -1;
		v = PyLong_AsLongLongAndOverflow(i, &overflow);
		Py_DECREF(i);
	}
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (overflow || v < lo || v > hi) {
		PyErr_Format(PyExc_ValueError, "%s must be in %lld..%lld, got %R", name, lo, hi, o);
		return -1;
	}
	*out = v;
	return 0;
}

int parse_count(PyObject *o, const char *name, long long dflt, long long hi, long long *out)
{
	if (o == NULL || o == Py_None) {
		*out = dflt;
		return 0;
	}
	if (parse_int(o, name, 1, LLONG_MAX, out) < 0)
		return -1;
	if (*out > hi)
		*out = hi;
	return 0;
}

const char *parse_name(PyObject *o, const char *argname)
{
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str, not '%.100s'", argname, Py_TYPE(o)->tp_name);
		return NULL;
	}
	Py_ssize_t len;
	const char *s = PyUnicode_AsUTF8AndSize(o, &len);
	if (!s)
		return NULL;
	if ((Py_ssize_t)strlen(s) != len) {
		PyErr_Format(PyExc_ValueError, "%s must not contain NUL characters", argname);
		return NULL;
	}
	return s;
}

/*
 * A contiguous bytes-like argument; release it with data_release(). An exact bytes
 * object is used in place without a buffer export: it is immutable, and the caller's
 * reference keeps it alive for the whole call, GIL-free waits included.
 */
int get_data(PyObject *o, Py_buffer *b, int flags, const char *argname)
{
	if (flags == PyBUF_SIMPLE && PyBytes_CheckExact(o)) {
		b->obj = NULL;
		b->buf = PyBytes_AS_STRING(o);
		b->len = PyBytes_GET_SIZE(o);
		return 0;
	}
	if (PyObject_GetBuffer(o, b, flags) == 0)
		return 0;
	if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_BufferError)) {
		PyErr_Clear();
		PyErr_Format(PyExc_TypeError, "%s must be a %scontiguous bytes-like object, not '%.100s'", argname,
			     (flags & PyBUF_WRITABLE) ? "writable " : "", Py_TYPE(o)->tp_name);
	}
	return -1;
}

int parse_group(PyObject *o, long long *gid)
{
	if (!PyUnicode_Check(o)) {
		if (parse_int(o, "group", 0, UINT32_MAX - 1, gid) < 0)
			return -1;
		if (*gid == 0) {
			PyErr_SetString(PyExc_ValueError, "group 0 cannot be given: None keeps the creator's group");
			return -1;
		}
		return 0;
	}
	const char *name = PyUnicode_AsUTF8(o);
	if (!name)
		return -1;
	/* The entry lists the group's members: as large as it takes (ERANGE: a larger buffer). */
	struct group g, *found = NULL;
	long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 4096;
	char *buf = NULL;
	int err;
	for (;;) {
		char *more = PyMem_Realloc(buf, size);
		if (!more) {
			PyMem_Free(buf);
			PyErr_NoMemory();
			return -1;
		}
		buf = more;
		err = getgrnam_r(name, &g, buf, size, &found);
		if (err != ERANGE || size >= ((size_t)1 << 26))
			break;
		size *= 2;
	}
	PyMem_Free(buf); /* only g.gr_gid is used below */
	if (!found) {
		if (err) {
			errno = err;
			PyErr_SetFromErrno(PyExc_OSError);
		} else {
			PyErr_Format(PyExc_ValueError, "group %R does not exist", o);
		}
		return -1;
	}
	if (g.gr_gid == 0) {
		PyErr_Format(PyExc_ValueError, "group %R is group 0, which cannot be given: None keeps the creator's", o);
		return -1;
	}
	*gid = g.gr_gid;
	return 0;
}
