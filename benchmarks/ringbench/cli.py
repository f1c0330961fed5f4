"""The command line of benchmarks/run.py: build, run, merge, render."""
import argparse
import json
import os
import sys
import time

from . import RESULTS, WORK, log
from .goals import evaluate_goals
from .machine import commit_text, machine_info, machine_line
from .markdown import write_md
from .plots import PLOTS, make_plots
from .readme import BEGIN, END, readme_block, update_readme
from .rows import derive_limits, normalize
from .suites import build, run_suite, suites

USAGE = """benchmarks/run.py [--quick] [--only PROGRAMS] [--no-build] [--no-readme]
    benchmarks/run.py --report-only        (re-render md, plots and README from latest.json)

`make bench` runs it after scripts/ensure-deps.sh; `QUICK=1 make bench` (or --quick)
runs the reduced set. Steps:

 1. `make` the target of every chosen program (build/bench_c, build/bench_steady,
    build/bench_peers, build/venv/.ringmpsc-built, lib): make decides what is out of date;
 2. run the programs one after the other, each under a time limit, each writing JSON
    lines:
      bench_c      build/bench_c          suite "c" (ringmpsc alone, next to a bare SPSC
                                          ring and memcpy; the liveness check; consumer
                                          groups next to the classic single consumer) and,
                                          derived from it, suite "limits" (memcpy of the
                                          same bytes, cache-line round trip)
      bench_peers  build/bench_peers      suite "c": ringmpsc vs rte_ring, ck_ring, Boost,
                                          moodycamel
      python       benchmarks/python/peers.py   suite "python"
      python_share benchmarks/python/workshare.py   suite "python" (work sharing across
                                          processes: a consumer group vs faster-fifo and
                                          multiprocessing.Queue)
      python_aio   benchmarks/python/aio.py   suite "python": asyncio consumers
                                          (recv_many_async, recv_async; uvloop as
                                          information) vs blocking ones, and a ping-pong
      python_queue benchmarks/python/queues.py   suite "python": ringmpsc.Queue (the
                                          drop-in for faster_fifo.Queue) vs faster-fifo
                                          and multiprocessing.Queue in faster-fifo's
                                          comparison configurations (P producer ->
                                          C consumer processes); 1 MiB NumPy frames vs
                                          memcpy
      lua          benchmarks/lua/run.sh        suite "lua" (inside nginx)
      steady       build/bench_steady     suite "c", scenario "steady": paced producer
                                          processes -> one consumer process; producer CPU
                                          and consumer wake-ups per record, blocking vs
                                          polling
      nginx_logging benchmarks/nginx_logging/run.sh   suite "nginx": nginx logging every
                                          request through ringmpsc to a Python consumer,
                                          blocking vs polling vs no logging, and through
                                          resty.ringmpsc vs ngx.shared.DICT + a timer
                                          consumer vs building the record only (wrk)
 3. merge the rows into benchmarks/results/latest.json (a list of row objects; every row
    keeps the fields its program wrote and gets "source" = the program and "machine" =
    the run's machine summary), benchmarks/results/machine.json (machine and per-program
    status), judge the goals (benchmarks/ringbench/goals.py), and write
    benchmarks/results/latest.md, benchmarks/results/*.png and the README block between
    <!-- bench:begin --> and <!-- bench:end -->.

A program that fails to build or run does not stop the others: it is listed as missing
in latest.md and the exit status is 1 at the end. Raw outputs and logs: build/bench/.
"""

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
    ap = argparse.ArgumentParser(prog="benchmarks/run.py",
                                 description="Run every ringmpsc benchmark program and write the results.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=USAGE)
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK", "") not in ("", "0"),
                    help="reduced set, under two minutes (default when QUICK=1 is in the environment)")
    ap.add_argument("--only", help="comma-separated programs to run: bench_c,steady,bench_peers,python,python_share,"
                                   "python_aio,python_queue,lua,nginx_logging "
                                   "(the others are reported as not run; README.md is left alone)")
    ap.add_argument("--no-build", action="store_true", help="use what is built; do not call make")
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
    built = build([s.target for s in chosen], args.no_build)

    rows = []
    for s in all_suites:
        if s not in chosen:
            s.status, s.detail = "not run", "--only %s" % args.only
            continue
        got = run_suite(s, args.quick, args.timeout, built)
        rows += normalize(got, s.name, {k: machine.get(k) for k in ("cpu", "cpus", "kernel", "date", "commit")})

    c_rows = [r for r in rows if r.get("source") == "bench_c"]
    others = [r for r in rows if r.get("source") != "bench_c"]
    c_keep, limits = derive_limits(c_rows)
    rows = limits + c_keep + others

    meta = {
        # a partial run (--only) leaves README.md as it is
        "machine": machine, "command": command, "quick": args.quick, "readme": not (args.no_readme or only),
        "seconds": round(time.monotonic() - t_start, 1),
        "builds": {t: {"ok": ok, "detail": detail} for t, (ok, detail) in built.items()},
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
