/*
 * Consumer groups (docs/ARCHITECTURE.md 2.7; csrc/group.c, csrc/consumer.c,
 * csrc/producer.c). Run by tests/model/run.sh.
 *
 * What this model is, and is not: it was written against the first groups design,
 * where each membership step (taking a place, the mode word's count, orphans) was
 * its own atomic step; it found the five flaws below, whose fixes (the FIX_* flags,
 * which run.sh always sets) the C code took in its own form. Since then the C code
 * makes membership changes under a per-group lock and recounts the group from its
 * places (settle()); this model's finer, lock-free interleaving of those steps is a
 * superset of what that lock allows. Not modelled: the joiner ending a solo
 * member's SOLO mode itself (the busy flag against a membarrier), the per-place note
 * of the solo member's open ring, and group removal.
 *
 * NP producers (pids NM, NM + 1), each the only writer of one ring of CAP
 * records, write NREC records each; the record at position t carries sequence
 * number t (stored as t + 1: 0 is "never written"). NM member processes; member
 * process p uses member place p of group GROUP_OF(p): A = {0, 1}, B = {2}
 * (-DONEGROUP: all in A). Every transition below is one load, store or CAS of
 * the C code (sequentially consistent interleaving: a seq_cst fence is implicit,
 * -DNO_FENCE models its absence by reordering); a CAS loop whose new value is a
 * function of the old is one atomic read-modify-write. Loads of words no other
 * process can be writing then (a member's own cursor and head in SOLO mode, a
 * dead member's claim under its lock) are merged into a neighbouring step, and
 * so are stores nobody can observe yet (claim_start while claim is 0). Steps,
 * by the C function they mirror (the member's state machine: pc values M_*):
 *
 *   rmpsc_consumer_join   owner FREE -> ACTIVE(me); mode CAS: SHARED,0 ->
 *                         SOLO(me),1 then heads = cursors; SHARED,n -> SHARED,n+1;
 *                         SOLO(m),n / PENDING(m),n -> PENDING(m),n+1
 *   group_create          (-DCREATE, group B) heads = cursors = min of the live
 *                         heads; state = CREATING(me) (seq_cst) + fence; per ring
 *                         load tail, cursor = head = tail; state = ACTIVE
 *   claim_span            M_IDLE (woken) load mode; SOLO: M_SOLO load tails, M_SOLO2
 *                         cursor = c + k (plain store); SHARED: M_ORPH load
 *                         orphans, M_LOCK CAS lock 0 -> me+1, M_LOCKED load cursor
 *                         and tail, M_CL store claim, M_CUR store cursor, M_UNLOCK
 *                         lock = 0 (claim_start rides with M_LOCKED)
 *   solo_ack              M_ACK claim record of the ring where cursor > head,
 *                         M_ACK3 CAS PENDING(me),n -> SHARED,n
 *   go_solo               M_GOSOLO CAS SHARED,1 -> SOLO(me),1; M_GOSOLO2 head =
 *                         max(head, cursor)
 *   adopt_orphan          M_ADOPT CAS owner ORPHAN -> ADOPTING(me); M_ADOPT2
 *                         orphans - 1 (the claim is served as a redelivery)
 *   release_span          M_REL load mode; SOLO: M_SREL head += n; SHARED:
 *                         M_HREL claim = 0 (partial: claim_start += n, M_HREL2
 *                         claim = k - n), fence, recompute; adopted: M_AREL
 *                         clear the orphan's claim, recompute, M_AREL2 free it,
 *                         M_AREL3 count - 1
 *   recompute_head        load cursor; per member place of the group: load claim,
 *                         then claim_start if it names the ring; CAS-max head
 *   member_recover        the doc's steps 1-5 (recover()), CREATING(dead) -> FREE
 *   rmpsc_consumer_leave  M_LEAVE free the place, count - 1 (a PENDING(me) is
 *                         acknowledged first)
 *   producer released_head  the slow path: fence; per group load state, then
 *                         head if CREATING/ACTIVE; min. A waiting producer runs
 *                         member_recover.
 *
 * Death: the killer may stop a member before any step (MAXDEATHS in all;
 * KILLMASK: which members). What it wrote stays. Recovery is run by the members
 * of the dead one's group when idle and by producers waiting for space. Waits
 * are blocking guards on what would wake them (a woken wait redoes the real
 * steps), so a process left waiting forever is an invalid end state; futex
 * wake-ups themselves are not modelled (none is lost here).
 *
 * Checked:
 *  - a record a member reads carries the sequence number of its position (no
 *    space reused before every group released it), and a producer never
 *    overwrites a record an ACTIVE group has not released;
 *  - a member that finishes (every record committed, its group's heads at the
 *    tails) finds that its group released every record committed since it was
 *    created (at-most-once: but for records a member held when it died);
 *  - a record is read twice in a group only by the adopter of a dead member's
 *    claim that covered it (at-most-once: never twice);
 *  - head <= cursor <= tail in every state; a member never sees SOLO(other);
 *  - valid end states: nobody waits forever.
 *
 * Options: -DAMO (group A at-most-once), -DEPH (group B ephemeral), -DCREATE
 * (group B created by its member while the producers run), -DPARTIAL (partial
 * releases), -DPRECOVER=0 (producers do not recover), -DPROBE=n (fail when
 * situation n is reached: REACHED(n), to show a check is not vacuous).
 *
 * Flaws this model found in the first design (docs/groups-protocol.md, retired)
 * (without the flag) and the fixes proposed (with it); run.sh's groups-flaw-*
 * checks fail without each:
 *  FIX_JOIN       a joiner that dies after taking its place (ACTIVE) and before
 *                 its mode CAS is recovered with count - 1 it never added: the
 *                 count underflows, or SOLO(m),1 -> SHARED,0 under a live m. Fix:
 *                 the place is JOINING(me) until after the CAS; recovery frees a
 *                 JOINING place without count - 1 unless the mode names it
 *                 (SOLO/PENDING(e)); a death right after a SHARED,n -> n+1 CAS
 *                 leaves the count one too high (no SOLO for the group again).
 *  FIX_PARTIAL    a partial release is two stores (claim_start += n; claim =
 *                 k - n): a death between them orphans [start + n, start + n + k),
 *                 past the cursor. Fix: the claim word carries the end position
 *                 (ring << 32 | end), so a partial release stores claim_start only.
 *  FIX_RECOMPUTE  a member that dies between clearing its claim and its CAS of
 *                 the head strands the head below the cursor; with two members
 *                 left (SHARED) and no data nothing recomputes again, and the
 *                 producer waits forever. Fix: recovery of a counted place
 *                 recomputes every ring of the group when the mode is SHARED.
 *  FIX_CREATE     a creator that dies after state = ACTIVE and before its join
 *                 leaves an ephemeral group with count 0 and no place to recover:
 *                 never removed, it holds producers back forever. Fix: the
 *                 creator takes its place and sets SOLO(me),1 before CREATING.
 *  FIX_EPH        the last member of an ephemeral group dies holding a claim:
 *                 ORPHAN keeps count at 1, the group is never removed. Fix: an
 *                 ephemeral group whose count equals its orphans (no live member)
 *                 is removed.
 * Negative variants, expected to FAIL: -DNO_FENCE (a release scans the other
 * claims before clearing its own), -DCURSOR_FIRST (a shared claim stores the
 * cursor before its claim record), -DTAIL_FIRST (group_create reads the tails
 * before publishing CREATING), -DJOIN_HEADS_FIRST (an alone joiner sets heads =
 * cursors before its mode CAS, one reading of the doc's "first").
 *
 * Not modelled: futex waits and wake-ups, joins and removals of a group racing
 * (group B has one member), leave with a claim open, rmpsc_group_remove, the
 * deliveries counter (a redelivery is checked through the adopter instead),
 * position wrap-around, more than one claim open per member.
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
#define NPROC (NM + NP)
#define PPID(s) (NM + (s))     /* pid of the producer of ring s */
#define IX(g, s) ((g) * NP + (s))
#define MIN(a, b) ((a) < (b) -> (a) : (b))

