/*
 * Liveness across PID namespaces: containers of one pod share /dev/shm but not
 * PIDs. A process in a child PID namespace is pid 1 there and its /proc (if it
 * mounts its own) shows nothing of ours, so pids and /proc cannot say who is alive;
 * the kernel's open-file-description locks can.
 *  - producers in child namespaces, with and without their own /proc, stay alive
 *    through 10 s of reclaim sweeps while they send (nothing reclaimed, every
 *    record in order), and once killed are reclaimed with every committed record
 *    delivered;
 *  - the consumer role both ways: held in a child namespace, it cannot be taken
 *    from the host while its holder lives, and is taken once it is killed; held in
 *    the host, a process in a child namespace cannot take it until its holder dies.
 * Needs root (CLONE_NEWPID); skipped with a message where unshare is refused.
 */
#include <sched.h>
#include <sys/mount.h>

#include "children.h"
#include "harness.h"

#define RS             32
#define SEC            1000000000ll
#define MS             1000000ll
#define ALIVE_WINDOW_S 10
#define CLAIM_TRIES    1000 /* claims of a live holder's role that must all be refused */

static rmpsc_channel *ch;

static void pipe_put(int fd, char c)
{
	CHECK(write(fd, &c, 1) == 1, "pipe write: %s", strerror(errno));
}

