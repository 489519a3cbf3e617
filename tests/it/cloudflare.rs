//! The Cloudflare provider through the binary, against the stateful fake of `fabrik-testkit`
//! (every request checked against the published API contract): records land with their
//! marker, a second apply changes nothing, updates and replaces converge, drift shows on
//! refresh, destroy leaves others' records exactly as they were, and faults (5xx, connection
//! refused, slow answers, a 429 storm) end converged or rolled back, never half-done. After
//! each step the fake's records are checked against `fabrik state list`.

use std::collections::BTreeSet;
use std::time::Duration;

use fabrik_testkit::cloudflare::{FakeCloudflare, TOKEN};
use serde_json::{Value, json};

use crate::harness::Case;

const ZONE: &str = "example.com";

/// A spec of `stack` on `fake`: the provider block with its token secret, then `body` (the
/// `resources:`, written indented as in a test).
fn stack_spec(stack: &str, fake: &FakeCloudflare, body: &str) -> String {
    stack_spec_with(stack, fake, "", body)
}

/// Like [`stack_spec`], with `extra` (such as `, rate_limit_wait: 1s`) added to the provider
/// block.
fn stack_spec_with(stack: &str, fake: &FakeCloudflare, extra: &str, body: &str) -> String {
    format!(
        "stack: {stack}\nproviders:\n  cloudflare: {{ api_url: \"{}\", token: \"${{secret.CF_API_TOKEN}}\"{extra} }}\nsecrets:\n  CF_API_TOKEN: {{}}\n{}",
        fake.url(),
        crate::harness::dedent(body)
    )
}

fn fake() -> FakeCloudflare {
    let fake = FakeCloudflare::start();
    fake.add_zone(ZONE);
    fake
}

fn case(spec: &str) -> Case {
    Case::new().spec(spec).env("CF_API_TOKEN", TOKEN)
}

/// A case on `fake` whose snapshots show the fake's address as `[CLOUDFLARE]`.
fn case_on(fake: &FakeCloudflare, spec: &str) -> Case {
    let case = case(spec);
    case.redact(fake.url(), "CLOUDFLARE");
    case
}

fn two_records(stack: &str, fake: &FakeCloudflare, ip: &str) -> String {
    stack_spec(
        stack,
        fake,
        &format!(
            r#"
            resources:
              www:
                type: cloudflare.record
                with: {{ zone: example.com, name: www, type: A, content: "{ip}", ttl: 300, comment: front door }}
              mail:
                type: cloudflare.record
                with: {{ zone: example.com, name: "@", type: MX, content: mail.example.com, priority: 10 }}
            "#
        ),
    )
}

/// The fake's records of `stack` (by marker) are exactly those `fabrik state list` names,
/// under the same ids.
fn assert_consistent(case: &Case, fake: &FakeCloudflare, stack: &str) {
    let list = case.expect(["state", "list"], 0);
    let tracked: BTreeSet<(String, String)> = list
        .stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (name, ty, id) = (words.next()?, words.next()?, words.next()?);
            (ty == "cloudflare.record").then(|| (name.to_string(), id.to_string()))
        })
        .collect();
    let prefix = format!("fabrik:{stack}/");
    let remote: BTreeSet<(String, String)> = fake
        .records(ZONE)
        .iter()
        .filter_map(|r| {
            let comment = r["comment"].as_str()?;
            let marker = comment.split_whitespace().last()?;
            let name = marker.strip_prefix(&prefix)?;
            Some((name.to_string(), r["id"].as_str()?.to_string()))
        })
        .collect();
    assert_eq!(
        tracked, remote,
        "fabrik's state and Cloudflare's records disagree"
    );
}

fn record_of(fake: &FakeCloudflare, fqdn: &str, rtype: &str) -> Option<Value> {
    fake.records(ZONE)
        .into_iter()
        .find(|r| r["name"] == fqdn && r["type"] == rtype)
}

