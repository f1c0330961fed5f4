/*
 * Waking waiters: members waiting for records, producers waiting for space, by
 * futex or through a readiness FIFO.
 *
 * Members. Bit e of the header's waiting_members says member place e may be
 * waiting; its place says how (wait_how: WAIT_FUTEX, WAIT_FD) and for how many
 * records (wake_min). A producer loads the mask word after every publish (the one
 * load it pays while nobody waits, as wake_progress below); a set bit sends it
 * to the slow path, which wakes member e when its ring holds wake_min records the
 * member's group has not taken, clearing the bit first (fetch_and) so one
 * publisher pays the system call. A member that lingers (coalescing) announces
 * wake_min > 1; one that must not miss a record announces 1 and fences (wait.h).
 *
 * Readiness FIFOs. A waiter in an event loop cannot sleep on a futex, so it gets
 * a named FIFO next to the region, /dev/shm/.ringmpsc-<channel id>-<m|p><place>-<gen>,
 * which producers (or, for a producer waiting for space, consumers) open by name
 * and write a byte into: unrelated processes need no descriptor passing. Its mode
 * is 0622: only its owner reads it (nobody else can take a wake-up away), anyone
 * may write a byte (at worst a spurious wake-up), so every process that has the
 * region mapped can wake its waiter, whatever user it runs as now (a worker that
 * dropped privileges after it inherited the channel). A waker opens it O_RDWR
 * where it may (then there is always a reader and a write never raises SIGPIPE),
 * else O_WRONLY, and then writes with SIGPIPE blocked; a full FIFO (EAGAIN) is
 * readable already. `gen` (a channel-wide count, and 32 random bits nobody can
 * guess, so no other user can take the names before us) changes with every FIFO
 * made for a place, so a descriptor cached for an earlier holder never wakes the
 * wrong one.
 */
#ifndef RMPSC_NOTIFY_H
#define RMPSC_NOTIFY_H

#include <stdint.h>

#include "barrier.h"
#include "handle.h"
#include "wait.h"

#define NO_SLOT   UINT32_MAX
#define LINGERERS (UINT32_MAX - 1) /* not a publish: wake the members that linger (wake_min > 1) */

/* A FIFO this process opened to signal a place, cached by generation. */
struct fifo_ref {
	int fd;
	uint64_t gen; /* 0: none open */
	int wronly;   /* opened write-only: writes guard against SIGPIPE */
};

/* Make a readiness FIFO for place `index` of `kind` ('m' member, 'p' producer)
 * and open it. Returns the descriptor, and its generation in *gen; or ESYS. */
int rmpsc__fifo_create(rmpsc_channel *ch, char kind, uint32_t index, uint64_t *gen);
/* Remove the FIFO of that place and generation (0: none; a missing one is fine). */
void rmpsc__fifo_remove(const rmpsc_channel *ch, char kind, uint32_t index, uint64_t gen);
/* Write a byte into it, through `ref` (opened and cached there) or, when NULL,
 * opening it for this one write. 1 when written, or when it cannot be (its waiter
 * left; or we may not open it, which no retry changes); 0 when it could not be
 * opened for now (out of descriptors or memory): the caller announces the waiter
 * again, for the next waker. */
int rmpsc__fifo_signal(const rmpsc_channel *ch, struct fifo_ref *ref, char kind, uint32_t index, uint64_t gen);
/* Read every byte out of a FIFO we wait on (O_NONBLOCK). */
void rmpsc__fifo_drain(int fd);
/* Close the cached descriptors of an array of n refs and free it. */
void rmpsc__fifo_refs_free(struct fifo_ref *refs, uint32_t n);

/* The longest a readiness fd waits before its waiter looks again (rmpsc_ready_arm,
 * rmpsc_producer_ready_arm): makes up for a wake-up a waker could not send (it
 * could not open the FIFO; or a close). */
#define READY_RECHECK_NS 1000000000ll

/* Words of waiting_members in use. */
static inline uint32_t waiting_words(const rmpsc_channel *ch)
{
	return (ch->L.max_consumers + 63) >> 6;
}

void rmpsc__wake_members_slow(rmpsc_channel *ch, struct fifo_ref **refs, uint32_t slot);

/*
 * After a publish on ring `slot` (NO_SLOT: not a publish, wake every waiter):
 * wake the members that wait for it. `refs` caches FIFO descriptors (the
 * producer's; allocated on first use). `light` from hot_light().
 */
