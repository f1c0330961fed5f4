#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "ringmpsc.h"
#include "wait.h"

#define RELAX_NS               2000 /* of the spin budget, polled with pause before yielding between polls */
#define INTERRUPTIBLE_SLICE_NS (3600 * 1000000000ll) /* any finite timeout will do (see below) */

/* Poll this long before sleeping: a running peer publishes sooner than a futex
 * round trip. A variable only so tests can set 0 and make every wait sleep. */
int64_t rmpsc__spin_ns = 20000;

int64_t rmpsc__monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Start the deadline's clock (once). */
static void deadline_start(struct deadline *dl)
{
	if (dl->at_ns)
		return;
	int64_t now = rmpsc__monotonic_ns();
	dl->at_ns = dl->timeout_ns > INT64_MAX - now ? INT64_MAX : now + dl->timeout_ns;
}

void rmpsc__futex_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Sleep while *word == expected, until an absolute CLOCK_MONOTONIC deadline. */
static int futex_wait_abs(uint32_t *word, uint32_t expected, int64_t at_ns)
{
	struct timespec ts, *tsp = NULL;
	if (at_ns != INT64_MAX) {
		ts.tv_sec = at_ns / 1000000000;
		ts.tv_nsec = at_ns % 1000000000;
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute deadline, so retries never stretch it. */
	long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	return r == 0 ? 0 : errno;
}

static inline int finish(const struct waiter *w, int r)
{
	withdraw(w); /* leave no stale announcement */
	return r;
}

/*
 * Coalescing: sleep until a producer finds min_records for us on its ring, or
 * the linger ends. No barrier: a producer that misses our announcement leaves us
 * to the timer, which bounds the delay anyway. WAIT_NOT_READY when nothing came.
 */
static int linger(const struct waiter *w, const struct deadline *dl)
{
	int64_t now = rmpsc__monotonic_ns();
	int64_t until = dl->at_ns - now > w->linger_ns ? now + w->linger_ns : dl->at_ns;
	if (until <= now)
		return WAIT_NOT_READY;
	uint32_t s = load_acquire(w->seq);
	store_relaxed(w->wake_min, w->min_records);
	if (w->lingered)
		*w->lingered = 1;
	announce(w);
	int err = futex_wait_abs(w->seq, s, until);
	store_relaxed(w->wake_min, 1);
	int r = w->ready(w->arg);
	if (r != WAIT_NOT_READY)
		return finish(w, r);
	if (err == EINTR && w->interruptible)
		return finish(w, rmpsc__set_error_static(RMPSC_EINTR, "interrupted by a signal while waiting"));
	return WAIT_NOT_READY; /* still announced: the wait below renews it */
}

int rmpsc__wait(const struct waiter *w, struct deadline *dlp)
{
	int r = w->ready(w->arg);
	if (r != WAIT_NOT_READY)
		return r;
	if (dlp->try_once)
		return rmpsc__set_error_static(w->would_block, w->would_block == RMPSC_EFULL
								       ? "full: no space without waiting"
								       : "empty: nothing to read without waiting");
	deadline_start(dlp);
	const struct deadline dl = *dlp;
	/* Poll before sleeping: a futex sleep and wake-up costs several microseconds,
	 * and a peer that is running usually publishes sooner than that. First with
	 * pause instructions (a peer on another CPU answers within a microsecond or
	 * two), then yielding the CPU between polls: when there are more runnable
	 * threads than CPUs, the peer we wait for may be waiting for our CPU, and
	 * holding it would starve exactly the thread that publishes (4 producer
	 * processes and a consumer on 2 CPUs ran at less than half the rate). */
	if (w->spin_ns > 0) {
		int64_t now = rmpsc__monotonic_ns();
		int64_t spin_until = now + w->spin_ns, relax_until = now + RELAX_NS;
		if (spin_until > dl.at_ns)
			spin_until = dl.at_ns;
		if (relax_until > spin_until)
			relax_until = spin_until;
		do {
			for (int i = 0; i < 64; i++) {
				cpu_relax();
				if ((r = w->ready(w->arg)) != WAIT_NOT_READY)
					return r;
			}
		} while ((now = rmpsc__monotonic_ns()) < relax_until);
		while (now < spin_until) {
			sched_yield();
			if ((r = w->ready(w->arg)) != WAIT_NOT_READY)
				return r;
			now = rmpsc__monotonic_ns();
		}
	}
	if (w->slept)
		*w->slept = 1;
	if (w->linger_ns > 0 && w->min_records > 1 && (r = linger(w, &dl)) != WAIT_NOT_READY)
		return r;
	for (;;) {
		uint32_t s = load_acquire(w->seq);
		if (w->wake_min)
			store_relaxed(w->wake_min, 1); /* any record wakes us now */
		announce(w);
		/* Announce before re-checking (pairs with the publisher's hot fence). If
		 * the barrier failed, a publisher may not see the flag: poll instead. */
		int64_t slice_ns = w->slice_ns;
		if (cold_barrier(w->asymmetric) != 0 && (slice_ns <= 0 || slice_ns > UNFENCED_POLL_NS))
			slice_ns = UNFENCED_POLL_NS;
		r = w->ready(w->arg);
		if (r != WAIT_NOT_READY)
			return finish(w, r);
		int64_t until = dl.at_ns;
		/* The kernel restarts a futex wait without a timeout after a handler that
		 * has SA_RESTART (glibc signal()'s default), so an interruptible wait
		 * never sleeps without one; with one, a handler always ends it (EINTR). */
		if (w->interruptible && (slice_ns <= 0 || slice_ns > INTERRUPTIBLE_SLICE_NS))
			slice_ns = INTERRUPTIBLE_SLICE_NS;
		if (slice_ns > 0) {
			int64_t now = rmpsc__monotonic_ns();
			if (until - now > slice_ns)
				until = now + slice_ns;
		}
		int err = futex_wait_abs(w->seq, s, until);
		/* 0: woken (maybe spuriously), EAGAIN: seq already moved, ETIMEDOUT at the
		 * end of a slice: all re-check; only the real deadline ends the wait. */
		if (dl.at_ns != INT64_MAX && rmpsc__monotonic_ns() >= dl.at_ns) {
			r = w->ready(w->arg);
			return finish(w, r != WAIT_NOT_READY
						 ? r
						 : rmpsc__set_error_static(RMPSC_ETIMEDOUT,
									   "timed out: the deadline passed"));
		}
		if (err == EINTR && w->interruptible) {
			r = w->ready(w->arg);
			return finish(w, r != WAIT_NOT_READY
						 ? r
						 : rmpsc__set_error_static(RMPSC_EINTR,
									   "interrupted by a signal while waiting"));
		}
	}
}
