/*
 * The SPSC ring: the unit everything is built from. Hot paths are inline here and
 * used by both the standalone ring API (ring.c) and the channel (producer.c, consumer.c).
 *
 * Positions are u64 and never wrap in practice; they are compared only by unsigned
 * difference, so starting near UINT64_MAX and crossing zero is fine. The slot of a
 * position is pos & mask. No CAS anywhere on this path:
 *   producer: cached head check -> (acquire reload of head if short) -> write ->
 *             release store of tail                           (A1 pairs with C1)
 *   consumer: cached tail check -> (acquire reload of tail, C1) -> read ->
 *             release store of head                           (C2 pairs with A2)
 */
#ifndef RMPSC_RING_H
#define RMPSC_RING_H

#include <stddef.h>
#include <stdint.h>

#include "barrier.h"
#include "layout.h"
#include "ringmpsc.h"

static inline struct ring_ctrl *ring_ctrl_of(const rmpsc_ring *r)
{
	return (struct ring_ctrl *)r->ctrl_;
}

static inline void ring_view_init(rmpsc_ring *r, struct ring_ctrl *ctrl, unsigned char *data, uint32_t record_size,
				  uint32_t ring_bits)
{
	r->ctrl_ = ctrl;
	r->data_ = data;
	r->mask_ = ((uint64_t)1 << ring_bits) - 1;
	r->record_size_ = record_size;
	r->reserved_ = 0;
}

/*
 * Producer: find up to `want` contiguous free records at the tail. Returns the
 * count (0 when full) and the span in *ptr, or RMPSC_ECORRUPT when head is
 * impossible (ahead of tail or more than a ring behind it).
 */
static inline int ring_reserve(rmpsc_ring *r, size_t want, void **ptr)
{
	struct ring_ctrl *c = ring_ctrl_of(r);
	uint64_t cap = r->mask_ + 1;
	uint64_t tail = load_relaxed(&c->tail); /* only this producer writes it */
	uint64_t used = tail - c->cached_head;
	if (used > cap - (want < cap ? want : cap) || used > cap) {
		/* A2: acquire pairs with the consumer's release of head (C2): the
		 * consumer is done reading the slots we are about to overwrite. */
		c->cached_head = load_acquire(&c->head);
		used = tail - c->cached_head;
		if (unlikely(used > cap))
			return RMPSC_ECORRUPT;
	}
	uint64_t free = cap - used;
	if (free == 0)
		return 0;
	uint64_t idx = tail & r->mask_;
	uint64_t n = cap - idx; /* contiguous up to the end of the buffer */
	if (n > free)
		n = free;
	if (n > want)
		n = want;
	*ptr = r->data_ + idx * r->record_size_;
	return (int)n;
}

/* Producer: publish n records written at the tail. */
static inline void ring_publish(rmpsc_ring *r, uint64_t n)
{
	struct ring_ctrl *c = ring_ctrl_of(r);
	/* A1: release makes the records' bytes visible before the new tail (pairs with C1). */
	store_release(&c->tail, load_relaxed(&c->tail) + n);
}

/*
 * Consumer: up to `max` contiguous readable records at the head. Returns the count
 * (0 when empty) and the span in *ptr, or RMPSC_ECORRUPT when tail is impossible.
 */
static inline int ring_readable(rmpsc_ring *r, size_t max, const void **ptr)
{
	struct ring_ctrl *c = ring_ctrl_of(r);
	uint64_t cap = r->mask_ + 1;
	uint64_t head = load_relaxed(&c->head); /* only the consumer writes it */
	uint64_t avail = c->cached_tail - head;
	if (avail < max || avail > cap) { /* reload only when the cached view is short */
		/* C1: acquire pairs with the producer's release of tail (A1): the
		 * records up to tail are fully written. */
		c->cached_tail = load_acquire(&c->tail);
		avail = c->cached_tail - head;
		if (avail == 0)
			return 0;
		if (unlikely(avail > cap))
			return RMPSC_ECORRUPT;
	}
	uint64_t idx = head & r->mask_;
	uint64_t n = cap - idx;
	if (n > avail)
		n = avail;
	if (n > max)
		n = max;
	*ptr = r->data_ + idx * r->record_size_;
	return (int)n;
}

/* Consumer: free n records at the head. */
static inline void ring_release(rmpsc_ring *r, uint64_t n)
{
	struct ring_ctrl *c = ring_ctrl_of(r);
	/* C2: release orders our reads of the records before the producer may reuse
	 * their slots (pairs with A2). */
	store_release(&c->head, load_relaxed(&c->head) + n);
}

static inline uint64_t ring_pending(const rmpsc_ring *r)
{
	struct ring_ctrl *c = ring_ctrl_of(r);
	uint64_t head = load_acquire(&c->head);
	uint64_t tail = load_acquire(&c->tail);
	uint64_t n = tail - head;
	return n > r->mask_ + 1 ? 0 : n; /* a racing snapshot or a corrupt ring */
}

/* Clamp a caller's count to what an int return can carry. */
static inline size_t clamp_count(size_t n)
{
	return n > (size_t)INT32_MAX ? (size_t)INT32_MAX : n;
}

#endif
