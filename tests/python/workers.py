"""Record format and child-process bodies for the Python tests.

Kept free of pytest/hypothesis imports: spawn and forkserver children import this
module, and it should load fast.

Record layout (record_size >= 16), little-endian:
    u32 producer id | u32 sequence | u32 crc32 of the rest | u32 payload seed | payload...
"""
import faulthandler
import os
import signal
import struct
import sys
import time
import zlib

import ringmpsc

HEADER = struct.Struct("<IIII")
MIN_RECORD = HEADER.size


def make_record(pid, seq, size):
    """A record that verify_record() can check: identity, sequence, checksum."""
    seed = (pid * 2654435761 + seq * 40503) & 0xFFFFFFFF
    n = size - HEADER.size
    payload = (struct.pack("<I", seed) * (n // 4 + 1))[:n]
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<III", pid, seq, seed)))
    return HEADER.pack(pid, seq, crc, seed) + payload


def verify_record(rec):
    """Return (pid, seq) of a record made by make_record; raise AssertionError if damaged."""
    pid, seq, crc, seed = HEADER.unpack_from(rec)
    payload = bytes(rec[HEADER.size:])
    want = zlib.crc32(payload, zlib.crc32(struct.pack("<III", pid, seq, seed)))
    if crc != want:
        raise AssertionError("checksum mismatch in record pid=%d seq=%d" % (pid, seq))
    return pid, seq


def make_batch(pid, first, count, size):
    return b"".join(make_record(pid, first + i, size) for i in range(count))


class Checker:
    """Exactly-once and per-producer FIFO over everything a consumer received."""

    def __init__(self):
        self.next = {}

    def add(self, rec):
        pid, seq = verify_record(rec)
        want = self.next.get(pid, 0)
        if seq != want:
            raise AssertionError("producer %d: got seq %d, expected %d (lost, duplicated or reordered)"
                                 % (pid, seq, want))
        self.next[pid] = seq + 1

    def add_many(self, data, record_size):
        mv = memoryview(data)
        for off in range(0, len(mv), record_size):
            self.add(mv[off:off + record_size])

    def total(self):
        return sum(self.next.values())


def arm_watchdog(seconds=60):
    """A child that outlives its test dies (with a traceback) instead of hanging CI.

    SIGALRM, not faulthandler.dump_traceback_later: a forked child inherits the
    parent's armed watchdog lock without its thread, and re-arming it deadlocks.
    """
    faulthandler.register(signal.SIGALRM, all_threads=True, chain=True)
    signal.alarm(int(seconds))


def produce(ch, pid, count, mode="send", batch=1, watchdog=60):
    """Send records pid/0..count-1 through a fresh Producer using one of the send paths.

    watchdog: seconds before a child process kills itself; 0 in threads of the test process.
    """
    if watchdog:
        arm_watchdog(watchdog)
    rs = ch.record_size
    with ch.producer() as p:
        seq = 0
        while seq < count:
            n = min(batch, count - seq)
            if mode == "send":
                p.send(make_record(pid, seq, rs))
                seq += 1
            elif mode == "send_nowait":
                rec = make_record(pid, seq, rs)
                while True:
                    try:
                        p.send_nowait(rec)
                        break
                    except ringmpsc.Full:
                        time.sleep(0.0005)
                seq += 1
            elif mode == "send_many":
                sent = p.send_many(make_batch(pid, seq, n, rs))
                assert sent == n, (sent, n)
                seq += n
            elif mode == "reserve":
                with p.reserve(n) as view:
                    k = len(view) // rs
                    view[:] = make_batch(pid, seq, k, rs)
                seq += k
            else:
                raise ValueError(mode)


def produce_forever(ch, pid, mode, ready):
    """Send an endless sequence until killed (for SIGKILL tests)."""
    arm_watchdog(60)
    rs = ch.record_size
    p = ch.producer()
    ready.set()
    seq = 0
    while True:
        if mode == "reserve":
            r = p.reserve(3)
            k = len(r)
            with memoryview(r) as view:
                for i in range(k):
                    view[i * rs:(i + 1) * rs] = make_record(pid, seq + i, rs)
            r.commit()
            seq += k
        else:
            p.send(make_record(pid, seq, rs))
            seq += 1


def claim_consumer_and_exit(ch, hold_event=None, done_event=None):
    """Claim the consumer role (a recv_nowait) and report what happened via exit code."""
    arm_watchdog(30)
    try:
        ch.recv_nowait()
    except ringmpsc.ConsumerBusy:
        os._exit(3)
    except ringmpsc.Empty:
        pass
    except BaseException as e:
        sys.stderr.write("unexpected %r\n" % (e,))
        os._exit(4)
    if hold_event is not None:
        hold_event.set()
        done_event.wait(20)
    os._exit(0)


def use_inherited_producer(p):
    """Exit 0 if using a fork-inherited Producer raises ringmpsc.Error, 1 otherwise."""
    arm_watchdog(30)
    try:
        p.send(b"x")
    except ringmpsc.Error as e:
        ok = "fork" in str(e)
    else:
        ok = False
    try:
        p.reserve()
    except ringmpsc.Error:
        pass
    else:
        ok = False
    os._exit(0 if ok else 1)


def pool_task(args):
    """Pool worker: send `count` records as producer `pid`; return this process's pid."""
    ch, pid, count = args
    produce(ch, pid, count, "send_many", batch=8)
    return os.getpid()


def pool_echo_channel(ch):
    """Pool worker returning the Channel it was given (pickled back to the parent)."""
    return ch


class JobQueue(ringmpsc.Channel):
    """A user's subclass, as queue libraries see them: own methods and attributes.

    Module level so that it pickles by reference into spawned children."""

    def put(self, data, timeout=None):
        p = self.__dict__.get("_producer")
        if p is None or p.closed:
            p = self._producer = self.producer()
        p.send(data, timeout=timeout)

    def get(self, timeout=None):
        return self.recv(timeout=timeout).rstrip(b"\0")


def put_jobs(q, first, count):
    """Child body: the JobQueue arrives as a JobQueue and its methods work."""
    arm_watchdog(30)
    assert type(q) is JobQueue, type(q)
    for i in range(first, first + count):
        q.put(b"job %d" % i)
    return os.getpid()


# --- consumer groups (test_groups.py) -------------------------------------------------

GROUP_REC = struct.Struct("<Q")  # records of the group tests: one u64 id
RESULT = struct.Struct("<QQ")  # a worker's report: its pid, a record id it received


def share_worker(ch, results, n_workers, group=None, watchdog=60):
    """A worker of a group (the Channel's default group, or `group` through a Consumer):
    take records until the channel is closed and drained, reporting each id to `results`.

    After its first record it waits until every worker has reported one (the
    results channel's committed count), so that each worker provably takes some.
    Returns this process's pid (for Pool).
    """
    if watchdog:
        arm_watchdog(watchdog)
    src = ch if group is None else ch.consumer(group)
    pid = os.getpid()
    with results.producer() as out:
        first = GROUP_REC.unpack(src.recv(timeout=30))[0]
        out.send(RESULT.pack(pid, first))
        deadline = time.monotonic() + 30
        while results.stats()["committed"] < n_workers:
            assert time.monotonic() < deadline, "the other workers never took a record"
            time.sleep(0.001)
        while True:
            try:
                rec = src.recv(timeout=30)
            except ringmpsc.Closed:
                break
            out.send(RESULT.pack(pid, GROUP_REC.unpack(rec)[0]))
    if group is not None:
        src.close()
    signal.alarm(0)  # a Pool worker lives on after its task
    return pid


def share_pool_task(args):
    return share_worker(*args)


def hold_and_wait(ch, conn, group=None, flags=(), max_records=4):
    """Join (the default group, or `group`), read up to max_records and never
    advance: report the ids held through `conn`, then wait to be killed."""
    arm_watchdog(60)
    src = ch if group is None else ch.consumer(group, **dict.fromkeys(flags, True))
    if max_records:
        v = src.read(max_records, timeout=30)
        ids = [GROUP_REC.unpack_from(memoryview(v), i * GROUP_REC.size)[0] for i in range(len(v))]
        conn.send((ids, v.deliveries))
    else:
        conn.send(([], 0))
    while True:
        signal.pause()


def member_loop(conn, ch, group, flags):
    """A member process of the stateful test: runs the parent's commands one at a
    time and answers each (errors as ('error', type name, message))."""
    arm_watchdog(120)
    c = view = None
    while True:
        cmd, arg = conn.recv()
        try:
            if cmd == "join":
                c = ch.consumer(group, ephemeral="ephemeral" in flags, at_most_once="at_most_once" in flags)
                out = None
            elif cmd == "recv":
                rec = c.recv_nowait()
                out = ([GROUP_REC.unpack(rec)[0]], c.last_deliveries)
            elif cmd == "read":
                view = c.read(arg, timeout=0)
                mv = memoryview(view)
                out = ([GROUP_REC.unpack_from(mv, i * GROUP_REC.size)[0] for i in range(len(view))],
                       view.deliveries)
                mv.release()
            elif cmd == "consume":
                view.consume(arg)
                view = None
                out = None
            elif cmd == "leave":
                c.close()
                c = None
                out = None
            else:
                raise ValueError(cmd)
            conn.send(("ok", out))
        except ringmpsc.Error as e:
            conn.send(("error", type(e).__name__, str(e)))
