#!/usr/bin/env bash
# The lint suite, the one home of every style check: clang-format (csrc/, tests/c/,
# the C example; .clang-format), luacheck (lua/, tests/lua; .luacheckrc) and ruff
# (every Python file; pyproject.toml). Checks only, never rewrites: `make format`
# applies clang-format and ruff's fixes. One line per check; appends
# "lint <passed> <failed> <skipped>" to build/results.txt (or $RESULTS_FILE).
set -u
cd "$(dirname "$0")/.."
mkdir -p build/lint
pass=0 fail=0 skip=0
lint() { # name command...
	local name=$1
	shift
	if timeout 120 "$@" > "build/lint/$name.log" 2>&1; then
		echo "PASS [lint] $name"
		pass=$((pass + 1))
	else
		echo "FAIL [lint] $name:"
		head -n 40 "build/lint/$name.log"
		fail=$((fail + 1))
	fi
}
missing() { echo "FAIL [lint] $1: not installed (make deps installs it)"; fail=$((fail + 1)); }

C_FILES=$(ls csrc/*.c csrc/*.h csrc/include/*.h csrc/examples/*.c tests/c/*.c tests/c/*.h)
if command -v clang-format > /dev/null; then
	# shellcheck disable=SC2086
	lint clang-format clang-format --dry-run -Werror $C_FILES
else
	missing clang-format
fi
if command -v luacheck > /dev/null; then
	lint luacheck luacheck --no-color --formatter plain lua tests/lua
else
	missing luacheck
fi
RUFF=build/venv/bin/ruff
if [ -x "$RUFF" ]; then
	lint ruff "$RUFF" check --no-cache .
else
	missing ruff
fi

echo "lint $pass $fail $skip" >> "${RESULTS_FILE:-build/results.txt}"
echo "[lint] $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
