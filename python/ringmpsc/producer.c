/* The Producer type: one ring of a Channel, bound to the process that registered it. */

#include <errno.h>

#include "args.h"
#include "blocking.h"

static const char PRODUCER_BUSY[] =
	"this thread holds the producer (an open reservation): commit or abort it first";
static const char *const kw_data_timeout[] = { "data", "timeout" };
static const char *const kw_n_timeout[] = { "n", "timeout" };

static void producer_dealloc(ProducerObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->p)
		rmpsc_producer_close(self->p); /* a handle inherited by fork is only freed */
	Py_XDECREF(self->chan);
	tp->tp_free(self);
	Py_DECREF(tp);
}

/* Checks before using the handle: closed, inherited through fork. */
static int producer_usable(ProducerObject *self, modstate *st)
{
	if (self->gen != st->fork_gen) {
		PyErr_Format(st->Error,
			     "this Producer (slot %u) was registered by process %ld and inherited through fork; "
			     "register a new one in this process with channel.producer()",
			     self->slot, self->pid);
		return -1;
	}
	if (!self->p) {
		PyErr_SetString(PyExc_ValueError, "Producer is closed");
		return -1;
	}
	return 0;
}

/* Check and lock by the deadline. 0 ok; -1 with an exception (Full on timeout). */
static int producer_lock(ProducerObject *self, modstate *st, int64_t until)
{
	if (producer_usable(self, st) < 0)
		return -1;
	int r = hlock_acquire(&self->lock, st, until, PRODUCER_BUSY);
	if (r == 1)
		PyErr_SetString(st->Full, "producer busy in another thread");
	if (r != 0)
		return -1;
	if (!self->p) { /* closed by another thread meanwhile */
		hlock_release(&self->lock);
		PyErr_SetString(PyExc_ValueError, "Producer is closed");
		return -1;
	}
	return 0;
}

struct op_send {
	rmpsc_producer *p;
	const void *data;
	size_t len;
};

static int op_send(void *ctx, int64_t t)
{
	struct op_send *o = ctx;
	return rmpsc_producer_send(o->p, o->data, o->len, t);
}

