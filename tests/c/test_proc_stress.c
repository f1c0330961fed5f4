/*
 * Multi-process stress over a memfd region and a named one. Forked producer
 * processes send integrity records (producer id, sequence, checksum) with a mix of
 * send, send_many, reserve + partial commit and slab records; some are SIGKILLed at
 * random moments (some while holding slabs or an open reservation). The parent
 * consumer proves: every record intact, per-producer FIFO without gaps (a killed
 * producer's stream just stops), exactly-once, every record of a surviving producer
 * delivered, and everything committed consumed (channel committed == consumed).
 * Afterwards the dead slots are reclaimed and reused (new processes fill every
 * slot) and every slab is back in the pool.
 */
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "harness.h"
#define CHILD_ALARM_S 100
#include "children.h"

#define MS           1000000ll
#define MAXP         8
#define SEND_TIMEOUT (10000 * MS) /* a child blocked this long means the consumer is stuck */

/* --- process hygiene -------------------------------------------------------------- */

static char g_name[64];

static void cleanup_at_exit(void)
{
	if (g_is_child)
		return;
	children_kill_all();
	if (g_name[0])
		rmpsc_unlink(g_name);
}

static void forget_child(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (g_children[i] == pid)
			g_children[i] = 0;
}

/* --- the run's shape ---------------------------------------------------------------- */

struct run {
	const char *what;
	int named;
	uint32_t record_size;
	uint32_t capacity;
	uint32_t producers; /* first-phase producer processes (== max_producers) */
	uint32_t slab_size, slab_count;
	uint64_t start_position;
	uint64_t records; /* per producer */
	uint32_t kills;   /* producers SIGKILLed at random moments */
	uint64_t seed;
};

/* --- producer process ----------------------------------------------------------------- */

static rmpsc_channel *child_channel(rmpsc_channel *inherited, const struct run *r)
{
	if (!r->named)
		return inherited; /* the memfd mapping came through fork */
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_open(&ch, g_name, 0));
	return ch;
}

static void child_send_slab(rmpsc_channel *ch, rmpsc_producer *p, const struct run *r, uint32_t id, uint64_t seq)
{
	uint32_t h;
	int rc = rmpsc_slab_alloc(ch, SEND_TIMEOUT, &h);
	CHECK(rc == RMPSC_OK, "producer %u: slab_alloc %d (%s)", id, rc, rmpsc_last_error());
	rec_fill(rmpsc_slab_ptr(ch, h), r->slab_size, id, seq);
	CHECK_OK(rmpsc_slab_set_len(ch, h, r->slab_size));
	rc = rmpsc_producer_send_slab(p, h, SEND_TIMEOUT);
	CHECK(rc == RMPSC_OK, "producer %u: send_slab %d (%s)", id, rc, rmpsc_last_error());
}

