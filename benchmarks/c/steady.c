/*
 * Steady stream: what the consumer's way of waiting costs the producers.
 *
 * P producer processes (default 2), each paced at a steady rate (--rates: by default
 * 100000 records/s each, each record on its own schedule, and 20000 records/s in
 * bursts of 8, as a server's event loop hands them out; a table per rate), send 64-byte
 * records one at a time (rmpsc_producer_send) into one channel for --duration-ms; one
 * consumer process drains it. The consumer waits in one of these modes, each run on a fresh channel,
 * the modes alternating, --rounds rounds:
 *
 *   blocking      rmpsc_consume(timeout -1), coalescing at the defaults
 *   blocking-off  the same after rmpsc_consumer_coalesce(ch, 1, 0): a wake-up for
 *                 every first record, as before coalescing existed
 *   blocking R/D  the same after rmpsc_consumer_coalesce(ch, R, D) (--coalesce R:D,...)
 *   poll          rmpsc_consume(timeout 0) until EEMPTY, then nanosleep(1 ms)
 *   pace-only     the producers' pacing loop alone, no channel (what pacing costs)
 *
 * Per mode: producer CPU per record (CLOCK_PROCESS_CPUTIME_ID of each producer
 * process over its paced loop, summed, / records), the same less the CPU time spent
 * inside the pacing sleeps ("work": CLOCK_THREAD_CPUTIME_ID around each sleep; on a
 * VM one sleep costs 12-20 us of CPU, varying with what the other CPU does, which
 * would otherwise swamp the rest), the producers' time inside rmpsc_producer_send per
 * record (wall clock around each call, summed, / records), consumer wake-ups per record
 * (the channel's rmpsc_stats.consumer_wakes delta while the producers ran / records),
 * consumer CPU per record, consumer sleeps per record (its voluntary context
 * switches), and record latency (the producer's send timestamp to the consumer's
 * callback) p50/p99. The consumer reads and verifies every record (magic, producer,
 * per-producer sequence number, check word); a record missing, repeated, out of order
 * or damaged fails the run (exit status 1). See benchmarks/c/README.md.
 *
 * Processes are not pinned: P + 1 processes on the machine's CPUs, as an application
 * would run. Every child has a watchdog alarm; exit status 0 ok, 1 a run failed,
 * 2 usage, 3 watchdog.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "ringmpsc.h"

#define REC_SIZE      64
#define MAX_PROD      16
#define MAX_MODES     16
#define MAX_ROUNDS    32
#define REC_MAGIC     0x59444153u /* "SADY" */
#define CHECK_MUL     0x9E3779B97F4A7C15ull
#define POLL_SLEEP_NS 1000000 /* the polling consumer's sleep between empty polls */

struct rec {
	uint64_t seq; /* 0, 1, 2, ... per producer */
	uint32_t magic;
	uint32_t producer;
	int64_t t_send; /* CLOCK_MONOTONIC just before the send */
	uint64_t check; /* check_of(seq, producer, t_send) */
	unsigned char fill[32];
};
_Static_assert(sizeof(struct rec) == REC_SIZE, "a record is 64 bytes");

static inline uint64_t check_of(uint64_t seq, uint32_t producer, int64_t t_send)
{
	return seq * CHECK_MUL ^ ((uint64_t)producer << 48) ^ (uint64_t)t_send;
}

/* ------------------------------------------------------------------------- */
/* Options and modes. */

enum wait_kind {
	W_BLOCK,
	W_POLL,
	W_PACE
};

struct mode {
	char name[64];
	enum wait_kind kind;
	int coalesce;         /* call rmpsc_consumer_coalesce(min_records, max_delay_ns) */
	int defaults;         /* blocking at the defaults */
	uint32_t min_records; /* what the consumer ran with (read back) */
	int64_t max_delay_ns;
};

static struct {
	int producers;
	uint64_t rate; /* records/s per producer, of the runs under way */
	uint64_t rates[8];
	int bursts[8]; /* records per pacing sleep at each rate (0: --burst) */
	int n_rates;
	double duration_s;
	int rounds;
	int burst; /* records per pacing sleep, of the runs under way */
	int default_burst;
	uint32_t capacity;
	int64_t timeout_ns; /* producers' send timeout */
	int quick, pace_only;
	const char *json_path;
	struct mode modes[MAX_MODES];
	int n_modes;
} O;

static FILE *json_out;
static int any_failure;

/* ------------------------------------------------------------------------- */
/* Shared state of one run (an anonymous shared mapping, inherited by fork). */

struct st_prod {
	uint64_t sent;
	int64_t cpu_ns, wall_ns, behind_ns; /* behind_ns: how late the last record was */
	int64_t send_ns;                    /* wall time inside rmpsc_producer_send, summed */
	int64_t sleep_cpu_ns;               /* CPU time inside the pacing sleeps, summed */
	long nvcsw, nivcsw;
	char err[200];
};

