/*
 * Consumer wake-ups: the waiting_members mask, coalescing (wake_min) and the
 * readiness FIFO, as csrc/wait.c (rmpsc__wait, linger), csrc/notify.c
 * (rmpsc__wake_members_slow, wants_wake, signal_member), csrc/consumer.c
 * (wait_for_data_slow, rmpsc_ready_arm, rmpsc_ready_disarm) and csrc/slot.c
 * (rmpsc_channel_close) do them. Run by tests/model/run.sh.
 *
 * NP producers (Waker 0, 1; 2 but in one check), each the only writer of the
 * tail of its ring, publish NREC records each (NREC1 the second); NM waiting
 * threads (Member 0 .. NM - 1) each hold a member place (-DSHARED_PLACE: both
 * hold place 0, as two handles of one process do) in a group of its own
 * (-DSAMEGROUP: one group, whose cursor they share). Shared words: `mask`
 * (waiting_members: bit e, place e may be waiting), per place `wake_min`, `how`
 * (wait_how: WAIT_FUTEX 1, WAIT_FD 2), `seq` (wake_seq, the futex word) and
 * `fifo` (its readiness FIFO holds a byte); per ring `tail`, per group and ring
 * `cursor` (what the group took); `closed`; and the process's own per place,
 * `armed` (its readiness fd is armed there: struct member_fifo.armed).
 * Memory is sequentially consistent: every fence is implicit, and the negative
 * variants model a missing one by reordering the load after it before the store
 * before it. Each step (pc) is one load, store or read-modify-write of the C
 * code; merged where nothing can tell: the drain's closed look with the wait_how
 * store (the closer reads wait_how only through a bit not set yet), a producer's
 * publish with its closed check (the reserving/closed protocol of
 * ARCHITECTURE.md 2.5 is not modelled), the recheck's loads of both rings (each
 * pairs with its own producer's fence), ready()'s take with its look (as a
 * claim under the ring's lock), a seq bump with its FUTEX_WAKE (a futex_wait is
 * a guard on seq != s: the kernel's check and queueing are one step; nobody
 * dies between the bump and the wake here).
 *
 * Member (consumer calls; W_TRY is the call's first ready(), which takes every
 * untaken record of the group):
 *   records: take them, the call returns; closed and nothing: ECLOSED, the
 *   thread ends; else wait, blocking (wait_for_data_slow: W_HOW wait_how =
 *   FUTEX, or FUTEX | FD while the process's fd is armed on the place, then
 *   rmpsc__wait) or through the readiness fd (-DFD, -DMIXED).
 *   rmpsc__wait: the spin is not modelled (it only polls ready());
 *   linger (K > 1): s = seq; L_MIN wake_min = K; L_OR mask |= bit, no fence;
 *     futex_wait(seq, s) until the linger's end, which may come at any moment:
 *     so the wait ends whenever, and its s is not modelled (a wake changes
 *     nothing the model can tell); L_MIN1 wake_min = 1; L_CHK ready(): records
 *     (taken) or closed: L_WD mask &= ~bit (finish; with the fd armed: the
 *     bit kept, wait_how = FD) and return; nothing: still announced, on to
 *   the fenced wait: F_SEQ s = seq; F_MIN wake_min = 1; F_OR mask |= bit; fence;
 *     F_CHK ready(): records (taken) or closed: F_WD as L_WD, return; else
 *     F_WAIT futex_wait(seq, s), no timeout; woken (seq != s): again from F_SEQ.
 *   rmpsc_ready_arm (after W_TRY found nothing): A_DRAIN drain the FIFO; A_HOW
 *     closed: return 1; else wait_how = FD, armed; lingering (the first arm
 *     after records were taken and arms within the delay after it; the delay
 *     may end at any arm): A_LMIN wake_min = K, A_LOR mask |= bit, A_LCHK K
 *     records untaken on the rings (unfenced): A_LWD mask &= ~bit, not armed,
 *     return 1; else armed with the rest of the delay: D_WAITL the caller waits
 *     for the FIFO or the delay (any moment), then consumes (W_TRY); fenced:
 *     A_MIN wake_min = 1, A_OR mask |= bit, fence, A_CHK a record untaken or
 *     closed: A_WD as A_LWD, return 1; else armed: D_WAIT the caller waits for
 *     the FIFO, then consumes (the C caps that wait at READY_RECHECK_NS, a
 *     second, for a FIFO a waker could not open: here it has no limit, a
 *     wake-up must not be lost). rmpsc_ready_disarm (-DNCANCEL, times): from
 *     either wait, D_CANCEL not armed, mask &= ~bit, and the caller consumes
 *     later.
 * Producer (Waker r < NP), after each publish (P_PUB tail++, refused once
 *   closed): fence; P_MASK load the mask; for each set bit e (lowest first):
 *   wants_wake: P_K k = wake_min[e]; k > 1: P_CUR load the group's cursor,
 *   tail - cursor < k: skip (the bit stays); P_AND fetch_and(mask, ~bit), had
 *   it: signal_member: P_HOW load wait_how; P_SEQ FUTEX:
 *   seq++ and FUTEX_WAKE; P_FIFO FD: write the FIFO.
 * Closer (Waker NP, -DCLOSE): closed = 1 (seq_cst), wake_all_members: the same
 *   scan with slot NO_SLOT (every set bit wanted, no wake_min look).
 *
 * Checked:
 *  - no lost wake-up: a thread never waits forever (F_WAIT, D_WAIT) while its
 *    group has records it has not taken, or the channel is closed. With
 *    -DCLOSE the closer runs at any moment and every thread must end with
 *    ECLOSED; without it (close wakes everyone, so it would hide a lost wake),
 *    a thread whose group took every record leaves once every producer is done
 *    (a ghost step: it would wait for records that never come, rightly); in
 *    both, a thread left waiting is an invalid end state;
 *  - every record taken once: a take moves the group's cursor to the tail; the
 *    group's ghost count of takes equals its cursors and, when a thread ends
 *    with nothing left, the records published;
 *  - coalescing (K > 1) loses nothing: the linger ends by its timeout at the
 *    latest, and the fenced wait announces wake_min = 1 (consumer_wakes, what
 *    coalescing saves, is not counted here: the C tests and benchmarks do).
 *
 * Options: -DNM=1|2 threads, -DNREC records per producer, -DK=min_records (1:
 * coalescing off), -DFD=mask (those threads wait through the readiness fd),
 * -DMIXED=mask (those choose per wait), -DNCANCEL=n (disarms per fd thread),
 * -DSAMEGROUP, -DSHARED_PLACE, -DCLOSE, -DSTOP=mask (those
 * threads may stop between calls: done with the channel), -DNP=1, -DPROBE=n
 * (fail when situation n is reached, to show a check is not vacuous: 1 a
 * producer leaves a lingering member under its threshold, 2 a producer wakes a
 * member for K > 1 records, 3 a fenced futex wait is woken with a record
 * untaken, 4 an fd wait ends by the FIFO with a record untaken, 5 a thread ends
 * ECLOSED after a wait, 6 a linger finds records, 7 a disarm, 8 a blocking call
 * leaves its bit to an armed fd).
 *
 * Negative variants, expected to FAIL (run.sh): -DNO_FENCE (the fenced wait's
 * and the fenced arm's re-check loads before the mask store is visible),
 * -DPRODUCER_NO_FENCE (the mask loaded before the tail store is visible),
 * -DWITHDRAW_BEFORE_CHECK (the bit cleared before the re-check),
 * -DTHRESHOLD_IN_FENCED (the fenced wait and arm keep wake_min = K),
 * -DARM_NO_DRAIN_ORDER (the arm drains the FIFO after its re-check, not
 * before): each leaves a thread waiting for good with a record untaken.
 *
 * Why one thread at a time per membership (-DSHARED_PLACE -DSTOP=1, expected to
 * FAIL; ringmpsc.h forbids it, and claims and spans would break as well): two
 * threads of one process calling at once on one member place (join_locked, "another handle of ours"), its bit, seq,
 * wake_min and wait_how. One thread's finish() (or an arm's "ready now", or a
 * disarm) clears the bit another announced. Two blocking threads: both sleep,
 * a publish wakes them; thread 0 re-announces and its ready() takes the record;
 * thread 1 re-announces (the bit is set already); thread 0 withdraws and stops
 * calling; thread 1 re-checks (nothing) and sleeps without a bit: the next
 * publish wakes nobody. With max_consumers == 1 the sleep has no slice: forever.
 * With -DFD=2 (thread 1 on the fd): thread 0's blocking call starts while the
 * fd is not armed (so it will withdraw) and takes a record; thread 1 arms
 * (nothing left to take) and waits on the FIFO; thread 0's finish clears the
 * bit; the next publish writes no FIFO (in the C the fd's wait ends after a
 * second). (One thread's wake_min = K or wait_how over another's loses wake-ups
 * too; not checked apart.)
 *
 * Not modelled: the spin phase, deadlines and slices (a fenced wait without
 * one is the case that must not lose a wake), EINTR, failed membarriers (the
 * C polls then), recovery of dead members and orphans, process death (a dead
 * waiter's bit costs one wake), the FIFO's generations and descriptor cache,
 * several mask words, a FIFO that is full (already readable) or that a waker
 * cannot open (it sets the bit again), fenced rings, busy claim locks
 * (take_busy), producers waiting for space, slabs.
 */
