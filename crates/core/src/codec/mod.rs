//! How a session's JSON is stored, in a file or in Redis: as it is (the original stores' format,
//! and the default), or behind a marker, compressed, encrypted, or both. Every value is read
//! whatever the store's current setting, so a deployment changes codec as sessions are
//! rewritten.
//!
//! An encoded value is
//!
//! ```text
//! "RHS" format(1) flags(1) createdAt(f64 LE) lastUsed(f64 LE)        21 bytes, readable
//! [key id(4) nonce(12)]                                                if encrypted
//! payload: the JSON, zstd-compressed if flags say so, then encrypted  (+ a 16-byte tag)
//! ```
//!
//! The two timestamps stay readable so that expired sessions are deleted without a key (NaN
//! stands for one the JSON lacks); nothing else of the session does. Encryption binds the whole
//! readable header and the session id, so a changed timestamp or a value copied under another
//! id does not decrypt.

pub mod compression;
pub mod encryption;

use std::borrow::Cow;

use thiserror::Error;

use crate::session::format::{parse_times, session_times, Corruption, SessionTimes};
use crate::session::id::SessionId;
use compression::Inflation;
use encryption::{key_id_text, Keys, Opening, KEY_ID_LEN, NONCE_LEN, TAG_LEN};

/// Every encoded value starts with these bytes; JSON never does.
pub const MARKER: &[u8; 3] = b"RHS";
const FORMAT: u8 = 1;
const ZSTD: u8 = 1;
const AES_256_GCM: u8 = 2;
const HEADER_LEN: usize = MARKER.len() + 2 + 16;
const SEALED_HEADER_LEN: usize = HEADER_LEN + KEY_ID_LEN + NONCE_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
}

/// What a stored value is, as its first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    Plain,
    Zstd,
    Encrypted,
    ZstdEncrypted,
    /// A marker this version cannot read: a header cut short, or a newer format.
    Unknown,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::Zstd => "zstd",
            Encoding::Encrypted => "aes-256-gcm",
            Encoding::ZstdEncrypted => "zstd+aes-256-gcm",
            Encoding::Unknown => "unknown",
        }
    }

    /// What `bytes` are.
    pub fn of(bytes: &[u8]) -> Encoding {
        match Header::read(bytes) {
            None => Encoding::Plain,
            Some(Err(_)) => Encoding::Unknown,
            Some(Ok(header)) => match (header.compressed(), header.encrypted()) {
                (false, false) => Encoding::Unknown,
                (true, false) => Encoding::Zstd,
                (false, true) => Encoding::Encrypted,
                (true, true) => Encoding::ZstdEncrypted,
            },
        }
    }
}

/// Why an encoded value is not served and must be kept as it is: it needs a key this store does
/// not have, was changed, or is of a format this version does not know. Never a reason to
/// delete: a store started with a wrong key must not destroy what the right key reads.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Sealed {
    #[error("its header is cut short")]
    Truncated,
    #[error("it is of format {format} with flags {flags}, which this version cannot read")]
    UnknownFormat { format: u8, flags: u8 },
    #[error("it is encrypted (key {0}) and no encryption key is set")]
    NoKeys(String),
    #[error("it is encrypted with key {0}, which is not among the keys set")]
    UnknownKey(String),
    #[error("it does not decrypt with its key {0}: its bytes were changed, or it was stored under another id")]
    Rejected(String),
}

/// Why a stored value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Sealed(Sealed),
    /// Readable without a key, and not a session: an ordinary corrupt value.
    Corrupt(Corruption),
    /// Holds more JSON than the store reads (this many bytes).
    TooLarge(u64),
}

/// What a stored value is to an expiry.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Times(SessionTimes),
    /// Plain bytes that are no session.
    Corrupt(Corruption),
    /// Kept whatever the timestamps: see [`Sealed`].
    Sealed(Sealed),
}

/// The readable header of an encoded value.
struct Header<'a> {
    bytes: &'a [u8],
    flags: u8,
}

impl<'a> Header<'a> {
    /// `None` for a value without the marker (plain JSON).
    fn read(bytes: &'a [u8]) -> Option<Result<Self, Sealed>> {
        if !bytes.starts_with(MARKER) {
            return None;
        }
        if bytes.len() < HEADER_LEN {
            return Some(Err(Sealed::Truncated));
        }
        let (format, flags) = (bytes[3], bytes[4]);
        // No flag is no codec this version writes: never served as if it were plain.
        if format != FORMAT || flags == 0 || flags & !(ZSTD | AES_256_GCM) != 0 {
            return Some(Err(Sealed::UnknownFormat { format, flags }));
        }
        if flags & AES_256_GCM != 0 && bytes.len() < SEALED_HEADER_LEN + TAG_LEN {
            return Some(Err(Sealed::Truncated));
        }
        Some(Ok(Header { bytes, flags }))
    }

