"""Goals: the pass/fail targets of the benchmark rows, judged here and nowhere else.

The programs only measure; every target (its ratio, its yardstick, which rows it is
judged on) is in this file. Each goal lists its checks (where, what was measured,
the ratio, the target); a goal is met when every counted check is.
"""
import statistics

from .fmt import f_dur, f_gbs, f_mrec, f_rate, f_x
from .rows import (
    AIO_SCENARIOS,
    QUEUE_SOURCE,
    aio_order,
    aio_ratio,
    bare_for,
    best_peer,
    cacheline_for,
    groups_of,
    nginx_modes,
    nginx_ratio,
    num,
    queue_frames,
    queue_modes,
    queue_ratios,
    rate,
    ringmpsc_best,
    scen_of,
    single_for,
    single_ratio,
    steady_how,
    steady_order,
    steady_rate,
)

MET, MISSED, NA, NOTRUN = "met", "MISSED", "not measurable", "not measured"


class Goal:
    def __init__(self, gid, text, fmt=None):
        """fmt: how a value and the target are written, for goals on a value rather than a
        ratio (default: "1.23×")."""
        self.gid, self.text = gid, text
        self.fmt = fmt or f_x
        self.checks = []  # (where, detail, ratio, target, status)
        self.reason = None

    def target_text(self, target):
        return self.fmt(target) if self.fmt is not f_x else "%g×" % target

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
        f = self.fmt
        rng = f(min(vals)) if len(vals) == 1 else "%s … %s" % (f(min(vals)), f(max(vals)))
        word = "ratio" if f is f_x else "value"
        return "%s — met in %d of %d %s (%s %s)" % (st, met, n, "case" if n == 1 else "cases",
                                                  word if n == 1 else word + "s", rng)


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
    g4 = Goal("c-bare-ring", "C, 64-byte batched SPSC: ringmpsc ≥ 0.5× a bare SPSC ring (same copy, same CPUs)")
    for g in (g1, g2, g3):
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
    # The bare SPSC ring runs in bench_c next to each of its spsc rows (ringmpsc alone):
    # the same copy between the same two CPUs (memcpy is information in the tables only).
    bench_c = [r for r in rows if r.get("source") == "bench_c" and r.get("suite") == "c"]
    for key, group in groups_of(bench_c).items():
        if key[2] != "spsc" or key[3] != 64 or num(key[4]) <= 1:
            continue
        for r in group:
            if r.get("impl") != "ringmpsc" or r.get("reads_data") is False:
                continue
            bare = bare_for(r, group)
            if bare:
                g4.add(where_text(r), "ringmpsc %s %s GB/s vs bare ring %s GB/s" % (
                    r["path"], f_gbs(r["bytes_per_s"]), f_gbs(bare)), r["bytes_per_s"] / bare, 0.5)
    if not g4.counted():
        g4.reason = "no bench_c spsc 64 B batched rows with a bare ring (bench_c: %s)" % \
            suite_status.get("bench_c", "?")
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

    goals += group_goals(rows, machine, suite_status)

    py = [r for r in rows if r.get("suite") == "python" and r.get("processes") and r.get("source") != QUEUE_SOURCE
          and r.get("scenario") not in ("workshare",) + AIO_SCENARIOS]

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
    goals.append(python_share_goal(rows, suite_status))
    goals.append(python_aio_goal(rows, suite_status))
    goals += python_queue_goals(rows, suite_status)

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
    goals += steady_goals(rows, suite_status)
    goals.append(nginx_goal(rows, suite_status))
    goals += nginx_resty_goals(rows, suite_status)
    return goals