#ifndef NP
#define NP 2
#endif
#ifndef NM
#define NM 1
#endif
#ifndef NREC
#define NREC 2
#endif
#ifndef NREC1
#define NREC1 NREC             /* records of producer 1 */
#endif
#define NRECS(r) ((r) == 0 -> NREC : NREC1)
#ifndef K
#define K 1
#endif
#ifndef FD
#define FD 0
#endif
#ifndef MIXED
#define MIXED 0
#endif
#ifndef NCANCEL
#define NCANCEL 0
#endif
#ifndef STOP
#define STOP 0
#endif
#ifndef PROBE
#define PROBE 0
#endif
#ifdef SHARED_PLACE
#define NPL 1
#define PLACE(w) 0
#else
#define NPL NM
#define PLACE(w) (w)
#endif
#if defined(SAMEGROUP) || defined(SHARED_PLACE)
#define NG 1
#define GRP(e) 0
#else
#define NG NPL
#define GRP(e) (e)
#endif
#ifdef CLOSE
#define CLOSING 1
#else
#define CLOSING 0
#endif
#ifdef THRESHOLD_IN_FENCED
#define FENCED_MIN K                           /* negative: the fenced wait keeps the threshold */
#else
#define FENCED_MIN 1
#endif

#define WAIT_FUTEX 1
#define WAIT_FD    2

