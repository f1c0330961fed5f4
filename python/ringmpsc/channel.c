/*
 * The Channel type: construction, properties, and the consumer side.
 *
 * Channel may be subclassed from Python (users subclass queues): a subclass has
 * no module state of its own, so each object keeps its module's (self->st).
 */
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "blocking.h"

#define CSTATE(self) (((ChannelObject *)(self))->st)

static const char CONSUMER_BUSY[] =
	"this thread holds the channel's consumer side (an open read() view): consume or cancel it first";

/* ------------------------------------------------------------------------- */
/* Channel: construction. */

/* A new object of `type` (Channel or a subclass) owning the handle `c`. */
static PyObject *channel_wrap(PyTypeObject *type, modstate *st, rmpsc_channel *c, PyObject *name)
{
	ChannelObject *self = (ChannelObject *)type->tp_alloc(type, 0);
	if (!self) {
		rmpsc_channel_release(c);
		return NULL;
	}
	self->ch = c;
	self->st = st;
	rmpsc_channel_config(c, &self->cfg);
	hlock_init(&self->lock, st);
	const char *cname = rmpsc_channel_name(c);
	if (name && name != Py_None) {
		self->name = Py_NewRef(name);
	} else if (cname) {
		self->name = PyUnicode_DecodeFSDefault(cname);
		if (!self->name) {
			Py_DECREF(self);
			return NULL;
		}
	} else {
		self->name = Py_NewRef(Py_None);
	}
	return (PyObject *)self;
}

PyDoc_STRVAR(channel_doc,
"Channel(record_size, capacity=4096, max_producers=16, *, name=None, slab_size=0, slabs=0,\n\
        full_fences=False)\n\
--\n\
\n\
A multi-producer, single-consumer channel of fixed-size records in one shared\n\
memory region.\n\
\n\
Each producer gets its own lock-free ring of `capacity` records (a power of two);\n\
the consumer sweeps the rings. Order is FIFO per producer, none across producers.\n\
With name=None the region is anonymous (memfd): it reaches other processes by\n\
fork or by multiprocessing (file-descriptor passing). With a name it is a POSIX\n\
shared-memory object (/dev/shm/NAME, mode 0600) that any process of the same user\n\
can attach with Channel.open(name); an existing name is never overwritten\n\
(FileExistsError). slab_size and slabs > 0 add a pool for variable-length\n\
messages (send_bytes/recv_bytes).\n\
\n\
Any one process consumes: the first to call a consumer method (recv*, read,\n\
iteration) claims the role; another live process then gets ConsumerBusy.");
static PyObject *channel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "record_size", "capacity", "max_producers", "name", "slab_size", "slabs",
				  "full_fences", NULL };
	modstate *st = state_of_subtype(type);
	if (!st)
		return NULL;
	PyObject *o_rs, *o_cap = NULL, *o_mp = NULL, *o_name = Py_None, *o_ss = NULL, *o_sc = NULL;
	int full_fences = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO$OOOp:Channel", kwlist, &o_rs, &o_cap, &o_mp, &o_name,
					 &o_ss, &o_sc, &full_fences))
		return NULL;
	long long rs, cap = 4096, mp = 16, ss = 0, sc = 0;
	if (parse_int(o_rs, "record_size", 1, RMPSC_MAX_RECORD_SIZE, &rs) < 0)
		return NULL;
	if (o_cap && parse_int(o_cap, "capacity", RMPSC_MIN_CAPACITY, RMPSC_MAX_CAPACITY, &cap) < 0)
		return NULL;
	if (cap & (cap - 1)) {
		PyErr_Format(PyExc_ValueError, "capacity must be a power of two, got %lld", cap);
		return NULL;
	}
	if (o_mp && parse_int(o_mp, "max_producers", 1, RMPSC_MAX_PRODUCERS, &mp) < 0)
		return NULL;
	if (o_ss && parse_int(o_ss, "slab_size", 0, RMPSC_MAX_SLAB_SIZE, &ss) < 0)
		return NULL;
	if (o_sc && parse_int(o_sc, "slabs", 0, RMPSC_MAX_SLAB_COUNT, &sc) < 0)
		return NULL;
	if ((ss == 0) != (sc == 0)) {
		PyErr_Format(PyExc_ValueError, "slab_size (%lld) and slabs (%lld) must both be 0 or both be > 0", ss, sc);
		return NULL;
	}
	if (sc && rs < 4) {
		PyErr_Format(PyExc_ValueError, "record_size must be >= 4 to carry slab handles, got %lld", rs);
		return NULL;
	}
	const char *name = NULL;
	if (o_name != Py_None && !(name = parse_name(o_name, "name")))
		return NULL;
	struct rmpsc_config cfg = {
		.record_size = (uint32_t)rs,
		.capacity = (uint32_t)cap,
		.max_producers = (uint32_t)mp,
		.slab_size = (uint32_t)ss,
		.slab_count = (uint32_t)sc,
		.start_position = 0,
	};
	rmpsc_channel *c = NULL;
	int rc, err;
	/* ftruncate + posix_fallocate of a large region can take a while. */
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_channel_create(&c, name, &cfg, OPEN_FLAGS | (full_fences ? RMPSC_CREATE_FULL_FENCES : 0));
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(st, rc, err, ON_OTHER, o_name);
		return NULL;
	}
	return channel_wrap(type, st, c, NULL);
}

