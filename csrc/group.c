/*
 * Consumer groups: creating and removing groups, joining and leaving them, ending
 * a group's SOLO mode, orphaned claims, and members that died or left. The claim
 * and release hot paths are in consumer.c; docs/ARCHITECTURE.md ("Consumer
 * groups") gives the protocol and why each step is ordered as it is, and
 * tests/model/groups.pml checks it.
 *
 * Two kinds of change, two disciplines:
 *   - Taking and releasing records (consumer.c, recompute_head here) never waits
 *     for anyone: plain stores in SOLO mode, one CAS per claim in SHARED mode.
 *   - Who is in a group (the member places, the mode word, orphans) changes only
 *     under the group's lock (`group.lock`, an owner word: a holder that died is
 *     taken over), taken while this process holds its own lock (attach.h), so one
 *     thread of one process at a time. The holder recounts the group from its
 *     places (`settle`), so a holder that died between two steps leaves nothing
 *     for the next one to guess. Nobody waits long for the lock: callers that
 *     find it held by a live process come back later (a wait with a deadline) or
 *     leave the work to its holder.
 * Places change only by CAS, so a member's own unlocked steps (leaving, handing an
 * orphan back, finishing one) and a lock holder's steps never overwrite each other.
 */
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "group.h"
#include "handle.h"
#include "notify.h"
#include "wait.h"

#define GROUP_LOCK_WAIT_NS 2000000000ll /* joins, leaves and removals wait this long for a live lock holder */

static inline uint64_t ring_cap(const rmpsc_channel *ch)
{
	return ch->L.capacity;
}

/* a is before b (a < b as ring positions). */
static inline int pos_before(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) < 0;
}

int rmpsc__group_has_orphans(const rmpsc_channel *ch, uint32_t g);

static inline int is_solo_of(uint64_t m, uint32_t e)
{
	return (mode_kind(m) == MODE_SOLO || mode_kind(m) == MODE_PENDING) && mode_solo(m) == e;
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

/* The owner word of member place mb if it belongs to group g, else MEMBER_FREE.
 * The owner first: a joiner writes the place's group before the owner word that
 * makes it ACTIVE (release), so a group read after the owner is that owner's; read
 * the other way round, a place freed and joined to another group in between would
 * pass for g's. */
static inline uint64_t owner_in(const struct member *mb, uint32_t g)
{
	uint64_t w = load_acquire(&mb->owner);
	return load_relaxed(&mb->group) == g ? w : (uint64_t)MEMBER_FREE;
}

/* A place taken afresh: what its earlier holder left of a wait goes (a bit, a
 * readiness FIFO nobody reads any more). */
static void clear_wait(rmpsc_channel *ch, uint32_t e)
{
	struct member *mb = member_at(ch, e);
	fetch_and_acq_rel(&ch->hdr->waiting_members[e >> 6], ~(1ull << (e & 63)));
	rmpsc__fifo_remove(ch, 'm', e, xchg_acq_rel(&mb->fifo_gen, 0));
}

/* ------------------------------------------------------------------------- */
/* Heads. */

void rmpsc__recompute_head(rmpsc_channel *ch, uint32_t g, uint32_t s)
{
	/* The cursor first: a claim starting below the cursor we read wrote its record
	 * before it moved the cursor, so the scan below sees it. */
	uint64_t cursor = load_acquire(&gpos_at(ch, g, s)->cursor), h = cursor;
	for (uint32_t m = 0; m < ch->L.max_consumers; m++) {
		struct member *mb = member_at(ch, m);
		if (owner_in(mb, g) == MEMBER_FREE)
			continue;
		uint64_t c = load_acquire(&mb->claim);
		if (!c || claim_slot_of(c) != s)
			continue;
		uint64_t start = load_relaxed(&mb->claim_start);
		uint64_t left = claim_left(c, start);
		if (left == 0 || left > ring_cap(ch) || cursor - start > ring_cap(ch))
			continue; /* released meanwhile, or not a claim a live member could hold */
		if (pos_before(start, h))
			h = start;
	}
	uint64_t *head = group_head(ch, g, s);
	uint64_t cur = load_acquire(head);
	/* Forward by at most a ring: anything else is a corrupt head, left for a sweep
	 * to find and fence. */
	while (pos_before(cur, h) && h - cur <= ring_cap(ch) && !cas_acq_rel(head, &cur, h))
		;
	/* No FIFO cache: recoveries run here too, from any thread using the handle. */
	wake_after_release(ch, s, 0);
}

static void recompute_all(rmpsc_channel *ch, uint32_t g)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++)
		rmpsc__recompute_head(ch, g, s);
}

/* The ring where a SOLO member's claim is open (head < cursor), or UINT32_MAX. */
static uint32_t solo_open_ring(const rmpsc_channel *ch, uint32_t g)
{
	for (uint32_t s = 0; s < ch->L.max_producers; s++)
		if (pos_before(load_acquire(group_head(ch, g, s)), load_acquire(&gpos_at(ch, g, s)->cursor)))
			return s;
	return UINT32_MAX;
}

