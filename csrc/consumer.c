/*
 * Consumers: members of groups (group.c) taking records as claims and releasing
 * them, the sweep over every ring, waiting for data, the consumer half of the
 * close protocol (slot.c), and messages over slabs (slab.h). A group's one member
 * takes and releases with plain stores (SOLO); several take claims under a
 * per-ring lock and release them out of order (SHARED).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "group.h"
#include "handle.h"
#include "notify.h"
#include "ring.h"
#include "slab.h"
#include "slot.h"
#include "wait.h"

#define LIVENESS_PERIOD_NS 250000000       /* consumer checks producer liveness at most 4x/s */
#define DRAIN_POLL_NS      10000000        /* closed with a reservation open: re-check owners */
#define WAIT_POLL          (INT32_MIN + 1) /* wait in short slices from now on */
#define WAIT_RESLICE       (INT32_MIN + 2) /* ... no more: what was held came free */
#define CLOSE_FENCE_TRIES  100             /* failed close barriers (DRAIN_POLL_NS apart) before ESYS */

#define NO_RING      UINT32_MAX
#define BUSY_TRIES   64      /* sweeps that found claim locks taken before a wait sleeps a slice */
#define BUSY_POLL_NS 1000000 /* ... that slice */

/* Close the span of rmpsc_read / rmpsc_read_bytes without advancing: whatever was
 * not advanced past is read again by the next call. */
static inline void forget_read(rmpsc_channel *ch)
{
	ch->read_count = 0;
	ch->read_handle = RMPSC_INVALID_HANDLE;
	ch->in_span = 0;
}

/* The membership changed (joined afresh, left, or found lost): the open read and
 * the frees deferred under the earlier one are not ours any more. */
static inline void forget_claim(rmpsc_channel *ch)
{
	forget_read(ch);
	rmpsc__slab_forget_deferred(ch);
}

/* Enter the span whose records the consumer is reading (only slab frees care). */
static inline void span_begin(rmpsc_channel *ch, uint32_t slot, uint64_t start, uint64_t n)
{
	if (!ch->L.slab_count || grouped(ch))
		return;
	ch->in_span = 1;
	ch->span_slot = slot;
	ch->span_start = start;
	ch->span_end = start + n;
}

/* ------------------------------------------------------------------------- */
/* Membership. */

static int join(rmpsc_channel *ch, const char *group, unsigned flags)
{
	int rc = rmpsc__check_join(group, flags); /* a refused join leaves nothing */
	if (rc)
		return rc;
	forget_claim(ch);
	rmpsc__member_leave(ch);
	rc = rmpsc__member_join(ch, group, flags);
	if (rc < 0)
		return rc;
	ch->group_flags = flags;
	snprintf(ch->group_name, sizeof ch->group_name, "%s", group && *group ? group : RMPSC_DEFAULT_GROUP);
	if (!grouped(ch) && rc == 1) {
		/* Slabs an earlier consumer received and neither freed nor accepted. */
		rmpsc__slab_reclaim_consumed(ch);
	}
	return RMPSC_OK;
}

/* Is the handle a member still (not forked away from it, its place not lost)? */
static inline int still_member(const rmpsc_channel *ch)
{
	return ch->member >= 0 && ch->member_gen == fork_generation() &&
	       load_relaxed(&member_at(ch, (uint32_t)ch->member)->owner) == ch->member_word;
}

int rmpsc_consumer_join(rmpsc_channel *ch, const char *group, unsigned flags)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_join: NULL channel");
	if (ch->in_callback)
		return rmpsc__set_error(RMPSC_EINVAL,
					"consumer_join: called inside an rmpsc_consume callback of this handle");
	const char *name = group && *group ? group : RMPSC_DEFAULT_GROUP;
	if (still_member(ch) && !strcmp(rmpsc_consumer_group(ch), name) && flags == ch->group_flags)
		return RMPSC_OK;
	return join(ch, name, flags);
}

int rmpsc_consumer_claim(rmpsc_channel *ch)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_claim: NULL channel");
	if (still_member(ch))
		return RMPSC_OK;
	return join(ch, NULL, 0);
}

void rmpsc_consumer_leave(rmpsc_channel *ch)
{
	if (!ch)
		return;
	if (ch->member >= 0 && ch->member_gen == fork_generation() && ch->n_deferred)
		rmpsc__slab_flush_deferred(ch); /* what the head has passed; the rest go back on the next claim */
	forget_claim(ch);
	rmpsc__member_leave(ch);
}

void rmpsc_consumer_release(rmpsc_channel *ch)
{
	rmpsc_consumer_leave(ch);
}

uint32_t rmpsc_deliveries(const rmpsc_channel *ch)
{
	return ch && (ch->read_count || ch->in_callback) ? ch->deliveries : 0;
}

int rmpsc_read_position(const rmpsc_channel *ch, uint32_t *slot, uint64_t *position)
{
	if (!ch || !slot || !position)
		return rmpsc__set_error(RMPSC_EINVAL, "read_position: NULL channel, slot or position");
	if (!ch->read_count)
		return rmpsc__set_error(RMPSC_EINVAL, "read_position: no span of rmpsc_read is open");
	*slot = ch->read_slot;
	*position = ch->read_pos;
	return RMPSC_OK;
}

static inline int consumer_enter(rmpsc_channel *ch, const char *fn)
{
	if (unlikely(!ch))
		return rmpsc__set_error(RMPSC_EINVAL, "%s: NULL channel", fn);
	if (unlikely(ch->in_callback || (ch->member >= 0 && ch->member_gen == fork_generation() &&
					 *rmpsc__member_in_callback(&ch->file, (uint32_t)ch->member))))
		return rmpsc__set_error(RMPSC_EINVAL,
					"%s: called inside an rmpsc_consume callback of this handle (or of another "
					"handle of this process in its group)",
					fn);
	/* One load of our own place: are we a member still? */
	if (unlikely(!still_member(ch))) {
		/* Lost (or forked, or never joined): join the group we were in again. */
		char name[RMPSC_GROUP_NAME_MAX + 1];
		memcpy(name, ch->group_name, sizeof name);
		rmpsc__member_lost(ch);
		int rc = join(ch, name, ch->group_flags);
		if (rc)
			return rc;
	}
	if (unlikely(ch->pending_error)) {
		int rc = ch->pending_error;
		ch->pending_error = 0;
		return rmpsc__set_error(rc,
					"%s: a ring was fenced off during the previous call "
					"(impossible positions; see rmpsc_stats)",
					fn);
	}
	return RMPSC_OK;
}

static int fence_ring(rmpsc_channel *ch, uint32_t s)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	uint64_t w = load_acquire(&c->owner);
	while (owner_state(w) != RMPSC_SLOT_FENCED &&
	       !cas_acq_rel(&c->owner, &w, owner_word(RMPSC_SLOT_FENCED, owner_id(w))))
		;
	fetch_add_relaxed(&ch->hdr->fenced_rings, 1);
	return rmpsc__set_error(RMPSC_ECORRUPT,
				"ring %u fenced off: impossible positions (tail %llu, group head %llu, cursor %llu, "
				"capacity %u)",
				s, (unsigned long long)load_relaxed(&c->tail),
				(unsigned long long)load_relaxed(group_head(ch, ch->group, s)),
				(unsigned long long)load_relaxed(&gpos_at(ch, ch->group, s)->cursor), ch->L.capacity);
}

