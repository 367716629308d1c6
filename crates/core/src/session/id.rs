//! Session id validation and the mapping between ids and file names.

use thiserror::Error;

/// Every session file ends with this, exactly as the original store names them.
pub const EXTENSION: &str = ".rhfsession";

/// Most file systems cap a name at 255 bytes; the extension takes 11 of them.
pub const MAX_ID_BYTES: usize = 255 - EXTENSION.len();

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdError {
    #[error("session id must not be empty")]
    Empty,
    #[error("session id must not contain '/', '\\' or NUL characters")]
    ForbiddenCharacter,
    #[error("session id must not be '.' or '..'")]
    DotName,
    #[error("session id must be at most {MAX_ID_BYTES} bytes long in UTF-8, got {0}")]
    TooLong(usize),
    #[error("session id must be well-formed UTF-16 (no lone surrogates)")]
    NotWellFormed,
}

/// Checks that `id` names exactly one file directly inside the sessions directory.
pub fn validate(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong(id.len()));
    }
    if id.bytes().any(|b| matches!(b, b'/' | b'\\' | 0)) {
        return Err(IdError::ForbiddenCharacter);
    }
    // "..rhfsession" is a fine name, but "." and ".." are kept out so no id ever looks like a
    // path component, whatever a future caller does with it.
    if id == "." || id == ".." {
        return Err(IdError::DotName);
    }
    Ok(())
}

