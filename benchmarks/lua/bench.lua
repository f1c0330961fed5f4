-- Throughput of the LuaJIT binding, one process, producer and consumer in turn
-- (so this is the per-record cost of the calls, not a cross-core figure).
-- Every row moves 64-byte records in groups of BATCH = 64 (push 64, then take 64)
-- and the consumer reads every record (one byte of each into a checksum).
--
-- Inside nginx (benchmarks/lua/run.sh) it adds the peer that OpenResty users have
-- today, ngx.shared.DICT lpush + rpop of the same 64-byte strings, in the same run.
-- Standalone: luajit benchmarks/lua/bench.lua [records]   (ringmpsc rows only)
--
-- _M.json(rows, meta) gives the same rows as benchmark JSON lines (suite "lua",
-- scenario "same-worker": one worker produces and consumes in turn); run.sh --json
-- FILE writes them.
local ffi = require "ffi"
local ringmpsc = require "ringmpsc"

local byte = string.byte
local ffi_copy = ffi.copy

local _M = {}

local RECORD = 64
local BATCH = 64

local payload = string.rep("r", RECORD - 8) .. "01234567" -- 64 bytes, last byte '7'

-- A monotonic nanosecond clock (ngx.now() has only millisecond resolution).
local function now_fn()
	if not pcall(ffi.typeof, "struct bench_timespec") then
		ffi.cdef [[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct bench_timespec *ts);
]]
	end
	local ts = ffi.new("struct bench_timespec")
	return function()
		ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
		return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
	end
end
local now = now_fn()

-- Each returns the checksum; `n` is a multiple of BATCH.
local cases = {}

-- path/batch/impl: the common benchmark row fields of each case (batch = records per call).
cases[#cases + 1] = { name = "ringmpsc p:send + ch:recv", path = "send/recv", batch = 1, fn = function(ch, p, n)
	local sum = 0
	for _ = 1, n / BATCH do
		for _ = 1, BATCH do
			local ok, err = p:send(payload)
			if not ok then error(err) end
		end
		for _ = 1, BATCH do
			local rec, err = ch:recv()
			if not rec then error(err) end
			sum = sum + byte(rec, RECORD)
		end
	end
	return sum
end }

cases[#cases + 1] = { name = "ringmpsc reserve(1)/commit + read(1)/advance", path = "reserve/read", batch = 1,
	fn = function(ch, p, n)
	local sum = 0
	for _ = 1, n / BATCH do
		for _ = 1, BATCH do
			local ptr, k = p:reserve(1)
			if not ptr then error(k) end
			ffi_copy(ptr, payload, RECORD)
			p:commit(1)
		end
		for _ = 1, BATCH do
			local ptr, k = ch:read(1)
			if not ptr then error(k) end
			sum = sum + ptr[RECORD - 1]
			ch:advance(1)
		end
	end
	return sum
end }

cases[#cases + 1] = { name = "ringmpsc reserve(64)/commit + read(64)/advance", path = "reserve/read", batch = BATCH,
	fn = function(ch, p, n)
	local sum = 0
	for _ = 1, n / BATCH do
		local left = BATCH
		while left > 0 do
			local ptr, k = p:reserve(left)
			if not ptr then error(k) end
			for i = 0, k - 1 do
				ffi_copy(ptr + i * RECORD, payload, RECORD)
			end
			p:commit(k)
			left = left - k
		end
		left = BATCH
		while left > 0 do
			local ptr, k = ch:read(left)
			if not ptr then error(k) end
			for i = 0, k - 1 do
				sum = sum + ptr[i * RECORD + RECORD - 1]
			end
			ch:advance(k)
			left = left - k
		end
	end
	return sum
end }

cases[#cases + 1] = { name = "ringmpsc p:send + ch:recv_into(64)", path = "send/recv_into", batch = BATCH,
	fn = function(ch, p, n)
	local sum = 0
	local buf = ffi.new("uint8_t[?]", BATCH * RECORD)
	for _ = 1, n / BATCH do
		for _ = 1, BATCH do
			local ok, err = p:send(payload)
			if not ok then error(err) end
		end
		local got = 0
		while got < BATCH do
			local k, err = ch:recv_into(buf, BATCH - got)
			if not k then error(err) end
			for i = 0, k - 1 do
				sum = sum + buf[i * RECORD + RECORD - 1]
			end
			got = got + k
		end
	end
	return sum
end }

local function shdict_case(dict)
	return { name = "ngx.shared.DICT lpush + rpop", impl = "ngx.shared.DICT", path = "lpush/rpop", batch = 1,
		peer = true, fn = function(_, _, n)
		local sum = 0
		for _ = 1, n / BATCH do
			for _ = 1, BATCH do
				local len, err = dict:lpush("q", payload)
				if not len then error(err) end
			end
			for _ = 1, BATCH do
				local v = dict:rpop("q")
				sum = sum + byte(v, RECORD)
			end
		end
		return sum
	end }
end

-- Returns rows { name, records, records_per_s, mb_per_s, seconds, ok }: each row
-- runs at least `n` records and at least MIN_SECONDS per repetition (the count is
-- scaled up for fast rows), best of `reps`. `min_seconds` defaults to MIN_SECONDS.
local MIN_SECONDS = 0.2