PyDoc_STRVAR(channel_open_doc,
"open($type, /, name)\n--\n\n\
Attach to an existing named channel. The region is validated first: a corrupt,\n\
truncated or incompatible one raises CorruptRegion; a missing one\n\
FileNotFoundError.");
static PyObject *channel_open(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "name", NULL };
	modstate *st = state_of_subtype(type);
	if (!st)
		return NULL;
	PyObject *o_name;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:open", kwlist, &o_name))
		return NULL;
	const char *name = parse_name(o_name, "name");
	if (!name)
		return NULL;
	rmpsc_channel *c = NULL;
	int rc, err;
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_channel_open(&c, name, OPEN_FLAGS);
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(st, rc, err, ON_OTHER, o_name);
		return NULL;
	}
	return channel_wrap(type, st, c, NULL);
}

PyDoc_STRVAR(channel_from_fd_doc,
"_from_fd($type, /, fd, name=None)\n--\n\n\
Attach to a channel by file descriptor (dup'ed; the caller keeps fd). Used when a\n\
Channel is unpickled by multiprocessing.");
static PyObject *channel_from_fd(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "fd", "name", NULL };
	modstate *st = state_of_subtype(type);
	if (!st)
		return NULL;
	PyObject *o_fd, *o_name = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:_from_fd", kwlist, &o_fd, &o_name))
		return NULL;
	long long fd;
	if (parse_int(o_fd, "fd", 0, INT32_MAX, &fd) < 0)
		return NULL;
	if (o_name != Py_None && !parse_name(o_name, "name"))
		return NULL;
	rmpsc_channel *c = NULL;
	int rc, err;
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_channel_attach_fd(&c, (int)fd, OPEN_FLAGS);
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(st, rc, err, ON_OTHER, NULL);
		return NULL;
	}
	return channel_wrap(type, st, c, o_name);
}

static void channel_dealloc(ChannelObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->ch)
		rmpsc_channel_release(self->ch); /* gives the consumer role up if held */
	Py_XDECREF(self->name);
	tp->tp_free(self);
	Py_DECREF(tp);
}

/* ------------------------------------------------------------------------- */
/* Channel: properties and plain methods. */

