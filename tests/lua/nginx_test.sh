#!/usr/bin/env bash
# A real nginx (Debian's nginx + libnginx-mod-http-lua + luajit2) running the demo
# in lua/examples/openresty: 4 workers produce into one named channel, a separate
# LuaJIT process (lua/examples/openresty/consumer.lua) consumes and checks every
# record. Proves exactly-once, per-process FIFO delivery
#   - with several workers producing (timer: reserve/commit; requests: p:send),
#   - across `nginx -s reload` while the old workers are still producing,
#   - after a worker is killed with SIGKILL: its committed records arrive, its ring
#     is reclaimed, the respawned worker gets a ring.
# nginx listens on 127.0.0.1 only, under a temporary prefix, and is always stopped
# (trap EXIT). Prints one TAP line per check ("ok - ..." / "not ok - ...").
# Usage: tests/lua/nginx_test.sh   (KEEP_TMP=1 keeps the prefix for inspection)
set -u
cd "$(dirname "$0")/../.."
REPO=$PWD
TEMPLATE=lua/examples/openresty/nginx.conf
NAME="ringmpsc-nginx-test-$$"
LUAJIT=${LUAJIT:-luajit}

tmp=$(mktemp -d /tmp/ringmpsc-nginx.XXXXXX)
chmod 755 "$tmp"
mkdir -p "$tmp/conf" "$tmp/logs" "$tmp/tmp"
master=""
consumer=""
failed=0

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; failed=$((failed + 1)); }
check() { # description command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
workers() { # pids of the master's children, one per line, sorted
	ps -o pid= --ppid "$master" 2>/dev/null | tr -d ' ' | sort -n
}
ngx() { nginx -p "$tmp/" -c conf/nginx.conf -e logs/error.log "$@" 2>> "$tmp/signal.err"; }
wait_for() { # seconds command... : poll every 0.1 s
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}
# Every wait below is on state the test can see (workers, /stats, /counts, pids),
# never a bare sleep; a wait that runs out is a "not ok" naming what it waited for.

cleanup() {
	local rc=$?
	[ -z "$master" ] && [ -s "$tmp/logs/nginx.pid" ] && master=$(cat "$tmp/logs/nginx.pid")
	if alive "$master"; then
		local left
		left=$(workers)
		ngx -s stop 2>/dev/null
		wait_for 5 bash -c "! kill -0 $master 2>/dev/null" || {
			kill -9 "$master" 2>/dev/null
			for w in $left $(workers); do kill -9 "$w" 2>/dev/null; done
		}
	fi
	if alive "$consumer"; then kill "$consumer" 2>/dev/null; fi
	rm -f "/dev/shm/$NAME"
	if [ "$failed" -ne 0 ] || [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "# nginx prefix kept: $tmp"
		[ -f "$tmp/logs/error.log" ] && grep -E '\[(error|crit|alert|emerg)\]' "$tmp/logs/error.log" | tail -n 20 | sed 's/^/# /'
	else
		rm -rf "$tmp"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- start nginx on a free 127.0.0.1 port -----------------------------------
started=0
for attempt in 1 2 3 4 5; do
	port=$((20000 + (RANDOM * 7 + $$ + attempt * 131) % 40000))
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue # in use
	sed -e "s|@REPO@|$REPO|g" -e "s|@PORT@|$port|g" -e "s|@CHANNEL@|$NAME|g" "$TEMPLATE" > "$tmp/conf/nginx.conf"
	if timeout 20 nginx -p "$tmp/" -c conf/nginx.conf -e logs/error.log 2> "$tmp/start.err"; then
		started=1
		break
	fi
	grep -q "Address already in use" "$tmp/start.err" || break
done
if [ $started -ne 1 ]; then
	notok "nginx starts"
	sed 's/^/# /' "$tmp/start.err"
	exit 1
fi
wait_for 5 test -s "$tmp/logs/nginx.pid" && master=$(cat "$tmp/logs/nginx.pid")
url="http://127.0.0.1:$port"
get() { curl -s --max-time 5 "$url$1"; }
n_workers() { [ "$(workers | wc -l)" -eq "$1" ]; }
check "nginx starts with 4 workers on 127.0.0.1:$port (channel $NAME created in init_by_lua)" \
	wait_for 10 n_workers 4
check "the named channel exists" test -e "/dev/shm/$NAME"

# --- the consumer: a separate LuaJIT process --------------------------------
timeout 150 "$LUAJIT" lua/examples/openresty/consumer.lua "$NAME" "$tmp/summary.txt" 120 10 \
	> "$tmp/consumer.log" 2>&1 &
consumer=$!

produce_requests() { # count n: requests of n records each; prints failures
	local bad=0
	for _ in $(seq "$1"); do
		local out
		out=$(get "/produce?n=$2")
		case $out in
		"sent $2 "*) ;;
		*"no slot"*) ;; # during a reload the new workers may wait for a slot
		*) bad=$((bad + 1)); echo "# /produce: ${out:-no answer}" ;;
		esac
	done
	return $bad
}

