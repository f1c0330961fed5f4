/*
 * ringmpsc — lock-free rings of fixed-size records in one shared-memory region.
 *
 * A channel is a single contiguous region (memfd or POSIX shm) holding a header,
 * one SPSC ring per producer slot and an optional slab pool. The region contains
 * offsets and positions only, never pointers, so the same bytes work between
 * threads, across fork() and between unrelated processes.
 *
 * Roles
 *   - Producer: a process-local handle bound to one ring slot. One thread at a
 *     time may use a given producer handle. Different producers never contend.
 *   - Consumer: a process that is a *member* of a consumer *group* (the default
 *     group unless it joined another; joined on its first consumer call). Every
 *     group receives every record committed after it was created (fan-out);
 *     inside a group each record goes to one member (work sharing). A channel has
 *     room for max_consumers members (1 by default: one consumer process, taken
 *     over when it dies). Handles of one process in one group share its
 *     membership; one thread at a time may call the consumer functions of them.
 *
 * Ordering guarantees
 *   - FIFO per producer within a group that has one member; with several members
 *     each takes its own batches (claims), so a group's members together see every
 *     record once but no order holds across members. No order across producers.
 *   - Every committed record is delivered to every group, exactly once to a live
 *     member. Records a member took but did not release (advance past) before
 *     dying are delivered again to another member of its group (marked: see
 *     rmpsc_deliveries), or dropped in a group created RMPSC_GROUP_AT_MOST_ONCE.
 *   - A commit is a release operation and a read is an acquire operation: all
 *     writes the producer made to the records (and anything before them) are
 *     visible to the consumer that reads them.
 *
 * Timeouts (every function taking `timeout_ns`)
 *   0 = try once and never block, < 0 = block until success, close or error,
 *   > 0 = block for at most that many nanoseconds (CLOCK_MONOTONIC).
 *
 * Errors
 *   Functions returning `int` return a non-negative value on success and one of
 *   the negative `RMPSC_E*` codes on failure. rmpsc_strerror() names a code;
 *   rmpsc_last_error() gives this thread's detailed message of the last failure
 *   (naming the argument or field at fault, or the failing system call and errno).
 *   A failing call changes nothing that was already committed.
 */
#ifndef RINGMPSC_H
#define RINGMPSC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RMPSC_API __attribute__((visibility("default")))
#else
#define RMPSC_API
#endif

/* RMPSC_VERSION_MAJOR, _MINOR, _PATCH, _STRING: generated from VERSION. */
#include "ringmpsc_version.h"

/* Geometry bounds, validated on create and on every open/attach. */
#define RMPSC_MAX_RECORD_SIZE 65536u /* bytes */
#define RMPSC_MIN_CAPACITY    2u     /* records per ring */
#define RMPSC_MAX_CAPACITY    (1u << 24)
#define RMPSC_MAX_PRODUCERS   1024u
#define RMPSC_MAX_SLAB_SIZE   (1u << 26) /* 64 MiB */
#define RMPSC_MAX_SLAB_COUNT  (1u << 24)
#define RMPSC_MAX_REGION_SIZE (1ull << 40) /* 1 TiB */
#define RMPSC_MAX_CONSUMERS   256u         /* member places (consumer processes at a time) */
#define RMPSC_MAX_GROUPS      64u
#define RMPSC_GROUP_NAME_MAX  31u /* bytes of a group name, without the NUL */
#define RMPSC_INVALID_HANDLE  UINT32_MAX

/* The one error vocabulary. Every failure is one of these. */
enum rmpsc_error {
	RMPSC_OK = 0,
	RMPSC_EFULL = -1,     /* no space (ring full, or slab pool exhausted) */
	RMPSC_EEMPTY = -2,    /* nothing to read right now */
	RMPSC_ECLOSED = -3,   /* producer: channel closed; consumer: closed AND drained */
	RMPSC_ETIMEDOUT = -4, /* a blocking call reached its deadline */
	RMPSC_ENOSLOT = -5,   /* no free producer slot */
	RMPSC_ECONSUMER =
		-6, /* no consumer place free (the one consumer role, or every member place, held by live processes) */
	RMPSC_EINVAL = -7,   /* invalid argument or call sequence */
	RMPSC_ECORRUPT = -8, /* region is not a valid channel, or a ring was fenced off */
	RMPSC_ESYS = -9,     /* a system call failed; errno is preserved */
	RMPSC_EFORKED = -10, /* handle was created in another process (inherited by fork) */
	RMPSC_EINTR = -11,   /* wait interrupted by a signal (RMPSC_OPEN_INTERRUPTIBLE only) */
};

/* Name of an error code ("ring full", ...). Never NULL. */
RMPSC_API const char *rmpsc_strerror(int err);
/* Detailed message for this thread's most recent failure. Never NULL. */
RMPSC_API const char *rmpsc_last_error(void);

/* ------------------------------------------------------------------------- */
/* Standalone SPSC ring in caller-owned memory (no blocking, no region header). */

/*
 * A process-local view of one ring. The fields are private; the struct is public
 * only so callers can place it on the stack or embed it.
 */
typedef struct rmpsc_ring {
	void *ctrl_;
	unsigned char *data_;
	uint64_t mask_;
	uint32_t record_size_;
	uint32_t reserved_; /* records of the open reservation */
} rmpsc_ring;

