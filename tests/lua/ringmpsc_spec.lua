-- busted --lua=luajit specs for lua/ringmpsc.lua: every API function, bad input,
-- close semantics, handle life cycle. Processes (fork) for the multi-process parts.
local ffi = require "ffi"
local ringmpsc = require "ringmpsc"
local H = require "helpers"

after_each(function()
	H.remove_names()
end)

local function zeros(n)
	return string.rep("\0", n)
end

local function padded(s, n)
	return s .. zeros(n - #s)
end

describe("ringmpsc.new", function()
	it("creates an anonymous channel with its geometry as fields", function()
		local ch = assert(ringmpsc.new { record_size = 48, capacity = 64, max_producers = 3 })
		assert.equal(48, ch.record_size)
		assert.equal(64, ch.capacity)
		assert.equal(3, ch.max_producers)
		assert.equal(0, ch.slab_size)
		assert.is_nil(ch.name)
		assert.is_true(ch:fd() >= 0)
		assert.is_false(ch:is_closed())
		assert.equal(0, ch:pending())
		ch:release()
	end)

	it("uses defaults for capacity and max_producers", function()
		local ch = assert(ringmpsc.new { record_size = 8 })
		assert.equal(1024, ch.capacity)
		assert.equal(16, ch.max_producers)
		ch:release()
	end)

	it("creates a named channel that another handle opens", function()
		local name = H.name("named")
		local ch = assert(ringmpsc.new { record_size = 16, capacity = 8, name = name })
		assert.equal("/" .. name, ch.name)
		local ch2 = assert(ringmpsc.open(name))
		assert.equal(16, ch2.record_size)
		assert.equal(8, ch2.capacity)
		local p = assert(ch2:producer())
		assert.is_true(p:send("other handle"))
		assert.equal(padded("other handle", 16), ch:recv())
		p:close()
		ch2:release()
		ch:release()
		assert.is_true(ringmpsc.unlink(name))
	end)

	it("returns 'invalid' for bad geometry, with the detail in last_error()", function()
		local cases = {
			{ record_size = 0 },
			{ record_size = 70000 },
			{ record_size = -1 },
			{ record_size = 1.5 },
			{ record_size = 8, capacity = 1000 },
			{ record_size = 8, capacity = 1 },
			{ record_size = 8, max_producers = 0 },
			{ record_size = 8, max_producers = 5000 },
			{ record_size = 8, slab_size = 64 },
			{ record_size = 8, capacity = 2 ^ 40 },
		}
		for _, cfg in ipairs(cases) do
			local ch, err = ringmpsc.new(cfg)
			assert.is_nil(ch)
			assert.equal("invalid", err)
		end
		ringmpsc.new { record_size = 8, capacity = 1000 }
		assert.matches("capacity", ringmpsc.last_error())
	end)

	it("raises on wrong argument types", function()
		assert.has_error(function() ringmpsc.new() end)
		assert.has_error(function() ringmpsc.new("64") end)
		assert.has_error(function() ringmpsc.new {} end)
		assert.has_error(function() ringmpsc.new { record_size = "64" } end)
		assert.has_error(function() ringmpsc.new { record_size = 64, capacity = {} } end)
		assert.has_error(function() ringmpsc.new { record_size = 64, name = 5 } end)
		assert.has_error(function() ringmpsc.new { record_size = 64, interruptible = "yes" } end)
		assert.has_error(function() ringmpsc.new { record_size = 64, full_fences = 1 } end)
	end)

	it("makes full-fence channels on request, and they carry records", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4, full_fences = true })
		local p = assert(ch:producer())
		assert.is_true(p:send("12345678"))
		assert.equals("12345678", ch:recv(0))
		p:close()
		ch:release()
	end)

	it("never overwrites an existing name", function()
		local name = H.name("exists")
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4, name = name })
		local ch2, err = ringmpsc.new { record_size = 8, capacity = 4, name = name }
		assert.is_nil(ch2)
		assert.matches("^system: .*[Ee]xists", err)
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("sets the region file's mode and group exactly, and reports them", function()
		local name = H.name("mode")
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4, name = name, mode = "0660" })
		assert.equal(tonumber("660", 8), ch.mode)
		local ch2 = assert(ringmpsc.open(name))
		assert.equal(tonumber("660", 8), ch2.mode)
		assert.equal(ch.gid, ch2.gid)
		ch2:release()
		ch:release()
		ringmpsc.unlink(name)
		ch = assert(ringmpsc.new { record_size = 8, capacity = 4, name = name, mode = "664" })
		assert.equal(tonumber("664", 8), ch.mode)
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("refuses bad modes and groups with 'invalid' and a message, creating nothing", function()
		local name = H.name("badmode")
		for _, case in ipairs {
			{ { mode = "0440" }, "owner needs read and write" },
			{ { mode = "rw" }, "not an octal mode" },
			{ { mode = "01777" }, "not an octal mode" },
			{ { group = "no-such-group-ringmpsc" }, "does not exist" },
			{ { group = 0 }, "not a gid" },
		} do
			local opts = { record_size = 8, name = name }
			for k, v in pairs(case[1]) do
				opts[k] = v
			end
			local ch, err = ringmpsc.new(opts)
			assert.is_nil(ch)
			assert.equal("invalid", err)
			assert.matches(case[2], ringmpsc.last_error(), 1, true)
			assert.is_nil(ringmpsc.open(name))
		end
		assert.has_error(function()
			ringmpsc.new { record_size = 8, group = {} }
		end)
		assert.has_error(function() -- 440 would be 0670: only strings say octal
			ringmpsc.new { record_size = 8, mode = 440 }
		end)
	end)

	it("rejects invalid names", function()
		local ch, err = ringmpsc.new { record_size = 8, name = "a/b" }
		assert.is_nil(ch)
		assert.equal("invalid", err)
		ch, err = ringmpsc.new { record_size = 8, name = "" }
		assert.is_nil(ch)
		assert.equal("invalid", err)
	end)
