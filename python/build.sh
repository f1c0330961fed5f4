#!/usr/bin/env bash
# Build the ringmpsc package from this checkout into a private directory (default
# build/python-site) with pip, the same path as `pip install .`, without touching
# site-packages. Use it with PYTHONPATH=<dir>. Used by tests/python/run.sh and
# scripts/demo.sh. Output goes to build/python-build.log; shown on failure.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
dest=${1:-build/python-site}
log=build/python-build.log
mkdir -p build
rm -rf "$dest"
pip_install() {
	timeout -k 10 600 "$PYTHON" -m pip install -q --disable-pip-version-check --no-deps --target "$dest" "$@" . >> "$log" 2>&1
}
: > "$log"
# Offline first, with the setuptools already here; if this setuptools cannot build
# wheels by itself (no `wheel` package before setuptools 70.1), let pip fetch the
# build requirements (pyproject.toml) into an isolated environment.
if pip_install --no-build-isolation || { rm -rf "$dest"; pip_install; }; then
	exit 0
fi
cat "$log"
echo "python/build.sh: building the extension failed" >&2
exit 1
