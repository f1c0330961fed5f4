-- Coalesced wake-ups and the readiness fd from LuaJIT: the knobs (round trip,
-- bad arguments raise, out-of-range values are nil, err), and the arm/drain
-- protocol with poll(2) on the fd: quiet while armed and empty, readable on the
-- first record (coalescing off) or at min_records (on), and on close.
local ffi = require "ffi"
local ringmpsc = require "ringmpsc"

ffi.cdef [[
struct rmpsc_test_pollfd { int fd; short events; short revents; };
int poll(struct rmpsc_test_pollfd *fds, unsigned long nfds, int timeout);
]]

local function readable(fd, timeout_ms)
	local p = ffi.new("struct rmpsc_test_pollfd[1]")
	p[0].fd = fd
	p[0].events = 1 -- POLLIN
	local r = ffi.C.poll(p, 1, timeout_ms or 0)
	assert(r >= 0, "poll failed")
	return r == 1 and bit.band(p[0].revents, 1) ~= 0
end

describe("coalesced wake-ups", function()
	it("defaults, round trip, and bad values", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 64 })
		local k, t = ch:coalescing()
		assert.same({ 32, 0.001 }, { k, t })
		assert.is_true(ch:coalesce(8, 0.005))
		k, t = ch:coalescing()
		assert.same(8, k)
		assert.near(0.005, t, 1e-12)
		assert.same({ nil, "invalid" }, { ch:coalesce(8, 5) }) -- more than a second
		assert.matches("max_delay_ns", ringmpsc.last_error())
		assert.has_error(function() ch:coalesce(-1, 0.001) end)
		assert.has_error(function() ch:coalesce(8, "soon") end)
		assert.has_error(function() ch:coalesce(8, 0 / 0) end)
		ch:release()
	end)

	it("is a setting of each consumer handle", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 64, max_consumers = 2 })
		local c = assert(ch:consumer("other"))
		assert.is_true(c:coalesce(4, 0.002))
		assert.same(32, (ch:coalescing()))
		assert.same(4, (c:coalescing()))
		c:close()
		ch:release()
	end)
end)

describe("the readiness fd", function()
	it("follows the arm/drain protocol", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 64 })
		assert.is_true(ch:coalesce(1, 0))
		local p = assert(ch:producer())
		assert.same({ nil, "invalid" }, { ch:ready_arm() }) -- no fd yet
		local fd = assert(ch:ready_fd())
		assert.are_not.equal(ch:fd(), fd)
		local wait = ch:ready_arm()
		assert.is_true(wait > 0 and wait <= 1, "armed: a bounded wait, got " .. tostring(wait))
		assert.is_false(readable(fd))
		assert(p:send("one"))
		assert.is_true(readable(fd, 1000))
		assert.same(0, ch:ready_arm()) -- records are there: do not wait
		assert.is_false(readable(fd)) -- and it was drained
		assert.same("one\0\0\0\0\0", ch:recv())
		assert.same({ nil, "empty" }, { ch:recv() })
		assert.is_true(ch:ready_arm() > 0)
		ch:ready_disarm()
		assert(p:send("two"))
		assert.is_false(readable(fd)) -- disarmed: nobody woke it
		assert.same(0, ch:ready_arm())
		assert.same("two\0\0\0\0\0", ch:recv())
		assert.is_true(ch:ready_arm() > 0)
		ch:close()
		assert.is_true(readable(fd, 1000))
		assert.same(0, ch:ready_arm())
		assert.same({ nil, "closed" }, { ch:recv() })
		p:close()
		ch:release()
	end)

	it("lingers for min_records with coalescing on", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 64 })
		assert.is_true(ch:coalesce(3, 0.5))
		local p = assert(ch:producer())
		local fd = assert(ch:ready_fd())
		local wait = ch:ready_arm()
		assert.is_true(wait > 0 and wait <= 0.5, "a bounded linger, got " .. tostring(wait))
		assert(p:send("a"))
		assert(p:send("b"))
		assert.is_false(readable(fd))
		assert(p:send("c"))
		assert.is_true(readable(fd, 1000))
		assert.same(0, ch:ready_arm())
		local st = ch:stats()
		assert.is_true(st.consumer_wakes >= 1)
		p:close()
		ch:release()
	end)
end)
