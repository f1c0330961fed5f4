/*
 * The bytes of a channel region. Everything here lives in shared memory and holds
 * positions, indices and identities only, never pointers. The layout is always
 * recomputed from validated geometry (rmpsc__layout_compute), never read from the region.
 *
 *   header page     struct region_header (4 KiB)
 *   attachments[k]  struct attach_entry per attachment slot (attach.h), ATTACH_SLOTS of them
 *   ring control[i] struct ring_ctrl, five 128-byte lines per producer slot
 *   ring data[i]    capacity * record_size bytes, 128-byte aligned
 *   groups[g]       struct group per group place (max_groups)
 *   group pos[g][i] struct group_pos per group place and ring: head, cursor, claim lock
 *   members[m]      struct member per member place (max_consumers)
 *   slab meta[j]    struct slab_meta per slab
 *   slab data[j]    slab_stride bytes per slab, 64-byte aligned
 */
#ifndef RMPSC_LAYOUT_H
#define RMPSC_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "ringmpsc.h"

#define RMPSC_MAGIC      0x4353504d474e4952ull /* "RINGMPSC" little-endian */
#define RMPSC_LAYOUT_VER 8u                    /* bump on every change to the bytes below */
#define LINE             128u                  /* adjacent-line prefetch makes 64 bytes false-share */
#define HEADER_SIZE      4096u
#define ATTACH_SLOTS     2048u /* processes attached to one channel at a time (attach.h) */

/*
 * A ring's control block: one line per writer and reader pattern, so that no
 * store on a hot path invalidates a line the other side is reading for another
 * reason. The published lines (tail, head) are each written by one side and read
 * by the other; the private lines are read and written by one side only (they are
 * in the region, not the handle, so a successor after a crash finds them), except
 * `reserving`, which the consumer also reads while draining a closed channel; the
 * control line changes rarely.
 */
struct ring_ctrl {
	/* producer -> consumer */
	uint64_t tail; /* next position to publish; release-stored by the producer */
	uint8_t pad0_[LINE - 8];
	/* producer private */
	uint64_t cached_head; /* producer's last view of head */
	uint32_t reserving;   /* 1 while a reservation is open (close/drain protocol) */
	uint32_t reserve_pad_;
	/* Records this slot's producers gave up on (rmpsc_producer_count_dropped), over
	 * the channel's life: written by the slot's producer, read by stats. */
	uint64_t dropped;
	uint64_t drop_episodes;
	uint64_t drop_tail; /* tail at the last drop counted: a drop at another tail starts an episode */
	uint8_t pad1_[LINE - 40];
	/* consumer -> producer */
	uint64_t head; /* next position to read; release-stored by the consumer */
	uint8_t pad2_[LINE - 8];
	/* consumer private */
	uint64_t cached_tail; /* consumer's last view of tail */
	uint8_t pad3_[LINE - 8];
	/* control line */
	uint64_t owner;            /* slot word: state + owner identity, see attach.h */
	uint64_t base;             /* position at registration (stats) */
	uint32_t producer_waiting; /* WAIT_FUTEX | WAIT_FD: the producer may wait for space, and how (wait.h) */
	uint32_t space_seq;        /* futex word: bumped when space is freed while waited for */
	uint32_t record_size;      /* standalone rings: geometry, validated on attach */
	uint32_t ring_bits;
	uint32_t ring_version; /* standalone rings: RMPSC_LAYOUT_VER, checked on attach */
	uint32_t owner_pid;    /* the registered producer's pid, as it sees itself (stats only) */
	uint64_t fifo_gen;     /* the producer's readiness FIFO (notify.h), 0 = none */
	uint8_t pad4_[LINE - 48];
};
_Static_assert(sizeof(struct ring_ctrl) == 5 * LINE, "ring_ctrl is five lines");

