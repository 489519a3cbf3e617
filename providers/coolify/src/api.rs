//! The Coolify REST API (`/api/v1`) as this provider uses it: its requests through the SDK's
//! [`Endpoint`] (bearer token, timeouts, retries of what is worth retrying: 429 with
//! `Retry-After`, 5xx on idempotent calls, connections that never reached the server; waits the
//! run's interrupt ends) and its answers mapped to error kinds.
//!
//! Coolify answers errors as `{"message": …, "errors": …}` where `errors` comes in three shapes
//! (a map of lists, a map of strings, a bare list), so it is kept as a JSON value and flattened
//! for the message; the field a map names is kept in [`Error::field`]. A 409 on an application
//! write carries `conflicts[]`: the resources already using a domain, which the message names.

use std::time::Duration;

use fabrik_provider::http::{self, Answer, Credential, Dialect, Endpoint, Settings};
use fabrik_provider::{Cancel, Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::Value;

pub use fabrik_provider::http::{Method, Retry};

/// A Coolify instance as an endpoint. Coolify answers a create only once it has written the
/// application and its proxy labels, which can take seconds; a deployment's log comes back
/// inside its JSON, and long builds log a lot; Coolify rate-limits per user (200 a minute by
/// default), so a burst of parallel calls only buys 429s.
const SETTINGS: Settings = Settings {
    provider: "coolify",
    server: "the server",
    user_agent: concat!("fabrik-coolify/", env!("CARGO_PKG_VERSION")),
    connect_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(60),
    body_limit: 64 * 1024 * 1024,
    max_in_flight: 4,
};
/// How much of an error body goes into a message.
const EXCERPT: usize = 400;

/// The API token: never shown.
pub use fabrik_provider::http::Credential as Token;

/// How Coolify is retried: its rate-limit window is a minute, so a `Retry-After` up to that is
/// worth waiting out, on a failure other than a rate limit too.
pub fn default_retry() -> Retry {
    Retry {
        attempts: 5,
        base: Duration::from_millis(500),
        max_delay: Duration::from_secs(8),
        max_retry_after: Duration::from_secs(65),
        rate_limit_wait: http::DEFAULT_RATE_LIMIT_WAIT,
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Reply {
    pub body: String,
}

impl Reply {
    pub fn json<T: for<'de> Deserialize<'de>>(&self, what: &str) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Fatal,
                format!(
                    "Coolify answered {what} with something unexpected ({e}): {}",
                    excerpt(&self.body)
                ),
            )
        })
    }
}

/// A text field of an object Coolify answered, `""` when absent.
pub fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A database's or service's status: up and, where Coolify can tell, healthy.
pub fn is_up(status: &str) -> bool {
    status == "running:healthy" || status == "running:unknown"
}

/// How Coolify words its answers.
struct Words;

impl Dialect for Words {
    type Output = Reply;
    type Failure = Error;

    fn accepted(&self, _what: &str, answer: Answer) -> Result<Reply> {
        Ok(Reply { body: answer.body })
    }

    fn refused(&self, what: &str, answer: &Answer) -> Error {
        status_error(what, answer.status, &answer.body)
    }
}

/// A client for one Coolify instance.
#[derive(Debug)]
pub struct Api {
    /// At `<url>/api/v1`. The API does not redirect; an answer that does (a login page in
    /// front of it) is shown as it is, not followed.
    endpoint: Endpoint<Words>,
}

