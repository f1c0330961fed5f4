-- resty.ringmpsc: ship events out of nginx workers through a ringmpsc channel.
--
--   init_by_lua:        local events = assert(require("resty.ringmpsc").configure("events", {
--                           record_size = 128, capacity = 8192, mode = "0660", group = "www-data" }))
--   init_worker_by_lua: require("resty.ringmpsc").init_worker()
--                       (and, for a consumer inside nginx, events:consume(handler, { worker = 0 }))
--   any phase:          require("resty.ringmpsc").get("events"):send(record)
--   exit_worker_by_lua: require("resty.ringmpsc").exit_worker()
--
-- The channel is created (or opened, and its geometry verified) in the master, so every
-- worker inherits the mapping through fork. Each worker process registers its own
-- producer on its first send (per pid: during a reload old and new workers share
-- ngx.worker.id()). A send never waits: nginx's log phase cannot yield, and a worker
-- that blocks stalls every connection it serves. A record that does not fit is dropped
-- and counted in the channel (stats(): dropped, full_events), with at most one log line
-- per worker per log_interval. README.md, "OpenResty and LuaJIT", says how to size the channel.
local ringmpsc = require "ringmpsc"

local ngx = ngx
local ngx_log, ERR, WARN, NOTICE = ngx.log, ngx.ERR, ngx.WARN, ngx.NOTICE
local worker_pid, ngx_now = ngx.worker.pid, ngx.now
local type, tostring, pcall, error, setmetatable = type, tostring, pcall, error, setmetatable
local math_min, math_max = math.min, math.max

local _M = { _VERSION = ringmpsc._VERSION }

