//! The sessions a store holds in memory, ordered by last use and by creation, so that "which have
//! been idle longer than X" and "which have expired" cost time in the sessions due, not in the
//! sessions held.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::hash::Hash;

use crate::session::expiry::ExpiryPolicy;

/// An epoch-milliseconds timestamp as a key: finite, totally ordered.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Millis(f64);

impl Eq for Millis {}

impl PartialOrd for Millis {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Millis {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A timestamp that is not a finite number orders nothing: such a session is never due.
fn key(at: f64) -> Option<Millis> {
    at.is_finite().then_some(Millis(at))
}

/// Where a [`HeldIndex::used_since`] listing stopped: the last entry it named.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub at: f64,
    pub slot: u32,
}

#[derive(Debug)]
struct Held<K> {
    id: K,
    created_at: Option<Millis>,
    last_used: Option<Millis>,
}

/// Tables an index's ids are spread over, and entries per chunk of its store of entries.
const SHARDS: usize = 32;
const CHUNK: usize = 4096;

/// A map from ids to slots that never holds its caller for long as it grows: a hash table is
/// rebuilt whole when it grows, which at 60,000 sessions held one call for 5 to 10 ms, so the
/// ids are spread over SHARDS tables that each grow on their own.
#[derive(Debug)]
struct Slots<K> {
    shards: Vec<HashMap<K, u32, foldhash::quality::RandomState>>,
    pick: foldhash::quality::RandomState,
}

impl<K: Hash + Eq> Slots<K> {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
            pick: Default::default(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, id: &Q) -> usize {
        (self.pick.hash_one(id) % SHARDS as u64) as usize
    }

    fn get<Q>(&self, id: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(id)].get(id).copied()
    }

    fn insert(&mut self, id: K, slot: u32) {
        let shard = self.shard(&id);
        self.shards[shard].insert(id, slot);
    }

