//! An apply that fails midway: exit 3 when everything was rolled back, exit 4 when something
//! was left in place, and in both cases a state that records exactly what exists.
//!
//! Tests run as root, so permissions cannot make a write fail; a path whose parent is a regular
//! file can never be written by anyone.

use crate::harness::Case;

const HALF_BROKEN: &str = r#"
    stack: broken
    resources:
      good:
        type: local.file
        with: { path: good.txt, content: "good\n" }
      bad:
        type: local.file
        with: { path: blocker/bad.txt, content: "bad\n" }
"#;

fn half_broken() -> Case {
    let case = Case::new().spec(HALF_BROKEN);
    case.write("blocker", "a file, not a directory\n");
    case
}

#[test]
fn failed_apply_rolls_back_and_exits_3() {
    let case = half_broken();
    // One at a time, so `good` is created before `bad` fails and the output order is fixed.
    let out = case.run(["apply", "--yes", "--parallelism", "1"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `broken`:

      + good (local.file)
          + path    = "good.txt"
          + content = <<EOT
              good
            EOT

      + bad (local.file)
          + path    = "blocker/bad.txt"
          + content = <<EOT
              bad
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

      + good (local.file): created [TIME]
      ✗ bad (local.file): failed
    Rolling back the changes this run made…
      ↩ good (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      bad: creating [TEMP]/blocker: File exists (os error 17)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(
        !case.exists("good.txt"),
        "the created file must be rolled back"
    );
    assert!(
        case.tracked("broken").is_empty(),
        "the state must record nothing"
    );
    assert_eq!(case.read("blocker"), "a file, not a directory\n");
}

#[test]
fn failed_parallel_apply_rolls_back_and_exits_3() {
    let case = half_broken();
    let out = case.run(["apply", "--yes"]);
    // `good` and `bad` start together and either may end first, so each phase's lines are
    // sorted.
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `broken`:

      + good (local.file)
          + path    = "good.txt"
          + content = <<EOT
              good
            EOT

      + bad (local.file)
          + path    = "blocker/bad.txt"
          + content = <<EOT
              bad
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

      + good (local.file): created [TIME]
      ✗ bad (local.file): failed
    Rolling back the changes this run made…
      ↩ good (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      bad: creating [TEMP]/blocker: File exists (os error 17)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(!case.exists("good.txt"));
    assert!(case.tracked("broken").is_empty());
}

#[test]
fn failed_apply_without_rollback_exits_4_and_names_what_remains() {
    let case = half_broken();
    let out = case.run(["apply", "--yes", "--no-rollback", "--parallelism", "1"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 4
    ----- stdout -----
    fabrik will make these changes to stack `broken`:

      + good (local.file)
          + path    = "good.txt"
          + content = <<EOT
              good
            EOT

      + bad (local.file)
          + path    = "blocker/bad.txt"
          + content = <<EOT
              bad
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

      + good (local.file): created [TIME]
      ✗ bad (local.file): failed

    ----- stderr -----
    error: apply failed:
      bad: creating [TEMP]/blocker: File exists (os error 17)
    these changes remain in place (recorded in the state):
      good: created
    run `fabrik plan` to see what is left to do
    "#);
    assert_eq!(case.read("good.txt"), "good\n");
    assert_eq!(case.tracked("broken"), ["good"]);
    let state = case.state("broken");
    assert_eq!(
        state["resources"]["good"]["id"],
        case.path("good.txt").display().to_string()
    );
    // What is left to do is exactly the failed resource.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `broken`:

      + bad (local.file)
          + path    = "blocker/bad.txt"
          + content = <<EOT
              bad
            EOT

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
}

/// A failure after updates and a replacement: the update is put back (content and mode), the
/// new file of the replacement is removed and the old one kept, the deferred delete never runs,
/// and the state holds exactly what it held before.
#[test]
fn failed_apply_rolls_back_updates_and_replacements() {
    let case = Case::new().spec(
        r#"
        stack: broken
        resources:
          conf:
            type: local.file
            with: { path: app.conf, content: "v1\n", mode: "0644" }
          moving:
            type: local.file
            with: { path: old.txt, content: "moving\n" }
          retired:
            type: local.file
            with: { path: retired.txt, content: "retired\n" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    let before = case.state("broken");
    case.write("blocker", "a file, not a directory\n");
    case.set_spec(
        r#"
        stack: broken
        resources:
          conf:
            type: local.file
            with: { path: app.conf, content: "v2\n", mode: "0600" }
          moving:
            type: local.file
            with: { path: new.txt, content: "moving\n" }
          bad:
            type: local.file
            depends_on: [conf, moving]
            with: { path: blocker/bad.txt, content: "bad\n" }
        "#,
    );
    let out = case.run(["apply", "--yes"]);
    // `conf` and `moving` run together, so each phase's lines are sorted.
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `broken`:

      ~ conf (local.file)
          ~ content:
              - v1
              + v2
          ~ mode    = "0644" → "0600"

      +/- moving (local.file)  create before destroy
          ~ path = "old.txt" → "new.txt"  # forces replacement

      + bad (local.file)
          + path    = "blocker/bad.txt"
          + content = <<EOT
              bad
            EOT

      - retired (local.file)

    Plan: 2 to add, 1 to change, 2 to destroy.

      ~ conf (local.file): updated [TIME]
      ± moving (local.file): replaced [TIME]
      ✗ bad (local.file): failed
    Rolling back the changes this run made…
      ↩ conf (local.file): rolled back [TIME]
      ↩ moving (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      bad: creating [TEMP]/blocker: File exists (os error 17)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(case.read("app.conf"), "v1\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(case.path("app.conf"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o644, "the mode is put back too: {mode:o}");
    assert_eq!(case.read("old.txt"), "moving\n");
    assert!(
        !case.exists("new.txt"),
        "the replacement's new file is removed"
    );
    assert_eq!(case.read("retired.txt"), "retired\n", "deletes run last");
    assert_eq!(case.state("broken")["resources"], before["resources"]);
}

/// clap reports usage errors with its own exit code 2, which would read as "changes pending".
#[test]
fn usage_errors_exit_1() {
    let case = Case::new();
    let out = case.run(["plan", "--bogus"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unexpected argument '--bogus' found

      tip: to pass '--bogus' as a value, use '-- --bogus'

    Usage: fabrik plan [OPTIONS] [SPEC]

    For more information, try '--help'.
    ");
    let zero = case.run(["apply", "--yes", "--parallelism", "0"]);
    assert_eq!(zero.code, 1, "{zero}");
}

/// A string field given a lone reference to a number output (`content: "${a.size}"`): either
/// the spec is refused before anything changes (exit 1), or the number is written as text. What
/// must not happen is a spec that validates and plans, then fails every apply midway.
#[test]
fn number_output_in_a_string_field_never_fails_midway() {
    let case = Case::new().spec(
        r#"
        stack: kinds
        resources:
          a:
            type: local.file
            with: { path: a.txt, content: "hello\n" }
          b:
            type: local.file
            with: { path: b.txt, content: "${a.size}" }
        "#,
    );
    let validate = case.run(["validate"]);
    let apply = case.run(["apply", "--yes"]);
    if validate.code == 1 {
        assert_eq!(apply.code, 1, "validate refused, so must apply:\n{apply}");
        assert!(apply.stderr.contains("fabrik.yaml:8:"), "{apply}");
        assert!(!case.exists("a.txt"));
    } else {
        assert_eq!(validate.code, 0, "{validate}");
        assert_eq!(
            apply.code, 0,
            "`validate` accepted the spec, and then apply failed:\n{apply}"
        );
        assert_eq!(case.read("b.txt"), "hello\n".len().to_string());
    }
}
