/*
 * Consumer groups: creating and removing groups, joining and leaving them, the
 * SOLO/SHARED handshake, orphaned claims, and recovering members that died.
 * The claim and release hot paths are in consumer.c. docs/ARCHITECTURE.md
 * ("Consumer groups") gives the protocol and why each step is ordered as it is;
 * tests/model/groups.pml checks it.
 *
 * Every shared word here changes by CAS, or is a field of a place that only its
 * holder writes. A process that dies between two steps leaves a word naming it
 * (CREATING, RECOVERING, ADOPTING, a claim lock), and the next recoverer that
 * finds it dead finishes or undoes its step; each step is idempotent.
 */
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "group.h"
#include "handle.h"
#include "wait.h"

#define GROUPS_LOCK_WAIT_NS 5000000000ll /* a live creator holds the table lock for microseconds */

static inline uint64_t ring_cap(const rmpsc_channel *ch)
{
	return ch->L.capacity;
}

/* a is before b (a < b as ring positions). */
static inline int pos_before(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) < 0;
}

uint64_t rmpsc__released_head(const rmpsc_channel *ch, uint32_t s, uint64_t tail)
{
	if (ch->L.max_groups == 1)
		return load_acquire(&slot_ctrl(ch, s)->head);
	/* Pairs with the fence of a group's creator (group_create): a group we do not
	 * see yet reads the tail after we have read ours. */
	smp_mb();
	uint64_t cap = ring_cap(ch), min = tail;
	for (uint32_t g = 0; g < ch->L.max_groups; g++) {
		struct group *grp = group_at(ch, g);
		uint64_t st = load_acquire(&grp->state);
		if (!group_live(st, load_acquire(&grp->mode)))
			continue;
		uint64_t h = load_acquire(&gpos_at(ch, g, s)->head);
		if (tail - h > cap) {
			if (owner_state(st) != GROUP_CREATING)
				return h; /* impossible: the caller reports a corrupt ring */
			h = tail - cap;   /* being positioned: wait for it */
		}
		if (tail - h > tail - min)
			min = h;
	}
	return min;
}

void rmpsc__wake_members(rmpsc_channel *ch)
{
	struct region_header *h = ch->hdr;
	fetch_add_acq_rel(&h->data_seq, 1);
	rmpsc__futex_wake_all(&h->data_seq);
}

static void wake_producer(rmpsc_channel *ch, uint32_t s)
{
	struct ring_ctrl *c = slot_ctrl(ch, s);
	wake_waiters(&c->producer_waiting, &c->space_seq, 0);
}

static void wake_all_producers(rmpsc_channel *ch)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++)
		wake_producer(ch, s);
}

/* ------------------------------------------------------------------------- */
/* Heads. */

/* Raise group g's head on ring s to h (never lower it). */
static void raise_head(rmpsc_channel *ch, uint32_t g, uint32_t s, uint64_t h)
{
	uint64_t *head = group_head(ch, g, s);
	uint64_t cur = load_acquire(head);
	/* Forward by at most a ring: anything else is a corrupt head, left for the
	 * sweep to find and fence. */
	while (pos_before(cur, h) && h - cur <= ring_cap(ch) && !cas_acq_rel(head, &cur, h))
		;
}

void rmpsc__recompute_head(rmpsc_channel *ch, uint32_t g, uint32_t s)
{
	/* The cursor first: a claim starting below the cursor we read wrote its record
	 * before it moved the cursor, so the scan below sees it. */
	uint64_t h = load_acquire(&gpos_at(ch, g, s)->cursor);
	for (uint32_t m = 0; m < ch->L.max_consumers; m++) {
		struct member *mb = member_at(ch, m);
		if (load_relaxed(&mb->group) != g || load_acquire(&mb->owner) == MEMBER_FREE)
			continue;
		uint64_t c = load_acquire(&mb->claim);
		if (c && claim_slot_of(c) == s) {
			uint64_t start = load_relaxed(&mb->claim_start);
			if (pos_before(start, h))
				h = start;
		}
	}
	raise_head(ch, g, s, h);
	wake_producer(ch, s);
}

/* The ring where a SOLO member's claim is open (cursor > head), or UINT32_MAX. */
static uint32_t solo_open_ring(const rmpsc_channel *ch, uint32_t g)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct group_pos *p = gpos_at(ch, g, s);
		if (pos_before(load_acquire(group_head(ch, g, s)), load_acquire(&p->cursor)))
			return s;
	}
	return UINT32_MAX;
}

/* Write the SOLO claim open on ring s (if any) as member e's claim record. */
static void record_solo_claim(rmpsc_channel *ch, uint32_t e, uint32_t g, uint32_t s, uint32_t deliveries)
{
	struct member *mb = member_at(ch, e);
	if (s == UINT32_MAX) {
		store_release(&mb->claim, 0);
		return;
	}
	uint64_t head = load_acquire(group_head(ch, g, s));
	uint64_t cursor = load_acquire(&gpos_at(ch, g, s)->cursor);
	store_relaxed(&mb->claim_start, head);
	store_relaxed(&mb->deliveries, deliveries);
	store_release(&mb->claim, claim_word(s, cursor - head));
}

