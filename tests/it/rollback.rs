//! Safe apply through the real binary: a failure anywhere (provider error, failed gate, stack
//! gate, Ctrl-C) undoes what the run changed, newest first, and leaves the stack as it was;
//! `on_failure: keep` and `--no-rollback` leave changes in place and say so; deletes wait until
//! every gate passed, so a failed apply never loses a resource the spec dropped.
//!
//! Tests run as root, so permissions cannot make a write fail; a path whose parent is a regular
//! file (`blocker/…`) can never be written by anyone. Gates that must fail point at a loopback
//! port nothing listens on, or at a server answering the wrong thing, with 1–3 s timeouts.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Case, Output};
use crate::live::{
    Reaper, alive, closed_port, cmdline, free_port, http_get_when_up, processes_of, recorded_pid,
    signal,
};

/// The progress part of an apply's stdout: what comes after the plan's summary line.
fn progress(out: &Output) -> &str {
    let start = out
        .stdout
        .find("\nPlan: ")
        .unwrap_or_else(|| panic!("the apply printed a plan:\n{out}"));
    let rest = &out.stdout[start + 1..];
    &rest[rest.find('\n').map_or(rest.len(), |i| i + 1)..]
}

/// The index of the progress line that starts with `prefix` (after its indentation).
fn line_of(out: &Output, prefix: &str) -> usize {
    progress(out)
        .lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no progress line starts with {prefix:?}:\n{out}"))
}

/// The names on progress lines that start with `mark` (`+`, `~`, `↩`…), sorted.
fn names_marked(out: &Output, mark: &str) -> Vec<String> {
    let mut names: Vec<String> = progress(out)
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(mark)?.strip_prefix(' '))
        .filter_map(|l| l.split_once(' ').map(|(name, _)| name.to_string()))
        .collect();
    names.sort();
    names
}

/// Shows a port nothing listens on as `[CLOSED-PORT]`, where a gate's last attempt may time out
/// at the deadline instead of being refused (see [`Case::redact_deadline_cut`]).
fn redact_closed_port(case: &Case, port: u16) {
    case.redact(port, "CLOSED-PORT");
    case.redact_deadline_cut("connection refused (nothing listens there)");
}

fn files_in(case: &Case, dir: &str) -> usize {
    std::fs::read_dir(case.path(dir)).map_or(0, |d| d.flatten().count())
}

/// Ends a test: `destroy --yes` succeeds and leaves no process of this case running.
fn destroy_leaves_nothing(case: &Case) {
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(
        processes_of(&case.state_dir()),
        Vec::<i32>::new(),
        "destroy stopped every process"
    );
}

/// `base` is applied first; then a run adds a chain `a → a2 → b → c` (b cannot be written, c
/// refers to b), independent files `d` and `e`, and a process `p`.
fn chain_spec(stack: &str, with_run: bool) -> String {
    let mut yaml = format!(
        r#"
        stack: {stack}
        resources:
          base:
            type: local.file
            with: {{ path: base.txt, content: "base\n" }}
        "#
    );
    if with_run {
        yaml.push_str(
            r#"
          a:
            type: local.file
            with: { path: out/a.txt, content: "a\n" }
          a2:
            type: local.file
            with: { path: out/a2.txt, content: "after ${a.content_hash}\n" }
          b:
            type: local.file
            with: { path: blocker/b.txt, content: "after ${a2.content_hash}\n" }
          c:
            type: local.file
            with: { path: out/c.txt, content: "after ${b.content_hash}\n" }
          d:
            type: local.file
            with: { path: out/d.txt, content: "d\n" }
          e:
            type: local.file
            with: { path: out/e.txt, content: "e\n" }
          p:
            type: local.process
            with: { command: sleep, args: ["300"], stop_timeout: 1 }
        "#,
        );
    }
    yaml
}

/// A stack with `base` applied and a blocker in place for `b`.
fn chain_case(stack: &str) -> Case {
    let case = Case::new().spec(&chain_spec(stack, false));
    case.expect(["apply", "--yes"], 0);
    case.write(
        "blocker",
        "a regular file, so blocker/b.txt cannot be written\n",
    );
    case.set_spec(&chain_spec(stack, true));
    case
}