/* Bytes of memory a ring of this geometry needs (0 if the geometry is invalid). */
RMPSC_API size_t rmpsc_ring_footprint(uint32_t record_size, uint32_t capacity);
/*
 * Format `mem` (`size` bytes, 128-byte aligned, shared or not) as an empty ring and
 * fill `ring`. `start_position` is the first record position (tests start near
 * UINT64_MAX to cross the wrap; pass 0 normally). Not thread-safe with users of
 * the same memory. Errors: EINVAL.
 */
RMPSC_API int rmpsc_ring_init(rmpsc_ring *ring, void *mem, size_t size, uint32_t record_size, uint32_t capacity,
			      uint64_t start_position);
/* View a ring another party formatted in `mem`. Validates geometry. Errors: EINVAL, ECORRUPT. */
RMPSC_API int rmpsc_ring_attach(rmpsc_ring *ring, void *mem, size_t size);

/* Producer side (one thread). Returns granted count k (1 <= k <= want; shorter at
 * the wrap) and the start of k contiguous writable records in *ptr; EFULL; EINVAL
 * (want == 0, or a reservation is already open); ECORRUPT (head is impossible). */
RMPSC_API int rmpsc_ring_reserve(rmpsc_ring *ring, size_t want, void **ptr);
/* Publish the first n (<= granted) records of the open reservation and close it;
 * n == 0 aborts it. Release ordering. Errors: EINVAL (n too large, nothing open). */
RMPSC_API int rmpsc_ring_commit(rmpsc_ring *ring, size_t n);
/* Copy `count` records from `records` in; returns records sent (0..count, may be
 * less when full), or EINVAL / ECORRUPT when none were sent. Never blocks. */
RMPSC_API int rmpsc_ring_send(rmpsc_ring *ring, const void *records, size_t count);

/* Consumer side (one thread). Returns k readable contiguous records (1..max) at
 * *ptr, or EEMPTY, EINVAL (max == 0), ECORRUPT (tail is impossible). Acquire
 * ordering. The span stays valid until advanced. */
RMPSC_API int rmpsc_ring_readable(rmpsc_ring *ring, size_t max, const void **ptr);
/* Free the first n readable records (release ordering). Errors: EINVAL. */
RMPSC_API int rmpsc_ring_advance(rmpsc_ring *ring, size_t n);
/* Copy out up to max records into buf; returns count, or EEMPTY, EINVAL, ECORRUPT. */
RMPSC_API int rmpsc_ring_recv(rmpsc_ring *ring, void *buf, size_t max);

/*
 * Batch callback. Receives `count` contiguous records at `records` from producer
 * slot `slot` (0 for a standalone ring). Return 0 to go on, non-zero to stop after
 * this span. The span is consumed either way.
 */
typedef int (*rmpsc_consume_fn)(void *ctx, const void *records, size_t count, uint32_t slot);
/* Hand up to max records to fn in contiguous spans, then free them with one
 * advance each. Returns records consumed, or EEMPTY, EINVAL (max == 0), ECORRUPT. */
RMPSC_API int rmpsc_ring_consume(rmpsc_ring *ring, size_t max, rmpsc_consume_fn fn, void *ctx);
/* Records committed and not yet advanced past (a snapshot). */
RMPSC_API uint64_t rmpsc_ring_pending(const rmpsc_ring *ring);
RMPSC_API uint32_t rmpsc_ring_capacity(const rmpsc_ring *ring);

/* ------------------------------------------------------------------------- */
/* Channels: the shared region. */

typedef struct rmpsc_channel rmpsc_channel;   /* process-local handle */
typedef struct rmpsc_producer rmpsc_producer; /* process-local handle */

struct rmpsc_config {
	uint32_t record_size;    /* 1 .. RMPSC_MAX_RECORD_SIZE */
	uint32_t capacity;       /* records per producer ring, power of two */
	uint32_t max_producers;  /* 1 .. RMPSC_MAX_PRODUCERS */
	uint32_t slab_size;      /* 0, or bytes per slab */
	uint32_t slab_count;     /* 0, or number of slabs (both or neither) */
	uint64_t start_position; /* first ring position; 0 normally (tests use ~UINT64_MAX) */
	uint32_t max_consumers;  /* 0 or 1: one consumer process; up to RMPSC_MAX_CONSUMERS members */
	uint32_t max_groups;     /* 0: as many as max_consumers; 1 .. RMPSC_MAX_GROUPS */
	/*
	 * Who may open the region file (create only; rmpsc_channel_config reports the
	 * file's). Set before the region is published, so no process ever opens it with
	 * other permissions, and exactly (the umask does not apply). Every process that
	 * uses a channel, producers included, opens its file again to attach, so each
	 * needs read and write permission on it.
	 */
	uint32_t mode; /* permission bits, 0 .. 0777, at least 0600; 0: 0600 */
	uint32_t gid;  /* the file's group; 0: the creator's effective group (group 0 cannot be given) */
};

/* Flags for create/open/attach. */
#define RMPSC_OPEN_INTERRUPTIBLE 0x1u /* waits return RMPSC_EINTR when a signal arrives */
/*
 * create only: full fences on every call instead of asymmetric ones. By default a
 * channel's per-call paths (commit, release, reserve) pay a compiler barrier and
 * a thread about to sleep, or a consumer draining a closed channel, pays
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (Linux >= 4.16); every process that
 * maps such a channel registers for those barriers at create/open/attach, which
 * fails (ESYS) where membarrier is unavailable (old kernel, seccomp). Use this
 * flag for channels that such processes must map. It is chosen automatically
 * when the creating process cannot register.
 */