#[test]
fn records_are_created_unchanged_on_reapply_updated_replaced_and_destroyed() {
    let fake = fake();
    let case = case(&two_records("cf-life", &fake, "192.0.2.10"));
    case.expect(["apply", "--yes"], 0);
    let www = record_of(&fake, "www.example.com", "A").unwrap();
    assert_eq!(www["content"], "192.0.2.10");
    assert_eq!(www["ttl"], 300);
    assert_eq!(www["comment"], "front door fabrik:cf-life/www");
    let mx = record_of(&fake, ZONE, "MX").unwrap();
    assert_eq!(
        (mx["content"].as_str(), mx["priority"].as_u64()),
        (Some("mail.example.com"), Some(10))
    );
    assert_consistent(&case, &fake, "cf-life");
    assert_eq!(
        case.state("cf-life")["resources"]["www"]["outputs"]["id"],
        www["id"]
    );

    // Nothing changes on a second look, from the state or refreshed from Cloudflare.
    let writes =
        |fake: &FakeCloudflare| fake.requests().iter().filter(|l| l.method != "GET").count();
    let before = writes(&fake);
    assert_eq!(case.run(["plan", "--detailed-exitcode"]).code, 0);
    let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(refreshed.code, 0, "{refreshed}");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(writes(&fake), before, "a no-op apply writes nothing");

    // The API token is used, never stored.
    for (path, bytes) in case.state_files() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "{} holds the token",
            path.display()
        );
    }

    // An update in place keeps the record id.
    case.set_spec(&two_records("cf-life", &fake, "192.0.2.20"));
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(plan.stdout.contains("~ www (cloudflare.record)"), "{plan}");
    case.expect(["apply", "--yes"], 0);
    let updated = record_of(&fake, "www.example.com", "A").unwrap();
    assert_eq!(
        (updated["id"].clone(), updated["content"].as_str()),
        (www["id"].clone(), Some("192.0.2.20"))
    );
    assert_consistent(&case, &fake, "cf-life");

    // A new type replaces the record.
    case.set_spec(&stack_spec(
        "cf-life",
        &fake,
        r#"
        resources:
          www:
            type: cloudflare.record
            with: { zone: example.com, name: www, type: AAAA, content: "2001:db8::20", ttl: 300, comment: front door }
          mail:
            type: cloudflare.record
            with: { zone: example.com, name: "@", type: MX, content: mail.example.com, priority: 10 }
        "#,
    ));
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert!(
        plan.stdout.contains("-/+ www (cloudflare.record)"),
        "{plan}"
    );
    case.expect(["apply", "--yes"], 0);
    assert!(
        record_of(&fake, "www.example.com", "A").is_none(),
        "the old record went"
    );
    let v6 = record_of(&fake, "www.example.com", "AAAA").unwrap();
    assert_ne!(v6["id"], www["id"]);
    assert_consistent(&case, &fake, "cf-life");

    case.expect(["destroy", "--yes"], 0);
    assert!(fake.records(ZONE).is_empty());
    assert_consistent(&case, &fake, "cf-life");
    fake.assert_no_violations();
}

#[test]
fn destroy_leaves_records_fabrik_does_not_own_exactly_as_they_were() {
    let fake = fake();
    let theirs = [
        fake.insert_record(ZONE, json!({"type": "A", "name": "www", "content": "198.51.100.1", "comment": "by hand"})),
        fake.insert_record(ZONE, json!({"type": "TXT", "name": "@", "content": "v=spf1 -all", "ttl": 3600})),
        fake.insert_record(ZONE, json!({"type": "A", "name": "api", "content": "198.51.100.2", "comment": "fabrik:other/api"})),
    ];
    let snapshot: Vec<Value> = theirs.iter().map(|id| fake.record(id).unwrap()).collect();
    let case = case(&two_records("cf-others", &fake, "192.0.2.10"));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(
        fake.records(ZONE).len(),
        5,
        "ours beside theirs (records, not RRsets)"
    );
    case.remove("fabrik.yaml");
    case.expect(["destroy", "--yes", "--stack", "cf-others"], 0);
    let after: Vec<Value> = fake.records(ZONE);
    assert_eq!(
        after, snapshot,
        "only our records went; the others are byte for byte as they were"
    );
    fake.assert_no_violations();
}