/* member place owner word: kind * 8 + pid */
#define O_FREE 0
#define O_ACTIVE 1
#define O_RECOVERING 2
#define O_ORPHAN 3
#define O_ADOPTING 4
#define O_JOINING 5            /* FIX_JOIN: place taken, not yet counted */
#define O_RECOVERING_U 6       /* FIX_JOIN: recovering a JOINING place */
#define OWN(k, id) ((k) * 8 + (id))
#define OKIND(o) ((o) / 8)
#define OID(o) ((o) % 8)
#define DEAD_OWNED(o) (OKIND(o) != O_FREE && OKIND(o) != O_ORPHAN && dead[OID(o)])

/* mode word: count | kind << 2 | solo << 4 */
#define SHARED 0
#define SOLO 1
#define PENDING 2
#define MODE(n, k, m) ((n) + (k) * 4 + (m) * 16)
#define MCNT(w) ((w) % 4)
#define MKIND(w) (((w) / 4) % 4)
#define MSOLO(w) ((w) / 16)

/* claim word: ring << 2 | count (0: none) */
#define CL(s, k) ((s) * 4 + (k))
#define CLS(w) ((w) / 4)
#define CLK(w) ((w) % 4)

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
byte gst[NG];                  /* struct group: state, flags, mode word, orphans */
byte gflags[NG];
byte mode[NG];
byte orph[NG];
byte head[NG * NP];            /* struct group_pos: head, cursor, lock (place + 1) */
byte cursor[NG * NP];
byte lock[NG * NP];
byte owner[NM];                /* struct member: owner, claim_start, claim */
byte cstart[NM];
byte cl[NM];

/* ---- the kernel, and ghosts for the properties ---- */
bool dead[NPROC];
bool running[NM];
byte deaths;
bool pdone[NP];                /* producer s wrote all its records */
byte gstart[NG * NP];          /* first position group g must deliver on ring s */
byte seen[NG * NP];            /* bit r: record r was read in group g */
byte done[NG * NP];            /* bit r: record r was released in group g */
byte mayre[NG * NP];           /* bit r: a member of g died holding record r */
byte hold_s[NM];               /* the span member p holds: ring, [b, e); e == 0: none */
byte hold_b[NM];
byte hold_e[NM];

