-- ringmpsc: LuaJIT FFI binding of the ringmpsc C library (lock-free MPSC rings of
-- fixed-size records in one shared-memory region).
--
--   local ringmpsc = require "ringmpsc"
--   local ch = assert(ringmpsc.new{ record_size = 64, capacity = 4096 })
--   local p = assert(ch:producer())
--   assert(p:send("hello"))
--   local rec = ch:recv(0.5)          -- a record_size string, zero-filled after "hello"
--
-- Conventions (those of lua-resty-core): one ffi.cdef at load, C functions through
-- the cached library namespace `C`, handles under ffi.gc, runtime failures returned
-- as `nil, err` with a short stable string, misuse (wrong argument types, a closed
-- handle) raised with error(). Timeouts are seconds as in ngx.sleep: omitted or 0 =
-- try once, > 0 = wait at most that long, < 0 or math.huge = wait until success,
-- close or error. Under nginx never pass a timeout > 0 from a request or timer: a
-- blocking call blocks the whole worker; poll with 0 and ngx.sleep instead.
--
-- Order is FIFO per producer, none across producers. Consumers are members of
-- groups: every group receives every record (fan-out), inside a group each record
-- goes to one member (work sharing). A channel handle joins the default group with
-- its first recv/read (one consumer process, max_consumers = 1, by default; a dead
-- one's place is taken over); ch:consumer(group) makes a Consumer of its own handle
-- in any group. A producer belongs to the process that registered it: after fork,
-- register a new one in the child (the inherited one answers "forked").

local ffi = require "ffi"
local bit = require "bit"

local ffi_new, ffi_string, ffi_cast, ffi_gc, ffi_typeof = ffi.new, ffi.string, ffi.cast, ffi.gc, ffi.typeof
local type, error, tonumber, setmetatable, tostring = type, error, tonumber, setmetatable, tostring
local concat = table.concat
local band = bit.band

local _M = { _VERSION = "0.7.0" } -- from VERSION by scripts/version.sh; do not edit

-- Exactly the declarations this module uses, copied from csrc/include/ringmpsc.h
-- (tests/lua/cdef_spec.lua checks each against the preprocessed header; the
-- flags are macros there, static consts here). Guarded so that a second load of
-- this file into the same state (package.loaded cleared by a test) does not fail
-- with "attempt to redefine".
if not pcall(ffi_typeof, "struct rmpsc_config") then
	ffi.cdef [[
enum rmpsc_error {
	RMPSC_OK         = 0,
	RMPSC_EFULL      = -1,
	RMPSC_EEMPTY     = -2,
	RMPSC_ECLOSED    = -3,
	RMPSC_ETIMEDOUT  = -4,
	RMPSC_ENOSLOT    = -5,
	RMPSC_ECONSUMER  = -6,
	RMPSC_EINVAL     = -7,
	RMPSC_ECORRUPT   = -8,
	RMPSC_ESYS       = -9,
	RMPSC_EFORKED    = -10,
	RMPSC_EINTR      = -11,
};

enum rmpsc_slot_state {
	RMPSC_SLOT_FREE = 0,
	RMPSC_SLOT_REGISTERING = 1,
	RMPSC_SLOT_ACTIVE = 2,
	RMPSC_SLOT_DETACHED = 3,
	RMPSC_SLOT_RECLAIMING = 4,
	RMPSC_SLOT_FENCED = 5,
};

static const unsigned RMPSC_OPEN_INTERRUPTIBLE = 0x1;
static const unsigned RMPSC_CREATE_FULL_FENCES = 0x2;
static const unsigned RMPSC_GROUP_EPHEMERAL = 0x1;
static const unsigned RMPSC_GROUP_AT_MOST_ONCE = 0x2;

typedef struct rmpsc_channel rmpsc_channel;
typedef struct rmpsc_producer rmpsc_producer;

struct rmpsc_config {
	uint32_t record_size;
	uint32_t capacity;
	uint32_t max_producers;
	uint32_t slab_size;
	uint32_t slab_count;
	uint64_t start_position;
	uint32_t max_consumers;
	uint32_t max_groups;
	uint32_t mode;
	uint32_t gid;
};

struct rmpsc_ring_stats {
	uint32_t slot;
	uint32_t state;
	uint32_t owner_pid;
	uint32_t owner_alive;
	uint64_t pending;
	uint64_t committed;
	uint64_t consumed;
	uint64_t dropped;
};

struct rmpsc_stats {
	uint32_t max_producers;
	uint32_t active_producers;
	uint32_t consumer_pid;
	uint32_t closed;
	uint64_t pending;
	uint64_t committed;
	uint64_t consumed;
	uint32_t slab_count;
	uint32_t slabs_free;
	uint32_t fenced_rings;
	uint32_t reclaimed_slots;
	uint32_t max_consumers;
	uint32_t max_groups;
	uint32_t groups;
	uint32_t members;
	uint32_t recovered_members;
	uint64_t consumer_wakes;
	uint64_t dropped;
	uint64_t drop_episodes;
	uint64_t channel_id;
};

struct rmpsc_group_stats {
	char name[31u + 1];
	uint32_t flags;
	uint32_t members;
	uint32_t live_members;
	uint32_t solo;
	uint32_t claims;
	uint64_t pending;
	uint64_t unreleased;
	uint64_t redelivered;
};

struct rmpsc_member_stats {
	uint32_t pid;
	uint32_t alive;
	uint32_t group;
	uint32_t state;
	uint32_t claim_slot;
	uint32_t claim_count;
};

const char *rmpsc_last_error(void);

int rmpsc_channel_create(rmpsc_channel **out, const char *name,
			 const struct rmpsc_config *config, unsigned flags);
int rmpsc_channel_open(rmpsc_channel **out, const char *name, unsigned flags);
int rmpsc_channel_attach_fd(rmpsc_channel **out, int fd, unsigned flags);
int rmpsc_unlink(const char *name);
void rmpsc_channel_release(rmpsc_channel *ch);
int rmpsc_channel_fd(const rmpsc_channel *ch);
void rmpsc_channel_config(const rmpsc_channel *ch, struct rmpsc_config *out);
const char *rmpsc_channel_name(const rmpsc_channel *ch);
int rmpsc_channel_close(rmpsc_channel *ch);
int rmpsc_channel_is_closed(const rmpsc_channel *ch);

int rmpsc_producer_register(rmpsc_channel *ch, rmpsc_producer **out);
void rmpsc_producer_close(rmpsc_producer *p);
uint32_t rmpsc_producer_slot(const rmpsc_producer *p);
int rmpsc_producer_count_dropped(rmpsc_producer *p, uint64_t n);
int rmpsc_producer_reserve(rmpsc_producer *p, size_t want, int64_t timeout_ns, void **ptr);
int rmpsc_producer_commit(rmpsc_producer *p, size_t n);
int rmpsc_producer_send(rmpsc_producer *p, const void *data, size_t len, int64_t timeout_ns);
int rmpsc_producer_send_many(rmpsc_producer *p, const void *records, size_t count,
			     int64_t timeout_ns);

int rmpsc_consumer_join(rmpsc_channel *ch, const char *group, unsigned flags);
void rmpsc_consumer_leave(rmpsc_channel *ch);
const char *rmpsc_consumer_group(const rmpsc_channel *ch);
int rmpsc_consumer_claim(rmpsc_channel *ch);
void rmpsc_consumer_release(rmpsc_channel *ch);
int rmpsc_group_remove(rmpsc_channel *ch, const char *group);
uint32_t rmpsc_deliveries(const rmpsc_channel *ch);
int rmpsc_read_position(const rmpsc_channel *ch, uint32_t *slot, uint64_t *position);
int rmpsc_recv(rmpsc_channel *ch, void *buf, size_t max, int64_t timeout_ns);
int rmpsc_read(rmpsc_channel *ch, size_t max, int64_t timeout_ns, const void **ptr,
	       uint32_t *slot);
int rmpsc_advance(rmpsc_channel *ch, size_t n);
int rmpsc_wait_readable(rmpsc_channel *ch, int64_t timeout_ns);
uint64_t rmpsc_pending(const rmpsc_channel *ch);

int rmpsc_slab_alloc(rmpsc_channel *ch, int64_t timeout_ns, uint32_t *handle);
int rmpsc_slab_free(rmpsc_channel *ch, uint32_t handle);
void *rmpsc_slab_ptr(const rmpsc_channel *ch, uint32_t handle);
int rmpsc_slab_set_len(rmpsc_channel *ch, uint32_t handle, uint32_t len);
int64_t rmpsc_slab_len(const rmpsc_channel *ch, uint32_t handle);
int rmpsc_producer_send_slab(rmpsc_producer *p, uint32_t handle, int64_t timeout_ns);
uint32_t rmpsc_record_handle(const void *record);
int rmpsc_producer_send_bytes(rmpsc_producer *p, const void *data, size_t len, int64_t timeout_ns);
int64_t rmpsc_read_bytes(rmpsc_channel *ch, int64_t timeout_ns, const void **bytes);
int rmpsc_advance_bytes(rmpsc_channel *ch);
int64_t rmpsc_recv_bytes(rmpsc_channel *ch, void *buf, size_t cap, int64_t timeout_ns);

int rmpsc_group_stats(const rmpsc_channel *ch, struct rmpsc_group_stats *groups, uint32_t max_groups,
		      struct rmpsc_member_stats *members, uint32_t max_members, uint32_t *n_members);
int rmpsc_stats(const rmpsc_channel *ch, struct rmpsc_stats *out,
		struct rmpsc_ring_stats *rings, uint32_t max_rings);
int rmpsc_reclaim_dead(rmpsc_channel *ch);

int rmpsc_consumer_coalesce(rmpsc_channel *ch, uint32_t min_records, int64_t max_delay_ns);
void rmpsc_consumer_coalescing(const rmpsc_channel *ch, uint32_t *min_records, int64_t *max_delay_ns);
int rmpsc_ready_fd(rmpsc_channel *ch);
int rmpsc_ready_arm(rmpsc_channel *ch, int64_t *wait_ns);
void rmpsc_ready_disarm(rmpsc_channel *ch);
int rmpsc_producer_ready_fd(rmpsc_producer *p);
int rmpsc_producer_ready_arm(rmpsc_producer *p, int64_t *wait_ns);
void rmpsc_producer_ready_disarm(rmpsc_producer *p);
]]
end
-- libc's, for a region file's group given by name (glibc's struct group). pcall: a
-- second load, or another module that declared getgrnam first, makes it a
-- redefinition; the declaration in place serves as well (same gr_gid field).
pcall(ffi.cdef, [[
struct ringmpsc_group_entry { char *gr_name; char *gr_passwd; uint32_t gr_gid; char **gr_mem; };
struct ringmpsc_group_entry *getgrnam(const char *name);
]])

---------------------------------------------------------------------------
-- Finding and loading the shared library.

local function file_exists(path)
	local f = io.open(path, "rb")
	if f then
		f:close()
		return true
	end
	return false
end

-- Directory of this file, for the in-tree fallback (lua/../build).
local function module_dir()
	local src = debug.getinfo(1, "S").source
	if src:sub(1, 1) ~= "@" then
		return nil
	end
	return src:sub(2):match("^(.*)/[^/]*$") or "."
end

local function load_library()
	local tried = {}
	local env = os.getenv("RINGMPSC_LIB")
	if env and env ~= "" then
		local ok, lib = pcall(ffi.load, env)
		if ok then
			return lib, env
		end
		error("ringmpsc: cannot load RINGMPSC_LIB=" .. env .. ": " .. tostring(lib), 3)
	end
	local function try(path)
		if not file_exists(path) then
			tried[#tried + 1] = path
			return nil
		end
		local ok, lib = pcall(ffi.load, path)
		if ok then
			return lib
		end
		tried[#tried + 1] = path .. " (" .. tostring(lib) .. ")"
		return nil
	end
	for pattern in package.cpath:gmatch("[^;]+") do
		if pattern:find("?", 1, true) then
			for _, name in ipairs { "libringmpsc", "ringmpsc" } do
				local path = pattern:gsub("%?", name)
				local lib = try(path)
				if lib then
					return lib, path
				end
			end
		end
	end
	local dir = module_dir()
	if dir then
		for _, rel in ipairs { "/../build/libringmpsc.so", "/libringmpsc.so" } do
			local path = dir .. rel
			local lib = try(path)
			if lib then
				return lib, path
			end
		end
	end
	-- Last: the dynamic linker's own search (LD_LIBRARY_PATH, ld.so.cache, ...).
	local ok, lib = pcall(ffi.load, "ringmpsc")
	if ok then
		return lib, "libringmpsc.so"
	end
	tried[#tried + 1] = "libringmpsc.so via the dynamic linker (" .. tostring(lib) .. ")"
	error("ringmpsc: shared library not found; set RINGMPSC_LIB or package.cpath. Tried:\n  "
		.. concat(tried, "\n  "), 3)
end

local C, lib_path = load_library()
_M.library_path = lib_path

---------------------------------------------------------------------------
-- Errors: the C vocabulary, mapped once.

-- Short stable strings, keyed by the enum rmpsc_error constants of the cdef.
local ESYS = C.RMPSC_ESYS
local errstr = {
	[C.RMPSC_EFULL] = "full",
	[C.RMPSC_EEMPTY] = "empty",
	[C.RMPSC_ECLOSED] = "closed",
	[C.RMPSC_ETIMEDOUT] = "timeout",
	[C.RMPSC_ENOSLOT] = "no slot",
	[C.RMPSC_ECONSUMER] = "consumer busy",
	[C.RMPSC_EINVAL] = "invalid",
	[C.RMPSC_ECORRUPT] = "corrupt",
	[ESYS] = "system", -- completed with rmpsc_last_error() below
	[C.RMPSC_EFORKED] = "forked",
	[C.RMPSC_EINTR] = "interrupted",
}

-- A failure found on the Lua side (before any C call), for last_error().
local lua_last_error

local function set_lua_error(msg)
	lua_last_error = msg
end

local function fail(rc)
	lua_last_error = nil
	if rc == ESYS then
		return nil, "system: " .. ffi_string(C.rmpsc_last_error())
	end
	return nil, errstr[rc] or ("error " .. tostring(rc))
end

-- The detailed message of this thread's last failure ("capacity 1000 must be a
-- power of two ...", "the consumer role is held by live process 1234").
function _M.last_error()
	return lua_last_error or ffi_string(C.rmpsc_last_error())
end

---------------------------------------------------------------------------
-- Argument checks. Misuse raises, at the caller's level.

local function argerror(n, fname, expected, got, level)
	error("bad argument #" .. n .. " to '" .. fname .. "' (" .. expected .. " expected, got " .. type(got) .. ")",
		level or 3)
end

-- Seconds -> int64 nanoseconds for the C calls. nil -> 0 (try once).
local function timeout_ns(t, n, fname)
	if t == nil then
		return 0
	end
	if type(t) ~= "number" or t ~= t then
		argerror(n, fname, "timeout in seconds", t, 4)
	end
	if t < 0 or t >= 9e9 then -- negative or math.huge: no deadline
		return -1
	end
	return t * 1e9
end

-- Preallocated out-parameters (one consumer/producer call at a time per state).
local chan_out = ffi_new("rmpsc_channel *[1]")
local prod_out = ffi_new("rmpsc_producer *[1]")
local ptr_out = ffi_new("void *[1]")
local cptr_out = ffi_new("const void *[1]")
local slot_out = ffi_new("uint32_t[1]")
local count_out = ffi_new("uint32_t[1]")
local position_out = ffi_new("uint64_t[1]")
local config_out = ffi_new("struct rmpsc_config")
local u8ptr_t = ffi_typeof("uint8_t *")
local cu8ptr_t = ffi_typeof("const uint8_t *")
local u8arr_t = ffi_typeof("uint8_t[?]")
local ns_out = ffi_new("int64_t[1]")

---------------------------------------------------------------------------
-- Handle life cycle.
--
-- A producer's memory goes with its channel's mapping, so producers must be closed
-- before their channel handle is released. Finalizers run in no particular order
-- (and all of them at lua_close, e.g. when an nginx worker exits), so the release of
-- a channel handle first closes every producer still open on it. The finalizers are
-- closures over small state tables holding copies of the raw pointers, never the
-- gc'd cdata themselves (which would keep them alive forever).
--
-- A channel state keeps its open producers in a dense array (chs.prods, each
-- producer state knowing its index as ps.at) and walks it with a numeric loop, not
-- pairs(): LuaJIT 2.1 builds of early 2023 (Debian 12's luajit2 2.1-20230119 among
-- them) can compile a pairs() loop that never ends once its trace starts exiting
-- (LuaJIT bug LuaJIT/LuaJIT#1000). Seen here: a finalizer releasing a channel spun forever in
-- such a loop, about one busted run in fifty.

local function producer_state_close(ps)
	local p = ps.p
	if p == nil then
		return
	end
	ps.p = nil
	local prods = ps.chs.prods
	local n = #prods
	local last = prods[n] -- moves into ps's place (ps itself when it is the last)
	prods[ps.at] = last
	last.at = ps.at
	prods[n] = nil
	C.rmpsc_producer_close(p)
end

local function channel_state_release(chs)
	local ch = chs.ch
	if ch == nil then
		return
	end
	local prods = chs.prods
	while #prods > 0 do -- each close removes its entry
		producer_state_close(prods[#prods])
	end
	chs.ch = nil
	C.rmpsc_channel_release(ch)
end

local Channel = {}
Channel.__index = Channel
local Producer = {}
Producer.__index = Producer
-- A Consumer is a channel handle of its own (attached through the channel's fd),
-- member of one group. It has the Channel's consumer methods -- the same functions
-- (assigned below), which read only _chs, _buf, record_size and slab_count -- and
-- no producer or channel-wide ones.
local Consumer = {}
Consumer.__index = Consumer
_M.Channel, _M.Producer, _M.Consumer = Channel, Producer, Consumer

local function closed_handle(what)
	error("ringmpsc: " .. what, 3)
end

-- Wrap a fresh rmpsc_channel* (in chan_out[0]) as an object of metatable mt
-- (Channel or Consumer). `flags`: its open flags (the interruptible bit), which
-- the consumers made from a channel inherit. `gone`: what a call on it says once
-- it is released.
local function wrap_channel(raw, mt, flags, gone)
	local chs = { ch = raw, prods = {}, gone = gone }
	local gced = ffi_gc(chan_out[0], function()
		channel_state_release(chs)
	end)
	C.rmpsc_channel_config(raw, config_out)
	local name = C.rmpsc_channel_name(raw)
	local rs = tonumber(config_out.record_size)
	return setmetatable({
		_ch = gced,
		_chs = chs,
		_buf = ffi_new(u8arr_t, rs),   -- recv's copy-out buffer
		_flags = flags,
		record_size = rs,
		capacity = tonumber(config_out.capacity),
		max_producers = tonumber(config_out.max_producers),
		slab_size = tonumber(config_out.slab_size),
		slab_count = tonumber(config_out.slab_count),
		max_consumers = tonumber(config_out.max_consumers),
		max_groups = tonumber(config_out.max_groups),
		mode = tonumber(config_out.mode),  -- the region file's, at open
		gid = tonumber(config_out.gid),
		name = name ~= nil and ffi_string(name) or nil,
	}, mt)
end

local CHANNEL_GONE = "channel handle is released"

-- `level`: error() level of the public function's caller (default: our caller's caller).
local function check_flags(opts, fname, level)
	local v = opts.interruptible
	if v ~= nil and type(v) ~= "boolean" then
		error("bad option 'interruptible' to '" .. fname .. "' (boolean expected, got " .. type(v) .. ")",
			level or 3)
	end
	return v and C.RMPSC_OPEN_INTERRUPTIBLE or 0
end

-- Flags from an optional options table given as argument 2 (open, attach_fd).
local function optional_flags(opts, fname)
	if opts == nil then
		return 0
	end
	if type(opts) ~= "table" then
		argerror(2, fname, "table", opts, 4) -- one frame deeper than the public function
	end
	local flags = check_flags(opts, fname, 4) -- not a tail call: level 4 must stay the caller
	return flags
end

local function opt_u32(opts, key, default)
	local v = opts[key]
	if v == nil then
		return default
	end
	if type(v) ~= "number" then
		error("bad option '" .. key .. "' to 'new' (number expected, got " .. type(v) .. ")", 3)
	end
	if v < 0 or v > 0xffffffff or v ~= v or v % 1 ~= 0 then
		set_lua_error("new: " .. key .. " " .. tostring(v) .. " is out of range")
		return nil -- out of range for the C field: reported as "invalid"
	end
	return v
end

-- The region file's group, as `new` takes it: a gid or a group name.
local function group_id(g)
	if type(g) == "number" then
		if g < 1 or g > 0xfffffffe or g % 1 ~= 0 then
			return nil, "group " .. tostring(g) .. " is not a gid (1 .. 2^32-2; nil keeps the creator's)"
		end
		return g
	end
	local gr = ffi.C.getgrnam(g)
	if gr == nil then
		return nil, "group '" .. g .. "' does not exist"
	end
	if gr.gr_gid == 0 then
		return nil, "group '" .. g .. "' is group 0, which cannot be given (nil keeps the creator's)"
	end
	return tonumber(gr.gr_gid)
end

-- ringmpsc.new{ record_size =, capacity = 1024, max_producers = 16, name = nil,
--               slab_size = 0, slab_count = 0, max_consumers = 1, max_groups = nil,
--               mode = 0600, group = nil,
--               interruptible = false, full_fences = false, start_position = 0 }
-- max_groups nil (0): as many as max_consumers (at most 64). mode: an octal string
-- ("0660"); group: a gid or a group name (nil: the creator's).
function _M.new(opts)
	if type(opts) ~= "table" then
		argerror(1, "new", "table", opts)
	end
	if opts.record_size == nil then
		error("bad argument #1 to 'new' (record_size is required)", 2)
	end
	local name = opts.name
	if name ~= nil and type(name) ~= "string" then
		error("bad option 'name' to 'new' (string expected, got " .. type(name) .. ")", 2)
	end
	local cfg = ffi_new("struct rmpsc_config")
	for _, f in ipairs { { "record_size" }, { "capacity", 1024 }, { "max_producers", 16 },
		{ "slab_size", 0 }, { "slab_count", 0 }, { "max_consumers", 1 }, { "max_groups", 0 } } do
		local v = opt_u32(opts, f[1], f[2])
		if v == nil then
			return nil, "invalid"
		end
		cfg[f[1]] = v
	end
	local mode = opts.mode
	if mode ~= nil then
		-- A string: Lua has no octal numbers, and 660 or 440 written as numbers would be
		-- valid modes other than the ones meant.
		if type(mode) ~= "string" then
			error("bad option 'mode' to 'new' (octal string such as \"0660\" expected, got " .. type(mode) .. ")", 2)
		end
		local m = mode:match("^0?[0-7][0-7][0-7]$") and tonumber(mode, 8)
		if not m then
			set_lua_error("new: mode '" .. mode .. "' is not an octal mode such as \"0660\"")
			return nil, "invalid"
		end
		cfg.mode = m
	end
	local group = opts.group
	if group ~= nil then
		if type(group) ~= "number" and type(group) ~= "string" then
			error("bad option 'group' to 'new' (number or string expected, got " .. type(group) .. ")", 2)
		end
		local gid, gerr = group_id(group)
		if not gid then
			set_lua_error("new: " .. gerr)
			return nil, "invalid"
		end
		cfg.gid = gid
	end
	local sp = opts.start_position -- tests: start near 2^64 to cross the wrap
	if sp ~= nil then
		if type(sp) ~= "number" and type(sp) ~= "cdata" then
			error("bad option 'start_position' to 'new' (number or uint64_t cdata expected, got "
				.. type(sp) .. ")", 2)
		end
		cfg.start_position = sp
	end
	local flags = check_flags(opts, "new")
	local open_flags = flags
	local full = opts.full_fences -- RMPSC_CREATE_FULL_FENCES: for processes without membarrier
	if full ~= nil and type(full) ~= "boolean" then
		error("bad option 'full_fences' to 'new' (boolean expected, got " .. type(full) .. ")", 2)
	end
	if full then
		flags = flags + C.RMPSC_CREATE_FULL_FENCES -- flags holds at most the interruptible bit
	end
	local rc = C.rmpsc_channel_create(chan_out, name, cfg, flags)
	if rc < 0 then
		return fail(rc)
	end
	return wrap_channel(chan_out[0], Channel, open_flags, CHANNEL_GONE)
end

-- ringmpsc.open(name [, { interruptible = bool }])
function _M.open(name, opts)
	if type(name) ~= "string" then
		argerror(1, "open", "string", name)
	end
	local flags = optional_flags(opts, "open")
	local rc = C.rmpsc_channel_open(chan_out, name, flags)
	if rc < 0 then
		return fail(rc)
	end
	return wrap_channel(chan_out[0], Channel, flags, CHANNEL_GONE)
end

-- ringmpsc.attach_fd(fd [, opts]): the fd is dup'ed; the caller keeps its own.
function _M.attach_fd(fd, opts)
	if type(fd) ~= "number" then
		argerror(1, "attach_fd", "number", fd)
	end
	local flags = optional_flags(opts, "attach_fd")
	local rc = C.rmpsc_channel_attach_fd(chan_out, fd, flags)
	if rc < 0 then
		return fail(rc)
	end
	return wrap_channel(chan_out[0], Channel, flags, CHANNEL_GONE)
end

function _M.unlink(name)
	if type(name) ~= "string" then
		argerror(1, "unlink", "string", name)
	end
	local rc = C.rmpsc_unlink(name)
	if rc < 0 then
		return fail(rc)
	end
	return true
end

---------------------------------------------------------------------------
-- Channel methods.

local function chan(self)
	local chs = self._chs
	local ch = chs.ch
	if not ch then
		closed_handle(chs.gone)
	end
	return ch
end

function Channel:producer()
	local ch = chan(self)
	local rc = C.rmpsc_producer_register(ch, prod_out)
	if rc < 0 then
		return fail(rc)
	end
	local chs = self._chs
	local ps = { p = prod_out[0], chs = chs, at = 0 }
	-- Nothing allocates between the length and the store, so no finalizer can
	-- reorder prods in between.
	local prods = chs.prods
	ps.at = #prods + 1
	prods[ps.at] = ps
	local gced = ffi_gc(prod_out[0], function()
		producer_state_close(ps)
	end)
	return setmetatable({
		_p = gced,
		_ps = ps,
		_ch = self, -- keeps the channel (and its mapping) alive while the producer is
		record_size = self.record_size,
		slot = tonumber(C.rmpsc_producer_slot(gced)),
	}, Producer)
end

-- ch:recv([timeout]) -> record string (record_size bytes) | nil, err
function Channel:recv(timeout)
	local ch = self._chs.ch
	if not ch then
		closed_handle(self._chs.gone)
	end
	local buf = self._buf
	local rc = C.rmpsc_recv(ch, buf, 1, timeout_ns(timeout, 1, "recv"))
	if rc < 0 then
		return fail(rc)
	end
	return ffi_string(buf, self.record_size)
end

-- ch:recv_bytes([timeout]) -> string | nil, err: one variable-length message sent
-- with p:send_bytes (or Python's Producer.send_bytes); its slab goes back to the pool.
-- "corrupt" for a record that is not a slab message (consumed: the next call goes on).
function Channel:recv_bytes(timeout)
	local ch = self._chs.ch
	if not ch then
		closed_handle(self._chs.gone)
	end
	if self.slab_count == 0 then
		return nil, "invalid"
	end
	local len = C.rmpsc_read_bytes(ch, timeout_ns(timeout, 1, "recv_bytes"), cptr_out)
	if len < 0 then
		return fail(tonumber(len))
	end
	local s = ffi_string(cptr_out[0], len)
	local rc = C.rmpsc_advance_bytes(ch)
	if rc < 0 then
		return fail(rc)
	end
	return s
end

-- ch:recv_into(buf, max [, timeout]) -> n | nil, err. buf: cdata of at least
-- max * record_size bytes (not checkable here for plain pointers).
function Channel:recv_into(buf, max, timeout)
	local ch = self._chs.ch
	if not ch then
		closed_handle(self._chs.gone)
	end
	if type(buf) ~= "cdata" then
		argerror(1, "recv_into", "cdata buffer", buf)
	end
	if type(max) ~= "number" then
		argerror(2, "recv_into", "number", max)
	end
	if max < 1 then
		return nil, "invalid"
	end
	local rc = C.rmpsc_recv(ch, buf, max, timeout_ns(timeout, 3, "recv_into"))
	if rc < 0 then
		return fail(rc)
	end
	return rc
end

-- ch:read(max [, timeout]) -> ptr (const uint8_t*), n, slot | nil, err. Zero-copy:
-- the n records at ptr stay valid until ch:advance.
function Channel:read(max, timeout)
	local ch = self._chs.ch
	if not ch then
		closed_handle(self._chs.gone)
	end
	if type(max) ~= "number" then
		argerror(1, "read", "number", max)
	end
	if max < 1 then
		return nil, "invalid"
	end
	local rc = C.rmpsc_read(ch, max, timeout_ns(timeout, 2, "read"), cptr_out, slot_out)
	if rc < 0 then
		return fail(rc)
	end
	return ffi_cast(cu8ptr_t, cptr_out[0]), rc, slot_out[0]
end

-- ch:advance(n) -> true | nil, err: free the first n records of the last read.
function Channel:advance(n)
	local ch = self._chs.ch
	if not ch then
		closed_handle(self._chs.gone)
	end
	if type(n) ~= "number" then
		argerror(1, "advance", "number", n)
	end
	if n < 0 then
		return nil, "invalid"
	end
	local rc = C.rmpsc_advance(ch, n)
	if rc < 0 then
		return fail(rc)
	end
	return true
end

-- ch:wait([timeout]) -> true | nil, err: until a record is readable (claims the role).
function Channel:wait(timeout)
	local rc = C.rmpsc_wait_readable(chan(self), timeout_ns(timeout, 1, "wait"))
	if rc < 0 then
		return fail(rc)
	end
	return true
end

-- Claim / give up the consumer role explicitly (recv and read claim it implicitly).
function Channel:claim()
	local rc = C.rmpsc_consumer_claim(chan(self))
	if rc < 0 then
		return fail(rc)
	end
	return true
end

function Channel:unclaim()
	C.rmpsc_consumer_release(chan(self))
	return true
end

---------------------------------------------------------------------------
-- Consumer groups.

-- A group name: a string, or nil for the default group (argument 1 of fname).
local function check_group(group, fname)
	if group ~= nil and type(group) ~= "string" then
		argerror(1, fname, "string or nil", group, 4)
	end
end

local function opt_bool(opts, key, fname)
	local v = opts[key]
	if v ~= nil and type(v) ~= "boolean" then
		error("bad option '" .. key .. "' to '" .. fname .. "' (boolean expected, got " .. type(v) .. ")", 4)
	end
	return v
end

-- RMPSC_GROUP_* flags from an optional options table given as argument 2:
-- { ephemeral = bool, at_most_once = bool }.
local function group_flags(opts, fname)
	if opts == nil then
		return 0
	end
	if type(opts) ~= "table" then
		argerror(2, fname, "table", opts, 4)
	end
	local flags = 0
	if opt_bool(opts, "ephemeral", fname) then
		flags = flags + C.RMPSC_GROUP_EPHEMERAL
	end
	if opt_bool(opts, "at_most_once", fname) then
		flags = flags + C.RMPSC_GROUP_AT_MOST_ONCE
	end
	return flags
end

-- ch:join([group [, { ephemeral =, at_most_once = }]]) -> true | nil, err: make this
-- handle's process a member of `group` (nil: the default group), creating it with
-- these flags if it does not exist (a new group receives what is committed from
-- then on). Joining another group leaves the first. "invalid": name longer than
-- 31 bytes, or the group exists with other flags; "consumer busy": no member or
-- group place left (last_error() says which).
function Channel:join(group, opts)
	local ch = chan(self)
	check_group(group, "join")
	local rc = C.rmpsc_consumer_join(ch, group, group_flags(opts, "join"))
	if rc < 0 then
		return fail(rc)
	end
	return true
end

-- ch:leave() -> true: leave the group (a span read and not advanced goes to
-- another member; the last member of an ephemeral group removes it). The next
-- recv/read joins the group again.
function Channel:leave()
	C.rmpsc_consumer_leave(chan(self))
	return true
end

-- ch:group() -> name of the group this handle is a member of, or nil.
function Channel:group()
	local g = C.rmpsc_consumer_group(chan(self))
	if g == nil then
		return nil
	end
	return ffi_string(g)
end

-- ch:deliveries() -> how many times the span of the last read is being delivered:
-- 1 the first time, more when a member died or left holding it; 0 when no span is
-- open (after advance, and after recv / recv_into / recv_bytes, which close theirs).
function Channel:deliveries()
	return tonumber(C.rmpsc_deliveries(chan(self)))
end

-- ch:read_position() -> slot, position | nil, err: where the span of the last read
-- starts (record i is at position + i): with stats().channel_id, a record's name that
-- a redelivery repeats. "invalid" when no span is open.
function Channel:read_position()
	local rc = C.rmpsc_read_position(chan(self), slot_out, position_out)
	if rc < 0 then
		return fail(rc)
	end
	return tonumber(slot_out[0]), tonumber(position_out[0])
end

-- ch:remove_group(name) -> true | nil, err: remove a group that has no live
-- member, with its unreleased records. "invalid": no such group, it has a live
-- member, or the channel has one group place.
function Channel:remove_group(name)
	local ch = chan(self)
	if type(name) ~= "string" then
		argerror(1, "remove_group", "string", name)
	end
	local rc = C.rmpsc_group_remove(ch, name)
	if rc < 0 then
		return fail(rc)
	end
	return true
end

local CONSUMER_GONE = "consumer is closed"

-- ch:consumer([group [, { ephemeral =, at_most_once =, interruptible = }]]) ->
-- Consumer | nil, err: a handle of its own on this channel (attached through its
-- fd), joined to `group` (nil: the default group). interruptible defaults to this
-- channel's. Errors as ch:join.
function Channel:consumer(group, opts)
	local ch = chan(self)
	check_group(group, "consumer")
	local gflags = group_flags(opts, "consumer")
	local flags = self._flags
	if opts ~= nil and opts.interruptible ~= nil then
		flags = check_flags(opts, "consumer")
	end
	local rc = C.rmpsc_channel_attach_fd(chan_out, C.rmpsc_channel_fd(ch), flags)
	if rc < 0 then
		return fail(rc)
	end
	local raw = chan_out[0]
	rc = C.rmpsc_consumer_join(raw, group, gflags)
	if rc < 0 then
		local none, err = fail(rc)
		C.rmpsc_channel_release(raw)
		return none, err
	end
	-- chan_out[0] still holds raw: wrap_channel anchors its finalizer on a fresh box
	return wrap_channel(raw, Consumer, flags, CONSUMER_GONE)
end

-- Close the channel for everyone (producers get "closed"; the consumer drains what
-- was committed, then gets "closed"). The handle stays usable. Idempotent.
function Channel:close()
	C.rmpsc_channel_close(chan(self))
	return true
end

function Channel:is_closed()
	return C.rmpsc_channel_is_closed(chan(self)) ~= 0
end

-- Release this process's handle (and close the producers made from it). Does not
-- close the channel for others. Idempotent; any later use of the handle raises.
function Channel:release()
	local anchor = self._ch
	if anchor then
		ffi_gc(anchor, nil)
		self._ch = nil
	end
	channel_state_release(self._chs)
	return true
end

-- ch:fd() -> the region's descriptor (the mapping; not pollable: see ready_fd).
function Channel:fd()
	return tonumber(C.rmpsc_channel_fd(chan(self)))
end

-- ch:coalesce(min_records, max_delay) -> true | nil, err: coalesced wake-ups for
-- this handle's waits (see rmpsc_consumer_coalesce): a wait that finds nothing
-- lingers until one producer's ring holds min_records records or max_delay seconds
-- passed. min_records <= 1 or max_delay 0 turns it off.
function Channel:coalesce(min_records, max_delay)
	if type(min_records) ~= "number" or min_records < 0 or min_records > 0xffffffff or min_records % 1 ~= 0 then
		argerror(1, "coalesce", "record count", min_records)
	end
	if type(max_delay) ~= "number" or max_delay ~= max_delay or max_delay < 0 then
		argerror(2, "coalesce", "delay in seconds", max_delay)
	end
	local rc = C.rmpsc_consumer_coalesce(chan(self), min_records, max_delay < 2 and max_delay * 1e9 or 2e9)
	if rc < 0 then
		return fail(rc)
	end
	return true
end

-- ch:coalescing() -> min_records, max_delay (seconds)
function Channel:coalescing()
	C.rmpsc_consumer_coalescing(chan(self), count_out, ns_out)
	return tonumber(count_out[0]), tonumber(ns_out[0]) / 1e9
end

-- ch:ready_fd() -> fd | nil, err: readable when records may be there or the channel
-- closed (a FIFO in /dev/shm; owned by the membership, do not close it).
function Channel:ready_fd()
	local fd = C.rmpsc_ready_fd(chan(self))
	if fd < 0 then
		return fail(fd)
	end
	return tonumber(fd)
end

-- ch:ready_arm() -> seconds | nil, err: after recv found nothing. 0: records (or
-- close) are there now, receive again; otherwise armed: wait until ready_fd is
-- readable, for at most that many seconds (a second at most), then receive again.
function Channel:ready_arm()
	local rc = C.rmpsc_ready_arm(chan(self), ns_out)
	if rc < 0 then
		return fail(rc)
	end
	if rc == 1 then
		return 0
	end
	return tonumber(ns_out[0]) / 1e9
end

-- ch:ready_disarm(): take back an abandoned ready_arm.
function Channel:ready_disarm()
	C.rmpsc_ready_disarm(chan(self))
end

function Channel:pending()
	return tonumber(C.rmpsc_pending(chan(self)))
end

function Channel:reclaim_dead()
	local rc = C.rmpsc_reclaim_dead(chan(self))
	if rc < 0 then
		return fail(rc)
	end
	return rc
end

local member_states = { "member", "recovering", "orphan", "adopting" }

local slot_states = {
	[C.RMPSC_SLOT_FREE] = "free",
	[C.RMPSC_SLOT_REGISTERING] = "registering",
	[C.RMPSC_SLOT_ACTIVE] = "active",
	[C.RMPSC_SLOT_DETACHED] = "detached",
	[C.RMPSC_SLOT_RECLAIMING] = "reclaiming",
	[C.RMPSC_SLOT_FENCED] = "fenced",
}

-- ch:stats() -> table: channel figures plus `rings`, one entry per slot in use,
-- `groups`, one per group, and `members`, one per member place in use (its
-- `group` indexes `groups`).
function Channel:stats()
	local ch = chan(self)
	local st = self._stats
	if not st then
		st = ffi_new("struct rmpsc_stats")
		self._stats = st
		self._ring_stats = ffi_new("struct rmpsc_ring_stats[?]", self.max_producers)
		self._group_stats = ffi_new("struct rmpsc_group_stats[?]", self.max_groups)
		self._member_stats = ffi_new("struct rmpsc_member_stats[?]", self.max_consumers)
	end
	local rs = self._ring_stats
	local n = C.rmpsc_stats(ch, st, rs, self.max_producers)
	if n < 0 then
		return fail(n)
	end
	local gs, ms = self._group_stats, self._member_stats
	local ng = C.rmpsc_group_stats(ch, gs, self.max_groups, ms, self.max_consumers, count_out)
	if ng < 0 then
		return fail(ng)
	end
	local groups = {}
	for i = 0, ng - 1 do
		local g = gs[i]
		local flags = tonumber(g.flags)
		groups[i + 1] = {
			name = ffi_string(g.name),
			ephemeral = band(flags, C.RMPSC_GROUP_EPHEMERAL) ~= 0,
			at_most_once = band(flags, C.RMPSC_GROUP_AT_MOST_ONCE) ~= 0,
			members = tonumber(g.members),
			live_members = tonumber(g.live_members),
			solo = g.solo ~= 0,
			claims = tonumber(g.claims),
			pending = tonumber(g.pending),
			unreleased = tonumber(g.unreleased),
			redelivered = tonumber(g.redelivered),
		}
	end
	local members = {}
	for i = 0, tonumber(count_out[0]) - 1 do
		local m = ms[i]
		local count = tonumber(m.claim_count)
		members[i + 1] = {
			pid = tonumber(m.pid),
			alive = m.alive ~= 0,
			group = tonumber(m.group) + 1,
			state = member_states[tonumber(m.state)] or tostring(m.state),
			claim_slot = count > 0 and tonumber(m.claim_slot) or nil,
			claim_count = count,
		}
	end
	local rings = {}
	for i = 0, n - 1 do
		local r = rs[i]
		rings[i + 1] = {
			slot = tonumber(r.slot),
			state = slot_states[tonumber(r.state)] or tostring(r.state),
			owner_pid = tonumber(r.owner_pid),
			owner_alive = r.owner_alive ~= 0,
			pending = tonumber(r.pending),
			committed = tonumber(r.committed),
			consumed = tonumber(r.consumed),
			dropped = tonumber(r.dropped),
		}
	end
	return {
		max_producers = tonumber(st.max_producers),
		active_producers = tonumber(st.active_producers),
		consumer_pid = tonumber(st.consumer_pid),
		closed = st.closed ~= 0,
		pending = tonumber(st.pending),
		committed = tonumber(st.committed),
		consumed = tonumber(st.consumed),
		slab_count = tonumber(st.slab_count),
		slabs_free = tonumber(st.slabs_free),
		fenced_rings = tonumber(st.fenced_rings),
		reclaimed_slots = tonumber(st.reclaimed_slots),
		max_consumers = tonumber(st.max_consumers),
		max_groups = tonumber(st.max_groups),
		recovered_members = tonumber(st.recovered_members),
		consumer_wakes = tonumber(st.consumer_wakes),
		dropped = tonumber(st.dropped),
		drop_episodes = tonumber(st.drop_episodes),
		-- 16 hex digits: a Lua number cannot hold every 64-bit value
		channel_id = bit.tohex(st.channel_id), -- 16 hex digits: a Lua number cannot hold every 64-bit value
		rings = rings,
		groups = groups,   -- #groups: the groups that exist
		members = members, -- #members: the member places in use
	}
end

---------------------------------------------------------------------------
-- Producer methods.

-- p:send(str [, timeout]) -> true | nil, err. #str <= record_size, rest zero-filled.
function Producer:send(s, timeout)
	local p = self._ps.p
	if not p then
		closed_handle("producer is closed")
	end
	if type(s) ~= "string" then
		argerror(1, "send", "string", s)
	end
	local len = #s
	if len > self.record_size then
		return nil, "too long"
	end
	local rc = C.rmpsc_producer_send(p, s, len, timeout_ns(timeout, 2, "send"))
	if rc < 0 then
		return fail(rc)
	end
	return true
end

-- p:send_bytes(str [, timeout]) -> true | nil, err: a variable-length message of up
-- to slab_size bytes through the channel's slab pool (the record carries the slab
-- handle; receive with ch:recv_bytes). One deadline covers both waits (for a free
-- slab, then for ring space); a slab that could not be sent goes back to the pool.
-- "invalid" when the channel has no pool.
function Producer:send_bytes(s, timeout)
	local p = self._ps.p
	if not p then
		closed_handle("producer is closed")
	end
	if type(s) ~= "string" then
		argerror(1, "send_bytes", "string", s)
	end
	local ns = timeout_ns(timeout, 2, "send_bytes")
	local chw = self._ch
	local len = #s
	if chw.slab_count == 0 then
		return nil, "invalid"
	end
	if len > chw.slab_size then
		return nil, "too long"
	end
	local rc = C.rmpsc_producer_send_bytes(p, s, len, ns)
	if rc < 0 then
		return fail(rc)
	end
	return true
end

-- p:send_many(data, count [, timeout]) -> sent | nil, err. data: a string or cdata
-- of count * record_size bytes. Sends all, or fewer only on deadline or close.
function Producer:send_many(data, count, timeout)
	local p = self._ps.p
	if not p then
		closed_handle("producer is closed")
	end
	if type(count) ~= "number" then
		argerror(2, "send_many", "number", count)
	end
	local td = type(data)
	if td == "string" then
		if #data < count * self.record_size then
			return nil, "invalid"
		end
	elseif td ~= "cdata" then
		argerror(1, "send_many", "string or cdata", data)
	end
	if count < 1 then
		return nil, "invalid"
	end
	local rc = C.rmpsc_producer_send_many(p, data, count, timeout_ns(timeout, 3, "send_many"))
	if rc < 0 then
		return fail(rc)
	end
	return rc
end

-- p:reserve(k [, timeout]) -> ptr (uint8_t*), n | nil, err. n (1..k) contiguous
-- writable records; publish with p:commit(n') for n' <= n (0 aborts).
function Producer:reserve(k, timeout)
	local p = self._ps.p
	if not p then
		closed_handle("producer is closed")
	end
	if type(k) ~= "number" then
		argerror(1, "reserve", "number", k)
	end
	if k < 1 then
		return nil, "invalid"
	end
	local rc = C.rmpsc_producer_reserve(p, k, timeout_ns(timeout, 2, "reserve"), ptr_out)
	if rc < 0 then
		return fail(rc)
	end
	return ffi_cast(u8ptr_t, ptr_out[0]), rc
end

function Producer:commit(n)
	local p = self._ps.p
	if not p then
		closed_handle("producer is closed")
	end
	if type(n) ~= "number" then
		argerror(1, "commit", "number", n)
	end
	if n < 0 then
		return nil, "invalid"
	end
	local rc = C.rmpsc_producer_commit(p, n)
	if rc < 0 then
		return fail(rc)
	end
	return true
end

-- Deregister: committed records stay readable; an open reservation is aborted.
-- Idempotent; any later use of the handle raises.
function Producer:close()
	local anchor = self._p
	if anchor then
		ffi_gc(anchor, nil)
		self._p = nil
	end
	producer_state_close(self._ps)
	return true
end

-- p:count_dropped([n]) -> true: count n (default 1) records given up on, in the
-- channel (stats: dropped, drop_episodes), where every process sees them.
function Producer:count_dropped(n)
	local p = self._ps.p
	if not p then
		closed_handle("producer is closed")
	end
	if n == nil then
		n = 1
	elseif type(n) ~= "number" then
		argerror(1, "count_dropped", "number", n)
	elseif n < 0 or n % 1 ~= 0 or n > 2 ^ 53 then
		return nil, "invalid"
	end
	local rc = C.rmpsc_producer_count_dropped(p, n)
	if rc < 0 then
		return fail(rc)
	end
	return true
end

function Producer:is_closed()
	return not self._ps.p
end

---------------------------------------------------------------------------
-- Consumer methods: the Channel's own functions, plus close.

for _, m in ipairs { "recv", "recv_bytes", "recv_into", "read", "advance", "wait", "pending", "group",
	"deliveries", "read_position", "coalesce", "coalescing", "ready_fd", "ready_arm", "ready_disarm" } do
	Consumer[m] = Channel[m]
end

-- c:close() -> true: leave the group and release the handle. Idempotent; any later
-- use raises.
function Consumer:close()
	local ch = self._chs.ch
	if ch then
		C.rmpsc_consumer_leave(ch)
	end
	return Channel.release(self)
end

return _M
