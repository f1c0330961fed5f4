"""resty.ringmpsc in a real nginx (2 workers) under wrk load, as an operator runs it.

Prints TAP lines ("ok - ..." / "not ok - ..."); exits non-zero on any failure.
  1. log_by_lua ships one record per request to a consumer outside nginx (Python, as
     another user when run as root: the channel is created mode 0660, group nogroup),
     under wrk, through two `nginx -s reload`s, two worker SIGKILLs and a consumer
     stopped until the channel is full. Checked: every request nginx logged
     (access.log: "pid:seq:sent" or "pid:seq:<why dropped>") is received exactly once
     or was a counted drop; the channel's drop count equals the access log's.
  2. The library's consumer inside nginx: requests are not stalled while it idles
     (latency of 200 requests); it takes every record, across a reload (the new
     generation's consumer joins while the old one leaves) and a SIGKILL of the worker
     that consumes (its batch is handed to the next consumer).
  3. A reopen with other geometry fails at startup, saying what differs and how to
     resolve it; too few producer slots for the workers is warned about.
Every wait is on observable state, bounded; nginx listens on 127.0.0.1 only.
Usage: build/venv/bin/python tests/lua/resty_test.py   (KEEP_TMP=1 keeps the prefix)
"""
import collections
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import ringmpsc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(REPO, "tests", "lua", "resty")
ROOT = os.geteuid() == 0
WORKERS = 2

failures = 0


def ok(cond, what, detail=""):
    global failures
    if cond:
        print("ok - %s" % what, flush=True)
    else:
        failures += 1
        print("not ok - %s%s" % (what, ("\n# " + detail.replace("\n", "\n# ")) if detail else ""), flush=True)
    return cond


