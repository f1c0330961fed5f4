/*
 * Consumer groups against the faults three adversarial reviews found: one case per
 * finding, each asserting what the contract (ringmpsc.h) and docs/ARCHITECTURE.md
 * 2.7 promise, and each failing on the code it was found in (the first 18 on
 * 628071e, before the group lock and settle() replaced per-step counters; 7 on
 * 2401b1b; 4 on bb217a1).
 *
 * Crash points that cannot be hit by timing alone are emulated the way the brief
 * allows: raw stores into the mapped region that a process would have made just
 * before it was SIGKILLed (or SIGSTOPped), then the kill. The region accessors of
 * group.h are used for those stores (the test links the library's sources).
 *
 * Every case runs in a child process of its own (a crash or hang of one does not
 * hide the others); `test_groups_faults NAME` runs one case. go_solo_race and
 * join_wrong_group are races run for a fixed time (RACE_MS, WRONG_MS). "The brief"
 * above: only the public API, forked processes, signals and raw region stores.
 */
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "children.h"
#include "group.h"
#include "harness.h"

#define MS  1000000ll
#define SEC 1000000000ll

static rmpsc_channel *make(uint32_t consumers, uint32_t groups, uint32_t cap, uint32_t producers)
{
	struct rmpsc_config c = { .record_size = 8,
				  .capacity = cap,
				  .max_producers = producers,
				  .max_consumers = consumers,
				  .max_groups = groups };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	return ch;
}

static rmpsc_channel *handle_of(rmpsc_channel *ch)
{
	rmpsc_channel *h;
	CHECK_OK(rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(ch), 0));
	return h;
}

static void send_range(rmpsc_producer *p, uint64_t from, uint64_t to)
{
	for (uint64_t v = from; v < to; v++)
		CHECK_OK(rmpsc_producer_send(p, &v, 8, SEC));
}

/* The member place a process holds (any state but FREE), or -1. */
static int place_of(rmpsc_channel *ch, pid_t pid)
{
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		if (load_acquire(&mb->owner) != MEMBER_FREE && load_relaxed(&mb->pid) == (uint32_t)pid)
			return (int)e;
	}
	return -1;
}

static int group_index(rmpsc_channel *ch, const char *name)
{
	for (uint32_t g = 0; g < ch->L.max_groups; g++) {
		struct group *grp = group_at(ch, g);
		if (owner_state(load_acquire(&grp->state)) == GROUP_ACTIVE && !strcmp(grp->name, name))
			return (int)g;
	}
	return -1;
}

static uint32_t fenced(rmpsc_channel *ch)
{
	struct rmpsc_stats s;
	CHECK_OK(rmpsc_stats(ch, &s, NULL, 0));
	return s.fenced_rings;
}

/* A child that joins `group`, reads up to `take` records (left open when take > 0),
 * reports over its link, and sleeps until killed. */
static pid_t member_child(rmpsc_channel *ch, const char *group, unsigned flags, int take, struct link *l)
{
	pid_t kid = fork_linked(l);
	if (kid == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, group, flags));
		int64_t n = 0;
		if (take > 0) {
			const void *ptr;
			n = rmpsc_read(h, (size_t)take, 5 * SEC, &ptr, NULL);
			CHECK(n >= 1, "child read %lld (%s)", (long long)n, rmpsc_last_error());
		} else if (take < 0) {
			uint64_t v;
			rmpsc_recv(h, &v, 1, 0); /* a first call: converts a solo member if any */
		}
		CHECK(write(l->wr, &n, 8) == 8, "report");
		for (;;)
			pause();
	}
	int64_t n;
	CHECK(read(l->rd, &n, 8) == 8, "member child did not report");
	return kid;
}

/* Drain what `ch` can receive now (timeout per call); returns a bitmap of values < 64
 * and the count. */
static int drain(rmpsc_channel *ch, uint64_t *seen, int64_t timeout)
{
	int got = 0;
	for (;;) {
		uint64_t v;
		int n = rmpsc_recv(ch, &v, 1, timeout);
		if (n != 1)
			break;
		if (v < 64)
			*seen |= 1ull << v;
		got++;
	}
	return got;
}

static void kill_and_reap(pid_t kid)
{
	kill(kid, SIGKILL);
	reap(kid);
}

/* A call on another thread that must come back within `limit_ns`. */
struct timed_call {
	rmpsc_channel *ch;
	int64_t timeout_ns;
	int rc;
	volatile int done;
};

