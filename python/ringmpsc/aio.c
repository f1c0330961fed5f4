/*
 * The coroutine methods (recv_async, send_async, ..., __anext__): entries in the
 * C types' method tables that hand the call to the pure-Python ringmpsc._aio and
 * return its coroutine. The waiting itself is Python's, over the readiness calls
 * (their _try variants, which never wait for another thread) the types have
 * here. _aio is imported on the first call, so that importing ringmpsc does not
 * import asyncio; closing a Consumer or Producer (or a Channel's leave) tells it,
 * when it is loaded, so that the coroutines waiting on that object look again.
 */
#include "module.h"

/* ringmpsc._aio.<name>(self, *args, **kwds) */
static PyObject *aio_call(PyObject *self, const char *name, PyObject *args, PyObject *kwds)
{
	PyObject *aio = PyImport_ImportModule("ringmpsc._aio"); /* sys.modules after the first call */
	if (!aio)
		return NULL;
	PyObject *fn = PyObject_GetAttrString(aio, name);
	Py_DECREF(aio);
	if (!fn)
		return NULL;
	Py_ssize_t n = args ? PyTuple_GET_SIZE(args) : 0;
	PyObject *all = PyTuple_New(n + 1);
	if (!all) {
		Py_DECREF(fn);
		return NULL;
	}
	PyTuple_SET_ITEM(all, 0, Py_NewRef(self));
	for (Py_ssize_t i = 0; i < n; i++)
		PyTuple_SET_ITEM(all, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
	PyObject *r = PyObject_Call(fn, all, kwds);
	Py_DECREF(all);
	Py_DECREF(fn);
	return r;
}

void aio_changed(PyObject *self)
{
	PyObject *name = PyUnicode_FromString("ringmpsc._aio");
	if (!name) {
		PyErr_WriteUnraisable(self);
		return;
	}
	PyObject *aio = PyImport_GetModule(name); /* not imported: no coroutine ever waited */
	Py_DECREF(name);
	if (!aio) {
		if (PyErr_Occurred())
			PyErr_WriteUnraisable(self);
		return;
	}
	PyObject *r = PyObject_CallMethod(aio, "_changed", "O", self);
	Py_DECREF(aio);
	if (!r)
		PyErr_WriteUnraisable(self);
	Py_XDECREF(r);
}


/* ------------------------------------------------------------------------- */
/*
 * The fast path. Most awaits find a record (or space) there already; building a
 * coroutine of _aio's for them costs some microseconds. So a coroutine method
 * returns an _Await: when first sent to (as the await starts, never earlier, so a
 * task cancelled before it ran has taken nothing), it tries the operation with
 * timeout 0 and returns its result at once; only when that does not succeed does
 * it make _aio's coroutine and hand every send, throw and close on to it (which
 * tries again, and raises what the operation raises). Registered as a
 * collections.abc.Coroutine (ringmpsc/__init__.py), so create_task takes it.
 */
typedef struct {
	PyObject_HEAD
	PyObject *self;      /* the Channel, Consumer or Producer */
	const char *op;      /* its method tried with timeout 0, or NULL: no fast try */
	PyObject *op_args;   /* the arguments of that try, timeout 0 last */
	const char *aio;     /* _aio's function, when the try does not do */
	PyObject *args;      /* ... and its arguments */
	PyObject *kwds;
	PyObject *inner;     /* _aio's coroutine, once made */
	int state;           /* 0: not started; 1: handing on to inner; 2: done */
} AwaitObject;

static PyTypeObject Await_Type;

static void await_dealloc(AwaitObject *a)
{
	Py_XDECREF(a->self);
	Py_XDECREF(a->op_args);
	Py_XDECREF(a->args);
	Py_XDECREF(a->kwds);
	Py_XDECREF(a->inner);
	Py_TYPE(a)->tp_free((PyObject *)a);
}

/* Finish with `value`: raise StopIteration(value), as a returning coroutine does. */
static PyObject *await_return(AwaitObject *a, PyObject *value)
{
	a->state = 2;
	PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
	Py_DECREF(value);
	if (stop) {
		PyErr_SetObject(PyExc_StopIteration, stop);
		Py_DECREF(stop);
	}
	return NULL;
}

/*
 * One step: PYGEN_NEXT with what inner yielded, PYGEN_RETURN with the result, or
 * PYGEN_ERROR. The `await` of a coroutine calls this through am_send (no
 * StopIteration made for a result); send() and iteration through await_send.
 */
static PySendResult await_step(AwaitObject *a, PyObject *value, PyObject **result)
{
	*result = NULL;
	if (a->state == 2) {
		PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
		return PYGEN_ERROR;
	}
	if (a->state == 0) {
		if (value != Py_None) {
			PyErr_SetString(PyExc_TypeError, "can't send non-None value to a just-started coroutine");
			return PYGEN_ERROR;
		}
		if (a->op) {
			PyObject *fn = PyObject_GetAttrString(a->self, a->op);
			PyObject *r = fn ? PyObject_Call(fn, a->op_args, NULL) : NULL;
			Py_XDECREF(fn);
			if (r) {
				a->state = 2;
				*result = r;
				return PYGEN_RETURN;
			}
			PyErr_Clear(); /* would block, or an error: _aio tries again and says which */
		}
		a->inner = aio_call(a->self, a->aio, a->args, a->kwds);
		if (!a->inner) {
			a->state = 2;
			return PYGEN_ERROR;
		}
		a->state = 1;
	}
	PySendResult r = PyIter_Send(a->inner, value, result);
	if (r != PYGEN_NEXT)
		a->state = 2;
	return r;
}

static PySendResult await_am_send(PyObject *self, PyObject *value, PyObject **result)
{
	return await_step((AwaitObject *)self, value, result);
}

static PyObject *await_send(AwaitObject *a, PyObject *value)
{
	PyObject *result;
	PySendResult r = await_step(a, value, &result);
	if (r == PYGEN_NEXT)
		return result;
	if (r == PYGEN_RETURN)
		return await_return(a, result);
	return NULL;
}

static PyObject *await_iternext(AwaitObject *a)
{
	return await_send(a, Py_None);
}

static PyObject *await_throw(AwaitObject *a, PyObject *const *args, Py_ssize_t nargs)
{
	if (a->state != 1) { /* never started, or done: the exception goes straight through */
		a->state = 2;
		if (nargs < 1 || nargs > 3) {
			PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
			return NULL;
		}
		PyObject *exc = args[0];
		if (PyExceptionClass_Check(exc)) {
			PyObject *v = nargs > 1 && args[1] != Py_None ? args[1] : NULL;
			PyErr_SetObject(exc, v);
		} else {
			PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		}
		return NULL;
	}
	PyObject *throw_fn = PyObject_GetAttrString(a->inner, "throw");
	if (!throw_fn)
		return NULL;
	PyObject *r = PyObject_Vectorcall(throw_fn, args, (size_t)nargs, NULL);
	Py_DECREF(throw_fn);
	if (!r && PyErr_ExceptionMatches(PyExc_StopIteration))
		a->state = 2;
	else if (!r)
		a->state = 2;
	return r;
}

static PyObject *await_close(AwaitObject *a, PyObject *unused)
{
	int started = a->state == 1;
	a->state = 2;
	if (started)
		return PyObject_CallMethod(a->inner, "close", NULL);
	Py_RETURN_NONE;
}

static PyObject *await_await(PyObject *self)
{
	return Py_NewRef(self);
}

static PyMethodDef await_methods[] = {
	{ "send", (PyCFunction)await_send, METH_O, NULL },
	{ "throw", (PyCFunction)(void (*)(void))await_throw, METH_FASTCALL, NULL },
	{ "close", (PyCFunction)await_close, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyAsyncMethods await_as_async = { .am_await = await_await, .am_send = await_am_send };

static PyTypeObject Await_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ringmpsc._ringmpsc._Await",
	.tp_basicsize = sizeof(AwaitObject),
	.tp_dealloc = (destructor)await_dealloc,
	.tp_as_async = &await_as_async,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "The coroutine of a ringmpsc *_async method (aio.c).",
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)await_iternext,
	.tp_methods = await_methods,
};

int aio_init(PyObject *module)
{
	if (PyType_Ready(&Await_Type) < 0)
		return -1;
	return PyModule_AddObjectRef(module, "_Await", (PyObject *)&Await_Type);
}

/* A timeout the fast try may ignore: None or a number >= 0 (others go to _aio, which says what is wrong). */
static int plain_timeout(PyObject *t)
{
	if (!t || t == Py_None)
		return 1;
	if (PyBool_Check(t) || !(PyFloat_Check(t) || PyLong_Check(t)))
		return 0;
	double v = PyFloat_AsDouble(t);
	if (v == -1.0 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	return v >= 0;
}

/*
 * The _Await of a call: `op` tried with `first` (the arguments before the timeout;
 * NULL: no fast try) and timeout 0, else _aio's `aio`(self, *args, **kwds).
 */
static PyObject *await_new(PyObject *self, const char *op, PyObject *first, PyObject *timeout, const char *aio,
			   PyObject *args, PyObject *kwds)
{
	AwaitObject *a = PyObject_New(AwaitObject, &Await_Type);
	if (!a)
		return NULL;
	a->self = Py_NewRef(self);
	a->op = op && plain_timeout(timeout) ? op : NULL;
	a->op_args = NULL;
	a->aio = aio;
	a->args = Py_XNewRef(args);
	a->kwds = Py_XNewRef(kwds);
	a->inner = NULL;
	a->state = 0;
	if (a->op) {
		PyObject *zero = PyLong_FromLong(0);
		a->op_args = !zero ? NULL : first ? PyTuple_Pack(2, first, zero) : PyTuple_Pack(1, zero);
		Py_XDECREF(zero);
		if (!a->op_args) {
			Py_DECREF(a);
			return NULL;
		}
	}
	return (PyObject *)a;
}

/* A coroutine method whose fast try is `op`(timeout=0), or `op`(first, timeout=0). */
#define AIO_METHOD_0(cname, pyname, op, fname)                                                      \
	PyObject *cname(PyObject *self, PyObject *args, PyObject *kwds)                             \
	{                                                                                           \
		static char *kwlist[] = { "timeout", NULL };                                        \
		PyObject *timeout = NULL;                                                           \
		if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:" fname, kwlist, &timeout))        \
			return NULL;                                                                \
		return await_new(self, op, NULL, timeout, pyname, args, kwds);                      \
	}
#define AIO_METHOD_1(cname, pyname, op, fname, first_name, required)                                \
	PyObject *cname(PyObject *self, PyObject *args, PyObject *kwds)                             \
	{                                                                                           \
		static char *kwlist[] = { first_name, "timeout", NULL };                            \
		PyObject *first = Py_None, *timeout = NULL;                                         \
		if (!PyArg_ParseTupleAndKeywords(args, kwds, required ? "O|O:" fname : "|OO:" fname, \
						 kwlist, &first, &timeout))                         \
			return NULL;                                                                \
		return await_new(self, op, first, timeout, pyname, args, kwds);                     \
	}
#define AIO_METHOD(cname, pyname)                                       \
	PyObject *cname(PyObject *self, PyObject *args, PyObject *kwds) \
	{                                                               \
		return aio_call(self, pyname, args, kwds);              \
	}

/* ------------------------------------------------------------------------- */
/* Channel and Consumer. */

const char cs_recv_async_doc[] = PyDoc_STR(
"recv_async($self, /, timeout=None)\n--\n\n\
Coroutine: receive one record, as recv() does, waiting in the running event\n\
loop (on ready_fd(); no thread) instead of blocking it. timeout as recv's;\n\
raises Empty when none arrived in time, Closed once the channel is closed and\n\
drained. A cancelled (or timed-out) await has taken nothing: the record stays\n\
for the next call. The loop's thread never waits for another thread: while\n\
one holds this group's consumer side (a blocking recv, an open ReadView), the\n\
coroutine polls. Closing the Consumer meanwhile raises ValueError at once.");
AIO_METHOD_0(cs_recv_async, "recv", "recv", "recv_async")

const char cs_recv_many_async_doc[] = PyDoc_STR(
"recv_many_async($self, /, max_records=None, timeout=None)\n--\n\n\
Coroutine: recv_many() waiting in the running event loop (see recv_async).");
AIO_METHOD_1(cs_recv_many_async, "recv_many", "recv_many", "recv_many_async", "max_records", 0)

const char cs_read_async_doc[] = PyDoc_STR(
"read_async($self, /, max_records=None, timeout=None)\n--\n\n\
Coroutine: read() waiting in the running event loop (see recv_async). The\n\
ReadView holds this group's consumer side until consumed or cancelled: finish\n\
it before another task of this thread receives from the group (that raises\n\
RuntimeError, as read() does).");
AIO_METHOD(cs_read_async, "read")

const char cs_recv_bytes_async_doc[] = PyDoc_STR(
"recv_bytes_async($self, /, timeout=None)\n--\n\n\
Coroutine: recv_bytes() waiting in the running event loop (see recv_async).");
AIO_METHOD_0(cs_recv_bytes_async, "recv_bytes", "recv_bytes", "recv_bytes_async")

/* `async for rec in ch`: tp_as_async's am_anext (am_aiter returns self). */
PyObject *cs_anext(PyObject *self)
{
	return await_new(self, "recv", NULL, NULL, "anext", NULL, NULL);
}

/* ------------------------------------------------------------------------- */
/* Producer. */

const char producer_send_async_doc[] = PyDoc_STR(
"send_async($self, /, data, timeout=None)\n--\n\n\
Coroutine: send one record, as send() does, waiting in the running event loop\n\
(on the producer's ready_fd(); no thread) while the ring is full. timeout as\n\
send's; raises Full when no space came in time, Closed once the channel is\n\
closed. A cancelled (or timed-out) await has sent nothing. While another\n\
thread holds the producer (a blocking send, an open Reservation) it polls;\n\
closing the Producer meanwhile raises ValueError at once.");
AIO_METHOD_1(producer_send_async, "send", "send", "send_async", "data", 1)

const char producer_send_bytes_async_doc[] = PyDoc_STR(
"send_bytes_async($self, /, data, timeout=None)\n--\n\n\
Coroutine: send_bytes() waiting in the running event loop. Ring space is\n\
awaited on ready_fd(); a free slab has no descriptor to wait on, so while the\n\
slab pool is empty the coroutine polls, sleeping 50 us doubling to 5 ms between\n\
tries. A cancelled (or timed-out) await has sent nothing.");
AIO_METHOD_1(producer_send_bytes_async, "send_bytes", "send_bytes", "send_bytes_async", "data", 1)
