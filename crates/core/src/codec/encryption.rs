//! AES-256-GCM with ring, which the TLS connections to Redis already link: constant-time
//! assembly on x86-64 and arm64, and no second AES in the binary.

pub use ring::aead::NONCE_LEN;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

pub const KEY_LEN: usize = 32;
/// Names the key a value was encrypted with, so that the right one of several is tried.
pub const KEY_ID_LEN: usize = 4;
pub const TAG_LEN: usize = 16;

/// One encryption key and its id.
pub struct Key {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

/// The keys of a store: the first encrypts, every one decrypts.
#[derive(Default)]
pub struct Keys(Vec<Key>);

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("key {0} is not {KEY_LEN} bytes")]
    WrongLength(usize),
    /// Two keys with one id cannot be told apart (in practice: the same key twice).
    #[error("keys {0} and {1} are the same key")]
    Repeated(usize, usize),
}

impl Key {
    fn new(bytes: &[u8]) -> Option<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self {
            id: key_id(bytes),
            key: LessSafeKey::new(unbound),
        })
    }
}

/// The key's id: the start of a SHA-256 of it under a label of this use. A hash is one-way, so
/// the id says nothing of the key; it is never the key's own AES output, which GCM relies on.
fn key_id(bytes: &[u8]) -> [u8; KEY_ID_LEN] {
    let mut labelled = b"rammerhead-session-store key id\0".to_vec();
    labelled.extend_from_slice(bytes);
    let hash = digest(&SHA256, &labelled);
    let mut id = [0; KEY_ID_LEN];
    id.copy_from_slice(&hash.as_ref()[..KEY_ID_LEN]);
    id
}

/// A key id as text, for messages and reports.
pub fn key_id_text(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a value does not decrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// None of the keys has the value's key id (or there are no keys).
    UnknownKey([u8; KEY_ID_LEN]),
    /// The key is known and the value does not authenticate: bytes changed, or the value was
    /// copied under another session id.
    Rejected,
}

impl Keys {
    /// Keys of 32 bytes each (the numbers in errors count from 1).
    pub fn new<K: AsRef<[u8]>>(keys: &[K]) -> Result<Self, KeyError> {
        let mut parsed: Vec<Key> = Vec::with_capacity(keys.len());
        for (n, bytes) in keys.iter().enumerate() {
            let bytes = bytes.as_ref();
            if bytes.len() != KEY_LEN {
                return Err(KeyError::WrongLength(n + 1));
            }
            let key = Key::new(bytes).ok_or(KeyError::WrongLength(n + 1))?;
            if let Some(same) = parsed.iter().position(|k| k.id == key.id) {
                return Err(KeyError::Repeated(same + 1, n + 1));
            }
            parsed.push(key);
        }
        Ok(Self(parsed))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The id of the key that encrypts, if any.
    pub fn current_id(&self) -> Option<[u8; KEY_ID_LEN]> {
        self.0.first().map(|k| k.id)
    }

    /// Encrypts `data` in place with the first key under a fresh random nonce, binding `aad`;
    /// returns the nonce and the tag. `None` when there is no key or no randomness.
    pub fn seal(&self, aad: &[u8], data: &mut [u8]) -> Option<([u8; NONCE_LEN], [u8; TAG_LEN])> {
        let key = self.0.first()?;
        let mut nonce = [0; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let tag = key
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), data)
            .ok()?;
        let mut tag_bytes = [0; TAG_LEN];
        tag_bytes.copy_from_slice(tag.as_ref());
        Some((nonce, tag_bytes))
    }

    /// Decrypts `sealed` (ciphertext then tag) in place with the key of `id`; the plaintext's
    /// length.
    pub fn open(
        &self,
        id: [u8; KEY_ID_LEN],
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        sealed: &mut [u8],
    ) -> Result<usize, Opening> {
        let key = self
            .0
            .iter()
            .find(|k| k.id == id)
            .ok_or(Opening::UnknownKey(id))?;
        key.key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
            .map(|plain| plain.len())
            .map_err(|_| Opening::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_any_of_the_keys_and_only_with_the_same_aad() {
        let old = Keys::new(&[[1u8; 32]]).unwrap();
        let both = Keys::new(&[[2u8; 32], [1u8; 32]]).unwrap();
        let mut data = b"cookies".to_vec();
        let (nonce, tag) = old.seal(b"id-a", &mut data).unwrap();
        assert_ne!(data, b"cookies");
        data.extend_from_slice(&tag);
        let id = old.current_id().unwrap();
        let mut copy = data.clone();
        assert_eq!(
            both.open(id, nonce, b"id-b", &mut copy),
            Err(Opening::Rejected)
        );
        let len = both.open(id, nonce, b"id-a", &mut data).unwrap();
        assert_eq!(&data[..len], b"cookies");
        let other = Keys::new(&[[3u8; 32]]).unwrap();
        assert_eq!(
            other.open(id, nonce, b"id-a", &mut copy),
            Err(Opening::UnknownKey(id))
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let keys = Keys::new(&[[1u8; 32]]).unwrap();
        let (a, _) = keys.seal(b"", &mut [0; 4]).unwrap();
        let (b, _) = keys.seal(b"", &mut [0; 4]).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn refuses_short_and_repeated_keys() {
        assert_eq!(
            Keys::new(&[vec![0u8; 16]]).err(),
            Some(KeyError::WrongLength(1))
        );
        assert_eq!(
            Keys::new(&[[1u8; 32], [2u8; 32], [1u8; 32]]).err(),
            Some(KeyError::Repeated(1, 3))
        );
        assert!(Keys::new::<[u8; 32]>(&[]).unwrap().is_empty());
    }

    #[test]
    fn key_ids_are_stable_and_reveal_nothing_of_the_key() {
        assert_eq!(
            key_id_text(&key_id(&[0u8; 32])),
            key_id_text(&key_id(&[0u8; 32]))
        );
        assert_ne!(key_id(&[0u8; 32]), key_id(&[1u8; 32]));
        assert_ne!(&key_id(&[0u8; 32])[..], &[0u8; 4]);
    }
}
