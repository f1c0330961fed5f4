#!/usr/bin/env python3
"""ringmpsc vs the Python queues users would pick instead (suite "python").

    build/venv/bin/python benchmarks/python/peers.py [--quick] [--json FILE]

What is measured (every peer in the same run, same record size, same batch size):

  scenario spsc     1 producer process  -> 1 consumer process (this one)
  scenario mpsc     4 producer processes -> 1 consumer process (--producers)
  scenario threads  producer thread(s) -> the consumer thread, in this process

  ringmpsc          send/recv (per record), send_many/recv_into and reserve/read
                    (batched; reserve/read writes and reads in place)
  mp.Queue          multiprocessing.Queue put/get (pickle, pipe, feeder thread)
  mp.SimpleQueue    multiprocessing.SimpleQueue put/get (pickle, pipe, a lock per side)
  faster-fifo       faster_fifo.Queue put/get and put_many/get_many (shared-memory
                    circular buffer, one mutex)
  zmq               pyzmq PUSH -> PULL over ipc:// in a temporary directory
  queue.SimpleQueue (threads only) the stdlib's fastest in-process queue

Records are 64 bytes; the first 8 hold a little-endian u64 unique per producer and
position. Per-record paths move one record per call. Batched paths move --batch
records per call: ringmpsc send_many/recv_into/reserve/read, faster-fifo
put_many/get_many (a list of records), and for every peer "batch joined": one
bytes object of --batch records per put/get, the best a user of a pickling queue
can do. The consumer reads every record: it sums the u64 field (struct.unpack_from
per record object; a memoryview cast to u64 over a joined batch, a recv_into buffer
or a read view) and checks the sum and count against what the producers sent.

Each producer builds its records first, then all producers and the consumer meet
at a barrier; the time runs from the barrier to the consumer's last record. A
short warm-up run sizes each row (about --seconds per run); the reported rate is
the median of --runs runs, taken in rounds (every row once per round) so that a
change in the load of a shared machine falls on all rows alike. Compare ratios
within one run, not absolute numbers across runs. --quick: 5 runs of ~0.1 s
(about 20 s on 2 cores); default: 7 runs of ~0.3 s and the threads scenario with
--producers threads as well (about 1.5 min).

--json FILE writes one JSON object per row and line (the common row fields:
suite, impl, path, scenario, record_size, batch, producers, consumers, processes,
reads_data, records_per_s, bytes_per_s, p50_ns, p99_ns, runs; plus label,
runs_records_per_s, spread = (max - min) / median of the runs, other_cpu_load = the
median share of the machine's CPU that other processes used during the runs, python,
cpus). The table shows spread and others too: a row measured while others loaded the
machine is noisy.
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import shutil
import signal
import statistics
import struct
import tempfile
import threading
import time

import ringmpsc

RS = 64
U64 = struct.Struct("<Q")
STEP = RS // 8   # u64 words per record
CAPACITY = 4096  # ringmpsc records per producer ring; faster-fifo gets the same bytes
HELLO = b"hello"

try:
    import faster_fifo
except ImportError:  # pragma: no cover - ensure-deps.sh bench installs it
    faster_fifo = None
try:
    import zmq
except ImportError:  # pragma: no cover
    zmq = None


# --- rows ------------------------------------------------------------------------------
# (impl, path, batched, label); "joined" paths put --batch records in one bytes object.

ROWS_PROC = [
    ("ringmpsc", "send/recv", False, "ringmpsc send/recv"),
    ("ringmpsc", "send_many/recv_into", True, "ringmpsc send_many/recv_into"),
    ("ringmpsc", "reserve/read", True, "ringmpsc reserve/read (in place)"),
    ("mp.Queue", "put/get", False, "mp.Queue put/get"),
    ("mp.Queue", "put/get joined", True, "mp.Queue put/get (batch joined)"),
    ("mp.SimpleQueue", "put/get", False, "mp.SimpleQueue put/get"),
    ("mp.SimpleQueue", "put/get joined", True, "mp.SimpleQueue put/get (batch joined)"),
    ("faster-fifo", "put/get", False, "faster-fifo put/get"),
    ("faster-fifo", "put_many/get_many", True, "faster-fifo put_many/get_many"),
    ("faster-fifo", "put/get joined", True, "faster-fifo put/get (batch joined)"),
    ("zmq", "send/recv", False, "zmq PUSH/PULL ipc send/recv"),
    ("zmq", "send/recv joined", True, "zmq PUSH/PULL ipc (batch joined)"),
]

ROWS_THREADS = [
    ("ringmpsc", "send/recv", False, "ringmpsc send/recv"),
    ("ringmpsc", "send_many/recv_into", True, "ringmpsc send_many/recv_into"),
    ("ringmpsc", "reserve/read", True, "ringmpsc reserve/read (in place)"),
    ("queue.SimpleQueue", "put/get", False, "queue.SimpleQueue put/get"),
    ("queue.SimpleQueue", "put/get joined", True, "queue.SimpleQueue put/get (batch joined)"),
]

# Rough records/s, only to size the warm-up run.
PRIOR = {
    ("ringmpsc", False): 1e6, ("ringmpsc", True): 1e7,
    ("mp.Queue", False): 5e4, ("mp.Queue", True): 2e6,
    ("mp.SimpleQueue", False): 1e5, ("mp.SimpleQueue", True): 3e6,
    ("faster-fifo", False): 3e5, ("faster-fifo", True): 1e6,
    ("zmq", False): 2e5, ("zmq", True): 3e6,
    ("queue.SimpleQueue", False): 1e6, ("queue.SimpleQueue", True): 1e7,
}


def available(impl):
    return not ((impl == "faster-fifo" and faster_fifo is None) or (impl == "zmq" and zmq is None))


# --- data ------------------------------------------------------------------------------

def make_records(pid, cycle):
    """`cycle` records of producer `pid`: u64 (pid << 32 | i), then filler."""
    filler = bytes(range(RS - 8)) if RS - 8 <= 256 else bytes(RS - 8)
    return [U64.pack((pid << 32) | i) + filler for i in range(cycle)]


def expected_sum(producers, cycle, reps):
    per = sum(range(cycle))
    return reps * sum((pid << 32) * cycle + per for pid in range(producers))


# --- producers -------------------------------------------------------------------------
# A producer sends `reps` times its `cycle` records, in records or in chunks of `batch`.

class Setup:
    """What the producers of one run share: the queue object or an address."""

    def __init__(self, impl, path, producers, batch, threads, tmpdir):
        self.impl, self.path, self.batch = impl, path, batch
        self.obj = None
        # zmq drops messages still in flight when a PUSH peer disconnects (seen here
        # even with linger=-1 and term()): its producers stay connected until the
        # consumer has everything.
        self.done = None
        if impl == "zmq":
            self.done = threading.Event() if threads else mp.get_context("fork").Event()
        if impl == "ringmpsc":
            self.obj = ringmpsc.Channel(RS, capacity=CAPACITY, max_producers=producers)
        elif impl == "mp.Queue":
            self.obj = mp.get_context("fork").Queue()
        elif impl == "mp.SimpleQueue":
            self.obj = mp.get_context("fork").SimpleQueue()
        elif impl == "faster-fifo":
            # About the bytes of ringmpsc's rings (CAPACITY records per producer, plus
            # ~32 bytes of pickle and framing per message), at least 1 MiB.
            self.obj = faster_fifo.Queue(max_size_bytes=max(CAPACITY * producers * (RS + 32), 1 << 20))
        elif impl == "queue.SimpleQueue":
            self.obj = queue.SimpleQueue()
        elif impl == "zmq":
            self.obj = "ipc://%s/peers-%d.sock" % (tmpdir, os.getpid())


def producer(setup, pid, cycle, reps, barrier):
    impl, path, batch = setup.impl, setup.path, setup.batch
    recs = make_records(pid, cycle)
    blob = b"".join(recs)
    chunks = [blob[i:i + batch * RS] for i in range(0, len(blob), batch * RS)]
    lists = [recs[i:i + batch] for i in range(0, cycle, batch)]
    zctx = sock = prod = None
    if impl == "ringmpsc":
        prod = setup.obj.producer()
        send = {"send/recv": prod.send, "send_many/recv_into": prod.send_many}.get(path)
    elif impl == "zmq":
        zctx = zmq.Context()
        sock = zctx.socket(zmq.PUSH)
        sock.connect(setup.obj)
        sock.send(HELLO)  # the consumer starts the clock only once every producer is connected
        send = sock.send
    elif impl == "faster-fifo" and path == "put_many/get_many":
        send = setup.obj.put_many
    else:
        send = setup.obj.put
    barrier.wait()
    if path == "reserve/read":
        reserve = prod.reserve
        src = memoryview(blob)
        for _ in range(reps):
            off = 0
            while off < cycle:
                r = reserve(min(batch, cycle - off))  # k <= batch records, fewer at the wrap
                k = len(r)
                with memoryview(r) as v:
                    v[:] = src[off * RS:(off + k) * RS]  # write in place: the one copy
                r.commit()
                off += k
    elif path == "put_many/get_many":
        for _ in range(reps):
            for lst in lists:
                send(lst)
    elif setup.batch > 1 or path == "send_many/recv_into":
        for _ in range(reps):
            for c in chunks:
                send(c)
    else:
        for _ in range(reps):
            for r in recs:
                send(r)
    if prod is not None:
        prod.close()
    if sock is not None:
        setup.done.wait(120)
        sock.close(linger=-1)
        zctx.term()
    if impl == "mp.Queue":
        setup.obj.close()
        setup.obj.join_thread()


# --- consumers -------------------------------------------------------------------------
# Each returns the sum of the u64 field of `total` records.

def consume_each(get, total):
    up = U64.unpack_from
    acc = 0
    for _ in range(total):
        acc += up(get())[0]
    return acc


def consume_joined(get, total):
    acc = got = 0
    while got < total:
        b = get()
        acc += sum(memoryview(b).cast("Q")[::STEP])
        got += len(b) // RS
    if got != total:
        raise RuntimeError("received %d records, expected %d" % (got, total))
    return acc


def consume_lists(get_many, total, batch):
    up = U64.unpack_from
    acc = got = 0
    while got < total:
        lst = get_many(max_messages_to_get=batch)
        for r in lst:
            acc += up(r)[0]
        got += len(lst)
    if got != total:
        raise RuntimeError("received %d records, expected %d" % (got, total))
    return acc


def consume_recv_into(ch, total, batch):
    buf = bytearray(batch * RS)
    qv = memoryview(buf).cast("Q")
    recv_into = ch.recv_into
    acc = got = 0
    while got < total:
        n = recv_into(buf)
        acc += sum(qv[0:n * STEP:STEP])
        got += n
    if got != total:
        raise RuntimeError("received %d records, expected %d" % (got, total))
    return acc


def consume_read(ch, total, batch):
    read = ch.read
    acc = got = 0
    while got < total:
        with read(batch) as v:
            acc += sum(v.cast("Q")[::STEP])
            got += len(v) // RS
    if got != total:
        raise RuntimeError("received %d records, expected %d" % (got, total))
    return acc


def consume(setup, total, zsock):
    impl, path, batch = setup.impl, setup.path, setup.batch
    if impl == "ringmpsc":
        ch = setup.obj
        if path == "send/recv":
            return consume_each(ch.recv, total)
        if path == "send_many/recv_into":
            return consume_recv_into(ch, total, batch)
        return consume_read(ch, total, batch)
    get = zsock.recv if impl == "zmq" else setup.obj.get
    if path == "put_many/get_many":
        return consume_lists(setup.obj.get_many, total, batch)
    if batch > 1:
        return consume_joined(get, total)
    return consume_each(get, total)


# --- one run ---------------------------------------------------------------------------

class Hang(Exception):
    pass


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_ticks(pids):
    """(busy ticks of the whole machine, ticks used by `pids`), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        busy = sum(v) - v[3] - v[4]
        ours = 0
        for pid in pids:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            ours += int(fields[11]) + int(fields[12])  # utime, stime (zombies keep theirs)
        return busy, ours
    except (OSError, ValueError, IndexError):
        return None


