/*
 * Channel API unit tests: create (anonymous and named, mode 0600, never
 * overwriting), open by name, attach by fd, unlink; config readback; producer
 * registration limits and slot reuse after deregistration; the consumer claim
 * across processes (live owner refused with its pid, release, zombie and killed
 * owners taken over); send/recv/read/advance/consume; send_many partial counts;
 * reservations (shorter at the wrap, partial commit, abort); pending and stats;
 * close semantics (including a reservation open at close); timeouts; EFORKED.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "children.h"
#include "harness.h"

#define RS 32
#define MS 1000000ll

/* --- process and name hygiene ---------------------------------------------- */

static char g_names[16][64];

static void cleanup_at_exit(void)
{
	if (g_is_child)
		return;
	children_kill_all();
	for (int i = 0; i < 16; i++)
		if (g_names[i][0])
			rmpsc_unlink(g_names[i]);
}

static const char *new_name(const char *tag)
{
	for (int i = 0; i < 16; i++)
		if (!g_names[i][0]) {
			snprintf(g_names[i], sizeof g_names[i], "rmpsc_tch_%d_%s", (int)getpid(), tag);
			return g_names[i];
		}
	FAIL("too many names");
}

static void forget_name(const char *name)
{
	for (int i = 0; i < 16; i++)
		if (!strcmp(g_names[i], name))
			g_names[i][0] = 0;
}

static void pipe_write(int fd, char c)
{
	CHECK(write(fd, &c, 1) == 1, "pipe write: %s", strerror(errno));
}

static char pipe_read(int fd)
{
	char c = 0;
	ssize_t r;
	while ((r = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	CHECK(r == 1, "pipe read: got %zd (%s)", r, strerror(errno));
	return c;
}

/* --- helpers --------------------------------------------------------------- */

static rmpsc_channel *make(uint32_t rs, uint32_t cap, uint32_t maxp)
{
	rmpsc_channel *ch = NULL;
	struct rmpsc_config c = { .record_size = rs, .capacity = cap, .max_producers = maxp };
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	CHECK(ch != NULL, "create gave NULL");
	return ch;
}

static rmpsc_producer *reg(rmpsc_channel *ch)
{
	rmpsc_producer *p = NULL;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK(p != NULL, "register gave NULL");
	return p;
}

static void send_rec(rmpsc_producer *p, uint32_t id, uint64_t seq)
{
	unsigned char r[RS];
	rec_fill(r, RS, id, seq);
	CHECK_OK(rmpsc_producer_send(p, r, RS, 0));
}

static void check_rec(const void *r, uint32_t id, uint64_t seq)
{
	uint32_t gid;
	uint64_t gseq;
	CHECK(rec_check(r, RS, &gid, &gseq) == 0, "torn or corrupt record (expected %u/%llu)", id,
	      (unsigned long long)seq);
	CHECK(gid == id && gseq == seq, "got record %u/%llu, expected %u/%llu", gid, (unsigned long long)gseq, id,
	      (unsigned long long)seq);
}

/* Receive exactly one record and check it. */
static void expect_rec(rmpsc_channel *ch, uint32_t id, uint64_t seq)
{
	unsigned char r[RS];
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), 1);
	check_rec(r, id, seq);
}

static void expect_empty(rmpsc_channel *ch)
{
	unsigned char r[RS];
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_EEMPTY);
}

static void check_msg(const char *what)
{
	const char *m = rmpsc_last_error();
	CHECK(m && m[0] && strcmp(m, "no error"), "%s: rmpsc_last_error() is empty", what);
}

/* Find the stats entry of a slot (NULL if the slot is FREE or not reported). */
static const struct rmpsc_ring_stats *ring_of(const struct rmpsc_ring_stats *r, int n, uint32_t slot)
{
	for (int i = 0; i < n; i++)
		if (r[i].slot == slot)
			return &r[i];
	return NULL;
}

/* --- create / open / attach / unlink --------------------------------------- */