struct region_header {
	/* immutable after creation */
	uint64_t magic; /* written last, with release, when the region is ready */
	uint32_t version;
	uint32_t header_size;
	uint32_t record_size;
	uint32_t ring_bits;
	uint32_t max_producers;
	uint32_t slab_size;
	uint32_t slab_count;
	uint32_t creator_uid;
	uint64_t total_size;
	uint64_t start_position;
	uint32_t fence_mode;   /* enum fence_mode (barrier.h), fixed at creation */
	uint32_t attach_slots; /* ATTACH_SLOTS, checked on open */
	uint32_t max_consumers;
	uint32_t max_groups;
	uint64_t channel_id; /* random, names the channel's readiness FIFOs (notify.h) */
	uint8_t pad0_[LINE - 80];

	/* closed line */
	uint32_t closed; /* 0 open, 1 closed; futex waiters re-check it */
	uint32_t fenced_rings;
	uint32_t reclaimed_slots;
	uint32_t slot_hw; /* slots [0, slot_hw) were ever registered */
	uint8_t pad1_[LINE - 16];

	/* consumer line */
	uint64_t groups_lock; /* owner identity (attach.h) of the process creating or removing a group, 0 = none */
	/* Bit e: member place e may be waiting for records; how, and for how many, is
	 * in its place (notify.h). What a producer loads on every publish. */
	uint64_t waiting_members[RMPSC_MAX_CONSUMERS / 64];
	uint64_t consumer_wakes;    /* wake-ups sent to waiting members (stats) */
	uint32_t recovered_members; /* dead members recovered (stats) */
	uint32_t fifo_counter;      /* last readiness FIFO generation handed out (notify.h) */
	uint8_t pad2_[LINE - 56];

	/* slab line */
	uint32_t slab_cursor; /* rotating allocation hint */
	/* Senders waiting for the consumers' progress: a free slab, or fewer pending
	 * records (rmpsc_wait_pending_below). Every release of records and every slab
	 * freed wakes them (wait.h). */
	uint32_t progress_waiting; /* flag: someone may sleep on progress_seq */
	uint32_t progress_seq;     /* futex word: bumped on progress while someone waits */
	/* The largest limit a sender waiting in rmpsc_wait_pending_below announced
	 * since the last wake-up (0: none known): while only such senders wait
	 * (progress_waiting == WAIT_PENDING), a release that leaves at least this many
	 * records pending wakes nobody (notify.h, wake_progress). */
	uint32_t pending_limit;
	uint64_t slab_assembler; /* identity (attach.h) of the one sender gathering slabs for a message slowly, 0 = none */
	uint32_t pending_skips; /* releases that skipped the wake-up for pending_limit (notify.h), modulo a bound */
	uint8_t pad3_[LINE - 28];
};
_Static_assert(sizeof(struct region_header) <= HEADER_SIZE, "header fits its page");

/*
 * One attachment slot (attach.h). Its lock byte in the region file is the entry's
 * first byte; the lock, not these words, says whether a holder is alive.
 */
struct attach_entry {
	uint64_t gen; /* bumped by each new holder, while it holds the lock */
	uint32_t pid; /* holder's pid as it sees itself; 0 once released (a hint) */
	uint32_t pad_;
};
_Static_assert(sizeof(struct attach_entry) == 16, "attach_entry is 16 bytes");

/*
 * A consumer group place (group.c). `state` and `mode` change by CAS only; the
 * mode and the group's member places change only under `lock`.
 *   state: GROUP_FREE, GROUP_CREATING | creator identity, GROUP_ACTIVE
 *   mode:  member count (bits 0..15) | kind (16..17) | solo member (18..33) | generation
 */
struct group {
	uint64_t state;
	uint64_t mode;
	uint32_t flags;       /* RMPSC_GROUP_*, fixed while the group exists */
	uint32_t orphans;     /* member places of this group whose claim waits for adoption */
	uint64_t lock;        /* identity of the process changing the group's members, 0 = none (group.c) */
	uint64_t redelivered; /* records delivered again (stats) */
	char name[RMPSC_GROUP_NAME_MAX + 1];
	uint8_t pad_[LINE - 40 - (RMPSC_GROUP_NAME_MAX + 1)];
};
_Static_assert(sizeof(struct group) == LINE, "group is one line");

