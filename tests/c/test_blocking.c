/*
 * Blocking: over a million blocking handoffs with a consumer that sleeps between
 * batches; strict one-record ping-pong (every handoff sleeps, so a lost wake-up
 * hangs and the watchdog fails the test); close waking blocked producers and a
 * blocked consumer; timeouts; an idle blocked consumer using no CPU; close while
 * a reservation is open, including one whose process then dies.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "harness.h"

#define SEC 1000000000ll

#define HANDOFFS  1000000ull
#define PINGPONGS 100000

static rmpsc_channel *make_channel(uint32_t rs, uint32_t cap, uint32_t maxp)
{
	rmpsc_channel *ch;
	struct rmpsc_config c = { .record_size = rs, .capacity = cap, .max_producers = maxp };
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	return ch;
}

/* --- a million blocking handoffs ------------------------------------------ */

struct handoff {
	rmpsc_channel *ch;
	uint32_t id;
	uint64_t count;
};

static void *handoff_producer(void *arg)
{
	struct handoff *h = arg;
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(h->ch, &p));
	uint64_t rng = h->id + 99;
	unsigned char rec[16];
	for (uint64_t seq = 0; seq < h->count; seq++) {
		rec_fill(rec, 16, h->id, seq);
		CHECK_OK(rmpsc_producer_send(p, rec, sizeof rec, -1)); /* block as long as it takes */
		if (rng_next(&rng) % 4096 == 0)
			usleep(200); /* let the consumer run dry and sleep */
	}
	rmpsc_producer_close(p);
	return NULL;
}

static void test_million_handoffs(void)
{
	enum {
		PRODUCERS = 2
	};
	rmpsc_channel *ch = make_channel(16, 64, PRODUCERS);
	struct handoff h[PRODUCERS];
	pthread_t t[PRODUCERS];
	for (uint32_t i = 0; i < PRODUCERS; i++) {
		h[i] = (struct handoff){ ch, i, HANDOFFS / PRODUCERS };
		pthread_create(&t[i], NULL, handoff_producer, &h[i]);
	}
	uint64_t next[PRODUCERS] = { 0 }, total = 0, rng = 5;
	unsigned char buf[16 * 64];
	while (total < HANDOFFS) {
		int n = rmpsc_recv(ch, buf, 1 + rng_next(&rng) % 64, -1);
		CHECK(n > 0, "recv %d (%s)", n, rmpsc_last_error());
		for (int i = 0; i < n; i++) {
			uint32_t id;
			uint64_t seq;
			CHECK(rec_check(buf + i * 16, 16, &id, &seq) == 0 && id < PRODUCERS, "corrupt record");
			CHECK(seq == next[id], "producer %u: seq %llu expected %llu", id, (unsigned long long)seq,
			      (unsigned long long)next[id]);
			next[id]++;
		}
		total += (uint64_t)n;
		if (rng_next(&rng) % 512 == 0)
			usleep(100); /* the consumer sleeps between batches: producers fill up and block */
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	CHECK_RC(rmpsc_recv(ch, buf, 1, 0), RMPSC_EEMPTY);
	rmpsc_channel_release(ch);
	printf("%llu blocking handoffs ok\n", (unsigned long long)total);
}

/* --- ping-pong: every handoff sleeps ------------------------------------------ */

struct pingpong {
	rmpsc_channel *there, *back;
	int rounds;
};

static void *pong(void *arg)
{
	struct pingpong *pp = arg;
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(pp->back, &p));
	uint64_t v;
	for (int i = 0; i < pp->rounds; i++) {
		CHECK_RC(rmpsc_recv(pp->there, &v, 1, 10 * SEC), 1);
		CHECK(v == (uint64_t)i, "pong got %llu at %d", (unsigned long long)v, i);
		CHECK_OK(rmpsc_producer_send(p, &v, 8, 10 * SEC));
	}
	rmpsc_producer_close(p);
	return NULL;
}

static void test_pingpong(void)
{
	struct pingpong pp = { make_channel(8, 2, 1), make_channel(8, 2, 1), PINGPONGS };
	pthread_t t;
	pthread_create(&t, NULL, pong, &pp);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(pp.there, &p));
	for (uint64_t i = 0; i < (uint64_t)pp.rounds; i++) {
		uint64_t v;
		CHECK_OK(rmpsc_producer_send(p, &i, 8, 10 * SEC));
		CHECK_RC(rmpsc_recv(pp.back, &v, 1, 10 * SEC), 1);
		CHECK(v == i, "ping got %llu for %llu", (unsigned long long)v, (unsigned long long)i);
	}
	pthread_join(t, NULL);
	rmpsc_producer_close(p);
	rmpsc_channel_release(pp.there);
	rmpsc_channel_release(pp.back);
	printf("%d ping-pong round trips ok\n", pp.rounds);
}

