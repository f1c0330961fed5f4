#!/usr/bin/env python3
"""Run every issue-5 benchmark suite on this machine and write the results.

    benchmarks/run.py [--quick] [--only SUITES] [--no-build] [--no-readme]
    benchmarks/run.py --report-only        (re-render md, plots and README from latest.json)

`make bench` runs it after scripts/ensure-deps.sh; `make bench QUICK=1` (or --quick, or
QUICK=1 in the environment) runs the reduced set. Steps:

 1. build what the suites need: `make lib build/bench_c`, benchmarks/c/build_peers.sh
    (build/bench_peers), python/build.sh (into build/venv); each only when its output is
    older than its sources (--rebuild forces them);
 2. run the suites one after the other, each under a time limit, each writing JSON lines:
      bench_c      build/bench_c          suite "c" (ringmpsc alone, vs memcpy and a bare
                                          ring) and, derived from it, suite "limits"
                                          (memcpy of the same bytes, cache-line round trip)
      bench_peers  build/bench_peers      suite "c": ringmpsc vs rte_ring, ck_ring, Boost,
                                          moodycamel
      python       benchmarks/python/peers.py   suite "python"
      lua          benchmarks/lua/run.sh        suite "lua" (inside nginx)
 3. merge the rows into benchmarks/results/latest.json (a list of row objects; every row
    keeps the issue-5 fields and gets "source" = the program and "machine" = the run's
    machine summary), benchmarks/results/machine.json (machine and per-suite status),
    benchmarks/results/latest.md (tables, ratios to the best peer per row group, goals),
    benchmarks/results/*.png, and the README block between <!-- bench:begin --> and
    <!-- bench:end -->.

A suite that fails to build or run does not stop the others: it is listed as missing in
latest.md and the exit status is 1 at the end. Raw outputs and logs: build/bench/.
"""
import argparse
import datetime
import json
import math
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
WORK = os.path.join(ROOT, "build", "bench")
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

REQUIRED = ["suite", "impl", "path", "scenario", "record_size", "batch", "producers", "consumers",
            "processes", "reads_data", "records_per_s", "bytes_per_s", "p50_ns", "p99_ns", "runs"]
SUITE_ORDER = ["limits", "c", "python", "lua"]
YARDSTICKS = {"memcpy", "cacheline", "bare_spsc"}
LATENCY_SCENARIOS = {"pingpong", "cacheline", "latency"}
SCENARIO_ORDER = ["spsc", "mpsc", "threads", "same-worker", "pingpong", "cacheline", "memcpy"]
NOISY = 0.10  # other_cpu_load at or above this marks a row noisy

PLOTS = {
    "throughput_by_batch.png": "C throughput by batch size",
    "throughput_by_producers.png": "C MPSC throughput by producer count",
    "latency.png": "ping-pong latency vs the cache-line round trip",
    "bindings.png": "Python and LuaJIT throughput",
}


def log(msg):
    print("[bench] " + msg, flush=True)


# --- machine ---------------------------------------------------------------------------

def _first_line(cmd):
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info():
    info = {}
    cpu = None
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if cpu is None and line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif not flags and line.startswith("flags"):
                    flags = line
    except OSError:
        pass
    info["cpu"] = cpu or platform.processor() or platform.machine()
    info["cpus"] = os.cpu_count()
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cpus_usable"] = os.cpu_count()
    info["vm"] = " hypervisor" in flags
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory_gib"] = round(kb / 1048576, 1)
    except (OSError, ValueError, IndexError):
        pass
    info["arch"] = platform.machine()
    info["kernel"] = platform.release()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    info["cc"] = _first_line(["cc", "--version"])
    info["python"] = platform.python_version()
    lj = _first_line(["luajit", "-v"])
    info["luajit"] = lj.split(" -- ")[0] if lj else None
    ngx = _first_line(["nginx", "-v"])
    info["nginx"] = ngx.split("/", 1)[1] if ngx and "/" in ngx else ngx
    commit = _first_line(["git", "rev-parse", "HEAD"])
    info["commit"] = commit
    if commit:
        try:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                   capture_output=True, text=True, timeout=20).stdout.strip()
            info["dirty"] = bool(dirty)
        except (OSError, subprocess.SubprocessError):
            info["dirty"] = None
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


def machine_line(m):
    parts = ["%s, %s CPU%s%s" % (m.get("cpu"), m.get("cpus"), "" if m.get("cpus") == 1 else "s",
                                 " (VM)" if m.get("vm") else "")]
    if m.get("memory_gib"):
        parts.append("%s GiB" % m["memory_gib"])
    parts.append("Linux %s" % m.get("kernel"))
    if m.get("os"):
        parts.append(m["os"])
    return ", ".join(parts)


def commit_text(m):
    c = m.get("commit")
    if not c:
        return "unknown commit"
    return "commit %s%s" % (c[:10], " + uncommitted changes" if m.get("dirty") else "")


# --- running things ----------------------------------------------------------------------

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


def newest_mtime(paths):
    newest = 0.0
    for base in paths:
        full = os.path.join(ROOT, base)
        if os.path.isfile(full):
            newest = max(newest, os.path.getmtime(full))
        elif os.path.isdir(full):
            for d, dirs, files in os.walk(full):
                # build byproducts in source trees (pip writes python/ringmpsc.egg-info)
                dirs[:] = [x for x in dirs if x not in ("__pycache__", ".pytest_cache", "build", ".hypothesis")
                           and not x.endswith(".egg-info")]
                for fn in files:
                    newest = max(newest, os.path.getmtime(os.path.join(d, fn)))
    return newest


def up_to_date(output, inputs):
    out = os.path.join(ROOT, output)
    return os.path.exists(out) and os.path.getmtime(out) >= newest_mtime(inputs)


class Build:
    def __init__(self, name, cmd, output, inputs, timeout):
        self.name, self.cmd, self.output, self.inputs, self.timeout = name, cmd, output, inputs, timeout
        self.ok = None
        self.detail = ""


BUILDS = {
    "core": Build("core", ["make", "--no-print-directory", "lib", "build/bench_c"], None, None, 300),
    "peers": Build("peers", ["benchmarks/c/build_peers.sh"], "build/bench_peers",
                   ["benchmarks/c/peers.cpp", "benchmarks/c/build_peers.sh", "csrc"], 900),
    # pip into build/venv, the one way the package is built (setuptools rebuilds only what changed)
    "python": Build("python", ["python/build.sh"], None, None, 900),
}


def do_build(b, force):
    script = b.cmd[0]
    if "/" in script and not os.path.exists(os.path.join(ROOT, script)):
        b.ok, b.detail = False, "%s does not exist" % script
        return
    if b.output and not force and up_to_date(b.output, b.inputs):
        b.ok, b.detail = True, "up to date"
        log("build %s: %s is up to date" % (b.name, b.output))
        return
    log("build %s: %s" % (b.name, " ".join(b.cmd)))
    logpath = os.path.join(WORK, "build-%s.log" % b.name)
    rc, secs, to = run_logged(b.cmd, logpath, b.timeout, echo=False)
    if rc == 0 and (not b.output or os.path.exists(os.path.join(ROOT, b.output))):
        b.ok, b.detail = True, "built in %.0f s" % secs
        log("build %s: %s" % (b.name, b.detail))
        if b.output:  # a no-op rebuild must still count as newer than its inputs
            os.utime(os.path.join(ROOT, b.output))
    else:
        b.ok = False
        b.detail = ("timed out after %d s" % b.timeout if to else "failed (exit %s)" % rc) + \
            "; log: %s" % os.path.relpath(logpath, ROOT)
        tail = open(logpath, errors="replace").read().splitlines()[-15:]
        log("build %s %s:\n    %s" % (b.name, b.detail, "\n    ".join(tail)))


