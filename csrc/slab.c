/*
 * The slab pool: fixed-size blocks in the region, named by u32 handles.
 *
 * Each slab has one owner word, changed only by CAS:
 *   0                          free
 *   HELD(identity)             held by a process (allocated, or accepted by the consumer);
 *                              the identity is its attachment (attach.h)
 *   TRANSIT(slot, position)    riding on record `position` of ring `slot`
 * Allocation claims a free word with one CAS, starting at a rotating cursor. There is
 * no free list whose head could be lost by a process dying between unlinking a slab
 * and recording its owner: at every crash point each slab is free or names its owner,
 * and reclaim finds it. The TRANSIT word includes the position, so every send has a
 * distinct word and a CAS can never mistake a later send for an earlier one (no ABA).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "group.h"
#include "handle.h"
#include "ring.h"
#include "slab.h"
#include "wait.h"

#define RECLAIM_PERIOD_NS 100000000 /* a blocked allocator looks for dead holders 10x/s */

/* TRANSIT words: state in bits 0..2, slot in 3..12, the position's low 51 bits above. */
#define TRANSIT_SLOT_SHIFT 3
#define TRANSIT_SLOT_BITS  10
#define TRANSIT_POS_SHIFT  (TRANSIT_SLOT_SHIFT + TRANSIT_SLOT_BITS)
#define TRANSIT_POS_BITS   (64 - TRANSIT_POS_SHIFT)
_Static_assert(RMPSC_MAX_PRODUCERS <= 1u << TRANSIT_SLOT_BITS, "slot fits a TRANSIT word");

static inline uint64_t transit_word(uint32_t slot, uint64_t pos)
{
	return (pos << TRANSIT_POS_SHIFT) | (uint64_t)slot << TRANSIT_SLOT_SHIFT | SLAB_TRANSIT;
}

static inline uint32_t transit_slot(uint64_t w)
{
	return (uint32_t)(w >> TRANSIT_SLOT_SHIFT) & ((1u << TRANSIT_SLOT_BITS) - 1);
}

/* Has the record a TRANSIT word rides on been taken by the consumer (position < head)?
 * Compared modulo 2^51: positions of one ring never drift that far apart. */
static inline int transit_consumed(uint64_t w, uint64_t head)
{
	uint64_t pos = w >> TRANSIT_POS_SHIFT;
	uint64_t ahead = (pos - head) & ((1ull << TRANSIT_POS_BITS) - 1); /* pos - head, mod 2^51 */
	return ahead >= 1ull << (TRANSIT_POS_BITS - 1);                   /* "negative": pos < head */
}

static inline int pool_ok(const rmpsc_channel *ch, const char *fn)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: NULL channel", fn);
	if (!ch->L.slab_count)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: this channel has no slab pool", fn);
	return RMPSC_OK;
}

int rmpsc__slab_check(const rmpsc_channel *ch, uint32_t h, const char *fn)
{
	int rc = pool_ok(ch, fn);
	if (rc)
		return rc;
	if (h >= ch->L.slab_count)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: handle %u out of range (pool of %u)", fn, h, ch->L.slab_count);
	return RMPSC_OK;
}

static void wake_slab_waiters(rmpsc_channel *ch)
{
	struct region_header *h = ch->hdr;
	wake_waiters(&h->slab_waiting, &h->slab_seq, hot_light(ch->asymmetric));
}

/*
 * With groups, a slab whose record every group has released is free: no member
 * reads it again. `head` is where every group has released its ring.
 */
static inline int grouped_free(const rmpsc_channel *ch, uint64_t w, uint64_t head)
{
	return owner_state(w) == SLAB_TRANSIT && transit_slot(w) < ch->L.max_producers && transit_consumed(w, head);
}

