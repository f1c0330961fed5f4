"""Channels crossing process boundaries: multiprocessing start methods, roles, fork."""
import multiprocessing as mp
import os
import pickle
import signal
import time

import pytest

import observe
import ringmpsc
import workers
from workers import Checker

METHODS = ["fork", "spawn", "forkserver"]


def _drain(ch, n, timeout=30):
    chk = Checker()
    deadline = time.monotonic() + timeout
    while chk.total() < n:
        left = deadline - time.monotonic()
        assert left > 0, "only %d of %d records arrived" % (chk.total(), n)
        chk.add_many(ch.recv_many(timeout=left), ch.record_size)
    return chk


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("named", [False, True])
def test_process_args_and_pool_tasks(method, named, shm_name, procs):
    ctx = mp.get_context(method)
    ch = ringmpsc.Channel(32, capacity=16, max_producers=8, name=shm_name() if named else None)
    for i in range(2):
        p = ctx.Process(target=workers.produce, args=(ch, i, 150, "send_many", 7))
        procs.append(p)
        p.start()
    chk = _drain(ch, 300)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    with ctx.Pool(2) as pool:
        res = pool.map_async(workers.pool_task, [(ch, 10 + i, 100) for i in range(3)])
        chk2 = _drain(ch, 300)
        pids = res.get(30)
        back = pool.apply_async(workers.pool_echo_channel, (ch,)).get(30)
    assert os.getpid() not in pids
    assert chk.next == {0: 150, 1: 150} and chk2.next == {10: 100, 11: 100, 12: 100}
    # The Channel a worker sent back is the same channel.
    back.producer().send(b"back")
    assert ch.recv(timeout=5)[:4] == b"back"
    assert back.name == ch.name and back.capacity == 16
    assert len(ch) == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("full_fences", [False, True])
def test_both_fence_modes_carry_records_across_processes(method, full_fences, procs):
    ctx = mp.get_context(method)
    # capacity 4: producers sleep for space and the consumer for data, many times
    ch = ringmpsc.Channel(32, capacity=4, max_producers=4, full_fences=full_fences)
    for i in range(2):
        p = ctx.Process(target=workers.produce, args=(ch, i, 3000, "send"))
        procs.append(p)
        p.start()
    chk = _drain(ch, 6000)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert chk.next == {0: 3000, 1: 3000}


@pytest.mark.timeout(60)
def test_named_channel_reaches_a_spawned_child_after_unlink(shm_name, procs):
    name = shm_name()
    ch = ringmpsc.Channel(32, capacity=8, name=name)
    ringmpsc.unlink(name)  # multiprocessing passes the fd, not the name
    p = mp.get_context("spawn").Process(target=workers.produce, args=(ch, 5, 20))
    procs.append(p)
    p.start()
    assert _drain(ch, 20).next == {5: 20}
    p.join(30)
    assert p.exitcode == 0


def test_plain_pickle_by_name_works_across_processes(shm_name, procs):
    ch = ringmpsc.Channel(32, capacity=8, name=shm_name())
    blob = pickle.dumps(ch)
    p = mp.get_context("spawn").Process(target=_unpickle_and_produce, args=(blob,))
    procs.append(p)
    p.start()
    assert _drain(ch, 10).next == {9: 10}
    p.join(30)
    assert p.exitcode == 0


def _unpickle_and_produce(blob):
    workers.produce(pickle.loads(blob), 9, 10)


@pytest.mark.timeout(60)
def test_fork_inherited_producer_raises_in_the_child(procs):
    ch = ringmpsc.Channel(8, capacity=8)
    prod = ch.producer()
    prod.send(b"parent")
    p = mp.get_context("fork").Process(target=workers.use_inherited_producer, args=(prod,))
    procs.append(p)
    p.start()
    p.join(30)
    assert p.exitcode == 0
    # the parent's ring is untouched and still works
    prod.send(b"again")
    assert ch.recv()[:6] == b"parent"
    assert ch.recv()[:5] == b"again"
    assert len(ch) == 0


def test_producers_do_not_travel(procs):
    ch = ringmpsc.Channel(8)
    prod = ch.producer()
    for method in ("spawn", "forkserver"):
        p = mp.get_context(method).Process(target=workers.use_inherited_producer, args=(prod,))
        with pytest.raises(TypeError, match="Producer"):
            p.start()
    with mp.get_context("fork").Pool(1) as pool:
        with pytest.raises(TypeError, match="Producer"):
            pool.apply(workers.use_inherited_producer, (prod,))


@pytest.mark.timeout(60)
def test_second_live_consumer_is_refused(procs):
    ch = ringmpsc.Channel(8)
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()  # this process is now the consumer
    p = mp.get_context("fork").Process(target=workers.claim_consumer_and_exit, args=(ch,))
    procs.append(p)
    p.start()
    p.join(30)
    assert p.exitcode == 3  # ConsumerBusy in the child