#define BIT(r) (1 << (r))
#define HAS(x, r) (((x) >> (r)) & 1)
#define BITS(b, e) (BIT(e) - BIT(b))   /* bits b .. e - 1 */
#define AMO_G(g) ((gflags[g] & F_AMO) != 0)
#define EPH_G(g) ((gflags[g] & F_EPH) != 0)

/* ---- what wakes a waiting process ---- */
#define HASDATA(g, s) (cursor[IX(g, s)] < tail[s])
#define FREE_RING(g, s) (HASDATA(g, s) && lock[IX(g, s)] == 0)
#define ORPHAN_IN(g, p) (owner[p] == OWN(O_ORPHAN, 0) && GROUP_OF(p) == (g))
#if NM > 2
#define ORPHANS(g) (orph[g] > 0 && (ORPHAN_IN(g, 0) || ORPHAN_IN(g, 1) || ORPHAN_IN(g, 2)))
#define DEADIN(g, p) (DEAD_OWNED(owner[p]) && ((g) == NG || GROUP_OF(p) == (g)))
#define SOMEDEAD_IN(g) (DEADIN(g, 0) || DEADIN(g, 1) || DEADIN(g, 2) || DEADGRP)
#else
#define ORPHANS(g) (orph[g] > 0 && (ORPHAN_IN(g, 0) || ORPHAN_IN(g, 1)))
#define DEADIN(g, p) (DEAD_OWNED(owner[p]) && ((g) == NG || GROUP_OF(p) == (g)))
#define SOMEDEAD_IN(g) (DEADIN(g, 0) || DEADIN(g, 1) || DEADGRP)
#endif
#define DEADGRP (gst[GB] >= 8 && dead[CREATOR(gst[GB])])
#define ANYDATA(g) (HASDATA(g, 0) || HASDATA(g, NP - 1))
#define ANYFREE(g) (FREE_RING(g, 0) || FREE_RING(g, NP - 1))
#define CAN_CLAIM(me, g) ( \
	(MKIND(mode[g]) == PENDING && MSOLO(mode[g]) == (me)) || \
	(MKIND(mode[g]) == SOLO && MSOLO(mode[g]) == (me) && ANYDATA(g)) || \
	(MKIND(mode[g]) == SHARED && MCNT(mode[g]) == 1) || \
	(MKIND(mode[g]) == SHARED && MCNT(mode[g]) > 1 && (ORPHANS(g) || ANYFREE(g))))
#define ALLDONE (pdone[0] && pdone[NP - 1])
#define RELEASED_ALL(g) (head[IX(g, 0)] == tail[0] && head[IX(g, NP - 1)] == tail[NP - 1])
/* the producer of ring s: space, by the heads it would read now */
#define LHEAD(g, s) (gst[g] == G_FREE -> 255 : head[IX(g, s)])
#define SPACE(s, t) ((t) < CAP + MIN(LHEAD(GA, s), LHEAD(GB, s)))

/* first member place of group g at or after p, other than sk (NM: none) */
#define NEXTP(g, sk, p) do :: p < NM && (p == sk || GROUP_OF(p) != g) -> p++ :: else -> break od

/* ---- recompute_head(g, s): load cursor; per other place of g load claim, and
 * claim_start when it names s; CAS-max head. sk: a place not scanned (the
 * caller's own cleared claim). */
inline recompute(g, s, sk, p, c, h, cw, cs)
{
	d_step { c = cursor[IX(g, s)]; h = c; p = 0; cw = 0; NEXTP(g, sk, p) }
	do
	:: d_step { p < NM && cw == 0 -> cw = cl[p];           /* load_acquire(&m->claim) */
		if
		:: CLK(cw) > 0 && CLS(cw) == s -> skip
		:: else -> cw = 0; p++; NEXTP(g, sk, p)
		fi }
	:: d_step { cw != 0 -> cs = cstart[p]; h = MIN(h, cs);  /* load(&m->claim_start) */
		cw = 0; p++; NEXTP(g, sk, p) }
	:: atomic { p == NM && cw == 0 ->                       /* CAS-max head to h */
		if
		:: head[IX(g, s)] < h -> head[IX(g, s)] = h
		:: else -> skip
		fi;
		p = 0; c = 0; h = 0; cs = 0; break }
	od
}

/* count - 1: one CAS loop on the mode word (SOLO(me),1 -> SHARED,0); an
 * ephemeral group whose count reaches 0 is removed (state FREE) */
inline count_down(g, w)
{
	d_step {
		w = mode[g];
		assert(MCNT(w) > 0);
		if
		:: MCNT(w) == 1 -> mode[g] = MODE(0, SHARED, 0); w = EPH_G(g)
		:: else -> mode[g] = w - 1; w = 0
		fi
	}
	if
	:: d_step { w -> gst[g] = G_FREE; w = 0 }
	:: else -> skip
	fi
}

