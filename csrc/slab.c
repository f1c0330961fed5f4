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
#include "notify.h"
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
	hot_barrier(hot_light(ch->asymmetric)); /* the free before we read the flag */
	wake_progress(ch);
}

/*
 * With groups, a slab whose record every group has released is free: no member
 * reads it again. `head` is where every group has released its ring.
 */
static inline int grouped_free(const rmpsc_channel *ch, uint64_t w, uint64_t head)
{
	return owner_state(w) == SLAB_TRANSIT && transit_slot(w) < ch->L.max_producers && transit_consumed(w, head);
}

/* Whether a slab's owner word says it may be taken: free, or (with groups) riding
 * on a record every group has released. Remembers the released head of the ring
 * it looked up last: heads only grow, so a remembered one errs towards "in use". */
struct takeable {
	int released; /* grouped: released records' slabs are free */
	uint32_t head_slot;
	uint64_t head;
};

static int takeable(const rmpsc_channel *ch, struct takeable *t, uint64_t w)
{
	if (w == 0)
		return 1;
	if (!t->released || owner_state(w) != SLAB_TRANSIT || transit_slot(w) >= ch->L.max_producers)
		return 0;
	if (transit_slot(w) != t->head_slot) {
		t->head_slot = transit_slot(w);
		t->head = rmpsc__released_head(ch, t->head_slot, load_acquire(&slot_ctrl(ch, t->head_slot)->tail));
	}
	return grouped_free(ch, w, t->head);
}

/* Take slab j if it may be taken. Acquire on success: the previous holder's
 * accesses are done before ours. */
static int take_slab(rmpsc_channel *ch, struct takeable *t, uint64_t held, uint32_t j)
{
	struct slab_meta *m = slab_meta_of(ch, j);
	uint64_t w = load_relaxed(&m->owner);
	if (!takeable(ch, t, w) || !cas_acq_rel(&m->owner, &w, held))
		return 0;
	store_relaxed(&m->len, 0);
	return 1;
}

static void give_back_run(rmpsc_channel *ch, uint64_t held, uint32_t first, uint32_t n)
{
	for (uint32_t j = first; j < first + n; j++) {
		uint64_t w = held;
		cas_acq_rel(&slab_meta_of(ch, j)->owner, &w, 0); /* ours: cannot fail */
	}
	if (n) /* a sender that looked while we held them may be asleep for them */
		wake_slab_waiters(ch);
}

/*
 * Take `want` consecutive slabs (handles first .. first + want - 1), looking from
 * `start` to the pool's end and then from its beginning: a message in such a run
 * is one contiguous range of the region, copied in and out with one memcpy and
 * readable in place. 1 when taken; else 0, with *free set to the slabs the passes
 * found takeable (a hint: others take and free meanwhile).
 */
static int try_alloc_run(rmpsc_channel *ch, uint64_t held, uint32_t want, uint32_t start, uint32_t *handles,
			 uint32_t *free)
{
	uint32_t n = ch->L.slab_count;
	struct takeable t = { grouped(ch), UINT32_MAX, 0 };
	*free = 0;
	for (int pass = 0; pass < 2; pass++) {
		/* The second pass also finishes runs that cross `start` (counted once). */
		uint32_t from = pass ? 0 : start, to = pass ? start + want - 1 : n;
		if (to > n)
			to = n;
		uint32_t run = 0;
		for (uint32_t j = from; j < to; j++) {
			int ok = takeable(ch, &t, load_relaxed(&slab_meta_of(ch, j)->owner));
			*free += ok && (!pass || j < start);
			run = ok ? run + 1 : 0;
			if (run < want)
				continue;
			uint32_t first = j + 1 - want, got = 0;
			while (got < want && take_slab(ch, &t, held, first + got))
				got++;
			if (got == want) {
				for (uint32_t i = 0; i < want; i++)
					handles[i] = first + i;
				return 1;
			}
			/* Another sender took one meanwhile: look on after it. */
			give_back_run(ch, held, first, got);
			j = first + got;
			run = 0;
		}
	}
	return 0;
}

