-- The application side of tests/lua/resty_test.py (nginx.conf next to this file):
-- what an operator writes around resty.ringmpsc.
local shipper = require "resty.ringmpsc"
local ffi = require "ffi"

local _M = {}
local names
local my = { pid = nil, seq = 0, inner_seq = 0 }

function _M.init(opts)
	names = opts
	assert(shipper.configure(opts.logged, {
		record_size = 64, capacity = opts.capacity, max_producers = opts.max_producers,
		mode = "0660", group = opts.group, log_interval = 1,
	}))
	assert(shipper.configure(opts.inner, {
		record_size = 64, capacity = 1024, max_producers = opts.max_producers, max_consumers = 4,
	}))
end

-- The in-nginx consumer appends "pid seq deliveries" per record to a file per process.
local function inner_handler(ptr, n, rs, c)
	local f = assert(io.open(ngx.config.prefix() .. "logs/inner-" .. ngx.worker.pid() .. ".txt", "a"))
	local d = c:deliveries()
	for i = 0, n - 1 do
		local pid, seq = ffi.string(ptr + i * rs, rs):match("^(%d+) (%d+) ")
		f:write(pid, " ", seq, " ", d, "\n")
	end
	f:close()
end

function _M.init_worker()
	shipper.init_worker()
	assert(shipper.get(names.inner):consume(inner_handler, { worker = 0, max_interval = 0.05 }))
end

local function next_seq(field)
	local pid = ngx.worker.pid()
	if my.pid ~= pid then
		my.pid, my.seq, my.inner_seq = pid, 0, 0
	end
	my[field] = my[field] + 1
	return pid, my[field]
end

function _M.log()
	local pid, seq = next_seq("seq")
	local ok, err = shipper.get(names.logged):send(pid .. " " .. seq .. " " .. ngx.var.uri .. " ")
	ngx.var.shipped = pid .. ":" .. seq .. ":" .. (ok and "sent" or err)
end

function _M.log_inner()
	local pid, seq = next_seq("inner_seq")
	shipper.get(names.inner):send(pid .. " " .. seq .. " ")
end

function _M.stats()
	for _, name in ipairs { names.logged, names.inner } do
		local st = assert(shipper.get(name):stats())
		ngx.say(name, " sent ", st.sent, " dropped ", st.dropped, " full_events ", st.full_events,
			" pending ", st.pending, " consumed ", st.consumed, " active_producers ", st.active_producers)
	end
end

return _M
