//! What other stores announce on the changes channel (see `scripts`), heard on the store's
//! subscribing connection (RESP3 pushes), collected for the store to take.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};

use crate::redis::connection::{Connection, Pushes};

/// How often a subscription the server refused is asked for again.
const RETRY_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq)]
pub enum Announcement {
    /// Another store stored `version` of the session.
    Changed { id: String, version: u64 },
    /// Another store deleted the session.
    Deleted { id: String, version: u64 },
    /// The subscription was (re-)established: announcements made meanwhile are lost, so the
    /// versions held are to be checked again.
    Subscribed,
    /// The subscription could not be made, or was lost with the connection, and why.
    Unsubscribed { why: String },
}

type Wake = Box<dyn Fn() + Send + Sync>;

/// Announcements not taken yet, and who to wake when the first one arrives.
#[derive(Default)]
pub struct Announcements {
    queue: Mutex<Vec<Announcement>>,
    wake: Mutex<Option<Wake>>,
}

impl Announcements {
    /// `wake` is called, from another thread, whenever announcements arrive and none were
    /// waiting; at once if some are waiting already.
    pub fn on_arrival(&self, wake: Wake) {
        // Set before looking, so that an arrival in between wakes too.
        let mut slot = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(wake);
        if !self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            if let Some(wake) = &*slot {
                wake();
            }
        }
    }

    pub fn take(&self) -> Vec<Announcement> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn push(&self, announcement: Announcement) {
        let first = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.push(announcement);
            queue.len() == 1
        };
        if first {
            if let Some(wake) = &*self.wake.lock().unwrap_or_else(|p| p.into_inner()) {
                wake();
            }
        }
    }
}

/// Reads `<origin> <s|d> <version> <id>`; `None` for this store's own, or for noise.
fn parse(payload: &str, own_origin: &str) -> Option<Announcement> {
    let mut parts = payload.splitn(4, ' ');
    let origin = parts.next()?;
    let kind = parts.next()?;
    let version = parts.next()?.parse().ok()?;
    let id = parts.next()?.to_owned();
    if origin == own_origin {
        return None;
    }
    match kind {
        "s" => Some(Announcement::Changed { id, version }),
        "d" => Some(Announcement::Deleted { id, version }),
        _ => None,
    }
}

/// The text of the `index`th part of a push, if it is text.
fn text_at(push: &PushInfo, index: usize) -> Option<String> {
    match push.data.get(index)? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// What one store hears on its subscribing connection, for `sink`: other stores'
/// announcements on `channel`, and whether it is subscribed.
#[derive(Clone)]
pub(crate) struct Listener {
    pub connection: Arc<Connection>,
    pub channel: String,
    pub origin: String,
    pub sink: Arc<Announcements>,
    /// A `subscribe` loop runs.
    pub subscribing: Arc<AtomicBool>,
}

impl Listener {
    /// Reads the connection's pushes until it is gone. A lost connection is told to the
    /// connection (and, while subscribed, to the sink), and the listener subscribes again on
    /// the next one, which the sink hears as `Subscribed`.
    pub async fn hear(self, mut pushes: Pushes) {
        let mut subscribed = false;
        while let Some(push) = pushes.recv().await {
            let on_channel = || text_at(&push, 0).as_deref() == Some(self.channel.as_str());
            match push.kind {
                PushKind::Disconnection => {
                    self.connection.lost();
                    if subscribed {
                        subscribed = false;
                        let why = "the connection was lost".into();
                        self.sink.push(Announcement::Unsubscribed { why });
                        tokio::spawn(self.clone().subscribe());
                    }
                }
                PushKind::Subscribe if on_channel() => {
                    subscribed = true;
                    self.sink.push(Announcement::Subscribed);
                }
                PushKind::Message if on_channel() => {
                    let announced = text_at(&push, 1).and_then(|p| parse(&p, &self.origin));
                    if let Some(announcement) = announced {
                        self.sink.push(announcement);
                    }
                }
                _ => {}
            }
        }
    }

    /// Subscribes to the channel, asking again every RETRY_INTERVAL while it cannot (the first
    /// failure of a streak is told to the sink), unless a loop doing so runs already.
    pub async fn subscribe(self) {
        if self.subscribing.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut failing = false;
        while !self.connection.is_closed() {
            match self.connection.subscribe(&self.channel).await {
                Ok(()) => break,
                Err(why) if !failing => {
                    failing = true;
                    self.sink.push(Announcement::Unsubscribed { why });
                }
                Err(_) => {}
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
        self.subscribing.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_read_and_own_ones_ignored() {
        assert_eq!(
            parse("abc s 7 id with spaces", "me"),
            Some(Announcement::Changed {
                id: "id with spaces".into(),
                version: 7
            })
        );
        assert_eq!(
            parse("abc d 8 x", "me"),
            Some(Announcement::Deleted {
                id: "x".into(),
                version: 8
            })
        );
        assert_eq!(parse("me s 7 x", "me"), None);
        assert_eq!(parse("abc q 7 x", "me"), None);
        assert_eq!(parse("abc s seven x", "me"), None);
    }
}