impl Api {
    /// `url` is the instance's address (`https://coolify.example.com`); a trailing `/` or
    /// `/api/v1` is tolerated. Waits end when `cancel` is set.
    pub fn new(url: &str, token: Token, retry: Retry, cancel: Cancel) -> Result<Api> {
        let base = http::base_url(url, "/api/v1", "url", "https://coolify.example.com")?;
        if token.expose().trim().is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "`token` of provider coolify must not be empty",
            ));
        }
        let bearer = Credential::new(format!("Bearer {}", token.expose()));
        Ok(Api {
            endpoint: Endpoint::new(SETTINGS, format!("{base}/api/v1"), Words, retry, cancel)
                .header("Authorization", bearer),
        })
    }

    /// The run's cancel signal, for the waits of a call (a deployment, a deletion).
    pub fn cancel(&self) -> &Cancel {
        self.endpoint.cancel()
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Reply> {
        self.call(Method::Get, path, query, None)
    }

    /// The object at `path` (`what` names it in errors); `None` when Coolify has none.
    pub fn get_found(&self, path: &str, what: &str) -> Result<Option<Value>> {
        match self.get(path, &[]) {
            Ok(reply) => reply.json(what).map(Some),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn post(&self, path: &str, query: &[(&str, &str)], body: Option<&Value>) -> Result<Reply> {
        self.call(Method::Post, path, query, body)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Result<Reply> {
        self.call(Method::Patch, path, &[], Some(body))
    }

    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<Reply> {
        self.call(Method::Delete, path, query, None)
    }

    /// One request, tried again on connection failures, 429 and 5xx (POST only where the
    /// server cannot have acted on it). `path` is below `/api/v1`, such as `/applications`.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply> {
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON values always serialize"));
        self.endpoint.call(method, path, query, body.as_deref())
    }
}

/// The error for an answer outside 2xx, with the server's message, its field errors and, for a
/// domain conflict, the resources that hold the domain; the field it refused, where it names
/// one.
pub fn status_error(what: &str, status: u16, body: &str) -> Error {
    let kind = match status {
        // Coolify answers 405 to a method a route does not take (GET /deploy).
        405 => ErrorKind::InvalidInput,
        other => http::kind_of_status(other),
    };
    let hint = match status {
        401 | 403 => {
            " (check the provider's `token` and its abilities: read, read:sensitive, write, deploy)"
        }
        _ => "",
    };
    let error = http::status_error(what, status, &server_message(body), kind, hint);
    match refused_field(body) {
        Some(field) => error.with_field(field),
        None => error,
    }
}

/// The request field an error body is about: the first field of its `errors` map (a 422's
/// validation), or the field its `message` names where Coolify refuses without a map. Coolify
/// answers a create on a server with several destinations and no `destination_uuid` with a
/// 400 whose only words are "Server has multiple destinations and you do not set
/// destination_uuid.": the field is in that sentence and nowhere else.
fn refused_field(body: &str) -> Option<String> {
    /// Fields Coolify names in the `message` of a refusal without an `errors` map.
    const NAMED_IN_MESSAGES: [&str; 1] = ["destination_uuid"];
    let Ok(Value::Object(problem)) = serde_json::from_str::<Value>(body) else {
        return None;
    };
    if let Some(Value::Object(fields)) = problem.get("errors") {
        return fields.keys().next().cloned();
    }
    let message = problem.get("message").and_then(Value::as_str)?;
    NAMED_IN_MESSAGES
        .iter()
        .find(|field| message.contains(*field))
        .map(ToString::to_string)
}

/// `message`, then the field errors and conflicts of a Coolify error body; the body's excerpt
/// when it is not one.
fn server_message(body: &str) -> String {
    let Ok(Value::Object(problem)) = serde_json::from_str::<Value>(body) else {
        return excerpt(body.trim());
    };
    let mut parts = Vec::new();
    if let Some(message) = problem.get("message").and_then(Value::as_str) {
        parts.push(message.to_string());
    }
    if let Some(errors) = problem.get("errors") {
        let flat = flatten_errors(errors);
        if !flat.is_empty() {
            parts.push(flat);
        }
    }
    if let Some(Value::Array(conflicts)) = problem.get("conflicts") {
        let named: Vec<String> = conflicts.iter().map(describe_conflict).collect();
        if !named.is_empty() {
            parts.push(format!("already used by {}", named.join("; ")));
        }
    }
    if parts.is_empty() {
        excerpt(body.trim())
    } else {
        excerpt(&parts.join(" "))
    }
}

/// `{field: [msg]}`, `{field: "msg"}` or `[msg]` as `field: msg; …`.
fn flatten_errors(errors: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    match errors {
        Value::Object(fields) => fields
            .iter()
            .map(|(field, v)| format!("{field}: {}", text(v)))
            .collect::<Vec<_>>()
            .join("; "),
        Value::Array(_) | Value::String(_) => text(errors),
        _ => String::new(),
    }
}

/// One entry of a 409's `conflicts`: the domain and the resource that holds it.
fn describe_conflict(conflict: &Value) -> String {
    let field = |k: &str| conflict.get(k).and_then(Value::as_str).unwrap_or("");
    let domain = field("domain");
    let name = field("resource_name");
    let uuid = field("resource_uuid");
    let kind = field("resource_type");
    match (domain.is_empty(), name.is_empty() && uuid.is_empty()) {
        (false, false) => format!("{domain} by {kind} {name} ({uuid})")
            .replace("  ", " ")
            .replace(" ()", ""),
        (false, true) => domain.to_string(),
        _ => conflict.to_string(),
    }
}

pub fn excerpt(text: &str) -> String {
    http::excerpt(text, EXCERPT)
}

/// Percent-encodes one path segment (a uuid, an environment name).
pub fn encode_segment(segment: &str) -> String {
    http::encode(segment, b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_in_each_shape_are_flattened() {
        let e = status_error(
            "PATCH x",
            422,
            r#"{"message":"Validation failed.","errors":{"fqdn":["This field is not allowed."]}}"#,
        );
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(
            e.message
                .ends_with("HTTP 422: Validation failed. fqdn: This field is not allowed."),
            "{}",
            e.message
        );
        assert_eq!(e.field.as_deref(), Some("fqdn"));
        let e = status_error("x", 422, r#"{"message":"m","errors":{"a":"b"}}"#);
        assert!(e.message.ends_with("m a: b"), "{}", e.message);
        let e = status_error("x", 422, r#"{"message":"m","errors":["one","two"]}"#);
        assert!(e.message.ends_with("m one, two"), "{}", e.message);
        assert_eq!(e.field, None, "a bare list names no field");
        let e = status_error("x", 401, "Unauthenticated.");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(e.message.contains("`token`"), "{}", e.message);
    }

    #[test]
    fn the_field_a_refusal_is_about_is_kept_apart_from_the_words() {
        let e = status_error(
            "POST x",
            400,
            r#"{"message":"Server has multiple destinations and you do not set destination_uuid."}"#,
        );
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert_eq!(e.field.as_deref(), Some("destination_uuid"));
        assert!(
            e.message.ends_with(
                "HTTP 400: Server has multiple destinations and you do not set destination_uuid."
            ),
            "{}",
            e.message
        );
        let e = status_error("POST x", 404, r#"{"message":"Destination not found."}"#);
        assert_eq!(e.field, None, "a message that names no field");
    }

    #[test]
    fn a_domain_conflict_names_the_resource_that_holds_it() {
        let e = status_error(
            "PATCH x",
            409,
            r#"{"message":"Domain conflicts detected.","conflicts":[{"domain":"https://a.example","resource_name":"shop-api","resource_uuid":"u1","resource_type":"application","message":"…"}],"warning":"w"}"#,
        );
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(
            e.message
                .contains("already used by https://a.example by application shop-api (u1)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn bad_urls_and_empty_tokens_are_invalid_input() {
        for url in ["coolify.example.com", "ftp://host", "http://", ""] {
            let err =
                Api::new(url, Token::new("t".into()), Retry::default(), Cancel::new()).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{url}");
        }
        let err = Api::new(
            "http://127.0.0.1:1",
            Token::new(" ".into()),
            Retry::default(),
            Cancel::new(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let api = Api::new(
            "http://127.0.0.1:1/api/v1/",
            Token::new("s3cret".into()),
            Retry::default(),
            Cancel::new(),
        )
        .unwrap();
        assert_eq!(api.endpoint.base(), "http://127.0.0.1:1/api/v1");
        assert!(!format!("{api:?}").contains("s3cret"));
    }
}