static inline void wake_members(rmpsc_channel *ch, struct fifo_ref **refs, uint32_t slot, int light)
{
	hot_barrier(light); /* the publish before we read the mask (pairs with the waiter's fence) */
	const uint64_t *mask = ch->hdr->waiting_members;
	uint64_t any = load_relaxed(&mask[0]);
	if (unlikely(ch->L.max_consumers > 64))
		for (uint32_t w = 1; w < waiting_words(ch); w++)
			any |= load_relaxed(&mask[w]);
	if (unlikely(any))
		rmpsc__wake_members_slow(ch, refs, slot);
}

/* Wake every waiting member, whatever it waits for (close, group changes; after
 * a full barrier, so callers need none of their own). */
static inline void wake_all_members(rmpsc_channel *ch)
{
	wake_members(ch, NULL, NO_SLOT, 0);
}

/*
 * A sender waiting for slabs (slab.c, on every poll of its wait): wake the members
 * that linger (coalescing), and mark them woken for slabs (member.woken_for_slabs),
 * so that they stop lingering for a while (linger_learn). The slabs it waits for
 * come free only once members take what was sent, and a lingering member would keep
 * them for its whole delay, while the pool, not the ring, holds the sender back (a
 * stream of 1 MiB messages through a pool of four stalled 1 ms per message).
 * Members that wait for any record are left alone: one with nothing to take would
 * be woken by every poll.
 */
static inline void wake_lingerers(rmpsc_channel *ch)
{
	wake_members(ch, NULL, LINGERERS, 0);
}

void rmpsc__wake_producer_slow(rmpsc_channel *ch, struct fifo_ref **refs, uint32_t s);

/* After freeing space on ring s: wake its producer if it waits (futex or FIFO). */
static inline void wake_producer(rmpsc_channel *ch, struct fifo_ref **refs, uint32_t s, int light)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	hot_barrier(light); /* the release before we read the flag (pairs with the waiter's fence) */
	if (unlikely(load_relaxed(&c->producer_waiting)))
		rmpsc__wake_producer_slow(ch, refs, s);
}

/* Whether at least `pending_limit` records are still pending, so no sender waiting
 * in rmpsc_wait_pending_below could pass (consumer.c). */
int rmpsc__pending_at_limit(rmpsc_channel *ch);

/* The progress words' wake-up, after the flag was cleared: the limit first (a
 * sender that announces meanwhile holds an older seq, so the bump wakes it and
 * it announces again), then the bump. */
static inline void bump_progress(struct region_header *h)
{
	store_relaxed(&h->pending_limit, 0);
	fetch_add_acq_rel(&h->progress_seq, 1);
	rmpsc__futex_wake_all(&h->progress_seq);
}

/*
 * After a release or a freed slab, once fenced (hot_barrier): wake the senders
 * waiting for the consumers' progress (progress_waiting). All of them, since
 * they share one futex word; but while only pending waiters are announced
 * (WAIT_PENDING), a release that leaves pending_limit records or more wakes
 * nobody: none of them could pass, and several senders held at a bound would
 * otherwise all be woken by every release (tests/model/pending.pml).
 */
static inline void wake_progress(rmpsc_channel *ch)
{
	struct region_header *h = ch->hdr;
	uint32_t f = load_relaxed(&h->progress_waiting);
	if (likely(!f))
		return;
	if (f == WAIT_PENDING && rmpsc__pending_at_limit(ch))
		return;
	if (xchg_acq_rel(&h->progress_waiting, 0)) /* one waker pays the system call */
		bump_progress(h);
}

/* Everyone waiting on the progress words looks again, announced or not (close, a
 * group that went): a sender that loaded its seq before this returns from
 * FUTEX_WAIT at once. */
static inline void wake_progress_all(rmpsc_channel *ch)
{
	xchg_acq_rel(&ch->hdr->progress_waiting, 0);
	bump_progress(ch->hdr);
}

/*
 * After records of ring s were released (a head moved): wake its producer if it
 * waits for space, and the senders that wait for the consumers' progress (a slab
 * riding on a released record is free; fewer records are pending). One fence for both.
 */
static inline void wake_after_release(rmpsc_channel *ch, uint32_t s, int light)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	hot_barrier(light); /* the release before we read the flags (pairs with the waiters' fences) */
	if (unlikely(load_relaxed(&c->producer_waiting)))
		rmpsc__wake_producer_slow(ch, NULL, s);
	wake_progress(ch);
}

/* Wake every producer that waits, and the senders waiting for progress (close, a
 * group that held them back went). */
void rmpsc__wake_all_producers(rmpsc_channel *ch);

/* Remove the readiness FIFOs of member places and producer slots whose holder
 * died (nobody may be left to recover them): on a channel handle's release. */
void rmpsc__remove_dead_fifos(rmpsc_channel *ch);

#endif
