/*
 * Asymmetric fences (csrc/barrier.h), across processes, in both fence modes:
 *   - the mode: chosen at create (asymmetric by default where membarrier works,
 *     full with RMPSC_CREATE_FULL_FENCES), kept by every process that maps it;
 *   - wake-ups: with no spin before sleeping, every wait of a cross-process
 *     ping-pong and of a producer on a 2-record ring really sleeps, so a lost
 *     wake-up (a publisher that missed the sleeper's flag) times out and fails;
 *   - close vs. reservations: producer processes send until ECLOSED while another
 *     process closes at a random moment; the consumer must receive exactly what
 *     every producer committed (none lost, none after "closed and drained").
 * TSan cannot follow fork, so this program runs plain and under ASan+UBSan.
 */
#include <pthread.h>

#include "children.h"
#include "handle.h"
#include "harness.h"
#include "wait.h"

#define SEC             1000000000ll
#define PINGPONGS       20000
#define HANDOFFS        50000
#define CLOSE_ROUNDS    150
#define CLOSE_PRODUCERS 2

static const char *mode_name(unsigned flags)
{
	return flags & RMPSC_CREATE_FULL_FENCES ? "full" : "asymmetric";
}

static rmpsc_channel *make_channel(uint32_t rs, uint32_t cap, uint32_t maxp, unsigned flags)
{
	rmpsc_channel *ch;
	struct rmpsc_config c = { .record_size = rs, .capacity = cap, .max_producers = maxp };
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, flags));
	return ch;
}

/* --- the mode ------------------------------------------------------------- */

static void test_mode_is_fixed_at_create(void)
{
	rmpsc_channel *asym = make_channel(8, 4, 1, 0), *full = make_channel(8, 4, 1, RMPSC_CREATE_FULL_FENCES);
	CHECK(full->hdr->fence_mode == FENCE_FULL && !full->asymmetric, "full mode when asked: %u",
	      full->hdr->fence_mode);
	int can_register = rmpsc__fence_register() == 0;
	CHECK(asym->hdr->fence_mode == (can_register ? FENCE_ASYMMETRIC : FENCE_FULL),
	      "default mode %u (membarrier registration %s)", asym->hdr->fence_mode, can_register ? "works" : "fails");
	CHECK(asym->asymmetric == can_register, "handle mode follows the region");
	if (!can_register)
		printf("membarrier registration fails here: asymmetric mode is not exercised\n");

	/* Every process that maps the channel sees the same mode. */
	struct link l;
	pid_t pid = fork_linked(&l);
	if (pid == 0) {
		rmpsc_channel *a, *f;
		int ok = rmpsc_channel_attach_fd(&a, rmpsc_channel_fd(asym), 0) == 0 &&
			 rmpsc_channel_attach_fd(&f, rmpsc_channel_fd(full), 0) == 0 &&
			 a->asymmetric == asym->asymmetric && !f->asymmetric && rmpsc__fence_registered == can_register;
		_exit(ok ? 0 : 1);
	}
	CHECK(reap(pid) == 0, "child sees the modes and is registered after fork");
	link_close(&l);

	/* Unknown flags are refused; the fence flag means nothing to open/attach. */
	rmpsc_channel *ch;
	struct rmpsc_config c = { .record_size = 8, .capacity = 4, .max_producers = 1 };
	CHECK_RC(rmpsc_channel_create(&ch, NULL, &c, 0x4), RMPSC_EINVAL);
	CHECK_RC(rmpsc_channel_attach_fd(&ch, rmpsc_channel_fd(asym), RMPSC_CREATE_FULL_FENCES), RMPSC_EINVAL);
	rmpsc_channel_release(asym);
	rmpsc_channel_release(full);
	printf("fence mode fixed at create and seen by every process ok\n");
}

/* --- wake-ups: every wait sleeps ---------------------------------------------- */