static PyObject *do_send(ProducerObject *self, PyObject *data, int64_t timeout)
{
	modstate *st = STATE(self);
	Py_buffer b;
	if (get_data(data, &b, PyBUF_SIMPLE, "data") < 0)
		return NULL;
	uint32_t rs = self->chan->cs.cfg.record_size;
	if ((size_t)b.len > rs) {
		PyErr_Format(PyExc_ValueError, "data is %zd bytes, longer than record_size %u", b.len, rs);
		data_release(&b);
		return NULL;
	}
	int64_t until = deadline_at(timeout);
	if (producer_lock(self, st, until) < 0) {
		data_release(&b);
		return NULL;
	}
	struct op_send o = { self->p, b.buf, (size_t)b.len };
	int err;
	int rc = run_op(op_send, &o, until, &err);
	hlock_release(&self->lock);
	data_release(&b);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_SEND, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

PyDoc_STRVAR(producer_send_doc,
"send($self, /, data, timeout=None)\n--\n\n\
Send one record: a bytes-like object of at most record_size bytes (the rest is\n\
zero-filled). Blocks while the ring is full, up to timeout seconds (None: forever,\n\
0: never), then raises Full. Raises Closed once the channel is closed.");
static PyObject *producer_send(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[2];
	int64_t t;
	if (fast_args("send", args, nargs, kwnames, kw_data_timeout, 1, 2, a) < 0 || parse_timeout(a[1], &t) < 0)
		return NULL;
	return do_send(self, a[0], t);
}

PyDoc_STRVAR(producer_send_nowait_doc,
"send_nowait($self, data, /)\n--\n\nsend(data, timeout=0): raise Full at once when the ring is full.");
static PyObject *producer_send_nowait(ProducerObject *self, PyObject *data)
{
	return do_send(self, data, 0);
}

struct op_many {
	rmpsc_producer *p;
	const char *data;
	size_t count, sent;
	uint32_t rs;
};

static int op_send_many(void *ctx, int64_t t)
{
	struct op_many *o = ctx;
	int n = rmpsc_producer_send_many(o->p, o->data + o->sent * o->rs, o->count - o->sent, t);
	if (n < 0)
		return n;
	o->sent += (size_t)n;
	return o->sent < o->count ? OP_AGAIN : 0;
}

PyDoc_STRVAR(producer_send_many_doc,
"send_many($self, /, data, timeout=None)\n--\n\n\
Send len(data) // record_size records from one bytes-like object (its length must\n\
be a multiple of record_size). Returns the number sent: all of them, or fewer only\n\
when the timeout expired or the channel closed part-way. Raises Full / Closed when\n\
none could be sent.");
static PyObject *producer_send_many(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
				    PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *a[2];
	int64_t t;
	if (fast_args("send_many", args, nargs, kwnames, kw_data_timeout, 1, 2, a) < 0 ||
	    parse_timeout(a[1], &t) < 0)
		return NULL;
	Py_buffer b;
	if (get_data(a[0], &b, PyBUF_SIMPLE, "data") < 0)
		return NULL;
	uint32_t rs = self->chan->cs.cfg.record_size;
	if ((size_t)b.len % rs) {
		PyErr_Format(PyExc_ValueError, "data is %zd bytes, not a multiple of record_size %u", b.len, rs);
		data_release(&b);
		return NULL;
	}
	struct op_many o = { NULL, b.buf, (size_t)b.len / rs, 0, rs };
	int64_t until = deadline_at(t);
	if (producer_lock(self, st, until) < 0) {
		data_release(&b);
		return NULL;
	}
	o.p = self->p;
	int rc = 0, err = 0;
	if (o.count)
		rc = run_op(op_send_many, &o, until, &err);
	hlock_release(&self->lock);
	data_release(&b);
	if (rc == RC_PYERR || (rc < 0 && o.sent == 0)) {
		raise_rc(st, rc, err, ON_SEND, NULL);
		return NULL;
	}
	/* Partial: the deadline passed or the channel closed mid-way (the next call says so). */
	return PyLong_FromSize_t(o.sent);
}

struct op_reserve {
	rmpsc_producer *p;
	size_t want;
	void *ptr;
	int got;
};

static int op_reserve(void *ctx, int64_t t)
{
	struct op_reserve *o = ctx;
	int n = rmpsc_producer_reserve(o->p, o->want, t, &o->ptr);
	if (n > 0)
		o->got = n;
	return n;
}

PyDoc_STRVAR(producer_reserve_doc,
"reserve($self, /, n=1, timeout=None)\n--\n\n\
Reserve k (1 <= k <= n) contiguous records in the ring, fewer at the ring's wrap\n\
or when fewer are free, and return a Reservation to write them in place:\n\
\n\
    with p.reserve(8) as view:   # writable memoryview of k * record_size bytes\n\
        view[:4] = b'abcd'\n\
\n\
Committed on normal exit, aborted (nothing published) on an exception; the view\n\
is released when the block ends, and any other view of it still alive (a NumPy\n\
array made from it) makes the block abort it and raise BufferError: delete such\n\
arrays inside the block. Waits as send while the ring is full. Until the\n\
reservation ends, this producer's calls from other threads wait.");
static PyObject *producer_reserve(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
				  PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *a[2];
	int64_t t;
	long long n;
	uint32_t cap = self->chan->cs.cfg.capacity;
	if (fast_args("reserve", args, nargs, kwnames, kw_n_timeout, 0, 2, a) < 0 ||
	    parse_count(a[0], "n", 1, cap, &n) < 0 || parse_timeout(a[1], &t) < 0)
		return NULL;
	int64_t until = deadline_at(t);
	if (producer_lock(self, st, until) < 0)
		return NULL;
	struct op_reserve o = { self->p, (size_t)n, NULL, 0 };
	int err;
	int rc = run_op(op_reserve, &o, until, &err);
	if (rc < 0) {
		hlock_release(&self->lock);
		raise_rc(st, rc, err, ON_SEND, NULL);
		return NULL;
	}
	SpanObject *r = (SpanObject *)st->ReservationType->tp_alloc(st->ReservationType, 0);
	if (!r) {
		rmpsc_producer_commit(self->p, 0);
		hlock_release(&self->lock);
		return NULL;
	}
	/* The reservation keeps the producer's lock until committed, aborted or freed. */
	r->owner = Py_NewRef(self);
	r->ptr = o.ptr;
	r->k = o.got;
	r->nbytes = (Py_ssize_t)o.got * self->chan->cs.cfg.record_size;
	r->slot = self->slot;
	r->gen = st->fork_gen;
	return (PyObject *)r;
}

static int op_send_bytes(void *ctx, int64_t t)
{
	struct op_send *o = ctx;
	return rmpsc_producer_send_bytes(o->p, o->data, o->len, t);
}

PyDoc_STRVAR(producer_send_bytes_doc,
"send_bytes($self, /, data, timeout=None)\n--\n\n\
Send a variable-length message of up to slab_size bytes through the channel's slab\n\
pool (the record carries its handle). Waits up to timeout, in all, for a free slab\n\
and then ring space, then raises Full.");
static PyObject *producer_send_bytes(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
				     PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *av[2];
	int64_t t;
	if (fast_args("send_bytes", args, nargs, kwnames, kw_data_timeout, 1, 2, av) < 0 ||
	    parse_timeout(av[1], &t) < 0)
		return NULL;
	const struct rmpsc_config *cfg = &self->chan->cs.cfg;
	if (producer_usable(self, st) < 0)
		return NULL;
	if (!cfg->slab_count) {
		PyErr_SetString(PyExc_ValueError, "send_bytes: this channel has no slab pool (created with slabs=0)");
		return NULL;
	}
	Py_buffer b;
	if (get_data(av[0], &b, PyBUF_SIMPLE, "data") < 0)
		return NULL;
	if ((size_t)b.len > cfg->slab_size) {
		PyErr_Format(PyExc_ValueError, "data is %zd bytes, longer than slab_size %u", b.len, cfg->slab_size);
		data_release(&b);
		return NULL;
	}
	int64_t until = deadline_at(t);
	if (producer_lock(self, st, until) < 0) {
		data_release(&b);
		return NULL;
	}
	/* The core copies into the slab: a large copy goes without the GIL, the first try included. */
	struct op_send o = { self->p, b.buf, (size_t)b.len };
	int err = 0;
	int rc = b.len > BIG_COPY ? run_op_nogil(op_send_bytes, &o, until, &err)
				  : run_op(op_send_bytes, &o, until, &err);
	hlock_release(&self->lock);
	data_release(&b);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_SEND_BYTES, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

struct op_send_message {
	rmpsc_producer *p;
	const struct rmpsc_part *parts;
	size_t nparts;
};

static int op_send_message(void *ctx, int64_t t)
{
	struct op_send_message *o = ctx;
	return rmpsc_producer_send_message(o->p, o->parts, o->nparts, t);
}

#define STACK_PARTS 8 /* parts of a message kept on the stack */

/* send_message's send: data a bytes-like object, or a list or tuple of them sent as their
 * concatenation. 0, or -1 with an exception. */
static int send_parts(ProducerObject *self, modstate *st, PyObject *data, int64_t t)
{
	int seq = PyList_CheckExact(data) || PyTuple_CheckExact(data);
	Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(data) : 1;
	Py_buffer stack_b[STACK_PARTS];
	struct rmpsc_part stack_p[STACK_PARTS];
	Py_buffer *b = n <= STACK_PARTS ? stack_b : PyMem_New(Py_buffer, n);
	struct rmpsc_part *parts = n <= STACK_PARTS ? stack_p : PyMem_New(struct rmpsc_part, n);
	Py_ssize_t got = 0;
	size_t total = 0;
	int result = -1;
	if (!b || !parts) {
		PyErr_NoMemory();
		goto out;
	}
	for (; got < n; got++) {
		PyObject *item = seq ? PySequence_Fast_GET_ITEM(data, got) : data;
		if (get_data(item, &b[got], PyBUF_SIMPLE, seq ? "each part of data" : "data") < 0)
			goto out;
		parts[got] = (struct rmpsc_part){ b[got].buf, (size_t)b[got].len };
		total += (size_t)b[got].len;
	}
	int64_t until = deadline_at(t);
	if (producer_lock(self, st, until) < 0)
		goto out;
	/* The core copies into the ring or the slabs: a large copy goes without the GIL. */
	struct op_send_message o = { self->p, parts, (size_t)n };
	int err = 0;
	int rc = total > BIG_COPY ? run_op_nogil(op_send_message, &o, until, &err)
				  : run_op(op_send_message, &o, until, &err);
	hlock_release(&self->lock);
	if (rc < 0)
		raise_rc(st, rc, err, ON_SEND_BYTES, NULL);
	else
		result = 0;
out:
	for (Py_ssize_t i = 0; i < got; i++)
		data_release(&b[i]);
	if (b != stack_b)
		PyMem_Free(b);
	if (parts != stack_p)
		PyMem_Free(parts);
	return result;
}

PyDoc_STRVAR(producer_send_message_doc,
"send_message($self, /, data, timeout=None)\n--\n\n\
Send one message of any length up to the channel's message_max: a bytes-like\n\
object, or a list or tuple of them sent as their concatenation (gathered, not\n\
joined first). It travels inline in its record when it fits (record_size - 8\n\
bytes), else in as many slabs of the pool as it needs. Waits up to timeout, in\n\
all, for slabs and ring space, then raises Full; nothing is sent then.\n\
Receive with recv_messages.");
static PyObject *producer_send_message(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
				       PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *av[2];
	int64_t t;
	if (fast_args("send_message", args, nargs, kwnames, kw_data_timeout, 1, 2, av) < 0 ||
	    parse_timeout(av[1], &t) < 0)
		return NULL;
	if (producer_usable(self, st) < 0)
		return NULL;
	return send_parts(self, st, av[0], t) < 0 ? NULL : Py_NewRef(Py_None);
}

static const char *const kw_obj_timeout[] = { "obj", "timeout" };

/* _send_object's send: one message of len bytes. True, or NULL with an exception. */
static PyObject *send_pickle(ProducerObject *self, modstate *st, const char *data, size_t len, int64_t t)
{
	struct rmpsc_part part = { data, len };
	int64_t until = deadline_at(t);
	if (producer_lock(self, st, until) < 0)
		return NULL;
	struct op_send_message o = { self->p, &part, 1 };
	int err = 0;
	int rc = len > BIG_COPY ? run_op_nogil(op_send_message, &o, until, &err) : run_op(op_send_message, &o, until, &err);
	hlock_release(&self->lock);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_SEND_BYTES, NULL);
		return NULL;
	}
	Py_RETURN_TRUE;
}

