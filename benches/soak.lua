-- wrk script for benches/soak.sh: a fixed mix of requests, each connection cycling through it,
-- every thread stopping after its share of the total. Arguments: REQUESTS_PER_THREAD TOKEN ETAG.
local reqs, sent, answered, limit = {}, 0, 0, 0

function init(args)
  limit = tonumber(args[1]) or 0
  local token, etag = args[2], args[3]
  local body = string.rep("p", 4096)
  local name = "soak/put-" .. tostring(math.random(1, 1000000000)) .. ".jar"
  local mix = {
    {30, wrk.format("GET", "/artifacts/default/soak/small.jar")},                         -- 1 KiB
    {15, wrk.format("GET", "/artifacts/default/soak/medium.jar")},                        -- 64 KiB
    {3,  wrk.format("GET", "/artifacts/default/soak/large.jar")},                         -- 1 MiB
    {10, wrk.format("GET", "/artifacts/default/soak/large.jar", {Range = "bytes=1000-65535"})},
    -- No HEAD: wrk's parser would wait for the body a HEAD answer announces but never sends.
    {15, wrk.format("GET", "/artifacts/default/soak/medium.jar", {Range = "bytes=-4096"})},
    {10, wrk.format("GET", "/artifacts/default/soak/small.jar", {["If-None-Match"] = etag})},
    {7,  wrk.format("GET", "/artifacts/default/soak/", {Accept = "application/json"})},
    {5,  wrk.format("PUT", "/artifacts/default/" .. name, {Authorization = "Bearer " .. token}, body)},
    {5,  wrk.format("GET", "/healthz")},
  }
  for _, m in ipairs(mix) do
    for _ = 1, m[1] do reqs[#reqs + 1] = m[2] end
  end
end

function request()
  sent = sent + 1
  return reqs[(sent % #reqs) + 1]
end

function response(status, headers, body)
  answered = answered + 1
  if limit > 0 and answered >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    "soak: requests=%d errors=%d (connect %d, read %d, write %d, status>=400 %d, timeout %d) " ..
    "p50=%.2fms p99=%.2fms max=%.2fms duration=%.1fs\n",
    summary.requests, errors, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.duration / 1e6))
end
