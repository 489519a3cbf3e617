//! `fabrik import` for PowerDNS: an existing RRset or zone is claimed by id. The marker is the
//! only thing written; an RRset another resource manages, a missing one and an id that names
//! another object than the spec are refused without writing anything.

use fabrik_provider::{ErrorKind, Value};
use serde_json::json;

use crate::dns;
use crate::harness::{Pdns, attrs, make_zone, record_target, zone_target};

const ZONE: &str = "claimed.test";
const ID: &str = "claimed.test./www.claimed.test./A";

/// The RRset straight from the API, comments with every field (account, modified_at). The
/// whole zone is read: a filtered read leaves out RRsets whose records are all disabled.
fn raw_rrset(pdns: &Pdns, name: &str, rtype: &str) -> Value {
    let (status, body) = pdns.raw("GET", "/zones/claimed.test.", None);
    assert_eq!(status, 200, "{body}");
    let zone: Value = serde_json::from_str(&body).unwrap();
    zone["rrsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name && r["type"] == rtype)
        .cloned()
        .unwrap_or(Value::Null)
}

/// An RRset someone made by hand, with a comment of their own.
fn theirs(pdns: &Pdns) {
    let (status, body) = pdns.raw(
        "PATCH",
        "/zones/claimed.test.",
        Some(json!({"rrsets": [{
            "name": "www.claimed.test.", "type": "A", "ttl": 600, "changetype": "REPLACE",
            "records": [
                {"content": "198.51.100.1", "disabled": false},
                {"content": "198.51.100.2", "disabled": false},
            ],
            "comments": [{"content": "hand-made, see ticket 42", "account": "ops", "modified_at": 1_700_000_000}],
        }]})),
    );
    assert_eq!(status, 204, "{body}");
}

fn spec() -> fabrik_provider::Attributes {
    attrs(json!({"zone": ZONE, "name": "www", "type": "A", "records": ["192.0.2.1"]}))
}

#[test]
fn import_stamps_the_marker_and_changes_nothing_else() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    theirs(&pdns);
    let before = raw_rrset(&pdns, "www.claimed.test.", "A");

    let t = record_target("web");
    let found = client.import(t, ID, &spec()).unwrap();
    assert_eq!(found.id, ID);
    assert_eq!(found.observed.outputs["fqdn"], "www.claimed.test.");
    // The object as it is, in the spec's spelling where that means the same.
    assert_eq!(
        Value::Object(found.observed.inputs.clone()),
        json!({
            "zone": ZONE, "name": "www", "type": "A",
            "records": ["198.51.100.1", "198.51.100.2"], "ttl": 600,
        })
    );

    let after = raw_rrset(&pdns, "www.claimed.test.", "A");
    assert_eq!(after["ttl"], before["ttl"]);
    assert_eq!(after["records"], before["records"]);
    let mut comments = before["comments"].as_array().unwrap().clone();
    assert_eq!(comments.len(), 1);
    let stamped = after["comments"].as_array().unwrap();
    assert_eq!(stamped.len(), 2, "{after}");
    assert!(
        stamped.contains(&comments[0]),
        "their comment is kept exactly (account, time): {after}"
    );
    assert!(
        stamped
            .iter()
            .any(|c| c["content"] == "fabrik:pdns-test/web"),
        "{after}"
    );
    assert_eq!(
        dns::answers(pdns.dns_port, "www.claimed.test.", "A"),
        ["198.51.100.1", "198.51.100.2"]
    );

    // Importing again changes nothing and finds the same object.
    let again = client.import(t, ID, &spec()).unwrap();
    assert_eq!(again, found);
    comments.push(
        stamped
            .iter()
            .find(|c| c["content"] == "fabrik:pdns-test/web")
            .unwrap()
            .clone(),
    );
    let mut now = raw_rrset(&pdns, "www.claimed.test.", "A")["comments"]
        .as_array()
        .unwrap()
        .clone();
    let key = |c: &Value| c["content"].as_str().unwrap().to_string();
    now.sort_by_key(key);
    comments.sort_by_key(key);
    assert_eq!(now, comments);

    // Now it is the resource's: find claims it, an update makes it as the spec says (their
    // comment still kept), and its delete removes it.
    let spec_now = attrs(json!({
        "zone": ZONE, "name": "www", "type": "A",
        "records": ["198.51.100.1", "198.51.100.2"], "ttl": 600,
    }));
    assert_eq!(client.find(t, &spec_now).unwrap().unwrap().id, ID);
    client.update(t, ID, &spec_now, &spec()).unwrap();
    let updated = raw_rrset(&pdns, "www.claimed.test.", "A");
    assert_eq!(updated["ttl"], 300);
    assert_eq!(
        updated["records"],
        json!([{"content": "192.0.2.1", "disabled": false}])
    );
    let mut kept = updated["comments"].as_array().unwrap().clone();
    kept.sort_by_key(key);
    assert_eq!(kept.len(), 2, "{updated}");
    assert_eq!(kept[1], comments[1], "their comment, exactly: {updated}");
    assert_eq!(kept[0]["content"], "fabrik:pdns-test/web");
    client.delete(t, ID, &spec()).unwrap();
    assert_eq!(raw_rrset(&pdns, "www.claimed.test.", "A"), Value::Null);
}

