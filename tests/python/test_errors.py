"""Bad input for every method, and regions that must not open."""
import mmap
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ringmpsc

NAN = float("nan")


# --- constructor and module functions ----------------------------------------------

@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((), {}, TypeError, "record_size"),
        (("64",), {}, TypeError, "record_size"),
        ((1.5,), {}, TypeError, "record_size"),
        ((True,), {}, TypeError, "record_size"),
        ((None,), {}, TypeError, "record_size"),
        ((0,), {}, ValueError, "record_size"),
        ((-8,), {}, ValueError, "record_size"),
        ((65537,), {}, ValueError, "record_size"),
        ((2**70,), {}, ValueError, "record_size"),
        ((8, 3), {}, ValueError, "capacity"),
        ((8, 1), {}, ValueError, "capacity"),
        ((8, 0), {}, ValueError, "capacity"),
        ((8, 2**25), {}, ValueError, "capacity"),
        ((8, 4.0), {}, TypeError, "capacity"),
        ((8, 4, 0), {}, ValueError, "max_producers"),
        ((8, 4, 1025), {}, ValueError, "max_producers"),
        ((8, 4, "2"), {}, TypeError, "max_producers"),
        ((8, 4, 2, "name"), {}, TypeError, None),  # name is keyword-only
        ((8,), {"name": 5}, TypeError, "name"),
        ((8,), {"name": b"x"}, TypeError, "name"),
        ((8,), {"name": ""}, ValueError, "name"),
        ((8,), {"name": "/"}, ValueError, "name"),
        ((8,), {"name": "a/b"}, ValueError, "name"),
        ((8,), {"name": "a\0b"}, ValueError, "name"),
        ((8,), {"name": "x" * 300}, ValueError, "name"),
        ((8,), {"name": ".."}, ValueError, "name"),
        ((8,), {"slab_size": 64}, ValueError, "slabs"),
        ((8,), {"slabs": 4}, ValueError, "slab_size"),
        ((8,), {"slab_size": -1, "slabs": 4}, ValueError, "slab_size"),
        ((8,), {"slab_size": 64, "slabs": -1}, ValueError, "slabs"),
        ((8,), {"slab_size": 2**27, "slabs": 1}, ValueError, "slab_size"),
        ((8,), {"slab_size": 64, "slabs": 2**25}, ValueError, "slabs"),
        ((3,), {"slab_size": 64, "slabs": 4}, ValueError, "record_size"),
        ((8,), {"slab_size": "64", "slabs": 4}, TypeError, "slab_size"),
        ((8,), {"bogus": 1}, TypeError, "bogus"),
    ],
)
def test_channel_constructor_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ringmpsc.Channel(*args, **kwargs)


def test_region_too_large_is_a_value_error():
    with pytest.raises(ValueError, match="exceeds"):
        ringmpsc.Channel(65536, 2**24, 1024)


def test_open_and_unlink_bad_input():
    for bad in (5, None, b"name"):
        with pytest.raises(TypeError, match="name"):
            ringmpsc.Channel.open(bad)
        with pytest.raises(TypeError, match="name"):
            ringmpsc.unlink(bad)
    for bad in ("", "a/b", "a\0b"):
        with pytest.raises(ValueError, match="name"):
            ringmpsc.Channel.open(bad)
        with pytest.raises(ValueError, match="name"):
            ringmpsc.unlink(bad)
    with pytest.raises(TypeError):
        ringmpsc.Channel.open()
    with pytest.raises(FileNotFoundError):
        ringmpsc.Channel.open("rmpsc-test-surely-missing-%d" % os.getpid())
    with pytest.raises(TypeError, match="fd"):
        ringmpsc.Channel._from_fd("3")
    with pytest.raises(ValueError, match="fd"):
        ringmpsc.Channel._from_fd(-1)
    r, w = os.pipe()
    try:
        with pytest.raises((ringmpsc.CorruptRegion, OSError)):
            ringmpsc.Channel._from_fd(r)
    finally:
        os.close(r)
        os.close(w)


# --- timeouts -------------------------------------------------------------------------

