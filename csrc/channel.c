/*
 * The MPSC channel: one SPSC ring per producer slot in the shared region.
 *
 * Slot life cycle (ring_ctrl.owner: state + owner identity, changed by CAS only):
 *   FREE -> REGISTERING(me) -> ACTIVE(me) -> DETACHED -> FREE
 *                                  `-(owner dead)-> RECLAIMING(x) -> DETACHED
 * Positions are never reset: a slot is reused only once drained (head == tail), and
 * the next producer continues from there, so a consumer racing a re-registration
 * can never see a position go backwards. Each step is one CAS or store; if the
 * process doing it dies right there, the word names a dead owner and the next
 * reclaim (on register or in the consumer's sweep) takes over.
 *
 * Close vs. in-flight reservations: a producer announces an open reservation
 * (ring_ctrl.reserving = 1), passes a hot barrier and checks `closed`; the
 * consumer, once it sees `closed`, passes a cold barrier and checks every
 * `reserving` (fence.h). So either the producer sees closed and gives up, or the
 * consumer sees the reservation and waits for its commit. "Closed and drained" is
 * therefore final: nothing committed after it can exist.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "channel.h"
#include "error.h"
#include "fence.h"
#include "attach.h"
#include "ring.h"
#include "wait.h"

#define LIVENESS_PERIOD_NS   250000000  /* consumer checks producer liveness at most 4x/s */
#define DRAIN_POLL_NS         10000000  /* closed with a reservation open: re-check owners */
#define WAIT_POLL            (INT32_MIN + 1)
#define CLOSE_FENCE_TRIES    100        /* failed close barriers (DRAIN_POLL_NS apart) before ESYS */

/* Poll this long before sleeping: a running peer publishes sooner than a futex
 * round trip. A variable only so tests can set 0 and make every wait sleep. */
int64_t rmpsc__spin_ns = 20000;

static inline int interruptible(const rmpsc_channel *ch)
{
	return (ch->flags & RMPSC_OPEN_INTERRUPTIBLE) != 0;
}

/* Slots the consumer must look at: those ever registered. */
static inline uint32_t slot_limit(const rmpsc_channel *ch)
{
	uint32_t hw = load_acquire(&ch->hdr->slot_hw);
	return hw < ch->L.max_producers ? hw : ch->L.max_producers;
}

static inline int is_closed(const rmpsc_channel *ch)
{
	return load_acquire(&ch->hdr->closed) != 0;
}

int rmpsc_channel_is_closed(const rmpsc_channel *ch)
{
	return ch ? is_closed(ch) : 0;
}

static void wake_all_producers(rmpsc_channel *ch)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		wake_waiters(&c->producer_waiting, &c->space_seq, 0); /* after a seq_cst store: no barrier to save */
	}
}

int rmpsc_channel_close(rmpsc_channel *ch)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_close: NULL channel");
	struct region_header *h = ch->hdr;
	/* seq_cst: the consumer that sees it then orders its `reserving` loads (see top). */
	store_seq_cst(&h->closed, 1);
	/* Bump every futex word unconditionally: a waiter that loaded its seq before
	 * this point returns from FUTEX_WAIT at once and re-checks `closed`. */
	fetch_add_acq_rel(&h->data_seq, 1);
	rmpsc__futex_wake_all(&h->data_seq);
	fetch_add_acq_rel(&h->slab_seq, 1);
	rmpsc__futex_wake_all(&h->slab_seq);
	wake_all_producers(ch);
	return RMPSC_OK;
}

/* ------------------------------------------------------------------------- */
/* Liveness and reclaim. */

static int slot_drained(const rmpsc_channel *ch, uint32_t s)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	return load_acquire(&c->tail) == load_acquire(&c->head);
}

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
		if (!slot_claimed(owner_state(w)) || rmpsc__owner_alive_cached(ch, &cache, w))
			continue;
		if (!me) {
			int rc = rmpsc__attach(ch, &me);
			if (rc)
				return rc;
		}
		reclaimed += reclaim_slot(ch, s, w, me);
	}
	return reclaimed;
}