/*
 * Take `want` free slabs: one, or for a message of several all of them or none
 * (returns want or 0). Several are consecutive when the pool has such a run,
 * looked for from where the last one ended (next fit: messages released in the
 * order they were sent then free runs in that order, and a stream of equal
 * messages packs the pool); else they are taken wherever they are, but only when
 * the look for a run counted enough of them: a sender polling a pool that has too
 * few would otherwise take and give back every free slab, each time, writing the
 * words every other sender and receiver reads.
 */
static uint32_t try_alloc_n(rmpsc_channel *ch, uint64_t held, uint32_t want, uint32_t *handles)
{
	uint32_t n = ch->L.slab_count;
	uint32_t *cursor = &ch->hdr->slab_cursor;
	if (want > n)
		return 0;
	if (want >= 2) {
		uint32_t free;
		if (try_alloc_run(ch, held, want, load_relaxed(cursor) % n, handles, &free)) {
			store_relaxed(cursor, handles[0] + want);
			return want;
		}
		if (free < want)
			return 0;
	}
	uint32_t start = fetch_add_relaxed(cursor, want) % n;
	struct takeable t = { grouped(ch), UINT32_MAX, 0 };
	uint32_t got = 0;
	for (uint32_t i = 0, j = start; i < n && got < want; i++, j = j + 1 < n ? j + 1 : 0)
		if (take_slab(ch, &t, held, j))
			handles[got++] = j;
	if (got < want && want >= 2) {
		rmpsc__slab_give_back(ch, handles, got);
		return 0;
	}
	return got;
}

