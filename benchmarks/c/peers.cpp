/*
 * ringmpsc C peers suite: ringmpsc against the queues a C/C++ user would
 * pick instead, in one program run, same record size, same batch size, same ring
 * capacity, same pinning, consumer reading every record:
 *
 *   ringmpsc          channel API (libringmpsc sources built -O3 -march=native)
 *   rte_ring          DPDK 22.11 rte_ring, elem API (esize = record size), formatted
 *                     with rte_ring_init() in our own 128-byte aligned memory: no EAL,
 *                     no hugepages (rte_ring_init needs neither)
 *   ck_ring           Concurrency Kit typed ring (CK_RING_PROTOTYPE's functions)
 *   boost_spsc        boost::lockfree::spsc_queue<Record>
 *   moodycamel_rwq    moodycamel::ReaderWriterQueue<Record>
 *   moodycamel_cq     moodycamel::ConcurrentQueue<Record> with producer and consumer tokens
 *   memcpy            one thread copying the same bytes in the same chunks
 *
 * Conventions are those of benchmarks/c/bench.c: consumer pinned to the first allowed
 * CPU, producers on the others (wrapping round; such rows say "oversubscribed"); a
 * record of R bytes carries a u64 stamp at offset 0 and the u64 1 at every further
 * 64-byte line start; the consumer sums those words of every record it receives and
 * the total is checked against what the producers stamped. Each row group (scenario,
 * record size, batch, producers): one untimed warm-up run of every queue, then --runs
 * rounds of --duration-ms runs, each round running every queue once (round r starts
 * at the r-th, so all see the same machine noise) plus the memcpy yardstick; a row is
 * the median of its runs (spread = (max-min)/median). Rate = records received / the
 * consumer's wall time from the start barrier to the last record. Per-producer ring
 * capacity is the same for all (ringmpsc: one ring per producer; moodycamel_cq: 4096
 * records per producer token); a peer with one shared MPSC ring gets capacity x
 * producers. Ping-pong and the cache-line round trip are interleaved the same way.
 *
 * Fairness: every peer call used is non-blocking (try once, report full/empty); the
 * benchmark spins (pause) on full/empty for all of them. ringmpsc rows use the same
 * try-once calls (timeout 0) and spin, except the rows marked "(blocking)", which pass
 * a timeout (--timeout-ms, default 2000: spin 64 polls, then futex sleep).
 *
 * Every run arms a watchdog alarm; a hang ends the program with exit status 3.
 * Exit status: 0 ok, 1 a run failed (error or checksum mismatch), 2 usage, 3 watchdog.
 *
 * Build: make build/bench_peers (runs benchmarks/c/build_peers.sh when a source changed;
 * the script prints the command lines it runs).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <string>
#include <vector>

/*
 * ck_ring.h is a C header: _ck_ring_enqueue_reserve_mp() returns `false` from a
 * function returning void *, which C++ rejects. Spelling false as 0 while it is read
 * changes nothing else (every other use is a bool context).
 */
#define false 0
#include <ck_ring.h>
#undef false

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_ring_peek_zc.h>

#include <boost/lockfree/spsc_queue.hpp>
#include <concurrentqueue/concurrentqueue.h>
#include <readerwriterqueue/readerwriterqueue.h>

#include "ringmpsc.h"
#include "bench_common.h"

#define LINE_BYTES 64
#define MAX_LIST 32
#define Q_CLOSED (-1000) /* consume/pop1: the queue is closed and drained */

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
	int max_producers;
	uint32_t capacity;
	int64_t timeout_ns;
	int do_spsc, do_mpsc, do_pingpong, do_cacheline;
	int pin, quick;
	const char *json_path;
	const char *impls; /* NULL = all */
};

static struct opts O;
static FILE *json_out;
static int any_failure;

/* ------------------------------------------------------------------------- */
/* Watchdog and helpers (as bench.c). */

static const char *volatile watchdog_what = "startup";

static void on_alarm(int)
{
	char msg[256];
	int n = snprintf(msg, sizeof msg, "\nbench_peers: watchdog: no progress in '%s' -- aborting\n",
			 watchdog_what);
	if (write(2, msg, (size_t)n) < 0) {
	}
	_exit(3);
}

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

