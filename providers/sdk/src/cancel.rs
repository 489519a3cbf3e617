//! The cancel signal a run hands its providers in [`crate::Context`], and the one sleep every
//! provider wait goes through.
//!
//! A rate limit may be waited out for minutes, a deployment for ten; a Ctrl-C must not have to
//! wait with them. The engine lets the calls in flight finish before it rolls back, so a call
//! that is only waiting (nothing sent, a refusal received, a deployment polled) stops waiting
//! at once instead, and reports itself as not done ([`crate::Error::interrupted`]). A request
//! already sent is never cut off: its answer is awaited and recorded.
//!
//! The engine makes one [`Cancel`] per run, lets its signal handlers set it ([`Cancel::flag`])
//! and clears it ([`Cancel::resume`]) when its rollback starts, so that the undo calls wait out
//! a rate limit like any other call (a second signal ends the process).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a sleep looks at the signal. A signal handler can only set a flag, so a sleeping
/// thread cannot be woken: it looks often enough that a cancel is answered at once for people.
const POLL: Duration = Duration::from_millis(20);

/// A run's cancel signal: cheap to clone, every clone sees the same signal.
#[derive(Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
}

/// A wait ended early because the run was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the run was interrupted")
    }
}

impl std::error::Error for Interrupted {}

impl Cancel {
    /// A signal that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// The flag behind the signal, for a signal handler to set
    /// (`signal_hook::flag::register`): setting it is [`Cancel::cancel`].
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }

    /// Ends every wait, now and until [`Cancel::resume`].
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Lets waits run their course again.
    pub fn resume(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }

    /// Whether waits end at once now.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `duration`, or less when the run is interrupted.
    ///
    /// # Errors
    /// [`Interrupted`] when the signal was set before or during the wait.
    pub fn sleep(&self, duration: Duration) -> Result<(), Interrupted> {
        let deadline = Instant::now() + duration;
        loop {
            if self.is_cancelled() {
                return Err(Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(POLL));
        }
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_sleep_ends_right_after_a_cancel() {
        let cancel = Cancel::new();
        let other = cancel.clone();
        let sleeper = std::thread::spawn(move || {
            let result = other.sleep(Duration::from_secs(60));
            (result, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(200));
        let cancelled = Instant::now();
        cancel.cancel();
        let (result, woke) = sleeper.join().unwrap();
        assert_eq!(result, Err(Interrupted));
        let late = woke.saturating_duration_since(cancelled);
        assert!(
            late < Duration::from_millis(100),
            "woke {late:?} after the cancel"
        );
    }

    #[test]
    fn a_cancel_holds_until_resumed_and_is_shared_by_clones() {
        let cancel = Cancel::new();
        assert_eq!(cancel.sleep(Duration::from_millis(1)), Ok(()));
        cancel.clone().cancel();
        let started = Instant::now();
        assert_eq!(cancel.sleep(Duration::from_secs(60)), Err(Interrupted));
        assert!(started.elapsed() < Duration::from_millis(50));
        cancel.flag().store(false, Ordering::SeqCst);
        assert!(!cancel.is_cancelled(), "the flag is the signal");
        cancel.cancel();
        cancel.resume();
        assert_eq!(cancel.sleep(Duration::from_millis(30)), Ok(()));
    }
}
