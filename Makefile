# ringmpsc — `make help` lists every target.
SHELL      := /bin/bash
CC         ?= cc
PREFIX     ?= /usr/local
BUILD      := build
CSTD       := -std=c11 -D_GNU_SOURCE
WARN       := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT        ?= -O2 -g
CFLAGS_LIB := $(CSTD) $(WARN) $(OPT) -fPIC -fvisibility=hidden -Icsrc/include -Icsrc
LDLIBS     := -lpthread
# The one place the version is written; scripts/version.sh carries it elsewhere.
VERSION    := $(shell cat VERSION)

CORE_SRC   := $(wildcard csrc/*.c)
CORE_HDR   := $(wildcard csrc/*.h csrc/include/*.h)
CORE_OBJ   := $(CORE_SRC:csrc/%.c=$(BUILD)/obj/%.o)

.PHONY: all lib help deps test test-c test-c-plain test-c-tsan test-c-asan test-version test-model bench \
	bench-programs bench-c bench-steady bench-frames bench-nginx-logging bench-python bench-python-share bench-python-aio \
	bench-python-queue bench-bridge bench-lua install uninstall version lint format clean demo example-c wheel
all: lib

help:
	@echo "make lib          build/libringmpsc.so and build/libringmpsc.a (default)"
	@echo "make deps         install what test and demo need, once (scripts/ensure-deps.sh c python lua model;"
	@echo "                  Python tools go into the venv build/venv, never the system interpreter)"
	@echo "make test         every suite: C (plain, TSan, ASan+UBSan), spin models, Python, LuaJIT + nginx; installs what it needs;"
	@echo "                  ends with 'N passed, N failed, N skipped'"
	@echo "make test-c       the C suite only (plain, TSan, ASan+UBSan)"
	@echo "make test-model   spin model checks (tests/model: slots, consumer role, groups, wake-ups)"
	@echo "make test-version VERSION agrees with the header, ringmpsc.pc, Python and Lua"
	@echo "make lint         clang-format --dry-run (C), luacheck (Lua), ruff (Python): the lint suite of make test"
	@echo "make format       apply clang-format and ruff's fixes"
	@echo "make bench        every suite (limits, C vs peers, consumer groups, Python vs peers, work sharing, asyncio,"
	@echo "                  ringmpsc.Queue vs faster-fifo, LuaJIT vs ngx.shared.DICT) in one run"
	@echo "                  -> benchmarks/results/ (json, md, plots) and README; QUICK=1: a reduced set (< 2 min)"
	@echo "make bench-programs  build every benchmark program (what make bench runs), nothing run"
	@echo "make bench-c      C benchmark of the core alone (SPSC/MPSC x record size x batch, vs a bare SPSC ring;"
	@echo "                  ping-pong, cache-line round trip, liveness check)"
	@echo "make bench-steady 2 paced producer processes -> 1 consumer process: producer CPU and consumer wake-ups"
	@echo "                  per record, blocking consumer vs polling (BENCH_ARGS=\"--coalesce 32:1ms\" ...)"
	@echo "make bench-frames 1 MiB frames between two processes through the core vs a bare two-copy ring and memcpy"
	@echo "make bench-python Python paths across processes vs multiprocessing, faster-fifo, pyzmq"
	@echo "make bench-python-share  Python work sharing: producer processes -> 4 consumer processes (a consumer"
	@echo "                  group) vs faster-fifo and multiprocessing.Queue"
	@echo "make bench-python-aio  Python asyncio consumers (recv_many_async, recv_async; uvloop too) vs blocking"
	@echo "                  ones: 2 producer processes -> 1 consumer records/s, and ping-pong p50/p99"
	@echo "make bench-python-queue  ringmpsc.Queue (the drop-in for faster_fifo.Queue) vs faster-fifo and"
	@echo "                  multiprocessing.Queue in faster-fifo's comparison configurations (P producer -> C"
	@echo "                  consumer processes, per message and get_many); 1 MiB NumPy frames vs memcpy"
	@echo "make bench-bridge the NATS JetStream bridge: producers' CPU per record through a channel vs publishing"
	@echo "                  with nats-py themselves; forwarded records/s vs nats-py's best from one process"
	@echo "make bench-lua    LuaJIT inside nginx vs ngx.shared.DICT"
	@echo "make bench-nginx-logging  nginx (2 workers) logging every request: ringmpsc, resty.ringmpsc, ngx.shared.DICT"
	@echo "                  that blocks or polls every 5 ms, vs no logging: wrk requests/s (installs wrk)"
	@echo "make demo         the main job end to end: producer processes -> one consumer, verified,"
	@echo "                  next to multiprocessing.Queue (installs what it needs)"
	@echo "make example-c    build and run the C quick start (csrc/examples/quickstart.c)"
	@echo "make wheel        the Python wheel pip installs: sdist -> wheel built from it alone -> auditwheel repair"
	@echo "                  (a manylinux tag) -> build/dist/; prints the wheel's path (scripts/build-wheel.sh)"
	@echo "make install      PREFIX=/usr/local: library (SONAME libringmpsc.so.MAJOR; 0.MINOR before 1.0; versioned symbols), headers,"
	@echo "                  pkg-config file, the Lua modules (ringmpsc, resty.ringmpsc) in LUA_DIR=PREFIX/share/lua/5.1 and"
	@echo "                  the library for them in LUA_CDIR=PREFIX/lib/lua/5.1 (OpenResty: both /usr/local/openresty/site/lualib)"
	@echo "                  LuaRocks: luarocks make ringmpsc-VERSION-1.rockspec (builds the library too)"
	@echo "make uninstall    PREFIX=/usr/local: remove what make install put there"
	@echo "make version      after editing VERSION: write it into the header, Python and Lua"
	@echo "make clean        remove build/"

# The shared library: real name libringmpsc.so.MAJOR.MINOR.PATCH, SONAME
# libringmpsc.so.MAJOR, exports exactly csrc/ringmpsc.map (versioned symbols).
# Before 1.0 a minor release may change the ABI (0.3 grew struct rmpsc_config and
# struct rmpsc_stats), so the SONAME is libringmpsc.so.0.MINOR then.
SO_MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
SO_ABI     := $(if $(filter 0,$(SO_MAJOR)),0.$(word 2,$(subst ., ,$(VERSION))),$(SO_MAJOR))
SO_REAL    := libringmpsc.so.$(VERSION)
SO_NAME    := libringmpsc.so.$(SO_ABI)

lib: $(BUILD)/libringmpsc.so $(BUILD)/libringmpsc.a

$(BUILD)/obj/%.o: csrc/%.c $(CORE_HDR) | $(BUILD)/obj
	$(CC) $(CFLAGS_LIB) -c $< -o $@

$(BUILD)/obj:
	mkdir -p $@

$(BUILD)/$(SO_REAL): $(CORE_OBJ) csrc/ringmpsc.map
	$(CC) -shared -Wl,-soname,$(SO_NAME) -Wl,--version-script=csrc/ringmpsc.map -o $@ $(CORE_OBJ) $(LDLIBS)

$(BUILD)/libringmpsc.so: $(BUILD)/$(SO_REAL)
	ln -sf $(SO_REAL) $(BUILD)/$(SO_NAME)
	ln -sf $(SO_NAME) $@

$(BUILD)/libringmpsc.a: $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

# --- tests ------------------------------------------------------------------
# Each C test is a standalone program; tests/c/run.sh runs them with a time limit
# and prints a summary. The same sources are built three ways.
TEST_SRC   := $(wildcard tests/c/test_*.c)
TEST_NAMES := $(TEST_SRC:tests/c/%.c=%)
TEST_CFLAGS = $(CSTD) $(WARN) -Icsrc/include -Icsrc -Itests/c

define test_variant
$(BUILD)/$(1)/%: tests/c/%.c $(wildcard tests/c/*.h) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $(2) -o $$@ $$< $$(CORE_SRC) $$(LDLIBS)
endef
$(eval $(call test_variant,test-plain,-O2 -g))
# TSan does not model standalone fences (-Wtsan); they only order atomics here, and
# the wake-up protocol they serve is proven by test_blocking, not by TSan.
$(eval $(call test_variant,test-tsan,-O1 -g -fsanitize=thread -Wno-tsan))
# In a variable: a literal comma would split the $(call) argument.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
$(eval $(call test_variant,test-asan,$$(ASAN_FLAGS)))

test-c-plain: $(TEST_NAMES:%=$(BUILD)/test-plain/%)
	tests/c/run.sh plain $(BUILD)/test-plain $(TEST_NAMES)
TSAN_NAMES := $(filter-out test_proc_%,$(TEST_NAMES))
test-c-tsan: $(TSAN_NAMES:%=$(BUILD)/test-tsan/%)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" tests/c/run.sh tsan $(BUILD)/test-tsan $(TSAN_NAMES)
test-c-asan: $(TEST_NAMES:%=$(BUILD)/test-asan/%)
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
		tests/c/run.sh asan $(BUILD)/test-asan $(TEST_NAMES)

test-version:
	tests/version_test.sh

test-model:
	scripts/ensure-deps.sh model
	tests/model/run.sh

test-c: lib
	@rm -f $(BUILD)/results.txt
	$(MAKE) --no-print-directory -k test-c-plain test-c-tsan test-c-asan

test: deps lib
	tests/run_all.sh

deps:
	scripts/ensure-deps.sh c python lua model

# --- benchmarks -------------------------------------------------------------
# The benchmark programs are ordinary targets: make decides what is out of date,
# benchmarks/run.py (the ringbench package) only asks for them.
BENCH_C_HDR := benchmarks/c/bench_common.h
PY_SRC      := $(shell find python -type f \( -name '*.c' -o -name '*.h' -o -name '*.py' -o -name '*.pyi' \) \
		 -not -path '*.egg-info/*' -not -path '*/__pycache__/*' -not -path 'python/build/*') setup.py pyproject.toml

$(BUILD)/bench_c: benchmarks/c/bench.c $(BENCH_C_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O3 -march=native -g -Icsrc/include -Icsrc -o $@ $< $(CORE_SRC) $(LDLIBS)

$(BUILD)/bench_steady: benchmarks/c/steady.c $(BENCH_C_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O3 -march=native -g -Icsrc/include -Icsrc -o $@ $< $(CORE_SRC) $(LDLIBS) -lm

$(BUILD)/bench_frames: benchmarks/c/frames.c $(BENCH_C_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O3 -march=native -g -Icsrc/include -Icsrc -o $@ $< $(CORE_SRC) $(LDLIBS)

$(BUILD)/bench_peers: benchmarks/c/peers.cpp benchmarks/c/build_peers.sh $(BENCH_C_HDR) $(CORE_SRC) $(CORE_HDR)
	benchmarks/c/build_peers.sh

# python/build.sh installs the package into the venv: a stamp there marks a finished build.
$(BUILD)/venv/.ringmpsc-built: $(PY_SRC) $(CORE_SRC) $(CORE_HDR)
	python/build.sh
	touch $@

bench-c: $(BUILD)/bench_c
	$(BUILD)/bench_c $(BENCH_ARGS)

bench-steady: $(BUILD)/bench_steady
	$(BUILD)/bench_steady $(BENCH_ARGS)

bench-frames: $(BUILD)/bench_frames
	$(BUILD)/bench_frames $(BENCH_ARGS)

# benchmarks/run.py reads QUICK=1 from the environment and calls make for each
# program it runs (bench-programs names them all).
bench:
	scripts/ensure-deps.sh c python lua bench
	build/venv/bin/python benchmarks/run.py

bench-programs: lib $(BUILD)/bench_c $(BUILD)/bench_steady $(BUILD)/bench_frames $(BUILD)/bench_peers $(BUILD)/venv/.ringmpsc-built

bench-python:
	scripts/ensure-deps.sh python bench
	$(MAKE) --no-print-directory $(BUILD)/venv/.ringmpsc-built
	build/venv/bin/python benchmarks/python/peers.py $(BENCH_ARGS)

bench-python-share:
	scripts/ensure-deps.sh python bench
	$(MAKE) --no-print-directory $(BUILD)/venv/.ringmpsc-built
	build/venv/bin/python benchmarks/python/workshare.py $(BENCH_ARGS)

bench-python-aio:
	scripts/ensure-deps.sh python
	$(MAKE) --no-print-directory $(BUILD)/venv/.ringmpsc-built
	build/venv/bin/python benchmarks/python/aio.py $(BENCH_ARGS)

bench-python-queue:
	scripts/ensure-deps.sh python bench
	$(MAKE) --no-print-directory $(BUILD)/venv/.ringmpsc-built
	build/venv/bin/python benchmarks/python/queues.py $(BENCH_ARGS)

bench-bridge:
	scripts/ensure-deps.sh python
	$(MAKE) --no-print-directory $(BUILD)/venv/.ringmpsc-built
	build/venv/bin/python benchmarks/python/bridge.py $(BENCH_ARGS)

bench-lua: lib
	scripts/ensure-deps.sh lua
	benchmarks/lua/run.sh $(BENCH_ARGS)

bench-nginx-logging: lib
	scripts/ensure-deps.sh python lua wrk
	$(MAKE) --no-print-directory $(BUILD)/venv/.ringmpsc-built
	benchmarks/nginx_logging/run.sh $(BENCH_ARGS)

# --- demo and examples ------------------------------------------------------
demo: deps lib
	scripts/demo.sh

$(BUILD)/quickstart: csrc/examples/quickstart.c $(BUILD)/libringmpsc.a
	$(CC) $(CSTD) $(WARN) -O2 -Icsrc/include -o $@ $< $(BUILD)/libringmpsc.a $(LDLIBS)

example-c: $(BUILD)/quickstart
	$(BUILD)/quickstart

# --- Python wheel -------------------------------------------------------------
# scripts/build-wheel.sh: the one way, shared with tests/python/test_packaging.py.
wheel:
	scripts/build-wheel.sh

# --- version, lint ------------------------------------------------------------
version:
	scripts/version.sh

# tests/lint.sh (also a suite of make test) checks; format rewrites.
lint:
	tests/lint.sh

format:
	clang-format -i $(wildcard csrc/*.c csrc/*.h csrc/include/*.h csrc/examples/*.c tests/c/*.c tests/c/*.h)
	build/venv/bin/ruff check --fix .

# --- install ----------------------------------------------------------------
PUBLIC_HDR := csrc/include/ringmpsc.h csrc/include/ringmpsc_version.h
# Where Lua finds modules: LuaJIT's default package.path and package.cpath include
# PREFIX/share/lua/5.1 and PREFIX/lib/lua/5.1 (OpenResty: LUA_DIR=/usr/local/openresty/site/lualib
# LUA_CDIR=/usr/local/openresty/site/lualib). The library is linked there too, as
# libringmpsc.so, which ringmpsc.lua looks for through package.cpath: no ldconfig needed.
LUA_DIR    ?= $(PREFIX)/share/lua/5.1
LUA_CDIR   ?= $(PREFIX)/lib/lua/5.1
LUA_MODS   := ringmpsc.lua resty/ringmpsc.lua

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(SO_REAL) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libringmpsc.so
	install -m 0644 $(BUILD)/libringmpsc.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 $(PUBLIC_HDR) $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' ringmpsc.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringmpsc.pc
	install -d $(DESTDIR)$(LUA_DIR)/resty $(DESTDIR)$(LUA_CDIR)
	install -m 0644 lua/ringmpsc.lua $(DESTDIR)$(LUA_DIR)/ringmpsc.lua
	install -m 0644 lua/resty/ringmpsc.lua $(DESTDIR)$(LUA_DIR)/resty/ringmpsc.lua
	ln -sf $(PREFIX)/lib/$(SO_NAME) $(DESTDIR)$(LUA_CDIR)/libringmpsc.so

# Exactly what install wrote; the directories stay (they may hold others' files).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libringmpsc.so $(DESTDIR)$(PREFIX)/lib/$(SO_NAME) \
		$(DESTDIR)$(PREFIX)/lib/$(SO_REAL) $(DESTDIR)$(PREFIX)/lib/libringmpsc.a
	rm -f $(PUBLIC_HDR:csrc/include/%=$(DESTDIR)$(PREFIX)/include/%)
	rm -f $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringmpsc.pc
	rm -f $(LUA_MODS:%=$(DESTDIR)$(LUA_DIR)/%) $(DESTDIR)$(LUA_CDIR)/libringmpsc.so

clean:
	rm -rf $(BUILD)