def _timeout_calls(ch, p):
    return [
        lambda t: ch.recv(timeout=t),
        lambda t: ch.recv_many(timeout=t),
        lambda t: ch.recv_into(bytearray(64), timeout=t),
        lambda t: ch.read(timeout=t),
        lambda t: p.send(b"x", timeout=t),
        lambda t: p.send_many(bytes(8), timeout=t),
        lambda t: p.reserve(timeout=t),
    ]


def test_bad_timeouts_for_every_method():
    ch = ringmpsc.Channel(8, capacity=4)
    p = ch.producer()
    for call in _timeout_calls(ch, p):
        for bad in (-1, -0.001, NAN, float("-inf")):
            with pytest.raises(ValueError, match="timeout"):
                call(bad)
        for bad in ("1", b"1", [1], True, 1j):
            with pytest.raises(TypeError, match="timeout"):
                call(bad)
    slabbed = ringmpsc.Channel(8, slab_size=16, slabs=2)
    q = slabbed.producer()
    with pytest.raises(ValueError, match="timeout"):
        q.send_bytes(b"x", timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        slabbed.recv_bytes(timeout="soon")
    assert len(ch) == 0 and len(slabbed) == 0  # nothing was sent by the bad calls


def test_huge_timeout_means_forever_and_ints_work():
    ch = ringmpsc.Channel(8, capacity=4)
    p = ch.producer()
    p.send(b"a", timeout=10**30)
    p.send(b"b", timeout=1)
    assert ch.recv(timeout=float("inf"))[:1] == b"a"
    assert ch.recv(timeout=1)[:1] == b"b"


# --- producer methods ---------------------------------------------------------------

def test_producer_bad_input():
    ch = ringmpsc.Channel(8, capacity=4)
    p = ch.producer()
    for bad in (5, "text", None, [1, 2], 1.0):
        for call in (p.send, p.send_nowait, p.send_many):
            with pytest.raises(TypeError, match="data"):
                call(bad)
    noncontig = memoryview(bytes(16))[::2]
    with pytest.raises(TypeError, match="data"):
        p.send(noncontig)
    with pytest.raises(ValueError, match="record_size"):
        p.send(bytes(9))
    with pytest.raises(ValueError, match="record_size"):
        p.send_nowait(bytes(9))
    with pytest.raises(ValueError, match="multiple"):
        p.send_many(bytes(12))
    with pytest.raises(TypeError):
        p.send()
    with pytest.raises(TypeError):
        p.send_nowait()
    with pytest.raises(TypeError):
        p.send(b"x", 1, 2)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n "):
            p.reserve(bad)
    for bad in ("2", 2.0, True):
        with pytest.raises(TypeError, match="n "):
            p.reserve(bad)
    with pytest.raises(ValueError, match="slab"):
        p.send_bytes(b"x")
    assert len(ch) == 0


def test_send_bytes_bad_input():
    ch = ringmpsc.Channel(8, slab_size=16, slabs=2)
    p = ch.producer()
    with pytest.raises(TypeError, match="data"):
        p.send_bytes(5)
    with pytest.raises(ValueError, match="slab_size"):
        p.send_bytes(bytes(17))
    assert ch.stats()["slabs_free"] == 2


def test_reservation_bad_input():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    r = p.reserve(4)
    k = len(r)
    for bad in (-1, k + 1, 2**70):
        with pytest.raises(ValueError, match="k "):
            r.commit(bad)
    for bad in ("1", 1.0):
        with pytest.raises(TypeError, match="k "):
            r.commit(bad)
    with pytest.raises(TypeError):
        r.commit(1, 2)
    r.commit(0)  # = abort
    assert len(ch) == 0
    with pytest.raises(ValueError):
        r.commit()
    with pytest.raises(ValueError):
        r.__enter__()


def test_closed_producer_raises():
    ch = ringmpsc.Channel(8)
    p = ch.producer()
    p.close()
    for call in (lambda: p.send(b"x"), lambda: p.send_nowait(b"x"), lambda: p.send_many(bytes(8)),
                 lambda: p.reserve(), lambda: p.send_bytes(b"")):
        with pytest.raises(ValueError, match="closed"):
            call()


# --- consumer methods ---------------------------------------------------------------

def test_consumer_bad_input():
    ch = ringmpsc.Channel(8, capacity=4)
    for call in (ch.recv_many, ch.read):
        for bad in (0, -3):
            with pytest.raises(ValueError, match="max_records"):
                call(bad)
        for bad in ("2", 2.5, True):
            with pytest.raises(TypeError, match="max_records"):
                call(bad)
    for bad in (b"immutable", "text", 5, None, memoryview(b"ro")):
        with pytest.raises(TypeError, match="buffer"):
            ch.recv_into(bad)
    with pytest.raises(ValueError, match="record"):
        ch.recv_into(bytearray(7))
    with pytest.raises(TypeError, match="buffer"):
        ch.recv_into(memoryview(bytearray(32))[::2])
    with pytest.raises(ValueError, match="slab"):
        ch.recv_bytes()
    with pytest.raises(TypeError):
        ch.recv(1, 2)
    with pytest.raises(TypeError):
        ch.recv_nowait(1)


def test_read_view_bad_input():
    ch = ringmpsc.Channel(8)
    ch.producer().send_many(bytes(16))
    v = ch.read()
    for bad in (-1, len(v) + 1):
        with pytest.raises(ValueError, match="k "):
            v.consume(bad)
    with pytest.raises(TypeError, match="k "):
        v.consume("1")
    with pytest.raises(TypeError):  # read-only
        memoryview(v)[0:1] = b"x"
    with pytest.raises(TypeError, match="writable"):
        ch.recv_into(v)
    v.cancel()
    with pytest.raises(ValueError):
        v.consume()
    with pytest.raises(BufferError):
        memoryview(v)
    assert len(ch) == 2


def test_recv_bytes_on_a_plain_record():
    # A record that is not a slab message is consumed and reported; the next message arrives.
    ch = ringmpsc.Channel(8, slab_size=16, slabs=2)
    p = ch.producer()
    p.send(struct.pack("<I", 12345))  # no such slab
    p.send(struct.pack("<I", 0))  # a slab, but not in transit on this record
    p.send_bytes(b"after")
    with pytest.raises(ringmpsc.CorruptRegion, match="no slab handle"):
        ch.recv_bytes()
    with pytest.raises(ringmpsc.CorruptRegion, match="not a slab message"):
        ch.recv_bytes()
    assert ch.recv_bytes(timeout=1) == b"after"
    assert ch.stats()["slabs_free"] == 2


# --- regions that must not open ------------------------------------------------------

HDR = {  # offsets in the region header (csrc/layout.h)
    "magic": (0, "<Q"),
    "version": (8, "<I"),
    "header_size": (12, "<I"),
    "record_size": (16, "<I"),
    "ring_bits": (20, "<I"),
    "max_producers": (24, "<I"),
    "slab_size": (28, "<I"),
    "slab_count": (32, "<I"),
    "total_size": (40, "<Q"),
}


def _make_region(shm_name, **kw):
    name = shm_name()
    ch = ringmpsc.Channel(64, capacity=16, max_producers=2, name=name, **kw)
    size = os.path.getsize("/dev/shm/" + name)
    del ch
    return name, "/dev/shm/" + name, size


def _poke(path, off, fmt, value):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, value))


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("magic", 0, "not initialized"),
        ("magic", 0x1122334455667788, "magic"),
        ("version", 99, "version"),
        ("header_size", 100, "header_size"),
        ("record_size", 0, "record_size"),
        ("record_size", 1 << 30, "record_size"),
        ("ring_bits", 0, "capacity"),
        ("ring_bits", 31, "capacity"),
        ("ring_bits", 200, "ring_bits"),
        ("max_producers", 0, "max_producers"),
        ("max_producers", 5000, "max_producers"),
        ("slab_size", 64, "slab"),
        ("slab_count", 3, "slab"),
        ("total_size", 12345, "total_size"),
        ("total_size", 2**63, "total_size"),
    ],
)
def test_corrupt_header_fails_cleanly(shm_name, field, value, match):
    name, path, _ = _make_region(shm_name)
    off, fmt = HDR[field]
    _poke(path, off, fmt, value)
    with pytest.raises(ringmpsc.CorruptRegion, match=match):
        ringmpsc.Channel.open(name)


