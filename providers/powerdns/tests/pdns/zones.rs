//! `powerdns.zone`: create, read, find, delete, and what is never taken over or lost.

use fabrik_provider::{ErrorKind, Value};
use hickory_proto::op::ResponseCode;
use serde_json::json;

use crate::dns;
use crate::harness::{Pdns, attrs, make_zone, record_target, zone_target};

#[test]
fn zone_create_read_find_delete() {
    let pdns = Pdns::start();
    let client = pdns.client();
    let t = zone_target("zone");
    let spec = attrs(json!({
        "name": "Example.Test",
        "kind": "native",
        "nameservers": ["NS1.example.test", "ns2.example.test."],
    }));
    let applied = client.create(t, &spec).unwrap();
    assert_eq!(applied.id, "example.test.");
    assert_eq!(applied.outputs["id"], "example.test.");
    assert!(applied.outputs["serial"].as_u64().unwrap() > 0);

    // Read reports the zone in the spec's own spelling: no change to show.
    let seen = client.read(t, &applied.id, &spec).unwrap().unwrap();
    assert_eq!(seen.inputs, spec);
    let found = client.find(t, &spec).unwrap().unwrap();
    assert_eq!(found.id, applied.id);
    assert_eq!(found.observed.inputs, spec);

    // The server serves it.
    let soa = dns::ask(pdns.dns_port, "example.test.", "SOA");
    assert_eq!(soa.code, ResponseCode::NoError);
    assert_eq!(soa.records.len(), 1);
    assert_eq!(
        dns::answers(pdns.dns_port, "example.test.", "NS"),
        ["ns1.example.test.", "ns2.example.test."]
    );

    client.delete(t, &applied.id, &spec).unwrap();
    assert!(!pdns.zone_exists("example.test."));
    assert_eq!(client.read(t, &applied.id, &spec).unwrap(), None);
    assert_eq!(client.find(t, &spec).unwrap(), None);
    assert_eq!(
        dns::ask(pdns.dns_port, "example.test.", "SOA").code,
        ResponseCode::Refused
    );
    // Deleting what is gone is fine.
    client.delete(t, &applied.id, &spec).unwrap();
}

#[test]
fn a_changed_kind_shows_as_the_servers_kind() {
    let pdns = Pdns::start();
    let client = pdns.client();
    let t = zone_target("zone");
    let spec = attrs(json!({"name": "kind.test"}));
    let id = client.create(t, &spec).unwrap().id;
    assert_eq!(client.read(t, &id, &spec).unwrap().unwrap().inputs, spec);
    let (status, body) = pdns.raw("PUT", "/zones/kind.test.", Some(json!({"kind": "Master"})));
    assert_eq!(status, 204, "{body}");
    let seen = client.read(t, &id, &spec).unwrap().unwrap();
    assert_eq!(
        Value::Object(seen.inputs),
        json!({"name": "kind.test", "kind": "Master"})
    );
    // "Primary" is what 4.7 calls Master: no difference.
    let primary = attrs(json!({"name": "kind.test.", "kind": "Primary"}));
    assert_eq!(
        client.read(t, &id, &primary).unwrap().unwrap().inputs,
        primary
    );
}

#[test]
fn an_existing_zone_is_a_conflict_not_taken_over() {
    let pdns = Pdns::start();
    pdns.raw_zone("theirs.test.");
    let client = pdns.client();
    let err = client
        .create(zone_target("zone"), &attrs(json!({"name": "theirs.test"})))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("theirs.test."), "{}", err.message);
    assert!(err.message.contains("import"), "{}", err.message);
    assert!(pdns.zone_exists("theirs.test."));
}

#[test]
fn a_zone_holding_rrsets_of_others_is_not_deleted() {
    let pdns = Pdns::start();
    let client = pdns.client();
    let t = zone_target("zone");
    let spec = attrs(json!({"name": "shared.test"}));
    let id = make_zone(client.as_ref(), "shared.test");
    // One RRset of this stack, one written by someone else.
    let ours = attrs(json!({
        "zone": "shared.test", "name": "ours", "type": "A", "records": ["192.0.2.1"],
    }));
    client.create(record_target("ours"), &ours).unwrap();
    pdns.raw_rrset(
        "shared.test.",
        "theirs.shared.test.",
        "A",
        300,
        &["192.0.2.2"],
    );

    let err = client.delete(t, &id, &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("theirs.shared.test. A"),
        "{}",
        err.message
    );
    assert!(
        !err.message.contains("ours.shared.test."),
        "{}",
        err.message
    );
    assert!(pdns.zone_exists("shared.test."));
    assert_eq!(
        dns::answers(pdns.dns_port, "theirs.shared.test.", "A"),
        ["192.0.2.2"]
    );

    // Once only this stack's RRsets (and the SOA and NS) are left, the zone goes.
    let (status, _) = pdns.raw(
        "PATCH",
        "/zones/shared.test.",
        Some(json!({"rrsets": [{"name": "theirs.shared.test.", "type": "A", "changetype": "DELETE"}]})),
    );
    assert_eq!(status, 204);
    client.delete(t, &id, &spec).unwrap();
    assert!(!pdns.zone_exists("shared.test."));
}
