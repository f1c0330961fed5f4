/*
 * Readiness fds and coalesced wake-ups: the arm/drain protocol step by step (an
 * armed fd turns readable on the first record, not before; a drained one stays
 * quiet); the linger (readable at min_records on one ring, not before); close
 * waking an armed fd; a producer's fd for space; disarm taking an announcement
 * back; FIFOs removed when members leave or die; producer processes that open
 * the channel by name feeding a consumer in a poll() loop, every record once and
 * in order per producer, with coalescing on and off; and the wake-ups a paced
 * stream costs, counted in the region's stats.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "children.h"
#include "handle.h" /* the channel id, to find its FIFOs in /dev/shm */
#include "harness.h"

#define MS 1000000ll

static rmpsc_channel *make_channel(const char *name, uint32_t rs, uint32_t cap, uint32_t maxp, uint32_t maxc)
{
	rmpsc_channel *ch;
	struct rmpsc_config c = { .record_size = rs, .capacity = cap, .max_producers = maxp, .max_consumers = maxc };
	if (name)
		rmpsc_unlink(name);
	CHECK_OK(rmpsc_channel_create(&ch, name, &c, 0));
	return ch;
}

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);
	CHECK(r >= 0, "poll: %s", strerror(errno));
	return r == 1 && (p.revents & POLLIN);
}

static uint64_t wakes(rmpsc_channel *ch)
{
	struct rmpsc_stats st;
	rmpsc_stats(ch, &st, NULL, 0);
	return st.consumer_wakes;
}