    fn compressed(&self) -> bool {
        self.flags & ZSTD != 0
    }

    fn encrypted(&self) -> bool {
        self.flags & AES_256_GCM != 0
    }

    fn times(&self) -> SessionTimes {
        let at = |offset: usize| {
            let mut f = [0; 8];
            f.copy_from_slice(&self.bytes[offset..offset + 8]);
            Some(f64::from_le_bytes(f)).filter(|t| !t.is_nan())
        };
        SessionTimes {
            created_at: at(5),
            last_used: at(13),
        }
    }

    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&self.bytes[HEADER_LEN..HEADER_LEN + KEY_ID_LEN]);
        id
    }

    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&self.bytes[HEADER_LEN + KEY_ID_LEN..SEALED_HEADER_LEN]);
        nonce
    }
}

/// What encryption binds: the readable header up to the key id, and the session id.
fn associated_data(header: &[u8], id: &SessionId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + KEY_ID_LEN + id.as_str().len());
    aad.extend_from_slice(&header[..HEADER_LEN + KEY_ID_LEN]);
    aad.extend_from_slice(id.as_str().as_bytes());
    aad
}

/// The most bytes a value holding at most `json_limit` bytes of JSON may take stored: zstd's
/// worst case on data it cannot shrink, plus the header and tag.
pub fn stored_limit(json_limit: u64) -> u64 {
    json_limit.saturating_add(json_limit / 128 + 1024)
}

/// How one store writes values, and the keys it reads them with.
pub struct Codec {
    compression: Compression,
    keys: Keys,
    /// Whether new values are encrypted (with the first key).
    encrypts: bool,
}

impl Codec {
    /// Encrypts with the first key, if there is one.
    pub fn new(compression: Compression, keys: Keys) -> Self {
        let encrypts = !keys.is_empty();
        Self {
            compression,
            keys,
            encrypts,
        }
    }

    /// Reads encrypted values with the keys, and writes values without encryption: for moving
    /// sessions back to plain files.
    pub fn without_encryption(self) -> Self {
        Self {
            encrypts: false,
            ..self
        }
    }

    /// Writes plain JSON, as the original stores do.
    pub fn plain() -> Self {
        Self::new(Compression::None, Keys::default())
    }

    /// What an expiry judges a stored value of session `id` by, read without decoding the JSON:
    /// the timestamps in the header of an encoded value, those in the JSON of a plain one. A
    /// store with keys authenticates an encrypted value first, and keeps one that does not
    /// authenticate or whose key it lacks (its header may have been changed, key id included):
    /// a wrong key never gets a session deleted. A store without keys judges encrypted values
    /// by their header, so that their sessions expire on hosts that never read them.
    pub fn judge(&self, id: &SessionId, bytes: &[u8]) -> Stored {
        let header = match Header::read(bytes) {
            None => {
                return match parse_times(bytes) {
                    Ok(times) => Stored::Times(times),
                    Err(reason) => Stored::Corrupt(reason),
                }
            }
            Some(Err(sealed)) => return Stored::Sealed(sealed),
            Some(Ok(header)) => header,
        };
        if header.encrypted() && !self.keys.is_empty() {
            let key_id = header.key_id();
            let aad = associated_data(bytes, id);
            let mut sealed = bytes[SEALED_HEADER_LEN..].to_vec();
            match self.keys.open(key_id, header.nonce(), &aad, &mut sealed) {
                Ok(_) => {}
                Err(Opening::UnknownKey(_)) => {
                    return Stored::Sealed(Sealed::UnknownKey(key_id_text(&key_id)))
                }
                Err(Opening::Rejected) => {
                    return Stored::Sealed(Sealed::Rejected(key_id_text(&key_id)))
                }
            }
        }
        Stored::Times(header.times())
    }

    /// The encoding new values are written in.
    pub fn writes(&self) -> Encoding {
        match (self.compression, self.encrypts) {
            (Compression::None, false) => Encoding::Plain,
            (Compression::Zstd, false) => Encoding::Zstd,
            (Compression::None, true) => Encoding::Encrypted,
            (Compression::Zstd, true) => Encoding::ZstdEncrypted,
        }
    }

