/*
 * Consumer groups, step by step: fan-out to every group and back-pressure from the
 * slowest; work sharing between member processes (each record once); the SOLO ->
 * PENDING -> SHARED handshake with a read open; redelivery of a dead member's
 * claim (marked) or its drop (at-most-once); leaving with a read open; ephemeral
 * groups going away with their last member; a new group starting at the tail;
 * slab messages in two groups; and the errors (flags, names, no place left).
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "children.h"
#include "harness.h"

#define MS  1000000ll
#define SEC 1000000000ll

static void check_msg_has(const char *what, const char *word)
{
	const char *m = rmpsc_last_error();
	CHECK(strstr(m, word), "%s: message \"%s\" does not mention \"%s\"", what, m, word);
}

static rmpsc_channel *make(uint32_t consumers, uint32_t groups, uint32_t cap, uint32_t slabs)
{
	struct rmpsc_config c = { .record_size = 8,
				  .capacity = cap,
				  .max_producers = 4,
				  .max_consumers = consumers,
				  .max_groups = groups,
				  .slab_size = slabs ? 256 : 0,
				  .slab_count = slabs };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	return ch;
}

/* Another handle on the same region (as another process would have). */
static rmpsc_channel *handle_of(rmpsc_channel *ch)
{
	rmpsc_channel *h;
	CHECK_OK(rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(ch), 0));
	return h;
}

static void send_range(rmpsc_producer *p, uint64_t from, uint64_t to)
{
	for (uint64_t v = from; v < to; v++)
		CHECK_OK(rmpsc_producer_send(p, &v, 8, 0));
}

static uint64_t recv_one(rmpsc_channel *ch, int64_t timeout)
{
	uint64_t v;
	int n = rmpsc_recv(ch, &v, 1, timeout);
	CHECK(n == 1, "recv: %d (%s)", n, rmpsc_last_error());
	return v;
}

static struct rmpsc_group_stats group_named(rmpsc_channel *ch, const char *name)
{
	struct rmpsc_group_stats g[RMPSC_MAX_GROUPS];
	int n = rmpsc_group_stats(ch, g, RMPSC_MAX_GROUPS, NULL, 0, NULL);
	for (int i = 0; i < n; i++)
		if (!strcmp(g[i].name, name))
			return g[i];
	FAIL("no group %s", name);
}

static int group_exists(rmpsc_channel *ch, const char *name)
{
	struct rmpsc_group_stats g[RMPSC_MAX_GROUPS];
	int n = rmpsc_group_stats(ch, g, RMPSC_MAX_GROUPS, NULL, 0, NULL);
	for (int i = 0; i < n; i++)
		if (!strcmp(g[i].name, name))
			return 1;
	return 0;
}

/* --- fan-out and back-pressure ----------------------------------------------------- */

static void test_fan_out(void)
{
	rmpsc_channel *ch = make(4, 4, 8, 0);
	CHECK_OK(rmpsc_group_remove(ch, NULL)); /* only the two groups below hold records */
	rmpsc_channel *a = handle_of(ch), *b = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(a, "a", 0));
	CHECK_OK(rmpsc_consumer_join(b, "b", 0));
	CHECK(!strcmp(rmpsc_consumer_group(a), "a") && !strcmp(rmpsc_consumer_group(b), "b"), "group names");
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 8);
	uint64_t v = 8;
	CHECK_RC(rmpsc_producer_send(p, &v, 8, 0), RMPSC_EFULL);
	for (uint64_t i = 0; i < 8; i++)
		CHECK(recv_one(a, 0) == i, "group a: order");
	/* a released everything; b holds the ring: still full */
	CHECK_RC(rmpsc_producer_send(p, &v, 8, 0), RMPSC_EFULL);
	CHECK(group_named(ch, "b").pending == 8 && group_named(ch, "a").pending == 0, "lag per group");
	for (uint64_t i = 0; i < 4; i++)
		CHECK(recv_one(b, 0) == i, "group b: order");
	send_range(p, 8, 12); /* the four b released */
	CHECK_RC(rmpsc_producer_send(p, &v, 8, 0), RMPSC_EFULL);
	/* removing b (after it leaves) frees the producer */
	rmpsc_consumer_leave(b);
	CHECK_RC(rmpsc_group_remove(ch, "b"), RMPSC_OK);
	CHECK(!group_exists(ch, "b"), "b still listed");
	for (uint64_t i = 8; i < 12; i++)
		CHECK(recv_one(a, 0) == i, "group a after b left");
	send_range(p, 12, 20);
	rmpsc_producer_close(p);
	rmpsc_channel_release(a);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
	printf("fan-out and back-pressure ok\n");
}

