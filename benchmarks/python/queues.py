#!/usr/bin/env python3
"""ringmpsc.Queue, the drop-in for faster_fifo.Queue, vs faster_fifo.Queue and multiprocessing.Queue (suite "python").

    build/venv/bin/python benchmarks/python/queues.py [--quick] [--json FILE]

What is measured (every queue in the same run, the same messages, the same calls):

  scenario queue P→C  faster-fifo's comparison (cpp_faster_fifo/tests/comparison_tests.py):
                      P producer processes put faster-fifo's message, the 5-tuple
                      (i,) * 5, one put per message, into one queue that C consumer
                      processes share; configurations (P, C) = (1,1) (1,10) (10,1)
                      (3,20) (20,3) (20,20) (--configs). i is unique over the run
                      (producer p sends p*N ... p*N + N-1), so every message is
                      distinct. Two modes:
        per message   every consumer calls get(), one message per call
        batched       every consumer calls get_many(max_messages_to_get=1000)
                      (--get-many); multiprocessing.Queue has no get_many: its
                      consumers call get() in a loop (rows say so)
  scenario frames     1 producer process -> 1 consumer process, 1 MiB NumPy frames
                      (int64) through put(frame) / get(); the producer writes the
                      frame number into frame[0] and frame[-1] before each put (it
                      writes a pool of --frame-depth + 2 frames in turn: none is
                      written while the queue may still hold it), the consumer checks
                      both in every frame it gets. 2 x --frame-depth frames go through
                      before the barrier (the consumer's allocator and the queue's
                      buffers warm), the run's frames after it. Next to it the physical
                      yardstick: np.copyto(dst, src) of one 1 MiB frame into another,
                      one thread, in a loop (GB/s).

  ringmpsc.Queue  only when the installed ringmpsc has it (hasattr(ringmpsc, "Queue"));
                  --candidate MODULE:NAME measures another class with the same API in
                  its place (its rows carry that name, not "ringmpsc")
  faster-fifo     faster_fifo.Queue(max_size_bytes=--queue-bytes), PyPI
  mp.Queue        multiprocessing.Queue(maxsize=--mpq-maxsize) (100000, as in
                  faster-fifo's comparison; frames: the frame queue's depth)
  --maxsize N     also passes maxsize=N to ringmpsc.Queue and faster_fifo.Queue (a
                  bound on the message count, as users of multiprocessing.Queue set
                  one; default: none); rows carry field maxsize

The queues are made as a faster-fifo user makes them: Queue(max_size_bytes=...) with
the defaults of every other argument, put(obj) and get() with their default blocking
(ringmpsc.Queue's and faster-fifo's put/get/get_many take block and timeout the same
way). Every process is forked (multiprocessing's "fork" context) and gets the queue
as a Process argument.

Checks: every consumer reads every message it receives: it sums msg[0] and counts the
messages; the parent adds up the consumers' counts and sums and checks them against
what the producers sent (a lost, duplicated or corrupted message fails the run, as
does a frame whose numbers are not the next frame's).

The end of a queue P→C run, the same for every queue and safe for a queue without
order across producers: the last producer to return from its last put (mp.Queue
producers flush their feeder thread first) wakes the parent, which puts one end
mark (None) per consumer. A consumer that gets an end mark keeps receiving with
get(block=False) / get_many(block=False, ...) until the queue is empty, or until it
gets another consumer's end mark, which it puts back (that consumer may be waiting
for it): the last consumer to get its mark finds no other mark, so it empties the
queue. Each consumer's end is the time after its last get that returned a message or
its own end mark; the run's time runs from a barrier that every process meets
(producers, consumers, the parent) to the last consumer's end; the rate is every
message sent ÷ that time.
Everything is bounded: every process has an alarm, the parent a deadline per run
(--time-limit); a run that passes it, a process that fails or exits with an error,
or a check that fails is reported as a failure and ends the program with status 1
(after the other rows), never a hang.

Sizes: a warm-up run of about a quarter of --seconds sizes each row (queue, mode,
configuration) so that one run takes about --seconds (default 0.4, --quick 0.1): the
fixed costs of a run (the barrier's wake-ups at the start; at the end, every consumer
that waits in get() woken for its end mark, about 15 ms for 20 consumers on 2 CPUs)
then weigh alike on every queue, a fast one included. --messages N per producer
(--frames N) sets the count of every run instead. Rates are the median of --runs runs
(default 3, --quick 1), taken in rounds (every row once per round) so that a change in
the load of this shared machine falls on all of them alike; the rows give the messages
of their runs. Frames: the time from the barrier to the consumer's check of the last
frame. Nothing is pinned: with more processes than CPUs (rows say oversubscribed) the
scheduler shares them, as it would for any user of these queues. The default takes
about 1 min on 2 cores with the two peers, about 1.5 min with ringmpsc.Queue as well;
--quick about 10 s.

--json FILE writes one JSON object per row and line (the fields of peers.py, plus
mode = "per message" | "batched", consumer_call, get_many_max, messages,
messages_per_producer, message, oversubscribed, frame_bytes and queue_depth (frames),
label, runs_records_per_s, spread, other_cpu_load, python, cpus, ok; the memcpy
yardstick is a row with impl "memcpy" in scenario frames). record_size is the
pickled size of a message as faster-fifo and multiprocessing.Queue pickle it
(ForkingPickler; frames: the frame's bytes).
"""
import argparse
import functools
import importlib
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import time
from multiprocessing.reduction import ForkingPickler
from queue import Empty

