/*
 * Owner liveness and role hand-over, the cases a naive "pid + /proc state" check
 * gets wrong:
 *  - a process whose main thread exited while others run is alive (its /proc
 *    state is 'Z'): its slot is not reclaimed;
 *  - a process that execs keeps its pid, but its new image holds nothing: the old
 *    image's slot and consumer claim are taken over, a reservation it left open
 *    does not hold up the drain of a closed channel (in either image), and the
 *    slabs it held return to the pool while the process lives on;
 *  - a consumer that releases the role normally leaves received slabs behind:
 *    the next claim returns them; an accepted slab is kept;
 *  - an allocation blocked on an empty pool recovers slabs whose holder is killed;
 *  - a process that opened the channel as root and then dropped privileges can
 *    still attach (nginx workers); one that never could open the file is told why;
 *  - two handles of one process share the consumer role: releasing one keeps it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "harness.h"

#define SEC 1000000000ll

static inline void cpu_relax_test(void)
{
	__asm__ __volatile__("" ::: "memory");
}

static rmpsc_channel *make(const char *name, uint32_t maxp, uint32_t slabs)
{
	rmpsc_channel *ch;
	struct rmpsc_config c = {
		.record_size = 16, .capacity = 64, .max_producers = maxp, .slab_size = slabs ? 64 : 0, .slab_count = slabs
	};
	CHECK_OK(rmpsc_channel_create(&ch, name, &c, 0));
	return ch;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* --- a zombie main thread with live threads is alive ---------------------------- */

static rmpsc_channel *zch;
static int zpipe[2];

static void *zombie_worker(void *arg)
{
	(void)arg;
	/* Register only once the main thread has exited: attaching must not need
	 * /proc/self/fd, which goes with the main thread's files. */
	for (int64_t deadline = now_ns() + 10 * SEC;;) {
		char buf[512] = "", *st;
		FILE *f = fopen("/proc/self/stat", "r");
		if (f) {
			buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
			fclose(f);
		}
		if ((st = strrchr(buf, ')')) && st[1] == ' ' && st[2] == 'Z')
			break;
		if (now_ns() > deadline)
			_exit(4);
		usleep(1000);
	}
	rmpsc_producer *p;
	char ok = rmpsc_producer_register(zch, &p) == 0 ? 'y' : 'n';
	if (write(zpipe[1], &ok, 1) != 1)
		_exit(3);
	for (;;)
		pause(); /* stays alive, holding the slot */
	return NULL;
}

static void test_zombie_leader(void)
{
	zch = make(NULL, 1, 0);
	CHECK(pipe(zpipe) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		pthread_t t;
		pthread_create(&t, NULL, zombie_worker, NULL);
		pthread_exit(NULL); /* the main thread leaves; the process lives on */
	}
	char ok;
	CHECK(read(zpipe[0], &ok, 1) == 1 && ok == 'y', "child registered");
	/* Wait until the child's main thread has exited: /proc shows it as 'Z'. */
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	for (int64_t deadline = now_ns() + 10 * SEC;;) {
		char buf[512] = "", *st;
		FILE *f = fopen(path, "r");
		if (f) {
			buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
			fclose(f);
		}
		if ((st = strrchr(buf, ')')) && st[1] == ' ' && st[2] == 'Z')
			break;
		CHECK(now_ns() < deadline, "the child's main thread did not exit within 10 s");
		usleep(1000);
	}
	CHECK_RC(rmpsc_reclaim_dead(zch), 0);
	rmpsc_producer *p;
	CHECK_RC(rmpsc_producer_register(zch, &p), RMPSC_ENOSLOT);
	reap(pid);
	CHECK_RC(rmpsc_reclaim_dead(zch), 1); /* now it is dead */
	CHECK_OK(rmpsc_producer_register(zch, &p));
	rmpsc_producer_close(p);
	rmpsc_channel_release(zch);
	close(zpipe[0]);
	close(zpipe[1]);
	printf("zombie leader ok\n");
}

/* --- exec keeps the pid, not the claims ------------------------------------------- */

