"""Command-line tools: ``python -m ringmpsc list``, ``info NAME``, ``unlink NAME``, and the
JetStream bridge's ``forward NAME`` and ``ingest NAME`` (ringmpsc.bridge)."""
import argparse
import grp
import os
import pwd
import stat
import sys

from . import Channel, CorruptRegion, Error

SHM_DIR = "/dev/shm"  # where shm_open puts named channels on Linux
_MAGIC = b"RINGMPSC"  # a channel region's first 8 bytes (the header's magic, little-endian)
_HEADER_SIZE = 4096
_FIFO_PREFIX = ".ringmpsc-"  # the channels' readiness FIFOs, not channels


def _producer_counts(s):
    """(live, dead): a slot stays active until someone reclaims it, so say which of them are gone."""
    gone = sum(1 for r in s["producers"] if r["state"] == "active" and not r["alive"])
    return s["active_producers"] - gone, gone


def _group_name(gid):
    try:
        return "%s (%d)" % (grp.getgrgid(gid).gr_name, gid)
    except KeyError:
        return str(gid)


def _info(name):
    # Attaching never claims the consumer role or registers a producer.
    ch = Channel.open(name)
    s = ch.stats()
    if s["slabs"]:
        region = "slab pool: %d x %d bytes, %d free" % (s["slabs"], s["slab_size"], s["slabs_free"])
    else:
        region = "slab pool: none"
    print("channel %s" % s["name"])
    print("  record_size %d, capacity %d per ring, max_producers %d"
          % (s["record_size"], s["capacity"], s["max_producers"]))
    print("  " + region)
    print("  state: %s" % ("closed" if s["closed"] else "open"))
    # Only named channels are opened here, and POSIX shm cannot be sealed.
    print("  sealed: no (a named region: any process with write access to /dev/shm%s can shrink it,"
          " and every process that maps it then dies of SIGBUS)" % s["name"])
    print("  consumer: %s" % ("pid %d" % s["consumer_pid"] if s["consumer_pid"] else "none"))
    print("  consumer places: %d (max_consumers), %d in use; group places: %d (max_groups); recovered members: %d"
          % (s["max_consumers"], len(s["members"]), s["max_groups"], s["recovered_members"]))
    print("  records: %d pending, %d committed, %d consumed, %d dropped by producers (%d episodes)"
          % (s["pending"], s["committed"], s["consumed"], s["dropped"], s["drop_episodes"]))
    print("  region file: mode %04o, group %s; channel id %016x"
          % (s["mode"], _group_name(s["gid"]), s["channel_id"]))
    print("  fenced rings: %d, reclaimed producer slots: %d" % (s["fenced_rings"], s["reclaimed_slots"]))
    live, gone = _producer_counts(s)
    print("  producers: %d live%s" % (live, ", %d dead (not reclaimed yet)" % gone if gone else ""))
    if s["producers"]:
        print("    %5s  %-11s %8s %-6s %10s %12s %12s"
              % ("slot", "state", "pid", "alive", "pending", "committed", "consumed"))
        for r in s["producers"]:
            print("    %5d  %-11s %8d %-6s %10d %12d %12d" % (
                r["slot"], r["state"], r["pid"], "yes" if r["alive"] else "no", r["pending"], r["committed"],
                r["consumed"]))
    print("  groups: %d" % len(s["groups"]))
    if s["groups"]:
        print("    %-20s %-26s %7s %5s %-4s %6s %10s %10s %11s"
              % ("name", "kind", "members", "live", "solo", "claims", "lag", "unreleased", "redelivered"))
        for g in s["groups"]:
            kind = "%s, %s" % ("ephemeral" if g["ephemeral"] else "durable",
                               "at-most-once" if g["at_most_once"] else "at-least-once")
            print("    %-20s %-26s %7d %5d %-4s %6d %10d %10d %11d" % (
                g["name"], kind, g["members"], g["live_members"], "yes" if g["solo"] else "no", g["claims"],
                g["pending"], g["unreleased"], g["redelivered"]))
    if s["members"]:
        print("  members: %d" % len(s["members"]))
        print("    %8s %-6s %-20s %-10s %s" % ("pid", "alive", "group", "state", "claim"))
        for m in s["members"]:
            claim = "%d records of slot %d" % (m["claim"][1], m["claim"][0]) if m["claim"] else "none"
            print("    %8d %-6s %-20s %-10s %s" % (
                m["pid"], "yes" if m["alive"] else "no", m["group"], m["state"], claim))
    return 0