end)

describe("ringmpsc.open / unlink / attach_fd", function()
	it("open of a missing name is a system error", function()
		local ch, err = ringmpsc.open(H.name("missing"))
		assert.is_nil(ch)
		assert.matches("^system: shm_open: No such file", err)
	end)

	it("open of a region that is not a channel is 'corrupt'", function()
		local name = H.name("garbage")
		local f = assert(io.open("/dev/shm/" .. name, "wb"))
		f:write(string.rep("garbage!", 1024))
		f:close()
		local ch, err = ringmpsc.open(name)
		assert.is_nil(ch)
		assert.equal("corrupt", err)
		assert.matches("magic", ringmpsc.last_error())
		-- and a truncated one
		f = assert(io.open("/dev/shm/" .. name, "wb"))
		f:write("x")
		f:close()
		ch, err = ringmpsc.open(name)
		assert.is_nil(ch)
		assert.equal("corrupt", err)
		assert.is_true(ringmpsc.unlink(name))
	end)

	it("open of a truncated copy of a real channel is 'corrupt'", function()
		local name = H.name("trunc")
		local ch = assert(ringmpsc.new { record_size = 64, capacity = 64, name = name })
		local f = assert(io.open("/dev/shm/" .. name, "rb"))
		local head = f:read(4096)
		f:close()
		local copy = name .. "-copy"
		f = assert(io.open("/dev/shm/" .. copy, "wb"))
		f:write(head)
		f:close()
		local ch2, err = ringmpsc.open(copy)
		assert.is_nil(ch2)
		assert.equal("corrupt", err)
		assert.matches("truncated", ringmpsc.last_error())
		ringmpsc.unlink(copy)
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("unlink removes the name; the region lives on while mapped", function()
		local name = H.name("unlink")
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4, name = name })
		assert.is_true(ringmpsc.unlink(name))
		local ok, err = ringmpsc.unlink(name)
		assert.is_nil(ok)
		assert.matches("^system: ", err)
		local p = assert(ch:producer())
		assert.is_true(p:send("still"))
		assert.equal(padded("still", 8), ch:recv())
		ch:release()
	end)

	it("attach_fd shares the channel of an fd", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4 })
		local ch2 = assert(ringmpsc.attach_fd(ch:fd()))
		assert.equal(8, ch2.record_size)
		assert.is_not.equal(ch:fd(), ch2:fd()) -- dup'ed
		local p = assert(ch2:producer())
		assert.is_true(p:send("fd"))
		assert.equal(padded("fd", 8), ch:recv())
		ch2:release()
		ch:release()
		local bad, err = ringmpsc.attach_fd(-1)
		assert.is_nil(bad)
		assert.equal("invalid", err)
	end)

	it("raises on wrong argument types", function()
		assert.has_error(function() ringmpsc.open() end)
		assert.has_error(function() ringmpsc.open(5) end)
		assert.has_error(function() ringmpsc.open("x", "y") end)
		assert.has_error(function() ringmpsc.unlink({}) end)
		assert.has_error(function() ringmpsc.attach_fd("3") end)
	end)
end)