#[test]
fn drift_is_detected_on_refresh_and_repaired_by_apply() {
    let fake = fake();
    let case = case(&two_records("cf-drift", &fake, "192.0.2.10"));
    case.expect(["apply", "--yes"], 0);
    let id = record_of(&fake, "www.example.com", "A").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    fake.edit_record(&id, json!({"content": "203.0.113.66", "ttl": 1}));
    assert_eq!(
        case.run(["plan", "--refresh=false", "--detailed-exitcode"])
            .code,
        0,
        "without refresh the state is believed"
    );
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(
        plan.stdout
            .contains("~ www (cloudflare.record)  # changed outside fabrik"),
        "{plan}"
    );
    assert!(plan.stdout.contains("203.0.113.66"), "{plan}");
    case.expect(["apply", "--refresh", "--yes"], 0);
    let repaired = fake.record(&id).unwrap();
    assert_eq!(
        (repaired["content"].as_str(), repaired["ttl"].as_u64()),
        (Some("192.0.2.10"), Some(300))
    );
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    assert_consistent(&case, &fake, "cf-drift");
    fake.assert_no_violations();
}

#[test]
fn an_unowned_record_in_the_way_stops_the_apply_with_the_way_to_adopt_it() {
    let fake = fake();
    let theirs = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "www", "content": "192.0.2.10", "ttl": 120}),
    );
    let before = fake.record(&theirs).unwrap();
    let spec = |adopt: bool| {
        stack_spec(
            "cf-way",
            &fake,
            &format!(
                r#"
            resources:
              www:
                type: cloudflare.record
                adopt: {adopt}
                with: {{ zone: example.com, name: www, type: A, content: "192.0.2.10", ttl: 300 }}
            "#
            ),
        )
    };
    let case = case_on(&fake, &spec(false));
    case.redact(&theirs, "THEIR-ID");
    // Asked to look (apply always does), the plan stops at the resource before any change,
    // and says how to take the record over.
    let plan = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `www`: cannot create www.example.com A 192.0.2.10 for `fabrik:cf-way/www`: an identical record already exists; in the way: [THEIR-ID] (www.example.com A 192.0.2.10, not managed by fabrik). To manage it with fabrik, import it (`fabrik import www [THEIR-ID]`) or set `adopt: true` on the resource; otherwise remove it or choose another name.
      --> fabrik.yaml:7:3
      |
    7 |   www:
      |   ^^^
    ");
    assert_eq!(
        case.run(["apply", "--yes"]),
        plan,
        "the same refusal from an apply"
    );
    assert_eq!(fake.record(&theirs).unwrap(), before, "untouched");
    assert!(!case.state_file("cf-way").exists(), "nothing was recorded");
    assert!(
        fake.requests().iter().all(|l| l.method == "GET"),
        "nothing but reads reached Cloudflare"
    );

    // `adopt: true` takes it over: same record, our marker, our TTL; destroy then removes it.
    case.set_spec(&spec(true));
    case.expect(["apply", "--yes"], 0);
    let adopted = fake.record(&theirs).unwrap();
    assert_eq!(
        (adopted["comment"].as_str(), adopted["ttl"].as_u64()),
        (Some("fabrik:cf-way/www"), Some(300))
    );
    assert_consistent(&case, &fake, "cf-way");
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.record(&theirs).is_none());
    fake.assert_no_violations();
}

#[test]
fn server_errors_then_success_converge() {
    let fake = fake();
    let case = case(&two_records("cf-5xx", &fake, "192.0.2.10"));
    fake.http().fail_next(3, 500);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(fake.records(ZONE).len(), 2);
    assert!(fake.requests().iter().filter(|l| l.status == 500).count() == 3);
    assert_consistent(&case, &fake, "cf-5xx");
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    fake.assert_no_violations();
}

/// The creates are made but their answer is lost (500 after the change): the two records go
/// out in one batch, the provider does not repeat a POST blindly but lists the zone again, finds
/// both carrying their resource's marker: two records, each recorded once in the state.
#[test]
fn a_create_whose_answer_was_lost_is_recorded_once() {
    let fake = fake();
    let case = case(&two_records("cf-lost", &fake, "192.0.2.10"));
    fake.http().fail_after_next_of("POST", 1, 500);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(fake.records(ZONE).len(), 2, "no duplicate");
    let lost: Vec<String> = fake
        .requests()
        .iter()
        .filter(|l| l.faulted)
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(
        lost[0].starts_with("POST ") && lost[0].ends_with("/dns_records/batch"),
        "the one batch carrying both creates lost its answer: {lost:?}"
    );
    assert_consistent(&case, &fake, "cf-lost");
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    fake.assert_no_violations();
}