/* ------------------------------------------------------------------------- */
/* The mode word. */

/* Member place e leaves the count (after its place was freed). The last member of
 * an ephemeral group removes the group. */
static void remove_group(rmpsc_channel *ch, uint32_t g);

static void count_down(rmpsc_channel *ch, uint32_t g, uint32_t e)
{
	struct group *grp = group_at(ch, g);
	uint64_t m = load_acquire(&grp->mode);
	for (;;) {
		if (mode_kind(m) == MODE_REMOVED)
			return;
		uint32_t n = mode_count(m) ? mode_count(m) - 1 : 0;
		uint32_t kind = mode_kind(m), solo = mode_solo(m);
		if ((kind == MODE_SOLO || kind == MODE_PENDING) && solo == e)
			kind = MODE_SHARED, solo = 0;
		int removing = n == 0 && (load_relaxed(&grp->flags) & RMPSC_GROUP_EPHEMERAL);
		uint64_t next = removing ? mode_make(m, MODE_REMOVED, 0, 0) : mode_make(m, kind, solo, n);
		if (cas_acq_rel(&grp->mode, &m, next)) {
			if (removing)
				remove_group(ch, g);
			rmpsc__wake_members(ch); /* a PENDING wait may have ended */
			return;
		}
	}
}

static void remove_group(rmpsc_channel *ch, uint32_t g)
{
	struct group *grp = group_at(ch, g);
	uint64_t st = load_acquire(&grp->state);
	while (owner_state(st) != GROUP_FREE && !cas_acq_rel(&grp->state, &st, (uint64_t)GROUP_FREE))
		;
	wake_all_producers(ch); /* those it held back */
}

/*
 * The group's solo member e stops taking alone: its open claim (the ring where
 * cursor > head) becomes its claim record and the mode SHARED. Done by e itself,
 * by a joiner once e is not inside a take or release (rmpsc__solo_end), or by
 * whoever recovers or takes over a dead e. One process at a time (the group's
 * `converter` word, taken over from a dead one): a second writer of the record
 * could land its write after the claim was released and bring it back. e makes
 * no plain store once the mode is not SOLO(e), so the record is the same whoever
 * writes it. Returns 1 when the mode is no longer SOLO(e) or PENDING(e), 0 while
 * another live process is converting.
 */
static int convert_solo(rmpsc_channel *ch, uint32_t e, uint32_t g, uint64_t me)
{
	struct group *grp = group_at(ch, g);
	uint64_t m = load_acquire(&grp->mode);
	if ((mode_kind(m) != MODE_SOLO && mode_kind(m) != MODE_PENDING) || mode_solo(m) != e)
		return 1;
	uint64_t cur = load_acquire(&grp->converter);
	if (cur != me && cur != 0 && rmpsc__owner_alive(&ch->file, cur))
		return 0;
	if (cur != me && !cas_acq_rel(&grp->converter, &cur, me))
		return 0;
	m = load_acquire(&grp->mode);
	if ((mode_kind(m) == MODE_SOLO || mode_kind(m) == MODE_PENDING) && mode_solo(m) == e) {
		struct member *mb = member_at(ch, e);
		uint32_t d = load_relaxed(&mb->deliveries);
		record_solo_claim(ch, e, g, solo_open_ring(ch, g), d ? d : 1);
		while ((mode_kind(m) == MODE_SOLO || mode_kind(m) == MODE_PENDING) && mode_solo(m) == e &&
		       !cas_acq_rel(&grp->mode, &m, mode_make(m, MODE_SHARED, 0, mode_count(m))))
			;
	}
	store_release(&grp->converter, 0);
	rmpsc__wake_members(ch);
	return 1;
}

/* The same, waiting for another live converter to finish (it is a few stores). */
static void convert_solo_wait(rmpsc_channel *ch, uint32_t e, uint32_t g, uint64_t me)
{
	while (!convert_solo(ch, e, g, me))
		sched_yield();
}

void rmpsc__solo_ack(rmpsc_channel *ch)
{
	convert_solo_wait(ch, (uint32_t)ch->member, ch->group, owner_id(ch->member_word));
	ch->solo_open = UINT32_MAX;
}

int rmpsc__solo_end(rmpsc_channel *ch, uint64_t m)
{
	uint32_t e = mode_solo(m);
	struct member *mb = member_at(ch, e);
	/* Store, cold barrier, load, against the solo member's store, hot barrier, load
	 * (consumer.c take_span): either it sees PENDING and makes no plain store, or
	 * we see it busy and wait. */
	if (cold_barrier(ch->asymmetric) != 0)
		return 0;
	for (int tries = 0; load_acquire(&mb->busy); tries++) {
		if (tries == 1000) /* preempted inside a take, or dead there */
			return 0;
		sched_yield();
	}
	if (load_acquire(&group_at(ch, ch->group)->mode) != m)
		return 1; /* changed meanwhile: look again */
	return convert_solo(ch, e, ch->group, owner_id(ch->member_word));
}

