#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "group.h"
#include "notify.h"

#define FIFO_DIR "/dev/shm/"

#define FIFO_PREFIX ".ringmpsc-%016llx-"
#define FIFO_MODE   0622 /* the owner reads, anyone may wake (notify.h); set by chmod, past the umask */

static void fifo_path(const rmpsc_channel *ch, char kind, uint32_t index, uint64_t gen, char *buf, size_t n)
{
	snprintf(buf, n, FIFO_DIR FIFO_PREFIX "%c%u-%016llx", (unsigned long long)ch->hdr->channel_id, kind, index,
		 (unsigned long long)gen);
}

/* A generation: the channel's count (never 0, unique) above 32 random bits. */
static uint64_t new_gen(rmpsc_channel *ch)
{
	uint32_t count, noise;
	do
		count = fetch_add_relaxed(&ch->hdr->fifo_counter, 1) + 1;
	while (count == 0);
	if (getrandom(&noise, sizeof noise, GRND_NONBLOCK) != (ssize_t)sizeof noise)
		noise = (uint32_t)rmpsc__monotonic_ns() ^ (uint32_t)getpid() * 2654435761u;
	return (uint64_t)count << 32 | noise;
}

/* A readiness FIFO by name: never through a symlink, never anything but a FIFO
 * (in a world-writable directory someone else may have put a file there).
 * O_RDWR where we may read it too (its owner), else write-only; *wronly says which. */
static int fifo_open(const char *path, int *wronly)
{
	*wronly = 0;
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == EACCES) {
		/* ENXIO: nobody has it open for reading, its waiter is gone. */
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		*wronly = 1;
	}
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return rmpsc__fd_above_stdio(fd);
}

/*
 * FIFOs whose every holder died unrecovered stay in /dev/shm (an anonymous channel
 * has no name to unlink them with). Its holder keeps it open O_RDWR, a reader, so
 * a write-only non-blocking open fails with ENXIO exactly when nobody reads it:
 * such a FIFO serves nobody. Ones written or made within the last minute are left
 * alone (a creator opens its FIFO right after making it). Once per process, when
 * it makes its first FIFO.
 */
#define STALE_FIFO_AGE_S 60

static void sweep_stale_fifos(void)
{
	static pid_t swept_by; /* a forked child sweeps again: it may outlive its parent by far */
	pid_t me = getpid();
	if (__atomic_exchange_n(&swept_by, me, __ATOMIC_RELAXED) == me)
		return;
	DIR *d = opendir(FIFO_DIR);
	if (!d)
		return;
	int saved = errno;
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (strncmp(e->d_name, ".ringmpsc-", 10) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISFIFO(st.st_mode) || now - st.st_mtime < STALE_FIFO_AGE_S)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0)
			close(fd);
		else if (errno == ENXIO)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
	errno = saved;
}

int rmpsc__fifo_create(rmpsc_channel *ch, char kind, uint32_t index, uint64_t *gen)
{
	sweep_stale_fifos();
	char path[96];
	for (int tries = 0;; tries++) {
		uint64_t g = new_gen(ch);
		fifo_path(ch, kind, index, g, path, sizeof path);
		/* Only a FIFO we made ourselves: a name someone else took is skipped. */
		if (mkfifo(path, 0600) < 0) {
			if (errno == EEXIST && tries < 64)
				continue;
			return rmpsc__sys_error("mkfifo " FIFO_DIR "(readiness fd)");
		}
		/* Its mode before we open it: the umask may have left us less than 0600. */
		int fd = chmod(path, FIFO_MODE) < 0 ? -1 : open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0)
			fd = rmpsc__fd_above_stdio(fd);
		if (fd < 0) {
			int rc = rmpsc__sys_error("opening the readiness FIFO");
			unlink(path);
			return rc;
		}
		*gen = g;
		return fd;
	}
}

void rmpsc__fifo_remove(const rmpsc_channel *ch, char kind, uint32_t index, uint64_t gen)
{
	if (!gen)
		return;
	char path[96];
	fifo_path(ch, kind, index, gen, path, sizeof path);
	unlink(path);
}

/* One byte. EAGAIN: full, so readable already. Write-only, a reader that left
 * meanwhile would raise SIGPIPE: blocked for the write, and one it raised taken
 * back unless it was pending before (someone else's). */
