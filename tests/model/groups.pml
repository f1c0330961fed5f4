/*
 * Consumer groups, as csrc/group.c, csrc/consumer.c and csrc/producer.c do them
 * now (docs/ARCHITECTURE.md 2.7 "Consumer groups"). Run by
 * tests/model/run.sh; the lock holders' steps are in groups-settle.inc.
 *
 * NP producers (pids NM, NM + 1), each the only writer of one ring of CAP
 * records, write NREC records (NREC1 on ring 1); the record at position t carries
 * sequence number t (stored as t + 1: 0 is "never written"). NM member processes
 * (pids 0 .. NM - 1) share NM member places; process p joins group GROUP_OF(p):
 * A = {0, 1}, B = {2} (-DONEGROUP: all in A), and its join takes an ORPHAN place
 * of the group or a FREE one (its own index when FREE: places are alike), so
 * places and processes are not tied. Each process is a state machine (pc); every
 * transition is one load, store or CAS of the C code, sequentially consistent (a
 * seq_cst fence or barrier is implicit; -DNO_FENCE models a missing one by
 * reordering); a CAS loop whose new value is a function of the old is one
 * read-modify-write. Merged into a neighbouring step, where nothing can tell:
 * loads of words nobody else writes then (a member's own claim, a solo member's
 * own head and cursor, a dead or departed member's words under the group lock,
 * the mode word under the group lock: only lock holders write it), loads of
 * places that need nothing (settle, recompute_head: a claim that appears later
 * starts at or after the cursor loaded), stores nobody can observe yet
 * (claim_start while claim is 0; group of a JOINING place; busy while the mode
 * does not name the member; a record before its tail), a lock CAS with the
 * liveness test before it, a lock holder's last store with its unlock, the read
 * of a span with the step that took it. Steps (pc) by the C function they mirror:
 *
 * Members (Member):
 *   group_create          -DCREATE, group B by member 2 (one creator: the table
 *                         lock is not modelled): M_CREATE flags, lock = me, mode
 *                         SHARED,0, per ring head = cursor = least head of the other
 *                         live groups, or the tail (B is FREE: unseen); M_CREATING
 *                         state = CREATING(me) + fence; per ring M_CTAIL load tail,
 *                         M_CCUR cursor, M_CHEAD head; M_CACTIVE state = ACTIVE (the
 *                         lock stays ours until our join counted us in).
 *   rmpsc__member_join    J_LOCK lock_group_waiting (a live holder: wait) and the
 *                         group still there, settle(g, 0); join_locked: J_TAKE CAS
 *                         ORPHAN -> ACTIVE(me) (its claim is ours, a redelivery;
 *                         settle(g, 1)), else CAS FREE -> JOINING(me) (claim, busy,
 *                         group), J_ACTIVE owner = ACTIVE(me), settle(g, 1); J_MODE
 *                         count 1, SHARED, no claim: SOLO(me); SOLO(m): PENDING(m);
 *                         unlock.
 *   take_span             T_ENTER solo_enter: busy = 1 (a step of its own only when
 *                         the mode names us: then T_MODE loads the mode), SOLO(me):
 *                         T_SOLO solo_take (a ring with head != cursor served again
 *                         (solo_open_span), else cursor += k, one plain store),
 *                         T_SEXIT solo_exit busy = 0; else T_EXIT busy = 0, and by
 *                         the mode:
 *   rmpsc__solo_end       PENDING(m): m's busy (cold barrier; not for m itself),
 *                         only 0 goes on (else TAKE_BUSY: idle), trylock, mode
 *                         unchanged: convert_solo(m) (CV_1); T_SEUNLOCK, again.
 *   shared_take           SHARED: our serving place's claim served again (taken
 *                         over at join); count 1:
 *   rmpsc__go_solo        trylock, T_GS2 SHARED,1 and no claim -> SOLO(me), unlock;
 *   rmpsc__adopt_orphan   orphans hint > 0: trylock, T_AD3 CAS ORPHAN (claim != 0)
 *                         -> ADOPTING(me), load the hint, T_AD4 store hint - 1,
 *                         unlock, serve its claim;
 *   shared_sweep          CAS ring lock 0 -> me + 1 (from the sweep cursor), load
 *                         cursor and tail, claim_start; T_CL claim = (ring, end);
 *                         T_CUR cursor += k; T_UNLOCK lock = 0 (and the read).
 *   release_span          R_ENTER solo_enter (as T_ENTER); SOLO(me): R_SOLO head +=
 *                         n (plain store), R_SEXIT busy = 0; else R_EXIT busy = 0;
 *                         PENDING(me): R_SE trylock (a live holder: wait), convert_
 *                         solo(me), R_SEUNLOCK, again; SHARED: the claim record of
 *                         our serving place: full: claim = 0, partial: claim_start
 *                         += n (one store); fence; recompute_head (RC_1); an
 *                         orphan released in full:
 *   rmpsc__orphan_done    R_OD serving = member, trylock (held: left to the
 *                         holder), R_OD2 CAS ADOPTING(me) -> FREE, settle(g, 1),
 *                         R_ODUNLOCK.
 *   rmpsc__recover_members  (own group, idle: maybe_recover_peers) its test (a dead
 *                         lock holder; places of dead or departed members; served
 *                         orphans; a count that is not the places'; an empty
 *                         ephemeral group), liveness answers cached, trylock,
 *                         settle(g, 1), V_UNLOCK.
 *   rmpsc__member_leave   (at the end, or early: -DLEAVE) CAS ADOPTING(me) ->
 *                         ORPHAN (an orphan we serve), L_HINT orphans + 1
 *                         (unlocked); CAS ACTIVE(me) -> LEFT; L_LOCK trylock (held:
 *                         left to the holder), settle(g, 1), L_UNLOCK.
 * Lock holders (groups-settle.inc; members and producers):
 *   settle                pass 1 (in the step that took the lock): live members
 *                         (alive_cache: an identity's first answer stands),
 *                         keep_orphans; S_PLACE per place with something to do:
 *                         JOINING(dead) -> FREE; ACTIVE(dead): break_locks, CV_1
 *                         convert_solo, S_ORPH ORPHAN (keep) or drop (claim = 0,
 *                         S_FREE -> FREE); LEFT: the same without break_locks;
 *                         ADOPTING(dead) -> ORPHAN or drop; ORPHAN or ADOPTING with
 *                         claim 0 -> FREE; ORPHAN, !keep: drop; then the recount;
 *                         S_MODE store orphans and mode (the count; a solo member
 *                         not ACTIVE: SHARED; ephemeral, count 0, may_remove:
 *                         REMOVED, S_GFREE state = FREE); recompute_all (RC_1) when
 *                         SHARED and a place was finished or a claim dropped.
 *   convert_solo          CV_1 SOLO/PENDING(e): the ring where head < cursor:
 *                         claim_start = head, claim = (ring, cursor) (or claim = 0),
 *                         mode -> SHARED.
 *   recompute_head        load cursor; RC_1 per place of the group not FREE with a
 *                         claim on the ring: load claim, RC_2 claim_start; CAS-max
 *                         head (forward by at most a ring).
 * Producers (Producer):
 *   ring_reserve/commit   P_TOP the record and tail = t + 1 (release).
 *   refresh_head /        full: fence; P_TOP load state and mode of A, P_HA its
 *   rmpsc__released_head  head and B's state and mode, P_HB B's head; the least of
 *                         the live groups (CREATING or ACTIVE, not REMOVED; CREATING
 *                         more than a ring behind reads as full).
 *   space_ready           P_WAIT: space by the heads now: the slow path again; or
 *                         rmpsc_reclaim_dead: rmpsc__recover_members(-1) (its test,
 *                         cache, trylock, settle(g, 1), PV_UNLOCK), recover_groups
 *                         (CREATING(dead) -> FREE; REMOVED and ACTIVE -> FREE).
 *
 * Death: the killer may stop a member before any step (MAXDEATHS in all;
 * KILLMASK: which), holding the group lock or inside its busy bracket included;
 * what it wrote stays; the next trylock takes a dead holder's group lock over,
 * settle breaks its claim locks. Waits are blocking guards on what would let the
 * waiter progress (the C's waits poll at a bounded rate), so a process left
 * waiting forever is an invalid end state; futex wake-ups are not modelled.
 *
 * Checked:
 *  - a record a member reads carries the sequence number of its position, and a
 *    producer never overwrites a record a live group has not released;
 *  - a member that finishes (every record committed, its group's heads at the
 *    tails) finds that its group released every record committed since it was
 *    created, but for claims settle dropped (at-most-once; an ephemeral group
 *    with no live member);
 *  - a record is read twice in a group only as a redelivery (a claim taken over
 *    by an adopter or a joiner) of one a dead member held; at-most-once: never;
 *  - a release finds its claim record as it took it, a solo release its head;
 *    head <= cursor <= tail always; a member never sees SOLO(another member);
 *  - valid end states: nobody waits forever.
 *
 * Options: -DAMO (group A at-most-once), -DEPH (group B ephemeral; -DONEGROUP:
 * group A, created by member 0), -DCREATE (group B created by member 2 while the
 * producers run), -DPARTIAL (partial releases), -DLEAVE=mask (those members may
 * leave early, once: idle, or with a span read and not released, which goes back
 * to the group), -DSTAY (no leave at the end), -DPRECOVER=0 (producers do not
 * recover), -DPROBE=n (fail when situation n is reached, to show a check is not
 * vacuous: 1 adoption, 2 a joiner ends a solo mode, 3 a member recovers, 4 an
 * open solo span recorded, 5 ephemeral removal, 6 a join takes an orphan, 7 a
 * claim dropped, 8 a leave hands a span back, 9 a producer recovers, 11 a dead
 * member's place finished).
 *
 * Negative variants, expected to FAIL (run.sh): -DNO_FENCE (a release's scan
 * before its clear is visible: two releases miss each other, the head stays
 * below the cursor, the members wait forever), -DNO_BUSY (a joiner converts
 * while the solo member is between its mode load and its head store: the record
 * outlives the release, the span is served again), -DRECOMPUTE_IN_SOLO (settle
 * recomputes heads while SOLO/PENDING: the head passes the solo member's open
 * span), -DTWO_STORE_PARTIAL (a claim word with a count, not its end: a member
 * dying between claim_start += n and count -= n orphans a span past its own: a
 * record read twice), -DCOUNT_INC (the count kept by + 1 and - 1, not recounted:
 * a joiner dying between ACTIVE and its + 1 is taken off twice: the count
 * underflows), -DCURSOR_FIRST (a claim stores the cursor before its record: a
 * recompute passes the claim), -DTAIL_FIRST (group_create reads the tails before
 * CREATING: a producer overwrites records the new group starts at).
 *
 * Flaws found in group.c as it was; group.c has the fixes now (-DFIX_EPH_ORPHANS
 * -DFIX_SOLO_LEFT -DFIX_RECOMPUTE -DFIX_TAKEOVER model them). run.sh runs each
 * configuration with the fixes (groups-leave*, groups-two-deaths: must pass) and
 * without (groups-flaw-*: must find the counterexample):
 *  A (groups-leave) settle decides keep_orphans from pass 1's live members; a
 *    member that leaves (ACTIVE -> LEFT, unlocked) after pass 1 of another
 *    process's settle has its open claim made an ORPHAN by that settle although
 *    no live member is left: an ephemeral at-least-once group is left with only
 *    an orphan, never adopted, never removed (its count is its places, the work
 *    test skips ORPHAN places), and holds the producers back forever. Trail:
 *    member 0 creates A and is SOLO; member 1 joins, ends that solo mode, claims
 *    record 0 (SHARED) and reads it; member 0 dies (idle); the producer, the ring
 *    full, settles A: pass 1 sees member 1 live (keep); it frees place 0; member 1
 *    leaves with record 0 open (LEFT; its trylock fails); the producer makes
 *    place 1 ORPHAN, count 1; nobody is left and nothing is work. Fix (-DFIX_EPH_ORPHANS):
 *    rmpsc__recover_members also counts an ephemeral at-least-once group whose
 *    places are all ORPHAN as work (settle then drops them and removes it).
 *  B (groups-leave-solo) settle's mode step ends SOLO/PENDING(e) when e's place is
 *    not ACTIVE, taking it as converted in pass 2; a solo member that leaves after
 *    pass 2 looked at its place has its open span (head < cursor) never recorded:
 *    the next settle frees the LEFT place and recomputes the head past the span,
 *    records read by the leaver and not released are released for the group,
 *    never delivered again (at-least-once broken; no death needed). Trail: member
 *    1 alone (SOLO) reads record 1; member 0's join settles (place 1: nothing);
 *    member 1 leaves; the mode step sees place 1 LEFT: SHARED, no record; member
 *    0's next settle drops place 1 (claim 0) and moves the head to 2. Fix
 *    (-DFIX_SOLO_LEFT): the mode step calls convert_solo(e) for a LEFT e.
 *  C (groups-leave-amo, groups-two-deaths, groups-leave-hint) what a lock holder
 *    that dies leaves half done is not redone: settle recomputes heads only when
 *    this call finished a place or dropped a claim, and go_solo, adopt_orphan and
 *    solo_end take a dead holder's lock over without settling. A holder dying
 *    after drop_place and before recompute_all leaves the head below the cursor;
 *    a member then goes SOLO over it and serves [head, cursor) as its own open
 *    span: records already released (or, at-most-once, delivered) are delivered
 *    again, unmarked. Trail (two deaths, no leave): member 1 releases record 0
 *    (claim = 0) and dies before its head CAS; member 0's join settles, frees
 *    place 1 and dies before recompute_all; member 2, alone, go_solo takes the
 *    lock over, goes SOLO and reads record 0 again. With a leave one death does:
 *    an at-most-once leaver dies in its own settle after dropping its span. Also
 *    (the orphans hint): a holder dying after an ORPHAN CAS and before storing
 *    orphans leaves the hint 0; a solo_end takes the lock over; the orphan is
 *    never adopted and the members wait forever. Fix: settle recomputes every
 *    ring whenever the resulting mode is SHARED (-DFIX_RECOMPUTE), and
 *    group_trylock, having taken the lock over from a dead holder, runs settle
 *    before its caller goes on (-DFIX_TAKEOVER). Both are needed.
 *
 * Not modelled: futex waits and wake-ups, several handles of one process (a
 * place's holder count), fork, the table lock and races of group creation and
 * lookup (group B has one member; a join that finds its group gone gives up
 * rather than create it again), rmpsc_group_remove, a join that finds no place,
 * the deliveries counter (a redelivery is checked through the reader), the
 * mode's generation, the close protocol, wrap-around, corrupt regions.
 */
