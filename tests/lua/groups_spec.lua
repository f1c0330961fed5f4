-- Consumer groups from LuaJIT: fan-out to every group, work sharing
-- between member processes, redelivery of a SIGKILLed member's read (marked) or its
-- drop (at-most-once), ephemeral groups, group removal, argument errors, stats.
-- Processes are forked with helpers.spawn; each waits on state it can observe.
local ffi = require "ffi"
local ringmpsc = require "ringmpsc"
local H = require "helpers"

after_each(function()
	H.remove_names()
end)

local function padded(s, n)
	return s .. string.rep("\0", n - #s)
end

local function group_named(ch, name)
	for i, g in ipairs(ch:stats().groups) do
		if g.name == name then
			return g, i
		end
	end
	return nil
end

local function read_file(path)
	local f = io.open(path, "rb")
	if not f then
		return ""
	end
	local s = f:read("*a")
	f:close()
	return s
end

describe("consumer groups: options and objects", function()
	it("new{} takes max_consumers and max_groups, validated like the other sizes", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4 })
		assert.same({ 1, 1 }, { ch.max_consumers, ch.max_groups })
		ch:release()
		ch = assert(ringmpsc.new { record_size = 8, capacity = 4, max_consumers = 5 })
		assert.same({ 5, 5 }, { ch.max_consumers, ch.max_groups }) -- max_groups nil: as many as consumers
		ch:release()
		ch = assert(ringmpsc.new { record_size = 8, capacity = 4, max_consumers = 3, max_groups = 2 })
		assert.same({ 3, 2 }, { ch.max_consumers, ch.max_groups })
		local st = ch:stats()
		assert.same({ 3, 2 }, { st.max_consumers, st.max_groups })
		ch:release()
		for _, cfg in ipairs {
			{ record_size = 8, max_consumers = 300 },
			{ record_size = 8, max_consumers = -1 },
			{ record_size = 8, max_consumers = 1.5 },
			{ record_size = 8, max_consumers = 2, max_groups = 65 },
			{ record_size = 8, max_groups = 2 ^ 33 },
		} do
			assert.same({ nil, "invalid" }, { ringmpsc.new(cfg) })
		end
		ringmpsc.new { record_size = 8, max_consumers = 300 }
		assert.matches("max_consumers", ringmpsc.last_error())
		assert.has_error(function() ringmpsc.new { record_size = 8, max_consumers = "2" } end)
		assert.has_error(function() ringmpsc.new { record_size = 8, max_groups = {} } end)
	end)

	it("join / leave / group / claim on the channel handle itself", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_consumers = 2, max_groups = 2 })
		local p = assert(ch:producer())
		assert.is_nil(ch:group())
		assert.is_true(p:send("a"))
		assert.equal(padded("a", 8), ch:recv()) -- joins the default group implicitly
		assert.equal("default", ch:group())
		assert.is_true(ch:join("x"))
		assert.equal("x", ch:group())
		assert.is_true(ch:join("x")) -- already a member: nothing changes
		assert.is_true(p:send("b"))
		assert.equal(padded("b", 8), ch:recv()) -- x was created before "b" was sent
		assert.is_true(ch:leave())
		assert.is_nil(ch:group())
		assert.is_true(ch:leave()) -- safe when not a member
		assert.is_true(ch:claim()) -- the default group, as before groups
		assert.equal("default", ch:group())
		assert.equal(padded("b", 8), ch:recv()) -- the default group had it waiting
		assert.is_true(ch:unclaim())
		assert.is_nil(ch:group())
		assert.is_true(ch:join()) -- nil: the default group
		assert.equal("default", ch:group())
		ch:release()
	end)

	it("a Consumer has the consumer methods, its own handle, and raises once closed", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 8, max_consumers = 2,
			slab_size = 64, slab_count = 2 })
		local c = assert(ch:consumer("default"))
		assert.equal("default", c:group())
		assert.is_nil(ch:group()) -- the channel handle itself joined nothing
		assert.is_nil(c.producer) -- no producer or channel-wide methods
		assert.is_nil(c.stats)
		assert.is_nil(c.close == ch.close or nil)
		local p = assert(ch:producer())
		p:send_many("aaaabbbbccccdddd", 4)
		assert.equal(4, c:pending())
		assert.equal("aaaa", c:recv())
		local buf = ffi.new("uint8_t[8]")
		assert.equal(2, c:recv_into(buf, 2))
		assert.equal("bbbbcccc", ffi.string(buf, 8))
		assert.is_true(c:wait(1))
		local ptr, n = c:read(4)
		assert.equal(1, n)
		assert.equal("dddd", ffi.string(ptr, 4))
		assert.equal(1, c:deliveries())
		assert.is_true(c:advance(1))
		assert.equal(0, c:deliveries())
		assert.is_true(p:send_bytes("a message"))
		assert.equal("a message", c:recv_bytes(1))
		assert.same({ nil, "empty" }, { c:recv() })
		assert.same({ nil, "timeout" }, { c:recv(0.01) })
		assert.is_true(c:close())
		assert.is_true(c:close()) -- idempotent
		assert.equal(0, #ch:stats().members)
		for _, m in ipairs { "recv", "recv_bytes", "wait", "pending", "group", "deliveries" } do
			assert.has_error(function() c[m](c) end, "ringmpsc: consumer is closed")
		end
		assert.has_error(function() c:read(1) end, "ringmpsc: consumer is closed")
		assert.has_error(function() c:advance(0) end, "ringmpsc: consumer is closed")
		assert.has_error(function() c:recv_into(buf, 1) end, "ringmpsc: consumer is closed")
		-- the channel handle goes on; a released one makes no consumers
		assert.is_true(p:send("e"))
		assert.equal("e\0\0\0", ch:recv())
		ch:release()
		assert.has_error(function() ch:consumer("x") end, "ringmpsc: channel handle is released")
		for _, m in ipairs { "join", "leave", "group", "deliveries" } do
			assert.has_error(function() ch[m](ch) end, "ringmpsc: channel handle is released")
		end
		assert.has_error(function() ch:remove_group("x") end, "ringmpsc: channel handle is released")
	end)

	it("consumers of one process in one group share a place; after fork the child is a member of its own", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_consumers = 3 })
		local a, b = assert(ch:consumer("g")), assert(ch:consumer("g"))
		assert.equal(1, #ch:stats().members)
		assert.equal(1, group_named(ch, "g").members)
		local p = assert(ch:producer())
		local child = H.spawn(function()
			local rec = assert(a:recv(5)) -- joins "g" again, as this process
			assert(rec == padded("42", 8) and a:group() == "g", rec)
			assert(#ch:stats().members == 2, "the child's own place")
		end)
		H.wait_until(function() return group_named(ch, "g").members == 2 end, 10, "the child to join")
		assert.is_true(p:send("42"))
		assert.equal(0, H.wait(child, 10))
		a:close()
		assert.equal("g", b:group()) -- the place stays while b holds it
		b:close()
		ch:release()
	end)

	it("a dropped Consumer leaves its group through its finalizer", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, max_consumers = 2 })
		do
			local c = assert(ch:consumer("sub", { ephemeral = true }))
			assert.equal("sub", c:group())
		end
		assert.is_not_nil(group_named(ch, "sub"))
		collectgarbage()
		collectgarbage()
		assert.is_nil(group_named(ch, "sub")) -- its last member left: an ephemeral group goes
		ch:release()
	end)

	it("raises on wrong argument types", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, max_consumers = 2 })
		assert.has_error(function() ch:consumer(5) end)
		assert.has_error(function() ch:consumer({}) end)
		assert.has_error(function() ch:consumer("g", "ephemeral") end)
		assert.has_error(function() ch:consumer("g", { ephemeral = 1 }) end)
		assert.has_error(function() ch:consumer("g", { at_most_once = "yes" }) end)
		assert.has_error(function() ch:consumer("g", { interruptible = 1 }) end)
		assert.has_error(function() ch:join(1) end)
		assert.has_error(function() ch:join("g", 1) end)
		assert.has_error(function() ch:join("g", { ephemeral = "no" }) end)
		assert.has_error(function() ch:remove_group() end)
		assert.has_error(function() ch:remove_group(1) end)
		assert.is_nil(ch:group()) -- nothing was joined by a failing call
		assert.equal(0, #ch:stats().members)
		ch:release()
	end)

	it("answers 'invalid' and 'consumer busy' from the core, with the detail in last_error()", function()
		local ch = assert(ringmpsc.new { record_size = 4, capacity = 4, max_consumers = 2, max_groups = 2 })
		assert.same({ nil, "invalid" }, { ch:consumer(string.rep("n", 32)) })
		assert.matches("longer than 31", ringmpsc.last_error())
		local x = assert(ch:consumer("x", { ephemeral = true }))
		assert.same({ nil, "invalid" }, { ch:consumer("x") })
		assert.matches("exists with flags", ringmpsc.last_error())
		assert.same({ nil, "invalid" }, { ch:join("x", { at_most_once = true, ephemeral = true }) })
		assert.same({ nil, "consumer busy" }, { ch:consumer("y") }) -- default and x fill max_groups 2
		assert.matches("max_groups", ringmpsc.last_error())
		assert.same({ nil, "invalid" }, { ch:remove_group("x") })
		assert.matches("live member", ringmpsc.last_error())
		assert.same({ nil, "invalid" }, { ch:remove_group("nope") })
		local d = assert(ch:consumer()) -- the second member place
		local child = H.spawn(function()
			local ok, err = ch:consumer()
			assert(ok == nil and err == "consumer busy", tostring(err))
			assert(ringmpsc.last_error():find("max_consumers", 1, true), ringmpsc.last_error())
		end)
		assert.equal(0, H.wait(child, 10))
		x:close()
		d:close()
		ch:release()
		local one = assert(ringmpsc.new { record_size = 4, capacity = 4 })
		assert.same({ nil, "invalid" }, { one:remove_group("default") }) -- one group place: kept
		assert.same({ nil, "consumer busy" }, { one:join("other") })
		one:close()
		assert.same({ nil, "closed" }, { one:recv() })
		one:release()
	end)
