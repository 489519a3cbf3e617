//! Waits a provider makes (`Retry-After`, backoff, a paused request budget) that end early
//! when the run is interrupted.
//!
//! A rate limit may be waited out for minutes; a Ctrl-C must not have to wait with it. The
//! engine lets the calls in flight finish before it rolls back, so a call that is only waiting
//! (nothing sent, or a refusal received) gives up at once instead, as not done.
//!
//! Signals are process-wide, and so is this flag: the engine's signal handlers set it
//! ([`flag`]), and the engine clears it ([`resume`]) when its rollback starts, so that the undo
//! calls wait out a rate limit like any other call (a second signal ends the process).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// How often a wait looks at the flag.
const POLL: Duration = Duration::from_millis(20);

static INTERRUPTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The flag that ends every wait: the engine registers it with its signal handlers.
pub fn flag() -> Arc<AtomicBool> {
    Arc::clone(&INTERRUPTED)
}

/// Whether waits end at once now.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Ends every wait, now and until [`resume`].
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Lets waits run their course again.
pub fn resume() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// The run was interrupted during a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

/// Sleeps for `duration`, or less when the run is interrupted.
///
/// # Errors
/// [`Interrupted`] when the flag was set before or during the wait.
pub fn sleep(duration: Duration) -> Result<(), Interrupted> {
    let deadline = Instant::now() + duration;
    loop {
        if interrupted() {
            return Err(Interrupted);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(POLL));
    }
}