/* --- close wakes blocked producers and a blocked consumer ----------------------- */

struct blocked {
	rmpsc_channel *ch;
	rmpsc_producer *p;
	int rc;
	int64_t woke_ns;
	int tid;
};

static void *blocked_sender(void *arg)
{
	struct blocked *b = arg;
	uint64_t v = 1;
	publish_tid(&b->tid);
	b->rc = rmpsc_producer_send(b->p, &v, 8, -1);
	b->woke_ns = now_ns();
	return NULL;
}

static void *blocked_receiver(void *arg)
{
	struct blocked *b = arg;
	uint64_t v;
	publish_tid(&b->tid);
	b->rc = rmpsc_recv(b->ch, &v, 1, -1);
	b->woke_ns = now_ns();
	return NULL;
}

static void test_close_wakes(void)
{
	/* producers blocked on a full ring */
	rmpsc_channel *ch = make_channel(8, 2, 3);
	struct blocked b[3];
	pthread_t t[3];
	for (int i = 0; i < 3; i++) {
		b[i] = (struct blocked){ .ch = ch };
		CHECK_OK(rmpsc_producer_register(ch, &b[i].p));
		uint64_t v = 0;
		CHECK_OK(rmpsc_producer_send(b[i].p, &v, 8, 0));
		CHECK_OK(rmpsc_producer_send(b[i].p, &v, 8, 0));
		CHECK_RC(rmpsc_producer_send(b[i].p, &v, 8, 0), RMPSC_EFULL);
		pthread_create(&t[i], NULL, blocked_sender, &b[i]);
	}
	for (int i = 0; i < 3; i++)
		wait_blocked(&b[i].tid); /* all three asleep in FUTEX_WAIT */
	int64_t closed_at = now_ns();
	CHECK_OK(rmpsc_channel_close(ch));
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CHECK_RC(b[i].rc, RMPSC_ECLOSED);
		CHECK(b[i].woke_ns - closed_at < SEC, "producer %d woke %lld ms after close", i,
		      (long long)((b[i].woke_ns - closed_at) / 1000000));
	}
	/* the six records committed before close are still delivered, then ECLOSED */
	uint64_t buf[8];
	int got = 0, n;
	while ((n = rmpsc_recv(ch, buf, 8, 0)) > 0)
		got += n;
	CHECK_RC(n, RMPSC_ECLOSED);
	CHECK(got == 6, "received %d of 6 committed before close", got);
	for (int i = 0; i < 3; i++)
		rmpsc_producer_close(b[i].p);
	rmpsc_channel_release(ch);

	/* a consumer blocked on an empty channel */
	ch = make_channel(8, 4, 1);
	struct blocked r = { .ch = ch };
	pthread_t rt;
	pthread_create(&rt, NULL, blocked_receiver, &r);
	wait_blocked(&r.tid);
	closed_at = now_ns();
	CHECK_OK(rmpsc_channel_close(ch));
	pthread_join(rt, NULL);
	CHECK_RC(r.rc, RMPSC_ECLOSED);
	CHECK(r.woke_ns - closed_at < SEC, "consumer woke %lld ms after close",
	      (long long)((r.woke_ns - closed_at) / 1000000));
	rmpsc_channel_release(ch);
	printf("close wakes blocked producers and consumer ok\n");
}

