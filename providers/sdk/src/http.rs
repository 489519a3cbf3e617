//! What every provider that speaks HTTP needs, written once: one request with timeouts and a
//! body limit, the classification of what came back (or did not), and the retry loop with
//! capped, jittered backoff that honours `Retry-After`. Each provider keeps only what is its
//! own: authentication, and how its API words errors.
//!
//! Two kinds of trouble are retried differently. A rate limit (429, or 503 with
//! `Retry-After`) says the server is fine and will take the request later: it comes in bursts
//! when other tools share the account, so it is waited out for as long as the provider's
//! `rate_limit_wait` allows, however many answers that takes. Anything else transient (another
//! 5xx, a lost connection) gets a few attempts with backoff. Every wait ends early when the run
//! is interrupted ([`crate::wait`]).
//!
//! Requests never carry `Expect: 100-continue` (ureq adds it only when asked, and nothing
//! here asks): some servers, such as PowerDNS 4.7's webserver, never answer it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub use ureq;

use crate::{Attributes, Error, ErrorKind, Field, FieldKind};

/// The configuration field, in every HTTP provider's `providers:` block, that says how long
/// one call may wait out rate limits.
pub const RATE_LIMIT_WAIT: &str = "rate_limit_wait";
/// How long one call waits out rate limits unless the configuration says otherwise: long
/// enough for Cloudflare's five-minute block, short enough that a stuck apply shows.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(5 * 60);

/// The [`RATE_LIMIT_WAIT`] field, for [`crate::Provider::config_fields`].
pub fn rate_limit_wait_field() -> Field {
    Field::optional(
        RATE_LIMIT_WAIT,
        FieldKind::Duration,
        "How long one request may wait out rate limits (429, or 503 with Retry-After) before \
         it fails, such as \"10m\" (default \"5m\"; \"0s\" fails at the first one).",
    )
}

/// The [`RATE_LIMIT_WAIT`] of a `providers.<provider>` block, or `default` when it says none.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a value that is not a duration.
pub fn rate_limit_wait(
    config: &Attributes,
    provider: &str,
    default: Duration,
) -> Result<Duration, Error> {
    Ok(crate::config_duration(config, provider, RATE_LIMIT_WAIT)?.unwrap_or(default))
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Whether repeating the request after an unknown outcome is harmless. A POST (a create)
    /// is not: a second one after a lost answer may make a second object.
    pub fn idempotent(self) -> bool {
        self != Method::Post
    }
}

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub query: &'a [(&'a str, &'a str)],
    /// JSON, sent with `Content-Type: application/json`; `None` sends no body at all.
    pub body: Option<&'a [u8]>,
}

/// An answer of any status.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<Duration>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the request may be sent again: a 429 was refused before anything was done; a
    /// 5xx may have been done, so only an idempotent request is repeated.
    pub fn worth_retrying(&self, method: Method) -> bool {
        self.status == 429 || (self.status >= 500 && method.idempotent())
    }

    /// Whether the server limits the rate: a 429, or a 503 that says when to come back. Such
    /// an answer is waited out for as long as [`Retry::rate_limit_wait`] allows.
    pub fn rate_limited(&self) -> bool {
        self.status == 429 || (self.status == 503 && self.retry_after.is_some())
    }
}

/// A request that got no answer.
#[derive(Debug)]
pub struct Unanswered {
    pub kind: ErrorKind,
    /// The request surely never reached the server (refused, no route, no name), so even a
    /// POST may be sent again.
    pub nothing_sent: bool,
    pub message: String,
}

impl Unanswered {
    pub fn worth_retrying(&self, method: Method) -> bool {
        self.kind == ErrorKind::Transient && (self.nothing_sent || method.idempotent())
    }
}