/* ---- member_recover(e) by process me (a member or a producer) ---- */
inline recover(e, me, g, got, s, c, h, cw, cs, p, w)
{
	atomic {                               /* 1: CAS dead owner -> RECOVERING(me) */
		g = GROUP_OF(e);
		if
		:: DEAD_OWNED(owner[e]) && (OKIND(owner[e]) == O_JOINING || OKIND(owner[e]) == O_RECOVERING_U) ->
			owner[e] = OWN(O_RECOVERING_U, me); got = 2   /* FIX_JOIN: maybe uncounted */
		:: DEAD_OWNED(owner[e]) && OKIND(owner[e]) != O_JOINING && OKIND(owner[e]) != O_RECOVERING_U ->
			owner[e] = OWN(O_RECOVERING, me); got = 1
		:: else -> got = 0
		fi
	}
	if
	:: got ->
		/* 2: a lock e held (loads: under e's lock nothing moves) */
		d_step {
			s = 0;
			do
			:: s < NP && lock[IX(g, s)] != e + 1 -> s++
			:: else -> break
			od;
			if
			:: s < NP -> REACHED(6); cw = cl[e]; cs = cstart[e]; c = cursor[IX(g, s)]
			:: else -> skip
			fi
		}
		if
		:: s < NP ->
			if
			:: d_step { !(CLK(cw) > 0 && CLS(cw) == s && c == cs + CLK(cw)) -> cl[e] = 0 } /* not taken */
			:: else -> skip                                                      /* taken: keep */
			fi;
			lock[IX(g, s)] = 0             /* CAS e + 1 -> 0 */
		:: else -> skip
		fi;
		/* 3: mode SOLO(e) / PENDING(e): its claim is the ring where cursor > head */
		d_step {
			w = mode[g];
			if
			:: (MKIND(w) == SOLO || MKIND(w) == PENDING) && MSOLO(w) == e ->
				s = 0;
				do
				:: s < NP && cursor[IX(g, s)] == head[IX(g, s)] -> s++
				:: else -> break
				od;
				if
				:: s < NP -> c = cursor[IX(g, s)]; h = head[IX(g, s)]; cstart[e] = h
				:: else -> c = 0; h = 0
				fi
			:: else -> w = 255
			fi
		}
		if
		:: w != 255 ->
			if
			:: d_step { c > h -> cl[e] = CL(s, c - h) }
			:: else -> skip
			fi;
			d_step {                       /* CAS -> SHARED, count unchanged */
				w = mode[g];
				if
				:: (MKIND(w) == SOLO || MKIND(w) == PENDING) && MSOLO(w) == e ->
					mode[g] = MODE(MCNT(w), SHARED, 0); got = 1  /* e was counted */
				:: else -> skip
				fi
			}
		:: else -> skip
		fi;
#ifdef FIX_RECOMPUTE
		/* a counted e may have died between clearing its claim and its
		 * recompute: redo it, in SHARED mode only (a SOLO/PENDING member's open
		 * claim has no record; the mode cannot turn SOLO while e is counted) */
		d_step { w = mode[g]; s = 0; if :: got != 1 -> w = 255 :: else -> skip fi }
		do
		:: MKIND(w) == SHARED && w != 255 && s < NP -> recompute(g, s, NM, p, c, h, cw, cs); s++
		:: MKIND(w) != SHARED || w == 255 || s == NP -> break
		od;
#endif
		/* 4: orphan (at-least-once) or drop (at-most-once); free, count - 1 */
		atomic {
			cw = cl[e];
			if
			:: CLK(cw) > 0 && !AMO_G(g) -> owner[e] = OWN(O_ORPHAN, 0); w = 1
			:: else -> w = 0
			fi
		}
		if
		:: w == 1 ->
#ifndef FIX_EPH
			d_step { orph[g]++; w = 0 }
#else
			d_step { orph[g]++; w = (EPH_G(g) && MCNT(mode[g]) == orph[g]) }
			if                             /* no live member left: remove it */
			:: d_step { w -> REACHED(8); gst[g] = G_FREE; w = 0 }
			:: else -> skip
			fi
#endif
		:: else ->
			if
			:: CLK(cw) > 0 ->              /* at-most-once: drop the claim */
				d_step { REACHED(7); cl[e] = 0; s = CLS(cw) }
				recompute(g, s, e, p, c, h, cw, cs)
			:: else -> skip
			fi;
			owner[e] = O_FREE;
			if
			:: got == 1 -> count_down(g, w)          /* 5 inside */
			:: else -> skip                          /* FIX_JOIN: never counted */
			fi
		fi
	:: else -> skip
	fi;
	d_step { got = 0; g = 0; s = 0; c = 0; h = 0; cw = 0; cs = 0; w = 0 }
}

/* a dead creator's group: CREATING(dead) -> FREE */
inline recover_group()
{
	d_step { if :: DEADGRP -> gst[GB] = G_FREE :: else -> skip fi }
}

/* pick something dead to recover (in group g; NG: any): e, or NM for a group */
inline pick_dead(g, e)
{
	if
	:: DEADIN(g, 0) -> e = 0
	:: DEADIN(g, 1) -> e = 1
#if NM > 2
	:: DEADIN(g, 2) -> e = 2
#endif
	:: DEADGRP -> e = NM
	fi
}