/* A group created now gets what is committed from now on. */
static void test_new_group_starts_at_tail(void)
{
	rmpsc_channel *ch = make(4, 4, 16, 0);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 5);
	rmpsc_channel *late = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(late, "late", 0));
	uint64_t v;
	CHECK_RC(rmpsc_recv(late, &v, 1, 0), RMPSC_EEMPTY);
	send_range(p, 5, 7);
	CHECK(recv_one(late, 0) == 5 && recv_one(late, 0) == 6, "late group starts at the tail");
	for (uint64_t i = 0; i < 7; i++) /* the default group had them all waiting */
		CHECK(recv_one(ch, 0) == i, "default group");
	rmpsc_producer_close(p);
	rmpsc_channel_release(late);
	rmpsc_channel_release(ch);
	printf("new group starts at the tail ok\n");
}

/* --- work sharing between processes ------------------------------------------------- */

#define SHARE_RECORDS 20000
#define SHARE_WORKERS 3

static void test_work_sharing(void)
{
	rmpsc_channel *ch = make(SHARE_WORKERS + 1, 1, 64, 0);
	/* one bit per record, set by whichever worker received it */
	unsigned char *seen = mmap(NULL, SHARE_RECORDS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(seen != MAP_FAILED, "mmap");
	pid_t kids[SHARE_WORKERS];
	struct link links[SHARE_WORKERS];
	for (int k = 0; k < SHARE_WORKERS; k++) {
		kids[k] = fork_linked(&links[k]);
		if (kids[k] == 0) {
			uint64_t got = 0, v[16];
			for (;;) {
				int n = rmpsc_recv(ch, v, 1 + (got % 16), 5 * SEC);
				if (n == RMPSC_ECLOSED)
					break;
				CHECK(n > 0, "worker recv: %d (%s)", n, rmpsc_last_error());
				for (int i = 0; i < n; i++) {
					CHECK(v[i] < SHARE_RECORDS, "record %llu out of range", (unsigned long long)v[i]);
					CHECK(__atomic_fetch_add(&seen[v[i]], 1, __ATOMIC_RELAXED) == 0,
					      "record %llu delivered twice", (unsigned long long)v[i]);
				}
				got += (uint64_t)n;
			}
			CHECK(write(links[k].wr, &got, sizeof got) == sizeof got, "report");
			_exit(0);
		}
	}
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	for (uint64_t v = 0; v < SHARE_RECORDS; v++)
		CHECK_OK(rmpsc_producer_send(p, &v, 8, 10 * SEC));
	rmpsc_channel_close(ch);
	uint64_t total = 0;
	int busy = 0;
	for (int k = 0; k < SHARE_WORKERS; k++) {
		uint64_t got = 0;
		CHECK(read(links[k].rd, &got, sizeof got) == sizeof got, "worker %d did not report", k);
		CHECK_RC(reap(kids[k]), 0);
		total += got;
		busy += got > 0;
	}
	CHECK(total == SHARE_RECORDS, "workers received %llu of %d", (unsigned long long)total, SHARE_RECORDS);
	for (int i = 0; i < SHARE_RECORDS; i++)
		CHECK(seen[i] == 1, "record %d seen %d times", i, seen[i]);
	printf("work sharing: %d records over %d workers (%d took some) ok\n", SHARE_RECORDS, SHARE_WORKERS, busy);
	rmpsc_producer_close(p);
	munmap(seen, SHARE_RECORDS);
	rmpsc_channel_release(ch);
}

/* --- the SOLO -> SHARED handshake with a read open ------------------------------------ */

static void test_handshake(void)
{
	rmpsc_channel *ch = make(4, 1, 32, 0);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 10);
	const void *ptr;
	CHECK_RC(rmpsc_read(ch, 3, 0, &ptr, NULL), 3); /* a solo claim of 0..2, open */
	CHECK(group_named(ch, RMPSC_DEFAULT_GROUP).solo == 1, "one member: solo");
	struct link l;
	pid_t kid = fork_linked(&l);
	if (kid == 0) {
		/* Joins while the parent has a read open, and takes records that are not
		 * in the parent's open claim. */
		uint64_t v;
		int n = rmpsc_recv(ch, &v, 1, 5 * SEC);
		CHECK(n == 1, "joiner recv %d (%s)", n, rmpsc_last_error());
		CHECK(write(l.wr, &v, 8) == 8, "report");
		_exit(0);
	}
	/* The joiner does not wait for us: we are not inside a take, so it ends our
	 * solo mode itself, recording our open claim, and takes records after it. */
	uint64_t got;
	CHECK(read(l.rd, &got, 8) == 8, "joiner report");
	CHECK(got >= 3, "joiner got %llu, which the solo member had taken", (unsigned long long)got);
	CHECK(group_named(ch, RMPSC_DEFAULT_GROUP).solo == 0, "two members: shared");
	CHECK_OK(rmpsc_advance(ch, 2)); /* a partial release of the recorded claim */
	CHECK_RC(reap(kid), 0);
	/* Our open remainder (record 2) is served again first, then the rest. */
	uint64_t v = recv_one(ch, 0);
	CHECK(v == 2, "the remainder of our claim first, got %llu", (unsigned long long)v);
	int count = 0;
	while (rmpsc_recv(ch, &v, 1, 0) == 1) {
		CHECK(v != got, "record %llu delivered to both members", (unsigned long long)v);
		count++;
	}
	CHECK(count == 6, "the rest: %d records, want 6", count);
	/* Alone again (the joiner exited without leaving): solo once it is recovered. */
	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	send_range(p, 10, 11);
	CHECK(recv_one(ch, 0) == 10, "after the joiner left");
	CHECK(group_named(ch, RMPSC_DEFAULT_GROUP).solo == 1, "alone again: solo");
	rmpsc_producer_close(p);
	close(l.rd);
	close(l.wr);
	rmpsc_channel_release(ch);
	printf("solo -> shared -> solo handshake ok\n");
}

