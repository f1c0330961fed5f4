/*
 * The consumer side, one implementation for two types: Channel (its own handle, a
 * member of the default group, joined by the first consumer call) and Consumer (a
 * handle of its own on the channel's region, joined to a named group by
 * Channel.consumer()). Both objects start with a consumer_side (module.h), which
 * every method here works on: the C handle, the membership lock, the geometry and
 * the deliveries of the last receive.
 *
 * Every wait runs in GIL-free slices (blocking.h); the membership lock is taken
 * first, by the call's deadline. Receives that copy go through rmpsc_consume, so
 * that the copying callback can see rmpsc_deliveries() of each span it copies.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "blocking.h"

const char CONSUMER_BUSY[] =
	"this thread holds the consumer side of this group (an open read() view): consume or cancel it first";

/* ------------------------------------------------------------------------- */
/* Membership locks: one per region file and group in this process, shared by
 * every Channel and Consumer on them (module.h). */

glock *glock_get(modstate *st, uint64_t dev, uint64_t ino, const char *group)
{
	for (glock *g = st->glocks; g; g = g->next) {
		if (g->dev == dev && g->ino == ino && strcmp(g->group, group) == 0) {
			g->users++;
			return g;
		}
	}
	glock *g = PyMem_Calloc(1, sizeof *g);
	if (!g) {
		PyErr_NoMemory();
		return NULL;
	}
	hlock_init(&g->lock, st);
	g->dev = dev;
	g->ino = ino;
	g->ready_fd = -1;
	snprintf(g->group, sizeof g->group, "%s", group);
	g->users = 1;
	g->next = st->glocks;
	st->glocks = g;
	return g;
}

void glock_put(modstate *st, glock *gl)
{
	if (!gl || --gl->users > 0)
		return;
	for (glock **p = &st->glocks; *p; p = &(*p)->next) {
		if (*p == gl) {
			*p = gl->next;
			break;
		}
	}
	PyMem_Free(gl);
}

/* ------------------------------------------------------------------------- */
/* The shared methods. */

static int closed_consumer(void)
{
	PyErr_SetString(PyExc_ValueError, "Consumer is closed");
	return -1;
}

/* Take the membership lock by the deadline. 0 ok; -1 with an exception (Empty on timeout). */
static int consumer_lock(consumer_side *cs, int64_t until)
{
	if (unlikely(!cs->ch))
		return closed_consumer();
	int r = hlock_acquire(&cs->gl->lock, cs->st, until, CONSUMER_BUSY);
	if (r == 1)
		PyErr_SetString(cs->st->Empty, until == 0 ? "no record available (another thread is consuming)"
							  : "no record within the timeout (another thread is consuming)");
	if (r != 0)
		return -1;
	if (unlikely(!cs->ch)) { /* closed by another thread meanwhile */
		hlock_release(&cs->gl->lock);
		return closed_consumer();
	}
	return 0;
}

/* Copies records out, span by span, noting how often each span was delivered. */
struct op_recv {
	rmpsc_channel *ch;
	char *buf;
	size_t max;
	size_t rs;
	int got;
	uint32_t deliveries;
};

static int copy_span(void *ctx, const void *records, size_t count, uint32_t slot)
{
	struct op_recv *o = ctx;
	memcpy(o->buf + (size_t)o->got * o->rs, records, count * o->rs);
	o->got += (int)count;
	uint32_t d = rmpsc_deliveries(o->ch);
	if (d > o->deliveries)
		o->deliveries = d;
	return 0;
}

static int op_recv(void *ctx, int64_t t)
{
	struct op_recv *o = ctx;
	o->got = 0;
	o->deliveries = 0;
	return rmpsc_consume(o->ch, o->max, t, copy_span, o);
}

static int op_wait_readable(void *ctx, int64_t t)
{
	return rmpsc_wait_readable(ctx, t);
}

static PyObject *recv_record(PyObject *self, int64_t timeout)
{
	consumer_side *cs = CS(self);
	int64_t until = deadline_at(timeout);
	PyObject *b = PyBytes_FromStringAndSize(NULL, cs->cfg.record_size);
	if (!b)
		return NULL;
	if (consumer_lock(cs, until) < 0) {
		Py_DECREF(b);
		return NULL;
	}
	/* The new bytes object is ours alone until returned: filling it without the
	 * GIL is safe (os.read does the same). */
	struct op_recv o = { cs->ch, PyBytes_AS_STRING(b), 1, cs->cfg.record_size, 0, 0 };
	int err;
	int rc = run_op(op_recv, &o, until, &err);
	if (rc > 0)
		cs->deliveries = o.deliveries;
	hlock_release(&cs->gl->lock);
	if (rc < 0) {
		Py_DECREF(b);
		raise_rc(cs->st, rc, err, ON_RECV, NULL);
		return NULL;
	}
	return b;
}

static const char *const kw_timeout[] = { "timeout" };
static const char *const kw_max_timeout[] = { "max_records", "timeout" };
static const char *const kw_buffer_timeout[] = { "buffer", "timeout" };

const char cs_recv_doc[] = PyDoc_STR(
"recv($self, /, timeout=None)\n--\n\n\
Receive one record (bytes of record_size). Blocks up to timeout seconds (None:\n\
forever, 0: never) and raises Empty when none arrived, Closed once the channel is\n\
closed and every committed record has been received. last_deliveries tells\n\
whether it was delivered before.");
PyObject *cs_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[1];
	int64_t t;
	if (fast_args("recv", args, nargs, kwnames, kw_timeout, 0, 1, a) < 0 || parse_timeout(a[0], &t) < 0)
		return NULL;
	return recv_record(self, t);
}

const char cs_recv_nowait_doc[] = PyDoc_STR(
"recv_nowait($self, /)\n--\n\nrecv(timeout=0): raise Empty at once when no record is ready.");
PyObject *cs_recv_nowait(PyObject *self, PyObject *unused)
{
	return recv_record(self, 0);
}