static PyObject *channel_get_record_size(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cfg.record_size);
}
static PyObject *channel_get_capacity(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cfg.capacity);
}
static PyObject *channel_get_max_producers(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cfg.max_producers);
}
static PyObject *channel_get_slab_size(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cfg.slab_size);
}
static PyObject *channel_get_slabs(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cfg.slab_count);
}
static PyObject *channel_get_name(ChannelObject *self, void *c)
{
	return Py_NewRef(self->name);
}
static PyObject *channel_get_closed(ChannelObject *self, void *c)
{
	return PyBool_FromLong(rmpsc_channel_is_closed(self->ch));
}

PyDoc_STRVAR(channel_fileno_doc, "fileno($self, /)\n--\n\nThe file descriptor of the region's mapping (owned by the channel).");
static PyObject *channel_fileno(ChannelObject *self, PyObject *unused)
{
	return PyLong_FromLong(rmpsc_channel_fd(self->ch));
}

PyDoc_STRVAR(channel_close_doc,
"close($self, /)\n--\n\n\
Close the channel for every process. Sends fail with Closed from now on, blocked\n\
senders and receivers wake at once, and the consumer still receives every\n\
committed record before getting Closed. Idempotent. This process's handle stays\n\
usable (it is released when the object is freed). Channel is deliberately not a\n\
context manager: leaving a block should not close the channel for everyone.");
static PyObject *channel_close(ChannelObject *self, PyObject *unused)
{
	rmpsc_channel_close(self->ch); /* stores and futex wakes only: never blocks */
	Py_RETURN_NONE;
}

/* A Channel is always true, even when empty: `if ch:` must not mean "has records". */
static int always_true(PyObject *self)
{
	return 1;
}

static Py_ssize_t channel_len(ChannelObject *self)
{
	uint64_t n = rmpsc_pending(self->ch);
	return n > (uint64_t)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)n;
}

static PyObject *channel_repr(ChannelObject *self)
{
	return PyUnicode_FromFormat("<%s name=%R record_size=%u capacity=%u max_producers=%u%s%s>",
				    Py_TYPE(self)->tp_name, self->name, self->cfg.record_size, self->cfg.capacity, self->cfg.max_producers,
				    self->cfg.slab_count ? " slabs" : "",
				    rmpsc_channel_is_closed(self->ch) ? " closed" : "");
}

PyDoc_STRVAR(channel_reduce_doc, "Named channels pickle by name; anonymous ones only through multiprocessing.");
static PyObject *channel_reduce(ChannelObject *self, PyObject *unused)
{
	if (self->name == Py_None) {
		PyErr_SetString(PyExc_TypeError,
				"an anonymous Channel pickles only through multiprocessing (its memory travels as a "
				"file descriptor); create it with name=... to pickle it by name");
		return NULL;
	}
	PyObject *open = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "open");
	if (!open)
		return NULL;
	return Py_BuildValue("N(O)", open, self->name);
}

static const char *const slot_state_names[] = { "free", "registering", "active", "detached", "reclaiming",
						 "fenced" };

