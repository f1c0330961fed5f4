"""The consumer of benchmarks/nginx_logging: drains the channel nginx logs into.

    consumer.py serve NAME --mode blocking|poll --ready FILE --out FILE [--coalesce R:D]
                      [--format binary|text]
        create the named channel (64-byte records), join as its consumer (with
        ch.set_coalesce(R, D seconds) when --coalesce is given, else the defaults),
        touch FILE when ready, then read until the channel is closed and drained:
          blocking  ch.recv_many(timeout=None) in a loop
          poll      ch.recv_many(timeout=0); when empty, time.sleep(0.005)
        Every record is checked: binary (logger.lua's layout): magic, check word;
        text (resty_logger.lua's line "pid seq status time addr method uri", zero-
        filled): its fields; and each worker's sequence numbers 1, 2, 3, ... with no
        gap, repeat or reordering. Writes a JSON summary to
        --out: records, per worker pid the last sequence number, bad records, the
        consumer's CPU time, the coalescing it ran with, and removes the name.
    consumer.py close NAME
        close the channel (the consumer drains it, then ends).

Run by benchmarks/nginx_logging/run.sh.
"""
import argparse
import json
import os
import re
import resource
import struct
import sys
import time

import ringmpsc

REC = struct.Struct("<IIQIIdQ24s")
MAGIC = 0x4C58474E
CHECK_MUL = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
POLL_SLEEP = 0.005
TEXT = re.compile(rb"(\d+) (\d+) 200 [\d.]+ 127\.0\.0\.1 GET /\x00+")
TEXT_BATCH = re.compile(rb"(?:\d+ \d+ 200 [\d.]+ 127\.0\.0\.1 GET /\x00+)*")


def check_binary(data, last, out):
    for magic, pid, seq, _status, _len, _t, check, _uri in REC.iter_unpack(data):
        out.records += 1
        if magic != MAGIC or check != (seq * CHECK_MUL + pid) & MASK or seq != last.get(pid, 0) + 1:
            out.fail("record %d: magic %#x pid %d seq %d (expected %d)" % (
                out.records, magic, pid, seq, last.get(pid, 0) + 1))
        last[pid] = seq


def check_text(data, last, out):
    """Every byte of the batch belongs to a well-formed record (one regular expression over
    the batch), one record per 64 bytes, and each worker's sequence numbers follow on."""
    n = len(data) // REC.size
    found = TEXT.findall(data) if TEXT_BATCH.fullmatch(data) else []
    if len(found) != n:
        for i in range(0, len(data), REC.size):  # find the first bad one
            out.records += 1
            if not TEXT.fullmatch(data, i, i + REC.size):
                out.fail("record %d: %r" % (out.records, data[i:i + REC.size]))
        return
    cur = expect = None
    for pid, seq in found:
        if pid != cur:
            if cur is not None:
                last[cur] = expect - 1
            cur, expect = pid, last.get(pid, 0) + 1
        seq = int(seq)
        if seq != expect:
            out.fail("record %d: pid %s seq %d (expected %d)" % (out.records + 1, pid.decode(), seq, expect))
            expect = seq
        expect += 1
        out.records += 1
    if cur is not None:
        last[cur] = expect - 1


class Tally:
    def __init__(self):
        self.records = self.bad = 0
        self.first_bad = None

    def fail(self, what):
        self.bad += 1
        if self.first_bad is None:
            self.first_bad = what


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def serve(args):
    ch = ringmpsc.Channel(REC.size, capacity=args.capacity, max_producers=args.max_producers, name=args.name)
    try:
        ch.recv_many(timeout=0)  # joins as the consumer (nothing is there yet)
    except ringmpsc.Empty:
        pass
    if args.coalesce:
        if not hasattr(ch, "set_coalesce"):
            sys.exit("consumer.py: this ringmpsc has no Channel.set_coalesce (--coalesce)")
        records, delay = args.coalesce.split(":")
        ch.set_coalesce(int(records), float(delay))
    last = {}  # worker pid -> last sequence number
    tally = Tally()
    check = check_text if args.format == "text" else check_binary
    with open(args.ready, "w") as f:
        f.write("%d\n" % os.getpid())
    cpu0, t0 = cpu_s(), time.monotonic()
    blocking = args.mode == "blocking"
    while True:
        try:
            data = ch.recv_many(timeout=None) if blocking else ch.recv_many(timeout=0)
        except ringmpsc.Empty:
            time.sleep(POLL_SLEEP)
            continue
        except ringmpsc.Closed:
            break
        check(data, last, tally)
    records, bad, first_bad = tally.records, tally.bad, tally.first_bad
    out = {"records": records, "bad": bad, "first_bad": first_bad, "workers": {str(int(k)): v for k, v in last.items()},
           "cpu_s": cpu_s() - cpu0, "wall_s": time.monotonic() - t0, "mode": args.mode}
    # A binding without coalescing (before 0.4) runs the old way: a wake-up per first record.
    out["coalesce"] = list(ch.coalesce) if hasattr(ch, "coalesce") else None
    with open(args.out, "w") as f:
        json.dump(out, f)
    ringmpsc.unlink(args.name)
    return 0


def close(args):
    ringmpsc.Channel.open(args.name).close()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    s.add_argument("--mode", choices=("blocking", "poll"), required=True)
    s.add_argument("--ready", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--coalesce", help="R:D: set_coalesce(R records, D seconds) (default: the core's defaults)")
    s.add_argument("--format", choices=("binary", "text"), default="binary",
                   help="the records: logger.lua's binary layout, or resty_logger.lua's text line")
    s.add_argument("--capacity", type=int, default=8192)
    s.add_argument("--max-producers", type=int, default=8)
    c = sub.add_parser("close")
    c.add_argument("name")
    args = ap.parse_args()
    return serve(args) if args.cmd == "serve" else close(args)


if __name__ == "__main__":
    sys.exit(main())