PyObject *cs_iternext(PyObject *self)
{
	PyObject *r = recv_record(self, -1);
	if (!r && PyErr_ExceptionMatches(CS(self)->st->Closed))
		PyErr_Clear(); /* closed and drained: StopIteration */
	return r;
}

const char cs_recv_many_doc[] = PyDoc_STR(
"recv_many($self, /, max_records=None, timeout=None)\n--\n\n\
Wait (as recv) for at least one record, then return every record available, up\n\
to max_records, concatenated in one bytes object (a multiple of record_size).");
PyObject *cs_recv_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	consumer_side *cs = CS(self);
	PyObject *a[2];
	int64_t t;
	long long max;
	/* More than every ring holds at once is never available. */
	long long cap = (long long)cs->cfg.capacity * cs->cfg.max_producers;
	if (cap > INT32_MAX)
		cap = INT32_MAX; /* counts travel as int through the C API */
	if (fast_args("recv_many", args, nargs, kwnames, kw_max_timeout, 0, 2, a) < 0 ||
	    parse_count(a[0], "max_records", cap, cap, &max) < 0 || parse_timeout(a[1], &t) < 0)
		return NULL;
	int64_t until = deadline_at(t);
	if (consumer_lock(cs, until) < 0)
		return NULL;
	/* Size one bytes object by what is pending once something is readable; the
	 * core then takes every record available up to that many. */
	int rc = 0, err = 0;
	PyObject *b = NULL;
	if (rmpsc_pending(cs->ch) == 0)
		rc = run_op(op_wait_readable, cs->ch, until, &err);
	if (rc >= 0) {
		uint64_t pending = rmpsc_pending(cs->ch);
		long long want = pending < 1 ? 1 : pending > (uint64_t)max ? max : (long long)pending;
		size_t rs = cs->cfg.record_size;
		b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(want * rs));
		if (!b) {
			rc = RC_PYERR;
		} else {
			/* The new bytes object is ours alone until returned: filling it
			 * without the GIL is safe (os.read does the same). */
			struct op_recv o = { cs->ch, PyBytes_AS_STRING(b), (size_t)want, rs, 0, 0 };
			/* Waits if pending but not readable (a fenced ring, or records other
			 * members of the group hold). */
			rc = (size_t)want * rs > BIG_COPY ? run_op_nogil(op_recv, &o, until, &err)
							  : run_op(op_recv, &o, until, &err);
			if (rc <= 0)
				Py_CLEAR(b);
			else if (rc < want && _PyBytes_Resize(&b, (Py_ssize_t)rc * (Py_ssize_t)rs) < 0)
				rc = RC_PYERR; /* b is NULL */
			if (rc > 0)
				cs->deliveries = o.deliveries;
		}
	}
	hlock_release(&cs->gl->lock);
	if (!b)
		raise_rc(cs->st, rc, err, ON_RECV, NULL);
	return b;
}

const char cs_recv_into_doc[] = PyDoc_STR(
"recv_into($self, /, buffer, timeout=None)\n--\n\n\
Wait (as recv) for at least one record, then copy as many whole records as are\n\
available and fit into the writable buffer. Returns the number of records.");
PyObject *cs_recv_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	consumer_side *cs = CS(self);
	PyObject *a[2];
	int64_t t;
	if (fast_args("recv_into", args, nargs, kwnames, kw_buffer_timeout, 1, 2, a) < 0 ||
	    parse_timeout(a[1], &t) < 0)
		return NULL;
	Py_buffer view;
	if (get_data(a[0], &view, PyBUF_WRITABLE, "buffer") < 0)
		return NULL;
	size_t max = (size_t)view.len / cs->cfg.record_size;
	if (max > INT32_MAX)
		max = INT32_MAX; /* counts travel as int through the C API */
	if (max == 0) {
		PyErr_Format(PyExc_ValueError, "buffer of %zd bytes cannot hold one record of record_size %u", view.len,
			     cs->cfg.record_size);
		data_release(&view);
		return NULL;
	}
	int64_t until = deadline_at(t);
	if (consumer_lock(cs, until) < 0) {
		data_release(&view);
		return NULL;
	}
	/* The exported buffer cannot move or shrink while we hold the export. */
	/* The core takes every record available up to max. */
	struct op_recv o = { cs->ch, view.buf, max, cs->cfg.record_size, 0, 0 };
	int err;
	int rc = run_op(op_recv, &o, until, &err);
	if (rc > 0)
		cs->deliveries = o.deliveries;
	hlock_release(&cs->gl->lock);
	data_release(&view);
	if (rc < 0) {
		raise_rc(cs->st, rc, err, ON_RECV, NULL);
		return NULL;
	}
	return PyLong_FromLong(o.got);
}

struct op_read {
	rmpsc_channel *ch;
	size_t max;
	const void *ptr;
	uint32_t slot;
	int got;
};

static int op_read(void *ctx, int64_t t)
{
	struct op_read *o = ctx;
	int n = rmpsc_read(o->ch, o->max, t, &o->ptr, &o->slot);
	if (n > 0)
		o->got = n;
	return n;
}

