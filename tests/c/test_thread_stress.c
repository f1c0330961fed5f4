/*
 * Threaded MPSC stress: several producer threads x many records, each record
 * carrying (stream id, sequence, checksum). Producers mix send, send_many and
 * reserve/partial commit/abort with random batch sizes, and periodically
 * deregister and register again (a new stream each time, so slots are reused
 * under load). The consumer mixes consume, recv and read/partial advance.
 * Asserts exactly-once, FIFO per stream and integrity, for tiny capacities (2, 4)
 * and positions starting just below UINT64_MAX.
 */
#include <pthread.h>

#include "harness.h"

#define MAX_STREAMS 4096
#define TIMEOUT_NS  (5 * 1000000000ll) /* no single call may block longer */

struct cfg {
	uint32_t record_size, capacity, producers, max_producers;
	uint64_t per_producer;
	uint64_t start;
};

struct shared {
	struct cfg cfg;
	rmpsc_channel *ch;
	uint32_t next_stream;             /* atomic: stream ids handed out */
	uint64_t stream_len[MAX_STREAMS]; /* records each stream sent (set before its producer closes) */
	uint32_t producers_done;          /* atomic */
};

static uint32_t new_stream(struct shared *sh)
{
	uint32_t id = __atomic_fetch_add(&sh->next_stream, 1, __ATOMIC_RELAXED);
	CHECK(id < MAX_STREAMS, "too many streams");
	return id;
}

static rmpsc_producer *register_retry(struct shared *sh)
{
	rmpsc_producer *p = NULL;
	int64_t deadline = now_ns() + TIMEOUT_NS;
	int rc;
	/* Slots of closed producers come back once the consumer drains them. */
	while ((rc = rmpsc_producer_register(sh->ch, &p)) == RMPSC_ENOSLOT && now_ns() < deadline)
		sched_yield();
	CHECK_OK(rc);
	return p;
}

static void *producer(void *arg)
{
	struct shared *sh = arg;
	uint32_t rs = sh->cfg.record_size;
	uint64_t rng = (uint64_t)(uintptr_t)&rng ^ 0x1234567;
	unsigned char *buf = malloc((size_t)rs * 64);
	rmpsc_producer *p = register_retry(sh);
	uint32_t stream = new_stream(sh);
	uint64_t seq = 0, sent = 0;
	while (sent < sh->cfg.per_producer) {
		uint64_t left = sh->cfg.per_producer - sent;
		uint64_t want = 1 + rng_next(&rng) % 37;
		if (want > left)
			want = left;
		switch (rng_next(&rng) % 4) {
		case 0: { /* send one */
			rec_fill(buf, rs, stream, seq);
			CHECK_OK(rmpsc_producer_send(p, buf, rs, TIMEOUT_NS));
			seq++, sent++;
			break;
		}
		case 1: { /* send_many */
			for (uint64_t i = 0; i < want; i++)
				rec_fill(buf + i * rs, rs, stream, seq + i);
			CHECK_RC(rmpsc_producer_send_many(p, buf, want, TIMEOUT_NS), (int)want);
			seq += want, sent += want;
			break;
		}
		case 2: { /* reserve, write, commit a prefix */
			void *w;
			int n = rmpsc_producer_reserve(p, want, TIMEOUT_NS, &w);
			CHECK(n >= 1 && (uint64_t)n <= want, "reserve gave %d (%s)", n, rmpsc_last_error());
			int k = 1 + (int)(rng_next(&rng) % (uint64_t)n);
			for (int i = 0; i < n; i++) /* write all, publish only k */
				rec_fill((unsigned char *)w + (size_t)i * rs, rs, stream, seq + (uint64_t)i);
			CHECK_OK(rmpsc_producer_commit(p, (size_t)k));
			seq += (uint64_t)k, sent += (uint64_t)k;
			break;
		}
		case 3: { /* reserve and abort: never visible */
			void *w;
			int n = rmpsc_producer_reserve(p, want, TIMEOUT_NS, &w);
			CHECK(n >= 1, "reserve gave %d", n);
			memset(w, 0xEE, (size_t)n * rs);
			CHECK_OK(rmpsc_producer_commit(p, 0));
			break;
		}
		}
		/* Now and then leave and come back as a new stream: slot reuse under load. */
		if (rng_next(&rng) % 97 == 0) {
			__atomic_store_n(&sh->stream_len[stream], seq, __ATOMIC_RELEASE);
			rmpsc_producer_close(p);
			p = register_retry(sh);
			stream = new_stream(sh);
			seq = 0;
		}
	}
	__atomic_store_n(&sh->stream_len[stream], seq, __ATOMIC_RELEASE);
	rmpsc_producer_close(p);
	__atomic_fetch_add(&sh->producers_done, 1, __ATOMIC_RELEASE);
	free(buf);
	return NULL;
}

struct verifier {
	uint32_t rs;
	uint64_t next[MAX_STREAMS];
	uint64_t total;
};