/* FIFOs of this channel in /dev/shm. */
static int count_fifos(rmpsc_channel *ch)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, ".ringmpsc-%016llx-", (unsigned long long)ch->hdr->channel_id);
	DIR *d = opendir("/dev/shm");
	CHECK(d, "opendir /dev/shm: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void send_one(rmpsc_producer *p, uint64_t v)
{
	CHECK_OK(rmpsc_producer_send(p, &v, sizeof v, 0));
}

static void test_coalesce_settings(void)
{
	rmpsc_channel *ch = make_channel(NULL, 8, 64, 1, 1);
	uint32_t k;
	int64_t t;
	rmpsc_consumer_coalescing(ch, &k, &t);
	CHECK(k == RMPSC_COALESCE_RECORDS && t == RMPSC_COALESCE_DELAY_NS, "defaults: %u %lld", k, (long long)t);
	CHECK_RC(rmpsc_consumer_coalesce(ch, 8, -1), RMPSC_EINVAL);
	CHECK_RC(rmpsc_consumer_coalesce(ch, 8, RMPSC_COALESCE_MAX_DELAY_NS + 1), RMPSC_EINVAL);
	CHECK(strstr(rmpsc_last_error(), "max_delay_ns"), "message names the argument: %s", rmpsc_last_error());
	CHECK_OK(rmpsc_consumer_coalesce(ch, 8, 5 * MS));
	rmpsc_consumer_coalescing(ch, &k, &t);
	CHECK(k == 8 && t == 5 * MS, "round trip: %u %lld", k, (long long)t);
	int64_t w;
	CHECK_RC(rmpsc_ready_arm(ch, &w), RMPSC_EINVAL); /* no fd yet */
	CHECK(strstr(rmpsc_last_error(), "rmpsc_ready_fd"), "message says what to do: %s", rmpsc_last_error());
	rmpsc_channel_release(ch);
	printf("ok coalesce settings\n");
}

/* The protocol without coalescing: armed and quiet, readable on the first
 * record, arm reports it ready, drained and quiet again once consumed. */
static void test_arm_and_drain(void)
{
	rmpsc_channel *ch = make_channel(NULL, 8, 64, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd > 2, "ready_fd: %d (%s)", fd, rmpsc_last_error());
	CHECK(fd != rmpsc_channel_fd(ch), "the readiness fd is not the region's");
	CHECK_RC(rmpsc_ready_fd(ch), fd); /* one per membership */
	int64_t w = 0;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	CHECK(w > 0 && w <= 1000 * MS, "no coalescing: wait, looking again within a second (%lld)", (long long)w);
	CHECK(!readable(fd, 0), "armed with nothing published: not readable");
	uint64_t before = wakes(ch);
	send_one(p, 1);
	CHECK(readable(fd, 1000), "the first record makes it readable");
	CHECK(wakes(ch) == before + 1, "one wake-up counted");
	send_one(p, 2); /* the bit is cleared: no second wake-up */
	CHECK(wakes(ch) == before + 1, "the second record sends none");
	CHECK_RC(rmpsc_ready_arm(ch, &w), 1); /* records are there */
	CHECK(w == 0 && !readable(fd, 0), "arm drained the fd");
	uint64_t got[4];
	CHECK_RC(rmpsc_recv(ch, got, 4, 0), 2);
	CHECK(got[0] == 1 && got[1] == 2, "in order");
	CHECK_RC(rmpsc_recv(ch, got, 4, 0), RMPSC_EEMPTY);
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	/* Disarmed: a publish finds no waiter and sends nothing. */
	rmpsc_ready_disarm(ch);
	before = wakes(ch);
	send_one(p, 3);
	CHECK(wakes(ch) == before && !readable(fd, 0), "a disarmed wait is not woken");
	CHECK_RC(rmpsc_ready_arm(ch, &w), 1);
	CHECK_RC(rmpsc_recv(ch, got, 4, 0), 1);
	/* A read not advanced past is read again: records to read, not a wait. */
	send_one(p, 4);
	const void *span;
	CHECK_RC(rmpsc_read(ch, 4, 0, &span, NULL), 1);
	CHECK_RC(rmpsc_ready_arm(ch, &w), 1);
	CHECK_RC(rmpsc_read(ch, 4, 0, &span, NULL), 1);
	CHECK(*(const uint64_t *)span == 4, "the same record again");
	CHECK_OK(rmpsc_advance(ch, 1));
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	rmpsc_ready_disarm(ch);
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	printf("ok arm and drain\n");
}

/* Coalescing: the first arm lingers (a bounded wait); a record alone does not
 * wake it, min_records on one ring do; after the linger, the first record does. */
static void test_linger(void)
{
	rmpsc_channel *ch = make_channel(NULL, 8, 64, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 4, 200 * MS));
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	int64_t w = 0;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	CHECK(w > 0 && w <= 200 * MS, "lingering: a bounded wait (%lld ns)", (long long)w);
	for (uint64_t i = 0; i < 3; i++)
		send_one(p, i);
	CHECK(!readable(fd, 0), "three records of four: not yet");
	send_one(p, 3);
	CHECK(readable(fd, 1000), "the fourth wakes it");
	CHECK_RC(rmpsc_ready_arm(ch, &w), 1);
	uint64_t got[8];
	CHECK_RC(rmpsc_recv(ch, got, 8, 0), 4);
	/* Taking records starts a new linger; let it run out (the caller's timer). */
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	CHECK(w > 0, "a new linger");
	CHECK(!readable(fd, (int)(w / MS) + 2), "nothing came during the linger");
	CHECK_RC(rmpsc_recv(ch, got, 8, 0), RMPSC_EEMPTY);
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	CHECK(w > 200 * MS && w <= 1000 * MS, "after the linger: wait for the first record (%lld)", (long long)w);
	send_one(p, 9);
	CHECK(readable(fd, 1000), "one record wakes it after the linger");
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	printf("ok linger\n");
}

static void *close_later(void *arg)
{
	rmpsc_channel *ch = arg;
	rmpsc_channel_close(ch);
	return NULL;
}

