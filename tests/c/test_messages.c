/*
 * Messages (rmpsc_producer_send_message, rmpsc_message_at/copy, rmpsc_advance_messages):
 * inline, one-slab and many-slab messages gathered from parts, byte for byte; the
 * longest message and one byte more; a forged slab list refused; the pool whole again
 * after consumption, with one consumer and with groups; senders that each need most
 * of the pool (the assembler's turn: no deadlock); a sender killed while gathering;
 * producer processes sending random sizes to a grouped consumer with every message
 * checked; rmpsc_producer_register_wait waiting for a slot; runs of consecutive
 * slabs read in place, and scattered ones when the pool has no run; a sender
 * waiting for slabs waking a lingering member, which then stops lingering.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "children.h"
#include "handle.h"
#include "harness.h"
#include "messages.h"

static void test_round_trip(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, 2, 256, 64, max_consumers);
	uint64_t max = rmpsc_message_max(ch);
	/* 65 slabs: a list of 4 * 64 bytes fills the first one; the pool has 64. */
	CHECK(max == 64ull * (256 - 4) + 4, "message_max %llu", (unsigned long long)max);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint64_t sizes[] = { 0, 1, 56, 57, 256, 257, 700, 4000, max };
	for (uint32_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		CHECK_OK(send_tagged(p, sizes[i], i, 0));
		recv_check(ch, sizes[i], i);
		CHECK(rmpsc_slab_free_count(ch) == 64, "after message %u: %u slabs free, want 64", i,
		      rmpsc_slab_free_count(ch));
	}
	CHECK_RC(send_tagged(p, max + 1, 99, 0), RMPSC_EINVAL);
	CHECK(strstr(rmpsc_last_error(), "longer than this channel carries"), "message: %s", rmpsc_last_error());
	/* Several in one read span, decoded by index; inline ones point into the ring. */
	for (uint32_t i = 0; i < 5; i++)
		CHECK_OK(send_tagged(p, i % 2 ? 40 : 600, 100 + i, 0));
	const void *rec;
	CHECK_RC(rmpsc_read(ch, 5, 0, &rec, NULL), 5);
	for (uint32_t i = 0; i < 5; i++) {
		struct rmpsc_message m;
		CHECK_OK(rmpsc_message_at(ch, i, &m));
		CHECK(m.len == (i % 2 ? 40u : 600u), "span message %u len %llu", i, (unsigned long long)m.len);
		CHECK((m.slabs == 0) == (i % 2 == 1), "span message %u: %u slabs", i, m.slabs);
		unsigned char b[600];
		CHECK_OK(rmpsc_message_copy(ch, &m, b));
		check_bytes(b, m.len, 100 + i);
	}
	struct rmpsc_message m;
	CHECK_RC(rmpsc_message_at(ch, 5, &m), RMPSC_EINVAL);
	/* Two consumed, three read again next time, slabs intact. */
	CHECK_OK(rmpsc_advance_messages(ch, 2));
	for (uint32_t i = 2; i < 5; i++)
		recv_check(ch, i % 2 ? 40 : 600, 100 + i);
	CHECK(rmpsc_slab_free_count(ch) == 64, "%u slabs free, want 64", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* Take every slab of a free pool of n, then free the even ones: n / 2 free, no two
 * of them consecutive. held[] gets the odd ones (n / 2 of them). */
static void hold_odd_slabs(rmpsc_channel *ch, uint32_t n, uint32_t *held)
{
	uint32_t h[64], k = 0;
	CHECK(n <= 64, "pool of %u", n);
	for (uint32_t i = 0; i < n; i++)
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
	for (uint32_t i = 0; i < n; i++) {
		if (h[i] % 2)
			held[k++] = h[i];
		else
			CHECK_OK(rmpsc_slab_free(ch, h[i]));
	}
	CHECK(k == n / 2, "%u odd slabs of %u", k, n);
}

/* Free what hold_odd_slabs held: the pool of n is whole again. */
static void release_odd_slabs(rmpsc_channel *ch, uint32_t n, const uint32_t *held)
{
	for (uint32_t i = 0; i < n / 2; i++)
		CHECK_OK(rmpsc_slab_free(ch, held[i]));
	CHECK(rmpsc_slab_free_count(ch) == n, "%u slabs free, want %u", rmpsc_slab_free_count(ch), n);
}

/*
 * A message of several slabs takes consecutive ones where the pool has such a run:
 * one range of the region, read in place (data set); runs are taken from where the
 * last ended, so equal messages sent and received in turn pack the pool round and
 * round. A pool with no run left still carries the message, in scattered slabs
 * (data NULL: copied with rmpsc_message_copy), byte for byte.
 */
static void test_runs(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, 1, 256, 16, max_consumers);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	unsigned char b[1000];
	for (uint32_t round = 0; round < 8; round++) {
		for (uint32_t i = 0; i < 3; i++)
			CHECK_OK(send_tagged(p, 1000, round * 3 + i, 0)); /* 4 slabs each: 12 of 16 */
		const void *rec;
		CHECK_RC(rmpsc_read(ch, 3, 0, &rec, NULL), 3);
		for (uint32_t i = 0; i < 3; i++) {
			struct rmpsc_message m;
			CHECK_OK(rmpsc_message_at(ch, i, &m));
			CHECK(m.len == 1000 && m.slabs == 4, "round %u message %u: %llu bytes in %u slabs", round, i,
			      (unsigned long long)m.len, m.slabs);
			CHECK(m.data, "round %u message %u: not in consecutive slabs", round, i);
			check_bytes(m.data, m.len, round * 3 + i);
			memset(b, 0, sizeof b);
			CHECK_OK(rmpsc_message_copy(ch, &m, b));
			check_bytes(b, m.len, round * 3 + i);
		}
		CHECK_OK(rmpsc_advance_messages(ch, 3));
	}
	CHECK(rmpsc_slab_free_count(ch) == 16, "%u slabs free, want 16", rmpsc_slab_free_count(ch));
	uint32_t held[8];
	hold_odd_slabs(ch, 16, held);
	CHECK_OK(send_tagged(p, 1000, 99, 0)); /* 4 of the 8 free slabs, none next to another */
	const void *rec;
	CHECK_RC(rmpsc_read(ch, 1, 0, &rec, NULL), 1);
	struct rmpsc_message m;
	CHECK_OK(rmpsc_message_at(ch, 0, &m));
	CHECK(m.len == 1000 && !m.data, "a scattered message: %llu bytes, data %p", (unsigned long long)m.len, m.data);
	CHECK_OK(rmpsc_message_copy(ch, &m, b));
	check_bytes(b, m.len, 99);
	CHECK_OK(rmpsc_advance_messages(ch, 1));
	release_odd_slabs(ch, 16, held);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/*
 * A sender that waits for slabs wakes a member that lingers (coalescing: asleep
 * until 32 records or a second): the records holding the pool are already there,
 * and only the member taking them frees it. Before, the sender sat out the linger
 * (a 1 MiB message stream stalled a millisecond per message). The member's wake-up
 * is counted in stats: without it, the member would have woken by its own timer.
 */
struct lingerer {
	rmpsc_channel *ch;
	int tid;
	int n;
};

static void *lingering_reader(void *arg)
{
	struct lingerer *l = arg;
	const void *rec;
	publish_tid(&l->tid);
	l->n = rmpsc_read(l->ch, 16, 10 * SEC_NS, &rec, NULL);
	if (l->n > 0)
		CHECK_OK(rmpsc_advance_messages(l->ch, (size_t)l->n));
	return NULL;
}

static void test_pool_wait_wakes_lingerer(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, 1, 256, 8, max_consumers);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 32, RMPSC_COALESCE_MAX_DELAY_NS));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	struct lingerer l = { ch, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, lingering_reader, &l);
	wait_blocked(&l.tid);
	struct rmpsc_stats before;
	CHECK_OK(rmpsc_stats(ch, &before, NULL, 0));
	CHECK_OK(send_tagged(p, 600, 1, 0)); /* 3 slabs each: 6 of 8 */
	CHECK_OK(send_tagged(p, 600, 2, 0)); /* two records wake no lingerer (a batch is 32) */
	CHECK_OK(send_tagged(p, 600, 3, 10 * SEC_NS));
	pthread_join(t, NULL);
	CHECK(l.n == 2, "the member read %d records", l.n);
	struct rmpsc_stats after;
	CHECK_OK(rmpsc_stats(ch, &after, NULL, 0));
	CHECK(after.consumer_wakes > before.consumer_wakes, "the waiting sender did not wake the lingering member");
	/* A linger a sender waiting for slabs ended: the pool, not the ring,
	 * bounds this stream, so the next waits skip lingering (as after a linger that
	 * found one record) instead of stalling the sender again each time. */
	CHECK(ch->linger_skip > 0, "a linger a slab-waiting sender cut short left lingering the rule");
	recv_check(ch, 600, 3);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void test_not_messages(void)
{
	rmpsc_channel *ch = make(64, 64, 1, 256, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	/* A plain record: not a message (its first word names no slab in transit). */
	unsigned char rec[64];
	memset(rec, 0, sizeof rec);
	CHECK_OK(rmpsc_producer_send(p, rec, sizeof rec, 0));
	memset(rec, 0xff, 8); /* inline marker with a length beyond the record */
	CHECK_OK(rmpsc_producer_send(p, rec, sizeof rec, 0));
	const void *r;
	struct rmpsc_message m;
	for (int i = 0; i < 2; i++) {
		CHECK_RC(rmpsc_read(ch, 1, 0, &r, NULL), 1);
		CHECK_RC(rmpsc_message_at(ch, 0, &m), RMPSC_ECORRUPT);
		CHECK(strstr(rmpsc_last_error(), "not a message"), "message: %s", rmpsc_last_error());
		CHECK_OK(rmpsc_advance_messages(ch, 1));
	}
	/* A many-slab message whose list is forged to name a free slab: refused. The
	 * odd slabs are held, so the pool has no run and the message is scattered (one
	 * in consecutive slabs is read in place, where its list is not read again). */
	uint32_t held[8];
	hold_odd_slabs(ch, 16, held);
	CHECK_OK(send_tagged(p, 1000, 7, 0));
	CHECK_RC(rmpsc_read(ch, 1, 0, &r, NULL), 1);
	uint32_t first = rmpsc_record_handle(r);
	unsigned char *list = rmpsc_slab_ptr(ch, first);
	uint32_t saved;
	memcpy(&saved, list, 4);
	uint32_t forged = 15;
	for (uint32_t h = 0; h < 16; h++)
		if (h != first && memcmp(&h, list, 4) && memcmp(&h, list + 4, 4) && memcmp(&h, list + 8, 4))
			forged = h;
	memcpy(list, &forged, 4);
	CHECK_RC(rmpsc_message_at(ch, 0, &m), RMPSC_ECORRUPT);
	CHECK(strstr(rmpsc_last_error(), "not in transit on it"), "message: %s", rmpsc_last_error());
	/* A list changed between message_at and message_copy: never more than len. */
	memcpy(list, &saved, 4);
	CHECK_OK(rmpsc_message_at(ch, 0, &m));
	memcpy(list, &forged, 4);
	unsigned char *b = malloc(m.len);
	CHECK_RC(rmpsc_message_copy(ch, &m, b), RMPSC_ECORRUPT);
	free(b);
	memcpy(list, &saved, 4);
	CHECK_OK(rmpsc_advance_messages(ch, 1));
	release_odd_slabs(ch, 16, held);
	/* No pool: inline only. */
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	ch = make(32, 8, 1, 0, 0, 1);
	CHECK(rmpsc_message_max(ch) == 24, "message_max without a pool %llu", (unsigned long long)rmpsc_message_max(ch));
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(send_tagged(p, 24, 1, 0));
	CHECK_RC(send_tagged(p, 25, 2, 0), RMPSC_EINVAL);
	recv_check(ch, 24, 1);
	CHECK_RC(rmpsc_producer_send_message(p, NULL, 1, 0), RMPSC_EINVAL);
	struct rmpsc_part bad = { NULL, 3 };
	CHECK_RC(rmpsc_producer_send_message(p, &bad, 1, 0), RMPSC_EINVAL);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* A full pool: try-once EFULL, a deadline ETIMEDOUT, then a blocked sender woken
 * when a consumer (a member of a group) releases. */
struct blocked_send {
	rmpsc_producer *p;
	uint64_t n;
	int tid;
	int rc;
};

static void *blocked_sender(void *arg)
{
	struct blocked_send *b = arg;
	publish_tid(&b->tid);
	b->rc = send_tagged(b->p, b->n, 42, 10 * SEC_NS);
	return NULL;
}

static void test_full_pool(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, 2, 256, 16, max_consumers);
	rmpsc_producer *p, *q;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(rmpsc_producer_register(ch, &q));
	CHECK_OK(send_tagged(p, 2000, 1, 0)); /* 8 slabs */
	CHECK_OK(send_tagged(p, 1500, 2, 0)); /* 6 slabs: 2 left */
	CHECK_RC(send_tagged(q, 1000, 3, 0), RMPSC_EFULL);
	int64_t t0 = now_ns();
	CHECK_RC(send_tagged(q, 1000, 3, 50 * MS), RMPSC_ETIMEDOUT);
	CHECK(now_ns() - t0 >= 45 * MS, "the deadline was not waited for");
	CHECK(rmpsc_slab_free_count(ch) == 2, "a failed send kept slabs: %u free", rmpsc_slab_free_count(ch));
	struct blocked_send b = { q, 3000, 0, 1 }; /* 12 slabs: needs the first message's too */
	pthread_t t;
	pthread_create(&t, NULL, blocked_sender, &b);
	wait_blocked(&b.tid);
	recv_check(ch, 2000, 1);
	recv_check(ch, 1500, 2);
	pthread_join(t, NULL);
	CHECK_OK(b.rc);
	recv_check(ch, 3000, 42);
	CHECK(rmpsc_slab_free_count(ch) == 16, "%u slabs free, want 16", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_producer_close(q);
	rmpsc_channel_release(ch);
}

/* Senders that each need most of the pool: without the assembler's turn each would
 * hold part of it and wait for the other forever. */
#define BIG_SENDERS 3
#define BIG_EACH    150

struct big_sender {
	rmpsc_channel *ch;
	uint32_t id;
	int rc;
};

static uint64_t big_len(uint32_t id, uint32_t i)
{
	return 300 + ((uint64_t)id * 7919 + i * 104729) % 3400; /* up to 15 slabs of 256 in a pool of 16 */
}

static void *big_sender(void *arg)
{
	struct big_sender *s = arg;
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(s->ch, &p));
	for (uint32_t i = 0; i < BIG_EACH && !s->rc; i++)
		s->rc = send_tagged(p, big_len(s->id, i), s->id << 16 | i, 20 * SEC_NS);
	rmpsc_producer_close(p);
	return NULL;
}

static void test_big_senders(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, BIG_SENDERS, 256, 16, max_consumers);
	struct big_sender s[BIG_SENDERS];
	pthread_t t[BIG_SENDERS];
	for (uint32_t i = 0; i < BIG_SENDERS; i++) {
		s[i] = (struct big_sender){ ch, i, 0 };
		pthread_create(&t[i], NULL, big_sender, &s[i]);
	}
	uint32_t next[BIG_SENDERS] = { 0 };
	unsigned char *b = malloc(4096);
	for (uint32_t got = 0; got < BIG_SENDERS * BIG_EACH; got++) {
		const void *rec;
		uint32_t slot;
		CHECK_RC(rmpsc_read(ch, 1, 20 * SEC_NS, &rec, &slot), 1);
		struct rmpsc_message m;
		CHECK_OK(rmpsc_message_at(ch, 0, &m));
		CHECK(m.len <= 4096, "len %llu", (unsigned long long)m.len);
		CHECK_OK(rmpsc_message_copy(ch, &m, b));
		/* Which sender: its pattern at byte 0 for its next index. */
		int who = -1;
		for (uint32_t id = 0; id < BIG_SENDERS; id++)
			if (next[id] < BIG_EACH && m.len == big_len(id, next[id]) &&
			    b[0] == pattern(id << 16 | next[id], 0) &&
			    b[m.len - 1] == pattern(id << 16 | next[id], m.len - 1))
				who = (int)id;
		CHECK(who >= 0, "message %u of %llu bytes is nobody's next", got, (unsigned long long)m.len);
		check_bytes(b, m.len, (uint32_t)who << 16 | next[who]);
		next[who]++;
		CHECK_OK(rmpsc_advance_messages(ch, 1));
	}
	free(b);
	for (uint32_t i = 0; i < BIG_SENDERS; i++) {
		pthread_join(t[i], NULL);
		CHECK_OK(s[i].rc);
	}
	CHECK(rmpsc_slab_free_count(ch) == 16, "%u slabs free, want 16", rmpsc_slab_free_count(ch));
	rmpsc_channel_release(ch);
}