const char cs_read_doc[] = PyDoc_STR(
"read($self, /, max_records=None, timeout=None)\n--\n\n\
Wait (as recv) for records and return a ReadView of k (1 <= k <= max_records)\n\
contiguous records of one producer, in place (zero-copy, read-only):\n\
\n\
    with ch.read() as view:   # memoryview of len(view) // record_size records\n\
        process(view)\n\
\n\
The records are consumed when the block exits normally and left for the next\n\
read when it raises; the view is released when the block ends (one still\n\
exported then, a NumPy array made from it, makes the block cancel and raise\n\
BufferError: copy what you keep). Until then the consumer calls of this group\n\
from other threads wait. The ReadView's deliveries is 1 for a first delivery,\n\
more when a member of the group died holding these records.");
PyObject *cs_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	consumer_side *cs = CS(self);
	modstate *st = cs->st;
	PyObject *a[2];
	int64_t t;
	long long max;
	if (fast_args("read", args, nargs, kwnames, kw_max_timeout, 0, 2, a) < 0 ||
	    parse_count(a[0], "max_records", cs->cfg.capacity, cs->cfg.capacity, &max) < 0 ||
	    parse_timeout(a[1], &t) < 0)
		return NULL;
	int64_t until = deadline_at(t);
	if (consumer_lock(cs, until) < 0)
		return NULL;
	struct op_read o = { cs->ch, (size_t)max, NULL, 0, 0 };
	int err;
	int rc = run_op(op_read, &o, until, &err);
	if (rc < 0) {
		hlock_release(&cs->gl->lock);
		raise_rc(st, rc, err, ON_RECV, NULL);
		return NULL;
	}
	SpanObject *v = (SpanObject *)st->ReadViewType->tp_alloc(st->ReadViewType, 0);
	if (!v) {
		rmpsc_advance(cs->ch, 0);
		hlock_release(&cs->gl->lock);
		return NULL;
	}
	/* The view keeps the lock until consumed, cancelled or freed. */
	v->owner = Py_NewRef(self);
	v->ptr = (char *)o.ptr;
	v->k = o.got;
	v->nbytes = (Py_ssize_t)o.got * cs->cfg.record_size;
	v->slot = o.slot;
	uint32_t read_slot;
	rmpsc_read_position(cs->ch, &read_slot, &v->position); /* a span is open: cannot fail */
	v->deliveries = rmpsc_deliveries(cs->ch);
	v->gen = st->fork_gen;
	cs->deliveries = v->deliveries;
	return (PyObject *)v;
}

struct op_read_bytes {
	rmpsc_channel *ch;
	const void *bytes;
	int64_t len;
};

static int op_read_bytes(void *ctx, int64_t t)
{
	struct op_read_bytes *o = ctx;
	int64_t n = rmpsc_read_bytes(o->ch, t, &o->bytes);
	if (n < 0)
		return (int)n;
	o->len = n;
	return 0;
}

const char cs_recv_bytes_doc[] = PyDoc_STR(
"recv_bytes($self, /, timeout=None)\n--\n\n\
Receive one variable-length message sent with Producer.send_bytes (copied out of\n\
its slab, which then returns to the pool). Waits as recv.");
PyObject *cs_recv_bytes(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	consumer_side *cs = CS(self);
	PyObject *a[1];
	int64_t t;
	if (fast_args("recv_bytes", args, nargs, kwnames, kw_timeout, 0, 1, a) < 0 || parse_timeout(a[0], &t) < 0)
		return NULL;
	if (!cs->cfg.slab_count) {
		PyErr_SetString(PyExc_ValueError, "recv_bytes: this channel has no slab pool (created with slabs=0)");
		return NULL;
	}
	int64_t until = deadline_at(t);
	if (consumer_lock(cs, until) < 0)
		return NULL;
	struct op_read_bytes o = { cs->ch, NULL, 0 };
	int err;
	int rc = run_op(op_read_bytes, &o, until, &err);
	PyObject *result = NULL;
	if (rc >= 0) {
		uint32_t deliveries = rmpsc_deliveries(cs->ch);
		/* Not advanced if this fails: the message is read again by the next call. */
		result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)o.len);
		if (result) {
			/* The new bytes object is ours alone until returned (see recv_record). */
			char *dst = PyBytes_AS_STRING(result);
			if (o.len > BIG_COPY) {
				Py_BEGIN_ALLOW_THREADS
				memcpy(dst, o.bytes, (size_t)o.len);
				Py_END_ALLOW_THREADS
			} else {
				memcpy(dst, o.bytes, (size_t)o.len);
			}
			rc = rmpsc_advance_bytes(cs->ch);
			if (rc < 0)
				Py_CLEAR(result);
			else
				cs->deliveries = deliveries;
		}
	}
	hlock_release(&cs->gl->lock);
	if (rc < 0)
		raise_rc(cs->st, rc, err, ON_RECV, NULL);
	return result;
}

/* Messages (Producer.send_message): a span of records read in place, each one message. */
struct op_read_span {
	rmpsc_channel *ch;
	size_t max;
	const void *ptr;
};

static int op_read_span(void *ctx, int64_t t)
{
	struct op_read_span *o = ctx;
	return rmpsc_read(o->ch, o->max, t, &o->ptr, NULL);
}

/* What recv_messages takes and how: its bounds, and the bytes taken so far. */
struct take_bounds {
	long long max_bytes;     /* in all, past the call's first message */
	long long writable_from; /* messages this long come as bytearray (or MessageBuffer) */
	long long bytes;
	Py_ssize_t max_messages;
	int recycled; /* _recv_objects: messages of writable_from bytes or more come as MessageBuffer */
};

/* The bytes of a message take_span made: bytes, bytearray or MessageBuffer. */
static char *message_bytes(PyObject *m)
{
	if (PyBytes_CheckExact(m))
		return PyBytes_AS_STRING(m);
	if (PyByteArray_CheckExact(m))
		return PyByteArray_AS_STRING(m);
	return block_data(m);
}

static Py_ssize_t message_len(PyObject *m)
{
	if (PyBytes_CheckExact(m) || PyByteArray_CheckExact(m))
		return Py_SIZE(m);
	return PyObject_Length(m);
}

/*
 * Copy out the messages of the span the last rmpsc_read returned (n records),
 * appending them to `list`, and advance past exactly those. Returns 1 when the
 * call may read on (the span was taken whole), 0 when a bound or a record that
 * is not a message stopped it (that record is read again, and reported, by the
 * next call), or < 0 with nothing of the span appended: RC_PYERR (a Python error
 * set) or the core's code. A span's first record that is not a message is
 * consumed when `report` (the call's first span): reported, so the next call goes on.
 */
