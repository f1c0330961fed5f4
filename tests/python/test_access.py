"""Who may open a named channel (mode, group), and the drop counters every process reads."""
import grp
import os
import shutil
import stat
import subprocess
import sys

import pytest

import ringmpsc

NOBODY = 65534  # Debian's nobody / nogroup


def _group_named(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def test_mode_and_group_are_set_exactly(shm_name):
    name = shm_name()
    old = os.umask(0o077)  # must not apply
    try:
        ch = ringmpsc.Channel(64, 8, 2, name=name, mode=0o660)
    finally:
        os.umask(old)
    st = os.stat("/dev/shm/" + name)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == os.getegid()
    s = ringmpsc.Channel.open(name).stats()
    assert (s["mode"], s["gid"]) == (0o660, st.st_gid)
    ch.close()


@pytest.mark.parametrize("mode", [0o440, 0o200, 0o1777, -1])
def test_bad_mode_is_refused_and_leaves_no_file(shm_name, mode):
    name = shm_name()
    with pytest.raises(ValueError, match="mode"):
        ringmpsc.Channel(64, name=name, mode=mode)
    assert not os.path.exists("/dev/shm/" + name)


def test_bad_group_is_refused(shm_name):
    name = shm_name()
    with pytest.raises(ValueError, match="does not exist"):
        ringmpsc.Channel(64, name=name, group="no-such-group-ringmpsc")
    with pytest.raises(ValueError, match="group 0"):
        ringmpsc.Channel(64, name=name, group=0)
    with pytest.raises(TypeError, match="group"):
        ringmpsc.Channel(64, name=name, group=1.5)
    assert not os.path.exists("/dev/shm/" + name)


def _can_unshare_mounts():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _can_unshare_mounts(), reason="needs root and unshare -m (a private /etc/group)")
def test_group_by_name_with_a_long_member_list(shm_name, tmp_path):
    """A group whose entry is larger than a small lookup buffer (about 11 KB of members)."""
    name = shm_name()
    group_file = tmp_path / "group"
    members = ",".join("member%05d" % i for i in range(1000))
    with open("/etc/group") as f:
        group_file.write_text(f.read() + "ringmpsc-big:x:4242:%s\n" % members)
    code = "import ringmpsc; ringmpsc.Channel(8, name=%r, mode=0o660, group='ringmpsc-big')" % name
    # In a mount namespace of its own, where /etc/group is that file: nothing else sees it.
    r = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$1" /etc/group && exec "$2" -c "$3"', "sh",
                        str(group_file), sys.executable, code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.stat("/dev/shm/" + name).st_gid == 4242


def _as_nobody_consume(name, expect, result_w):
    """In a forked child: drop to nobody:nogroup, open by name, receive `expect` records."""
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        ch = ringmpsc.Channel.open(name)
        got = [bytes(ch.recv(timeout=10))[:8] for _ in range(expect)]
        ok = got == [b"%08d" % i for i in range(expect)]
        os.write(result_w, b"ok" if ok else b"wrong records")
    except PermissionError as e:
        os.write(result_w, b"EACCES " + str(e).encode()[:200])
    except BaseException as e:  # reported to the parent, which fails the test with it
        os.write(result_w, ("%s: %s" % (type(e).__name__, e)).encode()[:300])
    finally:
        os._exit(0)


def _run_as_nobody(name, expect):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _as_nobody_consume(name, expect, w)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            return f.read().decode()  # the child exits within recv's 10 s timeout
    finally:
        os.waitpid(pid, 0)


@pytest.mark.skipif(os.geteuid() != 0 or _group_named(NOBODY) is None, reason="needs root and group 65534")
def test_consumer_of_another_user_reads_a_0660_channel(shm_name):
    """The operator's case: created by root (nginx's master), consumed by a process of another user."""
    name = shm_name()
    ch = ringmpsc.Channel(64, 64, 2, name=name, mode=0o660, group=_group_named(NOBODY))
    with ch.producer() as p:
        for i in range(20):
            p.send(b"%08d" % i)
    assert _run_as_nobody(name, 20) == "ok"
    assert ch.stats()["consumed"] == 20

    # The default mode keeps it out.
    private = shm_name()
    ringmpsc.Channel(64, 64, 2, name=private)
    assert _run_as_nobody(private, 1).startswith("EACCES")


def test_dropped_counts_are_shared_and_outlive_the_producer(shm_name):
    name = shm_name()
    ch = ringmpsc.Channel(8, 4, 2, name=name)
    p = ch.producer()
    for i in range(4):
        p.send_nowait(b"%08d" % i)
    for _ in range(3):  # one episode: the channel stays full
        with pytest.raises(ringmpsc.Full):
            p.send_nowait(b"x" * 8)
        p.count_dropped()
    ch.recv()
    p.send_nowait(b"y" * 8)
    p.count_dropped(5)  # after a send: a second episode
    with pytest.raises(ValueError):
        p.count_dropped(-1)
    with pytest.raises(TypeError):
        p.count_dropped("1")
    p.close()
    s = ringmpsc.Channel.open(name).stats()
    assert (s["dropped"], s["drop_episodes"]) == (8, 2)
    assert s["channel_id"] != ringmpsc.Channel(8).stats()["channel_id"]