/* A sender killed while it gathers slabs (the assembler's turn and part of the
 * pool held): the next sender takes the turn over and the pool comes back whole. */
static void test_assembler_killed(void)
{
	rmpsc_channel *ch = make(64, 64, 3, 256, 16, 2);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(send_tagged(p, 2500, 1, 0)); /* 11 slabs held by a record */
	kill_an_assembler(ch);
	recv_check(ch, 2500, 1);
	CHECK_OK(send_tagged(p, 3700, 3, 5 * SEC_NS)); /* 15 slabs: only if the dead one's came back */
	recv_check(ch, 3700, 3);
	const void *r;
	CHECK_RC(rmpsc_read(ch, 1, 0, &r, NULL), RMPSC_EEMPTY);
	CHECK(rmpsc_slab_free_count(ch) == 16, "%u slabs free, want 16", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* Producer processes send messages of random sizes (inline to many slabs), each
 * carrying (producer, seq) and a checksum; the consumer (a member of a group of
 * two places) checks every one, per producer in order. */
#define PROCS    3
#define PER_PROC 3000

static void test_processes(void)
{
	rmpsc_channel *ch = make(64, 128, PROCS, 512, 64, 2);
	pid_t pids[PROCS];
	for (uint32_t id = 0; id < PROCS; id++) {
		pids[id] = fork_child();
		if (pids[id] == 0) {
			rmpsc_producer *p;
			CHECK_OK(rmpsc_producer_register(ch, &p));
			uint64_t rng = 0x9e3779b97f4a7c15ull * (id + 1);
			for (uint32_t i = 0; i < PER_PROC; i++) {
				uint64_t r = rng_next(&rng);
				uint64_t n = r % 4 == 0 ? 8 + r % 48 : 8 + (r >> 8) % 9000;
				CHECK_OK(send_tagged(p, n, id << 24 | i, 20 * SEC_NS));
			}
			rmpsc_producer_close(p);
			_exit(0);
		}
	}
	uint32_t next[PROCS] = { 0 };
	uint64_t rngs[PROCS];
	for (uint32_t id = 0; id < PROCS; id++)
		rngs[id] = 0x9e3779b97f4a7c15ull * (id + 1);
	unsigned char *b = malloc(10000);
	for (uint32_t got = 0; got < PROCS * PER_PROC;) {
		const void *rec;
		uint32_t slot;
		int n = rmpsc_read(ch, 32, 20 * SEC_NS, &rec, &slot);
		CHECK(n > 0, "read: %s after %u messages", rmpsc_last_error(), got);
		for (int i = 0; i < n; i++, got++) {
			struct rmpsc_message m;
			CHECK_OK(rmpsc_message_at(ch, (size_t)i, &m));
			CHECK(m.len <= 10000, "len %llu", (unsigned long long)m.len);
			CHECK_OK(rmpsc_message_copy(ch, &m, b));
			int who = -1;
			for (uint32_t id = 0; id < PROCS; id++) {
				if (next[id] >= PER_PROC)
					continue;
				uint64_t peek = rngs[id];
				uint64_t r = rng_next(&peek);
				uint64_t want = r % 4 == 0 ? 8 + r % 48 : 8 + (r >> 8) % 9000;
				if (want == m.len && b[0] == pattern(id << 24 | next[id], 0) &&
				    b[m.len - 1] == pattern(id << 24 | next[id], m.len - 1))
					who = (int)id;
			}
			CHECK(who >= 0, "message %u (%llu bytes) is no producer's next in order", got,
			      (unsigned long long)m.len);
			check_bytes(b, m.len, (uint32_t)who << 24 | next[who]);
			rng_next(&rngs[who]);
			next[who]++;
		}
		CHECK_OK(rmpsc_advance_messages(ch, (size_t)n));
	}
	free(b);
	for (uint32_t id = 0; id < PROCS; id++)
		CHECK(reap(pids[id]) == 0, "producer %u failed", id);
	CHECK(rmpsc_slab_free_count(ch) == 64, "%u slabs free, want 64", rmpsc_slab_free_count(ch));
	rmpsc_channel_release(ch);
}

/* register_wait: a slot comes free when its producer closed and its records are consumed. */
struct waiting_register {
	rmpsc_channel *ch;
	rmpsc_producer *p;
	int tid;
	int rc;
};

static void *register_waiter(void *arg)
{
	struct waiting_register *w = arg;
	publish_tid(&w->tid);
	w->rc = rmpsc_producer_register_wait(w->ch, 10 * SEC_NS, &w->p);
	return NULL;
}

static void test_register_wait(void)
{
	rmpsc_channel *ch = make(64, 8, 1, 0, 0, 1);
	rmpsc_producer *p, *q = NULL;
	CHECK_OK(rmpsc_producer_register_wait(ch, 0, &p));
	CHECK_RC(rmpsc_producer_register_wait(ch, 0, &q), RMPSC_ENOSLOT);
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_producer_register_wait(ch, 30 * MS, &q), RMPSC_ETIMEDOUT);
	CHECK(now_ns() - t0 >= 25 * MS, "the deadline was not waited for");
	CHECK(strstr(rmpsc_last_error(), "no slot came free") && strstr(rmpsc_last_error(), "in use by live"),
	      "message: %s", rmpsc_last_error());
	CHECK_OK(send_tagged(p, 10, 1, 0));
	rmpsc_producer_close(p); /* its slot is free once its record is consumed */
	struct waiting_register w = { ch, NULL, 0, 1 };
	pthread_t t;
	pthread_create(&t, NULL, register_waiter, &w);
	wait_blocked(&w.tid);
	recv_check(ch, 10, 1);
	pthread_join(t, NULL);
	CHECK_OK(w.rc);
	CHECK_OK(send_tagged(w.p, 20, 2, 0));
	recv_check(ch, 20, 2);
	rmpsc_producer_close(w.p);
	rmpsc_channel_release(ch);
}

int main(void)
{
	harness_start("test_messages", 120);
	atexit(children_cleanup_at_exit);
	test_round_trip(1);
	test_round_trip(2);
	test_not_messages();
	test_runs(1);
	test_runs(2);
	test_pool_wait_wakes_lingerer(1);
	test_pool_wait_wakes_lingerer(2);
	test_full_pool(1);
	test_full_pool(2);
	test_big_senders(1);
	test_big_senders(2);
	test_assembler_killed();
	test_processes();
	test_register_wait();
	printf("test_messages: all passed\n");
	return 0;
}
