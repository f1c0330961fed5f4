/*
 * What the C benchmarks share (bench.c, peers.cpp): the clock, aligned buffers,
 * unaligned u64 access, and thread placement (the consumer on the first allowed
 * CPU, producers on the others, wrapping round when there are more producers than
 * CPUs; such rows are "oversubscribed"). C and C++.
 */
#ifndef RMPSC_BENCH_COMMON_H
#define RMPSC_BENCH_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

#endif