static inline int ring_fenced(const rmpsc_channel *ch, uint32_t s)
{
	return owner_state(load_relaxed(&slot_ctrl(ch, s)->owner)) == RMPSC_SLOT_FENCED;
}

/*
 * Records of ring s our group has not taken, from `cursor`: refreshes our view of
 * the tail only when the cached one is short. Returns the count (0: none), or
 * ECORRUPT when the positions are impossible. Only an `exact` look can tell: one
 * where nobody else moves the cursor and head (SOLO, or holding the ring's claim
 * lock). Without it, a cursor read before the tail may be far behind by now (other
 * members took and released meanwhile): such a look answers 1, "look under the lock".
 */
static inline int64_t untaken(rmpsc_channel *ch, uint32_t s, uint64_t cursor, size_t max, int exact)
{
	uint64_t avail = ch->tails[s] - cursor;
	if (avail < max || avail > ch->L.capacity) {
		/* C1: acquire pairs with the producer's release of tail (A1). */
		ch->tails[s] = load_acquire(&slot_ctrl(ch, s)->tail);
		avail = ch->tails[s] - cursor;
		/* The group's head, too: it trails the cursor by the open claims. */
		if (unlikely(avail > ch->L.capacity ||
			     ch->tails[s] - load_relaxed(group_head(ch, ch->group, s)) > ch->L.capacity))
			return exact ? RMPSC_ECORRUPT : 1;
	}
	return (int64_t)avail;
}

/* The span of n records of ring s from position pos, cut at the buffer's end. */
static inline uint32_t span_at(const rmpsc_channel *ch, uint32_t s, uint64_t pos, uint64_t n, size_t max, const void **ptr)
{
	uint64_t idx = pos & (ch->L.capacity - 1);
	uint64_t k = ch->L.capacity - idx;
	if (k > n)
		k = n;
	if (k > max)
		k = max;
	*ptr = slot_data(ch, s) + idx * ch->L.record_size;
	return (uint32_t)k;
}

/* An empty ring or a corrupt one, found by a sweep. 0 to go on, or ECORRUPT. */
static int empty_or_corrupt(rmpsc_channel *ch, uint32_t s, int64_t avail)
{
	if (avail == 0) {
		rmpsc__slot_free_if_drained(ch, s); /* a deregistered slot is freed once drained */
		return 0;
	}
	if (ring_fenced(ch, s))
		return 0;
	ch->sweep_cursor = s + 1;
	return fence_ring(ch, s);
}

/*
 * SOLO plain stores happen only inside busy = 1 and only after the mode was seen
 * SOLO(us) past a hot barrier; a joiner sets PENDING, passes a cold barrier and
 * ends our solo mode only when it sees busy = 0 (group.c rmpsc__solo_end). So the
 * joiner never records our claim while we move it.
 */
static inline uint64_t solo_enter(rmpsc_channel *ch, struct member *mb)
{
	store_relaxed(&mb->busy, 1);
	hot_barrier(hot_light(ch->asymmetric));
	return load_acquire(&group_at(ch, ch->group)->mode);
}

static inline void solo_exit(struct member *mb)
{
	store_release(&mb->busy, 0); /* our plain stores are visible to a joiner that sees 0 */
}

static inline int is_solo(const rmpsc_channel *ch, uint64_t m)
{
	return mode_kind(m) == MODE_SOLO && mode_solo(m) == (uint32_t)ch->member;
}

/*
 * SOLO (inside solo_enter): the claim a handle of ours left open on ring s
 * (head < cursor: read and not advanced past) is served again; a head that is not
 * a possible open claim was written by someone else (a hostile region).
 * Returns the count, or ECORRUPT.
 */
static int solo_open_span(rmpsc_channel *ch, uint32_t s, uint64_t head, uint64_t cursor, size_t max, const void **ptr,
			  uint32_t *slot)
{
	uint64_t tail = load_acquire(&slot_ctrl(ch, s)->tail);
	if (cursor - head > ch->L.capacity || tail - head > ch->L.capacity || cursor - head > tail - head)
		return RMPSC_ECORRUPT;
	ch->solo_open = s;
	uint32_t d = load_relaxed(&member_at(ch, (uint32_t)ch->member)->deliveries);
	ch->deliveries = d ? d : 1;
	*slot = s;
	return (int)span_at(ch, s, head, cursor - head, max, ptr);
}

/*
 * SOLO: we take records alone, with plain stores. A claim left open is served
 * again first. Every ring is looked at, starting after the one served last
 * (fairness), so "empty" means empty: an idle ring costs one load of a tail line
 * nobody writes.
 */
static int solo_take(rmpsc_channel *ch, size_t max, const void **ptr, uint32_t *slot)
{
	uint32_t g = ch->group;
	struct member *mb = member_at(ch, (uint32_t)ch->member);
	/* The claim our place left open (whichever handle of this process took it) is
	 * served again before anything new: one open ring at a time. */
	uint32_t open = load_relaxed(&mb->solo_ring);
	if (open) {
		uint32_t s = open - 1;
		if (s < ch->L.max_producers && !ring_fenced(ch, s)) {
			uint64_t head = load_relaxed(group_head(ch, g, s));
			uint64_t cursor = load_relaxed(&gpos_at(ch, g, s)->cursor);
			if (head != cursor) {
				int n = solo_open_span(ch, s, head, cursor, max, ptr, slot);
				return n > 0 ? n : empty_or_corrupt(ch, s, n);
			}
		}
		store_relaxed(&mb->solo_ring, 0);
	}
	uint32_t n_slots = slot_limit(ch);
	uint32_t s = ch->sweep_cursor < n_slots ? ch->sweep_cursor : 0;
	for (uint32_t i = 0; i < n_slots; i++, s = s + 1 < n_slots ? s + 1 : 0) {
		struct group_pos *p = gpos_at(ch, g, s);
		uint64_t cursor = load_relaxed(&p->cursor);
		uint64_t head = load_relaxed(group_head(ch, g, s));
		if (unlikely(head != cursor) && !ring_fenced(ch, s)) { /* open, by another handle of ours */
			int n = solo_open_span(ch, s, head, cursor, max, ptr, slot);
			if (n > 0)
				return n;
			return empty_or_corrupt(ch, s, n);
		}
		int64_t avail = untaken(ch, s, cursor, max, 1);
		if (avail <= 0 || unlikely(ring_fenced(ch, s))) {
			int rc = empty_or_corrupt(ch, s, avail);
			if (rc)
				return rc;
			continue;
		}
		uint32_t n = span_at(ch, s, cursor, (uint64_t)avail, max, ptr);
		store_relaxed(&mb->solo_ring, s + 1);
		store_relaxed(&p->cursor, cursor + n); /* the claim: read by a recoverer if we die */
		ch->solo_open = s;
		ch->deliveries = 1;
		if (unlikely(load_relaxed(&mb->deliveries) != 1))
			store_relaxed(&mb->deliveries, 1); /* for whoever records this claim (group.c) */
		ch->sweep_cursor = s + 1;
		*slot = s;
		return (int)n;
	}
	return 0;
}