static int take_span(consumer_side *cs, int n, PyObject *list, struct take_bounds *tb, int report, int *err)
{
	Py_ssize_t had = PyList_GET_SIZE(list);
	int i, rc = 1;
	for (i = 0; i < n; i++) {
		struct rmpsc_message m;
		int r = rmpsc_message_at(cs->ch, (size_t)i, &m);
		if (r < 0) {
			*err = errno;
			if (i == 0 && report) {
				rmpsc_advance_messages(cs->ch, 1);
				return r;
			}
			rc = 0;
			break;
		}
		if (PyList_GET_SIZE(list) > 0 &&
		    (PyList_GET_SIZE(list) >= tb->max_messages || tb->bytes >= tb->max_bytes ||
		     m.len > (uint64_t)(tb->max_bytes - tb->bytes))) {
			rc = 0;
			break;
		}
		int large = (long long)m.len >= tb->writable_from;
		PyObject *b = !large	     ? PyBytes_FromStringAndSize(NULL, (Py_ssize_t)m.len)
			      : tb->recycled ? block_new(cs->st, (Py_ssize_t)m.len)
					     : PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)m.len);
		r = RC_PYERR;
		if (b) {
			/* The new object is ours alone until returned (see recv_record). */
			char *dst = message_bytes(b);
			if (m.len > BIG_COPY) {
				Py_BEGIN_ALLOW_THREADS
				r = rmpsc_message_copy(cs->ch, &m, dst);
				Py_END_ALLOW_THREADS
			} else {
				r = rmpsc_message_copy(cs->ch, &m, dst);
			}
			if (r == RMPSC_OK)
				r = PyList_Append(list, b) < 0 ? RC_PYERR : RMPSC_OK;
			Py_DECREF(b);
		}
		if (r < 0) { /* nothing of this span is returned, nothing of it consumed */
			PyList_SetSlice(list, had, PY_SSIZE_T_MAX, NULL);
			rmpsc_advance_messages(cs->ch, 0);
			return r;
		}
		tb->bytes += (long long)m.len;
	}
	int arc = rmpsc_advance_messages(cs->ch, (size_t)i);
	if (arc < 0) {
		PyList_SetSlice(list, had, PY_SSIZE_T_MAX, NULL);
		return arc;
	}
	return rc;
}

static const char *const kw_recv_messages[] = { "max_messages", "timeout", "max_bytes", "bytearray_from" };

const char cs_recv_messages_doc[] = PyDoc_STR(
"recv_messages($self, /, max_messages=None, timeout=None, max_bytes=None, bytearray_from=None)\n--\n\n\
Wait (as recv) for at least one message sent with Producer.send_message, then\n\
return a list of every message available, up to max_messages and to max_bytes in\n\
all past the first (a message is never split), in order per producer. Each is\n\
copied out as bytes, or as a bytearray when it is at least bytearray_from bytes\n\
long (writable, e.g. for NumPy buffers unpickled from it).");
/* recv_messages' work once its arguments are parsed: the list of messages, or NULL with an exception. */
static PyObject *recv_message_list(consumer_side *cs, long long max, int64_t t, long long max_bytes,
				   long long writable_from, int recycled)
{
	PyObject *list = PyList_New(0);
	if (!list)
		return NULL;
	int64_t until = deadline_at(t);
	if (consumer_lock(cs, until) < 0) {
		Py_DECREF(list);
		return NULL;
	}
	struct take_bounds tb = { max_bytes, writable_from, 0, (Py_ssize_t)max, recycled };
	struct op_read_span o = { cs->ch, (size_t)max, NULL };
	int err = 0;
	/* Wait for the first span; then take what the other rings hold, without waiting. */
	int rc = run_op(op_read_span, &o, until, &err);
	uint32_t deliveries = 0;
	for (int first = 1; rc > 0; first = 0) {
		uint32_t d = rmpsc_deliveries(cs->ch);
		rc = take_span(cs, rc, list, &tb, first, &err);
		if (rc < 0 && !first) { /* keep what earlier spans took: the next call meets it again */
			PyErr_Clear();
			rc = 0;
		}
		if (rc < 0)
			break;
		if (d > deliveries)
			deliveries = d;
		if (rc == 0 || PyList_GET_SIZE(list) >= tb.max_messages)
			break;
		o.max = (size_t)(tb.max_messages - PyList_GET_SIZE(list));
		rc = rmpsc_read(cs->ch, o.max, 0, &o.ptr, NULL);
		if (rc < 0)
			rc = 0; /* empty now (or an error the next call reports): return what we have */
	}
	if (rc >= 0)
		cs->deliveries = deliveries;
	hlock_release(&cs->gl->lock);
	if (rc < 0) {
		Py_DECREF(list);
		raise_rc(cs->st, rc, err, ON_RECV, NULL);
		return NULL;
	}
	return list;
}

/* The four arguments recv_messages and _recv_objects share, a[0..3]; a holds nkw. */
static int parse_recv_message_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
				   const char *const *kw, int nkw, PyObject **a, long long *max, int64_t *t,
				   long long *max_bytes, long long *writable_from)
{
	if (fast_args(fn, args, nargs, kwnames, kw, 0, nkw, a) < 0 ||
	    parse_count(a[0], "max_messages", INT32_MAX, INT32_MAX, max) < 0 || parse_timeout(a[1], t) < 0 ||
	    parse_count(a[2], "max_bytes", LLONG_MAX, LLONG_MAX, max_bytes) < 0 ||
	    parse_count(a[3], "bytearray_from", LLONG_MAX, LLONG_MAX, writable_from) < 0)
		return -1;
	return 0;
}

PyObject *cs_recv_messages(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	consumer_side *cs = CS(self);
	PyObject *a[4];
	int64_t t;
	long long max, max_bytes, writable_from;
	if (parse_recv_message_args("recv_messages", args, nargs, kwnames, kw_recv_messages, 4, a, &max, &t, &max_bytes,
				    &writable_from) < 0)
		return NULL;
	return recv_message_list(cs, max, t, max_bytes, writable_from, 0);
}

