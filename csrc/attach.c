/*
 * Attachments: the kernel-held locks that say which owners are alive (attach.h).
 *
 * Process-local side: one `struct attachment` per region this process is attached
 * to, shared by all its handles on that region (so they share one identity, and
 * the consumer role), found by the region file's (st_dev, st_ino).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"

/*
 * One per region this process maps, shared by its handles on it. `lock_fd` is
 * opened when the first handle is made, not when the process first attaches,
 * because attaching may come later in a process that can no longer open the file:
 * an nginx worker forked by a root master, say, which switched to `nobody` before
 * it registers. For the same reason a forked child re-opens it in the atfork
 * handler, while it still has its parent's credentials.
 */
struct attachment {
	struct attachment *next;
	struct region_key key;
	int lock_fd; /* our own open file description of the region; -1 if none could be made */
	uint64_t id; /* owner identity while attached (entry locked), else 0 */
	int handles; /* handles of this process on the region */
	int member_holders[RMPSC_MAX_CONSUMERS];         /* of those, the ones sharing each member place (group.c) */
	uint8_t member_in_callback[RMPSC_MAX_CONSUMERS]; /* an rmpsc_consume callback runs for that place */
	struct member_fifo member_fifo[RMPSC_MAX_CONSUMERS]; /* readiness FIFO of each place we hold (notify.h) */
};

/* Few entries (one per region in use), so a list. Guarded by attach_lock, which
 * fork waits for (prepare handler), so a child never inherits half an update. */
static struct attachment *attachments;
static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

/* A new open file description of the file behind `fd` (a duplicated descriptor
 * would share its description, and so its locks, with whoever we got it from). */
static int reopen_fd(int fd)
{
	/* thread-self: /proc/self/fd is gone once the main thread has exited (its
	 * files are released) while other threads run on. */
	char path[64];
	snprintf(path, sizeof path, "/proc/thread-self/fd/%d", fd);
	int nfd = open(path, O_RDWR | O_CLOEXEC);
	if (nfd < 0 && errno == ENOENT) { /* before Linux 3.17 */
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		nfd = open(path, O_RDWR | O_CLOEXEC);
	}
	return nfd;
}

static int same_file(int fd, struct region_key key);

/* Is a->lock_fd still a description of its region (nobody closed the number and
 * opened something else under it)? */
static int lock_fd_valid(const struct attachment *a)
{
	return same_file(a->lock_fd, a->key);
}

/* Descriptors 0..2 get replaced by whoever redirects stdio (a daemon pointing
 * stdout at a log file with dup2): ours live above them. -1 with errno on failure. */
int rmpsc__fd_above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int up = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int err = errno;
	close(fd);
	errno = err;
	return up;
}

/* ------------------------------------------------------------------------- */
/* Fork detection (attach.h). */

struct fork_words {
	uint32_t generation; /* this process's fork generation; 0 in a child that has not noticed yet */
	uint32_t resetting;  /* a thread of a child is doing the reset (rmpsc__forked) */
};
static struct fork_words fork_words_fallback = { 1, 0 }; /* where MADV_WIPEONFORK is missing (< 4.14) */
static struct fork_words *fork_words = &fork_words_fallback;
uint32_t *rmpsc__fork_word = &fork_words_fallback.generation;
static uint32_t last_generation = 1; /* ordinary memory: a child inherits it, to number its own */

/* In a child, before anything else of ours runs there: the parent's lock
 * descriptions would keep the parent "alive" after it died, so each is replaced
 * by a description of the child's own (unlocked: the child attaches when it first
 * needs an identity); then the child gets a generation of its own. */
static void child_reset(int reinit_lock)
{
	/* After _Fork another parent thread may have held the lock: its state means
	 * nothing here. After fork() our prepare handler holds it (on_fork_child). */
	if (reinit_lock)
		pthread_mutex_init(&attach_lock, NULL);
	for (struct attachment *a = attachments; a; a = a->next) {
		/* After _Fork the child may have run code of its own first, closing or
		 * reusing that descriptor number: only our own file is ours to close. */
		if (a->lock_fd >= 0 && lock_fd_valid(a)) {
			int own = rmpsc__fd_above_stdio(reopen_fd(a->lock_fd));
			close(a->lock_fd);
			a->lock_fd = own; /* -1: attaching retries, and says why it cannot */
		} else {
			a->lock_fd = -1;
		}
		a->id = 0;
		memset(a->member_holders, 0, sizeof a->member_holders);
		memset(a->member_in_callback, 0, sizeof a->member_in_callback);
		/* The parent's readiness FIFOs: its own to keep and remove. Our copies are
		 * closed after fork(), whose handlers run first; not after _Fork, when the
		 * child may already have reused those descriptor numbers. */
		for (uint32_t e = 0; e < RMPSC_MAX_CONSUMERS && !reinit_lock; e++)
			if (a->member_fifo[e].fd1)
				close(a->member_fifo[e].fd1 - 1);
		memset(a->member_fifo, 0, sizeof a->member_fifo);
	}
	rmpsc__fence_on_fork_child();
	uint32_t gen = last_generation + 1 ? last_generation + 1 : 1;
	last_generation = gen;
	store_release(&fork_words->generation, gen);
}