describe("send / recv", function()
	local ch, p
	before_each(function()
		ch = assert(ringmpsc.new { record_size = 16, capacity = 8, max_producers = 4 })
		p = assert(ch:producer())
	end)
	after_each(function()
		ch:release()
	end)

	it("zero-fills short records and keeps full-size ones", function()
		assert.is_true(p:send("abc"))
		assert.is_true(p:send(string.rep("z", 16)))
		assert.is_true(p:send(""))
		assert.equal(padded("abc", 16), ch:recv())
		assert.equal(string.rep("z", 16), ch:recv())
		assert.equal(zeros(16), ch:recv())
	end)

	it("keeps binary bytes (embedded zeros)", function()
		local s = "\0\1\2\255\0x"
		assert.is_true(p:send(s))
		assert.equal(padded(s, 16), ch:recv())
	end)

	it("refuses records longer than record_size with 'too long'", function()
		local ok, err = p:send(string.rep("x", 17))
		assert.is_nil(ok)
		assert.equal("too long", err)
		assert.equal(0, ch:pending())
	end)

	it("is FIFO per producer", function()
		for i = 1, 8 do
			assert.is_true(p:send(tostring(i)))
		end
		for i = 1, 8 do
			assert.equal(padded(tostring(i), 16), ch:recv())
		end
	end)

	it("delivers from several producers, FIFO within each", function()
		local ps = { p, assert(ch:producer()), assert(ch:producer()) }
		for round = 1, 5 do
			for k, q in ipairs(ps) do
				assert.is_true(q:send(k .. ":" .. round))
			end
		end
		local last = {}
		for _ = 1, 15 do
			local rec = assert(ch:recv())
			local k, round = rec:match("^(%d+):(%d+)")
			k, round = tonumber(k), tonumber(round)
			assert.equal((last[k] or 0) + 1, round)
			last[k] = round
		end
		assert.same({ 5, 5, 5 }, last)
		local rec, err = ch:recv()
		assert.is_nil(rec)
		assert.equal("empty", err)
	end)

	it("answers 'full' without a timeout and 'timeout' after one", function()
		for _ = 1, 8 do
			assert.is_true(p:send("x"))
		end
		local ok, err = p:send("x")
		assert.is_nil(ok)
		assert.equal("full", err)
		ok, err = p:send("x", 0)
		assert.is_nil(ok)
		assert.equal("full", err)
		local t0 = H.now()
		ok, err = p:send("x", 0.05)
		assert.is_nil(ok)
		assert.equal("timeout", err)
		assert.is_true(H.now() - t0 >= 0.045)
	end)

	it("answers 'empty' without a timeout and 'timeout' after one", function()
		local rec, err = ch:recv()
		assert.is_nil(rec)
		assert.equal("empty", err)
		local t0 = H.now()
		rec, err = ch:recv(0.05)
		assert.is_nil(rec)
		assert.equal("timeout", err)
		assert.is_true(H.now() - t0 >= 0.045)
	end)

	it("raises on wrong argument types", function()
		assert.has_error(function() p:send() end)
		assert.has_error(function() p:send(5) end)
		assert.has_error(function() p:send({}) end)
		assert.has_error(function() p:send("x", "1") end)
		assert.has_error(function() p:send("x", 0 / 0) end)
		assert.has_error(function() ch:recv("1") end)
		assert.has_error(function() ch:recv({}) end)
	end)

	it("send_many sends whole records from a string or a buffer", function()
		local s = padded("a", 16) .. padded("b", 16) .. padded("c", 16)
		assert.equal(3, p:send_many(s, 3))
		local buf = ffi.new("uint8_t[32]")
		ffi.copy(buf, padded("d", 16) .. padded("e", 16), 32)
		assert.equal(2, p:send_many(buf, 2))
		for _, c in ipairs { "a", "b", "c", "d", "e" } do
			assert.equal(padded(c, 16), ch:recv())
		end
		assert.same({ nil, "invalid" }, { p:send_many(s, 4) }) -- string too short for 4
		assert.same({ nil, "invalid" }, { p:send_many(s, 0) })
		assert.has_error(function() p:send_many(s) end)
		assert.has_error(function() p:send_many(5, 1) end)
		-- fills the ring, then 'full'
		assert.equal(8, p:send_many(string.rep("y", 16 * 8), 8))
		assert.same({ nil, "full" }, { p:send_many(padded("z", 16), 1) })
	end)
end)

describe("positions near 2^64", function()
	it("cross the u64 wrap without losing or reordering records", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_producers = 2,
			start_position = 0xFFFFFFFFFFFFFFF0ULL })
		local p = assert(ch:producer())
		for i = 1, 100 do
			assert.is_true(p:send(tostring(i)))
			assert.equal(padded(tostring(i), 8), ch:recv())
			if i % 3 == 0 then
				local ptr, n = p:reserve(2)
				ffi.copy(ptr, padded("r" .. i, 8) .. padded("s" .. i, 8), n * 8)
				assert.is_true(p:commit(n))
				for k = 1, n do
					assert.equal(padded((k == 1 and "r" or "s") .. i, 8), ch:recv())
				end
			end
		end
		local st = ch:stats()
		assert.equal(st.committed, st.consumed)
		assert.equal(0, st.pending)
		assert.has_error(function() ringmpsc.new { record_size = 8, start_position = "0" } end)
		ch:release()
	end)
end)

describe("send_bytes / recv_bytes (slab pool)", function()
	it("moves variable-length messages through the slab pool", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, slab_size = 1000, slab_count = 2 })
		assert.equal(1000, ch.slab_size)
		assert.equal(2, ch.slab_count)
		local p = assert(ch:producer())
		local big = string.rep("0123456789", 100)
		assert.is_true(p:send_bytes(big))
		assert.is_true(p:send_bytes(""))
		assert.equal(0, ch:stats().slabs_free)
		assert.same({ nil, "full" }, { p:send_bytes("x") }) -- pool exhausted
		assert.same({ nil, "timeout" }, { p:send_bytes("x", 0.01) })
		assert.same({ nil, "too long" }, { p:send_bytes(big .. "!") })
		assert.equal(big, ch:recv_bytes())
		assert.equal("", ch:recv_bytes(1))
		assert.equal(2, ch:stats().slabs_free)
		assert.same({ nil, "empty" }, { ch:recv_bytes() })
		assert.has_error(function() p:send_bytes(5) end)
		assert.has_error(function() ch:recv_bytes("1") end)
		ch:release()
	end)

	it("answers 'invalid' on a channel without a pool", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8 })
		local p = assert(ch:producer())
		assert.same({ nil, "invalid" }, { p:send_bytes("x") })
		assert.same({ nil, "invalid" }, { ch:recv_bytes() })
		ch:release()
	end)

	it("gives one deadline to both waits: a free slab, then ring space", function()
		-- The pool is empty, then (a slab freed late) the ring is full: the call
		-- returns after about 0.5 s, not 0.3 + 0.5.
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 2, slab_size = 16, slab_count = 1 })
		local q = assert(ch:producer()) -- slot 0, read first: holds the only slab
		local p = assert(ch:producer())
		assert.is_true(q:send_bytes("q"))
		assert.equal(2, p:send_many(zeros(16), 2)) -- p's ring full of plain records
		local parent = H.getpid()
		local child = H.spawn(function()
			H.wait_until(function() return H.sleeping(parent) end, 10, "the parent to wait for a slab")
			H.sleep(0.3)
			assert(ch:recv_bytes(1) == "q")
		end)
		local t0 = H.now()
		assert.same({ nil, "timeout" }, { p:send_bytes("p", 0.5) })
		local elapsed = H.now() - t0
		assert.equal(0, H.wait(child, 10))
		assert.is_true(elapsed >= 0.45 and elapsed < 0.75, "returned after " .. elapsed .. " s")
		assert.equal(1, ch:stats().slabs_free) -- the slab it took and could not send is back
		ch:release()
	end)

	it("puts a slab that could not be sent back in the pool", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 2, slab_size = 64, slab_count = 4 })
		local p = assert(ch:producer())
		assert.is_true(p:send_bytes("1"))
		assert.is_true(p:send_bytes("2"))
		assert.same({ nil, "full" }, { p:send_bytes("3") }) -- ring full
		assert.same({ nil, "timeout" }, { p:send_bytes("3", 0.05) })
		assert.equal(2, ch:stats().slabs_free)
		ch:release()
	end)

	it("answers 'corrupt' for a record that is not a slab message, then goes on", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, slab_size = 16, slab_count = 2 })
		local p = assert(ch:producer())
		assert.is_true(p:send(ffi.string(ffi.new("uint32_t[1]", 12345), 4))) -- no such slab
		assert.is_true(p:send(zeros(4))) -- slab 0, but not in transit on this record
		assert.is_true(p:send_bytes("after"))
		assert.same({ nil, "corrupt" }, { ch:recv_bytes() })
		assert.same({ nil, "corrupt" }, { ch:recv_bytes() })
		assert.equal("after", ch:recv_bytes(1))
		assert.equal(2, ch:stats().slabs_free)
		ch:release()
	end)

	it("slabs of a producer killed before sending return to the pool", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, slab_size = 64, slab_count = 1 })
		local child = H.spawn(function()
			local p = assert(ch:producer())
			assert(p:send_bytes("sent"))
			H.sleep(30)
		end)
		H.wait_until(function() return ch:pending() >= 1 end, 10, "the child's send")
		H.kill(child, H.SIGKILL)
		H.wait(child, 10)
		assert.equal("sent", ch:recv_bytes())
		assert.equal(1, ch:stats().slabs_free)
		ch:release()
	end)
