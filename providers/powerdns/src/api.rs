//! The PowerDNS HTTP API as this provider uses it: its requests through the SDK's
//! [`Endpoint`] (timeouts, retries of what is worth retrying, waits the run's interrupt ends),
//! and its answers mapped to error kinds.
//!
//! Requests never carry `Expect: 100-continue`: the PowerDNS 4.7 webserver never answers it,
//! so a client that sends it waits out its 100-continue timeout on every large PATCH. ureq adds
//! the header only when asked to, and nothing here asks.

use std::time::Duration;

use fabrik_provider::http::{self, Answer, Dialect, Endpoint, Method, Settings};
use fabrik_provider::{Cancel, Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

pub use fabrik_provider::http::Retry;

/// The PowerDNS webserver as an endpoint: the webserver answers one connection per thread,
/// and a SQL backend serialises writes anyway, so a few requests in flight are enough; whole
/// zones come back in one answer (10,000 RRsets are a few MB).
const SETTINGS: Settings = Settings {
    provider: "powerdns",
    server: "the server",
    user_agent: concat!("fabrik-powerdns/", env!("CARGO_PKG_VERSION")),
    connect_timeout: Duration::from_secs(5),
    request_timeout: Duration::from_secs(30),
    body_limit: 512 * 1024 * 1024,
    max_in_flight: 8,
};
/// How much of an error body goes into a message.
const EXCERPT: usize = 300;

/// The API key: never shown.
pub use fabrik_provider::http::Credential as ApiKey;

/// A successful answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json<T: for<'de> Deserialize<'de>>(&self, what: &str) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Fatal,
                format!(
                    "PowerDNS answered {what} with something unexpected ({e}): {}",
                    excerpt(&self.body)
                ),
            )
        })
    }
}

/// How PowerDNS words its answers.
struct Words;

impl Dialect for Words {
    type Output = Reply;
    type Failure = Error;

    fn accepted(&self, _what: &str, answer: Answer) -> Result<Reply> {
        Ok(Reply {
            status: answer.status,
            body: answer.body,
        })
    }

    fn refused(&self, what: &str, answer: &Answer) -> Error {
        status_error(what, answer.status, &answer.body)
    }
}

/// A client for one PowerDNS server.
#[derive(Debug)]
pub struct Api {
    /// At `<url>/api/v1/servers/<server_id>`.
    endpoint: Endpoint<Words>,
}

impl Api {
    /// `url` is the webserver's address (`http://127.0.0.1:8081`); a trailing `/` or
    /// `/api/v1` is tolerated. Waits end when `cancel` is set.
    pub fn new(
        url: &str,
        key: ApiKey,
        server_id: &str,
        retry: Retry,
        cancel: Cancel,
    ) -> Result<Api> {
        let base = http::base_url(url, "/api/v1", "url", "http://127.0.0.1:8081")?;
        if server_id.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "`server_id` must not be empty",
            ));
        }
        let base = format!("{base}/api/v1/servers/{}", encode_segment(server_id));
        Ok(Api {
            endpoint: Endpoint::new(SETTINGS, base, Words, retry, cancel).header("X-API-Key", key),
        })
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Reply> {
        self.call(Method::Get, path, query, None)
    }

    pub fn post(&self, path: &str, body: &impl Serialize) -> Result<Reply> {
        self.call(Method::Post, path, &[], Some(&json_body(body)))
    }

    pub fn patch(&self, path: &str, body: &impl Serialize) -> Result<Reply> {
        self.call(Method::Patch, path, &[], Some(&json_body(body)))
    }

    /// A zone PATCH of `rrsets`, which PowerDNS applies all or none.
    pub fn patch_rrsets(&self, zone_path: &str, rrsets: &[&RRsetWrite]) -> Result<Reply> {
        #[derive(Serialize)]
        struct Body<'a> {
            rrsets: &'a [&'a RRsetWrite],
        }
        self.patch(zone_path, &Body { rrsets })
    }

    pub fn delete(&self, path: &str) -> Result<Reply> {
        self.call(Method::Delete, path, &[], None)
    }

    /// One request, tried again on connection failures, 429 and 5xx (POST only where the
    /// server cannot have acted on it). `path` is below the server's base, such as `/zones`.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply> {
        self.endpoint.call(method, path, query, body)
    }
}

/// A request body as JSON. The bodies are fabrik's own types and JSON values, which always
/// serialize.
fn json_body(body: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(body).expect("request bodies always serialize")
}