import ringmpsc
from peers import Hang, cpu_ticks, fmt_rate  # this directory

try:
    import faster_fifo
except ImportError:  # pragma: no cover - ensure-deps.sh bench installs it
    faster_fifo = None
# NumPy's OpenBLAS starts a thread per CPU that spins after start-up; nothing here
# uses BLAS, and on 2 CPUs those threads of the parent took CPU from the measured
# processes (every queue's alike). Set before NumPy is imported; children inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
try:
    import numpy as np
except ImportError:  # pragma: no cover - ensure-deps.sh bench installs it
    np = None

CTX = mp.get_context("fork")
END = None  # the end mark; messages are tuples
MSG_FIELDS = 5  # faster-fifo's MSG_SIZE: the message is (i,) * 5
CONFIGS = [(1, 1), (1, 10), (10, 1), (3, 20), (20, 3), (20, 20)]
# Rough rates (messages/s of a configuration, frames/s), only to size the warm-up runs;
# OTHER: ringmpsc.Queue or a --candidate
PRIOR = {"faster-fifo": 2e5, "mp.Queue": 1.5e5}
PRIOR_OTHER = 1e6
FRAME_PRIOR = {"faster-fifo": 1000, "mp.Queue": 300}
FRAME_PRIOR_OTHER = 5000
FRAME_BYTES = 1 << 20
MODES = [("per message", 1), ("batched", None)]  # (mode, batch); None: --get-many


class Impl:
    """A queue class with faster_fifo.Queue's API and what this program needs to know of it.

    name    what the tables call it; row: the rows' impl (ringmpsc.Queue's rows say "ringmpsc")
    make    (max_size_bytes, maxsize) -> a new queue
    flush   called by a process after its last put, so that what it put is in the queue
            before it says it is done (multiprocessing.Queue: its feeder thread)
    abandon called by the parent on a failed run, so that no thread of this process waits
            for a queue nobody reads (multiprocessing.Queue: cancel_join_thread)
    """

    def __init__(self, name, row, make, get_many=True, flush=None, abandon=None):
        self.name, self.row, self.make, self.get_many = name, row, make, get_many
        self.flush = flush or (lambda q: None)
        self.abandon = abandon or (lambda q: None)


def _mpq_flush(q):
    q.close()
    q.join_thread()


def candidate(spec):
    """ringmpsc.Queue's slot: the class named by --candidate MODULE:NAME, else ringmpsc.Queue
    where the installed ringmpsc has it, else None."""
    if spec:
        mod, _, name = spec.partition(":")
        cls = getattr(importlib.import_module(mod), name)
        return Impl("%s.%s" % (mod, name), "%s.%s" % (mod, name),
                    lambda nbytes, nmsgs: cls(max_size_bytes=nbytes, **MAXSIZE))
    if hasattr(ringmpsc, "Queue"):
        return Impl("ringmpsc.Queue", "ringmpsc",
                    lambda nbytes, nmsgs: ringmpsc.Queue(max_size_bytes=nbytes, **MAXSIZE))
    return None


