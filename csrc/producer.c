/*
 * Producers: registration, reservations and sends on the producer's own SPSC ring
 * (ring.h), the producer half of the close protocol (slot.c), and messages over
 * slabs (slab.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

#define SPACE_RECOVER_NS 100000000 /* a producer waiting for space looks for dead members 10x/s */

int rmpsc_producer_register(rmpsc_channel *ch, rmpsc_producer **out)
{
	if (!ch || !out)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_register: NULL channel or out");
	*out = NULL;
	if (is_closed(ch))
		return rmpsc__set_error(RMPSC_ECLOSED, "producer_register: channel is closed");
	uint64_t me;
	int rc = rmpsc__attach(&ch->file, &me);
	if (rc)
		return rc;
	rmpsc_producer *p = calloc(1, sizeof *p);
	if (!p) {
		errno = ENOMEM;
		return rmpsc__sys_error("allocating a producer");
	}
	int s = rmpsc__take_slot(ch, me);
	if (s < 0) {
		free(p);
		/* Say what holds them: a closed (or dead, reclaimed) producer's slot comes
		 * free only once its records are consumed. */
		uint32_t undrained = 0;
		for (uint32_t i = 0; i < ch->L.max_producers; i++) {
			uint32_t st = owner_state(load_acquire(&slot_ctrl(ch, i)->owner));
			undrained += st == RMPSC_SLOT_DETACHED || st == RMPSC_SLOT_RECLAIMING;
		}
		if (undrained)
			return rmpsc__set_error(
				RMPSC_ENOSLOT,
				"all %u producer slots are taken: %u by live producers, %u by closed or "
				"dead producers whose records are not consumed yet (each comes free once "
				"they are)",
				ch->L.max_producers, ch->L.max_producers - undrained, undrained);
		return rmpsc__set_error(RMPSC_ENOSLOT, "all %u producer slots are in use by live producers",
					ch->L.max_producers);
	}
	struct ring_ctrl *c = slot_ctrl(ch, (uint32_t)s);
	ring_view_init(&p->ring, c, slot_data(ch, (uint32_t)s), ch->L.record_size, ch->L.ring_bits);
	p->owner = owner_word(RMPSC_SLOT_ACTIVE, me);
	p->ch = ch;
	p->ctrl = c;
	p->slot = (uint32_t)s;
	p->fork_gen = fork_generation();
	p->light = hot_light(ch->asymmetric);
	p->ready_fd = -1;
	*out = p;
	return RMPSC_OK;
}

uint32_t rmpsc_producer_slot(const rmpsc_producer *p)
{
	return p ? p->slot : UINT32_MAX;
}

static inline int check_producer(const rmpsc_producer *p, const char *fn)
{
	if (unlikely(!p))
		return rmpsc__set_error(RMPSC_EINVAL, "%s: NULL producer", fn);
	if (unlikely(p->fork_gen != fork_generation()))
		return rmpsc__set_error(RMPSC_EFORKED,
					"%s: producer was created in another process (inherited by fork)", fn);
	return RMPSC_OK;
}

int rmpsc_producer_count_dropped(rmpsc_producer *p, uint64_t n)
{
	int rc = check_producer(p, "producer_count_dropped");
	if (rc || !n)
		return rc;
	/* One writer (this slot's producer); relaxed stores, so stats may read any time. */
	struct ring_ctrl *c = p->ctrl;
	uint64_t tail = load_relaxed(&c->tail), episodes = load_relaxed(&c->drop_episodes);
	if (!episodes || load_relaxed(&c->drop_tail) != tail) {
		store_relaxed(&c->drop_episodes, episodes + 1);
		store_relaxed(&c->drop_tail, tail);
	}
	store_relaxed(&c->dropped, load_relaxed(&c->dropped) + n);
	return RMPSC_OK;
}

/* End a reservation window: clear the announcement and wake a consumer that may be
 * waiting for the channel to drain. */
static inline void end_reservation(rmpsc_producer *p)
{
	/* Release: after the tail, so a consumer that sees 0 also sees the new tail. */
	store_release(&p->ctrl->reserving, 0);
	wake_members(p->ch, &p->member_fifos, p->slot, p->light);
}

/*
 * Several group places: the ring's head is the least head of the groups (group.h),
 * which only the producer gathers, on this slow path, into ring_ctrl.head, where
 * ring_reserve reads it. 1 when it moved.
 */
