"""ringmpsc.Queue as users of multiprocessing.Queue and faster_fifo.Queue use it.

Stdlib semantics (timeout=None blocks, queue.Full / queue.Empty, close), objects of
any size up to max_size_bytes, 64 producer and 64 consumer processes with the
defaults, slots reused and waited for, consumers and producers SIGKILLed (nothing
lost, nothing half-delivered), every start method and pool, subclasses, asyncio,
NumPy frames arriving writable. faster-fifo's own suite is in faster_fifo_suite/.
"""
import asyncio
import concurrent.futures
import gc
import hashlib
import multiprocessing as mp
import os
import pickle
import queue as stdqueue
import signal
import threading
import time

import numpy as np
import pytest

import ringmpsc
from observe import some_thread_asleep_in_channel, wait_blocked, wait_for
from ringmpsc import Closed, Queue, QueueClosed

CTX = mp.get_context("fork")


def test_stdlib_semantics():
    q = Queue()
    with pytest.raises(stdqueue.Empty):
        q.get_nowait()
    with pytest.raises(stdqueue.Empty):
        q.get(timeout=0.01)
    assert q.empty() and q.qsize() == 0 and not q.full()
    # timeout=None blocks until a put (not faster_fifo's 10 s default).
    got = []
    tid = []

    def getter():
        tid.append(threading.get_native_id())
        got.append(q.get())

    t = threading.Thread(target=getter)
    t.start()
    wait_for(lambda: tid, "the getter to start")
    wait_blocked(q.channel, tid[0])
    q.put({"a": 1})
    t.join(10)
    assert got == [{"a": 1}]
    # Any picklable object; bytes too; order per producer.
    objs = [None, 1, "two", b"three", (4,) * 5, list(range(1000)), {"k": b"v" * 100_000}]
    for o in objs:
        q.put(o)
    assert q.qsize() == len(objs) and not q.empty()
    assert q.get_many() == objs
    assert q.data_size() == 0


def test_sizes_up_to_max_size_bytes():
    q = Queue(max_size_bytes=100_000)
    for n in (0, 1, 40, 56, 57, 200, 2048, 5000, 99_000):
        q.put(b"x" * n)
        assert q.get(timeout=5) == b"x" * n
    big = os.urandom(100_000 - 64)
    q.put(big)  # pickled, just under max_size_bytes
    assert q.get(timeout=5) == big
    with pytest.raises(ValueError, match="longer than this channel carries"):
        q.put(b"y" * 200_000)
    q.put("still usable")
    assert q.get_nowait() == "still usable"


def test_full_and_maxsize():
    q = Queue(max_size_bytes=1000, maxsize=3)
    for i in range(3):
        q.put_nowait(i)
    assert q.full()
    with pytest.raises(stdqueue.Full):
        q.put_nowait(3)
    t0 = time.monotonic()
    with pytest.raises(stdqueue.Full):
        q.put(3, timeout=0.05)
    assert time.monotonic() - t0 >= 0.04
    assert q.get() == 0
    assert not q.full()
    q.put_nowait(3)
    assert q.get_many() == [1, 2, 3]
    # The slab pool full: a message that does not fit now raises Full, then fits. The pool holds
    # one message of max_size_bytes and a slab more for rounding (1/32): a short message takes it.
    q = Queue(max_size_bytes=2000)
    assert q.channel.slabs == 8 + 1
    q.put_nowait(b"a" * 1900)
    assert not q.full()
    q.put_nowait(b"c" * 100)
    with pytest.raises(stdqueue.Full):
        q.put(b"b" * 1500, timeout=0.02)
    assert q.full()
    assert q.get() == b"a" * 1900
    assert q.get() == b"c" * 100
    q.put_nowait(b"b" * 1500)
    assert not q.full()


def test_maxsize_put_sleeps_until_a_get():
    """A put held back by maxsize sleeps in the channel (not a poll loop) and a get wakes it."""
    q = Queue(maxsize=2)
    q.put("a")
    q.put("b")
    done = threading.Event()
    t = threading.Thread(target=lambda: (q.put("c"), done.set()), daemon=True)
    t.start()
    wait_for(lambda: some_thread_asleep_in_channel(q.channel), "the put held back by maxsize sleeping in the channel")
    assert not done.is_set() and q.qsize() == 2
    assert q.get() == "a"
    t.join(10)
    assert done.is_set(), "a get did not let the held-back put through"
    assert sorted(q.get_many()) == ["b", "c"]  # two threads: two producers, no order between them
    # Through put_many and the generic (Python dumps) path too.
    q2 = Queue(maxsize=1, dumps=pickle.dumps, loads=pickle.loads)
    q2.put(0)
    t = threading.Thread(target=lambda: q2.put_many([1, 2]), daemon=True)
    t.start()
    for want in range(3):
        wait_for(lambda: q2.qsize() == 1, "a message waiting")
        assert q2.get(timeout=10) == want
    t.join(10)
    assert not t.is_alive() and q2.empty()


