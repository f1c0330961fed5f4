#!/usr/bin/env python3
"""asyncio consumers vs blocking consumers, the same channel and records (suite "python").

    build/venv/bin/python benchmarks/python/aio.py [--quick] [--json FILE]

What is measured (every row in the same run; ratios compare rows of this run):

  scenario asyncio           2 producer processes send 64-byte records as fast as they
                             can into one Channel (the channel passed to them, fork);
                             the consumer is this process:
      recv_many (blocking)       ch.recv_many(None, None) in a plain loop (blocks with
                                 the GIL released)
      recv_many_async (asyncio)  await ch.recv_many_async() in asyncio's default loop
      recv_many_async (uvloop)   the same in uvloop's loop (information; when installed)
      recv / recv_async          one record per call, each way
                             Producers: send_many of --batch records (default 64) or
                             send per record; the recv_many rows run with both, the
                             per-record rows with send per record.
  scenario asyncio-pingpong  a client in this process sends one record and waits for
                             its echo: await p.send_async(rec), then await
                             reply.recv_async() (asyncio, uvloop), or p.send(rec) then
                             reply.recv() (blocking); an echo process answers with
                             blocking recv/send. Once with the coalescing defaults on
                             both sides, once with ch.set_coalesce(1, 0) on both sides
                             (a linger can hold a reply slower than the poll). The
                             client and the echo each get a CPU of their own (--no-pin:
                             not; then the scheduler may put both on one CPU, where a
                             client that sleeps waits out the echo's poll).
  scenario asyncio-costs     the cost of one call in this process, records already
                             there (or space): recv vs recv_async, recv_many(64) vs
                             recv_many_async(64), send vs send_async, and the pieces of
                             one wait of ringmpsc._aio once a receive found nothing (the
                             receive raising Empty, ready_arm + ready_disarm, os.fstat
                             and os.dup + os.close of the ready fd, add_reader +
                             remove_reader).

Records: the first 8 bytes hold a little-endian u64 (producer << 32 | sequence in
its cycle of --cycle records), then filler (as in peers.py). The consumer counts
every record it receives and checks each: its producer's next sequence number and
its bytes (a batch is compared as whole runs of one producer's records against
what that producer sends, record by record where producers interleave); a lost,
duplicated, reordered or corrupted record fails the run. The ping-pong client
checks that every echo is the record it sent.

Timing: each run is a fresh channel; every process builds its records first, then
all meet at a barrier; the time runs from the barrier to the consumer's last
record (asyncio rows: the loop is made before the barrier, the consumer coroutine
runs in it). A short warm-up run sizes each row (about --seconds per run); rates
are the median of --runs runs, taken in rounds (every row once per round, so a
change in the load of this shared machine falls on all of them alike). "×
blocking" is the median of the rounds' ratios (each asyncio run ÷ the blocking run
of the same round and producers). The throughput rows also give the consumer's CPU
time per record, the wake-ups the producers sent it per record and the records per
recv_many. Ping-pong: per round every row runs for --seconds after 200 unmeasured
round trips; p50/p99/mean over every round trip of every run, and the wake-ups
sent to each side per round trip. The throughput scenario is not pinned: 3
processes on 2 CPUs share them (rows say oversubscribed). --quick: 3 runs of
~0.1 s (about 8 s on 2 cores); default: 5 runs of ~0.25 s (about 20 s).

--json FILE writes one JSON object per row and line (the fields of peers.py, plus
consumer = blocking | asyncio | uvloop, consumer_call, producer_call,
consumer_cpu_ns_per_record, consumer_wakes_per_record, records_per_call,
vs_blocking and runs_vs_blocking (asyncio and uvloop rows); ping-pong rows: mean_ns,
coalescing = defaults | off, round_trips, runs_p50_ns, client_wakes_per_round_trip,
echo_wakes_per_round_trip, pinned, vs_blocking_p50; cost rows: ns_per_call,
runs_ns_per_call, calls_per_run, vs_blocking_cost).
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import time

import ringmpsc
from peers import RS, U64, Hang, cpu_ticks, fmt_rate, make_records  # this directory

try:
    import uvloop
except ImportError:  # pragma: no cover - scripts/ensure-deps.sh python installs it
    uvloop = None

PRODUCERS = 2
CAPACITY = 4096  # records per producer ring
MASK = 0xFFFFFFFF
PINGPONG_WARMUP = 200  # round trips before the measured ones

# Rough records/s, only to size the warm-up run: (consumer call, producer batched)
PRIOR = {("recv_many", True): 5e6, ("recv_many", False): 1e6, ("recv", False): 1e6}


def loop_of(consumer):
    if consumer == "uvloop":
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# --- records and the consumer's check ------------------------------------------------------

class Check:
    """What the consumer received: the next sequence number of every producer, and the
    bytes every producer sends, to compare with."""

    def __init__(self, cycle):
        self.cycle = cycle
        self.recs = [make_records(pid, cycle) for pid in range(PRODUCERS)]
        self.blobs = [b"".join(r) for r in self.recs]
        self.next = [0] * PRODUCERS
        self.got = 0
        self.calls = 0  # recv_many batches

    def fail(self, what, v):
        raise RuntimeError("record %d: %s (field %#x; next expected %s)" % (self.got, what, v, self.next))

    def batch(self, b):
        """Check and count a recv_many batch: runs of one producer's records are compared
        whole with what it sends (no copies); where producers interleave, a run ends and
        the next begins."""
        n = len(b) // RS
        if n * RS != len(b) or n == 0:
            raise RuntimeError("a batch of %d bytes" % len(b))
        nxt, cycle, blobs = self.next, self.cycle, self.blobs
        up = U64.unpack_from
        mv = memoryview(b)
        i = 0
        while i < n:
            v = up(b, i * RS)[0]
            pid, s = v >> 32, v & MASK
            if pid >= PRODUCERS or s != nxt[pid]:
                self.got += i
                self.fail("out of sequence", v)
            k = min(n - i, cycle - s)
            blob = blobs[pid]
            if not blob.startswith(mv[i * RS:(i + k) * RS], s * RS):
                # another producer's records inside: find where this run ends
                lo, hi = 1, k  # records i .. i+lo match, i .. i+hi do not
                if not blob.startswith(mv[i * RS:(i + 1) * RS], s * RS):
                    self.got += i
                    self.fail("corrupted", v)
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if blob.startswith(mv[i * RS:(i + mid) * RS], s * RS):
                        lo = mid
                    else:
                        hi = mid
                k = lo
            s += k
            nxt[pid] = s if s < cycle else 0
            i += k
        self.got += n
        self.calls += 1


# --- producers ---------------------------------------------------------------------------

def producer(ch, pid, cycle, reps, batch, barrier):
    recs = make_records(pid, cycle)
    blob = b"".join(recs)
    chunks = [blob[i:i + batch * RS] for i in range(0, len(blob), batch * RS)]
    p = ch.producer()
    barrier.wait()
    if batch > 1:
        send_many = p.send_many
        for _ in range(reps):
            for c in chunks:
                send_many(c)
    else:
        send = p.send
        for _ in range(reps):
            for r in recs:
                send(r)
    p.close()


# --- consumers: each receives `total` records, checking every one --------------------------

def consume_many(ch, chk, total):
    recv_many, check = ch.recv_many, chk.batch
    while chk.got < total:
        check(recv_many(None, None))


async def consume_many_async(ch, chk, total):
    recv_many, check = ch.recv_many_async, chk.batch
    while chk.got < total:
        check(await recv_many())


# The per-record loops are written out (no call per record to a check): the same body
# both ways, as light as a full check allows.
def consume_each(ch, chk, total):
    recv, up, nxt, recs, cycle = ch.recv, U64.unpack_from, chk.next, chk.recs, chk.cycle
    for got in range(total):
        r = recv()
        v = up(r)[0]
        pid, s = v >> 32, v & MASK
        if pid >= PRODUCERS or s != nxt[pid] or r != recs[pid][s]:
            chk.got = got
            chk.fail("out of sequence or corrupted", v)
        s += 1
        nxt[pid] = s if s < cycle else 0
    chk.got = total


async def consume_each_async(ch, chk, total):
    recv, up, nxt, recs, cycle = ch.recv_async, U64.unpack_from, chk.next, chk.recs, chk.cycle
    for got in range(total):
        r = await recv()
        v = up(r)[0]
        pid, s = v >> 32, v & MASK
        if pid >= PRODUCERS or s != nxt[pid] or r != recs[pid][s]:
            chk.got = got
            chk.fail("out of sequence or corrupted", v)
        s += 1
        nxt[pid] = s if s < cycle else 0
    chk.got = total


# --- one throughput run ------------------------------------------------------------------

def run_once(consumer, call, batch, cycle, reps):
    """One run: (records/s from the barrier to the consumer's last record, the share of
    the machine's CPU other processes used meanwhile or None, what the consumer did:
    {cpu_ns, wakes, calls})."""
    ctx = mp.get_context("fork")
    ch = ringmpsc.Channel(RS, capacity=CAPACITY, max_producers=PRODUCERS)
    total = PRODUCERS * cycle * reps
    chk = Check(cycle)
    barrier = ctx.Barrier(PRODUCERS + 1)
    procs = [ctx.Process(target=producer, args=(ch, i, cycle, reps, batch, barrier)) for i in range(PRODUCERS)]
    loop = None
    try:
        for p in procs:
            p.start()
        # this process becomes the consumer, and its readiness fd exists, before the clock starts
        try:
            ch.recv_nowait()
            raise RuntimeError("a record before the start")
        except ringmpsc.Empty:
            pass
        ch.ready_fd()
        if consumer != "blocking":
            loop = loop_of(consumer)
        signal.alarm(60)
        pids = [os.getpid()] + [p.pid for p in procs]
        c0 = cpu_ticks(pids)  # the producers wait at the barrier meanwhile
        barrier.wait()
        t0 = time.perf_counter()
        u0 = time.thread_time_ns()
        if consumer == "blocking":
            (consume_many if call == "recv_many" else consume_each)(ch, chk, total)
        else:
            loop.run_until_complete((consume_many_async if call == "recv_many" else consume_each_async)(
                ch, chk, total))
        t1 = time.perf_counter()
        u1 = time.thread_time_ns()
        c1 = cpu_ticks(pids)
        wakes = ch.stats()["consumer_wakes"]
        signal.alarm(0)
        for p in procs:
            p.join(30)
        bad = [p.exitcode for p in procs if p.exitcode != 0]
        if bad:
            raise RuntimeError("producer exit codes %s" % bad)
        if chk.got != total or chk.next != [0] * PRODUCERS or len(ch) != 0:
            raise RuntimeError("received %d records of %d (next %s, %d left): records lost or duplicated"
                               % (chk.got, total, chk.next, len(ch)))
        others = None
        if c0 and c1:
            others = max(0.0, ((c1[0] - c0[0]) - (c1[1] - c0[1])) / os.sysconf("SC_CLK_TCK")
                         / ((t1 - t0) * (os.cpu_count() or 1)))
        return total / (t1 - t0), others, {"cpu_ns": u1 - u0, "wakes": wakes, "calls": chk.calls or total,
                                           "records": total}
    finally:
        signal.alarm(0)
        if loop is not None:
            loop.close()
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)


# --- ping-pong -----------------------------------------------------------------------------

def echo(req, rep, coalesce_off, cpu, barrier):
    """The echo process: blocking recv of a request, send it back, until closed."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if coalesce_off:
        req.set_coalesce(1, 0)
    try:
        req.recv_nowait()
    except ringmpsc.Empty:
        pass
    p = rep.producer()
    barrier.wait()
    recv, send = req.recv, p.send
    try:
        while True:
            send(recv())
    except ringmpsc.Closed:
        pass
    p.close()


