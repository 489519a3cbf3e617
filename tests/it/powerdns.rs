//! The PowerDNS provider through the binary, against a real `pdns_server` started for each
//! test (the provider crate's harness, shared rather than copied): records land with their
//! ownership marker, answer over DNS, are left alone when not ours, and destroy removes only
//! what the stack made, even with the spec gone.

#[allow(dead_code)]
#[path = "../../providers/powerdns/tests/pdns/harness.rs"]
pub(crate) mod harness_pdns;

use harness_pdns::{KEY, Pdns};

use crate::harness::Case;

/// A spec of `stack` on `pdns`: the provider block and its API key secret, then `body` (the
/// `resources:` and anything after, written indented as in a test).
pub(crate) fn stack_spec(stack: &str, pdns: &Pdns, body: &str) -> String {
    format!(
        "stack: {stack}\nproviders:\n  powerdns: {{ url: \"{}\", api_key: \"${{secret.PDNS_API_KEY}}\" }}\nsecrets:\n  PDNS_API_KEY: {{}}\n{}",
        pdns.url(),
        crate::harness::dedent(body)
    )
}

/// A zone holding one A RRset (TTL 60), both made behind fabrik's back: someone else's.
pub(crate) fn foreign_a(pdns: &Pdns, zone: &str, name: &str, records: &[&str]) {
    pdns.raw_zone(zone);
    pdns.raw_rrset(zone, name, "A", 60, records);
}

fn spec(stack: &str, pdns: &Pdns) -> String {
    stack_spec(
        stack,
        pdns,
        &format!(
            r#"
        resources:
          zone:
            type: powerdns.zone
            with: {{ name: example.test, nameservers: [ns1.example.test.] }}
          www:
            type: powerdns.record
            with: {{ zone: "${{zone.name}}", name: www, type: A, records: ["192.0.2.10", "192.0.2.11"] }}
          greeting:
            type: powerdns.record
            with: {{ zone: "${{zone.name}}", name: "@", type: TXT, records: ["hello world"], ttl: 120 }}
        verify:
          - dns: www.example.test
            type: A
            expect: ["192.0.2.10", "192.0.2.11"]
            nameserver: "127.0.0.1:{dns}"
            timeout: 5s
        "#,
            dns = pdns.dns_port,
        ),
    )
}

#[test]
fn records_are_applied_owned_verified_over_dns_and_destroyed_from_the_state_alone() {
    let pdns = Pdns::start();
    let case = Case::new()
        .spec(&spec("dns-life", &pdns))
        .env("PDNS_API_KEY", KEY);
    let out = case.expect(["apply", "--yes"], 0);
    assert!(
        out.stdout.contains("verified dns A www.example.test"),
        "{out}"
    );
    let (ttl, records, comments) = pdns
        .rrset("example.test.", "www.example.test.", "A")
        .unwrap();
    assert_eq!(ttl, 300);
    assert_eq!(records, ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(
        comments,
        ["fabrik:dns-life/www"],
        "the ownership marker is on the RRset"
    );
    let (_, txt, _) = pdns.rrset("example.test.", "example.test.", "TXT").unwrap();
    assert_eq!(txt, ["\"hello world\""]);

    // Written as the user wrote it, read back in PowerDNS's form: no change either way.
    assert_eq!(case.run(["plan", "--detailed-exitcode"]).code, 0);
    let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(refreshed.code, 0, "{refreshed}");

    // The API key is used, never stored.
    for (path, bytes) in case.state_files() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(KEY),
            "{} holds the API key",
            path.display()
        );
    }

    // Someone else's record in the zone survives the destroy, which runs without the spec:
    // the provider's configuration comes from the state, its key from the environment.
    pdns.raw_rrset(
        "example.test.",
        "mail.example.test.",
        "A",
        60,
        &["192.0.2.99"],
    );
    case.remove("fabrik.yaml");
    // Exit 4: the records went, the zone stays because it holds someone else's record.
    let destroy = case.run(["destroy", "--yes", "--stack", "dns-life"]);
    case.redact(pdns.url(), "PDNS");
    fabrik_snapshot!(case, destroy, @"
    exit code: 4
    ----- stdout -----
    fabrik will make these changes to stack `dns-life`:

      - greeting (powerdns.record)

      - www (powerdns.record)

      - zone (powerdns.zone)

    Plan: 0 to add, 0 to change, 3 to destroy.

      - greeting (powerdns.record): destroyed [TIME]
      - www (powerdns.record): destroyed [TIME]
      ✗ zone (powerdns.zone): failed

    ----- stderr -----
    error: destroy failed:
      zone: zone example.test. still holds RRsets that stack `dns-life` does not manage (mail.example.test. A); deleting the zone would delete them too. Remove them first, or delete the zone by hand
    these changes remain in place (recorded in the state):
      zone: zone example.test. still holds RRsets that stack `dns-life` does not manage (mail.example.test. A); deleting the zone would delete them too. Remove them first, or delete the zone by hand (still recorded in the state; the next apply retries it)
    run `fabrik plan` to see what is left to do
    ");
    assert!(
        pdns.rrset("example.test.", "www.example.test.", "A")
            .is_none(),
        "our records are gone"
    );
    assert!(
        pdns.rrset("example.test.", "mail.example.test.", "A")
            .is_some(),
        "a record fabrik does not own is left as it was"
    );
    assert!(
        pdns.zone_exists("example.test."),
        "a zone holding others' records stays"
    );
}

