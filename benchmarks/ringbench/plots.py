"""benchmarks/results/*.png, drawn with matplotlib (scripts/ensure-deps.sh bench installs it)."""
import os

from . import RESULTS
from .fmt import f_ns, f_rate
from .machine import machine_line
from .rows import is_latency, num, rate, sort_key_scen

PLOTS = {
    "throughput_by_batch.png": "C throughput by batch size",
    "throughput_by_producers.png": "C MPSC throughput by producer count",
    "latency.png": "ping-pong latency vs the cache-line round trip",
    "bindings.png": "Python and LuaJIT throughput",
}


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
                style.update(color="grey", linestyle="--", marker="x", label="memcpy, one thread (information)")
            elif impl.startswith("bare_spsc"):
                style.update(color="grey", linestyle=":", marker="s", label="bare SPSC ring (yardstick)")
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
    py = [r for r in rows if r.get("suite") == "python" and rate(r) and r.get("source") not in ("python_aio",
                                                                                              "python_queue")]
    lua = [r for r in rows if r.get("suite") == "lua" and rate(r)]
    panels = []
    if py:
        for key in sorted({(r["scenario"], r["producers"], r.get("processes")) for r in py},
                          key=lambda k: (not k[2], sort_key_scen(k[0]), k[1])):
            prs = [r for r in py if (r["scenario"], r["producers"], r.get("processes")) == key]
            cons = max(num(r.get("consumers"), 1) for r in prs)
            panels.append(("Python %s, %d producer%s%s (%s)" % (key[0], key[1], "s" if key[1] > 1 else "",
                                                              " → %d consumers" % cons if cons > 1 else "",
                                                              "processes" if key[2] else "threads"), prs))
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

