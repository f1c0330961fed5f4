"""The benchmark programs: building them (through make) and running them.

Each program is a suite: `make <target>` builds it (make alone decides whether
anything is out of date), then it runs in its own process group under a time limit
and writes one JSON object per row to build/bench/<name>.jsonl. A program that fails
to build or run does not stop the others.
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

from . import ROOT, WORK, log

BUILD_TIMEOUT = 900  # seconds; the peers (DPDK, Boost) and the Python extension are the slow ones


def run_logged(cmd, logpath, timeout, env=None, echo=True):
    """Run cmd in its own process group, output to the terminal and logpath. Returns
    (rc, seconds, timed_out); rc None when it could not start."""
    os.makedirs(os.path.dirname(logpath), exist_ok=True)
    t0 = time.monotonic()
    with open(logpath, "w") as lf:
        lf.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
        lf.flush()
        try:
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            lf.write("cannot start: %s\n" % e)
            return None, 0.0, False

        def pump():
            for raw in iter(p.stdout.readline, b""):
                line = raw.decode("utf-8", "replace")
                lf.write(line)
                lf.flush()
                if echo:
                    sys.stdout.write("    " + line)
                    sys.stdout.flush()

        th = threading.Thread(target=pump, daemon=True)
        th.start()
        timed_out = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            # SIGTERM first: benchmarks/lua/run.sh stops its nginx in its EXIT trap.
            for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:
            os.killpg(p.pid, signal.SIGTERM)
            raise
        th.join(timeout=5)
        secs = time.monotonic() - t0
        if timed_out:
            lf.write("\n[bench] killed after the time limit of %d s\n" % timeout)
        return p.returncode, secs, timed_out


class Suite:
    def __init__(self, name, title, target, script, cmd, timeouts, env=None):
        self.name, self.title, self.target, self.script = name, title, target, script
        self.cmd, self.timeouts, self.env = cmd, timeouts, env
        self.status = "not run"
        self.detail = ""
        self.rows = 0
        self.seconds = None
        self.command = None


def suites(quick):
    q = ["--quick"] if quick else []
    venv_python = os.path.join(ROOT, "build", "venv", "bin", "python")  # where python/build.sh installs ringmpsc
    return [
        Suite("bench_c", "C, ringmpsc alone (vs a bare SPSC ring; + limits: memcpy, cache-line round trip; "
              "liveness check)", "build/bench_c", "build/bench_c",
              lambda out: ["build/bench_c", "--json", out] + q, (90, 900)),
        Suite("steady", "C, steady stream: paced producer processes → one consumer process (blocking at the "
              "coalescing defaults, blocking without coalescing, polling every 1 ms)", "build/bench_steady",
              "build/bench_steady", lambda out: ["build/bench_steady", "--json", out] + q, (60, 150)),
        Suite("bench_peers", "C, ringmpsc vs peers", "build/bench_peers", "build/bench_peers",
              lambda out: ["build/bench_peers", "--json", out] + q, (90, 900)),
        Suite("python", "Python, ringmpsc vs peers", "build/venv/.ringmpsc-built", "benchmarks/python/peers.py",
              lambda out: [venv_python, "benchmarks/python/peers.py", "--json", out] + q, (90, 900)),
        Suite("python_share", "Python, work sharing across processes (a consumer group) vs peers",
              "build/venv/.ringmpsc-built", "benchmarks/python/workshare.py",
              lambda out: [venv_python, "benchmarks/python/workshare.py", "--json", out] + q, (90, 600)),
        Suite("python_aio", "Python, asyncio consumers vs blocking ones (2 producer processes → 1 consumer "
              "process; ping-pong through an echo process)", "build/venv/.ringmpsc-built", "benchmarks/python/aio.py",
              lambda out: [venv_python, "benchmarks/python/aio.py", "--json", out] + q, (60, 180)),
        Suite("python_queue", "Python, ringmpsc.Queue (the drop-in for faster_fifo.Queue) vs faster-fifo and "
              "multiprocessing.Queue in faster-fifo's comparison configurations; 1 MiB NumPy frames vs memcpy",
              "build/venv/.ringmpsc-built", "benchmarks/python/queues.py",
              lambda out: [venv_python, "benchmarks/python/queues.py", "--json", out] + q, (60, 300)),
        Suite("lua", "LuaJIT in nginx, ringmpsc vs ngx.shared.DICT", "lib", "benchmarks/lua/run.sh",
              lambda out: ["benchmarks/lua/run.sh", "--json", out] + q, (60, 300)),
        Suite("nginx_logging", "nginx logging: 2 workers → ringmpsc (the binding, resty.ringmpsc) → a Python "
              "consumer process (blocking, polling every 5 ms) vs ngx.shared.DICT + a timer consumer vs building "
              "the record only vs no logging, under wrk", "build/venv/.ringmpsc-built",
              "benchmarks/nginx_logging/run.sh",
              lambda out: ["benchmarks/nginx_logging/run.sh", "--json", out] + q, (120, 300)),
    ]


def build(targets, no_build=False):
    """`make` each distinct target once. Returns {target: (ok, detail)}."""
    done = {}
    for t in targets:
        if t in done:
            continue
        if no_build:
            ok = os.path.exists(os.path.join(ROOT, t)) or t == "lib"
            done[t] = (ok, "not built (--no-build)" if ok else "%s missing and --no-build given" % t)
            continue
        cmd = ["make", "--no-print-directory", t]
        logpath = os.path.join(WORK, "build-%s.log" % t.replace("/", "_"))
        log("build: %s" % " ".join(cmd))
        rc, secs, to = run_logged(cmd, logpath, BUILD_TIMEOUT, echo=False)
        if rc == 0:
            done[t] = (True, "make %s: ok in %.0f s" % (t, secs))
        else:
            detail = ("timed out after %d s" % BUILD_TIMEOUT if to else "failed (exit %s)" % rc) + \
                "; log: %s" % os.path.relpath(logpath, ROOT)
            done[t] = (False, "make %s %s" % (t, detail))
            tail = open(logpath, errors="replace").read().splitlines()[-15:]
            log("build %s %s:\n    %s" % (t, detail, "\n    ".join(tail)))
    return done


def read_jsonl(path):
    rows, bad = [], 0
    if not os.path.exists(path):
        return rows, bad
    with open(path, errors="replace") as f:
        text = f.read()
    text = text.strip()
    if text.startswith("["):  # a JSON list is fine too
        try:
            return [r for r in json.loads(text) if isinstance(r, dict)], 0
        except ValueError:
            pass
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            r = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(r, dict):
            rows.append(r)
    return rows, bad


def run_suite(s, quick, timeout_override, built):
    ok, detail = built.get(s.target, (False, "not built"))
    if not ok:
        s.status, s.detail = "missing", detail
        return []
    if not os.path.exists(os.path.join(ROOT, s.script)):
        s.status, s.detail = "missing", "%s does not exist" % s.script
        return []
    raw = os.path.join(WORK, s.name + ".jsonl")
    if os.path.exists(raw):
        os.remove(raw)
    cmd = s.cmd(raw)
    s.command = " ".join(shlex.quote(os.path.relpath(c, ROOT) if os.path.isabs(c) and c.startswith(ROOT)
                                     else c) for c in cmd)
    limit = timeout_override or s.timeouts[0 if quick else 1]
    log("suite %s (limit %d s): %s" % (s.name, limit, s.command))
    rc, secs, to = run_logged(cmd, os.path.join(WORK, s.name + ".log"), limit, env=s.env)
    s.seconds = secs
    rows, bad = read_jsonl(raw)
    s.rows = len(rows)
    problems = []
    if rc is None:
        problems.append("could not start")
    elif to:
        problems.append("killed after the time limit of %d s" % limit)
    elif rc != 0:
        problems.append("exit status %d" % rc)
    if bad:
        problems.append("%d unreadable JSON lines" % bad)
    if not rows:
        problems.append("no rows")
    failed = [r for r in rows if r.get("ok") is False]
    if failed:
        problems.append("%d rows failed their check" % len(failed))
    if not problems:
        s.status = "ok"
    elif rows:
        s.status = "incomplete"
    else:
        s.status = "missing"
    s.detail = "; ".join(problems)
    if problems:
        s.detail += "; log: build/bench/%s.log" % s.name
    log("suite %s: %s, %d rows, %.0f s%s" % (s.name, s.status, len(rows), secs,
                                             " (" + s.detail + ")" if s.detail else ""))
    return rows

