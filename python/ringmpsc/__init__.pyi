"""Type stubs for ringmpsc (the extension module ringmpsc._ringmpsc)."""
import queue
import sys
from types import TracebackType
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple, Type, Union, final

from typing_extensions import disjoint_base

from .queue import Queue as Queue
from .queue import QueueClosed as QueueClosed

if sys.version_info >= (3, 12):
    from collections.abc import Buffer as _Buffer
else:
    _Buffer = Union[bytes, bytearray, memoryview, Any]

_Timeout = Optional[float]

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
__version__: str
MAX_RECORD_SIZE: int
MAX_CAPACITY: int
MAX_PRODUCERS: int
MAX_SLAB_SIZE: int
MAX_SLABS: int
MAX_CONSUMERS: int
MAX_GROUPS: int
DEFAULT_GROUP: str

class Error(Exception):
    """Base class of ringmpsc's errors."""

class Full(Error, queue.Full):
    """No space: the ring (or slab pool) is full. Also a queue.Full."""

class Empty(Error, queue.Empty):
    """No record arrived in time. Also a queue.Empty."""

class Closed(Error):
    """The channel is closed (for the consumer: closed and drained)."""

class TooManyProducers(Error):
    """Every producer slot is held by a live producer."""

class ConsumerBusy(Error):
    """No consumer place: every member place (max_consumers) or group place (max_groups) is taken."""

class CorruptRegion(Error):
    """The region is not a valid (or compatible) channel, or a ring was fenced off."""

def unlink(name: str) -> None:
    """Remove a named channel's name; processes that have it open keep using it."""

