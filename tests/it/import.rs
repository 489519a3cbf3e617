//! `fabrik import NAME ID` through the binary, against a real `pdns_server`: an RRset in the
//! way of an apply is imported as the apply's error says, then planned with only its real
//! differences, applied and destroyed like anything fabrik made. What is not the stack's to
//! take, what does not exist and what the stack already manages are refused, changing nothing.

use serde_json::json;

use crate::harness::Case;
use crate::powerdns::harness_pdns::{KEY, Pdns};
use crate::powerdns::stack_spec;

const ID: &str = "example.test./www.example.test./A";

/// A stack with one RRset, `www`.
fn www(stack: &str, pdns: &Pdns) -> String {
    stack_spec(
        stack,
        pdns,
        r#"
        resources:
          www:
            type: powerdns.record
            with: { zone: example.test, name: www, type: A, records: ["192.0.2.10"] }
        "#,
    )
}

/// A zone and an RRset in it, both as `raw_zone` and `raw_rrset` make them by hand.
fn zone_and_www(stack: &str, pdns: &Pdns) -> String {
    stack_spec(
        stack,
        pdns,
        r#"
        resources:
          zone:
            type: powerdns.zone
            with: { name: example.test, nameservers: [ns1.example.test.] }
          www:
            type: powerdns.record
            with: { zone: "${zone.name}", name: www, type: A, records: ["192.0.2.10"], ttl: 60 }
        "#,
    )
}

#[test]
fn an_rrset_in_the_way_is_imported_as_the_error_says_then_planned_applied_and_destroyed() {
    let pdns = Pdns::start();
    crate::powerdns::foreign_a(
        &pdns,
        "example.test.",
        "www.example.test.",
        &["198.51.100.1"],
    );
    let case = Case::new()
        .spec(&www("dns-import", &pdns))
        .env("PDNS_API_KEY", KEY);

    let refused = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, refused.stderr, @"
    error: `www`: cannot create RRset www.example.test. A: it already exists and it is not managed by fabrik (its comments carry no `fabrik:dns-import/www` marker); fabrik never overwrites it. To manage it with fabrik, import it (`fabrik import www example.test./www.example.test./A`) or set `adopt: true` on the resource; otherwise remove it or choose another name
      --> fabrik.yaml:7:3
      |
    7 |   www:
      |   ^^^
    ");
    // Stopped by the plan, before any change.
    assert_eq!(refused.code, 1, "{refused}");

    let imported = case.run(["import", "www", ID]);
    fabrik_snapshot!(case, imported, @"
    exit code: 0
    ----- stdout -----
    imported www (example.test./www.example.test./A)
    Run `fabrik plan` to see how it differs from the spec.

    ----- stderr -----
    ");
    // Claimed, and nothing else about it changed.
    assert_eq!(
        pdns.rrset("example.test.", "www.example.test.", "A"),
        Some((
            60,
            vec!["198.51.100.1".to_string()],
            vec!["fabrik:dns-import/www".to_string()]
        ))
    );
    let state = case.state("dns-import");
    assert_eq!(state["resources"]["www"]["id"], ID);
    assert_eq!(
        state["resources"]["www"]["inputs"],
        json!({
            "zone": "example.test.", "name": "www.example.test.", "type": "A",
            "records": ["198.51.100.1"], "ttl": 60,
        })
    );
    assert_eq!(
        state["providers"]["powerdns"]["api_key"], "${secret.PDNS_API_KEY}",
        "destroy can work from the state alone"
    );

    // The plan shows the real differences: the records and the TTL, nothing more.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `dns-import`:

      ~ www (powerdns.record)
          ~ records:
              - "198.51.100.1"
              + "192.0.2.10"
          ~ ttl     = 60 → 300

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);

    case.expect(["apply", "--yes"], 0);
    assert_eq!(
        pdns.rrset("example.test.", "www.example.test.", "A"),
        Some((
            300,
            vec!["192.0.2.10".to_string()],
            vec!["fabrik:dns-import/www".to_string()]
        ))
    );
    let again = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{again}");

    case.expect(["destroy", "--yes"], 0);
    assert_eq!(pdns.rrset("example.test.", "www.example.test.", "A"), None);
    assert!(pdns.zone_exists("example.test."), "the zone was never ours");
}

