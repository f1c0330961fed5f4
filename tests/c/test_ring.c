/* The standalone SPSC ring: reserve/commit/abort, wrap, readable/advance, consume,
 * send/recv, pending; positions crossing UINT64_MAX; a threaded SPSC stress. */
#include <pthread.h>
#include <stdalign.h>

#include "harness.h"

#define RS 16u

static alignas(128) unsigned char mem[1 << 16];

static void test_basic(uint64_t start)
{
	rmpsc_ring r;
	CHECK_OK(rmpsc_ring_init(&r, mem, sizeof mem, RS, 8, start));
	CHECK_RC(rmpsc_ring_capacity(&r), 8);
	CHECK_RC(rmpsc_ring_pending(&r), 0);

	const void *rp;
	CHECK_RC(rmpsc_ring_readable(&r, 4, &rp), RMPSC_EEMPTY);

	/* reserve 5, commit 3: only 3 become visible */
	void *wp;
	CHECK_RC(rmpsc_ring_reserve(&r, 5, &wp), 5);
	CHECK_RC(rmpsc_ring_reserve(&r, 1, &wp), RMPSC_EINVAL); /* one reservation at a time */
	for (int i = 0; i < 5; i++)
		memset((unsigned char *)wp + i * RS, 'a' + i, RS);
	CHECK_RC(rmpsc_ring_commit(&r, 6), RMPSC_EINVAL);
	CHECK_OK(rmpsc_ring_commit(&r, 3));
	CHECK_RC(rmpsc_ring_pending(&r), 3);

	/* abort: nothing of it is visible */
	CHECK_RC(rmpsc_ring_reserve(&r, 2, &wp), 2);
	memset(wp, 'z', 2 * RS);
	CHECK_OK(rmpsc_ring_commit(&r, 0));
	CHECK_RC(rmpsc_ring_pending(&r), 3);

	CHECK_RC(rmpsc_ring_readable(&r, 10, &rp), 3);
	for (int i = 0; i < 3; i++)
		CHECK(((const unsigned char *)rp)[i * RS] == 'a' + i, "record %d", i);
	CHECK_RC(rmpsc_ring_advance(&r, 4), RMPSC_EINVAL);
	CHECK_OK(rmpsc_ring_advance(&r, 2));
	CHECK_RC(rmpsc_ring_pending(&r), 1);

	/* tail is now at index 3: a request for 8 gets the 5 slots before the end... */
	CHECK_RC(rmpsc_ring_reserve(&r, 8, &wp), 5);
	CHECK_OK(rmpsc_ring_commit(&r, 5));
	/* ...and then the 2 freed at the front, shorter than asked at the wrap. */
	CHECK_RC(rmpsc_ring_reserve(&r, 8, &wp), 2);
	CHECK(wp == rp || (unsigned char *)wp < (unsigned char *)rp, "wrapped to the front");
	CHECK_OK(rmpsc_ring_commit(&r, 2));
	CHECK_RC(rmpsc_ring_pending(&r), 8);
	CHECK_RC(rmpsc_ring_reserve(&r, 1, &wp), RMPSC_EFULL);

	/* readable stops at the end of the buffer too */
	CHECK_RC(rmpsc_ring_readable(&r, 100, &rp), 6);
	CHECK_OK(rmpsc_ring_advance(&r, 6));
	CHECK_RC(rmpsc_ring_readable(&r, 100, &rp), 2);
	CHECK_OK(rmpsc_ring_advance(&r, 2));
	CHECK_RC(rmpsc_ring_pending(&r), 0);
}

static int sum_cb(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	uint64_t *sum = ctx;
	CHECK(slot == 0, "standalone ring slot is 0");
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		memcpy(&v, (const unsigned char *)recs + i * RS, 8);
		*sum += v;
	}
	return 0;
}

static int stop_cb(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	(void)recs, (void)slot;
	*(size_t *)ctx += n;
	return 1;
}

