#!/usr/bin/env bash
# Records/s of the LuaJIT binding inside one nginx worker, next to
# ngx.shared.DICT lpush + rpop of the same 64-byte strings, in the same run.
# Usage: benchmarks/lua/run.sh [--quick] [--json FILE] [RECORDS]
#   RECORDS   records per timed repetition, at least (default 2000000; --quick 200000)
#   --quick   3 repetitions of >= 0.1 s per case instead of 5 of >= 0.2 s (~3 s in all)
#   --json F  also write the rows as benchmark JSON lines (suite "lua") to F
# Env: QUICK=1 and BENCH_JSON=FILE do the same; JITV=1 also prints what jit.v logged
# for the bench loops.
set -u
cd "$(dirname "$0")/../.."
REPO=$PWD
QUICK=${QUICK:-0}
JSON_OUT=${BENCH_JSON:-}
N=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--json) [ $# -ge 2 ] || { echo "run.sh: --json needs a file" >&2; exit 2; }; JSON_OUT=$2; shift ;;
	--json=*) JSON_OUT=${1#--json=} ;;
	-h|--help) sed -n '2,9p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) N=$1 ;;
	esac
	shift
done
if [ "$QUICK" = 1 ]; then
	N=${N:-200000} REPS=3 MIN_S=0.1
else
	N=${N:-2000000} REPS=5 MIN_S=0.2
fi
if [ -n "$JSON_OUT" ]; then
	case $JSON_OUT in /*) ;; *) JSON_OUT=$OLDPWD/$JSON_OUT ;; esac
fi
make --no-print-directory lib > /dev/null || exit 1
tmp=$(mktemp -d /tmp/ringmpsc-bench.XXXXXX)
mkdir -p "$tmp/conf" "$tmp/logs" "$tmp/tmp"
chmod 755 "$tmp"
: > "$tmp/logs/jitv.log"
chmod 666 "$tmp/logs/jitv.log" # the worker may run as nobody
cleanup() {
	if [ -s "$tmp/logs/nginx.pid" ]; then
		local master
		master=$(cat "$tmp/logs/nginx.pid")
		nginx -p "$tmp/" -c conf/nginx.conf -e logs/error.log -s stop 2>/dev/null
		for _ in $(seq 50); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$master" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
for attempt in 1 2 3 4 5; do
	port=$((20000 + (RANDOM * 7 + $$ + attempt * 131) % 40000))
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
	sed -e "s|@REPO@|$REPO|g" -e "s|@PORT@|$port|g" benchmarks/lua/nginx.conf > "$tmp/conf/nginx.conf"
	timeout 20 nginx -p "$tmp/" -c conf/nginx.conf -e logs/error.log 2> "$tmp/start.err" && break
	grep -q "Address already in use" "$tmp/start.err" || { cat "$tmp/start.err"; exit 1; }
done
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.1; done
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 1 worker, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
q="n=$N&reps=$REPS&min_s=$MIN_S"
[ "${JITV:-0}" = 1 ] && q="$q&jitv=1"
[ -n "$JSON_OUT" ] && q="$q&json=1"
timeout 300 curl -sf --max-time 290 -o "$tmp/body" "http://127.0.0.1:$port/bench?$q" || {
	echo "bench request failed"
	cat "$tmp/body" 2>/dev/null
	grep -E '\[(error|crit|alert|emerg)\]' "$tmp/logs/error.log"
	exit 1
}
sed '/^@@ringmpsc-json@@$/,$d' "$tmp/body"
if [ -n "$JSON_OUT" ]; then
	sed '1,/^@@ringmpsc-json@@$/d' "$tmp/body" > "$JSON_OUT" || exit 1
	[ -s "$JSON_OUT" ] || { echo "run.sh: no JSON rows came back" >&2; exit 1; }
fi
if [ "${JITV:-0}" = 1 ]; then
	echo "--- jit.v (inside the nginx worker)"
	cat "$tmp/logs/jitv.log"
fi
if grep -E '\[(error|crit|alert|emerg)\]' "$tmp/logs/error.log"; then
	exit 1
fi
