-- POST /api/orders: 1-3 distinct products of the pool, quantity 1-3, a price of three.
--   BENCH_PRODUCTS       comma-separated product ids (the pool; at least 15)
--   BENCH_CUSTOMERS      customers are BENCH_CUSTOMER_BASE + 1 .. + BENCH_CUSTOMERS
local products = split(os.getenv("BENCH_PRODUCTS"))
local customers = env_number("BENCH_CUSTOMERS", 1000)
local customer_base = env_number("BENCH_CUSTOMER_BASE", 0)
local prices = { "1", "2.50", "9.99" }
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   seed_random()
end

function request()
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
