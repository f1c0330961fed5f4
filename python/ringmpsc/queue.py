"""ringmpsc.Queue: the interface of multiprocessing.Queue and faster_fifo.Queue over a Channel.

Python objects of any size up to ``max_size_bytes`` travel between any number of
threads and processes. Each message is one record of a :class:`~ringmpsc.Channel`:
inline when it pickles to at most ``INLINE_BYTES``, else in slabs of the channel's
pool (``max_size_bytes`` of them). Every producing thread registers its own ring on
its first put (a slot whose thread or process ended is reused once drained); every
consuming process is a member of the channel's default group, so consumers share
the work and a consumer that dies hands what it had taken to another (at least
once). Order is FIFO per producing thread.
"""
import abc
import importlib
import os
import pickle
import queue as _queue
import struct
import threading
import time
import weakref
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Optional

from . import Channel, Closed, Empty, Full, TooManyProducers  # imported last by the package

# The extension's private pickling helpers (not in the package's stub).
_ext = importlib.import_module("._ringmpsc", __package__)
_dumps_message = _ext._dumps_message

__all__ = ["Queue", "QueueClosed"]

DEFAULT_MAX_SIZE_BYTES = 1000 * 1000
DEFAULT_MAX_PRODUCERS = 64  # producing threads (across all processes) at a time
DEFAULT_MAX_CONSUMERS = 64  # consuming processes at a time
RECORD_SIZE = 64
INLINE_BYTES = RECORD_SIZE - 8  # a message this short travels in its record
# Messages at least this long are received as bytearray, so NumPy arrays (and other
# out-of-band pickle buffers) unpickled from them are writable without a copy.
WRITABLE_FROM = 64 * 1024
# Contiguous pickle buffers at least this long go out of band: gathered into the
# message straight from the object's memory, not copied into the pickle first
# (the C extension's constant: _dumps_message and _send_object make such messages).
OUT_OF_BAND_FROM = _ext._OUT_OF_BAND_FROM
_pickle_loads = pickle.loads
# The first byte of a message with out-of-band buffers (a pickle starts with 0x80):
# _OOB, each buffer at a multiple of _OOB_ALIGN in the message; _OOB_PACKED, the
# buffers back to back, as ringmpsc 0.6.0 wrote them (still read; a 0.6.0 reader
# refuses the aligned tag rather than misread it).
_OOB = _ext._OUT_OF_BAND_TAG
_OOB_PACKED = 1
# Each out-of-band buffer starts at a multiple of this in its message: a large
# message is received page-aligned, so NumPy arrays rebuilt on it are aligned.
_OOB_ALIGN = _ext._OUT_OF_BAND_ALIGN
_MAXSIZE_POLL_MIN = 0.0005
_MAXSIZE_POLL_MAX = 0.01


class QueueClosed(Closed, Empty):
    """get() on a closed queue with nothing left: a ringmpsc.Closed and a queue.Empty."""