# --maxsize: the keyword ringmpsc.Queue and faster_fifo.Queue are made with (none by default).
MAXSIZE: dict = {}


def peers():
    out = []
    if faster_fifo is not None:
        out.append(Impl("faster-fifo", "faster-fifo",
                        lambda nbytes, nmsgs: faster_fifo.Queue(max_size_bytes=nbytes, **MAXSIZE)))
    out.append(Impl("mp.Queue", "mp.Queue", lambda nbytes, nmsgs: CTX.Queue(maxsize=nmsgs), get_many=False,
                    flush=_mpq_flush, abandon=lambda q: q.cancel_join_thread()))
    return out


def message_bytes(i):
    """The bytes of message i pickled as faster-fifo and multiprocessing.Queue pickle it."""
    return len(ForkingPickler.dumps((i,) * MSG_FIELDS))


# --- queue P→C: producers, consumers --------------------------------------------------------

def producer(impl, q, pid, n, barrier, finished, done, producers, limit):
    signal.alarm(limit)
    put = q.put
    lo = pid * n
    barrier.wait()
    for i in range(lo, lo + n):
        put((i,) * MSG_FIELDS)
    impl.flush(q)
    with finished.get_lock():
        finished.value += 1
        if finished.value == producers:
            done.set()


def tally(msgs):
    """(messages, sum of msg[0], end marks) of a list from get_many."""
    acc = marks = 0
    for m in msgs:
        if m is END:
            marks += 1
        else:
            acc += m[0]
    return len(msgs) - marks, acc, marks


def receive_each(get):
    """get() per message until an end mark: (messages, sum of msg[0], other end marks)."""
    acc = got = 0
    while True:
        try:
            while True:
                m = get()
                if m is END:
                    return got, acc, 0
                acc += m[0]
                got += 1
        except Empty:  # a get() that gives up after the queue's own default timeout (faster-fifo: 10 s)
            pass


def receive_many(get_many, batch):
    """get_many(max_messages_to_get=batch) until an end mark; as receive_each."""
    acc = got = 0
    while True:
        try:
            msgs = get_many(max_messages_to_get=batch)
        except Empty:
            continue
        n, s, marks = tally(msgs)
        got += n
        acc += s
        if marks:
            return got, acc, marks - 1


def consumer(impl, q, idx, batch, barrier, results, limit):
    signal.alarm(limit)
    try:
        barrier.wait()
        many = batch > 1 and impl.get_many
        if many:
            got, acc, extra = receive_many(q.get_many, batch)
        else:
            got, acc, extra = receive_each(q.get)
        end = time.monotonic()
        # Messages an end mark overtook (a queue without order across producers): until
        # the queue is empty, or another consumer's end mark turns up.
        while not extra:
            try:
                msgs = (q.get_many(block=False, max_messages_to_get=batch) if many
                        else [q.get(block=False)])
            except Empty:
                break
            n, s, extra = tally(msgs)
            if n:
                end = time.monotonic()
            got += n
            acc += s
        for _ in range(extra):
            q.put(END)
        if extra:
            impl.flush(q)
        results.put((idx, got, acc, end, None))
    except BaseException as e:  # reported: the parent fails the run
        results.put((idx, 0, 0, 0.0, "%s: %s" % (type(e).__name__, e)))


# --- runs ------------------------------------------------------------------------------------

def _alarm(signum, frame):
    raise Hang("no progress: a run took too long")


def exited(p):
    """The exit status of process p once it has exited, else None; p is not reaped (its
    /proc/PID/stat stays for cpu_ticks)."""
    st = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return None if st is None else st.si_status


