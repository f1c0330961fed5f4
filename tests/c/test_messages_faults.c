/*
 * Messages at their edges: records of 4..7 bytes (no room for a slab count) never
 * written past; a channel that can carry no message refuses one instead of
 * dividing by an empty pool; a try-once sender after an assembler died; a message
 * of several slabs read with rmpsc_read_bytes refused, not handed out as its list;
 * a consumer killed after reading messages of several slabs, before advancing.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "children.h"
#include "harness.h"
#include "messages.h"

/*
 * record_size 4..7: a slab message's record has room for the handle only. The
 * count in bytes 4..7 must not be written past the record: into the next slot of
 * the ring, which holds the unread head record once the ring is one short of full.
 */
static void test_small_records(void)
{
	for (uint32_t rs = 4; rs < 8; rs++) {
		rmpsc_channel *ch = make(rs, 4, 1, 64, 8, 1);
		CHECK(rmpsc_message_max(ch) == 64, "rs %u: message_max %llu", rs,
		      (unsigned long long)rmpsc_message_max(ch));
		/* Slab 1 is kept out of every message: a record whose handle was
		 * overwritten by a count of 1 names it, and shows. */
		uint32_t h[8], n = 0, one = RMPSC_INVALID_HANDLE;
		while (n < 8 && rmpsc_slab_alloc(ch, 0, &h[n]) == RMPSC_OK)
			n++;
		CHECK(n == 8, "rs %u: allocated %u of 8", rs, n);
		for (uint32_t i = 0; i < n; i++) {
			if (h[i] == 1)
				one = h[i];
			else
				CHECK_OK(rmpsc_slab_free(ch, h[i]));
		}
		CHECK(one == 1, "rs %u: slab 1 not allocated", rs);
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(ch, &p));
		CHECK_OK(send_tagged(p, 10, 0, 0));
		recv_check(ch, 10, 0); /* head 1: the next record lands in slot 0 again later */
		for (uint32_t i = 1; i <= 4; i++)
			CHECK_OK(send_tagged(p, 20 + i, i, 0)); /* the 4th is written to the slot before the head's */
		for (uint32_t i = 1; i <= 4; i++)
			recv_check(ch, 20 + i, i);
		CHECK_OK(rmpsc_slab_free(ch, one));
		CHECK(rmpsc_slab_free_count(ch) == 8, "rs %u: %u slabs free, want 8", rs, rmpsc_slab_free_count(ch));
		rmpsc_producer_close(p);
		rmpsc_channel_release(ch);
	}
}

/* A channel that carries no message (records under 8 bytes, no pool): an empty
 * message is refused, not sent to a slab allocator with no slabs (a division by
 * the pool's size). In a child, so a crash is reported, not suffered. */
static void test_no_message_channel(void)
{
	for (uint32_t rs = 1; rs < 8; rs++) {
		rmpsc_channel *ch = make(rs, 4, 1, 0, 0, 1);
		CHECK(rmpsc_message_max(ch) == 0, "rs %u: message_max %llu", rs,
		      (unsigned long long)rmpsc_message_max(ch));
		pid_t c = fork_child();
		if (c == 0) {
			rmpsc_producer *p;
			CHECK_OK(rmpsc_producer_register(ch, &p));
			int rc = rmpsc_producer_send_message(p, NULL, 0, 0);
			_exit(rc == RMPSC_EINVAL ? 0 : 10);
		}
		int st = reap(c);
		CHECK(st == 0, "rs %u: an empty message on a channel that carries none: %s %d", rs,
		      st > 128 ? "the sender died of signal" : "exit", st > 128 ? st - 128 : st);
		rmpsc_channel_release(ch);
	}
}

/*
 * An assembler killed while it gathers: a try-once sender needing several slabs
 * must not find the dead one's turn forever (nobody waits, so nobody replaces it)
 * while the pool is all free.
 */
