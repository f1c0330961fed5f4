/*
 * Producer slots of the MPSC channel, and closing it.
 *
 * Slot life cycle (ring_ctrl.owner: state + owner identity, changed by CAS only):
 *   FREE, or DETACHED and drained -> REGISTERING(me) -> ACTIVE(me) -> DETACHED
 *   REGISTERING(x) or ACTIVE(x), x gone -> RECLAIMING(me) -> DETACHED
 *   DETACHED, drained -> FREE (the consumer's sweep)
 *   any state -> FENCED (the consumer saw impossible positions; never read again)
 * Positions are never reset: a slot is reused only once drained (head == tail), and
 * the next producer continues from there, so a consumer racing a re-registration
 * can never see a position go backwards. Each step is one CAS or store; if the
 * process doing it dies right there, the word names an owner that is gone
 * (attach.h) and the next reclaim (on register, or in the consumer's sweep) takes
 * over.
 *
 * Close vs. in-flight reservations: a producer announces an open reservation
 * (ring_ctrl.reserving = 1), passes a hot barrier and checks `closed`
 * (producer.c); the consumer, once it sees `closed`, passes a cold barrier and
 * checks every `reserving` (consumer.c; barrier.h). So either the producer sees
 * closed and gives up, or the consumer sees the reservation and waits for its
 * commit. "Closed and drained" is therefore final: nothing committed after it can
 * exist.
 */
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "group.h"
#include "handle.h"
#include "notify.h"
#include "slab.h"
#include "slot.h"
#include "wait.h"

int rmpsc_channel_is_closed(const rmpsc_channel *ch)
{
	return ch ? is_closed(ch) : 0;
}

int rmpsc_channel_close(rmpsc_channel *ch)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_close: NULL channel");
	struct region_header *h = ch->hdr;
	/* seq_cst: the consumer that sees it then orders its `reserving` loads (see top). */
	store_seq_cst(&h->closed, 1);
	/* Members and producers that announced a wait before they could see it. */
	wake_all_members(ch);
	rmpsc__wake_all_producers(ch); /* and every sender waiting on the progress words */
	return RMPSC_OK;
}

/* ------------------------------------------------------------------------- */
/* Owners that are gone. */

/* Take over a slot whose owner word `w` names a process that is gone. Our
 * RECLAIMING word names us, so if we die here the next reclaim takes over. */
static int reclaim_slot(rmpsc_channel *ch, uint32_t s, uint64_t w, uint64_t me)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	uint64_t reclaiming = owner_word(RMPSC_SLOT_RECLAIMING, me), expected = w;
	if (!cas_acq_rel(&c->owner, &expected, reclaiming))
		return 0;
	/* Committed records stay readable; what was reserved but never committed was
	 * never published. Slabs the dead owner held or had in flight go back. */
	rmpsc__slab_reclaim(ch, (int)s);
	/* Its wait and readiness FIFO go with it. */
	store_relaxed(&c->producer_waiting, 0);
	rmpsc__fifo_remove(ch, 'p', s, xchg_acq_rel(&c->fifo_gen, 0));
	/* A CAS, not a store: the consumer may have fenced the ring meanwhile. The
	 * DETACHED word keeps the dead owner's identity (and owner_pid its pid), for stats. */
	cas_acq_rel(&c->owner, &reclaiming, owner_word(RMPSC_SLOT_DETACHED, owner_id(w)));
	fetch_add_relaxed(&ch->hdr->reclaimed_slots, 1);
	return 1;
}

/* A claimed slot: registering, active, or being reclaimed. */
static inline int slot_claimed(uint32_t st)
{
	return st == RMPSC_SLOT_ACTIVE || st == RMPSC_SLOT_REGISTERING || st == RMPSC_SLOT_RECLAIMING;
}

int rmpsc_reclaim_dead(rmpsc_channel *ch)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "reclaim_dead: NULL channel");
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	uint64_t me = 0; /* attached only when there is something to reclaim */
	int reclaimed = 0;
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		uint64_t w = load_acquire(&slot_ctrl(ch, s)->owner);
		if (!slot_claimed(owner_state(w)) || rmpsc__owner_alive_cached(&ch->file, &cache, w))
			continue;
		if (!me) {
			int rc = rmpsc__attach(&ch->file, &me);
			if (rc)
				return rc;
		}
		reclaimed += reclaim_slot(ch, s, w, me);
	}
	/* Members of consumer groups that died: their claims go back to their group. */
	return reclaimed + rmpsc__recover_members(ch, &me, -1);
}

/* Is a slot being reclaimed by a live process right now? */
static int reclaim_in_progress(const rmpsc_channel *ch)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		uint64_t w = load_acquire(&slot_ctrl(ch, s)->owner);
		if (owner_state(w) == RMPSC_SLOT_RECLAIMING && rmpsc__owner_alive(&ch->file, w))
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------- */
/* Claiming a slot. */

/*
 * Claim a free slot for identity `me`: FREE (or DETACHED and drained: positions
 * continue) -> REGISTERING(me), reset the slot's private fields, then ACTIVE(me)
 * with release. Returns the slot, or -1 when none is free now.
 */
static int claim_slot(rmpsc_channel *ch, uint64_t me)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		uint64_t w = load_acquire(&c->owner);
		if (w != RMPSC_SLOT_FREE && !(owner_state(w) == RMPSC_SLOT_DETACHED && slot_drained(ch, s)))
			continue;
		if (!cas_acq_rel(&c->owner, &w, owner_word(RMPSC_SLOT_REGISTERING, me)))
			continue;
		c->cached_head = load_acquire(&c->head);
		c->base = load_relaxed(&c->tail);
		store_relaxed(&c->reserving, 0);
		store_relaxed(&c->producer_waiting, 0);                        /* a dead waiter's flag */
		rmpsc__fifo_remove(ch, 'p', s, xchg_acq_rel(&c->fifo_gen, 0)); /* ... and readiness FIFO */
		store_relaxed(&c->owner_pid, (uint32_t)getpid());
		uint32_t hw = load_relaxed(&ch->hdr->slot_hw);
		while (hw < s + 1 && !cas_acq_rel(&ch->hdr->slot_hw, &hw, s + 1))
			; /* the consumer sweeps slots below slot_hw */
		/* Release: the slot's reset fields are visible before it is ACTIVE. A CAS:
		 * the consumer may have fenced the ring meanwhile (impossible positions). */
		uint64_t registering = owner_word(RMPSC_SLOT_REGISTERING, me);
		if (!cas_acq_rel(&c->owner, &registering, owner_word(RMPSC_SLOT_ACTIVE, me)))
			continue;
		return (int)s;
	}
	return -1;
}

int rmpsc__take_slot(rmpsc_channel *ch, uint64_t me)
{
	int s = claim_slot(ch, me);
	for (int tries = 0; s < 0 && tries < 100; tries++) {
		int busy = tries > 0 && reclaim_in_progress(ch);
		if (tries == 0)
			rmpsc_reclaim_dead(ch);
		else if (busy)
			sched_yield();
		s = claim_slot(ch, me);
		if (tries > 0 && !busy)
			break; /* nobody is returning a slot: that was the last chance */
	}
	return s;
}

void rmpsc__slot_free_if_drained(rmpsc_channel *ch, uint32_t s)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	uint64_t w = load_acquire(&c->owner);
	if (owner_state(w) == RMPSC_SLOT_DETACHED && slot_drained(ch, s))
		cas_acq_rel(&c->owner, &w, (uint64_t)RMPSC_SLOT_FREE);
}
