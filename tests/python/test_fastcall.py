"""The binding's fast paths: vectorcall argument parsing, bytes without a buffer
export, the GIL-serialized per-object lock and the bounded poll before a sleep."""
import array
import threading
import time

import pytest

import observe
import ringmpsc


def test_every_method_takes_its_arguments_by_position_and_by_name():
    ch = ringmpsc.Channel(8, capacity=8, slab_size=16, slabs=2)
    p = ch.producer()
    p.send(data=b"a", timeout=1)
    p.send(b"b", timeout=None)
    p.send(b"c", 1)
    assert p.send_many(data=bytes(8), timeout=1) == 1
    assert p.send_many(bytes(8), None) == 1
    assert ch.recv(timeout=1)[:1] == b"a"
    assert ch.recv(1)[:1] == b"b"
    assert ch.recv_many(max_records=1, timeout=1)[:1] == b"c"
    buf = bytearray(8)
    assert ch.recv_into(buffer=buf, timeout=1) == 1
    assert ch.recv_into(buf, 1) == 1
    r = p.reserve(n=2, timeout=1)
    r.commit(k=1)
    r = p.reserve(1, None)
    r.commit(1)
    v = ch.read(max_records=1, timeout=1)
    v.consume(k=1)
    v = ch.read(1, 1)
    v.consume(1)
    p.send_bytes(data=b"xyz", timeout=1)
    assert ch.recv_bytes(timeout=1) == b"xyz"
    p.send_bytes(b"uv", 1)
    assert ch.recv_bytes(1) == b"uv"
    assert len(ch) == 0


def _calls(ch, p):
    return {
        "send": p.send,
        "send_many": p.send_many,
        "send_bytes": p.send_bytes,
        "reserve": p.reserve,
        "recv": ch.recv,
        "recv_many": ch.recv_many,
        "recv_into": ch.recv_into,
        "read": ch.read,
        "recv_bytes": ch.recv_bytes,
    }


BAD_ARGS = [
    # (method, args, kwargs, message fragment)
    ("send", (), {}, "missing required argument 'data' (pos 1)"),
    ("send", (), {"timeout": 1}, "missing required argument 'data'"),
    ("send", (b"x", 1, 2), {}, "takes at most 2 arguments (3 given)"),
    ("send", (b"x",), {"data": b"y"}, "given by name ('data') and position (1)"),
    ("send", (b"x",), {"bogus": 1}, "'bogus' is an invalid keyword argument for send()"),
    ("send_many", (), {}, "missing required argument 'data'"),
    ("send_bytes", (b"x",), {"timeout": 1, "extra": 2}, "takes at most 2 arguments (3 given)"),
    ("reserve", (1,), {"n": 1}, "given by name ('n') and position (1)"),
    ("reserve", (), {"count": 1}, "'count' is an invalid keyword argument for reserve()"),
    ("recv", (1, 2), {}, "takes at most 1 argument (2 given)"),
    ("recv", (), {"timout": 1}, "'timout' is an invalid keyword argument for recv()"),
    ("recv_many", (1,), {"max_records": 1}, "given by name ('max_records') and position (1)"),
    ("recv_into", (), {"timeout": 1}, "missing required argument 'buffer' (pos 1)"),
    ("read", (), {"max": 1}, "'max' is an invalid keyword argument for read()"),
    ("recv_bytes", (), {"timeout": 1, "x": 1}, "takes at most 1 argument (2 given)"),
]


@pytest.mark.parametrize("name,args,kwargs,match", BAD_ARGS)
def test_argument_errors_are_type_errors_that_name_the_problem(name, args, kwargs, match):
    ch = ringmpsc.Channel(8, capacity=4, slab_size=16, slabs=2)
    p = ch.producer()
    with pytest.raises(TypeError) as e:
        _calls(ch, p)[name](*args, **kwargs)
    assert match in str(e.value)
    assert len(ch) == 0 and ch.stats()["slabs_free"] == 2  # nothing happened


def test_span_methods_check_their_arguments():
    ch = ringmpsc.Channel(8, capacity=4)
    p = ch.producer()
    r = p.reserve(2)
    with pytest.raises(TypeError, match="invalid keyword"):
        r.commit(n=1)
    with pytest.raises(TypeError, match="at most 1 argument"):
        r.commit(1, 2)
    with pytest.raises(TypeError, match="at most 3 arguments"):
        r.__exit__(None, None, None, None)
    assert r.__exit__(None, None, None) is False  # commits all
    assert len(ch) == len(r)
    v = ch.read()
    with pytest.raises(TypeError, match="for consume"):
        v.consume(count=1)
    assert v.__exit__() is False
    assert len(ch) == 0