impl From<ureq::Error> for Unanswered {
    fn from(e: ureq::Error) -> Self {
        use std::io::ErrorKind as Io;
        use ureq::Error as E;
        use ureq::Timeout as T;
        let (kind, nothing_sent) = match &e {
            E::Io(io) => match io.kind() {
                Io::ConnectionRefused | Io::AddrNotAvailable => (ErrorKind::Transient, true),
                _ => (ErrorKind::Transient, false),
            },
            E::Timeout(T::Resolve | T::Connect) => (ErrorKind::Transient, true),
            E::Timeout(_) | E::Protocol(_) => (ErrorKind::Transient, false),
            E::ConnectionFailed | E::HostNotFound => (ErrorKind::Transient, true),
            E::BadUri(_) | E::Http(_) => (ErrorKind::InvalidInput, false),
            _ => (ErrorKind::Fatal, false),
        };
        let message = match &e {
            E::Io(io) => format!("no answer: {io}"),
            E::Timeout(t) => format!("no answer: timed out ({t})"),
            other => format!("no answer: {other}"),
        };
        Unanswered {
            kind,
            nothing_sent,
            message,
        }
    }
}

/// An agent that reports every status as an answer, follows no redirect and gives up on a
/// connection after `connect` and on a whole request after `total`.
pub fn agent(user_agent: &str, connect: Duration, total: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(connect))
        .timeout_global(Some(total))
        .http_status_as_error(false)
        // An API that redirects is shown, not followed.
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(user_agent)
        .build()
        .into()
}

/// Sends one request and reads the answer (at most `limit` bytes of it).
///
/// # Errors
/// [`Unanswered`] when no answer came back.
pub fn send(agent: &ureq::Agent, request: Request<'_>, limit: u64) -> Result<Answer, Unanswered> {
    let Request {
        method,
        url,
        headers,
        query,
        body,
    } = request;
    let result = match (method, body) {
        (Method::Get, _) | (Method::Delete, None) => {
            let mut builder = if method == Method::Get {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            builder = builder.header("Accept", "application/json");
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder.query_pairs(query.iter().copied()).call()
        }
        (Method::Post | Method::Put | Method::Patch | Method::Delete, body) => {
            let mut builder = match method {
                Method::Post => agent.post(url),
                Method::Put => agent.put(url),
                Method::Patch => agent.patch(url),
                _ => agent.delete(url).force_send_body(),
            };
            builder = builder.header("Accept", "application/json");
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            let builder = builder.query_pairs(query.iter().copied());
            match body {
                Some(body) => builder
                    .header("Content-Type", "application/json")
                    .send(body),
                // An action without a body (`POST /deploy?uuid=…`) says nothing of a type.
                None => builder.send_empty(),
            }
        }
    };
    let mut response = result.map_err(Unanswered::from)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(Unanswered::from)?;
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

/// A credential (API key, token). Its Debug never shows it; [`Credential::expose`] is the one
/// way to read it, so leaking it takes deliberate code.
#[derive(Clone)]
pub struct Credential(String);

impl Credential {
    pub fn new(secret: String) -> Self {
        Credential(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(sensitive)")
    }
}

/// The kind of error an HTTP status means, for APIs that use statuses the usual way.
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        400 | 422 => ErrorKind::InvalidInput,
        401 | 403 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Fatal,
    }
}

/// The error for an answer outside 2xx: `what` was asked, the server answered `status` and
/// `said` (its own words, or an excerpt of the body), with a `hint` for the usual cause.
pub fn status_error(what: &str, status: u16, said: &str, kind: ErrorKind, hint: &str) -> Error {
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    Error::new(kind, format!("{what}: HTTP {status}{said}{hint}"))
}

/// `url` as a base for requests: trimmed, without a trailing `/` or the `suffix` (such as
/// `/api/v1`) users often paste with it, and checked to be an http:// or https:// address.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] naming the `field` and an `example`.
pub fn base_url(url: &str, suffix: &str, field: &str, example: &str) -> Result<String, Error> {
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = match suffix {
        "" => trimmed,
        suffix => trimmed.strip_suffix(suffix).unwrap_or(trimmed),
    };
    let scheme_ok = ["http://", "https://"].iter().any(|s| {
        trimmed
            .get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    });
    let host_ok = trimmed
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty());
    if !scheme_ok || !host_ok || trimmed.parse::<ureq::http::Uri>().is_err() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`{field}` must be an http:// or https:// address, such as {example:?}, not {url:?}"
            ),
        ));
    }
    Ok(trimmed.to_string())
}

