//! The retry loop: capped, jittered backoff for what failed, `Retry-After` honoured, rate
//! limits waited out by time rather than by count, and every wait through the run's
//! [`Cancel`], so that an interrupt ends it at once.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use super::{Answer, DEFAULT_RATE_LIMIT_WAIT, Method, RATE_LIMIT_WAIT, Unanswered};
use crate::wait::Wait;
use crate::{Cancel, Error};

/// When and how often a failed request is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included, for failures other than rate limits.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each next one.
    pub base: Duration,
    /// No backoff wait is longer than this.
    pub max_delay: Duration,
    /// A `Retry-After` on a failure other than a rate limit (a 502) longer than this is not
    /// waited out: the call fails as transient and the engine decides.
    pub max_retry_after: Duration,
    /// How long one call may wait out rate limits, in all ([`RATE_LIMIT_WAIT`]).
    pub rate_limit_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(30),
            rate_limit_wait: DEFAULT_RATE_LIMIT_WAIT,
        }
    }
}

/// What one attempt came to.
pub enum Attempt<T, E> {
    /// Finished, well or not: no retry.
    Done(Result<T, E>),
    /// Failed in a way worth another attempt, after `after` if the server said how long.
    Again {
        /// What this attempt met, reported if no other attempt is made.
        error: E,
        /// What `Retry-After` asked.
        after: Option<Duration>,
    },
    /// Refused by a rate limit ([`Answer::rate_limited`]): worth another attempt after
    /// `after` if the server said how long, for as long as [`Retry::rate_limit_wait`] allows.
    Throttled {
        /// What this attempt met, reported if no other attempt is made.
        error: E,
        /// What `Retry-After` asked.
        after: Option<Duration>,
    },
}

/// Judges what one attempt of `method` got: a 2xx goes to `success`, another status to
/// `refused` (which words the error), no answer to `unanswered`; the errors worth another try
/// (see [`Answer::worth_retrying`], [`Unanswered::worth_retrying`]) come back as
/// [`Attempt::Throttled`] when the server limits the rate, else as [`Attempt::Again`], with
/// the server's `Retry-After`.
pub fn judge<T, E>(
    method: Method,
    outcome: Result<Answer, Unanswered>,
    success: impl FnOnce(Answer) -> Result<T, E>,
    refused: impl FnOnce(&Answer) -> E,
    unanswered: impl FnOnce(&Unanswered) -> E,
) -> Attempt<T, E> {
    match outcome {
        Ok(answer) if answer.is_success() => Attempt::Done(success(answer)),
        Ok(answer) => {
            let error = refused(&answer);
            if !answer.worth_retrying(method) {
                Attempt::Done(Err(error))
            } else if answer.rate_limited() {
                Attempt::Throttled {
                    error,
                    after: answer.retry_after,
                }
            } else {
                Attempt::Again {
                    error,
                    after: answer.retry_after,
                }
            }
        }
        Err(failure) => {
            let error = unanswered(&failure);
            if failure.worth_retrying(method) {
                Attempt::Again { error, after: None }
            } else {
                Attempt::Done(Err(error))
            }
        }
    }
}

/// An error a retry loop can add a note to ("after 4 attempts") when it gives up.
pub trait Noted {
    /// The error with `note` added, marked as retried (see [`Error::retried`]).
    fn noted(self, note: &str) -> Self;

    /// The error with `note` added, marked as cut short by the run's interrupt (see
    /// [`Error::cut_short`]).
    fn interrupted(self, note: &str) -> Self;

    /// The error in a few words, shown while its retry is waited for ([`crate::wait`]).
    fn brief(&self) -> Option<String> {
        None
    }
}

impl Noted for Error {
    fn brief(&self) -> Option<String> {
        self.message.lines().next().map(str::to_string)
    }

    fn noted(mut self, note: &str) -> Self {
        self.message.push_str(note);
        self.retried()
    }

    fn interrupted(self, note: &str) -> Self {
        self.noted(note).cut_short()
    }
}

