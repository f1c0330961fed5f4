"""ringmpsc Python benchmark: records/s across processes, per API path, 64-byte records.

    PYTHONPATH=build/python-site python3 benchmarks/python/bench.py [--producers 1,2]
        [--seconds 1.5] [--batch 64] [--record-size 64]

Producer processes (fork) send records; the consumer (this process) reads every
record: it sums a u32 field of each one and the sum is checked at the end. Paths:

  send / recv             one record per call on both sides
  send_many / recv_into   --batch records per producer call; recv_into a preallocated buffer
  reserve / read          zero-copy on both sides: write into the ring, read in place
  mp.Queue put / get      the stdlib peer, one record per call (pickle + pipe + feeder thread)
  mp.Queue batched        the peer with --batch records joined into one bytes per put
  bytes copy              yardstick: copying the same bytes in --batch-record chunks in one process

Each row runs for about --seconds: producers send until told to stop; the rate is
records consumed / time from start to the last record. Timings on a shared 2-core
machine are noisy: compare rows of one run, not numbers across runs.
"""
import argparse
import multiprocessing as mp
import os
import struct
import sys
import time

import ringmpsc

SEQ = struct.Struct("<I")


def records(rs, count, pid):
    """`count` records: u32 producer id, u32 value (summed by the consumer), filler."""
    return [struct.pack("<II", pid, i) + bytes(rs - 8) for i in range(count)]


def value_sum(count):
    return sum(range(count))


# --- producers -------------------------------------------------------------------------
# Each sends whole cycles of `cycle` records (values 0..cycle-1) until `stop` is set,
# then reports how many records it sent through `sent`.

def prod_send(ch, pid, cycle, batch, go, stop, sent):
    recs = records(ch.record_size, cycle, pid)
    n = 0
    with ch.producer() as p:
        go.wait()
        send = p.send
        while not stop.is_set():
            for r in recs:
                send(r)
            n += cycle
    sent.put(n)


def prod_send_many(ch, pid, cycle, batch, go, stop, sent):
    rs = ch.record_size
    blob = b"".join(records(rs, cycle, pid))
    chunks = [blob[i:i + batch * rs] for i in range(0, len(blob), batch * rs)]
    n = 0
    with ch.producer() as p:
        go.wait()
        send_many = p.send_many
        while not stop.is_set():
            for c in chunks:
                send_many(c)
            n += cycle
    sent.put(n)


def prod_reserve(ch, pid, cycle, batch, go, stop, sent):
    rs = ch.record_size
    blob = b"".join(records(rs, cycle, pid))
    n = 0
    with ch.producer() as p:
        go.wait()
        reserve = p.reserve
        while not stop.is_set():
            off = 0
            while off < cycle:
                r = reserve(min(batch, cycle - off))
                k = len(r)
                with memoryview(r) as v:
                    v[:] = blob[off * rs:(off + k) * rs]  # write in place
                r.commit()
                off += k
            n += cycle
    sent.put(n)


def prod_queue(q, pid, cycle, batch, go, stop, sent, rs):
    recs = records(rs, cycle, pid)
    n = 0
    go.wait()
    put = q.put
    if batch == 1:
        while not stop.is_set():
            for r in recs:
                put(r)
            n += cycle
    else:
        blob = b"".join(recs)
        chunks = [blob[i:i + batch * rs] for i in range(0, len(blob), batch * rs)]
        while not stop.is_set():
            for c in chunks:
                put(c)
            n += cycle
    sent.put(n)


# --- consumers -------------------------------------------------------------------------

