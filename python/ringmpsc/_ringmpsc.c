/*
 * ringmpsc._ringmpsc — the CPython binding of the C core (csrc/).
 *
 * Shape (as CPython's own _queue and mmap modules do it): heap types made with
 * PyType_FromModuleAndSpec, every exception and type in module state, multi-phase
 * init, no process globals.
 *
 * Blocking: every call first tries the C operation once with a zero timeout while
 * holding the GIL (pure memory operations, no system call unless a peer sleeps).
 * Only when that would block does it release the GIL, poll for up to SPIN_NS
 * (yielding the CPU between polls, see spin_op), then wait in slices of at most
 * SLICE_NS, running PyErr_CheckSignals() between slices; channels are opened with
 * RMPSC_OPEN_INTERRUPTIBLE so a signal also cuts a slice short. Ctrl-C thus raises
 * KeyboardInterrupt within one slice at worst, at once when the signal lands on the
 * waiting (main) thread.
 *
 * Threads: the C core lets one thread at a time use a producer handle or the
 * consumer side of a channel handle. Each Producer and each Channel (consumer side)
 * has a lock (hlock: its state changes only under the GIL, so an uncontended
 * acquire and release are a few plain loads and stores). A thread never waits for
 * it while holding the GIL, so a thread holding it can never wait for the GIL held
 * by a thread waiting for it. An open Reservation (producer) or ReadView (consumer)
 * keeps its lock until it is committed/consumed, aborted or freed; the owning
 * thread calling into the same object meanwhile gets RuntimeError instead of a
 * self-deadlock.
 *
 * Calls: the hot methods use METH_FASTCALL | METH_KEYWORDS with a small parser
 * (fast_args) and take an exact bytes argument in place (get_data): no argument
 * tuple, keyword dict or buffer export per call.
 *
 * Fork: the package registers _after_fork_child with os.register_at_fork; it bumps
 * a generation in module state. A lock of an older generation is reset (a parent
 * thread may have held it at fork time), and a Producer made in an older
 * generation raises Error (the C core would return RMPSC_EFORKED as well).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <structmember.h>

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ringmpsc.h"

#define SLICE_NS     (50 * 1000 * 1000LL)  /* longest uninterrupted GIL-free wait */
#define BIG_COPY     (256 * 1024)          /* copies larger than this release the GIL */
#define SPIN_NS      (20 * 1000LL)         /* GIL-free polling before a blocking call first sleeps */
#define OP_AGAIN     1000                  /* an op made progress; call it again */
#define RC_PYERR     (-1000)               /* a Python exception is set */
#define OPEN_FLAGS   RMPSC_OPEN_INTERRUPTIBLE

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#else
#define ALWAYS_INLINE inline
#define NOINLINE
#define likely(x)   (x)
#define unlikely(x) (x)
#endif

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *compat_newref(PyObject *o)
{
	Py_INCREF(o);
	return o;
}
#define Py_NewRef(o) compat_newref((PyObject *)(o))
#endif

/* A strong reference to a weakref's target, or NULL (no exception) if it died. */
static PyObject *weakref_get(PyObject *ref)
{
#if PY_VERSION_HEX >= 0x030D0000
	PyObject *o = NULL;
	if (PyWeakref_GetRef(ref, &o) < 0)
		PyErr_Clear();
	return o;
#else
	PyObject *o = PyWeakref_GetObject(ref);
	if (!o || o == Py_None)
		return NULL;
	Py_INCREF(o);
	return o;
#endif
}

typedef struct {
	PyObject *Error;
	PyObject *Full;
	PyObject *Empty;
	PyObject *Closed;
	PyObject *TooManyProducers;
	PyObject *ConsumerBusy;
	PyObject *CorruptRegion;
	PyTypeObject *ChannelType;
	PyTypeObject *ProducerType;
	PyTypeObject *ReservationType;
	PyTypeObject *ReadViewType;
	PyObject *str_release;    /* interned "release" */
	unsigned long fork_gen;   /* bumped in a forked child */
} modstate;

static inline modstate *state_of_type(PyTypeObject *tp)
{
	return (modstate *)PyType_GetModuleState(tp);
}

#define STATE(obj) state_of_type(Py_TYPE(obj))

/* ------------------------------------------------------------------------- */
/* Time and deadlines. */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct {
	int64_t timeout;  /* < 0 forever, 0 try once, > 0 ns */
	int64_t at;       /* absolute CLOCK_MONOTONIC deadline when timeout > 0 */
} deadline_t;

static deadline_t deadline_make(int64_t timeout)
{
	deadline_t d = { timeout, 0 };
	if (timeout > 0) {
		int64_t now = now_ns();
		d.at = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
	}
	return d;
}

/* The timeout to pass to the next C wait: 1 and *slice > 0 while time is left,
 * 0 when the deadline has passed or the call may not block at all. */
static int deadline_next(const deadline_t *d, int64_t *slice)
{
	if (d->timeout == 0)
		return 0;
	if (d->timeout < 0) {
		*slice = SLICE_NS;
		return 1;
	}
	int64_t left = d->at - now_ns();
	if (left <= 0)
		return 0;
	*slice = left < SLICE_NS ? left : SLICE_NS;
	return 1;
}

/* timeout=None -> forever, a number of seconds >= 0 otherwise. */
static int parse_timeout(PyObject *o, int64_t *out)
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

/* An int argument in [lo, hi]; TypeError / ValueError naming the argument. */
static int parse_int(PyObject *o, const char *name, long long lo, long long hi, long long *out)
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

/* None -> dflt, else an int in [1, hi]. */
static int parse_count(PyObject *o, const char *name, long long dflt, long long hi, long long *out)
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

/* A C string from a str name argument. */
static const char *parse_name(PyObject *o, const char *argname)
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

/*
 * A contiguous bytes-like argument; release it with data_release(). An exact bytes
 * object is used in place without a buffer export: it is immutable, and the caller's
 * reference keeps it alive for the whole call, GIL-free waits included.
 */
static int get_data(PyObject *o, Py_buffer *b, int flags, const char *argname)
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

static inline void data_release(Py_buffer *b)
{
	if (b->obj)
		PyBuffer_Release(b);
}

/* ------------------------------------------------------------------------- */
/* The one mapping of the C error vocabulary to Python exceptions. */

enum side { ON_SEND, ON_RECV, ON_SLAB, ON_OTHER };

/*
 * Raise the exception for C result `rc` (< 0). `err` is errno right after the
 * failing call (RMPSC_ESYS). Full/Empty/Closed get fixed messages: the C core
 * does not set rmpsc_last_error() for every would-block or close return.
 */
static void raise_rc(modstate *st, int rc, int err, enum side side, PyObject *name)
{
	const char *msg = rmpsc_last_error();
	switch (rc) {
	case RC_PYERR:
		return; /* already set */
	case RMPSC_EFULL:
		PyErr_SetString(st->Full, side == ON_SLAB ? "slab pool exhausted" : "ring full");
		return;
	case RMPSC_EEMPTY:
		PyErr_SetString(st->Empty, "no record available");
		return;
	case RMPSC_ETIMEDOUT:
		if (side == ON_RECV)
			PyErr_SetString(st->Empty, "no record within the timeout");
		else
			PyErr_SetString(st->Full, side == ON_SLAB ? "no free slab within the timeout"
								   : "no space within the timeout");
		return;
	case RMPSC_ECLOSED:
		PyErr_SetString(st->Closed, side == ON_RECV ? "channel is closed and drained" : "channel is closed");
		return;
	case RMPSC_ENOSLOT:
		PyErr_SetString(st->TooManyProducers, msg);
		return;
	case RMPSC_ECONSUMER:
		PyErr_SetString(st->ConsumerBusy, msg);
		return;
	case RMPSC_EINVAL:
		PyErr_SetString(PyExc_ValueError, msg);
		return;
	case RMPSC_ECORRUPT:
		PyErr_SetString(st->CorruptRegion, msg);
		return;
	case RMPSC_ESYS: {
		PyObject *exc = name && name != Py_None
			? PyObject_CallFunction(PyExc_OSError, "isO", err, msg, name)
			: PyObject_CallFunction(PyExc_OSError, "is", err, msg);
		if (exc) {
			PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
			Py_DECREF(exc);
		}
		return;
	}
	case RMPSC_EFORKED:
		PyErr_SetString(st->Error, msg);
		return;
	case RMPSC_EINTR:
		errno = EINTR;
		PyErr_SetFromErrno(PyExc_InterruptedError);
		return;
	default:
		PyErr_Format(st->Error, "ringmpsc error %d (%s): %s", rc, rmpsc_strerror(rc), msg);
		return;
	}
}

