/*
 * Creating, opening and releasing a channel's region. Opening never trusts the
 * bytes: magic, version and every geometry field are checked against their bounds,
 * the layout is recomputed from them, and the file must be as large as claimed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "group.h"
#include "handle.h"
#include "notify.h"
#include "ring.h"
#include "slab.h"

/* "jobs" and "/jobs" both name /dev/shm/jobs. Writes the normalized name to out. */
static int normalize_name(const char *name, char *out, size_t outlen)
{
	const char *n = name[0] == '/' ? name + 1 : name;
	size_t len = strlen(n);
	if (len == 0 || len + 2 > outlen || len > NAME_MAX - 1)
		return rmpsc__set_error(RMPSC_EINVAL, "name \"%s\" must be 1..%d characters", name, NAME_MAX - 1);
	if (strchr(n, '/'))
		return rmpsc__set_error(RMPSC_EINVAL, "name \"%s\" must not contain '/' after the first character", name);
	if (!strcmp(n, ".") || !strcmp(n, ".."))
		return rmpsc__set_error(RMPSC_EINVAL, "name \"%s\" is not a valid shm name", name);
	out[0] = '/';
	memcpy(out + 1, n, len + 1);
	return RMPSC_OK;
}

/* Names the channel's readiness FIFOs (notify.h): random, so that channels made
 * one after the other under the same name never share them. */
static uint64_t new_channel_id(const void *base)
{
	uint64_t id;
	if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id)
		id = (uint64_t)rmpsc__monotonic_ns() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)base;
	return id;
}

static int make_handle(rmpsc_channel **out, int fd, unsigned char *base, const struct layout *L, const char *name,
		       unsigned flags)
{
	rmpsc_channel *ch = calloc(1, sizeof *ch);
	rmpsc_ring *rings = calloc(L->max_producers, sizeof *rings);
	uint64_t *tails = calloc(L->max_producers, sizeof *tails);
	char *dup = name ? strdup(name) : NULL;
	if (!ch || !rings || !tails || (name && !dup)) {
		free(ch);
		free(rings);
		free(tails);
		free(dup);
		errno = ENOMEM;
		return rmpsc__sys_error("allocating a channel handle");
	}
	ch->base = base;
	ch->hdr = (struct region_header *)base;
	ch->L = *L;
	ch->rings = rings;
	ch->tails = tails;
	ch->member = -1;
	ch->serving = -1;
	ch->solo_open = UINT32_MAX;
	ch->coalesce_records = RMPSC_COALESCE_RECORDS;
	ch->coalesce_delay_ns = RMPSC_COALESCE_DELAY_NS;
	ch->arm_fresh = 1;
	memcpy(ch->group_name, RMPSC_DEFAULT_GROUP, sizeof RMPSC_DEFAULT_GROUP);
	ch->file.fd = fd;
	ch->file.table = (struct attach_entry *)(base + L->attach_off);
	ch->file.table_off = L->attach_off;
	ch->read_handle = RMPSC_INVALID_HANDLE;
	ch->flags = flags & ~RMPSC_CREATE_FULL_FENCES;
	ch->asymmetric = L->fence_mode == FENCE_ASYMMETRIC;
	ch->file.name = dup;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? rmpsc__sys_error("fstat") : RMPSC_OK;
	if (!rc) {
		ch->file.key = (struct region_key){ (uint64_t)st.st_dev, (uint64_t)st.st_ino };
		rc = rmpsc__attach_open(&ch->file);
	}
	if (rc) {
		free(ch);
		free(rings);
		free(tails);
		free(dup);
		return rc;
	}
	for (uint32_t s = 0; s < L->max_producers; s++)
		ring_view_init(&rings[s], slot_ctrl(ch, s), slot_data(ch, s), L->record_size, L->ring_bits);
	*out = ch;
	return RMPSC_OK;
}