@pytest.mark.timeout(60)
def test_consumer_busy_names_the_owner_and_a_dead_owner_passes(procs):
    ctx = mp.get_context("spawn")
    ch = ringmpsc.Channel(8)
    hold, done = ctx.Event(), ctx.Event()
    p = ctx.Process(target=workers.claim_consumer_and_exit, args=(ch, hold, done))
    procs.append(p)
    p.start()
    assert hold.wait(30)
    with pytest.raises(ringmpsc.ConsumerBusy, match=str(p.pid)):
        ch.recv_nowait()
    for call in (lambda: ch.recv(timeout=0.01), ch.recv_many, lambda: ch.read(timeout=0),
                 lambda: ch.recv_into(bytearray(8)), lambda: list(ch)):
        with pytest.raises(ringmpsc.ConsumerBusy):
            call()
    assert ch.stats()["consumer_pid"] == p.pid
    # The owner dies holding the role (os._exit, no release): the claim passes to us.
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    ch.producer().send(b"mine")
    assert ch.recv(timeout=5)[:4] == b"mine"
    assert ch.stats()["consumer_pid"] == os.getpid()
    # (no done.set(): the Event's condition would wait for the killed sleeper)


@pytest.mark.timeout(60)
def test_forked_child_gets_fresh_locks(procs):
    """A lock held by a parent thread at fork time must not deadlock the child."""
    import threading

    ch = ringmpsc.Channel(8)
    prod = ch.producer()
    t = threading.Thread(target=lambda: pytest.raises(ringmpsc.Closed, ch.recv))
    t.start()
    observe.wait_asleep_in_channel(ch, t.native_id)  # it holds this handle's consumer lock while it waits
    p = mp.get_context("fork").Process(target=_child_uses_consumer_side, args=(ch,))
    procs.append(p)
    p.start()
    p.join(30)
    assert p.exitcode == 3  # it reached the C core (ConsumerBusy), no deadlock
    ch.close()
    t.join(5)
    del prod


@pytest.mark.timeout(60)
def test_a_read_view_inherited_through_fork_leaves_the_childs_lock_alone(procs):
    """A view open at fork time is the parent's: finishing it in the child raises, and
    does not release the lock a thread of the child holds now (it would let another
    thread into the core beside it)."""
    ch = ringmpsc.Channel(8, max_consumers=2)
    prod = ch.producer()
    prod.send(b"x")
    view = ch.read()
    p = mp.get_context("fork").Process(target=_child_finishes_an_inherited_view, args=(ch, view))
    procs.append(p)
    p.start()
    p.join(30)
    view.cancel()
    assert p.exitcode == 0, "exit %s: 1 = the inherited view finished; 2 = it released the child's lock" % (
        p.exitcode,)
    assert ch.recv(timeout=5)[:1] == b"x"  # the cancelled view left it


def _child_finishes_an_inherited_view(ch, view):
    import threading

    workers.arm_watchdog(20)
    t = threading.Thread(target=lambda: pytest.raises(ringmpsc.Empty, ch.recv, timeout=3), daemon=True)
    t.start()  # joins as a member of its own and waits, holding the (fresh) lock
    observe.wait_asleep_in_channel(ch, t.native_id)
    try:
        view.cancel()
    except ringmpsc.Error as e:
        ok = "fork" in str(e)
    else:
        ok = False
    if not ok:
        os._exit(1)
    try:
        ch.recv(timeout=0)
    except ringmpsc.Empty as e:
        os._exit(0 if "another thread" in str(e) else 2)
    os._exit(3)


def _child_uses_consumer_side(ch):
    workers.arm_watchdog(20)
    try:
        ch.recv(timeout=1)
    except ringmpsc.ConsumerBusy:
        os._exit(3)
    except BaseException:
        os._exit(4)
    os._exit(0)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", METHODS)
def test_a_channel_subclass_travels_as_itself(method, procs):
    ctx = mp.get_context(method)
    q = workers.JobQueue(16, capacity=8, max_producers=4)
    p = ctx.Process(target=workers.put_jobs, args=(q, 0, 20))
    procs.append(p)
    p.start()
    got = [q.get(timeout=30) for _ in range(20)]
    p.join(30)
    assert p.exitcode == 0
    with ctx.Pool(1) as pool:
        pid = pool.apply(workers.put_jobs, (q, 20, 5))
        assert pid != os.getpid()
    got += [q.get(timeout=30) for _ in range(5)]
    assert got == [b"job %d" % i for i in range(25)]
    assert len(q) == 0
