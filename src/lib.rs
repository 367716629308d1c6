//! Node.js bindings of `session-core`. Each file binds one part of the core: it converts
//! JavaScript values to the core's and back, and maps errors through `errors`; none holds
//! logic of its own.

mod codec;
mod errors;
mod file_sessions;
mod held_index;
mod redis_sessions;
mod reports;
mod session;
mod tasks;
mod upkeep;
