//! What other stores announce on the changes channel (see `scripts`): a subscription of
//! its own, re-established whenever it drops, collecting announcements for the store to take.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;

use crate::redis::connection::Connection;

/// How often a lost subscription is tried again, and how often a live one checks that the
/// store's own connection has not been re-established meanwhile (a sign the server restarted).
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
    /// The subscription could not be made (the first failure of a streak), and why.
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

pub(crate) struct Listener {
    /// The store's connection: its client makes the subscription, and when its count of
    /// connections moves, the server may have restarted, and the subscription is made again.
    pub connection: Arc<Connection>,
    pub channel: String,
    pub origin: String,
    pub connect_timeout: Duration,
    pub sink: Arc<Announcements>,
}

impl Listener {
    pub async fn listen(self) {
        let mut failing = false;
        while !self.connection.is_closed() {
            let connects = self.connection.connects();
            let subscribed = tokio::time::timeout(self.connect_timeout, async {
                let mut pubsub = self.connection.client.get_async_pubsub().await?;
                pubsub.subscribe(&self.channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            })
            .await;
            match subscribed {
                Ok(Ok(mut pubsub)) => {
                    failing = false;
                    self.sink.push(Announcement::Subscribed);
                    self.relay(&mut pubsub, connects).await;
                }
                failed if !failing => {
                    failing = true;
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {:?}", self.connect_timeout),
                    };
                    self.sink.push(Announcement::Unsubscribed { why });
                }
                _ => {}
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    }

    /// Passes on other stores' announcements until the subscription drops, the store closes,
    /// or the store's own connection was made again.
    async fn relay(&self, pubsub: &mut redis::aio::PubSub, connects: u64) {
        let mut messages = pubsub.on_message();
        let mut check = tokio::time::interval(RETRY_INTERVAL);
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => {
                        let payload: String = message.get_payload().unwrap_or_default();
                        if let Some(a) = parse(&payload, &self.origin) {
                            self.sink.push(a);
                        }
                    }
                    None => return,
                },
                _ = check.tick() => {
                    if self.connection.is_closed() || self.connection.connects() != connects {
                        return;
                    }
                }
            }
        }
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
