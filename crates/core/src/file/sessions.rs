//! Coordinates the JavaScript thread's reads and writes with writes and deletes running in the
//! background, so that an older version never replaces a newer one and a session in use is never
//! swept away.
//!
//! Background threads do their file IO outside the lock, so that the JavaScript thread never
//! waits behind a slow disk for calls that touch no file (queueing, releasing); it waits only
//! when it touches the very file being replaced or deleted.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::codec::{Codec, Encoding};
use crate::error::StoreError;
use crate::file::files::{FileVersion, SessionFiles, StagedWrite};
use crate::session::format;
use crate::session::id::SessionId;
use crate::session::Loaded;
use crate::writes::background::run_in_background;
use crate::writes::{Outcome, Write, WriteTarget};

/// The sessions of one directory as a store sees them: `files` (a [`Directory`]
/// outside tests), and what the store asked of them that is not done yet.
///
/// [`Directory`]: crate::file::Directory
pub struct FileSessions<B> {
    files: B,
    /// How sessions' JSON is written to files and read back.
    codec: Codec,
    state: Mutex<State>,
    /// Signalled when a background file operation ends.
    file_released: Condvar,
}

#[derive(Default)]
struct State {
    /// Sessions held in memory by the caller; the sweep leaves their files alone.
    held: HashSet<SessionId>,
    /// The ticket of the newest background write queued for each id; an older one is dropped
    /// unwritten.
    queued: HashMap<SessionId, u64>,
    /// Files found unreadable as sessions, as they were then; listing leaves them out until
    /// they change.
    corrupt: HashMap<SessionId, FileVersion>,
    /// Files a background thread is replacing or deleting right now, outside the lock.
    in_flight: HashSet<SessionId>,
    /// Files of sessions the caller dropped, to be deleted by [`FileSessions::remove_marked`]
    /// unless a save or queued write of the id comes first.
    marked: HashSet<SessionId>,
    /// The file most recently loaded and the version it was read from, so that a session the
    /// caller then finds corrupt is judged by that version.
    last_loaded: Option<(SessionId, FileVersion)>,
}

impl State {
    /// Whether the write with `ticket` is still the newest queued for `id`.
    fn is_newest(&self, id: &SessionId, ticket: u64) -> bool {
        self.queued.get(id) == Some(&ticket)
    }
}

/// A write handed to [`FileSessions`] by the write queue, carried out by
/// [`WriteTarget::finish`].
pub struct QueuedWrite {
    id: SessionId,
    ticket: u64,
    contents: String,
}

impl<B: SessionFiles> FileSessions<B> {
    pub fn new(files: B, codec: Codec) -> Self {
        Self {
            files,
            codec,
            state: Mutex::new(State::default()),
            file_released: Condvar::new(),
        }
    }

