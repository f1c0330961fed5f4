#!/usr/bin/env bash
# Heavy multi-process stress for a machine with many cores (not part of make test):
# runs the multi-process C stress programs over and over, JOBS at a time, for SECONDS,
# each run with a fresh seed: test_proc_stress (producers SIGKILLed at random moments,
# exactly-once and per-producer FIFO checked), test_proc_liveness (exec, privilege
# drop, _Fork, the consumer-role release/claim race) and test_proc_namespaces (PID
# namespaces, when permitted). A failing run's log is kept under build/stress-many/.
# Usage: tests/stress_many.sh [SECONDS=120] [JOBS=nproc]   (after make test-c-plain)
set -u
cd "$(dirname "$0")/.."
secs=${1:-120}
jobs=${2:-$(nproc)}
bin=build/test-plain
out=build/stress-many
mkdir -p "$out"
for t in test_proc_stress test_proc_liveness test_proc_namespaces; do
	[ -x "$bin/$t" ] || { echo "stress_many: $bin/$t missing: run make test-c-plain first" >&2; exit 2; }
done
end=$((SECONDS + secs))
worker() { # id: loop until the end, one program after another
	local id=$1 n=0 fails=0 seed rc prog
	local progs=(test_proc_stress test_proc_stress test_proc_stress test_proc_liveness)
	[ $((id % 4)) -eq 0 ] && progs+=(test_proc_namespaces)
	while [ $SECONDS -lt $end ]; do
		prog=${progs[$((n % ${#progs[@]}))]}
		seed=$(( (id << 32) + n + 1 ))
		timeout -k 10 300 "$bin/$prog" "$seed" > "$out/w$id.log" 2>&1
		rc=$?
		if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
			fails=$((fails + 1))
			cp "$out/w$id.log" "$out/fail-w$id-$n-$prog.log"
		fi
		n=$((n + 1))
	done
	echo "$id $n $fails" > "$out/w$id.result"
}
rm -f "$out"/w*.result "$out"/fail-*.log
for id in $(seq 1 "$jobs"); do worker "$id" & done
wait
runs=$(awk '{ r += $2 } END { print r + 0 }' "$out"/w*.result)
fails=$(awk '{ f += $3 } END { print f + 0 }' "$out"/w*.result)
echo "stress_many: $runs runs in ${secs}s on $(nproc) CPUs, $jobs at a time: $fails failed"
ls "$out"/fail-*.log 2>/dev/null | head -n 20
[ "$fails" -eq 0 ]
