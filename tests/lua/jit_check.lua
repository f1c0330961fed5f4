-- luajit tests/lua/jit_check.lua CASE: run one hot loop of the binding in a fresh
-- LuaJIT state with a trace listener attached; print "stops N" and one "abort ..."
-- line per trace abort (location: reason). Used by jit_spec.lua.
local ffi = require "ffi"
local ringmpsc = require "ringmpsc"
local jutil = require "jit.util"
local vmdef = require "jit.vmdef"

local N = 200000
local ch = assert(ringmpsc.new { record_size = 64, capacity = 1024 })
local p = assert(ch:producer())

local cases = {}

cases.send_recv = function()
	local s = string.rep("x", 64)
	local bytes = 0
	for _ = 1, N do
		local ok, err = p:send(s)
		if not ok then error(err) end
		local rec = ch:recv()
		bytes = bytes + #rec
	end
	assert(bytes == N * 64)
end

cases.timeouts = function()
	local s = string.rep("y", 60)
	for _ = 1, N do
		assert(p:send(s, 1))
		assert(ch:recv(1))
	end
end

cases.reserve_read = function()
	local sum = 0
	for _ = 1, N / 16 do
		local ptr, n = p:reserve(16)
		ffi.fill(ptr, n * 64, 1)
		p:commit(n)
		local got = 0
		while got < n do
			local rp, rn = ch:read(16)
			sum = sum + rp[0]
			ch:advance(rn)
			got = got + rn
		end
	end
	assert(sum > 0)
end

cases.recv_into_empty = function()
	local buf = ffi.new("uint8_t[?]", 64 * 8)
	local s = string.rep("z", 64)
	local empties = 0
	for _ = 1, N / 8 do
		for _ = 1, 8 do
			p:send(s)
		end
		local n = ch:recv_into(buf, 8)
		assert(n == 8)
		local rec, err = ch:recv()
		if not rec and err == "empty" then
			empties = empties + 1
		end
	end
	assert(empties == N / 8)
end

cases.full = function()
	local s = string.rep("f", 64)
	local fulls = 0
	for _ = 1, N / 1024 do
		for _ = 1, 1100 do
			local ok, err = p:send(s)
			if not ok and err == "full" then
				fulls = fulls + 1
			end
		end
		for _ = 1, 1024 do
			assert(ch:recv())
		end
	end
	assert(fulls > 0)
end

-- A Consumer (a handle of its own, member of a group) shares the Channel's methods.
cases.consumer = function()
	local gch = assert(ringmpsc.new { record_size = 64, capacity = 1024, max_consumers = 2 })
	assert(gch:remove_group("default")) -- only "jit" holds records
	local c = assert(gch:consumer("jit"))
	local gp = assert(gch:producer())
	local s = string.rep("c", 64)
	local sum = 0
	for _ = 1, N / 16 do
		for _ = 1, 8 do
			assert(gp:send(s))
			assert(c:recv())
		end
		local ptr, n = gp:reserve(8)
		ffi.fill(ptr, n * 64, 2)
		gp:commit(n)
		local got = 0
		while got < n do
			local rp, rn = c:read(8)
			sum = sum + rp[0] + c:deliveries()
			c:advance(rn)
			got = got + rn
		end
	end
	assert(sum > 0)
end

local fn = assert(cases[arg[1]], "unknown case " .. tostring(arg[1]))
local stops, aborts = 0, {}
local function listener(what, _, func, pc, otr, oex)
	if what == "stop" then
		stops = stops + 1
	elseif what == "abort" then
		local info = jutil.funcinfo(func, pc)
		local msg = vmdef.traceerr[otr] or tostring(otr)
		if type(msg) == "string" and oex ~= nil then
			if type(oex) == "number" and msg:find("bytecode", 1, true) then
				msg = "NYI: bytecode " .. vmdef.bcnames:sub(oex * 6 + 1, oex * 6 + 6)
			else
				local ok, s = pcall(string.format, msg, oex)
				msg = ok and s or msg
			end
		end
		aborts[#aborts + 1] = (info.source or "?") .. ":" .. tostring(info.currentline) .. ": " .. msg
	end
end
jit.attach(listener, "trace")
fn()
jit.attach(listener)
print("stops " .. stops)
for _, a in ipairs(aborts) do
	print("abort " .. a)
end