def test_maxsize_errors_and_close():
    q = Queue(maxsize=1)
    q.put(1)
    with pytest.raises(stdqueue.Full, match="maxsize"):
        q.put_nowait(2)
    with pytest.raises(stdqueue.Full, match="maxsize"):
        q.put(2, timeout=0.01)
    assert q.get_nowait() == 1 and q.empty()  # nothing half-sent
    ch = q.channel
    with pytest.raises(ValueError, match="limit"):
        ch.wait_pending_below(0)
    with pytest.raises(TypeError):
        ch.wait_pending_below("3")
    ch.wait_pending_below(1, timeout=0)
    q.put(1)
    with pytest.raises(ringmpsc.Full, match="1 records pending, not below 1"):
        ch.wait_pending_below(1, timeout=0)
    # A put held back by maxsize when the queue closes: Closed, not a hang.
    errors = []

    def put():
        try:
            q.put(2)
        except Closed as e:
            errors.append(e)

    t = threading.Thread(target=put, daemon=True)
    t.start()
    wait_for(lambda: some_thread_asleep_in_channel(ch), "the held-back put sleeping")
    q.close()
    t.join(10)
    assert not t.is_alive() and len(errors) == 1


def _bounded_producer(q, pid, n):
    for i in range(n):
        q.put((pid, i))


def test_maxsize_bounds_producer_processes():
    """3 producer processes, maxsize 4: never more than 4 + 3 - 1 waiting, all arrive in order."""
    q = Queue(maxsize=4)
    n = 2000
    procs = [CTX.Process(target=_bounded_producer, args=(q, k, n)) for k in range(3)]
    for p in procs:
        p.start()
    nxt = [0, 0, 0]
    most = 0
    for _ in range(3 * n):
        most = max(most, q.qsize())
        k, i = q.get(timeout=30)
        assert i == nxt[k], "producer %d: got %d, expected %d" % (k, i, nxt[k])
        nxt[k] += 1
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert most <= 4 + 3 - 1, "%d messages waiting at once with maxsize 4 and 3 producers" % most
    assert q.empty()


def test_put_many_is_not_atomic_and_says_how_many_went_in():
    q = Queue(max_size_bytes=2000)
    with pytest.raises(TypeError):
        q.put_many(x for x in range(3))
    with pytest.raises(stdqueue.Full) as e:
        q.put_many_nowait([b"a" * 900, b"b" * 900, b"c" * 900])
    assert e.value.sent == 2
    assert q.get_many_nowait() == [b"a" * 900, b"b" * 900]


def test_get_many_limits():
    q = Queue()
    q.put_many([bytes(100)] * 10)
    assert len(q.get_many(max_messages_to_get=3)) == 3
    # Bytes bound past the first message (a message is never split).
    assert len(q.get_many(max_byte_size_to_get=250)) <= 3
    rest = q.get_many_nowait()
    assert 4 <= len(rest) <= 7 and q.empty()


def test_close_semantics():
    q = Queue()
    q.put(1)
    q.put(2)
    q.close()
    assert q.is_closed()
    with pytest.raises(Closed):
        q.put(3)
    assert q.get() == 1
    assert q.get_many() == [2]
    with pytest.raises(QueueClosed) as e:
        q.get(timeout=1)
    assert isinstance(e.value, stdqueue.Empty) and isinstance(e.value, Closed)
    q.join_thread()
    q.cancel_join_thread()


def custom_dumps(x):
    return x.to_bytes(4, "big")


def custom_loads(b):
    return int.from_bytes(b, "big")


def test_custom_serializers_and_subclass_methods():
    q = Queue(loads=custom_loads, dumps=custom_dumps)
    q.put(7)
    assert q.get() == 7

    class Upper(Queue):
        def dumps(self, obj):
            return obj.upper().encode()

        def loads(self, msg):
            return bytes(msg).decode()

    u = Upper()
    u.put("abc")
    assert u.get() == "ABC"


# --- processes -------------------------------------------------------------------


def produce_ids(q, first, n):
    for i in range(first, first + n):
        q.put((i, hashlib.sha1(str(i).encode()).hexdigest()))