def client_blocking(p, rep, recs, warmup, seconds):
    """Round trips: warmup unmeasured ones, then ~seconds of measured ones (ns each)."""
    send, recv, pc = p.send, rep.recv, time.perf_counter_ns
    for i in range(warmup):
        send(recs[i % len(recs)])
        recv()
    lat = []
    end = pc() + int(seconds * 1e9)
    i = t1 = 0
    while t1 < end:
        rec = recs[i % len(recs)]
        t = pc()
        send(rec)
        r = recv()
        t1 = pc()
        if r != rec:
            raise RuntimeError("round trip %d: the echo is not the record sent" % i)
        lat.append(t1 - t)
        i += 1
    return lat


async def client_async(p, rep, recs, warmup, seconds):
    """client_blocking's loop, awaiting send_async and recv_async."""
    send, recv, pc = p.send_async, rep.recv_async, time.perf_counter_ns
    for i in range(warmup):
        await send(recs[i % len(recs)])
        await recv()
    lat = []
    end = pc() + int(seconds * 1e9)
    i = t1 = 0
    while t1 < end:
        rec = recs[i % len(recs)]
        t = pc()
        await send(rec)
        r = await recv()
        t1 = pc()
        if r != rec:
            raise RuntimeError("round trip %d: the echo is not the record sent" % i)
        lat.append(t1 - t)
        i += 1
    return lat


