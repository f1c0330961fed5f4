/*
 * Shared by the models: the kernel's OFD lock, process death, and the attachment
 * table of csrc/attach.c (see attach.h for the protocol modelled here).
 *
 * A process is a slot p of a small process table; several proctypes may run
 * for one process (its threads). Death is the `killer` below: at any step it may
 * stop a process (its threads leave their bodies through `unless { dead[p] }`),
 * and the kernel drops the process's locks in the same step. What the process
 * wrote to shared memory stays. Memory is sequentially consistent here: the
 * acquire/release orders of the C code are abstracted away.
 */
#define NE 2                   /* attachment entries (ATTACH_SLOTS) */
#define ID(i, g) ((g) * NE + (i)) /* owner identity (index, generation); 0: no owner */
#define IDX(id) ((id) % NE)
#define GEN(id) ((id) / NE)

byte gen[NE];                  /* attach_entry.gen */
byte locker[NE];               /* kernel: holder of the OFD lock on entry i's byte, p+1; 0 unlocked */
bool dead[NPROC];              /* the process in table slot p is gone (died, or exec'd) */
byte myid[NPROC];              /* ghost: the identity p is attached with (0: none) */
byte deaths;                   /* deaths so far (bounded by MAXDEATHS) */

/* Is (i, g) held by a live process? Ghost truth, for the properties only. */
#define LIVE_ID(x) ((x) != 0 && (myid[0] == (x) || myid[1] == (x) || myid[2] == (x)))

/* The kernel: process p dies (or execs: its O_CLOEXEC description closes). */
inline kill(p)
{
	dead[p] = 1;
	myid[p] = 0;
	if /* NE == 2 entries; a process holds at most one */
	:: locker[0] == p + 1 -> locker[0] = 0
	:: locker[1] == p + 1 -> locker[1] = 0
	:: else -> skip
	fi;
	deaths++
}

/* rmpsc__attach -> take_entry: F_OFD_SETLK entry i (atomic, fails if held), then
 * bump its generation. `me` is 0 on ENOSLOT. The pid hint and its first pass
 * only change which entry is tried first: one pass over all entries here. */
inline attach(p, me, i, got)
{
	i = 0;
	got = 0;
	do
	:: i == NE -> break
	:: i < NE ->
		atomic {
			if
			:: locker[i] == 0 -> locker[i] = p + 1; got = 1 /* F_OFD_SETLK */
			:: else -> i++                              /* EAGAIN: held by a live process */
			fi
		}
		if
		:: got -> break
		:: else -> skip
		fi
	od;
	if
	:: got ->
		/* Only the lock holder writes the entry: store_release(&e->gen, gen + 1). */
		d_step { gen[i] = gen[i] + 1; me = ID(i, gen[i]); myid[p] = me; i = 0; got = 0 }
	:: else -> d_step { me = 0; i = 0 }
	fi
}

/* rmpsc__attach_close, last handle: clear the pid hint, close the description
 * (the kernel drops the lock). */
inline detach(p, me)
{
	d_step { locker[IDX(me)] = 0; myid[p] = 0; me = 0 }
}

/* rmpsc__owner_alive(id) as seen by `me`: our own identity; else generation
 * first (one load), then F_OFD_GETLK (another step); the holder locks before it
 * bumps, so this can err only towards alive. */
inline owner_alive(id, me, alive)
{
	if
	:: id == me -> alive = 1
	:: else ->
		if
#ifndef NO_GEN_CHECK
		:: gen[IDX(id)] != GEN(id) -> alive = 0    /* load_acquire(&e->gen) */
#else
		:: false                /* negative variant: GETLK alone; a newcomer on the entry keeps a dead owner alive */
#endif
		:: else -> alive = (locker[IDX(id)] != 0)  /* F_OFD_GETLK: is the byte locked? */
		fi
	fi
}

/* Death may come at any step of any process, up to MAXDEATHS times. */
active proctype killer()
{
end:
	do
	:: atomic { deaths < MAXDEATHS && !dead[0] && KILLABLE(0) -> kill(0) }
	:: atomic { deaths < MAXDEATHS && !dead[1] && KILLABLE(1) -> kill(1) }
	:: atomic { deaths < MAXDEATHS && !dead[2] && KILLABLE(2) -> kill(2) }
	od
}