def wait_for(seconds, cond, interval=0.05):
    """Poll cond() until true or the deadline; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, tmp, tag, **subst):
        self.prefix = os.path.join(tmp, tag)
        for d in ("conf", "logs", "tmp", "out"):
            os.makedirs(os.path.join(self.prefix, d))
        os.chmod(self.prefix, 0o755)
        os.chmod(os.path.join(self.prefix, "logs"), 0o777)  # workers (nobody) write there too
        os.chmod(os.path.join(self.prefix, "out"), 0o777)
        self.port = free_port()
        conf = open(os.path.join(HERE, "nginx.conf")).read()
        subst.setdefault("WORKERS", str(WORKERS))
        subst.update(REPO=REPO, PORT=str(self.port))
        for k, v in subst.items():
            conf = conf.replace("@%s@" % k, v)
        assert "@" not in re.sub(r"#.*", "", conf), "unfilled placeholder"
        with open(os.path.join(self.prefix, "conf", "nginx.conf"), "w") as f:
            f.write(conf)
        self.master = None

    def cmd(self, *args):
        return subprocess.run(["nginx", "-p", self.prefix + "/", "-c", "conf/nginx.conf", "-e", "logs/error.log",
                               *args], capture_output=True, text=True, timeout=30)

    def start(self):
        r = self.cmd()
        if r.returncode == 0:
            pidfile = os.path.join(self.prefix, "logs", "nginx.pid")
            wait_for(10, lambda: os.path.exists(pidfile) and open(pidfile).read().strip())
            self.master = int(open(pidfile).read())
        return r

    def workers(self):
        if not self.master:
            return set()
        r = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.master)], capture_output=True, text=True)
        return {int(x) for x in r.stdout.split()}

    def error_log(self):
        try:
            return open(os.path.join(self.prefix, "logs", "error.log")).read()
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.master is not None and os.path.exists("/proc/%d" % self.master) and \
            open("/proc/%d/stat" % self.master).read().split()[2] != "Z"

    def stop(self, how="quit"):
        if not self.alive():
            return True
        left = self.workers()
        self.cmd("-s", how)
        if wait_for(20, lambda: not self.alive()):
            return True
        for pid in left | self.workers() | {self.master}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return False

    def get(self, path, timeout=5):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def stats(self):
        """{channel: {field: int}} from /stats."""
        out = {}
        for line in self.get("/stats")[1].splitlines():
            f = line.split()
            out[f[0]] = {f[i]: int(f[i + 1]) for i in range(1, len(f) - 1, 2)}
        return out


def lines_of(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def reload_and_wait(ng, what):
    before = ng.workers()
    ng.cmd("-s", "reload")
    fresh = wait_for(15, lambda: len(ng.workers() - before) >= WORKERS and not (before & ng.workers()))
    ok(fresh, "%s: the old workers finished and %d new ones run" % (what, WORKERS),
       "before %s, now %s" % (sorted(before), sorted(ng.workers())))


def kill_worker_and_wait(ng, pid, what):
    before = ng.workers()
    os.kill(pid, signal.SIGKILL)
    respawned = wait_for(10, lambda: pid not in ng.workers() and len(ng.workers() - before) == 1)
    ok(respawned, "%s: worker %d killed with SIGKILL is respawned" % (what, pid))


def scenario_log_phase(ng, tmp, logged):
    out = os.path.join(ng.prefix, "out", "received.txt")
    cons_cmd = [sys.executable, os.path.join(HERE, "consumer.py"), logged, out] + (["--as-nobody"] if ROOT else [])
    cons = subprocess.Popen(cons_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        who = " (uid nobody, mode 0660 group nogroup)" if ROOT else ""
        ok(wait_for(10, lambda: lines_of(out)[:1] == ["ready"]),
           "the consumer outside nginx%s opened the channel" % who,
           cons.stdout.read().decode() if cons.poll() is not None else "")
        access = os.path.join(ng.prefix, "logs", "access.log")
        wrk = subprocess.Popen(["wrk", "-t1", "-c16", "-d60s", "http://127.0.0.1:%d/" % ng.port],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            ok(wait_for(15, lambda: count_lines(access) >= 2000), "wrk load reaches nginx (2000 requests logged)")
            # A stopped consumer: the channel fills, the log phase drops and counts.
            os.kill(cons.pid, signal.SIGSTOP)
            full = wait_for(20, lambda: ng.stats()[logged]["dropped"] > 0)
            os.kill(cons.pid, signal.SIGCONT)
            ok(full, "with the consumer stopped the channel fills and drops are counted")
            n0 = count_lines(access)
            reload_and_wait(ng, "first reload under load")
            kill_worker_and_wait(ng, min(ng.workers()), "under load")
            reload_and_wait(ng, "second reload under load")
            kill_worker_and_wait(ng, max(ng.workers()), "under load")
            ok(wait_for(15, lambda: count_lines(access) >= n0 + 2000), "requests go on being logged after all that")
        finally:
            wrk.send_signal(signal.SIGINT)
            try:
                wrk_out = wrk.communicate(timeout=15)[0]
            except subprocess.TimeoutExpired:
                wrk.kill()
                wrk_out = wrk.communicate()[0]
        served = re.search(r"(\d+) requests in", wrk_out)
        print("# wrk: %s requests" % (served.group(1) if served else "?"))
        stats_before_quit = ng.stats()[logged]
        ok(ng.stop("quit"), "nginx quits gracefully")
        ringmpsc.Channel.open(logged).close()
        ok(wait_for(30, lambda: cons.poll() is not None), "the consumer drains the closed channel and exits")
    finally:
        if cons.poll() is None:
            os.kill(cons.pid, signal.SIGCONT)
            cons.kill()
        cons.wait()

    received = lines_of(out)
    ok(received[-1:] == ["end"], "the consumer finished its file", "\n".join(received[-5:]))
    got = collections.Counter(tuple(map(int, line.split())) for line in received if line[0].isdigit())
    sent, dropped = set(), collections.Counter()
    for line in lines_of(access):
        pid, seq, what = line.split(":", 2)
        if what == "sent":
            sent.add((int(pid), int(seq)))
        else:
            dropped[what] += 1
    dups = [k for k, v in got.items() if v > 1]
    ok(not dups, "no record received twice", "%d duplicated, e.g. %s" % (len(dups), dups[:5]))
    missing = sorted(sent - set(got))
    ok(not missing, "every record the access log says was sent is received (%d)" % len(sent),
       "%d missing, e.g. %s" % (len(missing), missing[:10]))
    # A worker killed between its commit and its access-log line leaves a record no
    # line names: at most one per worker killed, its last.
    extra = sorted(set(got) - sent)
    by_pid = collections.Counter(pid for pid, _ in extra)
    ok(len(extra) <= 2 and all(v == 1 for v in by_pid.values()),
       "records without an access-log line: at most the last of each killed worker (%d)" % len(extra),
       "extra: %s" % extra[:10])
    n_dropped = sum(dropped.values())
    ok(n_dropped > 0 and set(dropped) <= {"full"}, "the access log shows %d drops, all 'full'" % n_dropped,
       str(dict(dropped)))
    final = ringmpsc.Channel.open(logged).stats()
    ok(final["dropped"] == n_dropped, "the channel counted every drop (%d)" % final["dropped"],
       "channel %d, access log %d" % (final["dropped"], n_dropped))
    ok(final["drop_episodes"] >= 1 and stats_before_quit["full_events"] >= 1,
       "full events are counted (%d)" % final["drop_episodes"])
    ok(final["committed"] == len(got), "served = received + counted drops: %d + %d"
       % (len(got), n_dropped), "committed %d, received %d" % (final["committed"], len(got)))


def inner_received(ng):
    """{(pid, seq): [deliveries, ...]} from the in-nginx consumer's files."""
    got = collections.defaultdict(list)
    logs = os.path.join(ng.prefix, "logs")
    for fn in os.listdir(logs):
        if fn.startswith("inner-"):
            for line in lines_of(os.path.join(logs, fn)):
                pid, seq, d = map(int, line.split())
                got[(pid, seq)].append(d)
    return got


