-- POST /api/products: unique names, BENCH_CATEGORIES categories (bench-cat-00, -01, ...),
-- stock large enough that orders never run out.
local categories = env_number("BENCH_CATEGORIES", 20)
local prices = { "1", "2.50", "9.99", "120" }
local headers = { ["Content-Type"] = "application/json" }
local counter = 0

function init(args)
   seed_random()
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"name":"bench product %d-%d","category":"bench-cat-%02d","price":%s,"stock":1000000000}',
      id, counter, math.random(0, categories - 1), prices[math.random(1, #prices)])
   return wrk.format("POST", "/api/products", headers, body)
end
