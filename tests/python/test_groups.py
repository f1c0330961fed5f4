"""Consumer groups from Python: work sharing between processes (every start method
and Pool), fan-out to several groups, a member killed holding records (redelivered
and marked, or dropped at-most-once), ephemeral groups, Consumer's lifetime, stats
and errors. Every wait is bounded and watches observable state."""
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import pytest

import observe
import ringmpsc
import workers
from ringmpsc import Channel
from workers import GROUP_REC, RESULT

N_WORKERS = 3


def rec(i):
    return GROUP_REC.pack(i)


def ids_of(data):
    return [GROUP_REC.unpack_from(data, off)[0] for off in range(0, len(data), GROUP_REC.size)]


def group_stats(ch, name):
    for g in ch.stats()["groups"]:
        if g["name"] == name:
            return g
    return None


def drain_results(results, n, timeout=30):
    """(pid, id) pairs the workers reported, until n arrived."""
    got = []
    while len(got) < n:
        data = results.recv_many(timeout=timeout)
        got += [RESULT.unpack_from(data, off) for off in range(0, len(data), RESULT.size)]
    return got


def check_shared(pairs, n_records, n_workers):
    """Every record exactly once overall, and every worker took some."""
    ids = sorted(i for _, i in pairs)
    assert ids == list(range(n_records)), "records lost or delivered twice"
    by_worker = {}
    for pid, i in pairs:
        by_worker.setdefault(pid, set()).add(i)
    assert len(by_worker) == n_workers, "only %d of %d workers took records" % (len(by_worker), n_workers)
    return by_worker


def produce_and_close(ch, n):
    with ch.producer() as p:
        for i in range(n):
            p.send(rec(i), timeout=30)
    ch.close()


# --- work sharing: every start method, and Pool --------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_worker_processes_share_the_default_group(method, procs):
    n = 300
    ctx = mp.get_context(method)
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=512, max_producers=2, max_consumers=N_WORKERS)
    results = ringmpsc.Channel(RESULT.size, capacity=512, max_producers=N_WORKERS)
    for _ in range(N_WORKERS):
        p = ctx.Process(target=workers.share_worker, args=(ch, results, N_WORKERS))
        procs.append(p)
        p.start()
    produce_and_close(ch, n)
    pairs = drain_results(results, n)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    by_worker = check_shared(pairs, n, N_WORKERS)
    assert set(by_worker) == {p.pid for p in procs}
    g = group_stats(ch, ringmpsc.DEFAULT_GROUP)
    assert g["pending"] == 0 and g["unreleased"] == 0 and g["redelivered"] == 0
    assert len(results) == 0


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_share_the_default_group(method):
    n = 240
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=256, max_producers=2, max_consumers=N_WORKERS)
    results = ringmpsc.Channel(RESULT.size, capacity=256, max_producers=N_WORKERS)
    with mp.get_context(method).Pool(N_WORKERS) as pool:
        res = pool.map_async(workers.share_pool_task, [(ch, results, N_WORKERS)] * N_WORKERS, chunksize=1)
        produce_and_close(ch, n)
        pairs = drain_results(results, n)
        pids = res.get(30)
    assert len(set(pids)) == N_WORKERS and os.getpid() not in pids
    assert set(check_shared(pairs, n, N_WORKERS)) == set(pids)


@pytest.mark.timeout(60)
def test_two_groups_of_two_processes_each_see_every_record(procs):
    """Fan-out (each group gets everything) with work sharing inside each group."""
    n = 200
    ctx = mp.get_context("fork")
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=256, max_producers=2, max_consumers=4)
    ch.remove_group()  # nobody consumes the default group: it would hold producers back
    out = {g: ringmpsc.Channel(RESULT.size, capacity=256, max_producers=2) for g in "ab"}
    for g in "ab":
        ch.consumer(g).close()  # create both groups before anything is sent (groups start at the tail)
        for _ in range(2):
            p = ctx.Process(target=workers.share_worker, args=(ch, out[g], 2, g))
            procs.append(p)
            p.start()
    produce_and_close(ch, n)
    for g in "ab":
        check_shared(drain_results(out[g], n), n, 2)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0