/*
 * A group's positions on one ring: every record below `head` is released by the
 * group, every record below `cursor` was taken by one of its members; `lock` is 0
 * or member index + 1 of the member taking a claim here (SHARED mode). With one
 * group place (max_groups == 1) the group's head is ring_ctrl.head itself.
 */
struct group_pos {
	uint64_t head;
	uint64_t cursor;
	uint64_t lock;
	uint64_t pad_;
};
_Static_assert(sizeof(struct group_pos) == 32, "group_pos is 32 bytes");

/*
 * A member place: one consumer process in one group (group.c). Written by its
 * member, read by recomputes and recoverers.
 *   owner: MEMBER_FREE, MEMBER_ACTIVE | id, MEMBER_JOINING | id, MEMBER_ORPHAN,
 *          MEMBER_ADOPTING | id, MEMBER_LEFT (id: attach.h identity of the process)
 *   claim: (slot + 1) << 40 | (end position mod 2^40), 0: no claim open. The claim
 *          is [claim_start, end); claim_start is written before the word, and a
 *          partial release moves claim_start alone (one store).
 */
struct member {
	uint64_t owner;
	uint32_t group;
	uint32_t pid; /* as the member sees itself (stats and messages) */
	uint64_t claim_start;
	uint64_t claim;
	uint32_t deliveries;      /* of the open claim: 1, or more once redelivered */
	uint32_t busy;            /* SOLO: 1 while the member takes or releases with plain stores (group.c) */
	uint32_t solo_ring;       /* SOLO: ring + 1 of the member's open claim (head < cursor there), 0 none */
	uint32_t woken_for_slabs; /* 1: a sender waiting for slabs ended its linger (notify.h); the member clears it */
	/* Waiting (notify.h): written by the member before it sets its waiting_members
	 * bit, read by the producer that clears the bit to wake it. */
	uint32_t wake_seq; /* futex word of the member's blocking waits */
	uint32_t wait_how; /* WAIT_FUTEX | WAIT_FD */
	uint32_t wake_min; /* wake it once one ring holds this many records it has not taken */
	uint32_t pad2_;
	uint64_t fifo_gen; /* its readiness FIFO, 0 = none */
	uint8_t pad_[LINE - 72];
};
_Static_assert(sizeof(struct member) == LINE, "member is one line");

/*
 * Per-slab state: the owner word (free, held by a process, or in transit on a
 * ring record; see slab.c) and the used length. One CAS moves a slab between
 * states, so no crash point leaks one.
 */
struct slab_meta {
	uint64_t owner;
	uint32_t len;
	uint32_t pad_;
};
_Static_assert(sizeof(struct slab_meta) == 16, "slab_meta is 16 bytes");

/* Geometry, as validated, plus the offsets derived from it. */
struct layout {
	uint32_t record_size;
	uint32_t ring_bits;
	uint32_t capacity;
	uint32_t max_producers;
	uint32_t slab_size;
	uint32_t slab_count;
	uint32_t max_consumers;
	uint32_t max_groups;
	uint32_t fence_mode; /* enum fence_mode; set by the caller of rmpsc__layout_compute */
	uint64_t slab_stride;
	uint64_t start_position;
	uint64_t ring_bytes; /* data bytes per ring, rounded to LINE */
	uint64_t attach_off;
	uint64_t ctrl_off;
	uint64_t data_off;
	uint64_t groups_off;
	uint64_t gpos_off;
	uint64_t members_off;
	uint64_t slab_meta_off;
	uint64_t slab_data_off;
	uint64_t total_size;
};

/* Validate geometry and compute the layout. RMPSC_OK or EINVAL with a message
 * naming the field (`what` prefixes it: "config" or "region"). */
int rmpsc__layout_compute(struct layout *out, const struct rmpsc_config *cfg, const char *what);

static inline int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}
static inline uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

#endif /* RMPSC_LAYOUT_H */