struct st_cons {
	uint64_t count, bad;
	int64_t cpu_ns, wall_ns;
	long nvcsw, nivcsw;
	double lat_p50, lat_p99, lat_max;
	uint32_t min_records;
	int64_t max_delay_ns;
	char err[240];
};

struct st_shared {
	pthread_barrier_t ready, go;
	int failed;
	struct st_prod prod[MAX_PROD];
	struct st_cons cons;
};

static int64_t cpu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rusage_now(long *nvcsw, long *nivcsw)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*nvcsw = ru.ru_nvcsw;
	*nivcsw = ru.ru_nivcsw;
}

static void sleep_until(int64_t at_ns)
{
	struct timespec ts = { (time_t)(at_ns / 1000000000), (long)(at_ns % 1000000000) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double t[MAX_ROUNDS];
	int k = 0;
	for (int i = 0; i < n && k < MAX_ROUNDS; i++)
		if (!isnan(v[i]))
			t[k++] = v[i];
	if (!k)
		return NAN;
	qsort(t, (size_t)k, sizeof *t, cmp_double);
	return k % 2 ? t[k / 2] : (t[k / 2 - 1] + t[k / 2]) / 2;
}

static void child_fail(struct st_shared *sh, char *buf, size_t len, const char *what, int rc)
{
	snprintf(buf, len, "%s: %s (%s)", what, rmpsc_strerror(rc), rmpsc_last_error());
	__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------- */
/* Producer process: register, then send n records on schedule, one at a time. */

static void producer_main(struct st_shared *sh, rmpsc_channel *parent_ch, int idx, enum wait_kind kind)
{
	struct st_prod *me = &sh->prod[idx];
	/* Sleep to the microsecond, not the default 50 us of timer slack: the records
	 * leave on their schedule (one at a time, or --burst at a time), as events of a
	 * real producer would. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	rmpsc_channel *h = NULL;
	rmpsc_producer *p = NULL;
	int rc = 0;
	if (kind != W_PACE) {
		rc = rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(parent_ch), 0);
		if (rc < 0)
			child_fail(sh, me->err, sizeof me->err, "channel_attach_fd", rc);
		else if ((rc = rmpsc_producer_register(h, &p)) < 0)
			child_fail(sh, me->err, sizeof me->err, "producer_register", rc);
	}
	uint64_t n = (uint64_t)((double)O.rate * O.duration_s);
	struct rec r;
	memset(&r, 0, sizeof r);
	memset(r.fill, 0x5A, sizeof r.fill);
	r.magic = REC_MAGIC;
	r.producer = (uint32_t)idx;
	pthread_barrier_wait(&sh->ready);
	pthread_barrier_wait(&sh->go);
	long v0, iv0, v1, iv1;
	rusage_now(&v0, &iv0);
	int64_t cpu0 = cpu_now_ns(), t0 = now_ns();
	uint64_t i = 0;
	int64_t send_ns = 0, sleep_cpu = 0;
	if (rc >= 0)
		for (; i < n; i++) {
			int64_t due = t0 + (int64_t)(i * 1000000000ull / O.rate);
			if (i % (uint64_t)O.burst == 0 && now_ns() < due) {
				/* What the sleep costs (the system call, the timer, the switches) is
				 * pacing, not sending: counted apart. */
				int64_t c = thread_cpu_ns();
				sleep_until(due);
				sleep_cpu += thread_cpu_ns() - c;
			}
			r.seq = i;
			r.t_send = now_ns();
			r.check = check_of(i, r.producer, r.t_send);
			if (kind == W_PACE) {
				__asm__ __volatile__(""
						     :
						     : "r"(&r)
						     : "memory"); /* the record is built, as for a send */
				continue;
			}
			rc = rmpsc_producer_send(p, &r, sizeof r, O.timeout_ns);
			send_ns += now_ns() - r.t_send;
			if (rc < 0) {
				child_fail(sh, me->err, sizeof me->err, "send", rc);
				break;
			}
		}
	int64_t t1 = now_ns();
	me->cpu_ns = cpu_now_ns() - cpu0;
	rusage_now(&v1, &iv1);
	me->wall_ns = t1 - t0;
	me->behind_ns = n ? t1 - (t0 + (int64_t)((n - 1) * 1000000000ull / O.rate)) : 0;
	me->nvcsw = v1 - v0;
	me->nivcsw = iv1 - iv0;
	me->sent = i;
	me->send_ns = send_ns;
	me->sleep_cpu_ns = sleep_cpu;
	rmpsc_producer_close(p);
	if (h)
		rmpsc_channel_release(h);
}

/* ------------------------------------------------------------------------- */
/* Consumer process: read and verify every record until closed and drained. */

struct verify {
	uint64_t next[MAX_PROD];
	uint64_t count, bad;
	uint32_t *lat;
	size_t lat_n, lat_cap;
	int producers;
	char first_bad[160];
};

