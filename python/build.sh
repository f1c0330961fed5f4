#!/usr/bin/env bash
# The one way the ringmpsc package is built: pip installs this checkout into the
# virtual environment build/venv (made by `scripts/ensure-deps.sh python`), the
# same path as `pip install .` (a wheel built from pyproject.toml/setup.py), so
# tests, demo, benchmarks and stubtest import what a user would install and the
# system interpreter is never touched. setuptools keeps its objects in
# build/python, so a rebuild recompiles only what changed.
# Output goes to build/python-build.log; shown on failure.
set -u
cd "$(dirname "$0")/.."
VPY=build/venv/bin/python
log=build/python-build.log
mkdir -p build
if [ ! -x "$VPY" ]; then
	echo "python/build.sh: $VPY missing: run scripts/ensure-deps.sh python (make deps) first" >&2
	exit 1
fi
# --no-build-isolation: build with the venv's setuptools and wheel, offline.
if timeout -k 10 600 "$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
	--force-reinstall . > "$log" 2>&1; then
	exit 0
fi
cat "$log"
echo "python/build.sh: building the extension failed" >&2
exit 1