def pingpong_once(consumer, coalesce_off, seconds, cpus):
    """One run: (the round trips of ~seconds after PINGPONG_WARMUP, in ns; wake-ups the
    client was sent, and the echo process, per round trip, warm-up included). cpus: None,
    or (the client's CPU, the echo's)."""
    ctx = mp.get_context("fork")
    req = ringmpsc.Channel(RS, capacity=64, max_producers=1)
    rep = ringmpsc.Channel(RS, capacity=64, max_producers=1)
    barrier = ctx.Barrier(2)
    proc = ctx.Process(target=echo, args=(req, rep, coalesce_off, cpus and cpus[1], barrier))
    recs = make_records(0, 64)
    loop = None
    mask = os.sched_getaffinity(0)
    try:
        proc.start()
        if cpus:
            os.sched_setaffinity(0, {cpus[0]})
        if coalesce_off:
            rep.set_coalesce(1, 0)
        try:
            rep.recv_nowait()
        except ringmpsc.Empty:
            pass
        rep.ready_fd()
        p = req.producer()
        if consumer != "blocking":
            loop = loop_of(consumer)
        signal.alarm(60)
        barrier.wait()
        if consumer == "blocking":
            lat = client_blocking(p, rep, recs, PINGPONG_WARMUP, seconds)
        else:
            lat = loop.run_until_complete(client_async(p, rep, recs, PINGPONG_WARMUP, seconds))
        n = len(lat) + PINGPONG_WARMUP
        wakes = (rep.stats()["consumer_wakes"] / n, req.stats()["consumer_wakes"] / n)
        p.close()
        req.close()
        proc.join(30)
        signal.alarm(0)
        if proc.exitcode != 0:
            raise RuntimeError("echo process exit code %s" % proc.exitcode)
        return lat, wakes
    finally:
        os.sched_setaffinity(0, mask)
        signal.alarm(0)
        if loop is not None:
            loop.close()
        if proc.is_alive():
            proc.kill()
            proc.join(5)