static int exec_child(const char *name)
{
	/* The new image: the slot and consumer role its previous image took are stale. */
	rmpsc_channel *ch;
	if (rmpsc_channel_open(&ch, name, 0))
		return 10;
	uint64_t rec[2];                                     /* record_size 16 */
	if (rmpsc_recv(ch, rec, 1, SEC) != 1 || rec[0] != 6) /* would be ECONSUMER if the old claim stood */
		return 11;
	rmpsc_producer *p; /* the old image's slot, drained now, is ours to take */
	if (rmpsc_producer_register(ch, &p))
		return 12;
	uint64_t v = 7;
	if (rmpsc_producer_send(p, &v, 8, 0) || rmpsc_recv(ch, rec, 1, SEC) != 1 || rec[0] != 7)
		return 13;
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	return 0;
}

static void test_exec(const char *self)
{
	char name[64];
	snprintf(name, sizeof name, "/rmpsc-exec-%d", (int)getpid());
	rmpsc_channel *ch = make(name, 1, 0);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		rmpsc_producer *p;
		uint64_t v = 6;
		const void *rec;
		if (rmpsc_producer_register(ch, &p) || rmpsc_producer_send(p, &v, 8, 0))
			_exit(20);
		if (rmpsc_read(ch, 1, 0, &rec, NULL) != 1) /* claim the consumer role, read, don't advance */
			_exit(21);
		execl(self, self, "exec-child", name, (char *)NULL);
		_exit(22);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec'd child status %d", WEXITSTATUS(status));
	rmpsc_channel_release(ch);
	rmpsc_unlink(name);
	printf("exec ok\n");
}

/* --- exec ends what the old image had open: a reservation, held slabs ---------------- */

/* The new image of a process whose old image left a reservation open: it waits for
 * the parent to close and drain, then drains too (same process, new image). */
static int exec_after_reserve(const char *name, int rd, int wr)
{
	rmpsc_channel *ch;
	if (rmpsc_channel_open(&ch, name, 0))
		return 60;
	char c = 'e';
	if (write(wr, &c, 1) != 1 || read(rd, &c, 1) != 1 || c != 'd')
		return 61;
	unsigned char rec[16];
	int64_t t0 = now_ns();
	int rc = rmpsc_recv(ch, rec, 1, 5 * SEC);
	if (rc != RMPSC_ECLOSED)
		return 62;
	if (now_ns() - t0 > 2 * SEC)
		return 63;
	rmpsc_channel_release(ch);
	c = 'k';
	if (write(wr, &c, 1) != 1)
		return 64;
	while (read(rd, &c, 1) > 0) /* live until the parent lets go */
		;
	return 0;
}

static void test_exec_open_reservation(const char *self)
{
	char name[64];
	snprintf(name, sizeof name, "/rmpsc-exec-res-%d", (int)getpid());
	rmpsc_channel *ch = make(name, 1, 0);
	int down[2], up[2];
	CHECK(pipe(down) == 0 && pipe(up) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		close(down[1]);
		close(up[0]);
		rmpsc_producer *p;
		uint64_t v = 9;
		void *w;
		if (rmpsc_producer_register(ch, &p) || rmpsc_producer_send(p, &v, 8, 0) ||
		    rmpsc_producer_reserve(p, 1, 0, &w) != 1)
			_exit(70);
		char rd[16], wr[16];
		snprintf(rd, sizeof rd, "%d", down[0]);
		snprintf(wr, sizeof wr, "%d", up[1]);
		execl(self, self, "exec-after-reserve", name, rd, wr, (char *)NULL);
		_exit(71);
	}
	close(down[0]);
	close(up[1]);
	char c;
	CHECK(read(up[0], &c, 1) == 1 && c == 'e', "the exec'd image did not start");
	CHECK_OK(rmpsc_channel_close(ch));
	uint64_t rec[2];
	CHECK_RC(rmpsc_recv(ch, rec, 1, SEC), 1);
	CHECK(rec[0] == 9, "record %llu", (unsigned long long)rec[0]);
	/* The reservation's owner image is gone although the process lives on. */
	int64_t t0 = now_ns();
	CHECK_RC(rmpsc_recv(ch, rec, 1, 5 * SEC), RMPSC_ECLOSED);
	CHECK(now_ns() - t0 < 2 * SEC, "drain took %lld ms", (long long)((now_ns() - t0) / 1000000));
	rmpsc_consumer_release(ch);
	CHECK(write(down[1], "d", 1) == 1, "pipe");
	CHECK(read(up[0], &c, 1) == 1 && c == 'k', "the exec'd image's own drain failed");
	close(down[1]);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec'd child status %d", WEXITSTATUS(status));
	close(up[0]);
	rmpsc_channel_release(ch);
	rmpsc_unlink(name);
	printf("exec after an open reservation: drained, ECLOSED in both images ok\n");
}