static void test_create_anonymous(void)
{
	struct rmpsc_config c = { .record_size = 24,
				  .capacity = 16,
				  .max_producers = 3,
				  .slab_size = 100,
				  .slab_count = 5,
				  .start_position = 123 };
	rmpsc_channel *ch = NULL;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	struct rmpsc_config got;
	memset(&got, 0xAB, sizeof got);
	rmpsc_channel_config(ch, &got);
	CHECK(got.record_size == 24 && got.capacity == 16 && got.max_producers == 3 && got.slab_size == 100 &&
		      got.slab_count == 5 && got.start_position == 123,
	      "config readback %u %u %u %u %u %llu", got.record_size, got.capacity, got.max_producers, got.slab_size,
	      got.slab_count, (unsigned long long)got.start_position);
	CHECK(rmpsc_channel_name(ch) == NULL, "anonymous channel has a name");
	int fd = rmpsc_channel_fd(ch);
	CHECK(fd >= 0, "fd %d", fd);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size >= 4096 + 3 * 24 * 16 + 5 * 100, "memfd size %lld",
	      (long long)st.st_size);
	/* The memfd's size is sealed: no holder of the fd can shrink it under others' mappings. */
	CHECK(ftruncate(fd, 4096) < 0 && errno == EPERM, "shrinking the memfd was not refused (errno %d)", errno);
	CHECK(rmpsc_channel_is_closed(ch) == 0, "fresh channel closed");
	CHECK(rmpsc_pending(ch) == 0, "fresh channel pending");
	struct rmpsc_stats s;
	struct rmpsc_ring_stats rings[4];
	CHECK_RC(rmpsc_stats(ch, &s, rings, 4), 0);
	CHECK(s.max_producers == 3 && s.active_producers == 0 && s.consumer_pid == 0 && s.closed == 0 &&
		      s.pending == 0 && s.committed == 0 && s.consumed == 0 && s.slab_count == 5 && s.slabs_free == 5 &&
		      s.fenced_rings == 0 && s.reclaimed_slots == 0,
	      "fresh stats wrong");
	/* Start position 123 is honoured: a record sent and received counts once. */
	rmpsc_producer *p = reg(ch);
	unsigned char r[24] = { 1, 2, 3 }, out[24];
	CHECK_OK(rmpsc_producer_send(p, r, 3, 0));
	CHECK_RC(rmpsc_recv(ch, out, 1, 0), 1);
	CHECK(out[0] == 1 && out[1] == 2 && out[2] == 3 && out[3] == 0 && out[23] == 0, "short send not zero-filled");
	CHECK_RC(rmpsc_stats(ch, &s, rings, 4), 1);
	CHECK(s.committed == 1 && s.consumed == 1 && rings[0].committed == 1 && rings[0].consumed == 1,
	      "counts with start_position: %llu %llu", (unsigned long long)s.committed, (unsigned long long)s.consumed);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void test_named(void)
{
	char name_buf[64];
	const char *name = strcpy(name_buf, new_name("named")); /* forget_name() clears the list entry */
	char path[128], slashed[80];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	snprintf(slashed, sizeof slashed, "/%s", name);
	struct rmpsc_config c = { .record_size = RS, .capacity = 8, .max_producers = 2 };
	rmpsc_channel *ch = NULL;
	CHECK_OK(rmpsc_channel_create(&ch, name, &c, 0));
	CHECK(rmpsc_channel_name(ch) && strstr(rmpsc_channel_name(ch), name), "name readback");

	struct stat st, st2;
	CHECK(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600, "mode of %s is %o, want 0600", path,
	      (unsigned)(st.st_mode & 07777));
	CHECK(st.st_uid == getuid(), "owner uid");
	CHECK(fstat(rmpsc_channel_fd(ch), &st2) == 0 && (st2.st_mode & 07777) == 0600 && st2.st_ino == st.st_ino,
	      "fd is the named file with mode 0600");

	rmpsc_producer *p = reg(ch);
	send_rec(p, 1, 0);

	/* An existing name is never overwritten, with or without the leading slash. */
	struct rmpsc_config other = { .record_size = 64, .capacity = 4, .max_producers = 5 };
	for (int i = 0; i < 2; i++) {
		rmpsc_channel *dup = (rmpsc_channel *)&dup;
		errno = 0;
		CHECK_RC(rmpsc_channel_create(&dup, i ? slashed : name, &other, 0), RMPSC_ESYS);
		CHECK(errno == EEXIST, "errno %d (%s), want EEXIST", errno, strerror(errno));
		CHECK(dup == NULL, "failed create left *out set");
		check_msg("create existing");
	}
	CHECK(stat(path, &st2) == 0 && st2.st_size == st.st_size && st2.st_ino == st.st_ino &&
		      (st2.st_mode & 07777) == 0600,
	      "failed create touched the existing file");

	/* Open by name (both spellings): same geometry, same data. */
	rmpsc_channel *h2 = NULL, *h3 = NULL;
	CHECK_OK(rmpsc_channel_open(&h2, name, 0));
	CHECK_OK(rmpsc_channel_open(&h3, slashed, 0));
	struct rmpsc_config got;
	rmpsc_channel_config(h2, &got);
	CHECK(got.record_size == RS && got.capacity == 8 && got.max_producers == 2 && got.slab_count == 0,
	      "opened config %u %u %u", got.record_size, got.capacity, got.max_producers);
	CHECK(rmpsc_channel_name(h2) && strstr(rmpsc_channel_name(h2), name), "opened name");
	CHECK(rmpsc_pending(h3) == 1, "pending via second handle %llu", (unsigned long long)rmpsc_pending(h3));
	expect_rec(h2, 1, 0);

	/* Attach by fd: the caller keeps its fd, the handle has its own. */
	int fd = rmpsc_channel_fd(ch);
	rmpsc_channel *h4 = NULL;
	CHECK_OK(rmpsc_channel_attach_fd(&h4, fd, 0));
	CHECK(rmpsc_channel_fd(h4) != fd && fcntl(fd, F_GETFD) >= 0, "attach_fd must dup, not take, the fd");
	rmpsc_channel_config(h4, &got);
	CHECK(got.record_size == RS && got.capacity == 8 && got.max_producers == 2, "attached config");
	send_rec(p, 1, 1);
	expect_rec(h4, 1, 1);
	rmpsc_channel_release(h4);
	CHECK(fcntl(fd, F_GETFD) >= 0, "releasing the attached handle closed the creator's fd");

	/* Unlink: the name goes, mapped handles keep working. */
	CHECK_OK(rmpsc_unlink(name));
	forget_name(name);
	CHECK(stat(path, &st2) < 0 && errno == ENOENT, "file still there after unlink");
	rmpsc_channel *h5 = (rmpsc_channel *)&h5;
	errno = 0;
	CHECK_RC(rmpsc_channel_open(&h5, name, 0), RMPSC_ESYS);
	CHECK(errno == ENOENT && h5 == NULL, "open after unlink: errno %d", errno);
	check_msg("open after unlink");
	errno = 0;
	CHECK_RC(rmpsc_unlink(name), RMPSC_ESYS);
	CHECK(errno == ENOENT, "second unlink errno %d", errno);
	send_rec(p, 1, 2);
	expect_rec(h3, 1, 2);

	/* The name can be created afresh after unlink, independent of the old region. */
	name = strcpy(name_buf, new_name("named2"));
	rmpsc_channel *fresh = NULL;
	CHECK_OK(rmpsc_channel_create(&fresh, name, &other, 0));
	CHECK(rmpsc_pending(fresh) == 0, "fresh channel not empty");
	rmpsc_channel_config(fresh, &got);
	CHECK(got.record_size == 64, "fresh geometry");
	CHECK_OK(rmpsc_unlink(name));
	forget_name(name);
	rmpsc_channel_release(fresh);

	rmpsc_producer_close(p);
	rmpsc_channel_release(h2);
	rmpsc_channel_release(h3);
	rmpsc_channel_release(ch);
}

/* Who may open the region: mode and group, set before anyone can open it, exactly. */
static void test_access(void)
{
	char name_buf[64];
	const char *name = strcpy(name_buf, new_name("access"));
	char path[128];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	mode_t old_mask = umask(0077); /* the umask must not apply */
	struct rmpsc_config c = { .record_size = RS, .capacity = 8, .max_producers = 2, .mode = 0660 };
	gid_t other = getgid() == 65534 ? 65533 : 65534;
	int root = geteuid() == 0;
	if (root)
		c.gid = other; /* root may give any group; others only their own */
	rmpsc_channel *ch = NULL;
	CHECK_OK(rmpsc_channel_create(&ch, name, &c, 0));
	umask(old_mask);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0660, "mode %o, want 0660", (unsigned)(st.st_mode & 07777));
	CHECK(st.st_gid == (root ? other : getegid()), "group %u", (unsigned)st.st_gid);
	rmpsc_channel *h = NULL;
	CHECK_OK(rmpsc_channel_open(&h, name, 0));
	struct rmpsc_config got;
	memset(&got, 0xff, sizeof got);
	rmpsc_channel_config(h, &got);
	CHECK(got.mode == 0660 && got.gid == st.st_gid, "config reports mode %o gid %u", got.mode, got.gid);
	rmpsc_channel_release(h);
	CHECK_OK(rmpsc_unlink(name));
	forget_name(name);
	rmpsc_channel_release(ch);

	/* Bad modes: EINVAL naming the field, and no file left behind. */
	const uint32_t bad[] = { 01777, 0440, 0200, 04666 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct rmpsc_config b = c;
		b.mode = bad[i];
		b.gid = 0;
		rmpsc_channel *x = (rmpsc_channel *)&x;
		CHECK_RC(rmpsc_channel_create(&x, name, &b, 0), RMPSC_EINVAL);
		CHECK(x == NULL && strstr(rmpsc_last_error(), "config.mode"), "mode %o: \"%s\"", bad[i],
		      rmpsc_last_error());
		CHECK(stat(path, &st) < 0 && errno == ENOENT, "mode %o left the file", bad[i]);
	}
	/* A group the creator may not give: ESYS naming it, and no file left. */
	if (!root) {
		struct rmpsc_config b = c;
		b.gid = other;
		rmpsc_channel *x = NULL;
		CHECK_RC(rmpsc_channel_create(&x, name, &b, 0), RMPSC_ESYS);
		CHECK(strstr(rmpsc_last_error(), "config.gid"), "\"%s\"", rmpsc_last_error());
		CHECK(stat(path, &st) < 0 && errno == ENOENT, "a refused group left the file");
	}
	/* Anonymous regions take the mode too (their fd can be passed to another user). */
	rmpsc_channel *anon = NULL;
	CHECK_OK(rmpsc_channel_create(&anon, NULL, &c, 0));
	CHECK(fstat(rmpsc_channel_fd(anon), &st) == 0 && (st.st_mode & 0777) == 0660, "memfd mode %o",
	      (unsigned)(st.st_mode & 0777));
	rmpsc_channel_release(anon);
}

