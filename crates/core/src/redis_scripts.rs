//! How sessions are laid out in Redis, and the Lua scripts that change them atomically.
//!
//! Under a key prefix `P`:
//! - `P session:<id>`: exactly the session's JSON, as `serializeSession()` wrote it, with a key
//!   expiry when the expiry policy sets one;
//! - `P index`: a sorted set of the ids, scored by the time their key expires (`+inf`: never),
//!   so listing sessions never scans the database;
//! - `P deadlines`: a sorted set of the time each session reaches `maxToLive`;
//! - `P policy`: a hash with the expiry policy (`staleTimeout`, `maxToLive`, in milliseconds,
//!   and `set`, present whenever the hash is), written by the stores that have one and read by
//!   every script, so that stores without one (rammerhead's cluster workers) still store
//!   sessions that expire. Each store also passes the last policy it saw, used while the hash is
//!   missing (a server restarted empty, before a store with a policy has written it again);
//! - `P dataset`: a random token; a new token means the data set was lost (a server restarted
//!   empty), and every host then writes back the sessions it holds.
//!
//! Every time is the Redis server's own (`TIME`), so host clocks never matter.

use redis::Script;

/// The key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    pub index: String,
    pub deadlines: String,
    pub policy: String,
    pub dataset: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            index: format!("{prefix}index"),
            deadlines: format!("{prefix}deadlines"),
            policy: format!("{prefix}policy"),
            dataset: format!("{prefix}dataset"),
        }
    }

    pub fn session(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }
}

/// Shared by the scripts that give a key its expiry. KEYS[1] index, KEYS[2] deadlines,
/// KEYS[3] policy; ARGV[1] and ARGV[2] the policy the caller last saw ('' for no limit), used
/// while the policy hash is missing.
const EXPIRY: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- When the session `id` expires (nil: never); `age` is how long ago it was created.
local function expires_at(now, id, age)
  local policy = redis.call('HMGET', KEYS[3], 'staleTimeout', 'maxToLive', 'set')
  if not policy[3] then policy = { ARGV[1], ARGV[2] } end
  local stale, max_to_live = tonumber(policy[1]), tonumber(policy[2])
  local at = nil
  if stale then at = now + stale end
  if max_to_live then
    local deadline = tonumber(redis.call('ZSCORE', KEYS[2], id))
    if not deadline then
      deadline = now + max_to_live - age
      redis.call('ZADD', KEYS[2], deadline, id)
    end
    if not at or deadline < at then at = deadline end
  end
  return at
end
local function forget(key, id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  return redis.call('DEL', key)
end
-- Gives `key` the expiry of `id`; false when it has expired already (and is deleted).
local function expire(key, now, id, age)
  local at = expires_at(now, id, age)
  if at and at <= now then
    forget(key, id)
    return false
  end
  if at then
    redis.call('PEXPIREAT', key, at)
    redis.call('ZADD', KEYS[1], at, id)
  else
    redis.call('PERSIST', key)
    redis.call('ZADD', KEYS[1], '+inf', id)
  end
  return true
end
";

/// Stores a session. KEYS[4] its key; ARGV[3..5] id, JSON, age in ms. Returns 1, or 0 when the
/// session had expired already (nothing is stored).
const SAVE: &str = r"
local now = now_ms()
redis.call('SET', KEYS[4], ARGV[4])
if expire(KEYS[4], now, ARGV[3], tonumber(ARGV[5])) then return 1 end
return 0
";

/// Refreshes the expiry of sessions in use. KEYS[4] the dataset key, KEYS[5..] their keys;
/// ARGV[3] the data set's token as the caller knows it, ARGV[4..] the ids. Returns the ids whose
/// key is gone (deleted, or expired), or nil, changing nothing, when the data set is not the one
/// the caller knows: a server restarted empty has lost the keys, not deleted them.
const REFRESH: &str = r"
if redis.call('GET', KEYS[4]) ~= ARGV[3] then return nil end
local now = now_ms()
local gone = {}
for i = 4, #ARGV do
  local id, key = ARGV[i], KEYS[i + 1]
  if redis.call('EXISTS', key) == 1 then
    expire(key, now, id, 0)
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    gone[#gone + 1] = id
  end
end
return gone
";

/// Deletes a session. KEYS[4] its key; ARGV[3] its id. Returns 1 when a key was deleted.
const REMOVE: &str = r"
return forget(KEYS[4], ARGV[3])
";

/// Deletes a session only if it still holds ARGV[4] (a copy found corrupt).
const REMOVE_IF_UNCHANGED: &str = r"
if redis.call('GET', KEYS[4]) == ARGV[4] then return forget(KEYS[4], ARGV[3]) end
return 0
";

/// Drops from the index, in batches, the ids whose key has expired. Returns how many.
const PRUNE: &str = r"
local now = now_ms()
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 10000)
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return #gone
";

/// The data set's token (set to ARGV[1] when there is none) and the policy. KEYS[1] the dataset
/// key, KEYS[2] the policy; ARGV[2] 'own' writes the policy ARGV[3], ARGV[4] ('' for no limit),
/// 'restore' writes it only if the hash is missing, '' leaves it. Returns { token, staleTimeout,
/// maxToLive, set }, '' for what is missing.
const CHECK: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
if ARGV[2] == 'own' or (ARGV[2] == 'restore' and redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'set', '1')
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'staleTimeout', ARGV[3]) end
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'maxToLive', ARGV[4]) end
end
local policy = redis.call('HMGET', KEYS[2], 'staleTimeout', 'maxToLive', 'set')
return { redis.call('GET', KEYS[1]), policy[1] or '', policy[2] or '', policy[3] or '' }
";

/// Every script the store runs, compiled once.
pub struct Scripts {
    pub save: Script,
    pub refresh: Script,
    pub remove: Script,
    pub remove_if_unchanged: Script,
    pub prune: Script,
    pub check: Script,
}

impl Scripts {
    pub fn new() -> Self {
        let with_expiry = |body: &str| Script::new(&format!("{EXPIRY}{body}"));
        Self {
            save: with_expiry(SAVE),
            refresh: with_expiry(REFRESH),
            remove: with_expiry(REMOVE),
            remove_if_unchanged: with_expiry(REMOVE_IF_UNCHANGED),
            prune: with_expiry(PRUNE),
            check: Script::new(CHECK),
        }
    }

    /// The scripts a pipeline of writes may run: it loads them first, since a server restarted
    /// since they were last run has forgotten them.
    pub fn for_writes(&self) -> [&Script; 5] {
        [
            &self.save,
            &self.refresh,
            &self.remove,
            &self.remove_if_unchanged,
            &self.check,
        ]
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}