static int cb_verify(void *ctx, const void *recs, size_t n, uint32_t slot)
{
	(void)slot;
	struct verify *v = ctx;
	int64_t now = now_ns(); /* the span arrived now: one clock read per span */
	const unsigned char *p = recs;
	for (size_t i = 0; i < n; i++, p += REC_SIZE) {
		struct rec r;
		memcpy(&r, p, sizeof r);
		int ok = r.magic == REC_MAGIC && r.producer < (uint32_t)v->producers &&
			 r.check == check_of(r.seq, r.producer, r.t_send) && r.seq == v->next[r.producer];
		if (!ok) {
			if (!v->bad++)
				snprintf(v->first_bad, sizeof v->first_bad,
					 "record %" PRIu64 ": magic %08x producer %u seq %" PRIu64 " (expected %" PRIu64
					 ")%s",
					 v->count + i, r.magic, r.producer, r.seq,
					 r.producer < (uint32_t)v->producers ? v->next[r.producer] : 0,
					 r.check == check_of(r.seq, r.producer, r.t_send) ? "" : ", bad check word");
			if (r.producer < (uint32_t)v->producers)
				v->next[r.producer] = r.seq + 1;
			continue;
		}
		v->next[r.producer]++;
		if (v->lat_n < v->lat_cap) {
			int64_t d = now - r.t_send;
			v->lat[v->lat_n++] = d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		}
	}
	v->count += n;
	return 0;
}

static void consumer_main(struct st_shared *sh, rmpsc_channel *parent_ch, const struct mode *m)
{
	struct st_cons *me = &sh->cons;
	rmpsc_channel *h = NULL;
	int rc = rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(parent_ch), 0);
	if (rc < 0)
		child_fail(sh, me->err, sizeof me->err, "channel_attach_fd", rc);
	else if ((rc = rmpsc_consumer_join(h, NULL, 0)) < 0)
		child_fail(sh, me->err, sizeof me->err, "consumer_join", rc);
	else if (m->coalesce && (rc = rmpsc_consumer_coalesce(h, m->min_records, m->max_delay_ns)) < 0)
		child_fail(sh, me->err, sizeof me->err, "consumer_coalesce", rc);
	if (h)
		rmpsc_consumer_coalescing(h, &me->min_records, &me->max_delay_ns);
	struct verify v;
	memset(&v, 0, sizeof v);
	v.producers = O.producers;
	v.lat_cap = (size_t)((double)O.rate * O.duration_s) * (size_t)O.producers + 1024;
	v.lat = malloc(v.lat_cap * sizeof *v.lat);
	if (!v.lat)
		v.lat_cap = 0;
	pthread_barrier_wait(&sh->ready);
	pthread_barrier_wait(&sh->go);
	long v0, iv0, v1, iv1;
	rusage_now(&v0, &iv0);
	int64_t cpu0 = cpu_now_ns(), t0 = now_ns();
	while (rc >= 0) {
		int n = rmpsc_consume(h, 256, m->kind == W_POLL ? 0 : -1, cb_verify, &v);
		if (n >= 0)
			continue;
		if (n == RMPSC_EEMPTY && m->kind == W_POLL) {
			struct timespec ts = { 0, POLL_SLEEP_NS };
			nanosleep(&ts, NULL);
			continue;
		}
		if (n != RMPSC_ECLOSED)
			child_fail(sh, me->err, sizeof me->err, "consume", n);
		break;
	}
	me->wall_ns = now_ns() - t0;
	me->cpu_ns = cpu_now_ns() - cpu0;
	rusage_now(&v1, &iv1);
	me->nvcsw = v1 - v0;
	me->nivcsw = iv1 - iv0;
	me->count = v.count;
	me->bad = v.bad;
	if (v.bad && !me->err[0]) {
		snprintf(me->err, sizeof me->err, "%" PRIu64 " records failed verification; first: %s", v.bad,
			 v.first_bad);
		__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
	}
	/* Every producer's records, all of them, in order. */
	for (int i = 0; i < O.producers && !me->err[0]; i++)
		if (v.next[i] != sh->prod[i].sent) {
			snprintf(me->err, sizeof me->err, "producer %d sent %" PRIu64 " records, %" PRIu64 " arrived",
				 i, sh->prod[i].sent, v.next[i]);
			__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
		}
	me->lat_p50 = me->lat_p99 = me->lat_max = NAN;
	if (v.lat_n) {
		qsort(v.lat, v.lat_n, sizeof *v.lat, cmp_u32);
		me->lat_p50 = v.lat[v.lat_n / 2];
		me->lat_p99 = v.lat[v.lat_n * 99 / 100];
		me->lat_max = v.lat[v.lat_n - 1];
	}
	free(v.lat);
	if (h)
		rmpsc_channel_release(h);
}

/* ------------------------------------------------------------------------- */
/* Wake-ups sent to the consumer (futex wakes and readiness fd writes). */

static uint64_t consumer_wakes(rmpsc_channel *ch)
{
	struct rmpsc_stats s;
	if (rmpsc_stats(ch, &s, NULL, 0) < 0)
		return 0;
	return s.consumer_wakes;
}

/* ------------------------------------------------------------------------- */
/* One run. */