static void verify(struct verifier *v, const unsigned char *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t stream;
		uint64_t seq;
		CHECK(rec_check(recs + i * v->rs, v->rs, &stream, &seq) == 0, "torn or corrupt record (#%llu)",
		      (unsigned long long)v->total);
		CHECK(stream < MAX_STREAMS, "stream id %u", stream);
		CHECK(seq == v->next[stream], "stream %u: seq %llu, expected %llu (dup, loss or reorder)", stream,
		      (unsigned long long)seq, (unsigned long long)v->next[stream]);
		v->next[stream]++;
		v->total++;
	}
}

static int verify_cb(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	(void)slot;
	verify(ctx, recs, n);
	return 0;
}

static void run(struct cfg cfg)
{
	struct shared *sh = calloc(1, sizeof *sh);
	struct verifier *v = calloc(1, sizeof *v);
	sh->cfg = cfg;
	v->rs = cfg.record_size;
	struct rmpsc_config c = { .record_size = cfg.record_size,
				  .capacity = cfg.capacity,
				  .max_producers = cfg.max_producers,
				  .start_position = cfg.start };
	CHECK_OK(rmpsc_channel_create(&sh->ch, NULL, &c, 0));
	pthread_t t[64];
	for (uint32_t i = 0; i < cfg.producers; i++)
		pthread_create(&t[i], NULL, producer, sh);

	unsigned char *buf = malloc((size_t)cfg.record_size * 64);
	uint64_t rng = 7;
	int64_t deadline = now_ns() + 60ll * 1000000000;
	for (;;) {
		int n;
		switch (rng_next(&rng) % 3) {
		case 0: n = rmpsc_consume(sh->ch, 1 + rng_next(&rng) % 200, 1000000, verify_cb, v); break;
		case 1:
			n = rmpsc_recv(sh->ch, buf, 1 + rng_next(&rng) % 64, 1000000);
			if (n > 0)
				verify(v, buf, (size_t)n);
			break;
		default: {
			const void *p;
			n = rmpsc_read(sh->ch, 1 + rng_next(&rng) % 50, 1000000, &p, NULL);
			if (n > 0) {
				size_t k = 1 + rng_next(&rng) % (uint64_t)n; /* partial advance */
				verify(v, p, k);
				CHECK_OK(rmpsc_advance(sh->ch, k));
			}
		}
		}
		CHECK(n > 0 || n == RMPSC_ETIMEDOUT, "consumer got %d (%s)", n, rmpsc_last_error());
		if (n == RMPSC_ETIMEDOUT && __atomic_load_n(&sh->producers_done, __ATOMIC_ACQUIRE) == cfg.producers &&
		    rmpsc_pending(sh->ch) == 0)
			break;
		CHECK(now_ns() < deadline, "consumer made no progress to completion in 60 s");
	}
	for (uint32_t i = 0; i < cfg.producers; i++)
		pthread_join(t[i], NULL);
	uint64_t expected = 0;
	for (uint32_t s = 0; s < sh->next_stream; s++) {
		CHECK(v->next[s] == sh->stream_len[s], "stream %u: received %llu of %llu", s,
		      (unsigned long long)v->next[s], (unsigned long long)sh->stream_len[s]);
		expected += sh->stream_len[s];
	}
	CHECK(expected == (uint64_t)cfg.producers * cfg.per_producer, "producers sent %llu",
	      (unsigned long long)expected);
	struct rmpsc_stats st;
	rmpsc_stats(sh->ch, &st, NULL, 0);
	CHECK(st.committed == v->total && st.consumed == v->total && st.pending == 0,
	      "stats committed %llu consumed %llu pending %llu, received %llu", (unsigned long long)st.committed,
	      (unsigned long long)st.consumed, (unsigned long long)st.pending, (unsigned long long)v->total);
	printf("rs=%u cap=%u producers=%u/%u start=%llx: %llu records in %u streams ok\n", cfg.record_size,
	       cfg.capacity, cfg.producers, cfg.max_producers, (unsigned long long)cfg.start,
	       (unsigned long long)v->total, sh->next_stream);
	rmpsc_channel_release(sh->ch);
	free(buf);
	free(sh);
	free(v);
}

int main(void)
{
	harness_start("test_thread_stress", 240);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	const uint64_t scale = 1; /* sanitizers are 5-20x slower */
#else
	const uint64_t scale = 16;
#endif
	const uint64_t near_wrap = UINT64_MAX - 100;
	run((struct cfg){ 16, 2, 3, 4, 5000 * scale, near_wrap });
	run((struct cfg){ 24, 4, 4, 4, 5000 * scale, near_wrap });
	run((struct cfg){ 100, 64, 4, 6, 20000 * scale, 0 });
	run((struct cfg){ 64, 1024, 3, 3, 50000 * scale, near_wrap });
	run((struct cfg){ 16, 8, 8, 16, 5000 * scale, near_wrap });
	return 0;
}
