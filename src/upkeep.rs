//! Functions for looking after a sessions directory from outside a store (the
//! `rammerhead-sessions` command). They open the directory per call and hold no state, so they
//! are safe beside a server using the same directory.

use napi::bindgen_prelude::Utf16String;
use napi::{Env, Result};
use napi_derive::napi;
use session_core::codec::Stored;
use session_core::file::files::inspect;
use session_core::file::sweep::{sweep_ids, SweepOptions};
use session_core::file::{Directory, FileSessions, SessionFiles};
use session_core::{ExpiryPolicy, SessionId, StoreError};

use crate::codec::{codec_of, CodecOptions};
use crate::errors::js_error;
use crate::reports::SweepSummary;
use crate::session::parse_id;

/// One file as upkeep sees it.
#[napi(object)]
pub struct SessionFileInfo {
    pub id: String,
    /// Bytes.
    pub size: f64,
    pub created_at: Option<f64>,
    pub last_used: Option<f64>,
    /// How it is stored (`plain`, `zstd`, `aes-256-gcm`, `zstd+aes-256-gcm`), if it is a
    /// readable session.
    pub encoding: Option<String>,
    /// Why the file is not a readable session (`ERR_CORRUPT_SESSION`,
    /// `ERR_SESSION_UNDECRYPTABLE`, `EACCES`…), if it is not.
    pub problem: Option<String>,
    pub message: Option<String>,
}

fn open_for_reading(env: &Env, dir: String) -> Result<Directory> {
    Directory::open_for_reading(dir).map_err(|e| js_error(env, e))
}

/// Ids that can name a file, in order; the others have no file to look at.
fn file_ids(ids: &[Utf16String]) -> Vec<SessionId> {
    ids.iter().filter_map(|id| parse_id(id).ok()).collect()
}

/// Ids of the session files in `dir`.
#[napi]
pub fn list_session_files(env: Env, dir: String) -> Result<Vec<String>> {
    let directory = open_for_reading(&env, dir)?;
    let ids = directory.ids().map_err(|e| js_error(&env, e))?;
    Ok(ids.into_iter().map(SessionId::into_string).collect())
}

/// Reads the given files' size, timestamps and encoding, or why they cannot be read with
/// `codec`'s keys. Files that vanished meanwhile are left out.
#[napi]
pub fn inspect_session_files(
    env: Env,
    dir: String,
    ids: Vec<Utf16String>,
    codec: Option<CodecOptions>,
) -> Result<Vec<SessionFileInfo>> {
    let codec = codec_of(codec).map_err(|e| js_error(&env, e))?;
    let sessions = FileSessions::new(open_for_reading(&env, dir)?, codec);
    let infos = file_ids(&ids)
        .into_iter()
        .filter_map(|id| {
            let (version, state) = inspect(sessions.files(), sessions.codec(), &id)?;
            let place = || sessions.files().path_of(&id).display().to_string();
            let (times, problem) = match state {
                Ok(Stored::Times(times)) => (Some(times), None),
                Ok(Stored::Corrupt(reason)) => (
                    None,
                    Some(StoreError::Corrupt {
                        place: place(),
                        reason,
                    }),
                ),
                Ok(Stored::Sealed(reason)) => (
                    None,
                    Some(StoreError::Sealed {
                        place: place(),
                        reason,
                    }),
                ),
                Err(e) => (None, Some(e)),
            };
            // Timestamps are read without a key: whether the session decodes is another read.
            let (encoding, problem) = match problem {
                Some(problem) => (None, Some(problem)),
                None => match sessions.load(&id) {
                    Ok(Some(copy)) => (Some(copy.encoding.name().to_owned()), None),
                    Ok(None) => return None,
                    Err(e) => (None, Some(e)),
                },
            };
            Some(SessionFileInfo {
                id: id.into_string(),
                size: version.len as f64,
                created_at: times.and_then(|t| t.created_at),
                last_used: times.and_then(|t| t.last_used),
                encoding,
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
    codec: Option<CodecOptions>,
) -> Result<SweepSummary> {
    let codec = codec_of(codec).map_err(|e| js_error(&env, e))?;
    let directory = if options.dry_run {
        Directory::open_for_reading(dir)
    } else {
        Directory::open(dir, false)
    }
    .map_err(|e| js_error(&env, e))?;
    let sessions = FileSessions::new(directory, codec);
    let ids = file_ids(&ids);
    let sweep_options = SweepOptions {
        policy: ExpiryPolicy::new(options.stale_timeout, options.max_to_live),
        now: options.now,
        remove_corrupt: options.remove_corrupt,
        dry_run: options.dry_run,
    };
    let report = sweep_ids(&sessions, ids, sweep_options);
    Ok(SweepSummary::new(report, sessions.files()))
}

/// A session file's JSON, decoded with `codec`'s keys and checked to be a session.
#[napi]
pub fn export_session_file(
    env: Env,
    dir: String,
    id: Utf16String,
    codec: Option<CodecOptions>,
) -> Result<String> {
    parse_id(&id)
        .and_then(|id| {
            let directory = Directory::open_for_reading(dir)?;
            FileSessions::new(directory, codec_of(codec)?).export(&id)
        })
        .map_err(|e| js_error(&env, e))
}

/// Writes `contents` as the session's file, in `codec`, atomically, after checking it is a
/// session (`ERR_INVALID_SESSION` otherwise).
#[napi]
pub fn import_session_file(
    env: Env,
    dir: String,
    id: Utf16String,
    contents: String,
    codec: Option<CodecOptions>,
) -> Result<()> {
    parse_id(&id)
        .and_then(|id| {
            let directory = Directory::open(dir, false)?;
            FileSessions::new(directory, codec_of(codec)?).import(&id, contents.as_bytes(), false)
        })
        .map_err(|e| js_error(&env, e))
}

/// Deletes temporary files that writers which died mid-write left in `dir`; returns how many.
#[napi]
pub fn remove_abandoned_temporaries(env: Env, dir: String) -> Result<u32> {
    let directory = Directory::open(dir, false).map_err(|e| js_error(&env, e))?;
    Ok(directory.remove_abandoned_temporaries() as u32)
}