#[test]
fn a_refused_connection_fails_cleanly_and_the_next_apply_converges() {
    let mut fake = fake();
    let case = case_on(&fake, &two_records("cf-down", &fake, "192.0.2.10"));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&two_records("cf-down", &fake, "192.0.2.30"));
    let state_before = case.state("cf-down");
    fake.http_mut().stop();
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: refreshing `mail`: GET [CLOUDFLARE]/zones: no answer: Connection refused (os error 111) (after 5 attempts)
    ");
    assert_eq!(
        case.state("cf-down")["resources"],
        state_before["resources"],
        "nothing recorded as done"
    );
    fake.http_mut().restart();
    assert_eq!(
        record_of(&fake, "www.example.com", "A").unwrap()["content"],
        "192.0.2.10",
        "nothing half-done"
    );
    assert_consistent(&case, &fake, "cf-down");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(
        record_of(&fake, "www.example.com", "A").unwrap()["content"],
        "192.0.2.30"
    );
    assert_consistent(&case, &fake, "cf-down");
    fake.assert_no_violations();
}

#[test]
fn slow_answers_still_converge() {
    let fake = fake();
    fake.http().set_delay(Duration::from_millis(400));
    let case = case(&two_records("cf-slow", &fake, "192.0.2.10"));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(fake.records(ZONE).len(), 2);
    assert_consistent(&case, &fake, "cf-slow");
    fake.assert_no_violations();
}

#[test]
fn a_429_storm_is_waited_out_as_retry_after_asks() {
    let fake = fake();
    let case = case(&two_records("cf-429", &fake, "192.0.2.10"));
    fake.http().throttle_next(4, 1);
    let started = std::time::Instant::now();
    case.expect(["apply", "--yes"], 0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        fake.requests().iter().filter(|l| l.status == 429).count(),
        4
    );
    assert_eq!(fake.records(ZONE).len(), 2);
    assert_consistent(&case, &fake, "cf-429");
    fake.assert_no_violations();
}

/// Rate limits come in bursts when other tools share the account: more 429s in a row than
/// the provider makes attempts at anything else are waited out, as long as `rate_limit_wait`
/// (5 minutes by default) allows.
#[test]
fn a_burst_of_429s_longer_than_the_attempts_is_waited_out() {
    let fake = fake();
    let case = case(&two_records("cf-burst", &fake, "192.0.2.10"));
    fake.http().throttle_next(6, 1);
    let started = std::time::Instant::now();
    case.expect(["apply", "--yes"], 0);
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        fake.requests().iter().filter(|l| l.status == 429).count(),
        6
    );
    assert_eq!(fake.records(ZONE).len(), 2);
    assert_consistent(&case, &fake, "cf-burst");
    fake.assert_no_violations();
}

/// A rate limit that outlasts `rate_limit_wait` stops the run, saying how long it waited and
/// how to wait longer; nothing is half-done.
#[test]
fn a_rate_limit_outlasting_rate_limit_wait_fails_saying_how_to_raise_it() {
    let fake = fake();
    let body = r#"
        resources:
          www:
            type: cloudflare.record
            with: { zone: example.com, name: www, type: A, content: "192.0.2.10" }
        "#;
    let case = case_on(
        &fake,
        &stack_spec_with("cf-patience", &fake, ", rate_limit_wait: 1s", body),
    );
    fake.http().throttle_next(10, 1);
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: checking what is in the way of `www`: GET [CLOUDFLARE]/zones: HTTP 429: injected fault: HTTP 429 (code 10429) (Cloudflare still limits the rate after 1s of waiting and asks to wait 1 s more, past `rate_limit_wait` (1s): raise `rate_limit_wait` in `providers.cloudflare` to wait longer)
    ");
    assert_eq!(
        fake.requests().iter().filter(|l| l.status == 429).count(),
        2,
        "one wait of 1 s, then no more"
    );
    assert!(fake.records(ZONE).is_empty());
    fake.assert_no_violations();
}

