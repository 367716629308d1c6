//! Where sessions live in Redis: in one of a fixed number of buckets, each named by a hash tag,
//! so that every key a command or script touches lies in one hash slot (a Redis Cluster refuses
//! a script whose keys lie in several, with `CROSSSLOT`), while the buckets spread the sessions
//! over every master of a cluster. The same layout serves a single server.
//!
//! Under a key prefix `P`, bucket `T` (its hash tag) holds:
//! - `P{T}:session:<id>`: exactly the session's JSON, as `serializeSession()` wrote it, with a
//!   key expiry when the expiry policy sets one;
//! - `P{T}:index`: a sorted set of its ids, scored by the time their key expires (`+inf`:
//!   never), so that listing sessions never scans the database;
//! - `P{T}:created`: a sorted set of the time each session was created, as its first save knew
//!   it, from which `maxToLive` counts;
//! - `P{T}:policy`: a hash with the expiry policy (`staleTimeout`, `maxToLive`, in
//!   milliseconds, and `set`, present whenever the hash is), written by the stores that have
//!   one and read by every script, so that stores without one (rammerhead's cluster workers)
//!   still store sessions that expire. Each store also passes the last policy it saw, used while
//!   the hash is missing (a server restarted empty, before a store with a policy has written it
//!   again). Every bucket has its copy: a script reads no key outside its bucket;
//! - `P{T}:dataset`: a random token; a new token means the bucket's data was lost (its server
//!   restarted empty), and every host then writes back the sessions it holds;
//! - `P{T}:versions`: a hash of each session's version, raised by every write and delete, so
//!   that a write based on an older version than the stored one is refused (and merged by its
//!   host);
//! - `P{T}:tombstones`: a sorted set of the sessions deleted lately, scored by when that is
//!   forgotten (after the stale timeout, else a day): until then no write based on a copy
//!   loaded before the delete stores the session again.
//!
//! And `Pchanges` is the channel on which every write and delete is announced, as
//! `<origin> <s|d> <version> <id>`, so that other hosts refresh or drop their copy. A cluster
//! passes a message published on any node to every node.
//!
//! A session's bucket is the one whose range of slots holds the slot of its id; bucket `n`'s
//! tag is the smallest number whose slot lies in the `n`-th of `BUCKETS` equal ranges of the
//! 16384 slots. A cluster made by `redis-cli --cluster create` gives each master one range of
//! slots, so each holds an equal share of the buckets, and so of the sessions.

use std::sync::OnceLock;

/// How many buckets the sessions are spread over: enough to share them evenly between the
/// masters of any common cluster, few enough that reading every bucket (listing the ids, the
/// periodic check) stays cheap.
pub const BUCKETS: usize = 64;
/// Redis Cluster's hash slots.
const SLOTS: usize = 16384;

/// The hash slot Redis Cluster gives `text` (with no hash tag in it).
pub fn slot_of(text: &[u8]) -> usize {
    crc16::State::<crc16::XMODEM>::calculate(text) as usize % SLOTS
}

/// The hash tag of each bucket: see the module's comment.
fn tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags: Vec<Option<String>> = vec![None; BUCKETS];
        let mut left = BUCKETS;
        let mut n = 0u32;
        while left > 0 {
            let tag = n.to_string();
            let bucket = slot_of(tag.as_bytes()) * BUCKETS / SLOTS;
            if tags[bucket].is_none() {
                tags[bucket] = Some(tag);
                left -= 1;
            }
            n += 1;
        }
        tags.into_iter().flatten().collect()
    })
}

/// The keys of one bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub index: String,
    pub created: String,
    pub policy: String,
    pub dataset: String,
    pub versions: String,
    pub tombstones: String,
    session_prefix: String,
}

impl Bucket {
    fn new(prefix: &str, tag: &str) -> Self {
        let key = |name: &str| format!("{prefix}{{{tag}}}:{name}");
        Self {
            index: key("index"),
            created: key("created"),
            policy: key("policy"),
            dataset: key("dataset"),
            versions: key("versions"),
            tombstones: key("tombstones"),
            session_prefix: key("session:"),
        }
    }

    pub fn session(&self, id: &str) -> String {
        format!("{}{id}", self.session_prefix)
    }
}

/// Every key name under one prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    pub buckets: Vec<Bucket>,
    /// The channel of announcements.
    pub changes: String,
}

impl Layout {
    pub fn new(prefix: &str) -> Self {
        Self {
            buckets: tags().iter().map(|tag| Bucket::new(prefix, tag)).collect(),
            changes: format!("{prefix}changes"),
        }
    }

    /// The number of the bucket that holds session `id`.
    pub fn bucket_number(id: &str) -> usize {
        slot_of(id.as_bytes()) * BUCKETS / SLOTS
    }

    pub fn bucket_of(&self, id: &str) -> &Bucket {
        &self.buckets[Self::bucket_number(id)]
    }

    /// The key of session `id`.
    pub fn session(&self, id: &str) -> String {
        self.bucket_of(id).session(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bucket_holds_one_slot_and_the_buckets_cover_the_slots_evenly() {
        let layout = Layout::new("p:");
        assert_eq!(layout.buckets.len(), BUCKETS);
        for (n, bucket) in layout.buckets.iter().enumerate() {
            let tag = &tags()[n];
            assert_eq!(slot_of(tag.as_bytes()) * BUCKETS / SLOTS, n);
            // As the cluster client routes the bucket's keys.
            let routed = redis::cluster_routing::Slot::for_key(bucket.session("x"));
            assert_eq!(
                format!("{routed:?}"),
                format!("Slot({})", slot_of(tag.as_bytes()))
            );
            for key in [&bucket.index, &bucket.versions, &bucket.session("x")] {
                assert!(key.starts_with(&format!("p:{{{tag}}}:")), "{key}");
            }
        }
        // The layout is what Redis holds: changing a tag would lose every stored session.
        assert_eq!(&tags()[..4], ["10", "18", "113", "342"]);
        assert_eq!(layout.session("abc"), "p:{59}:session:abc");
    }

    #[test]
    fn sessions_spread_evenly_over_the_buckets() {
        let mut counts = [0usize; BUCKETS];
        for i in 0..64_000 {
            counts[Layout::bucket_number(&format!("{i:032x}"))] += 1;
        }
        let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*least > 800 && *most < 1200, "{least}..{most}");
    }
}
