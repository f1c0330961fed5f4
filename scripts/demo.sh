#!/usr/bin/env bash
# `make demo`: from a fresh clone, install what is needed, build the Python package,
# then run the main job end to end: producer processes -> one consumer through a
# ringmpsc.Channel, every record verified, records/s next to multiprocessing.Queue
# doing the same work in the same run. Exits non-zero on any integrity error.
#   scripts/demo.sh [--producers N] [--records N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh python
echo "demo: installing the ringmpsc Python package into build/venv"
python/build.sh
exec timeout -k 5 120 build/venv/bin/python python/examples/demo.py "$@"
