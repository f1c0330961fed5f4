-- The log phase of benchmarks/nginx_logging as an OpenResty operator writes it: one
-- record per request, built in Lua, then
--   resty     sent through resty.ringmpsc: get(name):send(record), the text line below
--             (zero-filled to the channel's 64 bytes); consumer.py --format text drains it
--   resty_inner  as resty, drained inside nginx by the library's consumer (consume(), a
--             timer in worker 0) whose handler checks the records as dict's timer does
--   resty_zc  resty.ringmpsc's zero-copy path: reserve(1), the binary record of
--             logger.lua filled in place, commit(1); consumer.py (binary) drains it
--   dict      pushed onto a list in a lua_shared_dict: dict:lpush(KEY, record); a timer
--             in worker 0 pops and checks the records (below)
--   build     built and thrown away: what building the record costs, with no queue
--   hook      no record: log() only counts the request (what the log_by_lua hook
--             itself costs: nginx's log phase handler, the Lua call, the module lookup)
--
-- The text record: "pid seq status time remote_addr method uri", e.g.
-- "4711 1234 200 1764343526.123 127.0.0.1 GET /" (ngx.now(), ngx.var, ngx.req: what an
-- access log line is made of).
--
-- init(mode, name), in init_by_lua: resty, resty_zc: configure the channel `name` (the
--   consumer created it: the geometry given here is what it has); resty_inner: configure
--   creates it; dict: `name` is the lua_shared_dict.
-- init_worker(), exit_worker(): the library's hooks (resty, resty_inner, resty_zc); in
--   worker 0 the dict consumer's timer (dict), the library's consumer (resty_inner). At
--   exit each worker appends "pid records drops" to logs/workers.txt (records sent,
--   records dropped); the consumer in worker 0 (dict, resty_inner) appends "received bad
--   first-bad" to logs/inner-consumer.txt after draining what is left.
-- handle_counts(): GET /counts: consumer_wakes of the channel (resty, resty_zc).
local ffi = require "ffi"
local ringmpsc = require "resty.ringmpsc"
local logger = require "logger"

local ngx = ngx
local worker_pid, ngx_now, get_method = ngx.worker.pid, ngx.now, ngx.req.get_method
local tonumber = tonumber

local KEY = "log"            -- the shared dict's list
local BATCH = 256            -- records the dict consumer pops before yielding
local MIN_WAIT, MAX_WAIT = 0.001, 0.05 -- its idle waits (as resty.ringmpsc's consume)

local _M = {}
local mode, name, shipper, dict
local my = { pid = nil, seq = 0, drops = 0 }
local cons = { received = 0, bad = 0, first_bad = nil, last = {} }

-- The worker's pid and the sequence number of its next record. A record that is dropped
-- gives its number back (drop()): the numbers count the records sent, with no gaps.
local function next_seq()
	local pid = worker_pid()
	if my.pid ~= pid then
		my.pid, my.seq, my.drops = pid, 0, 0
	end
	local seq = my.seq + 1
	my.seq = seq
	return pid, seq
end

local function drop()
	my.seq = my.seq - 1
	my.drops = my.drops + 1
end

-- The text record an operator builds (costs.lua times this one too).
local function record(pid, seq)
	local var = ngx.var
	return pid .. " " .. seq .. " " .. ngx.status .. " " .. ngx_now() .. " " .. var.remote_addr .. " "
		.. get_method() .. " " .. var.uri
end
_M.record = record

local log = {}

function log.resty()
	local pid, seq = next_seq()
	if not ringmpsc.get(name):send(record(pid, seq)) then
		drop() -- the library counts it in the channel too
	end
end

function log.resty_zc()
	local pid, seq = next_seq()
	local s = ringmpsc.get(name)
	local ptr = s:reserve(1)
	if not ptr then
		return drop()
	end
	logger.fill(ptr, pid, seq)
	s:commit(1)
end

function log.dict()
	local pid, seq = next_seq()
	if not dict:lpush(KEY, record(pid, seq)) then -- nil, "no memory": dropped
		drop()
	end
end

function log.build()
	local pid, seq = next_seq()
	my.bytes = (my.bytes or 0) + #record(pid, seq) -- used, so it is built
end

function log.hook()
	next_seq()
end

log.resty_inner = log.resty

function _M.init(m, n)
	assert(log[m], "resty_logger: unknown mode " .. tostring(m))
	mode, name = m, n
	_M.log = log[m]
	if m == "resty_inner" then
		shipper = assert(ringmpsc.configure(n, { record_size = 64, capacity = 8192, max_producers = 8 }))
	elseif m == "resty" or m == "resty_zc" then
		-- consumer.py created it: Channel(64, capacity=8192, max_producers=8)
		shipper = assert(ringmpsc.configure(n, { record_size = 64, capacity = 8192, max_producers = 8,
			max_consumers = 1, max_groups = 1 }))
	elseif m == "dict" then
		dict = assert(ngx.shared[n], "resty_logger: no lua_shared_dict " .. n)
	end
end

local function check(v)
	v = v:match("^[^%z]*") -- a channel's record is zero-filled
	cons.received = cons.received + 1
	local pid, seq = v:match("^(%d+) (%d+) 200 [%d.]+ 127%.0%.0%.1 GET /$")
	pid, seq = tonumber(pid), tonumber(seq)
	local want = pid and (cons.last[pid] or 0) + 1
	if not pid or seq ~= want then
		cons.bad = cons.bad + 1
		cons.first_bad = cons.first_bad or ("record " .. cons.received .. ": " .. v .. " (expected seq "
			.. tostring(want) .. ")")
	end
	if pid then
		cons.last[pid] = seq
	end
end

-- The dict consumer: pop and check up to BATCH records, yield to the requests
-- (ngx.sleep(0)); when the list is empty sleep, from MIN_WAIT doubling up to MAX_WAIT.
local function consume(premature)
	if premature then
		return
	end
	local wait = MIN_WAIT
	while not ngx.worker.exiting() do
		local n = 0
		while n < BATCH do
			local v = dict:rpop(KEY)
			if not v then
				break
			end
			check(v)
			n = n + 1
		end
		if n == BATCH then
			wait = MIN_WAIT
			ngx.sleep(0)
		else
			ngx.sleep(wait)
			wait = n > 0 and MIN_WAIT or (wait * 2 < MAX_WAIT and wait * 2 or MAX_WAIT)
		end
	end
end

-- resty_inner's handler: the library hands over up to 256 records at a time.
local function handle(ptr, n, rs)
	for i = 0, n - 1 do
		check(ffi.string(ptr + i * rs, rs))
	end
end

local function drain_channel()
	local c = assert(shipper.channel:consumer())
	while true do
		local ptr, n = c:read(256)
		if not ptr then
			break
		end
		handle(ptr, n, shipper.record_size)
		c:advance(n)
	end
	c:close()
end

function _M.init_worker()
	if shipper then
		ringmpsc.init_worker()
		if mode == "resty_inner" then
			assert(shipper:consume(handle, { worker = 0 }))
		end
	elseif mode == "dict" and ngx.worker.id() == 0 then
		assert(ngx.timer.at(0, consume))
	end
end

function _M.exit_worker()
	if shipper then
		ringmpsc.exit_worker()
	end
	local prefix = ngx.config.prefix()
	if (mode == "dict" or mode == "resty_inner") and ngx.worker.id() == 0 then
		-- The timer left at its next turn; what is still queued is consumed here.
		if mode == "resty_inner" then
			drain_channel()
		end
		while dict do
			local v = dict:rpop(KEY)
			if not v then
				break
			end
			check(v)
		end
		local f = assert(io.open(prefix .. "logs/inner-consumer.txt", "a"))
		f:write(cons.received, " ", cons.bad, " ", cons.first_bad or "", "\n")
		f:close()
	end
	if my.pid == worker_pid() then
		local f = assert(io.open(prefix .. "logs/workers.txt", "a"))
		f:write(my.pid, " ", my.seq, " ", my.drops, "\n")
		f:close()
	end
end

function _M.handle_counts()
	if shipper then
		local st = shipper:stats()
		if st and st.channel.consumer_wakes then
			ngx.say("consumer_wakes ", st.channel.consumer_wakes)
		end
	end
end

return _M