def consumer_pid(ng, after=0):
    found = re.findall(r"consuming in worker pid (\d+)", ng.error_log())
    return int(found[-1]) if len(found) > after else None


def connection_to_worker(ng, pid, tries=200):
    """A keep-alive connection that worker `pid` serves, or None after `tries` connections."""
    for _ in range(tries):
        c = http.client.HTTPConnection("127.0.0.1", ng.port, timeout=5)
        c.request("GET", "/ping")
        if c.getresponse().read().strip() == str(pid).encode():
            return c
        c.close()
    return None


def scenario_inner_consumer(ng, inner):
    sent = 0

    def send(n):
        nonlocal sent
        c = http.client.HTTPConnection("127.0.0.1", ng.port, timeout=5)
        for _ in range(n):
            c.request("GET", "/inner")
            r = c.getresponse()
            r.read()
            sent += r.status == 200
        c.close()

    ok(wait_for(10, lambda: consumer_pid(ng) in ng.workers()), "the in-nginx consumer runs in worker 0")
    # Idle consumer: its timer sleeps, it never holds the event loop. Measured on a
    # keep-alive connection of the consumer's own worker (/ping answers with the pid
    # of the worker that served it; which worker accepts a connection is the kernel's
    # choice). A consumer that blocked its worker in bursts (as a recv with a timeout
    # would) holds up one request in a few: the 90th percentile shows it.
    c = connection_to_worker(ng, consumer_pid(ng))
    if not ok(c is not None, "a connection served by the consumer's worker %s" % consumer_pid(ng)):
        return
    times = []
    for _ in range(200):
        t = time.perf_counter()
        c.request("GET", "/ping")
        c.getresponse().read()
        times.append(time.perf_counter() - t)
    c.close()
    times.sort()
    print("# /ping in the worker of an idle in-nginx consumer: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms"
          % (times[100] * 1e3, times[180] * 1e3, times[198] * 1e3, times[-1] * 1e3))
    ok(times[180] < 0.005 and times[198] < 0.05, "requests are not stalled while the consumer idles in their "
       "worker (p90 %.2f ms < 5 ms, p99 %.2f ms < 50 ms)" % (times[180] * 1e3, times[198] * 1e3))

    def all_in():
        return len(inner_received(ng)) == sent

    send(500)
    ok(wait_for(10, all_in), "the in-nginx consumer takes every record (%d)" % sent)
    n_consumers = len(re.findall(r"consuming in worker pid", ng.error_log()))
    reload_and_wait(ng, "inner: reload")
    send(500)
    ok(wait_for(10, all_in), "after a reload the new generation's consumer takes every record (%d)" % sent)
    ok("consumer busy" not in ng.error_log(), "no consumer waited for a place ('consumer busy') at the hand-over")
    pid = wait_for(10, lambda: consumer_pid(ng, n_consumers))
    ok(pid in ng.workers(), "the new generation's consumer is worker %s" % pid)
    n_consumers = len(re.findall(r"consuming in worker pid", ng.error_log()))
    kill_worker_and_wait(ng, pid, "inner")
    send(500)
    ok(wait_for(15, all_in), "after the consumer's worker was killed its successor takes every record (%d)" % sent)
    got = inner_received(ng)
    twice = {k: d for k, d in got.items() if len(d) > 1}
    ok(all(max(d) > 1 for d in twice.values()), "a record seen twice was marked as delivered again (%d)"
       % len(twice), str(list(twice.items())[:5]))
    st = ng.stats()[inner]
    ok(st["dropped"] == 0 and st["sent"] == sent, "inner channel: %d sent, none dropped" % st["sent"], str(st))