def consume_until_closed(q, out):
    got = []
    while True:
        try:
            got.extend(q.get_many(timeout=0.05))
        except QueueClosed:
            break
        except stdqueue.Empty:
            continue
    for i, h in got:
        assert h == hashlib.sha1(str(i).encode()).hexdigest()
    out.put(pickle.dumps(sorted(i for i, _ in got)))


@pytest.mark.timeout(180)
def test_64_producers_and_64_consumers_with_the_defaults():
    q = Queue()
    results = CTX.SimpleQueue()
    per = 40
    consumers = [CTX.Process(target=consume_until_closed, args=(q, results)) for _ in range(64)]
    producers = [CTX.Process(target=produce_ids, args=(q, k * per, per)) for k in range(64)]
    for c in consumers:
        c.start()
    for p in producers:
        p.start()
    for p in producers:
        p.join(120)
        assert p.exitcode == 0
    q.close()
    ids = []
    for _ in consumers:
        ids.extend(pickle.loads(results.get()))
    for c in consumers:
        c.join(30)
        assert c.exitcode == 0
    assert sorted(ids) == list(range(64 * per)), "lost or duplicated messages"


def put_and_exit(q, i):
    q.put(i)


def test_a_forked_child_registers_its_own_producer():
    q = Queue()
    q.put("parent")  # this thread's producer is registered before the fork
    slot = q._local.producer.slot
    p = CTX.Process(target=put_and_exit, args=(q, "child"))
    p.start()
    p.join(30)
    assert p.exitcode == 0, "the child used the parent's producer"
    q.put("parent again")
    assert q._local.producer.slot == slot
    got = q.get_many(timeout=5)
    while len(got) < 3:
        got.extend(q.get_many(timeout=5))
    assert sorted(got) == ["child", "parent", "parent again"]


def test_slots_of_exited_processes_are_reused_and_waited_for():
    q = Queue(max_producers=2)
    for i in range(6):  # 6 processes through 2 slots, drained as they go
        p = CTX.Process(target=put_and_exit, args=(q, i))
        p.start()
        p.join(30)
        assert p.exitcode == 0
        assert q.get(timeout=10) == i
    # Both slots held by live producers: a put waits for one, then raises Full.
    holders = [threading.Thread(target=q.put, args=(n,)) for n in ("a", "b")]
    for h in holders:
        h.start()
        h.join()
    # Their threads ended: their slots come free once their messages are taken.
    with pytest.raises(stdqueue.Full, match="no producer slot"):
        q.put("c", timeout=0.05)
    done = threading.Event()
    t = threading.Thread(target=lambda: (q.put("c", timeout=30), done.set()))
    t.start()
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        try:
            got.extend(q.get_many(timeout=1))
        except stdqueue.Empty:
            pass
    t.join(30)
    assert done.is_set() and sorted(got) == ["a", "b", "c"]


def killed_consumer(q, took):
    took.put(q.get_many(timeout=10, max_messages_to_get=5))
    os.kill(os.getpid(), signal.SIGSTOP)  # stay a member until killed


def test_a_killed_consumer_loses_nothing_it_did_not_return():
    # get() returns a message once it is taken (the core delivers again only what a
    # member dies holding inside its call): everything else goes to the others.
    q = Queue()
    q.put_many(list(range(20)))
    took = CTX.SimpleQueue()
    c = CTX.Process(target=killed_consumer, args=(q, took))
    c.start()
    theirs = took.get()
    assert 1 <= len(theirs) <= 5
    wait_for(lambda: open("/proc/%d/stat" % c.pid).read().split(") ")[1][0] == "T", "the consumer to stop")
    os.kill(c.pid, signal.SIGKILL)
    c.join(10)
    ours = []
    while len(ours) < 20 - len(theirs):
        ours.extend(q.get_many(timeout=10))
    assert sorted(theirs + ours) == list(range(20)), "lost or duplicated"
    with pytest.raises(stdqueue.Empty):
        q.get(timeout=0.05)


def produce_checked_forever(q, k):
    i = 0
    rng = np.random.default_rng(k)
    while True:
        n = int(rng.integers(1, 20_000))
        payload = bytes([i % 251]) * n
        q.put((k, i, hashlib.sha1(payload).hexdigest(), payload))
        i += 1