/* The new image of a process whose old image held slabs: lives until told. */
static int exec_idle(int rd)
{
	char c;
	while (read(rd, &c, 1) > 0)
		;
	return 0;
}

static void test_exec_held_slabs(const char *self)
{
	rmpsc_channel *ch = make(NULL, 1, 2);
	int down[2], up[2];
	CHECK(pipe(down) == 0 && pipe(up) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		close(down[1]);
		close(up[0]);
		uint32_t h;
		if (rmpsc_slab_alloc(ch, 0, &h) || rmpsc_slab_alloc(ch, 0, &h) || write(up[1], "a", 1) != 1)
			_exit(80);
		close(up[1]);
		char rd[16];
		snprintf(rd, sizeof rd, "%d", down[0]);
		execl(self, self, "exec-idle", rd, (char *)NULL);
		_exit(81);
	}
	close(down[0]);
	close(up[1]);
	char c;
	CHECK(read(up[0], &c, 1) == 1, "child allocated the pool");
	/* The child may not have exec'd yet: the allocation blocks until it has (a
	 * blocked allocation looks for gone holders 10 times a second). */
	uint32_t h;
	int64_t t0 = now_ns();
	CHECK_OK(rmpsc_slab_alloc(ch, 5 * SEC, &h)); /* the exec'd image holds nothing */
	CHECK_OK(rmpsc_slab_alloc(ch, 0, &h));
	CHECK(now_ns() - t0 < 2 * SEC, "slabs of the old image came back after %lld ms",
	      (long long)((now_ns() - t0) / 1000000));
	CHECK(kill(pid, 0) == 0, "the exec'd process should still be alive");
	close(down[1]);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec'd child status %d", WEXITSTATUS(status));
	close(up[0]);
	rmpsc_channel_release(ch);
	printf("exec returns the old image's slabs while the process lives ok\n");
}

/* --- a process that drops privileges after it opened the channel can attach ---------- */

/* A new image running as nobody, given only a descriptor of a 0600 root file:
 * mapping works, attaching cannot. Writes the error message to errfd. */
static int attach_unprivileged(int fd, int errfd)
{
	rmpsc_channel *ch;
	rmpsc_producer *p;
	if (rmpsc_channel_attach_fd(&ch, fd, 0))
		return 95;
	int rc = rmpsc_producer_register(ch, &p);
	const char *msg = rmpsc_last_error();
	if (rc != RMPSC_ESYS || write(errfd, msg, strlen(msg)) < 0)
		return 96;
	rmpsc_channel_release(ch);
	return 0;
}

/* nginx's master opens the channel as root and forks workers that switch to
 * `nobody` before they register: the region file (mode 0600, root's) cannot be
 * opened by them any more, so the description attaching locks through must have
 * been made before. A process that never could open the file gets a clear error. */
