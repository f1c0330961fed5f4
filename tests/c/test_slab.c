/*
 * Slab pool: alloc/free/ptr/len/set_len; exhaustion (EFULL, ETIMEDOUT, a blocked
 * alloc woken by a free or by close); double free; send_slab + recv + free with
 * the bytes intact; send_slab of a slab this process does not hold; 4 threads
 * allocating and freeing concurrently with a per-slab pattern check (two owners of
 * one slab would show); a producer process killed while holding slabs (held ones
 * return to the pool, sent ones are delivered, its open reservation never appears);
 * a consumer process killed while holding received slabs (taken over, returned).
 */
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "children.h"
#include "harness.h"

#define RS        16
#define SLAB_SIZE 1000
#define SLABS     8
#define MS        1000000ll
#define SEC_NS    1000000000ll

/* --- helpers ------------------------------------------------------------------ */

static rmpsc_channel *make(uint32_t cap, uint32_t maxp, uint32_t slabs)
{
	struct rmpsc_config c = {
		.record_size = RS, .capacity = cap, .max_producers = maxp, .slab_size = SLAB_SIZE, .slab_count = slabs
	};
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	return ch;
}

static void fill_slab(rmpsc_channel *ch, uint32_t h, uint32_t tag)
{
	unsigned char *p = rmpsc_slab_ptr(ch, h);
	CHECK(p, "slab_ptr(%u) NULL", h);
	for (uint32_t i = 0; i < SLAB_SIZE; i++)
		p[i] = (unsigned char)(tag * 131 + i * 7 + (i >> 8));
	CHECK_OK(rmpsc_slab_set_len(ch, h, 100 + tag % 800));
}

static void check_slab(rmpsc_channel *ch, uint32_t h, uint32_t tag)
{
	const unsigned char *p = rmpsc_slab_ptr(ch, h);
	CHECK(p, "slab_ptr(%u) NULL", h);
	for (uint32_t i = 0; i < SLAB_SIZE; i++)
		CHECK(p[i] == (unsigned char)(tag * 131 + i * 7 + (i >> 8)), "slab %u (tag %u) byte %u corrupted", h,
		      tag, i);
	CHECK(rmpsc_slab_len(ch, h) == 100 + tag % 800, "slab %u len %lld, want %u", h,
	      (long long)rmpsc_slab_len(ch, h), 100 + tag % 800);
}

/* Receive one slab record; check it is the slab `h` with tag, zero after the handle. */
static uint32_t recv_slab(rmpsc_channel *ch)
{
	unsigned char r[RS];
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), 1);
	for (int i = 4; i < RS; i++)
		CHECK(r[i] == 0, "slab record byte %d is %u, not zero", i, r[i]);
	return rmpsc_record_handle(r);
}

static void check_msg(const char *what)
{
	const char *m = rmpsc_last_error();
	CHECK(m && m[0] && strcmp(m, "no error"), "%s: rmpsc_last_error() is empty", what);
}

/* --- basics -------------------------------------------------------------------- */

static void test_alloc_free_basics(void)
{
	rmpsc_channel *ch = make(8, 2, SLABS);
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "fresh pool free count %u", rmpsc_slab_free_count(ch));
	uint32_t h[SLABS];
	unsigned char *ptrs[SLABS];
	int seen[SLABS] = { 0 };
	for (int i = 0; i < SLABS; i++) {
		h[i] = RMPSC_INVALID_HANDLE;
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
		CHECK(h[i] < SLABS && !seen[h[i]], "handle %u repeated or out of range", h[i]);
		seen[h[i]] = 1;
		CHECK(rmpsc_slab_len(ch, h[i]) == 0, "fresh slab len %lld", (long long)rmpsc_slab_len(ch, h[i]));
		ptrs[i] = rmpsc_slab_ptr(ch, h[i]);
		CHECK(ptrs[i] && (uintptr_t)ptrs[i] % 64 == 0, "slab %u pointer %p", h[i], (void *)ptrs[i]);
		CHECK(rmpsc_slab_free_count(ch) == (uint32_t)(SLABS - 1 - i), "free count %u after %d allocs",
		      rmpsc_slab_free_count(ch), i + 1);
	}
	/* Non-overlapping slabs of slab_size bytes. */
	for (int i = 0; i < SLABS; i++)
		for (int j = 0; j < SLABS; j++)
			if (i != j)
				CHECK(ptrs[i] + SLAB_SIZE <= ptrs[j] || ptrs[j] + SLAB_SIZE <= ptrs[i],
				      "slabs %u and %u overlap", h[i], h[j]);
	for (int i = 0; i < SLABS; i++)
		fill_slab(ch, h[i], (uint32_t)i);
	CHECK_OK(rmpsc_slab_set_len(ch, h[0], SLAB_SIZE));
	CHECK(rmpsc_slab_len(ch, h[0]) == SLAB_SIZE, "len %lld", (long long)rmpsc_slab_len(ch, h[0]));
	CHECK_RC(rmpsc_slab_set_len(ch, h[0], SLAB_SIZE + 1), RMPSC_EINVAL);
	CHECK(rmpsc_slab_len(ch, h[0]) == SLAB_SIZE, "a refused set_len changed the length");
	CHECK_OK(rmpsc_slab_set_len(ch, h[0], 100)); /* back to fill_slab's length for tag 0 */

	/* Exhausted. */
	uint32_t x = 12345;
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_slab_alloc(ch, 0, &x), RMPSC_EFULL);
	CHECK(now_ns() - t0 < 200 * MS, "EFULL took %lld ms", (long long)((now_ns() - t0) / MS));
	check_msg("EFULL");
	t0 = now_ns();
	CHECK_RC(rmpsc_slab_alloc(ch, 30 * MS, &x), RMPSC_ETIMEDOUT);
	int64_t el = now_ns() - t0;
	CHECK(el >= 30 * MS && el < 2000 * MS, "ETIMEDOUT after %lld ms for a 30 ms timeout", (long long)(el / MS));

	/* Free one, allocate it again: length reset, other slabs untouched. */
	CHECK_OK(rmpsc_slab_free(ch, h[3]));
	CHECK(rmpsc_slab_free_count(ch) == 1, "free count %u", rmpsc_slab_free_count(ch));
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &x));
	CHECK(x == h[3] && rmpsc_slab_len(ch, x) == 0, "realloc gave %u len %lld", x, (long long)rmpsc_slab_len(ch, x));
	fill_slab(ch, x, 3);
	for (int i = 0; i < SLABS; i++)
		check_slab(ch, h[i], (uint32_t)i);

	/* Double free. */
	CHECK_OK(rmpsc_slab_free(ch, h[5]));
	CHECK_RC(rmpsc_slab_free(ch, h[5]), RMPSC_EINVAL);
	check_msg("double free");
	CHECK(rmpsc_slab_free_count(ch) == 1, "double free changed the count: %u", rmpsc_slab_free_count(ch));
	for (int i = 0; i < SLABS; i++)
		if (i != 5)
			CHECK_OK(rmpsc_slab_free(ch, h[i]));
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));
	struct rmpsc_stats s;
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.slab_count == SLABS && s.slabs_free == SLABS, "stats slabs %u/%u", s.slabs_free, s.slab_count);
	rmpsc_channel_release(ch);
}