void rmpsc__go_solo(rmpsc_channel *ch, uint64_t m)
{
	struct group *grp = group_at(ch, ch->group);
	/* Alone with nothing open, every claim of the group was released, and the
	 * last release of each moved its head to the cursor (recompute_head): a head
	 * behind its cursor now is a corrupt ring, which solo_take fences. Raising
	 * heads here would race a joiner's first claim. */
	if (cas_acq_rel(&grp->mode, &m, mode_make(m, MODE_SOLO, (uint32_t)ch->member, 1)))
		ch->solo_open = UINT32_MAX;
}

int rmpsc__pending_solo_alive(rmpsc_channel *ch, uint64_t m)
{
	uint64_t w = load_acquire(&member_at(ch, mode_solo(m))->owner);
	return owner_state(w) == MEMBER_ACTIVE && rmpsc__owner_alive(&ch->file, w);
}

/* ------------------------------------------------------------------------- */
/* Claims of places that are gone. */

/* Member place e (held by us now) died holding claim locks of group g: a claim it
 * finished taking (the cursor moved) stays its claim; one it had not (the cursor
 * did not move) is forgotten. Then the locks are free. */
static void break_locks(rmpsc_channel *ch, uint32_t e, uint32_t g)
{
	struct member *mb = member_at(ch, e);
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct group_pos *p = gpos_at(ch, g, s);
		uint64_t lk = load_acquire(&p->lock);
		if (lk != (uint64_t)e + 1)
			continue;
		uint64_t c = load_acquire(&mb->claim);
		if (c && claim_slot_of(c) == s &&
		    load_acquire(&p->cursor) != load_relaxed(&mb->claim_start) + claim_count_of(c))
			store_release(&mb->claim, 0);
		cas_acq_rel(&p->lock, &lk, 0);
	}
}

/* Does group g have a live ACTIVE member other than place `except`? */
static int has_live_member(rmpsc_channel *ch, uint32_t g, uint32_t except)
{
	for (uint32_t m = 0; m < ch->L.max_consumers; m++) {
		if (m == except || load_relaxed(&member_at(ch, m)->group) != g)
			continue;
		uint64_t w = load_acquire(&member_at(ch, m)->owner);
		if ((owner_state(w) == MEMBER_ACTIVE || owner_state(w) == MEMBER_ADOPTING) &&
		    rmpsc__owner_alive(&ch->file, w))
			return 1;
	}
	return 0;
}

/* Drop the claim of place e (held by us as `held`) and free the place. */
static void drop_place(rmpsc_channel *ch, uint32_t e, uint32_t g, uint64_t held)
{
	struct member *mb = member_at(ch, e);
	uint64_t c = load_acquire(&mb->claim);
	if (c) {
		store_release(&mb->claim, 0);
		smp_mb(); /* clear, then scan: see recompute_head */
		rmpsc__recompute_head(ch, g, claim_slot_of(c));
	}
	if (cas_acq_rel(&mb->owner, &held, (uint64_t)MEMBER_FREE))
		count_down(ch, g, e);
}

/* Orphans of an ephemeral group nobody is left to adopt are dropped. */
static void drop_unattended_orphans(rmpsc_channel *ch, uint32_t g, uint64_t me)
{
	struct group *grp = group_at(ch, g);
	if (!(load_relaxed(&grp->flags) & RMPSC_GROUP_EPHEMERAL) || has_live_member(ch, g, UINT32_MAX))
		return;
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = MEMBER_ORPHAN, held = owner_word(MEMBER_RECOVERING, me);
		if (load_relaxed(&mb->group) != g || !cas_acq_rel(&mb->owner, &w, held))
			continue;
		fetch_add_relaxed(&grp->orphans, (uint32_t)-1);
		drop_place(ch, e, g, held);
	}
}

/* Place e is ours as `held` (RECOVERING(me), or ACTIVE(me) leaving): its claim, if
 * any, becomes an orphan for the group (at-least-once), or is dropped. */
static void orphan_or_drop(rmpsc_channel *ch, uint32_t e, uint32_t g, uint64_t held, uint64_t me)
{
	struct group *grp = group_at(ch, g);
	struct member *mb = member_at(ch, e);
	uint32_t flags = load_relaxed(&grp->flags);
	int keep = load_acquire(&mb->claim) && !(flags & RMPSC_GROUP_AT_MOST_ONCE) &&
		   (!(flags & RMPSC_GROUP_EPHEMERAL) || has_live_member(ch, g, e));
	if (keep) {
		if (cas_acq_rel(&mb->owner, &held, (uint64_t)MEMBER_ORPHAN)) {
			fetch_add_acq_rel(&grp->orphans, 1);
			rmpsc__wake_members(ch);
		}
		return;
	}
	drop_place(ch, e, g, held);
	drop_unattended_orphans(ch, g, me);
}

