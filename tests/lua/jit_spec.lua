-- The hot paths must stay JIT-compiled. Each hot loop runs in a fresh luajit
-- process (tests/lua/jit_check.lua: earlier specs in this process could have
-- blacklisted functions) with a trace listener attached; traces must be recorded
-- and none may abort with an NYI or inside ringmpsc.lua (a benign "leaving loop in
-- root trace" at a loop boundary is not counted).
-- By hand: LUA_PATH="lua/?.lua;;" luajit -jv benchmarks/lua/bench.lua 200000 (or -jdump).
local H = require "helpers"

local function run_case(name)
	local rc, out = H.sh("cd " .. H.repo .. " && LUA_PATH='lua/?.lua;;' timeout 60 luajit tests/lua/jit_check.lua "
		.. name)
	assert(rc == 0, out)
	local stops = tonumber(out:match("stops (%d+)"))
	local bad = {}
	for a in out:gmatch("abort ([^\n]+)") do
		if a:find("NYI", 1, true) or (a:find("ringmpsc.lua", 1, true) and not a:find("leaving loop", 1, true)) then
			bad[#bad + 1] = a
		end
	end
	return stops, bad, out
end

describe("JIT compilation of hot paths (fresh process each)", function()
	for _, case in ipairs {
		{ "send_recv", "p:send + ch:recv" },
		{ "timeouts", "p:send and ch:recv with timeouts" },
		{ "reserve_read", "p:reserve/commit + ch:read/advance" },
		{ "recv_into_empty", "ch:recv_into and the 'empty' error path" },
		{ "full", "the 'full' error path of p:send" },
		{ "consumer", "a Consumer's recv, read/advance and deliveries" },
	} do
		it(case[2], function()
			local stops, bad, out = run_case(case[1])
			assert.is_true(stops and stops > 0, out)
			assert.same({}, bad)
		end)
	end
end)