static double median(std::vector<double> v)
{
	if (v.empty())
		return NAN;
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int impl_enabled(const char *name)
{
	if (!O.impls)
		return 1;
	const char *s = O.impls;
	size_t len = strlen(name);
	while (*s) {
		const char *e = strchr(s, ',');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == len && !strncmp(s, name, len))
			return 1;
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------- */
/* Records: RS bytes; u64 stamp at 0, u64 1 at each further 64-byte line start, the
 * rest 0xA5 filler. The consumer sums the line-start words. */

template <uint32_t RS> struct Rec {
	uint64_t w[RS / 8];
};

static inline uint32_t extra_words(uint32_t rs)
{
	return rs >= LINE_BYTES + 8 ? (rs - 8) / LINE_BYTES : 0;
}

static void fill_template(unsigned char *buf, uint32_t rs, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		unsigned char *r = buf + (size_t)i * rs;
		memset(r, 0xA5, rs);
		store_u64(r, 0);
		for (uint32_t off = LINE_BYTES; off + 8 <= rs; off += LINE_BYTES)
			store_u64(r + off, 1);
	}
}

template <uint32_t RS> static inline uint64_t rec_sum(const unsigned char *p)
{
	uint64_t s = 0;
	for (uint32_t off = 0; off + 8 <= RS; off += LINE_BYTES)
		s += load_u64(p + off);
	return s;
}

template <uint32_t RS> static inline uint64_t span_sum(const void *recs, size_t n)
{
	const unsigned char *p = (const unsigned char *)recs;
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += rec_sum<RS>(p + i * RS);
	return s;
}

static uint64_t expected_stamps(uint64_t base, uint64_t n)
{
	uint64_t tri = n % 2 ? n * ((n - 1) / 2) : (n / 2) * (n - 1);
	return base * n + tri;
}

static uint64_t producer_base(int i)
{
	return (uint64_t)(i + 1) << 40;
}

static uint32_t pow2_ceil(uint64_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* ------------------------------------------------------------------------- */
/* One configuration of one queue. */

struct Cfg {
	int producers;
	int mpsc;           /* scenario mpsc: use the peer's multi-producer mode even for 1 */
	uint32_t batch;
	uint32_t cap;       /* records per ring (ringmpsc: per producer) */
	uint32_t cap_total; /* records of a peer's one shared ring (cap * producers, power of two) */
	int variant;
	int blocking;       /* ringmpsc: blocking calls */
	double duration_s;
};

/*
 * Each queue class Q<RS> provides:
 *   Q(const Cfg &)                           construct (ok() / err tell if it failed)
 *   Prod *make_producer(int i)               in the producer thread, before the start
 *   int produce(Prod *, const Rec *src, n)   enqueue up to n: count, 0 full, < 0 error
 *   void producer_done(Prod *)
 *   void all_producers_done()                the last producer finished
 *   int consumer_init()                      in the consumer thread, before the start
 *   long consume(max, uint64_t &sum)         dequeue up to max and sum them: count,
 *                                            0 empty, Q_CLOSED, < 0 error
 *   int pop1(Rec &out)                       one record copied out (ping-pong)
 *   void shutdown()                          end of ping-pong (wake a blocked reader)
 */

/* ---- ringmpsc ---- */
enum { RM_SEND_RECV, RM_SEND_READ, RM_RESERVE_READ, RM_RESERVE_CONSUME };

template <uint32_t RS> struct RmpscQ {
	typedef rmpsc_producer Prod;
	rmpsc_channel *ch = nullptr;
	int variant;
	int64_t tmo;
	unsigned char *rbuf = nullptr;
	char err[200] = "";

	struct Acc {
		uint64_t sum;
	};
	static int cb(void *ctx, const void *recs, size_t n, uint32_t)
	{
		((Acc *)ctx)->sum += span_sum<RS>(recs, n);
		return 0;
	}

	explicit RmpscQ(const Cfg &c)
	{
		variant = c.variant;
		tmo = c.blocking ? O.timeout_ns : 0;
		struct rmpsc_config cfg;
		memset(&cfg, 0, sizeof cfg);
		cfg.record_size = RS;
		cfg.capacity = c.cap;
		cfg.max_producers = (uint32_t)c.producers;
		int rc = rmpsc_channel_create(&ch, NULL, &cfg, 0);
		if (rc < 0) {
			snprintf(err, sizeof err, "channel_create: %s (%s)", rmpsc_strerror(rc), rmpsc_last_error());
			ch = nullptr;
		}
		rbuf = (unsigned char *)xaligned((size_t)c.batch * RS);
	}
	~RmpscQ()
	{
		if (ch)
			rmpsc_channel_release(ch);
		free(rbuf);
	}
	bool ok() const { return ch != nullptr; }
	Prod *make_producer(int)
	{
		rmpsc_producer *p = nullptr;
		int rc = rmpsc_producer_register(ch, &p);
		if (rc < 0) {
			snprintf(err, sizeof err, "producer_register: %s (%s)", rmpsc_strerror(rc), rmpsc_last_error());
			return nullptr;
		}
		return p;
	}
	inline int produce(Prod *p, const Rec<RS> *src, uint32_t n)
	{
		if (variant == RM_SEND_RECV || variant == RM_SEND_READ) {
			int rc = rmpsc_producer_send(p, src, RS, tmo);
			return rc == 0 ? 1 : rc == RMPSC_EFULL ? 0 : rc;
		}
		void *dst;
		int k = rmpsc_producer_reserve(p, n, tmo, &dst);
		if (k < 0)
			return k == RMPSC_EFULL ? 0 : k;
		memcpy(dst, src, (size_t)k * RS);
		rmpsc_producer_commit(p, (size_t)k);
		return k;
	}
	void producer_done(Prod *p) { rmpsc_producer_close(p); }
	void all_producers_done()
	{
		if (tmo) /* blocking rows end like bench.c: close, the consumer drains, then ECLOSED */
			rmpsc_channel_close(ch);
	}
	int consumer_init() { return rmpsc_consumer_claim(ch); }
	static inline long map(int n) { return n == RMPSC_EEMPTY ? 0 : n == RMPSC_ECLOSED ? Q_CLOSED : n; }
	inline long consume(uint32_t max, uint64_t &sum)
	{
		int n;
		switch (variant) {
		case RM_SEND_RECV:
			n = rmpsc_recv(ch, rbuf, max, tmo);
			if (n > 0)
				sum += span_sum<RS>(rbuf, (size_t)n);
			return map(n);
		case RM_RESERVE_CONSUME: {
			Acc a = { 0 };
			n = rmpsc_consume(ch, max, tmo, cb, &a);
			sum += a.sum;
			return map(n);
		}
		default: {
			const void *p;
			n = rmpsc_read(ch, max, tmo, &p, NULL);
			if (n > 0) {
				sum += span_sum<RS>(p, (size_t)n);
				rmpsc_advance(ch, (size_t)n);
			}
			return map(n);
		}
		}
	}
	inline int pop1(Rec<RS> &out)
	{
		const void *p;
		int n = rmpsc_read(ch, 1, tmo, &p, NULL);
		if (n > 0) {
			memcpy(&out, p, RS);
			rmpsc_advance(ch, 1);
			return 1;
		}
		return (int)map(n);
	}
	void shutdown() { rmpsc_channel_close(ch); }
	const char *error() const { return err; }
};

/* ---- DPDK rte_ring ---- */
enum { RTE_SINGLE, RTE_BURST, RTE_ZC_BURST };

template <uint32_t RS> struct RteQ {
	static_assert(RS % 4 == 0, "rte_ring elem size must be a multiple of 4");
	struct Prod {};
	Prod prod;
	struct rte_ring *r = nullptr;
	int variant, mp;
	Rec<RS> *buf = nullptr;
	char err[200] = "";

	explicit RteQ(const Cfg &c)
	{
		variant = c.variant;
		mp = c.mpsc;
		unsigned count = c.cap_total;
		ssize_t sz = rte_ring_get_memsize_elem(RS, count);
		if (sz < 0) {
			snprintf(err, sizeof err, "rte_ring_get_memsize_elem: %zd", sz);
			return;
		}
		void *mem = xaligned((size_t)sz);
		unsigned flags = RING_F_SC_DEQ | (mp ? 0 : RING_F_SP_ENQ);
		int rc = rte_ring_init((struct rte_ring *)mem, "bench", count, flags);
		if (rc < 0) {
			snprintf(err, sizeof err, "rte_ring_init: %s", strerror(-rc));
			free(mem);
			return;
		}
		r = (struct rte_ring *)mem;
		buf = (Rec<RS> *)xaligned((size_t)c.batch * RS);
	}
	~RteQ()
	{
		free(r);
		free(buf);
	}
	bool ok() const { return r != nullptr; }
	Prod *make_producer(int) { return &prod; }
	inline int produce(Prod *, const Rec<RS> *src, uint32_t n)
	{
		switch (variant) {
		case RTE_SINGLE:
			return (mp ? rte_ring_mp_enqueue_elem(r, (void *)src, RS) : rte_ring_sp_enqueue_elem(r, (void *)src, RS)) == 0;
		case RTE_BURST:
			return (int)(mp ? rte_ring_mp_enqueue_burst_elem(r, src, RS, n, NULL)
					: rte_ring_sp_enqueue_burst_elem(r, src, RS, n, NULL));
		default: {
			struct rte_ring_zc_data zcd;
			unsigned k = rte_ring_enqueue_zc_burst_elem_start(r, RS, n, &zcd, NULL);
			if (k) {
				unsigned n1 = k < zcd.n1 ? k : zcd.n1;
				memcpy(zcd.ptr1, src, (size_t)n1 * RS);
				if (k > n1)
					memcpy(zcd.ptr2, src + n1, (size_t)(k - n1) * RS);
				rte_ring_enqueue_zc_elem_finish(r, k);
			}
			return (int)k;
		}
		}
	}
	void producer_done(Prod *) {}
	void all_producers_done() {}
	int consumer_init() { return 0; }
	inline long consume(uint32_t max, uint64_t &sum)
	{
		switch (variant) {
		case RTE_SINGLE: {
			Rec<RS> t;
			if (rte_ring_sc_dequeue_elem(r, &t, RS) != 0)
				return 0;
			sum += rec_sum<RS>((const unsigned char *)&t);
			return 1;
		}
		case RTE_BURST: {
			unsigned k = rte_ring_sc_dequeue_burst_elem(r, buf, RS, max, NULL);
			sum += span_sum<RS>(buf, k);
			return k;
		}
		default: {
			struct rte_ring_zc_data zcd;
			unsigned k = rte_ring_dequeue_zc_burst_elem_start(r, RS, max, &zcd, NULL);
			if (k) {
				unsigned n1 = k < zcd.n1 ? k : zcd.n1;
				sum += span_sum<RS>(zcd.ptr1, n1);
				if (k > n1)
					sum += span_sum<RS>(zcd.ptr2, k - n1);
				rte_ring_dequeue_zc_elem_finish(r, k);
			}
			return k;
		}
		}
	}
	inline int pop1(Rec<RS> &out) { return rte_ring_sc_dequeue_elem(r, &out, RS) == 0; }
	void shutdown() {}
	const char *error() const { return err; }
};

/* ---- Concurrency Kit ck_ring ---- */
/*
 * CK_RING_PROTOTYPE(name, type) defines typed functions for records of a struct type;
 * it does not compile as C++ (its reserve functions return void * as type *), so the
 * four used here are written out with the very bodies the macro gives them.
 */
template <class T> static inline bool ck_enqueue_spsc_T(struct ck_ring *a, T *b, const T *c)
{
	return _ck_ring_enqueue_sp(a, b, c, sizeof(T), NULL);
}
template <class T> static inline bool ck_dequeue_spsc_T(struct ck_ring *a, const T *b, T *c)
{
	return _ck_ring_dequeue_sc(a, b, c, sizeof(T));
}
template <class T> static inline bool ck_enqueue_mpsc_T(struct ck_ring *a, T *b, const T *c)
{
	return _ck_ring_enqueue_mp(a, b, c, sizeof(T), NULL);
}
template <class T> static inline bool ck_dequeue_mpsc_T(struct ck_ring *a, const T *b, T *c)
{
	return _ck_ring_dequeue_sc(a, b, c, sizeof(T));
}

template <uint32_t RS> struct CkQ {
	struct Prod {};
	Prod prod;
	struct ck_ring *ring = nullptr;
	Rec<RS> *slots = nullptr;
	int mp;
	char err[200] = "";

	explicit CkQ(const Cfg &c)
	{
		mp = c.mpsc;
		ring = (struct ck_ring *)xaligned(sizeof *ring);
		ck_ring_init(ring, c.cap_total);
		slots = (Rec<RS> *)xaligned((size_t)c.cap_total * RS);
	}
	~CkQ()
	{
		free(ring);
		free(slots);
	}
	bool ok() const { return true; }
	Prod *make_producer(int) { return &prod; }
	/* No bulk API: n single enqueues. */
	inline int produce(Prod *, const Rec<RS> *src, uint32_t n)
	{
		uint32_t i = 0;
		if (mp) {
			for (; i < n; i++)
				if (!ck_enqueue_mpsc_T(ring, slots, src + i))
					break;
		} else {
			for (; i < n; i++)
				if (!ck_enqueue_spsc_T(ring, slots, src + i))
					break;
		}
		return (int)i;
	}
	void producer_done(Prod *) {}
	void all_producers_done() {}
	int consumer_init() { return 0; }
	inline long consume(uint32_t max, uint64_t &sum)
	{
		uint32_t i = 0;
		Rec<RS> t;
		for (; i < max; i++) {
			if (!(mp ? ck_dequeue_mpsc_T(ring, slots, &t) : ck_dequeue_spsc_T(ring, slots, &t)))
				break;
			sum += rec_sum<RS>((const unsigned char *)&t);
		}
		return i;
	}
	inline int pop1(Rec<RS> &out) { return ck_dequeue_spsc_T(ring, slots, &out); }
	void shutdown() {}
	const char *error() const { return err; }
};

/* ---- Boost.Lockfree spsc_queue ---- */
template <uint32_t RS> struct BoostQ {
	struct Prod {};
	Prod prod;
	boost::lockfree::spsc_queue<Rec<RS>> q;
	Rec<RS> *buf;
	char err[1] = "";

	explicit BoostQ(const Cfg &c) : q(c.cap_total) { buf = (Rec<RS> *)xaligned((size_t)c.batch * RS); }
	~BoostQ() { free(buf); }
	bool ok() const { return true; }
	Prod *make_producer(int) { return &prod; }
	inline int produce(Prod *, const Rec<RS> *src, uint32_t n)
	{
		if (n == 1)
			return q.push(*src) ? 1 : 0;
		return (int)q.push(src, n);
	}
	void producer_done(Prod *) {}
	void all_producers_done() {}
	int consumer_init() { return 0; }
	inline long consume(uint32_t max, uint64_t &sum)
	{
		if (max == 1) {
			Rec<RS> t;
			if (!q.pop(t))
				return 0;
			sum += rec_sum<RS>((const unsigned char *)&t);
			return 1;
		}
		size_t k = q.pop(buf, max);
		sum += span_sum<RS>(buf, k);
		return (long)k;
	}
	inline int pop1(Rec<RS> &out) { return q.pop(out) ? 1 : 0; }
	void shutdown() {}
	const char *error() const { return err; }
};

/* ---- moodycamel ReaderWriterQueue ---- */
template <uint32_t RS> struct RwqQ {
	struct Prod {};
	Prod prod;
	moodycamel::ReaderWriterQueue<Rec<RS>> q;
	char err[1] = "";

	explicit RwqQ(const Cfg &c) : q(c.cap_total) {}
	bool ok() const { return true; }
	Prod *make_producer(int) { return &prod; }
	/* No bulk API: n single try_enqueue (never allocates). */
	inline int produce(Prod *, const Rec<RS> *src, uint32_t n)
	{
		uint32_t i = 0;
		for (; i < n; i++)
			if (!q.try_enqueue(src[i]))
				break;
		return (int)i;
	}
	void producer_done(Prod *) {}
	void all_producers_done() {}
	int consumer_init() { return 0; }
	inline long consume(uint32_t max, uint64_t &sum)
	{
		uint32_t i = 0;
		Rec<RS> t;
		for (; i < max; i++) {
			if (!q.try_dequeue(t))
				break;
			sum += rec_sum<RS>((const unsigned char *)&t);
		}
		return i;
	}
	inline int pop1(Rec<RS> &out) { return q.try_dequeue(out) ? 1 : 0; }
	void shutdown() {}
	const char *error() const { return err; }
};

/* ---- moodycamel ConcurrentQueue, producer + consumer tokens ---- */
/*
 * try_enqueue never allocates: producers take blocks (32 records) from the pool the
 * constructor preallocates, and an explicit producer (one per token) keeps the blocks
 * it took. Without a bound one fast producer takes the whole pool and starves the
 * others for good, so MAX_SUBQUEUE_SIZE bounds each producer to 4096 records: the
 * default per-producer capacity of the other queues.
 */
struct CqTraits : public moodycamel::ConcurrentQueueDefaultTraits {
	static const size_t BLOCK_SIZE = 32;
	static const size_t MAX_SUBQUEUE_SIZE = 4096;
};

template <uint32_t RS> struct CqQ {
	typedef moodycamel::ConcurrentQueue<Rec<RS>, CqTraits> Queue;
	typedef moodycamel::ProducerToken Prod;
	Queue q;
	moodycamel::ConsumerToken *ctok = nullptr;
	Rec<RS> *buf;
	char err[1] = "";

	/* (minCapacity/32 - 1) * (producers + 1) + 2 * producers blocks preallocated:
	 * >= 130 per producer (4096 records plus partly used blocks at both ends). */
	explicit CqQ(const Cfg &c) : q(4096 + 2 * CqTraits::BLOCK_SIZE, (size_t)c.producers, 0)
	{
		buf = (Rec<RS> *)xaligned((size_t)c.batch * RS);
	}
	~CqQ()
	{
		delete ctok;
		free(buf);
	}
	bool ok() const { return true; }
	Prod *make_producer(int) { return new Prod(q); }
	inline int produce(Prod *p, const Rec<RS> *src, uint32_t n)
	{
		if (n == 1)
			return q.try_enqueue(*p, *src) ? 1 : 0;
		return q.try_enqueue_bulk(*p, src, n) ? (int)n : 0;
	}
	void producer_done(Prod *p) { delete p; }
	void all_producers_done() {}
	int consumer_init()
	{
		ctok = new moodycamel::ConsumerToken(q);
		return 0;
	}
	inline long consume(uint32_t max, uint64_t &sum)
	{
		if (max == 1) {
			Rec<RS> t;
			if (!q.try_dequeue(*ctok, t))
				return 0;
			sum += rec_sum<RS>((const unsigned char *)&t);
			return 1;
		}
		size_t k = q.try_dequeue_bulk(*ctok, buf, max);
		sum += span_sum<RS>(buf, k);
		return (long)k;
	}
	inline int pop1(Rec<RS> &out) { return q.try_dequeue(*ctok, out) ? 1 : 0; }
	void shutdown() {}
	const char *error() const { return err; }
};

/* ------------------------------------------------------------------------- */
/* The throughput run: producers -> one consumer, the same loop for every queue. */

struct Shared {
	alignas(128) int stop;
	alignas(128) int finished;
	uint64_t sent_total;
	alignas(128) int failed;
	pthread_barrier_t start;
	int producers;
	uint32_t batch;
};

template <class Q> struct ProdArg {
	Shared *sh;
	Q *q;
	int idx, cpu, pin_err;
	uint64_t sent;
	char err[200];
} __attribute__((aligned(128)));

template <class Q> struct ConsArg {
	Shared *sh;
	Q *q;
	int cpu, pin_err;
	uint64_t count, sum;
	int64_t t_start, t_end;
	char err[200];
} __attribute__((aligned(128)));

static void set_failed(Shared *sh)
{
	__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
}

template <class Q, uint32_t RS> static void *prod_main(void *arg)
{
	ProdArg<Q> *a = (ProdArg<Q> *)arg;
	Shared *sh = a->sh;
	Q *q = a->q;
	const uint32_t batch = sh->batch;
	a->pin_err = pin_self(a->cpu);
	Rec<RS> *src = (Rec<RS> *)xaligned((size_t)batch * RS);
	fill_template((unsigned char *)src, RS, batch);
	typename Q::Prod *p = q->make_producer(a->idx);
	if (!p) {
		snprintf(a->err, sizeof a->err, "%s", q->error());
		set_failed(sh);
	}
	uint64_t seq = producer_base(a->idx), sent = 0; /* records enqueued: stamps base .. base+sent-1 */
	pthread_barrier_wait(&sh->start);
	if (p) {
		while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
			for (uint32_t i = 0; i < batch; i++)
				src[i].w[0] = seq + i;
			uint32_t left = batch, off = 0;
			int64_t stuck_since = 0;
			while (left) {
				int k = q->produce(p, src + off, left);
				if (k > 0) {
					off += (uint32_t)k;
					left -= (uint32_t)k;
					sent += (uint64_t)k;
					stuck_since = 0;
					continue;
				}
				if (k < 0) {
					snprintf(a->err, sizeof a->err, "produce: %s (%s)", rmpsc_strerror(k), rmpsc_last_error());
					set_failed(sh);
					goto out;
				}
				if (__atomic_load_n(&sh->failed, __ATOMIC_RELAXED))
					goto out;
				/* A queue that stays full for 1 s after the stop (the consumer keeps
				 * draining) will never take the rest of this batch: report it. */
				if (__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
					int64_t t = now_ns();
					if (!stuck_since)
						stuck_since = t;
					else if (t - stuck_since > 1000000000) {
						snprintf(a->err, sizeof a->err, "queue stayed full for 1 s after the stop");
						set_failed(sh);
						goto out;
					}
				}
				cpu_relax();
			}
			seq += batch;
		}
	}
out:
	a->sent = sent;
	if (p)
		q->producer_done(p);
	free(src);
	__atomic_fetch_add(&sh->sent_total, sent, __ATOMIC_RELAXED);
	/* Release: sent_total (and every record) before the count the consumer checks. */
	if (__atomic_add_fetch(&sh->finished, 1, __ATOMIC_ACQ_REL) == sh->producers)
		q->all_producers_done();
	return NULL;
}

template <class Q, uint32_t RS> static void *cons_main(void *arg)
{
	ConsArg<Q> *a = (ConsArg<Q> *)arg;
	Shared *sh = a->sh;
	Q *q = a->q;
	const uint32_t batch = sh->batch;
	a->pin_err = pin_self(a->cpu);
	int rc = q->consumer_init();
	if (rc < 0) {
		snprintf(a->err, sizeof a->err, "consumer_init: %s (%s)", rmpsc_strerror(rc), rmpsc_last_error());
		set_failed(sh);
	}
	uint64_t sum = 0, count = 0;
	pthread_barrier_wait(&sh->start);
	a->t_start = now_ns();
	while (rc >= 0) {
		long n = q->consume(batch, sum);
		if (n > 0) {
			count += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			if (__atomic_load_n(&sh->finished, __ATOMIC_ACQUIRE) == sh->producers &&
			    count >= __atomic_load_n(&sh->sent_total, __ATOMIC_RELAXED))
				break;
			if (__atomic_load_n(&sh->failed, __ATOMIC_RELAXED))
				break;
			cpu_relax();
			continue;
		}
		if (n != Q_CLOSED) {
			snprintf(a->err, sizeof a->err, "consume: %s (%s)", rmpsc_strerror((int)n), rmpsc_last_error());
			set_failed(sh);
		}
		break;
	}
	a->t_end = now_ns();
	a->count = count;
	a->sum = sum;
	return NULL;
}

struct TpResult {
	double rec_per_s;
	int ok;
};

template <class Q, uint32_t RS> static TpResult tp_run(const Cfg &c, const char *label)
{
	TpResult res = { 0, 0 };
	Q *q = new Q(c);
	if (!q->ok()) {
		fprintf(stderr, "bench_peers: %s: %s\n", label, q->error());
		any_failure = 1;
		delete q;
		return res;
	}
	Shared *sh = (Shared *)xaligned(sizeof *sh);
	sh->producers = c.producers;
	sh->batch = c.batch;
	int np = c.producers;
	ProdArg<Q> *pa = (ProdArg<Q> *)xaligned((size_t)np * sizeof *pa);
	ConsArg<Q> *ca = (ConsArg<Q> *)xaligned(sizeof *ca);
	for (int i = 0; i < np; i++) {
		pa[i].sh = sh;
		pa[i].q = q;
		pa[i].idx = i;
		pa[i].cpu = producer_cpu(i);
	}
	ca->sh = sh;
	ca->q = q;
	ca->cpu = consumer_cpu();
	pthread_barrier_init(&sh->start, NULL, (unsigned)np + 2);
	std::vector<pthread_t> th((size_t)np + 1);
	watchdog_arm(label, c.duration_s);
	if (pthread_create(&th[np], NULL, cons_main<Q, RS>, ca) != 0) {
		perror("pthread_create");
		exit(1);
	}
	for (int i = 0; i < np; i++)
		if (pthread_create(&th[i], NULL, prod_main<Q, RS>, &pa[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	pthread_barrier_wait(&sh->start);
	sleep_s(c.duration_s);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i <= np; i++)
		pthread_join(th[i], NULL);
	alarm(0);

	uint64_t sent = 0, want = 0;
	for (int i = 0; i < np; i++) {
		sent += pa[i].sent;
		want += expected_stamps(producer_base(i), pa[i].sent);
		if (pa[i].err[0])
			fprintf(stderr, "bench_peers: %s: producer %d: %s\n", label, i, pa[i].err);
	}
	if (ca->err[0])
		fprintf(stderr, "bench_peers: %s: consumer: %s\n", label, ca->err);
	want += sent * extra_words(RS);
	int ok = !sh->failed && ca->count == sent && sent > 0 && ca->sum == want;
	if (!ok) {
		fprintf(stderr,
			"bench_peers: %s: FAILED: sent %" PRIu64 " received %" PRIu64 " sum %" PRIu64 " expected %" PRIu64
			"\n",
			label, sent, ca->count, ca->sum, want);
		any_failure = 1;
	}
	static int warned_pin;
	if (!warned_pin && (ca->pin_err || (np && pa[0].pin_err))) {
		fprintf(stderr, "bench_peers: warning: pthread_setaffinity_np failed; threads are not pinned\n");
		warned_pin = 1;
	}
	double secs = (double)(ca->t_end - ca->t_start) / 1e9;
	res.ok = ok;
	res.rec_per_s = secs > 0 ? (double)ca->count / secs : 0;
	pthread_barrier_destroy(&sh->start);
	free(pa);
	free(ca);
	free(sh);
	delete q;
	return res;
}

/* ------------------------------------------------------------------------- */
/* memcpy yardstick: chunks of batch*rs bytes from one source chunk into a ring-sized
 * destination, cyclically, one thread, for `duration_s`. Returns bytes/s. */

static unsigned char *mc_src, *mc_dst;
static size_t mc_src_size, mc_dst_size;
static volatile unsigned char mc_sink;

static double memcpy_rate(size_t chunk, size_t ring, double duration_s)
{
	if (mc_src_size < chunk) {
		free(mc_src);
		mc_src = (unsigned char *)xaligned(chunk);
		mc_src_size = chunk;
	}
	if (mc_dst_size < ring) {
		free(mc_dst);
		mc_dst = (unsigned char *)xaligned(ring);
		mc_dst_size = ring;
	}
	fill_template(mc_src, (uint32_t)chunk, 1);
	size_t per_ring = ring / chunk, end = per_ring * chunk, off = 0;
	for (size_t i = 0; i < per_ring; i++)
		memcpy(mc_dst + i * chunk, mc_src, chunk);
	int64_t t0 = now_ns(), stop = t0 + (int64_t)(duration_s * 1e9), t1;
	uint64_t n = 0;
	for (;;) {
		for (int i = 0; i < 1024; i++) {
			memcpy(mc_dst + off, mc_src, chunk);
			compiler_barrier();
			off += chunk;
			if (off == end)
				off = 0;
		}
		n += 1024;
		t1 = now_ns();
		if (t1 >= stop)
			break;
	}
	mc_sink = mc_dst[off];
	return (double)n * (double)chunk / ((double)(t1 - t0) / 1e9);
}

/* ------------------------------------------------------------------------- */
/* Rows, table, JSON. */

struct Row {
	std::string impl, path, scenario, note;
	uint32_t record_size = 0, batch = 1, capacity = 0;
	int producers = 1, runs = 0, oversub = 0, blocking = 0, ok = 1;
	double rec_per_s = NAN, bytes_per_s = NAN, p50 = NAN, p99 = NAN, spread = NAN;
	double ratio_best_peer = NAN, memcpy_ratio = NAN, cacheline_ratio = NAN;
	std::string for_scenario;
};

static void json_num(const char *key, double v, int last)
{
	if (isnan(v))
		fprintf(json_out, "\"%s\":null%s", key, last ? "" : ",");
	else
		fprintf(json_out, "\"%s\":%.6g%s", key, v, last ? "" : ",");
}

static void json_str(const char *key, const std::string &v)
{
	fputc('"', json_out);
	fputs(key, json_out);
	fputs("\":\"", json_out);
	for (char ch : v) {
		if (ch == '"' || ch == '\\')
			fputc('\\', json_out);
		fputc(ch, json_out);
	}
	fputs("\",", json_out);
}

static void emit_json(const Row &r)
{
	if (!json_out)
		return;
	fputs("{\"suite\":\"c\",", json_out);
	json_str("impl", r.impl);
	json_str("path", r.path);
	json_str("scenario", r.scenario);
	fprintf(json_out, "\"record_size\":%u,\"batch\":%u,\"producers\":%d,\"consumers\":1,\"processes\":false,"
			  "\"reads_data\":true,",
		r.record_size, r.batch, r.producers);
	json_num("records_per_s", r.rec_per_s, 0);
	json_num("bytes_per_s", r.bytes_per_s, 0);
	json_num("p50_ns", r.p50, 0);
	json_num("p99_ns", r.p99, 0);
	fprintf(json_out, "\"runs\":%d,", r.runs);
	json_num("spread", r.spread, 0);
	json_num("ratio_to_best_peer", r.ratio_best_peer, 0);
	json_num("ratio_to_memcpy", r.memcpy_ratio, 0);
	json_num("ratio_to_cacheline", r.cacheline_ratio, 0);
	if (!r.for_scenario.empty())
		json_str("for_scenario", r.for_scenario);
	if (!r.note.empty())
		json_str("note", r.note);
	fprintf(json_out,
		"\"calls\":\"%s\",\"capacity\":%u,\"duration_ms\":%.0f,\"cpus\":%d,\"oversubscribed\":%s,\"pinned\":%s,"
		"\"ok\":%s}\n",
		r.impl == "ringmpsc" ? (r.blocking ? "blocking" : "try-once") : "non-blocking", r.capacity,
		O.duration_s * 1e3, n_cpus, r.oversub ? "true" : "false", O.pin && n_cpus > 1 ? "true" : "false",
		r.ok ? "true" : "false");
	fflush(json_out);
}

static int is_peer(const Row &r)
{
	return r.impl != "ringmpsc" && r.impl != "memcpy" && r.impl != "cacheline";
}

static void print_group(const std::vector<Row> &g, const char *scen)
{
	const Row &f = g[0];
	printf("\n[%s] record %u B, batch %u, producers %d%s\n", scen, f.record_size, f.batch, f.producers,
	       oversubscribed(f.producers) ? " (oversubscribed: more producers than free CPUs)" : "");
	printf("  %-15s %-44s %9s %8s %10s %9s %7s  %s\n", "impl", "path", "Mrec/s", "GB/s", "/best_peer", "/memcpy",
	       "spread", "note");
	for (const Row &r : g) {
		char ratio[16] = "", mc[16] = "", spread[16] = "";
		if (!isnan(r.ratio_best_peer))
			snprintf(ratio, sizeof ratio, "%.2fx", r.ratio_best_peer);
		if (!isnan(r.memcpy_ratio))
			snprintf(mc, sizeof mc, "%.3f", r.memcpy_ratio);
		if (!isnan(r.spread))
			snprintf(spread, sizeof spread, "%.0f%%", r.spread * 100);
		printf("  %-15s %-44s %9.2f %8.3f %10s %9s %7s  %s%s\n", r.impl.c_str(), r.path.c_str(), r.rec_per_s / 1e6,
		       r.bytes_per_s / 1e9, ratio, mc, spread, r.ok ? "" : "FAILED ", r.note.c_str());
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------------- */
/* One row group (scenario, record size, batch, producers): every queue's variant, the
 * runs interleaved round-robin (round r starts at variant r mod n) so that all of
 * them see the same machine noise; memcpy runs once per round too. */

typedef TpResult (*tp_fn)(const Cfg &, const char *);

struct Variant {
	const char *impl;
	std::string path, note;
	Cfg cfg;
	tp_fn run;
	char label[200];
	std::vector<double> rate;
	int ok;
};

static uint32_t pick_capacity(uint32_t batch)
{
	uint32_t cap = O.capacity ? O.capacity : 4096;
	while (cap < 2 * batch)
		cap *= 2;
	return cap;
}

template <uint32_t RS> static void run_group(int mpsc, int producers, uint32_t batch)
{
	const char *scen = mpsc ? "mpsc" : "spsc";
	Cfg c;
	memset(&c, 0, sizeof c);
	c.producers = producers;
	c.mpsc = mpsc;
	c.batch = batch;
	c.cap = pick_capacity(batch);
	c.cap_total = pow2_ceil((uint64_t)c.cap * (uint64_t)producers);
	c.duration_s = O.duration_s;
	const int b1 = batch == 1;
	const char *oversub = oversubscribed(producers) ? "oversubscribed" : "";
	std::vector<Variant> vs;
	auto add = [&](const char *impl, const char *path, const char *note, tp_fn fn, int variant, int blocking) {
		Variant v;
		v.impl = impl;
		v.path = path;
		v.note = note;
		v.cfg = c;
		v.cfg.variant = variant;
		v.cfg.blocking = blocking;
		v.run = fn;
		v.ok = 1;
		snprintf(v.label, sizeof v.label, "%s %s %s p=%d rs=%u batch=%u", impl, path, scen, producers, RS, batch);
		vs.push_back(v);
	};
	const char *no_bulk = b1 ? oversub : "no bulk API: one call per record";

	if (impl_enabled("ringmpsc")) {
		tp_fn rm = tp_run<RmpscQ<RS>, RS>;
		if (b1) {
			add("ringmpsc", "send/recv", oversub, rm, RM_SEND_RECV, 0);
			add("ringmpsc", "send/read+advance", oversub, rm, RM_SEND_READ, 0);
			add("ringmpsc", "send/read+advance (blocking)", oversub, rm, RM_SEND_READ, 1);
		} else {
			add("ringmpsc", "reserve+commit/read+advance", oversub, rm, RM_RESERVE_READ, 0);
			add("ringmpsc", "reserve+commit/consume", oversub, rm, RM_RESERVE_CONSUME, 0);
			add("ringmpsc", "reserve+commit/consume (blocking)", oversub, rm, RM_RESERVE_CONSUME, 1);
		}
	}
	if (impl_enabled("rte_ring")) {
		tp_fn rte = tp_run<RteQ<RS>, RS>;
		if (b1) {
			add("rte_ring", mpsc ? "mp_enqueue_elem/sc_dequeue_elem" : "sp_enqueue_elem/sc_dequeue_elem", oversub, rte,
			    RTE_SINGLE, 0);
		} else {
			add("rte_ring", mpsc ? "mp/sc burst_elem" : "sp/sc burst_elem", oversub, rte, RTE_BURST, 0);
			if (!mpsc) /* zero-copy needs the ST or HTS sync modes */
				add("rte_ring", "sp/sc zc_burst_elem (zero-copy)", oversub, rte, RTE_ZC_BURST, 0);
		}
	}
	if (impl_enabled("ck_ring"))
		add("ck_ring", mpsc ? "enqueue_mpsc/dequeue_mpsc" : "enqueue_spsc/dequeue_spsc", no_bulk,
		    tp_run<CkQ<RS>, RS>, 0, 0);
	if (!mpsc && impl_enabled("boost_spsc"))
		add("boost_spsc", b1 ? "push/pop" : "push(array)/pop(array)", "", tp_run<BoostQ<RS>, RS>, 0, 0);
	if (!mpsc && impl_enabled("moodycamel_rwq"))
		add("moodycamel_rwq", "try_enqueue/try_dequeue", b1 ? "" : no_bulk, tp_run<RwqQ<RS>, RS>, 0, 0);
	if (impl_enabled("moodycamel_cq"))
		add("moodycamel_cq", b1 ? "try_enqueue/try_dequeue (tokens)" : "try_enqueue_bulk/try_dequeue_bulk (tokens)",
		    oversub, tp_run<CqQ<RS>, RS>, 0, 0);

	/* Untimed warm-up of each (caches, page faults, CPU clocks), then the rounds. */
	for (Variant &v : vs) {
		Cfg warm = v.cfg;
		warm.duration_s = v.cfg.duration_s / 4;
		v.run(warm, v.label);
	}
	std::vector<double> mc;
	const size_t n = vs.size();
	for (int r = 0; r < O.runs; r++) {
		for (size_t i = 0; i < n; i++) {
			Variant &v = vs[(i + (size_t)r) % n];
			TpResult res = v.run(v.cfg, v.label);
			v.rate.push_back(res.rec_per_s);
			v.ok &= res.ok;
		}
		/* The memcpy yardstick of the same bytes in the same chunks. */
		watchdog_arm("memcpy", O.duration_s);
		mc.push_back(memcpy_rate((size_t)batch * RS, (size_t)c.cap * RS, O.duration_s / 2));
		alarm(0);
	}
	const double mcb = median(mc);

	std::vector<Row> g;
	double best = 0;
	for (Variant &v : vs) {
		Row row;
		row.impl = v.impl;
		row.path = v.path;
		row.scenario = scen;
		row.note = v.note;
		row.record_size = RS;
		row.batch = batch;
		row.capacity = !strcmp(v.impl, "ringmpsc") ? c.cap : !strcmp(v.impl, "moodycamel_cq") ? 4096 : c.cap_total;
		row.producers = producers;
		row.runs = O.runs;
		row.oversub = oversubscribed(producers);
		row.blocking = v.cfg.blocking;
		row.ok = v.ok;
		row.rec_per_s = median(v.rate);
		row.bytes_per_s = row.rec_per_s * RS;
		double lo = *std::min_element(v.rate.begin(), v.rate.end());
		double hi = *std::max_element(v.rate.begin(), v.rate.end());
		row.spread = row.rec_per_s > 0 ? (hi - lo) / row.rec_per_s : 0;
		row.memcpy_ratio = mcb > 0 ? row.bytes_per_s / mcb : NAN;
		if (is_peer(row) && row.ok && row.rec_per_s > best)
			best = row.rec_per_s;
		g.push_back(row);
	}
	for (Row &r : g)
		r.ratio_best_peer = best > 0 ? r.rec_per_s / best : NAN;

	Row m;
	m.impl = "memcpy";
	char mp[96];
	snprintf(mp, sizeof mp, "memcpy %u B chunks, 1 thread", batch * RS);
	m.path = mp;
	m.scenario = "memcpy";
	m.for_scenario = scen;
	m.record_size = RS;
	m.batch = batch;
	m.producers = producers;
	m.capacity = c.cap;
	m.runs = O.runs;
	m.bytes_per_s = mcb;
	m.rec_per_s = mcb / RS;
	double lo = *std::min_element(mc.begin(), mc.end()), hi = *std::max_element(mc.begin(), mc.end());
	m.spread = mcb > 0 ? (hi - lo) / mcb : 0;
	m.memcpy_ratio = 1;
	g.push_back(m);
	print_group(g, scen);
	for (Row &r : g) {
		emit_json(r);
	}
}

/* ------------------------------------------------------------------------- */
/* Latency: one 64-byte record there (queue A) and back (queue B). */

struct LatResult {
	double p50, p99, rt_per_s;
	int ok;
};

template <class Q, uint32_t RS> struct PpShared {
	Q *a, *b;
	pthread_barrier_t start;
	int stop;
	char err[200];
};

template <class Q, uint32_t RS> static void *echo_main(void *arg)
{
	PpShared<Q, RS> *s = (PpShared<Q, RS> *)arg;
	pin_self(consumer_cpu());
	s->a->consumer_init();
	typename Q::Prod *pb = s->b->make_producer(0);
	pthread_barrier_wait(&s->start);
	Rec<RS> rec;
	while (pb) {
		int n;
		while ((n = s->a->pop1(rec)) == 0) {
			if (__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
				goto out;
			cpu_relax();
		}
		if (n < 0) {
			if (n != Q_CLOSED)
				snprintf(s->err, sizeof s->err, "echo pop: %d", n);
			break;
		}
		int k;
		while ((k = s->b->produce(pb, &rec, 1)) == 0)
			cpu_relax();
		if (k < 0) {
			snprintf(s->err, sizeof s->err, "echo push: %d", k);
			break;
		}
	}
out:
	if (pb)
		s->b->producer_done(pb);
	return NULL;
}


template <class Q, uint32_t RS> static LatResult pingpong_run(Cfg c, double duration_s, const char *label)
{
	LatResult res = { NAN, NAN, 0, 0 };
	PpShared<Q, RS> s;
	memset((void *)&s, 0, sizeof s);
	s.a = new Q(c);
	s.b = new Q(c);
	if (!s.a->ok() || !s.b->ok()) {
		fprintf(stderr, "bench_peers: %s: %s%s\n", label, s.a->error(), s.b->error());
		any_failure = 1;
		delete s.a;
		delete s.b;
		return res;
	}
	typename Q::Prod *pa = s.a->make_producer(0);
	pthread_barrier_init(&s.start, NULL, 2);
	watchdog_arm(label, duration_s);
	pthread_t th;
	if (pthread_create(&th, NULL, echo_main<Q, RS>, &s) != 0) {
		perror("pthread_create");
		exit(1);
	}
	cpu_set_t old;
	pthread_getaffinity_np(pthread_self(), sizeof old, &old);
	pin_self(n_cpus > 1 ? cpus[1] : -1);
	s.b->consumer_init();
	size_t cap = 4u << 20, n = 0;
	uint32_t *samples = (uint32_t *)malloc(cap * sizeof *samples);
	Rec<RS> *rec = (Rec<RS> *)xaligned(RS);
	Rec<RS> back;
	fill_template((unsigned char *)rec, RS, 1);
	pthread_barrier_wait(&s.start);
	int64_t t_begin = now_ns(), t_stop = t_begin + (int64_t)(duration_s * 1e9);
	int ok = pa != nullptr;
	for (uint64_t i = 0; ok && n < cap; i++) {
		rec->w[0] = i;
		int64_t t0 = now_ns();
		if (t0 >= t_stop)
			break;
		int k;
		while ((k = s.a->produce(pa, rec, 1)) == 0)
			cpu_relax();
		while ((k = k < 0 ? k : s.b->pop1(back)) == 0)
			cpu_relax();
		int64_t t1 = now_ns();
		if (k < 0) {
			fprintf(stderr, "bench_peers: %s: error %d (%s)\n", label, k, rmpsc_last_error());
			ok = 0;
			break;
		}
		if (back.w[0] != i) {
			fprintf(stderr, "bench_peers: %s: got %" PRIu64 " expected %" PRIu64 "\n", label, back.w[0], i);
			ok = 0;
		}
		samples[n++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
	}
	int64_t t_end = now_ns();
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
	if (pa)
		s.a->producer_done(pa);
	s.a->shutdown(); /* a blocked echo wakes with "closed" */
	pthread_join(th, NULL);
	alarm(0);
	pthread_setaffinity_np(pthread_self(), sizeof old, &old);
	if (s.err[0]) {
		fprintf(stderr, "bench_peers: %s: %s\n", label, s.err);
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
	delete s.a;
	delete s.b;
	return res;
}

/* The cache-line round trip (bench_common.h) under this program's watchdog. */
static LatResult cacheline_run(double duration_s)
{
	watchdog_arm("cacheline", duration_s);
	cacheline_rt r = cacheline_round_trip(duration_s);
	alarm(0);
	return LatResult{ r.p50_ns, r.p99_ns, r.ok ? r.rt_per_s : 0, r.ok };
}

static double clock_overhead_ns(void)
{
	std::vector<double> d;
	for (int r = 0; r < 15; r++) {
		int64_t t0 = now_ns(), t1 = t0;
		for (int i = 0; i < 10000; i++)
			t1 = now_ns();
		d.push_back((double)(t1 - t0) / 10000);
	}
	return median(d);
}

typedef LatResult (*lat_fn)(Cfg, double, const char *);

static LatResult cacheline_lat(Cfg, double duration_s, const char *)
{
	return cacheline_run(duration_s);
}

struct LatVariant {
	const char *impl;
	const char *path;
	Cfg cfg;
	lat_fn run;
	char label[160];
	std::vector<double> p50, p99, rps;
	int ok;
};

/* Latency rows, interleaved round-robin like the throughput groups. */
static void latency_rows(void)
{
	const uint32_t RS = 64;
	std::vector<LatVariant> vs;
	auto add = [&](const char *impl, const char *path, lat_fn fn, int variant, int blocking) {
		LatVariant v;
		v.impl = impl;
		v.path = path;
		memset(&v.cfg, 0, sizeof v.cfg);
		v.cfg.producers = 1;
		v.cfg.batch = 1;
		v.cfg.cap = v.cfg.cap_total = 64;
		v.cfg.variant = variant;
		v.cfg.blocking = blocking;
		v.run = fn;
		v.ok = 1;
		snprintf(v.label, sizeof v.label, "pingpong %s %s", impl, path);
		vs.push_back(v);
	};
	if (O.do_cacheline)
		add("cacheline", "flag ping-pong (one 64 B line)", cacheline_lat, 0, 0);
	if (O.do_pingpong) {
		if (impl_enabled("ringmpsc")) {
			add("ringmpsc", "send/read+advance (try-once, spin)", pingpong_run<RmpscQ<RS>, RS>, RM_SEND_READ, 0);
			add("ringmpsc", "send/read+advance (blocking)", pingpong_run<RmpscQ<RS>, RS>, RM_SEND_READ, 1);
		}
		if (impl_enabled("rte_ring"))
			add("rte_ring", "sp_enqueue_elem/sc_dequeue_elem", pingpong_run<RteQ<RS>, RS>, RTE_SINGLE, 0);
		if (impl_enabled("ck_ring"))
			add("ck_ring", "enqueue_spsc/dequeue_spsc", pingpong_run<CkQ<RS>, RS>, 0, 0);
		if (impl_enabled("boost_spsc"))
			add("boost_spsc", "push/pop", pingpong_run<BoostQ<RS>, RS>, 0, 0);
		if (impl_enabled("moodycamel_rwq"))
			add("moodycamel_rwq", "try_enqueue/try_dequeue", pingpong_run<RwqQ<RS>, RS>, 0, 0);
		if (impl_enabled("moodycamel_cq"))
			add("moodycamel_cq", "try_enqueue/try_dequeue (tokens)", pingpong_run<CqQ<RS>, RS>, 0, 0);
	}
	if (vs.empty())
		return;
	const size_t n = vs.size();
	for (int r = 0; r < O.runs; r++)
		for (size_t i = 0; i < n; i++) {
			LatVariant &v = vs[(i + (size_t)r) % n];
			LatResult res = v.run(v.cfg, O.duration_s, v.label);
			v.p50.push_back(res.p50);
			v.p99.push_back(res.p99);
			v.rps.push_back(res.rt_per_s);
			v.ok &= res.ok;
		}
	double cl_p50 = NAN;
	std::vector<Row> rows;
	for (LatVariant &v : vs) {
		Row row;
		row.impl = v.impl;
		row.path = v.path;
		row.scenario = !strcmp(v.impl, "cacheline") ? "cacheline" : "pingpong";
		row.record_size = RS;
		row.batch = 1;
		row.producers = 1;
		row.capacity = !strcmp(v.impl, "cacheline") ? 0 : !strcmp(v.impl, "moodycamel_cq") ? 4096 : 64;
		row.runs = O.runs;
		row.blocking = v.cfg.blocking;
		row.ok = v.ok;
		row.p50 = median(v.p50);
		row.p99 = median(v.p99);
		row.rec_per_s = median(v.rps);
		row.bytes_per_s = row.rec_per_s * RS;
		if (row.scenario == "cacheline") {
			row.note = "round trips/s from bulk timing; p50/p99 timed singly";
			cl_p50 = row.p50;
		}
		rows.push_back(row);
	}
	printf("\n[latency] one 64 B record there and back, two queues of 64 records; client on CPU %d, echo on CPU %d;\n"
	       "          per-sample times include one clock read (~%.0f ns here)\n",
	       n_cpus > 1 ? cpus[1] : -1, consumer_cpu(), clock_overhead_ns());
	printf("  %-15s %-40s %8s %8s %10s %12s\n", "impl", "path", "p50 ns", "p99 ns", "M rt/s", "p50/cacheline");
	for (Row &r : rows) {
		if (r.scenario != "cacheline")
			r.cacheline_ratio = r.p50 / cl_p50;
		char ratio[16] = "";
		if (!isnan(r.cacheline_ratio))
			snprintf(ratio, sizeof ratio, "%.2fx", r.cacheline_ratio);
		printf("  %-15s %-40s %8.0f %8.0f %10.2f %12s  %s%s\n", r.impl.c_str(), r.path.c_str(), r.p50, r.p99,
		       r.rec_per_s / 1e6, ratio, r.ok ? "" : "FAILED ", r.note.c_str());
		emit_json(r);
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------------- */
/* Command line. */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_peers [options]\n"
		"  --runs N            runs per configuration, median reported (default 5; --quick 3)\n"
		"  --duration-ms MS    length of one run (default 120; --quick 30)\n"
		"  --sizes LIST        record sizes in bytes, of 8,16,32,64,128,256 (default 8,64)\n"
		"  --batches LIST      batch sizes (default 1,32,256)\n"
		"  --producers LIST    MPSC producer counts (default 1,2,4,... up to the CPUs)\n"
		"  --max-producers N   producer counts 1,2,4,... up to N (may exceed the CPUs)\n"
		"  --capacity N        records per ring, power of two (default 4096, raised to >= 2*batch);\n"
		"                      a peer's one MPSC ring gets capacity * producers\n"
		"  --timeout-ms MS     timeout of ringmpsc's blocking rows (default 2000)\n"
		"  --only LIST         any of spsc,mpsc,pingpong,cacheline (default all)\n"
		"  --impls LIST        any of ringmpsc,rte_ring,ck_ring,boost_spsc,moodycamel_rwq,moodycamel_cq\n"
		"  --quick             reduced set (< 40 s on 2 CPUs): 3 runs of 30 ms, MPSC at the largest count only\n"
		"  --no-pin            do not pin threads\n"
		"  --json FILE         write one JSON object per row to FILE\n"
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
		if (*end && *end != ',')
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

static void parse_args(int argc, char **argv)
{
	O.runs = 5;
	O.duration_s = 0.12;
	O.timeout_ns = 2000000000;
	O.pin = 1;
	O.do_spsc = O.do_mpsc = O.do_pingpong = O.do_cacheline = 1;
	int runs_set = 0, dur_set = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE                                                                  \
	do {                                                                        \
		if (!v) {                                                           \
			fprintf(stderr, "bench_peers: %s needs a value\n", a);      \
			exit(2);                                                    \
		}                                                                   \
		i++;                                                                \
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
		} else if (!strcmp(a, "--max-producers")) {
			NEED_VALUE;
			O.max_producers = atoi(v);
			if (O.max_producers < 1) {
				fprintf(stderr, "bench_peers: --max-producers must be >= 1\n");
				exit(2);
			}
		} else if (!strcmp(a, "--capacity")) {
			NEED_VALUE;
			O.capacity = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--timeout-ms")) {
			NEED_VALUE;
			O.timeout_ns = (int64_t)(atof(v) * 1e6);
		} else if (!strcmp(a, "--only")) {
			NEED_VALUE;
			O.do_spsc = strstr(v, "spsc") != NULL;
			O.do_mpsc = strstr(v, "mpsc") != NULL;
			O.do_pingpong = strstr(v, "pingpong") != NULL;
			O.do_cacheline = strstr(v, "cacheline") != NULL;
		} else if (!strcmp(a, "--impls")) {
			NEED_VALUE;
			O.impls = v;
		} else if (!strcmp(a, "--quick")) {
			O.quick = 1;
		} else if (!strcmp(a, "--no-pin")) {
			O.pin = 0;
		} else if (!strcmp(a, "--json")) {
			NEED_VALUE;
			O.json_path = v;
		} else {
			fprintf(stderr, "bench_peers: unknown option %s\n", a);
			usage(stderr);
			exit(2);
		}
	}
	if (O.quick) {
		if (!runs_set)
			O.runs = 3;
		if (!dur_set)
			O.duration_s = 0.03;
	}
	if (O.n_sizes < 0 || O.n_batches < 0 || O.n_producers < 0 || O.runs < 1 || O.runs > 1000 ||
	    O.duration_s <= 0 || O.timeout_ns <= 0 || (O.capacity && (O.capacity & (O.capacity - 1)))) {
		fprintf(stderr, "bench_peers: bad option value\n");
		usage(stderr);
		exit(2);
	}
	for (int i = 0; i < O.n_sizes; i++) {
		int s = O.sizes[i];
		if (s != 8 && s != 16 && s != 32 && s != 64 && s != 128 && s != 256) {
			fprintf(stderr, "bench_peers: record size %d: supported sizes are 8,16,32,64,128,256\n", s);
			exit(2);
		}
	}
	if (O.n_sizes == 0) {
		O.sizes[0] = 8;
		O.sizes[1] = 64;
		O.n_sizes = 2;
	}
	if (O.n_batches == 0) {
		O.batches[0] = 1;
		O.batches[1] = 32;
		O.batches[2] = 256;
		O.n_batches = 3;
	}
	if (O.n_producers == 0) {
		int limit = O.max_producers;
		if (!limit) {
			int online = (int)sysconf(_SC_NPROCESSORS_ONLN);
			limit = n_cpus < online ? n_cpus : online;
		}
		if (limit < 1)
			limit = 1;
		for (int p = 1; p <= limit && O.n_producers < MAX_LIST; p *= 2)
			O.producers[O.n_producers++] = p;
		if (O.producers[O.n_producers - 1] != limit && O.n_producers < MAX_LIST)
			O.producers[O.n_producers++] = limit;
		if (O.quick) {
			O.producers[0] = O.producers[O.n_producers - 1];
			O.n_producers = 1;
		}
	}
}

template <uint32_t RS> static void run_size(int mpsc, int producers)
{
	for (int bi = 0; bi < O.n_batches; bi++)
		run_group<RS>(mpsc, producers, (uint32_t)O.batches[bi]);
}

static void run_scenario(int mpsc, int producers, int rs)
{
	switch (rs) {
	case 8: run_size<8>(mpsc, producers); break;
	case 16: run_size<16>(mpsc, producers); break;
	case 32: run_size<32>(mpsc, producers); break;
	case 64: run_size<64>(mpsc, producers); break;
	case 128: run_size<128>(mpsc, producers); break;
	case 256: run_size<256>(mpsc, producers); break;
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
			fprintf(stderr, "bench_peers: %s: %s\n", O.json_path, strerror(errno));
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
	int64_t t_begin = now_ns();
	printf("ringmpsc C peers benchmark -- %s, %d CPUs allowed (%ld online)\n", model, n_cpus,
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("peers: DPDK rte_ring %d.%d (rte_ring_init on own memory, no EAL), Concurrency Kit ck_ring, Boost %d.%d "
	       "lockfree::spsc_queue, moodycamel ReaderWriterQueue and ConcurrentQueue (tokens)\n",
	       RTE_VER_YEAR, RTE_VER_MONTH, BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000);
	printf("runs=%d x %.0f ms per row, interleaved (each round runs every queue of the group once), after one "
	       "warm-up run each;\nmedian; spread = (max-min)/median; ring capacity %u records (>= 2*batch) per producer; "
	       "a peer's one MPSC ring holds capacity*producers\n",
	       O.runs, O.duration_s * 1e3, O.capacity ? O.capacity : 4096);
	if (O.pin && n_cpus > 1)
		printf("pinning: consumer on CPU %d, producers on CPUs %d..%d (wrapping round; more producers than %d "
		       "CPU(s) are marked oversubscribed)\n",
		       consumer_cpu(), cpus[1], cpus[n_cpus - 1], n_cpus - 1);
	else
		printf("pinning: off (%s)\n", O.pin ? "only one CPU allowed" : "--no-pin");
	printf("every call is non-blocking and the benchmark spins (pause) on full/empty; ringmpsc uses try-once calls\n"
	       "(timeout 0) the same way, except rows marked (blocking): timeout %.0f ms, futex sleep after 64 polls\n",
	       (double)O.timeout_ns / 1e6);
	printf("consumer reads every record: sums the u64 at each 64-byte line start, checked against the producers' "
	       "stamps;\nproducers stamp a local batch and enqueue it (ringmpsc: reserve, memcpy, commit)\n");
	printf("/best_peer = Mrec/s over the best peer's in the group; /memcpy = GB/s over one thread memcpy-ing the "
	       "same bytes in batch-sized chunks\n");

	if (O.do_spsc)
		for (int si = 0; si < O.n_sizes; si++)
			run_scenario(0, 1, O.sizes[si]);
	if (O.do_mpsc)
		for (int pi = 0; pi < O.n_producers; pi++)
			for (int si = 0; si < O.n_sizes; si++)
				run_scenario(1, O.producers[pi], O.sizes[si]);
	latency_rows();
	printf("\ntotal %.1f s\n", (double)(now_ns() - t_begin) / 1e9);
	if (any_failure)
		printf("SOME RUNS FAILED (see stderr)\n");
	if (json_out)
		fclose(json_out);
	return any_failure ? 1 : 0;
}
