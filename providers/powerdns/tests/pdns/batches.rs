//! Batches: many RRset changes of a zone in one PATCH (counted by the SOA serial, which
//! PowerDNS raises once per PATCH), ownership checked per change, and many reads in one.

use fabrik_provider::{Applied, Call, Change, Read, Result, Value};
use serde_json::json;

use crate::harness::{Pdns, attrs, make_zone, record_target};

const ZONE: &str = "batch.test";

fn serial(pdns: &Pdns) -> u64 {
    let (status, body) = pdns.raw("GET", "/zones/batch.test.?rrsets=false", None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["serial"]
        .as_u64()
        .unwrap()
}

fn a_record(name: &str, address: &str) -> fabrik_provider::Attributes {
    attrs(json!({"zone": ZONE, "name": name, "type": "A", "records": [address]}))
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("host{i:03}")).collect()
}

fn creates<'a>(names: &'a [String], inputs: &'a [fabrik_provider::Attributes]) -> Vec<Call<'a>> {
    names
        .iter()
        .zip(inputs)
        .map(|(name, inputs)| Call {
            target: record_target(name),
            change: Change::Create { inputs },
        })
        .collect()
}

fn ok(results: &[Result<Option<Applied>>]) -> usize {
    results.iter().filter(|r| r.is_ok()).count()
}

#[test]
fn a_batch_is_one_patch_and_each_change_answers_for_itself() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    // Someone else's RRset where one of ours would go: that change fails alone.
    pdns.raw_rrset(
        "batch.test.",
        "host007.batch.test.",
        "A",
        60,
        &["192.0.2.250"],
    );
    let names = names(60);
    let inputs: Vec<_> = (0..60)
        .map(|i| a_record(&names[i], &format!("192.0.2.{i}")))
        .collect();
    let calls = creates(&names, &inputs);
    assert!(
        calls
            .iter()
            .all(|c| client.batch_key(c.target, &inputs[0]).as_deref() == Some("batch.test.")),
        "records batch by zone"
    );

    let before = serial(&pdns);
    let results = client.apply_batch(&calls);
    assert_eq!(serial(&pdns), before + 1, "one PATCH for the whole batch");
    assert_eq!(results.len(), 60);
    assert_eq!(ok(&results), 59);
    let refused = results[7].as_ref().unwrap_err();
    assert_eq!(refused.kind, fabrik_provider::ErrorKind::Conflict);
    assert!(
        refused.message.contains("fabrik import host007"),
        "{refused}"
    );
    assert_eq!(
        pdns.rrset("batch.test.", "host007.batch.test.", "A"),
        Some((60, vec!["192.0.2.250".into()], vec![])),
        "the unowned RRset is untouched"
    );
    let applied = results[3].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(applied.id, "batch.test./host003.batch.test./A");
    assert_eq!(
        pdns.rrset("batch.test.", "host003.batch.test.", "A"),
        Some((
            300,
            vec!["192.0.2.3".into()],
            vec!["fabrik:pdns-test/host003".into()]
        ))
    );

    // Repeating the batch (as after a crash) writes nothing: every create is already there.
    let before = serial(&pdns);
    let again = client.apply_batch(&calls);
    assert_eq!(ok(&again), 59);
    assert_eq!(serial(&pdns), before, "nothing to write, no PATCH");

    // Reads of the whole batch: one per record, in order, the user's spelling kept.
    let ids: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(Some(a)) => a.id.clone(),
            _ => "batch.test./host007.batch.test./A".into(),
        })
        .collect();
    let reads: Vec<Read<'_>> = (0..60)
        .map(|i| Read {
            target: record_target(&names[i]),
            id: &ids[i],
            inputs: &inputs[i],
        })
        .collect();
    let seen = client.read_many(&reads);
    assert_eq!(seen.len(), 60);
    let host5 = seen[5].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(host5.inputs, inputs[5]);
    assert_eq!(host5.outputs["fqdn"], "host005.batch.test.");

    // Updates and deletes batch the same way; the unowned RRset is never deleted.
    let changed: Vec<_> = (0..60)
        .map(|i| a_record(&names[i], &format!("198.51.100.{i}")))
        .collect();
    let updates: Vec<Call<'_>> = (0..60)
        .filter(|&i| i != 7)
        .map(|i| Call {
            target: record_target(&names[i]),
            change: Change::Update {
                id: &ids[i],
                prior: &inputs[i],
                inputs: &changed[i],
            },
        })
        .collect();
    let before = serial(&pdns);
    assert_eq!(ok(&client.apply_batch(&updates)), 59);
    assert_eq!(serial(&pdns), before + 1);
    assert_eq!(
        pdns.rrset("batch.test.", "host010.batch.test.", "A")
            .unwrap()
            .1,
        ["198.51.100.10"]
    );
    let deletes: Vec<Call<'_>> = (0..60)
        .map(|i| Call {
            target: record_target(&names[i]),
            change: Change::Delete {
                id: &ids[i],
                inputs: &changed[i],
            },
        })
        .collect();
    let results = client.apply_batch(&deletes);
    assert!(results.iter().all(|r| matches!(r, Ok(None))));
    assert_eq!(pdns.rrset("batch.test.", "host010.batch.test.", "A"), None);
    assert!(
        pdns.rrset("batch.test.", "host007.batch.test.", "A")
            .is_some(),
        "a delete never touches what is not ours"
    );
}