static void test_close_wakes(void)
{
	rmpsc_channel *ch = make_channel(NULL, 8, 64, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, 1, 0));
	int fd = rmpsc_ready_fd(ch);
	int64_t w;
	CHECK_RC(rmpsc_ready_arm(ch, &w), 0);
	pthread_t t;
	pthread_create(&t, NULL, close_later, ch);
	CHECK(readable(fd, 10000), "close makes an armed fd readable");
	pthread_join(t, NULL);
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), RMPSC_ECLOSED);
	CHECK_RC(rmpsc_ready_arm(ch, &w), 1); /* closed: look (and get ECLOSED) */
	rmpsc_channel_release(ch);
	printf("ok close wakes\n");
}

static void test_producer_ready(void)
{
	rmpsc_channel *ch = make_channel(NULL, 8, 4, 1, 1);
	rmpsc_producer *p;
	CHECK_OK(rmpsc_producer_register(ch, &p));
	int fd = rmpsc_producer_ready_fd(p);
	CHECK(fd >= 0, "producer_ready_fd: %s", rmpsc_last_error());
	int64_t w;
	CHECK_RC(rmpsc_producer_ready_arm(p, &w), 1); /* room */
	for (uint64_t i = 0; i < 4; i++)
		send_one(p, i);
	CHECK_RC(rmpsc_producer_send(p, &w, sizeof w, 0), RMPSC_EFULL);
	CHECK_RC(rmpsc_producer_ready_arm(p, &w), 0);
	CHECK(w > 0 && !readable(fd, 0), "full: armed and quiet");
	uint64_t v;
	CHECK_RC(rmpsc_recv(ch, &v, 1, 0), 1);
	CHECK(readable(fd, 1000), "freed space makes it readable");
	CHECK_RC(rmpsc_producer_ready_arm(p, &w), 1);
	CHECK(!readable(fd, 0), "arm drained it");
	send_one(p, 4);
	CHECK_RC(rmpsc_producer_ready_arm(p, &w), 0);
	rmpsc_channel_close(ch);
	CHECK(readable(fd, 1000), "close makes it readable");
	CHECK_RC(rmpsc_producer_ready_arm(p, &w), 1);
	CHECK_RC(rmpsc_producer_send(p, &v, sizeof v, 0), RMPSC_ECLOSED);
	CHECK(count_fifos(ch) == 1, "one FIFO: the producer's");
	rmpsc_producer_close(p);
	CHECK(count_fifos(ch) == 0, "closing the producer removes its FIFO");
	rmpsc_channel_release(ch);
	printf("ok producer ready\n");
}

/* FIFOs go with their members: on leave, and when a dead member is recovered. */
static void test_fifo_cleanup(void)
{
	rmpsc_channel *ch = make_channel(NULL, 8, 64, 1, 2);
	CHECK(rmpsc_ready_fd(ch) >= 0, "ready_fd: %s", rmpsc_last_error());
	CHECK(count_fifos(ch) == 1, "one FIFO");
	rmpsc_consumer_leave(ch);
	CHECK(count_fifos(ch) == 0, "leave removes it");
	pid_t c = fork_child();
	if (c == 0) {
		if (rmpsc_consumer_join(ch, "other", 0) || rmpsc_ready_fd(ch) < 0)
			_exit(2);
		_exit(0); /* dies a member, FIFO and all */
	}
	CHECK(reap(c) == 0, "child joined and made its FIFO");
	CHECK(count_fifos(ch) == 1, "the dead member's FIFO is still there");
	CHECK(rmpsc_reclaim_dead(ch) >= 1, "the dead member is recovered");
	CHECK(count_fifos(ch) == 0, "recovering it removed its FIFO");
	rmpsc_channel_release(ch);
	/* Nobody left to recover a dead holder (an anonymous channel whose processes
	 * all died): the first FIFO a process makes sweeps old ones nobody has open. */
	const char *stale = "/dev/shm/.ringmpsc-00000000deadbeef-m0-1",
		   *held = "/dev/shm/.ringmpsc-00000000deadbeef-m1-1";
	unlink(stale);
	unlink(held);
	CHECK(mkfifo(stale, 0600) == 0 && mkfifo(held, 0600) == 0, "mkfifo: %s", strerror(errno));
	int hfd = open(held, O_RDWR | O_NONBLOCK);
	CHECK(hfd >= 0, "open: %s", strerror(errno));
	struct timespec old[2] = { { time(NULL) - 3600, 0 }, { time(NULL) - 3600, 0 } };
	CHECK(utimensat(AT_FDCWD, stale, old, 0) == 0 && utimensat(AT_FDCWD, held, old, 0) == 0, "utimensat");
	c = fork_child();
	if (c == 0) { /* a fresh process: its first FIFO sweeps */
		rmpsc_channel *anon = make_channel(NULL, 8, 64, 1, 1);
		int rc = rmpsc_ready_fd(anon) < 0 ? 2 : 0;
		rmpsc_channel_release(anon); /* and its FIFO with it */
		_exit(rc);
	}
	CHECK(reap(c) == 0, "child made a FIFO");
	CHECK(access(stale, F_OK) != 0, "the stale FIFO was removed");
	CHECK(access(held, F_OK) == 0, "one somebody holds open stays");
	close(hfd);
	unlink(held);
	printf("ok fifo cleanup\n");
}