class Suite:
    def __init__(self, name, title, needs, script, cmd, timeouts, env=None):
        self.name, self.title, self.needs, self.script = name, title, needs, script
        self.cmd, self.timeouts, self.env = cmd, timeouts, env
        self.status = "not run"
        self.detail = ""
        self.rows = 0
        self.seconds = None
        self.command = None


def suites(quick):
    q = ["--quick"] if quick else []
    venv_python = os.path.join(ROOT, "build", "venv", "bin", "python")
    return [
        Suite("bench_c", "C, ringmpsc alone (+ limits: memcpy, cache-line round trip)", ["core"], "build/bench_c",
              lambda out: ["build/bench_c", "--json", out] + q, (90, 900)),
        Suite("bench_peers", "C, ringmpsc vs peers", ["peers"], "build/bench_peers",
              lambda out: ["build/bench_peers", "--json", out] + q, (90, 900)),
        Suite("python", "Python, ringmpsc vs peers", ["python"], "benchmarks/python/peers.py",
              lambda out: [venv_python, "benchmarks/python/peers.py", "--json", out] + q, (90, 900)),
        Suite("lua", "LuaJIT in nginx, ringmpsc vs ngx.shared.DICT", ["core"], "benchmarks/lua/run.sh",
              lambda out: ["benchmarks/lua/run.sh", "--json", out] + q, (60, 300)),
    ]


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


def run_suite(s, quick, timeout_override):
    for need in s.needs:
        b = BUILDS[need]
        if not b.ok:
            s.status, s.detail = "missing", "build %s %s" % (need, b.detail)
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


# --- rows --------------------------------------------------------------------------------

def normalize(rows, source, machine_short):
    out = []
    for r in rows:
        r = dict(r)
        runs = r.get("runs_records_per_s")
        if r.get("spread") is None and isinstance(runs, list) and len(runs) > 1 and statistics.median(runs) > 0:
            r["spread"] = (max(runs) - min(runs)) / statistics.median(runs)
        missing = [k for k in REQUIRED if k not in r]
        for k in missing:
            r[k] = None
        if missing:
            r["missing_fields"] = missing
        r["source"] = source
        r["machine"] = machine_short
        out.append(r)
    return out


def derive_limits(rows):
    """bench_c rows -> suite "limits": one memcpy row per (record_size, batch), the
    median of the memcpy runs bench_c made next to its ringmpsc rows; its cache-line
    round-trip row becomes a limits row (it uses no library)."""
    keep, limits = [], []
    by_key = {}
    for r in rows:
        if r.get("scenario") == "cacheline":
            lr = dict(r)
            lr.update(suite="limits", impl="cacheline", scenario="cacheline")
            lr["derived_from"] = "the cacheline row of bench_c"
            limits.append(lr)
            continue
        keep.append(r)
        if r.get("impl") == "ringmpsc" and r.get("memcpy_bytes_per_s"):
            by_key.setdefault((r["record_size"], r["batch"]), []).append(r)
    for (rs, batch), rs_rows in sorted(by_key.items()):
        vals = [x["memcpy_bytes_per_s"] for x in rs_rows]
        bps = statistics.median(vals)
        base = rs_rows[0]
        limits.append({
            "suite": "limits", "impl": "memcpy", "path": "memcpy, 1 thread, chunks of batch x record_size",
            "scenario": "memcpy", "record_size": rs, "batch": batch, "producers": 1, "consumers": 0,
            "processes": False, "reads_data": True, "records_per_s": bps / rs, "bytes_per_s": bps,
            "p50_ns": None, "p99_ns": None, "runs": base.get("runs"), "chunk_bytes": rs * batch,
            "samples": len(vals), "samples_bytes_per_s": vals,
            "derived_from": "memcpy_bytes_per_s of the bench_c ringmpsc rows (median over its spsc/mpsc rows)",
            "source": base.get("source"), "machine": base.get("machine"),
        })
    return keep, limits


def scen_of(r):
    """The scenario a row is compared within (yardstick rows join their group)."""
    if r.get("for_scenario"):
        return r["for_scenario"]
    if r.get("scenario") == "cacheline":
        return "pingpong"
    return r.get("scenario")


def gkey(r):
    return (r.get("suite"), r.get("source"), scen_of(r), r.get("record_size"), r.get("batch"),
            r.get("producers"), r.get("processes"))


def is_peer(r):
    return r.get("impl") not in YARDSTICKS and r.get("impl") != "ringmpsc"


def is_latency(r):
    return scen_of(r) in LATENCY_SCENARIOS


def rate(r):
    v = r.get("records_per_s")
    return v if isinstance(v, (int, float)) and v > 0 else None


def sort_key_scen(s):
    return (SCENARIO_ORDER.index(s) if s in SCENARIO_ORDER else len(SCENARIO_ORDER), str(s))


def num(v, default=-1):
    return v if isinstance(v, (int, float)) else default


def groups_of(rows):
    g = {}
    for r in rows:
        g.setdefault(gkey(r), []).append(r)
    return dict(sorted(g.items(), key=lambda kv: (
        SUITE_ORDER.index(kv[0][0]) if kv[0][0] in SUITE_ORDER else 9, str(kv[0][1]), sort_key_scen(kv[0][2]),
        bool(kv[0][6]), num(kv[0][3]), num(kv[0][5]), num(kv[0][4]))))


def ringmpsc_best(group, prefer_try_once=True):
    """ringmpsc's best row of a group; where rows say how they call ("calls"), the
    try-once rows, as the peers' calls are all try-once."""
    mine = [r for r in group if r.get("impl") == "ringmpsc" and rate(r)]
    if prefer_try_once:
        t1 = [r for r in mine if r.get("calls") and r.get("calls") != "blocking"]
        mine = t1 or mine
    if not mine:
        return None
    if is_latency(mine[0]):
        lat = [r for r in mine if r.get("p50_ns")]
        return min(lat, key=lambda r: r["p50_ns"]) if lat else None
    return max(mine, key=rate)


def best_peer(group):
    peers = [r for r in group if is_peer(r) and rate(r)]
    if not peers:
        return None
    if is_latency(peers[0]):
        lat = [r for r in peers if r.get("p50_ns")]
        return min(lat, key=lambda r: r["p50_ns"]) if lat else None
    return max(peers, key=rate)


def fallback_peer(rows, key):
    """A group without peers (e.g. Lua batch 64: ngx.shared.DICT has no batch API):
    the best peer of the same rows at a smaller batch, marked in the tables."""
    suite, source, scen, rs, batch, prod, procs = key
    cands = [r for r in rows if is_peer(r) and rate(r) and not is_latency(r) and
             (r.get("suite"), r.get("source"), scen_of(r), r.get("record_size"), r.get("producers"),
              r.get("processes")) == (suite, source, scen, rs, prod, procs) and num(r.get("batch")) < num(batch)]
    return max(cands, key=rate) if cands else None


def memcpy_for(r, group, rows):
    v = r.get("memcpy_bytes_per_s")
    if isinstance(v, (int, float)) and v > 0:
        return v
    for x in group:
        if x.get("impl") == "memcpy" and x.get("bytes_per_s"):
            return x["bytes_per_s"]
    return None


def cacheline_for(source, rows):
    for r in rows:
        if r.get("source") == source and (r.get("impl") == "cacheline" or r.get("scenario") == "cacheline") \
                and r.get("p50_ns"):
            return r
    return None


# --- formatting --------------------------------------------------------------------------

def f_rate(v):
    if not isinstance(v, (int, float)):
        return "–"
    if v >= 1e9:
        return "%.2f G" % (v / 1e9)
    if v >= 1e6:
        return "%.3g M" % (v / 1e6) if v < 1e8 else "%.0f M" % (v / 1e6)
    if v >= 1e3:
        return "%.3g k" % (v / 1e3) if v < 1e5 else "%.0f k" % (v / 1e3)
    return "%.3g" % v


def f_mrec(v):
    if not isinstance(v, (int, float)):
        return "–"
    m = v / 1e6
    if m >= 100:
        return "%.0f" % m
    if m >= 10:
        return "%.1f" % m
    if m >= 1:
        return "%.2f" % m
    return "%.3f" % m