#[test]
fn import_accepts_the_id_in_other_spellings() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    theirs(&pdns);
    for id in [
        "Claimed.Test/WWW.claimed.test/a",
        "claimed.test./www/A",
        "claimed.test./www.claimed.test./A",
    ] {
        let found = client.import(record_target("web"), id, &spec()).unwrap();
        assert_eq!(found.id, ID, "{id}");
    }
    pdns.raw_rrset(
        "claimed.test.",
        "claimed.test.",
        "TXT",
        60,
        &["\"v=spf1 -all\""],
    );
    let apex = attrs(json!({"zone": ZONE, "name": "@", "type": "TXT", "records": ["v=spf1 -all"]}));
    let found = client
        .import(record_target("spf"), "claimed.test./@/txt", &apex)
        .unwrap();
    assert_eq!(found.id, "claimed.test./claimed.test./TXT");
    assert_eq!(found.observed.inputs, {
        let mut same = apex.clone();
        same.insert("ttl".into(), json!(60));
        same
    });
}

#[test]
fn import_never_takes_another_resources_rrset() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    client.create(record_target("first"), &spec()).unwrap();
    let before = raw_rrset(&pdns, "www.claimed.test.", "A");
    let err = client
        .import(record_target("second"), ID, &spec())
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("fabrik:pdns-test/first"),
        "{}",
        err.message
    );
    assert_eq!(raw_rrset(&pdns, "www.claimed.test.", "A"), before);
    // Nor does a create in its way suggest an import that would be refused.
    let err = client.create(record_target("second"), &spec()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(!err.message.contains("fabrik import"), "{}", err.message);
}

#[test]
fn import_refuses_what_is_missing_malformed_or_not_the_specs() {
    let pdns = Pdns::start();
    let client = pdns.client();
    let t = record_target("web");

    let err = client.import(t, ID, &spec()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "no zone: {}", err.message);

    make_zone(client.as_ref(), ZONE);
    let err = client.import(t, ID, &spec()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "no RRset: {}", err.message);
    assert!(
        err.message.contains("www.claimed.test. A"),
        "{}",
        err.message
    );

    for bad in [
        "www",
        "claimed.test./A",
        "claimed.test./www.other.test./A",
        "",
    ] {
        let err = client.import(t, bad, &spec()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}: {}", err.message);
    }

    // Another RRset than the spec's is refused before anything is written.
    theirs(&pdns);
    pdns.raw_rrset(
        "claimed.test.",
        "api.claimed.test.",
        "A",
        60,
        &["198.51.100.9"],
    );
    let before = raw_rrset(&pdns, "api.claimed.test.", "A");
    let err = client
        .import(t, "claimed.test./api.claimed.test./A", &spec())
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.contains("name www.claimed.test. in the spec"),
        "{}",
        err.message
    );
    assert_eq!(raw_rrset(&pdns, "api.claimed.test.", "A"), before);

    // Only disabled records: nothing served, nothing to manage. (PowerDNS 4.7 leaves such an
    // RRset out of a filtered read, so it is not found; a server that lists it is refused as
    // one fabrik cannot manage.)
    let (status, body) = pdns.raw(
        "PATCH",
        "/zones/claimed.test.",
        Some(json!({"rrsets": [{
            "name": "off.claimed.test.", "type": "A", "ttl": 60, "changetype": "REPLACE",
            "records": [{"content": "198.51.100.3", "disabled": true}],
        }]})),
    );
    assert_eq!(status, 204, "{body}");
    let off = attrs(json!({"zone": ZONE, "name": "off", "type": "A", "records": ["192.0.2.1"]}));
    let err = client
        .import(
            record_target("off"),
            "claimed.test./off.claimed.test./A",
            &off,
        )
        .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::NotFound | ErrorKind::InvalidInput),
        "{:?}: {}",
        err.kind,
        err.message
    );
    assert!(
        raw_rrset(&pdns, "off.claimed.test.", "A")["comments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_zone_is_imported_by_name_as_it_is() {
    let pdns = Pdns::start();
    let client = pdns.client();
    pdns.raw_zone("claimed.test.");
    let t = zone_target("zone");
    let spec = attrs(json!({"name": ZONE, "nameservers": ["ns1.claimed.test."]}));
    for id in ["claimed.test.", "Claimed.Test"] {
        let found = client.import(t, id, &spec).unwrap();
        assert_eq!(found.id, "claimed.test.");
        assert_eq!(
            Value::Object(found.observed.inputs),
            json!({"name": ZONE, "nameservers": ["ns1.claimed.test."]})
        );
        assert!(found.observed.outputs["serial"].as_u64().unwrap() > 0);
    }

    let err = client.import(t, "other.test.", &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err.message);
    let other = attrs(json!({"name": "other.test"}));
    let err = client.import(t, "other.test.", &other).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{}", err.message);
    let err = client.import(t, "a..b", &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err.message);

    // A create of an existing zone names the import that would take it.
    let err = client.create(t, &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("`fabrik import zone claimed.test.`"),
        "{}",
        err.message
    );
}
