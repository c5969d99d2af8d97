-- Shared by the wrk scenarios: reads the token file bench-seed wrote (BENCH_TOKENS; one customer
-- per line: "id token free_product email"), hands out customers in rotation from a random start
-- (so no two in-flight requests share a customer while N > connections), and prints one
-- machine-readable line when wrk ends (wrk itself has no p99.9 and no JSON).
local M = {}

function M.customers()
  local path = os.getenv("BENCH_TOKENS") or error("BENCH_TOKENS is not set")
  local rows = {}
  for line in io.lines(path) do
    local id, token, free, email = line:match("^(%S+) (%S+) (%d+) (%S+)$")
    if id then rows[#rows + 1] = { id = id, token = token, free = free, email = email } end
  end
  if #rows == 0 then error("no customers in " .. path) end
  return rows
end

-- Pre-builds one request string per customer with build(c) and installs request(), which
-- walks them in rotation: the Lua work per request is a table lookup. Built in init(): only
-- then has wrk set the Host header that wrk.format() adds.
function M.rotate(build)
  local reqs = {}
  local i = 0
  init = function(args)
    for n, c in ipairs(M.customers()) do reqs[n] = build(c) end
    math.randomseed(os.time())
    i = math.random(#reqs)
  end
  request = function()
    i = i % #reqs + 1
    return reqs[i]
  end
end

function M.bearer(c)
  return { ["Authorization"] = "Bearer " .. c.token }
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end

return M
