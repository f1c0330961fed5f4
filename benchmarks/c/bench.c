/*
 * ringmpsc C benchmark: throughput (SPSC, MPSC) against a plain memcpy of the same
 * bytes, one-record ping-pong latency through two channels, and the cross-core
 * cache-line round trip as the physical yardstick. See benchmarks/c/README.md.
 *
 * Every throughput row: one consumer thread pinned to the first allowed CPU, producers
 * on the others (wrapping round when there are more producers than CPUs, reported as
 * "oversubscribed"). The consumer reads every record: it sums the u64 at the start of
 * each 64-byte line of each record, and the sum is checked against what the producers
 * wrote, unless the row says "count only". Each run lasts --duration-ms; the figure is
 * the median of --runs runs. The memcpy yardstick copies the same number of bytes in
 * chunks of the same batch from the same source into a destination the size of one
 * ring, cyclically, on one thread, once after every ringmpsc run; ratio = median
 * ringmpsc bytes/s / median memcpy bytes/s.
 *
 * Every blocking call has a timeout and a watchdog alarm ends the program if anything
 * hangs. Exit status: 0 ok, 1 a run failed (error or checksum mismatch), 2 usage,
 * 3 watchdog.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringmpsc.h"
#include "bench_common.h"

#define LINE_BYTES  64
#define MAX_LIST    32
#define ALIGNED     __attribute__((aligned(128)))

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif
#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

/* ------------------------------------------------------------------------- */
/* Options. */

struct opts {
	int runs;
	double duration_s;
	int sizes[MAX_LIST], n_sizes;
	int batches[MAX_LIST], n_batches;
	int producers[MAX_LIST], n_producers;
	uint32_t capacity;          /* records per ring; 0 = auto */
	int64_t timeout_ns;
	int consumer_read;          /* batched consumer uses read/advance instead of consume */
	int do_spsc, do_mpsc, do_pingpong, do_cacheline, do_count_only, do_bare, do_liveness, do_groups;
	int group_size;             /* record size of the group rows */
	int group_solo, group_fanout, group_share; /* which group rows (--group-scenarios) */
	int group_runs;             /* runs of each group row and of its single consumer */
	double group_duration_s;    /* length of one of those runs */
	int group_batches[MAX_LIST], n_group_batches;
	int pin;
	int quick;
	int64_t pp_service_ns;      /* ping-pong: the echo's service time before it replies */
	int pp_coalesce;            /* ping-pong "blocking": coalescing pp_records / pp_delay_ns, not the defaults */
	uint32_t pp_records;
	int64_t pp_delay_ns;
	const char *json_path;
};

static struct opts O;
static FILE *json_out;
static int any_failure;

/* CPUs this process may run on, in order. cpus[0] is the consumer's. */

/* ------------------------------------------------------------------------- */
/* Watchdog and small helpers. */

static const char *watchdog_what = "startup";

static void on_alarm(int sig)
{
	(void)sig;
	char msg[256];
	int n = snprintf(msg, sizeof msg, "\nbench_c: watchdog: no progress in '%s' -- aborting\n", watchdog_what);
	if (write(2, msg, (size_t)n) < 0) {
	}
	_exit(3);
}

/* Arm the watchdog for one measured step (a run takes duration + a little; allow the
 * blocking timeouts too). */
static void watchdog_arm(const char *what, double seconds)
{
	watchdog_what = what;
	double t = seconds + 2.0 * (double)O.timeout_ns / 1e9 + 10.0;
	alarm((unsigned)ceil(t));
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double t[64];
	if (n > 64)
		n = 64;
	memcpy(t, v, (size_t)n * sizeof *t);
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ------------------------------------------------------------------------- */
/* Records. A record of `rs` bytes holds a u64 value at offset 0 (the producer's
 * stamp) and the u64 1 at every further 64-byte line start; the rest is filler. The
 * consumer sums the u64 at each line start, so it touches every line of every record
 * and the total is checkable: sum(stamps) + records * (lines - 1). */

/* Line-start words after the stamp: the u64 at 64, 128, ... that fits in the record. */
static inline uint32_t extra_words(uint32_t rs)
{
	return rs >= LINE_BYTES + 8 ? (rs - 8) / LINE_BYTES : 0;
}

static void fill_template(unsigned char *buf, uint32_t rs, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		unsigned char *r = buf + (size_t)i * rs;
		memset(r, 0xA5, rs);
		if (rs < 8)
			continue;
		store_u64(r, 0);
		for (uint32_t off = LINE_BYTES; off + 8 <= rs; off += LINE_BYTES)
			store_u64(r + off, 1);
	}
}

/* Sum of the line-start words of `n` records; the common sizes get constant strides. */
#define SUM_LOOP(RS)                                                              \
	for (size_t i = 0; i < n; i++)                                             \
		for (uint32_t off = 0; off < (RS); off += LINE_BYTES)              \
			s += load_u64(p + i * (RS) + off);
static inline uint64_t sum_records(const void *recs, size_t n, uint32_t rs)
{
	const unsigned char *p = recs;
	uint64_t s = 0;
	switch (rs) {
	case 8: SUM_LOOP(8) break;
	case 64: SUM_LOOP(64) break;
	case 128: SUM_LOOP(128) break;
	case 256: SUM_LOOP(256) break;
	default:
		for (size_t i = 0; i < n; i++) {
			const unsigned char *r = p + i * rs;
			if (rs >= 8)
				for (uint32_t off = 0; off + 8 <= rs; off += LINE_BYTES)
					s += load_u64(r + off);
		}
	}
	return s;
}

/* Expected sum from one producer that sent `n` records stamped base, base+1, ... */
static uint64_t expected_stamps(uint64_t base, uint64_t n)
{
	uint64_t tri = n % 2 ? n * ((n - 1) / 2) : (n / 2) * (n - 1); /* n(n-1)/2 mod 2^64 */
	return base * n + tri;
}

static uint64_t producer_base(int i)
{
	return (uint64_t)(i + 1) << 40;
}

/* ------------------------------------------------------------------------- */
/* Throughput: producers -> one consumer through a channel. */

enum cons_mode { CONS_SUM, CONS_COUNT };

struct tp_cfg {
	int producers;
	uint32_t rs, batch, capacity;
	enum cons_mode mode;
	int consumer_read;          /* batched: read/advance instead of consume */
	double duration_s;
};

struct tp_shared {
	rmpsc_channel *ch;
	const struct tp_cfg *cfg;
	pthread_barrier_t start;
	ALIGNED int stop;
	ALIGNED int finished;       /* producers done; the last closes the channel */
	ALIGNED int failed;
};

struct prod_arg {
	struct tp_shared *sh;
	rmpsc_producer *p;
	int idx, cpu, pin_err;
	uint64_t sent;
	char err[160];
} ALIGNED;

struct cons_arg {
	struct tp_shared *sh;
	int cpu, pin_err;
	uint64_t count, sum;
	int64_t t_start, t_end;
	char err[160];
} ALIGNED;

struct acc {
	uint64_t sum, count;
	uint32_t rs;
};

static int cb_sum(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	(void)slot;
	struct acc *a = ctx;
	a->sum += sum_records(recs, n, a->rs);
	a->count += n;
	return 0;
}

static int cb_count(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	(void)recs;
	(void)slot;
	((struct acc *)ctx)->count += n;
	return 0;
}

static void fail_run(struct tp_shared *sh, char *buf, size_t len, const char *what, int rc)
{
	snprintf(buf, len, "%s: %s (%s)", what, rmpsc_strerror(rc), rmpsc_last_error());
	__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	rmpsc_channel_close(sh->ch); /* wakes everybody; the run is reported as failed */
}

/* The producer's loop, shared by every throughput row: until *stop, send one record at
 * a time (batch 1) or reserve, fill in place and commit up to `batch` records, each
 * stamped seq, seq+1, ... Returns the records sent; *rc < 0 (and *what) on a failure. */
static uint64_t produce_until_stop(rmpsc_producer *p, uint32_t rs, uint32_t batch, unsigned char *tmpl,
				   uint64_t seq, const int *stop, int *rc_out, const char **what)
{
	uint64_t sent = 0;
	*rc_out = 0;
	if (batch == 1) {
		while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) {
			if (rs >= 8)
				store_u64(tmpl, seq);
			int rc = rmpsc_producer_send(p, tmpl, rs, O.timeout_ns);
			if (rc < 0) {
				*rc_out = rc;
				*what = "producer_send";
				break;
			}
			seq++;
			sent++;
		}
		return sent;
	}
	while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) {
		uint32_t left = batch;
		const unsigned char *src = tmpl;
		while (left) {
			void *dst;
			int k = rmpsc_producer_reserve(p, left, O.timeout_ns, &dst);
			if (k < 0) {
				*rc_out = k;
				*what = "producer_reserve";
				return sent;
			}
			/* Fill in place: copy the records from the source, then stamp each. */
			memcpy(dst, src, (size_t)k * rs);
			if (rs >= 8)
				for (int i = 0; i < k; i++)
					store_u64((unsigned char *)dst + (size_t)i * rs, seq + (uint64_t)i);
			int rc = rmpsc_producer_commit(p, (size_t)k);
			if (rc < 0) { /* never ECLOSED: a commit succeeds after a close */
				*rc_out = rc;
				*what = "producer_commit";
				return sent;
			}
			seq += (uint64_t)k;
			sent += (uint64_t)k;
			src += (size_t)k * rs;
			left -= (uint32_t)k;
		}
	}
	return sent;
}

/* The consumer's loop, shared by every throughput row: read (batch 1, or --consumer
 * read) or consume up to `batch` records per call until "closed and drained",
 * summing (CONS_SUM) or counting them into *acc. Returns 0, or the error (and *what). */
static int consume_until_closed(rmpsc_channel *ch, uint32_t batch, int use_read, enum cons_mode mode,
				struct acc *acc, const char **what)
{
	if (batch == 1 || use_read) {
		for (;;) {
			const void *p;
			int n = rmpsc_read(ch, batch, O.timeout_ns, &p, NULL);
			if (n < 0) {
				*what = "read";
				return n == RMPSC_ECLOSED ? 0 : n;
			}
			if (mode == CONS_SUM)
				acc->sum += sum_records(p, (size_t)n, acc->rs);
			acc->count += (uint64_t)n;
			rmpsc_advance(ch, (size_t)n);
		}
	}
	rmpsc_consume_fn fn = mode == CONS_SUM ? cb_sum : cb_count;
	for (;;) {
		int n = rmpsc_consume(ch, batch, O.timeout_ns, fn, acc);
		if (n < 0) {
			*what = "consume";
			return n == RMPSC_ECLOSED ? 0 : n;
		}
	}
}

