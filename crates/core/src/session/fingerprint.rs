//! Whether a session changed since it was stored, without keeping the stored copy.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Number, Value};

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
    Some(hash_of_value(&session))
}

/// A hash of a JSON value: equal for equal values, whatever the order of their keys (serde_json
/// keeps them sorted), made without writing the value out as text.
pub(crate) fn hash_of_value(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    hash_value(value, &mut hasher);
    hasher.finish()
}

/// [`hash_of_value`] of an object without its field `skip`.
pub(crate) fn hash_of_fields(fields: &Map<String, Value>, skip: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    hash_fields(fields, Some(skip), &mut hasher);
    hasher.finish()
}

fn hash_value(value: &Value, hasher: &mut impl Hasher) {
    match value {
        Value::Null => hasher.write_u8(0),
        Value::Bool(b) => {
            hasher.write_u8(1);
            b.hash(hasher);
        }
        Value::Number(n) => {
            hasher.write_u8(2);
            hash_number(n, hasher);
        }
        Value::String(s) => {
            hasher.write_u8(3);
            s.hash(hasher);
        }
        Value::Array(items) => {
            hasher.write_u8(4);
            hasher.write_usize(items.len());
            for item in items {
                hash_value(item, hasher);
            }
        }
        Value::Object(fields) => hash_fields(fields, None, hasher),
    }
}

fn hash_fields(fields: &Map<String, Value>, skip: Option<&str>, hasher: &mut impl Hasher) {
    hasher.write_u8(5);
    for (key, value) in fields {
        if Some(key.as_str()) == skip {
            continue;
        }
        key.hash(hasher);
        hash_value(value, hasher);
    }
    // Closes the object: its fields and those of the object around it never run together.
    hasher.write_u8(6);
}

/// A number by its value, as its text would be: an integer, else a float's bits.
fn hash_number(n: &Number, hasher: &mut impl Hasher) {
    if let Some(i) = n.as_i64() {
        hasher.write_u8(0);
        hasher.write_i64(i);
    } else if let Some(u) = n.as_u64() {
        hasher.write_u8(1);
        hasher.write_u64(u);
    } else {
        hasher.write_u8(2);
        hasher.write_u64(n.as_f64().unwrap_or(f64::NAN).to_bits());
    }
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
    fn fields_of_a_nested_object_and_of_the_one_around_it_differ() {
        let inside = r#"{"data":{"a":{"b":1,"c":2}},"serializedCookieJar":"{}"}"#;
        let beside = r#"{"data":{"a":{"b":1},"c":2},"serializedCookieJar":"{}"}"#;
        assert_ne!(change_fingerprint(inside), change_fingerprint(beside));
        let text = r#"{"data":{"a":"1"},"serializedCookieJar":"{}"}"#;
        let number = r#"{"data":{"a":1},"serializedCookieJar":"{}"}"#;
        assert_ne!(change_fingerprint(text), change_fingerprint(number));
    }

    #[test]
    fn what_is_not_a_json_object_has_none() {
        assert_eq!(change_fingerprint("nope"), None);
        assert_eq!(change_fingerprint("[1]"), None);
    }
}
