//! An interrupted run does not wait out a rate limit: the call gives up at once, without
//! asking the server again, and once the waits resume (the engine's rollback) calls wait
//! again.

use std::time::{Duration, Instant};

use fabrik_provider::http::{self, Answer, Dialect, Endpoint, Method, Retry, Settings};
use fabrik_provider::{Cancel, Error, ErrorKind};
use fabrik_testkit::http::{Response, Server};

/// An API that answers plain text, its errors all transient.
struct Plain;

impl Dialect for Plain {
    type Output = String;
    type Failure = Error;

    fn accepted(&self, _what: &str, answer: Answer) -> Result<String, Error> {
        Ok(answer.body)
    }

    fn refused(&self, _what: &str, answer: &Answer) -> Error {
        http::status_error("GET /", answer.status, "", ErrorKind::Transient, "")
    }
}

fn endpoint(url: &str, cancel: &Cancel) -> Endpoint<Plain> {
    let settings = Settings {
        provider: "test",
        server: "the server",
        user_agent: "fabrik-test",
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        body_limit: 1 << 20,
        max_in_flight: 4,
    };
    Endpoint::new(settings, url, Plain, Retry::default(), cancel.clone())
}

#[test]
fn an_interrupt_ends_a_rate_limit_wait_and_resume_restores_it() {
    let server = Server::start(|_| Response::text(200, "fine"));
    let cancel = Cancel::new();
    let api = endpoint(&server.url(), &cancel);
    server.throttle_next(1, 60);
    let interrupter = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let error = api.call(Method::Get, "", &[], None).unwrap_err();
    interrupter.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(error.retried);
    assert!(error.interrupted, "the error says the wait was cut short");
    assert!(
        error
            .message
            .ends_with("(interrupted while waiting to try again; the server was not asked again)"),
        "{error}"
    );
    assert_eq!(server.request_count(), 1);
    assert!(
        cancel.sleep(Duration::from_secs(60)).is_err(),
        "every wait ends until resumed"
    );

    cancel.resume();
    server.throttle_next(1, 1);
    let started = Instant::now();
    assert_eq!(api.call(Method::Get, "", &[], None).unwrap(), "fine");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

/// Another run's signal (another context) ends none of this run's waits.
#[test]
fn a_cancel_ends_only_the_waits_of_its_own_run() {
    let server = Server::start(|_| Response::text(200, "fine"));
    let mine = Cancel::new();
    let other = Cancel::new();
    other.cancel();
    server.throttle_next(1, 1);
    let started = Instant::now();
    assert_eq!(
        endpoint(&server.url(), &mine)
            .call(Method::Get, "", &[], None)
            .unwrap(),
        "fine"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
}