static void *producer_main(void *arg)
{
	struct prod_arg *a = arg;
	struct tp_shared *sh = a->sh;
	const struct tp_cfg *c = sh->cfg;
	const uint32_t rs = c->rs, batch = c->batch;
	a->pin_err = pin_self(a->cpu);
	unsigned char *tmpl = xaligned((size_t)batch * rs);
	fill_template(tmpl, rs, batch);
	pthread_barrier_wait(&sh->start);
	int rc;
	const char *what = "";
	a->sent = produce_until_stop(a->p, rs, batch, tmpl, producer_base(a->idx), &sh->stop, &rc, &what);
	if (rc < 0 && (rc != RMPSC_ECLOSED || !__atomic_load_n(&sh->failed, __ATOMIC_RELAXED)))
		fail_run(sh, a->err, sizeof a->err, what, rc);
	free(tmpl);
	rmpsc_producer_close(a->p);
	a->p = NULL;
	/* The last producer out closes the channel: the consumer drains, then sees ECLOSED. */
	if (__atomic_add_fetch(&sh->finished, 1, __ATOMIC_ACQ_REL) == c->producers)
		rmpsc_channel_close(sh->ch);
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct cons_arg *a = arg;
	struct tp_shared *sh = a->sh;
	const struct tp_cfg *c = sh->cfg;
	a->pin_err = pin_self(a->cpu);
	struct acc acc = { 0, 0, c->rs };
	int rc = rmpsc_consumer_claim(sh->ch);
	if (rc < 0)
		fail_run(sh, a->err, sizeof a->err, "consumer_claim", rc);
	pthread_barrier_wait(&sh->start);
	a->t_start = now_ns();
	if (rc == 0) {
		const char *what = "";
		rc = consume_until_closed(sh->ch, c->batch, c->consumer_read, c->mode, &acc, &what);
		if (rc < 0)
			fail_run(sh, a->err, sizeof a->err, what, rc);
	}
	a->t_end = now_ns();
	a->count = acc.count;
	a->sum = acc.sum;
	return NULL;
}

struct tp_result {
	double rec_per_s, bytes_per_s;
	int ok;
};

/* One run: fresh channel, threads, `duration_s` of traffic, drain, verify. */
static struct tp_result tp_run(const struct tp_cfg *c, const char *label)
{
	struct tp_result res = { 0, 0, 0 };
	struct rmpsc_config cfg = { .record_size = c->rs, .capacity = c->capacity,
				    .max_producers = (uint32_t)c->producers };
	struct tp_shared sh;
	memset(&sh, 0, sizeof sh);
	sh.cfg = c;
	int rc = rmpsc_channel_create(&sh.ch, NULL, &cfg, 0);
	if (rc < 0) {
		fprintf(stderr, "bench_c: %s: channel_create: %s (%s)\n", label, rmpsc_strerror(rc), rmpsc_last_error());
		any_failure = 1;
		return res;
	}
	int np = c->producers;
	struct prod_arg *pa = xaligned((size_t)np * sizeof *pa);
	struct cons_arg ca;
	memset(&ca, 0, sizeof ca);
	for (int i = 0; i < np; i++) {
		pa[i].sh = &sh;
		pa[i].idx = i;
		pa[i].cpu = producer_cpu(i);
		rc = rmpsc_producer_register(sh.ch, &pa[i].p);
		if (rc < 0) {
			fprintf(stderr, "bench_c: %s: producer_register: %s (%s)\n", label, rmpsc_strerror(rc),
				rmpsc_last_error());
			exit(1);
		}
	}
	ca.sh = &sh;
	ca.cpu = consumer_cpu();
	pthread_barrier_init(&sh.start, NULL, (unsigned)np + 2);
	pthread_t *th = calloc((size_t)np + 1, sizeof *th);
	watchdog_arm(label, c->duration_s);
	if (pthread_create(&th[np], NULL, consumer_main, &ca) != 0) {
		perror("pthread_create");
		exit(1);
	}
	for (int i = 0; i < np; i++)
		if (pthread_create(&th[i], NULL, producer_main, &pa[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	pthread_barrier_wait(&sh.start);
	sleep_s(c->duration_s);
	__atomic_store_n(&sh.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i <= np; i++)
		pthread_join(th[i], NULL);
	alarm(0);

	uint64_t sent = 0, want_sum = 0;
	for (int i = 0; i < np; i++) {
		sent += pa[i].sent;
		want_sum += expected_stamps(producer_base(i), pa[i].sent);
		if (pa[i].err[0])
			fprintf(stderr, "bench_c: %s: producer %d: %s\n", label, i, pa[i].err);
	}
	if (ca.err[0])
		fprintf(stderr, "bench_c: %s: consumer: %s\n", label, ca.err);
	if (c->rs >= 8)
		want_sum += sent * extra_words(c->rs);
	else
		want_sum = 0;
	int ok = !sh.failed && ca.count == sent && sent > 0;
	if (ok && c->mode == CONS_SUM && ca.sum != want_sum)
		ok = 0;
	if (!ok) {
		fprintf(stderr,
			"bench_c: %s: FAILED: sent %" PRIu64 " received %" PRIu64 " sum %" PRIu64 " expected %" PRIu64 "\n",
			label, sent, ca.count, ca.sum, want_sum);
		any_failure = 1;
	}
	static int warned_pin;
	if (!warned_pin && (ca.pin_err || (np && pa[0].pin_err))) {
		fprintf(stderr, "bench_c: warning: pthread_setaffinity_np failed; threads are not pinned\n");
		warned_pin = 1;
	}
	double secs = (double)(ca.t_end - ca.t_start) / 1e9;
	res.ok = ok;
	res.rec_per_s = secs > 0 ? (double)ca.count / secs : 0;
	res.bytes_per_s = res.rec_per_s * c->rs;
	pthread_barrier_destroy(&sh.start);
	free(th);
	free(pa);
	rmpsc_channel_release(sh.ch);
	return res;
}

/* ------------------------------------------------------------------------- */
/* The bare-SPSC yardstick: the same producer fill and the same consumer reads through
 * a hand-written single-producer ring with no library, no close protocol and no
 * futexes (both sides spin). It is what moving these bytes between these two cores
 * costs, so ringmpsc / bare is the library's own overhead. */

struct bare_ring {
	ALIGNED uint64_t tail;       /* producer line */
	ALIGNED uint64_t head;       /* consumer line */
	ALIGNED int stop;
	int done;
	unsigned char *data;
	uint32_t rs, cap, batch;
	int pcpu, ccpu;
	pthread_barrier_t start;
	uint64_t sent, count, sum;
	int64_t t_start, t_end;
};

static void *bare_producer(void *arg)
{
	struct bare_ring *b = arg;
	pin_self(b->pcpu);
	const uint32_t rs = b->rs, batch = b->batch;
	const uint64_t cap = b->cap;
	unsigned char *tmpl = xaligned((size_t)batch * rs);
	fill_template(tmpl, rs, batch);
	uint64_t tail = 0, cached_head = 0, seq = producer_base(0);
	pthread_barrier_wait(&b->start);
	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED)) {
		uint32_t left = batch;
		const unsigned char *src = tmpl;
		while (left) {
			if (tail - cached_head == cap) {
				cached_head = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE); /* slots are free */
				if (tail - cached_head == cap) {
					cpu_relax();
					continue;
				}
			}
			uint64_t idx = tail & (cap - 1), k = cap - idx, free_ = cap - (tail - cached_head);
			if (k > free_)
				k = free_;
			if (k > left)
				k = left;
			unsigned char *dst = b->data + idx * rs;
			memcpy(dst, src, (size_t)k * rs);
			if (rs >= 8)
				for (uint64_t i = 0; i < k; i++)
					store_u64(dst + i * rs, seq + i);
			tail += k;
			__atomic_store_n(&b->tail, tail, __ATOMIC_RELEASE); /* records before tail */
			seq += k;
			src += k * rs;
			left -= (uint32_t)k;
		}
	}
	b->sent = tail;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	free(tmpl);
	return NULL;
}

static void *bare_consumer(void *arg)
{
	struct bare_ring *b = arg;
	pin_self(b->ccpu);
	const uint32_t rs = b->rs, batch = b->batch;
	const uint64_t cap = b->cap;
	uint64_t head = 0, cached_tail = 0, sum = 0;
	pthread_barrier_wait(&b->start);
	b->t_start = now_ns();
	for (;;) {
		if (cached_tail == head) {
			int done = __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
			cached_tail = __atomic_load_n(&b->tail, __ATOMIC_ACQUIRE); /* records are written */
			if (cached_tail == head) {
				if (done)
					break;
				cpu_relax();
				continue;
			}
		}
		uint64_t idx = head & (cap - 1), n = cap - idx;
		if (n > cached_tail - head)
			n = cached_tail - head;
		if (n > batch)
			n = batch;
		sum += sum_records(b->data + idx * rs, (size_t)n, rs);
		head += n;
		__atomic_store_n(&b->head, head, __ATOMIC_RELEASE); /* done reading the slots */
	}
	b->t_end = now_ns();
	b->count = head;
	b->sum = sum;
	return NULL;
}

static struct tp_result bare_run(const struct tp_cfg *c, const char *label)
{
	struct tp_result res = { 0, 0, 0 };
	struct bare_ring *b = xaligned(sizeof *b);
	b->rs = c->rs;
	b->cap = c->capacity;
	b->batch = c->batch;
	b->pcpu = producer_cpu(0);
	b->ccpu = consumer_cpu();
	size_t bytes = (size_t)c->capacity * c->rs;
	/* Shared memory like the channel's region. */
	b->data = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b->data == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	pthread_barrier_init(&b->start, NULL, 3);
	watchdog_arm(label, c->duration_s);
	pthread_t tp, tc;
	if (pthread_create(&tc, NULL, bare_consumer, b) != 0 || pthread_create(&tp, NULL, bare_producer, b) != 0) {
		perror("pthread_create");
		exit(1);
	}
	pthread_barrier_wait(&b->start);
	sleep_s(c->duration_s);
	__atomic_store_n(&b->stop, 1, __ATOMIC_RELAXED);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	alarm(0);
	uint64_t want = expected_stamps(producer_base(0), b->sent);
	if (c->rs >= 8)
		want += b->sent * extra_words(c->rs);
	else
		want = 0;
	res.ok = b->count == b->sent && b->sum == want && b->sent > 0;
	if (!res.ok) {
		fprintf(stderr, "bench_c: %s (bare spsc): FAILED: sent %" PRIu64 " received %" PRIu64 "\n", label,
			b->sent, b->count);
		any_failure = 1;
	}
	double secs = (double)(b->t_end - b->t_start) / 1e9;
	res.rec_per_s = secs > 0 ? (double)b->count / secs : 0;
	res.bytes_per_s = res.rec_per_s * c->rs;
	pthread_barrier_destroy(&b->start);
	munmap(b->data, bytes);
	free(b);
	return res;
}

/* ------------------------------------------------------------------------- */
/* The memcpy yardstick: `total` bytes in chunks of `chunk` from a source of one chunk
 * into a destination of `ring` bytes, cyclically. Returns bytes/s. */

static unsigned char *mc_src, *mc_dst;
static size_t mc_src_size, mc_dst_size;
static volatile unsigned char mc_sink;

static double memcpy_rate(size_t chunk, size_t ring, uint64_t total)
{
	if (mc_src_size < chunk) {
		free(mc_src);
		mc_src = xaligned(chunk);
		mc_src_size = chunk;
	}
	if (mc_dst_size < ring) {
		free(mc_dst);
		mc_dst = xaligned(ring);
		mc_dst_size = ring;
	}
	fill_template(mc_src, (uint32_t)chunk, 1);
	size_t chunks_per_ring = ring / chunk;
	uint64_t n = total / chunk;
	if (n < 1)
		n = 1;
	/* Warm the destination (page faults, caches) like the ring's first lap. */
	for (size_t i = 0; i < chunks_per_ring; i++)
		memcpy(mc_dst + i * chunk, mc_src, chunk);
	int64_t t0 = now_ns();
	size_t off = 0, end = chunks_per_ring * chunk;
	for (uint64_t i = 0; i < n; i++) {
		memcpy(mc_dst + off, mc_src, chunk);
		compiler_barrier(); /* every copy happens, in order */
		off += chunk;
		if (off == end)
			off = 0;
	}
	int64_t t1 = now_ns();
	mc_sink = mc_dst[off];
	return (double)n * (double)chunk / ((double)(t1 - t0) / 1e9);
}