#[test]
fn a_failure_in_the_middle_of_the_graph_rolls_back_everything_the_run_did() {
    let stack = "rb-middle";
    let case = chain_case(stack);
    let _reaper = Reaper::new(&case);
    let before = case.state(stack)["resources"].clone();

    let out = case.run(["apply", "--yes"]);
    assert_eq!(out.code, 3, "a fully rolled back apply exits 3:\n{out}");

    // What ran before the failure was created, then undone.
    for name in ["a", "a2", "d", "e"] {
        let created = line_of(&out, &format!("+ {name} (local.file): created"));
        let undone = line_of(&out, &format!("↩ {name} (local.file): rolled back"));
        assert!(
            created < undone,
            "{name} is undone after it was made:\n{out}"
        );
    }
    let started = line_of(&out, "+ p (local.process): created");
    let stopped = line_of(&out, "↩ p (local.process): rolled back");
    assert!(started < stopped, "{out}");
    // Newest first: a2 was made after a (it refers to a), so it is undone before a.
    assert!(
        line_of(&out, "↩ a2 (local.file)") < line_of(&out, "↩ a (local.file)"),
        "undo runs newest first:\n{out}"
    );
    let failed = line_of(&out, "✗ b (local.file): failed");
    let rolling = line_of(&out, "Rolling back the changes this run made");
    assert!(failed < rolling, "{out}");
    // c depends on the failed b and never runs; base was unchanged and is left alone. The
    // lines of each phase are sorted: independent resources finish in any order.
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `rb-middle`:

      + a (local.file)
          + path    = "out/a.txt"
          + content = <<EOT
              a
            EOT

      + a2 (local.file)
          + path    = "out/a2.txt"
          + content = (known after apply)

      + b (local.file)
          + path    = "blocker/b.txt"
          + content = (known after apply)

      + c (local.file)
          + path    = "out/c.txt"
          + content = (known after apply)

      + d (local.file)
          + path    = "out/d.txt"
          + content = <<EOT
              d
            EOT

      + e (local.file)
          + path    = "out/e.txt"
          + content = <<EOT
              e
            EOT

      + p (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

    Plan: 7 to add, 0 to change, 0 to destroy.

      + a (local.file): created [TIME]
      + a2 (local.file): created [TIME]
      + d (local.file): created [TIME]
      + e (local.file): created [TIME]
      + p (local.process): created [TIME]
      ✗ b (local.file): failed
    Rolling back the changes this run made…
      ↩ a (local.file): rolled back [TIME]
      ↩ a2 (local.file): rolled back [TIME]
      ↩ d (local.file): rolled back [TIME]
      ↩ e (local.file): rolled back [TIME]
      ↩ p (local.process): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      b: creating [TEMP]/blocker: File exists (os error 17)
    every change was rolled back; the stack is as it was before this run
    "#);

    for file in [
        "out/a.txt",
        "out/a2.txt",
        "out/c.txt",
        "out/d.txt",
        "out/e.txt",
    ] {
        assert!(
            !case.exists(file),
            "{file} must not exist after the rollback"
        );
    }
    assert_eq!(case.read("base.txt"), "base\n", "the unchanged file stays");
    assert_eq!(
        processes_of(&case.state_dir()),
        Vec::<i32>::new(),
        "the process started by the failed run is stopped"
    );
    assert_eq!(
        case.tracked(stack),
        ["base"],
        "the state tracks nothing new"
    );
    assert_eq!(case.state(stack)["resources"], before);

    // Everything is still to do, and once the blocker is gone it all goes through.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(
        plan.stdout
            .contains("Plan: 7 to add, 0 to change, 0 to destroy."),
        "{plan}"
    );
    case.remove("blocker");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(files_in(&case, "out"), 5);
    assert_eq!(processes_of(&case.state_dir()).len(), 1);
    destroy_leaves_nothing(&case);
}

