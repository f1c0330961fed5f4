/*
 * Consumer groups under multi-process stress, with members SIGKILLed at random
 * moments. Producer processes send integrity records (producer id, sequence,
 * checksum). Three groups consume them:
 *   "work"  at-least-once, three member processes; members are killed at random
 *           (often holding a claim) and replaced;
 *   "amo"   at-most-once, two member processes, killed and replaced too;
 *   "solo"  one member process, never killed.
 * Every member counts each record it receives in shared memory, and separately the
 * deliveries not marked as redeliveries. The checks:
 *   work:  every record at least once; at most one unmarked delivery per record
 *          (a duplicate is always marked);
 *   amo:   no record twice; what is missing fits in the claims of killed members;
 *   solo:  every record exactly once, in per-producer order (checked by the member);
 *   and nothing blocks forever: every member ends with ECLOSED (closed and drained).
 */
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "harness.h"
#define CHILD_ALARM_S 100
#include "children.h"

#define MS        1000000ll
#define RS        32
#define PRODUCERS 3
#define RECORDS   60000 /* per producer */
#define MAX_TAKE  16
#define KILLS     16

enum {
	G_WORK,
	G_AMO,
	G_SOLO,
	N_GROUPS
};
static const char *g_group_names[N_GROUPS] = { "work", "amo", "solo" };
static const unsigned g_group_flags[N_GROUPS] = { 0, RMPSC_GROUP_AT_MOST_ONCE, 0 };

/* Shared with every child: deliveries per group, producer and sequence. */
struct tally {
	uint8_t seen[N_GROUPS][PRODUCERS][RECORDS];
	uint8_t unmarked[N_GROUPS][PRODUCERS][RECORDS];
};
static struct tally *g_tally;

static void member(rmpsc_channel *parent, int g, uint64_t seed)
{
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_attach_fd(&ch, rmpsc_channel_fd(parent), 0));
	CHECK_OK(rmpsc_consumer_join(ch, g_group_names[g], g_group_flags[g]));
	uint64_t next[PRODUCERS] = { 0 };
	for (;;) {
		const void *ptr;
		size_t want = 1 + rng_next(&seed) % MAX_TAKE;
		int n = rmpsc_read(ch, want, 200 * MS, &ptr, NULL);
		if (n == RMPSC_ETIMEDOUT)
			continue;
		if (n == RMPSC_ECLOSED)
			break;
		CHECK(n > 0, "%s member: read %d (%s)", g_group_names[g], n, rmpsc_last_error());
		uint32_t d = rmpsc_deliveries(ch);
		CHECK(d >= 1, "deliveries %u with a span open", d);
		CHECK(g != G_AMO || d == 1, "at-most-once group: a span delivered %u times", d);
		for (int i = 0; i < n; i++) {
			uint32_t id;
			uint64_t seq;
			CHECK(rec_check((const unsigned char *)ptr + (size_t)i * RS, RS, &id, &seq) == 0,
			      "%s: corrupt record", g_group_names[g]);
			CHECK(id < PRODUCERS && seq < RECORDS, "record (%u, %llu) out of range", id,
			      (unsigned long long)seq);
			if (g == G_SOLO) {
				CHECK(seq == next[id], "solo: producer %u record %llu after %llu", id,
				      (unsigned long long)seq, (unsigned long long)next[id]);
				next[id]++;
			}
			__atomic_fetch_add(&g_tally->seen[g][id][seq], 1, __ATOMIC_RELAXED);
			if (d == 1)
				__atomic_fetch_add(&g_tally->unmarked[g][id][seq], 1, __ATOMIC_RELAXED);
		}
		if (rng_next(&seed) % 2 == 0) { /* hold the claim a while: kills land inside it */
			int64_t until = now_ns() + 50000;
			while (now_ns() < until)
				;
		}
		CHECK_OK(rmpsc_advance(ch, (size_t)n));
	}
	if (g == G_SOLO)
		for (int p = 0; p < PRODUCERS; p++)
			CHECK(next[p] == RECORDS, "solo: producer %d delivered %llu of %d", p,
			      (unsigned long long)next[p], RECORDS);
	rmpsc_channel_release(ch);
}

static void producer(rmpsc_channel *ch, uint32_t id)
{
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	unsigned char r[RS];
	for (uint64_t s = 0; s < RECORDS; s++) {
		rec_fill(r, RS, id, s);
		CHECK_OK(rmpsc_producer_send(p, r, RS, 20000 * MS));
	}
	rmpsc_producer_close(p);
}

struct slot {
	pid_t pid;
	int group;
};