def test_fan_out_in_one_process_and_the_slowest_group_holds_producers():
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=8, max_producers=1, max_consumers=4)
    ch.remove_group()
    a, b = ch.consumer("a"), ch.consumer("b")
    assert (a.group, b.group, ch.group) == ("a", "b", None)
    p = ch.producer()
    for i in range(8):
        p.send_nowait(rec(i))
    with pytest.raises(ringmpsc.Full):
        p.send_nowait(rec(8))
    assert ids_of(a.recv_many()) == list(range(8))
    with pytest.raises(ringmpsc.Full):  # b has not consumed: the ring is still full
        p.send_nowait(rec(8))
    assert (group_stats(ch, "a")["pending"], group_stats(ch, "b")["pending"]) == (0, 8)
    assert (len(a), len(b)) == (0, 8)
    assert [GROUP_REC.unpack(b.recv_nowait())[0] for _ in range(3)] == [0, 1, 2]
    with b.read(1) as view:
        assert ids_of(view) == [3]
    for i in range(8, 12):
        p.send_nowait(rec(i))
    assert ids_of(a.recv_many()) == [8, 9, 10, 11]
    assert ids_of(b.recv_many()) == list(range(4, 12))
    assert a.last_deliveries == b.last_deliveries == 1


# --- a member killed holding records ----------------------------------------------------


def _killed_holder(ch, group=None, flags=(), procs=None):
    """A forked member of `group` that read a claim and was SIGKILLed: returns the ids it held."""
    parent, child = mp.get_context("fork").Pipe()
    p = mp.get_context("fork").Process(target=workers.hold_and_wait, args=(ch, child, group, flags))
    procs.append(p)
    p.start()
    assert parent.poll(30), "the holder never read"
    held, deliveries = parent.recv()
    assert held and deliveries == 1
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    assert p.exitcode == -signal.SIGKILL
    return held


@pytest.mark.timeout(60)
def test_killed_member_records_go_to_another_marked_redelivered(procs):
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=16, max_producers=1, max_consumers=3)
    p = ch.producer()
    for i in range(10):
        p.send_nowait(rec(i))
    assert ch.recv_nowait() == rec(0) and ch.last_deliveries == 1  # this process: the first member
    held = _killed_holder(ch, procs=procs)
    assert 0 not in held
    got, marked = [0], []
    while len(got) < 10:
        # nothing is asked of the core: a waiting member recovers dead peers by itself
        r = GROUP_REC.unpack(ch.recv(timeout=10))[0]
        got.append(r)
        if ch.last_deliveries > 1:
            assert ch.last_deliveries == 2
            marked.append(r)
    assert sorted(got) == list(range(10)), "lost or duplicated"
    assert sorted(marked) == sorted(held)
    s = ch.stats()
    assert s["recovered_members"] >= 1
    assert group_stats(ch, ringmpsc.DEFAULT_GROUP)["redelivered"] == len(held)
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()


@pytest.mark.timeout(60)
def test_killed_member_redelivered_to_a_consumer_read_view(procs):
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=16, max_producers=1, max_consumers=3, max_groups=2)
    c = ch.consumer("jobs")
    p = ch.producer()
    for i in range(6):
        p.send_nowait(rec(i))
    assert c.recv_nowait() == rec(0)
    held = _killed_holder(ch, "jobs", procs=procs)
    assert ch.reclaim_dead() >= 1  # recover now rather than at the next waiting sweep
    members = ch.stats()["members"]
    assert [m["state"] for m in members if m["group"] == "jobs"].count("orphaned") == 1
    seen = {}
    while len(seen) < 6 - 1:
        rv = c.read(timeout=10)
        with rv as view:
            for i in ids_of(view):
                seen[i] = rv.deliveries
        assert rv.deliveries == c.last_deliveries
    assert sorted(seen) == list(range(1, 6))
    assert {i for i, d in seen.items() if d == 2} == set(held)


