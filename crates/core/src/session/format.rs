//! The shape of a serialized session, and what the store needs to know of one without building
//! a session from it.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

/// The two timestamps stale cleanup judges a session by, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionTimes {
    pub created_at: Option<f64>,
    pub last_used: Option<f64>,
}

/// Why a file cannot be a session. Mirrors what the session class's deserializer rejects.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Corruption {
    #[error("file is empty")]
    Empty,
    #[error("file is not UTF-8")]
    NotUtf8,
    #[error("text has a lone UTF-16 surrogate, which a UTF-8 file cannot hold")]
    LoneSurrogate,
    #[error("file is not a JSON session object: {0}")]
    Json(String),
    #[error("file has no \"data\" object")]
    MissingData,
    #[error("file has no \"serializedCookieJar\" string")]
    MissingCookieJar,
    /// A compressed value (see `codec`) whose frame is damaged.
    #[error("compressed value is damaged: {0}")]
    Compressed(String),
}

#[derive(Deserialize)]
struct FileShape<'a> {
    data: Option<DataShape>,
    #[serde(rename = "serializedCookieJar", borrow)]
    serialized_cookie_jar: Option<&'a RawValue>,
}

// Only the timestamps are decoded; every other field is skipped without allocating.
#[derive(Deserialize)]
struct DataShape {
    #[serde(rename = "createdAt", default, deserialize_with = "number_or_none")]
    created_at: Option<f64>,
    #[serde(rename = "lastUsed", default, deserialize_with = "number_or_none")]
    last_used: Option<f64>,
}

fn number_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Number(f64),
        Other(IgnoredAny),
    }
    Ok(match Loose::deserialize(d)? {
        Loose::Number(n) => Some(n),
        Loose::Other(_) => None,
    })
}

/// Why JSON is no session, without what it holds: serde names the value it did not expect, which
/// may be a cookie, and the message reaches logs.
fn described(error: &serde_json::Error) -> String {
    match error.classify() {
        serde_json::error::Category::Data => format!(
            "a value of the wrong type at line {} column {}",
            error.line(),
            error.column()
        ),
        _ => error.to_string(),
    }
}

