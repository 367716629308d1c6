//! Coordinates the JavaScript thread's reads and writes with writes and deletes running in the
//! background, so that an older version never replaces a newer one and a session in use is never
//! swept away.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::backend::{FileVersion, SessionBackend, StagedWrite};
use crate::error::StoreError;
use crate::id::SessionId;
use crate::session_file::{self, Corruption};
use crate::stale_sweep::{inspect, FileState};

pub struct SessionStore<B> {
    backend: B,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Sessions held in memory by the caller; the sweep leaves their files alone.
    live: HashSet<SessionId>,
    /// The newest background write queued for each id; an older one is dropped unwritten.
    queued: HashMap<SessionId, u64>,
    next_ticket: u64,
    /// Files found unreadable as sessions, as they were then; listing leaves them out until
    /// they change.
    corrupt: HashMap<SessionId, FileVersion>,
}

/// One session's contents, queued by [`SessionStore::queue_writes`].
pub struct QueuedWrite {
    id: SessionId,
    ticket: u64,
    contents: String,
}

impl QueuedWrite {
    pub fn id(&self) -> &SessionId {
        &self.id
    }
}

#[derive(Debug)]
pub enum WriteOutcome {
    Written,
    /// A newer write or a delete came first; this version was rightly dropped.
    Superseded,
    Failed(StoreError),
}

impl<B: SessionBackend> SessionStore<B> {
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            state: Mutex::new(State::default()),
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the sets half-updated in a harmful way.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads a session's file, checks that it is a session and marks the session live.
    pub fn load(&self, id: &SessionId) -> Result<Option<String>, StoreError> {
        let mut state = self.state();
        let version = self.backend.version(id);
        let Some(bytes) = self.backend.read(id)? else {
            return Ok(None);
        };
        let checked = session_file::parse_times(&bytes).and_then(|_| {
            // parse_times has checked UTF-8 already.
            String::from_utf8(bytes).map_err(|_| Corruption::NotUtf8)
        });
        match checked {
            Ok(text) => {
                state.live.insert(id.clone());
                Ok(Some(text))
            }
            Err(reason) => {
                if let Some(version) = version {
                    state.corrupt.insert(id.clone(), version);
                }
                let path = self.backend.path_of(id);
                Err(StoreError::Corrupt { path, reason })
            }
        }
    }

    /// Whether the id has a file that reads as a session.
    pub fn holds_session(&self, id: &SessionId) -> bool {
        let Some((version, state)) = inspect(&self.backend, id) else {
            return false;
        };
        match state {
            FileState::Session(_) => true,
            FileState::Corrupt(_) => {
                self.note_corrupt(id, version);
                false
            }
            FileState::Unreadable(_) => false,
        }
    }

    /// Remembers a file found unreadable as a session, so listing leaves it out.
    pub fn note_corrupt(&self, id: &SessionId, version: FileVersion) {
        self.state().corrupt.insert(id.clone(), version);
    }

    /// Ids of the session files, without those known to be corrupt and unchanged since.
    pub fn ids(&self) -> Result<Vec<SessionId>, StoreError> {
        let mut ids = self.backend.ids()?;
        let mut state = self.state();
        if !state.corrupt.is_empty() {
            ids.retain(|id| match state.corrupt.get(id) {
                Some(seen) if self.backend.version(id) == Some(*seen) => false,
                Some(_) => {
                    state.corrupt.remove(id);
                    true
                }
                None => true,
            });
        }
        Ok(ids)
    }

    /// Writes now, superseding any queued write. `held` tells whether the caller keeps the
    /// session in memory from now on.
    pub fn save(&self, id: &SessionId, contents: &[u8], held: bool) -> Result<(), StoreError> {
        let staged = self.backend.stage(id, contents)?;
        let mut state = self.state();
        state.queued.remove(id);
        state.corrupt.remove(id);
        staged.commit()?;
        if held {
            state.live.insert(id.clone());
        } else {
            state.live.remove(id);
        }
        Ok(())
    }

    /// Deletes the file, cancels queued writes and forgets the session.
    pub fn remove(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.queued.remove(id);
        state.live.remove(id);
        state.corrupt.remove(id);
        self.backend.remove(id)
    }

