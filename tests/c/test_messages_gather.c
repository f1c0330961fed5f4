/*
 * Gathering a message's slabs (slab.c), attacked: a sender waiting for all of its
 * slabs at once sleeps (it does not take part of the pool, give it back and wake
 * itself), and wakes an idle member only a few times; a close or a signal ends
 * the wait in either phase (all at once, then slab by slab) with nothing held and
 * the assembler's turn given back; a timed-out gather gives back only what it
 * took (not a stale handle of its caller's array); forged lists and lengths never
 * put in-place data outside the pool nor make message_copy write past len; pools
 * of 1 to 4 slabs under three senders of runs and a thread scribbling on single
 * slabs carry every message intact and end whole, with one consumer and with
 * groups.
 */
#include <pthread.h>
#include <sys/resource.h>

#include "children.h"
#include "handle.h"
#include "harness.h"
#include "layout.h"
#include "messages.h"
#include "slab.h"
#include "wait.h"

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * SEC_NS + ts.tv_nsec;
}

/*
 * Pool of 4; 2 held elsewhere; a 3-slab message waits (timeout 80 ms, inside
 * GATHER_WHOLE_NS). Nothing is freed meanwhile, so the sender should sleep: its
 * CPU time should be a small fraction of the wait.
 */
static void test_gather_wait_sleeps(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, 1, 256, 4, max_consumers);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint32_t h[2];
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[0]));
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[1]));
	struct rmpsc_stats before;
	CHECK_OK(rmpsc_stats(ch, &before, NULL, 0));
	int64_t c0 = thread_cpu_ns(), t0 = now_ns();
	CHECK_RC(send_tagged(p, 700, 1, 80 * MS), RMPSC_ETIMEDOUT); /* 3 slabs */
	int64_t cpu = thread_cpu_ns() - c0, wall = now_ns() - t0;
	CHECK(rmpsc_slab_free_count(ch) == 2, "a failed send kept slabs: %u free", rmpsc_slab_free_count(ch));
	CHECK(cpu < wall / 4, "the gathering sender spun: %.1f ms of CPU in a %.1f ms wait", cpu / 1e6, wall / 1e6);
	CHECK_OK(rmpsc_slab_free(ch, h[0]));
	CHECK_OK(rmpsc_slab_free(ch, h[1]));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/*
 * The same wait with a member asleep on its (empty) rings: each of the spinning
 * gatherer's polls calls wake_lingering_members, so the member is woken over and
 * over for nothing (it has no record to take; the slabs are held elsewhere).
 */
struct idle_reader {
	rmpsc_channel *ch;
	int tid;
	int n;
};

static void *idle_reader(void *arg)
{
	struct idle_reader *r = arg;
	const void *rec;
	publish_tid(&r->tid);
	r->n = rmpsc_read(r->ch, 1, 300 * MS, &rec, NULL);
	return NULL;
}

static void test_gather_wait_wakes_idle_member(uint32_t max_consumers, int one_slab)
{
	rmpsc_channel *ch = make(64, 64, 1, 256, 4, max_consumers);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint32_t h[4];
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[0]));
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[1]));
	struct idle_reader r = { ch, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, idle_reader, &r);
	wait_blocked(&r.tid);
	struct rmpsc_stats before, after;
	CHECK_OK(rmpsc_stats(ch, &before, NULL, 0));
	if (one_slab) { /* all 4 held: a one-slab sender's wait (slab_ready) */
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[2]));
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[3]));
		CHECK_RC(send_tagged(p, 200, 1, 80 * MS), RMPSC_ETIMEDOUT);
		CHECK_OK(rmpsc_slab_free(ch, h[2]));
		CHECK_OK(rmpsc_slab_free(ch, h[3]));
	} else
		CHECK_RC(send_tagged(p, 700, 1, 80 * MS), RMPSC_ETIMEDOUT); /* 3 slabs */
	CHECK_OK(rmpsc_stats(ch, &after, NULL, 0));
	pthread_join(t, NULL);
	CHECK_RC(r.n, RMPSC_ETIMEDOUT);
	uint64_t wakes = after.consumer_wakes - before.consumer_wakes;
	CHECK(wakes <= 16, "an idle member was woken %llu times by one sender waiting 80 ms for slabs",
	      (unsigned long long)wakes);
	CHECK_OK(rmpsc_slab_free(ch, h[0]));
	CHECK_OK(rmpsc_slab_free(ch, h[1]));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/*
 * A hostile producer rewrites the list and the lengths of a message it sent (its
 * slabs stay in TRANSIT on the record): whatever message_at accepts, data (in
 * place) stays inside the pool and message_copy writes no more than len.
 */
