-- OpenResty side of the ringmpsc demo (see nginx.conf next to this file).
--
-- init_by_lua (master): open the named channel, or create it. Workers inherit the
--   mapping through fork, so they never reopen it (they run as `nobody`; the shm
--   object is root's, mode 0600). A reload (HUP) runs init_by_lua again in a new
--   Lua VM of the same master: it finds the channel by name, so old workers (still
--   finishing) and new workers feed the same channel and its one consumer.
-- Every worker: a timer produces batches with reserve/commit; GET /produce?n=K
--   sends K records with p:send. Both use the worker's one producer, registered
--   lazily per process (ngx.worker.pid()); identity is per process, never per
--   ngx.worker.id(), which old and new workers share during a reload.
-- The consumer is another process (consumer.lua, or Python) that opens the channel
--   by name; it is not part of nginx.
--
-- Nothing here blocks: every channel call uses timeout 0 and waits with ngx.sleep.

local ffi = require "ffi"
local ringmpsc = require "ringmpsc"
local record = require "ringmpsc_demo_record"

local ngx = ngx
local ffi_cast, ffi_string = ffi.cast, ffi.string

local _M = {}

local ch          -- channel handle, made in the master, inherited by every worker
local conf        -- options given to init()
local dict        -- lua_shared_dict: per-pid sent counts, the stop flag

-- This process's producer and sequence counter. `pid` detects a new process: a
-- state inherited through fork is never reused.
local my = { pid = nil, p = nil, seq = 0, retired = false }
local scratch = ffi.new(record.t)

local defaults = {
	capacity = 4096,
	max_producers = 8,
	batch = 64,            -- records per reservation in the timer
	interval = 0.002,      -- seconds between timer batches
	exit_grace = 1.0,      -- seconds a shutting-down worker keeps producing
	dict = "ringmpsc_demo",
}

function _M.init(opts)
	conf = {}
	for k, v in pairs(defaults) do
		conf[k] = v
	end
	for k, v in pairs(opts or {}) do
		conf[k] = v
	end
	assert(type(conf.name) == "string", "ringmpsc_demo.init: name is required")
	local c, err = ringmpsc.open(conf.name)
	if not c then
		c, err = ringmpsc.new {
			record_size = record.SIZE,
			capacity = conf.capacity,
			max_producers = conf.max_producers,
			name = conf.name,
		}
		if not c and err:find("File exists", 1, true) then
			c, err = ringmpsc.open(conf.name) -- lost a creation race
		end
	end
	if not c then
		error("ringmpsc_demo: channel " .. conf.name .. ": " .. err .. " (" .. ringmpsc.last_error() .. ")")
	end
	if c.record_size ~= record.SIZE then
		error("ringmpsc_demo: channel " .. conf.name .. " has record_size " .. c.record_size)
	end
	ch = c
end

local function producer()
	local pid = ngx.worker.pid()
	if my.pid ~= pid then
		my.pid, my.p, my.seq, my.retired = pid, nil, 0, false
	end
	if my.p then
		return my.p
	end
	if my.retired then
		return nil, "retired"
	end
	local p, err = ch:producer()
	if not p then
		return nil, err -- "no slot" while old workers still hold theirs: retry later
	end
	my.p = p
	ngx.log(ngx.INFO, "ringmpsc_demo: pid ", pid, " registered producer slot ", p.slot)
	return p
end

local function count_sent()
	dict:set("sent:" .. my.pid, my.seq)
end

-- One reservation of up to k records. Returns the number sent, or nil, err.
local function produce_batch(k, flags)
	local p, err = producer()
	if not p then
		return nil, err
	end
	local ptr, n = p:reserve(k)
	if not ptr then
		return nil, n
	end
	local recs = ffi_cast(record.ptr_t, ptr)
	local pid, seq, wid = my.pid, my.seq, ngx.worker.id() or 0
	for i = 0, n - 1 do
		record.fill(recs[i], pid, seq + 1 + i, flags, wid)
	end
	local ok, cerr = p:commit(n) -- cannot fail for a reservation we hold
	if not ok then
		return nil, cerr
	end
	my.seq = seq + n
	count_sent()
	return n
end

-- One record through p:send (a Lua string), waiting with ngx.sleep while full.
local function produce_one(flags, max_wait)
	local waited = 0
	while true do
		-- (Re)build after every sleep: the timer may have sent meanwhile.
		local p, err = producer()
		if not p then
			return nil, err
		end
		record.fill(scratch, my.pid, my.seq + 1, flags, ngx.worker.id() or 0)
		local ok, serr = p:send(ffi_string(scratch, record.SIZE))
		if ok then
			break
		end
		if serr ~= "full" or waited >= max_wait then
			return nil, serr
		end
		ngx.sleep(0.001)
		waited = waited + 0.001
	end
	my.seq = my.seq + 1
	count_sent()
	return 1
end

local function retire()
	if my.pid == ngx.worker.pid() and my.p then
		my.p:close() -- deregister; the consumer frees the slot once drained
		my.p = nil
	end
	my.retired = true
end

local function producer_loop(premature)
	if premature then
		return
	end
	local exiting_since
	while not dict:get("stop") do
		local flags = 0
		if ngx.worker.exiting() then
			-- Keep producing a while during a reload/quit: records of workers that are
			-- shutting down must arrive like any other.
			ngx.update_time()
			exiting_since = exiting_since or ngx.now()
			if ngx.now() - exiting_since >= conf.exit_grace then
				break
			end
			flags = record.FLAG_EXITING
		end
		local n, err = produce_batch(conf.batch, flags)
		if not n and err ~= "full" and err ~= "no slot" then
			if err ~= "closed" then
				ngx.log(ngx.ERR, "ringmpsc_demo: produce: ", err)
			end
			break
		end
		ngx.sleep(conf.interval)
	end
	if ngx.worker.exiting() then
		retire()
	end
end

function _M.init_worker()
	dict = ngx.shared[conf.dict]
	local ok, err = ngx.timer.at(0, producer_loop)
	if not ok then
		ngx.log(ngx.ERR, "ringmpsc_demo: timer: ", err)
	end
end

function _M.exit_worker()
	retire()
end

-- GET /produce?n=K: K records with p:send from this request.
function _M.handle_produce()
	local n = tonumber(ngx.var.arg_n) or 1
	local flags = record.FLAG_REQUEST + (ngx.worker.exiting() and record.FLAG_EXITING or 0)
	local sent = 0
	for _ = 1, n do
		local ok, err = produce_one(flags, 1.0)
		if not ok then
			ngx.status = 503
			ngx.say("error ", err, " after ", sent)
			return
		end
		sent = sent + 1
	end
	ngx.say("sent ", sent, " pid ", ngx.worker.pid())
end

-- GET /stop: every producer loop ends.
function _M.handle_stop()
	dict:set("stop", true)
	ngx.say("stopped")
end

-- GET /counts: "pid sent" per producing process, from the shared dict (which
-- survives reloads and worker deaths; a worker killed between a commit and this
-- update is behind by at most one batch).
function _M.handle_counts()
	for _, key in ipairs(dict:get_keys(0)) do
		local pid = key:match("^sent:(%d+)$")
		if pid then
			ngx.say(pid, " ", dict:get(key))
		end
	end
end

-- GET /stats: the channel's figures.
function _M.handle_stats()
	local st = assert(ch:stats())
	ngx.say("committed ", st.committed, " consumed ", st.consumed, " pending ", st.pending,
		" active ", st.active_producers, " consumer_pid ", st.consumer_pid,
		" reclaimed_slots ", st.reclaimed_slots)
	for _, r in ipairs(st.rings) do
		ngx.say("slot ", r.slot, " ", r.state, " pid ", r.owner_pid, " alive ", tostring(r.owner_alive),
			" pending ", r.pending)
	end
end

return _M
