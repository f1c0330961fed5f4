#!/usr/bin/env bash
# Model-check the liveness protocol (attach.pml, consumer.pml), consumer
# groups (groups.pml, groups-settle.inc), consumer wake-ups (wake.pml) and the
# bound on records in flight (pending.pml) with
# spin. Each check generates a verifier, compiles it and runs it under a time
# limit; the real models must show 0 errors, the negative variants must find
# their counterexample. Appends "model <passed> <failed> 0" to build/results.txt.
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
cp tests/model/*.pml tests/model/*.inc "$work"/
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
# Consumer groups (groups.pml, with groups-settle.inc; the C code as it is:
# csrc/group.c, consumer.c, producer.c). One member may die at any step,
# holding the group lock or inside its busy bracket included.
# 2 producers, groups A = {0, 1} and B = {2}, one ring wrapping; member 0 may die
# (member 1 is its mirror image); the survivor recovers (producers recover in the
# other checks; here it would triple the states).
G_MAIN="-DCAP=1 -DNREC=2 -DNREC1=1 -DKILLMASK=1 -DPRECOVER=0"
# group A alone, 2 rings of 2 (out-of-order releases, a claim per ring), both may die
G_SHARED="-DONEGROUP -DNM=2 -DNP=2 -DCAP=2 -DNREC=3 -DNREC1=1 -DMAXB=1 -DKILLMASK=3"
# three members in one group, one ring: joins racing a solo member, adoption by a third
G_THREE="-DONEGROUP -DNM=3 -DNP=1 -DCAP=1 -DNREC=2 -DKILLMASK=1"
# partial releases of 2-record claims
G_PART="-DPARTIAL -DONEGROUP -DNM=2 -DNP=1 -DCAP=2 -DNREC=3 -DMAXB=2 -DKILLMASK=3"
# group B created (CREATING) by member 2 while the producer runs; B ephemeral; its creator may die
G_CREATE="-DCREATE -DEPH -DNP=1 -DCAP=1 -DNREC=3 -DKILLMASK=4"
G_TWO="-DONEGROUP -DNM=2 -DNP=1 -DCAP=2 -DNREC=3 -DMAXB=1 -DKILLMASK=0"
# pan.c of groups.pml is large: -O1 compiles in half the time of -O2 and runs as
# fast; -O0 for the checks that end in a second
L="$S -O1" Q="$S -O0"
check groups ok groups.pml "$G_MAIN" "$L" ""
check groups-shared ok groups.pml "$G_SHARED" "$L" ""
check groups-three ok groups.pml "$G_THREE" "$L" ""
check groups-partial ok groups.pml "$G_PART" "$Q" ""
check groups-create ok groups.pml "$G_CREATE" "$L" ""
check groups-at-most-once ok groups.pml "-DAMO $G_THREE" "$L" ""
# Members that leave early (-DLEAVE: idle, or with a span read and not released),
# and two deaths. Each of these configurations found a flaw of group.c as it was
# (groups.pml's header, "Flaws"); group.c has the fixes now ($FIX: an ephemeral
# group of orphans only is recovery work, a solo member that left is converted in
# settle's mode step, settle recomputes whenever the group ends SHARED, a lock taken
# over from a dead holder is settled first). The groups-leave* and groups-two-deaths
# checks run group.c as it is; the groups-flaw-* ones, the code before each fix,
# must find their counterexamples.
FIX="-DFIX_EPH_ORPHANS -DFIX_SOLO_LEFT -DFIX_RECOMPUTE -DFIX_TAKEOVER"
# A: ephemeral at-least-once group, member 0 may die, member 1 may leave
G_LEAVE_EPH="-DONEGROUP -DEPH -DNM=2 -DNP=1 -DCAP=1 -DNREC=2 -DKILLMASK=1 -DLEAVE=2"
# B: durable group, member 1 (solo) may leave with its span open; nobody dies
G_LEAVE_SOLO="-DONEGROUP -DNM=2 -DNP=1 -DCAP=1 -DNREC=2 -DKILLMASK=0 -DLEAVE=2"
# C: at-most-once group, member 1 may leave and then die (in its own settle)
G_LEAVE_AMO="-DONEGROUP -DAMO -DNM=2 -DNP=1 -DCAP=1 -DNREC=2 -DKILLMASK=2 -DLEAVE=2"
# C without leaves: three members, two may die
G_DEATHS2="-DONEGROUP -DNM=3 -DNP=1 -DCAP=1 -DNREC=1 -DKILLMASK=3 -DMAXDEATHS=2"
# C (the orphans hint): durable group, 2-record spans, member 1 may leave and die
G_LEAVE_DUR="-DONEGROUP -DNM=2 -DNP=1 -DCAP=2 -DNREC=3 -DKILLMASK=2 -DLEAVE=2"
check groups-flaw-eph-orphans fail groups.pml "$G_LEAVE_EPH" "$Q" ""
check groups-flaw-solo-left fail groups.pml "$G_LEAVE_SOLO" "$Q" ""
check groups-flaw-amo-leave fail groups.pml "$G_LEAVE_AMO" "$Q" ""
check groups-flaw-two-deaths fail groups.pml "$G_DEATHS2" "$Q" ""
check groups-flaw-hint fail groups.pml "-DFIX_EPH_ORPHANS -DFIX_SOLO_LEFT -DFIX_RECOMPUTE $G_LEAVE_DUR" "$Q" ""
check groups-leave ok groups.pml "$FIX ${G_LEAVE_EPH/-DKILLMASK=1 -DLEAVE=2/-DKILLMASK=3 -DLEAVE=3}" "$Q" ""
check groups-leave-solo ok groups.pml "$FIX $G_LEAVE_SOLO" "$Q" ""
check groups-leave-amo ok groups.pml "$FIX $G_LEAVE_AMO" "$Q" ""
check groups-leave-durable ok groups.pml "$FIX $G_LEAVE_DUR" "$Q" ""
check groups-two-deaths ok groups.pml "$FIX $G_DEATHS2" "$L" ""
# Negative: hazards the protocol's orders avoid.
# A release that scans the claims before its own clear is visible (no fence): two
# releases each see the other's claim, the head is stranded below the cursor.
check groups-no-fence fail groups.pml "-DNO_FENCE $G_TWO" "$Q" ""
# A joiner that ends a solo mode without looking at busy: it records the open
# claim while the solo member's plain store is in flight.
check groups-no-busy fail groups.pml "-DNO_BUSY $G_TWO" "$Q" ""
# settle recomputing heads while SOLO/PENDING: the head passes the solo member's
# open claim (not a record).
check groups-recompute-in-solo fail groups.pml "-DRECOMPUTE_IN_SOLO $G_TWO" "$Q" ""
# A claim word with a count (not the end): a partial release is two stores, a
# death between them orphans a span past the one held.
check groups-two-store-partial fail groups.pml "-DTWO_STORE_PARTIAL $G_PART" "$Q" ""
# The count kept by increments and decrements, not recounted from the places: a
# joiner that dies between its place and its count + 1 is counted out twice.
check groups-count-inc fail groups.pml "-DCOUNT_INC $G_THREE" "$Q" ""
# A claim that stores the cursor before its claim record: a recompute moves the
# head past the claim being taken.
check groups-cursor-first fail groups.pml "-DCURSOR_FIRST $G_TWO" "$Q" ""
# group_create reading the tails before it publishes CREATING: a producer that
# did not see the group overwrites records the group starts at.
check groups-tail-first fail groups.pml "-DTAIL_FIRST ${G_CREATE/-DKILLMASK=4/-DKILLMASK=0}" "$Q" ""
# Consumer wake-ups (wake.pml; csrc/wait.c, notify.c, consumer.c: the waiting
# members mask, coalescing's wake_min, the readiness FIFO; close). A thread left
# waiting while its group has records it has not taken (or the channel is closed)
# is an invalid end state. Producers publish NREC records each (NREC1 the second).
W="$S"
# one member, blocking: without coalescing; then lingering for K=2 records
check wake-futex ok wake.pml "-DNREC=2" "$W" ""
check wake-coalesce ok wake.pml "-DK=2 -DNREC=3" "$W" ""
# one member on the readiness fd (arm, wait, consume; a disarm); then one that
# chooses the fd or a blocking call per wait (wait_how changes under a stale bit;
# a blocking call on an armed place leaves the bit to the fd)
check wake-fd ok wake.pml "-DFD=1 -DNCANCEL=1 -DK=2 -DNREC=3" "$W" ""
check wake-mixed ok wake.pml "-DMIXED=1 -DNCANCEL=1 -DK=2 -DNREC=3 -DNREC1=2" "$W" ""
# two members, each in a group of its own (two bits; one blocking, one on the fd)
check wake-two ok wake.pml "-DNM=2 -DFD=2 -DNCANCEL=1 -DK=2 -DNREC=1" "$W" ""
# two members of one group (one cursor), both blocking
check wake-group ok wake.pml "-DNM=2 -DSAMEGROUP -DK=2 -DNREC=2 -DNREC1=1" "$W" ""
# rmpsc_channel_close at any moment: every thread ends with ECLOSED, every record
# published before it taken; one member choosing per wait, then two on one ring
check wake-close ok wake.pml "-DCLOSE -DMIXED=1 -DNCANCEL=1 -DK=2 -DNREC=2 -DNREC1=1" "$W" ""
check wake-close-two ok wake.pml "-DCLOSE -DNM=2 -DFD=2 -DNP=1 -DK=2 -DNREC=2" "$W" ""
# Negative: each leaves a member waiting for good with a record untaken.
# The fenced wait's re-check loading before its bit is visible (no fence);
# then the same in rmpsc_ready_arm
check wake-no-fence fail wake.pml "-DNO_FENCE" "$W" ""
check wake-no-fence-arm fail wake.pml "-DNO_FENCE -DFD=1" "$W" ""
# A producer loading the mask before its tail is visible
check wake-producer-no-fence fail wake.pml "-DPRODUCER_NO_FENCE" "$W" ""
# The bit cleared before the re-check, not after it
check wake-withdraw-before-check fail wake.pml "-DWITHDRAW_BEFORE_CHECK" "$W" ""
# The fenced wait announcing wake_min = K: a ring left under K records wakes nobody
check wake-threshold-in-fenced fail wake.pml "-DTHRESHOLD_IN_FENCED -DK=2" "$W" ""
# rmpsc_ready_arm draining the FIFO after its re-check: it eats the wake-up
check wake-arm-no-drain-order fail wake.pml "-DARM_NO_DRAIN_ORDER -DFD=1" "$W" ""
# Why the API allows one thread at a time per membership (wake.pml's header): two
# threads calling at once on one member place; one's withdraw clears the bit the
# other announced, which then sleeps unannounced: two blocking threads; then a
# blocking one and one on the fd
check wake-shared-place-two-threads fail wake.pml "-DSHARED_PLACE -DNM=2 -DSTOP=1" "$W" ""
check wake-shared-place-two-threads-fd fail wake.pml "-DSHARED_PLACE -DNM=2 -DSTOP=1 -DFD=2 -DK=2 -DNREC1=1" "$W" ""
# A bound on records in flight (pending.pml; csrc/consumer.c rmpsc_wait_pending_below,
# csrc/notify.h wake_progress): 2 senders, 2 consumers releasing from any ring; a
# sender asleep for ever is an invalid end state. Then the bound 2, and a slab
# waiter on the same words with one consumer (two: minutes).
check pending ok pending.pml "" "$S" ""
check pending-limit2 ok pending.pml "-DLIMIT=2" "$S" ""
check pending-slab ok pending.pml "-DSLAB -DNC=1" "$S" ""
# Negative: the consumer looking before its release; the wake-up bumping seq before
# it clears the limit (with a cleared limit read as "skip"); senders announcing with
# a plain store that erases a slab waiter's bit.
check pending-early-look fail pending.pml "-DNEG_EARLY_LOOK" "$S" ""
check pending-bump-first fail pending.pml "-DNEG_BUMP_FIRST" "$S" ""
check pending-store-flag fail pending.pml "-DSLAB -DNC=1 -DNEG_STORE_FLAG" "$S" ""
echo "model $pass $fail 0" >> build/results.txt
echo "[model] $pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