PyDoc_STRVAR(producer_send_object_doc,
"_send_object($self, /, obj, timeout=None)\n--\n\n\
ringmpsc.Queue's put when its dumps is the default: pickle obj (protocol 5, its\n\
contiguous buffers of _OUT_OF_BAND_FROM bytes or more out of band, gathered\n\
straight from their memory) and send it as one message, waiting as send_message.\n\
Returns True once sent; None, with nothing sent, when pickle refused the object\n\
(TypeError, AttributeError, PicklingError: the Queue tries multiprocessing's\n\
pickler, which raises if it cannot either).");
static PyObject *producer_send_object(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
				      PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *av[2];
	int64_t t;
	if (fast_args("_send_object", args, nargs, kwnames, kw_obj_timeout, 1, 2, av) < 0 ||
	    parse_timeout(av[1], &t) < 0 || producer_usable(self, st) < 0)
		return NULL;
	/* Pickled before the lock is taken: pickling may run any Python code, this producer's calls included. */
	char buf[FAST_DUMPS_MAX];
	Py_ssize_t n = fast_dumps(av[0], buf, sizeof buf);
	if (n >= 0)
		return send_pickle(self, st, buf, (size_t)n, t);
	PyObject *data = pickle_message(st, av[0]);
	if (!data) {
		if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_AttributeError) ||
		    (st->PicklingError && PyErr_ExceptionMatches(st->PicklingError))) {
			PyErr_Clear();
			Py_RETURN_NONE;
		}
		return NULL;
	}
	/* A plain pickle, or the parts of a message with buffers out of band (gathered from them). */
	PyObject *result;
	if (PyBytes_CheckExact(data))
		result = send_pickle(self, st, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), t);
	else
		result = send_parts(self, st, data, t) < 0 ? NULL : Py_NewRef(Py_True);
	Py_DECREF(data);
	return result;
}

