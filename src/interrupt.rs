//! Ctrl-C and SIGTERM: the first one asks the run to stop starting work and roll back, and ends
//! the providers' waits ([`cancel`]); a second SIGINT ends the process at once (the journal
//! keeps what was done, the next run recovers it).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

use fabrik_provider::Cancel;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The number of the last signal received, for messages.
static LAST: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Sigint,
    Sigterm,
}

impl Signal {
    fn from_number(number: i32) -> Option<Self> {
        match number {
            SIGINT => Some(Signal::Sigint),
            SIGTERM => Some(Signal::Sigterm),
            _ => None,
        }
    }
}

/// The name reports give it.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Sigint => "SIGINT (Ctrl-C)",
            Signal::Sigterm => "SIGTERM",
        })
    }
}

/// The providers' cancel signal. Signals are the process's, so there is one for the process:
/// every provider context the engine builds carries it ([`cancel`]).
static CANCEL: LazyLock<Cancel> = LazyLock::new(Cancel::new);

/// The signal that ends every provider wait once the run is interrupted, for
/// `fabrik_provider::Context::cancel`. The executor clears it (`Cancel::resume`) when its
/// rollback starts, so that the undo calls wait as usual.
pub fn cancel() -> Cancel {
    CANCEL.clone()
}

/// Installs the handlers and returns the flag they set.
pub fn install() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let last = LAST.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for signal in [SIGINT, SIGTERM] {
        // A second signal after the first one exits with the conventional 128 + signal code.
        let _ = signal_hook::flag::register_conditional_shutdown(
            signal,
            128 + signal,
            Arc::clone(&flag),
        );
        let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
        // Providers waiting out a rate limit, a backoff or a deployment give up at once.
        let _ = signal_hook::flag::register(signal, CANCEL.flag());
        let _ = signal_hook::flag::register_usize(signal, Arc::clone(last), signal as usize);
    }
    flag
}

/// The signal that interrupted the run, if one did (the flag can be seen set a moment before
/// the signal's number is stored).
pub fn received() -> Option<Signal> {
    Signal::from_number(LAST.get()?.load(Ordering::SeqCst) as i32)
}

#[cfg(test)]
mod tests {
    use super::Signal;

    #[test]
    fn signals_are_named_as_reports_always_named_them() {
        assert_eq!(Signal::Sigint.to_string(), "SIGINT (Ctrl-C)");
        assert_eq!(Signal::Sigterm.to_string(), "SIGTERM");
        assert_eq!(
            Signal::from_number(signal_hook::consts::SIGTERM),
            Some(Signal::Sigterm)
        );
        // Nothing stored yet.
        assert_eq!(Signal::from_number(0), None);
    }
}
