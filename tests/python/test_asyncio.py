"""Event loops: the readiness fd (ready_fd / ready_arm / ready_disarm), the coroutines
(recv_async, read_async, send_async, ..., async iteration) on asyncio, uvloop and a
loop without add_reader, cancellation, and wake-ups per record with coalescing.

Every wait is bounded (asyncio.wait_for, or a deadline on observable state: a wait
is "armed" once ringmpsc._aio registered its round for the ready fd).
"""
import asyncio
import inspect
import math
import multiprocessing as mp
import os
import random
import select
import selectors
import subprocess
import sys
import textwrap
import time

import pytest

import ringmpsc
import workers
from ringmpsc import _aio

FORK = mp.get_context("fork")
RS = 32  # record size of the tests' channels (workers.make_record needs >= 16)


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without add_reader, as Windows' ProactorEventLoop or some custom loops."""

    def add_reader(self, fd, callback, *args):
        raise NotImplementedError


def new_loop(kind):
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (make deps installs it)")
        return uvloop.new_event_loop()
    if kind == "no_reader":
        return NoReaderLoop()
    return asyncio.new_event_loop()


def run(kind, main, timeout=45):
    """Run main() on a fresh loop of `kind`, bounded; cancel what is left, as asyncio.run does."""
    loop = new_loop(kind)
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))
    finally:
        try:
            left = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in left:
                t.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


LOOPS = ["asyncio", "uvloop", "no_reader"]
READER_LOOPS = ["asyncio", "uvloop"]  # "armed" is observable only where the wait is on the fd


async def until(pred, what, timeout=15):
    """Wait, bounded, until pred() holds (observable state, looked at every millisecond)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        await asyncio.sleep(0.001)


def armed(n=1):
    """A predicate: n waits are armed on ready fds (each its round's leader)."""
    return lambda: len(_aio._rounds) >= n


def rec(pid, seq):
    return workers.make_record(pid, seq, RS)


def produce_paced(ch, pid, count, rate, burst=8, close=False):
    """A child process: send records pid/0..count-1 at about `rate` records a second,
    in bursts (a steady stream, as a real source would make); then maybe close."""
    workers.arm_watchdog(60)
    with ch.producer() as p:
        t0 = time.perf_counter()
        for seq in range(0, count, burst):
            for s in range(seq, min(seq + burst, count)):
                p.send(rec(pid, s), timeout=30)
            ahead = t0 + (seq + burst) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)  # pacing the stream, not synchronization
    if close:
        ch.close()


def close_when(ch, event):
    workers.arm_watchdog(60)
    if event.wait(30):
        ch.close()


def exits_within(procs, timeout=30):
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, "child %s exit code %s" % (p.pid, p.exitcode)


# --------------------------------------------------------------------------- #
# The API: real methods, docs, settings.


