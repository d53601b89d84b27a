/**
 * The Lua scripts. Each runs atomically on the server, so a lease, a settlement or a recovery
 * never interleaves with another. Time is always an argument (`now`, and due and expiry times
 * computed by the caller): nothing here reads the server's clock, so the contract suite can drive
 * time from a TestClock (DESIGN principle 2). Times are stored as the caller formatted them and
 * compared with `tonumber`; arithmetic happens in JavaScript, so no precision is lost to Lua's
 * number formatting.
 *
 * Per message, the hash `<tag>:m:<id>` holds:
 *   rec        the record as JSON (type, payload, headers, idempotencyKey, firstSeenAt), written
 *              once by JavaScript and never decoded here (cjson would turn `[]` into `{}`)
 *   attempts   attempts spent so far
 *   state      `scheduled` (in the due set) | `leased` (in the stream's pending list and in leases)
 *   member     its member in the due set: a zero-padded sequence number, `:`, the id, so that
 *              messages due at the same time leave in the order they were stored
 *   history    JSON array of attempt records, appended to as text
 *   token, leasedAt, expiresAt, entry (stream entry id)   while leased
 * A dead letter is the hash `<tag>:dl:<id>` (rec, attempts, history, reason, code, message,
 * deadAt) plus its id in the `dead` set scored by deadAt.
 */

const GROUP = `local GROUP = 'bulwark'\n`;

/** Stores one record unless its id is still queued; returns true when stored. */
const ENQUEUE_ONE = `
local function enqueue_one(tag, id, at, rec)
  local m = tag .. ':m:' .. id
  if redis.call('EXISTS', m) == 1 then return false end
  local seq = redis.call('INCR', tag .. ':seq')
  local member = string.format('%016d', seq) .. ':' .. id
  redis.call('HSET', m, 'rec', rec, 'attempts', 0, 'state', 'scheduled', 'member', member,
    'history', '[]')
  redis.call('ZADD', tag .. ':due', at, member)
  return true
end
`;

/**
 * KEYS: the due set and seq key of each record (2 per record; declared for Cluster routing).
 * ARGV: instance, wake channel, n, then per record: tag, id, availableAt, rec JSON, queue.
 */
export const ENQUEUE =
  ENQUEUE_ONE +
  `
local n = tonumber(ARGV[3])
local woken = {}
for i = 0, n - 1 do
  local b = 4 + i * 5
  if enqueue_one(ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]) then woken[ARGV[b + 4]] = true end
end
for queue in pairs(woken) do redis.call('PUBLISH', ARGV[2], ARGV[1] .. '\\n' .. queue) end
return 1
`;

/**
 * Moves up to `limit` due messages (oldest availableAt first) into the stream and reads them
 * through the consumer group, leasing each with a fresh token.
 * KEYS: stream, due, leases. ARGV: tag, now, limit, expiresAt, consumer, token prefix, token
 * suffix. Returns { {id, token, attempts, rec}..., nextAvailableAt or '' }.
 */
export const FETCH =
  GROUP +
  `
local stream, due, leases = KEYS[1], KEYS[2], KEYS[3]
local tag, now, limit, expires_at = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
end
local members = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(members) do
  redis.call('ZREM', due, member)
  redis.call('XADD', stream, '*', 'id', string.sub(member, 18))
end
local out = {}
local read = redis.call('XREADGROUP', 'GROUP', GROUP, ARGV[5], 'COUNT', limit, 'STREAMS', stream, '>')
if read then
  for i, entry in ipairs(read[1][2]) do
    local entry_id, id = entry[1], entry[2][2]
    local m = tag .. ':m:' .. id
    if redis.call('EXISTS', m) == 0 then
      redis.call('XACK', stream, GROUP, entry_id)
      redis.call('XDEL', stream, entry_id)
    else
      local token = ARGV[6] .. '.' .. i .. ARGV[7]
      local attempts = redis.call('HINCRBY', m, 'attempts', 1)
      redis.call('HSET', m, 'state', 'leased', 'token', token, 'leasedAt', now,
        'expiresAt', expires_at, 'entry', entry_id)
      redis.call('ZADD', leases, expires_at, id)
      out[#out + 1] = { id, token, attempts, redis.call('HGET', m, 'rec') }
    end
  end
end
local next_at = ''
if #out < limit then
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] then next_at = first[2] end
end
return { out, next_at }
`;

/**
 * Pushes held leases to a new expiry. KEYS: leases. ARGV: tag, expiresAt, then id, token pairs.
 * Returns the ids still held.
 */
export const EXTEND = `
local held = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local m = ARGV[1] .. ':m:' .. id
  local h = redis.call('HMGET', m, 'state', 'token')
  if h[1] == 'leased' and h[2] == token then
    redis.call('HSET', m, 'expiresAt', ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    held[#held + 1] = id
  end
end
return held
`;

