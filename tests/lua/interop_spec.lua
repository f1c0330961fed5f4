-- Python <-> LuaJIT interop: channels are the same bytes in both bindings.
-- Written against the Python API of the design (python/ringmpsc):
--   ringmpsc.Channel(record_size, capacity=, max_producers=, name=), Channel.open(name),
--   ch.producer().send(b), ch.recv(timeout=) -> bytes of record_size.
-- Skipped (pending) when `import ringmpsc` does not work with python/ on sys.path
-- (or an installed package).
local ringmpsc = require "ringmpsc"
local H = require "helpers"

after_each(function()
	H.remove_names()
end)

local PYTHON = os.getenv("PYTHON") or "python3"
local repo = H.repo

-- The checkout's python/ first (an in-place build), else an installed package
-- (or PYTHONPATH).
local prelude = [[
import sys, os
sys.path.insert(0, os.path.join(%q, "python"))
try:
    import ringmpsc
    ringmpsc.Channel
except ImportError:
    del sys.path[0]
    for m in [m for m in sys.modules if m == "ringmpsc" or m.startswith("ringmpsc.")]:
        del sys.modules[m]
    import ringmpsc
]]

local function abs_repo()
	local _, out = H.sh("cd " .. repo .. " && pwd")
	return (out:gsub("%s+$", ""))
end

local python_ok, python_why
do
	local path = os.tmpname() .. ".py"
	local f = assert(io.open(path, "w"))
	f:write(prelude:format(abs_repo()), "print(ringmpsc.__file__)\n")
	f:close()
	local rc, out = H.sh("timeout 30 " .. PYTHON .. " " .. path)
	os.remove(path)
	python_ok = rc == 0
	python_why = out:match("([^\n]*)\n?$") or out
end

local function write_script(body)
	local path = os.tmpname() .. ".py"
	local f = assert(io.open(path, "w"))
	f:write(prelude:format(abs_repo()), "\n", body)
	f:close()
	return path
end

local function read_file(path)
	local f = io.open(path, "r")
	if not f then
		return ""
	end
	local s = f:read("*a")
	f:close()
	return s
end

