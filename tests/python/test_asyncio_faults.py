"""Event loops and the Python binding against the faults a second adversarial review
found: one test per finding, each asserting what the README ("Event loops
(asyncio)"), ringmpsc._aio's docstring and the methods' docs promise; each fails on
the code it was found in (da5fac2).

Every wait is bounded (asyncio.wait_for, timeouts on every call, joins with a
limit); a test that finds the fault fails within a few seconds.
"""

import asyncio
import collections
import gc
import multiprocessing as mp
import os
import struct
import threading
import time

import pytest

import observe
import ringmpsc
from ringmpsc import _aio

FORK = mp.get_context("fork")
RS = 32


def _record(i):
    return struct.pack("<Q", i).ljust(RS, b"\0")


async def _heartbeat(stop, gaps):
    """Tick every 10 ms; record how long each tick really took (a blocked loop shows)."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = loop.time()
        gaps.append(now - last)
        last = now


# --------------------------------------------------------------------------- #
# 1. The readiness calls a coroutine makes (ready_fd, ready_arm, ready_disarm)
#    wait for the membership (or producer) lock without a deadline: while another
#    thread holds it (a blocking recv or send, an open ReadView), the event loop's
#    thread is blocked in that wait, every task of the loop with it. README: the
#    coroutines "wait in the running event loop instead of blocking it".


def _hold_with_blocking_recv(ch, p, held, release):
    held.set()
    try:
        ch.recv(timeout=1.5)  # nothing comes: holds the group's consumer side 1.5 s
    except ringmpsc.Empty:
        pass


def _hold_with_read_view(ch, p, held, release):
    p.send(_record(1))
    view = ch.read(timeout=5)
    held.set()
    release.wait(10)  # a slow handler working on the records in place, until the test is done
    view.cancel()


def _hold_with_blocking_send(ch, p, held, release):
    while True:
        try:
            p.send(_record(0), timeout=0)
        except ringmpsc.Full:
            break
    held.set()
    try:
        p.send(_record(0), timeout=1.5)  # the ring stays full: holds the producer 1.5 s
    except ringmpsc.Full:
        pass


@pytest.mark.timeout(30)
@pytest.mark.parametrize("holder", ["blocking_recv", "read_view", "blocking_send"])
def test_another_threads_call_does_not_block_the_event_loop(holder):
    ch = ringmpsc.Channel(RS, capacity=4)
    p = ch.producer()
    hold = {
        "blocking_recv": _hold_with_blocking_recv,
        "read_view": _hold_with_read_view,
        "blocking_send": _hold_with_blocking_send,
    }[holder]
    held, release = threading.Event(), threading.Event()

    async def main():
        stop, gaps = asyncio.Event(), []
        beat = asyncio.ensure_future(_heartbeat(stop, gaps))
        t = threading.Thread(target=hold, args=(ch, p, held, release), daemon=True)
        t.start()
        assert held.wait(10)
        if holder != "read_view":  # the other thread is asleep inside its call now
            observe.wait_asleep_in_channel(ch, t.native_id)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            if holder == "blocking_send":
                await p.send_async(_record(2), timeout=0.3)
            else:
                await ch.recv_async(timeout=0.3)
        except (ringmpsc.Empty, ringmpsc.Full):
            pass
        took = loop.time() - t0
        stop.set()
        await beat
        release.set()
        t.join(10)
        return took, max(gaps)

    loop = asyncio.new_event_loop()
    try:
        took, worst = loop.run_until_complete(asyncio.wait_for(main(), 20))
    finally:
        loop.close()
    assert worst < 0.6 and took < 0.9, (
        "while another thread held the %s, an await with timeout=0.3 took %.2fs and the event loop "
        "did not run for %.2fs: the coroutine's readiness call waited for the lock with the loop's "
        "thread" % ("consumer side (%s)" % holder if holder != "blocking_send" else "producer", took, worst)
    )


# --------------------------------------------------------------------------- #
# 2. The membership lock that serializes a process's consumer calls on a group is
#    per Channel object (glock_get: "one per group per Channel"), but membership is
#    per process: two Channel objects on one region (Channel.open twice, a name and
#    a descriptor, ...) share one member place, and the core allows one thread at a
#    time on it (ringmpsc.h). Threads receiving through the two objects enter the
#    core together: spurious ValueError ("called inside an rmpsc_consume callback
#    ... of another handle of this process"), records delivered twice, or a ring
#    fenced off as corrupt (SOLO plain stores racing). Round schemes of the
#    coroutines (process-wide per FIFO) do not cover the receives themselves.


@pytest.mark.timeout(60)
def test_two_channel_objects_on_one_region_receive_in_two_threads_every_record_once(shm_name):
    name = shm_name()
    a = ringmpsc.Channel(8, name=name, capacity=256)
    b = ringmpsc.Channel.open(name)
    burst = 16
    got = {0: [], 1: []}
    errors = []

    def consume(i, ch):
        try:
            while True:
                try:
                    rs = ch.recv_many(4, timeout=2)
                except (ringmpsc.Empty, ringmpsc.Closed):
                    return
                got[i].extend(x[0] for x in struct.iter_unpack("<Q", rs))
        except Exception as e:
            errors.append("%s: %r" % ("ab"[i], e))

    threads = [threading.Thread(target=consume, args=(i, c), daemon=True) for i, c in enumerate((a, b))]
    for t in threads:
        t.start()
    p = a.producer()
    sent = 0
    until = time.monotonic() + 4  # bursts until a fault shows, at most this long
    try:
        while time.monotonic() < until and not errors:
            p.send_many(b"".join(struct.pack("<Q", sent + j) for j in range(burst)), timeout=3)
            sent += burst
            time.sleep(0.0002)  # bursts: both waiting threads wake for each
    except (ringmpsc.Full, ringmpsc.Closed) as e:
        errors.append("send: %r" % e)
    a.close()
    for t in threads:
        t.join(20)
    counts = collections.Counter(got[0] + got[1])
    dups = sum(v - 1 for v in counts.values() if v > 1)
    missing = sent - len(counts)
    assert not errors and not dups and not missing, (
        "two Channel objects of one process on one region, a receiving thread each: errors %s, %d records "
        "delivered twice, %d of %d missing" % (errors[:3], dups, missing, sent)
    )


# --------------------------------------------------------------------------- #
# 3. The waits of one process on a membership take turns: one leader per FIFO,
#    process-wide, the others (in any loop, any thread) wait for its round to end,
#    without a timer of their own. A leader whose loop stopped running (a loop run
#    with run_until_complete that left the wait pending, a loop thread busy or
#    blocked) never ends its round: every other wait of the process on that
#    membership waits for its whole timeout (for ever with timeout=None) though
#    records are there.


@pytest.mark.timeout(30)
def test_a_leader_in_a_loop_that_stopped_strands_waits_in_other_loops():
    ch = ringmpsc.Channel(RS)
    p = ch.producer()
    first = asyncio.new_event_loop()
    try:

        async def start_leader():
            task = asyncio.ensure_future(ch.recv_async())  # a background receive
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not _aio._rounds:
                assert loop.time() < deadline, "the background wait did not arm"
                await asyncio.sleep(0.001)
            return task

        pending = first.run_until_complete(start_leader())  # returns; the loop stops running

        async def receive():
            wait = asyncio.ensure_future(ch.recv_async(timeout=2))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while sum(len(r.followers) for r in _aio._rounds.values()) < 1:
                assert loop.time() < deadline, "the second wait did not join the round"
                await asyncio.sleep(0.001)
            p.send(_record(7))  # the record comes while it waits
            t0 = time.monotonic()
            try:
                return await wait, time.monotonic() - t0
            except ringmpsc.Empty:
                return None, time.monotonic() - t0

        got, took = asyncio.run(receive())  # another loop in this thread (or any other thread)
        assert got == _record(7) and took < 1.0, (
            "a record came %.2fs before recv_async (timeout 2 s, in another loop) returned %s: it waited "
            "for the round of a leader whose loop is not running (with timeout=None: for ever)"
            % (took, "it" if got == _record(7) else "nothing")
        )
    finally:
        pending.cancel()
        first.run_until_complete(asyncio.gather(pending, return_exceptions=True))
        first.close()


# --------------------------------------------------------------------------- #
# 4. A multiprocessing child (fork) that awaited a receive makes its member's
#    readiness FIFO, and ends with os._exit: its Channel is never released, so the
#    FIFO stays in /dev/shm. Nobody recovers the dead member (the parent is no
#    member of that group, or stops consuming) and releasing the channel removes
#    nothing; the sweep runs only when a process makes its first FIFO, and spares
#    files younger than a minute. A pool of such workers leaves one file each.


def _await_once_and_report(ch, q):
    async def main():
        fd = ch.ready_fd()
        q.put(os.readlink("/proc/self/fd/%d" % fd))
        try:
            await ch.recv_async(timeout=0.05)
        except ringmpsc.Empty:
            pass

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_forked_worker_that_awaited_leaves_no_fifo():
    ch = ringmpsc.Channel(RS, max_consumers=2)
    q = FORK.Queue()
    child = FORK.Process(target=_await_once_and_report, args=(ch, q))
    child.start()
    path = q.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    assert path.startswith("/dev/shm/.ringmpsc-"), path
    try:
        ch.close()
        del ch
        gc.collect()
        left = os.path.exists(path)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    assert not left, (
        "the fork child's readiness FIFO %s is still in /dev/shm after the child exited normally and "
        "the parent released the channel" % path
    )


# --------------------------------------------------------------------------- #
# 5. _aio's _rounds_lock (a threading.Lock) and _rounds are inherited by a fork
#    child as they were: a fork while another thread's loop is inside
#    `with _rounds_lock:` (every round enters it twice) leaves the lock held for
#    good in the child, whose first wait then blocks its event loop for ever
#    (multiprocessing's default start method on Linux is fork). Nothing resets
#    them after fork (no os.register_at_fork), as the C core does for its own
#    process-local state.


def _await_in_child(ch, q):
    async def main():
        try:
            await ch.recv_async(timeout=0.2)
        except ringmpsc.Empty:
            pass

    path = os.readlink("/proc/self/fd/%d" % ch.ready_fd())  # for the parent to clean up
    t0 = time.monotonic()
    done = threading.Event()

    def run():
        asyncio.run(main())
        done.set()

    threading.Thread(target=run, daemon=True).start()
    q.put((path, done.wait(5) and time.monotonic() - t0))


@pytest.mark.timeout(60)
def test_a_fork_while_another_thread_is_inside_a_round_leaves_the_child_working():
    ch = ringmpsc.Channel(RS, max_consumers=2)
    q = FORK.Queue()
    taken, release = threading.Event(), threading.Event()

    def other_loop_inside_a_round():  # stands for another thread's wait between its two lines
        with _aio._rounds_lock:
            taken.set()
            release.wait(10)

    t = threading.Thread(target=other_loop_inside_a_round, daemon=True)
    t.start()
    assert taken.wait(10)
    child = FORK.Process(target=_await_in_child, args=(ch, q))
    child.start()
    release.set()
    t.join(10)
    path = None
    try:
        path, took = q.get(timeout=30)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(5)
        if path:  # the child's FIFO stays behind (finding 4)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    assert took, (
        "the fork child's recv_async(timeout=0.2) did not return within 5 s: _aio._rounds_lock was "
        "held by another thread at the fork, and stays held in the child"
    )