/* Is a slot being reclaimed by a live process right now? */
static int reclaim_in_progress(const rmpsc_channel *ch)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		uint64_t w = load_acquire(&slot_ctrl(ch, s)->owner);
		if (owner_state(w) == RMPSC_SLOT_RECLAIMING && rmpsc__owner_alive(ch, w))
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------- */
/* Producers. */

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
		store_relaxed(&c->producer_waiting, 0); /* a dead waiter's flag */
		store_relaxed(&c->owner_pid, (uint32_t)getpid());
		uint32_t hw = load_relaxed(&ch->hdr->slot_hw);
		while (hw < s + 1 && !cas_acq_rel(&ch->hdr->slot_hw, &hw, s + 1))
			; /* the consumer sweeps slots below slot_hw */
		/* Release: the slot's reset fields are visible before it is ACTIVE. */
		store_release(&c->owner, owner_word(RMPSC_SLOT_ACTIVE, me));
		return (int)s;
	}
	return -1;
}

int rmpsc_producer_register(rmpsc_channel *ch, rmpsc_producer **out)
{
	if (!ch || !out)
		return rmpsc__set_error(RMPSC_EINVAL, "producer_register: NULL channel or out");
	*out = NULL;
	if (is_closed(ch))
		return rmpsc__set_error(RMPSC_ECLOSED, "producer_register: channel is closed");
	uint64_t me;
	int rc = rmpsc__attach(ch, &me);
	if (rc)
		return rc;
	rmpsc_producer *p = calloc(1, sizeof *p);
	if (!p) {
		errno = ENOMEM;
		return rmpsc__sys_error("allocating a producer");
	}
	/* Free slots first; then take back dead owners' slots; while another live
	 * process is returning one, wait for it (bounded). */
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
	if (s < 0) {
		free(p);
		return rmpsc__set_error(RMPSC_ENOSLOT, "all %u producer slots are in use by live producers",
					ch->L.max_producers);
	}
	struct ring_ctrl *c = slot_ctrl(ch, (uint32_t)s);
	ring_view_init(&p->ring, c, slot_data(ch, (uint32_t)s), ch->L.record_size, ch->L.ring_bits);
	p->owner = owner_word(RMPSC_SLOT_ACTIVE, me);
	p->ch = ch;
	p->ctrl = c;
	p->slot = (uint32_t)s;
	p->fork_gen = load_relaxed(&rmpsc__fork_generation);
	p->light = hot_light(ch->asymmetric);
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
	if (unlikely(p->fork_gen != rmpsc__fork_generation))
		return rmpsc__set_error(RMPSC_EFORKED, "%s: producer was created in another process (inherited by fork)",
				 fn);
	return RMPSC_OK;
}

/* End a reservation window: clear the announcement and wake a consumer that may be
 * waiting for the channel to drain. */
static inline void end_reservation(rmpsc_producer *p)
{
	struct region_header *h = p->ch->hdr;
	/* Release: after the tail, so a consumer that sees 0 also sees the new tail. */
	store_release(&p->ctrl->reserving, 0);
	wake_waiters(&h->consumer_waiting, &h->data_seq, p->light);
}

struct space_wait {
	rmpsc_producer *p;
};

static int space_ready(void *arg)
{
	rmpsc_producer *p = ((struct space_wait *)arg)->p;
	if (is_closed(p->ch))
		return rmpsc__set_error_static(RMPSC_ECLOSED, "closed: the channel was closed");
	struct ring_ctrl *c = p->ctrl;
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
		if (likely(n > 0)) {
			p->ring.reserved_ = (uint32_t)n;
			return n;
		}
		end_reservation(p);
		if (n < 0)
			return rmpsc__set_error(n, "ring %u: head is impossible (corrupt region)", p->slot);
		struct space_wait w = { p };
		struct waiter wt = { .flag = &c->producer_waiting, .seq = &c->space_seq, .ready = space_ready,
				     .arg = &w, .would_block = RMPSC_EFULL, .spin_ns = rmpsc__spin_ns, .sole = 1,
				     .interruptible = interruptible(p->ch), .asymmetric = p->ch->asymmetric };
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
	if (likely(p && p->fork_gen == rmpsc__fork_generation && len <= p->ring.record_size_ && data &&
		   !p->ring.reserved_ && send_now(p, data, len)))
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
	if (p->fork_gen == rmpsc__fork_generation) {
		if (p->ring.reserved_)
			producer_commit(p, 0); /* abort: nothing of it was published */
		uint64_t w = p->owner;
		/* Fails only if the slot was fenced or (wrongly) reclaimed: leave it then. */
		cas_acq_rel(&p->ctrl->owner, &w, owner_word(RMPSC_SLOT_DETACHED, owner_id(p->owner)));
		struct region_header *h = p->ch->hdr;
		wake_waiters(&h->consumer_waiting, &h->data_seq, hot_light(p->ch->asymmetric));
	}
	free(p);
}