# --- the cost of one call, in this process ----------------------------------------------------

COST_CALLS = 8192  # calls per measurement (the ring holds them all)
COST_REPEATS = 5  # measurements per cost; the least is kept (the one others disturbed least)


def cost_plan(consumers):
    """(what, the path it is part of): the blocking call next to its coroutine, then the
    pieces of one wait round of ringmpsc._aio (a receive that finds nothing, ready_arm,
    os.fstat and os.dup + os.close of the ready fd, add_reader + remove_reader)."""
    plan = [("recv", "blocking"), ("recv_async", "asyncio"), ("recv_many(64)", "blocking"),
            ("recv_many_async(64)", "asyncio"), ("send", "blocking"), ("send_async", "asyncio"),
            ("recv(timeout=0), Empty", "asyncio"), ("ready_arm + ready_disarm, coalescing defaults", "asyncio"),
            ("ready_arm + ready_disarm, coalescing off", "asyncio"), ("os.fstat(ready_fd)", "asyncio"),
            ("os.dup(ready_fd) + os.close", "asyncio")]
    plan += [("add_reader + remove_reader", c) for c in consumers if c != "blocking"]
    return plan


def cost_once(what, consumer, recs):
    """ns per call of `what`, COST_CALLS calls (and the ring set up for them beforehand)."""
    n = COST_CALLS
    ch = ringmpsc.Channel(RS, capacity=n, max_producers=1)
    p = ch.producer()
    try:
        ch.recv_nowait()
    except ringmpsc.Empty:
        pass
    fd = ch.ready_fd()
    calls = n
    if what.startswith("recv") and "Empty" not in what:
        for i in range(n):
            p.send(recs[i % len(recs)])
    if what.startswith("recv_many"):
        calls = n // 64
    if what.endswith("coalescing off"):
        ch.set_coalesce(1, 0)
    rec = recs[0]
    loop = asyncio.new_event_loop() if consumer == "asyncio" else uvloop.new_event_loop() if consumer == "uvloop" \
        else None
    pc = time.perf_counter_ns

    async def awaited(fn, *a):
        t = pc()
        for _ in range(calls):
            await fn(*a)
        return pc() - t

    def called(fn, *a):
        t = pc()
        for _ in range(calls):
            fn(*a)
        return pc() - t

    def empty():
        try:
            ch.recv(0)
        except ringmpsc.Empty:
            pass

    def arm():
        if ch.ready_arm() != 0.0:
            ch.ready_disarm()

    def reader():
        loop.add_reader(fd, int)
        loop.remove_reader(fd)
    try:
        if what == "recv":
            ns = called(ch.recv)
        elif what == "recv_async":
            ns = loop.run_until_complete(awaited(ch.recv_async))
        elif what == "recv_many(64)":
            ns = called(ch.recv_many, 64)
        elif what == "recv_many_async(64)":
            ns = loop.run_until_complete(awaited(ch.recv_many_async, 64))
        elif what == "send":
            ns = called(p.send, rec)
        elif what == "send_async":
            ns = loop.run_until_complete(awaited(p.send_async, rec))
        elif what.startswith("recv(timeout=0)"):
            ns = called(empty)
        elif what.startswith("ready_arm"):
            ns = called(arm)
        elif what.startswith("os.fstat"):
            ns = called(os.fstat, fd)
        elif what.startswith("os.dup"):
            ns = called(lambda: os.close(os.dup(fd)))
        else:
            ns = called(reader)
        return ns / calls, calls
    finally:
        if loop is not None:
            loop.close()


