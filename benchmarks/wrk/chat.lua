-- wrk script: POST one chat-completions body with a bearer key, print a JSON summary at the end.
--
-- Environment (wrk passes no script arguments through the runner, so it reads these):
--   BENCH_BODY_FILE        file holding the request body (JSON)
--   BENCH_API_KEY          value of the Authorization bearer token
--   BENCH_OVERHEAD_HEADER  optional response header to collect (e.g. x-switchboard-overhead-ms);
--                          when unset no response() hook is installed, so wrk stays at full speed.
--
-- done() prints one line starting with "BENCH_JSON " followed by a JSON object; latencies are
-- in microseconds, as wrk records them.

local body_file = os.getenv("BENCH_BODY_FILE")
local api_key = os.getenv("BENCH_API_KEY") or "x"
local overhead_header = os.getenv("BENCH_OVERHEAD_HEADER")

local f = assert(io.open(body_file, "rb"), "cannot open BENCH_BODY_FILE")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. api_key

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if overhead_header and overhead_header ~= "" then
  local wanted = string.lower(overhead_header)
  overhead_values = {}
  overhead_count = 0
  status_counts = {}

  function response(status, headers, body)
    status_counts[status] = (status_counts[status] or 0) + 1
    for name, value in pairs(headers) do
      if string.lower(name) == wanted then
        local number = tonumber(value)
        if number then
          overhead_count = overhead_count + 1
          overhead_values[overhead_count] = number
        end
        break
      end
    end
  end
end

local function json_number_list(values)
  local parts = {}
  for i = 1, #values do
    parts[i] = string.format("%.4f", values[i])
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

function done(summary, latency, requests)
  local overhead = {}
  local statuses = {}
  for _, thread in ipairs(threads) do
    local values = thread:get("overhead_values")
    if values then
      for i = 1, #values do
        overhead[#overhead + 1] = values[i]
      end
    end
    local counts = thread:get("status_counts")
    if counts then
      for status, count in pairs(counts) do
        statuses[status] = (statuses[status] or 0) + count
      end
    end
  end
  local status_parts = {}
  for status, count in pairs(statuses) do
    status_parts[#status_parts + 1] = string.format('"%d":%d', status, count)
  end
  local errors = summary.errors
  io.write("BENCH_JSON ")
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.2f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"statuses":{%s},"overhead_ms":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(status_parts, ","), json_number_list(overhead)))
end