/// v1: `page` says "v1 release-ok" and `server` serves its directory, gated on that text.
/// v2: `page` says "v2 broken" and `server` serves another directory, whose page lacks it.
fn release_spec(stack: &str, port: u16, version: &str) -> String {
    // v1's gate must pass (it returns as soon as it does); v2's must fail, after long enough
    // for its server to be answering on a loaded machine, so the failure names the body.
    let (content, dir, timeout) = match version {
        "v1" => ("v1 release-ok", "site", "10s"),
        _ => ("v2 broken", "www-v2", "6s"),
    };
    let python = crate::live::python();
    format!(
        r#"
        stack: {stack}
        resources:
          page:
            type: local.file
            with: {{ path: site/index.html, content: "{content}\n" }}
          server:
            type: local.process
            depends_on: [page]
            with:
              command: "{python}"
              args: ["-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "{dir}"]
              env: {{ RELEASE: "{version}" }}
              stop_timeout: 2
            verify:
              - http: "http://127.0.0.1:{port}/"
                status: 200
                body_contains: "release-ok"
                timeout: {timeout}
                interval: 100ms
        "#
    )
}

#[test]
fn rolling_back_an_update_restores_the_previous_content_and_the_previous_process() {
    let stack = "rb-update";
    let port = free_port();
    let case = Case::new().spec(&release_spec(stack, port, "v1"));
    let _reaper = Reaper::new(&case);
    case.write("www-v2/index.html", "v2 from www-v2\n");

    let v1 = case.expect(["apply", "--yes"], 0);
    assert!(
        v1.stdout
            .contains(&format!("server: verified http http://127.0.0.1:{port}/")),
        "{v1}"
    );
    let v1_pid = recorded_pid(&case, stack, "server");
    assert!(alive(v1_pid));
    assert_eq!(
        http_get_when_up(port, "/", Duration::from_secs(5)).body,
        "v1 release-ok\n"
    );

    case.set_spec(&release_spec(stack, port, "v2"));
    let v2 = case.run(["apply", "--yes"]);
    case.redact(port, "PORT");
    case.redact_deadline_cut(
        r#"status 200, but the body does not contain "release-ok" (body: "v2 from www-v2")"#,
    );
    fabrik_snapshot!(case, v2, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `rb-update`:

      ~ page (local.file)
          ~ content:
              - v1 release-ok
              + v2 broken

      ~ server (local.process)
          ~ args:
                … 5 unchanged
                "--directory"
              - "site"
              + "www-v2"
          ~ env  = {"RELEASE":"v1"} → {"RELEASE":"v2"}
        gate: http http://127.0.0.1:[PORT]/ expects 200 with "release-ok", timeout 6s

    Plan: 0 to add, 2 to change, 0 to destroy.

      ~ page (local.file): updated [TIME]
      ~ server (local.process): updated [TIME]
      ✗ server (local.process): failed
    Rolling back the changes this run made…
      ↩ server (local.process): rolled back [TIME]
      ↩ page (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      server: gate http http://127.0.0.1:[PORT]/ failed: status 200, but the body does not contain "release-ok" (body: "v2 from www-v2") [or timed out at the deadline] (gave up after 6s, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    // Both changes were made, then both undone, newest first.
    let updated_page = line_of(&v2, "~ page (local.file): updated");
    let updated_server = line_of(&v2, "~ server (local.process): updated");
    let gate = line_of(&v2, "✗ server (local.process): failed");
    let undo_server = line_of(&v2, "↩ server (local.process): rolled back");
    let undo_page = line_of(&v2, "↩ page (local.file): rolled back");
    assert!(
        updated_page < updated_server
            && updated_server < gate
            && gate < undo_server
            && undo_server < undo_page,
        "{v2}"
    );

    // The file holds v1 again.
    assert_eq!(case.read("site/index.html"), "v1 release-ok\n");
    // One process runs, the one the state records, with v1's configuration, serving v1.
    let pid = recorded_pid(&case, stack, "server");
    assert!(alive(pid), "the recorded server pid {pid} is alive");
    assert_eq!(
        processes_of(&case.state_dir()),
        [pid],
        "exactly one server runs: the v2 one was stopped"
    );
    let args = cmdline(pid);
    assert!(
        args.windows(2).any(|w| w == ["--directory", "site"]),
        "the server runs with v1's arguments again: {args:?}"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ.split(|b| *b == 0).any(|v| v == b"RELEASE=v1"),
        "the server runs with v1's environment again"
    );
    let served = http_get_when_up(port, "/", Duration::from_secs(5));
    assert_eq!(served.status, 200, "{served:?}");
    assert_eq!(served.body, "v1 release-ok\n", "v1 is served again");

    // The state describes v1 exactly: planning v1 finds nothing to do.
    case.set_spec(&release_spec(stack, port, "v1"));
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code, 0,
        "after the rollback v1 has no changes:\n{plan}"
    );
    destroy_leaves_nothing(&case);
    assert!(!case.exists("site/index.html"));
}

const CHAINS: usize = 30;
const CHAIN: usize = 10;

/// 300 files in chains of 10; the first half of the chains start at once, the second half wait
/// for `gated`, a process whose gate waits (up to 30 s) for something to listen on `port`.
/// Two more processes run independently.
fn many_spec(stack: &str, port: u16) -> String {
    let mut yaml = format!("stack: {stack}\nresources:\n");
    for chain in 0..CHAINS {
        for step in 0..CHAIN {
            let i = chain * CHAIN + step;
            let (content, extra) = if step > 0 {
                (format!("file {i} after ${{f{}.content_hash}}", i - 1), "")
            } else if chain >= CHAINS / 2 {
                (format!("file {i}"), "\n    depends_on: [gated]")
            } else {
                (format!("file {i}"), "")
            };
            yaml.push_str(&format!(
                "  f{i}:\n    type: local.file\n    with: {{ path: out/f{i}.txt, content: \"{content}\" }}{extra}\n"
            ));
        }
    }
    for p in 0..2 {
        yaml.push_str(&format!(
            "  p{p}:\n    type: local.process\n    with: {{ command: sleep, args: [\"300\"], stop_timeout: 1 }}\n"
        ));
    }
    yaml.push_str(&format!(
        "  gated:\n    type: local.process\n    with: {{ command: sleep, args: [\"300\"], stop_timeout: 1 }}\n    verify:\n      - tcp: \"127.0.0.1:{port}\"\n        timeout: 30s\n        interval: 100ms\n"
    ));
    yaml
}

/// Starts `apply --yes`, waits until `ready` (given the case and the stdout so far) says the
/// run is where the test wants it, sends `signal_name`, and waits for fabrik to end. Returns
/// its output and how long it took to end after the signal.
fn interrupt_apply(
    case: &Case,
    signal_name: &str,
    ready: impl Fn(&Case, &str) -> bool,
) -> (Output, Duration) {
    let stdout = std::fs::File::create(case.path("apply.stdout")).unwrap();
    let stderr = std::fs::File::create(case.path("apply.stderr")).unwrap();
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("fabrik starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(
        case,
        &std::fs::read_to_string(case.path("apply.stdout")).unwrap_or_default(),
    ) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the apply did not get where the test waits for it while running:\n{}\n{}",
                case.read("apply.stdout"),
                case.read("apply.stderr")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), signal_name);
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(25) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "fabrik did not end within 25 s of SIG{signal_name}:\n{}",
                case.read("apply.stdout")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = signalled.elapsed();
    let out = Output {
        code: status.code().unwrap_or(-1),
        stdout: case.read("apply.stdout"),
        stderr: case.read("apply.stderr"),
    };
    (out, took)
}

