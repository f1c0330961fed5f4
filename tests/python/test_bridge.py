"""ringmpsc.bridge against a real nats-server (JetStream) that the tests start and restart.

Forward: records from several producer processes reach the stream exactly once (by
Nats-Msg-Id and by content) and in per-producer order, while the forwarder is
SIGKILLed at random moments and restarted and the server is killed and restarted
mid-stream; a server that is down fills the channel (producers see Full) and the
forwarder's stats and `ringmpsc info` show it. Ingest: an ingester SIGKILLed
mid-stream has acknowledged only messages already committed to the channel, and
after a restart every message is in the channel at least once.

Every wait polls observable state (the stream's and the consumer's counts, the
channel's stats) against a deadline and fails saying what it saw last.
"""
import asyncio
import multiprocessing
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import observe
import ringmpsc
import workers

nats = pytest.importorskip("nats", reason="nats-py missing (scripts/ensure-deps.sh python installs it)")
NATS_SERVER = shutil.which("nats-server") or next(
    (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(NATS_SERVER is None,
                                reason="nats-server missing (scripts/ensure-deps.sh python installs it)")

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy  # noqa: E402

from ringmpsc import bridge  # noqa: E402

FORK = multiprocessing.get_context("fork")


def wait_until(what, check, timeout, interval=0.01, context=None):
    """Poll check() until it returns a true value (returned) or fail after timeout with its last value
    (and what context() says: a child's log)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = check()
        if seen:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0fs (last seen: %r)%s"
                                 % (what, timeout, seen, "\n" + context() if context else ""))
        time.sleep(interval)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """nats-server -js on 127.0.0.1 with a store in a temporary directory; restartable on its port."""

    def __init__(self, tmp):
        self.store = str(tmp / "store")
        self.log = str(tmp / "nats-server.log")
        self.port = _free_port()
        self.url = "nats://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self, timeout=15):
        with open(self.log, "ab") as log:
            mark = log.tell()
            self.proc = subprocess.Popen([NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                          "-sd", self.store], stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited with %s:\n%s" % (self.proc.returncode, self.tail()))
            with open(self.log, "rb") as f:
                f.seek(mark)
                return b"Server is ready" in f.read()

        wait_until("nats-server ready", ready, timeout)

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self):
        with open(self.log, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")


@pytest.fixture
def server(tmp_path):
    s = NatsServer(tmp_path)
    s.start()
    yield s
    s.stop()
    print("nats-server log:\n" + s.tail())


class Relay:
    """A TCP relay to a server that can be cut like a network partition: from cut() on it
    neither reads nor forwards anything, and its sockets take in little (a small receive
    buffer), so what a client sends then piles up in the client."""

    def __init__(self, port):
        self.port = port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.url = "nats://127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.severed = threading.Event()
        self.stopped = threading.Event()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.port))
            self.socks += [a, b]
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a), daemon=True).start()

    def _pump(self, src, dst):
        while not self.stopped.is_set():
            if self.severed.is_set():
                self.stopped.wait(0.05)
                continue
            r, _, _ = select.select([src], [], [], 0.05)
            if not r or self.severed.is_set():
                continue
            try:
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)
            except OSError:
                return

    def cut(self):
        self.severed.set()

    def close(self):
        self.stopped.set()
        for s in [self.lsock] + self.socks:
            s.close()


def js_call(url, fn, timeout=10):
    """Run fn(js) on a fresh connection; its result."""
    async def go():
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(asyncio.wait_for(go(), timeout))


def stream_count(url, stream):
    async def count(js):
        return (await js.stream_info(stream)).state.messages

    try:
        return js_call(url, count)
    except Exception:  # the server is restarting, or the stream is not made yet
        return 0


def read_stream(url, stream, subject, n, timeout=20):
    """Every message of the stream, in stream order, as (Nats-Msg-Id, data); n expected."""
    async def read(js):
        cfg = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
        sub = await js.pull_subscribe(subject, stream=stream, config=cfg)
        out = []
        while len(out) < n:
            try:
                msgs = await sub.fetch(min(1000, n - len(out)), timeout=2)
            except nats.errors.TimeoutError:
                break
            out += [((m.headers or {}).get(bridge.MSG_ID), m.data) for m in msgs]
        return out

    return js_call(url, read, timeout)


class Child:
    """A `python -m ringmpsc ...` process, its log in a file; killed and reaped at the end."""

    def __init__(self, tmp, *args):
        self.log = str(tmp / ("%s-%d.log" % (args[0], time.monotonic_ns())))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ringmpsc", *args, "--log-level", "debug",
                                          "--stats-interval", "0.2"], stdout=log, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def tail(self):
        return "%s log:\n%s" % (self.proc.args[3], self.text()[-4000:])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def state(self):
        """Its state letter in /proc (T: stopped)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2]


@pytest.fixture
def children():
    """Children a test started: killed and reaped at the end; their logs printed (pytest shows
    them when the test failed)."""
    started = []
    yield started
    for c in started:
        c.kill()
        print(c.tail())


def producers(ch, procs, n_producers, count):
    for pid in range(n_producers):
        p = FORK.Process(target=workers.produce, args=(ch, pid, count, "send_many", 16, 90))
        p.start()
        procs.append(p)


def check_stream(msgs, n_producers, count, incarnation):
    """Exactly once (by id and by content), every record, per-producer order, ids that name slot and position."""
    ids = [m[0] for m in msgs]
    assert None not in ids, "a message without Nats-Msg-Id"
    assert len(set(ids)) == len(ids), "%d ids stored twice" % (len(ids) - len(set(ids)))
    checker = workers.Checker()  # per producer: 0, 1, 2, ... in stream order, none twice
    slot_of = {}
    for rid, data in msgs:
        checker.add(data)
        head, slot, pos = rid.rsplit("-", 2)
        assert head == "%016x-default" % incarnation, rid
        pid = workers.verify_record(data)[0]
        assert slot_of.setdefault(pid, slot) == slot, "producer %d's records under two slots" % pid
    assert checker.next == dict.fromkeys(range(n_producers), count), checker.next


def test_read_view_position_names_a_record(shm_name):
    ch = ringmpsc.Channel(16, capacity=8, max_producers=2, name=shm_name())
    p = ch.producer()
    seen = []
    for i in range(20):  # past the ring's capacity: positions go on
        p.send(b"%d" % i)
        v = ch.read()
        seen.append((v.slot, v.position, len(v)))
        v.consume()
    assert seen == [(p.slot, i, 1) for i in range(20)]
    p.send_many(bytes(16 * 3))
    v = ch.read()
    assert (v.slot, v.position, len(v)) == (p.slot, 20, 3)
    v.consume(2)  # the rest is read again, from where it stopped
    v = ch.read()
    assert (v.position, len(v)) == (22, 1)
    v.consume()
    assert bridge.channel_id(ch) == bridge.channel_id(ringmpsc.Channel.open(ch.name))
    assert bridge.record_id(0xAB, 3, 22) == "00000000000000ab-default-3-22"
    assert bridge.record_id(0xAB, 3, 22, "nats-1") == "00000000000000ab-nats-1-3-22"
    other = ringmpsc.Channel(16)
    assert bridge.channel_id(other) != bridge.channel_id(ch)  # 64 random bits


@pytest.mark.timeout(90)
def test_forward_exactly_once_across_forwarder_kills_and_a_server_restart(server, shm_name, procs, children,
                                                                           tmp_path):
    n_producers, count = 3, 4000
    total = n_producers * count
    name = shm_name()
    ch = ringmpsc.Channel(workers.MIN_RECORD + 16, capacity=256, max_producers=4, name=name, max_consumers=2)
    fwd_args = ("forward", name, "--server", server.url, "--subject", "ev.in", "--stream", "EV", "--batch", "64",
                "--ack-timeout", "2", "--max-backoff", "0.3")  # the default group, there from creation
    producers(ch, procs, n_producers, count)
    rng = random.Random()

    def progress(what):
        """Wait until the stream grew by a random 300..1500 records since now (the current
        forwarder is running and, nearly always, holds a span)."""
        mark = stream_count(server.url, "EV") + rng.randrange(300, 1500)
        wait_until("%d records in the stream (%s)" % (mark, what),
                   lambda: stream_count(server.url, "EV") >= mark, 30, context=fwd.tail)

    def unreleased():
        return [g["unreleased"] for g in ch.stats()["groups"] if g["name"] == "default"][0]

    def kill_holding_a_span(what):
        """SIGKILL the forwarder while it holds a span (taken, not released): stopped at a random
        moment, killed if it holds one, else let go on and stopped again a little later."""
        deadline = time.monotonic() + 20
        while True:
            fwd.proc.send_signal(signal.SIGSTOP)
            wait_until("the forwarder to stop", lambda: fwd.state() == "T", 10)
            if unreleased() > 0:
                fwd.kill()  # whatever it held goes back to the group
                return
            fwd.proc.send_signal(signal.SIGCONT)
            assert time.monotonic() < deadline, "the forwarder never held a span when stopped (%s)" % what
            time.sleep(random.uniform(0.001, 0.01))  # a random moment of its run

    fwd = Child(tmp_path, *fwd_args)
    children.append(fwd)
    for k in range(3):
        progress("before kill %d" % (k + 1))
        kill_holding_a_span("kill %d" % (k + 1))
        fwd = Child(tmp_path, *fwd_args)
        children.append(fwd)

    progress("before the server's kill")
    server.kill()
    # Down: the forwarder retries, its group falls behind and the producers' rings fill.
    wait_until("the forwarder to report the lost server", lambda: "failed" in fwd.text(), 15)

    def full():
        return [r for r in ch.stats()["producers"] if r["pending"] >= ch.capacity] or all(
            not p.is_alive() for p in procs)

    wait_until("a producer's ring to fill while the server is down", full, 15)
    server.start()

    wait_until("all %d records in the stream" % total, lambda: stream_count(server.url, "EV") >= total, 45)
    for p in procs:
        p.join(10)
        assert p.exitcode == 0, "producer exit %s" % p.exitcode
    ch.close()  # the forwarder drains and ends
    assert fwd.proc.wait(15) == 0, fwd.text()[-3000:]
    assert "closed and drained" in fwd.text()

    msgs = read_stream(server.url, "EV", "ev.in", total + 1)
    assert len(msgs) == total, "%d messages in the stream, %d records sent" % (len(msgs), total)
    check_stream(msgs, n_producers, count, bridge.channel_id(ch))
    group = [g for g in ch.stats()["groups"] if g["name"] == "default"][0]
    assert group["pending"] == 0 and group["unreleased"] == 0
    # Each kill landed while a span was held: those records were delivered again (the
    # stream dropped those it had already: exactly once above).
    assert group["redelivered"] >= 3, group


def own_group(ch):
    """The group "nats" alone: a group receives what is committed from its creation on, and the
    default group would hold the producers back (every group receives every record)."""
    ch.consumer("nats").close()  # durable: stays without members
    ch.remove_group()


def _forward_in_loop(ch, url, **kw):
    sink = bridge.JetStreamSink(url, "bp.in", "BP")  # url may list servers: "nats://a:1,nats://b:2"
    return bridge.Forwarder(ch, sink, group="nats", batch=32, ack_timeout=1, first_backoff=0.02, max_backoff=0.2,
                            **kw)


@pytest.mark.timeout(60)
def test_server_down_fills_the_channel_visibly_and_forwarding_resumes(tmp_path, shm_name):
    server = NatsServer(tmp_path)  # not started yet: the forwarder starts against nothing
    name = shm_name()
    ch = ringmpsc.Channel(16, capacity=64, max_producers=2, name=name, max_consumers=2)
    own_group(ch)
    p = ch.producer()
    nobody = "nats://127.0.0.1:%d" % _free_port()  # a cluster's other server, down throughout
    fwd = _forward_in_loop(ch, nobody + "," + server.url, encode=lambda r: r.rstrip(b"\0"))
    sent = []

    async def scenario():
        task = asyncio.ensure_future(fwd.run())
        try:
            # Nothing dropped silently: the producer sees Full once the ring holds capacity records.
            n = 0
            while True:
                try:
                    p.send_nowait(b"r%d" % n)
                except ringmpsc.Full:
                    break
                sent.append(b"r%d" % n)
                n += 1
                assert n <= ch.capacity + 32, "never full"
            assert ch.capacity <= n <= ch.capacity + 32  # the forwarder may hold one span
            deadline = time.monotonic() + 10
            while fwd.stats()["retries"] < 2:
                assert time.monotonic() < deadline, fwd.stats()
                await asyncio.sleep(0.01)
            s = fwd.stats()
            assert not s["connected"] and s["forwarded"] == 0 and s["last_error"], s
            assert s["lag"] + s["unreleased"] == n, s
            info = subprocess.run([sys.executable, "-m", "ringmpsc", "info", name], capture_output=True, text=True,
                                  timeout=30)
            row = [ln.split() for ln in info.stdout.splitlines() if ln.split()[:1] == ["nats"]]
            assert row and int(row[0][-3]) + int(row[0][-2]) == n, info.stdout  # lag + unreleased
            server.start()
            while fwd.stats()["forwarded"] < n:
                assert time.monotonic() < deadline + 20, fwd.stats()
                await asyncio.sleep(0.01)
            p.send(b"after", timeout=5)  # room again
            sent.append(b"after")
            while fwd.stats()["forwarded"] < n + 1:
                assert time.monotonic() < deadline + 20, fwd.stats()
                await asyncio.sleep(0.01)
            assert fwd.stats()["connected"]
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    try:
        asyncio.run(scenario())
        msgs = read_stream(server.url, "BP", "bp.in", len(sent) + 1)
        assert [m[1] for m in msgs] == sent  # trimmed by encode, in order, once
    finally:
        server.stop()


@pytest.mark.timeout(30)
def test_forward_idle_waits_on_the_ready_fd_and_stops_on_close(server, shm_name):
    ch = ringmpsc.Channel(16, capacity=64, name=shm_name(), max_consumers=2)
    own_group(ch)
    fwd = _forward_in_loop(ch, server.url)

    async def scenario():
        task = asyncio.ensure_future(fwd.run())
        p = ch.producer()
        p.send(b"one")
        deadline = time.monotonic() + 10
        while fwd.stats()["forwarded"] < 1:
            assert time.monotonic() < deadline, fwd.stats()
            await asyncio.sleep(0.01)
        # Idle: the forwarder's task waits on the channel's readiness fd, not a timer.
        t0 = time.process_time()
        await asyncio.sleep(0.3)
        assert time.process_time() - t0 < 0.1
        assert not task.done()
        ch.close()
        await asyncio.wait_for(task, 10)  # closed and drained: run() returns

    asyncio.run(scenario())
    assert fwd.stats()["forwarded"] == 1 and fwd.stats()["spans"] == 1


def test_publish_refused_without_a_stream_is_an_error_not_a_loss(server, shm_name):
    ch = ringmpsc.Channel(16, capacity=64, name=shm_name(), max_consumers=2)
    sink = bridge.JetStreamSink(server.url, "nowhere.in")  # no stream stores it, none named to create

    async def scenario():
        with pytest.raises(bridge.BridgeError, match="no stream stores subject nowhere.in"):
            await sink.publish([("x-0-0", b"a")], 2)
        await sink.close()

    asyncio.run(scenario())
    # An acknowledgement is not an error for naming a stream "error" (its JSON holds the word).
    named = bridge.JetStreamSink(server.url, "err.in", "error")

    async def stored():
        assert await named.publish([("x-0-1", b"a")], 5) == 0
        assert await named.publish([("x-0-1", b"a")], 5) == 1  # a duplicate, recognised
        await named.close()

    asyncio.run(stored())
    fwd = bridge.Forwarder(ch, sink, group="nats", first_backoff=0.01, max_backoff=0.05)
    own_group(ch)
    ch.producer().send(b"kept")

    async def retried():
        task = asyncio.ensure_future(fwd.run())
        deadline = time.monotonic() + 10
        while fwd.stats()["retries"] < 3:
            assert time.monotonic() < deadline, fwd.stats()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(retried())
    assert "no stream stores" in fwd.stats()["last_error"]
    assert len(ch.consumer("nats")) == 1  # still there, for the next forwarder


@pytest.mark.timeout(60)
def test_ingest_kill_mid_stream_acks_only_committed_and_delivers_all(server, shm_name, children, tmp_path):
    total = 3000
    name = shm_name()
    ch = ringmpsc.Channel(16, capacity=8192, max_producers=4, name=name)

    async def publish(js):
        await js.add_stream(name="IN", subjects=["in.x"])
        futs = [await js.publish_async("in.x", b"%d" % i) for i in range(total)]
        await asyncio.gather(*futs)

    js_call(server.url, publish, 30)
    args = ("ingest", name, "--server", server.url, "--subject", "in.x", "--durable", "ring", "--batch", "16",
            "--ack-wait", "1")
    ing = Child(tmp_path, *args)
    children.append(ing)
    got = []

    def drain():
        while True:
            try:
                data = ch.recv_many(timeout=0)
            except ringmpsc.Empty:
                return
            got.extend(int(data[o:o + 16].rstrip(b"\0")) for o in range(0, len(data), 16))

    def consumer_info():
        async def info(js):
            return await js.consumer_info("IN", "ring")

        try:
            return js_call(server.url, info)
        except Exception:
            return None

    mark = random.randrange(total // 10, total // 2)
    wait_until("%d messages committed" % mark, lambda: ch.stats()["committed"] >= mark, 30)
    ing.kill()  # SIGKILL mid-stream
    drain()
    info = consumer_info()
    floor = info.ack_floor.stream_seq
    assert 0 < floor < total, info
    # Messages 1..floor were acknowledged: each had been committed to the channel before.
    missing = set(range(floor)) - set(got)
    assert not missing, "acknowledged but not committed: %s" % sorted(missing)[:10]
    assert info.num_ack_pending <= 16, info  # at most one fetch (--batch 16) in hand

    ing = Child(tmp_path, *args)
    children.append(ing)

    def all_in():
        drain()
        return set(got) >= set(range(total))

    wait_until("every message in the channel", all_in, 40)
    wait_until("every message acknowledged",
               lambda: (lambda i: i is not None and i.ack_floor.stream_seq == total and i.num_ack_pending == 0)(
                   consumer_info()), 20)
    # Delivered twice only if not acknowledged: nothing at or below the kill's ack floor.
    twice = sorted(i for i in set(got) if got.count(i) > 1)
    assert not [i for i in twice if i < floor], "acknowledged, then delivered again: %s" % twice[:10]
    ing.proc.send_signal(signal.SIGTERM)
    assert ing.proc.wait(15) == 0, ing.text()[-3000:]
    assert "acked=" in ing.text()


def test_ingest_rejects_what_cannot_fit_visibly(server, shm_name):
    ch = ringmpsc.Channel(8, capacity=64, name=shm_name())

    async def scenario():
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="BIG", subjects=["big.x"])
        await js.publish("big.x", b"small")
        await js.publish("big.x", b"far too large for 8 bytes")
        await js.publish("big.x", b"last")
        await nc.close()
        ing = bridge.Ingester(ch, bridge.JetStreamSource(server.url, "big.x", durable="d", ack_wait=1), batch=4,
                              fetch_wait=0.5)
        task = asyncio.ensure_future(ing.run())
        deadline = time.monotonic() + 10
        while ing.stats()["acked"] < 2:
            assert time.monotonic() < deadline, ing.stats()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ing.stats()

    s = asyncio.run(scenario())
    assert s["rejected"] == 1 and s["committed"] == 2, s
    assert ch.recv(timeout=1).rstrip(b"\0") == b"small"
    assert ch.recv(timeout=1).rstrip(b"\0") == b"last"


@pytest.mark.timeout(60)
def test_ingest_waits_for_room_and_keeps_messages_alive(server, shm_name):
    """A full channel holds the ingester back (counted); the message it holds is touched at the
    source, so it is not delivered again meanwhile; a channel with a slab pool takes messages
    longer than a record."""
    ch = ringmpsc.Channel(16, capacity=4, slab_size=256, slabs=8, name=shm_name())
    sizes = [10, 100, 300, 16, 200, 5, 250, 40]  # 300: two slabs

    async def scenario():
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="ROOM", subjects=["room.x"])
        for i, n in enumerate(sizes):
            await js.publish("room.x", bytes([65 + i]) * n)
        await nc.close()
        src = bridge.JetStreamSource(server.url, "room.x", durable="d", ack_wait=1)
        ing = bridge.Ingester(ch, src, batch=8, fetch_wait=0.5)
        assert ing.touch_every == pytest.approx(1 / 3)
        task = asyncio.ensure_future(ing.run())
        deadline = time.monotonic() + 20
        while ing.stats()["full_waits"] < 4:  # held back for 4/3 s: longer than ack_wait
            assert time.monotonic() < deadline, ing.stats()
            await asyncio.sleep(0.01)
        assert ing.stats()["committed"] == 4, ing.stats()  # the ring's capacity
        got = []
        while len(got) < len(sizes):
            assert time.monotonic() < deadline, (ing.stats(), [len(m) for m in got])
            try:
                got += ch.recv_messages(timeout=0)
            except ringmpsc.Empty:
                await asyncio.sleep(0.01)
        while ing.stats()["acked"] < len(sizes):
            assert time.monotonic() < deadline, ing.stats()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ing.stats(), got

    s, got = asyncio.run(scenario())
    assert [bytes(m) for m in got] == [bytes([65 + i]) * n for i, n in enumerate(sizes)]
    assert s["redelivered"] == 0 and s["rejected"] == 0, s


