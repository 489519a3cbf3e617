//! The provider against the Uptime Kuma fake, below the engine: the session (login once,
//! nothing sent before `loginRequired`, heartbeats answered, a lost idle connection reopened by
//! token), why a login fails, and the monitor and notification calls with the server's traps.

use std::time::Duration;

use fabrik_provider::{Attributes, Cancel, Client, ErrorKind, Target};
use fabrik_testkit::uptimekuma::{FakeKuma, JWT, PASSWORD, USERNAME};
use fabrik_uptimekuma::UptimeKumaClient;
use serde_json::{Value, json};

fn attrs(v: Value) -> Attributes {
    v.as_object().expect("an object").clone()
}

fn client(fake: &FakeKuma) -> UptimeKumaClient {
    let config = attrs(json!({"url": fake.url(), "username": USERNAME, "password": PASSWORD}));
    UptimeKumaClient::new(&config, Cancel::new()).expect("configures")
}

fn target(name: &'static str, type_name: &'static str) -> Target<'static> {
    Target {
        stack: "s",
        name,
        type_name,
    }
}

const MONITOR: &str = "uptimekuma.monitor";
const NOTIFICATION: &str = "uptimekuma.notification";

fn logins(fake: &FakeKuma) -> usize {
    fake.events()
        .iter()
        .filter(|e| e.starts_with("login"))
        .count()
}

#[test]
fn one_login_serves_every_call_and_heartbeats_are_answered() {
    let fake = FakeKuma::start();
    fake.set_ping(Duration::from_millis(100), Duration::from_millis(400));
    let client = client(&fake);
    let inputs = attrs(json!({"name": "api", "type": "http", "url": "http://127.0.0.1:9/health"}));
    let made = client
        .create(target("api", MONITOR), &inputs)
        .expect("created");
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            client
                .read(target("api", MONITOR), &made.id, &inputs)
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(logins(&fake), 1);
    assert_eq!(fake.dropped_clients(), 0, "pings were answered");
    fake.assert_no_violations();
}

#[test]
fn a_connection_dropped_while_idle_is_reopened_with_the_token() {
    let fake = FakeKuma::start();
    fake.set_ping(Duration::from_millis(50), Duration::from_millis(100));
    let client = client(&fake);
    let inputs = attrs(json!({"name": "p", "type": "push"}));
    let made = client
        .create(target("p", MONITOR), &inputs)
        .expect("created");
    std::thread::sleep(Duration::from_millis(600));
    assert!(fake.dropped_clients() >= 1, "the idle client was dropped");
    assert!(
        client
            .read(target("p", MONITOR), &made.id, &inputs)
            .unwrap()
            .is_some()
    );
    let events = fake.events();
    assert_eq!(
        events.iter().filter(|e| *e == "login").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "loginByToken").count(),
        1,
        "{events:?}"
    );
    fake.assert_no_violations();
}