/* ------------------------------------------------------------------------- */
/* Consumer. */

/*
 * The consumer role belongs to a process: an owner word in the header naming its
 * attachment, claimed by CAS. Handles of one process share it (a count in the
 * attachment); the word is cleared when the last of them lets go. A word naming
 * an attachment that is gone (the process died or exec'd) is taken over.
 */
int rmpsc_consumer_claim(rmpsc_channel *ch)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_claim: NULL channel");
	if (ch->consumer_claimed && ch->consumer_gen == rmpsc__fork_generation &&
	    load_acquire(&ch->hdr->consumer_owner) == ch->self)
		return RMPSC_OK;
	uint64_t me;
	int rc = rmpsc__attach(ch, &me);
	if (rc)
		return rc;
	if (ch->consumer_claimed && ch->consumer_gen == rmpsc__fork_generation)
		rmpsc__consumer_holders(ch, -1); /* our claim was lost; count it again below */
	ch->consumer_claimed = 0;
	/* Count ourselves first, so a concurrent claim by another handle of this
	 * process sees a holder and shares the role instead of taking it over. */
	int holders = rmpsc__consumer_holders(ch, +1);
	uint64_t cur = load_acquire(&ch->hdr->consumer_owner);
	int fresh = 0;
	for (;;) {
		if (cur == me && holders > 1)
			break; /* another handle of this process holds it: share */
		if (cur != 0 && cur != me && rmpsc__owner_alive(ch, cur)) {
			rmpsc__consumer_holders(ch, -1);
			return rmpsc__set_error(RMPSC_ECONSUMER, "the consumer role is held by live process %u",
						load_relaxed(&ch->hdr->consumer_pid));
		}
		if (cur == me || cas_acq_rel(&ch->hdr->consumer_owner, &cur, me)) {
			fresh = 1;
			break;
		}
	}
	ch->consumer_claimed = 1;
	ch->consumer_gen = rmpsc__fork_generation;
	ch->self = me;
	ch->read_count = 0;
	if (fresh) {
		store_relaxed(&ch->hdr->consumer_pid, (uint32_t)getpid());
		/* A consumer killed in FUTEX_WAIT left its flag behind. */
		store_relaxed(&ch->hdr->consumer_waiting, 0);
		/* Slabs an earlier consumer received and neither freed nor accepted. */
		rmpsc__slab_reclaim_consumed(ch);
	}
	return RMPSC_OK;
}

void rmpsc_consumer_release(rmpsc_channel *ch)
{
	if (!ch || !ch->consumer_claimed || ch->consumer_gen != rmpsc__fork_generation)
		return;
	ch->consumer_claimed = 0;
	if (rmpsc__consumer_holders(ch, -1) == 0) {
		uint64_t me = ch->self;
		cas_acq_rel(&ch->hdr->consumer_owner, &me, 0);
	}
}

static inline int consumer_enter(rmpsc_channel *ch, const char *fn)
{
	if (unlikely(!ch))
		return rmpsc__set_error(RMPSC_EINVAL, "%s: NULL channel", fn);
	/* One load of a line that is rarely written: is the role still ours? */
	if (unlikely(!ch->consumer_claimed || ch->consumer_gen != rmpsc__fork_generation ||
		     load_relaxed(&ch->hdr->consumer_owner) != ch->self)) {
		int rc = rmpsc_consumer_claim(ch);
		if (rc)
			return rc;
	}
	if (unlikely(ch->pending_error)) {
		int rc = ch->pending_error;
		ch->pending_error = 0;
		return rmpsc__set_error(rc, "%s: a ring was fenced off during the previous call "
					   "(impossible positions; see rmpsc_stats)", fn);
	}
	return RMPSC_OK;
}

/* Free n records of slot s and wake its producer if it sleeps for space. */
static inline void consumer_release(rmpsc_channel *ch, uint32_t s, uint64_t n)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	ring_release(&ch->rings[s], n);
	wake_waiters(&c->producer_waiting, &c->space_seq, hot_light(ch->asymmetric));
}