static pid_t spawn_member(rmpsc_channel *ch, int g, uint64_t seed)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		member(ch, g, seed);
		_exit(0);
	}
	return pid;
}

int main(void)
{
	harness_start("test_proc_groups", 120);
	atexit(children_kill_all);
	g_tally = mmap(NULL, sizeof *g_tally, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(g_tally != MAP_FAILED, "mmap");
	struct rmpsc_config c = {
		.record_size = RS, .capacity = 64, .max_producers = PRODUCERS, .max_consumers = 16, .max_groups = 4
	};
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	CHECK_OK(rmpsc_group_remove(ch, NULL));
	/* The groups exist (durable) before the first record. */
	for (int g = 0; g < N_GROUPS; g++) {
		CHECK_OK(rmpsc_consumer_join(ch, g_group_names[g], g_group_flags[g]));
		rmpsc_consumer_leave(ch);
	}
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	struct slot members[6] = { { 0, G_WORK }, { 0, G_WORK }, { 0, G_WORK },
				   { 0, G_AMO },  { 0, G_AMO },  { 0, G_SOLO } };
	for (int i = 0; i < 6; i++)
		members[i].pid = spawn_member(ch, members[i].group, seed + (uint64_t)i);
	pid_t prods[PRODUCERS];
	for (uint32_t i = 0; i < PRODUCERS; i++) {
		prods[i] = fork_child();
		if (prods[i] == 0) {
			producer(ch, i);
			_exit(0);
		}
	}
	/* Kill members of "work" and "amo" at random moments, and replace them. */
	int kills[N_GROUPS] = { 0 };
	for (int k = 0; k < KILLS; k++) {
		struct timespec ts = { 0, (long)(5 + rng_next(&seed) % 40) * MS };
		nanosleep(&ts, NULL);
		int i = (int)(rng_next(&seed) % 5); /* never the solo member */
		kill(members[i].pid, SIGKILL);
		int rc = reap(members[i].pid);
		CHECK(rc == 128 + SIGKILL || rc == 0, "member exited with %d", rc);
		kills[members[i].group]++;
		members[i].pid = spawn_member(ch, members[i].group, rng_next(&seed));
	}
	for (uint32_t i = 0; i < PRODUCERS; i++)
		CHECK_RC(reap(prods[i]), 0);
	/* Claims of the last killed members go back now rather than at the next
	 * periodic check; then close: members drain and end with ECLOSED. */
	rmpsc_reclaim_dead(ch);
	rmpsc_channel_close(ch);
	for (int i = 0; i < 6; i++)
		CHECK_RC(reap(members[i].pid), 0);

	uint64_t dup_work = 0, lost_amo = 0;
	for (int p = 0; p < PRODUCERS; p++)
		for (int s = 0; s < RECORDS; s++) {
			CHECK(g_tally->seen[G_WORK][p][s] >= 1, "work: record (%d, %d) lost", p, s);
			CHECK(g_tally->unmarked[G_WORK][p][s] <= 1, "work: record (%d, %d) delivered twice unmarked", p,
			      s);
			dup_work += g_tally->seen[G_WORK][p][s] - 1u;
			CHECK(g_tally->seen[G_AMO][p][s] <= 1, "amo: record (%d, %d) delivered twice", p, s);
			lost_amo += g_tally->seen[G_AMO][p][s] == 0;
			CHECK(g_tally->seen[G_SOLO][p][s] == 1, "solo: record (%d, %d) seen %d times", p, s,
			      g_tally->seen[G_SOLO][p][s]);
		}
	CHECK(lost_amo <= (uint64_t)kills[G_AMO] * MAX_TAKE, "amo: %llu records missing, more than %d kills' claims",
	      (unsigned long long)lost_amo, kills[G_AMO]);
	struct rmpsc_stats st;
	rmpsc_stats(ch, &st, NULL, 0);
	CHECK(st.committed == (uint64_t)PRODUCERS * RECORDS && st.pending == 0, "committed %llu pending %llu",
	      (unsigned long long)st.committed, (unsigned long long)st.pending);
	printf("groups under kill -9: %d records x %d producers; %d kills in work (%llu redelivered), %d in amo "
	       "(%llu dropped); solo in order; %u members recovered\n",
	       RECORDS, PRODUCERS, kills[G_WORK], (unsigned long long)dup_work, kills[G_AMO],
	       (unsigned long long)lost_amo, st.recovered_members);
	rmpsc_channel_release(ch);
	munmap(g_tally, sizeof *g_tally);
	return 0;
}