#define TAKE_BUSY  (INT32_MIN + 2) /* another process holds what we need for a moment: look again soon */
#define TAKE_AGAIN (INT32_MIN + 3)

/* The claim of place f (ours, or an orphan we adopted), served again. */
static int serve_claim(rmpsc_channel *ch, uint32_t f, uint64_t c, size_t max, const void **ptr, uint32_t *slot)
{
	struct member *mb = member_at(ch, f);
	uint32_t s = claim_slot_of(c);
	uint64_t start = load_relaxed(&mb->claim_start);
	uint64_t left = claim_left(c, start);
	if (s >= ch->L.max_producers || left == 0 || left > ch->L.capacity)
		return rmpsc__set_error(RMPSC_ECORRUPT, "member place %u: an impossible claim (ring %u, %llu records)",
					f, s, (unsigned long long)left);
	ch->deliveries = load_relaxed(&mb->deliveries);
	*slot = s;
	return (int)span_at(ch, s, start, left, max, ptr);
}

/* SHARED: claims under the per-ring lock; one CAS per claimed batch. */
static int shared_sweep(rmpsc_channel *ch, size_t max, const void **ptr, uint32_t *slot)
{
	uint32_t g = ch->group, e = (uint32_t)ch->member;
	struct member *mb = member_at(ch, e);
	uint32_t n_slots = slot_limit(ch);
	uint32_t s = ch->sweep_cursor < n_slots ? ch->sweep_cursor : 0;
	int busy = 0;
	for (uint32_t i = 0; i < n_slots; i++, s = s + 1 < n_slots ? s + 1 : 0) {
		struct group_pos *p = gpos_at(ch, g, s);
		int64_t avail = untaken(ch, s, load_acquire(&p->cursor), 1, 0);
		if (avail <= 0 || unlikely(ring_fenced(ch, s))) {
			int rc = empty_or_corrupt(ch, s, avail);
			if (rc)
				return rc;
			continue;
		}
		uint64_t unlocked = 0;
		if (!cas_acq_rel(&p->lock, &unlocked, (uint64_t)e + 1)) {
			busy = 1; /* another member is taking a claim here: look again soon */
			continue;
		}
		uint64_t cursor = load_acquire(&p->cursor);
		avail = untaken(ch, s, cursor, max, 1);
		if (avail <= 0) {
			store_release(&p->lock, 0);
			if (avail < 0 && !ring_fenced(ch, s)) {
				ch->sweep_cursor = s + 1;
				return fence_ring(ch, s);
			}
			continue;
		}
		uint32_t n = span_at(ch, s, cursor, (uint64_t)avail, max, ptr);
		/* The record before the cursor moves: a recompute that reads the new
		 * cursor sees the claim (recompute_head). */
		store_relaxed(&mb->claim_start, cursor);
		store_relaxed(&mb->deliveries, 1);
		store_release(&mb->claim, claim_word(s, cursor + n));
		store_release(&p->cursor, cursor + n);
		store_release(&p->lock, 0);
		ch->deliveries = 1;
		ch->sweep_cursor = s + 1;
		*slot = s;
		return (int)n;
	}
	return busy ? TAKE_BUSY : 0;
}

static int shared_take(rmpsc_channel *ch, uint64_t m, size_t max, const void **ptr, uint32_t *slot)
{
	uint64_t c = load_acquire(&member_at(ch, (uint32_t)ch->serving)->claim);
	if (c) /* a claim left open, or an adopted orphan's */
		return serve_claim(ch, (uint32_t)ch->serving, c, max, ptr, slot);
	if (ch->serving != ch->member)
		rmpsc__orphan_done(ch); /* released by another handle of ours */
	if (mode_count(m) == 1 && mode_kind(m) == MODE_SHARED && rmpsc__go_solo(ch))
		return TAKE_AGAIN; /* alone now */
	int adopted = rmpsc__adopt_orphan(ch);
	if (adopted > 0) {
		c = load_acquire(&member_at(ch, (uint32_t)ch->serving)->claim);
		if (c)
			return serve_claim(ch, (uint32_t)ch->serving, c, max, ptr, slot);
		rmpsc__orphan_done(ch); /* nothing left in it */
	}
	/* A claim lock is held for a few stores: look again a few times before
	 * reporting busy to a wait that has a deadline. */
	for (int tries = 0;; tries++) {
		int n = shared_sweep(ch, max, ptr, slot);
		if (n == 0 && adopted < 0)
			return TAKE_BUSY; /* orphans wait for us behind the group's lock */
		if (n != TAKE_BUSY || tries == BUSY_TRIES)
			return n;
		sched_yield();
	}
}

/*
 * Take the next span for this member: returns a count with *ptr and *slot set, 0
 * when there is nothing to take, TAKE_BUSY when another process holds what we
 * need for a moment (a claim lock, the group's lock, a solo member inside a take),
 * or ECORRUPT after fencing a ring.
 */
static int take_span(rmpsc_channel *ch, size_t max, const void **ptr, uint32_t *slot)
{
	struct member *mb = member_at(ch, (uint32_t)ch->member);
	for (int round = 0; round < 4; round++) {
		uint64_t m = solo_enter(ch, mb);
		if (likely(is_solo(ch, m))) {
			int n = solo_take(ch, max, ptr, slot);
			solo_exit(mb);
			return n;
		}
		solo_exit(mb);
		ch->solo_open = NO_RING; /* an open claim of ours is a record now, or about to be */
		uint32_t kind = mode_kind(m);
		if ((kind == MODE_SOLO || kind == MODE_PENDING) && mode_solo(m) >= ch->L.max_consumers)
			return rmpsc__set_error(RMPSC_ECORRUPT, "group \"%s\": its mode names member place %u of %u",
						ch->group_name, mode_solo(m), ch->L.max_consumers);
		if (kind == MODE_PENDING) { /* a member joined a solo member: end its solo mode */
			int r = rmpsc__solo_end(ch, m);
			if (r < 0)
				return r;
			if (r == 0)
				return TAKE_BUSY;
			continue;
		}
		if (kind != MODE_SHARED)
			return kind == MODE_SOLO ? TAKE_BUSY : 0; /* another's SOLO: a join is being counted */
		int n = shared_take(ch, m, max, ptr, slot);
		if (n != TAKE_AGAIN)
			return n;
	}
	return TAKE_BUSY;
}

