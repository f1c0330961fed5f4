/*
 * rmpsc_wait_pending_below where consumers are not a plain loop: the cases
 * test_pending_wait does not reach.
 *   groups           two groups, the lagging one removed, or (ephemeral) its last
 *                    member leaves: the release of its records wakes the waiter
 *   shared_group     a release in a SHARED group (two members in two processes; two
 *                    handles of one process share one member place and stay SOLO)
 *                    goes through rmpsc__recompute_head, which wakes the waiter
 *   dead_subscriber  an ephemeral group whose only member died holds records:
 *                    the waiter recovers it (as a producer waiting for space does)
 *                    and returns once the group has gone with them
 *   interruptible    RMPSC_OPEN_INTERRUPTIBLE: a signal ends the wait with EINTR;
 *                    a limit of UINT64_MAX passes at once
 *   stale_announcement  a sender that timed out leaves its announcement (nothing
 *                    withdraws a shared flag); with the backlog above its limit no
 *                    release would wake, and each would count the rings: within
 *                    PENDING_SKIPS_MAX (32) releases one wakes and clears it
 *   linger_stall     a sender held back by the bound while the consumer lingers
 *                    (coalescing) for more records than the bound lets in: the
 *                    sender wakes it, as slab senders do (wake_lingerers), instead
 *                    of each batch waiting out the whole delay
 */
#include <pthread.h>

#include "children.h"
#include "handle.h"
#include "harness.h"
#include "messages.h"
#include "pending.h"
#include "wait.h"

/* ---- linger_stall ---- */

#define STALL_LIMIT   4
#define STALL_RECORDS 40
#define STALL_WORK_US 500
#define STALL_DELAY   (200 * 1000000ll) /* 200 ms linger */

struct stall_arg {
	rmpsc_channel *ch;
	int64_t took_ns;
};

static void *stall_sender(void *arg)
{
	struct stall_arg *a = arg;
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(a->ch, &p));
	int64_t t0 = now_ns();
	for (uint64_t i = 0; i < STALL_RECORDS; i++) {
		usleep(STALL_WORK_US); /* a sender that does some work per record (Python pickling) */
		CHECK_OK(rmpsc_wait_pending_below(a->ch, STALL_LIMIT, 10 * SEC_NS));
		send_seq(p, 0, i);
	}
	a->took_ns = now_ns() - t0;
	rmpsc_producer_close(p);
	return NULL;
}

static int64_t stall_run(uint32_t min_records, int64_t delay)
{
	rmpsc_channel *ch = make(RS, 1024, 2, 0, 0, 1);
	rmpsc_channel *c;
	CHECK_OK(rmpsc_channel_attach_fd(&c, rmpsc_channel_fd(ch), 0));
	CHECK_OK(rmpsc_consumer_join(c, NULL, 0));
	CHECK_OK(rmpsc_consumer_coalesce(c, min_records, delay));
	struct stall_arg a = { ch, 0 };
	pthread_t t;
	pthread_create(&t, NULL, stall_sender, &a);
	int64_t t0 = now_ns();
	uint64_t got = 0;
	while (got < STALL_RECORDS) {
		const void *recs;
		int k = rmpsc_read(c, 64, 10 * SEC_NS, &recs, NULL);
		CHECK(k > 0, "read returned %d: %s", k, rmpsc_last_error());
		CHECK_OK(rmpsc_advance(c, (size_t)k));
		got += (uint64_t)k;
	}
	int64_t took = now_ns() - t0;
	pthread_join(t, NULL);
	rmpsc_channel_release(c);
	rmpsc_channel_release(ch);
	return took;
}

static void test_linger_stall(void)
{
	int64_t off = stall_run(1, 0);
	int64_t on = stall_run(32, STALL_DELAY);
	printf("linger_stall: %d records, limit %d: %.1f ms without coalescing, %.1f ms lingering %lld ms\n",
	       STALL_RECORDS, STALL_LIMIT, off / 1e6, on / 1e6, (long long)(STALL_DELAY / 1000000));
	/* 10 batches of 4 records: each one lingers 200 ms if nobody tells the
	 * consumer that the sender waits for it (2 s); woken, it is immediate (tens of
	 * ms: the sender's work). Two delays leave a busy machine its slack. */
	CHECK(on < 2 * STALL_DELAY,
	      "the consumer lingered its whole delay per batch while the sender "
	      "waited for the pending bound: %.1f ms for %d records",
	      on / 1e6, STALL_RECORDS);
}

/* ---- group paths ---- */