/* ------------------------------------------------------------------------- */
/* Output. */

static void json_num(const char *key, double v, int last)
{
	if (isnan(v))
		fprintf(json_out, "\"%s\":null%s", key, last ? "" : ",");
	else
		fprintf(json_out, "\"%s\":%.6g%s", key, v, last ? "" : ",");
}

struct lat_result {
	double p50, p99, rt_per_s;
	int ok;
};
static struct lat_result cacheline_run(double duration_s);

struct row {
	const char *impl, *scenario, *path, *note;
	int producers;
	uint32_t record_size, batch, capacity;
	int reads_data;
	double rec_per_s, bytes_per_s, memcpy_bytes_per_s, ratio, spread;
	double bare_bytes_per_s, vs_bare;   /* NAN where not measured */
	double p50_ns, p99_ns;
	double foreign;                     /* CPU share other processes used meanwhile */
	double line_rt_ns;                  /* cache-line round trip p50 just before the row */
	int runs, oversub;
};

static void emit_json(const struct row *r)
{
	if (!json_out)
		return;
	fprintf(json_out,
		"{\"suite\":\"c\",\"impl\":\"%s\",\"path\":\"%s\",\"scenario\":\"%s\",\"record_size\":%u,"
		"\"batch\":%u,\"producers\":%d,\"consumers\":1,\"processes\":false,\"reads_data\":%s,",
		r->impl, r->path, r->scenario, r->record_size, r->batch, r->producers, r->reads_data ? "true" : "false");
	json_num("records_per_s", r->rec_per_s, 0);
	json_num("bytes_per_s", r->bytes_per_s, 0);
	json_num("p50_ns", r->p50_ns, 0);
	json_num("p99_ns", r->p99_ns, 0);
	fprintf(json_out, "\"runs\":%d,", r->runs);
	json_num("memcpy_bytes_per_s", r->memcpy_bytes_per_s, 0);
	json_num("ratio", r->ratio, 0);
	json_num("bare_spsc_bytes_per_s", r->bare_bytes_per_s, 0);
	json_num("spread", r->spread, 0);
	json_num("other_cpu_load", r->foreign, 0);
	json_num("cacheline_rt_ns", r->line_rt_ns, 0);
	fprintf(json_out, "\"capacity\":%u,\"cpus\":%d,\"oversubscribed\":%s,\"pinned\":%s}\n", r->capacity, n_cpus,
		r->oversub ? "true" : "false", O.pin && n_cpus > 1 ? "true" : "false");
	fflush(json_out);
}

static void print_header(void)
{
	printf("%-9s %-26s %4s %5s %5s %8s %7s %8s %6s %8s %7s %6s %6s  %s\n", "scenario", "path", "prod", "rec_B",
	       "batch", "Mrec/s", "GB/s", "memcpy", "ratio", "bare", "vs_bare", "spread", "lineRT", "note");
	printf("%-9s %-26s %4s %5s %5s %8s %7s %8s %6s %8s %7s %6s %6s\n", "", "", "", "", "", "", "", "GB/s",
	       "", "GB/s", "", "", "ns");
}

static void print_tp_row(const struct row *r)
{
	char bare[16] = "-", vs[16] = "-";
	if (!isnan(r->bare_bytes_per_s)) {
		snprintf(bare, sizeof bare, "%.2f", r->bare_bytes_per_s / 1e9);
		snprintf(vs, sizeof vs, "%.2f", r->vs_bare);
	}
	printf("%-9s %-26s %4d %5u %5u %8.2f %7.2f %8.2f %6.3f %8s %7s %5.0f%% %6.0f  %s\n", r->scenario, r->path,
	       r->producers, r->record_size, r->batch, r->rec_per_s / 1e6, r->bytes_per_s / 1e9,
	       r->memcpy_bytes_per_s / 1e9, r->ratio, bare, vs, r->spread * 100, r->line_rt_ns, r->note);
	fflush(stdout);
}

/* ------------------------------------------------------------------------- */
/* One throughput configuration: warm-up, runs, memcpy after each run, a row. */

static uint32_t pick_capacity(uint32_t batch)
{
	uint32_t cap = O.capacity ? O.capacity : 4096;
	while (cap < 2 * batch)
		cap *= 2;
	return cap;
}

