-- luacheck configuration (tests/lua/run.sh runs `luacheck lua tests/lua`; `make lint` too).
-- The code's style: tabs, long lines where a message reads better whole.
std = "luajit"
max_line_length = 120
codes = true

-- busted specs: describe/it/assert.same/... and the test helpers' globals.
files["tests/lua/*_spec.lua"] = { std = "+busted" }

-- OpenResty examples run inside nginx, where `ngx` is a global.
files["lua/examples/openresty/*.lua"] = { std = "ngx_lua" }

-- The OpenResty library and the tests that run inside nginx.
files["lua/resty/*.lua"] = { std = "ngx_lua" }
files["tests/lua/resty/*.lua"] = { std = "ngx_lua" }
files["benchmarks/nginx_logging/*.lua"] = { std = "ngx_lua" }
-- benchmarks/lua/bench.lua runs in nginx (ngx) and under plain luajit.
files["benchmarks/lua/*.lua"] = { std = "ngx_lua" }