@pytest.mark.timeout(60)
def test_publish_to_a_partitioned_server_times_out_and_closes(server):
    """A server that reads nothing any more (a partition, a stopped server) while a batch larger than
    the socket buffers goes out: the publish fails within its timeout (1 s), and close() returns (in
    connect_timeout, 2 s: then the socket is dropped)."""
    relay = Relay(server.port)
    sink = bridge.JetStreamSink(relay.url, "pt.in", "PT")
    seen = {}

    async def scenario():
        await sink.publish([("pt-0-0", b"first")], 5)  # connected, the stream made
        relay.cut()
        big = [("pt-0-%d" % i, bytes(8192)) for i in range(1, 1025)]  # 8 MiB: more than the socket buffers
        t0 = time.monotonic()
        try:
            await sink.publish(big, 1)
        except bridge.BridgeError as e:
            seen["error"] = str(e)
        seen["publish"] = time.monotonic() - t0
        await sink.close()
        seen["closed"] = time.monotonic() - t0

    t = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    t.start()
    t.join(15)
    relay.close()  # a hung publish sees its connection fail now
    t.join(10)
    assert seen.get("closed", 99) < 8 and "error" in seen, seen


@pytest.mark.timeout(60)
def test_two_groups_forwarding_into_one_stream_both_arrive(server, shm_name):
    """Every group receives every record: two groups forwarding one channel to two subjects of one
    stream store each record twice (their ids differ), not once (JetStream de-duplicates per stream)."""
    ch = ringmpsc.Channel(16, capacity=64, name=shm_name(), max_consumers=4, max_groups=4)
    for g in ("a", "b"):
        ch.consumer(g).close()  # durable: there before the records
    ch.remove_group()
    js_call(server.url, lambda js: js.add_stream(name="FAN", subjects=["fan.>"]))
    p = ch.producer()
    for i in range(10):
        p.send(b"r%d" % i)
    ch.close()
    fwds = [bridge.Forwarder(ch, bridge.JetStreamSink(server.url, "fan." + g), group=g, batch=4) for g in ("a", "b")]

    async def scenario():
        await asyncio.wait_for(asyncio.gather(*(f.run() for f in fwds)), 20)  # closed and drained: they return

    asyncio.run(scenario())
    assert [f.stats()["forwarded"] for f in fwds] == [10, 10]
    assert [f.stats()["duplicates"] for f in fwds] == [0, 0]
    assert stream_count(server.url, "FAN") == 20