/* Recover place e if its holder is gone. 1 if we did. */
static int recover_place(rmpsc_channel *ch, uint32_t e, uint64_t *mep, struct alive_cache *cache)
{
	struct member *mb = member_at(ch, e);
	uint64_t w = load_acquire(&mb->owner);
	uint32_t st = owner_state(w);
	if (st != MEMBER_ACTIVE && st != MEMBER_RECOVERING && st != MEMBER_ADOPTING)
		return 0;
	if (rmpsc__owner_alive_cached(&ch->file, cache, w))
		return 0;
	if (!*mep && rmpsc__attach(&ch->file, mep) != RMPSC_OK)
		return 0; /* attached only when there is something to recover */
	uint64_t me = *mep;
	uint64_t held = owner_word(MEMBER_RECOVERING, me);
	if (!cas_acq_rel(&mb->owner, &w, held))
		return 0;
	uint32_t g = load_relaxed(&mb->group);
	if (g >= ch->L.max_groups)
		return 0; /* corrupt: leave the place held rather than act on it */
	if (st == MEMBER_ADOPTING) {
		/* The adopter died serving e's orphaned claim: e is an orphan again. */
		if (cas_acq_rel(&mb->owner, &held, (uint64_t)MEMBER_ORPHAN)) {
			fetch_add_acq_rel(&group_at(ch, g)->orphans, 1);
			rmpsc__wake_members(ch);
		}
		drop_unattended_orphans(ch, g, me);
	} else {
		break_locks(ch, e, g);
		convert_solo_wait(ch, e, g, me); /* gone: its open claim becomes a record, the group SHARED */
		orphan_or_drop(ch, e, g, held, me);
	}
	fetch_add_relaxed(&ch->hdr->recovered_members, 1);
	return 1;
}

/* A group left CREATING by a creator that died is freed. */
static void recover_groups(rmpsc_channel *ch, struct alive_cache *cache)
{
	for (uint32_t g = 0; g < ch->L.max_groups; g++) {
		struct group *grp = group_at(ch, g);
		uint64_t st = load_acquire(&grp->state);
		if (owner_state(st) == GROUP_CREATING && !rmpsc__owner_alive_cached(&ch->file, cache, st) &&
		    cas_acq_rel(&grp->state, &st, (uint64_t)GROUP_FREE))
			wake_all_producers(ch);
	}
}

int rmpsc__recover_members(rmpsc_channel *ch, uint64_t *me, int only_group)
{
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	int n = 0;
	for (uint32_t e = 0; e < ch->L.max_consumers; e++)
		if (only_group < 0 || load_relaxed(&member_at(ch, e)->group) == (uint32_t)only_group)
			n += recover_place(ch, e, me, &cache);
	if (only_group < 0)
		recover_groups(ch, &cache);
	return n;
}

int rmpsc__adopt_orphan(rmpsc_channel *ch)
{
	struct group *grp = group_at(ch, ch->group);
	if (!load_relaxed(&grp->orphans))
		return 0;
	uint64_t adopting = owner_word(MEMBER_ADOPTING, owner_id(ch->member_word));
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = MEMBER_ORPHAN;
		if (load_relaxed(&mb->group) != ch->group || !cas_acq_rel(&mb->owner, &w, adopting))
			continue;
		fetch_add_relaxed(&grp->orphans, (uint32_t)-1);
		uint32_t d = load_relaxed(&mb->deliveries) + 1;
		store_relaxed(&mb->deliveries, d);
		if (d > 1)
			fetch_add_relaxed(&grp->redelivered, (uint64_t)claim_count_of(load_acquire(&mb->claim)));
		ch->serving = (int)e;
		return 1;
	}
	return 0;
}

void rmpsc__orphan_done(rmpsc_channel *ch)
{
	uint32_t e = (uint32_t)ch->serving;
	ch->serving = ch->member;
	uint64_t held = owner_word(MEMBER_ADOPTING, owner_id(ch->member_word));
	if (cas_acq_rel(&member_at(ch, e)->owner, &held, (uint64_t)MEMBER_FREE))
		count_down(ch, ch->group, e);
}

/* ------------------------------------------------------------------------- */
/* The group table. */

static int name_eq(const struct group *grp, const char *name)
{
	return strncmp(grp->name, name, RMPSC_GROUP_NAME_MAX + 1) == 0;
}

static int find_group(const rmpsc_channel *ch, const char *name)
{
	for (uint32_t g = 0; g < ch->L.max_groups; g++) {
		struct group *grp = group_at(ch, g);
		if (owner_state(load_acquire(&grp->state)) == GROUP_ACTIVE &&
		    mode_kind(load_acquire(&grp->mode)) != MODE_REMOVED && name_eq(grp, name))
			return (int)g;
	}
	return -1;
}

