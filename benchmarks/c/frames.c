/*
 * Large messages through the core (`make bench-frames`): 1 MiB frames from one
 * producer process to one consumer process, next to the physical yardsticks.
 *
 *   ringmpsc   rmpsc_producer_send_message of each frame into a channel laid out as
 *              ringmpsc.Queue lays out one of --depth frames (64-byte records, slabs of
 *              8 KiB, a pool of --depth frames' slabs, the default group of 64 member
 *              places); the consumer takes each message (rmpsc_read, rmpsc_message_at)
 *              and copies it out (rmpsc_message_copy) into its own frame
 *   bare ring  the same two copies with no library: --depth frame buffers in shared
 *              memory, a head and a tail counter, both sides spinning (sched_yield after
 *              a while) on the other's counter
 *   memcpy     one thread copying one frame into another, both in its cache
 *
 * The producer sends frames from a pool of --depth + 2 (as benchmarks/python/queues.py
 * does, so its source is not one frame always in cache), each stamped with its number
 * at its first and last 8 bytes; the consumer checks both in every frame it copied out
 * (a mismatch fails the run). Each process is pinned (consumer on the first allowed
 * CPU, producer on the next; --no-pin leaves them to the scheduler). A run is --frames
 * frames after --depth x 2 untimed ones; figures are the median of --runs runs, with
 * ratios to the bare ring and to memcpy in the same run.
 *
 *   build/bench_frames [--frames N] [--depth D] [--runs R] [--no-pin]
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "ringmpsc.h"

#define FRAME       (1u << 20)
#define SLAB        8192u
#define FRAME_SLABS ((FRAME - 4 + SLAB - 5) / (SLAB - 4)) /* slabs a frame takes (its list takes 4 bytes a slab) */
#define SPIN_YIELD  1000
#define STUCK_NS \
	(30 * 1000000000ll) /* a side that waits this long for the other: it died or hangs */ /* polls before the spinning side yields its CPU between polls */

static uint32_t n_frames = 3000, depth = 4, n_runs = 5;

static void die(const char *what)
{
	fprintf(stderr, "bench_frames: %s: %s\n", what, rmpsc_last_error());
	exit(1);
}

/* The producer's pool of source frames, each stamped before it is sent. */
static unsigned char **source_frames(uint32_t k)
{
	unsigned char **src = malloc(k * sizeof *src);
	for (uint32_t i = 0; i < k; i++) {
		src[i] = xaligned(FRAME);
		for (uint32_t j = 0; j < FRAME; j++)
			src[i][j] = (unsigned char)(i * 31 + j);
	}
	return src;
}

static unsigned char *stamp(unsigned char **src, uint32_t k, int64_t i)
{
	unsigned char *f = src[(uint64_t)(i + (int64_t)k * 4) % k];
	store_u64(f, (uint64_t)i);
	store_u64(f + FRAME - 8, (uint64_t)i);
	return f;
}

static void check(const unsigned char *f, int64_t i)
{
	if (load_u64(f) != (uint64_t)i || load_u64(f + FRAME - 8) != (uint64_t)i) {
		fprintf(stderr, "bench_frames: frame %lld arrived as %llu/%llu\n", (long long)i,
			(unsigned long long)load_u64(f), (unsigned long long)load_u64(f + FRAME - 8));
		exit(1);
	}
}

/* What the consumer reports back through shared memory: when it checked the last frame. */
struct shared_clock {
	int64_t start_ns, end_ns;
	uint32_t ready;
};

static struct shared_clock *clock_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static pid_t fork_pinned(int cpu)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		alarm(120);
		pin_self(cpu);
	}
	return pid;
}

static double finish(pid_t kid, struct shared_clock *clk, int64_t frames)
{
	int st;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_frames: the consumer failed\n");
		exit(1);
	}
	return (double)frames * 1e9 / (double)(clk->end_ns - clk->start_ns);
}

/* --- ringmpsc ------------------------------------------------------------- */