@pytest.mark.timeout(120)
def test_producers_sigkilled_at_random_moments_leave_nothing_half_sent():
    q = Queue(max_size_bytes=200_000)
    rng = np.random.default_rng(1)
    seen = {}
    for round_ in range(6):
        ps = [CTX.Process(target=produce_checked_forever, args=(q, round_ * 10 + k)) for k in range(3)]
        for p in ps:
            p.start()
        until = time.monotonic() + float(rng.uniform(0.05, 0.3))
        while time.monotonic() < until:
            try:
                for k, i, h, payload in q.get_many(timeout=0.05):
                    assert hashlib.sha1(payload).hexdigest() == h, "a corrupt message"
                    assert i == seen.get(k, -1) + 1, "out of order or lost within a producer"
                    seen[k] = i
            except stdqueue.Empty:
                pass
        for p in ps:
            p.kill()
            p.join(10)
        while True:  # what they committed before dying is whole and in order
            try:
                for k, i, h, payload in q.get_many(timeout=0.2):
                    assert hashlib.sha1(payload).hexdigest() == h
                    assert i == seen.get(k, -1) + 1
                    seen[k] = i
            except stdqueue.Empty:
                break
    assert len(seen) >= 12
    # The dead producers' slots and slabs came back: the pool takes a message of its whole size.
    q.put(b"z" * 150_000, timeout=10)
    assert q.get(timeout=10) == b"z" * 150_000


# --- start methods, pools, subclasses -------------------------------------------------


def child_roundtrip(q, out):
    out.put(q.get(timeout=10) * 2)


def child_put(q, x):
    q.put(x)


class SubQueue(Queue):
    pass


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_start_methods(method):
    ctx = mp.get_context(method)
    q, out = Queue(), SubQueue()
    q.put(21)
    p = ctx.Process(target=child_roundtrip, args=(q, out))
    p.start()
    assert out.get(timeout=30) == 42
    p.join(30)
    assert p.exitcode == 0


_pool_q = None


def pool_init(q):
    global _pool_q
    _pool_q = q


def pool_task(x):
    _pool_q.put(x * x)
    return type(_pool_q).__name__


def executor_task(q, x):
    q.put(x + 1)
    return x


def test_pool_initializer_and_process_pool_executor():
    q = SubQueue()
    with mp.get_context("spawn").Pool(2, initializer=pool_init, initargs=(q,)) as pool:
        assert pool.map(pool_task, range(5)) == ["SubQueue"] * 5
    assert sorted(q.get(timeout=10) for _ in range(5)) == [0, 1, 4, 9, 16]
    # Tasks carrying the queue as an argument: through a Manager-free executor with fork.
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=CTX, initializer=pool_init, initargs=(q,)) as ex:
        assert list(ex.map(pool_task, range(3))) == ["SubQueue"] * 3
    assert sorted(q.get(timeout=10) for _ in range(3)) == [0, 1, 4]


# --- asyncio, NumPy ----------------------------------------------------------------


def test_asyncio_get_and_put():
    q = Queue(max_size_bytes=4000)

    async def main():
        getter = asyncio.ensure_future(q.get_async())
        await asyncio.sleep(0)
        assert not getter.done()
        threading.Thread(target=q.put, args=("from a thread",)).start()
        assert await asyncio.wait_for(getter, 10) == "from a thread"
        # A cancelled get takes nothing.
        g = asyncio.ensure_future(q.get_async())
        await asyncio.sleep(0)  # started, and waiting: nothing to take
        assert not g.done()
        g.cancel()
        with pytest.raises(asyncio.CancelledError):
            await g
        await q.put_async("kept")
        assert await q.get_async(timeout=5) == "kept"
        # put_async waits for room without blocking the loop.
        await q.put_async(b"x" * 3000)
        waiter = asyncio.ensure_future(q.put_async(b"y" * 3000, timeout=10))
        await asyncio.sleep(0)  # started: it cannot finish while the pool is full
        assert not waiter.done()
        assert await q.get_async() == b"x" * 3000
        await asyncio.wait_for(waiter, 10)
        assert await q.get_many_async(timeout=5) == [b"y" * 3000]
        with pytest.raises(stdqueue.Empty):
            await q.get_async(timeout=0.01)

    asyncio.run(main())


def test_asyncio_gets_frames_and_custom_loads():
    frame = np.arange(131072, dtype=np.int64)  # 1 MiB: out of band
    q = Queue(max_size_bytes=4 << 20)
    tagged = Queue(max_size_bytes=4 << 20, loads=lambda m: ("loaded", bytes(m[:2])))

    async def main():
        await q.put_async(frame)
        await q.put_async({"n": 1})
        got = await q.get_async(timeout=5)
        assert got.flags.writeable and got.flags.aligned
        np.testing.assert_array_equal(got, frame)
        assert await q.get_many_async(timeout=5) == [{"n": 1}]
        await tagged.put_async(b"ab")
        assert await tagged.get_async(timeout=5) == ("loaded", bytes(tagged.dumps(b"ab"))[:2])
        await tagged.put_async(b"cd")
        assert await tagged.get_many_async(timeout=5) == [("loaded", bytes(tagged.dumps(b"cd"))[:2])]

    asyncio.run(main())