/* ------------------------------------------------------------------------- */
/* The group lock. */

static int settle(rmpsc_channel *ch, uint32_t g, struct alive_cache *cache, int may_remove);

static int group_trylock(rmpsc_channel *ch, uint32_t g, uint64_t me)
{
	uint64_t *lk = &group_at(ch, g)->lock;
	uint64_t cur = load_acquire(lk);
	if (cur != 0 && cur != me && rmpsc__owner_alive(&ch->file, cur))
		return 0;
	if (!cas_acq_rel(lk, &cur, me))
		return 0;
	if (cur != 0 && cur != me) {
		/* Taken over from a holder that died: finish what it left half done (a
		 * recount, a recompute, an orphans hint) before our caller goes on. */
		struct alive_cache cache;
		memset(&cache, 0, sizeof cache);
		settle(ch, g, &cache, 1);
	}
	return 1;
}

static void group_unlock(rmpsc_channel *ch, uint32_t g, uint64_t me)
{
	cas_acq_rel(&group_at(ch, g)->lock, &me, 0);
}

/* ------------------------------------------------------------------------- */
/* Under the group lock. */

/* SOLO(e) or PENDING(e) ends: e's open claim (the ring where cursor > head) becomes
 * its claim record, then the mode is SHARED. e makes no plain store once the mode
 * is not SOLO(e) (consumer.c solo_enter), and nobody else writes e's record while
 * we hold the lock, so the record is exact. */
static void convert_solo(rmpsc_channel *ch, uint32_t e, uint32_t g)
{
	struct group *grp = group_at(ch, g);
	uint64_t m = load_acquire(&grp->mode);
	if (!is_solo_of(m, e))
		return;
	struct member *mb = member_at(ch, e);
	/* The ring it noted (consumer.c solo_take), or, for a region written by an older
	 * or hostile hand, the first ring where head < cursor. */
	uint32_t s = load_relaxed(&mb->solo_ring) - 1;
	if (s >= ch->L.max_producers ||
	    !pos_before(load_acquire(group_head(ch, g, s)), load_acquire(&gpos_at(ch, g, s)->cursor)))
		s = solo_open_ring(ch, g);
	store_relaxed(&mb->solo_ring, 0);
	if (s == UINT32_MAX) {
		store_release(&mb->claim, 0);
	} else {
		/* deliveries: as the solo member left it (solo_take sets 1 per claim; a
		 * member that leaves takes one off, since handing on is no redelivery). */
		store_relaxed(&mb->claim_start, load_acquire(group_head(ch, g, s)));
		store_release(&mb->claim, claim_word(s, load_acquire(&gpos_at(ch, g, s)->cursor)));
	}
	while (is_solo_of(m, e) && !cas_acq_rel(&grp->mode, &m, mode_make(m, MODE_SHARED, 0, mode_count(m))))
		;
	wake_all_members(ch);
}

/* Break the claim locks place e holds in group g (it died taking a claim): a claim
 * it had finished taking (the cursor moved to its end) stays its claim, one it had
 * not is forgotten (the cursor did not move). */
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
		    load_acquire(&p->cursor) !=
			    load_relaxed(&mb->claim_start) + claim_left(c, load_relaxed(&mb->claim_start)))
			store_release(&mb->claim, 0);
		cas_acq_rel(&p->lock, &lk, 0);
	}
}

/* Drop place e's claim and free the place (it is ours to change: lock held). */
static int drop_place(rmpsc_channel *ch, uint32_t e, uint64_t w)
{
	struct member *mb = member_at(ch, e);
	store_release(&mb->claim, 0);
	return cas_acq_rel(&mb->owner, &w, (uint64_t)MEMBER_FREE);
}

/*
 * Bring group g's places and mode word up to date (lock held): places of members
 * that died or left give their claim to the group as an orphan (at-least-once) or
 * drop it; orphans served by a process that died become orphans again; finished
 * ones are freed; then the count is recounted from the places, the heads
 * recomputed (SHARED), and a solo member that is gone is ended. An ephemeral
 * group left with no live member loses its orphans and is removed, unless
 * `may_remove` is 0 (a joiner is about to count in). Returns the places of dead
 * or departed members it finished.
 */
