/*
 * The consumer: the role (one process at a time, taken over from one that is
 * gone), the sweep over every ring, waiting for data, the consumer half of the
 * close protocol (slot.c), and messages over slabs (slab.h).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "handle.h"
#include "ring.h"
#include "slab.h"
#include "slot.h"
#include "wait.h"

#define LIVENESS_PERIOD_NS 250000000 /* consumer checks producer liveness at most 4x/s */
#define DRAIN_POLL_NS      10000000  /* closed with a reservation open: re-check owners */
#define WAIT_POLL          (INT32_MIN + 1)
#define CLOSE_FENCE_TRIES  100 /* failed close barriers (DRAIN_POLL_NS apart) before ESYS */

/* Close the span of rmpsc_read / rmpsc_read_bytes without advancing: whatever was
 * not advanced past is read again by the next call. */
static inline void forget_read(rmpsc_channel *ch)
{
	ch->read_count = 0;
	ch->read_handle = RMPSC_INVALID_HANDLE;
	ch->in_span = 0;
}

/* The role changed hands (claimed afresh, given up, or found lost): the open read
 * and the frees deferred under the earlier claim are not ours any more. */
static inline void forget_claim(rmpsc_channel *ch)
{
	forget_read(ch);
	rmpsc__slab_forget_deferred(ch);
}

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
	if (ch->consumer_claimed && ch->consumer_gen == fork_generation() &&
	    load_acquire(&ch->hdr->consumer_owner) == ch->self)
		return RMPSC_OK;
	uint64_t me;
	int rc = rmpsc__attach(&ch->file, &me);
	if (rc)
		return rc;
	if (ch->consumer_claimed && ch->consumer_gen == fork_generation())
		rmpsc__consumer_holders(&ch->file, -1); /* our claim was lost; count it again below */
	ch->consumer_claimed = 0;
	/* Count ourselves first, so a concurrent claim by another handle of this
	 * process sees a holder and shares the role instead of taking it over. */
	int holders = rmpsc__consumer_holders(&ch->file, +1);
	uint64_t cur = load_acquire(&ch->hdr->consumer_owner);
	int fresh = 0;
	for (;;) {
		if (cur == me && holders > 1)
			break; /* another handle of this process holds it: share */
		if (cur != 0 && cur != me && rmpsc__owner_alive(&ch->file, cur)) {
			rmpsc__consumer_holders(&ch->file, -1);
			return rmpsc__set_error(RMPSC_ECONSUMER, "the consumer role is held by live process %u",
						load_relaxed(&ch->hdr->consumer_pid));
		}
		/* cur == me with no other holder here: a word our last releaser has not
		 * cleared yet cannot be seen, since it clears it under the lock our count
		 * was taken under (rmpsc__consumer_let_go); so the word is ours to keep. */
		if (cur == me || cas_acq_rel(&ch->hdr->consumer_owner, &cur, me)) {
			fresh = 1;
			break;
		}
	}
	ch->consumer_claimed = 1;
	ch->consumer_gen = fork_generation();
	ch->self = me;
	forget_claim(ch);
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
	if (!ch || !ch->consumer_claimed || ch->consumer_gen != fork_generation())
		return;
	ch->consumer_claimed = 0;
	if (ch->n_deferred) /* what the head has passed; the rest go back on the next claim */
		rmpsc__slab_flush_deferred(ch);
	forget_claim(ch);
	rmpsc__consumer_let_go(&ch->file, &ch->hdr->consumer_owner, ch->self);
}

/* Is the consumer role still this handle's? If not, forget what it was reading:
 * the records are the new owner's now (they are read again, nothing is lost). */
static int still_consumer(rmpsc_channel *ch)
{
	if (likely(ch->consumer_claimed && load_relaxed(&ch->hdr->consumer_owner) == ch->self))
		return 1;
	forget_claim(ch);
	return 0;
}

static inline int consumer_enter(rmpsc_channel *ch, const char *fn)
{
	if (unlikely(!ch))
		return rmpsc__set_error(RMPSC_EINVAL, "%s: NULL channel", fn);
	/* One load of a line that is rarely written: is the role still ours? */
	if (unlikely(!ch->consumer_claimed || ch->consumer_gen != fork_generation() ||
		     load_relaxed(&ch->hdr->consumer_owner) != ch->self)) {
		int rc = rmpsc_consumer_claim(ch);
		if (rc)
			return rc;
	}
	if (unlikely(ch->pending_error)) {
		int rc = ch->pending_error;
		ch->pending_error = 0;
		return rmpsc__set_error(rc,
					"%s: a ring was fenced off during the previous call "
					"(impossible positions; see rmpsc_stats)",
					fn);
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
		rmpsc__slot_free_if_drained(ch, s); /* empty: a deregistered slot is freed once drained */
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
		if ((st == RMPSC_SLOT_ACTIVE || st == RMPSC_SLOT_REGISTERING) && rmpsc__owner_alive(&ch->file, w))
			return 1;
	}
	return 0;
}

