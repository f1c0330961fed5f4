/*
 * Blocking without lost wake-ups. A waiter and a publisher meet on two words in
 * the region: `waiting` (how many sleep) and `seq` (the futex word, bumped by a
 * publisher that saw a waiter). Both sides follow store -> full fence -> load:
 *
 *   waiter:    s = seq; waiting++; smp_mb(); if (ready()) done; futex_wait(seq, s)
 *   publisher: publish (store); smp_mb(); if (waiting) { seq++; futex_wake(seq) }
 *
 * Either the waiter's re-check sees the publish, or the publisher sees the waiter
 * and bumps seq, so a wait that starts late returns at once. A publisher that sees
 * no waiter makes no system call. Futexes are shared (not FUTEX_PRIVATE_FLAG) so
 * they work across processes mapping the same region.
 */
#ifndef RMPSC_WAIT_H
#define RMPSC_WAIT_H

#include <stdint.h>

#include "barrier.h"

/* A deadline from a timeout_ns argument: 0 try once, < 0 forever, > 0 relative. */
struct deadline {
	int64_t at_ns;   /* CLOCK_MONOTONIC; INT64_MAX = forever */
	int try_once;
};

int64_t rmpsc__monotonic_ns(void);
struct deadline rmpsc__deadline_from_timeout(int64_t timeout_ns);

/* What a readiness check reports: >= 0 or a negative RMPSC_E* code ends the wait. */
#define WAIT_NOT_READY INT32_MIN
typedef int (*ready_fn)(void *arg);

/*
 * Wait until ready(arg) returns something other than WAIT_NOT_READY and return it.
 * `would_block` is returned for a try-once deadline (EFULL / EEMPTY). Returns
 * ETIMEDOUT at the deadline, EINTR on a signal when `interruptible`. `slice_ns` > 0
 * bounds each sleep so ready() also runs periodically (liveness polling).
 */
int rmpsc__wait_until_ready(uint32_t *waiting, uint32_t *seq, ready_fn ready, void *arg,
		     struct deadline dl, int64_t slice_ns, int would_block, int interruptible);

void rmpsc__futex_wake_all(uint32_t *word);

/* Publisher side: call after the publishing store. */
static inline void wake_waiters(uint32_t *waiting, uint32_t *seq)
{
	smp_mb(); /* the publish must be visible before we read `waiting` (pairs with the waiter's fence) */
	if (unlikely(load_relaxed(waiting))) {
		fetch_add_acq_rel(seq, 1);
		rmpsc__futex_wake_all(seq);
	}
}

#endif