static int settle(rmpsc_channel *ch, uint32_t g, struct alive_cache *cache, int may_remove)
{
	struct group *grp = group_at(ch, g);
	uint32_t flags = load_relaxed(&grp->flags);
	int amo = (flags & RMPSC_GROUP_AT_MOST_ONCE) != 0;
	int finished = 0, live = 0;
	/* Who is alive, first: an ephemeral group without live members keeps no orphans. */
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		uint64_t w = owner_in(member_at(ch, e), g);
		if (owner_state(w) == MEMBER_ACTIVE && rmpsc__owner_alive_cached(&ch->file, cache, w))
			live++;
	}
	int keep_orphans = !amo && (live > 0 || !(flags & RMPSC_GROUP_EPHEMERAL));
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = owner_in(mb, g);
		uint32_t st = owner_state(w);
		if (w == MEMBER_FREE)
			continue;
		int gone = (st == MEMBER_ACTIVE || st == MEMBER_JOINING || st == MEMBER_ADOPTING) &&
			   !rmpsc__owner_alive_cached(&ch->file, cache, w);
		if (st == MEMBER_JOINING) {
			if (gone && cas_acq_rel(&mb->owner, &w, (uint64_t)MEMBER_FREE))
				finished++; /* never counted in */
			continue;
		}
		if ((st == MEMBER_ACTIVE && gone) || st == MEMBER_LEFT) {
			clear_wait(ch, e);
			if (st == MEMBER_ACTIVE) {
				break_locks(ch, e, g);
				fetch_add_relaxed(&ch->hdr->recovered_members, 1);
			}
			convert_solo(ch, e, g);
			if (load_acquire(&mb->claim) && keep_orphans) {
				if (cas_acq_rel(&mb->owner, &w, (uint64_t)MEMBER_ORPHAN))
					finished++;
			} else {
				finished += drop_place(ch, e, w);
			}
			continue;
		}
		if (st == MEMBER_ADOPTING && gone) { /* its adopter died serving it */
			if (keep_orphans && load_acquire(&mb->claim))
				cas_acq_rel(&mb->owner, &w, (uint64_t)MEMBER_ORPHAN);
			else /* dropped, or served to the end (it died before freeing it) */
				finished += drop_place(ch, e, w);
			continue;
		}
		if ((st == MEMBER_ADOPTING || st == MEMBER_ORPHAN) && !load_acquire(&mb->claim)) {
			cas_acq_rel(&mb->owner, &w, (uint64_t)MEMBER_FREE); /* served and released */
			continue;
		}
		if (st == MEMBER_ORPHAN && !keep_orphans)
			drop_place(ch, e, w);
	}
	/* Recount. */
	uint32_t count = 0, orphans = 0;
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		uint32_t st = owner_state(owner_in(member_at(ch, e), g));
		if (st == MEMBER_FREE || st == MEMBER_JOINING)
			continue;
		count++;
		orphans += st == MEMBER_ORPHAN;
	}
	/* A hint (adopters look when it is not 0): a member handing an orphan back
	 * without the lock adds one after its CAS, so never lower it below that. */
	store_relaxed(&grp->orphans, orphans);
	if (orphans == 0 && rmpsc__group_has_orphans(ch, g))
		store_relaxed(&grp->orphans, 1);
	uint64_t m = load_acquire(&grp->mode);
	for (;;) {
		uint32_t kind = mode_kind(m), solo = mode_solo(m);
		if (kind == MODE_REMOVED)
			break;
		if ((kind == MODE_SOLO || kind == MODE_PENDING) && solo >= ch->L.max_consumers)
			break; /* a corrupt region: members taking records report it (ECORRUPT) */
		if ((kind == MODE_SOLO || kind == MODE_PENDING) &&
		    owner_state(owner_in(member_at(ch, solo), g)) != MEMBER_ACTIVE) {
			/* Its solo member left (or died) since we looked at its place: its open
			 * claim becomes a record first (the next settle hands it on). */
			convert_solo(ch, solo, g);
			m = load_acquire(&grp->mode);
			continue;
		}
		int remove = count == 0 && (flags & RMPSC_GROUP_EPHEMERAL) && may_remove;
		uint64_t next = remove ? mode_make(m, MODE_REMOVED, 0, 0) : mode_make(m, kind, solo, count);
		if (next == m || cas_acq_rel(&grp->mode, &m, next)) {
			if (remove) {
				store_release(&grp->state, (uint64_t)GROUP_FREE);
				rmpsc__wake_all_producers(ch); /* those it held back */
			} else if (mode_kind(next) == MODE_SHARED) {
				/* Claims dropped, or cleared by a member (or a holder of this
				 * lock) that died before it recomputed. Not while a solo member
				 * runs the group: its open claim is no record, and it moves the
				 * heads itself. */
				recompute_all(ch, g);
			}
			break;
		}
	}
	if (orphans)
		wake_all_members(ch); /* waiting members adopt them */
	return finished;
}

/* A group left CREATING by a creator that died, or REMOVED by a remover that died
 * before freeing it, is freed. A REMOVED group is freed only under its lock: its
 * remover frees it under the lock itself, and a second, unlocked free could land
 * after the place was created again for another group. */
