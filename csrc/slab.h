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

/* Take n >= 2 free slabs for one message, all or none, waiting per *dl (slab.c). */
int rmpsc__slab_alloc_many(rmpsc_channel *ch, struct deadline *dl, uint32_t n, uint32_t *h);
/* Return slabs this process holds (allocated, never sent) to the pool. */
void rmpsc__slab_give_back(rmpsc_channel *ch, const uint32_t *h, uint32_t n);
/* The message a record at position `pos` of ring `slot` carries; ECORRUPT when it is not one. */
int rmpsc__message_of_record(const rmpsc_channel *ch, const void *record, uint32_t slot, uint64_t pos,
			     struct rmpsc_message *m);
/* Free (or defer, while its record is read) the slabs of a received message: the
 * one consumer of a channel without groups does this as it advances. */
void rmpsc__message_free(rmpsc_channel *ch, const struct rmpsc_message *m);

static inline void put_u32le(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
	b[2] = (unsigned char)(v >> 16);
	b[3] = (unsigned char)(v >> 24);
}

static inline uint32_t get_u32le(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/*
 * A message record (rmpsc_producer_send_message): bytes 0..3 the handle of its
 * first slab, or RMPSC_INVALID_HANDLE for a message inline in the record; bytes
 * 4..7 the inline length, or the number of slabs (0 or 1: one, as a slab record).
 * A message of k >= 2 slabs lists the other k - 1 handles (u32 each) at the start
 * of its first slab, before its first bytes; each slab's len counts its bytes.
 */
#define MESSAGE_HEADER 8u

/* Most slabs one message may take: its list must fit in its first slab. */
static inline uint32_t message_slabs_max(const struct layout *L)
{
	if (!L->slab_count)
		return 0;
	if (L->record_size < MESSAGE_HEADER || L->slab_size < 8)
		return 1;
	uint32_t k = L->slab_size / 4 + 1;
	return k < L->slab_count ? k : L->slab_count;
}

/* Slabs a message of len bytes takes (k slabs hold k * slab_size - 4 * (k - 1) bytes). */
static inline uint64_t message_slabs_for(const struct layout *L, uint64_t len)
{
	if (len <= L->slab_size)
		return 1;
	return (len - 4 + (L->slab_size - 4) - 1) / (L->slab_size - 4);
}

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
