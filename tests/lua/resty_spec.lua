-- busted --lua=luajit specs for lua/resty/ringmpsc.lua outside nginx: a stand-in `ngx`
-- (worker pid, id and count, the clock, the log) lets one process play the master and
-- its workers, deterministically. tests/lua/resty_test.py runs the library in nginx.
local H = require "helpers"

-- What the stand-in reports; each test sets what it needs.
local W = { pid = 1000000, id = 0, count = 2, now = 1000, exiting = false }
local logs = {}

local fake_ngx = {
	ERR = 4, WARN = 5, NOTICE = 6, DEBUG = 8,
	log = function(level, ...)
		local parts = { ... }
		for i = 1, select("#", ...) do
			parts[i] = tostring(parts[i])
		end
		logs[#logs + 1] = { level = level, msg = table.concat(parts) }
	end,
	now = function() return W.now end,
	sleep = function() end,
	timer = { at = function() return true end },
	worker = {
		pid = function() return W.pid end,
		id = function() return W.id end,
		count = function() return W.count end,
		exiting = function() return W.exiting end,
	},
}

-- A fresh copy of the library, as a new Lua VM (a reload) loads it.
local function load_resty()
	package.loaded["resty.ringmpsc"] = nil
	local saved = rawget(_G, "ngx")
	rawset(_G, "ngx", fake_ngx)
	local ok, m = pcall(require, "resty.ringmpsc")
	rawset(_G, "ngx", saved)
	assert(ok, m)
	return m
end

local function logged(pattern)
	for _, l in ipairs(logs) do
		if l.msg:find(pattern) then
			return l
		end
	end
end

before_each(function()
	W.pid, W.id, W.count, W.now, W.exiting = 1000000, 0, 2, 1000, false
	logs = {}
end)

after_each(function()
	H.remove_names()
end)

describe("resty.ringmpsc configure", function()
	it("reopens a channel made with the default max_producers after worker_processes changed", function()
		local name = H.name("workers")
		local m = load_resty()
		local s = assert(m.configure(name, { record_size = 16, capacity = 8 }))
		assert.equal(8, s.channel.max_producers) -- 4 x 2 workers
		s.channel:release()
		-- nginx.conf now says worker_processes 3; the channel keeps its 8 slots
		W.count = 3
		m = load_resty()
		local s2, err = m.configure(name, { record_size = 16, capacity = 8 })
		assert.is_truthy(s2, err)
		assert.equal(8, s2.channel.max_producers)
		m.init_worker() -- worker 0: the sizing check says 8 < 3 x 3
		assert.is_truthy(logged("max_producers 8 < worker_processes 3 x 3"))
		s2.channel:release()
		-- a max_producers that is configured must still match
		m = load_resty()
		local s3, err3 = m.configure(name, { record_size = 16, capacity = 8, max_producers = 12 })
		assert.is_nil(s3)
		assert.matches("max_producers 8 (configured: 12)", err3, 1, true)
	end)

	it("refuses a channel that was closed for good, saying how to resolve it", function()
		local name = H.name("closed")
		local m = load_resty()
		local s = assert(m.configure(name, { record_size = 16, capacity = 8 }))
		s.channel:close() -- say, to let the consumer drain it and exit
		s.channel:release()
		m = load_resty()
		local s2, err = m.configure(name, { record_size = 16, capacity = 8 })
		assert.is_nil(s2)
		assert.matches("is closed", err, 1, true)
		assert.matches("unlink " .. name, err, 1, true)
	end)
end)

describe("resty.ringmpsc drops", function()
	it("counts in the channel, at exit, what a worker dropped while it had no slot", function()
		local name = H.name("carried")
		local m = load_resty()
		local s = assert(m.configure(name, { record_size = 16, capacity = 8, max_producers = 1 }))
		m.init_worker()
		local holder = assert(s.channel:producer()) -- an old generation's worker holds the only slot
		local ok, err = s:send("x")
		assert.is_nil(ok)
		assert.equal("no slot", err)
		assert.equal(0, s.channel:stats().dropped)
		holder:close() -- it exits; the slot is free (nothing committed)
		m.exit_worker() -- this worker exits before sending again
		assert.equal(1, s.channel:stats().dropped)
		s.channel:release()
	end)
end)