static char pipe_get(int fd)
{
	char c;
	ssize_t r;
	while ((r = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	CHECK(r == 1, "pipe read: the other side died");
	return c;
}

/*
 * Run fn(arg, link) in a new PID namespace, as its pid 1, with its own /proc
 * (a new mount namespace with proc mounted for the new PID namespace) or with the
 * host's. Returns the host pid of that process; kill it to end it. An
 * intermediate process (which unshares and forks) waits for it and exits with its
 * status.
 */
struct ns_child {
	pid_t middle, pid;
	struct link l;
};

static void start_in_pid_ns(struct ns_child *c, int own_proc, void (*fn)(struct link *l, int arg), int arg)
{
	int hostpid_pipe[2];
	CHECK(pipe(hostpid_pipe) == 0, "pipe");
	c->middle = fork_linked(&c->l);
	if (c->middle == 0) {
		close(hostpid_pipe[0]);
		if (unshare(CLONE_NEWPID | (own_proc ? CLONE_NEWNS : 0)) < 0)
			_exit(40);
		pid_t pid = fork();
		if (pid < 0)
			_exit(41);
		if (pid == 0) {
			close(hostpid_pipe[1]);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getpid() != 1)
				_exit(42);
			if (own_proc && (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
					 mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0))
				_exit(43);
			fn(&c->l, arg);
			_exit(0);
		}
		if (write(hostpid_pipe[1], &pid, sizeof pid) != sizeof pid)
			_exit(44);
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
	close(hostpid_pipe[1]);
	ssize_t r = read(hostpid_pipe[0], &c->pid, sizeof c->pid);
	close(hostpid_pipe[0]);
	if (r != sizeof c->pid) {
		int code = reap(c->middle);
		FAIL("starting a process in a new PID namespace failed (exit %d)", code);
	}
}

/* Kill the namespace's pid 1 (which ends the namespace) and reap the middle process. */
static void kill_ns_child(struct ns_child *c)
{
	kill(c->pid, SIGKILL);
	int code = reap(c->middle);
	CHECK(code == 128 + SIGKILL, "the namespaced process ended with %d, not SIGKILL", code);
	link_close(&c->l);
}

/* ------------------------------------------------------------------------------ */

/* In the namespace: register and send numbered records until killed. */
static void produce_forever(struct link *l, int id)
{
	rmpsc_producer *p;
	int rc = rmpsc_producer_register(ch, &p);
	pipe_put(l->wr, rc == RMPSC_OK ? 'r' : 'E');
	if (rc)
		_exit(50);
	unsigned char r[RS];
	for (uint64_t seq = 0;; seq++) {
		rec_fill(r, RS, (uint32_t)id, seq);
		if (rmpsc_producer_send(p, r, RS, -1))
			_exit(51);
	}
}

static void check_rec_in_order(const unsigned char *r, uint64_t *next, uint32_t nprod)
{
	uint32_t id;
	uint64_t seq;
	CHECK(rec_check(r, RS, &id, &seq) == 0, "corrupt record");
	CHECK(id < nprod, "producer id %u", id);
	CHECK(seq == next[id], "producer %u: seq %llu, expected %llu (lost or duplicated)", id, (unsigned long long)seq,
	      (unsigned long long)next[id]);
	next[id]++;
}

static void test_producers(void)
{
	struct rmpsc_config c = { .record_size = RS, .capacity = 256, .max_producers = 2 };
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));
	struct ns_child kids[2];
	start_in_pid_ns(&kids[0], 1, produce_forever, 0); /* own /proc */
	start_in_pid_ns(&kids[1], 0, produce_forever, 1); /* the host's /proc */
	for (int i = 0; i < 2; i++)
		CHECK(pipe_get(kids[i].l.rd) == 'r', "producer %d (own /proc: %d) could not register", i, i == 0);

	/* Both slots are taken by live processes: a third producer gets none. */
	rmpsc_producer *extra;
	CHECK_RC(rmpsc_producer_register(ch, &extra), RMPSC_ENOSLOT);

	uint64_t next[2] = { 0, 0 };
	unsigned char buf[64 * RS];
	long sweeps = 0;
	for (int64_t end = now_ns() + ALIVE_WINDOW_S * SEC; now_ns() < end;) {
		int n = rmpsc_recv(ch, buf, 64, 10 * MS);
		CHECK(n > 0 || n == RMPSC_ETIMEDOUT, "recv: %d (%s)", n, rmpsc_last_error());
		for (int i = 0; i < n; i++)
			check_rec_in_order(buf + (size_t)i * RS, next, 2);
		CHECK_RC(rmpsc_reclaim_dead(ch), 0);
		sweeps++;
	}
	struct rmpsc_stats st;
	struct rmpsc_ring_stats rings[2];
	CHECK_RC(rmpsc_stats(ch, &st, rings, 2), 2);
	CHECK(st.reclaimed_slots == 0 && st.active_producers == 2, "reclaimed %u, active %u", st.reclaimed_slots,
	      st.active_producers);
	for (int i = 0; i < 2; i++)
		CHECK(rings[i].owner_alive == 1 && rings[i].owner_pid == 1,
		      "slot %u: alive %u, pid %u (the producer is pid 1 in its namespace)", rings[i].slot,
		      rings[i].owner_alive, rings[i].owner_pid);
	CHECK(next[0] > 1000 && next[1] > 1000, "producers sent only %llu and %llu records",
	      (unsigned long long)next[0], (unsigned long long)next[1]);
	printf("alive in child PID namespaces: %ld reclaim sweeps in %d s, none reclaimed; %llu + %llu records\n",
	       sweeps, ALIVE_WINDOW_S, (unsigned long long)next[0], (unsigned long long)next[1]);

	for (int i = 0; i < 2; i++)
		kill_ns_child(&kids[i]);
	CHECK_RC(rmpsc_reclaim_dead(ch), 2);
	for (;;) {
		int n = rmpsc_recv(ch, buf, 64, 0);
		if (n == RMPSC_EEMPTY)
			break;
		CHECK(n > 0, "recv: %d (%s)", n, rmpsc_last_error());
		for (int i = 0; i < n; i++)
			check_rec_in_order(buf + (size_t)i * RS, next, 2);
	}
	CHECK_RC(rmpsc_stats(ch, &st, NULL, 0), 0);
	CHECK(st.committed == next[0] + next[1] && st.consumed == st.committed && st.reclaimed_slots == 2,
	      "committed %llu, consumed %llu, delivered %llu, reclaimed %u", (unsigned long long)st.committed,
	      (unsigned long long)st.consumed, (unsigned long long)(next[0] + next[1]), st.reclaimed_slots);
	/* The drained slots are free again. */
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	rmpsc_producer_close(p);
	printf("killed in child PID namespaces: reclaimed, all %llu committed records delivered\n",
	       (unsigned long long)st.committed);
	rmpsc_channel_release(ch);
}