#define REACHED(n) if :: PROBE == (n) -> assert(false) :: else -> skip fi

byte tail[NP];                 /* ring_ctrl.tail */
byte cursor[NG * NP];          /* gpos.cursor: what the group took */
byte mask;                     /* waiting_members[0]: bit e, place e may be waiting */
byte wake_min[NPL];            /* member.wake_min */
byte how[NPL];                 /* member.wait_how */
byte seq[NPL];                 /* member.wake_seq (futex word) */
bool fifo[NPL];                /* the place's readiness FIFO holds a byte */
bool closed;                   /* header.closed */
bool armed[NPL];               /* process-local: its readiness fd is armed on the place */
byte pdone;                    /* ghost: producers done */
byte taken[NG];                /* ghost: records taken by the group */

#define CUR(g, r) cursor[(g) * NP + (r)]
#if NP > 1
#define UNT(g) (tail[0] - CUR(g, 0) + tail[NP - 1] - CUR(g, NP - 1))
#define PENDING(g) (tail[0] != CUR(g, 0) || tail[NP - 1] != CUR(g, NP - 1))
#define PUBLISHED (tail[0] + tail[NP - 1])
#define TAKE(g) taken[g] = taken[g] + UNT(g); CUR(g, 0) = tail[0]; CUR(g, NP - 1) = tail[NP - 1]
#define TOOK(g) (CUR(g, 0) + CUR(g, NP - 1))
#else
#define UNT(g) (tail[0] - CUR(g, 0))
#define PENDING(g) (tail[0] != CUR(g, 0))
#define PUBLISHED tail[0]
#define TAKE(g) taken[g] = taken[g] + UNT(g); CUR(g, 0) = tail[0]
#define TOOK(g) CUR(g, 0)
#endif
#define READY(g) (PENDING(g) || closed)
/* ready() found records: it takes them (a take in the step that saw them) */
#define READY_TAKE if :: PENDING(g) -> TAKE(g); lin = 1 :: else -> skip fi
/* ghost: nothing more will come for the group (no closer: it must wake us) */
#define FINISHED(g) (!CLOSING && pdone == NP && !PENDING(g))

/* pcs of Member */
#define W_TRY    1
#define W_HOW    2
#define L_MIN    4
#define L_OR     5
#define L_MIN1   7
#define L_CHK    8
#define L_WD     9
#define F_SEQ    10
#define F_MIN    11
#define F_OR     12
#define F_CHK    13
#define F_WD     14
#define F_WAIT   15
#define F_NFSNAP 16
#define F_WD0    17
#define A_DRAIN  20
#define A_HOW    21
#define A_LMIN   22
#define A_LOR    23
#define A_LCHK   24
#define A_LWD    25
#define A_MIN    26
#define A_OR     27
#define A_CHK    28
#define A_WD     29
#define A_DRAIN2 30
#define A_NFSNAP 31
#define A_WD0    32
#define D_WAITL  33
#define D_WAIT   34
#define D_CANCEL 35
#define M_END    40