static double run_ringmpsc(void)
{
	struct rmpsc_config c = { .record_size = 64,
				  .capacity = 1024,
				  .max_producers = 1,
				  .slab_size = SLAB,
				  .slab_count = depth * FRAME_SLABS,
				  .max_consumers = 64,
				  .max_groups = 1 };
	rmpsc_channel *ch;
	if (rmpsc_channel_create(&ch, NULL, &c, 0))
		die("channel_create");
	struct shared_clock *clk = clock_page();
	int64_t warm = 2 * (int64_t)depth, total = warm + n_frames;
	pid_t kid = fork_pinned(consumer_cpu());
	if (kid == 0) {
		unsigned char *dst = xaligned(FRAME);
		if (rmpsc_consumer_join(ch, NULL, 0))
			die("consumer_join");
		__atomic_store_n(&clk->ready, 1, __ATOMIC_RELEASE);
		for (int64_t i = 0; i < total;) {
			const void *rec;
			int n = rmpsc_read(ch, 16, 10 * 1000000000ll, &rec, NULL);
			if (n < 0)
				die("read");
			for (int k = 0; k < n; k++, i++) {
				struct rmpsc_message m;
				if (rmpsc_message_at(ch, (size_t)k, &m) || m.len != FRAME ||
				    rmpsc_message_copy(ch, &m, dst))
					die("message");
				check(dst, i - warm);
				if (i == warm - 1)
					clk->start_ns = now_ns();
			}
			if (rmpsc_advance_messages(ch, (size_t)n))
				die("advance");
		}
		clk->end_ns = now_ns();
		_exit(0);
	}
	pin_self(producer_cpu(0));
	unsigned char **src = source_frames(depth + 2);
	rmpsc_producer *p;
	if (rmpsc_producer_register(ch, &p))
		die("producer_register");
	for (int64_t give_up = now_ns() + STUCK_NS; !__atomic_load_n(&clk->ready, __ATOMIC_ACQUIRE);) {
		if (now_ns() > give_up) {
			fprintf(stderr, "bench_frames: the consumer did not join within 30 s\n");
			exit(1);
		}
		sched_yield();
	}
	for (int64_t i = -warm; i < (int64_t)n_frames; i++) {
		struct rmpsc_part part = { stamp(src, depth + 2, i), FRAME };
		if (rmpsc_producer_send_message(p, &part, 1, 10 * 1000000000ll))
			die("send_message");
	}
	double rate = finish(kid, clk, n_frames);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	for (uint32_t i = 0; i < depth + 2; i++)
		free(src[i]);
	free(src);
	munmap(clk, 4096);
	return rate;
}

/* --- the bare ring ---------------------------------------------------------- */

struct bare {
	int64_t tail __attribute__((aligned(64))); /* frames published */
	int64_t head __attribute__((aligned(64))); /* frames consumed */
};

static void wait_until(const int64_t *word, int64_t at_least)
{
	int64_t give_up = 0;
	for (uint32_t polls = 0; __atomic_load_n(word, __ATOMIC_ACQUIRE) < at_least; polls++) {
		if (polls < SPIN_YIELD)
			continue;
		sched_yield();
		if (polls % SPIN_YIELD)
			continue;
		if (!give_up)
			give_up = now_ns() + STUCK_NS;
		else if (now_ns() > give_up) {
			fprintf(stderr, "bench_frames: the bare ring's other side stopped (waited 30 s)\n");
			exit(1);
		}
	}
}

static double run_bare(void)
{
	size_t size = 4096 + (size_t)depth * FRAME;
	unsigned char *shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		die("mmap");
	memset(shm, 0, size);
	struct bare *b = (struct bare *)shm;
	unsigned char *frames = shm + 4096;
	struct shared_clock *clk = clock_page();
	int64_t warm = 2 * (int64_t)depth, total = warm + n_frames;
	pid_t kid = fork_pinned(consumer_cpu());
	if (kid == 0) {
		unsigned char *dst = xaligned(FRAME);
		for (int64_t i = 0; i < total; i++) {
			wait_until(&b->tail, i + 1);
			memcpy(dst, frames + (uint64_t)(i % depth) * FRAME, FRAME);
			__atomic_store_n(&b->head, i + 1, __ATOMIC_RELEASE);
			check(dst, i - warm);
			if (i == warm - 1)
				clk->start_ns = now_ns();
		}
		clk->end_ns = now_ns();
		_exit(0);
	}
	pin_self(producer_cpu(0));
	unsigned char **src = source_frames(depth + 2);
	for (int64_t i = 0; i < total; i++) {
		wait_until(&b->head, i - (int64_t)depth + 1);
		memcpy(frames + (uint64_t)(i % depth) * FRAME, stamp(src, depth + 2, i - warm), FRAME);
		__atomic_store_n(&b->tail, i + 1, __ATOMIC_RELEASE);
	}
	double rate = finish(kid, clk, n_frames);
	for (uint32_t i = 0; i < depth + 2; i++)
		free(src[i]);
	free(src);
	munmap(shm, size);
	munmap(clk, 4096);
	return rate;
}

