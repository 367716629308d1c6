//! Sessions stored by earlier versions, before buckets (see `layout`): under a prefix `P`,
//! `P session:<id>` with `P index`, `P created`, `P versions`, `P tombstones`, `P policy` and
//! `P dataset`. Only a single server can hold them (every script of that layout failed on a
//! cluster), and a store moves them into their buckets: all of them in the background once it
//! has reached the server, and any one at once when it is asked for before that.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::Script;

use crate::error::StoreError;
use crate::redis::writer::{RedisPolicy, Shared};
use crate::session::id::SessionId;

/// How many sessions one pipeline moves.
const BATCH: isize = 256;

/// Moves one session, atomically, with its expiry, creation time, version and tombstone.
/// KEYS[1..5] its flat key, index, created, versions, tombstones; KEYS[6..10] the same in its
/// bucket; ARGV[1] its id. A session the bucket holds already, or deleted there, wins: the
/// flat copy was written by a host of an earlier version after the move. Returns 1 if moved.
const MOVE: &str = r"
local id = ARGV[1]
local moved = 0
local old_version = tonumber(redis.call('HGET', KEYS[4], id)) or 0
local new_version = tonumber(redis.call('HGET', KEYS[9], id)) or 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('EXISTS', KEYS[6]) == 0 and not redis.call('ZSCORE', KEYS[10], id) then
    -- RENAME keeps the key's expiry.
    redis.call('RENAME', KEYS[1], KEYS[6])
    local expires = redis.call('ZSCORE', KEYS[2], id)
    if not expires then
      local ok, at = pcall(redis.call, 'PEXPIRETIME', KEYS[6])
      expires = (ok and at > 0) and (at - 1) or '+inf'
    end
    redis.call('ZADD', KEYS[7], expires, id)
    local created = redis.call('ZSCORE', KEYS[3], id)
    if created then redis.call('ZADD', KEYS[8], created, id) end
    moved = 1
  else
    redis.call('DEL', KEYS[1])
  end
end
local forgotten_at = redis.call('ZSCORE', KEYS[5], id)
-- A session the bucket holds (imported anew after the flat delete) stays live.
if forgotten_at and redis.call('EXISTS', KEYS[6]) == 1 then forgotten_at = nil end
if forgotten_at then
  local kept = redis.call('ZSCORE', KEYS[10], id)
  if not kept or tonumber(kept) < tonumber(forgotten_at) then
    redis.call('ZADD', KEYS[10], forgotten_at, id)
  end
end
-- Never lower than a version some host holds.
if moved == 1 or forgotten_at or new_version > 0 then
  redis.call('HSET', KEYS[9], id, math.max(old_version, new_version))
end
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('HDEL', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
return moved
";

/// The keys of the flat layout under one prefix.
pub struct FlatLayout {
    prefix: String,
    index: String,
    created: String,
    versions: String,
    tombstones: String,
    policy: String,
    dataset: String,
    script: Script,
}

impl FlatLayout {
    pub fn new(prefix: &str) -> Self {
        let key = |name: &str| format!("{prefix}{name}");
        Self {
            prefix: prefix.to_owned(),
            index: key("index"),
            created: key("created"),
            versions: key("versions"),
            tombstones: key("tombstones"),
            policy: key("policy"),
            dataset: key("dataset"),
            script: Script::new(MOVE),
        }
    }

    /// The flat key of session `id`.
    pub fn session(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    /// Adds to `pipe` the move of session `id`.
    fn add_move(&self, shared: &Shared, pipe: &mut redis::Pipeline, id: &str) {
        let bucket = shared.layout.bucket_of(id);
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.session(id))
            .key(&self.index)
            .key(&self.created)
            .key(&self.versions)
            .key(&self.tombstones)
            .key(bucket.session(id))
            .key(&bucket.index)
            .key(&bucket.created)
            .key(&bucket.versions)
            .key(&bucket.tombstones)
            .arg(id);
        pipe.invoke_script(&invocation);
    }
}

/// Moves session `id` if the flat layout may still hold it; whether a move was tried (the
/// session may then be in its bucket, moved by this call or by another mover meanwhile).
pub(crate) async fn move_one(shared: &Arc<Shared>, id: &SessionId) -> Result<bool, StoreError> {
    let Some(flat) = &shared.flat else {
        return Ok(false);
    };
    if !shared.flat_left.load(Ordering::SeqCst) {
        return Ok(false);
    }
    let mut pipe = redis::pipe();
    pipe.load_script(&flat.script).ignore();
    flat.add_move(shared, &mut pipe, id.as_str());
    let _: (i64,) = shared.query(pipe).await?;
    Ok(true)
}

/// Moves every session of the flat layout, in batches, then deletes what is left of it;
/// returns how many were moved. Several stores doing so at once move each session once.
pub(crate) async fn move_all(shared: &Arc<Shared>) -> Result<u64, StoreError> {
    let Some(flat) = &shared.flat else {
        return Ok(0);
    };
    // The policy it held, for stores without one of their own, until the buckets have it.
    let mut pipe = redis::pipe();
    pipe.cmd("HMGET")
        .arg(&flat.policy)
        .arg("staleTimeout")
        .arg("maxToLive")
        .arg("set");
    let ((stale, max_to_live, set),): ((Option<f64>, Option<f64>, Option<String>),) =
        shared.query(pipe).await?;
    if set.is_some() {
        let mut known = shared.policy.lock().unwrap_or_else(|p| p.into_inner());
        known.get_or_insert(RedisPolicy {
            stale_timeout: stale,
            max_to_live,
        });
    }
    let mut moved = 0;
    loop {
        let mut pipe = redis::pipe();
        pipe.zrange(&flat.index, 0, BATCH - 1)
            .zrange(&flat.tombstones, 0, BATCH - 1);
        let (listed, deleted): (Vec<String>, Vec<String>) = shared.query(pipe).await?;
        if listed.is_empty() && deleted.is_empty() {
            break;
        }
        let mut pipe = redis::pipe();
        pipe.load_script(&flat.script).ignore();
        for id in listed.iter().chain(&deleted) {
            flat.add_move(shared, &mut pipe, id);
        }
        let results: Vec<i64> = shared.query(pipe).await?;
        moved += results.iter().filter(|moved| **moved == 1).count() as u64;
    }
    let mut pipe = redis::pipe();
    pipe.del(&[
        &flat.index,
        &flat.created,
        &flat.versions,
        &flat.tombstones,
        &flat.policy,
        &flat.dataset,
    ]);
    let _: (i64,) = shared.query(pipe).await?;
    shared.flat_left.store(false, Ordering::SeqCst);
    Ok(moved)
}
