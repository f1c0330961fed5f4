/*
 * Readiness fds and coalesced wake-ups against the faults an adversarial review
 * found: one case per finding, each asserting what ringmpsc.h and
 * docs/ARCHITECTURE.md 2.3 promise; each failed on a0475dc, the code it was
 * found in (the eighth then asserted EFORKED, which the header listed; the header
 * now says what a forked handle does, and the case checks that). Cases 9..12 come
 * from a second review and fail on da5fac2 (11 and 12 need root; skipped otherwise).
 * Cases 13 and 14 come from a third review and fail on d7b6925 (14 needs root).
 *
 * Every case runs in a child process of its own (a crash or hang of one does not
 * hide the others); `test_ready_faults NAME` runs one case. Each case records the
 * ids of the channels it made in a shared page, so the runner removes their
 * readiness FIFOs (and names) from /dev/shm even when the case failed.
 *
 * Crash and stop points that cannot be hit by timing alone are emulated as in
 * test_groups_faults.c: raw stores into the mapped region that a process would
 * have made just before it was stopped, through the accessors of group.h.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "children.h"
#include "group.h"
#include "harness.h"
#include "notify.h"

#define MS 1000000ll

int setgroups(size_t size, const gid_t *list); /* <grp.h>, whose struct group clashes with group.h */

/* --- clean-up shared with the runner ---------------------------------------- */

#define MAX_IDS 16
struct cleanup {
	uint64_t ids[MAX_IDS];
	char names[4][64];
};
static struct cleanup *g_clean;

static void remember(rmpsc_channel *ch, const char *name)
{
	for (int i = 0; i < MAX_IDS; i++)
		if (!g_clean->ids[i]) {
			g_clean->ids[i] = ch->hdr->channel_id;
			break;
		}
	if (name)
		for (int i = 0; i < 4; i++)
			if (!g_clean->names[i][0]) {
				snprintf(g_clean->names[i], sizeof g_clean->names[i], "%s", name);
				break;
			}
}

/* Remove every FIFO of the channel with this id from /dev/shm. */
static void remove_fifos(uint64_t id)
{
	char prefix[64];
	int n = snprintf(prefix, sizeof prefix, ".ringmpsc-%016llx-", (unsigned long long)id);
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, (size_t)n))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static void clean_all(void)
{
	for (int i = 0; i < MAX_IDS; i++)
		if (g_clean->ids[i])
			remove_fifos(g_clean->ids[i]);
	for (int i = 0; i < 4; i++)
		if (g_clean->names[i][0])
			rmpsc_unlink(g_clean->names[i]);
	memset(g_clean, 0, sizeof *g_clean);
}

/* --- helpers ------------------------------------------------------------------ */

static rmpsc_channel *make(const char *name, uint32_t cap, uint32_t maxp, uint32_t maxc)
{
	rmpsc_channel *ch;
	struct rmpsc_config c = { .record_size = 8, .capacity = cap, .max_producers = maxp, .max_consumers = maxc };
	if (name)
		rmpsc_unlink(name);
	CHECK_OK(rmpsc_channel_create(&ch, name, &c, 0));
	remember(ch, name);
	return ch;
}

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);
	CHECK(r >= 0, "poll: %s", strerror(errno));
	return r == 1 && (p.revents & POLLIN);
}

static void send_one(rmpsc_producer *p, uint64_t v)
{
	CHECK_OK(rmpsc_producer_send(p, &v, sizeof v, 0));
}

/* FIFOs of this channel in /dev/shm. */
static int count_fifos(uint64_t id)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, ".ringmpsc-%016llx-", (unsigned long long)id);
	DIR *d = opendir("/dev/shm");
	CHECK(d, "opendir /dev/shm: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

/* A member's FIFO path, as notify.c names it. */
static void member_fifo_path(rmpsc_channel *ch, char *buf, size_t n)
{
	uint32_t e = (uint32_t)ch->member;
	snprintf(buf, n, "/dev/shm/.ringmpsc-%016llx-m%u-%016llx", (unsigned long long)ch->hdr->channel_id, e,
		 (unsigned long long)load_acquire(&member_at(ch, e)->fifo_gen));
}

/* A child process that joins the default group as a member and then waits to be
 * stopped or killed: its pid in *kid, its member place returned. */
static int64_t peer_member(rmpsc_channel *ch, pid_t *kid)
{
	struct link l;
	*kid = fork_linked(&l);
	if (*kid == 0) {
		rmpsc_channel *h;
		CHECK_OK(rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(ch), 0));
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		int64_t place = h->member;
		CHECK(write(l.wr, &place, 8) == 8, "report");
		for (;;)
			pause();
	}
	int64_t place;
	CHECK(read(l.rd, &place, 8) == 8, "member child did not report");
	link_close(&l);
	return place;
}