static const char *const kw_recv_objects[] = { "max_messages", "timeout", "max_bytes", "bytearray_from", "other" };

const char cs_recv_objects_doc[] = PyDoc_STR(
"_recv_objects($self, /, max_messages=None, timeout=None, max_bytes=None, bytearray_from=None, other=None)\n--\n\n\
recv_messages, unpickled: ringmpsc.Queue's receive when its loads is the default.\n\
Each message that is a pickle (its first byte 0x80) becomes pickle.loads(message);\n\
any other is replaced by other(message) (None: pickle.loads too). The messages are\n\
consumed before they are unpickled (outside the consumer's lock, so loads may call\n\
anything): an error raised by one is raised, and the call's messages are lost.");
PyObject *cs_recv_objects(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	consumer_side *cs = CS(self);
	modstate *st = cs->st;
	PyObject *a[5];
	int64_t t;
	long long max, max_bytes, writable_from;
	if (parse_recv_message_args("_recv_objects", args, nargs, kwnames, kw_recv_objects, 5, a, &max, &t, &max_bytes,
				    &writable_from) < 0)
		return NULL;
	PyObject *other = a[4] && a[4] != Py_None ? a[4] : NULL;
	if (other && !PyCallable_Check(other)) {
		PyErr_Format(PyExc_TypeError, "other must be callable or None, not '%.100s'", Py_TYPE(other)->tp_name);
		return NULL;
	}
	if (!st->pickle_loads && pickle_import(st) < 0)
		return NULL;
	PyObject *list = recv_message_list(cs, max, t, max_bytes, writable_from, 1);
	if (!list)
		return NULL;
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
		PyObject *m = PyList_GET_ITEM(list, i);
		const char *p = message_bytes(m);
		Py_ssize_t n = message_len(m);
		int pickled = n > 0 && (unsigned char)p[0] == PICKLE_PROTO;
		PyObject *obj = pickled ? fast_loads(p, n) : NULL;
		if (!obj) {
			/* loads and other get a bytes-like object they can index and slice:
			 * a MessageBuffer goes as a memoryview of it. */
			PyObject *arg = PyBytes_CheckExact(m) ? Py_NewRef(m) : PyMemoryView_FromObject(m);
			if (arg) {
				obj = PyObject_CallOneArg(other && !pickled ? other : st->pickle_loads, arg);
				Py_DECREF(arg);
			}
		}
		if (!obj) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SET_ITEM(list, i, obj); /* steals obj */
		Py_DECREF(m);
	}
	return list;
}

Py_ssize_t cs_len(PyObject *self)
{
	consumer_side *cs = CS(self);
	if (!cs->ch)
		return closed_consumer();
	uint64_t n = rmpsc_pending(cs->ch);
	return n > (uint64_t)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)n;
}

PyObject *cs_get_last_deliveries(PyObject *self, void *c)
{
	return PyLong_FromUnsignedLong(CS(self)->deliveries);
}


/* ------------------------------------------------------------------------- */
/* Readiness: the descriptor an event loop waits on, and coalesced wake-ups.
 * Short calls: each takes the membership lock as every consumer call does (a call
 * another thread is making on this group's consumer side is waited for, the GIL
 * released; see ready_lock for this thread's own), and only ready_fd, which may
 * join the group, releases the GIL. The coroutines (ringmpsc._aio) make the _try
 * calls instead, which never wait for another thread: an event loop's thread must
 * not (it would stop every task of the loop). */

#define LOCK_BUSY 2 /* ready_lock: another thread holds the lock (a deadline of 0 only) */

/*
 * The membership lock for a readiness call, by the deadline `until` (FOREVER, or 0
 * for the _try calls). A thread that holds it already, through an open ReadView,
 * may make these calls (it is the one thread the core allows): an event loop's
 * tasks share the thread, and one task's view must not make another task's wait
 * fail. 1: taken (release it after); 0: held by this thread already; LOCK_BUSY:
 * another thread holds it; -1 with an exception.
 */
static int ready_lock(consumer_side *cs, int64_t until)
{
	if (unlikely(!cs->ch))
		return closed_consumer();
	hlock *l = &cs->gl->lock;
	if (l->owner == PyThread_get_thread_ident() && l->gen == cs->st->fork_gen)
		return 0;
	int r = hlock_acquire(l, cs->st, until, CONSUMER_BUSY);
	if (r == 1)
		return LOCK_BUSY;
	if (r < 0)
		return -1;
	if (unlikely(!cs->ch)) { /* closed by another thread meanwhile */
		hlock_release(l);
		return closed_consumer();
	}
	return 1;
}

/* The arm's answer in seconds: 0.0 ready now, inf no limit, else the linger. */
PyObject *arm_result(int rc, int64_t wait_ns)
{
	if (rc == 1)
		return PyFloat_FromDouble(0.0);
	if (wait_ns < 0)
		return PyFloat_FromDouble(Py_HUGE_VAL);
	return PyFloat_FromDouble((double)(wait_ns > 0 ? wait_ns : 1) / 1e9); /* armed is never 0.0 */
}