/* Release the first n records of the span taken from ring s. */
static inline void release_span(rmpsc_channel *ch, uint32_t s, uint64_t n)
{
	uint32_t g = ch->group;
	struct member *self = member_at(ch, (uint32_t)ch->member);
	for (;;) {
		uint64_t m = solo_enter(ch, self);
		if (likely(is_solo(ch, m))) {
			/* Nobody else takes records of this group, so a store will do.
			 * C2: release orders our reads before the producer reuses the slots. */
			uint64_t *head = group_head(ch, g, s);
			uint64_t h = load_relaxed(head) + n;
			store_release(head, h);
			if (h == load_relaxed(&gpos_at(ch, g, s)->cursor)) {
				store_relaxed(&self->solo_ring, 0);
				ch->solo_open = NO_RING;
			}
			solo_exit(self);
			/* No FIFO cache: producers come and go, each with a FIFO of its own. */
			wake_after_release(ch, s, hot_light(ch->asymmetric));
			return;
		}
		solo_exit(self);
		if (mode_kind(m) != MODE_PENDING || mode_solo(m) != (uint32_t)ch->member)
			break;
		/* A member joined while our span was open: record it first (the group's
		 * lock is held by live processes for a few stores at a time). */
		if (rmpsc__solo_end(ch, m) <= 0)
			sched_yield();
	}
	ch->solo_open = NO_RING;
	struct member *mb = member_at(ch, (uint32_t)ch->serving);
	uint64_t c = load_acquire(&mb->claim);
	if (!c || claim_slot_of(c) != s)
		return; /* not ours any more (a corrupt region): nothing to release */
	uint64_t start = load_relaxed(&mb->claim_start);
	uint64_t left = claim_left(c, start);
	if (n >= left)
		store_release(&mb->claim, 0);
	else
		store_release(&mb->claim_start, start + n); /* one store: a member dying here leaves a whole claim */
	/* Clear, fence, scan: of two members releasing at once, at least one sees
	 * the other's clear, so the head always reaches the last release. */
	smp_mb();
	rmpsc__recompute_head(ch, g, s); /* wakes whoever waits for the head to move */
	if (n >= left && ch->serving != ch->member)
		rmpsc__orphan_done(ch);
}

/* The first position of the span just taken from ring s. */
static inline uint64_t span_start_pos(rmpsc_channel *ch, uint32_t s)
{
	if (ch->solo_open == s)
		return load_relaxed(group_head(ch, ch->group, s));
	return load_relaxed(&member_at(ch, (uint32_t)ch->serving)->claim_start);
}

/* Is a reservation open on a slot whose owner is alive? (closed-channel drain) */
static int open_reservations(rmpsc_channel *ch)
{
	/* Every slot, not slot_limit(): slot_hw is not part of the seq_cst protocol. */
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		/* After the cold barrier in data_ready: the consumer half of the close protocol. */
		if (!load_seq_cst(&c->reserving))
			continue;
		uint64_t w = load_acquire(&c->owner);
		uint32_t st = owner_state(w);
		if ((st == RMPSC_SLOT_ACTIVE || st == RMPSC_SLOT_REGISTERING) && rmpsc__owner_alive(&ch->file, w))
			return 1;
	}
	return 0;
}

struct data_wait {
	rmpsc_channel *ch;
	size_t max;
	const void *ptr;
	uint32_t slot;
	int polling; /* sleeping in slices because a reservation is open after close */
	int busy;    /* ... or because another process held what we needed for a moment */
};

/* A waiting member of a channel with several places looks for dead peers now
 * and then: their claims are redelivered, a solo member that will never
 * acknowledge a joiner is taken out of the way. */
static void maybe_recover_peers(rmpsc_channel *ch)
{
	int64_t now = rmpsc__monotonic_ns();
	if (now < ch->next_recover_ns)
		return;
	ch->next_recover_ns = now + LIVENESS_PERIOD_NS;
	uint64_t me = 0;
	rmpsc__recover_members(ch, &me, (int)ch->group);
}

static int data_ready(void *arg)
{
	struct data_wait *w = arg;
	rmpsc_channel *ch = w->ch;
	int n = take_span(ch, w->max, &w->ptr, &w->slot);
	ch->take_busy = n == TAKE_BUSY;
	if (n == TAKE_BUSY || (n == 0 && ch->L.max_consumers > 1))
		maybe_recover_peers(ch); /* a holder that died holds for good */
	if (n == TAKE_BUSY) {
		w->busy = 1; /* sleep in short slices from now on */
		return w->polling ? WAIT_NOT_READY : WAIT_POLL;
	}
	if (n != 0)
		return n;
	if (!load_seq_cst(&ch->hdr->closed)) {
		if (!w->busy)
			return WAIT_NOT_READY;
		w->busy = 0; /* nothing held any more: the wait's own slices again */
		return WAIT_RESLICE;
	}
	/* Seen closed: one cold barrier before trusting `reserving` (see top). If it
	 * failed, nothing can be trusted yet: poll and try again, and say so when it
	 * keeps failing rather than poll for ever. */
	if (!ch->close_fenced) {
		if (cold_barrier(ch->asymmetric) != 0) {
			if (++ch->close_fence_failures >= CLOSE_FENCE_TRIES)
				return rmpsc__sys_error("membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) keeps failing: "
							"cannot tell whether the closed channel is drained");
			return w->polling ? WAIT_NOT_READY : WAIT_POLL;
		}
		ch->close_fenced = 1;
	}
	if (open_reservations(ch))
		return w->polling ? WAIT_NOT_READY : WAIT_POLL;
	/* Every reservation ended before we looked: one more sweep sees all commits. */
	n = take_span(ch, w->max, &w->ptr, &w->slot);
	if (n == TAKE_BUSY)
		return w->polling ? WAIT_NOT_READY : WAIT_POLL;
	if (n != 0)
		return n;
	/* Orphans of the group are records it has not got yet: adopt them first. */
	if (ch->L.max_consumers > 1 && rmpsc__has_orphans(ch)) {
		fetch_add_relaxed(&group_at(ch, ch->group)->orphans, 1); /* the hint adopters look at */
		return w->polling ? WAIT_NOT_READY : WAIT_POLL;
	}
	return rmpsc__set_error_static(RMPSC_ECLOSED, "closed: the channel is closed and drained");
}

/* The periodic part of the consumer's sweep: reclaim dead producers' slots (and
 * recover dead members). */
static void maybe_check_liveness(rmpsc_channel *ch)
{
	if ((++ch->sweeps & 255) != 0)
		return;
	int64_t now = rmpsc__monotonic_ns();
	if (now < ch->next_liveness_ns)
		return;
	ch->next_liveness_ns = now + LIVENESS_PERIOD_NS;
	rmpsc_reclaim_dead(ch);
}

static int wait_for_data_slow(rmpsc_channel *ch, struct data_wait *w, int64_t timeout_ns);

/* The linger's record count: at most half a ring, so a producer never fills its
 * ring before it wakes us. 1: no coalescing. */
static inline uint32_t coalesce_records(const rmpsc_channel *ch)
{
	uint32_t k = ch->coalesce_records;
	return k < ch->L.capacity / 2 ? k : ch->L.capacity / 2;
}

static uint64_t untaken_records(const rmpsc_channel *ch, uint64_t enough);

/*
 * A linger ended and the wait took `n` records: was it worth it? A request and
 * its reply (one record at a time, each answered before the next comes) gain
 * nothing from lingering and lose up to the delay on each round trip; a stream
 * gains its batches. So a linger that found one record alone makes the next
 * waits that get past their poll skip it, 16, 32 ... up to 1024 of them (a
 * request/response pair then lingers on fewer than 1 in 1000 round trips), and
 * one that found more makes lingering the rule again. A linger that a sender
 * waiting for slabs ended (`for_slabs`: member.woken_for_slabs, notify.h) counts
 * as one that found a single record: the pool, not the ring, bounds what such a
 * stream can gather, and each linger would stall its sender until the pool ran dry.
 */