static void test_privilege_drop(const char *self)
{
	if (geteuid() != 0) {
		printf("privilege drop: skipped (needs root)\n");
		return;
	}
	char name[64];
	snprintf(name, sizeof name, "/rmpsc-privdrop-%d", (int)getpid());
	rmpsc_channel *ch = make(name, 2, 0);
	pid_t pid = fork();
	if (pid == 0) { /* inherited the handle as root, then dropped to nobody */
		alarm(30);
		if (setgid(65534) || setuid(65534))
			_exit(90);
		rmpsc_producer *p;
		uint64_t v = 11;
		if (rmpsc_producer_register(ch, &p) || rmpsc_producer_send(p, &v, 8, 0))
			_exit(91);
		rmpsc_producer_close(p);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker that dropped privileges: status %d",
	      WEXITSTATUS(status));
	uint64_t rec[2];
	CHECK_RC(rmpsc_recv(ch, rec, 1, SEC), 1);
	CHECK(rec[0] == 11, "record");

	int err[2];
	CHECK(pipe(err) == 0, "pipe");
	pid = fork();
	if (pid == 0) { /* dropped privileges, then a new image that only has the descriptor */
		alarm(30);
		close(err[0]);
		int fd = dup(rmpsc_channel_fd(ch)); /* without O_CLOEXEC: it survives exec */
		char fds[16], errfd[16];
		snprintf(fds, sizeof fds, "%d", fd);
		snprintf(errfd, sizeof errfd, "%d", err[1]);
		if (fd < 0 || setgid(65534) || setuid(65534))
			_exit(92);
		execl(self, self, "attach-unprivileged", fds, errfd, (char *)NULL);
		_exit(93);
	}
	close(err[1]);
	char msg[512] = "";
	ssize_t n = read(err[0], msg, sizeof msg - 1);
	msg[n > 0 ? n : 0] = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "unprivileged attach: status %d", WEXITSTATUS(status));
	CHECK(strstr(msg, "mode 0600") && strstr(msg, "uid 65534") && strstr(msg, "Permission denied"),
	      "the error should say why: %s", msg);
	close(err[0]);
	rmpsc_channel_release(ch);
	rmpsc_unlink(name);
	printf("privilege drop after open ok; without the file's permission: \"%s\"\n", msg);
}

/* --- stdio redirected after attaching: liveness is not fooled --------------------------- */

/* A process started with stdin/stdout/stderr closed gets the lowest descriptors
 * for whatever it opens; a daemon later points them at log files with dup2. The
 * region's descriptors must not be among them, or the redirect would silently drop
 * the attachment's lock (and others would reclaim a live producer's slot) or make
 * this process ask the kernel about the wrong file (and reclaim live ones). This
 * runs as a new image started with 0..2 closed, so it inherits nothing of ours. */
static int stdio_redirected(const char *name, int wr)
{
	rmpsc_channel *ch;
	rmpsc_producer *p;
	if (rmpsc_channel_open(&ch, name, 0) || rmpsc_producer_register(ch, &p))
		return 100;
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		return 101;
	uint64_t v = 12;
	if (rmpsc_producer_send(p, &v, 8, 0))
		return 102;
	char verdict = rmpsc_reclaim_dead(ch) == 0 ? 's' : 'R'; /* the parent's producer is alive */
	if (write(wr, &verdict, 1) != 1)
		return 103;
	pause();
	return 0;
}

static void test_stdio_redirect(const char *self)
{
	char name[64];
	snprintf(name, sizeof name, "/rmpsc-stdio-%d", (int)getpid());
	rmpsc_channel *ch = make(name, 2, 0);
	rmpsc_producer *mine;
	CHECK_OK(rmpsc_producer_register(ch, &mine));
	int sync[2];
	CHECK(pipe(sync) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		char wr[16];
		snprintf(wr, sizeof wr, "%d", sync[1]);
		close(0);
		close(1);
		close(2);
		execl(self, self, "stdio-redirected", name, wr, (char *)NULL);
		_exit(104);
	}
	char verdict;
	CHECK(read(sync[0], &verdict, 1) == 1, "the child registered and redirected stdio");
	CHECK(verdict == 's', "with its region descriptor replaced, the child reclaimed a live producer's slot");
	CHECK_RC(rmpsc_reclaim_dead(ch), 0); /* the child's lock survived the redirect */
	rmpsc_producer *p;
	CHECK_RC(rmpsc_producer_register(ch, &p), RMPSC_ENOSLOT);
	uint64_t rec[2];
	CHECK_RC(rmpsc_recv(ch, rec, 1, SEC), 1);
	reap(pid);
	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	close(sync[0]);
	close(sync[1]);
	rmpsc_producer_close(mine);
	rmpsc_channel_release(ch);
	rmpsc_unlink(name);
	printf("stdio redirected after attaching ok\n");
}

/* --- a child of _Fork (no atfork handlers) is a process of its own ---------------------- */