/* Drops: counted in the region, per slot, with episodes split by commits. */
static void test_dropped(void)
{
	rmpsc_channel *ch = make(RS, 8, 2);
	rmpsc_channel *other = make(RS, 8, 2);
	struct rmpsc_stats s, s2;
	CHECK(rmpsc_stats(ch, &s, NULL, 0) == 0 && s.dropped == 0 && s.drop_episodes == 0, "fresh counts");
	CHECK(rmpsc_stats(other, &s2, NULL, 0) == 0 && s.channel_id != 0 && s.channel_id != s2.channel_id,
	      "channel ids %llx %llx", (unsigned long long)s.channel_id, (unsigned long long)s2.channel_id);
	rmpsc_channel_release(other);
	rmpsc_producer *p = reg(ch), *q = reg(ch);
	CHECK_RC(rmpsc_producer_count_dropped(NULL, 1), RMPSC_EINVAL);
	CHECK_OK(rmpsc_producer_count_dropped(p, 0)); /* nothing: no episode either */
	CHECK_OK(rmpsc_producer_count_dropped(p, 2));
	CHECK_OK(rmpsc_producer_count_dropped(p, 1)); /* same episode: nothing committed between */
	send_rec(p, 0, 0);
	CHECK_OK(rmpsc_producer_count_dropped(p, 4)); /* a second one */
	CHECK_OK(rmpsc_producer_count_dropped(q, 1)); /* q's first */
	struct rmpsc_ring_stats rings[2];
	int n = rmpsc_stats(ch, &s, rings, 2);
	CHECK(s.dropped == 8 && s.drop_episodes == 3, "dropped %llu in %llu episodes", (unsigned long long)s.dropped,
	      (unsigned long long)s.drop_episodes);
	const struct rmpsc_ring_stats *rp = ring_of(rings, n, rmpsc_producer_slot(p));
	CHECK(rp && rp->dropped == 7, "p's ring dropped %llu", rp ? (unsigned long long)rp->dropped : 0ull);
	/* A forked copy may not count on the parent's slot; closed producers' counts stay. */
	pid_t c = fork_child();
	if (c == 0) {
		CHECK_RC(rmpsc_producer_count_dropped(p, 1), RMPSC_EFORKED);
		_exit(0);
	}
	CHECK_RC(reap(c), 0);
	rmpsc_producer_close(q);
	CHECK(rmpsc_stats(ch, &s, NULL, 0) == 0 && s.dropped == 8, "after close: %llu", (unsigned long long)s.dropped);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

static void test_attach_anonymous(void)
{
	rmpsc_channel *ch = make(RS, 4, 2);
	rmpsc_channel *h = NULL;
	CHECK_OK(rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(ch), 0));
	CHECK(rmpsc_channel_name(h) == NULL, "attached anonymous channel has a name");
	rmpsc_producer *p = reg(h);
	for (uint64_t i = 0; i < 10; i++) { /* through the wrap of a 4-record ring */
		send_rec(p, 3, i);
		expect_rec(ch, 3, i);
	}
	rmpsc_producer_close(p);
	rmpsc_channel_release(h);
	rmpsc_channel_release(ch);
}

/* --- producers: slots ------------------------------------------------------ */

static void test_register_limit_and_reuse(void)
{
	rmpsc_channel *ch = make(RS, 4, 3);
	rmpsc_producer *p[3];
	int seen[3] = { 0 };
	for (int i = 0; i < 3; i++) {
		p[i] = reg(ch);
		uint32_t s = rmpsc_producer_slot(p[i]);
		CHECK(s < 3 && !seen[s], "slot %u repeated or out of range", s);
		seen[s] = 1;
	}
	rmpsc_producer *extra = (rmpsc_producer *)&extra;
	CHECK_RC(rmpsc_producer_register(ch, &extra), RMPSC_ENOSLOT);
	CHECK(extra == NULL, "failed register left *out set");
	check_msg("ENOSLOT");

	struct rmpsc_stats s;
	struct rmpsc_ring_stats rings[4];
	CHECK_RC(rmpsc_stats(ch, &s, rings, 4), 3);
	CHECK(s.active_producers == 3, "active %u", s.active_producers);
	for (int i = 0; i < 3; i++)
		CHECK(rings[i].state == RMPSC_SLOT_ACTIVE && rings[i].owner_pid == (uint32_t)getpid() &&
			      rings[i].owner_alive == 1,
		      "ring %u state %u pid %u alive %u", rings[i].slot, rings[i].state, rings[i].owner_pid,
		      rings[i].owner_alive);

	/* Deregister a producer with records pending: they stay readable, and its slot
	 * is not handed out until the consumer drained them. */
	uint32_t s1 = rmpsc_producer_slot(p[1]);
	send_rec(p[1], 1, 0);
	send_rec(p[1], 1, 1);
	rmpsc_producer_close(p[1]);
	int n = rmpsc_stats(ch, &s, rings, 4);
	const struct rmpsc_ring_stats *r1 = ring_of(rings, n, s1);
	CHECK(r1 && r1->state == RMPSC_SLOT_DETACHED && r1->pending == 2, "closed producer's slot: state %u pending %llu",
	      r1 ? r1->state : 99, r1 ? (unsigned long long)r1->pending : 0ull);
	CHECK(s.active_producers == 2, "active after close %u", s.active_producers);
	extra = NULL;
	CHECK_RC(rmpsc_producer_register(ch, &extra), RMPSC_ENOSLOT);
	CHECK(strstr(rmpsc_last_error(), "2 by live producers, 1 by closed or dead producers whose records are not "
					 "consumed yet"),
	      "the message says what holds the slots: %s", rmpsc_last_error());

	expect_rec(ch, 1, 0);
	expect_rec(ch, 1, 1);
	expect_empty(ch);
	rmpsc_producer *again = reg(ch);
	CHECK(rmpsc_producer_slot(again) == s1, "drained slot %u not reused (got %u)", s1, rmpsc_producer_slot(again));
	n = rmpsc_stats(ch, &s, rings, 4);
	r1 = ring_of(rings, n, s1);
	CHECK(r1 && r1->state == RMPSC_SLOT_ACTIVE && r1->committed == 0 && r1->consumed == 0 && r1->pending == 0,
	      "re-registered slot counts not reset");
	send_rec(again, 9, 0);
	expect_rec(ch, 9, 0);
	n = rmpsc_stats(ch, &s, rings, 4);
	r1 = ring_of(rings, n, s1);
	CHECK(r1 && r1->committed == 1 && r1->consumed == 1, "re-registered slot counts");
	CHECK(s.committed == 3 && s.consumed == 3, "channel totals %llu %llu", (unsigned long long)s.committed,
	      (unsigned long long)s.consumed);

	/* Closing with nothing pending frees the slot at once for the next register. */
	rmpsc_producer_close(p[0]);
	rmpsc_producer *p0 = reg(ch);
	CHECK(rmpsc_producer_slot(p0) < 3, "slot");
	rmpsc_producer_close(NULL); /* safe */
	rmpsc_producer_close(p0);
	rmpsc_producer_close(p[2]);
	rmpsc_producer_close(again);
	rmpsc_channel_release(ch);
}

/* --- consumer claim across processes ------------------------------------- */