/* Readiness: waiting for space in an event loop (the coroutines in _aio use the
 * _try calls, which never wait for another thread; see consumer.c). */

#define LOCK_BUSY 2

/* The producer's lock for a readiness call by the deadline `until` (FOREVER, or 0
 * for the _try calls), which this thread may make while it holds the lock through
 * an open Reservation (as consumer.c's ready_lock). 1: taken (release it after);
 * 0: held by this thread already; LOCK_BUSY: another thread holds it; -1 with an
 * exception. */
static int ready_lock(ProducerObject *self, modstate *st, int64_t until)
{
	if (producer_usable(self, st) < 0)
		return -1;
	if (self->lock.owner == PyThread_get_thread_ident() && self->lock.gen == st->fork_gen)
		return 0;
	int r = hlock_acquire(&self->lock, st, until, PRODUCER_BUSY);
	if (r == 1)
		return LOCK_BUSY;
	if (r < 0)
		return -1;
	if (!self->p) { /* closed by another thread meanwhile */
		hlock_release(&self->lock);
		PyErr_SetString(PyExc_ValueError, "Producer is closed");
		return -1;
	}
	return 1;
}

static PyObject *ready_fd(ProducerObject *self, int64_t until)
{
	modstate *st = STATE(self);
	int taken = ready_lock(self, st, until);
	if (taken < 0)
		return NULL;
	if (taken == LOCK_BUSY)
		Py_RETURN_NONE;
	errno = 0;
	int fd = rmpsc_producer_ready_fd(self->p);
	int err = errno;
	if (fd >= 0)
		self->ready_fd = fd;
	if (taken)
		hlock_release(&self->lock);
	if (fd < 0) {
		raise_rc(st, fd, err, ON_SEND, NULL);
		return NULL;
	}
	return PyLong_FromLong(fd);
}