static int try_alloc(rmpsc_channel *ch, uint64_t held, uint32_t *handle)
{
	uint32_t n = ch->L.slab_count;
	uint32_t start = fetch_add_relaxed(&ch->hdr->slab_cursor, 1) % n;
	int released = grouped(ch);
	uint32_t head_slot = UINT32_MAX; /* the ring whose released head we gathered last */
	uint64_t head = 0;
	for (uint32_t i = 0, j = start; i < n; i++, j = j + 1 < n ? j + 1 : 0) {
		struct slab_meta *m = slab_meta_of(ch, j);
		uint64_t w = load_relaxed(&m->owner);
		if (w != 0 && released && owner_state(w) == SLAB_TRANSIT && transit_slot(w) < ch->L.max_producers &&
		    transit_slot(w) != head_slot) {
			head_slot = transit_slot(w);
			head = rmpsc__released_head(ch, head_slot, load_acquire(&slot_ctrl(ch, head_slot)->tail));
		}
		/* Acquire on success: the previous holder's accesses are done before ours. */
		if ((w == 0 || (released && transit_slot(w) == head_slot && grouped_free(ch, w, head))) &&
		    cas_acq_rel(&m->owner, &w, held)) {
			store_relaxed(&m->len, 0);
			*handle = j;
			return 1;
		}
	}
	return 0;
}

struct slab_wait {
	rmpsc_channel *ch;
	uint64_t held;
	uint32_t handle;
	int64_t next_reclaim_ns;
};

static int slab_ready(void *arg)
{
	struct slab_wait *w = arg;
	if (try_alloc(w->ch, w->held, &w->handle))
		return RMPSC_OK;
	if (load_acquire(&w->ch->hdr->closed))
		return rmpsc__set_error(RMPSC_ECLOSED, "slab_alloc: channel is closed and the pool is empty");
	/* Holders that died free nothing and wake nobody: look for them now and then. */
	int64_t now = rmpsc__monotonic_ns();
	if (now >= w->next_reclaim_ns) {
		w->next_reclaim_ns = now + RECLAIM_PERIOD_NS;
		if (rmpsc__slab_reclaim(w->ch, -1) && try_alloc(w->ch, w->held, &w->handle))
			return RMPSC_OK;
	}
	return WAIT_NOT_READY;
}

int rmpsc__slab_alloc(rmpsc_channel *ch, struct deadline *dl, uint32_t *handle)
{
	uint64_t me;
	int rc = rmpsc__attach(&ch->file, &me);
	if (rc)
		return rc;
	struct slab_wait sw = { ch, owner_word(SLAB_HELD, me), RMPSC_INVALID_HANDLE, 0 };
	struct region_header *h = ch->hdr;
	/* No spin: each poll is a scan of the pool. Slices let a sleeper reclaim. */
	struct waiter wt = { .flag = &h->slab_waiting,
			     .seq = &h->slab_seq,
			     .ready = slab_ready,
			     .arg = &sw,
			     .would_block = RMPSC_EFULL,
			     .slice_ns = RECLAIM_PERIOD_NS,
			     .interruptible = interruptible(ch),
			     .asymmetric = ch->asymmetric };
	rc = rmpsc__wait(&wt, dl);
	if (rc == RMPSC_EFULL)
		return rmpsc__set_error(rc, "slab_alloc: all %u slabs are in use", ch->L.slab_count);
	if (rc < 0)
		return rc;
	*handle = sw.handle;
	return RMPSC_OK;
}

int rmpsc_slab_alloc(rmpsc_channel *ch, int64_t timeout_ns, uint32_t *handle)
{
	int rc = pool_ok(ch, "slab_alloc");
	if (rc)
		return rc;
	if (!handle)
		return rmpsc__set_error(RMPSC_EINVAL, "slab_alloc: NULL handle");
	struct deadline dl = deadline_from_timeout(timeout_ns);
	return rmpsc__slab_alloc(ch, &dl, handle);
}

int rmpsc__slab_to_record(rmpsc_channel *ch, uint32_t handle, uint64_t holder, uint32_t slot, uint64_t pos, const char *fn)
{
	uint64_t w = owner_word(SLAB_HELD, holder);
	if (!cas_acq_rel(&slab_meta_of(ch, handle)->owner, &w, transit_word(slot, pos)))
		return rmpsc__set_error(RMPSC_EINVAL, "%s: slab %u is not held by this process", fn, handle);
	return RMPSC_OK;
}

