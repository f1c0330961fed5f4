-- Shared helpers for the busted specs: processes (fork/wait/kill), a monotonic
-- clock, unique names. Loaded once per busted run (package.loaded), so the cdef
-- below runs once.
local ffi = require "ffi"
local bit = require "bit"

if not pcall(ffi.typeof, "struct ringmpsc_test_timespec") then
	ffi.cdef [[
struct ringmpsc_test_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct ringmpsc_test_timespec *ts);
int fork(void);
void _exit(int status);
int waitpid(int pid, int *status, int options);
int kill(int pid, int sig);
int getpid(void);
int usleep(unsigned int usec);
typedef void (*ringmpsc_test_sighandler)(int);
ringmpsc_test_sighandler signal(int sig, ringmpsc_test_sighandler handler);
int siginterrupt(int sig, int flag);
void srand(unsigned int seed);
]]
end
local C = ffi.C

local _M = {}
_M.SIGKILL, _M.SIGUSR1, _M.SIGTERM = 9, 10, 15
local WNOHANG = 1

local ts = ffi.new("struct ringmpsc_test_timespec")
function _M.now()
	C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
	return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

function _M.sleep(s)
	C.usleep(s * 1e6)
end

function _M.getpid()
	return C.getpid()
end

local seq = 0
local made = {}
-- A unique shm name for a test; remove_names() (after each test) unlinks it if a
-- failing test left it behind.
function _M.name(tag)
	seq = seq + 1
	local name = ("ringmpsc-spec-%d-%s-%d"):format(C.getpid(), tag or "x", seq)
	made[#made + 1] = name
	return name
end

function _M.remove_names()
	for _, name in ipairs(made) do
		os.remove("/dev/shm/" .. name)
		os.remove("/dev/shm/" .. name .. "-copy")
	end
	made = {}
end

-- Run fn in a forked child; the child exits 0 if fn returns without error (or with
-- the number fn returns), 1 on error, never returning into busted.
function _M.spawn(fn)
	io.stdout:flush()
	io.stderr:flush()
	local pid = C.fork()
	assert(pid >= 0, "fork failed")
	if pid == 0 then
		local ok, rc = pcall(fn)
		if not ok then
			io.stderr:write("child error: ", tostring(rc), "\n")
			io.stderr:flush()
		end
		C._exit(ok and (tonumber(rc) or 0) or 1)
	end
	return pid
end

-- Exit status of a child (signal number + 128 if killed), waiting at most `timeout`
-- seconds (then kill -9 it and return nil, "timeout").
function _M.wait(pid, timeout)
	local status = ffi.new("int[1]")
	local deadline = _M.now() + (timeout or 10)
	while true do
		local r = C.waitpid(pid, status, WNOHANG)
		if r == pid then
			local s = status[0]
			if bit.band(s, 0x7f) == 0 then -- WIFEXITED
				return bit.rshift(bit.band(s, 0xff00), 8)
			end
			return 128 + bit.band(s, 0x7f)
		end
		if r < 0 then
			return nil, "waitpid failed"
		end
		if _M.now() > deadline then
			C.kill(pid, _M.SIGKILL)
			C.waitpid(pid, status, 0)
			return nil, "timeout"
		end
		C.usleep(2000)
	end
end

-- Poll `pred` every 5 ms until it returns true; after `timeout` seconds raise
-- "timed out after Ns waiting for <what>" at the caller (`what`: a string, or a
-- function returning one, called only then). Waits in the specs are on state
-- they can observe, never a bare sleep.
function _M.wait_until(pred, timeout, what)
	local deadline = _M.now() + timeout
	while not pred() do
		if _M.now() > deadline then
			if type(what) == "function" then
				what = what()
			end
			error(("timed out after %gs waiting for %s"):format(timeout, what), 2)
		end
		C.usleep(5000)
	end
end

function _M.file_exists(path)
	local f = io.open(path, "rb")
	if f then
		f:close()
	end
	return f ~= nil
end

-- True when process `pid` is asleep in the kernel (state S in /proc/<pid>/stat):
-- for a process whose only remaining blocking point is a ringmpsc wait, that it
-- is parked in it.
function _M.sleeping(pid)
	local f = io.open("/proc/" .. tonumber(pid) .. "/stat", "rb")
	if not f then
		return false
	end
	local stat = f:read("*a")
	f:close()
	return stat:match(".*%) (%a)") == "S" -- the state follows the last ")": comm may hold anything
end

function _M.kill(pid, sig)
	return C.kill(pid, sig or _M.SIGKILL)
end

-- Make `sig` interrupt blocking system calls instead of killing the process or
-- being restarted: a harmless libc function as the handler, and no SA_RESTART.
function _M.interrupting_signal(sig)
	C.signal(sig, ffi.cast("ringmpsc_test_sighandler", C.srand))
	C.siginterrupt(sig, 1)
end

function _M.default_signal(sig)
	C.signal(sig, ffi.cast("ringmpsc_test_sighandler", 0)) -- SIG_DFL
end

-- Run a shell command; returns its exit code and combined output.
function _M.sh(cmd)
	local f = io.popen(cmd .. " 2>&1; echo \"__rc=$?\"")
	local out = f:read("*a")
	f:close()
	local rc = tonumber(out:match("__rc=(%d+)%s*$"))
	return rc, (out:gsub("__rc=%d+%s*$", ""))
end

_M.repo = os.getenv("RINGMPSC_REPO") or "."

return _M
