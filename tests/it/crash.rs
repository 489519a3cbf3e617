//! Crash safety: the binary is killed with SIGKILL at varied moments during an apply, a rollback
//! and a destroy of a few hundred resources (files and processes). The next run must converge,
//! nothing may exist twice, and a destroy must leave nothing behind that fabrik created.

use std::time::Duration;

use crate::harness::Case;
use crate::live::processes_of;

const FILES: usize = 240;
const CHAIN: usize = 8;
const PROCESSES: usize = 6;

/// A stack of files in reference chains plus long-running processes.
fn spec(stack: &str, failing: bool) -> String {
    let mut yaml = format!("stack: {stack}\nresources:\n");
    for i in 0..FILES {
        let content = if i % CHAIN == 0 {
            format!("file {i}")
        } else {
            format!("file {i} after ${{f{}.content_hash}}", i - 1)
        };
        yaml.push_str(&format!(
            "  f{i}:\n    type: local.file\n    with: {{ path: out/f{i}.txt, content: \"{content}\" }}\n"
        ));
    }
    for i in 0..PROCESSES {
        yaml.push_str(&format!(
            "  p{i}:\n    type: local.process\n    with: {{ command: sleep, args: [\"300\"], stop_timeout: 2 }}\n    depends_on: [f{}]\n",
            i * CHAIN
        ));
    }
    if failing {
        // Written last in a chain, so the run fails late and has a lot to roll back. Its parent
        // is a regular file, so the write fails even for root.
        yaml.push_str(&format!(
            "  doomed:\n    type: local.file\n    with: {{ path: blocker/doomed.txt, content: \"x\" }}\n    depends_on: [f{}]\n",
            FILES - 1
        ));
    }
    yaml
}

fn files_in(case: &Case, dir: &str) -> usize {
    std::fs::read_dir(case.path(dir)).map_or(0, |d| d.flatten().count())
}

/// Starts `fabrik ARGS`, kills it with SIGKILL after `delay`, and waits for it.
fn kill_after(case: &Case, args: &[&str], delay: Duration) {
    let mut child = case
        .args(args)
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fabrik starts");
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

const DELAYS_MS: [u64; 8] = [5, 30, 60, 100, 160, 250, 400, 650];

/// Everything is there once, as the spec says, and a plan has nothing to do.
fn assert_converged(case: &Case, stack: &str) {
    case.expect(["apply", "--yes"], 0);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "a converged stack plans no change:\n{plan}");
    assert_eq!(files_in(case, "out"), FILES, "every file exists once");
    assert_eq!(
        processes_of(&case.state_dir()).len(),
        PROCESSES,
        "every process runs exactly once"
    );
    assert_eq!(case.tracked(stack).len(), FILES + PROCESSES);
}

/// A destroy leaves no file and no process behind.
fn assert_clean(case: &Case) {
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(files_in(case, "out"), 0, "no file is left");
    assert_eq!(
        processes_of(&case.state_dir()),
        Vec::<i32>::new(),
        "no process is left"
    );
}

#[test]
fn killed_applies_converge_and_destroy_leaves_nothing() {
    let case = Case::new().spec(&spec("crash-apply", false));
    for delay in DELAYS_MS {
        kill_after(&case, &["apply", "--yes"], Duration::from_millis(delay));
        // Nothing a killed run started may be running twice, whatever it recorded.
        assert!(
            processes_of(&case.state_dir()).len() <= PROCESSES,
            "after a kill at {delay} ms"
        );
    }
    assert_converged(&case, "crash-apply");
    assert_clean(&case);
}

#[test]
fn killed_rollbacks_converge_and_destroy_leaves_nothing() {
    let case = Case::new().spec(&spec("crash-rollback", true));
    case.write(
        "blocker",
        "a regular file, so blocker/doomed.txt cannot be written",
    );
    let failed = case.run(["apply", "--yes"]);
    // The failing apply rolls back. Its stdout (a plan and the progress of 246 resources) is
    // left to the checks on disk below; its verdict is pinned whole.
    fabrik_snapshot!(case, failed.code_and_stderr(), @"
    exit code: 3
    ----- stderr -----
    error: apply failed:
      doomed: creating [TEMP]/blocker: File exists (os error 17)
    every change was rolled back; the stack is as it was before this run
    ");
    assert_eq!(files_in(&case, "out"), 0, "the rollback removed every file");
    assert!(
        processes_of(&case.state_dir()).is_empty(),
        "the rollback stopped every process"
    );
    for delay in DELAYS_MS {
        // Each run applies, fails at `doomed`, then rolls back: the kill lands in either part.
        kill_after(&case, &["apply", "--yes"], Duration::from_millis(delay * 2));
    }
    case.set_spec(&spec("crash-rollback", false));
    assert_converged(&case, "crash-rollback");
    assert_clean(&case);
}

#[test]
fn killed_destroys_resume_and_leave_nothing() {
    let case = Case::new().spec(&spec("crash-destroy", false));
    case.expect(["apply", "--yes"], 0);
    for delay in DELAYS_MS {
        kill_after(
            &case,
            &["destroy", "--yes"],
            Duration::from_millis(delay / 2),
        );
    }
    assert_clean(&case);
    // And the spec still applies from scratch afterwards.
    assert_converged(&case, "crash-destroy");
    assert_clean(&case);
}
