#!/usr/bin/env bash
# How Lua users install ringmpsc, tried as they would: `make install PREFIX=...` and
# `luarocks make ringmpsc-VERSION-1.rockspec --tree ...` (from a copy of the sources, as a
# release tarball would be). Each time a fresh LuaJIT, pointed at nothing but what was
# installed, loads ringmpsc (and finds the library there), moves a record through a
# channel, and finds resty.ringmpsc. Prints TAP lines; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
REPO=$PWD
LUAJIT=${LUAJIT:-luajit}
MAKE=${MAKE:-make}
version=$(tr -d ' \t\n' < VERSION)
tmp=$(mktemp -d /tmp/ringmpsc-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; failed=$((failed + 1)); }

try_installed() { # what lua_dir cdir
	local what=$1 lua_dir=$2 cdir=$3 out
	if out=$(env -u RINGMPSC_LIB LUA_PATH="$lua_dir/?.lua" LUA_CPATH="$cdir/?.so" "$LUAJIT" -e '
		local r = require "ringmpsc"
		local ch = assert(r.new { record_size = 16, capacity = 8 })
		local p = assert(ch:producer())
		assert(p:send("installed"))
		assert(ch:recv():sub(1, 9) == "installed")
		assert(package.searchpath("resty.ringmpsc", package.path), "resty.ringmpsc is not installed")
		io.write(r._VERSION, " ", r.library_path)' 2>&1); then
		case $out in
		"$version $cdir/"*) ok "$what: LuaJIT loads ringmpsc $version and its library from $cdir, and finds resty.ringmpsc" ;;
		*) notok "$what: loaded something else: $out" ;;
		esac
	else
		notok "$what: LuaJIT cannot use what was installed"
		sed 's/^/# /' <<< "$out"
	fi
}

if $MAKE --no-print-directory -s install PREFIX="$tmp/prefix" > "$tmp/install.log" 2>&1; then
	try_installed "make install PREFIX=..." "$tmp/prefix/share/lua/5.1" "$tmp/prefix/lib/lua/5.1"
else
	notok "make install PREFIX=..."
	tail -n 20 "$tmp/install.log" | sed 's/^/# /'
fi

if command -v luarocks > /dev/null; then
	mkdir -p "$tmp/src"
	git ls-files -z | xargs -0 cp --parents -t "$tmp/src"
	if (cd "$tmp/src" && luarocks --lua-version=5.1 --tree "$tmp/tree" make "ringmpsc-$version-1.rockspec") \
		> "$tmp/luarocks.log" 2>&1; then
		try_installed "luarocks make ringmpsc-$version-1.rockspec" "$tmp/tree/share/lua/5.1" "$tmp/tree/lib/lua/5.1"
	else
		notok "luarocks make ringmpsc-$version-1.rockspec builds and installs"
		tail -n 20 "$tmp/luarocks.log" | sed 's/^/# /'
	fi
else
	notok "luarocks is installed (scripts/ensure-deps.sh lua)"
fi
[ "$failed" -eq 0 ]
