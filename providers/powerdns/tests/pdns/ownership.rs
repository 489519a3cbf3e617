//! What fabrik did not create is never overwritten or deleted.

use fabrik_provider::ErrorKind;
use serde_json::json;

use crate::dns;
use crate::harness::{Pdns, attrs, make_zone, record_target};

const ZONE: &str = "owned.test";

#[test]
fn an_unowned_rrset_is_refused_on_create_and_left_by_delete() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    pdns.raw_rrset(
        "owned.test.",
        "taken.owned.test.",
        "A",
        600,
        &["198.51.100.1"],
    );
    let before = pdns.rrset("owned.test.", "taken.owned.test.", "A").unwrap();

    let t = record_target("taken");
    let spec = attrs(json!({"zone": ZONE, "name": "taken", "type": "A", "records": ["192.0.2.1"]}));
    let err = client.create(t, &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("taken.owned.test. A"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("not managed by fabrik"),
        "{}",
        err.message
    );
    assert!(err.message.contains("import"), "{}", err.message);

    // An update refuses too; find does not claim it; delete leaves it alone.
    let id = "owned.test./taken.owned.test./A";
    let err = client.update(t, id, &spec, &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(client.find(t, &spec).unwrap(), None);
    client.delete(t, id, &spec).unwrap();

    assert_eq!(
        pdns.rrset("owned.test.", "taken.owned.test.", "A").unwrap(),
        before
    );
    assert_eq!(
        dns::answers(pdns.dns_port, "taken.owned.test.", "A"),
        ["198.51.100.1"]
    );
}

#[test]
fn another_resources_rrset_is_refused_by_name() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let spec = attrs(json!({"zone": ZONE, "name": "www", "type": "A", "records": ["192.0.2.1"]}));
    client.create(record_target("first"), &spec).unwrap();
    let err = client.create(record_target("second"), &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("fabrik:pdns-test/first"),
        "{}",
        err.message
    );
    // The second resource's delete leaves the first one's RRset.
    client
        .delete(
            record_target("second"),
            "owned.test./www.owned.test./A",
            &spec,
        )
        .unwrap();
    assert_eq!(
        dns::answers(pdns.dns_port, "www.owned.test.", "A"),
        ["192.0.2.1"]
    );
}

#[test]
fn other_rrsets_of_the_zone_stay_exactly_as_they_were() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    // Someone else's RRsets beside ours, at the same name and elsewhere.
    pdns.raw_rrset(
        "owned.test.",
        "www.owned.test.",
        "TXT",
        900,
        &["\"theirs\""],
    );
    pdns.raw_rrset(
        "owned.test.",
        "other.owned.test.",
        "A",
        900,
        &["198.51.100.2"],
    );
    let theirs = |pdns: &Pdns| {
        (
            pdns.rrset("owned.test.", "www.owned.test.", "TXT"),
            pdns.rrset("owned.test.", "other.owned.test.", "A"),
        )
    };
    let before = theirs(&pdns);
    let t = record_target("web");
    let spec = attrs(json!({"zone": ZONE, "name": "www", "type": "A", "records": ["192.0.2.1"]}));
    let id = client.create(t, &spec).unwrap().id;
    let changed =
        attrs(json!({"zone": ZONE, "name": "www", "type": "A", "records": ["192.0.2.2"]}));
    client.update(t, &id, &spec, &changed).unwrap();
    client.delete(t, &id, &changed).unwrap();
    assert_eq!(theirs(&pdns), before);
    assert!(before.0.is_some() && before.1.is_some());
}

/// An RRset whose records are all disabled is left out of PowerDNS's filtered read; it is
/// someone's all the same, and neither a lone create nor a batch writes over it.
#[test]
fn an_unowned_rrset_with_every_record_disabled_is_not_taken_for_a_free_place() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let (status, body) = pdns.raw(
        "PATCH",
        "/zones/owned.test.",
        Some(json!({"rrsets": [{
            "name": "off.owned.test.", "type": "A", "ttl": 60, "changetype": "REPLACE",
            "records": [{"content": "198.51.100.7", "disabled": true}],
        }]})),
    );
    assert_eq!(status, 204, "{body}");
    let spec = attrs(json!({"zone": ZONE, "name": "off", "type": "A", "records": ["192.0.2.1"]}));
    let err = client.create(record_target("off"), &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    let other =
        attrs(json!({"zone": ZONE, "name": "other", "type": "A", "records": ["192.0.2.2"]}));
    let calls = [
        fabrik_provider::Call {
            target: record_target("off"),
            change: fabrik_provider::Change::Create { inputs: &spec },
        },
        fabrik_provider::Call {
            target: record_target("other"),
            change: fabrik_provider::Change::Create { inputs: &other },
        },
    ];
    let results = client.apply_batch(&calls);
    assert_eq!(
        results[0].as_ref().unwrap_err().kind,
        ErrorKind::Conflict,
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
    let (status, body) = pdns.raw("GET", "/zones/owned.test.", None);
    assert_eq!(status, 200);
    let zone: serde_json::Value = serde_json::from_str(&body).unwrap();
    let off = zone["rrsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "off.owned.test.")
        .unwrap();
    assert_eq!(
        off["records"],
        json!([{"content": "198.51.100.7", "disabled": true}]),
        "untouched"
    );
    assert_eq!(off["comments"], json!([]));
}