#[test]
fn failed_logins_say_why_without_the_password() {
    let fake = FakeKuma::start();
    let wrong =
        attrs(json!({"url": fake.url(), "username": USERNAME, "password": "not-the-Passw0rd"}));
    let err = UptimeKumaClient::new(&wrong, Cancel::new())
        .unwrap()
        .read(target("a", MONITOR), "1", &Attributes::new())
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert!(
        err.message.contains("refused the username or password"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("not-the-Passw0rd"));

    fake.set_two_factor(true);
    let err = client(&fake)
        .read(target("a", MONITOR), "1", &Attributes::new())
        .unwrap_err();
    assert!(err.message.contains("two-factor"), "{}", err.message);

    let by_token = attrs(json!({"url": fake.url(), "token": JWT}));
    let c = UptimeKumaClient::new(&by_token, Cancel::new()).unwrap();
    assert_eq!(
        c.read(target("a", MONITOR), "1", &Attributes::new())
            .unwrap(),
        None,
        "a token skips 2FA"
    );

    fake.set_two_factor(false);
    fake.exhaust_logins();
    let c = client(&fake);
    let err = c
        .read(target("a", MONITOR), "1", &Attributes::new())
        .unwrap_err();
    assert!(err.message.contains("20 a minute"), "{}", err.message);
    assert!(err.retried, "not worth retrying within the run");
    let before = logins(&fake);
    let _ = c.read(target("a", MONITOR), "1", &Attributes::new());
    assert_eq!(
        logins(&fake),
        before,
        "a refused login is not tried again in the run"
    );
    fake.assert_no_violations();
}

#[test]
fn an_update_keeps_links_and_fields_fabrik_does_not_manage() {
    let fake = FakeKuma::start();
    let client = client(&fake);
    let hook = client
        .create(
            target("hook", NOTIFICATION),
            &attrs(
                json!({"name": "hook", "type": "webhook", "settings": {"webhookURL": "http://h"}}),
            ),
        )
        .unwrap();
    let first = attrs(
        json!({"name": "api", "type": "port", "hostname": "db", "port": 5432, "notifications": [hook.outputs["id"]]}),
    );
    let made = client.create(target("api", MONITOR), &first).unwrap();
    let id: i64 = made.id.parse().unwrap();
    // Someone adds a header and a second link in the UI.
    let other = fake.add_notification(json!({"name": "mail", "type": "smtp"}));
    fake.edit_monitor(id, json!({"resendInterval": 7}));
    let mut second = first.clone();
    second.insert("interval".into(), json!("30s"));
    second.remove("notifications");
    client
        .update(target("api", MONITOR), &made.id, &first, &second)
        .unwrap();
    let m = fake.monitors().into_iter().find(|m| m["id"] == id).unwrap();
    assert_eq!(m["interval"], 30);
    assert_eq!(
        m["port"], 5432,
        "editMonitor would reset a port it is not sent"
    );
    assert_eq!(
        m["resendInterval"], 7,
        "a field fabrik does not manage is kept"
    );
    assert_eq!(
        m["notificationIDList"],
        json!({hook.id.clone(): true}),
        "the link is kept"
    );
    let _ = other;
    fake.assert_no_violations();
}

#[test]
fn a_refusal_that_quotes_a_secret_is_cleaned() {
    let fake = FakeKuma::start();
    let client = client(&fake);
    fake.refuse_next_add();
    let inputs = attrs(json!({"name": "api", "type": "http", "url": "http://x",
        "basic_auth": {"username": "u", "password": "s3cret-basic-pass"}}));
    let err = client.create(target("api", MONITOR), &inputs).unwrap_err();
    assert!(
        err.message.contains("insert into `monitor`"),
        "{}",
        err.message
    );
    assert!(err.message.contains("'(sensitive)'"), "{}", err.message);
    assert!(
        !err.message.contains("s3cret-basic-pass"),
        "{}",
        err.message
    );
    let made = client.create(target("api", MONITOR), &inputs).unwrap();
    assert!(!made.outputs.contains_key("push_url"));
    fake.assert_no_violations();
}

#[test]
fn an_unmarked_namesake_is_never_taken_and_deletes_check_the_marker() {
    let fake = FakeKuma::start();
    let client = client(&fake);
    let theirs = fake.add_monitor(json!({"name": "api", "type": "ping", "hostname": "h", "accepted_statuscodes": ["200-299"], "conditions": []}));
    let inputs = attrs(json!({"name": "api", "type": "ping", "hostname": "h"}));
    let err = client.create(target("api", MONITOR), &inputs).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains(&format!("fabrik import api {theirs}")),
        "{}",
        err.message
    );
    let err = client
        .delete(target("api", MONITOR), &theirs.to_string(), &inputs)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(fake.monitors().len(), 1);
    let adopted = client.adopt(target("api", MONITOR), &inputs).unwrap();
    assert_eq!(adopted.id, theirs.to_string());
    client
        .delete(target("api", MONITOR), &adopted.id, &inputs)
        .unwrap();
    assert!(fake.monitors().is_empty());
    client
        .delete(target("api", MONITOR), &adopted.id, &inputs)
        .expect("a missing monitor is deleted already");
    fake.assert_no_violations();
}

