"""benchmarks/results/latest.md: every row, grouped, with its ratios and the goals."""
import statistics

from .fmt import f_dur, f_gbs, f_mrec, f_ns, f_pct, f_rate, f_x, impl_label, md_table, notes_of, scen_label
from .machine import commit_text, machine_line
from .plots import PLOTS
from .rows import (
    NOISY,
    SUITE_ORDER,
    YARDSTICKS,
    aio_order,
    aio_ratio,
    bare_for,
    best_peer,
    cacheline_for,
    fallback_peer,
    groups_of,
    is_cost,
    is_latency,
    memcpy_for,
    nginx_modes,
    nginx_ratio,
    num,
    queue_frames,
    queue_modes,
    queue_ratios,
    rate,
    single_ratio,
    steady_how,
    steady_order,
    steady_rate,
)


def throughput_table(rows, allrows, show_p50):
    """rows: throughput rows of one (suite, source); one table, group key shown once."""
    # the bare ring runs only in bench_c's spsc rows; other tables leave its column out
    has_bare = any(r.get("impl") == "bare_spsc" or r.get("bare_spsc_bytes_per_s") for r in rows)
    # the consumer-group rows come with the classic single consumer as their yardstick
    has_single = any(r.get("impl") == "single_consumer" for r in rows)
    header = ["scenario", "rec B", "batch", "prod", "impl", "path", "Mrec/s", "GB/s", "× best peer"] + \
        (["× bare ring"] if has_bare else []) + (["× single consumer"] if has_single else []) + ["× memcpy (info)"]
    align = ["l", "r", "r", "r", "l", "l", "r", "r", "r"] + (["r"] if has_bare else []) + \
        (["r"] if has_single else []) + ["r"]
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
            bare = bare_for(r, group) if r.get("impl") not in YARDSTICKS else None
            rbare = r["bytes_per_s"] / bare if bare and r.get("bytes_per_s") else None
            cell = f_x(ratio, bold_at=1.0) if r.get("impl") == "ringmpsc" else f_x(ratio)
            if fallback and ratio is not None:
                cell += " †"
                footnote = True
            cons = max(num(x.get("consumers"), 0) for x in group)
            line = [scen_label(scen, prod, procs, suite, cons) if first else "", rs if first else "",
                    batch if first else "", prod if first else "", impl_label(r), r.get("path"),
                    f_mrec(rate(r)), f_gbs(r.get("bytes_per_s")), cell]
            if has_bare:
                line.append(f_x(rbare, bold_at=1.0) if r.get("impl") == "ringmpsc" else f_x(rbare))
            if has_single:
                line.append(f_x(single_ratio(r, group)) if r.get("impl") == "ringmpsc" else "–")
            line.append(f_x(rmc))
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
    for group in groups_of(rows).values():
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
    "python_share": "benchmarks/python/workshare.py — work sharing: producer processes → 4 consumer processes "
                    "(ringmpsc: the members of one consumer group), 64-byte records",
    "python_aio": "benchmarks/python/aio.py — asyncio consumers vs blocking ones: 2 producer processes → 1 "
                  "consumer process, and a ping-pong through an echo process; 64-byte records",
    "python_queue": "benchmarks/python/queues.py — ringmpsc.Queue, the drop-in for faster_fifo.Queue, vs "
                    "faster_fifo.Queue and multiprocessing.Queue: faster-fifo's comparison configurations and message "
                    "`(i,) * 5`; 1 MiB NumPy frames vs memcpy",
    "lua": "benchmarks/lua/run.sh — inside one nginx worker (producer and consumer in turn: the per-record cost "
           "of the calls, not a cross-core figure)",
    "steady": "build/bench_steady — steady stream: paced producer processes send 64-byte records one at a time "
              "to one consumer process, which verifies every record; what the consumer's way of waiting costs",
    "nginx_logging": "benchmarks/nginx_logging/run.sh — nginx (2 workers) logs every request through ringmpsc "
                     "(the binding, resty.ringmpsc) to a Python consumer process, or through ngx.shared.DICT to a "
                     "timer in a worker; wrk on 127.0.0.1",
}


def f_num(v, spec):
    return spec % v if isinstance(v, (int, float)) else "–"