static int lock_groups(rmpsc_channel *ch, uint64_t me)
{
	uint64_t *lk = &ch->hdr->groups_lock;
	int64_t until = rmpsc__monotonic_ns() + GROUPS_LOCK_WAIT_NS;
	for (;;) {
		uint64_t cur = load_acquire(lk);
		if (cur == 0 || !rmpsc__owner_alive(&ch->file, cur)) {
			if (cas_acq_rel(lk, &cur, me))
				return RMPSC_OK;
			continue;
		}
		if (rmpsc__monotonic_ns() > until)
			return rmpsc__set_error(RMPSC_ETIMEDOUT, "the group table is locked by live process %u",
						rmpsc__owner_pid(&ch->file, cur));
		sched_yield();
	}
}

static void unlock_groups(rmpsc_channel *ch, uint64_t me)
{
	cas_acq_rel(&ch->hdr->groups_lock, &me, 0);
}

/*
 * Create group `name` (table lock held). Its heads start where every other group
 * is (or at the tail), are published as CREATING, and after a fence move to the
 * tail: a producer that did not see CREATING fenced before we did, so the tail we
 * read is at least the one it had, and it can only have overwritten records
 * below the new group's head.
 */
static int group_create(rmpsc_channel *ch, const char *name, unsigned flags, uint64_t me)
{
	uint32_t g;
	for (g = 0; g < ch->L.max_groups; g++)
		if (load_acquire(&group_at(ch, g)->state) == GROUP_FREE)
			break;
	if (g == ch->L.max_groups)
		return rmpsc__set_error(RMPSC_ECONSUMER, "all %u group places are in use (max_groups)", ch->L.max_groups);
	struct group *grp = group_at(ch, g);
	memset(grp->name, 0, sizeof grp->name);
	memcpy(grp->name, name, strlen(name));
	store_relaxed(&grp->flags, flags);
	store_relaxed(&grp->orphans, 0);
	store_relaxed(&grp->redelivered, 0);
	uint64_t m = load_relaxed(&grp->mode);
	store_relaxed(&grp->mode, mode_make(m + (1ull << MODE_GEN_SHIFT), MODE_SHARED, 0, 0));
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct group_pos *p = gpos_at(ch, g, s);
		uint64_t tail = load_acquire(&slot_ctrl(ch, s)->tail);
		uint64_t pre = tail;
		for (uint32_t o = 0; o < ch->L.max_groups; o++) {
			struct group *og = group_at(ch, o);
			if (o == g || !group_live(load_acquire(&og->state), load_acquire(&og->mode)))
				continue;
			uint64_t h = load_acquire(&gpos_at(ch, o, s)->head);
			if (tail - h <= ring_cap(ch) && pos_before(h, pre))
				pre = h;
		}
		store_relaxed(&p->head, pre);
		store_relaxed(&p->cursor, pre);
		store_relaxed(&p->lock, 0);
	}
	store_seq_cst(&grp->state, owner_word(GROUP_CREATING, me));
	smp_mb();
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct group_pos *p = gpos_at(ch, g, s);
		uint64_t tail = load_acquire(&slot_ctrl(ch, s)->tail);
		store_release(&p->cursor, tail);
		store_release(&p->head, tail);
	}
	store_release(&grp->state, (uint64_t)GROUP_ACTIVE);
	wake_all_producers(ch);
	return (int)g;
}

/* Find group `name`, creating it if absent. */
static int find_or_create(rmpsc_channel *ch, const char *name, unsigned flags, uint64_t me)
{
	int g = find_group(ch, name);
	if (g >= 0)
		return g;
	int rc = lock_groups(ch, me);
	if (rc)
		return rc;
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	recover_groups(ch, &cache); /* a creator that died under the lock */
	g = find_group(ch, name);
	if (g < 0)
		g = group_create(ch, name, flags, me);
	unlock_groups(ch, me);
	return g;
}

int rmpsc_group_remove(rmpsc_channel *ch, const char *name)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "group_remove: NULL channel");
	if (!name)
		name = RMPSC_DEFAULT_GROUP;
	if (ch->L.max_groups == 1)
		return rmpsc__set_error(RMPSC_EINVAL, "group_remove: a channel with one group place (max_groups 1) "
						      "keeps its group");
	uint64_t me;
	int rc = rmpsc__attach(&ch->file, &me);
	if (rc)
		return rc;
	int g = find_group(ch, name);
	if (g < 0)
		return rmpsc__set_error(RMPSC_EINVAL, "group_remove: no group \"%s\"", name);
	rmpsc__recover_members(ch, &me, g);
	if (has_live_member(ch, (uint32_t)g, UINT32_MAX))
		return rmpsc__set_error(RMPSC_EINVAL, "group_remove: group \"%s\" has a live member", name);
	struct group *grp = group_at(ch, (uint32_t)g);
	/* Orphans nobody will adopt now, then the group itself. */
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = MEMBER_ORPHAN, held = owner_word(MEMBER_RECOVERING, me);
		if (load_relaxed(&mb->group) == (uint32_t)g && cas_acq_rel(&mb->owner, &w, held)) {
			fetch_add_relaxed(&grp->orphans, (uint32_t)-1);
			store_release(&mb->claim, 0);
			if (cas_acq_rel(&mb->owner, &held, (uint64_t)MEMBER_FREE))
				count_down(ch, (uint32_t)g, e);
		}
	}
	uint64_t m = load_acquire(&grp->mode);
	for (;;) {
		if (mode_kind(m) == MODE_REMOVED)
			break;
		if (mode_count(m) != 0)
			return rmpsc__set_error(RMPSC_EINVAL, "group_remove: group \"%s\" has a member", name);
		if (cas_acq_rel(&grp->mode, &m, mode_make(m, MODE_REMOVED, 0, 0)))
			break;
	}
	remove_group(ch, (uint32_t)g);
	return RMPSC_OK;
}

