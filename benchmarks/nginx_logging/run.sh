#!/usr/bin/env bash
# nginx logging through ringmpsc: requests/s of nginx (2 workers) whose log phase makes
# one record per request, by mode:
#   blocking  the binding (logger.lua): reserve with timeout 0, fill a 64-byte binary
#             record in place, commit; an external Python consumer process (consumer.py)
#             loops on ch.recv_many(timeout=None)
#   poll      the same, the consumer loops on ch.recv_many(timeout=0), sleeping 5 ms when
#             it is empty
#   resty     resty.ringmpsc (resty_logger.lua): a text record built as an operator would
#             ("pid seq status time addr method uri"), get(name):send(record); the
#             blocking consumer
#   resty_inner  the same, drained inside nginx by resty.ringmpsc's consumer (consume(): a
#             timer in worker 0) whose handler checks the records as dict's timer does
#   resty_zc  resty.ringmpsc's zero-copy path: reserve(1), the binary record filled in
#             place, commit(1); the blocking consumer
#   dict      the same text record, ngx.shared.DICT:lpush onto a list in a lua_shared_dict;
#             a timer in worker 0 pops (rpop) and checks them, 256 at a time
#   build     the same text record built and thrown away: what building it costs
#   hook      log_by_lua calls a function that only counts the request: the hook's cost
#   none      the same nginx with no logging at all
# wrk against 127.0.0.1 only.
#
# Usage: benchmarks/nginx_logging/run.sh [--quick] [--duration S] [--connections N]
#            [--threads N] [--modes LIST] [--rounds N] [--coalesce R:D] [--json FILE]
#   --duration S     seconds of each measured wrk run (default 5; --quick 3)
#   --connections N  wrk connections (default 16); --threads N: wrk threads (default 1)
#   --modes LIST     any of blocking,poll,resty,resty_inner,resty_zc,dict,build,hook,none
#                    (default all)
#   --rounds N       rounds of every mode, the order rotating each round; medians, and the
#                    ratios are the medians of the rounds' ratios (default 2; --quick 1)
#   --coalesce R:D   the blocking consumer (blocking, resty, resty_zc) coalesces wake-ups
#                    with R records and D seconds (Channel.set_coalesce; default: the
#                    core's defaults), e.g. 64:0.0005
#   --json FILE      also write the rows as benchmark JSON lines (suite "nginx") to FILE
# `make bench-nginx-logging` installs what it needs and runs it (BENCH_ARGS=...); results and
# what they show: benchmarks/nginx_logging/README.md.
#
# Each run: the consumer first (it creates the channel), a fresh nginx under a temporary
# prefix, 1 s of wrk to warm up, then the measured wrk run; then nginx quits (its workers
# deregister and write their counts to logs/workers.txt; in dict, worker 0 drains the list
# and writes what it received), the channel is closed, and the consumer drains it and
# reports. Checked, or the run fails: the requests nginx served to / (stub_status, less
# this script's own requests) = the records its workers made + the records they dropped
# (a full ring or dict; reported) = what the consumer received (build: made), every
# record intact and in sequence per worker. Reported per mode: requests/s (wrk), the
# ratios to poll, to none and to dict, the consumer's wake-ups per request (the channel's
# consumer_wakes, where the core counts them), FUTEX_WAKE calls made by the workers per
# request (perf, where it can count syscalls), CPU per request of the workers and of the
# consumer, wrk's latency p50/p99; then what building the record costs next to the queue
# (build vs none, resty vs build), and, with any of resty, resty_zc, dict, build, the
# per-call costs measured inside one request of a fresh nginx (costs.lua: building the
# record, send, reserve/fill/commit, lpush, rpop).
set -u
cd "$(dirname "$0")/../.."
REPO=$PWD
QUICK=${QUICK:-0}
JSON_OUT=${BENCH_JSON:-}
DURATION= CONNS=16 THREADS=1 MODES=resty,resty_inner,resty_zc,dict,build,hook,blocking,poll,none ROUNDS= COALESCE=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--duration) DURATION=$2; shift ;;
	--connections) CONNS=$2; shift ;;
	--threads) THREADS=$2; shift ;;
	--modes) MODES=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--coalesce) COALESCE=$2; shift ;;
	--json) JSON_OUT=$2; shift ;;
	--json=*) JSON_OUT=${1#--json=} ;;
	-h|--help) sed -n '2,48p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$DURATION" ] || { [ "$QUICK" = 1 ] && DURATION=3 || DURATION=5; }
