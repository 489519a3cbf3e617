//! `graph` (Graphviz DOT of the dependency graph) and `validate` (a one-line OK).

use crate::harness::Case;

const STACK: &str = r#"
    stack: shop
    resources:
      db:
        type: local.file
        with: { path: db.conf, content: "db\n" }
      api:
        type: local.file
        with: { path: api.conf, content: "db is at ${db.abs_path}\n" }
      web:
        type: local.file
        with: { path: web.conf, content: "web\n" }
        depends_on: [api]
      docs:
        type: local.file
        with: { path: docs.txt, content: "docs\n" }
"#;

#[test]
fn graph_prints_dot_with_reference_and_depends_on_edges() {
    let case = Case::new().spec(STACK);
    let out = case.run(["graph"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    digraph "shop" {
      rankdir = "LR";
      node [shape = "box"];
      "db" [label = "db\nlocal.file"];
      "api" [label = "api\nlocal.file"];
      "web" [label = "web\nlocal.file"];
      "docs" [label = "docs\nlocal.file"];
      "db" -> "api";
      "api" -> "web";
    }

    ----- stderr -----
    "#);
    assert!(
        !case.state_dir().exists(),
        "graph reads nothing but the spec"
    );
}

#[test]
fn validate_prints_one_line() {
    let case = Case::new().spec(STACK);
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    fabrik.yaml is valid: stack `shop`, 4 resources.

    ----- stderr -----
    ");
    assert!(
        !case.state_dir().exists(),
        "validate calls no provider and writes nothing"
    );
    assert!(!case.exists("db.conf"));
}

/// The examples the README tells newcomers to run must at least be valid specs.
#[test]
fn examples_validate() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let case = Case::new().env("VERSION", "v1");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let spec = entry.unwrap().path().join("fabrik.yaml");
        if !spec.exists() {
            continue;
        }
        seen += 1;
        let out = case.expect([std::ffi::OsStr::new("validate"), spec.as_os_str()], 0);
        assert!(out.stdout.contains(" is valid: stack `"), "{out}");
    }
    assert!(seen > 0, "no example found in {}", examples.display());
}

/// A resource's own gates run once it exists, so they may use its attributes: no edge to
/// itself (which no order satisfies), and it is planned like any other.
#[test]
fn a_resource_gate_may_use_its_own_attributes() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          api:
            type: local.file
            with: { path: api.conf, content: "api\n" }
            verify:
              - tcp: "127.0.0.1:${api.size}"
        "#,
    );
    fabrik_snapshot!(case, case.run(["graph"]), @r#"
    exit code: 0
    ----- stdout -----
    digraph "shop" {
      rankdir = "LR";
      node [shape = "box"];
      "api" [label = "api\nlocal.file"];
    }

    ----- stderr -----
    "#);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(
        plan.stdout
            .contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{plan}"
    );
}