static void test_consumer_claim(void)
{
	rmpsc_channel *ch = make(RS, 8, 2);
	CHECK_OK(rmpsc_consumer_claim(ch));
	CHECK_OK(rmpsc_consumer_claim(ch)); /* same process: fine, twice */
	struct rmpsc_stats s;
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.consumer_pid == (uint32_t)getpid(), "consumer_pid %u", s.consumer_pid);

	rmpsc_producer *p = reg(ch);
	send_rec(p, 7, 0);

	char mypid[32];
	snprintf(mypid, sizeof mypid, "%d", (int)getpid());

	/* A forked child cannot consume while the parent holds the role. */
	pid_t c = fork_child();
	if (c == 0) {
		unsigned char r[RS];
		const void *ptr;
		CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_ECONSUMER);
		CHECK(strstr(rmpsc_last_error(), mypid), "message \"%s\" does not name pid %s", rmpsc_last_error(),
		      mypid);
		CHECK_RC(rmpsc_consumer_claim(ch), RMPSC_ECONSUMER);
		CHECK(strstr(rmpsc_last_error(), mypid), "message \"%s\" does not name pid %s", rmpsc_last_error(),
		      mypid);
		CHECK_RC(rmpsc_read(ch, 1, 0, &ptr, NULL), RMPSC_ECONSUMER);
		CHECK_RC(rmpsc_wait_readable(ch, 0), RMPSC_ECONSUMER);
		CHECK_RC(rmpsc_recv(ch, r, 1, 50 * MS), RMPSC_ECONSUMER);
		rmpsc_consumer_release(ch); /* not ours: must not drop the parent's claim */
		_exit(0);
	}
	CHECK_RC(reap(c), 0);
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.consumer_pid == (uint32_t)getpid(), "child's release dropped the parent's claim (pid %u)",
	      s.consumer_pid);
	CHECK(rmpsc_pending(ch) == 1, "record lost");

	/* After the parent releases, a child can claim; while it lives the parent is refused. */
	rmpsc_consumer_release(ch);
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.consumer_pid == 0, "consumer_pid after release %u", s.consumer_pid);
	struct link l;
	c = fork_linked(&l);
	if (c == 0) {
		CHECK_OK(rmpsc_consumer_claim(ch));
		expect_rec(ch, 7, 0);
		pipe_write(l.wr, 'c');
		pipe_read(l.rd);
		_exit(0); /* dies holding the role */
	}
	CHECK(pipe_read(l.rd) == 'c', "child");
	char cpid[32];
	snprintf(cpid, sizeof cpid, "%d", (int)c);
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.consumer_pid == (uint32_t)c, "consumer_pid %u, want child %d", s.consumer_pid, (int)c);
	CHECK_RC(rmpsc_consumer_claim(ch), RMPSC_ECONSUMER);
	CHECK(strstr(rmpsc_last_error(), cpid), "message \"%s\" does not name pid %s", rmpsc_last_error(), cpid);
	unsigned char r[RS];
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_ECONSUMER);

	/* The child exits; as a zombie (not yet reaped) it already counts as dead. */
	pipe_write(l.wr, 'x');
	wait_zombie(c);
	CHECK_OK(rmpsc_consumer_claim(ch));
	CHECK_RC(reap(c), 0);
	link_close(&l);
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.consumer_pid == (uint32_t)getpid(), "takeover: consumer_pid %u", s.consumer_pid);
	/* The record the dead consumer took is not delivered again. */
	expect_empty(ch);
	send_rec(p, 7, 1);
	expect_rec(ch, 7, 1);

	/* A live owner that is then SIGKILLed: refused, then taken over. */
	rmpsc_consumer_release(ch);
	c = fork_linked(&l);
	if (c == 0) {
		CHECK_OK(rmpsc_consumer_claim(ch));
		pipe_write(l.wr, 'k');
		for (;;)
			pause();
	}
	CHECK(pipe_read(l.rd) == 'k', "child");
	snprintf(cpid, sizeof cpid, "%d", (int)c);
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_ECONSUMER);
	CHECK(strstr(rmpsc_last_error(), cpid), "message \"%s\" does not name pid %s", rmpsc_last_error(), cpid);
	kill(c, SIGKILL);
	CHECK_RC(reap(c), 128 + SIGKILL);
	send_rec(p, 7, 2);
	expect_rec(ch, 7, 2); /* implicit claim takes the dead owner's role over */
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.consumer_pid == (uint32_t)getpid(), "consumer_pid %u", s.consumer_pid);

	link_close(&l);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch); /* releases the role */
}

/* Handles of one process share the consumer role; it is given up when the last
 * handle holding it lets go. */
static void test_consumer_shared_handles(void)
{
	rmpsc_channel *h1 = make(RS, 8, 1);
	rmpsc_channel *h2 = NULL;
	CHECK_OK(rmpsc_channel_attach_fd(&h2, rmpsc_channel_fd(h1), 0));
	rmpsc_producer *p = reg(h1);
	for (uint64_t i = 0; i < 4; i++)
		send_rec(p, 3, i);
	expect_rec(h1, 3, 0);
	expect_rec(h2, 3, 1); /* same process, second handle: shares the role */
	expect_rec(h1, 3, 2);
	struct rmpsc_stats s;
	rmpsc_consumer_release(h1);
	rmpsc_stats(h1, &s, NULL, 0);
	CHECK(s.consumer_pid == (uint32_t)getpid(), "role dropped while another handle still holds it (pid %u)",
	      s.consumer_pid);
	pid_t c = fork_child();
	if (c == 0) {
		unsigned char r[RS];
		CHECK_RC(rmpsc_recv(h2, r, 1, 0), RMPSC_ECONSUMER);
		_exit(0);
	}
	CHECK_RC(reap(c), 0);
	rmpsc_channel_release(h2); /* the last holder */
	rmpsc_stats(h1, &s, NULL, 0);
	CHECK(s.consumer_pid == 0, "role still held (pid %u) after the last handle released", s.consumer_pid);
	c = fork_child();
	if (c == 0) {
		expect_rec(h1, 3, 3); /* now a child can take the role */
		_exit(0);
	}
	CHECK_RC(reap(c), 0);
	CHECK(rmpsc_pending(h1) == 0, "pending");
	rmpsc_producer_close(p);
	rmpsc_channel_release(h1);
}

/* --- send / recv / read / advance / consume -------------------------------- */

struct spans {
	uint32_t slot_id[4]; /* producer id expected on each slot */
	uint64_t next[4];    /* next expected seq per producer id */
	int calls;
	int stop_after; /* stop after this many calls (0 = never) */
	size_t total;
};

static void take(struct spans *sp, const void *records, size_t count, uint32_t slot)
{
	const unsigned char *b = records;
	CHECK(count >= 1, "empty span");
	for (size_t i = 0; i < count; i++) {
		uint32_t id;
		uint64_t seq;
		CHECK(rec_check(b + i * RS, RS, &id, &seq) == 0, "corrupt record");
		CHECK(slot < 4 && id == sp->slot_id[slot], "record of producer %u reported on slot %u", id, slot);
		CHECK(seq == sp->next[id], "producer %u: seq %llu, expected %llu", id, (unsigned long long)seq,
		      (unsigned long long)sp->next[id]);
		sp->next[id]++;
	}
	sp->total += count;
}

static int span_cb(void *ctx, const void *records, size_t count, uint32_t slot)
{
	struct spans *sp = ctx;
	take(sp, records, count, slot);
	sp->calls++;
	return sp->stop_after && sp->calls >= sp->stop_after;
}