#ifndef NP
#define NP 2                   /* producers = rings */
#endif
#ifndef CAP
#define CAP 2                  /* records per ring */
#endif
#ifndef NREC
#define NREC 3                 /* records each producer writes */
#endif
#ifndef NREC1
#define NREC1 NREC             /* records the producer of ring 1 writes */
#endif
#define NRECS(s) ((s) == 0 -> NREC : NREC1)
#ifndef MAXB
#define MAXB 2                 /* most records one claim takes */
#endif
#ifndef NM
#define NM 3                   /* member processes = member places */
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 1
#endif
#ifndef KILLMASK
#define KILLMASK 3             /* which members may die (bit p: member p) */
#endif
#ifndef LEAVE
#define LEAVE 0                /* which members may leave early (bit p: member p) */
#endif
#ifndef PROBE
#define PROBE 0                /* -DPROBE=n: fail when situation n is reached (vacuity checks) */
#endif
#define REACHED(n) assert(PROBE != (n))
#define NG 2
#define GA 0
#define GB 1
#ifdef ONEGROUP
#define GROUP_OF(p) GA
#else
#define GROUP_OF(p) ((p) == 2 -> GB : GA)
#endif
#ifndef PRECOVER
#define PRECOVER 1             /* producers waiting for space recover the dead */
#endif
#ifdef CREATE
#define CREATE_B 1
#else
#define CREATE_B 0
#endif
#ifdef PARTIAL
#define PARTIAL_REL 1
#else
#define PARTIAL_REL 0
#endif
#ifdef NO_BUSY
#define CHECK_BUSY 0
#else
#define CHECK_BUSY 1
#endif
#ifdef ONEGROUP
#define LONE(g) 0
#else
#define LONE(g) ((g) == GB)            /* group B has one member (2): nobody joins it */
#endif
#define NPROC (NM + NP)
#define PPID(s) (NM + (s))     /* pid of the producer of ring s */
#define IX(g, s) ((g) * NP + (s))
#define MIN(a, b) ((a) < (b) -> (a) : (b))

/* member place owner word: kind * 8 + pid */
#define O_FREE 0
#define O_ACTIVE 1
#define O_JOINING 2
#define O_ORPHAN 3
#define O_ADOPTING 4
#define O_LEFT 5
#define OWN(k, id) ((k) * 8 + (id))
#define OKIND(o) ((o) / 8)
#define OID(o) ((o) % 8)

/* mode word: count | kind << 2 | solo place << 4 */
#define SHARED 0
#define SOLO 1
#define PENDING 2
#define REMOVED 3
#define MODE(n, k, m) ((n) + (k) * 4 + (m) * 16)
#define MCNT(w) ((w) % 4)
#define MKIND(w) (((w) / 4) % 4)
#define MSOLO(w) ((w) / 16)
#define SOLO_OF(w, e) ((MKIND(w) == SOLO || MKIND(w) == PENDING) && MSOLO(w) == (e))

/* claim word: (ring + 1) << 3 | end (0: none); -DTWO_STORE_PARTIAL: | count */
#define CL(s, x) (((s) + 1) * 8 + (x))
#define CLS(w) ((w) / 8 - 1)
#ifndef TWO_STORE_PARTIAL
#define CLW(s, b, e) CL(s, e)
#define CEND(w, start) ((w) % 8)
#else
#define CLW(s, b, e) CL(s, (e) - (b))
#define CEND(w, start) ((start) + (w) % 8)
#endif