def _owner(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" if unit == "B" or n == int(n) else "%.1f %s") % (n, unit)
        n /= 1024.0
    return ""  # not reached


def _reason(e):
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return "%s: %s" % (type(e).__name__, e)


def _probe(path):
    """The stat of a regular file that starts like a channel region, None for anything else;
    OSError when it cannot be read."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None  # gone since listed
    if not stat.S_ISREG(st.st_mode) or st.st_size < _HEADER_SIZE:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or os.pread(fd, len(_MAGIC), 0) != _MAGIC:
            return None
    finally:
        os.close(fd)
    return st


def _state(name):
    """(state, producers, consumers) of a named channel, from its stats."""
    # Attaching never claims the consumer role or registers a producer.
    s = Channel.open(name).stats()
    live, gone = _producer_counts(s)
    alive = sum(1 for m in s["members"] if m["alive"])
    dead = len(s["members"]) - alive
    return ("closed" if s["closed"] else "open",
            "%d live%s" % (live, ", %d dead" % gone if gone else ""),
            "%d live%s" % (alive, ", %d dead" % dead if dead else ""))


def _list(shm_dir=SHM_DIR):
    rows = []
    for entry in sorted(os.listdir(shm_dir)):
        if entry.startswith(_FIFO_PREFIX):
            continue
        path = os.path.join(shm_dir, entry)
        try:
            st = _probe(path)
        except OSError as e:
            # Unreadable: perhaps a channel, perhaps not; say why it was not looked at.
            try:
                st = os.lstat(path)
            except OSError:
                continue
            rows.append((entry, _owner(st.st_uid), "%04o" % stat.S_IMODE(st.st_mode), _size(st.st_size),
                         "unreadable: %s" % _reason(e)))
            continue
        if st is None:
            continue  # not a channel
        row = (entry, _owner(st.st_uid), "%04o" % stat.S_IMODE(st.st_mode), _size(st.st_size))
        try:
            rows.append(row + _state(entry))
        except (Error, OSError, ValueError) as e:
            rows.append(row + ("cannot open: %s" % _reason(e),))
    if not rows:
        print("no ringmpsc channels in %s" % shm_dir)
        return 0
    head = ("NAME", "OWNER", "MODE", "SIZE", "STATE", "PRODUCERS", "CONSUMERS")
    widths = [max(len(r[i]) for r in rows + [head] if len(r) > i + 1) for i in range(len(head) - 1)]
    for r in [head] + rows:
        cells = ["%-*s" % (w, c) if i != 3 else "%*s" % (w, c) for i, (w, c) in enumerate(zip(widths, r))]
        print("  ".join(cells + list(r[len(widths):])).rstrip())
    return 0


def _unlink(name, force):
    """Remove a channel's name, refusing while it holds records or has live users (unless forced)."""
    from . import unlink

    path = os.path.join(SHM_DIR, name.lstrip("/"))
    if _probe(path) is None:
        print("ringmpsc: %s is not a ringmpsc channel; not removed" % path, file=sys.stderr)
        return 1
    try:
        s = Channel.open(name).stats()
    except CorruptRegion as e:
        # Say, a channel of another layout version (made by an older ringmpsc): nothing
        # here can read it, and its name is what stands in the way of a new one.
        if not force:
            print("ringmpsc: %s cannot be opened (%s); --force removes it all the same" % (name, e),
                  file=sys.stderr)
            return 1
        unlink(name)
        print("unlinked %s (it could not be opened: %s)" % (name, e))
        return 0
    live, _ = _producer_counts(s)
    members = sum(1 for m in s["members"] if m["alive"])
    busy = []
    if s["pending"]:
        busy.append("%d records not yet consumed" % s["pending"])
    if live:
        busy.append("%d live producers" % live)
    if members:
        busy.append("%d live consumers" % members)
    if busy and not force:
        print("ringmpsc: %s has %s: unlinking loses what it holds once its last user exits, and processes that "
              "open the name next get a new channel. Stop them and drain it first, or use --force."
              % (name, ", ".join(busy)), file=sys.stderr)
        return 1
    unlink(name)
    print("unlinked %s%s" % (name, " (%s)" % ", ".join(busy) if busy else ""))
    return 0


async def _bridge(worker, every):
    """Run worker until it returns or SIGTERM/SIGINT; log its stats every `every` seconds when they change."""
    import asyncio
    import signal

    from .bridge import log

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(worker.run())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)

    def report():
        s = worker.stats()
        return " ".join("%s=%s" % (k, v) for k, v in sorted(s.items()) if k not in ("started_at",))

    last = None
    try:
        while True:
            done, _ = await asyncio.wait([task], timeout=every if every > 0 else None)
            if done:
                break
            line = report()
            if line != last:
                log.info("stats: %s", line)
                last = line
        task.result()
    except asyncio.CancelledError:
        pass
    finally:
        if not task.done():
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        log.info("stopped: %s", report())
    return 0


