//! The Cloudflare API v4 as this provider uses it: its requests through the SDK's
//! [`Endpoint`] (bearer token, timeouts, a client-side request budget, retries of what is worth
//! retrying honouring `Retry-After`, waits the run's interrupt ends), and the
//! `{success, errors, messages, result}` envelope mapped to error kinds.
//!
//! Cloudflare allows 1,200 requests per 5 minutes per user and, past that, refuses every call
//! for the next 5 minutes. A token bucket of that size spends the budget no faster than it
//! refills, so a large apply slows down instead of locking the account out. Requests never
//! carry `Expect: 100-continue` (ureq adds it only when asked to, and nothing here asks).

use std::time::Duration;

use fabrik_provider::http::{
    self, Answer, Budget, Credential, Dialect, Endpoint, Noted, Retry, Settings,
};
use fabrik_provider::{Cancel, Error, ErrorKind};
use serde_json::Value;

pub use fabrik_provider::http::Method;

/// Cloudflare as an endpoint: lists of many thousands of records are a few MB; Cloudflare also
/// limits each IP to 200 requests per second, so a few in flight are enough.
const SETTINGS: Settings = Settings {
    provider: "cloudflare",
    server: "Cloudflare",
    user_agent: concat!("fabrik-cloudflare/", env!("CARGO_PKG_VERSION")),
    connect_timeout: Duration::from_secs(5),
    request_timeout: Duration::from_secs(60),
    body_limit: 256 * 1024 * 1024,
    max_in_flight: 4,
};
const EXCERPT: usize = 300;

/// Error codes Cloudflare answers for a record that already exists: 81057 "The record already
/// exists", 81058 "An identical record already exists" (duplicates moved from the first to the
/// second), 81053/81054 "a record with that host already exists" (CNAME beside other data).
pub const EXISTS: [u32; 4] = [81_057, 81_058, 81_053, 81_054];
/// "Record does not exist."
pub const MISSING: u32 = 81_044;

/// The API token: never shown.
pub use fabrik_provider::http::Credential as Token;

/// When and how often a failed request is tried again, and how the budget is paced.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each next one.
    pub base: Duration,
    /// No backoff wait is longer than this.
    pub max_delay: Duration,
    /// A `Retry-After` on a failure other than a rate limit longer than this is not waited
    /// out: the call fails as transient and the engine decides.
    pub max_retry_after: Duration,
    /// How long one call may wait out 429s, in all (the configuration's `rate_limit_wait`
    /// replaces it).
    pub rate_limit_wait: Duration,
    /// The window the request budget is counted over (Cloudflare: 5 minutes).
    pub budget_window: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            attempts: 5,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            rate_limit_wait: http::DEFAULT_RATE_LIMIT_WAIT,
            budget_window: Duration::from_secs(300),
        }
    }
}

impl Tuning {
    fn retry(&self) -> Retry {
        Retry {
            attempts: self.attempts,
            base: self.base,
            max_delay: self.max_delay,
            max_retry_after: self.max_retry_after,
            rate_limit_wait: self.rate_limit_wait,
        }
    }
}

/// A failed call: the error for the engine, plus the Cloudflare codes for the provider's own
/// decisions (a duplicate is resolved by a lookup, not by reading the message).
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub status: Option<u16>,
    pub codes: Vec<u32>,
}

impl Failure {
    pub fn has_code(&self, codes: &[u32]) -> bool {
        self.codes.iter().any(|c| codes.contains(c))
    }

    pub fn kind(&self) -> ErrorKind {
        self.error.kind
    }
}

impl Noted for Failure {
    fn noted(self, note: &str) -> Self {
        Failure {
            error: self.error.noted(note),
            ..self
        }
    }

    fn interrupted(self, note: &str) -> Self {
        Failure {
            error: self.error.interrupted(note),
            ..self
        }
    }
    fn brief(&self) -> Option<String> {
        self.error.brief()
    }
}

/// A failure without an answer (none came, or the call never went out).
impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error,
            status: None,
            codes: Vec::new(),
        }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        f.error
    }
}

pub type Outcome<T> = Result<T, Failure>;

/// How Cloudflare words its answers: the envelope, its codes kept for the provider's decisions.
struct Envelope;

impl Dialect for Envelope {
    type Output = Value;
    type Failure = Failure;

    fn accepted(&self, what: &str, answer: Answer) -> Outcome<Value> {
        parse_success(what, &answer.body)
    }

    fn refused(&self, what: &str, answer: &Answer) -> Failure {
        status_failure(what, answer.status, &answer.body)
    }
}

/// A client for one Cloudflare account (one token).
#[derive(Debug)]
pub struct Api {
    /// At `https://api.cloudflare.com/client/v4`, without a trailing `/`.
    endpoint: Endpoint<Envelope>,
}

