//! The one queue of background writes, for session files and Redis alike. Each write gets a
//! ticket in the order it was queued; reports settle the oldest writes first, a bounded number
//! at a time, so that handling one never holds the JavaScript thread for long. What a write is
//! (a file replaced, a Redis script run) is the target's business: it starts a batch when it is
//! queued, on the JavaScript thread and without waiting for IO, and finishes it off that thread.

pub mod background;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::StoreError;
use crate::session::id::SessionId;

/// Bounds one report, so settling it never holds the JavaScript thread for long.
pub const MAX_WRITES_PER_REPORT: usize = 256;

/// What the JSON of a write is based on, for targets that version what they store (Redis);
/// files ignore it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Base {
    /// A session created here: stored unless another host stored one under the same id.
    New,
    /// The stored version the copy was loaded as (or last stored as).
    Version(u64),
    /// Whatever is stored: an import, or the last resort after conflicts kept recurring.
    Any,
}

/// One session's JSON, to be stored.
#[derive(Debug)]
pub struct Write {
    pub id: SessionId,
    pub json: String,
    pub base: Base,
}

/// How a write ended.
#[derive(Debug)]
pub enum Outcome {
    /// Stored, as `version` where the target keeps versions (else, or when it expired at once, 0).
    Written(u64),
    /// A newer write, an import or a delete of the session came first: rightly not stored.
    Superseded,
    Failed(StoreError),
}

/// Where queued writes go.
pub trait WriteTarget: Send + Sync + 'static {
    /// A batch of writes handed over.
    type Started: Send + 'static;
    /// Hands over writes, in ticket order, on the JavaScript thread: no waiting for IO.
    fn start(&self, writes: Vec<(u64, Write)>) -> Self::Started;
    /// Carries out (or waits for) a batch, off the JavaScript thread: one outcome per write.
    fn finish(&self, started: Self::Started) -> Vec<Outcome>;
    /// Stores every write before returning, after (or superseding) every write queued before:
    /// the version each one stored (0 where the target keeps none), or why it was not stored.
    fn write_now(&self, writes: Vec<Write>) -> Vec<Result<u64, StoreError>>;
}

/// What one [`WriteQueue::write_next`] did, by ticket, oldest first.
#[derive(Debug, Default)]
pub struct Report {
    pub tickets: Vec<u64>,
    pub outcomes: Vec<Outcome>,
}

pub struct WriteQueue<T: WriteTarget> {
    target: Arc<T>,
    state: Mutex<State<T::Started>>,
}

struct State<S> {
    last_ticket: u64,
    /// Batches handed over and not reported yet, oldest first, with their tickets.
    started: VecDeque<(Vec<u64>, S)>,
}

impl<T: WriteTarget> WriteQueue<T> {
    pub fn new(target: Arc<T>) -> Self {
        Self {
            target,
            state: Mutex::new(State {
                last_ticket: 0,
                started: VecDeque::new(),
            }),
        }
    }

    pub fn target(&self) -> &Arc<T> {
        &self.target
    }