/* ---- group_create (group B, by member me) ---- */
inline group_create(me, s, h, t)
{
	/* 1. take the FREE entry; per ring head = cursor = min of the live heads */
#ifdef FIX_CREATE
	/* the creator is a counted member before the group is seen */
	d_step { owner[me] = OWN(O_ACTIVE, me); mode[GB] = MODE(1, SOLO, me) }
#endif
	d_step { t = (gst[GA] != G_FREE) }
	s = 0;
	do
	:: d_step { s < NP ->
		if
		:: t -> h = head[IX(GA, s)]
		:: else -> h = tail[s]
		fi;
		head[IX(GB, s)] = h; cursor[IX(GB, s)] = h; s++ }   /* B is FREE: unseen */
	:: s == NP -> break
	od;
#ifdef TAIL_FIRST
	atomic { s = 0; t = tail[0] }          /* negative: the tails read too early */
#if NP > 1
	d_step { h = tail[1] }
#endif
#endif
	gst[GB] = G_CREATING(me);              /* 2. seq_cst store; seq_cst fence */
	s = 0;
	do                                     /* 3. per ring cursor = head = tail */
	:: s < NP ->
#ifndef TAIL_FIRST
		t = tail[s];                   /* load_acquire(&ring->tail) */
#else
		d_step { if :: s == 1 -> t = h :: else -> skip fi }
#endif
		cursor[IX(GB, s)] = t;
		d_step { head[IX(GB, s)] = t; gstart[IX(GB, s)] = t; t = 0; s++ }
	:: s == NP -> break
	od;
	atomic { gst[GB] = G_ACTIVE; s = 0; h = 0 }   /* 4. store_release ACTIVE */
}

/* ---- one member process: a state machine, one shared access a transition ---- */
#define M_IDLE 0
#define M_ACK 1
#define M_ACK2 2
#define M_ACK3 3
#define M_SOLO 4
#define M_SOLO2 5
#define M_GOSOLO 6
#define M_GOSOLO2 7
#define M_ORPH 8
#define M_ADOPT 9
#define M_ADOPT2 10
#define M_LOCK 11
#define M_LOCKED 12
#define M_CL 13
#define M_CUR 14
#define M_UNLOCK 15
#define M_UNLOCK0 16
#define M_READ 17
#define M_REL 18
#define M_SREL 19
#define M_HREL 20
#define M_HREL2 21
#define M_RC 22
#define M_AREL 23
#define M_AREL2 24
#define M_AREL3 25
#define M_LEAVE 26
#define M_LEAVE2 27
#define M_LEAVE3 28
#define M_RC1 29
#define M_RC2 30
#define M_RCAS 31
#define M_NFCLR 32
#define M_AREL4 33
#define M_LEAVE4 34
#define M_END 35

/* after a release step: the rest of a partial release, or back to idle */
#define REL_NEXT \
	if \
	:: n < k -> c = c + n; k = k - n; n = k; pc = M_REL \
	:: else -> hold_e[me] = 0; hold_b[me] = 0; hold_s[me] = 0; \
		s = 0; c = 0; k = 0; n = 0; sk = 0; pc = M_IDLE \
	fi