#define RMPSC_CREATE_FULL_FENCES 0x2u

/*
 * Create a channel. name == NULL: anonymous (memfd), shareable by fork or by
 * passing rmpsc_channel_fd(). Otherwise a POSIX shm name ("/jobs" or "jobs"),
 * created with config->mode (default 0600) and group config->gid; an existing name
 * is never overwritten (ESYS, errno EEXIST). Nothing unlinks a name but
 * rmpsc_unlink: the region outlives every process until then.
 * Errors: EINVAL (geometry or mode, naming the field), ESYS (the group: the
 * creator must be root or a member of it).
 */
RMPSC_API int rmpsc_channel_create(rmpsc_channel **out, const char *name, const struct rmpsc_config *config,
				   unsigned flags);
/* Open an existing named channel. Errors: EINVAL, ESYS (ENOENT, EACCES...),
 * ECORRUPT (any header field inconsistent, or the file smaller than claimed). */
RMPSC_API int rmpsc_channel_open(rmpsc_channel **out, const char *name, unsigned flags);
/* Attach to a channel by file descriptor (dup'ed; the caller keeps `fd`).
 * Errors as rmpsc_channel_open. */
RMPSC_API int rmpsc_channel_attach_fd(rmpsc_channel **out, int fd, unsigned flags);
/* Remove a name (the region lives on while mapped). Errors: EINVAL, ESYS. */
RMPSC_API int rmpsc_unlink(const char *name);
/*
 * Release this process's handle: unmaps and closes the fd. Releases the consumer
 * role if this handle holds it. Does not close the channel for others. Producers
 * made from this handle must be closed first (their memory goes with the mapping).
 */
RMPSC_API void rmpsc_channel_release(rmpsc_channel *ch);

/* The mapping's file descriptor (owned by the handle; dup it to keep it). */
RMPSC_API int rmpsc_channel_fd(const rmpsc_channel *ch);
/* Geometry, as validated at open. */
RMPSC_API void rmpsc_channel_config(const rmpsc_channel *ch, struct rmpsc_config *out);
/* Name given at create/open, or NULL for an anonymous channel. */
RMPSC_API const char *rmpsc_channel_name(const rmpsc_channel *ch);

/*
 * Close the channel for everyone, from any thread or process: producers'
 * reservations and sends fail with ECLOSED from now on, every blocked waiter
 * wakes, the consumer still receives everything committed (including reservations
 * open at the moment of close that are then committed), then ECLOSED.
 * Idempotent. Returns RMPSC_OK.
 */
RMPSC_API int rmpsc_channel_close(rmpsc_channel *ch);
/* 1 if closed, 0 if not. */
RMPSC_API int rmpsc_channel_is_closed(const rmpsc_channel *ch);

/* ------------------------------------------------------------------------- */
/* Producers. */

/*
 * Register a producer: claims a free ring slot for this process. When no slot is
 * free, slots of dead owners and drained deregistered slots are reclaimed first.
 * The first call that needs an identity (register, consumer calls, slab_alloc,
 * reclaim) attaches this process to the channel: it locks an entry of the
 * region's attachment table through its own open file description (opened when
 * the process made its first handle on the region, via /proc or by name), which
 * the kernel unlocks when the process dies or
 * execs; that lock is what "alive" means everywhere in this API.
 * Errors: ENOSLOT (no free slot, or all attachment entries held), ECLOSED, ESYS.
 */
RMPSC_API int rmpsc_producer_register(rmpsc_channel *ch, rmpsc_producer **out);
/*
 * rmpsc_producer_register, waiting per timeout_ns (0 try once, < 0 forever) while
 * every slot is taken: a slot comes free when its producer closed or died and
 * its records are consumed. Polls (no process is told when a slot frees).
 * Errors: as rmpsc_producer_register, ETIMEDOUT, EINTR (RMPSC_OPEN_INTERRUPTIBLE).
 */
RMPSC_API int rmpsc_producer_register_wait(rmpsc_channel *ch, int64_t timeout_ns, rmpsc_producer **out);
/*
 * Deregister and free the handle. Committed records stay readable; the slot is
 * reused once the consumer has drained it. An open reservation is aborted.
 * Safe on NULL. A handle inherited through fork is only freed (the parent's ring
 * is left alone).
 */
RMPSC_API void rmpsc_producer_close(rmpsc_producer *p);
/* The producer's slot index (0 .. max_producers-1). */
RMPSC_API uint32_t rmpsc_producer_slot(const rmpsc_producer *p);
/*
 * Count `n` records the caller gave up on (typically: a send that found the
 * channel full, where waiting is not an option, as in nginx's log phase). The
 * counts live in the region, in this producer's slot, so every process reads them
 * (rmpsc_stats: dropped, drop_episodes) and they survive the producer's death.
 * An episode is a run of drops with no record committed in between: a drop after
 * a commit (or the first ever) starts one. Nothing else changes. Errors: EINVAL,
 * EFORKED.
 */