end)

describe("recv_into", function()
	it("copies up to max records into a buffer", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 16 })
		local p = assert(ch:producer())
		for i = 1, 5 do
			assert.is_true(p:send("r" .. i))
		end
		local buf = ffi.new("uint8_t[?]", 8 * 3)
		assert.equal(3, ch:recv_into(buf, 3))
		assert.equal(padded("r1", 8) .. padded("r2", 8) .. padded("r3", 8), ffi.string(buf, 24))
		assert.equal(2, ch:recv_into(buf, 3))
		assert.equal(padded("r4", 8) .. padded("r5", 8), ffi.string(buf, 16))
		assert.same({ nil, "empty" }, { ch:recv_into(buf, 3) })
		assert.same({ nil, "timeout" }, { ch:recv_into(buf, 3, 0.01) })
		assert.same({ nil, "invalid" }, { ch:recv_into(buf, 0) })
		assert.has_error(function() ch:recv_into("buf", 3) end)
		assert.has_error(function() ch:recv_into(buf) end)
		assert.has_error(function() ch:recv_into(buf, 1, "x") end)
		ch:release()
	end)
end)

describe("reserve / commit", function()
	local ch, p
	before_each(function()
		ch = assert(ringmpsc.new { record_size = 4, capacity = 8 })
		p = assert(ch:producer())
	end)
	after_each(function()
		ch:release()
	end)

	it("writes records in place and publishes them on commit", function()
		local ptr, n = p:reserve(3)
		assert.equal(3, n)
		assert.equal("cdata", type(ptr))
		assert.equal(0, ch:pending()) -- nothing visible before commit
		ffi.copy(ptr, "aaaabbbbcccc", 12)
		assert.is_true(p:commit(3))
		assert.equal(3, ch:pending())
		assert.equal("aaaa", ch:recv())
		assert.equal("bbbb", ch:recv())
		assert.equal("cccc", ch:recv())
	end)

	it("commits a prefix, aborts with 0", function()
		local ptr, n = p:reserve(4)
		assert.equal(4, n)
		ffi.copy(ptr, "1111222233334444", 16)
		assert.is_true(p:commit(2))
		assert.equal(2, ch:pending())
		ptr, n = p:reserve(2)
		assert.equal(2, n)
		ffi.copy(ptr, "xxxx", 4)
		assert.is_true(p:commit(0))
		assert.equal(2, ch:pending())
		assert.equal("1111", ch:recv())
		assert.equal("2222", ch:recv())
		assert.same({ nil, "empty" }, { ch:recv() })
	end)

	it("grants fewer records at the wrap, each span contiguous", function()
		local ptr, n = p:reserve(6)
		assert.equal(6, n)
		ffi.fill(ptr, 24, 65)
		p:commit(6)
		for _ = 1, 6 do
			assert(ch:recv())
		end
		ptr, n = p:reserve(6) -- positions 6..7 before the wrap
		assert.equal(2, n)
		ffi.fill(ptr, 8, 66)
		p:commit(2)
		ptr, n = p:reserve(6)
		assert.equal(6, n)
		ffi.fill(ptr, 24, 67) -- the span after the wrap is writable whole
		p:commit(0)
	end)

	it("reports misuse of the reservation protocol as 'invalid'", function()
		assert.same({ nil, "invalid" }, { p:commit(1) }) -- nothing open
		assert.same({ nil, "invalid" }, { p:reserve(0) })
		assert.same({ nil, "invalid" }, { p:reserve(-1) })
		local _, n = p:reserve(2)
		assert.equal(2, n)
		assert.same({ nil, "invalid" }, { p:reserve(1) }) -- one open at a time
		assert.same({ nil, "invalid" }, { p:send("x") })
		assert.same({ nil, "invalid" }, { p:commit(3) }) -- more than granted
		assert.same({ nil, "invalid" }, { p:commit(-1) })
		assert.is_true(p:commit(2))
	end)

	it("answers 'full' and 'timeout' when the ring is full", function()
		local _, n = p:reserve(8)
		assert.equal(8, n)
		p:commit(8)
		assert.same({ nil, "full" }, { p:reserve(1) })
		assert.same({ nil, "timeout" }, { p:reserve(1, 0.01) })
	end)

	it("raises on wrong argument types", function()
		assert.has_error(function() p:reserve() end)
		assert.has_error(function() p:reserve("1") end)
		assert.has_error(function() p:reserve(1, true) end)
		assert.has_error(function() p:commit() end)
		assert.has_error(function() p:commit("1") end)
	end)
end)