static void test_sleepy_pingpong(unsigned flags)
{
	rmpsc_channel *there = make_channel(8, 2, 1, flags), *back = make_channel(8, 2, 1, flags);
	pid_t pid = fork_child();
	if (pid == 0) {
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(back, &p));
		for (uint64_t i = 0; i < PINGPONGS; i++) {
			uint64_t v;
			CHECK_RC(rmpsc_recv(there, &v, 1, 5 * SEC), 1);
			CHECK(v == i, "pong got %llu at %llu", (unsigned long long)v, (unsigned long long)i);
			CHECK_OK(rmpsc_producer_send(p, &v, 8, 5 * SEC));
		}
		_exit(0);
	}
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(there, &p));
	int64_t t0 = now_ns();
	for (uint64_t i = 0; i < PINGPONGS; i++) {
		uint64_t v;
		CHECK_OK(rmpsc_producer_send(p, &i, 8, 5 * SEC));
		int n = rmpsc_recv(back, &v, 1, 5 * SEC);
		CHECK(n == 1, "%s fences: round %llu: recv %d (%s): a lost wake-up", mode_name(flags),
		      (unsigned long long)i, n, rmpsc_last_error());
		CHECK(v == i, "ping got %llu for %llu", (unsigned long long)v, (unsigned long long)i);
	}
	CHECK(reap(pid) == 0, "pong process");
	rmpsc_producer_close(p);
	rmpsc_channel_release(there);
	rmpsc_channel_release(back);
	printf("%s fences: %d sleeping cross-process round trips ok (%.1f us each)\n", mode_name(flags), PINGPONGS,
	       (double)(now_ns() - t0) / PINGPONGS / 1000);
}

/* A producer process on a 2-record ring: it sleeps for space, the consumer for data. */
static void test_sleepy_handoffs(unsigned flags)
{
	rmpsc_channel *ch = make_channel(16, 2, 1, flags);
	pid_t pid = fork_child();
	if (pid == 0) {
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(ch, &p));
		unsigned char rec[16];
		for (uint64_t seq = 0; seq < HANDOFFS; seq++) {
			rec_fill(rec, 16, 1, seq);
			CHECK_OK(rmpsc_producer_send(p, rec, 16, 5 * SEC));
		}
		_exit(0);
	}
	unsigned char buf[32];
	uint64_t next = 0;
	while (next < HANDOFFS) {
		int n = rmpsc_recv(ch, buf, 1 + next % 2, 5 * SEC);
		CHECK(n > 0, "%s fences: recv %d at %llu (%s): a lost wake-up", mode_name(flags), n,
		      (unsigned long long)next, rmpsc_last_error());
		for (int i = 0; i < n; i++, next++) {
			uint32_t id;
			uint64_t seq;
			CHECK(rec_check(buf + 16 * i, 16, &id, &seq) == 0 && id == 1 && seq == next,
			      "record %llu intact and in order", (unsigned long long)next);
		}
	}
	CHECK(reap(pid) == 0, "producer process");
	rmpsc_channel_release(ch);
	printf("%s fences: %d sleeping cross-process handoffs on a 2-record ring ok\n", mode_name(flags), HANDOFFS);
}

/* --- close vs. reservations in other processes ---------------------------------- */

/* A producer process: send until ECLOSED, then report how many were committed. */
static void close_race_producer(rmpsc_channel *ch, uint32_t id, int wr)
{
	rmpsc_producer *p;
	uint64_t sent = 0;
	int rc = rmpsc_producer_register(ch, &p);
	if (rc == RMPSC_OK) {
		unsigned char rec[16];
		for (;;) {
			rec_fill(rec, 16, id, sent);
			if (sent & 1) { /* both ways of committing */
				rc = rmpsc_producer_send(p, rec, 16, 5 * SEC);
			} else {
				void *span;
				rc = rmpsc_producer_reserve(p, 1, 5 * SEC, &span);
				if (rc == 1) {
					memcpy(span, rec, 16);
					rc = rmpsc_producer_commit(p, 1);
				}
			}
			if (rc != RMPSC_OK && rc != 1)
				break;
			sent++;
		}
	}
	if (rc != RMPSC_ECLOSED)
		_exit(2);
	_exit(write(wr, &sent, sizeof sent) == sizeof sent ? 0 : 3);
}