RMPSC_API int rmpsc_producer_count_dropped(rmpsc_producer *p, uint64_t n);
/*
 * Readiness for a producer waiting for space in an event loop, as the consumer's
 * (rmpsc_ready_fd): a descriptor owned by the producer handle (a FIFO in /dev/shm
 * that consumers open by name) that becomes readable when space was freed or the
 * channel closed. After a send with timeout 0 failed with EFULL, call
 * rmpsc_producer_ready_arm: 1 = there is room now (or the channel closed, or an
 * error the next send reports): send again; 0 = armed: wait until the fd is
 * readable or at most *wait_ns ns (a second at most), then send again.
 * rmpsc_producer_ready_disarm takes an abandoned wait back.
 * Errors: ESYS, EINVAL (no readiness fd yet, NULL wait_ns), EFORKED.
 */
RMPSC_API int rmpsc_producer_ready_fd(rmpsc_producer *p);
RMPSC_API int rmpsc_producer_ready_arm(rmpsc_producer *p, int64_t *wait_ns);
RMPSC_API void rmpsc_producer_ready_disarm(rmpsc_producer *p);

/*
 * Reserve up to `want` contiguous records (fewer at the wrap or when only fewer are
 * free). Blocks per timeout_ns while the ring is full. Returns k >= 1 and the
 * writable span in *ptr. One reservation may be open at a time. The span is not
 * cleared: it holds the records this ring carried there one lap earlier, which a
 * commit of unwritten bytes delivers. Write every byte you commit.
 * Errors: EFULL (timeout 0), ETIMEDOUT, ECLOSED, EINVAL, EFORKED, EINTR.
 */
RMPSC_API int rmpsc_producer_reserve(rmpsc_producer *p, size_t want, int64_t timeout_ns, void **ptr);
/*
 * Publish the first n records of the open reservation (n == 0 aborts it). Release
 * ordering; wakes a sleeping consumer (no system call when none sleeps).
 * Succeeds even if the channel was closed after the reservation.
 * Errors: EINVAL (n > granted, nothing open), EFORKED.
 */
RMPSC_API int rmpsc_producer_commit(rmpsc_producer *p, size_t n);
/* Send one record: `len` <= record_size bytes, the rest zero-filled.
 * Errors: EFULL, ETIMEDOUT, ECLOSED, EINVAL ("too long"), EFORKED, EINTR. */
RMPSC_API int rmpsc_producer_send(rmpsc_producer *p, const void *data, size_t len, int64_t timeout_ns);
/*
 * Send `count` whole records from `records`, in order. Returns how many were sent:
 * all of them, or fewer when a wait ended early (deadline, close, signal). If none
 * could be sent, returns the error (EFULL, ETIMEDOUT, ECLOSED, EINTR, ...).
 */
RMPSC_API int rmpsc_producer_send_many(rmpsc_producer *p, const void *records, size_t count, int64_t timeout_ns);

/* ------------------------------------------------------------------------- */
/* Consumers: members of groups (one thread at a time per handle). */

/* The group every channel has from its creation: durable, at-least-once. */
#define RMPSC_DEFAULT_GROUP      "default"
/* Group flags, fixed when the group is created (by its first join). */
#define RMPSC_GROUP_EPHEMERAL    0x1u /* removed when its last member leaves or dies (a subscriber) */
#define RMPSC_GROUP_AT_MOST_ONCE 0x2u /* a dead member's unreleased records are dropped, not redelivered */

/*
 * Make this handle's process a member of `group` (NULL: the default group),
 * creating the group if it does not exist: a new group receives the records
 * committed after its creation. A group's flags are those of its creation; a join
 * asking for other flags fails (EINVAL). Handles of one process in one group share
 * one membership. A handle is in one group at a time: joining another leaves the
 * first. Consumer calls join the default group implicitly when the handle is in
 * none. Dead members of the group are recovered first (their unreleased records
 * go to the living). Errors: ECONSUMER (every member place is held by a live
 * process, or no group place is left; the message says which), EINVAL (name too
 * long, flags), ECLOSED, ESYS.
 */
RMPSC_API int rmpsc_consumer_join(rmpsc_channel *ch, const char *group, unsigned flags);
/*
 * Leave the group (when the last handle of this process in it does). A record
 * span read and not advanced goes to another member (not counted as a
 * redelivery). The last member of an ephemeral group removes it. Safe to call
 * when not a member.
 */
RMPSC_API void rmpsc_consumer_leave(rmpsc_channel *ch);
/* The group this handle is a member of (NULL if none). Valid until it leaves. */
RMPSC_API const char *rmpsc_consumer_group(const rmpsc_channel *ch);
/* rmpsc_consumer_join(ch, NULL, 0): kept for the single-consumer API. */
RMPSC_API int rmpsc_consumer_claim(rmpsc_channel *ch);
/* rmpsc_consumer_leave. */
RMPSC_API void rmpsc_consumer_release(rmpsc_channel *ch);
/*
 * Remove a group that has no live member, with its unreleased records (producers
 * held back by it go on). Any process. The default group may be removed too (a
 * channel with no group holds nothing back: records committed then are never
 * delivered). Errors: EINVAL (no such group, or it has a live member), ESYS.
 */
RMPSC_API int rmpsc_group_remove(rmpsc_channel *ch, const char *group);
/*
 * How many times the span of the last rmpsc_read / rmpsc_read_bytes, or the span
 * an rmpsc_consume callback is running on, has been delivered: 1 the first time,
 * more when a member died (or left) holding it and it was delivered again.
 * 0 when no span is open.
 */