#[test]
fn a_zone_and_an_rrset_that_match_the_spec_plan_no_change() {
    let pdns = Pdns::start();
    crate::powerdns::foreign_a(&pdns, "example.test.", "www.example.test.", &["192.0.2.10"]);
    let case = Case::new()
        .spec(&zone_and_www("dns-same", &pdns))
        .env("PDNS_API_KEY", KEY);

    let zone = case.run(["import", "fabrik.yaml", "zone", "example.test"]);
    fabrik_snapshot!(case, zone, @"
    exit code: 0
    ----- stdout -----
    imported zone (example.test.)
    Run `fabrik plan` to see how it differs from the spec.

    ----- stderr -----
    ");
    case.expect(["import", "www", ID], 0);
    assert_eq!(case.tracked("dns-same"), ["www", "zone"]);
    assert_eq!(
        case.state("dns-same")["resources"]["www"]["dependencies"],
        json!(["zone"])
    );

    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `dns-same` matches the spec.

    ----- stderr -----
    ");

    // Destroy takes both, the RRset first: the zone then holds nothing that is not ours.
    case.expect(["destroy", "--yes"], 0);
    assert!(!pdns.zone_exists("example.test."));
}

#[test]
fn an_rrset_another_resource_manages_is_not_imported() {
    let pdns = Pdns::start();
    pdns.raw_zone("example.test.");
    let first = Case::new()
        .spec(&www("dns-owner", &pdns))
        .env("PDNS_API_KEY", KEY);
    first.expect(["apply", "--yes"], 0);
    let before = pdns.rrset("example.test.", "www.example.test.", "A");

    let second = Case::new()
        .spec(&www("dns-taker", &pdns))
        .env("PDNS_API_KEY", KEY);
    let out = second.run(["import", "www", ID]);
    fabrik_snapshot!(second, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot import `www` (example.test./www.example.test./A): RRset www.example.test. A is managed by fabrik as `fabrik:dns-owner/www`, not `fabrik:dns-taker/www`; fabrik never takes an object from another resource. To move it here, forget it there first (`fabrik state rm` in that stack), then remove its marker comment
    ");
    assert_eq!(
        pdns.rrset("example.test.", "www.example.test.", "A"),
        before
    );
    assert!(second.tracked("dns-taker").is_empty());
    first.expect(["destroy", "--yes"], 0);
}

#[test]
fn an_unknown_name_is_refused_with_the_closest_one() {
    // Refused before any provider is asked: no server is needed.
    let case = Case::new().spec(
        r#"
        stack: dns-typo
        providers:
          powerdns: { url: "http://127.0.0.1:9", api_key: "${secret.PDNS_API_KEY}" }
        secrets:
          PDNS_API_KEY: {}
        resources:
          www:
            type: powerdns.record
            with: { zone: example.test, name: www, type: A, records: ["192.0.2.10"] }
        "#,
    );
    let out = case.run(["import", "wwww", ID]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: fabrik.yaml has no resource `wwww` to import into; did you mean `www`?
    ");
    assert!(!case.state_dir().exists());

    let usage = case.run(["import", "www"]);
    fabrik_snapshot!(case, usage, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `fabrik import` takes [SPEC] NAME ID (the resource of the spec, then the object's id), not 1 value; see `fabrik import --help`
    ");
    assert!(!case.state_dir().exists());
}

#[test]
fn the_help_names_the_arguments() {
    let case = Case::new();
    fabrik_snapshot!(case, case.run(["import", "-h"]), @"
    exit code: 0
    ----- stdout -----
    Take an object that already exists into the state as a resource of the spec

    Usage: fabrik import [OPTIONS] [SPEC] NAME ID

    Arguments:
      [SPEC]  The spec file [default: fabrik.yaml]
      NAME    The resource of the spec that is to manage the object
      ID      The object's id in its provider, as fabrik prints it: for a PowerDNS RRset
              <zone>/<name>/<type>, for a zone its name

    Options:
          --spec <SPEC>      The same as SPEC, as an option
          --state-dir <DIR>  Keep the state here instead of `.fabrik/` beside the spec
          --backend <URL>    Keep the state in this backend for this run: a PostgreSQL URL (`postgres://user:password@host/db?sslmode=verify-full&schema=fabrik`) or a directory. Wins over the spec's `backend:` and `--state-dir` [env: FABRIK_BACKEND]
          --no-color         Never colour the output (NO_COLOR does the same)
      -h, --help             Print help (see more with '--help')

    Examples:
      fabrik import www example.com./www.example.com./A
      fabrik import stacks/dns.yaml zone example.com.

    ----- stderr -----
    ");
}

#[test]
fn a_type_without_import_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: files
        resources:
          worker:
            type: local.process
            with: { command: sleep, args: ["1000"] }
        "#,
    );
    let out = case.run(["import", "worker", "4242"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot import `worker` (4242): `local.process` objects cannot be imported
    ");
    assert!(case.tracked("files").is_empty());
}

#[test]
fn a_name_already_managed_is_refused_and_nothing_changes() {
    let pdns = Pdns::start();
    pdns.raw_zone("example.test.");
    let case = Case::new()
        .spec(&www("dns-twice", &pdns))
        .env("PDNS_API_KEY", KEY);
    case.expect(["apply", "--yes"], 0);
    let state = case.state("dns-twice");
    let out = case.run(["import", "www", ID]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `www` is already managed by stack `dns-twice` (as example.test./www.example.test./A); nothing was imported. To manage another object as `www`, forget this one first (`fabrik state rm www`; the object stays as it is)
    ");
    assert_eq!(case.state("dns-twice"), state);
    assert!(!case.exists(".fabrik/dns-twice.journal"));

    // Forgotten, it is taken back as the message says: it still carries the marker.
    case.expect(["state", "rm", "www"], 0);
    case.expect(["import", "www", ID], 0);
    assert_eq!(case.state("dns-twice")["resources"], state["resources"]);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
}

#[test]
fn an_unknown_id_is_not_found_and_nothing_is_recorded() {
    let pdns = Pdns::start();
    pdns.raw_zone("example.test.");
    let case = Case::new()
        .spec(&www("dns-missing", &pdns))
        .env("PDNS_API_KEY", KEY);
    let out = case.run(["import", "www", ID]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot import `www` (example.test./www.example.test./A): there is no RRset www.example.test. A in zone example.test. to import (ids are `<zone>/<name>/<type>`, as a failed apply prints them)
    ");
    assert!(case.tracked("dns-missing").is_empty());
    assert!(
        case.state("dns-missing").get("pending").is_none(),
        "the refused call is settled"
    );

    // An id that names another RRset than the spec's is refused before anything is written.
    pdns.raw_rrset(
        "example.test.",
        "api.example.test.",
        "A",
        60,
        &["198.51.100.1"],
    );
    let out = case.run(["import", "www", "example.test./api.example.test./A"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("name www.example.test. in the spec, api.example.test. in the id"),
        "{out}"
    );
    let (_, _, comments) = pdns
        .rrset("example.test.", "api.example.test.", "A")
        .unwrap();
    assert!(comments.is_empty());
    assert!(case.tracked("dns-missing").is_empty());
}

/// A run killed during an import leaves its intent open; the next run looks the object up and
/// records it only if the marker landed.
#[test]
fn an_interrupted_import_is_settled_by_the_next_run() {
    let pdns = Pdns::start();
    crate::powerdns::foreign_a(&pdns, "example.test.", "www.example.test.", &["192.0.2.10"]);
    let case = Case::new()
        .spec(&zone_and_www("dns-killed", &pdns))
        .env("PDNS_API_KEY", KEY);
    let www_intent = json!({
        "name": "www", "type": "powerdns.record", "action": "import", "object": ID,
        "inputs": {"zone": "example.test.", "name": "www", "type": "A", "records": ["192.0.2.10"], "ttl": 60},
        "dependencies": ["zone"],
    });
    let open_intents = |calls: &[serde_json::Value]| {
        let mut journal = String::new();
        for (i, call) in calls.iter().enumerate() {
            let record = json!({"serial": 1, "op": "intent", "intent": i + 1, "call": call});
            journal.push_str(&format!("{record}\n"));
        }
        case.write(".fabrik/dns-killed.journal", journal);
    };

    // Killed before anything landed: nothing to record. Nor for an id the provider cannot
    // look up, or one that names another zone than the spec's (the import refuses both, but
    // may have been killed before it could).
    pdns.raw_zone("other.test.");
    open_intents(&[
        www_intent.clone(),
        json!({
            "name": "www", "type": "powerdns.record", "action": "import", "object": "nonsense",
            "inputs": {"zone": "example.test.", "name": "www", "type": "A"},
        }),
        json!({
            "name": "zone", "type": "powerdns.zone", "action": "import", "object": "other.test.",
            "inputs": {"name": "example.test.", "kind": "Native", "nameservers": ["ns1.example.test."]},
        }),
    ]);
    // Without refresh: the objects are still in the way of the spec's creates, which a
    // refreshed plan stops at; only the recovery is looked at here.
    let plan = case.run(["plan", "--refresh=false"]);
    assert_eq!(plan.code, 0, "{plan}");
    fabrik_snapshot!(case, plan.stderr, @"
    Recovered from an interrupted run:
      www: its interrupted import did not claim example.test./www.example.test./A; run `fabrik import` again to import it
      www: its interrupted import did not claim nonsense; run `fabrik import` again to import it
      zone: its interrupted import did not claim other.test.; run `fabrik import` again to import it
    ");

    // Killed after it landed: the RRset is the resource's, and the next run records it.
    let (status, body) = pdns.raw(
        "PATCH",
        "/zones/example.test.",
        Some(json!({"rrsets": [{
            "name": "www.example.test.", "type": "A", "changetype": "REPLACE",
            "comments": [{"content": "fabrik:dns-killed/www", "account": "fabrik"}],
        }]})),
    );
    assert_eq!(status, 204, "{body}");
    open_intents(&[www_intent]);
    let out = case.run(["import", "zone", "example.test."]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(
            "www: imported example.test./www.example.test./A (its import was interrupted)"
        ),
        "{out}"
    );
    assert_eq!(case.tracked("dns-killed"), ["www", "zone"]);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
    assert!(!pdns.zone_exists("example.test."));
}

/// A value that comes from a secret is recorded by its keyed hash, never as text, and still
/// compares equal to the spec's: an import of what the spec says plans no change.
#[test]
fn an_imported_secret_value_is_stored_by_its_hash_and_plans_no_change() {
    let pdns = Pdns::start();
    pdns.raw_zone("example.test.");
    pdns.raw_rrset(
        "example.test.",
        "_verify.example.test.",
        "TXT",
        300,
        &["\"token-4f1c9a77e2\""],
    );
    let case = Case::new()
        .spec(&format!(
            r#"
            stack: dns-secret
            providers:
              powerdns: {{ url: "{}", api_key: "${{secret.PDNS_API_KEY}}" }}
            secrets:
              PDNS_API_KEY: {{}}
              VERIFY_TOKEN: {{}}
            resources:
              verify:
                type: powerdns.record
                with: {{ zone: example.test, name: _verify, type: TXT, records: ["${{secret.VERIFY_TOKEN}}"] }}
            "#,
            pdns.url()
        ))
        .env("PDNS_API_KEY", KEY)
        .env("VERIFY_TOKEN", "token-4f1c9a77e2");
    case.expect(
        [
            "import",
            "verify",
            "example.test./_verify.example.test./TXT",
        ],
        0,
    );
    for (path, bytes) in case.state_files() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("4f1c9a77e2"),
            "{} holds the secret",
            path.display()
        );
    }
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");

    // Another value behind the same secret is a change, shown without either value.
    let rotated = case
        .args(["plan", "--detailed-exitcode"])
        .env("VERIFY_TOKEN", "token-rotated")
        .run();
    fabrik_snapshot!(case, rotated, @"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `dns-secret`:

      ~ verify (powerdns.record)
          ~ records: (sensitive value changed)

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    ");
    case.expect(["destroy", "--yes"], 0);
}