@pytest.mark.timeout(60)
def test_at_most_once_group_drops_what_a_killed_member_held(procs):
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=16, max_producers=1, max_consumers=3, max_groups=2)
    c = ch.consumer("amo", at_most_once=True)
    assert c.at_most_once and not c.ephemeral
    p = ch.producer()
    for i in range(10):
        p.send_nowait(rec(i))
    assert c.recv_nowait() == rec(0)
    held = _killed_holder(ch, "amo", ("at_most_once",), procs=procs)
    assert ch.reclaim_dead() >= 1
    got = [0]
    while True:
        try:
            got.append(GROUP_REC.unpack(c.recv_nowait())[0])
        except ringmpsc.Empty:
            break
        assert c.last_deliveries == 1
    assert sorted(got + held) == list(range(10)) and not set(got) & set(held)
    g = group_stats(ch, "amo")
    assert g["redelivered"] == 0 and g["unreleased"] == 0 and g["pending"] == 0


@pytest.mark.timeout(60)
def test_ephemeral_group_goes_with_its_killed_member_and_frees_producers(procs):
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=4, max_producers=1, max_consumers=2)
    ch.remove_group()  # only the subscriber holds records
    parent, child = mp.get_context("fork").Pipe()
    sub = mp.get_context("fork").Process(
        target=workers.hold_and_wait, args=(ch, child, "sub", ("ephemeral",), 0))
    procs.append(sub)
    sub.start()
    assert parent.poll(30) and parent.recv() == ([], 0)
    g = group_stats(ch, "sub")
    assert g["ephemeral"] and g["live_members"] == 1
    p = ch.producer()
    for i in range(4):
        p.send_nowait(rec(i))
    with pytest.raises(ringmpsc.Full):
        p.send_nowait(rec(4))
    os.kill(sub.pid, signal.SIGKILL)
    sub.join(30)
    # The core's producer looks for dead members only once a single wait call has
    # lasted 100 ms, and this binding waits in 50 ms slices, so recovery is asked for
    # here (reclaim_dead; waiting members of any group also do it now and then).
    assert ch.reclaim_dead() == 1
    assert group_stats(ch, "sub") is None
    p.send(rec(4), timeout=0)
    for i in range(5, 20):
        p.send_nowait(rec(i))  # nothing holds the producer back any more


# --- Consumer's lifetime ----------------------------------------------------------------


def test_consumer_as_context_manager_leaves_its_group():
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=8, max_producers=1, max_consumers=2, max_groups=3)
    p = ch.producer()
    with ch.consumer("g") as c:
        assert group_stats(ch, "g")["live_members"] == 1
        assert not c.closed and c.channel is ch
        p.send_nowait(rec(1))
        assert c.recv_nowait() == rec(1) and c.last_deliveries == 1
    assert c.closed and "closed" in repr(c)
    g = group_stats(ch, "g")  # durable: it stays, and keeps what arrives for it
    assert (g["members"], g["live_members"]) == (0, 0)
    p.send_nowait(rec(2))
    assert group_stats(ch, "g")["pending"] == 1
    for call in (c.recv_nowait, c.recv, lambda: c.read(), lambda: c.recv_many(), lambda: len(c),
                 lambda: c.recv_into(bytearray(8)), lambda: next(iter(c))):
        with pytest.raises(ValueError, match="Consumer is closed"):
            call()
    c.close()  # idempotent
    with ch.consumer("g") as c2:  # joining again: what it kept
        assert c2.recv_nowait() == rec(2)
    with ch.consumer("tmp", ephemeral=True) as e:
        assert e.ephemeral and group_stats(ch, "tmp") is not None
    assert group_stats(ch, "tmp") is None  # the last member of an ephemeral group removes it


def test_leave_and_the_default_group():
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=8, max_producers=1, max_consumers=2)
    p = ch.producer()
    p.send_nowait(rec(0))
    p.send_nowait(rec(1))
    assert ch.group is None  # not a member before the first consumer call
    assert ch.recv_nowait() == rec(0)
    assert ch.group == ringmpsc.DEFAULT_GROUP
    assert ch.stats()["consumer_pid"] == os.getpid()
    v = ch.read()
    with pytest.raises(RuntimeError, match="open read"):
        ch.leave()  # this thread holds the group's consumer side
    v.cancel()
    ch.leave()  # with record 1 taken and not consumed: it waits for the next member
    assert ch.group is None
    assert [m["state"] for m in ch.stats()["members"]] == ["orphaned"]
    ch.leave()  # not a member: nothing
    with pytest.raises(ValueError, match="no group"):
        ch.remove_group("nope")
    ch.remove_group()  # no live member now: it goes, with record 1
    assert ch.stats()["groups"] == [] and ch.stats()["members"] == []
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()  # joins a new default group, which starts at the tail
    p.send_nowait(rec(2))
    assert ch.recv_nowait() == rec(2)
    assert ch.group == ringmpsc.DEFAULT_GROUP