describe("read / advance", function()
	local ch, p
	before_each(function()
		ch = assert(ringmpsc.new { record_size = 4, capacity = 8, max_producers = 2 })
		p = assert(ch:producer())
	end)
	after_each(function()
		ch:release()
	end)

	it("names where the span starts: slot and ring position", function()
		assert.same({ nil, "invalid" }, { ch:read_position() })
		for i = 1, 3 do
			assert(p:send("r" .. i))
		end
		local _, n = assert(ch:read(2))
		assert.equal(2, n)
		assert.same({ p.slot, 0 }, { ch:read_position() })
		assert(ch:advance(1))
		_, n = assert(ch:read(8))
		assert.same({ p.slot, 1 }, { ch:read_position() })
		assert(ch:advance(n))
	end)

	it("returns a zero-copy span with its slot, freed by advance", function()
		p:send_many("aaaabbbbcccc", 3)
		local ptr, n, slot = ch:read(10)
		assert.equal(3, n)
		assert.equal(p.slot, slot)
		assert.equal("aaaabbbbcccc", ffi.string(ptr, 12))
		assert.equal(3, ch:pending()) -- not freed until advance
		assert.is_true(ch:advance(3))
		assert.equal(0, ch:pending())
		assert.same({ nil, "empty" }, { ch:read(1) })
	end)

	it("advances part of a span; the rest is read again", function()
		p:send_many("aaaabbbbcccc", 3)
		local ptr, n = ch:read(3)
		assert.equal(3, n)
		assert.equal("aaaabbbbcccc", ffi.string(ptr, 12))
		assert.is_true(ch:advance(1))
		ptr, n = ch:read(3)
		assert.equal(2, n)
		assert.equal("bbbbcccc", ffi.string(ptr, 8))
		assert.is_true(ch:advance(0))
		ptr, n = ch:read(1)
		assert.equal(1, n)
		assert.equal("bbbb", ffi.string(ptr, 4))
		assert.is_true(ch:advance(1))
	end)

	it("reports advance past the span as 'invalid'", function()
		p:send("x")
		local _, n = ch:read(5)
		assert.equal(1, n)
		assert.same({ nil, "invalid" }, { ch:advance(2) })
		assert.is_true(ch:advance(1))
		assert.same({ nil, "invalid" }, { ch:advance(1) }) -- nothing read now
		assert.same({ nil, "invalid" }, { ch:advance(-1) })
		assert.same({ nil, "invalid" }, { ch:read(0) })
	end)

	it("times out when empty", function()
		local t0 = H.now()
		assert.same({ nil, "timeout" }, { ch:read(1, 0.03) })
		assert.is_true(H.now() - t0 >= 0.025)
	end)

	it("raises on wrong argument types", function()
		assert.has_error(function() ch:read() end)
		assert.has_error(function() ch:read("1") end)
		assert.has_error(function() ch:read(1, "1") end)
		assert.has_error(function() ch:advance() end)
		assert.has_error(function() ch:advance("1") end)
	end)
end)

describe("wait / claim / unclaim", function()
	it("wait returns when a record is readable", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4 })
		assert.same({ nil, "empty" }, { ch:wait() })
		assert.same({ nil, "timeout" }, { ch:wait(0.01) })
		local p = assert(ch:producer())
		p:send("x")
		assert.is_true(ch:wait(1))
		assert.equal(1, ch:pending()) -- wait consumes nothing
		assert.has_error(function() ch:wait("1") end)
		ch:release()
	end)

	it("handles of one process share the consumer role until the last is released", function()
		local name = H.name("role")
		local a = assert(ringmpsc.new { record_size = 8, capacity = 4, name = name })
		local b = assert(ringmpsc.open(name))
		local p = assert(a:producer())
		p:send("x")
		p:send("y")
		assert.equal(padded("x", 8), a:recv())
		assert.equal(padded("y", 8), b:recv())
		a:release()
		assert.equal(H.getpid(), b:stats().consumer_pid)
		b:release()
		local c = assert(ringmpsc.open(name))
		assert.equal(0, c:stats().consumer_pid)
		c:release()
		ringmpsc.unlink(name)
	end)

	it("claim and unclaim the consumer role", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4 })
		assert.equal(0, ch:stats().consumer_pid)
		assert.is_true(ch:claim())
		assert.equal(H.getpid(), ch:stats().consumer_pid)
		assert.is_true(ch:unclaim())
		assert.equal(0, ch:stats().consumer_pid)
		ch:release()
	end)
end)

