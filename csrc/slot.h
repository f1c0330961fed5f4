/*
 * Producer slots: their life cycle (claim, release, reclaim of dead owners) and
 * closing the channel (slot.c).
 */
#ifndef RMPSC_SLOT_H
#define RMPSC_SLOT_H

#include <stdint.h>

#include "group.h"
#include "handle.h"

/* Has every group released everything committed on slot s? */
static inline int slot_drained(const rmpsc_channel *ch, uint32_t s)
{
	uint64_t tail = load_acquire(&slot_ctrl(ch, s)->tail);
	return tail == rmpsc__released_head(ch, s, tail);
}

/*
 * Claim a slot for owner identity `me` and make it ACTIVE(me): a free one, or a
 * drained deregistered one; failing that, slots of gone owners are reclaimed
 * first (and a reclaim by another live process is waited for, briefly). Returns
 * the slot, or -1 when every slot is held by a live producer.
 */
int rmpsc__take_slot(rmpsc_channel *ch, uint64_t me);
/* The consumer's sweep found slot s empty: a deregistered (or reclaimed) slot
 * becomes free once drained. */
void rmpsc__slot_free_if_drained(rmpsc_channel *ch, uint32_t s);

#endif