static void test_send_recv_read_consume(void)
{
	rmpsc_channel *ch = make(RS, 8, 2);
	rmpsc_producer *p0 = reg(ch), *p1 = reg(ch);
	struct spans sp = { .total = 0 };
	sp.slot_id[rmpsc_producer_slot(p0)] = 0;
	sp.slot_id[rmpsc_producer_slot(p1)] = 1;
	for (uint64_t i = 0; i < 6; i++)
		send_rec(p0, 0, i);
	for (uint64_t i = 0; i < 3; i++)
		send_rec(p1, 1, i);
	CHECK(rmpsc_pending(ch) == 9, "pending %llu", (unsigned long long)rmpsc_pending(ch));

	/* read + partial advance: the rest is read again. */
	const void *ptr = NULL;
	uint32_t slot = 99;
	int k = rmpsc_read(ch, 3, 0, &ptr, &slot);
	CHECK(k >= 1 && k <= 3 && slot < 2 && ptr, "read %d slot %u", k, slot);
	CHECK_RC(rmpsc_advance(ch, (size_t)k + 1), RMPSC_EINVAL); /* more than read */
	check_msg("advance too far");
	uint32_t id;
	uint64_t seq;
	CHECK(rec_check(ptr, RS, &id, &seq) == 0 && id == sp.slot_id[slot] && seq == 0, "first read record");
	take(&sp, ptr, 1, slot);
	CHECK_OK(rmpsc_advance(ch, 1));
	CHECK_RC(rmpsc_advance(ch, 1), RMPSC_EINVAL); /* the read span is gone */
	CHECK(rmpsc_pending(ch) == 8, "pending after advancing 1: %llu", (unsigned long long)rmpsc_pending(ch));

	/* read without a slot pointer, advance 0 (keeps everything). */
	k = rmpsc_read(ch, 2, 0, &ptr, NULL);
	CHECK(k >= 1 && k <= 2, "read %d", k);
	CHECK_OK(rmpsc_advance(ch, 0));
	CHECK(rmpsc_pending(ch) == 8, "advance 0 consumed something");

	/* consume with a callback that stops after the first span: only that span goes. */
	sp.calls = 0;
	sp.stop_after = 1;
	size_t before = sp.total;
	int n = rmpsc_consume(ch, 100, 0, span_cb, &sp);
	CHECK(n >= 1 && sp.calls == 1 && (size_t)n == sp.total - before, "consume with stop: %d in %d calls", n,
	      sp.calls);
	CHECK(rmpsc_pending(ch) == 8 - (uint64_t)n, "pending after stop %llu", (unsigned long long)rmpsc_pending(ch));

	/* consume bounded by max. */
	sp.stop_after = 0;
	before = sp.total;
	n = rmpsc_consume(ch, 2, 0, span_cb, &sp);
	CHECK(n >= 1 && n <= 2 && (size_t)n == sp.total - before, "consume max 2 gave %d", n);

	/* recv the rest through a buffer. */
	unsigned char buf[16 * RS];
	while ((n = rmpsc_recv(ch, buf, 16, 0)) > 0) {
		for (int i = 0; i < n; i++) {
			CHECK(rec_check(buf + i * RS, RS, &id, &seq) == 0 && id < 2, "corrupt");
			CHECK(seq == sp.next[id], "recv order: producer %u seq %llu want %llu", id,
			      (unsigned long long)seq, (unsigned long long)sp.next[id]);
			sp.next[id]++;
			sp.total++;
		}
	}
	CHECK_RC(n, RMPSC_EEMPTY);
	CHECK(sp.next[0] == 6 && sp.next[1] == 3 && sp.total == 9, "exactly-once: %llu %llu %zu",
	      (unsigned long long)sp.next[0], (unsigned long long)sp.next[1], sp.total);
	CHECK(rmpsc_pending(ch) == 0, "pending at end");
	rmpsc_producer_close(p0);
	rmpsc_producer_close(p1);
	rmpsc_channel_release(ch);
}

static void test_send_many(void)
{
	rmpsc_channel *ch = make(RS, 4, 1);
	rmpsc_producer *p = reg(ch);
	unsigned char recs[10 * RS], buf[10 * RS];
	for (int i = 0; i < 10; i++)
		rec_fill(recs + i * RS, RS, 2, (uint64_t)i);

	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_producer_send_many(p, recs, 10, 30 * MS), 4); /* partial: the deadline passed */
	int64_t el = now_ns() - t0;
	CHECK(el >= 30 * MS && el < 3000 * MS, "send_many partial took %lld ms", (long long)(el / MS));
	CHECK_RC(rmpsc_producer_send_many(p, recs + 4 * RS, 6, 0), RMPSC_EFULL);
	CHECK_RC(rmpsc_producer_send_many(p, recs + 4 * RS, 6, 10 * MS), RMPSC_ETIMEDOUT);
	CHECK_RC(rmpsc_producer_send_many(p, recs, 0, 0), 0);

	CHECK_RC(rmpsc_recv(ch, buf, 10, 0), 4);
	for (int i = 0; i < 4; i++)
		check_rec(buf + i * RS, 2, (uint64_t)i);
	CHECK_RC(rmpsc_producer_send_many(p, recs + 4 * RS, 6, 0), 4); /* timeout 0: what fits */
	CHECK_RC(rmpsc_recv(ch, buf, 10, 0), 4);
	for (int i = 0; i < 4; i++)
		check_rec(buf + i * RS, 2, (uint64_t)i + 4);
	CHECK_RC(rmpsc_producer_send_many(p, recs + 8 * RS, 2, -1), 2);
	CHECK_RC(rmpsc_recv(ch, buf, 10, 0), 2);
	check_rec(buf, 2, 8);
	check_rec(buf + RS, 2, 9);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* --- reservations ------------------------------------------------------------ */

static void test_reservations(void)
{
	rmpsc_channel *ch = make(RS, 8, 1);
	rmpsc_producer *p = reg(ch);
	for (uint64_t i = 0; i < 5; i++)
		send_rec(p, 4, i);
	for (uint64_t i = 0; i < 5; i++)
		expect_rec(ch, 4, i);

	/* At index 5 of 8, a reservation of 6 is cut at the wrap. */
	void *a = NULL, *b = NULL, *x = NULL;
	CHECK_RC(rmpsc_producer_reserve(p, 6, 0, &a), 3);
	unsigned char *ring0 = (unsigned char *)a - 5 * RS; /* the ring's first record */
	for (int i = 0; i < 3; i++)
		rec_fill((unsigned char *)a + i * RS, RS, 4, 5 + (uint64_t)i);
	CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &x), RMPSC_EINVAL); /* one open at a time */
	CHECK_OK(rmpsc_producer_commit(p, 3));
	CHECK_RC(rmpsc_producer_commit(p, 0), RMPSC_EINVAL); /* nothing open */

	/* Now at index 0: 5 free records, contiguous from the start of the ring. */
	CHECK_RC(rmpsc_producer_reserve(p, 6, 0, &b), 5);
	CHECK(b == ring0, "wrapped reservation not at the ring start");
	for (int i = 0; i < 5; i++)
		rec_fill((unsigned char *)b + i * RS, RS, 4, 8 + (uint64_t)i);
	CHECK_RC(rmpsc_producer_commit(p, 6), RMPSC_EINVAL); /* more than reserved; stays open */
	CHECK_OK(rmpsc_producer_commit(p, 2));               /* k < reserved */
	CHECK(rmpsc_pending(ch) == 5, "pending %llu", (unsigned long long)rmpsc_pending(ch));

	/* The next reservation starts right after the 2 committed. An abort publishes nothing. */
	CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &x), 1);
	CHECK(x == ring0 + 2 * RS, "reservation after partial commit at the wrong place");
	memset(x, 0xEE, RS);
	CHECK_OK(rmpsc_producer_commit(p, 0));
	CHECK(rmpsc_pending(ch) == 5, "abort published something");
	CHECK_RC(rmpsc_producer_reserve(p, 2, 0, &x), 2);
	CHECK(x == ring0 + 2 * RS, "abort moved the tail");
	rec_fill(x, RS, 4, 10);
	rec_fill((unsigned char *)x + RS, RS, 4, 11);
	CHECK_OK(rmpsc_producer_commit(p, 2));

	/* Abort by closing the producer with a reservation open. */
	CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &x), 1);
	memset(x, 0xEE, RS);
	rmpsc_producer_close(p);

	unsigned char buf[8 * RS];
	CHECK_RC(rmpsc_recv(ch, buf, 8, 0), 7); /* 5..7 up to the wrap, then 8..11 */
	for (int i = 0; i < 7; i++)
		check_rec(buf + i * RS, 4, 5 + (uint64_t)i);
	expect_empty(ch);
	rmpsc_channel_release(ch);
}

