/*
 * For the tests of rmpsc_wait_pending_below (test_pending_wait, test_pending_faults):
 * a thread that waits for fewer than `limit` pending records, and the progress
 * word a release bumps when it wakes such waiters.
 */
#ifndef RMPSC_TEST_PENDING_H
#define RMPSC_TEST_PENDING_H

#include "handle.h"
#include "harness.h"
#include "messages.h"

#define RS 64 /* record size of the tests' channels */

/* One record of producer `producer`, number `seq` (rec_fill: checked by rec_check). */
static inline void send_seq(rmpsc_producer *p, uint32_t producer, uint64_t seq)
{
	unsigned char rec[RS];
	rec_fill(rec, RS, producer, seq);
	CHECK_OK(rmpsc_producer_send(p, rec, RS, 10 * SEC_NS));
}

/* Take and release one record (or message) through consumer handle c. */
static inline void release_one(rmpsc_channel *c, int messages)
{
	const void *rec;
	CHECK_RC(rmpsc_read(c, 1, 5 * SEC_NS, &rec, NULL), 1);
	CHECK_OK(messages ? rmpsc_advance_messages(c, 1) : rmpsc_advance(c, 1));
}

struct waiter_arg {
	rmpsc_channel *ch;
	uint64_t limit;
	int tid;  /* published before it waits (wait_blocked) */
	int rc;   /* what the wait returned */
	int done; /* 1 once it returned */
};

static void *waiter(void *arg)
{
	struct waiter_arg *w = arg;
	publish_tid(&w->tid);
	w->rc = rmpsc_wait_pending_below(w->ch, w->limit, 10 * SEC_NS);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static inline uint32_t progress_seq(rmpsc_channel *ch)
{
	return __atomic_load_n(&ch->hdr->progress_seq, __ATOMIC_ACQUIRE);
}

#endif
