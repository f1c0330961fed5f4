#!/usr/bin/env bash
# Model-check the liveness protocol (attach.pml, consumer.pml) and consumer
# groups (groups.pml) with spin. Each
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
# Consumer groups (groups.pml; docs/ARCHITECTURE.md 2.7). The first design had five
# flaws (see groups.pml's header): the checks that must pass carry their fixes ($FIX,
# which group.c has in its own form), and each groups-flaw-* check shows that design
# (that one fix left out) failing.
FIX="-DFIX_JOIN -DFIX_PARTIAL -DFIX_RECOMPUTE -DFIX_CREATE -DFIX_EPH"
# 2 producers, groups A = {0, 1} and B = {2}, one ring wrapping; member 0 may die
# (member 1 is its mirror image: either may join first, be SOLO, or adopt); the
# survivor recovers (producers recover in the other checks; here it would triple
# the states).
G_MAIN="-DCAP=1 -DNREC=2 -DNREC1=1 -DKILLMASK=1 -DPRECOVER=0"
# group A alone, 2 rings of 2 (out-of-order releases, a claim per ring), both may die
G_SHARED="-DONEGROUP -DNM=2 -DNP=2 -DCAP=2 -DNREC=3 -DNREC1=1 -DMAXB=1 -DKILLMASK=3"
# three members in one group, one ring
G_THREE="-DONEGROUP -DNM=3 -DNP=1 -DCAP=1 -DNREC=2 -DKILLMASK=1"
# partial releases of 2-record claims
G_PART="-DPARTIAL -DONEGROUP -DNM=2 -DNP=1 -DCAP=2 -DNREC=3 -DMAXB=2 -DKILLMASK=3"
# group B created (CREATING) by member 2 while the producer runs; B ephemeral; its creator may die
G_CREATE="-DCREATE -DEPH -DNP=1 -DCAP=1 -DNREC=3 -DKILLMASK=4"
G_TWO="-DONEGROUP -DNM=2 -DNP=1 -DCAP=2 -DNREC=3 -DMAXB=1 -DKILLMASK=0"
check groups ok groups.pml "$FIX $G_MAIN" "$S" ""
check groups-shared ok groups.pml "$FIX $G_SHARED" "$S" ""
check groups-three ok groups.pml "$FIX $G_THREE" "$S" ""
check groups-partial ok groups.pml "$FIX $G_PART" "$S" ""
check groups-create ok groups.pml "$FIX $G_CREATE" "$S" ""
check groups-at-most-once ok groups.pml "$FIX -DAMO $G_THREE" "$S" ""
# Negative: hazards the protocol's orders avoid.
# A release that scans the other claims before clearing its own (no fence): two
# releases each see the other's claim, the head is stranded below the cursor.
check groups-no-fence fail groups.pml "$FIX -DNO_FENCE $G_TWO" "$S" ""
# A claim that stores the cursor before its claim record: a recompute moves the
# head past the claim being taken.
check groups-cursor-first fail groups.pml "$FIX -DCURSOR_FIRST $G_TWO" "$S" ""
# group_create reading the tails before it publishes CREATING: a producer that
# did not see the group overwrites records the group starts at.
check groups-tail-first fail groups.pml "$FIX -DTAIL_FIRST ${G_CREATE/-DKILLMASK=4/-DKILLMASK=0}" "$S" ""
# An alone joiner setting heads = cursors before its mode CAS: the loser of two
# joins moves the head past the winner's first SOLO claim.
check groups-join-heads-first fail groups.pml "$FIX -DJOIN_HEADS_FIRST $G_TWO" "$S" ""
# The doc's protocol, one fix left out at a time: each fails.
check groups-flaw-join fail groups.pml "${FIX/-DFIX_JOIN/} $G_THREE" "$S" ""
check groups-flaw-partial fail groups.pml "${FIX/-DFIX_PARTIAL/} $G_PART" "$S" ""
check groups-flaw-recompute fail groups.pml "${FIX/-DFIX_RECOMPUTE/} $G_THREE" "$S" ""
check groups-flaw-create fail groups.pml "${FIX/-DFIX_CREATE/} $G_CREATE" "$S" ""
check groups-flaw-ephemeral fail groups.pml "${FIX/-DFIX_EPH/} $G_CREATE" "$S" ""
echo "model $pass $fail 0" >> build/results.txt
echo "[model] $pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