/* ------------------------------------------------------------------------- */
/* Running a C operation that may block. */

typedef int (*op_fn)(void *ctx, int64_t timeout_ns);

static inline int would_block(int rc)
{
	return rc == RMPSC_EFULL || rc == RMPSC_EEMPTY || rc == OP_AGAIN;
}

/*
 * Without the GIL: poll the op with a zero timeout for up to SPIN_NS (less if the
 * deadline comes first), yielding the CPU between polls. Returns the first result
 * that would not block, or the last would-block result.
 *
 * Why: across processes the peer is usually about to publish (a Python-level send
 * or recv takes well under a microsecond), while a futex sleep costs tens of
 * microseconds until the sleeper runs again plus a system call on the peer's hot
 * path to wake it. The C core's own wait also polls before it sleeps, but with
 * pause instructions, holding the CPU; yielding instead hands the CPU to the
 * process that frees the space or publishes the data when the machine is
 * oversubscribed (4 producer processes and a consumer on 2 cores: 4 producers ->
 * 1 consumer per-record went from a median of 2.7 to 4.9 M records/s here), and
 * keeps the polls apart (a tight loop of polls keeps pulling the ring's cache
 * lines away from the peer). It happens once per blocking call and is bounded: an
 * idle consumer still goes to sleep after SPIN_NS (plus the core's own poll).
 */
static NOINLINE int spin_op(op_fn fn, void *ctx, const deadline_t *d, int rc)
{
	int64_t until = now_ns() + SPIN_NS;
	if (d->timeout > 0 && d->at < until)
		until = d->at;
	for (unsigned i = 1;; i++) {
		sched_yield();
		errno = 0;
		rc = fn(ctx, 0);
		if (!would_block(rc) || ((i & 3) == 0 && now_ns() >= until))
			return rc;
	}
}

/*
 * Try once with the GIL held; if that would block, poll a little and then wait in
 * slices, with the GIL released. Returns the op's result (>= 0), an RMPSC_E* code
 * (ETIMEDOUT when the deadline passed, EFULL/EEMPTY when the call may not block),
 * or RC_PYERR. *err receives errno after the last C call. Inlined into each
 * caller, so the first (usually the only) try is a direct call.
 */
static ALWAYS_INLINE int run_op(op_fn fn, void *ctx, const deadline_t *d, int *err)
{
	errno = 0;
	int rc = fn(ctx, 0);
	*err = errno;
	if (!would_block(rc))
		return rc;
	int wb = rc == OP_AGAIN ? RMPSC_EFULL : rc;
	int spun = 0;
	for (;;) {
		int64_t slice;
		if (!deadline_next(d, &slice))
			return d->timeout == 0 ? wb : RMPSC_ETIMEDOUT;
		int e;
		Py_BEGIN_ALLOW_THREADS
		rc = OP_AGAIN;
		if (!spun) {
			rc = spin_op(fn, ctx, d, rc);
			spun = 1;
		}
		if (would_block(rc)) {
			errno = 0;
			rc = fn(ctx, slice);
		}
		e = errno;
		Py_END_ALLOW_THREADS
		*err = e;
		if (rc == RMPSC_ETIMEDOUT || rc == RMPSC_EINTR || would_block(rc)) {
			if (PyErr_CheckSignals() < 0)
				return RC_PYERR;
			continue; /* the deadline is checked at the top */
		}
		return rc;
	}
}

/* ------------------------------------------------------------------------- */
/* Per-object locks. */

/*
 * A lock whose state only changes with the GIL held, so taking a free one is a
 * load and a store and giving it back a store and a load: no atomic instruction,
 * no system call. (A PyThread lock cost a sem_trywait, a sem_post and, on CPython
 * 3.11, a clock_gettime per acquire even when it never waited; the locked
 * instructions also wait for the store buffer to drain, which holds the stores to
 * the shared ring. Together the most expensive part of a one-record send or recv.)
 *
 * A thread that finds the lock held registers as a waiter, notes `seq`, releases
 * the GIL and sleeps on `seq` (a private futex) for at most one slice; the holder's
 * release, made with the GIL held, bumps `seq` and wakes the sleepers when there
 * are any. A release between the note and the sleep changes `seq`, so the sleep
 * returns at once: no lost wake-up. The waiter then takes the GIL back and tries
 * again; signals are checked between slices. A holder never waits for this lock
 * while holding the GIL, and a waiter never holds the GIL while it sleeps, so a
 * holder that needs the GIL to finish can always get it.
 *
 * The module does not declare Py_mod_gil, so free-threaded builds keep the GIL on
 * while it is loaded, and the GIL remains what serializes these fields.
 */
typedef struct {
	unsigned long owner;   /* thread ident of the holder, 0 when free */
	uint32_t seq;          /* bumped by a release that has waiters (futex word) */
	uint32_t waiters;      /* threads between noting seq and re-checking */
	unsigned long gen;     /* fork generation the lock was made in */
} hlock;

static int hlock_init(hlock *l, modstate *st)
{
	l->owner = 0;
	l->seq = 0;
	l->waiters = 0;
	l->gen = st->fork_gen;
	return 0;
}

static void hlock_free(hlock *l)
{
	(void)l;
}