static int refresh_head(rmpsc_producer *p)
{
	struct ring_ctrl *c = p->ctrl;
	uint64_t h = rmpsc__released_head(p->ch, p->slot, load_relaxed(&c->tail));
	if (h == load_relaxed(&c->head))
		return 0;
	store_release(&c->head, h);
	return 1;
}

struct space_wait {
	rmpsc_producer *p;
};

static int space_ready(void *arg)
{
	struct space_wait *w = arg;
	rmpsc_producer *p = w->p;
	if (is_closed(p->ch))
		return rmpsc__set_error_static(RMPSC_ECLOSED, "closed: the channel was closed");
	struct ring_ctrl *c = p->ctrl;
	if (grouped(p->ch)) {
		/* A group whose members died holds us back until they are recovered (an
		 * ephemeral group then goes away): look for them now and then. */
		/* Per producer, not per wait: a caller that waits in short slices (a
		 * binding checking for signals) still looks at the bounded rate. */
		int64_t now = rmpsc__monotonic_ns();
		if (now >= p->next_recover_ns) {
			if (p->next_recover_ns)
				rmpsc_reclaim_dead(p->ch);
			p->next_recover_ns = now + SPACE_RECOVER_NS;
		}
		if (p->ch->L.max_groups > 1)
			refresh_head(p);
	}
	uint64_t used = load_relaxed(&c->tail) - load_acquire(&c->head);
	if (used > p->ring.mask_ + 1)
		return rmpsc__set_error(RMPSC_ECORRUPT, "ring %u: head is impossible", p->slot);
	return used <= p->ring.mask_ ? 1 : WAIT_NOT_READY;
}

static int producer_reserve(rmpsc_producer *p, size_t want, struct deadline *dl, void **ptr)
{
	struct ring_ctrl *c = p->ctrl;
	struct region_header *h = p->ch->hdr;
	for (;;) {
		/* Store, hot barrier, load: the producer half of the close protocol. */
		store_relaxed(&c->reserving, 1);
		hot_barrier(p->light);
		if (unlikely(load_relaxed(&h->closed))) {
			end_reservation(p);
			return rmpsc__set_error_static(RMPSC_ECLOSED, "closed: the channel was closed");
		}
		int n = ring_reserve(&p->ring, want, ptr);
		if (n == 0 && p->ch->L.max_groups > 1 && refresh_head(p))
			n = ring_reserve(&p->ring, want, ptr);
		if (likely(n > 0)) {
			p->ring.reserved_ = (uint32_t)n;
			return n;
		}
		end_reservation(p);
		if (n < 0)
			return rmpsc__set_error(n, "ring %u: head is impossible (corrupt region)", p->slot);
		struct space_wait w = { p };
		struct waiter wt = { .flag = &c->producer_waiting,
				     .seq = &c->space_seq,
				     .ready = space_ready,
				     .arg = &w,
				     .would_block = RMPSC_EFULL,
				     .spin_ns = rmpsc__spin_ns,
				     .slice_ns = grouped(p->ch) ? SPACE_RECOVER_NS : 0,
				     .sole = 1,
				     .interruptible = interruptible(p->ch),
				     .asymmetric = p->ch->asymmetric,
				     .armed_fd = p->ready_armed };
		int r = rmpsc__wait(&wt, dl);
		if (r < 0)
			return r;
	}
}

