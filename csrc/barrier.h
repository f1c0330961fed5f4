/*
 * Every memory-ordering primitive ringmpsc uses, in one place: the atomics, the full
 * fence, and the asymmetric fence pair (below). Use sites say in one line why they
 * need the order they use.
 *
 * Shared words are plain integers in the region accessed through the __atomic
 * builtins, so the region layout is ordinary C structs with no _Atomic types.
 */
#ifndef RMPSC_BARRIER_H
#define RMPSC_BARRIER_H

#include <stdint.h>

/*
 * The region is shared by processes that each have their own copy of any lock a
 * libatomic fallback would use: a non-lock-free atomic would silently break.
 */
_Static_assert(__GCC_ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(__GCC_ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(sizeof(long long) == 8, "u64 positions need 64-bit atomics");

#define load_relaxed(p)         __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acquire(p)         __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define load_seq_cst(p)         __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define store_relaxed(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_release(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define store_seq_cst(p, v)     __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define fetch_add_acq_rel(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
/* Strong CAS, acq_rel on success, acquire on failure; *expected updated on failure. */
#define cas_acq_rel(p, expected, desired) \
	__atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define xchg_acq_rel(p, v)      __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define fetch_or_acq_rel(p, v)  __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define fetch_and_acq_rel(p, v) __atomic_fetch_and((p), (v), __ATOMIC_ACQ_REL)
/* Full fence: orders earlier stores before later loads (the Dekker pattern). */
#define smp_mb()                __atomic_thread_fence(__ATOMIC_SEQ_CST)

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ------------------------------------------------------------------------- */
/*
 * Asymmetric fences: the hot side of every Dekker pair pays a compiler barrier,
 * the cold side pays a system call.
 *
 * ringmpsc has two kinds of store -> load pairs that must not both miss each other:
 *   a publish (tail, head, slab free) vs. a sleeper's flag  (wait.h: data, space, slabs)
 *   a producer's `reserving`          vs. `closed`          (producer.c / consumer.c, close/drain)
 * One side runs on every call (a commit, a release, a reserve); the other runs
 * only when a thread is about to sleep or a closed channel is being drained. On a
 * channel created in asymmetric mode the hot side orders its store before its
 * load with a compiler barrier only, and the cold side calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier on every
 * CPU that is running a thread of a registered process (a thread that is not
 * running passes through the scheduler's barriers). Either the hot side's store
 * precedes that barrier on its CPU, and the cold side's load after the system
 * call sees it, or the hot side's load follows it, and sees the cold side's store.
 *
 * The hot side may go light only in a process that registered for those
 * barriers, so every process registers when it creates or maps an asymmetric
 * channel, and mapping fails where it cannot (its cold side would need the same
 * system call). A forked child registers again; if that failed it would keep
 * full fences on its hot side, which is correct with any cold side, and its cold
 * side would poll. A channel created where registration fails (or with
 * RMPSC_CREATE_FULL_FENCES) uses full fences on both sides.
 */
enum fence_mode {
	FENCE_FULL = 1,       /* smp_mb() on both sides */
	FENCE_ASYMMETRIC = 2, /* compiler barrier on the hot side, membarrier() on the cold side */
};

/* 1 while this process is registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED. */
extern int rmpsc__fence_registered;

/* Register this process (once; again after fork). 0, or an errno value. */
int rmpsc__fence_register(void);
/* In a forked child: the registration is the parent's; redo it. */
void rmpsc__fence_on_fork_child(void);

/*
 * The cold side's barrier on an asymmetric channel. Returns 0 when every CPU
 * running a registered process has passed a full barrier; -1 when membarrier
 * failed (Linux does not fail it once registration worked), after a local
 * smp_mb(): the caller must then not rely on waking (it polls instead).
 */
int rmpsc__heavy_barrier(void);

/* The hot side's barrier: orders the caller's earlier stores before its later loads. */
static inline void hot_barrier(int light)
{
	if (likely(light))
		__atomic_signal_fence(__ATOMIC_SEQ_CST); /* compiler only: the cold side's membarrier does the rest */
	else
		smp_mb();
}

/* May this process take the light hot side on a channel in mode `asymmetric`? */
static inline int hot_light(int asymmetric)
{
	return asymmetric & load_relaxed(&rmpsc__fence_registered);
}

/* The cold side's barrier for a channel; returns 0, or -1 as rmpsc__heavy_barrier. */
static inline int cold_barrier(int asymmetric)
{
	if (asymmetric)
		return rmpsc__heavy_barrier();
	smp_mb();
	return 0;
}

#endif /* RMPSC_BARRIER_H */