RMPSC_API uint32_t rmpsc_deliveries(const rmpsc_channel *ch);
/*
 * Where the span of the last rmpsc_read / rmpsc_read_bytes starts: its producer's
 * slot and the ring position of its first record (record i is at position + i).
 * (slot, position) names a record within the channel, and a redelivery names it
 * again; with rmpsc_stats' channel_id, across channels (an id for deduplication
 * downstream). RMPSC_OK, or EINVAL when no such span is open.
 */
RMPSC_API int rmpsc_read_position(const rmpsc_channel *ch, uint32_t *slot, uint64_t *position);

/*
 * Consume up to max records across all rings, in contiguous spans handed to fn,
 * each span freed after fn returns. Inside fn, consumer calls and joins on this
 * handle (or another handle of this process in its group) fail with EINVAL;
 * producer, slab and stats calls are fine. Waits per timeout_ns for the first record.
 * Returns records consumed (>= 1), or EEMPTY (timeout 0), ETIMEDOUT, ECLOSED
 * (closed and drained), ECORRUPT (a ring with an impossible tail was fenced off;
 * nothing read from it), ECONSUMER, EINTR.
 */
RMPSC_API int rmpsc_consume(rmpsc_channel *ch, size_t max, int64_t timeout_ns, rmpsc_consume_fn fn, void *ctx);
/* Copy up to max records into buf (max * record_size bytes). Returns as rmpsc_consume. */
RMPSC_API int rmpsc_recv(rmpsc_channel *ch, void *buf, size_t max, int64_t timeout_ns);
/*
 * Zero-copy: return k (1..max) contiguous readable records of one ring at *ptr
 * (and its slot in *slot if non-NULL). Stays valid until rmpsc_advance.
 * Errors as rmpsc_consume.
 */
RMPSC_API int rmpsc_read(rmpsc_channel *ch, size_t max, int64_t timeout_ns, const void **ptr, uint32_t *slot);
/* Free the first n records of the span returned by the last rmpsc_read. n may be
 * less than the span (the rest is read again next time). Errors: EINVAL. */
RMPSC_API int rmpsc_advance(rmpsc_channel *ch, size_t n);
/* Wait until a record is readable. Returns 0, or EEMPTY/ETIMEDOUT/ECLOSED/EINTR. */
RMPSC_API int rmpsc_wait_readable(rmpsc_channel *ch, int64_t timeout_ns);
/*
 * Coalesced wake-ups (interrupt moderation) for this handle's waits for records:
 * its blocking consumer calls and its readiness fd. A call that finds nothing
 * to read polls for a moment (a peer that is running answers sooner than a
 * sleep), then *lingers*: it sleeps until one producer's ring holds min_records
 * records for it (that producer wakes it) or max_delay_ns have passed, and takes
 * whatever is there; if nothing is, it waits for the first record, woken at once.
 * So under a steady stream producers make about one wake-up system call per
 * min_records records of a ring instead of one per record or two, and no record
 * waits more than max_delay_ns longer than it would without coalescing (nor, in a
 * blocking call, at all while the consumer keeps up within the poll; a readiness
 * fd has no poll: its first arm after records were taken lingers). A linger that found a single
 * record (a request and its reply, slower than the poll) makes the next waits
 * skip lingering, 16 of them, then twice as many each time, up to 1024; one that
 * found more makes lingering the rule again. min_records is capped at half a ring. min_records <= 1 or max_delay_ns == 0 turns it off: every first record
 * wakes the consumer. Defaults: RMPSC_COALESCE_RECORDS, RMPSC_COALESCE_DELAY_NS.
 * Errors: EINVAL (max_delay_ns outside 0 .. RMPSC_COALESCE_MAX_DELAY_NS).
 */
#define RMPSC_COALESCE_RECORDS      32u
#define RMPSC_COALESCE_DELAY_NS     1000000ll    /* 1 ms */
#define RMPSC_COALESCE_MAX_DELAY_NS 1000000000ll /* 1 s */
RMPSC_API int rmpsc_consumer_coalesce(rmpsc_channel *ch, uint32_t min_records, int64_t max_delay_ns);
/* The handle's coalescing settings (either pointer may be NULL). */
RMPSC_API void rmpsc_consumer_coalescing(const rmpsc_channel *ch, uint32_t *min_records, int64_t *max_delay_ns);