def costs(consumers, base):
    print("asyncio-costs: the cost of one call in this process (records there, or space; min of %d "
          "measurements of %d calls)" % (COST_REPEATS, COST_CALLS))
    recs = make_records(0, 64)
    plan = cost_plan(consumers)
    runs = [[] for _ in plan]
    calls = [0 for _ in plan]
    for _ in range(COST_REPEATS):
        for i, (what, c) in enumerate(plan):
            ns, calls[i] = cost_once(what, c, recs)
            runs[i].append(ns)
    blocking = {}
    results = []
    print("    %-50s %-9s %10s %12s" % ("call", "part of", "ns/call", "÷ blocking"))
    for (what, c), rr, k in zip(plan, runs, calls):
        ns = min(rr)
        twin = what.replace("_async", "")
        vs = None
        if c == "blocking":
            blocking[what] = ns
        elif twin in blocking:
            vs = ns / blocking[twin]
        results.append(dict(base, path=what, scenario="asyncio-costs", batch=64 if "(64)" in what else 1,
                            producers=1, consumers=1, processes=False, records_per_s=None, bytes_per_s=None,
                            p50_ns=None, p99_ns=None, runs=len(rr), consumer=c, ns_per_call=round(ns, 1),
                            runs_ns_per_call=[round(x, 1) for x in rr], calls_per_run=k,
                            vs_blocking_cost=None if vs is None else round(vs, 3)))
        print("    %-50s %-9s %10.0f %12s" % (what, c, ns,
                                              "-" if vs is None else "%.1fx" % vs))
    print("    from \"recv(timeout=0), Empty\" on: the calls one wait of ringmpsc._aio makes around the loop's wait, "
          "once a receive found nothing; a blocking call polls 20 us in C first")
    print(flush=True)
    return results