proctype Member(byte me; byte g)
{
	byte pc, ret, w, s, c, t, k, h, cw, cs, p, e, r, n, sk, g2, got;
	bool adopted;
	{
#ifdef CREATE
		if
		:: g == GB -> group_create(me, s, h, t)
		:: else -> skip
		fi;
#endif
		/* rmpsc_consumer_join: take our place, then the mode CAS */
#if defined(FIX_CREATE) && defined(CREATE)
		if
		:: g == GB -> goto joined      /* the creator joined in group_create */
		:: else -> skip
		fi;
#endif
#ifndef FIX_JOIN
		owner[me] = OWN(O_ACTIVE, me);
#else
		owner[me] = OWN(O_JOINING, me);
#endif
#ifdef JOIN_HEADS_FIRST
		do                                     /* negative: heads = cursors, then CAS */
		:: d_step { w = mode[g]; s = 0 }
			if
			:: w == MODE(0, SHARED, 0) ->
				do
				:: s < NP -> c = cursor[IX(g, s)]; d_step { head[IX(g, s)] = c; s++ }
				:: s == NP -> break
				od;
				atomic {
					if
					:: mode[g] == w -> mode[g] = MODE(1, SOLO, me); got = 2
					:: else -> skip
					fi
				}
			:: else -> got = 3
			fi;
			if
			:: got != 0 -> break
			:: else -> skip
			fi
		od;
#endif
		atomic {                               /* the mode CAS (loop) */
			if
			:: got == 2 -> got = 0
			:: else ->
				w = mode[g];
				if
				:: w == MODE(0, SHARED, 0) -> mode[g] = MODE(1, SOLO, me); got = 1
				:: MKIND(w) == SHARED && MCNT(w) > 0 -> mode[g] = w + 1; got = 0
				:: MKIND(w) != SHARED -> mode[g] = MODE(MCNT(w) + 1, PENDING, MSOLO(w)); got = 0
				fi
			fi;
			w = 0; s = 0; c = 0
		}
#ifdef FIX_JOIN
		owner[me] = OWN(O_ACTIVE, me);        /* counted now */
#endif
		if
		:: d_step { got == 1 ->                /* alone: heads = cursors (ours now) */
			s = 0;
			do
			:: s < NP -> head[IX(g, s)] = cursor[IX(g, s)]; s++
			:: else -> break
			od;
			s = 0; got = 0 }
		:: else -> skip
		fi;
joined:
		do
		/* member_recover, at a bounded rate, when idle */
		:: atomic { pc == M_IDLE && SOMEDEAD_IN(g) -> pick_dead(g, e) } ->
			if
			:: e < NM -> recover(e, me, g2, got, s, c, h, cw, cs, p, w)
			:: else -> recover_group()
			fi;
			e = 0
		/* finished: the group released all; then rmpsc_consumer_leave */
		:: d_step { pc == M_IDLE && ALLDONE && RELEASED_ALL(g) ->
			s = 0;
			do
			:: s < NP ->
				r = gstart[IX(g, s)];
				do
				:: r < NRECS(s) ->      /* at-most-once: but a dead member's records */
					assert(HAS(done[IX(g, s)], r) || AMO_G(g) && HAS(mayre[IX(g, s)], r)); r++
				:: else -> break
				od;
				s++
			:: else -> break
			od;
			s = 0; r = 0; pc = M_LEAVE }
		:: d_step { pc == M_LEAVE -> w = mode[g];
			if
			:: MKIND(w) == PENDING && MSOLO(w) == me -> pc = M_ACK; ret = M_LEAVE
			:: else -> pc = M_LEAVE2
			fi; w = 0 }
		:: d_step { pc == M_LEAVE2 -> owner[me] = O_FREE; pc = M_LEAVE3 }
		:: d_step { pc == M_LEAVE3 -> w = mode[g];      /* count - 1 (CAS loop) */
			assert(MCNT(w) > 0);
			if
			:: MCNT(w) == 1 -> mode[g] = MODE(0, SHARED, 0);
				if :: EPH_G(g) -> pc = M_LEAVE4 :: else -> pc = M_END fi
			:: else -> mode[g] = w - 1; pc = M_END
			fi; w = 0 }
		:: d_step { pc == M_LEAVE4 -> gst[g] = G_FREE; pc = M_END }  /* the last one removes it */
		:: pc == M_END -> running[me] = 0; break

		/* claim_span: woken, load the mode */
		:: d_step { pc == M_IDLE && CAN_CLAIM(me, g) -> w = mode[g];
			if
			:: MKIND(w) == PENDING -> pc = M_ACK; ret = M_IDLE
			:: MKIND(w) == SOLO -> assert(MSOLO(w) == me); pc = M_SOLO
			:: MKIND(w) == SHARED && MCNT(w) == 1 -> pc = M_GOSOLO
			:: MKIND(w) == SHARED && MCNT(w) > 1 -> pc = M_ORPH
			fi; w = 0 }

		/* solo_ack: our open claim (cursor > head; ours alone to write) as a
		 * claim record (claim_start unseen while claim is 0), then the CAS */
		:: d_step { pc == M_ACK ->
			s = 0;
			do
			:: s < NP && cursor[IX(g, s)] == head[IX(g, s)] -> s++
			:: else -> break
			od;
			if
			:: s < NP -> c = cursor[IX(g, s)]; h = head[IX(g, s)]; cstart[me] = h; pc = M_ACK2
			:: else -> pc = M_ACK3
			fi }
		:: d_step { pc == M_ACK2 -> REACHED(2); cl[me] = CL(s, c - h); pc = M_ACK3 }
		:: d_step { pc == M_ACK3 ->
			assert(MKIND(mode[g]) == PENDING && MSOLO(mode[g]) == me);
			mode[g] = MODE(MCNT(mode[g]), SHARED, 0);
			pc = ret; ret = 0;
			if
			:: pc == M_IDLE || pc == M_LEAVE -> s = 0; c = 0; h = 0
			:: else -> s = hold_s[me]; c = hold_b[me]; h = 0  /* back to the release */
			fi }

		/* SOLO claim: cursor is ours; tails loaded; one plain store */
		:: d_step { pc == M_SOLO ->
			s = 0;
			do
			:: s < NP && cursor[IX(g, s)] == tail[s] -> s++
			:: else -> break
			od;
			if
			:: s < NP -> c = cursor[IX(g, s)]; t = tail[s];
				k = MIN(MAXB, t - c); k = MIN(k, CAP - c % CAP); pc = M_SOLO2
			:: else -> s = 0; pc = M_IDLE
			fi;
			t = 0 }
		:: d_step { pc == M_SOLO2 -> cursor[IX(g, s)] = c + k;
			hold_s[me] = s; hold_b[me] = c; hold_e[me] = c + k; pc = M_READ }

		/* go_solo: SHARED,1 -> SOLO(me),1; then head = max(head, cursor) */
		:: d_step { pc == M_GOSOLO ->
			if
			:: mode[g] == MODE(1, SHARED, 0) -> mode[g] = MODE(1, SOLO, me); pc = M_GOSOLO2
			:: else -> pc = M_IDLE
			fi }
		:: d_step { pc == M_GOSOLO2 ->        /* nobody else writes them now */
			s = 0;
			do
			:: s < NP ->
				if
				:: head[IX(g, s)] < cursor[IX(g, s)] -> REACHED(5); head[IX(g, s)] = cursor[IX(g, s)]
				:: else -> skip
				fi;
				s++
			:: else -> break
			od;
			s = 0; pc = M_IDLE }

		/* SHARED: orphans first (adopt_orphan) */
		:: d_step { pc == M_ORPH ->
			if
			:: orph[g] > 0 -> pc = M_ADOPT
			:: else -> s = 0; pc = M_LOCK
			fi }
		:: d_step { pc == M_ADOPT ->          /* CAS ORPHAN -> ADOPTING(me) */
			e = 0;
			do
			:: e < NM && !ORPHAN_IN(g, e) -> e++
			:: else -> break
			od;
			if
			:: e < NM -> owner[e] = OWN(O_ADOPTING, me); pc = M_ADOPT2
			:: else -> e = 0; s = 0; pc = M_LOCK
			fi }
		:: d_step { pc == M_ADOPT2 ->         /* orphans - 1; its claim is stable */
			REACHED(1); orph[g]--; cw = cl[e]; cs = cstart[e];
			s = CLS(cw); c = cs; k = CLK(cw); cw = 0; cs = 0;
			hold_s[me] = s; hold_b[me] = c; hold_e[me] = c + k;
			adopted = 1; pc = M_READ }

		/* SHARED claim under the per-ring lock */
		:: d_step { pc == M_LOCK ->
			if
			:: s == NP -> s = 0; pc = M_IDLE
			:: s < NP && lock[IX(g, s)] == 0 -> lock[IX(g, s)] = me + 1; pc = M_LOCKED
			:: s < NP && lock[IX(g, s)] != 0 -> s++
			fi }
		:: d_step { pc == M_LOCKED ->         /* the cursor is ours under the lock */
			c = cursor[IX(g, s)]; t = tail[s];
			k = MIN(MAXB, t - c); k = MIN(k, CAP - c % CAP); t = 0;
			if
			:: k == 0 -> c = 0; pc = M_UNLOCK0
#ifndef CURSOR_FIRST
			:: k > 0 -> cstart[me] = c; pc = M_CL   /* claim_start: unseen while claim is 0 */
#else
			:: k > 0 -> pc = M_CUR
#endif
			fi }
		:: d_step { pc == M_UNLOCK0 -> lock[IX(g, s)] = 0; s++; pc = M_LOCK }
#ifndef CURSOR_FIRST
		:: d_step { pc == M_CL -> cl[me] = CL(s, k); pc = M_CUR }
		:: d_step { pc == M_CUR -> cursor[IX(g, s)] = c + k;
			hold_s[me] = s; hold_b[me] = c; hold_e[me] = c + k; pc = M_UNLOCK }
#else
		:: d_step { pc == M_CUR -> cursor[IX(g, s)] = c + k;   /* negative: cursor first */
			hold_s[me] = s; hold_b[me] = c; hold_e[me] = c + k; pc = M_CL }
		:: d_step { pc == M_CL -> cstart[me] = c; cl[me] = CL(s, k); pc = M_UNLOCK }
#endif
		:: d_step { pc == M_UNLOCK -> lock[IX(g, s)] = 0; pc = M_READ }

		/* read the span: each record is the one of its position */
		:: atomic { pc == M_READ ->
			r = c;
			do
			:: r < c + k ->
				assert(buf[s * CAP + r % CAP] == r + 1);
				assert(!HAS(seen[IX(g, s)], r) ||
					(!AMO_G(g) && adopted && HAS(mayre[IX(g, s)], r)));
				seen[IX(g, s)] = seen[IX(g, s)] | BIT(r);
				r++
			:: else -> break
			od;
			r = 0; n = k;
#ifdef PARTIAL
			if
			:: !adopted && k > 1 -> n = 1        /* release the first record alone */
			:: true -> skip
			fi;
#endif
			if
			:: adopted -> pc = M_AREL
			:: else -> pc = M_REL
			fi }

		/* release_span of our claim: load the mode */
		:: d_step { pc == M_REL -> w = mode[g];
			if
			:: MKIND(w) == PENDING && MSOLO(w) == me -> pc = M_ACK; ret = M_REL
			:: MKIND(w) == SOLO -> assert(MSOLO(w) == me); pc = M_SREL
#ifndef NO_FENCE
			:: MKIND(w) == SHARED -> pc = M_HREL
#else
			:: MKIND(w) == SHARED && n == k -> pc = M_RC; sk = me;  /* negative: scan, then clear */
				done[IX(g, s)] = done[IX(g, s)] | BITS(c, c + n); hold_b[me] = c + n
#endif
			fi; w = 0 }
		:: d_step { pc == M_SREL -> head[IX(g, s)] = c + n;   /* store_release(head + n) */
			done[IX(g, s)] = done[IX(g, s)] | BITS(c, c + n); hold_b[me] = c + n;
			REL_NEXT }
		:: d_step { pc == M_HREL ->
			if
			:: n == k -> cl[me] = 0; sk = me; pc = M_RC
#ifndef FIX_PARTIAL
			:: n < k -> cstart[me] = c + n; sk = NM; pc = M_HREL2
#else
			:: n < k -> cstart[me] = c + n; cl[me] = CL(s, k - n); sk = NM; pc = M_RC
#endif
			fi;
			done[IX(g, s)] = done[IX(g, s)] | BITS(c, c + n); hold_b[me] = c + n }
		:: d_step { pc == M_HREL2 -> cl[me] = CL(s, k - n); pc = M_RC }

		/* seq_cst fence; recompute_head(g, s) skipping place sk: load cursor,
		 * per other place of g load claim (and claim_start if it names s),
		 * CAS-max head */
		:: d_step { pc == M_RC -> t = cursor[IX(g, s)]; h = t; t = 0; p = 0; NEXTP(g, sk, p);
			if :: p < NM -> pc = M_RC1 :: else -> pc = M_RCAS fi }
		:: d_step { pc == M_RC1 -> cw = cl[p];
			if
			:: CLK(cw) > 0 && CLS(cw) == s -> pc = M_RC2
			:: else -> cw = 0; p++; NEXTP(g, sk, p);
				if :: p == NM -> pc = M_RCAS :: else -> skip fi
			fi }
		:: d_step { pc == M_RC2 -> cs = cstart[p]; assert(PROBE != 4 || cs >= h); h = MIN(h, cs); cw = 0; cs = 0;
			p++; NEXTP(g, sk, p);
			if :: p < NM -> pc = M_RC1 :: else -> pc = M_RCAS fi }
		:: d_step { pc == M_RCAS ->
			if
			:: head[IX(g, s)] < h -> head[IX(g, s)] = h
			:: else -> skip
			fi;
			p = 0; h = 0;
			if
			:: adopted -> pc = M_AREL2
			:: else ->
#ifndef NO_FENCE
				REL_NEXT
#else
				pc = M_NFCLR
#endif
			fi }
#ifdef NO_FENCE
		:: d_step { pc == M_NFCLR -> cl[me] = 0;           /* negative: cleared after the scan */
			REL_NEXT }
#endif

		/* release of an adopted claim: clear it, recompute, free the place */
		:: d_step { pc == M_AREL -> cl[e] = 0; sk = e;
			done[IX(g, s)] = done[IX(g, s)] | BITS(c, c + k);
			hold_e[me] = 0; hold_b[me] = 0; hold_s[me] = 0; pc = M_RC }
		:: d_step { pc == M_AREL2 -> owner[e] = O_FREE; pc = M_AREL3 }  /* CAS ADOPTING(me) -> FREE */
		:: d_step { pc == M_AREL3 -> w = mode[g];          /* count - 1 */
			assert(MCNT(w) > 0);
			if
			:: MCNT(w) == 1 -> mode[g] = MODE(0, SHARED, 0);
				if :: EPH_G(g) -> pc = M_AREL4 :: else -> pc = M_IDLE fi
			:: else -> mode[g] = w - 1; pc = M_IDLE
			fi;
			w = 0;
			if
			:: pc == M_IDLE -> adopted = 0; e = 0; s = 0; c = 0; k = 0; n = 0; sk = 0
			:: else -> skip
			fi }
		:: d_step { pc == M_AREL4 -> gst[g] = G_FREE;
			adopted = 0; e = 0; s = 0; c = 0; k = 0; n = 0; sk = 0; pc = M_IDLE }
		od
	} unless { d_step { dead[me] ->        /* died: its locals are gone */
		pc = 0; ret = 0; w = 0; s = 0; c = 0; t = 0; k = 0; h = 0; cw = 0; cs = 0; p = 0;
		e = 0; r = 0; n = 0; sk = 0; g2 = 0; got = 0; adopted = 0 } }
}