/* --- producer processes by name, a consumer in a poll() loop --------------- */

#define STRESS_PRODUCERS 3
#define STRESS_RECORDS   60000

static void stress_producer(const char *name, uint32_t id)
{
	rmpsc_channel *ch;
	if (rmpsc_channel_open(&ch, name, 0))
		_exit(2);
	rmpsc_producer *p;
	if (rmpsc_producer_register(ch, &p))
		_exit(3);
	uint64_t rng = id * 7919 + 1;
	unsigned char rec[32];
	for (uint64_t seq = 0; seq < STRESS_RECORDS; seq++) {
		rec_fill(rec, sizeof rec, id, seq);
		if (rmpsc_producer_send(p, rec, sizeof rec, -1))
			_exit(4);
		if (rng_next(&rng) % 512 == 0)
			usleep(rng_next(&rng) % 300); /* let the consumer run dry and arm */
	}
	rmpsc_producer_close(p);
	rmpsc_channel_release(ch);
	_exit(0);
}

struct reaper {
	rmpsc_channel *ch;
	pid_t pids[STRESS_PRODUCERS];
	int bad;
};

static void *reap_then_close(void *arg)
{
	struct reaper *r = arg;
	for (int i = 0; i < STRESS_PRODUCERS; i++)
		r->bad |= reap(r->pids[i]) != 0;
	rmpsc_channel_close(r->ch); /* the consumer, armed, must wake for it */
	return NULL;
}

static void stress_poll_loop(uint32_t min_records, int64_t delay_ns)
{
	const char *name = "/rmpsc-test-ready";
	rmpsc_channel *ch = make_channel(name, 32, 256, STRESS_PRODUCERS, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, min_records, delay_ns));
	int fd = rmpsc_ready_fd(ch);
	CHECK(fd >= 0, "ready_fd: %s", rmpsc_last_error());
	struct reaper r = { .ch = ch };
	for (uint32_t i = 0; i < STRESS_PRODUCERS; i++) {
		r.pids[i] = fork_child();
		if (r.pids[i] == 0)
			stress_producer(name, i);
	}
	pthread_t t;
	pthread_create(&t, NULL, reap_then_close, &r);
	uint64_t next[STRESS_PRODUCERS] = { 0 }, total = 0, waits = 0;
	unsigned char buf[64 * 32];
	for (;;) {
		int n;
		while ((n = rmpsc_recv(ch, buf, 64, 0)) > 0) {
			for (int i = 0; i < n; i++) {
				uint32_t id;
				uint64_t seq;
				CHECK(rec_check(buf + i * 32, 32, &id, &seq) == 0, "record %llu is damaged",
				      (unsigned long long)total);
				CHECK(id < STRESS_PRODUCERS && seq == next[id], "producer %u: seq %llu, expected %llu",
				      id, (unsigned long long)seq, (unsigned long long)next[id]);
				next[id]++;
				total++;
			}
		}
		if (n == RMPSC_ECLOSED)
			break;
		CHECK_RC(n, RMPSC_EEMPTY);
		int64_t w;
		int a = rmpsc_ready_arm(ch, &w);
		CHECK(a == 0 || a == 1, "ready_arm: %s", rmpsc_last_error());
		if (a == 1)
			continue;
		waits++;
		/* A bounded poll: a lost wake-up shows as the watchdog, not as a hang. */
		readable(fd, (int)(w / MS) + 1);
	}
	pthread_join(t, NULL);
	CHECK(!r.bad, "a producer failed");
	CHECK(total == (uint64_t)STRESS_PRODUCERS * STRESS_RECORDS, "received %llu of %llu", (unsigned long long)total,
	      (unsigned long long)STRESS_PRODUCERS * STRESS_RECORDS);
	printf("ok poll loop (coalesce %u, %lld us): %llu records, %llu waits, %.4f wake-ups per record\n", min_records,
	       (long long)(delay_ns / 1000), (unsigned long long)total, (unsigned long long)waits,
	       (double)wakes(ch) / (double)total);
	rmpsc_channel_release(ch);
	rmpsc_unlink(name);
}