/// The error for an answer outside 2xx. PowerDNS gives `{"error": "…"}` for 422 (and most
/// 400/500s) but plain text for 401, 404 and 409.
pub fn status_error(what: &str, status: u16, body: &str) -> Error {
    let hint = match status {
        401 | 403 => " (check the provider's `api_key`)",
        _ => "",
    };
    http::status_error(
        what,
        status,
        &server_message(body),
        http::kind_of_status(status),
        hint,
    )
}

fn server_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Problem {
        error: String,
    }
    match serde_json::from_str::<Problem>(body) {
        Ok(p) => p.error,
        Err(_) => excerpt(body.trim()),
    }
}

fn excerpt(text: &str) -> String {
    http::excerpt(text, EXCERPT)
}

/// Percent-encodes one path segment (a zone id or server id). PowerDNS zone ids are the zone's
/// name with `/` written `=2F`; anything else outside the unreserved set is percent-encoded.
pub fn encode_segment(segment: &str) -> String {
    http::encode(segment, b"=")
}

/// A zone as `GET /zones/{id}` describes it (the fields used here).
#[derive(Debug, Deserialize)]
pub struct ZoneInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub serial: u64,
    #[serde(default)]
    pub rrsets: Vec<RRsetInfo>,
}

/// One RRset of a zone. A filtered read also lists every commented RRset of the zone with
/// `records: []` (PowerDNS 4.7): such entries say nothing about what exists.
#[derive(Debug, Deserialize)]
pub struct RRsetInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub records: Vec<RecordInfo>,
    #[serde(default)]
    pub comments: Vec<CommentInfo>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RecordInfo {
    pub content: String,
    #[serde(default)]
    pub disabled: bool,
}

/// One entry of a zone PATCH: the whole RRset replaced, or deleted. A `REPLACE` without
/// `records` replaces the comments only (records and TTL stay as they are).
#[derive(Debug, Serialize)]
pub struct RRsetWrite {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub changetype: ChangeType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Vec<CommentInfo>>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeType {
    Replace,
    Delete,
}

impl RRsetWrite {
    pub fn delete(name: &str, rtype: &str) -> RRsetWrite {
        RRsetWrite {
            name: name.to_string(),
            rtype: rtype.to_string(),
            changetype: ChangeType::Delete,
            ttl: None,
            records: None,
            comments: None,
        }
    }
}

/// A comment as PowerDNS keeps it. All of its fields are read so that a write which must keep
/// the comments it found (an import stamping its marker) can send them back unchanged.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CommentInfo {
    pub content: String,
    #[serde(default)]
    pub account: String,
    /// Seconds since the epoch; PowerDNS sets it to now when a comment is written without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<u64>,
}

impl RRsetInfo {
    /// Whether one of its comments is exactly `marker`.
    pub fn carries(&self, marker: &str) -> bool {
        self.comments.iter().any(|c| c.content == marker)
    }

    /// The fabrik marker it carries, if any (to name the owner in a conflict).
    pub fn fabrik_marker(&self) -> Option<&str> {
        self.comments
            .iter()
            .map(|c| c.content.as_str())
            .find(|c| c.starts_with("fabrik:"))
    }
}

