/* The standalone SPSC ring API over caller-owned memory. */
#include <string.h>

#include "error.h"
#include "ring.h"

static int ring_geometry_ok(uint32_t record_size, uint32_t capacity)
{
	return record_size >= 1 && record_size <= RMPSC_MAX_RECORD_SIZE && is_pow2(capacity) &&
	       capacity >= RMPSC_MIN_CAPACITY && capacity <= RMPSC_MAX_CAPACITY;
}

size_t rmpsc_ring_footprint(uint32_t record_size, uint32_t capacity)
{
	if (!ring_geometry_ok(record_size, capacity))
		return 0;
	return sizeof(struct ring_ctrl) + round_up((uint64_t)record_size * capacity, LINE);
}

static int bits_of(uint32_t capacity)
{
	return __builtin_ctz(capacity);
}

int rmpsc_ring_init(rmpsc_ring *ring, void *mem, size_t size, uint32_t record_size, uint32_t capacity,
		    uint64_t start_position)
{
	if (!ring || !mem)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_init: ring and mem must not be NULL");
	if (!ring_geometry_ok(record_size, capacity))
		return rmpsc__set_error(RMPSC_EINVAL, "ring_init: record_size %u must be 1..%u and capacity %u a power of two in %u..%u",
					record_size, RMPSC_MAX_RECORD_SIZE, capacity, RMPSC_MIN_CAPACITY,
					RMPSC_MAX_CAPACITY);
	if ((uintptr_t)mem % LINE)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_init: mem must be %u-byte aligned", LINE);
	if (size < rmpsc_ring_footprint(record_size, capacity))
		return rmpsc__set_error(RMPSC_EINVAL, "ring_init: size %zu < footprint %zu", size,
					rmpsc_ring_footprint(record_size, capacity));
	struct ring_ctrl *c = mem;
	memset(c, 0, sizeof *c);
	c->tail = c->cached_head = c->head = c->cached_tail = start_position;
	c->record_size = record_size;
	c->ring_bits = (uint32_t)bits_of(capacity);
	c->ring_version = RMPSC_LAYOUT_VER;
	ring_view_init(ring, c, (unsigned char *)mem + sizeof *c, record_size, c->ring_bits);
	return RMPSC_OK;
}

int rmpsc_ring_attach(rmpsc_ring *ring, void *mem, size_t size)
{
	if (!ring || !mem)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_attach: ring and mem must not be NULL");
	if ((uintptr_t)mem % LINE)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_attach: mem must be %u-byte aligned", LINE);
	if (size < sizeof(struct ring_ctrl))
		return rmpsc__set_error(RMPSC_ECORRUPT, "ring_attach: size %zu smaller than a ring header", size);
	struct ring_ctrl *c = mem;
	if (load_relaxed(&c->ring_version) != RMPSC_LAYOUT_VER)
		return rmpsc__set_error(RMPSC_ECORRUPT,
					"ring_attach: layout version %u, this library reads %u "
					"(not a ring, or formatted by another version)",
					load_relaxed(&c->ring_version), RMPSC_LAYOUT_VER);
	uint32_t rs = load_relaxed(&c->record_size), bits = load_relaxed(&c->ring_bits);
	if (bits >= 32 || !ring_geometry_ok(rs, 1u << bits))
		return rmpsc__set_error(RMPSC_ECORRUPT,
					"ring_attach: stored geometry (record_size %u, ring_bits %u) invalid", rs, bits);
	if (size < rmpsc_ring_footprint(rs, 1u << bits))
		return rmpsc__set_error(RMPSC_ECORRUPT, "ring_attach: size %zu < footprint %zu", size,
					rmpsc_ring_footprint(rs, 1u << bits));
	ring_view_init(ring, c, (unsigned char *)mem + sizeof *c, rs, bits);
	return RMPSC_OK;
}