static void test_close_race(unsigned flags)
{
	uint64_t rng = 0x5eed ^ flags, total = 0;
	for (int round = 0; round < CLOSE_ROUNDS; round++) {
		rmpsc_channel *ch = make_channel(16, 8, CLOSE_PRODUCERS, flags);
		struct link l[CLOSE_PRODUCERS];
		pid_t pid[CLOSE_PRODUCERS];
		for (uint32_t i = 0; i < CLOSE_PRODUCERS; i++) {
			pid[i] = fork_linked(&l[i]);
			if (pid[i] == 0)
				close_race_producer(ch, i, l[i].wr);
		}
		/* The closer is a process of its own, so close is seen only through the region. */
		useconds_t delay = (useconds_t)(rng_next(&rng) % 3000);
		pid_t closer = fork_child();
		if (closer == 0) {
			usleep(delay);
			_exit(rmpsc_channel_close(ch) == RMPSC_OK ? 0 : 1);
		}
		uint64_t received[CLOSE_PRODUCERS] = { 0 };
		unsigned char buf[16 * 8];
		int n;
		while ((n = rmpsc_recv(ch, buf, 1 + rng_next(&rng) % 8, 5 * SEC)) > 0) {
			for (int i = 0; i < n; i++) {
				uint32_t id;
				uint64_t seq;
				CHECK(rec_check(buf + 16 * i, 16, &id, &seq) == 0 && id < CLOSE_PRODUCERS,
				      "corrupt record");
				CHECK(seq == received[id], "producer %u: got %llu, expected %llu", id,
				      (unsigned long long)seq, (unsigned long long)received[id]);
				received[id]++;
			}
			if (rng_next(&rng) % 64 == 0)
				usleep(50); /* let rings fill: producers sleep for space too */
		}
		CHECK(n == RMPSC_ECLOSED, "%s fences, round %d: recv ended with %d (%s)", mode_name(flags), round, n,
		      rmpsc_last_error());
		CHECK(reap(closer) == 0, "closer process");
		for (uint32_t i = 0; i < CLOSE_PRODUCERS; i++) {
			uint64_t sent = UINT64_MAX;
			CHECK(read(l[i].rd, &sent, sizeof sent) == sizeof sent, "producer %u reports its count", i);
			CHECK(reap(pid[i]) == 0, "producer %u ended with ECLOSED", i);
			CHECK(received[i] == sent,
			      "%s fences, round %d: producer %u committed %llu records, the consumer got %llu "
			      "before ECLOSED (closed and drained must be final)",
			      mode_name(flags), round, i, (unsigned long long)sent, (unsigned long long)received[i]);
			total += sent;
			link_close(&l[i]);
		}
		CHECK_RC(rmpsc_recv(ch, buf, 1, 0), RMPSC_ECLOSED);
		rmpsc_channel_release(ch);
	}
	printf("%s fences: %d close races, %llu records, every commit delivered before ECLOSED ok\n", mode_name(flags),
	       CLOSE_ROUNDS, (unsigned long long)total);
}

int main(void)
{
	harness_start("test_proc_fences", 240);
	atexit(children_kill_all);
	test_mode_is_fixed_at_create();
	rmpsc__spin_ns = 0; /* every wait sleeps at once: the wake-up protocol alone keeps things moving */
	const unsigned modes[] = { 0, RMPSC_CREATE_FULL_FENCES };
	for (int m = 0; m < 2; m++) {
		test_sleepy_pingpong(modes[m]);
		test_sleepy_handoffs(modes[m]);
		test_close_race(modes[m]);
	}
	return 0;
}
