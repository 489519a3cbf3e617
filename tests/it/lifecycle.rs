//! The whole life of a stack of `local.file` resources through the binary: create, no-op,
//! update, replace, delete, destroy (directories included), protect, and the confirmation
//! guard; and a process found again after its state was lost.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Case;
use crate::live::{Reaper, alive, processes_of, recorded_pid};

const TWO_FILES: &str = r#"
    stack: life
    resources:
      motd:
        type: local.file
        with:
          path: etc/motd
          mode: "0640"
          content: |
            Welcome to ${stack}.
            Be nice.
      hosts:
        type: local.file
        with: { path: etc/hosts, content: "127.0.0.1 localhost\n" }
"#;

#[test]
fn apply_creates_files_with_their_content() {
    let case = Case::new().spec(TWO_FILES);
    let out = case.args(["apply", "--yes", "--parallelism", "1"]).run();
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      + motd (local.file)
          + path    = "etc/motd"
          + content = <<EOT
              Welcome to life.
              Be nice.
            EOT
          + mode    = "0640"

      + hosts (local.file)
          + path    = "etc/hosts"
          + content = <<EOT
              127.0.0.1 localhost
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

      + motd (local.file): created [TIME]
      + hosts (local.file): created [TIME]

    Apply complete: 2 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(case.read("etc/motd"), "Welcome to life.\nBe nice.\n");
    assert_eq!(case.read("etc/hosts"), "127.0.0.1 localhost\n");
    let mode = std::fs::metadata(case.path("etc/motd"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640, "mode: {mode:o}");
    assert_eq!(case.tracked("life"), ["hosts", "motd"]);
}

#[test]
fn second_apply_changes_nothing() {
    let case = Case::new().spec(TWO_FILES);
    case.expect(["apply", "--yes"], 0);
    let before = std::fs::read(case.state_file("life")).unwrap();
    let again = case.expect(["apply", "--yes"], 0);
    fabrik_snapshot!(case, again, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `life` matches the spec.

    ----- stderr -----
    ");
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `life` matches the spec.

    ----- stderr -----
    ");
    assert_eq!(
        std::fs::read(case.state_file("life")).unwrap(),
        before,
        "a no-op apply must not change the state"
    );
}

#[test]
fn whitespace_comments_and_key_order_are_not_changes() {
    let case = Case::new().spec(TWO_FILES);
    case.expect(["apply", "--yes"], 0);
    case.set_spec(
        r#"
        # Same stack, written differently.
        resources:
          hosts: { with: { content: "127.0.0.1 localhost\n", path: etc/hosts }, type: local.file }

          motd:
            with:
              content: "Welcome to ${stack}.\nBe nice.\n"
              mode: "0640"
              path: "etc/motd"
            type: "local.file"
        stack: life
        "#,
    );
    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `life` matches the spec.

    ----- stderr -----
    ");
}

#[test]
fn content_change_is_an_update_in_place_with_a_line_diff() {
    let case = Case::new().spec(TWO_FILES);
    case.expect(["apply", "--yes"], 0);
    let id_before = case.state("life")["resources"]["motd"]["id"].clone();
    case.set_spec(&TWO_FILES.replace("Be nice.", "Be kind.\n            Have fun."));
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      ~ motd (local.file)
          ~ content:
                Welcome to life.
              - Be nice.
              + Be kind.
              + Have fun.

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    ");
    let apply = case.expect(["apply", "--yes"], 0);
    fabrik_snapshot!(case, apply, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      ~ motd (local.file)
          ~ content:
                Welcome to life.
              - Be nice.
              + Be kind.
              + Have fun.

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ motd (local.file): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    assert_eq!(
        case.read("etc/motd"),
        "Welcome to life.\nBe kind.\nHave fun.\n"
    );
    assert_eq!(case.state("life")["resources"]["motd"]["id"], id_before);
    case.expect(["plan", "--detailed-exitcode"], 0);
}

#[test]
fn path_change_replaces_the_file() {
    let case = Case::new().spec(TWO_FILES);
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&TWO_FILES.replace("path: etc/hosts", "path: etc/hosts.new"));
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      +/- hosts (local.file)  create before destroy
          ~ path = "etc/hosts" → "etc/hosts.new"  # forces replacement

    Plan: 1 to add, 0 to change, 1 to destroy.

    ----- stderr -----
    "#);
    let apply = case.expect(["apply", "--yes"], 0);
    fabrik_snapshot!(case, apply, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      +/- hosts (local.file)  create before destroy
          ~ path = "etc/hosts" → "etc/hosts.new"  # forces replacement

    Plan: 1 to add, 0 to change, 1 to destroy.

      ± hosts (local.file): replaced [TIME]
      - hosts (local.file): destroyed [TIME]

    Apply complete: 1 added, 0 changed, 1 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert!(!case.exists("etc/hosts"), "the old file must be gone");
    assert_eq!(case.read("etc/hosts.new"), "127.0.0.1 localhost\n");
    let state = case.state("life");
    let hosts = &state["resources"]["hosts"];
    assert_eq!(
        hosts["id"],
        case.path("etc/hosts.new").display().to_string()
    );
    assert!(
        hosts
            .get("deposed")
            .is_none_or(|d| d.as_array().unwrap().is_empty()),
        "nothing may wait for a delete: {hosts}"
    );
    case.expect(["plan", "--detailed-exitcode"], 0);
}

#[test]
fn removed_resource_is_deleted() {
    let case = Case::new().spec(TWO_FILES);
    case.expect(["apply", "--yes"], 0);
    case.set_spec(
        r#"
        stack: life
        resources:
          hosts:
            type: local.file
            with: { path: etc/hosts, content: "127.0.0.1 localhost\n" }
        "#,
    );
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      - motd (local.file)

    Plan: 0 to add, 0 to change, 1 to destroy.

    ----- stderr -----
    ");
    let apply = case.expect(["apply", "--yes"], 0);
    fabrik_snapshot!(case, apply, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      - motd (local.file)

    Plan: 0 to add, 0 to change, 1 to destroy.

      - motd (local.file): destroyed [TIME]

    Apply complete: 0 added, 0 changed, 1 destroyed in [TIME].

    ----- stderr -----
    ");
    assert!(!case.exists("etc/motd"));
    assert!(case.exists("etc/hosts"));
    assert_eq!(case.tracked("life"), ["hosts"]);
}

#[test]
fn destroy_works_from_the_state_alone() {
    let case = Case::new().spec(
        r#"
        stack: life
        resources:
          base:
            type: local.file
            with: { path: base.txt, content: "base\n" }
          derived:
            type: local.file
            with: { path: derived.txt, content: "${base.content_hash}\n" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    case.remove("fabrik.yaml");
    let out = case.run(["destroy", "--yes"]);
    // Reverse dependency order: what needs `base` goes first.
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      - derived (local.file)

      - base (local.file)

    Plan: 0 to add, 0 to change, 2 to destroy.

      - derived (local.file): destroyed [TIME]
      - base (local.file): destroyed [TIME]

    Destroy complete: 2 destroyed in [TIME].

    ----- stderr -----
    ");
    assert!(!case.exists("base.txt"));
    assert!(!case.exists("derived.txt"));
    assert!(case.tracked("life").is_empty());
    let again = case.run(["destroy", "--yes"]);
    fabrik_snapshot!(case, again, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `life` matches the request: nothing to destroy.

    ----- stderr -----
    ");
}

/// A destroy takes back the directories fabrik made for its files, and only those: one that was
/// there before (even empty), or that holds something else by then, stays.
#[test]
fn destroy_removes_the_empty_directories_its_files_needed() {
    let case = Case::new().spec(
        r#"
        stack: dirs
        resources:
          deep:
            type: local.file
            with: { path: conf/app/deep/settings.ini, content: "a = 1\n" }
          inside:
            type: local.file
            with: { path: existing/sub/x.txt, content: "x\n" }
          empty:
            type: local.file
            with: { path: empty/before/y.txt, content: "y\n" }
          shared:
            type: local.file
            with: { path: shared/ours.txt, content: "ours\n" }
        "#,
    );
    case.write("existing/theirs.txt", "was here first\n");
    std::fs::create_dir_all(case.path("empty/before")).unwrap();
    case.expect(["apply", "--yes"], 0);
    case.write("shared/theirs.txt", "written later\n");
    // The ids say how many directories each create made.
    let list = case.run(["state", "list"]);
    fabrik_snapshot!(case, list, @"
    exit code: 0
    ----- stdout -----
    deep    local.file  dirs=3:[TEMP]/conf/app/deep/settings.ini
    empty   local.file  [TEMP]/empty/before/y.txt
    inside  local.file  dirs=1:[TEMP]/existing/sub/x.txt
    shared  local.file  dirs=1:[TEMP]/shared/ours.txt

    ----- stderr -----
    ");

    case.expect(["destroy", "--yes"], 0);
    assert!(!case.exists("conf"), "all three levels it made are gone");
    assert!(!case.exists("existing/sub"));
    assert_eq!(case.read("existing/theirs.txt"), "was here first\n");
    assert!(!case.exists("empty/before/y.txt"));
    assert!(case.path("empty/before").is_dir(), "it was there before");
    assert!(!case.exists("shared/ours.txt"));
    assert_eq!(case.read("shared/theirs.txt"), "written later\n");
    assert!(case.exists("fabrik.yaml"));
}

/// A file moved to another path leaves no empty directory behind where it was.
#[test]
fn a_moved_file_takes_back_the_directories_it_left() {
    let case = Case::new().spec(
        r#"
        stack: dirs
        resources:
          conf:
            type: local.file
            with: { path: old/place/app.ini, content: "a = 1\n" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    case.set_spec(
        r#"
        stack: dirs
        resources:
          conf:
            type: local.file
            with: { path: new/app.ini, content: "a = 1\n" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    assert!(!case.exists("old"));
    assert_eq!(case.read("new/app.ini"), "a = 1\n");
    case.expect(["destroy", "--yes"], 0);
    assert!(!case.exists("new"));
}

/// After its state was lost (`rm -rf .fabrik`), an apply finds the service still running under
/// its marker and takes it back; it says so, rather than claiming to have started it in no time.
#[test]
fn an_apply_after_the_state_was_lost_says_it_adopted_the_running_process() {
    let case = Case::new().spec(
        r#"
        stack: lost
        resources:
          server:
            type: local.process
            with: { command: sleep, args: ["300"], stop_timeout: 1 }
        "#,
    );
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = recorded_pid(&case, "lost", "server");
    std::fs::remove_dir_all(case.state_dir()).unwrap();

    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `lost`:

      + server (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

    Plan: 1 to add, 0 to change, 0 to destroy.

      = server (local.process): found already there, adopted [TIME]

    Apply complete: 1 adopted, 0 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(
        recorded_pid(&case, "lost", "server"),
        pid,
        "the same process"
    );
    assert_eq!(processes_of(&case.state_dir()), vec![pid]);
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
}

/// A failed apply does not stop a process it only found running: that process ran before the
/// apply, so undoing the apply forgets it rather than stopping it, and the next apply finds it
/// again.
#[test]
fn a_rollback_leaves_a_process_it_found_running() {
    const SERVER: &str = r#"
        stack: lost
        resources:
          server:
            type: local.process
            with: { command: sleep, args: ["300"], stop_timeout: 1 }
    "#;
    let case = Case::new().spec(SERVER);
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = recorded_pid(&case, "lost", "server");
    std::fs::remove_dir_all(case.state_dir()).unwrap();
    case.set_spec(&format!(
        "{SERVER}
          broken:
            type: local.file
            depends_on: [server]
            with: {{ path: blocker/x.txt, content: \"x\\n\" }}
        "
    ));
    case.write("blocker", "a file, not a directory\n");

    let out = case.run(["apply", "--yes", "--parallelism", "1"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `lost`:

      + server (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

      + broken (local.file)
          + path    = "blocker/x.txt"
          + content = <<EOT
              x
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

      = server (local.process): found already there, adopted [TIME]
      ✗ broken (local.file): failed
    Rolling back the changes this run made…
      ↩ server (local.process): rolled back: forgotten, left as it was found [TIME]

    ----- stderr -----
    error: apply failed:
      broken: creating [TEMP]/blocker: File exists (os error 17)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(alive(pid), "the process it found still runs");
    assert_eq!(processes_of(&case.state_dir()), vec![pid]);
    assert!(
        case.tracked("lost").is_empty(),
        "and the state is as it was"
    );

    case.remove("blocker");
    let again = case.expect(["apply", "--yes"], 0);
    assert!(
        again
            .stdout
            .contains("= server (local.process): found already there, adopted"),
        "{again}"
    );
    assert_eq!(recorded_pid(&case, "lost", "server"), pid);
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
}

const PROTECTED: &str = r#"
    stack: life
    resources:
      data:
        type: local.file
        protect: true
        with: { path: data.txt, content: "precious\n" }
      scratch:
        type: local.file
        with: { path: scratch.txt, content: "scratch\n" }
"#;

#[test]
fn destroy_refuses_a_protected_resource() {
    let case = Case::new().spec(PROTECTED);
    case.expect(["apply", "--yes"], 0);
    let before = std::fs::read(case.state_file("life")).unwrap();
    let out = case.run(["destroy", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: refusing to destroy protected resource `data`: set `protect: false` in the spec and apply that first, or leave it out with --target
    ");
    assert!(case.exists("data.txt"));
    assert!(case.exists("scratch.txt"), "nothing may be deleted");
    assert_eq!(std::fs::read(case.state_file("life")).unwrap(), before);
}

#[test]
fn destroy_refuses_a_protected_resource_with_the_spec_gone() {
    let case = Case::new().spec(PROTECTED);
    case.expect(["apply", "--yes"], 0);
    case.remove("fabrik.yaml");
    let out = case.run(["destroy", "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("`data`"), "{out}");
    assert!(case.exists("data.txt"));
    assert!(case.exists("scratch.txt"));
}

/// `protect: true` added to a resource that already exists must reach the state, or a destroy
/// made after the spec is gone deletes what the user protected.
#[test]
fn protect_added_after_creation_guards_destroy_without_the_spec() {
    let case = Case::new().spec(&PROTECTED.replace("protect: true", "protect: false"));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(PROTECTED);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(
        case.state("life")["resources"]["data"]["protect"],
        true,
        "the state must record `protect: true` once applied"
    );
    case.remove("fabrik.yaml");
    let out = case.run(["destroy", "--yes"]);
    assert_eq!(out.code, 1, "destroy must refuse:\n{out}");
    assert!(case.exists("data.txt"), "the protected file was deleted");
}

#[test]
fn apply_without_yes_and_no_terminal_refuses() {
    let case = Case::new().spec(TWO_FILES);
    let out = case.run(["apply"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----
    fabrik will make these changes to stack `life`:

      + motd (local.file)
          + path    = "etc/motd"
          + content = <<EOT
              Welcome to life.
              Be nice.
            EOT
          + mode    = "0640"

      + hosts (local.file)
          + path    = "etc/hosts"
          + content = <<EOT
              127.0.0.1 localhost
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    error: refusing to continue without confirmation: standard input is not a terminal; pass --yes to go ahead
    "#);
    assert!(!case.exists("etc"), "nothing may be created");
    assert!(!case.state_file("life").exists(), "no state may be written");
}

#[test]
fn destroy_without_yes_and_no_terminal_refuses() {
    let case = Case::new().spec(TWO_FILES);
    case.expect(["apply", "--yes"], 0);
    let before = std::fs::read(case.state_file("life")).unwrap();
    let out = case.run(["destroy"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("--yes"), "{out}");
    assert!(case.exists("etc/motd"));
    assert!(case.exists("etc/hosts"));
    assert_eq!(std::fs::read(case.state_file("life")).unwrap(), before);
}

#[test]
fn an_update_that_turns_out_unchanged_still_records_its_new_dependencies() {
    // `b`'s content is known only once `a` is replaced, and is then what it was; its
    // `depends_on` changed all the same, and the state must say so.
    let case = Case::new().spec(
        r#"
        stack: s
        resources:
          a: { type: local.file, with: { path: p1.txt, content: "x" } }
          c: { type: local.file, with: { path: c.txt, content: "c" } }
          b: { type: local.file, with: { path: b.txt, content: "${a.content_hash}" }, depends_on: [c] }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    case.set_spec(
        r#"
        stack: s
        resources:
          a: { type: local.file, with: { path: p2.txt, content: "x" } }
          c: { type: local.file, with: { path: c.txt, content: "c" } }
          b: { type: local.file, with: { path: b.txt, content: "${a.content_hash}" } }
        "#,
    );
    let out = case.expect(["apply", "--yes"], 0);
    assert!(out.stdout.contains("b (local.file): unchanged"), "{out}");
    assert_eq!(
        case.state("s")["resources"]["b"]["dependencies"],
        serde_json::json!(["a"])
    );
    case.expect(["plan", "--detailed-exitcode"], 0);
}