static NOINLINE int hlock_acquire_slow(hlock *l, modstate *st, const deadline_t *d, const char *busy_msg)
{
	if (l->gen != st->fork_gen) {
		/* Inherited through fork: the holder may be a thread that does not exist
		 * here. This process has one thread now, so nobody waits on the old one. */
		l->owner = 0;
		l->waiters = 0;
		l->gen = st->fork_gen;
	}
	unsigned long me = PyThread_get_thread_ident();
	if (likely(l->owner == 0)) {
		l->owner = me;
		return 0;
	}
	if (l->owner == me) {
		PyErr_SetString(PyExc_RuntimeError, busy_msg);
		return -1;
	}
	for (;;) {
		int64_t slice;
		if (!deadline_next(d, &slice))
			return 1;
		uint32_t seen = __atomic_load_n(&l->seq, __ATOMIC_RELAXED);
		l->waiters++;
		Py_BEGIN_ALLOW_THREADS
		struct timespec ts = { (time_t)(slice / 1000000000), (long)(slice % 1000000000) };
		syscall(SYS_futex, &l->seq, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
		Py_END_ALLOW_THREADS
		l->waiters--;
		if (l->owner == 0) {
			l->owner = me;
			return 0;
		}
		if (PyErr_CheckSignals() < 0)
			return -1;
	}
}

/* Returns 0 acquired, 1 deadline passed, -1 with an exception set. */
static ALWAYS_INLINE int hlock_acquire(hlock *l, modstate *st, const deadline_t *d, const char *busy_msg)
{
	if (likely(l->owner == 0 && l->gen == st->fork_gen)) {
		l->owner = PyThread_get_thread_ident();
		return 0;
	}
	return hlock_acquire_slow(l, st, d, busy_msg);
}

static inline void hlock_release(hlock *l)
{
	l->owner = 0;
	if (unlikely(l->waiters)) {
		__atomic_store_n(&l->seq, l->seq + 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, &l->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	}
}

/* ------------------------------------------------------------------------- */
/* Objects. */

typedef struct {
	PyObject_HEAD
	rmpsc_channel *ch;
	PyObject *name;              /* str or None */
	struct rmpsc_config cfg;
	hlock lock;                  /* consumer side of this handle */
	int deferred_rc;             /* an error met after records were already taken: */
	char deferred_msg[256];      /* raised by the next consumer call (under the lock) */
	PyObject *weakrefs;
} ChannelObject;

typedef struct {
	PyObject_HEAD
	rmpsc_producer *p;           /* NULL once closed */
	ChannelObject *chan;
	hlock lock;
	unsigned long gen;           /* fork generation at registration */
	long pid;                    /* registering process */
	uint32_t slot;
	PyObject *weakrefs;
} ProducerObject;

/* An open reservation (Producer) or readable span (Channel): one struct, two types. */
typedef struct {
	PyObject_HEAD
	PyObject *owner;             /* ProducerObject or ChannelObject */
	char *ptr;
	Py_ssize_t k;                /* records granted / readable */
	Py_ssize_t nbytes;
	Py_ssize_t exports;          /* live buffer exports */
	PyObject *view;              /* weakref to the memoryview __enter__ returned */
	uint32_t slot;
	int done;
} SpanObject;

static const char CONSUMER_BUSY[] =
	"this thread holds the channel's consumer side (an open read() view): consume or cancel it first";
static const char PRODUCER_BUSY[] =
	"this thread holds the producer (an open reservation): commit or abort it first";

/* ------------------------------------------------------------------------- */
/* Channel: construction. */

static PyObject *channel_wrap(modstate *st, rmpsc_channel *c, PyObject *name)
{
	ChannelObject *self = (ChannelObject *)st->ChannelType->tp_alloc(st->ChannelType, 0);
	if (!self) {
		rmpsc_channel_release(c);
		return NULL;
	}
	self->ch = c;
	rmpsc_channel_config(c, &self->cfg);
	if (hlock_init(&self->lock, st) < 0) {
		Py_DECREF(self);
		return NULL;
	}
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

static PyObject *channel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "record_size", "capacity", "max_producers", "name", "slab_size", "slabs",
				  "full_fences", NULL };
	modstate *st = state_of_type(type);
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
	return channel_wrap(st, c, NULL);
}

static PyObject *channel_open(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "name", NULL };
	modstate *st = state_of_type(type);
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
	return channel_wrap(st, c, NULL);
}

static PyObject *channel_from_fd(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "fd", "name", NULL };
	modstate *st = state_of_type(type);
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
	return channel_wrap(st, c, o_name);
}

static void channel_dealloc(ChannelObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->ch)
		rmpsc_channel_release(self->ch); /* gives the consumer role up if held */
	hlock_free(&self->lock);
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

static PyObject *channel_fileno(ChannelObject *self, PyObject *unused)
{
	return PyLong_FromLong(rmpsc_channel_fd(self->ch));
}

static PyObject *channel_close(ChannelObject *self, PyObject *unused)
{
	rmpsc_channel_close(self->ch); /* stores and futex wakes only: never blocks */
	Py_RETURN_NONE;
}

static PyObject *self_enter(PyObject *self, PyObject *unused)
{
	return Py_NewRef(self);
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
	return PyUnicode_FromFormat("<ringmpsc.Channel name=%R record_size=%u capacity=%u max_producers=%u%s%s>",
				    self->name, self->cfg.record_size, self->cfg.capacity, self->cfg.max_producers,
				    self->cfg.slab_count ? " slabs" : "",
				    rmpsc_channel_is_closed(self->ch) ? " closed" : "");
}

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
		raise_rc(STATE(self), w, 0, ON_OTHER, NULL);
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

static PyObject *channel_reclaim_dead(ChannelObject *self, PyObject *unused)
{
	int n;
	Py_BEGIN_ALLOW_THREADS
	n = rmpsc_reclaim_dead(self->ch);
	Py_END_ALLOW_THREADS
	if (n < 0) {
		raise_rc(STATE(self), n, errno, ON_OTHER, NULL);
		return NULL;
	}
	return PyLong_FromLong(n);
}

/* ------------------------------------------------------------------------- */
/* Channel: producers. */

static PyObject *channel_producer(ChannelObject *self, PyObject *unused)
{
	modstate *st = STATE(self);
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
	if (hlock_init(&po->lock, st) < 0) {
		Py_DECREF(po);
		return NULL;
	}
	return (PyObject *)po;
}

/* ------------------------------------------------------------------------- */
/* Channel: consumer methods. */

/* Take the consumer lock by the deadline. 0 ok; -1 with an exception (Empty on timeout). */
static int consumer_lock(ChannelObject *self, modstate *st, const deadline_t *d)
{
	int r = hlock_acquire(&self->lock, st, d, CONSUMER_BUSY);
	if (r == 1)
		PyErr_SetString(st->Empty, d->timeout == 0 ? "no record available (another thread is consuming)"
							   : "no record within the timeout (another thread is consuming)");
	if (r != 0)
		return -1;
	if (self->deferred_rc) {
		PyErr_SetString(self->deferred_rc == RMPSC_ECORRUPT ? st->CorruptRegion : st->Error, self->deferred_msg);
		self->deferred_rc = 0;
		hlock_release(&self->lock);
		return -1;
	}
	return 0;
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
static int recv_one(ChannelObject *self, modstate *st, char *buf, const deadline_t *d)
{
	if (consumer_lock(self, st, d) < 0)
		return -1;
	struct op_recv o = { self->ch, buf, 1, 0 };
	int err;
	int rc = run_op(op_recv, &o, d, &err);
	hlock_release(&self->lock);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_RECV, NULL);
		return -1;
	}
	return 0;
}

static PyObject *recv_record(ChannelObject *self, int64_t timeout)
{
	modstate *st = STATE(self);
	deadline_t d = deadline_make(timeout);
	PyObject *b = PyBytes_FromStringAndSize(NULL, self->cfg.record_size);
	if (!b)
		return NULL;
	/* The new bytes object is ours alone until returned: filling it without the
	 * GIL is safe (os.read does the same). */
	if (recv_one(self, st, PyBytes_AS_STRING(b), &d) < 0) {
		Py_DECREF(b);
		return NULL;
	}
	return b;
}

static const char *const kw_timeout[] = { "timeout" };
static const char *const kw_data_timeout[] = { "data", "timeout" };
static const char *const kw_max_timeout[] = { "max_records", "timeout" };
static const char *const kw_buffer_timeout[] = { "buffer", "timeout" };
static const char *const kw_n_timeout[] = { "n", "timeout" };
static const char *const kw_k[] = { "k" };

static PyObject *channel_recv(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[1];
	int64_t t;
	if (fast_args("recv", args, nargs, kwnames, kw_timeout, 0, 1, a) < 0 || parse_timeout(a[0], &t) < 0)
		return NULL;
	return recv_record(self, t);
}

static PyObject *channel_recv_nowait(ChannelObject *self, PyObject *unused)
{
	return recv_record(self, 0);
}

static PyObject *channel_iternext(ChannelObject *self)
{
	PyObject *r = recv_record(self, -1);
	if (!r && PyErr_ExceptionMatches(STATE(self)->Closed))
		PyErr_Clear(); /* closed and drained: StopIteration */
	return r;
}