def steady_table(rows):
    """bench_steady: one line per (rate, consumer mode)."""
    header = ["rate per producer", "consumer", "rec/s", "producer CPU ns/rec", "÷ polling",
              "producer CPU less sleeps ns/rec", "÷ polling", "in send ns/rec", "÷ polling", "wake-ups/rec",
              "consumer CPU ns/rec", "consumer sleeps/rec", "latency p50", "latency p99", "runs", "note"]
    body = []
    for r in sorted(rows, key=steady_order):
        note = notes_of(r)
        if num(r.get("behind_schedule_ms"), 0) > 1:
            note = ", ".join(x for x in (note, "behind schedule %.1f ms" % r["behind_schedule_ms"]) if x)
        body.append([steady_rate(r) + ", × %s" % r.get("producers"), steady_how(r),
                     f_rate(rate(r)), f_num(r.get("producer_cpu_ns_per_record"), "%.0f"),
                     f_x(r.get("producer_cpu_vs_poll")), f_num(r.get("producer_work_cpu_ns_per_record"), "%.0f"),
                     f_x(r.get("producer_work_cpu_vs_poll")), f_num(r.get("producer_send_ns_per_record"), "%.0f"),
                     f_x(r.get("producer_send_vs_poll")), f_num(r.get("consumer_wakes_per_record"), "%.4f"),
                     f_num(r.get("consumer_cpu_ns_per_record"), "%.0f"),
                     f_num(r.get("consumer_sleeps_per_record"), "%.4f"), f_dur(r.get("p50_ns")),
                     f_dur(r.get("p99_ns")), r.get("runs"), note])
    out = md_table(header, body, ["l", "l"] + ["r"] * 13 + ["l"])
    out += ["", "Producer CPU: the producer processes' CPU time over their paced loops ÷ records (pacing "
            "sleeps included: see \"pacing only\"); less sleeps: without the CPU time inside the pacing sleeps "
            "(what building and sending the records cost; the goal's figure); in send: wall time inside "
            "rmpsc_producer_send ÷ records; ÷ polling: "
            "÷ the polling consumer's figure, the median of the rounds' ratios; wake-ups: rmpsc_stats."
            "consumer_wakes ÷ records; consumer sleeps: its voluntary context switches ÷ records; latency: a "
            "record's send to the consumer's callback. Medians of the runs; processes unpinned."]
    return out


def nginx_table(rows):
    """benchmarks/nginx_logging: one line per mode (and nginx without logging)."""
    order = ["resty", "resty_inner", "resty_zc", "dict", "build", "hook", "blocking", "poll", "none"]
    ng = nginx_modes(rows)

    def vs(mode, other):
        return f_x(nginx_ratio(ng, mode, other)) if mode != other and other in ng else "–"
    what = {"blocking": "binding reserve/commit → blocking consumer: recv_many(timeout=None)",
            "poll": "binding reserve/commit → polling consumer: recv_many(timeout=0) + 5 ms sleep",
            "resty": "resty.ringmpsc send(text record) → blocking consumer",
            "resty_inner": "resty.ringmpsc send(text record) → its consume() timer in worker 0",
            "resty_zc": "resty.ringmpsc reserve/fill/commit → blocking consumer",
            "dict": "ngx.shared.DICT lpush(text record) → rpop in a timer of worker 0",
            "build": "text record built, no queue", "hook": "log_by_lua counting the request, no record",
            "none": "no logging"}
    body = []
    for w in sorted(ng, key=lambda m: order.index(m) if m in order else 9):
        r = ng[w]
        check = "–" if w == "none" else ("ok" if r.get("ok") is not False else "**CHECK FAILED**")
        body.append([what.get(w, w), f_rate(rate(r)), vs(w, "none"), vs(w, "dict"), vs(w, "poll"),
                     f_num(r.get("consumer_wakes_per_request"), "%.4f"),
                     f_num(r.get("futex_wake_calls_per_request"), "%.4f"),
                     f_num(r.get("worker_cpu_us_per_request"), "%.1f"),
                     f_num(r.get("consumer_cpu_us_per_request"), "%.1f"), f_dur(r.get("p50_ns")),
                     f_dur(r.get("p99_ns")), r.get("requests"), r.get("served"), r.get("logged"),
                     r.get("dropped"), r.get("received"), check])
    out = md_table(["mode", "req/s", "÷ no logging", "÷ DICT", "÷ polling", "consumer wake-ups/req",
                    "FUTEX_WAKE/req (perf)", "workers CPU µs/req", "consumer CPU µs/req", "latency p50",
                    "latency p99", "requests (wrk)", "served to /", "logged", "dropped", "received", "check"], body,
                   ["l"] + ["r"] * 15 + ["l"])
    out += ["", "wrk %s against 127.0.0.1; every request to / makes one record in the log phase (64 bytes in the "
            "channel: the binding's and resty_zc's binary record filled in place, or resty's, dict's and build's "
            "text line \"pid seq status time addr method uri\"); ÷: the median of the rounds' ratios; check: "
            "requests served to / (stub_status) = records made + dropped = records the consumer received, in "
            "sequence per worker. Wake-ups: the channel's consumer_wakes ÷ wrk's requests; FUTEX_WAKE: the "
            "workers' futex wake calls counted by perf; workers CPU includes the consumer timers (dict, "
            "resty_inner)." % (
                rows[0].get("wrk") if rows else "")]
    return out


