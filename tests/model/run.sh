#!/usr/bin/env bash
# Model-check the liveness protocol (attach.pml, consumer.pml) with spin. Each
# check generates a verifier, compiles it and runs it under a time limit; the
# real models must show 0 errors, the negative variants must find their
# counterexample. Appends "model <passed> <failed> 0" to build/results.txt.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mkdir -p build
limit=${MODEL_TIMEOUT:-120}
pass=0 fail=0
if ! command -v spin > /dev/null; then
	echo "FAIL [model] spin is not installed (scripts/ensure-deps.sh model)"
	echo "model 0 1 0" >> build/results.txt
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp tests/model/*.pml "$work"/
# check NAME EXPECT MODEL "SPIN_DEFINES" "CC_DEFINES" "PAN_ARGS"; EXPECT: ok or fail
check() {
	local name=$1 expect=$2 model=$3 sdefs=$4 cdefs=$5 pargs=$6 start=$EPOCHREALTIME rc
	(cd "$work" && rm -f pan pan.* ./*.trail &&
		spin -a $sdefs "$model" > "$name.gen.log" 2>&1 &&
		cc -O2 -DVECTORSZ=512 -DMEMLIM=1536 -DCOLLAPSE $cdefs -o pan pan.c > "$name.cc.log" 2>&1 &&
		timeout -k 5 "$limit" ./pan -m200000 -w24 $pargs > "$name.log" 2>&1)
	rc=$?
	local log=$work/$name.log secs
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	local errors states
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$log" 2>/dev/null | tail -n 1)
	states=$(awk '/states, stored/ { print $1 }' "$log" 2>/dev/null | tail -n 1)
	local verdict=bad
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		verdict="timed out after ${limit}s"
	elif [ -z "$errors" ]; then
		verdict="no verdict (exit $rc)"
	elif grep -q "Search not completed" "$log" && [ "$errors" = 0 ]; then
		verdict="search not completed (out of memory or depth)"
	elif [ "$expect" = ok ] && [ "$errors" = 0 ]; then
		verdict=ok
	elif [ "$expect" = fail ] && [ "$errors" != 0 ]; then
		verdict=ok
	else
		verdict="$errors errors, expected $expect"
	fi
	if [ "$verdict" = ok ]; then
		pass=$((pass + 1))
		if [ "$expect" = ok ]; then
			echo "PASS [model] $name: 0 errors, ${states:-?} states (${secs}s)"
		else
			echo "PASS [model] $name: counterexample found as expected: $(grep -m1 -E '^pan:[0-9]' "$log") (${secs}s)"
		fi
	else
		fail=$((fail + 1))
		echo "FAIL [model] $name: $verdict (${secs}s)"
		tail -n 20 "$work/$name.gen.log" "$work/$name.cc.log" "$log" 2>/dev/null
	fi
}
S="-DSAFETY -DNOCLAIM"
# Producer slots: two producers re-attaching twice, two deaths, one respawn
# (no sweep: the producers reclaim); then with the consumer's sweep, one round.
check slots-safety ok attach.pml "-DNO_SWEEPER" "$S" ""
check slots-safety-sweep ok attach.pml "-DITER=1 -DMAXDEATHS=1" "$S" ""
# Progress under weak fairness: a dead owner's claim is eventually reclaimed.
check slots-progress ok attach.pml "-DITER=1 -DMAXDEATHS=1" "-DNFAIR=3" "-a -f"
# Negative: without the generation check, a newcomer's lock keeps a dead owner alive.
check slots-progress-nogen fail attach.pml "-DITER=1 -DMAXDEATHS=1 -DNO_GEN_CHECK" "-DNFAIR=3" "-a -f"
# The consumer role: two handles of P and a (respawning) Q.
check consumer-role ok consumer.pml "" "$S" ""
# Negative: the let_go order before 1770540 (CAS after unlocking) loses the role.
check consumer-role-old-let-go fail consumer.pml "-DOLD_LET_GO" "$S" ""
echo "model $pass $fail 0" >> build/results.txt
echo "[model] $pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
