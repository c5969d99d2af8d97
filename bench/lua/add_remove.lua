-- (c) POST then DELETE /customers/{id}/favorites/{product} of a product the customer lacks.
-- The pair is pipelined on one connection, so the server sees the DELETE only after answering
-- the POST; wrk counts two requests and records one latency (the pair's) per send.
package.path = (os.getenv("BENCH_LUA") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")
common.rotate(function(c)
  local path = "/customers/" .. c.id .. "/favorites/" .. c.free
  return wrk.format("POST", path, common.bearer(c)) .. wrk.format("DELETE", path, common.bearer(c))
end)
