/*
 * Consumer groups against the faults a second adversarial review found (after the
 * group lock and settle() came in): one case per finding, each asserting what
 * ringmpsc.h, README "Guarantees" and ARCHITECTURE.md 2.7 promise; every case failed
 * on 2401b1b. Two handles of one process leaving spans open on two rings, an
 * orphans hint lowered under a hand-back, an adopter dying after its last release,
 * a lock holder dying before it recomputed, consumer calls inside a consume
 * callback. Same conventions as test_groups_faults.c: public API, forked
 * processes, SIGKILL/SIGSTOP, and raw region stores only to emulate a process
 * stopped between two of its stores. `test_groups_faults2 NAME` runs one case.
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

static void kill_and_reap(pid_t kid)
{
	kill(kid, SIGKILL);
	reap(kid);
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

static uint32_t fenced(rmpsc_channel *ch)
{
	struct rmpsc_stats s;
	CHECK_OK(rmpsc_stats(ch, &s, NULL, 0));
	return s.fenced_rings;
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

struct review_case {
	const char *name;
	void (*fn)(void);
};

static const struct review_case cases[] = {
	{ "two_open_rings_default", case_two_open_rings_default },
	{ "two_open_rings_groups", case_two_open_rings_groups },
	{ "callback_joins_other", case_callback_joins_other },
	{ "callback_reenters", case_callback_reenters },
	{ "orphan_hint_lost", case_orphan_hint_lost },
	{ "holder_dies_before_recompute", case_holder_dies_before_recompute },
	{ "dead_adopter_empty_orphan", case_dead_adopter_empty_orphan },
};

int main(int argc, char **argv)
{
	harness_start("test_groups_faults2", 240);
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