def f_gbs(v):
    if not isinstance(v, (int, float)):
        return "–"
    g = v / 1e9
    return "%.1f" % g if g >= 10 else "%.2f" % g if g >= 0.1 else "%.3f" % g


def f_x(v, bold_at=None):
    if not isinstance(v, (int, float)) or math.isnan(v):
        return "–"
    s = "%.0f×" % v if v >= 100 else "%.1f×" % v if v >= 10 else "%.2f×" % v if v >= 0.01 else "%.3f×" % v
    return "**%s**" % s if bold_at is not None and v >= bold_at else s


def f_ns(v):
    if not isinstance(v, (int, float)):
        return "–"
    if v >= 10000:
        return "%.1f µs" % (v / 1000)
    return "%.0f" % v


def f_dur(v):
    """A duration in prose: '230 ns', '56.0 µs'."""
    s = f_ns(v)
    return s if s.endswith("µs") or s == "–" else s + " ns"


def f_pct(v):
    return "%.0f%%" % (100 * v) if isinstance(v, (int, float)) else "–"


def md_table(header, rows, align=None):
    align = align or ["l"] * len(header)
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return out


def notes_of(r):
    n = []
    if r.get("ok") is False:
        n.append("**CHECK FAILED**")
    if r.get("oversubscribed"):
        n.append("oversubscribed")
    if r.get("reads_data") is False:
        n.append("count only")
    if r.get("calls") == "blocking" and "blocking" not in str(r.get("path")):
        n.append("blocking")
    load = r.get("other_cpu_load")
    if isinstance(load, (int, float)) and load >= NOISY:
        n.append("noisy (others %s CPU)" % f_pct(load))
    if r.get("note") and r.get("note") != "oversubscribed":
        n.append(str(r["note"]))
    return ", ".join(n)


def impl_label(r):
    return "%s" % r.get("impl")


def scen_label(scen, producers, processes, suite):
    if suite == "python" and scen != "threads":
        return "%s (%s)" % (scen, "processes" if processes else "threads")
    return str(scen)


# --- latest.md ---------------------------------------------------------------------------

def throughput_table(rows, allrows, show_p50):
    """rows: throughput rows of one (suite, source); one table, group key shown once."""
    header = ["scenario", "rec B", "batch", "prod", "impl", "path", "Mrec/s", "GB/s", "× best peer", "× memcpy"]
    align = ["l", "r", "r", "r", "l", "l", "r", "r", "r", "r"]
    if show_p50:
        header += ["p50 ns", "p99 ns"]
        align += ["r", "r"]
    header += ["spread", "note"]
    align += ["r", "l"]
    body = []
    footnote = False
    for key, group in groups_of(rows).items():
        suite, source, scen, rs, batch, prod, procs = key
        peer = best_peer(group)
        fallback = False
        if peer is None:
            peer = fallback_peer(allrows, key)
            fallback = peer is not None
        order = sorted(group, key=lambda r: (0 if r.get("impl") == "ringmpsc" else 2 if r.get("impl") in YARDSTICKS
                                             else 1, -(rate(r) or 0)))
        first = True
        for r in order:
            ratio = None
            if peer is not None and rate(r) and r.get("impl") not in YARDSTICKS:
                ratio = rate(r) / rate(peer)
            mc = memcpy_for(r, group, allrows)
            rmc = r["bytes_per_s"] / mc if mc and r.get("bytes_per_s") and r.get("impl") != "memcpy" else None
            cell = f_x(ratio, bold_at=1.0) if r.get("impl") == "ringmpsc" else f_x(ratio)
            if fallback and ratio is not None:
                cell += " †"
                footnote = True
            line = [scen_label(scen, prod, procs, suite) if first else "", rs if first else "",
                    batch if first else "", prod if first else "", impl_label(r), r.get("path"),
                    f_mrec(rate(r)), f_gbs(r.get("bytes_per_s")), cell, f_x(rmc)]
            if show_p50:
                line += [f_ns(r.get("p50_ns")), f_ns(r.get("p99_ns"))]
            line += [f_pct(r.get("spread")), notes_of(r)]
            body.append(line)
            first = False
    out = md_table(header, body, align)
    if footnote:
        out.append("")
        out.append("† no peer at this batch size (no batch API): ratio to the best peer of the same rows at a "
                   "smaller batch.")
    return out


def latency_table(rows, allrows, source):
    cl = cacheline_for(source, allrows)
    header = ["impl", "path", "p50 ns", "p99 ns", "p50 ÷ cache-line RT", "speed vs best peer (p50)",
              "round trips/s", "note"]
    align = ["l", "l", "r", "r", "r", "r", "r", "l"]
    body = []
    for key, group in groups_of(rows).items():
        peer = best_peer(group)
        order = sorted(group, key=lambda r: (0 if r.get("impl") == "cacheline" else 1 if r.get("impl") == "ringmpsc"
                                             else 2, num(r.get("p50_ns"), 1e18)))
        for r in order:
            p50 = r.get("p50_ns")
            vs_cl = p50 / cl["p50_ns"] if cl and p50 and r is not cl and r.get("impl") != "cacheline" else None
            vs_peer = peer["p50_ns"] / p50 if peer and p50 and r.get("impl") not in YARDSTICKS else None
            body.append([impl_label(r), r.get("path"), f_ns(p50), f_ns(r.get("p99_ns")), f_x(vs_cl),
                         f_x(vs_peer), f_rate(rate(r)), notes_of(r)])
    out = md_table(header, body, align)
    if cl and not any(r is cl for r in rows):
        out.append("")
        out.append("Cache-line round trip of this program: p50 %s ns, p99 %s ns (suite limits)."
                   % (f_ns(cl["p50_ns"]), f_ns(cl.get("p99_ns"))))
    return out


def limits_tables(rows):
    out = []
    mem = [r for r in rows if r.get("impl") == "memcpy"]
    cl = [r for r in rows if r.get("impl") == "cacheline"]
    if mem:
        out.append("memcpy of the same bytes (one thread, chunks of batch × record size, cyclically into a "
                   "ring-sized buffer; median of the runs made next to each bench_c row):")
        out.append("")
        body = [[r["record_size"], r["batch"], r.get("chunk_bytes") or r["record_size"] * r["batch"],
                 f_gbs(r.get("bytes_per_s")), f_mrec(rate(r)), r.get("samples", "")] for r in
                sorted(mem, key=lambda r: (r["record_size"], r["batch"]))]
        out += md_table(["rec B", "batch", "chunk B", "GB/s", "Mrec/s", "samples"], body, ["r"] * 6)
        out.append("")
    if cl:
        out.append("Cross-core cache-line round trip (two threads on two CPUs bounce one line; no library):")
        out.append("")
        body = [[r.get("source"), r.get("path"), f_ns(r.get("p50_ns")), f_ns(r.get("p99_ns")),
                 f_rate(rate(r)), notes_of(r)] for r in cl]
        out += md_table(["program", "path", "p50 ns", "p99 ns", "round trips/s", "note"], body,
                        ["l", "l", "r", "r", "r", "l"])
        out.append("")
    return out


SOURCE_TITLES = {
    "bench_c": "build/bench_c — ringmpsc alone, with memcpy and a hand-written bare SPSC ring (`bare_spsc`) "
               "measured next to every row",
    "bench_peers": "build/bench_peers — ringmpsc vs rte_ring, ck_ring, Boost.Lockfree, moodycamel; same run, "
                   "same record size, same batch, same ring capacity, same pinning",
    "python": "benchmarks/python/peers.py — across processes (and threads), 64-byte records",
    "lua": "benchmarks/lua/run.sh — inside one nginx worker (producer and consumer in turn: the per-record cost "
           "of the calls, not a cross-core figure)",
}