static void recover_groups(rmpsc_channel *ch, struct alive_cache *cache, uint64_t me)
{
	for (uint32_t g = 0; g < ch->L.max_groups; g++) {
		struct group *grp = group_at(ch, g);
		uint64_t st = load_acquire(&grp->state);
		if (owner_state(st) == GROUP_CREATING && !rmpsc__owner_alive_cached(&ch->file, cache, st)) {
			if (cas_acq_rel(&grp->state, &st, (uint64_t)GROUP_FREE))
				rmpsc__wake_all_producers(ch);
			continue;
		}
		if (owner_state(st) != GROUP_ACTIVE || mode_kind(load_acquire(&grp->mode)) != MODE_REMOVED || !me)
			continue;
		rmpsc__process_lock();
		if (group_trylock(ch, g, me)) {
			st = load_acquire(&grp->state);
			if (owner_state(st) == GROUP_ACTIVE && mode_kind(load_acquire(&grp->mode)) == MODE_REMOVED &&
			    cas_acq_rel(&grp->state, &st, (uint64_t)GROUP_FREE))
				rmpsc__wake_all_producers(ch);
			group_unlock(ch, g, me);
		}
		rmpsc__process_unlock();
	}
}

int rmpsc__recover_members(rmpsc_channel *ch, uint64_t *me, int only_group)
{
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	int n = 0;
	for (uint32_t g = 0; g < ch->L.max_groups; g++) {
		if (only_group >= 0 && g != (uint32_t)only_group)
			continue;
		if (owner_state(load_acquire(&group_at(ch, g)->state)) != GROUP_ACTIVE)
			continue;
		/* Anything to do? Places of dead or departed members, finished orphans, a
		 * count that is not the places' (a lock holder died between the two), or
		 * a lock holder that died. */
		struct group *grp = group_at(ch, g);
		uint64_t lk = load_acquire(&grp->lock);
		int work = lk != 0 && !rmpsc__owner_alive_cached(&ch->file, &cache, lk);
		uint32_t places = 0, orphan_places = 0; /* an ephemeral group of orphans only has nobody to adopt them */
		for (uint32_t e = 0; e < ch->L.max_consumers && !work; e++) {
			struct member *mb = member_at(ch, e);
			uint64_t w = owner_in(mb, g);
			uint32_t st = owner_state(w);
			if (st == MEMBER_FREE || st == MEMBER_JOINING)
				continue;
			places++;
			if (st == MEMBER_ORPHAN) {
				orphan_places++;
				work = !load_relaxed(&grp->orphans); /* handed back while a holder recounted */
				continue;
			}
			work = st == MEMBER_LEFT || !rmpsc__owner_alive_cached(&ch->file, &cache, w) ||
			       (st == MEMBER_ADOPTING && !load_acquire(&mb->claim));
		}
		uint64_t m = load_acquire(&grp->mode);
		work = work || (mode_kind(m) != MODE_REMOVED && places != mode_count(m)) ||
		       (places == orphan_places && (load_relaxed(&grp->flags) & RMPSC_GROUP_EPHEMERAL) && lk == 0);
		if (!work)
			continue;
		if (!*me && rmpsc__attach(&ch->file, me) != RMPSC_OK)
			return n;
		rmpsc__process_lock();
		if (group_trylock(ch, g, *me)) {
			n += settle(ch, g, &cache, 1);
			group_unlock(ch, g, *me);
		}
		rmpsc__process_unlock();
	}
	if (only_group < 0)
		recover_groups(ch, &cache, *me);
	return n;
}

int rmpsc__group_has_orphans(const rmpsc_channel *ch, uint32_t g)
{
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		if (owner_in(mb, g) == MEMBER_ORPHAN && load_acquire(&mb->claim))
			return 1;
	}
	return 0;
}

int rmpsc__has_orphans(const rmpsc_channel *ch)
{
	return rmpsc__group_has_orphans(ch, ch->group);
}

/* ------------------------------------------------------------------------- */
/* The member's own steps (consumer.c). */

static uint64_t my_id(const rmpsc_channel *ch)
{
	return owner_id(ch->member_word);
}

int rmpsc__solo_end(rmpsc_channel *ch, uint64_t m)
{
	uint32_t e = mode_solo(m), g = ch->group;
	if (e >= ch->L.max_consumers)
		return rmpsc__set_error(RMPSC_ECORRUPT, "group %u: solo member %u out of range", g, e);
	struct member *mb = member_at(ch, e);
	/* Store, cold barrier, load, against the solo member's store, hot barrier, load
	 * (consumer.c solo_enter): either it sees PENDING before its next plain store,
	 * or we see it busy and come back. Not needed when we are the solo member. */
	if (e != (uint32_t)ch->member) {
		if (cold_barrier(ch->asymmetric) != 0 || load_acquire(&mb->busy))
			return 0;
	}
	int done = 0;
	rmpsc__process_lock();
	if (group_trylock(ch, g, my_id(ch))) {
		if (load_acquire(&group_at(ch, g)->mode) == m)
			convert_solo(ch, e, g);
		group_unlock(ch, g, my_id(ch));
		done = 1;
	}
	rmpsc__process_unlock();
	return done;
}