#[test]
fn a_refused_patch_fails_every_change_it_carried_and_applies_none() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    // A CNAME beside other data: PowerDNS refuses the PATCH, atomically.
    pdns.raw_rrset("batch.test.", "alias.batch.test.", "TXT", 60, &["\"x\""]);
    let names = ["one".to_string(), "alias".to_string()];
    let inputs = [
        a_record("one", "192.0.2.1"),
        attrs(
            json!({"zone": ZONE, "name": "alias", "type": "CNAME", "records": ["one.batch.test."]}),
        ),
    ];
    let results = client.apply_batch(&creates(&names, &inputs));
    assert_eq!(ok(&results), 0, "{results:?}");
    assert_eq!(
        results[0].as_ref().unwrap_err().kind,
        fabrik_provider::ErrorKind::InvalidInput
    );
    assert_eq!(pdns.rrset("batch.test.", "one.batch.test.", "A"), None);
}

/// Reads of many RRsets come from the zone's export: contents with spaces and quotes, several
/// records per RRset and disabled records read as they do one at a time.
#[test]
fn reads_of_a_zone_at_once_match_reads_one_by_one() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let specs = [
        json!({"zone": ZONE, "name": "@", "type": "TXT", "records": ["hello world", "\"quoted \\\"inner\\\"\" \"two\""], "ttl": 60}),
        json!({"zone": ZONE, "name": "@", "type": "MX", "records": ["10 mail.batch.test.", "20 backup.batch.test."]}),
        json!({"zone": ZONE, "name": "www", "type": "CNAME", "records": ["batch.test."]}),
        json!({"zone": ZONE, "name": "v6", "type": "AAAA", "records": ["2001:db8::1"]}),
    ];
    let names = ["txt", "mx", "www", "v6"];
    let inputs: Vec<_> = specs.into_iter().map(attrs).collect();
    let ids: Vec<String> = names
        .iter()
        .zip(&inputs)
        .map(|(name, inputs)| client.create(record_target(name), inputs).unwrap().id)
        .collect();
    // One record of the MX RRset disabled behind fabrik's back: it is not served, so not seen.
    let (status, body) = pdns.raw(
        "PATCH",
        "/zones/batch.test.",
        Some(json!({"rrsets": [{
            "name": "batch.test.", "type": "MX", "ttl": 300, "changetype": "REPLACE",
            "records": [
                {"content": "10 mail.batch.test.", "disabled": false},
                {"content": "20 backup.batch.test.", "disabled": true},
            ],
        }]})),
    );
    assert_eq!(status, 204, "{body}");
    let reads: Vec<Read<'_>> = (0..names.len())
        .map(|i| Read {
            target: record_target(names[i]),
            id: &ids[i],
            inputs: &inputs[i],
        })
        .collect();
    let many = client.read_many(&reads);
    for (i, read) in reads.iter().enumerate() {
        let one = client.read(read.target, read.id, read.inputs).unwrap();
        assert_eq!(many[i].as_ref().unwrap(), &one, "{}", names[i]);
    }
    let txt = many[0].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(txt.inputs, inputs[0], "the spec's own spelling, no drift");
    let mx = many[1].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(mx.inputs["records"], json!(["10 mail.batch.test."]));
}