def suite_sections(rows):
    out = []
    for suite in SUITE_ORDER + sorted({r.get("suite") for r in rows} - set(SUITE_ORDER), key=str):
        srows = [r for r in rows if r.get("suite") == suite]
        if not srows:
            continue
        out.append("## Suite `%s`" % suite)
        out.append("")
        if suite == "limits":
            out += limits_tables(srows)
            continue
        for source in sorted({r.get("source") for r in srows}, key=str):
            xs = [r for r in srows if r.get("source") == source]
            out.append("### %s" % SOURCE_TITLES.get(source, source))
            out.append("")
            thr = [r for r in xs if not is_latency(r)]
            lat = [r for r in xs if is_latency(r)]
            if thr:
                out += throughput_table(thr, rows, any(r.get("p50_ns") for r in thr))
                out.append("")
            if lat:
                out.append("Latency: one record there and back through two queues (round trip):")
                out.append("")
                out += latency_table(lat, rows, source)
                out.append("")
    return out


# --- goals -------------------------------------------------------------------------------

MET, MISSED, NA, NOTRUN = "met", "MISSED", "not measurable", "not measured"


class Goal:
    def __init__(self, gid, text):
        self.gid, self.text = gid, text
        self.checks = []  # (where, detail, ratio, target, status)
        self.reason = None

    def add(self, where, detail, ratio, target, higher_is_better=True, counted=True):
        """counted=False: shown for information (another path of the same rows is the
        one the goal is judged on), not counted."""
        ok = ratio >= target if higher_is_better else ratio <= target
        st = (MET if ok else MISSED) if counted else ("info (not judged): " + ("would meet" if ok else "would miss"))
        self.checks.append((where, detail, ratio, target, st, higher_is_better))

    def counted(self):
        return [c for c in self.checks if c[4] in (MET, MISSED)]

    def status(self):
        if not self.counted():
            return NA if self.reason and self.reason.startswith("needs") else NOTRUN
        missed = sum(1 for c in self.counted() if c[4] == MISSED)
        return MISSED if missed else MET

    def summary(self):
        st = self.status()
        checks = self.counted()
        if not checks:
            return "%s — %s" % (st, self.reason or "no rows")
        n = len(checks)
        met = n - sum(1 for c in checks if c[4] == MISSED)
        vals = [c[2] for c in checks]
        rng = f_x(min(vals)) if len(vals) == 1 else "%s … %s" % (f_x(min(vals)), f_x(max(vals)))
        return "%s — met in %d of %d %s (%s %s)" % (st, met, n, "case" if n == 1 else "cases",
                                                  "ratio" if n == 1 else "ratios", rng)


def where_text(r):
    s = "%s %d B batch %s" % (scen_of(r), r.get("record_size") or 0, r.get("batch"))
    if scen_of(r) == "mpsc" or (r.get("producers") or 1) > 1:
        s += " p=%s%s" % (r.get("producers"), "*" if r.get("oversubscribed") else "")
    return s


def evaluate_goals(rows, machine, suite_status):
    goals = []
    peers_rows = [r for r in rows if r.get("suite") == "c" and r.get("source") == "bench_peers"]
    c_groups = {k: g for k, g in groups_of(peers_rows).items() if k[2] in ("spsc", "mpsc")}
    why_c = None if peers_rows else "the C peers suite did not run (%s)" % suite_status.get("bench_peers", "?")

    g1 = Goal("c-per-record", "C, per record (batch 1): ringmpsc ≥ 1.5× the best peer")
    g2 = Goal("c-rte-burst", "C, batched: ringmpsc ≥ 2× rte_ring burst-32")
    g3 = Goal("c-every-peer", "C, batched: ringmpsc ≥ 1.2× every peer at equal batch size")
    g4 = Goal("c-memcpy", "C, 64-byte batched: ringmpsc ≥ 0.5× memcpy of the same bytes")
    for g in (g1, g2, g3, g4):
        g.reason = why_c
    for key, group in c_groups.items():
        mine = ringmpsc_best(group)
        if not mine:
            continue
        batch = key[4]
        peer = best_peer(group)
        mdesc = "ringmpsc %s %s Mrec/s" % (mine["path"], f_mrec(rate(mine)))
        if batch == 1 and peer:
            g1.add(where_text(mine), "%s vs %s %s %s" % (mdesc, peer["impl"], peer["path"], f_mrec(rate(peer))),
                   rate(mine) / rate(peer), 1.5)
        if batch and batch > 1:
            if batch == 32:
                rte = [r for r in group if r.get("impl") == "rte_ring" and "burst" in str(r.get("path"))
                       and "zc" not in str(r.get("path")) and rate(r)]
                if rte:
                    x = max(rte, key=rate)
                    g2.add(where_text(mine), "%s vs rte_ring %s %s" % (mdesc, x["path"], f_mrec(rate(x))),
                           rate(mine) / rate(x), 2.0)
            if peer:
                g3.add(where_text(mine), "%s vs best peer %s %s %s" % (mdesc, peer["impl"], peer["path"],
                                                                      f_mrec(rate(peer))),
                       rate(mine) / rate(peer), 1.2)
            if key[3] == 64:
                mc = memcpy_for(mine, group, rows)
                if mc:
                    g4.add(where_text(mine), "ringmpsc %s %s GB/s vs memcpy %s GB/s" % (
                        mine["path"], f_gbs(mine["bytes_per_s"]), f_gbs(mc)), mine["bytes_per_s"] / mc, 0.5)
    # bench_c (ringmpsc alone) also measures 64-byte batched vs memcpy: its SPSC rows.
    for r in rows:
        if r.get("source") == "bench_c" and r.get("suite") == "c" and r.get("impl") == "ringmpsc" and \
                r.get("record_size") == 64 and num(r.get("batch")) > 1 and r.get("scenario") == "spsc" and \
                r.get("reads_data") is not False and r.get("memcpy_bytes_per_s"):
            g4.add(where_text(r) + " (bench_c)", "ringmpsc %s %s GB/s vs memcpy %s GB/s" % (
                r["path"], f_gbs(r["bytes_per_s"]), f_gbs(r["memcpy_bytes_per_s"])),
                r["bytes_per_s"] / r["memcpy_bytes_per_s"], 0.5)
    if g4.checks:
        g4.reason = None
    goals += [g1, g2, g3, g4]

    g5 = Goal("pingpong", "Ping-pong p50 ≤ 1.5× the cache-line round trip")
    for source in ("bench_peers", "bench_c"):
        cl = cacheline_for(source, rows)
        pp = [r for r in rows if r.get("source") == source and r.get("scenario") == "pingpong"
              and r.get("impl") == "ringmpsc" and r.get("p50_ns")]
        if not cl or not pp:
            continue
        spin = [r for r in pp if r.get("calls") != "blocking" and "blocking" not in str(r.get("path"))]
        best = min(spin or pp, key=lambda r: r["p50_ns"])
        for r in sorted(pp, key=lambda r: r["p50_ns"]):
            g5.add("%s, %s" % (source, r["path"]), "p50 %s vs cache-line round trip p50 %s" % (
                f_dur(r["p50_ns"]), f_dur(cl["p50_ns"])), r["p50_ns"] / cl["p50_ns"], 1.5,
                higher_is_better=False, counted=r is best)
    if not g5.checks:
        g5.reason = "no ping-pong and cache-line rows"
    goals.append(g5)

    py = [r for r in rows if r.get("suite") == "python" and r.get("processes")]

    def find(sc, prod, impl, path):
        for r in py:
            if (r.get("scenario"), r.get("producers"), r.get("impl"), r.get("path")) == (sc, prod, impl, path) \
                    and rate(r):
                return r
        return None

    g6 = Goal("py-mpq", "Python, per record across processes: ringmpsc send/recv ≥ 30× multiprocessing.Queue")
    g7 = Goal("py-ff", "Python, per record across processes: ringmpsc send/recv ≥ 5× faster-fifo put/get")
    g8 = Goal("py-ff-many", "Python, batched across processes: ringmpsc ≥ 50× faster-fifo put_many/get_many")
    for sc, prod in sorted({(r.get("scenario"), r.get("producers")) for r in py}, key=lambda x: (str(x[0]), x[1])):
        mine = find(sc, prod, "ringmpsc", "send/recv")
        for g, peer_impl, peer_path, target in ((g6, "mp.Queue", "put/get", 30), (g7, "faster-fifo", "put/get", 5)):
            p = find(sc, prod, peer_impl, peer_path)
            if mine and p:
                g.add("%s, %d producer%s" % (sc, prod, "s" if prod > 1 else ""),
                      "ringmpsc send/recv %s rec/s vs %s %s %s rec/s" % (f_rate(rate(mine)), peer_impl, peer_path,
                                                                        f_rate(rate(p))), rate(mine) / rate(p), target)
        p = find(sc, prod, "faster-fifo", "put_many/get_many")
        ms = [m for m in (find(sc, prod, "ringmpsc", x) for x in ("send_many/recv_into", "reserve/read")) if m]
        best = max(ms, key=rate) if ms else None
        for m in ms:
            if p:
                g8.add("%s, %d producer%s, batch %s" % (sc, prod, "s" if prod > 1 else "", m.get("batch")),
                       "ringmpsc %s %s rec/s vs faster-fifo put_many/get_many (batch %s) %s rec/s" % (
                           m["path"], f_rate(rate(m)), p.get("batch"), f_rate(rate(p))), rate(m) / rate(p), 50,
                       counted=m is best)
    why_py = None if py else "the Python suite did not run (%s)" % suite_status.get("python", "?")
    for g in (g6, g7, g8):
        if not g.checks:
            g.reason = why_py or "the rows it needs are missing (faster-fifo / multiprocessing rows)"
    goals += [g6, g7, g8]

    lua = [r for r in rows if r.get("suite") == "lua"]
    g9 = Goal("lua-send", "LuaJIT: send/recv ≥ 5× ngx.shared.DICT lpush/rpop")
    g10 = Goal("lua-reserve", "LuaJIT: reserve/read ≥ 20× ngx.shared.DICT lpush/rpop")
    dict_rows = [r for r in lua if r.get("impl") == "ngx.shared.DICT" and rate(r)]
    if dict_rows:
        d = max(dict_rows, key=rate)
        for g, path, target in ((g9, "send/recv", 5), (g10, "reserve/read", 20)):
            mine = sorted([r for r in lua if r.get("impl") == "ringmpsc" and r.get("path") == path and rate(r)],
                          key=lambda r: num(r.get("batch")))
            best = max(mine, key=rate) if mine else None
            for r in mine:
                g.add("%s, batch %s" % (r.get("scenario"), r.get("batch")),
                      "ringmpsc %s (batch %s) %s rec/s vs DICT lpush/rpop (batch 1) %s rec/s" % (
                          path, r.get("batch"), f_rate(rate(r)), f_rate(rate(d))),
                      rate(r) / rate(d), target, counted=r is best)
    for g in (g9, g10):
        if not g.checks:
            g.reason = "the Lua suite did not run (%s)" % suite_status.get("lua", "?") if not lua \
                else "no ngx.shared.DICT or ringmpsc rows"
    goals += [g9, g10]

    g11 = Goal("mpsc-8", "MPSC at 8 producers keeps ≥ 0.9× the single-producer rate")
    cores = machine.get("cpus_usable") or machine.get("cpus") or 0
    if cores < 10:
        g11.reason = ("needs a machine with ≥ 10 cores (8 producers + the consumer on their own cores); "
                      "this machine has %d" % cores)
    else:
        mp_rows = [r for r in rows if r.get("suite") == "c" and r.get("scenario") == "mpsc"
                   and r.get("impl") == "ringmpsc" and rate(r) and r.get("reads_data") is not False]
        keys = {(r.get("source"), r.get("record_size"), r.get("batch"), r.get("path")) for r in mp_rows}
        for k in sorted(keys, key=str):
            by_p = {r["producers"]: r for r in mp_rows
                    if (r.get("source"), r.get("record_size"), r.get("batch"), r.get("path")) == k}
            if 1 in by_p and 8 in by_p:
                g11.add("%s %d B batch %s %s" % (k[0], k[1], k[2], k[3]),
                        "8 producers %s Mrec/s vs 1 producer %s Mrec/s" % (f_mrec(rate(by_p[8])),
                                                                           f_mrec(rate(by_p[1]))),
                        rate(by_p[8]) / rate(by_p[1]), 0.9)
        if not g11.checks:
            g11.reason = "no MPSC rows at both 1 and 8 producers (a --quick run measures only the largest count)"
    goals.append(g11)
    return goals