/// Ctrl-C while a write waits out a long `Retry-After` (well inside `rate_limit_wait`) ends
/// the wait at once: nothing more is sent, and what the run had done is rolled back.
#[test]
fn ctrl_c_ends_a_rate_limit_wait_and_rolls_back() {
    let fake = fake();
    let case = case_on(
        &fake,
        &stack_spec(
            "cf-ctrl-c",
            &fake,
            r#"
        resources:
          conf:
            type: local.file
            with: { path: conf.txt, content: "conf\n" }
          www:
            type: cloudflare.record
            depends_on: [conf]
            with: { zone: example.com, name: www, type: A, content: "192.0.2.10" }
        "#,
        ),
    );
    // The plan's reads go through; the apply's write is told to come back in a minute.
    fake.http().throttle_next_of("POST", 1, 60);
    let child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fabrik starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !fake.requests().iter().any(|l| l.status == 429) {
        assert!(
            std::time::Instant::now() < deadline,
            "the write was never throttled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    crate::live::signal(child.id(), "INT");
    let signalled = std::time::Instant::now();
    let out = child.wait_with_output().expect("fabrik ends");
    let took = signalled.elapsed();
    let out = crate::harness::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    };
    assert!(took < Duration::from_secs(10), "took {took:?}\n{out}");
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `cf-ctrl-c`:

      + conf (local.file)
          + path    = "conf.txt"
          + content = <<EOT
              conf
            EOT

      + www (cloudflare.record)
          + zone    = "example.com"
          + name    = "www.example.com"
          + type    = "A"
          + content = "192.0.2.10"
          + ttl     = 1
          + proxied = false

    Plan: 2 to add, 0 to change, 0 to destroy.

      + conf (local.file): created [TIME]
      ✗ www (cloudflare.record): failed
    Rolling back the changes this run made…
      ↩ conf (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      interrupted by SIGINT (Ctrl-C)
      www: POST [CLOUDFLARE]/zones/[LINEAGE]/dns_records: HTTP 429: injected fault: HTTP 429 (code 10429) (interrupted while waiting to try again; Cloudflare was not asked again)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|l| l.method == "POST")
            .count(),
        1,
        "the write was not sent again"
    );
    assert!(fake.records(ZONE).is_empty());
    assert!(!case.exists("conf.txt"), "the file was rolled back");
    assert!(case.tracked("cf-ctrl-c").is_empty());
    fake.assert_no_violations();
}

#[test]
fn bad_inputs_stop_the_plan_before_any_request() {
    let fake = fake();
    let case = case_on(
        &fake,
        &stack_spec(
            "cf-bad",
            &fake,
            r#"
        resources:
          www:
            type: cloudflare.record
            with: { zone: example.com, name: www, type: A, content: "192.0.2.300", ttl: 30 }
        "#,
        ),
    );
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `www` (cloudflare.record): `content` "192.0.2.300" is not an IPv4 address
      --> fabrik.yaml:9:61
      |
    9 |     with: { zone: example.com, name: www, type: A, content: "192.0.2.300", ttl: 30 }
      |                                                             ^^^^^^^^^^^^^

    error: `www` (cloudflare.record): `ttl` must be 1 (automatic) or 60 to 86400 seconds, not 30
      --> fabrik.yaml:9:81
      |
    9 |     with: { zone: example.com, name: www, type: A, content: "192.0.2.300", ttl: 30 }
      |                                                                                 ^^

    2 errors in fabrik.yaml
    "#);
    assert_eq!(fake.requests().len(), 0);
    fake.assert_no_violations();
}