def aio_tables(rows):
    """benchmarks/python/aio.py: records/s with each consumer, then the ping-pong."""
    out = []
    thr = sorted([r for r in rows if r.get("scenario") == "asyncio"], key=aio_order)
    if thr:
        body = []
        for r in thr:
            body.append(["%s (%s)" % (r.get("path"), r.get("consumer")), r.get("producer_call"), r.get("batch"),
                         f_rate(rate(r)), f_x(aio_ratio(r)) if r.get("consumer") != "blocking" else "–",
                         f_num(r.get("consumer_cpu_ns_per_record"), "%.1f"),
                         f_num(r.get("consumer_wakes_per_record"), "%.4f"), f_num(r.get("records_per_call"), "%.1f"),
                         r.get("runs"), f_pct(r.get("spread")), notes_of(r)])
        out += md_table(["consumer", "producers call", "producer batch", "rec/s", "× blocking", "consumer CPU ns/rec",
                         "wake-ups/rec", "records per call", "runs", "spread", "note"], body,
                        ["l", "l"] + ["r"] * 8 + ["l"])
        out += ["", "%s producer processes send as fast as they can; the consumer (this process) checks every "
                "record (its producer's sequence number and bytes) and counts them. × blocking: the median of the "
                "rounds' ratios to the blocking consumer of the same call and producers (goal py-asyncio); "
                "consumer CPU: its CPU time ÷ records; wake-ups: the wake-ups the producers sent it ÷ records; "
                "records per call: per recv_many." % thr[0].get("producers"), ""]
    pp = sorted([r for r in rows if r.get("scenario") == "asyncio-pingpong"], key=aio_order)
    if pp:
        body = []
        for r in pp:
            body.append(["%s (%s)" % (r.get("path"), r.get("consumer")), r.get("coalescing"), f_ns(r.get("p50_ns")),
                         f_ns(r.get("p99_ns")), f_ns(r.get("mean_ns")), f_x(r.get("vs_blocking_p50")),
                         f_rate(rate(r)), f_num(r.get("client_wakes_per_round_trip"), "%.3f"),
                         f_num(r.get("echo_wakes_per_round_trip"), "%.3f"), r.get("runs"), notes_of(r)])
        out += md_table(["client", "coalescing (both sides)", "p50 ns", "p99 ns", "mean ns", "p50 ÷ blocking (info)",
                         "round trips/s", "wake-ups to client/RT", "wake-ups to echo/RT", "runs", "note"], body,
                        ["l", "l"] + ["r"] * 8 + ["l"])
        out += ["", "One 64-byte record there and back: the client sends it and waits for the echo (an echo process "
                "answers with blocking recv/send); p50/p99/mean over every round trip of every run; coalescing off: "
                "`set_coalesce(1, 0)` on both sides.", ""]
    cost = [r for r in rows if r.get("scenario") == "asyncio-costs" and is_cost(r)]
    if cost:
        body = [[r.get("path"), r.get("consumer"), "%.0f" % r["ns_per_call"], f_x(r.get("vs_blocking_cost")),
                 r.get("runs"), r.get("calls_per_run", "–")] for r in cost]
        out.append("The cost of one call in one process (records there, or space), the least of the runs:")
        out.append("")
        out += md_table(["call", "part of", "ns per call", "÷ the blocking call", "runs", "calls per run"], body,
                        ["l", "l", "r", "r", "r", "r"])
        out += ["", "From \"recv(timeout=0), Empty\" on: the calls one wait of ringmpsc._aio makes around the "
                "loop's wait, once a receive found nothing; a blocking call polls 20 µs in C first.", ""]
    return out