describe("close semantics", function()
	it("ch:close() stops producers; the consumer drains, then 'closed'", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_producers = 2 })
		local p = assert(ch:producer())
		p:send("one")
		p:send("two")
		assert.is_true(ch:close())
		assert.is_true(ch:is_closed())
		assert.is_true(ch:close()) -- idempotent
		assert.same({ nil, "closed" }, { p:send("three") })
		assert.same({ nil, "closed" }, { p:reserve(1) })
		assert.same({ nil, "closed" }, { p:send_many("xxxxxxxx", 1) })
		assert.same({ nil, "closed" }, { ch:producer() })
		assert.equal(padded("one", 8), ch:recv())
		assert.equal(padded("two", 8), ch:recv(1))
		assert.same({ nil, "closed" }, { ch:recv() })
		assert.same({ nil, "closed" }, { ch:recv(1) }) -- never blocks once drained
		assert.same({ nil, "closed" }, { ch:read(1) })
		assert.same({ nil, "closed" }, { ch:wait(1) })
		assert.same({ nil, "closed" }, { ch:recv_into(ffi.new("uint8_t[8]"), 1) })
		assert.is_true(ch:stats().closed)
		ch:release()
	end)

	it("a reservation open at close may still be committed and is delivered", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 8 })
		local p = assert(ch:producer())
		local ptr, n = p:reserve(2)
		assert.equal(2, n)
		ch:close()
		ffi.copy(ptr, "latelate", 8)
		assert.is_true(p:commit(2))
		assert.equal("late", ch:recv())
		assert.equal("late", ch:recv())
		assert.same({ nil, "closed" }, { ch:recv() })
		ch:release()
	end)

	it("close wakes a consumer blocked in another process", function()
		local name = H.name("closewake")
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, name = name })
		local child = H.spawn(function()
			local c = assert(ringmpsc.open(name))
			local t0 = H.now()
			local rec, err = c:recv(10)
			assert(rec == nil and err == "closed", tostring(err))
			assert(H.now() - t0 < 5, "woke late")
		end)
		H.wait_until(function() return ch:stats().consumer_pid == child and H.sleeping(child) end, 10,
			"the child to claim the consumer role and block in recv")
		ch:close()
		assert.equal(0, H.wait(child, 10))
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("close wakes a producer blocked (no deadline) on a full ring in another process", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 2 })
		local child = H.spawn(function()
			local p = assert(ch:producer())
			assert(p:send("a") and p:send("b"))
			local ok, err = p:send("c", -1)
			assert(ok == nil and err == "closed", tostring(err))
		end)
		H.wait_until(function() return ch:pending() >= 2 and H.sleeping(child) end, 10,
			"the child to fill the ring and block in send")
		ch:close()
		assert.equal(0, H.wait(child, 10))
		assert.equal("a\0\0\0", ch:recv())
		assert.equal("b\0\0\0", ch:recv())
		assert.same({ nil, "closed" }, { ch:recv(-1) })
		ch:release()
	end)

	it("p:close() keeps committed records; the slot is reused once drained", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, max_producers = 1 })
		local p = assert(ch:producer())
		p:send("keep")
		assert.is_true(p:close())
		assert.is_true(p:close()) -- idempotent
		assert.is_true(p:is_closed())
		assert.has_error(function() p:send("x") end, "ringmpsc: producer is closed")
		assert.has_error(function() p:reserve(1) end)
		assert.has_error(function() p:commit(1) end)
		assert.has_error(function() p:send_many("xxxx", 1) end)
		assert.same({ nil, "no slot" }, { ch:producer() }) -- not drained yet
		assert.equal("keep", ch:recv())
		assert.same({ nil, "empty" }, { ch:recv() }) -- the sweep frees the drained slot
		local p2 = assert(ch:producer())
		assert.is_true(p2:send("next"))
		assert.equal("next", ch:recv())
		ch:release()
	end)

	it("p:close() aborts an open reservation", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4 })
		local p = assert(ch:producer())
		p:reserve(2)
		p:close()
		assert.same({ nil, "empty" }, { ch:recv() })
		ch:release()
	end)

	it("ch:release() closes its producers; any later use raises", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4 })
		local p1, p2 = assert(ch:producer()), assert(ch:producer())
		p1:close()
		assert.is_true(ch:release())
		assert.is_true(ch:release()) -- idempotent
		assert.is_true(p2:is_closed())
		assert.is_true(p2:close())
		assert.has_error(function() p2:send("x") end)
		for _, m in ipairs { "recv", "producer", "stats", "close", "fd", "pending", "is_closed", "claim", "wait" } do
			assert.has_error(function() ch[m](ch) end, "ringmpsc: channel handle is released")
		end
		assert.has_error(function() ch:read(1) end)
		assert.has_error(function() ch:advance(0) end)
		assert.has_error(function() ch:recv_into(ffi.new("uint8_t[4]"), 1) end)
	end)

	it("ch:release() closes exactly the producers still open, whatever order others closed in", function()
		local name = H.name("closeorder")
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, max_producers = 16, name = name })
		local watcher = assert(ringmpsc.open(name)) -- sees the slots after ch is released
		local open, closed = {}, {}
		for _ = 1, 16 do
			open[#open + 1] = assert(ch:producer())
		end
		-- close from the middle, the front and the back, then register again
		for _, i in ipairs { 7, 1, 14, 3, 3, 9 } do
			local p = table.remove(open, i)
			assert.is_true(p:close())
			closed[#closed + 1] = p
		end
		for _ = 1, 4 do
			open[#open + 1] = assert(ch:producer())
		end
		assert.equal(14, watcher:stats().active_producers)
		assert.is_true(ch:release())
		for _, p in ipairs(open) do
			assert.is_true(p:is_closed())
		end
		for _, p in ipairs(closed) do
			assert.is_true(p:is_closed())
			assert.is_true(p:close()) -- idempotent after the release too
		end
		local st = watcher:stats()
		assert.equal(0, st.active_producers)
		assert.equal(16, #st.rings)
		for _, r in ipairs(st.rings) do
			assert.equal("detached", r.state)
		end
		watcher:release()
		ringmpsc.unlink(name)
	end)

	it("releasing a handle does not close the channel for others", function()
		local name = H.name("release")
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, name = name })
		local ch2 = assert(ringmpsc.open(name))
		local p = assert(ch2:producer())
		p:send("kept")
		ch2:release()
		assert.is_false(ch:is_closed())
		assert.equal("kept", ch:recv())
		ch:release()
		ringmpsc.unlink(name)
	end)
end)

