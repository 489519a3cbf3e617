//! One writer per stack: a held lock refuses others and says who holds it; `unlock --force`
//! breaks it after saying the same.

use std::fs::{File, OpenOptions};
use std::io::Write;

use crate::harness::Case;

const STACK: &str = r#"
    stack: shop
    resources:
      web:
        type: local.file
        with: { path: web.txt, content: "hello\n" }
"#;

/// Holds the stack's lock as another fabrik process would: the holder record the binary writes
/// (see `src/state/lock.rs`), under an exclusive flock kept while the returned file is open.
fn hold_lock(case: &Case, stack: &str) -> File {
    std::fs::create_dir_all(case.state_dir()).unwrap();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(case.state_dir().join(format!("{stack}.lock")))
        .unwrap();
    file.lock().expect("take the flock");
    let holder = serde_json::json!({
        "user": "alice",
        "host": "build-07",
        "pid": 4242,
        "command": "fabrik apply --yes",
        "since": "2025-01-02T03:04:05Z",
    });
    file.write_all(holder.to_string().as_bytes()).unwrap();
    file.sync_all().unwrap();
    file
}

#[test]
fn apply_records_its_holder_in_the_lock_file() {
    let case = Case::new().spec(STACK);
    case.expect(["apply", "--yes"], 0);
    let text = std::fs::read_to_string(case.state_dir().join("shop.lock")).unwrap();
    let holder: serde_json::Value = serde_json::from_str(&text).expect("the holder is JSON");
    assert_eq!(holder["user"], "tester", "{holder:#}");
    assert!(
        holder["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{holder:#}"
    );
    assert!(holder["pid"].as_u64().is_some_and(|p| p > 0), "{holder:#}");
    assert!(
        holder["command"].as_str().unwrap().contains("apply"),
        "{holder:#}"
    );
    assert!(
        holder["since"].as_str().unwrap().ends_with('Z'),
        "{holder:#}"
    );
}

#[test]
fn the_holder_names_the_user_when_user_is_unset() {
    let case = Case::new().spec(STACK);
    let mut apply = case.args(["apply", "--yes"]).command();
    apply.env_remove("USER").env_remove("LOGNAME");
    let out = apply.output().expect("fabrik runs");
    assert!(out.status.success(), "{out:?}");
    let whoami = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let expected = String::from_utf8(whoami.stdout).unwrap();
    let text = std::fs::read_to_string(case.state_dir().join("shop.lock")).unwrap();
    let holder: serde_json::Value = serde_json::from_str(&text).expect("the holder is JSON");
    assert_eq!(holder["user"], expected.trim(), "{holder:#}");
    assert_ne!(holder["user"], "unknown", "{holder:#}");
}

#[test]
fn held_lock_refuses_a_second_writer_and_names_the_holder() {
    let case = Case::new().spec(STACK);
    let _held = hold_lock(&case, "shop");
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: stack `shop` is locked by another fabrik run
      held by alice@build-07, pid 4242, since 2025-01-02T03:04:05Z
      command: fabrik apply --yes
    wait for it to finish, or, if that process is gone, run `fabrik unlock --force`
    ");
    assert!(!case.exists("web.txt"), "nothing may be created");
    assert!(!case.state_file("shop").exists());
    for args in [&["destroy", "--yes"][..], &["state", "rm", "web"]] {
        let out = case.run(args);
        assert_eq!(out.code, 1, "{args:?}:\n{out}");
        assert!(
            out.stderr.contains("alice@build-07, pid 4242"),
            "{args:?}:\n{out}"
        );
    }
}

#[test]
fn unlock_without_force_refuses() {
    let case = Case::new().spec(STACK);
    let _held = hold_lock(&case, "shop");
    let out = case.run(["unlock"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: breaking a lock can let two runs write one state; pass --force if the holder is really gone
    ");
    let still = case.run(["apply", "--yes"]);
    assert_eq!(still.code, 1, "the lock must still hold:\n{still}");
}

#[test]
fn unlock_force_names_the_holder_and_frees_the_stack() {
    let case = Case::new().spec(STACK);
    // The holder hangs: it keeps its flock for the whole test.
    let _held = hold_lock(&case, "shop");
    let out = case.run(["unlock", "--force"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    Broke the lock of the stack.
    It was held by:
      held by alice@build-07, pid 4242, since 2025-01-02T03:04:05Z
      command: fabrik apply --yes

    ----- stderr -----
    ");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("web.txt"), "hello\n");
    let idle = case.run(["unlock", "--force"]);
    fabrik_snapshot!(case, idle, @"
    exit code: 0
    ----- stdout -----
    The stack is not locked.

    ----- stderr -----
    ");
}

/// A running apply holds its lock for the whole run: while its gate waits, a second apply is
/// refused and names it as the holder.
#[test]
fn a_running_apply_holds_the_lock_until_it_ends() {
    let gate = crate::live::free_port();
    let case = Case::new().spec(&format!(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: {{ path: web.txt, content: "hello\n" }}
            verify:
              - tcp: "127.0.0.1:{gate}"
                timeout: 60s
                interval: 50ms
        "#
    ));
    let first = crate::live::spawn_until_exists(&case, &["apply", "--yes"], "web.txt");
    let second = case.run(["apply", "--yes"]);
    assert_eq!(second.code, 1, "{second}");
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "the first run holds the lock:\n{second}"
    );
    // Let the gate pass: the first run finishes, then the stack is free again.
    let listener = std::net::TcpListener::bind(("127.0.0.1", gate)).unwrap();
    let done = first.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    drop(listener);
    case.expect(["destroy", "--yes"], 0);
}
