//! Renaming resources without touching their objects: the spec's `moved:` entries and
//! `fabrik state mv`. A renamed process keeps its pid, a renamed file its inode, a renamed
//! PowerDNS record its RRset; the plan shows the rename alone; what the state refuses changes
//! nothing; a run killed right after the rename was journaled converges. Cloudflare records
//! (on the fake) are not sent again either.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::harness::Case;
use crate::live::{Reaper, alive, processes_of, recorded_pid};
use crate::powerdns::harness_pdns::{KEY, Pdns};
use crate::powerdns::stack_spec;

/// A file and a process under their first names.
const BEFORE: &str = r#"
    stack: shop
    resources:
      config:
        type: local.file
        with: { path: app.conf, content: "port = 8000\n" }
      worker:
        type: local.process
        with: { command: sleep, args: ["300"], stop_timeout: 2 }
        depends_on: [config]
"#;

/// The same objects under new names, the renames written down.
const AFTER: &str = r#"
    stack: shop
    moved:
      - { from: config, to: settings }
      - { from: worker, to: jobs }
    resources:
      settings:
        type: local.file
        with: { path: app.conf, content: "port = 8000\n" }
      jobs:
        type: local.process
        with: { command: sleep, args: ["300"], stop_timeout: 2 }
        depends_on: [settings]
"#;

fn inode(case: &Case, relative: &str) -> u64 {
    std::fs::metadata(case.path(relative)).unwrap().ino()
}

/// The state's snapshot and journal as bytes: what a refused command leaves as they were (the
/// lock file beside them names whoever took the lock last).
fn records(case: &Case) -> BTreeMap<PathBuf, Vec<u8>> {
    case.state_files()
        .into_iter()
        .filter(|(path, _)| path.extension().is_none_or(|e| e != "lock"))
        .collect()
}

/// The pid the state records for `name`, journal included (`fabrik state show`).
fn tracked_pid(case: &Case, name: &str) -> i32 {
    let shown = case.expect(["state", "show", name], 0);
    let resource: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    resource["outputs"]["pid"].as_i64().unwrap() as i32
}

#[test]
fn a_moved_process_keeps_its_pid_and_a_moved_file_its_inode() {
    let case = Case::new().spec(BEFORE);
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = recorded_pid(&case, "shop", "worker");
    let ino = inode(&case, "app.conf");

    case.set_spec(AFTER);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~> config → settings (local.file)

      ~> worker → jobs (local.process)

    Plan: 2 to move, 0 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    ");
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~> config → settings (local.file)

      ~> worker → jobs (local.process)

    Plan: 2 to move, 0 to add, 0 to change, 0 to destroy.

      ~> config → settings (local.file): moved, the object left as it is [TIME]
      ~> worker → jobs (local.process): moved, the object left as it is [TIME]

    Apply complete: 2 moved, 0 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");

    // The objects were not touched: the same process runs, the same file is there.
    assert_eq!(recorded_pid(&case, "shop", "jobs"), pid);
    assert!(alive(pid), "the moved process still runs");
    assert_eq!(processes_of(&case.state_dir()), [pid]);
    assert_eq!(inode(&case, "app.conf"), ino);
    assert_eq!(case.read("app.conf"), "port = 8000\n");
    let state = case.state("shop");
    assert_eq!(
        state["resources"]["jobs"]["dependencies"],
        serde_json::json!(["settings"])
    );
    assert_eq!(state["resources"]["jobs"]["marked_as"], "worker");

    // The entries may stay in the spec: they have nothing left to do, refreshed or not.
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);
    let again = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, again, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `shop` matches the spec.

    ----- stderr -----
    ");

    // The process is still fabrik's under its new name: it is updated, then destroyed.
    case.set_spec(&AFTER.replace("\"300\"", "\"301\""));
    case.expect(["apply", "--yes"], 0);
    let updated = recorded_pid(&case, "shop", "jobs");
    assert_ne!(updated, pid);
    assert!(!alive(pid), "the update stopped the old process");
    assert_eq!(processes_of(&case.state_dir()), [updated]);
    case.expect(["destroy", "--yes"], 0);
    assert!(
        processes_of(&case.state_dir()).is_empty(),
        "nothing is left running"
    );
    assert!(!case.exists("app.conf"));
}