def scenario_geometry_and_sizing(tmp, logged):
    bad = Nginx(tmp, "mismatch", LOGGED=logged, INNER="rmpsc-resty-other-%d" % os.getpid(),
                MAX_PRODUCERS="12", CAPACITY="512", GROUP='"nogroup"' if ROOT else "nil")
    r = bad.start()
    log = bad.error_log() + r.stderr
    ok(r.returncode != 0, "nginx refuses to start on a channel with other geometry")
    ok("exists with other geometry: capacity 4096 (configured: 512)" in log and "rm /dev/shm/" in log,
       "the error names the difference and how to resolve it",
       "\n".join(line for line in log.splitlines() if "ringmpsc" in line)[:800])
    bad.stop("stop")
    names = ["rmpsc-resty-small-%d-%d" % (os.getpid(), i) for i in range(2)]
    small = Nginx(tmp, "small", LOGGED=names[0], INNER=names[1], MAX_PRODUCERS="2", CAPACITY="64",
                  GROUP='"nogroup"' if ROOT else "nil")
    try:
        r = small.start()
        ok(r.returncode == 0, "nginx starts with max_producers 2", r.stderr)
        ok(wait_for(10, lambda: "max_producers 2 < worker_processes 2 x 3" in small.error_log()),
           "too few producer slots for worker_processes x generations is warned about")
    finally:
        small.stop("stop")
        for n in names:
            try:
                ringmpsc.unlink(n)
            except FileNotFoundError:
                pass


def main():
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            ok(False, "%s is installed (scripts/ensure-deps.sh lua)" % tool)
            return 1
    tmp = tempfile.mkdtemp(prefix="ringmpsc-resty.")
    os.chmod(tmp, 0o755)
    logged = "rmpsc-resty-logged-%d" % os.getpid()
    inner = "rmpsc-resty-inner-%d" % os.getpid()
    ng = Nginx(tmp, "main", LOGGED=logged, INNER=inner, MAX_PRODUCERS="12", CAPACITY="4096",
               GROUP='"nogroup"' if ROOT else "nil")
    try:
        r = ng.start()
        if not ok(r.returncode == 0 and wait_for(10, lambda: len(ng.workers()) == WORKERS),
                  "nginx starts with %d workers on 127.0.0.1:%d" % (WORKERS, ng.port), r.stderr):
            return 1
        st = os.stat("/dev/shm/" + logged)
        ok(st.st_mode & 0o777 == 0o660 and (not ROOT or st.st_gid == 65534),
           "the channel was created mode 0660%s" % (", group nogroup" if ROOT else ""), oct(st.st_mode))
        scenario_inner_consumer(ng, inner)
        scenario_log_phase(ng, tmp, logged)
        scenario_geometry_and_sizing(tmp, logged)
        crashes = [line for line in ng.error_log().splitlines()
                   if re.search(r"\[(crit|alert|emerg)\]", line) and "exited on signal 9" not in line]
        ok(not crashes, "nginx's error log has no crashes or critical errors", "\n".join(crashes[:10]))
    finally:
        ng.stop("stop")
        for n in (logged, inner):
            try:
                ringmpsc.unlink(n)
            except FileNotFoundError:
                pass
        if failures or os.environ.get("KEEP_TMP") == "1":
            print("# nginx prefixes kept: %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
