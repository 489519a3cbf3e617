//! `command` gate tests, each running a real shell script from a temp dir.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::command::tail_text;
use super::{Gate, check_entry};

/// A temp dir holding `name`, an executable shell script with `body`.
fn script(name: &str, body: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn gate_in(dir: &Path, value: serde_json::Value) -> Gate {
    Gate::from_value(&value, dir).unwrap()
}

fn run(gate: &Gate) -> Result<(), String> {
    gate.run(&AtomicBool::new(false))
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// The pid a script wrote to `file` in `dir`, once it is there.
fn pid_in(dir: &Path, file: &str) -> i32 {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join(file))
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < until, "the script wrote no pid");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn command_exiting_zero_passes_with_env_and_dir() {
    let dir = script(
        "checks/ok.sh",
        "test \"$MODE\" = smoke && test \"$(basename \"$PWD\")\" = checks && test \"$1\" = 'a b'\n",
    );
    let g = gate_in(
        dir.path(),
        json!({ "command": ["./ok.sh", "a b"], "env": { "MODE": "smoke" }, "dir": "checks",
                "timeout": "5s" }),
    );
    assert_eq!(g.describe(), "command ./ok.sh \"a b\"");
    run(&g).unwrap();
    // A program without a `/` is looked up on the PATH.
    run(&gate_in(dir.path(), json!({ "command": ["true"] }))).unwrap();
}

#[test]
fn command_is_run_again_until_it_passes() {
    // Fails twice, then passes: the attempts leave a mark each.
    let dir = script(
        "flaky.sh",
        "echo x >> tries; test \"$(wc -l < tries)\" -ge 3\n",
    );
    let g = gate_in(
        dir.path(),
        json!({ "command": ["./flaky.sh"], "timeout": "10s", "interval": "50ms" }),
    );
    run(&g).unwrap();
    let tries = std::fs::read_to_string(dir.path().join("tries")).unwrap();
    assert_eq!(tries.lines().count(), 3);
}

#[test]
fn command_failure_shows_the_exit_code_and_the_last_lines() {
    let dir = script(
        "check.sh",
        "i=1; while [ $i -le 15 ]; do echo \"line $i\"; i=$((i+1)); done; echo oops >&2; exit 3\n",
    );
    let g = gate_in(
        dir.path(),
        json!({ "command": ["./check.sh"], "timeout": "1s", "interval": "5s" }),
    );
    let err = run(&g).unwrap_err();
    let (first, tail) = err.split_once('\n').unwrap();
    assert!(
        first == "exited with code 3 (gave up after 1s, 1 attempt)",
        "{err}"
    );
    let lines: Vec<&str> = tail.lines().collect();
    let expected: Vec<String> = (7..=15)
        .map(|i| format!("    | line {i}"))
        .chain(["    | oops".to_string()])
        .collect();
    assert_eq!(lines, expected, "{err}");
}

#[test]
fn command_without_output_says_so_and_a_signal_is_named() {
    let dir = script("quiet.sh", "exit 1\n");
    let err = run(&gate_in(
        dir.path(),
        json!({ "command": ["./quiet.sh"], "timeout": "1s", "interval": "5s" }),
    ))
    .unwrap_err();
    assert!(
        err == "exited with code 1, no output (gave up after 1s, 1 attempt)",
        "{err}"
    );
    let dir = script("killed.sh", "kill -TERM $$\n");
    let err = run(&gate_in(
        dir.path(),
        json!({ "command": ["./killed.sh"], "timeout": "1s", "interval": "5s" }),
    ))
    .unwrap_err();
    assert!(
        err.starts_with("killed by signal 15 (SIGTERM), no output"),
        "{err}"
    );
}

#[test]
fn command_outliving_the_timeout_is_killed_with_its_process_group() {
    let dir = script(
        "hang.sh",
        "sleep 60 & echo $! > bg.pid; echo started; sleep 60\n",
    );
    let g = gate_in(
        dir.path(),
        json!({ "command": ["./hang.sh"], "timeout": "1s", "interval": "100ms" }),
    );
    let started = Instant::now();
    let err = run(&g).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert_eq!(
        err,
        "still running when the gate's time ran out: killed (gave up after 1s, 1 attempt)\n    | \
         started"
    );
    let background = pid_in(dir.path(), "bg.pid");
    let until = Instant::now() + Duration::from_secs(2);
    while !gone(background) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(background), "the program's own child was killed too");
}

#[test]
fn command_cancel_kills_the_running_program() {
    let dir = script("hang.sh", "echo $$ > own.pid; sleep 60\n");
    let g = gate_in(
        dir.path(),
        json!({ "command": ["./hang.sh"], "timeout": "30s" }),
    );
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            pid_in(dir.path(), "own.pid");
            cancel.store(true, Ordering::Relaxed);
        });
        g.run(&cancel).unwrap_err()
    });
    assert_eq!(err, "cancelled");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(gone(pid_in(dir.path(), "own.pid")));
}