def wait_producers(done, procs, deadline):
    """Until the last producer is done; a producer that exits with an error fails the run."""
    while not done.wait(0.05):
        bad = [s for s in map(exited, procs) if s]
        if bad:
            raise RuntimeError("producer exit status %s" % bad)
        if time.monotonic() > deadline:
            raise Hang("the producers did not finish in time")


def finish(impl, q, procs, ok):
    if not ok:
        impl.abandon(q)
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join(5)


def others_load(c0, c1, seconds):
    """The share of the machine's CPU that processes other than this run's used, or None."""
    if not (c0 and c1) or seconds <= 0:
        return None
    busy, ours = c1[0] - c0[0], c1[1] - c0[1]
    return min(1.0, max(0.0, (busy - ours) / os.sysconf("SC_CLK_TCK") / (seconds * (os.cpu_count() or 1))))



def start_together(procs, barrier, limit):
    """Start procs under the alarm; once every one met at the barrier: (pids, their CPU ticks and the
    wall time before the start, the start time)."""
    for p in procs:
        p.start()
    signal.alarm(limit)
    pids = [os.getpid()] + [p.pid for p in procs]
    c0, w0 = cpu_ticks(pids), time.monotonic()
    barrier.wait(limit)
    return pids, c0, w0, time.monotonic()


def join_checked(procs, errors):
    """Join procs (the alarm off after), then raise with what the consumers reported and bad exits."""
    for p in procs:
        p.join(10)
    signal.alarm(0)
    errors = errors + ["process %d exit code %s" % (p.pid, p.exitcode) for p in procs if p.exitcode != 0]
    if errors:
        raise RuntimeError("; ".join(errors))

def run_queue(impl, producers, consumers, batch, args, n):
    """One run of configuration (producers, consumers): (messages/s, others' CPU share or None)."""
    q = impl.make(args.queue_bytes, args.mpq_maxsize)
    limit = args.time_limit
    finished, done = CTX.Value("i", 0), CTX.Event()
    barrier = CTX.Barrier(producers + consumers + 1)
    results = CTX.SimpleQueue()
    cons = [CTX.Process(target=consumer, args=(impl, q, i, batch, barrier, results, limit + 10))
            for i in range(consumers)]
    prods = [CTX.Process(target=producer, args=(impl, q, i, n, barrier, finished, done, producers, limit + 10))
             for i in range(producers)]
    procs = cons + prods
    ok = False
    try:
        pids, c0, w0, t0 = start_together(procs, barrier, limit)
        wait_producers(done, prods, t0 + limit)
        for _ in range(consumers):
            q.put(END)
        got = [results.get() for _ in range(consumers)]  # the alarm bounds the wait
        c1, w1 = cpu_ticks(pids), time.monotonic()
        join_checked(procs, ["consumer %d: %s" % (g[0], g[4]) for g in got if g[4]])
        total = producers * n
        count, acc = sum(g[1] for g in got), sum(g[2] for g in got)
        want = total * (total - 1) // 2
        if count != total or acc != want:
            raise RuntimeError("the consumers received %d messages (msg[0] sum %d), the producers sent %d (sum %d): "
                               "messages lost, duplicated or corrupted" % (count, acc, total, want))
        impl.flush(q)
        ok = True
        t1 = max(g[3] for g in got)
        return total / (t1 - t0), others_load(c0, c1, w1 - w0)
    finally:
        signal.alarm(0)
        finish(impl, q, procs, ok)


def frame_producer(impl, q, n, warm, pool, barrier, limit):
    """warm frames before the barrier (numbered -warm ... -1), n after it (0 ... n-1)."""
    signal.alarm(limit)
    put = q.put
    k = len(pool)
    for i in range(-warm, n):
        if i == 0:
            barrier.wait()
        f = pool[i % k]
        f[0] = i
        f[-1] = i
        put(f)
    impl.flush(q)


def frame_consumer(q, n, warm, words, barrier, results, limit):
    signal.alarm(limit)
    try:
        get = q.get
        i = -warm
        while i < n:
            if i == 0:
                barrier.wait()
            try:
                f = get()
            except Empty:  # the queue's own default timeout (faster-fifo: 10 s)
                continue
            if f.shape != (words,) or f[0] != i or f[-1] != i:
                raise RuntimeError("frame %d: shape %s, frame[0] %d, frame[-1] %d" % (i, f.shape, f[0], f[-1]))
            i += 1
        results.put((i, time.monotonic(), None))
    except BaseException as e:
        results.put((0, 0.0, "%s: %s" % (type(e).__name__, e)))