static void on_fork_prepare(void)
{
	pthread_mutex_lock(&attach_lock); /* a child never inherits half an update */
}

static void on_fork_parent(void)
{
	pthread_mutex_unlock(&attach_lock);
}

static void on_fork_child(void)
{
	pthread_mutex_unlock(&attach_lock); /* the forking thread, ours in the child too, took it in prepare */
	child_reset(0);
}

uint32_t rmpsc__forked(void)
{
	/* A child whose fork ran no atfork handlers (glibc's _Fork, a raw clone):
	 * the first thread here resets, the others wait for it. */
	uint32_t idle = 0;
	if (cas_acq_rel(&fork_words->resetting, &idle, 1)) {
		child_reset(1);
		store_release(&fork_words->resetting, 0);
	}
	uint32_t gen;
	while (!(gen = load_acquire(&fork_words->generation)))
		cpu_relax();
	return gen;
}

__attribute__((constructor)) static void init_fork_detection(void)
{
	/* The kernel zeroes a MADV_WIPEONFORK page in every child that does not
	 * share our memory, whether or not the child runs atfork handlers. */
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page != MAP_FAILED && madvise(page, 4096, MADV_WIPEONFORK) == 0) {
		fork_words = page;
		fork_words->generation = last_generation;
		rmpsc__fork_word = &fork_words->generation;
	} else if (page != MAP_FAILED) {
		munmap(page, 4096);
	}
	pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

/* ------------------------------------------------------------------------- */
/* Attachments. */

static inline struct attach_entry *entry_of(const struct region_file *f, uint32_t i)
{
	return f->table + i;
}

static inline off_t lock_offset(const struct region_file *f, uint32_t i)
{
	return (off_t)(f->table_off + (uint64_t)i * sizeof(struct attach_entry));
}

static int lock_byte(int fd, int cmd, off_t at, struct flock *fl)
{
	memset(fl, 0, sizeof *fl); /* l_pid must be 0 for OFD locks */
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
	fl->l_start = at;
	fl->l_len = 1;
	return fcntl(fd, cmd, fl);
}

static int same_file(int fd, struct region_key key)
{
	struct stat st;
	return fstat(fd, &st) == 0 && (uint64_t)st.st_dev == key.dev && (uint64_t)st.st_ino == key.ino;
}

/* Our own description of the region: through /proc, else by name. -1 with errno. */
static int open_private(const struct region_file *f)
{
	int fd = reopen_fd(f->fd);
	if (fd < 0 && errno == ENOENT && f->name) /* no /proc: a named region can be opened by name */
		fd = shm_open(f->name, O_RDWR | O_CLOEXEC, 0);
	fd = rmpsc__fd_above_stdio(fd);
	if (fd >= 0 && !same_file(fd, f->key)) {
		close(fd);
		errno = ESTALE; /* the name now refers to another file */
		return -1;
	}
	return fd;
}

/* Lock a free entry and take it: bump its generation, record our pid. Entries whose
 * pid hint is 0 are tried first; then every one (dead holders leave their hint). */
static int take_entry(const struct region_file *f, struct attachment *a)
{
	struct flock fl;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < ATTACH_SLOTS; i++) {
			struct attach_entry *e = entry_of(f, i);
			if (pass == 0 && load_relaxed(&e->pid) != 0)
				continue;
			if (lock_byte(a->lock_fd, F_OFD_SETLK, lock_offset(f, i), &fl) < 0) {
				if (errno == EAGAIN || errno == EACCES)
					continue; /* held by a live process */
				return rmpsc__sys_error("attaching: fcntl(F_OFD_SETLK)");
			}
			/* Only the lock holder writes the entry, so a plain read-increment is safe. */
			uint64_t gen = (load_relaxed(&e->gen) + 1) & OWNER_GEN_MASK;
			if (gen == 0)
				gen = 1;
			store_release(&e->gen, gen);
			store_relaxed(&e->pid, (uint32_t)getpid());
			store_release(&a->id, (uint64_t)i << OWNER_INDEX_SHIFT | gen << OWNER_GEN_SHIFT);
			return RMPSC_OK;
		}
	}
	return rmpsc__set_error(RMPSC_ENOSLOT, "attaching: all %u attachment slots are held by live processes",
				ATTACH_SLOTS);
}

int rmpsc__attach_open(struct region_file *f)
{
	fork_generation(); /* a child that ran no atfork handler resets first */
	pthread_mutex_lock(&attach_lock);
	struct attachment *a = attachments;
	while (a && !(a->key.dev == f->key.dev && a->key.ino == f->key.ino))
		a = a->next;
	if (!a && (a = calloc(1, sizeof *a))) {
		a->key = f->key;
		a->lock_fd = open_private(f); /* -1: attaching retries, and says why it cannot */
		a->next = attachments;
		attachments = a;
	}
	if (a)
		a->handles++;
	f->att = a;
	pthread_mutex_unlock(&attach_lock);
	if (a)
		return RMPSC_OK;
	errno = ENOMEM;
	return rmpsc__sys_error("allocating a channel handle");
}