/* ------------------------------------------------------------------------------ */
/*
 * 1. rmpsc_unlink removes the FIFOs of live members and producers. ringmpsc.h:
 * "Remove a name (the region lives on while mapped)"; unlinking a name once every
 * process has opened it is the usual POSIX shm idiom. rmpsc__fifo_remove_all
 * removes every FIFO with the channel's id, so a producer that has not cached the
 * member's FIFO yet finds no file, takes the announcement (fetch_and) and signals
 * nobody: the armed consumer (wait_ns -1) sleeps for ever. Same for a producer
 * waiting for space.
 */
static void unlink_removes_live_fifos(void)
{
	const char *name = "/rmpsc-test-rf-unlink";
	rmpsc_channel *ch = make(name, 4, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	int pfd = rmpsc_producer_ready_fd(p);
	CHECK(pfd >= 0, "producer_ready_fd: %s", rmpsc_last_error());
	int64_t w;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	CHECK(w > 0, "armed (%lld)", (long long)w);
	/* Everyone has it open: the name can go; the region lives on. */
	CHECK_OK(rmpsc_unlink(name));
	send_one(p, 1);
	int member_woken = readable(fd, 500);
	/* And the producer's side: fill, arm, free space. */
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), 1);
	for (uint64_t i = 0; i < 4; i++)
		send_one(p, i);
	CHECK_RC(rmpsc_producer_ready_arm(p, &w), 0);
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), 1);
	int producer_woken = readable(pfd, 500);
	CHECK(member_woken, "a record published after rmpsc_unlink did not make the armed member's fd readable "
			    "(its FIFO was removed while in use: the wake-up is lost)");
	CHECK(producer_woken, "space freed after rmpsc_unlink did not make the armed producer's fd readable");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 2. A waker that cannot open the FIFO (EMFILE here; EACCES for a waker of another
 * uid that got the region by fork or descriptor) has already cleared the member's
 * bit (fetch_and in rmpsc__wake_members_slow) and drops the signal silently
 * (fifo_signal: "gone"). The member stays armed with no announcement left: no
 * later publish wakes it either.
 */