/// Killed applies (SIGKILL at varied moments, requests in flight) leave nothing twice: the
/// next run finds what an interrupted create made by its marker, and the last one converges
/// with every record once, as the state says.
#[test]
fn killed_applies_converge_without_duplicates() {
    const RECORDS: usize = 30;
    let fake = fake();
    fake.http().set_delay(Duration::from_millis(40));
    let mut body = String::from("resources:\n");
    for i in 0..RECORDS {
        body.push_str(&format!(
            "  r{i}:\n    type: cloudflare.record\n    with: {{ zone: example.com, name: r{i}, type: A, content: \"10.0.0.{i}\" }}\n"
        ));
    }
    let case = case(&stack_spec("cf-kill", &fake, &body));
    let once = |fake: &FakeCloudflare| {
        let names: Vec<String> = fake
            .records(ZONE)
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "a record exists twice: {names:?}"
        );
    };
    for delay in [120, 350, 700] {
        let mut child = case
            .args(["apply", "--yes"])
            .command()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("fabrik starts");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        once(&fake);
    }
    case.expect(["apply", "--yes"], 0);
    // Requests a killed run left in flight land late; give them time, then look again.
    std::thread::sleep(Duration::from_millis(200));
    once(&fake);
    assert_eq!(fake.records(ZONE).len(), RECORDS);
    assert_consistent(&case, &fake, "cf-kill");
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.records(ZONE).is_empty());
    fake.assert_no_violations();
}

/// Inputs the provider cannot put in its normal form stop the plan at the resource, instead of
/// failing halfway through an apply.
#[test]
fn an_mx_without_priority_stops_the_plan() {
    let fake = fake();
    let case = case_on(
        &fake,
        &stack_spec(
            "cf-mx",
            &fake,
            r#"
        resources:
          mail:
            type: cloudflare.record
            with: { zone: example.com, name: "@", type: MX, content: mail.example.com }
        "#,
        ),
    );
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `mail` (cloudflare.record): an MX record needs `priority` (such as 10)
      --> fabrik.yaml:8:11
      |
    8 |     type: cloudflare.record
      |           ^^^^^^^^^^^^^^^^^
    ");
    assert!(
        fake.requests().is_empty(),
        "a plan without --refresh asks nothing"
    );
}

