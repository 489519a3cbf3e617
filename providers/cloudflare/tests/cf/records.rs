//! Single-record calls: the life of a record, normal forms, drift, ownership, duplicates,
//! import and adopt.

use fabrik_cloudflare::record;
use fabrik_provider::{Client, Creation, ErrorKind, Read};
use serde_json::json;

use crate::harness::{ZONE, a_record, attrs, client, client_with, fake, named, quick, target};

#[test]
fn a_record_is_created_read_found_updated_and_deleted() {
    let fake = fake();
    let client = client(&fake);
    let t = target("www");
    let spec = a_record("www", "192.0.2.10");
    let applied = client.create(t, &spec).unwrap();
    assert_eq!(fake.requests().len(), 2, "a zone lookup and the create");
    assert_eq!(applied.outputs["id"], applied.id.as_str());
    assert!(
        applied.outputs["zone_id"]
            .as_str()
            .is_some_and(|z| z.len() == 32)
    );
    let stored = fake.record(&applied.id).unwrap();
    assert_eq!(stored["name"], "www.example.com");
    assert_eq!(stored["content"], "192.0.2.10");
    assert_eq!(stored["ttl"], 1);
    assert_eq!(stored["comment"], "fabrik:cf-test/www", "the marker alone");

    let normal = record::normalise(&spec).unwrap();
    let seen = client.read(t, &applied.id, &spec).unwrap().unwrap();
    assert_eq!(
        seen.inputs, normal,
        "read shows the normal form, marker stripped"
    );
    let found = client.find(t, &spec).unwrap().unwrap();
    assert_eq!(found.id, applied.id);
    assert_eq!(
        fake.requests().len(),
        4,
        "the zone's id is looked up once per client"
    );

    let changed = attrs(json!({
        "zone": ZONE, "name": "www", "type": "A", "content": "192.0.2.20",
        "ttl": 300, "comment": "front door",
    }));
    let updated = client.update(t, &applied.id, &spec, &changed).unwrap();
    assert_eq!(updated.id, applied.id, "updated in place");
    let stored = fake.record(&applied.id).unwrap();
    assert_eq!(stored["content"], "192.0.2.20");
    assert_eq!(stored["ttl"], 300);
    assert_eq!(stored["comment"], "front door fabrik:cf-test/www");
    let seen = client.read(t, &applied.id, &changed).unwrap().unwrap();
    assert_eq!(seen.inputs["comment"], "front door");
    assert_eq!(seen.inputs, record::normalise(&changed).unwrap());

    client.delete(t, &applied.id, &changed).unwrap();
    assert!(fake.record(&applied.id).is_none());
    assert_eq!(client.read(t, &applied.id, &changed).unwrap(), None);
    client.delete(t, &applied.id, &changed).unwrap();
    fake.assert_no_violations();
}

#[test]
fn respellings_read_back_as_the_same_normal_form() {
    let fake = fake();
    let client = client(&fake);
    let spec = attrs(json!({
        "zone": "Example.COM.", "name": "V6.example.com.", "type": "aaaa",
        "content": "2001:DB8:0:0:0:0:0:1",
    }));
    let applied = client.create(target("v6"), &spec).unwrap();
    assert_eq!(fake.record(&applied.id).unwrap()["content"], "2001:db8::1");
    let seen = client
        .read(target("v6"), &applied.id, &spec)
        .unwrap()
        .unwrap();
    assert_eq!(seen.inputs, record::normalise(&spec).unwrap());

    let mx = attrs(json!({
        "zone": ZONE, "name": "@", "type": "MX", "content": "Mail.Example.com.", "priority": 10,
    }));
    let applied = client.create(target("mx"), &mx).unwrap();
    let stored = fake.record(&applied.id).unwrap();
    assert_eq!(
        (stored["name"].as_str(), stored["priority"].as_u64()),
        (Some(ZONE), Some(10))
    );
    let seen = client
        .read(target("mx"), &applied.id, &mx)
        .unwrap()
        .unwrap();
    assert_eq!(seen.inputs, record::normalise(&mx).unwrap());
    fake.assert_no_violations();
}