end)

describe("consumer groups: delivery", function()
	it("fans out: each of two groups sees every record, in order; the slowest holds producers back", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_consumers = 4, max_groups = 4 })
		assert.is_true(ch:remove_group("default")) -- only a and b hold records
		local a, b = assert(ch:consumer("a")), assert(ch:consumer("b"))
		local p = assert(ch:producer())
		for i = 1, 8 do
			assert.is_true(p:send(tostring(i)))
		end
		assert.same({ nil, "full" }, { p:send("9") })
		for i = 1, 8 do
			assert.equal(padded(tostring(i), 8), a:recv())
		end
		assert.same({ nil, "full" }, { p:send("9") }) -- b has released nothing
		assert.equal(8, group_named(ch, "b").pending)
		assert.equal(0, group_named(ch, "a").pending)
		assert.equal(8, b:pending())
		for i = 1, 4 do
			assert.equal(padded(tostring(i), 8), b:recv())
		end
		for i = 9, 12 do
			assert.is_true(p:send(tostring(i)))
		end
		assert.same({ nil, "full" }, { p:send("13") })
		b:close() -- a durable group keeps its records when its member leaves
		assert.same({ nil, "full" }, { p:send("13") })
		assert.is_true(ch:remove_group("b"))
		assert.is_nil(group_named(ch, "b"))
		assert.is_true(p:send("13"))
		for i = 9, 13 do
			assert.equal(padded(tostring(i), 8), a:recv())
		end
		a:close()
		ch:release()
	end)

	it("a group created later gets what is committed from then on", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 16, max_consumers = 2 })
		local p = assert(ch:producer())
		p:send("early")
		local late = assert(ch:consumer("late"))
		assert.same({ nil, "empty" }, { late:recv() })
		p:send("late")
		assert.equal(padded("late", 8), late:recv())
		assert.equal(padded("early", 8), ch:recv())
		assert.equal(padded("late", 8), ch:recv())
		late:close()
		ch:release()
	end)

	it("shares work between member processes: each record once overall", function()
		local N, K = 3000, 2
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 64, max_producers = 1, max_consumers = K })
		assert.is_true(ch:remove_group("default"))
		local files, children = {}, {}
		for k = 1, K do
			files[k] = os.tmpname()
			children[k] = H.spawn(function()
				local c = assert(ch:consumer("work"))
				-- Coalescing lets a member that keeps up take everything while the
				-- other lingers (3000 records take about a millisecond): off, both
				-- wake at the first record and share the work.
				assert(c:coalesce(1, 0))
				local got = {}
				local buf = ffi.new("uint8_t[?]", 8 * 8)
				while true do
					-- one member copies records out one by one, the other reads spans in place
					if k == 1 then
						local rec, err = c:recv(10)
						if err == "closed" then break end
						assert(rec, err)
						got[#got + 1] = rec:match("^%d+")
					else
						local ptr, n = c:read(8, 10)
						if n == "closed" then break end
						assert(ptr, n)
						assert(c:deliveries() == 1, "a first delivery")
						ffi.copy(buf, ptr, n * 8)
						assert(c:advance(n))
						for i = 0, n - 1 do
							got[#got + 1] = ffi.string(buf + i * 8, 8):match("^%d+")
						end
					end
				end
				local f = assert(io.open(files[k], "w"))
				f:write(table.concat(got, "\n"), "\n")
				f:close()
			end)
		end
		H.wait_until(function()
			local g = group_named(ch, "work")
			return g and g.live_members == K
		end, 10, "both members to join")
		assert.is_false(group_named(ch, "work").solo)
		local p = assert(ch:producer())
		for i = 1, N do
			assert(p:send(tostring(i), 10))
		end
		ch:close()
		local seen, counts = {}, {}
		for k = 1, K do
			assert.equal(0, H.wait(children[k], 20))
			counts[k] = 0
			for id in read_file(files[k]):gmatch("(%d+)\n") do
				id = tonumber(id)
				assert(not seen[id], "record " .. id .. " delivered twice")
				seen[id] = k
				counts[k] = counts[k] + 1
			end
			os.remove(files[k])
		end
		assert.equal(N, counts[1] + counts[2])
		for i = 1, N do
			assert(seen[i], "record " .. i .. " lost")
		end
		assert.is_true(counts[1] > 0 and counts[2] > 0, "one member got everything: " .. counts[1] .. "/" .. counts[2])
		ch:release()
	end)

	-- A member process is SIGKILLed holding a read of 4 records. `consumer`: the
	-- surviving member is a Consumer object (else the channel handle, joined).
	local function dead_member(opts, consumer)
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 32, max_producers = 1, max_consumers = 3,
			max_groups = 2 })
		local m = ch
		if consumer then
			m = assert(ch:consumer("g", opts))
		else
			assert.is_true(ch:join("g", opts))
		end
		local child = H.spawn(function()
			local c = assert(ch:consumer("g", opts))
			local _, n = assert(c:read(4, 10))
			assert(n == 4 and c:deliveries() == 1, "the child's read")
			H.sleep(30) -- killed holding it
		end)
		H.wait_until(function()
			local g = group_named(ch, "g")
			return g and g.live_members == 2
		end, 10, "the child to join")
		local p = assert(ch:producer())
		local all = {}
		for i = 1, 10 do
			all[i] = padded(tostring(i), 8)
		end
		assert.equal(10, p:send_many(table.concat(all), 10))
		local held
		H.wait_until(function()
			for _, mb in ipairs(ch:stats().members) do
				if mb.pid == child and mb.claim_count > 0 then
					held = mb
					return true
				end
			end
		end, 10, "the child to hold a read")
		assert.same({ 4, p.slot, "member", true }, { held.claim_count, held.claim_slot, held.state, held.alive })
		assert.equal(1, group_named(ch, "g").claims)
		H.kill(child, H.SIGKILL)
		assert.equal(128 + H.SIGKILL, H.wait(child, 10))
		-- Recovery runs in members' sweeps at a bounded rate; reclaim_dead asks for it now.
		local seen, marked = {}, {}
		local deadline = H.now() + 5
		while H.now() < deadline do
			local ptr, n = m:read(10)
			if ptr then
				for i = 0, n - 1 do
					local id = tonumber(ffi.string(ptr + i * 8, 8):match("^%d+"))
					assert(not seen[id], "record " .. id .. " delivered twice")
					seen[id] = true
					marked[id] = m:deliveries() > 1 or nil
				end
				assert.is_true(m:advance(n))
			else
				assert.equal("empty", n)
				if ch:reclaim_dead() == 0 and ch:stats().recovered_members > 0 and
					group_named(ch, "g").claims == 0 and m:pending() == 0 then
					break
				end
				H.sleep(0.005)
			end
		end
		local st = ch:stats()
		assert.equal(1, st.recovered_members)
		assert.equal(1, #st.members) -- the dead member's place is free again
		assert.equal(H.getpid(), st.members[1].pid)
		return seen, marked, group_named(ch, "g"), function()
			if consumer then
				m:close()
			end
			ch:release()
		end
	end

	it("redelivers a SIGKILLed member's read to another member, marked (deliveries > 1)", function()
		local seen, marked, g, done = dead_member(nil, true)
		for i = 1, 10 do
			assert(seen[i], "record " .. i .. " lost")
			assert.equal(i <= 4 or nil, marked[i]) -- exactly the child's read, records 1..4
		end
		assert.equal(4, g.redelivered)
		assert.is_false(g.at_most_once)
		done()
	end)

	it("drops a SIGKILLed member's read in an at-most-once group", function()
		local seen, marked, g, done = dead_member({ at_most_once = true }, false)
		for i = 1, 10 do
			assert.equal(i > 4 or nil, seen[i]) -- records 1..4 went with the child
		end
		assert.same({}, marked)
		assert.equal(0, g.redelivered)
		assert.is_true(g.at_most_once)
		done()
	end)
end)