    pub fn files(&self) -> &B {
        &self.files
    }

    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The file's contents for session `id` holding `json`, in the store's codec; refused when
    /// the JSON is longer than a load reads back.
    fn encode<'a>(&self, id: &SessionId, json: &'a [u8]) -> Result<Cow<'a, [u8]>, StoreError> {
        self.fits(id, json)?;
        self.codec
            .encode(id, json, None)
            .map_err(StoreError::Encoding)
    }

    /// Refuses JSON longer than a load reads back (`ERR_SESSION_TOO_LARGE`).
    fn fits(&self, id: &SessionId, json: &[u8]) -> Result<(), StoreError> {
        let (len, limit) = (json.len() as u64, self.files.max_session_bytes());
        if len <= limit {
            return Ok(());
        }
        let place = self.files.path_of(id).display().to_string();
        Err(StoreError::TooLarge { place, len, limit })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the sets half-updated in a harmful way.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lock, once no background operation on this id's file is in flight.
    fn state_for(&self, id: &SessionId) -> MutexGuard<'_, State> {
        let mut state = self.state();
        while state.in_flight.contains(id) {
            state = self
                .file_released
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state
    }

    /// Runs a background thread's operation on the id's file without holding the lock; calls
    /// for the same id wait for it to end.
    fn outside_lock<T>(
        &self,
        mut state: MutexGuard<'_, State>,
        id: &SessionId,
        operation: impl FnOnce() -> T,
    ) -> T {
        state.in_flight.insert(id.clone());
        drop(state);
        let result = operation();
        self.state().in_flight.remove(id);
        self.file_released.notify_all();
        result
    }

    /// Reads a session's file, decodes it, checks that it is a session and marks the session
    /// held. A file this store cannot decode (`ERR_SESSION_UNDECRYPTABLE`) is not held and not
    /// counted corrupt: nothing deletes it.
    pub fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let mut state = self.state_for(id);
        let Some((version, bytes)) = self.files.read(id)? else {
            return Ok(None);
        };
        let place = || self.files.path_of(id).display().to_string();
        let limit = self.files.max_session_bytes();
        let (encoding, stored_len) = (Encoding::of(&bytes), bytes.len() as u64);
        let decoded = match self.codec.decode(id, bytes, limit) {
            Ok(json) => json,
            Err(why) => {
                let error = StoreError::undecoded(place(), why, limit);
                if let StoreError::Corrupt { .. } = error {
                    state.corrupt.insert(id.clone(), version);
                }
                return Err(error);
            }
        };
        match format::session_json(decoded) {
            Ok(text) => {
                state.held.insert(id.clone());
                state.last_loaded = Some((id.clone(), version));
                Ok(Some(Loaded {
                    json: text,
                    version: 0,
                    encoding,
                    stored_len,
                }))
            }
            Err((reason, _)) => {
                state.corrupt.insert(id.clone(), version);
                Err(StoreError::Corrupt {
                    place: place(),
                    reason,
                })
            }
        }
    }

    /// The session's JSON, checked to be a session, for export; a missing file is an error
    /// (`ENOENT`) here.
    pub fn export(&self, id: &SessionId) -> Result<String, StoreError> {
        match self.load(id)? {
            Some(copy) => Ok(copy.json),
            None => {
                let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
                Err(StoreError::io("read", self.files.path_of(id), missing))
            }
        }
    }

    /// Remembers a file found unreadable as a session, so listing leaves it out.
    pub fn note_corrupt(&self, id: &SessionId, version: FileVersion) {
        self.state().corrupt.insert(id.clone(), version);
    }

    /// Ids of the session files, without those known to be corrupt and unchanged since.
    pub fn ids(&self) -> Result<Vec<SessionId>, StoreError> {
        let mut ids = self.files.ids()?;
        let mut state = self.state();
        if !state.corrupt.is_empty() {
            ids.retain(|id| match state.corrupt.get(id) {
                Some(seen) if self.files.version(id) == Some(*seen) => false,
                Some(_) => {
                    state.corrupt.remove(id);
                    true
                }
                None => true,
            });
        }
        Ok(ids)
    }

    /// Writes `json` now, in the store's codec, superseding any queued write. `held` tells
    /// whether the caller keeps the session in memory from now on.
    pub fn save(&self, id: &SessionId, json: &[u8], held: bool) -> Result<(), StoreError> {
        let staged = self.files.stage(id, &self.encode(id, json)?)?;
        let mut state = self.state_for(id);
        state.queued.remove(id);
        state.corrupt.remove(id);
        state.marked.remove(id);
        staged.commit()?;
        if held {
            state.held.insert(id.clone());
        } else {
            state.held.remove(id);
        }
        Ok(())
    }

    /// [`save`](Self::save) of contents from outside the store, after checking that a later
    /// [`load`](Self::load) will accept them: what is stored is what is served.
    pub fn import(&self, id: &SessionId, contents: &[u8], held: bool) -> Result<(), StoreError> {
        self.check_import(id, contents)?;
        self.save(id, contents, held)
    }

    /// What [`import`](Self::import) refuses, checked without writing anything: contents that
    /// a load would refuse (`ERR_INVALID_SESSION`), or longer than it reads
    /// (`ERR_SESSION_TOO_LARGE`).
    pub fn check_import(&self, id: &SessionId, contents: &[u8]) -> Result<(), StoreError> {
        format::parse_times(contents).map_err(StoreError::InvalidSession)?;
        self.fits(id, contents)
    }

    /// Deletes the file, cancels queued writes and forgets the session. When the file cannot be
    /// deleted, nothing is forgotten: the session still exists.
    pub fn remove(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut state = self.state_for(id);
        let removed = self.files.remove(id)?;
        state.queued.remove(id);
        state.held.remove(id);
        state.corrupt.remove(id);
        state.marked.remove(id);
        Ok(removed)
    }

    /// The caller dropped these sessions for good: their queued writes are cancelled and their
    /// files marked, for [`remove_marked`](Self::remove_marked) to delete off the caller's thread.
    pub fn mark_for_removal<'a>(&self, ids: impl IntoIterator<Item = &'a SessionId>) {
        let mut state = self.state();
        for id in ids {
            state.queued.remove(id);
            state.held.remove(id);
            state.marked.insert(id.clone());
        }
    }

    /// Deletes the file of a session marked for removal, unless it was saved or queued for
    /// writing since; `false` when there was nothing to delete.
    pub fn remove_marked(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut state = self.state_for(id);
        if !state.marked.remove(id) {
            return Ok(false);
        }
        state.corrupt.remove(id);
        self.outside_lock(state, id, || self.files.remove(id))
    }

    /// [`remove_marked`](Self::remove_marked) for each id, on a low-priority thread (one
    /// unlink can hold a thread for tens of milliseconds); the deletions that failed.
    pub fn remove_all_marked(&self, ids: &[SessionId]) -> Vec<(SessionId, StoreError)> {
        run_in_background(|| {
            ids.iter()
                .filter_map(|id| Some((id.clone(), self.remove_marked(id).err()?)))
                .collect()
        })
    }

    /// The caller no longer holds these sessions in memory.
    pub fn release<'a>(&self, ids: impl IntoIterator<Item = &'a SessionId>) {
        let mut state = self.state();
        for id in ids {
            state.held.remove(id);
        }
    }

    /// Writes one queued file: the IO happens outside the lock, and the rename is ordered
    /// against calls for the same id.
    fn write_queued(&self, write: QueuedWrite) -> Outcome {
        let QueuedWrite {
            id,
            ticket,
            contents,
        } = write;
        // Superseded already (by a later save, say): no IO at all.
        if !self.state().is_newest(&id, ticket) {
            return Outcome::Superseded;
        }
        let staged = match self
            .encode(&id, contents.as_bytes())
            .and_then(|encoded| self.files.stage(&id, &encoded))
        {
            Ok(staged) => staged,
            // A failed version that a newer one replaces loses nothing.
            Err(e) if self.finish_queued(&id, ticket) => return Outcome::Failed(e),
            Err(_) => return Outcome::Superseded,
        };
        let state = self.state_for(&id);
        if !state.is_newest(&id, ticket) {
            return Outcome::Superseded;
        }
        let committed = self.outside_lock(state, &id, || staged.commit());
        // A write queued during the rename stays queued, and outranks a failure here.
        match (committed, self.finish_queued(&id, ticket)) {
            (Ok(()), _) => Outcome::Written(0),
            (Err(e), true) => Outcome::Failed(e),
            (Err(_), false) => Outcome::Superseded,
        }
    }

    /// Forgets a queued write that is done with; false when a newer one had replaced it.
    fn finish_queued(&self, id: &SessionId, ticket: u64) -> bool {
        let mut state = self.state();
        let newest = state.is_newest(id, ticket);
        if newest {
            state.queued.remove(id);
        }
        newest
    }

    /// True when the caller holds the session or a write of it is pending.
    pub fn is_held(&self, id: &SessionId) -> bool {
        let state = self.state();
        state.held.contains(id) || state.queued.contains_key(id)
    }

    /// Deletes a file the sweep judged, unless it became held or was replaced since.
    pub fn remove_if_untouched(
        &self,
        id: &SessionId,
        judged: FileVersion,
    ) -> Result<bool, StoreError> {
        // Cheap first: most files judged are still as they were. Checked without the lock: the
        // JavaScript thread must never wait for this low-priority thread's file system calls.
        if self.is_held(id) || self.files.version(id) != Some(judged) {
            return Ok(false);
        }
        let state = self.state_for(id);
        if state.held.contains(id) || state.queued.contains_key(id) {
            return Ok(false);
        }
        // remove_if checks the version again once the file is taken away from its name.
        self.outside_lock(state, id, || self.files.remove_if(id, judged))
    }

    /// The caller could not revive the session it just loaded: its file is corrupt as loaded,
    /// and the session is not held.
    pub fn reject_loaded(&self, id: &SessionId) {
        let mut state = self.state();
        state.held.remove(id);
        if let Some((loaded, version)) = state.last_loaded.take() {
            if &loaded == id {
                state.corrupt.insert(loaded, version);
            }
        }
    }

    /// Deletes a file found corrupt, unless it was replaced since it was found so.
    pub fn remove_corrupt(&self, id: &SessionId) -> Result<bool, StoreError> {
        let Some(judged) = self.state().corrupt.get(id).copied() else {
            return Ok(false);
        };
        let removed = self.remove_if_untouched(id, judged)?;
        if removed {
            self.state().corrupt.remove(id);
        }
        Ok(removed)
    }
}

