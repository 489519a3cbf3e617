//! fabrik's promises, each pinned by the reproduction that once broke it: nothing lost (a path
//! handed between resources, a user's file, a protected resource), nothing foreign touched
//! (fabrik's own files, a file fabrik did not create), reviewed = applied (a saved plan binds
//! what it showed), and what the state records (dependencies, temporary files left by a kill).

use std::os::unix::fs::PermissionsExt;

use crate::harness::Case;

fn file(name: &str, path: &str, content: &str) -> String {
    format!("  {name}: {{ type: local.file, with: {{ path: {path}, content: {content:?} }} }}\n")
}

fn spec(files: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("stack: trust\nresources:\n");
    for (name, path, content) in files {
        text.push_str(&file(name, path, content));
    }
    text
}

fn mode(case: &Case, relative: &str) -> u32 {
    std::fs::metadata(case.path(relative))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_path_handed_to_a_new_resource_keeps_the_new_file() {
    let case = Case::new().spec(&spec(&[("a", "p1.txt", "A")]));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&spec(&[("b", "p1.txt", "B")]));
    let plan = case.expect(["plan"], 0);
    assert!(
        plan.stdout.contains("takes over") && plan.stdout.contains("stays"),
        "the plan says who takes the file over:\n{plan}"
    );
    let out = case.expect(["apply", "--yes"], 0);
    assert!(out.stdout.contains("released"), "{out}");
    assert_eq!(case.read("p1.txt"), "B");
    assert_eq!(case.tracked("trust"), ["b"]);
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["destroy", "--yes"], 0);
    assert!(!case.exists("p1.txt"));
}

#[test]
fn swapping_the_paths_of_two_resources_keeps_both_files() {
    let case = Case::new().spec(&spec(&[("a", "p1.txt", "A"), ("b", "p2.txt", "B")]));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&spec(&[("a", "p2.txt", "A"), ("b", "p1.txt", "B")]));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("p1.txt"), "B");
    assert_eq!(case.read("p2.txt"), "A");
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["destroy", "--yes"], 0);
    assert!(!case.exists("p1.txt") && !case.exists("p2.txt"));
}

