"""ringmpsc: lock-free shared-memory MPSC channels of fixed-size records.

A :class:`Channel` holds one lock-free ring per producer in a single shared-memory
region, so records move between threads and processes without pickling, pipes or
feeder threads::

    import ringmpsc

    ch = ringmpsc.Channel(64)             # 64-byte records, anonymous shared memory
    with ch.producer() as p:              # in any process that has the channel
        p.send(b"hello")
    ch.recv()                             # b"hello" + 59 zero bytes

Consumers are members of groups: every group receives every record committed after
its creation (fan-out), and inside a group each record goes to one member (work
sharing between processes, ``Channel(..., max_consumers=N)``). A process consuming
through the Channel itself is a member of the default group;
``ch.consumer("name")`` returns a :class:`Consumer` of another group.

Order is FIFO per producer and unspecified across producers. Every blocking call
releases the GIL, honours ``timeout`` (None: forever, 0: never block, seconds
otherwise) and is interruptible with Ctrl-C.

In an asyncio event loop, await the coroutines instead (``await ch.recv_async()``,
``async for rec in ch``, ``await p.send_async(data)``): they wait on the channel's
readiness file descriptor (``ready_fd``) with no thread, and a cancelled await
takes or sends nothing. Raw select/poll/epoll loops use ``ready_fd`` and
``ready_arm`` themselves.

A Channel passed to :mod:`multiprocessing` (Process arguments, Pool tasks; fork,
spawn or forkserver) is the same channel in the child: anonymous channels travel
as file descriptors, named ones by name or descriptor.
"""
import os as _os

from . import _ringmpsc
from ._ringmpsc import (
    DEFAULT_GROUP,
    MAX_CAPACITY,
    MAX_CONSUMERS,
    MAX_GROUPS,
    MAX_PRODUCERS,
    MAX_RECORD_SIZE,
    MAX_SLAB_SIZE,
    MAX_SLABS,
    Channel,
    Closed,
    Consumer,
    ConsumerBusy,
    CorruptRegion,
    Empty,
    Error,
    Full,
    Producer,
    ReadView,
    Reservation,
    TooManyProducers,
    unlink,
)

__all__ = [
    "Queue",
    "QueueClosed",
    "Channel",
    "Consumer",
    "Producer",
    "Reservation",
    "ReadView",
    "Error",
    "Full",
    "Empty",
    "Closed",
    "TooManyProducers",
    "ConsumerBusy",
    "CorruptRegion",
    "unlink",
    "MAX_RECORD_SIZE",
    "MAX_CAPACITY",
    "MAX_PRODUCERS",
    "MAX_SLAB_SIZE",
    "MAX_SLABS",
    "MAX_CONSUMERS",
    "MAX_GROUPS",
    "DEFAULT_GROUP",
]
# The coroutines of the *_async methods are C objects (aio.c): asyncio's
# create_task, wait_for and gather take them as they take any coroutine.
import collections.abc as _abc

_abc.Coroutine.register(_ringmpsc._Await)

__version__ = "0.7.0"  # from VERSION by scripts/version.sh; do not edit

# A forked child must not reuse the parent's per-object locks (a parent thread may
# have held one) nor its Producers (they belong to the parent).
_os.register_at_fork(after_in_child=_ringmpsc._after_fork_child)


def _rebuild_channel(dupfd, name, cls=None):
    """Unpickle a Channel (or subclass) sent by multiprocessing: attach to the received fd."""
    fd = dupfd.detach()
    try:
        return (cls or Channel)._from_fd(fd, name)
    finally:
        _os.close(fd)


def _reduce_channel(ch):
    """multiprocessing's reducer: pass the region's fd (SCM_RIGHTS or inheritance).

    Used by ForkingPickler for Process arguments under spawn/forkserver and for
    Pool tasks and results under every start method. The fd works even after a
    named channel's name was unlinked. A subclass travels by reference (it must be
    importable in the child, as for any pickled class).
    """
    from multiprocessing.reduction import DupFd

    cls = type(ch)
    extra = () if cls is Channel else (cls,)
    return _rebuild_channel, (DupFd(ch.fileno()), ch.name) + extra


def _register_channel_type(cls):
    """Called by Channel.__init_subclass__: multiprocessing's reducers match exact types."""
    from multiprocessing import reduction

    reduction.register(cls, _reduce_channel)


_register_channel_type(Channel)

from .queue import Queue, QueueClosed  # noqa: E402  (needs the package whole)