def echo_frames(q_in, q_out, n):
    for _ in range(n):
        a = q_in.get(timeout=30)
        a += 1  # received arrays are writable
        q_out.put(a)


def test_numpy_frames_round_trip_writable():
    q_in, q_out = Queue(max_size_bytes=8 << 20), Queue(max_size_bytes=8 << 20)
    p = CTX.Process(target=echo_frames, args=(q_in, q_out, 4))
    p.start()
    frames = [np.arange(131072, dtype=np.int64) * k for k in range(4)]  # 1 MiB each
    for f in frames:
        q_in.put(f)
    for f in frames:
        back = q_out.get(timeout=30)
        assert back.flags.writeable and back.dtype == np.int64
        np.testing.assert_array_equal(back, f + 1)
    p.join(30)
    assert p.exitcode == 0
    # Small and non-contiguous arrays go in band.
    q_in.put(frames[1][::3])
    np.testing.assert_array_equal(q_in.get(timeout=5), frames[1][::3])


def test_large_messages_aligned_and_their_memory_reused():
    """A received frame is aligned for its dtype (each out-of-band buffer starts at a
    multiple of 64 in its message, and a large message is received page-aligned), and
    the memory of a frame the program dropped receives the next one: no fresh mapping
    (and its page faults) per message. A frame still held is never written over.
    The garbage collector is held off: a collection in the middle would hand the
    receive cache blocks of earlier tests' frames, which the next get may take."""
    gc.collect()
    gc.disable()
    try:
        _aligned_and_reused()
    finally:
        gc.enable()


def _aligned_and_reused():
    q = Queue(max_size_bytes=4 << 20)
    frames = [np.arange(131072, dtype=np.int64) * k for k in range(3)]
    for dtype_offset in (0, 3):  # a pickle head of another length: still aligned
        q.put({"pad": "x" * dtype_offset, "f": frames[0]})
        got = q.get(timeout=5)["f"]
        assert got.flags.aligned and got.flags.writeable and got.ctypes.data % 64 == 0
        np.testing.assert_array_equal(got, frames[0])
    q.put(frames[1])
    first = q.get(timeout=5)
    addr = first.ctypes.data
    del first
    q.put(frames[2])
    second = q.get(timeout=5)
    assert second.ctypes.data == addr, "the dropped frame's memory was not reused"
    q.put(frames[1])
    third = q.get(timeout=5)  # second is held: third must live elsewhere
    assert third.ctypes.data != second.ctypes.data
    np.testing.assert_array_equal(second, frames[2])
    np.testing.assert_array_equal(third, frames[1])
    q.close()


def test_repr_and_channel():
    q = Queue()
    assert "Queue" in repr(q)
    assert isinstance(q.channel, ringmpsc.Channel)
    assert q.channel.max_consumers >= 64 and q.channel.max_producers >= 64


def test_channel_messages_gather_every_ring():
    ch = ringmpsc.Channel(64, 8, 3, slab_size=256, slabs=16, max_consumers=2)
    ps = [ch.producer() for _ in range(3)]
    for j in range(10):  # 10 records in rings of 8: each ring wraps once
        for i, p in enumerate(ps):
            p.send_message([b"%d:" % i, b"%d" % j] if j % 2 else b"%d:%d" % (i, j))
        if j == 4:
            assert len(ch.recv_messages()) == 15
    got = ch.recv_messages()
    assert sorted(got) == sorted(b"%d:%d" % (i, j) for i in range(3) for j in range(5, 10))
    for i in range(3):  # in order per producer
        mine = [m for m in got if m.startswith(b"%d:" % i)]
        assert mine == [b"%d:%d" % (i, j) for j in range(5, 10)]
    for p in ps:
        p.send_message(b"x" * 100)
    assert [len(m) for m in ch.recv_messages(max_bytes=150)] == [100]  # never split, first always taken
    assert [len(m) for m in ch.recv_messages(max_messages=1)] == [100]
    assert ch.recv_messages(bytearray_from=100) == [bytearray(b"x" * 100)]
    # A plain record is not a message: reported (and consumed), messages around it kept.
    ps[0].send_message(b"before")
    ps[0].send(b"\0" * 64)
    ps[0].send_message(b"after")
    assert ch.recv_messages() == [b"before"]
    with pytest.raises(ringmpsc.CorruptRegion, match="not a message"):
        ch.recv_messages()
    assert ch.recv_messages(timeout=1) == [b"after"]
    with pytest.raises(ValueError, match="longer than this channel carries"):
        ps[1].send_message(b"y" * (ch.message_max + 1))