@pytest.mark.parametrize("keep", [0, 10, 4095, 4096, 8192, -4096, -1])
def test_truncated_region_fails_cleanly(shm_name, keep):
    name, path, size = _make_region(shm_name, slab_size=256, slabs=8)
    os.truncate(path, keep if keep >= 0 else size + keep)
    with pytest.raises(ringmpsc.CorruptRegion):
        ringmpsc.Channel.open(name)


def test_foreign_files_fail_cleanly(shm_name):
    name = shm_name()
    path = "/dev/shm/" + name
    with open(path, "wb") as f:
        f.write(os.urandom(1 << 16))
    os.chmod(path, 0o600)
    with pytest.raises(ringmpsc.CorruptRegion):
        ringmpsc.Channel.open(name)
    with open(path, "wb") as f:
        f.write(b"RINGMPSC" + bytes(100))  # right magic, nothing else
    with pytest.raises(ringmpsc.CorruptRegion):
        ringmpsc.Channel.open(name)


def test_growing_a_region_is_harmless(shm_name):
    name, path, size = _make_region(shm_name)
    os.truncate(path, size + 12345)
    ch = ringmpsc.Channel.open(name)
    ch.producer().send(b"ok")
    assert ch.recv()[:2] == b"ok"


@settings(max_examples=60)
@given(data=st.data())
def test_fuzzed_header_never_crashes(shm_name, data):
    name, path, size = _make_region(shm_name)
    with open(path, "r+b") as f:
        raw = bytearray(f.read(64))
        for _ in range(data.draw(st.integers(1, 4), label="edits")):
            i = data.draw(st.integers(0, 63), label="offset")
            raw[i] = data.draw(st.integers(0, 255), label="byte")
        f.seek(0)
        f.write(raw)
    try:
        ch = ringmpsc.Channel.open(name)
    except (ringmpsc.CorruptRegion, ValueError):
        return
    # It opened: the edit left a consistent geometry. It must work within it. A
    # record goes to the groups that exist when it is committed, and an edited
    # geometry moves the group table (to zeros: no group), so join first.
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()
    with ch.producer() as p:
        p.send(b"z" * min(ch.record_size, 8), timeout=1)
    assert ch.recv(timeout=1)[:1] == b"z"


