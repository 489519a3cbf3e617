//! An interrupted run does not wait out a rate limit: the call gives up at once, without
//! asking the server again, and once the waits resume (the engine's rollback) calls wait
//! again. A test binary of its own: the flag is process-wide.

use std::time::{Duration, Instant};

use fabrik_provider::http::{self, Method, Request, Retry};
use fabrik_provider::{Error, ErrorKind, wait};
use fabrik_testkit::http::{Response, Server};

fn get(url: &str) -> Result<String, Error> {
    let agent = http::agent(
        "fabrik-test",
        Duration::from_secs(2),
        Duration::from_secs(10),
    );
    let request = Request {
        method: Method::Get,
        url,
        headers: &[],
        query: &[],
        body: None,
    };
    http::retrying(&Retry::default(), "the server", "test", || {
        http::judge(
            Method::Get,
            http::send(&agent, request, 1 << 20),
            |answer| Ok(answer.body),
            |answer| http::status_error("GET /", answer.status, "", ErrorKind::Transient, ""),
            |unanswered| Error::new(unanswered.kind, unanswered.message.clone()),
        )
    })
}

#[test]
fn an_interrupt_ends_a_rate_limit_wait_and_resume_restores_it() {
    let server = Server::start(|_| Response::text(200, "fine"));
    server.throttle_next(1, 60);
    let interrupter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        wait::interrupt();
    });
    let started = Instant::now();
    let error = get(&server.url()).unwrap_err();
    interrupter.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(error.retried);
    assert!(
        error
            .message
            .ends_with("(interrupted while waiting to try again; the server was not asked again)"),
        "{error}"
    );
    assert_eq!(server.request_count(), 1);
    assert!(
        wait::sleep(Duration::from_secs(60)).is_err(),
        "every wait ends until resumed"
    );

    wait::resume();
    server.throttle_next(1, 1);
    let started = Instant::now();
    assert_eq!(get(&server.url()).unwrap(), "fine");
    assert!(started.elapsed() >= Duration::from_secs(1));
}