/* Announcing and withdrawing, as the C does: a blocking call announces
 * WAIT_FUTEX, and WAIT_FUTEX | WAIT_FD when the process's readiness fd is armed
 * on the place (armed: struct member_fifo.armed), and then leaves the bit to the
 * fd when it returns (finish keeps it, wait_how back to WAIT_FD); an arm stores
 * WAIT_FD and armed = 1; its "ready now" and a disarm clear the bit and armed. */
#define LOCKFREE 1
#define ANNOUNCE_MIN(k, hw) wake_min[pl] = (k)
#define ANNOUNCE_OR mask = mask | mine
#define FINISH \
	if \
	:: arm_w -> REACHED(8); how[pl] = WAIT_FD; arm_w = 0   /* the fd's: kept */ \
	:: else -> mask = mask & ~mine \
	fi
#define ARM_OUT mask = mask & ~mine; armed[pl] = 0
#define CALL_HOW arm_w = armed[pl]; how[pl] = (arm_w -> WAIT_FUTEX | WAIT_FD : WAIT_FUTEX)
#define ARM_HOW how[pl] = WAIT_FD; armed[pl] = 1

/* the thread's wait: blocking, or through the readiness fd */
#define USES_FD(w) ((FD >> (w)) & 1)
#define CHOOSES(w) ((MIXED >> (w)) & 1)

