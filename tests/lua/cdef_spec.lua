-- The ffi.cdef in lua/ringmpsc.lua against the public header: every function,
-- struct, enum and typedef the cdef declares must read exactly as the preprocessed
-- csrc/include/ringmpsc.h declares it (whitespace, comments, attributes and a
-- trailing enum comma aside), and each `static const` must equal the header's macro.
-- A drift fails with both texts side by side.
local H = require "helpers"

local repo = H.repo

local function read(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("*a")
	f:close()
	return s
end

-- One canonical spelling: no comments or attributes, one space only between two
-- words, none around punctuation, no comma before a closing brace.
local function normalise(s)
	s = s:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " ")
	s = s:gsub("__attribute__%s*(%b())", " ")
	s = s:gsub("%s+", " ")
	s = s:gsub(" ?([%(%)%*,;{}=%[%]]) ?", "%1")
	s = s:gsub(",}", "}")
	return (s:gsub("^ ", ""):gsub(" $", ""))
end

-- Top-level declarations of normalised C text, keyed by what they declare:
-- "struct x" / "enum x" for a tagged body, "typedef x", or the function's name.
local function declarations(text)
	local decls, order = {}, {}
	local depth, start = 0, 1
	for i = 1, #text do
		local c = text:sub(i, i)
		if c == "{" or c == "(" then
			depth = depth + 1
		elseif c == "}" or c == ")" then
			depth = depth - 1
		elseif c == ";" and depth == 0 then
			local d = text:sub(start, i)
			start = i + 1
			local key
			local kind, tag = d:match("^(%a+) ([%w_]+){")
			if kind == "struct" or kind == "enum" then
				key = kind .. " " .. tag
			elseif d:match("^typedef ") then
				key = "typedef " .. (d:match("%(%*([%w_]+)%)") or d:match("([%w_]+)%;$") or d)
			elseif d:match("^static const ") then
				key = "const " .. d:match("([%w_]+)=")
			else
				key = d:match("([%w_]+)%(") or d
			end
			if not decls[key] then
				order[#order + 1] = key
			end
			decls[key] = d
		end
	end
	return decls, order
end

-- The first member, parameter or enumerator where two declarations part.
local function first_difference(a, b)
	local function parts(d)
		local t = {}
		for item in d:gmatch("[^,;{}%(%)]+") do
			t[#t + 1] = item
		end
		return t
	end
	local pa, pb = parts(a), parts(b)
	for i = 1, math.max(#pa, #pb) do
		if pa[i] ~= pb[i] then
			return ("'%s' where the header has '%s'"):format(pa[i] or "(end)", pb[i] or "(end)")
		end
	end
	return "punctuation"
end

local function module_cdef()
	local src = read(repo .. "/lua/ringmpsc.lua")
	local cdef = src:match("ffi%.cdef%s*%[%[(.-)%]%]")
	assert(cdef, "no ffi.cdef [[ ... ]] block found in lua/ringmpsc.lua")
	return cdef
end

local function header(flags)
	local rc, out = H.sh("cd " .. repo .. " && ${CC:-cc} " .. flags .. " csrc/include/ringmpsc.h")
	assert(rc == 0, "the preprocessor failed on csrc/include/ringmpsc.h:\n" .. out)
	return out
end

describe("the ffi.cdef of lua/ringmpsc.lua", function()
	local cdecls, corder, hdecls, macros

	setup(function()
		cdecls, corder = declarations(normalise(module_cdef()))
		hdecls = declarations(normalise(header("-E -P")))
		macros = {}
		for name, value in header("-E -dM"):gmatch("#define ([%w_]+) ([^\n]*)") do
			macros[name] = value
		end
	end)

	it("declares something (the block was found and parsed)", function()
		assert.is_true(#corder >= 40, "only " .. #corder .. " declarations parsed from the cdef")
		assert.is_not_nil(cdecls["enum rmpsc_error"], "the cdef declares no enum rmpsc_error")
	end)

	it("matches the preprocessed public header, declaration by declaration", function()
		local diff = {}
		for _, key in ipairs(corder) do
			local mine = cdecls[key]
			if key:match("^const ") then -- checked against the macros below
				mine = nil
			end
			local theirs = hdecls[key]
			if mine and not theirs then
				diff[#diff + 1] = ("%s: not declared in csrc/include/ringmpsc.h\n  - cdef:   %s"):format(key, mine)
			elseif mine and mine ~= theirs then
				diff[#diff + 1] = ("%s: %s\n  - cdef:   %s\n  + header: %s"):format(key,
					first_difference(mine, theirs), mine, theirs)
			end
		end
		assert(#diff == 0, #diff .. " declaration(s) of the cdef differ from csrc/include/ringmpsc.h:\n"
			.. table.concat(diff, "\n"))
	end)

	it("gives each static const the value of the header's macro", function()
		local diff = {}
		for _, key in ipairs(corder) do
			local name = key:match("^const (.*)")
			if name then
				local mine = tonumber(cdecls[key]:match("=([^;]+);"))
				local macro = macros[name]
				local theirs = macro and tonumber((macro:gsub("[uUlL]+$", "")))
				if mine ~= theirs then
					diff[#diff + 1] = ("%s: cdef %s, header %s"):format(name, tostring(mine),
						macro or "(no such macro)")
				end
			end
		end
		assert(#diff == 0, "constants differ from csrc/include/ringmpsc.h:\n  " .. table.concat(diff, "\n  "))
	end)
end)
