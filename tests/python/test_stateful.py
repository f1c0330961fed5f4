"""The API driven by hypothesis against a simple model of the channel.

Model: one FIFO of record ids per producer slot (a slot's ring keeps its order even
across producers that reuse it), each slot's write position (for the wrap), the
set of open producers, and the closed flag. Every call is non-blocking (timeout 0),
so the model can say exactly what must happen.
"""
import struct
from collections import deque

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import ringmpsc

ID = struct.Struct("<II")  # uid, slot


class ChannelMachine(RuleBasedStateMachine):
    @initialize(
        rs=st.integers(8, 40),
        cap_bits=st.integers(1, 3),
        max_producers=st.integers(1, 3),
    )
    def setup(self, rs, cap_bits, max_producers):
        self.rs = rs
        self.cap = 1 << cap_bits
        self.ch = ringmpsc.Channel(rs, capacity=self.cap, max_producers=max_producers)
        self.max_producers = max_producers
        self.producers = {}  # slot -> Producer (open ones)
        self.queues = {}  # slot -> deque of uids committed and not consumed
        self.tail = {}  # slot -> records ever committed on it
        self.expected = {}  # uid -> the record's bytes
        self.uid = 0
        self.closed = False

    # --- helpers -----------------------------------------------------------------

    def _record(self, slot, extra):
        self.uid += 1
        rec = (ID.pack(self.uid, slot) + extra)[: self.rs]
        full = rec + bytes(self.rs - len(rec))
        self.expected[self.uid] = full
        return self.uid, rec, full

    def _committed(self, slot, uid):
        self.queues.setdefault(slot, deque()).append(uid)
        self.tail[slot] = self.tail.get(slot, 0) + 1

    def _free(self, slot):
        return self.cap - len(self.queues.get(slot, ()))

    def _total(self):
        return sum(len(q) for q in self.queues.values())

    def _take(self, rec):
        """A received record must be the head of its slot's FIFO, byte for byte."""
        uid, slot = ID.unpack_from(rec)
        q = self.queues.get(slot)
        assert q, "record %d from slot %d, which has nothing pending" % (uid, slot)
        assert q[0] == uid, "slot %d: got record %d, expected %d (FIFO broken)" % (slot, uid, q[0])
        assert bytes(rec) == self.expected.pop(uid), "record %d corrupted" % uid
        q.popleft()
        return slot

    def _take_many(self, data):
        assert len(data) % self.rs == 0
        for off in range(0, len(data), self.rs):
            self._take(data[off:off + self.rs])
        return len(data) // self.rs

    def _pick(self, data):
        return self.producers[data.draw(st.sampled_from(sorted(self.producers)), label="slot")]

    # --- producers ---------------------------------------------------------------

    @rule()
    def register(self):
        busy = set(self.producers) | {s for s, q in self.queues.items() if q}
        if self.closed:
            with pytest.raises(ringmpsc.Closed):
                self.ch.producer()
        elif len(busy) >= self.max_producers:
            with pytest.raises(ringmpsc.TooManyProducers):
                self.ch.producer()
        else:
            p = self.ch.producer()
            assert p.slot not in busy and 0 <= p.slot < self.max_producers
            self.producers[p.slot] = p

    @precondition(lambda self: self.producers)
    @rule(data=st.data())
    def close_producer(self, data):
        p = self._pick(data)
        p.close()
        assert p.closed
        del self.producers[p.slot]

    @precondition(lambda self: self.producers)
    @rule(data=st.data(), extra=st.binary(max_size=40))
    def send(self, data, extra):
        p = self._pick(data)
        uid, rec, _ = self._record(p.slot, extra)
        if self.closed:
            with pytest.raises(ringmpsc.Closed):
                p.send_nowait(rec)
        elif self._free(p.slot) == 0:
            with pytest.raises(ringmpsc.Full):
                p.send(rec, timeout=0)
        else:
            p.send_nowait(rec)
            self._committed(p.slot, uid)

    @precondition(lambda self: self.producers)
    @rule(data=st.data(), n=st.integers(1, 20))
    def send_many(self, data, n):
        p = self._pick(data)
        recs = [self._record(p.slot, b"m") for _ in range(n)]
        blob = b"".join(full for _, _, full in recs)
        if self.closed:
            with pytest.raises(ringmpsc.Closed):
                p.send_many(blob, timeout=0)
            return
        free = self._free(p.slot)
        if free == 0:
            with pytest.raises(ringmpsc.Full):
                p.send_many(blob, timeout=0)
            return
        sent = p.send_many(blob, timeout=0)
        assert sent == min(n, free)
        for uid, _, _ in recs[:sent]:
            self._committed(p.slot, uid)
        for uid, _, _ in recs[sent:]:
            del self.expected[uid]

    @precondition(lambda self: self.producers)
    @rule(data=st.data(), n=st.integers(1, 10), how=st.sampled_from(["exit", "commit", "part", "abort", "raise"]))
    def reserve(self, data, n, how):
        p = self._pick(data)
        if self.closed:
            with pytest.raises(ringmpsc.Closed):
                p.reserve(n, timeout=0)
            return
        free = self._free(p.slot)
        if free == 0:
            with pytest.raises(ringmpsc.Full):
                p.reserve(n, timeout=0)
            return
        r = p.reserve(n, timeout=0)
        k = len(r)
        to_wrap = self.cap - self.tail.get(p.slot, 0) % self.cap
        assert k == min(n, free, to_wrap), (k, n, free, to_wrap)
        recs = [self._record(p.slot, b"r" * 3) for _ in range(k)]
        keep = {"exit": k, "commit": k, "part": data.draw(st.integers(0, k), label="j"), "abort": 0, "raise": 0}[how]
        if how in ("exit", "raise"):
            try:
                with r as view:
                    view[:] = b"".join(full for _, _, full in recs)
                    if how == "raise":
                        raise KeyError("boom")
            except KeyError:
                pass
        else:
            with memoryview(r) as view:
                view[:] = b"".join(full for _, _, full in recs)
            if how == "abort":
                r.abort()
            else:
                r.commit(keep)
        assert r.done
        for uid, _, _ in recs[:keep]:
            self._committed(p.slot, uid)
        for uid, _, _ in recs[keep:]:
            del self.expected[uid]

    # --- consumer ----------------------------------------------------------------

    def _expect_nothing(self, call):
        with pytest.raises(ringmpsc.Closed if self.closed else ringmpsc.Empty):
            call()

    @rule()
    def recv(self):
        if self._total() == 0:
            self._expect_nothing(self.ch.recv_nowait)
        else:
            self._take(self.ch.recv(timeout=0))

    @rule(max_records=st.one_of(st.none(), st.integers(1, 10)))
    def recv_many(self, max_records):
        total = self._total()
        if total == 0:
            self._expect_nothing(lambda: self.ch.recv_many(max_records, timeout=0))
            return
        got = self._take_many(self.ch.recv_many(max_records, timeout=0))
        assert 1 <= got <= min(total, max_records or total)

    @rule(m=st.integers(1, 10), slack=st.integers(0, 7))
    def recv_into(self, m, slack):
        buf = bytearray(m * self.rs + slack)
        total = self._total()
        if total == 0:
            self._expect_nothing(lambda: self.ch.recv_into(buf, timeout=0))
            return
        got = self.ch.recv_into(buf, timeout=0)
        assert 1 <= got <= min(total, m)
        assert self._take_many(buf[:got * self.rs]) == got
        assert buf[m * self.rs:] == bytes(slack)

    @rule(data=st.data(), max_records=st.one_of(st.none(), st.integers(1, 10)),
          how=st.sampled_from(["exit", "consume", "part", "cancel", "raise"]))
    def read(self, data, max_records, how):
        if self._total() == 0:
            self._expect_nothing(lambda: self.ch.read(max_records, timeout=0))
            return
        v = self.ch.read(max_records, timeout=0)
        k = len(v)
        q = self.queues[v.slot]
        assert 1 <= k <= min(len(q), max_records or len(q))
        snapshot = bytes(memoryview(v))
        for i in range(k):
            assert snapshot[i * self.rs:(i + 1) * self.rs] == self.expected[q[i]]
        keep = {"exit": k, "consume": k, "part": data.draw(st.integers(0, k), label="j"), "cancel": 0,
                "raise": 0}[how]
        if how in ("exit", "raise"):
            try:
                with v as view:
                    assert view.readonly and len(view) == k * self.rs
                    if how == "raise":
                        raise KeyError("boom")
            except KeyError:
                pass
        elif how == "cancel":
            v.cancel()
        else:
            v.consume(keep)
        assert v.done
        self._take_many(snapshot[:keep * self.rs])

    @rule()
    def close_channel(self):
        self.ch.close()
        self.closed = True

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def pending_matches(self):
        if hasattr(self, "ch"):
            assert len(self.ch) == self._total()
            assert self.ch.closed == self.closed

    @invariant()
    def stats_match(self):
        if hasattr(self, "ch"):
            s = self.ch.stats()
            assert s["pending"] == self._total()
            assert s["active_producers"] == len(self.producers)
            assert s["committed"] - s["consumed"] == self._total()
            assert s["committed"] == sum(self.tail.values())

    def teardown(self):
        for p in getattr(self, "producers", {}).values():
            p.close()


ChannelMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("RMPSC_STATEFUL_EXAMPLES", 60)), stateful_step_count=40)
test_channel_model = ChannelMachine.TestCase