int rmpsc_ring_reserve(rmpsc_ring *ring, size_t want, void **ptr)
{
	if (!ring || !ptr || want == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_reserve: want must be >= 1 and ring, ptr non-NULL");
	if (ring->reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_reserve: a reservation is already open");
	int n = ring_reserve(ring, clamp_count(want), ptr);
	if (n < 0)
		return rmpsc__set_error(n, "ring_reserve: head is impossible (corrupt ring)");
	if (n == 0)
		return rmpsc__set_error_static(RMPSC_EFULL, "full: no space in the ring");
	ring->reserved_ = (uint32_t)n;
	return n;
}

int rmpsc_ring_commit(rmpsc_ring *ring, size_t n)
{
	if (ring && !ring->reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_commit: no reservation is open");
	if (!ring || n > ring->reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_commit: n %zu exceeds the %u records reserved", n,
					ring ? ring->reserved_ : 0);
	ring->reserved_ = 0;
	if (n)
		ring_publish(ring, n);
	return RMPSC_OK;
}

int rmpsc_ring_send(rmpsc_ring *ring, const void *records, size_t count)
{
	if (!ring || (!records && count))
		return rmpsc__set_error(RMPSC_EINVAL, "ring_send: NULL ring or records");
	if (ring->reserved_)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_send: a reservation is open");
	const unsigned char *src = records;
	size_t sent = 0;
	count = clamp_count(count);
	while (sent < count) {
		void *dst;
		int n = ring_reserve(ring, count - sent, &dst);
		if (n <= 0) {
			if (n < 0 && sent == 0)
				return rmpsc__set_error(n, "ring_send: head is impossible (corrupt ring)");
			break;
		}
		memcpy(dst, src + sent * ring->record_size_, (size_t)n * ring->record_size_);
		ring_publish(ring, (uint64_t)n);
		sent += (size_t)n;
	}
	return (int)sent;
}

int rmpsc_ring_readable(rmpsc_ring *ring, size_t max, const void **ptr)
{
	if (!ring || !ptr || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_readable: max must be >= 1 and ring, ptr non-NULL");
	int n = ring_readable(ring, clamp_count(max), ptr);
	if (n < 0)
		return rmpsc__set_error(n, "ring_readable: tail is impossible (corrupt ring)");
	return n ? n : rmpsc__set_error_static(RMPSC_EEMPTY, "empty: nothing to read");
}

int rmpsc_ring_advance(rmpsc_ring *ring, size_t n)
{
	if (!ring)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_advance: NULL ring");
	struct ring_ctrl *c = ring_ctrl_of(ring);
	uint64_t avail = load_acquire(&c->tail) - load_relaxed(&c->head);
	if (n > avail || avail > ring->mask_ + 1)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_advance: n %zu exceeds the %llu readable records", n,
					(unsigned long long)avail);
	if (n)
		ring_release(ring, n);
	return RMPSC_OK;
}

int rmpsc_ring_consume(rmpsc_ring *ring, size_t max, rmpsc_consume_fn fn, void *ctx)
{
	if (!ring || !fn || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_consume: max must be >= 1 and ring, fn non-NULL");
	size_t done = 0;
	max = clamp_count(max);
	while (done < max) {
		const void *p;
		int n = ring_readable(ring, max - done, &p);
		if (n <= 0) {
			if (n < 0 && done == 0)
				return rmpsc__set_error(n, "ring_consume: tail is impossible (corrupt ring)");
			break;
		}
		int stop = fn(ctx, p, (size_t)n, 0);
		ring_release(ring, (uint64_t)n);
		done += (size_t)n;
		if (stop)
			break;
	}
	return done ? (int)done : rmpsc__set_error_static(RMPSC_EEMPTY, "empty: nothing to read");
}

struct copy_ctx {
	unsigned char *dst;
	uint32_t record_size;
};

static int copy_out(void *ctx, const void *records, size_t count, uint32_t slot)
{
	(void)slot;
	struct copy_ctx *o = ctx;
	memcpy(o->dst, records, count * o->record_size);
	o->dst += count * o->record_size;
	return 0;
}

int rmpsc_ring_recv(rmpsc_ring *ring, void *buf, size_t max)
{
	if (!ring || !buf || max == 0)
		return rmpsc__set_error(RMPSC_EINVAL, "ring_recv: max must be >= 1 and ring, buf non-NULL");
	struct copy_ctx o = { buf, ring->record_size_ };
	return rmpsc_ring_consume(ring, max, copy_out, &o);
}

uint64_t rmpsc_ring_pending(const rmpsc_ring *ring)
{
	return ring ? ring_pending(ring) : 0;
}

uint32_t rmpsc_ring_capacity(const rmpsc_ring *ring)
{
	return ring ? (uint32_t)(ring->mask_ + 1) : 0;
}
