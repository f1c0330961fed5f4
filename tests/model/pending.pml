/*
 * A bound on records in flight: rmpsc_wait_pending_below (csrc/consumer.c:
 * pending_below; csrc/wait.h: announce with `limit`) and the wake-up after every
 * release (csrc/notify.h: wake_after_release, wake_progress;
 * rmpsc__pending_at_limit). Run by tests/model/run.sh.
 *
 * NS senders (Sender i) each send NREC records into ring i, each only once fewer
 * than LIMIT records are pending over all rings; NC consumers (Consumer j) release
 * records from any ring until all NS * NREC are released. Shared words, as in the
 * region header: `flag` (progress_waiting: PENDING, a pending waiter's bit; FUTEX,
 * a slab waiter's), `lim` (pending_limit: the largest limit announced since the
 * last wake-up; 0: unknown, wake whenever the flag is set) and `seq`
 * (progress_seq, the futex word), and `ring[i]` (records pending on ring i).
 *
 * Sender (rmpsc_wait_pending_below, then a send):
 *   S_SEQ s = seq; S_LIM lim = max(lim, LIMIT) (CAS loop: one step); S_FLAG flag |=
 *   PENDING; fence; S_CHK pending = ring[0] + ring[1], read ring by ring (a
 *   snapshot others change meanwhile): below LIMIT: send (ring[i]++), else
 *   S_WAIT futex_wait(seq, s): blocks until seq != s; then again from S_SEQ.
 * Consumer (a release, then wake_after_release):
 *   release one record of a ring (ring[k]--); fence; C_FLAG f = flag; none: done;
 *   f == PENDING only: C_LIM l = lim, C_P pending read ring by ring; l != 0 and
 *   pending >= l: nobody can pass yet, leave the flag (skip); else C_XCHG
 *   xchg(flag, 0), C_CLR lim = 0, C_BUMP seq++ and FUTEX_WAKE (every waiter).
 *   A slab waiter (-DSLAB, Slab below) announces FUTEX with a plain store and is
 *   woken by any release.
 *
 * Every 32nd skip wakes anyway in the C code (a stale announcement's cost); that
 * only adds wake-ups, so the model lets every release skip.
 * Memory is sequentially consistent (each step one load, store or
 * read-modify-write of the C code; both sides fence between their stores and
 * loads, wake_after_release's slow path with a full fence of its own, so that
 * two consumers releasing at once see each other's release).
 * Checked: every process ends (a sender asleep for ever while others have
 * finished is an invalid end state: a lost wake-up); the bound holds (at most
 * LIMIT + NS - 1 records pending, an assertion at each send); a release never
 * skips the wake-up when, as it looked at the flag, a slab waiter's FUTEX bit had
 * been set and not taken by a wake-up since (that waiter would sleep out its
 * slice: an assertion, -DSLAB; the last release always wakes, so such a loss is
 * not a hang the end states could show).
 * Negative variants, each must produce a counterexample:
 *   -DNEG_EARLY_LOOK  the consumer looks at the flag and the pending count before
 *                     its release (its own release then never wakes anybody)
 *   -DNEG_STORE_FLAG  senders announce with a plain store (flag = PENDING), which
 *                     erases a slab waiter's FUTEX bit (with -DSLAB)
 *   -DNEG_BUMP_FIRST  the wake-up bumps seq before it clears lim, and lim 0 counts
 *                     as "skip": a sender that announced after the bump has its
 *                     limit wiped and sleeps through every later release
 */
#ifndef NS
#define NS 2
#endif
#ifndef NC
#define NC 2
#endif
#ifndef NREC
#define NREC 2
#endif
#ifndef LIMIT
#define LIMIT 1
#endif
#define FUTEX   1
#define PENDING 2
#define TOTAL   (NS * NREC)

byte ring[2];
byte flag;
byte lim;
byte seq;
byte released;
byte sent;
byte slab_free = 0; /* -DSLAB: slabs a release frees (one per release) */
bit slab_flagged;   /* ghost: the slab waiter's FUTEX bit is set and no wake-up took it */

inline pending_snapshot(p)
{
	p = ring[0];
	p = p + ring[1]
}

proctype Sender(byte i)
{
	byte n = 0, s, p;
	do
	:: n == NREC -> break
	:: n < NREC ->
again:
		s = seq;
		if
		:: lim < LIMIT -> lim = LIMIT
		:: else -> skip
		fi;
#ifdef NEG_STORE_FLAG
		flag = PENDING;
#else
		flag = flag | PENDING;
#endif
		pending_snapshot(p);
		if
		:: p < LIMIT ->
			atomic {
				ring[i]++;
				sent++;
				assert(ring[0] + ring[1] <= LIMIT + NS - 1)
			};
			n++
		:: else ->
			(seq != s); /* FUTEX_WAIT(seq, s): sleeps until a bump */
			goto again
		fi
	od
}

#ifdef SLAB
/* A slab allocator waiting for one freed slab on the same words (csrc/slab.c). */
proctype Slab()
{
	byte s;
again:
	s = seq;
	atomic { flag = FUTEX; slab_flagged = 1 };
	if
	:: slab_free > 0 -> slab_free--
	:: else ->
		(seq != s);
		goto again
	fi
}
#endif

inline wake_after_release()
{
	atomic { f = flag; slab_seen = slab_flagged };
	if
	:: f == 0 -> skip
	:: else ->
		skip_wake = 0;
		if
		:: f == PENDING ->
			l = lim;
			pending_snapshot(p);
#ifdef NEG_BUMP_FIRST
			if
			:: p >= l -> skip_wake = 1
			:: else -> skip
			fi
#else
			if
			:: l != 0 && p >= l -> skip_wake = 1
			:: else -> skip
			fi
#endif
		:: else -> skip
		fi;
		if
		:: skip_wake -> assert(!slab_seen)
		:: else ->
			atomic {
				f = flag;
				flag = 0;
				if
				:: f & FUTEX -> slab_flagged = 0
				:: else -> skip
				fi
			};
			if
			:: f != 0 ->
#ifdef NEG_BUMP_FIRST
				seq++;
				lim = 0
#else
				lim = 0;
				seq++
#endif
			:: else -> skip
			fi
		fi
	fi
}

proctype Consumer(byte j)
{
	byte f, l, p, k;
	bit skip_wake, took, slab_seen;
	do
	:: released == TOTAL -> break
	:: ring[0] > 0 -> k = 0; goto take
	:: ring[1] > 0 -> k = 1; goto take
	od;
	goto done;
take:
#ifdef NEG_EARLY_LOOK
	wake_after_release();
#endif
	atomic {
		if
		:: ring[k] > 0 -> ring[k]--; released++; slab_free++; took = 1
		:: else -> took = 0 /* the other consumer took it */
		fi
	};
#ifndef NEG_EARLY_LOOK
	if
	:: took -> wake_after_release()
	:: else -> skip
	fi;
#endif
	do
	:: released == TOTAL -> break
	:: ring[0] > 0 -> k = 0; goto take
	:: ring[1] > 0 -> k = 1; goto take
	od;
done:
	skip
}

init
{
	atomic {
		run Sender(0);
		run Sender(1);
		run Consumer(0);
#if NC > 1
		run Consumer(1);
#endif
#ifdef SLAB
		run Slab();
#endif
	}
}
