"""Waiting for a channel in an asyncio event loop: the coroutines behind
Channel.recv_async, Consumer.recv_async, Producer.send_async and the others (the C
methods of those types call the functions here and return their coroutines).

Every wait follows the readiness protocol of the C core (``ready_fd``,
``ready_arm``, ``ready_disarm``): try the call without waiting (timeout=0); when it
raises Empty (or Full), arm. 0.0 means ready now: try again. Otherwise wait until
the ready fd is readable (``loop.add_reader``), at most the linger the arm returned
(coalescing) and the time left, then withdraw (``remove_reader``,
``ready_disarm``, in a ``finally``) and try again. Nothing is taken or sent while
waiting, so a cancelled or timed-out await has consumed (or sent) nothing. No
thread is started, and a cancelled wait leaves no reader behind: nothing keeps a
loop from closing.

The core keeps one announcement per member (and per producer), so the waits of one
process on the same ready fd take turns: the first arms and waits (the round's
leader); the others, in this loop or another thread's, wait for the end of its
round, then everyone tries again.

A ReadView holds its group's consumer side for its thread until consumed or
cancelled. read_async's view can sit in a finished task while the task that
awaits it has not run yet (asyncio.wait_for before Python 3.12 wraps the
coroutine in a task of its own), so another task's receive on the group would
raise RuntimeError, as in a thread that holds a view: while a view read_async
handed to another task of this thread is open, a receive polls instead. A task
that receives again while its own view is open gets RuntimeError, as read() does
(or, when the view came to it through such a wrapper task, waits until its
timeout): consume or cancel a view before receiving again from its group.

A Consumer closed while a task awaits one of its receives leaves that task
waiting until its timeout: cancel the waits first.

Polling, bounded: a loop without ``add_reader`` (Windows' ProactorEventLoop, or a
custom loop raising NotImplementedError) waits by sleeping 50 us, doubling up to
5 ms, between tries; so does a wait that the arm keeps answering "ready now" for
while the call still finds nothing: a producer waiting for a free slab
(send_bytes_async; no fd says when a slab comes free), or records that other
members of a group hold.
"""
import asyncio
import math
import os
import threading
import weakref
from typing import Dict, Tuple

from . import Closed, Empty, Full  # imported on first use, once the package is whole

POLL_FIRST = 50e-6  # seconds: the first sleep of a polling wait
POLL_MAX = 5e-3  # and the longest

_NO_RECORD = "no record within the timeout"
_NO_SPACE = "no space within the timeout"
_NO_SLAB = "no free slab or ring space within the timeout"


class _Round:
    """The one armed wait on a readiness FIFO: its leader arms, waits and withdraws;
    followers (loop, future) wait for its end."""

    __slots__ = ("followers",)

    def __init__(self):
        self.followers = []


_rounds: Dict[Tuple[int, int], _Round] = {}  # (st_dev, st_ino) of the FIFO -> _Round, while a leader waits
_rounds_lock = threading.Lock()  # waits in several threads' loops share _rounds


_views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # ReadView read_async handed out -> (thread, task)


def _view_of_another_task():
    """Is a ReadView that read_async handed to another task of this thread still open?"""
    me, task = threading.get_ident(), asyncio.current_task()
    return any(tid == me and t is not task and not v.done for v, (tid, t) in list(_views.items()))


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


def _wake_in(loop, fut, here):
    if loop is here:
        _wake(fut)
        return
    try:
        loop.call_soon_threadsafe(_wake, fut)
    except RuntimeError:  # that loop is closed: nobody is waiting there any more
        pass


async def _until(loop, fut, delay):
    """Await fut for at most delay seconds (inf: no limit)."""
    timer = None if delay == math.inf else loop.call_later(max(delay, 0.0), _wake, fut)
    try:
        await fut
    finally:
        if timer is not None:
            timer.cancel()


def _seconds(timeout):
    """timeout as the sync calls take it: None -> inf, else seconds >= 0."""
    if timeout is None:
        return math.inf
    tp = type(timeout)
    if tp is bool or not (
        isinstance(timeout, (int, float)) or hasattr(tp, "__float__") or hasattr(tp, "__index__")
    ):
        raise TypeError("timeout must be a number of seconds or None, not '%s'" % tp.__name__)
    t = float(timeout)
    if not t >= 0:
        raise ValueError("timeout must be None or a non-negative number of seconds, got %r" % (timeout,))
    return t