int rmpsc__slab_of_record(const rmpsc_channel *ch, const void *record, uint32_t slot, uint64_t pos, uint32_t *h,
			  const void **bytes, size_t *len)
{
	uint32_t handle = rmpsc_record_handle(record);
	if (!ch->L.slab_count || handle >= ch->L.slab_count)
		return rmpsc__set_error(RMPSC_ECORRUPT, "record %llu of ring %u carries no slab handle (%u)",
					(unsigned long long)pos, slot, handle);
	struct slab_meta *m = slab_meta_of(ch, handle);
	/* The slab must ride on exactly this record: anything else is not a message. */
	if (load_acquire(&m->owner) != transit_word(slot, pos))
		return rmpsc__set_error(RMPSC_ECORRUPT,
					"record %llu of ring %u names slab %u, which is not in "
					"transit on it (not a slab message)",
					(unsigned long long)pos, slot, handle);
	uint32_t n = load_relaxed(&m->len);
	if (n > ch->L.slab_size) /* the region may be hostile */
		return rmpsc__set_error(RMPSC_ECORRUPT, "slab %u: stored len %u > slab_size %u", handle, n,
					ch->L.slab_size);
	*h = handle;
	*bytes = rmpsc_slab_ptr(ch, handle);
	*len = n;
	return RMPSC_OK;
}

/* Is the record a TRANSIT word rides on in the span the consumer is reading? */
static int in_read_span(const rmpsc_channel *ch, uint64_t w)
{
	if (!ch->in_span || transit_slot(w) != ch->span_slot)
		return 0;
	uint64_t mask = (1ull << TRANSIT_POS_BITS) - 1;
	return (((w >> TRANSIT_POS_SHIFT) - ch->span_start) & mask) < ((ch->span_end - ch->span_start) & mask);
}

static int defer_free(rmpsc_channel *ch, uint32_t handle, uint64_t word)
{
	if (ch->n_deferred == ch->cap_deferred) {
		uint32_t cap = ch->cap_deferred ? 2 * ch->cap_deferred : 64;
		struct deferred_free *d = realloc(ch->deferred, cap * sizeof *d);
		if (!d) {
			errno = ENOMEM;
			return rmpsc__sys_error("slab_free: deferring a free");
		}
		ch->deferred = d;
		ch->cap_deferred = cap;
	}
	ch->deferred[ch->n_deferred++] = (struct deferred_free){ word, handle };
	return RMPSC_OK;
}

/* Does this process hold the consumer role (to which received slabs belong)? Only
 * a channel with one member place has one. */
static int holds_consumer_role(const rmpsc_channel *ch, uint64_t me)
{
	return me && !grouped(ch) && load_acquire(&member_at(ch, 0)->owner) == owner_word(MEMBER_ACTIVE, me);
}

static uint32_t consumer_pid(const rmpsc_channel *ch)
{
	return load_relaxed(&member_at(ch, 0)->pid);
}

int rmpsc_slab_free(rmpsc_channel *ch, uint32_t handle)
{
	int rc = rmpsc__slab_check(ch, handle, "slab_free");
	if (rc)
		return rc;
	struct slab_meta *m = slab_meta_of(ch, handle);
	uint64_t me = rmpsc__attached_id(&ch->file); /* 0: not attached, so holding nothing */
	uint64_t w = load_acquire(&m->owner);
	do {
		if (w == 0)
			return rmpsc__set_error(RMPSC_EINVAL, "slab_free: slab %u is already free", handle);
		if (owner_state(w) == SLAB_HELD) {
			/* Only the holder: a stale second free would hand a slab that someone
			 * else allocated meanwhile to two owners at once. */
			if (owner_id(w) != me)
				return rmpsc__set_error(RMPSC_EINVAL, "slab_free: slab %u is held by another process (pid %u), not this one",
							handle, rmpsc__owner_pid(&ch->file, w));
		} else if (owner_state(w) == SLAB_TRANSIT && transit_slot(w) < ch->L.max_producers) {
			if (grouped(ch))
				return rmpsc__set_error(RMPSC_EINVAL,
							"slab_free: slab %u rides on a record; with consumer groups it "
							"returns to the pool once every group has released it",
							handle);
			if (!transit_consumed(w, load_acquire(&slot_ctrl(ch, transit_slot(w))->head))) {
				/* Being read by us: freed once the head moves past its record. */
				if (in_read_span(ch, w) && holds_consumer_role(ch, me))
					return defer_free(ch, handle, w);
				return rmpsc__set_error(RMPSC_EINVAL,
							"slab_free: slab %u is in flight (sent, not yet received)",
							handle);
			}
			if (!holds_consumer_role(ch, me))
				return rmpsc__set_error(RMPSC_EINVAL,
							"slab_free: slab %u was received by the consumer (pid %u); "
							"only the "
							"consumer process frees it",
							handle, consumer_pid(ch));
		} else {
			return rmpsc__set_error(RMPSC_ECORRUPT, "slab_free: slab %u has an impossible owner word 0x%llx",
						handle, (unsigned long long)w);
		}
		/* Release: our accesses to the slab happen before its next owner's. */
	} while (!cas_acq_rel(&m->owner, &w, 0));
	wake_slab_waiters(ch);
	return RMPSC_OK;
}