static double spread_of(const double *v, int n, double med)
{
	double lo = v[0], hi = v[0];
	for (int i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	return med > 0 ? (hi - lo) / med : 0;
}

static struct row tp_config(const char *scenario, int producers, uint32_t rs, uint32_t batch,
			    enum cons_mode mode)
{
	struct tp_cfg c = { .producers = producers, .rs = rs, .batch = batch, .capacity = pick_capacity(batch),
			    .mode = mode, .consumer_read = O.consumer_read, .duration_s = O.duration_s };
	char label[128];
	snprintf(label, sizeof label, "%s p=%d rs=%u batch=%u%s", scenario, producers, rs, batch,
		 mode == CONS_COUNT ? " count-only" : "");
	double rate[64] = { 0 }, bytes[64] = { 0 }, mc[64] = { 0 }, bare[64] = { 0 }, bare_rate[64] = { 0 };
	int runs = O.runs > 64 ? 64 : O.runs;
	/* The bare yardstick spins on both sides: only with two CPUs of its own. */
	int with_bare = O.do_bare && producers == 1 && mode == CONS_SUM && !strcmp(scenario, "spsc") && n_cpus > 1;

	struct noise_mark mark = noise_now();
	/* Where the two vCPUs sit right now (a VM may move them): 10 ms of line bouncing. */
	double line_rt = n_cpus > 1 ? cacheline_run(0.01).p50 : NAN;
	struct tp_cfg warm = c; /* untimed: caches, page faults, CPU clocks */
	warm.duration_s = c.duration_s / 4;
	tp_run(&warm, label);
	/* Each run: ringmpsc, then (spsc) the bare ring, then memcpy of the same bytes,
	 * so a ratio compares figures taken seconds apart. */
	for (int i = 0; i < runs; i++) {
		struct tp_result r = tp_run(&c, label);
		rate[i] = r.rec_per_s;
		bytes[i] = r.bytes_per_s;
		if (with_bare) {
			struct tp_result b = bare_run(&c, label);
			bare[i] = b.bytes_per_s;
			bare_rate[i] = b.rec_per_s;
		}
		watchdog_arm("memcpy", 2 * c.duration_s);
		mc[i] = memcpy_rate((size_t)batch * rs, (size_t)c.capacity * rs,
				    (uint64_t)(r.bytes_per_s * c.duration_s));
		alarm(0);
	}
	const char *path = batch == 1 ? "send/read+advance"
			   : c.consumer_read ? "reserve+commit/read+advance" : "reserve+commit/consume";
	struct row row = { .impl = "ringmpsc", .scenario = scenario, .path = path, .producers = producers,
			   .record_size = rs, .batch = batch, .capacity = c.capacity, .reads_data = mode == CONS_SUM,
			   .runs = runs, .p50_ns = NAN, .p99_ns = NAN, .bare_bytes_per_s = NAN, .vs_bare = NAN,
			   .oversub = oversubscribed(producers) };
	row.rec_per_s = median(rate, runs);
	row.bytes_per_s = median(bytes, runs);
	row.memcpy_bytes_per_s = median(mc, runs);
	row.ratio = row.bytes_per_s / row.memcpy_bytes_per_s;
	row.spread = spread_of(rate, runs, row.rec_per_s);
	if (with_bare) {
		row.bare_bytes_per_s = median(bare, runs);
		row.vs_bare = row.bytes_per_s / row.bare_bytes_per_s;
	}
	row.foreign = foreign_load(mark);
	row.line_rt_ns = line_rt;
	static char notes[4][96];
	static int note_i;
	char *note = notes[note_i++ % 4];
	snprintf(note, 96, "%s%s%s", mode == CONS_COUNT ? "COUNT ONLY (consumer does not read) " : "",
		 row.oversub ? "oversubscribed " : "", "");
	if (row.foreign >= 0.10)
		snprintf(note + strlen(note), 96 - strlen(note), "NOISY: others used %.0f%% CPU", row.foreign * 100);
	row.note = note;
	print_tp_row(&row);
	emit_json(&row);
	if (with_bare) {
		struct row b = row;
		b.impl = "bare_spsc";
		b.path = "hand-written ring, spin";
		b.rec_per_s = median(bare_rate, runs);
		b.bytes_per_s = row.bare_bytes_per_s;
		b.ratio = b.bytes_per_s / b.memcpy_bytes_per_s;
		b.spread = spread_of(bare_rate, runs, b.rec_per_s);
		b.bare_bytes_per_s = NAN;
		emit_json(&b); /* in the table it is the "bare" column of the row above */
	}
	return row;
}

/* ------------------------------------------------------------------------- */
/* Ping-pong: one record there (channel A) and back (channel B). */

struct pp_shared {
	rmpsc_channel *a, *b;
	uint32_t rs;
	int poll;                 /* busy-poll with timeout 0 instead of blocking waits */
	int coalesce;             /* blocking: rmpsc_consumer_coalesce(ch, records, delay_ns) on both consumers */
	uint32_t records;
	int64_t delay_ns;
	int64_t service_ns;       /* the echo works this long (spinning) before it replies */
	pthread_barrier_t start;
	char err[160];
	int echo_cpu;
};

static int pp_send(rmpsc_producer *p, const void *rec, uint32_t rs, int poll)
{
	if (!poll)
		return rmpsc_producer_send(p, rec, rs, O.timeout_ns);
	int64_t deadline = 0;
	for (unsigned spins = 0;; spins++) {
		int rc = rmpsc_producer_send(p, rec, rs, 0);
		if (rc != RMPSC_EFULL)
			return rc;
		if ((spins & 1023) == 1023) { /* poll, but never forever */
			int64_t t = now_ns();
			if (!deadline)
				deadline = t + O.timeout_ns;
			else if (t > deadline)
				return RMPSC_ETIMEDOUT;
		}
	}
}

static int pp_read(rmpsc_channel *ch, const void **ptr, int poll)
{
	if (!poll)
		return rmpsc_read(ch, 1, O.timeout_ns, ptr, NULL);
	int64_t deadline = 0;
	for (unsigned spins = 0;; spins++) {
		int n = rmpsc_read(ch, 1, 0, ptr, NULL);
		if (n != RMPSC_EEMPTY)
			return n;
		if ((spins & 1023) == 1023) {
			int64_t t = now_ns();
			if (!deadline)
				deadline = t + O.timeout_ns;
			else if (t > deadline)
				return RMPSC_ETIMEDOUT;
		}
	}
}

/* Coalescing other than the defaults; (1, 0): a wake-up on every first record (no
 * coalescing), the old behaviour. */
static void set_coalescing(rmpsc_channel *ch, uint32_t records, int64_t delay_ns, char *err, size_t len)
{
	int rc = rmpsc_consumer_coalesce(ch, records, delay_ns);
	if (rc < 0)
		snprintf(err, len, "consumer_coalesce: %s (%s)", rmpsc_strerror(rc), rmpsc_last_error());
}

static void *echo_main(void *arg)
{
	struct pp_shared *s = arg;
	pin_self(s->echo_cpu);
	rmpsc_producer *pb = NULL;
	int rc = rmpsc_producer_register(s->b, &pb);
	if (rc < 0)
		snprintf(s->err, sizeof s->err, "echo register: %s", rmpsc_strerror(rc));
	rmpsc_consumer_claim(s->a);
	if (s->coalesce)
		set_coalescing(s->a, s->records, s->delay_ns, s->err, sizeof s->err);
	pthread_barrier_wait(&s->start);
	while (pb) {
		const void *p;
		int n = pp_read(s->a, &p, s->poll);
		if (n < 0) {
			if (n != RMPSC_ECLOSED)
				snprintf(s->err, sizeof s->err, "echo read: %s (%s)", rmpsc_strerror(n), rmpsc_last_error());
			break;
		}
		if (s->service_ns > 0) /* a request's service time: the client waits meanwhile */
			for (int64_t until = now_ns() + s->service_ns; now_ns() < until;)
				cpu_relax();
		rc = pp_send(pb, p, s->rs, s->poll);
		rmpsc_advance(s->a, 1);
		if (rc < 0) {
			snprintf(s->err, sizeof s->err, "echo send: %s (%s)", rmpsc_strerror(rc), rmpsc_last_error());
			break;
		}
	}
	rmpsc_producer_close(pb);
	rmpsc_channel_close(s->b);
	return NULL;
}

/* coalesce: 0 the defaults, else rmpsc_consumer_coalesce(records, delay_ns) on both consumers. */
static struct lat_result pingpong_run(uint32_t rs, int poll, int coalesce, uint32_t records, int64_t delay_ns,
				      double duration_s)
{
	struct lat_result res = { NAN, NAN, 0, 0 };
	struct rmpsc_config cfg = { .record_size = rs, .capacity = 64, .max_producers = 1 };
	struct pp_shared s;
	memset(&s, 0, sizeof s);
	s.rs = rs;
	s.poll = poll;
	s.coalesce = coalesce;
	s.records = records;
	s.delay_ns = delay_ns;
	s.service_ns = O.pp_service_ns;
	s.echo_cpu = consumer_cpu();
	if (rmpsc_channel_create(&s.a, NULL, &cfg, 0) < 0 || rmpsc_channel_create(&s.b, NULL, &cfg, 0) < 0) {
		fprintf(stderr, "bench_c: pingpong: channel_create: %s\n", rmpsc_last_error());
		any_failure = 1;
		return res;
	}
	rmpsc_producer *pa = NULL;
	int rc = rmpsc_producer_register(s.a, &pa);
	if (rc < 0) {
		fprintf(stderr, "bench_c: pingpong: register: %s\n", rmpsc_last_error());
		exit(1);
	}
	pthread_barrier_init(&s.start, NULL, 2);
	watchdog_arm(poll ? "pingpong poll" : "pingpong blocking", duration_s);
	pthread_t th;
	if (pthread_create(&th, NULL, echo_main, &s) != 0) {
		perror("pthread_create");
		exit(1);
	}
	/* The client (this thread) on another CPU than the echo thread. */
	cpu_set_t old;
	pthread_getaffinity_np(pthread_self(), sizeof old, &old);
	pin_self(n_cpus > 1 ? cpus[1] : -1);
	rmpsc_consumer_claim(s.b);
	char coal_err[160] = "";
	if (coalesce)
		set_coalescing(s.b, records, delay_ns, coal_err, sizeof coal_err);
	size_t cap = 4u << 20, n = 0;
	uint32_t *samples = malloc(cap * sizeof *samples);
	unsigned char *rec = xaligned(rs);
	pthread_barrier_wait(&s.start);
	int64_t t_begin = now_ns(), t_stop = t_begin + (int64_t)(duration_s * 1e9);
	int ok = 1;
	for (uint64_t i = 0; n < cap; i++) {
		if (rs >= 8)
			store_u64(rec, i);
		int64_t t0 = now_ns();
		if (t0 >= t_stop)
			break;
		rc = pp_send(pa, rec, rs, poll);
		if (rc < 0) {
			fprintf(stderr, "bench_c: pingpong send: %s (%s)\n", rmpsc_strerror(rc), rmpsc_last_error());
			ok = 0;
			break;
		}
		const void *p;
		int k = pp_read(s.b, &p, poll);
		int64_t t1 = now_ns();
		if (k < 0) {
			fprintf(stderr, "bench_c: pingpong read: %s (%s)\n", rmpsc_strerror(k), rmpsc_last_error());
			ok = 0;
			break;
		}
		if (rs >= 8 && load_u64(p) != i) { /* the client reads what came back */
			fprintf(stderr, "bench_c: pingpong: got %" PRIu64 " expected %" PRIu64 "\n", load_u64(p), i);
			ok = 0;
		}
		rmpsc_advance(s.b, 1);
		samples[n++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
	}
	int64_t t_end = now_ns();
	rmpsc_producer_close(pa);
	rmpsc_channel_close(s.a);
	pthread_join(th, NULL);
	alarm(0);
	pthread_setaffinity_np(pthread_self(), sizeof old, &old);
	if (s.err[0] || coal_err[0]) {
		fprintf(stderr, "bench_c: pingpong: %s\n", s.err[0] ? s.err : coal_err);
		ok = 0;
	}
	if (n > 0) {
		qsort(samples, n, sizeof *samples, cmp_u32_asc);
		res.p50 = samples[n / 2];
		res.p99 = samples[n * 99 / 100];
		res.rt_per_s = (double)n / ((double)(t_end - t_begin) / 1e9);
	}
	res.ok = ok && n > 0;
	if (!res.ok)
		any_failure = 1;
	free(samples);
	free(rec);
	pthread_barrier_destroy(&s.start);
	rmpsc_channel_release(s.a);
	rmpsc_channel_release(s.b);
	return res;
}

/* ------------------------------------------------------------------------- */
/* The cache-line round trip (bench_common.h) under this program's watchdog. */
static struct lat_result cacheline_run(double duration_s)
{
	watchdog_arm("cacheline", duration_s);
	struct cacheline_rt r = cacheline_round_trip(duration_s);
	alarm(0);
	return (struct lat_result){ r.p50_ns, r.p99_ns, r.ok ? r.rt_per_s : 0, r.ok };
}

/* Median cost of one clock read (included once in every per-sample latency). */
static double clock_overhead_ns(void)
{
	double d[15];
	for (int r = 0; r < 15; r++) {
		int64_t t0 = now_ns(), t1 = t0;
		for (int i = 0; i < 10000; i++)
			t1 = now_ns();
		d[r] = (double)(t1 - t0) / 10000;
	}
	return median(d, 15);
}

static void print_lat_row(const struct row *r, int bulk)
{
	if (bulk)
		printf("%-9s %-30s round trip: p50 %5.0f ns, p99 %7.0f ns (timed singly), mean %.0f ns (bulk)\n",
		       r->scenario, r->path, r->p50_ns, r->p99_ns, 1e9 / r->rec_per_s);
	else
		printf("%-9s %-30s round trip: p50 %5.0f ns, p99 %7.0f ns, mean %.0f ns (%.2f M round trips/s)\n",
		       r->scenario, r->path, r->p50_ns, r->p99_ns, 1e9 / r->rec_per_s, r->rec_per_s / 1e6);
	fflush(stdout);
	emit_json(r);
}

/* Latency: per run, the cache-line yardstick and both ping-pong flavours back to back,
 * so they are compared under the same conditions; medians over the runs. */
static void latency_rows(void)
{
	enum { CL, PP_BLOCK, PP_BLOCK_OFF, PP_POLL, KINDS };
	/* blocking: coalescing at the defaults; blocking, coalescing off: a wake-up for
	 * every first record (rmpsc_consumer_coalesce(ch, 1, 0)) */
	static const char *paths[KINDS] = { "flag-pingpong(no library)", "send/read(blocking)",
					    "send/read(blocking,coalescing off)", "send/read(poll,timeout=0)" };
	int want[KINDS] = { O.do_cacheline, O.do_pingpong, O.do_pingpong, O.do_pingpong };
	double p50[KINDS][64], p99[KINDS][64], rps[KINDS][64];
	int runs = O.runs > 64 ? 64 : O.runs;
	struct noise_mark mark = noise_now();
	for (int i = 0; i < runs; i++)
		for (int k = 0; k < KINDS; k++) {
			if (!want[k])
				continue;
			struct lat_result r =
				k == CL ? cacheline_run(O.duration_s)
				: k == PP_BLOCK_OFF
					? pingpong_run(64, 0, 1, 1, 0, O.duration_s)
					: pingpong_run(64, k == PP_POLL, k == PP_BLOCK && O.pp_coalesce, O.pp_records,
						       O.pp_delay_ns, O.duration_s);
			p50[k][i] = r.p50;
			p99[k][i] = r.p99;
			rps[k][i] = r.rt_per_s;
		}
	double foreign = foreign_load(mark);
	if (foreign >= 0.10)
		printf("NOISY: other processes used %.0f%% of the CPUs during the latency runs\n", foreign * 100);
	for (int k = 0; k < KINDS; k++) {
		if (!want[k])
			continue;
		char path[128];
		if (k == PP_BLOCK && O.pp_coalesce)
			snprintf(path, sizeof path, "send/read(blocking,coalescing %u/%.0fus)", O.pp_records,
				 (double)O.pp_delay_ns / 1e3);
		else
			snprintf(path, sizeof path, "%s", paths[k]);
		if (k != CL && O.pp_service_ns > 0)
			snprintf(path + strlen(path), sizeof path - strlen(path), ", echo after %.0f us",
				 (double)O.pp_service_ns / 1e3);
		struct row row = { .impl = "ringmpsc", .scenario = k == CL ? "cacheline" : "pingpong",
				   .path = path, .producers = 1, .record_size = 64, .batch = 1,
				   .capacity = k == CL ? 0 : 64, .reads_data = 1, .runs = runs,
				   .memcpy_bytes_per_s = NAN, .ratio = NAN, .spread = NAN, .bare_bytes_per_s = NAN,
				   .vs_bare = NAN, .line_rt_ns = NAN };
		row.p50_ns = median(p50[k], runs);
		row.p99_ns = median(p99[k], runs);
		row.rec_per_s = median(rps[k], runs);
		row.bytes_per_s = row.rec_per_s * 64;
		row.foreign = foreign;
		print_lat_row(&row, k == CL);
	}
}

/* ------------------------------------------------------------------------- */
/* Liveness check: the cost of one rmpsc_reclaim_dead() pass (it reads the owner of
 * every producer slot and asks whether that process still lives) on a channel whose
 * slots are all held by live producer processes, so the pass reclaims nothing. The
 * children register, report on `ready`, then block reading `hold` until the parent
 * closes it after the measurement. */

#define LIVENESS_PRODUCERS 16

static void liveness_child(rmpsc_channel *ch, int ready_w, int hold_r)
{
	alarm(120); /* a child left behind by a dead parent still ends */
	rmpsc_producer *p = NULL;
	char ok = rmpsc_producer_register(ch, &p) == RMPSC_OK ? 'y' : 'n';
	if (write(ready_w, &ok, 1) != 1)
		_exit(2);
	char c;
	while (read(hold_r, &c, 1) < 0 && errno == EINTR) /* EOF: the parent is done */
		;
	_exit(0);
}

static void liveness_row(void)
{
	struct rmpsc_config cfg = { .record_size = 64, .capacity = 64, .max_producers = LIVENESS_PRODUCERS };
	rmpsc_channel *ch = NULL;
	int ready[2], hold[2];
	if (rmpsc_channel_create(&ch, NULL, &cfg, 0) != RMPSC_OK || pipe(ready) != 0 || pipe(hold) != 0) {
		fprintf(stderr, "bench_c: liveness: setup failed: %s\n", rmpsc_last_error());
		any_failure = 1;
		return;
	}
	fflush(NULL); /* the children must not flush our buffered output again */
	pid_t kids[LIVENESS_PRODUCERS];
	int n_kids = 0, registered = 0;
	for (int i = 0; i < LIVENESS_PRODUCERS; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(ready[0]);
			close(hold[1]);
			liveness_child(ch, ready[1], hold[0]);
		}
		if (pid < 0) {
			perror("bench_c: liveness: fork");
			break;
		}
		kids[n_kids++] = pid;
	}
	close(ready[1]);
	close(hold[0]);
	watchdog_arm("liveness: children registering", 10);
	for (int i = 0; i < n_kids; i++) {
		char ok;
		if (read(ready[0], &ok, 1) == 1 && ok == 'y')
			registered++;
	}
	alarm(0);

	int runs = O.runs > 64 ? 64 : O.runs, reclaimed = 0;
	double per_call[64];
	struct noise_mark mark = noise_now();
	/* Calls per run: as many as fit in --duration-ms, from one timed call. */
	int64_t t0 = now_ns();
	reclaimed += rmpsc_reclaim_dead(ch);
	int64_t one = now_ns() - t0;
	long calls = one > 0 ? (long)(O.duration_s * 1e9 / (double)one) : 1000;
	calls = calls < 10 ? 10 : calls > 1000000 ? 1000000 : calls;
	watchdog_arm("liveness", O.duration_s * runs * 4);
	for (int r = 0; r < runs; r++) {
		int64_t a = now_ns();
		for (long i = 0; i < calls; i++)
			reclaimed += rmpsc_reclaim_dead(ch);
		per_call[r] = (double)(now_ns() - a) / (double)calls;
	}
	alarm(0);
	double foreign = foreign_load(mark);

	close(hold[1]); /* the children read EOF and exit */
	close(ready[0]);
	for (int i = 0; i < n_kids; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	rmpsc_channel_release(ch);

	double med = median(per_call, runs);
	int ok = registered == LIVENESS_PRODUCERS && reclaimed == 0;
	if (!ok) {
		fprintf(stderr, "bench_c: liveness: %d of %d children registered, %d slots reclaimed (want 0)\n",
			registered, LIVENESS_PRODUCERS, reclaimed);
		any_failure = 1;
	}
	printf("\nliveness  rmpsc_reclaim_dead, %d live producer processes: %.2f us per call (median of %d runs of "
	       "%ld calls)%s\n", registered, med / 1e3, runs, calls, foreign >= 0.10 ? " NOISY" : "");
	if (!json_out)
		return;
	fprintf(json_out,
		"{\"suite\":\"c\",\"impl\":\"ringmpsc\",\"path\":\"rmpsc_reclaim_dead\",\"scenario\":\"liveness\","
		"\"record_size\":64,\"batch\":1,\"producers\":%d,\"consumers\":0,\"processes\":true,"
		"\"reads_data\":null,\"records_per_s\":null,\"bytes_per_s\":null,\"p50_ns\":null,\"p99_ns\":null,"
		"\"runs\":%d,\"calls_per_run\":%ld,",
		registered, runs, calls);
	json_num("ns_per_call", med, 0);
	fprintf(json_out, "\"runs_ns_per_call\":[");
	for (int r = 0; r < runs; r++)
		fprintf(json_out, "%.6g%s", per_call[r], r + 1 < runs ? "," : "");
	fprintf(json_out, "],");
	json_num("other_cpu_load", foreign, 0);
	fprintf(json_out, "\"ok\":%s,\"cpus\":%d}\n", ok ? "true" : "false", n_cpus);
	fflush(json_out);
}

/* ------------------------------------------------------------------------- */
/* Consumer groups: what a group costs next to the classic single consumer.
 *
 * Each row runs a group configuration and, alternately in the same run, the classic
 * single consumer (a channel created with max_consumers = 1) with the same
 * producers, record size, batch and ring capacity, threads or processes alike:
 *
 *   group-solo  one group with one member on a channel with max_consumers = 4 (the
 *               default group; SOLO mode: plain stores, no CAS per batch), 1 producer
 *   fanout      1 producer -> 4 groups (the default group removed), one consumer
 *               thread per group, each with its own channel handle; every group
 *               receives every record. The row's rate is the slowest group's
 *   workshare   P producer processes -> 4 member processes of the default group of
 *               a channel with max_consumers = 4: each record to one member (SHARED
 *               mode: one CAS per claimed batch). The row's rate is the group's
 *               (all members together, from the start barrier to the last member
 *               seeing "closed and drained"); its single consumer is one process
 *
 * Every consumer reads every record it receives (the line-start sum) and the run is
 * checked: in a fan-out each group must have received exactly what the producers
 * sent (count and sum), in a work-sharing group the members' counts and sums added
 * up. Placement: every thread or process on a CPU of its own (consumers on the first
 * CPUs, then the producers) when there are enough; otherwise nothing is pinned and
 * the row is marked oversubscribed (the scheduler shares the CPUs). */

#define G_MAX_PROD 16
#define G_MAX_CONS 16

enum g_kind { G_CLASSIC, G_SOLO, G_FANOUT, G_SHARE };

struct g_cfg {
	enum g_kind kind;
	int producers, consumers, procs; /* procs: producers and consumers are processes */
	int pin;                         /* each worker on a CPU of its own */
	uint32_t rs, batch, capacity;
	double duration_s;
};

struct g_prod {
	uint64_t sent;
	char err[160];
} ALIGNED;

struct g_cons {
	uint64_t count, sum;
	int64_t t_start, t_end;
	char err[160];
} ALIGNED;

/* Shared with the workers: a MAP_SHARED mapping, so processes see it as threads do. */
struct g_shared {
	pthread_barrier_t start; /* process-shared */
	ALIGNED int stop;
	ALIGNED int finished;
	ALIGNED int failed;
	struct g_prod prod[G_MAX_PROD];
	struct g_cons cons[G_MAX_CONS];
};

struct g_worker {
	struct g_shared *sh;
	const struct g_cfg *c;
	rmpsc_channel *ch; /* the creator's handle */
	int idx;
};

static int g_total_threads(const struct g_cfg *c)
{
	return c->producers + c->consumers;
}

static int g_oversubscribed(const struct g_cfg *c)
{
	return g_total_threads(c) > n_cpus;
}

/* Consumers on cpus[0 ..], producers after them; -1: not pinned. */
static int g_cpu(const struct g_cfg *c, int consumer, int idx)
{
	if (!c->pin)
		return -1;
	return cpus[consumer ? idx : c->consumers + idx];
}

static void g_fail(struct g_shared *sh, rmpsc_channel *ch, char *buf, size_t len, const char *what, int rc)
{
	snprintf(buf, len, "%s: %s (%s)", what, rmpsc_strerror(rc), rmpsc_last_error());
	__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	rmpsc_channel_close(ch); /* wakes everybody; the run is reported as failed */
}

static rmpsc_channel *g_handle(struct g_worker *w, char *err, size_t len)
{
	rmpsc_channel *h = NULL;
	int rc = rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(w->ch), 0);
	if (rc < 0) {
		g_fail(w->sh, w->ch, err, len, "channel_attach_fd", rc);
		return NULL;
	}
	return h;
}

static void *g_producer(void *arg)
{
	struct g_worker *w = arg;
	struct g_shared *sh = w->sh;
	const struct g_cfg *c = w->c;
	struct g_prod *me = &sh->prod[w->idx];
	pin_self(g_cpu(c, 0, w->idx));
	/* A process registers through a handle of its own; threads share the creator's. */
	rmpsc_channel *h = c->procs ? g_handle(w, me->err, sizeof me->err) : w->ch;
	rmpsc_producer *p = NULL;
	int rc = h ? rmpsc_producer_register(h, &p) : RMPSC_ESYS;
	if (h && rc < 0)
		g_fail(sh, w->ch, me->err, sizeof me->err, "producer_register", rc);
	unsigned char *tmpl = xaligned((size_t)c->batch * c->rs);
	fill_template(tmpl, c->rs, c->batch);
	pthread_barrier_wait(&sh->start);
	if (p) {
		const char *what = "";
		me->sent = produce_until_stop(p, c->rs, c->batch, tmpl, producer_base(w->idx), &sh->stop, &rc, &what);
		if (rc < 0 && (rc != RMPSC_ECLOSED || !__atomic_load_n(&sh->failed, __ATOMIC_RELAXED)))
			g_fail(sh, h, me->err, sizeof me->err, what, rc);
		rmpsc_producer_close(p);
	}
	free(tmpl);
	/* The last producer out closes the channel: every consumer drains, then sees ECLOSED. */
	if (__atomic_add_fetch(&sh->finished, 1, __ATOMIC_ACQ_REL) == c->producers)
		rmpsc_channel_close(h ? h : w->ch);
	if (c->procs && h)
		rmpsc_channel_release(h);
	return NULL;
}

static void *g_consumer(void *arg)
{
	struct g_worker *w = arg;
	struct g_shared *sh = w->sh;
	const struct g_cfg *c = w->c;
	struct g_cons *me = &sh->cons[w->idx];
	pin_self(g_cpu(c, 1, w->idx));
	struct acc acc = { 0, 0, c->rs };
	/* Every consumer has a handle of its own: a handle is in one group at a time. */
	rmpsc_channel *h = g_handle(w, me->err, sizeof me->err);
	int rc = RMPSC_ESYS;
	if (h) {
		char name[16];
		snprintf(name, sizeof name, "g%d", w->idx);
		rc = rmpsc_consumer_join(h, c->kind == G_FANOUT ? name : NULL, 0);
		if (rc < 0)
			g_fail(sh, w->ch, me->err, sizeof me->err, "consumer_join", rc);
	}
	pthread_barrier_wait(&sh->start);
	me->t_start = now_ns();
	if (rc == 0) {
		const char *what = "";
		rc = consume_until_closed(h, c->batch, 0, CONS_SUM, &acc, &what);
		if (rc < 0)
			g_fail(sh, h, me->err, sizeof me->err, what, rc);
	}
	me->t_end = now_ns();
	me->count = acc.count;
	me->sum = acc.sum;
	if (h)
		rmpsc_channel_release(h); /* leaves the group */
	return NULL;
}

/* A forked worker: its own watchdog (alarms are not inherited), then the body. */
static pid_t g_fork(void *(*body)(void *), struct g_worker *w, double duration_s)
{
	pid_t pid = fork();
	if (pid == 0) {
		alarm((unsigned)ceil(duration_s + 4.0 * (double)O.timeout_ns / 1e9 + 30.0));
		body(w);
		_exit(0);
	}
	if (pid < 0) {
		perror("bench_c: fork");
		exit(1);
	}
	return pid;
}

struct g_result {
	double rec_per_s;                   /* fanout: the slowest group; workshare: the group */
	double group_rate[G_MAX_CONS];      /* fanout: per group; workshare: per member (its share) */
	uint64_t member_count[G_MAX_CONS];
	int ok;
};

static const char *g_kind_name(enum g_kind k)
{
	return k == G_CLASSIC ? "single consumer" : k == G_SOLO ? "group-solo" : k == G_FANOUT ? "fanout" : "workshare";
}

/* One run: fresh channel, workers, duration_s of traffic, drain, verify. */
static struct g_result g_run(const struct g_cfg *c, const char *label)
{
	struct g_result res;
	memset(&res, 0, sizeof res);
	struct rmpsc_config cfg = { .record_size = c->rs, .capacity = c->capacity,
				    .max_producers = (uint32_t)c->producers,
				    .max_consumers = c->kind == G_CLASSIC ? 1 : 4 };
	if ((uint32_t)c->consumers > cfg.max_consumers)
		cfg.max_consumers = (uint32_t)c->consumers;
	rmpsc_channel *ch;
	int rc = rmpsc_channel_create(&ch, NULL, &cfg, 0);
	if (rc == 0 && c->kind == G_FANOUT)
		rc = rmpsc_group_remove(ch, NULL); /* only the named groups hold records */
	if (rc < 0) {
		fprintf(stderr, "bench_c: %s: setup: %s (%s)\n", label, rmpsc_strerror(rc), rmpsc_last_error());
		any_failure = 1;
		return res;
	}
	struct g_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("bench_c: mmap");
		exit(1);
	}
	memset(sh, 0, sizeof *sh);
	pthread_barrierattr_t ba;
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&sh->start, &ba, (unsigned)g_total_threads(c) + 1);
	pthread_barrierattr_destroy(&ba);
	int nw = g_total_threads(c);
	struct g_worker w[G_MAX_PROD + G_MAX_CONS];
	pthread_t th[G_MAX_PROD + G_MAX_CONS];
	pid_t pid[G_MAX_PROD + G_MAX_CONS];
	watchdog_arm(label, c->duration_s);
	if (c->procs)
		fflush(NULL); /* the children must not flush our buffered output again */
	for (int i = 0; i < nw; i++) {
		int cons = i < c->consumers;
		w[i] = (struct g_worker){ sh, c, ch, cons ? i : i - c->consumers };
		void *(*body)(void *) = cons ? g_consumer : g_producer;
		if (c->procs)
			pid[i] = g_fork(body, &w[i], c->duration_s);
		else if (pthread_create(&th[i], NULL, body, &w[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	pthread_barrier_wait(&sh->start);
	sleep_s(c->duration_s);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	int child_failed = 0;
	for (int i = 0; i < nw; i++) {
		if (!c->procs) {
			pthread_join(th[i], NULL);
			continue;
		}
		int st;
		while (waitpid(pid[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench_c: %s: worker process %d ended with status 0x%x\n", label, (int)pid[i], st);
			child_failed = 1;
		}
	}
	alarm(0);

	uint64_t sent = 0, want = 0, got = 0, got_sum = 0;
	for (int i = 0; i < c->producers; i++) {
		sent += sh->prod[i].sent;
		want += expected_stamps(producer_base(i), sh->prod[i].sent);
		if (sh->prod[i].err[0])
			fprintf(stderr, "bench_c: %s: producer %d: %s\n", label, i, sh->prod[i].err);
	}
	want += sent * extra_words(c->rs);
	int ok = !sh->failed && !child_failed && sent > 0;
	/* One clock for all: from the first consumer past the start barrier (a consumer
	 * scheduled late cannot miss records: its group holds the producers back). */
	int64_t t0 = INT64_MAX, t1 = INT64_MIN;
	for (int j = 0; j < c->consumers; j++) {
		t0 = sh->cons[j].t_start < t0 ? sh->cons[j].t_start : t0;
		t1 = sh->cons[j].t_end > t1 ? sh->cons[j].t_end : t1;
	}
	double slowest = INFINITY;
	for (int j = 0; j < c->consumers; j++) {
		struct g_cons *k = &sh->cons[j];
		if (k->err[0])
			fprintf(stderr, "bench_c: %s: consumer %d: %s\n", label, j, k->err);
		got += k->count;
		got_sum += k->sum;
		double secs = (double)(k->t_end - t0) / 1e9;
		res.group_rate[j] = secs > 0 ? (double)k->count / secs : 0;
		res.member_count[j] = k->count;
		if (res.group_rate[j] < slowest)
			slowest = res.group_rate[j];
		if (c->kind == G_FANOUT && (k->count != sent || k->sum != want)) {
			fprintf(stderr,
				"bench_c: %s: FAILED: group g%d received %" PRIu64 " records (sum %" PRIu64
				"), the producers sent %" PRIu64 " (sum %" PRIu64 ")\n",
				label, j, k->count, k->sum, sent, want);
			ok = 0;
		}
	}
	if (c->kind != G_FANOUT && (got != sent || got_sum != want)) {
		fprintf(stderr,
			"bench_c: %s: FAILED: the consumer%s received %" PRIu64 " records (sum %" PRIu64
			"), the producers sent %" PRIu64 " (sum %" PRIu64 ")\n",
			label, c->consumers > 1 ? "s together" : "", got, got_sum, sent, want);
		ok = 0;
	}
	if (!ok)
		any_failure = 1;
	res.ok = ok;
	if (c->kind == G_FANOUT)
		res.rec_per_s = slowest;
	else
		res.rec_per_s = t1 > t0 ? (double)got / ((double)(t1 - t0) / 1e9) : 0;
	pthread_barrier_destroy(&sh->start);
	munmap(sh, sizeof *sh);
	rmpsc_channel_release(ch);
	return res;
}

static void g_print_header(void)
{
	printf("\nconsumer groups: %d B records; \"single\" = the classic single consumer (max_consumers=1) with the "
	       "same producers,\nrun alternately with the row; ratio = median of the runs' row / single; fanout rate = the slowest group's; "
	       "workshare rate = the group's (all members)\n",
	       O.group_size);
	printf("%-10s %-34s %4s %4s %5s %8s %8s %6s %6s %6s  %s\n", "scenario", "configuration", "prod", "cons", "batch",
	       "Mrec/s", "single", "ratio", "spread", "lineRT", "note");
}

static void g_emit_json(const char *impl, const char *scenario, const struct g_cfg *c, double rate, const double *runs,
			int n_runs, double single, double ratio, double spread, double foreign, double line_rt, int ok,
			const double *per, const char *per_key, int n_per, const double *one_thread)
{
	if (!json_out)
		return;
	int single_row = !strcmp(impl, "single_consumer");
	int consumers = single_row ? 1 : c->consumers;
	int groups = c->kind == G_FANOUT && !single_row ? c->consumers : 1;
	unsigned max_consumers = single_row || c->kind == G_CLASSIC ? 1 : (c->consumers > 4 ? (unsigned)c->consumers : 4);
	const char *path = c->batch == 1 ? "send/read+advance" : "reserve+commit/consume";
	fprintf(json_out,
		"{\"suite\":\"c\",\"impl\":\"%s\",\"path\":\"%s\",\"scenario\":\"%s\",\"record_size\":%u,"
		"\"batch\":%u,\"producers\":%d,\"consumers\":%d,\"groups\":%d,\"max_consumers\":%u,"
		"\"processes\":%s,\"reads_data\":true,",
		impl, path, scenario, c->rs, c->batch, c->producers, consumers, groups, max_consumers,
		c->procs ? "true" : "false");
	json_num("records_per_s", rate, 0);
	json_num("bytes_per_s", rate * c->rs, 0);
	fprintf(json_out, "\"p50_ns\":null,\"p99_ns\":null,\"runs\":%d,\"runs_records_per_s\":[", n_runs);
	for (int i = 0; i < n_runs; i++)
		fprintf(json_out, "%.6g%s", runs[i], i + 1 < n_runs ? "," : "");
	fprintf(json_out, "],");
	if (!single_row) {
		json_num("single_consumer_records_per_s", single, 0);
		json_num("vs_single_consumer", ratio, 0); /* the median of the pairs' ratios */
	}
	if (one_thread) {
		json_num("one_thread_ns_per_record", one_thread[0], 0);
		json_num("single_consumer_one_thread_ns_per_record", one_thread[1], 0);
	}
	if (per && n_per) {
		fprintf(json_out, "\"%s\":[", per_key);
		for (int i = 0; i < n_per; i++)
			fprintf(json_out, "%.6g%s", per[i], i + 1 < n_per ? "," : "");
		fprintf(json_out, "],");
	}
	json_num("spread", spread, 0);
	json_num("other_cpu_load", foreign, 0);
	json_num("cacheline_rt_ns", line_rt, 0);
	int oversub = single_row ? (c->producers + 1 > n_cpus) : g_oversubscribed(c);
	fprintf(json_out,
		"\"capacity\":%u,\"cpus\":%d,\"oversubscribed\":%s,\"pinned\":%s,\"ok\":%s,\"duration_s\":%.3g}\n",
		c->capacity, n_cpus, oversub ? "true" : "false", c->pin ? "true" : "false", ok ? "true" : "false",
		c->duration_s);
	fflush(json_out);
}

/* The cost per record without cross-core traffic: producer and consumer in this one
 * thread (send, then read + advance; or reserve + fill + commit, then consume), on a
 * channel with one group of one member (solo) or a classic one. CPU time of the thread,
 * ns per record; the consumer reads every record and the sum is checked. */
static double g_one_thread_ns(int solo, uint32_t rs, uint32_t batch, uint64_t records)
{
	struct rmpsc_config cfg = { .record_size = rs, .capacity = pick_capacity(batch), .max_producers = 1,
				    .max_consumers = solo ? 4 : 1 };
	rmpsc_channel *ch;
	rmpsc_producer *p = NULL;
	if (rmpsc_channel_create(&ch, NULL, &cfg, 0) < 0) {
		fprintf(stderr, "bench_c: one-thread cost: create: %s\n", rmpsc_last_error());
		any_failure = 1;
		return NAN;
	}
	if (rmpsc_consumer_join(ch, NULL, 0) < 0 || rmpsc_producer_register(ch, &p) < 0) {
		fprintf(stderr, "bench_c: one-thread cost: join/register: %s\n", rmpsc_last_error());
		any_failure = 1;
		rmpsc_channel_release(ch);
		return NAN;
	}
	unsigned char *tmpl = xaligned((size_t)batch * rs);
	fill_template(tmpl, rs, batch);
	struct acc acc = { 0, 0, rs };
	uint64_t seq = 0, sent = 0;
	int64_t t0 = 0;
	int fail = 0;
	for (int pass = 0; pass < 2 && !fail; pass++) { /* pass 0: one lap of the ring, untimed */
		uint64_t n = pass ? records : cfg.capacity;
		if (pass) {
			struct timespec ts;
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
			t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		}
		for (uint64_t done = 0; done < n && !fail;) {
			if (batch == 1) {
				store_u64(tmpl, seq);
				const void *r;
				int k;
				fail = rmpsc_producer_send(p, tmpl, rs, 0) < 0 || (k = rmpsc_read(ch, 1, 0, &r, NULL)) != 1;
				if (!fail) {
					acc.sum += sum_records(r, 1, rs);
					acc.count++;
					rmpsc_advance(ch, 1);
				}
				seq++;
				sent++;
				done++;
				continue;
			}
			void *dst;
			int k = rmpsc_producer_reserve(p, batch, 0, &dst);
			if (k < 1) {
				fail = 1;
				break;
			}
			memcpy(dst, tmpl, (size_t)k * rs);
			for (int i = 0; i < k; i++)
				store_u64((unsigned char *)dst + (size_t)i * rs, seq + (uint64_t)i);
			rmpsc_producer_commit(p, (size_t)k);
			seq += (uint64_t)k;
			sent += (uint64_t)k;
			done += (uint64_t)k;
			while (acc.count < sent)
				if (rmpsc_consume(ch, batch, 0, cb_sum, &acc) < 1) {
					fail = 1;
					break;
				}
		}
	}
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	int64_t t1 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	uint64_t want = expected_stamps(0, sent) + sent * extra_words(rs);
	if (fail || acc.count != sent || acc.sum != want) {
		fprintf(stderr, "bench_c: one-thread cost (%s, batch %u): FAILED: sent %" PRIu64 " received %" PRIu64 " (%s)\n",
			solo ? "group-solo" : "classic", batch, sent, acc.count, rmpsc_last_error());
		any_failure = 1;
	}
	free(tmpl);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	return (double)(t1 - t0) / (double)records;
}

/* One group row and its single-consumer yardstick: a warm-up of each, then
 * --group-runs runs of each in pairs (the order alternating: AB BA AB ...), so each
 * pair compares figures taken a fraction of a second apart. The ratio is the median of
 * the pairs' ratios: a change in the load of a shared machine between pairs cancels. */
static void g_row(enum g_kind kind, int producers, int consumers, int procs, uint32_t rs, uint32_t batch)
{
	struct g_cfg c = { .kind = kind, .producers = producers, .consumers = consumers, .procs = procs, .rs = rs,
			   .batch = batch, .capacity = pick_capacity(batch), .duration_s = O.group_duration_s };
	/* The yardstick is placed as the row is: both pinned, or (oversubscribed) neither. */
	c.pin = O.pin && n_cpus > 1 && !g_oversubscribed(&c);
	struct g_cfg s = c;
	s.kind = G_CLASSIC;
	s.consumers = 1;
	char label[128], slabel[128];
	snprintf(label, sizeof label, "%s p=%d c=%d rs=%u batch=%u%s", g_kind_name(kind), producers, consumers, rs,
		 batch, procs ? " processes" : "");
	snprintf(slabel, sizeof slabel, "single consumer p=%d rs=%u batch=%u%s (for %s)", producers, rs, batch,
		 procs ? " processes" : "", g_kind_name(kind));
	int runs = O.group_runs > 64 ? 64 : O.group_runs, ok = 1;
	double rate[64], single[64], pair[64], per[G_MAX_CONS][64];
	struct noise_mark mark = noise_now();
	double line_rt = n_cpus > 1 ? cacheline_run(0.01).p50 : NAN;
	struct g_cfg wc = c, ws = s; /* untimed warm-up of both */
	wc.duration_s = ws.duration_s = c.duration_s / 4;
	g_run(&ws, slabel);
	g_run(&wc, label);
	uint64_t last_counts[G_MAX_CONS] = { 0 };
	for (int i = 0; i < runs; i++) {
		struct g_result b, r;
		if (i % 2) {
			r = g_run(&c, label);
			b = g_run(&s, slabel);
		} else {
			b = g_run(&s, slabel);
			r = g_run(&c, label);
		}
		ok &= b.ok && r.ok;
		single[i] = b.rec_per_s;
		rate[i] = r.rec_per_s;
		pair[i] = b.rec_per_s > 0 ? r.rec_per_s / b.rec_per_s : 0;
		for (int j = 0; j < consumers; j++)
			per[j][i] = r.group_rate[j];
		memcpy(last_counts, r.member_count, sizeof last_counts);
	}
	double foreign = foreign_load(mark);
	double med = median(rate, runs), smed = median(single, runs), ratio = median(pair, runs);
	double per_med[G_MAX_CONS];
	for (int j = 0; j < consumers; j++)
		per_med[j] = median(per[j], runs);
	char cfgtext[64], note[128] = "";
	if (kind == G_SOLO)
		snprintf(cfgtext, sizeof cfgtext, "1 group x 1 member, max_consumers=4");
	else if (kind == G_FANOUT)
		snprintf(cfgtext, sizeof cfgtext, "%d groups x 1 member (threads)", consumers);
	else
		snprintf(cfgtext, sizeof cfgtext, "1 group x %d member processes", consumers);
	if (g_oversubscribed(&c))
		snprintf(note, sizeof note, "oversubscribed: %d %s on %d CPUs, unpinned ", g_total_threads(&c),
			 procs ? "processes" : "threads", n_cpus);
	if (foreign >= 0.10)
		snprintf(note + strlen(note), sizeof note - strlen(note), "NOISY: others used %.0f%% CPU ", foreign * 100);
	if (!ok)
		snprintf(note + strlen(note), sizeof note - strlen(note), "CHECK FAILED");
	printf("%-10s %-34s %4d %4d %5u %8.2f %8.2f %5.2fx %5.0f%% %6.0f  %s\n", g_kind_name(kind), cfgtext, producers,
	       consumers, batch, med / 1e6, smed / 1e6, ratio, spread_of(rate, runs, med) * 100, line_rt, note);
	if (kind == G_FANOUT) {
		printf("%-10s   per group Mrec/s:", "");
		for (int j = 0; j < consumers; j++)
			printf(" %.2f", per_med[j] / 1e6);
		printf("\n");
	} else if (kind == G_SHARE) {
		uint64_t tot = 0;
		for (int j = 0; j < consumers; j++)
			tot += last_counts[j];
		printf("%-10s   per member share of the records (last run):", "");
		for (int j = 0; j < consumers; j++)
			printf(" %.0f%%", tot ? 100.0 * (double)last_counts[j] / (double)tot : 0);
		printf("\n");
	}
	fflush(stdout);
	/* group-solo: also the cost per record in one thread, alternately, the least of
	 * --group-runs each (no cross-core traffic: what a noisy machine disturbs least). */
	double one[2] = { NAN, NAN };
	if (kind == G_SOLO) {
		uint64_t n = (uint64_t)(O.group_duration_s * (batch == 1 ? 2e6 : 2e7));
		watchdog_arm("one-thread cost", 4.0 * runs * O.group_duration_s);
		for (int i = 0; i < runs; i++)
			for (int k = 0; k < 2; k++) {
				double v = g_one_thread_ns((i + k) % 2 == 0, rs, batch, n);
				int slot = (i + k) % 2 == 0 ? 0 : 1;
				if (isnan(one[slot]) || v < one[slot])
					one[slot] = v;
			}
		alarm(0);
		printf("%-10s   one thread (producer and consumer in this thread, CPU time, least of %d): %.2f ns/record, "
		       "classic %.2f ns/record: rate ratio %.3fx\n",
		       "", runs, one[0], one[1], one[1] / one[0]);
	}
	const char *scen = kind == G_SOLO ? "group-solo" : kind == G_FANOUT ? "fanout" : "workshare";
	g_emit_json("ringmpsc", scen, &c, med, rate, runs, smed, ratio, spread_of(rate, runs, med), foreign, line_rt, ok,
		    kind == G_SOLO ? NULL : per_med, kind == G_FANOUT ? "group_records_per_s" : "member_records_per_s",
		    consumers, kind == G_SOLO ? one : NULL);
	g_emit_json("single_consumer", scen, &s, smed, single, runs, NAN, NAN, spread_of(single, runs, smed), foreign,
		    line_rt, ok, NULL, NULL, 0, NULL);
}

static void groups_rows(void)
{
	uint32_t rs = (uint32_t)O.group_size;
	g_print_header();
	for (int bi = 0; O.group_solo && bi < O.n_group_batches; bi++)
		g_row(G_SOLO, 1, 1, 0, rs, (uint32_t)O.group_batches[bi]);
	for (int bi = 0; O.group_fanout && bi < O.n_group_batches; bi++)
		g_row(G_FANOUT, 1, 4, 0, rs, (uint32_t)O.group_batches[bi]);
	for (int pi = 0; O.group_share && pi < 2; pi++)
		for (int bi = 0; bi < O.n_group_batches; bi++)
			g_row(G_SHARE, pi ? 4 : 1, 4, 1, rs, (uint32_t)O.group_batches[bi]);
}

/* ------------------------------------------------------------------------- */
/* Command line. */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_c [options]\n"
		"  --runs N            runs per configuration, median reported (default 5; --quick 3)\n"
		"  --duration-ms MS    length of one run (default 250; --quick 120)\n"
		"  --sizes LIST        record sizes in bytes (default 8,64,256)\n"
		"  --batches LIST      batch sizes (default 1,32,256)\n"
		"  --producers LIST    MPSC producer counts (default 1,2,4,... up to the CPUs; may exceed them)\n"
		"  --capacity N        records per ring, power of two (default 4096, raised to >= 2*batch)\n"
		"  --timeout-ms MS     timeout of every blocking call (default 2000)\n"
		"  --consumer read     batched consumer uses rmpsc_read/rmpsc_advance instead of rmpsc_consume\n"
		"  --only LIST         any of spsc,mpsc,countonly,pingpong,cacheline,liveness,groups (default all)\n"
		"  --groups            only the consumer-group rows (= --only groups)\n"
		"  --group-batches L   batch sizes of the group rows (default 1,32)\n"
		"  --group-size B      record size of the group rows (default 64)\n"
		"  --group-scenarios L any of solo,fanout,workshare (default all)\n"
		"  --group-runs N      runs of each group row and its single consumer (default 2 x --runs; --quick 4)\n"
		"  --group-duration-ms MS  length of one of those runs (default 150; --quick 100)\n"
		"  --quick             a ~20 s subset: 3 runs of 120 ms, SPSC + the largest MPSC count, the group rows\n"
		"  --no-bare           skip the hand-written SPSC yardstick in the spsc rows\n"
		"  --no-pin            do not pin threads\n"
		"  --pingpong-service-us N  the ping-pong echo works N us (spinning) before it replies (default 0):\n"
		"                      a request/response whose reply comes after the consumer stopped polling\n"
		"  --pingpong-coalesce R:US  the blocking ping-pong row with rmpsc_consumer_coalesce(R, US us)\n"
		"                      instead of the defaults\n"
		"  --json FILE         also write one JSON object per row to FILE\n"
		"  --help\n");
}

static int parse_list(const char *s, int *out, int max)
{
	int n = 0;
	char *end;
	while (*s && n < max) {
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0 || v > (1 << 24))
			return -1;
		out[n++] = (int)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

static void parse_args(int argc, char **argv)
{
	O.runs = 5;
	O.duration_s = 0.25;
	O.timeout_ns = 2000000000;
	O.pin = 1;
	O.do_spsc = O.do_mpsc = O.do_pingpong = O.do_cacheline = O.do_count_only = O.do_bare = 1;
	O.do_liveness = O.do_groups = 1;
	O.group_size = 64;
	O.group_solo = O.group_fanout = O.group_share = 1;
	int runs_set = 0, dur_set = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE                                                                      \
	do {                                                                            \
		if (!v) {                                                               \
			fprintf(stderr, "bench_c: %s needs a value\n", a);              \
			exit(2);                                                        \
		}                                                                       \
		i++;                                                                    \
	} while (0)
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--runs")) {
			NEED_VALUE;
			O.runs = atoi(v);
			runs_set = 1;
		} else if (!strcmp(a, "--duration-ms")) {
			NEED_VALUE;
			O.duration_s = atof(v) / 1000;
			dur_set = 1;
		} else if (!strcmp(a, "--sizes")) {
			NEED_VALUE;
			O.n_sizes = parse_list(v, O.sizes, MAX_LIST);
		} else if (!strcmp(a, "--batches")) {
			NEED_VALUE;
			O.n_batches = parse_list(v, O.batches, MAX_LIST);
		} else if (!strcmp(a, "--producers")) {
			NEED_VALUE;
			O.n_producers = parse_list(v, O.producers, MAX_LIST);
		} else if (!strcmp(a, "--capacity")) {
			NEED_VALUE;
			O.capacity = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--timeout-ms")) {
			NEED_VALUE;
			O.timeout_ns = (int64_t)(atof(v) * 1e6);
		} else if (!strcmp(a, "--consumer")) {
			NEED_VALUE;
			if (strcmp(v, "read") && strcmp(v, "consume")) {
				fprintf(stderr, "bench_c: --consumer read|consume\n");
				exit(2);
			}
			O.consumer_read = !strcmp(v, "read");
		} else if (!strcmp(a, "--only")) {
			NEED_VALUE;
			O.do_spsc = strstr(v, "spsc") != NULL;
			O.do_mpsc = strstr(v, "mpsc") != NULL;
			O.do_count_only = strstr(v, "countonly") != NULL;
			O.do_pingpong = strstr(v, "pingpong") != NULL;
			O.do_cacheline = strstr(v, "cacheline") != NULL;
			O.do_liveness = strstr(v, "liveness") != NULL;
			O.do_groups = strstr(v, "groups") != NULL;
		} else if (!strcmp(a, "--groups")) {
			O.do_spsc = O.do_mpsc = O.do_count_only = O.do_pingpong = O.do_cacheline = O.do_liveness = 0;
			O.do_groups = 1;
		} else if (!strcmp(a, "--group-batches")) {
			NEED_VALUE;
			O.n_group_batches = parse_list(v, O.group_batches, MAX_LIST);
		} else if (!strcmp(a, "--group-scenarios")) {
			NEED_VALUE;
			O.group_solo = strstr(v, "solo") != NULL;
			O.group_fanout = strstr(v, "fanout") != NULL;
			O.group_share = strstr(v, "workshare") != NULL;
		} else if (!strcmp(a, "--group-runs")) {
			NEED_VALUE;
			O.group_runs = atoi(v);
		} else if (!strcmp(a, "--group-duration-ms")) {
			NEED_VALUE;
			O.group_duration_s = atof(v) / 1000;
		} else if (!strcmp(a, "--group-size")) {
			NEED_VALUE;
			O.group_size = atoi(v);
		} else if (!strcmp(a, "--quick")) {
			O.quick = 1;
		} else if (!strcmp(a, "--no-bare")) {
			O.do_bare = 0;
		} else if (!strcmp(a, "--no-pin")) {
			O.pin = 0;
		} else if (!strcmp(a, "--pingpong-service-us")) {
			NEED_VALUE;
			O.pp_service_ns = (int64_t)(atof(v) * 1e3);
		} else if (!strcmp(a, "--pingpong-coalesce")) {
			NEED_VALUE;
			char *end;
			O.pp_records = (uint32_t)strtoul(v, &end, 10);
			if (*end != ':') {
				fprintf(stderr, "bench_c: --pingpong-coalesce RECORDS:MICROSECONDS\n");
				exit(2);
			}
			O.pp_delay_ns = (int64_t)(atof(end + 1) * 1e3);
			O.pp_coalesce = 1;
		} else if (!strcmp(a, "--json")) {
			NEED_VALUE;
			O.json_path = v;
		} else {
			fprintf(stderr, "bench_c: unknown option %s\n", a);
			usage(stderr);
			exit(2);
		}
	}
	if (O.quick) {
		if (!runs_set)
			O.runs = 3;
		if (!dur_set)
			O.duration_s = 0.12;
	}
	if (O.n_sizes < 0 || O.n_batches < 0 || O.n_producers < 0 || O.n_group_batches < 0 || O.group_size < 8 ||
	    (uint32_t)O.group_size > RMPSC_MAX_RECORD_SIZE || O.runs < 1 || O.duration_s <= 0 ||
	    O.timeout_ns <= 0 || (O.capacity && (O.capacity & (O.capacity - 1)))) {
		fprintf(stderr, "bench_c: bad option value\n");
		usage(stderr);
		exit(2);
	}
	for (int i = 0; i < O.n_sizes; i++)
		if ((uint32_t)O.sizes[i] > RMPSC_MAX_RECORD_SIZE) {
			fprintf(stderr, "bench_c: record size %d > %u\n", O.sizes[i], RMPSC_MAX_RECORD_SIZE);
			exit(2);
		}
	if (O.n_sizes == 0) {
		int d[] = { 8, 64, 256 };
		memcpy(O.sizes, d, sizeof d);
		O.n_sizes = 3;
	}
	if (O.group_runs <= 0) /* pairs: a ratio needs more of them than a rate does */
		O.group_runs = O.quick && !runs_set ? 4 : 2 * O.runs;
	if (O.group_duration_s <= 0)
		O.group_duration_s = O.quick ? 0.10 : 0.15;
	if (O.n_group_batches == 0) {
		O.group_batches[0] = 1;
		O.group_batches[1] = 32;
		O.n_group_batches = 2;
	}
	if (O.n_batches == 0) {
		int d[] = { 1, 32, 256 };
		memcpy(O.batches, d, sizeof d);
		O.n_batches = 3;
	}
	if (O.n_producers == 0) {
		int online = (int)sysconf(_SC_NPROCESSORS_ONLN);
		int limit = n_cpus < online ? n_cpus : online;
		if (limit < 1)
			limit = 1;
		for (int p = 1; p <= limit && O.n_producers < MAX_LIST; p *= 2)
			O.producers[O.n_producers++] = p;
		if (O.producers[O.n_producers - 1] != limit && O.n_producers < MAX_LIST)
			O.producers[O.n_producers++] = limit;
		if (O.quick) { /* only the largest */
			O.producers[0] = O.producers[O.n_producers - 1];
			O.n_producers = 1;
		}
	}
}

int main(int argc, char **argv)
{
	signal(SIGALRM, on_alarm);
	init_cpus();
	parse_args(argc, argv);
	bench_pin = O.pin;
	if (O.json_path) {
		json_out = fopen(O.json_path, "w");
		if (!json_out) {
			fprintf(stderr, "bench_c: %s: %s\n", O.json_path, strerror(errno));
			return 2;
		}
	}

	char model[128] = "unknown";
	FILE *ci = fopen("/proc/cpuinfo", "r");
	if (ci) {
		char line[256];
		while (fgets(line, sizeof line, ci))
			if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
				snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
				model[strcspn(model, "\n")] = 0;
				break;
			}
		fclose(ci);
	}
	printf("ringmpsc C benchmark -- %s, %d CPUs allowed (%ld online)\n", model, n_cpus,
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("runs=%d x %.0f ms (median; spread = (max-min)/median of Mrec/s), ring capacity %u records "
	       "(>= 2*batch), blocking timeout %.0f ms\n",
	       O.runs, O.duration_s * 1e3, O.capacity ? O.capacity : 4096, (double)O.timeout_ns / 1e6);
	if (O.pin && n_cpus > 1)
		printf("pinning: consumer on CPU %d, producers on CPUs %d..%d (wrapping round: more producers "
		       "than %d CPUs share them and are marked oversubscribed)\n",
		       consumer_cpu(), cpus[1], cpus[n_cpus - 1], n_cpus - 1);
	else
		printf("pinning: off (%s)\n", O.pin ? "only one CPU allowed" : "--no-pin");
	printf("consumer reads every record: sums the u64 at each 64-byte line start, checked against the "
	       "producers' stamps\n");
	printf("memcpy: same bytes, same batch-sized chunks, one thread, into a ring-sized buffer cyclically; "
	       "ratio = ringmpsc GB/s / memcpy GB/s\n");
	printf("bare: a hand-written spin-wait SPSC ring (no library), same fill and reads, same CPUs; "
	       "vs_bare = ringmpsc GB/s / bare GB/s\n\n");
	print_header();

	struct row s64 = { 0 }; /* spsc 64 B x batch 256, summarised at the end */
	int have_s64 = 0;
	double b1_spsc[3] = { NAN, NAN, NAN }; /* batch-1 Mrec/s at 8, 64, 256 B */
	if (O.do_spsc)
		for (int si = 0; si < O.n_sizes; si++)
			for (int bi = 0; bi < O.n_batches; bi++) {
				struct row r = tp_config("spsc", 1, (uint32_t)O.sizes[si], (uint32_t)O.batches[bi], CONS_SUM);
				if (r.record_size == 64 && r.batch == 256) {
					s64 = r;
					have_s64 = 1;
				}
				if (r.batch == 1)
					for (int k = 0; k < 3; k++)
						if ((int)r.record_size == (int[]){ 8, 64, 256 }[k])
							b1_spsc[k] = r.rec_per_s;
			}
	if (O.do_count_only)
		tp_config("spsc", 1, 64, 256, CONS_COUNT);
	if (O.do_mpsc)
		for (int pi = 0; pi < O.n_producers; pi++)
			for (int si = 0; si < O.n_sizes; si++)
				for (int bi = 0; bi < O.n_batches; bi++)
					tp_config("mpsc", O.producers[pi], (uint32_t)O.sizes[si], (uint32_t)O.batches[bi],
						  CONS_SUM);
	if (O.do_pingpong || O.do_cacheline) {
		printf("\nper-sample latencies include one clock read (~%.0f ns here)\n", clock_overhead_ns());
		latency_rows();
	}
	if (O.do_liveness)
		liveness_row();
	if (O.do_groups)
		groups_rows();

	printf("\n");
	if (have_s64)
		printf("spsc 64 B x batch 256: ringmpsc / bare ring = %.3f (same copy, same CPUs); "
		       "/ memcpy = %.3f (information: one thread, no cross-core traffic)\n",
		       s64.vs_bare, s64.ratio);
	if (!isnan(b1_spsc[1]))
		printf("batch 1 (send/read+advance) spsc: %.2f / %.2f / %.2f Mrec/s at 8 / 64 / 256 B\n",
		       b1_spsc[0] / 1e6, b1_spsc[1] / 1e6, b1_spsc[2] / 1e6);
	if (any_failure)
		printf("SOME RUNS FAILED (see stderr)\n");
	if (json_out)
		fclose(json_out);
	return any_failure ? 1 : 0;
}
