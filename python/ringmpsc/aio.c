/*
 * The coroutine methods (recv_async, send_async, ..., __anext__): entries in the
 * C types' method tables that hand the call to the pure-Python ringmpsc._aio and
 * return its coroutine. The waiting itself is Python's, over the readiness calls
 * (ready_fd, ready_arm, ready_disarm) the types have here. _aio is imported on
 * the first call, so that importing ringmpsc does not import asyncio.
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

#define AIO_METHOD(cname, pyname)                                            \
	PyObject *cname(PyObject *self, PyObject *args, PyObject *kwds)      \
	{                                                                    \
		return aio_call(self, pyname, args, kwds);                   \
	}

/* ------------------------------------------------------------------------- */
/* Channel and Consumer. */

const char cs_recv_async_doc[] = PyDoc_STR(
"recv_async($self, /, timeout=None)\n--\n\n\
Coroutine: receive one record, as recv() does, waiting in the running event\n\
loop (on ready_fd(); no thread) instead of blocking it. timeout as recv's;\n\
raises Empty when none arrived in time, Closed once the channel is closed and\n\
drained. A cancelled (or timed-out) await has taken nothing: the record stays\n\
for the next call.");
AIO_METHOD(cs_recv_async, "recv")

const char cs_recv_many_async_doc[] = PyDoc_STR(
"recv_many_async($self, /, max_records=None, timeout=None)\n--\n\n\
Coroutine: recv_many() waiting in the running event loop (see recv_async).");
AIO_METHOD(cs_recv_many_async, "recv_many")

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
AIO_METHOD(cs_recv_bytes_async, "recv_bytes")

/* `async for rec in ch`: tp_as_async's am_anext (am_aiter returns self). */
PyObject *cs_anext(PyObject *self)
{
	return aio_call(self, "anext", NULL, NULL);
}

/* ------------------------------------------------------------------------- */
/* Producer. */

const char producer_send_async_doc[] = PyDoc_STR(
"send_async($self, /, data, timeout=None)\n--\n\n\
Coroutine: send one record, as send() does, waiting in the running event loop\n\
(on the producer's ready_fd(); no thread) while the ring is full. timeout as\n\
send's; raises Full when no space came in time, Closed once the channel is\n\
closed. A cancelled (or timed-out) await has sent nothing.");
AIO_METHOD(producer_send_async, "send")

const char producer_send_bytes_async_doc[] = PyDoc_STR(
"send_bytes_async($self, /, data, timeout=None)\n--\n\n\
Coroutine: send_bytes() waiting in the running event loop. Ring space is\n\
awaited on ready_fd(); a free slab has no descriptor to wait on, so while the\n\
slab pool is empty the coroutine polls, sleeping 50 us doubling to 5 ms between\n\
tries. A cancelled (or timed-out) await has sent nothing.");
AIO_METHOD(producer_send_bytes_async, "send_bytes")