void rmpsc__slab_flush_deferred(rmpsc_channel *ch)
{
	uint32_t kept = 0, freed = 0;
	for (uint32_t i = 0; i < ch->n_deferred; i++) {
		struct deferred_free d = ch->deferred[i];
		struct slab_meta *m = slab_meta_of(ch, d.handle);
		uint64_t w = load_acquire(&m->owner);
		if (w != d.word)
			continue; /* taken care of meanwhile (freed, reclaimed, sent again): drop it */
		if (!transit_consumed(w, load_acquire(&slot_ctrl(ch, transit_slot(w))->head)))
			ch->deferred[kept++] = d; /* its record was not advanced past: still in flight */
		else if (cas_acq_rel(&m->owner, &w, 0))
			freed++;
	}
	ch->n_deferred = kept;
	if (freed)
		wake_slab_waiters(ch);
}

void rmpsc__slab_forget_deferred(rmpsc_channel *ch)
{
	ch->n_deferred = 0;
}

int rmpsc_slab_accept(rmpsc_channel *ch, uint32_t handle)
{
	int rc = rmpsc__slab_check(ch, handle, "slab_accept");
	if (rc)
		return rc;
	if (grouped(ch))
		return rmpsc__set_error(RMPSC_EINVAL,
					"slab_accept: with consumer groups a received slab is shared by every group "
					"and returns to the pool once all have released it; copy what you keep");
	uint64_t me = rmpsc__attached_id(&ch->file);
	struct slab_meta *m = slab_meta_of(ch, handle);
	uint64_t w = load_acquire(&m->owner);
	if (owner_state(w) != SLAB_TRANSIT || transit_slot(w) >= ch->L.max_producers ||
	    !transit_consumed(w, load_acquire(&slot_ctrl(ch, transit_slot(w))->head)))
		return rmpsc__set_error(RMPSC_EINVAL, "slab_accept: slab %u is not a received slab", handle);
	if (!holds_consumer_role(ch, me))
		return rmpsc__set_error(RMPSC_EINVAL,
					"slab_accept: slab %u belongs to the consumer (pid %u), not this "
					"process",
					handle, consumer_pid(ch));
	if (!cas_acq_rel(&m->owner, &w, owner_word(SLAB_HELD, me)))
		return rmpsc__set_error(RMPSC_EINVAL, "slab_accept: slab %u changed owner meanwhile", handle);
	return RMPSC_OK;
}

void *rmpsc_slab_ptr(const rmpsc_channel *ch, uint32_t handle)
{
	if (!ch || handle >= ch->L.slab_count)
		return NULL;
	return ch->base + ch->L.slab_data_off + (uint64_t)handle * ch->L.slab_stride;
}