/*
 * Readiness for event loops (epoll, poll, select, io_uring, asyncio's add_reader).
 *
 * rmpsc_ready_fd returns a descriptor that becomes readable when this member may
 * have records to read, or the channel was closed. It belongs to the process's
 * membership (shared by its handles in the group; closed when the last leaves):
 * do not close it. It is a FIFO named after the channel in /dev/shm, which
 * producers open by name, so it works between unrelated processes that opened the
 * channel by name (or got its fd, or forked) as long as they see the same
 * /dev/shm. Joins the default group when the handle is in none; a handle
 * inherited through fork is the child's own member (as for every consumer call),
 * whose readiness fd is its own: call rmpsc_ready_fd again in the child. So is a
 * handle whose membership was lost (its process was taken for dead and its place
 * given to another): the old descriptor is closed, and rmpsc_ready_arm says to
 * call rmpsc_ready_fd again (EINVAL).
 * Errors: ESYS (making the FIFO), ECONSUMER, EINVAL.
 *
 * The protocol (level- or edge-triggered alike; no wake-up is lost):
 *   for (;;) {
 *       while ((n = rmpsc_recv(ch, buf, max, 0)) > 0) handle(buf, n);
 *       if (n != RMPSC_EEMPTY) break;                 // ECLOSED: closed and drained
 *       if (rmpsc_ready_arm(ch, &wait_ns) == 1) continue;
 *       poll fd for POLLIN, for at most wait_ns ns;
 *   }
 * rmpsc_ready_arm drains the fd, announces the wait and looks again. Returns 1
 * when records are there (or the channel closed): consume again without waiting
 * (*wait_ns = 0). Returns 0 when armed: wait until the fd is readable, or for at
 * most *wait_ns ns (> 0: coalescing's linger; a look for dead peers in a channel
 * with several members; a moment while a peer holds what we need; at most a
 * second in any case, which makes up for a wake-up a waker could not send), then
 * consume with timeout 0 until EEMPTY and arm again. A waker that cannot open the
 * FIFO for now (out of descriptors) leaves the announcement for the next publish;
 * the longest wait makes up for one that cannot at all. Blocking consumer calls on the membership in between leave an armed fd
 * armed. Errors: EINVAL (no readiness fd yet), ECONSUMER. A wait that is
 * abandoned (cancelled) calls rmpsc_ready_disarm, which takes the announcement
 * back; one that does not costs a producer one spurious wake-up.
 */
RMPSC_API int rmpsc_ready_fd(rmpsc_channel *ch);
RMPSC_API int rmpsc_ready_arm(rmpsc_channel *ch, int64_t *wait_ns);
RMPSC_API void rmpsc_ready_disarm(rmpsc_channel *ch);

/* Records committed and not yet consumed, over all rings (a snapshot; any thread): by this
 * handle's group when it is a member, else not yet released by every group. */
RMPSC_API uint64_t rmpsc_pending(const rmpsc_channel *ch);
/*
 * Wait until fewer than `limit` records are pending: committed and not yet
 * released by every group (rmpsc_pending from a handle that is no member). A
 * bound on the records in flight (a queue's maxsize), for a sender to call before
 * it sends. Any thread; no producer or consumer role needed. Every release of
 * records wakes it, so it sleeps rather than polls. Senders that pass the wait
 * together may overshoot the bound by one record each.
 * Returns 0, or EFULL (timeout 0), ETIMEDOUT, ECLOSED, EINTR, EINVAL (limit 0).
 */
RMPSC_API int rmpsc_wait_pending_below(rmpsc_channel *ch, uint64_t limit, int64_t timeout_ns);

/* ------------------------------------------------------------------------- */
/* Slab pool: fixed-size blocks in the same region, named by u32 handles. */

/*
 * Take a free slab (length set to 0), owned by this process until it is sent or
 * freed. Blocks per timeout_ns while the pool is empty.
 * Errors: EFULL (pool empty, timeout 0), ETIMEDOUT, EINVAL (no pool), ECLOSED, EINTR.
 */
RMPSC_API int rmpsc_slab_alloc(rmpsc_channel *ch, int64_t timeout_ns, uint32_t *handle);
/* Return a slab to the pool: one this process holds, or, in the process holding the
 * consumer role, one it received. In a channel with several member places or
 * groups (max_consumers or max_groups > 1) a received slab is never freed or
 * accepted by hand: it returns to the pool once every group has released its
 * record (EINVAL here). Errors: EINVAL (bad handle, already free, sent and
 * not yet received, or held by another process: the message names its pid),
 * ECORRUPT (an impossible owner word). */
RMPSC_API int rmpsc_slab_free(rmpsc_channel *ch, uint32_t handle);
/* Bytes of the slab, or NULL for a bad handle. Valid while the mapping lives. */
RMPSC_API void *rmpsc_slab_ptr(const rmpsc_channel *ch, uint32_t handle);
/* Set / get the used length of a slab (<= slab_size). Errors: EINVAL. */
RMPSC_API int rmpsc_slab_set_len(rmpsc_channel *ch, uint32_t handle, uint32_t len);
RMPSC_API int64_t rmpsc_slab_len(const rmpsc_channel *ch, uint32_t handle);
/*
 * Send a slab as one record: the record holds the handle as a little-endian u32
 * in its first 4 bytes (record_size >= 4), the rest zero. Ownership passes to the
 * consumer atomically with the commit: if the producer dies before committing,
 * the slab returns to the pool. Errors as rmpsc_producer_send, plus EINVAL.
 */
RMPSC_API int rmpsc_producer_send_slab(rmpsc_producer *p, uint32_t handle, int64_t timeout_ns);
/*
 * Take ownership of a received slab (its record was consumed). Until accepted or
 * freed, a received slab belongs to the consumer role: the next consumer claim
 * (after a takeover, or after this process releases the role) frees it. Accept a
 * slab to keep it beyond that, or before handing its handle to another process.
 * Only the process holding the consumer role may accept.
 * Errors: EINVAL (not a received slab, or this process is not the consumer).
 */
