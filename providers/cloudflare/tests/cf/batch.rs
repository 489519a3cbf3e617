//! Many changes of one zone through the batch endpoint: chunks of `batch_size`, ownership
//! checked per call before anything is sent, and honest per-call results.

use fabrik_provider::{Applied, Attributes, Call, Change, Client, ErrorKind};
use serde_json::json;

use crate::harness::{STACK, ZONE, a_record, client_with, fake, quick, target};

fn specs(n: usize, last_octet_base: usize) -> (Vec<String>, Vec<Attributes>) {
    let names: Vec<String> = (0..n).map(|i| format!("h{i}")).collect();
    let specs = (0..n)
        .map(|i| {
            a_record(
                &names[i],
                &format!(
                    "10.{}.{}.{}",
                    (i + last_octet_base) / 65_536 % 256,
                    (i / 256) % 256,
                    i % 256
                ),
            )
        })
        .collect();
    (names, specs)
}

/// A create of `inputs` for resource `name`.
fn create<'a>(name: &'a str, inputs: &'a Attributes) -> Call<'a> {
    Call {
        target: target(name),
        change: Change::Create { inputs },
    }
}

fn ok(results: Vec<fabrik_provider::Result<Option<Applied>>>) -> Vec<Option<Applied>> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("call {i}: {e}")))
        .collect()
}

#[test]
fn five_hundred_changes_go_out_in_chunks_of_the_batch_size() {
    let fake = fake();
    let client = client_with(&fake, json!({}), quick());
    let (names, creates) = specs(500, 0);
    let calls: Vec<Call<'_>> = names
        .iter()
        .zip(&creates)
        .map(|(n, s)| Call {
            target: target(n),
            change: Change::Create { inputs: s },
        })
        .collect();
    assert!(calls.iter().all(|c| client.batch_key(
        c.target,
        match c.change {
            Change::Create { inputs } => inputs,
            _ => unreachable!(),
        }
    ) == Some(format!("zone {ZONE}"))));
    let created = ok(client.apply_batch(&calls));
    assert_eq!(fake.count("POST", "/batch"), 3, "500 records, 200 a batch");
    assert_eq!(
        fake.requests().len(),
        5,
        "a zone lookup, one list, three batches"
    );
    let records = fake.records(ZONE);
    assert_eq!(records.len(), 500);
    for (i, applied) in created.iter().enumerate() {
        let applied = applied.as_ref().unwrap();
        let stored = fake.record(&applied.id).unwrap();
        assert_eq!(stored["comment"], format!("fabrik:{STACK}/h{i}"));
        assert_eq!(stored["name"], format!("h{i}.{ZONE}"));
    }

    // Update every one, then delete every one: again a list and three batches each.
    let (_, updates) = specs(500, 65_536);
    let ids: Vec<String> = created
        .iter()
        .map(|a| a.as_ref().unwrap().id.clone())
        .collect();
    let calls: Vec<Call<'_>> = (0..500)
        .map(|i| Call {
            target: target(&names[i]),
            change: Change::Update {
                id: &ids[i],
                prior: &creates[i],
                inputs: &updates[i],
            },
        })
        .collect();
    let updated = ok(client.apply_batch(&calls));
    assert!(
        updated
            .iter()
            .zip(&ids)
            .all(|(a, id)| &a.as_ref().unwrap().id == id)
    );
    assert!(
        fake.records(ZONE)
            .iter()
            .all(|r| r["content"].as_str().unwrap().starts_with("10.1."))
    );
    let calls: Vec<Call<'_>> = (0..500)
        .map(|i| Call {
            target: target(&names[i]),
            change: Change::Delete {
                id: &ids[i],
                inputs: &updates[i],
            },
        })
        .collect();
    assert!(ok(client.apply_batch(&calls)).iter().all(Option::is_none));
    assert!(fake.records(ZONE).is_empty());
    assert_eq!(fake.count("POST", "/batch"), 9);
    assert_eq!(fake.requests().len(), 13);
    fake.assert_no_violations();
}

