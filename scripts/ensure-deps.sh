#!/usr/bin/env bash
# Install what a make target needs, only when it is missing.
# Usage: ensure-deps.sh GROUP...   groups: c python lua bench
set -euo pipefail
PYTHON=${PYTHON:-python3}
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
pip_install() {
	local missing=()
	for spec in "$@"; do
		mod=${spec%%:*} pkg=${spec##*:}
		$PYTHON -c "import $mod" 2>/dev/null || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "ensure-deps: pip install ${missing[*]}"
	$PYTHON -m pip install -q "${missing[@]}"
}
for group in "$@"; do
	case $group in
	c) apt_install gcc make libc6-dev ;;
	python) pip_install pytest:pytest hypothesis:hypothesis setuptools:setuptools ;;
	lua) apt_install luajit2 libluajit2-5.1-dev lua-busted lua-check nginx libnginx-mod-http-lua lua-resty-core ;;
	bench) apt_install libck-dev libboost-dev libconcurrentqueue-dev libreaderwriterqueue-dev dpdk-dev
	       pip_install numpy:numpy matplotlib:matplotlib faster_fifo:faster-fifo zmq:pyzmq ;;
	*) echo "ensure-deps: unknown group $group" >&2; exit 2 ;;
	esac
done