static void test_forged_in_place(void)
{
	const uint32_t N = 4, S = 256;
	rmpsc_channel *ch = make(64, 64, 1, S, N, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(send_tagged(p, 4 * 252 + 4, 1, 0)); /* all 4 slabs, a run: 0..3 */
	const void *rec;
	CHECK_RC(rmpsc_read(ch, 1, 0, &rec, NULL), 1);
	struct rmpsc_message m;
	CHECK_OK(rmpsc_message_at(ch, 0, &m));
	CHECK(m.data && m.slabs == 4, "not in place: data %p slabs %u", m.data, m.slabs);
	uint32_t first = rmpsc_record_handle(rec);
	unsigned char *lp = rmpsc_slab_ptr(ch, first);
	const unsigned char *lo = rmpsc_slab_ptr(ch, 0), *hi = lo + (uint64_t)N * S;
	unsigned char saved[12];
	memcpy(saved, lp, 12);
	uint32_t saved_len[4];
	for (uint32_t i = 0; i < N; i++)
		saved_len[i] = slab_meta_of(ch, i)->len;
	unsigned char *out = malloc(N * S + 64);
	uint64_t seed = 12345, accepted = 0, in_place = 0;
	for (int it = 0; it < 200000; it++) {
		for (uint32_t i = 0; i < 3; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t h = (uint32_t)(seed >> 33) % (N + 2); /* some out of the pool */
			memcpy(lp + 4 * i, &h, 4);
		}
		for (uint32_t i = 0; i < N; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t r = (uint32_t)(seed >> 33);
			slab_meta_of(ch, i)->len = r % 3 == 0 ? S : r % 3 == 1 ? S - 12 : r % (S + 2);
		}
		if (rmpsc_message_at(ch, 0, &m) != RMPSC_OK)
			continue;
		accepted++;
		if (m.data) {
			in_place++;
			const unsigned char *d = m.data;
			CHECK(d >= lo && d + m.len <= hi, "in-place data [%td, +%llu) outside the pool", d - lo,
			      (unsigned long long)m.len);
		}
		memset(out, 0xAB, N * S + 64);
		(void)rmpsc_message_copy(ch, &m, out);
		for (uint64_t j = m.len; j < N * S + 64; j++)
			CHECK(out[j] == 0xAB, "message_copy wrote byte %llu past len %llu", (unsigned long long)j,
			      (unsigned long long)m.len);
	}
	memcpy(lp, saved, 12);
	for (uint32_t i = 0; i < N; i++)
		slab_meta_of(ch, i)->len = saved_len[i];
	free(out);
	CHECK_OK(rmpsc_advance_messages(ch, 1));
	CHECK(rmpsc_slab_free_count(ch) == N, "%u free", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/*
 * A sender in the gather wait (whole, then slab by slab after GATHER_WHOLE_NS):
 * a close ends it with ECLOSED, a signal on an interruptible channel with EINTR;
 * either way it keeps no slab and gives the assembler's turn back.
 */
static void on_usr1(int sig)
{
	(void)sig;
}

struct gsend {
	rmpsc_producer *p;
	int tid, rc, done;
};

static void *gsender(void *arg)
{
	struct gsend *g = arg;
	publish_tid(&g->tid);
	g->rc = send_tagged(g->p, 700, 5, 10 * SEC_NS); /* 3 slabs */
	__atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* how: 0 close, 1 a signal; slab_by_slab: end the wait in its second phase, once the
 * sender holds the two free slabs (after GATHER_WHOLE_NS of waiting for all three). */
static void gather_ended(int how, int slab_by_slab)
{
	struct rmpsc_config c = {
		.record_size = 64, .capacity = 64, .max_producers = 1, .slab_size = 256, .slab_count = 4, .max_consumers = 1
	};
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, how ? RMPSC_OPEN_INTERRUPTIBLE : 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint32_t h[2];
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[0]));
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[1]));
	struct gsend g = { p, 0, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, gsender, &g);
	wait_blocked(&g.tid);
	if (slab_by_slab) {
		int64_t dl = now_ns() + 10 * SEC_NS;
		while (rmpsc_slab_free_count(ch) != 0) {
			CHECK(now_ns() < dl, "the sender did not start gathering slab by slab");
			sched_yield();
		}
		wait_blocked(&g.tid); /* asleep again, holding two slabs */
	}
	if (how) {
		int64_t t0 = now_ns();
		while (!__atomic_load_n(&g.done, __ATOMIC_ACQUIRE)) {
			CHECK(now_ns() - t0 < 5 * SEC_NS, "the gathering sender ignores signals");
			pthread_kill(t, SIGUSR1);
			usleep(5000);
		}
	} else
		CHECK_OK(rmpsc_channel_close(ch));
	pthread_join(t, NULL);
	CHECK_RC(g.rc, how ? RMPSC_EINTR : RMPSC_ECLOSED);
	CHECK(rmpsc_slab_free_count(ch) == 2, "%s %s: the sender kept slabs (%u free)", how ? "EINTR" : "close",
	      slab_by_slab ? "slab by slab" : "in the whole wait", rmpsc_slab_free_count(ch));
	CHECK(__atomic_load_n(&ch->hdr->slab_assembler, __ATOMIC_ACQUIRE) == 0, "the assembler's turn was kept");
	CHECK_OK(rmpsc_slab_free(ch, h[0]));
	CHECK_OK(rmpsc_slab_free(ch, h[1]));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void test_gather_ends(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	for (int how = 0; how < 2; how++) {
		gather_ended(how, 0); /* in the whole wait */
		gather_ended(how, 1); /* slab by slab, holding two */
	}
	signal(SIGUSR1, SIG_DFL);
}

/*
 * The slab-by-slab phase counts one slab too many when an allocation fails
 * (`for (; got < n && rc == RMPSC_OK; got++) rc = rmpsc__slab_alloc(...)`: got is
 * incremented past the failed one), so rmpsc__slab_give_back also "gives back"
 * handles[got - 1], which was never allocated: whatever the caller's array held
 * (producer.c passes an uninitialised stack array). A slab held by the same
 * process (another thread's message, here the test's own) is then freed under
 * its holder; garbage beyond the pool is a CAS outside the slab metadata.
 * Deterministic: the array is pre-filled with handles this process holds.
 */
static void test_timeout_frees_foreign_slab(void)
{
	rmpsc_channel *ch = make(64, 64, 1, 256, 4, 1);
	uint32_t mine[2];
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &mine[0]));
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &mine[1]));
	uint32_t handles[3] = { mine[0], mine[1], mine[1] };  /* stale contents of the caller's array */
	struct deadline dl = deadline_from_timeout(150 * MS); /* past GATHER_WHOLE_NS: slab by slab */
	CHECK_RC(rmpsc__slab_alloc_many(ch, &dl, 3, handles), RMPSC_ETIMEDOUT);
	CHECK(rmpsc_slab_free_count(ch) == 2, "a timed-out gather freed a slab it never took: %u free, want 2",
	      rmpsc_slab_free_count(ch));
	CHECK_OK(rmpsc_slab_free(ch, mine[0]));
	CHECK_OK(rmpsc_slab_free(ch, mine[1]));
	rmpsc_channel_release(ch);
}