struct run_result {
	double prod_cpu_ns, work_ns, send_ns, wakes, cons_cpu_ns, cons_sleeps, prod_sleeps, rec_per_s;
	double lat_p50, lat_p99, lat_max, behind_ms;
	uint64_t records;
	uint32_t min_records;
	int64_t max_delay_ns;
	int ok;
};

static pid_t fork_child(void)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench_steady: fork");
		exit(1);
	}
	if (pid == 0) /* a child's own watchdog (alarms are not inherited) */
		alarm((unsigned)ceil(O.duration_s + 2.0 * (double)O.timeout_ns / 1e9 + 30.0));
	return pid;
}

static struct run_result run_once(struct mode *m)
{
	struct run_result res;
	memset(&res, 0, sizeof res);
	res.lat_p50 = res.lat_p99 = res.lat_max = NAN;
	struct st_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("bench_steady: mmap");
		exit(1);
	}
	memset(sh, 0, sizeof *sh);
	pthread_barrierattr_t ba;
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	int parties = O.producers + 1 + (m->kind != W_PACE);
	pthread_barrier_init(&sh->ready, &ba, (unsigned)parties);
	pthread_barrier_init(&sh->go, &ba, (unsigned)parties);

	rmpsc_channel *ch = NULL;
	if (m->kind != W_PACE) {
		struct rmpsc_config cfg = { .record_size = REC_SIZE,
					    .capacity = O.capacity,
					    .max_producers = (uint32_t)O.producers };
		int rc = rmpsc_channel_create(&ch, NULL, &cfg, 0);
		if (rc < 0) {
			fprintf(stderr, "bench_steady: channel_create: %s\n", rmpsc_last_error());
			exit(1);
		}
	}
	alarm((unsigned)ceil(O.duration_s + 2.0 * (double)O.timeout_ns / 1e9 + 40.0));
	pid_t cons = -1, prods[MAX_PROD];
	if (m->kind != W_PACE && (cons = fork_child()) == 0) {
		consumer_main(sh, ch, m);
		_exit(0);
	}
	for (int i = 0; i < O.producers; i++)
		if ((prods[i] = fork_child()) == 0) {
			producer_main(sh, ch, i, m->kind);
			_exit(0);
		}
	pthread_barrier_wait(&sh->ready);
	uint64_t w0 = ch ? consumer_wakes(ch) : 0;
	pthread_barrier_wait(&sh->go);
	int ok = 1;
	for (int i = 0; i < O.producers; i++) {
		int status;
		waitpid(prods[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = 0;
	}
	/* The producers are done: the wake-ups they caused, before close adds its own. */
	uint64_t w1 = ch ? consumer_wakes(ch) : 0;
	if (ch) {
		rmpsc_channel_close(ch);
		int status;
		waitpid(cons, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = 0;
	}
	alarm(0);

	uint64_t sent = 0;
	double cpu = 0, nv = 0, wall = 0, behind = 0, in_send = 0, sleeping = 0;
	for (int i = 0; i < O.producers; i++) {
		struct st_prod *p = &sh->prod[i];
		sent += p->sent;
		cpu += (double)p->cpu_ns;
		in_send += (double)p->send_ns;
		sleeping += (double)p->sleep_cpu_ns;
		nv += (double)p->nvcsw;
		wall = fmax(wall, (double)p->wall_ns);
		behind = fmax(behind, (double)p->behind_ns);
		if (p->err[0]) {
			fprintf(stderr, "bench_steady: %s: producer %d: %s\n", m->name, i, p->err);
			ok = 0;
		}
	}
	if (sh->cons.err[0]) {
		fprintf(stderr, "bench_steady: %s: consumer: %s\n", m->name, sh->cons.err);
		ok = 0;
	}
	if (ch && sh->cons.count != sent) {
		fprintf(stderr, "bench_steady: %s: %" PRIu64 " records sent, %" PRIu64 " received\n", m->name, sent,
			sh->cons.count);
		ok = 0;
	}
	res.records = sent;
	if (sent) {
		res.prod_cpu_ns = cpu / (double)sent;
		res.send_ns = in_send / (double)sent;
		res.work_ns = (cpu - sleeping) / (double)sent;
		res.prod_sleeps = nv / (double)sent;
		res.rec_per_s = (double)sent / (wall / 1e9);
		res.behind_ms = behind / 1e6;
		if (ch) {
			res.wakes = (double)(w1 - w0) / (double)sent;
			res.cons_cpu_ns = (double)sh->cons.cpu_ns / (double)sent;
			res.cons_sleeps = (double)sh->cons.nvcsw / (double)sent;
			res.lat_p50 = sh->cons.lat_p50;
			res.lat_p99 = sh->cons.lat_p99;
			res.lat_max = sh->cons.lat_max;
		}
	}
	res.min_records = sh->cons.min_records;
	res.max_delay_ns = sh->cons.max_delay_ns;
	res.ok = ok && sent > 0;
	if (!res.ok)
		any_failure = 1;
	pthread_barrier_destroy(&sh->ready);
	pthread_barrier_destroy(&sh->go);
	munmap(sh, sizeof *sh);
	if (ch)
		rmpsc_channel_release(ch);
	return res;
}

/* ------------------------------------------------------------------------- */
/* Output. */

static void fmt_delay(char *buf, size_t len, int64_t ns)
{
	if (ns >= 1000000 && ns % 1000000 == 0)
		snprintf(buf, len, "%" PRId64 " ms", ns / 1000000);
	else if (ns >= 1000 && ns % 1000 == 0)
		snprintf(buf, len, "%" PRId64 " us", ns / 1000);
	else
		snprintf(buf, len, "%" PRId64 " ns", ns);
}

static void mode_path(const struct mode *m, const struct run_result *r, char *buf, size_t len)
{
	char d[32];
	fmt_delay(d, sizeof d, r->max_delay_ns);
	if (m->kind == W_PACE)
		snprintf(buf, len, "pacing only (no channel)");
	else if (m->kind == W_POLL)
		snprintf(buf, len, "send -> consume(timeout 0) + 1 ms sleep when empty");
	else if (r->min_records <= 1 || r->max_delay_ns == 0)
		snprintf(buf, len, "send -> consume(timeout -1), coalescing off");
	else
		snprintf(buf, len, "send -> consume(timeout -1), coalescing (%u, %s)%s", r->min_records, d,
			 m->defaults ? " = defaults" : "");
}

struct mode_stats {
	double prod_cpu[MAX_ROUNDS], wakes[MAX_ROUNDS], cons_cpu[MAX_ROUNDS], cons_sleeps[MAX_ROUNDS];
	double prod_sleeps[MAX_ROUNDS], rate[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS], pmax[MAX_ROUNDS];
	double behind[MAX_ROUNDS], vs_poll[MAX_ROUNDS], foreign[MAX_ROUNDS];
	double send[MAX_ROUNDS], send_vs_poll[MAX_ROUNDS], work[MAX_ROUNDS], work_vs_poll[MAX_ROUNDS];
	struct run_result last;
	int n, ok;
};

static void json_num(const char *key, double v)
{
	if (isnan(v))
		fprintf(json_out, ",\"%s\":null", key);
	else
		fprintf(json_out, ",\"%s\":%.6g", key, v);
}

static void json_list(const char *key, const double *v, int n)
{
	fprintf(json_out, ",\"%s\":[", key);
	for (int i = 0; i < n; i++)
		fprintf(json_out, isnan(v[i]) ? "%snull" : "%s%.6g", i ? "," : "", v[i]);
	fprintf(json_out, "]");
}

static void emit_json(const struct mode *m, const struct mode_stats *s)
{
	if (!json_out)
		return;
	char path[120];
	mode_path(m, &s->last, path, sizeof path);
	const char *wait = m->kind == W_POLL ? "poll" : m->kind == W_PACE ? "none" : "blocking";
	const char *coal = m->kind != W_BLOCK                   ? ""
			   : m->defaults                        ? "defaults"
			   : m->coalesce && m->min_records <= 1 ? "off"
								: "custom";
	double rate = median(s->rate, s->n);
	fprintf(json_out,
		"{\"suite\":\"c\",\"impl\":\"%s\",\"scenario\":\"steady\",\"path\":\"%s\",\"mode\":\"%s\","
		"\"consumer_wait\":\"%s\",\"coalescing\":\"%s\",\"record_size\":%d,\"batch\":1,\"producers\":%d,"
		"\"consumers\":%d,\"processes\":true,\"reads_data\":%s,\"runs\":%d,\"rate_per_producer\":%" PRIu64
		",\"burst\":%d,\"capacity\":%u,\"duration_s\":%.3g",
		m->kind == W_PACE ? "pace_only" : "ringmpsc", path, m->name, wait, coal, REC_SIZE, O.producers,
		m->kind == W_PACE ? 0 : 1, m->kind == W_PACE ? "false" : "true", s->n, O.rate, O.burst, O.capacity,
		O.duration_s);
	if (m->kind == W_BLOCK) {
		fprintf(json_out, ",\"coalesce_min_records\":%u,\"coalesce_max_delay_ns\":%" PRId64,
			s->last.min_records, s->last.max_delay_ns);
	}
	json_num("records_per_s", rate);
	json_num("bytes_per_s", rate * REC_SIZE);
	json_num("p50_ns", m->kind == W_PACE ? NAN : median(s->p50, s->n));
	json_num("p99_ns", m->kind == W_PACE ? NAN : median(s->p99, s->n));
	json_num("latency_max_ns", m->kind == W_PACE ? NAN : median(s->pmax, s->n));
	json_num("producer_cpu_ns_per_record", median(s->prod_cpu, s->n));
	json_list("runs_producer_cpu_ns_per_record", s->prod_cpu, s->n);
	json_num("producer_cpu_vs_poll", median(s->vs_poll, s->n));
	json_list("runs_producer_cpu_vs_poll", s->vs_poll, s->n);
	json_num("producer_work_cpu_ns_per_record", median(s->work, s->n));
	json_list("runs_producer_work_cpu_ns_per_record", s->work, s->n);
	json_num("producer_work_cpu_vs_poll", median(s->work_vs_poll, s->n));
	json_list("runs_producer_work_cpu_vs_poll", s->work_vs_poll, s->n);
	json_num("producer_sleeps_per_record", median(s->prod_sleeps, s->n));
	if (m->kind != W_PACE) {
		json_num("producer_send_ns_per_record", median(s->send, s->n));
		json_list("runs_producer_send_ns_per_record", s->send, s->n);
		json_num("producer_send_vs_poll", median(s->send_vs_poll, s->n));
	}
	if (m->kind != W_PACE) {
		json_num("consumer_wakes_per_record", median(s->wakes, s->n));
		json_list("runs_consumer_wakes_per_record", s->wakes, s->n);
		json_num("consumer_cpu_ns_per_record", median(s->cons_cpu, s->n));
		json_num("consumer_sleeps_per_record", median(s->cons_sleeps, s->n));
	}
	json_num("behind_schedule_ms", median(s->behind, s->n));
	json_num("other_cpu_load", median(s->foreign, s->n));
	fprintf(json_out, ",\"cpus\":%d,\"pinned\":false,\"oversubscribed\":false,\"ok\":%s}\n", n_cpus,
		s->ok ? "true" : "false");
	fflush(json_out);
}

/* ------------------------------------------------------------------------- */
/* Options. */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_steady [options]\n"
		"  --rates LIST       records/s per producer, each a table of its own, RATE or RATE:BURST (records\n"
		"                     per pacing sleep, else --burst); 1000 .. 1000000 (default 100000,20000:8;\n"
		"                     --rate is the same)\n"
		"  --producers N      producer processes (default 2; 1 .. %d)\n"
		"  --duration-ms MS   length of one run (default 2000; --quick 1000)\n"
		"  --rounds N         rounds of every mode, alternating; medians reported (default 3; --quick 1)\n"
		"  --coalesce LIST    add blocking modes with rmpsc_consumer_coalesce(R, D): R:D,... with D in\n"
		"                     ns, or with a unit: 32:1ms,64:500us,16:200us\n"
		"  --modes LIST       any of blocking,blocking-off,poll,pace-only (default all; the --coalesce\n"
		"                     modes are added to these)\n"
		"  --burst N          records sent per pacing sleep where --rates does not say (default 1: each\n"
		"                     record on its own schedule)\n"
		"  --capacity N       records per ring, power of two (default 4096)\n"
		"  --timeout-ms MS    the producers' send timeout (default 2000)\n"
		"  --quick            1 round of 1 s\n"
		"  --json FILE        also write one JSON object per mode to FILE\n"
		"  --help\n",
		MAX_PROD);
}

