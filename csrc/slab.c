/*
 * The slab pool: fixed-size blocks in the region, named by u32 handles.
 *
 * Each slab has one owner word (owner.h): 0 free, HELD(identity) while a process
 * holds it, TRANSIT(slot) once sent on a ring (with the record's position in
 * transit_pos). Allocation claims a free word with one CAS, starting at a rotating
 * cursor, so there is no free list whose head could be lost by a process dying
 * between unlinking a slab and recording its owner: every crash point leaves each
 * slab either free or naming its owner, and reclaim finds it. ABA cannot arise:
 * the CAS compares owner words, not pointers.
 */
#include <string.h>

#include "barrier.h"
#include "channel.h"
#include "error.h"
#include "owner.h"
#include "ring.h"
#include "wait.h"

static inline int pool_ok(const rmpsc_channel *ch, const char *fn)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: NULL channel", fn);
	if (!ch->L.slab_count)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: this channel has no slab pool", fn);
	return RMPSC_OK;
}

static inline int handle_ok(const rmpsc_channel *ch, uint32_t h, const char *fn)
{
	int rc = pool_ok(ch, fn);
	if (rc)
		return rc;
	if (h >= ch->L.slab_count)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: handle %u out of range (pool of %u)", fn, h, ch->L.slab_count);
	return RMPSC_OK;
}