#[test]
fn drift_shows_in_a_read() {
    let fake = fake();
    let client = client(&fake);
    let spec = a_record("www", "192.0.2.10");
    let applied = client.create(target("www"), &spec).unwrap();
    fake.edit_record(
        &applied.id,
        json!({"content": "198.51.100.7", "proxied": true}),
    );
    let seen = client
        .read(target("www"), &applied.id, &spec)
        .unwrap()
        .unwrap();
    assert_eq!(seen.inputs["content"], "198.51.100.7");
    assert_eq!(seen.inputs["proxied"], true);
    fake.assert_no_violations();
}

#[test]
fn read_many_lists_the_zone_once_over_several_pages() {
    let fake = fake();
    fake.set_max_per_page(100);
    for i in 0..250 {
        fake.insert_record(
            ZONE,
            json!({"type": "TXT", "name": format!("t{i}"), "content": format!("v{i}")}),
        );
    }
    let client = client(&fake);
    let specs: Vec<_> = (0..3)
        .map(|i| a_record(&format!("r{i}"), &format!("192.0.2.{i}")))
        .collect();
    let names: Vec<String> = (0..3).map(|i| format!("r{i}")).collect();
    let ids: Vec<String> = specs
        .iter()
        .zip(&names)
        .map(|(s, n)| client.create(target(n), s).unwrap().id)
        .collect();
    fake.remove_record(&ids[1]);
    let before = fake.count("GET", "/dns_records");
    let items: Vec<Read<'_>> = (0..3)
        .map(|i| Read {
            target: target(&names[i]),
            id: &ids[i],
            inputs: &specs[i],
        })
        .collect();
    let results = client.read_many(&items);
    assert_eq!(
        fake.count("GET", "/dns_records") - before,
        3,
        "252 records, 100 a page"
    );
    assert_eq!(
        results[0].as_ref().unwrap().as_ref().unwrap().inputs["content"],
        "192.0.2.0"
    );
    assert!(
        results[1].as_ref().unwrap().is_none(),
        "deleted behind fabrik's back"
    );
    assert_eq!(
        results[2].as_ref().unwrap().as_ref().unwrap().outputs["id"],
        ids[2].as_str()
    );
    fake.assert_no_violations();
}

#[test]
fn an_identical_unowned_record_is_a_conflict_naming_import_and_adopt() {
    for code in [81_058, 81_057] {
        let fake = fake();
        fake.set_duplicate_code(code);
        let theirs = fake.insert_record(
            ZONE,
            json!({"type": "A", "name": "www", "content": "192.0.2.10", "ttl": 120}),
        );
        let client = client(&fake);
        let err = client
            .create(target("www"), &a_record("www", "192.0.2.10"))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{code}: {err}");
        assert!(
            err.message.contains(&format!("fabrik import www {theirs}")),
            "{err}"
        );
        assert!(err.message.contains("adopt: true"), "{err}");
        assert!(err.message.contains("not managed by fabrik"), "{err}");
        let stored = fake.record(&theirs).unwrap();
        assert_eq!(
            (stored["ttl"].as_u64(), stored["comment"].is_null()),
            (Some(120), true),
            "untouched"
        );
        assert_eq!(named(&fake, "www.example.com").len(), 1);
        fake.assert_no_violations();
    }
}

#[test]
fn a_repeated_create_converges_on_our_own_record() {
    let fake = fake();
    let client = client(&fake);
    let spec = a_record("www", "192.0.2.10");
    let first = client.create(target("www"), &spec).unwrap();
    let again = client.create(target("www"), &spec).unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(named(&fake, "www.example.com").len(), 1);
    fake.assert_no_violations();
}