def pct(sorted_vals, q):
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


# --- the plan and the report -------------------------------------------------------------------

def throughput_rows(consumers, batch):
    """(consumer, consumer call, producer batch): per group, blocking first."""
    return [(c, call, b) for call, b in (("recv_many", batch), ("recv_many", 1), ("recv", 1)) for c in consumers]


def size_row(consumer, call, batch, args):
    """Warm-up run (about a quarter of a run); returns (cycle, reps) for ~args.seconds."""
    cycle = args.cycle
    reps = max(1, int(PRIOR[(call, batch > 1)] * args.seconds / 4 / PRODUCERS / cycle))
    rate = run_once(consumer, call, batch, cycle, reps)[0]
    return cycle, max(1, int(round(rate * args.seconds / PRODUCERS / cycle)))


def f_pct(v):
    return "-" if v is None else "%.0f%%" % (100 * v)


def throughput(args, consumers, base, cpus):
    oversub = PRODUCERS + 1 > cpus
    print("asyncio: %d producer processes -> 1 consumer process (this one)%s" % (
        PRODUCERS, " (oversubscribed: %d processes on %d CPUs)" % (PRODUCERS + 1, cpus) if oversub else ""))
    todo = throughput_rows(consumers, args.batch)
    sizes = [size_row(c, call, b, args) for c, call, b in todo]
    rates = [[] for _ in todo]
    loads = [[] for _ in todo]
    dids = [[] for _ in todo]
    for _ in range(args.runs):  # rounds: a change in the machine's load falls on every row alike
        for i, (c, call, b) in enumerate(todo):
            rate, others, did = run_once(c, call, b, *sizes[i])
            rates[i].append(rate)
            dids[i].append(did)
            if others is not None:
                loads[i].append(others)
    blocking = {(call, b): i for i, (c, call, b) in enumerate(todo) if c == "blocking"}
    print("    %-26s %-10s %5s %12s %8s %5s %7s %7s %10s %8s %9s %8s" % (
        "consumer", "producers", "batch", "records/s", "MB/s", "runs", "spread", "others", "× blocking",
        "CPU ns/rec", "wakes/rec", "rec/call"))
    results = []
    for (c, call, b), rr, ll, dd in zip(todo, rates, loads, dids):
        med = statistics.median(rr)
        load = statistics.median(ll) if ll else None
        pcall = "send_many" if b > 1 else "send"
        path = call if c == "blocking" else call + "_async"
        cpu = statistics.median(d["cpu_ns"] / d["records"] for d in dd)
        wakes = statistics.median(d["wakes"] / d["records"] for d in dd)
        per_call = statistics.median(d["records"] / d["calls"] for d in dd)
        row = dict(base, path=path, scenario="asyncio", batch=b, producers=PRODUCERS, consumers=1,
                   records_per_s=med, bytes_per_s=med * RS, p50_ns=None, p99_ns=None, runs=len(rr),
                   label="%s (%s), producers %s" % (path, c, pcall), consumer=c, consumer_call=call,
                   producer_call=pcall, runs_records_per_s=[round(r, 1) for r in rr],
                   spread=round((max(rr) - min(rr)) / med, 3),
                   other_cpu_load=None if load is None else round(load, 3), oversubscribed=oversub,
                   consumer_cpu_ns_per_record=round(cpu, 2), consumer_wakes_per_record=round(wakes, 5),
                   records_per_call=round(per_call, 1))
        vs = None
        if c != "blocking":
            br = rates[blocking[(call, b)]]
            runs_vs = [a / x for a, x in zip(rr, br)]
            vs = statistics.median(runs_vs)
            row.update(vs_blocking=round(vs, 4), runs_vs_blocking=[round(x, 4) for x in runs_vs],
                       blocking_records_per_s=statistics.median(br))
        results.append(row)
        print("    %-26s %-10s %5d %12s %8.1f %5d %7s %7s %10s %10.1f %9.4f %8.1f" % (
            "%s (%s)" % (path, c), pcall, b, fmt_rate(med), med * RS / 1e6, len(rr), f_pct(row["spread"]),
            f_pct(load), "-" if vs is None else "%.2fx" % vs, cpu, wakes, per_call))
    print()
    for r in results:
        if r["consumer"] != "blocking":
            print("    %-28s ÷ blocking, producers %-9s %6.2fx  (median of the rounds' ratios)%s" % (
                "%s (%s)" % (r["path"], r["consumer"]), r["producer_call"], r["vs_blocking"],
                "  goal >= 0.8x" if r["consumer"] == "asyncio" and r["path"].startswith("recv_many") else "  info"))
    print("    CPU ns/rec: the consumer's CPU time ÷ records; wakes/rec: wake-ups the producers sent it ÷ records;"
          " rec/call: records per recv_many (medians of the runs)")
    print(flush=True)
    return results


