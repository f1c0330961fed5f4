"""Waiting for a channel in an asyncio event loop: the coroutines behind
Channel.recv_async, Consumer.recv_async, Producer.send_async and the others (the C
methods of those types call the functions here and return their coroutines).

Every wait follows the readiness protocol of the C core (``ready_fd``,
``ready_arm``, ``ready_disarm``): try the call without waiting (timeout=0); when it
raises Empty (or Full), arm. 0.0 means ready now: try again. Otherwise wait until
the ready fd is readable (``loop.add_reader`` on a duplicate of it, so that a
descriptor closed under the wait never leaves a reader on a closed or reused
number), at most the linger the arm returned (coalescing; a second at most) and the
time left, then withdraw (``remove_reader``, ``ready_disarm``, in a ``finally``) and
try again. Nothing is taken or sent while waiting, so a cancelled or timed-out
await has consumed (or sent) nothing. No thread is started, and a cancelled wait
leaves no reader behind: nothing keeps a loop from closing.

The loop's thread never waits for another thread. Each object's calls take turns
with the other threads' (a per-object lock; for consumers, one per group and
channel in the process, shared by every Channel and Consumer object on it). The
coroutines make the readiness calls' ``_try`` variants, which answer "busy" instead
of waiting while another thread holds that lock (a blocking recv or send, an open
ReadView or Reservation): the wait then follows a round on the descriptor last
seen for that membership (or producer), if one is under way, or polls (below). A
withdrawal that finds the lock busy is left: the announcement costs one spurious
wake-up at most. A withdrawal is only for the FIFO that was armed: once the
membership it belonged to ended (leave, close), the place's announcement is
another wait's.

The core keeps one announcement per member (and per producer), so the waits of one
process on the same ready fd take turns: the first arms and waits (the round's
leader); the others, in this loop or another thread's, wait for the end of its
round, then everyone tries again. A follower waits a second at most (the core's
own recheck period) before it tries again, and takes the round over when the
leader's loop has stopped running or is closed (a loop driven by
``run_until_complete`` that left the wait pending): a stopped loop never ends its
round. A leader that resumes after that finds its round taken and leaves the new
leader's announcement alone.

A ReadView holds its group's consumer side for its thread until consumed or
cancelled. read_async's view can sit in a finished task while the task that
awaits it has not run yet (asyncio.wait_for before Python 3.12 wraps the
coroutine in a task of its own), so another task's receive on the group would
raise RuntimeError, as in a thread that holds a view: while a view read_async
handed to another task of this thread is open, a receive polls instead. A task
that receives again while its own view is open gets RuntimeError, as read() does
(or, when the view came to it through such a wrapper task, waits until its
timeout): consume or cancel a view before receiving again from its group.

Closing: Consumer.close() and Producer.close() (and Channel.leave()) wake the
coroutines waiting on that object, in any loop (``_changed``): each removes its
reader and tries again at once, so a task waiting on a closed Consumer or Producer
raises ValueError ("... is closed") promptly, and one waiting on a Channel that
left its group joins again.

Polling, bounded: a loop without ``add_reader`` (Windows' ProactorEventLoop, or a
custom loop raising NotImplementedError) waits by sleeping 50 us, doubling up to
5 ms, between tries; so does a wait that finds the object's lock held by another
thread, and one that the arm keeps answering "ready now" for while the call still
finds nothing: a producer waiting for a free slab (send_bytes_async; no fd says
when a slab comes free), or records that other members of a group hold.

Fork: the tables here and their lock are made afresh in a forked child
(``os.register_at_fork``): a thread of the parent may have held the lock, and the
parent's waits are not the child's.
"""
import asyncio
import math
import os
import threading
import weakref
from typing import Dict, List, Tuple

from . import Closed, Empty, Full  # imported on first use, once the package is whole

SPIN = 50e-6  # seconds: before arming, retry while yielding to the loop this long
POLL_FIRST = 50e-6  # seconds: the first sleep of a polling wait
POLL_MAX = 5e-3  # and the longest
FOLLOW_MAX = 1.0  # the longest a follower waits for its round's end before it tries again
STRANDED = 0.01  # ... when the leader's loop is not running; then it takes the round over