PyDoc_STRVAR(producer_ready_fd_doc,
"ready_fd($self, /)\n--\n\n\
A file descriptor that becomes readable when this producer's ring may have\n\
space again (or the channel closed): for select, poll, epoll or an event loop's\n\
add_reader (send_async and the other coroutines use it). Owned by the producer:\n\
do not close it. Wait on it only as ready_arm() says. Waits for a call another\n\
thread is making on this producer to end.");
static PyObject *producer_ready_fd(ProducerObject *self, PyObject *unused)
{
	return ready_fd(self, FOREVER);
}

static PyObject *producer_ready_fd_try(ProducerObject *self, PyObject *unused)
{
	return ready_fd(self, 0);
}

static PyObject *producer_ready_fd_cached(ProducerObject *self, PyObject *unused)
{
	if (producer_usable(self, STATE(self)) < 0)
		return NULL;
	if (self->ready_fd < 0)
		Py_RETURN_NONE;
	return PyLong_FromLong(self->ready_fd);
}

static PyObject *ready_arm(ProducerObject *self, int64_t until)
{
	modstate *st = STATE(self);
	int taken = ready_lock(self, st, until);
	if (taken < 0)
		return NULL;
	if (taken == LOCK_BUSY)
		Py_RETURN_NONE;
	int64_t wait_ns = -1;
	errno = 0;
	int rc = rmpsc_producer_ready_arm(self->p, &wait_ns);
	int err = errno;
	if (taken)
		hlock_release(&self->lock);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_SEND, NULL);
		return NULL;
	}
	return arm_result(rc, wait_ns);
}

PyDoc_STRVAR(producer_ready_arm_doc,
"ready_arm($self, /)\n--\n\n\
Announce a wait for space on ready_fd(), after a send with timeout=0 raised\n\
Full. Returns 0.0 when a record fits now, or the channel closed (the next send\n\
raises Closed): do not wait, send again; t > 0: armed, wait until ready_fd() is\n\
readable or t seconds passed (a second at most: the core then looks again\n\
itself, for dead consumers holding the space, or a wake-up that could not be\n\
sent). Then send again with timeout=0, and arm again if that raises Full.\n\
ready_disarm() withdraws a wait given up.");
static PyObject *producer_ready_arm(ProducerObject *self, PyObject *unused)
{
	return ready_arm(self, FOREVER);
}

static PyObject *producer_ready_arm_try(ProducerObject *self, PyObject *unused)
{
	return ready_arm(self, 0);
}

PyDoc_STRVAR(producer_ready_disarm_doc,
"ready_disarm($self, /)\n--\n\n\
Withdraw the announcement of ready_arm() (a wait given up). Safe when not armed.");
static PyObject *producer_ready_disarm(ProducerObject *self, PyObject *unused)
{
	modstate *st = STATE(self);
	int taken = ready_lock(self, st, FOREVER);
	if (taken < 0)
		return NULL;
	rmpsc_producer_ready_disarm(self->p);
	if (taken)
		hlock_release(&self->lock);
	Py_RETURN_NONE;
}

