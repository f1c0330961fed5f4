#!/usr/bin/env bash
# Records/s of the LuaJIT binding inside one nginx worker, next to
# ngx.shared.DICT lpush + rpop of the same 64-byte strings, in the same run.
# Usage: benchmarks/lua/run.sh [RECORDS]   (default 2000000; JITV=1 also prints
# what jit.v logged for the bench loops)
set -u
cd "$(dirname "$0")/../.."
REPO=$PWD
N=${1:-2000000}
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
q="n=$N"
[ "${JITV:-0}" = 1 ] && q="$q&jitv=1"
timeout 300 curl -s --max-time 290 "http://127.0.0.1:$port/bench?$q" || { echo "bench request failed"; exit 1; }
if [ "${JITV:-0}" = 1 ]; then
	echo "--- jit.v (inside the nginx worker)"
	cat "$tmp/logs/jitv.log"
fi
if grep -E '\[(error|crit|alert|emerg)\]' "$tmp/logs/error.log"; then
	exit 1
fi