static void test_underscore_fork(void)
{
	rmpsc_channel *ch = make(NULL, 2, 0);
	int sync[2];
	CHECK(pipe(sync) == 0, "pipe");
	pid_t parent = fork();
	if (parent == 0) { /* registers, then makes a child with _Fork, then waits to be killed */
		alarm(30);
		rmpsc_producer *p;
		if (rmpsc_producer_register(ch, &p))
			_exit(110);
		pid_t child = _Fork();
		if (child == 0) {
			alarm(30); /* orphaned when the test kills its parent: never outlive the test */
			uint64_t v = 13;
			char verdict = rmpsc_producer_send(p, &v, 8, 0) == RMPSC_EFORKED ? 'f' : 'X';
			rmpsc_producer *own;
			if (verdict == 'f' && (rmpsc_producer_register(ch, &own) || rmpsc_producer_send(own, &v, 8, 0)))
				verdict = 'R';
			pid_t me = getpid();
			if (write(sync[1], &verdict, 1) != 1 || write(sync[1], &me, sizeof me) != sizeof me)
				_exit(111);
			pause();
			_exit(0);
		}
		pause();
		_exit(0);
	}
	char verdict;
	pid_t child;
	CHECK(read(sync[0], &verdict, 1) == 1 && read(sync[0], &child, sizeof child) == sizeof child,
	      "the _Fork child answered");
	CHECK(verdict == 'f', "a _Fork child used its parent's producer (%c)", verdict);
	/* The child holds a slot of its own; its parent's dies with the parent. */
	kill(parent, SIGKILL);
	reap(parent);
	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	uint64_t rec[2];
	CHECK_RC(rmpsc_recv(ch, rec, 1, SEC), 1);
	CHECK(rec[0] == 13, "the child's own record");
	close(sync[0]);
	close(sync[1]);
	kill(child, SIGKILL); /* orphaned when its parent died; not ours to reap */
	rmpsc_channel_release(ch);
	printf("a _Fork child attaches as itself ok\n");
}

/* A _Fork child that closes descriptors it does not know about and opens a file of
 * its own, which gets the number of the library's lock descriptor: the library must
 * neither close the child's file nor lock through it (an identity dead from the
 * start would let others reclaim the child's slot while it sends). */
static void test_underscore_fork_reused_fd(void)
{
	rmpsc_channel *ch = make(NULL, 2, 0);
	rmpsc_producer *mine;
	CHECK_OK(rmpsc_producer_register(ch, &mine)); /* attached: a lock descriptor exists */
	int keep = rmpsc_channel_fd(ch), sync[2];
	CHECK(pipe(sync) == 0, "pipe");
	pid_t child = _Fork();
	if (child == 0) {
		alarm(30);
		for (int fd = 3; fd < 256; fd++)
			if (fd != keep && fd != sync[1])
				close(fd);
		char path[64];
		snprintf(path, sizeof path, "/tmp/rmpsc-reused-%d", (int)getpid());
		int log = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		unlink(path);
		rmpsc_producer *p;
		char verdict = 'r';
		if (log < 0 || rmpsc_producer_register(ch, &p))
			verdict = 'R';
		else if (write(log, "x", 1) != 1)
			verdict = 'C'; /* the library closed our file */
		if (write(sync[1], &verdict, 1) != 1)
			_exit(130);
		pause();
		_exit(0);
	}
	close(sync[1]);
	char verdict;
	CHECK(read(sync[0], &verdict, 1) == 1, "the _Fork child answered");
	CHECK(verdict == 'r', "the _Fork child: %s",
	      verdict == 'C' ? "its own file was closed by the library" : "could not register");
	CHECK_RC(rmpsc_reclaim_dead(ch), 0); /* its identity is really held */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK_RC(rmpsc_reclaim_dead(ch), 1);
	close(sync[0]);
	rmpsc_producer_close(mine);
	rmpsc_channel_release(ch);
	printf("a _Fork child reusing the lock descriptor's number ok\n");
}

/* --- two handles releasing and claiming the role in two threads ------------------------- */

/* One process's handles claim and release the consumer role concurrently while
 * another process keeps trying to claim it: the other process must never get the
 * role while a handle here believes it holds it (the last release and a new claim
 * through another handle must not interleave into a cleared word). */