static int64_t parse_delay(const char *s, char **end)
{
	double v = strtod(s, end);
	double mul = 1;
	if (!strncmp(*end, "ms", 2))
		mul = 1e6, *end += 2;
	else if (!strncmp(*end, "us", 2))
		mul = 1e3, *end += 2;
	else if (!strncmp(*end, "ns", 2))
		*end += 2;
	else if (!strncmp(*end, "s", 1))
		mul = 1e9, *end += 1;
	return (int64_t)(v * mul + 0.5);
}

static void add_mode(const char *name, enum wait_kind kind, int coalesce, int defaults, uint32_t r, int64_t d)
{
	if (O.n_modes >= MAX_MODES) {
		fprintf(stderr, "bench_steady: too many modes\n");
		exit(2);
	}
	struct mode *m = &O.modes[O.n_modes++];
	snprintf(m->name, sizeof m->name, "%s", name);
	m->kind = kind;
	m->coalesce = coalesce;
	m->defaults = defaults;
	m->min_records = r;
	m->max_delay_ns = d;
}

static void parse_args(int argc, char **argv)
{
	O.producers = 2;
	O.rates[0] = 100000; /* one record per pacing sleep */
	O.rates[1] = 20000;  /* eight */
	O.bursts[1] = 8;
	O.n_rates = 2;
	O.capacity = 4096;
	O.timeout_ns = 2000000000;
	O.default_burst = 1;
	const char *modes = "blocking,blocking-off,poll,pace-only", *coalesce = NULL;
	double dur_ms = 0;
	int rounds = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = strcmp(a, "--quick") && strcmp(a, "--help") && strcmp(a, "-h");
		if (takes && !v) {
			fprintf(stderr, "bench_steady: %s needs a value\n", a);
			exit(2);
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--quick")) {
			O.quick = 1;
			continue;
		} else if (!strcmp(a, "--rate") || !strcmp(a, "--rates")) {
			O.n_rates = 0;
			for (const char *c = v; *c && O.n_rates < 8;) {
				char *end;
				O.bursts[O.n_rates] = 0;
				O.rates[O.n_rates] = strtoull(c, &end, 10);
				if (end != c && *end == ':')
					O.bursts[O.n_rates] = (int)strtol(end + 1, &end, 10);
				if (end == c || (*end && *end != ',') || O.bursts[O.n_rates] < 0) {
					fprintf(stderr, "bench_steady: --rates N[:BURST],...\n");
					exit(2);
				}
				O.n_rates++;
				c = *end ? end + 1 : end;
			}
		} else if (!strcmp(a, "--producers")) {
			O.producers = atoi(v);
		} else if (!strcmp(a, "--duration-ms")) {
			dur_ms = atof(v);
		} else if (!strcmp(a, "--rounds")) {
			rounds = atoi(v);
		} else if (!strcmp(a, "--coalesce")) {
			coalesce = v;
		} else if (!strcmp(a, "--modes")) {
			modes = v;
		} else if (!strcmp(a, "--burst")) {
			O.default_burst = atoi(v);
		} else if (!strcmp(a, "--capacity")) {
			O.capacity = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--timeout-ms")) {
			O.timeout_ns = (int64_t)(atof(v) * 1e6);
		} else if (!strcmp(a, "--json")) {
			O.json_path = v;
		} else {
			fprintf(stderr, "bench_steady: unknown option %s\n", a);
			usage(stderr);
			exit(2);
		}
		i++;
	}
	O.duration_s = (dur_ms > 0 ? dur_ms : O.quick ? 1000 : 2000) / 1e3;
	O.rounds = rounds > 0 ? rounds : O.quick ? 1 : 3;
	int bad_rate = O.n_rates < 1;
	for (int i = 0; i < O.n_rates; i++)
		bad_rate |= O.rates[i] < 1000 || O.rates[i] > 1000000;
	if (O.producers < 1 || O.producers > MAX_PROD || bad_rate || O.rounds > MAX_ROUNDS || O.default_burst < 1 ||
	    O.timeout_ns <= 0 || O.capacity < 2 || (O.capacity & (O.capacity - 1))) {
		fprintf(stderr, "bench_steady: bad option value\n");
		usage(stderr);
		exit(2);
	}
	char buf[256];
	snprintf(buf, sizeof buf, ",%s,", modes);
	if (strstr(buf, ",blocking,"))
		add_mode("blocking", W_BLOCK, 0, 1, 0, 0);
	if (strstr(buf, ",blocking-off,"))
		add_mode("blocking-off", W_BLOCK, 1, 0, 1, 0);
	for (const char *s = coalesce; s && *s;) {
		char *end;
		unsigned long r = strtoul(s, &end, 10);
		if (end == s || *end != ':') {
			fprintf(stderr, "bench_steady: --coalesce R:D,... (e.g. 32:1ms)\n");
			exit(2);
		}
		int64_t d = parse_delay(end + 1, &end);
		if (*end && *end != ',') {
			fprintf(stderr, "bench_steady: --coalesce R:D,... (e.g. 32:1ms)\n");
			exit(2);
		}
		char name[64], dn[32];
		fmt_delay(dn, sizeof dn, d);
		char *w = dn;
		for (const char *c = dn; *c; c++) /* "1 ms" -> "1ms" */
			if (*c != ' ')
				*w++ = *c;
		*w = 0;
		snprintf(name, sizeof name, "blocking %lu/%s", r, dn);
		add_mode(name, W_BLOCK, 1, 0, (uint32_t)r, d);
		s = *end ? end + 1 : end;
	}
	if (strstr(buf, ",poll,"))
		add_mode("poll", W_POLL, 0, 0, 0, 0);
	if (strstr(buf, ",pace-only,"))
		add_mode("pace-only", W_PACE, 0, 0, 0, 0);
	if (!O.n_modes) {
		fprintf(stderr, "bench_steady: no modes\n");
		exit(2);
	}
}