#[test]
fn each_call_is_checked_before_sending_and_unowned_records_stay() {
    let fake = fake();
    let client = client_with(&fake, json!({}), quick());
    let theirs = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "h1", "content": "10.0.0.1"}),
    );
    let hand = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "hand", "content": "10.9.9.9"}),
    );
    let (names, creates) = specs(3, 0);
    let hand_spec = a_record("hand", "10.9.9.9");
    let calls = vec![
        create(&names[0], &creates[0]),
        create(&names[1], &creates[1]),
        create(&names[2], &creates[2]),
        Call {
            target: target("hand"),
            change: Change::Delete {
                id: &hand,
                inputs: &hand_spec,
            },
        },
        Call {
            target: target("hand"),
            change: Change::Update {
                id: &hand,
                prior: &hand_spec,
                inputs: &hand_spec,
            },
        },
    ];
    let results = client.apply_batch(&calls);
    assert!(results[0].is_ok() && results[2].is_ok());
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains(&format!("fabrik import h1 {theirs}")),
        "{err}"
    );
    assert!(matches!(results[3], Ok(None)), "not ours: left alone");
    assert_eq!(results[4].as_ref().unwrap_err().kind, ErrorKind::Conflict);
    assert!(fake.record(&hand).is_some() && fake.record(&theirs).unwrap()["comment"].is_null());
    assert_eq!(
        fake.count("POST", "/batch"),
        1,
        "one batch for the two creates"
    );

    // Applying the same creates again converges: nothing is sent.
    let again = client.apply_batch(&calls[..1]);
    assert_eq!(
        again[0].as_ref().unwrap().as_ref().unwrap().id,
        results[0].as_ref().unwrap().as_ref().unwrap().id
    );
    assert_eq!(fake.count("POST", "/batch"), 1);
    fake.assert_no_violations();
}

#[test]
fn a_refused_chunk_fails_every_call_it_carried_and_no_other() {
    let fake = fake();
    let client = client_with(&fake, json!({"batch_size": 3}), quick());
    let (names, creates) = specs(5, 0);
    // Two resources asking for the same record land in the second chunk: Cloudflare refuses
    // the duplicate, and with it the whole chunk.
    let dup = creates[4].clone();
    let calls: Vec<Call<'_>> = vec![
        create(&names[0], &creates[0]),
        create(&names[1], &creates[1]),
        create(&names[2], &creates[2]),
        Call {
            target: target(&names[3]),
            change: Change::Create { inputs: &dup },
        },
        create(&names[4], &creates[4]),
    ];
    let results = client.apply_batch(&calls);
    assert_eq!(fake.count("POST", "/batch"), 2);
    for r in &results[..3] {
        assert!(r.is_ok(), "{r:?}");
    }
    for r in &results[3..] {
        let err = r.as_ref().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
        assert!(err.message.contains("refused as a whole"), "{err}");
    }
    assert_eq!(
        fake.records(ZONE).len(),
        3,
        "the refused chunk changed nothing"
    );
    fake.assert_no_violations();
}

#[test]
fn a_batch_over_the_plans_limit_is_refused_honestly() {
    let fake = fake();
    fake.set_batch_limit(2);
    let client = client_with(&fake, json!({"batch_size": 3}), quick());
    let (names, creates) = specs(3, 0);
    let calls: Vec<Call<'_>> = (0..3).map(|i| create(&names[i], &creates[i])).collect();
    for r in client.apply_batch(&calls) {
        assert_eq!(r.unwrap_err().kind, ErrorKind::InvalidInput);
    }
    assert!(fake.records(ZONE).is_empty());
    fake.assert_no_violations();
}

/// A batch committed but answered 500: the zone is looked at again, and each change is
/// reported as made, so the results stay true. One refused before it reached Cloudflare is
/// reported failed, and nothing was made.
#[test]
fn a_batch_whose_answer_was_lost_reports_what_was_made() {
    let fake = fake();
    let client = client_with(&fake, json!({}), quick());
    let (names, creates) = specs(3, 0);
    let calls: Vec<Call<'_>> = (0..3).map(|i| create(&names[i], &creates[i])).collect();
    fake.http().fail_after_next_of("POST", 1, 500);
    let results = ok(client.apply_batch(&calls));
    assert_eq!(fake.records(ZONE).len(), 3);
    for (applied, record) in results.iter().zip(fake.records(ZONE)) {
        assert_eq!(applied.as_ref().unwrap().id, record["id"].as_str().unwrap());
    }

    let (names, creates) = specs(2, 65_536);
    let calls: Vec<Call<'_>> = (0..2).map(|i| create(&names[i], &creates[i])).collect();
    // Refused before it was acted on: not repeated (a POST), looked at, reported failed.
    let before = fake.count("GET", "/dns_records");
    fake.http().fail_next_of("POST", 1, 503);
    for r in client.apply_batch(&calls) {
        let err = r.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "{err}");
        assert!(err.message.contains("HTTP 503"), "{err}");
    }
    assert_eq!(fake.count("POST", "/batch"), 2);
    assert_eq!(
        fake.count("GET", "/dns_records") - before,
        2,
        "listed, then looked again"
    );
    assert_eq!(fake.records(ZONE).len(), 3, "nothing more was made");
    fake.assert_no_violations();
}