    fn state(&self) -> MutexGuard<'_, State<T::Started>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands writes to the target in order, in batches no larger than a report; returns their
    /// tickets. Batches start under the lock, so the target sees them in ticket order.
    pub fn queue(&self, writes: Vec<Write>) -> Vec<u64> {
        let mut state = self.state();
        let mut tickets = Vec::with_capacity(writes.len());
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let batch: Vec<(u64, Write)> = writes
                .by_ref()
                .take(MAX_WRITES_PER_REPORT)
                .map(|write| {
                    state.last_ticket += 1;
                    (state.last_ticket, write)
                })
                .collect();
            let batch_tickets: Vec<u64> = batch.iter().map(|(ticket, _)| *ticket).collect();
            tickets.extend(&batch_tickets);
            let started = self.target.start(batch);
            state.started.push_back((batch_tickets, started));
        }
        tickets
    }

    /// Finishes the oldest batches handed over, at most [`MAX_WRITES_PER_REPORT`] writes, off
    /// the JavaScript thread. Called again only once it has returned, each report covers the
    /// next writes in ticket order; with none waiting it reports nothing.
    pub fn write_next(&self) -> Report {
        let batches: Vec<_> = {
            let mut state = self.state();
            let mut taken = Vec::new();
            let mut count = 0;
            while let Some((tickets, _)) = state.started.front() {
                if count + tickets.len() > MAX_WRITES_PER_REPORT && !taken.is_empty() {
                    break;
                }
                count += tickets.len();
                taken.extend(state.started.pop_front());
            }
            taken
        };
        let mut report = Report::default();
        for (tickets, started) in batches {
            let mut outcomes = self.target.finish(started);
            // A target that answers for fewer writes than it was given fails the rest.
            outcomes.resize_with(tickets.len(), || {
                Outcome::Failed(StoreError::Redis("no outcome reported".into()))
            });
            report.tickets.extend(tickets);
            report.outcomes.extend(outcomes);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it was given; every write succeeds as version = ticket.
    #[derive(Default)]
    struct Recorder {
        started: Mutex<Vec<Vec<u64>>>,
    }

    impl WriteTarget for Recorder {
        type Started = Vec<u64>;
        fn start(&self, writes: Vec<(u64, Write)>) -> Vec<u64> {
            let tickets: Vec<u64> = writes.iter().map(|(t, _)| *t).collect();
            self.started.lock().unwrap().push(tickets.clone());
            tickets
        }
        fn finish(&self, started: Vec<u64>) -> Vec<Outcome> {
            started.into_iter().map(Outcome::Written).collect()
        }
        fn write_now(&self, writes: Vec<Write>) -> Vec<Result<u64, StoreError>> {
            writes.iter().map(|_| Ok(0)).collect()
        }
    }

    fn writes(n: usize) -> Vec<Write> {
        (0..n)
            .map(|i| Write {
                id: SessionId::parse(&format!("s{i}")).unwrap(),
                json: String::new(),
                base: Base::Any,
            })
            .collect()
    }

    #[test]
    fn tickets_follow_the_queue_order_across_calls() {
        let queue = WriteQueue::new(Arc::new(Recorder::default()));
        assert_eq!(queue.queue(writes(2)), [1, 2]);
        assert_eq!(queue.queue(writes(1)), [3]);
        assert_eq!(
            *queue.target().started.lock().unwrap(),
            [vec![1, 2], vec![3]]
        );
    }

    #[test]
    fn a_report_settles_the_oldest_writes_and_never_more_than_its_bound() {
        let queue = WriteQueue::new(Arc::new(Recorder::default()));
        queue.queue(writes(MAX_WRITES_PER_REPORT + 10));
        queue.queue(writes(5));
        let first = queue.write_next();
        assert_eq!(first.tickets.len(), MAX_WRITES_PER_REPORT);
        assert_eq!(first.tickets[0], 1);
        let second = queue.write_next();
        assert_eq!(
            second.tickets,
            ((MAX_WRITES_PER_REPORT as u64 + 1)..=(MAX_WRITES_PER_REPORT as u64 + 15))
                .collect::<Vec<_>>()
        );
        assert!(matches!(second.outcomes[0], Outcome::Written(v) if v == second.tickets[0]));
        assert!(queue.write_next().tickets.is_empty());
    }

    #[test]
    fn a_target_that_answers_for_too_few_writes_fails_the_rest() {
        struct Mute;
        impl WriteTarget for Mute {
            type Started = ();
            fn start(&self, _: Vec<(u64, Write)>) {}
            fn finish(&self, _: ()) -> Vec<Outcome> {
                Vec::new()
            }
            fn write_now(&self, _: Vec<Write>) -> Vec<Result<u64, StoreError>> {
                Vec::new()
            }
        }
        let queue = WriteQueue::new(Arc::new(Mute));
        queue.queue(writes(2));
        let report = queue.write_next();
        assert_eq!(report.tickets, [1, 2]);
        assert!(report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Failed(_))));
    }
}
