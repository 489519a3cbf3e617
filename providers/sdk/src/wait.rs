//! The waits a run makes, as people are shown them while they last.
//!
//! A deployment polled for minutes, a `Retry-After` waited out, a gate retried: without a word
//! a terminal looks hung. Providers know what they wait for and what they last saw; only the
//! engine knows how to show it. So a provider announces a wait with [`Wait::start`], tells it
//! each answer with [`Wait::saw`] and drops it when the wait is over; nothing is printed from
//! here. The engine reads the waits going on now with [`waiting`] (from a thread of its own,
//! as often as it draws) and says whose they are by running each resource's calls inside
//! [`on_behalf_of`].
//!
//! A wait costs one lock when it starts and one when it ends, whoever listens: a provider
//! never has to ask whether anyone does.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The waits going on now, oldest first.
static WAITS: Mutex<Vec<Arc<Shared>>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Whose calls this thread is making, as [`on_behalf_of`] set it.
    static SUBJECT: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

struct Shared {
    id: u64,
    subject: Option<Arc<str>>,
    what: String,
    limit: Option<Duration>,
    started: Instant,
    last: Mutex<Option<String>>,
}

/// One wait going on: shown for as long as the value lives.
#[must_use = "the wait is over as soon as the value is dropped"]
pub struct Wait {
    shared: Arc<Shared>,
}

impl Wait {
    /// Announces a wait for `what` ("deployment d1 of application a1", "gate http
    /// https://x/health"), which gives up after `limit` when it has one. It belongs to the
    /// resource the calling thread works for ([`on_behalf_of`]).
    pub fn start(what: impl Into<String>, limit: Option<Duration>) -> Wait {
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            subject: SUBJECT.with(|s| s.borrow().clone()),
            what: what.into(),
            limit,
            started: Instant::now(),
            last: Mutex::new(None),
        });
        WAITS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&shared));
        Wait { shared }
    }

    /// The answer seen last ("502 Bad Gateway", "in_progress"), shown with the wait.
    pub fn saw(&self, answer: impl Into<String>) {
        *self
            .shared
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(answer.into());
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        WAITS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|w| w.id != self.shared.id);
    }
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait")
            .field("what", &self.shared.what)
            .finish_non_exhaustive()
    }
}

/// A wait as it stands now, for the engine to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Tells one wait from another while they last.
    pub id: u64,
    /// The resource it is for, when the thread that started it said ([`on_behalf_of`]).
    pub subject: Option<String>,
    /// What it waits for.
    pub what: String,
    /// The answer seen last, if any yet.
    pub last: Option<String>,
    /// How long it has lasted.
    pub elapsed: Duration,
    /// How long it may last.
    pub limit: Option<Duration>,
}

/// The waits going on now, oldest first.
pub fn waiting() -> Vec<Waiting> {
    let waits = WAITS.lock().unwrap_or_else(PoisonError::into_inner);
    waits
        .iter()
        .map(|w| Waiting {
            id: w.id,
            subject: w.subject.as_deref().map(str::to_string),
            what: w.what.clone(),
            last: w
                .last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            elapsed: w.started.elapsed(),
            limit: w.limit,
        })
        .collect()
}

/// Runs `f` with every wait this thread starts meanwhile counted as `subject`'s (a resource's
/// name); for the engine, around the calls it makes for one resource.
pub fn on_behalf_of<R>(subject: &str, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<str>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            SUBJECT.with(|s| *s.borrow_mut() = before);
        }
    }
    let before = SUBJECT.with(|s| s.borrow_mut().replace(Arc::from(subject)));
    let _restore = Restore(before);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(what: &str) -> Option<Waiting> {
        waiting().into_iter().find(|w| w.what == what)
    }

    #[test]
    fn a_wait_is_listed_with_its_subject_and_last_answer_until_dropped() {
        let wait = on_behalf_of("api", || {
            Wait::start("gate of the wait test", Some(Duration::from_secs(30)))
        });
        let seen = mine("gate of the wait test").expect("listed");
        assert_eq!(seen.subject.as_deref(), Some("api"));
        assert_eq!(seen.last, None);
        assert_eq!(seen.limit, Some(Duration::from_secs(30)));
        wait.saw("502 Bad Gateway");
        let seen = mine("gate of the wait test").expect("listed");
        assert_eq!(seen.last.as_deref(), Some("502 Bad Gateway"));
        drop(wait);
        assert_eq!(mine("gate of the wait test"), None);
    }

    #[test]
    fn the_subject_holds_only_inside_on_behalf_of() {
        on_behalf_of("outer", || {
            on_behalf_of("inner", || {
                let _w = Wait::start("inner wait of the subject test", None);
                let seen = mine("inner wait of the subject test").unwrap();
                assert_eq!(seen.subject.as_deref(), Some("inner"));
            });
            let _w = Wait::start("outer wait of the subject test", None);
            let seen = mine("outer wait of the subject test").unwrap();
            assert_eq!(seen.subject.as_deref(), Some("outer"));
        });
        let _w = Wait::start("lone wait of the subject test", None);
        assert_eq!(mine("lone wait of the subject test").unwrap().subject, None);
    }
}