def _run_bridge(args):
    import asyncio
    import logging

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s ringmpsc " + args.cmd + "[%(process)d] %(levelname)s: %(message)s")
    from . import bridge

    if args.cmd == "forward":
        encode = (lambda r: r.rstrip(b"\0")) if args.trim else None
        sink = bridge.JetStreamSink(args.server, args.subject, args.stream, duplicate_window=args.duplicate_window)
        worker = bridge.Forwarder(args.name, sink, group=args.group, batch=args.batch,
                                  ack_timeout=args.ack_timeout, encode=encode, max_backoff=args.max_backoff)
    else:
        source = bridge.JetStreamSource(args.server, args.subject, durable=args.durable, stream=args.stream,
                                        ack_wait=args.ack_wait)
        worker = bridge.Ingester(args.name, source, batch=args.batch)
    return asyncio.run(_bridge(worker, args.stats_interval))


def _bridge_args(p, batch):
    p.add_argument("name", help="the channel's shm name")
    p.add_argument("--server", default="nats://127.0.0.1:4222", help="NATS server URL (default %(default)s)")
    p.add_argument("--subject", required=True, help="JetStream subject")
    p.add_argument("--stream", help="the stream storing the subject: created on it if it does not exist "
                                    "(default: the stream that stores the subject already)")
    p.add_argument("--batch", type=int, default=batch, help="records per batch (default %(default)s)")
    p.add_argument("--stats-interval", type=float, default=10.0, metavar="SECONDS",
                   help="log the stats this often when they changed (0: never; default %(default)s)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ringmpsc", description="Inspect ringmpsc channels; bridge them "
                                 "to NATS JetStream.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{list,info,unlink,forward,ingest}")
    sub.add_parser("list", help="list the named channels in %s: owner, mode, size, open or closed, live and "
                                "dead producers, consumers" % SHM_DIR)
    p_info = sub.add_parser("info", help="print a named channel's geometry, producers, consumer groups, members "
                                         "and state")
    p_info.add_argument("name", help="the channel's shm name (with or without the leading '/')")
    p_unlink = sub.add_parser("unlink", help="remove a named channel (refused while it holds records or has live "
                                             "producers or consumers, unless --force)")
    p_unlink.add_argument("name", help="the channel's shm name (with or without the leading '/')")
    p_unlink.add_argument("--force", action="store_true", help="remove it even then")
    p_fwd = sub.add_parser("forward", help="publish a channel's records to a JetStream subject, each released "
                                           "only once acknowledged, exactly once into the stream")
    _bridge_args(p_fwd, 1024)
    p_fwd.add_argument("--group", default="default", help="the consumer group to read as (default %(default)s)")
    p_fwd.add_argument("--ack-timeout", type=float, default=5.0, metavar="SECONDS",
                       help="retry a batch not acknowledged this long (default %(default)s)")
    p_fwd.add_argument("--duplicate-window", type=float, metavar="SECONDS",
                       help="the duplicate window of a stream --stream creates (default: the server's, 2 min)")
    p_fwd.add_argument("--max-backoff", type=float, default=5.0, metavar="SECONDS",
                       help="the longest wait between retries of a failed publish (default %(default)s)")
    p_fwd.add_argument("--trim", action="store_true", help="strip trailing zero bytes from each record")
    p_ing = sub.add_parser("ingest", help="produce a JetStream subject's messages into a channel (durable pull "
                                          "consumer), each acknowledged only once committed")
    _bridge_args(p_ing, 256)
    p_ing.add_argument("--durable", default="ringmpsc", help="the durable consumer's name (default %(default)s)")
    p_ing.add_argument("--ack-wait", type=float, default=30.0, metavar="SECONDS",
                       help="ack_wait of a consumer created here: unacknowledged messages are delivered again "
                            "after it (default %(default)s)")
    args = ap.parse_args(argv)
    if args.cmd in ("forward", "ingest"):
        try:
            return _run_bridge(args)
        except (Error, OSError, ValueError, ImportError) as e:
            print("ringmpsc %s: %s: %s" % (args.cmd, args.name, e), file=sys.stderr)
            return 1
    if args.cmd == "list":
        try:
            return _list()
        except OSError as e:
            print("ringmpsc: %s: %s" % (SHM_DIR, e), file=sys.stderr)
            return 1
    try:
        if args.cmd == "unlink":
            return _unlink(args.name, args.force)
        return _info(args.name)
    except (Error, OSError, ValueError) as e:
        print("ringmpsc: %s: %s" % (args.name, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
