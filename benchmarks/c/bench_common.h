/*
 * What the C benchmarks share (bench.c, steady.c, peers.cpp): the clock, aligned
 * buffers, unaligned u64 access, the noise meter, thread placement (the consumer on
 * the first allowed CPU, producers on the others, wrapping round when there are more
 * producers than CPUs; such rows are "oversubscribed") and the cross-core cache-line
 * round trip, the latency yardstick of both. C and C++.
 */
#ifndef RMPSC_BENCH_COMMON_H
#define RMPSC_BENCH_COMMON_H

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 1024

static int cpus[MAX_CPUS], n_cpus;
static int bench_pin = 1; /* set from the program's --no-pin */

static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void *xaligned(size_t size)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, size ? size : 1) != 0) {
		fprintf(stderr, "%s: out of memory (%zu bytes)\n", program_invocation_short_name, size);
		exit(1);
	}
	memset(p, 0, size);
	return p;
}

static inline uint64_t load_u64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline void store_u64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, sizeof v);
}

static inline int pin_self(int cpu)
{
	if (!bench_pin || cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static inline int consumer_cpu(void)
{
	return n_cpus ? cpus[0] : -1;
}

static inline int producer_cpu(int i)
{
	if (n_cpus == 0)
		return -1;
	if (n_cpus == 1)
		return cpus[0];
	return cpus[1 + i % (n_cpus - 1)];
}

static inline int oversubscribed(int producers)
{
	return producers > (n_cpus > 1 ? n_cpus - 1 : 0);
}

static inline void init_cpus(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	n_cpus = 0;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && n_cpus < MAX_CPUS; c++)
		if (CPU_ISSET(c, &set))
			cpus[n_cpus++] = c;
}

/*
 * Noise meter: CPU time other processes used while we measured (the machine is
 * shared; a row taken while others ran is flagged).
 */
struct noise_mark {
	double sys_busy_s, self_s, wall_s;
};

static inline struct noise_mark noise_now(void)
{
	struct noise_mark m = { 0, 0, (double)now_ns() / 1e9 };
	FILE *f = fopen("/proc/stat", "r");
	if (f) {
		unsigned long long v[10] = { 0 };
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
			   &v[6], &v[7]) == 8)
			m.sys_busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
		fclose(f);
	}
	/* Ours: this process and its children that were waited for (worker processes
	 * are reaped before a row ends). */
	struct rusage ru;
	for (int who = 0; who < 2; who++)
		if (getrusage(who ? RUSAGE_CHILDREN : RUSAGE_SELF, &ru) == 0)
			m.self_s += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
				    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return m;
}

/* Share of the CPUs (0..1) that other processes kept busy since `a`. */
static inline double foreign_load(struct noise_mark a)
{
	struct noise_mark b = noise_now();
	double wall = b.wall_s - a.wall_s, ncpu = n_cpus ? n_cpus : 1;
	if (wall <= 0)
		return 0;
	double other = (b.sys_busy_s - a.sys_busy_s) - (b.self_s - a.self_s);
	double f = other / (wall * ncpu);
	return f < 0 ? 0 : f > 1 ? 1 : f;
}

/*
 * Cross-core cache-line round trip: two threads on two CPUs (the consumer's and the
 * first producer's) bounce a counter on one 64-byte line, no library involved. The
 * caller arms its own watchdog around it.
 */
struct cacheline_rt {
	double p50_ns, p99_ns, rt_per_s; /* NAN when nothing was measured */
	int ok;
};

struct cacheline_shared {
	uint64_t flag __attribute__((aligned(128)));
	int cpu_b __attribute__((aligned(128)));
	pthread_barrier_t start;
};

static inline int cmp_u32_asc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void *cacheline_responder(void *arg)
{
	struct cacheline_shared *s = (struct cacheline_shared *)arg;
	pin_self(s->cpu_b);
	pthread_barrier_wait(&s->start);
	uint64_t expect = 1;
	for (;;) {
		uint64_t v;
		/* acquire pairs with the initiator's release of `v`; UINT64_MAX ends it */
		while ((v = __atomic_load_n(&s->flag, __ATOMIC_ACQUIRE)) != expect)
			if (v == UINT64_MAX)
				return NULL;
		__atomic_store_n(&s->flag, expect + 1, __ATOMIC_RELEASE);
		expect += 2;
	}
}

static inline struct cacheline_rt cacheline_round_trip(double duration_s)
{
	struct cacheline_rt res = { NAN, NAN, NAN, 0 };
	struct cacheline_shared *s = (struct cacheline_shared *)xaligned(sizeof *s);
	s->cpu_b = consumer_cpu();
	pthread_barrier_init(&s->start, NULL, 2);
	pthread_t th;
	if (pthread_create(&th, NULL, cacheline_responder, s) != 0) {
		perror("pthread_create");
		exit(1);
	}
	cpu_set_t old;
	pthread_getaffinity_np(pthread_self(), sizeof old, &old);
	pin_self(n_cpus > 1 ? cpus[1] : -1);
	size_t cap = 4u << 20, n = 0;
	uint32_t *samples = (uint32_t *)malloc(cap * sizeof *samples);
	pthread_barrier_wait(&s->start);
	uint64_t v = 1;
	/* Bulk-timed: 1000 round trips per block; the mean gives round trips/s. Blocks
	 * alternate with individually timed round trips for the percentiles. */
	int64_t t_stop = now_ns() + (int64_t)(duration_s * 1e9), bulk_ns = 0;
	uint64_t bulk_n = 0;
	while (samples && n + 1000 < cap) {
		int64_t t0 = now_ns();
		if (t0 >= t_stop)
			break;
		for (int i = 0; i < 1000; i++, v += 2) {
			__atomic_store_n(&s->flag, v, __ATOMIC_RELEASE);
			while (__atomic_load_n(&s->flag, __ATOMIC_ACQUIRE) != v + 1)
				;
		}
		bulk_ns += now_ns() - t0;
		bulk_n += 1000;
		for (int i = 0; i < 1000; i++, v += 2) {
			int64_t a = now_ns();
			__atomic_store_n(&s->flag, v, __ATOMIC_RELEASE);
			while (__atomic_load_n(&s->flag, __ATOMIC_ACQUIRE) != v + 1)
				;
			samples[n++] = (uint32_t)(now_ns() - a);
		}
	}
	__atomic_store_n(&s->flag, UINT64_MAX, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	pthread_setaffinity_np(pthread_self(), sizeof old, &old);
	if (n > 0) {
		qsort(samples, n, sizeof *samples, cmp_u32_asc);
		res.p50_ns = samples[n / 2];
		res.p99_ns = samples[n * 99 / 100];
		res.rt_per_s = (double)bulk_n / ((double)bulk_ns / 1e9);
		res.ok = 1;
	}
	free(samples);
	pthread_barrier_destroy(&s->start);
	free(s);
	return res;
}

#endif