def goals_md(goals):
    out = ["## Goals (issue 5)", "",
           "Ratios within this run. For C, \"ringmpsc\" is its best try-once path in each row group (the peers' "
           "calls are all try-once); rows marked * are oversubscribed (more threads than CPUs). Where one goal "
           "names a path with several variants (ping-pong poll vs blocking, Lua reserve/read at batch 1 and 64, "
           "Python send_many/recv_into and reserve/read), the best variant is judged and the others are listed "
           "as info.", ""]
    body = [[g.text, g.summary()] for g in goals]
    out += md_table(["goal", "status"], body)
    out.append("")
    for g in goals:
        if not g.checks:
            continue
        out.append("<details><summary>%s — %s</summary>" % (g.text, g.status()))
        out.append("")
        body = [[w, d, f_x(x), ("≥ " if hib else "≤ ") + ("%g×" % t), st] for w, d, x, t, st, hib in g.checks]
        out += md_table(["where", "measured", "ratio", "goal", "status"], body, ["l", "l", "r", "r", "l"])
        out.append("")
        out.append("</details>")
        out.append("")
    return out


def write_md(rows, meta, goals, plots):
    m = meta["machine"]
    out = ["# ringmpsc benchmarks (issue 5)", "",
           "Generated by `benchmarks/run.py` from `latest.json`; do not edit by hand.", "",
           "- **Machine:** %s" % machine_line(m),
           "- **When:** %s, %s" % (m.get("date"), commit_text(m)),
           "- **Command:** `%s`%s" % (meta.get("command"), " (reduced set)" if meta.get("quick") else ""),
           "- **Toolchain:** %s; Python %s; %s; nginx %s" % (m.get("cc"), m.get("python"), m.get("luajit"),
                                                            m.get("nginx")),
           "",
           "Every consumer reads every record unless a row says \"count only\". Rates are the median of `runs` "
           "runs (Lua: the best of them). \"× best peer\" = this row's records/s ÷ the best peer's records/s in "
           "the same row group (same program, scenario, record size, batch, producers); \"× memcpy\" = bytes/s "
           "÷ a one-thread memcpy of the same bytes in the same run. This machine is shared and small: compare "
           "ratios within one run, not absolute numbers across runs; rows marked noisy had other processes "
           "using ≥ %d%% of the CPUs." % (NOISY * 100), ""]
    out.append("## Suites")
    out.append("")
    body = []
    for s in meta["suites"]:
        body.append([s["name"], s["title"], s["status"], s["rows"], "%.0f s" % s["seconds"] if s.get("seconds")
                     else "–", s.get("detail") or ""])
    out += md_table(["program", "what", "status", "rows", "time", "detail"], body,
                    ["l", "l", "l", "r", "r", "l"])
    missing = [s for s in meta["suites"] if s["status"] != "ok"]
    if missing:
        out.append("")
        out.append("**Missing or incomplete:** " + "; ".join("%s (%s: %s)" % (s["name"], s["status"], s.get("detail"))
                                                            for s in missing))
    out.append("")
    out += goals_md(goals)
    if plots:
        out.append("## Plots")
        out.append("")
        for fn in plots:
            out.append("![%s](%s)" % (PLOTS.get(fn, fn), fn))
            out.append("")
    out += suite_sections(rows)
    return "\n".join(out).rstrip() + "\n"


