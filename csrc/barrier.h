/*
 * Every memory-ordering primitive ringmpsc uses, in one place. Use sites say in one
 * line why they need the order they use.
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

#define load_relaxed(p)       __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acquire(p)       __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define load_seq_cst(p)       __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define store_relaxed(p, v)   __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_release(p, v)   __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define store_seq_cst(p, v)   __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define fetch_add_acq_rel(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
/* Strong CAS, acq_rel on success, acquire on failure; *expected updated on failure. */
#define cas_acq_rel(p, expected, desired) \
	__atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
/* Full fence: orders earlier stores before later loads (the Dekker pattern). */
#define smp_mb()              __atomic_thread_fence(__ATOMIC_SEQ_CST)

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif /* RMPSC_BARRIER_H */
