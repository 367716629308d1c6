//! Coordinates the JavaScript thread's reads and writes with writes and deletes running in the
//! background, so that an older version never replaces a newer one and a session in use is never
//! swept away.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::backend::{FileVersion, SessionBackend, StagedWrite};
use crate::error::StoreError;
use crate::id::SessionId;

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

    /// Reads a session's file and, if there is one, marks the session live.
    pub fn load(&self, id: &SessionId) -> Result<Option<Vec<u8>>, StoreError> {
        let mut state = self.state();
        let contents = self.backend.read(id)?;
        if contents.is_some() {
            state.live.insert(id.clone());
        }
        Ok(contents)
    }

    pub fn exists(&self, id: &SessionId) -> bool {
        self.backend.exists(id)
    }

    pub fn ids(&self) -> Result<Vec<SessionId>, StoreError> {
        self.backend.ids()
    }

    /// Writes now, superseding any queued write, and marks the session live.
    pub fn save(&self, id: &SessionId, contents: &[u8]) -> Result<(), StoreError> {
        let staged = self.backend.stage(id, contents)?;
        let mut state = self.state();
        state.queued.remove(id);
        staged.commit()?;
        state.live.insert(id.clone());
        Ok(())
    }

    /// Deletes the file, cancels queued writes and forgets the session.
    pub fn remove(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.queued.remove(id);
        state.live.remove(id);
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

    fn store() -> (tempfile::TempDir, SessionStore<FileBackend>) {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::open(dir.path(), false).unwrap();
        (dir, SessionStore::new(backend))
    }

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
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
        store.save(&id("a"), b"new").unwrap();
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
        store.save(&id("a"), b"x").unwrap();
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
        store.save(&id("a"), b"x").unwrap();
        store.release([&id("a")]);
        let version = store.backend().version(&id("a")).unwrap();
        store.save(&id("a"), b"newer").unwrap();
        store.release([&id("a")]);
        assert!(!store.remove_if_untouched(&id("a"), version).unwrap());
        assert!(read(&store, "a").is_some());
    }
}