#[test]
fn waiting_for_the_server_to_be_ready_ends_at_an_interrupt() {
    let fake = FakeKuma::start();
    fake.set_ready_delay(Duration::from_secs(30));
    let cancel = Cancel::new();
    let config = attrs(json!({"url": fake.url(), "username": USERNAME, "password": PASSWORD}));
    let client = UptimeKumaClient::new(&config, cancel.clone()).unwrap();
    let signal = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let err = client
        .read(target("a", MONITOR), "1", &Attributes::new())
        .unwrap_err();
    signal.join().unwrap();
    assert!(err.interrupted, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        fake.events().is_empty(),
        "nothing was sent before `loginRequired`"
    );
    fake.assert_no_violations();
}

/// A call reported as failed changed nothing, though Uptime Kuma is not atomic: an `add` whose
/// link fails leaves the monitor stored, an `editMonitor` whose link fails has saved the monitor
/// and dropped its links.
#[test]
fn failed_calls_leave_nothing_behind() {
    let fake = FakeKuma::start();
    let client = client(&fake);
    let hook = client
        .create(
            target("hook", NOTIFICATION),
            &attrs(json!({"name": "hook", "type": "webhook"})),
        )
        .unwrap();
    let dangling = attrs(json!({"name": "api", "type": "push", "notifications": [999]}));
    let err = client
        .create(target("api", MONITOR), &dangling)
        .unwrap_err();
    assert!(err.message.contains("FOREIGN KEY"), "{}", err.message);
    assert!(fake.monitors().is_empty(), "the stored monitor went again");

    let first =
        attrs(json!({"name": "api", "type": "push", "notifications": [hook.outputs["id"]]}));
    let made = client.create(target("api", MONITOR), &first).unwrap();
    let mut second = first.clone();
    second.insert("interval".into(), json!("30s"));
    second.insert("notifications".into(), json!([hook.outputs["id"], 999]));
    let err = client
        .update(target("api", MONITOR), &made.id, &first, &second)
        .unwrap_err();
    assert!(err.message.contains("FOREIGN KEY"), "{}", err.message);
    let m = &fake.monitors()[0];
    assert_eq!(m["interval"], 60, "the monitor as it was");
    assert_eq!(
        m["notificationIDList"],
        json!({hook.id.clone(): true}),
        "its link back"
    );
    fake.assert_no_violations();
}

#[test]
fn an_unmarked_notification_of_the_same_name_is_an_obstacle() {
    let fake = FakeKuma::start();
    let client = client(&fake);
    let theirs = fake.add_notification(json!({"name": "ops", "type": "slack"}));
    let inputs = attrs(json!({"name": "ops", "type": "webhook"}));
    let creation = fabrik_provider::Creation {
        target: target("ops", NOTIFICATION),
        inputs: &inputs,
    };
    let found = client.obstacles(&[creation]).remove(0).unwrap().unwrap();
    assert!(
        found.contains(&format!("fabrik import ops {theirs}")),
        "{found}"
    );
    let err = client
        .create(target("ops", NOTIFICATION), &inputs)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    let err = client
        .delete(target("ops", NOTIFICATION), &theirs.to_string(), &inputs)
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Conflict,
        "never deleted without the marker"
    );
    let imported = client
        .import(target("ops", NOTIFICATION), &theirs.to_string(), &inputs)
        .unwrap();
    assert_eq!(
        imported.observed.inputs["type"], "slack",
        "an import changes nothing else"
    );
    client
        .delete(target("ops", NOTIFICATION), &theirs.to_string(), &inputs)
        .unwrap();
    assert!(fake.notifications().is_empty());
    fake.assert_no_violations();
}
