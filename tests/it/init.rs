//! `fabrik init`: a starter spec that validates and applies, `.gitignore` lines added once, an
//! existing spec never overwritten, and the examples copied as they are.

use crate::harness::Case;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn init_writes_a_starter_spec_and_ignores_the_state_and_secrets() {
    let case = Case::new();
    let out = case.expect(["init"], 0);
    fabrik_snapshot!(case, out, @r"
    exit code: 0
    ----- stdout -----
    Wrote fabrik.yaml: the starter spec.
    Added .fabrik/ and .env to .gitignore.
    Next: `fabrik validate`, then `fabrik plan` and `fabrik apply`.

    ----- stderr -----
    ");
    assert_eq!(case.read(".gitignore"), ".fabrik/\n.env\n");
    assert!(case.read("fabrik.yaml").contains("Spec reference"));
    case.expect(["validate"], 0);
}

#[test]
fn the_starter_spec_applies_and_destroys() {
    let case = Case::new();
    case.expect(["init"], 0);
    // The starter's port, as written, for a reader; here a free one, so that a server already
    // on 8790 does not fail the test.
    let port = crate::live::free_port();
    let starter = case.read("fabrik.yaml");
    assert!(starter.contains("8790"), "{starter}");
    case.write("fabrik.yaml", starter.replace("8790", &port.to_string()));
    let applied = case.run(["apply", "--yes"]);
    let written = case.exists("site/index.html");
    // Whatever the apply did, the server it may have started is stopped.
    let destroyed = case.run(["destroy", "--yes"]);
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied
            .stdout
            .contains(&format!("verified http http://127.0.0.1:{port}/")),
        "{applied}"
    );
    assert!(written);
    assert_eq!(destroyed.code, 0, "{destroyed}");
    assert!(!case.exists("site/index.html"));
}

#[test]
fn init_refuses_to_overwrite_a_spec_and_changes_nothing() {
    let case = Case::new();
    case.write("fabrik.yaml", "stack: mine\n");
    let out = case.expect(["init", "--example", "dns"], 1);
    fabrik_snapshot!(case, out, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: fabrik.yaml already exists here; nothing was changed (move it away to start anew)
    ");
    assert_eq!(case.read("fabrik.yaml"), "stack: mine\n");
    assert!(!case.exists(".gitignore"));
}

#[test]
fn init_adds_only_the_gitignore_lines_missing() {
    let case = Case::new();
    // No newline at the end, and `.env` already listed.
    case.write(".gitignore", "target/\n.env");
    let out = case.expect(["init"], 0);
    assert!(
        out.stdout.contains("Added .fabrik/ to .gitignore."),
        "{out}"
    );
    assert_eq!(case.read(".gitignore"), "target/\n.env\n.fabrik/\n");

    let again = Case::new();
    again.write(".gitignore", ".fabrik\n.env\n");
    let out = again.expect(["init"], 0);
    assert!(!out.stdout.contains(".gitignore"), "{out}");
    assert_eq!(again.read(".gitignore"), ".fabrik\n.env\n");
}

#[test]
fn init_example_copies_the_example_without_its_schema_line() {
    for example in ["quickstart", "dns", "coolify"] {
        let case = Case::new();
        let out = case.expect(["init", "--example", example], 0);
        assert!(
            out.stdout.contains(&format!("the `{example}` example")),
            "{out}"
        );
        let original =
            std::fs::read_to_string(format!("{ROOT}/examples/{example}/fabrik.yaml")).unwrap();
        let (first, rest) = original.split_once('\n').unwrap();
        assert!(first.starts_with("# yaml-language-server:"));
        assert_eq!(case.read("fabrik.yaml"), rest, "{example}");
        let out = case.args(["validate"]).env("VERSION", "1.0.0").run();
        assert_eq!(out.code, 0, "{example}: {out}");
    }
}

#[test]
fn init_names_the_examples_it_knows() {
    let case = Case::new();
    let out = case.expect(["init", "--example", "nope"], 1);
    assert!(
        out.stderr
            .contains("[possible values: quickstart, dns, coolify]"),
        "{out}"
    );
    assert!(!case.exists("fabrik.yaml"));
}