/// Runs `attempt` until it is done. Between attempts it waits what the server asked
/// (`Retry-After`) or the backoff. It gives up on a rate limit once waiting longer would pass
/// `retry.rate_limit_wait` (waits counted over the whole call), on any other failure after
/// `retry.attempts` or when the server asks for more than `retry.max_retry_after`, and at once
/// when the run is interrupted (`cancel`). `server` names the other side in messages
/// ("Cloudflare"), `provider` the spec's configuration block that can raise the wait.
///
/// # Errors
/// The last attempt's error, noted with why no more were made.
pub fn retrying<T, E: Noted>(
    retry: &Retry,
    cancel: &Cancel,
    server: &str,
    provider: &str,
    mut attempt: impl FnMut() -> Attempt<T, E>,
) -> Result<T, E> {
    // Failures other than rate limits, and rate-limited answers, counted apart: a burst of
    // 429s says nothing about whether the server is broken.
    let mut failed = 0;
    let mut throttled = 0;
    let mut waited = Duration::ZERO;
    loop {
        let (error, wait, limited) = match attempt() {
            Attempt::Done(result) => return result,
            Attempt::Again { error, after } => {
                failed += 1;
                if failed >= retry.attempts {
                    return Err(error.noted(&format!(" (after {failed} attempts)")));
                }
                let wait = match after {
                    Some(after) if after > retry.max_retry_after => {
                        return Err(error.noted(&format!(
                            " ({server} asks to wait {} s before trying again)",
                            after.as_secs()
                        )));
                    }
                    Some(after) => after,
                    None => backoff(retry, failed),
                };
                (error, wait, false)
            }
            Attempt::Throttled { error, after } => {
                throttled += 1;
                let left = retry.rate_limit_wait.saturating_sub(waited);
                // `Retry-After: 0` would have us ask again at once, as fast as it answers.
                let after = after.filter(|a| !a.is_zero());
                let wait = match after {
                    // Waiting part of what the server asks only earns another refusal.
                    Some(after) if after > left => {
                        return Err(error.noted(&past_rate_limit_wait(
                            retry, server, provider, waited, after,
                        )));
                    }
                    Some(after) => after,
                    None if left.is_zero() => {
                        return Err(error
                            .noted(&past_rate_limit_wait(retry, server, provider, waited, left)));
                    }
                    None => backoff(retry, throttled).min(left),
                };
                waited += wait;
                (error, wait, true)
            }
        };
        // Shown to people while it lasts: a `Retry-After` may be minutes.
        let shown = Wait::start(
            if limited {
                format!("{server} limits the rate, asking again")
            } else {
                format!("asking {server} again")
            },
            Some(wait),
        );
        if let Some(brief) = error.brief() {
            shown.saw(brief);
        }
        let slept = cancel.sleep(wait);
        drop(shown);
        if slept.is_err() {
            return Err(error.interrupted(&format!(
                " (interrupted while waiting to try again; {server} was not asked again)"
            )));
        }
    }
}

/// The note for a call that stops waiting out a rate limit: how long it waited, what the
/// server still asks (`more`, zero when it did not say) and where the wait is raised.
fn past_rate_limit_wait(
    retry: &Retry,
    server: &str,
    provider: &str,
    waited: Duration,
    more: Duration,
) -> String {
    let budget = humantime::format_duration(retry.rate_limit_wait);
    let raise = format!("raise `{RATE_LIMIT_WAIT}` in `providers.{provider}` to wait longer");
    if waited.is_zero() {
        return format!(
            " ({server} asks to wait {} before trying again, longer than `{RATE_LIMIT_WAIT}` \
             ({budget}) allows: {raise})",
            asked(more)
        );
    }
    let asks = if more.is_zero() {
        String::new()
    } else {
        format!(" and asks to wait {} more", asked(more))
    };
    format!(
        " ({server} still limits the rate after {} of waiting{asks}, past \
         `{RATE_LIMIT_WAIT}` ({budget}): {raise})",
        rounded(waited)
    )
}

/// A wait a server asked for, as `Retry-After` says it: in seconds (in milliseconds only below
/// one, which no header can say but a test may).
fn asked(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A duration for people: whole seconds from a second up, else milliseconds.
fn rounded(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs_f64().round() as u64)
    } else {
        Duration::from_millis(d.as_millis() as u64)
    })
}

