-- The consumer of the OpenResty demo: a separate LuaJIT process that opens the
-- named channel, drains it until it is closed (and drained), checks every record
-- and writes a summary.
--
--   luajit consumer.lua NAME SUMMARY_FILE [MAX_SECONDS] [OPEN_WAIT_SECONDS]
--
-- Checks: each record is intact (magic, check word, fill bytes) and, per producing
-- process, sequence numbers arrive exactly once and in order (1, 2, 3, ...: the demo
-- has one producer per process, and order is FIFO per producer).
-- Summary lines:
--   total N / errors N / error <text> (first 50) / reason closed|deadline|<err>
--   pid <pid> count <n> last <seq> exiting <n> request <n> worker <id>
--   stats committed <n> consumed <n> pending <n> reclaimed_slots <n> fenced_rings <n>
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
package.path = here .. "/?.lua;" .. here .. "/../../?.lua;" .. package.path

local ffi = require "ffi"
local bit = require "bit"
local ringmpsc = require "ringmpsc"
local record = require "ringmpsc_demo_record"

ffi.cdef [[ int usleep(unsigned int usec); ]]

local name, summary_path = arg[1], arg[2]
local max_seconds = tonumber(arg[3] or "120")
local open_wait = tonumber(arg[4] or "20")
if not name or not summary_path then
	io.stderr:write("usage: luajit consumer.lua NAME SUMMARY_FILE [MAX_SECONDS] [OPEN_WAIT_SECONDS]\n")
	os.exit(2)
end

local started = os.time()
local ch, err
while true do
	ch, err = ringmpsc.open(name)
	if ch or os.time() - started > open_wait then
		break
	end
	ffi.C.usleep(20000)
end
if not ch then
	io.stderr:write("consumer: cannot open ", name, ": ", err, "\n")
	os.exit(1)
end
assert(ch.record_size == record.SIZE, "unexpected record_size")

local errors, first_errors = 0, {}
local function report(msg)
	errors = errors + 1
	if #first_errors < 50 then
		first_errors[#first_errors + 1] = msg
	end
end

local last, count, exiting, request, worker = {}, {}, {}, {}, {}
local total = 0
local FLAG_EXITING, FLAG_REQUEST = record.FLAG_EXITING, record.FLAG_REQUEST
local band = bit.band

local function check(r)
	local bad = record.verify(r)
	if bad then
		report("record " .. total .. ": " .. bad)
		return
	end
	local pid, seq = tonumber(r.pid), tonumber(r.seq)
	local prev = last[pid]
	if not prev then
		prev = 0
		count[pid], exiting[pid], request[pid] = 0, 0, 0
		worker[pid] = tonumber(r.worker_id)
	end
	if seq ~= prev + 1 then
		report(string.format("pid %d: seq %d after %d (%s)", pid, seq, prev,
			seq <= prev and "duplicate or reordered" or "gap"))
	end
	if seq > prev then
		last[pid] = seq
	end
	count[pid] = count[pid] + 1
	local flags = r.flags
	if band(flags, FLAG_EXITING) ~= 0 then
		exiting[pid] = exiting[pid] + 1
	end
	if band(flags, FLAG_REQUEST) ~= 0 then
		request[pid] = request[pid] + 1
	end
end

-- Alternate the two consumer paths: copy-out (recv_into) and zero-copy
-- (read/advance), both blocking up to 0.2 s so an idle consumer sleeps.
local B = 512
local buf = ffi.new("uint8_t[?]", B * record.SIZE)
local recs = ffi.cast(record.cptr_t, buf)
local cptr_t = record.cptr_t
local reason
local iter = 0
while true do
	iter = iter + 1
	local n, rerr
	if iter % 2 == 0 then
		n, rerr = ch:recv_into(buf, B, 0.2)
		if n then
			for i = 0, n - 1 do
				check(recs[i])
			end
			total = total + n
		end
	else
		local ptr
		ptr, rerr = ch:read(B, 0.2)
		if ptr then
			n = rerr
			local rp = ffi.cast(cptr_t, ptr)
			for i = 0, n - 1 do
				check(rp[i])
			end
			total = total + n
			assert(ch:advance(n))
		end
	end
	if not n then
		if rerr == "closed" then
			reason = "closed"
			break
		elseif rerr ~= "timeout" then
			reason = rerr
			report("consumer: " .. rerr .. " (" .. ringmpsc.last_error() .. ")")
			break
		end
	end
	if os.time() - started > max_seconds then
		reason = "deadline"
		report("consumer: deadline of " .. max_seconds .. " s reached before the channel was closed")
		break
	end
end

local st = assert(ch:stats())
local out = assert(io.open(summary_path .. ".tmp", "w"))
out:write("total ", total, "\n", "errors ", errors, "\n", "reason ", reason, "\n")
for _, e in ipairs(first_errors) do
	out:write("error ", e, "\n")
end
local pids = {}
for pid in pairs(count) do
	pids[#pids + 1] = pid
end
table.sort(pids)
for _, pid in ipairs(pids) do
	out:write(string.format("pid %d count %d last %d exiting %d request %d worker %d\n", pid, count[pid],
		last[pid], exiting[pid], request[pid], worker[pid]))
end
out:write(string.format("stats committed %d consumed %d pending %d reclaimed_slots %d fenced_rings %d\n",
	st.committed, st.consumed, st.pending, st.reclaimed_slots, st.fenced_rings))
out:close()
assert(os.rename(summary_path .. ".tmp", summary_path))
ch:release()
os.exit(errors == 0 and 0 or 1)
