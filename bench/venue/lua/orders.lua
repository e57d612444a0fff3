-- wrk script: REST order entry against a Rialto venue (the mix of bench/venue/mix.py).
--
-- The runner (bench/venue/wrk.py) prepends the users' tokens, one per pre-registered, pre-funded user:
--   tokens = {"eyJ...", ...}     -- at most 100
-- then runs:  wrk -t T -c C -d D --latency -s run.lua http://127.0.0.1:PORT
--
-- Mix, per request of a thread (see bench/venue/mix.py): 25 % a cancel (DELETE /v1/orders/{id}) of a
-- "far" order this thread placed, 25 % an IOC limit 5 ticks through the mid (60,000.00), 25 % a "near"
-- passive GTC limit 1..5 ticks behind the mid (what the IOCs take), 25 % a "far" passive GTC limit
-- 6..50 ticks behind it (what the cancels take; no IOC reaches it). Users take turns. Orders of user u are for 0.0100 + u lots
-- (0.0100, 0.0101, ...): the quantity echoed in a 201 tells the thread whose order it was, so the
-- cancel carries the owner's token (wrk does not pair a response with its request).
--
-- done() prints one line "BENCH {json}": status counts summed over threads (201 placed, 200 cancelled,
-- 4xx by error code), wrk's totals and its latency percentiles in microseconds.

local MID = 6000000
local NEAR = 5      -- near passive: 1..NEAR ticks behind the mid; IOCs go NEAR ticks through it
local FAR = 50      -- far passive: NEAR+1..FAR ticks behind the mid
local MAX_RESTING = 5000

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(1000 + id * 7919)
  counter = 0
  resting = {}       -- {order id, user index} of far orders (resting when placed; nothing but a cancel takes them)
  n201 = 0           -- orders placed (POST -> 201)
  n200 = 0           -- cancels that cancelled (DELETE -> 200)
  n_posts = 0        -- requests sent, by kind
  n_deletes = 0
  codes = {}         -- non-2xx responses by status and error code
  other = 0
end

local function price(ticks)
  return string.format("%d.%02d", math.floor(ticks / 100), ticks % 100)
end

function request()
  counter = counter + 1
  local r = math.random()
  if r < 0.25 and #resting > 0 then
    local i = math.random(#resting)
    local o = resting[i]
    resting[i] = resting[#resting]
    resting[#resting] = nil
    n_deletes = n_deletes + 1
    return wrk.format("DELETE", "/v1/orders/" .. o[1], {["Authorization"] = "Bearer " .. tokens[o[2] + 1]})
  end
  local u = (counter * #threads + id) % #tokens
  local buy = math.random() < 0.5
  local body
  if r < 0.5 then
    local p = buy and (MID + NEAR) or (MID - NEAR)
    body = string.format('{"symbol":"BTC-USD","side":"%s","type":"limit","price":"%s","quantity":"0.%04d","time_in_force":"ioc"}',
                         buy and "buy" or "sell", price(p), 100 + u)
  else
    local away
    if r < 0.75 then
      away = math.random(1, NEAR)
    else
      away = math.random(NEAR + 1, FAR)
    end
    local p = buy and (MID - away) or (MID + away)
    body = string.format('{"symbol":"BTC-USD","side":"%s","type":"limit","price":"%s","quantity":"0.%04d"}',
                         buy and "buy" or "sell", price(p), 100 + u)
  end
  n_posts = n_posts + 1
  return wrk.format("POST", "/v1/orders",
                    {["Authorization"] = "Bearer " .. tokens[u + 1], ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 then
    n201 = n201 + 1
    if #resting < MAX_RESTING and string.find(body, '"status":"new"', 1, true) then
      local oid = string.match(body, '"id":"(%d+)"')
      local q = string.match(body, '"quantity":"0%.(%d+)"')
      local units, cents = string.match(body, '"price":"(%d+)%.(%d+)"')
      local away = units and math.abs(tonumber(units) * 100 + tonumber(cents) - MID) or 0
      if oid and q and away > NEAR then
        table.insert(resting, {oid, tonumber(q) - 100})
      end
    end
  elseif status == 200 then
    n200 = n200 + 1
  else
    local code = string.match(body or "", '"code":"([%w_]+)"') or "?"
    local key = tostring(status) .. " " .. code
    codes[key] = (codes[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local t = {n201 = 0, n200 = 0, posts = 0, deletes = 0}
  local all_codes = {}
  for _, thread in ipairs(threads) do
    t.n201 = t.n201 + thread:get("n201")
    t.n200 = t.n200 + thread:get("n200")
    t.posts = t.posts + thread:get("n_posts")
    t.deletes = t.deletes + thread:get("n_deletes")
    local c = thread:get("codes")
    for k, v in pairs(c) do
      all_codes[k] = (all_codes[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(all_codes) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"n201":%d,"n200":%d,"posts_sent":%d,"deletes_sent":%d,' ..
    '"codes":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p99.9":%d,"max":%d,"mean":%.1f,"stdev":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, t.n201, t.n200, t.posts, t.deletes,
    table.concat(parts, ","), e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, latency.stdev))
end
