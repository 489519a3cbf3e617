//! What every provider that speaks HTTP needs, written once: one [`Endpoint`] per API (base
//! URL, credentials, timeouts, requests in flight and per window, retries), each request sent
//! with a body limit, what came back (or did not) classified, and the retry loop with capped,
//! jittered backoff that honours `Retry-After`. Each provider keeps only what is its own: its
//! requests, and how its API words errors ([`Dialect`]).
//!
//! Two kinds of trouble are retried differently. A rate limit (429, or 503 with
//! `Retry-After`) says the server is fine and will take the request later: it comes in bursts
//! when other tools share the account, so it is waited out for as long as the provider's
//! `rate_limit_wait` allows, however many answers that takes. Anything else transient (another
//! 5xx, a lost connection) gets a few attempts with backoff. Every wait goes through the run's
//! [`crate::Cancel`] and ends early when the run is interrupted.
//!
//! Requests never carry `Expect: 100-continue` (ureq adds it only when asked, and nothing
//! here asks): some servers, such as PowerDNS 4.7's webserver, never answer it.
//!
//! - `send`: one request and its answer; `retry`: the loop; `budget`: client-side limits;
//!   `endpoint`: the three put together for one API.

mod budget;
mod endpoint;
mod retry;
mod send;

use std::time::Duration;

pub use budget::{Budget, Slot, Slots};
pub use endpoint::{Dialect, Endpoint, Settings};
pub use retry::{Attempt, Noted, Retry, backoff, judge, retrying};
pub use send::{Answer, Method, Request, Unanswered, agent, send};
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

/// A credential (API key, token). Its Debug never shows it; [`Credential::expose`] is the one
/// way to read it, so leaking it takes deliberate code.
#[derive(Clone)]
pub struct Credential(String);

impl Credential {
    /// Wraps the secret.
    pub fn new(secret: String) -> Self {
        Credential(secret)
    }

    /// The secret itself, for the header that carries it.
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

/// Percent-encodes one path segment or query value: everything outside the unreserved set
/// (letters, digits, `-._~`) and the bytes of `keep`.
pub fn encode(segment: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
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

#[cfg(test)]
mod tests {
    use super::*;

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