/* ------------------------------------------------------------------------------ */

/* Hold the consumer role until killed. */
static void hold_consumer(struct link *l, int unused)
{
	(void)unused;
	int rc = rmpsc_consumer_claim(ch);
	pipe_put(l->wr, rc == RMPSC_OK ? 'c' : 'E');
	for (;;)
		pause();
}

/* Try to claim the consumer role: 'b' (busy) while told to keep trying, then claim. */
static void contend_consumer(struct link *l, int unused)
{
	(void)unused;
	for (;;) {
		char cmd = pipe_get(l->rd);
		if (cmd == 'q')
			break;
		int rc = rmpsc_consumer_claim(ch);
		pipe_put(l->wr, rc == RMPSC_ECONSUMER ? 'b' : rc == RMPSC_OK ? 'c' : 'E');
	}
	for (;;)
		pause();
}

static void test_consumer_role(int own_proc)
{
	struct rmpsc_config c = { .record_size = RS, .capacity = 16, .max_producers = 1 };
	CHECK_OK(rmpsc_channel_create(&ch, NULL, &c, 0));

	/* Held in a child namespace: the host cannot take it while the holder lives. */
	struct ns_child holder;
	start_in_pid_ns(&holder, own_proc, hold_consumer, 0);
	CHECK(pipe_get(holder.l.rd) == 'c', "the namespaced consumer could not claim");
	int tries;
	for (tries = 0; tries < CLAIM_TRIES; tries++)
		CHECK_RC(rmpsc_consumer_claim(ch), RMPSC_ECONSUMER);
	CHECK(strstr(rmpsc_last_error(), "live process 1"), "message: %s", rmpsc_last_error());
	kill_ns_child(&holder);
	CHECK_OK(rmpsc_consumer_claim(ch));
	rmpsc_consumer_release(ch);

	/* Held in the host (by a plain child): a namespaced process cannot take it. */
	struct link hl;
	pid_t host_holder = fork_linked(&hl);
	if (host_holder == 0) {
		hold_consumer(&hl, 0);
		_exit(0);
	}
	CHECK(pipe_get(hl.rd) == 'c', "the host consumer could not claim");
	struct ns_child contender;
	start_in_pid_ns(&contender, own_proc, contend_consumer, 0);
	int busy;
	for (busy = 0; busy < CLAIM_TRIES; busy++) {
		pipe_put(contender.l.wr, 't');
		char got = pipe_get(contender.l.rd);
		CHECK(got == 'b',
		      "a process in a child PID namespace (own /proc: %d) took the consumer role from a "
		      "live holder (answer %c)",
		      own_proc, got);
	}
	kill(host_holder, SIGKILL);
	CHECK_RC(reap(host_holder), 128 + SIGKILL);
	pipe_put(contender.l.wr, 't');
	CHECK(pipe_get(contender.l.rd) == 'c', "the namespaced process could not take over from a dead holder");
	kill_ns_child(&contender);
	link_close(&hl);
	printf("consumer role across PID namespaces (own /proc: %d): %d + %d refused claims while alive, taken "
	       "after death\n",
	       own_proc, tries, busy);
	rmpsc_channel_release(ch);
}

static void skip_unless_namespaces(void)
{
	if (geteuid() != 0) {
		printf("needs root to create PID namespaces\n");
		exit(SKIP_EXIT);
	}
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(unshare(CLONE_NEWPID | CLONE_NEWNS) == 0 ? 0 : 1);
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("unshare(CLONE_NEWPID | CLONE_NEWNS) is not permitted here\n");
		exit(SKIP_EXIT);
	}
}

int main(void)
{
	harness_start("test_proc_namespaces", 120);
	atexit(children_kill_all);
	skip_unless_namespaces();
	test_producers();
	test_consumer_role(1);
	test_consumer_role(0);
	printf("test_proc_namespaces: all passed\n");
	return 0;
}