def group_goals(rows, machine, suite_status):
    """Consumer groups in C (bench_c): each row against the classic single consumer with
    the same producers, record size and batch, measured alternately in the same run."""
    gs = Goal("c-group-solo", "C, consumer groups: one group with one member (max_consumers=4) ≥ 0.95× the classic "
                              "single consumer")
    gf = Goal("c-fanout", "C, fan-out 1 producer → 4 groups: every group ≥ 0.8× the classic single consumer")
    cores = machine.get("cpus_usable") or machine.get("cpus") or 0
    grows = [r for r in rows if r.get("source") == "bench_c" and r.get("scenario") in ("group-solo", "fanout")]
    for key, group in groups_of(grows).items():
        for r in group:
            if r.get("impl") != "ringmpsc" or not rate(r) or r.get("ok") is False:
                continue
            single, ratio = single_for(r, group), single_ratio(r, group)
            if not single or not ratio:
                continue
            where = "%s %d B batch %s" % (key[2], key[3], key[4])
            if key[2] == "group-solo":
                gs.add(where, "1 group × 1 member %s Mrec/s vs single consumer %s Mrec/s" % (
                    f_mrec(rate(r)), f_mrec(single)), ratio, 0.95)
            else:
                need = (r.get("producers") or 1) + (r.get("consumers") or 4)
                gf.add(where + ("*" if r.get("oversubscribed") else ""),
                       "slowest of %s groups %s Mrec/s vs single consumer %s Mrec/s" % (
                           r.get("consumers"), f_mrec(rate(r)), f_mrec(single)), ratio, 0.8,
                       counted=cores >= need)
    status = suite_status.get("bench_c", "?")
    if not gs.checks:
        gs.reason = "no bench_c group-solo rows (bench_c: %s)" % status
    if not gf.checks:
        gf.reason = "no bench_c fanout rows (bench_c: %s)" % status
    elif not gf.counted():
        vals = sorted(c[2] for c in gf.checks)
        gf.reason = ("needs a machine with ≥ 5 cores (the producer and 4 consumers on cores of their own); this "
                     "machine has %d, so 5 threads share them (measured, not judged: %s)" % (
                         cores, ", ".join(f_x(v) for v in vals)))
    return [gs, gf]


def python_share_goal(rows, suite_status):
    """Python work sharing across processes (benchmarks/python/workshare.py)."""
    g = Goal("py-share-ff", "Python, work sharing across processes, per record: ringmpsc recv ≥ 20× faster-fifo get")
    share = [r for r in rows if r.get("suite") == "python" and r.get("scenario") == "workshare" and rate(r)]

    def find(prod, impl, path):
        for r in share:
            if (r.get("producers"), r.get("impl"), r.get("path")) == (prod, impl, path):
                return r
        return None
    for prod in sorted({r.get("producers") for r in share}, key=num):
        mine, ff = find(prod, "ringmpsc", "send/recv"), find(prod, "faster-fifo", "put/get")
        if mine and ff:
            g.add("workshare %s → %s processes%s" % (prod, mine.get("consumers"),
                                                      "*" if mine.get("oversubscribed") else ""),
                  "ringmpsc send/recv %s rec/s vs faster-fifo put/get %s rec/s" % (f_rate(rate(mine)),
                                                                                  f_rate(rate(ff))),
                  rate(mine) / rate(ff), 20)
    if not g.checks:
        g.reason = ("the work-sharing suite did not run (%s)" % suite_status.get("python_share", "?") if not share
                    else "the rows it needs are missing (ringmpsc send/recv, faster-fifo put/get)")
    return g