static int fence_ring(rmpsc_channel *ch, uint32_t s)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	uint64_t w = load_acquire(&c->owner);
	while (owner_state(w) != RMPSC_SLOT_FENCED &&
	       !cas_acq_rel(&c->owner, &w, owner_word(RMPSC_SLOT_FENCED, owner_id(w))))
		;
	fetch_add_relaxed(&ch->hdr->fenced_rings, 1);
	return rmpsc__set_error(RMPSC_ECORRUPT, "ring %u fenced off: tail %llu - head %llu exceeds capacity %u", s,
			 (unsigned long long)load_relaxed(&c->tail), (unsigned long long)load_relaxed(&c->head),
			 ch->L.capacity);
}

/*
 * Find readable records, starting after the ring served last (fairness). Every ring
 * is looked at, so "empty" means empty: an idle ring costs one load of a tail line
 * nobody writes, which stays shared in this core's cache.
 * Returns a count with *ptr and *slot set, 0 if every ring is empty, or ECORRUPT
 * after fencing a ring whose positions are impossible.
 */
static int sweep(rmpsc_channel *ch, size_t max, const void **ptr, uint32_t *slot)
{
	uint32_t n_slots = slot_limit(ch);
	uint32_t s = ch->sweep_cursor < n_slots ? ch->sweep_cursor : 0;
	for (uint32_t i = 0; i < n_slots; i++, s = s + 1 < n_slots ? s + 1 : 0) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		int n = ring_readable(&ch->rings[s], max, ptr);
		if (n > 0) {
			if (unlikely(owner_state(load_relaxed(&c->owner)) == RMPSC_SLOT_FENCED))
				continue;
			ch->sweep_cursor = s + 1;
			*slot = s;
			return n;
		}
		if (unlikely(n < 0)) {
			if (owner_state(load_relaxed(&c->owner)) == RMPSC_SLOT_FENCED)
				continue;
			ch->sweep_cursor = s + 1;
			return fence_ring(ch, s);
		}
		/* Empty. A deregistered (or reclaimed) slot is freed once drained. */
		uint64_t w = load_acquire(&c->owner);
		if (owner_state(w) == RMPSC_SLOT_DETACHED && slot_drained(ch, s))
			cas_acq_rel(&c->owner, &w, (uint64_t)RMPSC_SLOT_FREE);
	}
	return 0;
}

/* Is a reservation open on a slot whose owner is alive? (closed-channel drain) */
static int open_reservations(rmpsc_channel *ch)
{
	/* Every slot, not slot_limit(): slot_hw is not part of the seq_cst protocol. */
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		/* After the cold barrier in data_ready: the consumer half of the close protocol. */
		if (!load_seq_cst(&c->reserving))
			continue;
		uint64_t w = load_acquire(&c->owner);
		uint32_t st = owner_state(w);
		if ((st == RMPSC_SLOT_ACTIVE || st == RMPSC_SLOT_REGISTERING) && rmpsc__owner_alive(ch, w))
			return 1;
	}
	return 0;
}

struct data_wait {
	rmpsc_channel *ch;
	size_t max;
	const void *ptr;
	uint32_t slot;
	int polling;   /* sleeping in slices because a reservation is open after close */
};

static int data_ready(void *arg)
{
	struct data_wait *w = arg;
	int n = sweep(w->ch, w->max, &w->ptr, &w->slot);
	if (n != 0)
		return n;
	rmpsc_channel *ch = w->ch;
	if (!load_seq_cst(&ch->hdr->closed))
		return WAIT_NOT_READY;
	/* Seen closed: one cold barrier before trusting `reserving` (see top). If it
	 * failed, nothing can be trusted yet: poll and try again, and say so when it
	 * keeps failing rather than poll for ever. */
	if (!ch->close_fenced) {
		if (cold_barrier(ch->asymmetric) != 0) {
			if (++ch->close_fence_failures >= CLOSE_FENCE_TRIES)
				return rmpsc__sys_error("membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) keeps failing: "
							"cannot tell whether the closed channel is drained");
			return w->polling ? WAIT_NOT_READY : WAIT_POLL;
		}
		ch->close_fenced = 1;
	}
	if (open_reservations(ch))
		return w->polling ? WAIT_NOT_READY : WAIT_POLL;
	/* Every reservation ended before we looked: one more sweep sees all commits. */
	n = sweep(w->ch, w->max, &w->ptr, &w->slot);
	if (n != 0)
		return n;
	return rmpsc__set_error_static(RMPSC_ECLOSED, "closed: the channel is closed and drained");
}

/* The periodic part of the consumer's sweep: reclaim dead producers' slots. */
static void maybe_check_liveness(rmpsc_channel *ch)
{
	if ((++ch->sweeps & 255) != 0)
		return;
	int64_t now = rmpsc__monotonic_ns();
	if (now < ch->next_liveness_ns)
		return;
	ch->next_liveness_ns = now + LIVENESS_PERIOD_NS;
	rmpsc_reclaim_dead(ch);
}