#[test]
fn a_path_left_by_a_moved_resource_is_taken_over_by_a_new_one() {
    let case = Case::new().spec(&spec(&[("a", "p1.txt", "A")]));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&spec(&[("a", "p0.txt", "A"), ("b", "p1.txt", "B")]));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("p0.txt"), "A");
    assert_eq!(case.read("p1.txt"), "B");
    case.expect(["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_targeted_apply_never_takes_a_path_from_a_resource_it_leaves_alone() {
    let case = Case::new().spec(&spec(&[("a", "p1.txt", "A")]));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&spec(&[("a", "p0.txt", "A"), ("b", "p1.txt", "B")]));
    let out = case.run(["apply", "--yes", "--target", "b"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b`: [TEMP]/p1.txt is held by `a`, which this plan leaves as it is
      --> fabrik.yaml:4:3
      |
    4 |   b: { type: local.file, with: { path: p1.txt, content: "B" } }
      |   ^
      = help: add `--target a` so that its change is part of this plan, or apply without --target
    "#);
    assert_eq!(case.read("p1.txt"), "A");
    assert_eq!(case.tracked("trust"), ["a"]);
}

#[test]
fn a_rolled_back_handover_gives_the_file_back_to_its_owner() {
    let case = Case::new().spec(&spec(&[("a", "p1.txt", "A")]));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&format!(
        "{}  b:\n    type: local.file\n    with: {{ path: p1.txt, content: B }}\n    verify: [{{ tcp: \"127.0.0.1:1\", timeout: 200ms }}]\n",
        spec(&[("a", "p0.txt", "A")])
    ));
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `trust`:

      +/- a (local.file)  create before destroy
          ~ path = "p1.txt" → "p0.txt"  # forces replacement

      + b (local.file)  # takes over [TEMP]/p1.txt from `a`
          + path    = "p1.txt"
          + content = "B"
        gate: tcp 127.0.0.1:1, timeout 200ms

    Plan: 2 to add, 0 to change, 1 to destroy.

      + b (local.file): created [TIME]
      ± a (local.file): replaced [TIME]
      ✗ b (local.file): failed
    Rolling back the changes this run made…
      ↩ a (local.file): rolled back [TIME]
      ↩ b (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      b: gate tcp 127.0.0.1:1 failed: cannot connect to 127.0.0.1:1: connection refused (nothing listens there) (gave up after 200ms, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(case.read("p1.txt"), "A");
    assert!(!case.exists("p0.txt"));
    assert_eq!(case.tracked("trust"), ["a"]);
    case.set_spec(&spec(&[("a", "p1.txt", "A")]));
    case.expect(["plan", "--detailed-exitcode"], 0);
}

#[test]
fn two_resources_on_one_path_are_refused_naming_both() {
    let case = Case::new().spec(&spec(&[
        ("a", "same.txt", "a"),
        ("b", "same.txt", "b"),
        ("c", "x.txt", "c"),
        ("d", "./x.txt", "d"),
    ]));
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` and `a` are both at [TEMP]/same.txt: two resources cannot share one object
      --> fabrik.yaml:4:3
      |
    4 |   b: { type: local.file, with: { path: same.txt, content: "b" } }
      |   ^
      = help: give each resource its own (paths are compared once `.` and `..` are resolved)

    error: `d` and `c` are both at [TEMP]/x.txt: two resources cannot share one object
      --> fabrik.yaml:6:3
      |
    6 |   d: { type: local.file, with: { path: ./x.txt, content: "d" } }
      |   ^
      = help: give each resource its own (paths are compared once `.` and `..` are resolved)

    2 errors in fabrik.yaml

    "#);
    // The same refusal, word for word, from a plan and from an apply.
    assert_eq!(case.run(["plan"]), out);
    assert_eq!(case.run(["apply", "--yes"]), out);
    assert!(!case.exists("same.txt") && !case.exists("x.txt"));
    assert!(!case.state_file("trust").exists());
}

#[test]
fn fabriks_own_files_are_refused_as_paths() {
    let case = Case::new().spec(&spec(&[("a", "ok.txt", "a")]));
    case.expect(["apply", "--yes"], 0);
    let before = case.state("trust");
    let mut transcript = String::new();
    for path in [
        "fabrik.yaml",
        ".fabrik/trust.state.json",
        ".env",
        "./.fabrik",
    ] {
        case.set_spec(&spec(&[("a", "ok.txt", "a"), ("b", path, "x")]));
        let written = case.read("fabrik.yaml");
        let out = case.run(["validate"]);
        assert_eq!(
            case.run(["apply", "--yes"]),
            out,
            "{path}: apply refuses alike"
        );
        transcript += &format!("$ fabrik validate  # b at {path}\n{out}\n");
        assert_eq!(case.read("fabrik.yaml"), written);
        assert!(!case.exists(".env"));
    }
    fabrik_snapshot!(case, transcript, @r#"
    $ fabrik validate  # b at fabrik.yaml
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` (local.file): `path` [TEMP]/fabrik.yaml points into [TEMP]/fabrik.yaml, one of fabrik's own files (the spec, the state directory, `.env`): a resource may not write it
      --> fabrik.yaml:4:14
      |
    4 |   b: { type: local.file, with: { path: fabrik.yaml, content: "x" } }
      |              ^^^^^^^^^^

    $ fabrik validate  # b at .fabrik/trust.state.json
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` (local.file): `path` [TEMP]/.fabrik/trust.state.json points into [TEMP]/.fabrik, one of fabrik's own files (the spec, the state directory, `.env`): a resource may not write it
      --> fabrik.yaml:4:14
      |
    4 |   b: { type: local.file, with: { path: .fabrik/trust.state.json, content: "x" } }
      |              ^^^^^^^^^^

    $ fabrik validate  # b at .env
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` (local.file): `path` [TEMP]/.env points into [TEMP]/.env, one of fabrik's own files (the spec, the state directory, `.env`): a resource may not write it
      --> fabrik.yaml:4:14
      |
    4 |   b: { type: local.file, with: { path: .env, content: "x" } }
      |              ^^^^^^^^^^

    $ fabrik validate  # b at ./.fabrik
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` (local.file): `path` [TEMP]/.fabrik points into [TEMP]/.fabrik, one of fabrik's own files (the spec, the state directory, `.env`): a resource may not write it
      --> fabrik.yaml:4:14
      |
    4 |   b: { type: local.file, with: { path: ./.fabrik, content: "x" } }
      |              ^^^^^^^^^^
"#);
    assert_eq!(case.state("trust"), before);
}

#[test]
fn a_users_file_stops_the_plan_and_is_never_overwritten() {
    let case = Case::new().spec(&spec(&[("a", "pre.txt", "mine")]));
    case.write("pre.txt", "user data");
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a`: [TEMP]/pre.txt already exists (a file) and this stack did not create it; set `adopt: true` to take it over (its content is kept and put back if the apply is rolled back), or import it with `fabrik import a [TEMP]/pre.txt`
      --> fabrik.yaml:3:3
      |
    3 |   a: { type: local.file, with: { path: pre.txt, content: "mine" } }
      |   ^

    "#);
    assert_eq!(
        case.run(["apply", "--yes"]),
        out,
        "the same refusal from an apply"
    );
    assert_eq!(case.read("pre.txt"), "user data");
    assert!(!case.state_file("trust").exists());
}

#[test]
fn a_rolled_back_adoption_restores_the_users_file_byte_for_byte() {
    let case = Case::new().spec(
        r#"
        stack: trust
        resources:
          a:
            type: local.file
            with: { path: pre.txt, content: mine, mode: "0644" }
            adopt: true
            verify: [{ tcp: "127.0.0.1:1", timeout: 200ms }]
        "#,
    );
    let original: &[u8] = b"user data\x00\xff\n";
    case.write("pre.txt", original);
    std::fs::set_permissions(case.path("pre.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `trust`:

      + a (local.file)
          + path    = "pre.txt"
          + content = "mine"
          + mode    = "0644"
        gate: tcp 127.0.0.1:1, timeout 200ms

    Plan: 1 to add, 0 to change, 0 to destroy.

      + a (local.file): created [TIME]
      ✗ a (local.file): failed
    Rolling back the changes this run made…
      ↩ a (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      a: gate tcp 127.0.0.1:1 failed: cannot connect to 127.0.0.1:1: connection refused (nothing listens there) (gave up after 200ms, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(std::fs::read(case.path("pre.txt")).unwrap(), original);
    assert_eq!(mode(&case, "pre.txt"), 0o640);
    assert!(case.tracked("trust").is_empty());
    assert!(
        !case.exists(".fabrik/copies"),
        "the copy is gone once restored"
    );
}

#[test]
fn a_rolled_back_update_restores_the_file_byte_for_byte() {
    let case = Case::new().spec(&spec(&[("a", "f.txt", "one")]));
    case.expect(["apply", "--yes"], 0);
    std::fs::set_permissions(case.path("f.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    case.set_spec(
        r#"
        stack: trust
        resources:
          a:
            type: local.file
            with: { path: f.txt, content: two }
            verify: [{ tcp: "127.0.0.1:1", timeout: 200ms }]
        "#,
    );
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `trust`:

      ~ a (local.file)
          ~ content = "one" → "two"
        gate: tcp 127.0.0.1:1, timeout 200ms

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ a (local.file): updated [TIME]
      ✗ a (local.file): failed
    Rolling back the changes this run made…
      ↩ a (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      a: gate tcp 127.0.0.1:1 failed: cannot connect to 127.0.0.1:1: connection refused (nothing listens there) (gave up after 200ms, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(case.read("f.txt"), "one");
    assert_eq!(mode(&case, "f.txt"), 0o600);
}

#[test]
fn an_imported_file_is_managed_from_then_on() {
    let case = Case::new().spec(&spec(&[("a", "pre.txt", "mine")]));
    case.write("pre.txt", "user data");
    case.expect(["import", "a", "pre.txt"], 0);
    assert_eq!(case.read("pre.txt"), "user data", "import changes nothing");
    let plan = case.expect(["plan"], 0);
    assert!(plan.stdout.contains("~ a (local.file)"), "{plan}");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("pre.txt"), "mine");
}

#[test]
fn a_saved_plan_refuses_an_edit_to_content_known_only_after_apply() {
    let written = r#"
        stack: trust
        resources:
          b: { type: local.file, with: { path: p0.txt, content: x } }
          a: { type: local.file, with: { path: p1.txt, content: "x${b.size}" } }
        "#;
    let case = Case::new().spec(written);
    case.expect(["plan", "--out", "P"], 0);
    case.set_spec(&written.replace("x${b.size}", "x${b.size} stale-edit"));
    let out = case.run(["apply", "P"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert!(!case.exists("p0.txt") && !case.exists("p1.txt"));
    // Put back as it was, the plan applies exactly what it showed.
    case.set_spec(written);
    case.expect(["apply", "P"], 0);
    assert_eq!(case.read("p1.txt"), "x1");
}

#[test]
fn a_saved_plan_refuses_a_changed_environment_variable_inside_unknown_content() {
    let case = Case::new().spec(
        r#"
        stack: trust
        resources:
          b: { type: local.file, with: { path: p0.txt, content: x } }
          a: { type: local.file, with: { path: p1.txt, content: "${b.size} ${env.GREETING}" } }
        "#,
    );
    case.args(["plan", "--out", "P"])
        .env("GREETING", "hello")
        .run();
    let out = case.args(["apply", "P"]).env("GREETING", "bye").run();
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert!(!case.exists("p1.txt"));
    let out = case.args(["apply", "P"]).env("GREETING", "hello").run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(case.read("p1.txt"), "1 hello");
}

#[test]
fn a_saved_plan_refuses_an_edited_gate() {
    let written = r#"
        stack: trust
        resources:
          a:
            type: local.file
            with: { path: p1.txt, content: x }
            verify: [{ tcp: "127.0.0.1:1", timeout: 200ms }]
        "#;
    let case = Case::new().spec(written);
    case.expect(["plan", "--out", "P"], 0);
    case.set_spec(&written.replace("200ms", "300ms"));
    let out = case.run(["apply", "P"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    ");
}

#[test]
fn a_dependency_added_alone_is_recorded() {
    let case = Case::new().spec(&spec(&[("a", "a.txt", "a"), ("b", "b.txt", "b")]));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&format!(
        "{}  b: {{ type: local.file, with: {{ path: b.txt, content: b }}, depends_on: [a] }}\n",
        spec(&[("a", "a.txt", "a")])
    ));
    let plan = case.expect(["plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains("depends_on"), "{plan}");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(
        case.state("trust")["resources"]["b"]["dependencies"],
        serde_json::json!(["a"])
    );
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["destroy", "--yes", "--target", "a"], 0);
    assert!(case.tracked("trust").is_empty(), "b went with a");
    assert!(!case.exists("b.txt"));
}

const PROTECTED: &str = r#"
    stack: trust
    resources:
      a: { type: local.file, with: { path: p1.txt, content: A }, protect: true }
      b: { type: local.file, with: { path: p2.txt, content: B } }
"#;

#[test]
fn a_protected_resource_is_never_replaced() {
    let case = Case::new().spec(PROTECTED);
    case.expect(["apply", "--yes"], 0);
    // Unprotecting it in the same spec does not count until an apply records it.
    case.set_spec(
        &PROTECTED
            .replace("p1.txt", "p3.txt")
            .replace("protect: true", "protect: false"),
    );
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` is protected: this change would replace it (delete the object and create another)
      --> fabrik.yaml:3:14
      |
    3 |   a: { type: local.file, with: { path: p3.txt, content: A }, protect: false }
      |              ^^^^^^^^^^
      = help: the state records it as protected: apply `protect: false` alone first, then this change

    ");
    assert_eq!(
        case.run(["apply", "--yes"]),
        out,
        "the same refusal from an apply"
    );
    assert_eq!(case.read("p1.txt"), "A");
    assert!(!case.exists("p3.txt"));
}

#[test]
fn a_protected_resource_removed_from_the_spec_is_never_deleted() {
    let case = Case::new().spec(PROTECTED);
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&spec(&[("b", "p2.txt", "B")]));
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` is no longer in the spec, but the state records it as protected: this plan would delete it
    put it back in the spec with `protect: false` and apply that first; then remove it
    ");
    let out = case.run(["destroy", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: refusing to destroy protected resource `a`: set `protect: false` in the spec and apply that first, or leave it out with --target
    ");
    assert_eq!(case.read("p1.txt"), "A");
    // Once an apply records it unprotected, it can go.
    case.set_spec(&PROTECTED.replace("protect: true", "protect: false"));
    case.expect(["apply", "--yes"], 0);
    case.expect(["destroy", "--yes"], 0);
    assert!(!case.exists("p1.txt"));
}

#[test]
fn recovery_removes_the_temporary_file_of_an_interrupted_write() {
    let case = Case::new().spec(&spec(&[("a", "p0.txt", "A")]));
    case.expect(["apply", "--yes"], 0);
    // What a run killed in the middle of rewriting p0.txt leaves: an announced update and the
    // half-written temporary file beside the file.
    let mut state = case.state("trust");
    let recorded = state["resources"]["a"].clone();
    state["pending"] = serde_json::json!({
        "99": {
            "name": "a",
            "type": "local.file",
            "action": "update",
            "object": recorded["id"],
            "inputs": { "path": "p0.txt", "content": "B" }
        }
    });
    std::fs::write(
        case.state_file("trust"),
        serde_json::to_vec_pretty(&state).unwrap(),
    )
    .unwrap();
    case.write(".p0.txt.fabrik-tmp", "B (half");
    case.expect(["apply", "--yes"], 0);
    assert!(
        !case.exists(".p0.txt.fabrik-tmp"),
        "the temporary file is gone"
    );
    assert_eq!(case.read("p0.txt"), "A");
    case.expect(["plan", "--detailed-exitcode"], 0);
}

#[test]
fn gates_answered_by_another_program_do_not_count_once_the_process_is_gone() {
    // Another program takes the port a second after the apply starts; the process the spec
    // starts has died by then, so the gate that passes was not answered by it.
    let port = crate::live::free_port();
    let squatter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        listener.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < until {
            let _ = listener.accept();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let case = Case::new().spec(&format!(
        r#"
        stack: trust
        resources:
          web:
            type: local.process
            with: {{ command: sh, args: ["-c", "sleep 0.3; exit 1"] }}
            verify: [{{ tcp: "127.0.0.1:{port}", timeout: 8s, interval: 100ms }}]
        "#
    ));
    let out = case.run(["apply", "--yes"]);
    case.redact(port, "PORT");
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `trust`:

      + web (local.process)
          + command = "sh"
          + args    = ["-c","sleep 0.3; exit 1"]
        gate: tcp 127.0.0.1:[PORT], timeout 8s

    Plan: 1 to add, 0 to change, 0 to destroy.

      + web (local.process): created [TIME]
      ✗ web (local.process): failed
    Rolling back the changes this run made…
      ↩ web (local.process): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      web: its gates passed, but it is gone now: something else must have answered them (is another program using its port?)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(case.tracked("trust").is_empty(), "rolled back: {out}");
    drop(squatter);
}

#[test]
fn two_dns_records_on_one_rrset_or_one_cloudflare_record_are_refused() {
    let case = Case::new().spec(
        r#"
        stack: trust
        providers:
          powerdns: { url: "http://127.0.0.1:9", api_key: "${secret.PDNS_API_KEY}" }
          cloudflare: { token: "${secret.CF_API_TOKEN}" }
        secrets:
          PDNS_API_KEY: {}
          CF_API_TOKEN: {}
        resources:
          www:
            type: powerdns.record
            with: { zone: example.test, name: www, type: A, records: ["192.0.2.1"] }
          www-again:
            type: powerdns.record
            with: { zone: example.test., name: WWW.example.test., type: a, records: ["192.0.2.2"] }
          cf-one:
            type: cloudflare.record
            with: { zone: example.com, name: api, type: A, content: 192.0.2.7 }
          cf-two:
            type: cloudflare.record
            with: { zone: example.com, name: api.example.com, type: A, content: 192.0.2.7 }
          cf-other:
            type: cloudflare.record
            with: { zone: example.com, name: api, type: A, content: 192.0.2.8 }
        "#,
    );
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `www-again` and `www` are both at PowerDNS RRset www.example.test. A: two resources cannot share one object
       --> fabrik.yaml:12:3
       |
    12 |   www-again:
       |   ^^^^^^^^^
       = help: give each resource its own (paths are compared once `.` and `..` are resolved)

    error: `cf-two` and `cf-one` are both at Cloudflare record api.example.com A "192.0.2.7" in zone example.com: two resources cannot share one object
       --> fabrik.yaml:18:3
       |
    18 |   cf-two:
       |   ^^^^^^
       = help: give each resource its own (paths are compared once `.` and `..` are resolved)

    2 errors in fabrik.yaml
    "#);
}

#[test]
fn two_resources_whose_paths_meet_only_at_apply_time_are_refused_and_rolled_back() {
    let case = Case::new().spec(
        r#"
        stack: trust
        resources:
          s: { type: local.file, with: { path: s.txt, content: "x" } }
          a: { type: local.file, with: { path: "p${s.size}.txt", content: same } }
          b: { type: local.file, with: { path: "p${s.size}.txt", content: same } }
        "#,
    );
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `trust`:

      + s (local.file)
          + path    = "s.txt"
          + content = "x"

      + a (local.file)
          + path    = (known after apply)
          + content = "same"

      + b (local.file)
          + path    = (known after apply)
          + content = "same"

    Plan: 3 to add, 0 to change, 0 to destroy.

      + a (local.file): created [TIME]
      + s (local.file): created [TIME]
      ✗ b (local.file): failed
    Rolling back the changes this run made…
      ↩ a (local.file): rolled back [TIME]
      ↩ s (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      b: [TEMP]/p1.txt is `a`'s too, and this run does not remove `a`: two resources cannot share one object
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(!case.exists("p1.txt") && !case.exists("s.txt"));
    assert!(case.tracked("trust").is_empty());
}

#[test]
fn a_respelled_path_is_the_same_file() {
    let case = Case::new().spec(&spec(&[("a", "x.txt", "a")]));
    case.expect(["apply", "--yes"], 0);
    for respelled in ["./x.txt", "d/../x.txt"] {
        case.set_spec(&spec(&[("a", respelled, "a")]));
        case.expect(["plan", "--detailed-exitcode"], 0);
    }
    assert_eq!(case.read("x.txt"), "a");
}

#[test]
fn places_are_checked_where_the_path_is_known_before_the_content() {
    let case = Case::new().spec(&spec(&[("a", "a.txt", "a")]));
    case.expect(["apply", "--yes"], 0);
    case.write("user.txt", "user data");
    // `.env` is one of fabrik's own files, `a.txt` is held by `a`, `user.txt` already exists.
    let mut transcript = String::new();
    for path in [".env", "a.txt", "user.txt"] {
        case.set_spec(&format!(
            "{}  b: {{ type: local.file, with: {{ path: {path}, content: \"b ${{a.size}}\" }} }}\n",
            spec(&[("a", "a.txt", "a2")])
        ));
        let out = case.run(["plan"]);
        transcript += &format!("$ fabrik plan  # b at {path}\n{out}\n");
        case.expect(["apply", "--yes"], 1);
    }
    fabrik_snapshot!(case, transcript, @r#"
    $ fabrik plan  # b at .env
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` (local.file): `path` [TEMP]/.env points into [TEMP]/.env, one of fabrik's own files (the spec, the state directory, `.env`): a resource may not write it
      --> fabrik.yaml:4:14
      |
    4 |   b: { type: local.file, with: { path: .env, content: "b ${a.size}" } }
      |              ^^^^^^^^^^

    $ fabrik plan  # b at a.txt
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b`: [TEMP]/a.txt is held by `a`, which this plan leaves as it is
      --> fabrik.yaml:4:3
      |
    4 |   b: { type: local.file, with: { path: a.txt, content: "b ${a.size}" } }
      |   ^
      = help: two resources cannot share one object

    $ fabrik plan  # b at user.txt
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b`: [TEMP]/user.txt already exists (a file) and this stack did not create it; set `adopt: true` to take it over (its content is kept and put back if the apply is rolled back), or import it with `fabrik import b [TEMP]/user.txt`
      --> fabrik.yaml:4:3
      |
    4 |   b: { type: local.file, with: { path: user.txt, content: "b ${a.size}" } }
      |   ^
    "#);
    assert_eq!(case.read("a.txt"), "a");
    assert_eq!(case.read("user.txt"), "user data");
    assert!(!case.exists(".env"));
    // `validate` knows no outputs, but a path written out is checked all the same.
    case.set_spec(&format!(
        "{}  b: {{ type: local.file, with: {{ path: .env, content: \"b ${{a.size}}\" }} }}\n",
        spec(&[("a", "a.txt", "a")])
    ));
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` (local.file): `path` [TEMP]/.env points into [TEMP]/.env, one of fabrik's own files (the spec, the state directory, `.env`): a resource may not write it
      --> fabrik.yaml:4:14
      |
    4 |   b: { type: local.file, with: { path: .env, content: "b ${a.size}" } }
      |              ^^^^^^^^^^
    "#);
}

#[test]
fn a_targeted_plan_refuses_a_spec_with_two_resources_on_one_path() {
    let case = Case::new().spec(&spec(&[
        ("a", "x.txt", "a"),
        ("b", "x.txt", "b"),
        ("c", "c.txt", "c"),
    ]));
    let out = case.run(["apply", "--yes", "--target", "c"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `b` and `a` are both at [TEMP]/x.txt: two resources cannot share one object
      --> fabrik.yaml:4:3
      |
    4 |   b: { type: local.file, with: { path: x.txt, content: "b" } }
      |   ^
      = help: give each resource its own (paths are compared once `.` and `..` are resolved)
    "#);
    assert!(!case.exists("c.txt"));
}

#[test]
fn a_rolled_back_run_leaves_fabriks_records_as_they_were() {
    let case = Case::new().spec(PROTECTED);
    case.expect(["apply", "--yes"], 0);
    // `a` loses its protection and `b` changes, but the stack's gate fails: all is undone,
    // fabrik's record of `protect` included.
    case.set_spec(&format!(
        "{}verify: [{{ tcp: \"127.0.0.1:1\", timeout: 200ms }}]\n",
        crate::harness::dedent(PROTECTED)
            .replace("protect: true", "protect: false")
            .replace("content: B", "content: B2")
    ));
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `trust`:

      ~ a (local.file)
          ~ protect = true → false

      ~ b (local.file)
          ~ content = "B" → "B2"

    Stack gates, once every change is made:
        gate: tcp 127.0.0.1:1, timeout 200ms

    Plan: 0 to add, 2 to change, 0 to destroy.

      ~ b (local.file): updated [TIME]
      ✗ stack (verify): failed
    Rolling back the changes this run made…
      ↩ b (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      stack: gate tcp 127.0.0.1:1 failed: cannot connect to 127.0.0.1:1: connection refused (nothing listens there) (gave up after 200ms, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(
        case.state("trust")["resources"]["a"]["protect"],
        serde_json::json!(true)
    );
    assert_eq!(case.read("p2.txt"), "B");
    case.remove("fabrik.yaml");
    let out = case.run(["destroy", "--yes", "--stack", "trust"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: refusing to destroy protected resource `a`: set `protect: false` in the spec and apply that first, or leave it out with --target
    ");
    assert_eq!(case.read("p1.txt"), "A");
}

#[test]
fn a_directory_shared_by_files_goes_with_the_last_of_them() {
    let case = Case::new().spec(&spec(&[("a", "d/a.txt", "a")]));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&format!(
        "{}  a: {{ type: local.file, with: {{ path: d/a.txt, content: a }}, depends_on: [b] }}\n",
        spec(&[("b", "d/b.txt", "b")])
    ));
    case.expect(["apply", "--yes"], 0);
    // `a` (whose create made d/) goes first, while `b` still lives there.
    case.expect(["destroy", "--yes"], 0);
    assert!(!case.exists("d"), "d/ went with the last file in it");
}

#[test]
fn a_program_started_through_a_wrapper_is_not_drift() {
    // A version manager's shim found first in PATH re-executes the real program under its
    // full path: the process runs as `/bin/sleep`, the spec says `sleep`.
    let case = Case::new().spec(
        r#"
        stack: trust
        resources:
          worker: { type: local.process, with: { command: sleep, args: ["1000"], stop_timeout: 1 } }
        "#,
    );
    case.write("shims/sleep", "#!/bin/sh\nexec /bin/sleep \"$@\"\n");
    std::fs::set_permissions(
        case.path("shims/sleep"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        case.path("shims").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| case.args(args).env("PATH", &path).run();
    assert_eq!(run(&["apply", "--yes"]).code, 0);
    let plan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "no drift: {plan}");
    assert_eq!(run(&["destroy", "--yes"]).code, 0);
}

#[test]
fn a_provider_key_from_the_environment_is_never_kept_in_the_state() {
    let case = Case::new().spec(
        r#"
        stack: trust
        providers:
          powerdns: { url: "http://127.0.0.1:9", api_key: "${env.PDNS_KEY}" }
        resources:
          a: { type: local.file, with: { path: a.txt, content: a } }
        "#,
    );
    let key = "pdns-key-from-the-environment";
    assert_eq!(
        case.args(["apply", "--yes"])
            .env("PDNS_KEY", key)
            .run()
            .code,
        0
    );
    let state = std::fs::read_to_string(case.state_file("trust")).unwrap();
    assert!(!state.contains(key), "{state}");
    assert_eq!(
        case.state("trust")["providers"]["powerdns"]["api_key"],
        "${env.PDNS_KEY}"
    );
    // With the spec gone, destroy configures the provider from the environment again.
    case.remove("fabrik.yaml");
    let out = case
        .args(["destroy", "--yes", "--stack", "trust"])
        .env("PDNS_KEY", key)
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(!case.exists("a.txt"));
}
