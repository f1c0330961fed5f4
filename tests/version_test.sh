#!/usr/bin/env bash
# VERSION is the source of truth: the C header's RMPSC_VERSION_* macros (as
# installed), ringmpsc.pc (as installed), pyproject.toml's version (as setuptools
# reads it), ringmpsc.__version__ and the Lua module's _VERSION must all say the
# same; make uninstall must remove everything make install wrote; the shared
# library's SONAME and exported symbols match VERSION, ringmpsc.h and ringmpsc.map.
# One TAP line per check; appends "version <passed> <failed> <skipped>" to
# build/results.txt (or $RESULTS_FILE); exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
# The venv's interpreter when there is one: its setuptools (>= 77, scripts/ensure-deps.sh)
# reads pyproject.toml's SPDX license, which the system's older one refuses.
if [ -z "${PYTHON:-}" ] && [ -x build/venv/bin/python ]; then
	PYTHON=build/venv/bin/python
fi
PYTHON=${PYTHON:-python3}
CC=${CC:-cc}
mkdir -p build
pass=0 fail=0 skip=0
want=$(tr -d ' \t\n' < VERSION)
tmp=$(mktemp -d /tmp/ringmpsc-version.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

same() { # what got
	if [ "$2" = "$want" ]; then
		echo "ok - $1: $2"
		pass=$((pass + 1))
	else
		echo "not ok - $1 says '$2', VERSION says '$want'"
		fail=$((fail + 1))
	fi
}
skipped() { echo "ok - $1 # SKIP $2"; skip=$((skip + 1)); }

if out=$(scripts/version.sh --check 2>&1); then
	echo "ok - scripts/version.sh --check: every generated place is up to date"
	pass=$((pass + 1))
else
	echo "not ok - scripts/version.sh --check (run make version):"
	sed 's/^/# /' <<< "$out"
	fail=$((fail + 1))
fi

# Installed into a scratch DESTDIR, as a user would get it.
dest=$tmp/dest
if $MAKE --no-print-directory -s install DESTDIR="$dest" PREFIX=/usr > "$tmp/install.log" 2>&1; then
	cat > "$tmp/v.c" <<'C'
#include <stdio.h>
#include <ringmpsc.h>
int main(void)
{
	printf("%d.%d.%d %s\n", RMPSC_VERSION_MAJOR, RMPSC_VERSION_MINOR, RMPSC_VERSION_PATCH,
	       RMPSC_VERSION_STRING);
	return 0;
}
C
	if $CC -I"$dest/usr/include" -o "$tmp/v" "$tmp/v.c" 2> "$tmp/cc.log"; then
		read -r numbers string < <("$tmp/v")
		same "installed ringmpsc.h RMPSC_VERSION_MAJOR.MINOR.PATCH" "$numbers"
		same "installed ringmpsc.h RMPSC_VERSION_STRING" "$string"
	else
		echo "not ok - a program including the installed ringmpsc.h compiles"
		sed 's/^/# /' "$tmp/cc.log"
		fail=$((fail + 1))
	fi
	same "installed ringmpsc.pc Version" "$(sed -n 's/^Version: *//p' "$dest/usr/lib/pkgconfig/ringmpsc.pc")"
	$MAKE --no-print-directory -s uninstall DESTDIR="$dest" PREFIX=/usr > "$tmp/uninstall.log" 2>&1
	left=$(find "$dest" -type f -o -type l)
	if [ -z "$left" ]; then
		echo "ok - make uninstall removes every file make install wrote"
		pass=$((pass + 1))
	else
		echo "not ok - make uninstall left files behind:"
		sed 's/^/#   /' <<< "$left"
		fail=$((fail + 1))
	fi
else
	echo "not ok - make install DESTDIR=... PREFIX=/usr"
	tail -n 20 "$tmp/install.log" | sed 's/^/# /'
	fail=$((fail + 1))
fi

if v=$("$PYTHON" -c 'from setuptools.config.pyprojecttoml import read_configuration
print(read_configuration("pyproject.toml")["project"]["version"])' 2> "$tmp/py.log"); then
	same "pyproject.toml version (as setuptools reads it)" "$v"
else
	skipped "pyproject.toml version" "setuptools cannot read it here: $(tail -n 1 "$tmp/py.log")"
fi
same "ringmpsc.__version__ (python/ringmpsc/__init__.py)" \
	"$(sed -n 's/^__version__ = "\([^"]*\)".*/\1/p' python/ringmpsc/__init__.py)"
if command -v luajit > /dev/null && [ -f build/libringmpsc.so ]; then
	same "Lua ringmpsc._VERSION" "$(RINGMPSC_LIB=$PWD/build/libringmpsc.so LUA_PATH="$PWD/lua/?.lua;;" \
		luajit -e 'io.write(require("ringmpsc")._VERSION)' 2>&1)"
else
	same "Lua ringmpsc._VERSION (lua/ringmpsc.lua)" \
		"$(sed -n 's/^local _M = { _VERSION = "\([^"]*\)".*/\1/p' lua/ringmpsc.lua)"
fi

# The shared library's ABI: SONAME from VERSION's major number (0.MINOR before 1.0); it exports exactly
# the functions ringmpsc.h declares, each under a version node of csrc/ringmpsc.map.
check() { # description command...
	local d=$1
	shift
	if "$@"; then echo "ok - $d"; pass=$((pass + 1)); else echo "not ok - $d"; fail=$((fail + 1)); fi
}
so=build/libringmpsc.so
if [ -e "$so" ]; then
	soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
	abi=${want%%.*}
	[ "$abi" = 0 ] && abi=$(echo "$want" | cut -d. -f1,2) # before 1.0 a minor release may break the ABI
	check "SONAME is libringmpsc.so.$abi (got '$soname')" [ "$soname" = "libringmpsc.so.$abi" ]
	grep -o 'RMPSC_API [^(]*(' csrc/include/ringmpsc.h | sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' |
		grep -v '^__attribute__$' | sort > "$tmp/api"
	grep -o 'rmpsc_[a-z_0-9]*' csrc/ringmpsc.map | sort > "$tmp/map"
	objdump -T "$so" | awk '$2 == "g" && $4 == ".text" { print $6 " " $7 }' | sort -k2 > "$tmp/exported"
	awk '{ print $2 }' "$tmp/exported" > "$tmp/exported-names"
	check "csrc/ringmpsc.map lists exactly the functions ringmpsc.h declares" diff "$tmp/api" "$tmp/map"
	check "the library exports exactly those functions" diff "$tmp/api" "$tmp/exported-names"
	check "every exported function has a RINGMPSC_ version" \
		[ "$(grep -vc '^RINGMPSC_' "$tmp/exported")" -eq 0 ]
else
	skipped "shared library ABI" "build/libringmpsc.so is not built"
fi

echo "version $pass $fail $skip" >> "${RESULTS_FILE:-build/results.txt}"
echo "[version] $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
