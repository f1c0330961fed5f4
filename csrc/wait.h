/*
 * Blocking without lost wake-ups. A waiter and a publisher meet on two words in
 * the region: `flag` (someone may sleep; for consumers a bit of the header's
 * waiting_members, notify.h) and `seq` (the futex word, bumped by a publisher that
 * saw the flag). Both sides follow store -> fence -> load:
 *
 *   waiter:    s = seq; flag = 1; cold fence; if (ready()) done; futex_wait(seq, s)
 *   publisher: publish (store); hot fence; if (xchg(flag, 0)) { seq++; futex_wake(seq) }
 *
 * (barrier.h: both fences are smp_mb(), or, on an asymmetric channel, a compiler
 * barrier for the publisher and membarrier() for the waiter.)
 * Either the waiter's re-check sees the publish, or the publisher sees the flag
 * and bumps seq, so a wait that starts late returns at once. A publisher that sees
 * no flag makes no system call. The flag (not a count) heals itself: one left by a
 * killed waiter costs the next publisher one wake, then it is gone. Futexes are
 * shared (not FUTEX_PRIVATE_FLAG), so they work across processes.
 */
#ifndef RMPSC_WAIT_H
#define RMPSC_WAIT_H

#include <stdint.h>

#include "barrier.h"

/*
 * A deadline from a timeout_ns argument: 0 try once, < 0 forever, > 0 relative.
 * The clock is read only when a wait really starts (most calls never wait), and
 * then once, so retries never stretch the deadline.
 */
struct deadline {
	int64_t timeout_ns;
	int64_t at_ns; /* CLOCK_MONOTONIC once started; INT64_MAX = forever; 0 = not yet */
	int try_once;
};

int64_t rmpsc__monotonic_ns(void);

/* Sleep slice when membarrier failed: a wake-up may be missed, so poll. */
#define UNFENCED_POLL_NS 1000000

/* How long producers and the consumer poll before they sleep (wait.c). */
extern int64_t rmpsc__spin_ns;

static inline struct deadline deadline_from_timeout(int64_t timeout_ns)
{
	struct deadline dl = { timeout_ns, timeout_ns < 0 ? INT64_MAX : 0, timeout_ns == 0 };
	return dl;
}

/* How a waiter waits, stored in its flag word (or member place) before it
 * announces itself: the waker signals the futex, the readiness FIFO, or both. */
#define WAIT_FUTEX   1u
#define WAIT_FD      2u
/* On the progress words only: senders waiting for fewer pending records, each
 * with its limit folded into the header's pending_limit (notify.h). */
#define WAIT_PENDING 4u

/* What a readiness check reports: >= 0 or a negative RMPSC_E* code ends the wait. */
#define WAIT_NOT_READY INT32_MIN
typedef int (*ready_fn)(void *arg);

struct waiter {
	uint32_t *flag; /* set to WAIT_FUTEX to announce; or NULL, and then: */
	uint64_t *mask; /* ... the word of waiting_members holding our bit */
	uint64_t bit;
	uint32_t *seq;
	ready_fn ready;
	void *arg;
	int would_block;  /* returned for a try-once deadline (EFULL / EEMPTY) */
	int64_t spin_ns;  /* poll ready() this long before sleeping (0: sleep at once) */
	int64_t slice_ns; /* > 0: sleep at most this long at a time, so ready() also polls */
	/* If set, announce as a pending waiter: raise *limit to limit_value, then or
	 * WAIT_PENDING into *flag (keeping other waiters' bits). */
	uint32_t *limit;
	uint32_t limit_value;
	int sole;          /* the only thread that can wait on these words: clears its flag */
	int armed_fd;      /* a readiness fd is armed on the same announcement: keep it (notify.h) */
	int interruptible; /* return EINTR when a signal interrupts the sleep */
	int asymmetric;    /* the channel's fence mode is FENCE_ASYMMETRIC (barrier.h) */
	/* Coalescing (a member's wait, notify.h): after the spin, sleep up to
	 * linger_ns announced with *wake_min = min_records, so a producer wakes us
	 * only once its ring holds that many records for us; then take what is there,
	 * and if nothing is, wait for the first record (*wake_min = 1). */
	uint32_t *wake_min;
	uint32_t min_records;
	int64_t linger_ns;
	int *slept;    /* if set, 1 once the wait got past its poll (it lingered or slept) */
	int *lingered; /* if set, 1 once it lingered */
};

static inline void announce(const struct waiter *w)
{
	if (w->mask) {
		fetch_or_acq_rel(w->mask, w->bit); /* release: wait_how and wake_min before the bit */
	} else if (w->limit) {
		uint32_t l = load_relaxed(w->limit);
		while (l < w->limit_value && !cas_acq_rel(w->limit, &l, w->limit_value))
			;
		fetch_or_acq_rel(w->flag, WAIT_PENDING);
	} else {
		store_relaxed(w->flag, WAIT_FUTEX | (w->armed_fd ? WAIT_FD : 0));
	}
}

/* A waiter that stops waiting takes its announcement back: a bit of a member's
 * own always; a flag only where it is the one waiter on it (`sole`). One that
 * shares it with an armed readiness fd leaves it to the fd. */
static inline void withdraw(const struct waiter *w)
{
	if (w->armed_fd) {
		if (!w->mask)
			store_relaxed(w->flag, WAIT_FD);
	} else if (w->mask) {
		fetch_and_acq_rel(w->mask, ~w->bit);
	} else if (w->sole) {
		store_relaxed(w->flag, 0);
	}
}

/*
 * Wait until ready(arg) returns something other than WAIT_NOT_READY and return it.
 * Returns `would_block` for a try-once deadline, ETIMEDOUT at the deadline, EINTR
 * on a signal when `interruptible`.
 */
int rmpsc__wait(const struct waiter *w, struct deadline *dl);

void rmpsc__futex_wake_all(uint32_t *word);

#endif
