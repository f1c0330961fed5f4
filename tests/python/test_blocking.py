"""Blocking calls: the GIL is released, Ctrl-C interrupts, close() wakes."""
import os
import resource
import signal
import threading
import time

import pytest

import observe
import ringmpsc

MAIN = threading.main_thread().ident
MAIN_TID = threading.main_thread().native_id


def _when_asleep(ch, fn, on_lock=False, tid=MAIN_TID):
    """From a helper thread: once thread `tid` sleeps in ch's wait (or on an object
    lock), note the time and call fn. fn runs even if that never happens (so the
    caller unblocks); check() then fails with what was seen."""
    out = {}

    def run():
        try:
            (observe.wait_asleep_on_lock if on_lock else observe.wait_asleep_in_channel)(ch, tid)
        except AssertionError as e:
            out["error"] = e
        out["at"] = time.monotonic()
        fn()

    def check():
        t.join(15)
        if "error" in out:
            raise out["error"]
        return time.monotonic() - out["at"]  # seconds since fn ran

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return check


def _spin(seconds):
    """CPU-bound Python work for about `seconds`; returns iterations done."""
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(1000):
            n += 1
    return n


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@pytest.mark.timeout(60)
def test_blocked_recv_does_not_slow_the_main_thread():
    ch = ringmpsc.Channel(8)
    done = threading.Event()

    def blocked():
        try:
            ch.recv()
        except ringmpsc.Closed:
            done.set()

    # Best of 3 on each side: the machine is shared and noisy.
    alone = max(_spin(0.3) for _ in range(3))
    t = threading.Thread(target=blocked)
    t.start()
    observe.wait_asleep_in_channel(ch, t.native_id)
    with_blocked = max(_spin(0.3) for _ in range(5))
    # A thread holding the GIL while it waits would stop the main thread (or cut it
    # to a fraction); slice wake-ups (20/s) cost next to nothing.
    assert with_blocked > 0.5 * alone, (alone, with_blocked)
    # ... and the waiting thread burns no CPU.
    c0, w0 = _cpu(), time.monotonic()
    time.sleep(1.0)
    used = _cpu() - c0
    assert used < 0.15 * (time.monotonic() - w0), used
    ch.close()
    t.join(5)
    assert done.is_set()


@pytest.mark.timeout(60)
def test_blocked_send_and_reserve_release_the_gil():
    ch = ringmpsc.Channel(8, capacity=2)
    p = ch.producer()
    p.send_many(bytes(16))
    results = []

    def blocked(fn):
        try:
            fn()
        except ringmpsc.Closed:
            results.append("closed")

    ts = [threading.Thread(target=blocked, args=(f,)) for f in (lambda: p.send(b"x"), lambda: p.reserve(1))]
    for t in ts:
        t.start()
    for t in ts:  # one waits for space, the other for the producer
        observe.wait_blocked(ch, t.native_id)
    alone_ratio = _spin(0.3)
    assert alone_ratio > 0
    c0, w0 = _cpu(), time.monotonic()
    time.sleep(0.5)
    assert _cpu() - c0 < 0.15 * (time.monotonic() - w0)
    ch.close()
    for t in ts:
        t.join(5)
    assert results == ["closed", "closed"]


SIGNAL_CASES = {
    "recv": lambda ch, p, c: ch.recv(),
    "recv_timeout": lambda ch, p, c: ch.recv(timeout=30),
    "recv_many": lambda ch, p, c: ch.recv_many(),
    "recv_into": lambda ch, p, c: ch.recv_into(bytearray(64)),
    "read": lambda ch, p, c: ch.read(),
    "iterate": lambda ch, p, c: next(iter(ch)),
    "recv_bytes": lambda ch, p, c: ch.recv_bytes(),
    "send_full": lambda ch, p, c: (p.send_many(bytes(8 * 4)), p.send(b"x")),
    "reserve_full": lambda ch, p, c: (p.send_many(bytes(8 * 4)), p.reserve()),
    "send_bytes_pool_empty": lambda ch, p, c: ([p.send_bytes(b"s") for _ in range(2)], p.send_bytes(b"t")),
    "consumer_recv": lambda ch, p, c: c.recv(),
    "consumer_read": lambda ch, p, c: c.read(),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["pthread_kill", "os_kill"])
@pytest.mark.parametrize("case", sorted(SIGNAL_CASES))
def test_sigint_interrupts_blocking_calls(case, how):
    ch = ringmpsc.Channel(8, capacity=4, slab_size=16, slabs=2)
    p = ch.producer()
    c = ch.consumer()  # a Consumer of the default group: mapped before the watcher looks
    if how == "pthread_kill":
        kick = lambda: signal.pthread_kill(MAIN, signal.SIGINT)  # noqa: E731  lands on the waiting thread
    else:
        kick = lambda: os.kill(os.getpid(), signal.SIGINT)  # noqa: E731  may land on any thread
    kicked = _when_asleep(ch, kick)
    returned = []
    with pytest.raises(KeyboardInterrupt):
        SIGNAL_CASES[case](ch, p, c)
        returned.append(True)
        time.sleep(5)  # take the signal here, not in the next test
    assert not returned, "the call returned instead of blocking"
    elapsed = kicked()
    assert elapsed < 2.0, elapsed
    # The objects stay usable after the interruption.
    assert ch.closed is False
    ch.close()


