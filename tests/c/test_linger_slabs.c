/*
 * Coalescing and the slab pool. A member that lingers (waiting for a batch of
 * records before it wakes) holds back a sender that waits for slabs, since only
 * taking the records that hold them frees them: such a sender wakes the members
 * that linger on every poll of its wait, through a blocking wait and through a
 * readiness fd alike, and they stop lingering for a while (the pool, not the
 * ring, bounds that stream). Members of one group that share a batch of small
 * records keep lingering: only a sender waiting for slabs counts.
 *   rewake        a sender's later poll wakes the member that lingers again
 *   fd_linger     the wake-up ends a readiness fd's linger at the next arm
 *   group_batch   two members sharing a batch of 32 keep lingering
 */
#include <poll.h>
#include <pthread.h>

#include "children.h"
#include "handle.h"
#include "harness.h"
#include "messages.h"

struct reader {
	rmpsc_channel *ch;
	int tid;
	int reads;
	int records;
};

static void *reader(void *arg)
{
	struct reader *r = arg;
	publish_tid(&r->tid);
	while (__atomic_load_n(&r->records, __ATOMIC_ACQUIRE) < 2) {
		const void *rec;
		int n = rmpsc_read(r->ch, 16, 10 * SEC_NS, &rec, NULL);
		if (n <= 0)
			break;
		CHECK_OK(rmpsc_advance_messages(r->ch, (size_t)n));
		__atomic_add_fetch(&r->records, n, __ATOMIC_ACQ_REL);
		__atomic_add_fetch(&r->reads, 1, __ATOMIC_ACQ_REL);
	}
	return NULL;
}

struct sender {
	rmpsc_channel *ch;
	int64_t took_ns;
	int tid;
};

static void *sender(void *arg)
{
	struct sender *s = arg;
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(s->ch, &p));
	publish_tid(&s->tid);
	int64_t t0 = now_ns();
	CHECK_OK(send_tagged(p, 600, 2, 10 * SEC_NS)); /* 3 slabs of 256 */
	__atomic_store_n(&s->took_ns, now_ns() - t0, __ATOMIC_RELEASE);
	rmpsc_producer_close(p);
	return NULL;
}

static void test_rewake(void)
{
	rmpsc_channel *ch = make(64, 64, 2, 256, 8, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 32, RMPSC_COALESCE_MAX_DELAY_NS));
	rmpsc_producer *p2;
	CHECK_OK(rmpsc_producer_register(ch, &p2));
	uint32_t held[6]; /* other senders' slabs, say */
	for (int i = 0; i < 6; i++)
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &held[i]));
	CHECK_OK(send_tagged(p2, 200, 1, 0)); /* record A: 1 slab; 1 left free */
	struct sender s = { ch, -1, 0 };
	pthread_t rt, st;
	pthread_create(&st, NULL, sender, &s);
	wait_blocked(&s.tid); /* S wants 3 slabs, 1 free: its one wake found no member waiting */
	struct reader r = { ch, 0, 0, 0 };
	pthread_create(&rt, NULL, reader, &r);
	int64_t dl = now_ns() + 5 * SEC_NS;
	while (__atomic_load_n(&r.reads, __ATOMIC_ACQUIRE) < 1 && now_ns() < dl)
		usleep(100);
	CHECK(r.reads == 1, "the member did not take record A");
	wait_blocked(&r.tid); /* M lingers (read 2); S still waits: 2 free, wants 3 */
	wait_blocked(&s.tid);
	CHECK(__atomic_load_n(&s.took_ns, __ATOMIC_ACQUIRE) < 0, "the sender got its slabs already");
	CHECK_OK(send_tagged(p2, 200, 3, 0)); /* record B takes a free slab: 1 free */
	int64_t t0 = now_ns();
	CHECK_OK(rmpsc_slab_free(ch, held[0])); /* 2 free: S polls again, and needs B's slab */
	pthread_join(st, NULL);
	int64_t stall = now_ns() - t0;
	pthread_join(rt, NULL);
	CHECK(stall < 20 * MS, "the sender waited %.1f ms for a member lingering on the record that holds its slab",
	      stall / 1e6);
	for (int i = 1; i < 6; i++)
		CHECK_OK(rmpsc_slab_free(ch, held[i]));
	rmpsc_producer_close(p2);
	rmpsc_channel_release(ch);
}

/*
 * The same through a readiness fd: the sender's wake-up (a byte in the lingering
 * member's FIFO) must end the linger at the next rmpsc_ready_arm, not leave the
 * sender to wait out the whole delay (1 s here; 1 ms per pool by default).
 */
struct fd_reader {
	rmpsc_channel *ch;
	int tid;
	int got;
};

static void *fd_reader(void *arg)
{
	struct fd_reader *r = arg;
	int fd = rmpsc_ready_fd(r->ch);
	CHECK(fd >= 0, "ready_fd");
	publish_tid(&r->tid);
	r->ch->arm_fresh = 1; /* as after records were taken: this arm lingers */
	int64_t dl = now_ns() + 5 * SEC_NS;
	while (r->got < 3 && now_ns() < dl) {
		int64_t wait_ns;
		int rc = rmpsc_ready_arm(r->ch, &wait_ns);
		CHECK(rc >= 0, "ready_arm %d", rc);
		if (rc == 0) {
			struct pollfd pf = { fd, POLLIN, 0 };
			poll(&pf, 1, wait_ns ? (int)((wait_ns + 999999) / 1000000) : 1000);
			continue;
		}
		const void *rec;
		int n;
		while ((n = rmpsc_read(r->ch, 16, 0, &rec, NULL)) > 0) {
			CHECK_OK(rmpsc_advance_messages(r->ch, (size_t)n));
			r->got += n;
		}
	}
	return NULL;
}