/* --- redelivery of a dead member's claim ---------------------------------------------- */

static void dead_member_case(unsigned flags, const char *what)
{
	rmpsc_channel *ch = make(4, 2, 32, 0);
	CHECK_OK(rmpsc_consumer_join(ch, "g", flags));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 10);
	/* Make the group SHARED: a child joins and takes a claim it never releases. */
	struct link l;
	pid_t kid = fork_linked(&l);
	if (kid == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, "g", flags));
		const void *ptr;
		int n = rmpsc_read(h, 4, 5 * SEC, &ptr, NULL);
		CHECK(n >= 1, "child read %d (%s)", n, rmpsc_last_error());
		uint64_t first = *(const uint64_t *)ptr, cnt = (uint64_t)n;
		CHECK(write(l.wr, &first, 8) == 8 && write(l.wr, &cnt, 8) == 8, "report");
		pause(); /* killed holding the claim */
		_exit(0);
	}
	/* The child waits for our acknowledgement; a call of ours gives it. Once it
	 * is given, either of us may claim first. */
	uint64_t v = recv_one(ch, 5 * SEC);
	uint64_t first, cnt;
	CHECK(read(l.rd, &first, 8) == 8 && read(l.rd, &cnt, 8) == 8, "%s: child report", what);
	CHECK((v == 0 && first >= 1) || (first == 0 && v == cnt), "%s: we got record %llu first, the child %llu+%llu",
	      what, (unsigned long long)v, (unsigned long long)first, (unsigned long long)cnt);
	kill(kid, SIGKILL);
	wait_zombie(kid);
	int seen[10] = { 0 };
	seen[v] = 1;
	uint32_t marked = 0;
	for (;;) {
		const void *ptr;
		int n = rmpsc_read(ch, 10, 0, &ptr, NULL);
		if (n == RMPSC_EEMPTY) {
			/* Recovery runs in waits and at a bounded rate: ask for it now. */
			if (rmpsc_reclaim_dead(ch) > 0)
				continue;
			break;
		}
		CHECK(n > 0, "%s: read %d (%s)", what, n, rmpsc_last_error());
		const uint64_t *r = ptr;
		for (int i = 0; i < n; i++) {
			CHECK(r[i] < 10 && !seen[r[i]], "%s: record %llu twice", what, (unsigned long long)r[i]);
			seen[r[i]] = 1;
			if (rmpsc_deliveries(ch) > 1)
				marked++;
		}
		CHECK_OK(rmpsc_advance(ch, (size_t)n));
	}
	CHECK_RC(reap(kid), 128 + SIGKILL);
	for (uint64_t i = 0; i < 10; i++) {
		int in_claim = i >= first && i < first + cnt;
		if (flags & RMPSC_GROUP_AT_MOST_ONCE)
			CHECK(seen[i] == !in_claim, "%s: record %llu seen %d (claim %llu+%llu)", what,
			      (unsigned long long)i, seen[i], (unsigned long long)first, (unsigned long long)cnt);
		else
			CHECK(seen[i], "%s: record %llu lost", what, (unsigned long long)i);
	}
	if (!(flags & RMPSC_GROUP_AT_MOST_ONCE))
		CHECK(marked == cnt, "%s: %u records marked redelivered, the claim had %llu", what, marked,
		      (unsigned long long)cnt);
	struct rmpsc_stats s;
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.recovered_members >= 1, "%s: recovered_members %u", what, s.recovered_members);
	CHECK(group_named(ch, "g").members == 1, "%s: the dead member's place is still counted", what);
	rmpsc_producer_close(p);
	close(l.rd);
	close(l.wr);
	rmpsc_channel_release(ch);
	printf("dead member, %s ok (claim of %llu)\n", what, (unsigned long long)cnt);
}

