/*
 * Consumer groups (group.c): the places of groups and members in the region, the
 * mode word that says whether a group's one member consumes alone (SOLO: plain
 * stores, no atomic read-modify-write per batch) or several share it (SHARED:
 * claims under a per-ring lock, released out of order), and the producer's view
 * of how far every group has released a ring. The protocol is in
 * docs/ARCHITECTURE.md ("Consumer groups") and modelled in tests/model/groups.pml.
 */
#ifndef RMPSC_GROUP_H
#define RMPSC_GROUP_H

#include <stdint.h>

#include "attach.h"
#include "barrier.h"
#include "handle.h"

/* group.state: one of these | creator identity (attach.h) */
enum {
	GROUP_FREE = 0,
	GROUP_CREATING = 1,
	GROUP_ACTIVE = 2
};

/* group.mode: count | kind << 16 | solo member << 18 | generation << 34 */
enum {
	MODE_SHARED = 0,
	MODE_SOLO = 1,
	MODE_PENDING = 2,
	MODE_REMOVED = 3
};
#define MODE_COUNT_MASK 0xffffull
#define MODE_KIND_SHIFT 16
#define MODE_SOLO_SHIFT 18
#define MODE_GEN_SHIFT  34
_Static_assert(RMPSC_MAX_CONSUMERS <= 0xffff, "a member count and index fit the mode word");

static inline uint32_t mode_count(uint64_t m)
{
	return (uint32_t)(m & MODE_COUNT_MASK);
}
static inline uint32_t mode_kind(uint64_t m)
{
	return (uint32_t)(m >> MODE_KIND_SHIFT) & 3;
}
static inline uint32_t mode_solo(uint64_t m)
{
	return (uint32_t)(m >> MODE_SOLO_SHIFT) & 0xffff;
}
/* The generation (bumped by each creation of the place) makes a stale CAS by a
 * joiner that looked the group up before it was removed and re-created fail. */
static inline uint64_t mode_make(uint64_t old, uint32_t kind, uint32_t solo, uint32_t count)
{
	return (old >> MODE_GEN_SHIFT) << MODE_GEN_SHIFT | (uint64_t)solo << MODE_SOLO_SHIFT |
	       (uint64_t)kind << MODE_KIND_SHIFT | count;
}

/* member.owner: one of these | process identity (attach.h) for ACTIVE, JOINING, ADOPTING */
enum {
	MEMBER_FREE = 0,
	MEMBER_ACTIVE = 1,   /* a member process */
	MEMBER_JOINING = 2,  /* taken by a joiner, not counted in yet */
	MEMBER_ORPHAN = 3,   /* its member died or left: its claim waits for another member */
	MEMBER_ADOPTING = 4, /* an orphan whose claim a member of the group serves */
	MEMBER_LEFT = 5,     /* its member left: the next holder of the group lock finishes it */
};

/* member.claim: (slot + 1) << 40 | (end mod 2^40); 0 = no claim open */
#define CLAIM_END_BITS 40
#define CLAIM_END_MASK ((1ull << CLAIM_END_BITS) - 1)
_Static_assert(RMPSC_MAX_CAPACITY < CLAIM_END_MASK, "a claim's length fits its end bits");

static inline uint64_t claim_word(uint32_t slot, uint64_t end)
{
	return (uint64_t)(slot + 1) << CLAIM_END_BITS | (end & CLAIM_END_MASK);
}
static inline uint32_t claim_slot_of(uint64_t c)
{
	return (uint32_t)(c >> CLAIM_END_BITS) - 1;
}
/* Records left in a claim that starts (now) at `start`. */
static inline uint64_t claim_left(uint64_t c, uint64_t start)
{
	return (c - start) & CLAIM_END_MASK;
}

static inline struct group *group_at(const rmpsc_channel *ch, uint32_t g)
{
	return (struct group *)(ch->base + ch->L.groups_off) + g;
}
static inline struct group_pos *gpos_at(const rmpsc_channel *ch, uint32_t g, uint32_t s)
{
	return (struct group_pos *)(ch->base + ch->L.gpos_off) + (uint64_t)g * ch->L.max_producers + s;
}
static inline struct member *member_at(const rmpsc_channel *ch, uint32_t m)
{
	return (struct member *)(ch->base + ch->L.members_off) + m;
}
/* The group's head on ring s: with one group place, the ring's own head, so the
 * producer reads it exactly as it read the single consumer's. */
static inline uint64_t *group_head(const rmpsc_channel *ch, uint32_t g, uint32_t s)
{
	return ch->L.max_groups == 1 ? &slot_ctrl(ch, s)->head : &gpos_at(ch, g, s)->head;
}
/* Does a group in this state hold producers back? */
static inline int group_live(uint64_t state, uint64_t mode)
{
	uint32_t st = owner_state(state);
	return (st == GROUP_ACTIVE || st == GROUP_CREATING) && mode_kind(mode) != MODE_REMOVED;
}

/*
 * How far every group has released ring s, for a producer whose tail is `tail`:
 * the minimum of the live groups' heads (tail when there is none). A group being
 * positioned (CREATING) whose head is more than a ring behind reads as "full"
 * (tail - capacity), so the producer waits for it. Producers' slow path only.
 */
uint64_t rmpsc__released_head(const rmpsc_channel *ch, uint32_t s, uint64_t tail);

/*
 * Membership (consumer.c calls these). Join returns 1 for a place of our own, 0 for
 * one shared with another handle of this process, or an error (never waits for
 * another process longer than GROUP_LOCK_WAIT_NS: ETIMEDOUT then).
 */
int rmpsc__member_join(rmpsc_channel *ch, const char *group, unsigned flags);
/* Validate a group name and flags (before leaving the group a handle is in). */
int rmpsc__check_join(const char *group, unsigned flags);
void rmpsc__member_leave(rmpsc_channel *ch);
/*
 * The group is PENDING(m): end m's solo mode (m may be us), recording m's open
 * claim, once m is not inside a take or release. 1 done (or changed meanwhile),
 * 0 busy (m inside a take, or the group lock held): look again soon.
 */
int rmpsc__solo_end(rmpsc_channel *ch, uint64_t mode);
/* Alone in a SHARED group with nothing open: go SOLO. 1 if we did. */
int rmpsc__go_solo(rmpsc_channel *ch);
/* Adopt an orphaned claim of this member's group: 1 when one is now served, 0
 * when there is none, -1 when the group's lock is held (look again soon). */
int rmpsc__adopt_orphan(rmpsc_channel *ch);
/* Move group g's head on ring s up to the lowest open claim (or its cursor). */
void rmpsc__recompute_head(rmpsc_channel *ch, uint32_t g, uint32_t s);
/* Finish serving an adopted orphan whose claim was released entirely. */
void rmpsc__orphan_done(rmpsc_channel *ch);
/* Recover dead or departed members of every group (or only where `only_group` >= 0).
 * Returns member places recovered. *me is our identity, or 0: we attach only when
 * there is something to recover. Skips a group whose lock a live process holds. */
int rmpsc__recover_members(rmpsc_channel *ch, uint64_t *me, int only_group);
/* Is there an ORPHAN place in our group (exact scan)? */
int rmpsc__has_orphans(const rmpsc_channel *ch);
/* Our place was taken from us (we were taken for dead): forget it, and the
 * readiness FIFO we kept for it. */
void rmpsc__member_lost(rmpsc_channel *ch);

#endif
