"""Beyond one machine: forward a channel into NATS JetStream, and ingest a stream into a channel.

Forward (``python -m ringmpsc forward NAME --server URL --subject S``, or
:class:`Forwarder`): a member of a consumer group of the channel (``default``
unless told) reads a span of records in place (one producer's ring, contiguous),
publishes every record with a pipelined publish (one reply subject per record,
one subscription for all the acknowledgements, nothing waited for per record),
and releases the span only once JetStream acknowledged every record of it. A
forwarder killed at any moment loses nothing: the span it held goes back to its
group and is delivered again, to the next member or forwarder (at-least-once
groups). A failed or timed-out publish is retried, whole, after a back-off: the
channel fills meanwhile and its producers see ``Full`` (or wait, per their own
timeouts); nothing is dropped.

Exactly once into the stream: every record carries the header ``Nats-Msg-Id:
<channel id>-<group>-<slot>-<position>`` (the region's random 64-bit id in hex, the
forwarder's group, the producer's slot, the record's ring position). Positions never
go back, not even when a slot is reused, so the id names one record of one channel
incarnation as one group receives it (every group receives every record: two groups
forwarding into one stream store it twice, as two deliveries; JetStream de-duplicates
per stream, whatever the subject); a
redelivered record has the id it had the first time, and JetStream drops it if
the stream stored that id within its ``duplicate_window`` (a stream setting,
default 2 minutes). A record redelivered later than that (a forwarder, or the
server, down for longer) is stored twice: make the window longer than the
outages the stream must absorb (it costs server memory per id in the window).

Order: records of one producer reach the stream in their order while one
forwarder serves the group (several share the work and interleave spans). A
publish that fails closes its connection and the retry starts from the span's
first record on a new one, so a record lost in flight is never stored after one
sent behind it (a client that reconnects by itself replays its buffered tail
first; the bridge's connections therefore do not reconnect by themselves).

Ingest (``python -m ringmpsc ingest --server URL --subject S NAME``, or
:class:`Ingester`): a durable JetStream pull consumer; each message is produced
into the channel (a record, zero-filled to record_size, or a message when the
channel has a slab pool) and acknowledged only after the send returned, i.e. the
record is committed. An ingester killed at any moment leaves every message it did
not acknowledge to be delivered again (after the consumer's ``ack_wait``): every
message reaches the channel at least once.

Engines: :class:`Sink` (publish a batch of (id, payload), return once every one
is acknowledged) and :class:`Source` (fetch, acknowledge) are all an engine has
to provide; :class:`JetStreamSink` and :class:`JetStreamSource` are NATS's.
Needs the ``nats-py`` package.
"""
import abc
import asyncio
import json
import logging
import random
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import DEFAULT_GROUP, Channel, Closed, Full

log = logging.getLogger("ringmpsc.bridge")

MSG_ID = "Nats-Msg-Id"  # JetStream's de-duplication header
_NO_RESPONDERS = "503"  # status of a publish no stream listens to
_SLAB_WAIT_SLICE = 0.2  # seconds: the ingester's longest wait in a thread for a free slab


class BridgeError(Exception):
    """A publish or fetch the engine refused, or did not answer in time."""


def channel_id(ch: Channel) -> int:
    """The channel's incarnation: the region's random 64-bit id."""
    return ch.stats()["channel_id"]


def record_id(incarnation: int, slot: int, position: int, group: str = DEFAULT_GROUP) -> str:
    """The id a record is published under by a member of group: the same every time that
    record is delivered to the group, another for each group."""
    return "%016x-%s-%d-%d" % (incarnation, group, slot, position)


class Backoff:
    """Delays between retries: first, doubling up to most, each drawn from [d/2, d]."""

    def __init__(self, first: float = 0.05, most: float = 5.0):
        self.first, self.most, self.n = first, most, 0

    def next(self) -> float:
        d = min(self.most, self.first * (2 ** min(self.n, 30)))
        self.n += 1
        return random.uniform(d / 2, d)

    def reset(self) -> None:
        self.n = 0


# ---------------------------------------------------------------------------
# The engine interface.