static void format_region(unsigned char *base, const struct layout *L)
{
	struct region_header *h = (struct region_header *)base;
	h->version = RMPSC_LAYOUT_VER;
	h->fence_mode = L->fence_mode;
	h->attach_slots = ATTACH_SLOTS;
	h->header_size = HEADER_SIZE;
	h->record_size = L->record_size;
	h->ring_bits = L->ring_bits;
	h->max_producers = L->max_producers;
	h->slab_size = L->slab_size;
	h->slab_count = L->slab_count;
	h->creator_uid = (uint32_t)getuid();
	h->channel_id = new_channel_id(base);
	h->total_size = L->total_size;
	h->start_position = L->start_position;
	h->max_consumers = L->max_consumers;
	h->max_groups = L->max_groups;
	for (uint32_t s = 0; s < L->max_producers; s++) {
		struct ring_ctrl *c = (struct ring_ctrl *)(base + L->ctrl_off) + s;
		c->tail = c->cached_head = c->head = c->cached_tail = c->base = L->start_position;
		c->record_size = L->record_size;
		c->ring_bits = L->ring_bits;
	}
	/* The default group exists from the start, durable and empty, so records wait
	 * for its first member. Every group position starts at the first position. */
	for (uint32_t g = 0; g < L->max_groups; g++)
		for (uint32_t s = 0; s < L->max_producers; s++) {
			struct group_pos *p =
				(struct group_pos *)(base + L->gpos_off) + (uint64_t)g * L->max_producers + s;
			p->head = p->cursor = L->start_position;
		}
	struct group *dflt = (struct group *)(base + L->groups_off);
	memcpy(dflt->name, RMPSC_DEFAULT_GROUP, sizeof RMPSC_DEFAULT_GROUP);
	dflt->mode = 1ull << MODE_GEN_SHIFT; /* generation 1, SHARED, no member */
	dflt->state = GROUP_ACTIVE;
	/* The file is fresh (zero-filled): slab owner words are already FREE (0), member
	 * places FREE, other group places FREE. */
	/* Publish last: an opener that sees the magic sees a fully formatted region. */
	store_release(&h->magic, RMPSC_MAGIC);
}

int rmpsc_channel_create(rmpsc_channel **out, const char *name, const struct rmpsc_config *cfg, unsigned flags)
{
	if (out)
		*out = NULL;
	if (!out || !cfg)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_create: out and config must not be NULL");
	if (flags & ~(RMPSC_OPEN_INTERRUPTIBLE | RMPSC_CREATE_FULL_FENCES))
		return rmpsc__set_error(RMPSC_EINVAL, "channel_create: unknown flags 0x%x", flags);
	struct layout L;
	int rc = rmpsc__layout_compute(&L, cfg, "config");
	if (rc)
		return rc;
	mode_t mode = cfg->mode ? (mode_t)cfg->mode : 0600;
	if (mode & ~(mode_t)0777)
		return rmpsc__set_error(RMPSC_EINVAL, "config.mode 0%o: permission bits only (0 .. 0777)",
					(unsigned)cfg->mode);
	if ((mode & 0600) != 0600)
		return rmpsc__set_error(RMPSC_EINVAL,
					"config.mode 0%o: the owner needs read and write (0600): every process, the "
					"creator too, opens the region file again to attach",
					(unsigned)cfg->mode);
	/* Asymmetric fences where this process can register for them (barrier.h). */
	L.fence_mode =
		!(flags & RMPSC_CREATE_FULL_FENCES) && rmpsc__fence_register() == 0 ? FENCE_ASYMMETRIC : FENCE_FULL;
	char shm_name[NAME_MAX + 1];
	int fd;
	if (name) {
		if ((rc = normalize_name(name, shm_name, sizeof shm_name)))
			return rc;
		fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return rmpsc__sys_error(errno == EEXIST ? "shm_open: name exists (unlink it first)" : "shm_open");
		if ((fd = rmpsc__fd_above_stdio(fd)) < 0) {
			rc = rmpsc__sys_error("fcntl(F_DUPFD_CLOEXEC)");
			shm_unlink(shm_name);
			return rc;
		}
	} else {
		fd = rmpsc__fd_above_stdio(memfd_create("ringmpsc", MFD_CLOEXEC | MFD_ALLOW_SEALING));
		if (fd < 0)
			return rmpsc__sys_error("memfd_create");
	}
	/* Reserve every page now, so a full /dev/shm fails here and not as SIGBUS later. */
	if (ftruncate(fd, (off_t)L.total_size) < 0) {
		rc = rmpsc__sys_error("ftruncate");
		goto fail;
	}
	if ((errno = posix_fallocate(fd, 0, (off_t)L.total_size))) {
		rc = rmpsc__sys_error("posix_fallocate (is /dev/shm large enough?)");
		goto fail;
	}
	/* An anonymous region's size is fixed for good: nobody holding its fd can
	 * shrink it under other processes' mappings (which would raise SIGBUS). */
	if (!name && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		rc = rmpsc__sys_error("sealing the memfd");
		goto fail;
	}
	/* Access before the magic is written: an opener sees these permissions or none.
	 * The group first: a chown by a non-root process may clear setgid-like bits. */
	if (cfg->gid && fchown(fd, (uid_t)-1, (gid_t)cfg->gid) < 0) {
		char what[96];
		snprintf(what, sizeof what, "config.gid %u: fchown (the creator must be root or a member of it)",
			 (unsigned)cfg->gid);
		rc = rmpsc__sys_error(what);
		goto fail;
	}
	if (fchmod(fd, mode) < 0) {
		rc = rmpsc__sys_error("config.mode: fchmod");
		goto fail;
	}
	unsigned char *base = mmap(NULL, L.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = rmpsc__sys_error("mmap");
		goto fail;
	}
	format_region(base, &L);
	if ((rc = make_handle(out, fd, base, &L, name ? shm_name : NULL, flags))) {
		munmap(base, L.total_size);
		goto fail;
	}
	return RMPSC_OK;
fail:
	close(fd);
	if (name)
		shm_unlink(shm_name);
	return rc;
}

