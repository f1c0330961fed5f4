/*
 * Producer slots and their reclaim under kernel-vouched liveness (csrc/slot.c,
 * csrc/producer.c, csrc/attach.c). Run by tests/model/run.sh.
 *
 * Two producer processes (table slots 0, 1) and the consumer's sweep (slot 2)
 * share a table of 2 attachment entries and one producer slot's owner word.
 * A producer attaches, registers (reclaiming first when the slot is taken),
 * closes its producer, detaches, and does it again: entries are re-locked and
 * their generation bumped (the ABA the generation is there for). A producer
 * that dies is followed by a new process in its table slot (up to RESPAWNS).
 *
 * Checked:
 *  - safety (assertions, -DSAFETY): a reclaimer never takes a word that names a
 *    live identity; a live process that holds the slot (REGISTERING/ACTIVE of
 *    its own) or is reclaiming it (RECLAIMING of its own) always still sees
 *    that word: no two writers.
 *  - progress (ltl `reclaimed`, weak fairness): a claimed word whose owner is
 *    dead is eventually changed (reclaimed by the sweep).
 * Abstracted away: the ring contents (a DETACHED slot counts as drained), slabs
 * (rmpsc__slab_reclaim), fencing by the consumer, fork, pid hints, memory order
 * (sequentially consistent), generation wrap (2^50 here never reached).
 */
#define NPROC 3
#ifndef MAXDEATHS
#define MAXDEATHS 2
#endif
#ifndef ITER
#define ITER 2                 /* attach .. detach rounds per producer process */
#endif
#ifndef RESPAWNS
#define RESPAWNS 1             /* new processes started in place of dead ones */
#endif
#define SWEEPER 2
/* The sweep stays alive, so that someone is left to reclaim (progress); its
 * own death mid-reclaim is covered by the producers, which reclaim too. */
#define KILLABLE(p) (p != SWEEPER && running[p])

bool running[NPROC];
#include "common.pml"

/* Slot states (enum rmpsc_slot_state) */
#define FREE 0
#define REG  1
#define ACT  2
#define DET  3
#define RECL 4
#define CLAIMED(s) ((s) == REG || (s) == ACT || (s) == RECL) /* slot_claimed */

byte st, oid;                  /* ring_ctrl.owner: state, owner identity */
bool holds[NPROC];             /* ghost: p believes it holds the slot (its producer is open) */
bool reclaiming[NPROC];        /* ghost: p is inside reclaim_slot, after its first CAS */
byte respawns = RESPAWNS;

/* claim_slot: FREE (or DETACHED and drained) -> REGISTERING(me), reset the
 * private fields, then a plain store_release of ACTIVE(me). */
inline claim_slot(p, me, ws, wid, got)
{
	d_step { ws = st; wid = oid; got = 0 }          /* load_acquire(&c->owner) */
	if
	:: ws == FREE || ws == DET ->
		atomic {                                /* cas_acq_rel -> REGISTERING(me) */
			if
			:: st == ws && oid == wid -> st = REG; oid = me; holds[p] = 1; got = 1
			:: else -> skip
			fi
		}
	:: else -> skip
	fi;
	if
	:: got -> d_step { st = ACT; oid = me; ws = 0; wid = 0 } /* store_release(ACTIVE(me)): a store, not a CAS */
	:: else -> ws = 0; wid = 0
	fi
}

/* reclaim_slot: word w (naming a gone owner) -> RECLAIMING(me) by CAS; reclaim
 * slabs (not modelled); CAS RECLAIMING(me) -> DETACHED(owner of w). */
inline reclaim_slot(p, me, ws, wid, got)
{
	atomic {
		if
		:: st == ws && oid == wid ->
			assert(!LIVE_ID(wid));          /* never a live owner's claim */
			st = RECL; oid = me; reclaiming[p] = 1; got = 1
		:: else -> got = 0
		fi
	}
	if
	:: got ->
		atomic {
			if
			:: st == RECL && oid == me -> st = DET; oid = wid
			:: else -> skip
			fi;
			reclaiming[p] = 0; ws = 0; wid = 0; got = 0
		}
	:: else -> ws = 0; wid = 0
	fi
}

