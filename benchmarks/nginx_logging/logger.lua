-- The log phase of benchmarks/nginx_logging: one 64-byte record per request into a
-- ringmpsc channel that an external consumer process drains (consumer.py).
--
-- init(name), in init_by_lua (the master): open the channel the consumer created;
--   the workers inherit the mapping through fork.
-- init_worker(): register this worker's producer (one per process).
-- log(): reserve one record with timeout 0 (a request never waits for the consumer),
--   fill it in place (fill), commit. A full ring drops the record and counts the drop.
-- exit_worker(): deregister (the consumer still receives everything committed) and
--   append "pid records drops" to logs/workers.txt under the nginx prefix.
-- handle_counts(): GET /counts, "key value" lines: the channel's figures (committed,
--   consumed, and consumer_wakes when the core counts them).
local ffi = require "ffi"
local ringmpsc = require "ringmpsc"

local ngx = ngx
local ffi_cast, ffi_copy = ffi.cast, ffi.copy

if not pcall(ffi.typeof, "nginx_logging_record") then
	ffi.cdef [[
typedef struct {
	uint32_t magic;   /* MAGIC */
	uint32_t pid;     /* the worker that served the request */
	uint64_t seq;     /* 1, 2, 3, ... per worker */
	uint32_t status;  /* HTTP status */
	uint32_t len;     /* bytes of the URI copied into uri */
	double   t;       /* ngx.now() */
	uint64_t check;   /* seq * CHECK_MUL + pid */
	char     uri[24];
} nginx_logging_record;
]]
end
local rec_ptr_t = ffi.typeof("nginx_logging_record *")
assert(ffi.sizeof("nginx_logging_record") == 64)

local MAGIC = 0x4c58474e -- "NGXL"
local CHECK_MUL = 0x9E3779B97F4A7C15ULL

local _M = {}
local ch
local my = { pid = nil, p = nil, seq = 0, drops = 0 }

function _M.init(name)
	local c, err = ringmpsc.open(name)
	if not c then
		error("logger: channel " .. name .. ": " .. tostring(err) .. " (" .. ringmpsc.last_error() .. ")")
	end
	assert(c.record_size == 64, "logger: the channel's records are not 64 bytes")
	ch = c
end

local function producer()
	local pid = ngx.worker.pid()
	if my.pid ~= pid then
		my.pid, my.p, my.seq, my.drops = pid, nil, 0, 0
	end
	if not my.p then
		local p, err = ch:producer()
		if not p then
			return nil, err
		end
		my.p = p
	end
	return my.p
end

function _M.init_worker()
	local _, err = producer()
	if err then
		ngx.log(ngx.ERR, "logger: producer: ", err)
	end
end

local function drop(err)
	my.drops = my.drops + 1
	if err ~= "full" and my.drops <= 3 then
		ngx.log(ngx.ERR, "logger: record dropped: ", err)
	end
end

-- fill(ptr, pid, seq): write one record at ptr (uint8_t *, 64 bytes) in place: the
-- layout consumer.py checks (resty_logger.lua's zero-copy mode fills the same way).
function _M.fill(ptr, pid, seq)
	local r = ffi_cast(rec_ptr_t, ptr)
	local uri = ngx.var.uri
	local len = #uri < 24 and #uri or 24
	r.magic = MAGIC
	r.pid = pid
	r.seq = seq
	r.status = ngx.status
	r.len = len
	r.t = ngx.now()
	r.check = r.seq * CHECK_MUL + pid
	ffi_copy(r.uri, uri, len)
end
local fill = _M.fill

function _M.log()
	local p, err = producer()
	if not p then
		return drop(err)
	end
	local ptr, n = p:reserve(1, 0)
	if not ptr then
		return drop(n)
	end
	local seq = my.seq + 1
	my.seq = seq
	fill(ptr, my.pid, seq)
	p:commit(1)
end

function _M.exit_worker()
	if my.pid ~= ngx.worker.pid() then
		return
	end
	if my.p then
		my.p:close()
		my.p = nil
	end
	local f = io.open(ngx.config.prefix() .. "logs/workers.txt", "a")
	if f then
		f:write(my.pid, " ", my.seq, " ", my.drops, "\n")
		f:close()
	end
end

function _M.handle_counts()
	if ch then
		local st = ch:stats()
		ngx.say("committed ", st.committed)
		ngx.say("consumed ", st.consumed)
		if st.consumer_wakes then
			ngx.say("consumer_wakes ", st.consumer_wakes)
		end
	end
end

return _M
