#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "group.h"
#include "notify.h"

#define FIFO_DIR "/dev/shm/"

#define FIFO_PREFIX ".ringmpsc-%016llx-"

static void fifo_path(const rmpsc_channel *ch, char kind, uint32_t index, uint32_t gen, char *buf, size_t n)
{
	snprintf(buf, n, FIFO_DIR FIFO_PREFIX "%c%u-%u", (unsigned long long)ch->hdr->channel_id, kind, index, gen);
}

/* Open a readiness FIFO by name: never through a symlink, never anything but a
 * FIFO (in a world-writable directory someone else may have put a file there). */
static int fifo_open(const char *path)
{
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
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

int rmpsc__fifo_create(rmpsc_channel *ch, char kind, uint32_t index, uint32_t *gen)
{
	uint32_t g;
	do /* never 0, which means "none" */
		g = fetch_add_relaxed(&ch->hdr->fifo_counter, 1) + 1;
	while (g == 0);
	char path[96];
	fifo_path(ch, kind, index, g, path, sizeof path);
	/* Whoever may open the region may open its FIFOs (the umask does not apply). */
	struct stat st;
	mode_t mode = fstat(ch->file.fd, &st) == 0 ? (st.st_mode & 0666) : 0600;
	if (mkfifo(path, 0600) < 0 && errno != EEXIST)
		return rmpsc__sys_error("mkfifo " FIFO_DIR "(readiness fd)");
	int fd = fifo_open(path);
	if (fd < 0) {
		int rc = rmpsc__sys_error("open readiness FIFO");
		unlink(path);
		return rc;
	}
	if (fchmod(fd, mode) < 0) {
		int rc = rmpsc__sys_error("fchmod readiness FIFO");
		close(fd);
		unlink(path);
		return rc;
	}
	*gen = g;
	return fd;
}

void rmpsc__fifo_remove(const rmpsc_channel *ch, char kind, uint32_t index, uint32_t gen)
{
	if (!gen)
		return;
	char path[96];
	fifo_path(ch, kind, index, gen, path, sizeof path);
	unlink(path);
}

static void fifo_write(int fd)
{
	ssize_t r;
	do
		r = write(fd, "", 1); /* EAGAIN: full, so readable already */
	while (r < 0 && errno == EINTR);
}

void rmpsc__fifo_signal(const rmpsc_channel *ch, struct fifo_ref *ref, char kind, uint32_t index, uint32_t gen)
{
	if (!gen)
		return;
	if (ref && ref->gen == gen) {
		fifo_write(ref->fd);
		return;
	}
	char path[96];
	fifo_path(ch, kind, index, gen, path, sizeof path);
	int saved = errno, fd = fifo_open(path);
	errno = saved; /* a wake-up that could not be sent changes nothing the caller reports */
	if (fd < 0)
		return; /* gone: its waiter left, and a new one announces itself afresh */
	fifo_write(fd);
	if (!ref) {
		close(fd);
		return;
	}
	if (ref->gen)
		close(ref->fd);
	ref->fd = fd;
	ref->gen = gen;
}

void rmpsc__fifo_remove_all(uint64_t channel_id)
{
	char prefix[64];
	int n = snprintf(prefix, sizeof prefix, FIFO_PREFIX, (unsigned long long)channel_id);
	DIR *d = opendir(FIFO_DIR);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, (size_t)n))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
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
		rmpsc__fifo_signal(ch, r ? &r[e] : NULL, 'm', e, load_acquire(&mb->fifo_gen));
	}
}

/* Does member place e want a wake-up for a publish on ring `slot`? */
static int wants_wake(const rmpsc_channel *ch, uint32_t e, uint32_t slot)
{
	struct member *mb = member_at(ch, e);
	uint32_t k = load_relaxed(&mb->wake_min);
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
			if (fetch_and_acq_rel(&mask[w], ~(1ull << b)) & (1ull << b))
				signal_member(ch, refs, e);
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
		rmpsc__fifo_signal(ch, r ? &r[s] : NULL, 'p', s, load_acquire(&c->fifo_gen));
	}
}

void rmpsc__wake_all_producers(rmpsc_channel *ch)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++)
		wake_producer(ch, NULL, s, 0);
}