#[test]
fn a_moved_resource_that_also_changed_shows_the_rename_and_the_update() {
    let case = Case::new().spec(BEFORE);
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&AFTER.replace("8000", "9000"));
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~> config → settings (local.file)

      ~> worker → jobs (local.process)

      ~ settings (local.file)
          ~ content:
              - port = 8000
              + port = 9000

    Plan: 2 to move, 0 to add, 1 to change, 0 to destroy.

      ~> config → settings (local.file): moved, the object left as it is [TIME]
      ~> worker → jobs (local.process): moved, the object left as it is [TIME]
      ~ settings (local.file): updated [TIME]

    Apply complete: 2 moved, 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    // Updated under its new name: the object's update, never a delete and a create.
    assert_eq!(case.read("app.conf"), "port = 9000\n");
    assert_eq!(case.tracked("shop"), ["jobs", "settings"]);
    case.expect(["destroy", "--yes"], 0);
}

#[test]
fn a_saved_plan_with_moves_applies_them() {
    let case = Case::new().spec(BEFORE);
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = recorded_pid(&case, "shop", "worker");
    case.set_spec(AFTER);
    case.expect(["plan", "--out", "moves.plan"], 0);
    // The saved plan names the moves it makes.
    let shown = case.expect(["show", "moves.plan", "--json"], 0);
    let plan: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(
        plan["moves"],
        serde_json::json!([
            { "from": "config", "to": "settings", "type": "local.file" },
            { "from": "worker", "to": "jobs", "type": "local.process" },
        ])
    );
    assert_eq!(plan["summary"]["moved"], 2);
    let apply = case.run(["apply", "moves.plan"]);
    fabrik_snapshot!(case, apply, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~> config → settings (local.file)

      ~> worker → jobs (local.process)

    Plan: 2 to move, 0 to add, 0 to change, 0 to destroy.

      ~> config → settings (local.file): moved, the object left as it is [TIME]
      ~> worker → jobs (local.process): moved, the object left as it is [TIME]

    Apply complete: 2 moved, 0 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    assert_eq!(recorded_pid(&case, "shop", "jobs"), pid);
    case.expect(["destroy", "--yes"], 0);
}

#[test]
fn state_mv_renames_by_hand_and_the_plan_then_has_nothing_to_do() {
    let case = Case::new().spec(BEFORE);
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = recorded_pid(&case, "shop", "worker");
    let ino = inode(&case, "app.conf");

    let config = case.run(["state", "mv", "config", "settings"]);
    fabrik_snapshot!(case, config, @"
    exit code: 0
    ----- stdout -----
    Moved `config` (local.file) to `settings`; the object itself was left as it is.

    ----- stderr -----
    ");
    case.expect(["state", "mv", "worker", "jobs"], 0);
    assert_eq!(case.tracked("shop"), ["jobs", "settings"]);

    // The spec says the same without `moved:` entries: nothing to do.
    case.set_spec(
        &AFTER
            .replace("      - { from: config, to: settings }\n", "")
            .replace("      - { from: worker, to: jobs }\n", "")
            .replace("    moved:\n", ""),
    );
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `shop` matches the spec.

    ----- stderr -----
    ");
    assert_eq!(recorded_pid(&case, "shop", "jobs"), pid);
    assert_eq!(inode(&case, "app.conf"), ino);
    case.expect(["destroy", "--yes"], 0);
    assert!(processes_of(&case.state_dir()).is_empty());
}

#[test]
fn state_mv_refuses_what_it_cannot_do_and_changes_nothing() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a:
            type: local.file
            with: { path: a.txt, content: "a" }
          b:
            type: local.file
            with: { path: b.txt, content: "b" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    let before = records(&case);
    let missing = case.run(["state", "mv", "nowhere", "c"]);
    fabrik_snapshot!(case, missing, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `nowhere` is not tracked in the state of stack `shop`
    ");
    let taken = case.run(["state", "mv", "a", "b"]);
    fabrik_snapshot!(case, taken, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the state of stack `shop` already tracks `b` (local.file, [TEMP]/b.txt): a move cannot put two objects at one address
    remove it first (`fabrik state rm b`) if it is not wanted
    ");
    let malformed = case.run(["state", "mv", "a", "c["]);
    fabrik_snapshot!(case, malformed, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `c[` is not an address: `[` without a closing `]` at the end
    ");
    assert_eq!(records(&case), before, "a refused move changes nothing");
    // A keyed address is an address like any other.
    case.expect(["state", "mv", "a", "a[eu]"], 0);
    assert_eq!(case.tracked("shop"), ["a[eu]", "b"]);
}

#[test]
fn moves_the_state_refuses_stop_the_plan_and_change_nothing() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a:
            type: local.file
            with: { path: a.txt, content: "a" }
          b:
            type: local.file
            with: { path: b.txt, content: "b" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    let before = records(&case);
    // `b` is tracked already: two objects cannot take one address.
    case.set_spec(
        r#"
        stack: shop
        moved:
          - { from: a, to: b }
        resources:
          b:
            type: local.file
            with: { path: b.txt, content: "b" }
        "#,
    );
    let taken = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, taken, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot move `a` to `b`: the state already tracks `b` (local.file, [TEMP]/b.txt)
      --> fabrik.yaml:3:20
      |
    3 |   - { from: a, to: b }
      |                    ^
      = help: one address holds one object: forget the one not wanted (`fabrik state rm a` or `fabrik state rm b`), or remove this entry
    ");
    // A move keeps the object, so it cannot change its type.
    case.set_spec(
        r#"
        stack: shop
        moved:
          - { from: a, to: runner }
        resources:
          b:
            type: local.file
            with: { path: b.txt, content: "b" }
          runner:
            type: local.process
            with: { command: sleep, args: ["300"] }
        "#,
    );
    let retyped = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, retyped, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` is a `local.file` in the state and `runner` a `local.process` in the spec: a move keeps the object, and with it its type
      --> fabrik.yaml:3:20
      |
    3 |   - { from: a, to: runner }
      |                    ^^^^^^
      = help: remove this entry to replace it: the old object is deleted and a new one created
    ");
    assert_eq!(records(&case), before, "a refused plan changes nothing");
    assert_eq!(case.read("a.txt"), "a");
}

#[test]
fn a_new_resource_may_not_take_the_name_a_moved_object_is_marked_with() {
    let case = Case::new().spec(BEFORE);
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    case.set_spec(AFTER);
    case.expect(["apply", "--yes"], 0);
    // A second process called `worker` would carry the marker the moved one still carries.
    let without = |entry: &str| crate::harness::dedent(AFTER).replace(entry, "");
    case.set_spec(&format!(
        "{}  worker:\n    type: local.process\n    with: {{ command: sleep, args: [\"302\"] }}\n",
        without("  - { from: worker, to: jobs }\n")
    ));
    let clash = case.run(["plan"]);
    fabrik_snapshot!(case, clash, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `worker` cannot be made yet: the object of `jobs`, moved from `worker`, still carries the marker `fabrik:shop/worker`
       --> fabrik.yaml:12:3
       |
    12 |   worker:
       |   ^^^^^^
       = help: give the new resource another name, or let `jobs` be replaced first (its new object is marked with its own name)
    ");
    // A file carries no marker: its name may be used again.
    case.set_spec(&format!(
        "{}  config:\n    type: local.file\n    with: {{ path: other.conf, content: \"x\" }}\n",
        without("  - { from: config, to: settings }\n")
    ));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.tracked("shop"), ["config", "jobs", "settings"]);
    case.expect(["destroy", "--yes"], 0);
}

#[test]
fn a_moved_powerdns_record_keeps_its_rrset_untouched() {
    let pdns = Pdns::start();
    let body = |name: &str, moved: &str| {
        format!(
            r#"
            {moved}
            resources:
              zone:
                type: powerdns.zone
                with: {{ name: example.test, nameservers: [ns1.example.test.] }}
              {name}:
                type: powerdns.record
                with: {{ zone: "${{zone.name}}", name: www, type: A, records: ["192.0.2.10"] }}
            "#
        )
    };
    let case = Case::new()
        .spec(&stack_spec("dns-moved", &pdns, &body("www", "")))
        .env("PDNS_API_KEY", KEY);
    case.expect(["apply", "--yes"], 0);
    let rrset = pdns.rrset("example.test.", "www.example.test.", "A");
    let soa = pdns.rrset("example.test.", "example.test.", "SOA");
    assert_eq!(rrset.as_ref().unwrap().2, ["fabrik:dns-moved/www"]);

    case.set_spec(&stack_spec(
        "dns-moved",
        &pdns,
        &body("web", "moved: [{ from: www, to: web }]"),
    ));
    case.redact(pdns.url(), "PDNS");
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `dns-moved`:

      ~> www → web (powerdns.record)

    Plan: 1 to move, 0 to add, 0 to change, 0 to destroy.

      ~> www → web (powerdns.record): moved, the object left as it is [TIME]

    Apply complete: 1 moved, 0 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    // Nothing was sent: the RRset, its marker and the zone's serial are as they were.
    assert_eq!(pdns.rrset("example.test.", "www.example.test.", "A"), rrset);
    assert_eq!(pdns.rrset("example.test.", "example.test.", "SOA"), soa);
    // What the refresh reads under the old marker is still this resource's.
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);

    // It is updated and destroyed under its new name.
    case.set_spec(
        &stack_spec(
            "dns-moved",
            &pdns,
            &body("web", "moved: [{ from: www, to: web }]"),
        )
        .replace("192.0.2.10", "192.0.2.20"),
    );
    case.expect(["apply", "--yes"], 0);
    let (_, records, comments) = pdns
        .rrset("example.test.", "www.example.test.", "A")
        .unwrap();
    assert_eq!(records, ["192.0.2.20"]);
    assert_eq!(comments, ["fabrik:dns-moved/www"]);
    case.expect(["destroy", "--yes"], 0);
    assert!(!pdns.zone_exists("example.test."));
}

#[test]
fn a_run_killed_after_journaling_its_moves_converges() {
    let case = Case::new().spec(BEFORE);
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = recorded_pid(&case, "shop", "worker");
    let ino = inode(&case, "app.conf");
    // The renames are journaled first; the run then creates `probe`, waits on its gate and
    // is killed there, before it writes the snapshot.
    let probe = "  probe:\n    type: local.file\n    with: { path: probe.txt, content: \"p\" }\n";
    let gate = "    verify:\n      - command: [sleep, \"30\"]\n        timeout: 60s\n";
    let after = crate::harness::dedent(AFTER);
    case.set_spec(&format!("{after}{probe}{gate}"));
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fabrik starts");
    let journal = case.state_dir().join("shop.journal");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&journal)
        .is_ok_and(|j| j.contains(r#""op":"move""#) && j.contains(r#""op":"put","name":"probe""#))
    {
        assert!(Instant::now() < deadline, "the run never got to its gate");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !std::fs::read_to_string(case.state_file("shop"))
            .unwrap()
            .contains("settings"),
        "the snapshot was not written"
    );
    // The journal holds the renames: the next plan starts from them and has nothing to do.
    case.set_spec(&format!("{after}{probe}"));
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `shop` matches the spec.

    ----- stderr -----
    ");
    case.expect(["apply", "--yes"], 0);
    case.expect(["plan", "--detailed-exitcode"], 0);
    assert_eq!(tracked_pid(&case, "jobs"), pid);
    assert_eq!(processes_of(&case.state_dir()), [pid]);
    assert_eq!(inode(&case, "app.conf"), ino);
    case.expect(["destroy", "--yes"], 0);
}

#[test]
fn a_moved_cloudflare_record_is_not_sent_again_and_stays_ours() {
    use fabrik_testkit::cloudflare::{FakeCloudflare, TOKEN};
    let fake = FakeCloudflare::start();
    fake.add_zone("example.com");
    let spec = |name: &str, moved: &str, ip: &str| {
        format!(
            "stack: cf-moved\nproviders:\n  cloudflare: {{ api_url: \"{}\", token: \"${{secret.CF_API_TOKEN}}\" }}\nsecrets:\n  CF_API_TOKEN: {{}}\n{moved}resources:\n  {name}:\n    type: cloudflare.record\n    with: {{ zone: example.com, name: www, type: A, content: \"{ip}\", ttl: 300 }}\n",
            fake.url()
        )
    };
    let case = Case::new()
        .spec(&spec("www", "", "192.0.2.10"))
        .env("CF_API_TOKEN", TOKEN);
    case.expect(["apply", "--yes"], 0);
    let writes = || {
        ["POST", "PUT", "PATCH", "DELETE"]
            .map(|method| fake.count(method, ""))
            .iter()
            .sum::<usize>()
    };
    let (before, records) = (writes(), fake.records("example.com"));
    assert_eq!(records.len(), 1);
    assert!(
        records[0]["comment"]
            .as_str()
            .is_some_and(|c| c.ends_with("fabrik:cf-moved/www")),
        "{records:?}"
    );

    let moved = "moved:\n  - { from: www, to: front }\n";
    case.set_spec(&spec("front", moved, "192.0.2.10"));
    let out = case.expect(["apply", "--yes"], 0);
    assert!(
        out.stdout.contains("~> www → front (cloudflare.record)"),
        "{out}"
    );
    assert_eq!(writes(), before, "a move sends nothing to Cloudflare");
    assert_eq!(fake.records("example.com"), records);
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);

    // Still this stack's record under its new name: updated, then deleted.
    case.set_spec(&spec("front", moved, "192.0.2.20"));
    case.expect(["apply", "--yes"], 0);
    let records = fake.records("example.com");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["content"], "192.0.2.20");
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.records("example.com").is_empty());
    fake.assert_no_violations();
}

/// A resource that becomes one instance of a `for_each` keeps its object when the move says
/// so; a move to a key the `for_each` does not have is refused where it is written.
#[test]
fn a_resource_moved_into_a_for_each_instance_keeps_its_object() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          page:
            type: local.file
            with: { path: home.html, content: "home\n" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    let ino = inode(&case, "home.html");

    case.set_spec(
        r#"
        stack: shop
        moved:
          - { from: page, to: "pages[nokey]" }
        resources:
          pages:
            type: local.file
            for_each: [home, about]
            with: { path: "${each.key}.html", content: "${each.key}\n" }
        "#,
    );
    let refused = case.run(["plan"]);
    fabrik_snapshot!(case, refused, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `pages[nokey]` is not a resource of the spec
      --> fabrik.yaml:3:23
      |
    3 |   - { from: page, to: "pages[nokey]" }
      |                       ^^^^^^^^^^^^^^
      = help: did you mean `pages[home]`?
    "#);
    assert_eq!(inode(&case, "home.html"), ino);

    case.set_spec(
        r#"
        stack: shop
        moved:
          - { from: page, to: "pages[home]" }
        resources:
          pages:
            type: local.file
            for_each: [home, about]
            with: { path: "${each.key}.html", content: "${each.key}\n" }
        "#,
    );
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~> page → pages[home] (local.file)

      + pages[about] (local.file)
          + path    = "about.html"
          + content = <<EOT
              about
            EOT

    Plan: 1 to move, 1 to add, 0 to change, 0 to destroy.

      ~> page → pages[home] (local.file): moved, the object left as it is [TIME]
      + pages[about] (local.file): created [TIME]

    Apply complete: 1 moved, 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(
        inode(&case, "home.html"),
        ino,
        "the moved file was not rewritten"
    );
    assert_eq!(case.read("about.html"), "about\n");
    case.expect(["plan", "--detailed-exitcode"], 0);
}