/// An id that has passed [`validate`], so it can only ever name a file inside the directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(id: &str) -> Result<Self, IdError> {
        validate(id)?;
        Ok(SessionId(id.to_owned()))
    }

    /// Parses an id as JavaScript holds it. A lone surrogate has no UTF-8 form: converting it
    /// lossily would give several ids one file, so it makes the id impossible instead.
    pub fn from_utf16(units: &[u16]) -> Result<Self, IdError> {
        let id = String::from_utf16(units).map_err(|_| IdError::NotWellFormed)?;
        validate(&id)?;
        Ok(SessionId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn file_name(&self) -> String {
        format!("{}{EXTENSION}", self.0)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Separates the ids of a [`join`]ed list: no id contains it.
pub const LIST_SEPARATOR: char = '/';

/// The ids as one string, separated by [`LIST_SEPARATOR`], leaving out any that is not an id.
/// Handing JavaScript one string to split costs a fraction of handing it one string per id.
pub fn join<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut list = String::new();
    for id in ids.into_iter().filter(|id| validate(id).is_ok()) {
        if !list.is_empty() {
            list.push(LIST_SEPARATOR);
        }
        list.push_str(id);
    }
    list
}

/// The id a directory entry stands for, if the name is a session file name.
pub fn from_file_name(name: &str) -> Option<&str> {
    let id = name.strip_suffix(EXTENSION)?;
    validate(id).ok().map(|()| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ids_rammerhead_generates() {
        assert_eq!(
            SessionId::parse("825418963b9e4c6b9e7f655c1922c497")
                .unwrap()
                .file_name(),
            "825418963b9e4c6b9e7f655c1922c497.rhfsession"
        );
    }

    #[test]
    fn rejects_names_that_could_escape_the_directory() {
        assert_eq!(validate(""), Err(IdError::Empty));
        assert_eq!(validate(".."), Err(IdError::DotName));
        assert_eq!(validate("."), Err(IdError::DotName));
        assert_eq!(validate("../x"), Err(IdError::ForbiddenCharacter));
        assert_eq!(validate("a\\b"), Err(IdError::ForbiddenCharacter));
        assert_eq!(validate("a\0b"), Err(IdError::ForbiddenCharacter));
        assert_eq!(
            validate(&"a".repeat(MAX_ID_BYTES + 1)),
            Err(IdError::TooLong(245))
        );
        assert!(validate(&"a".repeat(MAX_ID_BYTES)).is_ok());
        assert!(validate("ü-é").is_ok());
    }

    #[test]
    fn lone_surrogates_are_not_ids() {
        let utf16 = |s: &str| s.encode_utf16().collect::<Vec<_>>();
        for lone in [0xD800, 0xDC00, 0xDBFF, 0xDFFF] {
            let mut units = utf16("victim");
            units.push(lone);
            assert_eq!(SessionId::from_utf16(&units), Err(IdError::NotWellFormed));
        }
        assert_eq!(
            SessionId::from_utf16(&utf16("victim\u{FFFD}"))
                .unwrap()
                .as_str(),
            "victim\u{FFFD}"
        );
        assert_eq!(SessionId::from_utf16(&utf16("😀")).unwrap().as_str(), "😀");
        assert_eq!(
            SessionId::from_utf16(&utf16("a/b")),
            Err(IdError::ForbiddenCharacter)
        );
    }

    #[test]
    fn a_joined_list_keeps_every_id_and_only_ids() {
        assert_eq!(join([]), "");
        assert_eq!(join(["a"]), "a");
        assert_eq!(join(["a", "ü-é", "b.c"]), "a/ü-é/b.c");
        assert_eq!(join(["", "a/b", "..", "x", "a\0b"]), "x");
        let ids = ["k1", "k2", "k3"];
        let list = join(ids);
        assert_eq!(list.split(LIST_SEPARATOR).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn an_id_displays_as_itself() {
        assert_eq!(SessionId::parse("ü-1").unwrap().to_string(), "ü-1");
    }

    #[test]
    fn reads_ids_back_from_file_names() {
        assert_eq!(from_file_name("abc.rhfsession"), Some("abc"));
        assert_eq!(from_file_name(".rhfsession"), None);
        assert_eq!(from_file_name("notes.rhfsession.tmp"), None);
        assert_eq!(from_file_name("README.txt"), None);
    }

    proptest! {
        #[test]
        fn a_valid_id_maps_to_one_plain_file_name(id in any::<String>()) {
            if let Ok(name) = SessionId::parse(&id).map(|id| id.file_name()) {
                let path = std::path::Path::new("/sessions").join(&name);
                prop_assert_eq!(path.parent(), Some(std::path::Path::new("/sessions")));
                prop_assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(name.as_str()));
                prop_assert_eq!(from_file_name(&name), Some(id.as_str()));
            }
        }

        #[test]
        fn utf16_ids_are_accepted_only_if_they_round_trip(units in proptest::collection::vec(
            prop_oneof![any::<u16>(), 0xD800u16..0xE000, Just(0xFFFDu16), Just(u16::from(b'x'))],
            0..12,
        )) {
            match SessionId::from_utf16(&units) {
                Ok(id) => {
                    let back: Vec<u16> = id.file_name().encode_utf16().collect();
                    let ext: Vec<u16> = EXTENSION.encode_utf16().collect();
                    prop_assert_eq!(&back[..back.len() - ext.len()], &units[..]);
                }
                Err(e) => prop_assert!(
                    String::from_utf16(&units).map_or(e == IdError::NotWellFormed, |s| validate(&s).is_err())
                ),
            }
        }

        #[test]
        fn different_utf16_ids_never_share_a_file(
            a in proptest::collection::vec(prop_oneof![0xD7FEu16..0xE002, Just(0xFFFDu16), Just(u16::from(b'x'))], 1..6),
            b in proptest::collection::vec(prop_oneof![0xD7FEu16..0xE002, Just(0xFFFDu16), Just(u16::from(b'x'))], 1..6),
        ) {
            if a != b {
                if let (Ok(x), Ok(y)) = (SessionId::from_utf16(&a), SessionId::from_utf16(&b)) {
                    prop_assert_ne!(x.file_name(), y.file_name());
                }
            }
        }

        #[test]
        fn different_valid_ids_never_share_a_file(a in "\\PC{1,40}", b in "\\PC{1,40}") {
            if a != b {
                let name = |id: &str| SessionId::parse(id).map(|id| id.file_name());
                if let (Ok(x), Ok(y)) = (name(&a), name(&b)) {
                    prop_assert_ne!(x, y);
                }
            }
        }
    }
}
