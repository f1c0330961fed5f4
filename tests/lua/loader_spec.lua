-- Finding libringmpsc.so: RINGMPSC_LIB, then package.cpath, then build/ next to
-- the module, then the dynamic linker; a clear error listing every path tried.
-- Each case runs in a fresh luajit process with a controlled environment.
local H = require "helpers"

local repo = H.repo
local abs_repo

local function luajit(env, code)
	local q = code:gsub("'", "'\\''")
	return H.sh("cd /tmp && env -u RINGMPSC_LIB -u LD_LIBRARY_PATH " .. env .. " luajit -e '" .. q .. "'")
end

describe("loading the shared library", function()
	local tmp
	setup(function()
		local _, out = H.sh("cd " .. repo .. " && pwd")
		abs_repo = out:gsub("%s+$", "")
		_, out = H.sh("mktemp -d /tmp/ringmpsc-loader.XXXXXX")
		tmp = out:gsub("%s+$", "")
		-- the module alone, away from build/, so only the paths under test can find it
		assert(H.sh("cp " .. abs_repo .. "/lua/ringmpsc.lua " .. tmp .. "/") == 0)
	end)
	teardown(function()
		H.sh("rm -rf " .. tmp)
	end)

	it("uses RINGMPSC_LIB when set", function()
		local lib = abs_repo .. "/build/libringmpsc.so"
		local rc, out = luajit("RINGMPSC_LIB=" .. lib,
			"package.path = '" .. tmp .. "/?.lua;' .. package.path print(require('ringmpsc').library_path)")
		assert.equal(0, rc, out)
		assert.equal(lib, (out:gsub("%s+$", "")))
	end)

	it("raises naming RINGMPSC_LIB when it points nowhere", function()
		local rc, out = luajit("RINGMPSC_LIB=/nonexistent/libringmpsc.so",
			"package.path = '" .. tmp .. "/?.lua;' .. package.path require('ringmpsc')")
		assert.is_not.equal(0, rc)
		assert.matches("RINGMPSC_LIB=/nonexistent/libringmpsc.so", out, 1, true)
	end)

	it("searches package.cpath for libringmpsc.so", function()
		local rc, out = luajit("", "package.path = '" .. tmp .. "/?.lua;' .. package.path "
			.. "package.cpath = '/nowhere/?.so;" .. abs_repo .. "/build/?.so' "
			.. "print(require('ringmpsc').library_path)")
		assert.equal(0, rc, out)
		assert.equal(abs_repo .. "/build/libringmpsc.so", (out:gsub("%s+$", "")))
	end)

	it("falls back to build/ relative to the module", function()
		local rc, out = luajit("", "package.path = '" .. abs_repo .. "/lua/?.lua;' .. package.path "
			.. "package.cpath = '/nowhere/?.so' print(require('ringmpsc').library_path)")
		assert.equal(0, rc, out)
		assert.matches("/lua/../build/libringmpsc.so", out, 1, true)
	end)

	it("raises listing every path it tried when nothing is found", function()
		local rc, out = luajit("", "package.path = '" .. tmp .. "/?.lua;' .. package.path "
			.. "package.cpath = '/nowhere/?.so;/elsewhere/lib?.so' require('ringmpsc')")
		if rc == 0 then
			pending("a libringmpsc.so is installed system-wide; the not-found path cannot be exercised")
			return
		end
		for _, path in ipairs { "RINGMPSC_LIB", "/nowhere/libringmpsc.so", "/nowhere/ringmpsc.so",
			"/elsewhere/liblibringmpsc.so", "/elsewhere/libringmpsc.so", tmp .. "/../build/libringmpsc.so",
			"dynamic linker" } do
			assert.matches(path, out, 1, true)
		end
	end)
end)
