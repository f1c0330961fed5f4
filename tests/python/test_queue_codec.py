"""ringmpsc.Queue's pickling in C: Producer._send_object and _recv_objects (Channel, Consumer).

Queue.put and get use them when dumps and loads are Queue's own. They must make and
read the same messages as the Python path (Queue.dumps / Queue.loads): pickles of
protocol 5, with buffers of _OUT_OF_BAND_FROM bytes or more out of band. The C
encoder writes common objects itself and hands everything else to pickle; its
decoder reads what it and pickle.dumps write for those objects and hands anything
else to pickle.loads. Checked here: round trips both ways and across the two paths,
shared and cyclic containers, bad arguments, objects pickle refuses (nothing sent,
nothing lost), objects only multiprocessing pickles, messages over the size bound, a
closed queue, timeouts.
"""
import abc
import copy
import functools
import math
import multiprocessing as mp
import pickle
import queue as stdqueue
import struct
import sys
import time
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ringmpsc
from ringmpsc import Closed, Queue, QueueClosed

ext = ringmpsc._ringmpsc


def same(a, b):
    """Equal, of the same types all the way down (NaN equal to NaN, -0.0 not to 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


class Point:
    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return type(other) is Point and other.x == self.x


class Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("refused on purpose")


class Vanishing:
    pass


class ReduceFails:
    def __reduce__(self):
        raise ValueError("a bug in __reduce__")


# The encoder's own types at their boundaries, and objects it hands to pickle.
OBJECTS = [
    None, True, False, 0, 1, 255, 256, 65535, 65536, -1, -(2**31), 2**31 - 1, 2**31, -(2**31) - 1, 2**80,
    0.0, -0.0, 1.5, float("inf"), float("-inf"), float("nan"), "", "a", "é", "\U0001f600", "x" * 255, "x" * 256,
    "\ud800", b"", b"b", b"y" * 255, b"y" * 256, b"z" * 5000, (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
    [], [1, [2, [3]]], {}, {"a": 1, 2: (3, "4"), (5, 6): [7.5]}, (1,) * 5, list(range(1000)),
    bytearray(b"ba"), {1, 2}, frozenset([3]), 3j, Point(4), [Point(5), {6}], True.__class__, range(3),
]

atoms = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), st.binary(),
)
nested = st.recursive(
    atoms,
    lambda c: st.one_of(st.lists(c, max_size=5), st.lists(c, max_size=5).map(tuple),
                        st.dictionaries(st.one_of(st.text(), st.integers()), c, max_size=5)),
    max_leaves=30,
)


@pytest.fixture
def chan():
    q = Queue(max_size_bytes=1 << 20)
    q.put(0)  # registers this thread's producer
    assert q.get() == 0
    return q, q._local.producer, q.channel


def test_round_trips_both_ways(chan):
    q, p, ch = chan
    for o in OBJECTS:
        assert p._send_object(o) is True
        (raw,) = ch.recv_messages()
        assert raw[0] == 0x80 and same(pickle.loads(raw), o), o
        for proto in (2, 4, 5):
            p.send_message(pickle.dumps(o, proto))
            (back,) = ch._recv_objects()
            assert same(back, o), (o, proto)


HYPOTHESIS_QUEUE = []


@given(nested)
def test_round_trips_hypothesis(obj):
    if not HYPOTHESIS_QUEUE:
        HYPOTHESIS_QUEUE.append(Queue(max_size_bytes=1 << 20))
    q = HYPOTHESIS_QUEUE[0]
    q.put(obj)
    q.put(obj)
    raw = q.channel.recv_messages(1)[0]
    assert same(pickle.loads(raw), obj)  # what the C encoder wrote, read by pickle
    assert same(q.get(timeout=5), obj)  # and what it reads


def test_shared_and_cyclic_containers_keep_their_identity(chan):
    q, p, ch = chan
    inner = [1]
    cyc = []
    cyc.append(cyc)
    d = {}
    d["self"] = d
    for o in ([inner, inner], (inner, inner), cyc, d, {"a": inner, "b": inner}):
        q.put(o)
        back = q.get(timeout=5)
        if o is cyc:
            assert back[0] is back
        elif o is d:
            assert back["self"] is back
        elif isinstance(o, dict):
            assert back["a"] is back["b"] and back["a"] == [1]
        else:
            assert back[0] is back[1] and back[0] == [1]


def test_both_paths_read_each_other():
    q = Queue(max_size_bytes=4 << 20)  # the pool holds both frames of 800 kB
    py = copy.copy(q)  # the same channel, Queue.dumps / Queue.loads called from Python
    py.dumps = functools.partial(Queue.dumps, py)
    py.loads = functools.partial(Queue.loads, py)
    assert q._c_dumps and q._c_loads and not py._c_dumps and not py._c_loads
    frame = np.arange(100_000, dtype=np.int64)  # out of band
    objs = OBJECTS + [frame, {"frame": frame, "n": 1}]
    for src, dst in ((q, py), (py, q)):
        for o in objs:
            src.put(o)
        got = dst.get_many(timeout=5)
        while len(got) < len(objs):
            got += dst.get_many(timeout=5)
        for o, g in zip(objs, got):
            if isinstance(o, np.ndarray):
                assert np.array_equal(o, g) and g.flags.writeable
            elif isinstance(o, dict) and "frame" in o:
                assert np.array_equal(o["frame"], g["frame"]) and g["n"] == 1
            else:
                assert same(g, o), o


def test_the_decoder_answers_as_pickle_loads(chan):
    """Damaged or unusual pickles: the C decoder gives up and pickle.loads answers (or raises)."""
    q, p, ch = chan
    good = pickle.dumps((1, "two", [3.0]), 5)
    cases = [
        good[:-1], good[:5], b"\x80\x05", b"\x80\x06N.", b"\x80\x05N", b"\x80\x05.", b"\x80\x05(t.",
        b"\x80\x05K\x01\x85\x85\x85.", b"\x80\x05]K\x01u.", b"\x80\x05h\x00.", b"\x80\x05N\x94h\x00\x86.",
        b"\x80\x05\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", b"\x80\x05\x8c\x05ab.", b"\x80\x05\x8c\x01\xff.",
        b"\x80\x05}K\x01]s.", b"\x80\x05c__main__\nnope\n.", b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00N.",
        # MEMOIZE stores at the count of memo entries (1 here), not after the highest index (6).
        b"\x80\x05K\x07q\x05\x94h\x06.", b"\x80\x05K\x07q\x05\x94h\x01.",
    ]
    for raw in cases:
        try:
            want = ("ok", pickle.loads(raw))
        except Exception as e:
            want = ("error", type(e))
        p.send_message(raw)
        try:
            got = ("ok", ch._recv_objects()[0])
        except Exception as e:
            got = ("error", type(e))
        assert want[0] == got[0] and (same(want[1], got[1]) if want[0] == "ok" else want[1] is got[1]), raw
    assert len(ch) == 0


def test_bad_arguments(chan):
    q, p, ch = chan
    with pytest.raises(TypeError):
        p._send_object()
    with pytest.raises(TypeError):
        p._send_object(1, timeout="soon")
    with pytest.raises(ValueError):
        p._send_object(1, timeout=-1)
    with pytest.raises(TypeError):
        p._send_object(1, 2, 3)
    with pytest.raises(TypeError):
        ch._recv_objects(other=5)
    with pytest.raises(ValueError):
        ch._recv_objects(max_messages=0)
    with pytest.raises(TypeError):
        ch._recv_objects(max_bytes="many")
    assert len(ch) == 0


def test_objects_pickle_refuses_lose_nothing(chan):
    q, p, ch = chan
    q.put("before")
    # _send_object hands them back to put (None, nothing sent): ForkingPickler raises pickle's error.
    assert p._send_object(Unpicklable()) is None
    assert p._send_object(lambda: 0) is None
    assert len(ch) == 1
    with pytest.raises(pickle.PicklingError, match="refused on purpose"):
        q.put(Unpicklable())
    with pytest.raises((pickle.PicklingError, AttributeError)):
        q.put(lambda: 0)
    with pytest.raises(ValueError, match="a bug in __reduce__"):  # not pickle's refusal: raised as it is
        p._send_object(ReduceFails())
    with pytest.raises(ValueError, match="a bug in __reduce__"):
        q.put(ReduceFails())
    q.put("after")
    assert q.get_many(timeout=5) == ["before", "after"]


def test_a_loads_error_is_raised(monkeypatch):
    q = Queue()
    q.put(Vanishing())
    q.put(Vanishing())
    monkeypatch.delattr(sys.modules[__name__], "Vanishing")  # pickle.loads cannot find the class now
    with pytest.raises(AttributeError, match="Vanishing"):
        q.get_many(timeout=5)  # the call's messages are lost with it (documented)
    q.put("next")
    assert q.get(timeout=5) == "next"


def test_messages_over_the_size_bound():
    q = Queue(max_size_bytes=1000)
    q.put(0)
    p = q._local.producer
    for big in (b"x" * 2000, "y" * 3000, list(range(2000)), b"z" * 100_000):
        with pytest.raises(ValueError, match="longer than this channel carries"):
            q.put(big)
        with pytest.raises(ValueError, match="longer than this channel carries"):
            p._send_object(big)
    q.put("fits")
    assert q.get_many(timeout=5) == [0, "fits"]


def test_closed():
    q = Queue()
    q.put(0)
    p = q._local.producer
    q.put(1)
    q.close()
    with pytest.raises(Closed):
        q.put(2)
    with pytest.raises(Closed):
        p._send_object(2)
    assert q.get() == 0
    assert q.channel._recv_objects() == [1]
    with pytest.raises(Closed):
        q.channel._recv_objects(timeout=1)
    with pytest.raises(QueueClosed):
        q.get(timeout=1)


def test_timeouts():
    q = Queue(max_size_bytes=1000)  # a ring of 64 records
    t0 = time.monotonic()
    with pytest.raises(stdqueue.Empty):
        q.get(timeout=0.05)
    with pytest.raises(stdqueue.Empty):
        q.channel._recv_objects(timeout=0.05)
    with pytest.raises(stdqueue.Empty):
        q.get_many(block=False)
    q.put(0)
    p = q._local.producer
    n = 1
    while True:  # fill the ring
        try:
            q.put_nowait(n)
        except stdqueue.Full:
            break
        n += 1
        assert n <= q.channel.capacity
    with pytest.raises(stdqueue.Full):
        p._send_object("more", 0.05)
    with pytest.raises(stdqueue.Full):
        q.put("more", timeout=0.05)
    assert time.monotonic() - t0 < 30
    assert q.get_many(timeout=5) == list(range(n))


def reply_through_received_connection(q):
    conn = q.get(timeout=10)
    conn.send("hi from the child")
    conn.close()


def test_objects_only_multiprocessing_pickles_still_travel():
    """A Connection reaches a forked child. Plain pickle takes it as its descriptor's number (as
    faster_fifo does; multiprocessing.Queue's ForkingPickler sends a duplicate), which names the
    same pipe in a child that inherited the descriptor table: README's Limits say so."""
    q = Queue()
    a, b = mp.Pipe()
    child = mp.get_context("fork").Process(target=reply_through_received_connection, args=(q,))
    child.start()
    try:
        q.put(a)
        assert b.poll(10), "the child did not answer"
        assert b.recv() == "hi from the child"
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