static int wait_for_data_slow(rmpsc_channel *ch, struct data_wait *w, int64_t timeout_ns);

/* Wait for the first readable span. Returns its count (ptr/slot in *w) or an error. */
static inline int wait_for_data(rmpsc_channel *ch, struct data_wait *w, int64_t timeout_ns)
{
	maybe_check_liveness(ch);
	int n = sweep(ch, w->max, &w->ptr, &w->slot);
	if (likely(n != 0))
		return n;
	return wait_for_data_slow(ch, w, timeout_ns);
}

/* Nothing was readable at the first sweep: poll or wait. */
static int wait_for_data_slow(rmpsc_channel *ch, struct data_wait *w, int64_t timeout_ns)
{
	int n;
	if (timeout_ns == 0 && !load_seq_cst(&ch->hdr->closed)) /* the common poll: one sweep, no waiter */
		return rmpsc__set_error_static(RMPSC_EEMPTY, "empty: nothing to read without waiting");
	struct deadline dl = deadline_from_timeout(timeout_ns);
	struct region_header *h = ch->hdr;
	for (;;) {
		struct waiter wt = { .flag = &h->consumer_waiting, .seq = &h->data_seq, .ready = data_ready,
				     .arg = w, .would_block = RMPSC_EEMPTY, .spin_ns = rmpsc__spin_ns,
				     .slice_ns = w->polling ? DRAIN_POLL_NS : 0, .sole = 1,
				     .interruptible = interruptible(ch), .asymmetric = ch->asymmetric };
		n = rmpsc__wait(&wt, &dl);
		if (n != WAIT_POLL)
			return n;
		if (dl.try_once)
			return rmpsc__set_error_static(RMPSC_EEMPTY, "empty: nothing to read without waiting");
		w->polling = 1;
	}
}

/* Start a consuming call: forget an unadvanced rmpsc_read span (it is simply read
 * again) and wait for the first readable span. */
static inline int take_first(rmpsc_channel *ch, struct data_wait *w, size_t max, int64_t timeout_ns)
{
	ch->read_count = 0;
	ch->in_span = 0;
	*w = (struct data_wait){ .ch = ch, .max = clamp_count(max) };
	return wait_for_data(ch, w, timeout_ns);
}

/* The next readable span, up to `left` records, without waiting; 0 when there is
 * none. A ring found fenced now is reported by the next call. */
static inline int take_next(rmpsc_channel *ch, struct data_wait *w, size_t left)
{
	int n = sweep(ch, left, &w->ptr, &w->slot);
	if (unlikely(n < 0)) {
		ch->pending_error = n;
		return 0;
	}
	return n;
}

int rmpsc_consume(rmpsc_channel *ch, size_t max, int64_t timeout_ns, rmpsc_consume_fn fn, void *ctx)
{
	int rc = consumer_enter(ch, "consume");
	if (rc)
		return rc;
	if (!fn || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "consume: max must be >= 1 and fn non-NULL");
	struct data_wait w;
	int n = take_first(ch, &w, max, timeout_ns);
	if (n <= 0)
		return n;
	size_t done = 0;
	do {
		span_begin(ch, w.slot, (uint64_t)n);
		int stop = fn(ctx, w.ptr, (size_t)n, w.slot);
		ch->in_span = 0;
		consumer_release(ch, w.slot, (uint64_t)n);
		if (ch->n_deferred)
			rmpsc__slab_flush_deferred(ch);
		done += (size_t)n;
		if (stop)
			break;
	} while (done < w.max && (n = take_next(ch, &w, w.max - done)) > 0); /* all available, up to max */
	return (int)done;
}

/* consume with a copy for the callback, without the span bookkeeping: a copy
 * frees no slabs, and nothing runs between taking records and releasing them. */
int rmpsc_recv(rmpsc_channel *ch, void *buf, size_t max, int64_t timeout_ns)
{
	int rc = consumer_enter(ch, "recv");
	if (rc)
		return rc;
	if (!buf || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "recv: max must be >= 1 and buf non-NULL");
	struct data_wait w;
	int n = take_first(ch, &w, max, timeout_ns);
	if (n <= 0)
		return n;
	unsigned char *dst = buf;
	size_t done = 0, rs = ch->L.record_size;
	do {
		memcpy(dst, w.ptr, (size_t)n * rs);
		dst += (size_t)n * rs;
		consumer_release(ch, w.slot, (uint64_t)n);
		done += (size_t)n;
	} while (done < w.max && (n = take_next(ch, &w, w.max - done)) > 0);
	return (int)done;
}

