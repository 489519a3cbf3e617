//! `ignore_changes`: the listed fields of an existing object are left as they are, whether the
//! spec or someone outside fabrik changed them; a create still uses the spec's values.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Case;

fn spec(content: &str, mode: &str, ignore: &str) -> String {
    format!(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: {{ path: web.conf, content: "{content}\n", mode: "{mode}" }}
            {ignore}
        "#
    )
}

fn mode_of(case: &Case, relative: &str) -> u32 {
    std::fs::metadata(case.path(relative))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(case: &Case, relative: &str, mode: u32) {
    std::fs::set_permissions(case.path(relative), std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_mode_changed_outside_fabrik_is_drift_unless_ignored() {
    let case = Case::new().spec(&spec("v1", "0644", ""));
    case.expect(["apply", "--yes"], 0);
    chmod(&case, "web.conf", 0o600);
    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~ web (local.file)  # changed outside fabrik
          ~ mode = "0600" → "0644"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);

    case.set_spec(&spec("v1", "0644", "ignore_changes: [mode]"));
    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `shop` matches the spec.

    ----- stderr -----
    ");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(
        mode_of(&case, "web.conf"),
        0o600,
        "the object keeps its own mode"
    );
    assert_eq!(
        case.state("shop")["resources"]["web"]["inputs"]["mode"],
        "0644"
    );
}

#[test]
fn a_change_in_the_spec_to_an_ignored_field_is_not_planned() {
    let case = Case::new().spec(&spec("v1", "0644", "ignore_changes: [content]"));
    // A create uses the spec's value.
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("web.conf"), "v1\n");

    case.set_spec(&spec("v2", "0644", "ignore_changes: [content]"));
    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `shop` matches the spec.

    ----- stderr -----
    ");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("web.conf"), "v1\n");
    assert_eq!(
        case.state("shop")["resources"]["web"]["inputs"]["content"],
        "v1\n"
    );

    // Another field still changes, and the ignored one stays as recorded.
    case.set_spec(&spec("v2", "0600", "ignore_changes: [content]"));
    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~ web (local.file)
          ~ mode = "0644" → "0600"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("web.conf"), "v1\n");
    assert_eq!(mode_of(&case, "web.conf"), 0o600);
    case.expect(["plan", "--detailed-exitcode"], 0);

    // Without `ignore_changes`, the spec's value is wanted again.
    case.set_spec(&spec("v2", "0600", ""));
    let out = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 2, "{out}");
}

/// An update of another field sends the ignored one as it was read: the object keeps its value,
/// the state its record.
#[test]
fn an_update_leaves_an_ignored_field_as_the_object_has_it() {
    let case = Case::new().spec(&spec("v1", "0644", "ignore_changes: [mode]"));
    case.expect(["apply", "--yes"], 0);
    chmod(&case, "web.conf", 0o600);
    case.set_spec(&spec("v2", "0644", "ignore_changes: [mode]"));
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~ web (local.file)
          ~ content:
              - v1
              + v2

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ web (local.file): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    assert_eq!(case.read("web.conf"), "v2\n");
    assert_eq!(mode_of(&case, "web.conf"), 0o600);
    assert_eq!(
        case.state("shop")["resources"]["web"]["inputs"]["mode"],
        "0644"
    );
    case.expect(["plan", "--detailed-exitcode"], 0);
}

#[test]
fn an_ignored_force_new_field_does_not_replace() {
    let case = Case::new().spec(&spec("v1", "0644", "ignore_changes: [path]"));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(
        &spec("v1", "0644", "ignore_changes: [path]").replace("path: web.conf", "path: moved.conf"),
    );
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["apply", "--yes"], 0);
    assert!(case.exists("web.conf"));
    assert!(!case.exists("moved.conf"));
}

#[test]
fn a_saved_plan_resolves_ignored_fields_as_the_plan_did() {
    let case = Case::new().spec(&spec("v1", "0644", "ignore_changes: [content]"));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&spec("v2", "0600", "ignore_changes: [content]"));
    case.expect(["plan", "--out", "./p.json"], 0);
    case.expect(["apply", "p.json"], 0);
    assert_eq!(case.read("web.conf"), "v1\n");
    assert_eq!(mode_of(&case, "web.conf"), 0o600);
}