/**
 * Applies a settlement if the token is current (fencing). With `expiredBy` set (recovery), also
 * only if the lease ran out by then, so a lease extended meanwhile is left alone.
 * KEYS: stream, due, leases, dead. ARGV: tag, id, token, kind (ack|defer|retry|dead), now,
 * dueAt, endedAt, code, message, reason, expiredBy. Returns 1 when applied, 0 when refused.
 */
export const SETTLE =
  GROUP +
  `
local stream, due, leases, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tag, id, token, kind, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local m = tag .. ':m:' .. id
local h = redis.call('HMGET', m, 'state', 'token', 'entry', 'attempts', 'leasedAt', 'expiresAt',
  'member', 'history', 'rec')
if h[1] ~= 'leased' or h[2] ~= token then return 0 end
if ARGV[11] ~= '' and tonumber(h[6]) > tonumber(ARGV[11]) then return 0 end
redis.call('XACK', stream, GROUP, h[3])
redis.call('XDEL', stream, h[3])
redis.call('ZREM', leases, id)
if kind == 'ack' then
  redis.call('DEL', m)
  return 1
end
if kind == 'defer' then
  redis.call('HINCRBY', m, 'attempts', -1)
else
  local record = '{"attempt":' .. h[4] .. ',"code":' .. cjson.encode(ARGV[8]) ..
    ',"message":' .. cjson.encode(ARGV[9]) .. ',"startedAt":' .. h[5] ..
    ',"endedAt":' .. ARGV[7] .. '}'
  local history
  if h[8] == '[]' then history = '[' .. record .. ']'
  else history = string.sub(h[8], 1, -2) .. ',' .. record .. ']' end
  if kind == 'dead' then
    local dl = tag .. ':dl:' .. id
    redis.call('DEL', dl)
    redis.call('HSET', dl, 'rec', h[9], 'attempts', h[4], 'history', history, 'reason', ARGV[10],
      'code', ARGV[8], 'message', ARGV[9], 'deadAt', now)
    redis.call('ZADD', dead, now, id)
    redis.call('DEL', m)
    return 1
  end
  redis.call('HSET', m, 'history', history)
end
redis.call('HSET', m, 'state', 'scheduled')
redis.call('HDEL', m, 'token', 'leasedAt', 'expiresAt', 'entry')
redis.call('ZADD', due, ARGV[6], h[7])
return 1
`;

/**
 * Lists leases that ran out by `now`, earliest expiry first. KEYS: leases. ARGV: tag, now, limit.
 * Returns { {id, token, attempts, rec, leasedAt, expiresAt}... }. Read only: the settlements
 * that follow check the token and the expiry again.
 */
export const EXPIRED = `
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local h = redis.call('HMGET', ARGV[1] .. ':m:' .. id, 'state', 'token', 'attempts', 'rec',
    'leasedAt', 'expiresAt')
  if h[1] == 'leased' then out[#out + 1] = { id, h[2], h[3], h[4], h[5], h[6] } end
end
return out
`;

/**
 * Counts. KEYS: stream, due, leases, dead. ARGV: now. Returns { ready, scheduled, leased, dead }.
 * Stream entries nobody has read yet (left by a script that failed half way) count as ready.
 */
export const STATS =
  GROUP +
  `
local ready = redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[1])
local scheduled = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
if redis.call('EXISTS', KEYS[1]) == 1 then
  local pending = redis.call('XPENDING', KEYS[1], GROUP)
  ready = ready + redis.call('XLEN', KEYS[1]) - pending[1]
end
return { ready, scheduled, redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]) }
`;

/**
 * Removes a dead letter and enqueues its replay, or does nothing if the dead letter is gone.
 * KEYS: source dead set, target due set, target seq. ARGV: source tag, dead id, instance, wake
 * channel, target tag, new id, availableAt, rec JSON, target queue. Returns 1 or 0.
 */
export const REPLAY =
  ENQUEUE_ONE +
  `
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('DEL', ARGV[1] .. ':dl:' .. ARGV[2])
enqueue_one(ARGV[5], ARGV[6], ARGV[7], ARGV[8])
redis.call('PUBLISH', ARGV[4], ARGV[3] .. '\\n' .. ARGV[9])
return 1
`;

/** Deletes dead letters. KEYS: dead set. ARGV: tag, ids... Returns the ids deleted. */
export const PURGE = `
local deleted = {}
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('DEL', ARGV[1] .. ':dl:' .. ARGV[i])
    deleted[#deleted + 1] = ARGV[i]
  end
end
return deleted
`;

/**
 * Removes this backend's consumer from a queue's group if it holds no entries, so consumer
 * names do not pile up across restarts. KEYS: stream. ARGV: consumer.
 */
export const FORGET_CONSUMER =
  GROUP +
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local pending = redis.call('XPENDING', KEYS[1], GROUP, '-', '+', 1, ARGV[1])
if #pending > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], GROUP, ARGV[1])
`;
