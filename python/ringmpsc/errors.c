/*
 * The one mapping of the core's error vocabulary (RMPSC_E*) to Python exceptions.
 *
 * Full/Empty/Closed get fixed messages worded for the call's side (the core's
 * routine would-block and close returns carry generic ones); every other code
 * raises with the core's rmpsc_last_error() message, which names the argument,
 * field, pid or system call at fault.
 */
#include <errno.h>
#include <stddef.h>

#include "module.h"

#define ANY_SIDE      (-1)
#define EXC(field)    offsetof(modstate, field)
#define VALUE_ERROR   ((size_t)-1)  /* builtin ValueError */
#define OS_ERROR      ((size_t)-2)  /* builtin OSError subclass chosen by errno */
#define INTERRUPTED   ((size_t)-3)  /* builtin InterruptedError */

static const struct error_row {
	int code;
	int side;             /* enum side, or ANY_SIDE; the first matching row wins */
	size_t exc;           /* offsetof(modstate, <exception>), or a builtin above */
	const char *msg;      /* NULL: rmpsc_last_error() */
} error_table[] = {
	{ RMPSC_EFULL, ON_SEND_BYTES, EXC(Full), NULL }, /* the core's names the pool or the ring */
	{ RMPSC_EFULL, ON_PENDING, EXC(Full), NULL },    /* the core's counts the records pending */
	{ RMPSC_ETIMEDOUT, ON_PENDING, EXC(Full), NULL },
	{ RMPSC_EFULL, ANY_SIDE, EXC(Full), "ring full" },
	{ RMPSC_EEMPTY, ANY_SIDE, EXC(Empty), "no record available" },
	{ RMPSC_ETIMEDOUT, ON_RECV, EXC(Empty), "no record within the timeout" },
	{ RMPSC_ETIMEDOUT, ON_SEND_BYTES, EXC(Full), "no free slab or ring space within the timeout" },
	{ RMPSC_ETIMEDOUT, ANY_SIDE, EXC(Full), "no space within the timeout" },
	{ RMPSC_ECLOSED, ON_RECV, EXC(Closed), "channel is closed and drained" },
	{ RMPSC_ECLOSED, ANY_SIDE, EXC(Closed), "channel is closed" },
	{ RMPSC_ENOSLOT, ANY_SIDE, EXC(TooManyProducers), NULL },
	{ RMPSC_ECONSUMER, ANY_SIDE, EXC(ConsumerBusy), NULL },
	{ RMPSC_EINVAL, ANY_SIDE, VALUE_ERROR, NULL },
	{ RMPSC_ECORRUPT, ANY_SIDE, EXC(CorruptRegion), NULL },
	{ RMPSC_ESYS, ANY_SIDE, OS_ERROR, NULL },
	{ RMPSC_EFORKED, ANY_SIDE, EXC(Error), NULL },
	{ RMPSC_EINTR, ANY_SIDE, INTERRUPTED, NULL },
};

/* OSError(errno, message[, filename]) picks FileNotFoundError, FileExistsError... */
static void raise_oserror(int err, const char *msg, PyObject *name)
{
	PyObject *exc = name && name != Py_None ? PyObject_CallFunction(PyExc_OSError, "isO", err, msg, name)
						: PyObject_CallFunction(PyExc_OSError, "is", err, msg);
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
}

/*
 * Raise the exception for C result `rc` (< 0, or RC_PYERR when one is already
 * set). `err` is errno right after the failing call (for RMPSC_ESYS); `name` the
 * channel name an OSError carries as its filename, or NULL.
 */
void raise_rc(modstate *st, int rc, int err, enum side side, PyObject *name)
{
	if (rc == RC_PYERR)
		return;
	const char *core_msg = rmpsc_last_error();
	for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++) {
		const struct error_row *r = &error_table[i];
		if (r->code != rc || (r->side != ANY_SIDE && r->side != (int)side))
			continue;
		const char *msg = r->msg ? r->msg : core_msg;
		switch (r->exc) {
		case VALUE_ERROR:
			PyErr_SetString(PyExc_ValueError, msg);
			return;
		case OS_ERROR:
			raise_oserror(err, msg, name);
			return;
		case INTERRUPTED:
			errno = EINTR;
			PyErr_SetFromErrno(PyExc_InterruptedError);
			return;
		default:
			PyErr_SetString(*(PyObject **)((char *)st + r->exc), msg);
			return;
		}
	}
	PyErr_Format(st->Error, "ringmpsc error %d (%s): %s", rc, rmpsc_strerror(rc), core_msg);
}