def rate_cell(r, fmt):
    """A row's rate in a table cell: "–" where there is no row, FAILED where its runs failed."""
    if r is not None and rate(r):
        return fmt(rate(r))
    return "**FAILED**" if r is not None and r.get("ok") is False else "–"


def queue_tables(rows, detail=True):
    """benchmarks/python/queues.py: messages/s per configuration and mode, the ratios and
    their medians; then the frames next to memcpy. detail: runs, spread and notes (latest.md;
    the README block leaves them out)."""
    out = []
    body = []
    for mode, cfgs in queue_modes(rows).items():
        for s, by in cfgs.items():
            m, ff, mq = by.get("ringmpsc"), by.get("faster-fifo"), by.get("mp.Queue")
            any_row = m or ff or mq
            line = [s[len("queue "):] + ("*" if any_row.get("oversubscribed") else ""), mode,
                    any_row.get("messages")]
            line += [rate_cell(r, f_rate) for r in (m, ff, mq)]
            for p in (ff, mq):
                line.append(f_x(rate(m) / rate(p), bold_at=1.0) if m and p and rate(m) and rate(p) else "–")
            if detail:
                line += [", ".join("%s %s" % (n, f_pct(r.get("spread"))) for n, r in
                                   (("ringmpsc", m), ("ff", ff), ("mpq", mq)) if r and r.get("spread") is not None),
                         "; ".join("%s: %s" % (n, notes_of(dict(r, oversubscribed=False))) for n, r in
                                   (("ringmpsc", m), ("ff", ff), ("mpq", mq))
                                   if r and notes_of(dict(r, oversubscribed=False)))]
            body.append(line)
        rff, rmq = queue_ratios(cfgs, "faster-fifo"), queue_ratios(cfgs, "mp.Queue")
        line = ["**median**", mode, "", "", "", "", f_x(statistics.median(x for _, x in rff)) if rff else "–",
                f_x(statistics.median(x for _, x in rmq)) if rmq else "–"]
        body.append(line + (["", ""] if detail else []))
    if body:
        header = ["P→C", "mode", "messages", "ringmpsc.Queue msg/s", "faster-fifo msg/s", "mp.Queue msg/s",
                  "ringmpsc ÷ faster-fifo", "ringmpsc ÷ mp.Queue"] + (["spread", "note"] if detail else [])
        out += md_table(header, body, ["l", "l"] + ["r"] * 6 + (["l", "l"] if detail else []))
        out += ["", "P producer processes put `(i,) * 5` (i unique over the run), one put per message, into one queue "
                "that C consumer processes share (* = more processes than CPUs); per message: every consumer calls "
                "`get()`; batched: `get_many(max_messages_to_get=1000)` (multiprocessing.Queue has none: `get()` in "
                "a loop). Every consumer sums msg[0] of every message it gets; counts and sums checked. \"–\" under "
                "ringmpsc.Queue: not in this build.", ""]
    frames = queue_frames(rows)
    mc = frames.get("memcpy")
    if frames:
        body = []
        for impl in ("ringmpsc", "faster-fifo", "mp.Queue", "memcpy"):
            r = frames.get(impl)
            if r is None:
                continue
            bps = r.get("bytes_per_s")
            line = [r.get("label") or impl, rate_cell(r, lambda v: "%.0f" % v), f_gbs(bps),
                    f_x(bps / mc["bytes_per_s"], bold_at=0.5 if impl == "ringmpsc" else None)
                    if bps and mc and mc.get("bytes_per_s") and r is not mc else "–"]
            if detail:
                line += [r.get("runs"), f_pct(r.get("spread")), notes_of(r)]
            body.append(line)
        out += md_table(["1 MiB frames, 1 → 1 process", "frames/s", "GB/s", "÷ memcpy"] +
                        (["runs", "spread", "note"] if detail else []), body,
                        ["l", "r", "r", "r"] + (["r", "r", "l"] if detail else []))
        out += ["", "The producer writes the frame number into frame[0] and frame[-1] of a NumPy int64 frame and "
                "calls `put(frame)`; the consumer checks both in every frame it gets (`get()`). memcpy: "
                "`np.copyto(dst, src)` of one 1 MiB frame into another, one thread, in a loop.", ""]
    return out


