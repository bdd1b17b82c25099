-- wrk script shared by every row: POST one JSON body, check every answer, print JSON.
--
--   wrk ... -s post.lua URL -- BODY_FILE MIN_BYTES API_KEY [HEADER ...]
--
-- BODY_FILE   the request body to POST (sent as application/json)
-- MIN_BYTES   a 200 whose body is shorter than this counts as an error ("short"):
--             a proxy that answers fast but truncates or drops the body must not look good
-- API_KEY     sent as `Authorization: Bearer API_KEY` (LiteLLM requires its master key)
-- HEADER      "Name: value", sent with every request too (Portkey routes by headers)
--
-- Checking each answer's status and length means wrk hands every body to Lua: about 1 ms
-- of CPU per 2 MB body, taken from the server under test on a 2-core machine. With
-- WRK_CHECK_BODIES=0 the hook is left out and wrk's own count of statuses >= 400 remains.
--
-- done() prints one JSON object on the last line of stdout; bench/load.py reads it.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.method = "POST"
   wrk.body = file:read("*a")
   file:close()
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[3]
   min_bytes = tonumber(args[2])
   for i = 4, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      wrk.headers[name] = value
   end
   non_200, short = 0, 0
end

if os.getenv("WRK_CHECK_BODIES") ~= "0" then
   function response(status, headers, body)
      if status ~= 200 then
         non_200 = non_200 + 1
      elseif #body < min_bytes then
         short = short + 1
      end
   end
end

function done(summary, latency, requests)
   local non_200_total, short_total = 0, 0
   for _, thread in ipairs(threads) do
      non_200_total = non_200_total + thread:get("non_200")
      short_total = short_total + thread:get("short")
   end
   local errors = summary.errors
   io.write(string.format(
      '{"duration_us": %d, "requests": %d, "bytes": %d, "bodies_checked": %s, ' ..
      '"non_200": %d, "short": %d, "status_400_up": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.duration, summary.requests, summary.bytes, tostring(response ~= nil),
      non_200_total, short_total, errors.status, errors.connect, errors.read, errors.write, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