/* rmpsc_reclaim_dead over our one slot (the caller is attached). */
inline reclaim_dead(p, me, ws, wid, alive, got)
{
	d_step { ws = st; wid = oid }
	if
	:: CLAIMED(ws) ->
		owner_alive(wid, me, alive);            /* rmpsc__owner_alive_cached */
		if
		:: !alive -> reclaim_slot(p, me, ws, wid, got)
		:: else -> d_step { alive = 0; ws = 0; wid = 0 }
		fi
	:: else -> d_step { ws = 0; wid = 0 }
	fi
}

proctype Producer(byte p)
{
	byte me, i, got, ws, wid, alive, n;
incarnation:
	{
		do
		:: n < ITER ->
			n++;
			attach(p, me, i, got);                      /* rmpsc__attach */
			if
			:: me != 0 ->
				claim_slot(p, me, ws, wid, got);    /* rmpsc__take_slot: claim_slot, */
				if
				:: !got ->
					reclaim_dead(p, me, ws, wid, alive, got); /* else rmpsc_reclaim_dead */
					claim_slot(p, me, ws, wid, got)           /* and claim_slot again */
				:: else -> skip
				fi;
				if
				:: got ->                           /* rmpsc_producer_close: */
					d_step {                    /* CAS ACTIVE(me) -> DETACHED(me) */
						if
						:: st == ACT && oid == me -> st = DET
						:: else -> skip
						fi;
						holds[p] = 0
					}
				:: else -> skip
				fi;
				detach(p, me)                       /* rmpsc__attach_close */
			:: else -> skip                             /* ENOSLOT */
			fi
		:: else -> break
		od;
		running[p] = 0
	} unless { dead[p] };
	if
	:: d_step { dead[p] && respawns > 0 ->              /* a new process in this slot */
		respawns--; dead[p] = 0; running[p] = 1; holds[p] = 0; reclaiming[p] = 0;
		me = 0; i = 0; got = 0; ws = 0; wid = 0; alive = 0; n = 0 };
		goto incarnation
	:: else -> skip
	fi
}

/* The consumer's sweep: rmpsc_reclaim_dead at a bounded rate, and
 * rmpsc__slot_free_if_drained. Attaches only when there is something to reclaim. */
proctype Sweeper()
{
	byte me, i, got, ws, wid, alive;
end:
	do
	:: d_step { ws = st; wid = oid };
		if
		:: CLAIMED(ws) ->
			owner_alive(wid, me, alive);
			if
			:: !alive ->
				if
				:: me == 0 -> attach(SWEEPER, me, i, got)
				:: else -> skip
				fi;
				if
				:: me != 0 -> reclaim_slot(SWEEPER, me, ws, wid, got)
				:: else -> d_step { ws = 0; wid = 0; i = 0 } /* ENOSLOT: next sweep */
				fi
			:: else -> d_step { ws = 0; wid = 0; alive = 0 }
			fi
		:: ws == DET ->
			atomic {                                    /* CAS DETACHED -> FREE */
				if
				:: st == DET && oid == wid -> st = FREE; oid = 0
				:: else -> skip
				fi;
				ws = 0; wid = 0
			}
		:: else -> d_step { ws = 0; wid = 0 }
		fi
	od
}

#define BELIEF_OK(p) (dead[p] || \
	((!holds[p] || (oid == myid[p] && (st == REG || st == ACT))) && \
	 (!reclaiming[p] || (st == RECL && oid == myid[p]))))

/* No live process loses a word it believes its own (checked in every state). */
active proctype monitor()
{
end:
	atomic { !(BELIEF_OK(0) && BELIEF_OK(1) && BELIEF_OK(2)) -> assert(false) }
}

init
{
	atomic {
		running[0] = 1; running[1] = 1;
		run Producer(0); run Producer(1);
#ifndef NO_SWEEPER
		run Sweeper()
#endif
	}
}

#define DEAD_CLAIM (CLAIMED(st) && !LIVE_ID(oid))
ltl reclaimed { [] (DEAD_CLAIM -> <> !DEAD_CLAIM) }