class Sink(abc.ABC):
    """Where a Forwarder publishes (one subclass per engine: publish is required)."""

    @abc.abstractmethod
    async def publish(self, records: Sequence[Tuple[str, bytes]], timeout: float) -> int:
        """Publish each (id, payload) in order; return once the engine acknowledged every one,
        with how many it recognised as duplicates by their id. Raise on any failure (the
        caller retries the whole batch with the same ids)."""

    async def close(self) -> None:
        """Drop the connection (a later publish connects again)."""
        return None  # optional: an engine without a connection has nothing to drop


class Source(abc.ABC):
    """What an Ingester fetches from (one subclass per engine: fetch, ack and reject are required).
    Messages have .data."""

    @abc.abstractmethod
    async def fetch(self, max_messages: int, timeout: float) -> List[Any]:
        """Up to max_messages messages, waiting up to timeout for the first; [] if none came."""

    @abc.abstractmethod
    async def ack(self, msg: Any) -> None:
        """The message is committed: never deliver it again."""

    async def touch(self, msg: Any) -> None:
        """Still working on it: do not deliver it again yet."""
        return None  # optional: an engine that does not redeliver on a timer needs nothing

    @abc.abstractmethod
    async def reject(self, msg: Any) -> None:
        """It can never be committed (too large for the channel): stop delivering it."""

    def deliveries(self, msg: Any) -> int:
        """How many times msg was delivered (1: the first time)."""
        return 1

    async def close(self) -> None:
        """Drop the connection (a later fetch connects again)."""
        return None  # optional, as Sink.close


# ---------------------------------------------------------------------------
# NATS JetStream.


def _nats():
    try:
        import nats
    except ImportError as e:
        raise ImportError("ringmpsc.bridge needs nats-py: pip install nats-py") from e
    return nats


_URL_SCHEMES = ("nats", "tls", "ws", "wss")  # what nats-py connects with


def _servers(server: str) -> List[str]:
    """The URLs of a server list ("nats://a:4222,nats://b:4222"; "host:port" means nats://);
    ValueError for one nats-py could never connect to."""
    from urllib.parse import urlparse

    servers = [u.strip() for u in server.split(",") if u.strip()]
    if not servers:
        raise ValueError("no server URL")
    for u in servers:
        try:
            url = urlparse(u if "://" in u else "nats://" + u)
            url.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as e:
            raise ValueError("invalid server URL %r: %s" % (u, e)) from None
        if url.scheme not in _URL_SCHEMES or not url.hostname:
            raise ValueError("invalid server URL %r (nats://HOST:PORT; schemes: %s)" % (u, ", ".join(_URL_SCHEMES)))
    return servers


def _check_subject(subject: str, wildcards: bool) -> None:
    """ValueError for a subject NATS refuses (publish subjects have no wildcards)."""
    tokens = subject.split(".")
    if not subject or any(not t or any(c.isspace() for c in t) for t in tokens):
        raise ValueError("invalid subject %r (dot-separated tokens, none empty, no spaces)" % subject)
    wild = [i for i, t in enumerate(tokens) if t in ("*", ">")]
    if wild and not wildcards:
        raise ValueError("subject %r has a wildcard: records are published to one subject" % subject)
    if any(tokens[i] == ">" and i != len(tokens) - 1 for i in wild):
        raise ValueError("invalid subject %r ('>' only as the last token)" % subject)


def _check_name(what: str, name: str) -> None:
    """ValueError for a stream or consumer name JetStream refuses."""
    if not name or any(c in name for c in ".*>/\\") or any(c.isspace() or not c.isprintable() for c in name):
        raise ValueError("invalid %s name %r (no '.', '*', '>', slashes or spaces)" % (what, name))


def _positive(**values: Optional[float]) -> None:
    for k, v in values.items():
        if v is not None and not v > 0:
            raise ValueError("%s must be > 0, not %r" % (k, v))


