/*
 * rmpsc_wait_pending_below: a sender's wait for fewer than `limit` records in
 * flight (a queue's maxsize). Releases of records wake it, so it sleeps rather
 * than polls; close wakes it too.
 *   errors          EINVAL, EFULL at once, ETIMEDOUT, ECLOSED
 *   release_wakes   asleep in the kernel, a consumer's release bumps the progress
 *                   word and the waiter returns: classic consumer, a group of two
 *                   sharing the work, and messages riding on slabs
 *   wakes_with_room while only pending waiters wait, a release that leaves them no
 *                   room wakes nobody (the progress word stays); the one that makes
 *                   room wakes them; with a slab waiter on the same words, every
 *                   release wakes
 *   close_wakes     asleep, the channel closes: ECLOSED
 *   other_process   the waiter in another process (shared futex word)
 *   bound           4 producer threads wait then send, a consumer checks that no
 *                   more than limit + producers - 1 are ever pending and that every
 *                   record arrives once, in each producer's order
 */
#include <pthread.h>

#include "children.h"
#include "handle.h"
#include "harness.h"
#include "messages.h"
#include "pending.h"

static void test_errors(void)
{
	rmpsc_channel *ch = make(RS, 16, 2, 0, 0, 1);
	CHECK_RC(rmpsc_wait_pending_below(NULL, 1, 0), RMPSC_EINVAL);
	CHECK_RC(rmpsc_wait_pending_below(ch, 0, 0), RMPSC_EINVAL);
	CHECK(strstr(rmpsc_last_error(), "limit 0"), "message names the limit: %s", rmpsc_last_error());
	CHECK_OK(rmpsc_wait_pending_below(ch, 1, 0)); /* nothing pending */
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (uint64_t i = 0; i < 3; i++)
		send_seq(p, 0, i);
	CHECK_RC(rmpsc_wait_pending_below(ch, 3, 0), RMPSC_EFULL);
	CHECK(strstr(rmpsc_last_error(), "3 records pending"), "message counts them: %s", rmpsc_last_error());
	CHECK_OK(rmpsc_wait_pending_below(ch, 4, 0));
	CHECK_RC(rmpsc_wait_pending_below(ch, 2, 20 * 1000000ll), RMPSC_ETIMEDOUT);
	CHECK_RC(rmpsc_pending(ch), 3); /* nothing lost by asking */
	CHECK_OK(rmpsc_channel_close(ch));
	CHECK_RC(rmpsc_wait_pending_below(ch, 100, 0), RMPSC_ECLOSED);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* An allocator waiting for the pool's one slab (rc: rmpsc_slab_alloc's; the slab freed at once). */
