-- (e) GET /health: the HTTP stack alone (no auth, no database).
package.path = (os.getenv("BENCH_LUA") or "bench/lua") .. "/?.lua;" .. package.path
require("common")
wrk.method = "GET"
wrk.path = "/health"