/* group state */
#define G_FREE 0
#define G_ACTIVE 1
#define G_CREATING(id) (8 + (id))
#define CREATOR(st) ((st) - 8)
#define F_EPH 1
#define F_AMO 2

/* ---- shared memory ---- */
byte tail[NP];                 /* ring s: tail */
byte buf[NP * CAP];            /* ring s, slot i: sequence number + 1 of its record */
byte gst[NG];                  /* struct group: state, flags, mode, orphans (a hint), lock */
byte gflags[NG];
byte mode[NG];
byte orph[NG];
byte glock[NG];                /* holder's pid + 1; 0: free */
byte head[NG * NP];            /* struct group_pos: head, cursor, lock (place + 1) */
byte cursor[NG * NP];
byte lock[NG * NP];
byte owner[NM];                /* struct member: owner, group, claim_start, claim, busy */
byte pgrp[NM];
byte cstart[NM];
byte cl[NM];
bool busy[NM];

/* ---- the kernel, and ghosts for the properties ---- */
bool dead[NPROC];
bool running[NM];
bool joined[NM];               /* member p counted itself in */
byte deaths;
bool pdone[NP];                /* producer s wrote all its records */
byte gstart[NG * NP];          /* first position group g must deliver on ring s */
byte seen[NG * NP];            /* bit r: record r was read in group g */
byte done[NG * NP];            /* bit r: record r was released in group g */
byte mayre[NG * NP];           /* bit r: a member of g died holding r */
byte lost[NG * NP];            /* bit r: settle dropped a claim covering r */
byte hold_s[NM];               /* the span member p holds: ring, [b, e); e == 0: none */
byte hold_b[NM];
byte hold_e[NM];

#define BIT(r) (1 << (r))
#define HAS(x, r) (((x) >> (r)) & 1)
#define BITS(b, e) (BIT(e) - BIT(b))   /* bits b .. e - 1 */
#define AMO_G(g) ((gflags[g] & F_AMO) != 0)
#define EPH_G(g) ((gflags[g] & F_EPH) != 0)
#define LIVE_G(g) ((gst[g] == G_ACTIVE || gst[g] >= 8) && MKIND(mode[g]) != REMOVED)

/* group_trylock by pid me: free, ours, or its holder died */
#define LOCKAV(g, me) (glock[g] == 0 || glock[g] == (me) + 1 || dead[glock[g] - 1])

/* the alive_cache of one recover_members / settle call: an identity's first
 * answer stands */
#define QUERY(id) \
	if \
	:: !((skn >> (id)) & 1) -> skn = skn | BIT(id); \
		if :: !dead[id] -> salv = salv | BIT(id) :: else -> skip fi \
	:: else -> skip \
	fi
#define ALIVE_C(id) ((salv >> (id)) & 1)
#ifdef COUNT_INC
#define DEC sdec++
#else
#define DEC skip
#endif

/* ---- what lets a waiting process go on ---- */
#define HASDATA(g, s) (cursor[IX(g, s)] < tail[s])
#define FREE_RING(g, s) (HASDATA(g, s) && lock[IX(g, s)] == 0)
#define ANYDATA(g) (HASDATA(g, 0) || HASDATA(g, NP - 1))
#define ANYGAP(g) (head[IX(g, 0)] != cursor[IX(g, 0)] || head[IX(g, NP - 1)] != cursor[IX(g, NP - 1)])
#define ANYFREE(g) (FREE_RING(g, 0) || FREE_RING(g, NP - 1))
#define ADOPTABLE_P(g, e) (pgrp[e] == (g) && owner[e] == OWN(O_ORPHAN, 0) && cl[e] != 0)
/* a place counted in group g; one whose state is work for recover_members */
#define ORPH_P(g, e) (pgrp[e] == (g) && owner[e] == OWN(O_ORPHAN, 0))
#define IN_G(g, e) (pgrp[e] == (g) && OKIND(owner[e]) != O_FREE && OKIND(owner[e]) != O_JOINING)
#define WORK_P(g, e) (IN_G(g, e) && OKIND(owner[e]) != O_ORPHAN && \
	(OKIND(owner[e]) == O_LEFT || dead[OID(owner[e])] || \
	 (OKIND(owner[e]) == O_ADOPTING && cl[e] == 0)))
#if NM > 2
#define ADOPTABLE(g) (ADOPTABLE_P(g, 0) || ADOPTABLE_P(g, 1) || ADOPTABLE_P(g, 2))
#define NPLACES(g) (IN_G(g, 0) + IN_G(g, 1) + IN_G(g, 2))
#define NORPH(g) (ORPH_P(g, 0) + ORPH_P(g, 1) + ORPH_P(g, 2))
#define WORK_PS(g) (WORK_P(g, 0) || WORK_P(g, 1) || WORK_P(g, 2))
#define ALLIN(g) ((GROUP_OF(0) != (g) || joined[0] || dead[0]) && \
	(GROUP_OF(1) != (g) || joined[1] || dead[1]) && (GROUP_OF(2) != (g) || joined[2] || dead[2]))
#else
#define ADOPTABLE(g) (ADOPTABLE_P(g, 0) || ADOPTABLE_P(g, 1))
#define NPLACES(g) (IN_G(g, 0) + IN_G(g, 1))
#define NORPH(g) (ORPH_P(g, 0) + ORPH_P(g, 1))
#define WORK_PS(g) (WORK_P(g, 0) || WORK_P(g, 1))
#define ALLIN(g) ((GROUP_OF(0) != (g) || joined[0] || dead[0]) && (GROUP_OF(1) != (g) || joined[1] || dead[1]))
#endif
/* rmpsc__recover_members' test (an empty ephemeral group already REMOVED is left
 * to recover_groups: settling it again changes nothing) */
#define WORK(g) (gst[g] == G_ACTIVE && ((glock[g] != 0 && dead[glock[g] - 1]) || WORK_PS(g) || \
	(MKIND(mode[g]) != REMOVED && NPLACES(g) != MCNT(mode[g])) || \
	(NPLACES(g) == 0 && EPH_G(g) && glock[g] == 0 && MKIND(mode[g]) != REMOVED) || FIX_EPH_WORK(g)))
#ifdef FIX_EPH_ORPHANS
/* proposed fix: an ephemeral at-least-once group whose places are all orphans
 * (no member left to adopt them) is work: settle drops them and removes it */
#define FIX_EPH_WORK(g) (EPH_G(g) && !AMO_G(g) && MKIND(mode[g]) != REMOVED && \
	NORPH(g) > 0 && NORPH(g) == NPLACES(g))
#else
#define FIX_EPH_WORK(g) 0
#endif
/* the cache the work test leaves for settle: the lock holder, and the owners of
 * the group's places it looked at */
#define CACHE_P(g, e) if :: IN_G(g, e) && (OKIND(owner[e]) == O_ACTIVE || OKIND(owner[e]) == O_ADOPTING) -> \
	QUERY(OID(owner[e])) :: else -> skip fi
#if NM > 2
#define WORK_CACHE(g) skn = 0; salv = 0; \
	if :: glock[g] != 0 -> QUERY(glock[g] - 1) :: else -> skip fi; \
	CACHE_P(g, 0); CACHE_P(g, 1); CACHE_P(g, 2)
#else
#define WORK_CACHE(g) skn = 0; salv = 0; \
	if :: glock[g] != 0 -> QUERY(glock[g] - 1) :: else -> skip fi; \
	CACHE_P(g, 0); CACHE_P(g, 1)
#endif
#define REMOVED_G(g) (gst[g] == G_ACTIVE && MKIND(mode[g]) == REMOVED)
#define DEADGRP (gst[GB] >= 8 && dead[CREATOR(gst[GB])])

/* take_span would do something: the C retries at a bounded rate, the model when it would progress */
#define CAN_TAKE ( \
	(MKIND(mode[g]) == SOLO && MSOLO(mode[g]) == pl && (ANYDATA(g) || ANYGAP(g))) || \
	(MKIND(mode[g]) == PENDING && (MSOLO(mode[g]) == pl || !CHECK_BUSY || !busy[MSOLO(mode[g])]) && \
	 LOCKAV(g, me)) || \
	(MKIND(mode[g]) == SHARED && (cl[srv] != 0 || \
		(MCNT(mode[g]) == 1 && cl[pl] == 0 && srv == pl && LOCKAV(g, me)) || \
		(orph[g] > 0 && ADOPTABLE(g) && LOCKAV(g, me)) || ANYFREE(g))))
#define ALLDONE (pdone[0] && pdone[NP - 1])
#define RELEASED_ALL(g) (head[IX(g, 0)] == tail[0] && head[IX(g, NP - 1)] == tail[NP - 1])
/* the producer of ring s: the head it would gather now (255: no live group) */
#define LHEAD(g, s, t) (!LIVE_G(g) -> 255 : \
	((gst[g] >= 8 && (t) - head[IX(g, s)] > CAP) -> (t) - CAP : head[IX(g, s)]))