local function padded(s, n)
	return s .. string.rep("\0", n - #s)
end

describe("Python <-> LuaJIT", function()
	local function skip_without_python()
		if not python_ok then
			pending("the Python package is not importable yet: " .. tostring(python_why))
			return true
		end
	end

	it("a channel created by Lua is opened by Python; Lua receives what Python sends", function()
		if skip_without_python() then return end
		local name = H.name("py-in")
		local ch = assert(ringmpsc.new { record_size = 32, capacity = 64, max_producers = 4, name = name })
		local script = write_script(([[
ch = ringmpsc.Channel.open(%q)
print("geometry", getattr(ch, "record_size", None), getattr(ch, "capacity", None),
      getattr(ch, "max_producers", None))
p = ch.producer()
for i in range(50):
    p.send(b"py:%%d" %% i)
print("sent 50")
]]):format(name))
		local rc, out = H.sh("timeout 30 " .. PYTHON .. " " .. script)
		os.remove(script)
		assert.equal(0, rc, out)
		local rs, cap, mp = out:match("geometry (%S+) (%S+) (%S+)")
		if rs ~= "None" then
			assert.same({ "32", "64", "4" }, { rs, cap, mp })
		end
		for i = 0, 49 do
			assert.equal(padded("py:" .. i, 32), ch:recv(1))
		end
		assert.same({ nil, "empty" }, { ch:recv() })
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("a channel created, filled and closed by Python drains in Lua, then 'closed'", function()
		if skip_without_python() then return end
		local name = H.name("py-close")
		local script = write_script(([[
ch = ringmpsc.Channel(16, capacity=32, max_producers=2, name=%q)
p = ch.producer()
for i in range(20):
    p.send(b"close:%%d" %% i)
p.close()
ch.close()
]]):format(name))
		local rc, out = H.sh("timeout 30 " .. PYTHON .. " " .. script)
		os.remove(script)
		assert.equal(0, rc, out)
		local ch = assert(ringmpsc.open(name))
		assert.same({ 16, 32, 2 }, { ch.record_size, ch.capacity, ch.max_producers })
		assert.is_true(ch:is_closed())
		for i = 0, 19 do
			assert.equal(padded("close:" .. i, 16), ch:recv())
		end
		assert.same({ nil, "closed" }, { ch:recv(1) })
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("variable-length messages (slab pool) cross in both directions", function()
		if skip_without_python() then return end
		local name = H.name("py-slab")
		local ch = assert(ringmpsc.new { record_size = 16, capacity = 8, max_producers = 2, name = name,
			slab_size = 4096, slab_count = 4 })
		local p = assert(ch:producer())
		assert.is_true(p:send_bytes(string.rep("L", 3000)))
		p:close()
		local script = write_script(([[
ch = ringmpsc.Channel.open(%q)
m = ch.recv_bytes(timeout=5)
assert m == b"L" * 3000, len(m)
p = ch.producer()
p.send_bytes(b"P" * 2500)
p.close()
print("ok")
]]):format(name))
		local rc, out = H.sh("timeout 30 " .. PYTHON .. " " .. script)
		os.remove(script)
		assert.equal(0, rc, out)
		assert.equal(string.rep("P", 2500), ch:recv_bytes(1))
		assert.equal(4, ch:stats().slabs_free)
		ch:release()
		ringmpsc.unlink(name)
	end)

	it("a Python consumer reads, exactly once and in order, what LuaJIT producer processes send", function()
		if skip_without_python() then return end
		local name = H.name("py-out")
		local N, K = 300, 2
		local out_path = os.tmpname()
		local script = write_script(([[
ch = ringmpsc.Channel(32, capacity=64, max_producers=4, name=%q)
open(%q + ".ready", "w").close()
last = {}
for _ in range(%d):
    rec = bytes(ch.recv(timeout=10))
    assert len(rec) == 32, len(rec)
    text = rec.rstrip(b"\0").decode()
    assert rec == text.encode() + bytes(32 - len(text)), rec
    k, i = text.split(":")[0], int(text.split(":")[1])
    assert i == last.get(k, 0) + 1, (k, i, last.get(k))
    last[k] = i
print("ok", sum(last.values()), sorted(last.items()))
]]):format(name, out_path, N * K))
		os.execute("timeout 60 " .. PYTHON .. " " .. script .. " > " .. out_path .. " 2>&1 &")
		H.wait_until(function() return H.file_exists(out_path .. ".ready") end, 30,
			function() return "the Python consumer to create the channel; its output:\n" .. read_file(out_path) end)
		local ch = assert(ringmpsc.open(name), "Python did not create the channel: " .. read_file(out_path))
		local children = {}
		for k = 1, K do
			children[k] = H.spawn(function()
				local p = assert(ch:producer())
				for i = 1, N do
					assert(p:send("lua" .. k .. ":" .. i, 10))
				end
				p:close()
			end)
		end
		for k = 1, K do
			assert.equal(0, H.wait(children[k], 30))
		end
		H.wait_until(function() return read_file(out_path):find("\n", 1, true) ~= nil end, 30,
			function() return "the Python consumer's verdict; its output:\n" .. read_file(out_path) end)
		local out = read_file(out_path)
		os.remove(out_path)
		os.remove(out_path .. ".ready")
		os.remove(script)
		ch:release()
		ringmpsc.unlink(name)
		assert.matches("^ok " .. N * K, out)
	end)

	-- Python's API has no groups yet: its consumer calls join the default group
	-- implicitly, which makes it a member beside LuaJIT members of a channel Lua made.
	it("a Python consumer shares the default group with a LuaJIT member process; a Lua group sees all", function()
		if skip_without_python() then return end
		local name = H.name("py-group")
		local N = 400
		local ch = assert(ringmpsc.new { record_size = 8, capacity = 1024, max_producers = 1, max_consumers = 3,
			max_groups = 2, name = name })
		local audit = assert(ch:consumer("audit"))
		local out_path, lua_path = os.tmpname(), os.tmpname()
		local script = write_script(([[
import time
ch = ringmpsc.Channel.open(%q)
got = []
def take(rec):
    got.append(int(bytes(rec).rstrip(b"\0")))
    time.sleep(0.0005)  # a slow member: the other one takes its share meanwhile
try:
    take(ch.recv_nowait())  # joins the default group (records may flow already)
except ringmpsc.Empty:
    pass
for rec in ch:  # until closed and drained
    take(rec)
print("ok", len(got), " ".join(map(str, got)))
]]):format(name))
		os.execute("timeout 60 " .. PYTHON .. " " .. script .. " > " .. out_path .. " 2>&1 &")
		local child = H.spawn(function()
			local c = assert(ch:consumer())
			local got = {}
			while true do
				local rec, err = c:recv(10)
				if err == "closed" then break end
				got[#got + 1] = assert(rec, err):match("^%d+")
				H.sleep(0.0005)
			end
			local f = assert(io.open(lua_path, "w"))
			f:write(table.concat(got, " "))
			f:close()
		end)
		H.wait_until(function()
			for _, g in ipairs(ch:stats().groups) do
				if g.name == "default" and g.live_members == 2 then
					return true
				end
			end
		end, 30, function() return "Python and LuaJIT to join the default group; Python's output:\n"
			.. read_file(out_path) end)
		local p = assert(ch:producer())
		for i = 1, N do
			assert(p:send(tostring(i), 10))
		end
		ch:close()
		assert.equal(0, H.wait(child, 30))
		H.wait_until(function() return read_file(out_path):find("\n", 1, true) ~= nil end, 30,
			function() return "the Python consumer's verdict; its output:\n" .. read_file(out_path) end)
		local py_out, lua_out = read_file(out_path), read_file(lua_path)
		os.remove(out_path)
		os.remove(lua_path)
		os.remove(script)
		assert.matches("^ok %d+", py_out)
		local seen, counts = {}, {}
		for k, list in ipairs { py_out:match("^ok %d+ ?([^\n]*)"), lua_out } do
			counts[k] = 0
			for id in list:gmatch("%d+") do
				id = tonumber(id)
				assert(not seen[id], "record " .. id .. " delivered to both members")
				seen[id] = true
				counts[k] = counts[k] + 1
			end
		end
		assert.equal(N, counts[1] + counts[2])
		assert.is_true(counts[1] > 0 and counts[2] > 0, "Python got " .. counts[1] .. ", LuaJIT " .. counts[2])
		for i = 1, N do -- the audit group got every record, in order
			assert.equal(padded(tostring(i), 8), audit:recv())
		end
		assert.same({ nil, "closed" }, { audit:recv() })
		audit:close()
		ch:release()
		ringmpsc.unlink(name)
	end)
end)