struct waiter {
	rmpsc_channel *ch;
	int64_t timeout;
	uint32_t handle;
	int rc;
	int done;
	int tid;
};

static void *alloc_waiter(void *arg)
{
	struct waiter *w = arg;
	publish_tid(&w->tid);
	w->rc = rmpsc_slab_alloc(w->ch, w->timeout, &w->handle);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_blocked_alloc(void)
{
	rmpsc_channel *ch = make(8, 1, 3);
	uint32_t h[3];
	for (int i = 0; i < 3; i++)
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
	/* A blocked alloc wakes when another thread frees. */
	struct waiter w = { .ch = ch, .timeout = 10000 * MS, .handle = RMPSC_INVALID_HANDLE };
	pthread_t t;
	pthread_create(&t, NULL, alloc_waiter, &w);
	wait_blocked(&w.tid);
	CHECK(!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "alloc did not block on an empty pool (rc %d)", w.rc);
	int64_t t0 = now_ns();
	CHECK_OK(rmpsc_slab_free(ch, h[1]));
	pthread_join(t, NULL);
	CHECK(now_ns() - t0 < 1000 * MS, "blocked alloc took %lld ms to wake", (long long)((now_ns() - t0) / MS));
	CHECK_OK(w.rc);
	CHECK(w.handle == h[1], "woken alloc got %u, want the freed %u", w.handle, h[1]);

	/* Forever-blocked alloc wakes on close with ECLOSED. */
	struct waiter w2 = { .ch = ch, .timeout = -1, .handle = RMPSC_INVALID_HANDLE };
	pthread_create(&t, NULL, alloc_waiter, &w2);
	wait_blocked(&w2.tid);
	CHECK(!__atomic_load_n(&w2.done, __ATOMIC_ACQUIRE), "alloc did not block");
	CHECK_OK(rmpsc_channel_close(ch));
	pthread_join(t, NULL);
	CHECK_RC(w2.rc, RMPSC_ECLOSED);
	/* After close, freed slabs can still be allocated (close only stops waiting). */
	for (int i = 0; i < 3; i++)
		CHECK_OK(rmpsc_slab_free(ch, i == 1 ? w.handle : h[i]));
	CHECK(rmpsc_slab_free_count(ch) == 3, "free count %u", rmpsc_slab_free_count(ch));
	rmpsc_channel_release(ch);
}

/* A blocked alloc recovers the slabs of a holder that dies while it waits (nobody
 * frees them and nobody else is around to reclaim them). */
static void test_blocked_alloc_dead_holder(void)
{
	rmpsc_channel *ch = make(8, 2, 2);
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(ch, &p));
		uint32_t h[2];
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[0]));
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[1]));
		link_put(l.wr, h, sizeof h);
		for (;;)
			pause();
	}
	uint32_t h[2];
	link_get(l.rd, h, sizeof h);
	struct waiter w = { .ch = ch, .timeout = 5000 * MS, .handle = RMPSC_INVALID_HANDLE };
	pthread_t t;
	pthread_create(&t, NULL, alloc_waiter, &w);
	wait_blocked(&w.tid);
	CHECK(!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "alloc did not block (rc %d)", w.rc);
	int64_t t0 = now_ns();
	kill(c, SIGKILL);
	CHECK_RC(reap(c), 128 + SIGKILL);
	pthread_join(t, NULL);
	int64_t el = now_ns() - t0;
	CHECK(w.rc == RMPSC_OK,
	      "alloc blocked while the holder died returned %d (%s) after %lld ms: the dead holder's "
	      "slabs were never reclaimed",
	      w.rc, rmpsc_strerror(w.rc), (long long)(el / MS));
	CHECK(el < 2000 * MS, "the dead holder's slab came back only after %lld ms", (long long)(el / MS));
	CHECK(w.handle == h[0] || w.handle == h[1], "got handle %u", w.handle);
	CHECK_OK(rmpsc_slab_free(ch, w.handle));
	link_close(&l);
	CHECK_RC(rmpsc_reclaim_dead(ch), 1); /* the slot; the other slab comes back with it */
	CHECK(rmpsc_slab_free_count(ch) == 2, "free count %u", rmpsc_slab_free_count(ch));
	rmpsc_channel_release(ch);
}

