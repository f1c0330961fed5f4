"""NumPy arrays made from reservations and read views: the zero-copy patterns, and what
happens when an array outlives the span it aliases."""
import numpy as np
import pytest

import ringmpsc


def test_array_deleted_inside_the_block_commits():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    with p.reserve(4) as view:
        arr = np.frombuffer(view, dtype=np.uint64)
        arr[:] = np.arange(4, dtype=np.uint64)
        del arr
    with ch.read() as view:
        got = np.frombuffer(view, dtype=np.uint64).copy()  # the temporary view dies at once
    assert got.tolist() == [0, 1, 2, 3]
    assert len(ch) == 0


def test_array_alive_at_the_end_of_a_reservation_block_aborts_it_loudly():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    with pytest.raises(BufferError, match=r"reservation still exported .*aborted: nothing was sent.*del arr"):
        with p.reserve(8) as view:
            arr = np.frombuffer(view, dtype=np.uint8)
            arr[:] = 1
    assert len(ch) == 0  # nothing published
    # the producer is free at once (not held until the array goes), nothing is published later
    p.send(b"after", timeout=1)
    del arr
    assert len(ch) == 1
    assert ch.recv_nowait() == b"after" + bytes(3)
    assert len(ch) == 0
    # and it keeps working
    with p.reserve(2) as view:
        a = np.frombuffer(view, dtype=np.uint8)
        a[:] = 7
        del a
    assert ch.recv_many() == bytes([7]) * 16


def test_array_alive_at_the_end_of_a_read_view_block_cancels_it():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    p.send_many(np.arange(3, dtype=np.uint64).tobytes())
    with pytest.raises(BufferError, match=r"read view still exported .*cancelled: nothing was consumed.*\.copy\(\)"):
        with ch.read() as view:
            arr = np.frombuffer(view, dtype=np.uint64)
            assert arr.tolist() == [0, 1, 2]
    # nothing lost: the consumer is free and the records are read again
    assert len(ch) == 3
    with ch.read() as view:
        assert np.frombuffer(view, dtype=np.uint64).tolist() == [0, 1, 2]
    assert len(ch) == 0
    del arr
    p.send(b"x")
    assert ch.recv(timeout=1) == b"x" + bytes(7)


def test_exception_in_the_block_with_an_array_alive_propagates_and_aborts():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    with pytest.raises(ZeroDivisionError):
        with p.reserve(2) as view:
            arr = np.frombuffer(view, dtype=np.uint8)
            arr[:] = 3
            raise ZeroDivisionError
    assert len(ch) == 0
    p.send(b"y")
    p.send(b"z")
    with pytest.raises(KeyError):
        with ch.read() as view:
            arr2 = np.frombuffer(view, dtype=np.uint8)
            raise KeyError("k")
    assert len(ch) == 2  # cancelled: read again
    del arr, arr2
    assert ch.recv_many() == b"y" + bytes(7) + b"z" + bytes(7)


def test_explicit_commit_refuses_while_an_array_lives_and_stays_open():
    ch = ringmpsc.Channel(8, capacity=8)
    p = ch.producer()
    r = p.reserve(8)
    m = memoryview(r)
    a = np.frombuffer(m, dtype=np.uint8)
    a[:] = 5
    with pytest.raises(BufferError, match="reservation stays open.*commit\\(\\) again"):
        r.commit()
    assert not r.done and len(ch) == 0
    del a
    m.release()
    r.commit()
    assert r.done and len(ch) == 8
    assert ch.recv_many() == bytes([5]) * 64
    # the same for a read view
    p.send(b"v")
    v = ch.read()
    m = memoryview(v)
    a = np.frombuffer(m, dtype=np.uint8)
    with pytest.raises(BufferError, match="read view stays open.*consume\\(\\) again"):
        v.consume()
    assert not v.done
    del a
    m.release()
    v.consume()
    assert len(ch) == 0


def test_array_straight_from_the_reservation():
    ch = ringmpsc.Channel(4, capacity=8)
    p = ch.producer()
    r = p.reserve(4)
    a = np.frombuffer(r, dtype=np.int32)
    a[:] = [-1, 2, -3, 4]
    with pytest.raises(BufferError):
        r.commit()
    del a
    r.commit()
    v = ch.read()
    assert np.frombuffer(v, dtype=np.int32).tolist() == [-1, 2, -3, 4]  # the temporary is gone
    v.consume()