PyDoc_STRVAR(channel_stats_doc,
"stats($self, /)\n--\n\n\
A snapshot of the channel's figures: geometry, pending/committed/consumed counts,\n\
consumer_pid, closed, slab and reclaim counters, and 'producers': one dict per\n\
slot in use (slot, state, pid, alive, pending, committed, consumed).");
static PyObject *channel_stats(ChannelObject *self, PyObject *unused)
{
	struct rmpsc_stats s;
	uint32_t n = self->cfg.max_producers;
	struct rmpsc_ring_stats *rings = PyMem_Calloc(n, sizeof *rings);
	if (!rings)
		return PyErr_NoMemory();
	int w;
	/* Liveness checks read /proc for each producer. */
	Py_BEGIN_ALLOW_THREADS
	w = rmpsc_stats(self->ch, &s, rings, n);
	Py_END_ALLOW_THREADS
	if (w < 0) {
		PyMem_Free(rings);
		raise_rc(CSTATE(self), w, 0, ON_OTHER, NULL);
		return NULL;
	}
	PyObject *list = PyList_New(0);
	PyObject *d = NULL;
	if (!list)
		goto fail;
	for (int i = 0; i < w; i++) {
		struct rmpsc_ring_stats *r = &rings[i];
		PyObject *e = Py_BuildValue(
			"{s:I,s:s,s:I,s:O,s:K,s:K,s:K}", "slot", r->slot, "state",
			r->state < 6 ? slot_state_names[r->state] : "unknown", "pid", r->owner_pid, "alive",
			r->owner_alive ? Py_True : Py_False, "pending", (unsigned long long)r->pending, "committed",
			(unsigned long long)r->committed, "consumed", (unsigned long long)r->consumed);
		if (!e || PyList_Append(list, e) < 0) {
			Py_XDECREF(e);
			goto fail;
		}
		Py_DECREF(e);
	}
	d = Py_BuildValue("{s:O,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:K,s:K,s:K,s:I,s:I,s:I,s:O}", "name", self->name,
			  "record_size", self->cfg.record_size, "capacity", self->cfg.capacity, "max_producers",
			  s.max_producers, "slab_size", self->cfg.slab_size, "slabs", s.slab_count,
			  "active_producers", s.active_producers, "consumer_pid", s.consumer_pid, "closed",
			  s.closed ? Py_True : Py_False, "pending", (unsigned long long)s.pending, "committed",
			  (unsigned long long)s.committed, "consumed", (unsigned long long)s.consumed, "slabs_free",
			  s.slabs_free, "fenced_rings", s.fenced_rings, "reclaimed_slots", s.reclaimed_slots,
			  "producers", list);
fail:
	Py_XDECREF(list);
	PyMem_Free(rings);
	return d;
}

PyDoc_STRVAR(channel_reclaim_doc,
"reclaim_dead($self, /)\n--\n\n\
Reclaim the slots of producers whose process died (also done automatically on\n\
register and by the consumer). Returns the number of slots reclaimed.");
static PyObject *channel_reclaim_dead(ChannelObject *self, PyObject *unused)
{
	int n;
	Py_BEGIN_ALLOW_THREADS
	n = rmpsc_reclaim_dead(self->ch);
	Py_END_ALLOW_THREADS
	if (n < 0) {
		raise_rc(CSTATE(self), n, errno, ON_OTHER, NULL);
		return NULL;
	}
	return PyLong_FromLong(n);
}

/* ------------------------------------------------------------------------- */
/* Channel: producers. */

PyDoc_STRVAR(channel_producer_doc,
"producer($self, /)\n--\n\n\
Register a producer in this process and return it. Each Producer owns one ring;\n\
raises TooManyProducers when all max_producers slots are held by live producers\n\
(slots of dead processes are reclaimed first), Closed if the channel is closed.");
static PyObject *channel_producer(ChannelObject *self, PyObject *unused)
{
	modstate *st = CSTATE(self);
	rmpsc_producer *p = NULL;
	int rc, err;
	/* Registering may scan the slots' owners in /proc when none is free. */
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_producer_register(self->ch, &p);
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(st, rc, err, ON_SEND, NULL);
		return NULL;
	}
	ProducerObject *po = (ProducerObject *)st->ProducerType->tp_alloc(st->ProducerType, 0);
	if (!po) {
		rmpsc_producer_close(p);
		return NULL;
	}
	po->p = p;
	po->chan = (ChannelObject *)Py_NewRef(self);
	po->gen = st->fork_gen;
	po->pid = (long)getpid();
	po->slot = rmpsc_producer_slot(p);
	hlock_init(&po->lock, st);
	return (PyObject *)po;
}

/* ------------------------------------------------------------------------- */
/* Channel: consumer methods. */

/* Take the consumer lock by the deadline. 0 ok; -1 with an exception (Empty on timeout). */
static int consumer_lock(ChannelObject *self, modstate *st, int64_t until)
{
	int r = hlock_acquire(&self->lock, st, until, CONSUMER_BUSY);
	if (r == 1)
		PyErr_SetString(st->Empty, until == 0 ? "no record available (another thread is consuming)"
						      : "no record within the timeout (another thread is consuming)");
	return r == 0 ? 0 : -1;
}