int rmpsc__go_solo(rmpsc_channel *ch)
{
	uint32_t g = ch->group, e = (uint32_t)ch->member;
	struct group *grp = group_at(ch, g);
	int done = 0;
	rmpsc__process_lock();
	if (group_trylock(ch, g, my_id(ch))) {
		uint64_t m = load_acquire(&grp->mode);
		/* Alone, nothing open: every claim of the group was released and the last
		 * release of each moved its head to the cursor (recompute_head). */
		if (mode_kind(m) == MODE_SHARED && mode_count(m) == 1 && !load_acquire(&member_at(ch, e)->claim) &&
		    ch->serving == ch->member) {
			/* Every head to its cursor first (a holder that died before it
			 * recomputed): nobody else can claim while we hold the lock. */
			recompute_all(ch, g);
			done = cas_acq_rel(&grp->mode, &m, mode_make(m, MODE_SOLO, e, 1));
		}
		group_unlock(ch, g, my_id(ch));
	}
	rmpsc__process_unlock();
	return done;
}

int rmpsc__adopt_orphan(rmpsc_channel *ch)
{
	uint32_t g = ch->group;
	struct group *grp = group_at(ch, g);
	if (!load_relaxed(&grp->orphans))
		return 0;
	int adopted = -1; /* the group's lock is held: look again soon */
	uint64_t adopting = owner_word(MEMBER_ADOPTING, my_id(ch));
	rmpsc__process_lock();
	if (group_trylock(ch, g, my_id(ch))) {
		adopted = 0;
		for (uint32_t e = 0; e < ch->L.max_consumers && !adopted; e++) {
			struct member *mb = member_at(ch, e);
			uint64_t w = MEMBER_ORPHAN;
			if (owner_in(mb, g) != MEMBER_ORPHAN || !load_acquire(&mb->claim) ||
			    !cas_acq_rel(&mb->owner, &w, adopting))
				continue;
			if (load_relaxed(&mb->group) != g) { /* freed and orphaned in another group meanwhile */
				cas_acq_rel(&mb->owner, &adopting, (uint64_t)MEMBER_ORPHAN);
				adopting = owner_word(MEMBER_ADOPTING, my_id(ch));
				continue;
			}
			uint32_t d = load_relaxed(&mb->deliveries) + 1;
			store_relaxed(&mb->deliveries, d);
			if (d > 1) {
				uint64_t c = load_acquire(&mb->claim);
				fetch_add_relaxed(&grp->redelivered, claim_left(c, load_relaxed(&mb->claim_start)));
			}
			ch->serving = (int)e;
			adopted = 1;
		}
		store_relaxed(&grp->orphans, (uint32_t)rmpsc__group_has_orphans(ch, g)); /* a hint */
		group_unlock(ch, g, my_id(ch));
	}
	rmpsc__process_unlock();
	return adopted;
}