def test_a_consumer_of_the_default_group_shares_the_channels_membership():
    """One membership per process and group: the Channel and a Consumer of its group
    take turns on one lock, and leaving through one keeps the other a member."""
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=8, max_producers=1, max_consumers=2)
    p = ch.producer()
    for i in range(4):
        p.send_nowait(rec(i))
    assert ch.recv_nowait() == rec(0)
    c = ch.consumer()
    assert c.group == ringmpsc.DEFAULT_GROUP
    assert len(ch.stats()["members"]) == 1  # the same place
    with ch.read(1) as view:
        assert ids_of(view) == [1]
        with pytest.raises(RuntimeError, match="open read"):
            c.recv_nowait()  # this thread holds the group's side through ch
        with pytest.raises(RuntimeError, match="open read"):
            ch.consumer()  # joining shares it too
        ch.consumer("other").close()  # another group: another lock
        got = []
        t = threading.Thread(target=lambda: got.append(c.recv(timeout=10)))
        t.start()
        observe.wait_asleep_on_lock(ch, t.native_id)  # waits for the view to finish
    t.join(10)
    assert got == [rec(2)]
    c.close()
    assert ch.group == ringmpsc.DEFAULT_GROUP and len(ch.stats()["members"]) == 1
    assert ch.recv_nowait() == rec(3)


def test_channel_objects_on_one_region_share_its_membership_and_take_turns(shm_name):
    """Membership is per process and group, not per Channel object: Channel objects on
    one region (by name, by name again, by descriptor) and their Consumers of a group
    share one member place, and one lock."""
    name = shm_name()
    a = ringmpsc.Channel(GROUP_REC.size, name=name, capacity=8, max_producers=1, max_consumers=2)
    b = ringmpsc.Channel.open(name)
    c = ringmpsc.Channel._from_fd(a.fileno())
    p = a.producer()
    for i in range(4):
        p.send_nowait(rec(i))
    with a.read(1) as view:
        assert ids_of(view) == [0]
        for other in (b, c):
            with pytest.raises(RuntimeError, match="open read"):
                other.recv_nowait()  # this thread holds the group's side through a
        with pytest.raises(RuntimeError, match="open read"):
            b.consumer()  # the default group: the same membership
        b.consumer("other", ephemeral=True).close()  # another group: another lock
        got = []
        t = threading.Thread(target=lambda: got.append(c.recv(timeout=10)))
        t.start()
        observe.wait_asleep_on_lock(a, t.native_id)  # waits for a's view to finish
    t.join(10)
    assert got == [rec(1)]
    assert len(a.stats()["members"]) == 1  # one place for the three objects
    assert b.ready_fd() == c.ready_fd() == a.ready_fd()  # one membership, one readiness FIFO
    ga, gb = a.consumer("g", ephemeral=True), b.consumer("g", ephemeral=True)
    p.send_nowait(rec(4))
    view = ga.read()
    with pytest.raises(RuntimeError, match="open read"):
        gb.recv_nowait()  # a Consumer of another Channel object, the same group
    view.cancel()
    assert ids_of(gb.recv_many(timeout=0)) == [4]  # what ga's view left
    ga.close()
    gb.close()
    assert ids_of(b.recv_many(timeout=0)) == [2, 3, 4]  # the default group has rec(4) as well