def test_dumps_and_loads_set_on_the_class_are_used(monkeypatch):
    # Set on Queue (or a subclass) before or after the queue exists: put and get call them, as on an instance.
    def tagged_dumps(self, obj):
        return pickle.dumps(("tagged", obj))

    before = Queue()
    monkeypatch.setattr(Queue, "dumps", tagged_dumps)
    after = Queue()
    for q in (before, after):
        q.put(1)
        q.put(2)  # the second put has this thread's producer: the C path, unless dumps is noticed
        assert q.get_many(timeout=5) == [("tagged", 1), ("tagged", 2)]
    monkeypatch.undo()
    before.put(3)
    before.put(4)
    assert before.get_many(timeout=5) == [3, 4] and before._c_dumps

    class Sub(Queue):
        pass

    sub = Sub()
    monkeypatch.setattr(Sub, "loads", lambda self, msg: ("loaded", pickle.loads(msg)))
    sub.put(5)
    assert sub.get(timeout=5) == ("loaded", 5)
    monkeypatch.undo()
    sub.put(6)
    assert sub.get(timeout=5) == 6


def test_a_subclass_may_also_be_an_abc():
    # Queue's metaclass (which notices dumps/loads set on the class) is an ABCMeta: no conflict.
    class Base(Queue, abc.ABC):
        @abc.abstractmethod
        def tag(self): ...

    class Tagged(Base):
        def tag(self):
            return "t"

        def dumps(self, obj):
            return pickle.dumps((self.tag(), obj))

    with pytest.raises(TypeError, match="abstract"):
        Base()
    q = Tagged()
    q.put(1)
    assert q.get(timeout=5) == ("t", 1)


