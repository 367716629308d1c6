//! Merging two copies of a session that both changed since the stored copy they were loaded
//! from, as hosts sharing one Redis do: what one copy changed since that common base wins over
//! the other's unchanged value, so neither side's cookies or data fields are lost.
//!
//! The base is kept as a digest (a hash per cookie and per data field), a small fraction of the
//! session's size, so that holding it costs little for sessions that never change.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value};

use crate::error::StoreError;
use crate::session::fingerprint::{fingerprint_of_parsed, hash_of_fields, hash_of_value};
use crate::session::format::Corruption;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("cannot merge: {0}")]
pub struct MergeError(&'static str);

/// A copy that cannot be merged is not a session.
impl From<MergeError> for StoreError {
    fn from(e: MergeError) -> Self {
        StoreError::Corrupt {
            place: "a copy to merge".into(),
            reason: Corruption::Json(e.0.into()),
        }
    }
}

/// What a merge needs of the common base: for each data field and each cookie (by domain,
/// path and key), a hash of its name and one of its value; 16 bytes an entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeBase {
    data: HashMap<u64, u64>,
    cookies: HashMap<u64, u64>,
}

impl MergeBase {
    /// The digest of a serialized session.
    pub fn of(json: &str) -> Result<Self, MergeError> {
        Ok(Self::of_session(&Session::parse(json)?))
    }

    /// The digest and the [`change_fingerprint`](crate::session::fingerprint::change_fingerprint) of a serialized
    /// session, from one parse: a store records both of every copy it loads or stores.
    pub fn with_fingerprint(json: &str) -> Result<(Self, u64), MergeError> {
        let session = Session::parse(json)?;
        let base = Self::of_session(&session);
        let Session {
            mut fields,
            data,
            jar,
        } = session;
        fields.insert("data".into(), Value::Object(data));
        let fingerprint = fingerprint_of_parsed(Value::Object(fields), Some(Value::Object(jar)))
            .expect("a session is an object");
        Ok((base, fingerprint))
    }

    fn of_session(session: &Session) -> Self {
        Self {
            data: session
                .data
                .iter()
                .map(|(k, v)| (hash_of(k), hash_of_value(v)))
                .collect(),
            cookies: session
                .cookies()
                .iter()
                .filter_map(|c| Some((cookie_identity(c)?, cookie_hash(c))))
                .collect(),
        }
    }
}

/// `remote` with what `local` changed since `base` applied: data fields by key, cookies by
/// (domain, path, key), additions and deletions alike; `createdAt` the earliest of the two,
/// `lastUsed` the latest; cookies expired at `now_ms` dropped. Without a base (a session new
/// here) everything `local` holds counts as changed. The result's keys are sorted.
pub fn merge(
    base: Option<&MergeBase>,
    local: &str,
    remote: &str,
    now_ms: f64,
) -> Result<String, MergeError> {
    let empty = MergeBase::default();
    let base = base.unwrap_or(&empty);
    let local = Session::parse(local)?;
    let mut merged = Session::parse(remote)?;

    let kept_times = |key: &str| key == "createdAt" || key == "lastUsed";
    for (key, value) in &local.data {
        if !kept_times(key) && base.data.get(&hash_of(key)) != Some(&hash_of_value(value)) {
            merged.data.insert(key.clone(), value.clone());
        }
    }
    // Deleted here since the base.
    merged.data.retain(|key, _| {
        kept_times(key) || local.data.contains_key(key) || !base.data.contains_key(&hash_of(key))
    });
    pick_time(&mut merged.data, &local.data, "createdAt", f64::min);
    pick_time(&mut merged.data, &local.data, "lastUsed", f64::max);

    let mine: HashMap<u64, &Value> = local
        .cookies()
        .iter()
        .filter_map(|c| Some((cookie_identity(c)?, c)))
        .collect();
    let changed_here = |identity: &u64| match mine.get(identity) {
        Some(cookie) => base.cookies.get(identity) != Some(&cookie_hash(cookie)),
        None => base.cookies.contains_key(identity),
    };
    let mut cookies: Vec<Value> = Vec::new();
    let mut placed: HashSet<u64> = HashSet::new();
    for cookie in merged.cookies() {
        let Some(identity) = cookie_identity(cookie) else {
            cookies.push(cookie.clone());
            continue;
        };
        placed.insert(identity);
        if !changed_here(&identity) {
            cookies.push(cookie.clone());
        } else if let Some(own) = mine.get(&identity) {
            cookies.push((*own).clone());
        }
    }
    for cookie in local.cookies() {
        if let Some(identity) = cookie_identity(cookie) {
            if !placed.contains(&identity) && changed_here(&identity) {
                cookies.push(cookie.clone());
            }
        }
    }
    cookies.retain(|cookie| !has_expired(cookie, now_ms));
    merged.set_cookies(cookies);
    Ok(merged.into_json())
}