struct op_recv {
	rmpsc_channel *ch;
	char *buf;
	size_t max;
	int got;
};

static int op_recv(void *ctx, int64_t t)
{
	struct op_recv *o = ctx;
	int n = rmpsc_recv(o->ch, o->buf, o->max, t);
	if (n > 0)
		o->got = n;
	return n;
}

static int op_wait_readable(void *ctx, int64_t t)
{
	return rmpsc_wait_readable(ctx, t);
}

/* One record into buf (record_size bytes) by the deadline; 0 or -1 with an exception. */
static int recv_one(ChannelObject *self, modstate *st, char *buf, int64_t until)
{
	if (consumer_lock(self, st, until) < 0)
		return -1;
	struct op_recv o = { self->ch, buf, 1, 0 };
	int err;
	int rc = run_op(op_recv, &o, until, &err);
	hlock_release(&self->lock);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_RECV, NULL);
		return -1;
	}
	return 0;
}

static PyObject *recv_record(ChannelObject *self, int64_t timeout)
{
	modstate *st = CSTATE(self);
	int64_t until = deadline_at(timeout);
	PyObject *b = PyBytes_FromStringAndSize(NULL, self->cfg.record_size);
	if (!b)
		return NULL;
	/* The new bytes object is ours alone until returned: filling it without the
	 * GIL is safe (os.read does the same). */
	if (recv_one(self, st, PyBytes_AS_STRING(b), until) < 0) {
		Py_DECREF(b);
		return NULL;
	}
	return b;
}

static const char *const kw_timeout[] = { "timeout" };
static const char *const kw_max_timeout[] = { "max_records", "timeout" };
static const char *const kw_buffer_timeout[] = { "buffer", "timeout" };

PyDoc_STRVAR(channel_recv_doc,
"recv($self, /, timeout=None)\n--\n\n\
Receive one record (bytes of record_size). Blocks up to timeout seconds (None:\n\
forever, 0: never) and raises Empty when none arrived, Closed once the channel is\n\
closed and every committed record has been received.");
static PyObject *channel_recv(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[1];
	int64_t t;
	if (fast_args("recv", args, nargs, kwnames, kw_timeout, 0, 1, a) < 0 || parse_timeout(a[0], &t) < 0)
		return NULL;
	return recv_record(self, t);
}

PyDoc_STRVAR(channel_recv_nowait_doc,
"recv_nowait($self, /)\n--\n\nrecv(timeout=0): raise Empty at once when no record is ready.");
static PyObject *channel_recv_nowait(ChannelObject *self, PyObject *unused)
{
	return recv_record(self, 0);
}

static PyObject *channel_iternext(ChannelObject *self)
{
	PyObject *r = recv_record(self, -1);
	if (!r && PyErr_ExceptionMatches(CSTATE(self)->Closed))
		PyErr_Clear(); /* closed and drained: StopIteration */
	return r;
}

