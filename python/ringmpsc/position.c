/*
 * The ring position of the first record of the span the last rmpsc_read returned.
 * The public header has no call for it yet, so this one reads the handle the core
 * keeps it in (csrc/handle.h); the extension is built from the same sources, so
 * the two cannot disagree. Its only use: ReadView.position, from which a record
 * gets an id that a redelivery repeats (the bridge's message ids).
 */
#include "handle.h"

uint64_t read_position(const rmpsc_channel *ch)
{
	return ch->read_pos;
}