const char ready_fd_try_doc[] = PyDoc_STR(
"_ready_fd_try($self, /)\n--\n\n\
ready_fd() for a coroutine: None instead of waiting while another thread holds\n\
the lock of this consumer side (or producer).");
const char ready_fd_cached_doc[] = PyDoc_STR(
"_ready_fd_cached($self, /)\n--\n\n\
The readiness fd ready_fd() (or _ready_fd_try) last returned for this membership\n\
(or producer) in this process, without the lock; None when there is none. The\n\
membership may have changed since (another thread may have left): good for\n\
finding a wait on it to follow, not for waiting on.");
const char ready_arm_try_doc[] = PyDoc_STR(
"_ready_arm_try($self, /)\n--\n\n\
ready_arm() for a coroutine: None (nothing armed) instead of waiting while\n\
another thread holds the lock.");
const char ready_disarm_try_doc[] = PyDoc_STR(
"_ready_disarm_try($self, fd, /)\n--\n\n\
ready_disarm() for a coroutine whose arm was for the FIFO fd is open on: True\n\
when withdrawn, or nothing is left to withdraw (the handle is closed, or that\n\
FIFO is not the readiness fd any more: the membership it was armed for ended,\n\
and the announcement with it); False when another thread holds the lock. An\n\
announcement left costs one spurious wake-up at most (the next arm drains it).");

static PyObject *ready_fd(PyObject *self, int64_t until)
{
	consumer_side *cs = CS(self);
	int taken = ready_lock(cs, until);
	if (taken < 0)
		return NULL;
	if (taken == LOCK_BUSY)
		Py_RETURN_NONE;
	int fd, err;
	/* Joining may recover dead members, or wait for the group table's lock. */
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	fd = rmpsc_ready_fd(cs->ch);
	err = errno;
	Py_END_ALLOW_THREADS
	if (fd >= 0) {
		cs->gl->ready_fd = fd;
		cs->gl->ready_gen = cs->st->fork_gen;
	}
	if (taken)
		hlock_release(&cs->gl->lock);
	if (fd < 0) {
		raise_rc(cs->st, fd, err, ON_RECV, NULL);
		return NULL;
	}
	return PyLong_FromLong(fd);
}

const char cs_ready_fd_doc[] = PyDoc_STR(
"ready_fd($self, /)\n--\n\n\
A file descriptor that becomes readable when this group may have records for\n\
this member, or the channel closed: for select, poll, epoll or an event loop's\n\
add_reader (recv_async and the other coroutines use it). Owned by the\n\
membership: do not close it; it is closed when the membership ends (leave(),\n\
close(), the last object on it freed), and its number may then be reused: take\n\
it out of a selector first, and call ready_fd() again after. Joins the group,\n\
as every consumer call does. Wait on it only as ready_arm() says. Not fileno(),\n\
which is the region's mapping.\n\
Like every consumer call, it waits for a call another thread is making on this\n\
group's consumer side (a blocking receive, an open ReadView) to end.");
PyObject *cs_ready_fd(PyObject *self, PyObject *unused)
{
	return ready_fd(self, FOREVER);
}

PyObject *cs_ready_fd_try(PyObject *self, PyObject *unused)
{
	return ready_fd(self, 0);
}

PyObject *cs_ready_fd_cached(PyObject *self, PyObject *unused)
{
	consumer_side *cs = CS(self);
	if (!cs->ch) {
		closed_consumer();
		return NULL;
	}
	const glock *gl = cs->gl;
	if (gl->ready_fd < 0 || gl->ready_gen != cs->st->fork_gen)
		Py_RETURN_NONE;
	return PyLong_FromLong(gl->ready_fd);
}

static PyObject *ready_arm(PyObject *self, int64_t until)
{
	consumer_side *cs = CS(self);
	int taken = ready_lock(cs, until);
	if (taken < 0)
		return NULL;
	if (taken == LOCK_BUSY)
		Py_RETURN_NONE;
	int64_t wait_ns = -1;
	errno = 0;
	int rc = rmpsc_ready_arm(cs->ch, &wait_ns);
	int err = errno;
	if (taken)
		hlock_release(&cs->gl->lock);
	if (rc < 0) {
		raise_rc(cs->st, rc, err, ON_RECV, NULL);
		return NULL;
	}
	return arm_result(rc, wait_ns);
}

const char cs_ready_arm_doc[] = PyDoc_STR(
"ready_arm($self, /)\n--\n\n\
Announce a wait on ready_fd(), after a receive with timeout=0 raised Empty.\n\
Returns 0.0: records (or the close) are ready now, do not wait, receive again;\n\
t > 0: armed, wait until ready_fd() is readable or t seconds passed (the\n\
coalescing linger, see set_coalesce; a second at most). Then receive with\n\
timeout=0 until Empty, and arm again:\n\
\n\
    fd = ch.ready_fd()\n\
    while True:\n\
        try:\n\
            rec = ch.recv(timeout=0)\n\
        except ringmpsc.Empty:\n\
            t = ch.ready_arm()\n\
            if t:\n\
                select.select([fd], [], [], t)\n\
            continue\n\
        ...\n\
\n\
Each arm drains the descriptor, so level- and edge-triggered waits both work.\n\
ready_disarm() withdraws the announcement of a wait given up. Waits for another\n\
thread's call on this group's consumer side, as ready_fd does.");
PyObject *cs_ready_arm(PyObject *self, PyObject *unused)
{
	return ready_arm(self, FOREVER);
}

PyObject *cs_ready_arm_try(PyObject *self, PyObject *unused)
{
	return ready_arm(self, 0);
}

const char cs_ready_disarm_doc[] = PyDoc_STR(
"ready_disarm($self, /)\n--\n\n\
Withdraw the announcement of ready_arm() (a wait given up, cancelled or timed\n\
out), so that producers stop waking this member for it. Safe when not armed.");
PyObject *cs_ready_disarm(PyObject *self, PyObject *unused)
{
	consumer_side *cs = CS(self);
	int taken = ready_lock(cs, FOREVER);
	if (taken < 0)
		return NULL;
	rmpsc_ready_disarm(cs->ch);
	if (taken)
		hlock_release(&cs->gl->lock);
	Py_RETURN_NONE;
}