static void *slab_waiter(void *arg)
{
	struct waiter_arg *w = arg;
	publish_tid(&w->tid);
	uint32_t h;
	w->rc = rmpsc_slab_alloc(w->ch, 10 * SEC_NS, &h);
	if (w->rc == RMPSC_OK)
		rmpsc_slab_free(w->ch, h);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Two records pending, a waiter for fewer than 2 asleep; consumer c releases one. */
static void release_wakes(rmpsc_channel *ch, rmpsc_channel *c, int messages, const char *what)
{
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (uint32_t i = 0; i < 2; i++) {
		if (messages)
			CHECK_OK(send_tagged(p, 300, i, SEC_NS)); /* 2 slabs of 256 each */
		else
			send_seq(p, 0, i);
	}
	struct waiter_arg w = { ch, 2, 0, 1, 0 };
	pthread_t t;
	pthread_create(&t, NULL, waiter, &w);
	wait_blocked(&w.tid); /* past its spin, asleep on the progress word */
	CHECK(!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "%s: returned with 2 pending (rc %d)", what, w.rc);
	uint32_t seq = progress_seq(ch);
	release_one(c, messages);
	/* The release itself woke it: the word moved (a slice's poll would not move it). */
	CHECK(progress_seq(ch) != seq, "%s: the release did not wake the waiter", what);
	pthread_join(t, NULL);
	CHECK_RC(w.rc, RMPSC_OK);
	release_one(c, messages);
	rmpsc_producer_close(p);
}

static void test_release_wakes(void)
{
	rmpsc_channel *ch = make(RS, 16, 2, 0, 0, 1);
	release_wakes(ch, ch, 0, "classic consumer");
	rmpsc_channel_release(ch);

	ch = make(RS, 16, 2, 0, 0, 2);
	rmpsc_channel *m1, *m2;
	CHECK_OK(rmpsc_channel_attach_fd(&m1, rmpsc_channel_fd(ch), 0));
	CHECK_OK(rmpsc_channel_attach_fd(&m2, rmpsc_channel_fd(ch), 0));
	CHECK_OK(rmpsc_consumer_join(m1, NULL, 0));
	CHECK_OK(rmpsc_consumer_join(m2, NULL, 0));
	release_wakes(ch, m2, 0, "a member of a shared group");
	rmpsc_channel_release(m1);
	rmpsc_channel_release(m2);
	rmpsc_channel_release(ch);

	ch = make(RS, 16, 2, 256, 8, 1);
	release_wakes(ch, ch, 1, "messages on slabs");
	CHECK_RC(rmpsc_slab_free_count(ch), 8);
	rmpsc_channel_release(ch);
}

/* Four records pending; a waiter for fewer than `limit` asleep; releases one by one. */
static void wakes_with_room(uint64_t limit, int with_slab_waiter)
{
	rmpsc_channel *ch = make(RS, 16, 2, 256, 1, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (uint64_t i = 0; i < 4; i++)
		send_seq(p, 0, i);
	uint32_t held;
	struct waiter_arg slab = { ch, 0, 0, 1, 0 };
	pthread_t st;
	if (with_slab_waiter) { /* the pool's one slab held: an allocator waits on the same words */
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &held));
		pthread_create(&st, NULL, slab_waiter, &slab);
		wait_blocked(&slab.tid);
	}
	struct waiter_arg w = { ch, limit, 0, 1, 0 };
	pthread_t t;
	pthread_create(&t, NULL, waiter, &w);
	wait_blocked(&w.tid);
	for (uint64_t pending = 4; pending > 0; pending--) {
		/* Asleep again, announced: after a wake-up a thread runs until it sleeps. */
		wait_blocked(&w.tid);
		if (with_slab_waiter)
			wait_blocked(&slab.tid);
		uint32_t seq = progress_seq(ch);
		release_one(ch, 0);
		int room = pending - 1 < limit;
		if (room || with_slab_waiter) {
			CHECK(progress_seq(ch) != seq, "limit %llu, %llu pending: the release did not wake",
			      (unsigned long long)limit, (unsigned long long)pending - 1);
		} else {
			CHECK(progress_seq(ch) == seq,
			      "limit %llu, %llu pending: a release with no room woke the waiters",
			      (unsigned long long)limit, (unsigned long long)pending - 1);
			CHECK(!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "returned with %llu pending",
			      (unsigned long long)pending - 1);
		}
		if (room)
			break;
	}
	pthread_join(t, NULL);
	CHECK_RC(w.rc, RMPSC_OK);
	if (with_slab_waiter) {
		CHECK_OK(rmpsc_slab_free(ch, held));
		pthread_join(st, NULL);
		CHECK_RC(slab.rc, RMPSC_OK);
	}
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void test_wakes_with_room(void)
{
	wakes_with_room(2, 0);
	wakes_with_room(1, 0);
	wakes_with_room(2, 1);
}

static void test_close_wakes(void)
{
	rmpsc_channel *ch = make(RS, 16, 2, 0, 0, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_seq(p, 0, 0);
	struct waiter_arg w = { ch, 1, 0, 1, 0 };
	pthread_t t;
	pthread_create(&t, NULL, waiter, &w);
	wait_blocked(&w.tid);
	CHECK_OK(rmpsc_channel_close(ch));
	pthread_join(t, NULL);
	CHECK_RC(w.rc, RMPSC_ECLOSED);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void test_other_process(void)
{
	rmpsc_channel *ch = make(RS, 16, 2, 0, 0, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (uint64_t i = 0; i < 4; i++)
		send_seq(p, 0, i);
	pid_t pid = fork_child();
	if (pid == 0) {
		rmpsc_channel *c;
		if (rmpsc_channel_attach_fd(&c, rmpsc_channel_fd(ch), 0))
			_exit(2);
		int rc = rmpsc_wait_pending_below(c, 4, 10 * SEC_NS);
		_exit(rc == RMPSC_OK && rmpsc_pending(c) < 4 ? 0 : 1);
	}
	/* Announced on the progress word and asleep: in the wait's futex, past its spin. */
	int64_t dl = now_ns() + 10 * SEC_NS;
	while (!__atomic_load_n(&ch->hdr->progress_waiting, __ATOMIC_ACQUIRE) || proc_state(pid) != 'S') {
		CHECK(now_ns() < dl, "the waiting child never slept (state %c)", proc_state(pid));
		usleep(200);
	}
	uint32_t seq = progress_seq(ch);
	release_one(ch, 0);
	CHECK(progress_seq(ch) != seq, "the release did not wake the other process");
	CHECK_RC(reap(pid), 0);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

#define BOUND_PRODUCERS 4
#define BOUND_LIMIT     8

struct bound_producer {
	rmpsc_channel *ch;
	uint32_t id;
	uint64_t n;
};

static void *bound_producer(void *arg)
{
	struct bound_producer *b = arg;
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(b->ch, &p));
	for (uint64_t i = 0; i < b->n; i++) {
		CHECK_OK(rmpsc_wait_pending_below(b->ch, BOUND_LIMIT, 10 * SEC_NS));
		send_seq(p, b->id, i);
	}
	rmpsc_producer_close(p);
	return NULL;
}

static void test_bound(void)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	const uint64_t n = 3000;
#else
	const uint64_t n = 50000;
#endif
	/* Rings much larger than the bound: only the wait holds the producers back. */
	rmpsc_channel *ch = make(RS, 1024, BOUND_PRODUCERS, 0, 0, 1);
	struct bound_producer b[BOUND_PRODUCERS];
	pthread_t t[BOUND_PRODUCERS];
	for (uint32_t i = 0; i < BOUND_PRODUCERS; i++) {
		b[i] = (struct bound_producer){ ch, i, n };
		pthread_create(&t[i], NULL, bound_producer, &b[i]);
	}
	uint64_t next[BOUND_PRODUCERS] = { 0 }, got = 0, most = 0;
	while (got < n * BOUND_PRODUCERS) {
		uint64_t pending = rmpsc_pending(ch);
		if (pending > most)
			most = pending;
		const void *recs;
		int k = rmpsc_read(ch, 1 + (uint32_t)(got % 5), 10 * SEC_NS, &recs, NULL);
		CHECK(k > 0, "read returned %d after %llu records: %s", k, (unsigned long long)got, rmpsc_last_error());
		for (int i = 0; i < k; i++) {
			uint32_t id;
			uint64_t seq;
			CHECK(rec_check((const unsigned char *)recs + (size_t)i * RS, RS, &id, &seq) == 0,
			      "a corrupt record");
			CHECK(id < BOUND_PRODUCERS && seq == next[id], "producer %u: record %llu, expected %llu", id,
			      (unsigned long long)seq, (unsigned long long)next[id]);
			next[id]++;
		}
		CHECK_OK(rmpsc_advance(ch, (size_t)k));
		got += (uint64_t)k;
	}
	for (uint32_t i = 0; i < BOUND_PRODUCERS; i++)
		pthread_join(t[i], NULL);
	CHECK(most <= BOUND_LIMIT + BOUND_PRODUCERS - 1, "%llu records pending at once, limit %u with %u producers",
	      (unsigned long long)most, BOUND_LIMIT, BOUND_PRODUCERS);
	CHECK_RC(rmpsc_pending(ch), 0);
	printf("bound: %llu records, at most %llu pending (limit %u, %u producers)\n", (unsigned long long)got,
	       (unsigned long long)most, BOUND_LIMIT, BOUND_PRODUCERS);
	rmpsc_channel_release(ch);
}

int main(void)
{
	harness_start("test_pending_wait", 120);
	atexit(children_cleanup_at_exit);
	test_errors();
	test_release_wakes();
	test_wakes_with_room();
	test_close_wakes();
	test_other_process();
	test_bound();
	printf("test_pending_wait: all passed\n");
	return 0;
}