static int try_alloc(rmpsc_channel *ch, uint64_t held, uint32_t *handle)
{
	return try_alloc_n(ch, held, 1, handle) == 1;
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
	wake_lingerers(w->ch); /* a lingering member would keep the slabs (notify.h) */
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
	struct slab_wait sw = { .ch = ch, .held = owner_word(SLAB_HELD, me), .handle = RMPSC_INVALID_HANDLE };
	struct region_header *h = ch->hdr;
	/* Spin first, as for ring space: a sleep costs its waker a futex call and us a
	 * membarrier, while a receiver that is running frees slabs within microseconds
	 * (each poll is a scan of the pool). Slices let a sleeper reclaim. */
	struct waiter wt = { .flag = &h->progress_waiting,
			     .seq = &h->progress_seq,
			     .ready = slab_ready,
			     .arg = &sw,
			     .would_block = RMPSC_EFULL,
			     .spin_ns = rmpsc__spin_ns,
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
	/* A message of several slabs (rmpsc_producer_send_message): its first slab
	 * starts with the list of the others, not with its bytes. */
	if (ch->L.record_size >= MESSAGE_HEADER && get_u32le((const unsigned char *)record + 4) > 1 &&
	    handle != RMPSC_INVALID_HANDLE)
		return rmpsc__set_error(RMPSC_ECORRUPT,
					"record %llu of ring %u is a message of %u slabs, not one slab (read it with "
					"rmpsc_message_at)",
					(unsigned long long)pos, slot, get_u32le((const unsigned char *)record + 4));
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

/* ------------------------------------------------------------------------- */
/* Messages over several slabs. */

void rmpsc__slab_give_back(rmpsc_channel *ch, const uint32_t *handles, uint32_t n)
{
	uint64_t held = owner_word(SLAB_HELD, rmpsc__attached_id(&ch->file));
	for (uint32_t i = 0; i < n; i++) {
		uint64_t w = held;
		cas_acq_rel(&slab_meta_of(ch, handles[i])->owner, &w, 0); /* ours: cannot fail */
	}
	if (n)
		wake_slab_waiters(ch);
}

/*
 * The assembler: the one sender that may hold part of a message's slabs while it
 * waits for the rest. Without it, two senders each holding half of what they need
 * would wait for each other forever; with it, every other sender needing several
 * slabs takes all of them at once or none, so the pool drains to the assembler.
 */
struct assembler_wait {
	rmpsc_channel *ch;
	uint64_t me;
	int64_t next_check_ns;
};

static int assembler_ready(void *arg)
{
	struct assembler_wait *a = arg;
	uint64_t *word = &a->ch->hdr->slab_assembler;
	uint64_t w = load_acquire(word);
	if (w == 0 && cas_acq_rel(word, &w, a->me))
		return RMPSC_OK;
	if (load_acquire(&a->ch->hdr->closed))
		return rmpsc__set_error(RMPSC_ECLOSED, "send_message: channel is closed");
	wake_lingerers(a->ch);
	/* An assembler that died wakes nobody: look for it now and then. */
	int64_t now = rmpsc__monotonic_ns();
	if (w && now >= a->next_check_ns) {
		a->next_check_ns = now + RECLAIM_PERIOD_NS;
		if (!rmpsc__owner_alive(&a->ch->file, w) && cas_acq_rel(word, &w, a->me)) {
			rmpsc__slab_reclaim(a->ch, -1); /* the slabs it held */
			return RMPSC_OK;
		}
	}
	return WAIT_NOT_READY;
}

/* The assembler's first wait: all the slabs of its message at once. */
#define GATHER_WHOLE_NS    RECLAIM_PERIOD_NS
#define WAIT_GATHER_SLOWLY (INT32_MIN + 1)
struct gather_wait {
	rmpsc_channel *ch;
	uint64_t held;
	uint32_t n;
	uint32_t *handles;
	int64_t until_ns; /* then gather slab by slab */
};

static int gather_ready(void *arg)
{
	struct gather_wait *g = arg;
	if (try_alloc_n(g->ch, g->held, g->n, g->handles) == g->n)
		return RMPSC_OK;
	if (load_acquire(&g->ch->hdr->closed))
		return rmpsc__set_error(RMPSC_ECLOSED, "send_message: channel is closed");
	wake_lingerers(g->ch);
	return rmpsc__monotonic_ns() >= g->until_ns ? WAIT_GATHER_SLOWLY : WAIT_NOT_READY;
}

static void assembler_leave(rmpsc_channel *ch, uint64_t me)
{
	uint64_t w = me;
	cas_acq_rel(&ch->hdr->slab_assembler, &w, 0);
	wake_slab_waiters(ch); /* a sender waiting for the turn sleeps on the pool's words */
}

/* All n at once, when the pool has them and nobody is assembling; else none. */
static int take_all(rmpsc_channel *ch, uint64_t held, uint32_t n, uint32_t *handles)
{
	return !load_acquire(&ch->hdr->slab_assembler) && try_alloc_n(ch, held, n, handles) == n;
}

int rmpsc__slab_alloc_many(rmpsc_channel *ch, struct deadline *dl, uint32_t n, uint32_t *handles)
{
	uint64_t me;
	int rc = rmpsc__attach(&ch->file, &me);
	if (rc)
		return rc;
	uint64_t held = owner_word(SLAB_HELD, me);
	if (take_all(ch, held, n, handles))
		return RMPSC_OK;
	if (dl->try_once) {
		/* Nobody may be waiting to replace an assembler that died or to reclaim
		 * what dead holders kept (that is done by waiters): do both, once. */
		uint64_t *word = &ch->hdr->slab_assembler;
		uint64_t w = load_acquire(word);
		int again = w && !rmpsc__owner_alive(&ch->file, w) && cas_acq_rel(word, &w, 0);
		if (rmpsc__slab_reclaim(ch, -1))
			again = 1;
		if (again && take_all(ch, held, n, handles))
			return RMPSC_OK;
		return rmpsc__set_error(RMPSC_EFULL,
					"send_message: %u free slabs are not there now (or another sender is "
					"gathering slabs)",
					n);
	}
	/* Else take the assembler's turn, then gather, holding what we have. */
	struct region_header *h = ch->hdr;
	struct assembler_wait aw = { .ch = ch, .me = me };
	struct waiter wt = { .flag = &h->progress_waiting,
			     .seq = &h->progress_seq,
			     .ready = assembler_ready,
			     .arg = &aw,
			     .would_block = RMPSC_EFULL,
			     .slice_ns = RECLAIM_PERIOD_NS,
			     .interruptible = interruptible(ch),
			     .asymmetric = ch->asymmetric };
	rc = rmpsc__wait(&wt, dl);
	if (rc < 0)
		return rc == RMPSC_ETIMEDOUT ? rmpsc__set_error(rc,
								"send_message: no turn to gather %u slabs before "
								"the deadline (another sender is gathering)",
								n)
					     : rc;
	/* Wait for all n at once first (consecutive where the pool has a run: what a
	 * receiver releases comes free a message at a time); only a sender that waits
	 * longer than that gathers slab by slab, holding what it has, so that senders
	 * of single slabs cannot keep it waiting for ever. */
	struct gather_wait gw = {
		.ch = ch, .held = held, .n = n, .handles = handles, .until_ns = rmpsc__monotonic_ns() + GATHER_WHOLE_NS
	};
	struct waiter whole = { .flag = &h->progress_waiting,
				.seq = &h->progress_seq,
				.ready = gather_ready,
				.arg = &gw,
				.would_block = RMPSC_EFULL,
				.spin_ns = rmpsc__spin_ns,
				.slice_ns = GATHER_WHOLE_NS,
				.interruptible = interruptible(ch),
				.asymmetric = ch->asymmetric };
	rc = rmpsc__wait(&whole, dl);
	uint32_t got = rc == RMPSC_OK ? n : 0;
	if (rc == WAIT_GATHER_SLOWLY)
		rc = RMPSC_OK;
	while (got < n && rc == RMPSC_OK)
		if ((rc = rmpsc__slab_alloc(ch, dl, &handles[got])) == RMPSC_OK)
			got++; /* only what was taken is given back below */
	if (rc) {
		rmpsc__slab_give_back(ch, handles, got);
		if (rc == RMPSC_ETIMEDOUT)
			rc = rmpsc__set_error(rc, "send_message: %u slabs did not come free before the deadline (pool of %u)",
					      n, ch->L.slab_count);
	}
	assembler_leave(ch, me);
	return rc;
}

static int not_a_message(uint32_t slot, uint64_t pos, const char *why)
{
	return rmpsc__set_error(RMPSC_ECORRUPT, "record %llu of ring %u is not a message: %s", (unsigned long long)pos,
				slot, why);
}

int rmpsc__message_of_record(const rmpsc_channel *ch, const void *record, uint32_t slot, uint64_t pos,
			     struct rmpsc_message *m)
{
	const unsigned char *rec = record;
	uint32_t rs = ch->L.record_size;
	uint32_t first = rs >= 4 ? get_u32le(rec) : RMPSC_INVALID_HANDLE;
	uint32_t count = rs >= MESSAGE_HEADER ? get_u32le(rec + 4) : 0;
	memset(m, 0, sizeof *m);
	if (first == RMPSC_INVALID_HANDLE) {
		if (rs < MESSAGE_HEADER || count > rs - MESSAGE_HEADER)
			return not_a_message(slot, pos, "inline length beyond the record");
		m->len = count;
		m->data = rec + MESSAGE_HEADER;
		return RMPSC_OK;
	}
	if (first >= ch->L.slab_count)
		return not_a_message(slot, pos, "no slab handle in it");
	uint32_t k = count ? count : 1;
	if (k > message_slabs_max(&ch->L))
		return not_a_message(slot, pos, "more slabs than a message can take");
	/* Every slab must ride on exactly this record: a list naming any other slab
	 * (a hostile or corrupt region) is refused, not read. */
	uint64_t word = transit_word(slot, pos);
	struct slab_meta *fm = slab_meta_of(ch, first);
	if (load_acquire(&fm->owner) != word)
		return not_a_message(slot, pos, "its slab is not in transit on it");
	uint64_t list = 4ull * (k - 1);
	uint64_t len = load_relaxed(&fm->len);
	if (len + list > ch->L.slab_size)
		return not_a_message(slot, pos, "a slab length beyond the slab");
	const unsigned char *lp = rmpsc_slab_ptr(ch, first);
	/* In place when its slabs follow each other in the region, each full but the last. */
	int contiguous = ch->L.slab_stride == ch->L.slab_size && len + list == ch->L.slab_size;
	for (uint32_t i = 1; i < k; i++) {
		uint32_t hi = get_u32le(lp + 4 * (i - 1));
		if (hi >= ch->L.slab_count || load_acquire(&slab_meta_of(ch, hi)->owner) != word)
			return not_a_message(slot, pos, "its list names a slab not in transit on it");
		uint32_t li = load_relaxed(&slab_meta_of(ch, hi)->len);
		if (li > ch->L.slab_size)
			return not_a_message(slot, pos, "a slab length beyond the slab");
		contiguous = contiguous && hi == first + i && (i == k - 1 || li == ch->L.slab_size);
		len += li;
	}
	m->len = len;
	m->data = k == 1 || contiguous ? lp + list : NULL;
	m->slabs = k;
	m->first_ = first;
	m->word_ = word;
	return RMPSC_OK;
}

int rmpsc_message_copy(const rmpsc_channel *ch, const struct rmpsc_message *m, void *dst)
{
	if (!ch || !m || (!dst && m->len))
		return rmpsc__set_error(RMPSC_EINVAL, "message_copy: NULL channel, message or dst");
	if (m->data) {
		if (m->len)
			memcpy(dst, m->data, m->len);
		return RMPSC_OK;
	}
	if (m->first_ >= ch->L.slab_count || m->slabs > message_slabs_max(&ch->L))
		return rmpsc__set_error(RMPSC_EINVAL, "message_copy: not a message from rmpsc_message_at");
	/* The lengths were checked by rmpsc_message_at; a writer that changed them
	 * since is hostile: copy no more than m->len, and say so. */
	unsigned char *out = dst;
	uint64_t left = m->len;
	uint64_t list = 4ull * (m->slabs - 1);
	const unsigned char *lp = rmpsc_slab_ptr(ch, m->first_);
	for (uint32_t i = 0; i < m->slabs; i++) {
		uint32_t hi = i ? get_u32le(lp + 4 * (i - 1)) : m->first_;
		if (hi >= ch->L.slab_count || load_acquire(&slab_meta_of(ch, hi)->owner) != m->word_)
			return rmpsc__set_error(RMPSC_ECORRUPT, "message_copy: the message's slabs changed while read");
		uint64_t off = i ? 0 : list;
		uint64_t n = load_relaxed(&slab_meta_of(ch, hi)->len);
		if (n > ch->L.slab_size - off || n > left)
			return rmpsc__set_error(RMPSC_ECORRUPT, "message_copy: the message's slabs changed while read");
		memcpy(out, (const unsigned char *)rmpsc_slab_ptr(ch, hi) + off, n);
		out += n;
		left -= n;
	}
	if (left)
		return rmpsc__set_error(RMPSC_ECORRUPT, "message_copy: the message's slabs changed while read");
	return RMPSC_OK;
}

void rmpsc__message_free(rmpsc_channel *ch, const struct rmpsc_message *m)
{
	if (!m->slabs)
		return;
	const unsigned char *lp = rmpsc_slab_ptr(ch, m->first_);
	/* The list first: freeing the first slab lets it be reused. */
	for (uint32_t i = 1; i < m->slabs; i++) {
		uint32_t hi = get_u32le(lp + 4 * (i - 1));
		if (hi < ch->L.slab_count && load_acquire(&slab_meta_of(ch, hi)->owner) == m->word_)
			rmpsc_slab_free(ch, hi);
	}
	rmpsc_slab_free(ch, m->first_);
}