/// Checks the file's shape and returns its timestamps.
pub fn parse_times(bytes: &[u8]) -> Result<SessionTimes, Corruption> {
    if bytes.is_empty() {
        return Err(Corruption::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Corruption::NotUtf8)?;
    let shape: FileShape =
        serde_json::from_str(text).map_err(|e| Corruption::Json(described(&e)))?;
    let data = shape.data.ok_or(Corruption::MissingData)?;
    match shape.serialized_cookie_jar {
        Some(jar) if jar.get().starts_with('"') => {}
        _ => return Err(Corruption::MissingCookieJar),
    }
    Ok(SessionTimes {
        created_at: data.created_at,
        last_used: data.last_used,
    })
}

/// `bytes` as a session's JSON text, checked by [`parse_times`]; on refusal, the reason and the
/// bytes as they were, for a caller that keeps what it found corrupt.
pub fn session_json(bytes: Vec<u8>) -> Result<String, (Corruption, Vec<u8>)> {
    if let Err(reason) = parse_times(&bytes) {
        return Err((reason, bytes));
    }
    // parse_times has checked UTF-8 already.
    String::from_utf8(bytes).map_err(|e| (Corruption::NotUtf8, e.into_bytes()))
}

/// The timestamps of a session, read from the start of its JSON where the session class puts
/// them (`{"data":{"createdAt":…,"lastUsed":…`), else by [`parse_times`]; `None` when the JSON
/// is no session. Reading 10 KB to find two numbers at its start would double what encoding a
/// value costs.
pub fn session_times(bytes: &[u8]) -> Option<SessionTimes> {
    leading_times(bytes).or_else(|| parse_times(bytes).ok())
}

fn leading_times(bytes: &[u8]) -> Option<SessionTimes> {
    let rest = bytes.strip_prefix(br#"{"data":{"createdAt":"#)?;
    let (created_at, rest) = leading_number(rest)?;
    let rest = rest.strip_prefix(br#","lastUsed":"#)?;
    let (last_used, rest) = leading_number(rest)?;
    // Only where the next key follows: a number cut short would read as another.
    if !matches!(rest.first(), Some(b',' | b'}')) {
        return None;
    }
    Some(SessionTimes {
        created_at: Some(created_at),
        last_used: Some(last_used),
    })
}

/// A JSON number at the start of `bytes`, and what follows it.
fn leading_number(bytes: &[u8]) -> Option<(f64, &[u8])> {
    let len = bytes
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(bytes.len());
    let number: f64 = std::str::from_utf8(&bytes[..len]).ok()?.parse().ok()?;
    number.is_finite().then_some((number, &bytes[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn session_times_read_at_the_start_agree_with_a_full_read() {
        for file in [
            &br#"{"data":{"createdAt":1700000000000,"lastUsed":1700000000001.5,"x":1},"serializedCookieJar":"{}"}"#[..],
            br#"{"data":{"createdAt":1,"lastUsed":2},"serializedCookieJar":"{}"}"#,
            br#"{"data":{"lastUsed":2,"createdAt":1},"serializedCookieJar":"{}"}"#,
            br#"{"serializedCookieJar":"{}","data":{"createdAt":1,"lastUsed":2}}"#,
            br#"{"data":{"createdAt":1e400,"lastUsed":2},"serializedCookieJar":"{}"}"#,
            br#"{"data":{"createdAt":1,"lastUsed":"soon"},"serializedCookieJar":"{}"}"#,
        ] {
            assert_eq!(session_times(file), parse_times(file).ok(), "{}", String::from_utf8_lossy(file));
        }
        assert!(leading_times(br#"{"data":{"createdAt":1,"lastUsed":2,"#).is_some());
        assert_eq!(session_times(b"not json"), None);
    }

    #[test]
    fn reads_timestamps_and_ignores_the_rest() {
        let file = br#"{"data":{"createdAt":1,"lastUsed":2.5,"cookies":{"a":[1]}},"serializedCookieJar":"{}"}"#;
        assert_eq!(
            parse_times(file),
            Ok(SessionTimes {
                created_at: Some(1.0),
                last_used: Some(2.5)
            })
        );
    }

    #[test]
    fn messages_never_quote_what_the_json_holds() {
        let file = br#"{"data":"secret-cookie-value","serializedCookieJar":"{}"}"#;
        let Err(Corruption::Json(message)) = parse_times(file) else {
            panic!("not refused");
        };
        assert!(!message.contains("secret"), "{message}");
        assert!(message.contains("line 1 column"), "{message}");
    }

    #[test]
    fn missing_or_odd_timestamps_are_none() {
        let file = br#"{"data":{"lastUsed":"soon"},"serializedCookieJar":""}"#;
        assert_eq!(
            parse_times(file),
            Ok(SessionTimes {
                created_at: None,
                last_used: None
            })
        );
    }

    #[test]
    fn rejects_what_the_session_class_rejects() {
        assert_eq!(parse_times(b""), Err(Corruption::Empty));
        assert_eq!(parse_times(&[0xff, 0xfe, 0x00]), Err(Corruption::NotUtf8));
        assert!(matches!(parse_times(b"[1,2,3]"), Err(Corruption::Json(_))));
        assert!(matches!(
            parse_times(br#"{"data":{"#),
            Err(Corruption::Json(_))
        ));
        assert_eq!(
            parse_times(br#"{"serializedCookieJar":"x"}"#),
            Err(Corruption::MissingData)
        );
        assert_eq!(
            parse_times(br#"{"data":{}}"#),
            Err(Corruption::MissingCookieJar)
        );
        assert_eq!(
            parse_times(br#"{"data":{},"serializedCookieJar":5}"#),
            Err(Corruption::MissingCookieJar)
        );
    }

    #[test]
    fn rejects_what_javascript_would_read_differently() {
        // JSON.parse keeps the last of duplicate keys and reads 1e400 as Infinity; a file this
        // parser accepts must mean the same to every reader.
        assert!(matches!(
            parse_times(br#"{"data":{},"data":{},"serializedCookieJar":"{}"}"#),
            Err(Corruption::Json(_))
        ));
        assert!(matches!(
            parse_times(br#"{"data":{"lastUsed":1e400},"serializedCookieJar":"{}"}"#),
            Err(Corruption::Json(_))
        ));
    }

    #[test]
    fn accepts_lone_surrogate_escapes_that_json_stringify_writes() {
        // JSON.stringify('\ud800') is "\ud800": a session holding such a string is still one.
        let file = br#"{"data":{"x":"\ud800","y":["\udc00"]},"serializedCookieJar":"{\"c\":\"\\udfff\"}"}"#;
        assert!(parse_times(file).is_ok(), "{:?}", parse_times(file));
    }

    #[test]
    fn fixtures_written_by_the_original_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../__test__/fixtures/rammerhead-1.2.64");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the fixtures in __test__/fixtures") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rhfsession") {
                let times = parse_times(&std::fs::read(&path).unwrap()).unwrap();
                assert!(times.created_at.is_some() && times.last_used.is_some());
                seen += 1;
            }
        }
        assert_eq!(seen, 3);
    }

    #[test]
    fn broken_fixtures_are_rejected() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../__test__/fixtures/bad");
        for entry in std::fs::read_dir(&dir).expect("the fixtures in __test__/fixtures") {
            let path = entry.unwrap().path();
            if path.is_file() && path.extension().is_some_and(|e| e == "rhfsession") {
                assert!(
                    parse_times(&std::fs::read(&path).unwrap()).is_err(),
                    "{path:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_times(&bytes);
        }

        #[test]
        fn arbitrary_json_never_panics(text in r#"\{("data"|"serializedCookieJar"|"x"|:|,|\{|\}|\[|\]|"[a-z]*"|[0-9.e-]+|null|true)*"#) {
            let _ = parse_times(text.as_bytes());
        }
    }
}