static void test_dead_member(void)
{
	dead_member_case(0, "at-least-once: redelivered and marked");
	dead_member_case(RMPSC_GROUP_AT_MOST_ONCE, "at-most-once: dropped");
}

/* One consumer place: a new process takes over a dead consumer's read, marked. */
static void test_takeover_marks(void)
{
	rmpsc_channel *ch = make(1, 1, 16, 0);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	pid_t kid = fork_child();
	if (kid == 0) {
		rmpsc_channel *h = handle_of(ch);
		const void *ptr;
		CHECK_RC(rmpsc_read(h, 2, 0, &ptr, NULL), 2);
		CHECK(rmpsc_deliveries(h) == 1, "first delivery");
		kill(getpid(), SIGKILL);
	}
	CHECK_RC(reap(kid), 128 + SIGKILL);
	const void *ptr;
	CHECK_RC(rmpsc_read(ch, 4, 0, &ptr, NULL), 2);
	CHECK(((const uint64_t *)ptr)[0] == 0 && rmpsc_deliveries(ch) == 2,
	      "taken over: records 0..1 again, marked (%u)", rmpsc_deliveries(ch));
	CHECK_OK(rmpsc_advance(ch, 2));
	CHECK(rmpsc_deliveries(ch) == 0, "no span open");
	CHECK(recv_one(ch, 0) == 2 && rmpsc_deliveries(ch) == 0, "the rest");
	CHECK_RC(rmpsc_read(ch, 4, 0, &ptr, NULL), 1);
	CHECK(rmpsc_deliveries(ch) == 1, "a first delivery after the takeover");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	printf("takeover of a dead consumer's read: marked ok\n");
}

