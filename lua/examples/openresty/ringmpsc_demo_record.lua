-- The 64-byte record of the OpenResty demo: who sent it, its sequence number in
-- that process, and enough redundancy to detect a torn or foreign record.
local ffi = require "ffi"

if not pcall(ffi.typeof, "ringmpsc_demo_record") then
	ffi.cdef [[
typedef struct {
	uint32_t magic;      /* RECORD_MAGIC */
	uint32_t pid;        /* producing process */
	uint64_t seq;        /* 1, 2, 3, ... per producing process */
	uint32_t flags;      /* FLAG_EXITING | FLAG_REQUEST */
	uint32_t worker_id;  /* ngx.worker.id() of the producer */
	uint64_t check;      /* seq * CHECK_MUL + pid */
	uint8_t  fill[32];   /* (seq + i) & 0xff */
} ringmpsc_demo_record;
]]
end

local _M = {
	SIZE = 64,
	MAGIC = 0x31585052,
	FLAG_EXITING = 1, -- sent while the worker was shutting down (reload/quit)
	FLAG_REQUEST = 2, -- sent from a request handler with p:send (else timer, reserve/commit)
	ptr_t = ffi.typeof("ringmpsc_demo_record *"),
	cptr_t = ffi.typeof("const ringmpsc_demo_record *"),
	t = ffi.typeof("ringmpsc_demo_record"),
}
assert(ffi.sizeof(_M.t) == _M.SIZE)

local CHECK_MUL = 0x9E3779B97F4A7C15ULL

function _M.fill(r, pid, seq, flags, worker_id)
	r.magic = _M.MAGIC
	r.pid = pid
	r.seq = seq
	r.flags = flags
	r.worker_id = worker_id
	r.check = r.seq * CHECK_MUL + pid
	for i = 0, 31 do
		r.fill[i] = (seq + i) % 256
	end
end

-- nil if the record is intact, else what is wrong with it.
function _M.verify(r)
	if r.magic ~= _M.MAGIC then
		return "bad magic"
	end
	if r.check ~= r.seq * CHECK_MUL + r.pid then
		return "bad check word"
	end
	local seq = tonumber(r.seq)
	for i = 0, 31 do
		if r.fill[i] ~= (seq + i) % 256 then
			return "bad fill byte " .. i
		end
	end
	return nil
end

return _M