#[test]
fn ctrl_c_during_apply_rolls_back_everything_and_the_next_apply_converges() {
    let stack = "rb-ctrl-c";
    let port = free_port();
    let case = Case::new().spec(&many_spec(stack, port));
    let _reaper = Reaper::new(&case);

    // Some files are written and `gated` waits for its gate: the run is in full swing.
    let (out, took) = interrupt_apply(&case, "INT", |case, stdout| {
        files_in(case, "out") >= CHAIN && stdout.contains("+ gated (local.process): created")
    });
    assert!(
        took < Duration::from_secs(10),
        "the gate (30 s timeout) is cancelled by Ctrl-C, not waited out: took {took:?}\n{out}"
    );
    // How many files were written before the signal varies, so stdout is checked line by line
    // below rather than pinned. Whether the scheduler was about to start another change when
    // the signal came varies too, and with it the end of the first line.
    case.redact(port, "PORT");
    case.redact_matches(
        r"interrupted by SIGINT \(Ctrl-C\)(?:: no new change was started)?\n",
        "interrupted by SIGINT (Ctrl-C)[: no new change was started]\n",
    );
    fabrik_snapshot!(case, out.code_and_stderr(), @"
    exit code: 3
    ----- stderr -----
    error: apply failed:
      interrupted by SIGINT (Ctrl-C)[: no new change was started]
      gated: gate tcp 127.0.0.1:[PORT] failed: cancelled; the last attempt had failed: cannot connect to 127.0.0.1:[PORT]: connection refused (nothing listens there)
    every change was rolled back; the stack is as it was before this run
    ");
    assert!(
        out.stdout
            .contains("Rolling back the changes this run made"),
        "{out}"
    );
    // Everything the run made was undone; the gated process was among them.
    let created = names_marked(&out, "+");
    assert!(created.contains(&"gated".to_string()), "{out}");
    assert_eq!(
        names_marked(&out, "↩"),
        created,
        "each change is undone:\n{out}"
    );
    assert!(
        progress(&out).contains("✗ gated (local.process): failed")
            && out
                .stderr
                .contains(&format!("gated: gate tcp 127.0.0.1:{port} failed: ")),
        "the gate in progress is stopped:\n{out}"
    );
    assert_eq!(files_in(&case, "out"), 0, "no file of the run remains");
    assert_eq!(
        processes_of(&case.state_dir()),
        Vec::<i32>::new(),
        "no process of the run remains"
    );
    assert_eq!(case.tracked(stack), Vec::<String>::new());
    // The files waiting for the gate never ran.
    assert!(
        !progress(&out).contains(&format!("f{} (local.file)", CHAINS / 2 * CHAIN)),
        "nothing behind the gate started:\n{out}"
    );

    // With something listening, the same spec applies in full.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind the port");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(files_in(&case, "out"), CHAINS * CHAIN);
    assert_eq!(processes_of(&case.state_dir()).len(), 3);
    assert_eq!(case.tracked(stack).len(), CHAINS * CHAIN + 3);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    drop(listener);
    destroy_leaves_nothing(&case);
    assert_eq!(files_in(&case, "out"), 0);
}

/// SIGTERM while the only thing running is a gate (`after` waits for it): the gate is
/// cancelled at once, everything is rolled back, and the message says why the run stopped.
#[test]
fn sigterm_while_a_gate_waits_rolls_back_and_says_the_run_was_interrupted() {
    let stack = "rb-sigterm";
    let port = free_port();
    let case = Case::new().spec(&format!(
        r#"
        stack: {stack}
        resources:
          conf:
            type: local.file
            with: {{ path: out/conf.txt, content: "conf\n" }}
          gated:
            type: local.process
            depends_on: [conf]
            with: {{ command: sleep, args: ["300"], stop_timeout: 1 }}
            verify:
              - tcp: "127.0.0.1:{port}"
                timeout: 30s
                interval: 100ms
          after:
            type: local.file
            depends_on: [gated]
            with: {{ path: out/after.txt, content: "after\n" }}
        "#
    ));
    let _reaper = Reaper::new(&case);

    // Once `gated` is recorded its gate starts; half a second later the scheduler is only
    // waiting for that gate (whose attempts come every 100 ms).
    let seen = std::cell::Cell::new(None::<Instant>);
    let (out, took) = interrupt_apply(&case, "TERM", |_, stdout| {
        if seen.get().is_none() && stdout.contains("+ gated (local.process): created") {
            seen.set(Some(Instant::now()));
        }
        seen.get()
            .is_some_and(|t| t.elapsed() > Duration::from_millis(500))
    });
    assert!(took < Duration::from_secs(10), "took {took:?}\n{out}");
    // `after` never ran. The user stopped the run: the message must say so, not only that a
    // gate was cancelled.
    case.redact(port, "PORT");
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `rb-sigterm`:

      + conf (local.file)
          + path    = "out/conf.txt"
          + content = <<EOT
              conf
            EOT

      + gated (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1
        gate: tcp 127.0.0.1:[PORT], timeout 30s

      + after (local.file)
          + path    = "out/after.txt"
          + content = <<EOT
              after
            EOT

    Plan: 3 to add, 0 to change, 0 to destroy.

      + conf (local.file): created [TIME]
      + gated (local.process): created [TIME]
      ✗ gated (local.process): failed
    Rolling back the changes this run made…
      ↩ conf (local.file): rolled back [TIME]
      ↩ gated (local.process): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      interrupted by SIGTERM
      gated: gate tcp 127.0.0.1:[PORT] failed: cancelled; the last attempt had failed: cannot connect to 127.0.0.1:[PORT]: connection refused (nothing listens there)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(files_in(&case, "out"), 0);
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
    assert_eq!(case.tracked(stack), Vec::<String>::new());
    destroy_leaves_nothing(&case);
}

#[test]
fn on_failure_keep_leaves_that_resource_in_place_and_says_so() {
    let stack = "rb-keep";
    let case = Case::new().spec(&format!(
        r#"
        stack: {stack}
        resources:
          data:
            type: local.file
            on_failure: keep
            with: {{ path: data/seed.txt, content: "precious\n" }}
          db:
            type: local.process
            on_failure: keep
            with: {{ command: sleep, args: ["300"], stop_timeout: 1 }}
          app:
            type: local.file
            with: {{ path: app.txt, content: "app\n" }}
          worker:
            type: local.process
            with: {{ command: sleep, args: ["300"], stop_timeout: 1 }}
          bad:
            type: local.file
            depends_on: [data, db, app, worker]
            with: {{ path: blocker/bad.txt, content: "bad\n" }}
        "#
    ));
    let _reaper = Reaper::new(&case);
    case.write("blocker", "a regular file\n");

    let out = case.run(["apply", "--yes"]);
    // Something the run made is left in place: exit 4 (3 would say "fully rolled back"). `app`
    // and `worker` are rolled back, `data` and `db` kept; the message must not claim the stack
    // is as it was, and must name what was kept (on_failure: keep).
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 4
    ----- stdout -----
    fabrik will make these changes to stack `rb-keep`:

      + data (local.file)
          + path    = "data/seed.txt"
          + content = <<EOT
              precious
            EOT

      + db (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

      + app (local.file)
          + path    = "app.txt"
          + content = <<EOT
              app
            EOT

      + worker (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

      + bad (local.file)
          + path    = "blocker/bad.txt"
          + content = <<EOT
              bad
            EOT

    Plan: 5 to add, 0 to change, 0 to destroy.

      + app (local.file): created [TIME]
      + data (local.file): created [TIME]
      + db (local.process): created [TIME]
      + worker (local.process): created [TIME]
      ✗ bad (local.file): failed
    Rolling back the changes this run made…
      ↩ app (local.file): rolled back [TIME]
      ↩ worker (local.process): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      bad: creating [TEMP]/blocker: File exists (os error 17)
    kept in place, as the spec asks (recorded in the state):
      data: created (on_failure: keep)
      db: created (on_failure: keep)
    every other change was rolled back
    run `fabrik plan` to see what is left to do
    "#);

    // The kept resources exist and are tracked; the others are gone.
    assert_eq!(case.read("data/seed.txt"), "precious\n");
    assert!(!case.exists("app.txt"));
    let db = recorded_pid(&case, stack, "db");
    assert_eq!(
        processes_of(&case.state_dir()),
        [db],
        "the kept process runs, the rolled back one does not"
    );
    assert_eq!(case.tracked(stack), ["data", "db"]);

    // What is left to do: the rolled back and the failed resources, not the kept ones.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(
        plan.stdout
            .contains("Plan: 3 to add, 0 to change, 0 to destroy."),
        "{plan}"
    );
    destroy_leaves_nothing(&case);
    assert!(!case.exists("data/seed.txt"));
}

#[test]
fn no_rollback_keeps_what_was_done_names_it_and_plan_shows_the_rest() {
    let stack = "rb-keep-all";
    let case = chain_case(stack);
    let _reaper = Reaper::new(&case);

    let out = case.run(["apply", "--yes", "--no-rollback"]);
    // Exit 4, nothing rolled back, and every change that remains named.
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 4
    ----- stdout -----
    fabrik will make these changes to stack `rb-keep-all`:

      + a (local.file)
          + path    = "out/a.txt"
          + content = <<EOT
              a
            EOT

      + a2 (local.file)
          + path    = "out/a2.txt"
          + content = (known after apply)

      + b (local.file)
          + path    = "blocker/b.txt"
          + content = (known after apply)

      + c (local.file)
          + path    = "out/c.txt"
          + content = (known after apply)

      + d (local.file)
          + path    = "out/d.txt"
          + content = <<EOT
              d
            EOT

      + e (local.file)
          + path    = "out/e.txt"
          + content = <<EOT
              e
            EOT

      + p (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

    Plan: 7 to add, 0 to change, 0 to destroy.

      + a (local.file): created [TIME]
      + a2 (local.file): created [TIME]
      + d (local.file): created [TIME]
      + e (local.file): created [TIME]
      + p (local.process): created [TIME]
      ✗ b (local.file): failed

    ----- stderr -----
    error: apply failed:
      b: creating [TEMP]/blocker: File exists (os error 17)
    these changes remain in place (recorded in the state):
      a2: created
      a: created
      d: created
      e: created
      p: created
    run `fabrik plan` to see what is left to do
    "#);

    for (file, content) in [
        ("out/a.txt", "a\n"),
        ("out/d.txt", "d\n"),
        ("out/e.txt", "e\n"),
    ] {
        assert_eq!(case.read(file), content);
    }
    assert!(case.exists("out/a2.txt"));
    assert!(!case.exists("out/c.txt"), "c never ran");
    let p = recorded_pid(&case, stack, "p");
    assert_eq!(processes_of(&case.state_dir()), [p], "the process stays up");
    assert_eq!(case.tracked(stack), ["a", "a2", "base", "d", "e", "p"]);

    // What is left to do is exactly the failed resource and what depends on it.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(plan.stdout.contains("\n  + b (local.file)\n"), "{plan}");
    assert!(plan.stdout.contains("\n  + c (local.file)\n"), "{plan}");
    assert!(
        plan.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{plan}"
    );
    case.remove("blocker");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(processes_of(&case.state_dir()), [p], "p was not restarted");
    destroy_leaves_nothing(&case);
}

/// `--no-rollback` after a failed gate keeps the change for debugging, but the change never
/// passed its gate: it must not count as done. The exit-4 message sends the user to `plan` "to
/// see what is left to do", so `plan` must not answer "No changes", and a later apply whose gate
/// still fails must not succeed.
#[test]
fn no_rollback_after_a_failed_gate_does_not_count_the_change_as_done() {
    let stack = "rb-unverified";
    let closed_guard = closed_port();
    let closed = closed_guard.port;
    let case = Case::new().spec(&format!(
        r#"
        stack: {stack}
        resources:
          release:
            type: local.file
            with: {{ path: release.txt, content: "v2\n" }}
            verify:
              - tcp: "127.0.0.1:{closed}"
                timeout: 1s
                interval: 100ms
        "#
    ));
    let out = case.run(["apply", "--yes", "--no-rollback"]);
    redact_closed_port(&case, closed);
    fabrik_snapshot!(case, out, @r#"
    exit code: 4
    ----- stdout -----
    fabrik will make these changes to stack `rb-unverified`:

      + release (local.file)
          + path    = "release.txt"
          + content = <<EOT
              v2
            EOT
        gate: tcp 127.0.0.1:[CLOSED-PORT], timeout 1s

    Plan: 1 to add, 0 to change, 0 to destroy.

      + release (local.file): created [TIME]
      ✗ release (local.file): failed

    ----- stderr -----
    error: apply failed:
      release: gate tcp 127.0.0.1:[CLOSED-PORT] failed: cannot connect to 127.0.0.1:[CLOSED-PORT]: connection refused (nothing listens there) [or timed out at the deadline] (gave up after 1s, [N] attempts)
    these changes remain in place (recorded in the state):
      release: created
    run `fabrik plan` to see what is left to do
    "#);
    assert_eq!(
        case.read("release.txt"),
        "v2\n",
        "the change stays for debugging"
    );
    assert_eq!(case.tracked(stack), ["release"]);

    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_ne!(
        plan.code, 0,
        "the gate never passed, yet plan says there is nothing left to do:\n{plan}"
    );
    let again = case.run(["apply", "--yes"]);
    assert_ne!(
        again.code, 0,
        "the gate still fails, yet the apply succeeds without running it:\n{again}"
    );
    case.expect(["destroy", "--yes"], 0);
    assert!(!case.exists("release.txt"));
}

#[test]
fn deletes_wait_for_the_gates_so_a_failed_apply_keeps_what_the_spec_dropped() {
    let stack = "rb-deferred";
    let closed_guard = closed_port();
    let closed = closed_guard.port;
    let case = Case::new().spec(&format!(
        r#"
        stack: {stack}
        resources:
          stay:
            type: local.file
            with: {{ path: stay.txt, content: "stay\n" }}
          retired:
            type: local.file
            with: {{ path: retired.txt, content: "retired\n" }}
          old-worker:
            type: local.process
            with: {{ command: sleep, args: ["300"], stop_timeout: 1 }}
        "#
    ));
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let before = case.state(stack)["resources"].clone();
    let worker = recorded_pid(&case, stack, "old-worker");

    // `retired` and `old-worker` leave the spec; `fresh` arrives with a gate that fails.
    case.set_spec(&format!(
        r#"
        stack: {stack}
        resources:
          stay:
            type: local.file
            with: {{ path: stay.txt, content: "stay\n" }}
          fresh:
            type: local.file
            with: {{ path: fresh.txt, content: "fresh\n" }}
            verify:
              - tcp: "127.0.0.1:{closed}"
                timeout: 1s
                interval: 100ms
        "#
    ));
    let out = case.run(["apply", "--yes"]);
    // The plan deletes both, yet no delete runs before the gate passed.
    redact_closed_port(&case, closed);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `rb-deferred`:

      + fresh (local.file)
          + path    = "fresh.txt"
          + content = <<EOT
              fresh
            EOT
        gate: tcp 127.0.0.1:[CLOSED-PORT], timeout 1s

      - old-worker (local.process)

      - retired (local.file)

    Plan: 1 to add, 0 to change, 2 to destroy.

      + fresh (local.file): created [TIME]
      ✗ fresh (local.file): failed
    Rolling back the changes this run made…
      ↩ fresh (local.file): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      fresh: gate tcp 127.0.0.1:[CLOSED-PORT] failed: cannot connect to 127.0.0.1:[CLOSED-PORT]: connection refused (nothing listens there) [or timed out at the deadline] (gave up after 1s, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);

    assert_eq!(case.read("retired.txt"), "retired\n");
    assert!(alive(worker), "the dropped process still runs");
    assert_eq!(processes_of(&case.state_dir()), [worker]);
    assert!(!case.exists("fresh.txt"));
    assert_eq!(case.tracked(stack), ["old-worker", "retired", "stay"]);
    assert_eq!(case.state(stack)["resources"], before);
    // The deletes are still pending.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(
        plan.stdout
            .contains("Plan: 1 to add, 0 to change, 2 to destroy."),
        "{plan}"
    );
    destroy_leaves_nothing(&case);
    assert!(!case.exists("retired.txt"));
}

#[test]
fn a_failing_stack_gate_rolls_back_the_whole_apply() {
    let stack = "rb-stack-gate";
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_guard = closed_port();
    let closed = closed_guard.port;
    let spec = |content: &str, with_worker: bool, gate_port: u16| {
        let worker = if with_worker {
            "\n          worker:\n            type: local.process\n            with: { command: sleep, args: [\"300\"], stop_timeout: 1 }"
        } else {
            ""
        };
        format!(
            r#"
        stack: {stack}
        resources:
          conf:
            type: local.file
            with: {{ path: app.conf, content: "{content}\n" }}{worker}
        verify:
          - tcp: "127.0.0.1:{gate_port}"
            timeout: 1s
            interval: 100ms
        "#
        )
    };
    let case = Case::new().spec(&spec("v1", false, open_port));
    let _reaper = Reaper::new(&case);
    let v1 = case.expect(["apply", "--yes"], 0);
    assert!(
        v1.stdout
            .contains(&format!("✓ stack: verified tcp 127.0.0.1:{open_port}")),
        "the stack gate passes while something listens:\n{v1}"
    );
    let before = case.state(stack)["resources"].clone();

    case.set_spec(&spec("v2", true, closed));
    let out = case.run(["apply", "--yes"]);
    // The progress shows the stack gate failing, and stderr names it.
    redact_closed_port(&case, closed);
    case.redact(open_port, "OPEN-PORT");
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `rb-stack-gate`:

      ~ conf (local.file)
          ~ content:
              - v1
              + v2

      + worker (local.process)
          + command      = "sleep"
          + args         = ["300"]
          + stop_timeout = 1

    Stack gates, once every change is made:
        gate: tcp 127.0.0.1:[CLOSED-PORT], timeout 1s

    Plan: 1 to add, 1 to change, 0 to destroy.

      + worker (local.process): created [TIME]
      ~ conf (local.file): updated [TIME]
      ✗ stack (verify): failed
    Rolling back the changes this run made…
      ↩ conf (local.file): rolled back [TIME]
      ↩ worker (local.process): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      stack: gate tcp 127.0.0.1:[CLOSED-PORT] failed: cannot connect to 127.0.0.1:[CLOSED-PORT]: connection refused (nothing listens there) [or timed out at the deadline] (gave up after 1s, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    // Both changes are undone (each call fails the test when its line is missing), after the
    // gate failed.
    let failed = line_of(&out, "✗ stack (verify): failed");
    assert!(failed < line_of(&out, "↩ worker (local.process): rolled back"));
    assert!(failed < line_of(&out, "↩ conf (local.file): rolled back"));
    assert_eq!(case.read("app.conf"), "v1\n");
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
    assert_eq!(case.state(stack)["resources"], before);
    drop(open);
    destroy_leaves_nothing(&case);
    assert!(!case.exists("app.conf"));
}
