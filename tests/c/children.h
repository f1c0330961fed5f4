/*
 * Child processes for the multi-process tests: each child dies with its parent
 * (PR_SET_PDEATHSIG), has its own watchdog, and never runs the parent's cleanup;
 * the parent kills and reaps every child still around when it exits.
 */
#ifndef RMPSC_TEST_CHILDREN_H
#define RMPSC_TEST_CHILDREN_H

#include <sys/prctl.h>
#include <sys/wait.h>

#include "harness.h"

#ifndef CHILD_ALARM_S
#define CHILD_ALARM_S 20 /* a child's own watchdog */
#endif
#define MAX_CHILDREN 32

static int g_is_child;
static pid_t g_children[MAX_CHILDREN];

/* Kill and reap every child still running (from the parent's atexit handler). */
static inline void children_kill_all(void)
{
	if (g_is_child)
		return;
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (g_children[i] > 0) {
			kill(g_children[i], SIGKILL);
			waitpid(g_children[i], NULL, 0);
			g_children[i] = 0;
		}
}

/* fork(): returns 0 in the child, the pid in the parent. */
static inline pid_t fork_child(void)
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		g_is_child = 1;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(3);
		alarm(CHILD_ALARM_S);
		return 0;
	}
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (g_children[i] <= 0) {
			g_children[i] = pid;
			return pid;
		}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	FAIL("too many children");
}

/* Reap a child; returns its exit code, or 128 + signal. */
static inline int reap(pid_t pid)
{
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	CHECK(r == pid, "waitpid(%d): %s", (int)pid, strerror(errno));
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (g_children[i] == pid)
			g_children[i] = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The state letter of /proc/<pid>/stat, or 0. */
static inline char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Wait until the child has exited and is reapable, without reaping it: a zombie. */
static inline void wait_zombie(pid_t pid)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	int r;
	while ((r = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT)) < 0 && errno == EINTR)
		;
	CHECK(r == 0 && info.si_pid == pid, "waitid(WNOWAIT) on %d: %s", (int)pid, strerror(errno));
	CHECK(proc_state(pid) == 'Z', "process %d is reapable but /proc says state %c", (int)pid, proc_state(pid));
}

/* A child with its own pipes: l->rd reads what the other side writes to its l->wr.
 * Unused ends are closed, so a side that dies makes the other's read fail, not hang. */
struct link {
	int rd, wr;
};

static inline pid_t fork_linked(struct link *l)
{
	int down[2], up[2];
	CHECK(pipe(down) == 0 && pipe(up) == 0, "pipe: %s", strerror(errno));
	pid_t pid = fork_child();
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		l->rd = down[0];
		l->wr = up[1];
	} else {
		close(down[0]);
		close(up[1]);
		l->rd = up[0];
		l->wr = down[1];
	}
	return pid;
}

static inline void link_close(struct link *l)
{
	close(l->rd);
	close(l->wr);
}

/* Write n bytes to the other side of a link (its wr end, or any pipe fd). */
static inline void link_put(int fd, const void *p, size_t n)
{
	CHECK(write(fd, p, n) == (ssize_t)n, "pipe write: %s", strerror(errno));
}

/* Read n bytes; the other side dying is a failure, not a hang. */
static inline void link_get(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		CHECK(r > 0, "pipe read: %zd (%s): the other side died", r, strerror(errno));
		got += (size_t)r;
	}
}

/* atexit() in the parent: no child outlives a failed test. */
static inline void children_cleanup_at_exit(void)
{
	if (!g_is_child)
		children_kill_all();
}

#endif