/* Tiny pools under concurrent senders of runs, with single-slab allocators too. */
struct tiny {
	rmpsc_channel *ch;
	uint32_t id, each, slabs;
	int rc;
};

static uint64_t tiny_len(uint32_t id, uint32_t i, uint32_t slabs)
{
	/* 1 .. slabs slabs of 256 (k slabs carry k*252+4 bytes) */
	uint32_t k = 1 + (id * 7 + i * 13) % slabs;
	return k == 1 ? 200 : (uint64_t)(k - 1) * 252 + 4 + 100;
}

static void *tiny_sender(void *arg)
{
	struct tiny *s = arg;
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(s->ch, &p));
	unsigned char *b = malloc(1 << 16);
	for (uint32_t i = 0; i < s->each && !s->rc; i++) {
		uint64_t n = tiny_len(s->id, i, s->slabs);
		fill(b, n, s->id * 7 + i);
		b[0] = (unsigned char)s->id; /* whose: the pattern alone does not tell senders apart */
		uint64_t a = n / 3;
		struct rmpsc_part parts[3] = { { b, a }, { NULL, 0 }, { b + a, n - a } };
		s->rc = rmpsc_producer_send_message(p, parts, 3, 20 * SEC_NS);
	}
	free(b);
	rmpsc_producer_close(p);
	return NULL;
}

