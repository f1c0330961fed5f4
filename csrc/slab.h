/*
 * The slab pool's internal interface (slab.c): what producers, the consumer and
 * reclaim need beyond the public rmpsc_slab_* calls.
 */
#ifndef RMPSC_SLAB_H
#define RMPSC_SLAB_H

#include <stddef.h>
#include <stdint.h>

#include "handle.h"
#include "wait.h"

/* The channel has a pool and h names a slab of it; else EINVAL naming `fn`. */
int rmpsc__slab_check(const rmpsc_channel *ch, uint32_t h, const char *fn);
/* Take a free slab for this process, waiting per *dl. */
int rmpsc__slab_alloc(rmpsc_channel *ch, struct deadline *dl, uint32_t *h);
/*
 * Hand slab h, held by `holder`, to the record at position `pos` of ring `slot`,
 * before that record is published: if the sender dies before the commit, reclaim
 * sees the position is not below the tail and frees the slab. EINVAL (naming
 * `fn`) when the slab is not held by `holder`.
 */
int rmpsc__slab_to_record(rmpsc_channel *ch, uint32_t h, uint64_t holder, uint32_t slot, uint64_t pos, const char *fn);
/* The slab a received record at position `pos` of ring `slot` carries, with its
 * bytes and length; ECORRUPT when the record is not a slab record. */
int rmpsc__slab_of_record(const rmpsc_channel *ch, const void *record, uint32_t slot, uint64_t pos, uint32_t *h,
			  const void **bytes, size_t *len);

/* Return slabs held by gone processes; and, for a slot being reclaimed, slabs in
 * transit on it that were never committed. Returns slabs freed. */
uint32_t rmpsc__slab_reclaim(rmpsc_channel *ch, int slot_being_reclaimed);
/* On a consumer claim: free slabs an earlier consumer received but neither freed
 * nor accepted (rmpsc_slab_accept), and slabs held by gone processes. */
uint32_t rmpsc__slab_reclaim_consumed(rmpsc_channel *ch);
/* Free the deferred slabs whose records the head has passed. */
void rmpsc__slab_flush_deferred(rmpsc_channel *ch);
/* The consumer role changed hands (claimed afresh, or lost): frees deferred under
 * an earlier claim are not ours to make; the records go to whoever reads them. */
void rmpsc__slab_forget_deferred(rmpsc_channel *ch);

/* A slab record: the handle as a little-endian u32, the rest of the record zero. */
static inline void slab_record_encode(void *record, uint32_t record_size, uint32_t h)
{
	unsigned char *b = record;
	for (uint32_t i = 4; i < record_size; i++)
		b[i] = 0;
	b[0] = (unsigned char)h;
	b[1] = (unsigned char)(h >> 8);
	b[2] = (unsigned char)(h >> 16);
	b[3] = (unsigned char)(h >> 24);
}

#endif
