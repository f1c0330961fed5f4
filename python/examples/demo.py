"""ringmpsc demo: producer processes feed one consumer; every record is verified.

    build/venv/bin/python python/examples/demo.py [--producers 4] [--records 100000]

Each producer process sends --records 64-byte records carrying (producer, sequence,
payload, crc32). The consumer checks every one: the checksum, and that each
producer's sequence arrives complete, once and in order. The same work then runs
over multiprocessing.Queue in the same run, and records/s are printed side by side.
Exits 1 on any integrity error.
"""
import argparse
import multiprocessing as mp
import os
import struct
import sys
import time
import zlib

import ringmpsc

RS = 64
HEAD = struct.Struct("<II")  # producer, sequence
CRC = struct.Struct("<I")  # crc32 of bytes 0..59, stored at 60..63
BATCH = 256


def payloads(pid):
    """16 distinct 52-byte payloads per producer (so the checksum covers varying bytes)."""
    rnd = __import__("random").Random(pid)
    return [bytes(rnd.getrandbits(8) for _ in range(52)) for _ in range(16)]


def make(pid, seq, pl):
    body = HEAD.pack(pid, seq) + pl[seq & 15]
    return body + CRC.pack(zlib.crc32(body))


class Verifier:
    def __init__(self, producers):
        self.next = [0] * producers
        self.errors = 0

    def check(self, rec):
        pid, seq = HEAD.unpack_from(rec)
        if zlib.crc32(rec[:60]) != CRC.unpack_from(rec, 60)[0]:
            self.fail("checksum mismatch (producer %d seq %d)" % (pid, seq))
        if pid >= len(self.next):
            self.fail("unknown producer %d" % pid)
            return
        if seq != self.next[pid]:
            self.fail("producer %d: seq %d, expected %d (lost, duplicated or reordered)" % (pid, seq, self.next[pid]))
        self.next[pid] = seq + 1  # resynchronise: one error per fault, not a cascade

    def check_many(self, data):
        mv = memoryview(data)
        for off in range(0, len(mv), RS):
            self.check(mv[off:off + RS])

    def fail(self, msg):
        self.errors += 1
        if self.errors <= 5:
            print("  INTEGRITY ERROR: " + msg, file=sys.stderr)


# --- producers (child processes) -----------------------------------------------------

def ring_producer(ch, pid, n, batched, go):
    pl = payloads(pid)
    with ch.producer() as p:
        go.wait()
        if batched:
            for first in range(0, n, BATCH):
                k = min(BATCH, n - first)
                p.send_many(b"".join(make(pid, first + i, pl) for i in range(k)))
        else:
            for seq in range(n):
                p.send(make(pid, seq, pl))


def queue_producer(q, pid, n, batched, go):
    pl = payloads(pid)
    go.wait()
    if batched:
        for first in range(0, n, BATCH):
            k = min(BATCH, n - first)
            q.put(b"".join(make(pid, first + i, pl) for i in range(k)))
    else:
        for seq in range(n):
            q.put(make(pid, seq, pl))


# --- one run -------------------------------------------------------------------------

def run(kind, batched, producers, n):
    ctx = mp.get_context("fork")
    go = ctx.Event()
    total = producers * n
    v = Verifier(producers)
    if kind == "ringmpsc":
        ch = ringmpsc.Channel(RS, capacity=4096, max_producers=producers)
        target, carrier = ring_producer, ch
    else:
        q = ctx.Queue(maxsize=10000)
        target, carrier = queue_producer, q
    procs = [ctx.Process(target=target, args=(carrier, i, n, batched, go)) for i in range(producers)]
    for p in procs:
        p.start()
    time.sleep(0.2)  # let every producer register and wait at the start line
    t0 = time.perf_counter()
    go.set()
    got = 0
    deadline = time.monotonic() + 120
    while got < total:
        if time.monotonic() > deadline:
            v.fail("only %d of %d records arrived" % (got, total))
            break
        if kind == "ringmpsc":
            if batched:
                data = ch.recv_many(timeout=10)
                v.check_many(data)
                got += len(data) // RS
            else:
                v.check(ch.recv(timeout=10))
                got += 1
        else:
            data = q.get(timeout=10)
            v.check_many(data) if batched else v.check(data)
            got += len(data) // RS
    secs = time.perf_counter() - t0
    for p in procs:
        p.join(30)
        if p.exitcode != 0:
            v.fail("producer exited with %s" % p.exitcode)
    if kind == "ringmpsc":
        if len(ch) != 0:
            v.fail("%d records left over" % len(ch))
        ch.close()
    if v.next != [n] * producers:
        v.fail("per-producer sequences end at %s, expected %d each" % (v.next, n))
    return total / secs, v.errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--records", type=int, default=100_000, help="records per producer")
    args = ap.parse_args()
    P, N = args.producers, args.records
    print("ringmpsc demo: %d producer processes -> 1 consumer process, %d-byte records, %d per producer"
          % (P, RS, N))
    print("every record verified: crc32, and each producer's sequence complete, once, in order")
    print("(%d CPUs here; the consumer is one Python process doing the checking)\n" % os.cpu_count())
    rows = [
        ("ringmpsc  send / recv          (one record per call)", "ringmpsc", False),
        ("mp.Queue  put / get            (one record per call)", "queue", False),
        ("ringmpsc  send_many / recv_many (%d-record batches)" % BATCH, "ringmpsc", True),
        ("mp.Queue  put / get            (%d-record batches)" % BATCH, "queue", True),
    ]
    print("  %-54s %12s %8s  %s" % ("path", "records/s", "MB/s", "integrity"))
    rates = {}
    errors = 0
    for label, kind, batched in rows:
        rate, errs = run(kind, batched, P, N)
        rates[(kind, batched)] = rate
        errors += errs
        print("  %-54s %12s %8.1f  %s" % (label, "{:,.0f}".format(rate), rate * RS / 1e6,
                                          "ok" if not errs else "%d ERRORS" % errs), flush=True)
    print()
    for batched, what in ((False, "per record"), (True, "batched")):
        print("  ringmpsc / multiprocessing.Queue, %-10s: %.1fx" % (what, rates[("ringmpsc", batched)]
                                                                    / rates[("queue", batched)]))
    if errors:
        print("\nFAIL: %d integrity errors" % errors)
        return 1
    print("\nOK: %d records verified per path" % (P * N))
    return 0


if __name__ == "__main__":
    sys.exit(main())
