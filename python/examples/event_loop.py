"""Event loops: worker processes send records; an asyncio task consumes them while
the loop waits for the workers too, then a plain select loop does the same with
the arm/drain protocol by hand.

    build/venv/bin/python python/examples/event_loop.py
"""
import asyncio
import multiprocessing as mp
import select
import struct

import ringmpsc

EVENT = struct.Struct("<II")  # worker, sequence


def worker(ch, wid, n):
    with ch.producer() as p:
        for seq in range(n):
            p.send(EVENT.pack(wid, seq))


async def consume(ch):
    counts = {}
    async for rec in ch:  # awaits ch.ready_fd() in the loop; ends once closed and drained
        wid, seq = EVENT.unpack(rec)
        assert seq == counts.get(wid, 0), "FIFO per producer"
        counts[wid] = seq + 1
    return counts


async def joined(proc):
    """Wait for a process in the loop: its sentinel fd becomes readable when it ends."""
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    loop.add_reader(proc.sentinel, ended.set)
    try:
        await ended.wait()
    finally:
        loop.remove_reader(proc.sentinel)
    proc.join()


async def with_asyncio(n):
    ch = ringmpsc.Channel(EVENT.size, capacity=1024)
    procs = [mp.Process(target=worker, args=(ch, w, n)) for w in range(2)]
    for proc in procs:
        proc.start()
    consumer = asyncio.create_task(consume(ch))
    await asyncio.gather(*(joined(proc) for proc in procs))  # the loop serves other waits meanwhile
    ch.close()  # the consumer drains what is left, then its async for ends
    counts = await consumer
    print("asyncio: received", sum(counts.values()), "records from", len(counts), "processes")


def with_select(n):
    ch = ringmpsc.Channel(EVENT.size, capacity=1024)
    procs = [mp.Process(target=worker, args=(ch, w, n)) for w in range(2)]
    for proc in procs:
        proc.start()
    fd = ch.ready_fd()  # not ch.fileno(): that is the mapping, never a readiness signal
    got = 0
    while got < 2 * n:
        try:
            ch.recv(timeout=0)  # drain until Empty ...
            got += 1
            continue
        except ringmpsc.Empty:
            pass
        t = ch.ready_arm()  # ... then arm: 0.0 ready now, inf wait for fd, t wait at most t s
        if t:
            select.select([fd], [], [], t)
    for proc in procs:
        proc.join()
    print("select: received", got, "records")


if __name__ == "__main__":
    asyncio.run(with_asyncio(20000))
    with_select(20000)