@pytest.mark.timeout(60)
def test_sigint_interrupts_a_thread_waiting_for_the_consumer_lock():
    ch = ringmpsc.Channel(8)
    holder_in = threading.Event()

    def holder():
        holder_in.set()
        try:
            ch.recv()  # holds the consumer side while it waits
        except ringmpsc.Closed:
            pass

    t = threading.Thread(target=holder)
    t.start()
    holder_in.wait(5)
    observe.wait_asleep_in_channel(ch, t.native_id)  # it holds the consumer side
    kicked = _when_asleep(ch, lambda: signal.pthread_kill(MAIN, signal.SIGINT), on_lock=True)
    returned = []
    with pytest.raises(KeyboardInterrupt):
        ch.recv()
        returned.append(True)
        time.sleep(5)
    assert not returned
    assert kicked() < 2.0
    ch.close()
    t.join(5)
    assert not t.is_alive()


@pytest.mark.timeout(60)
def test_signal_handler_that_does_not_raise_keeps_waiting():
    ch = ringmpsc.Channel(8)
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
    try:
        p = ch.producer()

        def signal_then_send():
            signal.pthread_kill(MAIN, signal.SIGUSR1)
            observe.wait_for(lambda: hits, "the SIGUSR1 handler")
            observe.wait_asleep_in_channel(ch, MAIN_TID)  # back to waiting after the handler
            p.send(b"late")

        sent = _when_asleep(ch, signal_then_send)
        assert ch.recv(timeout=10)[:4] == b"late"
        sent()
        assert hits == [1]
    finally:
        signal.signal(signal.SIGUSR1, old)


@pytest.mark.timeout(60)
def test_send_bytes_one_deadline_for_both_waits():
    # The pool is empty, then (a slab freed late) the ring is full: the timeout
    # covers both waits, so the call returns after about 0.5 s, not 0.3 + 0.5.
    ch = ringmpsc.Channel(8, capacity=2, slab_size=16, slabs=1)
    q = ch.producer()  # slot 0, read first: holds the only slab
    p = ch.producer()
    q.send_bytes(b"q")
    p.send_many(bytes(16))  # p's ring full of plain records

    got = []

    def free_the_slab():
        time.sleep(0.3)
        got.append(ch.recv_bytes(timeout=1))

    freed = _when_asleep(ch, free_the_slab)
    t0 = time.monotonic()
    with pytest.raises(ringmpsc.Full):
        p.send_bytes(b"p", timeout=0.5)
    elapsed = time.monotonic() - t0
    freed()
    assert got == [b"q"]
    assert 0.45 <= elapsed < 0.75, elapsed
    assert ch.stats()["slabs_free"] == 1  # the slab it took and could not send is back
    assert len(ch) == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["recv", "recv_many", "read", "recv_bytes", "send", "reserve", "send_bytes",
                                  "consumer_recv_many", "consumer_recv_into"])
def test_close_from_another_thread_wakes_waiters(case):
    ch = ringmpsc.Channel(8, capacity=2, slab_size=8, slabs=1, max_consumers=2)
    c = ch.consumer("g")
    p = ch.producer()
    if case in ("send", "reserve"):
        p.send_many(bytes(16))
    if case == "send_bytes":
        p.send_bytes(b"1")  # the only slab is in flight
    calls = {
        "recv": ch.recv,
        "recv_many": ch.recv_many,
        "read": ch.read,
        "recv_bytes": lambda: [ch.recv_bytes(), ch.recv_bytes()],
        "send": lambda: p.send(b"x"),
        "reserve": lambda: p.reserve(),
        "send_bytes": lambda: p.send_bytes(b"2"),
        "consumer_recv_many": c.recv_many,
        "consumer_recv_into": lambda: c.recv_into(bytearray(8)),
    }
    closed = _when_asleep(ch, ch.close)
    with pytest.raises(ringmpsc.Closed):
        calls[case]()
    assert closed() < 2.0


@pytest.mark.timeout(60)
def test_timeout_while_another_thread_holds_the_consumer_side():
    ch = ringmpsc.Channel(8)
    t = threading.Thread(target=lambda: pytest.raises(ringmpsc.Closed, ch.recv))
    t.start()
    observe.wait_asleep_in_channel(ch, t.native_id)  # it holds the consumer side
    t0 = time.monotonic()
    with pytest.raises(ringmpsc.Empty):
        ch.recv(timeout=0.2)
    assert 0.15 <= time.monotonic() - t0 < 2.0
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()
    ch.close()
    t.join(5)


@pytest.mark.timeout(60)
def test_blocked_recv_gets_a_record_sent_later_from_another_thread():
    ch = ringmpsc.Channel(8)
    p = ch.producer()
    p.send(b"hi")  # before the call
    assert ch.recv(timeout=5)[:2] == b"hi"
    for _ in range(3):  # sent once the receiver sleeps: the wake-up must not be lost
        sent = _when_asleep(ch, lambda: p.send(b"hi"))
        assert ch.recv(timeout=5)[:2] == b"hi"
        sent()


@pytest.mark.timeout(60)
def test_consumers_of_several_groups_wait_in_threads_without_the_gil():
    """Two groups, a thread each: both sleep in the channel, each gets every record."""
    ch = ringmpsc.Channel(8, capacity=4, max_consumers=2)
    ch.remove_group()
    cs = [ch.consumer("a"), ch.consumer("b")]
    got = {0: [], 1: []}

    def run(i):
        for rec in cs[i]:  # until closed and drained
            got[i].append(rec[:1])

    ts = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        observe.wait_asleep_in_channel(ch, t.native_id)
    assert _spin(0.1) > 0  # this thread runs meanwhile
    with ch.producer() as p:
        for i in range(20):
            p.send(bytes([i]), timeout=10)
    ch.close()
    for t in ts:
        t.join(10)
    assert got[0] == got[1] == [bytes([i]) for i in range(20)]
