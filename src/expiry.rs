use napi::bindgen_prelude::Float64ArraySlice;
use napi_derive::napi;
use session_core::ExpiryPolicy;

/// Positions of the sessions that have expired. Timestamps that are not numbers arrive as NaN
/// and never expire a session. One call judges a whole batch, so the per-call cost is paid once.
#[napi]
pub fn expired_indices(
    created_at: Float64ArraySlice,
    last_used: Float64ArraySlice,
    now: f64,
    stale_timeout: Option<f64>,
    max_to_live: Option<f64>,
) -> Vec<u32> {
    let policy = ExpiryPolicy::new(stale_timeout, max_to_live);
    let known = |t: f64| (!t.is_nan()).then_some(t);
    created_at
        .iter()
        .zip(last_used.iter())
        .enumerate()
        .filter(|(_, (c, l))| policy.is_expired(known(**c), known(**l), now))
        .map(|(i, _)| i as u32)
        .collect()
}
