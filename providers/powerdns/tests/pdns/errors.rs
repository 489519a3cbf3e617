//! Errors come back with the kind the engine acts on.

use fabrik_provider::{Client, ErrorKind};
use serde_json::json;

use crate::harness::{KEY, Pdns, attrs, make_zone, quick_client, record_target, zone_target};

#[test]
fn a_wrong_key_is_unauthorized() {
    let pdns = Pdns::start();
    let client = quick_client(json!({"url": pdns.url(), "api_key": "not-the-key"}));
    let err = client
        .create(zone_target("zone"), &attrs(json!({"name": "nokey.test"})))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert!(err.message.contains("HTTP 401"), "{}", err.message);
    assert!(err.message.contains("api_key"), "{}", err.message);
    assert!(!err.message.contains("not-the-key"), "{}", err.message);
    assert!(!pdns.zone_exists("nokey.test."));
}

#[test]
fn what_powerdns_refuses_is_invalid_input_with_its_message() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), "strict.test");
    let a =
        attrs(json!({"zone": "strict.test", "name": "x", "type": "A", "records": ["192.0.2.1"]}));
    client.create(record_target("a"), &a).unwrap();
    // A CNAME beside other data: fabrik cannot see that from one resource; PowerDNS says 422.
    let cname = attrs(
        json!({"zone": "strict.test", "name": "x", "type": "CNAME", "records": ["y.example."]}),
    );
    let err = client.create(record_target("c"), &cname).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("HTTP 422"), "{}", err.message);
    assert!(
        err.message.contains("Conflicts with pre-existing RRset"),
        "{}",
        err.message
    );
    // Content of a type fabrik passes through as written.
    let caa =
        attrs(json!({"zone": "strict.test", "name": "x", "type": "CAA", "records": ["nonsense"]}));
    let err = client.create(record_target("caa"), &caa).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err.message);
}

#[test]
fn a_missing_zone_or_server_is_not_found() {
    let pdns = Pdns::start();
    let client = pdns.client();
    let spec =
        attrs(json!({"zone": "absent.test", "name": "x", "type": "A", "records": ["192.0.2.1"]}));
    let err = client.create(record_target("x"), &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains("zone absent.test. does not exist"),
        "{}",
        err.message
    );

    let elsewhere = quick_client(json!({"url": pdns.url(), "api_key": KEY, "server_id": "nope"}));
    let err = elsewhere
        .create(zone_target("zone"), &attrs(json!({"name": "z.test"})))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{}", err.message);
}

#[test]
fn a_server_that_is_down_is_transient() {
    let pdns = Pdns::start();
    let url = pdns.url();
    drop(pdns);
    let client: Box<dyn Client> = Box::new(quick_client(json!({"url": url, "api_key": KEY})));
    let err = client
        .read(
            zone_target("zone"),
            "down.test.",
            &attrs(json!({"name": "down.test"})),
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{}", err.message);
}

#[test]
fn a_zone_with_records_can_be_made_by_a_second_client_too() {
    // Two clients (two fabrik runs) see the same ownership.
    let pdns = Pdns::start();
    make_zone(pdns.client().as_ref(), "two.test");
    let spec =
        attrs(json!({"zone": "two.test", "name": "w", "type": "A", "records": ["192.0.2.1"]}));
    let id = pdns.client().create(record_target("w"), &spec).unwrap().id;
    let other = pdns.client();
    assert!(other.find(record_target("w"), &spec).unwrap().is_some());
    other.delete(record_target("w"), &id, &spec).unwrap();
    assert!(pdns.rrset("two.test.", "w.two.test.", "A").is_none());
}