static void producer_main(rmpsc_channel *inherited, const struct run *r, uint32_t id)
{
	rmpsc_channel *ch = child_channel(inherited, r);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint32_t rs = r->record_size;
	unsigned char *batch = malloc((size_t)rs * 16);
	CHECK(batch, "malloc");
	uint64_t rng = r->seed * 1000003 + id * 7919 + 1;
	uint32_t held[2];
	int nheld = 0;
	uint64_t seq = 0;
	while (seq < r->records) {
		uint64_t left = r->records - seq;
		unsigned op = (unsigned)(rng_next(&rng) % 10);
		if (op < 3) {
			rec_fill(batch, rs, id, seq);
			int rc = rmpsc_producer_send(p, batch, rs, SEND_TIMEOUT);
			CHECK(rc == RMPSC_OK, "producer %u: send %d (%s)", id, rc, rmpsc_last_error());
			seq++;
		} else if (op < 6) {
			uint64_t k = 1 + rng_next(&rng) % 16;
			if (k > left)
				k = left;
			for (uint64_t i = 0; i < k; i++)
				rec_fill(batch + i * rs, rs, id, seq + i);
			int n = rmpsc_producer_send_many(p, batch, (size_t)k, SEND_TIMEOUT);
			CHECK(n >= 1 && (uint64_t)n <= k, "producer %u: send_many %d (%s)", id, n, rmpsc_last_error());
			seq += (uint64_t)n;
		} else if (op < 8) {
			void *w;
			uint64_t want = 1 + rng_next(&rng) % 8;
			int n = rmpsc_producer_reserve(p, (size_t)want, SEND_TIMEOUT, &w);
			CHECK(n >= 1 && (uint64_t)n <= want, "producer %u: reserve %d (%s)", id, n, rmpsc_last_error());
			uint64_t k = 1 + rng_next(&rng) % (uint64_t)n; /* commit k <= granted */
			if (k > left)
				k = left;
			for (int i = 0; i < n; i++) /* write all granted; the rest past k is dropped */
				rec_fill((unsigned char *)w + (size_t)i * rs, rs, id, seq + (uint64_t)i);
			CHECK_OK(rmpsc_producer_commit(p, (size_t)k));
			seq += k;
		} else if (op == 8 && r->slab_count) {
			child_send_slab(ch, p, r, id, seq);
			seq++;
		} else if (r->slab_count) {
			/* Hold slabs for a while (a kill now leaves them with a dead owner). */
			if (nheld < 2 && rmpsc_slab_alloc(ch, 0, &held[nheld]) == RMPSC_OK) {
				memset(rmpsc_slab_ptr(ch, held[nheld]), 0xAB, r->slab_size);
				nheld++;
			} else if (nheld > 0) {
				CHECK_OK(rmpsc_slab_free(ch, held[--nheld]));
			}
		}
	}
	for (int i = 0; i < nheld; i++)
		CHECK_OK(rmpsc_slab_free(ch, held[i]));
	rmpsc_producer_close(p);
	_exit(0);
}

/* --- consumer ------------------------------------------------------------------------- */

struct verify {
	rmpsc_channel *ch;
	const struct run *r;
	uint64_t next[2 * MAXP + 1]; /* next expected seq per producer id */
	uint64_t total;
	uint64_t slab_records;
	uint32_t to_free[256]; /* slabs received in this consume call, freed after it returns */
	uint32_t n_to_free;
};

/* Free the slabs of the records the last consume call took (once their records are
 * consumed: a slab is "received" when its record has been advanced past). */
static void free_received(struct verify *v)
{
	for (uint32_t i = 0; i < v->n_to_free; i++) {
		int rc = rmpsc_slab_free(v->ch, v->to_free[i]);
		CHECK(rc == RMPSC_OK, "[%s] slab_free(%u) of a received slab: %d (%s)", v->r->what, v->to_free[i], rc,
		      rmpsc_last_error());
	}
	v->n_to_free = 0;
}

static void verify_record(struct verify *v, const unsigned char *rec)
{
	const struct run *r = v->r;
	uint32_t id;
	uint64_t seq;
	if (rec_check(rec, r->record_size, &id, &seq) != 0) {
		/* Not an integrity record: it must be a slab record (handle, then zeros). */
		CHECK(r->slab_count, "[%s] corrupt record (no slab pool)", r->what);
		for (uint32_t i = 4; i < r->record_size; i++)
			CHECK(rec[i] == 0, "[%s] torn or corrupt record (byte %u = 0x%02x)", r->what, i, rec[i]);
		uint32_t h = rmpsc_record_handle(rec);
		CHECK(h < r->slab_count, "[%s] slab record with handle %u of %u", r->what, h, r->slab_count);
		const unsigned char *slab = rmpsc_slab_ptr(v->ch, h);
		CHECK(slab && rec_check(slab, r->slab_size, &id, &seq) == 0, "[%s] slab %u content corrupt", r->what, h);
		CHECK(rmpsc_slab_len(v->ch, h) == r->slab_size, "[%s] slab %u len %lld", r->what, h,
		      (long long)rmpsc_slab_len(v->ch, h));
		CHECK(v->n_to_free < 256, "too many slabs in one call");
		v->to_free[v->n_to_free++] = h;
		v->slab_records++;
	}
	CHECK(id < 2 * MAXP + 1, "[%s] record of unknown producer %u", r->what, id);
	CHECK(seq == v->next[id], "[%s] producer %u: seq %llu, expected %llu (%s)", r->what, id, (unsigned long long)seq,
	      (unsigned long long)v->next[id], seq < v->next[id] ? "duplicate or reordered" : "gap: a record was lost");
	v->next[id]++;
	v->total++;
}

