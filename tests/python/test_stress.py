"""Hypothesis-driven stress: drawn geometry, producer counts, batch sizes and paths,
across threads and across processes (fork and spawn), checking exactly-once delivery,
per-producer FIFO and record checksums. And producers killed with SIGKILL mid-stream.
"""
import multiprocessing as mp
import os
import signal
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ringmpsc
import workers
from workers import Checker

# RMPSC_STRESS_SCALE=10 runs ten times the examples (a longer soak than CI's).
SCALE = int(os.environ.get("RMPSC_STRESS_SCALE", "1"))
SEND_MODES = ["send", "send_nowait", "send_many", "reserve"]
RECV_MODES = ["recv", "recv_many", "recv_into", "read", "iterate"]


def consume_all(ch, total, mode, batch, timeout=60):
    """Receive `total` records with one of the consumer paths, checking each."""
    rs = ch.record_size
    chk = Checker()
    deadline = time.monotonic() + timeout
    buf = bytearray(rs * batch)
    it = iter(ch)
    while chk.total() < total:
        left = deadline - time.monotonic()
        assert left > 0, "stalled: %d of %d records after %ss" % (chk.total(), total, timeout)
        if mode == "recv":
            chk.add(ch.recv(timeout=left))
        elif mode == "recv_many":
            chk.add_many(ch.recv_many(batch, timeout=left), rs)
        elif mode == "recv_into":
            n = ch.recv_into(buf, timeout=left)
            chk.add_many(memoryview(buf)[:n * rs], rs)
        elif mode == "read":
            with ch.read(batch, timeout=left) as view:
                chk.add_many(view, rs)
        elif mode == "iterate":
            chk.add(next(it))
    return chk


geometry = dict(
    record_size=st.sampled_from([16, 17, 24, 64, 100, 256]),
    cap_bits=st.integers(1, 7),
    producers=st.integers(1, 4),
    per_producer=st.integers(1, 2000),
    send_mode=st.sampled_from(SEND_MODES),
    recv_mode=st.sampled_from(RECV_MODES),
    batch=st.integers(1, 16),
)


@pytest.mark.timeout(120)
@settings(max_examples=40 * SCALE)
@given(**geometry)
def test_threads(record_size, cap_bits, producers, per_producer, send_mode, recv_mode, batch):
    ch = ringmpsc.Channel(record_size, capacity=1 << cap_bits, max_producers=producers)
    errors = []

    def run(pid):
        try:
            workers.produce(ch, pid, per_producer, send_mode, batch, watchdog=0)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(producers)]
    for t in ts:
        t.start()
    try:
        chk = consume_all(ch, producers * per_producer, recv_mode, batch)
    finally:
        ch.close()  # wakes any producer left blocked by a failure
        for t in ts:
            t.join(10)
    assert not errors, errors
    assert chk.next == dict.fromkeys(range(producers), per_producer)
    assert len(ch) == 0


def _run_processes(method, record_size, cap_bits, producers, per_producer, send_mode, recv_mode, batch):
    ctx = mp.get_context(method)
    ch = ringmpsc.Channel(record_size, capacity=1 << cap_bits, max_producers=producers)
    ps = [ctx.Process(target=workers.produce, args=(ch, i, per_producer, send_mode, batch)) for i in range(producers)]
    for p in ps:
        p.start()
    try:
        chk = consume_all(ch, producers * per_producer, recv_mode, batch)
        for p in ps:
            p.join(30)
            assert p.exitcode == 0, "producer exited with %s" % p.exitcode
    finally:
        ch.close()
        for p in ps:
            if p.is_alive():
                p.kill()
            p.join(5)
    assert chk.next == dict.fromkeys(range(producers), per_producer)
    s = ch.stats()
    assert s["pending"] == 0 and s["committed"] == s["consumed"] == producers * per_producer


@pytest.mark.timeout(150)
@settings(max_examples=20 * SCALE)
@given(**geometry)
def test_fork_processes(record_size, cap_bits, producers, per_producer, send_mode, recv_mode, batch):
    _run_processes("fork", record_size, cap_bits, producers, per_producer, send_mode, recv_mode, batch)


@pytest.mark.timeout(150)
@settings(max_examples=8 * SCALE)
@given(**geometry)
def test_spawn_processes(record_size, cap_bits, producers, per_producer, send_mode, recv_mode, batch):
    _run_processes("spawn", record_size, cap_bits, producers, per_producer, send_mode, recv_mode, batch)