@pytest.mark.parametrize("args, said", [
    (("forward", "--subject", "ev.*"), "wildcard"),
    (("forward", "--subject", "ev..x"), "invalid subject"),
    (("forward", "--subject", "ev x"), "invalid subject"),
    (("forward", "--subject", "ev.x", "--stream", "EV.X"), "invalid stream name"),
    (("forward", "--subject", "ev.x", "--server", "http://127.0.0.1:4222"), "invalid server URL"),
    (("forward", "--subject", "ev.x", "--max-backoff", "0"), "max_backoff"),
    (("forward", "--subject", "ev.x", "--ack-timeout", "-1"), "ack_timeout"),
    (("ingest", "--subject", "", "--ack-wait", "5"), "invalid subject"),
    (("ingest", "--subject", "ev.>", "--ack-wait", "0"), "ack_wait"),
    (("ingest", "--subject", "ev.>", "--durable", "a.b"), "invalid durable name"),
])
def test_cli_refuses_what_can_never_work(shm_name, args, said):
    """A configuration that can never work is refused at start (exit 1, a line saying why), not
    retried forever once records come (or busy-looping: a back-off of 0)."""
    name = shm_name()
    ringmpsc.Channel(16, capacity=8, name=name).producer().send(b"to forward")
    cmd, rest = args[0], args[1:]
    if "--server" not in rest:
        rest += ("--server", "nats://127.0.0.1:%d" % _free_port())  # nobody there
    try:
        out = subprocess.run([sys.executable, "-m", "ringmpsc", cmd, name, *rest], capture_output=True, text=True,
                             timeout=10)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("still running after 10 s: %s" % e.stderr) from None
    assert out.returncode == 1 and said in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_forwarder_refuses_a_channel_with_a_slab_pool(shm_name):
    """A message's record names its slabs: forwarding it would store slab numbers instead of the
    message, and leave the slabs taken (the producers block once the pool is dry)."""
    ch = ringmpsc.Channel(16, capacity=16, slab_size=64, slabs=16, name=shm_name())
    ch.producer().send_message(b"m" * 100)
    with pytest.raises(ValueError, match="slab pool"):
        bridge.Forwarder(ch, bridge.JetStreamSink("nats://127.0.0.1:4222", "x.y"))