def _geometry(max_size_bytes: int):
    """Slab size, slab count and ring capacity for a queue of max_size_bytes.

    A message of k slabs lists the other k - 1 in its first one, so slabs of at
    least 2 * sqrt(max_size_bytes) hold the list of the longest message. The pool
    holds one message of max_size_bytes, and 1/32 more for rounding messages up to
    whole slabs: N messages of max_size_bytes / N bytes each fit together while
    each takes at least 32 slabs (four 1 MiB frames in a queue of 4 x (1 MiB + 4 KiB)
    take 516 slabs of 8 KiB, not 514).
    """
    slab = 256
    while slab * slab < 4 * max_size_bytes and slab < (1 << 20):
        slab *= 2
    if max_size_bytes <= slab:
        slabs = 1
    else:
        slabs = -(-(max_size_bytes - 4) // (slab - 4)) + -(-max_size_bytes // (32 * slab))
    capacity = 64
    while capacity * 256 < max_size_bytes and capacity < 16384:
        capacity *= 2
    return slab, slabs, capacity


class _Deadline:
    __slots__ = ("at",)

    def __init__(self, block: bool, timeout: Optional[float]):
        if not block:
            self.at: Optional[float] = 0.0
        elif timeout is None:
            self.at = None
        else:
            if timeout < 0:
                raise ValueError("'timeout' must be a non-negative number")
            self.at = time.monotonic() + timeout

    def left(self) -> Optional[float]:
        """Seconds left (0 once passed, or for a non-blocking call); None: no limit."""
        if self.at is None:
            return None
        if self.at == 0.0:
            return 0.0
        return max(0.0, self.at - time.monotonic())


# Every Queue of this process: a forked child starts with no producers of its own
# (those it inherited belong to the parent's threads).
_queues: "weakref.WeakSet[Queue]" = weakref.WeakSet()


def _after_fork():
    for q in list(_queues):
        q._local = threading.local()


os.register_at_fork(after_in_child=_after_fork)


def _loads_out_of_band(msg) -> Any:
    """Unpickle a message of dumps() with out-of-band buffers: views of the message itself."""
    align = _OOB_ALIGN if msg[0] == _OOB else 1
    (n,) = struct.unpack_from("<I", msg, 1)
    lens = struct.unpack_from("<%dQ" % (n + 1), msg, 5)
    view = memoryview(msg)
    at = 5 + 8 * (n + 1)
    head = view[at : at + lens[0]]
    at += lens[0]
    buffers = []
    for ln in lens[1:]:
        at += -at % align
        buffers.append(view[at : at + ln])
        at += ln
    return _pickle_loads(head, buffers=buffers)


def _loads_other(msg) -> Any:
    """Queue.loads of a message that is not a plain pickle (_recv_objects unpickles those)."""
    if msg and msg[0] in (_OOB, _OOB_PACKED):
        return _loads_out_of_band(msg)
    return _pickle_loads(msg)


def _note_codecs() -> None:
    for q in list(_queues):
        q._note_codec()


class _QueueType(abc.ABCMeta):
    """Queue's metaclass: dumps or loads set on (or deleted from) Queue or a subclass, before or after
    queues exist, makes every queue decide again whether put and get pickle in C. An ABCMeta, so a
    subclass may also be an abc.ABC (the usual other metaclass) without a metaclass conflict."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in ("dumps", "loads"):
            _note_codecs()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        if name in ("dumps", "loads"):
            _note_codecs()


class Queue(metaclass=_QueueType):
    """A multi-producer, multi-consumer queue of Python objects in shared memory.

    ``Queue(max_size_bytes=1_000_000, maxsize=0, loads=None, dumps=None)``, as
    faster_fifo.Queue: ``max_size_bytes`` bounds the longest message (the pickled
    object) and the slab pool that carries messages longer than INLINE_BYTES;
    ``maxsize`` > 0 bounds the number of messages (checked before each put, so
    concurrent producers may pass it by a few). ``dumps(obj)`` returns a bytes-like
    object (or a list of them, sent as their concatenation) and ``loads(buffer)``
    the object; both default to pickle, with large buffers (NumPy arrays) out of
    band. Pass it to child processes as any argument (fork, spawn, forkserver,
    Pool initializers and tasks).

    Blocking calls take ``block`` and ``timeout`` as queue.Queue does (``timeout``
    None blocks forever) and raise queue.Full / queue.Empty. ``close()`` closes the
    queue for every process: puts raise ringmpsc.Closed, gets return what is left
    and then raise QueueClosed (both ringmpsc.Closed and queue.Empty).
    """

    _c_dumps: bool  # dumps and loads are Queue's own (_note_codec)
    _c_loads: bool

    def __init__(
        self,
        max_size_bytes: int = DEFAULT_MAX_SIZE_BYTES,
        maxsize: int = 0,
        loads: Optional[Callable[[Any], Any]] = None,
        dumps: Optional[Callable[[Any], Any]] = None,
        *,
        max_producers: int = DEFAULT_MAX_PRODUCERS,
        max_consumers: int = DEFAULT_MAX_CONSUMERS,
        name: Optional[str] = None,
    ):
        if not isinstance(max_size_bytes, int) or max_size_bytes < 1:
            raise ValueError("max_size_bytes must be a positive int, not %r" % (max_size_bytes,))
        if not isinstance(maxsize, int):
            raise TypeError("maxsize must be an int, not %r" % (maxsize,))
        slab, slabs, capacity = _geometry(max_size_bytes)
        self._ch = Channel(
            RECORD_SIZE,
            capacity,
            max_producers,
            name=name,
            slab_size=slab,
            slabs=slabs,
            max_consumers=max_consumers,
            max_groups=1,
        )
        self.max_size_bytes = max_size_bytes
        self.maxsize = maxsize
        # Per instance, as faster_fifo: they shadow the methods a subclass may override.
        if loads is not None:
            self.loads = loads  # type: ignore[method-assign,assignment]
        if dumps is not None:
            self.dumps = dumps  # type: ignore[method-assign,assignment]
        self.last_error: Optional[str] = None  # faster_fifo's; nothing here sets it
        self._local = threading.local()
        _queues.add(self)
        self._note_codec()

    # --- serialization -------------------------------------------------------------

    def _note_codec(self) -> None:
        """Whether dumps and loads are Queue's own: then put and get pickle in C (the same wire format)."""
        d = self.__dict__
        d["_c_dumps"] = "dumps" not in d and type(self).dumps is _queue_dumps
        d["_c_loads"] = "loads" not in d and type(self).loads is _queue_loads

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in ("dumps", "loads"):
            self._note_codec()

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        if name in ("dumps", "loads"):
            self._note_codec()

    def dumps(self, obj: Any):
        """Pickle obj: bytes, or a list of parts whose large buffers are the object's own memory."""
        try:
            return _dumps_message(obj)
        except (TypeError, AttributeError, pickle.PicklingError):
            # Objects only multiprocessing knows how to send (connections, sockets...).
            return ForkingPickler.dumps(obj, 5)

    def loads(self, msg) -> Any:
        """Unpickle a message made by dumps()."""
        if msg and msg[0] in (_OOB, _OOB_PACKED):
            return _loads_out_of_band(msg)
        return _pickle_loads(msg)

    def _loads_all(self, msgs: list) -> list:
        loads = self.loads
        return [loads(m) for m in msgs]

    # --- producing -----------------------------------------------------------------

    def _producer(self, deadline: _Deadline):
        """This thread's producer, registered on its first put (waiting for a slot)."""
        try:
            return self._local.producer
        except AttributeError:
            pass
        try:
            p = self._ch.producer(timeout=deadline.left())
        except TooManyProducers as e:
            raise Full("no producer slot came free: %s" % e) from None
        self._local.producer = p
        return p

    def _wait_below_maxsize(self, deadline: _Deadline) -> None:
        # Sleeps in the core until a consumer's release brings the count below maxsize.
        try:
            self._ch.wait_pending_below(self.maxsize, deadline.left())
        except Full:
            raise Full("queue full: %d messages (maxsize)" % self.maxsize) from None

    def _send(self, data, deadline: _Deadline) -> None:
        if self.maxsize > 0:
            self._wait_below_maxsize(deadline)
        self._producer(deadline).send_message(data, deadline.left())

    def put(self, obj: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        """Put obj, waiting up to timeout (None: forever) for room; queue.Full when there is none."""
        if self._c_dumps:
            try:
                p = self._local.producer
            except AttributeError:  # this thread's first put
                pass
            else:
                if self.maxsize > 0:
                    deadline = _Deadline(block, timeout)
                    self._wait_below_maxsize(deadline)
                    left = deadline.left()
                else:  # no deadline object on the fast path
                    deadline, left = None, (timeout if block else 0)
                # Pickled and sent in C (as dumps); None: pickle refused obj, multiprocessing's pickler may not.
                if p._send_object(obj, left):
                    return
                self._send(ForkingPickler.dumps(obj, 5), deadline or _Deadline(block, timeout))
                return
        self._send(self.dumps(obj), _Deadline(block, timeout))

    def put_nowait(self, obj: Any) -> None:
        """put(obj, block=False)."""
        self.put(obj, False)

    def put_many(self, objs, block: bool = True, timeout: Optional[float] = None) -> None:
        """Put each of objs (a list or tuple), in order, within one timeout.

        Not atomic: on queue.Full the exception's ``sent`` says how many of objs
        were put (the first ``sent``); put the rest again to keep them all.
        """
        if not isinstance(objs, (list, tuple)):
            raise TypeError("put_many() expects a list or tuple, not %s" % type(objs).__name__)
        deadline = _Deadline(block, timeout)
        datas = [self.dumps(o) for o in objs]
        for i, data in enumerate(datas):
            try:
                self._send(data, deadline)
            except Full as e:
                e.sent = i  # type: ignore[attr-defined]  # how many went in (documented above)
                raise

    def put_many_nowait(self, objs) -> None:
        """put_many(objs, block=False)."""
        self.put_many(objs, False)

    async def put_async(self, obj: Any, timeout: Optional[float] = None) -> None:
        """Coroutine: put(obj) waiting in the running event loop; a cancelled await puts nothing."""
        from . import _aio

        data = self.dumps(obj)
        deadline = _Deadline(True, timeout)
        p = await self._producer_async(deadline)
        if self.maxsize > 0:
            await self._below_maxsize_async(deadline)
        await _aio._produce(p, p.send_message, data, deadline.left(), _aio._NO_SLAB)

    async def _producer_async(self, deadline: _Deadline):
        """_producer() in an event loop: waits for a slot without blocking the loop."""
        import asyncio

        pause = _MAXSIZE_POLL_MIN
        while True:
            try:
                return self._producer(_Deadline(False, None))
            except Full:
                left = deadline.left()
                if left is not None and left <= 0:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAXSIZE_POLL_MAX)

    async def _below_maxsize_async(self, deadline: _Deadline) -> None:
        import asyncio

        pause = _MAXSIZE_POLL_MIN
        while len(self._ch) >= self.maxsize:
            left = deadline.left()
            if left is not None and left <= 0:
                raise Full("queue full: %d messages (maxsize)" % self.maxsize)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAXSIZE_POLL_MAX)

    # --- consuming -----------------------------------------------------------------

    def _receive(self, max_messages: int, max_bytes: Optional[int], timeout: Optional[float]) -> list:
        try:
            if self._c_loads:  # received and unpickled in C
                return self._ch._recv_objects(  # type: ignore[attr-defined]  # private: not in the stub
                    max_messages, timeout, max_bytes, WRITABLE_FROM, _loads_other
                )
            msgs = self._ch.recv_messages(max_messages, timeout, max_bytes, WRITABLE_FROM)
        except Closed:
            raise QueueClosed("queue is closed and empty") from None
        return self._loads_all(msgs)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Remove and return an object, waiting up to timeout (None: forever); queue.Empty if none came."""
        if self._c_loads:  # _receive's common case, inlined: one C call
            try:
                return self._ch._recv_objects(  # type: ignore[attr-defined]  # private: not in the stub
                    1, timeout if block else 0, None, WRITABLE_FROM, _loads_other
                )[0]
            except Closed:
                raise QueueClosed("queue is closed and empty") from None
        return self._receive(1, None, timeout if block else 0)[0]

    def get_nowait(self) -> Any:
        """get(block=False)."""
        return self.get(False)

    def get_many(
        self,
        block: bool = True,
        timeout: Optional[float] = None,
        max_messages_to_get: int = 1_000_000_000,
        max_byte_size_to_get: Optional[int] = None,
    ) -> list:
        """Wait (as get) for at least one object, then return every one available, in a list.

        At most max_messages_to_get, and no more than max_byte_size_to_get bytes
        of messages past the first.
        """
        return self._receive(max_messages_to_get, max_byte_size_to_get, timeout if block else 0)

    def get_many_nowait(self, max_messages_to_get: int = 1_000_000_000) -> list:
        """get_many(block=False)."""
        return self.get_many(False, max_messages_to_get=max_messages_to_get)

    async def get_async(self, timeout: Optional[float] = None) -> Any:
        """Coroutine: get() waiting in the running event loop; a cancelled await takes nothing."""
        return (await self._receive_async(1, None, timeout))[0]

    async def get_many_async(
        self,
        timeout: Optional[float] = None,
        max_messages_to_get: int = 1_000_000_000,
        max_byte_size_to_get: Optional[int] = None,
    ) -> list:
        """Coroutine: get_many() waiting in the running event loop."""
        return await self._receive_async(max_messages_to_get, max_byte_size_to_get, timeout)

    async def _receive_async(self, max_messages: int, max_bytes: Optional[int], timeout: Optional[float]) -> list:
        """The objects of up to max_messages messages, as _receive, waiting in the event loop."""
        from . import _aio

        ch = self._ch
        if self._c_loads:

            def op(n, t):
                return ch._recv_objects(n, t, max_bytes, WRITABLE_FROM, _loads_other)

        else:

            def op(n, t):
                return ch.recv_messages(n, t, max_bytes, WRITABLE_FROM)

        try:
            got = await _aio._consume(ch, op, (max_messages,), timeout)
        except Closed:
            raise QueueClosed("queue is closed and empty") from None
        return got if self._c_loads else self._loads_all(got)

    # --- state -------------------------------------------------------------------

    def qsize(self) -> int:
        """Messages put and not yet taken (a snapshot)."""
        return len(self._ch)

    def empty(self) -> bool:
        """True when no message is waiting (a snapshot)."""
        return len(self._ch) == 0

    def full(self) -> bool:
        """True when maxsize messages wait, the slab pool has no free slab, or this thread's ring is full."""
        if self.maxsize > 0 and len(self._ch) >= self.maxsize:
            return True
        s = self._ch.stats()
        if s["slabs_free"] == 0:
            return True
        p = getattr(self._local, "producer", None)
        return p is not None and any(r["slot"] == p.slot and r["pending"] >= s["capacity"] for r in s["producers"])

    def data_size(self) -> int:
        """Bytes the waiting messages occupy: their records and the slabs in use (a snapshot)."""
        s = self._ch.stats()
        return s["pending"] * s["record_size"] + (s["slabs"] - s["slabs_free"]) * s["slab_size"]

    def close(self) -> None:
        """Close the queue for every process: puts fail from now on, gets drain what is left."""
        self._ch.close()

    def is_closed(self) -> bool:
        """True once any process closed the queue."""
        return self._ch.closed

    def join_thread(self) -> None:
        """Nothing to join: no feeder thread (multiprocessing.Queue's interface)."""

    def cancel_join_thread(self) -> None:
        """Nothing to cancel: no feeder thread (multiprocessing.Queue's interface)."""

    @property
    def channel(self) -> Channel:
        """The Channel the queue runs on (stats(), ready_fd(), python -m ringmpsc info)."""
        return self._ch

    # --- passing to other processes ---------------------------------------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_local"]  # this process's producers
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()
        self._note_codec()
        _queues.add(self)

    def __repr__(self):
        return "<%s max_size_bytes=%d maxsize=%d qsize=%d%s>" % (
            type(self).__name__,
            self.max_size_bytes,
            self.maxsize,
            self.qsize(),
            " closed" if self.is_closed() else "",
        )


# Queue's own, as defined here (Queue.dumps may be replaced: that one is not pickled in C).
_queue_dumps = Queue.__dict__["dumps"]
_queue_loads = Queue.__dict__["loads"]

# queue.Full and queue.Empty are what callers catch; ringmpsc's are subclasses.
assert issubclass(Full, _queue.Full) and issubclass(Empty, _queue.Empty)