RMPSC_API int rmpsc_slab_accept(rmpsc_channel *ch, uint32_t handle);
/* Decode the handle of a record sent by rmpsc_producer_send_slab. */
RMPSC_API uint32_t rmpsc_record_handle(const void *record);

/*
 * Variable-length messages (up to slab_size bytes) over the slab pool, for channels
 * created with one: each message is one slab, sent as one record.
 *
 * Send `len` bytes: takes a free slab, copies the bytes in and sends it as
 * rmpsc_producer_send_slab does. One deadline covers both waits (for a free slab,
 * then for ring space); a slab that could not be sent goes back to the pool.
 * Errors: EINVAL (no pool, len > slab_size, NULL data, a reservation open), EFULL,
 * ETIMEDOUT, ECLOSED, EFORKED, EINTR, ENOSLOT/ESYS (attaching).
 */
RMPSC_API int rmpsc_producer_send_bytes(rmpsc_producer *p, const void *data, size_t len, int64_t timeout_ns);
/*
 * Receive one message in place: waits as rmpsc_read for the next record, which
 * must be a slab record (sent with rmpsc_producer_send_bytes or _send_slab), and
 * returns its length with its bytes at *bytes. They stay valid, and the message
 * unconsumed, until rmpsc_advance_bytes (or the next consumer call, which reads
 * it again): a consumer that dies in between leaves it to be delivered again.
 * Errors as rmpsc_read, plus ECORRUPT for a record that is not a slab message
 * (it is consumed, so the next call goes on; the message names it), such as a
 * message of several slabs from rmpsc_producer_send_message (its slabs return to
 * the pool; read those with rmpsc_message_at).
 */
RMPSC_API int64_t rmpsc_read_bytes(rmpsc_channel *ch, int64_t timeout_ns, const void **bytes);
/* Consume the message rmpsc_read_bytes returned: advance past its record and
 * return its slab to the pool. Errors: EINVAL (no message open). */
RMPSC_API int rmpsc_advance_bytes(rmpsc_channel *ch);
/*
 * Receive one message into buf (cap bytes): rmpsc_read_bytes, a copy, then
 * rmpsc_advance_bytes. Returns its length. A message longer than cap is left
 * unread (EINVAL, naming its length); a cap of slab_size always fits.
 * Errors as rmpsc_read_bytes, plus EINVAL.
 */
RMPSC_API int64_t rmpsc_recv_bytes(rmpsc_channel *ch, void *buf, size_t cap, int64_t timeout_ns);
/* Free slabs now (a scan, for stats). */
RMPSC_API uint32_t rmpsc_slab_free_count(const rmpsc_channel *ch);

/* ------------------------------------------------------------------------- */
/* Messages: byte strings of any length up to rmpsc_message_max(), one record each. */

/*
 * A message fits in its record (inline) when len <= record_size - 8; a longer one
 * travels in as many slabs of the pool as it needs, named by its record: the
 * consumer reads it in place, and its slabs return to the pool once its record is
 * consumed (with several member places or groups: released by every group). A
 * channel whose consumers read messages should carry nothing else.
 */
struct rmpsc_part {
	const void *data;
	size_t len;
};
/* The longest message this channel carries: record_size - 8 without a slab pool;
 * with one, about slab_count * slab_size (less 4 bytes per slab for the list of
 * the slabs a message takes, at most slab_size / 4 + 1 of them); with records
 * under 8 bytes, slab_size (one slab each). 0 for NULL; a channel with records
 * under 8 bytes and no pool carries no message, not even an empty one. */
RMPSC_API uint64_t rmpsc_message_max(const rmpsc_channel *ch);
/*
 * Send one message: the concatenation of parts[0..nparts) (gathered: no copy
 * beforehand). One deadline covers every wait: for slabs (all of a message's, or
 * none: a message never holds part of the pool while it waits; several senders
 * needing more than one slab take turns), then for ring space. A message that
 * could not be sent leaves nothing behind; a sender that dies at any point leaves
 * nothing half-sent.
 * Errors: EINVAL (len > rmpsc_message_max, NULL parts, a reservation open),
 * EFULL, ETIMEDOUT, ECLOSED, EFORKED, EINTR, ENOSLOT/ESYS (attaching).
 */
RMPSC_API int rmpsc_producer_send_message(rmpsc_producer *p, const struct rmpsc_part *parts, size_t nparts,
					  int64_t timeout_ns);
/* A received message, valid until its record is advanced past. */
struct rmpsc_message {
	uint64_t len;
	/* Its bytes, in place, when contiguous: inline, in one slab, or in consecutive
	 * slabs (taken so where the pool has a run). NULL: copy with rmpsc_message_copy. */
	const void *data;
	uint32_t slabs;  /* slabs it occupies (0: inline) */
	uint32_t first_; /* private */
	uint64_t word_;  /* private */
};
/*
 * Decode record `index` of the span the last rmpsc_read returned as a message.
 * ECORRUPT when it is not one (a plain record, or a hostile region: every slab
 * it names must ride on exactly this record); EINVAL when index is outside the span.
 */
RMPSC_API int rmpsc_message_at(rmpsc_channel *ch, size_t index, struct rmpsc_message *m);
/* Copy the m->len bytes of a message into dst. ECORRUPT if its slabs changed
 * meanwhile (a hostile writer): never more than m->len bytes are written. */