async def _connect(server: str, name: str, timeout: float, on_lost: Callable[[], None]):
    """A connection that does not reconnect by itself (see the module's "Order"): one try."""
    nats = _nats()
    errors: List[BaseException] = []

    async def lost():
        on_lost()

    async def error(e):
        errors.append(e)
        log.debug("%s: %s", server, e)

    try:
        # max_reconnect_attempts also bounds the first connect's tries (nats-py), and
        # reconnect_time_wait is the pause between them.
        servers = _servers(server)  # a cluster: "nats://a:4222,nats://b:4222"
        # pending_size=0: a publish only queues (the client's flusher task writes), never waits
        # for the socket itself; such a wait (a "forced flush") has no timeout and swallows a
        # cancellation, so a peer that reads nothing (a partition, a stopped server) would hold
        # a batch larger than the socket buffers past its ack timeout, and past SIGTERM.
        return await nats.connect(servers, name=name, allow_reconnect=False, max_reconnect_attempts=1,
                                  reconnect_time_wait=0, connect_timeout=max(1, round(timeout)),
                                  pending_size=0, disconnected_cb=lost, closed_cb=lost, error_cb=error)
    except Exception as e:
        raise BridgeError("cannot connect to %s: %s" % (server, errors[-1] if errors else e)) from None


async def _close(nc, server: str, timeout: float) -> None:
    """Close a connection within timeout: a peer that reads nothing never takes what the socket
    still holds (nats-py's close waits for that, without a limit), so it is then dropped."""
    task = asyncio.ensure_future(nc.close())
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        log.debug("closing the connection to %s: not done within %gs; dropping it", server, timeout)
        writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)  # nats-py's TcpTransport
        if writer is not None:
            writer.transport.abort()  # discards the unsent data: close() then ends
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            task.cancel()
            return
    if not task.cancelled() and task.exception() is not None:
        log.debug("closing the connection to %s: %s", server, task.exception())


async def _ensure_stream(js, subject: str, stream: Optional[str], duplicate_window: Optional[float]) -> str:
    """The stream that stores subject: stream, created (on subject) when it does not exist."""
    nats = _nats()
    if stream is not None:
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            from nats.js.api import StreamConfig

            cfg = StreamConfig(name=stream, subjects=[subject])
            if duplicate_window is not None:
                cfg.duplicate_window = duplicate_window
            await js.add_stream(cfg)
            log.info("created stream %s on subject %s", stream, subject)
    try:
        found = await js.find_stream_name_by_subject(subject)
    except nats.js.errors.NotFoundError:
        raise BridgeError("no stream stores subject %s (name one with --stream to create it)" % subject) from None
    if stream is not None and found != stream:
        raise BridgeError("subject %s is stored by stream %s, not %s" % (subject, found, stream))
    return found