/*
 * Copy up to `want` records that are available now. One rmpsc_recv may stop early:
 * the consumer's sweep skips rings that were idle lately (a fairness/speed trade-off
 * in the core), and a zero-timeout call does one full sweep before giving up. So
 * call again until `want` or nothing more. Touches no Python object.
 */
static int recv_available(ChannelObject *self, char *buf, size_t want, size_t rs, int *err)
{
	size_t got = 0;
	int rc = 0;
	while (got < want) {
		errno = 0;
		rc = rmpsc_recv(self->ch, buf + got * rs, want - got, 0);
		*err = errno;
		if (rc <= 0)
			break;
		got += (size_t)rc;
	}
	if (got && rc < 0 && rc != RMPSC_EEMPTY && rc != RMPSC_ECLOSED) {
		/* Records were taken: return them, report this on the next call. */
		self->deferred_rc = rc;
		snprintf(self->deferred_msg, sizeof self->deferred_msg, "%s", rmpsc_last_error());
	}
	return got ? (int)got : rc;
}

static PyObject *channel_recv_many(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
				   PyObject *kwnames)
{
	modstate *st = STATE(self);
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
	deadline_t d = deadline_make(t);
	if (consumer_lock(self, st, &d) < 0)
		return NULL;
	int rc, err = 0;
	PyObject *b = NULL;
	int must_wait = 0;
	for (;;) {
		uint64_t pending = rmpsc_pending(self->ch);
		if (pending == 0 || must_wait) {
			rc = run_op(op_wait_readable, self->ch, &d, &err);
			if (rc < 0)
				break;
			pending = rmpsc_pending(self->ch);
		}
		long long want = pending < 1 ? 1 : pending > (uint64_t)max ? max : (long long)pending;
		size_t rs = self->cfg.record_size;
		b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(want * rs));
		if (!b) {
			hlock_release(&self->lock);
			return NULL;
		}
		char *buf = PyBytes_AS_STRING(b);
		if ((size_t)want * rs > BIG_COPY) {
			Py_BEGIN_ALLOW_THREADS
			rc = recv_available(self, buf, (size_t)want, rs, &err);
			Py_END_ALLOW_THREADS
		} else {
			rc = recv_available(self, buf, (size_t)want, rs, &err);
		}
		if (rc > 0) {
			if (rc < want && _PyBytes_Resize(&b, (Py_ssize_t)rc * (Py_ssize_t)rs) < 0) {
				hlock_release(&self->lock);
				return NULL;
			}
			break;
		}
		Py_CLEAR(b);
		if (rc != RMPSC_EEMPTY)
			break;
		if (d.timeout == 0 || must_wait)
			break;
		/* Readable a moment ago and gone now cannot happen with the lock held;
		 * wait again rather than trust that. */
		must_wait = 1;
	}
	hlock_release(&self->lock);
	if (!b)
		raise_rc(st, rc, err, ON_RECV, NULL);
	return b;
}

static PyObject *channel_recv_into(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
				   PyObject *kwnames)
{
	modstate *st = STATE(self);
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
	deadline_t d = deadline_make(t);
	if (consumer_lock(self, st, &d) < 0) {
		data_release(&view);
		return NULL;
	}
	/* The exported buffer cannot move or shrink while we hold the export. */
	struct op_recv o = { self->ch, view.buf, max, 0 };
	int err;
	int rc = run_op(op_recv, &o, &d, &err);
	if (rc > 0 && (size_t)o.got < max) { /* top up with what else is available now */
		size_t rs = self->cfg.record_size;
		int more = recv_available(self, (char *)view.buf + (size_t)o.got * rs, max - (size_t)o.got, rs, &err);
		if (more > 0)
			o.got += more;
	}
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

static PyObject *channel_read(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *a[2];
	int64_t t;
	long long max;
	if (fast_args("read", args, nargs, kwnames, kw_max_timeout, 0, 2, a) < 0 ||
	    parse_count(a[0], "max_records", self->cfg.capacity, self->cfg.capacity, &max) < 0 ||
	    parse_timeout(a[1], &t) < 0)
		return NULL;
	deadline_t d = deadline_make(t);
	if (consumer_lock(self, st, &d) < 0)
		return NULL;
	struct op_read o = { self->ch, (size_t)max, NULL, 0, 0 };
	int err;
	int rc = run_op(op_read, &o, &d, &err);
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

static PyObject *channel_recv_bytes(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
				    PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *a[1];
	int64_t t;
	if (fast_args("recv_bytes", args, nargs, kwnames, kw_timeout, 0, 1, a) < 0 || parse_timeout(a[0], &t) < 0)
		return NULL;
	if (!self->cfg.slab_count) {
		PyErr_SetString(PyExc_ValueError, "recv_bytes: this channel has no slab pool (created with slabs=0)");
		return NULL;
	}
	deadline_t d = deadline_make(t);
	char small[64];
	char *rec = self->cfg.record_size <= sizeof small ? small : PyMem_Malloc(self->cfg.record_size);
	if (!rec)
		return PyErr_NoMemory();
	PyObject *result = NULL;
	if (recv_one(self, st, rec, &d) < 0)
		goto out;
	uint32_t h = rmpsc_record_handle(rec);
	int64_t len = rmpsc_slab_len(self->ch, h);
	const char *src = rmpsc_slab_ptr(self->ch, h);
	if (len < 0) {
		raise_rc(st, (int)len, 0, ON_RECV, NULL);
		goto out;
	}
	if (!src) {
		PyErr_Format(st->CorruptRegion, "recv_bytes: record carries no valid slab handle (%u)", h);
		goto out;
	}
	result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
	if (result) {
		char *dst = PyBytes_AS_STRING(result);
		if (len > BIG_COPY) {
			Py_BEGIN_ALLOW_THREADS
			memcpy(dst, src, (size_t)len);
			Py_END_ALLOW_THREADS
		} else {
			memcpy(dst, src, (size_t)len);
		}
	}
	int rc = rmpsc_slab_free(self->ch, h); /* free it even if the copy failed */
	if (rc < 0 && result) {
		Py_CLEAR(result);
		raise_rc(st, rc, 0, ON_RECV, NULL);
	}
out:
	if (rec != small)
		PyMem_Free(rec);
	return result;
}

/* ------------------------------------------------------------------------- */
/* Producer. */

static PyObject *no_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances directly%s", type->tp_name,
		     strcmp(type->tp_name, "ringmpsc.Producer") == 0 ? ": use Channel.producer()" : "");
	return NULL;
}