/* ------------------------------------------------------------------------- */
/* Joining and leaving. */

static void become_member(rmpsc_channel *ch, uint32_t e, uint32_t g, uint64_t me)
{
	ch->member = (int)e;
	ch->group = g;
	ch->member_word = owner_word(MEMBER_ACTIVE, me);
	ch->member_gen = fork_generation();
	ch->serving = (int)e;
	ch->solo_open = UINT32_MAX;
	ch->deliveries = 0;
	for (uint32_t s = 0; s < ch->L.max_producers; s++) /* nothing known: the first look loads the tail */
		ch->tails[s] = load_relaxed(&gpos_at(ch, g, s)->cursor);
}

/* Another handle of this process is a member of g: share its place. */
static int share_place(rmpsc_channel *ch, uint32_t g, uint64_t me)
{
	uint64_t word = owner_word(MEMBER_ACTIVE, me);
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		if (load_acquire(&mb->owner) != word || load_relaxed(&mb->group) != g)
			continue;
		if (rmpsc__member_hold(&ch->file, e, &mb->owner, word) > 0) {
			become_member(ch, e, g, me);
			uint64_t m = load_acquire(&group_at(ch, g)->mode);
			if ((mode_kind(m) == MODE_SOLO || mode_kind(m) == MODE_PENDING) && mode_solo(m) == e)
				ch->solo_open = solo_open_ring(ch, g);
			return 1;
		}
	}
	return 0;
}

/* Take over a place of group g whose holder is gone, or whose claim is orphaned:
 * we become that member, and its open claim is ours, delivered again. */
static int take_over_place(rmpsc_channel *ch, uint32_t g, uint64_t me)
{
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	uint64_t held = owner_word(MEMBER_RECOVERING, me);
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		if (load_relaxed(&mb->group) != g)
			continue;
		uint64_t w = load_acquire(&mb->owner);
		uint32_t st = owner_state(w);
		if (st == MEMBER_ORPHAN) {
			if (!cas_acq_rel(&mb->owner, &w, held))
				continue;
			fetch_add_relaxed(&group_at(ch, g)->orphans, (uint32_t)-1);
		} else if (st == MEMBER_ACTIVE || st == MEMBER_RECOVERING || st == MEMBER_ADOPTING) {
			if (rmpsc__owner_alive_cached(&ch->file, &cache, w) || !cas_acq_rel(&mb->owner, &w, held))
				continue;
			if (st != MEMBER_ADOPTING)
				break_locks(ch, e, g);
		} else {
			continue;
		}
		if (rmpsc__member_hold(&ch->file, e, &mb->owner, held) <= 0)
			continue; /* cannot happen: the place is ours */
		store_relaxed(&mb->pid, (uint32_t)getpid());
		become_member(ch, e, g, me);
		store_relaxed(&mb->busy, 0); /* it may have died inside a take */
		/* A solo member's open claim becomes its record first: from here on the
		 * claim, if any, is in the record, as for any member. */
		convert_solo_wait(ch, e, g, me);
		uint32_t redelivered = 0;
		uint64_t c = load_acquire(&mb->claim);
		if (c && (load_relaxed(&group_at(ch, g)->flags) & RMPSC_GROUP_AT_MOST_ONCE)) {
			store_release(&mb->claim, 0); /* at-most-once: what it took is dropped */
			smp_mb();                     /* clear, then scan: see recompute_head */
			rmpsc__recompute_head(ch, g, claim_slot_of(c));
		} else if (c) {
			store_relaxed(&mb->deliveries, load_relaxed(&mb->deliveries) + 1);
			if (load_relaxed(&mb->deliveries) > 1)
				redelivered = claim_count_of(c);
		}
		if (redelivered)
			fetch_add_relaxed(&group_at(ch, g)->redelivered, redelivered);
		fetch_add_relaxed(&ch->hdr->recovered_members, st == MEMBER_ORPHAN ? 0 : 1);
		store_release(&mb->owner, owner_word(MEMBER_ACTIVE, me));
		return 1;
	}
	return 0;
}

/* A free place: counted into the group by CAS on its mode word. 0 when the group
 * went away meanwhile (the caller looks it up again), -1 when no place is free. */
