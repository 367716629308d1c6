//! Sessions in Redis: the connection (`connection`), the key layout and Lua scripts
//! (`scripts`), the one task that runs every change in order (`writer`), the operations a store
//! asks for (`sessions`) and its settings (`settings`), and other stores' announcements
//! (`announcements`).

pub mod announcements;
pub mod connection;
pub mod scripts;
pub mod sessions;
pub mod settings;
pub mod writer;

pub use announcements::Announcement;
pub use sessions::{Pending, RedisSessions};
pub use settings::RedisSettings;
pub use writer::{limit_args, Fetched, RedisPolicy};
