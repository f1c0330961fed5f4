#!/usr/bin/env bash
# The Lua suite (luacheck runs in the lint suite, tests/lint.sh): busted specs under LuaJIT
# (tests/lua/*_spec.lua), the real nginx test of the binding (tests/lua/nginx_test.sh),
# installing (tests/lua/install_test.sh) and resty.ringmpsc in a real nginx under load
# (tests/lua/resty_test.py), each under a time limit.
# Appends "lua <passed> <failed> <skipped>" to build/results.txt (or $RESULTS_FILE);
# exits non-zero on any failure. Logs: build/lua-tests/.
set -u
cd "$(dirname "$0")/../.."
REPO=$PWD
MAKE=${MAKE:-make}
PYTHON=${PYTHON:-python3}
mkdir -p build
log_dir=build/lua-tests
mkdir -p "$log_dir"
pass=0 fail=0 skip=0

finish() {
	echo "lua $pass $fail $skip" >> "${RESULTS_FILE:-build/results.txt}"
	echo "[lua] $pass passed, $fail failed, $skip skipped"
	[ "$fail" -eq 0 ]
	exit $?
}

if ! scripts/ensure-deps.sh lua; then
	echo "FAIL [lua] dependencies missing (luajit2, lua-busted, lua-check, nginx, libnginx-mod-http-lua)"
	fail=1
	finish
fi
if ! $MAKE --no-print-directory lib > "$log_dir/make.log" 2>&1; then
	echo "FAIL [lua] make lib"
	tail -n 20 "$log_dir/make.log"
	fail=1
	finish
fi

# Python <-> Lua interop needs the Python package: installed into build/venv the
# one way it is built (python/build.sh: pip), then used through that interpreter.
if scripts/ensure-deps.sh python > "$log_dir/python-build.log" 2>&1 &&
	python/build.sh >> "$log_dir/python-build.log" 2>&1; then
	export PYTHON="$REPO/build/venv/bin/python"
else
	echo "[lua] could not build the Python package for the interop specs (they will be skipped):"
	tail -n 5 "$log_dir/python-build.log"
fi

count_tap() { # file: adds its TAP results to pass/fail/skip; sets tap_failed
	local p s
	p=$(grep -cE '^ok ' "$1")
	s=$(grep -cE '^ok .*# SKIP' "$1")
	tap_failed=$(grep -cE '^not ok ' "$1")
	pass=$((pass + p - s))
	skip=$((skip + s))
	fail=$((fail + tap_failed))
}

# --- busted specs ----------------------------------------------------------------
echo "--- busted (tests/lua/*_spec.lua)"
RINGMPSC_REPO=$REPO LUA_PATH="$REPO/lua/?.lua;$REPO/tests/lua/?.lua;;" \
	timeout -k 5 "${BUSTED_TIMEOUT:-150}" busted --lua=luajit -o TAP --verbose tests/lua > "$log_dir/busted.tap" 2>&1
rc=$?
# --verbose: TAP announces each test as it starts ("# file @ line: name"), so a hang
# names its test; the summary shows failures and skips only.
started='^# .* @ [0-9]+: '
grep -E '^(not ok|# |ok .*# SKIP)' "$log_dir/busted.tap" | grep -Ev "$started" | head -n 80
count_tap "$log_dir/busted.tap"
if [ $rc -ne 0 ] && [ "$tap_failed" -eq 0 ]; then
	# a crash, a syntax error in a spec or a timeout: no TAP line says so
	case $rc in
	124 | 137) echo "FAIL [lua] busted timed out after ${BUSTED_TIMEOUT:-150}s (hang) in the test started last:"
		grep -E "$started" "$log_dir/busted.tap" | tail -n 1 ;;
	*) echo "FAIL [lua] busted exited $rc" ;;
	esac
	grep -Ev "$started" "$log_dir/busted.tap" | tail -n 20
	fail=$((fail + 1))
fi
echo "busted: $(grep -cE '^ok ' "$log_dir/busted.tap") ok, $(grep -cE '^not ok ' "$log_dir/busted.tap") not ok"

# --- nginx --------------------------------------------------------------------------
echo "--- nginx (tests/lua/nginx_test.sh)"
timeout -k 10 "${NGINX_TIMEOUT:-150}" tests/lua/nginx_test.sh 2>&1 | tee "$log_dir/nginx.tap"
rc=${PIPESTATUS[0]}
count_tap "$log_dir/nginx.tap"
if [ $rc -ne 0 ] && [ "$tap_failed" -eq 0 ]; then
	case $rc in
	124 | 137) echo "FAIL [lua] nginx test timed out after ${NGINX_TIMEOUT:-150}s (hang)" ;;
	*) echo "FAIL [lua] nginx test exited $rc" ;;
	esac
	fail=$((fail + 1))
fi

# --- installing: make install, luarocks ----------------------------------------------
echo "--- install (tests/lua/install_test.sh)"
timeout -k 5 "${INSTALL_TIMEOUT:-120}" tests/lua/install_test.sh 2>&1 | tee "$log_dir/install.tap"
rc=${PIPESTATUS[0]}
count_tap "$log_dir/install.tap"
if [ $rc -ne 0 ] && [ "$tap_failed" -eq 0 ]; then
	echo "FAIL [lua] install test exited $rc"
	fail=$((fail + 1))
fi

# --- resty.ringmpsc in nginx (needs the Python package: the consumer outside nginx) ---
echo "--- resty.ringmpsc in nginx (tests/lua/resty_test.py)"
if [ "${PYTHON:-}" = "$REPO/build/venv/bin/python" ]; then
	timeout -k 10 "${RESTY_TIMEOUT:-240}" "$PYTHON" tests/lua/resty_test.py 2>&1 | tee "$log_dir/resty.tap"
	rc=${PIPESTATUS[0]}
	count_tap "$log_dir/resty.tap"
	if [ $rc -ne 0 ] && [ "$tap_failed" -eq 0 ]; then
		case $rc in
		124 | 137) echo "FAIL [lua] resty test timed out after ${RESTY_TIMEOUT:-240}s (hang)" ;;
		*) echo "FAIL [lua] resty test exited $rc" ;;
		esac
		fail=$((fail + 1))
	fi
else
	echo "FAIL [lua] resty test: the Python package could not be built (see $log_dir/python-build.log)"
	fail=$((fail + 1))
fi

finish
