//! Refresh, the default of `plan` and `apply`: changes made outside fabrik are seen, planned as
//! repairs, and repaired; `--refresh=false` trusts the state instead.

use std::time::{Duration, Instant};

use crate::harness::Case;
use crate::live::{Reaper, alive, processes_of, recorded_pid, signal};

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
fn plan_with_refresh_false_trusts_the_state() {
    let case = drifted();
    let out = case.run(["plan", "--refresh=false", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `drift` matches the spec.

    ----- stderr -----
    ");
}

#[test]
fn plan_shows_changes_made_outside_fabrik() {
    let case = drifted();
    let out = case.run(["plan", "--detailed-exitcode"]);
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
fn apply_restores_what_changed_outside_fabrik() {
    let case = drifted();
    let out = case.run(["apply", "--yes", "--parallelism", "1"]);
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
    case.expect(["plan", "--detailed-exitcode"], 0);
}

#[test]
fn the_refresh_flag_takes_an_optional_value() {
    let case = drifted();
    // `--refresh` alone still asks for it, `--refresh=true` too.
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 2);
    case.expect(["plan", "--refresh=true", "--detailed-exitcode"], 2);
    case.expect(["plan", "--refresh=false", "--detailed-exitcode"], 0);
    let json: serde_json::Value =
        serde_json::from_str(&case.expect(["plan", "--json"], 0).stdout).unwrap();
    assert_eq!(json["refresh"], true, "{json:#}");
    let bad = case.run(["plan", "--refresh=maybe"]);
    assert_eq!(bad.code, 1, "{bad}");
    assert!(bad.stderr.contains("--refresh"), "{bad}");
}

#[test]
fn apply_with_refresh_false_leaves_drift_alone() {
    let case = drifted();
    let out = case.run(["apply", "--refresh=false", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `drift` matches the spec.

    ----- stderr -----
    ");
    assert_eq!(case.read("edited.txt"), "edited by hand\n");
    assert!(!case.exists("deleted.txt"));
}

#[test]
fn a_saved_plan_applies_with_the_refresh_it_was_made_with() {
    let case = drifted();
    // Made without refresh: the drift is not part of what was reviewed, and the apply does not
    // read it in either.
    case.expect(["plan", "--refresh=false", "--out", "trusting.plan"], 0);
    let out = case.expect(["apply", "trusting.plan"], 0);
    assert!(out.stdout.contains("No changes."), "{out}");
    assert_eq!(case.read("edited.txt"), "edited by hand\n");
    // Made with it (the default): the repairs were reviewed, and are what is applied.
    case.expect(["plan", "--out", "repairing.plan"], 0);
    for flag in ["--refresh=false", "--refresh"] {
        let refused = case.run(["apply", "repairing.plan", flag]);
        assert_eq!(refused.code, 1, "{refused}");
        assert!(
            refused.stderr.contains("fixes its targets and refresh"),
            "{refused}"
        );
    }
    case.expect(["apply", "repairing.plan"], 0);
    assert_eq!(case.read("edited.txt"), "as fabrik wrote it\n");
    assert_eq!(case.read("deleted.txt"), "still wanted\n");
}

/// A service that died right after the apply (its port was taken, it crashed) used to leave
/// `fabrik plan` saying "No changes": the plan did not look.
#[test]
fn a_process_that_died_after_apply_shows_in_the_next_plan() {
    let case = Case::new().spec(
        r#"
        stack: died
        resources:
          server:
            type: local.process
            with: { command: sleep, args: ["300"], stop_timeout: 1 }
        "#,
    );
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = recorded_pid(&case, "died", "server");
    signal(pid as u32, "KILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} outlived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `died`:

      + server (local.process)  # deleted outside fabrik
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);

    case.expect(["apply", "--yes"], 0);
    let restarted = recorded_pid(&case, "died", "server");
    assert_ne!(restarted, pid);
    assert_eq!(processes_of(&case.state_dir()), vec![restarted]);
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
}