void rmpsc__orphan_done(rmpsc_channel *ch)
{
	uint32_t g = ch->group, e = (uint32_t)ch->serving;
	ch->serving = ch->member;
	rmpsc__process_lock();
	if (group_trylock(ch, g, my_id(ch))) {
		uint64_t w = owner_word(MEMBER_ADOPTING, my_id(ch));
		cas_acq_rel(&member_at(ch, e)->owner, &w, (uint64_t)MEMBER_FREE);
		struct alive_cache cache;
		memset(&cache, 0, sizeof cache);
		settle(ch, g, &cache, 1); /* the count */
		group_unlock(ch, g, my_id(ch));
	} /* else the lock's holder frees it: ADOPTING with no claim is finished (settle) */
	rmpsc__process_unlock();
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

static int lock_table(rmpsc_channel *ch, uint64_t me)
{
	uint64_t *lk = &ch->hdr->groups_lock;
	int64_t until = rmpsc__monotonic_ns() + GROUP_LOCK_WAIT_NS;
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

static void unlock_table(rmpsc_channel *ch, uint64_t me)
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
	/* Ours until our join counts us in: nobody settles (and so removes) the new,
	 * empty group meanwhile; if we die first, the next holder does. */
	store_relaxed(&grp->lock, me);
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
	rmpsc__wake_all_producers(ch);
	return (int)g;
}

/* Find group `name`, creating it if absent (*created set then). */
static int find_or_create(rmpsc_channel *ch, const char *name, unsigned flags, uint64_t me, int *created)
{
	int g = find_group(ch, name);
	if (g >= 0)
		return g;
	int rc = lock_table(ch, me);
	if (rc)
		return rc;
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	recover_groups(ch, &cache, me); /* a creator that died under the lock, a removal half done */
	g = find_group(ch, name);
	if (g < 0) {
		g = group_create(ch, name, flags, me);
		*created = g >= 0;
	}
	unlock_table(ch, me);
	return g;
}

/* Take group g's lock (process lock held on return, and the group lock when
 * RMPSC_OK), waiting a bounded time for a live holder. */
static int lock_group_waiting(rmpsc_channel *ch, uint32_t g, uint64_t me)
{
	int64_t until = 0;
	for (;;) {
		rmpsc__process_lock();
		if (group_trylock(ch, g, me))
			return RMPSC_OK;
		rmpsc__process_unlock();
		int64_t now = rmpsc__monotonic_ns();
		if (!until)
			until = now + GROUP_LOCK_WAIT_NS;
		else if (now > until)
			return rmpsc__set_error(RMPSC_ETIMEDOUT, "group \"%s\" is locked by live process %u",
						group_at(ch, g)->name,
						rmpsc__owner_pid(&ch->file, load_acquire(&group_at(ch, g)->lock)));
		sched_yield();
	}
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
	if ((rc = lock_group_waiting(ch, (uint32_t)g, me)))
		return rc;
	struct group *grp = group_at(ch, (uint32_t)g);
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	settle(ch, (uint32_t)g, &cache, 1);
	uint64_t m = load_acquire(&grp->mode);
	int live = 0;
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		uint32_t st = owner_state(owner_in(member_at(ch, e), (uint32_t)g));
		if (st == MEMBER_ACTIVE || st == MEMBER_JOINING || st == MEMBER_ADOPTING)
			live++;
	}
	if (live || mode_kind(m) == MODE_REMOVED || !name_eq(grp, name)) {
		group_unlock(ch, (uint32_t)g, me);
		rmpsc__process_unlock();
		return live ? rmpsc__set_error(RMPSC_EINVAL, "group_remove: group \"%s\" has a live member", name)
			    : rmpsc__set_error(RMPSC_EINVAL, "group_remove: no group \"%s\"", name);
	}
	/* Orphans nobody will adopt now, then the group itself. */
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) {
		struct member *mb = member_at(ch, e);
		if (owner_in(mb, (uint32_t)g) == MEMBER_ORPHAN)
			drop_place(ch, e, MEMBER_ORPHAN);
	}
	while (!cas_acq_rel(&grp->mode, &m, mode_make(m, MODE_REMOVED, 0, 0)))
		;
	store_release(&grp->state, (uint64_t)GROUP_FREE); /* a remover that dies here: recover_groups */
	group_unlock(ch, (uint32_t)g, me);
	rmpsc__process_unlock();
	rmpsc__wake_all_producers(ch);
	return RMPSC_OK;
}

/* ------------------------------------------------------------------------- */
/* Joining and leaving. */

int rmpsc__check_join(const char *name, unsigned flags)
{
	if (name && strlen(name) > RMPSC_GROUP_NAME_MAX)
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_join: group name \"%.40s...\" is longer than %u bytes",
					name, RMPSC_GROUP_NAME_MAX);
	if (flags & ~(RMPSC_GROUP_EPHEMERAL | RMPSC_GROUP_AT_MOST_ONCE))
		return rmpsc__set_error(RMPSC_EINVAL, "consumer_join: unknown flags 0x%x", flags);
	return RMPSC_OK;
}

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

/*
 * Join group g (process lock and group lock held): share this process's place,
 * take over an orphaned one (its claim is ours, delivered once more), or take a
 * free one; then count in. Returns 1 (a place of our own), 0 (shared), or -1 (no
 * place free).
 */
