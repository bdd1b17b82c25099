"""The Lua scripts of the Redis store. Each runs atomically across every key it
names, on Redis' own clock.

An allowance `A` is three keys, named from `A` (on a Redis Cluster, each behind
its group's hash tag, so that every key one script names is in one slot):
- `A`, an integer: what it has used, settled costs and open holds together (as
  before reservations had ids, so replicas of either kind count alike);
- `A:holds`, a hash: reservation id -> amount held, or `lapsed` once it expired
  unsettled (so that its late settle still charges, once);
- `A:expiry`, a sorted set: open reservation ids by when they lapse.
Nano-dollar amounts travel as strings: Lua's numbers would print large ones
inexactly. A counter is created only with its starting point (what its owner had
spent in the period, from the ledger): `RESERVE` without one reports it unstarted,
and a counter that exists is never set again, so the first start wins and counts
already made are kept.
"""

from __future__ import annotations

# KEYS: three per allowance, in the order above.
_ALLOWANCES = """
local function clock()
  local time = redis.call('TIME')
  return tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local function counter(i) return KEYS[3 * i - 2] end
local function holds(i) return KEYS[3 * i - 1] end
local function expiry(i) return KEYS[3 * i] end
local function add(i, amount, sign)
  if amount ~= '0' then redis.call('INCRBY', counter(i), (sign or '') .. amount) end
end
local function used(i) return tonumber(redis.call('GET', counter(i)) or '0') end
local function lapse(i, now)
  local ids = redis.call('ZRANGEBYSCORE', expiry(i), '-inf', now)
  for _, id in ipairs(ids) do
    local amount = redis.call('HGET', holds(i), id)
    if amount and amount ~= 'lapsed' then
      add(i, amount, '-')
      redis.call('HSET', holds(i), id, 'lapsed')
    end
  end
  if #ids > 0 then redis.call('ZREMRANGEBYSCORE', expiry(i), '-inf', now) end
end
local function keep(i, ttl)
  redis.call('EXPIRE', counter(i), ttl)
  redis.call('EXPIRE', holds(i), ttl)
  redis.call('EXPIRE', expiry(i), ttl)
end
local n = #KEYS / 3
"""

# ARGV: id, amount, seconds until it lapses, then each allowance's limit, ttl and
# starting point ('' when unknown). Returns {0} when held (or already held),
# {-1, index, ...} naming the counters that are absent with no starting point
# (nothing held), else {index of the first allowance over, what it had used}.
RESERVE = (
    _ALLOWANCES
    + """
local id, amount, now = ARGV[1], ARGV[2], clock()
local unstarted = {-1}
for i = 1, n do
  if ARGV[3 + 3 * i] == '' and redis.call('EXISTS', counter(i)) == 0 then table.insert(unstarted, i) end
end
if #unstarted > 1 then return unstarted end
for i = 1, n do
  local starts_at = ARGV[3 + 3 * i]
  if starts_at ~= '' then redis.call('SET', counter(i), starts_at, 'NX', 'EX', ARGV[2 + 3 * i]) end
end
for i = 1, n do
  lapse(i, now)
  local held = redis.call('HGET', holds(i), id)
  if held and held ~= 'lapsed' then return {0} end
  local limit, so_far = tonumber(ARGV[1 + 3 * i]), used(i)
  if so_far >= limit or so_far + tonumber(amount) > limit then return {i, so_far} end
end
local lapses = string.format('%.6f', now + tonumber(ARGV[3]))
for i = 1, n do
  redis.call('HSET', holds(i), id, amount)
  redis.call('ZADD', expiry(i), lapses, id)
  add(i, amount)
  keep(i, ARGV[2 + 3 * i])
end
return {0}
"""
)

# ARGV: id, actual cost, then each allowance's ttl. A reservation no allowance holds
# (settled already, or never made) changes nothing.
SETTLE = (
    _ALLOWANCES
    + """
local id, actual = ARGV[1], ARGV[2]
for i = 1, n do
  local held = redis.call('HGET', holds(i), id)
  if held then
    redis.call('HDEL', holds(i), id)
    if held ~= 'lapsed' then
      redis.call('ZREM', expiry(i), id)
      add(i, held, '-')
    end
    add(i, actual)
    keep(i, ARGV[2 + i])
  end
end
return 0
"""
)

# One allowance: what it has spent and holds, once lapsed holds are dropped.
USED = (
    _ALLOWANCES
    + """
lapse(1, clock())
return used(1)
"""
)

# KEYS: the buckets (hashes of tokens and when); ARGV: each bucket's capacity and cost.
_BUCKETS = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local function level(i, capacity)
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
  return math.min(capacity, tokens + math.max(now - at, 0) * capacity / 60)
end
local function store(i, tokens)
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[i], 120)
end
"""

# Returns {0} when taken, else {index of the bucket short longest, seconds to wait}.
TAKE = (
    _BUCKETS
    + """
local levels = {}
local short, wait = 0, 0
for i = 1, #KEYS do
  local capacity, cost = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  levels[i] = level(i, capacity)
  if levels[i] < cost and (cost - levels[i]) * 60 / capacity > wait then
    short, wait = i, (cost - levels[i]) * 60 / capacity
  end
end
if short > 0 then return {short, tostring(wait)} end
for i = 1, #KEYS do store(i, levels[i] - tonumber(ARGV[2 * i])) end
return {0}
"""
)

GIVE_BACK = (
    _BUCKETS
    + """
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[2 * i - 1])
  store(i, math.min(capacity, level(i, capacity) + tonumber(ARGV[2 * i])))
end
return 0
"""
)
