"""Number formatting and markdown tables shared by latest.md and the README block."""
import math

from .rows import NOISY


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


def f_us(ns):
    """A per-call cost in µs: '41.3 µs'."""
    if not isinstance(ns, (int, float)):
        return "–"
    us = ns / 1000
    return ("%.0f µs" if us >= 100 else "%.1f µs" if us >= 10 else "%.2f µs") % us


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
    if r.get("pinned") is False:
        n.append("unpinned")
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


def scen_label(scen, producers, processes, suite, consumers=None):
    if scen in ("fanout", "workshare") and isinstance(consumers, int) and consumers > 1:
        scen = "%s %s→%d" % (scen, producers, consumers)
    if suite == "python" and scen != "threads":
        return "%s (%s)" % (scen, "processes" if processes else "threads")
    return str(scen)

