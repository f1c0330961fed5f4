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
# module:package, installed into build/venv by the python group (bench adds its own);
# uvloop: the asyncio tests run on it as well (they skip without it); numpy: the tests of
# arrays made from reservations and read views (tests/python/test_numpy.py).
PY_TOOLS="pytest:pytest hypothesis:hypothesis mypy:mypy ruff:ruff setuptools:setuptools wheel:wheel uvloop:uvloop numpy:numpy"
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
# Install into the venv the packages whose module does not import there.
pip_install() {
	ensure_venv
	local missing=()
	for spec in "$@"; do
		mod=${spec%%:*} pkg=${spec##*:}
		"$VPY" -c "import $mod" 2>/dev/null || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "ensure-deps: pip install into $VENV: ${missing[*]}"
	"$VPY" -m pip install -q --disable-pip-version-check "${missing[@]}"
}
for group in "$@"; do
	case $group in
	c) apt_install gcc make libc6-dev binutils clang-format ;;
	model) apt_install spin ;; # the protocol models (tests/model)
	python) pip_install $PY_TOOLS ;;
	lua) apt_install luajit2 libluajit2-5.1-dev lua-busted lua-check nginx libnginx-mod-http-lua lua-resty-core ;;
	wrk) apt_install wrk ;; # the HTTP load of benchmarks/nginx_logging
	bench) apt_install wrk libck-dev libboost-dev libconcurrentqueue-dev libreaderwriterqueue-dev dpdk-dev
	       pip_install numpy:numpy matplotlib:matplotlib faster_fifo:faster-fifo zmq:pyzmq ;;
	all) "$0" c python lua model ;;
	*) echo "ensure-deps: unknown group $group" >&2; exit 2 ;;
	esac
done