#[test]
fn records_without_our_marker_are_never_changed_or_deleted() {
    let fake = fake();
    let client = client(&fake);
    let theirs = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "www", "content": "192.0.2.10", "comment": "by hand"}),
    );
    let other = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "api", "content": "192.0.2.11", "comment": "fabrik:other/api"}),
    );
    let spec = a_record("www", "192.0.2.99");
    let err = client
        .update(target("www"), &theirs, &spec, &spec)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    client.delete(target("www"), &theirs, &spec).unwrap();
    client
        .delete(target("api"), &other, &a_record("api", "192.0.2.11"))
        .unwrap();
    assert_eq!(fake.record(&theirs).unwrap()["content"], "192.0.2.10");
    assert_eq!(fake.record(&other).unwrap()["comment"], "fabrik:other/api");
    // A record of the same name with other content is no obstacle: Cloudflare keeps both.
    let ours = client.create(target("www"), &spec).unwrap();
    assert_eq!(named(&fake, "www.example.com").len(), 2);
    assert_ne!(ours.id, theirs);
    fake.assert_no_violations();
}

#[test]
fn import_stamps_the_marker_and_changes_nothing_else() {
    let fake = fake();
    let client = client(&fake);
    let theirs = fake.insert_record(ZONE, json!({"type": "A", "name": "www", "content": "192.0.2.10", "ttl": 120, "comment": "by hand", "tags": ["team:web"]}));
    let before = fake.record(&theirs).unwrap();
    let spec = a_record("www", "192.0.2.99");
    let found = client.import(target("www"), &theirs, &spec).unwrap();
    assert_eq!(found.id, theirs);
    assert_eq!(
        found.observed.inputs["content"], "192.0.2.10",
        "as it is, not as the spec says"
    );
    assert_eq!(found.observed.inputs["comment"], "by hand");
    let after = fake.record(&theirs).unwrap();
    assert_eq!(after["comment"], "by hand fabrik:cf-test/www");
    for field in ["content", "ttl", "proxied", "tags", "name", "type"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    // Importing again is a no-op; another resource cannot take it.
    client.import(target("www"), &theirs, &spec).unwrap();
    let err = client.import(target("web"), &theirs, &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("fabrik:cf-test/www"), "{err}");
    let err = client
        .import(target("www"), &"0".repeat(32), &spec)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let loose = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "loose", "content": "192.0.2.77"}),
    );
    let txt = attrs(json!({"zone": ZONE, "name": "loose", "type": "TXT", "content": "x"}));
    let err = client.import(target("loose"), &loose, &txt).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::InvalidInput,
        "an A record is not a TXT resource"
    );
    fake.assert_no_violations();
}

#[test]
fn adopt_takes_over_an_unowned_record_but_never_anothers() {
    let fake = fake();
    let client = client(&fake);
    let theirs = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "www", "content": "192.0.2.10"}),
    );
    let applied = client
        .adopt(target("www"), &a_record("www", "192.0.2.20"))
        .unwrap();
    assert_eq!(applied.id, theirs, "the only unowned A record of the name");
    let stored = fake.record(&theirs).unwrap();
    assert_eq!(
        (stored["content"].as_str(), stored["comment"].as_str()),
        (Some("192.0.2.20"), Some("fabrik:cf-test/www"))
    );

    fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "api", "content": "192.0.2.30", "comment": "fabrik:other/api"}),
    );
    let err = client
        .adopt(target("api"), &a_record("api", "192.0.2.30"))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("fabrik:other/api"), "{err}");
    // Nothing there: adopt creates.
    let created = client
        .adopt(target("new"), &a_record("new", "192.0.2.40"))
        .unwrap();
    assert_eq!(
        fake.record(&created.id).unwrap()["comment"],
        "fabrik:cf-test/new"
    );
    fake.assert_no_violations();
}