def _alarm(signum, frame):
    raise Hang("no progress: a run took too long")


def run_once(impl, path, batch, producers, threads, cycle, reps, tmpdir):
    """One run; returns (records/s from the barrier to the consumer's last record, the
    share of the machine's CPU that other processes used meanwhile, or None)."""
    setup = Setup(impl, path, producers, batch, threads, tmpdir)
    total = producers * cycle * reps
    zctx = zsock = None
    workers = []
    try:
        if threads:
            barrier = threading.Barrier(producers + 1)
            workers = [threading.Thread(target=producer, args=(setup, i, cycle, reps, barrier), daemon=True)
                       for i in range(producers)]
        else:
            ctx = mp.get_context("fork")
            barrier = ctx.Barrier(producers + 1)
            workers = [ctx.Process(target=producer, args=(setup, i, cycle, reps, barrier)) for i in range(producers)]
        for w in workers:
            w.start()
        if impl == "zmq":  # after the forks: the children never share this context
            zctx = zmq.Context()
            zsock = zctx.socket(zmq.PULL)
            zsock.bind(setup.obj)
            for _ in range(producers):  # connected (a connect before the bind retries after 100 ms)
                if zsock.recv() != HELLO:
                    raise RuntimeError("zmq: expected the hello message first")
        signal.alarm(60)
        pids = [os.getpid()] + ([] if threads else [w.pid for w in workers])
        c0 = cpu_ticks(pids)  # the producers wait at the barrier meanwhile
        barrier.wait()
        t0 = time.perf_counter()
        acc = consume(setup, total, zsock)
        t1 = time.perf_counter()
        c1 = cpu_ticks(pids)
        signal.alarm(0)
        others = None
        if c0 and c1:
            others = max(0.0, ((c1[0] - c0[0]) - (c1[1] - c0[1])) / CLK_TCK / ((t1 - t0) * (os.cpu_count() or 1)))
        if setup.done is not None:
            setup.done.set()
        for w in workers:
            w.join(30)
        if not threads:
            bad = [w.exitcode for w in workers if w.exitcode != 0]
            if bad:
                raise RuntimeError("%s %s: producer exit codes %s" % (impl, path, bad))
        if acc != expected_sum(producers, cycle, reps):
            raise RuntimeError("%s %s: field sum %d != expected %d: records lost, duplicated or corrupted"
                               % (impl, path, acc, expected_sum(producers, cycle, reps)))
        return total / (t1 - t0), others
    finally:
        signal.alarm(0)
        if setup.done is not None:
            setup.done.set()
        for w in workers:
            if not threads and w.is_alive():
                w.kill()
                w.join(5)
        if zsock is not None:
            zsock.close(linger=0)
            zctx.term()
        if impl == "zmq":
            try:
                os.unlink(setup.obj[len("ipc://"):])
            except OSError:
                pass