/* --- send_slab ---------------------------------------------------------------- */

static void test_send_slab(void)
{
	rmpsc_channel *ch = make(8, 2, SLABS);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));

	/* One slab, copied out by recv. */
	uint32_t h;
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h));
	fill_slab(ch, h, 77);
	CHECK_OK(rmpsc_producer_send_slab(p, h, 0));
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 1, "a slab in transit counts as free");
	CHECK_RC(rmpsc_producer_send_slab(p, h, 0), RMPSC_EINVAL); /* no longer held by us */
	check_msg("send_slab of a sent slab");
	CHECK(rmpsc_pending(ch) == 1, "the refused send_slab published a record");
	CHECK_RC(rmpsc_slab_free(ch, h), RMPSC_EINVAL); /* sent, not yet received */
	check_msg("free of a slab in flight");
	CHECK_RC(rmpsc_slab_accept(ch, h), RMPSC_EINVAL);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 1 && rmpsc_pending(ch) == 1,
	      "refused free/accept changed something");
	uint32_t got = recv_slab(ch);
	CHECK(got == h, "record handle %u, want %u", got, h);
	check_slab(ch, got, 77);
	CHECK_OK(rmpsc_slab_free(ch, got));
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));

	/* Several, FIFO, read zero-copy. */
	uint32_t hs[5];
	for (uint32_t i = 0; i < 5; i++) {
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &hs[i]));
		fill_slab(ch, hs[i], 100 + i);
		CHECK_OK(rmpsc_producer_send_slab(p, hs[i], 0));
	}
	for (uint32_t i = 0; i < 5;) {
		const void *ptr;
		int n = rmpsc_read(ch, 5, 0, &ptr, NULL);
		CHECK(n >= 1, "read %d", n);
		uint32_t got_h[5];
		for (int k = 0; k < n; k++) {
			got_h[k] = rmpsc_record_handle((const unsigned char *)ptr + k * RS);
			CHECK(got_h[k] == hs[i + (uint32_t)k], "slab record %u: handle %u, want %u", i + k, got_h[k],
			      hs[i + (uint32_t)k]);
			check_slab(ch, got_h[k], 100 + i + (uint32_t)k);
		}
		CHECK_OK(rmpsc_advance(ch, (size_t)n));
		for (int k = 0; k < n; k++, i++)
			CHECK_OK(rmpsc_slab_free(ch, got_h[k]));
	}
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));

	/* A full ring: send_slab fails and the slab stays ours. */
	unsigned char r[RS] = { 0 };
	for (int i = 0; i < 8; i++)
		CHECK_OK(rmpsc_producer_send(p, r, RS, 0));
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h));
	CHECK_RC(rmpsc_producer_send_slab(p, h, 0), RMPSC_EFULL);
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_producer_send_slab(p, h, 20 * MS), RMPSC_ETIMEDOUT);
	CHECK(now_ns() - t0 >= 20 * MS, "timed out early");
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 1, "free count %u", rmpsc_slab_free_count(ch));
	unsigned char buf[8 * RS];
	CHECK_RC(rmpsc_recv(ch, buf, 8, 0), 8);
	CHECK_OK(rmpsc_producer_send_slab(p, h, 0)); /* still ours: sendable */
	CHECK(recv_slab(ch) == h, "handle");
	CHECK_OK(rmpsc_slab_free(ch, h));

	/* After close: ECLOSED, the slab stays ours to free. */
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h));
	CHECK_OK(rmpsc_channel_close(ch));
	CHECK_RC(rmpsc_producer_send_slab(p, h, 0), RMPSC_ECLOSED);
	CHECK_OK(rmpsc_slab_free(ch, h));
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/*
 * A received slab belongs to the consumer role until freed or accepted: a new claim
 * of the role (here: release then claim again) returns unaccepted ones to the pool,
 * while an accepted one stays with its process until freed.
 */