def pingpong(args, consumers, base):
    allowed = sorted(os.sched_getaffinity(0))
    cpus = None if args.no_pin or len(allowed) < 2 else (allowed[0], allowed[1])
    print("asyncio-pingpong: client (this process) -> echo process (blocking recv/send) -> client; one "
          "64-byte record there and back; %s" % ("client on CPU %d, echo on CPU %d" % cpus if cpus else "unpinned"))
    todo = [(co, c) for co in (False, True) for c in consumers]
    lats = [[] for _ in todo]
    p50s = [[] for _ in todo]
    rts = [[] for _ in todo]
    wakes = [[] for _ in todo]
    for _ in range(args.runs):
        for i, (co, c) in enumerate(todo):
            lat, w = pingpong_once(c, co, args.seconds, cpus)
            lats[i].extend(lat)
            p50s[i].append(statistics.median(lat))
            rts[i].append(len(lat) * 1e9 / sum(lat))
            wakes[i].append(w)
    print("    %-46s %9s %9s %9s %13s %5s %9s %11s %11s" % (
        "client, coalescing (both sides)", "p50 ns", "p99 ns", "mean ns", "round trips/s", "runs", "p50 ÷ blk",
        "client w/RT", "echo w/RT"))
    results = []
    p50_of = {}
    for (co, c), lat, pp, rt, ww in zip(todo, lats, p50s, rts, wakes):
        lat.sort()
        p50, p99, mean = pct(lat, 0.5), pct(lat, 0.99), statistics.fmean(lat)
        p50_of[(co, c)] = p50
        path = "send/recv" if c == "blocking" else "send_async/recv_async"
        coal = "off" if co else "defaults"
        cw = statistics.median(w[0] for w in ww)
        ew = statistics.median(w[1] for w in ww)
        row = dict(base, path=path, scenario="asyncio-pingpong", batch=1, producers=1, consumers=1,
                   records_per_s=len(lat) * 1e9 / sum(lat), bytes_per_s=len(lat) * 1e9 / sum(lat) * RS,
                   p50_ns=p50, p99_ns=p99, mean_ns=round(mean, 1), runs=len(pp),
                   label="%s (%s), coalescing %s" % (path, c, coal), consumer=c, coalescing=coal,
                   round_trips=len(lat), runs_p50_ns=pp, runs_records_per_s=[round(x, 1) for x in rt],
                   spread=round((max(pp) - min(pp)) / statistics.median(pp), 3),
                   client_wakes_per_round_trip=round(cw, 4), echo_wakes_per_round_trip=round(ew, 4),
                   pinned=cpus is not None)
        if c != "blocking":
            row["vs_blocking_p50"] = round(p50 / p50_of[(co, "blocking")], 4)
        results.append(row)
        print("    %-46s %9.0f %9.0f %9.0f %13s %5d %9s %11.3f %11.3f" % (
            row["label"], p50, p99, mean, fmt_rate(row["records_per_s"]), len(pp),
            "%.2fx" % row["vs_blocking_p50"] if c != "blocking" else "-", cw, ew))
    print("    p50/p99/mean over every round trip of every run; p50 ÷ blk: ÷ the blocking client's p50 with the same "
          "coalescing (information); w/RT: wake-ups sent to the client / to the echo process per round trip")
    print(flush=True)
    return results