/// What one attempt came to.
pub enum Attempt<T, E> {
    /// Finished, well or not: no retry.
    Done(Result<T, E>),
    /// Failed in a way worth another attempt, after `after` if the server said how long.
    Again { error: E, after: Option<Duration> },
    /// Refused by a rate limit ([`Answer::rate_limited`]): worth another attempt after
    /// `after` if the server said how long, for as long as [`Retry::rate_limit_wait`] allows.
    Throttled { error: E, after: Option<Duration> },
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
}

impl Noted for Error {
    fn noted(mut self, note: &str) -> Self {
        self.message.push_str(note);
        self.retried()
    }
}

/// Runs `attempt` until it is done. Between attempts it waits what the server asked
/// (`Retry-After`) or the backoff. It gives up on a rate limit once waiting longer would pass
/// `retry.rate_limit_wait` (waits counted over the whole call), on any other failure after
/// `retry.attempts` or when the server asks for more than `retry.max_retry_after`, and at once
/// when the run is interrupted ([`crate::wait`]). `server` names the other side in messages
/// ("Cloudflare"), `provider` the spec's configuration block that can raise the wait.
///
/// # Errors
/// The last attempt's error, noted with why no more were made.
pub fn retrying<T, E: Noted>(
    retry: &Retry,
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
        let (error, wait) = match attempt() {
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
                (error, wait)
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
                (error, wait)
            }
        };
        if crate::wait::sleep(wait).is_err() {
            return Err(error.noted(&format!(
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

/// Percent-encodes one path segment or query value: everything outside the unreserved set
/// (letters, digits, `-._~`) and the bytes of `keep`.
pub fn encode(segment: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b if keep.contains(&b) => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` where it was cut.
pub fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A counting semaphore: at most `max` requests in flight at once.
pub struct Slots {
    max: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// One request's place among the [`Slots`]; given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Slots {
    pub fn new(max: usize) -> Self {
        Slots {
            max,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub fn acquire(&self) -> Slot<'_> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let result: Result<(), Error> = retrying(&retry, "the server", "test", || {
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
        let result: Result<(), Error> = retrying(&retry, "the server", "test", || {
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
        let result: Result<u32, Error> = retrying(&retry, "the server", "test", || {
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
        let result: Result<u32, Error> = retrying(&retry, "the server", "test", || {
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
        let result: Result<(), Error> = retrying(&retry, "the server", "test", || {
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
        let result: Result<(), Error> = retrying(&retry, "the server", "test", || {
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
            let result: Result<(), Error> = retrying(&retry, "the server", "test", || {
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

    #[test]
    fn only_what_cannot_have_been_done_twice_is_repeated() {
        let answer = |status| Answer {
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(answer(429).worth_retrying(Method::Post));
        assert!(answer(503).worth_retrying(Method::Patch));
        assert!(!answer(503).worth_retrying(Method::Post));
        assert!(!answer(422).worth_retrying(Method::Get));
        let refused = Unanswered {
            kind: ErrorKind::Transient,
            nothing_sent: true,
            message: String::new(),
        };
        assert!(refused.worth_retrying(Method::Post));
        let cut = Unanswered {
            nothing_sent: false,
            ..refused
        };
        assert!(!cut.worth_retrying(Method::Post));
        assert!(cut.worth_retrying(Method::Delete));
    }

    #[test]
    fn base_urls_are_trimmed_and_checked() {
        let base = |url| base_url(url, "/api/v1", "url", "http://127.0.0.1:8081");
        assert_eq!(base(" http://h:1/api/v1/ ").unwrap(), "http://h:1");
        assert_eq!(base("HTTPS://h").unwrap(), "HTTPS://h");
        for bad in ["h:1", "ftp://h", "http://", "http://h h"] {
            let e = base(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{bad}");
            assert!(e.message.contains("`url`"), "{e}");
        }
        assert_eq!(
            format!("{:?}", Credential::new("s3cret".into())),
            "(sensitive)"
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode("a b/c=d", b""), "a%20b%2Fc%3Dd");
        assert_eq!(encode("0=2F26.x", b"="), "0=2F26.x");
    }

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("hi", 5), "hi");
    }
}