def run_frames(impl, args, n):
    """One run of n frames: (frames/s, others' CPU share or None)."""
    words = FRAME_BYTES // 8
    depth = args.frame_depth
    q = impl.make(depth * (FRAME_BYTES + 4096), depth)
    # A pool of frames the producer writes in turn: none is written again while the queue
    # may still hold it (mp.Queue pickles in a feeder thread, after put has returned).
    pool = [np.arange(words, dtype=np.int64) for _ in range(depth + 2)]
    limit = args.time_limit
    barrier = CTX.Barrier(3)
    results = CTX.SimpleQueue()
    warm = 2 * depth
    procs = [CTX.Process(target=frame_consumer, args=(q, n, warm, words, barrier, results, limit + 10)),
             CTX.Process(target=frame_producer, args=(impl, q, n, warm, pool, barrier, limit + 10))]
    ok = False
    try:
        pids, c0, w0, t0 = start_together(procs, barrier, limit)
        got, t1, err = results.get()
        c1, w1 = cpu_ticks(pids), time.monotonic()
        join_checked(procs, ["consumer: " + err] if err else [])
        ok = True
        return got / (t1 - t0), others_load(c0, c1, w1 - w0)
    finally:
        signal.alarm(0)
        finish(impl, q, procs, ok)


def memcpy_rate(seconds):
    """np.copyto of one 1 MiB frame into another, one thread: frames/s over ~seconds."""
    words = FRAME_BYTES // 8
    src = np.arange(words, dtype=np.int64)
    dst = np.empty_like(src)
    for _ in range(20):  # warm: both frames in cache, pages faulted in
        np.copyto(dst, src)
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(50):
            np.copyto(dst, src)
        n += 50
        t = time.perf_counter() - t0
        if t >= seconds:
            return n / t


# --- rounds, rows, tables --------------------------------------------------------------------

def measure_rows(todo, fixed, args, failures):
    """todo: [(label, run, prior, per)], run(n) -> (rate, load) of one run of n (per
    producer), prior: a rough rate, only to size the warm-up run, per: the rate's share of
    one producer. Each row is sized by a warm-up run of about a quarter of --seconds (or
    takes n = fixed), then runs --runs times, in rounds: every row once per round, so that
    a change in the load of this shared machine falls on every row alike. Returns
    [(n, rates, loads, ok)]; a failed run is recorded in failures and ends its row."""

    def attempt(i, n):
        try:
            return todo[i][1](n)
        except Exception as e:
            failures.append("%s: %s: %s" % (todo[i][0], type(e).__name__, e))
            print("    FAILED %s: %s: %s" % (todo[i][0], type(e).__name__, e), flush=True)
            return None

    out = []
    for i, (_, _, prior, per) in enumerate(todo):
        if fixed:
            out.append((fixed, [], [], True))
            continue
        got = attempt(i, max(1, int(prior * args.seconds / 4 / per)))
        out.append((max(1, int(round(got[0] * args.seconds / per))) if got else 0, [], [], got is not None))
    for _ in range(args.runs):
        for i, (n, rates, loads, ok) in enumerate(out):
            if not ok:
                continue
            got = attempt(i, n)
            if got is None:
                out[i] = (n, rates, loads, False)
                continue
            rates.append(got[0])
            if got[1] is not None:
                loads.append(got[1])
    return out


def row_of(base, rates, loads, ok):
    med = statistics.median(rates) if rates else None
    row = dict(base)
    row.update({
        "records_per_s": med, "bytes_per_s": med * base["record_size"] if med else None,
        "runs": len(rates), "runs_records_per_s": [round(r, 1) for r in rates],
        "spread": round((max(rates) - min(rates)) / med, 3) if med else None,
        "other_cpu_load": round(statistics.median(loads), 3) if loads else None, "ok": ok,
    })
    return row


