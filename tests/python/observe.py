"""Wait on observable state instead of sleeping and hoping.

A thread blocked in a ringmpsc call sleeps in the kernel on a futex: in the
channel's shared region for a channel wait (data, space, slabs), on a private
futex for the per-object lock (hlock). /proc/self/task/TID shows which: state 'S'
in stat, and in syscall the futex call with its address and operation. Every
wait here is bounded by a deadline and fails with what it saw last.
"""
import os
import platform
import threading
import time

FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
FUTEX_PRIVATE_FLAG = 128
FUTEX_WAIT_BITSET = 9  # the core's channel waits (shared, absolute deadline)


def region(ch):
    """[(start, end)] of ch's shared region as mapped in this process."""
    ino = os.fstat(ch.fileno()).st_ino
    spans = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and int(parts[4]) == ino:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                spans.append((lo, hi))
    assert spans, "channel fd %d (inode %d) is not mapped here" % (ch.fileno(), ino)
    return spans


def kernel_state(tid):
    """(state letter, syscall number or None, futex address, futex op) of a thread of ours."""
    with open("/proc/self/task/%d/stat" % tid) as f:
        stat = f.read()
    state = stat[stat.rindex(")") + 2]
    try:
        with open("/proc/self/task/%d/syscall" % tid) as f:
            sc = f.read().split()
    except OSError:
        sc = ["running"]
    if sc[0] in ("running", "-1"):
        return state, None, None, None
    return state, int(sc[0]), int(sc[1], 16), int(sc[2], 16)


def _wait(tid, what, check, timeout, stable):
    deadline = time.monotonic() + timeout
    seen = None
    run = 0
    while True:
        seen = kernel_state(tid)
        run = run + 1 if check(*seen) else 0
        if run >= stable:
            return
        if time.monotonic() > deadline:
            raise AssertionError("thread %d did not %s within %.1fs; last seen: state %s, syscall %s, "
                                 "address %s, op %s" % ((tid, what, timeout) + seen))
        time.sleep(0.001)


def wait_asleep_in_channel(ch, tid, timeout=10.0):
    """Until thread `tid` sleeps in one of ch's waits (a futex in its region)."""
    spans = region(ch)

    def check(state, nr, addr, op):
        return (state == "S" and nr == FUTEX and any(lo <= addr < hi for lo, hi in spans)
                and op & ~FUTEX_PRIVATE_FLAG & 0x7F == FUTEX_WAIT_BITSET)

    _wait(tid, "sleep in the channel's wait", check, timeout, 1)


def some_thread_asleep_in_channel(ch):
    """Whether any thread of ours (an executor's worker, say) sleeps in one of ch's waits now."""
    spans = region(ch)
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        try:
            state, nr, addr, op = kernel_state(t.native_id)
        except OSError:  # it ended meanwhile
            continue
        if (state == "S" and nr == FUTEX and any(lo <= addr < hi for lo, hi in spans)
                and op & ~FUTEX_PRIVATE_FLAG & 0x7F == FUTEX_WAIT_BITSET):
            return True
    return False


def wait_asleep_on_lock(ch, tid, timeout=10.0):
    """Until thread `tid` sleeps on a private futex outside ch's region (a Producer's or
    the consumer side's lock), seen three polls running so that a brief wait for the
    GIL or a mutex is not taken for it."""
    spans = region(ch)

    def check(state, nr, addr, op):
        return (state == "S" and nr == FUTEX and op == FUTEX_PRIVATE_FLAG
                and not any(lo <= addr < hi for lo, hi in spans))

    _wait(tid, "sleep on a ringmpsc object lock", check, timeout, 3)


def wait_blocked(ch, tid, timeout=10.0):
    """Until thread `tid` sleeps in one of ch's waits or on one of its objects' locks."""
    spans = region(ch)

    def check(state, nr, addr, op):
        if state != "S" or nr != FUTEX:
            return False
        if any(lo <= addr < hi for lo, hi in spans):
            return op & ~FUTEX_PRIVATE_FLAG & 0x7F == FUTEX_WAIT_BITSET
        return op == FUTEX_PRIVATE_FLAG

    _wait(tid, "block in a ringmpsc wait", check, timeout, 3)


def wait_for(predicate, what, timeout=10.0):
    """Until predicate() is true; AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("%s did not happen within %.1fs" % (what, timeout))
        time.sleep(0.001)