proctype Member(byte me)
{
	byte pc = W_TRY, pl, g, mine, s, nc;
	bool lin = 1, snap, annb, arm_w;
	pl = PLACE(me); g = GRP(pl); mine = 1 << pl;
	do
	/* ---- the consumer call: ready() takes what the group has ---- */
	:: d_step { pc == W_TRY && PENDING(g) -> TAKE(g); lin = 1 }   /* the call returns them */
	:: d_step { pc == W_TRY && ((STOP >> me) & 1) -> pc = M_END }   /* done with the channel */
	:: d_step { pc == W_TRY && !PENDING(g) && closed -> pc = M_END }   /* ECLOSED */
	:: d_step { pc == W_TRY && FINISHED(g) -> pc = M_END }
	/* nothing: wait */
	:: d_step { pc == W_TRY && !READY(g) && !FINISHED(g) && !USES_FD(me) -> pc = W_HOW }
	:: d_step { pc == W_TRY && !READY(g) && !FINISHED(g) && (USES_FD(me) || CHOOSES(me)) ->
		pc = A_DRAIN }
	/* ---- wait_for_data_slow, rmpsc__wait ---- */
	:: d_step { pc == W_HOW -> CALL_HOW;
		if :: K > 1 -> pc = L_MIN :: else -> pc = F_SEQ fi }
	/* linger: announce wake_min = K, unfenced, and sleep until a wake or the
	 * linger's end (any moment) */
	:: d_step { pc == L_MIN && LOCKFREE -> ANNOUNCE_MIN(K, WAIT_FUTEX); pc = L_OR }
	:: d_step { pc == L_OR -> ANNOUNCE_OR; pc = L_MIN1 }   /* futex_wait: woken, or timed out */
	:: d_step { pc == L_MIN1 -> wake_min[pl] = 1; pc = L_CHK }
	:: d_step { pc == L_CHK ->
		if
		:: READY(g) -> REACHED(6); READY_TAKE; pc = L_WD
		:: else -> pc = F_SEQ                  /* still announced: renewed below */
		fi }
	:: d_step { pc == L_WD && LOCKFREE -> FINISH; pc = W_TRY }     /* finish() */
	/* the fenced wait */
	:: d_step { pc == F_SEQ -> s = seq[pl]; pc = F_MIN }
#ifndef NO_FENCE
	:: d_step { pc == F_MIN && LOCKFREE -> ANNOUNCE_MIN(FENCED_MIN, WAIT_FUTEX); pc = F_OR }
#else
	:: d_step { pc == F_MIN && LOCKFREE -> ANNOUNCE_MIN(FENCED_MIN, WAIT_FUTEX); pc = F_NFSNAP }
	:: d_step { pc == F_NFSNAP -> snap = READY(g); pc = F_OR }   /* negative: the re-check's loads first */
#endif
#ifndef WITHDRAW_BEFORE_CHECK
	:: d_step { pc == F_OR -> ANNOUNCE_OR; pc = F_CHK }            /* then the fence */
#else
	:: d_step { pc == F_OR -> ANNOUNCE_OR; pc = F_WD0 }
	:: d_step { pc == F_WD0 -> mask = mask & ~mine; pc = F_CHK }  /* negative: withdrawn first */
#endif
	:: d_step { pc == F_CHK ->
#ifndef NO_FENCE
		snap = READY(g);
#endif
		if
#ifndef WITHDRAW_BEFORE_CHECK
		:: snap -> READY_TAKE; pc = F_WD
#else
		:: snap -> READY_TAKE; pc = W_TRY
#endif
		:: else -> pc = F_WAIT
		fi;
		snap = 0 }
	:: d_step { pc == F_WD && LOCKFREE -> FINISH; pc = W_TRY }     /* finish() */
	:: d_step { pc == F_WAIT && seq[pl] != s ->                /* woken: again */
		if :: PENDING(g) -> REACHED(3) :: else -> skip fi;
		if :: closed && !PENDING(g) -> REACHED(5) :: else -> skip fi;
		s = 0; pc = F_SEQ }
	:: d_step { pc == F_WAIT && FINISHED(g) -> s = 0; pc = M_END }

	/* ---- rmpsc_ready_arm ---- */
#ifndef ARM_NO_DRAIN_ORDER
	:: d_step { pc == A_DRAIN -> fifo[pl] = 0; pc = A_HOW }      /* drain before looking */
#else
	:: d_step { pc == A_DRAIN -> pc = A_HOW }
#endif
	:: d_step { pc == A_HOW && closed -> pc = W_TRY }          /* return 1 */
	:: d_step { pc == A_HOW && !closed && lin && K > 1 ->      /* within the delay: linger */
		ARM_HOW; pc = A_LMIN }
	:: d_step { pc == A_HOW && !closed && !(lin && K > 1) ->
		ARM_HOW; pc = A_MIN }
	:: d_step { pc == A_HOW && !closed && lin && K > 1 ->      /* the delay has passed */
		ARM_HOW; lin = 0; pc = A_MIN }
	:: d_step { pc == A_LMIN && LOCKFREE -> ANNOUNCE_MIN(K, WAIT_FD); pc = A_LOR }
	:: d_step { pc == A_LOR -> ANNOUNCE_OR; pc = A_LCHK }
	:: d_step { pc == A_LCHK ->
		if
		:: UNT(g) >= K -> pc = A_LWD
#ifndef ARM_NO_DRAIN_ORDER
		:: else -> pc = D_WAITL                /* armed for the rest of the delay */
#else
		:: else -> fifo[pl] = 0; pc = D_WAITL
#endif
		fi }
	:: d_step { pc == A_LWD && LOCKFREE -> ARM_OUT; pc = W_TRY }
#ifndef NO_FENCE
	:: d_step { pc == A_MIN && LOCKFREE -> ANNOUNCE_MIN(FENCED_MIN, WAIT_FD); pc = A_OR }
#else
	:: d_step { pc == A_MIN && LOCKFREE -> ANNOUNCE_MIN(FENCED_MIN, WAIT_FD); pc = A_NFSNAP }
	:: d_step { pc == A_NFSNAP -> snap = READY(g); pc = A_OR }   /* negative */
#endif
#ifndef WITHDRAW_BEFORE_CHECK
	:: d_step { pc == A_OR -> ANNOUNCE_OR; pc = A_CHK }            /* then the fence */
#else
	:: d_step { pc == A_OR -> ANNOUNCE_OR; pc = A_WD0 }
	:: d_step { pc == A_WD0 -> mask = mask & ~mine; pc = A_CHK }  /* negative */
#endif
	:: d_step { pc == A_CHK ->
#ifndef NO_FENCE
		snap = READY(g);
#endif
		if
#ifndef WITHDRAW_BEFORE_CHECK
		:: snap -> pc = A_WD
#else
		:: snap -> pc = W_TRY
#endif
#ifndef ARM_NO_DRAIN_ORDER
		:: else -> pc = D_WAIT                 /* armed, no limit */
#else
		:: else -> pc = A_DRAIN2
#endif
		fi;
		snap = 0 }
	:: d_step { pc == A_WD && LOCKFREE -> ARM_OUT; pc = W_TRY }
	:: d_step { pc == A_DRAIN2 -> fifo[pl] = 0; pc = D_WAIT }   /* negative: drained after the look */
	/* the caller's wait on the fd, then it consumes with timeout 0 */
	:: d_step { pc == D_WAITL -> pc = W_TRY }                  /* readable, or the delay's end */
	:: d_step { pc == D_WAIT && fifo[pl] ->
		if :: PENDING(g) -> REACHED(4) :: else -> skip fi;
		if :: closed && !PENDING(g) -> REACHED(5) :: else -> skip fi;
		pc = W_TRY }
	:: d_step { pc == D_WAIT && FINISHED(g) -> pc = M_END }
	:: d_step { (pc == D_WAIT || pc == D_WAITL) && nc < NCANCEL -> nc++; pc = D_CANCEL }
	:: d_step { pc == D_CANCEL && LOCKFREE -> REACHED(7); ARM_OUT; pc = W_TRY }   /* rmpsc_ready_disarm */

	:: d_step { pc == M_END ->
		assert(!PENDING(g) || ((STOP >> me) & 1));
		assert(taken[g] == TOOK(g));
		assert(PENDING(g) || taken[g] == PUBLISHED);
		pc = 0 }; break
	od
}