@pytest.mark.timeout(60)
def test_ingest_into_full_slab_pool_stops_promptly(server, shm_name):
    """Waiting for a free slab happens in a thread (nothing to await on): a cancelled ingester must
    not sit out that thread's whole wait (touch_every, 10 s by default) before it stops."""
    ch = ringmpsc.Channel(16, capacity=8, slab_size=64, slabs=2, name=shm_name())  # one 100-byte message fills it

    async def scenario():
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="SL", subjects=["sl.x"])
        for i in range(3):
            await js.publish("sl.x", b"%d" % i * 100)
        await nc.close()
        ing = bridge.Ingester(ch, bridge.JetStreamSource(server.url, "sl.x", durable="d", ack_wait=30), batch=4)
        task = asyncio.ensure_future(ing.run())
        deadline = time.monotonic() + 10
        while ing.stats()["committed"] < 1:
            assert time.monotonic() < deadline, ing.stats()
            await asyncio.sleep(0.01)
        while not observe.some_thread_asleep_in_channel(ch):  # the second message waits for a slab now
            assert time.monotonic() < deadline, ing.stats()
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0, ing.stats()

    took, s = asyncio.run(scenario())
    assert took < 2 and s["committed"] == 1, (took, s)


def test_cli_help_lists_the_bridge():
    out = subprocess.run([sys.executable, "-m", "ringmpsc", "--help"], capture_output=True, text=True, timeout=30)
    assert "forward" in out.stdout and "ingest" in out.stdout
    out = subprocess.run([sys.executable, "-m", "ringmpsc", "forward", "--help"], capture_output=True, text=True,
                         timeout=30)
    assert "--subject" in out.stdout and "--group" in out.stdout and "--batch" in out.stdout


def test_an_engine_must_implement_the_interface():
    # Another engine subclasses Sink / Source; one that misses a required call is refused at once.
    class HalfSink(bridge.Sink):
        pass

    class HalfSource(bridge.Source):
        async def fetch(self, max_messages, timeout):
            return []

    with pytest.raises(TypeError, match="publish"):
        HalfSink()
    with pytest.raises(TypeError, match="ack"):
        HalfSource()
