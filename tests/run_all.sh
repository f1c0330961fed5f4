#!/usr/bin/env bash
# `make test`: every suite, each bounded in time. Each suite appends
# "<suite> <passed> <failed> <skipped>" to build/results.txt; the last line printed
# is the total, "N passed, N failed, N skipped". Exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
mkdir -p build
: > build/results.txt # each suite appends its line
status=0
run_suite() { # name command...
	local name=$1
	shift
	echo "=== $name"
	local before=$(wc -l < build/results.txt 2>/dev/null || echo 0)
	"$@" || status=1
	local after=$(wc -l < build/results.txt 2>/dev/null || echo 0)
	if [ "$after" -le "$before" ]; then
		echo "FAIL suite $name reported no results"
		echo "$name 0 1 0" >> build/results.txt
		status=1
	fi
}
run_suite c-plain $MAKE --no-print-directory test-c-plain
run_suite c-tsan $MAKE --no-print-directory test-c-tsan
run_suite c-asan $MAKE --no-print-directory test-c-asan
run_suite version tests/version_test.sh
run_suite model tests/model/run.sh
run_suite lint tests/lint.sh
[ -x tests/python/run.sh ] && run_suite python tests/python/run.sh
[ -x tests/lua/run.sh ] && run_suite lua tests/lua/run.sh

echo "=== summary"
awk '{ printf "  %-10s %d passed, %d failed, %d skipped\n", $1, $2, $3, $4; p += $2; f += $3; s += $4 }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' build/results.txt
failed=$(awk '{ f += $3 } END { print f + 0 }' build/results.txt)
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