PyDoc_STRVAR(channel_recv_many_doc,
"recv_many($self, /, max_records=None, timeout=None)\n--\n\n\
Wait (as recv) for at least one record, then return every record available, up\n\
to max_records, concatenated in one bytes object (a multiple of record_size).");
static PyObject *channel_recv_many(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
				   PyObject *kwnames)
{
	modstate *st = CSTATE(self);
	PyObject *a[2];
	int64_t t;
	long long max;
	/* More than every ring holds at once is never available. */
	long long cap = (long long)self->cfg.capacity * self->cfg.max_producers;
	if (cap > INT32_MAX)
		cap = INT32_MAX; /* counts travel as int through the C API */
	if (fast_args("recv_many", args, nargs, kwnames, kw_max_timeout, 0, 2, a) < 0 ||
	    parse_count(a[0], "max_records", cap, cap, &max) < 0 || parse_timeout(a[1], &t) < 0)
		return NULL;
	int64_t until = deadline_at(t);
	if (consumer_lock(self, st, until) < 0)
		return NULL;
	/* Size one bytes object by what is pending once something is readable; the
	 * core's recv then takes every record available up to that many. */
	int rc = 0, err = 0;
	PyObject *b = NULL;
	if (rmpsc_pending(self->ch) == 0)
		rc = run_op(op_wait_readable, self->ch, until, &err);
	if (rc >= 0) {
		uint64_t pending = rmpsc_pending(self->ch);
		long long want = pending < 1 ? 1 : pending > (uint64_t)max ? max : (long long)pending;
		size_t rs = self->cfg.record_size;
		b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(want * rs));
		if (!b) {
			rc = RC_PYERR;
		} else {
			/* The new bytes object is ours alone until returned: filling it
			 * without the GIL is safe (os.read does the same). */
			struct op_recv o = { self->ch, PyBytes_AS_STRING(b), (size_t)want, 0 };
			/* Waits if pending but not readable (a fenced ring). */
			rc = (size_t)want * rs > BIG_COPY ? run_op_nogil(op_recv, &o, until, &err)
							  : run_op(op_recv, &o, until, &err);
			if (rc <= 0)
				Py_CLEAR(b);
			else if (rc < want && _PyBytes_Resize(&b, (Py_ssize_t)rc * (Py_ssize_t)rs) < 0)
				rc = RC_PYERR; /* b is NULL */
		}
	}
	hlock_release(&self->lock);
	if (!b)
		raise_rc(st, rc, err, ON_RECV, NULL);
	return b;
}

PyDoc_STRVAR(channel_recv_into_doc,
"recv_into($self, /, buffer, timeout=None)\n--\n\n\
Wait (as recv) for at least one record, then copy as many whole records as are\n\
available and fit into the writable buffer. Returns the number of records.");
static PyObject *channel_recv_into(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
				   PyObject *kwnames)
{
	modstate *st = CSTATE(self);
	PyObject *a[2];
	int64_t t;
	if (fast_args("recv_into", args, nargs, kwnames, kw_buffer_timeout, 1, 2, a) < 0 ||
	    parse_timeout(a[1], &t) < 0)
		return NULL;
	Py_buffer view;
	if (get_data(a[0], &view, PyBUF_WRITABLE, "buffer") < 0)
		return NULL;
	size_t max = (size_t)view.len / self->cfg.record_size;
	if (max > INT32_MAX)
		max = INT32_MAX; /* counts travel as int through the C API */
	if (max == 0) {
		PyErr_Format(PyExc_ValueError, "buffer of %zd bytes cannot hold one record of record_size %u", view.len,
			     self->cfg.record_size);
		data_release(&view);
		return NULL;
	}
	int64_t until = deadline_at(t);
	if (consumer_lock(self, st, until) < 0) {
		data_release(&view);
		return NULL;
	}
	/* The exported buffer cannot move or shrink while we hold the export. */
	/* The core takes every record available up to max. */
	struct op_recv o = { self->ch, view.buf, max, 0 };
	int err;
	int rc = run_op(op_recv, &o, until, &err);
	hlock_release(&self->lock);
	data_release(&view);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_RECV, NULL);
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