static int try_alloc(rmpsc_channel *ch, uint64_t held, uint32_t *handle)
{
	uint32_t n = ch->L.slab_count;
	uint32_t start = fetch_add_relaxed(&ch->hdr->slab_cursor, 1) % n;
	for (uint32_t i = 0, j = start; i < n; i++, j = j + 1 < n ? j + 1 : 0) {
		struct slab_meta *m = slab_meta_of(ch, j);
		uint64_t w = load_relaxed(&m->owner);
		/* Acquire on success: the previous holder's writes are done before ours. */
		if (w == 0 && cas_acq_rel(&m->owner, &w, held)) {
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
};

static int slab_ready(void *arg)
{
	struct slab_wait *w = arg;
	if (try_alloc(w->ch, w->held, &w->handle))
		return RMPSC_OK;
	if (load_acquire(&w->ch->hdr->closed))
		return rmpsc__set_error(RMPSC_ECLOSED, "slab_alloc: channel is closed and the pool is empty");
	return WAIT_NOT_READY;
}

int rmpsc_slab_alloc(rmpsc_channel *ch, int64_t timeout_ns, uint32_t *handle)
{
	int rc = pool_ok(ch, "slab_alloc");
	if (rc)
		return rc;
	if (!handle)
		return rmpsc__set_error(RMPSC_EINVAL, "slab_alloc: NULL handle");
	uint64_t me = rmpsc__owner_self();
	if (!me)
		return rmpsc__sys_error("reading /proc/self/stat");
	struct slab_wait w = { ch, owner_word(SLAB_HELD, me), RMPSC_INVALID_HANDLE };
	if (try_alloc(ch, w.held, &w.handle) || (rmpsc__slab_reclaim(ch, -1) && try_alloc(ch, w.held, &w.handle))) {
		*handle = w.handle;
		return RMPSC_OK;
	}
	struct region_header *h = ch->hdr;
	rc = rmpsc__wait_until_ready(&h->slab_waiting, &h->slab_seq, slab_ready, &w, rmpsc__deadline_from_timeout(timeout_ns),
			      0, RMPSC_EFULL, ch->flags & RMPSC_OPEN_INTERRUPTIBLE);
	if (rc == RMPSC_EFULL)
		rmpsc__set_error(rc, "slab_alloc: all %u slabs are in use", ch->L.slab_count);
	if (rc < 0)
		return rc;
	*handle = w.handle;
	return RMPSC_OK;
}

static void wake_slab_waiters(rmpsc_channel *ch)
{
	struct region_header *h = ch->hdr;
	wake_waiters(&h->slab_waiting, &h->slab_seq);
}

int rmpsc_slab_free(rmpsc_channel *ch, uint32_t handle)
{
	int rc = handle_ok(ch, handle, "slab_free");
	if (rc)
		return rc;
	struct slab_meta *m = slab_meta_of(ch, handle);
	uint64_t w = load_acquire(&m->owner);
	do {
		if (w == 0)
			return rmpsc__set_error(RMPSC_EINVAL, "slab_free: slab %u is already free", handle);
		/* Release: our reads and writes of the slab happen before its next owner's. */
	} while (!cas_acq_rel(&m->owner, &w, 0));
	wake_slab_waiters(ch);
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
	int rc = handle_ok(ch, handle, "slab_set_len");
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
	return len <= ch->L.slab_size ? (int64_t)len : rmpsc__set_error(RMPSC_ECORRUPT, "slab %u: stored len %u > slab_size %u",
								handle, len, ch->L.slab_size);
}

uint32_t rmpsc_record_handle(const void *record)
{
	const unsigned char *b = record;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int rmpsc_producer_send_slab(rmpsc_producer *p, uint32_t handle, int64_t timeout_ns)
{
	if (!p)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_slab: NULL producer");
	rmpsc_channel *ch = p->ch;
	int rc = handle_ok(ch, handle, "producer_send_slab");
	if (rc)
		return rc;
	struct slab_meta *m = slab_meta_of(ch, handle);
	uint64_t held = owner_word(SLAB_HELD, owner_id(p->owner));
	if (load_acquire(&m->owner) != held)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_slab: slab %u is not held by this process", handle);
	void *dst;
	rc = rmpsc_producer_reserve(p, 1, timeout_ns, &dst);
	if (rc < 0)
		return rc;
	unsigned char *b = dst;
	memset(b, 0, p->ring.record_size_);
	b[0] = (unsigned char)handle;
	b[1] = (unsigned char)(handle >> 8);
	b[2] = (unsigned char)(handle >> 16);
	b[3] = (unsigned char)(handle >> 24);
	/* Mark the slab as riding on this record before publishing it: if we die
	 * before the commit, reclaim sees transit_pos >= tail and frees the slab. */
	store_relaxed(&m->transit_pos, load_relaxed(&p->ctrl->tail));
	uint64_t w = held;
	if (!cas_acq_rel(&m->owner, &w, owner_word(SLAB_TRANSIT, (uint64_t)p->slot << OWNER_PID_SHIFT))) {
		rmpsc_producer_commit(p, 0);
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_slab: slab %u changed owner while sending", handle);
	}
	return rmpsc_producer_commit(p, 1);
}

/* Is position `pos` at or after `limit`? (unsigned distance, wrap-safe) */
static inline int pos_at_or_after(uint64_t pos, uint64_t limit)
{
	return (int64_t)(pos - limit) >= 0;
}

/* A small cache of liveness answers, so a scan asks /proc once per owner. */
struct alive_cache {
	uint64_t id[8];
	int alive[8];
	unsigned n;
};

static int cached_alive(struct alive_cache *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n && i < 8; i++)
		if (c->id[i] == id)
			return c->alive[i];
	int a = rmpsc__owner_alive(id);
	c->id[c->n % 8] = id;
	c->alive[c->n % 8] = a;
	c->n++;
	return a;
}

/*
 * Return to the pool: slabs held by dead processes; with `unsent_slot` >= 0, slabs
 * in transit on that slot that were never committed (position >= its tail); with
 * `consumed`, slabs in transit whose record the consumer already took (position <
 * head): the dead consumer's, on takeover.
 */
static uint32_t reclaim_scan(rmpsc_channel *ch, int unsent_slot, int consumed)
{
	struct alive_cache cache = { .n = 0 };
	uint32_t freed = 0;
	for (uint32_t j = 0; j < ch->L.slab_count; j++) {
		struct slab_meta *m = slab_meta_of(ch, j);
		uint64_t w = load_acquire(&m->owner);
		int release = 0;
		if (owner_state(w) == SLAB_HELD) {
			release = !cached_alive(&cache, owner_id(w));
		} else if (owner_state(w) == SLAB_TRANSIT && owner_pid(w) < ch->L.max_producers) {
			struct ring_ctrl *c = slot_ctrl(ch, owner_pid(w));
			uint64_t pos = load_relaxed(&m->transit_pos);
			if (consumed)
				release = !pos_at_or_after(pos, load_acquire(&c->head));
			else if ((int)owner_pid(w) == unsent_slot)
				release = pos_at_or_after(pos, load_acquire(&c->tail));
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
	return reclaim_scan(ch, slot_being_reclaimed, 0);
}

uint32_t rmpsc__slab_reclaim_consumed(rmpsc_channel *ch)
{
	return reclaim_scan(ch, -1, 1);
}

uint32_t rmpsc_slab_free_count(const rmpsc_channel *ch)
{
	if (!ch)
		return 0;
	uint32_t n = 0;
	for (uint32_t j = 0; j < ch->L.slab_count; j++)
		n += load_relaxed(&slab_meta_of(ch, j)->owner) == 0;
	return n;
}