class _Wait:
    """One call's waiting: its deadline, and how it polls when it must."""

    __slots__ = ("loop", "deadline", "nowait", "poll", "no_reader", "ready_again")

    def __init__(self, timeout):
        t = _seconds(timeout)
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + t
        self.nowait = t == 0
        self.poll = POLL_FIRST
        self.no_reader = False  # the loop has no add_reader: poll
        self.ready_again = False  # the last arm said "ready now" and the try after it found nothing

    def expired(self):
        return self.nowait or self.loop.time() >= self.deadline

    async def sleep(self):
        await asyncio.sleep(min(self.poll, max(self.deadline - self.loop.time(), 0.0)))
        self.poll = min(self.poll * 2, POLL_MAX)

    async def round(self, fd_of, arm, disarm):
        """Wait once for the object to become ready, or the deadline; the caller tries again.
        True: the arm said "ready now" and nothing was awaited."""
        if self.no_reader or self.ready_again:
            self.ready_again = False
            await self.sleep()
            return False
        loop = self.loop
        fd = fd_of()
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        fut = loop.create_future()
        with _rounds_lock:
            rnd = _rounds.get(key)
            leader = rnd is None
            if leader:
                rnd = _rounds[key] = _Round()
            else:
                rnd.followers.append((loop, fut))
        if not leader:
            try:
                await _until(loop, fut, self.deadline - loop.time())
            finally:
                with _rounds_lock:
                    if (loop, fut) in rnd.followers:
                        rnd.followers.remove((loop, fut))
            return False
        linger = 0.0
        reading = False
        try:
            linger = arm()
            if linger == 0.0:
                self.ready_again = True  # a second "ready now" without progress polls
                return True
            left = self.deadline - loop.time()
            if left <= 0:
                return False
            try:
                loop.add_reader(fd, _wake, fut)
                reading = True
            except NotImplementedError:
                self.no_reader = True
            if reading:
                await _until(loop, fut, min(linger, left))
                self.poll = POLL_FIRST
        finally:
            try:
                if reading:
                    loop.remove_reader(fd)
                if linger != 0.0:
                    disarm()  # before a follower (in another thread, maybe) can arm again
            finally:
                with _rounds_lock:
                    del _rounds[key]
                    followers, rnd.followers = rnd.followers, []
                for fl, ff in followers:
                    _wake_in(fl, ff, loop)
        if self.no_reader:
            await self.sleep()
        return False


async def _consume(obj, op, args, timeout, view=False):
    w = _Wait(timeout)
    while True:
        held = False
        try:
            r = op(*args, 0)
            if view:
                _views[r] = (threading.get_ident(), asyncio.current_task())
            return r
        except Empty:
            if w.expired():
                if w.nowait:
                    raise
                raise Empty(_NO_RECORD) from None
        except RuntimeError:
            if not _view_of_another_task():
                raise
            held = True  # until that task consumes its view
            if w.expired():
                msg = "no record available (another task holds a read view)" if w.nowait else _NO_RECORD
                raise Empty(msg) from None
        if held:
            await w.sleep()
        else:
            await w.round(obj.ready_fd, obj.ready_arm, obj.ready_disarm)


def recv(obj, timeout=None):
    """Channel.recv_async / Consumer.recv_async."""
    return _consume(obj, obj.recv, (), timeout)


def recv_many(obj, max_records=None, timeout=None):
    """recv_many_async."""
    return _consume(obj, obj.recv_many, (max_records,), timeout)


def read(obj, max_records=None, timeout=None):
    """read_async."""
    return _consume(obj, obj.read, (max_records,), timeout, view=True)


def recv_bytes(obj, timeout=None):
    """recv_bytes_async."""
    return _consume(obj, obj.recv_bytes, (), timeout)


async def anext(obj):
    """__anext__: records until the channel is closed and drained, as iteration does."""
    try:
        return await _consume(obj, obj.recv, (), None)
    except Closed:
        raise StopAsyncIteration from None


async def _produce(p, op, data, timeout, message):
    w = _Wait(timeout)
    while True:
        try:
            return op(data, 0)
        except Full:
            if w.expired():
                if w.nowait:
                    raise
                raise Full(message) from None
        await w.round(p.ready_fd, p.ready_arm, p.ready_disarm)


def send(p, data, timeout=None):
    """Producer.send_async."""
    return _produce(p, p.send, data, timeout, _NO_SPACE)


def send_bytes(p, data, timeout=None):
    """Producer.send_bytes_async: a Full the arm answers "ready now" for is the slab pool: polled."""
    return _produce(p, p.send_bytes, data, timeout, _NO_SLAB)