    /// The value to store for session `id` holding `json`, whose timestamps are `times` when
    /// the caller has read them already. Fails only when compression or the system's randomness
    /// fails; a value is then not written rather than written in clear.
    pub fn encode<'a>(
        &self,
        id: &SessionId,
        json: &'a [u8],
        times: Option<SessionTimes>,
    ) -> Result<Cow<'a, [u8]>, String> {
        let encoding = self.writes();
        if encoding == Encoding::Plain {
            return Ok(Cow::Borrowed(json));
        }
        let times = times
            .or_else(|| session_times(json))
            .unwrap_or(SessionTimes {
                created_at: None,
                last_used: None,
            });
        let mut flags = 0;
        let payload = if self.compression == Compression::Zstd {
            flags |= ZSTD;
            compression::compress(json)?
        } else {
            json.to_vec()
        };
        let key_id = self.keys.current_id().filter(|_| self.encrypts);
        if key_id.is_some() {
            flags |= AES_256_GCM;
        }
        let mut value = Vec::with_capacity(SEALED_HEADER_LEN + payload.len() + TAG_LEN);
        value.extend_from_slice(MARKER);
        value.extend_from_slice(&[FORMAT, flags]);
        for time in [times.created_at, times.last_used] {
            value.extend_from_slice(&time.unwrap_or(f64::NAN).to_le_bytes());
        }
        let Some(key_id) = key_id else {
            value.extend_from_slice(&payload);
            return Ok(Cow::Owned(value));
        };
        value.extend_from_slice(&key_id);
        let aad = associated_data(&value, id);
        let mut sealed = payload;
        let (nonce, tag) = self
            .keys
            .seal(&aad, &mut sealed)
            .ok_or("no randomness for a nonce")?;
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        value.extend_from_slice(&tag);
        Ok(Cow::Owned(value))
    }

    /// The JSON a stored value of session `id` holds, if at most `limit` bytes long. Plain
    /// values come back as they are, not checked to be sessions.
    pub fn decode(
        &self,
        id: &SessionId,
        mut bytes: Vec<u8>,
        limit: u64,
    ) -> Result<Vec<u8>, DecodeError> {
        let (compressed, payload) = match Header::read(&bytes) {
            None => (false, 0..bytes.len()),
            Some(Err(sealed)) => return Err(DecodeError::Sealed(sealed)),
            Some(Ok(header)) if !header.encrypted() => {
                (header.compressed(), HEADER_LEN..bytes.len())
            }
            Some(Ok(header)) => {
                let key_id = header.key_id();
                let (nonce, compressed) = (header.nonce(), header.compressed());
                if self.keys.is_empty() {
                    return Err(DecodeError::Sealed(Sealed::NoKeys(key_id_text(&key_id))));
                }
                let aad = associated_data(&bytes, id);
                let opened = self
                    .keys
                    .open(key_id, nonce, &aad, &mut bytes[SEALED_HEADER_LEN..])
                    .map_err(|why| {
                        DecodeError::Sealed(match why {
                            Opening::UnknownKey(id) => Sealed::UnknownKey(key_id_text(&id)),
                            Opening::Rejected => Sealed::Rejected(key_id_text(&key_id)),
                        })
                    })?;
                (compressed, SEALED_HEADER_LEN..SEALED_HEADER_LEN + opened)
            }
        };
        if compressed {
            return compression::decompress(&bytes[payload], limit).map_err(|why| match why {
                Inflation::TooLarge(len) => DecodeError::TooLarge(len),
                Inflation::Damaged(why) => DecodeError::Corrupt(Corruption::Compressed(why)),
            });
        }
        let len = payload.len() as u64;
        if len > limit {
            return Err(DecodeError::TooLarge(len));
        }
        if payload.start > 0 {
            bytes.truncate(payload.end);
            bytes.drain(..payload.start);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 20;

    fn id(text: &str) -> SessionId {
        SessionId::parse(text).unwrap()
    }

    fn session() -> String {
        let cookies =
            r#"{\"key\":\"sid\",\"value\":\"secret-cookie-value\",\"domain\":\"example.com\"},"#
                .repeat(200);
        format!(
            r#"{{"data":{{"createdAt":1700000000000,"lastUsed":1700000001234.5}},"serializedCookieJar":"[{cookies}]"}}"#
        )
    }

    fn codec(compression: Compression, keys: &[[u8; 32]]) -> Codec {
        Codec::new(compression, Keys::new(keys).unwrap())
    }

    fn every_codec() -> Vec<Codec> {
        vec![
            codec(Compression::None, &[]),
            codec(Compression::Zstd, &[]),
            codec(Compression::None, &[[7; 32]]),
            codec(Compression::Zstd, &[[7; 32]]),
        ]
    }

    #[test]
    fn every_codec_round_trips_and_every_store_reads_every_unencrypted_value() {
        let json = session();
        let reader = codec(Compression::Zstd, &[[9; 32], [7; 32]]);
        for codec in every_codec() {
            let value = codec.encode(&id("a"), json.as_bytes(), None).unwrap();
            assert_eq!(Encoding::of(&value), codec.writes());
            assert_eq!(
                codec.decode(&id("a"), value.to_vec(), LIMIT).unwrap(),
                json.as_bytes()
            );
            assert_eq!(
                reader.decode(&id("a"), value.to_vec(), LIMIT).unwrap(),
                json.as_bytes()
            );
            if codec.writes() != Encoding::Encrypted && codec.writes() != Encoding::ZstdEncrypted {
                let plain = Codec::plain();
                assert_eq!(
                    plain.decode(&id("a"), value.to_vec(), LIMIT).unwrap(),
                    json.as_bytes()
                );
            }
        }
    }

    #[test]
    fn plain_is_the_json_itself() {
        let json = session();
        let value = Codec::plain()
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap();
        assert!(matches!(value, Cow::Borrowed(_)));
        assert_eq!(Encoding::of(json.as_bytes()), Encoding::Plain);
    }

    #[test]
    fn encrypted_values_hold_no_cookie_in_clear_and_every_encoded_one_its_timestamps() {
        let json = session();
        for codec in &every_codec()[1..] {
            let value = codec.encode(&id("a"), json.as_bytes(), None).unwrap();
            // Compression alone hides nothing: its literals are the JSON's own bytes.
            if codec.writes() != Encoding::Zstd {
                let text = String::from_utf8_lossy(&value);
                assert!(
                    !text.contains("secret-cookie-value"),
                    "{:?}",
                    codec.writes()
                );
                assert!(!text.contains("example.com"));
                assert!(!text.contains("createdAt"));
            }
            let times = SessionTimes {
                created_at: Some(1700000000000.0),
                last_used: Some(1700000001234.5),
            };
            assert_eq!(codec.judge(&id("a"), &value), Stored::Times(times));
            // Without the key, by the header alone.
            assert_eq!(Codec::plain().judge(&id("a"), &value), Stored::Times(times));
        }
        let compressed = codec(Compression::Zstd, &[])
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap();
        assert!(
            compressed.len() * 3 <= json.len(),
            "{} of {}",
            compressed.len(),
            json.len()
        );
    }

    #[test]
    fn an_encrypted_value_is_bound_to_its_id_key_and_bytes() {
        let json = session();
        for codec in &every_codec()[2..] {
            let value = codec
                .encode(&id("a"), json.as_bytes(), None)
                .unwrap()
                .to_vec();
            let sealed = |r: Result<Vec<u8>, DecodeError>| match r {
                Err(DecodeError::Sealed(why)) => why,
                other => panic!("{other:?}"),
            };
            assert!(matches!(
                sealed(codec.decode(&id("b"), value.clone(), LIMIT)),
                Sealed::Rejected(_)
            ));
            // Every byte matters, the readable header's too; a changed marker leaves bytes
            // that are no JSON.
            for at in [0, 4, 5, 20, 21, 30, value.len() / 2, value.len() - 1] {
                let mut changed = value.clone();
                changed[at] ^= 1;
                let decoded = codec.decode(&id("a"), changed, LIMIT);
                assert!(
                    decoded.is_err() || parse_times(&decoded.unwrap()).is_err(),
                    "byte {at}"
                );
            }
            let other = Codec::new(Compression::None, Keys::new(&[[8; 32]]).unwrap());
            assert!(matches!(
                sealed(other.decode(&id("a"), value.clone(), LIMIT)),
                Sealed::UnknownKey(_)
            ));
            let none = Codec::plain();
            assert!(matches!(
                sealed(none.decode(&id("a"), value.clone(), LIMIT)),
                Sealed::NoKeys(_)
            ));
            for len in [3, 20, 40] {
                assert_eq!(
                    sealed(codec.decode(&id("a"), value[..len].to_vec(), LIMIT)),
                    Sealed::Truncated
                );
            }
        }
    }

    #[test]
    fn a_changed_timestamp_of_a_value_whose_key_is_set_is_never_judged_by() {
        let json = session();
        let codec = codec(Compression::Zstd, &[[7; 32]]);
        let mut value = codec
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap()
            .to_vec();
        value[13..21].copy_from_slice(&0f64.to_le_bytes());
        assert!(matches!(
            codec.judge(&id("a"), &value),
            Stored::Sealed(Sealed::Rejected(_))
        ));
        assert!(matches!(
            codec.judge(&id("b"), &value),
            Stored::Sealed(Sealed::Rejected(_))
        ));
        // Another key, or a changed key id: kept, never judged by a header no key vouches for.
        let other = Codec::new(Compression::None, Keys::new(&[[8; 32]]).unwrap());
        assert!(matches!(
            other.judge(&id("a"), &value),
            Stored::Sealed(Sealed::UnknownKey(_))
        ));
        let mut other_id = value.clone();
        other_id[21] ^= 1;
        assert!(matches!(
            codec.judge(&id("a"), &other_id),
            Stored::Sealed(Sealed::UnknownKey(_))
        ));
        // A store without keys judges by the header: sessions expire on hosts that never read them.
        assert!(matches!(
            Codec::plain().judge(&id("a"), &value),
            Stored::Times(_)
        ));
    }

    #[test]
    fn a_codec_without_encryption_reads_encrypted_values_and_writes_plain_ones() {
        let json = session();
        let encrypted = codec(Compression::Zstd, &[[1; 32]]);
        let value = encrypted
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap()
            .to_vec();
        let back = codec(Compression::None, &[[1; 32]]).without_encryption();
        assert_eq!(back.writes(), Encoding::Plain);
        let json_back = back.decode(&id("a"), value, LIMIT).unwrap();
        assert_eq!(
            back.encode(&id("a"), &json_back, None).unwrap(),
            json.as_bytes()
        );
    }

    #[test]
    fn rotation_reads_values_of_every_key_and_writes_with_the_first() {
        let json = session();
        let old = codec(Compression::Zstd, &[[1; 32]]);
        let rotated = codec(Compression::Zstd, &[[2; 32], [1; 32]]);
        let before = old
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap()
            .to_vec();
        assert_eq!(
            rotated.decode(&id("a"), before, LIMIT).unwrap(),
            json.as_bytes()
        );
        let after = rotated
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap()
            .to_vec();
        assert!(old.decode(&id("a"), after.clone(), LIMIT).is_err());
        let new_only = codec(Compression::None, &[[2; 32]]);
        assert_eq!(
            new_only.decode(&id("a"), after, LIMIT).unwrap(),
            json.as_bytes()
        );
    }

    #[test]
    fn the_limit_holds_for_what_a_value_decodes_to() {
        let json = session();
        let small = Codec::new(Compression::Zstd, Keys::default());
        let big = codec(Compression::Zstd, &[]);
        let value = big
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap()
            .to_vec();
        assert_eq!(
            small.decode(&id("a"), value, 100),
            Err(DecodeError::TooLarge(json.len() as u64))
        );
        assert!(matches!(
            small.decode(&id("a"), json.clone().into_bytes(), 100),
            Err(DecodeError::TooLarge(_))
        ));
        let huge = vec![b' '; 4096];
        assert!(stored_limit(4096) >= big.encode(&id("a"), &huge, None).unwrap().len() as u64);
    }

    #[test]
    fn unknown_formats_and_damaged_frames() {
        let json = session();
        let value = codec(Compression::Zstd, &[])
            .encode(&id("a"), json.as_bytes(), None)
            .unwrap()
            .to_vec();
        // No flag at all, and a newer format.
        for (at, byte, format, flags) in [(4, 0, 1, 0), (3, 2, 2, 1)] {
            let mut unknown = value.clone();
            unknown[at] = byte;
            assert_eq!(Encoding::of(&unknown), Encoding::Unknown);
            assert_eq!(
                Codec::plain().decode(&id("a"), unknown, LIMIT),
                Err(DecodeError::Sealed(Sealed::UnknownFormat { format, flags }))
            );
        }
        let mut damaged = value.clone();
        damaged.truncate(value.len() - 3);
        assert!(matches!(
            Codec::plain().decode(&id("a"), damaged, LIMIT),
            Err(DecodeError::Corrupt(Corruption::Compressed(_)))
        ));
    }

    #[test]
    fn a_value_without_timestamps_keeps_none() {
        let json = br#"{"data":{},"serializedCookieJar":"{}"}"#;
        let value = codec(Compression::Zstd, &[[1; 32]])
            .encode(&id("a"), json, None)
            .unwrap();
        assert_eq!(
            Codec::plain().judge(&id("a"), &value),
            Stored::Times(SessionTimes {
                created_at: None,
                last_used: None
            })
        );
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_values_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..256), flags in 0u8..8) {
                let mut value = MARKER.to_vec();
                value.extend_from_slice(&[FORMAT, flags]);
                value.extend_from_slice(&tail);
                let _ = Encoding::of(&value);
                for codec in every_codec() {
                    let _ = codec.judge(&id("a"), &value);
                    let _ = codec.decode(&id("a"), value.clone(), LIMIT);
                }
            }
        }
    }
}
