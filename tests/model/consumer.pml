/*
 * The consumer role (csrc/consumer.c rmpsc_consumer_claim / rmpsc_consumer_release,
 * csrc/attach.c rmpsc__consumer_holders / rmpsc__consumer_let_go). Run by
 * tests/model/run.sh.
 *
 * Process P (table slot 0) has two handles used by two threads; they share P's
 * identity, the role word and a holder count guarded by P's attach_lock.
 * Process Q (slot 1) has one handle; a dead Q is followed by a new process in
 * its slot that attaches anew (a new generation). Each handle claims, may
 * re-enter (consumer_enter: the role is no longer ours -> claim again), and
 * releases, ROUNDS times.
 *
 * Checked (assertion in every state): never does a live process's handle
 * believe it holds the role while a handle of another live process does.
 * -DOLD_LET_GO: the order before 1770540 (decrement under the lock, CAS the word
 * to 0 after unlocking); run.sh expects that variant to FAIL.
 */
#define NPROC 3
#ifndef MAXDEATHS
#define MAXDEATHS 1
#endif
#ifndef ROUNDS
#define ROUNDS 2
#endif
#define KILLABLE(p) (p < 2)
#include "common.pml"

byte role;                     /* header.consumer_owner: an identity, 0 none */
byte holders[2];               /* attachment.consumer_holders, per process */
byte mtx[2];                   /* attach_lock, per process: holding thread + 1 */
bool claimed[3];               /* handle.consumer_claimed: handles 0, 1 of P, 2 of Q */
byte respawns = 1;

inline lock(q, h)   { atomic { mtx[q] == 0 -> mtx[q] = h + 1 } }
inline unlock(q)    { mtx[q] = 0 }

/* rmpsc_consumer_claim through handle h of process q (identity me). */
inline claim(q, h, me, n, cur, alive)
{
	if                                          /* our claim was lost: count it again below */
	:: claimed[h] -> lock(q, h); if :: holders[q] > 0 -> holders[q]-- :: else -> skip fi; unlock(q)
	:: else -> skip
	fi;
	claimed[h] = 0;
	lock(q, h); holders[q]++; n = holders[q]; unlock(q); /* rmpsc__consumer_holders(+1) */
	cur = role;                                 /* load_acquire(&consumer_owner) */
	do
	:: cur == me && n > 1 -> claimed[h] = 1; break       /* share with another handle */
	:: cur != 0 && cur != me ->
		owner_alive(cur, me, alive);        /* rmpsc__owner_alive */
		if
		:: alive ->                         /* ECONSUMER; rmpsc__consumer_holders(-1) */
			lock(q, h); if :: holders[q] > 0 -> holders[q]-- :: else -> skip fi; unlock(q);
			break
		:: else ->
			atomic {                    /* cas_acq_rel(&consumer_owner, &cur, me) */
				if
				:: role == cur -> role = me; claimed[h] = 1
				:: else -> cur = role
				fi
			}
			if
			:: claimed[h] -> break
			:: else -> skip
			fi
		fi
	:: cur == me && n <= 1 -> claimed[h] = 1; break      /* fresh */
	:: cur == 0 ->
		atomic {
			if
			:: role == cur -> role = me; claimed[h] = 1
			:: else -> cur = role
			fi
		}
		if
		:: claimed[h] -> break
		:: else -> skip
		fi
	od;
	atomic { n = 0; cur = 0; alive = 0 }
}

/* rmpsc_consumer_release -> rmpsc__consumer_let_go */
inline release(q, h, me, n)
{
	claimed[h] = 0;
#ifndef OLD_LET_GO
	lock(q, h);
	if
	:: holders[q] > 0 ->
		holders[q]--;
		if
		:: holders[q] == 0 -> atomic { if :: role == me -> role = 0 :: else -> skip fi } /* CAS me -> 0 */
		:: else -> skip
		fi
	:: else -> skip
	fi;
	unlock(q)
#else
	lock(q, h); if :: holders[q] > 0 -> holders[q]-- :: else -> skip fi; n = holders[q]; unlock(q);
	if
	:: n == 0 -> atomic { if :: role == me -> role = 0 :: else -> skip fi }
	:: else -> skip
	fi;
	n = 0
#endif
}

/* One handle of process q, used by its own thread. */
proctype Handle(byte q; byte h)
{
	byte me, n, cur, alive, r, i, got;
incarnation:
	{
		if
		:: q == 1 -> attach(q, me, i, got)  /* Q: its only handle attaches */
		:: else -> me = myid[0]              /* P: attached before its threads started */
		fi;
		do
		:: r < ROUNDS && !claimed[h] && me != 0 -> r++; claim(q, h, me, n, cur, alive)
		:: claimed[h] && role != me -> claim(q, h, me, n, cur, alive) /* consumer_enter */
		:: claimed[h] -> release(q, h, me, n)
		:: r == ROUNDS && !claimed[h] || me == 0 -> break
		od
	} unless { dead[q] };
	if
	:: q == 1 && dead[1] && respawns > 0 ->             /* a new process in Q's slot */
		d_step { respawns--; dead[1] = 0; holders[1] = 0; mtx[1] = 0; claimed[h] = 0;
		me = 0; n = 0; cur = 0; alive = 0; r = 0; i = 0; got = 0 };
		goto incarnation
	:: else -> skip
	fi
}

#define HOLDS_P (!dead[0] && (claimed[0] || claimed[1]))
#define HOLDS_Q (!dead[1] && claimed[2])

/* One consumer at a time: checked in every state. */
active proctype monitor()
{
end:
	atomic { HOLDS_P && HOLDS_Q -> assert(false) }
}

init
{
	byte i, got, me;
	atomic {
		attach(0, me, i, got);                      /* P attaches (entry 0, generation 1) */
		run Handle(0, 0); run Handle(0, 1); run Handle(1, 2)
	}
}