describe("garbage collection", function()
	it("a dropped producer is closed by its finalizer (its slot comes back)", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, max_producers = 1 })
		do
			local p = assert(ch:producer())
			p:send("gc")
		end
		collectgarbage()
		collectgarbage()
		assert.equal("gc\0\0", ch:recv())
		ch:recv() -- the sweep frees the drained slot
		assert.truthy(ch:producer())
		ch:release()
	end)

	it("channels and producers dropped together are finalized in any order", function()
		for _ = 1, 50 do
			local ch = assert(ringmpsc.new { record_size = 8, capacity = 4, max_producers = 4 })
			for _ = 1, 4 do
				local p = assert(ch:producer())
				p:send("x")
			end
		end
		collectgarbage()
		collectgarbage()
	end)

	it("lua_close finalizes producers before their channel (no crash at exit)", function()
		local rc, out = H.sh("cd " .. H.repo .. " && luajit -e \"package.path='lua/?.lua;'..package.path "
			.. "local r = require('ringmpsc') keep = {} "
			.. "for i = 1, 100 do local ch = r.new{record_size = 8, capacity = 4, max_producers = 8} "
			.. "keep[#keep + 1] = ch for j = 1, 8 do local p = ch:producer() keep[#keep + 1] = p p:reserve(1) end end "
			.. "os.exit(0, true)\"")
		assert.equal(0, rc, out)
	end)
end)

describe("stats", function()
	it("reports channel figures and one entry per slot in use", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_producers = 4 })
		local p1, p2 = assert(ch:producer()), assert(ch:producer())
		p1:send("a")
		p1:send("b")
		p2:send("c")
		ch:recv()
		local st = assert(ch:stats())
		assert.equal(4, st.max_producers)
		assert.equal(2, st.active_producers)
		assert.equal(H.getpid(), st.consumer_pid)
		assert.is_false(st.closed)
		assert.equal(3, st.committed)
		assert.equal(1, st.consumed)
		assert.equal(2, st.pending)
		assert.equal(0, st.slab_count)
		assert.equal(0, st.fenced_rings)
		assert.equal(0, st.reclaimed_slots)
		assert.equal(2, #st.rings)
		local by_slot = {}
		for _, r in ipairs(st.rings) do
			by_slot[r.slot] = r
			assert.equal("active", r.state)
			assert.equal(H.getpid(), r.owner_pid)
			assert.is_true(r.owner_alive)
		end
		assert.equal(2, by_slot[p1.slot].committed + by_slot[p2.slot].committed - 1)
		p2:close()
		st = ch:stats()
		assert.equal(1, st.active_producers)
		local states = {}
		for _, r in ipairs(st.rings) do
			states[r.slot] = r.state
		end
		assert.equal("detached", states[p2.slot])
		ch:release()
	end)

	it("counts drops in the channel, per slot, in episodes split by sends", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4, max_producers = 2 })
		local p = assert(ch:producer())
		assert.is_true(p:count_dropped())
		assert.is_true(p:count_dropped(2)) -- the same episode
		p:send("a")
		assert.is_true(p:count_dropped(4)) -- a second one
		local ok, err = p:count_dropped(-1)
		assert.is_nil(ok)
		assert.equal("invalid", err)
		assert.has_error(function()
			p:count_dropped("1")
		end)
		local st = ch:stats()
		assert.equal(7, st.dropped)
		assert.equal(2, st.drop_episodes)
		assert.equal(7, st.rings[1].dropped)
		assert.matches("^%x+$", st.channel_id)
		assert.equal(16, #st.channel_id)
		local other = assert(ringmpsc.new { record_size = 8 })
		assert.not_equal(st.channel_id, other:stats().channel_id)
		other:release()
		p:close()
		assert.has_error(function()
			p:count_dropped()
		end)
		ch:release()
	end)
end)