/* Validate the header against its bounds and the file; fill *L from it. */
static int validate_header(const struct region_header *h, uint64_t file_size, struct layout *L)
{
	memset(L, 0, sizeof *L); /* callers compare layouts with memcmp: no stray padding bytes */
	uint64_t magic = load_acquire(&h->magic);
	if (magic == 0)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region is not initialized (creation in progress or failed)");
	if (magic != RMPSC_MAGIC)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region has bad magic 0x%016llx: not a ringmpsc channel",
					(unsigned long long)magic);
	if (h->version != RMPSC_LAYOUT_VER)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region layout version %u, this library reads %u", h->version,
					RMPSC_LAYOUT_VER);
	if (h->header_size != HEADER_SIZE)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region header_size %u, expected %u", h->header_size,
					HEADER_SIZE);
	uint32_t fence_mode = load_relaxed(&h->fence_mode); /* read once: the check and the use agree */
	if (fence_mode != FENCE_FULL && fence_mode != FENCE_ASYMMETRIC)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region fence_mode %u is neither full (%u) nor asymmetric (%u)",
					fence_mode, FENCE_FULL, FENCE_ASYMMETRIC);
	if (h->attach_slots != ATTACH_SLOTS)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region attach_slots %u, this library uses %u", h->attach_slots,
					ATTACH_SLOTS);
	if (h->ring_bits >= 32)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region ring_bits %u out of range", h->ring_bits);
	struct rmpsc_config cfg = {
		.record_size = h->record_size,
		.capacity = 1u << h->ring_bits,
		.max_producers = h->max_producers,
		.slab_size = h->slab_size,
		.slab_count = h->slab_count,
		.start_position = h->start_position,
		.max_consumers = h->max_consumers,
		.max_groups = h->max_groups,
	};
	if (h->max_consumers == 0 || h->max_groups == 0)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region max_consumers %u / max_groups %u must be >= 1",
					h->max_consumers, h->max_groups);
	if (rmpsc__layout_compute(L, &cfg, "region"))
		return RMPSC_ECORRUPT; /* the message, naming the field, is already set */
	L->fence_mode = fence_mode;    /* in the layout, so the caller's re-check of the live header covers it */
	if (h->total_size != L->total_size)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region total_size %llu does not match its geometry (%llu)",
					(unsigned long long)h->total_size, (unsigned long long)L->total_size);
	if (file_size < L->total_size)
		return rmpsc__set_error(RMPSC_ECORRUPT, "region file is %llu bytes, geometry needs %llu (truncated)",
					(unsigned long long)file_size, (unsigned long long)L->total_size);
	return RMPSC_OK;
}

