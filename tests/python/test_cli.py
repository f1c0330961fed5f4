"""python -m ringmpsc: --help, list and unlink (info is tested in test_api.py)."""
import os
import pwd
import re
import signal
import subprocess
import sys
import uuid

import ringmpsc
import ringmpsc.__main__ as cli

SHM = "/dev/shm"


def _run(*args):
    out = subprocess.run([sys.executable, "-m", "ringmpsc", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _rows(text):
    """NAME -> the row's columns (split where two or more spaces separate them)."""
    lines = text.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["NAME", "OWNER", "MODE", "SIZE", "STATE", "PRODUCERS", "CONSUMERS"]
    return {cols[0]: cols for cols in (re.split(r"\s{2,}", ln) for ln in lines[1:])}


def test_help_mentions_list():
    text = _run("--help")
    assert "list" in text and "info" in text
    assert "named channels" in text


def test_list_shows_named_channels_and_skips_other_files(shm_name):
    a_name, b_name = shm_name(), shm_name()
    stem = "rmpsc-test-%d-%s" % (os.getpid(), uuid.uuid4().hex[:12])
    junk = {  # other things in /dev/shm: none is a channel, none may break or hang the listing
        stem + "-text": b"not a channel\n",
        stem + "-zeros": bytes(8192),
        stem + "-short-magic": b"RINGMPSC",  # smaller than a header
    }
    magic = stem + "-magic"  # starts like a region, but is not a valid one: listed with the reason
    fifo, folder = stem + "-fifo", stem + "-dir"
    a = ringmpsc.Channel(8, capacity=8, max_producers=4, name=a_name, max_consumers=2)
    b = ringmpsc.Channel(16, capacity=16, name=b_name)
    try:
        for n, data in junk.items():
            with open(os.path.join(SHM, n), "wb") as f:
                f.write(data)
        with open(os.path.join(SHM, magic), "wb") as f:
            f.write(b"RINGMPSC" + bytes(8184))
        os.mkfifo(os.path.join(SHM, fifo), 0o600)
        os.mkdir(os.path.join(SHM, folder))
        p = a.producer()
        p.send(b"x")
        kid = os.fork()
        if kid == 0:
            try:
                q = a.producer()  # a local: still registered when the process dies
                q.send(b"y")
                os.kill(os.getpid(), signal.SIGKILL)
            finally:
                os._exit(1)  # only if the above failed
        os.waitpid(kid, 0)
        assert a.recv(timeout=5)  # this process becomes a member of the default group
        b.close()

        rows = _rows(_run("list"))
        me = pwd.getpwuid(os.getuid()).pw_name
        assert rows[a_name] == [a_name, me, "0600", rows[a_name][3], "open", "1 live, 1 dead", "1 live"]
        assert rows[b_name] == [b_name, me, "0600", rows[b_name][3], "closed", "0 live", "0 live"]
        size = os.stat(os.path.join(SHM, a_name)).st_size
        assert rows[a_name][3] == cli._size(size) and rows[a_name][3].endswith("KiB")
        assert rows[magic][4].startswith("cannot open: CorruptRegion"), rows[magic]
        for n in list(junk) + [fifo, folder]:
            assert n not in rows
        assert not [n for n in rows if n.startswith(".ringmpsc-")]  # the channels' readiness FIFOs
        # a channel by its name as given to Channel(name=...): Channel.open takes it back
        assert ringmpsc.Channel.open(a_name).record_size == 8
    finally:
        for n in list(junk) + [magic, fifo]:
            try:
                os.unlink(os.path.join(SHM, n))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(os.path.join(SHM, folder))
        except FileNotFoundError:
            pass


def test_list_reports_unreadable_files(shm_name):
    """A file the caller cannot read is listed with the reason, not skipped and not a crash.
    As root, the listing runs in a child that has become nobody."""
    name = shm_name()
    path = os.path.join(SHM, name)
    with open(path, "wb") as f:
        f.write(bytes(8192))
    os.chmod(path, 0o000)
    rd, wr = os.pipe()
    kid = os.fork()
    if kid == 0:
        try:
            os.close(rd)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            sys.stdout = os.fdopen(wr, "w")  # not fd 1: pytest's capture replaces sys.stdout
            rc = cli.main(["list"])
            sys.stdout.flush()
            os._exit(rc)
        finally:
            os._exit(3)
    os.close(wr)
    with os.fdopen(rd) as f:
        text = f.read()
    _, status = os.waitpid(kid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    row = _rows(text)[name]
    assert row[2] == "0000" and row[4] == "unreadable: permission denied", row


def test_list_with_no_channels(tmp_path, capsys):
    (tmp_path / "other").write_bytes(bytes(8192))
    assert cli._list(str(tmp_path)) == 0
    assert capsys.readouterr().out == "no ringmpsc channels in %s\n" % tmp_path


def test_unlink_refuses_a_busy_channel_and_files_that_are_not_channels(shm_name):
    name = shm_name()
    ch = ringmpsc.Channel(8, 4, 2, name=name)
    p = ch.producer()
    p.send(b"x")
    busy = subprocess.run([sys.executable, "-m", "ringmpsc", "unlink", name], capture_output=True, text=True,
                          timeout=60)
    assert busy.returncode == 1
    assert "1 records not yet consumed" in busy.stderr and "1 live producers" in busy.stderr
    assert os.path.exists(os.path.join(SHM, name))
    ch.recv()
    ch.leave()
    p.close()
    assert _run("unlink", name).strip() == "unlinked %s" % name
    assert not os.path.exists(os.path.join(SHM, name))
    # --force removes a busy one, and says what it held.
    name2 = shm_name()
    ch2 = ringmpsc.Channel(8, 4, 2, name=name2)
    ch2.producer().send(b"y")
    assert "1 records not yet consumed" in _run("unlink", "--force", "/" + name2)
    assert not os.path.exists(os.path.join(SHM, name2))
    # Not a channel: left alone.
    other = shm_name()
    with open(os.path.join(SHM, other), "wb") as f:
        f.write(bytes(8192))
    r = subprocess.run([sys.executable, "-m", "ringmpsc", "unlink", other], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not a ringmpsc channel" in r.stderr
    assert os.path.exists(os.path.join(SHM, other))


def test_unlink_force_removes_a_channel_it_cannot_open(shm_name):
    # A channel made by a ringmpsc of another layout version: open refuses it, yet it is
    # a channel (its magic), and the name must be freed for the new version's.
    name = shm_name()
    ringmpsc.Channel(8, 4, 2, name=name)
    with open(os.path.join(SHM, name), "r+b") as f:
        f.seek(8)  # the header's version, after the magic
        f.write((7).to_bytes(4, "little"))
    r = subprocess.run([sys.executable, "-m", "ringmpsc", "unlink", name], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "layout version 7" in r.stderr and "--force" in r.stderr
    assert os.path.exists(os.path.join(SHM, name))
    assert "could not be opened" in _run("unlink", "--force", name)
    assert not os.path.exists(os.path.join(SHM, name))