def f_ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def queue_part(impls, mine, configs, args, base, failures):
    rows = []
    cpus = os.cpu_count() or 1
    msg_rs = message_bytes(10 ** 5)
    for producers, consumers in configs:
        oversub = producers + consumers > cpus
        print("queue %d→%d: %d producer process%s -> %d consumer process%s%s" % (
            producers, consumers, producers, "es" if producers > 1 else "", consumers, "es" if consumers > 1 else "",
            " (oversubscribed: %d processes on %d CPUs)" % (producers + consumers, cpus) if oversub else ""),
            flush=True)
        todo = [(impl, mode, batch or args.get_many) for mode, batch in MODES for impl in impls]
        got = measure_rows([("queue %d→%d %s %s" % (producers, consumers, impl.name, mode),
                             functools.partial(run_queue, impl, producers, consumers, batch, args),
                             PRIOR.get(impl.row, PRIOR_OTHER), producers) for impl, mode, batch in todo],
                           args.messages, args, failures)
        for (impl, mode, batch), (n, rr, ll, ok) in zip(todo, got):
            if batch == 1:
                path, call = "put/get", "get()"
            elif impl.get_many:
                path, call = "put/get_many", "get_many(max_messages_to_get=%d)" % batch
            else:
                path, call = "put/get (no get_many)", "get() in a loop (no get_many)"
            row = dict(base, impl=impl.row, path=path,
                       scenario="queue %d→%d" % (producers, consumers), record_size=msg_rs, batch=batch,
                       producers=producers, consumers=consumers, mode=mode, consumer_call=call,
                       get_many_max=batch if batch > 1 else None, messages=producers * n, messages_per_producer=n,
                       message="(i,) * %d" % MSG_FIELDS, oversubscribed=oversub,
                       label="%s %s" % (impl.name, "put/" + call))
            rows.append(row_of(row, rr, ll, ok))
        print_config(rows[-len(todo):], mine)
    return rows


def print_config(rows, mine):
    print("    %-11s %-52s %12s %7s %9s %5s %7s %7s" % ("mode", "queue / consumer call", "messages/s", "x mine",
                                                      "messages", "runs", "spread", "others"))
    by = {(r["mode"], r["impl"]): r for r in rows}
    for r in rows:
        m = by.get((r["mode"], mine.row)) if mine else None
        print("    %-11s %-52s %12s %7s %9d %5d %7s %7s" % (
            r["mode"], r["label"], fmt_rate(r["records_per_s"]) if r["records_per_s"] else "FAILED",
            f_ratio(m and m["records_per_s"], r["records_per_s"]) if m is not None and r is not m else "",
            r["messages"], r["runs"], "%.0f%%" % (100 * r["spread"]) if r["spread"] is not None else "-",
            "%.0f%%" % (100 * r["other_cpu_load"]) if r["other_cpu_load"] is not None else "-"))
    print(flush=True)


def summary(rows, mine):
    """The table of the brief: per mode, one line per configuration."""
    name = mine.name if mine else "ringmpsc.Queue"
    row = mine.row if mine else "ringmpsc"
    print("summary: messages/s per configuration; ratios of %s" % name)
    for mode, _ in MODES:
        mrows = [r for r in rows if r.get("mode") == mode]
        scen = list(dict.fromkeys(r["scenario"] for r in mrows))
        print("  %s (%s)" % (mode, "get()" if mode == "per message" else
                             "get_many(max_messages_to_get=%d); mp.Queue: get() in a loop" % mrows[0]["batch"]
                             if mrows else ""))
        print("    %-12s %14s %14s %14s %18s %18s" % ("config", name[:14], "faster-fifo", "mp.Queue",
                                                    "mine / faster-fifo", "mine / mp.Queue"))
        rff, rmq = [], []
        for s in scen:
            by = {r["impl"]: r["records_per_s"] for r in mrows if r["scenario"] == s}
            m, ff, mq = by.get(row), by.get("faster-fifo"), by.get("mp.Queue")
            if m and ff:
                rff.append(m / ff)
            if m and mq:
                rmq.append(m / mq)
            print("    %-12s %14s %14s %14s %18s %18s" % (
                s[len("queue "):], fmt_rate(m) if m else "-", fmt_rate(ff) if ff else "-",
                fmt_rate(mq) if mq else "-", f_ratio(m, ff), f_ratio(m, mq)))
        print("    %-12s %14s %14s %14s %18s %18s" % (
            "median", "", "", "", "%.2fx" % statistics.median(rff) if rff else "-",
            "%.2fx" % statistics.median(rmq) if rmq else "-"))
    print(flush=True)