function _M.run(n, reps, dict, min_seconds)
	min_seconds = min_seconds or MIN_SECONDS
	n = math.max(n - n % BATCH, BATCH)
	reps = reps or 3
	local list = {}
	for _, c in ipairs(cases) do
		list[#list + 1] = c
	end
	if dict then
		list[#list + 1] = shdict_case(dict)
	end
	local ch = assert(ringmpsc.new { record_size = RECORD, capacity = 1024, max_producers = 4 })
	local p = assert(ch:producer())
	local last = byte(payload, RECORD)
	local rows = {}
	for _, c in ipairs(list) do
		c.fn(ch, p, BATCH * 256) -- warm up (and compile)
		local count = n
		local t0 = now()
		c.fn(ch, p, count)
		local dt = now() - t0
		if dt < min_seconds then
			count = math.ceil(count * min_seconds * 1.2 / dt / BATCH) * BATCH
		end
		local best = math.huge
		local ok = true
		for _ = 1, reps do
			t0 = now()
			local sum = c.fn(ch, p, count)
			dt = now() - t0
			ok = ok and sum == count * last
			best = math.min(best, dt)
		end
		rows[#rows + 1] = {
			name = c.name,
			impl = c.impl or "ringmpsc",
			path = c.path,
			batch = c.batch,
			peer = c.peer,
			records = count,
			seconds = best,
			records_per_s = count / best,
			mb_per_s = count * RECORD / best / 1e6,
			ok = ok,
		}
	end
	p:close()
	ch:release()
	rows.reps = reps
	return rows
end

function _M.format(rows)
	local peer
	for _, r in ipairs(rows) do
		if r.peer then
			peer = r
		end
	end
	local out = {}
	out[#out + 1] = ("%d-byte records in groups of %d, consumer reads every record, best of %d; %s"):format(
		RECORD, BATCH, rows.reps or 3,
		jit and ("JIT " .. (jit.status() and "on" or "off") .. ", " .. jit.version) or "no JIT")
	out[#out + 1] = ("%-48s %10s %14s %10s %8s"):format("case", "records", "records/s", "MB/s",
		peer and "vs DICT" or "")
	for _, r in ipairs(rows) do
		out[#out + 1] = ("%-48s %10d %14.0f %10.1f %8s%s"):format(r.name, r.records, r.records_per_s, r.mb_per_s,
			peer and ("%.2fx"):format(r.records_per_s / peer.records_per_s) or "",
			r.ok and "" or "  CHECKSUM MISMATCH")
	end
	return table.concat(out, "\n") .. "\n"
end

local function json_value(v)
	local t = type(v)
	if v == nil then
		return "null"
	elseif t == "boolean" then
		return tostring(v)
	elseif t == "number" then
		if v ~= v or v == math.huge or v == -math.huge then
			return "null"
		end
		if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
			return ("%d"):format(v)
		end
		return ("%.9g"):format(v)
	end
	return '"' .. tostring(v):gsub('[%c"\\]', function(ch)
		if ch == '"' or ch == "\\" then
			return "\\" .. ch
		end
		return ("\\u%04x"):format(ch:byte())
	end) .. '"'
end

local JSON_KEYS = { "suite", "impl", "path", "scenario", "record_size", "batch", "producers", "consumers",
	"processes", "reads_data", "records_per_s", "bytes_per_s", "p50_ns", "p99_ns", "runs",
	"name", "group", "records", "seconds", "ok", "jit", "ratio_to_dict" }

-- One benchmark JSON object per line for each row of _M.run. `meta` adds fields to
-- every row (e.g. nginx = version). Rate = the best of `runs` repetitions.
function _M.json(rows, meta)
	local peer
	for _, r in ipairs(rows) do
		if r.peer then
			peer = r
		end
	end
	local jitv = jit and (jit.version .. ", JIT " .. (jit.status() and "on" or "off")) or "no JIT"
	local out = {}
	for _, r in ipairs(rows) do
		local o = {
			suite = "lua", impl = r.impl, path = r.path, scenario = "same-worker",
			record_size = RECORD, batch = r.batch, producers = 1, consumers = 1,
			processes = false, reads_data = true, records_per_s = r.records_per_s,
			bytes_per_s = r.records_per_s * RECORD, runs = rows.reps or 3,
			name = r.name, group = BATCH, records = r.records, seconds = r.seconds, ok = r.ok,
			jit = jitv, ratio_to_dict = peer and r.records_per_s / peer.records_per_s or nil,
		}
		local parts = {}
		for _, k in ipairs(JSON_KEYS) do
			parts[#parts + 1] = json_value(k) .. ":" .. json_value(o[k])
		end
		local extra = {}
		for k, v in pairs(meta or {}) do
			extra[#extra + 1] = json_value(k) .. ":" .. json_value(v)
		end
		table.sort(extra)
		for _, e in ipairs(extra) do
			parts[#parts + 1] = e
		end
		out[#out + 1] = "{" .. table.concat(parts, ",") .. "}"
	end
	return table.concat(out, "\n") .. "\n"
end

if not ngx and arg and arg[0] and arg[0]:match("bench%.lua$") then
	local n = tonumber(arg[1]) or 2000000
	io.write(_M.format(_M.run(n, 5)))
end

return _M