describe("consumer groups: ephemeral groups and removal", function()
	it("an ephemeral group goes with its last member (left, or SIGKILLed); a durable one stays", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 4, max_consumers = 3 })
		assert.is_true(ch:remove_group("default"))
		local c = assert(ch:consumer("sub", { ephemeral = true }))
		local g = group_named(ch, "sub")
		assert.is_true(g.ephemeral)
		assert.equal(1, g.members)
		c:close()
		assert.is_nil(group_named(ch, "sub"))
		-- a subscriber process holds the producer back until it dies
		local child = H.spawn(function()
			assert(ch:consumer("sub", { ephemeral = true }))
			H.sleep(30)
		end)
		H.wait_until(function() return group_named(ch, "sub") ~= nil end, 10, "the subscriber to join")
		local p = assert(ch:producer())
		assert.equal(4, p:send_many(string.rep("x", 32), 4))
		assert.same({ nil, "full" }, { p:send("y") })
		H.kill(child, H.SIGKILL)
		assert.equal(128 + H.SIGKILL, H.wait(child, 10))
		local t0 = H.now()
		assert.is_true(p:send("y", 5)) -- a producer waiting for space recovers the dead subscriber
		assert.is_true(H.now() - t0 < 2)
		assert.is_nil(group_named(ch, "sub"))
		-- a durable group with no member keeps its records until it is removed
		local d = assert(ch:consumer("keep"))
		d:close()
		assert.equal(3, p:send_many(string.rep("z", 24), 3))
		assert.equal(3, group_named(ch, "keep").pending)
		d = assert(ch:consumer("keep"))
		assert.equal(padded("zzzzzzzz", 8), d:recv())
		d:close()
		assert.is_true(ch:remove_group("keep"))
		assert.is_nil(group_named(ch, "keep"))
		assert.same({ nil, "invalid" }, { ch:remove_group("keep") })
		ch:release()
	end)
