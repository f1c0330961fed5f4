/* Process-local handles over a channel region, shared by region.c, channel.c, slab.c. */
#ifndef RMPSC_CHANNEL_H
#define RMPSC_CHANNEL_H

#include <stdint.h>

#include "barrier.h"
#include "layout.h"
#include "attach.h"
#include "ringmpsc.h"

/* Identifies a region file (st_dev, st_ino): handles of one process on the same
 * region share one attachment. */
struct region_key {
	uint64_t dev, ino;
};

struct attachment; /* process-local (attach.c) */

struct rmpsc_channel {
	unsigned char *base;        /* the mapping */
	struct region_header *hdr;
	struct layout L;            /* recomputed from validated geometry */
	rmpsc_ring *rings;          /* consumer's views, one per slot */
	int fd;
	unsigned flags;
	int asymmetric;             /* the region's fence mode is FENCE_ASYMMETRIC (fence.h) */
	int close_fenced;           /* the consumer passed a cold barrier after seeing `closed` */
	int close_fence_failures;   /* ... and how often that barrier failed before */
	struct region_key key;      /* the region file */
	struct attachment *att;     /* this process's record of the region, shared by its handles (attach.c) */
	uint64_t self;              /* this process's identity when the consumer role was claimed */
	char *name;
	uint32_t consumer_gen;      /* fork generation in which this handle claimed the consumer role */
	int consumer_claimed;
	uint32_t sweep_cursor;      /* next slot the sweep starts at (fairness) */
	uint32_t read_slot;         /* slot of the span returned by rmpsc_read */
	uint32_t read_count;        /* its length; 0 when none is open */
	uint32_t sweeps;
	int pending_error;          /* ECORRUPT found after records were delivered: reported next call */
	/* The span being read (a consume callback, or an open rmpsc_read): slab frees
	 * for its records wait in `deferred` until the head has moved past them, so a
	 * consumer dying in between leaves each slab with its record (delivered again). */
	int in_span;
	uint32_t span_slot;
	uint64_t span_start, span_end;
	uint32_t *deferred;
	uint32_t n_deferred, cap_deferred;
	int64_t next_liveness_ns;   /* when the consumer next checks producer liveness */
};

struct rmpsc_producer {
	rmpsc_ring ring;            /* view of this producer's slot */
	rmpsc_channel *ch;
	struct ring_ctrl *ctrl;
	uint64_t owner;             /* the ACTIVE owner word this producer wrote */
	uint32_t slot;
	uint32_t fork_gen;          /* fork generation at registration */
	int light;                  /* hot_light() at registration: valid in fork_gen only */
};

/* How long producers and the consumer poll before they sleep (channel.c). */
extern int64_t rmpsc__spin_ns;

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

/* Return slabs held by dead processes; and, for a slot being reclaimed, slabs in
 * transit on it that were never committed. Returns slabs freed. (slab.c) */
uint32_t rmpsc__slab_reclaim(rmpsc_channel *ch, int slot_being_reclaimed);
/* On a consumer claim: free slabs an earlier consumer received but neither freed
 * nor accepted (rmpsc_slab_accept), and slabs held by dead processes. */
uint32_t rmpsc__slab_reclaim_consumed(rmpsc_channel *ch);
/* Free the deferred slabs whose records the head has passed. */
void rmpsc__slab_flush_deferred(rmpsc_channel *ch);

/* Enter the span whose records the consumer is reading (only slab frees care). */
static inline void span_begin(rmpsc_channel *ch, uint32_t slot, uint64_t n)
{
	if (!ch->L.slab_count)
		return;
	ch->in_span = 1;
	ch->span_slot = slot;
	ch->span_start = load_relaxed(&slot_ctrl(ch, slot)->head); /* only the consumer writes it */
	ch->span_end = ch->span_start + n;
}

#endif