class _Batch:
    __slots__ = ("base", "acked", "left", "duplicates", "done")

    def __init__(self, base: int, n: int, done: asyncio.Future):
        self.base, self.acked, self.left, self.duplicates, self.done = base, bytearray(n), n, 0, done

    def fail(self, e: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(e)


class JetStreamSink(Sink):
    """Publishes to a JetStream subject with pipelined acknowledgements.

    Each record goes out as one message whose reply subject is its own token under
    one inbox; a single subscription counts the acks, so a batch costs one publish
    per record and one wait, and no future per record. The first publish connects
    (and, with stream, creates the stream if it does not exist; duplicate_window in
    seconds, the server's default otherwise).
    """

    def __init__(self, server: str, subject: str, stream: Optional[str] = None,
                 duplicate_window: Optional[float] = None, connect_timeout: float = 2.0):
        _servers(server)
        _check_subject(subject, wildcards=False)
        if stream is not None:
            _check_name("stream", stream)
        _positive(duplicate_window=duplicate_window, connect_timeout=connect_timeout)
        self.server, self.subject, self.stream = server, subject, stream
        self.duplicate_window, self.connect_timeout = duplicate_window, connect_timeout
        self._nc: Any = None
        self._prefix = ""
        self._next = 0  # the next reply token
        self._batch: Optional[_Batch] = None

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def _lost(self) -> None:
        if self._batch is not None:
            self._batch.fail(BridgeError("connection to %s lost" % self.server))

    async def _open(self) -> None:
        nc = await _connect(self.server, "ringmpsc-forward", self.connect_timeout, self._lost)
        try:
            await _ensure_stream(nc.jetstream(), self.subject, self.stream, self.duplicate_window)
            inbox = nc.new_inbox()
            await nc.subscribe(inbox + ".*", cb=self._on_ack)
        except BaseException:
            await _close(nc, self.server, self.connect_timeout)
            raise
        self._nc, self._prefix = nc, inbox + "."

    async def _on_ack(self, msg) -> None:
        b = self._batch
        try:
            i = int(msg.subject[len(self._prefix):]) - b.base if b is not None else -1
        except ValueError:
            return
        if b is None or not 0 <= i < len(b.acked) or b.acked[i]:
            return  # an ack of an earlier attempt
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            b.fail(BridgeError("no stream answered on subject %s" % self.subject))
            return
        data = msg.data
        # Most acks are {"stream":"S", "seq":N}: parsed only when they may say more (an error,
        # a duplicate: the server writes "duplicate": true), or name a stream "error".
        if b'"error"' in data or b'"duplicate"' in data:
            try:
                ack = json.loads(data)
            except ValueError:
                ack = None
            if not isinstance(ack, dict):
                b.fail(BridgeError("JetStream answered %r" % data[:200]))
                return
            err = ack.get("error")
            if err:
                what = ("%s (%s)" % (err.get("description"), err.get("err_code", err.get("code")))
                        if isinstance(err, dict) else str(err))
                b.fail(BridgeError("JetStream refused a record: %s" % what))
                return
            if ack.get("duplicate"):
                b.duplicates += 1
        b.acked[i] = 1
        b.left -= 1
        if b.left == 0 and not b.done.done():
            b.done.set_result(None)

    async def publish(self, records: Sequence[Tuple[str, bytes]], timeout: float) -> int:
        if not self.connected:
            await self.close()
            await self._open()
        nc, subject, prefix = self._nc, self.subject, self._prefix
        b = _Batch(self._next, len(records), asyncio.get_running_loop().create_future())
        self._next += len(records)
        self._batch = b
        try:
            token = b.base
            for rid, payload in records:
                await nc.publish(subject, payload, reply=prefix + str(token), headers={MSG_ID: rid})
                token += 1
                if b.done.done():
                    break  # failed already
            try:
                await asyncio.wait_for(asyncio.shield(b.done), timeout)
            except asyncio.TimeoutError:
                raise BridgeError("%d of %d records not acknowledged within %gs"
                                  % (b.left, len(records), timeout)) from None
            return b.duplicates
        except BaseException:
            # Whatever this connection still carries stays behind it: the retry
            # starts over, from the first record, on a new one.
            await self.close()
            raise
        finally:
            self._batch = None
            if not b.done.done():
                b.done.cancel()
            elif not b.done.cancelled():
                b.done.exception()  # retrieved: no "never retrieved" warning

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            await _close(nc, self.server, self.connect_timeout)


class JetStreamSource(Source):
    """A durable JetStream pull consumer (created when missing: explicit acks,
    ack_wait seconds before an unacknowledged message is delivered again)."""

    def __init__(self, server: str, subject: str, durable: str = "ringmpsc", stream: Optional[str] = None,
                 ack_wait: float = 30.0, max_ack_pending: int = 4096, connect_timeout: float = 2.0):
        _servers(server)
        _check_subject(subject, wildcards=True)
        _check_name("durable", durable)
        if stream is not None:
            _check_name("stream", stream)
        _positive(ack_wait=ack_wait, max_ack_pending=max_ack_pending, connect_timeout=connect_timeout)
        self.server, self.subject, self.durable, self.stream = server, subject, durable, stream
        self.ack_wait, self.max_ack_pending, self.connect_timeout = ack_wait, max_ack_pending, connect_timeout
        self._nc: Any = None
        self._sub: Any = None

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def _open(self) -> None:
        from nats.js.api import ConsumerConfig

        nc = await _connect(self.server, "ringmpsc-ingest", self.connect_timeout, lambda: None)
        try:
            js = nc.jetstream()
            stream = await _ensure_stream(js, self.subject, self.stream, None)
            cfg = ConsumerConfig(ack_wait=self.ack_wait, max_ack_pending=self.max_ack_pending)
            self._sub = await js.pull_subscribe(self.subject, durable=self.durable, stream=stream, config=cfg)
        except BaseException:
            await _close(nc, self.server, self.connect_timeout)
            raise
        self._nc = nc

    async def fetch(self, max_messages: int, timeout: float) -> List[Any]:
        if not self.connected:
            await self.close()
            await self._open()
        try:
            return await self._sub.fetch(max_messages, timeout=timeout)
        except _nats().errors.TimeoutError:
            if not self.connected:
                raise BridgeError("connection to %s lost" % self.server) from None
            return []

    async def ack(self, msg: Any) -> None:
        await msg.ack()

    async def touch(self, msg: Any) -> None:
        await msg.in_progress()

    async def reject(self, msg: Any) -> None:
        await msg.term()

    def deliveries(self, msg: Any) -> int:
        try:
            return msg.metadata.num_delivered or 1
        except Exception:
            return 1

    async def close(self) -> None:
        nc, self._nc, self._sub = self._nc, None, None
        if nc is not None:
            await _close(nc, self.server, self.connect_timeout)


# ---------------------------------------------------------------------------
# Forward and ingest.


def _open_channel(channel: Union[Channel, str]) -> Channel:
    return channel if isinstance(channel, Channel) else Channel.open(channel)


class Forwarder:
    """Forward a channel's records into a Sink (run(); stats() at any time).

    A member of consumer group `group` (created, durable and at-least-once, if
    absent). Spans of up to `batch` records are published whole and released only
    once every record was acknowledged; a failed publish is retried after a
    back-off (first_backoff doubling up to max_backoff seconds), with the same ids.
    `encode` turns a record (record_size bytes) into the payload (default: as is).
    Records are forwarded as records: a channel with a slab pool is refused (its
    messages' records only name slabs, and releasing them would not free the slabs).
    """

    def __init__(self, channel: Union[Channel, str], sink: Sink, group: str = DEFAULT_GROUP, batch: int = 1024,
                 ack_timeout: float = 5.0, encode: Optional[Callable[[bytes], bytes]] = None,
                 first_backoff: float = 0.05, max_backoff: float = 5.0):
        if batch < 1:
            raise ValueError("batch must be >= 1")
        _positive(ack_timeout=ack_timeout, first_backoff=first_backoff, max_backoff=max_backoff)
        self.channel = _open_channel(channel)
        if self.channel.slabs > 0:
            # A message's record is a slab descriptor: forwarding it would store slab numbers, not
            # the message, and consuming it leaves its slabs taken until the pool runs dry.
            raise ValueError("channel %s has a slab pool: the forwarder forwards records, and messages sent "
                             "over slabs cannot be forwarded yet" % self.channel.name)
        self.sink, self.group, self.batch, self.ack_timeout = sink, group, batch, ack_timeout
        self.encode = encode
        self._backoff = (first_backoff, max_backoff)
        self._s: Dict[str, Any] = dict(forwarded=0, spans=0, duplicates=0, redelivered=0, retries=0,
                                       last_error=None, last_error_at=None, last_ack_at=None, in_flight=0,
                                       started_at=None)

    def stats(self) -> Dict[str, Any]:
        """Progress, errors and lag: forwarded (records acknowledged), spans, duplicates (records
        the engine already had: redeliveries it dropped), redelivered (records this member got
        again after another died holding them), retries, last_error (and when), last_ack_at,
        in_flight (records published and not yet acknowledged), connected, and the group's
        lag (records committed it has not taken) and unreleased (taken, not yet released)."""
        s = dict(self._s)
        s["group"] = self.group
        s["connected"] = bool(getattr(self.sink, "connected", False))
        s["lag"] = s["unreleased"] = None
        try:
            for g in self.channel.stats()["groups"]:
                if g["name"] == self.group:
                    s["lag"], s["unreleased"] = g["pending"], g["unreleased"]
        except Exception as e:  # the stats of a channel being released
            log.debug("stats: %s", e)
        return s

    async def _publish(self, records: List[Tuple[str, bytes]]) -> None:
        backoff = Backoff(*self._backoff)
        s = self._s
        while True:
            s["in_flight"] = len(records)
            try:
                dups = await self.sink.publish(records, self.ack_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                delay = backoff.next()
                s["retries"] += 1
                s["last_error"], s["last_error_at"] = "%s: %s" % (type(e).__name__, e), time.time()
                log.warning("publish of %d records failed (%s); retrying in %.2fs", len(records), s["last_error"],
                            delay)
                await asyncio.sleep(delay)
                continue
            finally:
                s["in_flight"] = 0
            if backoff.n:
                log.info("publishing again after %d failed attempts", backoff.n)
            s["forwarded"] += len(records)
            s["duplicates"] += dups
            s["spans"] += 1
            s["last_ack_at"] = time.time()
            return

    async def run(self) -> None:
        """Forward until the channel is closed and drained (then return); cancel it to stop.
        A span held when cancelled goes back to the group (delivered again, same ids)."""
        ch = self.channel
        member = ch.consumer(self.group)
        rs = ch.record_size
        prefix = record_id(channel_id(ch), 0, 0, self.group)[:-len("0-0")]  # "<channel id>-<group>-"
        encode = self.encode
        self._s["started_at"] = time.time()
        log.info("forwarding channel %s (group %s) to %s", ch.name, self.group, getattr(self.sink, "server", "?"))
        try:
            while True:
                try:
                    view: Any = await member.read_async(self.batch)  # a buffer (typed so from 3.12)
                except Closed:
                    log.info("channel %s closed and drained", ch.name)
                    return
                try:
                    with memoryview(view) as mv:
                        data = mv.tobytes()
                    pos, head = view.position, "%s%d-" % (prefix, view.slot)
                    if view.deliveries > 1:
                        self._s["redelivered"] += len(view)
                    if encode is None:
                        records = [(head + str(pos + i), data[i * rs:(i + 1) * rs]) for i in range(len(view))]
                    else:
                        records = [(head + str(pos + i), encode(data[i * rs:(i + 1) * rs]))
                                   for i in range(len(view))]
                    await self._publish(records)
                    view.consume()
                finally:
                    if not view.done:
                        view.cancel()
        finally:
            member.close()
            await self.sink.close()


class Ingester:
    """Produce a Source's messages into a channel, acknowledging each once committed.

    A record channel takes messages of up to record_size bytes (zero-filled); a
    channel with a slab pool takes messages (Producer.send_message, up to
    message_max). A message too large for it can never be committed: it is logged,
    counted (rejected) and rejected at the source. While the channel is full the
    message is kept alive at the source (touch) every touch_every seconds (default: a
    third of the source's ack_wait, else 10 s), so it is not delivered again meanwhile.
    """

    def __init__(self, channel: Union[Channel, str], source: Source, batch: int = 256, fetch_wait: float = 5.0,
                 touch_every: Optional[float] = None, first_backoff: float = 0.05, max_backoff: float = 5.0):
        if batch < 1:
            raise ValueError("batch must be >= 1")
        _positive(fetch_wait=fetch_wait, touch_every=touch_every, first_backoff=first_backoff, max_backoff=max_backoff)
        self.channel = _open_channel(channel)
        if touch_every is None:
            ack_wait = getattr(source, "ack_wait", None)
            touch_every = ack_wait / 3 if ack_wait else 10.0
        self.source, self.batch, self.fetch_wait, self.touch_every = source, batch, fetch_wait, touch_every
        self._backoff = (first_backoff, max_backoff)
        self._s: Dict[str, Any] = dict(committed=0, acked=0, redelivered=0, rejected=0, full_waits=0, retries=0,
                                       last_error=None, last_error_at=None, started_at=None)

    def stats(self) -> Dict[str, Any]:
        """committed (sent into the channel), acked, redelivered (messages delivered again: an
        earlier ingester died, or its ack was lost), rejected, full_waits (touch_every periods
        spent waiting for room in the channel), retries, last_error (and when), connected."""
        s = dict(self._s)
        s["connected"] = bool(getattr(self.source, "connected", False))
        return s

    def _error(self, what: str, e: BaseException) -> None:
        self._s["last_error"], self._s["last_error_at"] = "%s: %s: %s" % (what, type(e).__name__, e), time.time()

    async def _send(self, p, data: bytes, held: Sequence[Any]) -> None:
        """Commit data into the channel, however long that waits (touching the messages held
        meanwhile: this one and the rest of its batch)."""
        messages = self.channel.slabs > 0
        while True:
            try:
                if messages:
                    try:
                        p.send_message(data, 0)
                    except Full:
                        await self._send_message_waiting(p, data)
                else:
                    await p.send_async(data, self.touch_every)
                return
            except Full:
                self._s["full_waits"] += 1
                log.warning("channel %s full for %gs: holding the message", self.channel.name, self.touch_every)
                try:
                    for msg in held:
                        await self.source.touch(msg)
                except Exception as e:
                    self._error("touch", e)

    async def _send_message_waiting(self, p, data: bytes) -> None:
        """send_message waiting up to touch_every for a free slab (Full after it): in a thread (no
        fd says when a slab comes free), in short slices, because a thread cannot be cancelled:
        a stop (and the producer's close, which waits for the call) waits for one slice only."""
        left = self.touch_every
        while True:
            step = min(left, _SLAB_WAIT_SLICE)
            try:
                await asyncio.to_thread(p.send_message, data, step)
                return
            except Full:
                left -= step
                if left <= 0:
                    raise

    def _fits(self, data: bytes) -> bool:
        ch = self.channel
        return len(data) <= (ch.message_max if ch.slabs > 0 else ch.record_size)

    async def run(self) -> None:
        """Ingest until cancelled (or the channel is closed: then return)."""
        ch, src, s = self.channel, self.source, self._s
        p = ch.producer(timeout=None)
        backoff = Backoff(*self._backoff)
        s["started_at"] = time.time()
        log.info("ingesting %s into channel %s", getattr(src, "subject", "?"), ch.name)
        try:
            while True:
                try:
                    msgs = await src.fetch(self.batch, self.fetch_wait)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    delay = backoff.next()
                    s["retries"] += 1
                    self._error("fetch", e)
                    log.warning("fetch failed (%s); retrying in %.2fs", s["last_error"], delay)
                    await src.close()
                    await asyncio.sleep(delay)
                    continue
                backoff.reset()
                for k, msg in enumerate(msgs):
                    data = msg.data
                    if src.deliveries(msg) > 1:
                        s["redelivered"] += 1
                    if not self._fits(data):
                        s["rejected"] += 1
                        log.error("a message of %d bytes does not fit channel %s: rejected at the source",
                                  len(data), ch.name)
                        await src.reject(msg)
                        continue
                    try:
                        await self._send(p, data, msgs[k:])
                    except Closed:
                        log.info("channel %s closed", ch.name)
                        return
                    s["committed"] += 1
                    try:
                        await src.ack(msg)  # only now: the record is committed
                        s["acked"] += 1
                    except Exception as e:  # delivered again later: at least once
                        self._error("ack", e)
                        log.warning("ack failed (%s): the message will be delivered again", s["last_error"])
        finally:
            p.close()
            await src.close()


# ---------------------------------------------------------------------------
# Convenience coroutines.


async def forward(channel: Union[Channel, str], server: str, subject: str, stream: Optional[str] = None,
                  group: str = DEFAULT_GROUP, batch: int = 1024, **kw: Any) -> Forwarder:
    """Forward channel into JetStream subject until the channel is closed and drained.
    kw: Forwarder's (ack_timeout, encode, backoff) and JetStreamSink's (duplicate_window)."""
    sink = JetStreamSink(server, subject, stream, duplicate_window=kw.pop("duplicate_window", None))
    f = Forwarder(channel, sink, group=group, batch=batch, **kw)
    await f.run()
    return f


async def ingest(channel: Union[Channel, str], server: str, subject: str, durable: str = "ringmpsc",
                 stream: Optional[str] = None, **kw: Any) -> Ingester:
    """Ingest JetStream subject into channel until cancelled. kw: Ingester's and
    JetStreamSource's (ack_wait, max_ack_pending)."""
    src_kw = {k: kw.pop(k) for k in ("ack_wait", "max_ack_pending") if k in kw}
    i = Ingester(channel, JetStreamSource(server, subject, durable, stream, **src_kw), **kw)
    await i.run()
    return i