end)

describe("consumer groups: stats", function()
	it("lists groups and members with their figures", function()
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 8, max_producers = 2, max_consumers = 4 })
		local a = assert(ch:consumer("a", { at_most_once = true }))
		local b = assert(ch:consumer("b", { ephemeral = true }))
		local p = assert(ch:producer())
		assert.equal(3, p:send_many(string.rep("r", 24), 3))
		local _, n = a:read(2)
		assert.equal(2, n)
		local st = ch:stats()
		assert.same({ 4, 4, 0 }, { st.max_consumers, st.max_groups, st.recovered_members })
		assert.equal(3, #st.groups) -- default, a, b
		assert.equal(2, #st.members)
		local names = {}
		for i, g in ipairs(st.groups) do
			names[g.name] = i
			for _, f in ipairs { "members", "live_members", "claims", "pending", "unreleased", "redelivered" } do
				assert.equal("number", type(g[f]), f)
			end
			for _, f in ipairs { "ephemeral", "at_most_once", "solo" } do
				assert.equal("boolean", type(g[f]), f)
			end
		end
		local ga, gb, gd = st.groups[names.a], st.groups[names.b], st.groups[names.default]
		assert.same({ false, true, 1, 1, true, 0, 1, 2, 0 }, { ga.ephemeral, ga.at_most_once, ga.members,
			ga.live_members, ga.solo, ga.claims, ga.pending, ga.unreleased, ga.redelivered })
		assert.same({ true, false, 1, 3, 0 }, { gb.ephemeral, gb.at_most_once, gb.members, gb.pending, gb.unreleased })
		assert.same({ 0, 0, 3 }, { gd.members, gd.live_members, gd.pending })
		local groups_of = {}
		for _, m in ipairs(st.members) do
			assert.same({ H.getpid(), true, "member" }, { m.pid, m.alive, m.state })
			groups_of[st.groups[m.group].name] = m
		end
		assert.is_not_nil(groups_of.a)
		assert.is_not_nil(groups_of.b)
		assert.equal(0, groups_of.a.claim_count) -- a solo member's open read is no claim record
		assert.is_nil(groups_of.a.claim_slot)
		a:advance(2)
		a:close()
		b:close()
		st = ch:stats()
		assert.equal(2, #st.groups) -- b went with its member; a is durable
		assert.equal(0, #st.members)
		ch:release()
	end)
end)