def _ring_ctrl(ch_path_size, slot):
    # header page, the attachment table (2048 entries of 16 bytes), then five 128-byte lines per slot
    return 4096 + 2048 * 16 + slot * 640


def test_impossible_tail_fences_the_ring(shm_name):
    name, path, size = _make_region(shm_name)
    ch = ringmpsc.Channel.open(name)
    bad = ch.producer()
    good = ch.producer()
    bad.send(b"bad")
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), size)
        off = _ring_ctrl(size, bad.slot)
        (tail,) = struct.unpack_from("<Q", m, off)
        struct.pack_into("<Q", m, off, tail + 1000)  # a hostile writer
        m.close()
    with pytest.raises(ringmpsc.CorruptRegion, match="fenced"):
        while True:
            ch.recv(timeout=1)
    s = ch.stats()
    assert s["fenced_rings"] == 1
    assert [r["state"] for r in s["producers"] if r["slot"] == bad.slot] == ["fenced"]
    good.send(b"good")
    assert ch.recv(timeout=1)[:4] == b"good"
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()


def test_impossible_head_is_reported_to_the_producer(shm_name):
    name, path, size = _make_region(shm_name)
    ch = ringmpsc.Channel.open(name)
    p = ch.producer()
    p.send_many(bytes(64 * ch.capacity))  # full: the next send must reload head
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), size)
        off = _ring_ctrl(size, p.slot) + 256  # consumer -> producer line: head
        struct.pack_into("<Q", m, off, 10**9)
        m.close()
    with pytest.raises(ringmpsc.CorruptRegion):
        p.send(b"x", timeout=0.2)
