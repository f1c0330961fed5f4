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

/* member.owner: one of these | process identity (attach.h) for ACTIVE, RECOVERING, ADOPTING */
enum {
	MEMBER_FREE = 0,
	MEMBER_ACTIVE = 1,
	MEMBER_RECOVERING = 2,
	MEMBER_ORPHAN = 3,
	MEMBER_ADOPTING = 4
};

/* member.claim: slot << 32 | count; 0 = no claim open */
static inline uint64_t claim_word(uint32_t slot, uint64_t count)
{
	return (uint64_t)slot << 32 | count;
}
static inline uint32_t claim_slot_of(uint64_t c)
{
	return (uint32_t)(c >> 32);
}
static inline uint32_t claim_count_of(uint64_t c)
{
	return (uint32_t)c;
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

/* Membership (consumer.c calls these). Join returns 1 for a place of our own, 0
 * for one shared with another handle of this process, or an error. */
int rmpsc__member_join(rmpsc_channel *ch, const char *group, unsigned flags);
void rmpsc__member_leave(rmpsc_channel *ch);
/* The group's one member acknowledges a joiner (PENDING -> SHARED); see group.c. */
void rmpsc__solo_ack(rmpsc_channel *ch);
/* A joiner ends PENDING(m) itself once m is not inside a take or release: 1 when
 * the mode moved on (or changed meanwhile), 0 when m is busy or barriers fail. */
int rmpsc__solo_end(rmpsc_channel *ch, uint64_t mode);
/* A member alone in a SHARED group with nothing open goes SOLO. */
void rmpsc__go_solo(rmpsc_channel *ch, uint64_t mode);
/* Adopt an orphaned claim of this member's group: 1 when one is now served. */
int rmpsc__adopt_orphan(rmpsc_channel *ch);
/* Move group g's head on ring s up to the lowest open claim (or its cursor). */
void rmpsc__recompute_head(rmpsc_channel *ch, uint32_t g, uint32_t s);
/* Finish serving an adopted orphan whose claim was released entirely. */
void rmpsc__orphan_done(rmpsc_channel *ch);
/* Recover dead members of every group (or only where `only_group` >= 0). Returns
 * member places recovered. *me is our identity, or 0: we attach only when there
 * is something to recover. */
int rmpsc__recover_members(rmpsc_channel *ch, uint64_t *me, int only_group);
/* Any member of a group in PENDING(m) waits for m's acknowledgement: is m alive? */
int rmpsc__pending_solo_alive(rmpsc_channel *ch, uint64_t mode);
/* Wake every member waiting for data (orphans appeared, a mode changed). */
void rmpsc__wake_members(rmpsc_channel *ch);

#endif
