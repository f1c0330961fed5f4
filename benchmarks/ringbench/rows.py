"""Rows: the JSON objects the programs write, and how they are grouped and compared.

A row group is one (suite, program, scenario, record size, batch, producers,
processes); inside it ringmpsc's best row is compared with the best peer's and with
the yardsticks the program measured next to it: the hand-written bare SPSC ring (the
physical yardstick of a cross-core stream: the same copy between the same two CPUs),
memcpy (information only: one thread, no cross-core traffic) and the cache-line round
trip (the yardstick of latency). Rows with "ns_per_call" are costs of one call, not
streams (the liveness check). The consumer-group rows of bench_c (group-solo, fanout,
workshare) each come with a "single_consumer" row: the classic single consumer
(max_consumers = 1) with the same producers, record size and batch, run alternately
with them; it is their yardstick.
"""
import statistics

REQUIRED = ["suite", "impl", "path", "scenario", "record_size", "batch", "producers", "consumers",
            "processes", "reads_data", "records_per_s", "bytes_per_s", "p50_ns", "p99_ns", "runs"]
SUITE_ORDER = ["limits", "c", "python", "lua", "nginx"]
YARDSTICKS = {"memcpy", "cacheline", "bare_spsc", "single_consumer"}
GROUP_SCENARIOS = ("group-solo", "fanout", "workshare")  # consumer groups (bench_c; Python: workshare)
LATENCY_SCENARIOS = {"pingpong", "cacheline", "latency", "asyncio-pingpong"}
AIO_SCENARIOS = ("asyncio", "asyncio-pingpong")  # benchmarks/python/aio.py: asyncio vs blocking, no peers
SCENARIO_ORDER = ["spsc", "mpsc", "threads", "group-solo", "fanout", "workshare", "asyncio", "asyncio-pingpong",
                  "same-worker", "pingpong", "cacheline", "memcpy", "liveness", "steady", "nginx-logging"]
NOISY = 0.10  # other_cpu_load at or above this marks a row noisy


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


def is_cost(r):
    """A row that times one call (ns_per_call), not a stream of records."""
    return isinstance(r.get("ns_per_call"), (int, float))


def rate(r):
    v = r.get("records_per_s")
    return v if isinstance(v, (int, float)) and v > 0 else None


def nginx_modes(rows):
    """benchmarks/nginx_logging rows by mode (blocking, poll, resty, resty_inner, resty_zc,
    dict, build, hook, none; rows written before the modes were named carry only consumer_wait)."""
    return {r.get("mode") or r.get("consumer_wait"): r for r in rows
            if r.get("scenario") == "nginx-logging" and rate(r)}


def nginx_ratio(ng, a, b):
    """Requests/s of mode a ÷ mode b: the row's median of the rounds' ratios where it has
    one (vs_<b>), else the ratio of the medians."""
    ra, rb = ng.get(a), ng.get(b)
    if not ra or not rb:
        return None
    v = ra.get("vs_" + b)
    return v if isinstance(v, (int, float)) else rate(ra) / rate(rb)


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
    mine = [r for r in group if r.get("impl") == "ringmpsc" and rate(r) and r.get("ok") is not False]
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
    peers = [r for r in group if is_peer(r) and rate(r) and r.get("ok") is not False]  # not failed runs
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


def bare_for(r, group):
    """bytes/s of the bare SPSC ring measured next to r (same copy, same two CPUs, same
    run): the physical yardstick of a cross-core stream. None where none was measured."""
    v = r.get("bare_spsc_bytes_per_s")
    if isinstance(v, (int, float)) and v > 0:
        return v
    for x in group:
        if x.get("impl") == "bare_spsc" and x.get("source") == r.get("source") and x.get("bytes_per_s"):
            return x["bytes_per_s"]
    return None


def single_for(r, group):
    """records/s of the classic single consumer measured next to a consumer-group row
    (same producers, record size, batch; the same run). None where none was measured."""
    v = r.get("single_consumer_records_per_s")
    if isinstance(v, (int, float)) and v > 0:
        return v
    for x in group:
        if x.get("impl") == "single_consumer" and x.get("source") == r.get("source") and rate(x):
            return rate(x)
    return None