static void test_accept(void)
{
	rmpsc_channel *ch = make(8, 1, SLABS);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint32_t h[2];
	for (uint32_t i = 0; i < 2; i++) {
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
		fill_slab(ch, h[i], 500 + i);
	}
	CHECK_RC(rmpsc_slab_accept(ch, h[0]), RMPSC_EINVAL); /* held, not received */
	uint32_t never = RMPSC_INVALID_HANDLE;
	for (uint32_t j = 0; j < SLABS; j++)
		if (j != h[0] && j != h[1])
			never = j;
	CHECK_RC(rmpsc_slab_accept(ch, never), RMPSC_EINVAL); /* free */
	CHECK_RC(rmpsc_slab_accept(ch, SLABS), RMPSC_EINVAL); /* out of range */
	check_msg("accept");
	for (uint32_t i = 0; i < 2; i++)
		CHECK_OK(rmpsc_producer_send_slab(p, h[i], 0));
	CHECK(recv_slab(ch) == h[0] && recv_slab(ch) == h[1], "handles");
	CHECK_OK(rmpsc_slab_accept(ch, h[0]));
	CHECK_RC(rmpsc_slab_accept(ch, h[0]), RMPSC_EINVAL); /* once */
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 2, "free count %u", rmpsc_slab_free_count(ch));
	rmpsc_consumer_release(ch);
	CHECK_OK(rmpsc_consumer_claim(ch));
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 1, "after a new claim: %u free, want %u (the unaccepted slab back)",
	      rmpsc_slab_free_count(ch), SLABS - 1);
	check_slab(ch, h[0], 500); /* the accepted one is untouched and still ours */
	CHECK_OK(rmpsc_slab_free(ch, h[0]));
	CHECK_RC(rmpsc_slab_free(ch, h[1]), RMPSC_EINVAL); /* already returned by the claim */
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));
	/* An accepted slab can be sent on again by the consumer process as a producer. */
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[0]));
	fill_slab(ch, h[0], 510);
	CHECK_OK(rmpsc_producer_send_slab(p, h[0], 0));
	CHECK(recv_slab(ch) == h[0], "handle");
	CHECK_OK(rmpsc_slab_accept(ch, h[0]));
	CHECK_OK(rmpsc_producer_send_slab(p, h[0], 0));
	CHECK(recv_slab(ch) == h[0], "re-sent handle");
	check_slab(ch, h[0], 510);
	CHECK_OK(rmpsc_slab_free(ch, h[0]));
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* Only a slab's holder frees it: another process's free (a stale second free after
 * the slab changed hands, say) is refused, naming the holder, and changes nothing;
 * a received slab is the consumer's. */
static void test_free_by_non_holder(void)
{
	rmpsc_channel *ch = make(8, 2, SLABS);
	uint32_t x;
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &x));
	CHECK_OK(rmpsc_slab_free(ch, x));
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		/* Take every slab (x among them), send one, then free the rest on request. */
		uint32_t h[SLABS];
		for (uint32_t i = 0; i < SLABS; i++)
			CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(ch, &p));
		fill_slab(ch, h[0], 7);
		CHECK_OK(rmpsc_producer_send_slab(p, h[0], 0));
		link_put(l.wr, &h[0], sizeof h[0]);
		char cmd;
		link_get(l.rd, &cmd, 1);
		/* The slab the parent received is the consumer's now, not ours. */
		CHECK_RC(rmpsc_slab_free(ch, h[0]), RMPSC_EINVAL);
		CHECK(strstr(rmpsc_last_error(), "consumer"), "message: %s", rmpsc_last_error());
		for (uint32_t i = 1; i < SLABS; i++)
			CHECK_OK(rmpsc_slab_free(ch, h[i]));
		rmpsc_producer_close(p);
		link_put(l.wr, "d", 1);
		_exit(0);
	}
	uint32_t sent;
	link_get(l.rd, &sent, sizeof sent);
	CHECK(rmpsc_slab_free_count(ch) == 0, "the child holds every slab: %u free", rmpsc_slab_free_count(ch));
	/* A stale second free of x, which the child holds now. */
	CHECK_RC(rmpsc_slab_free(ch, x == sent ? (x + 1) % SLABS : x), RMPSC_EINVAL);
	char want[64];
	snprintf(want, sizeof want, "held by another process (pid %d)", (int)c);
	CHECK(strstr(rmpsc_last_error(), want), "message names the holder: %s", rmpsc_last_error());
	CHECK(rmpsc_slab_free_count(ch) == 0, "a refused free changed the pool: %u free", rmpsc_slab_free_count(ch));
	CHECK_RC(rmpsc_slab_accept(ch, x == sent ? (x + 1) % SLABS : x), RMPSC_EINVAL);
	CHECK(recv_slab(ch) == sent, "received handle");
	check_slab(ch, sent, 7);
	link_put(l.wr, "f", 1);
	char done;
	link_get(l.rd, &done, 1);
	CHECK_RC(reap(c), 0);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 1, "after the child's frees: %u free", rmpsc_slab_free_count(ch));
	CHECK_OK(rmpsc_slab_free(ch, sent)); /* the consumer's to free */
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));
	link_close(&l);
	rmpsc_channel_release(ch);
}

/* --- variable-length messages: send_bytes / read_bytes / advance_bytes / recv_bytes --- */

static void fill_msg(unsigned char *m, size_t n, uint32_t tag)
{
	for (size_t i = 0; i < n; i++)
		m[i] = (unsigned char)(tag * 7 + i * 13 + (i >> 9));
}

static void check_msg_bytes(const unsigned char *m, size_t n, uint32_t tag)
{
	for (size_t i = 0; i < n; i++)
		CHECK(m[i] == (unsigned char)(tag * 7 + i * 13 + (i >> 9)), "message %u byte %zu", tag, i);
}