/* --- the wake-ups of a paced stream ------------------------------------------ */

#define PACED_RECORDS 10000
#define PACED_GAP_NS  40000 /* 25k records/s: gaps longer than the poll before a sleep */

static double paced_stream(uint32_t min_records, int64_t delay_ns)
{
	rmpsc_channel *ch = make_channel(NULL, 8, 1024, 1, 1);
	CHECK_OK(rmpsc_consumer_coalesce(ch, min_records, delay_ns));
	pid_t c = fork_child();
	if (c == 0) {
		rmpsc_producer *p;
		if (rmpsc_producer_register(ch, &p))
			_exit(2);
		int64_t at = now_ns();
		for (uint64_t seq = 0; seq < PACED_RECORDS; seq++) {
			at += PACED_GAP_NS;
			while (now_ns() < at) /* pacing, not synchronisation */
				;
			if (rmpsc_producer_send(p, &seq, sizeof seq, -1))
				_exit(3);
		}
		rmpsc_producer_close(p);
		_exit(0);
	}
	uint64_t got = 0, v[256], before = wakes(ch);
	while (got < PACED_RECORDS) {
		int n = rmpsc_recv(ch, v, 256, 10000 * MS);
		CHECK(n > 0, "recv: %s", rmpsc_last_error());
		for (int i = 0; i < n; i++)
			CHECK(v[i] == got + (uint64_t)i, "record %llu is %llu", (unsigned long long)(got + (uint64_t)i),
			      (unsigned long long)v[i]);
		got += (uint64_t)n;
	}
	CHECK(reap(c) == 0, "the producer failed");
	double per = (double)(wakes(ch) - before) / PACED_RECORDS;
	rmpsc_channel_release(ch);
	return per;
}

static void test_paced_wakes(void)
{
	double on = paced_stream(RMPSC_COALESCE_RECORDS, RMPSC_COALESCE_DELAY_NS);
	double off = paced_stream(1, 0);
	printf("ok paced stream at 25k records/s: %.4f wake-ups per record coalesced, %.4f without\n", on, off);
	/* Structural, not timing: coalesced, a producer wakes the consumer once per
	 * RMPSC_COALESCE_RECORDS records of its ring at most, plus once after each
	 * linger that found nothing (the producer descheduled for a millisecond). */
	CHECK(on <= 0.1, "coalesced: %.4f wake-ups per record", on);
}

int main(void)
{
	harness_start("test_ready", 120);
	atexit(children_kill_all);
	test_coalesce_settings();
	test_arm_and_drain();
	test_linger();
	test_close_wakes();
	test_producer_ready();
	test_fifo_cleanup();
	stress_poll_loop(1, 0);
	stress_poll_loop(RMPSC_COALESCE_RECORDS, RMPSC_COALESCE_DELAY_NS);
	test_paced_wakes();
	return 0;
}