def _alarm(signum, frame):
    raise Hang("no progress: a run took too long")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs (about 8 s on 2 cores)")
    ap.add_argument("--json", metavar="FILE", help="write one JSON row per line to FILE")
    ap.add_argument("--batch", type=int, default=64, help="records per send_many of the batched producers "
                                                          "(default 64)")
    ap.add_argument("--cycle", type=int, default=4096, help="records a producer builds and sends over and over, "
                                                            "the sequence numbers' period (default 4096)")
    ap.add_argument("--runs", type=int, help="measured runs per row (default 5; --quick 3)")
    ap.add_argument("--seconds", type=float, help="target length of one run (default 0.25; --quick 0.1)")
    ap.add_argument("--scenarios", default="asyncio,asyncio-pingpong,asyncio-costs",
                    help="any of asyncio,asyncio-pingpong,asyncio-costs (default: all)")
    ap.add_argument("--no-uvloop", action="store_true", help="leave out the uvloop rows")
    ap.add_argument("--no-pin", action="store_true", help="ping-pong: leave the client and the echo process "
                                                          "unpinned (default: each on a CPU of its own)")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.seconds is None:
        args.seconds = 0.1 if args.quick else 0.25
    if args.batch < 2 or args.runs < 1 or args.cycle < args.batch or args.cycle % args.batch:
        ap.error("--batch must be >= 2, --runs >= 1, --cycle a multiple of --batch")
    scenarios = args.scenarios.split(",")
    for sc in scenarios:
        if sc not in ("asyncio", "asyncio-pingpong", "asyncio-costs"):
            ap.error("unknown scenario %r" % sc)
    consumers = ["blocking", "asyncio"] + (["uvloop"] if uvloop is not None and not args.no_uvloop else [])
    cpus = os.cpu_count() or 1

    print("ringmpsc Python, asyncio vs blocking: %d-byte records; every consumer checks every record (its "
          "producer's sequence number and its bytes) and counts them" % RS)
    print("python %s, %s, %d CPUs, %s; median of %d runs of ~%.2fs per row, taken in rounds over the rows;"
          " ratios compare rows of this run\n" % (platform.python_version(), platform.machine(), cpus,
                                                  "uvloop %s" % uvloop.__version__ if uvloop else
                                                  "uvloop not installed (rows skipped)", args.runs, args.seconds))
    signal.signal(signal.SIGALRM, _alarm)
    base = {"suite": "python", "impl": "ringmpsc", "record_size": RS, "processes": True, "reads_data": True,
            "python": platform.python_version(), "cpus": cpus, "uvloop": uvloop.__version__ if uvloop else None}
    allrows = []
    start = time.perf_counter()
    if "asyncio" in scenarios:
        allrows += throughput(args, consumers, base, cpus)
    if "asyncio-pingpong" in scenarios:
        allrows += pingpong(args, consumers, base)
    if "asyncio-costs" in scenarios:
        allrows += costs(consumers, base)
    print("total %.1fs" % (time.perf_counter() - start))
    if args.json:
        with open(args.json, "w") as f:
            for row in allrows:
                f.write(json.dumps(row) + "\n")
        print("wrote %d rows to %s" % (len(allrows), args.json))


if __name__ == "__main__":
    main()
