"""The Lua scripts behind `store/redis_counters.py` (its docstring has the keys they use).

ADMIT trims what aged out of each scope's windows and leases, checks every scope, and
(with `apply`) counts the request into all of them or none; it returns, per scope, what
it found. SETTLE frees an admission's slot, turns its hold into spend and sets its TPM
entry to the real tokens, once per admission (a `SET NX` marker). RENEW extends a running
admission's leases. Each runs atomically: no other instance's script interleaves.
"""

from __future__ import annotations

COMMON = """
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(key) return tonumber(redis.call('GET', key) or '0') end
local function int(x) return string.format('%.0f', x) end
"""

ADMIT = (
    COMMON
    + """
local now = clock(ARGV[1])
local id, tokens, hold = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lease, window, apply = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'

local function trim(zset, amounts, total, cutoff)
  while true do
    local gone = redis.call('ZRANGEBYSCORE', zset, '-inf', cutoff, 'LIMIT', 0, 500)
    if #gone == 0 then return end
    local sum = 0
    for _, v in ipairs(redis.call('HMGET', amounts, unpack(gone))) do
      if v then sum = sum + tonumber(v) end
    end
    redis.call('ZREM', zset, unpack(gone))
    redis.call('HDEL', amounts, unpack(gone))
    if sum ~= 0 then redis.call('DECRBY', total, int(sum)) end
    if #gone < 500 then return end
  end
end
local function oldest(zset)
  local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2])
end
local function fit_at(zset, amounts, total, limit)
  if tokens > limit then return -1 end
  if total + tokens <= limit then return now end
  local left = total
  local entries = redis.call('ZRANGE', zset, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    left = left - tonumber(redis.call('HGET', amounts, entries[i]) or '0')
    if left + tokens <= limit then return tonumber(entries[i + 1]) + window end
  end
  return now
end

local n = (#KEYS - 1) / 9
local out = {0, now}
local fits = true
for i = 0, n - 1 do
  local k, a = 1 + i * 9, 8 + i * 5
  local rpm, tpm = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local par, budget = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now - window)
  trim(KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], now - window)
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 5], '-inf', now)
  trim(KEYS[k + 6], KEYS[k + 7], KEYS[k + 8], now)
  local requests, used = redis.call('ZCARD', KEYS[k + 1]), num(KEYS[k + 4])
  local running, spent, held = redis.call('ZCARD', KEYS[k + 5]), num(KEYS[k + 9]), num(KEYS[k + 8])
  local fit = now
  if tpm >= 0 then fit = fit_at(KEYS[k + 2], KEYS[k + 3], used, tpm) end
  if rpm >= 0 and requests + 1 > rpm then fits = false end
  if tpm >= 0 and used + tokens > tpm then fits = false end
  if par >= 0 and running + 1 > par then fits = false end
  if budget >= 0 and spent + held + math.max(hold, 1) > budget then fits = false end
  for _, v in ipairs({requests, oldest(KEYS[k + 1]), int(used), fit, oldest(KEYS[k + 2]),
                      running, int(spent), int(held)}) do
    table.insert(out, v)
  end
end
if not (fits and apply) then return out end
out[1] = 1
for i = 0, n - 1 do
  local k, a = 1 + i * 9, 8 + i * 5
  if tonumber(ARGV[a]) >= 0 then
    redis.call('ZADD', KEYS[k + 1], now, id)
    redis.call('PEXPIRE', KEYS[k + 1], window + 1000)
  end
  if tonumber(ARGV[a + 1]) >= 0 then
    redis.call('ZADD', KEYS[k + 2], now, id)
    redis.call('HSET', KEYS[k + 3], id, ARGV[3])
    redis.call('INCRBY', KEYS[k + 4], ARGV[3])
    for j = 2, 4 do redis.call('PEXPIRE', KEYS[k + j], window + lease) end
  end
  if tonumber(ARGV[a + 2]) >= 0 then
    redis.call('ZADD', KEYS[k + 5], now + lease, id)
    redis.call('PEXPIRE', KEYS[k + 5], 2 * lease)
  end
  if tonumber(ARGV[a + 3]) >= 0 and hold > 0 then
    redis.call('ZADD', KEYS[k + 6], now + lease, id)
    redis.call('HSET', KEYS[k + 7], id, ARGV[4])
    redis.call('INCRBY', KEYS[k + 8], ARGV[4])
    for j = 6, 8 do redis.call('PEXPIRE', KEYS[k + j], 2 * lease) end
  end
end
return out
"""
)

RENEW = (
    COMMON
    + """
local now, lease, id = clock(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for k = 2, #KEYS, 9 do
  if redis.call('ZADD', KEYS[k + 4], 'XX', 'CH', now + lease, id) == 1 then
    redis.call('PEXPIRE', KEYS[k + 4], 2 * lease)
  end
  if redis.call('ZADD', KEYS[k + 5], 'XX', 'CH', now + lease, id) == 1 then
    for j = 5, 7 do redis.call('PEXPIRE', KEYS[k + j], 2 * lease) end
  end
end
return 1
"""
)

SETTLE = (
    COMMON
    + """
local id, tokens, cost, refund = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return 0 end
local n = (#KEYS - 1) / 9
for i = 0, n - 1 do
  local k, a = 1 + i * 9, 6 + i * 2
  redis.call('ZREM', KEYS[k + 5], id)
  local h = redis.call('HGET', KEYS[k + 7], id)
  if h then
    redis.call('HDEL', KEYS[k + 7], id)
    redis.call('ZREM', KEYS[k + 6], id)
    redis.call('DECRBY', KEYS[k + 8], h)
  end
  if cost >= 0 and ARGV[a] == '1' then
    redis.call('INCRBY', KEYS[k + 9], ARGV[3])
    local ttl = tonumber(ARGV[a + 1])
    if ttl > 0 then redis.call('EXPIRE', KEYS[k + 9], ttl) end
  end
  local t = redis.call('HGET', KEYS[k + 3], id)
  if refund then
    redis.call('ZREM', KEYS[k + 1], id)
    if t then
      redis.call('HDEL', KEYS[k + 3], id)
      redis.call('ZREM', KEYS[k + 2], id)
      redis.call('DECRBY', KEYS[k + 4], t)
    end
  elseif tokens >= 0 and t then
    redis.call('HSET', KEYS[k + 3], id, ARGV[2])
    redis.call('INCRBY', KEYS[k + 4], int(tokens - tonumber(t)))
  end
end
return 1
"""
)