    /// The caller no longer holds these sessions in memory.
    pub fn release<'a>(&self, ids: impl IntoIterator<Item = &'a SessionId>) {
        let mut state = self.state();
        for id in ids {
            state.live.remove(id);
        }
    }

    /// Registers writes to be carried out by [`write_queued`](Self::write_queued), typically on
    /// another thread. A later save, delete or queued write of the same id supersedes them.
    pub fn queue_writes(&self, items: Vec<(SessionId, String)>) -> Vec<QueuedWrite> {
        let mut state = self.state();
        items
            .into_iter()
            .map(|(id, contents)| {
                state.next_ticket += 1;
                let ticket = state.next_ticket;
                state.queued.insert(id.clone(), ticket);
                QueuedWrite {
                    id,
                    ticket,
                    contents,
                }
            })
            .collect()
    }

    /// The file IO happens outside the lock; only the rename is ordered against other calls.
    pub fn write_queued(&self, writes: Vec<QueuedWrite>) -> Vec<WriteOutcome> {
        writes
            .into_iter()
            .map(|write| {
                let staged = match self.backend.stage(&write.id, write.contents.as_bytes()) {
                    Ok(staged) => staged,
                    Err(e) => {
                        self.finish_queued(&write);
                        return WriteOutcome::Failed(e);
                    }
                };
                let mut state = self.state();
                if state.queued.get(&write.id) != Some(&write.ticket) {
                    return WriteOutcome::Superseded;
                }
                state.queued.remove(&write.id);
                match staged.commit() {
                    Ok(()) => WriteOutcome::Written,
                    Err(e) => WriteOutcome::Failed(e),
                }
            })
            .collect()
    }

    fn finish_queued(&self, write: &QueuedWrite) {
        let mut state = self.state();
        if state.queued.get(&write.id) == Some(&write.ticket) {
            state.queued.remove(&write.id);
        }
    }

    /// True when the caller holds the session or a write of it is pending.
    pub fn is_busy(&self, id: &SessionId) -> bool {
        let state = self.state();
        state.live.contains(id) || state.queued.contains_key(id)
    }

    /// Deletes a file the sweep judged, unless it became busy or was replaced since.
    pub fn remove_if_untouched(
        &self,
        id: &SessionId,
        judged: FileVersion,
    ) -> Result<bool, StoreError> {
        let state = self.state();
        if state.live.contains(id) || state.queued.contains_key(id) {
            return Ok(false);
        }
        if self.backend.version(id) != Some(judged) {
            return Ok(false);
        }
        let removed = self.backend.remove(id);
        drop(state);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_backend::FileBackend;

    const SESSION: &[u8] = br#"{"data":{},"serializedCookieJar":"{}"}"#;

    fn store() -> (tempfile::TempDir, SessionStore<FileBackend>) {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::open(dir.path(), false).unwrap();
        (dir, SessionStore::new(backend))
    }

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    #[test]
    fn corrupt_files_are_not_sessions_and_drop_out_of_listing_until_rewritten() {
        let (dir, store) = store();
        std::fs::write(dir.path().join("a.rhfsession"), "{\"data\":").unwrap();
        assert_eq!(store.ids().unwrap().len(), 1);
        assert!(!store.holds_session(&id("a")));
        assert!(matches!(
            store.load(&id("a")),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(store.ids().unwrap().is_empty());
        store.save(&id("a"), SESSION, false).unwrap();
        assert_eq!(store.ids().unwrap(), [id("a")]);
        assert!(store.holds_session(&id("a")));
        assert!(!store.is_busy(&id("a")));
    }

    fn read(store: &SessionStore<FileBackend>, s: &str) -> Option<String> {
        store
            .backend()
            .read(&id(s))
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn a_later_save_wins_over_an_earlier_queued_write() {
        let (_dir, store) = store();
        let queued = store.queue_writes(vec![(id("a"), "old".into())]);
        store.save(&id("a"), b"new", true).unwrap();
        assert!(matches!(
            store.write_queued(queued)[..],
            [WriteOutcome::Superseded]
        ));
        assert_eq!(read(&store, "a").as_deref(), Some("new"));
    }

    #[test]
    fn a_delete_cancels_a_queued_write() {
        let (_dir, store) = store();
        let queued = store.queue_writes(vec![(id("a"), "x".into())]);
        store.remove(&id("a")).unwrap();
        store.write_queued(queued);
        assert_eq!(read(&store, "a"), None);
    }

    #[test]
    fn only_the_newest_queued_write_lands() {
        let (_dir, store) = store();
        let first = store.queue_writes(vec![(id("a"), "1".into())]);
        let second = store.queue_writes(vec![(id("a"), "2".into())]);
        assert!(matches!(
            store.write_queued(second)[..],
            [WriteOutcome::Written]
        ));
        assert!(matches!(
            store.write_queued(first)[..],
            [WriteOutcome::Superseded]
        ));
        assert_eq!(read(&store, "a").as_deref(), Some("2"));
        assert!(!store.is_busy(&id("a")));
    }

    #[test]
    fn loaded_sessions_are_protected_until_released() {
        let (_dir, store) = store();
        store.save(&id("a"), SESSION, true).unwrap();
        store.release([&id("a")]);
        let version = store.backend().version(&id("a")).unwrap();
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
        let version = store.backend().version(&id("a")).unwrap();
        store.save(&id("a"), b"newer", true).unwrap();
        store.release([&id("a")]);
        assert!(!store.remove_if_untouched(&id("a"), version).unwrap());
        assert!(read(&store, "a").is_some());
    }
}