static void test_bytes(void)
{
	rmpsc_channel *ch = make(4, 1, 4);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	static unsigned char msg[SLAB_SIZE + 1], out[SLAB_SIZE];
	size_t sizes[] = { 0, 1, 100, SLAB_SIZE };
	for (uint32_t i = 0; i < 4; i++) {
		fill_msg(msg, sizes[i], i);
		CHECK_OK(rmpsc_producer_send_bytes(p, sizes[i] ? msg : NULL, sizes[i], 0));
	}
	/* zero-copy, then copying; every slab back in the pool afterwards */
	const void *b;
	CHECK_RC(rmpsc_read_bytes(ch, 0, &b), 0);
	CHECK_OK(rmpsc_advance_bytes(ch));
	int rc = rmpsc_advance_bytes(ch); /* refused: nothing open (or not the consumer) */
	CHECK(rc == RMPSC_EINVAL || rc == RMPSC_ECONSUMER, "advance_bytes without the role: %d", rc); /* nothing open */
	CHECK_RC(rmpsc_read_bytes(ch, 0, &b), 1);
	check_msg_bytes(b, 1, 1);
	CHECK_RC(rmpsc_read_bytes(ch, 0, &b), 1); /* not advanced: read again */
	CHECK_OK(rmpsc_advance_bytes(ch));
	CHECK_RC(rmpsc_recv_bytes(ch, out, 99, 0), RMPSC_EINVAL); /* too small: left unread */
	CHECK(strstr(rmpsc_last_error(), "100 bytes"), "message: %s", rmpsc_last_error());
	CHECK_RC(rmpsc_recv_bytes(ch, out, sizeof out, 0), 100);
	check_msg_bytes(out, 100, 2);
	CHECK_RC(rmpsc_recv_bytes(ch, out, sizeof out, 0), SLAB_SIZE);
	check_msg_bytes(out, SLAB_SIZE, 3);
	CHECK_RC(rmpsc_recv_bytes(ch, out, sizeof out, 0), RMPSC_EEMPTY);
	CHECK(rmpsc_slab_free_count(ch) == 4, "free count %u", rmpsc_slab_free_count(ch));

	/* bad input changes nothing */
	CHECK_RC(rmpsc_producer_send_bytes(p, msg, SLAB_SIZE + 1, 0), RMPSC_EINVAL);
	CHECK(strstr(rmpsc_last_error(), "too long"), "message: %s", rmpsc_last_error());
	CHECK_RC(rmpsc_producer_send_bytes(p, NULL, 5, 0), RMPSC_EINVAL);
	CHECK_RC(rmpsc_read_bytes(ch, 0, NULL), RMPSC_EINVAL);
	CHECK(rmpsc_pending(ch) == 0 && rmpsc_slab_free_count(ch) == 4, "bad calls changed something");

	/* A record that is not a message is reported (ECORRUPT) and consumed; the next goes on. */
	unsigned char raw[RS] = { 1, 0, 0, 0 }; /* names slab 1, which is free */
	CHECK_OK(rmpsc_producer_send(p, raw, RS, 0));
	fill_msg(msg, 10, 9);
	CHECK_OK(rmpsc_producer_send_bytes(p, msg, 10, 0));
	CHECK_RC(rmpsc_recv_bytes(ch, out, sizeof out, 0), RMPSC_ECORRUPT);
	CHECK(strstr(rmpsc_last_error(), "not a slab message"), "message: %s", rmpsc_last_error());
	CHECK_RC(rmpsc_recv_bytes(ch, out, sizeof out, 0), 10);
	check_msg_bytes(out, 10, 9);

	/* One deadline for both waits; what could not be sent goes back to the pool. */
	for (int i = 0; i < 4; i++)
		CHECK_OK(rmpsc_producer_send_bytes(p, msg, 10, 0));
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_producer_send_bytes(p, msg, 10, 50 * MS), RMPSC_ETIMEDOUT); /* pool empty */
	CHECK(now_ns() - t0 >= 50 * MS && now_ns() - t0 < 2000 * MS, "waited %lld ms", (long long)((now_ns() - t0) / MS));
	CHECK_RC(rmpsc_recv_bytes(ch, out, sizeof out, 0), 10); /* one slab free, 3 records left */
	unsigned char fill[RS] = { 0 };
	CHECK_OK(rmpsc_producer_send(p, fill, RS, 0)); /* the ring (capacity 4) is full */
	CHECK(rmpsc_slab_free_count(ch) == 1, "free count %u", rmpsc_slab_free_count(ch));
	CHECK_RC(rmpsc_producer_send_bytes(p, msg, 10, 30 * MS), RMPSC_ETIMEDOUT); /* ring full */
	CHECK(rmpsc_slab_free_count(ch) == 1, "a slab that was never sent stayed out: %u free",
	      rmpsc_slab_free_count(ch));
	CHECK_OK(rmpsc_channel_close(ch));
	CHECK_RC(rmpsc_producer_send_bytes(p, msg, 10, 0), RMPSC_ECLOSED);
	CHECK(rmpsc_slab_free_count(ch) == 1, "free count after ECLOSED %u", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);

	rmpsc_channel *nopool;
	struct rmpsc_config c = { .record_size = RS, .capacity = 4, .max_producers = 1 };
	CHECK_OK(rmpsc_channel_create(&nopool, NULL, &c, 0));
	CHECK_OK(rmpsc_producer_register(nopool, &p));
	CHECK_RC(rmpsc_producer_send_bytes(p, msg, 1, 0), RMPSC_EINVAL);
	CHECK(strstr(rmpsc_last_error(), "no slab pool"), "message: %s", rmpsc_last_error());
	rmpsc_producer_close(p);
	rmpsc_channel_release(nopool);
}

/* A deferred free belongs to the record it was made for, and to the claim it was
 * made under: after the role was given up (advance_bytes then finds nothing
 * open), nothing of it may later free the same slab riding on another record
 * (a pool of one makes the reuse certain). */