PyDoc_STRVAR(channel_read_doc,
"read($self, /, max_records=None, timeout=None)\n--\n\n\
Wait (as recv) for records and return a ReadView of k (1 <= k <= max_records)\n\
contiguous records of one producer, in place (zero-copy, read-only):\n\
\n\
    with ch.read() as view:   # memoryview of len(view) // record_size records\n\
        process(view)\n\
\n\
The records are consumed when the block exits normally and left for the next\n\
read when it raises; the view is released when the block ends. Until then this\n\
channel's consumer calls from other threads wait.");
static PyObject *channel_read(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	modstate *st = CSTATE(self);
	PyObject *a[2];
	int64_t t;
	long long max;
	if (fast_args("read", args, nargs, kwnames, kw_max_timeout, 0, 2, a) < 0 ||
	    parse_count(a[0], "max_records", self->cfg.capacity, self->cfg.capacity, &max) < 0 ||
	    parse_timeout(a[1], &t) < 0)
		return NULL;
	int64_t until = deadline_at(t);
	if (consumer_lock(self, st, until) < 0)
		return NULL;
	struct op_read o = { self->ch, (size_t)max, NULL, 0, 0 };
	int err;
	int rc = run_op(op_read, &o, until, &err);
	if (rc < 0) {
		hlock_release(&self->lock);
		raise_rc(st, rc, err, ON_RECV, NULL);
		return NULL;
	}
	SpanObject *v = (SpanObject *)st->ReadViewType->tp_alloc(st->ReadViewType, 0);
	if (!v) {
		rmpsc_advance(self->ch, 0);
		hlock_release(&self->lock);
		return NULL;
	}
	/* The view keeps the lock until consumed, cancelled or freed. */
	v->owner = Py_NewRef(self);
	v->ptr = (char *)o.ptr;
	v->k = o.got;
	v->nbytes = (Py_ssize_t)o.got * self->cfg.record_size;
	v->slot = o.slot;
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

PyDoc_STRVAR(channel_recv_bytes_doc,
"recv_bytes($self, /, timeout=None)\n--\n\n\
Receive one variable-length message sent with Producer.send_bytes (copied out of\n\
its slab, which then returns to the pool). Waits as recv.");
static PyObject *channel_recv_bytes(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
				    PyObject *kwnames)
{
	modstate *st = CSTATE(self);
	PyObject *a[1];
	int64_t t;
	if (fast_args("recv_bytes", args, nargs, kwnames, kw_timeout, 0, 1, a) < 0 || parse_timeout(a[0], &t) < 0)
		return NULL;
	if (!self->cfg.slab_count) {
		PyErr_SetString(PyExc_ValueError, "recv_bytes: this channel has no slab pool (created with slabs=0)");
		return NULL;
	}
	int64_t until = deadline_at(t);
	if (consumer_lock(self, st, until) < 0)
		return NULL;
	struct op_read_bytes o = { self->ch, NULL, 0 };
	int err;
	int rc = run_op(op_read_bytes, &o, until, &err);
	PyObject *result = NULL;
	if (rc >= 0) {
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
			rc = rmpsc_advance_bytes(self->ch);
			if (rc < 0)
				Py_CLEAR(result);
		}
	}
	hlock_release(&self->lock);
	if (rc < 0)
		raise_rc(st, rc, err, ON_RECV, NULL);
	return result;
}

/* ------------------------------------------------------------------------- */
/* Types. */

PyDoc_STRVAR(channel_init_subclass_doc,
"__init_subclass__($cls, /, **kwargs)\n--\n\n\
Register the subclass with multiprocessing, whose reducers match exact types, so\n\
that its channels travel to other processes as Channel's do.");
static PyObject *channel_init_subclass(PyTypeObject *cls, PyObject *args, PyObject *kwds)
{
	modstate *st = state_of_subtype(cls);
	if (!st)
		return NULL;
	/* super(Channel, cls).__init_subclass__(*args, **kwds): cooperative with mixins. */
	PyObject *sup = PyObject_CallFunctionObjArgs((PyObject *)&PySuper_Type, st->ChannelType, cls, NULL);
	if (!sup)
		return NULL;
	PyObject *init = PyObject_GetAttrString(sup, "__init_subclass__");
	Py_DECREF(sup);
	if (!init)
		return NULL;
	PyObject *r = PyObject_Call(init, args, kwds);
	Py_DECREF(init);
	if (!r)
		return NULL;
	Py_DECREF(r);
	PyObject *pkg = PyImport_ImportModule("ringmpsc");
	if (!pkg)
		return NULL;
	r = PyObject_CallMethod(pkg, "_register_channel_type", "O", (PyObject *)cls);
	Py_DECREF(pkg);
	return r;
}