static void *slab_churner(void *arg)
{
	struct tiny *s = arg;
	for (uint32_t i = 0; i < s->each && !s->rc; i++) {
		uint32_t h;
		s->rc = rmpsc_slab_alloc(s->ch, 20 * SEC_NS, &h);
		if (!s->rc) {
			unsigned char *b = rmpsc_slab_ptr(s->ch, h);
			memset(b, 0xEE, 256); /* scribble: a slab shared with a message shows */
			s->rc = rmpsc_slab_free(s->ch, h);
		}
	}
	return NULL;
}

#define TINY_SENDERS 3
static void test_tiny_pools(uint32_t slabs, uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, TINY_SENDERS, 256, slabs, max_consumers);
	struct tiny s[TINY_SENDERS + 1];
	pthread_t t[TINY_SENDERS + 1];
	uint32_t each = 300;
	for (uint32_t i = 0; i < TINY_SENDERS; i++) {
		s[i] = (struct tiny){ ch, i, each, slabs, 0 };
		pthread_create(&t[i], NULL, tiny_sender, &s[i]);
	}
	s[TINY_SENDERS] = (struct tiny){ ch, 99, each, slabs, 0 };
	pthread_create(&t[TINY_SENDERS], NULL, slab_churner, &s[TINY_SENDERS]);
	uint32_t next[TINY_SENDERS] = { 0 };
	unsigned char *b = malloc(1 << 16);
	for (uint32_t got = 0; got < TINY_SENDERS * each; got++) {
		const void *rec;
		uint32_t slot;
		CHECK_RC(rmpsc_read(ch, 1, 20 * SEC_NS, &rec, &slot), 1);
		struct rmpsc_message m;
		CHECK_OK(rmpsc_message_at(ch, 0, &m));
		CHECK_OK(rmpsc_message_copy(ch, &m, b));
		(void)slot;
		uint32_t who = b[0];
		CHECK(m.len > 0 && who < TINY_SENDERS && next[who] < each && m.len == tiny_len(who, next[who], slabs),
		      "pool %u: message %u of %llu bytes (byte 0 %u) is nobody's next", slabs, got,
		      (unsigned long long)m.len, b[0]);
		for (uint64_t j = 1; j < m.len; j++)
			CHECK(b[j] == pattern(who * 7 + next[who], j), "pool %u: sender %u message %u: byte %llu is %u",
			      slabs, who, next[who], (unsigned long long)j, b[j]);
		if (m.data)
			CHECK(memcmp(m.data, b, m.len) == 0, "in-place data differs from the copy");
		next[who]++;
		CHECK_OK(rmpsc_advance_messages(ch, 1));
	}
	free(b);
	for (uint32_t i = 0; i <= TINY_SENDERS; i++) {
		pthread_join(t[i], NULL);
		CHECK_OK(s[i].rc);
	}
	CHECK(rmpsc_slab_free_count(ch) == slabs, "pool %u: %u slabs free at the end", slabs, rmpsc_slab_free_count(ch));
	rmpsc_channel_release(ch);
}

int main(void)
{
	harness_start("test_messages_gather", 120);
	atexit(children_cleanup_at_exit);
	test_timeout_frees_foreign_slab();
	test_gather_ends();
	test_forged_in_place();
	for (int one_slab = 0; one_slab < 2; one_slab++) {
		test_gather_wait_wakes_idle_member(1, one_slab);
		test_gather_wait_wakes_idle_member(2, one_slab);
	}
	test_gather_wait_sleeps(1);
	test_gather_wait_sleeps(2);
	for (uint32_t slabs = 1; slabs <= 4; slabs++) {
		test_tiny_pools(slabs, 1);
		test_tiny_pools(slabs, 2);
	}
	printf("test_messages_gather: all passed\n");
	return 0;
}