describe("processes", function()
	it("a producer inherited through fork answers 'forked'; the child registers its own", function()
		local name = H.name("fork")
		local ch = assert(ringmpsc.new { record_size = 16, capacity = 64, max_producers = 4, name = name })
		local p = assert(ch:producer())
		local child = H.spawn(function()
			local ok, err = p:send("from child")
			assert(ok == nil and err == "forked", "inherited producer: " .. tostring(err))
			ok, err = p:reserve(1)
			assert(ok == nil and err == "forked", "inherited reserve: " .. tostring(err))
			local mine = assert(ch:producer())
			assert(mine:send("child's own"))
			mine:close()
		end)
		assert.equal(0, H.wait(child, 10))
		assert.equal(padded("child's own", 16), ch:recv(1))
		assert.is_true(p:send("parent")) -- the parent's ring was left alone
		assert.equal(padded("parent", 16), ch:recv(1))
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("delivers exactly once and FIFO from several producer processes", function()
		local N, K = 5000, 3
		local ch = assert(ringmpsc.new { record_size = 16, capacity = 256, max_producers = K })
		local children = {}
		for k = 1, K do
			children[k] = H.spawn(function()
				local p = assert(ch:producer())
				for i = 1, N do
					assert(p:send(k .. ":" .. i, 5))
				end
			end)
		end
		local last, total = {}, 0
		local deadline = H.now() + 30
		while total < N * K and H.now() < deadline do
			local rec, err = ch:recv(0.5)
			if rec then
				local k, i = rec:match("^(%d+):(%d+)")
				k, i = tonumber(k), tonumber(i)
				assert.equal((last[k] or 0) + 1, i)
				last[k] = i
				total = total + 1
			else
				assert.equal("timeout", err)
			end
		end
		for k = 1, K do
			assert.equal(0, H.wait(children[k], 10))
			assert.equal(N, last[k])
		end
		assert.same({ nil, "empty" }, { ch:recv() })
		ch:release()
	end)

	it("a producer killed with SIGKILL: committed records arrive, its slot is reclaimed", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 1024, max_producers = 1 })
		local child = H.spawn(function()
			local p = assert(ch:producer())
			for i = 1, 100 do
				assert(p:send(tostring(i)))
			end
			p:reserve(5) -- never committed
			H.sleep(30)
		end)
		H.wait_until(function() return ch:pending() >= 100 end, 10, "the child's 100 sends")
		assert.equal(100, ch:pending())
		assert.same({ nil, "no slot" }, { ch:producer() }) -- the live child holds the only slot
		H.kill(child, H.SIGKILL)
		assert.equal(128 + H.SIGKILL, H.wait(child, 10))
		assert.equal(1, ch:reclaim_dead())
		for i = 1, 100 do
			assert.equal(padded(tostring(i), 8), ch:recv())
		end
		assert.same({ nil, "empty" }, { ch:recv() }) -- the uncommitted reservation never shows
		local p = assert(ch:producer()) -- the drained slot is free again
		assert.is_true(p:send("new"))
		assert.equal(padded("new", 8), ch:recv())
		assert.equal(1, ch:stats().reclaimed_slots)
		ch:release()
	end)

	it("register reclaims a dead producer's slot by itself", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_producers = 1 })
		local child = H.spawn(function()
			local p = assert(ch:producer())
			p:send("last")
			H.sleep(30)
		end)
		H.wait_until(function() return ch:pending() >= 1 end, 10, "the child's send")
		H.kill(child, H.SIGKILL)
		H.wait(child, 10)
		assert.same({ nil, "no slot" }, { ch:producer() }) -- reclaimed, but not drained yet
		assert.equal(padded("last", 8), ch:recv())
		ch:recv()
		assert.truthy(ch:producer())
		ch:release()
	end)

	it("one consumer at a time: 'consumer busy', then takeover after its death", function()
		local name = H.name("consumer")
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, name = name })
		local p = assert(ch:producer())
		p:send("a")
		local child = H.spawn(function()
			local c = assert(ringmpsc.open(name))
			assert(c:claim())
			H.sleep(30)
		end)
		H.wait_until(function() return ch:stats().consumer_pid == child end, 10, "the child's claim")
		assert.equal(child, ch:stats().consumer_pid)
		assert.same({ nil, "consumer busy" }, { ch:recv() })
		assert.matches(tostring(child), ringmpsc.last_error())
		assert.same({ nil, "consumer busy" }, { ch:read(1) })
		assert.same({ nil, "consumer busy" }, { ch:claim() })
		H.kill(child, H.SIGKILL)
		H.wait(child, 10)
		assert.equal(padded("a", 8), ch:recv())
		assert.equal(H.getpid(), ch:stats().consumer_pid)
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("a blocked recv wakes when another process sends", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8 })
		local parent = H.getpid()
		local child = H.spawn(function()
			H.wait_until(function() return ch:stats().consumer_pid == parent and H.sleeping(parent) end, 10,
				"the parent to block in recv")
			local p = assert(ch:producer())
			assert(p:send("wake"))
		end)
		local t0 = H.now()
		assert.equal(padded("wake", 8), ch:recv(10))
		assert.is_true(H.now() - t0 < 5)
		assert.equal(0, H.wait(child, 10))
		ch:release()
	end)

	it("a blocked send wakes when the consumer frees space", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 2 })
		local child = H.spawn(function()
			local p = assert(ch:producer())
			for i = 1, 50 do
				assert(p:send(tostring(i), 10))
			end
		end)
		for i = 1, 50 do
			assert.equal(padded(tostring(i), 8), ch:recv(10))
		end
		assert.equal(0, H.wait(child, 10))
		ch:release()
	end)

	it("an interruptible channel answers 'interrupted' when a signal arrives", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, interruptible = true })
		H.interrupting_signal(H.SIGUSR1)
		local parent = H.getpid()
		local child = H.spawn(function()
			H.wait_until(function() return ch:stats().consumer_pid == parent and H.sleeping(parent) end, 10,
				"the parent to block in recv")
			H.kill(parent, H.SIGUSR1)
		end)
		local t0 = H.now()
		local rec, err = ch:recv(5)
		H.default_signal(H.SIGUSR1)
		assert.is_nil(rec)
		assert.equal("interrupted", err)
		assert.is_true(H.now() - t0 < 4)
		assert.equal(0, H.wait(child, 10))
		ch:release()
	end)

	it("open with interruptible = true", function()
		local name = H.name("intr")
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, name = name })
		local ch2 = assert(ringmpsc.open(name, { interruptible = true }))
		assert.has_error(function() ringmpsc.open(name, { interruptible = 1 }) end)
		ch2:release()
		ch:release()
		ringmpsc.unlink(name)
	end)
end)