#define LINGER_BACKOFF_FIRST 16u
#define LINGER_BACKOFF_MAX   1024u
static void linger_learn(rmpsc_channel *ch, int n, int for_slabs)
{
	if (!for_slabs && (n >= 2 || untaken_records(ch, 1))) {
		ch->linger_backoff = 0;
		return;
	}
	uint32_t b = ch->linger_backoff ? ch->linger_backoff * 2 : LINGER_BACKOFF_FIRST;
	ch->linger_backoff = b < LINGER_BACKOFF_MAX ? b : LINGER_BACKOFF_MAX;
	ch->linger_skip = ch->linger_backoff;
}

/* Wait for the first readable span. Returns its count (ptr/slot in *w) or an error. */
static inline int wait_for_data(rmpsc_channel *ch, struct data_wait *w, int64_t timeout_ns)
{
	maybe_check_liveness(ch);
	int n = take_span(ch, w->max, &w->ptr, &w->slot);
	ch->take_busy = n == TAKE_BUSY;
	if (unlikely(n == 0 || n == TAKE_BUSY))
		n = wait_for_data_slow(ch, w, timeout_ns);
	if (likely(n > 0)) {
		ch->arm_fresh = 1;
		if (unlikely(ch->linger_from || ch->linger_for_slabs)) {
			/* a readiness fd's linger ended with these records */
			linger_learn(ch, n, ch->linger_for_slabs);
			ch->linger_from = 0; /* a readiness wait after this lingers afresh */
			ch->linger_for_slabs = 0;
		}
	}
	return n;
}

/* Nothing was readable at the first sweep: poll or wait. */
static int wait_for_data_slow(rmpsc_channel *ch, struct data_wait *w, int64_t timeout_ns)
{
	int n;
	if (timeout_ns == 0 && !load_seq_cst(&ch->hdr->closed)) /* the common poll: one sweep, no waiter */
		return rmpsc__set_error_static(RMPSC_EEMPTY, "empty: nothing to read without waiting");
	struct deadline dl = deadline_from_timeout(timeout_ns);
	uint32_t e = (uint32_t)ch->member;
	struct member *mb = member_at(ch, e);
	/* A readiness fd armed on this place shares its announcement: keep it. */
	int armed = rmpsc__member_fifo(&ch->file, e)->armed;
	store_relaxed(&mb->wait_how, WAIT_FUTEX | (armed ? WAIT_FD : 0));
	int slept = 0, lingered = 0, lingers = !ch->linger_skip && ch->coalesce_delay_ns > 0 && coalesce_records(ch) > 1;
	if (lingers)
		store_relaxed(&mb->woken_for_slabs, 0); /* only a wake-up of this linger counts */
	for (;;) {
		struct waiter wt = { .mask = &ch->hdr->waiting_members[e >> 6],
				     .bit = 1ull << (e & 63),
				     .seq = &mb->wake_seq,
				     .wake_min = &mb->wake_min,
				     .min_records = coalesce_records(ch),
				     .linger_ns = w->polling || !lingers ? 0 : ch->coalesce_delay_ns,
				     .slept = &slept,
				     .lingered = &lingered,
				     .ready = data_ready,
				     .arg = w,
				     .would_block = RMPSC_EEMPTY,
				     .spin_ns = rmpsc__spin_ns,
				     /* several members share the words, and look for dead peers now and then */
				     .slice_ns = w->polling                ? (w->busy ? BUSY_POLL_NS : DRAIN_POLL_NS)
						 : ch->L.max_consumers > 1 ? LIVENESS_PERIOD_NS
									   : 0,
				     .interruptible = interruptible(ch),
				     .asymmetric = ch->asymmetric,
				     .armed_fd = armed };
		n = rmpsc__wait(&wt, &dl);
		if ((n != WAIT_POLL && n != WAIT_RESLICE) || dl.try_once)
			break;
		w->polling = n == WAIT_POLL;
	}
	if (armed)
		store_relaxed(&mb->wait_how, WAIT_FD);
	if (lingered && n > 0) {
		linger_learn(ch, n, (int)xchg_acq_rel(&mb->woken_for_slabs, 0));
		ch->linger_from = 0; /* learnt here: not again as a readiness fd's linger */
	} else if (slept && !lingers && ch->linger_skip) {
		ch->linger_skip--; /* past the poll, and it did not linger: one of those to skip */
	}
	if (n == WAIT_POLL || n == WAIT_RESLICE)
		return rmpsc__set_error_static(RMPSC_EEMPTY, "empty: nothing to read without waiting");
	return n;
}

/* Start a consuming call: forget an unadvanced rmpsc_read span (it is simply read
 * again) and wait for the first readable span. */
static inline int take_first(rmpsc_channel *ch, struct data_wait *w, size_t max, int64_t timeout_ns)
{
	forget_read(ch);
	*w = (struct data_wait){ .ch = ch, .max = clamp_count(max) };
	return wait_for_data(ch, w, timeout_ns);
}

/* The next readable span, up to `left` records, without waiting; 0 when there is
 * none. A ring found fenced now is reported by the next call. */
static inline int take_next(rmpsc_channel *ch, struct data_wait *w, size_t left)
{
	int n = take_span(ch, left, &w->ptr, &w->slot);
	if (n == TAKE_BUSY)
		return 0;
	if (unlikely(n < 0)) {
		ch->pending_error = n;
		return 0;
	}
	return n;
}

int rmpsc_consume(rmpsc_channel *ch, size_t max, int64_t timeout_ns, rmpsc_consume_fn fn, void *ctx)
{
	int rc = consumer_enter(ch, "consume");
	if (rc)
		return rc;
	if (!fn || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "consume: max must be >= 1 and fn non-NULL");
	struct data_wait w;
	int n = take_first(ch, &w, max, timeout_ns);
	if (n <= 0)
		return n;
	size_t done = 0;
	uint8_t *in_cb = rmpsc__member_in_callback(&ch->file, (uint32_t)ch->member);
	do {
		uint64_t start = span_start_pos(ch, w.slot);
		span_begin(ch, w.slot, start, (uint64_t)n);
		ch->in_callback = 1;
		*in_cb = 1; /* for every handle of this process on our place */
		int stop = fn(ctx, w.ptr, (size_t)n, w.slot);
		*in_cb = 0;
		ch->in_callback = 0;
		ch->in_span = 0;
		if (unlikely(!still_member(ch))) { /* the callback left the group: the span went with it */
			forget_claim(ch);
			return done ? (int)done
				    : rmpsc__set_error(RMPSC_ECONSUMER, "consume: the callback left the group");
		}
		if (likely(span_start_pos(ch, w.slot) == start)) /* else released meanwhile: not twice */
			release_span(ch, w.slot, (uint64_t)n);
		if (ch->n_deferred)
			rmpsc__slab_flush_deferred(ch);
		done += (size_t)n;
		if (stop)
			break;
	} while (done < w.max && (n = take_next(ch, &w, w.max - done)) > 0); /* all available, up to max */
	return (int)done;
}

