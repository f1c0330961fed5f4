#include "layout.h"
#include "error.h"

int rmpsc__layout_compute(struct layout *L, const struct rmpsc_config *c, const char *what)
{
	if (c->record_size < 1 || c->record_size > RMPSC_MAX_RECORD_SIZE)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: record_size %u out of range 1..%u", what, c->record_size,
					RMPSC_MAX_RECORD_SIZE);
	if (!is_pow2(c->capacity) || c->capacity < RMPSC_MIN_CAPACITY || c->capacity > RMPSC_MAX_CAPACITY)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: capacity %u must be a power of two in %u..%u", what,
					c->capacity, RMPSC_MIN_CAPACITY, RMPSC_MAX_CAPACITY);
	if (c->max_producers < 1 || c->max_producers > RMPSC_MAX_PRODUCERS)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: max_producers %u out of range 1..%u", what, c->max_producers,
					RMPSC_MAX_PRODUCERS);
	if ((c->slab_size == 0) != (c->slab_count == 0))
		return rmpsc__set_error(RMPSC_EINVAL, "%s: slab_size %u and slab_count %u must both be 0 or both > 0",
					what, c->slab_size, c->slab_count);
	if (c->slab_size > RMPSC_MAX_SLAB_SIZE || c->slab_count > RMPSC_MAX_SLAB_COUNT)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: slab_size %u (max %u) or slab_count %u (max %u) too large",
					what, c->slab_size, RMPSC_MAX_SLAB_SIZE, c->slab_count, RMPSC_MAX_SLAB_COUNT);
	if (c->slab_count && c->record_size < 4)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: record_size %u too small to carry a slab handle (needs 4)",
					what, c->record_size);

	uint32_t max_consumers = c->max_consumers ? c->max_consumers : 1;
	if (max_consumers > RMPSC_MAX_CONSUMERS)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: max_consumers %u out of range 1..%u", what, c->max_consumers,
					RMPSC_MAX_CONSUMERS);
	uint32_t max_groups =
		c->max_groups ? c->max_groups : (max_consumers < RMPSC_MAX_GROUPS ? max_consumers : RMPSC_MAX_GROUPS);
	if (max_groups > RMPSC_MAX_GROUPS)
		return rmpsc__set_error(RMPSC_EINVAL, "%s: max_groups %u out of range 1..%u", what, c->max_groups,
					RMPSC_MAX_GROUPS);

	L->record_size = c->record_size;
	L->max_consumers = max_consumers;
	L->max_groups = max_groups;
	L->capacity = c->capacity;
	L->ring_bits = (uint32_t)__builtin_ctz(c->capacity);
	L->max_producers = c->max_producers;
	L->slab_size = c->slab_size;
	L->slab_count = c->slab_count;
	L->start_position = c->start_position;
	L->slab_stride = round_up(c->slab_size, 64);
	L->ring_bytes = round_up((uint64_t)c->record_size * c->capacity, LINE);

	/* Each term is bounded (<= 2^40 or so), so these sums cannot overflow u64. */
	L->attach_off = HEADER_SIZE;
	L->ctrl_off = L->attach_off + round_up((uint64_t)ATTACH_SLOTS * sizeof(struct attach_entry), LINE);
	L->data_off = L->ctrl_off + (uint64_t)c->max_producers * sizeof(struct ring_ctrl);
	L->groups_off = L->data_off + (uint64_t)c->max_producers * L->ring_bytes;
	L->gpos_off = L->groups_off + (uint64_t)max_groups * sizeof(struct group);
	L->members_off = round_up(L->gpos_off + (uint64_t)max_groups * c->max_producers * sizeof(struct group_pos), LINE);
	L->slab_meta_off = L->members_off + (uint64_t)max_consumers * sizeof(struct member);
	L->slab_data_off = round_up(L->slab_meta_off + (uint64_t)c->slab_count * sizeof(struct slab_meta), LINE);
	L->total_size = round_up(L->slab_data_off + (uint64_t)c->slab_count * L->slab_stride, 4096);
	if (L->total_size > RMPSC_MAX_REGION_SIZE || L->total_size > (uint64_t)(SIZE_MAX / 2))
		return rmpsc__set_error(RMPSC_EINVAL, "%s: region of %llu bytes exceeds the %llu-byte limit", what,
					(unsigned long long)L->total_size, (unsigned long long)RMPSC_MAX_REGION_SIZE);
	return RMPSC_OK;
}