# --- plots -------------------------------------------------------------------------------

def make_plots(rows, meta):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as e:
        return [], "matplotlib is not installed (%s); scripts/ensure-deps.sh bench installs it" % e
    made = []
    m = meta["machine"]
    foot = "%s · %s · %s" % (machine_line(m), m.get("date"), meta.get("command"))
    c_rows = [r for r in rows if r.get("suite") == "c"]
    src = "bench_peers" if any(r.get("source") == "bench_peers" for r in c_rows) else "bench_c"
    cc = [r for r in c_rows if r.get("source") == src and not is_latency(r) and r.get("reads_data") is not False]
    colors = {}

    def color(name):
        if name not in colors:
            palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
            colors[name] = "black" if name.startswith("ringmpsc") else palette[len(colors) % len(palette)]
        return colors[name]

    def series(xs_rows, xfield):
        """impl -> sorted [(x, best rate)]; ringmpsc: its try-once rows where they say so."""
        out = {}
        for r in xs_rows:
            if not rate(r):
                continue
            impl = r["impl"]
            if impl == "ringmpsc" and r.get("calls") == "blocking":
                impl = "ringmpsc (blocking)"
            out.setdefault(impl, {})
            x = r.get(xfield)
            out[impl][x] = max(out[impl].get(x, 0), rate(r))
        return {k: sorted(v.items()) for k, v in out.items()}

    def draw_series(ax, ser):
        for impl, pts in sorted(ser.items(), key=lambda kv: (not kv[0].startswith("ringmpsc"), kv[0])):
            xs, ys = [p[0] for p in pts], [p[1] / 1e6 for p in pts]
            style = dict(marker="o", label=impl)
            if impl.startswith("memcpy"):
                style.update(color="grey", linestyle="--", marker="x")
            elif impl.startswith("bare_spsc"):
                style.update(color="grey", linestyle=":", marker="s")
            elif impl.startswith("ringmpsc") and "(bench_c)" in impl:
                style.update(color="dimgray", linestyle="--", marker="D", linewidth=1.5)
            else:
                style.update(color=color(impl), linewidth=2.5 if impl == "ringmpsc" else 1.3,
                             linestyle="-" if impl != "ringmpsc (blocking)" else "-.")
            ax.plot(xs, ys, **style)

    def plain_log(axis):
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: "%g" % v))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())

    def finish(fig, fn, title, legend_axes=None):
        fig.suptitle(title)
        for ax in fig.axes:
            ax.set_axisbelow(True)
            lo, hi = ax.get_ylim()
            if ax.get_yscale() == "log" and lo > 0 and hi / lo < 100:  # less than two decades: label 1-2-5
                ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        fig.text(0.5, 0.005, foot, ha="center", va="bottom", fontsize=6.5, color="dimgray", wrap=True)
        right = 1.0
        if legend_axes is not None:  # one legend for all panels, on the right
            seen = {}
            for ax in legend_axes:
                for h, lab in zip(*ax.get_legend_handles_labels()):
                    seen.setdefault(lab, h)
            if seen:
                w = fig.get_size_inches()[0]
                right = 1 - min(0.35, 2.6 / w)
                fig.legend(list(seen.values()), list(seen.keys()), loc="center left",
                           bbox_to_anchor=(right + 0.005, 0.5), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.035, right, 0.96))
        fig.savefig(os.path.join(RESULTS, fn), dpi=110)
        plt.close(fig)
        made.append(fn)

    # 1. throughput by batch size
    panels = []
    for scen in ("spsc", "mpsc"):
        srows = [r for r in cc if r.get("scenario") == scen or r.get("for_scenario") == scen]
        if not srows:
            continue
        prod = max(r.get("producers") or 1 for r in srows)
        srows = [r for r in srows if r.get("producers") == prod]
        for rs in sorted({r.get("record_size") for r in srows}, key=num)[:3]:
            panels.append((scen, prod, rs, [r for r in srows if r.get("record_size") == rs]))
    if panels:
        ncol = 2 if len(panels) in (2, 4) else min(3, len(panels))
        nrow = (len(panels) + ncol - 1) // ncol
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.0 * ncol + 2.6, 3.9 * nrow), squeeze=False)
        for ax, (scen, prod, rs, prs) in zip(axes.flat, panels):
            draw_series(ax, series(prs, "batch"))
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            plain_log(ax.yaxis)
            bs = sorted({r["batch"] for r in prs})
            ax.set_xticks(bs)
            ax.set_xticklabels([str(b) for b in bs])
            ax.set_xlabel("batch (records per call)")
            ax.set_ylabel("million records/s")
            ax.set_title("%s, %d B records%s" % (scen, rs, ", %d producers" % prod if scen == "mpsc" else ""))
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        finish(fig, "throughput_by_batch.png", "C throughput by batch size (%s; consumer reads every record)" % src,
               legend_axes=list(axes.flat)[:len(panels)])

    # 2. throughput by producer count (MPSC)
    mp_rows = [r for r in c_rows if r.get("scenario") == "mpsc" and rate(r) and r.get("reads_data") is not False]
    if mp_rows:
        sizes = sorted({r["record_size"] for r in mp_rows}, key=num)
        rs = 64 if 64 in sizes else sizes[-1]
        batches = sorted({r["batch"] for r in mp_rows if r["record_size"] == rs}, key=num)
        fig, axes = plt.subplots(1, len(batches), figsize=(4.6 * len(batches) + 2.6, 4.0), squeeze=False)
        for ax, b in zip(axes.flat, batches):
            prs = [r for r in mp_rows if r["record_size"] == rs and r["batch"] == b]
            ser = {}
            for source in sorted({r["source"] for r in prs}):
                s = series([r for r in prs if r["source"] == source], "producers")
                for k, v in s.items():
                    name = k if source == src else "%s (%s)" % (k, source)
                    ser[name] = v
            draw_series(ax, ser)
            ax.set_yscale("log")
            plain_log(ax.yaxis)
            ps = sorted({r["producers"] for r in prs})
            ax.set_xticks(ps)
            ax.set_xlim(min(ps) - 0.5, max(ps) + 0.5)
            cores = m.get("cpus_usable") or m.get("cpus") or 1
            if cores - 1 < max(ps):
                ax.axvspan(max(cores - 0.5, min(ps) - 0.5), max(ps) + 0.5, color="red", alpha=0.07,
                           label="oversubscribed")
            ax.set_xlabel("producers (1 consumer)")
            ax.set_ylabel("million records/s")
            ax.set_title("MPSC, %d B records, batch %s" % (rs, b))
            ax.grid(True, which="both", alpha=0.3)
        allps = sorted({r["producers"] for r in mp_rows})
        title = "C MPSC throughput by producer count (%d CPUs)" % (m.get("cpus") or 0)
        if len(allps) == 1:
            title += "; only %d producers measured (a quick run measures only the largest count)" % allps[0]
        finish(fig, "throughput_by_producers.png", title, legend_axes=list(axes.flat))

    # 3. latency
    lat = [r for r in rows if r.get("suite") in ("c", "limits") and (r.get("scenario") in ("pingpong", "cacheline"))
           and r.get("p50_ns")]
    if lat:
        lsrc = "bench_peers" if any(r.get("source") == "bench_peers" for r in lat) else "bench_c"
        lat = [r for r in lat if r.get("source") == lsrc]
        lat.sort(key=lambda r: (r.get("scenario") != "cacheline", r.get("impl") != "ringmpsc", r["p50_ns"]))
        labels = ["%s\n%s" % (r["impl"] if r.get("scenario") != "cacheline" else "cache-line round trip",
                              r.get("path")) for r in lat]
        fig, ax = plt.subplots(figsize=(9, 0.55 * len(lat) + 1.6))
        y = list(range(len(lat)))[::-1]
        p50 = [r["p50_ns"] for r in lat]
        p99 = [r.get("p99_ns") or r["p50_ns"] for r in lat]
        cols = ["grey" if r.get("scenario") == "cacheline" else "black" if r["impl"] == "ringmpsc"
                else color(r["impl"]) for r in lat]
        ax.barh(y, p99, color=cols, alpha=0.25, label="p99")
        ax.barh(y, p50, color=cols, alpha=0.9, label="p50")
        for yy, a, b in zip(y, p50, p99):
            ax.text(b, yy, " %s / %s ns" % (f_ns(a), f_ns(b)), va="center", fontsize=7)
        cl = [r for r in lat if r.get("scenario") == "cacheline"]
        if cl:
            ax.axvline(cl[0]["p50_ns"], color="red", linestyle="--", linewidth=1, label="cache-line RT p50")
            ax.axvline(1.5 * cl[0]["p50_ns"], color="red", linestyle=":", linewidth=1, label="1.5× (goal)")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7)
        if max(p99) / min(p50) > 30:  # a blocking p99 in the tens of µs: log scale
            ax.set_xscale("log")
            ax.set_xlim(min(p50) / 2, max(p99) * 3)
            plain_log(ax.xaxis)
            ax.set_xlabel("round trip, ns (log scale): p50 solid, p99 light")
        else:
            ax.set_xlim(0, max(p99) * 1.25)
            ax.set_xlabel("round trip, ns: p50 solid, p99 light")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        finish(fig, "latency.png", "One 64 B record there and back (%s)" % lsrc)

    # 4. bindings: Python and Lua
    py = [r for r in rows if r.get("suite") == "python" and rate(r)]
    lua = [r for r in rows if r.get("suite") == "lua" and rate(r)]
    panels = []
    if py:
        for key in sorted({(r["scenario"], r["producers"], r.get("processes")) for r in py},
                          key=lambda k: (not k[2], sort_key_scen(k[0]), k[1])):
            panels.append(("Python %s, %d producer%s (%s)" % (key[0], key[1], "s" if key[1] > 1 else "",
                                                            "processes" if key[2] else "threads"),
                           [r for r in py if (r["scenario"], r["producers"], r.get("processes")) == key]))
    if lua:
        panels.append(("LuaJIT in one nginx worker", lua))
    if panels:
        ncol = min(2, len(panels))
        nrow = (len(panels) + ncol - 1) // ncol
        hmax = max(len(p[1]) for p in panels)
        fig, axes = plt.subplots(nrow, ncol, figsize=(max(10, 7 * ncol), (0.32 * hmax + 1.5) * nrow),
                                 squeeze=False)
        for ax, (title, prs) in zip(axes.flat, panels):
            prs = sorted(prs, key=lambda r: (r["impl"] != "ringmpsc", -rate(r)))
            yy = list(range(len(prs)))[::-1]
            ax.barh(yy, [rate(r) for r in prs], color=["black" if r["impl"] == "ringmpsc" else color(r["impl"])
                                                      for r in prs])
            ax.set_yticks(yy)
            ax.set_yticklabels(["%s %s (batch %s)" % (r["impl"], r["path"], r["batch"]) for r in prs], fontsize=7)
            ax.set_xscale("log")
            lo, hi = min(rate(r) for r in prs), max(rate(r) for r in prs)
            ax.set_xlim(lo / 3, hi * 4)
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel("records/s (log)")
            ax.set_title(title, fontsize=9)
            for y0, r in zip(yy, prs):
                ax.text(rate(r), y0, " " + f_rate(rate(r)), va="center", fontsize=7)
            ax.grid(True, axis="x", which="both", alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        finish(fig, "bindings.png", "Bindings: records/s, 64-byte records, consumer reads every record")
    return made, None


# --- README block ------------------------------------------------------------------------

def readme_block(rows, meta, goals, plots):
    m = meta["machine"]
    out = [BEGIN,
           "<!-- generated by benchmarks/run.py from benchmarks/results/latest.json; edit that script, not this -->",
           "",
           "Measured on %s; %s, %s; command `%s`%s. Full tables: "
           "[benchmarks/results/latest.md](benchmarks/results/latest.md), rows: "
           "[latest.json](benchmarks/results/latest.json). Ratios compare rows of one run (same machine, record "
           "size, batch, pinning; every consumer reads every record); absolute numbers on a small shared VM are "
           "noisy." % (machine_line(m), m.get("date"), commit_text(m), meta.get("command"),
                       " (reduced set)" if meta.get("quick") else ""), ""]
    missing = [s for s in meta["suites"] if s["status"] != "ok"]
    if missing:
        out.append("Missing or incomplete in this run: %s." % ", ".join("%s (%s)" % (s["name"], s["status"])
                                                                         for s in missing))
        out.append("")

    # C: ringmpsc vs best peer per group
    peers_rows = [r for r in rows if r.get("suite") == "c" and r.get("source") == "bench_peers"]
    body = []
    for key, group in groups_of(peers_rows).items():
        if key[2] not in ("spsc", "mpsc"):
            continue
        mine, peer = ringmpsc_best(group), best_peer(group)
        if not mine:
            continue
        mc = memcpy_for(mine, group, rows)
        body.append(["%s%s" % (key[2], " ×%d" % key[5] if key[2] == "mpsc" else "") +
                     ("*" if mine.get("oversubscribed") else ""), key[3], key[4], f_mrec(rate(mine)),
                     "%s %s" % (peer["impl"], peer["path"]) if peer else "–", f_mrec(rate(peer)) if peer else "–",
                     f_x(rate(mine) / rate(peer), bold_at=1.0) if peer else "–",
                     f_x(mine["bytes_per_s"] / mc) if mc else "–"])
    if body:
        out.append("**C: ringmpsc vs the best peer** (rte_ring, ck_ring, Boost.Lockfree spsc_queue, moodycamel "
                   "ReaderWriterQueue / ConcurrentQueue; ringmpsc's best try-once path; * = more threads than CPUs)")
        out.append("")
        out += md_table(["scenario", "rec B", "batch", "ringmpsc Mrec/s", "best peer", "peer Mrec/s",
                         "ringmpsc ÷ peer", "ringmpsc ÷ memcpy"], body, ["l", "r", "r", "r", "l", "r", "r", "r"])
        out.append("")
    # latency
    for source in ("bench_peers", "bench_c"):
        cl = cacheline_for(source, rows)
        pp = [r for r in rows if r.get("source") == source and r.get("scenario") == "pingpong" and r.get("p50_ns")]
        if not pp:
            continue
        mine = sorted([r for r in pp if r["impl"] == "ringmpsc"], key=lambda r: r["p50_ns"])
        peer = min([r for r in pp if is_peer(r)], key=lambda r: r["p50_ns"], default=None)
        parts = ["ringmpsc %s p50 %s / p99 %s" % (r["path"], f_dur(r["p50_ns"]), f_dur(r.get("p99_ns")))
                 for r in mine]
        if peer:
            parts.append("best peer %s p50 %s / p99 %s" % (peer["impl"], f_dur(peer["p50_ns"]),
                                                             f_dur(peer.get("p99_ns"))))
        if cl:
            parts.append("cache-line round trip p50 %s" % f_dur(cl["p50_ns"]))
        out.append("**Latency** (one 64 B record there and back): " + "; ".join(parts) + ".")
        out.append("")
        break
    # Python
    py = [r for r in rows if r.get("suite") == "python" and rate(r)]
    body = []
    for key, group in groups_of(py).items():
        peers = [r for r in group if is_peer(r)]
        if not peers:
            continue
        best = max(peers, key=rate)

        def vs(r, impl, paths):
            ps = [p for p in group if p["impl"] == impl and p["path"] in paths]
            return f_x(rate(r) / rate(ps[0])) if ps else "–"
        for r in sorted([r for r in group if r["impl"] == "ringmpsc"], key=lambda r: -rate(r)):
            body.append([("%s ×%d" % (key[2], key[5])) if key[5] > 1 else key[2], key[4], r["path"],
                         f_rate(rate(r)), "%s %s" % (best["impl"], best["path"]),
                         f_x(rate(r) / rate(best), bold_at=1.0), vs(r, "mp.Queue", ("put/get",)),
                         vs(r, "faster-fifo", ("put/get", "put_many/get_many"))])
    if body:
        out.append("**Python** (64-byte records; spsc/mpsc: producer processes → one consumer process; threads: "
                   "in one process; \"joined\" = a peer's batch joined into one bytes object per put)")
        out.append("")
        out += md_table(["scenario", "batch", "ringmpsc path", "records/s", "best peer", "÷ best peer",
                         "÷ mp.Queue put/get", "÷ faster-fifo (put/get; batched: put_many/get_many)"], body,
                        ["l", "r", "l", "r", "l", "r", "r", "r"])
        out.append("")
    # Lua
    lua = [r for r in rows if r.get("suite") == "lua" and rate(r)]
    d = max([r for r in lua if r["impl"] == "ngx.shared.DICT"], key=rate, default=None)
    if lua and d:
        parts = ["%s (batch %s) %s rec/s = %s" % (r["path"], r["batch"], f_rate(rate(r)), f_x(rate(r) / rate(d)))
                 for r in lua if r["impl"] == "ringmpsc"]
        out.append("**LuaJIT** inside one nginx worker, vs `ngx.shared.DICT` lpush/rpop (%s rec/s): %s." % (
            f_rate(rate(d)), "; ".join(parts)))
        out.append("")
    for fn in plots:
        out.append("![%s](benchmarks/results/%s)" % (PLOTS.get(fn, fn), fn))
        out.append("")
    out.append("**Goals of issue 5** in this run:")
    out.append("")
    for g in goals:
        out.append("- %s: %s" % (g.text, g.summary()))
    out.append("")
    out.append("Re-run with `make bench` (full) or `make bench QUICK=1` (reduced, under two minutes).")
    out.append(END)
    return "\n".join(out)


def update_readme(block):
    try:
        text = open(README).read()
    except OSError:
        text = ""
    b, e = text.find(BEGIN), text.find(END)
    if b < 0 or e < 0 or e < b:
        return False
    new = text[:b] + block + text[e + len(END):]
    if new != text:
        with open(README, "w") as f:
            f.write(new)
    return True


# --- main --------------------------------------------------------------------------------

def render(rows, meta):
    """latest.md, plots, README block. Returns a list of problems."""
    problems = []
    status = {s["name"]: "%s: %s" % (s["status"], s.get("detail") or "") for s in meta["suites"]}
    goals = evaluate_goals(rows, meta["machine"], status)
    for fn in PLOTS:
        p = os.path.join(RESULTS, fn)
        if os.path.exists(p):
            os.remove(p)
    plots, why = make_plots(rows, meta)
    if why:
        problems.append("plots: " + why)
    md = write_md(rows, meta, goals, plots)
    if why:
        md += "\n**Plots missing:** %s\n" % why
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write(md)
    block = readme_block(rows, meta, goals, plots)
    if meta.get("readme", True):
        if update_readme(block):
            log("README.md: rewrote the block between %s and %s" % (BEGIN, END))
        else:
            log("README.md has no %s ... %s markers; this is what would go there "
                "(also in build/bench/readme-block.md):" % (BEGIN, END))
            print(block)
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, "readme-block.md"), "w") as f:
        f.write(block + "\n")
    log("goals:")
    for g in goals:
        print("    %-78s %s" % (g.text, g.summary()))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK", "") not in ("", "0"),
                    help="reduced set, under two minutes (default when QUICK=1 is in the environment)")
    ap.add_argument("--only", help="comma-separated programs to run: bench_c,bench_peers,python,lua "
                                   "(the others are reported as not run; README.md is left alone)")
    ap.add_argument("--no-build", action="store_true", help="use what is built; do not run any build step")
    ap.add_argument("--rebuild", action="store_true", help="run every build step even when its output is newer")
    ap.add_argument("--timeout", type=int, help="time limit of every suite in seconds (default per suite: "
                                                "60-90 s quick, 300-900 s full)")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: re-render latest.md, the plots and the README block from latest.json")
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    ap.add_argument("--command", help="how to describe the command in the outputs (default: guessed)")
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    os.makedirs(WORK, exist_ok=True)

    if args.report_only:
        try:
            rows = json.load(open(os.path.join(RESULTS, "latest.json")))
            meta = json.load(open(os.path.join(RESULTS, "machine.json")))
        except (OSError, ValueError) as e:
            sys.exit("benchmarks/run.py: --report-only needs latest.json and machine.json: %s" % e)
        meta["readme"] = not args.no_readme
        problems = render(rows, meta)
        bad = [s for s in meta["suites"] if s["status"] != "ok"]
        return 1 if problems or bad else 0

    machine = machine_info()
    if args.command:
        command = args.command
    elif os.environ.get("MAKELEVEL"):
        command = "make bench" + (" QUICK=1" if args.quick else "")
    else:
        command = "benchmarks/run.py" + (" --quick" if args.quick else "") + \
            (" --only " + args.only if args.only else "")
    log("%s; %s; %s" % (machine_line(machine), commit_text(machine), command))
    t_start = time.monotonic()

    all_suites = suites(args.quick)
    only = set(args.only.split(",")) if args.only else None
    if only:
        unknown = only - {s.name for s in all_suites}
        if unknown:
            ap.error("unknown program(s) %s; choose from %s" % (",".join(sorted(unknown)),
                                                              ",".join(s.name for s in all_suites)))
    chosen = [s for s in all_suites if not only or s.name in only]
    needed = []
    for s in chosen:
        for n in s.needs:
            if n not in needed:
                needed.append(n)
    for n in ("core", "peers", "python"):
        if n not in needed:
            continue
        b = BUILDS[n]
        if args.no_build:
            out = b.output or "build/bench_c"
            b.ok = os.path.exists(os.path.join(ROOT, out))
            b.detail = "not built (--no-build)" if b.ok else "%s missing and --no-build given" % out
        else:
            do_build(b, args.rebuild)

    rows = []
    for s in all_suites:
        if s not in chosen:
            s.status, s.detail = "not run", "--only %s" % args.only
            continue
        got = run_suite(s, args.quick, args.timeout)
        rows += normalize(got, s.name, {k: machine.get(k) for k in ("cpu", "cpus", "kernel", "date", "commit")})

    c_rows = [r for r in rows if r.get("source") == "bench_c"]
    others = [r for r in rows if r.get("source") != "bench_c"]
    c_keep, limits = derive_limits(c_rows)
    rows = limits + c_keep + others

    meta = {
        # a partial run (--only) leaves README.md as it is
        "machine": machine, "command": command, "quick": args.quick, "readme": not (args.no_readme or only),
        "seconds": round(time.monotonic() - t_start, 1),
        "builds": {n: {"ok": BUILDS[n].ok, "detail": BUILDS[n].detail} for n in needed},
        "suites": [{"name": s.name, "title": s.title, "status": s.status, "detail": s.detail, "rows": s.rows,
                    "seconds": round(s.seconds, 1) if s.seconds else None, "command": s.command}
                   for s in all_suites],
    }
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    with open(os.path.join(RESULTS, "machine.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    problems = render(rows, meta)
    bad = [s for s in all_suites if s in chosen and s.status != "ok"]
    log("wrote benchmarks/results/latest.json (%d rows), latest.md, machine.json, plots; %.0f s in all"
        % (len(rows), time.monotonic() - t_start))
    for s in bad:
        log("MISSING/INCOMPLETE: %s: %s (%s)" % (s.name, s.status, s.detail))
    for p in problems:
        log("PROBLEM: " + p)
    return 1 if bad or problems else 0


if __name__ == "__main__":
    sys.exit(main())