impl Api {
    /// `url` is the API's base, such as `https://api.cloudflare.com/client/v4`; `budget` the
    /// requests allowed per [`Tuning::budget_window`]. Waits end when `cancel` is set.
    pub fn new(
        url: &str,
        token: Token,
        budget: u32,
        tuning: Tuning,
        cancel: Cancel,
    ) -> Result<Api, Error> {
        let base = http::base_url(url, "", "api_url", "https://api.cloudflare.com/client/v4")?;
        if budget == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "`request_budget` must be at least 1",
            ));
        }
        let bearer = Credential::new(format!("Bearer {}", token.expose()));
        Ok(Api {
            endpoint: Endpoint::new(SETTINGS, base, Envelope, tuning.retry(), cancel)
                .header("Authorization", bearer)
                .budget(Budget::new(budget, tuning.budget_window)),
        })
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Outcome<Value> {
        self.call(Method::Get, path, query, None)
    }

    /// One request, tried again on connection failures, 429 and 5xx (POST only where the
    /// server cannot have acted on it). Returns the whole envelope of a successful answer.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Outcome<Value> {
        // Cloudflare's contract declares a JSON body for DELETE; an empty object says nothing.
        let empty = Value::Object(Default::default());
        let body = match (method, body) {
            (Method::Delete, None) => Some(&empty),
            (_, body) => body,
        };
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON values always serialize"));
        self.endpoint.call(method, path, query, body.as_deref())
    }
}

/// A 2xx answer: the envelope, unless it says `success: false` after all.
fn parse_success(what: &str, body: &str) -> Outcome<Value> {
    let envelope: Value = serde_json::from_str(body).map_err(|e| Failure {
        error: Error::new(
            ErrorKind::Fatal,
            format!(
                "{what}: Cloudflare answered with something that is not JSON ({e}): {}",
                excerpt(body)
            ),
        ),
        status: None,
        codes: Vec::new(),
    })?;
    if envelope.get("success") == Some(&Value::Bool(false)) {
        return Err(status_failure(what, 400, body));
    }
    Ok(envelope)
}

/// The failure for an answer outside 2xx, its kind from the status and Cloudflare's codes.
pub fn status_failure(what: &str, status: u16, body: &str) -> Failure {
    let (codes, said) = errors_of(body);
    let kind = if codes.iter().any(|c| EXISTS.contains(c)) {
        ErrorKind::Conflict
    } else if codes.contains(&MISSING) {
        ErrorKind::NotFound
    } else {
        http::kind_of_status(status)
    };
    let hint = match status {
        401 | 403 => {
            " (check the provider's `token`: it needs Zone Read and DNS Write on the zone)"
        }
        _ => "",
    };
    Failure {
        error: http::status_error(what, status, &said, kind, hint),
        status: Some(status),
        codes,
    }
}

/// The codes and messages of an error envelope (`errors: [{code, message}]`), or an excerpt
/// of a body that is not one.
fn errors_of(body: &str) -> (Vec<u32>, String) {
    let Ok(envelope) = serde_json::from_str::<Value>(body) else {
        return (Vec::new(), excerpt(body.trim()));
    };
    let errors = envelope
        .get("errors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let codes = errors
        .iter()
        .filter_map(|e| e.get("code").and_then(Value::as_u64))
        .map(|c| c as u32)
        .collect();
    let said = errors
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(Value::as_u64).unwrap_or(0);
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            format!("{message} (code {code})")
        })
        .collect::<Vec<_>>()
        .join("; ");
    (codes, said)
}

fn excerpt(text: &str) -> String {
    http::excerpt(text, EXCERPT)
}

/// Percent-encodes one path segment or query value.
pub fn encode(segment: &str) -> String {
    http::encode(segment, b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_codes_decide_the_kind() {
        let body = |code: u32| {
            format!(
                r#"{{"success":false,"errors":[{{"code":{code},"message":"m"}}],"messages":[],"result":null}}"#
            )
        };
        let cases = [
            (400, body(81_058), ErrorKind::Conflict),
            (400, body(81_057), ErrorKind::Conflict),
            (400, body(81_053), ErrorKind::Conflict),
            (404, body(81_044), ErrorKind::NotFound),
            (400, body(9_005), ErrorKind::InvalidInput),
            (401, body(10_000), ErrorKind::Unauthorized),
            (403, body(10_000), ErrorKind::Unauthorized),
            (429, body(971), ErrorKind::Transient),
            (
                502,
                "<html>bad gateway</html>".to_string(),
                ErrorKind::Transient,
            ),
            (418, String::new(), ErrorKind::Fatal),
        ];
        for (status, body, kind) in cases {
            let failure = status_failure("GET x", status, &body);
            assert_eq!(failure.kind(), kind, "{status} {body}");
            assert!(
                failure.error.message.contains(&format!("HTTP {status}")),
                "{}",
                failure.error.message
            );
        }
        let failure = status_failure("POST x", 400, &body(81_058));
        assert!(failure.has_code(&EXISTS));
        assert!(failure.error.message.ends_with("m (code 81058)"));
    }

    #[test]
    fn a_success_status_with_success_false_is_an_error() {
        let err = parse_success(
            "GET x",
            r#"{"success":false,"errors":[{"code":9005,"message":"bad"}],"result":null}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let api = Api::new(
            "https://api.example.test/client/v4",
            Token::new("s3cret".into()),
            10,
            Tuning::default(),
            Cancel::new(),
        )
        .unwrap();
        assert!(!format!("{api:?}").contains("s3cret"));
    }

    #[test]
    fn bad_urls_and_budgets_are_invalid_input() {
        for url in ["api.cloudflare.com", "ftp://x", ""] {
            let err = Api::new(
                url,
                Token::new("t".into()),
                10,
                Tuning::default(),
                Cancel::new(),
            )
            .unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{url}");
        }
        let err = Api::new(
            "https://api.cloudflare.com/client/v4",
            Token::new("t".into()),
            0,
            Tuning::default(),
            Cancel::new(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }
}