int rmpsc_read(rmpsc_channel *ch, size_t max, int64_t timeout_ns, const void **ptr, uint32_t *slot)
{
	int rc = consumer_enter(ch, "read");
	if (rc)
		return rc;
	if (!ptr || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "read: max must be >= 1 and ptr non-NULL");
	struct data_wait w;
	int n = take_first(ch, &w, max, timeout_ns);
	if (n <= 0)
		return n;
	ch->read_slot = w.slot;
	ch->read_count = (uint32_t)n;
	span_begin(ch, w.slot, (uint64_t)n);
	*ptr = w.ptr;
	if (slot)
		*slot = w.slot;
	return n;
}

int rmpsc_advance(rmpsc_channel *ch, size_t n)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "advance: NULL channel");
	if (n > ch->read_count)
		return rmpsc__set_error(RMPSC_EINVAL, "advance: n %zu exceeds the %u records of the last read", n,
				 ch->read_count);
	if (ch->consumer_gen != rmpsc__fork_generation)
		return rmpsc__set_error(RMPSC_EFORKED, "advance: the read was made in another process");
	ch->in_span = 0;
	if (n)
		consumer_release(ch, ch->read_slot, n);
	ch->read_count = 0;
	if (ch->n_deferred)
		rmpsc__slab_flush_deferred(ch);
	return RMPSC_OK;
}

int rmpsc_wait_readable(rmpsc_channel *ch, int64_t timeout_ns)
{
	int rc = consumer_enter(ch, "wait_readable");
	if (rc)
		return rc;
	struct data_wait w = { .ch = ch, .max = 1 };
	int n = wait_for_data(ch, &w, timeout_ns);
	return n > 0 ? RMPSC_OK : n;
}

uint64_t rmpsc_pending(const rmpsc_channel *ch)
{
	if (!ch)
		return 0;
	uint64_t total = 0;
	uint32_t n_slots = slot_limit(ch);
	for (uint32_t s = 0; s < n_slots; s++)
		if (owner_state(load_relaxed(&slot_ctrl(ch, s)->owner)) != RMPSC_SLOT_FENCED)
			total += ring_pending(&ch->rings[s]);
	return total;
}

int rmpsc_stats(const rmpsc_channel *ch, struct rmpsc_stats *out, struct rmpsc_ring_stats *rings,
		uint32_t max_rings)
{
	if (!ch || !out)
		return rmpsc__set_error(RMPSC_EINVAL, "stats: NULL channel or out");
	const struct region_header *h = ch->hdr;
	memset(out, 0, sizeof *out);
	out->max_producers = ch->L.max_producers;
	out->consumer_pid = load_acquire(&h->consumer_owner) ? load_relaxed(&h->consumer_pid) : 0;
	out->closed = load_acquire(&h->closed) != 0;
	out->slab_count = ch->L.slab_count;
	out->slabs_free = rmpsc_slab_free_count(ch);
	out->fenced_rings = load_relaxed(&h->fenced_rings);
	out->reclaimed_slots = load_relaxed(&h->reclaimed_slots);
	uint32_t written = 0;
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		uint64_t w = load_acquire(&c->owner);
		uint64_t head = load_acquire(&c->head), tail = load_acquire(&c->tail);
		uint64_t base = load_relaxed(&c->base);
		uint32_t st = owner_state(w);
		uint64_t pending = tail - head <= ch->L.capacity ? tail - head : 0;
		if (st != RMPSC_SLOT_FENCED) {
			out->pending += pending;
			out->committed += tail - ch->L.start_position;
			out->consumed += head - ch->L.start_position;
		}
		out->active_producers += st == RMPSC_SLOT_ACTIVE;
		if (st == RMPSC_SLOT_FREE || !rings || written >= max_rings)
			continue;
		struct rmpsc_ring_stats *r = &rings[written++];
		r->slot = s;
		r->state = st;
		r->owner_pid = load_relaxed(&c->owner_pid);
		r->owner_alive = (uint32_t)rmpsc__owner_alive(ch, w);
		r->pending = pending;
		r->committed = tail - base;
		r->consumed = head - base;
	}
	return (int)written;
}