#[test]
fn command_output_and_arguments_are_masked() {
    let secret = "cmd-gate-secret-1f9c";
    crate::redact::register([secret]);
    let dir = script("leak.sh", "echo \"token=$1 env=$TOKEN\"; exit 2\n");
    let g = gate_in(
        dir.path(),
        json!({ "command": ["./leak.sh", secret], "env": { "TOKEN": secret },
                "timeout": "1s", "interval": "5s" }),
    );
    assert_eq!(g.describe(), "command ./leak.sh (sensitive)");
    assert!(!format!("{g:?}").contains(secret), "{g:?}");
    let err = run(&g).unwrap_err();
    assert!(!err.contains(secret), "{err}");
    assert!(
        err.ends_with("\n    | token=(sensitive) env=(sensitive)"),
        "{err}"
    );
}

#[test]
fn command_missing_program_or_dir_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = run(&gate_in(dir.path(), json!({ "command": ["./nope.sh"] }))).unwrap_err();
    assert!(
        err.starts_with("the program `./nope.sh` is not there"),
        "{err}"
    );
    let err = run(&gate_in(
        dir.path(),
        json!({ "command": ["no-such-program-fabrik"] }),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "the program `no-such-program-fabrik` is not on the PATH"
    );
    let err = run(&gate_in(
        dir.path(),
        json!({ "command": ["true"], "dir": "missing" }),
    ))
    .unwrap_err();
    assert!(
        err.starts_with("the directory `") && err.ends_with("missing` (`dir`) does not exist"),
        "{err}"
    );
    std::fs::write(dir.path().join("plain.sh"), "#!/bin/sh\n").unwrap();
    let err = run(&gate_in(dir.path(), json!({ "command": ["./plain.sh"] }))).unwrap_err();
    assert!(
        err.starts_with("the program `./plain.sh` is not executable"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn tail_is_the_last_ten_lines_and_two_kib_at_most() {
    assert_eq!(tail_text(""), ", no output");
    assert_eq!(tail_text("\n  \n"), ", no output");
    assert_eq!(
        tail_text("a\r\nb\x1b[0m\n\n"),
        "\n    | a\n    | b\u{fffd}[0m"
    );
    let long = "x".repeat(5000);
    let tail = tail_text(&format!("first\n{long}\n"));
    assert!(tail.starts_with("\n    | …xxx"), "{tail}");
    assert!(tail.len() <= 2048 + 10, "{}", tail.len());
    assert!(!tail.contains("first"));
}

/// The `verify:` entries of a tiny spec, loaded through the real spec loader.
fn entries(yaml: &str) -> Vec<crate::spec::Expr> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabrik.yaml");
    std::fs::write(&path, format!("stack: t\nresources: {{}}\nverify:\n{yaml}")).unwrap();
    match crate::spec::Spec::load(&path) {
        Ok(spec) => spec.verify,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn check_command_shapes_are_located() {
    let yaml = "  - command: \"./smoke.sh --quick\"\n  - command: []\n  - command: [\"./x\", 5, \"${api.url}\"]\n    enviroment: { A: b }\n  - command: [\"./x\"]\n    env: [A]\n    dir: \"\"\n  - command: [\"./x\", \"${api.url}\"]\n    env: { MODE: smoke, URL: \"${api.url}\" }\n    dir: checks\n    timeout: 60s\n    interval: 5s\n";
    let found = entries(yaml)
        .iter()
        .flat_map(check_entry)
        .map(|d| (d.loc.line, d.loc.column, d.message, d.help))
        .collect::<Vec<_>>();
    let summary: Vec<(u32, u32, &str)> = found.iter().map(|p| (p.0, p.1, p.2.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            (4, 14, "`command` must be a list of strings, not a string"),
            (5, 14, "`command` is empty"),
            (6, 22, "`command` lists strings, not an integer"),
            (7, 5, "unknown option `enviroment` in a `command` gate"),
            (9, 10, "`env` must be a map, not a list"),
            (10, 10, "`dir` is empty"),
        ],
        "{found:#?}"
    );
    assert_eq!(
        found[0].3.as_deref(),
        Some(
            "write `command: [\"./smoke.sh\", \"--quick\"]`: the program runs without a shell, \
             each argument its own item"
        )
    );
    assert_eq!(found[2].3.as_deref(), Some("write \"5\" in quotes"));
    assert_eq!(found[3].3.as_deref(), Some("did you mean `env`?"));
}