static void test_send_recv_consume(void)
{
	rmpsc_ring r;
	CHECK_OK(rmpsc_ring_init(&r, mem, sizeof mem, RS, 16, UINT64_MAX - 7));
	unsigned char in[20 * RS], out[20 * RS];
	for (unsigned i = 0; i < 20; i++) {
		uint64_t v = i + 1;
		memset(in + i * RS, 0, RS);
		memcpy(in + i * RS, &v, 8);
	}
	CHECK_RC(rmpsc_ring_send(&r, in, 20), 16); /* full after 16 */
	CHECK_RC(rmpsc_ring_recv(&r, out, 5), 5);
	CHECK(!memcmp(in, out, 5 * RS), "recv bytes");
	size_t seen = 0;
	CHECK_RC(rmpsc_ring_consume(&r, 100, stop_cb, &seen), (int)seen); /* stops after one span */
	CHECK(seen >= 1 && seen <= 11, "one span consumed: %zu", seen);
	uint64_t sum = 0;
	int n = rmpsc_ring_consume(&r, 100, sum_cb, &sum);
	CHECK(n == (int)(11 - seen), "rest consumed: %d", n);
	uint64_t expect = 0;
	for (unsigned i = 5 + seen; i < 16; i++)
		expect += i + 1;
	CHECK(sum == expect, "sum %llu != %llu", (unsigned long long)sum, (unsigned long long)expect);
	CHECK_RC(rmpsc_ring_consume(&r, 100, sum_cb, &sum), RMPSC_EEMPTY);

	/* attach sees the same ring */
	rmpsc_ring r2;
	CHECK_OK(rmpsc_ring_attach(&r2, mem, sizeof mem));
	CHECK_RC(rmpsc_ring_capacity(&r2), 16);
	CHECK_RC(rmpsc_ring_send(&r, in, 3), 3);
	CHECK_RC(rmpsc_ring_pending(&r2), 3);
	CHECK_RC(rmpsc_ring_recv(&r2, out, 10), 3);
	CHECK(!memcmp(in, out, 3 * RS), "attached recv bytes");
}

/* Threaded SPSC: random reservation and read sizes, tiny and larger capacities,
 * positions starting just below UINT64_MAX so the u64 wrap is crossed. */
struct spsc {
	rmpsc_ring r;
	uint64_t total;
	uint64_t seed;
};

static void *spsc_producer(void *arg)
{
	struct spsc *s = arg;
	uint64_t seq = 0, rng = s->seed;
	while (seq < s->total) {
		size_t want = 1 + rng_next(&rng) % 7;
		void *p;
		int n = rmpsc_ring_reserve(&s->r, want, &p);
		if (n == RMPSC_EFULL) {
			sched_yield();
			continue;
		}
		CHECK(n >= 1 && (size_t)n <= want, "reserve %d", n);
		int k = 1 + (int)(rng_next(&rng) % (uint64_t)n); /* commit a prefix */
		for (int i = 0; i < k && seq + (uint64_t)i < s->total; i++)
			rec_fill((unsigned char *)p + i * 32, 32, 1, seq + (uint64_t)i);
		if (seq + (uint64_t)k > s->total)
			k = (int)(s->total - seq);
		CHECK_OK(rmpsc_ring_commit(&s->r, (size_t)k));
		seq += (uint64_t)k;
	}
	return NULL;
}

static void spsc_stress(uint32_t capacity, uint64_t total)
{
	static alignas(128) unsigned char big[1 << 20];
	struct spsc s = { .total = total, .seed = 0x9e3779b97f4a7c15ull ^ capacity };
	CHECK_OK(rmpsc_ring_init(&s.r, big, sizeof big, 32, capacity, UINT64_MAX - 1000));
	pthread_t t;
	pthread_create(&t, NULL, spsc_producer, &s);
	uint64_t expect = 0, rng = 42;
	while (expect < total) {
		const void *p;
		int n = rmpsc_ring_readable(&s.r, 1 + rng_next(&rng) % 9, &p);
		if (n == RMPSC_EEMPTY) {
			sched_yield();
			continue;
		}
		CHECK(n > 0, "readable %d", n);
		for (int i = 0; i < n; i++) {
			uint32_t prod;
			uint64_t seq;
			CHECK(rec_check((const unsigned char *)p + i * 32, 32, &prod, &seq) == 0, "torn record at %llu",
			      (unsigned long long)expect);
			CHECK(seq == expect, "seq %llu, expected %llu", (unsigned long long)seq,
			      (unsigned long long)expect);
			expect++;
		}
		CHECK_OK(rmpsc_ring_advance(&s.r, (size_t)n));
	}
	pthread_join(t, NULL);
	CHECK_RC(rmpsc_ring_pending(&s.r), 0);
}

int main(void)
{
	harness_start("test_ring", 120);
	test_basic(0);
	test_basic(UINT64_MAX - 7); /* slot 0 again, and the positions cross the u64 wrap */
	test_send_recv_consume();
	spsc_stress(2, 200000);
	spsc_stress(4, 200000);
	spsc_stress(1024, 1000000);
	printf("test_ring: ok\n");
	return 0;
}
