-- wrk script: realistic, varied Track Event requests (POST /v1/event/{workspace}).
--
--   wrk -t1 -c64 -d10s -s bench/track.lua http://127.0.0.1:PORT -- WS "Basic ..." ACTIONS POOL
--
-- Each wrk thread precomputes POOL complete requests at init (so the hot loop only hands wrk a
-- string): every body has its own customer (one of 200,000), ACTIONS actions with varied names,
-- attributes, platforms and current timestamps (epoch seconds, epoch milliseconds or ISO 8601,
-- a few seconds to a minute old, never future-dated). Requests are sent round-robin from a
-- random start, so connections do not replay one another.
--
-- Open-loop mode (wrk2's model, since wrk2 is not packaged here): with TRACKD_BENCH_RATE=R in
-- the environment, every connection sends R requests/s on a fixed schedule, and latency is
-- measured from each request's *scheduled* time, so a stalled server is charged for the requests
-- that queued behind the stall (no coordinated omission). Run it with one connection per thread
-- (-tN -cN): the callbacks cannot tell connections apart. The variable is read at load time
-- because wrk decides whether `delay` exists before it calls init().
--
-- With TRACKD_BENCH_IDS=FILE, the request_id of every 200 is written to FILE (one a line), so
-- bench/run.py can look each one up on disk after killing the server.
--
-- done() prints one line `BENCH_JSON {...}` that bench/run.py parses.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *ts);
]]
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

local ACTIONS = {
    "Viewed Product", "Added To Cart", "Removed From Cart", "Checkout Started",
    "Purchased", "App Opened", "Searched", "Signed Up", "Shared", "Rated Product",
}
local CATEGORIES = { "Shoes", "Accessories", "Electronics", "Books", "Grocery", "Toys" }
local PLATFORMS = { "ANDROID", "iOS", "web" }
local CURRENCIES = { "INR", "USD", "EUR" }
local CUSTOMERS = 200000

local function pick(list)
    return list[math.random(#list)]
end

local function iso(epoch)
    return os.date("!%Y-%m-%dT%H:%M:%SZ", epoch)
end

local function action_json(now)
    local age = math.random(0, 60)
    local when = now - age
    local current
    local style = math.random(3)
    if style == 1 then
        current = string.format("%d", when)
    elseif style == 2 then
        current = string.format("%d", when * 1000 + math.random(0, 999))
    else
        current = '"' .. iso(when) .. '"'
    end
    return string.format(
        '{"action":"%s","attributes":{"product_id":"SKU-%06d","category":"%s","price":%.2f,'
            .. '"currency":"%s","quantity":%d,"in_stock":%s,"tags":["sale","%s"],'
            .. '"viewed_at":"%s"},"platform":"%s","app_version":"5.%d.%d",'
            .. '"current_time":%s,"user_time":"%s","user_timezone_offset":19800}',
        pick(ACTIONS), math.random(1, 999999), pick(CATEGORIES), math.random() * 500,
        pick(CURRENCIES), math.random(1, 5), math.random(2) == 1 and "true" or "false",
        pick(CATEGORIES), iso(when - math.random(0, 3600)), pick(PLATFORMS),
        math.random(0, 9), math.random(0, 20), current, iso(when))
end

local function body_json(actions, now)
    local parts = {}
    for i = 1, actions do
        parts[i] = action_json(now)
    end
    local customer = string.format("cust-%06d", math.random(1, CUSTOMERS))
    return string.format(
        '{"type":"event","customer_id":"%s","device_id":"dev-%s","actions":[%s]}',
        customer, customer, table.concat(parts, ","))
end

-- Runs in the main state, once per thread, before init().
local threads = {}
local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_no", thread_count)
    table.insert(threads, thread)
end

-- Per-thread state.
local pool = {}
local cursor = 1
statuses = {}
samples = {}
ids = {}

function init(args)
    local workspace, authorization = args[1], args[2]
    local actions, pool_size = tonumber(args[3] or "1"), tonumber(args[4] or "1000")
    math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
    local path = "/v1/event/" .. workspace
    local headers = {
        ["Authorization"] = authorization,
        ["Content-Type"] = "application/json",
    }
    local now = os.time()
    for i = 1, pool_size do
        pool[i] = wrk.format("POST", path, headers, body_json(actions, now))
    end
    cursor = math.random(pool_size)
end

local rate = tonumber(os.getenv("TRACKD_BENCH_RATE") or "")
local ids_file = os.getenv("TRACKD_BENCH_IDS")
local interval_us = rate and 1000000 / rate
local next_at
local started_at

function request()
    local req = pool[cursor]
    cursor = cursor % #pool + 1
    if interval_us then
        local sent = now_us()
        next_at = next_at or sent -- wrk sends a connection's first request without delay()
        -- Late (the connection was busy): charge the wait. Early (ms timer rounding): from now.
        started_at = math.min(next_at, sent)
    end
    return req
end

if interval_us then
    function delay()
        local now = now_us()
        if next_at == nil then
            next_at = now + math.random() * interval_us -- spread the connections' phases
        else
            next_at = next_at + interval_us
        end
        local wait = next_at - now
        if wait <= 0 then
            return 0
        end
        return math.floor(wait / 1000)
    end
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if interval_us then
        samples[#samples + 1] = now_us() - started_at
    end
    if ids_file and status == 200 then
        ids[#ids + 1] = string.match(body, '"request_id":"([^"]+)"')
    end
end

local function write_ids()
    local out = assert(io.open(ids_file, "w"))
    for _, thread in ipairs(threads) do
        for _, id in ipairs(thread:get("ids") or {}) do
            out:write(id, "\n")
        end
    end
    out:close()
end

local function percentile(sorted, p)
    if #sorted == 0 then
        return 0
    end
    local index = math.max(1, math.ceil(#sorted * p / 100))
    return sorted[index]
end

function done(summary, latency, requests)
    local counts = {}
    local merged = {}
    for _, thread in ipairs(threads) do
        for status, n in pairs(thread:get("statuses") or {}) do
            counts[status] = (counts[status] or 0) + n
        end
        for _, sample in ipairs(thread:get("samples") or {}) do
            merged[#merged + 1] = sample
        end
    end
    table.sort(merged)
    if ids_file then
        write_ids()
    end
    local status_parts = {}
    for status, n in pairs(counts) do
        status_parts[#status_parts + 1] = string.format('"%d":%d', status, n)
    end
    local e = summary.errors
    io.write(string.format(
        'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
            .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
            .. '"statuses":{%s},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},'
            .. '"paced":%s,"scheduled_latency_us":{"count":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        table.concat(status_parts, ","),
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean,
        interval_us and "true" or "false",
        #merged, percentile(merged, 50), percentile(merged, 90), percentile(merged, 99),
        merged[#merged] or 0))
end