int rmpsc_slab_set_len(rmpsc_channel *ch, uint32_t handle, uint32_t len)
{
	int rc = rmpsc__slab_check(ch, handle, "slab_set_len");
	if (rc)
		return rc;
	if (len > ch->L.slab_size)
		return rmpsc__set_error(RMPSC_EINVAL, "slab_set_len: len %u > slab_size %u", len, ch->L.slab_size);
	store_relaxed(&slab_meta_of(ch, handle)->len, len);
	return RMPSC_OK;
}

int64_t rmpsc_slab_len(const rmpsc_channel *ch, uint32_t handle)
{
	if (!ch || handle >= ch->L.slab_count)
		return rmpsc__set_error(RMPSC_EINVAL, "slab_len: handle %u out of range", handle);
	uint32_t len = load_relaxed(&slab_meta_of(ch, handle)->len);
	/* The region may be hostile: never report more than the slab holds. */
	if (len > ch->L.slab_size)
		return rmpsc__set_error(RMPSC_ECORRUPT, "slab %u: stored len %u > slab_size %u", handle, len,
					ch->L.slab_size);
	return (int64_t)len;
}

uint32_t rmpsc_record_handle(const void *record)
{
	const unsigned char *b = record;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* What a scan returns to the pool besides slabs held by gone processes. */
enum reclaim_also {
	ALSO_NOTHING,
	ALSO_UNSENT,   /* slabs riding on ring `slot` that were never committed (position >= tail) */
	ALSO_CONSUMED, /* slabs whose record the consumer took, neither freed nor accepted */
	ALSO_RELEASED, /* with groups: slabs whose record every group released */
};

static uint32_t reclaim_scan(rmpsc_channel *ch, enum reclaim_also also, int slot)
{
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	uint32_t freed = 0;
	if (also == ALSO_NOTHING && grouped(ch))
		also = ALSO_RELEASED;
	for (uint32_t j = 0; j < ch->L.slab_count; j++) {
		struct slab_meta *m = slab_meta_of(ch, j);
		uint64_t w = load_acquire(&m->owner);
		int release = 0;
		if (owner_state(w) == SLAB_HELD) {
			release = !rmpsc__owner_alive_cached(&ch->file, &cache, w);
		} else if (owner_state(w) == SLAB_TRANSIT && transit_slot(w) < ch->L.max_producers) {
			struct ring_ctrl *c = slot_ctrl(ch, transit_slot(w));
			if (also == ALSO_CONSUMED)
				release = transit_consumed(w, load_acquire(&c->head));
			else if (also == ALSO_RELEASED)
				release = transit_consumed(w, rmpsc__released_head(ch, transit_slot(w),
										   load_acquire(&c->tail)));
			else if (also == ALSO_UNSENT && (int)transit_slot(w) == slot)
				release = !transit_consumed(w, load_acquire(&c->tail));
		}
		if (release && cas_acq_rel(&m->owner, &w, 0))
			freed++;
	}
	if (freed)
		wake_slab_waiters(ch);
	return freed;
}

uint32_t rmpsc__slab_reclaim(rmpsc_channel *ch, int slot_being_reclaimed)
{
	return reclaim_scan(ch, slot_being_reclaimed >= 0 ? ALSO_UNSENT : ALSO_NOTHING, slot_being_reclaimed);
}

uint32_t rmpsc__slab_reclaim_consumed(rmpsc_channel *ch)
{
	return reclaim_scan(ch, ALSO_CONSUMED, -1);
}

uint32_t rmpsc_slab_free_count(const rmpsc_channel *ch)
{
	if (!ch)
		return 0;
	uint32_t n = 0;
	/* With groups, where every group has released each ring, gathered once. */
	uint64_t *heads = grouped(ch) ? malloc(ch->L.max_producers * sizeof *heads) : NULL;
	if (heads)
		for (uint32_t s = 0; s < ch->L.max_producers; s++)
			heads[s] = rmpsc__released_head(ch, s, load_acquire(&slot_ctrl(ch, s)->tail));
	for (uint32_t j = 0; j < ch->L.slab_count; j++) {
		uint64_t w = load_relaxed(&slab_meta_of(ch, j)->owner);
		n += w == 0 || (heads && grouped_free(ch, w, heads[transit_slot(w) % ch->L.max_producers]));
	}
	free(heads);
	return n;
}