def test_every_bytes_like_sends_the_same_record():
    rs = 16
    ch = ringmpsc.Channel(rs, capacity=64)
    p = ch.producer()

    class B(bytes):
        pass

    data = bytes(range(rs))
    for obj in (data, B(data), bytearray(data), memoryview(data), array.array("B", data), memoryview(data * 2)[rs:]):
        p.send(obj)
        assert p.send_many(obj) == 1
    assert ch.recv_many() == data * 12
    p.send(b"")  # zero-filled
    assert ch.recv() == bytes(rs)


@pytest.mark.timeout(60)
def test_a_thread_waiting_for_the_consumer_side_is_woken_by_its_release():
    """Hand the consumer side back and forth: each release wakes the waiter at once
    (a lost wake-up would leave it asleep until its 50 ms slice ends)."""
    ch = ringmpsc.Channel(8, capacity=64)
    p = ch.producer()
    rounds = 20
    p.send_many(bytes(8 * 2 * rounds))
    held, waiting, got = threading.Event(), threading.Event(), threading.Event()
    waits = []

    def waiter():
        for _ in range(rounds):
            held.wait(10)
            held.clear()
            waiting.set()
            ch.recv(timeout=10)  # waits for the main thread's read view to end
            waits.append(time.monotonic() - released[0])
            got.set()

    released = [0.0]
    t = threading.Thread(target=waiter)
    t.start()
    for _ in range(rounds):
        v = ch.read(1, timeout=10)
        held.set()
        waiting.wait(10)
        waiting.clear()
        observe.wait_asleep_on_lock(ch, t.native_id)  # the waiter sleeps on the lock
        released[0] = time.monotonic()
        v.consume()
        got.wait(10)  # no re-read before the waiter had its turn (the lock is not fair)
        got.clear()
    t.join(20)
    assert len(waits) == rounds
    assert sorted(waits)[rounds // 2] < 0.025, waits  # median well under one slice
    assert len(ch) == 0


@pytest.mark.timeout(60)
def test_waiting_for_a_busy_side_honours_the_timeout():
    ch = ringmpsc.Channel(8, capacity=4)
    p = ch.producer()
    p.send(b"x")
    v = ch.read()  # this thread holds the consumer side
    r = p.reserve()  # ... and the producer
    out = {}

    def other():
        t = time.monotonic()
        try:
            ch.recv(timeout=0.2)
        except ringmpsc.Empty as e:
            out["recv"] = (time.monotonic() - t, str(e))
        t = time.monotonic()
        try:
            p.send(b"y", timeout=0.2)
        except ringmpsc.Full as e:
            out["send"] = (time.monotonic() - t, str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    for key, word in (("recv", "consuming"), ("send", "busy")):
        waited, msg = out[key]
        assert 0.15 <= waited < 2.0 and word in msg, (key, waited, msg)
    r.abort()
    v.consume()
    p.send(b"z", timeout=1)  # both free again
    assert ch.recv(timeout=1)[:1] == b"z"


def test_same_thread_reentry_is_refused_not_deadlocked():
    ch = ringmpsc.Channel(8, capacity=4)
    p = ch.producer()
    p.send(b"x")
    with ch.read():
        with pytest.raises(RuntimeError, match="consumer side"):
            ch.recv(timeout=0)
    with p.reserve():
        with pytest.raises(RuntimeError, match="producer"):
            p.send(b"y", timeout=0)


@pytest.mark.timeout(60)
def test_timed_waits_poll_briefly_then_sleep():
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    ch = ringmpsc.Channel(8, capacity=2)
    p = ch.producer()
    c0 = cpu()
    t0 = time.monotonic()
    for _ in range(5):
        with pytest.raises(ringmpsc.Empty):
            ch.recv(timeout=0.1)
    p.send_many(bytes(16))
    for _ in range(5):
        with pytest.raises(ringmpsc.Full):
            p.send(b"x", timeout=0.1)
    wall = time.monotonic() - t0
    assert wall >= 0.95
    assert cpu() - c0 < 0.3 * wall, (cpu() - c0, wall)
