//! Random tokens for names no other process or store picks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// 64 bits from the operating system's randomness (through std's hasher keys), mixed with a
/// count of the tokens made so far and the time.
pub fn random_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static MADE: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(MADE.fetch_add(1, Ordering::Relaxed));
    let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    hasher.write_u128(since_epoch.map_or(0, |d| d.as_nanos()));
    hasher.finish()
}
