-- (d) POST /auth/sign-in for each customer (every one has the password bench-seed used).
package.path = (os.getenv("BENCH_LUA") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")
local password = os.getenv("BENCH_PASSWORD") or "bench-password-1"
common.rotate(function(c)
  local body = '{"email":"' .. c.email .. '","password":"' .. password .. '"}'
  return wrk.format("POST", "/auth/sign-in", { ["Content-Type"] = "application/json" }, body)
end)
