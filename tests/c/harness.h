/*
 * Tiny harness for the C tests: one standalone program per feature. Exit 0 pass,
 * 1 fail, 77 skip. Every test arms a watchdog so a hang fails with a message
 * instead of stalling CI (tests/c/run.sh adds an outer `timeout` as well).
 */
#ifndef RMPSC_TEST_HARNESS_H
#define RMPSC_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ringmpsc.h"

#define SKIP_EXIT 77

static const char *harness_test_name = "test";
static unsigned harness_timeout_s;

static void harness_on_alarm(int sig)
{
	(void)sig;
	char msg[256];
	int n = snprintf(msg, sizeof msg, "FAIL %s: watchdog: no progress within %u s (hang)\n", harness_test_name,
			 harness_timeout_s);
	if (write(2, msg, (size_t)n) < 0) {
	}
	_exit(1);
}

/* Arm the watchdog for the whole program (forked children inherit nothing of it). */
static inline void harness_start(const char *name, unsigned timeout_s)
{
	harness_test_name = name;
	harness_timeout_s = timeout_s;
	signal(SIGALRM, harness_on_alarm);
	alarm(timeout_s);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

#define FAIL(...)                                                    \
	do {                                                         \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                        \
		fprintf(stderr, "\n");                               \
		exit(1);                                             \
	} while (0)

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "FAIL %s:%d: CHECK(%s) ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                         \
			fprintf(stderr, "\n");                                                \
			exit(1);                                                              \
		}                                                                             \
	} while (0)

/* Check that an rmpsc call returns `want` (a code or a count). */
#define CHECK_RC(expr, want)                                                                           \
	do {                                                                                           \
		long long got_ = (long long)(expr);                                                    \
		long long want_ = (long long)(want);                                                   \
		if (got_ != want_)                                                                     \
			FAIL("%s returned %lld (%s), expected %lld (%s); last error: %s", #expr, got_, \
			     got_ < 0 ? rmpsc_strerror((int)got_) : "count", want_,                    \
			     want_ < 0 ? rmpsc_strerror((int)want_) : "count", rmpsc_last_error());    \
	} while (0)

#define CHECK_OK(expr) CHECK_RC(expr, RMPSC_OK)

static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A thread about to block publishes its kernel tid here (0 until then). */
static inline void publish_tid(int *tid)
{
	__atomic_store_n(tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
}

/*
 * Wait until the thread that published *tid is asleep in the kernel (a blocking
 * wait, past any spinning), instead of sleeping and hoping it got there.
 * Fails after 10 s.
 */
static inline void wait_blocked(int *tid)
{
	int64_t deadline = now_ns() + 10000000000ll;
	for (;;) {
		int t = __atomic_load_n(tid, __ATOMIC_ACQUIRE);
		if (t) {
			char path[64], buf[512], *p;
			snprintf(path, sizeof path, "/proc/self/task/%d/stat", t);
			FILE *f = fopen(path, "r");
			size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
			if (f)
				fclose(f);
			buf[n] = 0;
			if ((p = strrchr(buf, ')')) && p[1] == ' ' && p[2] == 'S')
				return;
		}
		if (now_ns() > deadline)
			FAIL("thread %d did not block within 10 s", t);
		usleep(200);
	}
}

/* xorshift64*: deterministic per-thread randomness. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/*
 * Integrity records (record_size >= 16): [u32 producer][u32 check][u64 seq][payload].
 * The payload bytes and `check` derive from (producer, seq), so a torn, duplicated,
 * misplaced or corrupted record is detected.
 */
static inline uint32_t rec_hash(uint32_t producer, uint64_t seq, const unsigned char *payload, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ producer;
	h = (h ^ seq) * 1099511628211ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ payload[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32));
}

static inline void rec_fill(void *rec, uint32_t rs, uint32_t producer, uint64_t seq)
{
	unsigned char *b = rec;
	memcpy(b, &producer, 4);
	memcpy(b + 8, &seq, 8);
	for (uint32_t i = 16; i < rs; i++)
		b[i] = (unsigned char)(seq * 31 + producer * 7 + i);
	uint32_t h = rec_hash(producer, seq, b + 16, rs - 16);
	memcpy(b + 4, &h, 4);
}

/* Returns 0 if intact and fills producer/seq. */
static inline int rec_check(const void *rec, uint32_t rs, uint32_t *producer, uint64_t *seq)
{
	const unsigned char *b = rec;
	uint32_t h;
	memcpy(producer, b, 4);
	memcpy(&h, b + 4, 4);
	memcpy(seq, b + 8, 8);
	for (uint32_t i = 16; i < rs; i++)
		if (b[i] != (unsigned char)(*seq * 31 + *producer * 7 + i))
			return -1;
	return h == rec_hash(*producer, *seq, b + 16, rs - 16) ? 0 : -1;
}

#endif
