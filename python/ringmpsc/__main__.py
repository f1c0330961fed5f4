"""Command-line tools: ``python -m ringmpsc info NAME``."""
import argparse
import sys

from . import Channel, Error


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
    print("  records: %d pending, %d committed, %d consumed" % (s["pending"], s["committed"], s["consumed"]))
    print("  fenced rings: %d, reclaimed producer slots: %d" % (s["fenced_rings"], s["reclaimed_slots"]))
    # A slot stays active until someone reclaims it: say which of them are gone.
    gone = sum(1 for r in s["producers"] if r["state"] == "active" and not r["alive"])
    print("  producers: %d live%s" % (s["active_producers"] - gone,
                                      ", %d dead (not reclaimed yet)" % gone if gone else ""))
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


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ringmpsc", description="Inspect ringmpsc channels.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_info = sub.add_parser("info", help="print a named channel's geometry, producers, consumer groups, members "
                                         "and state")
    p_info.add_argument("name", help="the channel's shm name (with or without the leading '/')")
    args = ap.parse_args(argv)
    try:
        return _info(args.name)
    except (Error, OSError, ValueError) as e:
        print("ringmpsc: %s: %s" % (args.name, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