#define SPACE(s, t) ((t) < CAP + MIN(LHEAD(GA, s, t), LHEAD(GB, s, t)))
#define PWORK(me) (WORK(GA) && LOCKAV(GA, me) || WORK(GB) && LOCKAV(GB, me) || DEADGRP || \
	REMOVED_G(GA) && LOCKAV(GA, me) || REMOVED_G(GB) && LOCKAV(GB, me))

/* ---- the state machines: pc values ---- */
/* lock holders' steps (groups-settle.inc) */
#define S_PLACE 101
#define S_ORPH 102
#define S_FREE 103
#define S_MODE 104
#define S_GFREE 105
#define CV_1 110
#define RC_1 121
#define RC_2 122
/* members */
#define M_CREATE 1
#define M_CREATING 2
#define M_CTAIL 3
#define M_CCUR 4
#define M_CHEAD 5
#define M_CACTIVE 6
#define J_LOCK 7
#define J_TAKE 8
#define J_ACTIVE 9
#define J_MODE 10
#define IDLE 11
#define T_ENTER 12
#define T_MODE 13
#define T_SOLO 14
#define T_SEXIT 15
#define T_EXIT 16
#define T_SE 17
#define T_SEUNLOCK 18
#define T_GS2 19
#define T_AD3 20
#define T_AD4 21
#define T_CL 22
#define T_CUR 23
#define T_UNLOCK 24
#define R_ENTER 25
#define R_MODE 26
#define R_SOLO 27
#define R_SEXIT 28
#define R_EXIT 29
#define R_SE 30
#define R_SEUNLOCK 31
#define R_PART2 32
#define R_NFCLR 33
#define R_OD 34
#define R_OD2 35
#define R_ODUNLOCK 36
#define V_UNLOCK 37
#define L_HINT 38
#define L_LOCK 39
#define L_UNLOCK 40
#define M_END 41
#define T_SE2 42
#define R_SE2 43
/* producers */
#define P_TOP 1
#define P_HA 2
#define P_HB 3
#define P_WAIT 4
#define PV_UNLOCK 5
#define P_END 6

/* ---- settle(sg, smrm) by a lock holder: step bodies ---- */
/* pass 1 (in the step that took the lock, with the cache the caller has): live
 * members, keep_orphans */
#define PASS1 \
	se = 0; scnt = 0; \
	do \
	:: se < NM -> \
		if \
		:: pgrp[se] == sg && OKIND(owner[se]) == O_ACTIVE -> \
			QUERY(OID(owner[se])); \
			if :: ALIVE_C(OID(owner[se])) -> scnt++ :: else -> skip fi \
		:: else -> skip \
		fi; \
		se++ \
	:: else -> break \
	od; \
	skeep = (!AMO_G(sg) && (scnt > 0 || !EPH_G(sg))); \
	se = 0; scnt = 0; sfd = 0; sdec = 0
/* a place pass 2 has something to do with (by the cache) */
#define SWORK(w, e) ( \
	(OKIND(w) == O_JOINING && !ALIVE_C(OID(w))) || \
	(OKIND(w) == O_ACTIVE && !ALIVE_C(OID(w))) || OKIND(w) == O_LEFT || \
	(OKIND(w) == O_ADOPTING && (!ALIVE_C(OID(w)) || cl[e] == 0)) || \
	(OKIND(w) == O_ORPHAN && (cl[e] == 0 || !skeep)))
/* settle drops place e's claim (ghost: its records may be missing) */
#define LOSE(e) \
	if \
	:: cl[e] != 0 -> REACHED(7); \
		lost[IX(sg, CLS(cl[e]))] = lost[IX(sg, CLS(cl[e]))] | BITS(cstart[e], CEND(cl[e], cstart[e])) \
	:: else -> skip \
	fi; \
	cl[e] = 0
/* the count: places of the group not FREE or JOINING; the orphans */
#define RECOUNT \
	scnt = 0; sorp = 0; se = 0; \
	do \
	:: se < NM -> \
		if \
		:: IN_G(sg, se) -> scnt++; if :: OKIND(owner[se]) == O_ORPHAN -> sorp++ :: else -> skip fi \
		:: else -> skip \
		fi; \
		se++ \
	:: else -> break \
	od; \
	se = 0
/* convert_solo(ce): SOLO(ce) or PENDING(ce) ends: its open claim (the ring where
 * head < cursor) becomes its claim record, then the mode CAS -> SHARED (the
 * record is unobservable until then: nobody recomputes a SOLO group's heads) */
#define CONVERT(ret) \
	if \
	:: SOLO_OF(mode[sg], ce) -> \
		rs = 0; \
		do \
		:: rs < NP && head[IX(sg, rs)] >= cursor[IX(sg, rs)] -> rs++ \
		:: else -> break \
		od; \
		if \
		:: rs == NP -> cl[ce] = 0 \
		:: else -> REACHED(4); cstart[ce] = head[IX(sg, rs)]; \
			cl[ce] = CLW(rs, head[IX(sg, rs)], cursor[IX(sg, rs)]) \
		fi; \
		rs = 0; mode[sg] = MODE(MCNT(mode[sg]), SHARED, 0) \
	:: else -> skip \
	fi; \
	ce = 0; pc = ret
/* recompute_head(sg, rs): load the cursor; then RC_1 */
#define RC_START rc = cursor[IX(sg, rs)]; rh = rc; rp = 0; pc = RC_1
/* settle's end: store orphans and the mode word (only lock holders write it: its
 * CAS is a store): the count, a solo member that is gone ends its mode, an
 * ephemeral group with count 0 is removed (REMOVED, then S_GFREE state = FREE);
 * heads recomputed (RECOMPUTE_WHEN) */
#define MODE_BODY \
	orph[sg] = sorp; sorp = 0; \
	sw = mode[sg]; \
	COUNT_BY_INC; \
	if \
	:: MKIND(sw) == REMOVED -> pc = sret \
	:: else -> \
		if \
		:: (MKIND(sw) == SOLO || MKIND(sw) == PENDING) && \
		   (OKIND(owner[MSOLO(sw)]) != O_ACTIVE || pgrp[MSOLO(sw)] != sg) -> \
			SOLO_GONE(MSOLO(sw)); sw = MODE(scnt, SHARED, 0) \
		:: else -> sw = MODE(scnt, MKIND(sw), MSOLO(sw)) \
		fi; \
		if \
		:: scnt == 0 && EPH_G(sg) && smrm -> REACHED(5); sw = MODE(0, REMOVED, 0) \
		:: else -> skip \
		fi; \
		mode[sg] = sw; \
		if \
		:: MKIND(sw) == REMOVED -> pc = S_GFREE \
		:: MKIND(sw) != REMOVED && RECOMPUTE_WHEN(sw) -> \
			rs = 0; rall = 1; rsk = NM; rret = sret; RC_START \
		:: else -> pc = sret \
		fi \
	fi; \
	if :: pc != S_GFREE -> sret = 0 :: else -> skip fi; \
	sw = 0; scnt = 0; skeep = 0; sfd = 0; sdec = 0; salv = 0; skn = 0; smrm = 0
/* a solo member found gone (not ACTIVE in the group) by settle's mode step: the
 * C takes it as converted in pass 2, which it was unless it left after pass 2
 * looked at its place */
#ifdef FIX_SOLO_LEFT
#define SOLO_GONE(x) /* proposed fix: a solo member that left: convert_solo(x) here */ \
	if \
	:: OKIND(owner[x]) == O_LEFT && pgrp[x] == sg -> SOLO_RECORD(x) \
	:: else -> skip \
	fi
#define SOLO_RECORD(x) \
	rs = 0; \
	do \
	:: rs < NP && head[IX(sg, rs)] >= cursor[IX(sg, rs)] -> rs++ \
	:: else -> break \
	od; \
	if \
	:: rs == NP -> cl[x] = 0 \
	:: else -> cstart[x] = head[IX(sg, rs)]; cl[x] = CLW(rs, head[IX(sg, rs)], cursor[IX(sg, rs)]) \
	fi; \
	rs = 0
#else
#define SOLO_GONE(x) skip
#endif
#ifdef COUNT_INC
#define ORPHAN_DONE_DEC mode[g] = mode[g] - 1    /* negative: count - 1 */
#define COUNT_BY_INC assert(MKIND(sw) == REMOVED || MCNT(sw) >= sdec); scnt = MCNT(sw) - sdec
#else
#define ORPHAN_DONE_DEC skip
#define COUNT_BY_INC skip
#endif
/* the recount and the stores of the count and orphans: one step, but where a
 * member's unlocked ADOPTING -> ORPHAN + orphans + 1 (an early leave) can fall
 * between them */
