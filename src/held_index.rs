//! `HeldIndex`: the core's index of the sessions a store holds in memory.

use napi::bindgen_prelude::{Float64ArraySlice, Utf16String};
use napi::{Env, Result};
use napi_derive::napi;
use session_core::session::held_index::Cursor;
use session_core::session::id;
use session_core::{ExpiryPolicy, HeldIndex, StoreError};

use crate::errors::js_error;

/// Ids are kept as the exact UTF-16 JavaScript holds, so no two ids ever share an entry.
#[napi(js_name = "HeldIndex")]
#[derive(Default)]
pub struct JsHeldIndex {
    index: HeldIndex<Vec<u16>>,
}

/// A page of [`JsHeldIndex::used_since`], and where the next one starts (null: no more).
#[napi(object)]
pub struct UsedPage {
    pub ids: Vec<Utf16String>,
    pub next_at: Option<f64>,
    pub next_slot: Option<u32>,
}

fn ids_out(ids: Vec<Vec<u16>>) -> Vec<Utf16String> {
    ids.into_iter().map(Utf16String::from).collect()
}

/// The stored ids as one list for JavaScript (see `id::join`), without those `held` holds: the
/// caller lists its held sessions itself, and comparing here costs about half of turning each
/// id into a JavaScript string to look it up there. A listing that failed is thrown.
pub fn unheld_id_list<S: AsRef<str>>(
    env: &Env,
    listed: std::result::Result<Vec<S>, StoreError>,
    held: Option<&JsHeldIndex>,
) -> Result<String> {
    let listed = listed.map_err(|e| js_error(env, e))?;
    let ids = listed.iter().map(AsRef::as_ref);
    let Some(held) = held else {
        return Ok(id::join(ids));
    };
    let mut utf16 = Vec::new();
    Ok(id::join(ids.filter(|id| {
        utf16.clear();
        utf16.extend(id.encode_utf16());
        !held.index.holds(&utf16[..])
    })))
}

#[napi]
impl JsHeldIndex {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records each id with its times, replacing what was recorded for it. Times that are not
    /// finite numbers never make a session due.
    #[napi]
    pub fn record(
        &mut self,
        ids: Vec<Utf16String>,
        created_at: Float64ArraySlice,
        last_used: Float64ArraySlice,
    ) {
        for ((id, c), l) in ids.iter().zip(created_at.iter()).zip(last_used.iter()) {
            self.index.record(&id[..], *c, *l);
        }
    }

    #[napi]
    pub fn remove(&mut self, ids: Vec<Utf16String>) {
        for id in &ids {
            self.index.remove(&id[..]);
        }
    }

    /// Up to `limit` ids unused for longer than `timeout` at `now`, the longest idle first.
    #[napi]
    pub fn idle(&self, now: f64, timeout: f64, limit: u32) -> Vec<Utf16String> {
        ids_out(self.index.idle(now, timeout, limit as usize))
    }

    /// Up to `limit` ids that break either limit at `now`. Limits of null or 0 are disabled.
    #[napi]
    pub fn expired(
        &self,
        now: f64,
        stale_timeout: Option<f64>,
        max_to_live: Option<f64>,
        limit: u32,
    ) -> Vec<Utf16String> {
        let policy = ExpiryPolicy::new(stale_timeout, max_to_live);
        ids_out(self.index.expired(now, policy, limit as usize))
    }

    /// Up to `limit` ids last used at `since` or later, the most recently used first, starting
    /// after the entry `(afterAt, afterSlot)` that the previous page ended with.
    #[napi]
    pub fn used_since(
        &self,
        since: f64,
        after_at: Option<f64>,
        after_slot: Option<u32>,
        limit: u32,
    ) -> UsedPage {
        let cursor = after_at
            .zip(after_slot)
            .map(|(at, slot)| Cursor { at, slot });
        let (ids, next) = self.index.used_since(since, cursor, limit as usize);
        UsedPage {
            ids: ids_out(ids),
            next_at: next.map(|c| c.at),
            next_slot: next.map(|c| c.slot),
        }
    }
}