static void test_deferred_free_stays_with_its_record(void)
{
	rmpsc_channel *ch = make(8, 1, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	const void *b, *ptr;
	unsigned char rec[RS];
	CHECK_OK(rmpsc_producer_send_bytes(p, "m1", 3, 0));
	CHECK_RC(rmpsc_read_bytes(ch, 0, &b), 3);
	rmpsc_consumer_release(ch);       /* gives the role up: the open read is forgotten */
	int rc = rmpsc_advance_bytes(ch); /* refused: nothing open (or not the consumer) */
	CHECK(rc == RMPSC_EINVAL || rc == RMPSC_ECONSUMER, "advance_bytes without the role: %d", rc);
	CHECK(rmpsc_slab_free_count(ch) == 0, "advance_bytes without the role freed the slab");
	CHECK_RC(rmpsc_recv(ch, rec, 1, 0), 1); /* claims again; m1 is delivered again, as a raw record */
	uint32_t h = rmpsc_record_handle(rec);
	CHECK_OK(rmpsc_slab_free(ch, h));
	CHECK_OK(rmpsc_producer_send_bytes(p, "m2", 3, 0)); /* the same slab, on a new record */
	CHECK_RC(rmpsc_read(ch, 1, 0, &ptr, NULL), 1);
	uint32_t h2 = rmpsc_record_handle(ptr);
	CHECK_OK(rmpsc_advance(ch, 1)); /* received: the consumer's until freed or accepted */
	CHECK(rmpsc_slab_free_count(ch) == 0, "a stale deferred free released the slab the consumer holds");
	CHECK_RC(rmpsc_producer_send_bytes(p, "XX", 3, 0), RMPSC_EFULL);
	CHECK(!strcmp(rmpsc_slab_ptr(ch, h2), "m2"), "the consumer's slab was overwritten");
	CHECK_OK(rmpsc_slab_free(ch, h2));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* A consumer killed between read_bytes and advance_bytes: the message is delivered
 * again, intact, to the next consumer, and its slab returns once consumed. */
static void test_bytes_consumer_killed(void)
{
	rmpsc_channel *ch = make(8, 1, 2);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	static unsigned char msg[SLAB_SIZE], out[SLAB_SIZE];
	fill_msg(msg, 500, 4);
	CHECK_OK(rmpsc_producer_send_bytes(p, msg, 500, 0));
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		const void *b;
		CHECK_RC(rmpsc_read_bytes(ch, 0, &b), 500);
		link_put(l.wr, "r", 1);
		for (;;)
			pause();
	}
	char r;
	link_get(l.rd, &r, 1);
	kill(c, SIGKILL);
	CHECK_RC(reap(c), 128 + SIGKILL);
	CHECK_RC(rmpsc_recv_bytes(ch, out, sizeof out, SEC_NS), 500);
	check_msg_bytes(out, 500, 4);
	CHECK(rmpsc_slab_free_count(ch) == 2, "free count %u", rmpsc_slab_free_count(ch));
	link_close(&l);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* The natural pattern: free each slab inside the consume callback that received it. */
static int free_in_callback(void *ctx, const void *records, size_t count, uint32_t slot)
{
	rmpsc_channel *ch = ctx;
	(void)slot;
	for (size_t i = 0; i < count; i++) {
		uint32_t h = rmpsc_record_handle((const unsigned char *)records + i * RS);
		int rc = rmpsc_slab_free(ch, h);
		CHECK(rc == RMPSC_OK, "slab_free(%u) inside the rmpsc_consume callback that received it: %d (%s)", h,
		      rc, rmpsc_last_error());
	}
	return 0;
}

static void test_free_in_consume_callback(void)
{
	rmpsc_channel *ch = make(8, 1, SLABS);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (int i = 0; i < 3; i++) {
		uint32_t h;
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h));
		CHECK_OK(rmpsc_producer_send_slab(p, h, 0));
	}
	CHECK_RC(rmpsc_consume(ch, 8, 0, free_in_callback, ch), 3);
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* send_slab of slabs not held by this process; the inherited producer in a child. */
static void test_send_slab_not_held(void)
{
	rmpsc_channel *ch = make(8, 2, SLABS);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_RC(rmpsc_producer_send_slab(p, 2, 0), RMPSC_EINVAL); /* free, never allocated */
	check_msg("send_slab of a free slab");

	uint32_t mine;
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &mine));
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		uint32_t hc;
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &hc));
		/* The parent's producer, inherited through fork: EFORKED, whatever the slab. */
		CHECK_RC(rmpsc_producer_send_slab(p, mine, 0), RMPSC_EFORKED);
		CHECK_RC(rmpsc_producer_send_slab(p, hc, 0), RMPSC_EFORKED);
		link_put(l.wr, &hc, sizeof hc);
		char go;
		link_get(l.rd, &go, 1);
		_exit(0); /* dies holding hc */
	}
	uint32_t hc;
	link_get(l.rd, &hc, sizeof hc);
	CHECK(hc < SLABS && hc != mine, "child's handle %u", hc);
	CHECK_RC(rmpsc_producer_send_slab(p, hc, 0), RMPSC_EINVAL); /* held by the child */
	check_msg("send_slab of another process's slab");
	CHECK(rmpsc_pending(ch) == 0, "a refused send_slab published a record");
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 2, "free count %u", rmpsc_slab_free_count(ch));
	char go = 'x';
	link_put(l.wr, &go, 1);
	CHECK_RC(reap(c), 0);

	/* The dead child's slab is not leaked: an allocation that finds the pool empty
	 * takes back slabs of dead holders. */
	uint32_t extra[SLABS];
	int n = 0;
	while (n < SLABS && rmpsc_slab_alloc(ch, 0, &extra[n]) == RMPSC_OK)
		n++;
	CHECK(n == SLABS - 1, "after the holder died, %d slabs could be allocated, want %d", n, SLABS - 1);
	for (int i = 0; i < n; i++)
		CHECK_OK(rmpsc_slab_free(ch, extra[i]));
	CHECK_OK(rmpsc_slab_free(ch, mine));
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "free count %u", rmpsc_slab_free_count(ch));
	link_close(&l);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* --- concurrency ----------------------------------------------------------------- */

