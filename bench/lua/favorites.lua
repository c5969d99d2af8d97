-- (a) GET /customers/{id}/favorites with each customer's own token (also the nginx ceiling's
-- request: same path and headers against a static body of the same size).
package.path = (os.getenv("BENCH_LUA") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")
common.rotate(function(c)
  return wrk.format("GET", "/customers/" .. c.id .. "/favorites", common.bearer(c))
end)