static int verify_span(void *ctx, const void *records, size_t count, uint32_t slot)
{
	struct verify *v = ctx;
	CHECK(slot < v->r->producers, "slot %u", slot);
	for (size_t i = 0; i < count; i++)
		verify_record(v, (const unsigned char *)records + i * v->r->record_size);
	return 0;
}

struct child {
	pid_t pid;
	int victim;
	uint64_t kill_at;      /* kill once this many of its records arrived */
	int64_t kill_deadline; /* ...or at this time (whichever first) */
	int killed;
	int reaped;
	int status; /* exit code, or 128 + signal */
};

static void reap_some(struct child *c, uint32_t n, int block)
{
	for (uint32_t i = 0; i < n; i++) {
		if (c[i].reaped)
			continue;
		int st;
		pid_t r = waitpid(c[i].pid, &st, block ? 0 : WNOHANG);
		if (r == c[i].pid) {
			c[i].reaped = 1;
			c[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			forget_child(c[i].pid);
		}
	}
}

static void run_stress(const struct run *r)
{
	int64_t t_start = now_ns();
	struct rmpsc_config cfg = { .record_size = r->record_size,
				    .capacity = r->capacity,
				    .max_producers = r->producers,
				    .slab_size = r->slab_size,
				    .slab_count = r->slab_count,
				    .start_position = r->start_position };
	rmpsc_channel *ch;
	if (r->named) {
		snprintf(g_name, sizeof g_name, "rmpsc_tproc_%d", (int)getpid());
		CHECK_OK(rmpsc_channel_create(&ch, g_name, &cfg, 0));
	} else {
		CHECK_OK(rmpsc_channel_create(&ch, NULL, &cfg, 0));
	}
	CHECK_OK(rmpsc_consumer_claim(ch));

	uint64_t rng = r->seed;
	struct child c[MAXP];
	memset(c, 0, sizeof c);
	for (uint32_t k = 0; k < r->kills; k++) {
		uint32_t i;
		do
			i = (uint32_t)(rng_next(&rng) % r->producers);
		while (c[i].victim);
		c[i].victim = 1;
		/* Early, mid-stream or late; a few by time alone (maybe before registering). */
		c[i].kill_at = k == 0 ? 0 : rng_next(&rng) % r->records;
		c[i].kill_deadline = t_start + (int64_t)(rng_next(&rng) % 1000) * MS;
	}
	for (uint32_t i = 0; i < r->producers; i++) {
		pid_t pid = fork_child();
		if (pid == 0)
			producer_main(ch, r, i);
		c[i].pid = pid;
	}

	struct verify v = { .ch = ch, .r = r };
	uint32_t killed = 0;
	for (;;) {
		CHECK(now_ns() - t_start < 90000 * MS, "[%s] run did not finish (received %llu)", r->what,
		      (unsigned long long)v.total);
		int n = rmpsc_consume(ch, 1 + rng_next(&rng) % 128, 20 * MS, verify_span, &v);
		free_received(&v);
		CHECK(n > 0 || n == RMPSC_ETIMEDOUT, "[%s] consume returned %d (%s)", r->what, n, rmpsc_last_error());
		for (uint32_t i = 0; i < r->producers; i++)
			if (c[i].victim && !c[i].killed && (v.next[i] >= c[i].kill_at || now_ns() >= c[i].kill_deadline)) {
				kill(c[i].pid, SIGKILL);
				c[i].killed = 1;
				killed++;
			}
		reap_some(c, r->producers, 0);
		int live = 0;
		for (uint32_t i = 0; i < r->producers; i++)
			live += !c[i].reaped;
		if (!live && n == RMPSC_ETIMEDOUT)
			break;
	}
	/* Everyone is gone: drain what is left (a full sweep each time). */
	int n;
	while ((n = rmpsc_consume(ch, 256, 0, verify_span, &v)) > 0)
		free_received(&v);
	CHECK_RC(n, RMPSC_EEMPTY);

	uint32_t died = 0, registered_dead = 0;
	for (uint32_t i = 0; i < r->producers; i++) {
		if (c[i].status == 0) {
			CHECK(v.next[i] == r->records, "[%s] producer %u finished but %llu of %llu records arrived",
			      r->what, i, (unsigned long long)v.next[i], (unsigned long long)r->records);
		} else {
			CHECK(c[i].killed && c[i].status == 128 + SIGKILL, "[%s] producer %u failed: status %d",
			      r->what, i, c[i].status);
			CHECK(v.next[i] <= r->records, "[%s] producer %u: too many records", r->what, i);
			died++;
			registered_dead += v.next[i] > 0;
		}
	}
	struct rmpsc_stats s;
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.pending == 0 && s.committed == s.consumed && s.consumed == v.total,
	      "[%s] committed %llu, consumed %llu, received %llu, pending %llu: a committed record was not delivered",
	      r->what, (unsigned long long)s.committed, (unsigned long long)s.consumed, (unsigned long long)v.total,
	      (unsigned long long)s.pending);
	CHECK(s.fenced_rings == 0, "[%s] fenced rings %u", r->what, s.fenced_rings);

	/* Reuse: new processes take every slot, dead ones included. */
	struct child c2[MAXP];
	int up[2], down[2];
	CHECK(pipe(up) == 0 && pipe(down) == 0, "pipe");
	memset(c2, 0, sizeof c2);
	for (uint32_t i = 0; i < r->producers; i++) {
		pid_t pid = fork_child();
		if (pid == 0) {
			close(up[0]);
			close(down[1]);
			rmpsc_channel *cch = child_channel(ch, r);
			rmpsc_producer *p;
			int rc = rmpsc_producer_register(cch, &p);
			CHECK(rc == RMPSC_OK, "reuse producer %u: register %d (%s)", i, rc, rmpsc_last_error());
			uint32_t slot = rmpsc_producer_slot(p);
			CHECK(write(up[1], &slot, sizeof slot) == sizeof slot, "write");
			char go;
			CHECK(read(down[0], &go, 1) == 1, "read");
			unsigned char *rec = calloc(1, r->record_size);
			rec_fill(rec, r->record_size, MAXP + i, 0);
			CHECK_OK(rmpsc_producer_send(p, rec, r->record_size, SEND_TIMEOUT));
			rmpsc_producer_close(p);
			_exit(0);
		}
		c2[i].pid = pid;
	}
	close(up[1]);
	close(down[0]);
	uint32_t slot_seen[MAXP] = { 0 };
	for (uint32_t i = 0; i < r->producers; i++) {
		uint32_t slot;
		struct pollfd pfd = { .fd = up[0], .events = POLLIN };
		ssize_t got = poll(&pfd, 1, 20000) == 1 ? read(up[0], &slot, sizeof slot) : -1;
		if (got != (ssize_t)sizeof slot) {
			for (uint32_t k = 0; k < r->producers; k++) /* the rest wait for "go": end them */
				kill(c2[k].pid, SIGKILL);
			reap_some(c2, r->producers, 1);
			for (uint32_t k = 0; k < r->producers; k++)
				fprintf(stderr, "[%s] reuse producer %u: status %d\n", r->what, k, c2[k].status);
			FAIL("[%s] reuse: only %u producers registered", r->what, i);
		}
		CHECK(slot < r->producers && !slot_seen[slot], "[%s] reuse: slot %u twice", r->what, slot);
		slot_seen[slot] = 1;
	}
	rmpsc_producer *extra = NULL;
	CHECK_RC(rmpsc_producer_register(ch, &extra), RMPSC_ENOSLOT);
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.active_producers == r->producers, "[%s] active %u", r->what, s.active_producers);
	CHECK(s.reclaimed_slots >= registered_dead, "[%s] reclaimed %u slots, %u registered producers died", r->what,
	      s.reclaimed_slots, registered_dead);
	CHECK(write(down[1], "gggggggg", r->producers) == (ssize_t)r->producers, "write");
	uint64_t reuse_total = 0;
	while (reuse_total < r->producers) {
		n = rmpsc_consume(ch, 64, 5000 * MS, verify_span, &v);
		free_received(&v);
		CHECK(n > 0, "[%s] reuse records: consume %d (%s)", r->what, n, rmpsc_last_error());
		reuse_total += (uint64_t)n;
	}
	reap_some(c2, r->producers, 1);
	for (uint32_t i = 0; i < r->producers; i++) {
		CHECK(c2[i].status == 0, "[%s] reuse producer %u: status %d", r->what, i, c2[i].status);
		CHECK(v.next[MAXP + i] == 1, "[%s] reuse producer %u's record", r->what, i);
	}
	close(up[0]);
	close(down[1]);

	/* Slabs: every slab a dead producer held is back once everything is consumed. */
	int rec = rmpsc_reclaim_dead(ch);
	CHECK(rec >= 0, "reclaim_dead %d", rec);
	CHECK(rmpsc_slab_free_count(ch) == r->slab_count, "[%s] %u of %u slabs free at the end: leaked", r->what,
	      rmpsc_slab_free_count(ch), r->slab_count);

	CHECK_OK(rmpsc_channel_close(ch));
	CHECK_RC(rmpsc_consume(ch, 1, -1, verify_span, &v), RMPSC_ECLOSED);
	rmpsc_channel_release(ch);
	if (r->named) {
		CHECK_OK(rmpsc_unlink(g_name));
		g_name[0] = 0;
	}
	printf("[%s] %u producers x %llu records, %u killed: %llu records (%llu slab records) verified, "
	       "%u slots reclaimed, all reused, %.2f s\n",
	       r->what, r->producers, (unsigned long long)r->records, died, (unsigned long long)v.total,
	       (unsigned long long)v.slab_records, s.reclaimed_slots, (double)(now_ns() - t_start) / 1e9);
}

