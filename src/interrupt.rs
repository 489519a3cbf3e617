//! Ctrl-C and SIGTERM: the first one asks the run to stop starting work and roll back, and ends
//! the providers' waits ([`cancel`]); a second SIGINT ends the process at once (the journal
//! keeps what was done, the next run recovers it).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

use fabrik_provider::Cancel;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The number of the last signal received, for messages.
static LAST: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

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

/// The name of the signal that interrupted the run, if one did.
pub fn received() -> Option<&'static str> {
    match LAST.get()?.load(Ordering::SeqCst) as i32 {
        SIGINT => Some("SIGINT (Ctrl-C)"),
        SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}
