#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "ringmpsc.h"
#include "wait.h"

int64_t rmpsc__monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct deadline rmpsc__deadline_from_timeout(int64_t timeout_ns)
{
	struct deadline dl = { INT64_MAX, timeout_ns == 0 };
	if (timeout_ns > 0) {
		int64_t now = rmpsc__monotonic_ns();
		dl.at_ns = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
	}
	return dl;
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
	if (w->sole)
		store_relaxed(w->flag, 0); /* nobody else waits here: leave no stale flag */
	return r;
}

int rmpsc__wait(const struct waiter *w, struct deadline dl)
{
	int r = w->ready(w->arg);
	if (r != WAIT_NOT_READY)
		return r;
	if (dl.try_once)
		return rmpsc__set_error_static(w->would_block, w->would_block == RMPSC_EFULL
							     ? "full: no space without waiting"
							     : "empty: nothing to read without waiting");
	for (unsigned i = 0; i < w->spin; i++) {
		cpu_relax();
		if ((r = w->ready(w->arg)) != WAIT_NOT_READY)
			return r;
	}
	for (;;) {
		uint32_t s = load_acquire(w->seq);
		store_relaxed(w->flag, 1);
		smp_mb(); /* announce before re-checking (pairs with wake_waiters' fence) */
		r = w->ready(w->arg);
		if (r != WAIT_NOT_READY)
			return finish(w, r);
		int64_t until = dl.at_ns;
		if (w->slice_ns > 0) {
			int64_t now = rmpsc__monotonic_ns();
			if (until - now > w->slice_ns)
				until = now + w->slice_ns;
		}
		int err = futex_wait_abs(w->seq, s, until);
		/* 0: woken (maybe spuriously), EAGAIN: seq already moved, ETIMEDOUT at the
		 * end of a slice: all re-check; only the real deadline ends the wait. */
		if (dl.at_ns != INT64_MAX && rmpsc__monotonic_ns() >= dl.at_ns) {
			r = w->ready(w->arg);
			return finish(w, r != WAIT_NOT_READY
						 ? r
						 : rmpsc__set_error_static(RMPSC_ETIMEDOUT, "timed out: the deadline passed"));
		}
		if (err == EINTR && w->interruptible) {
			r = w->ready(w->arg);
			return finish(w, r != WAIT_NOT_READY
						 ? r
						 : rmpsc__set_error_static(RMPSC_EINTR, "interrupted by a signal while waiting"));
		}
	}
}