/* ---- the producer of ring s ---- */
proctype Producer(byte s)
{
	byte t, ch, m, h, st, e, got, g2, c, cw, cs, p, w, s2;
	do
	:: d_step { t == NRECS(s) -> pdone[s] = 1; ch = 0 }; break
	:: d_step { t < NRECS(s) && t < ch + CAP ->
		assert(gst[GA] != G_ACTIVE || t < head[IX(GA, s)] + CAP);
		assert(gst[GB] != G_ACTIVE || t < head[IX(GB, s)] + CAP);
		buf[s * CAP + t % CAP] = t + 1 }
		d_step { tail[s] = t + 1; t++ }        /* commit: store_release(&tail) */
	:: d_step { t < NRECS(s) && t >= ch + CAP ->
		st = gst[GA] }                     /* released_head: seq_cst fence; group A */
		d_step { if :: st != G_FREE -> m = head[IX(GA, s)] :: else -> m = 255 fi; st = gst[GB] }
		d_step {                           /* group B (its state loaded with A's head) */
			if :: st != G_FREE -> h = head[IX(GB, s)]; m = MIN(m, h) :: else -> skip fi;
			if :: m == 255 -> ch = t :: else -> ch = m fi;
			m = 0; st = 0; h = 0 }
		do                                     /* full: wait, recovering the dead */
		:: t < ch + CAP -> break
		:: atomic { t >= ch + CAP && SPACE(s, t) } -> break    /* then the slow path again */
		:: atomic { PRECOVER && t >= ch + CAP && SOMEDEAD_IN(NG) -> pick_dead(NG, e) } ->
			if
			:: e < NM -> REACHED(3); recover(e, PPID(s), g2, got, s2, c, h, cw, cs, p, w)
			:: else -> recover_group()
			fi;
			e = 0
		od
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
		gflags[GB] = F_EPH;
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
