//! The Lua scripts that change sessions atomically, each within one bucket (see `layout`).
//!
//! Every time is the Redis server's own (`TIME`), so host clocks never matter.

use redis::Script;

/// The expiry rule of the core (`ExpiryPolicy`), where Lua must apply it: a session has expired
/// once `now` is past the earlier of its last use plus `stale` and its creation plus
/// `max_to_live` (a limit of nil is disabled; so is a time of nil). Redis deletes a key once the
/// time reaches its `PEXPIREAT`, which takes whole milliseconds, so a key is given the first
/// whole millisecond past `at`. The tests hold the rule against `ExpiryPolicy`.
pub const EXPIRY_RULE: &str = r"
local function deadline(last_used, stale, created, max_to_live)
  local at = nil
  if stale and last_used then at = last_used + stale end
  if max_to_live and created then
    local too_old = created + max_to_live
    if not at or too_old < at then at = too_old end
  end
  return at
end
local function is_past(now, at)
  return at ~= nil and now > at
end
";

/// Shared by the scripts that give a key its expiry. KEYS[1] index, KEYS[2] created,
/// KEYS[3] policy, KEYS[4] versions, KEYS[5] tombstones, all of one bucket; ARGV[1] and ARGV[2]
/// the policy the caller last saw ('' for no limit), used while the policy hash is missing.
const EXPIRY: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function policy()
  local p = redis.call('HMGET', KEYS[3], 'staleTimeout', 'maxToLive', 'set')
  if not p[3] then p = { ARGV[1], ARGV[2] } end
  -- As `ExpiryPolicy` reads them: a limit of 0 or less is none.
  local stale, max_to_live = tonumber(p[1]), tonumber(p[2])
  if stale and stale <= 0 then stale = nil end
  if max_to_live and max_to_live <= 0 then max_to_live = nil end
  return stale, max_to_live
end
-- When the session stored at `key` was created, as its value says (nil if it cannot tell):
-- the readable header of an encoded value (see `codec`), else the JSON.
local function created_in(key)
  local value = redis.call('GET', key) or ''
  if string.sub(value, 1, 3) == 'RHS' then
    if #value < 21 then return nil end
    local created = struct.unpack('<d', value, 6)
    if created ~= created then return nil end
    return created
  end
  local ok, session = pcall(cjson.decode, value)
  local data = ok and type(session) == 'table' and session.data
  if type(data) == 'table' and type(data.createdAt) == 'number' then return data.createdAt end
  return nil
end
-- When the session `id` at `key`, in use `now`, expires (nil: never); `age` is how long ago it
-- was created, by the clock of the host that stores it, or nil when refreshing: a session
-- stored before its creation was recorded then counts from the `createdAt` of its JSON.
local function expires_at(key, now, id, age)
  local stale, max_to_live = policy()
  local created = tonumber(redis.call('ZSCORE', KEYS[2], id))
  if not created then
    created = age and (now - age) or created_in(key) or now
    redis.call('ZADD', KEYS[2], created, id)
  end
  return deadline(now, stale, created, max_to_live)
end
local function remove(key, id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  return redis.call('DEL', key)
end
local function version_of(id)
  return tonumber(redis.call('HGET', KEYS[4], id)) or 0
end
-- Whether `id` was deleted lately; a tombstone past its time is dropped.
local function is_deleted(now, id)
  local until_ms = tonumber(redis.call('ZSCORE', KEYS[5], id))
  if not until_ms then return false end
  if until_ms > now then return true end
  redis.call('ZREM', KEYS[5], id)
  if redis.call('ZSCORE', KEYS[1], id) == false then redis.call('HDEL', KEYS[4], id) end
  return false
end
-- Forgets up to `count` tombstones past their time, and the versions of their sessions.
local function forget_tombstones(now, count)
  local forgotten = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, count)
  for _, id in ipairs(forgotten) do
    redis.call('ZREM', KEYS[5], id)
    if redis.call('ZSCORE', KEYS[1], id) == false then redis.call('HDEL', KEYS[4], id) end
  end