/* Is `a` open on the same file as `b`? */
int same_file(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

PyObject *cs_ready_disarm_try(PyObject *self, PyObject *arg)
{
	consumer_side *cs = CS(self);
	long long fd;
	if (parse_int(arg, "fd", 0, INT32_MAX, &fd) < 0)
		return NULL;
	if (!cs->ch)
		Py_RETURN_TRUE; /* closed: nothing to withdraw it with (a spurious wake-up at most) */
	int taken = ready_lock(cs, 0);
	if (taken < 0)
		return NULL;
	if (taken == LOCK_BUSY)
		Py_RETURN_FALSE;
	/* The membership armed for that FIFO may have ended since (leave, close, lost):
	 * the announcement went with it, and the place's current one is another wait's. */
	const glock *gl = cs->gl;
	if (gl->ready_fd >= 0 && gl->ready_gen == cs->st->fork_gen && same_file(gl->ready_fd, (int)fd))
		rmpsc_ready_disarm(cs->ch);
	if (taken)
		hlock_release(&cs->gl->lock);
	Py_RETURN_TRUE;
}

static const char *const kw_coalesce[] = { "min_records", "max_delay" };

const char cs_set_coalesce_doc[] = PyDoc_STR(
"set_coalesce($self, /, min_records, max_delay)\n--\n\n\
Coalesce the wake-ups of this handle's waits (recv and the other receives,\n\
their coroutines, ready_arm): a wait that finds nothing lingers until some\n\
producer's ring holds min_records records for this group, or max_delay seconds\n\
(0..1) passed, then takes what is there; so under a steady stream producers pay\n\
one wake-up per min_records records, and a record waits at most max_delay longer\n\
than without. min_records=1 or max_delay=0 turns it off (a wake-up for every\n\
first record). min_records is capped at half the capacity. ValueError naming\n\
the argument for values out of range.");
PyObject *cs_set_coalesce(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	consumer_side *cs = CS(self);
	PyObject *a[2];
	long long min;
	int64_t delay;
	if (fast_args("set_coalesce", args, nargs, kwnames, kw_coalesce, 2, 2, a) < 0 ||
	    parse_int(a[0], "min_records", 1, UINT32_MAX, &min) < 0 ||
	    parse_seconds(a[1], "max_delay", RMPSC_COALESCE_MAX_DELAY_NS / 1e9, &delay) < 0)
		return NULL;
	int taken = ready_lock(cs, FOREVER);
	if (taken < 0)
		return NULL;
	int rc = rmpsc_consumer_coalesce(cs->ch, (uint32_t)min, delay);
	if (taken)
		hlock_release(&cs->gl->lock);
	if (rc < 0) {
		raise_rc(cs->st, rc, 0, ON_OTHER, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

PyObject *cs_get_coalesce(PyObject *self, void *c)
{
	consumer_side *cs = CS(self);
	if (!cs->ch) {
		closed_consumer();
		return NULL;
	}
	uint32_t min;
	int64_t delay;
	rmpsc_consumer_coalescing(cs->ch, &min, &delay);
	return Py_BuildValue("(Id)", min, (double)delay / 1e9);
}


/* ------------------------------------------------------------------------- */
/* Consumer: a member of a named group. */

PyObject *consumer_new(ChannelObject *chan, PyObject *o_group, unsigned flags)
{
	modstate *st = chan->cs.st;
	const char *group = RMPSC_DEFAULT_GROUP;
	if (o_group && o_group != Py_None) {
		if (!(group = parse_name(o_group, "group")))
			return NULL;
		if (!*group) {
			PyErr_SetString(PyExc_ValueError, "group must not be empty (None is the default group)");
			return NULL;
		}
	}
	ConsumerObject *self = (ConsumerObject *)st->ConsumerType->tp_alloc(st->ConsumerType, 0);
	if (!self)
		return NULL;
	self->cs.st = st;
	self->cs.cfg = chan->cs.cfg;
	self->chan = (ChannelObject *)Py_NewRef(chan);
	self->flags = flags;
	if (!(self->group = PyUnicode_FromString(group)) ||
	    !(self->cs.gl = glock_get(st, chan->dev, chan->ino, group))) {
		Py_DECREF(self);
		return NULL;
	}
	/* Joining may share the membership of a Channel or another Consumer of this
	 * group on this region in this process: one thread at a time, as for any
	 * consumer call. */
	if (hlock_acquire(&self->cs.gl->lock, st, FOREVER, CONSUMER_BUSY) != 0) {
		Py_DECREF(self);
		return NULL;
	}
	rmpsc_channel *h = NULL;
	int rc, err;
	/* Joining may recover dead members, or wait for the group table's lock. */
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(chan->cs.ch), OPEN_FLAGS);
	if (rc == RMPSC_OK)
		rc = rmpsc_consumer_join(h, group, flags);
	err = errno;
	Py_END_ALLOW_THREADS
	hlock_release(&self->cs.gl->lock);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_OTHER, NULL); /* the core's message first: it is this thread's */
		if (h)
			rmpsc_channel_release(h);
		Py_DECREF(self);
		return NULL;
	}
	self->cs.ch = h;
	return (PyObject *)self;
}

static void consumer_dealloc(ConsumerObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->cs.ch) {
		rmpsc_channel_release(self->cs.ch); /* leaves the group */
		self->cs.gl->ready_fd = -1;         /* its FIFO may have gone with it */
	}
	glock_put(self->cs.st, self->cs.gl);
	Py_XDECREF(self->group);
	Py_XDECREF(self->chan);
	tp->tp_free(self);
	Py_DECREF(tp);
}