struct role_race {
	rmpsc_channel *h;
	volatile int *stop;
	int *held; /* shared with the other process */
};

static void *role_thread(void *arg)
{
	struct role_race *r = arg;
	while (!*r->stop)
		if (rmpsc_consumer_claim(r->h) == RMPSC_OK) {
			__atomic_fetch_add(r->held, 1, __ATOMIC_SEQ_CST);
			for (int i = 0; i < 200; i++)
				cpu_relax_test();
			__atomic_fetch_sub(r->held, 1, __ATOMIC_SEQ_CST);
			rmpsc_consumer_release(r->h);
		}
	return NULL;
}

static void test_role_release_race(void)
{
	int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED, "mmap");
	int *held = &shared[0], *violations = &shared[1], *claims = &shared[2], *tries = &shared[4];
	volatile int *stop = &shared[3];
	rmpsc_channel *h0 = make(NULL, 1, 0), *h1;
	CHECK_OK(rmpsc_channel_attach_fd(&h1, rmpsc_channel_fd(h0), 0));
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		rmpsc_channel *mine;
		if (rmpsc_channel_attach_fd(&mine, rmpsc_channel_fd(h0), 0))
			_exit(120);
		for (; !*stop; __atomic_fetch_add(tries, 1, __ATOMIC_SEQ_CST))
			if (rmpsc_consumer_claim(mine) == RMPSC_OK) {
				__atomic_fetch_add(claims, 1, __ATOMIC_SEQ_CST);
				if (__atomic_load_n(held, __ATOMIC_SEQ_CST) > 0)
					__atomic_fetch_add(violations, 1, __ATOMIC_SEQ_CST);
				rmpsc_consumer_release(mine);
			}
		_exit(0);
	}
	struct role_race r[2] = { { h0, stop, held }, { h1, stop, held } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, role_thread, &r[i]);
	/* Until the other process has tried 200,000 times (about 2 s here), or 10 s on a
	 * slow machine: a count, so a loaded machine tests as much as an idle one. */
	for (int64_t end = now_ns() + 10 * SEC; __atomic_load_n(tries, __ATOMIC_SEQ_CST) < 200000 && now_ns() < end;)
		sched_yield();
	*stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "claiming process status %d", WEXITSTATUS(status));
	CHECK(*violations == 0, "another process got the consumer role %d times while a handle here held it",
	      *violations);
	CHECK(*claims > 0, "the other process never got the role between the handles' claims (%d tries)", *tries);
	printf("consumer role release/claim race: %d tries, %d claims by another process, none while held here\n",
	       *tries, *claims);
	rmpsc_channel_release(h1);
	rmpsc_channel_release(h0);
	munmap(shared, 4096);
}

/* --- received slabs after a normal release; accepted ones are kept ------------------- */

static void test_released_consumer_slabs(void)
{
	rmpsc_channel *ch = make(NULL, 2, 4);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	uint32_t h[2];
	for (int i = 0; i < 2; i++) {
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &h[i]));
		CHECK_OK(rmpsc_producer_send_slab(p, h[i], 0));
	}
	CHECK_RC(rmpsc_slab_free(ch, h[0]), RMPSC_EINVAL); /* in flight: not yet received */
	int sync[2];
	CHECK(pipe(sync) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) { /* a consumer that receives both, accepts one, gives the role up, lives on */
		alarm(30);
		unsigned char rec[32];
		if (rmpsc_recv(ch, rec, 2, SEC) != 2)
			_exit(30);
		if (rmpsc_slab_accept(ch, rmpsc_record_handle(rec + 16)))
			_exit(31);
		rmpsc_consumer_release(ch);
		if (write(sync[1], "r", 1) != 1)
			_exit(32);
		pause();
		_exit(0);
	}
	char c;
	CHECK(read(sync[0], &c, 1) == 1, "child consumer received and released");
	CHECK_RC(rmpsc_slab_free_count(ch), 2);
	/* Not a takeover, yet the received slab nobody accepted comes back; the
	 * accepted one stays with its live holder. */
	CHECK_OK(rmpsc_consumer_claim(ch));
	CHECK_RC(rmpsc_slab_free_count(ch), 3);
	reap(pid);
	uint32_t extra;
	for (int i = 0; i < 4; i++) /* the dead holder's slab is found by an allocation */
		CHECK_OK(rmpsc_slab_alloc(ch, 0, &extra));
	CHECK_RC(rmpsc_slab_alloc(ch, 0, &extra), RMPSC_EFULL);
	close(sync[0]);
	close(sync[1]);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	printf("released consumer's slabs ok\n");
}