static rmpsc_channel *make_groups(void)
{
	struct rmpsc_config cfg = {
		.record_size = RS, .capacity = 64, .max_producers = 2, .max_consumers = 4, .max_groups = 4
	};
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &cfg, 0));
	return ch;
}

/* A producer sends 3 records, member `a` takes and releases them; another group
 * keeps them pending. */
static rmpsc_producer *three_taken_by(rmpsc_channel *ch, rmpsc_channel *a)
{
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (uint64_t i = 0; i < 3; i++)
		send_seq(p, 0, i);
	const void *recs;
	CHECK_RC(rmpsc_read(a, 8, SEC_NS, &recs, NULL), 3);
	CHECK_OK(rmpsc_advance(a, 3));
	CHECK_RC(rmpsc_pending(ch), 3);
	return p;
}

/* Group "a" keeps up, group "b" lags with 3 records: the waiter for < 2 sleeps;
 * `drop` makes b go; the waiter must be woken by it, not by a slice's poll. */
static void lagging_group_goes(int ephemeral, const char *what)
{
	rmpsc_channel *ch = make_groups();
	rmpsc_channel *a, *b;
	CHECK_OK(rmpsc_channel_attach_fd(&a, rmpsc_channel_fd(ch), 0));
	CHECK_OK(rmpsc_channel_attach_fd(&b, rmpsc_channel_fd(ch), 0));
	CHECK_OK(rmpsc_consumer_join(a, NULL, 0)); /* the default group, made with the channel */
	CHECK_OK(rmpsc_consumer_join(b, "b", ephemeral ? RMPSC_GROUP_EPHEMERAL : 0));
	rmpsc_producer *p = three_taken_by(ch, a); /* b holds them */
	struct waiter_arg w = { ch, 2, 0, 1, 0 };
	pthread_t t;
	pthread_create(&t, NULL, waiter, &w);
	wait_blocked(&w.tid);
	uint32_t seq = progress_seq(ch);
	if (ephemeral) {
		rmpsc_consumer_leave(b);
	} else {
		rmpsc_consumer_leave(b);
		CHECK_OK(rmpsc_group_remove(ch, "b"));
	}
	CHECK(progress_seq(ch) != seq, "%s: the waiter was not woken", what);
	pthread_join(t, NULL);
	CHECK_RC(w.rc, RMPSC_OK);
	rmpsc_producer_close(p);
	rmpsc_channel_release(a);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
}

static void test_groups(void)
{
	lagging_group_goes(0, "group_remove");
	lagging_group_goes(1, "ephemeral group's last member leaves");
}

/* ---- shared_group ---- */

static void test_shared_group(void)
{
	rmpsc_channel *ch = make(RS, 16, 2, 0, 0, 2);
	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	pid_t pid = fork_child();
	if (pid == 0) {
		rmpsc_channel *c;
		if (rmpsc_channel_attach_fd(&c, rmpsc_channel_fd(ch), 0) || rmpsc_consumer_join(c, NULL, 0))
			_exit(2);
		if (write(pfd[1], "x", 1) != 1)
			_exit(3);
		for (;;)
			pause(); /* a member that takes nothing */
	}
	char x;
	CHECK(read(pfd[0], &x, 1) == 1, "the child member did not join");
	rmpsc_channel *m;
	CHECK_OK(rmpsc_channel_attach_fd(&m, rmpsc_channel_fd(ch), 0));
	CHECK_OK(rmpsc_consumer_join(m, NULL, 0));
	struct rmpsc_group_stats gs[2];
	CHECK_RC(rmpsc_group_stats(ch, gs, 2, NULL, 0, NULL), 1);
	CHECK(gs[0].live_members == 2 && !gs[0].solo, "not a shared group: %u live members, solo %u",
	      gs[0].live_members, gs[0].solo);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_seq(p, 0, 0);
	send_seq(p, 0, 1);
	struct waiter_arg w = { ch, 2, 0, 1, 0 };
	pthread_t t;
	pthread_create(&t, NULL, waiter, &w);
	wait_blocked(&w.tid);
	uint32_t seq = progress_seq(ch);
	release_one(m, 0);
	CHECK(progress_seq(ch) != seq, "shared group: the release did not wake the waiter");
	pthread_join(t, NULL);
	CHECK_RC(w.rc, RMPSC_OK);
	kill(pid, SIGKILL);
	reap(pid);
	rmpsc_producer_close(p);
	rmpsc_channel_release(m);
	rmpsc_channel_release(ch);
}

/* ---- dead_subscriber ---- */

