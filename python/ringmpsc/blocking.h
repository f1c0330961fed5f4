/*
 * Blocking calls from Python: the GIL is released in every wait, and Ctrl-C works.
 *
 * Every call first tries the C operation once with a zero timeout while holding
 * the GIL (pure memory operations, no system call unless a peer sleeps). Only when
 * that would block does it release the GIL and call the core again with a timeout
 * of at most SLICE_NS; the core polls briefly and then sleeps (its own spin
 * budget and futex wait). Between slices PyErr_CheckSignals() runs; channels are
 * opened with RMPSC_OPEN_INTERRUPTIBLE so a signal also cuts a slice short.
 * Ctrl-C thus raises KeyboardInterrupt within one slice at worst, at once when
 * the signal lands on the waiting (main) thread.
 *
 * Threads: the C core lets one thread at a time use a producer handle or the
 * consumer side of a membership (the handles of one process in one group). Each
 * Producer has an hlock, and so has each membership (module.h: glock, shared by
 * every Channel and Consumer object on the region and group in this process): its
 * state changes only under the GIL, so an uncontended acquire and release are a
 * few plain loads and stores. A thread never waits for it while holding the GIL,
 * so a thread holding it can never wait for the GIL held by a thread waiting for
 * it. An open Reservation (producer) or ReadView (consumer) keeps its lock until
 * it is committed/consumed, aborted or freed; the owning thread calling into the
 * same object (or membership) meanwhile gets RuntimeError instead of a
 * self-deadlock. An event loop's thread must not wait for it at all: the
 * coroutines use readiness calls that answer "busy" instead (consumer.c).
 */
#ifndef RINGMPSC_PY_BLOCKING_H
#define RINGMPSC_PY_BLOCKING_H

#include "module.h"

#include <errno.h>
#include <pythread.h>

#define SLICE_NS     (50 * 1000 * 1000LL)  /* longest uninterrupted GIL-free wait */
/* An op made progress and is not done: call it again. Negative, so that no count an
 * op returns (recv_many and recv_into return how many records they took) reads as
 * it; none of the core's codes, nor RC_PYERR. */
#define OP_AGAIN     (-1001)
#define FOREVER      INT64_MAX

/*
 * When a blocking call gives up, as one number: 0 (try once), FOREVER, or an
 * absolute CLOCK_MONOTONIC time in ns. The core takes relative timeouts; this is
 * only what lets the slices add up to the caller's timeout.
 */
int64_t deadline_at(int64_t timeout_ns);

/* A C operation that may block: the core call with `timeout_ns`, its results in ctx. */
typedef int (*op_fn)(void *ctx, int64_t timeout_ns);

static inline int would_block(int rc)
{
	return rc == RMPSC_EFULL || rc == RMPSC_EEMPTY || rc == OP_AGAIN;
}

int run_op_slow(op_fn fn, void *ctx, int64_t until, int rc, int *err);

/*
 * Run `fn` by the deadline `until`. Returns the op's result (>= 0), an RMPSC_E*
 * code (ETIMEDOUT when the deadline passed, EFULL/EEMPTY when the call may not
 * block), or RC_PYERR. *err receives errno after the last C call. Inlined into
 * each caller, so the first (usually the only) try is a direct call.
 */
static ALWAYS_INLINE int run_op(op_fn fn, void *ctx, int64_t until, int *err)
{
	errno = 0;
	int rc = fn(ctx, 0);
	*err = errno;
	if (likely(!would_block(rc)))
		return rc;
	return run_op_slow(fn, ctx, until, rc, err);
}

/* run_op for an op whose first try is itself long (a large copy): that try too
 * runs with the GIL released. */
int run_op_nogil(op_fn fn, void *ctx, int64_t until, int *err);

static inline void hlock_init(hlock *l, const modstate *st)
{
	l->owner = 0;
	l->seq = 0;
	l->waiters = 0;
	l->gen = st->fork_gen;
}

int hlock_acquire_slow(hlock *l, modstate *st, int64_t until, const char *busy_msg);
void hlock_wake(hlock *l);

/* Returns 0 acquired, 1 deadline passed, -1 with an exception set. */
static ALWAYS_INLINE int hlock_acquire(hlock *l, modstate *st, int64_t until, const char *busy_msg)
{
	if (likely(l->owner == 0 && l->gen == st->fork_gen)) {
		l->owner = PyThread_get_thread_ident();
		return 0;
	}
	return hlock_acquire_slow(l, st, until, busy_msg);
}

static inline void hlock_release(hlock *l)
{
	l->owner = 0;
	if (unlikely(l->waiters))
		hlock_wake(l);
}

#endif
