-- The per-call costs behind benchmarks/nginx_logging's modes, measured inside one
-- request of one worker (GET /costs, run.sh at the end): no scheduling between
-- processes, so what wrk's requests/s blur on a busy machine. Reported in ns per call:
--   record    building resty_logger.lua's text record (ngx.status, ngx.now, ngx.var,
--             ngx.req.get_method, concatenation)
--   send      resty.ringmpsc get(name):send of a record built beforehand
--   zc        resty.ringmpsc reserve(1), logger.lua's binary record filled, commit(1)
--   lpush     ngx.shared.DICT:lpush of a record built beforehand
--   rpop      ngx.shared.DICT:rpop of one (what the dict consumer pays per record)
-- Each: the least of ROUNDS rounds of N calls; the channel and the list are drained
-- between rounds, untimed (read/advance by a consumer in this worker; rpop).
--
-- init(name), in init_by_lua: create the channel `name` (64-byte records); the
-- lua_shared_dict is "nginxlog".
local ffi = require "ffi"
local ringmpsc = require "resty.ringmpsc"
local logger = require "logger"

local ngx = ngx
local worker_pid = ngx.worker.pid

if not pcall(ffi.typeof, "struct nginx_logging_timespec") then
	ffi.cdef [[
struct nginx_logging_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct nginx_logging_timespec *ts);
]]
end
local ts = ffi.new("struct nginx_logging_timespec")
local CLOCK_MONOTONIC = 1
local function now_ns()
	ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
	return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

local N, ROUNDS = 2048, 30
local KEY = "costs"

local _M = {}
local name

function _M.init(n)
	name = n
	assert(ringmpsc.configure(n, { record_size = 64, capacity = 4096, max_producers = 8 }))
end

local record = require("resty_logger").record

local function best(f, reset)
	local least = math.huge
	for _ = 1, ROUNDS do
		reset()
		local t0 = now_ns()
		f()
		local t = now_ns() - t0
		if t < least then
			least = t
		end
	end
	return least / N
end

function _M.run()
	ringmpsc.init_worker()
	local s = ringmpsc.get(name)
	local c = assert(s.channel:consumer())
	local dict = ngx.shared.nginxlog
	local pid = worker_pid()
	local rec = record(pid, 1234567)
	local sink = 0
	local function drain()
		local ptr, n = c:read(4096)
		if ptr then
			c:advance(n)
		end
	end
	local function empty()
		while dict:rpop(KEY) do end
	end
	local function fill_list()
		empty()
		for _ = 1, N do
			dict:lpush(KEY, rec)
		end
	end
	local out = {}
	out.record = best(function()
		for i = 1, N do
			sink = sink + #record(pid, i)
		end
	end, drain)
	out.send = best(function()
		for _ = 1, N do
			ringmpsc.get(name):send(rec)
		end
	end, drain)
	out.zc = best(function()
		for i = 1, N do
			local ptr = s:reserve(1)
			logger.fill(ptr, pid, i)
			s:commit(1)
		end
	end, drain)
	out.lpush = best(function()
		for _ = 1, N do
			dict:lpush(KEY, rec)
		end
	end, empty)
	out.rpop = best(function()
		for _ = 1, N do
			dict:rpop(KEY)
		end
	end, fill_list)
	drain()
	empty()
	c:close()
	ringmpsc.exit_worker()
	local st = s:stats()
	assert(st.dropped == 0, "costs: records dropped")
	for _, k in ipairs { "record", "send", "zc", "lpush", "rpop" } do
		ngx.say(k, " ", string.format("%.1f", out[k]))
	end
	ngx.say("sink ", sink)
end

return _M