all_producing() { # every current worker holds an active ring, and the consumer has claimed its role
	local st
	st=$(get /stats)
	for w in $(workers); do grep -qE "^slot [0-9]+ active pid $w " <<< "$st" || return 1; done
	! grep -q " consumer_pid 0 " <<< "$st"
}
check "every worker registered a ring and the consumer claimed its role" wait_for 15 all_producing
gen1=$(workers)
check "requests produce through p:send in the workers" produce_requests 20 50

# --- reload while the old workers are producing ------------------------------
ngx -s reload
old_and_new() { # every gen1 worker still there, plus 4 new ones
	local now
	now=$(workers)
	for w in $gen1; do grep -qx "$w" <<< "$now" || return 1; done
	[ "$(comm -13 <(echo "$gen1") <(echo "$now") | wc -l)" -ge 4 ]
}
check "after nginx -s reload the old workers still run next to 4 new ones" wait_for 5 old_and_new
produce_requests 10 50 > /dev/null
gone() { for w in $gen1; do alive "$w" && return 1; done; return 0; }
check "the old workers finish within 15 s" wait_for 15 gone
gen2=$(comm -13 <(echo "$gen1") <(workers))

# --- SIGKILL one worker -------------------------------------------------------
check "every second-generation worker registered a ring" wait_for 10 all_producing
killed=$(head -n 1 <<< "$gen2")
get /stats > "$tmp/stats_before_kill.txt"
kill -9 "$killed"
respawned_one() { [ "$(comm -13 <(echo "$gen2") <(workers) | wc -l)" -eq 1 ] && n_workers 4; }
check "a worker killed with SIGKILL ($killed) is respawned" wait_for 10 respawned_one
respawned=$(comm -13 <(echo "$gen2") <(workers))
killed_ring_reclaimed() { # no ring is still active for the dead pid
	get /stats > "$tmp/stats_after_kill.txt"
	! grep -qE "^slot [0-9]+ active pid $killed " "$tmp/stats_after_kill.txt"
}
check "the killed worker's ring is reclaimed (not active any more)" wait_for 10 killed_ring_reclaimed
respawn_has_ring() { get /stats | grep -qE "^slot [0-9]+ active pid $respawned "; }
check "the respawned worker ($respawned) registered a ring" wait_for 10 respawn_has_ring
produce_requests 10 50 > /dev/null
respawn_counted() { get /counts | grep -qE "^$respawned [1-9]"; }
check "the respawned worker's records are counted in /counts" wait_for 10 respawn_counted

# --- stop, drain, close ----------------------------------------------------------
get /stop > /dev/null
# Stopped when /counts stays the same over 3 polls (0.3 s, 150 timer intervals).
last_counts="" same_polls=0
counts_settled() {
	local now
	now=$(get /counts | sort)
	if [ -n "$now" ] && [ "$now" = "$last_counts" ]; then
		same_polls=$((same_polls + 1))
	else
		same_polls=0 last_counts=$now
	fi
	[ $same_polls -ge 3 ]
}
check "every producer loop stops after /stop (/counts settles)" wait_for 10 counts_settled
get /counts > "$tmp/counts.txt"
get /stats > "$tmp/stats_end.txt"
ngx -s quit
check "nginx quits gracefully" wait_for 20 bash -c "! kill -0 $master 2>/dev/null"
"$LUAJIT" -e "package.path='$REPO/lua/?.lua;'..package.path
	local ch = assert(require('ringmpsc').open('$NAME')); ch:close()"
check "the consumer drains the closed channel and exits" wait_for 30 bash -c "! kill -0 $consumer 2>/dev/null"
wait "$consumer" 2>/dev/null
consumer=""

if [ ! -s "$tmp/summary.txt" ]; then
	notok "the consumer wrote its summary"
	sed 's/^/# /' "$tmp/consumer.log"
	exit 1
fi
"$LUAJIT" tests/lua/nginx_verify.lua "$tmp/summary.txt" "$tmp/counts.txt" "$killed" "$respawned" 64 \
	"$(echo $gen1)" "$(echo $gen2)"
verify_rc=$?
[ $verify_rc -ne 0 ] && failed=$((failed + 1))
# (the SIGKILL above is logged as an alert: "exited on signal 9")
if grep -E '\[(crit|alert|emerg)\]' "$tmp/logs/error.log" | grep -qv "exited on signal 9"; then
	notok "nginx error log has no crashes or critical errors"
else
	ok "nginx error log has no crashes or critical errors"
fi
[ "$failed" -eq 0 ]