@final
class Reservation:
    """Space reserved in a producer's ring; a writable buffer of len(self) records.

    Not cleared: it holds what the ring carried there one lap earlier; write every byte you commit.

    Views of it (a memoryview, a NumPy array made from one) alias ring memory and may not outlive it:
    commit() and abort() raise BufferError while one is exported and leave the reservation open (release
    the views, call again). A with block ending while its view still has an export (an array kept past
    the block) aborts the reservation, so nothing is sent and the producer is free, and raises
    BufferError. Delete such arrays inside the block (``del arr``).
    """

    @property
    def nbytes(self) -> int: ...
    @property
    def slot(self) -> int: ...
    @property
    def done(self) -> bool: ...
    def commit(self, k: Optional[int] = None) -> None:
        """Publish the first k records (default all; 0 aborts).

        BufferError while views are exported; the reservation then stays open.
        """
    def abort(self) -> None:
        """Drop the reservation; nothing is published."""
    def __len__(self) -> int: ...
    if sys.version_info >= (3, 12):
        def __buffer__(self, flags: int, /) -> memoryview: ...

    def __enter__(self) -> memoryview: ...
    def __exit__(
        self, et: Optional[Type[BaseException]], ev: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

@final
class ReadView:
    """Records readable in place; a read-only buffer of len(self) records.

    Views of it (a memoryview, a NumPy array made from one) alias ring memory and may not outlive it:
    consume() and cancel() raise BufferError while one is exported and leave the view open (release the
    views, call again). A with block ending while its view still has an export cancels the read view,
    so nothing is consumed and the records are read again, and raises BufferError. Copy what you keep
    (``np.frombuffer(view, ...).copy()``) or delete the array inside the block.
    """

    @property
    def nbytes(self) -> int: ...
    @property
    def slot(self) -> int: ...
    @property
    def done(self) -> bool: ...
    @property
    def position(self) -> int:
        """Ring position of the first record (record i at position + i); with slot, the records' identity."""
    @property
    def deliveries(self) -> int:
        """1 for a first delivery, more when a member of the group died holding these records."""
    def consume(self, k: Optional[int] = None) -> None:
        """Consume the first k records (default all; 0 cancels).

        BufferError while views are exported; the read view then stays open.
        """
    def cancel(self) -> None:
        """Consume nothing; the records are read again next time."""
    def __len__(self) -> int: ...
    if sys.version_info >= (3, 12):
        def __buffer__(self, flags: int, /) -> memoryview: ...

    def __enter__(self) -> memoryview: ...
    def __exit__(
        self, et: Optional[Type[BaseException]], ev: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

@final
class Producer:
    """A producer bound to one ring of a Channel (Channel.producer())."""

    @property
    def slot(self) -> int: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def closed(self) -> bool: ...
    def send(self, data: _Buffer, timeout: _Timeout = None) -> None:
        """Send one record (len(data) <= record_size; the rest zero-filled)."""
    def send_nowait(self, data: _Buffer, /) -> None:
        """send(data, timeout=0)."""
    def send_many(self, data: _Buffer, timeout: _Timeout = None) -> int:
        """Send len(data) // record_size records; returns how many were sent."""
    def reserve(self, n: int = 1, timeout: _Timeout = None) -> Reservation:
        """Reserve 1..n contiguous records to write in place."""
    def send_bytes(self, data: _Buffer, timeout: _Timeout = None) -> None:
        """Send a variable-length message (<= slab_size) through the slab pool."""
    def send_message(self, data: Union[_Buffer, List[_Buffer], Tuple[_Buffer, ...]], timeout: _Timeout = None) -> None:
        """Send one message (<= channel.message_max bytes; parts sent as their concatenation)."""
    async def send_async(self, data: _Buffer, timeout: _Timeout = None) -> None:
        """Coroutine: send() waiting in the running event loop; a cancelled await sends nothing."""
    async def send_bytes_async(self, data: _Buffer, timeout: _Timeout = None) -> None:
        """Coroutine: send_bytes() waiting in the running event loop (a slab is polled for)."""
    def ready_fd(self) -> int:
        """A descriptor readable when the ring may have space (owned by the producer; do not close)."""
    def ready_arm(self) -> float:
        """Announce a wait for space: 0.0 a record fits now, else wait for ready_fd() at most t seconds."""
    def ready_disarm(self) -> None:
        """Withdraw the announcement of a wait given up."""
    def count_dropped(self, n: int = 1, /) -> None:
        """Count n records given up on (stats: 'dropped', 'drop_episodes'), visible to every process."""
    def close(self) -> None:
        """Deregister; committed records stay readable."""
    def __enter__(self) -> Producer: ...
    def __exit__(
        self, et: Optional[Type[BaseException]], ev: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

@disjoint_base
class Channel:
    """A multi-producer, single-consumer channel of fixed-size records in shared memory."""

    def __new__(
        cls,
        record_size: int,
        capacity: int = 4096,
        max_producers: int = 16,
        *,
        name: Optional[str] = None,
        slab_size: int = 0,
        slabs: int = 0,
        full_fences: bool = False,
        max_consumers: int = 1,
        max_groups: Optional[int] = None,
        mode: int = 0o600,
        group: Union[int, str, None] = None,
    ) -> Channel: ...
    @classmethod
    def open(cls, name: str) -> Channel:
        """Attach to an existing named channel (validated)."""
    @classmethod
    def _from_fd(cls, fd: int, name: Optional[str] = None) -> Channel: ...
    @property
    def record_size(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_producers(self) -> int: ...
    @property
    def slab_size(self) -> int: ...
    @property
    def slabs(self) -> int: ...
    @property
    def message_max(self) -> int: ...
    @property
    def name(self) -> Optional[str]: ...
    @property
    def closed(self) -> bool: ...
    @property
    def max_consumers(self) -> int: ...
    @property
    def max_groups(self) -> int: ...
    @property
    def group(self) -> Optional[str]:
        """'default' while this Channel's handle is a member of the default group, else None."""
    @property
    def last_deliveries(self) -> int:
        """Deliveries of the records the last receive returned (1 first, more redelivered, 0 before any)."""
    def producer(self, timeout: _Timeout = 0) -> Producer:
        """Register a producer in this process, waiting up to timeout for a free slot."""
    def consumer(self, group: Optional[str] = None, *, ephemeral: bool = False,
                 at_most_once: bool = False) -> Consumer:
        """Join a consumer group (created if absent) and return its Consumer."""
    def wait_pending_below(self, limit: int, timeout: _Timeout = None) -> None:
        """Wait until fewer than limit records are pending (not released by every group); Full after timeout."""
    def leave(self) -> None:
        """Give up this Channel's membership of the default group (the consumer role)."""
    def remove_group(self, name: Optional[str] = None) -> None:
        """Remove a group without live members (None: the default group)."""
    def recv(self, timeout: _Timeout = None) -> bytes:
        """Receive one record."""
    def recv_nowait(self) -> bytes:
        """recv(timeout=0)."""
    def recv_many(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> bytes:
        """Wait for >= 1 record, return all available (up to max_records) concatenated."""
    def recv_into(self, buffer: _Buffer, timeout: _Timeout = None) -> int:
        """Copy whole records into a writable buffer; returns the number of records."""
    def read(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> ReadView:
        """Zero-copy read of contiguous records of one producer."""
    def recv_bytes(self, timeout: _Timeout = None) -> bytes:
        """Receive one message sent with Producer.send_bytes."""
    def recv_messages(
        self,
        max_messages: Optional[int] = None,
        timeout: _Timeout = None,
        max_bytes: Optional[int] = None,
        bytearray_from: Optional[int] = None,
    ) -> List[Union[bytes, bytearray]]:
        """Wait for >= 1 message (Producer.send_message), return every one available (to max_messages, max_bytes)."""
    async def recv_async(self, timeout: _Timeout = None) -> bytes:
        """Coroutine: recv() waiting in the running event loop; a cancelled await takes nothing."""
    async def recv_many_async(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> bytes:
        """Coroutine: recv_many() waiting in the running event loop."""
    async def read_async(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> ReadView:
        """Coroutine: read() waiting in the running event loop."""
    async def recv_bytes_async(self, timeout: _Timeout = None) -> bytes:
        """Coroutine: recv_bytes() waiting in the running event loop."""
    def ready_fd(self) -> int:
        """A descriptor readable when records may be ready (owned by the membership; do not close)."""
    def ready_arm(self) -> float:
        """Announce a wait: 0.0 ready now, else wait for ready_fd() at most t seconds."""
    def ready_disarm(self) -> None:
        """Withdraw the announcement of a wait given up."""
    def set_coalesce(self, min_records: int, max_delay: float) -> None:
        """Coalesce wake-ups: linger until min_records records or max_delay seconds (0..1)."""
    @property
    def coalesce(self) -> Tuple[int, float]:
        """(min_records, max_delay seconds) of wake-up coalescing."""
    def close(self) -> None:
        """Close the channel for every process."""
    def stats(self) -> Dict[str, Any]:
        """A snapshot of the channel's figures, with 'producers', 'groups', 'members': List[Dict[str, Any]]."""
    def fileno(self) -> int:
        """The region's (mapping's) fd, for passing the channel on; NOT pollable: wait on ready_fd()."""
    def reclaim_dead(self) -> int:
        """Reclaim slots of dead producers and recover dead group members; returns how many."""
    def __len__(self) -> int:
        """Records committed and not yet consumed (a snapshot)."""
    def __bool__(self) -> bool:
        """Always True, even when empty."""
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def __anext__(self) -> bytes: ...

@final
class Consumer:
    """A member of a consumer group of a Channel (Channel.consumer())."""

    @property
    def group(self) -> str: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def closed(self) -> bool: ...
    @property
    def ephemeral(self) -> bool: ...
    @property
    def at_most_once(self) -> bool: ...
    @property
    def last_deliveries(self) -> int:
        """Deliveries of the records the last receive returned (1 first, more redelivered, 0 before any)."""
    def recv(self, timeout: _Timeout = None) -> bytes:
        """Receive one record."""
    def recv_nowait(self) -> bytes:
        """recv(timeout=0)."""
    def recv_many(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> bytes:
        """Wait for >= 1 record, return all available (up to max_records) concatenated."""
    def recv_into(self, buffer: _Buffer, timeout: _Timeout = None) -> int:
        """Copy whole records into a writable buffer; returns the number of records."""
    def read(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> ReadView:
        """Zero-copy read of contiguous records of one producer."""
    def recv_bytes(self, timeout: _Timeout = None) -> bytes:
        """Receive one message sent with Producer.send_bytes."""
    def recv_messages(
        self,
        max_messages: Optional[int] = None,
        timeout: _Timeout = None,
        max_bytes: Optional[int] = None,
        bytearray_from: Optional[int] = None,
    ) -> List[Union[bytes, bytearray]]:
        """Wait for >= 1 message (Producer.send_message), return every one available (to max_messages, max_bytes)."""
    async def recv_async(self, timeout: _Timeout = None) -> bytes:
        """Coroutine: recv() waiting in the running event loop; a cancelled await takes nothing."""
    async def recv_many_async(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> bytes:
        """Coroutine: recv_many() waiting in the running event loop."""
    async def read_async(self, max_records: Optional[int] = None, timeout: _Timeout = None) -> ReadView:
        """Coroutine: read() waiting in the running event loop."""
    async def recv_bytes_async(self, timeout: _Timeout = None) -> bytes:
        """Coroutine: recv_bytes() waiting in the running event loop."""
    def ready_fd(self) -> int:
        """A descriptor readable when records may be ready (owned by the membership; do not close)."""
    def ready_arm(self) -> float:
        """Announce a wait: 0.0 ready now, else wait for ready_fd() at most t seconds."""
    def ready_disarm(self) -> None:
        """Withdraw the announcement of a wait given up."""
    def set_coalesce(self, min_records: int, max_delay: float) -> None:
        """Coalesce wake-ups: linger until min_records records or max_delay seconds (0..1)."""
    @property
    def coalesce(self) -> Tuple[int, float]:
        """(min_records, max_delay seconds) of wake-up coalescing."""
    def close(self) -> None:
        """Leave the group and release the handle (the channel stays open)."""
    def __enter__(self) -> Consumer: ...
    def __exit__(
        self, et: Optional[Type[BaseException]], ev: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...
    def __len__(self) -> int:
        """Records committed and not yet consumed by this group (a snapshot)."""
    def __bool__(self) -> bool:
        """Always True, even when empty."""
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def __anext__(self) -> bytes: ...
