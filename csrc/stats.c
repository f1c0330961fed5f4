/* Channel figures for humans and monitoring: a snapshot, not atomic across rings. */
#include <string.h>

#include "attach.h"
#include "barrier.h"
#include "error.h"
#include "group.h"
#include "handle.h"
#include "ring.h"

int rmpsc_stats(const rmpsc_channel *ch, struct rmpsc_stats *out, struct rmpsc_ring_stats *rings, uint32_t max_rings)
{
	if (!ch || !out)
		return rmpsc__set_error(RMPSC_EINVAL, "stats: NULL channel or out");
	const struct region_header *h = ch->hdr;
	memset(out, 0, sizeof *out);
	out->max_producers = ch->L.max_producers;
	out->max_consumers = ch->L.max_consumers;
	out->max_groups = ch->L.max_groups;
	out->recovered_members = load_relaxed(&h->recovered_members);
	out->consumer_wakes = load_relaxed(&h->consumer_wakes);
	out->channel_id = h->channel_id;
	struct rmpsc_group_stats dflt;
	uint32_t n_members = 0;
	out->groups = (uint32_t)rmpsc_group_stats(ch, NULL, 0, NULL, 0, &n_members);
	out->members = n_members;
	/* The default group's member, when it has exactly one. */
	int g = rmpsc_group_stats(ch, &dflt, 1, NULL, 0, NULL);
	if (g == 1 && !strcmp(dflt.name, RMPSC_DEFAULT_GROUP) && dflt.members == 1)
		for (uint32_t m = 0; m < ch->L.max_consumers; m++) {
			struct member *mb = member_at(ch, m);
			if (load_relaxed(&mb->group) == 0 && owner_state(load_acquire(&mb->owner)) == MEMBER_ACTIVE) {
				out->consumer_pid = load_relaxed(&mb->pid);
				break;
			}
		}
	out->closed = load_acquire(&h->closed) != 0;
	out->slab_count = ch->L.slab_count;
	out->slabs_free = rmpsc_slab_free_count(ch);
	out->fenced_rings = load_relaxed(&h->fenced_rings);
	out->reclaimed_slots = load_relaxed(&h->reclaimed_slots);
	uint32_t written = 0;
	for (uint32_t s = 0; s < ch->L.max_producers; s++) {
		struct ring_ctrl *c = slot_ctrl(ch, s);
		uint64_t w = load_acquire(&c->owner);
		uint64_t tail = load_acquire(&c->tail);
		uint64_t head = rmpsc__released_head(ch, s, tail); /* released by every group */
		uint64_t base = load_relaxed(&c->base);
		uint32_t st = owner_state(w);
		uint64_t pending = tail - head <= ch->L.capacity ? tail - head : 0;
		if (st != RMPSC_SLOT_FENCED) {
			out->pending += pending;
			out->committed += tail - ch->L.start_position;
			out->consumed += head - ch->L.start_position;
		}
		uint64_t dropped = load_relaxed(&c->dropped);
		out->dropped += dropped; /* a fenced slot's drops happened all the same */
		out->drop_episodes += load_relaxed(&c->drop_episodes);
		out->active_producers += st == RMPSC_SLOT_ACTIVE;
		if (st == RMPSC_SLOT_FREE || !rings || written >= max_rings)
			continue;
		struct rmpsc_ring_stats *r = &rings[written++];
		r->slot = s;
		r->state = st;
		r->owner_pid = load_relaxed(&c->owner_pid);
		r->owner_alive = (uint32_t)rmpsc__owner_alive(&ch->file, w);
		r->pending = pending;
		r->committed = tail - base;
		r->consumed = head - base;
		r->dropped = dropped;
	}
	return (int)written;
}