def python_aio_goal(rows, suite_status):
    """asyncio consumers (benchmarks/python/aio.py): records/s against a blocking consumer
    of the same producers in the same run. Judged: asyncio's default loop receiving in batches
    (recv_many_async, from both producer calls), the way an event loop consumer that keeps up
    receives. Per record (recv_async against a 60 ns blocking recv) and uvloop are
    information: an await of even a finished coroutine costs CPython more than the whole
    blocking call."""
    g = Goal("py-asyncio", "Python, 2 producer processes → 1 consumer process: an asyncio consumer (default loop, "
                           "recv_many_async) ≥ 0.8× a blocking one (recv_many), records/s")
    aio = sorted([r for r in rows if r.get("scenario") == "asyncio" and r.get("consumer") in ("asyncio", "uvloop")
                  and aio_ratio(r)], key=aio_order)
    for r in aio:
        where = "%s (%s), producers %s" % (r.get("path"), r.get("consumer"), r.get("producer_call"))
        blocking = r.get("blocking_records_per_s")
        g.add(where, "%s rec/s vs blocking %s %s rec/s (median of the rounds' ratios); consumer CPU %.0f ns per "
              "record, %.1f records per call" % (f_rate(rate(r)), r.get("consumer_call"), f_rate(blocking),
                                                 num(r.get("consumer_cpu_ns_per_record")),
                                                 num(r.get("records_per_call"))),
              aio_ratio(r), 0.8, counted=r.get("consumer") == "asyncio" and r.get("ok") is not False
              and r.get("path", "").startswith("recv_many"))
    if not g.checks:
        g.reason = "no asyncio rows (python_aio: %s)" % suite_status.get("python_aio", "?")
    return g


def python_queue_goals(rows, suite_status):
    """ringmpsc.Queue, the drop-in for faster_fifo.Queue (benchmarks/python/queues.py): in
    faster-fifo's comparison configurations against faster_fifo.Queue and
    multiprocessing.Queue, each mode (per message, batched) against the same mode of the
    peer; and 1 MiB NumPy frames against a one-thread memcpy of the same bytes. A
    ringmpsc.Queue run that failed is a missed check."""
    gf = Goal("py-queue-ff", "Python, ringmpsc.Queue (the drop-in for faster_fifo.Queue), faster-fifo's comparison "
                             "configurations, per message and batched: ≥ 3× faster_fifo.Queue, the median over the "
                             "configurations, none below 1.5×")
    gm = Goal("py-queue-mpq", "Python, ringmpsc.Queue, the same configurations: ≥ 10× multiprocessing.Queue, the "
                              "median over the configurations")
    gr = Goal("py-queue-frames", "Python, 1 MiB NumPy frames, 1 producer → 1 consumer process: ringmpsc.Queue ≥ "
                                 "0.5× a one-thread memcpy (np.copyto) of the same 1 MiB, bytes/s")
    modes = queue_modes(rows)
    for mode, cfgs in modes.items():
        for s, by in cfgs.items():
            mine = by.get("ringmpsc")
            if mine is not None and not rate(mine):
                for g, target in ((gf, 1.5), (gm, 10)):
                    g.add("%s, %s" % (s, mode), "ringmpsc.Queue: the run FAILED (latest.md, the suite's log)", 0.0,
                          target)
        for g, peer, target, each in ((gf, "faster-fifo", 3, 1.5), (gm, "mp.Queue", 10, None)):
            ratios = queue_ratios(cfgs, peer)
            for s, x in ratios:
                mine, p = cfgs[s]["ringmpsc"], cfgs[s][peer]
                g.add("%s%s, %s" % (s, "*" if mine.get("oversubscribed") else "", mode),
                      "ringmpsc.Queue %s %s msg/s vs %s %s %s msg/s" % (mine.get("path"), f_rate(rate(mine)), peer,
                                                                       p.get("path"), f_rate(rate(p))),
                      x, each or target, counted=each is not None)
            if ratios:
                g.add("median of %d configurations, %s" % (len(ratios), mode),
                      "ratios %s" % ", ".join(f_x(x) for _, x in ratios), statistics.median(x for _, x in ratios),
                      target)
    frames = queue_frames(rows)
    mc = frames.get("memcpy")
    if mc and mc.get("bytes_per_s"):
        for impl, r in frames.items():
            if impl == "memcpy":
                continue
            if not r.get("bytes_per_s"):
                if impl == "ringmpsc":
                    gr.add("frames 1→1", "ringmpsc.Queue: the run FAILED", 0.0, 0.5)
                continue
            gr.add("frames 1→1%s" % ("" if impl == "ringmpsc" else ", %s" % impl),
                   "%s put/get %s GB/s (%.0f frames/s) vs memcpy %s GB/s" % (
                       "ringmpsc.Queue" if impl == "ringmpsc" else impl, f_gbs(r["bytes_per_s"]), rate(r),
                       f_gbs(mc["bytes_per_s"])),
                   r["bytes_per_s"] / mc["bytes_per_s"], 0.5, counted=impl == "ringmpsc")
    have = [r for r in rows if r.get("source") == QUEUE_SOURCE]
    for g in (gf, gm, gr):
        if g.counted():
            continue
        if not have:
            g.reason = "the queue suite did not run (python_queue: %s)" % suite_status.get("python_queue", "?")
        elif not any(r.get("impl") == "ringmpsc" for r in have):
            g.reason = "ringmpsc.Queue is not in this build: only the peers were measured"
        else:
            g.reason = "the rows it needs are missing (python_queue: %s)" % suite_status.get("python_queue", "?")
    return [gf, gm, gr]