static void fifo_open_failure_loses_wake(void)
{
	rmpsc_channel *ch = make(NULL, 64, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	int64_t w;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	/* The producer's process is out of descriptors for a moment. */
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
	struct rlimit low = { 128, rl.rlim_max };
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit: %s", strerror(errno));
	int dups[128], nd = 0;
	while (nd < 128 && (dups[nd] = dup(fd)) >= 0)
		nd++;
	CHECK(nd < 128 && errno == EMFILE, "could not exhaust descriptors");
	send_one(p, 1); /* the publish itself succeeds */
	while (nd > 0)
		close(dups[--nd]);
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit back");
	int first = readable(fd, 300);
	send_one(p, 2); /* descriptors are back: a later publish? */
	int later = readable(fd, 300);
	/* The first wake-up cannot be sent (no descriptor to open the FIFO with): the
	 * waker leaves the announcement, so the next publish sends it. */
	CHECK(first || later, "the armed fd never became readable: the waker took the announcement and could not "
			      "open the FIFO (EMFILE), and no later publish signals it either");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 3. A consumer call that sleeps on the same membership disarms the readiness fd:
 * wait_for_data_slow overwrites the place's wait_how with WAIT_FUTEX, and its
 * finish() withdraws the place's one bit. An event loop armed (wait_ns -1), ran
 * another handler that called rmpsc_recv with a timeout on this handle (or any
 * handle of the process in the group), and went back to its poll: the fd is no
 * longer armed and never turns readable.
 */
static void blocking_call_disarms_fd(void)
{
	rmpsc_channel *ch = make(NULL, 64, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	int64_t w;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	CHECK(w > 0, "armed");
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 5 * MS), RMPSC_ETIMEDOUT); /* one thread at a time: fine */
	send_one(p, 7);
	CHECK(readable(fd, 500), "the fd armed before a timed rmpsc_recv (which timed out) is not readable after a "
				 "record: the blocking wait took the announcement with it");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 4. A fenced ring (impossible positions: reported once as ECORRUPT, "never read
 * again") still counts as records in untaken_records (`n <= capacity ? n : 1`), so
 * rmpsc_ready_arm returns 1 ("records are there") for ever while every
 * rmpsc_recv(0) returns EEMPTY: the documented loop spins at 100% CPU and never
 * sleeps. A blocking rmpsc_recv sleeps fine in the same state.
 */
static void fenced_ring_arm_spins(void)
{
	rmpsc_channel *ch = make(NULL, 64, 2, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p, *bad;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK_OK(rmpsc_producer_register(ch, &bad));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	uint32_t s = rmpsc_producer_slot(bad);
	/* A hostile (or broken) producer writes an impossible tail. */
	struct ring_ctrl *c = slot_ctrl(ch, s);
	store_release(&c->tail, load_relaxed(&c->tail) + 3ull * ch->L.capacity);
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_ECORRUPT); /* fenced off, reported once */
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	CHECK_RC(rmpsc_recv(ch, &v, 1, 20 * MS), RMPSC_ETIMEDOUT); /* the blocking call is fine */
	/* The documented loop, bounded. */
	int armed = 0, spins = 0;
	int64_t until = now_ns() + 200 * MS;
	while (now_ns() < until && !armed) {
		int n = rmpsc_recv(ch, &v, 1, 0);
		CHECK_RC(n, RMPSC_EEMPTY);
		int64_t wt;
		int a = rmpsc_ready_arm(ch, &wt);
		CHECK(a == 0 || a == 1, "ready_arm: %s", rmpsc_last_error());
		if (a == 0)
			armed = 1;
		else
			spins++;
	}
	CHECK(armed,
	      "rmpsc_ready_arm said \"records are there\" %d times in 200 ms while rmpsc_recv(0) kept "
	      "returning EEMPTY: a fenced ring counts as records, the event loop never sleeps",
	      spins);
	(void)fd;
	rmpsc_producer_close(bad);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 5. Records the member cannot take now (a claim lock held by a live peer that is
 * stopped or descheduled between its CAS of the lock and its release; the same for
 * a solo member stopped inside its busy bracket while a joiner waits, or the group
 * lock): rmpsc_recv(0) reports EEMPTY (TAKE_BUSY), rmpsc_ready_arm counts them in
 * untaken_records and returns 1, at once, again and again. A blocking call sleeps
 * BUSY_POLL_NS slices in that state; the readiness loop spins at 100% CPU for as
 * long as the peer is stopped.
 */
static void busy_claim_lock_arm_spins(void)
{
	rmpsc_channel *ch = make(NULL, 64, 1, 2);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	pid_t kid;
	int64_t place = peer_member(ch, &kid);
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0)); /* two members: SHARED */
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	for (uint64_t i = 0; i < 4; i++)
		send_one(p, i);
	/* The peer took ring 0's claim lock and was stopped right after its CAS. */
	store_release(&gpos_at(ch, ch->group, 0)->lock, (uint64_t)place + 1);
	kill(kid, SIGSTOP);
	int armed = 0, spins = 0;
	int64_t until = now_ns() + 200 * MS;
	while (now_ns() < until && !armed) {
		uint64_t v;
		int n = rmpsc_recv(ch, &v, 1, 0);
		CHECK_RC(n, RMPSC_EEMPTY);
		int64_t wt;
		int a = rmpsc_ready_arm(ch, &wt);
		CHECK(a == 0 || a == 1, "ready_arm: %s", rmpsc_last_error());
		if (a == 0 && wt > 0)
			armed = 1;
		else
			spins++;
	}
	kill(kid, SIGCONT);
	CHECK(armed,
	      "with a claim lock held by a stopped peer, rmpsc_ready_arm returned 1 %d times in 200 ms while "
	      "rmpsc_recv(0) returned EEMPTY: the event loop busy-spins (a blocking call sleeps 1 ms slices)",
	      spins);
	(void)fd;
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 6. FIFOs of an anonymous (memfd) channel are world-readable and world-writable:
 * rmpsc__fifo_create copies the region file's mode, and a memfd's is 0777. Their
 * names are listed in /dev/shm (sticky, world-readable), so any local user can
 * open one and read its bytes (steal wake-ups: the armed consumer sleeps for ever)
 * or write them. "Whoever may open the region may open its FIFOs" does not hold:
 * nobody may open an anonymous region by name. Now FIFOs are 0622 on every
 * channel: only the owner reads (nobody can take a wake-up away); anyone may write
 * a byte, at worst a spurious wake-up, so a producer that dropped privileges can
 * still wake (case 12). The case checks that nobody else may read.
 */
static void anon_fifo_world_accessible(void)
{
	rmpsc_channel *ch = make(NULL, 64, 1, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	CHECK(rmpsc_ready_fd(ch) >= 0, "ready_fd: %s", rmpsc_last_error());
	CHECK(rmpsc_producer_ready_fd(p) >= 0, "producer_ready_fd: %s", rmpsc_last_error());
	char path[128];
	member_fifo_path(ch, path, sizeof path);
	struct stat st;
	CHECK(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	struct stat rst;
	CHECK(fstat(rmpsc_channel_fd(ch), &rst) == 0, "fstat region");
	CHECK((st.st_mode & 0044) == 0 && (st.st_mode & 0600) == 0600,
	      "the anonymous channel's member FIFO %s has mode %03o (the memfd's is %03o): a local user other than "
	      "its owner can read (steal) its wake-ups",
	      path, (unsigned)(st.st_mode & 0777), (unsigned)(rst.st_mode & 0777));
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 7. A producer that dies (or exits without rmpsc_producer_close) leaves its FIFO:
 * reclaim_slot does not remove it (members' FIFOs are removed on recovery,
 * clear_wait in settle), only a later claim of the same slot or rmpsc_unlink
 * does. For an anonymous channel there is no name to unlink: once the last process
 * lets go, the file stays in /dev/shm for ever.
 */
static void dead_producer_fifo_leaks(void)
{
	rmpsc_channel *ch = make(NULL, 64, 2, 1);
	uint64_t id = ch->hdr->channel_id;
	pid_t c = fork_child();
	if (c == 0) {
		rmpsc_producer *p;
		if (rmpsc_producer_register(ch, &p) || rmpsc_producer_ready_fd(p) < 0)
			_exit(2);
		_exit(0); /* no rmpsc_producer_close */
	}
	CHECK(reap(c) == 0, "child made its producer FIFO");
	CHECK(count_fifos(id) == 1, "the dead producer's FIFO is there");
	CHECK(rmpsc_reclaim_dead(ch) >= 1, "the dead producer's slot is reclaimed");
	int left = count_fifos(id);
	rmpsc_channel_release(ch); /* the last user: nothing can remove it after this */
	CHECK(left == 0,
	      "reclaiming the dead producer's slot left its FIFO in /dev/shm (%d file); an anonymous "
	      "channel has no name to unlink, so it stays there for ever",
	      left);
}

/* ------------------------------------------------------------------------------ */
/*
 * 8. A handle inherited through fork is the child's own member, like every consumer
 * call on it (ringmpsc.h): its readiness fd is not the parent's (arm says to make
 * one; ready_fd makes the child's own), and the parent's stays armed and working.
 */
static void forked_handle_gets_its_own_fd(void)
{
	rmpsc_channel *ch = make(NULL, 64, 1, 2);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	int64_t w;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	pid_t c = fork_child();
	if (c == 0) {
		int64_t wt;
		if (rmpsc_ready_arm(ch, &wt) != RMPSC_EINVAL)
			_exit(3);
		int cfd = rmpsc_ready_fd(ch);
		if (cfd < 0)
			_exit(4);
		int rc = rmpsc_ready_arm(ch, &wt);
		rmpsc_channel_release(ch);
		_exit(rc == 0 ? 0 : 5);
	}
	int rc = reap(c);
	CHECK(rc == 0,
	      "the forked child's readiness calls: exit %d (3: arm without its own fd did not say EINVAL, 4: "
	      "no fd of its own, 5: its own fd did not arm)",
	      rc);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	send_one(p, 1);
	CHECK(readable(fd, 1000), "the parent's fd still works after the child's");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/* Round two. */
/*
 * 9. An orphan's records (a member left with a read open: its claim goes to the
 * group) are adopted under the group's lock (adopt_orphan, group_trylock). While
 * a live peer holds that lock (stopped, or descheduled, inside settle or a
 * conversion), adopt_orphan gives up and the sweep finds nothing: take_span
 * returns 0, not TAKE_BUSY, so take_busy stays 0; rmpsc_ready_arm sees
 * rmpsc__has_orphans and returns 1 ("records are there") at once, again and
 * again, while every rmpsc_recv(0) returns EEMPTY. The readiness loop spins at
 * 100% CPU for as long as the holder is stopped; a blocking call sleeps.
 * (Finding 5 of round one, the claim lock, fixed for TAKE_BUSY only.)
 */
static void orphan_with_busy_group_lock_arm_spins(void)
{
	rmpsc_channel *ch = make(NULL, 64, 1, 3);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY); /* a member: SOLO */
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	/* B: a peer that joins and stays (it will hold the group's lock, stopped). */
	struct link lb;
	pid_t b = fork_linked(&lb);
	if (b == 0) {
		rmpsc_channel *h;
		CHECK_OK(rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(ch), 0));
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		uint64_t id = owner_id(load_acquire(&member_at(h, (uint32_t)h->member)->owner));
		CHECK(write(lb.wr, &id, 8) == 8, "report");
		for (;;)
			pause();
	}
	uint64_t b_id;
	CHECK(read(lb.rd, &b_id, 8) == 8, "peer B did not report");
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY); /* ends our solo mode: SHARED */
	send_one(p, 1);
	send_one(p, 2);
	/* A: joins, reads both records (a claim) and leaves without advancing: its
	 * claim becomes an orphan of the group (at-least-once). */
	pid_t a = fork_child();
	if (a == 0) {
		rmpsc_channel *h;
		CHECK_OK(rmpsc_channel_attach_fd(&h, rmpsc_channel_fd(ch), 0));
		CHECK_OK(rmpsc_consumer_join(h, NULL, 0));
		const void *ptr;
		uint32_t slot;
		if (rmpsc_read(h, 2, 2000 * MS, &ptr, &slot) != 2)
			_exit(2);
		rmpsc_consumer_leave(h);
		_exit(0);
	}
	CHECK(reap(a) == 0, "member A read 2 records and left");
	CHECK(rmpsc__has_orphans(ch), "A's claim is an orphan of the group");
	/* B is stopped while it holds the group's lock (inside settle, say). */
	kill(b, SIGSTOP);
	store_release(&group_at(ch, ch->group)->lock, b_id);
	int armed = 0, spins = 0;
	int64_t until = now_ns() + 200 * MS;
	while (now_ns() < until && !armed) {
		int n = rmpsc_recv(ch, &v, 1, 0);
		CHECK_RC(n, RMPSC_EEMPTY);
		int64_t wt;
		int r = rmpsc_ready_arm(ch, &wt);
		CHECK(r == 0 || r == 1, "ready_arm: %s", rmpsc_last_error());
		if (r == 0 && wt > 0)
			armed = 1;
		else
			spins++;
	}
	/* A blocking call in the same state sleeps (250 ms liveness slices). */
	int64_t t0 = now_ns();
	int blocking = rmpsc_recv(ch, &v, 1, 30 * MS);
	int64_t took = now_ns() - t0;
	store_release(&group_at(ch, ch->group)->lock, 0);
	kill(b, SIGCONT);
	CHECK(blocking == RMPSC_ETIMEDOUT && took >= 25 * MS, "the blocking call: %d after %lld ms", blocking,
	      (long long)(took / MS));
	CHECK(armed,
	      "with an orphan in the group and the group's lock held by a stopped peer, rmpsc_ready_arm returned 1 "
	      "%d times in 200 ms while rmpsc_recv(0) returned EEMPTY: the event loop busy-spins",
	      spins);
	(void)fd;
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* Descriptors of this process open on removed readiness FIFOs of channel `id`. */
static int fds_on_removed_fifos(uint64_t id)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "/dev/shm/.ringmpsc-%016llx-", (unsigned long long)id);
	DIR *d = opendir("/proc/self/fd");
	CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], target[256];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t r = readlink(path, target, sizeof target - 1);
		if (r <= 0)
			continue;
		target[r] = 0;
		n += !strncmp(target, prefix, strlen(prefix)) && strstr(target, "(deleted)") != NULL;
	}
	closedir(d);
	return n;
}

/*
 * 10. Wakers cache the descriptor of every FIFO they signal (struct fifo_ref: the
 * consumer handle one per producer slot, a producer handle one per member place)
 * and close it only when they signal a later generation of the same place. A
 * FIFO whose waiter left (producer closed, member left) is removed from /dev/shm,
 * but the cached descriptor stays open for the handle's life: a consumer serving
 * producers that come and go, each of which once waited for space on its
 * readiness fd, keeps one descriptor per slot on deleted FIFOs (up to
 * max_producers, 1024: the default RLIMIT_NOFILE of the whole process); each
 * producer handle one per member place that ever waited (up to 256).
 */
static void cached_fds_of_gone_fifos_leak(void)
{
	enum {
		N = 16
	};
	rmpsc_channel *ch = make(NULL, 2, N, 1);
	uint64_t id = ch->hdr->channel_id;
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	for (int i = 0; i < N; i++) {
		rmpsc_producer *p;
		CHECK_OK(rmpsc_producer_register(ch, &p));
		CHECK(rmpsc_producer_ready_fd(p) >= 0, "producer_ready_fd: %s", rmpsc_last_error());
		send_one(p, 1);
		send_one(p, 2); /* full */
		int64_t w;
		CHECK_RC(rmpsc_producer_ready_arm(p, &w), 0);
		CHECK_RC(rmpsc_recv(ch, &v, 1, 0), 1); /* frees space: the consumer signals (and caches) its FIFO */
		CHECK(readable(rmpsc_producer_ready_fd(p), 500), "producer %d woken", i);
		rmpsc_producer_close(p); /* its FIFO is removed; one record stays, so the next takes a new slot */
	}
	int left = fds_on_removed_fifos(id);
	CHECK(left <= 1,
	      "after %d producers each waited once for space and closed, this process holds %d descriptors on "
	      "their removed readiness FIFOs (the consumer handle's cache): one per slot, for the handle's life",
	      N, left);
	rmpsc_channel_release(ch);
}

/*
 * 11. A named channel shared through its group (mode 0660, group G): the
 * consumer's FIFO gets the region's mode bits (fchmod) but its creator's primary
 * group, not G. notify.c: "Whoever may open a named region may open its FIFOs";
 * here a producer in G (not the FIFO creator's group) opens the region, but its
 * open of the FIFO fails with EACCES: the armed consumer is never woken by a
 * publish (only by the 1 s recheck), and every publish pays a failing open()
 * (the waker leaves the announcement for the next one). Needs root (to be two
 * other users); skipped otherwise.
 */
static void group_shared_region_fifo_refuses_group(void)
{
	if (geteuid() != 0) {
		printf("(group_shared_region_fifo_refuses_group: skipped, needs root) ");
		return;
	}
	enum {
		G = 43210,
		CUID = 43211,
		PUID = 43212
	};
	const char *name = "/rmpsc-test-rf-group";
	rmpsc_channel *ch = make(name, 64, 1, 1);
	CHECK(fchown(rmpsc_channel_fd(ch), PUID, G) == 0 && fchmod(rmpsc_channel_fd(ch), 0660) == 0, "chown/chmod");
	struct link l;
	pid_t c = fork_linked(&l);
	if (c == 0) { /* the consumer: another user in group G */
		gid_t g = G;
		if (setgroups(1, &g) || setgid(CUID) || setuid(CUID))
			_exit(90);
		rmpsc_channel *h;
		if (rmpsc_channel_open(&h, name, 0))
			_exit(91);
		rmpsc_consumer_coalesce(h, 1, 0);
		int fd = rmpsc_ready_fd(h);
		int64_t w;
		if (fd < 0 || rmpsc_ready_arm(h, &w) != 0)
			_exit(92);
		char x = 1;
		if (write(l.wr, &x, 1) != 1)
			_exit(93);
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int r = poll(&pf, 1, 600); /* the producer sends at once; the recheck is 1 s */
		_exit(r == 1 ? 0 : 1);
	}
	char x;
	CHECK(read(l.rd, &x, 1) == 1, "the consumer did not arm (setup failed)");
	pid_t p = fork_child();
	if (p == 0) { /* the producer: the region's owner, in group G */
		gid_t g = G;
		if (setgroups(1, &g) || setgid(G) || setuid(PUID))
			_exit(90);
		rmpsc_channel *h;
		rmpsc_producer *pr;
		uint64_t v = 5;
		if (rmpsc_channel_open(&h, name, 0) || rmpsc_producer_register(h, &pr) ||
		    rmpsc_producer_send(pr, &v, 8, 0))
			_exit(91);
		_exit(0);
	}
	CHECK(reap(p) == 0, "the producer sent");
	int rc = reap(c);
	CHECK(rc == 0 || rc == 1, "consumer setup: exit %d", rc);
	CHECK(rc == 0,
	      "the armed consumer's fd did not become readable within 600 ms of a publish: its FIFO (mode %s, "
	      "group: the consumer's own) cannot be opened by a producer of the region's group",
	      "0660 as the region");
	rmpsc_channel_release(ch);
}

/*
 * 12. The deployment attach.c is built for: a root master makes the channel (a
 * named region, 0600 root's) and forks workers that switch to `nobody` and then
 * produce through the inherited handle. A consumer of the master's uid waits on
 * its readiness fd. The workers cannot open its FIFO (0600, root's) by name: no
 * publish of theirs ever wakes the fd (the 1 s recheck does), and every publish
 * pays a failing open() in the slow path, since the waker puts the announcement
 * back for the next publish, which fails the same way. Needs root.
 */
static void privilege_dropped_producer_cannot_wake(void)
{
	if (geteuid() != 0) {
		printf("(privilege_dropped_producer_cannot_wake: skipped, needs root) ");
		return;
	}
	const char *name = "/rmpsc-test-rf-privdrop";
	rmpsc_channel *ch = make(name, 64, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	int64_t w;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	uint64_t wakes0 = load_relaxed(&ch->hdr->consumer_wakes);
	pid_t c = fork_child();
	if (c == 0) { /* a worker: inherited the handle as root, then dropped to nobody */
		if (setgid(65534) || setuid(65534))
			_exit(90);
		rmpsc_producer *p;
		if (rmpsc_producer_register(ch, &p))
			_exit(91);
		for (uint64_t i = 0; i < 8; i++)
			if (rmpsc_producer_send(p, &i, 8, 0))
				_exit(92);
		rmpsc_producer_close(p);
		_exit(0);
	}
	CHECK(reap(c) == 0, "the worker sent");
	int woken = readable(fd, 600);
	uint64_t tries = load_relaxed(&ch->hdr->consumer_wakes) - wakes0;
	CHECK(woken,
	      "8 records from a worker that dropped privileges did not make the armed fd readable within 600 ms "
	      "(%llu wake-ups tried, every one an open() of the 0600 FIFO that fails): the consumer hears of them "
	      "only from its 1 s recheck",
	      (unsigned long long)tries);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 13. (Third review.) A blocking wait that once found what it needed held by a
 * peer (TAKE_BUSY: a claim lock, the group's lock an orphan's adoption needs)
 * sets data_wait.busy and .polling, and nothing ever clears them: the rest of the
 * call sleeps in BUSY_POLL_NS (1 ms) slices, however long it waits for the next
 * record. Here the peer (stopped while it held ring 0's claim lock) takes its
 * claim 30 ms into a 400 ms rmpsc_recv on an otherwise idle channel: the call then
 * wakes about 370 times for nothing, where it should sleep (250 ms liveness slices,
 * so at most a few wake-ups).
 */
static void busy_once_polls_whole_wait(void)
{
	rmpsc_channel *ch = make(NULL, 64, 1, 2);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	pid_t kid;
	int64_t place = peer_member(ch, &kid);
	CHECK_OK(rmpsc_consumer_join(ch, NULL, 0)); /* two members: SHARED */
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY);
	for (uint64_t i = 0; i < 4; i++)
		send_one(p, i);
	/* The peer took ring 0's claim lock (stopped right after its CAS). */
	uint32_t g = ch->group;
	store_release(&gpos_at(ch, g, 0)->lock, (uint64_t)place + 1);
	/* 30 ms later it finishes: takes all four records as its claim, unlocks. */
	pid_t helper = fork_child();
	if (helper == 0) {
		usleep(30000);
		struct member *mb = member_at(ch, (uint32_t)place);
		uint64_t cursor = load_acquire(&gpos_at(ch, g, 0)->cursor), tail = load_acquire(&slot_ctrl(ch, 0)->tail);
		store_relaxed(&mb->claim_start, cursor);
		store_release(&mb->claim, claim_word(0, tail));
		store_release(&gpos_at(ch, g, 0)->cursor, tail);
		store_release(&gpos_at(ch, g, 0)->lock, 0);
		_exit(0);
	}
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	int64_t t0 = now_ns();
	int n = rmpsc_recv(ch, &v, 1, 400 * MS);
	int64_t took = now_ns() - t0;
	getrusage(RUSAGE_SELF, &r1);
	CHECK(reap(helper) == 0, "helper");
	kill(kid, SIGKILL);
	long switches = r1.ru_nvcsw - r0.ru_nvcsw;
	CHECK(n == RMPSC_ETIMEDOUT, "recv: %d after %lld ms", n, (long long)(took / MS));
	CHECK(switches < 120,
	      "a 400 ms rmpsc_recv that met a busy claim lock in its first 30 ms slept %ld times (voluntary context "
	      "switches): after the peer let go, the rest of the idle wait still polled in 1 ms BUSY_POLL_NS slices",
	      switches);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */
/*
 * 14. (Third review.) Any local user can stop every readiness fd of a channel from
 * being made. FIFO names are predictable: the channel id is in the names already
 * listed in /dev/shm (world-readable), and generations come from one counter that
 * goes up by one per FIFO made. fifo_create skips a name someone else took
 * (EEXIST) only 8 times, then fails. Here a process running as nobody takes the
 * next 16 names of member place 0 (files of its own in the sticky, world-writable
 * /dev/shm, which the consumer cannot remove): rmpsc_ready_fd fails with ESYS
 * ("mkfifo: File exists") for as long as they stay. ARCHITECTURE.md 2.3: "A name
 * someone else took first is skipped." Needs root (to act as another user).
 * Names now carry 32 random bits next to the count: the squatter's guesses (the
 * names as they were) take nothing from us.
 */
static void squatted_fifo_names_refuse_ready_fd(void)
{
	if (geteuid() != 0) {
		printf("  (skipped: needs root)\n");
		return;
	}
	rmpsc_channel *ch = make(NULL, 64, 1, 1);
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_EEMPTY); /* a member: place 0 */
	CHECK(ch->member == 0, "place %d", ch->member);
	uint64_t id = ch->hdr->channel_id;
	uint32_t next = load_relaxed(&ch->hdr->fifo_counter);
	pid_t c = fork_child();
	if (c == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(90);
		for (uint32_t g = next + 1; g <= next + 16; g++) {
			char path[96];
			snprintf(path, sizeof path, "/dev/shm/.ringmpsc-%016llx-m0-%u", (unsigned long long)id, g);
			if (mkfifo(path, 0600))
				_exit(91);
		}
		_exit(0);
	}
	CHECK(reap(c) == 0, "the squatter made its FIFOs");
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0,
	      "rmpsc_ready_fd failed (%d: %s) because another user took the next 16 FIFO names of the place; the "
	      "EEXIST loop gives up after 8 predictable generations",
	      fd, rmpsc_last_error());
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "unlink_removes_live_fifos", unlink_removes_live_fifos },
	{ "fifo_open_failure_loses_wake", fifo_open_failure_loses_wake },
	{ "blocking_call_disarms_fd", blocking_call_disarms_fd },
	{ "fenced_ring_arm_spins", fenced_ring_arm_spins },
	{ "busy_claim_lock_arm_spins", busy_claim_lock_arm_spins },
	{ "anon_fifo_world_accessible", anon_fifo_world_accessible },
	{ "dead_producer_fifo_leaks", dead_producer_fifo_leaks },
	{ "forked_handle_gets_its_own_fd", forked_handle_gets_its_own_fd },
	{ "orphan_with_busy_group_lock_arm_spins", orphan_with_busy_group_lock_arm_spins },
	{ "cached_fds_of_gone_fifos_leak", cached_fds_of_gone_fifos_leak },
	{ "group_shared_region_fifo_refuses_group", group_shared_region_fifo_refuses_group },
	{ "privilege_dropped_producer_cannot_wake", privilege_dropped_producer_cannot_wake },
	{ "busy_once_polls_whole_wait", busy_once_polls_whole_wait },
	{ "squatted_fifo_names_refuse_ready_fd", squatted_fifo_names_refuse_ready_fd },
};

int main(int argc, char **argv)
{
	harness_start("test_ready_faults", 120);
	atexit(children_kill_all);
	g_clean = mmap(NULL, sizeof *g_clean, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(g_clean != MAP_FAILED, "mmap");
	memset(g_clean, 0, sizeof *g_clean);
	rmpsc__spin_ns = 0;
	int failed = 0, ran = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		ran++;
		pid_t kid = fork_child();
		if (kid == 0) {
			alarm(20);
			cases[i].fn();
			exit(0);
		}
		int rc = reap(kid);
		clean_all();
		printf("%s %s%s\n", rc == 0 ? "ok  " : "FAIL", cases[i].name,
		       rc == 0    ? ""
		       : rc > 128 ? " (killed by a signal)"
				  : "");
		failed += rc != 0;
	}
	CHECK(ran > 0, "no case named %s", argc > 1 ? argv[1] : "");
	return failed ? 1 : 0;
}