end
-- Announcing is best effort: a user the server's ACL forbids to publish still stores.
local function announce(channel, message)
  redis.pcall('PUBLISH', channel, message)
end
-- Gives `key` the expiry of `id`; false when it has expired already (and is deleted).
local function expire(key, now, id, age)
  local at = expires_at(key, now, id, age)
  if is_past(now, at) then
    remove(key, id)
    redis.call('HDEL', KEYS[4], id)
    return false
  end
  if at then
    redis.call('PEXPIREAT', key, math.floor(at) + 1)
    redis.call('ZADD', KEYS[1], at, id)
  else
    redis.call('PERSIST', key)
    redis.call('ZADD', KEYS[1], '+inf', id)
  end
  return true
end
";

/// Stores a session. KEYS[6] its key; ARGV[3..9] id, JSON, age in ms, what the JSON is based
/// on (the version its copy was loaded or last stored as; 'new' for a session created here;
/// 'any' to store it whatever Redis holds), the writer's origin, the longest value a store
/// reads, the changes channel (a channel is no key: it lies in no slot). Returns { outcome, version, json } (json '' but for 0 and
/// 3): 1 stored as `version`;
/// 2 the session had expired already; 0 Redis holds another `version`, `json` (the writer
/// merges and tries again); 3 likewise, but that value is longer than the limit (`json` is its
/// length); -1 the session was deleted after the copy was loaded. Only 1 stores.
const SAVE: &str = r"
local now = now_ms()
local id, mode = ARGV[3], ARGV[6]
local base = tonumber(mode) or 0
local current = version_of(id)
local claims = mode == 'new' or mode == 'any'
if not claims and is_deleted(now, id) then return { -1, current, '' } end
-- Another version than the base is stored: a newer one, or, after Redis lost its data, one
-- written back by another host. A copy expired meanwhile is simply stored again.
if mode ~= 'any' and current ~= base and redis.call('EXISTS', KEYS[6]) == 1 then
  local len = redis.call('STRLEN', KEYS[6])
  if len > tonumber(ARGV[8]) then return { 3, current, tostring(len) } end
  return { 0, current, redis.call('GET', KEYS[6]) }
end
if claims then redis.call('ZREM', KEYS[5], id) end
-- Never lower than a version some host may hold, even after Redis lost its data.
local version = math.max(current, base) + 1
redis.call('SET', KEYS[6], ARGV[4])
redis.call('HSET', KEYS[4], id, version)
if not expire(KEYS[6], now, id, tonumber(ARGV[5])) then return { 2, version, '' } end
announce(ARGV[9], ARGV[7] .. ' s ' .. version .. ' ' .. id)
return { 1, version, '' }
";