/* consume with a copy for the callback, without the span bookkeeping: a copy
 * frees no slabs, and nothing runs between taking records and releasing them. */
int rmpsc_recv(rmpsc_channel *ch, void *buf, size_t max, int64_t timeout_ns)
{
	int rc = consumer_enter(ch, "recv");
	if (rc)
		return rc;
	if (!buf || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "recv: max must be >= 1 and buf non-NULL");
	struct data_wait w;
	int n = take_first(ch, &w, max, timeout_ns);
	if (n <= 0)
		return n;
	unsigned char *dst = buf;
	size_t done = 0, rs = ch->L.record_size;
	do {
		memcpy(dst, w.ptr, (size_t)n * rs);
		dst += (size_t)n * rs;
		release_span(ch, w.slot, (uint64_t)n);
		done += (size_t)n;
	} while (done < w.max && (n = take_next(ch, &w, w.max - done)) > 0);
	return (int)done;
}

int rmpsc_read(rmpsc_channel *ch, size_t max, int64_t timeout_ns, const void **ptr, uint32_t *slot)
{
	int rc = consumer_enter(ch, "read");
	if (rc)
		return rc;
	if (!ptr || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "read: max must be >= 1 and ptr non-NULL");
	struct data_wait w;
	int n = take_first(ch, &w, max, timeout_ns);
	if (n <= 0)
		return n;
	ch->read_slot = w.slot;
	ch->read_count = (uint32_t)n;
	ch->read_pos = span_start_pos(ch, w.slot);
	span_begin(ch, w.slot, ch->read_pos, (uint64_t)n);
	*ptr = w.ptr;
	if (slot)
		*slot = w.slot;
	return n;
}

int rmpsc_advance(rmpsc_channel *ch, size_t n)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "advance: NULL channel");
	if (n > ch->read_count)
		return rmpsc__set_error(RMPSC_EINVAL, "advance: n %zu exceeds the %u records of the last read", n,
					ch->read_count);
	if (ch->member_gen != fork_generation())
		return rmpsc__set_error(RMPSC_EFORKED, "advance: the read was made in another process");
	if (unlikely(!still_member(ch))) { /* left, or lost, since the read */
		forget_claim(ch);
		return n ? rmpsc__set_error(RMPSC_ECONSUMER, "advance: this handle is no longer a member of its group")
			 : RMPSC_OK;
	}
	uint32_t slot = ch->read_slot;
	uint64_t pos = ch->read_pos;
	forget_read(ch);
	if (n && span_start_pos(ch, slot) != pos)
		return rmpsc__set_error(RMPSC_EINVAL,
					"advance: the span was advanced through another handle meanwhile");
	if (n)
		release_span(ch, slot, n);
	if (ch->n_deferred)
		rmpsc__slab_flush_deferred(ch);
	return RMPSC_OK;
}

int rmpsc_wait_readable(rmpsc_channel *ch, int64_t timeout_ns)
{
	int rc = consumer_enter(ch, "wait_readable");
	if (rc)
		return rc;
	struct data_wait w = { .ch = ch, .max = 1 };
	int n = wait_for_data(ch, &w, timeout_ns);
	return n > 0 ? RMPSC_OK : n;
}

/* Records committed on the rings: by the group of `member` (a member's handle),
 * else those some group has not released yet. Stops counting at `enough`. */
static uint64_t pending_records(const rmpsc_channel *ch, int member, uint64_t enough)
{
	uint64_t total = 0;
	uint32_t n_slots = slot_limit(ch);
	for (uint32_t s = 0; s < n_slots && total < enough; s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		if (owner_state(load_relaxed(&c->owner)) == RMPSC_SLOT_FENCED)
			continue;
		uint64_t tail = load_acquire(&c->tail);
		uint64_t n =
			tail - (member ? load_acquire(group_head(ch, ch->group, s)) : rmpsc__released_head(ch, s, tail));
		total += n <= ch->L.capacity ? n : 0; /* a racing snapshot, or a corrupt ring */
	}
	return total;
}

uint64_t rmpsc_pending(const rmpsc_channel *ch)
{
	if (!ch)
		return 0;
	return pending_records(ch, ch->member >= 0 && ch->member_gen == fork_generation(), UINT64_MAX);
}

/*
 * Pending records only shrink when a consumer releases some (or a group goes,
 * or the channel closes): each of those wakes the progress waiters (notify.h),
 * so the wait sleeps on the header's progress words. The slice bounds a sleep
 * that no release would end: a dead producer's ring fenced (its records stop
 * counting), or a consumer built before releases woke these waiters; and, with
 * groups, it is how often the waiter looks for dead members.
 */
#define PENDING_POLL_NS   100000000
/* Releases that skip the wake-up in a row before one wakes anyway (rmpsc__pending_at_limit). */
#define PENDING_SKIPS_MAX 32

/* A sender waits for the pending records to drop below a bound (a queue's maxsize). */
struct pending_wait {
	rmpsc_channel *ch;
	uint64_t limit;
};

static int pending_below(void *arg)
{
	const struct pending_wait *pw = arg;
	rmpsc_channel *ch = pw->ch;
	if (is_closed(ch))
		return RMPSC_ECLOSED;
	/* Not the handle's own group: the membership is another thread's to change,
	 * and records hold ring space until every group has released them. */
	if (pending_records(ch, 0, pw->limit) < pw->limit)
		return RMPSC_OK;
	if (grouped(ch)) {
		/* A group whose members died holds its records until they are recovered
		 * (an ephemeral group then goes away), as for a producer waiting for
		 * space. Per handle, not per wait: a binding waits in short slices. Any
		 * thread may wait on the handle, so the time is claimed by a CAS. */
		int64_t now = rmpsc__monotonic_ns();
		int64_t next = load_relaxed(&ch->pending_recover_ns);
		if (now >= next && cas_acq_rel(&ch->pending_recover_ns, &next, now + PENDING_POLL_NS) && next &&
		    rmpsc_reclaim_dead(ch) > 0 && pending_records(ch, 0, pw->limit) < pw->limit)
			return RMPSC_OK;
	}
	/* Members that linger for a batch keep the records that would make room,
	 * and the bound keeps the batch from ever filling: wake them (slab waits do
	 * the same, slab.c). */
	wake_lingerers(ch);
	return WAIT_NOT_READY;
}

int rmpsc__pending_at_limit(rmpsc_channel *ch)
{
	/* Two consumers releasing at once: each fences between its release and this
	 * count, so at least one of them counts both releases (on an asymmetric
	 * channel too, whose hot barrier orders nothing between consumers). */
	smp_mb();
	struct region_header *h = ch->hdr;
	uint32_t limit = load_acquire(&h->pending_limit);
	if (!limit || pending_records(ch, 0, limit) < limit)
		return 0;
	/* Nothing withdraws an announcement (the flag is shared): one left by a
	 * sender that timed out would keep every release counting for as long as
	 * the backlog stays. Every PENDING_SKIPS_MAX-th skip wakes instead, which
	 * clears it; a sender still waiting announces again. */
	if (fetch_add_acq_rel(&h->pending_skips, 1) + 1 >= PENDING_SKIPS_MAX) {
		store_relaxed(&h->pending_skips, 0);
		return 0;
	}
	return 1;
}

