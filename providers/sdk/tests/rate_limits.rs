//! The retry loop against a real HTTP server: a burst of rate-limited answers is waited out
//! however many there are, for as long as `rate_limit_wait` allows, and no longer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fabrik_provider::http::{self, Answer, Dialect, Endpoint, Method, Retry, Settings};
use fabrik_provider::{Cancel, Error, ErrorKind};
use fabrik_testkit::http::{Response, Server};

/// An API that answers plain text, its errors worded by status only.
struct Plain;

impl Dialect for Plain {
    type Output = String;
    type Failure = Error;

    fn accepted(&self, _what: &str, answer: Answer) -> Result<String, Error> {
        Ok(answer.body)
    }

    fn refused(&self, _what: &str, answer: &Answer) -> Error {
        let kind = http::kind_of_status(answer.status);
        // The body is the fake's own wording; the note is what is looked at.
        http::status_error("GET /", answer.status, "", kind, "")
    }
}

/// GETs `url` through the SDK's endpoint, as a provider does.
fn get(retry: &Retry, url: &str) -> Result<String, Error> {
    let settings = Settings {
        provider: "test",
        server: "the server",
        user_agent: "fabrik-test",
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        body_limit: 1 << 20,
        max_in_flight: 4,
    };
    Endpoint::new(settings, url, Plain, *retry, Cancel::new()).call(Method::Get, "", &[], None)
}

fn ok_server() -> Server {
    Server::start(|_| Response::text(200, "fine"))
}

fn statuses(server: &Server) -> Vec<u16> {
    server.log().iter().map(|l| l.status).collect()
}

#[test]
fn six_429s_with_retry_after_are_waited_out_within_the_default_budget() {
    let server = ok_server();
    server.throttle_next(6, 1);
    let retry = Retry::default();
    assert!(retry.attempts < 6, "more refusals than attempts");
    let started = Instant::now();
    assert_eq!(get(&retry, &server.url()).unwrap(), "fine");
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "each Retry-After waited out"
    );
    assert_eq!(statuses(&server), [429, 429, 429, 429, 429, 429, 200]);
}

#[test]
fn a_rate_limit_outlasting_rate_limit_wait_fails_saying_how_long_it_waited() {
    let server = ok_server();
    server.throttle_next(10, 1);
    let retry = Retry {
        rate_limit_wait: Duration::from_secs(2),
        ..Retry::default()
    };
    let started = Instant::now();
    let error = get(&retry, &server.url()).unwrap_err();
    let took = started.elapsed();
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(3)).contains(&took),
        "{took:?}"
    );
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(error.retried, "the engine does not start over");
    assert_eq!(
        error.message,
        "GET /: HTTP 429 (the server still limits the rate after 2s of waiting and \
         asks to wait 1 s more, past `rate_limit_wait` (2s): raise `rate_limit_wait` in \
         `providers.test` to wait longer)"
    );
    assert_eq!(statuses(&server), [429, 429, 429]);
}

/// A 503 that says when to come back is a rate limit too: it is not held to `attempts`.
#[test]
fn a_503_with_retry_after_is_a_rate_limit_and_one_without_is_not() {
    let left = Arc::new(AtomicUsize::new(5));
    let busy = left.clone();
    let server = Server::start(move |_| {
        if busy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            // `0`: come back at once; the loop still backs off instead of hammering.
            Response::text(503, "busy").header("Retry-After", "0")
        } else {
            Response::text(200, "fine")
        }
    });
    let retry = Retry {
        attempts: 2,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        ..Retry::default()
    };
    assert_eq!(get(&retry, &server.url()).unwrap(), "fine");
    assert_eq!(statuses(&server), [503, 503, 503, 503, 503, 200]);

    let plain = ok_server();
    plain.fail_next(5, 503);
    let error = get(&retry, &plain.url()).unwrap_err();
    assert!(error.message.ends_with("(after 2 attempts)"), "{error}");
    assert_eq!(statuses(&plain), [503, 503]);
}