local shippers = {} -- name -> shipper, made by configure
local names = {}    -- the same, in order (no pairs() in loops run at exit: LuaJIT #1000)

local Shipper = {}
Shipper.__index = Shipper

-- Fixed when the channel is created; a reopen must agree on each.
local GEOMETRY = { "record_size", "capacity", "max_producers", "slab_size", "slab_count", "max_consumers",
	"max_groups" }

local DEFAULTS = {
	capacity = 4096,
	max_consumers = 4,   -- an in-nginx consumer of each of two generations during a reload, and two more
	generations = 3,     -- worker generations alive at once during quick reloads (the sizing check)
	log_interval = 10,   -- seconds between a worker's log lines about drops
}

local function worker_count()
	local ok, n = pcall(ngx.worker.count)
	return ok and n or nil
end

local function octal(mode)
	return mode and string.format("%04o", mode) or "?"
end

-- The geometry this configuration asks for, as the channel would report it.
local function wanted_geometry(opts, workers)
	local g = {
		record_size = opts.record_size,
		capacity = opts.capacity,
		max_producers = opts.max_producers or math_max(8, (workers or 4) * 4),
		slab_size = opts.slab_size or 0,
		slab_count = opts.slab_count or 0,
		max_consumers = opts.max_consumers,
	}
	g.max_groups = opts.max_groups or math_min(g.max_consumers, 64)
	return g
end

local function mismatch_error(name, ch, want)
	local diffs = {}
	for i = 1, #GEOMETRY do
		local k = GEOMETRY[i]
		if ch[k] ~= want[k] then
			diffs[#diffs + 1] = k .. " " .. tostring(ch[k]) .. " (configured: " .. tostring(want[k]) .. ")"
		end
	end
	if #diffs == 0 then
		return nil
	end
	return "channel " .. name .. " exists with other geometry: " .. table.concat(diffs, ", ")
		.. ". A channel's geometry is fixed when it is created. Either configure what it has, or"
		.. " retire it: stop nginx, let its consumers drain it (python -m ringmpsc info " .. name
		.. " shows what is pending), remove it (python -m ringmpsc unlink " .. name .. ", or rm /dev/shm/"
		.. name .. ") and start nginx again; or give the new geometry a new name."
end

-- configure(name, opts) -> shipper | nil, err. In init_by_lua (the master).
-- opts: record_size (required), capacity, max_producers, slab_size, slab_count,
-- max_consumers, max_groups (the channel's geometry), mode, group (the region file's
-- permissions, at creation), generations, log_interval.
function _M.configure(name, opts)
	if type(name) ~= "string" then
		error("bad argument #1 to 'configure' (string expected, got " .. type(name) .. ")", 2)
	end
	if type(opts) ~= "table" then
		error("bad argument #2 to 'configure' (table expected, got " .. type(opts) .. ")", 2)
	end
	if type(opts.record_size) ~= "number" then
		error("bad argument #2 to 'configure' (record_size is required)", 2)
	end
	local o = {}
	for k, v in pairs(DEFAULTS) do
		o[k] = v
	end
	for k, v in pairs(opts) do
		o[k] = v
	end
	local workers = worker_count()
	local want = wanted_geometry(o, workers)
	local ch, err = ringmpsc.open(name)
	local created = false
	if not ch and err:find("No such file", 1, true) then
		ch, err = ringmpsc.new {
			name = name, record_size = want.record_size, capacity = want.capacity,
			max_producers = want.max_producers, slab_size = want.slab_size, slab_count = want.slab_count,
			max_consumers = want.max_consumers, max_groups = want.max_groups, mode = o.mode, group = o.group,
		}
		created = ch ~= nil
		if not ch and err:find("exists", 1, true) then
			ch, err = ringmpsc.open(name) -- another master made it meanwhile
		end
	end
	if not ch then
		return nil, "channel " .. name .. ": " .. tostring(err) .. " (" .. ringmpsc.last_error() .. ")"
	end
	if not created and opts.max_producers == nil then
		-- The default follows worker_processes, which may have changed since the channel
		-- was made: it keeps its slots (init_worker's sizing check warns when too few).
		want.max_producers = ch.max_producers
	end
	local merr = mismatch_error(name, ch, want)
	if merr then
		ch:release()
		return nil, merr
	end
	if ch:is_closed() then
		-- Closed for good (to let a consumer drain it and exit, say): every send would drop.
		ch:release()
		return nil, "channel " .. name .. " is closed: nothing can be sent to it any more. Let its consumers"
			.. " drain it, remove it (python -m ringmpsc unlink " .. name .. ") and start nginx again; or"
			.. " use a new name."
	end
	if not created and o.mode then
		local m = tonumber(o.mode, 8)
		if m ~= ch.mode then
			ngx_log(WARN, "resty.ringmpsc: channel ", name, " exists with mode ", octal(ch.mode),
				", configured ", octal(m), ": a mode is set at creation only (chmod /dev/shm/", name, ")")
		end
	end
	local s = setmetatable({
		name = name,
		channel = ch,
		record_size = ch.record_size,
		generations = o.generations,
		log_interval = o.log_interval,
		-- this process's producer state; a pid other than ours means inherited through fork
		_pid = nil,
		_p = nil,
		_closed = false,        -- exit_worker closed it: no new producer in this process
		_next_register = 0,     -- ngx.now() before which no new registration is tried
		_carried_drops = 0,     -- drops while this process had no slot, counted once it has one
		_unlogged = 0,          -- drops not yet in a log line
		_last_log = -math.huge,
		_last_err = nil,
	}, Shipper)
	if not shippers[name] then
		names[#names + 1] = name
	end
	shippers[name] = s
	ngx_log(NOTICE, "resty.ringmpsc: channel ", name, created and " created" or " opened", ": record_size ",
		ch.record_size, ", capacity ", ch.capacity, ", max_producers ", ch.max_producers, ", max_consumers ",
		ch.max_consumers, ", mode ", octal(ch.mode))
	return s
end

-- get(name) -> the shipper configure made, or nil, err.
function _M.get(name)
	local s = shippers[name]
	if not s then
		return nil, "channel " .. tostring(name) .. " is not configured (resty.ringmpsc.configure in init_by_lua)"
	end
	return s
end

-- The sizing check, once per worker: during a reload the old workers keep their slots
-- while the new ones register, so slots must cover several generations.
local function check_sizing(s)
	local workers = worker_count()
	if not workers then
		return
	end
	local need = workers * s.generations
	if s.channel.max_producers < need then
		ngx_log(WARN, "resty.ringmpsc: channel ", s.name, ": max_producers ", s.channel.max_producers,
			" < worker_processes ", workers, " x ", s.generations, " generations: during reloads new",
			" workers may find every slot held by old ones still finishing, and drop their records",
			" (counted) until a slot frees. A new channel (geometry is fixed) with max_producers >= ", need,
			" avoids it.")
	end
end

-- init_worker(): in init_worker_by_lua. Resets what the worker inherited from the master
-- and checks the sizing (worker 0 logs).
function _M.init_worker()
	for i = 1, #names do
		local s = shippers[names[i]]
		s._pid, s._p, s._closed = worker_pid(), nil, false
		if ngx.worker.id() == 0 then
			check_sizing(s)
		end
	end
end

local function log_drops(s, err, final)
	local now = ngx_now()
	if s._unlogged > 0 and (final or now - s._last_log >= s.log_interval) then
		local why = err or s._last_err -- the final report (exit) has no err of its own
		local stats = s.channel:stats()
		ngx_log(why == "full" and WARN or ERR, "resty.ringmpsc: channel ", s.name, ": ", s._unlogged,
			" record(s) dropped by this worker since its last report (", why, "); ",
			stats and stats.dropped or "?", " dropped in the channel in all")
		s._unlogged, s._last_log = 0, now
	end
end

-- This process's producer (the send path's one check: the pid, then the handle),
-- registered now if it has none (at most every 0.1 s while
-- the channel has no free slot). nil, err when there is none.
local function producer(s)
	local pid = worker_pid()
	if s._pid ~= pid then
		s._pid, s._p, s._closed, s._carried_drops, s._unlogged = pid, nil, false, 0, 0
	end
	local p = s._p
	if p then
		return p
	end
	if s._closed then
		return nil, "closed"
	end
	local now = ngx_now()
	if now < s._next_register then
		return nil, "no slot"
	end
	local err
	p, err = s.channel:producer()
	if not p then
		s._next_register = now + 0.1
		return nil, err
	end
	s._p = p
	if s._carried_drops > 0 then
		p:count_dropped(s._carried_drops)
		s._carried_drops = 0
	end
	return p
end

local function dropped(s, n, err)
	local p = s._p
	if p then
		p:count_dropped(n)
	else
		s._carried_drops = s._carried_drops + n
	end
	s._unlogged = s._unlogged + n
	s._last_err = err
	if ngx_now() - s._last_log >= s.log_interval then
		log_drops(s, err)
	end
	return nil, err
end

-- s:send(str) -> true | nil, err. One record (#str <= record_size, zero-filled). Never
-- waits; safe in every phase. A record that cannot be sent ("full", "no slot", "too
-- long", "closed", ...) is counted as dropped.
function Shipper:send(str)
	local p, err = producer(self)
	if not p then
		return dropped(self, 1, err)
	end
	local ok, serr = p:send(str)
	if ok then
		return true
	end
	return dropped(self, 1, serr)
end

-- s:reserve(k) -> ptr, n | nil, err: up to k records to fill in place, then
-- s:commit(n). Never waits. A failed reserve counts k records as dropped.
function Shipper:reserve(k)
	local p, err = producer(self)
	if not p then
		return dropped(self, k, err)
	end
	local ptr, n = p:reserve(k)
	if ptr then
		return ptr, n
	end
	return dropped(self, k, n)
end

-- s:commit(n) -> true | nil, err: publish n records of the open reservation (0 aborts).
function Shipper:commit(n)
	local p = self._p
	if not p or self._pid ~= worker_pid() then
		return nil, "no reservation is open in this process"
	end
	return p:commit(n)
end

-- s:stats() -> table, from any worker (or any process, through the channel): sent
-- (records committed over the channel's life), dropped, full_events (runs of drops with
-- no record sent in between), pending, consumed, active_producers, max_producers, and
-- `channel`: the channel's whole stats() table.
function Shipper:stats()
	local st, err = self.channel:stats()
	if not st then
		return nil, err
	end
	return {
		sent = st.committed,
		dropped = st.dropped + (self._pid == worker_pid() and self._carried_drops or 0),
		full_events = st.drop_episodes,
		pending = st.pending,
		consumed = st.consumed,
		active_producers = st.active_producers,
		max_producers = st.max_producers,
		channel = st,
	}
end

-- Close this worker's producer: committed records stay for the consumers, the slot
-- is freed once they are drained. Later sends in this process are dropped ("closed").
function Shipper:close_producer()
	if self._pid == worker_pid() then
		if not self._p and self._carried_drops > 0 then
			-- Drops while this worker had no slot: into the channel now, if one is free.
			local p = self.channel:producer()
			if p then
				p:count_dropped(self._carried_drops)
				self._p, self._carried_drops = p, 0
			end
		end
		if self._p then
			self._p:close()
			self._p = nil
		end
		log_drops(self, nil, true)
	end
	self._pid, self._closed = worker_pid(), true
end

-- exit_worker(): in exit_worker_by_lua. Every channel's producer of this worker is
-- closed, and drops not yet logged are.
function _M.exit_worker()
	for i = 1, #names do
		shippers[names[i]]:close_producer()
	end
end

---------------------------------------------------------------------------
-- The consumer inside nginx: a timer in one worker that never blocks the event loop.

local consume_defaults = {
	worker = 0,            -- ngx.worker.id() of the worker that consumes
	group = nil,           -- consumer group; nil: the default group (a named one: see lua/README.md)
	batch = 256,           -- records handed to the handler at most at once
	min_interval = 0.001,  -- seconds: the first idle wait after records came
	max_interval = 0.05,   -- seconds: idle waits double up to this
}

-- s:consume(handler [, opts]) -> true | nil, err. In init_worker_by_lua. In the chosen
-- worker, a timer reads the channel as a member of `group` and calls
-- handler(ptr, n, record_size, consumer) for each batch of up to `batch` records
-- (ptr: const uint8_t*, valid during the call). The handler returns how many it
-- consumed (nil: all); the rest, and the whole batch when it raises, is handed to it
-- again after an idle wait (at least once). A turn handles up to `batch` records
-- (from several rings); after a full turn the timer yields to the event loop and reads
-- on, after one that emptied the channel it sleeps min_interval, and while the channel
-- stays empty it sleeps (ngx.sleep) from min_interval doubling up to max_interval, so
-- an idle consumer costs a wake-up every max_interval. A worker shutting down (reload,
-- quit) leaves the group at its next turn, and a dead one's unconsumed batch goes to
-- another member: with max_consumers >= 2 the next generation's consumer joins while
-- the old one leaves.
function Shipper:consume(handler, opts)
	if type(handler) ~= "function" then
		error("bad argument #1 to 'consume' (function expected, got " .. type(handler) .. ")", 2)
	end
	local o = {}
	for k, v in pairs(consume_defaults) do
		o[k] = v
	end
	for k, v in pairs(opts or {}) do
		o[k] = v
	end
	if ngx.worker.id() ~= o.worker then
		return true
	end
	local s = self
	local rs = s.record_size
	local function loop(premature)
		if premature then
			return
		end
		local c, err
		local wait = o.min_interval
		while not c do
			c, err = s.channel:consumer(o.group)
			if c then
				break
			end
			if ngx.worker.exiting() then
				return
			end
			-- "consumer busy": every member place is held (an old generation's consumer
			-- that has not left yet, with max_consumers = 1).
			ngx_log(wait == o.min_interval and NOTICE or ngx.DEBUG, "resty.ringmpsc: channel ", s.name,
				": consumer: ", err, " (", ringmpsc.last_error(), "); retrying")
			ngx.sleep(wait)
			wait = math_min(wait * 2, o.max_interval)
		end
		ngx_log(NOTICE, "resty.ringmpsc: channel ", s.name, ": consuming in worker pid ", worker_pid())
		-- One turn: read spans (one ring's contiguous records each) until the channel is
		-- empty or `batch` records were handled, then give the event loop back: at once
		-- when the turn was full (more may wait), after min_interval when it drained
		-- the channel (under a steady trickle, a read of a few records per event-loop
		-- turn would be CPU of this worker for nothing), doubling up to max_interval
		-- while it stays empty.
		wait = o.min_interval
		local closed = false
		while not closed and not ngx.worker.exiting() do
			local handled, failed, err_n = 0, false, nil
			while handled < o.batch do
				local ptr, n = c:read(o.batch - handled)
				if not ptr then
					err_n = n
					break
				end
				local ok, taken = pcall(handler, ptr, n, rs, c)
				if not ok then
					ngx_log(ERR, "resty.ringmpsc: channel ", s.name, ": consumer handler: ", taken,
						" (the batch is handed over again)")
					taken = 0
				elseif taken == nil then
					taken = n
				end
				if type(taken) ~= "number" or taken < 0 or taken > n or taken % 1 ~= 0 then
					ngx_log(ERR, "resty.ringmpsc: channel ", s.name, ": consumer handler returned ",
						tostring(taken), ", not a count in 0..", n, "; taking none")
					taken = 0
				end
				c:advance(taken) -- the rest stays this member's: read again next time
				handled = handled + taken
				if taken < n then
					failed = true
					break
				end
			end
			if failed then
				ngx.sleep(wait) -- the handler refused some: it gets them again, not at once
				wait = math_min(wait * 2, o.max_interval)
			elseif handled >= o.batch then
				wait = o.min_interval
				ngx.sleep(0)
			elseif err_n == "empty" then
				if handled > 0 then
					wait = o.min_interval
				end
				ngx.sleep(wait)
				wait = math_min(wait * 2, o.max_interval)
			elseif err_n == "closed" then
				closed = true
			else
				ngx_log(ERR, "resty.ringmpsc: channel ", s.name, ": consumer read: ", err_n)
				ngx.sleep(o.max_interval)
			end
		end
		c:close() -- leave the group now: the next generation's consumer takes over
	end
	local ok, err = ngx.timer.at(0, loop)
	if not ok then
		return nil, "consumer timer: " .. tostring(err)
	end
	return true
end

return _M
