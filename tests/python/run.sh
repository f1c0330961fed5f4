#!/usr/bin/env bash
# The Python suite: make the venv build/venv (scripts/ensure-deps.sh python),
# install the package from this checkout into it (python/build.sh: pip, the real
# `pip install` path), check the stubs (mypy.stubtest), run pytest
# under a whole-suite time limit, and append "python <passed> <failed> <skipped>"
# to build/results.txt. Exits non-zero on any failure, crash or timeout. Nothing
# comes from, or goes to, the system interpreter's site-packages.
#
#   tests/python/run.sh [pytest args...]     e.g. tests/python/run.sh -k stress -x
set -u
cd "$(dirname "$0")/../.."
VPY=build/venv/bin/python
LIMIT=${PY_TEST_TIMEOUT:-300}
LOG=build/python-tests.log
WATCHDOG_LOG=build/python-watchdog.log
mkdir -p build

record() { # passed failed skipped
	echo "python $1 $2 $3" >> build/results.txt
	echo "[python] $1 passed, $2 failed, $3 skipped"
}

if ! scripts/ensure-deps.sh python; then
	echo "FAIL [python] could not make the venv build/venv"
	record 0 1 0
	exit 1
fi

echo "[python] building the extension (pip install into build/venv)"
if ! python/build.sh; then
	echo "FAIL [python] the extension did not build"
	record 0 1 0
	exit 1
fi

# Static checks count as one test each: stub drift and lint fail the suite.
static_failed=0
static_passed=0
static() { # name command...
	local name=$1
	shift
	if "$@" > build/python-$name.log 2>&1; then
		static_passed=$((static_passed + 1))
		echo "[python] $name: ok"
	else
		static_failed=$((static_failed + 1))
		echo "FAIL [python] $name:"
		tail -n 40 build/python-$name.log
	fi
}
# stubtest imports the installed package; run it from build/ so that the source
# tree's python/ringmpsc (no extension there) cannot shadow it.
static stubtest bash -c 'cd build && venv/bin/python -m mypy.stubtest ringmpsc'
# ruff runs in the lint suite (tests/lint.sh), with every other style check.

export RINGMPSC_TEST_WATCHDOG_LOG="$PWD/$WATCHDOG_LOG"
export PYTHONFAULTHANDLER=1
rm -f "$WATCHDOG_LOG"
start=$EPOCHREALTIME
timeout -k 10 "$LIMIT" "$VPY" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
	tests/python "$@" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# pytest's last line: "12 passed, 1 skipped, 2 failed, 1 error in 3.2s"
summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error|errors|deselected|xfailed|xpassed)' "$LOG" | tail -n 1)
count() { echo "$summary" | grep -Eo "[0-9]+ $1" | head -n 1 | grep -Eo '^[0-9]+' || echo 0; }
passed=$(count passed)
failed=$(( $(count failed) + $(count 'errors?') + $(count xpassed) ))
skipped=$(count skipped)

if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "FAIL [python] the suite ran past ${LIMIT}s and was killed (hang)"
	[ "$failed" -eq 0 ] && failed=1
elif [ -s "$WATCHDOG_LOG" ] && grep -q "most recent call first" "$WATCHDOG_LOG"; then
	echo "FAIL [python] a test hung; its watchdog ended the run:"
	grep "watchdog armed" "$WATCHDOG_LOG" | tail -n 1
	sed -n '/Timeout/,$p' "$WATCHDOG_LOG" | head -n 60
	[ "$failed" -eq 0 ] && failed=1
elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "FAIL [python] pytest exited with $rc"
	failed=1
fi
echo "[python] ${secs}s"
passed=$((passed + static_passed))
failed=$((failed + static_failed))
record "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
