/*
 * What the message tests share: channels, messages of a byte pattern per tag
 * (a byte in the wrong place shows), receiving one and checking it, and a sender
 * killed while it gathers slabs.
 */
#ifndef RMPSC_TEST_MESSAGES_H
#define RMPSC_TEST_MESSAGES_H

#include "children.h"
#include "harness.h"

#define MS     1000000ll
#define SEC_NS 1000000000ll

static inline rmpsc_channel *make(uint32_t rs, uint32_t cap, uint32_t maxp, uint32_t slab_size, uint32_t slabs,
				  uint32_t max_consumers)
{
	struct rmpsc_config c = { .record_size = rs,
				  .capacity = cap,
				  .max_producers = maxp,
				  .slab_size = slab_size,
				  .slab_count = slabs,
				  .max_consumers = max_consumers };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	return ch;
}

/* Message bytes: a pattern of (tag, offset), so a byte in the wrong place shows. */
static inline unsigned char pattern(uint32_t tag, uint64_t i)
{
	return (unsigned char)(tag * 2654435761u + i * 40503u + (i >> 11));
}

static inline void fill(unsigned char *b, uint64_t n, uint32_t tag)
{
	for (uint64_t i = 0; i < n; i++)
		b[i] = pattern(tag, i);
}

static inline void check_bytes(const unsigned char *b, uint64_t n, uint32_t tag)
{
	for (uint64_t i = 0; i < n; i++)
		CHECK(b[i] == pattern(tag, i), "message %u: byte %llu is %u, want %u", tag, (unsigned long long)i, b[i],
		      pattern(tag, i));
}

/* Send n bytes of pattern `tag` in three parts (one empty), so gathering is exercised. */
static inline int send_tagged(rmpsc_producer *p, uint64_t n, uint32_t tag, int64_t timeout_ns)
{
	unsigned char *b = malloc(n ? n : 1);
	CHECK(b, "malloc");
	fill(b, n, tag);
	uint64_t a = n / 3;
	struct rmpsc_part parts[3] = { { b, a }, { NULL, 0 }, { b + a, n - a } };
	int rc = rmpsc_producer_send_message(p, parts, 3, timeout_ns);
	free(b);
	return rc;
}

/* Receive one message and check it is n bytes of `tag`. */
static inline void recv_check(rmpsc_channel *ch, uint64_t n, uint32_t tag)
{
	const void *rec;
	CHECK_RC(rmpsc_read(ch, 1, 5 * SEC_NS, &rec, NULL), 1);
	struct rmpsc_message m;
	CHECK_OK(rmpsc_message_at(ch, 0, &m));
	CHECK(m.len == n, "message %u: len %llu, want %llu", tag, (unsigned long long)m.len, (unsigned long long)n);
	unsigned char *b = malloc(n ? n : 1);
	CHECK_OK(rmpsc_message_copy(ch, &m, b));
	check_bytes(b, n, tag);
	if (m.data)
		check_bytes(m.data, n, tag);
	free(b);
	CHECK_OK(rmpsc_advance_messages(ch, 1));
}

/*
 * A sender of a 12-slab message (3000 bytes of slabs of 256) killed while it
 * gathers: it took the assembler's turn and every free slab, and sleeps for the
 * rest. Returns once it is dead and reaped.
 */
static inline void kill_an_assembler(rmpsc_channel *ch)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		rmpsc_producer *c;
		CHECK_OK(rmpsc_producer_register(ch, &c));
		send_tagged(c, 3000, 2, -1);
		_exit(3);
	}
	/* Observable: the pool empty and the child asleep (its wait for more). */
	int64_t until = now_ns() + 10 * SEC_NS;
	while (rmpsc_slab_free_count(ch) != 0 || proc_state(pid) != 'S') {
		CHECK(now_ns() < until, "the sender never gathered the free slabs (%u free, state %c)",
		      rmpsc_slab_free_count(ch), proc_state(pid));
		sched_yield();
	}
	kill(pid, SIGKILL);
	CHECK(reap(pid) == 128 + SIGKILL, "the sender did not die of SIGKILL");
}

#endif