/* --- a blocked allocation recovers a killed holder's slabs --------------------------- */

static void test_blocked_alloc_reclaims(void)
{
	rmpsc_channel *ch = make(NULL, 1, 3);
	int sync[2];
	CHECK(pipe(sync) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		uint32_t h;
		for (int i = 0; i < 3; i++)
			if (rmpsc_slab_alloc(ch, 0, &h))
				_exit(40);
		if (write(sync[1], "a", 1) != 1)
			_exit(41);
		pause();
		_exit(0);
	}
	char c;
	CHECK(read(sync[0], &c, 1) == 1, "child allocated the pool");
	uint32_t h;
	CHECK_RC(rmpsc_slab_alloc(ch, 0, &h), RMPSC_EFULL);
	pid_t killer = fork();
	if (killer == 0) {
		usleep(200000);
		kill(pid, SIGKILL);
		_exit(0);
	}
	int64_t t0 = now_ns();
	CHECK_OK(rmpsc_slab_alloc(ch, 5 * SEC, &h)); /* blocked while the holder lives */
	int64_t waited = now_ns() - t0;
	CHECK(waited < 2 * SEC, "alloc recovered after %lld ms", (long long)(waited / 1000000));
	waitpid(killer, NULL, 0);
	waitpid(pid, NULL, 0);
	close(sync[0]);
	close(sync[1]);
	rmpsc_channel_release(ch);
	printf("blocked alloc reclaims a killed holder's slabs ok (%lld ms)\n", (long long)(waited / 1000000));
}

/* --- two handles of one process share the consumer role ------------------------------ */

static void test_two_handles(void)
{
	rmpsc_channel *a = make(NULL, 1, 0), *b;
	CHECK_OK(rmpsc_channel_attach_fd(&b, rmpsc_channel_fd(a), 0));
	CHECK_OK(rmpsc_consumer_claim(a));
	CHECK_OK(rmpsc_consumer_claim(b));
	rmpsc_channel_release(a); /* b still holds it for this process */
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		rmpsc_channel_release(b); /* the child holds nothing: this releases nothing */
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	int sync[2];
	CHECK(pipe(sync) == 0, "pipe");
	pid = fork();
	if (pid == 0) {
		alarm(30);
		char rc = (char)rmpsc_consumer_claim(b);
		_exit(write(sync[1], &rc, 1) == 1 ? 0 : 1);
	}
	char rc;
	CHECK(read(sync[0], &rc, 1) == 1, "child answered");
	CHECK(rc == RMPSC_ECONSUMER, "a second process claimed while this one holds the role: %d", rc);
	waitpid(pid, NULL, 0);
	rmpsc_channel_release(b);
	close(sync[0]);
	close(sync[1]);
	printf("two handles share the consumer role ok\n");
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "exec-child"))
		return exec_child(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "exec-after-reserve"))
		return exec_after_reserve(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "attach-unprivileged"))
		return attach_unprivileged(atoi(argv[2]), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "stdio-redirected"))
		return stdio_redirected(argv[2], atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "exec-idle"))
		return exec_idle(atoi(argv[2]));
	harness_start("test_proc_liveness", 120);
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(n > 0, "readlink /proc/self/exe");
	self[n] = 0;
	test_zombie_leader();
	test_exec(self);
	test_exec_open_reservation(self);
	test_exec_held_slabs(self);
	test_privilege_drop(self);
	test_stdio_redirect(self);
	test_underscore_fork();
	test_underscore_fork_reused_fd();
	test_role_release_race();
	test_released_consumer_slabs();
	test_blocked_alloc_reclaims();
	test_two_handles();
	return 0;
}
