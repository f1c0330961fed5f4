#!/usr/bin/env bash
# Build build/bench_peers: the C peers suite (benchmarks/c/peers.cpp); `make build/bench_peers`
# calls it when its sources changed.
# Installs the peers first (Debian: libck-dev libboost-dev libconcurrentqueue-dev
# libreaderwriterqueue-dev dpdk-dev) through scripts/ensure-deps.sh, then compiles
# the ringmpsc core as C (the flags of `make bench-c`) and peers.cpp as C++17, and
# links them with DPDK's librte_ring (+ librte_eal, which it needs at load time only:
# the benchmark formats rings with rte_ring_init() in its own memory, no EAL init).
# Usage: benchmarks/c/build_peers.sh [extra compiler flags...]; env CC, CXX.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-deps.sh bench

CC=${CC:-cc}
CXX=${CXX:-c++}
OPT="-O3 -march=native -g"
OBJ=build/peers/obj
mkdir -p "$OBJ"

# DPDK: pkg-config when it knows libdpdk, else Debian's header locations. Its cflags
# carry -march=corei7; ours (-march=native) comes after and wins.
if pkg-config --exists libdpdk 2>/dev/null; then
	DPDK_CFLAGS=$(pkg-config --cflags libdpdk)
else
	DPDK_CFLAGS="-I/usr/include/dpdk -I/usr/include/$($CC -print-multiarch)/dpdk -include rte_config.h"
fi

run() { echo "+ $*"; "$@"; }

objs=()
for src in csrc/*.c; do
	o=$OBJ/$(basename "${src%.c}").o
	run "$CC" -std=c11 -D_GNU_SOURCE -Wall -Wextra $OPT -Icsrc/include -Icsrc -c "$src" -o "$o" "$@"
	objs+=("$o")
done
run "$CXX" -std=c++17 -Wall -Wextra -Wno-unused-parameter $DPDK_CFLAGS $OPT -Icsrc/include \
	-c benchmarks/c/peers.cpp -o "$OBJ/peers.o" "$@"
run "$CXX" -o build/bench_peers "$OBJ/peers.o" "${objs[@]}" -lrte_ring -lrte_eal -lpthread
echo "built build/bench_peers"
