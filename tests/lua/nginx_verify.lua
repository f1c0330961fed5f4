-- Checks the consumer's summary against what the workers say they sent.
-- luajit nginx_verify.lua SUMMARY COUNTS KILLED_PID RESPAWNED_PID BATCH "GEN1 PIDS" "GEN2 PIDS"
-- Prints one TAP line per check; exits with the number of failed checks.
local summary_path, counts_path, killed, respawned, batch, gen1s, gen2s = unpack(arg)
killed, respawned, batch = tonumber(killed), tonumber(respawned), tonumber(batch)

local failed = 0
local function check(cond, desc, detail)
	if cond then
		print("ok - " .. desc)
	else
		failed = failed + 1
		print("not ok - " .. desc)
		if detail then
			print("# " .. tostring(detail))
		end
	end
end

local function pids_of(s)
	local t = {}
	for pid in (s or ""):gmatch("%d+") do
		t[#t + 1] = tonumber(pid)
	end
	return t
end
local gen1, gen2 = pids_of(gen1s), pids_of(gen2s)

local S = { pids = {}, errors_text = {} }
for line in io.lines(summary_path) do
	local k, v = line:match("^(%a+) (.*)$")
	if k == "total" or k == "errors" then
		S[k] = tonumber(v)
	elseif k == "reason" then
		S.reason = v
	elseif k == "error" then
		S.errors_text[#S.errors_text + 1] = v
	elseif k == "pid" then
		local pid, count, last, exiting, request =
			v:match("^(%d+) count (%d+) last (%d+) exiting (%d+) request (%d+)")
		S.pids[tonumber(pid)] = { count = tonumber(count), last = tonumber(last), exiting = tonumber(exiting),
			request = tonumber(request) }
	elseif k == "stats" then
		S.stats = {}
		for key, num in v:gmatch("(%a[%a_]*) (%d+)") do
			S.stats[key] = tonumber(num)
		end
	end
end

local sent = {}
for line in io.lines(counts_path) do
	local pid, n = line:match("^(%d+) (%d+)$")
	if pid then
		sent[tonumber(pid)] = tonumber(n)
	end
end

check(S.reason == "closed", "the consumer ended on 'closed' (closed and drained)", "reason: " .. tostring(S.reason))
check(S.errors == 0, "every record intact, no duplicate, no gap, FIFO per process (consumer found "
	.. tostring(S.errors) .. " errors)", table.concat(S.errors_text, "\n# "))

local nprod, total_sent = 0, 0
local exact, exact_detail = true, {}
for pid, n in pairs(sent) do
	nprod = nprod + 1
	total_sent = total_sent + n
	local got = S.pids[pid] or { count = 0, last = 0 }
	if pid == killed then
		-- Killed between a commit and the dict update: the dict is behind by < batch.
		if not (got.count >= n and got.count <= n + batch and got.last == got.count) then
			exact = false
			exact_detail[#exact_detail + 1] = ("killed pid %d: sent >= %d, received %d (last %d)"):format(
				pid, n, got.count, got.last)
		end
	elseif got.count ~= n or got.last ~= n then
		exact = false
		exact_detail[#exact_detail + 1] = ("pid %d: sent %d, received %d (last seq %d)"):format(
			pid, n, got.count, got.last)
	end
end
check(exact, "each process's records arrived exactly once: " .. nprod .. " producing processes, "
	.. total_sent .. " records sent", table.concat(exact_detail, "; "))

local strangers = {}
for pid in pairs(S.pids) do
	if not sent[pid] then
		strangers[#strangers + 1] = pid
	end
end
check(#strangers == 0, "no records from unknown processes", table.concat(strangers, " "))

local st = S.stats or {}
check(S.total and st.committed == S.total and st.consumed == S.total and st.pending == 0,
	"channel totals agree: committed == consumed == received == " .. tostring(S.total),
	("committed %s consumed %s pending %s received %s"):format(tostring(st.committed), tostring(st.consumed),
		tostring(st.pending), tostring(S.total)))
check(st.fenced_rings == 0, "no ring was fenced off")

local function all_produced(list, field)
	local bad = {}
	for _, pid in ipairs(list) do
		local got = S.pids[pid]
		if not got or got[field or "count"] == 0 then
			bad[#bad + 1] = pid
		end
	end
	return #list > 0 and #bad == 0, table.concat(bad, " ")
end
check(all_produced(gen1), "all " .. #gen1 .. " first-generation workers produced")
check(all_produced(gen2), "all " .. #gen2 .. " second-generation workers (after reload) produced")
local ok, bad = all_produced(gen1, "exiting")
check(ok, "every old worker kept producing after the reload began (records flagged 'exiting')",
	"no exiting records from: " .. bad)
local requests = 0
for _, got in pairs(S.pids) do
	requests = requests + got.request
end
check(requests > 0, "request handlers' records (p:send) arrived: " .. requests)
check(S.pids[killed] and S.pids[killed].count > 0,
	"the killed worker's committed records arrived: " .. tostring(S.pids[killed] and S.pids[killed].count))
check(S.pids[respawned] and S.pids[respawned].count > 0,
	"the respawned worker produced through its own ring: " .. tostring(S.pids[respawned] and S.pids[respawned].count))
check((st.reclaimed_slots or 0) >= 1, "the dead worker's slot was reclaimed (reclaimed_slots = "
	.. tostring(st.reclaimed_slots) .. ")")

os.exit(failed)