def cost_table(rows):
    body = []
    for r in sorted(rows, key=lambda r: (str(r.get("scenario")), num(r.get("producers")))):
        runs = r.get("runs_ns_per_call") or []
        spread = (max(runs) - min(runs)) / r["ns_per_call"] if len(runs) > 1 and r["ns_per_call"] else None
        body.append([what_label(r), r.get("path"), "%.2f" % (r["ns_per_call"] / 1000), r.get("runs"),
                     r.get("calls_per_run", "–"), f_pct(spread), notes_of(r)])
    return md_table(["what", "call", "µs per call", "runs", "calls per run", "spread", "note"], body,
                    ["l", "l", "r", "r", "r", "r", "l"])


def what_label(r):
    """What a cost row measures, in words."""
    if r.get("scenario") == "liveness":
        return "liveness check, %s live producer processes" % r.get("producers")
    return str(r.get("scenario"))


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
            if source in ("steady", "nginx_logging"):
                out += (steady_table if source == "steady" else nginx_table)(xs)
                out.append("")
                continue
            if source == "python_aio":
                out += aio_tables(xs)
                continue
            if source == "python_queue":
                out += queue_tables(xs)
                continue
            thr = [r for r in xs if not is_latency(r) and not is_cost(r)]
            cost = [r for r in xs if is_cost(r)]
            lat = [r for r in xs if is_latency(r)]
            if thr:
                out += throughput_table(thr, rows, any(r.get("p50_ns") for r in thr))
                out.append("")
            if lat:
                out.append("Latency: one record there and back through two queues (round trip):")
                out.append("")
                out += latency_table(lat, rows, source)
                out.append("")
            if cost:
                out.append("Cost of one call (median of the runs' mean time per call):")
                out.append("")
                out += cost_table(cost)
                out.append("")
    return out



def goals_md(goals):
    out = ["## Goals", "",
           "Judged by benchmarks/ringbench/goals.py (the programs only measure). "
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
        body = [[w, d, g.fmt(x), ("≥ " if hib else "≤ ") + g.target_text(t), st] for w, d, x, t, st, hib in g.checks]
        out += md_table(["where", "measured", "ratio", "goal", "status"], body, ["l", "l", "r", "r", "l"])
        out.append("")
        out.append("</details>")
        out.append("")
    return out


def write_md(rows, meta, goals, plots):
    m = meta["machine"]
    out = ["# ringmpsc benchmarks", "",
           "Generated by `benchmarks/run.py` (the benchmarks/ringbench package) from `latest.json`; do not edit by "
           "hand.", "",
           "- **Machine:** %s" % machine_line(m),
           "- **When:** %s, %s" % (m.get("date"), commit_text(m)),
           "- **Command:** `%s`%s" % (meta.get("command"), " (reduced set)" if meta.get("quick") else ""),
           "- **Toolchain:** %s; Python %s; %s; nginx %s" % (m.get("cc"), m.get("python"), m.get("luajit"),
                                                            m.get("nginx")),
           "",
           "Every consumer reads every record unless a row says \"count only\". Rates are the median of `runs` "
           "runs (Lua: the best of them). \"× best peer\" = this row's records/s ÷ the best peer's records/s in "
           "the same row group (same program, scenario, record size, batch, producers); \"× bare ring\" = bytes/s "
           "÷ a hand-written bare SPSC ring doing the same copy between the same two CPUs in the same run (the "
           "physical yardstick of a cross-core stream; bench_c's spsc rows); \"× memcpy (info)\" = bytes/s ÷ a "
           "one-thread memcpy of the same bytes, for information only (no cross-core stream can reach an "
           "in-cache copy). This machine is shared and small: compare "
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