def frames_part(impls, args, base, failures):
    print("frames: 1 producer process -> 1 consumer process, 1 MiB frames (NumPy int64), put(frame) / get(), queue "
          "depth %d frames; the consumer checks frame[0] and frame[-1] of every frame" % args.frame_depth, flush=True)
    got = measure_rows([("frames %s" % impl.name, functools.partial(run_frames, impl, args),
                         FRAME_PRIOR.get(impl.row, FRAME_PRIOR_OTHER), 1) for impl in impls], args.frames, args,
                       failures)
    mem = [memcpy_rate(args.seconds) for _ in range(args.runs)]
    common = dict(base, scenario="frames", record_size=FRAME_BYTES, batch=1, producers=1, consumers=1,
                  frame_bytes=FRAME_BYTES, oversubscribed=2 > (os.cpu_count() or 1))
    rows = []
    for impl, (n, rr, ll, ok) in zip(impls, got):
        rows.append(row_of(dict(common, impl=impl.row, path="put/get", label="%s put/get" % impl.name,
                                queue_depth=args.frame_depth, messages=n), rr, ll, ok))
    mrow = row_of(dict(common, impl="memcpy", path="np.copyto 1 MiB, 1 thread", label="memcpy (np.copyto)",
                       consumers=0, processes=False, oversubscribed=False, messages=None), mem, [], True)
    rows.append(mrow)
    mc = mrow["bytes_per_s"]
    print("    %-26s %12s %9s %14s %7s %5s %7s %7s" % ("queue / path", "frames/s", "GB/s", "x memcpy", "frames",
                                                       "runs", "spread", "others"))
    for r in rows:
        fps, bps = r["records_per_s"], r["bytes_per_s"]
        print("    %-26s %12s %9s %14s %7s %5d %7s %7s" % (
            r["label"], "%.1f" % fps if fps else "FAILED", "%.2f" % (bps / 1e9) if bps else "-",
            f_ratio(bps, mc) if r is not mrow else "", r["messages"] or "", r["runs"],
            "%.0f%%" % (100 * r["spread"]) if r["spread"] is not None else "-",
            "%.0f%%" % (100 * r["other_cpu_load"]) if r["other_cpu_load"] is not None else "-"))
    print(flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="one run of ~0.1 s per row (about 10 s on 2 cores)")
    ap.add_argument("--json", metavar="FILE", help="write one JSON row per line to FILE")
    ap.add_argument("--configs", help="producers:consumers pairs, comma-separated (default 1:1,1:10,10:1,3:20,20:3,"
                                      "20:20)")
    ap.add_argument("--seconds", type=float, help="target length of one run, each row sized by a warm-up run "
                                                  "(default 0.4; --quick 0.1)")
    ap.add_argument("--messages", type=int, help="messages per producer in every run of every row (default: sized "
                                                 "by --seconds)")
    ap.add_argument("--runs", type=int, help="measured runs per row (default 3; --quick 1)")
    ap.add_argument("--get-many", type=int, default=1000, help="max_messages_to_get of the batched mode "
                                                               "(default 1000)")
    ap.add_argument("--queue-bytes", type=int, default=1000000, help="max_size_bytes of ringmpsc.Queue and "
                                                                     "faster-fifo (default 1000000, their default)")
    ap.add_argument("--mpq-maxsize", type=int, default=100000, help="maxsize of multiprocessing.Queue (default "
                                                                    "100000, as faster-fifo's comparison)")
    ap.add_argument("--maxsize", type=int, default=0, help="maxsize of ringmpsc.Queue and faster-fifo (default: "
                                                           "none, unbounded)")
    ap.add_argument("--frames", type=int, help="1 MiB frames in every run (default: sized by --seconds)")
    ap.add_argument("--frame-depth", type=int, default=4, help="frames the frame queue holds (default 4)")
    ap.add_argument("--parts", default="queue,frames", help="any of queue,frames (default both)")
    ap.add_argument("--impls", help="only these queues (comma-separated rows' impl: ringmpsc,faster-fifo,mp.Queue)")
    ap.add_argument("--candidate", metavar="MODULE:NAME", help="measure this class in ringmpsc.Queue's place")
    ap.add_argument("--time-limit", type=int, default=60, help="seconds one run may take before it fails "
                                                               "(default 60)")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.seconds is None:
        args.seconds = 0.1 if args.quick else 0.4
    configs = CONFIGS
    if args.configs:
        try:
            configs = [tuple(int(x) for x in c.split(":")) for c in args.configs.split(",")]
        except ValueError:
            ap.error("--configs: producers:consumers pairs, e.g. 1:1,20:3")
        if any(len(c) != 2 or min(c) < 1 for c in configs):
            ap.error("--configs: producers:consumers pairs of counts >= 1")
    parts = args.parts.split(",")
    if set(parts) - {"queue", "frames"}:
        ap.error("--parts: any of queue,frames")
    if args.runs < 1 or args.get_many < 2 or args.frame_depth < 1 or args.time_limit < 1 or args.seconds <= 0 or \
            min(args.messages or 1, args.frames or 1) < 1:
        ap.error("--runs, --messages, --frames, --frame-depth, --time-limit must be >= 1, --seconds > 0, "
                 "--get-many >= 2")

    if args.maxsize < 0:
        ap.error("--maxsize must be >= 0")
    if args.maxsize:
        MAXSIZE["maxsize"] = args.maxsize
    mine = candidate(args.candidate)
    impls = [i for i in ([mine] if mine else []) + peers() if not args.impls or i.row in args.impls.split(",")]
    cpus = os.cpu_count() or 1
    print("ringmpsc Python queues: the drop-in for faster_fifo.Queue, faster-fifo's comparison configurations and "
          "message; every consumer reads every message (sums msg[0]), totals checked")
    print("python %s, %s, %d CPUs; median of %d run%s of ~%.2fs per row, taken in rounds over the rows; ratios "
          "compare rows of this run\n" % (platform.python_version(), platform.machine(), cpus, args.runs,
                                         "s" if args.runs > 1 else "", args.seconds))
    if mine is None:
        print("ringmpsc.Queue: not available")
    elif args.candidate:
        print("%s: measured in ringmpsc.Queue's place (--candidate)" % mine.name)
    else:
        print("ringmpsc.Queue: %s" % ringmpsc.__file__)
    if args.maxsize:
        print("maxsize=%d for ringmpsc.Queue and faster-fifo (--maxsize)" % args.maxsize)
    if faster_fifo is None:
        print("not installed (rows skipped): faster-fifo; run scripts/ensure-deps.sh bench")
    print()

    signal.signal(signal.SIGALRM, _alarm)
    base = {"suite": "python", "processes": True, "reads_data": True, "p50_ns": None, "p99_ns": None,
            "python": platform.python_version(), "cpus": cpus}
    if args.maxsize:
        base["maxsize"] = args.maxsize
    rows, failures = [], []
    start = time.perf_counter()
    if "queue" in parts:
        rows += queue_part(impls, mine, configs, args, base, failures)
        summary(rows, mine)
    if "frames" in parts:
        if np is None:
            print("frames: skipped, numpy is not installed (scripts/ensure-deps.sh bench)\n")
        else:
            rows += frames_part(impls, args, base, failures)
    print("total %.1fs" % (time.perf_counter() - start))
    if args.json:
        with open(args.json, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        print("wrote %d rows to %s" % (len(rows), args.json))
    if failures:
        print("FAILED: %d row%s: %s" % (len(failures), "s" if len(failures) > 1 else "", "; ".join(failures)))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