int main(int argc, char **argv)
{
	harness_start("test_proc_stress", 240);
	atexit(cleanup_at_exit);
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);
	printf("seed %llu (rerun: %s %llu)\n", (unsigned long long)seed, argv[0], (unsigned long long)seed);
	struct run runs[] = {
		{ .what = "memfd cap 2",
		  .named = 0,
		  .record_size = 48,
		  .capacity = 2,
		  .producers = 5,
		  .slab_size = 256,
		  .slab_count = 32,
		  .records = 30000,
		  .kills = 2 },
		{ .what = "named cap 4 across u64 wrap",
		  .named = 1,
		  .record_size = 32,
		  .capacity = 4,
		  .producers = 6,
		  .slab_size = 128,
		  .slab_count = 48,
		  .start_position = UINT64_MAX - 100,
		  .records = 30000,
		  .kills = 3 },
		{ .what = "memfd cap 64",
		  .named = 0,
		  .record_size = 24,
		  .capacity = 64,
		  .producers = 4,
		  .slab_size = 64,
		  .slab_count = 40,
		  .records = 200000,
		  .kills = 1 },
		{ .what = "named cap 2 no slabs",
		  .named = 1,
		  .record_size = 16,
		  .capacity = 2,
		  .producers = 4,
		  .records = 30000,
		  .kills = 2 },
	};
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		runs[i].seed = seed + i * 1000;
		run_stress(&runs[i]);
	}
	printf("test_proc_stress: all passed\n");
	return 0;
}
