/*
 * Owner identity and liveness. An identity is pid + process start time (clock
 * ticks since boot, from /proc/<pid>/stat), so a recycled pid is never taken for
 * the owner. It is packed with a 3-bit state into one u64 "owner word", so a single
 * CAS claims a slot, a slab or the consumer role together with who holds it: no
 * crash point leaves a claimed thing without a recorded owner.
 *
 *   bits 0..2   state (meaning depends on the word: slot state or slab state)
 *   bits 3..24  pid (22 bits: Linux PID_MAX_LIMIT is 2^22)
 *   bits 25..63 start time (39 bits: 174 years at 100 Hz)
 */
#ifndef RMPSC_OWNER_H
#define RMPSC_OWNER_H

#include <stdint.h>
#include <sys/types.h>

#define OWNER_STATE_MASK 0x7ull
#define OWNER_PID_SHIFT  3
#define OWNER_PID_MASK   ((1ull << 22) - 1)
#define OWNER_TIME_SHIFT 25
#define OWNER_TIME_MASK  ((1ull << 39) - 1)

/* Slab owner word states. A TRANSIT word keeps the ring slot in the pid field. */
enum { SLAB_FREE = 0, SLAB_HELD = 1, SLAB_TRANSIT = 2 };

static inline uint32_t owner_state(uint64_t w) { return (uint32_t)(w & OWNER_STATE_MASK); }
static inline uint32_t owner_pid(uint64_t w) { return (uint32_t)((w >> OWNER_PID_SHIFT) & OWNER_PID_MASK); }
static inline uint64_t owner_id(uint64_t w) { return w & ~OWNER_STATE_MASK; }
static inline uint64_t owner_word(uint32_t state, uint64_t id) { return id | state; }

/* This process's identity (state bits 0). Recomputed after fork. 0 on failure. */
uint64_t rmpsc__owner_self(void);
/* Is the process named by `id` alive? Exited, zombie and recycled pids are dead. */
int rmpsc__owner_alive(uint64_t id);
/* Identity of a given pid (0 if it does not exist). */
uint64_t rmpsc__owner_of_pid(pid_t pid);

/*
 * What this process image holds, by region (st_dev, st_ino). Owner words carry
 * pid + start time, which survive exec; this process-local record does not, so a
 * slot or consumer claim that names us but is unknown here belongs to an earlier
 * image (or a leaked claim of a forked parent) and may be reclaimed.
 */
struct region_key {
	uint64_t dev, ino;
};
/* Count of handles holding the consumer role; delta +1/-1/0. Returns the new
 * count, or -1 when recording a claim ran out of memory. */
int rmpsc__held_consumer(struct region_key key, int delta);
/* Count a thread of this image in (+1) or out (-1) of holding or claiming a
 * producer slot: counted, because concurrent claimants mark a slot before their
 * CAS and the losers must not unmark the winner. Returns 0, or -1 out of memory. */
int rmpsc__held_slot(struct region_key key, uint32_t slot, int delta);
int rmpsc__holds_slot(struct region_key key, uint32_t slot);

/*
 * Incremented in the child by a pthread_atfork handler. A handle records it when
 * made; a mismatch on use means the handle was inherited through fork.
 */
extern uint32_t rmpsc__fork_generation;

#endif