#define THREADS    4
#define CONC_SLABS 6

struct worker {
	rmpsc_channel *ch;
	uint32_t id;
	int iters;
	uint64_t allocs;
};

static void *conc_worker(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = 0x9E3779B97F4A7C15ull * (w->id + 1);
	uint32_t held[2];
	uint32_t tags[2];
	int nheld = 0;
	for (int it = 0; it < w->iters; it++) {
		int want = nheld < 2 && (nheld == 0 || rng_next(&rng) % 2);
		if (want) {
			uint32_t h;
			int rc = rmpsc_slab_alloc(w->ch, 5000 * MS, &h);
			CHECK(rc == RMPSC_OK, "thread %u: alloc %d (%s)", w->id, rc, rmpsc_last_error());
			CHECK(h < CONC_SLABS, "handle %u", h);
			for (int k = 0; k < nheld; k++)
				CHECK(held[k] != h, "thread %u got slab %u twice", w->id, h);
			uint32_t tag = w->id << 24 | (uint32_t)it;
			uint32_t *p = rmpsc_slab_ptr(w->ch, h);
			for (uint32_t i = 0; i < SLAB_SIZE / 4; i++)
				p[i] = tag ^ i;
			held[nheld] = h;
			tags[nheld++] = tag;
			w->allocs++;
		} else {
			int k = (int)(rng_next(&rng) % (uint64_t)nheld);
			uint32_t h = held[k];
			const uint32_t *p = rmpsc_slab_ptr(w->ch, h);
			for (uint32_t i = 0; i < SLAB_SIZE / 4; i++)
				CHECK(p[i] == (tags[k] ^ i),
				      "thread %u: slab %u word %u overwritten (0x%x, want 0x%x): two owners", w->id, h,
				      i, p[i], tags[k] ^ i);
			CHECK_OK(rmpsc_slab_free(w->ch, h));
			held[k] = held[nheld - 1];
			tags[k] = tags[nheld - 1];
			nheld--;
		}
		if (rng_next(&rng) % 64 == 0)
			sched_yield();
	}
	for (int k = 0; k < nheld; k++)
		CHECK_OK(rmpsc_slab_free(w->ch, held[k]));
	return NULL;
}

static void test_concurrent(int iters)
{
	rmpsc_channel *ch = make(8, 1, CONC_SLABS);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	for (uint32_t i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ ch, i, iters, 0 };
		pthread_create(&t[i], NULL, conc_worker, &w[i]);
	}
	uint64_t total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		total += w[i].allocs;
	}
	CHECK(total >= (uint64_t)THREADS * (uint64_t)iters / 3, "only %llu allocations", (unsigned long long)total);
	CHECK(rmpsc_slab_free_count(ch) == CONC_SLABS, "free count %u after the threads", rmpsc_slab_free_count(ch));
	printf("concurrent: %d threads, %llu allocations over %d slabs\n", THREADS, (unsigned long long)total,
	       CONC_SLABS);
	rmpsc_channel_release(ch);
}

/* --- crash recovery -------------------------------------------------------------- */

/*
 * A producer process allocates 4 slabs, sends 2, holds 2, opens a reservation and
 * is SIGKILLed. Its held slabs return to the pool on reclaim, the sent ones are
 * delivered (then freed by the consumer), its reservation never appears, and the
 * slot is reused.
 */