static int attach_owned_fd(rmpsc_channel **out, int fd, const char *name, unsigned flags)
{
	struct stat st;
	struct layout L;
	int rc;
	if (fstat(fd, &st) < 0) {
		rc = rmpsc__sys_error("fstat");
		goto fail;
	}
	if ((uint64_t)st.st_size < HEADER_SIZE) {
		rc = rmpsc__set_error(RMPSC_ECORRUPT, "region file is %lld bytes, smaller than a header (%u)",
				      (long long)st.st_size, HEADER_SIZE);
		goto fail;
	}
	void *hp = mmap(NULL, HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (hp == MAP_FAILED) {
		rc = rmpsc__sys_error("mmap header");
		goto fail;
	}
	rc = validate_header(hp, (uint64_t)st.st_size, &L);
	munmap(hp, HEADER_SIZE);
	if (rc)
		goto fail;
	unsigned char *base = mmap(NULL, L.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = rmpsc__sys_error("mmap");
		goto fail;
	}
	/* Geometry was validated on our private read; re-check the live header so a
	 * writer racing us cannot make the mapping and the layout disagree. */
	struct layout again;
	if ((rc = validate_header((struct region_header *)base, (uint64_t)st.st_size, &again)) ||
	    memcmp(&again, &L, sizeof L)) {
		munmap(base, L.total_size);
		rc = rc ? rc : rmpsc__set_error(RMPSC_ECORRUPT, "region header changed while opening");
		goto fail;
	}
	/* Other processes' hot paths on this channel rely on our cold barriers
	 * reaching them, and ours on theirs: a process that cannot register must
	 * not map it (barrier.h). */
	if (L.fence_mode == FENCE_ASYMMETRIC && (errno = rmpsc__fence_register())) {
		munmap(base, L.total_size);
		rc = rmpsc__sys_error("membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED): the channel uses "
				      "asymmetric fences (create it with RMPSC_CREATE_FULL_FENCES for processes "
				      "that cannot use membarrier)");
		goto fail;
	}
	if ((rc = make_handle(out, fd, base, &L, name, flags))) {
		munmap(base, L.total_size);
		goto fail;
	}
	return RMPSC_OK;
fail:
	close(fd);
	return rc;
}

int rmpsc_channel_open(rmpsc_channel **out, const char *name, unsigned flags)
{
	if (out)
		*out = NULL;
	if (!out || !name)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_open: out and name must not be NULL");
	if (flags & ~RMPSC_OPEN_INTERRUPTIBLE)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_open: unknown flags 0x%x", flags);
	char shm_name[NAME_MAX + 1];
	int rc = normalize_name(name, shm_name, sizeof shm_name);
	if (rc)
		return rc;
	int fd = rmpsc__fd_above_stdio(shm_open(shm_name, O_RDWR | O_CLOEXEC, 0));
	if (fd < 0)
		return rmpsc__sys_error("shm_open");
	return attach_owned_fd(out, fd, shm_name, flags);
}

int rmpsc_channel_attach_fd(rmpsc_channel **out, int fd, unsigned flags)
{
	if (!out)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_attach_fd: out must not be NULL");
	*out = NULL;
	if (fd < 0)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_attach_fd: fd %d is not a file descriptor", fd);
	if (flags & ~RMPSC_OPEN_INTERRUPTIBLE)
		return rmpsc__set_error(RMPSC_EINVAL, "channel_attach_fd: unknown flags 0x%x", flags);
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 3); /* above stdio, which others redirect (attach.c) */
	if (own < 0)
		return rmpsc__sys_error("dup");
	return attach_owned_fd(out, own, NULL, flags);
}

int rmpsc_unlink(const char *name)
{
	if (!name)
		return rmpsc__set_error(RMPSC_EINVAL, "unlink: name must not be NULL");
	char shm_name[NAME_MAX + 1];
	int rc = normalize_name(name, shm_name, sizeof shm_name);
	if (rc)
		return rc;
	/* Not the channel's readiness FIFOs: processes that mapped it go on using them
	 * (notify.c removes those nobody holds open any more). */
	if (shm_unlink(shm_name) < 0)
		return rmpsc__sys_error("shm_unlink");
	return RMPSC_OK;
}

void rmpsc_channel_release(rmpsc_channel *ch)
{
	if (!ch)
		return;
	rmpsc_consumer_leave(ch); /* frees deferred slabs whose records were advanced past */
	/* Readiness FIFOs of holders that died: perhaps nobody else is left to see. */
	rmpsc__remove_dead_fifos(ch);
	rmpsc__attach_close(&ch->file); /* after every claim of ours is let go: they die with the attachment */
	munmap(ch->base, ch->L.total_size);
	close(ch->file.fd);
	free(ch->rings);
	free(ch->tails);
	free(ch->deferred);
	free(ch->file.name);
	free(ch);
}

int rmpsc_channel_fd(const rmpsc_channel *ch)
{
	return ch ? ch->file.fd : -1;
}

const char *rmpsc_channel_name(const rmpsc_channel *ch)
{
	return ch ? ch->file.name : NULL;
}

void rmpsc_channel_config(const rmpsc_channel *ch, struct rmpsc_config *out)
{
	if (!ch || !out)
		return;
	out->record_size = ch->L.record_size;
	out->capacity = ch->L.capacity;
	out->max_producers = ch->L.max_producers;
	out->max_consumers = ch->L.max_consumers;
	out->max_groups = ch->L.max_groups;
	out->slab_size = ch->L.slab_size;
	out->slab_count = ch->L.slab_count;
	out->start_position = ch->L.start_position;
	struct stat st;
	int ok = fstat(ch->file.fd, &st) == 0;
	out->mode = ok ? (uint32_t)(st.st_mode & 0777) : 0;
	out->gid = ok ? (uint32_t)st.st_gid : 0;
}
