//! Verification gates through the real binary, against a real local web server started by
//! fabrik itself (`python3 -m http.server`). The gate kinds are covered in depth at module level
//! (`src/verify`); here: a passing `http` gate with `status` and `body_contains`, passing `tcp`
//! gates, and what a failing `http` gate tells the user; `command` gates passing (resource and
//! stack gates, `env`, `dir`, references), failing and timing out with a rollback, cancelled by
//! Ctrl-C, bound by a saved plan, and keeping a secret they are given out of every output.

use std::time::Duration;

use crate::harness::Case;
use crate::live::{Reaper, alive, free_port, http_get_when_up, processes_of, recorded_pid};

/// A page and a server for its directory, gated by `gates` (YAML list items, indented for
/// the resource's `verify:`).
fn served_spec(stack: &str, port: u16, gates: &str) -> String {
    let python = crate::live::python();
    format!(
        r#"
        stack: {stack}
        resources:
          page:
            type: local.file
            with: {{ path: site/index.html, content: "<h1>hello gate</h1>\n" }}
          server:
            type: local.process
            depends_on: [page]
            with:
              command: "{python}"
              args: ["-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "site"]
              stop_timeout: 2
            verify:
{gates}
        "#
    )
}

#[test]
fn http_and_tcp_gates_pass_through_the_binary() {
    let stack = "gates-pass";
    let port = free_port();
    // Generous timeouts: a passing gate returns as soon as it passes, and a loaded machine may
    // take a while to start Python.
    let gates = format!(
        r#"              - http: "http://127.0.0.1:{port}/"
                status: 200
                body_contains: "hello gate"
                timeout: 10s
                interval: 100ms
              - http: "http://127.0.0.1:{port}/missing.html"
                status: 404
                timeout: 3s
                interval: 100ms
              - tcp: "127.0.0.1:{port}"
                timeout: 3s
                interval: 100ms"#
    );
    let case = Case::new().spec(&served_spec(stack, port, &gates));
    let _reaper = Reaper::new(&case);
    let out = case.run(["apply", "--yes"]);
    assert_eq!(out.code, 0, "every gate passes:\n{out}");
    let verified = out
        .stdout
        .lines()
        .find(|l| l.contains("✓ server: verified "))
        .unwrap_or_else(|| panic!("a line says the server's gates passed:\n{out}"));
    for gate in [
        format!("http http://127.0.0.1:{port}/"),
        format!("http http://127.0.0.1:{port}/missing.html"),
        format!("tcp 127.0.0.1:{port}"),
    ] {
        assert!(verified.contains(&gate), "{gate} is named in {verified:?}");
    }
    assert!(out.stdout.contains("Apply complete: 2 added"), "{out}");
    assert!(out.stderr.is_empty(), "{out}");

    let pid = recorded_pid(&case, stack, "server");
    assert!(alive(pid));
    let page = http_get_when_up(port, "/", Duration::from_secs(5));
    assert_eq!(
        (page.status, page.body.as_str()),
        (200, "<h1>hello gate</h1>\n")
    );
    // A second apply changes nothing and runs no gate.
    let again = case.expect(["apply", "--yes"], 0);
    assert!(!again.stdout.contains("verified"), "{again}");
    assert_eq!(recorded_pid(&case, stack, "server"), pid);

    case.expect(["destroy", "--yes"], 0);
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
    assert!(!alive(pid));
}

#[test]
fn a_failed_http_gate_names_the_gate_and_the_status_it_got() {
    let stack = "gates-404";
    let port = free_port();
    // Long enough for python3 to be serving (and answering 404) on a loaded machine: the
    // failure must name what the server said, not that nothing listened yet.
    let gates = format!(
        r#"              - http: "http://127.0.0.1:{port}/health"
                status: 200
                timeout: 5s
                interval: 100ms"#
    );
    let case = Case::new().spec(&served_spec(stack, port, &gates));
    let _reaper = Reaper::new(&case);
    let out = case.run(["apply", "--yes"]);
    assert_eq!(out.code, 3, "a failed gate rolls back:\n{out}");
    let why = format!(
        "server: gate http http://127.0.0.1:{port}/health failed: expected status 200, got 404 \
         Not Found (body: \""
    );
    assert!(out.stderr.contains(&why), "expected {why:?} in:\n{out}");
    assert!(
        out.stderr.contains("(gave up after 5s, "),
        "how long it tried:\n{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim() == "✗ server (local.process): failed"),
        "the progress shows where it failed:\n{out}"
    );
    assert_eq!(
        format!("{}{}", out.stdout, out.stderr)
            .matches("expected status 200, got 404")
            .count(),
        1,
        "why it failed is printed once, in the report:\n{out}"
    );
    assert!(!case.exists("site/index.html"));
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
    assert_eq!(case.tracked(stack), Vec::<String>::new());
    case.expect(["destroy", "--yes"], 0);
}

/// Writes an executable shell script at `relative` in the case's directory.
fn script(case: &Case, relative: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;

    case.write(relative, format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(case.path(relative), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A page, gated by `gates` (YAML list items, indented for the resource's `verify:`), and a
/// stack gate that reads the page through a reference.
fn page_spec(stack: &str, gates: &str) -> String {
    format!(
        r#"
        stack: {stack}
        resources:
          page:
            type: local.file
            with: {{ path: site/index.html, content: "hello gate" }}
            verify:
{gates}
        verify:
          - command: ["grep", "-q", "hello", "${{page.abs_path}}"]
            timeout: 5s
        "#
    )
}

#[test]
fn command_gates_pass_with_env_dir_and_references() {
    let case = Case::new().spec(&page_spec(
        "command-pass",
        r#"              - command: ["./page-says.sh", "${page.path}", "hello gate"]
                env: { MODE: smoke }
                dir: checks
                timeout: 5s
                interval: 100ms"#,
    ));
    script(
        &case,
        "checks/page-says.sh",
        "test \"$MODE\" = smoke && test \"$(cat \"../$1\")\" = \"$2\"\n",
    );
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `command-pass`:

      + page (local.file)
          + path    = "site/index.html"
          + content = "hello gate"
        gate: command ./page-says.sh site/index.html "hello gate", timeout 5s

    Stack gates, once every change is made:
        gate: command grep -q hello ${page.abs_path}, timeout 5s

    Plan: 1 to add, 0 to change, 0 to destroy.

      + page (local.file): created [TIME]
      ✓ page: verified command ./page-says.sh site/index.html "hello gate" [TIME]
      ✓ stack: verified command grep -q hello [TEMP]/site/index.html [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
}

#[test]
fn a_failed_command_gate_rolls_back_and_shows_the_exit_code_and_the_output() {
    let case = Case::new().spec(&page_spec(
        "command-fail",
        r#"              - command: ["./smoke.sh", "--url", "http://127.0.0.1/${page.path}"]
                timeout: 2s
                interval: 10s"#,
    ));
    script(
        &case,
        "smoke.sh",
        "echo \"checking $2\"\ni=1; while [ $i -le 12 ]; do echo \"step $i ok\"; i=$((i+1)); done\necho 'step 13: expected 200, got 502' >&2\nexit 3\n",
    );
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `command-fail`:

      + page (local.file)
          + path    = "site/index.html"
          + content = "hello gate"
        gate: command ./smoke.sh --url http://127.0.0.1/site/index.html, timeout 2s

    Stack gates, once every change is made:
        gate: command grep -q hello ${page.abs_path}, timeout 5s

    Plan: 1 to add, 0 to change, 0 to destroy.

      + page (local.file): created [TIME]
      ✗ page (local.file): failed
    Rolling back the changes this run made…
      ↩ page (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      page: gate command ./smoke.sh --url http://127.0.0.1/site/index.html failed: exited with code 3 (gave up after 2s, [N] attempts)
        | step 4 ok
        | step 5 ok
        | step 6 ok
        | step 7 ok
        | step 8 ok
        | step 9 ok
        | step 10 ok
        | step 11 ok
        | step 12 ok
        | step 13: expected 200, got 502
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(!case.exists("site/index.html"));
    assert_eq!(case.tracked("command-fail"), Vec::<String>::new());
}

#[test]
fn a_command_gate_past_its_timeout_is_killed_and_rolled_back() {
    let case = Case::new().spec(&page_spec(
        "command-hang",
        r#"              - command: ["./hang.sh"]
                timeout: 1s"#,
    ));
    script(
        &case,
        "hang.sh",
        "sleep 60 & echo $! > bg.pid; echo \"waiting for the page\"; sleep 60\n",
    );
    let started = std::time::Instant::now();
    let out = case.run(["apply", "--yes"]);
    assert!(started.elapsed() < Duration::from_secs(20), "{out}");
    fabrik_snapshot!(case, out.code_and_stderr(), @r#"
    exit code: 3
    ----- stderr -----
    error: apply failed:
      page: gate command ./hang.sh failed: still running when the gate's time ran out: killed (gave up after 1s, [N] attempts)
        | waiting for the page
    every change was rolled back; the stack is as it was before this run
    "#);
    let background: i32 = case.read("bg.pid").trim().parse().unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while alive(background) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(background), "what the program started is killed too");
    assert!(!case.exists("site/index.html"));
}

#[test]
fn ctrl_c_kills_a_running_command_gate_and_rolls_back() {
    let case = Case::new().spec(&page_spec(
        "command-cancel",
        r#"              - command: ["./hang.sh"]
                timeout: 5m"#,
    ));
    script(&case, "hang.sh", "echo $$ > gate.pid; sleep 300\n");
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fabrik starts");
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !case.exists("gate.pid") || case.read("gate.pid").trim().is_empty() {
        assert!(
            std::time::Instant::now() < until && child.try_wait().unwrap().is_none(),
            "the gate's program never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let program: i32 = case.read("gate.pid").trim().parse().unwrap();
    crate::live::signal(child.id(), "INT");
    let signalled = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "{took:?}\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(
        stderr.contains("page: gate command ./hang.sh failed: cancelled"),
        "{stderr}"
    );
    assert!(!alive(program), "the gate's program is killed");
    assert!(!case.exists("site/index.html"));
    assert_eq!(case.tracked("command-cancel"), Vec::<String>::new());
}

/// A saved plan binds its command gates as written and resolved: another argument, another
/// `env` value or another `dir` makes it stale.
#[test]
fn a_saved_plan_is_stale_once_a_command_gate_changed() {
    let spec = |dir: &str| {
        page_spec(
            "command-saved",
            &format!(
                r#"              - command: ["./ok.sh", "${{env.TARGET}}"]
                env: {{ MODE: "${{env.MODE}}" }}
                dir: {dir}"#
            ),
        )
    };
    let case = Case::new()
        .spec(&spec("checks"))
        .env("TARGET", "a")
        .env("MODE", "smoke");
    script(&case, "checks/ok.sh", "exit 0\n");
    script(&case, "other/ok.sh", "exit 0\n");
    case.expect(["plan", "--out", "p.json"], 0);
    let stale = "error: the saved plan is stale: the spec (or an environment variable it uses) \
                 changed since the plan was made";
    for (name, value) in [("TARGET", "b"), ("MODE", "full")] {
        let out = case.args(["apply", "p.json"]).env(name, value).run();
        assert_eq!(out.code, 1, "{out}");
        assert!(out.stderr.starts_with(stale), "{name} changed:\n{out}");
    }
    case.set_spec(&spec("other"));
    let out = case.run(["apply", "p.json"]);
    assert!(out.stderr.starts_with(stale), "`dir` changed:\n{out}");
    assert!(!case.exists("site/index.html"));
    case.set_spec(&spec("checks"));
    case.expect(["apply", "p.json"], 0);
}

/// A secret handed to a command gate (an argument, an `env` value) is masked in what its
/// program printed, in the gate's name and in every file fabrik writes.
#[test]
fn a_secret_given_to_a_command_gate_never_shows() {
    let secret = "gate-s3cret-7d1e5a";
    let case = Case::new()
        .spec(&format!(
            "secrets:\n  GATE_TOKEN: {{}}\n{}",
            crate::harness::dedent(&page_spec(
                "command-secret",
                r#"              - command: ["./leak.sh", "--token", "${secret.GATE_TOKEN}"]
                env: { TOKEN: "${secret.GATE_TOKEN}" }
                timeout: 1s
                interval: 5s"#,
            ))
        ))
        .env("GATE_TOKEN", secret);
    script(
        &case,
        "leak.sh",
        "echo \"argument $2\"; echo \"environment $TOKEN\" >&2; exit 1\n",
    );
    case.expect(["plan", "--out", "p.json"], 0);
    let out = case.run(["apply", "p.json"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(!out.to_string().contains(secret), "{out}");
    let report = "page: gate command ./leak.sh --token (sensitive) failed: exited with code 1 \
                  (gave up after 1s, 1 attempt)\n    | argument (sensitive)\n    | environment \
                  (sensitive)\n";
    assert!(out.stderr.contains(report), "{out}");
    for (path, bytes) in case.state_files() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            path.display()
        );
    }
    assert!(!case.read("p.json").contains(secret));
}