PyDoc_STRVAR(consumer_close_doc,
"close($self, /)\n--\n\n\
Leave the group and release this Consumer's handle: records it took and did not\n\
consume go to another member of the group (not counted as delivered again); the\n\
last member of an ephemeral group removes it. Waits for a call another thread is\n\
making on this group's consumer side to finish. Does not close the channel.\n\
Coroutines waiting on this Consumer (recv_async, async for, ...), in any event\n\
loop, raise ValueError at once. Idempotent.");
static PyObject *consumer_close(ConsumerObject *self, PyObject *unused)
{
	consumer_side *cs = &self->cs;
	if (!cs->ch)
		Py_RETURN_NONE;
	if (hlock_acquire(&cs->gl->lock, cs->st, FOREVER, CONSUMER_BUSY) != 0)
		return NULL;
	rmpsc_channel *h = cs->ch;
	cs->ch = NULL;
	if (h) {
		Py_BEGIN_ALLOW_THREADS
		rmpsc_consumer_leave(h);
		rmpsc_channel_release(h);
		Py_END_ALLOW_THREADS
		cs->gl->ready_fd = -1; /* the FIFO may have gone with the membership */
	}
	hlock_release(&cs->gl->lock);
	if (h)
		aio_changed((PyObject *)self); /* its coroutines find it closed */
	Py_RETURN_NONE;
}

PyDoc_STRVAR(consumer_exit_doc, "__exit__($self, /, *exc_info)\n--\n\nLeave the group (close()).");
static PyObject *consumer_exit(ConsumerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	PyObject *r = consumer_close(self, NULL);
	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *consumer_get_group(ConsumerObject *self, void *c)
{
	return Py_NewRef(self->group);
}
static PyObject *consumer_get_channel(ConsumerObject *self, void *c)
{
	return Py_NewRef(self->chan);
}
static PyObject *consumer_get_closed(ConsumerObject *self, void *c)
{
	return PyBool_FromLong(self->cs.ch == NULL);
}
static PyObject *consumer_get_ephemeral(ConsumerObject *self, void *c)
{
	return PyBool_FromLong((self->flags & RMPSC_GROUP_EPHEMERAL) != 0);
}
static PyObject *consumer_get_at_most_once(ConsumerObject *self, void *c)
{
	return PyBool_FromLong((self->flags & RMPSC_GROUP_AT_MOST_ONCE) != 0);
}

static PyObject *consumer_repr(ConsumerObject *self)
{
	return PyUnicode_FromFormat("<ringmpsc.Consumer group=%R%s%s%s>", self->group,
				    self->flags & RMPSC_GROUP_EPHEMERAL ? " ephemeral" : "",
				    self->flags & RMPSC_GROUP_AT_MOST_ONCE ? " at_most_once" : "",
				    self->cs.ch ? "" : " closed");
}

/* A Consumer is always true, even when empty (as Channel). */
static int consumer_bool(PyObject *self)
{
	return 1;
}

PyDoc_STRVAR(consumer_doc,
"A member of a consumer group of a Channel, made by Channel.consumer(group).\n\
\n\
Every group receives every record committed after the group was created\n\
(fan-out); inside a group each record goes to one member (work sharing between\n\
processes). A Consumer has the consumer methods of Channel (recv, recv_nowait,\n\
recv_many, recv_into, read, recv_bytes, iteration, len; their coroutines\n\
recv_async, recv_many_async, read_async, recv_bytes_async and async iteration;\n\
ready_fd, ready_arm, ready_disarm, set_coalesce) for its group, and its own\n\
handle on the channel's memory (and its own coalescing settings). close() (or leaving a with block) leaves the\n\
group; it does not close the channel. last_deliveries is 1 when the records the\n\
last receive returned were delivered for the first time, more when a member of\n\
the group died holding them. In one process, the Consumers of one group on one\n\
channel (made from any Channel object on it) share one membership, as the core's\n\
handles do, and take turns with each other (and, for the default group, with\n\
the Channel objects' own receives).\n\
Consumers do not pickle; one inherited through fork joins its group anew in the\n\
child when used there.");

static PyMethodDef consumer_methods[] = {
	CONSUMER_SIDE_METHODS,
	{ "close", (PyCFunction)consumer_close, METH_NOARGS, consumer_close_doc },
	{ "__enter__", (PyCFunction)self_enter, METH_NOARGS, enter_doc },
	{ "__exit__", (PyCFunction)(void (*)(void))consumer_exit, METH_FASTCALL, consumer_exit_doc },
	{ "__reduce__", (PyCFunction)not_picklable, METH_NOARGS, NULL },
	{ NULL },
};

static PyGetSetDef consumer_getset[] = {
	{ "group", (getter)consumer_get_group, NULL, "The name of the group this Consumer is a member of.", NULL },
	{ "channel", (getter)consumer_get_channel, NULL, "The Channel it was made from.", NULL },
	{ "closed", (getter)consumer_get_closed, NULL, "True after close().", NULL },
	{ "ephemeral", (getter)consumer_get_ephemeral, NULL, "The group goes away with its last member.", NULL },
	{ "at_most_once", (getter)consumer_get_at_most_once, NULL,
	  "Records a dead member held are dropped, not delivered again.", NULL },
	{ "last_deliveries", (getter)cs_get_last_deliveries, NULL, LAST_DELIVERIES_DOC, NULL },
	{ "coalesce", (getter)cs_get_coalesce, NULL, COALESCE_DOC, NULL },
	{ NULL },
};

static PyMemberDef consumer_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(ConsumerObject, weakrefs), READONLY },
	{ NULL },
};

static PyType_Slot consumer_slots[] = {
	{ Py_tp_doc, (void *)consumer_doc },
	{ Py_tp_dealloc, consumer_dealloc },
	{ Py_tp_repr, consumer_repr },
	{ Py_tp_methods, consumer_methods },
	{ Py_tp_getset, consumer_getset },
	{ Py_tp_members, consumer_members },
	{ Py_tp_iter, PyObject_SelfIter },
	{ Py_tp_iternext, cs_iternext },
	{ Py_am_aiter, PyObject_SelfIter },
	{ Py_am_anext, cs_anext },
	{ Py_sq_length, cs_len },
	{ Py_mp_length, cs_len },
	{ Py_nb_bool, consumer_bool },
	{ 0, NULL },
};

PyType_Spec consumer_spec = {
	.name = "ringmpsc.Consumer",
	.basicsize = sizeof(ConsumerObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = consumer_slots,
};
