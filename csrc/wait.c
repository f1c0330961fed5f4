#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ringmpsc.h"
#include "wait.h"

/* Polls of ready() before sleeping: a short spin catches a peer about to publish. */
#define SPIN_POLLS 64

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
	long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, NULL,
			 FUTEX_BITSET_MATCH_ANY);
	return r == 0 ? 0 : errno;
}

int rmpsc__wait_until_ready(uint32_t *waiting, uint32_t *seq, ready_fn ready, void *arg,
		     struct deadline dl, int64_t slice_ns, int would_block, int interruptible)
{
	int r = ready(arg);
	if (r != WAIT_NOT_READY)
		return r;
	if (dl.try_once)
		return would_block;
	for (int i = 0; i < SPIN_POLLS; i++) {
		cpu_relax();
		if ((r = ready(arg)) != WAIT_NOT_READY)
			return r;
	}
	for (;;) {
		uint32_t s = load_acquire(seq);
		fetch_add_acq_rel(waiting, 1);
		smp_mb(); /* announce before re-checking (pairs with wake_waiters' fence) */
		r = ready(arg);
		if (r != WAIT_NOT_READY) {
			fetch_add_acq_rel(waiting, (uint32_t)-1);
			return r;
		}
		int64_t until = dl.at_ns;
		if (slice_ns > 0) {
			int64_t now = rmpsc__monotonic_ns();
			if (until - now > slice_ns)
				until = now + slice_ns;
		}
		int err = futex_wait_abs(seq, s, until);
		fetch_add_acq_rel(waiting, (uint32_t)-1);
		/* 0: woken (maybe spuriously), EAGAIN: seq already moved, ETIMEDOUT at the
		 * end of a slice: all re-check; only the real deadline ends the wait. */
		if (dl.at_ns != INT64_MAX && rmpsc__monotonic_ns() >= dl.at_ns) {
			r = ready(arg);
			return r != WAIT_NOT_READY ? r : RMPSC_ETIMEDOUT;
		}
		if (err == EINTR && interruptible) {
			r = ready(arg);
			return r != WAIT_NOT_READY ? r : RMPSC_EINTR;
		}
	}
}
