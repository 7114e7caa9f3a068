-- POST /api/orders: 1-3 distinct products of the pool, quantity 1-3, a price of three.
--   BENCH_PRODUCTS       comma-separated product ids (the pool; at least 15)
--   BENCH_CUSTOMERS      customers are BENCH_CUSTOMER_BASE + 1 .. + BENCH_CUSTOMERS
--   BENCH_IDEMPOTENCY    "" (default): no Idempotency-Key; "unique": a new key on every request
--                        (BENCH_KEY_PREFIX, the thread's id and a counter; the random choices
--                        are the same as without keys); "replay": each thread cycles through
--                        BENCH_KEY_SLOTS keys, each with a body of its own (one product,
--                        quantity 1, for customer BENCH_CUSTOMER_BASE + slot + 1), so once every
--                        slot was used each request is a replay (benchmarks/safe_retries.py)
local products = split(os.getenv("BENCH_PRODUCTS"))
local customers = env_number("BENCH_CUSTOMERS", 1000)
local customer_base = env_number("BENCH_CUSTOMER_BASE", 0)
local prices = { "1", "2.50", "9.99" }
local headers = { ["Content-Type"] = "application/json" }
local keying = os.getenv("BENCH_IDEMPOTENCY") or ""
local key_prefix = os.getenv("BENCH_KEY_PREFIX") or "bench"
local key_slots = env_number("BENCH_KEY_SLOTS", 1000)
local sent = 0

function init(args)
   seed_random()
end

function replayed_request()
   local slot = sent % key_slots
   headers["Idempotency-Key"] = string.format("%s-%s-%d", key_prefix, tostring(id), slot)
   local body = string.format(
      '{"customerId":%d,"items":[{"productId":%s,"quantity":1,"price":1}]}',
      customer_base + slot + 1, products[slot % #products + 1])
   return wrk.format("POST", "/api/orders", headers, body)
end

function request()
   sent = sent + 1
   if keying == "replay" then
      return replayed_request()
   elseif keying == "unique" then
      headers["Idempotency-Key"] = string.format("%s-%s-%d", key_prefix, tostring(id), sent)
   end
   local lines = {}
   local first = math.random(1, #products)
   for i = 1, math.random(1, 3) do
      -- offsets 0, 7, 14 in the pool: distinct products
      local product = products[(first + (i - 1) * 7) % #products + 1]
      lines[i] = string.format('{"productId":%s,"quantity":%d,"price":%s}',
         product, math.random(1, 3), prices[math.random(1, 3)])
   end
   local body = string.format('{"customerId":%d,"items":[%s]}',
      customer_base + math.random(1, customers), table.concat(lines, ","))
   return wrk.format("POST", "/api/orders", headers, body)
end
