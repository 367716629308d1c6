//! When a session has lived too long: the one rule both stores and the file sweep apply.

/// Limits in milliseconds. `None` disables a limit; so does zero, as in the original stores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExpiryPolicy {
    stale_timeout: Option<f64>,
    max_to_live: Option<f64>,
}

impl ExpiryPolicy {
    pub fn new(stale_timeout: Option<f64>, max_to_live: Option<f64>) -> Self {
        let enabled = |limit: Option<f64>| limit.filter(|ms| *ms > 0.0);
        Self {
            stale_timeout: enabled(stale_timeout),
            max_to_live: enabled(max_to_live),
        }
    }

    /// A missing timestamp never expires a session: there is nothing to judge it by.
    pub fn is_expired(&self, created_at: Option<f64>, last_used: Option<f64>, now: f64) -> bool {
        self.is_stale(last_used, now) || self.is_too_old(created_at, now)
    }

    /// Unused for longer than the stale timeout.
    pub fn is_stale(&self, last_used: Option<f64>, now: f64) -> bool {
        older_than(last_used, self.stale_timeout, now)
    }

    /// Created longer ago than the maximum age.
    pub fn is_too_old(&self, created_at: Option<f64>, now: f64) -> bool {
        older_than(created_at, self.max_to_live, now)
    }
}

fn older_than(at: Option<f64>, limit: Option<f64>, now: f64) -> bool {
    matches!((at, limit), (Some(at), Some(limit)) if now - at > limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_sessions_expire_after_the_timeout_not_at_it() {
        let policy = ExpiryPolicy::new(Some(100.0), None);
        assert!(!policy.is_expired(Some(0.0), Some(1000.0), 1100.0));
        assert!(policy.is_expired(Some(0.0), Some(1000.0), 1100.5));
    }

    #[test]
    fn max_to_live_counts_from_creation_whatever_the_use() {
        let policy = ExpiryPolicy::new(None, Some(100.0));
        assert!(policy.is_expired(Some(0.0), Some(150.0), 150.0));
        assert!(!policy.is_expired(Some(100.0), Some(100.0), 150.0));
    }

    #[test]
    fn zero_and_none_disable_a_limit() {
        assert!(!ExpiryPolicy::new(Some(0.0), None).is_expired(Some(0.0), Some(0.0), 1e15));
        assert!(!ExpiryPolicy::new(Some(0.0), Some(0.0)).is_expired(Some(0.0), Some(0.0), 1e15));
    }

    #[test]
    fn missing_timestamps_never_expire() {
        let policy = ExpiryPolicy::new(Some(1.0), Some(1.0));
        assert!(!policy.is_expired(None, None, 1e15));
    }
}