/// Refreshes the expiry of sessions in use, of one bucket. KEYS[6] the bucket's dataset key,
/// KEYS[7..] the sessions' keys; ARGV[3] the bucket's token as the caller knows it, ARGV[4..]
/// the ids. Returns the ids whose
/// key is gone (deleted, or expired), or nil, changing nothing, when the data set is not the one
/// the caller knows: a server restarted empty has lost the keys, not deleted them.
const REFRESH: &str = r"
if redis.call('GET', KEYS[6]) ~= ARGV[3] then return nil end
local now = now_ms()
local gone = {}
for i = 4, #ARGV do
  local id, key = ARGV[i], KEYS[i + 3]
  if redis.call('EXISTS', key) == 1 then
    expire(key, now, id, nil)
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    gone[#gone + 1] = id
  end
end
return gone
";

/// Deletes a session and leaves a tombstone. KEYS[6] its key; ARGV[3] its id, ARGV[4] the
/// deleter's origin, ARGV[5] the changes channel. Returns 1 when a key was deleted.
const REMOVE: &str = r"
local now = now_ms()
local id = ARGV[3]
local removed = remove(KEYS[6], id)
local version = redis.call('HINCRBY', KEYS[4], id, 1)
local stale = policy()
redis.call('ZADD', KEYS[5], now + (stale or 86400000), id)
-- A few old tombstones go with each new one, so that they never pile up, pruned or not.
forget_tombstones(now, 8)
announce(ARGV[5], ARGV[4] .. ' d ' .. version .. ' ' .. id)
return removed
";

/// Deletes a session only if it still holds ARGV[4] (a copy found corrupt). KEYS[6] its key.
const REMOVE_IF_UNCHANGED: &str = r"
if redis.call('GET', KEYS[6]) == ARGV[4] then
  redis.call('HDEL', KEYS[4], ARGV[3])
  return remove(KEYS[6], ARGV[3])
end
return 0
";

/// The stored copies newer than the caller's, of one bucket. KEYS[6..] the sessions' keys; ARGV[3] the longest
/// value a store reads, ARGV[4..] pairs of id and the version the caller holds. Returns, for
/// each newer one, { id, version, deleted, json }: deleted 1 (and json '') when the session was
/// deleted since, else 0
/// (one merely expired, or longer than the limit, is left out).
const FETCH: &str = r"
local now = now_ms()
local limit = tonumber(ARGV[3])
local newer = {}
for i = 4, #ARGV, 2 do
  local id, known = ARGV[i], tonumber(ARGV[i + 1])
  local key = KEYS[6 + (i - 4) / 2]
  local version = version_of(id)
  if version > known then
    if is_deleted(now, id) then
      newer[#newer + 1] = { id, version, 1, '' }
    elseif redis.call('EXISTS', key) == 1 and redis.call('STRLEN', key) <= limit then
      newer[#newer + 1] = { id, version, 0, redis.call('GET', key) }
    end
  end
end
return newer
";

/// Drops from the index, in batches, the ids whose key has expired (by `is_past`: a score
/// below now). Returns how many.
const PRUNE: &str = r"
local now = now_ms()
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, 10000)
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[4], id)
end
forget_tombstones(now, 10000)
return #gone
";

/// A bucket's data set token (set to ARGV[1] when there is none) and policy. KEYS[1] its
/// dataset key, KEYS[2] its policy; ARGV[2] 'own' writes the policy ARGV[3], ARGV[4] ('' for no limit),
/// 'restore' writes it only if the hash is missing, '' leaves it. Returns { token, staleTimeout,
/// maxToLive, set }, '' for what is missing.
const CHECK: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local policy = redis.call('HMGET', KEYS[2], 'staleTimeout', 'maxToLive', 'set')
-- Written only when it differs: every store checks every bucket each round, and a write is
-- replicated and logged.
local differs = not policy[3] or (policy[1] or '') ~= ARGV[3] or (policy[2] or '') ~= ARGV[4]
if (ARGV[2] == 'own' and differs) or (ARGV[2] == 'restore' and not policy[3]) then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'set', '1')
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'staleTimeout', ARGV[3]) end
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'maxToLive', ARGV[4]) end
  policy = redis.call('HMGET', KEYS[2], 'staleTimeout', 'maxToLive', 'set')
end
return { redis.call('GET', KEYS[1]), policy[1] or '', policy[2] or '', policy[3] or '' }
";

/// Every script the store runs, compiled once.
pub struct Scripts {
    pub save: Script,
    pub refresh: Script,
    pub remove: Script,
    pub remove_if_unchanged: Script,
    pub prune: Script,
    pub fetch: Script,
    pub check: Script,
}

impl Scripts {
    pub fn new() -> Self {
        let with_expiry = |body: &str| Script::new(&format!("{EXPIRY_RULE}{EXPIRY}{body}"));
        Self {
            save: with_expiry(SAVE),
            refresh: with_expiry(REFRESH),
            remove: with_expiry(REMOVE),
            remove_if_unchanged: with_expiry(REMOVE_IF_UNCHANGED),
            prune: with_expiry(PRUNE),
            fetch: with_expiry(FETCH),
            check: Script::new(CHECK),
        }
    }

    /// The scripts a pipeline of writes may run: it loads them first, since a server restarted
    /// since they were last run has forgotten them.
    pub fn for_writes(&self) -> [&Script; 6] {
        [
            &self.save,
            &self.refresh,
            &self.remove,
            &self.remove_if_unchanged,
            &self.fetch,
            &self.check,
        ]
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}