/* --- memcpy ------------------------------------------------------------------ */

static double run_memcpy(void)
{
	unsigned char *a = xaligned(FRAME), *b = xaligned(FRAME);
	for (int i = 0; i < 20; i++)
		memcpy(b, a, FRAME);
	int64_t t0 = now_ns(), n = 0;
	while (now_ns() - t0 < 300000000) {
		for (int i = 0; i < 50; i++) {
			a[0] = (unsigned char)i;
			memcpy(b, a, FRAME);
		}
		n += 50;
	}
	double rate = (double)n * 1e9 / (double)(now_ns() - t0);
	if (b[0] != a[0])
		exit(1);
	free(a);
	free(b);
	return rate;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double median(double *v, uint32_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint32_t parse_count(const char *opt, const char *v)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v ? v : "", &end, 10);
	if (!v || errno || *end || n < 1 || n > 1000000) {
		fprintf(stderr, "bench_frames: %s wants a count from 1 to 1000000, not %s\n", opt, v ? v : "nothing");
		exit(2);
	}
	return (uint32_t)n;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--frames"))
			n_frames = parse_count("--frames", argv[++i]);
		else if (!strcmp(argv[i], "--depth"))
			depth = parse_count("--depth", argv[++i]);
		else if (!strcmp(argv[i], "--runs"))
			n_runs = parse_count("--runs", argv[++i]);
		else if (!strcmp(argv[i], "--no-pin"))
			bench_pin = 0;
		else {
			fprintf(stderr, "usage: bench_frames [--frames N] [--depth D] [--runs R] [--no-pin]\n");
			return 2;
		}
	}
	if (depth > 64) {
		fprintf(stderr, "bench_frames: --depth is at most 64\n");
		return 2;
	}
	init_cpus();
	double *lib = malloc(n_runs * sizeof *lib), *bare = malloc(n_runs * sizeof *bare),
	       *mem = malloc(n_runs * sizeof *mem);
	/* In rounds, so that a change in the machine's load falls on every row alike. */
	for (uint32_t r = 0; r < n_runs; r++) {
		lib[r] = run_ringmpsc();
		bare[r] = run_bare();
		mem[r] = run_memcpy();
	}
	double l = median(lib, n_runs), b = median(bare, n_runs), m = median(mem, n_runs);
	printf("1 MiB frames, 1 producer process -> 1 consumer process (%s), queue depth %u frames, %u frames "
	       "per run, median of %u runs; each side copies once, the consumer checks every frame\n",
	       bench_pin && n_cpus > 1 ? "pinned to two CPUs" : "not pinned", depth, n_frames, n_runs);
	printf("  %-42s %10s %8s %10s %10s\n", "path", "frames/s", "GB/s", "÷ bare", "÷ memcpy");
	printf("  %-42s %10.0f %8.2f %9.2fx %9.2fx\n", "ringmpsc send_message / message_copy", l, l * FRAME / 1e9,
	       l / b, l / m);
	printf("  %-42s %10.0f %8.2f %9.2fx %9.2fx\n", "bare ring (two memcpy, spinning)", b, b * FRAME / 1e9, 1.0,
	       b / m);
	printf("  %-42s %10.0f %8.2f %10s %9.2fx\n", "memcpy (one thread, in cache)", m, m * FRAME / 1e9, "", 1.0);
	free(lib);
	free(bare);
	free(mem);
	return 0;
}
