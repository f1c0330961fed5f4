"""ringbench: run the ringmpsc benchmark programs, judge their goals, write the results.

The programs (build/bench_c, build/bench_steady, build/bench_peers,
benchmarks/python/peers.py, benchmarks/python/workshare.py, benchmarks/python/aio.py,
benchmarks/python/queues.py, benchmarks/lua/run.sh, benchmarks/nginx_logging/run.sh)
only measure: each writes one JSON object per row.
This package turns the rows into benchmarks/results/ and the README block:

    machine.py   what the results were measured on (CPU, kernel, toolchain, commit)
    suites.py    the programs: `make` builds each one (make decides what is out of
                 date), then each runs under a time limit, writing JSON lines
    rows.py      normalising rows, the "limits" suite derived from bench_c, row groups,
                 the best ringmpsc row and the best peer of a group, the yardsticks
    goals.py     the pass/fail targets of the rows: the one place they are judged
    fmt.py       number formatting and markdown tables
    markdown.py  benchmarks/results/latest.md
    plots.py     benchmarks/results/*.png (matplotlib)
    readme.py    the README block between <!-- bench:begin --> and <!-- bench:end -->
    cli.py       the command line (benchmarks/run.py is its entry point)
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
WORK = os.path.join(ROOT, "build", "bench")
README = os.path.join(ROOT, "README.md")


def log(msg):
    print("[bench] " + msg, flush=True)