/// The wait before attempt `attempt + 1`: exponential, capped, with full jitter in its upper
/// half so that clients failing together do not retry together.
pub fn backoff(retry: &Retry, attempt: u32) -> Duration {
    let exp = retry
        .base
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(retry.max_delay);
    let half = exp / 2;
    let jitter = RandomState::new().build_hasher().finish() % (half.as_millis() as u64 + 1);
    half + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn backoff_grows_and_stays_capped() {
        let retry = Retry {
            attempts: 10,
            base: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            max_retry_after: Duration::from_secs(1),
            rate_limit_wait: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let exp = (100u64 << (attempt - 1)).min(800);
            let wait = backoff(&retry, attempt).as_millis() as u64;
            assert!(
                (exp / 2..=exp).contains(&wait),
                "attempt {attempt}: {wait} ms"
            );
        }
    }

    #[test]
    fn the_loop_stops_after_its_attempts_and_on_long_waits() {
        let retry = Retry {
            attempts: 3,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_secs(1),
            rate_limit_wait: Duration::from_secs(1),
        };
        let mut tries = 0;
        let result: Result<(), Error> =
            retrying(&retry, &Cancel::new(), "the server", "test", || {
                tries += 1;
                Attempt::Again {
                    error: Error::new(ErrorKind::Transient, "busy"),
                    after: None,
                }
            });
        assert_eq!(tries, 3);
        let error = result.unwrap_err();
        assert_eq!(error.message, "busy (after 3 attempts)");
        assert!(error.retried, "the engine is told not to try again");

        let mut tries = 0;
        let result: Result<(), Error> =
            retrying(&retry, &Cancel::new(), "the server", "test", || {
                tries += 1;
                Attempt::Again {
                    error: Error::new(ErrorKind::Transient, "slow down"),
                    after: Some(Duration::from_secs(60)),
                }
            });
        assert_eq!(tries, 1, "a wait longer than allowed is not waited out");
        assert_eq!(
            result.unwrap_err().message,
            "slow down (the server asks to wait 60 s before trying again)"
        );

        let mut tries = 0;
        let result: Result<u32, Error> =
            retrying(&retry, &Cancel::new(), "the server", "test", || {
                tries += 1;
                if tries < 2 {
                    Attempt::Again {
                        error: Error::new(ErrorKind::Transient, "once"),
                        after: Some(Duration::from_millis(1)),
                    }
                } else {
                    Attempt::Done(Ok(tries))
                }
            });
        assert_eq!(result.unwrap(), 2);
    }

    #[test]
    fn a_retry_after_is_announced_as_a_wait_while_it_lasts() {
        let retry = Retry {
            attempts: 2,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_secs(1),
            rate_limit_wait: Duration::from_secs(1),
        };
        let ours = || -> Vec<crate::wait::Waiting> {
            crate::wait::waiting()
                .into_iter()
                .filter(|w| w.what.contains("Retry-test"))
                .collect()
        };
        // What the engine would draw, looked at in the middle of the 300 ms wait.
        let watcher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            ours()
        });
        let mut tries = 0;
        let result: Result<u32, Error> = crate::wait::on_behalf_of("www", || {
            retrying(&retry, &Cancel::new(), "Retry-test", "test", || {
                tries += 1;
                if tries == 1 {
                    Attempt::Throttled {
                        error: Error::new(ErrorKind::Transient, "HTTP 429: slow down\nmore"),
                        after: Some(Duration::from_millis(300)),
                    }
                } else {
                    Attempt::Done(Ok(tries))
                }
            })
        });
        assert_eq!(result.unwrap(), 2);
        assert!(ours().is_empty(), "the wait is over once slept");
        let during = watcher.join().unwrap();
        let [wait] = during.as_slice() else {
            panic!("one wait while the Retry-After is waited out: {during:?}")
        };
        assert_eq!(wait.subject.as_deref(), Some("www"));
        assert_eq!(wait.what, "Retry-test limits the rate, asking again");
        assert_eq!(wait.last.as_deref(), Some("HTTP 429: slow down"));
        assert_eq!(wait.limit, Some(Duration::from_millis(300)));
    }

    #[test]
    fn rate_limits_are_waited_out_by_time_not_by_count() {
        let retry = Retry {
            attempts: 2,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_millis(1),
            rate_limit_wait: Duration::from_millis(100),
        };
        fn throttled<T>(after: Option<Duration>) -> Attempt<T, Error> {
            Attempt::Throttled {
                error: Error::new(ErrorKind::Transient, "HTTP 429"),
                after,
            }
        }
        // Far more refusals than `attempts`, waits far longer than `max_retry_after`.
        let mut tries = 0;
        let result: Result<u32, Error> =
            retrying(&retry, &Cancel::new(), "the server", "test", || {
                tries += 1;
                match tries {
                    1..=6 => throttled(Some(Duration::from_millis(10))),
                    7..=9 => throttled(None),
                    _ => Attempt::Done(Ok(tries)),
                }
            });
        assert_eq!(result.unwrap(), 10);

        // The waits are counted over the whole call: 40 ms each, so the third does not fit.
        let mut tries = 0;
        let result: Result<(), Error> =
            retrying(&retry, &Cancel::new(), "the server", "test", || {
                tries += 1;
                throttled(Some(Duration::from_millis(40)))
            });
        assert_eq!(tries, 3);
        let error = result.unwrap_err();
        assert_eq!(
            error.message,
            "HTTP 429 (the server still limits the rate after 80ms of waiting and asks to wait \
             40 ms more, past `rate_limit_wait` (100ms): raise `rate_limit_wait` in \
             `providers.test` to wait longer)"
        );
        assert!(error.retried, "the engine is told not to try again");

        // A wait longer than the whole allowance is not started; without `Retry-After`, the
        // backoff runs until the allowance is spent; `Retry-After: 0` is not a hot loop.
        let mut tries = 0;
        let result: Result<(), Error> =
            retrying(&retry, &Cancel::new(), "the server", "test", || {
                tries += 1;
                throttled(Some(Duration::from_secs(300)))
            });
        assert_eq!(tries, 1);
        assert_eq!(
            result.unwrap_err().message,
            "HTTP 429 (the server asks to wait 300 s before trying again, longer than \
             `rate_limit_wait` (100ms) allows: raise `rate_limit_wait` in `providers.test` to \
             wait longer)"
        );
        for after in [None, Some(Duration::ZERO)] {
            let started = std::time::Instant::now();
            let mut tries = 0;
            let result: Result<(), Error> =
                retrying(&retry, &Cancel::new(), "the server", "test", || {
                    tries += 1;
                    throttled(after)
                });
            let message = result.unwrap_err().message;
            assert!(tries > 2, "{tries} tries");
            assert!(
                message.contains("still limits the rate after 100ms of waiting, past"),
                "{message}"
            );
            assert!(started.elapsed() >= Duration::from_millis(100));
        }
    }

    #[test]
    fn a_rate_limit_is_a_429_or_a_503_that_says_when() {
        let answer = |status, retry_after| Answer {
            status,
            body: String::new(),
            retry_after,
        };
        let soon = Some(Duration::from_secs(1));
        assert!(answer(429, None).rate_limited());
        assert!(answer(503, soon).rate_limited());
        assert!(!answer(503, None).rate_limited());
        assert!(!answer(502, soon).rate_limited());
        let throttled = |status, retry_after, method| {
            let outcome = Ok(answer(status, retry_after));
            match judge(method, outcome, |_| Ok(()), |_| (), |_| ()) {
                Attempt::Throttled { .. } => "throttled",
                Attempt::Again { .. } => "again",
                Attempt::Done(_) => "done",
            }
        };
        assert_eq!(throttled(429, None, Method::Post), "throttled");
        assert_eq!(throttled(503, soon, Method::Get), "throttled");
        assert_eq!(throttled(503, None, Method::Get), "again");
        // A 503 may have been acted on: a create is not sent twice, whatever it says.
        assert_eq!(throttled(503, soon, Method::Post), "done");
    }
}