def test_consumer_does_not_pickle_or_instantiate():
    ch = ringmpsc.Channel(8, max_consumers=2)
    c = ch.consumer("g")
    with pytest.raises(TypeError, match="Consumer"):
        pickle.dumps(c)
    with pytest.raises(TypeError):
        ringmpsc.Consumer()
    del ch  # the Consumer keeps the channel (and its mapping) alive
    assert c.channel.max_consumers == 2 and len(c) == 0


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, exc, match", [
    (dict(max_consumers=0), ValueError, "max_consumers must be in 1..256"),
    (dict(max_consumers=257), ValueError, "max_consumers"),
    (dict(max_consumers="2"), TypeError, "max_consumers must be an int"),
    (dict(max_consumers=True), TypeError, "max_consumers"),
    (dict(max_groups=65), ValueError, "max_groups must be in 0..64"),
    (dict(max_groups=-1), ValueError, "max_groups"),
    (dict(max_groups=1.0), TypeError, "max_groups"),
])
def test_bad_geometry(kw, exc, match):
    with pytest.raises(exc, match=match):
        ringmpsc.Channel(8, **kw)


def test_join_errors():
    ch = ringmpsc.Channel(8, capacity=4, max_producers=1, max_consumers=2)  # max_groups 2
    x = ch.consumer("x", ephemeral=True)
    with pytest.raises(ValueError, match='group "x" exists with flags 0x1'):
        ch.consumer("x")
    with pytest.raises(ValueError, match="exists with flags"):
        ch.consumer("x", ephemeral=True, at_most_once=True)
    with pytest.raises(ringmpsc.ConsumerBusy, match="max_groups"):
        ch.consumer("y")  # the default group and x fill both group places
    with pytest.raises(ValueError, match="longer than 31 bytes"):
        ch.consumer("g" * 32)
    with pytest.raises(ValueError, match="empty"):
        ch.consumer("")
    with pytest.raises(ValueError, match="NUL"):
        ch.consumer("a\0b")
    with pytest.raises(TypeError, match="group must be a str"):
        ch.consumer(b"x")
    with pytest.raises(TypeError, match="at most 1 positional"):
        ch.consumer("x", True)
    with pytest.raises(ValueError, match="live member"):
        ch.remove_group("x")
    with pytest.raises(ringmpsc.Empty):
        ch.recv_nowait()  # this process: the second place (the default group)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a third process finds both places held by a live one
        try:
            ch.consumer("x", ephemeral=True)
        except ringmpsc.ConsumerBusy as e:
            os.write(w, b"busy" if "max_consumers" in str(e) else str(e).encode())
        except BaseException as e:
            os.write(w, repr(e).encode())
        os._exit(0)
    os.close(w)
    assert os.read(r, 200) == b"busy"
    os.close(r)
    os.waitpid(pid, 0)
    x.close()
    one = ringmpsc.Channel(8, max_producers=1)  # one consumer, one group
    with pytest.raises(ValueError, match="max_groups 1"):
        one.remove_group()
    with pytest.raises(ringmpsc.ConsumerBusy):
        one.consumer("other")


# --- stats and info -----------------------------------------------------------------------