def single_ratio(r, group):
    """A consumer-group row ÷ its single consumer: the median of the runs' ratios where
    the program paired the runs (vs_single_consumer), else the ratio of the medians."""
    v = r.get("vs_single_consumer")
    if isinstance(v, (int, float)) and v > 0:
        return v
    single = single_for(r, group)
    return rate(r) / single if single and rate(r) else None


def cacheline_for(source, rows):
    for r in rows:
        if r.get("source") == source and (r.get("impl") == "cacheline" or r.get("scenario") == "cacheline") \
                and r.get("p50_ns"):
            return r
    return None


QUEUE_SOURCE = "python_queue"  # benchmarks/python/queues.py: ringmpsc.Queue vs faster_fifo.Queue and mp.Queue


def queue_modes(rows):
    """benchmarks/python/queues.py, scenarios "queue P→C": {mode: {scenario: {impl: row}}},
    modes and configurations in the program's order."""
    out = {}
    for r in rows:
        if r.get("source") == QUEUE_SOURCE and str(r.get("scenario")).startswith("queue "):
            out.setdefault(r.get("mode"), {}).setdefault(r["scenario"], {})[r.get("impl")] = r
    return out


def queue_ratios(cfgs, peer, mine="ringmpsc"):
    """[(scenario, mine ÷ peer)] over the configurations of one mode where both have a rate."""
    return [(s, rate(by[mine]) / rate(by[peer])) for s, by in cfgs.items()
            if mine in by and peer in by and rate(by[mine]) and rate(by[peer])]


def queue_frames(rows):
    """benchmarks/python/queues.py, scenario frames: {impl: row} (the yardstick: impl memcpy)."""
    return {r.get("impl"): r for r in rows if r.get("source") == QUEUE_SOURCE and r.get("scenario") == "frames"}


def steady_how(r):
    """How the consumer of a steady-stream row (bench_steady) waits, in words."""
    wait = r.get("consumer_wait")
    if wait == "poll":
        return "polling, 1 ms sleep when empty"
    if wait == "none" or r.get("impl") == "pace_only":
        return "pacing only (no channel, no consumer)"
    co = r.get("coalescing")
    if co == "off":
        return "blocking, coalescing off"
    mr, d = r.get("coalesce_min_records"), r.get("coalesce_max_delay_ns")
    if isinstance(mr, (int, float)) and isinstance(d, (int, float)):
        dt = "%g ms" % (d / 1e6) if d >= 1e6 else "%g µs" % (d / 1e3)
        return "blocking, coalescing (%d, %s)%s" % (mr, dt, " = defaults" if co == "defaults" else "")
    return "blocking"


def steady_order(r):
    """Sort key of steady-stream rows: by rate (highest first), then blocking at the
    defaults, blocking without coalescing, other settings, polling, pacing only."""
    wait, co = r.get("consumer_wait"), r.get("coalescing")
    k = 0 if co == "defaults" else 1 if co == "off" else 2 if wait == "blocking" else 3 if wait == "poll" else 4
    return (-num(r.get("rate_per_producer")), k, num(r.get("coalesce_min_records")),
            num(r.get("coalesce_max_delay_ns")))


def aio_order(r):
    """Sort key of asyncio rows (benchmarks/python/aio.py): as the program prints them."""
    calls = {"recv_many": 0, "recv": 1}
    cons = {"blocking": 0, "asyncio": 1, "uvloop": 2}
    return (r.get("scenario") != "asyncio", r.get("coalescing") == "off", calls.get(r.get("consumer_call"), 2),
            -num(r.get("batch")), cons.get(r.get("consumer"), 3))


def aio_ratio(r):
    """An asyncio row ÷ the blocking row of the same call and producers: the median of the
    rounds' ratios the program wrote."""
    v = r.get("vs_blocking")
    if isinstance(v, (int, float)) and v > 0:
        return v
    b = r.get("blocking_records_per_s")
    return rate(r) / b if rate(r) and isinstance(b, (int, float)) and b > 0 else None


def steady_rate(r, unit=""):
    """'100 k' or '20 k in bursts of 8' (unit " rec/s": '20 k rec/s in bursts of 8'):
    records/s per producer of a steady-stream row."""
    b = r.get("burst")
    rate_ = r.get("rate_per_producer")
    if not isinstance(rate_, (int, float)):
        return "–"
    v = ("%.0f k" % (rate_ / 1e3) if rate_ >= 1e3 else "%d" % rate_) + unit
    return v + (" in bursts of %d" % b if isinstance(b, int) and b > 1 else "")
