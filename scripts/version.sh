#!/usr/bin/env bash
# The version lives in VERSION (MAJOR.MINOR.PATCH) and nowhere else by hand.
#   scripts/version.sh          write it into the places that cannot read VERSION
#                               at build time (`make version` after editing VERSION)
#   scripts/version.sh --check  change nothing; name each place that disagrees, exit 1
# Written here: csrc/include/ringmpsc_version.h (RMPSC_VERSION_*), the Lua module's
# _VERSION, the Python package's __version__, the LuaRocks rockspec. Read from VERSION at build time:
# pyproject.toml (setuptools dynamic version) and ringmpsc.pc (Makefile, from
# ringmpsc.pc.in). tests/version_test.sh checks all five.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[ "${1:-}" = --check ] && check=1

version=$(tr -d ' \t\n' < VERSION)
if ! [[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
	echo "version: VERSION holds '$version', not MAJOR.MINOR.PATCH" >&2
	exit 2
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[3]}

bad=0
put() { # file: the expected content is on stdin
	local want
	want=$(cat)
	if [ -f "$1" ] && [ "$(cat "$1")" = "$want" ]; then
		return 0
	fi
	if [ $check -eq 1 ]; then
		echo "version: $1 disagrees with VERSION ($version); run make version" >&2
		diff <(cat "$1" 2>/dev/null) <(echo "$want") | sed 's/^/  /' >&2 || true
		bad=1
	else
		echo "$want" > "$1"
		echo "version: wrote $version into $1"
	fi
}

put csrc/include/ringmpsc_version.h <<HDR
/* Generated from VERSION by scripts/version.sh (make version): do not edit. */
#ifndef RINGMPSC_VERSION_H
#define RINGMPSC_VERSION_H

#define RMPSC_VERSION_MAJOR  $major
#define RMPSC_VERSION_MINOR  $minor
#define RMPSC_VERSION_PATCH  $patch
#define RMPSC_VERSION_STRING "$version"

#endif /* RINGMPSC_VERSION_H */
HDR

# One marked line each; everything else in these files is left as it is.
put lua/ringmpsc.lua < <(sed -E 's/^(local _M = \{ _VERSION = )"[^"]*"( \} -- from VERSION)/\1"'"$version"'"\2/' lua/ringmpsc.lua)
put python/ringmpsc/__init__.py < <(sed -E 's/^__version__ = "[^"]*"(  # from VERSION)/__version__ = "'"$version"'"\1/' python/ringmpsc/__init__.py)

# The LuaRocks package, rendered whole from ringmpsc.rockspec.in: the version, and every
# C source of the core (a file added to csrc/ changes it: tests/version_test.sh says so).
rockspec=ringmpsc-$version-1.rockspec
sources=$(cd csrc && ls -- *.c | sed 's|.*|"csrc/&",|' | tr '\n' ' ')
put "$rockspec" < <(sed -e "s|@VERSION@|$version|g" -e "s|@SOURCES@|${sources% }|" ringmpsc.rockspec.in |
	sed -e '1,/^-- (the version/{s|^-- scripts/version.sh (make version) writes.*|-- Generated from ringmpsc.rockspec.in by scripts/version.sh (make version): do not edit.|;/^-- (the version/d}')
for old in ringmpsc-*-1.rockspec; do
	[ "$old" = "$rockspec" ] || [ ! -e "$old" ] && continue
	if [ $check -eq 1 ]; then
		echo "version: $old is for another version; run make version" >&2
		bad=1
	else
		rm -f "$old"
		echo "version: removed $old"
	fi
done

# A marker line someone reworded would be skipped silently above: insist on it.
marked() { # file ERE
	grep -qE "$2" "$1" && return 0
	echo "version: $1 has no line matching '$2' (the marked line scripts/version.sh writes)" >&2
	bad=1
}
marked lua/ringmpsc.lua '^local _M = \{ _VERSION = "[^"]*" \} -- from VERSION by scripts/version.sh; do not edit$'
marked python/ringmpsc/__init__.py '^__version__ = "[^"]*"  # from VERSION by scripts/version.sh; do not edit$'

exit $bad