static void test_dead_subscriber(void)
{
	rmpsc_channel *ch = make_groups();
	rmpsc_channel *a;
	CHECK_OK(rmpsc_channel_attach_fd(&a, rmpsc_channel_fd(ch), 0));
	CHECK_OK(rmpsc_consumer_join(a, NULL, 0)); /* the default group keeps up */
	pid_t pid = fork_child();
	if (pid == 0) {
		rmpsc_channel *c;
		if (rmpsc_channel_attach_fd(&c, rmpsc_channel_fd(ch), 0) ||
		    rmpsc_consumer_join(c, "sub", RMPSC_GROUP_EPHEMERAL))
			_exit(2);
		_exit(0); /* dies a member: no leave */
	}
	CHECK_RC(reap(pid), 0);
	rmpsc_producer *p = three_taken_by(ch, a); /* the dead subscriber holds them */
	int64_t t0 = now_ns();
	int rc = rmpsc_wait_pending_below(ch, 2, 2 * SEC_NS);
	int64_t took = now_ns() - t0;
	/* What a producer's wait for space does now and then: */
	CHECK(rmpsc_reclaim_dead(ch) >= 0, "reclaim_dead: %s", rmpsc_last_error());
	uint64_t after = rmpsc_pending(ch);
	printf("dead_subscriber: wait_pending_below returned %d after %.0f ms; pending after one reclaim_dead: %llu\n",
	       rc, took / 1e6, (unsigned long long)after);
	CHECK(after == 0, "reclaim_dead did not remove the dead ephemeral group (pending %llu)",
	      (unsigned long long)after);
	CHECK_RC(rc, RMPSC_OK);
	rmpsc_producer_close(p);
	rmpsc_channel_release(a);
	rmpsc_channel_release(ch);
}

/* ---- interruptible ---- */

static void on_usr1(int sig)
{
	(void)sig;
}

static void test_interruptible(void)
{
	rmpsc_channel *ch = make(RS, 16, 2, 0, 0, 1);
	rmpsc_channel *w;
	CHECK_OK(rmpsc_channel_attach_fd(&w, rmpsc_channel_fd(ch), RMPSC_OPEN_INTERRUPTIBLE));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_seq(p, 0, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	struct waiter_arg wa = { w, 1, 0, 1, 0 };
	pthread_t t;
	pthread_create(&t, NULL, waiter, &wa);
	wait_blocked(&wa.tid);
	pthread_kill(t, SIGUSR1);
	pthread_join(t, NULL);
	CHECK_RC(wa.rc, RMPSC_EINTR);
	CHECK_OK(rmpsc_wait_pending_below(ch, UINT64_MAX, 0));
	rmpsc_producer_close(p);
	rmpsc_channel_release(w);
	rmpsc_channel_release(ch);
}

static void test_stale_announcement(void)
{
	rmpsc_channel *ch = make(RS, 64, 2, 0, 0, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (uint64_t i = 0; i < 40; i++)
		send_seq(p, 0, i);
	CHECK_RC(rmpsc_wait_pending_below(ch, 4, 5 * 1000000ll), RMPSC_ETIMEDOUT);
	CHECK(__atomic_load_n(&ch->hdr->progress_waiting, __ATOMIC_ACQUIRE) == WAIT_PENDING,
	      "the timed-out sender's announcement: flag %u", ch->hdr->progress_waiting);
	int releases = 0;
	while (__atomic_load_n(&ch->hdr->progress_waiting, __ATOMIC_ACQUIRE)) {
		release_one(ch, 0);
		releases++;
		CHECK(rmpsc_pending(ch) >= 4, "the backlog fell to the limit before the flag was cleared");
		CHECK(releases <= 32, "32 releases left the stale announcement in place");
	}
	printf("stale_announcement: cleared after %d releases\n", releases);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

int main(int argc, char **argv)
{
	harness_start("test_pending_faults", 120);
	atexit(children_cleanup_at_exit);
	const char *only = argc > 1 ? argv[1] : NULL;
	if (!only || !strcmp(only, "groups"))
		test_groups();
	if (!only || !strcmp(only, "shared_group"))
		test_shared_group();
	if (!only || !strcmp(only, "dead_subscriber"))
		test_dead_subscriber();
	if (!only || !strcmp(only, "interruptible"))
		test_interruptible();
	if (!only || !strcmp(only, "stale_announcement"))
		test_stale_announcement();
	if (!only || !strcmp(only, "linger_stall"))
		test_linger_stall();
	printf("test_pending_faults: all passed\n");
	return 0;
}