static PyObject *producer_ready_disarm_try(ProducerObject *self, PyObject *arg)
{
	modstate *st = STATE(self);
	long long fd;
	if (parse_int(arg, "fd", 0, INT32_MAX, &fd) < 0)
		return NULL;
	if (!self->p)
		Py_RETURN_TRUE; /* closed: nothing to withdraw it with (a spurious wake-up at most) */
	int taken = ready_lock(self, st, 0);
	if (taken < 0)
		return NULL;
	if (taken == LOCK_BUSY)
		Py_RETURN_FALSE;
	if (self->ready_fd >= 0 && same_file(self->ready_fd, (int)fd)) /* the producer's FIFO is its own */
		rmpsc_producer_ready_disarm(self->p);
	if (taken)
		hlock_release(&self->lock);
	Py_RETURN_TRUE;
}

PyDoc_STRVAR(producer_count_dropped_doc,
"count_dropped($self, n=1, /)\n--\n\n\
Count n records this producer gave up on (say, a send_nowait that raised Full,\n\
where waiting is not an option). The counts live in the channel, so every\n\
process sees them in stats() ('dropped', 'drop_episodes': runs of drops with no\n\
record sent in between) and they survive this process. Nothing else changes.");
static PyObject *producer_count_dropped(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	modstate *st = STATE(self);
	long long n = 1;
	if (nargs > 1)
		return PyErr_Format(PyExc_TypeError, "count_dropped() takes at most 1 argument (%zd given)", nargs);
	if (nargs == 1 && parse_int(args[0], "n", 0, LLONG_MAX, &n) < 0)
		return NULL;
	int taken = ready_lock(self, st, FOREVER);
	if (taken < 0)
		return NULL;
	int rc = rmpsc_producer_count_dropped(self->p, (uint64_t)n);
	if (taken)
		hlock_release(&self->lock);
	if (rc < 0) {
		raise_rc(st, rc, 0, ON_OTHER, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

PyDoc_STRVAR(producer_close_doc,
"close($self, /)\n--\n\n\
Deregister: the slot is reused once the consumer has drained it; committed\n\
records stay readable. Waits for a call another thread is making on this\n\
producer to finish. Coroutines waiting on this Producer (send_async,\n\
send_bytes_async), in any event loop, raise ValueError at once. Idempotent.");
static PyObject *producer_close(ProducerObject *self, PyObject *unused)
{
	modstate *st = STATE(self);
	if (!self->p)
		Py_RETURN_NONE;
	if (self->gen != st->fork_gen) {
		/* Inherited: free our copy of the handle, leave the parent's ring alone. */
		rmpsc_producer_close(self->p);
		self->p = NULL;
		self->ready_fd = -1;
		Py_RETURN_NONE;
	}
	int64_t until = FOREVER;
	if (hlock_acquire(&self->lock, st, until, PRODUCER_BUSY) != 0)
		return NULL;
	int closed = self->p != NULL;
	if (self->p) {
		rmpsc_producer_close(self->p);
		self->p = NULL;
		self->ready_fd = -1;
	}
	hlock_release(&self->lock);
	if (closed)
		aio_changed((PyObject *)self); /* its coroutines find it closed */
	Py_RETURN_NONE;
}

PyDoc_STRVAR(producer_exit_doc, "__exit__($self, /, *exc_info)\n--\n\nClose the producer.");
static PyObject *producer_exit(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	PyObject *r = producer_close(self, NULL);
	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *producer_get_slot(ProducerObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->slot);
}
static PyObject *producer_get_channel(ProducerObject *self, void *c)
{
	return Py_NewRef(self->chan);
}
static PyObject *producer_get_closed(ProducerObject *self, void *c)
{
	return PyBool_FromLong(self->p == NULL);
}

static PyObject *producer_repr(ProducerObject *self)
{
	return PyUnicode_FromFormat("<ringmpsc.Producer slot=%u pid=%ld%s>", self->slot, self->pid,
				    self->p ? "" : " closed");
}

PyDoc_STRVAR(producer_doc,
"A producer bound to one ring of a Channel, made by Channel.producer().\n\
\n\
Methods may be called from several threads (they take turns). A Producer belongs\n\
to the process that registered it: one inherited through fork raises Error, and\n\
Producers do not pickle. Close it (or use it as a context manager) to free its\n\
slot; its committed records stay readable.");

static PyMethodDef producer_methods[] = {
	{ "send", (PyCFunction)(void (*)(void))producer_send, METH_FASTCALL | METH_KEYWORDS, producer_send_doc },
	{ "send_nowait", (PyCFunction)producer_send_nowait, METH_O, producer_send_nowait_doc },
	{ "send_many", (PyCFunction)(void (*)(void))producer_send_many, METH_FASTCALL | METH_KEYWORDS,
	  producer_send_many_doc },
	{ "reserve", (PyCFunction)(void (*)(void))producer_reserve, METH_FASTCALL | METH_KEYWORDS,
	  producer_reserve_doc },
	{ "send_bytes", (PyCFunction)(void (*)(void))producer_send_bytes, METH_FASTCALL | METH_KEYWORDS,
	  producer_send_bytes_doc },
	{ "send_message", (PyCFunction)(void (*)(void))producer_send_message, METH_FASTCALL | METH_KEYWORDS,
	  producer_send_message_doc },
	{ "_send_object", (PyCFunction)(void (*)(void))producer_send_object, METH_FASTCALL | METH_KEYWORDS,
	  producer_send_object_doc },
	{ "ready_fd", (PyCFunction)producer_ready_fd, METH_NOARGS, producer_ready_fd_doc },
	{ "ready_arm", (PyCFunction)producer_ready_arm, METH_NOARGS, producer_ready_arm_doc },
	{ "ready_disarm", (PyCFunction)producer_ready_disarm, METH_NOARGS, producer_ready_disarm_doc },
	{ "_ready_fd_try", (PyCFunction)producer_ready_fd_try, METH_NOARGS, ready_fd_try_doc },
	{ "_ready_fd_cached", (PyCFunction)producer_ready_fd_cached, METH_NOARGS, ready_fd_cached_doc },
	{ "_ready_arm_try", (PyCFunction)producer_ready_arm_try, METH_NOARGS, ready_arm_try_doc },
	{ "_ready_disarm_try", (PyCFunction)producer_ready_disarm_try, METH_O, ready_disarm_try_doc },
	{ "send_async", (PyCFunction)(void (*)(void))producer_send_async, METH_VARARGS | METH_KEYWORDS,
	  producer_send_async_doc },
	{ "send_bytes_async", (PyCFunction)(void (*)(void))producer_send_bytes_async, METH_VARARGS | METH_KEYWORDS,
	  producer_send_bytes_async_doc },
	{ "count_dropped", (PyCFunction)(void (*)(void))producer_count_dropped, METH_FASTCALL,
	  producer_count_dropped_doc },
	{ "close", (PyCFunction)producer_close, METH_NOARGS, producer_close_doc },
	{ "__enter__", (PyCFunction)self_enter, METH_NOARGS, enter_doc },
	{ "__exit__", (PyCFunction)(void (*)(void))producer_exit, METH_FASTCALL, producer_exit_doc },
	{ "__reduce__", (PyCFunction)not_picklable, METH_NOARGS, NULL },
	{ NULL },
};

static PyGetSetDef producer_getset[] = {
	{ "slot", (getter)producer_get_slot, NULL, "This producer's ring slot (0 .. max_producers-1).", NULL },
	{ "channel", (getter)producer_get_channel, NULL, "The Channel it sends on.", NULL },
	{ "closed", (getter)producer_get_closed, NULL, "True after close().", NULL },
	{ NULL },
};

static PyMemberDef producer_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(ProducerObject, weakrefs), READONLY },
	{ NULL },
};

static PyType_Slot producer_slots[] = {
	{ Py_tp_doc, (void *)producer_doc },
		{ Py_tp_dealloc, producer_dealloc },
	{ Py_tp_repr, producer_repr },
	{ Py_tp_methods, producer_methods },
	{ Py_tp_getset, producer_getset },
	{ Py_tp_members, producer_members },
	{ 0, NULL },
};

PyType_Spec producer_spec = {
	.name = "ringmpsc.Producer",
	.basicsize = sizeof(ProducerObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = producer_slots,
};
