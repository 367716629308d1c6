//! Whether a session changed since it was stored, without keeping the stored copy.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

/// A digest of what a serialized session holds, leaving out what changes on every use without
/// changing the session: `data.lastUsed` (its expiry is the store's business) and each cookie's
/// `lastAccessed` (tough-cookie rewrites it on every read). Objects are compared with their keys
/// sorted, so a session revived and serialized again has the digest of the copy it came from.
/// `None` for text that is not a JSON object.
pub fn change_fingerprint(json: &str) -> Option<u64> {
    let session: Value = serde_json::from_str(json).ok()?;
    let jar = session
        .get("serializedCookieJar")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok());
    fingerprint_of_parsed(session, jar)
}

/// [`change_fingerprint`] of a session already parsed, `jar` being its `serializedCookieJar`
/// string parsed (`None` when it is not a string holding JSON).
pub(crate) fn fingerprint_of_parsed(mut session: Value, jar: Option<Value>) -> Option<u64> {
    let fields = session.as_object_mut()?;
    if let Some(data) = fields.get_mut("data").and_then(Value::as_object_mut) {
        data.remove("lastUsed");
    }
    if let Some(mut jar) = jar {
        forget_access_times(&mut jar);
        fields.insert("serializedCookieJar".into(), jar);
    }
    let mut hasher = DefaultHasher::new();
    session.to_string().hash(&mut hasher);
    Some(hasher.finish())
}

fn forget_access_times(jar: &mut Value) {
    let cookies = jar.get_mut("cookies").and_then(Value::as_array_mut);
    for cookie in cookies.into_iter().flatten() {
        if let Some(cookie) = cookie.as_object_mut() {
            cookie.remove("lastAccessed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(last_used: u64, value: &str, accessed: &str) -> String {
        let jar = serde_json::json!({
            "version": "tough-cookie@4.1.3",
            "cookies": [{ "key": "sid", "value": value, "lastAccessed": accessed }],
        });
        serde_json::json!({
            "data": { "createdAt": 1, "lastUsed": last_used, "restrictIP": null },
            "serializedCookieJar": jar.to_string(),
        })
        .to_string()
    }

    #[test]
    fn use_alone_is_not_a_change() {
        let stored = session(1, "a", "2026-01-01T00:00:00.000Z");
        let used = session(99, "a", "2026-02-02T00:00:00.000Z");
        assert_eq!(change_fingerprint(&stored), change_fingerprint(&used));
    }

    #[test]
    fn a_new_cookie_value_is_a_change() {
        let stored = session(1, "a", "2026-01-01T00:00:00.000Z");
        let changed = session(1, "b", "2026-01-01T00:00:00.000Z");
        assert_ne!(change_fingerprint(&stored), change_fingerprint(&changed));
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = r#"{"data":{"createdAt":1,"x":2},"serializedCookieJar":"{}"}"#;
        let b = r#"{"serializedCookieJar":"{}","data":{"x":2,"createdAt":1}}"#;
        assert_eq!(change_fingerprint(a), change_fingerprint(b));
    }

    #[test]
    fn a_field_named_like_a_timestamp_elsewhere_still_counts() {
        let a = r#"{"data":{"localStorage":{"lastUsed":1}},"serializedCookieJar":"{}"}"#;
        let b = r#"{"data":{"localStorage":{"lastUsed":2}},"serializedCookieJar":"{}"}"#;
        assert_ne!(change_fingerprint(a), change_fingerprint(b));
    }

    #[test]
    fn what_is_not_a_json_object_has_none() {
        assert_eq!(change_fingerprint("nope"), None);
        assert_eq!(change_fingerprint("[1]"), None);
    }
}
