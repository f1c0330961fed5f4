"""The consumer outside nginx for tests/lua/resty_test.py: what an operator runs next to it.

Usage: consumer.py NAME OUT [--as-nobody]
Receives every record of the channel NAME until it is closed and drained, writing
"pid seq" per record to OUT. With --as-nobody it first becomes nobody:nogroup, so the
channel (created by nginx's master, root, mode 0660, group nogroup) is read by a
process of another user.
"""
import os
import sys

import ringmpsc


def main():
    name, out = sys.argv[1], sys.argv[2]
    if "--as-nobody" in sys.argv[3:]:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    ch = ringmpsc.Channel.open(name)
    with open(out, "w") as f:
        f.write("ready\n")
        f.flush()
        for rec in ch:  # until closed and drained
            pid, seq = bytes(rec).split(b" ", 2)[:2]
            f.write("%s %s\n" % (pid.decode(), seq.decode()))
        f.write("end\n")


if __name__ == "__main__":
    main()