/// Cloudflare keeps 100 characters of comment (Free plan), and fabrik's marker goes there too:
/// a comment that leaves it no room stops the plan at the resource, before any request,
/// instead of failing the apply.
#[test]
fn a_comment_without_room_for_the_marker_stops_the_plan() {
    let fake = fake();
    let comment = "c".repeat(80);
    let case = case(&stack_spec(
        "shop",
        &fake,
        &format!(
            r#"
            resources:
              frontend-www:
                type: cloudflare.record
                with: {{ zone: example.com, name: www, type: A, content: "192.0.2.10", comment: "{comment}" }}
            "#
        ),
    ));
    case.redact(fake.url(), "CLOUDFLARE");
    let plan = case.run(["plan"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `frontend-www` (cloudflare.record): `comment` is 80 characters; with a space and fabrik's ownership marker `fabrik:shop/frontend-www` (24) it would be 105, more than the 100 Cloudflare keeps: shorten it to at most 75
      --> fabrik.yaml:9:84
      |
    9 |     with: { zone: example.com, name: www, type: A, content: "192.0.2.10", comment: "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc…
      |                                                                                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
    "#);
    assert_eq!(
        case.run(["apply", "--yes"]),
        plan,
        "the same refusal from an apply"
    );
    assert!(
        fake.requests().is_empty(),
        "nothing was asked of Cloudflare"
    );

    // At the limit, it goes through and Cloudflare keeps it whole.
    case.set_spec(&stack_spec(
        "shop",
        &fake,
        &format!(
            r#"
            resources:
              frontend-www:
                type: cloudflare.record
                with: {{ zone: example.com, name: www, type: A, content: "192.0.2.10", comment: "{}" }}
            "#,
            "c".repeat(75)
        ),
    ));
    case.expect(["apply", "--yes"], 0);
    let stored = record_of(&fake, "www.example.com", "A").unwrap();
    assert_eq!(stored["comment"].as_str().unwrap().chars().count(), 100);
    fake.assert_no_violations();
}

/// Many records of a zone go out through the batch endpoint in chunks of `batch_size`, and a
/// refresh lists the zone instead of reading each record: 250 records take a handful of
/// requests, far inside Cloudflare's budget of 1,200 per 5 minutes.
#[test]
fn many_records_go_out_in_batches_and_are_refreshed_with_one_listing() {
    let fake = fake();
    let spec = |octet: u8| {
        let mut body = String::from("resources:\n");
        for i in 0..250 {
            body.push_str(&format!(
                "  h{i}: {{ type: cloudflare.record, with: {{ zone: example.com, name: h{i}, type: A, content: \"10.{octet}.{}.{}\" }} }}\n",
                i / 256,
                i % 256
            ));
        }
        stack_spec("cf-many", &fake, &body)
    };
    let case = case(&spec(1));
    let out = case.expect(["apply", "--yes"], 0);
    assert_eq!(out.stdout.matches(" created").count(), 250, "{out}");
    let writes: Vec<String> = fake
        .requests()
        .iter()
        .filter(|l| l.method != "GET")
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert_eq!(writes.len(), 2, "two chunks of at most 200: {writes:?}");
    assert!(
        writes.iter().all(|w| w.ends_with("/dns_records/batch")),
        "{writes:?}"
    );
    assert_eq!(fake.records(ZONE).len(), 250);
    assert_consistent(&case, &fake, "cf-many");

    let before = fake.requests().len();
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    let reads = &fake.requests()[before..];
    assert!(
        reads.len() <= 8,
        "a zone lookup and a few pages, not one read per record: {} requests",
        reads.len()
    );

    case.set_spec(&spec(2));
    let before = fake.requests().len();
    let out = case.expect(["apply", "--yes"], 0);
    assert_eq!(out.stdout.matches(" updated").count(), 250, "{out}");
    let writes = fake.requests()[before..]
        .iter()
        .filter(|l| l.method != "GET")
        .count();
    assert_eq!(writes, 2, "updates batch the same way");

    let before = fake.requests().len();
    case.expect(["destroy", "--yes"], 0);
    let writes = fake.requests()[before..]
        .iter()
        .filter(|l| l.method != "GET")
        .count();
    assert_eq!(writes, 2, "and deletes");
    assert!(fake.records(ZONE).is_empty());
    fake.assert_no_violations();
}

/// A record made by hand is taken over with `fabrik import` as the error says: the next plan
/// shows only how it differs from the spec, the apply converges, and destroy removes it.
#[test]
fn a_record_in_the_way_is_imported_then_converged() {
    let fake = fake();
    let theirs = fake.insert_record(
        ZONE,
        json!({"type": "A", "name": "www", "content": "192.0.2.10", "ttl": 120}),
    );
    let case = case(&stack_spec(
        "cf-import",
        &fake,
        r#"
        resources:
          www:
            type: cloudflare.record
            with: { zone: example.com, name: www, type: A, content: "192.0.2.10", ttl: 300 }
        "#,
    ));
    let refused = case.run(["apply", "--yes"]);
    case.redact(fake.url(), "CLOUDFLARE");
    case.redact(&theirs, "THEIR-ID");
    fabrik_snapshot!(case, refused, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `www`: cannot create www.example.com A 192.0.2.10 for `fabrik:cf-import/www`: an identical record already exists; in the way: [THEIR-ID] (www.example.com A 192.0.2.10, not managed by fabrik). To manage it with fabrik, import it (`fabrik import www [THEIR-ID]`) or set `adopt: true` on the resource; otherwise remove it or choose another name.
      --> fabrik.yaml:7:3
      |
    7 |   www:
      |   ^^^
    ");
    let imported = case.expect(["import", "www", &theirs], 0);
    assert!(
        imported
            .stdout
            .contains(&format!("imported www ({theirs})")),
        "{imported}"
    );
    let stamped = fake.record(&theirs).unwrap();
    assert_eq!(stamped["comment"], "fabrik:cf-import/www", "marker only");
    assert_eq!(stamped["ttl"], 120, "nothing else changed by the import");
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(plan.stdout.contains("ttl"), "{plan}");
    assert!(
        plan.stdout.contains("120") && plan.stdout.contains("300"),
        "{plan}"
    );
    case.expect(["apply", "--yes"], 0);
    assert_eq!(fake.record(&theirs).unwrap()["ttl"], 300);
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    assert_consistent(&case, &fake, "cf-import");
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.record(&theirs).is_none());
    fake.assert_no_violations();
}