/// The background writes of a directory: queued on the JavaScript thread, written on a
/// low-priority thread. A later save, delete or queued write of the same id supersedes a queued
/// one. The caller holds these sessions in memory until it releases them.
impl<B: SessionFiles> WriteTarget for FileSessions<B> {
    type Started = Vec<QueuedWrite>;

    fn start(&self, writes: Vec<(u64, Write)>) -> Vec<QueuedWrite> {
        let mut state = self.state();
        writes
            .into_iter()
            .map(|(ticket, Write { id, json, .. })| {
                state.queued.insert(id.clone(), ticket);
                state.held.insert(id.clone());
                state.marked.remove(&id);
                QueuedWrite {
                    id,
                    ticket,
                    contents: json,
                }
            })
            .collect()
    }

    fn finish(&self, writes: Vec<QueuedWrite>) -> Vec<Outcome> {
        run_in_background(|| {
            writes
                .into_iter()
                .map(|write| self.write_queued(write))
                .collect()
        })
    }

    /// Saves and releases each session (used at shutdown).
    fn write_now(&self, writes: Vec<Write>) -> Vec<Result<u64, StoreError>> {
        writes
            .into_iter()
            .map(|write| {
                self.save(&write.id, write.json.as_bytes(), false)
                    .map(|()| 0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::directory::Directory;
    use std::sync::Arc;

    const SESSION: &[u8] = br#"{"data":{},"serializedCookieJar":"{}"}"#;

    fn store() -> (tempfile::TempDir, FileSessions<Directory>) {
        let dir = tempfile::tempdir().unwrap();
        let backend = Directory::open(dir.path(), false).unwrap();
        (dir, FileSessions::new(backend, Codec::plain()))
    }

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    /// Queues one write with `ticket`, as the write queue would.
    fn queue<B: SessionFiles>(
        store: &FileSessions<B>,
        ticket: u64,
        name: &str,
        contents: &str,
    ) -> Vec<QueuedWrite> {
        let write = Write {
            id: id(name),
            json: contents.into(),
            base: crate::writes::Base::Any,
        };
        store.start(vec![(ticket, write)])
    }

    #[test]
    fn corrupt_files_are_not_sessions_and_drop_out_of_listing_until_rewritten() {
        let (dir, store) = store();
        std::fs::write(dir.path().join("a.rhfsession"), "{\"data\":").unwrap();
        assert_eq!(store.ids().unwrap().len(), 1);
        assert!(matches!(
            store.load(&id("a")),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(store.ids().unwrap().is_empty());
        store.save(&id("a"), SESSION, false).unwrap();
        assert_eq!(store.ids().unwrap(), [id("a")]);
        assert!(!store.is_held(&id("a")));
        assert!(store.load(&id("a")).unwrap().is_some());
    }

    fn read(store: &FileSessions<Directory>, s: &str) -> Option<String> {
        store
            .files()
            .read(&id(s))
            .unwrap()
            .map(|(_, b)| String::from_utf8(b).unwrap())
    }

    #[test]
    fn imports_only_what_a_load_accepts() {
        let (dir, store) = store();
        for bad in [
            &br#"{"data":{},"data":{},"serializedCookieJar":"{}"}"#[..],
            br#"{"data":{"lastUsed":1e400},"serializedCookieJar":"{}"}"#,
            br#"{"data":{}}"#,
        ] {
            let error = store.import(&id("a"), bad, true).unwrap_err();
            assert_eq!(error.code(), "ERR_INVALID_SESSION");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        store.import(&id("a"), SESSION, true).unwrap();
        assert_eq!(
            store.load(&id("a")).unwrap().unwrap().json.as_bytes(),
            SESSION
        );
    }

    #[test]
    fn a_marked_file_is_deleted_unless_written_again_first() {
        let (_dir, store) = store();
        for name in ["a", "b", "c"] {
            store.save(&id(name), SESSION, true).unwrap();
        }
        store.mark_for_removal([&id("a"), &id("b"), &id("c")]);
        store.save(&id("b"), SESSION, true).unwrap();
        queue(&store, 1, "c", "queued");
        assert!(store.remove_marked(&id("a")).unwrap());
        assert!(!store.remove_marked(&id("b")).unwrap());
        assert!(!store.remove_marked(&id("c")).unwrap());
        assert!(!store.remove_marked(&id("a")).unwrap(), "once");
        assert_eq!(read(&store, "a"), None);
        assert!(read(&store, "b").is_some() && read(&store, "c").is_some());
    }

    #[test]
    fn a_file_found_corrupt_is_deleted_only_as_it_was_found() {
        let (dir, store) = store();
        let path = dir.path().join("a.rhfsession");
        std::fs::write(&path, "{\"data\":").unwrap();
        assert!(store.load(&id("a")).is_err());
        // Another process writes the session again before the delete.
        std::fs::write(dir.path().join("new"), SESSION).unwrap();
        std::fs::rename(dir.path().join("new"), &path).unwrap();
        assert!(!store.remove_corrupt(&id("a")).unwrap());
        assert_eq!(read(&store, "a").unwrap().as_bytes(), SESSION);

        // The same for a file the caller rejects after loading it.
        store.load(&id("a")).unwrap();
        store.reject_loaded(&id("a"));
        assert!(store.remove_corrupt(&id("a")).unwrap());
        assert_eq!(read(&store, "a"), None);
    }

    #[test]
    fn a_file_this_store_cannot_decrypt_is_listed_but_neither_held_nor_deletable() {
        use crate::codec::{encryption::Keys, Compression};
        let dir = tempfile::tempdir().unwrap();
        let open = |key: u8| {
            let keys = Keys::new(&[[key; 32]]).unwrap();
            let files = Directory::open(dir.path(), false).unwrap();
            FileSessions::new(files, Codec::new(Compression::Zstd, keys))
        };
        let (writer, other) = (open(1), open(2));
        writer.save(&id("a"), SESSION, false).unwrap();
        let stored = std::fs::read(dir.path().join("a.rhfsession")).unwrap();
        let error = other.load(&id("a")).unwrap_err();
        assert_eq!(error.code(), "ERR_SESSION_UNDECRYPTABLE");
        assert!(!other.is_held(&id("a")));
        assert_eq!(other.ids().unwrap(), vec![id("a")]);
        other.reject_loaded(&id("a"));
        assert!(!other.remove_corrupt(&id("a")).unwrap());
        assert_eq!(
            std::fs::read(dir.path().join("a.rhfsession")).unwrap(),
            stored
        );
        assert_eq!(
            writer.load(&id("a")).unwrap().unwrap().json.as_bytes(),
            SESSION
        );
    }

    #[test]
    fn a_failed_delete_forgets_nothing() {
        let (dir, store) = store();
        let queued = queue(&store, 2, "a", "x");
        // A non-empty directory under the session's name cannot be unlinked.
        std::fs::create_dir_all(dir.path().join("a.rhfsession/inner")).unwrap();
        assert_eq!(store.remove(&id("a")).unwrap_err().code(), "EISDIR");
        assert!(store.is_held(&id("a")));
        assert!(
            store.state().queued.contains_key(&id("a")),
            "still to be written"
        );
        std::fs::remove_dir_all(dir.path().join("a.rhfsession")).unwrap();
        assert!(matches!(store.finish(queued)[..], [Outcome::Written(_)]));
    }

    #[test]
    fn a_later_save_wins_over_an_earlier_queued_write() {
        let (_dir, store) = store();
        let queued = queue(&store, 3, "a", "old");
        store.save(&id("a"), b"new", true).unwrap();
        assert!(matches!(store.finish(queued)[..], [Outcome::Superseded]));
        assert_eq!(read(&store, "a").as_deref(), Some("new"));
    }

    #[test]
    fn a_delete_cancels_a_queued_write() {
        let (_dir, store) = store();
        let queued = queue(&store, 4, "a", "x");
        store.remove(&id("a")).unwrap();
        store.finish(queued);
        assert_eq!(read(&store, "a"), None);
    }

    #[test]
    fn only_the_newest_queued_write_lands() {
        let (_dir, store) = store();
        let first = queue(&store, 5, "a", "1");
        let second = queue(&store, 6, "a", "2");
        assert!(matches!(store.finish(second)[..], [Outcome::Written(_)]));
        assert!(matches!(store.finish(first)[..], [Outcome::Superseded]));
        assert_eq!(read(&store, "a").as_deref(), Some("2"));
        assert!(store.is_held(&id("a")), "held until released");
        store.release([&id("a")]);
        assert!(!store.is_held(&id("a")));
    }

    #[test]
    fn only_the_newest_queued_write_can_fail() {
        let (dir, store) = store();
        let first = queue(&store, 7, "a", "1");
        let second = queue(&store, 8, "a", "2");
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(matches!(store.finish(first)[..], [Outcome::Superseded]));
        assert!(matches!(store.finish(second)[..], [Outcome::Failed(_)]));
    }

    /// A file backend whose commits wait for the test to let them through.
    struct GatedBackend {
        files: Directory,
        entered: std::sync::mpsc::SyncSender<()>,
        proceed: Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
    }

    struct GatedWrite {
        staged: <Directory as SessionFiles>::Staged,
        entered: std::sync::mpsc::SyncSender<()>,
        proceed: Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
    }

    impl StagedWrite for GatedWrite {
        fn commit(self) -> Result<(), StoreError> {
            self.entered.send(()).unwrap();
            self.proceed.lock().unwrap().recv().unwrap();
            self.staged.commit()
        }
    }

    impl SessionFiles for GatedBackend {
        type Staged = GatedWrite;
        fn ids(&self) -> Result<Vec<SessionId>, StoreError> {
            self.files.ids()
        }
        fn max_session_bytes(&self) -> u64 {
            self.files.max_session_bytes()
        }
        fn path_of(&self, id: &SessionId) -> std::path::PathBuf {
            self.files.path_of(id)
        }
        fn version(&self, id: &SessionId) -> Option<FileVersion> {
            self.files.version(id)
        }
        fn read(&self, id: &SessionId) -> Result<Option<(FileVersion, Vec<u8>)>, StoreError> {
            self.files.read(id)
        }
        fn stage(&self, id: &SessionId, contents: &[u8]) -> Result<GatedWrite, StoreError> {
            Ok(GatedWrite {
                staged: self.files.stage(id, contents)?,
                entered: self.entered.clone(),
                proceed: self.proceed.clone(),
            })
        }
        fn remove(&self, id: &SessionId) -> Result<bool, StoreError> {
            self.files.remove(id)
        }
        fn remove_if(&self, id: &SessionId, judged: FileVersion) -> Result<bool, StoreError> {
            self.files.remove_if(id, judged)
        }
        fn remove_abandoned_temporaries(&self) -> usize {
            0
        }
    }

    #[test]
    fn a_background_rename_holds_up_only_calls_for_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let (entered, on_enter) = std::sync::mpsc::sync_channel(1);
        let (go, proceed) = std::sync::mpsc::channel();
        let store = Arc::new(FileSessions::new(
            GatedBackend {
                files: Directory::open(dir.path(), false).unwrap(),
                entered,
                proceed: Arc::new(Mutex::new(proceed)),
            },
            Codec::plain(),
        ));
        let queued = queue(&store, 9, "a", "queued");
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || store.finish(queued))
        };
        on_enter.recv().unwrap();
        // The rename of "a" is under way; calls that touch no file, or another file, go ahead.
        queue(&store, 10, "b", "b");
        store.release([&id("a")]);
        assert!(store.is_held(&id("a")), "its write is still queued");
        // A delete of "a" waits for the rename, so it is not undone by it.
        let remover = {
            let store = store.clone();
            std::thread::spawn(move || store.remove(&id("a")).unwrap())
        };
        go.send(()).unwrap();
        assert!(matches!(writer.join().unwrap()[..], [Outcome::Written(_)]));
        assert!(remover.join().unwrap(), "the delete found the written file");
        assert!(store.files().read(&id("a")).unwrap().is_none());
    }

    #[test]
    fn loaded_sessions_are_protected_until_released() {
        let (_dir, store) = store();
        store.save(&id("a"), SESSION, true).unwrap();
        store.release([&id("a")]);
        let version = store.files().version(&id("a")).unwrap();
        store.load(&id("a")).unwrap();
        assert!(!store.remove_if_untouched(&id("a"), version).unwrap());
        store.release([&id("a")]);
        assert!(store.remove_if_untouched(&id("a"), version).unwrap());
    }

    #[test]
    fn a_replaced_file_is_not_removed_on_an_old_judgement() {
        let (_dir, store) = store();
        store.save(&id("a"), b"x", true).unwrap();
        store.release([&id("a")]);
        let version = store.files().version(&id("a")).unwrap();
        store.save(&id("a"), b"newer", true).unwrap();
        store.release([&id("a")]);
        assert!(!store.remove_if_untouched(&id("a"), version).unwrap());
        assert!(read(&store, "a").is_some());
    }
}