static void *timed_recv(void *arg)
{
	struct timed_call *t = arg;
	uint64_t v;
	t->rc = rmpsc_recv(t->ch, &v, 1, t->timeout_ns);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Start the recv; 1 if it came back within limit_ns. */
static int recv_returns_within(pthread_t *th, struct timed_call *t, int64_t limit_ns)
{
	CHECK(pthread_create(th, NULL, timed_recv, t) == 0, "pthread_create");
	int64_t until = now_ns() + limit_ns;
	while (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE) && now_ns() < until)
		usleep(1000);
	return __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------------------------ */
/* F1: a member killed between clearing its claim and recompute_head strands the head;
 * the survivor goes SOLO and fences the ring (the producer's records are lost for
 * every group). */
static void case_dead_between_clear_and_recompute(void)
{
	rmpsc_channel *ch = make(4, 1, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY); /* we join: solo */
	send_range(p, 0, 6);
	struct link l;
	pid_t kid = member_child(ch, NULL, 0, 3, &l); /* ends our solo mode; claim [0,3) open */
	int e = place_of(ch, kid);
	CHECK(e >= 0, "child's place");
	/* The child releases its whole claim (release_span: claim = 0 ...) and is killed
	 * before `smp_mb(); rmpsc__recompute_head()`. */
	store_release(&member_at(ch, (uint32_t)e)->claim, 0);
	kill_and_reap(kid);
	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	int got = 0;
	for (int i = 0; i < 10; i++) {
		int n = rmpsc_recv(ch, &v, 1, 0);
		if (n == RMPSC_EEMPTY)
			break;
		CHECK(n == 1, "survivor recv: %d (%s); fenced rings %u", n, rmpsc_last_error(), fenced(ch));
		got++;
	}
	CHECK(got == 3 && fenced(ch) == 0, "survivor got %d of records 3..5, fenced rings %u", got, fenced(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* F2: a member killed in the middle of a partial release (claim_start moved, claim
 * word not yet) leaves a claim record that reaches past its claim: the adopter is
 * served records beyond the cursor, even beyond the tail (never committed). */
static void case_dead_mid_partial_release(void)
{
	rmpsc_channel *ch = make(4, 1, 8, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	send_range(p, 100, 104); /* positions 0..3; tail 4 */
	struct link l;
	pid_t kid = member_child(ch, NULL, 0, 4, &l); /* claim [0,4) */
	int e = place_of(ch, kid);
	struct member *mb = member_at(ch, (uint32_t)e);
	CHECK(claim_left(load_acquire(&mb->claim), load_relaxed(&mb->claim_start)) == 4, "child's claim of 4");
	/* rmpsc_advance(h, 2) is one store of claim_start; killed right after it. */
	store_relaxed(&mb->claim_start, load_relaxed(&mb->claim_start) + 2);
	kill_and_reap(kid);
	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	const void *ptr;
	int n = rmpsc_read(ch, 8, 0, &ptr, NULL);
	CHECK(n > 0, "adopter read %d (%s)", n, rmpsc_last_error());
	const uint64_t *r = ptr;
	CHECK(n == 2 && r[0] == 102 && r[1] == 103,
	      "adopter was served %d records (first %llu, last %llu): the claim left is 102..103; tail is 104", n,
	      (unsigned long long)r[0], (unsigned long long)r[n - 1]);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* F3: a process with two handles in one group, used one after the other from one
 * thread (the contract allows it): a read left open on A, then a read on B fences
 * the ring, because B's solo_open is per handle. Default config (one consumer). */
static void case_two_handles_fence(void)
{
	rmpsc_channel *ch = make(1, 1, 16, 1);
	rmpsc_channel *a = handle_of(ch), *b = handle_of(ch);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	uint64_t v;
	CHECK_RC(rmpsc_recv(b, &v, 1, 0), 1); /* b joins: record 0 */
	const void *ptr;
	CHECK_RC(rmpsc_read(a, 1, 0, &ptr, NULL), 1); /* a shares b's place: record 1, left open */
	int n = rmpsc_recv(b, &v, 1, 0);
	CHECK(n == 1 && fenced(ch) == 0, "second handle: recv %d (%s), fenced rings %u", n, rmpsc_last_error(),
	      fenced(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(a);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
}

/* F4: the same, the other way round: B serves A's open read (B joined after it)
 * and releases it; A's stale solo_open then makes every later call of A return
 * "empty" for ever, records waiting. */
static void case_two_handles_blind(void)
{
	rmpsc_channel *ch = make(1, 1, 16, 1);
	rmpsc_channel *a = handle_of(ch), *b = handle_of(ch);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	const void *ptr;
	CHECK_RC(rmpsc_read(a, 1, 0, &ptr, NULL), 1); /* record 0, left open */
	uint64_t v;
	CHECK_RC(rmpsc_recv(b, &v, 1, 0), 1); /* b joins now: serves a's open claim, releases it */
	int n = rmpsc_recv(a, &v, 1, 100 * MS);
	CHECK(n == 1, "handle a: recv %d (%s) with records 1..3 waiting", n, rmpsc_last_error());
	rmpsc_producer_close(p);
	rmpsc_channel_release(a);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
}

/* F5: an orphan adopted through handle A of a process stays ADOPTING(this live
 * process) when A is released while handle B keeps the membership: its records
 * are never delivered, and the group's head on that ring never passes them. */
static void case_adopted_orphan_stuck(void)
{
	rmpsc_channel *ch = make(4, 1, 8, 1);
	rmpsc_channel *a = handle_of(ch), *b = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(a, NULL, 0));
	CHECK_OK(rmpsc_consumer_join(b, NULL, 0)); /* shares a's place */
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	/* A child takes a claim and leaves with it open: an orphan. */
	struct link l;
	pid_t kid = fork_linked(&l);
	if (kid == 0) {
		rmpsc_channel *h = handle_of(ch);
		const void *ptr;
		int n = rmpsc_read(h, 2, 5 * SEC, &ptr, NULL);
		CHECK(n >= 1, "child read %d (%s)", n, rmpsc_last_error());
		rmpsc_consumer_leave(h);
		int64_t r = n;
		CHECK(write(l.wr, &r, 8) == 8, "report");
		_exit(0);
	}
	int64_t orphaned;
	CHECK(read(l.rd, &orphaned, 8) == 8, "child report");
	CHECK_RC(reap(kid), 0);
	const void *ptr;
	int n = rmpsc_read(a, 8, 0, &ptr, NULL); /* adopts the orphan */
	CHECK(n == (int)orphaned, "a adopted %d, the orphan had %lld", n, (long long)orphaned);
	rmpsc_channel_release(a); /* not advanced: the span must go to a member again */
	int seen[4] = { 0 }, got = 0;
	for (int tries = 0; tries < 50 && got < 4; tries++) {
		uint64_t v;
		int k = rmpsc_recv(b, &v, 1, 10 * MS);
		if (k == 1 && v < 4 && !seen[v]) {
			seen[v] = 1;
			got++;
		}
		rmpsc_reclaim_dead(b);
	}
	CHECK(got == 4, "handle b received %d of the 4 records (0..%lld held by the released handle a)", got,
	      (long long)orphaned - 1);
	rmpsc_producer_close(p);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
}

/* F6: a member killed between freeing its place (CAS owner -> FREE) and count_down
 * leaves the count one high for ever: an ephemeral group is never removed, its head
 * holds producers back, and rmpsc_group_remove refuses ("has a member"). */
static void case_count_drift(void)
{
	rmpsc_channel *ch = make(4, 2, 4, 1);
	CHECK_OK(rmpsc_group_remove(ch, NULL));
	struct link l;
	pid_t kid = member_child(ch, "sub", RMPSC_GROUP_EPHEMERAL, 0, &l);
	int e = place_of(ch, kid);
	/* The child leaves: drop_place's CAS owner -> FREE done, killed before count_down. */
	store_release(&member_at(ch, (uint32_t)e)->owner, (uint64_t)MEMBER_FREE);
	kill_and_reap(kid);
	rmpsc_reclaim_dead(ch);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	uint64_t v = 4;
	int rc = rmpsc_producer_send(p, &v, 8, 300 * MS);
	int rm = rmpsc_group_remove(ch, "sub");
	CHECK(rc == RMPSC_OK && group_index(ch, "sub") < 0,
	      "ephemeral group with no member place left: send %d (%s), still listed %d, group_remove %d (%s)", rc,
	      rmpsc_strerror(rc), group_index(ch, "sub") >= 0, rm, rm ? rmpsc_last_error() : "ok");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* F7: a member leaving with a read open, killed between CAS owner -> ORPHAN and
 * orphans += 1: the orphan counter is one low for ever, adopt_orphan never looks,
 * and the live members reach "closed and drained" without the orphan's records. */
static void case_orphan_counter_drift(void)
{
	rmpsc_channel *ch = make(4, 1, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	send_range(p, 0, 6);
	struct link l;
	pid_t kid = member_child(ch, NULL, 0, 3, &l); /* claim [0,3) */
	int e = place_of(ch, kid);
	struct member *mb = member_at(ch, (uint32_t)e);
	store_relaxed(&mb->deliveries, load_relaxed(&mb->deliveries) - 1); /* leave_place */
	store_release(&mb->owner, (uint64_t)MEMBER_ORPHAN);                /* orphan_or_drop's CAS */
	kill_and_reap(kid);
	rmpsc_producer_close(p);
	rmpsc_channel_close(ch);
	int got = 0, n;
	while ((n = rmpsc_recv(ch, &v, 1, SEC)) == 1)
		got++;
	CHECK(got == 6, "the member got %d of 6 records before %d (%s); the orphan's 3 were never adopted", got, n,
	      rmpsc_strerror(n));
	rmpsc_channel_release(ch);
}

/* F8: a live member stopped (SIGSTOP) while it holds a ring's claim lock makes a
 * peer's rmpsc_recv spin at 100% CPU for ever, whatever its timeout. */
static void case_stopped_lock_holder(void)
{
	rmpsc_channel *ch = make(4, 1, 16, 1);
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	struct link l;
	pid_t kid = member_child(ch, NULL, 0, -1, &l); /* joins; its first call makes the group SHARED */
	int e = place_of(ch, kid);
	kill(kid, SIGSTOP);
	/* It was stopped in shared_sweep between CAS lock 0 -> e+1 and lock = 0. */
	store_release(&gpos_at(ch, 0, 0)->lock, (uint64_t)e + 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	pthread_t th;
	struct timed_call t = { ch, 100 * MS, 0, 0 };
	int ok = recv_returns_within(&th, &t, 3 * SEC);
	kill_and_reap(kid); /* dead now: the spinner's recovery frees the lock */
	pthread_join(th, NULL);
	CHECK(ok, "rmpsc_recv(timeout 100 ms) still running after 3 s (a stopped lock holder)");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* F9: the same with the group's lock: a joiner stopped holding it (inside the
 * conversion of the solo member) must not make the solo member's next call (even a
 * poll, timeout 0) spin for ever. */
static void case_stopped_converter(void)
{
	rmpsc_channel *ch = make(4, 1, 16, 1);
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY); /* solo */
	struct link l;
	pid_t kid = member_child(ch, NULL, 0, 0, &l); /* joins only: PENDING(us) */
	int e = place_of(ch, kid);
	uint64_t m = load_acquire(&group_at(ch, 0)->mode);
	CHECK(mode_kind(m) == MODE_PENDING, "pending");
	kill(kid, SIGSTOP);
	/* It was stopped in convert_solo, holding the group's lock. */
	store_release(&group_at(ch, 0)->lock, owner_id(load_acquire(&member_at(ch, (uint32_t)e)->owner)));
	pthread_t th;
	struct timed_call t = { ch, 0, 0, 0 };
	int ok = recv_returns_within(&th, &t, 3 * SEC);
	kill_and_reap(kid);
	pthread_join(th, NULL);
	CHECK(ok, "rmpsc_recv(timeout 0) still running after 3 s (a stopped lock holder)");
	rmpsc_channel_release(ch);
}

/* F10: a place freed after its holder died inside a SOLO take keeps busy = 1; the
 * next process to take that place (take_free_place does not clear it) blocks every
 * joiner for as long as it stays idle, though it is not inside a take. */
static void case_stale_busy(void)
{
	rmpsc_channel *ch = make(4, 1, 16, 1);
	struct link l;
	pid_t kid = member_child(ch, NULL, 0, -1, &l); /* solo member of place 0 */
	int e = place_of(ch, kid);
	store_relaxed(&member_at(ch, (uint32_t)e)->busy, 1); /* killed inside solo_take */
	kill_and_reap(kid);
	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0)); /* we take the freed place and stay idle */
	CHECK(place_of(ch, getpid()) == e, "we took place %d", place_of(ch, getpid()));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	struct link j;
	pid_t joiner = fork_linked(&j);
	if (joiner == 0) {
		rmpsc_channel *h = handle_of(ch);
		uint64_t v;
		int64_t n = rmpsc_recv(h, &v, 1, SEC);
		CHECK(write(j.wr, &n, 8) == 8, "report");
		_exit(0);
	}
	int64_t n;
	CHECK(read(j.rd, &n, 8) == 8, "joiner report");
	reap(joiner);
	CHECK(n == 1, "joiner recv %lld (%s) while the solo member is idle, not inside a take", (long long)n,
	      rmpsc_strerror((int)n));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* F11: hostile region: the solo member index of the mode word is used as a member
 * index unchecked (rmpsc__solo_end, convert_solo): out-of-bounds read and write. */
static void case_hostile_mode_solo(void)
{
	rmpsc_channel *ch = make(2, 1, 16, 1);
	struct group *grp = group_at(ch, 0);
	store_release(&grp->mode, mode_make(load_acquire(&grp->mode), MODE_PENDING, 60000, 1));
	pid_t kid = fork_child();
	if (kid == 0) {
		uint64_t v;
		int n = rmpsc_recv(ch, &v, 1, 0);
		if (n != RMPSC_ECORRUPT)
			fprintf(stderr, "  recv returned %d (%s), not ECORRUPT: member 60000 was read and written\n", n,
				rmpsc_strerror(n));
		_exit(n == RMPSC_ECORRUPT ? 0 : 2);
	}
	int rc = reap(kid);
	CHECK(rc == 0, "recv on a region whose mode names member 60000 (of 2): child ended with %s%d",
	      rc > 128 ? "signal " : "exit ", rc > 128 ? rc - 128 : rc);
	rmpsc_channel_release(ch);
}

/* F12: hostile region: the ring of a dead member's claim word is used unchecked by
 * recovery (drop_place -> rmpsc__recompute_head -> raise_head CAS, wake_producer). */
static void case_hostile_claim_slot(void)
{
	rmpsc_channel *ch = make(4, 2, 16, 1);
	struct link l;
	pid_t kid = member_child(ch, "amo", RMPSC_GROUP_AT_MOST_ONCE, 0, &l);
	int e = place_of(ch, kid), g = group_index(ch, "amo");
	struct group *grp = group_at(ch, (uint32_t)g);
	store_release(&grp->mode, mode_make(load_acquire(&grp->mode), MODE_SHARED, 0, 1));
	struct member *mb = member_at(ch, (uint32_t)e);
	store_relaxed(&mb->claim_start, 0);
	store_release(&mb->claim, claim_word(0xffffu, 1));
	kill_and_reap(kid);
	pid_t r = fork_child();
	if (r == 0) {
		rmpsc_reclaim_dead(ch);
		_exit(0);
	}
	int rc = reap(r);
	CHECK(rc == 0, "reclaim_dead over a claim naming ring 65535 (of 1): ended with %s%d",
	      rc > 128 ? "signal " : "exit ", rc > 128 ? rc - 128 : rc);
	rmpsc_channel_release(ch);
}

/* F13: a remover killed between mode -> REMOVED and state -> FREE (count_down /
 * rmpsc_group_remove then remove_group) leaks the group place for good. */
static void case_removed_place_leak(void)
{
	rmpsc_channel *ch = make(4, 2, 16, 1);
	rmpsc_channel *h = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(h, "sub", 0));
	rmpsc_consumer_leave(h);
	int g = group_index(ch, "sub");
	struct group *grp = group_at(ch, (uint32_t)g);
	store_release(&grp->mode, mode_make(load_acquire(&grp->mode), MODE_REMOVED, 0, 0));
	rmpsc_reclaim_dead(ch);
	int rc = rmpsc_consumer_join(h, "other", 0);
	CHECK(rc == RMPSC_OK, "join a new group after a removal cut short: %d (%s)", rc, rmpsc_last_error());
	rmpsc_channel_release(h);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------------ */
/* F14: shared_take's go_solo path runs solo_take (plain cursor store) outside the
 * busy bracket. A joiner that ends the new SOLO mode meanwhile sees busy = 0,
 * records no claim, and the group's head then passes the solo member's open span
 * (or both take the same records). Probabilistic: many rings make solo_take's scan
 * (and so the window) long; a joiner toggles in and out. */
#define RACE_RINGS 1024
#define RACE_MS    2500

struct race_shared {
	volatile int stop;
	uint64_t violations, overwritten, dups, rounds;
	uint8_t seen[1u << 20];
};

static void case_go_solo_race(void)
{
	struct rmpsc_config c = { .record_size = 8, .capacity = 64, .max_producers = RACE_RINGS, .max_consumers = 4 };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	struct race_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED, "mmap");
	rmpsc_producer *ps[RACE_RINGS];
	for (int i = 0; i < RACE_RINGS; i++)
		CHECK_OK(rmpsc_producer_register(ch, &ps[i])); /* slot_hw = 1024: every sweep visits them */
	rmpsc_producer_close(ps[0]); /* slot 0 for the producer child (a handle does not cross fork) */
	uint64_t start = ch->L.start_position;
	/* producer: ring 0 only, values = sequence numbers */
	pid_t prod = fork_child();
	if (prod == 0) {
		alarm(RACE_MS / 1000 + 10);
		rmpsc_producer *p0;
		CHECK_OK(rmpsc_producer_register(ch, &p0));
		CHECK(rmpsc_producer_slot(p0) == 0, "producer slot %u", rmpsc_producer_slot(p0));
		for (uint64_t v = 0; v < (1u << 20) && !sh->stop; v++)
			if (rmpsc_producer_send(p0, &v, 8, 100 * MS) != RMPSC_OK)
				v--;
		_exit(0);
	}
	/* joiner: in, take what it can, out, again */
	pid_t joiner = fork_child();
	if (joiner == 0) {
		alarm(RACE_MS / 1000 + 10);
		rmpsc_channel *h = handle_of(ch);
		while (!sh->stop) {
			if (rmpsc_consumer_join(h, NULL, 0) != RMPSC_OK)
				continue;
			uint64_t v[4];
			int n = rmpsc_recv(h, v, 4, 0);
			for (int i = 0; i < n; i++)
				if (__atomic_fetch_add(&sh->seen[v[i] & 0xfffff], 1, __ATOMIC_RELAXED))
					__atomic_fetch_add(&sh->dups, 1, __ATOMIC_RELAXED);
			rmpsc_consumer_leave(h);
		}
		_exit(0);
	}
	/* the would-be solo member: reads one record, checks the group's head did not
	 * pass it while open, advances */
	int64_t until = now_ns() + RACE_MS * MS;
	while (now_ns() < until) {
		const void *ptr;
		uint32_t slot;
		int n = rmpsc_read(ch, 1, 10 * MS, &ptr, &slot);
		if (n != 1)
			continue;
		uint64_t v = *(const uint64_t *)ptr;
		if (__atomic_fetch_add(&sh->seen[v & 0xfffff], 1, __ATOMIC_RELAXED))
			__atomic_fetch_add(&sh->dups, 1, __ATOMIC_RELAXED);
		for (volatile int spin = 0; spin < 20000; spin++)
			; /* the joiner takes and releases meanwhile */
		uint64_t head = load_acquire(&gpos_at(ch, 0, slot)->head);
		if (slot == 0 && (int64_t)(head - (start + v)) > 0)
			sh->violations++;
		if (*(const volatile uint64_t *)ptr != v)
			sh->overwritten++; /* the producer reused the slot under our open read */
		rmpsc_advance(ch, 1);
		sh->rounds++;
	}
	sh->stop = 1;
	reap(prod);
	reap(joiner);
	uint64_t viol = sh->violations, over = sh->overwritten, dups = sh->dups, rounds = sh->rounds;
	munmap(sh, sizeof *sh);
	CHECK(viol == 0 && over == 0 && dups == 0,
	      "in %llu reads: the group's head passed a span still open %llu times (record overwritten under the "
	      "open read %llu times); %llu records delivered twice unmarked",
	      (unsigned long long)rounds, (unsigned long long)viol, (unsigned long long)over, (unsigned long long)dups);
	printf("  (%llu reads, no violation seen)\n", (unsigned long long)rounds);
	for (int i = 1; i < RACE_RINGS; i++)
		rmpsc_producer_close(ps[i]);
	rmpsc_channel_release(ch);
}

/* F15: a joiner that found group "sub" at place g, when "sub" is removed and another
 * group created at g before it reads the mode word's generation, joins that other
 * group (nothing compares the name again). Probabilistic. */
#define WRONG_MS 2500

static void case_join_wrong_group(void)
{
	struct rmpsc_config c = {
		.record_size = 8, .capacity = 16, .max_producers = 1, .max_consumers = 8, .max_groups = 2
	};
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	CHECK_OK(rmpsc_group_remove(ch, NULL));
	uint64_t *wrong = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(wrong != MAP_FAILED, "mmap");
	const char *names[3] = { "sub", "sub", "other" };
	pid_t kids[3];
	for (int k = 0; k < 3; k++) {
		kids[k] = fork_child();
		if (kids[k] == 0) {
			alarm(WRONG_MS / 1000 + 20);
			rmpsc_channel *h = handle_of(ch);
			int64_t until = now_ns() + WRONG_MS * MS;
			while (now_ns() < until) {
				if (rmpsc_consumer_join(h, names[k], RMPSC_GROUP_EPHEMERAL) != RMPSC_OK)
					continue;
				const char *in = rmpsc_consumer_group(h);
				if (strcmp(in, names[k]))
					__atomic_fetch_add(wrong, 1, __ATOMIC_RELAXED);
				__atomic_fetch_add(wrong + 1, 1, __ATOMIC_RELAXED);
				rmpsc_consumer_leave(h);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < 3; k++)
		CHECK_RC(reap(kids[k]), 0);
	uint64_t bad = wrong[0], joins = wrong[1];
	munmap(wrong, 4096);
	CHECK(bad == 0, "%llu of %llu joins ended in a group of another name", (unsigned long long)bad,
	      (unsigned long long)joins);
	printf("  (%llu joins, none in the wrong group)\n", (unsigned long long)joins);
	rmpsc_channel_release(ch);
}

/* F16: API misuse that fails (a too-long name, unknown flags, flags that differ
 * from the group's) still leaves the group first: the membership is lost, an open
 * read is handed on, and an ephemeral group whose last member this was is removed. */
static void case_bad_join_leaves_first(void)
{
	rmpsc_channel *ch = make(4, 2, 16, 1);
	CHECK_OK(rmpsc_group_remove(ch, NULL));
	CHECK_OK(rmpsc_consumer_join(ch, "sub", RMPSC_GROUP_EPHEMERAL));
	CHECK_RC(rmpsc_consumer_join(ch, "sub", 0x80), RMPSC_EINVAL);
	CHECK(rmpsc_consumer_group(ch) && group_index(ch, "sub") >= 0,
	      "a join refused for its flags left the group (member of %s; \"sub\" %s)",
	      rmpsc_consumer_group(ch) ? rmpsc_consumer_group(ch) : "none",
	      group_index(ch, "sub") >= 0 ? "exists" : "was removed");
	rmpsc_channel_release(ch);
}

/* F17: a joiner killed in take_free_place after its CAS owner FREE -> ACTIVE and
 * before its CAS on the mode word (never counted in) is recovered like a member:
 * drop_place -> count_down takes one from the count. The count drifts low: here a
 * group of two live members reads count 1, one goes SOLO while the other still
 * claims under locks, and the ring is fenced (or records go twice). */
static void case_half_joiner_count_low(void)
{
	rmpsc_channel *ch = make(8, 1, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY); /* P: solo */
	struct link lq, lk;
	pid_t q = fork_linked(&lq);
	if (q == 0) { /* Q: a live member that reads when told */
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		rmpsc_recv(h, &v, 1, 0);
		int64_t r = 0;
		CHECK(write(lq.wr, &r, 8) == 8, "report");
		while (read(lq.rd, &r, 8) == 8) {
			r = rmpsc_recv(h, &v, 1, 0);
			int64_t out[2] = { r, (int64_t)v };
			CHECK(write(lq.wr, out, 16) == 16, "report");
		}
		_exit(0);
	}
	int64_t r;
	CHECK(read(lq.rd, &r, 8) == 8, "q joined");
	pid_t k = member_child(ch, NULL, 0, 0, &lk); /* K: its identity serves the half-joiner */
	int ek = place_of(ch, k);
	uint64_t id_k = owner_id(load_acquire(&member_at(ch, (uint32_t)ek)->owner));
	/* A place K took in take_free_place (owner, claim, pid, group) before it counted in. */
	int fake = -1;
	for (uint32_t e = 0; e < ch->L.max_consumers && fake < 0; e++)
		if (load_acquire(&member_at(ch, e)->owner) == MEMBER_FREE)
			fake = (int)e;
	struct member *fb = member_at(ch, (uint32_t)fake);
	store_relaxed(&fb->claim, 0);
	store_relaxed(&fb->pid, (uint32_t)k);
	store_relaxed(&fb->group, 0);
	store_release(&fb->owner, owner_word(MEMBER_ACTIVE, id_k));
	kill_and_reap(k);
	CHECK_RC(rmpsc_reclaim_dead(ch), 2);
	uint32_t count = mode_count(load_acquire(&group_at(ch, 0)->mode));
	send_range(p, 0, 6);
	/* P reads (and keeps open), Q reads, P advances and reads again. */
	const void *ptr;
	CHECK_RC(rmpsc_read(ch, 1, 0, &ptr, NULL), 1);
	uint64_t p1 = *(const uint64_t *)ptr;
	int64_t one = 1, qr[2];
	CHECK(write(lq.wr, &one, 8) == 8 && read(lq.rd, qr, 16) == 16, "q recv");
	uint64_t head_q = load_acquire(&slot_ctrl(ch, 0)->head) - ch->L.start_position; /* max_groups 1 */
	int adv = rmpsc_advance(ch, 1);
	int n2 = rmpsc_recv(ch, &v, 1, 0);
	CHECK(count == 2 && adv == 0 && fenced(ch) == 0 && n2 == 1 && qr[0] == 1 && p1 != (uint64_t)qr[1],
	      "two live members, count %u after recovering a half-joiner; P read record %llu (open), Q recv %lld "
	      "(record %llu), the group's head then at %llu; P advance %d, P recv %d (%s); fenced rings %u",
	      count, (unsigned long long)p1, (long long)qr[0], (unsigned long long)qr[1], (unsigned long long)head_q,
	      adv, n2, n2 < 0 ? rmpsc_strerror(n2) : "", fenced(ch));
	link_close(&lq);
	reap(q);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* F18: rmpsc_consumer_leave from inside an rmpsc_consume callback (not forbidden by
 * the contract): leave sets serving = -1, and rmpsc_consume's release_span then
 * dereferences member_at(ch, (uint32_t)-1). Default configuration. */
static int leave_cb(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	(void)recs, (void)n, (void)slot;
	rmpsc_consumer_leave(ctx);
	return 1;
}

static void case_leave_in_callback(void)
{
	rmpsc_channel *ch = make(1, 1, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	pid_t kid = fork_child();
	if (kid == 0) {
		int n = rmpsc_consume(ch, 4, 0, leave_cb, ch);
		printf("  consume returned %d (%s)\n", n, n < 0 ? rmpsc_last_error() : "");
		_exit(0);
	}
	int rc = reap(kid);
	CHECK(rc == 0, "rmpsc_consume whose callback leaves: child ended with %s%d", rc > 128 ? "signal " : "exit ",
	      rc > 128 ? rc - 128 : rc);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------------ */

/* ---- Found by a second review (after the group lock and settle() came in): two handles of
 * one process leaving spans open on two rings, an orphans hint lowered under a hand-back, an
 * adopter dying after its last release, a lock holder dying before it recomputed, consumer
 * calls inside a consume callback. ---- */

/* ------------------------------------------------------------------------------------ */
/* R1: a SOLO member's process with two handles (used one after the other from one
 * thread, as the contract allows) can have spans open on two rings: handle B's
 * sweep starts at its own sweep_cursor and takes a fresh ring before it looks at the
 * ring A left open. convert_solo (solo_open_ring) records only the first open ring;
 * the other open span is recorded nowhere, and settle's recompute_all moves that
 * ring's head past it. The member dies: those records are never delivered again
 * (at-least-once broken), in the default one-consumer configuration too. */
static void two_open_rings(uint32_t consumers)
{
	rmpsc_channel *ch = make(consumers, 1, 16, 2);
	rmpsc_producer *p0, *p1;
	CHECK_OK(rmpsc_producer_register(ch, &p0));
	CHECK_OK(rmpsc_producer_register(ch, &p1));
	send_range(p0, 0, 1); /* one record for B to move its sweep cursor past ring 0 */
	struct link l;
	pid_t kid = fork_linked(&l);
	if (kid == 0) {
		rmpsc_channel *a = handle_of(ch), *b = handle_of(ch);
		uint64_t v;
		CHECK_RC(rmpsc_recv(b, &v, 1, SEC), 1); /* B: ring 0, sweep_cursor = 1 */
		char c;
		CHECK(write(l.wr, "r", 1) == 1, "report");
		CHECK(read(l.rd, &c, 1) == 1, "go");
		const void *ptr;
		uint32_t sa = 9, sb = 9;
		int na = rmpsc_read(a, 16, SEC, &ptr, &sa); /* A: ring 0 left open */
		int nb = rmpsc_read(b, 16, SEC, &ptr, &sb); /* B: ring 1 left open */
		int64_t r = (int64_t)sa << 32 | (uint32_t)sb;
		(void)na, (void)nb;
		CHECK(write(l.wr, &r, 8) == 8, "report");
		for (;;)
			pause();
	}
	char c;
	CHECK(read(l.rd, &c, 1) == 1, "child ready");
	send_range(p0, 1, 4);   /* ring 0: 1..3 */
	send_range(p1, 10, 14); /* ring 1: 10..13 */
	CHECK(write(l.wr, "g", 1) == 1, "go");
	int64_t r;
	CHECK(read(l.rd, &r, 8) == 8, "child report");
	printf("  child: handle A read ring %u, handle B read ring %u (both left open)\n", (unsigned)(r >> 32),
	       (unsigned)(uint32_t)r);
	kill_and_reap(kid);
	uint64_t seen = 0;
	int got = drain(ch, &seen, 200 * MS);
	uint64_t want = 0xeull | 0xfull << 10;
	printf("  survivor got %d records (mask %#llx, want %#llx)\n", got, (unsigned long long)seen,
	       (unsigned long long)want);
	CHECK(seen == want, "records the dead member took on its second open ring were lost: missing mask %#llx",
	      (unsigned long long)(want & ~seen));
	rmpsc_producer_close(p0);
	rmpsc_producer_close(p1);
	rmpsc_channel_release(ch);
}

static void case_two_open_rings_default(void)
{
	two_open_rings(1);
}

static void case_two_open_rings_groups(void)
{
	two_open_rings(4);
}

/* ------------------------------------------------------------------------------------ */
/* R2: API misuse inside an rmpsc_consume callback: joining another group (or
 * re-entering the handle with rmpsc_recv). consume only checks still_member() after
 * the callback, which is true again after a join, and then releases the span's n
 * records in the NEW group (release_span uses ch->group): its head moves past its
 * cursor (SOLO: head += n), the next call fences the ring (ECORRUPT) for every group,
 * and producers see an impossible head. Expected: a clear error, nothing fenced. */
struct cb_ctx {
	rmpsc_channel *ch;
	int mode; /* 0: join "other"; 1: rmpsc_recv on the same handle */
	int rc;
};

static int cb_misuse(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	struct cb_ctx *c = ctx;
	(void)recs, (void)n, (void)slot;
	if (c->mode == 0) {
		c->rc = rmpsc_consumer_join(c->ch, "other", 0);
	} else {
		uint64_t v[8];
		c->rc = rmpsc_recv(c->ch, v, 8, 0);
	}
	return 1;
}

static void callback_misuse(int mode)
{
	rmpsc_channel *ch = make(2, 4, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0));
	send_range(p, 0, 4);
	struct cb_ctx c = { ch, mode, 0 };
	int n = rmpsc_consume(ch, 4, SEC, cb_misuse, &c);
	printf("  consume -> %d, call inside the callback -> %d\n", n, c.rc);
	send_range(p, 4, 8);
	uint64_t v[16];
	int m = rmpsc_recv(ch, v, 16, 100 * MS);
	printf("  next recv -> %d (%s), fenced rings %u\n", m, m < 0 ? rmpsc_last_error() : "", fenced(ch));
	CHECK(fenced(ch) == 0, "a misused callback fenced a ring (every group loses it)");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void case_callback_joins_other(void)
{
	callback_misuse(0);
}

static void case_callback_reenters(void)
{
	callback_misuse(1);
}

/* ------------------------------------------------------------------------------------ */
/* R3: the orphans hint (group.orphans) is written by a lock holder's settle() as a
 * recount (a plain store) while a member hands an adopted orphan back WITHOUT the
 * group lock (rmpsc__member_leave: CAS ADOPTING -> ORPHAN; orphans += 1). A holder
 * that recounted before the hand-back stores its stale 0 over the +1. Nothing
 * repairs the hint while the channel is open: recover_members sees no work in an
 * ORPHAN place, and adopt_orphan returns at once on orphans == 0. The orphan's
 * records are never delivered, the group's head never passes them, and the producer
 * blocks for good once the ring is full.
 * Emulated: H (a live process, SIGSTOPped) holds the group lock inside settle(),
 * past its recount; handle A of P hands its adopted orphan back (B keeps P's
 * membership, so P's place stays ACTIVE and nothing else triggers a settle); then
 * H's last stores (orphans = its recount, lock = 0). */
static void case_orphan_hint_lost(void)
{
	rmpsc_channel *ch = make(4, 2, 8, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	rmpsc_channel *a = ch, *b = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(a, NULL, 0));
	CHECK_OK(rmpsc_consumer_join(b, NULL, 0));
	send_range(p, 0, 5);
	/* X takes [0,3) and dies: an orphan. */
	struct link lx;
	pid_t x = fork_linked(&lx);
	if (x == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		const void *ptr;
		int n = rmpsc_read(h, 3, 5 * SEC, &ptr, NULL);
		CHECK(n == 3, "X read %d (%s)", n, rmpsc_last_error());
		CHECK(write(lx.wr, "x", 1) == 1, "report");
		for (;;)
			pause();
	}
	char c;
	CHECK(read(lx.rd, &c, 1) == 1, "X ready");
	kill_and_reap(x);
	CHECK(rmpsc_reclaim_dead(ch) >= 1, "X recovered");
	uint32_t g = (uint32_t)group_index(ch, RMPSC_DEFAULT_GROUP);
	struct group *grp = group_at(ch, g);
	CHECK(load_relaxed(&grp->orphans) == 1, "one orphan");
	/* A adopts it (read left open). */
	const void *ptr;
	int n = rmpsc_read(a, 8, SEC, &ptr, NULL);
	CHECK(n == 3 && rmpsc_deliveries(a) == 2, "A adopted the orphan: %d records, deliveries %u", n,
	      rmpsc_deliveries(a));
	/* H: a live process that holds the group lock (stopped inside settle). */
	struct link lh;
	pid_t hk = fork_linked(&lh);
	if (hk == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, "h", 0));
		uint64_t w = load_relaxed(&member_at(h, (uint32_t)h->member)->owner);
		CHECK(write(lh.wr, &w, 8) == 8, "report");
		for (;;)
			pause();
	}
	uint64_t hw;
	CHECK(read(lh.rd, &hw, 8) == 8, "H ready");
	kill(hk, SIGSTOP);
	store_release(&grp->lock, owner_id(hw)); /* H: lock taken, settle() recounted orphans = 0 */
	rmpsc_consumer_leave(a);                 /* hand-back: ORPHAN, orphans += 1; lock busy */
	printf("  after the hand-back: orphans hint %u\n", load_relaxed(&grp->orphans));
	store_relaxed(&grp->orphans, 0); /* H's settle stores its recount ... */
	store_release(&grp->lock, 0);    /* ... and unlocks */
	kill(hk, SIGCONT);
	/* B (a live member) should get 0..4: the orphan's 0..2 and the rest. */
	uint64_t seen = 0;
	int64_t until = now_ns() + 2 * SEC;
	while (now_ns() < until && seen != 0x1f) {
		uint64_t v;
		if (rmpsc_recv(b, &v, 1, 100 * MS) == 1 && v < 64)
			seen |= 1ull << v;
	}
	int64_t t0 = now_ns();
	int rc = 0;
	for (uint64_t v = 5; v < 13 && rc == 0; v++)
		rc = rmpsc_producer_send(p, &v, 8, 500 * MS);
	printf("  B got mask %#llx in 2 s (want 0x1f); producer send -> %d after %lld ms\n", (unsigned long long)seen,
	       rc, (long long)((now_ns() - t0) / MS));
	CHECK(seen == 0x1f, "the orphan's records were never adopted: hint lost, group stuck");
	kill_and_reap(hk);
	rmpsc_producer_close(p);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------------ */
/* R4: a lock holder that dies inside settle() after drop_place() (claim = 0, owner
 * FREE) and before recompute_all() leaves the group's head below its cursor with no
 * claim covering the gap. The next holder finds nothing to finish (finished ==
 * dropped == 0), so it never recomputes; it recounts the group to one member, which
 * goes SOLO (go_solo trusts "every release moved its head to the cursor") and takes
 * [head, cursor) as its own open claim: records the dead member was delivered are
 * delivered again, unmarked, in an AT_MOST_ONCE group (and records other members
 * already released would be delivered again too). */
static void case_holder_dies_before_recompute(void)
{
	rmpsc_channel *ch = make(4, 3, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(rmpsc_consumer_join(ch, "amo", RMPSC_GROUP_AT_MOST_ONCE));
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	send_range(p, 0, 6);
	struct link lx;
	pid_t x = fork_linked(&lx);
	if (x == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, "amo", RMPSC_GROUP_AT_MOST_ONCE));
		const void *ptr;
		int n = rmpsc_read(h, 3, 5 * SEC, &ptr, NULL);
		CHECK(n == 3, "X read %d (%s)", n, rmpsc_last_error());
		int64_t e = h->member;
		CHECK(write(lx.wr, &e, 8) == 8, "report");
		for (;;)
			pause();
	}
	int64_t e;
	CHECK(read(lx.rd, &e, 8) == 8, "X ready");
	/* H: another process, which will die holding the group lock. */
	struct link lh;
	pid_t hk = fork_linked(&lh);
	if (hk == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, "other", RMPSC_GROUP_EPHEMERAL));
		uint64_t w = load_relaxed(&member_at(h, (uint32_t)h->member)->owner);
		CHECK(write(lh.wr, &w, 8) == 8, "report");
		for (;;)
			pause();
	}
	uint64_t hw;
	CHECK(read(lh.rd, &hw, 8) == 8, "H ready");
	kill_and_reap(x);
	/* H took amo's lock, settle() dropped X's claim (AMO) and freed X's place, and H
	 * was killed before recompute_all() and before it stored the recount. */
	uint32_t g = (uint32_t)group_index(ch, "amo");
	struct member *mb = member_at(ch, (uint32_t)e);
	if (!getenv("R2_CONTROL")) { /* R2_CONTROL=1: no emulated crash, the case passes */
		store_release(&group_at(ch, g)->lock, owner_id(hw));
		store_release(&mb->claim, 0);
		store_release(&mb->owner, (uint64_t)MEMBER_FREE);
	}
	kill_and_reap(hk);
	rmpsc_reclaim_dead(ch); /* the next holder: recount, nothing "finished" */
	uint64_t seen = 0;
	int got = drain(ch, &seen, 100 * MS);
	printf("  survivor got %d records, mask %#llx (at-most-once: want 3..5 = 0x38)\n", got, (unsigned long long)seen);
	CHECK(!(seen & 7), "at-most-once group delivered X's records 0..2 a second time (unmarked)");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------------ */
/* R5: an adopter killed after it released the whole adopted orphan (claim = 0,
 * recompute) and before rmpsc__orphan_done() leaves ADOPTING(dead) with claim 0.
 * settle() turns every ADOPTING(dead) into ORPHAN without looking at the claim, so
 * the group keeps an ORPHAN place with nothing in it, which nothing finishes:
 * recover_members sees no work in an ORPHAN place, adopt_orphan skips it (claim 0).
 * Consequences: the group's count keeps it, so the survivor never goes SOLO, the
 * hint stays 1 (every take takes the process and group locks), and after close
 * data_ready finds has_orphans() true for ever: members never get ECLOSED (a
 * blocking recv hangs; here one with a 1 s timeout returns ETIMEDOUT). */
static void case_dead_adopter_empty_orphan(void)
{
	rmpsc_channel *ch = make(4, 1, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0));
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	/* P: a member first; it adopts the orphan when told to. */
	struct link lp;
	pid_t pk = fork_linked(&lp);
	if (pk == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		char go;
		CHECK(write(lp.wr, "p", 1) == 1, "report");
		CHECK(read(lp.rd, &go, 1) == 1, "go");
		const void *ptr;
		int n = rmpsc_read(h, 8, 5 * SEC, &ptr, NULL);
		CHECK(n == 3 && rmpsc_deliveries(h) == 2, "P adopted: %d, deliveries %u", n, rmpsc_deliveries(h));
		int64_t f = h->serving;
		CHECK(h->serving != h->member, "P serves an adopted orphan");
		CHECK(write(lp.wr, &f, 8) == 8, "report");
		for (;;)
			pause();
	}
	char c;
	CHECK(read(lp.rd, &c, 1) == 1, "P joined");
	send_range(p, 0, 6);
	struct link lx;
	pid_t x = fork_linked(&lx);
	if (x == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		const void *ptr;
		CHECK(rmpsc_read(h, 3, 5 * SEC, &ptr, NULL) == 3, "X read");
		CHECK(write(lx.wr, "x", 1) == 1, "report");
		for (;;)
			pause();
	}
	CHECK(read(lx.rd, &c, 1) == 1, "X ready");
	kill_and_reap(x);
	CHECK(rmpsc_reclaim_dead(ch) >= 1, "X recovered: an orphan");
	CHECK(write(lp.wr, "g", 1) == 1, "go");
	int64_t f;
	CHECK(read(lp.rd, &f, 8) == 8, "P ready");
	/* P's rmpsc_advance(h, 3): release_span stores claim = 0, fences, recomputes the
	 * head, and P is killed before rmpsc__orphan_done(). */
	store_release(&member_at(ch, (uint32_t)f)->claim, 0);
	smp_mb();
	rmpsc__recompute_head(ch, 0, 0);
	kill_and_reap(pk);
	uint64_t seen = 0;
	drain(ch, &seen, 100 * MS);
	CHECK(seen == 0x38, "survivor got 3..5: mask %#llx", (unsigned long long)seen);
	rmpsc_reclaim_dead(ch);
	struct rmpsc_group_stats gs;
	CHECK(rmpsc_group_stats(ch, &gs, 1, NULL, 0, NULL) == 1, "stats");
	printf("  after recovery: members %u, solo %u, place %lld owner state %u, orphans hint %u\n", gs.members,
	       gs.solo, (long long)f, owner_state(load_relaxed(&member_at(ch, (uint32_t)f)->owner)),
	       load_relaxed(&group_at(ch, 0)->orphans));
	CHECK_OK(rmpsc_channel_close(ch));
	int64_t t0 = now_ns();
	int rc = rmpsc_recv(ch, &v, 1, SEC);
	printf("  recv after close -> %d after %lld ms\n", rc, (long long)((now_ns() - t0) / MS));
	CHECK(rc == RMPSC_ECLOSED, "a closed, drained channel: recv gave %d, not ECLOSED (an empty ORPHAN place)", rc);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------------ */

/* ---- Found by a third review: a solo member leaving while another process settles the
 * group, a consume callback using another handle of the same process and place, a fenced
 * ring noted as the open one. ---- */

/* ------------------------------------------------------------------------------------ */
/* Q1: settle() decides "its solo member is gone" in its mode loop from the solo
 * place's owner word, read AFTER its per-place loop. A solo member that leaves
 * (unlocked CAS ACTIVE -> LEFT in rmpsc__member_leave; the lock is busy, so the
 * holder is to finish it) between the two loops is not converted (convert_solo runs
 * only in the per-place loop), yet the mode loop makes the group SHARED and - new in
 * bb217a1 - recompute_all() moves every head to its cursor: the member's open SOLO
 * span, which no claim records, is released. The next settle finds LEFT, calls
 * convert_solo (a no-op now: not solo), sees claim 0 and frees the place. The span
 * the member read and did not advance is never delivered again (ringmpsc.h:
 * "A record span read and not advanced goes to another member").
 * Emulated: H (a live process, SIGSTOPped) holds the group lock, its settle() past
 * the per-place loop (M seen ACTIVE, alive); M leaves; then H's mode loop (SOLO(M),
 * M's place LEFT -> SHARED), recompute_all, unlock. A real holder is any joiner,
 * rmpsc_reclaim_dead, or a waiting producer's recovery. */
static void case_solo_leaves_during_settle(void)
{
	rmpsc_channel *ch = make(4, 2, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	struct link lm;
	pid_t mk = fork_linked(&lm);
	if (mk == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		uint64_t v;
		CHECK_RC(rmpsc_recv(h, &v, 1, 0), RMPSC_EEMPTY); /* alone: SOLO */
		CHECK(write(lm.wr, "j", 1) == 1, "report");
		char go;
		CHECK(read(lm.rd, &go, 1) == 1, "go");
		const void *ptr;
		int n = rmpsc_read(h, 3, SEC, &ptr, NULL); /* 0..2 read, not advanced */
		CHECK(n == 3, "M read %d (%s)", n, rmpsc_last_error());
		CHECK(write(lm.wr, "r", 1) == 1, "report");
		CHECK(read(lm.rd, &go, 1) == 1, "leave");
		rmpsc_consumer_leave(h); /* LEFT; the group lock is busy: H is to finish it */
		CHECK(write(lm.wr, "l", 1) == 1, "report");
		for (;;)
			pause();
	}
	char c;
	CHECK(read(lm.rd, &c, 1) == 1, "M joined");
	uint32_t g = (uint32_t)group_index(ch, RMPSC_DEFAULT_GROUP);
	struct group *grp = group_at(ch, g);
	send_range(p, 0, 6);
	CHECK(write(lm.wr, "g", 1) == 1, "go");
	CHECK(read(lm.rd, &c, 1) == 1, "M read");
	uint64_t m = load_acquire(&grp->mode);
	CHECK(mode_kind(m) == MODE_SOLO, "M is SOLO (mode kind %u)", mode_kind(m));
	/* H: a live process that holds the group lock (stopped inside settle). */
	struct link lh;
	pid_t hk = fork_linked(&lh);
	if (hk == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, "h", 0));
		uint64_t w = load_relaxed(&member_at(h, (uint32_t)h->member)->owner);
		CHECK(write(lh.wr, &w, 8) == 8, "report");
		for (;;)
			pause();
	}
	uint64_t hw;
	CHECK(read(lh.rd, &hw, 8) == 8, "H ready");
	kill(hk, SIGSTOP);
	store_release(&grp->lock, owner_id(hw)); /* H: lock taken; its per-place loop saw M ACTIVE */
	CHECK(write(lm.wr, "l", 1) == 1, "leave");
	CHECK(read(lm.rd, &c, 1) == 1, "M left");
	if (!getenv("Q1_CONTROL")) { /* Q1_CONTROL=1: H unlocks without its mode loop */
		/* H resumes in its mode loop: SOLO(M) and M's place not ACTIVE. As group.c
		 * settle() does since this review: M's open claim becomes its record first
		 * (convert_solo: claim_start = head, end = cursor of the ring it noted), then
		 * SHARED, then recompute_all (which must respect the record); it unlocks. */
		int e = -1;
		for (uint32_t i = 0; i < ch->L.max_consumers; i++)
			if (load_relaxed(&member_at(ch, i)->pid) == (uint32_t)mk)
				e = (int)i;
		CHECK(e >= 0, "M's place");
		struct member *mb = member_at(ch, (uint32_t)e);
		uint32_t s0 = load_relaxed(&mb->solo_ring) - 1;
		CHECK(s0 == 0, "M noted ring 0 as open (solo_ring %u)", s0 + 1);
		store_relaxed(&mb->claim_start, load_acquire(group_head(ch, g, 0)));
		store_release(&mb->claim, claim_word(0, load_acquire(&gpos_at(ch, g, 0)->cursor)));
		store_relaxed(&mb->solo_ring, 0);
		m = load_acquire(&grp->mode);
		CHECK(cas_acq_rel(&grp->mode, &m, mode_make(m, MODE_SHARED, 0, mode_count(m))), "H's mode CAS");
		for (uint32_t s = 0; s < ch->L.max_producers; s++)
			rmpsc__recompute_head(ch, g, s);
	}
	store_release(&grp->lock, 0);
	kill(hk, SIGCONT);
	kill_and_reap(hk);
	kill_and_reap(mk);
	/* A survivor joins: it should get 0..2 (M's span, handed on) and 3..5. */
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0));
	uint64_t seen = 0;
	int got = drain(ch, &seen, 200 * MS);
	printf("  survivor got %d records, mask %#llx (want 0x3f)\n", got, (unsigned long long)seen);
	CHECK(seen == 0x3f, "the span the solo member read and did not advance was dropped: missing %#llx",
	      (unsigned long long)(0x3f & ~seen));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------------ */
/* Q2: the in_callback guard is per handle, but a process's handles in one group
 * share one member place. An rmpsc_consume callback on handle A that calls
 * rmpsc_recv on handle B (same process, same group; one thread, which the contract
 * allows: "one thread at a time may call the consumer functions of them") is served
 * A's open span again (SOLO: solo_ring, serving the open claim first; SHARED: the
 * place's claim record) and releases it; then rmpsc_consume releases the span again
 * for A, without the check rmpsc_advance makes (span_start_pos == read_pos). SOLO:
 * head += n twice, the head passes the cursor (and the tail), the next take fences
 * the ring (ECORRUPT, every group loses it). SHARED: the records are delivered twice
 * to one live member, unmarked. */
struct nest {
	rmpsc_channel *b;
	int rc;
	uint64_t got[16];
};

static int cb_sibling(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	struct nest *x = ctx;
	(void)recs, (void)n, (void)slot;
	x->rc = rmpsc_recv(x->b, x->got, 16, 0);
	return 1;
}

static void sibling_in_callback(uint32_t consumers, int shared)
{
	rmpsc_channel *ch = make(consumers, 2, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	rmpsc_channel *a = ch, *b = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(a, NULL, 0));
	CHECK_OK(rmpsc_consumer_join(b, NULL, 0));
	pid_t other = 0;
	if (shared) { /* a second member process: the group is SHARED */
		struct link l;
		other = fork_linked(&l);
		if (other == 0) {
			rmpsc_channel *h = handle_of(ch);
			CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
			CHECK(write(l.wr, "j", 1) == 1, "report");
			for (;;)
				pause();
		}
		char c;
		CHECK(read(l.rd, &c, 1) == 1, "other joined");
	}
	uint64_t v;
	rmpsc_recv(a, &v, 1, 0); /* SOLO, or PENDING ended: SHARED */
	send_range(p, 0, 4);
	struct nest x = { b, 0, { 0 } };
	int n = rmpsc_consume(a, 4, SEC, cb_sibling, &x);
	printf("  consume(A) -> %d; recv(B) inside its callback -> %d", n, x.rc);
	for (int i = 0; i < x.rc; i++)
		printf(" %llu", (unsigned long long)x.got[i]);
	printf("\n");
	send_range(p, 4, 8);
	uint64_t seen = 0;
	int got = drain(a, &seen, 100 * MS);
	printf("  then A got %d records (mask %#llx), fenced rings %u, mode kind %u\n", got, (unsigned long long)seen,
	       fenced(ch), mode_kind(load_acquire(&group_at(ch, 0)->mode)));
	CHECK(fenced(ch) == 0, "a sibling handle's recv inside a consume callback fenced the ring");
	CHECK(x.rc <= 0, "records of A's open span delivered a second time (unmarked) through sibling B: %d", x.rc);
	CHECK(seen == 0xf0, "records after it: mask %#llx, want 0xf0", (unsigned long long)seen);
	if (other)
		kill_and_reap(other);
	rmpsc_producer_close(p);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
}

static void case_sibling_in_callback_solo(void)
{
	sibling_in_callback(1, 0);
}

static void case_sibling_in_callback_shared(void)
{
	sibling_in_callback(4, 1);
}

/* ------------------------------------------------------------------------------------ */
/* Q3: solo_take serves member.solo_ring first and, unlike the sweep, does not skip
 * a fenced ring: a SOLO member whose open span is on a ring a (hostile or broken)
 * producer corrupts gets ECORRUPT once (the ring is fenced, as designed), and then
 * 0 ("nothing") from every take for ever: solo_open_span fails again, the ring is
 * fenced so empty_or_corrupt returns 0, and solo_ring is never cleared. Every other
 * ring of the group is starved (their producers block once full), where the sweep
 * (before bb217a1) skipped fenced rings and went on. */
static void case_fenced_solo_ring_starves(void)
{
	rmpsc_channel *ch = make(1, 1, 16, 2);
	rmpsc_producer *p0, *p1;
	CHECK_OK(rmpsc_producer_register(ch, &p0));
	CHECK_OK(rmpsc_producer_register(ch, &p1));
	uint32_t s0 = UINT32_MAX;
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0));
	send_range(p0, 0, 2);
	const void *ptr;
	CHECK(rmpsc_read(ch, 2, SEC, &ptr, &s0) == 2, "read ring 0");
	/* The producer of that ring writes an impossible tail (hostile, or a wild store). */
	struct ring_ctrl *c0 = slot_ctrl(ch, s0);
	store_release(&c0->tail, load_relaxed(&c0->tail) + 1000);
	send_range(p1, 10, 14);
	uint64_t v;
	int first = rmpsc_recv(ch, &v, 1, 100 * MS);
	printf("  recv after the corrupt tail -> %d (%s), fenced %u\n", first, first < 0 ? rmpsc_strerror(first) : "",
	       fenced(ch));
	uint64_t seen = 0;
	int got = 0;
	for (int i = 0; i < 10 && seen != 0xfull << 10; i++) {
		int n = rmpsc_recv(ch, &v, 1, 50 * MS);
		if (n == 1 && v < 64)
			seen |= 1ull << v, got++;
	}
	printf("  then from the healthy ring: %d records, mask %#llx (want %#llx)\n", got, (unsigned long long)seen,
	       0xfull << 10);
	CHECK(seen == 0xfull << 10, "a fenced ring noted in solo_ring starves every other ring of the group");
	rmpsc_producer_close(p0);
	rmpsc_producer_close(p1);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------------ */

struct review_case {
	const char *name;
	void (*fn)(void);
};

static const struct review_case cases[] = {
	{ "dead_between_clear_and_recompute", case_dead_between_clear_and_recompute },
	{ "dead_mid_partial_release", case_dead_mid_partial_release },
	{ "two_handles_fence", case_two_handles_fence },
	{ "two_handles_blind", case_two_handles_blind },
	{ "adopted_orphan_stuck", case_adopted_orphan_stuck },
	{ "count_drift", case_count_drift },
	{ "orphan_counter_drift", case_orphan_counter_drift },
	{ "stopped_lock_holder", case_stopped_lock_holder },
	{ "stopped_converter", case_stopped_converter },
	{ "stale_busy", case_stale_busy },
	{ "hostile_mode_solo", case_hostile_mode_solo },
	{ "hostile_claim_slot", case_hostile_claim_slot },
	{ "removed_place_leak", case_removed_place_leak },
	{ "go_solo_race", case_go_solo_race },
	{ "join_wrong_group", case_join_wrong_group },
	{ "bad_join_leaves_first", case_bad_join_leaves_first },
	{ "half_joiner_count_low", case_half_joiner_count_low },
	{ "leave_in_callback", case_leave_in_callback },
	{ "two_open_rings_default", case_two_open_rings_default },
	{ "two_open_rings_groups", case_two_open_rings_groups },
	{ "callback_joins_other", case_callback_joins_other },
	{ "callback_reenters", case_callback_reenters },
	{ "orphan_hint_lost", case_orphan_hint_lost },
	{ "holder_dies_before_recompute", case_holder_dies_before_recompute },
	{ "dead_adopter_empty_orphan", case_dead_adopter_empty_orphan },
	{ "solo_leaves_during_settle", case_solo_leaves_during_settle },
	{ "sibling_in_callback_solo", case_sibling_in_callback_solo },
	{ "sibling_in_callback_shared", case_sibling_in_callback_shared },
	{ "fenced_solo_ring_starves", case_fenced_solo_ring_starves },
};

int main(int argc, char **argv)
{
	harness_start("test_groups_faults", 240);
	atexit(children_kill_all);
	int failed = 0, ran = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		ran++;
		pid_t kid = fork_child();
		if (kid == 0) {
			alarm(60);
			cases[i].fn();
			exit(0);
		}
		int rc = reap(kid);
		printf("%s %s%s\n", rc == 0 ? "ok  " : "FAIL", cases[i].name,
		       rc == 0    ? ""
		       : rc > 128 ? " (killed by a signal)"
				  : "");
		failed += rc != 0;
	}
	CHECK(ran > 0, "no case named %s", argc > 1 ? argv[1] : "");
	return failed ? 1 : 0;
}