def size_row(impl, path, batched, producers, threads, args, tmpdir):
    """Warm-up run (about a quarter of a run); returns (batch, cycle, reps) for ~args.seconds."""
    batch = args.batch if batched else 1
    cycle = args.batch * max(1, 1024 // args.batch)  # whole batches per cycle
    reps = max(1, int(PRIOR[(impl, batched)] * args.seconds / 4 / producers / cycle))
    rate, _ = run_once(impl, path, batch, producers, threads, cycle, reps, tmpdir)
    return batch, cycle, max(1, int(round(rate * args.seconds / producers / cycle)))


# --- report ----------------------------------------------------------------------------

def fmt_rate(r):
    return "{:,.0f}".format(r)


RING_COLS = [("send/recv", "send/recv"), ("send_many/recv_into", "send_many/recv_into"),
             ("reserve/read", "reserve/read")]


def print_ratios(results):
    """Rows: each peer; columns: each ringmpsc path of the same batch size; cells: ringmpsc / peer."""
    mine = {r["path"]: r for r in results if r["impl"] == "ringmpsc"}
    peers = [r for r in results if r["impl"] != "ringmpsc"]
    cols = [(path, head) for path, head in RING_COLS if path in mine]
    if not cols or not peers:
        return
    print("    %-42s %s" % ("ringmpsc / peer (same batch size)", " ".join("%19s" % h for _, h in cols)))
    for p in peers:
        cells = []
        for path, _ in cols:
            m = mine[path]
            cells.append("%18.1fx" % (m["records_per_s"] / p["records_per_s"]) if m["batch"] == p["batch"]
                         else "%19s" % "")
        print(("    %-42s %s" % (p["label"], " ".join(cells))).rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs (under 45 s on 2 cores)")
    ap.add_argument("--json", metavar="FILE", help="write one JSON row per line to FILE")
    ap.add_argument("--batch", type=int, default=64, help="records per batched call, every peer (default 64)")
    ap.add_argument("--producers", type=int, default=4, help="producers of the mpsc scenario (default 4)")
    ap.add_argument("--runs", type=int, help="measured runs per row (default 7; --quick 5)")
    ap.add_argument("--seconds", type=float, help="target length of one run (default 0.3; --quick 0.1)")
    ap.add_argument("--scenarios", default="spsc,mpsc,threads", help="any of spsc,mpsc,threads")
    ap.add_argument("--impls", help="only these impls (comma-separated, e.g. ringmpsc,faster-fifo)")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 5 if args.quick else 7
    if args.seconds is None:
        args.seconds = 0.1 if args.quick else 0.3
    if args.batch < 1 or args.producers < 1 or args.runs < 1:
        ap.error("--batch, --producers and --runs must be >= 1")
    impls = set(args.impls.split(",")) if args.impls else None

    plan = []  # (scenario, producers, threads)
    for sc in args.scenarios.split(","):
        if sc == "spsc":
            plan.append(("spsc", 1, False))
        elif sc == "mpsc":
            plan.append(("mpsc", args.producers, False))
        elif sc == "threads":
            plan.append(("threads", 1, True))
            if not args.quick:
                plan.append(("threads", args.producers, True))
        else:
            ap.error("unknown scenario %r" % sc)

    print("ringmpsc Python peers: %d-byte records, batch %d, consumer reads every record (sums a u64 field)"
          % (RS, args.batch))
    print("python %s, %s, %d CPUs; median of %d runs of ~%.2fs per row, taken in rounds over the rows;"
          " ratios compare rows of this run\n"
          % (platform.python_version(), platform.machine(), os.cpu_count(), args.runs, args.seconds))
    missing = [i for i in ("faster-fifo", "zmq") if not available(i)]
    if missing:
        print("not installed (rows skipped): %s; run scripts/ensure-deps.sh bench\n" % ", ".join(missing))

    signal.signal(signal.SIGALRM, _alarm)
    tmpdir = tempfile.mkdtemp(prefix="ringmpsc-peers-")
    allrows = []
    start = time.perf_counter()
    try:
        for scenario, producers, threads in plan:
            rows = ROWS_THREADS if threads else ROWS_PROC
            where = ("%d producer thread%s -> consumer thread, one process" % (producers, "s" if producers > 1 else "")
                     if threads else "%d producer process%s -> 1 consumer process"
                     % (producers, "es" if producers > 1 else ""))
            print("%s: %s" % (scenario, where))
            print("    %-42s %5s %14s %9s %5s %7s %7s" % ("impl / path", "batch", "records/s", "MB/s", "runs",
                                                     "spread", "others"))
            todo = [(impl, path, batched, label) for impl, path, batched, label in rows
                    if available(impl) and not (impls and impl not in impls)]
            sizes = [size_row(impl, path, batched, producers, threads, args, tmpdir)
                     for impl, path, batched, _ in todo]
            # Rounds: every row once per round, so a change in the machine's load
            # (it is shared) falls on all rows alike instead of on a few of them.
            rates = [[] for _ in todo]
            loads = [[] for _ in todo]
            for _ in range(args.runs):
                for i, (impl, path, _, _) in enumerate(todo):
                    batch, cycle, reps = sizes[i]
                    rate, others = run_once(impl, path, batch, producers, threads, cycle, reps, tmpdir)
                    rates[i].append(rate)
                    if others is not None:
                        loads[i].append(others)
            results = []
            for (impl, path, _, label), (batch, _, _), rr, ll in zip(todo, sizes, rates, loads):
                med = statistics.median(rr)
                load = statistics.median(ll) if ll else None
                row = {
                    "suite": "python", "impl": impl, "path": path, "scenario": scenario, "record_size": RS,
                    "batch": batch, "producers": producers, "consumers": 1, "processes": not threads,
                    "reads_data": True, "records_per_s": med, "bytes_per_s": med * RS, "p50_ns": None,
                    "p99_ns": None, "runs": len(rr), "label": label,
                    "runs_records_per_s": [round(r, 1) for r in rr],
                    "spread": round((max(rr) - min(rr)) / med, 3),
                    "other_cpu_load": None if load is None else round(load, 3),
                    "python": platform.python_version(), "cpus": os.cpu_count(),
                }
                results.append(row)
                print("    %-42s %5d %14s %9.1f %5d %7s %7s" % (
                    label, batch, fmt_rate(med), med * RS / 1e6, len(rr), "%.0f%%" % (100 * row["spread"]),
                    "-" if load is None else "%.0f%%" % (100 * load)))
            print()
            print_ratios(results)
            print(flush=True)
            allrows.extend(results)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    print("\ntotal %.1fs" % (time.perf_counter() - start))
    if args.json:
        with open(args.json, "w") as f:
            for row in allrows:
                f.write(json.dumps(row) + "\n")
        print("wrote %d rows to %s" % (len(allrows), args.json))


if __name__ == "__main__":
    main()
