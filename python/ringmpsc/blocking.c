/* GIL-free waits in slices and the per-object lock (blocking.h). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "blocking.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t deadline_at(int64_t timeout_ns)
{
	if (timeout_ns <= 0)
		return timeout_ns == 0 ? 0 : FOREVER;
	int64_t now = now_ns();
	return timeout_ns > INT64_MAX - now ? FOREVER : now + timeout_ns;
}

/* The next slice's timeout: > 0 while time is left, 0 when the deadline has
 * passed or the call may not block at all. */
static int64_t next_slice(int64_t until)
{
	if (until == 0)
		return 0;
	if (until == FOREVER)
		return SLICE_NS;
	int64_t left = until - now_ns();
	if (left <= 0)
		return 0;
	return left < SLICE_NS ? left : SLICE_NS;
}

/* The first try would block: wait in slices with the GIL released. */
int run_op_slow(op_fn fn, void *ctx, int64_t until, int rc, int *err)
{
	int wb = rc == OP_AGAIN ? RMPSC_EFULL : rc;
	for (;;) {
		int64_t slice = next_slice(until);
		if (slice == 0)
			return until == 0 ? wb : RMPSC_ETIMEDOUT;
		int e;
		Py_BEGIN_ALLOW_THREADS
		errno = 0;
		rc = fn(ctx, slice);
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

int run_op_nogil(op_fn fn, void *ctx, int64_t until, int *err)
{
	int rc, e;
	Py_BEGIN_ALLOW_THREADS
	errno = 0;
	rc = fn(ctx, 0);
	e = errno;
	Py_END_ALLOW_THREADS
	*err = e;
	return would_block(rc) ? run_op_slow(fn, ctx, until, rc, err) : rc;
}

/*
 * The lock's slow path.
 *
 * Why not a PyThread lock: it cost a sem_trywait, a sem_post and, on CPython
 * 3.11, a clock_gettime per acquire even when it never waited; the locked
 * instructions also wait for the store buffer to drain, which holds the stores to
 * the shared ring. Together the most expensive part of a one-record send or recv.
 *
 * A thread that finds the lock held registers as a waiter, notes `seq`, releases
 * the GIL and sleeps on `seq` (a private futex) for at most one slice; the holder's
 * release, made with the GIL held, bumps `seq` and wakes the sleepers when there
 * are any. A release between the note and the sleep changes `seq`, so the sleep
 * returns at once: no lost wake-up. The waiter then takes the GIL back and tries
 * again; signals are checked between slices.
 *
 * The module does not declare Py_mod_gil, so free-threaded builds keep the GIL on
 * while it is loaded, and the GIL remains what serializes these fields.
 */
int hlock_acquire_slow(hlock *l, modstate *st, int64_t until, const char *busy_msg)
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
		int64_t slice = next_slice(until);
		if (slice == 0)
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

/* A release with waiters: move `seq` so a waiter about to sleep does not, and wake the sleepers. */
void hlock_wake(hlock *l)
{
	__atomic_store_n(&l->seq, l->seq + 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &l->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