#if LEAVE
#define END_PASS2 RECOUNT; pc = S_MODE
#else
#define END_PASS2 RECOUNT; MODE_BODY
#endif
/* pass 2: the next place with something to do, and the first of its steps (a
 * place with nothing to do needs no step of its own: a change after its load is
 * left to the next lock holder, as one after the call); none: the recount */
#define SCAN \
	do \
	:: se < NM -> \
		sw = owner[se]; \
		if \
		:: pgrp[se] == sg && (OKIND(sw) == O_ACTIVE || OKIND(sw) == O_JOINING || \
		                      OKIND(sw) == O_ADOPTING) -> QUERY(OID(sw)) \
		:: else -> skip \
		fi; \
		if \
		:: pgrp[se] == sg && SWORK(sw, se) -> break \
		:: else -> se++ \
		fi \
	:: else -> break \
	od; \
	if \
	:: se == NM -> END_PASS2 \
	:: else -> \
		if \
		:: OKIND(sw) == O_JOINING -> owner[se] = O_FREE; sfd = 1; se++; pc = S_PLACE \
		:: OKIND(sw) == O_ACTIVE -> /* dead: break_locks (a claim not taken, the cursor \
			 * not moved, is forgotten), then convert_solo */ \
			REACHED(11); \
			rs = 0; \
			do \
			:: rs < NP -> \
				if \
				:: lock[IX(sg, rs)] == se + 1 -> \
					if \
					:: cl[se] != 0 && CLS(cl[se]) == rs && \
					   cursor[IX(sg, rs)] != CEND(cl[se], cstart[se]) -> cl[se] = 0 \
					:: else -> skip \
					fi; \
					lock[IX(sg, rs)] = 0 \
				:: else -> skip \
				fi; \
				rs++ \
			:: else -> break \
			od; \
			rs = 0; ce = se; cret = S_ORPH; pc = CV_1 \
		:: OKIND(sw) == O_LEFT -> ce = se; CONVERT(S_ORPH)   /* departed: no break_locks */ \
		:: OKIND(sw) == O_ADOPTING && !ALIVE_C(OID(sw)) ->   /* its adopter died serving it */ \
			if \
			:: skeep -> owner[se] = OWN(O_ORPHAN, 0); se++; pc = S_PLACE \
			:: else -> LOSE(se); pc = S_FREE \
			fi \
		:: else ->                       /* ORPHAN, or ADOPTING by a live member */ \
			if \
			:: cl[se] == 0 -> owner[se] = O_FREE; DEC; se++; pc = S_PLACE  /* served */ \
			:: else -> LOSE(se); pc = S_FREE            /* ORPHAN, !keep_orphans: dropped */ \
			fi \
		fi \
	fi
/* pass 1 and, unless members leave early (a leave between pass 1 and pass 2
 * matters), the first step of pass 2 */
#if LEAVE
#define SETTLE_BEGIN PASS1; pc = S_PLACE
#else
#define SETTLE_BEGIN PASS1; SCAN
#endif
/* settle(g, may_remove) returning to ret, with a fresh alive_cache */
#define SETTLE(grp, mr, ret) sg = grp; smrm = mr; sret = ret; skn = 0; salv = 0; SETTLE_BEGIN
/* settle recomputes the heads: SHARED mode, a place finished or a claim dropped */
#if defined(RECOMPUTE_IN_SOLO)
#define RECOMPUTE_WHEN(w) 1                   /* negative: whatever the mode */
#elif defined(FIX_RECOMPUTE)
#define RECOMPUTE_WHEN(w) (MKIND(w) == SHARED) /* proposed fix: whenever SHARED */
#else
#define RECOMPUTE_WHEN(w) (MKIND(w) == SHARED && sfd)
#endif

/* ---- members: step bodies ---- */
/* the member holds a span: ring s, [c, c + k) */
#define HOLD hold_s[me] = s; hold_b[me] = c; hold_e[me] = c + k
#define UNHOLD hold_s[me] = 0; hold_b[me] = 0; hold_e[me] = 0
/* read the span just taken (in the step that took it): each record is the one
 * of its position, read twice only as a redelivery; then release_span */
#define READ_SPAN \
	HOLD; e = c; \
	do \
	:: e < c + k -> \
		assert(buf[s * CAP + e % CAP] == e + 1); \
		assert(!HAS(seen[IX(g, s)], e) || (!AMO_G(g) && redl && HAS(mayre[IX(g, s)], e))); \
		seen[IX(g, s)] = seen[IX(g, s)] | BIT(e); \
		e++ \
	:: else -> break \
	od; \
	e = 0; n = 0; pc = R_ENTER
/* group_trylock succeeded (LOCKAV): take the lock and go on at cont; a holder
 * found dead leaves what it did half done to the next holder's settle, which
 * join, leave, orphan_done and recovery run anyway; -DFIX_TAKEOVER (proposed):
 * every taker of a dead holder's lock settles first */
#ifdef FIX_TAKEOVER
#define TAKE_LOCK(cont, body) \
	if \
	:: glock[g] != 0 && glock[g] != me + 1 -> glock[g] = me + 1; SETTLE(g, 1, cont) \
	:: else -> glock[g] = me + 1; body \
	fi
#else
#define TAKE_LOCK(cont, body) glock[g] = me + 1; body
#endif
/* rmpsc__solo_end(m) by a member other than m's solo member: (cold barrier) load
 * its busy, only 0 goes on; trylock; the mode unchanged: convert_solo */
#define SOLO_END_LOCKED \
	if \
	:: mode[g] == m -> REACHED(2); sg = g; ce = MSOLO(m); cret = T_SEUNLOCK; pc = CV_1 \
	:: else -> pc = T_SEUNLOCK \
	fi; \
	m = 0
#define SOLO_END \
	if \
	:: (MSOLO(m) == pl || !CHECK_BUSY || !busy[MSOLO(m)]) && LOCKAV(g, me) -> \
		TAKE_LOCK(T_SE2, SOLO_END_LOCKED) \
	:: else -> m = 0; pc = IDLE                /* TAKE_BUSY: look again soon */ \
	fi
/* shared_sweep: from the sweep cursor, a ring with records: CAS lock 0 -> me + 1,
 * under it load cursor and tail; claim_start (unseen while claim is 0) */
#ifndef CURSOR_FIRST
#define CLAIM_FIRST cstart[pl] = c; pc = T_CL
#else
#define CLAIM_FIRST pc = T_CUR
#endif
#define SWEEP \
	PICK(SWEEP_OK); \
	if \
	:: s < NP -> \
		lock[IX(g, s)] = pl + 1; \
		c = cursor[IX(g, s)]; k = MIN(MAXB, tail[s] - c); k = MIN(k, CAP - c % CAP); \
		CLAIM_FIRST \
	:: else -> s = 0; pc = IDLE \
	fi
/* rmpsc__adopt_orphan after the orphans hint: trylock (else sweep) */
#define ADOPT_OR_SWEEP \
	if \
	:: orph[g] > 0 && LOCKAV(g, me) -> TAKE_LOCK(T_AD3, pc = T_AD3) \
	:: else -> SWEEP \
	fi
/* take_span after solo_enter found the mode m not SOLO(me) (busy unobservable):
 * PENDING(x): solo_end; SHARED: shared_take: our serving place's claim served
 * again (a claim taken over at join), count 1: go_solo (trylock, else adopt or
 * sweep), adopt_orphan, shared_sweep */
#define TAKE_BY_MODE \
	if \
	:: MKIND(m) == PENDING -> SOLO_END \
	:: MKIND(m) == SOLO -> assert(MSOLO(m) == pl); pc = IDLE \
	:: MKIND(m) == REMOVED -> m = 0; pc = IDLE \
	:: MKIND(m) == SHARED && cl[srv] != 0 -> \
		s = CLS(cl[srv]); c = cstart[srv]; k = CEND(cl[srv], c) - c; redl = 1; m = 0; READ_SPAN \
	:: MKIND(m) == SHARED && cl[srv] == 0 && MCNT(m) == 1 && LOCKAV(g, me) -> \
		m = 0; TAKE_LOCK(T_GS2, pc = T_GS2) \
	:: MKIND(m) == SHARED && cl[srv] == 0 && (MCNT(m) != 1 || !LOCKAV(g, me)) -> \
		m = 0; ADOPT_OR_SWEEP \
	fi
/* solo_take: plain loads and one plain store of the cursor */
#define SOLO_TAKE \
		s = 0; \
		do \
		:: s < NP && head[IX(g, s)] == cursor[IX(g, s)] -> s++ \
		:: else -> break \
		od; \
		if \
		:: s < NP ->                           /* open: served again (solo_open_span) */ \
			c = head[IX(g, s)]; k = MIN(cursor[IX(g, s)] - c, CAP - c % CAP); k = MIN(k, MAXB) \
		:: else -> \
			PICK(SOLO_DATA); \
			if \
			:: s < NP -> c = cursor[IX(g, s)]; k = MIN(MAXB, tail[s] - c); k = MIN(k, CAP - c % CAP); \
				cursor[IX(g, s)] = c + k; HOLD; sc = (s + 1) % NP \
			:: else -> s = 0; k = 0 \
			fi \
		fi; \
		m = 0; skip