def field_sum(mv, rs):
    """Sum the u32 at offset 4 of every record in a bytes-like of whole records."""
    return sum(mv.cast("I")[1::rs // 4]) if rs % 4 == 0 else sum(
        SEQ.unpack_from(mv, off + 4)[0] for off in range(0, len(mv), rs))


def run_row(path, producers, rs, batch, seconds, cycle):
    ctx = mp.get_context("fork")
    go, stop, sent = ctx.Event(), ctx.Event(), ctx.Queue()
    is_queue = path.startswith("queue")
    if is_queue:
        q = ctx.Queue(maxsize=4096)
        qbatch = batch if path == "queue_batched" else 1
        procs = [ctx.Process(target=prod_queue, args=(q, i, cycle, qbatch, go, stop, sent, rs))
                 for i in range(producers)]
    else:
        ch = ringmpsc.Channel(rs, capacity=4096, max_producers=producers)
        target = {"send": prod_send, "send_many": prod_send_many, "reserve": prod_reserve}[path]
        procs = [ctx.Process(target=target, args=(ch, i, cycle, batch, go, stop, sent)) for i in range(producers)]
    for p in procs:
        p.start()
    time.sleep(0.3)
    got = 0
    total = 0
    buf = bytearray(rs * batch)
    t0 = time.perf_counter()
    go.set()
    end = t0 + seconds
    stopped = False
    while True:
        if not stopped and time.perf_counter() >= end:
            stop.set()
            stopped = True
        try:
            if path == "send":
                rec = ch.recv(timeout=0.5)
                total += SEQ.unpack_from(rec, 4)[0]
                got += 1
            elif path == "send_many":
                n = ch.recv_into(buf, timeout=0.5)
                total += field_sum(memoryview(buf)[:n * rs], rs)
                got += n
            elif path == "reserve":
                with ch.read(batch, timeout=0.5) as view:
                    total += field_sum(view, rs)
                    got += len(view) // rs
            else:
                data = q.get(timeout=0.5)
                total += field_sum(memoryview(data), rs)
                got += len(data) // rs
        except (ringmpsc.Empty, __import__("queue").Empty):
            if stopped and all(not p.is_alive() for p in procs):
                break
            continue
        last = time.perf_counter()
    sent_total = sum(sent.get(timeout=10) for _ in procs)
    for p in procs:
        p.join(10)
    if got != sent_total or total != value_sum(cycle) * (got // cycle):
        raise SystemExit("%s: consumed %d records (field sum %d) of %d sent: integrity error"
                         % (path, got, total, sent_total))
    return got / (last - t0)


def run_copy(rs, batch, seconds):
    """Yardstick: copy the same bytes in batch-sized chunks within one process."""
    src = bytes(rs * 4096)
    dst = bytearray(rs * batch)
    step = rs * batch
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for off in range(0, len(src), step):
            dst[:] = src[off:off + step]
        n += 4096
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--producers", default="1,2", help="comma-separated producer counts")
    ap.add_argument("--seconds", type=float, default=1.5, help="duration of each row")
    ap.add_argument("--batch", type=int, default=64, help="records per batch call")
    ap.add_argument("--record-size", type=int, default=64)
    ap.add_argument("--paths", default="send,send_many,reserve,queue,queue_batched")
    args = ap.parse_args()
    rs, batch = args.record_size, args.batch
    cycle = 64 * batch  # whole cycles keep the expected field sum exact
    labels = {
        "send": "ringmpsc send / recv",
        "send_many": "ringmpsc send_many / recv_into (batch %d)" % batch,
        "reserve": "ringmpsc reserve / read (batch %d, zero-copy)" % batch,
        "queue": "mp.Queue put / get",
        "queue_batched": "mp.Queue put / get (batch %d joined)" % batch,
    }
    print("ringmpsc Python benchmark: %d-byte records, consumer reads every record (sums a field)" % rs)
    print("python %s, %d CPUs, %.1fs per row; ratios are against mp.Queue put/get with the same producers\n"
          % (sys.version.split()[0], os.cpu_count(), args.seconds))
    print("  %-48s %9s %14s %9s %8s" % ("path", "producers", "records/s", "MB/s", "vs Queue"))
    for producers in [int(x) for x in args.producers.split(",")]:
        rates = {}
        for path in args.paths.split(","):
            rates[path] = run_row(path, producers, rs, batch, args.seconds, cycle)
        base = rates.get("queue")
        for path, rate in rates.items():
            print("  %-48s %9d %14s %9.1f %8s" % (labels[path], producers, "{:,.0f}".format(rate), rate * rs / 1e6,
                                               "%.1fx" % (rate / base) if base else "-"), flush=True)
    rate = run_copy(rs, batch, args.seconds)
    print("  %-48s %9s %14s %9.1f %8s" % ("yardstick: bytes copy in one process (batch %d)" % batch, "-",
                                          "{:,.0f}".format(rate), rate * rs / 1e6, "-"))


if __name__ == "__main__":
    main()
