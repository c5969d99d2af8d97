-- (b) GET /customers/{id} with each customer's own token.
package.path = (os.getenv("BENCH_LUA") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")
common.rotate(function(c)
  return wrk.format("GET", "/customers/" .. c.id, common.bearer(c))
end)