def f_per_record(v):
    return "%.4f" % v if isinstance(v, (int, float)) else "–"


def steady_label(r):
    """'100 k rec/s × 2 producers, blocking, coalescing (32, 1 ms) = defaults'."""
    return "%s, %s producers, %s" % (steady_rate(r, " rec/s"), r.get("producers"), steady_how(r))


def steady_goals(rows, suite_status):
    """The steady stream (build/bench_steady): paced producer processes -> one consumer
    process. Judged: the blocking consumer at the coalescing defaults; the other blocking
    rows (coalescing off, other settings) are shown as information."""
    gc = Goal("steady-cpu", "C, steady stream (2 paced producer processes → 1 consumer process): producer CPU per "
                            "record (pacing sleeps apart) with a blocking consumer (coalescing defaults) ≤ 1.2× with "
                            "one polling every 1 ms")
    gw = Goal("steady-wakes", "C, steady stream: consumer wake-ups per record with a blocking consumer (coalescing "
                              "defaults) ≤ 0.05", fmt=f_per_record)
    st = [r for r in rows if r.get("scenario") == "steady" and r.get("impl") == "ringmpsc"
          and r.get("consumer_wait") == "blocking"]
    for r in sorted(st, key=steady_order):
        counted = r.get("coalescing") == "defaults" and r.get("ok") is not False
        where = steady_label(r)
        work, cpu, send = (r.get("producer_work_cpu_vs_poll"), r.get("producer_cpu_vs_poll"),
                           r.get("producer_send_vs_poll"))
        # Judged: the producers' CPU less what their pacing sleeps cost (on a VM a sleep costs
        # 12-20 µs of CPU, varying with what the other CPU does, and swamps the rest); the
        # CPU with the sleeps and the time inside send are shown.
        if isinstance(work, (int, float)):
            gc.add(where, "producer CPU %.0f ns per record outside the pacing sleeps (vs polling: median of the "
                   "rounds' ratios)" % num(r.get("producer_work_cpu_ns_per_record")), work, 1.2,
                   higher_is_better=False, counted=counted)
        if isinstance(cpu, (int, float)):
            gc.add(where + "; pacing sleeps included", "producer CPU %.0f ns per record" % num(
                r.get("producer_cpu_ns_per_record")), cpu, 1.2, higher_is_better=False, counted=False)
        if isinstance(send, (int, float)):
            gc.add(where + "; time in send only", "%.0f ns per record inside rmpsc_producer_send" % num(
                r.get("producer_send_ns_per_record")), send, 1.2, higher_is_better=False, counted=False)
        w = r.get("consumer_wakes_per_record")
        if isinstance(w, (int, float)):
            gw.add(where, "rmpsc_stats.consumer_wakes ÷ records; consumer CPU %.0f ns per record, record latency "
                   "p50 %s" % (num(r.get("consumer_cpu_ns_per_record")), f_dur(r.get("p50_ns"))), w, 0.05,
                   higher_is_better=False, counted=counted)
    for g in (gc, gw):
        if not g.checks:
            g.reason = "no steady-stream rows (steady: %s)" % suite_status.get("steady", "?")
    return [gc, gw]