#define SOLO_TAKE_EXIT if :: k > 0 -> READ_SPAN :: else -> s = 0; c = 0; pc = IDLE fi
/* take_span: solo_enter: busy = 1; hot barrier; load mode. busy = 1 is a step of
 * its own only when the mode names us (else nobody reads it, and busy = 0
 * follows at once), and not at all for the lone member of group B (no member can join
 * it: nobody ever reads its busy, the bracket is one step) */
#define T_ENTER_BODY \
	if \
	:: SOLO_OF(mode[g], pl) && !LONE(g) -> busy[pl] = 1; pc = T_MODE \
	:: SOLO_OF(mode[g], pl) && LONE(g) -> SOLO_TAKE; SOLO_TAKE_EXIT \
	:: else -> m = mode[g]; TAKE_BY_MODE \
	fi

/* release_span's SHARED path: the claim record of our serving place, as we took
 * it: full: claim = 0, partial: claim_start += n (one store); fence;
 * recompute_head (its cursor load in this step) */
#ifndef TWO_STORE_PARTIAL
#define PARTIAL_STORE cstart[srv] = c + n
#else
#define PARTIAL_STORE cstart[srv] = c + n; pc = R_PART2    /* negative: then the count */
#endif
#ifndef NO_FENCE
#define FULL_CLEAR cl[srv] = 0; rsk = NM
#define NF_RET skip
#else
#define FULL_CLEAR rsk = srv                  /* negative: visible to others after the scan */
#define NF_RET t = rret; rret = R_NFCLR
#endif
#define RELEASE_RECORD \
	assert(cl[srv] != 0 && CLS(cl[srv]) == s && cstart[srv] == c && \
	       CEND(cl[srv], cstart[srv]) == c + k); \
	done[IX(g, s)] = done[IX(g, s)] | BITS(c, c + n); hold_b[me] = c + n; \
	sg = g; rs = s; rall = 0; RC_START; \
	if \
	:: n == k -> FULL_CLEAR; \
		if \
		:: srv != pl -> rret = R_OD \
		:: else -> rret = IDLE; redl = 0; UNHOLD; s = 0; c = 0; k = 0; n = 0 \
		fi; \
		NF_RET \
	:: else -> rsk = NM; PARTIAL_STORE; rret = R_ENTER; c = c + n; k = k - n; n = k \
	fi
/* release_span: solo_enter (as T_ENTER_BODY); SOLO(me): plain store of the head */
#define R_ENTER_BODY \
	if \
	:: SOLO_OF(mode[g], pl) && !LONE(g) -> busy[pl] = 1; pc = R_MODE \
	:: SOLO_OF(mode[g], pl) && LONE(g) -> SOLO_RELEASE; SOLO_REL_NEXT \
	:: else -> RELEASE_RECORD \
	fi
/* release_span, SOLO: store_release(head + n) */
#define SOLO_RELEASE \
	assert(head[IX(g, s)] == c); \
	head[IX(g, s)] = c + n; \
	done[IX(g, s)] = done[IX(g, s)] | BITS(c, c + n); hold_b[me] = c + n; \
	m = 0
/* rmpsc__solo_end(m) by the solo member at a release, lock taken */
#define R_SE_LOCKED \
	if \
	:: mode[g] == m -> sg = g; ce = pl; cret = R_SEUNLOCK; pc = CV_1 \
	:: else -> pc = R_SEUNLOCK \
	fi; \
	m = 0
/* after a SOLO release step: the rest of a partial release, or idle */
#define SOLO_REL_NEXT \
	if \
	:: n < k -> c = c + n; k = k - n; n = k; pc = R_ENTER \
	:: else -> UNHOLD; redl = 0; s = 0; c = 0; k = 0; n = 0; pc = IDLE \
	fi

/* rmpsc__member_leave: what we held goes back (ghost: unread; at-most-once:
 * settle drops it); an orphan we serve: CAS ADOPTING(me) -> ORPHAN (then L_HINT), our
 * place CAS ACTIVE(me) -> LEFT; then L_LOCK */
#define LEAVE_LEFT \
	if :: owner[pl] == OWN(O_ACTIVE, me) -> owner[pl] = OWN(O_LEFT, 0) :: else -> skip fi; \
	pc = L_LOCK
#define LEAVE_BODY \
	if \
	:: hold_e[me] > 0 && !AMO_G(g) -> REACHED(8); \
		seen[IX(g, hold_s[me])] = seen[IX(g, hold_s[me])] & ~BITS(hold_b[me], hold_e[me]) \
	:: else -> skip \
	fi; \
	UNHOLD; redl = 0; s = 0; c = 0; k = 0; n = 0; \
	if \
	:: srv != pl && owner[srv] == OWN(O_ADOPTING, me) -> owner[srv] = OWN(O_ORPHAN, 0); pc = L_HINT \
	:: else -> LEAVE_LEFT \
	fi; \
	srv = pl

/* the first ring from the sweep cursor sc with something to take (NP: none) */
#define PICK(cond) \
	if \
	:: NP > 1 && sc == 1 && (cond(1)) -> s = 1 \
	:: else -> s = 0; \
		do \
		:: s < NP && !(cond(s)) -> s++ \
		:: else -> break \
		od \
	fi
#define SOLO_DATA(x) (cursor[IX(g, x)] < tail[x])
#define SWEEP_OK(x) (FREE_RING(g, x))
#define LEAVE_OK (((LEAVE >> me) & 1) && !left && (!EPH_G(g) || ALLIN(g)))

