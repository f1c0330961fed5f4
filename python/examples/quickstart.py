"""Quick start: worker processes send records to one consumer through a Channel.

    build/venv/bin/python python/examples/quickstart.py
"""
import multiprocessing as mp
import struct

import ringmpsc

ORDER = struct.Struct("<II24s")  # worker, sequence, item: a 32-byte record


def worker(ch, wid, n):
    with ch.producer() as p:  # this process's own ring
        for seq in range(n):
            p.send(ORDER.pack(wid, seq, b"widget-%d" % seq))  # blocks while the ring is full
        with p.reserve(4) as view:  # zero-copy: write records in place
            for i in range(len(view) // ORDER.size):
                ORDER.pack_into(view, i * ORDER.size, wid, n + i, b"bulk")
        # committed when the block exits


def main():
    ch = ringmpsc.Channel(ORDER.size, capacity=1024, max_producers=4)
    procs = [mp.Process(target=worker, args=(ch, w, 1000)) for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    ch.close()  # no more sends; everything committed is still delivered
    per_worker = {}
    for rec in ch:  # until closed and drained
        wid, seq, _ = ORDER.unpack(rec)
        assert seq == per_worker.get(wid, 0), "FIFO per producer"
        per_worker[wid] = seq + 1
    print("received", sum(per_worker.values()), "records from", len(per_worker), "processes")


if __name__ == "__main__":
    main()
