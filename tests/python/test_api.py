"""The public API, path by path, in one process."""
import array
import inspect
import os
import pickle
import queue
import threading
import time

import pytest

import ringmpsc
import workers
from workers import Checker, make_batch, make_record


def test_exports_and_hierarchy():
    for name in ringmpsc.__all__:
        assert hasattr(ringmpsc, name), name
    assert issubclass(ringmpsc.Full, ringmpsc.Error) and issubclass(ringmpsc.Full, queue.Full)
    assert issubclass(ringmpsc.Empty, ringmpsc.Error) and issubclass(ringmpsc.Empty, queue.Empty)
    for e in (ringmpsc.Closed, ringmpsc.TooManyProducers, ringmpsc.ConsumerBusy, ringmpsc.CorruptRegion):
        assert issubclass(e, ringmpsc.Error)
    assert issubclass(ringmpsc.Error, Exception)


def test_docstrings_and_signatures():
    public = [ringmpsc.Channel, ringmpsc.Consumer, ringmpsc.Producer, ringmpsc.Reservation, ringmpsc.ReadView,
              ringmpsc.unlink]
    for obj in public:
        assert obj.__doc__ and len(obj.__doc__) > 20, obj
    for cls in (ringmpsc.Channel, ringmpsc.Consumer, ringmpsc.Producer, ringmpsc.Reservation, ringmpsc.ReadView):
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            assert member.__doc__, "%s.%s has no docstring" % (cls.__name__, name)
    sig = inspect.signature(ringmpsc.Channel)
    assert list(sig.parameters) == [
        "record_size", "capacity", "max_producers", "name", "slab_size", "slabs", "full_fences", "max_consumers",
        "max_groups", "mode", "group"]
    assert sig.parameters["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["max_consumers"].kind is inspect.Parameter.KEYWORD_ONLY
    assert {n: p.default for n, p in sig.parameters.items() if n != "record_size"} == {
        "capacity": 4096, "max_producers": 16, "name": None, "slab_size": 0, "slabs": 0, "full_fences": False,
        "max_consumers": 1, "max_groups": None, "mode": 0o600, "group": None}
    assert list(inspect.signature(ringmpsc.Channel.consumer).parameters) == [
        "self", "group", "ephemeral", "at_most_once"]
    # one implementation of the consumer methods, in both types
    for name in ("recv", "recv_nowait", "recv_many", "recv_into", "read", "recv_bytes"):
        assert getattr(ringmpsc.Consumer, name).__doc__ == getattr(ringmpsc.Channel, name).__doc__, name
    assert list(inspect.signature(ringmpsc.Producer.send).parameters) == ["self", "data", "timeout"]
    assert list(inspect.signature(ringmpsc.Channel.recv_many).parameters) == ["self", "max_records", "timeout"]
    pkg = os.path.dirname(ringmpsc.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    assert os.path.exists(os.path.join(pkg, "__init__.pyi"))


def test_properties_and_repr():
    ch = ringmpsc.Channel(24, capacity=8, max_producers=3)
    assert (ch.record_size, ch.capacity, ch.max_producers) == (24, 8, 3)
    assert (ch.name, ch.slab_size, ch.slabs, ch.closed) == (None, 0, 0, False)
    assert len(ch) == 0
    assert bool(ch) is True  # empty, but a channel handle is never false
    assert "record_size=24" in repr(ch)
    assert (ch.max_consumers, ch.max_groups, ch.group, ch.last_deliveries) == (1, 1, None, 0)
    assert "max_consumers" not in repr(ch)
    ch2 = ringmpsc.Channel(8)
    assert (ch2.capacity, ch2.max_producers) == (4096, 16)
    ch3 = ringmpsc.Channel(8, capacity=2, max_producers=1, max_consumers=100)
    assert (ch3.max_consumers, ch3.max_groups) == (100, 64)  # max_groups defaults to max_consumers, at most 64
    assert "max_consumers=100" in repr(ch3)
    assert ringmpsc.Channel(8, max_consumers=3, max_groups=0).max_groups == 3
    assert ringmpsc.Channel(8, max_consumers=3, max_groups=1).max_groups == 1
    assert ch.fileno() >= 0


def test_send_recv_zero_fill():
    ch = ringmpsc.Channel(16, capacity=8)
    with ch.producer() as p:
        p.send(b"abc")
        p.send(bytearray(b"0123456789abcdef"))
        p.send(memoryview(b"xyz"))
        p.send(b"")
        p.send(array.array("B", [1, 2, 3]))
        assert len(ch) == 5
        assert ch.recv() == b"abc" + bytes(13)
        assert ch.recv(timeout=1) == b"0123456789abcdef"
        assert ch.recv_nowait() == b"xyz" + bytes(13)
        assert ch.recv(0) == bytes(16)
        assert ch.recv() == bytes([1, 2, 3]) + bytes(13)
    assert len(ch) == 0


def test_full_and_empty_timeouts():
    ch = ringmpsc.Channel(8, capacity=2)
    p = ch.producer()
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()
    with pytest.raises(queue.Empty):
        ch.recv(timeout=0)
    t = time.monotonic()
    with pytest.raises(ringmpsc.Empty):
        ch.recv(timeout=0.15)
    assert 0.14 <= time.monotonic() - t < 2
    p.send_nowait(b"1")
    p.send(b"2", timeout=0)
    with pytest.raises(ringmpsc.Full):
        p.send_nowait(b"3")
    with pytest.raises(queue.Full):
        p.send(b"3", timeout=0)
    t = time.monotonic()
    with pytest.raises(ringmpsc.Full):
        p.send(b"3", timeout=0.15)
    assert 0.14 <= time.monotonic() - t < 2
    with pytest.raises(ringmpsc.Full):
        p.reserve(timeout=0)
    assert ch.recv_many() == b"1" + bytes(7) + b"2" + bytes(7)


@pytest.mark.parametrize("n", [999, 1000, 1001])
def test_recv_many_and_recv_into_of_any_count(n):
    """Taking exactly 1000 records once read as "call again" inside the extension: the
    records were taken and dropped (Full with timeout 0, a wait for more otherwise);
    read() raised Full with timeout 0 and waited for ever without one."""
    rs = 16
    ch = ringmpsc.Channel(rs, capacity=2048, max_producers=1)
    p = ch.producer()
    buf = bytearray(1500 * rs)
    for take in (lambda: ch.recv_many(None, 0), lambda: ch.recv_many(None, 1.0),
                 lambda: buf[:ch.recv_into(buf, 0) * rs], lambda: buf[:ch.recv_into(buf, 1.0) * rs]):
        batch = make_batch(1, 0, n, rs)
        assert p.send_many(batch) == n
        assert bytes(take()) == batch
        assert len(ch) == 0
    for timeout in (0, 1.0):  # a fresh ring each: a view ends at the ring's wrap
        ch = ringmpsc.Channel(rs, capacity=2048, max_producers=1)
        batch = make_batch(1, 0, n, rs)
        assert ch.producer().send_many(batch) == n
        with ch.read(None, timeout) as view:
            assert bytes(view) == batch
        assert len(ch) == 0


def test_send_many_recv_many_recv_into():
    rs = 32
    ch = ringmpsc.Channel(rs, capacity=16, max_producers=2)
    p = ch.producer()
    assert p.send_many(b"") == 0
    assert p.send_many(make_batch(1, 0, 10, rs)) == 10
    chk = Checker()
    data = ch.recv_many(max_records=4)
    assert len(data) == 4 * rs
    chk.add_many(data, rs)
    buf = bytearray(3 * rs + 5)
    assert ch.recv_into(buf) == 3
    chk.add_many(buf[:3 * rs], rs)
    data = ch.recv_many()
    assert len(data) == 3 * rs
    chk.add_many(data, rs)
    assert p.send_many(make_batch(1, 10, 5, rs), timeout=1) == 5
    arr = array.array("b", bytes(rs * 8))
    n = ch.recv_into(memoryview(arr))
    chk.add_many(arr.tobytes()[:n * rs], rs)
    while len(ch):
        chk.add_many(ch.recv_many(), rs)
    assert chk.total() == 15


def test_send_many_partial_on_timeout():
    ch = ringmpsc.Channel(8, capacity=4)
    p = ch.producer()
    assert p.send_many(bytes(8 * 6), timeout=0) == 4
    with pytest.raises(ringmpsc.Full):
        p.send_many(bytes(8 * 2), timeout=0)
    t = time.monotonic()
    with pytest.raises(ringmpsc.Full):
        p.send_many(bytes(8 * 2), timeout=0.1)
    assert time.monotonic() - t >= 0.09
    ch.recv()
    assert p.send_many(bytes(8 * 3), timeout=0.1) == 1


def test_send_many_larger_than_ring_blocks_until_consumed():
    rs = 16
    ch = ringmpsc.Channel(rs, capacity=4)
    p = ch.producer()
    chk = Checker()
    got = []

    def consume():
        while chk.total() < 50:
            chk.add_many(ch.recv_many(timeout=10), rs)
        got.append(True)

    t = threading.Thread(target=consume)
    t.start()
    assert p.send_many(make_batch(7, 0, 50, rs), timeout=10) == 50
    t.join(10)
    assert got


def test_reserve_commit_abort_and_wrap():
    rs = 8
    ch = ringmpsc.Channel(rs, capacity=8)
    p = ch.producer()
    with p.reserve(3) as view:
        assert isinstance(view, memoryview) and not view.readonly
        assert len(view) == 3 * rs and view.ndim == 1 and view.format == "B"
        view[:] = b"A" * 24
    assert len(ch) == 3
    r = p.reserve(10)  # 5 free up to the wrap
    assert len(r) == 5 and r.nbytes == 40 and r.slot == p.slot and not r.done
    with memoryview(r) as mv:
        mv[:] = b"B" * 40
    r.commit(2)
    assert r.done and len(ch) == 5
    r = p.reserve(4)  # positions 5..7: 3 up to the wrap
    assert len(r) == 3
    r.abort()
    assert len(ch) == 5
    with pytest.raises(ValueError):
        r.commit()
    with pytest.raises(ValueError):
        r.abort()
    with pytest.raises(BufferError):
        memoryview(r)
    with pytest.raises(RuntimeError):
        with p.reserve() as view:
            view[:1] = b"Z"
            raise RuntimeError("boom")  # aborted: nothing published
    assert len(ch) == 5
    assert ch.recv_many() == b"A" * 24 + b"B" * 16
    # a reservation committed by hand inside the block is not committed twice
    with p.reserve(1) as view:
        pass
    assert len(ch) == 1
    r = p.reserve(2)
    with r as view:
        view[:] = bytes(len(view))
        del view
        r.commit(1)
    assert len(ch) == 2


def test_reservation_refuses_commit_while_exported():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    r = p.reserve(2)
    mv = memoryview(r)
    with pytest.raises(BufferError):
        r.commit()
    with pytest.raises(BufferError):
        r.abort()
    mv.release()
    r.commit()
    assert len(ch) == 2
    # a slice taken inside the with block keeps it exported: exit aborts it and says so
    keep = []
    with pytest.raises(BufferError, match="nothing was sent"):
        with p.reserve(1) as view:
            keep.append(view[0:4])
    assert len(ch) == 2
    # the producer is free while the slice lives, and freeing the slice publishes nothing
    assert p.send_nowait(b"ok") is None
    assert len(ch) == 3
    keep[0].release()
    keep.clear()
    assert len(ch) == 3


def test_dropped_reservation_aborts_and_frees_producer():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    r = p.reserve(2)
    del r
    p.send(b"x", timeout=1)
    assert ch.recv() == b"x" + bytes(7)


def test_same_thread_reentry_is_an_error_not_a_deadlock():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    r = p.reserve()
    with pytest.raises(RuntimeError):
        p.send(b"x")
    with pytest.raises(RuntimeError):
        p.close()
    r.abort()
    p.send(b"x")
    v = ch.read()
    with pytest.raises(RuntimeError):
        ch.recv()
    v.cancel()
    assert ch.recv() == b"x" + bytes(7)


def test_read_views():
    rs = 8
    ch = ringmpsc.Channel(rs, capacity=8, max_producers=2)
    a, b = ch.producer(), ch.producer()
    a.send_many(b"a" * rs * 3)
    b.send_many(b"b" * rs * 2)
    seen = []
    with ch.read(max_records=2) as view:
        assert view.readonly and len(view) == 2 * rs
        with pytest.raises(TypeError):
            view[0] = 1
        seen.append(bytes(view))
    before = len(ch)
    with pytest.raises(ZeroDivisionError):
        with ch.read() as view:
            raise ZeroDivisionError
    assert len(ch) == before  # cancelled on the exception: read again later
    v = ch.read()
    assert len(v) >= 1 and v.nbytes == len(v) * rs and v.slot in (a.slot, b.slot)
    data = bytes(memoryview(v))
    v.consume(1)
    seen.append(data[:rs])
    while len(ch):
        with ch.read() as view:
            seen.append(bytes(view))
    allb = b"".join(seen)
    assert sorted(allb) == sorted(b"a" * rs * 3 + b"b" * rs * 2)
    assert allb.replace(b"b", b"") == b"a" * rs * 3


def test_read_view_refuses_while_exported():
    ch = ringmpsc.Channel(8)
    ch.producer().send(b"q")
    v = ch.read()
    mv = memoryview(v)
    with pytest.raises(BufferError):
        v.consume()
    mv.release()
    v.consume()
    assert len(ch) == 0


def test_iteration_until_closed_and_drained():
    ch = ringmpsc.Channel(8, capacity=16)
    with ch.producer() as p:
        for i in range(10):
            p.send(bytes([i]))
    ch.close()
    assert ch.closed
    assert [r[0] for r in ch] == list(range(10))
    with pytest.raises(ringmpsc.Closed):
        ch.recv()
    with pytest.raises(ringmpsc.Closed):
        ch.recv_nowait()
    with pytest.raises(ringmpsc.Closed):
        ch.recv_many()
    with pytest.raises(ringmpsc.Closed):
        ch.read()


def test_close_semantics():
    ch = ringmpsc.Channel(8, capacity=4)
    p, q = ch.producer(), ch.producer()
    p.send(b"1")
    r = p.reserve(1)  # open across close: its commit still counts
    memoryview(r)[:1] = b"2"
    ch.close()
    ch.close()  # idempotent
    with pytest.raises(ringmpsc.Closed):
        q.send(b"3")
    with pytest.raises(ringmpsc.Closed):
        q.send_many(bytes(8))
    with pytest.raises(ringmpsc.Closed):
        q.reserve()
    with pytest.raises(ringmpsc.Closed):
        ch.producer()
    r.commit()
    assert ch.recv()[:1] == b"1"
    assert ch.recv()[:1] == b"2"
    with pytest.raises(ringmpsc.Closed):
        ch.recv(timeout=5)


def test_channel_is_not_a_context_manager():
    # Leaving a block must not close the channel for every other process.
    assert not hasattr(ringmpsc.Channel, "__enter__")


def test_producer_close_and_slot_reuse():
    ch = ringmpsc.Channel(8, capacity=4, max_producers=2)
    a, b = ch.producer(), ch.producer()
    assert {a.slot, b.slot} == {0, 1}
    with pytest.raises(ringmpsc.TooManyProducers):
        ch.producer()
    a.send(b"a")
    a.close()
    a.close()
    assert a.closed
    with pytest.raises(ValueError):
        a.send(b"x")
    with pytest.raises(ringmpsc.TooManyProducers):  # a's slot still holds a record
        ch.producer()
    assert ch.recv()[:1] == b"a"
    c = ch.producer()  # drained: the slot is reused
    assert c.slot == a.slot
    assert "slot=" in repr(c) and c.channel is ch
    del b
    d = ch.producer()  # b was freed (deregistered) when collected
    assert d.slot == 1


def test_stats():
    ch = ringmpsc.Channel(8, capacity=4, max_producers=4)
    p = ch.producer()
    p.send_many(bytes(24))
    ch.recv()
    s = ch.stats()
    assert s["record_size"] == 8 and s["capacity"] == 4 and s["max_producers"] == 4
    assert s["pending"] == 2 and s["committed"] == 3 and s["consumed"] == 1
    assert s["consumer_pid"] == os.getpid() and s["closed"] is False
    assert s["active_producers"] == 1
    (r,) = s["producers"]
    assert r == {"slot": p.slot, "state": "active", "pid": os.getpid(), "alive": True, "pending": 2,
                 "committed": 3, "consumed": 1, "dropped": 0}
    p.close()
    assert ch.stats()["producers"][0]["state"] == "detached"


def test_slabs_send_bytes_recv_bytes():
    ch = ringmpsc.Channel(8, capacity=8, slab_size=1000, slabs=3)
    assert (ch.slab_size, ch.slabs) == (1000, 3)
    p = ch.producer()
    msgs = [b"", b"x", os.urandom(1000), b"hello" * 100]
    for m in msgs[:3]:
        p.send_bytes(m)
    with pytest.raises(ringmpsc.Full):  # 3 slabs in flight
        p.send_bytes(b"more", timeout=0)
    t = time.monotonic()
    with pytest.raises(ringmpsc.Full):
        p.send_bytes(b"more", timeout=0.1)
    assert time.monotonic() - t >= 0.09
    assert ch.stats()["slabs_free"] == 0
    assert ch.recv_bytes() == msgs[0]
    p.send_bytes(bytearray(msgs[3]), timeout=1)
    assert [ch.recv_bytes(timeout=1) for _ in range(3)] == msgs[1:]
    assert ch.stats()["slabs_free"] == 3
    with pytest.raises(ValueError):
        p.send_bytes(bytes(1001))
    with pytest.raises(ringmpsc.Empty):
        ch.recv_bytes(timeout=0)


def test_slab_freed_when_send_fails():
    ch = ringmpsc.Channel(8, capacity=2, slab_size=64, slabs=8)
    p = ch.producer()
    p.send_bytes(b"1")
    p.send_bytes(b"2")
    with pytest.raises(ringmpsc.Full):  # ring full: the slab goes back to the pool
        p.send_bytes(b"3", timeout=0.05)
    assert ch.stats()["slabs_free"] == 6


def test_named_channel_open_unlink(shm_name):
    name = shm_name()
    ch = ringmpsc.Channel(16, capacity=8, name=name)
    assert ch.name == "/" + name
    assert os.path.exists("/dev/shm/" + name)
    with pytest.raises(FileExistsError):
        ringmpsc.Channel(16, name=name)
    other = ringmpsc.Channel.open(name)
    assert (other.record_size, other.capacity, other.name) == (16, 8, "/" + name)
    other2 = ringmpsc.Channel.open("/" + name)
    with other.producer() as p:
        p.send(b"via other")
    assert ch.recv() == b"via other" + bytes(7)
    other2.close()
    assert ch.closed
    ringmpsc.unlink(name)
    assert not os.path.exists("/dev/shm/" + name)
    with pytest.raises(FileNotFoundError):
        ringmpsc.Channel.open(name)
    with pytest.raises(FileNotFoundError):
        ringmpsc.unlink(name)
    assert ch.record_size == 16  # still mapped


def test_pickle_named_by_name(shm_name):
    name = shm_name()
    ch = ringmpsc.Channel(8, capacity=4, name=name)
    ch2 = pickle.loads(pickle.dumps(ch))
    assert ch2.name == ch.name and ch2.capacity == 4
    ch2.producer().send(b"p")
    assert ch.recv()[:1] == b"p"


def test_pickle_refusals():
    ch = ringmpsc.Channel(8)
    with pytest.raises(TypeError, match="anonymous"):
        pickle.dumps(ch)
    p = ch.producer()
    with pytest.raises(TypeError, match="Producer"):
        pickle.dumps(p)
    import copy

    with pytest.raises(TypeError):
        copy.copy(p)
    r = p.reserve()
    with pytest.raises(TypeError):
        pickle.dumps(r)
    r.abort()


def test_types_not_instantiable():
    for t in (ringmpsc.Producer, ringmpsc.Reservation, ringmpsc.ReadView):
        with pytest.raises(TypeError):
            t()


def test_threads_many_producers_one_consumer():
    rs = 32
    ch = ringmpsc.Channel(rs, capacity=16, max_producers=4)
    n = 400

    def prod(pid, mode):
        with ch.producer() as p:
            if mode == 0:
                for s in range(n):
                    p.send(make_record(pid, s, rs), timeout=10)
            else:
                s = 0
                while s < n:
                    with p.reserve(min(5, n - s), timeout=10) as v:
                        k = len(v) // rs
                        v[:] = make_batch(pid, s, k, rs)
                    s += k

    ts = [threading.Thread(target=prod, args=(i, i % 2)) for i in range(4)]
    for t in ts:
        t.start()
    chk = Checker()
    while chk.total() < 4 * n:
        chk.add_many(ch.recv_many(timeout=10), rs)
    for t in ts:
        t.join(10)
    assert chk.next == dict.fromkeys(range(4), n)


def test_shared_producer_and_consumer_across_threads():
    """One Producer used by several threads, one Channel consumed by several threads."""
    rs = 16
    ch = ringmpsc.Channel(rs, capacity=8)
    p = ch.producer()
    per = 300
    got = []
    lock = threading.Lock()

    def prod(tid):
        for s in range(per):
            if s % 3 == 0:
                with p.reserve(1, timeout=10) as v:
                    v[:] = make_record(tid, s, rs)
            else:
                p.send(make_record(tid, s, rs), timeout=10)

    def cons():
        while True:
            try:
                rec = ch.recv(timeout=10)
            except ringmpsc.Closed:
                return
            with lock:
                got.append(rec)

    ps = [threading.Thread(target=prod, args=(i,)) for i in range(3)]
    cs = [threading.Thread(target=cons) for _ in range(2)]
    for t in ps + cs:
        t.start()
    for t in ps:
        t.join(20)
    ch.close()
    for t in cs:
        t.join(20)
    assert not any(t.is_alive() for t in ps + cs)
    from workers import verify_record

    ids = sorted(verify_record(r) for r in got)
    assert ids == sorted((t, s) for t in range(3) for s in range(per))


def test_large_records_and_release_of_gil_paths():
    rs = ringmpsc.MAX_RECORD_SIZE
    ch = ringmpsc.Channel(rs, capacity=8, max_producers=1)
    p = ch.producer()
    blob = os.urandom(rs * 8)
    assert p.send_many(blob) == 8
    assert ch.recv_many() == blob


def test_cli_info(shm_name):
    import subprocess
    import sys

    name = shm_name()
    ch = ringmpsc.Channel(64, capacity=16, max_producers=4, name=name, slab_size=128, slabs=4)
    p = ch.producer()
    p.send_many(bytes(64 * 3))
    ch.recv()
    out = subprocess.run([sys.executable, "-m", "ringmpsc", "info", name], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "record_size 64" in text and "capacity 16" in text and "max_producers 4" in text
    assert "consumer: pid %d" % os.getpid() in text
    assert "state: open" in text and "4 x 128 bytes" in text
    assert "sealed: no" in text and "SIGBUS" in text
    assert "active" in text and str(os.getpid()) in text
    line = [ln for ln in text.splitlines() if " active " in ln][0].split()
    assert line[0] == str(p.slot) and line[2] == str(os.getpid()) and line[4] == "2"
    ch.close()
    out = subprocess.run([sys.executable, "-m", "ringmpsc", "info", name], capture_output=True, text=True,
                         timeout=30)
    assert "state: closed" in out.stdout
    out = subprocess.run([sys.executable, "-m", "ringmpsc", "info", name + "-missing"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "No such file" in out.stderr


def test_cli_info_says_which_producers_are_dead(shm_name):
    """A producer SIGKILLed keeps its slot active until someone reclaims it: info counts
    it as dead, not among the live ones."""
    import signal
    import subprocess
    import sys

    name = shm_name()
    ch = ringmpsc.Channel(8, capacity=16, max_producers=4, name=name)
    p = ch.producer()
    kid = os.fork()
    if kid == 0:
        try:
            q = ch.producer()  # a local: still registered when the process dies
            q.send(b"x")
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)  # only if the above failed
    os.waitpid(kid, 0)
    out = subprocess.run([sys.executable, "-m", "ringmpsc", "info", name], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert "producers: 1 live, 1 dead (not reclaimed yet)" in out.stdout, out.stdout
    p.close()
    ch.close()


def test_stub_declares_every_public_name():
    import ast

    path = os.path.join(os.path.dirname(ringmpsc.__file__), "__init__.pyi")
    tree = ast.parse(open(path).read())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    top |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    # Re-exports of the pure-Python modules (`from .queue import Queue as Queue`).
    top |= {a.asname for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names if a.asname == a.name}
    assert set(ringmpsc.__all__) <= top, set(ringmpsc.__all__) - top
    for cls in (ringmpsc.Channel, ringmpsc.Consumer, ringmpsc.Producer, ringmpsc.Reservation, ringmpsc.ReadView):
        declared = {n.name for n in classes[cls.__name__].body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        public = {n for n in dir(cls) if not n.startswith("_")}
        assert public <= declared, "%s: %s missing from the stub" % (cls.__name__, public - declared)


def test_channel_can_be_subclassed(shm_name):
    class Tagged(ringmpsc.Channel):
        """Extra state, an overridden method, super() calls, a class keyword."""

        def __init__(self, *args, tag="t", **kwargs):
            self.tag = tag

        def __new__(cls, *args, tag="t", **kwargs):
            return super().__new__(cls, *args, **kwargs)

        def recv(self, timeout=None):
            return self.tag.encode() + super().recv(timeout)

    ch = Tagged(8, 4, tag="x")
    assert isinstance(ch, ringmpsc.Channel) and type(ch) is Tagged and ch.tag == "x"
    assert repr(ch).startswith("<Tagged name=None record_size=8 capacity=4")
    with ch.producer() as p:
        p.send(b"a")
    assert ch.recv(timeout=1)[:2] == b"xa"
    assert len(ch) == 0
    name = shm_name()
    named = Tagged(8, name=name)
    again = Tagged.open(name)  # classmethods build the subclass
    assert type(again) is Tagged and again.name == named.name
    jobs = workers.JobQueue(8, name=shm_name())  # importable: pickles by name, as itself
    assert type(pickle.loads(pickle.dumps(jobs))) is workers.JobQueue
    # Producer, Reservation and ReadView are neither subclassable nor instantiable.
    for t in (ringmpsc.Producer, ringmpsc.Reservation, ringmpsc.ReadView):
        with pytest.raises(TypeError):
            type("Sub", (t,), {})
    with pytest.raises(TypeError):
        ringmpsc.Channel.recv = None  # immutable, like the builtin types
