#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "owner.h"

uint32_t rmpsc__fork_generation;
static uint64_t self_id;
static uint32_t self_gen = UINT32_MAX;

static void on_fork_child(void)
{
	rmpsc__fork_generation++;
}

__attribute__((constructor)) static void register_fork_handler(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/*
 * Read state and start time of `pid` from /proc. Returns 1 and fills *state and
 * *start, 0 if the process does not exist, -1 if /proc could not tell.
 */
static int read_proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return err == ESRCH ? 0 : -1;
	buf[n] = 0;
	/* comm (field 2) may hold spaces and parentheses: parse after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	*state = *p;
	/* Field 3 is the state; start time is field 22, i.e. 19 more fields on. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 1;
}

static uint64_t make_id(pid_t pid, uint64_t start)
{
	return ((uint64_t)pid & OWNER_PID_MASK) << OWNER_PID_SHIFT |
	       (start & OWNER_TIME_MASK) << OWNER_TIME_SHIFT;
}

uint64_t rmpsc__owner_of_pid(pid_t pid)
{
	char state;
	uint64_t start;
	if (pid <= 0 || (uint64_t)pid > OWNER_PID_MASK)
		return 0;
	if (read_proc_stat(pid, &state, &start) != 1)
		return 0;
	return make_id(pid, start);
}

uint64_t rmpsc__owner_self(void)
{
	/* Threads may race to fill the cache; they compute the same value. */
	uint32_t gen = load_relaxed(&rmpsc__fork_generation);
	if (load_acquire(&self_gen) != gen || !load_relaxed(&self_id)) {
		store_relaxed(&self_id, rmpsc__owner_of_pid(getpid()));
		store_release(&self_gen, gen);
	}
	return load_relaxed(&self_id);
}

int rmpsc__owner_alive(uint64_t id)
{
	pid_t pid = (pid_t)owner_pid(id);
	if (pid <= 0)
		return 0;
	char state;
	uint64_t start;
	int r = read_proc_stat(pid, &state, &start);
	if (r == 0)
		return 0;
	if (r < 0) /* /proc unusable here: fall back to the pid alone */
		return !(kill(pid, 0) < 0 && errno == ESRCH);
	if (state == 'Z' || state == 'X' || state == 'x')
		return 0; /* exited, not yet reaped: it will never write again */
	return ((start & OWNER_TIME_MASK) << OWNER_TIME_SHIFT) ==
	       (id & (OWNER_TIME_MASK << OWNER_TIME_SHIFT));
}
