#!/usr/bin/env python3
"""Work sharing across processes: ringmpsc consumer groups vs faster-fifo and mp.Queue (suite "python").

    build/venv/bin/python benchmarks/python/workshare.py [--quick] [--json FILE]

What is measured (every row in the same run, same record size, same batch size, the
same producer and consumer process counts):

  scenario workshare  P producer processes -> C consumer processes that share the
                      work: each record goes to one of the consumers (default
                      1 -> 4 and 4 -> 4; --producers, --consumers)

  ringmpsc     one Channel(64, max_consumers=C): every consumer process calls
               recv (per record) or recv_many (batched) on it, which makes it a
               member of the channel's default group; send / send_many
  faster-fifo  one faster_fifo.Queue: put/get, put_many/get_many (a list of records)
  mp.Queue     one multiprocessing.Queue: put/get, and "put/get joined" (one bytes
               object of --batch records per put, the best a user of a pickling
               queue can do)

Records are 64 bytes; the first 8 hold a little-endian u64 unique per producer and
position (as in peers.py). Every consumer reads every record it receives: it sums
the u64 field (struct.unpack_from per record object; a memoryview cast to u64 over a
recv_many or joined batch) and counts; the parent adds up the consumers' counts and
sums and checks them against what the producers sent (a lost, duplicated or
corrupted record fails the run).

The end: the last producer to finish (mp.Queue producers flush their feeder thread
first) wakes the parent, which closes the channel (ringmpsc: every consumer then
drains and gets Closed) or puts one empty record per consumer behind every record
(the peers: a consumer stops at the first it gets; one that got several in a batch
puts the others back). Each producer builds its records first, then every
process meets at a barrier; the time runs from the barrier to the last consumer's
end, the rate is every record received ÷ that time. A short warm-up run sizes each
row (about --seconds per run); the reported rate is the median of --runs runs,
taken in rounds (every row once per round). Nothing is pinned: with more processes
than CPUs (the rows say oversubscribed) the scheduler shares them, as it would for
any user of these queues. --quick: 3 runs of ~0.1 s (about 10 s on 2 cores); default: 5
runs of ~0.25 s (about 25 s).

--json FILE writes one JSON object per row and line (the fields of peers.py, plus
consumers, oversubscribed and member_share = each consumer's share of the records in
the last run).
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import time

import ringmpsc
from peers import CAPACITY, RS, STEP, U64, Hang, cpu_ticks, expected_sum, fmt_rate, make_records  # this directory

try:
    import faster_fifo
except ImportError:  # pragma: no cover - ensure-deps.sh bench installs it
    faster_fifo = None

END = b""  # the peers' end mark, one per consumer

# (impl, path, batched, label)
ROWS = [
    ("ringmpsc", "send/recv", False, "ringmpsc send/recv"),
    ("ringmpsc", "send_many/recv_many", True, "ringmpsc send_many/recv_many"),
    ("faster-fifo", "put/get", False, "faster-fifo put/get"),
    ("faster-fifo", "put_many/get_many", True, "faster-fifo put_many/get_many"),
    ("mp.Queue", "put/get", False, "mp.Queue put/get"),
    ("mp.Queue", "put/get joined", True, "mp.Queue put/get (batch joined)"),
]

# Rough records/s of the whole group, only to size the warm-up run.
PRIOR = {
    ("ringmpsc", False): 1e6, ("ringmpsc", True): 1e7,
    ("faster-fifo", False): 3e5, ("faster-fifo", True): 1e6,
    ("mp.Queue", False): 5e4, ("mp.Queue", True): 2e6,
}


class Setup:
    """What the processes of one run share."""

    def __init__(self, impl, path, producers, consumers, batch):
        ctx = mp.get_context("fork")
        self.impl, self.path, self.batch = impl, path, batch
        self.producers, self.consumers = producers, consumers
        self.finished = ctx.Value("i", 0)  # producers done (their records all in the queue)
        self.done = ctx.Event()  # set by the last of them: the parent ends the run
        if impl == "ringmpsc":
            self.obj = ringmpsc.Channel(RS, capacity=CAPACITY, max_producers=producers, max_consumers=consumers)
        elif impl == "faster-fifo":
            # the bytes of ringmpsc's rings (as in peers.py), at least 1 MiB
            self.obj = faster_fifo.Queue(max_size_bytes=max(CAPACITY * producers * (RS + 32), 1 << 20))
        else:
            self.obj = ctx.Queue()


def producer(setup, pid, cycle, reps, barrier):
    impl, path, batch, q = setup.impl, setup.path, setup.batch, setup.obj
    recs = make_records(pid, cycle)
    blob = b"".join(recs)
    chunks = [blob[i:i + batch * RS] for i in range(0, len(blob), batch * RS)]
    lists = [recs[i:i + batch] for i in range(0, cycle, batch)]
    prod = None
    if impl == "ringmpsc":
        prod = q.producer()
        send = prod.send_many if path == "send_many/recv_many" else prod.send
    elif path == "put_many/get_many":
        send = q.put_many
    else:
        send = q.put
    barrier.wait()
    if path == "put_many/get_many":
        for _ in range(reps):
            for lst in lists:
                send(lst)
    elif batch > 1:
        for _ in range(reps):
            for c in chunks:
                send(c)
    else:
        for _ in range(reps):
            for r in recs:
                send(r)
    if prod is not None:
        prod.close()
    if impl == "mp.Queue":  # everything in the pipe before an end mark can follow
        q.close()
        q.join_thread()
    with setup.finished.get_lock():
        setup.finished.value += 1
        if setup.finished.value == setup.producers:
            setup.done.set()


def end_run(setup):
    """In the parent, once every producer is done: ringmpsc closes the channel (every
    member drains what was committed, then gets Closed); the peers get one end mark per
    consumer behind every record."""
    if setup.impl == "ringmpsc":
        setup.obj.close()
        return
    for _ in range(setup.consumers):
        setup.obj.put(END)


# --- consumers: each returns (records, sum of the u64 field) ---------------------------------

def consume_ring_each(ch):
    up = U64.unpack_from
    recv = ch.recv
    acc = got = 0
    try:
        while True:
            acc += up(recv())[0]
            got += 1
    except ringmpsc.Closed:
        pass
    return got, acc


def consume_ring_many(ch, batch):
    recv_many = ch.recv_many
    acc = got = 0
    try:
        while True:
            b = recv_many(batch)
            acc += sum(memoryview(b).cast("Q")[::STEP])
            got += len(b) // RS
    except ringmpsc.Closed:
        pass
    return got, acc


def consume_each(get):
    up = U64.unpack_from
    acc = got = 0
    while True:
        r = get()
        if not r:
            return got, acc
        acc += up(r)[0]
        got += 1


def consume_joined(get):
    acc = got = 0
    while True:
        b = get()
        if not b:
            return got, acc
        acc += sum(memoryview(b).cast("Q")[::STEP])
        got += len(b) // RS


def consume_lists(q, batch):
    up = U64.unpack_from
    get_many = q.get_many
    acc = got = 0
    while True:
        lst = get_many(max_messages_to_get=batch)
        if lst[-1]:
            for r in lst:
                acc += up(r)[0]
            got += len(lst)
            continue
        # end marks are behind every record: this batch ends with them
        ends = 0
        for r in lst:
            if r:
                acc += up(r)[0]
                got += 1
            else:
                ends += 1
        for _ in range(ends - 1):  # the other consumers' end marks
            q.put(END)
        return got, acc


def consumer(setup, idx, barrier, results):
    impl, path, batch, q = setup.impl, setup.path, setup.batch, setup.obj
    signal.alarm(120)  # a consumer left behind ends
    try:
        if impl == "ringmpsc":
            try:  # join the group now (a consumer call does), so that every member is in before the clock starts
                q.recv_nowait()
                raise RuntimeError("a record before the start")
            except ringmpsc.Empty:
                pass
        barrier.wait()
        if impl == "ringmpsc":
            got, acc = consume_ring_each(q) if batch == 1 else consume_ring_many(q, batch)
        elif path == "put_many/get_many":
            got, acc = consume_lists(q, batch)
        elif batch > 1:
            got, acc = consume_joined(q.get)
        else:
            got, acc = consume_each(q.get)
        results.put((idx, got, acc, time.monotonic(), None))
    except BaseException as e:  # reported, the parent fails the run
        results.put((idx, 0, 0, time.monotonic(), "%s: %s" % (type(e).__name__, e)))


# --- one run -------------------------------------------------------------------------------

def run_once(impl, path, batch, producers, consumers, cycle, reps):
    """One run: (records/s from the barrier to the last consumer's end, the share of the
    machine's CPU other processes used meanwhile or None, each consumer's share)."""
    ctx = mp.get_context("fork")
    setup = Setup(impl, path, producers, consumers, batch)
    total = producers * cycle * reps
    barrier = ctx.Barrier(producers + consumers + 1)
    results = ctx.SimpleQueue()
    procs = [ctx.Process(target=consumer, args=(setup, i, barrier, results)) for i in range(consumers)]
    procs += [ctx.Process(target=producer, args=(setup, i, cycle, reps, barrier)) for i in range(producers)]
    try:
        for p in procs:
            p.start()
        signal.alarm(90)
        pids = [os.getpid()] + [p.pid for p in procs]
        c0, w0 = cpu_ticks(pids), time.monotonic()  # everybody waits at the barrier meanwhile
        barrier.wait()
        t0 = time.monotonic()
        if not setup.done.wait(60):
            raise Hang("%s %s: the producers did not finish" % (impl, path))
        end_run(setup)
        got = [results.get() for _ in range(consumers)]
        t1 = max(g[3] for g in got)
        c1, w1 = cpu_ticks(pids), time.monotonic()  # before the joins: /proc/PID goes with the reaped process
        for p in procs:
            p.join(30)
        signal.alarm(0)
        errors = ["consumer %d: %s" % (g[0], g[4]) for g in got if g[4]]
        errors += ["process %d exit code %s" % (p.pid, p.exitcode) for p in procs if p.exitcode != 0]
        if errors:
            raise RuntimeError("%s %s: %s" % (impl, path, "; ".join(errors)))
        n, acc = sum(g[1] for g in got), sum(g[2] for g in got)
        want = expected_sum(producers, cycle, reps)
        if n != total or acc != want:
            raise RuntimeError("%s %s: the consumers received %d records (field sum %d), the producers sent %d "
                               "(sum %d): records lost, duplicated or corrupted" % (impl, path, n, acc, total, want))
        others = None
        if c0 and c1:
            others = min(1.0, max(0.0, ((c1[0] - c0[0]) - (c1[1] - c0[1])) / os.sysconf("SC_CLK_TCK")
                                  / ((w1 - w0) * (os.cpu_count() or 1))))
        share = [g[1] / n for g in sorted(got)]
        return total / (t1 - t0), others, share
    finally:
        signal.alarm(0)
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)


def size_row(impl, path, batched, producers, consumers, args):
    """Warm-up run (about a quarter of a run); returns (batch, cycle, reps) for ~args.seconds."""
    batch = args.batch if batched else 1
    cycle = args.batch * max(1, 1024 // args.batch)  # whole batches per cycle
    reps = max(1, int(PRIOR[(impl, batched)] * args.seconds / 4 / producers / cycle))
    rate, _, _ = run_once(impl, path, batch, producers, consumers, cycle, reps)
    return batch, cycle, max(1, int(round(rate * args.seconds / producers / cycle)))


def _alarm(signum, frame):
    raise Hang("no progress: a run took too long")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs (about 10 s on 2 cores)")
    ap.add_argument("--json", metavar="FILE", help="write one JSON row per line to FILE")
    ap.add_argument("--batch", type=int, default=64, help="records per batched call, every queue (default 64)")
    ap.add_argument("--producers", default="1,4", help="producer process counts, one scenario each (default 1,4)")
    ap.add_argument("--consumers", type=int, default=4, help="consumer processes sharing the work (default 4)")
    ap.add_argument("--runs", type=int, help="measured runs per row (default 5; --quick 3)")
    ap.add_argument("--seconds", type=float, help="target length of one run (default 0.25; --quick 0.1)")
    ap.add_argument("--impls", help="only these impls (comma-separated, e.g. ringmpsc,faster-fifo)")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.seconds is None:
        args.seconds = 0.1 if args.quick else 0.25
    try:
        plist = [int(x) for x in args.producers.split(",")]
    except ValueError:
        ap.error("--producers: a comma-separated list of counts")
    if args.batch < 1 or args.consumers < 1 or args.runs < 1 or min(plist) < 1:
        ap.error("--batch, --producers, --consumers and --runs must be >= 1")
    impls = set(args.impls.split(",")) if args.impls else None
    cpus = os.cpu_count() or 1

    print("ringmpsc Python work sharing: %d-byte records, batch %d, producer processes -> %d consumer processes "
          "sharing the work; every consumer reads every record it gets (sums a u64 field), totals checked"
          % (RS, args.batch, args.consumers))
    print("python %s, %s, %d CPUs; median of %d runs of ~%.2fs per row, taken in rounds over the rows;"
          " ratios compare rows of this run\n" % (platform.python_version(), platform.machine(), cpus, args.runs,
                                                  args.seconds))
    if faster_fifo is None:
        print("not installed (rows skipped): faster-fifo; run scripts/ensure-deps.sh bench\n")

    signal.signal(signal.SIGALRM, _alarm)
    allrows = []
    start = time.perf_counter()
    for producers in plist:
        consumers = args.consumers
        oversub = producers + consumers > cpus
        print("workshare: %d producer process%s -> %d consumer processes%s" % (
            producers, "es" if producers > 1 else "", consumers,
            " (oversubscribed: %d processes on %d CPUs)" % (producers + consumers, cpus) if oversub else ""))
        print("    %-36s %5s %14s %9s %5s %7s %7s  %s" % ("impl / path", "batch", "records/s", "MB/s", "runs",
                                                        "spread", "others", "consumer shares (last run)"))
        todo = [r for r in ROWS if not (r[0] == "faster-fifo" and faster_fifo is None)
                and not (impls and r[0] not in impls)]
        sizes = [size_row(impl, path, batched, producers, consumers, args) for impl, path, batched, _ in todo]
        rates = [[] for _ in todo]
        loads = [[] for _ in todo]
        shares = [None for _ in todo]
        for _ in range(args.runs):  # rounds: a change in the machine's load falls on every row alike
            for i, (impl, path, _, _) in enumerate(todo):
                batch, cycle, reps = sizes[i]
                rate, others, share = run_once(impl, path, batch, producers, consumers, cycle, reps)
                rates[i].append(rate)
                shares[i] = share
                if others is not None:
                    loads[i].append(others)
        results = []
        for (impl, path, _, label), (batch, _, _), rr, ll, sh in zip(todo, sizes, rates, loads, shares):
            med = statistics.median(rr)
            load = statistics.median(ll) if ll else None
            row = {
                "suite": "python", "impl": impl, "path": path, "scenario": "workshare", "record_size": RS,
                "batch": batch, "producers": producers, "consumers": consumers, "processes": True,
                "reads_data": True, "records_per_s": med, "bytes_per_s": med * RS, "p50_ns": None, "p99_ns": None,
                "runs": len(rr), "label": label, "runs_records_per_s": [round(r, 1) for r in rr],
                "spread": round((max(rr) - min(rr)) / med, 3),
                "other_cpu_load": None if load is None else round(load, 3),
                "member_share": [round(x, 3) for x in sh], "oversubscribed": oversub,
                "python": platform.python_version(), "cpus": cpus,
            }
            results.append(row)
            print("    %-36s %5d %14s %9.1f %5d %7s %7s  %s" % (
                label, batch, fmt_rate(med), med * RS / 1e6, len(rr), "%.0f%%" % (100 * row["spread"]),
                "-" if load is None else "%.0f%%" % (100 * load), " ".join("%.0f%%" % (100 * x) for x in sh)))
        mine = {r["batch"]: r for r in results if r["impl"] == "ringmpsc"}
        print()
        for r in results:
            m = mine.get(r["batch"])
            if m is not None and r is not m:
                print("    ringmpsc %-20s / %-36s %8.1fx" % (m["path"], r["label"],
                                                             m["records_per_s"] / r["records_per_s"]))
        print(flush=True)
        allrows.extend(results)
    print("total %.1fs" % (time.perf_counter() - start))
    if args.json:
        with open(args.json, "w") as f:
            for row in allrows:
                f.write(json.dumps(row) + "\n")
        print("wrote %d rows to %s" % (len(allrows), args.json))


if __name__ == "__main__":
    main()
