//! Faults: 5xx, lost answers, 429 with Retry-After, connection refused, slow answers and the
//! client-side request budget.

use std::time::{Duration, Instant};

use fabrik_provider::{Client, ErrorKind};
use serde_json::json;

use crate::harness::{a_record, client, client_with, fake, named, quick, target};

#[test]
fn a_5xx_on_a_read_is_retried_until_it_succeeds() {
    let fake = fake();
    let client = client(&fake);
    let spec = a_record("www", "192.0.2.1");
    let applied = client.create(target("www"), &spec).unwrap();
    fake.http().fail_next(2, 502);
    let seen = client.read(target("www"), &applied.id, &spec).unwrap();
    assert!(seen.is_some());
    fake.assert_no_violations();
}

#[test]
fn a_create_whose_answer_was_lost_converges_when_repeated() {
    let fake = fake();
    let client = client(&fake);
    let spec = a_record("www", "192.0.2.1");
    // The zone lookup goes through; the POST is made but answered 500.
    client.find(target("www"), &spec).unwrap();
    fake.http().fail_after_next(1, 500);
    let err = client.create(target("www"), &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert_eq!(named(&fake, "www.example.com").len(), 1, "it was made");
    let again = client.create(target("www"), &spec).unwrap();
    assert_eq!(named(&fake, "www.example.com").len(), 1, "not twice");
    assert_eq!(named(&fake, "www.example.com")[0]["id"], again.id.as_str());
    fake.assert_no_violations();
}

#[test]
fn retry_after_is_honoured_on_429() {
    let fake = fake();
    let client = client(&fake);
    fake.http().throttle_next(1, 1);
    let started = Instant::now();
    client
        .create(target("www"), &a_record("www", "192.0.2.1"))
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    fake.assert_no_violations();
}

#[test]
fn the_fakes_rate_limit_is_waited_out() {
    let fake = fake();
    fake.set_rate_limit(3, Duration::from_secs(2));
    let client = client(&fake);
    let started = Instant::now();
    for i in 0..3 {
        client
            .create(
                target(&format!("r{i}")),
                &a_record(&format!("r{i}"), "192.0.2.1"),
            )
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(fake.requests().iter().any(|l| l.status == 429));
    assert_eq!(fake.records("example.com").len(), 3);
    fake.assert_no_violations();
}

#[test]
fn a_429_asking_for_too_long_a_wait_fails_as_transient_at_once() {
    let fake = fake();
    let client = client(&fake);
    fake.http().throttle_next(1, 300);
    let started = Instant::now();
    let err = client
        .create(target("www"), &a_record("www", "192.0.2.1"))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(err.message.contains("300 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    fake.assert_no_violations();
}

#[test]
fn a_refused_connection_is_transient_and_the_next_try_converges() {
    let mut fake = fake();
    let client = client(&fake);
    let spec = a_record("www", "192.0.2.1");
    fake.http_mut().stop();
    let err = client.create(target("www"), &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(err.message.contains("after 4 attempts"), "{err}");
    fake.http_mut().restart();
    client.create(target("www"), &spec).unwrap();
    assert_eq!(named(&fake, "www.example.com").len(), 1);
    fake.assert_no_violations();
}

#[test]
fn slow_answers_are_waited_for() {
    let fake = fake();
    fake.http().set_delay(Duration::from_millis(300));
    let client = client(&fake);
    client
        .create(target("www"), &a_record("www", "192.0.2.1"))
        .unwrap();
    assert_eq!(named(&fake, "www.example.com").len(), 1);
    fake.assert_no_violations();
}

#[test]
fn the_request_budget_paces_a_burst() {
    let fake = fake();
    let mut tuning = quick();
    tuning.budget_window = Duration::from_secs(1);
    let client = client_with(&fake, json!({"request_budget": 4}), tuning);
    let started = Instant::now();
    for i in 0..4 {
        // A zone lookup then one create each: 5 requests, then 3 more.
        client
            .create(
                target(&format!("r{i}")),
                &a_record(&format!("r{i}"), "192.0.2.1"),
            )
            .unwrap();
    }
    // 5 requests over a budget of 4 a second: at least the fifth waited for a refill.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert!(fake.requests().iter().all(|l| l.status != 429));
    fake.assert_no_violations();
}
