-- LuaRocks package: the LuaJIT binding (ringmpsc), the OpenResty library
-- (resty.ringmpsc) and the C core they load (libringmpsc.so, built from csrc/).
-- Generated from ringmpsc.rockspec.in by scripts/version.sh (make version): do not edit.
-- From a checkout: luarocks make ringmpsc-0.7.0-1.rockspec [--tree DIR]
rockspec_format = "3.0"
package = "ringmpsc"
version = "0.7.0-1"
source = {
	url = "git+https://github.com/ringmpsc/ringmpsc.git",
	tag = "v0.7.0",
}
description = {
	summary = "Lock-free shared-memory channels between nginx workers, LuaJIT, Python and C processes",
	detailed = [[
A C core of lock-free rings in one shared-memory region, with a LuaJIT FFI binding and
resty.ringmpsc, a library for shipping events out of nginx workers (any phase, the log
phase included, never blocking; drops counted; an in-nginx consumer; reload-safe).]],
	homepage = "https://github.com/ringmpsc/ringmpsc",
	license = "MIT",
	labels = { "openresty", "nginx", "ipc", "shared-memory", "queue" },
}
dependencies = {
	-- LuaJIT's FFI: OpenResty's LuaJIT, or Debian's luajit2.
	"lua == 5.1",
}
build = {
	type = "builtin",
	modules = {
		ringmpsc = "lua/ringmpsc.lua",
		["resty.ringmpsc"] = "lua/resty/ringmpsc.lua",
		-- ringmpsc.lua finds it through package.cpath as "libringmpsc".
		libringmpsc = {
			sources = { "csrc/attach.c", "csrc/consumer.c", "csrc/error.c", "csrc/fence.c", "csrc/group.c", "csrc/layout.c", "csrc/notify.c", "csrc/producer.c", "csrc/region.c", "csrc/ring.c", "csrc/slab.c", "csrc/slot.c", "csrc/stats.c", "csrc/wait.c", },
			defines = { "_GNU_SOURCE" },
			incdirs = { "csrc/include", "csrc" },
			libraries = { "pthread" },
		},
	},
}
