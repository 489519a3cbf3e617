//! `--refresh`: changes made outside fabrik are seen, planned as repairs, and repaired.

use crate::harness::Case;

const STACK: &str = r#"
    stack: drift
    resources:
      edited:
        type: local.file
        with: { path: edited.txt, content: "as fabrik wrote it\n" }
      deleted:
        type: local.file
        with: { path: deleted.txt, content: "still wanted\n", mode: "0640" }
"#;

fn drifted() -> Case {
    let case = Case::new().spec(STACK);
    case.expect(["apply", "--yes"], 0);
    case.write("edited.txt", "edited by hand\n");
    case.remove("deleted.txt");
    case
}

#[test]
fn plan_without_refresh_trusts_the_state() {
    let case = drifted();
    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `drift` matches the spec.

    ----- stderr -----
    ");
}

#[test]
fn plan_refresh_shows_changes_made_outside_fabrik() {
    let case = drifted();
    let out = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `drift`:

      ~ edited (local.file)  # changed outside fabrik
          ~ content:
              - edited by hand
              + as fabrik wrote it

      + deleted (local.file)  # deleted outside fabrik
          + path    = "deleted.txt"
          + content = <<EOT
              still wanted
            EOT
          + mode    = "0640"

    Plan: 1 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
}

#[test]
fn apply_refresh_restores_what_changed_outside_fabrik() {
    let case = drifted();
    let out = case.run(["apply", "--refresh", "--yes", "--parallelism", "1"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `drift`:

      ~ edited (local.file)  # changed outside fabrik
          ~ content:
              - edited by hand
              + as fabrik wrote it

      + deleted (local.file)  # deleted outside fabrik
          + path    = "deleted.txt"
          + content = <<EOT
              still wanted
            EOT
          + mode    = "0640"

    Plan: 1 to add, 1 to change, 0 to destroy.

      ~ edited (local.file): updated [TIME]
      + deleted (local.file): created [TIME]

    Apply complete: 1 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(case.read("edited.txt"), "as fabrik wrote it\n");
    assert_eq!(case.read("deleted.txt"), "still wanted\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(case.path("deleted.txt"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o640);
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);
}
