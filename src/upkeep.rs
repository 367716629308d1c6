//! Functions for looking after a sessions directory from outside a store (the
//! `rammerhead-sessions` command). They open the directory per call and hold no state, so they
//! are safe beside a server using the same directory.

use napi::bindgen_prelude::Utf16String;
use napi::{Env, Result};
use napi_derive::napi;
use session_core::{
    inspect, sweep_ids, ExpiryPolicy, FileBackend, FileState, OrderedWrites, SessionBackend,
    SessionId, StoreError, SweepOptions,
};

use crate::errors::throw;
use crate::sweep_summary::SweepSummary;

/// One file as upkeep sees it.
#[napi(object)]
pub struct SessionFileInfo {
    pub id: String,
    /// Bytes.
    pub size: f64,
    pub created_at: Option<f64>,
    pub last_used: Option<f64>,
    /// Why the file is not a readable session (`ERR_CORRUPT_SESSION`, `EACCES`…), if it is not.
    pub problem: Option<String>,
    pub message: Option<String>,
}

fn open_for_reading(env: &Env, dir: String) -> Result<FileBackend> {
    FileBackend::open_for_reading(dir).map_err(|e| throw(env, e))
}

fn parse_id(env: &Env, id: &Utf16String) -> Result<SessionId> {
    SessionId::from_utf16(id).map_err(|e| throw(env, e.into()))
}

/// Ids that can name a file, in order; the others have no file to look at.
fn file_ids(ids: &[Utf16String]) -> Vec<SessionId> {
    ids.iter()
        .filter_map(|id| SessionId::from_utf16(id).ok())
        .collect()
}

/// Ids of the session files in `dir`.
#[napi]
pub fn list_session_files(env: Env, dir: String) -> Result<Vec<String>> {
    let backend = open_for_reading(&env, dir)?;
    let ids = backend.ids().map_err(|e| throw(&env, e))?;
    Ok(ids.into_iter().map(SessionId::into_string).collect())
}

/// Reads the given files' size and timestamps, or why they cannot be read. Files that vanished
/// meanwhile are left out.
#[napi]
pub fn inspect_session_files(
    env: Env,
    dir: String,
    ids: Vec<Utf16String>,
) -> Result<Vec<SessionFileInfo>> {
    let backend = open_for_reading(&env, dir)?;
    let infos = file_ids(&ids)
        .into_iter()
        .filter_map(|id| {
            let (version, state) = inspect(&backend, &id)?;
            let (times, problem) = match state {
                FileState::Session(times) => (Some(times), None),
                FileState::Corrupt(reason) => {
                    let path = backend.path_of(&id);
                    (None, Some(StoreError::Corrupt { path, reason }))
                }
                FileState::Unreadable(e) => (None, Some(e)),
            };
            Some(SessionFileInfo {
                id: id.into_string(),
                size: version.len as f64,
                created_at: times.and_then(|t| t.created_at),
                last_used: times.and_then(|t| t.last_used),
                problem: problem.as_ref().map(|e| e.code().to_owned()),
                message: problem.map(|e| e.to_string()),
            })
        })
        .collect();
    Ok(infos)
}

#[napi(object)]
pub struct PruneOptions {
    /// Epoch milliseconds the limits are measured from.
    pub now: f64,
    pub stale_timeout: Option<f64>,
    pub max_to_live: Option<f64>,
    pub remove_corrupt: bool,
    pub dry_run: bool,
}

/// Deletes the expired files among `ids` (a batch, so a caller can show progress). A file
/// replaced after it was judged is kept.
#[napi]
pub fn prune_session_files(
    env: Env,
    dir: String,
    ids: Vec<Utf16String>,
    options: PruneOptions,
) -> Result<SweepSummary> {
    let backend = if options.dry_run {
        FileBackend::open_for_reading(dir)
    } else {
        FileBackend::open(dir, false)
    }
    .map_err(|e| throw(&env, e))?;
    let store = OrderedWrites::new(backend);
    let ids = file_ids(&ids);
    let sweep_options = SweepOptions {
        policy: ExpiryPolicy::new(options.stale_timeout, options.max_to_live),
        now: options.now,
        remove_corrupt: options.remove_corrupt,
        dry_run: options.dry_run,
    };
    let report = sweep_ids(&store, ids, sweep_options);
    Ok(SweepSummary::new(report, store.backend()))
}

/// A session file's contents, checked to be a session.
#[napi]
pub fn export_session_file(env: Env, dir: String, id: Utf16String) -> Result<String> {
    let backend = open_for_reading(&env, dir)?;
    let id = parse_id(&env, &id)?;
    let store = OrderedWrites::new(backend);
    match store.load(&id) {
        Ok(Some(text)) => Ok(text),
        Ok(None) => {
            let path = store.backend().path_of(&id);
            let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
            Err(throw(
                &env,
                StoreError::Io {
                    op: "read",
                    path,
                    source: missing,
                },
            ))
        }
        Err(e) => Err(throw(&env, e)),
    }
}

/// Writes `contents` as the session's file, atomically, after checking it is a session
/// (`ERR_INVALID_SESSION` otherwise).
#[napi]
pub fn import_session_file(env: Env, dir: String, id: Utf16String, contents: String) -> Result<()> {
    let id = parse_id(&env, &id)?;
    let backend = FileBackend::open(dir, false).map_err(|e| throw(&env, e))?;
    OrderedWrites::new(backend)
        .import(&id, contents.as_bytes(), false)
        .map_err(|e| throw(&env, e))
}

/// Deletes temporary files that writers which died mid-write left in `dir`; returns how many.
#[napi]
pub fn remove_abandoned_temporaries(env: Env, dir: String) -> Result<u32> {
    let backend = FileBackend::open(dir, false).map_err(|e| throw(&env, e))?;
    Ok(backend.remove_abandoned_temporaries() as u32)
}
