/*
 * Consumer groups against what a third adversarial review found in the fixes of
 * bb217a1 (solo_ring, settle recomputing whenever the group ends SHARED, the
 * in_callback guard); every case failed there. A solo member leaving while another
 * process settles the group, a consume callback using another handle of the same
 * process and place, a fenced ring noted as the open one. Same conventions as test_groups_faults2.c: public API, forked
 * processes, SIGKILL/SIGSTOP, and raw region stores only to emulate a process
 * stopped between two of its stores (or a hostile producer's tail).
 * `test_groups_faults3 NAME` runs one case.
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

static uint32_t fenced(rmpsc_channel *ch)
{
	struct rmpsc_stats s;
	CHECK_OK(rmpsc_stats(ch, &s, NULL, 0));
	return s.fenced_rings;
}

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
	{ "solo_leaves_during_settle", case_solo_leaves_during_settle },
	{ "sibling_in_callback_solo", case_sibling_in_callback_solo },
	{ "sibling_in_callback_shared", case_sibling_in_callback_shared },
	{ "fenced_solo_ring_starves", case_fenced_solo_ring_starves },
};

int main(int argc, char **argv)
{
	harness_start("test_groups_faults3", 240);
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