static void fifo_write(int fd, int wronly)
{
	sigset_t pipe_set, old;
	int pending_before = 0;
	if (wronly) {
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
		sigset_t pending;
		pending_before = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	}
	ssize_t r;
	do
		r = write(fd, "", 1);
	while (r < 0 && errno == EINTR);
	if (wronly) {
		if (r < 0 && errno == EPIPE && !pending_before) {
			const struct timespec zero = { 0, 0 };
			sigtimedwait(&pipe_set, NULL, &zero);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
}

int rmpsc__fifo_signal(const rmpsc_channel *ch, struct fifo_ref *ref, char kind, uint32_t index, uint64_t gen)
{
	if (!gen)
		return 1;
	if (ref && ref->gen == gen) {
		fifo_write(ref->fd, ref->wronly);
		return 1;
	}
	char path[96];
	fifo_path(ch, kind, index, gen, path, sizeof path);
	int saved = errno, wronly, fd = fifo_open(path, &wronly), err = errno;
	errno = saved; /* a wake-up that could not be sent changes nothing the caller reports */
	if (fd < 0)    /* for now only when out of descriptors or memory: the waiter stays announced */
		return !(err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR);
	fifo_write(fd, wronly);
	if (!ref) {
		close(fd);
		return 1;
	}
	if (ref->gen)
		close(ref->fd);
	ref->fd = fd;
	ref->gen = gen;
	ref->wronly = wronly;
	return 1;
}

void rmpsc__fifo_drain(int fd)
{
	char buf[256];
	ssize_t r;
	do
		r = read(fd, buf, sizeof buf);
	while (r == (ssize_t)sizeof buf || (r < 0 && errno == EINTR));
}

void rmpsc__fifo_refs_free(struct fifo_ref *refs, uint32_t n)
{
	if (!refs)
		return;
	for (uint32_t i = 0; i < n; i++)
		if (refs[i].gen)
			close(refs[i].fd);
	free(refs);
}

/* The cache of FIFO descriptors, made on first use; NULL when out of memory
 * (each signal then opens and closes the FIFO). */
static struct fifo_ref *refs_of(struct fifo_ref **refs, uint32_t n)
{
	if (!refs)
		return NULL;
	if (!*refs)
		*refs = calloc(n, sizeof **refs);
	return *refs;
}

/* Member e's bit was ours to clear: wake it. A FIFO we could not open leaves
 * it announced again, so the next publish tries again. */
static void signal_member(rmpsc_channel *ch, struct fifo_ref **refs, uint32_t e)
{
	struct member *mb = member_at(ch, e);
	uint32_t how = load_relaxed(&mb->wait_how);
	fetch_add_relaxed(&ch->hdr->consumer_wakes, 1);
	if (how & WAIT_FUTEX) {
		fetch_add_acq_rel(&mb->wake_seq, 1);
		rmpsc__futex_wake_all(&mb->wake_seq);
	}
	if (how & WAIT_FD) {
		struct fifo_ref *r = refs_of(refs, ch->L.max_consumers);
		if (!rmpsc__fifo_signal(ch, r ? &r[e] : NULL, 'm', e, load_acquire(&mb->fifo_gen)))
			fetch_or_acq_rel(&ch->hdr->waiting_members[e >> 6], 1ull << (e & 63));
	}
}

/* Does member place e want a wake-up for a publish on ring `slot`? */
static int wants_wake(const rmpsc_channel *ch, uint32_t e, uint32_t slot)
{
	struct member *mb = member_at(ch, e);
	uint32_t k = load_relaxed(&mb->wake_min);
	if (slot == LINGERERS)
		return k > 1;
	if (k <= 1 || slot == NO_SLOT)
		return 1;
	uint32_t g = load_relaxed(&mb->group);
	if (g >= ch->L.max_groups)
		return 1; /* a place being reused: wake it, it looks for itself */
	uint64_t untaken = load_relaxed(&slot_ctrl(ch, slot)->tail) - load_relaxed(&gpos_at(ch, g, slot)->cursor);
	return untaken >= k;
}

void rmpsc__wake_members_slow(rmpsc_channel *ch, struct fifo_ref **refs, uint32_t slot)
{
	uint64_t *mask = ch->hdr->waiting_members;
	for (uint32_t w = 0; w < waiting_words(ch); w++) {
		uint64_t bits = load_acquire(&mask[w]); /* acquire: the place's wait_how and wake_min */
		while (bits) {
			uint32_t b = (uint32_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			uint32_t e = w * 64 + b;
			if (e >= ch->L.max_consumers || !wants_wake(ch, e, slot))
				continue;
			/* One waker per announcement: whoever clears the bit pays the system call. */
			if (fetch_and_acq_rel(&mask[w], ~(1ull << b)) & (1ull << b)) {
				if (slot == LINGERERS) /* before the wake-up that publishes it */
					store_relaxed(&member_at(ch, e)->woken_for_slabs, 1);
				signal_member(ch, refs, e);
			}
		}
	}
}

void rmpsc__wake_producer_slow(rmpsc_channel *ch, struct fifo_ref **refs, uint32_t s)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	uint32_t how = xchg_acq_rel(&c->producer_waiting, 0);
	if (how & WAIT_FUTEX) {
		fetch_add_acq_rel(&c->space_seq, 1);
		rmpsc__futex_wake_all(&c->space_seq);
	}
	if (how & WAIT_FD) {
		struct fifo_ref *r = refs_of(refs, ch->L.max_producers);
		if (!rmpsc__fifo_signal(ch, r ? &r[s] : NULL, 'p', s, load_acquire(&c->fifo_gen)))
			fetch_or_acq_rel(&c->producer_waiting, WAIT_FD); /* the next release tries again */
	}
}

void rmpsc__wake_all_producers(rmpsc_channel *ch)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++)
		wake_producer(ch, NULL, s, 0);
	wake_progress_all(ch);
}

void rmpsc__remove_dead_fifos(rmpsc_channel *ch)
{
	/* A CAS from the generation we saw: a new holder's own FIFO is never removed. */
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t gen = load_acquire(&mb->fifo_gen);
		uint64_t w = load_acquire(&mb->owner);
		if (gen && owner_id(w) && !rmpsc__owner_alive(&ch->file, owner_id(w)) &&
		    cas_acq_rel(&mb->fifo_gen, &gen, 0))
			rmpsc__fifo_remove(ch, 'm', e, gen);
	}
	for (uint32_t s = 0; s < slot_limit(ch); s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		uint64_t gen = load_acquire(&c->fifo_gen);
		uint64_t w = load_acquire(&c->owner);
		if (gen && owner_id(w) && !rmpsc__owner_alive(&ch->file, owner_id(w)) &&
		    cas_acq_rel(&c->fifo_gen, &gen, 0))
			rmpsc__fifo_remove(ch, 'p', s, gen);
	}
}
