#!/usr/bin/env python3
"""The JetStream bridge (ringmpsc.bridge) vs publishing with nats-py directly.

    build/venv/bin/python benchmarks/python/bridge.py [--quick] [--json FILE]

Starts its own nats-server (-js, a store in a temporary directory, 127.0.0.1 on a
free port); every row publishes 64-byte records to one subject of one file-stored
stream, in the same run.

  scenario producer-cost  --producers processes (default 2) each hand --records
                          records to JetStream; the figure is each producer's CPU
                          time (user + system) per record, summed over producers:
      channel send            p.send(record) into a Channel (capacity holds every
                              record, so no send waits) while a Forwarder in this
                              process publishes them (not counted: it is not the
                              producers' cost; the row waits until the stream has them)
      nats-py publish_async   each producer connects and awaits js.publish_async for
                              every record (the future of each kept), then
                              publish_async_completed(): nats-py's pipelined publish
      nats-py publish         each producer awaits js.publish (one ack round trip per
                              record; --records / 10 records)
                          "× channel" = that row's cost / the channel's (goal >= 10×).

  scenario forward-rate   records/s into the stream from one process (the server
                          is the only other process):
      forwarder               Forwarder(batch --batch) over a channel filled
                              beforehand by 2 producers (--records each): from its
                              start until every record is acknowledged
      nats-py publish_async   one process publishes as many records with
                              js.publish_async, then publish_async_completed()
      nats-py publish_async, Nats-Msg-Id  the same with the header the bridge sends
      nats-py publish         js.publish per record (--records / 10)
                          "× best nats-py" = forwarder ÷ the best nats-py row (goal >= 0.8×).

Each figure is the median of --runs runs (rows taken in rounds: every row once per
round). --quick: 3 runs of 10,000 records per producer; default 5 runs of 20,000.
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import nats

import ringmpsc
from ringmpsc import bridge

RECORD = 64
SUBJECT = "bench.in"
STREAM = "BENCH"
FORK = multiprocessing.get_context("fork")


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ringmpsc-bench-nats-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = "nats://127.0.0.1:%d" % self.port
        exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen([exe, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd",
                                      os.path.join(self.dir, "store")], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            with open(self.log.name, "rb") as f:
                if b"Server is ready" in f.read():
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("nats-server did not start (log in %s)" % self.log.name)
            time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


async def _js(url):
    nc = await nats.connect(url)
    return nc, nc.jetstream()


def _records(tag, n):
    return [(b"%s %d " % (tag, i)).ljust(RECORD, b".") for i in range(n)]


def _cpu():
    return time.process_time()  # user + system, every thread, ns resolution (os.times ticks at 10 ms)


def _channel_producer(ch, tag, n, barrier, out):
    recs = _records(tag, n)
    with ch.producer() as p:
        barrier.wait(30)
        t0 = _cpu()
        for r in recs:
            p.send(r)
        out.put(("cost", _cpu() - t0))


def _direct_producer(url, tag, n, mode, barrier, out):
    async def run():
        nc, js = await _js(url)
        recs = _records(tag, n)
        barrier.wait(30)
        t0 = _cpu()
        if mode == "publish_async":
            for r in recs:
                await js.publish_async(SUBJECT, r)
            await js.publish_async_completed()
        else:
            for r in recs:
                await js.publish(SUBJECT, r)
        cost = _cpu() - t0
        await nc.close()
        return cost

    out.put(("cost", asyncio.run(run())))


def _start(target, args, n_procs):
    barrier, out = FORK.Barrier(n_procs + 1), FORK.Queue()
    procs = [FORK.Process(target=target, args=args(i) + (barrier, out)) for i in range(n_procs)]
    for p in procs:
        p.start()
    return procs, barrier, out


def _collect(procs, out, timeout=120):
    costs = [out.get(timeout=timeout)[1] for _ in procs]
    for p in procs:
        p.join(30)
        if p.exitcode != 0:
            raise SystemExit("a producer failed (exit %s)" % p.exitcode)
    return costs


def _stream_count(js):
    async def count():
        return (await js.stream_info(STREAM)).state.messages
    return count()


def producer_cost_channel(url, n_producers, n):
    cap = 1 << (n - 1).bit_length()
    ch = ringmpsc.Channel(RECORD, capacity=cap, max_producers=n_producers + 1)
    procs, barrier, out = _start(_channel_producer, lambda i: (ch, b"c%d" % i, n), n_producers)

    async def forward():
        fwd = bridge.Forwarder(ch, bridge.JetStreamSink(url, SUBJECT, STREAM), batch=1024)
        task = asyncio.ensure_future(fwd.run())
        await asyncio.sleep(0)
        barrier.wait(30)
        costs = await asyncio.get_running_loop().run_in_executor(None, _collect, procs, out)
        deadline = time.monotonic() + 120
        while fwd.stats()["forwarded"] < n_producers * n:
            if time.monotonic() > deadline or task.done():
                raise SystemExit("forwarder stalled: %s" % fwd.stats())
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return costs

    costs = asyncio.run(forward())
    return sum(costs) / (n_producers * n)


def producer_cost_direct(url, n_producers, n, mode):
    procs, barrier, out = _start(_direct_producer, lambda i: (url, b"d%d" % i, n, mode), n_producers)
    barrier.wait(30)
    return sum(_collect(procs, out)) / (n_producers * n)


def forward_rate(url, n, batch):
    ch = ringmpsc.Channel(RECORD, capacity=1 << (n - 1).bit_length(), max_producers=4)
    fill = [FORK.Process(target=lambda i=i: ch.producer().send_many(b"".join(_records(b"f%d" % i, n))))
            for i in range(2)]
    for p in fill:
        p.start()
    for p in fill:
        p.join(60)
    assert len(ch) == 2 * n, len(ch)

    async def run():
        fwd = bridge.Forwarder(ch, bridge.JetStreamSink(url, SUBJECT, STREAM), batch=batch)
        t0 = time.perf_counter()
        task = asyncio.ensure_future(fwd.run())
        while fwd.stats()["forwarded"] < 2 * n:
            if task.done():
                task.result()
                raise SystemExit("forwarder ended early")
            await asyncio.sleep(0.001)
        dt = time.perf_counter() - t0
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return 2 * n / dt

    return asyncio.run(run())


def direct_rate(url, n, mode):
    async def run():
        nc, js = await _js(url)
        recs = _records(b"r", n)
        ids = ["bench-%d-%d" % (time.monotonic_ns(), i) for i in range(n)]
        t0 = time.perf_counter()
        if mode == "publish":
            for r in recs:
                await js.publish(SUBJECT, r)
        elif mode == "publish_async":
            for r in recs:
                await js.publish_async(SUBJECT, r)
            await js.publish_async_completed()
        else:
            for r, i in zip(recs, ids):
                await js.publish_async(SUBJECT, r, headers={bridge.MSG_ID: i})
            await js.publish_async_completed()
        dt = time.perf_counter() - t0
        await nc.close()
        return n / dt

    return asyncio.run(run())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--records", type=int, help="records per producer (and per fill producer)")
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--json", help="append one JSON object per row to this file")
    a = ap.parse_args()
    runs = a.runs or (3 if a.quick else 5)
    n = a.records or (10000 if a.quick else 20000)
    server = Server()
    try:
        async def setup():
            nc, js = await _js(server.url)
            await js.add_stream(name=STREAM, subjects=[SUBJECT])
            await nc.close()

        asyncio.run(setup())
        cost = {k: [] for k in ("channel send", "nats-py publish_async", "nats-py publish")}
        rate = {k: [] for k in ("forwarder", "nats-py publish_async", "nats-py publish_async, Nats-Msg-Id",
                                "nats-py publish")}
        for r in range(runs):
            cost["channel send"].append(producer_cost_channel(server.url, a.producers, n))
            cost["nats-py publish_async"].append(producer_cost_direct(server.url, a.producers, n, "publish_async"))
            cost["nats-py publish"].append(producer_cost_direct(server.url, a.producers, n // 10, "publish"))
            rate["forwarder"].append(forward_rate(server.url, n, a.batch))
            rate["nats-py publish_async"].append(direct_rate(server.url, 2 * n, "publish_async"))
            rate["nats-py publish_async, Nats-Msg-Id"].append(direct_rate(server.url, 2 * n, "msgid"))
            rate["nats-py publish"].append(direct_rate(server.url, n // 5, "publish"))
            print("round %d/%d done" % (r + 1, runs), file=sys.stderr)
    finally:
        server.stop()

    rows = []
    base = statistics.median(cost["channel send"])
    print("scenario producer-cost: %d producer processes x %d records of %d bytes (CPU time per record, median of "
          "%d)" % (a.producers, n, RECORD, runs))
    for k, v in cost.items():
        m = statistics.median(v)
        print("  %-40s %9.2f us/record  %7.1fx channel" % (k, m * 1e6, m / base))
        rows.append(dict(scenario="producer-cost", row=k, us_per_record=m * 1e6, x_channel=m / base))
    best = max(statistics.median(v) for k, v in rate.items() if k != "forwarder")
    print("scenario forward-rate: %d records of %d bytes from one process (records/s, median of %d)"
          % (2 * n, RECORD, runs))
    for k, v in rate.items():
        m = statistics.median(v)
        print("  %-40s %9.0f records/s  %7.2fx best nats-py" % (k, m, m / best))
        rows.append(dict(scenario="forward-rate", row=k, records_per_s=m, x_best_nats_py=m / best))
    if a.json:
        with open(a.json, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
