//! Node.js bindings of `session-core`: value conversion and error mapping only.

mod checks;
mod errors;
mod expiry;
mod fingerprint;
mod held_sessions;
mod merge;
mod redis_sessions;
mod session_directory;
mod sweep_summary;
mod tasks;
mod upkeep;