/* ---- a producer (r < NP) after each publish; the closer (r == NP) ---- */
#define NO_SLOT NP
#define NEXT_BIT \
	if \
	:: mb & 1 -> e = 0; pc = (r == NO_SLOT -> P_AND : P_K) \
	:: (mb & 3) == 2 -> e = 1; pc = (r == NO_SLOT -> P_AND : P_K) \
	:: mb == 0 -> e = 0; pc = P_PUB \
	fi
#define SKIP_BIT mb = mb & ~(1 << e); NEXT_BIT

#define P_PUB   1
#define P_MASK  2
#define P_K     3
#define P_CUR   4
#define P_AND   5
#define P_HOW   6
#define P_SEQ   7
#define P_FIFO  8
#define P_NFPUB 9

proctype Waker(byte r)
{
	byte pc = P_PUB, mb, e, k, h;
	do
#ifndef PRODUCER_NO_FENCE
	:: d_step { pc == P_PUB && r < NP && tail[r] < NRECS(r) && !closed -> tail[r]++; pc = P_MASK }
#else
	:: d_step { pc == P_PUB && r < NP && tail[r] < NRECS(r) && !closed -> mb = mask; pc = P_NFPUB }
	:: d_step { pc == P_NFPUB -> tail[r]++; NEXT_BIT }            /* negative: mask loaded first */
#endif
	:: d_step { pc == P_PUB && r < NP && (tail[r] == NRECS(r) || closed) -> pdone++; pc = 0 }; break
	:: d_step { pc == P_PUB && r == NO_SLOT && !closed -> closed = 1; pc = P_MASK }   /* seq_cst */
	:: d_step { pc == P_PUB && r == NO_SLOT && closed -> pc = 0 }; break
	/* fence; the mask */
	:: d_step { pc == P_MASK -> mb = mask; NEXT_BIT }
	/* wants_wake: wake_min; above 1, the untaken records of e's group on our ring */
	:: d_step { pc == P_K -> k = wake_min[e];
		if :: k <= 1 -> k = 0; pc = P_AND :: else -> pc = P_CUR fi }
	:: d_step { pc == P_CUR ->
		if
		:: tail[r] - CUR(GRP(e), r) >= k -> REACHED(2); k = 0; pc = P_AND
		:: else -> REACHED(1); k = 0; SKIP_BIT         /* under the threshold: the bit stays */
		fi }
	/* one waker per announcement: whoever clears the bit signals */
	:: d_step { pc == P_AND ->
		if
		:: mask & (1 << e) -> mask = mask & ~(1 << e); pc = P_HOW
		:: else -> SKIP_BIT
		fi }
	:: d_step { pc == P_HOW -> h = how[e]; pc = P_SEQ }
	:: d_step { pc == P_SEQ ->
		if :: h & WAIT_FUTEX -> seq[e]++ :: else -> skip fi;   /* and FUTEX_WAKE */
		if :: h & WAIT_FD -> pc = P_FIFO :: else -> h = 0; SKIP_BIT fi }
	:: d_step { pc == P_FIFO -> fifo[e] = 1; h = 0; SKIP_BIT }
	od
}

init
{
	atomic {
		run Member(0);
#if NM > 1
		run Member(1);
#endif
		run Waker(0);
#if NP > 1
		run Waker(1);
#endif
#ifdef CLOSE
		run Waker(NO_SLOT)
#endif
	}
}