/* Reserved bytes are not cleared (as documented in ringmpsc.h): committing a
 * reservation without writing it delivers what the slot held, i.e. the record
 * the ring carried there one lap earlier -- possibly another producer's, from an
 * earlier owner of the slot. */
static void test_unwritten_reservation(void)
{
	rmpsc_channel *ch = make(RS, 4, 1);
	rmpsc_producer *p = reg(ch);
	for (uint64_t i = 0; i < 4; i++)
		send_rec(p, 3, i);
	for (uint64_t i = 0; i < 4; i++)
		expect_rec(ch, 3, i);
	rmpsc_producer_close(p);
	p = reg(ch); /* the same slot, positions continue: one lap on */
	void *x;
	CHECK_RC(rmpsc_producer_reserve(p, 2, 0, &x), 2);
	CHECK_OK(rmpsc_producer_commit(p, 2));
	expect_rec(ch, 3, 0);
	expect_rec(ch, 3, 1);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* --- pending and stats ------------------------------------------------------- */

static int count_cb(void *ctx, const void *records, size_t count, uint32_t slot)
{
	uint64_t *per_slot = ctx;
	(void)records;
	per_slot[slot] += count;
	return 0;
}

static void test_stats(void)
{
	rmpsc_channel *ch = make(RS, 16, 3);
	rmpsc_producer *p0 = reg(ch), *p1 = reg(ch);
	uint32_t s0 = rmpsc_producer_slot(p0), s1 = rmpsc_producer_slot(p1);
	for (uint64_t i = 0; i < 5; i++)
		send_rec(p0, 0, i);
	for (uint64_t i = 0; i < 2; i++)
		send_rec(p1, 1, i);
	void *x;
	CHECK_RC(rmpsc_producer_reserve(p1, 3, 0, &x), 3); /* reserved, not committed: not counted */
	CHECK(rmpsc_pending(ch) == 7, "pending %llu", (unsigned long long)rmpsc_pending(ch));
	uint64_t per_slot[3] = { 0 };
	CHECK_RC(rmpsc_consume(ch, 3, 0, count_cb, per_slot), 3);

	struct rmpsc_stats s;
	struct rmpsc_ring_stats rings[3];
	int n = rmpsc_stats(ch, &s, rings, 3);
	CHECK(n == 2, "stats entries %d", n);
	CHECK(s.max_producers == 3 && s.active_producers == 2 && s.consumer_pid == (uint32_t)getpid() && s.closed == 0,
	      "channel stats");
	CHECK(s.committed == 7 && s.consumed == 3 && s.pending == 4, "totals committed %llu consumed %llu pending %llu",
	      (unsigned long long)s.committed, (unsigned long long)s.consumed, (unsigned long long)s.pending);
	CHECK(s.slab_count == 0 && s.slabs_free == 0 && s.fenced_rings == 0, "slab/fence stats");
	uint32_t slots[2] = { s0, s1 };
	uint64_t sent[2] = { 5, 2 };
	for (int i = 0; i < 2; i++) {
		const struct rmpsc_ring_stats *r = ring_of(rings, n, slots[i]);
		CHECK(r, "no stats for slot %u", slots[i]);
		CHECK(r->state == RMPSC_SLOT_ACTIVE && r->owner_pid == (uint32_t)getpid() && r->owner_alive == 1,
		      "ring %u state/owner", r->slot);
		CHECK(r->committed == sent[i] && r->consumed == per_slot[slots[i]] &&
			      r->pending == sent[i] - per_slot[slots[i]],
		      "ring %u: committed %llu consumed %llu pending %llu, want %llu %llu", r->slot,
		      (unsigned long long)r->committed, (unsigned long long)r->consumed, (unsigned long long)r->pending,
		      (unsigned long long)sent[i], (unsigned long long)per_slot[slots[i]]);
	}
	CHECK_RC(rmpsc_stats(ch, &s, rings, 1), 1);
	CHECK_RC(rmpsc_stats(ch, &s, NULL, 3), 0);
	CHECK_RC(rmpsc_stats(ch, &s, rings, 0), 0);

	for (uint64_t i = 2; i < 5; i++)
		rec_fill((unsigned char *)x + (i - 2) * RS, RS, 1, i);
	CHECK_OK(rmpsc_producer_commit(p1, 3));
	CHECK(rmpsc_pending(ch) == 7, "pending after commit %llu", (unsigned long long)rmpsc_pending(ch));
	CHECK_RC(rmpsc_consume(ch, 100, 0, count_cb, per_slot), 7);
	rmpsc_producer_close(p1);
	CHECK_OK(rmpsc_channel_close(ch));
	n = rmpsc_stats(ch, &s, rings, 3);
	CHECK(s.closed == 1 && s.committed == 10 && s.consumed == 10 && s.pending == 0 && s.active_producers == 1,
	      "final stats closed %u committed %llu consumed %llu active %u", s.closed, (unsigned long long)s.committed,
	      (unsigned long long)s.consumed, s.active_producers);
	const struct rmpsc_ring_stats *r1 = ring_of(rings, n, s1);
	CHECK(!r1 || r1->state == RMPSC_SLOT_DETACHED, "closed producer's slot state %u", r1->state);
	rmpsc_producer_close(p0);
	rmpsc_channel_release(ch);
}

/* --- close ------------------------------------------------------------------ */

struct blocked {
	rmpsc_channel *ch;
	rmpsc_producer *p;
	volatile int done;
	int rc;
	int tid;
	unsigned char buf[4 * RS];
};

static void *blocked_recv(void *arg)
{
	struct blocked *b = arg;
	publish_tid(&b->tid);
	b->rc = rmpsc_recv(b->ch, b->buf, 4, -1);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *blocked_send(void *arg)
{
	struct blocked *b = arg;
	unsigned char r[RS];
	rec_fill(r, RS, 5, 99);
	publish_tid(&b->tid);
	b->rc = rmpsc_producer_send(b->p, r, RS, -1);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int is_done(struct blocked *b)
{
	return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

static void test_close(void)
{
	rmpsc_channel *ch = make(RS, 8, 3);
	rmpsc_producer *pa = reg(ch), *pb = reg(ch);
	void *x;
	CHECK_RC(rmpsc_producer_reserve(pa, 2, 0, &x), 2);
	rec_fill(x, RS, 0, 0);
	rec_fill((unsigned char *)x + RS, RS, 0, 1);
	for (uint64_t i = 0; i < 3; i++)
		send_rec(pb, 1, i);

	CHECK_OK(rmpsc_channel_close(ch));
	CHECK_OK(rmpsc_channel_close(ch)); /* idempotent */
	CHECK(rmpsc_channel_is_closed(ch) == 1, "is_closed");
	unsigned char r[RS];
	void *y;
	rec_fill(r, RS, 1, 3);
	CHECK_RC(rmpsc_producer_send(pb, r, RS, 0), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_producer_send(pb, r, RS, -1), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_producer_reserve(pb, 1, 0, &y), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_producer_send_many(pb, r, 1, 0), RMPSC_ECLOSED);
	check_msg("send after close");
	rmpsc_producer *pc = (rmpsc_producer *)&pc;
	CHECK_RC(rmpsc_producer_register(ch, &pc), RMPSC_ECLOSED);
	CHECK(pc == NULL, "register after close left *out set");

	/* Everything committed is delivered; the open reservation keeps the channel from
	 * reporting "closed and drained" until it ends. */
	for (uint64_t i = 0; i < 3; i++)
		expect_rec(ch, 1, i);
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_EEMPTY);
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, r, 1, 30 * MS), RMPSC_ETIMEDOUT);
	CHECK(now_ns() - t0 >= 30 * MS, "timed out early");

	/* A consumer blocked forever wakes when the reservation is committed. */
	struct blocked bc = { .ch = ch };
	pthread_t t;
	pthread_create(&t, NULL, blocked_recv, &bc);
	wait_blocked(&bc.tid);
	CHECK(!is_done(&bc), "blocked consumer returned %d before the commit", bc.rc);
	CHECK_OK(rmpsc_producer_commit(pa, 2)); /* allowed after close */
	pthread_join(t, NULL);
	CHECK(bc.rc >= 1, "blocked consumer got %d (%s)", bc.rc, rmpsc_strerror(bc.rc));
	check_rec(bc.buf, 0, 0);
	if (bc.rc == 1)
		expect_rec(ch, 0, 1);
	else
		check_rec(bc.buf + RS, 0, 1);
	CHECK_RC(rmpsc_producer_reserve(pa, 1, 0, &y), RMPSC_ECLOSED);

	/* Closed and drained: final, from every consumer call, never blocking. */
	const void *ptr;
	uint64_t per_slot[3];
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_recv(ch, r, 1, -1), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_read(ch, 1, 30 * MS, &ptr, NULL), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_consume(ch, 1, -1, count_cb, per_slot), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_wait_readable(ch, -1), RMPSC_ECLOSED);
	check_msg("closed and drained");
	struct rmpsc_stats s;
	rmpsc_stats(ch, &s, NULL, 0);
	CHECK(s.closed == 1 && s.committed == 5 && s.consumed == 5, "stats after drain");
	rmpsc_producer_close(pa);
	rmpsc_producer_close(pb);
	rmpsc_channel_release(ch);

	/* close wakes a consumer blocked on an empty channel... */
	ch = make(RS, 2, 1);
	struct blocked b2 = { .ch = ch };
	pthread_create(&t, NULL, blocked_recv, &b2);
	wait_blocked(&b2.tid);
	CHECK(!is_done(&b2), "consumer did not block");
	CHECK_OK(rmpsc_channel_close(ch));
	pthread_join(t, NULL);
	CHECK_RC(b2.rc, RMPSC_ECLOSED);
	rmpsc_channel_release(ch);

	/* ...and a producer blocked on a full ring. */
	ch = make(RS, 2, 1);
	rmpsc_producer *p = reg(ch);
	send_rec(p, 5, 0);
	send_rec(p, 5, 1);
	struct blocked b3 = { .ch = ch, .p = p };
	pthread_create(&t, NULL, blocked_send, &b3);
	wait_blocked(&b3.tid);
	CHECK(!is_done(&b3), "producer did not block");
	CHECK_OK(rmpsc_channel_close(ch));
	pthread_join(t, NULL);
	CHECK_RC(b3.rc, RMPSC_ECLOSED);
	expect_rec(ch, 5, 0);
	expect_rec(ch, 5, 1);
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_ECLOSED);

	/* An aborted reservation after close: drained at once. */
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	ch = make(RS, 4, 1);
	p = reg(ch);
	CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &y), 1);
	CHECK_OK(rmpsc_channel_close(ch));
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_EEMPTY);
	CHECK_OK(rmpsc_producer_commit(p, 0));
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_ECLOSED);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* A producer process that dies with a reservation open after close must not keep
 * the consumer from reaching "closed and drained". */