static void test_dead_assembler_try_once(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 64, 3, 256, 16, max_consumers);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(send_tagged(p, 2500, 1, 0)); /* 11 slabs held by a record */
	kill_an_assembler(ch);
	recv_check(ch, 2500, 1);
	/* 11 free at least: a 5-slab message, try once. */
	int rc = send_tagged(p, 1000, 3, 0);
	CHECK(rc == RMPSC_OK, "try-once send after the assembler died: %d (%s), %u slabs free", rc, rmpsc_last_error(),
	      rmpsc_slab_free_count(ch));
	recv_check(ch, 1000, 3);
	CHECK_OK(send_tagged(p, 3700, 4, 0)); /* 15 slabs: the dead one's came back */
	recv_check(ch, 3700, 4);
	CHECK(rmpsc_slab_free_count(ch) == 16, "%u slabs free, want 16", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/*
 * rmpsc_read_bytes on a message of several slabs: the first slab starts with the
 * list of the others, so handing out its bytes would be the list and a prefix of
 * the message under the message's name. Refused (ECORRUPT, consumed like any
 * record that is not a bytes message), its slabs back in the pool; a message of
 * one slab is a bytes message.
 */
static void test_read_bytes_of_message(void)
{
	rmpsc_channel *ch = make(64, 16, 1, 256, 16, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(send_tagged(p, 1000, 1, 0)); /* 5 slabs */
	CHECK_OK(send_tagged(p, 200, 2, 0));  /* 1 slab */
	unsigned char buf[1000];
	int64_t n = rmpsc_recv_bytes(ch, buf, sizeof buf, 0);
	CHECK(n == RMPSC_ECORRUPT, "recv_bytes of a 5-slab message: %lld (%s)", (long long)n, rmpsc_last_error());
	n = rmpsc_recv_bytes(ch, buf, sizeof buf, 0);
	CHECK(n == 200, "recv_bytes of a 1-slab message: %lld (%s)", (long long)n, rmpsc_last_error());
	for (int i = 0; i < 200; i++)
		CHECK(buf[i] == pattern(2, (uint64_t)i), "byte %d", i);
	CHECK(rmpsc_slab_free_count(ch) == 16, "%u slabs free, want 16", rmpsc_slab_free_count(ch));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/*
 * A consumer killed after reading two messages of several slabs (decoded and
 * copied), before advancing: the next consumer (a new claim, or with groups its
 * group's next member) gets both again, intact, and their slabs come back once
 * it advances.
 */
static void test_consumer_killed(uint32_t max_consumers)
{
	rmpsc_channel *ch = make(64, 16, 1, 256, 16, max_consumers);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(send_tagged(p, 1500, 1, 0)); /* 6 slabs */
	CHECK_OK(send_tagged(p, 1200, 2, 0)); /* 5 slabs */
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		const void *rec;
		CHECK_RC(rmpsc_read(ch, 2, 0, &rec, NULL), 2);
		unsigned char b[1500];
		for (size_t i = 0; i < 2; i++) {
			struct rmpsc_message m;
			CHECK_OK(rmpsc_message_at(ch, i, &m));
			CHECK_OK(rmpsc_message_copy(ch, &m, b));
		}
		link_put(l.wr, "r", 1);
		for (;;)
			pause();
	}
	char r;
	link_get(l.rd, &r, 1);
	kill(c, SIGKILL);
	CHECK_RC(reap(c), 128 + SIGKILL);
	recv_check(ch, 1500, 1);
	recv_check(ch, 1200, 2);
	CHECK(rmpsc_slab_free_count(ch) == 16, "%u slabs free, want 16", rmpsc_slab_free_count(ch));
	link_close(&l);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* Each case, by name (argv[1] runs one). */
static void dead_assembler_1(void)
{
	test_dead_assembler_try_once(1);
}
static void dead_assembler_2(void)
{
	test_dead_assembler_try_once(2);
}
static void consumer_killed_1(void)
{
	test_consumer_killed(1);
}
static void consumer_killed_2(void)
{
	test_consumer_killed(2);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "small_records", test_small_records },
	{ "no_message_channel", test_no_message_channel },
	{ "dead_assembler_1", dead_assembler_1 },
	{ "dead_assembler_2", dead_assembler_2 },
	{ "read_bytes_of_message", test_read_bytes_of_message },
	{ "consumer_killed_1", consumer_killed_1 },
	{ "consumer_killed_2", consumer_killed_2 },
};

int main(int argc, char **argv)
{
	harness_start("test_messages_faults", 120);
	atexit(children_cleanup_at_exit);
	int ran = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		if (argc < 2 || !strcmp(argv[1], cases[i].name)) {
			cases[i].fn();
			ran++;
		}
	CHECK(ran, "no case named %s", argv[1]);
	printf("test_messages_faults: all passed\n");
	return 0;
}