/* Leaving with a read open: another member gets it, not counted as redelivered. */
static void test_leave_with_read_open(void)
{
	rmpsc_channel *ch = make(4, 1, 16, 0);
	rmpsc_channel *a = handle_of(ch);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 6);
	const void *ptr;
	CHECK_RC(rmpsc_read(a, 3, 0, &ptr, NULL), 3);
	pid_t kid = fork_child();
	if (kid == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		uint64_t v[8];
		int total = 0, n;
		int64_t until = now_ns() + 5 * SEC;
		while (total < 6 && now_ns() < until) {
			n = rmpsc_read(h, 8, 100 * MS, &ptr, NULL);
			if (n == RMPSC_ETIMEDOUT)
				continue;
			CHECK(n > 0, "child read %d (%s)", n, rmpsc_last_error());
			memcpy(v, ptr, (size_t)n * 8);
			CHECK(rmpsc_deliveries(h) == 1, "a span handed over by a member that left is not a redelivery");
			CHECK_OK(rmpsc_advance(h, (size_t)n));
			total += n;
		}
		CHECK(total == 6, "child got %d of 6", total);
		_exit(0);
	}
	/* Let the child in (we are solo: our next call acknowledges), then leave. */
	int64_t until = now_ns() + 5 * SEC;
	while (group_named(ch, RMPSC_DEFAULT_GROUP).members < 2) {
		CHECK(now_ns() < until, "the child never joined");
		sched_yield();
	}
	rmpsc_consumer_leave(a); /* our open read goes to the child */
	CHECK_RC(reap(kid), 0);
	rmpsc_producer_close(p);
	rmpsc_channel_release(a);
	rmpsc_channel_release(ch);
	printf("leaving with a read open hands it over ok\n");
}

/* An ephemeral group goes away with its last member, and stops holding producers. */
static void test_ephemeral(void)
{
	rmpsc_channel *ch = make(4, 4, 4, 0);
	CHECK_OK(rmpsc_group_remove(ch, NULL));
	pid_t kid = fork_child();
	if (kid == 0) {
		rmpsc_channel *h = handle_of(ch);
		CHECK_OK(rmpsc_consumer_join(h, "sub", RMPSC_GROUP_EPHEMERAL));
		pause();
		_exit(0);
	}
	int64_t until = now_ns() + 5 * SEC;
	while (!group_exists(ch, "sub")) {
		CHECK(now_ns() < until, "the subscriber never joined");
		sched_yield();
	}
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_range(p, 0, 4);
	uint64_t v = 4;
	CHECK_RC(rmpsc_producer_send(p, &v, 8, 0), RMPSC_EFULL);
	kill(kid, SIGKILL);
	CHECK_RC(reap(kid), 128 + SIGKILL);
	/* A producer waiting for space recovers the dead subscriber itself. */
	int64_t t0 = now_ns();
	CHECK_OK(rmpsc_producer_send(p, &v, 8, 5 * SEC));
	CHECK(now_ns() - t0 < 2 * SEC, "the waiting producer took %lld ms", (long long)((now_ns() - t0) / MS));
	CHECK(!group_exists(ch, "sub"), "the ephemeral group outlived its last member");
	/* A durable group with no member keeps its records. */
	rmpsc_channel *d = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(d, "keep", 0));
	rmpsc_consumer_leave(d);
	send_range(p, 5, 8);
	CHECK(group_named(ch, "keep").pending == 3, "durable group kept its records: %llu",
	      (unsigned long long)group_named(ch, "keep").pending);
	CHECK_OK(rmpsc_consumer_join(d, "keep", 0));
	CHECK(recv_one(d, 0) == 5, "durable group: waiting records");
	rmpsc_producer_close(p);
	rmpsc_channel_release(d);
	rmpsc_channel_release(ch);
	printf("ephemeral group removed with its last member; durable kept ok\n");
}

/* --- slab messages in two groups ---------------------------------------------------------- */