[ -n "$ROUNDS" ] || { [ "$QUICK" = 1 ] && ROUNDS=1 || ROUNDS=2; }
if [ -n "$JSON_OUT" ]; then
	case $JSON_OUT in /*) ;; *) JSON_OUT=$OLDPWD/$JSON_OUT ;; esac
fi
VPY=$REPO/build/venv/bin/python
for tool in nginx wrk curl; do
	command -v $tool > /dev/null || { echo "run.sh: $tool is missing (make bench-nginx-logging installs it)" >&2; exit 1; }
done
[ -x "$VPY" ] && "$VPY" -c 'import ringmpsc' 2> /dev/null ||
	{ echo "run.sh: $VPY cannot import ringmpsc (make build/venv/.ringmpsc-built)" >&2; exit 1; }
make --no-print-directory lib > /dev/null || exit 1
# perf counts the workers' futex calls where the kernel lets it (syscall tracepoints).
PERF=0
perf stat -e syscalls:sys_enter_futex -x, -o /dev/null true > /dev/null 2>&1 && PERF=1

tmp=$(mktemp -d /tmp/ringmpsc-nginxlog.XXXXXX)
chmod 755 "$tmp"
RESULTS=$tmp/results.tsv COSTS=$tmp/costs.txt
: > "$RESULTS"
: > "$COSTS"
NGINX_PREFIX= CONS_PID= CHANNEL= PERF_PID=
stop_nginx() {
	[ -n "$NGINX_PREFIX" ] && [ -s "$NGINX_PREFIX/logs/nginx.pid" ] || return 0
	local master
	master=$(cat "$NGINX_PREFIX/logs/nginx.pid")
	nginx -p "$NGINX_PREFIX/" -c conf/nginx.conf -e logs/error.log -s quit 2> /dev/null
	for _ in $(seq 100); do kill -0 "$master" 2> /dev/null || break; sleep 0.1; done
	kill -9 "$master" 2> /dev/null
	NGINX_PREFIX=
}
# The consumer and channel of a run that failed half-way (or of the last one, at exit).
stop_consumer() {
	if [ -n "$CONS_PID" ]; then
		kill "$CONS_PID" 2> /dev/null
		wait "$CONS_PID" 2> /dev/null
	fi
	[ -n "$CHANNEL" ] && "$VPY" -c "import ringmpsc; ringmpsc.unlink('$CHANNEL')" 2> /dev/null
	CONS_PID= CHANNEL=
}
cleanup() {
	[ -n "$PERF_PID" ] && kill "$PERF_PID" 2> /dev/null
	stop_nginx
	stop_consumer
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sum of utime + stime (clock ticks) of the given processes.
cpu_ticks() {
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
	done
	echo $t
}
# wrk's latency percentile line ("50%  1.23ms") in microseconds.
wrk_pct() {
	awk -v p="$1" '$1 == p { v = $2; u = 1
		if (v ~ /us$/) u = 1; else if (v ~ /ms$/) u = 1000; else if (v ~ /s$/) u = 1000000
		sub(/[a-z]+$/, "", v); printf "%.1f", v * u; exit }' "$2"
}
# Busy CPU ticks of the whole machine (/proc/stat: user nice system steal; not irq and
# softirq, where the loopback traffic of the run itself is counted).
busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $9; exit }' /proc/stat
}
# CPU ticks of this shell's waited-for children (wrk), from the `times` builtin.
child_ticks() {
	times | awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /m|s/); t += a[1] * 60 + a[2] }
		printf "%d", t * 100 + 0.5 }'
}
counts_field() { # counts_field FILE KEY
	awk -v k="$2" '$1 == k { print $2 }' "$1"
}

# start_nginx PREFIX LOG_INIT LOG_PHASE MODULE: nginx.conf filled in, nginx started on a
# free port (NGINX_PORT), NGINX_PREFIX set.
start_nginx() {
	local prefix=$1 log_init=$2 log_phase=$3 module=$4 port attempt
	for attempt in 1 2 3 4 5; do
		port=$((20000 + (RANDOM * 7 + $$ + attempt * 131) % 40000))
		(exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && continue
		REPO=$REPO PORT=$port LOG_INIT=$log_init LOG_PHASE=$log_phase MODULE=$module "$VPY" - benchmarks/nginx_logging/nginx.conf \
			> "$prefix/conf/nginx.conf" << 'EOF'
import os, sys
s = open(sys.argv[1]).read()
for k in ("REPO", "PORT", "LOG_INIT", "LOG_PHASE", "MODULE"):
    s = s.replace("@%s@" % k, os.environ[k])
sys.stdout.write(s)
EOF
		if timeout 20 nginx -p "$prefix/" -c conf/nginx.conf -e logs/error.log 2> "$prefix/start.err"; then
			NGINX_PREFIX=$prefix
			break
		fi
		grep -q "Address already in use" "$prefix/start.err" || { cat "$prefix/start.err"; return 1; }
		: > "$prefix/logs/error.log" # the failed bind is no error of the run
	done
	[ -n "$NGINX_PREFIX" ] || { echo "run.sh: no free port"; return 1; }
	NGINX_PORT=$port
}

# run_costs: the per-call costs behind the modes (costs.lua), measured in one request to
# a fresh nginx, into $COSTS ("name ns" lines).
run_costs() {
	local prefix="$tmp/costs"
	stop_nginx
	stop_consumer
	mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
	chmod 755 "$prefix"
	CHANNEL=ringmpsc-nginxlog-$$-costs # created by nginx; stop_consumer removes it
	start_nginx "$prefix" "lua_shared_dict nginxlog 32m;
    init_by_lua_block { require(\"costs\").init(\"$CHANNEL\") }" "" logger || return 1
	local url="http://127.0.0.1:$NGINX_PORT"
	for _ in $(seq 100); do curl -sf -o /dev/null "$url/status" && break; sleep 0.05; done
	if ! curl -sf --max-time 60 "$url/costs" > "$COSTS"; then
		echo "run.sh: costs: GET /costs failed:"
		grep -E '\[(error|crit|alert|emerg)\]' "$prefix/logs/error.log"
		: > "$COSTS"
		return 1
	fi
	stop_nginx
	stop_consumer
}

run_mode() { # run_mode MODE RUN_INDEX
	local mode=$1 idx=$2 prefix="$tmp/run$2-$1" port= log_init= log_phase= extra=0 module=logger
	local cmode= format=binary
	case $mode in
	blocking|poll) cmode=$mode ;;
	resty) cmode=blocking format=text module=resty_logger ;;
	resty_zc) cmode=blocking module=resty_logger ;;
	resty_inner|dict|build|hook) module=resty_logger ;;
	esac
	stop_nginx
	stop_consumer
	mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
	chmod 755 "$prefix"
	: > "$prefix/logs/workers.txt"
	: > "$prefix/logs/inner-consumer.txt"
	chmod 666 "$prefix/logs/workers.txt" "$prefix/logs/inner-consumer.txt" # the workers may run as nobody
	if [ -n "$cmode" ]; then
		CHANNEL=ringmpsc-nginxlog-$$-$idx
		"$VPY" benchmarks/nginx_logging/consumer.py serve "$CHANNEL" --mode "$cmode" --format "$format" \
			--ready "$prefix/ready" --out "$prefix/consumer.json" \
			${COALESCE:+$([ "$cmode" = blocking ] && echo "--coalesce $COALESCE")} 2> "$prefix/consumer.err" &
		CONS_PID=$!
		for _ in $(seq 100); do [ -s "$prefix/ready" ] && break; sleep 0.1; done
		[ -s "$prefix/ready" ] || { echo "run.sh: $mode: the consumer did not start:"; cat "$prefix/consumer.err"; return 1; }
	fi
	case $mode in
	blocking|poll)
		log_init="init_by_lua_block { require(\"logger\").init(\"$CHANNEL\") }" ;;
	resty_inner)
		CHANNEL=ringmpsc-nginxlog-$$-$idx # created by nginx; stop_consumer removes it
		log_init="init_by_lua_block { require(\"resty_logger\").init(\"$mode\", \"$CHANNEL\") }" ;;
	resty|resty_zc)
		log_init="init_by_lua_block { require(\"resty_logger\").init(\"$mode\", \"$CHANNEL\") }" ;;
	dict)
		log_init="lua_shared_dict nginxlog 32m;
    init_by_lua_block { require(\"resty_logger\").init(\"dict\", \"nginxlog\") }" ;;
	build|hook)
		log_init="init_by_lua_block { require(\"resty_logger\").init(\"$mode\") }" ;;
	esac
	if [ "$mode" != none ]; then
		log_init="$log_init
    init_worker_by_lua_block { require(\"$module\").init_worker() }
    exit_worker_by_lua_block { require(\"$module\").exit_worker() }"
		log_phase="log_by_lua_block { require(\"$module\").log() }"
	fi
	start_nginx "$prefix" "$log_init" "$log_phase" "$module" || return 1
	port=$NGINX_PORT
	local url="http://127.0.0.1:$port"
	for _ in $(seq 100); do curl -sf -o /dev/null "$url/status" && break; sleep 0.05; done
	extra=$((extra + 1))
	local master workers
	master=$(cat "$prefix/logs/nginx.pid")
	workers=$(pgrep -P "$master" | tr '\n' ' ')
	wrk -t"$THREADS" -c"$CONNS" -d1s "$url/" > /dev/null 2>&1 # warm-up (logged and counted like the rest)
	curl -sf "$url/counts" > "$prefix/counts0"; extra=$((extra + 1))
	local cpu0 cpu1 ccpu0=0 ccpu1=0 busy0 busy1 kids0 kids1 t0 t1
	cpu0=$(cpu_ticks $workers)
	[ -n "$CONS_PID" ] && ccpu0=$(cpu_ticks "$CONS_PID")
	busy0=$(busy_ticks) kids0=$(child_ticks) t0=$(date +%s.%N)
	PERF_PID=
	if [ "$PERF" = 1 ]; then
		# shellcheck disable=SC2086
		perf stat -x, -o "$prefix/perf.txt" -e syscalls:sys_enter_futex --filter 'op == 1' \
			-p "$(echo $workers | tr ' ' ,)" > /dev/null 2>&1 &
		PERF_PID=$!
		sleep 0.2
	fi
	wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url/" > "$prefix/wrk.txt" 2>&1
	if [ -n "$PERF_PID" ]; then
		kill -INT "$PERF_PID" 2> /dev/null
		wait "$PERF_PID" 2> /dev/null
		PERF_PID=
	fi
	cpu1=$(cpu_ticks $workers)
	[ -n "$CONS_PID" ] && ccpu1=$(cpu_ticks "$CONS_PID")
	busy1=$(busy_ticks) kids1=$(child_ticks) t1=$(date +%s.%N)
	# What other processes used meanwhile: the machine's busy time less the workers',
	# the consumer's and wrk's (and perf's and curl's, which are small), per CPU.
	local others
	others=$(awk -v b="$((busy1 - busy0))" -v o="$((cpu1 - cpu0 + ccpu1 - ccpu0 + kids1 - kids0))" \
		-v w="$t0 $t1" -v n="$(nproc)" 'BEGIN { split(w, t, " "); x = (b - o) / ((t[2] - t[1]) * 100 * n)
		printf "%.3f", x < 0 ? 0 : x }')
	curl -sf "$url/counts" > "$prefix/counts1"; extra=$((extra + 1))
	local stub
	stub=$(curl -sf "$url/status" | awk 'NR == 3 { print $3 }'); extra=$((extra + 1))
	stop_nginx
	local logged=0 drops=0 received=0 bad=0 ccpu=nan coalesce=- first_bad=
	if [ "$mode" != none ]; then
		read -r logged drops < <(awk '{ r += $2; d += $3 } END { print r + 0, d + 0 }' "$prefix/logs/workers.txt")
	fi
	if [ "$mode" = dict ] || [ "$mode" = resty_inner ]; then
		[ -s "$prefix/logs/inner-consumer.txt" ] || { echo "run.sh: $mode: no consumer counts"; return 1; }
		read -r received bad first_bad < "$prefix/logs/inner-consumer.txt"
		stop_consumer # resty_inner: removes the channel
	elif [ "$mode" = build ] || [ "$mode" = hook ]; then
		received=$logged # nothing sent: nothing to receive
	elif [ "$mode" != none ]; then
		"$VPY" benchmarks/nginx_logging/consumer.py close "$CHANNEL"
		for _ in $(seq 100); do kill -0 "$CONS_PID" 2> /dev/null || break; sleep 0.1; done
		wait "$CONS_PID" 2> /dev/null
		CONS_PID= CHANNEL=
		[ -s "$prefix/consumer.json" ] || { echo "run.sh: $mode: no consumer summary:"; cat "$prefix/consumer.err"; return 1; }
		read -r received bad ccpu coalesce first_bad < <("$VPY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
co = "%d:%g" % tuple(d["coalesce"]) if d.get("coalesce") else "-"
print(d["records"], d["bad"], d["cpu_s"], co, d["first_bad"] or "")' "$prefix/consumer.json")
	fi
	local rps reqs p50 p99 served wakes0 wakes1 futex=nan
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$prefix/wrk.txt")
	reqs=$(awk '/requests in/ { print $1 }' "$prefix/wrk.txt")
	p50=$(wrk_pct 50% "$prefix/wrk.txt")
	p99=$(wrk_pct 99% "$prefix/wrk.txt")
	served=$((stub - extra))
	wakes0=$(counts_field "$prefix/counts0" consumer_wakes)
	wakes1=$(counts_field "$prefix/counts1" consumer_wakes)
	[ -s "$prefix/perf.txt" ] && futex=$(awk -F, '/sys_enter_futex/ { print $1 }' "$prefix/perf.txt")
	[ -n "$rps" ] && [ -n "$reqs" ] || { echo "run.sh: $mode: wrk failed:"; cat "$prefix/wrk.txt"; return 1; }
	local ok=1
	if [ "$mode" != none ]; then
		if [ "$((logged + drops))" != "$served" ] || [ "$received" != "$logged" ] || [ "$bad" != 0 ]; then
			ok=0
			echo "run.sh: $mode: CHECK FAILED: nginx served $served requests to /, its workers logged $logged" \
				"and dropped $drops, the consumer received $received ($bad bad${first_bad:+; first: $first_bad})"
		fi
	fi
	if grep -E '\[(error|crit|alert|emerg)\]' "$prefix/logs/error.log"; then
		ok=0
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$rps" "$reqs" \
		"$served" "$logged" "$drops" "$received" "$bad" "$((cpu1 - cpu0))" "$ccpu" "${wakes0:-nan}" \
		"${wakes1:-nan}" "${futex:-nan}" "$p50" "$p99" "$ok" "$DURATION" "$ROUND" "$others" "$coalesce" >> "$RESULTS"
	printf '  %-9s %9.0f req/s (%s requests; served %s, logged %s, dropped %s, received %s; others used %.0f%% of the CPUs)\n' \
		"$mode" "$rps" "$reqs" "$served" "$logged" "$drops" "$received" "$(awk -v x="$others" 'BEGIN { print x * 100 }')"
}

echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 2 workers, a record per request from the log phase ($MODES);" \
	"wrk -t$THREADS -c$CONNS -d${DURATION}s; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
[ "$PERF" = 1 ] || echo "(perf cannot count syscalls here: no FUTEX_WAKE counts)"
IFS=, read -r -a mode_list <<< "$MODES"
for mode in "${mode_list[@]}"; do
	case $mode in blocking|poll|resty|resty_inner|resty_zc|dict|build|hook|none) ;; *) echo "run.sh: unknown mode $mode" >&2; exit 2 ;; esac
done
status=0
run=0
for ((round = 0; round < ROUNDS; round++)); do
	n=${#mode_list[@]}
	for ((j = 0; j < n; j++)); do
		mode=${mode_list[$(((j + round) % n))]}
		ROUND=$round
		run=$((run + 1))
		run_mode "$mode" "$run" || status=1
	done
done
case ,$MODES, in *,resty,*|*,resty_zc,*|*,dict,*|*,build,*|*,hook,*) run_costs || status=1 ;; esac
"$VPY" - "$RESULTS" "${JSON_OUT:-}" "$CONNS" "$THREADS" "$COSTS" << 'EOF' || status=1
import json, math, statistics, sys
path, json_out, conns, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
costs = {k: float(v) for k, v in (line.split() for line in open(sys.argv[5]) if line.strip()) if k != "sink"}
cols = ["mode", "rps", "requests", "served", "logged", "drops", "received", "bad", "worker_ticks", "consumer_cpu_s",
        "wakes0", "wakes1", "futex", "p50_us", "p99_us", "ok", "duration", "round", "others", "coalesce"]
runs = {}
for line in open(path):
    v = dict(zip(cols, line.rstrip("\n").split("\t")))
    runs.setdefault(v["mode"], []).append(v)
def f(x):
    try:
        return float(x)
    except ValueError:
        return math.nan
def med(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan
tick = 100.0  # USER_HZ
summary = {}
for mode, rs in runs.items():
    reqs = [f(r["served"]) for r in rs]
    s = {
        "rps": med([f(r["rps"]) for r in rs]),
        "requests": int(sum(f(r["requests"]) for r in rs)),
        "served": int(sum(reqs)),
        "received": int(sum(f(r["received"]) for r in rs)),
        "logged": int(sum(f(r["logged"]) for r in rs)),
        "drops": int(sum(f(r["drops"]) for r in rs)),
        "wakes": med([(f(r["wakes1"]) - f(r["wakes0"])) / f(r["requests"]) for r in rs]),
        "futex": med([f(r["futex"]) / f(r["requests"]) for r in rs]),
        "worker_cpu_us": med([f(r["worker_ticks"]) / tick * 1e6 / f(r["requests"]) for r in rs]),
        "consumer_cpu_us": med([f(r["consumer_cpu_s"]) * 1e6 / f(r["served"]) for r in rs]),
        "p50": med([f(r["p50_us"]) for r in rs]),
        "p99": med([f(r["p99_us"]) for r in rs]),
        "runs_rps": [f(r["rps"]) for r in rs],
        "ok": all(r["ok"] == "1" for r in rs),
        "n": len(rs),
        "duration": f(rs[0]["duration"]),
        "others": med([f(r["others"]) for r in rs]),
        "by_round": {r["round"]: f(r["rps"]) for r in rs},
        "coalesce": rs[0]["coalesce"],
    }
    summary[mode] = s
def ratio(a, b):
    """a's req/s / b's: the median of the rounds' ratios (each round runs every mode)."""
    if a not in summary or b not in summary:
        return math.nan
    ra, rb = summary[a]["by_round"], summary[b]["by_round"]
    return med([ra[k] / rb[k] for k in ra if k in rb and rb[k] > 0])
def fmt(x, spec):
    return "–" if math.isnan(x) else spec % x
MODES = ("resty", "resty_inner", "resty_zc", "dict", "build", "hook", "blocking", "poll", "none")
PATHS = {
    "blocking": "log_by_lua binding reserve/commit -> Python recv_many(timeout=None)",
    "poll": "log_by_lua binding reserve/commit -> Python recv_many(timeout=0) + sleep 5 ms",
    "resty": "log_by_lua text record, resty.ringmpsc send -> Python recv_many(timeout=None)",
    "resty_inner": "log_by_lua text record, resty.ringmpsc send -> its consume() timer in worker 0",
    "resty_zc": "log_by_lua resty.ringmpsc reserve/fill/commit -> Python recv_many(timeout=None)",
    "dict": "log_by_lua text record, ngx.shared.DICT lpush -> rpop in a timer of worker 0",
    "build": "log_by_lua text record built, no queue",
    "hook": "log_by_lua counting the request only, no record",
    "none": "no logging",
}
IMPL = {"dict": "ngx.shared.DICT", "build": "build_only", "hook": "log_hook_only", "none": "no_logging"}
WAIT = {"blocking": "blocking", "poll": "poll", "resty": "blocking", "resty_zc": "blocking", "dict": "timer",
        "resty_inner": "timer",
        "build": None, "hook": None, "none": "none"}
CONSUMER = ("blocking", "poll", "resty", "resty_zc")  # an external consumer process
RECORD = {"resty": "text", "resty_inner": "text", "dict": "text", "build": "text", "resty_zc": "binary", "blocking": "binary",
          "poll": "binary"}
print()
print("%-9s %10s %8s %8s %8s %14s %14s %11s %10s %8s %8s" % ("mode", "req/s", "÷ poll", "÷ none", "÷ dict",
      "wakes/request", "FUTEX_WAKE/req", "worker CPU", "cons. CPU", "p50", "p99"))
print("%-9s %10s %8s %8s %8s %14s %14s %11s %10s %8s %8s" % ("", "", "", "", "", "(consumer_wakes)", "(perf)",
      "µs/request", "µs/request", "µs", "µs"))
rows = []
nan = lambda x: None if isinstance(x, float) and math.isnan(x) else x
for mode in MODES:
    if mode not in summary:
        continue
    s = summary[mode]
    vp, vn, vd = ratio(mode, "poll"), ratio(mode, "none"), ratio(mode, "dict")
    print("%-9s %10.0f %8s %8s %8s %14s %14s %11s %10s %8s %8s%s" % (
        mode, s["rps"], fmt(vp, "%.3f×"), fmt(vn, "%.3f×"), fmt(vd, "%.3f×"), fmt(s["wakes"], "%.4f"),
        fmt(s["futex"], "%.4f"), fmt(s["worker_cpu_us"], "%.1f"), fmt(s["consumer_cpu_us"], "%.1f"),
        fmt(s["p50"], "%.0f"), fmt(s["p99"], "%.0f"), ("" if s["ok"] else "  CHECK FAILED") +
        ("  NOISY (others %.0f%%)" % (s["others"] * 100) if s["others"] >= 0.10 else "")))
    co = s["coalesce"].split(":") if WAIT[mode] == "blocking" and ":" in s["coalesce"] else None
    path_ = PATHS[mode] + (", coalescing (%s, %g µs)" % (co[0], float(co[1]) * 1e6) if co else "")
    logs = mode != "none"
    rows.append({
        "suite": "nginx", "impl": IMPL.get(mode, "ringmpsc"), "path": path_, "scenario": "nginx-logging",
        "mode": mode, "consumer_wait": WAIT[mode], "record_size": 64, "batch": 1, "producers": 2,
        "consumers": 1 if mode in CONSUMER or WAIT[mode] == "timer" else 0, "processes": True,
        "reads_data": mode in CONSUMER or WAIT[mode] == "timer",
        "record": RECORD.get(mode),
        "records_per_s": nan(s["rps"]), "bytes_per_s": nan(s["rps"] * 64) if RECORD.get(mode) else None,
        "requests_per_s": nan(s["rps"]), "runs_requests_per_s": s["runs_rps"], "runs": s["n"],
        "p50_ns": nan(s["p50"] * 1e3), "p99_ns": nan(s["p99"] * 1e3), "requests": s["requests"],
        "served": s["served"], "logged": s["logged"], "dropped": s["drops"], "received": s["received"],
        "vs_poll": nan(vp), "vs_none": nan(vn), "vs_dict": nan(vd), "vs_build": nan(ratio(mode, "build")),
        "consumer_wakes_per_request": nan(s["wakes"]),
        "futex_wake_calls_per_request": nan(s["futex"]), "worker_cpu_us_per_request": nan(s["worker_cpu_us"]),
        "consumer_cpu_us_per_request": nan(s["consumer_cpu_us"]) if mode in CONSUMER else None,
        "coalesce_min_records": int(co[0]) if co else None,
        "coalesce_max_delay_ns": round(float(co[1]) * 1e9) if co else None,
        "wrk": "-t%d -c%d -d%gs" % (threads, conns, s["duration"]), "workers": 2, "other_cpu_load": nan(s["others"]),
        "costs_ns_per_call": costs or None, "ok": s["ok"]})
co_modes = [m for m in CONSUMER if m in summary and WAIT[m] == "blocking" and ":" in summary[m]["coalesce"]]
if co_modes:
    r_, d_ = summary[co_modes[0]]["coalesce"].split(":")
    print("the blocking consumer's coalescing: %s records, %g µs" % (r_, float(d_) * 1e6))
print()
print("÷ poll / ÷ none / ÷ dict: req/s ÷ the polling consumer's / nginx without logging / the shared dict's (the")
print("median of the rounds' ratios); wakes/request: the channel's consumer_wakes ÷ wrk's requests (– where the")
print("core does not count them); FUTEX_WAKE/req: the workers' futex(FUTEX_WAKE) calls ÷ requests (perf; –")
print("without it); worker CPU: both workers' utime + stime (dict, resty_inner: worker 0's consumer timer in")
print("it); cons. CPU: the consumer process; p50/p99: wrk's request latency")
if "none" in summary and any(m in summary for m in ("hook", "build")):
    cpu = {m: summary[m]["worker_cpu_us"] for m in MODES if m in summary}
    print()
    print("The record next to the queue, in req/s ÷ nginx without logging: %s; and in worker CPU per request:"
          % ", ".join("%s %s" % (m, fmt(ratio(m, "none"), "%.3f×")) for m in ("hook", "build", "resty", "resty_inner", "dict")
                      if m in summary))
    steps, prev = [], "none"
    for m, what in (("hook", "the log_by_lua hook"), ("build", "the record"), ("resty", "the queue"),
                    ("resty_inner", "the queue and its consumer timer"), ("dict", "the queue and its consumer timer")):
        if m in cpu:
            steps.append("%s %s µs over %s (%s)" % (m, fmt(cpu[m] - cpu[prev], "%+.2f"), prev, what))
            if m in ("hook", "build"):
                prev = m
    print("  " + "; ".join(steps) + ".")
if costs:
    print()
    print("Per call, inside one request of one worker (costs.lua; the least of 30 rounds of 2048 calls):")
    print("  building the text record %.0f ns; resty.ringmpsc send of it %.0f ns; reserve/fill/commit of the binary"
          % (costs["record"], costs["send"]))
    print("  record %.0f ns (ngx.var.uri, ngx.status, ngx.now included); ngx.shared.DICT lpush %.0f ns, rpop %.0f ns"
          % (costs["zc"], costs["lpush"], costs["rpop"]))
if json_out:
    with open(json_out, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
sys.exit(0 if all(r["ok"] for r in rows) else 1)
EOF
exit $status
