#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "fence.h"
#include "owner.h"
#include "ringmpsc.h"

uint32_t rmpsc__fork_generation;
static uint64_t self_id;
static uint32_t self_gen = UINT32_MAX;

/*
 * The held-roles table. Small: one entry per region this image uses. Entries of an
 * earlier fork generation are stale (a child holds nothing of its parent's).
 */
static struct held {
	struct region_key key;
	uint32_t gen;
	int consumer;
	/* per slot: threads of this image holding it or claiming it right now */
	uint16_t slots[RMPSC_MAX_PRODUCERS];
} *held_table;
static int held_cap;
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_fork_child(void)
{
	rmpsc__fork_generation++;
	pthread_mutex_init(&held_lock, NULL); /* the parent may have held it mid-update */
	rmpsc__fence_on_fork_child();
}

/* An entry holds nothing: reusable. */
static int held_unused(const struct held *h)
{
	if (h->gen != rmpsc__fork_generation || h->consumer)
		return h->gen != rmpsc__fork_generation;
	for (unsigned i = 0; i < RMPSC_MAX_PRODUCERS; i++)
		if (h->slots[i])
			return 0;
	return 1;
}

/* This generation's entry for key; with create, make one. Under held_lock. */
static struct held *held_find(struct region_key key, int create)
{
	struct held *spare = NULL;
	for (int i = 0; i < held_cap; i++) {
		struct held *h = &held_table[i];
		if (held_unused(h)) {
			if (!spare)
				spare = h;
		} else if (h->key.dev == key.dev && h->key.ino == key.ino) {
			return h;
		}
	}
	if (!create)
		return NULL;
	if (!spare) {
		int cap = held_cap ? 2 * held_cap : 8;
		struct held *t = realloc(held_table, (size_t)cap * sizeof *t);
		if (!t)
			return NULL;
		spare = t + held_cap;
		memset(spare, 0, (size_t)(cap - held_cap) * sizeof *t);
		held_table = t;
		held_cap = cap;
	}
	memset(spare, 0, sizeof *spare);
	spare->key = key;
	spare->gen = rmpsc__fork_generation;
	return spare;
}

int rmpsc__held_consumer(struct region_key key, int delta)
{
	pthread_mutex_lock(&held_lock);
	struct held *h = held_find(key, delta > 0);
	int n = delta > 0 ? -1 : 0; /* -1: out of memory */
	if (h) {
		h->consumer += delta;
		if (h->consumer < 0)
			h->consumer = 0;
		n = h->consumer;
	}
	pthread_mutex_unlock(&held_lock);
	return n;
}

int rmpsc__held_slot(struct region_key key, uint32_t slot, int delta)
{
	if (slot >= RMPSC_MAX_PRODUCERS)
		return -1;
	pthread_mutex_lock(&held_lock);
	struct held *h = held_find(key, delta > 0);
	if (h && (delta > 0 || h->slots[slot]))
		h->slots[slot] = (uint16_t)(h->slots[slot] + delta);
	pthread_mutex_unlock(&held_lock);
	return h || delta <= 0 ? 0 : -1;
}

int rmpsc__holds_slot(struct region_key key, uint32_t slot)
{
	if (slot >= RMPSC_MAX_PRODUCERS)
		return 0;
	pthread_mutex_lock(&held_lock);
	struct held *h = held_find(key, 0);
	int on = h && h->slots[slot] > 0;
	pthread_mutex_unlock(&held_lock);
	return on;
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

/* Threads of `pid` from /proc/<pid>/status, or -1 if unreadable. */
static long proc_threads(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *t = strstr(buf, "\nThreads:");
	return t ? strtol(t + 9, NULL, 10) : -1;
}

static int pid_exists(pid_t pid)
{
	return !(kill(pid, 0) < 0 && errno == ESRCH); /* EPERM: exists, another user's */
}

int rmpsc__owner_alive(uint64_t id)
{
	pid_t pid = (pid_t)owner_pid(id);
	if (pid <= 0)
		return 0;
	char state;
	uint64_t start;
	int r = read_proc_stat(pid, &state, &start);
	if (r <= 0)
		/* Gone from /proc: dead, unless /proc hides it (hidepid) while the pid
		 * exists. Unreadable /proc: the pid alone is all we can go by. */
		return pid_exists(pid);
	if (((start & OWNER_TIME_MASK) << OWNER_TIME_SHIFT) != (id & (OWNER_TIME_MASK << OWNER_TIME_SHIFT)))
		return 0; /* the pid was recycled */
	if (state == 'X' || state == 'x')
		return 0;
	/* /proc/<pid>/stat shows the main thread: 'Z' is an exited, unreaped process
	 * (it will never write again), or a main thread that called pthread_exit while
	 * other threads run on (then Threads > 1, and the process is alive). */
	if (state == 'Z')
		return proc_threads(pid) > 1;
	return 1;
}