class CountsReduce:
    """Counts its pickling: a __reduce__ with a side effect; holds a buffer pickled out of band."""

    calls = 0

    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        CountsReduce.calls += 1
        return (CountsReduce, (self.data,))


class OnlyForkingPickler:
    def __reduce__(self):
        raise TypeError("pickle refuses it, multiprocessing's pickler has a reducer")


ForkingPickler.register(OnlyForkingPickler, lambda o: (OnlyForkingPickler, ()))


def test_an_object_is_pickled_once_or_twice():
    # One pickle makes a message with large buffers out of band; an object pickle refuses is pickled
    # once more, by multiprocessing's pickler.
    q = Queue(1 << 20)
    q.put(0)
    assert q.get(timeout=5) == 0
    CountsReduce.calls = 0
    data = np.arange(ext._OUT_OF_BAND_FROM, dtype=np.uint8)
    q.put(CountsReduce(pickle.PickleBuffer(data)))
    assert CountsReduce.calls == 1
    got = q.get(timeout=5)
    assert type(got) is CountsReduce and bytes(got.data) == data.tobytes()
    CountsReduce.calls = 0
    q.put([CountsReduce(b"x"), OnlyForkingPickler()])  # pickle refuses it: ForkingPickler sends it
    assert CountsReduce.calls == 2
    got = q.get(timeout=5)
    assert got[0].data == b"x" and type(got[1]) is OnlyForkingPickler


def test_packed_out_of_band_messages_of_0_6_0_are_still_read():
    # 0.6.0 wrote out-of-band buffers back to back under tag 1; now they start at multiples of 64
    # under tag 2 (which a 0.6.0 reader refuses as a bad pickle rather than misread).
    a = np.arange(100_000, dtype=np.int64)
    raws = []
    head = pickle.dumps(a, 5, buffer_callback=lambda b: raws.append(b.raw()))
    header = struct.pack("<BI%dQ" % (len(raws) + 1), 1, len(raws), len(head), *[r.nbytes for r in raws])
    q = Queue(1 << 22)
    q.channel.producer().send_message([header, head, *raws])
    np.testing.assert_array_equal(q.get(timeout=5), a)
    assert bytes(q.dumps(a)[0][:1]) == bytes([ext._OUT_OF_BAND_TAG]) == b"\x02"
    q.put(a)
    got = q.get(timeout=5)
    assert got.ctypes.data % ext._OUT_OF_BAND_ALIGN == 0
    np.testing.assert_array_equal(got, a)