/* --- timeouts, and an idle blocked consumer uses no CPU -------------------------- */

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static void test_timeouts_and_idle(void)
{
	rmpsc_channel *ch = make_channel(8, 2, 1);
	uint64_t v = 0;
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, &v, 1, 50 * 1000000ll), RMPSC_ETIMEDOUT);
	int64_t dt = now_ns() - t0;
	CHECK(dt >= 50 * 1000000ll && dt < 2 * SEC, "recv timeout took %lld ms", (long long)(dt / 1000000));

	CHECK(strstr(rmpsc_last_error(), "timed out"), "message after ETIMEDOUT: %s", rmpsc_last_error());

	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	char big[16] = { 0 };
	CHECK_RC(rmpsc_producer_send(p, big, 16, 0), RMPSC_EINVAL);
	CHECK(strstr(rmpsc_last_error(), "too long"), "message after EINVAL: %s", rmpsc_last_error());
	CHECK_OK(rmpsc_producer_send(p, &v, 8, 0));
	CHECK_OK(rmpsc_producer_send(p, &v, 8, 0));
	/* Each failure describes itself, not an earlier one. */
	CHECK_RC(rmpsc_producer_send(p, &v, 8, 0), RMPSC_EFULL);
	CHECK(strstr(rmpsc_last_error(), "full"), "message after EFULL: %s", rmpsc_last_error());
	t0 = now_ns();
	CHECK_RC(rmpsc_producer_send(p, &v, 8, 30 * 1000000ll), RMPSC_ETIMEDOUT);
	dt = now_ns() - t0;
	CHECK(dt >= 30 * 1000000ll && dt < 2 * SEC, "send timeout took %lld ms", (long long)(dt / 1000000));
	CHECK_RC(rmpsc_producer_send_many(p, &v, 1, 10 * 1000000ll), RMPSC_ETIMEDOUT);
	uint64_t two[2];
	CHECK_RC(rmpsc_recv(ch, two, 2, 0), 2);

	/* Idle: a consumer blocked for 400 ms of wall time burns (almost) no CPU. */
	double c0 = cpu_seconds();
	t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, &v, 1, 400 * 1000000ll), RMPSC_ETIMEDOUT);
	double used = cpu_seconds() - c0;
	CHECK(now_ns() - t0 >= 400 * 1000000ll, "slept the full timeout");
	CHECK(used < 0.05, "blocked consumer used %.3f s of CPU in 0.4 s", used);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	printf("timeouts and idle wait ok (idle CPU %.4f s)\n", used);
}

/* --- close while a reservation is open ------------------------------------------ */

struct late_commit {
	rmpsc_producer *p;
	void *span;
};

static void *commit_later(void *arg)
{
	struct late_commit *lc = arg;
	usleep(100000);
	memset(lc->span, 0x5a, 8);
	CHECK_OK(rmpsc_producer_commit(lc->p, 1));
	return NULL;
}

static void test_close_with_open_reservation(void)
{
	rmpsc_channel *ch = make_channel(8, 4, 2);
	struct late_commit lc;
	CHECK_OK(rmpsc_producer_register(ch, &lc.p));
	CHECK_RC(rmpsc_producer_reserve(lc.p, 1, 0, &lc.span), 1);
	CHECK_OK(rmpsc_channel_close(ch));
	/* the open reservation may still commit; new ones may not */
	rmpsc_producer *p2;
	CHECK_RC(rmpsc_producer_register(ch, &p2), RMPSC_ECLOSED);
	pthread_t t;
	pthread_create(&t, NULL, commit_later, &lc);
	uint64_t v = 0;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 5 * SEC), 1); /* blocks until the late commit */
	CHECK(v == 0x5a5a5a5a5a5a5a5aull, "late-committed record intact");
	CHECK_RC(rmpsc_recv(ch, &v, 1, 5 * SEC), RMPSC_ECLOSED);
	pthread_join(t, NULL);
	void *w;
	CHECK_RC(rmpsc_producer_reserve(lc.p, 1, 0, &w), RMPSC_ECLOSED);
	rmpsc_producer_close(lc.p);
	rmpsc_channel_release(ch);

#ifndef __SANITIZE_THREAD__
	/* The reserving process dies after close: the consumer must not wait forever. */
	ch = make_channel(8, 4, 2);
	int sync[2];
	CHECK(pipe(sync) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		alarm(20);
		rmpsc_producer *cp;
		void *span;
		if (rmpsc_producer_register(ch, &cp) || rmpsc_producer_reserve(cp, 1, 0, &span) != 1)
			_exit(3);
		if (write(sync[1], "r", 1) != 1)
			_exit(4);
		pause(); /* killed here, reservation open */
		_exit(0);
	}
	char c;
	CHECK(read(sync[0], &c, 1) == 1, "child reserved");
	CHECK_OK(rmpsc_channel_close(ch));
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, &v, 1, 200 * 1000000ll), RMPSC_ETIMEDOUT); /* owner alive: wait */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, &v, 1, 10 * SEC), RMPSC_ECLOSED);
	CHECK(now_ns() - t0 < 2 * SEC, "drain noticed the dead reserver within %lld ms",
	      (long long)((now_ns() - t0) / 1000000));
	close(sync[0]);
	close(sync[1]);
	rmpsc_channel_release(ch);
#endif
	printf("close with open reservations ok\n");
}

int main(void)
{
	harness_start("test_blocking", 240);
	test_timeouts_and_idle();
	test_close_wakes();
	test_close_with_open_reservation();
	test_pingpong();
	test_million_handoffs();
	return 0;
}
