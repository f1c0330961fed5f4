/*
 * Bad input of every kind yields the right error code and a message, never a crash,
 * hang or lost record:
 *   - every public function with invalid arguments (NULL pointers, zero/oversized
 *     sizes, bad geometry, bad names and flags, bad slab handles, call-sequence
 *     errors); records committed before the bad calls are all received afterwards;
 *   - corrupted regions (bad magic, version, each geometry field, total size,
 *     truncated and empty files) refused by open/attach with ECORRUPT;
 *   - impossible ring positions (a tail too far ahead or behind, an impossible head)
 *     fence the ring and report ECORRUPT once, other rings unaffected;
 *   - the standalone ring API with bad arguments and on garbage memory.
 */
#include <fcntl.h>
#include <stdalign.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "harness.h"
#include "layout.h"

#define RS 32

static char g_names[8][64];

static void cleanup_at_exit(void)
{
	for (int i = 0; i < 8; i++)
		if (g_names[i][0])
			rmpsc_unlink(g_names[i]);
}

static const char *new_name(int i)
{
	snprintf(g_names[i], sizeof g_names[i], "rmpsc_tbad_%d_%d", (int)getpid(), i);
	return g_names[i];
}

static void check_msg_has(const char *what, const char *word)
{
	const char *m = rmpsc_last_error();
	CHECK(m && m[0] && strcmp(m, "no error"), "%s: rmpsc_last_error() is empty", what);
	if (word)
		CHECK(strstr(m, word), "%s: message \"%s\" does not mention \"%s\"", what, m, word);
}

/* The call returns `want` and leaves a message naming `word`. */
#define BAD(expr, want, word)               \
	do {                                \
		CHECK_RC(expr, want);       \
		check_msg_has(#expr, word); \
	} while (0)

static rmpsc_channel *make(const struct rmpsc_config *c)
{
	rmpsc_channel *ch = NULL;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, c, 0));
	return ch;
}

/* --- arguments ---------------------------------------------------------------- */