/// The path of a zone: PowerDNS zone ids are the canonical name with `/` written `=2F`.
pub fn zone_path(zone: &str) -> String {
    format!("/zones/{}", encode_segment(&zone.replace('/', "=2F")))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;

    /// What the scripted server was sent: each request's head and body.
    type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    /// A server that answers each connection with the next scripted response and records
    /// what it was sent (head and body).
    struct Scripted {
        url: String,
        seen: Seen,
    }

    fn serve(responses: Vec<String>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for response in responses {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push((head, body));
                let mut stream = reader.into_inner();
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Scripted { url, seen }
    }

    fn answer(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    }

    fn quick() -> Retry {
        Retry {
            attempts: 4,
            base: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_retry_after: Duration::from_secs(5),
            rate_limit_wait: Duration::from_secs(5),
        }
    }

    fn api(url: &str) -> Api {
        Api::new(
            url,
            ApiKey::new("k3y".into()),
            "localhost",
            quick(),
            Cancel::new(),
        )
        .unwrap()
    }

    #[test]
    fn a_5xx_is_retried_until_it_succeeds() {
        let server = serve(vec![
            answer("500 Internal Server Error", "", "oops"),
            answer(
                "503 Service Unavailable",
                "Content-Type: application/json\r\n",
                r#"{"error": "busy"}"#,
            ),
            answer("200 OK", "", "{}"),
        ]);
        let reply = api(&server.url).get("/zones", &[]).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(server.seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn retry_after_is_honoured() {
        let server = serve(vec![
            answer("429 Too Many Requests", "Retry-After: 1\r\n", "slow down"),
            answer("204 No Content", "", ""),
        ]);
        let started = Instant::now();
        api(&server.url)
            .patch("/zones/x.", &serde_json::json!({}))
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[test]
    fn a_long_retry_after_fails_at_once_as_transient() {
        let server = serve(vec![answer(
            "429 Too Many Requests",
            "Retry-After: 3600\r\n",
            "",
        )]);
        let started = Instant::now();
        let err = api(&server.url).get("/zones", &[]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient);
        assert!(err.message.contains("3600 s"), "{}", err.message);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_post_is_not_repeated_after_a_5xx() {
        let server = serve(vec![
            answer("500 Internal Server Error", "", "oops"),
            answer("201 Created", "", "{}"),
        ]);
        let err = api(&server.url)
            .post("/zones", &serde_json::json!({"name": "x."}))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient);
        assert_eq!(server.seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_refused_connection_is_retried_then_transient() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = api(&format!("http://127.0.0.1:{port}"))
            .post("/zones", &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient);
        assert!(err.message.contains("after 4 attempts"), "{}", err.message);
    }

    #[test]
    fn statuses_map_to_kinds() {
        let cases = [
            ("401 Unauthorized", "Unauthorized", ErrorKind::Unauthorized),
            ("404 Not Found", "Not Found", ErrorKind::NotFound),
            ("409 Conflict", "Conflict", ErrorKind::Conflict),
            ("400 Bad Request", "Bad Request", ErrorKind::InvalidInput),
            (
                "422 Unprocessable Entity",
                r#"{"error": "RRset x. IN A: Name is out of zone"}"#,
                ErrorKind::InvalidInput,
            ),
            ("418 I'm a teapot", "", ErrorKind::Fatal),
        ];
        for (status, body, kind) in cases {
            let server = serve(vec![answer(status, "", body)]);
            let err = api(&server.url).get("/zones/x.", &[]).unwrap_err();
            assert_eq!(err.kind, kind, "{status}");
            let code = &status[..3];
            assert!(
                err.message.contains(&format!("HTTP {code}")),
                "{}",
                err.message
            );
        }
        let server = serve(vec![answer(
            "422 Unprocessable Entity",
            "",
            r#"{"error": "Name is out of zone"}"#,
        )]);
        let err = api(&server.url).get("/zones/x.", &[]).unwrap_err();
        assert!(
            err.message.ends_with("HTTP 422: Name is out of zone"),
            "{}",
            err.message
        );
    }

    #[test]
    fn requests_carry_the_key_and_never_expect_100_continue() {
        let server = serve(vec![answer("204 No Content", "", "")]);
        let big = "x".repeat(2 * 1024 * 1024);
        api(&format!("{}/api/v1/", server.url))
            .patch("/zones/example.test.", &serde_json::json!({ "big": big }))
            .unwrap();
        let seen = server.seen.lock().unwrap();
        let (head, body) = &seen[0];
        let lower = head.to_ascii_lowercase();
        assert!(
            head.starts_with("PATCH /api/v1/servers/localhost/zones/example.test. HTTP/1.1"),
            "{head}"
        );
        assert!(lower.contains("x-api-key: k3y\r\n"), "{head}");
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(!lower.contains("expect:"), "{head}");
        assert!(body.len() > 2 * 1024 * 1024);
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let api = api("http://127.0.0.1:1");
        assert!(!format!("{api:?}").contains("k3y"));
    }

    #[test]
    fn bad_urls_are_invalid_input() {
        for url in ["localhost:8081", "ftp://host", "http://", ""] {
            let err = Api::new(
                url,
                ApiKey::new("k".into()),
                "localhost",
                quick(),
                Cancel::new(),
            )
            .unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{url}");
        }
    }

    #[test]
    fn zone_paths_encode_slashes_the_powerdns_way() {
        assert_eq!(zone_path("example.test."), "/zones/example.test.");
        assert_eq!(
            zone_path("0/26.2.0.192.in-addr.arpa."),
            "/zones/0=2F26.2.0.192.in-addr.arpa."
        );
        assert_eq!(encode_segment("a b?"), "a%20b%3F");
    }
}