def test_coroutines_and_readiness_are_methods_of_the_types():
    for cls in (ringmpsc.Channel, ringmpsc.Consumer):
        for name in ("recv_async", "recv_many_async", "read_async", "recv_bytes_async", "ready_fd", "ready_arm",
                     "ready_disarm", "set_coalesce", "coalesce", "__aiter__", "__anext__"):
            assert name in vars(cls), (cls, name)
    for name in ("send_async", "send_bytes_async", "ready_fd", "ready_arm", "ready_disarm"):
        assert name in vars(ringmpsc.Producer), name
    sig = inspect.signature(ringmpsc.Channel.read_async)
    assert list(sig.parameters) == ["self", "max_records", "timeout"]
    assert list(inspect.signature(ringmpsc.Producer.send_async).parameters) == ["self", "data", "timeout"]
    assert "NOT pollable" in ringmpsc.Channel.fileno.__doc__ and "ready_fd" in ringmpsc.Channel.fileno.__doc__
    # asyncio is imported by the first coroutine, not by `import ringmpsc`.
    out = subprocess.run([sys.executable, "-c", "import sys, ringmpsc; print('asyncio' in sys.modules)"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out


def test_ready_fd_is_not_fileno_and_follows_the_protocol():
    ch = ringmpsc.Channel(RS, capacity=8)
    fd = ch.ready_fd()
    assert fd != ch.fileno() and ch.ready_fd() == fd
    assert ch.coalesce == (32, 0.001)  # RMPSC_COALESCE_RECORDS, RMPSC_COALESCE_DELAY_NS
    ch.set_coalesce(1, 0)  # no linger: the arm waits for the first record
    assert ch.ready_arm() > 0  # armed: math.inf, or a period where the core's fence is not available
    assert select.select([fd], [], [], 0)[0] == []
    with ch.producer() as p:
        p.send(rec(1, 0))
        assert select.select([fd], [], [], 10)[0] == [fd]  # the send wrote the FIFO
        assert ch.ready_arm() == 0.0  # drained, and the record is there
        assert select.select([fd], [], [], 0)[0] == []
        ch.recv(timeout=0)
        # Coalescing on: the arm lingers at most max_delay.
        ch.set_coalesce(4, 0.25)
        t = ch.ready_arm()
        assert 0 < t <= 0.25
        ch.ready_disarm()
        ch.ready_disarm()  # safe when not armed
        # A producer's readiness: space now.
        pfd = p.ready_fd()
        assert pfd not in (fd, ch.fileno()) and p.ready_arm() == 0.0
    ch.close()
    assert ch.ready_arm() == 0.0  # the close is ready now


def test_coalesce_settings_round_trip_and_bad_values_raise():
    ch = ringmpsc.Channel(RS, capacity=64, max_consumers=2)
    ch.set_coalesce(8, 0.002)
    assert ch.coalesce == (8, 0.002)
    ch.set_coalesce(min_records=1, max_delay=0)
    assert ch.coalesce == (1, 0.0)
    ch.set_coalesce(16, 1)  # the largest delay
    assert ch.coalesce == (16, 1.0)
    with ch.consumer("other", ephemeral=True) as c:
        assert c.coalesce == (32, 0.001)  # per handle: the Channel's settings are its own
        c.set_coalesce(4, 0.0005)
        assert c.coalesce == (4, 0.0005) and ch.coalesce == (16, 1.0)
    for bad, name in (((0, 0.001), "min_records"), ((-1, 0.001), "min_records"), ((2**32, 0.001), "min_records"),
                      ((8, -0.1), "max_delay"), ((8, 1.5), "max_delay"), ((8, math.nan), "max_delay")):
        with pytest.raises(ValueError, match=name):
            ch.set_coalesce(*bad)
    for bad, name in ((("8", 0.001), "min_records"), ((8, "1"), "max_delay"), ((True, 0.001), "min_records"),
                      ((8, None), "max_delay")):
        with pytest.raises(TypeError, match=name):
            ch.set_coalesce(*bad)
    assert ch.coalesce == (16, 1.0)  # unchanged by the failures
    c = ch.consumer("gone", ephemeral=True)
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.set_coalesce(1, 0)
    with pytest.raises(ValueError, match="closed"):
        c.coalesce  # noqa: B018
    assert isinstance(ch.stats()["consumer_wakes"], int)


# --------------------------------------------------------------------------- #
# Coroutines.


@pytest.mark.parametrize("kind", LOOPS)
def test_coroutines_receive_like_the_sync_calls(kind):
    ch = ringmpsc.Channel(RS, capacity=16, slab_size=256, slabs=4)
    p = ch.producer()

    async def main():
        with pytest.raises(ringmpsc.Empty, match="no record available"):
            await ch.recv_async(timeout=0)
        with pytest.raises(ringmpsc.Empty, match="within the timeout"):
            await ch.recv_async(timeout=0.02)
        with pytest.raises(ringmpsc.Empty):
            await ch.read_async(timeout=0.01)
        with pytest.raises(ValueError, match="timeout"):
            await ch.recv_async(timeout=-1)
        with pytest.raises(TypeError, match="timeout"):
            await ch.recv_async(timeout="1")
        for s in range(6):
            p.send(rec(1, s))
        assert await ch.recv_async() == rec(1, 0)
        assert await ch.recv_many_async(max_records=2) == rec(1, 1) + rec(1, 2)
        view = await ch.read_async(2)
        with view as mv:
            assert bytes(mv) == rec(1, 3) + rec(1, 4)
        assert ch.last_deliveries == 1
        p.send_bytes(b"a message")
        assert await ch.recv_async(timeout=5) == rec(1, 5)
        assert await ch.recv_bytes_async(timeout=5) == b"a message"
        # A wait that the send ends.
        task = asyncio.ensure_future(ch.recv_async(timeout=20))
        await asyncio.sleep(0)
        p.send(rec(1, 6))
        assert await task == rec(1, 6)
        # async for ends at Closed, as iteration does.
        p.send(rec(1, 7))
        p.send(rec(1, 8))
        ch.close()
        got = [r async for r in ch]
        assert got == [rec(1, 7), rec(1, 8)]
        with pytest.raises(ringmpsc.Closed):
            await ch.recv_async()

    run(kind, main)


@pytest.mark.parametrize("kind", LOOPS)
def test_a_consumer_of_a_group_awaits_and_iterates(kind):
    ch = ringmpsc.Channel(RS, capacity=16, max_consumers=2)
    c = ch.consumer("audit")
    p = ch.producer()

    async def main():
        task = asyncio.ensure_future(c.recv_async(timeout=20))
        await asyncio.sleep(0)
        p.send(rec(2, 0))
        assert await task == rec(2, 0)
        for s in range(1, 4):
            p.send(rec(2, s))
        ch.close()
        assert [r async for r in c] == [rec(2, s) for s in range(1, 4)]

    run(kind, main)
    assert list(ch) == [rec(2, s) for s in range(4)]  # the default group got them all too


def test_a_read_view_held_across_an_await_blocks_the_group_in_this_thread():
    ch = ringmpsc.Channel(RS)
    with ch.producer() as p:
        p.send(rec(1, 0))

        async def main():
            view = await ch.read_async()
            with pytest.raises(RuntimeError, match="read"):
                await ch.recv_async(timeout=0)
            view.cancel()
            assert await ch.recv_async(timeout=1) == rec(1, 0)

        run("asyncio", main)


@pytest.mark.parametrize("kind", READER_LOOPS)
def test_close_from_another_process_wakes_a_waiting_consumer(kind, procs):
    ch = ringmpsc.Channel(RS)
    go = FORK.Event()
    child = FORK.Process(target=close_when, args=(ch, go))
    child.start()
    procs.append(child)

    async def main():
        task = asyncio.ensure_future(ch.recv_async())  # no timeout: only the close ends it
        await until(armed(), "the consumer's wait armed")
        assert not task.done()
        go.set()
        with pytest.raises(ringmpsc.Closed):
            await asyncio.wait_for(task, 15)
        assert not _aio._rounds

    run(kind, main)
    exits_within([child])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", LOOPS)
def test_stress_producer_processes_to_one_loop_every_record_once(kind, procs):
    """Three producer processes, one consumer in an event loop mixing recv_async,
    recv_many_async, read_async and async iteration; the close ends it."""
    n = 3000
    ch = ringmpsc.Channel(RS, capacity=256, max_producers=4)
    kids = [FORK.Process(target=produce_paced, args=(ch, pid, n, 60000, 16)) for pid in range(3)]
    for k in kids:
        k.start()
    procs.extend(kids)
    chk = workers.Checker()
    rnd = random.Random(1)

    async def closer():
        await until(lambda: all(k.exitcode is not None for k in kids), "the producers exited", 90)
        ch.close()

    async def main():
        close = asyncio.ensure_future(closer())
        waits = 0
        while True:
            try:
                r = rnd.random()
                if len(ch) == 0:
                    waits += 1
                if r < 0.35:
                    chk.add(await ch.recv_async())
                elif r < 0.6:
                    chk.add_many(await ch.recv_many_async(rnd.randint(1, 40)), RS)
                elif r < 0.85:
                    view = await ch.read_async(rnd.randint(1, 40))
                    with view as mv:
                        chk.add_many(mv, RS)
                else:
                    async for one in ch:
                        chk.add(one)
                        break
            except ringmpsc.Closed:
                break
        await close
        return waits

    waits = run(kind, main, timeout=100)
    exits_within(kids)
    assert chk.total() == 3 * n and chk.next == {0: n, 1: n, 2: n}
    assert waits > 0  # the consumer did wait (the stream is paced)


def _consume_in_a_loop(ch, q, waiting):
    """Child: a member of the default group receiving in its own event loop until Closed."""
    workers.arm_watchdog(90)

    async def main():
        first = asyncio.ensure_future(ch.recv_async())
        await until(armed(), "the child's wait armed")
        waiting.set()
        try:
            got = [workers.verify_record(await first)]
        except ringmpsc.Closed:  # the other member took everything
            return []
        return got + [workers.verify_record(r) async for r in ch]

    q.put(asyncio.run(asyncio.wait_for(main(), 80)))


@pytest.mark.timeout(120)
def test_members_in_two_processes_share_the_work_in_their_event_loops(procs):
    """Work sharing (max_consumers=2): each member awaits its own readiness FIFO; every
    record goes to one of them, exactly once."""
    n = 3000
    ch = ringmpsc.Channel(RS, capacity=128, max_producers=2, max_consumers=2)
    q, waiting = FORK.Queue(), FORK.Event()
    member = FORK.Process(target=_consume_in_a_loop, args=(ch, q, waiting))
    member.start()
    procs.append(member)
    assert waiting.wait(30), "the other member did not start waiting"
    kids = [FORK.Process(target=produce_paced, args=(ch, pid, n, 40000, 8)) for pid in range(2)]
    for k in kids:
        k.start()
    procs.extend(kids)

    async def main():
        async def closer():
            await until(lambda: all(k.exitcode is not None for k in kids), "the producers exited", 90)
            ch.close()

        close = asyncio.ensure_future(closer())
        mine = [workers.verify_record(r) async for r in ch]
        await close
        return mine

    mine = run("asyncio", main, timeout=100)
    theirs = q.get(timeout=60)
    exits_within(kids + [member])
    assert len(mine) + len(theirs) == 2 * n
    assert set(mine) | set(theirs) == {(pid, s) for pid in range(2) for s in range(n)}
    print("\nwork shared between two event loops: %d here, %d in the other process" % (len(mine), len(theirs)))


async def _cancel_storm(ch, seen, rnd, stop):
    """Receive with cancellations at random moments: wait_for timeouts and task.cancel()."""
    loop = asyncio.get_running_loop()
    cancelled = 0

    def take(data):
        for off in range(0, len(data), RS):
            key = workers.verify_record(data[off:off + RS])
            assert key not in seen, "record %s delivered twice" % (key,)
            seen.add(key)

    while not stop():
        how = rnd.random()
        try:
            if how < 0.4:
                take(await asyncio.wait_for(ch.recv_async(), rnd.uniform(0, 0.003)))
            elif how < 0.7:
                task = asyncio.ensure_future(ch.recv_many_async(rnd.randint(1, 8)))
                loop.call_later(rnd.uniform(0, 0.002), task.cancel)
                await asyncio.wait([task])  # raises nothing: this task's own cancellation stays apart
                if task.cancelled():
                    cancelled += 1
                else:
                    take(task.result())
            else:
                view = await asyncio.wait_for(ch.read_async(rnd.randint(1, 8)), rnd.uniform(0, 0.003))
                with view as mv:
                    take(bytes(mv))
        except asyncio.TimeoutError:  # wait_for cancelled the receive
            cancelled += 1
        except ringmpsc.Closed:
            break
    return cancelled


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", LOOPS)
def test_cancellation_at_random_moments_loses_no_record(kind, procs):
    """Three consumer tasks (sharing the ready fd: one leads each round) cancelled at
    random moments while two producer processes send: every record is received once."""
    n = 4000
    ch = ringmpsc.Channel(RS, capacity=64, max_producers=2)
    kids = [FORK.Process(target=produce_paced, args=(ch, pid, n, 30000, 4)) for pid in range(2)]
    for k in kids:
        k.start()
    procs.extend(kids)
    seen = set()

    async def main():
        rnds = [random.Random(s) for s in range(3)]
        done = lambda: all(k.exitcode is not None for k in kids) and len(ch) == 0  # noqa: E731
        counts = await asyncio.gather(*(_cancel_storm(ch, seen, r, done) for r in rnds))
        ch.close()
        async for one in ch:  # whatever the storm left
            key = workers.verify_record(one)
            assert key not in seen
            seen.add(key)
        assert not _aio._rounds
        return sum(counts)

    cancelled = run(kind, main, timeout=100)
    exits_within(kids)
    assert seen == {(pid, s) for pid in range(2) for s in range(n)}
    assert cancelled > 50, "too few cancellations to mean anything: %d" % cancelled


def test_a_cancelled_wait_leaves_no_reader_and_no_announcement():
    ch = ringmpsc.Channel(RS)
    ch.set_coalesce(1, 0)  # announce for the first record: a stale announcement would cost a wake-up
    p = ch.producer()

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(ch.recv_async())
        await until(armed(), "the wait armed")
        fd = ch.ready_fd()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not _aio._rounds
        assert loop.remove_reader(fd) is False  # nothing was registered any more
        wakes = ch.stats()["consumer_wakes"]
        p.send(rec(1, 0))
        assert ch.stats()["consumer_wakes"] == wakes  # disarmed: the send woke nobody
        assert await ch.recv_async(timeout=5) == rec(1, 0)

    run("asyncio", main)


@pytest.mark.parametrize("kind", READER_LOOPS)
def test_tasks_waiting_on_one_membership_take_turns_and_a_cancelled_leader_strands_nobody(kind):
    ch = ringmpsc.Channel(RS)
    same = ch.consumer()  # the default group: the Channel's membership, shared
    st = os.fstat(ch.ready_fd()), os.fstat(same.ready_fd())
    assert (st[0].st_dev, st[0].st_ino) == (st[1].st_dev, st[1].st_ino)
    p = ch.producer()

    async def main():
        a = asyncio.ensure_future(ch.recv_async(timeout=20))
        await until(armed(), "the first wait armed")
        b = asyncio.ensure_future(same.recv_async(timeout=20))
        c = asyncio.ensure_future(ch.recv_async(timeout=20))
        await until(lambda: sum(len(r.followers) for r in _aio._rounds.values()) == 2, "two followers")
        a.cancel()  # the leader goes; its followers must not be left waiting
        with pytest.raises(asyncio.CancelledError):
            await a
        await until(armed(), "a follower leads the next round")
        p.send(rec(1, 0))
        p.send(rec(1, 1))
        got = await asyncio.wait_for(asyncio.gather(b, c), 15)
        assert sorted(got) == [rec(1, 0), rec(1, 1)]

    run(kind, main)


def test_waits_in_two_threads_loops_on_one_membership():
    import threading

    ch = ringmpsc.Channel(RS)
    p = ch.producer()
    out = {}

    def other():
        out["other"] = asyncio.run(asyncio.wait_for(ch.recv_async(), 20))

    async def main():
        t = threading.Thread(target=other, daemon=True)
        t.start()
        await until(armed(), "the other thread's wait armed")
        mine = asyncio.ensure_future(ch.recv_async(timeout=20))
        await until(lambda: sum(len(r.followers) for r in _aio._rounds.values()) == 1,
                    "this loop's wait joined the other thread's round")
        p.send(rec(1, 0))
        p.send(rec(1, 1))
        got = await mine
        await until(lambda: not t.is_alive(), "the other thread finished")
        return got

    mine = run("asyncio", main)
    assert sorted([mine, out["other"]]) == [rec(1, 0), rec(1, 1)]


def test_the_coroutines_readiness_calls_never_wait_for_another_thread():
    """The _try calls _aio makes answer "busy" at once while another thread holds the
    object (here an open ReadView and an open Reservation); the fd last seen is kept."""
    import threading

    ch = ringmpsc.Channel(RS, capacity=4)
    ch.set_coalesce(1, 0)  # an arm with a record there answers "ready now", without a linger
    p = ch.producer()
    fds = {ch: ch.ready_fd(), p: p.ready_fd()}
    for obj, fd in fds.items():
        assert obj._ready_fd_try() == fd == obj._ready_fd_cached()
    p.send(rec(1, 0))
    held, done = threading.Event(), threading.Event()

    def hold():
        view, res = ch.read(), p.reserve(1)
        held.set()
        done.wait(20)
        view.cancel()
        res.abort()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert held.wait(10)
    try:
        for obj, fd in fds.items():
            t0 = time.monotonic()
            assert obj._ready_fd_try() is None
            assert obj._ready_arm_try() is None
            assert obj._ready_disarm_try(fd) is False  # left announced: a spurious wake-up at most
            assert obj._ready_fd_cached() == fd  # enough to follow another wait's round
            assert time.monotonic() - t0 < 0.5
    finally:
        done.set()
        t.join(10)
    assert ch.recv(timeout=0) == rec(1, 0)  # what the cancelled view left
    for obj, fd in fds.items():
        assert obj._ready_fd_try() == fd
        assert obj._ready_disarm_try(fd) is True
    assert p._ready_arm_try() == 0.0  # the ring has room
    assert ch._ready_arm_try() > 0  # armed: nothing to receive
    assert ch._ready_disarm_try(fds[p]) is True  # an arm for another FIFO: this one's stays
    wakes = ch.stats()["consumer_wakes"]
    p.send(rec(1, 1))
    assert ch.stats()["consumer_wakes"] == wakes + 1
    assert ch.recv(timeout=0) == rec(1, 1)
    assert ch._ready_arm_try() > 0
    assert ch._ready_disarm_try(fds[ch]) is True  # withdrawn: the next send wakes nobody
    p.send(rec(1, 2))
    assert ch.stats()["consumer_wakes"] == wakes + 1
    p.close()
    assert p._ready_disarm_try(fds[p]) is True  # closed: nothing to withdraw
    with pytest.raises(ValueError, match="closed"):
        p._ready_arm_try()


def test_a_leader_that_resumes_after_its_round_was_taken_over_leaves_the_new_arm_alone():
    """A round whose leader's loop stopped is taken over by a wait in another loop; when
    the old leader runs again it ends without withdrawing the new leader's arm (which
    would leave that wait to the core's recheck, a second, coalescing off)."""
    import threading

    ch = ringmpsc.Channel(RS)
    ch.set_coalesce(1, 0)
    p = ch.producer()
    first = asyncio.new_event_loop()
    stale = None
    try:

        async def start():
            task = asyncio.ensure_future(ch.recv_async())
            await until(armed(), "the first wait armed")
            return task

        stale = first.run_until_complete(start())  # the loop stops with its wait armed
        out, loops = {}, []

        def loop_thread():
            async def wait():
                loops.append(asyncio.get_running_loop())
                out["rec"] = await ch.recv_async(timeout=20)
                out["at"] = time.monotonic()

            asyncio.run(asyncio.wait_for(wait(), 30))

        t = threading.Thread(target=loop_thread, daemon=True)
        t.start()
        deadline = time.monotonic() + 15
        while not any(loops and r.loop is loops[0] for r in list(_aio._rounds.values())):
            assert time.monotonic() < deadline, "the other loop's wait did not take the round over"
            time.sleep(0.001)
        stale.cancel()  # the old leader runs again, and ends
        first.run_until_complete(asyncio.gather(stale, return_exceptions=True))
        t0 = time.monotonic()
        p.send(rec(1, 0))
        t.join(15)
        assert out.get("rec") == rec(1, 0), out
        assert out["at"] - t0 < 0.5, "the new leader got the record %.2fs after it was sent" % (out["at"] - t0)
    finally:
        if stale is not None and not stale.done():
            stale.cancel()
            first.run_until_complete(asyncio.gather(stale, return_exceptions=True))
        first.close()


@pytest.mark.parametrize("kind", LOOPS)
def test_closing_a_consumer_or_producer_ends_its_waits_at_once(kind):
    """close() wakes the coroutines waiting on the object: ValueError at once (not at
    the next recheck, a second later), their readers gone. A new Consumer of the group
    that waits in the same loop before the closed one's wait has run again (its FIFO
    may get the closed descriptor's number) waits as any other. Coalescing off: every
    arm waits for the core's recheck, a second."""
    ch = ringmpsc.Channel(RS, capacity=2)
    p = ch.producer()
    full = ringmpsc.Channel(RS, capacity=2).producer()  # another channel: ch's consumers see none of it
    while True:
        try:
            full.send(rec(2, 0), timeout=0)
        except ringmpsc.Full:
            break

    async def ends_at_once(obj, wait, meanwhile=None):
        loop = asyncio.get_running_loop()
        readers = len(loop._selector.get_map()) if kind == "asyncio" else None
        task = asyncio.ensure_future(wait)
        ended = []
        task.add_done_callback(lambda _: ended.append(loop.time()))
        if kind != "no_reader":
            await until(lambda: id(obj) in _aio._waiting, "the wait armed")
        else:
            await asyncio.sleep(0)  # it polls: it has tried once
        t0 = loop.time()
        obj.close()
        if meanwhile:
            await meanwhile()
        with pytest.raises(ValueError, match="closed"):
            await asyncio.wait_for(task, 10)
        took = ended[0] - t0
        assert took < 0.5, "the wait on a closed %s ended after %.2fs" % (type(obj).__name__, took)
        assert not _aio._rounds and not _aio._waiting
        if readers is not None:
            assert len(loop._selector.get_map()) == readers  # no reader left behind

    async def wait_on_a_new_consumer():
        again = ch.consumer()
        again.set_coalesce(1, 0)
        asyncio.get_running_loop().call_later(0.05, p.send, rec(1, 0))  # while it waits, or before
        assert await again.recv_async(timeout=10) == rec(1, 0)  # in this task: before the closed one runs
        again.close()

    async def main():
        c = ch.consumer()  # the default group, of which the Channel is no member: closing ends it
        c.set_coalesce(1, 0)
        await ends_at_once(c, c.recv_async(), wait_on_a_new_consumer)  # no timeout: only the close ends it
        await ends_at_once(full, full.send_async(rec(2, 1)))

    run(kind, main)


def test_closing_a_consumer_from_another_thread_ends_a_wait_in_a_loop_thread():
    import threading

    ch = ringmpsc.Channel(RS)
    c = ch.consumer()
    c.set_coalesce(1, 0)  # the arm waits for the core's recheck, a second
    out = {}

    def loop_thread():
        async def wait():
            try:
                await c.recv_async(timeout=20)
            except ValueError as e:
                out["error"] = e
            out["at"] = time.monotonic()

        asyncio.run(asyncio.wait_for(wait(), 30))

    t = threading.Thread(target=loop_thread, daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while id(c) not in _aio._waiting:
        assert time.monotonic() < deadline, "the wait did not arm"
        time.sleep(0.001)
    t0 = time.monotonic()
    c.close()
    t.join(15)
    assert "closed" in str(out.get("error")), out
    assert out["at"] - t0 < 0.5, "the other loop's wait ended %.2fs after the close" % (out["at"] - t0)
    assert not _aio._rounds and not _aio._waiting


@pytest.mark.parametrize("kind", READER_LOOPS)
def test_waits_on_a_channel_that_left_its_group_join_again_at_once(kind):
    """leave() ends the membership and its FIFO: the wait under way looks again at once
    (it would sit on the old FIFO until the core's recheck, a second, coalescing off),
    and a wait that starts on the new FIFO before that one has run again (which may
    have the old descriptor's number) is woken by the next record."""
    ch = ringmpsc.Channel(RS)
    ch.set_coalesce(1, 0)
    p = ch.producer()

    async def main():
        loop = asyncio.get_running_loop()
        old = asyncio.ensure_future(ch.recv_async(timeout=20))
        await until(armed(), "the wait armed")
        t0 = loop.time()
        ch.leave()
        new = asyncio.ensure_future(ch.recv_async(timeout=10))  # a wait on the new membership
        loop.call_later(0.05, p.send, rec(1, 0))  # while both wait (either may take either)
        loop.call_later(0.06, p.send, rec(1, 1))
        got = await asyncio.wait_for(asyncio.gather(old, new), 10)
        took = loop.time() - t0
        assert sorted(got) == [rec(1, 0), rec(1, 1)]
        assert took < 0.5, "the waits under way at leave() and after it got their records %.2fs after" % took
        assert ch.group == ringmpsc.DEFAULT_GROUP

    run(kind, main)


def test_a_close_while_this_thread_holds_the_rounds_lock_does_not_deadlock():
    """close() tells _aio (_changed, which takes _rounds_lock); a finalizer the GC runs
    while a round's bookkeeping holds that lock may close a Consumer."""
    import threading

    ch = ringmpsc.Channel(RS)
    c = ch.consumer()
    done = threading.Event()

    def close_inside():
        with _aio._rounds_lock:
            c.close()
        done.set()

    threading.Thread(target=close_inside, daemon=True).start()
    assert done.wait(10), "Consumer.close() inside _aio._rounds_lock deadlocked"


def test_asyncio_run_exits_promptly_with_waits_pending():
    """Pending waits (a consumer, a follower, a producer on a full ring) do not keep
    asyncio.run from returning nor the process from exiting: no thread, no reader left."""
    script = textwrap.dedent("""
        import asyncio, threading, ringmpsc
        from ringmpsc import _aio

        ch = ringmpsc.Channel(32, capacity=2)
        p = ch.producer()
        while True:
            try:
                p.send(b"x", timeout=0)
            except ringmpsc.Full:
                break
        other = ringmpsc.Channel(32)

        async def main():
            waits = [asyncio.ensure_future(other.recv_async()), asyncio.ensure_future(other.recv_async()),
                     asyncio.ensure_future(p.send_async(b"y"))]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while len(_aio._rounds) < 2 or sum(len(r.followers) for r in _aio._rounds.values()) < 1:
                assert loop.time() < deadline, "waits not armed"
                await asyncio.sleep(0.001)
            assert not any(w.done() for w in waits)
            return waits

        waits = asyncio.run(main())
        assert all(w.cancelled() for w in waits), waits
        assert not _aio._rounds
        assert threading.active_count() == 1
        print("exited")
    """)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "exited", out
    assert time.monotonic() - t0 < 30


# --------------------------------------------------------------------------- #
# A plain select loop: the arm/drain protocol by hand.


@pytest.mark.parametrize("how", ["selectors", "epoll-edge"])
def test_select_loop_with_the_arm_drain_protocol(how, procs):
    n = 3000
    ch = ringmpsc.Channel(RS, capacity=128)
    kid = FORK.Process(target=produce_paced, args=(ch, 7, n, 50000, 8, True))  # closes when done
    kid.start()
    procs.append(kid)
    fd = ch.ready_fd()
    if how == "selectors":
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)

        def wait(t):
            return sel.select(None if t == math.inf else t)
    else:
        ep = select.epoll()
        ep.register(fd, select.EPOLLIN | select.EPOLLET)  # edge-triggered: works because every arm drains

        def wait(t):
            return ep.poll(-1 if t == math.inf else t)

    chk = workers.Checker()
    waited = 0
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the loop did not finish: %d records" % chk.total()
        try:
            chk.add(ch.recv(timeout=0))
            continue
        except ringmpsc.Empty:
            pass
        except ringmpsc.Closed:
            break
        t = ch.ready_arm()
        if t:
            waited += 1
            wait(min(t, 10.0))  # bounded; the protocol needs no limit
    exits_within([kid])
    assert chk.next == {7: n} and waited > 0


# --------------------------------------------------------------------------- #
# Producers.


@pytest.mark.parametrize("kind", LOOPS)
def test_send_async_waits_for_space_and_a_cancelled_send_sent_nothing(kind):
    ch = ringmpsc.Channel(RS, capacity=4)
    p = ch.producer()
    for s in range(4):
        p.send(rec(3, s))

    async def main():
        with pytest.raises(ringmpsc.Full, match="ring full"):
            await p.send_async(rec(3, 99), timeout=0)
        with pytest.raises(ringmpsc.Full, match="within the timeout"):
            await p.send_async(rec(3, 99), timeout=0.02)
        lost = asyncio.ensure_future(p.send_async(rec(3, 99)))
        if kind != "no_reader":
            await until(armed(), "the send's wait armed")
        else:
            await asyncio.sleep(0.01)  # let it poll a few times; it cannot have sent (the ring is full)
        lost.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lost
        assert not _aio._rounds
        task = asyncio.ensure_future(p.send_async(rec(3, 4), timeout=20))
        if kind != "no_reader":
            await until(armed(), "the send's wait armed")
        assert ch.recv() == rec(3, 0)  # space: the consumer's release wakes the send
        await asyncio.wait_for(task, 15)
        return [ch.recv(timeout=0) for _ in range(4)]

    assert run(kind, main) == [rec(3, s) for s in range(1, 5)]  # 99 never went
    with pytest.raises(ringmpsc.Empty):
        ch.recv(timeout=0)


@pytest.mark.parametrize("kind", READER_LOOPS)
def test_producer_and_consumer_coroutines_cancelled_at_random_send_exactly_what_they_report(kind, procs):
    """A producer task whose sends are cancelled at random moments on a small ring, a
    consumer process draining: the consumer gets exactly the sends that returned."""
    ch = ringmpsc.Channel(RS, capacity=4)
    sent = []

    async def main():
        p = ch.producer()
        rnd = random.Random(5)
        cancelled = 0
        for s in range(3000):
            try:
                await asyncio.wait_for(p.send_async(rec(4, s)), rnd.uniform(0, 0.002))
                sent.append(s)
            except asyncio.TimeoutError:
                cancelled += 1
        p.close()
        ch.close()
        return cancelled

    got = FORK.Queue()
    kid = FORK.Process(target=_collect, args=(ch, got))
    kid.start()
    procs.append(kid)
    cancelled = run(kind, main, timeout=100)
    received = got.get(timeout=60)
    exits_within([kid])
    assert received == sent  # in order, none lost, none extra
    assert cancelled > 0 and len(sent) > 0


def _collect(ch, q):
    workers.arm_watchdog(90)
    out = []
    for r in ch:
        pid, seq = workers.verify_record(r)
        out.append(seq)
        if len(out) % 64 == 0:
            time.sleep(0.0005)  # a slow consumer keeps the producer's ring full (pacing)
    q.put(out)


@pytest.mark.parametrize("kind", LOOPS)
def test_send_bytes_async_waits_for_a_free_slab(kind):
    ch = ringmpsc.Channel(RS, capacity=16, slab_size=64, slabs=2)
    p = ch.producer()
    p.send_bytes(b"one")
    p.send_bytes(b"two")  # the pool is empty; the ring has room

    async def main():
        with pytest.raises(ringmpsc.Full, match="slab"):
            await p.send_bytes_async(b"three", timeout=0.02)
        task = asyncio.ensure_future(p.send_bytes_async(b"three", timeout=20))
        await asyncio.sleep(0.005)
        assert not task.done()
        assert ch.recv_bytes() == b"one"  # a slab comes free: the polling send finds it
        await asyncio.wait_for(task, 15)
        return [await ch.recv_bytes_async(timeout=5) for _ in range(2)]

    assert run(kind, main) == [b"two", b"three"]


# --------------------------------------------------------------------------- #
# Wake-ups per record.


def _wakes_per_record(ch, n, consume):
    before = ch.stats()
    kid = FORK.Process(target=produce_paced, args=(ch, 1, n, 75000, 8))
    kid.start()
    try:
        consume()
    finally:
        kid.join(30)
    after = ch.stats()
    assert kid.exitcode == 0
    assert after["consumed"] - before["consumed"] == n
    return (after["consumer_wakes"] - before["consumer_wakes"]) / n


@pytest.mark.timeout(120)
def test_coalescing_bounds_wakeups_per_record_of_a_steady_stream():
    """A paced producer (about 75k records/s in bursts of 8) to a blocking consumer:
    with coalescing (the default, 32 records or 1 ms) producers wake it about once per
    32 records, whatever the timing; the count is structural, not a timing."""
    n = 20000
    results = {}
    for label, settings in (("default", None), ("off", (1, 0))):
        ch = ringmpsc.Channel(RS, capacity=4096)
        if settings:
            ch.set_coalesce(*settings)
        chk = workers.Checker()

        def consume(ch=ch, chk=chk):
            for _ in range(n):
                chk.add(ch.recv(timeout=20))

        results[label] = _wakes_per_record(ch, n, consume)
        assert chk.next == {1: n}
    print("\nwake-ups per record, blocking recv: coalescing on %.4f, off %.4f" % (results["default"],
                                                                                  results["off"]))
    assert results["default"] <= 0.1, results


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", READER_LOOPS)
def test_coalescing_bounds_wakeups_per_record_in_an_event_loop(kind):
    n = 20000
    results = {}
    for label, settings in (("default", None), ("off", (1, 0))):
        ch = ringmpsc.Channel(RS, capacity=4096)
        if settings:
            ch.set_coalesce(*settings)
        chk = workers.Checker()

        async def main(ch=ch, chk=chk):
            for _ in range(n):
                chk.add(await ch.recv_async(timeout=20))

        results[label] = _wakes_per_record(ch, n, lambda main=main: run(kind, main, timeout=100))
        assert chk.next == {1: n}
    print("\nwake-ups per record, recv_async on %s: coalescing on %.4f, off %.4f" % (kind, results["default"],
                                                                                     results["off"]))
    assert results["default"] <= 0.1, results