static PyMethodDef channel_methods[] = {
	{ "__init_subclass__", (PyCFunction)(void (*)(void))channel_init_subclass,
	  METH_VARARGS | METH_KEYWORDS | METH_CLASS, channel_init_subclass_doc },
	{ "open", (PyCFunction)(void (*)(void))channel_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS, channel_open_doc },
	{ "_from_fd", (PyCFunction)(void (*)(void))channel_from_fd, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  channel_from_fd_doc },
	{ "producer", (PyCFunction)channel_producer, METH_NOARGS, channel_producer_doc },
	{ "recv", (PyCFunction)(void (*)(void))channel_recv, METH_FASTCALL | METH_KEYWORDS, channel_recv_doc },
	{ "recv_nowait", (PyCFunction)channel_recv_nowait, METH_NOARGS, channel_recv_nowait_doc },
	{ "recv_many", (PyCFunction)(void (*)(void))channel_recv_many, METH_FASTCALL | METH_KEYWORDS,
	  channel_recv_many_doc },
	{ "recv_into", (PyCFunction)(void (*)(void))channel_recv_into, METH_FASTCALL | METH_KEYWORDS,
	  channel_recv_into_doc },
	{ "read", (PyCFunction)(void (*)(void))channel_read, METH_FASTCALL | METH_KEYWORDS, channel_read_doc },
	{ "recv_bytes", (PyCFunction)(void (*)(void))channel_recv_bytes, METH_FASTCALL | METH_KEYWORDS,
	  channel_recv_bytes_doc },
	{ "close", (PyCFunction)channel_close, METH_NOARGS, channel_close_doc },
	{ "stats", (PyCFunction)channel_stats, METH_NOARGS, channel_stats_doc },
	{ "fileno", (PyCFunction)channel_fileno, METH_NOARGS, channel_fileno_doc },
	{ "reclaim_dead", (PyCFunction)channel_reclaim_dead, METH_NOARGS, channel_reclaim_doc },
	{ "__reduce__", (PyCFunction)channel_reduce, METH_NOARGS, channel_reduce_doc },
	{ NULL },
};

static PyGetSetDef channel_getset[] = {
	{ "record_size", (getter)channel_get_record_size, NULL, "Bytes per record.", NULL },
	{ "capacity", (getter)channel_get_capacity, NULL, "Records per producer ring (a power of two).", NULL },
	{ "max_producers", (getter)channel_get_max_producers, NULL, "Producer slots (rings).", NULL },
	{ "slab_size", (getter)channel_get_slab_size, NULL, "Bytes per slab (0: no slab pool).", NULL },
	{ "slabs", (getter)channel_get_slabs, NULL, "Slabs in the pool (0: none).", NULL },
	{ "name", (getter)channel_get_name, NULL, "The shm name ('/NAME'), or None for an anonymous channel.", NULL },
	{ "closed", (getter)channel_get_closed, NULL, "True once the channel was closed (by any process).", NULL },
	{ NULL },
};

static PyMemberDef channel_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(ChannelObject, weakrefs), READONLY },
	{ NULL },
};

static PyType_Slot channel_slots[] = {
	{ Py_tp_doc, (void *)channel_doc },
	{ Py_tp_new, channel_new },
	{ Py_tp_dealloc, channel_dealloc },
	{ Py_tp_repr, channel_repr },
	{ Py_tp_methods, channel_methods },
	{ Py_tp_getset, channel_getset },
	{ Py_tp_members, channel_members },
	{ Py_tp_iter, PyObject_SelfIter },
	{ Py_tp_iternext, channel_iternext },
	{ Py_sq_length, channel_len },
	{ Py_mp_length, channel_len },
	{ Py_nb_bool, always_true },
	{ 0, NULL },
};

PyType_Spec channel_spec = {
	.name = "ringmpsc.Channel",
	.basicsize = sizeof(ChannelObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = channel_slots,
};