static int take_free_place(rmpsc_channel *ch, uint32_t g, uint64_t gen_mode, uint64_t me)
{
	struct group *grp = group_at(ch, g);
	/* RECOVERING(me) until counted in and held: another handle of this process
	 * shares only an ACTIVE place, so its let-go cannot free it under us. */
	uint64_t held = owner_word(MEMBER_RECOVERING, me);
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = MEMBER_FREE;
		if (load_relaxed(&mb->owner) != MEMBER_FREE || !cas_acq_rel(&mb->owner, &w, held))
			continue;
		store_relaxed(&mb->claim, 0);
		store_relaxed(&mb->deliveries, 0);
		store_relaxed(&mb->pid, (uint32_t)getpid());
		store_release(&mb->group, g);
		uint64_t m = load_acquire(&grp->mode);
		for (;;) {
			if (mode_kind(m) == MODE_REMOVED || m >> MODE_GEN_SHIFT != gen_mode >> MODE_GEN_SHIFT) {
				cas_acq_rel(&mb->owner, &held, (uint64_t)MEMBER_FREE);
				return 0;
			}
			uint32_t n = mode_count(m), k = mode_kind(m);
			uint64_t next = n == 0           ? mode_make(m, MODE_SOLO, e, 1)
					: k == MODE_SOLO ? mode_make(m, MODE_PENDING, mode_solo(m), n + 1)
							 : mode_make(m, k, mode_solo(m), n + 1);
			if (cas_acq_rel(&grp->mode, &m, next)) {
				if (k == MODE_SOLO)
					rmpsc__wake_members(ch); /* the solo member may sleep: it must acknowledge */
				break;
			}
		}
		rmpsc__member_hold(&ch->file, e, &mb->owner, held); /* ours: cannot fail */
		become_member(ch, e, g, me); /* alone (count was 0): heads are at the cursors, see go_solo */
		store_release(&mb->owner, owner_word(MEMBER_ACTIVE, me));
		return 1;
	}
	return -1;
}

int rmpsc__member_join(rmpsc_channel *ch, const char *name, unsigned flags)
{
	if (!name || !*name)
		name = RMPSC_DEFAULT_GROUP;
	if (strlen(name) > RMPSC_GROUP_NAME_MAX)
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_join: group name \"%.40s...\" is longer than %u bytes",
					name, RMPSC_GROUP_NAME_MAX);
	if (flags & ~(RMPSC_GROUP_EPHEMERAL | RMPSC_GROUP_AT_MOST_ONCE))
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_join: unknown flags 0x%x", flags);
	uint64_t me;
	int rc = rmpsc__attach(&ch->file, &me);
	if (rc)
		return rc;
	for (int round = 0; round < 4; round++) {
		int g = find_or_create(ch, name, flags, me);
		if (g < 0)
			return g;
		struct group *grp = group_at(ch, (uint32_t)g);
		uint32_t have = load_relaxed(&grp->flags);
		if (have != flags)
			return rmpsc__set_error(RMPSC_EINVAL,
						"consumer_join: group \"%s\" exists with flags 0x%x (%s%s), not 0x%x",
						name, have, have & RMPSC_GROUP_EPHEMERAL ? "ephemeral " : "durable ",
						have & RMPSC_GROUP_AT_MOST_ONCE ? "at-most-once" : "at-least-once",
						flags);
		uint64_t gen_mode = load_acquire(&grp->mode);
		if (share_place(ch, (uint32_t)g, me))
			return 0;
		if (take_over_place(ch, (uint32_t)g, me))
			return 1;
		int got = take_free_place(ch, (uint32_t)g, gen_mode, me);
		if (got > 0)
			return 1;
		if (got < 0 && !rmpsc__recover_members(ch, &me, -1) && round > 0) {
			if (ch->L.max_consumers == 1) {
				uint32_t pid = load_relaxed(&member_at(ch, 0)->pid);
				return rmpsc__set_error(RMPSC_ECONSUMER, "the consumer role is held by live process %u",
							pid);
			}
			return rmpsc__set_error(RMPSC_ECONSUMER,
						"all %u consumer places (max_consumers) are held by live processes",
						ch->L.max_consumers);
		}
	}
	return rmpsc__set_error(RMPSC_ECONSUMER, "consumer_join: group \"%s\" keeps changing; try again", name);
}