RMPSC_API int rmpsc_message_copy(const rmpsc_channel *ch, const struct rmpsc_message *m, void *dst);
/* rmpsc_advance for messages: consume the first n records of the span, their
 * slabs returning to the pool. Errors as rmpsc_advance. */
RMPSC_API int rmpsc_advance_messages(rmpsc_channel *ch, size_t n);

/* ------------------------------------------------------------------------- */
/* Liveness and stats. */

enum rmpsc_slot_state {
	RMPSC_SLOT_FREE = 0,
	RMPSC_SLOT_REGISTERING = 1,
	RMPSC_SLOT_ACTIVE = 2,
	RMPSC_SLOT_DETACHED = 3,   /* deregistered or owner dead; drained then freed */
	RMPSC_SLOT_RECLAIMING = 4, /* a dead owner's slabs are being returned */
	RMPSC_SLOT_FENCED = 5,     /* impossible positions seen; never read again */
};

struct rmpsc_ring_stats {
	uint32_t slot;
	uint32_t state;       /* enum rmpsc_slot_state */
	uint32_t owner_pid;   /* the registered producer's pid, as it saw itself (in its own PID namespace) */
	uint32_t owner_alive; /* 1 while the owner's attachment is held (the process is alive, has not exec'd) */
	uint64_t pending;     /* committed, not consumed */
	uint64_t committed;   /* records committed since this slot was registered */
	uint64_t consumed;    /* records consumed since this slot was registered */
	uint64_t dropped;     /* records its producers counted as dropped, over the channel's life */
};

struct rmpsc_stats {
	uint32_t max_producers;
	uint32_t active_producers; /* slots in ACTIVE state */
	uint32_t consumer_pid;     /* the default group's member when it has exactly one, as it saw itself; else 0 */
	uint32_t closed;
	uint64_t pending;
	uint64_t committed; /* all records ever committed in this channel */
	uint64_t consumed;  /* all records ever consumed */
	uint32_t slab_count;
	uint32_t slabs_free;
	uint32_t fenced_rings;
	uint32_t reclaimed_slots; /* dead producers' slots taken back */
	uint32_t max_consumers;
	uint32_t max_groups;
	uint32_t groups;            /* groups that exist */
	uint32_t members;           /* member places in use (live, or dead and not yet recovered) */
	uint32_t recovered_members; /* dead members recovered (their claims redelivered or dropped) */
	uint64_t consumer_wakes;    /* wake-ups sent to waiting members: futex wakes and readiness fd writes */
	uint64_t dropped;           /* records producers gave up on (rmpsc_producer_count_dropped) */
	uint64_t drop_episodes;     /* runs of drops with no commit in between, over all slots */
	uint64_t channel_id;        /* random at creation, never reused: tells this channel from an earlier
				       one made under the same name (an incarnation, for ids that must be unique) */
};

struct rmpsc_group_stats {
	char name[RMPSC_GROUP_NAME_MAX + 1];
	uint32_t flags;   /* RMPSC_GROUP_* */
	uint32_t members; /* member places of the group (including dead ones not yet recovered) */
	uint32_t live_members;
	uint32_t solo;        /* 1 while one member consumes alone (no CAS per batch) */
	uint32_t claims;      /* spans taken and not released */
	uint64_t pending;     /* committed and not yet taken by this group (lag) */
	uint64_t unreleased;  /* taken and not yet released */
	uint64_t redelivered; /* records delivered again after a member died or left holding them */
};

struct rmpsc_member_stats {
	uint32_t pid; /* as the member saw itself */
	uint32_t alive;
	uint32_t group; /* index into the groups rmpsc_group_stats returned */
	uint32_t state; /* 1 member, 2 being recovered, 3 claim orphaned (awaiting redelivery), 4 serving an orphan */
	uint32_t claim_slot;  /* ring of its open claim, if claim_count */
	uint32_t claim_count; /* records of its open claim (0: none) */
};

/*
 * Groups and members: up to max_groups entries in `groups` and max_members in
 * `members` (either may be NULL). Returns the number of groups written; *n_members
 * (if not NULL) receives the number of members written. A snapshot.
 */
RMPSC_API int rmpsc_group_stats(const rmpsc_channel *ch, struct rmpsc_group_stats *groups, uint32_t max_groups,
				struct rmpsc_member_stats *members, uint32_t max_members, uint32_t *n_members);

/*
 * Channel figures; `rings` (may be NULL) receives up to `max_rings` entries for
 * slots that are not FREE. Returns the number of entries written. Any thread or
 * process; a snapshot, not atomic across rings.
 */
RMPSC_API int rmpsc_stats(const rmpsc_channel *ch, struct rmpsc_stats *out, struct rmpsc_ring_stats *rings,
			  uint32_t max_rings);

/*
 * Check every producer slot's owner and reclaim those whose process died:
 * committed records stay readable, slabs held but never sent return to the pool,
 * the slot is freed once drained. Then recover dead consumer members: their open
 * claims go back to their group (or are dropped, at-most-once), an ephemeral group
 * whose last member died is removed. Runs automatically on register (when no slot
 * is free), in members' sweeps and in producers' waits for space, at a bounded
 * rate. Returns slots reclaimed plus members recovered.
 */
RMPSC_API int rmpsc_reclaim_dead(rmpsc_channel *ch);

#ifdef __cplusplus
}
#endif
#endif /* RINGMPSC_H */
