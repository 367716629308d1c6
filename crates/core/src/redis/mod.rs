//! Sessions in Redis: where they are (`topology`), the connection (`connection`), the key
//! layout (`layout`), and that of earlier versions (`migration`), the Lua scripts (`scripts`), the one task that runs every change in order (`writer`), the operations a store
//! asks for (`sessions`) and its settings (`settings`), and other stores' announcements
//! (`announcements`).

pub mod announcements;
pub mod connection;
pub mod layout;
pub mod migration;
pub mod scripts;
pub mod sessions;
pub mod settings;
pub mod topology;
pub mod writer;

pub use announcements::Announcement;
pub use sessions::{Pending, RedisSessions};
pub use settings::RedisSettings;
pub use writer::{limit_args, Fetched, RedisPolicy};
