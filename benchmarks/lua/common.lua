-- Shared by every scenario: benchmarks/http_load.py prepends it to the scenario's script.
--
-- Environment (read in every Lua state: wrk's main state and one per thread):
--   BENCH_TOTAL        stop after this many responses in all (0: run for wrk's -d duration)
--   BENCH_THREADS      wrk's -t, to split BENCH_TOTAL between the threads
--   BENCH_PERCENTILES  comma-separated percentiles done() reports
--   BENCH_SEED         seeds each thread's random numbers (with the thread's id)
--
-- A bounded run: each thread issues exactly its quota (delay() parks a connection once the
-- quota is issued, so no request beyond it is ever sent), counts responses by status, and
-- when all of its quota has been answered writes BENCH_THREAD_DONE to stderr and stops. wrk
-- itself has no request limit and sleeps for -d: the Python side sends SIGINT once every
-- thread is done, which ends that sleep. Every 100 responses a thread writes BENCH_PROGRESS:
-- requests lost to socket errors never complete a quota, so the Python side gives up (SIGINT)
-- when no progress comes for a while.

function env_number(name, default)
   local value = os.getenv(name)
   if value == nil or value == "" then
      return default
   end
   return tonumber(value)
end

function split(text)
   local out = {}
   if text then
      for item in string.gmatch(text, "[^,]+") do
         out[#out + 1] = item
      end
   end
   return out
end

local bounded = env_number("BENCH_TOTAL", 0) > 0
local threads = {}
local next_id = 0

-- main state, once per thread before it starts: its id and its share of BENCH_TOTAL
function setup(thread)
   local total = env_number("BENCH_TOTAL", 0)
   local count = env_number("BENCH_THREADS", 1)
   local quota = 0
   if total > 0 then
      quota = math.floor(total / count)
      if next_id < total % count then
         quota = quota + 1
      end
   end
   thread:set("id", next_id)
   thread:set("quota", quota)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function seed_random()
   math.randomseed(env_number("BENCH_SEED", 1) * 1000 + id)
   math.random()
end

issued = 0
completed = 0
statuses = {}

if bounded then
   function delay()
      if issued >= quota then
         return 3600000 -- park this connection; the thread stops before it wakes
      end
      issued = issued + 1
      return 0
   end

   function response(status, headers, body)
      completed = completed + 1
      local key = tostring(status)
      statuses[key] = (statuses[key] or 0) + 1
      if completed % 100 == 0 then
         io.stderr:write("BENCH_PROGRESS\n") -- for the stall watchdog
         io.stderr:flush()
      end
      if completed >= quota then
         io.stderr:write("BENCH_THREAD_DONE\n")
         io.stderr:flush()
         wrk.thread:stop()
      end
   end
end

-- main state, after the run: one line "BENCH_JSON {...}" on stdout
function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for status, count in pairs(counts) do
         merged[status] = (merged[status] or 0) + count
      end
   end
   local status_parts = {}
   for status, count in pairs(merged) do
      status_parts[#status_parts + 1] = string.format('"%s":%d', status, count)
   end
   local percentile_parts = {}
   for _, p in ipairs(split(os.getenv("BENCH_PERCENTILES") or "50,90,99,99.9")) do
      percentile_parts[#percentile_parts + 1] =
         string.format('["%s",%.0f]', p, latency:percentile(tonumber(p)))
   end
   local e = summary.errors
   io.write("BENCH_JSON ", string.format(
      '{"durationUs":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latencyUs":{"min":%.0f,"max":%.0f,"mean":%.1f,"stdev":%.1f},' ..
      '"percentilesUs":[%s],"statuses":{%s}}',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.max, latency.mean, latency.stdev,
      table.concat(percentile_parts, ","), table.concat(status_parts, ",")), "\n")
end