/* The last handle of this process in the group lets go (under the attach lock). */
static void leave_place(void *arg)
{
	rmpsc_channel *ch = arg;
	uint32_t e = (uint32_t)ch->member, g = ch->group;
	uint64_t me = owner_id(ch->member_word);
	struct group *grp = group_at(ch, g);
	struct member *mb = member_at(ch, e);
	int amo = (load_relaxed(&grp->flags) & RMPSC_GROUP_AT_MOST_ONCE) != 0;
	if (ch->serving >= 0 && ch->serving != (int)e) { /* an adopted orphan goes back */
		struct member *ob = member_at(ch, (uint32_t)ch->serving);
		uint64_t held = owner_word(MEMBER_ADOPTING, me);
		if (amo) {
			drop_place(ch, (uint32_t)ch->serving, g, held);
		} else {
			store_relaxed(&ob->deliveries, load_relaxed(&ob->deliveries) - 1);
			if (cas_acq_rel(&ob->owner, &held, (uint64_t)MEMBER_ORPHAN)) {
				fetch_add_acq_rel(&grp->orphans, 1);
				rmpsc__wake_members(ch);
			}
		}
		ch->serving = (int)e;
	}
	uint64_t m = load_acquire(&grp->mode);
	if ((mode_kind(m) == MODE_SOLO || mode_kind(m) == MODE_PENDING) && mode_solo(m) == e) {
		uint32_t s = ch->solo_open;
		if (s != UINT32_MAX && amo) /* at-most-once: what we took is dropped */
			raise_head(ch, g, s, load_acquire(&gpos_at(ch, g, s)->cursor));
		convert_solo_wait(ch, e, g, me); /* an open claim becomes a record, the group SHARED */
		store_relaxed(&mb->deliveries, 0);
	} else if (load_acquire(&mb->claim)) {
		store_relaxed(&mb->deliveries, load_relaxed(&mb->deliveries) - 1); /* leaving is not a redelivery */
	}
	orphan_or_drop(ch, e, g, ch->member_word, me);
}

void rmpsc__member_leave(rmpsc_channel *ch)
{
	if (ch->member < 0)
		return;
	if (ch->member_gen == fork_generation())
		rmpsc__member_let_go(&ch->file, (uint32_t)ch->member, leave_place, ch);
	ch->member = -1;
	ch->serving = -1;
	ch->solo_open = UINT32_MAX;
}

const char *rmpsc_consumer_group(const rmpsc_channel *ch)
{
	if (!ch || ch->member < 0)
		return NULL;
	return group_at(ch, ch->group)->name;
}

/* ------------------------------------------------------------------------- */
/* Stats. */

int rmpsc_group_stats(const rmpsc_channel *ch, struct rmpsc_group_stats *groups, uint32_t max_groups,
		      struct rmpsc_member_stats *members, uint32_t max_members, uint32_t *n_members)
{
	if (!ch)
		return rmpsc__set_error(RMPSC_EINVAL, "group_stats: NULL channel");
	uint32_t index_of[RMPSC_MAX_GROUPS];
	uint32_t ng = 0, nm = 0;
	for (uint32_t g = 0; g < ch->L.max_groups; g++) {
		struct group *grp = group_at(ch, g);
		uint64_t st = load_acquire(&grp->state), m = load_acquire(&grp->mode);
		index_of[g] = UINT32_MAX;
		if (owner_state(st) != GROUP_ACTIVE || mode_kind(m) == MODE_REMOVED)
			continue;
		index_of[g] = ng;
		if (groups && ng < max_groups) {
			struct rmpsc_group_stats *o = &groups[ng];
			memset(o, 0, sizeof *o);
			memcpy(o->name, grp->name, RMPSC_GROUP_NAME_MAX);
			o->flags = load_relaxed(&grp->flags);
			o->members = mode_count(m);
			o->solo = mode_kind(m) == MODE_SOLO;
			o->redelivered = load_relaxed(&grp->redelivered);
			for (uint32_t s = 0; s < ch->L.max_producers; s++) {
				uint64_t tail = load_acquire(&slot_ctrl(ch, s)->tail);
				uint64_t head = load_acquire(group_head(ch, g, s));
				uint64_t cursor = load_acquire(&gpos_at(ch, g, s)->cursor);
				if (tail - head > ring_cap(ch) || cursor - head > tail - head)
					continue; /* a racing snapshot */
				o->pending += tail - cursor;
				o->unreleased += cursor - head;
			}
		}
		ng++;
	}
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = load_acquire(&mb->owner);
		uint32_t g = load_relaxed(&mb->group);
		if (w == MEMBER_FREE || g >= ch->L.max_groups || index_of[g] == UINT32_MAX)
			continue;
		uint32_t st = owner_state(w);
		int alive = st != MEMBER_ORPHAN && rmpsc__owner_alive(&ch->file, w);
		uint64_t c = load_acquire(&mb->claim);
		if (groups && index_of[g] < max_groups) {
			groups[index_of[g]].live_members += alive && st == MEMBER_ACTIVE;
			groups[index_of[g]].claims += c != 0;
		}
		if (members && nm < max_members) {
			struct rmpsc_member_stats *o = &members[nm];
			o->pid = load_relaxed(&mb->pid);
			o->alive = (uint32_t)alive;
			o->group = index_of[g];
			o->state = st;
			o->claim_slot = c ? claim_slot_of(c) : 0;
			o->claim_count = c ? claim_count_of(c) : 0;
		}
		nm++;
	}
	if (n_members)
		*n_members = members ? (nm < max_members ? nm : max_members) : nm;
	return (int)(groups ? (ng < max_groups ? ng : max_groups) : ng);
}