/// Something not ours where a record would go stops the plan, before anything changes: the
/// error points at the resource in the spec and says how to take the RRset over.
#[test]
fn an_unowned_rrset_in_the_way_stops_the_plan_and_is_left_untouched() {
    let pdns = Pdns::start();
    foreign_a(
        &pdns,
        "example.test.",
        "www.example.test.",
        &["198.51.100.1"],
    );
    let case = Case::new()
        .spec(&stack_spec(
            "dns-theirs",
            &pdns,
            r#"
            resources:
              api:
                type: powerdns.record
                with: { zone: example.test, name: api, type: A, records: ["192.0.2.20"] }
              www:
                type: powerdns.record
                with: { zone: example.test, name: www, type: A, records: ["192.0.2.10"] }
            "#,
        ))
        .env("PDNS_API_KEY", KEY);
    // Without refresh, the plan cannot know; looking (the default), it stops.
    assert_eq!(
        case.run(["plan", "--refresh=false", "--detailed-exitcode"])
            .code,
        2
    );
    // Located at the resource, with the two ways to take the RRset over.
    case.redact(pdns.url(), "PDNS");
    let plan = case.run(["plan"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `www`: cannot create RRset www.example.test. A: it already exists and it is not managed by fabrik (its comments carry no `fabrik:dns-theirs/www` marker); fabrik never overwrites it. To manage it with fabrik, import it (`fabrik import www example.test./www.example.test./A`) or set `adopt: true` on the resource; otherwise remove it or choose another name
       --> fabrik.yaml:10:3
       |
    10 |   www:
       |   ^^^
    ");
    // The same refusal, word for word, when asked to refresh and from an apply.
    assert_eq!(case.run(["plan", "--refresh"]), plan);
    assert_eq!(case.run(["apply", "--yes"]), plan);
    let (ttl, records, comments) = pdns
        .rrset("example.test.", "www.example.test.", "A")
        .unwrap();
    assert_eq!(
        (ttl, records),
        (60, vec!["198.51.100.1".to_string()]),
        "untouched"
    );
    assert!(comments.is_empty());
    assert!(
        pdns.rrset("example.test.", "api.example.test.", "A")
            .is_none(),
        "nothing else was created either"
    );
    assert!(
        !case.state_file("dns-theirs").exists(),
        "nothing was recorded"
    );
}

/// The SOA serial of a zone, which PowerDNS raises once per PATCH.
fn serial(pdns: &Pdns, zone: &str) -> u64 {
    let (status, body) = pdns.raw("GET", &format!("/zones/{zone}?rrsets=false"), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["serial"]
        .as_u64()
        .unwrap()
}

/// The records of one zone that are ready together go out as one PATCH, for creates, updates
/// and deletes alike; each still has its own line and its own place in the state.
#[test]
fn records_of_a_zone_are_written_in_one_patch() {
    let pdns = Pdns::start();
    pdns.raw_zone("many.test.");
    let spec = |octet: u8| {
        let mut body = String::from("resources:\n");
        for i in 0..120 {
            body.push_str(&format!(
                "  r{i}: {{ type: powerdns.record, with: {{ zone: many.test, name: r{i}, type: A, records: [\"10.{octet}.0.{i}\"] }} }}\n"
            ));
        }
        stack_spec("dns-many", &pdns, &body)
    };
    let case = Case::new().spec(&spec(1)).env("PDNS_API_KEY", KEY);
    let before = serial(&pdns, "many.test.");
    let out = case.expect(["apply", "--yes"], 0);
    assert_eq!(serial(&pdns, "many.test."), before + 1, "one PATCH: {out}");
    assert_eq!(out.stdout.matches(" created").count(), 120, "{out}");
    assert_eq!(case.tracked("dns-many").len(), 120);
    assert_eq!(
        pdns.rrset("many.test.", "r7.many.test.", "A").unwrap().1,
        ["10.1.0.7"]
    );
    // A refresh reads the zone once and finds nothing changed.
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );

    case.set_spec(&spec(2));
    let before = serial(&pdns, "many.test.");
    let out = case.expect(["apply", "--yes"], 0);
    assert_eq!(serial(&pdns, "many.test."), before + 1, "one PATCH: {out}");
    assert_eq!(out.stdout.matches(" updated").count(), 120, "{out}");
    assert_eq!(
        pdns.rrset("many.test.", "r7.many.test.", "A").unwrap().1,
        ["10.2.0.7"]
    );

    let before = serial(&pdns, "many.test.");
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(serial(&pdns, "many.test."), before + 1, "one PATCH");
    assert!(pdns.rrset("many.test.", "r7.many.test.", "A").is_none());
    assert!(case.tracked("dns-many").is_empty());
}

/// A record changed behind fabrik's back is drift: the refreshed plan shows it and the apply
/// puts it back, read from the zone as a whole.
#[test]
fn drift_is_seen_by_a_refresh_and_repaired() {
    let pdns = Pdns::start();
    let case = Case::new()
        .spec(&spec("dns-drift", &pdns))
        .env("PDNS_API_KEY", KEY);
    case.expect(["apply", "--yes"], 0);
    // Someone edits our RRset by hand (REPLACE without comments keeps the existing ones).
    pdns.raw_rrset(
        "example.test.",
        "www.example.test.",
        "A",
        300,
        &["203.0.113.5"],
    );
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(plan.stdout.contains("203.0.113.5"), "{plan}");
    assert!(plan.stdout.contains("192.0.2.10"), "{plan}");
    case.expect(["apply", "--yes", "--refresh"], 0);
    assert_eq!(
        pdns.rrset("example.test.", "www.example.test.", "A")
            .unwrap()
            .1,
        ["192.0.2.10", "192.0.2.11"]
    );
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    case.expect(["destroy", "--yes"], 0);
}

/// Two spellings of one name are one name: the plan compares PowerDNS's normal forms, so
/// respelling a record or a zone changes nothing, and a value referring to them stays put.
#[test]
fn respelled_names_are_no_change() {
    let pdns = Pdns::start();
    let spec = |zone: &str, name: &str| {
        stack_spec(
            "dns-spelling",
            &pdns,
            &format!(
                r#"
            resources:
              zone:
                type: powerdns.zone
                with: {{ name: {zone} }}
              www:
                type: powerdns.record
                with: {{ zone: "${{zone.name}}", name: {name}, type: a, records: ["192.0.2.10"] }}
              note:
                type: local.file
                with: {{ path: note.txt, content: "served from ${{zone.name}}\n" }}
            "#,
            ),
        )
    };
    let case = Case::new()
        .spec(&spec("example.test", "www"))
        .env("PDNS_API_KEY", KEY);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("note.txt"), "served from example.test.\n");
    for (zone, name) in [
        ("example.test", "www"),
        ("Example.Test.", "WWW"),
        ("example.test.", "www.example.test."),
    ] {
        case.set_spec(&spec(zone, name));
        let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
        assert_eq!(plan.code, 0, "{zone} / {name}:\n{plan}");
    }
    case.expect(["destroy", "--yes"], 0);
}

/// `adopt: true` takes over what is already there without a marker: the zone and the RRset
/// become this stack's (marker stamped, records as the spec says) and destroy then removes them
/// like anything else the stack manages.
#[test]
fn adopt_takes_over_an_existing_zone_and_rrset() {
    let pdns = Pdns::start();
    foreign_a(
        &pdns,
        "example.test.",
        "www.example.test.",
        &["198.51.100.1"],
    );
    let case = Case::new()
        .spec(&stack_spec(
            "dns-adopt",
            &pdns,
            r#"
            resources:
              zone:
                type: powerdns.zone
                adopt: true
                with: { name: example.test, nameservers: [ns1.example.test.] }
              www:
                type: powerdns.record
                adopt: true
                with: { zone: "${zone.name}", name: www, type: A, records: ["192.0.2.10"] }
            "#,
        ))
        .env("PDNS_API_KEY", KEY);
    case.expect(["apply", "--yes"], 0);
    let (ttl, records, comments) = pdns
        .rrset("example.test.", "www.example.test.", "A")
        .unwrap();
    assert_eq!((ttl, records), (300, vec!["192.0.2.10".to_string()]));
    assert_eq!(comments, ["fabrik:dns-adopt/www"]);
    assert_eq!(case.tracked("dns-adopt"), ["www", "zone"]);
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    case.expect(["destroy", "--yes"], 0);
    assert!(
        pdns.rrset("example.test.", "www.example.test.", "A")
            .is_none()
    );
}

/// An RRset another fabrik resource manages is never adopted.
#[test]
fn adopt_never_takes_what_another_resource_manages() {
    let pdns = Pdns::start();
    let spec = |stack: &str, adopt: bool| {
        stack_spec(
            stack,
            &pdns,
            &format!(
                r#"
            resources:
              www:
                type: powerdns.record
                adopt: {adopt}
                with: {{ zone: example.test, name: www, type: A, records: ["192.0.2.10"] }}
            "#,
            ),
        )
    };
    pdns.raw_zone("example.test.");
    let first = Case::new()
        .spec(&spec("dns-first", false))
        .env("PDNS_API_KEY", KEY);
    first.expect(["apply", "--yes"], 0);
    let second = Case::new()
        .spec(&spec("dns-second", true))
        .env("PDNS_API_KEY", KEY);
    let out = second.run(["apply", "--yes"]);
    second.redact(pdns.url(), "PDNS");
    fabrik_snapshot!(second, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `dns-second`:

      + www (powerdns.record)
          + zone    = "example.test."
          + name    = "www.example.test."
          + type    = "A"
          + records = ["192.0.2.10"]
          + ttl     = 300

    Plan: 1 to add, 0 to change, 0 to destroy.

      ✗ www (powerdns.record): failed
    Rolling back the changes this run made…

    ----- stderr -----
    error: apply failed:
      www: cannot adopt RRset www.example.test. A: it already exists and it is managed by fabrik as `fabrik:dns-first/www`, not `fabrik:dns-second/www`; fabrik never takes it from another resource. Remove it from that resource's spec, or choose another name
    every change was rolled back; the stack is as it was before this run
    "#);
    let (_, _, comments) = pdns
        .rrset("example.test.", "www.example.test.", "A")
        .unwrap();
    assert_eq!(
        comments,
        ["fabrik:dns-first/www"],
        "still the first stack's"
    );
    first.expect(["destroy", "--yes"], 0);
}

/// A refresh may start from the state's record of the provider's configuration while the spec
/// is read; it counts only if the spec configures the provider the same way. Here the spec
/// names another key, and the plan reads again with it (and is refused).
#[test]
fn a_refresh_uses_the_providers_as_the_spec_configures_them() {
    let pdns = Pdns::start();
    let case = Case::new()
        .spec(&spec("dns-config", &pdns))
        .env("PDNS_API_KEY", KEY);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    let wrong = case
        .read("fabrik.yaml")
        .replace("${secret.PDNS_API_KEY}", "not-the-key");
    case.set_spec(&wrong);
    let refused = case.run(["plan", "--refresh"]);
    case.redact(pdns.url(), "PDNS");
    fabrik_snapshot!(case, refused, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: refreshing `greeting`: GET [PDNS]/api/v1/servers/localhost/zones/example.test./export: HTTP 401: Unauthorized (check the provider's `api_key`)
    ");
    case.set_spec(&spec("dns-config", &pdns));
    case.expect(["destroy", "--yes"], 0);
}

/// The API key given by a sensitive variable, where `${secret.X}` usually stands: like a
/// secret, its value goes to the calls only. It is not in the output, the state, the journal
/// or a saved plan; with the spec gone, a destroy cannot look it up again and says which
/// provider lacks what, rather than calling the API without a key.
#[test]
fn an_api_key_from_a_sensitive_variable_is_used_and_never_kept() {
    let pdns = Pdns::start();
    let spec = format!(
        "stack: dns-var\nproviders:\n  powerdns: {{ url: \"{}\", api_key: \"${{var.pdns_key}}\" }}\nvars:\n  pdns_key: {{ sensitive: true }}\nresources:\n  zone:\n    type: powerdns.zone\n    with: {{ name: example.test, nameservers: [ns1.example.test.] }}\n  www:\n    type: powerdns.record\n    with: {{ zone: \"${{zone.name}}\", name: www, type: A, records: [\"192.0.2.10\"] }}\n",
        pdns.url()
    );
    let case = Case::new().spec(&spec);
    let given = format!("pdns_key={KEY}");
    let mut outputs = vec![case.expect(["apply", "--yes", "--var", &given], 0)];
    assert_eq!(
        pdns.rrset("example.test.", "www.example.test.", "A")
            .unwrap()
            .1,
        ["192.0.2.10"]
    );
    case.set_spec(&spec.replace("192.0.2.10", "192.0.2.20"));
    outputs.push(case.expect(["plan", "--out", "p.json", "--var", &given], 0));
    outputs.push(case.expect(["plan", "--json", "--var", &given], 0));
    outputs.push(case.expect(["state", "show", "www"], 0));
    outputs.push(case.expect(["apply", "p.json", "--var", &given], 0));
    for out in &outputs {
        assert!(
            !out.stdout.contains(KEY) && !out.stderr.contains(KEY),
            "{out}"
        );
    }
    let mut files = case.state_files();
    files.insert(
        case.path("p.json"),
        std::fs::read(case.path("p.json")).unwrap(),
    );
    for (path, bytes) in files {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(KEY),
            "{} holds the API key",
            path.display()
        );
    }

    case.remove("fabrik.yaml");
    let out = case.run(["destroy", "--yes", "--stack", "dns-var"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(!out.stderr.contains(KEY), "{out}");
    assert!(pdns.zone_exists("example.test."), "nothing was destroyed");
    case.set_spec(&spec);
    case.expect(["destroy", "--yes", "--var", &given], 0);
    assert!(!pdns.zone_exists("example.test."));
}