void rmpsc__attach_close(struct region_file *f)
{
	struct attachment *a = f->att;
	if (!a)
		return;
	fork_generation();
	pthread_mutex_lock(&attach_lock);
	if (--a->handles == 0) {
		for (struct attachment **pp = &attachments; *pp; pp = &(*pp)->next)
			if (*pp == a) {
				*pp = a->next;
				break;
			}
		/* Hint first, then the lock: until the close, (index, gen) is still ours. */
		if (a->id)
			store_relaxed(&entry_of(f, owner_index(a->id))->pid, 0);
		if (a->lock_fd >= 0 && lock_fd_valid(a))
			close(a->lock_fd);
		free(a);
	}
	f->att = NULL;
	pthread_mutex_unlock(&attach_lock);
}

uint64_t rmpsc__attached_id(const struct region_file *f)
{
	fork_generation();
	return load_acquire(&f->att->id);
}

int rmpsc__attach(struct region_file *f, uint64_t *id)
{
	fork_generation();
	struct attachment *a = f->att;
	if (likely((*id = load_acquire(&a->id)) != 0))
		return RMPSC_OK;
	int rc = RMPSC_OK;
	pthread_mutex_lock(&attach_lock);
	if (!a->id) { /* else another thread attached meanwhile */
		if (a->lock_fd >= 0 && !lock_fd_valid(a))
			a->lock_fd = -1; /* its number now names something else: not ours to close */
		if (a->lock_fd < 0 && (a->lock_fd = open_private(f)) < 0) {
			int err = errno;
			struct stat st;
			char what[160] = "attaching: opening the region file again (through /proc/self/fd, or by name)";
			if (err == EACCES && fstat(f->fd, &st) == 0)
				snprintf(what, sizeof what,
					 "attaching: opening the region file again (mode %04o, owner uid %u; this "
					 "process runs as uid %u)",
					 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)geteuid());
			errno = err;
			rc = rmpsc__sys_error(what);
		} else {
			rc = take_entry(f, a);
		}
	}
	*id = a->id;
	pthread_mutex_unlock(&attach_lock);
	return rc;
}

int rmpsc__owner_alive(const struct region_file *f, uint64_t id)
{
	id = owner_id(id);
	uint32_t i = owner_index(id);
	uint64_t gen = owner_gen(id);
	if (gen == 0 || i >= ATTACH_SLOTS)
		return 0; /* no owner, or a word no attachment can have written */
	if (id == rmpsc__attached_id(f))
		return 1;
	/* Generation first: a holder locks before it bumps, so "gen matches and the
	 * byte is locked" can only err towards alive (see attach.h). */
	if (load_acquire(&entry_of(f, i)->gen) != gen)
		return 0;
	struct flock fl;
	if (lock_byte(f->fd, F_OFD_GETLK, lock_offset(f, i), &fl) < 0)
		return 1; /* the kernel cannot tell: never take a live owner's claim */
	if (fl.l_type != F_UNLCK)
		return 1;
	/* Unlocked: believe it only if our descriptor still is the region's file
	 * (someone may have replaced it with dup2), else we cannot tell. */
	return !same_file(f->fd, f->key);
}

int rmpsc__owner_alive_cached(const struct region_file *f, struct alive_cache *c, uint64_t id)
{
	id = owner_id(id);
	uint32_t i = owner_index(id);
	uint64_t gen = owner_gen(id);
	if (gen == 0 || i >= ATTACH_SLOTS)
		return 0;
	uint64_t k = c->known[i];
	if (k && k >> 2 == gen)
		return (int)(k & 1);
	int alive = rmpsc__owner_alive(f, id);
	c->known[i] = gen << 2 | 2 | (uint64_t)alive;
	return alive;
}

uint32_t rmpsc__owner_pid(const struct region_file *f, uint64_t id)
{
	id = owner_id(id);
	uint32_t i = owner_index(id);
	if (owner_gen(id) == 0 || i >= ATTACH_SLOTS)
		return 0;
	const struct attach_entry *e = entry_of(f, i);
	if (load_acquire(&e->gen) != owner_gen(id))
		return 0;
	uint32_t pid = load_acquire(&e->pid);
	return load_acquire(&e->gen) == owner_gen(id) ? pid : 0; /* the same holder throughout */
}

void rmpsc__process_lock(void)
{
	fork_generation(); /* a child made without atfork handlers resets its copy of the lock first */
	pthread_mutex_lock(&attach_lock);
}

void rmpsc__process_unlock(void)
{
	pthread_mutex_unlock(&attach_lock);
}

int *rmpsc__member_holders(struct region_file *f, uint32_t idx)
{
	return &f->att->member_holders[idx];
}

uint8_t *rmpsc__member_in_callback(struct region_file *f, uint32_t idx)
{
	return &f->att->member_in_callback[idx];
}

struct member_fifo *rmpsc__member_fifo(struct region_file *f, uint32_t idx)
{
	return &f->att->member_fifo[idx];
}