static void producer_dealloc(ProducerObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->p)
		rmpsc_producer_close(self->p); /* a handle inherited by fork is only freed */
	hlock_free(&self->lock);
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
static int producer_lock(ProducerObject *self, modstate *st, const deadline_t *d)
{
	if (producer_usable(self, st) < 0)
		return -1;
	int r = hlock_acquire(&self->lock, st, d, PRODUCER_BUSY);
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
	uint32_t rs = self->chan->cfg.record_size;
	if ((size_t)b.len > rs) {
		PyErr_Format(PyExc_ValueError, "data is %zd bytes, longer than record_size %u", b.len, rs);
		data_release(&b);
		return NULL;
	}
	deadline_t d = deadline_make(timeout);
	if (producer_lock(self, st, &d) < 0) {
		data_release(&b);
		return NULL;
	}
	struct op_send o = { self->p, b.buf, (size_t)b.len };
	int err;
	int rc = run_op(op_send, &o, &d, &err);
	hlock_release(&self->lock);
	data_release(&b);
	if (rc < 0) {
		raise_rc(st, rc, err, ON_SEND, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *producer_send(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[2];
	int64_t t;
	if (fast_args("send", args, nargs, kwnames, kw_data_timeout, 1, 2, a) < 0 || parse_timeout(a[1], &t) < 0)
		return NULL;
	return do_send(self, a[0], t);
}

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
	uint32_t rs = self->chan->cfg.record_size;
	if ((size_t)b.len % rs) {
		PyErr_Format(PyExc_ValueError, "data is %zd bytes, not a multiple of record_size %u", b.len, rs);
		data_release(&b);
		return NULL;
	}
	struct op_many o = { NULL, b.buf, (size_t)b.len / rs, 0, rs };
	deadline_t d = deadline_make(t);
	if (producer_lock(self, st, &d) < 0) {
		data_release(&b);
		return NULL;
	}
	o.p = self->p;
	int rc = 0, err = 0;
	if (o.count)
		rc = run_op(op_send_many, &o, &d, &err);
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

static PyObject *producer_reserve(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
				  PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *a[2];
	int64_t t;
	long long n;
	uint32_t cap = self->chan->cfg.capacity;
	if (fast_args("reserve", args, nargs, kwnames, kw_n_timeout, 0, 2, a) < 0 ||
	    parse_count(a[0], "n", 1, cap, &n) < 0 || parse_timeout(a[1], &t) < 0)
		return NULL;
	deadline_t d = deadline_make(t);
	if (producer_lock(self, st, &d) < 0)
		return NULL;
	struct op_reserve o = { self->p, (size_t)n, NULL, 0 };
	int err;
	int rc = run_op(op_reserve, &o, &d, &err);
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
	r->nbytes = (Py_ssize_t)o.got * self->chan->cfg.record_size;
	r->slot = self->slot;
	return (PyObject *)r;
}

struct op_slab_alloc {
	rmpsc_channel *ch;
	uint32_t handle;
};

static int op_slab_alloc(void *ctx, int64_t t)
{
	struct op_slab_alloc *o = ctx;
	return rmpsc_slab_alloc(o->ch, t, &o->handle);
}

struct op_send_slab {
	rmpsc_producer *p;
	uint32_t handle;
};

static int op_send_slab(void *ctx, int64_t t)
{
	struct op_send_slab *o = ctx;
	return rmpsc_producer_send_slab(o->p, o->handle, t);
}

static PyObject *producer_send_bytes(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
				     PyObject *kwnames)
{
	modstate *st = STATE(self);
	PyObject *av[2];
	int64_t t;
	if (fast_args("send_bytes", args, nargs, kwnames, kw_data_timeout, 1, 2, av) < 0 ||
	    parse_timeout(av[1], &t) < 0)
		return NULL;
	PyObject *data = av[0];
	const struct rmpsc_config *cfg = &self->chan->cfg;
	if (producer_usable(self, st) < 0)
		return NULL;
	if (!cfg->slab_count) {
		PyErr_SetString(PyExc_ValueError, "send_bytes: this channel has no slab pool (created with slabs=0)");
		return NULL;
	}
	Py_buffer b;
	if (get_data(data, &b, PyBUF_SIMPLE, "data") < 0)
		return NULL;
	if ((size_t)b.len > cfg->slab_size) {
		PyErr_Format(PyExc_ValueError, "data is %zd bytes, longer than slab_size %u", b.len, cfg->slab_size);
		data_release(&b);
		return NULL;
	}
	deadline_t d = deadline_make(t);
	if (producer_lock(self, st, &d) < 0) {
		data_release(&b);
		return NULL;
	}
	rmpsc_channel *ch = self->chan->ch;
	struct op_slab_alloc a = { ch, RMPSC_INVALID_HANDLE };
	int err = 0;
	int rc = run_op(op_slab_alloc, &a, &d, &err);
	enum side side = ON_SLAB;
	if (rc >= 0) {
		char *dst = rmpsc_slab_ptr(ch, a.handle);
		if (b.len > BIG_COPY) {
			Py_BEGIN_ALLOW_THREADS
			memcpy(dst, b.buf, (size_t)b.len);
			Py_END_ALLOW_THREADS
		} else {
			memcpy(dst, b.buf, (size_t)b.len);
		}
		rc = rmpsc_slab_set_len(ch, a.handle, (uint32_t)b.len);
		if (rc >= 0) {
			struct op_send_slab s = { self->p, a.handle };
			rc = run_op(op_send_slab, &s, &d, &err);
			side = ON_SEND;
		}
		if (rc < 0)
			rmpsc_slab_free(ch, a.handle); /* never sent: back to the pool */
	}
	hlock_release(&self->lock);
	data_release(&b);
	if (rc < 0) {
		raise_rc(st, rc, err, side, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *producer_close(ProducerObject *self, PyObject *unused)
{
	modstate *st = STATE(self);
	if (!self->p)
		Py_RETURN_NONE;
	if (self->gen != st->fork_gen) {
		/* Inherited: free our copy of the handle, leave the parent's ring alone. */
		rmpsc_producer_close(self->p);
		self->p = NULL;
		Py_RETURN_NONE;
	}
	deadline_t d = deadline_make(-1);
	if (hlock_acquire(&self->lock, st, &d, PRODUCER_BUSY) != 0)
		return NULL;
	if (self->p) {
		rmpsc_producer_close(self->p);
		self->p = NULL;
	}
	hlock_release(&self->lock);
	Py_RETURN_NONE;
}

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

static PyObject *not_picklable(PyObject *self, PyObject *unused)
{
	PyErr_Format(PyExc_TypeError,
		     "cannot pickle '%.100s' objects: they are bound to one process; send the Channel and call "
		     "channel.producer() in the receiving process",
		     Py_TYPE(self)->tp_name);
	return NULL;
}

/* ------------------------------------------------------------------------- */
/* Reservation and ReadView (SpanObject). */

static int span_is_reservation(SpanObject *self)
{
	return Py_TYPE(self) == STATE(self)->ReservationType;
}

/* Finish the span: commit/consume n records (0 aborts/cancels). 0 or -1. */
static int span_finish(SpanObject *self, size_t n)
{
	modstate *st = STATE(self);
	int is_res = span_is_reservation(self);
	if (self->done) {
		PyErr_SetString(PyExc_ValueError, is_res ? "reservation is already committed or aborted"
							 : "read view is already consumed or cancelled");
		return -1;
	}
	/* The view handed out by __enter__ goes first; any other export blocks us. */
	if (self->view) {
		PyObject *v = weakref_get(self->view);
		if (v) {
			PyObject *r = PyObject_CallMethodNoArgs(v, st->str_release);
			Py_DECREF(v);
			if (r)
				Py_DECREF(r);
			else if (PyErr_ExceptionMatches(PyExc_BufferError))
				PyErr_Clear(); /* it has exports of its own: reported below */
			else
				return -1;
		}
	}
	if (self->exports > 0) {
		PyErr_Format(PyExc_BufferError,
			     "cannot %s: %zd view(s) of the %s are still exported (release them first)",
			     is_res ? (n ? "commit" : "abort") : (n ? "consume" : "cancel"), self->exports,
			     is_res ? "reservation" : "read view");
		return -1;
	}
	int rc;
	hlock *lock;
	if (is_res) {
		ProducerObject *p = (ProducerObject *)self->owner;
		if (p->gen != st->fork_gen) {
			PyErr_SetString(st->Error, "this reservation was inherited through fork");
			return -1;
		}
		rc = rmpsc_producer_commit(p->p, n);
		lock = &p->lock;
	} else {
		ChannelObject *c = (ChannelObject *)self->owner;
		if (c->lock.gen != st->fork_gen) {
			PyErr_SetString(st->Error, "this read view was inherited through fork");
			return -1;
		}
		rc = rmpsc_advance(c->ch, n);
		lock = &c->lock;
	}
	self->done = 1;
	hlock_release(lock);
	if (rc < 0) {
		raise_rc(st, rc, 0, ON_OTHER, NULL);
		return -1;
	}
	return 0;
}

static void span_dealloc(SpanObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	modstate *st = state_of_type(tp);
	if (!self->done && self->owner) {
		/* Dropped while open: abort / leave the records for the next read. */
		if (tp == st->ReservationType) {
			ProducerObject *p = (ProducerObject *)self->owner;
			if (p->gen == st->fork_gen) {
				rmpsc_producer_commit(p->p, 0);
				hlock_release(&p->lock);
			}
		} else {
			ChannelObject *c = (ChannelObject *)self->owner;
			if (c->lock.gen == st->fork_gen) {
				rmpsc_advance(c->ch, 0);
				hlock_release(&c->lock);
			}
		}
	}
	Py_XDECREF(self->view);
	Py_XDECREF(self->owner);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static int span_getbuffer(SpanObject *self, Py_buffer *view, int flags)
{
	if (self->done) {
		PyErr_SetString(PyExc_BufferError, span_is_reservation(self)
			? "reservation is already committed or aborted"
			: "read view is already consumed or cancelled");
		view->obj = NULL;
		return -1;
	}
	int readonly = !span_is_reservation(self);
	if (PyBuffer_FillInfo(view, (PyObject *)self, self->ptr, self->nbytes, readonly, flags) < 0)
		return -1;
	self->exports++;
	return 0;
}

static void span_releasebuffer(SpanObject *self, Py_buffer *view)
{
	self->exports--;
}

static PyObject *span_enter(SpanObject *self, PyObject *unused)
{
	if (self->done) {
		PyErr_SetString(PyExc_ValueError, "cannot enter a finished reservation or read view");
		return NULL;
	}
	PyObject *mv = PyMemoryView_FromObject((PyObject *)self);
	if (!mv)
		return NULL;
	PyObject *ref = PyWeakref_NewRef(mv, NULL);
	if (!ref) {
		Py_DECREF(mv);
		return NULL;
	}
	Py_XSETREF(self->view, ref);
	return mv;
}

static PyObject *span_exit(SpanObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs > 3) {
		PyErr_Format(PyExc_TypeError, "__exit__ expected at most 3 arguments, got %zd", nargs);
		return NULL;
	}
	PyObject *et = nargs > 0 ? args[0] : Py_None;
	if (self->done) /* finished by hand inside the block */
		Py_RETURN_FALSE;
	if (span_finish(self, et == Py_None ? (size_t)self->k : 0) < 0)
		return NULL;
	Py_RETURN_FALSE;
}

/* commit(k=None) / consume(k=None) */
static PyObject *span_commit(SpanObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *o_k;
	if (fast_args(span_is_reservation(self) ? "commit" : "consume", args, nargs, kwnames, kw_k, 0, 1, &o_k) < 0)
		return NULL;
	long long k = self->k;
	if (o_k && o_k != Py_None && parse_int(o_k, "k", 0, self->k, &k) < 0)
		return NULL;
	if (span_finish(self, (size_t)k) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *span_abort(SpanObject *self, PyObject *unused)
{
	if (span_finish(self, 0) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static Py_ssize_t span_len(SpanObject *self)
{
	return self->k;
}

static PyObject *span_get_nbytes(SpanObject *self, void *c)
{
	return PyLong_FromSsize_t(self->nbytes);
}
static PyObject *span_get_slot(SpanObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->slot);
}
static PyObject *span_get_done(SpanObject *self, void *c)
{
	return PyBool_FromLong(self->done);
}

static PyObject *span_repr(SpanObject *self)
{
	return PyUnicode_FromFormat("<%s records=%zd nbytes=%zd slot=%u%s>", Py_TYPE(self)->tp_name, self->k,
				    self->nbytes, self->slot, self->done ? " finished" : "");
}

/* ------------------------------------------------------------------------- */
/* Module functions. */

static PyObject *mod_unlink(PyObject *m, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "name", NULL };
	PyObject *o_name;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:unlink", kwlist, &o_name))
		return NULL;
	const char *name = parse_name(o_name, "name");
	if (!name)
		return NULL;
	int rc = rmpsc_unlink(name);
	if (rc < 0) {
		raise_rc(PyModule_GetState(m), rc, errno, ON_OTHER, o_name);
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *mod_after_fork_child(PyObject *m, PyObject *unused)
{
	modstate *st = PyModule_GetState(m);
	st->fork_gen++;
	Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
	long long code;
	if (parse_int(arg, "code", INT32_MIN, INT32_MAX, &code) < 0)
		return NULL;
	return PyUnicode_FromString(rmpsc_strerror((int)code));
}

/* ------------------------------------------------------------------------- */
/* Docstrings. */

PyDoc_STRVAR(channel_doc,
"Channel(record_size, capacity=4096, max_producers=16, *, name=None, slab_size=0, slabs=0)\n\
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

PyDoc_STRVAR(channel_open_doc,
"open($type, /, name)\n--\n\n\
Attach to an existing named channel. The region is validated first: a corrupt,\n\
truncated or incompatible one raises CorruptRegion; a missing one\n\
FileNotFoundError.");
PyDoc_STRVAR(channel_from_fd_doc,
"_from_fd($type, /, fd, name=None)\n--\n\n\
Attach to a channel by file descriptor (dup'ed; the caller keeps fd). Used when a\n\
Channel is unpickled by multiprocessing.");
PyDoc_STRVAR(channel_producer_doc,
"producer($self, /)\n--\n\n\
Register a producer in this process and return it. Each Producer owns one ring;\n\
raises TooManyProducers when all max_producers slots are held by live producers\n\
(slots of dead processes are reclaimed first), Closed if the channel is closed.");
PyDoc_STRVAR(channel_recv_doc,
"recv($self, /, timeout=None)\n--\n\n\
Receive one record (bytes of record_size). Blocks up to timeout seconds (None:\n\
forever, 0: never) and raises Empty when none arrived, Closed once the channel is\n\
closed and every committed record has been received.");
PyDoc_STRVAR(channel_recv_nowait_doc,
"recv_nowait($self, /)\n--\n\nrecv(timeout=0): raise Empty at once when no record is ready.");
PyDoc_STRVAR(channel_recv_many_doc,
"recv_many($self, /, max_records=None, timeout=None)\n--\n\n\
Wait (as recv) for at least one record, then return every record available, up\n\
to max_records, concatenated in one bytes object (a multiple of record_size).");
PyDoc_STRVAR(channel_recv_into_doc,
"recv_into($self, /, buffer, timeout=None)\n--\n\n\
Wait (as recv) for at least one record, then copy as many whole records as are\n\
available and fit into the writable buffer. Returns the number of records.");
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
PyDoc_STRVAR(channel_recv_bytes_doc,
"recv_bytes($self, /, timeout=None)\n--\n\n\
Receive one variable-length message sent with Producer.send_bytes (copied out of\n\
its slab, which then returns to the pool). Waits as recv.");
PyDoc_STRVAR(channel_close_doc,
"close($self, /)\n--\n\n\
Close the channel for every process. Sends fail with Closed from now on, blocked\n\
senders and receivers wake at once, and the consumer still receives every\n\
committed record before getting Closed. Idempotent. This process's handle stays\n\
usable (it is released when the object is freed). Channel is deliberately not a\n\
context manager: leaving a block should not close the channel for everyone.");
PyDoc_STRVAR(channel_stats_doc,
"stats($self, /)\n--\n\n\
A snapshot of the channel's figures: geometry, pending/committed/consumed counts,\n\
consumer_pid, closed, slab and reclaim counters, and 'producers': one dict per\n\
slot in use (slot, state, pid, alive, pending, committed, consumed).");
PyDoc_STRVAR(channel_fileno_doc, "fileno($self, /)\n--\n\nThe file descriptor of the region's mapping (owned by the channel).");
PyDoc_STRVAR(channel_reclaim_doc,
"reclaim_dead($self, /)\n--\n\n\
Reclaim the slots of producers whose process died (also done automatically on\n\
register and by the consumer). Returns the number of slots reclaimed.");
PyDoc_STRVAR(channel_reduce_doc, "Named channels pickle by name; anonymous ones only through multiprocessing.");
PyDoc_STRVAR(enter_doc, "__enter__($self, /)\n--\n\n");

PyDoc_STRVAR(producer_doc,
"A producer bound to one ring of a Channel, made by Channel.producer().\n\
\n\
Methods may be called from several threads (they take turns). A Producer belongs\n\
to the process that registered it: one inherited through fork raises Error, and\n\
Producers do not pickle. Close it (or use it as a context manager) to free its\n\
slot; its committed records stay readable.");
PyDoc_STRVAR(producer_send_doc,
"send($self, /, data, timeout=None)\n--\n\n\
Send one record: a bytes-like object of at most record_size bytes (the rest is\n\
zero-filled). Blocks while the ring is full, up to timeout seconds (None: forever,\n\
0: never), then raises Full. Raises Closed once the channel is closed.");
PyDoc_STRVAR(producer_send_nowait_doc,
"send_nowait($self, data, /)\n--\n\nsend(data, timeout=0): raise Full at once when the ring is full.");
PyDoc_STRVAR(producer_send_many_doc,
"send_many($self, /, data, timeout=None)\n--\n\n\
Send len(data) // record_size records from one bytes-like object (its length must\n\
be a multiple of record_size). Returns the number sent: all of them, or fewer only\n\
when the timeout expired or the channel closed part-way. Raises Full / Closed when\n\
none could be sent.");
PyDoc_STRVAR(producer_reserve_doc,
"reserve($self, /, n=1, timeout=None)\n--\n\n\
Reserve k (1 <= k <= n) contiguous records in the ring, fewer at the ring's wrap\n\
or when fewer are free, and return a Reservation to write them in place:\n\
\n\
    with p.reserve(8) as view:   # writable memoryview of k * record_size bytes\n\
        view[:4] = b'abcd'\n\
\n\
Committed on normal exit, aborted (nothing published) on an exception; the view\n\
is released when the block ends, and any other view of it still alive makes the\n\
commit fail with BufferError. Waits as send while the ring is full. Until the\n\
reservation ends, this producer's calls from other threads wait.");
PyDoc_STRVAR(producer_send_bytes_doc,
"send_bytes($self, /, data, timeout=None)\n--\n\n\
Send a variable-length message of up to slab_size bytes through the channel's slab\n\
pool (the record carries its handle). Waits up to timeout for a free slab and\n\
ring space, then raises Full.");
PyDoc_STRVAR(producer_close_doc,
"close($self, /)\n--\n\n\
Deregister: the slot is reused once the consumer has drained it; committed\n\
records stay readable. Waits for a call another thread is making on this\n\
producer to finish. Idempotent.");
PyDoc_STRVAR(producer_exit_doc, "__exit__($self, /, *exc_info)\n--\n\nClose the producer.");

PyDoc_STRVAR(reservation_doc,
"Space reserved in a producer's ring (Producer.reserve()).\n\
\n\
Exposes the buffer protocol: memoryview(r) is a writable 1-D view of len(r)\n\
records (r.nbytes bytes). commit(k=None) publishes the first k records (all by\n\
default), abort() drops them. Like mmap.close(), committing refuses with BufferError\n\
while a view of the reservation is still exported.");
PyDoc_STRVAR(reservation_commit_doc,
"commit($self, /, k=None)\n--\n\nPublish the first k records (default: all; 0 aborts).");
PyDoc_STRVAR(reservation_abort_doc, "abort($self, /)\n--\n\nDrop the reservation; nothing is published.");
PyDoc_STRVAR(span_exit_doc, "__exit__($self, /, *exc_info)\n--\n\nFinish: all records on normal exit, none on an exception.");

PyDoc_STRVAR(readview_doc,
"Records readable in place (Channel.read()).\n\
\n\
Exposes the buffer protocol: memoryview(v) is a read-only 1-D view of len(v)\n\
records from producer slot v.slot. consume(k=None) frees the first k (all by\n\
default); cancel() leaves them for the next read. Refuses with BufferError while a\n\
view of it is still exported.");
PyDoc_STRVAR(readview_consume_doc,
"consume($self, /, k=None)\n--\n\nConsume the first k records (default: all; 0 cancels).");
PyDoc_STRVAR(readview_cancel_doc, "cancel($self, /)\n--\n\nConsume nothing; the records are read again next time.");

PyDoc_STRVAR(unlink_doc,
"unlink(name)\n--\n\n\
Remove a named channel's name (/dev/shm/NAME). Processes that have it open keep\n\
using it; the memory is freed when the last one lets go.");
PyDoc_STRVAR(strerror_doc, "_strerror(code, /)\n--\n\nThe C core's name for an error code.");
PyDoc_STRVAR(after_fork_doc, "_after_fork_child()\n--\n\nRegistered with os.register_at_fork (after_in_child).");

/* ------------------------------------------------------------------------- */
/* Types. */

static PyMethodDef channel_methods[] = {
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

static PyType_Spec channel_spec = {
	.name = "ringmpsc.Channel",
	.basicsize = sizeof(ChannelObject),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = channel_slots,
};

static PyMethodDef producer_methods[] = {
	{ "send", (PyCFunction)(void (*)(void))producer_send, METH_FASTCALL | METH_KEYWORDS, producer_send_doc },
	{ "send_nowait", (PyCFunction)producer_send_nowait, METH_O, producer_send_nowait_doc },
	{ "send_many", (PyCFunction)(void (*)(void))producer_send_many, METH_FASTCALL | METH_KEYWORDS,
	  producer_send_many_doc },
	{ "reserve", (PyCFunction)(void (*)(void))producer_reserve, METH_FASTCALL | METH_KEYWORDS,
	  producer_reserve_doc },
	{ "send_bytes", (PyCFunction)(void (*)(void))producer_send_bytes, METH_FASTCALL | METH_KEYWORDS,
	  producer_send_bytes_doc },
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
	{ Py_tp_new, no_new },
	{ Py_tp_dealloc, producer_dealloc },
	{ Py_tp_repr, producer_repr },
	{ Py_tp_methods, producer_methods },
	{ Py_tp_getset, producer_getset },
	{ Py_tp_members, producer_members },
	{ 0, NULL },
};

static PyType_Spec producer_spec = {
	.name = "ringmpsc.Producer",
	.basicsize = sizeof(ProducerObject),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = producer_slots,
};

static PyGetSetDef span_getset[] = {
	{ "nbytes", (getter)span_get_nbytes, NULL, "Bytes in the span (len(self) * record_size).", NULL },
	{ "slot", (getter)span_get_slot, NULL, "Producer slot of the ring the records are in.", NULL },
	{ "done", (getter)span_get_done, NULL, "True once finished.", NULL },
	{ NULL },
};

static PyMethodDef reservation_methods[] = {
	{ "commit", (PyCFunction)(void (*)(void))span_commit, METH_FASTCALL | METH_KEYWORDS, reservation_commit_doc },
	{ "abort", (PyCFunction)span_abort, METH_NOARGS, reservation_abort_doc },
	{ "__enter__", (PyCFunction)span_enter, METH_NOARGS, enter_doc },
	{ "__exit__", (PyCFunction)(void (*)(void))span_exit, METH_FASTCALL, span_exit_doc },
	{ "__reduce__", (PyCFunction)not_picklable, METH_NOARGS, NULL },
	{ NULL },
};

static PyMethodDef readview_methods[] = {
	{ "consume", (PyCFunction)(void (*)(void))span_commit, METH_FASTCALL | METH_KEYWORDS, readview_consume_doc },
	{ "cancel", (PyCFunction)span_abort, METH_NOARGS, readview_cancel_doc },
	{ "__enter__", (PyCFunction)span_enter, METH_NOARGS, enter_doc },
	{ "__exit__", (PyCFunction)(void (*)(void))span_exit, METH_FASTCALL, span_exit_doc },
	{ "__reduce__", (PyCFunction)not_picklable, METH_NOARGS, NULL },
	{ NULL },
};

#define SPAN_SLOTS(methods, doc)                                    \
	{ Py_tp_doc, (void *)doc }, { Py_tp_new, no_new },          \
	{ Py_tp_dealloc, span_dealloc }, { Py_tp_repr, span_repr }, \
	{ Py_tp_methods, methods }, { Py_tp_getset, span_getset },  \
	{ Py_sq_length, span_len }, { Py_mp_length, span_len },     \
	{ Py_bf_getbuffer, span_getbuffer }, { Py_bf_releasebuffer, span_releasebuffer }, { 0, NULL }

static PyType_Slot reservation_slots[] = { SPAN_SLOTS(reservation_methods, reservation_doc) };
static PyType_Slot readview_slots[] = { SPAN_SLOTS(readview_methods, readview_doc) };

static PyType_Spec reservation_spec = {
	.name = "ringmpsc.Reservation",
	.basicsize = sizeof(SpanObject),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = reservation_slots,
};

static PyType_Spec readview_spec = {
	.name = "ringmpsc.ReadView",
	.basicsize = sizeof(SpanObject),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = readview_slots,
};

/* ------------------------------------------------------------------------- */
/* Module. */

static PyMethodDef module_methods[] = {
	{ "unlink", (PyCFunction)(void (*)(void))mod_unlink, METH_VARARGS | METH_KEYWORDS, unlink_doc },
	{ "_after_fork_child", mod_after_fork_child, METH_NOARGS, after_fork_doc },
	{ "_strerror", mod_strerror, METH_O, strerror_doc },
	{ NULL },
};

static PyObject *new_exception(PyObject *m, const char *name, const char *doc, PyObject *bases)
{
	PyObject *e = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
	if (!e)
		return NULL;
	const char *shortname = strrchr(name, '.') + 1;
	if (PyModule_AddObject(m, shortname, Py_NewRef(e)) < 0) {
		Py_DECREF(e);
		Py_DECREF(e);
		return NULL;
	}
	return e;
}

static PyObject *bases2(PyObject *a, PyObject *b)
{
	return PyTuple_Pack(2, a, b);
}

static int module_exec(PyObject *m)
{
	modstate *st = PyModule_GetState(m);
	PyObject *queue = PyImport_ImportModule("queue");
	if (!queue)
		return -1;
	PyObject *qfull = PyObject_GetAttrString(queue, "Full");
	PyObject *qempty = PyObject_GetAttrString(queue, "Empty");
	Py_DECREF(queue);
	PyObject *b = NULL;
	int ok = 0;
	if (!qfull || !qempty)
		goto done;
	if (!(st->Error = new_exception(m, "ringmpsc.Error", "Base class of ringmpsc's errors.", NULL)))
		goto done;
	if (!(b = bases2(st->Error, qfull)) ||
	    !(st->Full = new_exception(m, "ringmpsc.Full", "No space: the ring (or slab pool) is full. Also a queue.Full.", b)))
		goto done;
	Py_CLEAR(b);
	if (!(b = bases2(st->Error, qempty)) ||
	    !(st->Empty = new_exception(m, "ringmpsc.Empty", "No record arrived in time. Also a queue.Empty.", b)))
		goto done;
	Py_CLEAR(b);
	if (!(st->Closed = new_exception(m, "ringmpsc.Closed",
					 "The channel is closed (for the consumer: closed and drained).", st->Error)))
		goto done;
	if (!(st->TooManyProducers = new_exception(m, "ringmpsc.TooManyProducers",
						   "Every producer slot is held by a live producer.", st->Error)))
		goto done;
	if (!(st->ConsumerBusy = new_exception(m, "ringmpsc.ConsumerBusy",
					       "Another live process holds the channel's consumer role "
					       "(the message names its pid).", st->Error)))
		goto done;
	if (!(st->CorruptRegion = new_exception(m, "ringmpsc.CorruptRegion",
						"The region is not a valid (or compatible) channel, or a ring was "
						"fenced off for impossible positions.", st->Error)))
		goto done;
	if (!(st->ChannelType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &channel_spec, NULL)) ||
	    PyModule_AddType(m, st->ChannelType) < 0)
		goto done;
	if (!(st->ProducerType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &producer_spec, NULL)) ||
	    PyModule_AddType(m, st->ProducerType) < 0)
		goto done;
	if (!(st->ReservationType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &reservation_spec, NULL)) ||
	    PyModule_AddType(m, st->ReservationType) < 0)
		goto done;
	if (!(st->ReadViewType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &readview_spec, NULL)) ||
	    PyModule_AddType(m, st->ReadViewType) < 0)
		goto done;
	if (!(st->str_release = PyUnicode_InternFromString("release")))
		goto done;
	st->fork_gen = 0;
	if (PyModule_AddIntConstant(m, "MAX_RECORD_SIZE", RMPSC_MAX_RECORD_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_CAPACITY", RMPSC_MAX_CAPACITY) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_PRODUCERS", RMPSC_MAX_PRODUCERS) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_SLAB_SIZE", RMPSC_MAX_SLAB_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_SLABS", RMPSC_MAX_SLAB_COUNT) < 0)
		goto done;
	ok = 1;
done:
	Py_XDECREF(b);
	Py_XDECREF(qfull);
	Py_XDECREF(qempty);
	return ok ? 0 : -1;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
	modstate *st = PyModule_GetState(m);
	Py_VISIT(st->Error);
	Py_VISIT(st->Full);
	Py_VISIT(st->Empty);
	Py_VISIT(st->Closed);
	Py_VISIT(st->TooManyProducers);
	Py_VISIT(st->ConsumerBusy);
	Py_VISIT(st->CorruptRegion);
	Py_VISIT(st->ChannelType);
	Py_VISIT(st->ProducerType);
	Py_VISIT(st->ReservationType);
	Py_VISIT(st->ReadViewType);
	Py_VISIT(st->str_release);
	return 0;
}

static int module_clear(PyObject *m)
{
	modstate *st = PyModule_GetState(m);
	Py_CLEAR(st->Error);
	Py_CLEAR(st->Full);
	Py_CLEAR(st->Empty);
	Py_CLEAR(st->Closed);
	Py_CLEAR(st->TooManyProducers);
	Py_CLEAR(st->ConsumerBusy);
	Py_CLEAR(st->CorruptRegion);
	Py_CLEAR(st->ChannelType);
	Py_CLEAR(st->ProducerType);
	Py_CLEAR(st->ReservationType);
	Py_CLEAR(st->ReadViewType);
	Py_CLEAR(st->str_release);
	return 0;
}

static void module_free(void *m)
{
	module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
	{ Py_mod_exec, module_exec },
	{ 0, NULL },
};

PyDoc_STRVAR(module_doc, "The C extension behind the ringmpsc package (import ringmpsc instead).");

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "ringmpsc._ringmpsc",
	.m_doc = module_doc,
	.m_size = sizeof(modstate),
	.m_methods = module_methods,
	.m_slots = module_slots,
	.m_traverse = module_traverse,
	.m_clear = module_clear,
	.m_free = module_free,
};

PyMODINIT_FUNC PyInit__ringmpsc(void)
{
	return PyModuleDef_Init(&module_def);
}