static int join_locked(rmpsc_channel *ch, uint32_t g, uint64_t me)
{
	struct group *grp = group_at(ch, g);
	uint64_t active = owner_word(MEMBER_ACTIVE, me);
	for (uint32_t e = 0; e < ch->L.max_consumers; e++) { /* another handle of ours is a member */
		struct member *mb = member_at(ch, e);
		if (owner_in(mb, g) == active) {
			++*rmpsc__member_holders(&ch->file, e);
			become_member(ch, e, g, me);
			return 0;
		}
	}
	int took = -1;
	for (uint32_t e = 0; e < ch->L.max_consumers && took < 0; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = MEMBER_ORPHAN;
		if (owner_in(mb, g) != MEMBER_ORPHAN || !cas_acq_rel(&mb->owner, &w, active))
			continue;
		if (load_relaxed(&mb->group) != g) { /* freed and orphaned in another group meanwhile */
			uint64_t back = active;
			cas_acq_rel(&mb->owner, &back, (uint64_t)MEMBER_ORPHAN);
			continue;
		}
		/* Its claim is ours now, delivered once more. */
		clear_wait(ch, e);
		store_relaxed(&mb->pid, (uint32_t)getpid());
		store_relaxed(&mb->busy, 0);
		uint64_t c = load_acquire(&mb->claim);
		uint32_t d = load_relaxed(&mb->deliveries) + 1;
		store_relaxed(&mb->deliveries, d);
		if (c && d > 1)
			fetch_add_relaxed(&grp->redelivered, claim_left(c, load_relaxed(&mb->claim_start)));
		took = (int)e;
	}
	for (uint32_t e = 0; e < ch->L.max_consumers && took < 0; e++) {
		struct member *mb = member_at(ch, e);
		uint64_t w = MEMBER_FREE;
		/* JOINING until set up: a place free for every group is not counted in any
		 * (settle) until its group field is ours. */
		if (load_relaxed(&mb->owner) != MEMBER_FREE ||
		    !cas_acq_rel(&mb->owner, &w, owner_word(MEMBER_JOINING, me)))
			continue;
		store_relaxed(&mb->claim, 0);
		store_relaxed(&mb->deliveries, 0);
		store_relaxed(&mb->busy, 0);
		store_relaxed(&mb->solo_ring, 0);
		store_relaxed(&mb->pid, (uint32_t)getpid());
		clear_wait(ch, e);
		store_release(&mb->group, g);
		store_release(&mb->owner, active);
		took = (int)e;
	}
	if (took < 0)
		return -1;
	*rmpsc__member_holders(&ch->file, (uint32_t)took) = 1;
	become_member(ch, (uint32_t)took, g, me);
	/* Count in: alone, SOLO at once (heads are at the cursors: see go_solo); with a
	 * solo member, PENDING until its solo mode is ended (consumer.c). */
	struct alive_cache cache;
	memset(&cache, 0, sizeof cache);
	settle(ch, g, &cache, 1);
	uint64_t m = load_acquire(&grp->mode);
	uint32_t n = mode_count(m);
	uint64_t next = m;
	if (n == 1 && mode_kind(m) == MODE_SHARED && !load_acquire(&member_at(ch, (uint32_t)took)->claim)) {
		recompute_all(ch, g); /* as go_solo */
		next = mode_make(m, MODE_SOLO, (uint32_t)took, 1);
	} else if (mode_kind(m) == MODE_SOLO && mode_solo(m) != (uint32_t)took)
		next = mode_make(m, MODE_PENDING, mode_solo(m), n);
	if (next != m && cas_acq_rel(&grp->mode, &m, next) && mode_kind(next) == MODE_PENDING)
		wake_all_members(ch); /* the solo member may sleep: let it see PENDING */
	return 1;
}

int rmpsc__member_join(rmpsc_channel *ch, const char *name, unsigned flags)
{
	if (!name || !*name)
		name = RMPSC_DEFAULT_GROUP;
	int rc = rmpsc__check_join(name, flags);
	if (rc)
		return rc;
	uint64_t me;
	if ((rc = rmpsc__attach(&ch->file, &me)))
		return rc;
	for (int round = 0; round < 4; round++) {
		int created = 0;
		int g = find_or_create(ch, name, flags, me, &created);
		if (g < 0)
			return g;
		struct group *grp = group_at(ch, (uint32_t)g);
		uint64_t gen = load_acquire(&grp->mode) >> MODE_GEN_SHIFT;
		if ((rc = lock_group_waiting(ch, (uint32_t)g, me)))
			return rc;
		/* Still the group we looked up (not removed and re-created meanwhile)? */
		uint64_t m = load_acquire(&grp->mode);
		if (owner_state(load_acquire(&grp->state)) != GROUP_ACTIVE || mode_kind(m) == MODE_REMOVED ||
		    m >> MODE_GEN_SHIFT != gen || !name_eq(grp, name)) {
			group_unlock(ch, (uint32_t)g, me);
			rmpsc__process_unlock();
			continue;
		}
		uint32_t have = load_relaxed(&grp->flags);
		if (have != flags) {
			group_unlock(ch, (uint32_t)g, me);
			rmpsc__process_unlock();
			return rmpsc__set_error(RMPSC_EINVAL,
						"consumer_join: group \"%s\" exists with flags 0x%x (%s%s), not 0x%x",
						name, have, have & RMPSC_GROUP_EPHEMERAL ? "ephemeral " : "durable ",
						have & RMPSC_GROUP_AT_MOST_ONCE ? "at-most-once" : "at-least-once",
						flags);
		}
		struct alive_cache cache;
		memset(&cache, 0, sizeof cache);
		/* Dead members' places first (one may be ours to take); an ephemeral group
		 * left empty stays for us. */
		settle(ch, (uint32_t)g, &cache, 0);
		int got = join_locked(ch, (uint32_t)g, me);
		if (got < 0) {
			/* No place for us: an empty ephemeral group goes, and so does one this
			 * join created (a failed join leaves nothing behind). */
			settle(ch, (uint32_t)g, &cache, 1);
			uint64_t now = load_acquire(&grp->mode);
			if (created && mode_kind(now) != MODE_REMOVED && mode_count(now) == 0 &&
			    cas_acq_rel(&grp->mode, &now, mode_make(now, MODE_REMOVED, 0, 0))) {
				store_release(&grp->state, (uint64_t)GROUP_FREE);
				rmpsc__wake_all_producers(ch);
			}
		}
		group_unlock(ch, (uint32_t)g, me);
		rmpsc__process_unlock();
		if (got >= 0)
			return got;
		/* No place free: members of other groups may be dead. */
		uint64_t id = me;
		if (!rmpsc__recover_members(ch, &id, -1) && round > 0)
			break;
	}
	if (ch->L.max_consumers == 1) {
		uint32_t pid = load_relaxed(&member_at(ch, 0)->pid);
		return rmpsc__set_error(RMPSC_ECONSUMER, "the consumer role is held by live process %u", pid);
	}
	return rmpsc__set_error(RMPSC_ECONSUMER, "all %u consumer places (max_consumers) are held by live processes",
				ch->L.max_consumers);
}