proctype Member(byte me; byte g)
{
	byte pc, pl = NM, srv = NM, m, s, c, k, n, t, e, sc;
	bool redl;                             /* serving a claim taken over from another member */
	bool left;                             /* -DLEAVE: left early */
#ifdef TAIL_FIRST
	byte tf0, tf1;
#endif
	byte sg, smrm, sret, se, sw, skeep, sfd, scnt, sorp, salv, skn, sdec;
	byte ce, cret, rs, rh, rc, rp, rcw, rret, rsk;
	bool rall;
	{
	if
	:: g == GB && CREATE_B -> pc = M_CREATE
	:: else -> pc = J_LOCK
	fi;
	do
	/* ---- group_create (group B) ---- */
	:: d_step { pc == M_CREATE ->
		orph[GB] = 0; glock[GB] = me + 1; mode[GB] = MODE(0, SHARED, 0);
		s = 0;
		do
		:: s < NP ->
			t = tail[s];
			if
			:: LIVE_G(GA) && tail[s] - head[IX(GA, s)] <= CAP && head[IX(GA, s)] < t -> t = head[IX(GA, s)]
			:: else -> skip
			fi;
			head[IX(GB, s)] = t; cursor[IX(GB, s)] = t; lock[IX(GB, s)] = 0; s++
		:: else -> break
		od;
#ifdef TAIL_FIRST
		tf0 = tail[0]; tf1 = tail[NP - 1];     /* negative: the tails read too early */
#endif
		s = 0; t = 0; pc = M_CREATING }
	:: d_step { pc == M_CREATING -> gst[GB] = G_CREATING(me); pc = M_CTAIL }   /* seq_cst; fence */
	:: d_step { pc == M_CTAIL ->
#ifndef TAIL_FIRST
		t = tail[s];                           /* load_acquire(&ring->tail) */
#else
		if :: s == 0 -> t = tf0 :: else -> t = tf1 fi;
#endif
		pc = M_CCUR }
	:: d_step { pc == M_CCUR -> cursor[IX(GB, s)] = t; pc = M_CHEAD }
	:: d_step { pc == M_CHEAD -> head[IX(GB, s)] = t; gstart[IX(GB, s)] = t; t = 0; s++;
		if :: s < NP -> pc = M_CTAIL :: else -> s = 0; pc = M_CACTIVE fi }
	:: d_step { pc == M_CACTIVE -> gst[GB] = G_ACTIVE;
#ifdef TAIL_FIRST
		tf0 = 0; tf1 = 0;
#endif
		pc = J_LOCK }

	/* ---- rmpsc__member_join: lock_group_waiting (a live holder: wait), the
	 * group still there, settle(g, 0) ---- */
	:: d_step { pc == J_LOCK && LOCKAV(g, me) -> glock[g] = me + 1;
		if
		:: gst[g] == G_ACTIVE && MKIND(mode[g]) != REMOVED -> SETTLE(g, 0, J_TAKE)
		:: else -> glock[g] = 0; pc = M_END    /* gone (its creator died): not re-created here */
		fi }
	/* join_locked: CAS ORPHAN -> ACTIVE(me) of a place of the group (its claim
	 * is ours, delivered once more; settle(g, 1)), else CAS FREE -> JOINING(me)
	 * (claim, busy = 0, group = g: unobservable before the owner word) */
	:: d_step { pc == J_TAKE ->
		e = 0;
		do
		:: e < NM && !(pgrp[e] == g && owner[e] == OWN(O_ORPHAN, 0)) -> e++
		:: else -> break
		od;
		if
		:: e < NM ->
			REACHED(6); owner[e] = OWN(O_ACTIVE, me); busy[e] = 0; pl = e; srv = e;
			e = 0; SETTLE(g, 1, J_MODE)
		:: else ->
			e = me;                         /* (our own index if FREE: places are alike) */
			if
			:: owner[e] != O_FREE ->
				e = 0;
				do
				:: e < NM && owner[e] != O_FREE -> e++
				:: else -> break
				od
			:: else -> skip
			fi;
			assert(e < NM && cl[e] == 0);
			owner[e] = OWN(O_JOINING, me); busy[e] = 0; pgrp[e] = g;
			pl = e; srv = e; e = 0; pc = J_ACTIVE
		fi }
	/* owner = ACTIVE(me); settle(g, 1) */
	:: d_step { pc == J_ACTIVE -> owner[pl] = OWN(O_ACTIVE, me); SETTLE(g, 1, J_MODE) }
	/* count in: alone, SHARED, no claim: SOLO(me); SOLO(m): PENDING(m); unlock */
	:: d_step { pc == J_MODE ->
		m = mode[g];
#ifdef COUNT_INC
		m = m + 1;                             /* negative: count + 1 */
#endif
		if
		:: MCNT(m) == 1 && MKIND(m) == SHARED && cl[pl] == 0 -> m = MODE(1, SOLO, pl)
		:: MKIND(m) == SOLO && MSOLO(m) != pl -> m = MODE(MCNT(m), PENDING, MSOLO(m))
		:: else -> skip
		fi;
		mode[g] = m; m = 0; glock[g] = 0; joined[me] = 1; pc = IDLE }

	/* ---- idle: take (take_span), recover, finish, leave ---- */
	:: d_step { pc == IDLE && CAN_TAKE -> T_ENTER_BODY }
	/* rmpsc__recover_members(g) (maybe_recover_peers): its test (liveness
	 * answers cached), trylock, settle(g, 1) */
	:: d_step { pc == IDLE && WORK(g) && LOCKAV(g, me) ->
		REACHED(3); WORK_CACHE(g); glock[g] = me + 1;
		sg = g; smrm = 1; sret = V_UNLOCK; SETTLE_BEGIN }
	:: d_step { pc == V_UNLOCK -> glock[g] = 0; sg = 0; pc = IDLE }
	/* finished: the group released every record; then rmpsc_consumer_leave */
	:: d_step { pc == IDLE && ALLDONE && RELEASED_ALL(g) && srv == pl && cl[pl] == 0 &&
		    (!EPH_G(g) || ALLIN(g)) ->
		s = 0;
		do
		:: s < NP ->
			c = gstart[IX(g, s)];
			do
			:: c < NRECS(s) ->             /* at-most-once: but what a member held when it died */
				assert(HAS(done[IX(g, s)], c) || HAS(lost[IX(g, s)], c)); c++
			:: else -> break
			od;
			s++
		:: else -> break
		od;
		s = 0; c = 0;
#ifndef STAY
		LEAVE_BODY
#else
		pc = M_END                             /* -DSTAY: no leave at the end */
#endif
	}
	:: d_step { pc == IDLE && LEAVE_OK -> left = 1; LEAVE_BODY }

	/* ---- take_span, after solo_enter named us ---- */
	:: d_step { pc == T_ENTER -> T_ENTER_BODY }
	:: d_step { pc == T_MODE -> m = mode[g];
		if :: MKIND(m) == SOLO && MSOLO(m) == pl -> pc = T_SOLO :: else -> pc = T_EXIT fi }
	:: d_step { pc == T_SOLO -> SOLO_TAKE; pc = T_SEXIT }
	:: d_step { pc == T_SEXIT -> busy[pl] = 0; SOLO_TAKE_EXIT }   /* solo_exit: store_release */
	:: d_step { pc == T_EXIT -> busy[pl] = 0;         /* solo_exit */
		if
		:: MKIND(m) == PENDING && MSOLO(m) == pl -> pc = T_SE
		:: else -> TAKE_BY_MODE                /* the mode does not name us */
		fi }
	:: d_step { pc == T_SE -> SOLO_END }           /* our own: no busy to look at */
	:: d_step { pc == T_SEUNLOCK -> glock[g] = 0; sg = 0; pc = T_ENTER }
	/* rmpsc__go_solo: SHARED,1 -> SOLO(me); unlock (else adopt_orphan, sweep) */
	:: d_step { pc == T_GS2 ->
		if
		:: MKIND(mode[g]) == SHARED && MCNT(mode[g]) == 1 && cl[pl] == 0 && srv == pl ->
			glock[g] = 0; mode[g] = MODE(1, SOLO, pl); pc = T_ENTER
		:: else -> glock[g] = 0; ADOPT_OR_SWEEP
		fi }
	/* rmpsc__adopt_orphan: CAS ORPHAN (claim != 0) -> ADOPTING(me); load the hint */
	:: d_step { pc == T_AD3 ->
		e = 0;
		do
		:: e < NM && !ADOPTABLE_P(g, e) -> e++
		:: else -> break
		od;
		if
		:: e < NM -> REACHED(1); owner[e] = OWN(O_ADOPTING, me); srv = e
		:: else -> skip
		fi;
		t = orph[g]; e = 0; pc = T_AD4 }
	/* store hint - adopted; unlock; serve its claim, or sweep */
	:: d_step { pc == T_AD4 ->
		if
		:: t > 0 && srv != pl -> orph[g] = t - 1
		:: t > 0 && srv == pl -> orph[g] = t
		:: else -> orph[g] = 0
		fi;
		t = 0; glock[g] = 0;
		if
		:: srv != pl -> s = CLS(cl[srv]); c = cstart[srv]; k = CEND(cl[srv], c) - c; redl = 1; READ_SPAN
		:: else -> SWEEP
		fi }
	/* shared_sweep under the ring's lock: claim, cursor, unlock */
#ifndef CURSOR_FIRST
	:: d_step { pc == T_CL -> cl[pl] = CLW(s, c, c + k); pc = T_CUR }
	:: d_step { pc == T_CUR -> cursor[IX(g, s)] = c + k; HOLD; pc = T_UNLOCK }
#else
	:: d_step { pc == T_CUR -> cursor[IX(g, s)] = c + k; HOLD; pc = T_CL }      /* negative */
	:: d_step { pc == T_CL -> cstart[pl] = c; cl[pl] = CLW(s, c, c + k); pc = T_UNLOCK }
#endif
	:: d_step { pc == T_UNLOCK -> lock[IX(g, s)] = 0; sc = (s + 1) % NP; READ_SPAN }

	/* ---- release_span (n == 0: how much to release not chosen yet) ---- */
	:: d_step { pc == R_ENTER && (n != 0 || k == 1 || !PARTIAL_REL) ->
		if :: n == 0 -> n = k :: else -> skip fi; R_ENTER_BODY }
	:: d_step { pc == R_ENTER && n == 0 && k > 1 && PARTIAL_REL ->   /* the first record alone */
		n = 1; R_ENTER_BODY }
	:: d_step { pc == R_ENTER && n == 0 && LEAVE_OK ->   /* leave with the span open */
		left = 1; LEAVE_BODY }
	:: d_step { pc == R_MODE -> m = mode[g];
		if :: MKIND(m) == SOLO && MSOLO(m) == pl -> pc = R_SOLO :: else -> pc = R_EXIT fi }
	:: d_step { pc == R_SOLO -> SOLO_RELEASE; pc = R_SEXIT }
	:: d_step { pc == R_SEXIT -> busy[pl] = 0; SOLO_REL_NEXT }
	:: d_step { pc == R_EXIT -> busy[pl] = 0;
		if
		:: MKIND(m) == PENDING && MSOLO(m) == pl -> pc = R_SE   /* record it first */
		:: else -> m = 0; RELEASE_RECORD       /* the mode does not name us */
		fi }
	/* rmpsc__solo_end(m) by the solo member: a live holder: wait; then again */
	:: d_step { pc == R_SE && LOCKAV(g, me) -> TAKE_LOCK(R_SE2, R_SE_LOCKED) }
#ifdef FIX_TAKEOVER
	:: d_step { pc == R_SE2 -> R_SE_LOCKED }
	:: d_step { pc == T_SE2 -> SOLO_END_LOCKED }
#endif
	:: d_step { pc == R_SE && mode[g] != m -> m = 0; pc = R_ENTER }
	:: d_step { pc == R_SEUNLOCK -> glock[g] = 0; sg = 0; pc = R_ENTER }
#ifdef TWO_STORE_PARTIAL
	:: d_step { pc == R_PART2 ->                  /* negative: the count, second */
		cl[srv] = CLW(CLS(cl[srv]), c, c + k); rsk = NM; pc = RC_1 }
#endif
#ifdef NO_FENCE
	:: d_step { pc == R_NFCLR -> cl[srv] = 0; pc = t; t = 0 }
#endif
	/* rmpsc__orphan_done: serving = member; the lock, or left to its holder */
	:: d_step { pc == R_OD -> e = srv; srv = pl; redl = 0; UNHOLD; s = 0; c = 0; k = 0; n = 0;
		if
		:: LOCKAV(g, me) -> TAKE_LOCK(R_OD2, pc = R_OD2)
		:: else -> e = 0; pc = IDLE
		fi }
	:: d_step { pc == R_OD2 ->                    /* CAS ADOPTING(me) -> FREE; settle(g, 1) */
		if
		:: owner[e] == OWN(O_ADOPTING, me) -> owner[e] = O_FREE; ORPHAN_DONE_DEC
		:: else -> skip
		fi;
		e = 0; SETTLE(g, 1, R_ODUNLOCK) }
	:: d_step { pc == R_ODUNLOCK -> glock[g] = 0; sg = 0; pc = IDLE }

	/* ---- rmpsc__member_leave, after LEAVE_BODY ---- */
	:: d_step { pc == L_HINT -> orph[g]++; LEAVE_LEFT }     /* fetch_add, unlocked; then LEFT */
	:: d_step { pc == L_LOCK ->                   /* the next lock holder finishes it; now if nobody */
		if
		:: LOCKAV(g, me) -> glock[g] = me + 1; SETTLE(g, 1, L_UNLOCK)
		:: else -> pc = M_END
		fi }
	:: d_step { pc == L_UNLOCK -> glock[g] = 0; sg = 0; pc = M_END }
	:: d_step { pc == M_END -> running[me] = 0; pl = NM; srv = NM; sc = 0; left = 0; pc = 0 }; break

	/* ---- settle, convert_solo, recompute_head ---- */
#include "groups-settle.inc"
	od
	} unless { d_step { dead[me] ->        /* died: its locals are gone */
		pc = 0; pl = 0; srv = 0; m = 0; s = 0; c = 0; k = 0; n = 0; t = 0; e = 0; sc = 0;
		redl = 0; left = 0; sg = 0; smrm = 0; sret = 0; se = 0; sw = 0; skeep = 0; sfd = 0;
		scnt = 0; sorp = 0; salv = 0; skn = 0; sdec = 0; ce = 0; cret = 0; rs = 0; rh = 0;
		rc = 0; rp = 0; rcw = 0; rret = 0; rsk = 0; rall = 0 } }
}

