#!/usr/bin/env python3
"""Run every ringmpsc benchmark program on this machine and write the results.

    benchmarks/run.py [--quick] [--only PROGRAMS] [--no-build] [--no-readme]
    benchmarks/run.py --report-only        (re-render md, plots and README from latest.json)

`make bench` calls it; the work is done by the package benchmarks/ringbench/ (see its
__init__.py for which module does what). `benchmarks/run.py --help` lists the options.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ringbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