static void test_close_with_dead_reserver(void)
{
	rmpsc_channel *ch = make(RS, 4, 2);
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) {
		rmpsc_producer *p = reg(ch);
		send_rec(p, 6, 0);
		void *x;
		CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &x), 1);
		memset(x, 0xEE, RS);
		pipe_write(l.wr, 'r');
		for (;;)
			pause();
	}
	CHECK(pipe_read(l.rd) == 'r', "child");
	CHECK_OK(rmpsc_channel_close(ch));
	expect_rec(ch, 6, 0);
	CHECK_RC(rmpsc_recv(ch, (unsigned char[RS]){ 0 }, 1, 0), RMPSC_EEMPTY); /* live reserver */
	kill(c, SIGKILL);
	CHECK_RC(reap(c), 128 + SIGKILL);
	int64_t t0 = now_ns();
	unsigned char r[RS];
	CHECK_RC(rmpsc_recv(ch, r, 1, 5000 * MS), RMPSC_ECLOSED);
	CHECK(now_ns() - t0 < 2000 * MS, "drain after the reserver died took %lld ms", (long long)((now_ns() - t0) / MS));
	link_close(&l);
	rmpsc_channel_release(ch);
}

/* --- timeouts ---------------------------------------------------------------- */

static void check_elapsed(int64_t t0, int64_t want, const char *what)
{
	int64_t el = now_ns() - t0;
	CHECK(el >= want, "%s: returned after %lld us, before its %lld us timeout", what, (long long)(el / 1000),
	      (long long)(want / 1000));
	CHECK(el < want + 2000 * MS, "%s: took %lld ms for a %lld ms timeout", what, (long long)(el / MS),
	      (long long)(want / MS));
}

static void check_fast(int64_t t0, const char *what)
{
	int64_t el = now_ns() - t0;
	CHECK(el < 200 * MS, "%s with timeout 0 took %lld ms", what, (long long)(el / MS));
}

static void *late_send(void *arg)
{
	struct blocked *b = arg;
	usleep(30000);
	unsigned char r[RS];
	rec_fill(r, RS, 8, 0);
	b->rc = rmpsc_producer_send(b->p, r, RS, 0);
	return NULL;
}

static void test_timeouts(void)
{
	rmpsc_channel *ch = make(RS, 2, 1);
	unsigned char r[RS];
	const void *ptr;
	uint64_t per_slot[1];
	int64_t t0;
	const int64_t T = 40 * MS;

	t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, r, 1, 0), RMPSC_EEMPTY);
	check_fast(t0, "recv");
	t0 = now_ns();
	CHECK_RC(rmpsc_wait_readable(ch, 0), RMPSC_EEMPTY);
	check_fast(t0, "wait_readable");
	t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, r, 1, T), RMPSC_ETIMEDOUT);
	check_elapsed(t0, T, "recv");
	t0 = now_ns();
	CHECK_RC(rmpsc_read(ch, 1, T, &ptr, NULL), RMPSC_ETIMEDOUT);
	check_elapsed(t0, T, "read");
	t0 = now_ns();
	CHECK_RC(rmpsc_consume(ch, 1, T, count_cb, per_slot), RMPSC_ETIMEDOUT);
	check_elapsed(t0, T, "consume");
	t0 = now_ns();
	CHECK_RC(rmpsc_wait_readable(ch, T), RMPSC_ETIMEDOUT);
	check_elapsed(t0, T, "wait_readable");
	check_msg("timeout");

	rmpsc_producer *p = reg(ch);
	send_rec(p, 8, 0);
	send_rec(p, 8, 1);
	void *x;
	rec_fill(r, RS, 8, 2);
	t0 = now_ns();
	CHECK_RC(rmpsc_producer_send(p, r, RS, 0), RMPSC_EFULL);
	CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &x), RMPSC_EFULL);
	check_fast(t0, "send/reserve");
	t0 = now_ns();
	CHECK_RC(rmpsc_producer_send(p, r, RS, T), RMPSC_ETIMEDOUT);
	check_elapsed(t0, T, "send");
	t0 = now_ns();
	CHECK_RC(rmpsc_producer_reserve(p, 1, T, &x), RMPSC_ETIMEDOUT);
	check_elapsed(t0, T, "reserve");
	t0 = now_ns();
	CHECK_RC(rmpsc_producer_send_many(p, r, 1, T), RMPSC_ETIMEDOUT);
	check_elapsed(t0, T, "send_many");
	/* The failures changed nothing. */
	expect_rec(ch, 8, 0);
	expect_rec(ch, 8, 1);
	expect_empty(ch);

	/* A huge timeout must not overflow into an immediate timeout. */
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	ch = make(RS, 2, 1);
	p = reg(ch);
	struct blocked b = { .ch = ch, .p = p };
	pthread_t t;
	pthread_create(&t, NULL, late_send, &b);
	CHECK_RC(rmpsc_recv(ch, r, 1, INT64_MAX), 1);
	check_rec(r, 8, 0);
	pthread_join(t, NULL);
	CHECK_OK(b.rc);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* --- RMPSC_OPEN_INTERRUPTIBLE ------------------------------------------------ */