@pytest.mark.timeout(120)
@settings(max_examples=8 * SCALE)
@given(
    producers=st.integers(1, 4),
    cap_bits=st.integers(1, 6),
    mode=st.sampled_from(["send", "reserve"]),
    kill_after=st.floats(0.02, 0.2),
)
def test_sigkill_producers_mid_stream(producers, cap_bits, mode, kill_after):
    """Killed producers: what they committed arrives intact and in order, nothing
    half-written is ever seen, and their slots are taken back for new producers."""
    ctx = mp.get_context("fork")
    rs = 48
    ch = ringmpsc.Channel(rs, capacity=1 << cap_bits, max_producers=producers)
    ready = [ctx.Event() for _ in range(producers)]
    ps = [ctx.Process(target=workers.produce_forever, args=(ch, i, mode, ready[i])) for i in range(producers)]
    for p in ps:
        p.start()
    try:
        for e in ready:
            assert e.wait(30)
        chk = Checker()
        # Consume until every producer is under way (the machine may be busy) ...
        deadline = time.monotonic() + 30
        while len(chk.next) < producers:
            assert time.monotonic() < deadline, "producers never started: %s" % chk.next
            try:
                chk.add_many(ch.recv_many(timeout=0.05), rs)
            except ringmpsc.Empty:
                pass
        # ... then a while longer, so they are killed at random points of a send.
        end = time.monotonic() + kill_after
        while time.monotonic() < end:
            try:
                chk.add_many(ch.recv_many(timeout=0.01), rs)
            except ringmpsc.Empty:
                pass
        for p in ps:
            os.kill(p.pid, signal.SIGKILL)
        for p in ps:
            p.join(10)
            assert p.exitcode == -signal.SIGKILL
        # Drain what they committed: every record intact, per-producer sequences gapless.
        while True:
            try:
                chk.add_many(ch.recv_many(timeout=0.2), rs)
            except ringmpsc.Empty:
                break
        assert all(chk.next.get(i, 0) > 0 for i in range(producers)), chk.next
        assert len(ch) == 0
        # Every slot was held by a dead process: registering takes them back.
        fresh = [ch.producer() for _ in range(producers)]
        assert sorted(p.slot for p in fresh) == list(range(producers))
        with pytest.raises(ringmpsc.TooManyProducers):
            ch.producer()
        s = ch.stats()
        assert s["reclaimed_slots"] >= producers
        assert all(r["pid"] == os.getpid() and r["state"] == "active" for r in s["producers"])
        # ... and they work, continuing each slot's positions.
        for i, p in enumerate(fresh):
            p.send(workers.make_record(100 + i, 0, rs))
        got = Checker()
        got.add_many(ch.recv_many(), rs)
        assert got.next == {100 + i: 1 for i in range(producers)}
    finally:
        for p in ps:
            if p.is_alive():
                p.kill()
            p.join(5)


@pytest.mark.timeout(90)
def test_sigkill_with_slabs_returns_them_to_the_pool():
    ctx = mp.get_context("fork")
    ch = ringmpsc.Channel(16, capacity=4, max_producers=2, slab_size=256, slabs=6)
    p = ctx.Process(target=_slab_hog, args=(ch,))
    p.start()
    try:
        deadline = time.monotonic() + 30
        while ch.stats()["slabs_free"] > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        # The child has sent 4 (the ring is full) and holds a fifth it waits to send.
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        msgs = []
        while True:
            try:
                msgs.append(ch.recv_bytes(timeout=0.2))
            except ringmpsc.Empty:
                break
        assert msgs == [b"slab %d" % i for i in range(4)]
        ch.reclaim_dead()
        q = ch.producer()  # a new producer; slabs held by the dead one are free again
        assert ch.stats()["slabs_free"] == 6
        for i in range(4):
            q.send_bytes(b"again %d" % i, timeout=1)
        assert [ch.recv_bytes(timeout=1) for _ in range(4)] == [b"again %d" % i for i in range(4)]
    finally:
        if p.is_alive():
            p.kill()
        p.join(5)


def _slab_hog(ch):
    workers.arm_watchdog(60)
    p = ch.producer()
    for i in range(4):
        p.send_bytes(b"slab %d" % i)
    p.send_bytes(b"never")  # holds a slab while it waits for ring space, until killed