static void test_fd_linger(void)
{
	rmpsc_channel *ch = make(64, 64, 1, 256, 8, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 32, RMPSC_COALESCE_MAX_DELAY_NS));
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	struct fd_reader r = { ch, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, fd_reader, &r);
	wait_blocked(&r.tid);
	CHECK_OK(send_tagged(p, 600, 1, 0)); /* 3 slabs each: 6 of 8 */
	CHECK_OK(send_tagged(p, 600, 2, 0));
	int64_t t0 = now_ns();
	CHECK_OK(send_tagged(p, 600, 3, 10 * SEC_NS));
	int64_t took = now_ns() - t0;
	pthread_join(t, NULL);
	CHECK(took < 100 * MS, "the sender waited %.1f ms: its wake-up did not end the fd receiver's linger", took / 1e6);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

#define GROUP_DELAY_NS 1000000000ll /* the members' linger: a read shorter than it did not time out */

struct rd {
	rmpsc_channel *ch;
	int tid;
	int n;
	uint32_t skip;
	int64_t took_ns;
};

static void *rd_main(void *arg)
{
	struct rd *r = arg;
	publish_tid(&r->tid);
	const void *rec;
	int64_t t0 = now_ns();
	r->n = rmpsc_read(r->ch, 16, 5 * SEC_NS, &rec, NULL);
	r->took_ns = now_ns() - t0;
	if (r->n > 0)
		CHECK_OK(rmpsc_advance(r->ch, (size_t)r->n));
	r->skip = r->ch->linger_skip;
	return NULL;
}

/* A member's verdict: 0 kept lingering, 10 backed off, 3 cannot tell (its linger ran out
 * before the batch came: a machine too busy for this scenario), 2 took nothing. */
static int verdict(const struct rd *r)
{
	if (r->n <= 0)
		return 2;
	if (r->took_ns >= GROUP_DELAY_NS)
		return 3;
	return r->skip ? 10 : 0;
}

/* One round: 1 when a member could tell (and kept lingering), 0 when neither could.
 * Fails when a member backed off after sharing a full batch. (The member a producer
 * wakes second may find the batch already half taken, below its wake_min, and sleep
 * out its linger: it cannot tell then.) Both
 * members join before either reads: a join changes the group's mode and wakes the
 * members, which would end a linger with nothing (and then the single-record rule
 * backs off, which is not what this tests). */
static int group_round(void)
{
	struct rmpsc_config c = { .record_size = 16, .capacity = 128, .max_producers = 1, .max_consumers = 4 };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	CHECK_OK(rmpsc_consumer_join(ch, "g", 0));
	CHECK_OK(rmpsc_consumer_coalesce(ch, 32, GROUP_DELAY_NS));
	int joined[2];
	CHECK(pipe(joined) == 0, "pipe");
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK_OK(rmpsc_consumer_join(ch, "g", 0));
		CHECK_OK(rmpsc_consumer_coalesce(ch, 32, GROUP_DELAY_NS));
		CHECK(write(joined[1], "j", 1) == 1, "write");
		struct rd r = { ch, 0, 0, 0, 0 };
		rd_main(&r);
		_exit(verdict(&r));
	}
	close(joined[1]);
	struct pollfd pf = { joined[0], POLLIN, 0 };
	char b;
	CHECK(poll(&pf, 1, 10000) == 1 && read(joined[0], &b, 1) == 1, "the other member did not join within 10 s");
	close(joined[0]);
	struct rd r = { ch, 0, 0, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, rd_main, &r);
	wait_blocked(&r.tid);
	for (int i = 0; i < 5000 && proc_state(pid) != 'S'; i++) /* the child is asleep in its read */
		usleep(1000);
	CHECK(proc_state(pid) == 'S', "the other member did not block in its read");
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	unsigned char rec[16] = { 0 };
	for (int i = 0; i < 32; i++)
		CHECK_OK(rmpsc_producer_send(p, rec, sizeof rec, 0));
	pthread_join(t, NULL);
	int mine = verdict(&r), child = reap(pid);
	CHECK(mine != 2 && child != 2, "a member took nothing (verdicts %d, %d)", mine, child);
	CHECK(mine != 10 && child != 10, "a member that shared a full batch backed off lingering (took %d in %.0f ms)",
	      r.n, r.took_ns / 1e6);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	return mine == 0 || child == 0;
}

static void test_group_shares_a_batch(void)
{
	int told = 0;
	for (int round = 0; round < 5 && !told; round++)
		told = group_round();
	CHECK(told, "5 rounds in which every member's linger ran out before the batch came: the machine is too busy");
}

int main(void)
{
	harness_start("test_linger_slabs", 60);
	atexit(children_cleanup_at_exit);
	test_rewake();
	test_fd_linger();
	test_group_shares_a_batch();
	printf("test_linger_slabs: all passed\n");
	return 0;
}
