#!/usr/bin/env bash
# Run C test programs with a time limit each. Usage: run.sh VARIANT DIR TEST...
# Appends "c-VARIANT <passed> <failed> <skipped>" to build/results.txt.
set -u
variant=$1 dir=$2
shift 2
limit=${TEST_TIMEOUT:-300}
pass=0 fail=0 skip=0
for t in "$@"; do
	start=$EPOCHREALTIME
	timeout -k 10 "$limit" "$dir/$t" > "$dir/$t.log" 2>&1
	rc=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0) pass=$((pass + 1)); echo "PASS [$variant] $t (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP [$variant] $t: $(tail -n 1 "$dir/$t.log")" ;;
	124 | 137) fail=$((fail + 1)); echo "FAIL [$variant] $t: timed out after ${limit}s (hang)"; tail -n 20 "$dir/$t.log" ;;
	*) fail=$((fail + 1)); echo "FAIL [$variant] $t (exit $rc)"; tail -n 30 "$dir/$t.log" ;;
	esac
done
mkdir -p build
echo "c-$variant $pass $fail $skip" >> build/results.txt
echo "[$variant] $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