/* ---- the producer of ring `ring` ---- */
/* rmpsc__released_head: seq_cst fence; per group load state and mode, then its
 * head if live (CREATING: a head more than a ring behind reads as full) */
#ifdef ONEGROUP
#define SLOW_PATH \
	h = 255; \
	if \
	:: LIVE_G(GA) -> h = head[IX(GA, ring)] \
	:: else -> skip \
	fi; \
	if :: h == 255 -> ch = t :: else -> ch = h fi; \
	h = 0; \
	if :: t < ch + CAP -> pc = P_TOP :: else -> pc = P_WAIT fi
#else
#define SLOW_PATH sw = LIVE_G(GA) + 2 * (gst[GA] >= 8); pc = P_HA
#endif
proctype Producer(byte ring)
{
	byte pc = P_TOP, t, ch, h, me;
	byte sg, smrm, sret, se, sw, skeep, sfd, scnt, sorp, salv, skn, sdec;
	byte ce, cret, rs, rh, rc, rp, rcw, rret, rsk;
	bool rall;
	me = PPID(ring);
	do
	:: d_step { pc == P_TOP && t == NRECS(ring) -> pdone[ring] = 1; ch = 0; pc = P_END }
	/* reserve, write, commit (store_release of the tail; a record is unseen
	 * before its commit, but by a reader of the one it overwrites: checked) */
	:: d_step { pc == P_TOP && t < NRECS(ring) && t < ch + CAP ->
		assert(!(gst[GA] == G_ACTIVE && MKIND(mode[GA]) != REMOVED) || t < head[IX(GA, ring)] + CAP);
		assert(!(gst[GB] == G_ACTIVE && MKIND(mode[GB]) != REMOVED) || t < head[IX(GB, ring)] + CAP);
		buf[ring * CAP + t % CAP] = t + 1; tail[ring] = t + 1; t++ }
	/* full by the cached head: the slow path (refresh_head) */
	:: d_step { pc == P_TOP && t < NRECS(ring) && t >= ch + CAP -> SLOW_PATH }
	:: d_step { pc == P_HA ->                      /* A's head; B's state and mode */
		h = 255;
		if
		:: sw & 1 -> h = head[IX(GA, ring)];
			if :: (sw & 2) && t - h > CAP -> h = t - CAP :: else -> skip fi
		:: else -> skip
		fi;
		sw = LIVE_G(GB) + 2 * (gst[GB] >= 8); pc = P_HB }
	:: d_step { pc == P_HB ->                      /* B's head; the least */
		if
		:: sw & 1 -> ch = head[IX(GB, ring)];
			if :: (sw & 2) && t - ch > CAP -> ch = t - CAP :: else -> skip fi;
			h = MIN(h, ch)
		:: else -> skip
		fi;
		if :: h == 255 -> ch = t :: else -> ch = h fi;
		h = 0; sw = 0;
		if :: t < ch + CAP -> pc = P_TOP :: else -> pc = P_WAIT fi }
	/* full: wait (space_ready): space by the heads now: the slow path again */
	:: d_step { pc == P_WAIT && SPACE(ring, t) -> SLOW_PATH }
	/* rmpsc_reclaim_dead: rmpsc__recover_members(-1) (per group: its test, the
	 * cache, trylock, settle(g, 1)), then recover_groups */
	:: d_step { pc == P_WAIT && PRECOVER && PWORK(me) ->
		REACHED(9);
		if
		:: WORK(GA) && LOCKAV(GA, me) -> WORK_CACHE(GA); glock[GA] = me + 1;
			sg = GA; smrm = 1; sret = PV_UNLOCK; SETTLE_BEGIN
		:: else ->
			if
			:: WORK(GB) && LOCKAV(GB, me) -> WORK_CACHE(GB); glock[GB] = me + 1;
				sg = GB; smrm = 1; sret = PV_UNLOCK; SETTLE_BEGIN
			:: else ->
				if
				:: DEADGRP -> gst[GB] = G_FREE     /* CREATING(dead) -> FREE */
				:: else ->                         /* REMOVED but ACTIVE -> FREE, under the lock */
					if
					:: REMOVED_G(GA) && LOCKAV(GA, me) -> gst[GA] = G_FREE
					:: else -> assert(REMOVED_G(GB) && LOCKAV(GB, me)); gst[GB] = G_FREE
					fi
				fi
			fi
		fi }
	:: d_step { pc == PV_UNLOCK -> glock[sg] = 0; sg = 0; pc = P_WAIT }
	:: pc == P_END -> break
#include "groups-settle.inc"
	od
}

/* the killer: a member dies before any of its steps; what it held may be
 * delivered again (ghost mayre) */
inline kill(p)
{
	dead[p] = 1; deaths++;
	if
	:: hold_e[p] > 0 -> mayre[IX(GROUP_OF(p), hold_s[p])] =
		mayre[IX(GROUP_OF(p), hold_s[p])] | BITS(hold_b[p], hold_e[p])
	:: else -> skip
	fi
}
#define KILLABLE(p) (((KILLMASK >> (p)) & 1) && running[p] && !dead[p] && deaths < MAXDEATHS)
active proctype killer()
{
end:
	do
	:: atomic { KILLABLE(0) -> kill(0) }
	:: atomic { KILLABLE(1) -> kill(1) }
#if NM > 2
	:: atomic { KILLABLE(2) -> kill(2) }
#endif
	od
}

#define POS_OK(g, s) (gst[g] == G_FREE || gst[g] >= 8 || \
	(head[IX(g, s)] <= cursor[IX(g, s)] && cursor[IX(g, s)] <= tail[s]))
/* head <= cursor <= tail, in every state */
active proctype monitor()
{
end:
	atomic { !(POS_OK(GA, 0) && POS_OK(GA, NP - 1) && POS_OK(GB, 0) && POS_OK(GB, NP - 1)) ->
		assert(false) }
}

init
{
	atomic {
		gst[GA] = G_ACTIVE;            /* the default group */
#ifdef AMO
		gflags[GA] = F_AMO;
#endif
#ifdef EPH
#ifdef ONEGROUP
		gflags[GA] = gflags[GA] | F_EPH;
		glock[GA] = 1;                 /* created by member 0: its lock until it joined */
#else
		gflags[GB] = F_EPH;
#endif
#endif
#if !defined(CREATE) && !defined(ONEGROUP)
		gst[GB] = G_ACTIVE;
#endif
		running[0] = 1; running[1] = 1;
		run Member(0, GROUP_OF(0)); run Member(1, GROUP_OF(1));
#if NM > 2
		running[2] = 1;
		run Member(2, GROUP_OF(2));
#endif
		run Producer(0);
#if NP > 1
		run Producer(1)
#endif
	}
}