struct data_wait {
	rmpsc_channel *ch;
	size_t max;
	const void *ptr;
	uint32_t slot;
	int polling; /* sleeping in slices because a reservation is open after close */
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
		struct waiter wt = { .flag = &h->consumer_waiting,
				     .seq = &h->data_seq,
				     .ready = data_ready,
				     .arg = w,
				     .would_block = RMPSC_EEMPTY,
				     .spin_ns = rmpsc__spin_ns,
				     .slice_ns = w->polling ? DRAIN_POLL_NS : 0,
				     .sole = 1,
				     .interruptible = interruptible(ch),
				     .asymmetric = ch->asymmetric };
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
	forget_read(ch);
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
	if (ch->consumer_gen != fork_generation())
		return rmpsc__set_error(RMPSC_EFORKED, "advance: the read was made in another process");
	if (unlikely(!still_consumer(ch))) /* given up or taken over since the read */
		return n ? rmpsc__set_error(RMPSC_ECONSUMER, "advance: the consumer role is no longer this process's")
			 : RMPSC_OK;
	uint32_t slot = ch->read_slot;
	forget_read(ch);
	if (n)
		consumer_release(ch, slot, n);
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

/* ------------------------------------------------------------------------- */
/* Messages over slabs. */

int64_t rmpsc_read_bytes(rmpsc_channel *ch, int64_t timeout_ns, const void **bytes)
{
	if (!ch || !bytes)
		return rmpsc__set_error(RMPSC_EINVAL, "read_bytes: NULL channel or bytes");
	const void *rec;
	uint32_t slot;
	int n = rmpsc_read(ch, 1, timeout_ns, &rec, &slot);
	if (n < 0)
		return n;
	uint64_t pos = load_relaxed(&slot_ctrl(ch, slot)->head); /* only the consumer writes it */
	size_t len;
	int rc = rmpsc__slab_of_record(ch, rec, slot, pos, &ch->read_handle, bytes, &len);
	if (rc) {
		/* Not a message: consumed and reported, so the next call goes on. */
		forget_read(ch);
		consumer_release(ch, slot, 1);
		return rc;
	}
	return (int64_t)len;
}

int rmpsc_advance_bytes(rmpsc_channel *ch)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "advance_bytes: NULL channel");
	if (ch->read_count != 1 || ch->read_handle == RMPSC_INVALID_HANDLE)
		return rmpsc__set_error(RMPSC_EINVAL, "advance_bytes: no message from rmpsc_read_bytes is open");
	if (ch->consumer_gen != fork_generation())
		return rmpsc__set_error(RMPSC_EFORKED, "advance_bytes: the read was made in another process");
	if (!still_consumer(ch)) /* before the free: the slab is the new owner's */
		return rmpsc__set_error(RMPSC_ECONSUMER,
					"advance_bytes: the consumer role is no longer this process's");
	/* Deferred while its record is being read: freed once the head has passed it. */
	int rc = rmpsc_slab_free(ch, ch->read_handle);
	ch->read_handle = RMPSC_INVALID_HANDLE;
	if (rc)
		return rc;
	return rmpsc_advance(ch, 1);
}

int64_t rmpsc_recv_bytes(rmpsc_channel *ch, void *buf, size_t cap, int64_t timeout_ns)
{
	if (!ch || (!buf && cap))
		return rmpsc__set_error(RMPSC_EINVAL, "recv_bytes: NULL channel or buf");
	const void *bytes;
	int64_t len = rmpsc_read_bytes(ch, timeout_ns, &bytes);
	if (len < 0)
		return len;
	if ((uint64_t)len > cap) { /* left unread: the next call reads it again */
		forget_read(ch);
		return rmpsc__set_error(RMPSC_EINVAL, "recv_bytes: the message is %lld bytes, more than cap %zu",
					(long long)len, cap);
	}
	if (len)
		memcpy(buf, bytes, (size_t)len);
	int rc = rmpsc_advance_bytes(ch);
	return rc < 0 ? rc : len;
}