/// The parts of a serialized session a merge works on.
struct Session {
    fields: Map<String, Value>,
    data: Map<String, Value>,
    jar: Map<String, Value>,
}

impl Session {
    fn parse(json: &str) -> Result<Self, MergeError> {
        let Ok(Value::Object(mut fields)) = serde_json::from_str(json) else {
            return Err(MergeError("a session is not a JSON object"));
        };
        let Some(Value::Object(data)) = fields.remove("data") else {
            return Err(MergeError("a session has no data object"));
        };
        let jar = match fields.get("serializedCookieJar").and_then(Value::as_str) {
            Some(text) => match serde_json::from_str(text) {
                Ok(Value::Object(jar)) => jar,
                _ => return Err(MergeError("a cookie jar is not a JSON object")),
            },
            None => return Err(MergeError("a session has no serializedCookieJar string")),
        };
        Ok(Self { fields, data, jar })
    }

    fn cookies(&self) -> &[Value] {
        self.jar
            .get("cookies")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn set_cookies(&mut self, cookies: Vec<Value>) {
        self.jar.insert("cookies".into(), Value::Array(cookies));
    }

    fn into_json(mut self) -> String {
        let jar = Value::Object(self.jar).to_string();
        self.fields
            .insert("serializedCookieJar".into(), Value::String(jar));
        self.fields.insert("data".into(), Value::Object(self.data));
        Value::Object(self.fields).to_string()
    }
}

fn pick_time(
    merged: &mut Map<String, Value>,
    local: &Map<String, Value>,
    key: &str,
    pick: fn(f64, f64) -> f64,
) {
    let theirs = merged.get(key).and_then(Value::as_f64);
    let mine = local.get(key).and_then(Value::as_f64);
    let chosen = match (theirs, mine) {
        (Some(a), Some(b)) if pick(a, b) == b => local.get(key),
        (None, Some(_)) => local.get(key),
        _ => None,
    };
    if let Some(value) = chosen {
        merged.insert(key.into(), value.clone());
    }
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A cookie's hash, leaving out `lastAccessed`, which tough-cookie rewrites on every read.
fn cookie_hash(cookie: &Value) -> u64 {
    match cookie.as_object() {
        Some(fields) => hash_of_fields(fields, "lastAccessed"),
        None => hash_of_value(cookie),
    }
}

/// A hash of the cookie's identity in a jar, as browsers and tough-cookie tell cookies apart:
/// domain, path and key; `None` for a cookie that has none.
fn cookie_identity(cookie: &Value) -> Option<u64> {
    let text = |name| match cookie.get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        None | Some(Value::Null) => Some(""),
        Some(_) => None,
    };
    Some(hash_of((text("domain")?, text("path")?, text("key")?)))
}

/// Whether tough-cookie would find the cookie expired: `expires` past, or `maxAge` (seconds)
/// run out since `creation`.
fn has_expired(cookie: &Value, now_ms: f64) -> bool {
    if let Some(at) = cookie
        .get("expires")
        .and_then(Value::as_str)
        .and_then(iso_ms)
    {
        if at <= now_ms {
            return true;
        }
    }
    match cookie.get("maxAge").and_then(Value::as_f64) {
        Some(seconds) if seconds <= 0.0 => true,
        Some(seconds) => cookie
            .get("creation")
            .and_then(Value::as_str)
            .and_then(iso_ms)
            .is_some_and(|created| created + seconds * 1000.0 <= now_ms),
        None => false,
    }
}

/// Epoch milliseconds of an ISO 8601 UTC time as `Date.toISOString()` writes it.
fn iso_ms(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match text.get(19..text.len() - 1) {
        Some("") => 0.0,
        Some(fraction) if fraction.starts_with('.') => {
            format!("0{fraction}").parse::<f64>().ok()? * 1000.0
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) as f64 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::fingerprint::change_fingerprint;
    use serde_json::json;

    const NOW: f64 = 1_800_000_000_000.0;

    fn cookie(key: &str, value: &str) -> Value {
        json!({ "key": key, "value": value, "domain": "site.test", "path": "/",
                "creation": "2026-01-01T00:00:00.000Z", "lastAccessed": "2026-01-01T00:00:00.000Z" })
    }

    fn session(data: Value, cookies: Vec<Value>) -> String {
        let jar = json!({ "version": "tough-cookie@4.1.3", "cookies": cookies });
        json!({ "data": data, "serializedCookieJar": jar.to_string() }).to_string()
    }

    fn cookies_of(json: &str) -> Vec<(String, String)> {
        let s = Session::parse(json).unwrap();
        let mut out: Vec<_> = s
            .cookies()
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().unwrap().into(),
                    c["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cookies_set_on_each_side_are_all_kept() {
        let base = session(json!({}), vec![cookie("a", "1")]);
        let local = session(json!({}), vec![cookie("a", "1"), cookie("l", "x")]);
        let remote = session(json!({}), vec![cookie("a", "1"), cookie("r", "y")]);
        let merged = merge(Some(&MergeBase::of(&base).unwrap()), &local, &remote, NOW).unwrap();
        assert_eq!(
            cookies_of(&merged),
            pairs(&[("a", "1"), ("l", "x"), ("r", "y")])
        );
    }

    #[test]
    fn a_deletion_on_either_side_sticks_and_a_change_wins_over_no_change() {
        let base = session(
            json!({}),
            vec![cookie("a", "1"), cookie("b", "1"), cookie("c", "1")],
        );
        // Here: a deleted, c changed. There: b deleted.
        let local = session(json!({}), vec![cookie("b", "1"), cookie("c", "2")]);
        let remote = session(json!({}), vec![cookie("a", "1"), cookie("c", "1")]);
        let merged = merge(Some(&MergeBase::of(&base).unwrap()), &local, &remote, NOW).unwrap();
        assert_eq!(cookies_of(&merged), pairs(&[("c", "2")]));
    }

    #[test]
    fn a_read_alone_is_not_a_change() {
        let base = session(json!({}), vec![cookie("a", "1")]);
        let mut read = cookie("a", "1");
        read["lastAccessed"] = json!("2026-06-01T00:00:00.000Z");
        let local = session(json!({}), vec![read]);
        let remote = session(json!({}), vec![cookie("a", "2")]);
        let merged = merge(Some(&MergeBase::of(&base).unwrap()), &local, &remote, NOW).unwrap();
        assert_eq!(cookies_of(&merged), pairs(&[("a", "2")]));
    }

    #[test]
    fn expired_cookies_are_dropped() {
        let mut old = cookie("old", "1");
        old["expires"] = json!("2020-01-01T00:00:00.000Z");
        let mut gone = cookie("gone", "1");
        gone["maxAge"] = json!(0);
        let mut lasting = cookie("lasting", "1");
        lasting["expires"] = json!("2099-01-01T00:00:00.000Z");
        let local = session(json!({}), vec![old, gone, lasting]);
        let remote = session(json!({}), vec![]);
        let merged = merge(None, &local, &remote, NOW).unwrap();
        assert_eq!(cookies_of(&merged), pairs(&[("lasting", "1")]));
    }

    #[test]
    fn data_fields_merge_by_key_with_the_earliest_creation_and_latest_use() {
        let base = session(
            json!({ "createdAt": 5, "lastUsed": 5, "x": 1, "y": 1, "z": 1 }),
            vec![],
        );
        let local = session(
            json!({ "createdAt": 5, "lastUsed": 9, "x": 2, "z": 1 }),
            vec![],
        );
        let remote = session(
            json!({ "createdAt": 4, "lastUsed": 7, "x": 1, "y": 1, "z": 3, "w": 0 }),
            vec![],
        );
        let merged = merge(Some(&MergeBase::of(&base).unwrap()), &local, &remote, NOW).unwrap();
        let data = &serde_json::from_str::<Value>(&merged).unwrap()["data"];
        assert_eq!(
            data,
            &json!({ "createdAt": 4, "lastUsed": 9, "x": 2, "z": 3, "w": 0 })
        );
    }

    #[test]
    fn iso_times_read_as_javascript_dates_write_them() {
        assert_eq!(iso_ms("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(
            iso_ms("2027-01-15T10:20:30.250Z"),
            Some(1_800_008_430_250.0)
        );
        assert_eq!(iso_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000.0));
        assert_eq!(iso_ms("Infinity"), None);
    }

    #[test]
    fn what_is_not_a_session_is_an_error() {
        assert!(MergeBase::of("[]").is_err());
        assert!(merge(None, "{}", "{}", NOW).is_err());
    }

    #[test]
    fn one_parse_gives_the_digest_and_the_fingerprint_of_separate_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../__test__/fixtures/rammerhead-1.2.64");
        let mut texts: Vec<String> = std::fs::read_dir(&dir)
            .expect("the fixtures in __test__/fixtures")
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "rhfsession"))
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect();
        texts.push(session(json!({ "createdAt": 1, "lastUsed": 2 }), vec![]));
        texts.push(session(
            json!({ "createdAt": 1, "lastUsed": 2, "x": { "b": 1, "a": [2] } }),
            vec![cookie("sid", "a"), cookie("theme", "dark")],
        ));
        assert!(texts.len() >= 5);
        for text in &texts {
            let (base, fingerprint) = MergeBase::with_fingerprint(text).unwrap();
            assert_eq!(base, MergeBase::of(text).unwrap());
            assert_eq!(Some(fingerprint), change_fingerprint(text));
        }
        assert!(MergeBase::with_fingerprint("[]").is_err());
        assert!(MergeBase::with_fingerprint(r#"{"data":{}}"#).is_err());
    }
}