#[test]
fn a_refused_token_is_unauthorized_and_a_missing_zone_not_found() {
    let fake = fake();
    let bad = client_with(&fake, json!({"token": "wrong"}), quick());
    let err = bad
        .create(target("www"), &a_record("www", "192.0.2.1"))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
    assert!(err.message.contains("`token`"), "{err}");
    let client = client(&fake);
    let spec =
        attrs(json!({"zone": "nope.example", "name": "www", "type": "A", "content": "192.0.2.1"}));
    let err = client.create(target("www"), &spec).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.contains("nope.example"), "{err}");
    fake.assert_no_violations();
}

#[test]
fn txt_is_kept_as_given_and_cname_targets_are_normalised() {
    let fake = fake();
    let client = client(&fake);
    let txt = attrs(json!({
        "zone": ZONE, "name": "@", "type": "TXT",
        "content": "v=spf1 include:_spf.example.com ~all", "ttl": 3600,
    }));
    let cname = attrs(json!({
        "zone": ZONE, "name": "shop", "type": "CNAME", "content": "Shops.Example.NET.",
        "proxied": true,
    }));
    for (name, spec) in [("spf", &txt), ("shop", &cname)] {
        let applied = client.create(target(name), spec).unwrap();
        let seen = client
            .read(target(name), &applied.id, spec)
            .unwrap()
            .unwrap();
        assert_eq!(seen.inputs, record::normalise(spec).unwrap(), "{name}");
    }
    let stored = named(&fake, ZONE);
    assert_eq!(stored[0]["content"], "v=spf1 include:_spf.example.com ~all");
    let shop = named(&fake, "shop.example.com");
    assert_eq!(
        (shop[0]["content"].as_str(), shop[0]["proxied"].as_bool()),
        (Some("shops.example.net"), Some(true))
    );
    fake.assert_no_violations();
}

/// Before an apply, what is in the way of each create is found with one listing of the zone:
/// an identical record, or a name a CNAME would have to share; the resource's own record (its
/// answer lost) and records beside an A are not in the way.
#[test]
fn obstacles_are_found_with_one_listing() {
    let fake = fake();
    let theirs = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "www", "content": "192.0.2.10", "ttl": 120}),
    );
    fake.insert_record(
        ZONE,
        json!({"type": "TXT", "name": "alias", "content": "\"note\"", "ttl": 120}),
    );
    let client = client(&fake);
    client
        .create(target("mine"), &a_record("mine", "192.0.2.30"))
        .unwrap();
    let specs = [
        ("www", a_record("www", "192.0.2.10")),
        ("round", a_record("www", "192.0.2.11")),
        (
            "alias",
            attrs(
                json!({"zone": ZONE, "name": "alias", "type": "CNAME", "content": "www.example.com"}),
            ),
        ),
        ("mine", a_record("mine", "192.0.2.30")),
        ("fresh", a_record("fresh", "192.0.2.40")),
    ];
    let creations: Vec<Creation<'_>> = specs
        .iter()
        .map(|(name, inputs)| Creation {
            target: target(name),
            inputs,
        })
        .collect();
    let before = fake.requests().len();
    let found = client.obstacles(&creations);
    let requests = &fake.requests()[before..];
    assert!(requests.iter().all(|l| l.method == "GET"), "{requests:?}");
    assert!(
        requests.len() <= 2,
        "the zone and one listing: {requests:?}"
    );
    let found: Vec<Option<String>> = found.into_iter().map(Result::unwrap).collect();
    let www = found[0]
        .as_deref()
        .expect("an identical record is in the way");
    assert!(
        www.contains(&format!("fabrik import www {theirs}")),
        "{www}"
    );
    assert_eq!(found[1], None, "another address beside it is allowed");
    let alias = found[2]
        .as_deref()
        .expect("a CNAME cannot stand beside a TXT");
    assert!(alias.contains("CNAME"), "{alias}");
    assert_eq!(found[3], None, "its own record is not in the way");
    assert_eq!(found[4], None);
    fake.assert_no_violations();
}