/* Close and remove this process's readiness FIFO of place e (process lock held). */
static void drop_member_fifo(rmpsc_channel *ch, uint32_t e)
{
	rmpsc__member_fifo(&ch->file, e)->armed = 0;
	struct member_fifo *f = rmpsc__member_fifo(&ch->file, e);
	if (!f->fd1)
		return;
	uint64_t gen = f->gen;
	cas_acq_rel(&member_at(ch, e)->fifo_gen, &gen, 0); /* unless a holder after us made its own */
	rmpsc__fifo_remove(ch, 'm', e, f->gen);
	close(f->fd1 - 1);
	f->fd1 = 0;
	f->gen = 0;
}

void rmpsc__member_lost(rmpsc_channel *ch)
{
	if (ch->member < 0 || ch->member_gen != fork_generation())
		return;
	rmpsc__process_lock();
	drop_member_fifo(ch, (uint32_t)ch->member);
	rmpsc__process_unlock();
	ch->member = -1; /* the place is not ours: nothing else to let go */
}

void rmpsc__member_leave(rmpsc_channel *ch)
{
	if (ch->member < 0)
		return;
	if (ch->member_gen == fork_generation()) {
		uint32_t e = (uint32_t)ch->member, g = ch->group;
		uint64_t me = my_id(ch);
		struct member *mb = member_at(ch, e);
		rmpsc__process_lock();
		/* An orphan this handle serves goes back, whoever else holds our place. */
		if (ch->serving >= 0 && ch->serving != ch->member) {
			struct member *ob = member_at(ch, (uint32_t)ch->serving);
			uint64_t w = owner_word(MEMBER_ADOPTING, me);
			store_relaxed(&ob->deliveries, load_relaxed(&ob->deliveries) - 1); /* not a redelivery */
			if (cas_acq_rel(&ob->owner, &w, (uint64_t)MEMBER_ORPHAN))
				fetch_add_relaxed(&group_at(ch, g)->orphans, 1);
		}
		int *holders = rmpsc__member_holders(&ch->file, e);
		if (*holders > 0 && *holders - 1 == 0) /* the last handle of ours here: our FIFO goes */
			drop_member_fifo(ch, e);
		if (*holders > 0 && --*holders == 0 && load_acquire(&mb->owner) == ch->member_word) {
			/* Handing on what we hold is not a redelivery. */
			uint32_t d = load_relaxed(&mb->deliveries);
			if (d && (load_acquire(&mb->claim) || is_solo_of(load_acquire(&group_at(ch, g)->mode), e)))
				store_relaxed(&mb->deliveries, d - 1);
			uint64_t w = ch->member_word;
			cas_acq_rel(&mb->owner, &w, (uint64_t)MEMBER_LEFT);
		}
		/* Whoever holds the group lock next finishes it; now, if nobody does. */
		if (group_trylock(ch, g, me)) {
			struct alive_cache cache;
			memset(&cache, 0, sizeof cache);
			settle(ch, g, &cache, 1);
			group_unlock(ch, g, me);
		}
		rmpsc__process_unlock();
	}
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
		uint32_t st = owner_state(w);
		if (st == MEMBER_FREE || st == MEMBER_JOINING || g >= ch->L.max_groups || index_of[g] == UINT32_MAX)
			continue;
		int alive = (st == MEMBER_ACTIVE || st == MEMBER_ADOPTING) && rmpsc__owner_alive(&ch->file, w);
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
			o->claim_count = c ? (uint32_t)claim_left(c, load_relaxed(&mb->claim_start)) : 0;
		}
		nm++;
	}
	if (n_members)
		*n_members = members ? (nm < max_members ? nm : max_members) : nm;
	return (int)(groups ? (ng < max_groups ? ng : max_groups) : ng);
}