int rmpsc_wait_pending_below(rmpsc_channel *ch, uint64_t limit, int64_t timeout_ns)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "wait_pending_below: NULL channel");
	if (!limit)
		return rmpsc__set_error(RMPSC_EINVAL,
					"wait_pending_below: limit 0 (pending records are never below 0)");
	struct pending_wait pw = { ch, limit };
	struct region_header *h = ch->hdr;
	struct waiter wt = { .flag = &h->progress_waiting,
			     .seq = &h->progress_seq,
			     .ready = pending_below,
			     .arg = &pw,
			     .would_block = RMPSC_EFULL,
			     .spin_ns = rmpsc__spin_ns,
			     .slice_ns = PENDING_POLL_NS,
			     /* A limit past the word's range: announced as a plain waiter, whom
			      * every release wakes. */
			     .limit = limit <= UINT32_MAX ? &h->pending_limit : NULL,
			     .limit_value = (uint32_t)limit,
			     .interruptible = interruptible(ch),
			     .asymmetric = ch->asymmetric };
	struct deadline dl = deadline_from_timeout(timeout_ns);
	int rc = pending_below(&pw);
	if (rc == WAIT_NOT_READY)
		rc = rmpsc__wait(&wt, &dl);
	switch (rc) {
	case RMPSC_EFULL:
		return rmpsc__set_error(rc, "wait_pending_below: %llu records pending, not below %llu",
					(unsigned long long)pending_records(ch, 0, UINT64_MAX),
					(unsigned long long)limit);
	case RMPSC_ETIMEDOUT:
		return rmpsc__set_error(rc, "wait_pending_below: still %llu records pending at the deadline (limit %llu)",
					(unsigned long long)pending_records(ch, 0, UINT64_MAX),
					(unsigned long long)limit);
	case RMPSC_ECLOSED: return rmpsc__set_error(rc, "wait_pending_below: channel is closed");
	default: return rc;
	}
}

/* ------------------------------------------------------------------------- */
/* Coalesced wake-ups and the readiness fd (notify.h). */

int rmpsc_consumer_coalesce(rmpsc_channel *ch, uint32_t min_records, int64_t max_delay_ns)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_coalesce: NULL channel");
	if (max_delay_ns < 0 || max_delay_ns > RMPSC_COALESCE_MAX_DELAY_NS)
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_coalesce: max_delay_ns %lld out of range 0..%lld",
					(long long)max_delay_ns, (long long)RMPSC_COALESCE_MAX_DELAY_NS);
	ch->coalesce_records = min_records ? min_records : 1;
	ch->coalesce_delay_ns = max_delay_ns;
	return RMPSC_OK;
}

void rmpsc_consumer_coalescing(const rmpsc_channel *ch, uint32_t *min_records, int64_t *max_delay_ns)
{
	if (min_records)
		*min_records = ch ? ch->coalesce_records : 0;
	if (max_delay_ns)
		*max_delay_ns = ch ? ch->coalesce_delay_ns : 0;
}

/* Records this member's group has not taken, over every ring, counting up to
 * `enough` (a snapshot: with other members taking, it may be behind). */
static uint64_t untaken_records(const rmpsc_channel *ch, uint64_t enough)
{
	uint64_t total = 0;
	uint32_t n_slots = slot_limit(ch);
	for (uint32_t s = 0; s < n_slots && total < enough; s++) {
		if (ring_fenced(ch, s))
			continue; /* never read again */
		uint64_t n = load_acquire(&slot_ctrl(ch, s)->tail) - load_acquire(&gpos_at(ch, ch->group, s)->cursor);
		total += n <= ch->L.capacity ? n : 0; /* a racing snapshot, or impossible: a take reports it */
	}
	return total;
}

/* A span we took and did not release (a read not advanced past, or cancelled):
 * the next consumer call reads it again, so it is records to read. */
static int own_open_claim(const rmpsc_channel *ch)
{
	return load_relaxed(&member_at(ch, (uint32_t)ch->member)->solo_ring) ||
	       load_acquire(&member_at(ch, (uint32_t)ch->serving)->claim);
}

int rmpsc_ready_fd(rmpsc_channel *ch)
{
	int rc = consumer_enter(ch, "ready_fd");
	if (rc)
		return rc;
	uint32_t e = (uint32_t)ch->member;
	rmpsc__process_lock();
	struct member_fifo *f = rmpsc__member_fifo(&ch->file, e);
	if (!f->fd1) {
		uint64_t gen;
		int fd = rmpsc__fifo_create(ch, 'm', e, &gen);
		if (fd < 0) {
			rmpsc__process_unlock();
			return fd;
		}
		f->fd1 = fd + 1;
		f->gen = gen;
		rmpsc__fifo_remove(ch, 'm', e, xchg_acq_rel(&member_at(ch, e)->fifo_gen, gen));
	}
	int fd = f->fd1 - 1;
	rmpsc__process_unlock();
	return fd;
}

int rmpsc_ready_arm(rmpsc_channel *ch, int64_t *wait_ns)
{
	int rc = consumer_enter(ch, "ready_arm");
	if (rc)
		return rc;
	if (!wait_ns)
		return rmpsc__set_error(RMPSC_EINVAL, "ready_arm: NULL wait_ns");
	uint32_t e = (uint32_t)ch->member;
	struct member_fifo *f = rmpsc__member_fifo(&ch->file, e);
	if (!f->fd1)
		return rmpsc__set_error(RMPSC_EINVAL, "ready_arm: no readiness fd (call rmpsc_ready_fd first)");
	*wait_ns = 0;
	/* Drain before looking: a wake-up sent after the look below stays readable. */
	rmpsc__fifo_drain(f->fd1 - 1);
	if (is_closed(ch)) {
		/* Once, to let the caller find what is left, or ECLOSED; after that the
		 * drain may wait for an open reservation: poll, as blocking calls do. */
		if (!ch->ready_closed_seen++)
			return 1;
		*wait_ns = DRAIN_POLL_NS;
		return 0;
	}
	if (ch->L.max_consumers > 1)
		maybe_recover_peers(ch); /* dead members' claims are ours to adopt */
	struct member *mb = member_at(ch, e);
	uint64_t *mask = &ch->hdr->waiting_members[e >> 6], bit = 1ull << (e & 63);
	store_relaxed(&mb->wait_how, WAIT_FD);
	f->armed = 1;
	/* Coalescing: linger (unfenced, as a blocking wait does) from the first arm
	 * after records were taken, for at most the delay. */
	uint32_t k = coalesce_records(ch);
	int64_t now = rmpsc__monotonic_ns();
	if (k > 1 && ch->coalesce_delay_ns > 0 && !ch->linger_from && ch->arm_fresh) {
		/* The first arm after records were taken: a wait that may linger. */
		ch->arm_fresh = 0;
		if (ch->linger_skip) { /* lingering found single records lately (linger_learn) */
			ch->linger_skip--;
		} else {
			ch->linger_from = now;
			store_relaxed(&mb->woken_for_slabs, 0); /* only a wake-up of this linger counts */
		}
	}
	/* A sender waiting for slabs wrote our FIFO during the linger: end it now (the
	 * records it waits on are here), and stop lingering for a while (linger_learn). */
	if (ch->linger_from && load_relaxed(&mb->woken_for_slabs) && xchg_acq_rel(&mb->woken_for_slabs, 0)) {
		ch->linger_from = 0;
		ch->linger_for_slabs = 1;
	}
	int64_t left = k > 1 && ch->linger_from ? ch->linger_from + ch->coalesce_delay_ns - now : 0;
	if (left > 0) {
		store_relaxed(&mb->wake_min, k);
		fetch_or_acq_rel(mask, bit);
		if (untaken_records(ch, k) >= k)
			goto ready;
		*wait_ns = left;
		return 0;
	}
	/* Announce, fence, look again (wait.h): a record published after the look
	 * finds our bit and writes the FIFO. */
	store_relaxed(&mb->wake_min, 1);
	fetch_or_acq_rel(mask, bit);
	int fenced = cold_barrier(ch->asymmetric) == 0;
	if (untaken_records(ch, 1) || is_closed(ch) || own_open_claim(ch))
		goto ready;
	if (ch->L.max_consumers > 1 && rmpsc__has_orphans(ch)) {
		fetch_add_relaxed(&group_at(ch, ch->group)->orphans, 1); /* the hint takes look at */
		goto ready;
	}
	/* Several members: dead peers are looked for now and then (data_ready); an
	 * unfenced announcement may be missed: poll. */
	*wait_ns = !fenced ? UNFENCED_POLL_NS : ch->L.max_consumers > 1 ? LIVENESS_PERIOD_NS : READY_RECHECK_NS;
	return 0;
ready:
	if (ch->take_busy) {
		/* What is there was held by a peer for a moment at our last take (a claim
		 * lock, the group's lock): look again shortly, as a blocking wait would. */
		*wait_ns = BUSY_POLL_NS;
		return 0;
	}
	fetch_and_acq_rel(mask, ~bit);
	f->armed = 0;
	return 1;
}