    fn remove<Q>(&mut self, id: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(id);
        self.shards[shard].remove(id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
}

/// Entries by slot, in chunks of CHUNK, so that adding one never copies all the others.
#[derive(Debug)]
struct Entries<K> {
    chunks: Vec<Vec<Option<Held<K>>>>,
    len: usize,
}

impl<K> Entries<K> {
    fn get(&self, slot: u32) -> &Held<K> {
        let slot = slot as usize;
        self.chunks[slot / CHUNK][slot % CHUNK]
            .as_ref()
            .expect("a slot in use")
    }

    fn get_mut(&mut self, slot: u32) -> &mut Held<K> {
        let slot = slot as usize;
        self.chunks[slot / CHUNK][slot % CHUNK]
            .as_mut()
            .expect("a slot in use")
    }

    fn set(&mut self, slot: u32, held: Option<Held<K>>) {
        let slot = slot as usize;
        self.chunks[slot / CHUNK][slot % CHUNK] = held;
    }

    /// Adds an entry in a new slot; returns the slot.
    fn push(&mut self, held: Held<K>) -> u32 {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk").push(Some(held));
        self.len += 1;
        u32::try_from(self.len - 1).expect("fewer than 2^32 sessions held")
    }
}

/// Held sessions by id. `K` is the id as the caller holds it (the exact UTF-16 of a JavaScript
/// string, for the stores), so that no two ids ever share an entry.
#[derive(Debug)]
pub struct HeldIndex<K> {
    slots: Slots<K>,
    held: Entries<K>,
    free: Vec<u32>,
    by_last_used: BTreeSet<(Millis, u32)>,
    by_created_at: BTreeSet<(Millis, u32)>,
}

impl<K: Hash + Eq> Default for HeldIndex<K> {
    fn default() -> Self {
        Self {
            slots: Slots::new(),
            held: Entries {
                chunks: Vec::new(),
                len: 0,
            },
            free: Vec::new(),
            by_last_used: BTreeSet::new(),
            by_created_at: BTreeSet::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> HeldIndex<K> {
    /// Holds `id` with these times, replacing what was recorded for it. `id` is borrowed, so a
    /// session already held costs no copy of its id.
    pub fn record<Q>(&mut self, id: &Q, created_at: f64, last_used: f64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let (created_at, last_used) = (key(created_at), key(last_used));
        let slot = match self.slots.get(id) {
            Some(slot) => {
                self.unorder(slot);
                slot
            }
            None => self.new_slot(id.to_owned()),
        };
        let held = self.held.get_mut(slot);
        held.created_at = created_at;
        held.last_used = last_used;
        if let Some(at) = last_used {
            self.by_last_used.insert((at, slot));
        }
        if let Some(at) = created_at {
            self.by_created_at.insert((at, slot));
        }
    }

    /// Forgets `id`; `false` when it was not held.
    pub fn remove<Q>(&mut self, id: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(slot) = self.slots.remove(id) else {
            return false;
        };
        self.unorder(slot);
        self.held.set(slot, None);
        self.free.push(slot);
        true
    }

    /// Whether `id` is held.
    pub fn holds<Q>(&self, id: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.slots.get(id).is_some()
    }

    /// Up to `limit` ids idle for longer than `timeout` at `now`, the longest idle first.
    pub fn idle(&self, now: f64, timeout: f64, limit: usize) -> Vec<K> {
        self.by_last_used
            .iter()
            .take_while(|(at, _)| now - at.0 > timeout)
            .take(limit)
            .map(|&(_, slot)| self.id_at(slot))
            .collect()
    }

    /// Up to `limit` ids last used at `since` or later, the most recently used first, starting
    /// after `cursor` (from the most recent without one); with the cursor to go on from, `None`
    /// once none is left. An id used again meanwhile moves ahead of the cursor and is not named.
    pub fn used_since(
        &self,
        since: f64,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> (Vec<K>, Option<Cursor>) {
        let newer = match cursor {
            Some(Cursor { at, slot }) => self.by_last_used.range(..(Millis(at), slot)),
            None => self.by_last_used.range(..),
        };
        let page: Vec<(Millis, u32)> = newer
            .rev()
            .take_while(|(at, _)| at.0 >= since)
            .take(limit)
            .copied()
            .collect();
        let next = match page.last() {
            Some(&(at, slot)) if page.len() == limit => Some(Cursor { at: at.0, slot }),
            _ => None,
        };
        let ids = page.into_iter().map(|(_, slot)| self.id_at(slot)).collect();
        (ids, next)
    }

    /// Up to `limit` ids that break the policy at `now`: the stale ones first, then those past
    /// their maximum age, each id once.
    pub fn expired(&self, now: f64, policy: ExpiryPolicy, limit: usize) -> Vec<K> {
        let stale = self
            .by_last_used
            .iter()
            .take_while(|(at, _)| policy.is_stale(Some(at.0), now))
            .map(|&(_, slot)| slot);
        let too_old = self
            .by_created_at
            .iter()
            .take_while(|(at, _)| policy.is_too_old(Some(at.0), now))
            .map(|&(_, slot)| slot)
            // A stale one is listed already.
            .filter(|&slot| {
                let held = self.held.get(slot);
                !policy.is_stale(held.last_used.map(|at| at.0), now)
            });
        stale
            .chain(too_old)
            .take(limit)
            .map(|slot| self.id_at(slot))
            .collect()
    }

    fn id_at(&self, slot: u32) -> K {
        self.held.get(slot).id.clone()
    }

    fn new_slot(&mut self, id: K) -> u32 {
        let held = Held {
            id: id.clone(),
            created_at: None,
            last_used: None,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.held.set(slot, Some(held));
                slot
            }
            None => self.held.push(held),
        };
        self.slots.insert(id, slot);
        slot
    }

    /// Takes the slot out of both orders.
    fn unorder(&mut self, slot: u32) {
        let held = self.held.get(slot);
        if let Some(at) = held.last_used {
            self.by_last_used.remove(&(at, slot));
        }
        if let Some(at) = held.created_at {
            self.by_created_at.remove(&(at, slot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index(entries: &[(&str, f64, f64)]) -> HeldIndex<String> {
        let mut index = HeldIndex::default();
        for (id, created_at, last_used) in entries {
            index.record(&id.to_string(), *created_at, *last_used);
        }
        index
    }

    #[test]
    fn idle_lists_the_longest_idle_first_and_stops_at_the_timeout() {
        let index = index(&[("a", 0.0, 50.0), ("b", 0.0, 10.0), ("c", 0.0, 90.0)]);
        assert_eq!(index.idle(100.0, 20.0, 10), ["b", "a"]);
        assert_eq!(index.idle(100.0, 20.0, 1), ["b"]);
        // Idle for exactly the timeout is not idle for longer.
        assert_eq!(index.idle(100.0, 50.0, 10), ["b"]);
    }

    #[test]
    fn a_new_record_moves_a_session_and_a_removed_one_is_gone() {
        let mut index = index(&[("a", 0.0, 10.0), ("b", 0.0, 20.0)]);
        index.record(&"a".to_string(), 0.0, 95.0);
        assert_eq!(index.idle(100.0, 20.0, 10), ["b"]);
        assert!(index.remove(&"b".to_string()));
        assert!(!index.remove(&"b".to_string()));
        assert!(index.holds("a") && !index.holds("b"));
        assert!(index.idle(100.0, 10.0, 10).is_empty());
        assert_eq!(index.slots.len(), 1);
    }

    #[test]
    fn expired_lists_each_id_once_under_either_limit() {
        let policy = ExpiryPolicy::new(Some(50.0), Some(80.0));
        // a: stale and too old; b: too old only; c: stale only; d: neither.
        let index = index(&[
            ("a", 0.0, 10.0),
            ("b", 5.0, 99.0),
            ("c", 60.0, 40.0),
            ("d", 60.0, 99.0),
        ]);
        let mut expired = index.expired(100.0, policy, 10);
        expired.sort();
        assert_eq!(expired, ["a", "b", "c"]);
        assert_eq!(index.expired(100.0, policy, 2).len(), 2);
        assert!(index
            .expired(100.0, ExpiryPolicy::new(None, None), 10)
            .is_empty());
    }

    #[test]
    fn used_since_names_the_most_recent_first_a_page_at_a_time() {
        let index = index(&[
            ("a", 0.0, 10.0),
            ("b", 0.0, 30.0),
            ("c", 0.0, 20.0),
            ("d", 0.0, 30.0),
        ]);
        let (all, next) = index.used_since(15.0, None, 10);
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], "c");
        assert!(next.is_none());
        // Page by page, every id once, even two used at the same moment across a page break.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = index.used_since(0.0, cursor, 1);
            seen.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, ["a", "b", "c", "d"]);
    }

    #[test]
    fn timestamps_that_are_not_numbers_are_never_due() {
        let index = index(&[
            ("a", f64::NAN, f64::INFINITY),
            ("b", f64::NEG_INFINITY, 0.0),
        ]);
        assert_eq!(index.idle(100.0, 1.0, 10), ["b"]);
        let policy = ExpiryPolicy::new(Some(1.0), Some(1.0));
        assert_eq!(index.expired(100.0, policy, 10), ["b"]);
    }

    #[test]
    fn slots_of_removed_sessions_are_reused_without_mixing_ids() {
        let mut index = index(&[("a", 0.0, 1.0), ("b", 0.0, 2.0)]);
        index.remove(&"a".to_string());
        index.record(&"c".to_string(), 0.0, 3.0);
        assert_eq!(index.idle(100.0, 0.0, 10), ["b", "c"]);
    }

    proptest! {
        /// Against a plain list judged one by one with the same rule.
        #[test]
        fn queries_match_judging_every_session(
            ops in proptest::collection::vec((0u8..12, any::<bool>(), 0u32..200, 0u32..200), 0..200),
            now in 0u32..300,
            stale in proptest::option::of(0u32..150),
            max in proptest::option::of(0u32..150),
        ) {
            let mut index = HeldIndex::default();
            let mut model: HashMap<u8, (f64, f64)> = HashMap::new();
            for (id, remove, created_at, last_used) in ops {
                if remove {
                    prop_assert_eq!(index.remove(&id), model.remove(&id).is_some());
                } else {
                    index.record(&id, f64::from(created_at), f64::from(last_used));
                    model.insert(id, (f64::from(created_at), f64::from(last_used)));
                }
            }
            for id in 0u8..12 {
                prop_assert_eq!(index.holds(&id), model.contains_key(&id));
            }
            let now = f64::from(now);
            let policy = ExpiryPolicy::new(stale.map(f64::from), max.map(f64::from));
            let mut expired = index.expired(now, policy, usize::MAX);
            expired.sort();
            let mut expected: Vec<u8> = model
                .iter()
                .filter(|(_, (c, l))| policy.is_expired(Some(*c), Some(*l), now))
                .map(|(id, _)| *id)
                .collect();
            expected.sort();
            prop_assert_eq!(expired, expected);
            let timeout = stale.map(f64::from).unwrap_or(10.0);
            let mut idle = index.idle(now, timeout, usize::MAX);
            idle.sort();
            let mut expected: Vec<u8> = model
                .iter()
                .filter(|(_, (_, l))| now - l > timeout)
                .map(|(id, _)| *id)
                .collect();
            expected.sort();
            prop_assert_eq!(idle, expected);
            prop_assert_eq!(index.slots.len(), model.len());
        }
    }
}