def nginx_goal(rows, suite_status):
    """nginx logging (benchmarks/nginx_logging/run.sh): requests/s with a blocking
    consumer against a consumer polling every 5 ms, in the same run."""
    g = Goal("nginx-logging", "nginx logging (2 workers → ringmpsc → a Python consumer process): requests/s with a "
                              "blocking consumer ≥ 0.9× with one polling every 5 ms")
    ng = nginx_modes(rows)
    b, p, none = ng.get("blocking"), ng.get("poll"), ng.get("none")
    if b and p:
        detail = "blocking %s req/s vs polling %s req/s" % (f_rate(rate(b)), f_rate(rate(p)))
        if none:
            detail += " (no logging %s req/s)" % f_rate(rate(none))
        if isinstance(b.get("consumer_wakes_per_request"), (int, float)):
            detail += "; consumer wake-ups per request %.4f" % b["consumer_wakes_per_request"]
        ok = b.get("ok") is not False and p.get("ok") is not False
        g.add("wrk %s" % b.get("wrk", ""), detail + ("" if ok else "; CHECK FAILED"), rate(b) / rate(p), 0.9,
              counted=ok)
    else:
        g.reason = "no nginx-logging rows with both consumers (nginx_logging: %s)" % \
            suite_status.get("nginx_logging", "?")
    return g


def nginx_resty_goals(rows, suite_status):
    """nginx logging through resty.ringmpsc (benchmarks/nginx_logging/run.sh, mode resty:
    the text record an operator builds, get(name):send(record)) against nginx without
    logging and against the ngx.shared.DICT setup (lpush, a timer consumer in worker 0),
    in the same run. The in-nginx consumer (resty_inner) and the zero-copy path (resty_zc)
    are shown, not judged."""
    gn = Goal("nginx-resty-none", "nginx logging through resty.ringmpsc (2 workers, log phase send → a Python consumer "
                                  "process): requests/s ≥ 0.9× nginx without logging")
    gd = Goal("nginx-resty-dict", "nginx logging through resty.ringmpsc: requests/s ahead of (≥ 1×) ngx.shared.DICT "
                                  "lpush + a timer consumer in a worker")
    ng = nginx_modes(rows)
    none, dict_, build = ng.get("none"), ng.get("dict"), ng.get("build")
    for mode, what in (("resty", "send(text record)"), ("resty_inner", "send(text record), consumer in nginx"),
                       ("resty_zc", "reserve/fill/commit")):
        r = ng.get(mode)
        if not r:
            continue
        counted = mode == "resty" and r.get("ok") is not False
        where = "%s, wrk %s" % (what, r.get("wrk", ""))
        extra = ""
        if build and mode == "resty":
            extra = "; building the record alone (no queue) %s req/s = %s no logging" % (
                f_rate(rate(build)), f_x(nginx_ratio(ng, "build", "none")))
        if none:
            gn.add(where, "%s req/s vs no logging %s req/s%s" % (f_rate(rate(r)), f_rate(rate(none)), extra),
                   nginx_ratio(ng, mode, "none"), 0.9, counted=counted and none.get("ok") is not False)
        if dict_:
            gd.add(where, "%s req/s vs ngx.shared.DICT %s req/s" % (f_rate(rate(r)), f_rate(rate(dict_))),
                   nginx_ratio(ng, mode, "dict"), 1.0, counted=counted and dict_.get("ok") is not False)
    for g, other in ((gn, "none"), (gd, "dict")):
        if not g.checks:
            g.reason = "no nginx-logging rows of modes resty and %s (nginx_logging: %s)" % (
                other, suite_status.get("nginx_logging", "?"))
    return [gn, gd]