void rmpsc_ready_disarm(rmpsc_channel *ch)
{
	if (!ch || !still_member(ch))
		return;
	uint32_t e = (uint32_t)ch->member;
	rmpsc__member_fifo(&ch->file, e)->armed = 0;
	fetch_and_acq_rel(&ch->hdr->waiting_members[e >> 6], ~(1ull << (e & 63)));
}

/* ------------------------------------------------------------------------- */
/* Messages over slabs. */

int rmpsc_message_at(rmpsc_channel *ch, size_t index, struct rmpsc_message *m)
{
	if (!ch || !m)
		return rmpsc__set_error(RMPSC_EINVAL, "message_at: NULL channel or message");
	if (index >= ch->read_count)
		return rmpsc__set_error(RMPSC_EINVAL, "message_at: index %zu is outside the %u records of the last read",
					index, ch->read_count);
	uint64_t pos = ch->read_pos + index;
	const unsigned char *rec =
		slot_data(ch, ch->read_slot) + (pos & (ch->L.capacity - 1)) * (uint64_t)ch->L.record_size;
	return rmpsc__message_of_record(ch, rec, ch->read_slot, pos, m);
}

int rmpsc_advance_messages(rmpsc_channel *ch, size_t n)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "advance_messages: NULL channel");
	/* With groups (or no pool) the slabs go back once every group released their
	 * records (slab.c). The one consumer of a channel without groups frees them:
	 * deferred while their records are read, so a death in between loses none. */
	if (ch->L.slab_count && !grouped(ch) && n <= ch->read_count && ch->member_gen == fork_generation() &&
	    still_member(ch)) {
		for (size_t i = 0; i < n; i++) {
			struct rmpsc_message m;
			if (rmpsc_message_at(ch, i, &m) == RMPSC_OK)
				rmpsc__message_free(ch, &m);
		}
	}
	return rmpsc_advance(ch, n);
}

int64_t rmpsc_read_bytes(rmpsc_channel *ch, int64_t timeout_ns, const void **bytes)
{
	if (!ch || !bytes)
		return rmpsc__set_error(RMPSC_EINVAL, "read_bytes: NULL channel or bytes");
	const void *rec = NULL;
	uint32_t slot = 0;
	int n = rmpsc_read(ch, 1, timeout_ns, &rec, &slot);
	if (n < 0)
		return n;
	size_t len;
	int rc = rmpsc__slab_of_record(ch, rec, slot, ch->read_pos, &ch->read_handle, bytes, &len);
	if (rc) {
		/* Not a message: consumed and reported, so the next call goes on. One of
		 * several slabs (rmpsc_producer_send_message) gives them back as
		 * rmpsc_advance_messages would. */
		struct rmpsc_message m;
		if (ch->L.slab_count && !grouped(ch) && ch->L.record_size >= MESSAGE_HEADER &&
		    get_u32le((const unsigned char *)rec + 4) > 1 &&
		    rmpsc__message_of_record(ch, rec, slot, ch->read_pos, &m) == RMPSC_OK)
			rmpsc__message_free(ch, &m);
		forget_read(ch);
		release_span(ch, slot, 1);
		if (ch->n_deferred)
			rmpsc__slab_flush_deferred(ch);
		return rc;
	}
	return (int64_t)len;
}

int rmpsc_advance_bytes(rmpsc_channel *ch)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "advance_bytes: NULL channel");
	if (ch->read_count != 1 || ch->read_handle == RMPSC_INVALID_HANDLE)
		return rmpsc__set_error(RMPSC_EINVAL, "advance_bytes: no message from rmpsc_read_bytes is open");
	if (ch->member_gen != fork_generation())
		return rmpsc__set_error(RMPSC_EFORKED, "advance_bytes: the read was made in another process");
	if (!still_member(ch)) { /* before the free: the slab is the new owner's */
		forget_claim(ch);
		return rmpsc__set_error(RMPSC_ECONSUMER,
					"advance_bytes: this handle is no longer a member of its group");
	}
	/* With groups, the slab returns to the pool once every group has released its
	 * record (slab.c). Alone, we free it: deferred while its record is being read,
	 * freed once the head has passed it. */
	int rc = grouped(ch) ? RMPSC_OK : rmpsc_slab_free(ch, ch->read_handle);
	ch->read_handle = RMPSC_INVALID_HANDLE;
	if (rc)
		return rc;
	return rmpsc_advance(ch, 1);
}

int64_t rmpsc_recv_bytes(rmpsc_channel *ch, void *buf, size_t cap, int64_t timeout_ns)
{
	if (!ch || (!buf && cap))
		return rmpsc__set_error(RMPSC_EINVAL, "recv_bytes: NULL channel or buf");
	const void *bytes;
	int64_t len = rmpsc_read_bytes(ch, timeout_ns, &bytes);
	if (len < 0)
		return len;
	if ((uint64_t)len > cap) { /* left unread: the next call reads it again */
		forget_read(ch);
		return rmpsc__set_error(RMPSC_EINVAL, "recv_bytes: the message is %lld bytes, more than cap %zu",
					(long long)len, cap);
	}
	if (len)
		memcpy(buf, bytes, (size_t)len);
	int rc = rmpsc_advance_bytes(ch);
	return rc < 0 ? rc : len;
}