_NO_RECORD = "no record within the timeout"
_NO_SPACE = "no space within the timeout"
_NO_SLAB = "no free slab or ring space within the timeout"


class _Round:
    """The one armed wait on a readiness FIFO: its leader arms, waits and withdraws;
    followers (loop, future) wait for its end."""

    __slots__ = ("loop", "followers")

    def __init__(self, loop):
        self.loop = loop  # the leader's
        self.followers = []

    def stranded(self):
        """Has the leader's loop stopped (nothing ends this round until it runs again)?"""
        return self.loop.is_closed() or not self.loop.is_running()


_rounds: Dict[Tuple[int, int], _Round] = {}  # (st_dev, st_ino) of the FIFO -> _Round, while a leader waits
_waiting: Dict[int, List[Tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}  # id(obj) -> its waits
_rounds_lock = threading.RLock()  # waits in several threads' loops share _rounds and _waiting;
# reentrant: a finalizer the GC runs while it is held may close a Consumer (_changed)


_views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # ReadView read_async handed out -> (thread, task)


def _after_fork_in_child():
    """A forked child has one thread: the lock may have been held by another at the fork,
    and the waits recorded are the parent's."""
    global _rounds_lock
    _rounds_lock = threading.RLock()
    _rounds.clear()
    _waiting.clear()
    _views.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


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


def _note(obj, wait):
    """Record a wait on obj for _changed (under _rounds_lock)."""
    _waiting.setdefault(id(obj), []).append(wait)


def _forget(obj, wait):
    """Drop it again (under _rounds_lock); _changed may have taken it already."""
    waits = _waiting.get(id(obj))
    if waits is not None:
        try:
            waits.remove(wait)
        except ValueError:
            pass
        if not waits:
            del _waiting[id(obj)]


def _changed(obj):
    """obj was closed, or left its group (the C methods call this): wake the waits on
    it, in any loop, to try again now (and find it closed, or join again)."""
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    with _rounds_lock:
        waits = _waiting.pop(id(obj), [])
    for loop, fut in waits:
        _wake_in(loop, fut, here)


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


def _key(fd):
    """The FIFO's identity; None for no fd, or a closed one (a cached fd another thread's leave closed)."""
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class _Wait:
    """One call's waiting: its deadline, and how it polls when it must."""

    __slots__ = ("loop", "deadline", "nowait", "poll", "no_reader", "ready_again", "spin_until")

    def __init__(self, timeout):
        t = _seconds(timeout)
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + t
        self.nowait = t == 0
        self.poll = POLL_FIRST
        self.no_reader = False  # the loop has no add_reader: poll
        self.ready_again = False  # the last arm said "ready now" and the try after it found nothing
        self.spin_until = None  # the end of the first try's spin (set on the first miss)

    async def spin(self):
        """A peer that is running publishes sooner than a sleep on the fd and a wake-up
        come round (tens of microseconds, and as many of CPU): before the first arm,
        try again for SPIN seconds, yielding to the loop's other work between tries
        (as the blocking calls poll before they sleep). True while spinning."""
        now = self.loop.time()
        if self.spin_until is None:
            self.spin_until = now + SPIN
        if now >= self.spin_until or now >= self.deadline:
            return False
        # The CPU too, as the C poll does: with more runnable processes than CPUs the
        # producer we wait for may be waiting for ours.
        os.sched_yield()
        await asyncio.sleep(0)
        return True

    def expired(self):
        return self.nowait or self.loop.time() >= self.deadline

    async def sleep(self):
        await asyncio.sleep(min(self.poll, max(self.deadline - self.loop.time(), 0.0)))
        self.poll = min(self.poll * 2, POLL_MAX)

    async def round(self, obj):
        """Wait once for obj (a Channel, Consumer or Producer) to become ready, or the
        deadline; the caller tries again. True: the arm said "ready now" and nothing
        was awaited."""
        if self.no_reader or self.ready_again:
            self.ready_again = False
            await self.sleep()
            return False
        fd = obj._ready_fd_try()
        busy = fd is None  # another thread holds obj's lock: follow a round, or poll
        key = _key(obj._ready_fd_cached() if busy else fd)
        if key is None:
            await self.sleep()
            return False
        loop = self.loop
        fut = loop.create_future()
        with _rounds_lock:
            rnd = _rounds.get(key)
            lead = rnd is None
            if lead and not busy:
                rnd = _rounds[key] = _Round(loop)
            elif not lead:
                rnd.followers.append((loop, fut))
            if rnd is not None:
                _note(obj, (loop, fut))
        if rnd is None:
            await self.sleep()
            return False
        if not lead:
            rnd = await self._follow(obj, key, rnd, fut)
            if rnd is None:
                return False
            fut = loop.create_future()
            with _rounds_lock:
                _note(obj, (loop, fut))
            fd = None  # from before the wait (or the cache): the leader asks again
        return await self._lead(obj, fd, key, rnd, fut)

    async def _follow(self, obj, key, rnd, fut):
        """Wait for the end of another wait's round on the same FIFO, FOLLOW_MAX at most
        (STRANDED when the leader's loop is not running). Returns a round of our own
        when we took over one whose leader's loop stopped; None: try again."""
        loop = self.loop
        me = (loop, fut)
        cap = STRANDED if rnd.stranded() else FOLLOW_MAX
        try:
            await _until(loop, fut, min(cap, self.deadline - loop.time()))
        finally:
            with _rounds_lock:
                if me in rnd.followers:
                    rnd.followers.remove(me)
                _forget(obj, me)
        if self.expired():
            return None
        with _rounds_lock:
            if _rounds.get(key) is not rnd or not rnd.stranded():
                return None
            mine = _rounds[key] = _Round(loop)
            others, rnd.followers = rnd.followers, []
        for fl, ff in others:  # they try again, and follow us
            _wake_in(fl, ff, loop)
        return mine

    async def _lead(self, obj, fd, key, rnd, fut):
        """Arm, wait on (a duplicate of) fd, withdraw, end the round rnd."""
        loop = self.loop
        linger = None
        reading = False
        rfd = -1
        try:
            if fd is None:
                fd = obj._ready_fd_try()
            if fd is not None:
                linger = obj._ready_arm_try()  # None: another thread holds the lock
            if linger == 0.0:
                self.ready_again = True  # a second "ready now" without progress polls
                return True
            left = self.deadline - loop.time()
            if linger is not None and left > 0:
                try:
                    rfd = os.dup(fd)  # ours: the membership's may close under the wait
                except OSError:  # out of descriptors: poll this time
                    pass
                else:
                    try:
                        loop.add_reader(rfd, _wake, fut)
                        reading = True
                    except NotImplementedError:
                        self.no_reader = True
                if reading:
                    await _until(loop, fut, min(linger, left))
                    self.poll = POLL_FIRST
        finally:
            try:
                if reading:
                    loop.remove_reader(rfd)
            finally:
                try:
                    self._end(obj, key, rnd, fut, rfd if rfd >= 0 else fd if linger else None)
                finally:
                    if rfd >= 0:
                        os.close(rfd)
        if not reading:
            await self.sleep()
        return False

    def _end(self, obj, key, rnd, fut, armed_fd):
        """End the round rnd: withdraw the arm made for the FIFO armed_fd is open on
        (None: nothing armed), unless a follower took the round over (its arm stands),
        and wake the followers."""
        followers = []
        try:
            with _rounds_lock:
                _forget(obj, (self.loop, fut))
                followers, rnd.followers = rnd.followers, []
                if _rounds.get(key) is rnd:
                    del _rounds[key]
                    if armed_fd is not None:
                        # Before a follower (in another thread, maybe) can arm again;
                        # left announced when busy (a spurious wake-up at most).
                        obj._ready_disarm_try(armed_fd)
        finally:
            for fl, ff in followers:
                _wake_in(fl, ff, self.loop)


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
        elif not await w.spin():
            await w.round(obj)


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
        if not await w.spin():
            await w.round(p)


def send(p, data, timeout=None):
    """Producer.send_async."""
    return _produce(p, p.send, data, timeout, _NO_SPACE)


def send_bytes(p, data, timeout=None):
    """Producer.send_bytes_async: a Full the arm answers "ready now" for is the slab pool: polled."""
    return _produce(p, p.send_bytes, data, timeout, _NO_SLAB)
