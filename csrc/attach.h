/*
 * Owner identity and liveness that the kernel vouches for.
 *
 * Every process that takes a role on a channel (registers a producer, consumes,
 * allocates slabs, reclaims) first *attaches*: it locks one entry of the region's
 * attachment table with an open-file-description lock (fcntl F_OFD_SETLK) on that
 * entry's byte of the region file, taken through an open file description of its
 * own (the region re-opened through /proc/thread-self/fd, else /proc/self/fd, else
 * by name; O_CLOEXEC), and then bumps the
 * entry's generation. Owner words of producer slots, the consumer role and slabs
 * name (entry index, generation). The kernel drops the lock when the last file
 * descriptor of that description closes: when the process dies (zombies included),
 * when it execs (O_CLOEXEC), or when it releases its last handle. So
 *
 *     the holder of (i, g) is alive  <=>  entry i's generation is g and byte i is locked
 *
 * and F_OFD_GETLK answers that from any process that shares the file, in any PID
 * namespace: no pid, no /proc/<pid>, no start time is involved. The lock is taken
 * before the generation is bumped, so the answer can be stale only towards "alive"
 * (a dead holder whose entry a newcomer locked but has not bumped yet), which only
 * delays a reclaim. A forked child replaces its copy of the parent's description
 * with one of its own (pthread_atfork) and attaches anew when it first needs an
 * identity.
 *
 * Owner word (u64, changed by CAS only):
 *   bits 0..2    state (slot state, or slab state)
 *   bits 3..13   attachment index (< ATTACH_SLOTS)
 *   bits 14..63  generation (>= 1; 0 means "no owner")
 */
#ifndef RMPSC_ATTACH_H
#define RMPSC_ATTACH_H

#include <stdint.h>

#include "barrier.h"
#include "layout.h"

#define OWNER_STATE_MASK  0x7ull
#define OWNER_INDEX_SHIFT 3
#define OWNER_INDEX_BITS  11
#define OWNER_GEN_SHIFT   (OWNER_INDEX_SHIFT + OWNER_INDEX_BITS)
#define OWNER_GEN_MASK    ((1ull << (64 - OWNER_GEN_SHIFT)) - 1)
_Static_assert(ATTACH_SLOTS <= 1u << OWNER_INDEX_BITS, "an attachment index fits an owner word");

/* Slab owner word states. A TRANSIT word keeps the ring slot and position instead (slab.c). */
enum {
	SLAB_HELD = 1,
	SLAB_TRANSIT = 2
};

static inline uint32_t owner_state(uint64_t w)
{
	return (uint32_t)(w & OWNER_STATE_MASK);
}
static inline uint64_t owner_id(uint64_t w)
{
	return w & ~OWNER_STATE_MASK;
}
static inline uint64_t owner_word(uint32_t state, uint64_t id)
{
	return id | state;
}
static inline uint32_t owner_index(uint64_t id)
{
	return (uint32_t)(id >> OWNER_INDEX_SHIFT) & ((1u << OWNER_INDEX_BITS) - 1);
}
static inline uint64_t owner_gen(uint64_t id)
{
	return id >> OWNER_GEN_SHIFT;
}

/* Identifies a region file: handles of one process on the same file share one
 * attachment. */
struct region_key {
	uint64_t dev, ino;
};

struct attachment; /* process-local: one per region file this process maps (attach.c) */

/* What attaching needs to know of a handle's region. */
struct region_file {
	int fd;     /* the handle's own descriptor of the region file */
	char *name; /* its shm name ("/x"), or NULL (anonymous) */
	struct region_key key;
	struct attach_entry *table; /* the mapped attachment table */
	uint64_t table_off;         /* its offset in the file (entry i's lock byte: table_off + 16 i) */
	struct attachment *att;     /* this process's record of the region */
};

/* A handle is made: find or make this process's record of the region and open
 * its own description of the file now, while the process surely can (attaching
 * may come later, after it dropped privileges). RMPSC_OK or ESYS (out of memory). */
int rmpsc__attach_open(struct region_file *f);
/* A handle is released: the last one of a process unlocks its entry (every claim
 * naming it is then gone) and closes the description. */
void rmpsc__attach_close(struct region_file *f);
/*
 * This process's identity on the region, attaching first if it has not (since it
 * opened the region, or since fork). RMPSC_OK, or ENOSLOT (every entry held by a
 * live process) / ESYS (no description of its own could be opened).
 */
int rmpsc__attach(struct region_file *f, uint64_t *id);
/* This process's identity if it is attached, else 0. Never attaches. */
uint64_t rmpsc__attached_id(const struct region_file *f);

/* Is the holder named by owner identity `id` still attached? 1 or 0. When the
 * kernel cannot answer, 1: a live owner's claim is never taken. */
int rmpsc__owner_alive(const struct region_file *f, uint64_t id);
/* The same, remembering answers for one scan so each owner costs at most one
 * system call (16 KiB: per attachment entry, generation << 2 | known | alive). */
struct alive_cache {
	uint64_t known[ATTACH_SLOTS];
};
int rmpsc__owner_alive_cached(const struct region_file *f, struct alive_cache *cache, uint64_t id);
/* The pid the holder of `id` recorded (as its own PID namespace sees it), or 0
 * when that entry has another holder or none now. For messages and humans only. */
uint32_t rmpsc__owner_pid(const struct region_file *f, uint64_t id);

/* This process's lock over its attachments (attach_lock, held across fork). Group
 * code (group.c) holds it while it holds a group's lock, so one thread of a process
 * at a time acts for the process's identity there; it never waits for another
 * process while holding it. Not to be taken around rmpsc__attach. */
void rmpsc__process_lock(void);
void rmpsc__process_unlock(void);
/* Handles of this process sharing member place `idx` (process lock held). */
int *rmpsc__member_holders(struct region_file *f, uint32_t idx);
/* Set while an rmpsc_consume callback runs for member place `idx` in this process,
 * whichever handle of the process runs it (one thread at a time per place). */
uint8_t *rmpsc__member_in_callback(struct region_file *f, uint32_t idx);
/* The readiness FIFO this process holds for member place `idx`, shared by its
 * handles in that place (process lock held to make or drop it). */
struct member_fifo {
	int fd1;      /* descriptor + 1; 0: none */
	uint64_t gen; /* its generation (notify.h) */
	int armed;    /* rmpsc_ready_arm left the place announced for the fd */
};
struct member_fifo *rmpsc__member_fifo(struct region_file *f, uint32_t idx);

/* Move a descriptor above stdio (0..2), closing the low one. -1 with errno. */
int rmpsc__fd_above_stdio(int fd);

/*
 * This process's fork generation, which changes in every child whether or not
 * the child ran pthread_atfork handlers (glibc's _Fork, a raw clone): the word
 * lives in a MADV_WIPEONFORK page, which the kernel zeroes in a child, and the
 * first call that reads 0 there resets the child (rmpsc__forked). A handle records
 * it when made; a mismatch on use means the handle was inherited through fork.
 */
extern uint32_t *rmpsc__fork_word;
uint32_t rmpsc__forked(void);
static inline uint32_t fork_generation(void)
{
	uint32_t gen = load_acquire(rmpsc__fork_word);
	return likely(gen) ? gen : rmpsc__forked();
}

#endif