static void test_dead_producer(void)
{
	rmpsc_channel *ch = make(8, 1, SLABS);
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(ch, &p));
		uint32_t h[4];
		for (int i = 0; i < 4; i++) {
			CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
			fill_slab(ch, h[i], 200 + (uint32_t)i);
		}
		CHECK_OK(rmpsc_producer_send_slab(p, h[0], 0));
		CHECK_OK(rmpsc_producer_send_slab(p, h[1], 0));
		void *w;
		CHECK_RC(rmpsc_producer_reserve(p, 2, 0, &w), 2);
		memset(w, 0xEE, 2 * RS); /* a half-written record that must never appear */
		memcpy(w, &h[2], 4);     /* (would even name a held slab) */
		link_put(l.wr, h, sizeof h);
		for (;;)
			pause();
	}
	uint32_t h[4];
	link_get(l.rd, h, sizeof h);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 4, "free count %u with the child alive", rmpsc_slab_free_count(ch));
	CHECK_RC(rmpsc_reclaim_dead(ch), 0); /* alive: nothing to reclaim */
	kill(c, SIGKILL);
	CHECK_RC(reap(c), 128 + SIGKILL);
	link_close(&l);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 4, "slabs returned before reclaim? %u", rmpsc_slab_free_count(ch));

	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 2,
	      "after reclaim: %u free, want %u (held ones back, sent ones in transit)", rmpsc_slab_free_count(ch),
	      SLABS - 2);
	CHECK_RC(rmpsc_reclaim_dead(ch), 0); /* once */
	struct rmpsc_stats s;
	struct rmpsc_ring_stats rs[1];
	CHECK_RC(rmpsc_stats(ch, &s, rs, 1), 1);
	CHECK(s.reclaimed_slots == 1 && rs[0].state == RMPSC_SLOT_DETACHED && rs[0].pending == 2,
	      "stats after reclaim: reclaimed %u state %u pending %llu", s.reclaimed_slots, rs[0].state,
	      (unsigned long long)rs[0].pending);
	/* Not drained yet: the slot is not free. */
	rmpsc_producer *np = (rmpsc_producer *)&np;
	CHECK_RC(rmpsc_producer_register(ch, &np), RMPSC_ENOSLOT);

	for (int i = 0; i < 2; i++) {
		uint32_t got = recv_slab(ch);
		CHECK(got == h[i], "sent slab %d: handle %u, want %u", i, got, h[i]);
		check_slab(ch, got, 200 + (uint32_t)i);
		CHECK_OK(rmpsc_slab_free(ch, got));
	}
	unsigned char r[RS];
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_EEMPTY); /* the reservation never appears */
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "final free count %u", rmpsc_slab_free_count(ch));

	/* The slot is reused; the reused ring works from where the dead one stopped. */
	CHECK_OK(rmpsc_producer_register(ch, &np));
	uint32_t hh;
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &hh));
	fill_slab(ch, hh, 300);
	CHECK_OK(rmpsc_producer_send_slab(np, hh, 0));
	CHECK(recv_slab(ch) == hh, "slab after slot reuse");
	check_slab(ch, hh, 300);
	CHECK_OK(rmpsc_slab_free(ch, hh));
	rmpsc_producer_close(np);

	/* Again, with the reclaim left to register, and the dead child still a zombie. */
	c = fork_linked(&l);
	if (c == 0) {
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(ch, &p));
		uint32_t hx[3];
		for (int i = 0; i < 3; i++)
			CHECK_OK(rmpsc_slab_alloc(ch, 0, &hx[i]));
		link_put(l.wr, hx, sizeof hx);
		_exit(0); /* exits without freeing or deregistering */
	}
	uint32_t hx[3];
	link_get(l.rd, hx, sizeof hx);
	wait_zombie(c);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 3, "free count %u", rmpsc_slab_free_count(ch));
	CHECK_OK(rmpsc_producer_register(ch, &np)); /* the only slot: register must reclaim it */
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "after register's reclaim: %u free", rmpsc_slab_free_count(ch));
	CHECK_RC(reap(c), 0);
	rmpsc_producer_close(np);
	link_close(&l);
	rmpsc_channel_release(ch);
}

/*
 * A consumer process receives slab records, frees none (and leaves one read but not
 * advanced), and is SIGKILLed. The parent's claim takes over: slabs the dead consumer
 * had taken go back to the pool, the unadvanced record is delivered again.
 */
static void test_consumer_takeover(void)
{
	rmpsc_channel *ch = make(8, 1, SLABS);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint32_t h[4];
	for (uint32_t i = 0; i < 4; i++) {
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
		fill_slab(ch, h[i], 400 + i);
		CHECK_OK(rmpsc_producer_send_slab(p, h[i], 0));
	}
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		CHECK_OK(rmpsc_consumer_claim(ch));
		for (int i = 0; i < 3; i++) {
			uint32_t got = recv_slab(ch);
			CHECK(got == h[i], "child: slab record %d handle %u, want %u", i, got, h[i]);
			check_slab(ch, got, 400 + (uint32_t)i);
		}
		const void *ptr;
		CHECK_RC(rmpsc_read(ch, 1, 0, &ptr, NULL), 1);
		CHECK(rmpsc_record_handle(ptr) == h[3], "child: 4th handle");
		char k = 'k';
		link_put(l.wr, &k, 1);
		for (;;)
			pause();
	}
	char k;
	link_get(l.rd, &k, 1);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 4, "free count %u", rmpsc_slab_free_count(ch));
	CHECK_RC(rmpsc_consumer_claim(ch), RMPSC_ECONSUMER);
	kill(c, SIGKILL);
	CHECK_RC(reap(c), 128 + SIGKILL);
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 4, "free count %u before takeover", rmpsc_slab_free_count(ch));
	CHECK_OK(rmpsc_consumer_claim(ch));
	CHECK(rmpsc_slab_free_count(ch) == SLABS - 1,
	      "after takeover: %u free, want %u (3 taken by the dead consumer back, 1 unadvanced still in transit)",
	      rmpsc_slab_free_count(ch), SLABS - 1);
	uint32_t got = recv_slab(ch);
	CHECK(got == h[3], "redelivered handle %u, want %u", got, h[3]);
	check_slab(ch, got, 403);
	CHECK_OK(rmpsc_slab_free(ch, got));
	unsigned char r[RS];
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_EEMPTY);
	CHECK(rmpsc_slab_free_count(ch) == SLABS, "final free count %u", rmpsc_slab_free_count(ch));
	/* And the whole pool is usable. */
	uint32_t all[SLABS];
	for (int i = 0; i < SLABS; i++)
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &all[i]));
	for (int i = 0; i < SLABS; i++)
		CHECK_OK(rmpsc_slab_free(ch, all[i]));
	link_close(&l);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

int main(void)
{
	harness_start("test_slab", 60);
	atexit(children_cleanup_at_exit);
	test_alloc_free_basics();
	test_blocked_alloc();
	test_blocked_alloc_dead_holder();
	test_send_slab();
	test_accept();
	test_free_by_non_holder();
	test_bytes();
	test_bytes_consumer_killed();
	test_deferred_free_stays_with_its_record();
	test_free_in_consume_callback();
	test_dead_producer();
	test_consumer_takeover();
	test_send_slab_not_held();
	test_concurrent(100000);
	printf("test_slab: all passed\n");
	return 0;
}