/* ------------------------------------------------------------------------- */

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "\nbench_steady: watchdog: a run made no progress -- aborting\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	_exit(3);
}

/* Every mode at the current rate, --rounds rounds; a table and the JSON rows. */
static void rate_rows(void)
{
	static struct mode_stats st[MAX_MODES];
	memset(st, 0, sizeof st);
	int poll_idx = -1;
	for (int k = 0; k < O.n_modes; k++) {
		st[k].ok = 1;
		if (O.modes[k].kind == W_POLL)
			poll_idx = k;
	}
	printf("%d producer processes x %" PRIu64 " records/s (%d per pacing sleep):\n", O.producers, O.rate, O.burst);
	printf("%-20s %7s %7s %6s %7s %6s %7s %6s %8s %7s %7s %7s %7s %s\n", "mode", "rec/s", "prodCPU", "vsPoll",
	       "work", "vsPoll", "inSend", "vsPoll", "wakes", "consCPU", "consSlp", "lat p50", "lat p99", "note");
	printf("%-20s %7s %7s %6s %7s %6s %7s %6s %8s %7s %7s %7s %7s\n", "", "", "ns/rec", "", "ns/rec", "", "ns/rec",
	       "", "per rec", "ns/rec", "per rec", "us", "us");
	for (int round = 0; round < O.rounds; round++) {
		/* Rotate the order each round, so no mode always runs first or last. */
		for (int j = 0; j < O.n_modes; j++) {
			int k = (j + round) % O.n_modes;
			struct noise_mark mark = noise_now();
			struct run_result r = run_once(&O.modes[k]);
			struct mode_stats *s = &st[k];
			int i = s->n++;
			s->foreign[i] = foreign_load(mark);
			s->prod_cpu[i] = r.prod_cpu_ns;
			s->work[i] = r.work_ns;
			s->send[i] = O.modes[k].kind == W_PACE ? NAN : r.send_ns;
			s->wakes[i] = O.modes[k].kind == W_PACE ? NAN : r.wakes;
			s->cons_cpu[i] = r.cons_cpu_ns;
			s->cons_sleeps[i] = r.cons_sleeps;
			s->prod_sleeps[i] = r.prod_sleeps;
			s->rate[i] = r.rec_per_s;
			s->p50[i] = r.lat_p50;
			s->p99[i] = r.lat_p99;
			s->pmax[i] = r.lat_max;
			s->behind[i] = r.behind_ms;
			s->last = r;
			s->ok &= r.ok;
		}
		/* This round's ratios to the polling consumer of the same round. */
		for (int k = 0; k < O.n_modes; k++) {
			st[k].vs_poll[round] = poll_idx >= 0 && st[poll_idx].prod_cpu[round] > 0
						       ? st[k].prod_cpu[round] / st[poll_idx].prod_cpu[round]
						       : NAN;
			st[k].send_vs_poll[round] = poll_idx >= 0 && st[poll_idx].send[round] > 0
							    ? st[k].send[round] / st[poll_idx].send[round]
							    : NAN;
			st[k].work_vs_poll[round] = poll_idx >= 0 && st[poll_idx].work[round] > 0
							    ? st[k].work[round] / st[poll_idx].work[round]
							    : NAN;
		}
	}
	for (int k = 0; k < O.n_modes; k++) {
		struct mode *m = &O.modes[k];
		struct mode_stats *s = &st[k];
		char note[96] = "";
		double load = median(s->foreign, s->n), behind = median(s->behind, s->n);
		if (load >= 0.10)
			snprintf(note + strlen(note), sizeof note - strlen(note), "NOISY (others %.0f%%) ", load * 100);
		if (behind > 1.0)
			snprintf(note + strlen(note), sizeof note - strlen(note), "behind schedule %.1f ms ", behind);
		if (!s->ok)
			snprintf(note + strlen(note), sizeof note - strlen(note), "FAILED");
		printf("%-20s %7.0f %7.0f %6.2f %7.0f %6.2f %7.0f %6.2f %8.4f %7.0f %7.3f %7.1f %7.1f %s\n", m->name,
		       median(s->rate, s->n), median(s->prod_cpu, s->n), median(s->vs_poll, s->n),
		       median(s->work, s->n), median(s->work_vs_poll, s->n), median(s->send, s->n),
		       median(s->send_vs_poll, s->n), median(s->wakes, s->n), median(s->cons_cpu, s->n),
		       median(s->cons_sleeps, s->n), median(s->p50, s->n) / 1e3, median(s->p99, s->n) / 1e3, note);
		emit_json(m, s);
	}
	for (int k = 0; k < O.n_modes; k++) {
		char path[120];
		mode_path(&O.modes[k], &st[k].last, path, sizeof path);
		printf("  %-20s %s\n", O.modes[k].name, path);
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	signal(SIGALRM, on_alarm);
	init_cpus();
	parse_args(argc, argv);
	if (O.json_path && !(json_out = fopen(O.json_path, "w"))) {
		fprintf(stderr, "bench_steady: %s: %s\n", O.json_path, strerror(errno));
		return 2;
	}
	printf("steady stream: %d paced producer processes, %d-byte records, rmpsc_producer_send -> 1 consumer "
	       "process; %d CPUs, unpinned\n",
	       O.producers, REC_SIZE, n_cpus);
	printf("%d round(s) x %d modes x %.1f s per rate, the modes alternating; medians\n", O.rounds, O.n_modes,
	       O.duration_s);
	printf("the consumer verifies every record (producer, sequence number, check word) and the count\n\n");
	for (int i = 0; i < O.n_rates; i++) {
		O.rate = O.rates[i];
		O.burst = O.bursts[i] ? O.bursts[i] : O.default_burst;
		rate_rows();
	}
	printf("prodCPU: CPU time of the producer processes over their paced loops / records (pacing sleeps\n"
	       "included: see pace-only); work: the same less the CPU time inside the pacing sleeps (what building\n"
	       "and sending the records cost); inSend: wall time inside rmpsc_producer_send / records;\n"
	       "vsPoll: / the polling consumer's figure, the median of the rounds' ratios; wakes: wake-ups sent to\n"
	       "the consumer / records; consSlp: the consumer's voluntary context switches / records; lat: record\n"
	       "latency, the producer's send to the consumer's callback\n");
	if (any_failure)
		printf("SOME RUNS FAILED (see stderr)\n");
	if (json_out)
		fclose(json_out);
	return any_failure ? 1 : 0;
}