static void test_slabs_in_groups(void)
{
	rmpsc_channel *ch = make(4, 4, 8, 4);
	CHECK_OK(rmpsc_group_remove(ch, NULL));
	rmpsc_channel *a = handle_of(ch), *b = handle_of(ch);
	CHECK_OK(rmpsc_consumer_join(a, "a", 0));
	CHECK_OK(rmpsc_consumer_join(b, "b", 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	char msg[64], buf[256];
	for (int round = 0; round < 20; round++) { /* 4 slabs, reused every round */
		int len = snprintf(msg, sizeof msg, "message %d", round);
		CHECK_OK(rmpsc_producer_send_bytes(p, msg, (size_t)len, SEC));
		CHECK(rmpsc_recv_bytes(a, buf, sizeof buf, 0) == len && !memcmp(buf, msg, (size_t)len), "group a");
		const void *bytes;
		CHECK(rmpsc_read_bytes(b, 0, &bytes) == len && !memcmp(bytes, msg, (size_t)len), "group b in place");
		CHECK_OK(rmpsc_advance_bytes(b));
	}
	CHECK(rmpsc_slab_free_count(ch) == 4, "every slab back once both groups released: %u", rmpsc_slab_free_count(ch));
	/* Received slabs are never freed or accepted by hand with groups. */
	CHECK_OK(rmpsc_producer_send_bytes(p, "x", 1, SEC));
	const void *rec;
	uint32_t slot;
	CHECK_RC(rmpsc_read(a, 1, 0, &rec, &slot), 1);
	uint32_t handle = rmpsc_record_handle(rec);
	CHECK_RC(rmpsc_slab_free(a, handle), RMPSC_EINVAL);
	check_msg_has("slab_free with groups", "every group");
	CHECK_RC(rmpsc_slab_accept(a, handle), RMPSC_EINVAL);
	CHECK_OK(rmpsc_advance(a, 1));
	rmpsc_producer_close(p);
	rmpsc_channel_release(a);
	rmpsc_channel_release(b);
	rmpsc_channel_release(ch);
	printf("slab messages in two groups ok\n");
}

/* --- threads in different groups: fan-out under TSan ---------------------------------- */

#define FAN_RECORDS 20000
#define FAN_GROUPS  3

struct fan_arg {
	rmpsc_channel *ch;
	int group;
	uint64_t next[2];
};

static void *fan_producer(void *arg)
{
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(((struct fan_arg *)arg)->ch, &p));
	uint64_t id = (uint64_t)((struct fan_arg *)arg)->group;
	for (uint64_t i = 0; i < FAN_RECORDS; i++) {
		uint64_t v = id << 32 | i;
		CHECK_OK(rmpsc_producer_send(p, &v, 8, 10 * SEC));
	}
	rmpsc_producer_close(p);
	return NULL;
}

static void *fan_consumer(void *arg)
{
	struct fan_arg *a = arg;
	char name[16];
	snprintf(name, sizeof name, "fan%d", a->group);
	for (;;) {
		const void *ptr;
		int n = rmpsc_read(a->ch, 64, 10 * SEC, &ptr, NULL);
		if (n == RMPSC_ECLOSED)
			break;
		CHECK(n > 0, "%s: read %d (%s)", name, n, rmpsc_last_error());
		CHECK(!strcmp(rmpsc_consumer_group(a->ch), name), "group of the handle");
		for (int i = 0; i < n; i++) {
			uint64_t v = ((const uint64_t *)ptr)[i];
			uint32_t id = (uint32_t)(v >> 32);
			CHECK(id < 2 && (v & 0xffffffffu) == a->next[id], "%s: producer %u record %llu, want %llu",
			      name, id, (unsigned long long)(v & 0xffffffffu), (unsigned long long)a->next[id]);
			a->next[id]++;
		}
		CHECK_OK(rmpsc_advance(a->ch, (size_t)n));
	}
	return NULL;
}

static void test_threads_fan_out(void)
{
	rmpsc_channel *ch = make(FAN_GROUPS, FAN_GROUPS, 64, 0);
	CHECK_OK(rmpsc_group_remove(ch, NULL));
	struct fan_arg cons[FAN_GROUPS], prods[2];
	pthread_t ct[FAN_GROUPS], pt[2];
	for (int g = 0; g < FAN_GROUPS; g++) {
		cons[g] = (struct fan_arg){ handle_of(ch), g, { 0, 0 } };
		char name[16];
		snprintf(name, sizeof name, "fan%d", g);
		CHECK_OK(rmpsc_consumer_join(cons[g].ch, name, 0)); /* before the first record */
		CHECK(pthread_create(&ct[g], NULL, fan_consumer, &cons[g]) == 0, "pthread_create");
	}
	for (int i = 0; i < 2; i++) {
		prods[i] = (struct fan_arg){ ch, i, { 0, 0 } };
		CHECK(pthread_create(&pt[i], NULL, fan_producer, &prods[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < 2; i++)
		pthread_join(pt[i], NULL);
	rmpsc_channel_close(ch);
	for (int g = 0; g < FAN_GROUPS; g++) {
		pthread_join(ct[g], NULL);
		CHECK(cons[g].next[0] == FAN_RECORDS && cons[g].next[1] == FAN_RECORDS, "group %d got %llu + %llu", g,
		      (unsigned long long)cons[g].next[0], (unsigned long long)cons[g].next[1]);
		rmpsc_channel_release(cons[g].ch);
	}
	rmpsc_channel_release(ch);
	printf("threads in %d groups: every group every record, in order ok\n", FAN_GROUPS);
}

/* --- errors ---------------------------------------------------------------------------- */

static void test_errors(void)
{
	struct rmpsc_config c = { .record_size = 8, .capacity = 8, .max_producers = 1, .max_consumers = 300 };
	rmpsc_channel *ch;
	CHECK_RC(rmpsc_channel_create(&ch, NULL, &c, 0), RMPSC_EINVAL);
	check_msg_has("max_consumers", "max_consumers");
	c.max_consumers = 2;
	c.max_groups = 65;
	CHECK_RC(rmpsc_channel_create(&ch, NULL, &c, 0), RMPSC_EINVAL);
	check_msg_has("max_groups", "max_groups");
	ch = make(2, 2, 8, 0);
	CHECK_RC(rmpsc_consumer_join(ch, "a-name-that-is-much-longer-than-31-bytes", 0), RMPSC_EINVAL);
	CHECK_RC(rmpsc_consumer_join(ch, "x", 0x80), RMPSC_EINVAL);
	CHECK_OK(rmpsc_consumer_join(ch, "x", RMPSC_GROUP_EPHEMERAL));
	rmpsc_channel *h = handle_of(ch);
	CHECK_RC(rmpsc_consumer_join(h, "x", 0), RMPSC_EINVAL);
	check_msg_has("flags mismatch", "exists with flags");
	CHECK_RC(rmpsc_consumer_join(h, "y", 0), RMPSC_ECONSUMER); /* the default group and x fill max_groups 2 */
	check_msg_has("no group place", "max_groups");
	CHECK_RC(rmpsc_group_remove(ch, "x"), RMPSC_EINVAL);
	check_msg_has("remove a group with a member", "live member");
	CHECK_RC(rmpsc_group_remove(ch, "nope"), RMPSC_EINVAL);
	CHECK_OK(rmpsc_consumer_join(h, NULL, 0)); /* second place */
	pid_t kid = fork_child();
	if (kid == 0) {
		rmpsc_channel *k = handle_of(ch);
		CHECK_RC(rmpsc_consumer_join(k, NULL, 0), RMPSC_ECONSUMER);
		check_msg_has("no member place", "max_consumers");
		_exit(0);
	}
	CHECK_RC(reap(kid), 0);
	rmpsc_channel_release(h);
	rmpsc_channel_release(ch);
	struct rmpsc_config one = { .record_size = 8, .capacity = 8, .max_producers = 1 };
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &one, 0));
	CHECK_RC(rmpsc_group_remove(ch, NULL), RMPSC_EINVAL);
	CHECK_RC(rmpsc_consumer_join(ch, "other", 0), RMPSC_ECONSUMER);
	rmpsc_channel_release(ch);
	printf("errors ok\n");
}

int main(void)
{
	harness_start("test_groups", 120);
	atexit(children_kill_all);
	test_fan_out();
	test_new_group_starts_at_tail();
	test_work_sharing();
	test_handshake();
	test_dead_member();
	test_takeover_marks();
	test_leave_with_read_open();
	test_ephemeral();
	test_slabs_in_groups();
	test_threads_fan_out();
	test_errors();
	return 0;
}
