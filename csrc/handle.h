/*
 * Process-local handles over a channel region, and accessors for the region's
 * parts. Nothing here is shared memory except what the accessors point into.
 */
#ifndef RMPSC_HANDLE_H
#define RMPSC_HANDLE_H

#include <stdint.h>

#include "attach.h"
#include "barrier.h"
#include "layout.h"
#include "ringmpsc.h"

struct fifo_ref; /* notify.h */

/* A slab free waiting for the head to pass its record: the exact TRANSIT word it
 * was deferred on, so it can never free the slab riding on a later record. */
struct deferred_free {
	uint64_t word;
	uint32_t handle;
};

struct rmpsc_channel {
	unsigned char *base; /* the mapping */
	struct region_header *hdr;
	struct layout L;         /* recomputed from validated geometry */
	struct region_file file; /* descriptor, name, and this process's attachment (attach.h) */
	rmpsc_ring *rings;       /* consumer's views, one per slot */
	unsigned flags;
	int asymmetric; /* the region's fence mode is FENCE_ASYMMETRIC (barrier.h) */
	/* membership (group.c, consumer.c) */
	int member;           /* this process's member place, or -1 when not a member */
	uint32_t group;       /* its group place */
	uint64_t member_word; /* MEMBER_ACTIVE | identity: the owner word of our place while we hold it */
	uint32_t member_gen;  /* fork generation in which this handle joined */
	int serving;          /* member place whose claim we serve: ours, or an orphan we adopted (ADOPTING) */
	uint32_t solo_open;   /* SOLO: the ring where our claim is open (cursor > head), or UINT32_MAX */
	uint32_t deliveries;  /* of the span being read: 1, or more when redelivered */
	unsigned group_flags; /* the group and flags we joined with (to join again after a fork) */
	char group_name[RMPSC_GROUP_NAME_MAX + 1];
	int in_callback;            /* an rmpsc_consume callback is running */
	uint64_t *tails;            /* our last view of each ring's tail (max_producers) */
	int64_t next_recover_ns;    /* a waiting member checks its peers' liveness at most this often */
	int64_t pending_recover_ns; /* rmpsc_wait_pending_below looks for dead members no sooner (any thread: CAS) */
	int close_fenced;           /* the consumer passed a cold barrier after seeing `closed` */
	int close_fence_failures;   /* ... and how often that barrier failed before */
	uint32_t sweep_cursor;      /* next slot the sweep starts at (fairness) */
	uint32_t read_slot;         /* slot of the span returned by rmpsc_read */
	uint32_t read_count;        /* its length; 0 when none is open */
	uint64_t read_pos;          /* its first position */
	uint32_t read_handle;       /* the slab of the message rmpsc_read_bytes returned, or RMPSC_INVALID_HANDLE */
	uint32_t sweeps;
	int pending_error;        /* ECORRUPT found after records were delivered: reported next call */
	int64_t next_liveness_ns; /* when the consumer next checks producer liveness */
	/* The span being read (a consume callback, or an open rmpsc_read): slab frees
	 * for its records wait in `deferred` until the head has moved past them, so a
	 * consumer dying in between leaves each slab with its record (delivered again). */
	int in_span;
	uint32_t span_slot;
	uint64_t span_start, span_end;
	struct deferred_free *deferred;
	uint32_t n_deferred, cap_deferred;
	/* Waiting (notify.h) */
	uint32_t coalesce_records; /* linger for this many records on one ring ... */
	int64_t coalesce_delay_ns; /* ... or this long (rmpsc_consumer_coalesce) */
	int64_t linger_from;       /* readiness fd: when the linger of this wait began, 0 = not yet */
	uint32_t linger_skip;      /* waits left that do not linger (a linger found one record alone) */
	int linger_for_slabs;      /* readiness fd: a sender waiting for slabs ended this linger (linger_learn) */
	uint32_t linger_backoff;   /* ... how many the last useless linger made skip */
	int arm_fresh;             /* no readiness arm since records were last taken */
	int ready_closed_seen;     /* readiness fd: an arm has reported the channel closed */
	int take_busy;             /* the last take found what it needed held by a peer for a moment */
};

struct rmpsc_producer {
	rmpsc_ring ring; /* view of this producer's slot */
	rmpsc_channel *ch;
	struct ring_ctrl *ctrl;
	uint64_t owner; /* the ACTIVE owner word this producer wrote */
	uint32_t slot;
	uint32_t fork_gen;             /* fork generation at registration */
	int light;                     /* hot_light() at registration: valid in fork_gen only */
	int64_t next_recover_ns;       /* waiting for space, look for dead members no sooner (groups) */
	struct fifo_ref *member_fifos; /* members' readiness FIFOs, for wake-ups (max_consumers) */
	int ready_fd;                  /* our own readiness FIFO (waiting for space), -1 none */
	int ready_armed;               /* rmpsc_producer_ready_arm left producer_waiting announced */
	uint64_t ready_gen;            /* ... its generation */
};

/* Slot owner-word states (enum rmpsc_slot_state) live in the low bits of ring_ctrl.owner. */

static inline struct ring_ctrl *slot_ctrl(const rmpsc_channel *ch, uint32_t slot)
{
	return (struct ring_ctrl *)(ch->base + ch->L.ctrl_off) + slot;
}

static inline unsigned char *slot_data(const rmpsc_channel *ch, uint32_t slot)
{
	return ch->base + ch->L.data_off + (uint64_t)slot * ch->L.ring_bytes;
}

static inline struct slab_meta *slab_meta_of(const rmpsc_channel *ch, uint32_t h)
{
	return (struct slab_meta *)(ch->base + ch->L.slab_meta_off) + h;
}

static inline int is_closed(const rmpsc_channel *ch)
{
	return load_acquire(&ch->hdr->closed) != 0;
}

static inline int interruptible(const rmpsc_channel *ch)
{
	return (ch->flags & RMPSC_OPEN_INTERRUPTIBLE) != 0;
}

/* Several member places or groups: received slabs go back to the pool once every
 * group released their record, never by hand. */
static inline int grouped(const rmpsc_channel *ch)
{
	return ch->L.max_consumers > 1 || ch->L.max_groups > 1;
}

/* Slots the consumer must look at: those ever registered. */
static inline uint32_t slot_limit(const rmpsc_channel *ch)
{
	uint32_t hw = load_acquire(&ch->hdr->slot_hw);
	return hw < ch->L.max_producers ? hw : ch->L.max_producers;
}

#endif