static void on_usr1(int sig)
{
	(void)sig;
}

/* Signal a blocked thread until it returns (a signal that lands before it sleeps
 * is missed, so keep sending). */
static void poke_until_done(pthread_t t, struct blocked *b)
{
	int64_t t0 = now_ns();
	while (!is_done(b)) {
		CHECK(now_ns() - t0 < 5000 * MS, "blocked call never returned on signals");
		pthread_kill(t, SIGUSR1);
		usleep(10000);
	}
	pthread_join(t, NULL);
}

/* An interruptible channel's waits return EINTR on a signal, whether or not its
 * handler asks the kernel to restart system calls: with SA_RESTART (glibc
 * signal()'s default) a futex wait without a timeout is restarted by the kernel,
 * so the wait must never sleep without one. */
static void interruptible_waits(int sa_flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = sa_flags;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");

	struct rmpsc_config c = { .record_size = RS, .capacity = 2, .max_producers = 1 };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, RMPSC_OPEN_INTERRUPTIBLE));
	/* consumer */
	struct blocked b = { .ch = ch };
	pthread_t t;
	pthread_create(&t, NULL, blocked_recv, &b);
	wait_blocked(&b.tid);
	poke_until_done(t, &b);
	CHECK_RC(b.rc, RMPSC_EINTR);
	/* producer */
	rmpsc_producer *p = reg(ch);
	send_rec(p, 5, 0);
	send_rec(p, 5, 1);
	struct blocked b2 = { .ch = ch, .p = p };
	pthread_create(&t, NULL, blocked_send, &b2);
	wait_blocked(&b2.tid);
	poke_until_done(t, &b2);
	CHECK_RC(b2.rc, RMPSC_EINTR);
	expect_rec(ch, 5, 0); /* the interrupted send changed nothing */
	expect_rec(ch, 5, 1);
	expect_empty(ch);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	signal(SIGUSR1, SIG_DFL);
}

static void test_interruptible(void)
{
	interruptible_waits(0);
	interruptible_waits(SA_RESTART);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	struct rmpsc_config c = { .record_size = RS, .capacity = 2, .max_producers = 1 };
	rmpsc_channel *ch;
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, RMPSC_OPEN_INTERRUPTIBLE));
	rmpsc_producer *p;
	pthread_t t;

	/* A handle attached without the flag keeps waiting through signals. */
	rmpsc_channel *plain;
	CHECK_OK(rmpsc_channel_attach_fd(&plain, rmpsc_channel_fd(ch), 0));
	rmpsc_channel_release(ch);
	struct blocked b3 = { .ch = plain };
	pthread_create(&t, NULL, blocked_recv, &b3);
	for (int i = 0; i < 10; i++) {
		usleep(10000);
		pthread_kill(t, SIGUSR1);
	}
	CHECK(!is_done(&b3), "non-interruptible recv returned %d on a signal", b3.rc);
	p = reg(plain);
	send_rec(p, 6, 0);
	pthread_join(t, NULL);
	CHECK_RC(b3.rc, 1);
	check_rec(b3.buf, 6, 0);
	rmpsc_producer_close(p);
	rmpsc_channel_release(plain);
	signal(SIGUSR1, SIG_DFL);
}

/* --- EFORKED --------------------------------------------------------------- */

static void test_forked_producer(void)
{
	rmpsc_channel *ch = make(RS, 8, 2);
	rmpsc_producer *p = reg(ch);
	uint32_t slot = rmpsc_producer_slot(p);
	send_rec(p, 0, 0);
	pid_t c = fork_child();
	if (c == 0) {
		unsigned char r[RS];
		void *x;
		rec_fill(r, RS, 0, 1);
		CHECK_RC(rmpsc_producer_send(p, r, RS, 0), RMPSC_EFORKED);
		CHECK(strstr(rmpsc_last_error(), "fork") || strstr(rmpsc_last_error(), "process"),
		      "EFORKED message \"%s\"", rmpsc_last_error());
		CHECK_RC(rmpsc_producer_send(p, r, RS, -1), RMPSC_EFORKED);
		CHECK_RC(rmpsc_producer_reserve(p, 1, 0, &x), RMPSC_EFORKED);
		CHECK_RC(rmpsc_producer_commit(p, 0), RMPSC_EFORKED);
		CHECK_RC(rmpsc_producer_send_many(p, r, 1, 0), RMPSC_EFORKED);
		rmpsc_producer_close(p); /* frees the copy only; the parent's slot is left alone */
		/* The child's own producer works. */
		rmpsc_producer *mine = reg(ch);
		CHECK(rmpsc_producer_slot(mine) != slot, "child got the parent's slot");
		rec_fill(r, RS, 1, 0);
		CHECK_OK(rmpsc_producer_send(mine, r, RS, 0));
		rmpsc_producer_close(mine);
		_exit(0);
	}
	CHECK_RC(reap(c), 0);
	struct rmpsc_stats s;
	struct rmpsc_ring_stats rings[2];
	int n = rmpsc_stats(ch, &s, rings, 2);
	const struct rmpsc_ring_stats *r0 = ring_of(rings, n, slot);
	CHECK(r0 && r0->state == RMPSC_SLOT_ACTIVE && r0->owner_pid == (uint32_t)getpid() && r0->committed == 1,
	      "child's use of the inherited producer changed the parent's slot");
	send_rec(p, 0, 1);
	unsigned char buf[4 * RS];
	uint64_t next[2] = { 0, 0 };
	int got = 0, k;
	while ((k = rmpsc_recv(ch, buf, 4, 0)) > 0)
		for (int i = 0; i < k; i++, got++) {
			uint32_t id;
			uint64_t seq;
			CHECK(rec_check(buf + i * RS, RS, &id, &seq) == 0 && id < 2 && seq == next[id], "record");
			next[id]++;
		}
	CHECK(got == 3 && next[0] == 2 && next[1] == 1, "got %d records", got);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

int main(void)
{
	harness_start("test_channel", 60);
	atexit(cleanup_at_exit);
	test_create_anonymous();
	test_named();
	test_access();
	test_dropped();
	test_attach_anonymous();
	test_register_limit_and_reuse();
	test_consumer_claim();
	test_consumer_shared_handles();
	test_send_recv_read_consume();
	test_send_many();
	test_reservations();
	test_unwritten_reservation();
	test_stats();
	test_close_with_dead_reserver();
	test_forked_producer();
	test_close();
	test_timeouts();
	test_interruptible();
	printf("test_channel: all passed\n");
	return 0;
}