static void test_create_args(void)
{
	rmpsc_channel *ch = (rmpsc_channel *)&ch;
	struct rmpsc_config ok = { .record_size = RS, .capacity = 8, .max_producers = 2 };
	BAD(rmpsc_channel_create(NULL, NULL, &ok, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_channel_create(&ch, NULL, NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_channel_create(&ch, NULL, &ok, 0x100), RMPSC_EINVAL, "flags");
	BAD(rmpsc_channel_create(&ch, NULL, &ok, ~0u), RMPSC_EINVAL, "flags");

	struct {
		struct rmpsc_config c;
		const char *word;
	} bad[] = {
		{ { .record_size = 0, .capacity = 8, .max_producers = 1 }, "record_size" },
		{ { .record_size = RMPSC_MAX_RECORD_SIZE + 1, .capacity = 8, .max_producers = 1 }, "record_size" },
		{ { .record_size = UINT32_MAX, .capacity = 8, .max_producers = 1 }, "record_size" },
		{ { .record_size = 8, .capacity = 0, .max_producers = 1 }, "capacity" },
		{ { .record_size = 8, .capacity = 1, .max_producers = 1 }, "capacity" },
		{ { .record_size = 8, .capacity = 3, .max_producers = 1 }, "capacity" },
		{ { .record_size = 8, .capacity = 12, .max_producers = 1 }, "capacity" },
		{ { .record_size = 8, .capacity = RMPSC_MAX_CAPACITY * 2, .max_producers = 1 }, "capacity" },
		{ { .record_size = 8, .capacity = 0x80000000u, .max_producers = 1 }, "capacity" },
		{ { .record_size = 8, .capacity = UINT32_MAX, .max_producers = 1 }, "capacity" },
		{ { .record_size = 8, .capacity = 8, .max_producers = 0 }, "max_producers" },
		{ { .record_size = 8, .capacity = 8, .max_producers = RMPSC_MAX_PRODUCERS + 1 }, "max_producers" },
		{ { .record_size = 8, .capacity = 8, .max_producers = 100000 }, "max_producers" },
		{ { .record_size = 8, .capacity = 8, .max_producers = 1, .slab_size = 64 }, "slab" },
		{ { .record_size = 8, .capacity = 8, .max_producers = 1, .slab_count = 4 }, "slab" },
		{ { .record_size = 8, .capacity = 8, .max_producers = 1, .slab_size = RMPSC_MAX_SLAB_SIZE + 1, .slab_count = 1 },
		  "slab_size" },
		{ { .record_size = 8,
		    .capacity = 8,
		    .max_producers = 1,
		    .slab_size = 64,
		    .slab_count = RMPSC_MAX_SLAB_COUNT + 1 },
		  "slab_count" },
		{ { .record_size = 3, .capacity = 8, .max_producers = 1, .slab_size = 64, .slab_count = 4 },
		  "record_size" },
		{ { .record_size = 1, .capacity = 8, .max_producers = 1, .slab_size = 64, .slab_count = 4 },
		  "record_size" },
		/* every field in range, the whole region over the 1 TiB limit */
		{ { .record_size = RMPSC_MAX_RECORD_SIZE,
		    .capacity = RMPSC_MAX_CAPACITY,
		    .max_producers = RMPSC_MAX_PRODUCERS },
		  "exceeds" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ch = (rmpsc_channel *)&ch;
		int rc = rmpsc_channel_create(&ch, NULL, &bad[i].c, 0);
		CHECK(rc == RMPSC_EINVAL, "bad config %zu (%s): returned %d (%s), want EINVAL", i, bad[i].word, rc,
		      rmpsc_strerror(rc));
		CHECK(ch == NULL, "bad config %zu left *out set", i);
		check_msg_has("bad config", bad[i].word);
		/* The same refused under a name, and no file is left behind. */
		rc = rmpsc_channel_create(&ch, new_name(0), &bad[i].c, 0);
		CHECK(rc == RMPSC_EINVAL, "named bad config %zu: %d", i, rc);
		char path[128];
		snprintf(path, sizeof path, "/dev/shm/%s", g_names[0]);
		CHECK(access(path, F_OK) < 0, "refused create left %s behind", path);
	}

	/* The boundaries themselves are accepted. */
	struct rmpsc_config edge[] = {
		{ .record_size = 1, .capacity = RMPSC_MIN_CAPACITY, .max_producers = 1 },
		{ .record_size = RMPSC_MAX_RECORD_SIZE, .capacity = 2, .max_producers = 2 },
		{ .record_size = 4, .capacity = 2, .max_producers = RMPSC_MAX_PRODUCERS, .slab_size = 1, .slab_count = 1 },
	};
	for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
		CHECK_OK(rmpsc_channel_create(&ch, NULL, &edge[i], 0));
		rmpsc_channel_release(ch);
	}

	const char *names[] = { "", "/", "a/b", "/a/b", "a/", "//a", ".", "..", "/.", "/.." };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		ch = (rmpsc_channel *)&ch;
		int rc = rmpsc_channel_create(&ch, names[i], &ok, 0);
		CHECK(rc == RMPSC_EINVAL && ch == NULL, "create name \"%s\": %d (%s)", names[i], rc, rmpsc_strerror(rc));
		check_msg_has("bad name", "name");
		rc = rmpsc_channel_open(&ch, names[i], 0);
		CHECK(rc == RMPSC_EINVAL && ch == NULL, "open name \"%s\": %d", names[i], rc);
		check_msg_has("bad name", "name");
		rc = rmpsc_unlink(names[i]);
		CHECK(rc == RMPSC_EINVAL, "unlink name \"%s\": %d", names[i], rc);
		check_msg_has("bad name", "name");
	}
	char longname[400];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	BAD(rmpsc_channel_create(&ch, longname, &ok, 0), RMPSC_EINVAL, "name");
	BAD(rmpsc_channel_open(&ch, longname, 0), RMPSC_EINVAL, "name");
	BAD(rmpsc_unlink(longname), RMPSC_EINVAL, "name");
}

static void test_open_attach_args(void)
{
	rmpsc_channel *ch = (rmpsc_channel *)&ch;
	BAD(rmpsc_channel_open(NULL, "x", 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_channel_open(&ch, NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_channel_open(&ch, new_name(1), 0x80), RMPSC_EINVAL, "flags");
	errno = 0;
	BAD(rmpsc_channel_open(&ch, new_name(1), 0), RMPSC_ESYS, "shm_open");
	CHECK(errno == ENOENT, "open of a missing name: errno %d", errno);
	errno = 0;
	BAD(rmpsc_unlink(new_name(1)), RMPSC_ESYS, NULL);
	CHECK(errno == ENOENT, "unlink of a missing name: errno %d", errno);
	BAD(rmpsc_unlink(NULL), RMPSC_EINVAL, NULL);
	g_names[1][0] = 0;

	BAD(rmpsc_channel_attach_fd(NULL, 0, 0), RMPSC_EINVAL, NULL);
	ch = (rmpsc_channel *)&ch;
	BAD(rmpsc_channel_attach_fd(&ch, -1, 0), RMPSC_EINVAL, "fd");
	CHECK(ch == NULL, "attach left *out set");
	BAD(rmpsc_channel_attach_fd(&ch, 0, 0x2), RMPSC_EINVAL, "flags");
	int closed_fd = dup(0);
	close(closed_fd);
	errno = 0;
	BAD(rmpsc_channel_attach_fd(&ch, closed_fd, 0), RMPSC_ESYS, NULL);
	CHECK(errno == EBADF, "attach of a closed fd: errno %d", errno);

	/* Files that are not channels. */
	int devnull = open("/dev/null", O_RDWR);
	CHECK(devnull >= 0, "open /dev/null");
	BAD(rmpsc_channel_attach_fd(&ch, devnull, 0), RMPSC_ECORRUPT, NULL);
	close(devnull);
	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	int rc = rmpsc_channel_attach_fd(&ch, pfd[0], 0);
	CHECK(rc == RMPSC_ECORRUPT || rc == RMPSC_ESYS, "attach of a pipe: %d", rc);
	close(pfd[0]);
	close(pfd[1]);
	char tmpl[] = "/tmp/rmpsc_tbad_XXXXXX";
	int tfd = mkstemp(tmpl);
	CHECK(tfd >= 0, "mkstemp");
	unlink(tmpl);
	CHECK(ftruncate(tfd, 1 << 16) == 0, "ftruncate");
	BAD(rmpsc_channel_attach_fd(&ch, tfd, 0), RMPSC_ECORRUPT, "not initialized"); /* zeros: magic 0 */
	unsigned char junk[4096];
	uint64_t s = 42;
	for (size_t i = 0; i < sizeof junk; i += 8) {
		uint64_t v = rng_next(&s);
		memcpy(junk + i, &v, 8);
	}
	CHECK(pwrite(tfd, junk, sizeof junk, 0) == (ssize_t)sizeof junk, "pwrite");
	BAD(rmpsc_channel_attach_fd(&ch, tfd, 0), RMPSC_ECORRUPT, "magic");
	CHECK(fcntl(tfd, F_GETFD) >= 0, "failed attach closed the caller's fd");
	close(tfd);
}

/* Handles are NULL or otherwise unusable. */
static void test_null_handles(void)
{
	struct rmpsc_stats st;
	struct rmpsc_config cfg;
	unsigned char buf[RS];
	const void *ptr;
	void *w;
	uint32_t h;
	rmpsc_channel_release(NULL);
	rmpsc_producer_close(NULL);
	rmpsc_consumer_release(NULL);
	rmpsc_channel_config(NULL, &cfg);
	CHECK(rmpsc_channel_fd(NULL) == -1, "fd of NULL");
	CHECK(rmpsc_channel_name(NULL) == NULL, "name of NULL");
	CHECK(rmpsc_channel_is_closed(NULL) == 0, "is_closed of NULL");
	CHECK(rmpsc_pending(NULL) == 0, "pending of NULL");
	CHECK(rmpsc_producer_slot(NULL) == UINT32_MAX, "slot of NULL");
	CHECK(rmpsc_slab_free_count(NULL) == 0, "slab_free_count of NULL");
	CHECK(rmpsc_slab_ptr(NULL, 0) == NULL, "slab_ptr of NULL");
	BAD(rmpsc_channel_close(NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_register(NULL, (rmpsc_producer **)&w), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_reserve(NULL, 1, 0, &w), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_commit(NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_send(NULL, buf, 1, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_send_many(NULL, buf, 1, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_send_slab(NULL, 0, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_consumer_claim(NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_recv(NULL, buf, 1, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_recv(NULL, buf, 1, -1), RMPSC_EINVAL, NULL);
	BAD(rmpsc_read(NULL, 1, 0, &ptr, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_advance(NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_wait_readable(NULL, -1), RMPSC_EINVAL, NULL);
	BAD(rmpsc_stats(NULL, &st, NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_reclaim_dead(NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_slab_alloc(NULL, 0, &h), RMPSC_EINVAL, NULL);
	BAD(rmpsc_slab_free(NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_slab_set_len(NULL, 0, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_slab_accept(NULL, 0), RMPSC_EINVAL, NULL);
	CHECK(rmpsc_slab_len(NULL, 0) == RMPSC_EINVAL, "slab_len of NULL");

	/* Every code has a distinct name; unknown codes are named too. */
	for (int e = RMPSC_EINTR; e <= 0; e++) {
		CHECK(rmpsc_strerror(e) && rmpsc_strerror(e)[0], "strerror(%d)", e);
		for (int f = e + 1; f <= 0; f++)
			CHECK(strcmp(rmpsc_strerror(e), rmpsc_strerror(f)), "codes %d and %d share a name", e, f);
	}
	CHECK(rmpsc_strerror(-1000) && rmpsc_strerror(12345) && rmpsc_strerror(INT32_MIN), "strerror of unknown codes");
}

static int never_cb(void *ctx, const void *r, size_t n, uint32_t slot)
{
	(void)ctx, (void)r, (void)n, (void)slot;
	FAIL("callback called on a bad call");
}

/*
 * Bad calls on a live channel with records committed: every one fails with the
 * right code, and nothing committed is lost.
 */
/* A 0-byte send with NULL data is a record of zeros. memcpy(dst, NULL, 0) is
 * undefined behaviour, so no path may pass NULL on (the ASan+UBSan build checks). */
static void test_send_nothing(void)
{
	struct rmpsc_config c = { .record_size = RS, .capacity = 4, .max_producers = 1 };
	rmpsc_channel *ch = make(&c);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	unsigned char r[RS];
	for (int i = 0; i < 2; i++) {
		CHECK_OK(rmpsc_producer_send(p, NULL, 0, 0));
		memset(r, 0xAA, RS);
		CHECK_RC(rmpsc_recv(ch, r, 1, 0), 1);
		for (int j = 0; j < RS; j++)
			CHECK(r[j] == 0, "byte %d of a 0-byte record is 0x%02x", j, r[j]);
	}
	CHECK_RC(rmpsc_producer_send_many(p, NULL, 0, 0), 0);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void test_bad_calls_lose_nothing(void)
{
	struct rmpsc_config c = { .record_size = RS, .capacity = 8, .max_producers = 2, .slab_size = 128, .slab_count = 4 };
	rmpsc_channel *ch = make(&c);
	rmpsc_producer *p = NULL, *q = NULL;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	BAD(rmpsc_producer_register(ch, NULL), RMPSC_EINVAL, NULL);
	unsigned char r[2 * RS], buf[8 * RS];
	for (uint64_t i = 0; i < 3; i++) {
		rec_fill(r, RS, 1, i);
		CHECK_OK(rmpsc_producer_send(p, r, RS, 0));
	}
	const void *ptr;
	void *w;
	uint32_t h;

	/* producer calls */
	BAD(rmpsc_producer_send(p, r, RS + 1, 0), RMPSC_EINVAL, "too long");
	BAD(rmpsc_producer_send(p, r, SIZE_MAX, 0), RMPSC_EINVAL, "too long");
	BAD(rmpsc_producer_send(p, NULL, 4, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_send_many(p, NULL, 2, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_reserve(p, 0, 0, &w), RMPSC_EINVAL, "want");
	BAD(rmpsc_producer_reserve(p, 1, 0, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_producer_commit(p, 0), RMPSC_EINVAL, "reservation");
	BAD(rmpsc_producer_commit(p, 1), RMPSC_EINVAL, "reservation");
	CHECK_RC(rmpsc_producer_reserve(p, 2, 0, &w), 2);
	memset(w, 0xEE, 2 * RS);
	BAD(rmpsc_producer_reserve(p, 1, 0, &w), RMPSC_EINVAL, "reservation");
	BAD(rmpsc_producer_send(p, r, RS, 0), RMPSC_EINVAL, "reservation");
	BAD(rmpsc_producer_send_many(p, r, 1, 0), RMPSC_EINVAL, "reservation");
	BAD(rmpsc_producer_commit(p, 3), RMPSC_EINVAL, "exceeds");
	BAD(rmpsc_producer_commit(p, SIZE_MAX), RMPSC_EINVAL, "exceeds");
	CHECK(rmpsc_pending(ch) == 3, "a bad commit published something");
	CHECK_OK(rmpsc_producer_commit(p, 0)); /* the reservation survived the bad commits; abort it */
	CHECK(rmpsc_pending(ch) == 3, "abort published something");

	/* slab calls */
	BAD(rmpsc_slab_alloc(ch, 0, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_slab_free(ch, 4), RMPSC_EINVAL, "handle");
	BAD(rmpsc_slab_free(ch, RMPSC_INVALID_HANDLE), RMPSC_EINVAL, "handle");
	BAD(rmpsc_slab_free(ch, 0), RMPSC_EINVAL, "free"); /* never allocated */
	BAD(rmpsc_slab_accept(ch, 0), RMPSC_EINVAL, NULL); /* not received */
	BAD(rmpsc_slab_accept(ch, 4), RMPSC_EINVAL, "handle");
	CHECK(rmpsc_slab_ptr(ch, 4) == NULL && rmpsc_slab_ptr(ch, RMPSC_INVALID_HANDLE) == NULL,
	      "slab_ptr out of range");
	BAD(rmpsc_slab_set_len(ch, 4, 0), RMPSC_EINVAL, "handle");
	CHECK(rmpsc_slab_len(ch, 4) == RMPSC_EINVAL, "slab_len out of range");
	BAD(rmpsc_producer_send_slab(p, 4, 0), RMPSC_EINVAL, "handle");
	BAD(rmpsc_producer_send_slab(p, RMPSC_INVALID_HANDLE, 0), RMPSC_EINVAL, "handle");
	BAD(rmpsc_producer_send_slab(p, 1, 0), RMPSC_EINVAL, "not held"); /* free slab */
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h));
	BAD(rmpsc_slab_set_len(ch, h, 129), RMPSC_EINVAL, "slab_size");
	BAD(rmpsc_slab_set_len(ch, h, UINT32_MAX), RMPSC_EINVAL, "slab_size");
	CHECK_OK(rmpsc_slab_set_len(ch, h, 128));
	CHECK_OK(rmpsc_slab_free(ch, h));
	BAD(rmpsc_slab_free(ch, h), RMPSC_EINVAL, "already free");        /* double free */
	BAD(rmpsc_producer_send_slab(p, h, 0), RMPSC_EINVAL, "not held"); /* freed slab */
	CHECK(rmpsc_slab_free_count(ch) == 4, "slab count after bad calls %u", rmpsc_slab_free_count(ch));

	/* a channel without a pool */
	struct rmpsc_config np = { .record_size = 2, .capacity = 2, .max_producers = 1 };
	rmpsc_channel *nopool = make(&np);
	BAD(rmpsc_slab_alloc(nopool, 0, &h), RMPSC_EINVAL, "pool");
	BAD(rmpsc_slab_free(nopool, 0), RMPSC_EINVAL, "pool");
	BAD(rmpsc_slab_set_len(nopool, 0, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_slab_accept(nopool, 0), RMPSC_EINVAL, NULL);
	CHECK(rmpsc_slab_len(nopool, 0) == RMPSC_EINVAL && rmpsc_slab_ptr(nopool, 0) == NULL, "slab on no pool");
	CHECK(rmpsc_slab_free_count(nopool) == 0, "free count of no pool");
	CHECK_OK(rmpsc_producer_register(nopool, &q));
	BAD(rmpsc_producer_send_slab(q, 0, 0), RMPSC_EINVAL, NULL);
	rmpsc_producer_close(q);
	rmpsc_channel_release(nopool);

	/* consumer calls */
	BAD(rmpsc_recv(ch, NULL, 1, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_recv(ch, buf, 0, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_consume(ch, 1, 0, NULL, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_consume(ch, 0, 0, never_cb, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_read(ch, 1, 0, NULL, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_read(ch, 0, 0, &ptr, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_advance(ch, 1), RMPSC_EINVAL, "exceeds"); /* nothing read */
	CHECK_RC(rmpsc_read(ch, 2, 0, &ptr, NULL), 2);
	BAD(rmpsc_advance(ch, 3), RMPSC_EINVAL, "exceeds");
	BAD(rmpsc_advance(ch, SIZE_MAX), RMPSC_EINVAL, "exceeds");
	CHECK_OK(rmpsc_advance(ch, 0)); /* give the span back unread */
	BAD(rmpsc_advance(ch, 1), RMPSC_EINVAL, "exceeds");
	struct rmpsc_stats st;
	BAD(rmpsc_stats(ch, NULL, NULL, 0), RMPSC_EINVAL, NULL);
	CHECK(rmpsc_stats(ch, &st, NULL, 0) == 0 && st.pending == 3 && st.committed == 3 && st.consumed == 0,
	      "stats after bad calls");
	CHECK_RC(rmpsc_reclaim_dead(ch), 0);

	/* Nothing committed was lost, nothing aborted appears. */
	CHECK_RC(rmpsc_recv(ch, buf, 8, 0), 3);
	for (uint64_t i = 0; i < 3; i++) {
		uint32_t id;
		uint64_t seq;
		CHECK(rec_check(buf + i * RS, RS, &id, &seq) == 0 && id == 1 && seq == i, "record %llu after bad calls",
		      (unsigned long long)i);
	}
	CHECK_RC(rmpsc_recv(ch, buf, 8, 0), RMPSC_EEMPTY);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* --- corrupted regions ------------------------------------------------------ */

static const struct rmpsc_config corrupt_cfg = {
	.record_size = RS, .capacity = 16, .max_producers = 3, .slab_size = 256, .slab_count = 8
};

/* Create a named channel with a record in it, release it, map the file raw. */
static struct region_header *raw_channel(const char *name, int *fd_out, size_t *size_out, const struct rmpsc_config *c)
{
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, name, c, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	unsigned char r[RS];
	rec_fill(r, RS, 0, 0);
	CHECK_OK(rmpsc_producer_send(p, r, RS, 0));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	char path[128];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	struct stat st;
	CHECK(fstat(fd, &st) == 0, "fstat");
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap");
	*fd_out = fd;
	*size_out = (size_t)st.st_size;
	return m;
}

/* open by name and attach by fd both refuse the region with ECORRUPT. */
static void expect_corrupt(const char *name, int fd, const char *what, const char *word)
{
	rmpsc_channel *ch = (rmpsc_channel *)&ch;
	int rc = rmpsc_channel_open(&ch, name, 0);
	CHECK(rc == RMPSC_ECORRUPT, "%s: open returned %d (%s), want ECORRUPT; last error: %s", what, rc,
	      rmpsc_strerror(rc), rmpsc_last_error());
	CHECK(ch == NULL, "%s: failed open left *out set", what);
	check_msg_has(what, word);
	rc = rmpsc_channel_attach_fd(&ch, fd, 0);
	CHECK(rc == RMPSC_ECORRUPT, "%s: attach_fd returned %d (%s), want ECORRUPT", what, rc, rmpsc_strerror(rc));
	check_msg_has(what, word);
}

static void expect_opens(const char *name, const char *what)
{
	rmpsc_channel *ch;
	int rc = rmpsc_channel_open(&ch, name, 0);
	CHECK(rc == RMPSC_OK, "%s: restored region does not open: %d (%s)", what, rc, rmpsc_last_error());
	CHECK(rmpsc_pending(ch) == 1, "%s: restored region lost its record", what);
	rmpsc_channel_release(ch);
}

/* The region size a header's geometry implies (0 if invalid). */
static uint64_t geometry_total(const struct region_header *h)
{
	struct rmpsc_config c = { .record_size = h->record_size,
				  .capacity = h->ring_bits < 32 ? 1u << h->ring_bits : 0,
				  .max_producers = h->max_producers,
				  .slab_size = h->slab_size,
				  .slab_count = h->slab_count };
	struct layout L;
	return rmpsc__layout_compute(&L, &c, "test") ? 0 : L.total_size;
}

#define FIELD_CASE(field, value, word)                                                              \
	do {                                                                                        \
		__typeof__(h->field) saved_ = h->field;                                             \
		h->field = (value);                                                                 \
		if (!strcmp(word, "total_size"))                                                    \
			CHECK(geometry_total(h) != h->total_size,                                   \
			      "test case " #field " = " #value " does not change the region size"); \
		expect_corrupt(name, fd, #field " = " #value, word);                                \
		h->field = saved_;                                                                  \
		expect_opens(name, #field " = " #value);                                            \
	} while (0)

static void test_corrupt_header(void)
{
	const char *name = new_name(2);
	int fd;
	size_t size;
	struct region_header *h = raw_channel(name, &fd, &size, &corrupt_cfg);
	expect_opens(name, "pristine");
	CHECK(h->magic == RMPSC_MAGIC && h->total_size == size, "raw view of the header is wrong");

	FIELD_CASE(magic, 0, "not initialized");
	FIELD_CASE(magic, 0x1234567812345678ull, "magic");
	FIELD_CASE(magic, RMPSC_MAGIC ^ 1, "magic");
	FIELD_CASE(version, 0, "version");
	FIELD_CASE(version, RMPSC_LAYOUT_VER + 1, "version");
	FIELD_CASE(version, UINT32_MAX, "version");
	FIELD_CASE(fence_mode, 0, "fence_mode");
	FIELD_CASE(fence_mode, 3, "fence_mode");
	FIELD_CASE(attach_slots, 0, "attach_slots");
	FIELD_CASE(attach_slots, ATTACH_SLOTS + 1, "attach_slots");
	FIELD_CASE(header_size, 0, "header_size");
	FIELD_CASE(header_size, 8192, "header_size");
	FIELD_CASE(record_size, 0, "record_size");
	FIELD_CASE(record_size, RMPSC_MAX_RECORD_SIZE + 1, "record_size");
	FIELD_CASE(record_size, UINT32_MAX, "record_size");
	FIELD_CASE(record_size, 3, "record_size");     /* too small for slab handles */
	FIELD_CASE(record_size, RS * 4, "total_size"); /* valid alone, inconsistent with the size */
	FIELD_CASE(ring_bits, 40, "ring_bits");
	FIELD_CASE(ring_bits, 32, "ring_bits");
	FIELD_CASE(ring_bits, UINT32_MAX, "ring_bits");
	FIELD_CASE(ring_bits, 0, "capacity");
	FIELD_CASE(ring_bits, 25, "capacity");
	FIELD_CASE(ring_bits, 8, "total_size");
	FIELD_CASE(max_producers, 0, "max_producers");
	FIELD_CASE(max_producers, 100000, "max_producers");
	FIELD_CASE(max_producers, UINT32_MAX, "max_producers");
	FIELD_CASE(max_producers, 10, "total_size");
	FIELD_CASE(max_producers, 1, "total_size");
	FIELD_CASE(slab_size, 0, "slab");  /* slab_count without slab_size */
	FIELD_CASE(slab_count, 0, "slab"); /* slab_size without slab_count */
	FIELD_CASE(slab_size, RMPSC_MAX_SLAB_SIZE + 1, "slab_size");
	FIELD_CASE(slab_count, RMPSC_MAX_SLAB_COUNT + 1, "slab_count");
	FIELD_CASE(slab_count, UINT32_MAX, "slab_count");
	FIELD_CASE(slab_count, 40, "total_size");
	FIELD_CASE(slab_size, 4096, "total_size");
	FIELD_CASE(total_size, 0, "total_size");
	FIELD_CASE(total_size, size + 4096, "total_size");
	FIELD_CASE(total_size, size - 4096, "total_size");
	FIELD_CASE(total_size, UINT64_MAX, "total_size");
	/* A header claiming a region larger than the file, consistently: the file check. */
	{
		uint32_t saved_count = h->slab_count;
		uint64_t saved_total = h->total_size;
		struct rmpsc_config big = corrupt_cfg;
		big.slab_count = 1000;
		struct rmpsc_channel *tmp;
		CHECK_OK(rmpsc_channel_create(&tmp, NULL, &big, 0));
		struct stat st;
		CHECK(fstat(rmpsc_channel_fd(tmp), &st) == 0, "fstat");
		rmpsc_channel_release(tmp);
		h->slab_count = 1000;
		h->total_size = (uint64_t)st.st_size;
		expect_corrupt(name, fd, "header larger than the file", "truncated");
		h->slab_count = saved_count;
		h->total_size = saved_total;
		expect_opens(name, "big header");
	}

	/* Truncated files. */
	munmap(h, size);
	CHECK(ftruncate(fd, (off_t)(size - 4096)) == 0, "ftruncate");
	expect_corrupt(name, fd, "file truncated by a page", "truncated");
	CHECK(ftruncate(fd, 4096) == 0, "ftruncate");
	expect_corrupt(name, fd, "file of only the header page", "truncated");
	CHECK(ftruncate(fd, 100) == 0, "ftruncate");
	expect_corrupt(name, fd, "file of 100 bytes", NULL);
	CHECK(ftruncate(fd, 0) == 0, "ftruncate");
	expect_corrupt(name, fd, "zero-length file", NULL);
	close(fd);
	CHECK_OK(rmpsc_unlink(name));
	g_names[2][0] = 0;

	/* A name that exists but was never formatted (creator died before the magic). */
	name = new_name(3);
	char path[128];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0, "create %s", path);
	CHECK(ftruncate(fd, 1 << 20) == 0, "ftruncate");
	expect_corrupt(name, fd, "unformatted file", "not initialized");
	close(fd);
	CHECK_OK(rmpsc_unlink(name));
	g_names[3][0] = 0;
}

/* --- impossible positions in a live channel -------------------------------- */

static struct ring_ctrl *ctrl_of(struct region_header *h, uint32_t slot)
{
	struct rmpsc_config c = { .record_size = h->record_size,
				  .capacity = 1u << h->ring_bits,
				  .max_producers = h->max_producers,
				  .slab_size = h->slab_size,
				  .slab_count = h->slab_count,
				  .start_position = h->start_position };
	struct layout L;
	CHECK_OK(rmpsc__layout_compute(&L, &c, "test"));
	return (struct ring_ctrl *)((unsigned char *)h + L.ctrl_off) + slot;
}

/*
 * Three producers; the middle one's tail is made impossible. The consumer reports
 * ECORRUPT exactly once, fences that ring, still delivers the other two rings'
 * records, and never reads the fenced ring.
 */
static void impossible_tail_case(int64_t tail_delta, const char *what, size_t batch)
{
	struct rmpsc_config c = { .record_size = RS, .capacity = 16, .max_producers = 3 };
	const char *name = new_name(4);
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, name, &c, 0));
	rmpsc_producer *p[3];
	for (uint32_t i = 0; i < 3; i++) {
		CHECK_OK(rmpsc_producer_register(ch, &p[i]));
		CHECK(rmpsc_producer_slot(p[i]) == i, "slot order");
	}
	unsigned char r[RS];
	for (uint32_t i = 0; i < 3; i++)
		for (uint64_t s = 0; s < 3; s++) {
			rec_fill(r, RS, i, s);
			CHECK_OK(rmpsc_producer_send(p[i], r, RS, 0));
		}
	CHECK_OK(rmpsc_consumer_claim(ch));

	/* Corrupt ring 1 through a second, raw mapping of the same file. */
	char path[128];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0, "open raw");
	struct stat st;
	CHECK(fstat(fd, &st) == 0, "fstat");
	struct region_header *h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(h != MAP_FAILED, "mmap");
	struct ring_ctrl *c1 = ctrl_of(h, 1);
	CHECK(c1->tail - c1->head == 3, "raw view of ring 1 is wrong");
	uint64_t bad_tail = c1->head + (uint64_t)tail_delta;
	__atomic_store_n(&c1->tail, bad_tail, __ATOMIC_RELEASE);

	uint64_t next[3] = { 0, 0, 0 };
	int corrupt = 0, rounds = 0;
	unsigned char *buf = malloc(batch * RS); /* exactly batch records: ASan sees any overrun */
	CHECK(buf, "malloc");
	for (;;) {
		CHECK(++rounds < 100, "%s: consumer never ran dry", what);
		int n = rmpsc_recv(ch, buf, batch, 0);
		if (n == RMPSC_EEMPTY)
			break;
		if (n == RMPSC_ECORRUPT) {
			corrupt++;
			check_msg_has(what, "fenced");
			continue;
		}
		CHECK(n > 0, "%s: recv returned %d (%s)", what, n, rmpsc_last_error());
		for (int i = 0; i < n; i++) {
			uint32_t id;
			uint64_t seq;
			CHECK(rec_check(buf + (size_t)i * RS, RS, &id, &seq) == 0, "%s: corrupt record delivered", what);
			CHECK(id != 1, "%s: a record of the fenced ring was delivered", what);
			CHECK(id < 3 && seq == next[id], "%s: order", what);
			next[id]++;
		}
	}
	free(buf);
	CHECK(corrupt == 1, "%s (batch %zu): recv reported ECORRUPT %d times, want exactly once", what, batch, corrupt);
	CHECK(next[0] == 3 && next[2] == 3, "%s: other rings' records lost (%llu, %llu)", what,
	      (unsigned long long)next[0], (unsigned long long)next[2]);
	struct rmpsc_stats s;
	struct rmpsc_ring_stats rings[3];
	int n = rmpsc_stats(ch, &s, rings, 3);
	CHECK(s.fenced_rings == 1, "%s: fenced_rings %u", what, s.fenced_rings);
	CHECK(n == 3 && rings[1].slot == 1 && rings[1].state == RMPSC_SLOT_FENCED, "%s: ring 1 state %u", what,
	      rings[1].state);
	CHECK(rmpsc_pending(ch) == 0, "%s: pending counts the fenced ring", what);
	CHECK(c1->head + (uint64_t)tail_delta == bad_tail, "%s: the consumer moved the fenced ring's head", what);

	/* The fenced ring's producer is refused; the others go on. */
	rec_fill(r, RS, 1, 3);
	int rc = rmpsc_producer_send(p[1], r, RS, 0);
	CHECK(rc == RMPSC_ECORRUPT, "%s: send on the fenced ring gave %d (%s)", what, rc, rmpsc_strerror(rc));
	rec_fill(r, RS, 0, 3);
	CHECK_OK(rmpsc_producer_send(p[0], r, RS, 0));
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), 1);
	uint32_t id;
	uint64_t seq;
	CHECK(rec_check(r, RS, &id, &seq) == 0 && id == 0 && seq == 3, "%s: record after fencing", what);
	/* Still fenced, never reported again, never hangs a blocking consumer. */
	CHECK_RC(rmpsc_recv(ch, r, 1, 20000000), RMPSC_ETIMEDOUT);
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.fenced_rings == 1, "%s: fenced_rings %u after more sweeps", what, s.fenced_rings);
	/* Close: closed and drained in spite of the fenced ring. */
	CHECK_OK(rmpsc_channel_close(ch));
	CHECK_RC(rmpsc_recv(ch, r, 1, -1), RMPSC_ECLOSED);

	for (int i = 0; i < 3; i++)
		rmpsc_producer_close(p[i]);
	munmap(h, (size_t)st.st_size);
	close(fd);
	rmpsc_channel_release(ch);
	CHECK_OK(rmpsc_unlink(name));
	g_names[4][0] = 0;
}

static void test_impossible_tail(void)
{
	size_t batches[] = { 1, 2, 16 };
	for (size_t i = 0; i < 3; i++) {
		impossible_tail_case(16 + 5, "tail = head + capacity + 5", batches[i]);
		impossible_tail_case(-1, "tail = head - 1", batches[i]);
		impossible_tail_case(INT64_MIN, "tail = head + 2^63", batches[i]);
	}
}

/* The producer sees an impossible head: reserve/send fail with ECORRUPT, never hang. */
static void test_impossible_head(void)
{
	struct rmpsc_config c = { .record_size = RS, .capacity = 4, .max_producers = 2 };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	rmpsc_producer *p, *q;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(rmpsc_producer_register(ch, &q));
	unsigned char r[RS];
	for (uint64_t s = 0; s < 4; s++) { /* full: the next reserve reloads head */
		rec_fill(r, RS, 0, s);
		CHECK_OK(rmpsc_producer_send(p, r, RS, 0));
	}
	rec_fill(r, RS, 1, 0);
	CHECK_OK(rmpsc_producer_send(q, r, RS, 0));
	struct stat st;
	CHECK(fstat(rmpsc_channel_fd(ch), &st) == 0, "fstat");
	struct region_header *h =
		mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, rmpsc_channel_fd(ch), 0);
	CHECK(h != MAP_FAILED, "mmap");
	struct ring_ctrl *c0 = ctrl_of(h, rmpsc_producer_slot(p));
	uint64_t heads[] = { c0->tail + 7, c0->tail - 4 - 3, c0->tail + (1ull << 63) };
	for (int i = 0; i < 3; i++) {
		__atomic_store_n(&c0->head, heads[i], __ATOMIC_RELEASE);
		void *w;
		CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &w), RMPSC_ECORRUPT);
		check_msg_has("impossible head", "head");
		int64_t t0 = now_ns();
		CHECK_RC(rmpsc_producer_reserve(p, 1, 5000000000ll, &w), RMPSC_ECORRUPT);
		CHECK_RC(rmpsc_producer_send(p, r, RS, -1), RMPSC_ECORRUPT);
		CHECK_RC(rmpsc_producer_send_many(p, r, 1, -1), RMPSC_ECORRUPT);
		CHECK(now_ns() - t0 < 1000000000ll, "ECORRUPT took long: it waited");
	}
	/* The consumer fences that ring and still gets the other one. */
	int corrupt = 0, got = 0;
	for (int i = 0; i < 10; i++) {
		int n = rmpsc_recv(ch, r, 1, 0);
		if (n == RMPSC_EEMPTY)
			break;
		if (n == RMPSC_ECORRUPT) {
			corrupt++;
			continue;
		}
		CHECK_RC(n, 1);
		uint32_t id;
		uint64_t seq;
		CHECK(rec_check(r, RS, &id, &seq) == 0 && id == 1 && seq == 0, "record of the sane ring");
		got++;
	}
	CHECK(corrupt == 1 && got == 1, "consumer: %d ECORRUPT, %d records", corrupt, got);
	struct rmpsc_stats s;
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.fenced_rings == 1, "fenced_rings %u", s.fenced_rings);
	munmap(h, (size_t)st.st_size);
	rmpsc_producer_close(p);
	rmpsc_producer_close(q);
	rmpsc_channel_release(ch);
}

/* Hostile slab metadata: lengths and owners out of range never escape. */
static void test_corrupt_slab_meta(void)
{
	struct rmpsc_config c = { .record_size = RS, .capacity = 4, .max_producers = 2, .slab_size = 100, .slab_count = 4 };
	rmpsc_channel *ch = make(&c);
	struct stat st;
	CHECK(fstat(rmpsc_channel_fd(ch), &st) == 0, "fstat");
	unsigned char *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, rmpsc_channel_fd(ch), 0);
	CHECK(base != MAP_FAILED, "mmap");
	uint32_t hd;
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &hd));
	CHECK_OK(rmpsc_slab_set_len(ch, hd, 50));
	struct layout L;
	CHECK_OK(rmpsc__layout_compute(&L, &c, "test"));
	struct slab_meta *m = (struct slab_meta *)(base + L.slab_meta_off) + hd;
	CHECK(m->len == 50 && m->owner != 0, "slab meta of handle %u not where the layout says", hd);
	m->len = 1000000;
	CHECK(rmpsc_slab_len(ch, hd) == RMPSC_ECORRUPT, "slab_len with a stored len > slab_size: %lld",
	      (long long)rmpsc_slab_len(ch, hd));
	m->len = 0;
	/* A TRANSIT owner word naming a slot beyond max_producers (slot field 1000):
	 * reclaim, free and accept must not index a ring with it. */
	uint64_t saved = m->owner;
	const uint64_t bad_transit = 2 | ((uint64_t)1000 << 3);
	m->owner = bad_transit;
	CHECK(rmpsc_reclaim_dead(ch) >= 0, "reclaim");
	/* A dead consumer's claim is taken over: the takeover scan meets the bad slot too. */
	struct member *dead = (struct member *)(base + L.members_off);
	dead->owner = 1 | (5ull << 3) | (12345ull << 14); /* ACTIVE, an attachment that is not held */
	dead->group = 0;
	struct group *dflt = (struct group *)(base + L.groups_off);
	dflt->mode = (dflt->mode & ~((1ull << 34) - 1)) | (1ull << 16) | 1; /* SOLO(0), one member */
	CHECK_OK(rmpsc_consumer_claim(ch));
	CHECK(m->owner == bad_transit, "a slab naming a bad slot was touched by the takeover");
	rmpsc_slab_accept(ch, hd); /* must not crash; either answer is acceptable for garbage */
	m->owner = bad_transit;
	rmpsc_slab_free(ch, hd); /* likewise */
	m->owner = saved;
	CHECK_OK(rmpsc_slab_free(ch, hd));
	CHECK(rmpsc_slab_free_count(ch) == 4, "free count");
	munmap(base, (size_t)st.st_size);
	rmpsc_channel_release(ch);
}

/* --- the standalone ring API --------------------------------------------------- */

static alignas(128) unsigned char ring_mem[1 << 16];

static int ring_cb(void *ctx, const void *r, size_t n, uint32_t slot)
{
	(void)r;
	(void)slot;
	*(size_t *)ctx += n;
	return 0;
}

static void test_ring_api(void)
{
	rmpsc_ring ring, view;
	const void *cp;
	void *w;
	unsigned char buf[64 * 8];
	CHECK(rmpsc_ring_footprint(0, 8) == 0 && rmpsc_ring_footprint(8, 0) == 0 && rmpsc_ring_footprint(8, 1) == 0 &&
		      rmpsc_ring_footprint(8, 3) == 0 && rmpsc_ring_footprint(RMPSC_MAX_RECORD_SIZE + 1, 2) == 0 &&
		      rmpsc_ring_footprint(8, RMPSC_MAX_CAPACITY * 2) == 0,
	      "footprint of bad geometry must be 0");
	size_t fp = rmpsc_ring_footprint(8, 8);
	CHECK(fp >= 64 + sizeof(struct ring_ctrl) && fp <= sizeof ring_mem, "footprint %zu", fp);

	BAD(rmpsc_ring_init(NULL, ring_mem, sizeof ring_mem, 8, 8, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_init(&ring, NULL, sizeof ring_mem, 8, 8, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_init(&ring, ring_mem, sizeof ring_mem, 0, 8, 0), RMPSC_EINVAL, "record_size");
	BAD(rmpsc_ring_init(&ring, ring_mem, sizeof ring_mem, 8, 6, 0), RMPSC_EINVAL, "capacity");
	BAD(rmpsc_ring_init(&ring, ring_mem, sizeof ring_mem, 8, 1, 0), RMPSC_EINVAL, "capacity");
	BAD(rmpsc_ring_init(&ring, ring_mem + 8, sizeof ring_mem - 8, 8, 8, 0), RMPSC_EINVAL, "aligned");
	BAD(rmpsc_ring_init(&ring, ring_mem, fp - 1, 8, 8, 0), RMPSC_EINVAL, "footprint");
	BAD(rmpsc_ring_init(&ring, ring_mem, 0, 8, 8, 0), RMPSC_EINVAL, "footprint");

	CHECK_OK(rmpsc_ring_init(&ring, ring_mem, fp, 8, 8, UINT64_MAX - 2));
	CHECK(rmpsc_ring_capacity(&ring) == 8 && rmpsc_ring_capacity(NULL) == 0, "capacity");
	CHECK(rmpsc_ring_pending(NULL) == 0, "pending NULL");

	BAD(rmpsc_ring_reserve(NULL, 1, &w), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_reserve(&ring, 0, &w), RMPSC_EINVAL, "want");
	BAD(rmpsc_ring_reserve(&ring, 1, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_commit(NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_commit(&ring, 1), RMPSC_EINVAL, NULL); /* nothing open */
	BAD(rmpsc_ring_commit(&ring, 0), RMPSC_EINVAL, NULL); /* nothing open: documented as EINVAL */
	BAD(rmpsc_ring_send(NULL, buf, 1), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_send(&ring, NULL, 1), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_readable(NULL, 1, &cp), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_readable(&ring, 0, &cp), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_readable(&ring, 1, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_advance(NULL, 0), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_advance(&ring, 1), RMPSC_EINVAL, "exceeds"); /* nothing readable */
	BAD(rmpsc_ring_recv(NULL, buf, 1), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_recv(&ring, NULL, 1), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_consume(NULL, 1, ring_cb, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_consume(&ring, 1, NULL, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_consume(&ring, 0, ring_cb, NULL), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_recv(&ring, buf, 0), RMPSC_EINVAL, NULL);
	CHECK_RC(rmpsc_ring_recv(&ring, buf, 1), RMPSC_EEMPTY);

	/* Call-sequence errors with records in flight lose nothing. */
	for (uint64_t i = 0; i < 3; i++)
		CHECK_RC(rmpsc_ring_send(&ring, &i, 1), 1);
	CHECK_RC(rmpsc_ring_reserve(&ring, 2, &w), 2);
	memset(w, 0xEE, 16);
	BAD(rmpsc_ring_reserve(&ring, 1, &w), RMPSC_EINVAL, "reservation");
	BAD(rmpsc_ring_send(&ring, buf, 1), RMPSC_EINVAL, "reservation");
	BAD(rmpsc_ring_commit(&ring, 3), RMPSC_EINVAL, "exceeds");
	CHECK_OK(rmpsc_ring_commit(&ring, 0)); /* abort */
	CHECK(rmpsc_ring_pending(&ring) == 3, "pending %llu", (unsigned long long)rmpsc_ring_pending(&ring));
	BAD(rmpsc_ring_advance(&ring, 4), RMPSC_EINVAL, "exceeds");

	/* attach: another view of the same memory sees the same records. */
	BAD(rmpsc_ring_attach(NULL, ring_mem, fp), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_attach(&view, NULL, fp), RMPSC_EINVAL, NULL);
	BAD(rmpsc_ring_attach(&view, ring_mem + 64, fp), RMPSC_EINVAL, "aligned");
	BAD(rmpsc_ring_attach(&view, ring_mem, 10), RMPSC_ECORRUPT, NULL);
	BAD(rmpsc_ring_attach(&view, ring_mem, fp - 1), RMPSC_ECORRUPT, "footprint");
	struct ring_ctrl *rc_ = (struct ring_ctrl *)ring_mem;
	rc_->ring_version = RMPSC_LAYOUT_VER - 1; /* formatted by another layout */
	BAD(rmpsc_ring_attach(&view, ring_mem, fp), RMPSC_ECORRUPT, "version");
	rc_->ring_version = RMPSC_LAYOUT_VER;
	CHECK_OK(rmpsc_ring_attach(&view, ring_mem, fp));
	CHECK(rmpsc_ring_capacity(&view) == 8 && rmpsc_ring_pending(&view) == 3, "attached view");
	CHECK_RC(rmpsc_ring_recv(&view, buf, 8), 3);
	for (uint64_t i = 0; i < 3; i++) {
		uint64_t v;
		memcpy(&v, buf + i * 8, 8);
		CHECK(v == i, "record %llu after bad calls: %llu", (unsigned long long)i, (unsigned long long)v);
	}

	/* Impossible positions in the ring's control block: ECORRUPT, no out-of-bounds access. */
	struct ring_ctrl *c = (struct ring_ctrl *)ring_mem;
	uint64_t head = c->head;
	uint64_t tails[] = { head + 9, head - 1, head + (1ull << 63) };
	for (int i = 0; i < 3; i++) {
		c->tail = tails[i];
		c->cached_tail = head;
		size_t got = 0;
		BAD(rmpsc_ring_readable(&view, 8, &cp), RMPSC_ECORRUPT, "tail");
		BAD(rmpsc_ring_recv(&view, buf, 8), RMPSC_ECORRUPT, "tail");
		BAD(rmpsc_ring_consume(&view, 8, ring_cb, &got), RMPSC_ECORRUPT, "tail");
		CHECK(got == 0, "consume read a corrupt ring");
		BAD(rmpsc_ring_advance(&view, 1), RMPSC_EINVAL, NULL);
		CHECK(rmpsc_ring_pending(&view) == 0, "pending of a corrupt ring");
		c->cached_head = c->tail - 8; /* so the producer reloads head */
		BAD(rmpsc_ring_reserve(&view, 1, &w), RMPSC_ECORRUPT, "head");
		CHECK_RC(rmpsc_ring_send(&view, buf, 1), RMPSC_ECORRUPT);
	}
	c->tail = c->cached_tail = c->cached_head = head;

	/* Garbage memory: refused, or (if the garbage happens to hold valid geometry) safe. */
	uint64_t s = 7;
	for (int round = 0; round < 1000; round++) {
		for (size_t i = 0; i < sizeof(struct ring_ctrl) + 64 * 256; i += 8) {
			uint64_t v = rng_next(&s);
			memcpy(ring_mem + i, &v, 8);
		}
		struct ring_ctrl *g = (struct ring_ctrl *)ring_mem;
		if (round % 2) { /* plausible version and geometry, garbage positions */
			g->ring_version = RMPSC_LAYOUT_VER;
			g->record_size = 1 + (uint32_t)(rng_next(&s) % 64);
			g->ring_bits = 1 + (uint32_t)(rng_next(&s) % 8);
		}
		int rc = rmpsc_ring_attach(&view, ring_mem, sizeof ring_mem);
		if (round % 2 == 0) {
			CHECK(rc == RMPSC_ECORRUPT, "attach on garbage returned %d", rc);
			check_msg_has("garbage", NULL);
			continue;
		}
		CHECK_OK(rc);
		uint64_t cap = rmpsc_ring_capacity(&view);
		int n = rmpsc_ring_readable(&view, 1000, &cp);
		CHECK(n == RMPSC_ECORRUPT || n == RMPSC_EEMPTY || (n >= 1 && (uint64_t)n <= cap), "readable %d", n);
		if (n > 0) {
			const unsigned char *lo = ring_mem + sizeof(struct ring_ctrl);
			CHECK((const unsigned char *)cp >= lo && (const unsigned char *)cp + (size_t)n * g->record_size <=
									 lo + cap * g->record_size,
			      "readable span outside the ring");
		}
		n = rmpsc_ring_reserve(&view, 1000, &w);
		CHECK(n == RMPSC_ECORRUPT || n == RMPSC_EFULL || (n >= 1 && (uint64_t)n <= cap), "reserve %d", n);
		if (n > 0)
			CHECK_OK(rmpsc_ring_commit(&view, 0));
	}
}

int main(void)
{
	harness_start("test_bad_input", 60);
	atexit(cleanup_at_exit);
	test_create_args();
	test_open_attach_args();
	test_null_handles();
	test_send_nothing();
	test_bad_calls_lose_nothing();
	test_corrupt_header();
	test_impossible_head();
	test_corrupt_slab_meta();
	test_ring_api();
	test_impossible_tail();
	printf("test_bad_input: all passed\n");
	return 0;
}
