-- GET the analytics, mixed: BENCH_MIX percent weights (products, categories, customers,
-- sync-status; default 25 each) over the ids and names in BENCH_PRODUCTS, BENCH_CATEGORIES and
-- BENCH_CUSTOMERS (comma-separated, all of them known to the read models).
local products = split(os.getenv("BENCH_PRODUCTS"))
local categories = split(os.getenv("BENCH_CATEGORIES"))
local customers = split(os.getenv("BENCH_CUSTOMERS"))
local mix = split(os.getenv("BENCH_MIX") or "25,25,25,25")
local bounds = {}
local sum = 0
for i = 1, 4 do
   sum = sum + tonumber(mix[i])
   bounds[i] = sum
end

function init(args)
   seed_random()
end

function request()
   local r = math.random() * sum
   local path
   if r < bounds[1] then
      path = "/api/analytics/products/" .. products[math.random(1, #products)] .. "/sales"
   elseif r < bounds[2] then
      path = "/api/analytics/categories/" .. categories[math.random(1, #categories)] .. "/revenue"
   elseif r < bounds[3] then
      path = "/api/analytics/customers/" .. customers[math.random(1, #customers)] .. "/lifetime-value"
   else
      path = "/api/analytics/sync-status"
   end
   return wrk.format("GET", path)
end