int rmpsc_producer_reserve(rmpsc_producer *p, size_t want, int64_t timeout_ns, void **ptr)
{
	int rc = check_producer(p, "producer_reserve");
	if (rc)
		return rc;
	if (!ptr || want == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_reserve: want must be >= 1 and ptr non-NULL");
	if (p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_reserve: a reservation is already open");
	struct deadline dl = deadline_from_timeout(timeout_ns);
	return producer_reserve(p, clamp_count(want), &dl, ptr);
}

static inline void producer_commit(rmpsc_producer *p, size_t n)
{
	p->ring.reserved_ = 0;
	if (n)
		ring_publish(&p->ring, n);
	end_reservation(p);
}

int rmpsc_producer_commit(rmpsc_producer *p, size_t n)
{
	int rc = check_producer(p, "producer_commit");
	if (rc)
		return rc;
	if (!p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_commit: no reservation is open");
	if (n > p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_commit: n %zu exceeds the %u records reserved", n,
					p->ring.reserved_);
	producer_commit(p, n);
	return RMPSC_OK;
}

/*
 * send's common case, in one pass: the ring has room by the producer's cached
 * view of head and the channel is open. Returns 1 when sent, 0 (nothing changed
 * but a cancelled announcement) when the general path must decide: full by the
 * cache, closed, or an impossible head.
 */
static inline int send_now(rmpsc_producer *p, const void *data, size_t len)
{
	struct ring_ctrl *c = p->ctrl;
	const rmpsc_ring *r = &p->ring;
	uint64_t tail = load_relaxed(&c->tail); /* only this producer writes it */
	if (unlikely(tail - c->cached_head > r->mask_))
		return 0;
	/* The producer half of the close protocol, as in producer_reserve. */
	store_relaxed(&c->reserving, 1);
	hot_barrier(p->light);
	if (unlikely(load_relaxed(&p->ch->hdr->closed))) {
		end_reservation(p);
		return 0;
	}
	unsigned char *dst = r->data_ + (tail & r->mask_) * r->record_size_;
	memcpy(dst, data, len);
	if (len < r->record_size_)
		memset(dst + len, 0, r->record_size_ - len);
	store_release(&c->tail, tail + 1); /* A1, as ring_publish */
	end_reservation(p);
	return 1;
}

int rmpsc_producer_send(rmpsc_producer *p, const void *data, size_t len, int64_t timeout_ns)
{
	/* data == NULL (a 0-byte send) takes the general path: memcpy from NULL is undefined even for 0 bytes. */
	if (likely(p && p->fork_gen == fork_generation() && len <= p->ring.record_size_ && data && !p->ring.reserved_ &&
		   send_now(p, data, len)))
		return RMPSC_OK;
	int rc = check_producer(p, "producer_send");
	if (rc)
		return rc;
	uint32_t rs = p->ring.record_size_;
	if (len > rs)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send: too long: %zu bytes > record_size %u", len, rs);
	if (!data && len)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send: NULL data");
	if (p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send: a reservation is open");
	struct deadline dl = deadline_from_timeout(timeout_ns);
	void *dst;
	int n = producer_reserve(p, 1, &dl, &dst);
	if (n < 0)
		return n;
	if (len)
		memcpy(dst, data, len);
	if (len < rs)
		memset((unsigned char *)dst + len, 0, rs - len);
	producer_commit(p, 1);
	return RMPSC_OK;
}

int rmpsc_producer_send_many(rmpsc_producer *p, const void *records, size_t count, int64_t timeout_ns)
{
	int rc = check_producer(p, "producer_send_many");
	if (rc)
		return rc;
	if (!records && count)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_many: NULL records");
	if (p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_many: a reservation is open");
	struct deadline dl = deadline_from_timeout(timeout_ns);
	const unsigned char *src = records;
	uint32_t rs = p->ring.record_size_;
	size_t sent = 0;
	count = clamp_count(count);
	while (sent < count) {
		void *dst;
		int n = producer_reserve(p, count - sent, &dl, &dst);
		if (n < 0)
			return sent ? (int)sent : n;
		memcpy(dst, src + sent * rs, (size_t)n * rs);
		producer_commit(p, (size_t)n);
		sent += (size_t)n;
	}
	return (int)sent;
}

void rmpsc_producer_close(rmpsc_producer *p)
{
	if (!p)
		return;
	if (p->fork_gen == fork_generation()) {
		if (p->ring.reserved_)
			producer_commit(p, 0); /* abort: nothing of it was published */
		uint64_t w = p->owner;
		/* Fails only if the slot was fenced or (wrongly) reclaimed: leave it then. */
		cas_acq_rel(&p->ctrl->owner, &w, owner_word(RMPSC_SLOT_DETACHED, owner_id(p->owner)));
		wake_members(p->ch, &p->member_fifos, p->slot, hot_light(p->ch->asymmetric));
		if (p->ready_fd >= 0) {
			uint64_t gen = p->ready_gen;
			cas_acq_rel(&p->ctrl->fifo_gen, &gen, 0);
			rmpsc__fifo_remove(p->ch, 'p', p->slot, p->ready_gen);
		}
	}
	if (p->ready_fd >= 0)
		close(p->ready_fd);
	rmpsc__fifo_refs_free(p->member_fifos, p->ch->L.max_consumers);
	free(p);
}

/* ------------------------------------------------------------------------- */
/* Messages over slabs. */

static int send_slab(rmpsc_producer *p, uint32_t handle, struct deadline *dl, const char *fn)
{
	void *dst;
	int n = producer_reserve(p, 1, dl, &dst);
	if (n < 0)
		return n;
	slab_record_encode(dst, p->ring.record_size_, handle);
	int rc = rmpsc__slab_to_record(p->ch, handle, owner_id(p->owner), p->slot, load_relaxed(&p->ctrl->tail), fn);
	producer_commit(p, rc == RMPSC_OK); /* 0 aborts: nothing was published */
	return rc;
}

int rmpsc_producer_send_slab(rmpsc_producer *p, uint32_t handle, int64_t timeout_ns)
{
	int rc = check_producer(p, "producer_send_slab");
	if (rc || (rc = rmpsc__slab_check(p->ch, handle, "producer_send_slab")))
		return rc;
	if (p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_slab: a reservation is open");
	struct deadline dl = deadline_from_timeout(timeout_ns);
	return send_slab(p, handle, &dl, "producer_send_slab");
}

int rmpsc_producer_send_bytes(rmpsc_producer *p, const void *data, size_t len, int64_t timeout_ns)
{
	int rc = check_producer(p, "producer_send_bytes");
	if (rc)
		return rc;
	rmpsc_channel *ch = p->ch;
	if (!ch->L.slab_count)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_bytes: this channel has no slab pool");
	if (len > ch->L.slab_size)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_bytes: too long: %zu bytes > slab_size %u", len,
					ch->L.slab_size);
	if (!data && len)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_bytes: NULL data");
	if (p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_bytes: a reservation is open");
	/* One deadline for both waits: a free slab, then ring space. */
	struct deadline dl = deadline_from_timeout(timeout_ns);
	uint32_t h;
	if ((rc = rmpsc__slab_alloc(ch, &dl, &h)))
		return rc == RMPSC_ETIMEDOUT
			       ? rmpsc__set_error(rc, "producer_send_bytes: no free slab before the deadline")
			       : rc;
	if (len)
		memcpy(rmpsc_slab_ptr(ch, h), data, len);
	store_relaxed(&slab_meta_of(ch, h)->len, (uint32_t)len); /* published by the commit (release) */
	if ((rc = send_slab(p, h, &dl, "producer_send_bytes"))) {
		rmpsc_slab_free(ch, h); /* never sent: back to the pool (ours, so this cannot fail) */
		if (rc == RMPSC_EFULL || rc == RMPSC_ETIMEDOUT)
			rc = rmpsc__set_error(rc, "producer_send_bytes: ring %u is full%s", p->slot,
					      rc == RMPSC_ETIMEDOUT ? " until the deadline" : "");
	}
	return rc;
}

/* Copies consecutive bytes of a message's parts into the places that hold them. */
struct gather {
	const struct rmpsc_part *part;
	size_t off; /* into *part */
};

static void gather_into(struct gather *g, unsigned char *dst, size_t n)
{
	while (n) {
		size_t take = g->part->len - g->off;
		if (take > n)
			take = n;
		if (take) /* a 0-byte part may have a NULL data */
			memcpy(dst, (const unsigned char *)g->part->data + g->off, take);
		dst += take;
		n -= take;
		g->off += take;
		if (g->off == g->part->len) {
			g->part++;
			g->off = 0;
		}
	}
}

/* The slabs of a message: the first lists the others, then the bytes, in order;
 * consecutive slabs (slab.c takes runs where it can) are one range of the region,
 * filled with one gather. */
static void fill_slabs(rmpsc_channel *ch, const uint32_t *h, uint32_t k, struct gather *g, uint64_t len)
{
	uint32_t size = ch->L.slab_size;
	unsigned char *first = rmpsc_slab_ptr(ch, h[0]);
	uint32_t list = 4 * (k - 1);
	int run = ch->L.slab_stride == size;
	for (uint32_t i = 1; i < k; i++) {
		put_u32le(first + 4 * (i - 1), h[i]);
		run = run && h[i] == h[0] + i;
	}
	if (run)
		gather_into(g, first + list, (size_t)len);
	for (uint32_t i = 0; i < k; i++) {
		uint32_t off = i ? 0 : list;
		uint64_t n = len < size - off ? len : size - off;
		if (!run)
			gather_into(g, (unsigned char *)rmpsc_slab_ptr(ch, h[i]) + off, (size_t)n);
		store_relaxed(&slab_meta_of(ch, h[i])->len, (uint32_t)n); /* published by the commit (release) */
		len -= n;
	}
}

#define STACK_SLABS 64 /* handles of a message kept on the stack; more are allocated */

int rmpsc_producer_send_message(rmpsc_producer *p, const struct rmpsc_part *parts, size_t nparts, int64_t timeout_ns)
{
	int rc = check_producer(p, "producer_send_message");
	if (rc)
		return rc;
	if (!parts && nparts)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_message: NULL parts");
	uint64_t len = 0;
	for (size_t i = 0; i < nparts; i++) {
		if (!parts[i].data && parts[i].len)
			return rmpsc__set_error(RMPSC_EINVAL, "producer_send_message: part %zu has NULL data", i);
		if (parts[i].len > UINT64_MAX - len)
			return rmpsc__set_error(RMPSC_EINVAL, "producer_send_message: the parts overflow");
		len += parts[i].len;
	}
	if (p->ring.reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_send_message: a reservation is open");
	rmpsc_channel *ch = p->ch;
	uint64_t max = rmpsc_message_max(ch);
	if (len > max)
		return rmpsc__set_error(RMPSC_EINVAL,
					"producer_send_message: a message of %llu bytes is longer than this channel "
					"carries (%llu: record_size %u less 8 inline, or its slab pool of %u x %u "
					"bytes)",
					(unsigned long long)len, (unsigned long long)max, ch->L.record_size,
					ch->L.slab_count, ch->L.slab_size);
	struct deadline dl = deadline_from_timeout(timeout_ns);
	struct gather g = { parts, 0 };
	void *dst;
	uint32_t rs = ch->L.record_size;
	if (rs >= MESSAGE_HEADER && len <= rs - MESSAGE_HEADER) {
		int n = producer_reserve(p, 1, &dl, &dst);
		if (n < 0)
			return n;
		put_u32le(dst, RMPSC_INVALID_HANDLE);
		put_u32le((unsigned char *)dst + 4, (uint32_t)len);
		gather_into(&g, (unsigned char *)dst + MESSAGE_HEADER, (size_t)len);
		producer_commit(p, 1);
		return RMPSC_OK;
	}
	if (!ch->L.slab_count) /* records under 8 bytes and no pool: not even an empty message */
		return rmpsc__set_error(RMPSC_EINVAL,
					"producer_send_message: this channel carries no messages (record_size %u < %u "
					"and no slab pool)",
					rs, MESSAGE_HEADER);
	uint32_t k = (uint32_t)message_slabs_for(&ch->L, len);
	uint32_t stack[STACK_SLABS];
	uint32_t *h = k <= STACK_SLABS ? stack : malloc(k * sizeof *h);
	if (!h) {
		errno = ENOMEM;
		return rmpsc__sys_error("producer_send_message: allocating a message's list of slabs");
	}
	rc = k == 1 ? rmpsc__slab_alloc(ch, &dl, h) : rmpsc__slab_alloc_many(ch, &dl, k, h);
	if (rc)
		goto out;
	fill_slabs(ch, h, k, &g, len);
	int n = producer_reserve(p, 1, &dl, &dst);
	if (n < 0) {
		rc = n;
		rmpsc__slab_give_back(ch, h, k); /* never sent */
		goto out;
	}
	put_u32le(dst, h[0]);
	if (rs >= MESSAGE_HEADER) /* a smaller record holds the handle only: one slab (message_slabs_max) */
		put_u32le((unsigned char *)dst + 4, k);
	for (uint32_t i = rs >= MESSAGE_HEADER ? MESSAGE_HEADER : 4; i < rs; i++)
		((unsigned char *)dst)[i] = 0;
	/* Each slab rides on the record before it is published: a sender dying before
	 * the commit leaves them on a position >= tail, which reclaim frees. */
	uint64_t pos = load_relaxed(&p->ctrl->tail);
	for (uint32_t i = 0; i < k && !rc; i++)
		rc = rmpsc__slab_to_record(ch, h[i], owner_id(p->owner), p->slot, pos, "producer_send_message");
	producer_commit(p, rc == RMPSC_OK); /* 0 aborts: nothing was published */
	if (rc)
		rmpsc__slab_give_back(ch, h, k); /* those still ours (a corrupt region took the others) */
out:
	if (h != stack)
		free(h);
	return rc;
}

uint64_t rmpsc_message_max(const rmpsc_channel *ch)
{
	if (!ch)
		return 0;
	const struct layout *L = &ch->L;
	uint64_t inl = L->record_size >= MESSAGE_HEADER ? L->record_size - MESSAGE_HEADER : 0;
	uint32_t k = message_slabs_max(L);
	uint64_t pooled = k == 0 ? 0 : k == 1 ? L->slab_size : (uint64_t)k * (L->slab_size - 4) + 4;
	return pooled > inl ? pooled : inl;
}

int rmpsc_producer_register_wait(rmpsc_channel *ch, int64_t timeout_ns, rmpsc_producer **out)
{
	struct deadline dl = deadline_from_timeout(timeout_ns);
	int64_t pause_ns = 100000; /* 100 us, doubling to 10 ms */
	for (;;) {
		int rc = rmpsc_producer_register(ch, out);
		if (rc != RMPSC_ENOSLOT || dl.try_once)
			return rc;
		int64_t now = rmpsc__monotonic_ns();
		if (!dl.at_ns)
			dl.at_ns = now + dl.timeout_ns;
		if (now >= dl.at_ns) {
			char why[256];
			snprintf(why, sizeof why, "%s", rmpsc_last_error());
			return rmpsc__set_error(RMPSC_ETIMEDOUT,
						"producer_register: no slot came free before the deadline (%s)", why);
		}
		int64_t nap = pause_ns < dl.at_ns - now ? pause_ns : dl.at_ns - now;
		struct timespec ts = { (time_t)(nap / 1000000000), (long)(nap % 1000000000) };
		if (nanosleep(&ts, NULL) && errno == EINTR && interruptible(ch))
			return rmpsc__set_error(RMPSC_EINTR, "producer_register: interrupted by a signal");
		if (pause_ns < 10000000)
			pause_ns *= 2;
	}
}

/* ------------------------------------------------------------------------- */
/* Readiness: a producer in an event loop waits for space on a FIFO (notify.h). */

int rmpsc_producer_ready_fd(rmpsc_producer *p)
{
	int rc = check_producer(p, "producer_ready_fd");
	if (rc)
		return rc;
	if (p->ready_fd >= 0)
		return p->ready_fd;
	uint64_t gen;
	int fd = rmpsc__fifo_create(p->ch, 'p', p->slot, &gen);
	if (fd < 0)
		return fd;
	p->ready_fd = fd;
	p->ready_gen = gen;
	rmpsc__fifo_remove(p->ch, 'p', p->slot, xchg_acq_rel(&p->ctrl->fifo_gen, gen));
	return fd;
}

int rmpsc_producer_ready_arm(rmpsc_producer *p, int64_t *wait_ns)
{
	int rc = check_producer(p, "producer_ready_arm");
	if (rc)
		return rc;
	if (!wait_ns)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_ready_arm: NULL wait_ns");
	if (p->ready_fd < 0)
		return rmpsc__set_error(RMPSC_EINVAL,
					"producer_ready_arm: no readiness fd (call rmpsc_producer_ready_fd first)");
	*wait_ns = 0;
	rmpsc__fifo_drain(p->ready_fd); /* before the check: a wake-up after it stays readable */
	struct space_wait w = { p };
	if (space_ready(&w) != WAIT_NOT_READY) { /* room already: no barrier to pay */
		rmpsc_producer_ready_disarm(p);
		return 1;
	}
	/* Announce, fence, look (the wait protocol, wait.h): space freed after the
	 * look finds our announcement and writes the FIFO. */
	store_relaxed(&p->ctrl->producer_waiting, WAIT_FD);
	p->ready_armed = 1;
	int fenced = cold_barrier(p->ch->asymmetric) == 0;
	/* Ready: space, closed, or an error the next send reports. */
	if (space_ready(&w) != WAIT_NOT_READY) {
		rmpsc_producer_ready_disarm(p);
		return 1;
	}
	/* Groups: a dead member may hold our space until someone recovers it, which
	 * this wait does now and then, as a blocking one does (space_ready). An
	 * unfenced announcement may be missed: poll. */
	*wait_ns = !fenced ? UNFENCED_POLL_NS : grouped(p->ch) ? SPACE_RECOVER_NS : READY_RECHECK_NS;
	return 0;
}

void rmpsc_producer_ready_disarm(rmpsc_producer *p)
{
	if (!p || p->fork_gen != fork_generation())
		return;
	p->ready_armed = 0;
	store_relaxed(&p->ctrl->producer_waiting, 0);
}