def test_stats_and_info_show_groups_members_claims_and_lag(shm_name, procs):
    name = shm_name()
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=16, max_producers=1, name=name, max_consumers=3,
                          max_groups=3)
    c = ch.consumer("audit", at_most_once=True)
    p = ch.producer()
    for i in range(10):
        p.send_nowait(rec(i))
    assert ch.recv_nowait() == rec(0)
    held = _killed_holder(ch, procs=procs)  # leaves an orphaned claim once recovered
    ch.reclaim_dead()
    s = ch.stats()
    assert (s["max_consumers"], s["max_groups"], s["recovered_members"]) == (3, 3, 1)
    d, a = group_stats(ch, ringmpsc.DEFAULT_GROUP), group_stats(ch, "audit")
    assert (d["members"], d["live_members"], d["claims"], d["solo"]) == (2, 1, 1, False)
    assert d["pending"] == 10 - 1 - len(held) and d["unreleased"] == len(held)
    assert (a["flags"], a["at_most_once"], a["ephemeral"], a["pending"], a["solo"]) == (2, True, False, 10, True)
    states = sorted((m["group"], m["state"], m["claim"]) for m in s["members"])
    assert states == [("audit", "active", None), ("default", "active", None),
                      ("default", "orphaned", (0, len(held)))]
    assert all(m["pid"] for m in s["members"])
    out = subprocess.run([sys.executable, "-m", "ringmpsc", "info", name], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert "max_consumers" in out and "groups: 2" in out and "members: 3" in out
    assert "durable, at-most-once" in out and "orphaned" in out
    assert "%d records of slot 0" % len(held) in out
    lines = [ln.split() for ln in out.splitlines()]
    assert ["audit", "durable,", "at-most-once", "1", "1", "yes", "0", "10", "0", "0"] in lines  # lag 10
    del c


@pytest.mark.timeout(60)
def test_a_consumer_inherited_through_fork_joins_its_group_anew_in_the_child(procs):
    ch = ringmpsc.Channel(GROUP_REC.size, capacity=8, max_producers=1, max_consumers=2, max_groups=2)
    c = ch.consumer("g")
    p = ch.producer()
    p.send_nowait(rec(0))
    p.send_nowait(rec(1))
    assert c.recv_nowait() == rec(0)
    parent, child = mp.get_context("fork").Pipe()
    k = mp.get_context("fork").Process(target=_use_inherited_consumer, args=(c, child))
    procs.append(k)
    k.start()
    assert parent.poll(30)
    assert parent.recv() == (rec(1), 1, 2)  # the child: a second member of g
    k.join(30)
    assert k.exitcode == 0
    ch.reclaim_dead()  # the child exited without leaving
    assert group_stats(ch, "g")["members"] == 1
    p.send_nowait(rec(2))
    assert c.recv_nowait() == rec(2)  # the parent's membership is untouched
    with pytest.raises(TypeError, match="Consumer"):
        mp.get_context("spawn").Process(target=print, args=(c,)).start()


def _use_inherited_consumer(c, conn):
    workers.arm_watchdog(30)
    r = c.recv(timeout=10)
    conn.send((r, c.last_deliveries, group_stats(c.channel, "g")["live_members"]))
    os._exit(0)


# --- Channel.wait_pending_below with groups ---------------------------------------

def _groups_channel():
    return Channel(64, 64, max_producers=2, max_consumers=4, max_groups=4)


def test_dead_ephemeral_subscriber_does_not_hold_a_waiting_sender():
    """An ephemeral group whose only member died holds its records until someone
    recovers it: the waiter does, as a producer waiting for ring space does, at most
    every 100 ms per handle (the binding waits in 50 ms slices)."""
    ch = _groups_channel()
    member = Channel._from_fd(ch.fileno())
    c = member.consumer()  # the default group keeps up; `ch` stays no member (len: every group)
    pid = os.fork()
    if pid == 0:
        try:
            sub = Channel._from_fd(ch.fileno()).consumer("sub", ephemeral=True)
            assert sub is not None
        finally:
            os._exit(0)  # dies a member: no leave
    assert os.waitpid(pid, 0)[1] == 0
    p = ch.producer()
    for i in range(3):
        p.send(bytes([i]) * 64)
    for _ in range(3):
        c.recv(timeout=1)
    assert len(ch) == 3  # the dead subscriber's
    t0 = time.monotonic()
    try:
        ch.wait_pending_below(2, timeout=2)
    except ringmpsc.Full as e:
        pytest.fail("still held after %.1f s by a dead ephemeral group (%s); reclaim_dead() frees it: %d"
                    % (time.monotonic() - t0, e, ch.reclaim_dead() or len(ch)))
    assert len(ch) < 2


def test_len_of_a_member_is_not_what_wait_pending_below_waits_for():
    """For a Channel that is a member, len() counts its own group's records; the wait
    counts what every group has yet to release (ring space is held until then)."""
    ch = _groups_channel()
    lagging = ch.consumer("lagging")  # a group that takes nothing
    p = ch.producer()
    p.send(b"x" * 64)
    ch.recv(timeout=1)  # ch's own handle joins the default group and takes it
    assert ch.group == "default" and lagging is not None
    assert len(ch) == 0
    with pytest.raises(ringmpsc.Full):
        ch.wait_pending_below(1, timeout=0)  # len(ch) < 1, and yet
