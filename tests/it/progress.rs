//! What a run shows while it waits (src/render/waits.rs): without a terminal, a plain line once
//! a wait has lasted a second and again every interval (shortened here with the test-only
//! `FABRIK_PROGRESS_INTERVAL_MS`: the real one is 10 s), for a gate that retries, a Coolify
//! deployment in progress and a monitor paused while what it watches changes; under a
//! pseudo-terminal, a live line that is redrawn and cleared once the wait is over, with no
//! trace of it in what stays on the screen.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fabrik_testkit::coolify::{FakeCoolify, TOKEN};
use fabrik_testkit::http::{Response, Server};

use crate::harness::{Case, Output, dedent};

/// Runs `command` and calls `release` once its stderr has shown `lines` wait lines (`  … `):
/// the wait those lines show ends when the test has seen them, not at a moment a loaded machine
/// could miss, so the lines a snapshot holds do not depend on the machine's speed.
fn run_releasing(mut command: Command, lines: usize, release: impl FnOnce()) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the fabrik binary starts");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).expect("stdout is UTF-8");
        text
    });
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let (mut text, mut seen, mut release) = (String::new(), 0, Some(release));
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr is UTF-8") == 0 {
            break;
        }
        seen += usize::from(line.starts_with("  … "));
        text.push_str(&line);
        if seen >= lines
            && let Some(release) = release.take()
        {
            release();
        }
    }
    let status = child.wait().expect("fabrik ends");
    assert!(
        release.is_none(),
        "the run showed {lines} wait lines before it ended: {text}"
    );
    Output {
        code: status.code().unwrap_or(-1),
        stdout: reader.join().expect("stdout is read"),
        stderr: text,
    }
}

/// A health endpoint that answers 502 until the flag it returns is set, then 200.
fn held_server() -> (Server, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let server = Server::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            Response::text(200, "ok")
        } else {
            Response::text(502, "")
        }
    });
    (server, healthy)
}

/// One file gated by `server`'s `/health`.
fn gated_case(stack: &str, server: &Server) -> Case {
    let case = Case::new().spec(&format!(
        "stack: {stack}\n{}",
        dedent(&format!(
            r#"
            resources:
              page:
                type: local.file
                with: {{ path: page.txt, content: "hello\n" }}
                verify:
                  - http: "{url}/health"
                    timeout: 30s
                    interval: 100ms
            "#,
            url = server.url()
        ))
    ));
    case.redact(server.url(), "SERVER");
    case
}

#[test]
fn a_slow_gate_prints_a_plain_line_after_a_second_and_every_interval() {
    // Lines are due at 1 s and 2 s; the gate passes once both were seen, long before a third.
    let (server, healthy) = held_server();
    let case = gated_case("progress-gate", &server);
    let command = case
        .args(["apply", "--yes"])
        .env("FABRIK_PROGRESS_INTERVAL_MS", "1000")
        .command();
    let out = run_releasing(command, 2, || healthy.store(true, Ordering::SeqCst));
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `progress-gate`:

      + page (local.file)
          + path    = "page.txt"
          + content = <<EOT
              hello
            EOT
        gate: http [SERVER]/health expects 200, timeout 30s

    Plan: 1 to add, 0 to change, 0 to destroy.

      + page (local.file): created [TIME]
      ✓ page: verified http [SERVER]/health [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
      … page: gate http [SERVER]/health: expected status 200, got 502 Bad Gateway (empty body), 1s of 30s
      … page: gate http [SERVER]/health: expected status 200, got 502 Bad Gateway (empty body), 2s of 30s
    "#);
    assert!(
        !out.stderr.contains('\x1b') && !out.stderr.contains('\r'),
        "no control characters without a terminal: {:?}",
        out.stderr
    );
}

#[test]
fn a_gate_that_passes_at_once_prints_no_wait() {
    let (server, healthy) = held_server();
    healthy.store(true, Ordering::SeqCst);
    let case = gated_case("progress-quick", &server);
    let out = case
        .args(["apply", "--yes"])
        .env("FABRIK_PROGRESS_INTERVAL_MS", "1000")
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stderr, "", "a wait under a second is not shown");
}

#[test]
fn a_slow_deployment_prints_its_status_while_it_runs() {
    let fake = FakeCoolify::start();
    // In progress almost at once, and held there until both lines were seen.
    fake.set_deploy_duration(Duration::from_millis(90));
    fake.hold_deployments(true);
    fake.add_server("main");
    let case = Case::new()
        .spec(&format!(
            "stack: progress-deploy\n{}",
            dedent(&format!(
                r#"
                providers:
                  coolify: {{ url: "{url}", token: "${{secret.COOLIFY_TOKEN}}", poll_interval: 30ms }}
                secrets:
                  COOLIFY_TOKEN: {{}}
                resources:
                  api:
                    type: coolify.application
                    with:
                      project: shop
                      server: main
                      image: "ghcr.io/acme/shop-api:1.0"
                      ports: [8000]
                      deploy_timeout: 30s
                "#,
                url = fake.url(),
            ))
        ))
        .env("COOLIFY_TOKEN", TOKEN);
    case.redact(fake.url(), "COOLIFY");
    let command = case
        .args(["apply", "--yes"])
        .env("FABRIK_PROGRESS_INTERVAL_MS", "1000")
        .command();
    let out = run_releasing(command, 2, || fake.hold_deployments(false));
    let apps = fake.applications();
    let app = apps[0]["uuid"]
        .as_str()
        .expect("an application")
        .to_string();
    case.redact(&app, "APP");
    case.redact_matches(r"deployment \S+ of", "deployment [DEPLOYMENT] of");
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `progress-deploy`:

      + api (coolify.application)
          + project        = "shop"
          + environment    = "production"
          + server         = "main"
          + image          = "ghcr.io/acme/shop-api:1.0"
          + ports          = [8000]
          + domains        = []
          + env            = {}
          + deploy_timeout = "30s"

    Plan: 1 to add, 0 to change, 0 to destroy.

      + api (coolify.application): created [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
      … api: deployment [DEPLOYMENT] of application [APP]: in_progress, 1s of 30s
      … api: deployment [DEPLOYMENT] of application [APP]: in_progress, 2s of 30s
    "#);
    fake.assert_no_violations();
}

#[test]
fn a_monitor_paused_while_a_slow_gate_retries_shows_both_waits() {
    let fake = fabrik_testkit::uptimekuma::FakeKuma::start();
    // Healthy for the first apply; in the second, 502 until the monitor's and the gate's
    // lines were seen.
    let (server, healthy) = held_server();
    healthy.store(true, Ordering::SeqCst);
    let case = Case::new()
        .spec(&format!(
            "stack: progress-pause\n{}",
            dedent(&format!(
                r#"
                providers:
                  uptimekuma: {{ url: "{kuma}", username: admin, password: "${{secret.KUMA_PASSWORD}}" }}
                secrets:
                  KUMA_PASSWORD: {{}}
                resources:
                  web:
                    type: local.file
                    with: {{ path: version.txt, content: "${{env.VERSION}}" }}
                    verify:
                      - http: "{url}/health"
                        timeout: 30s
                        interval: 100ms
                  api:
                    type: uptimekuma.monitor
                    depends_on: [web]
                    with: {{ name: api up, type: http, url: "{url}/health" }}
                "#,
                kuma = fake.url(),
                url = server.url(),
            ))
        ))
        .env("KUMA_PASSWORD", fabrik_testkit::uptimekuma::PASSWORD)
        .env("FABRIK_PROGRESS_INTERVAL_MS", "1000");
    case.redact(fake.url(), "KUMA");
    case.redact(server.url(), "SERVER");
    let first = case.args(["apply", "--yes"]).env("VERSION", "v1").run();
    assert_eq!(first.code, 0, "{first}");
    healthy.store(false, Ordering::SeqCst);
    let command = case.args(["apply", "--yes"]).env("VERSION", "v2").command();
    let out = run_releasing(command, 2, || healthy.store(true, Ordering::SeqCst));
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `progress-pause`:

      ~ web (local.file)
          ~ content = "v1" → "v2"
        gate: http [SERVER]/health expects 200, timeout 30s

      ‖ api (uptimekuma.monitor): paused while web changes, resumed once its gates pass

    Plan: 0 to add, 1 to change, 0 to destroy.

      ‖ api (uptimekuma.monitor): paused while what it watches changes [TIME]
      ~ web (local.file): updated [TIME]
      ✓ web: verified http [SERVER]/health [TIME]
      ▸ api (uptimekuma.monitor): resumed [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
      … api: paused while web changes, 1s
      … web: gate http [SERVER]/health: expected status 200, got 502 Bad Gateway (empty body), 1s of 30s
    "#);
}

/// Runs `fabrik apply --yes` in `case` with a pseudo-terminal as its stdin, stdout and
/// stderr, calls `release` once the terminal has received `awaited`, and returns everything
/// the terminal received.
fn apply_on_a_terminal(
    case: &Case,
    awaited: &str,
    release: impl FnOnce() + Send + 'static,
) -> String {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
    grantpt(&controller).expect("grantpt");
    unlockpt(&controller).expect("unlockpt");
    let name = ptsname(&controller, Vec::new()).expect("ptsname");
    // Wide enough for the whole line: a narrower terminal cuts the answer short.
    let size = rustix::termios::Winsize {
        ws_row: 40,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&controller, size).expect("the terminal's size is set");
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("a UTF-8 name"))
        .expect("the terminal side opens");
    let mut command = case.args(["apply", "--yes"]).env("TERM", "xterm").command();
    command
        .stdin(Stdio::from(terminal.try_clone().unwrap()))
        .stdout(Stdio::from(terminal.try_clone().unwrap()))
        .stderr(Stdio::from(terminal));
    let mut child = command.spawn().expect("the fabrik binary starts");
    // The command holds the only other copies of the terminal side: once it exits, reading
    // ends (EIO on Linux).
    drop(command);
    let mut controller = std::fs::File::from(controller);
    let awaited = awaited.to_string();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut release = Some(release);
        loop {
            match controller.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if release.is_some()
                && String::from_utf8_lossy(&seen).contains(&awaited)
                && let Some(release) = release.take()
            {
                release();
            }
        }
        seen
    });
    let status = child.wait().expect("fabrik ends");
    let seen = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert!(status.success(), "the apply passes: {seen:?}");
    seen
}

#[test]
fn on_a_terminal_a_wait_is_a_live_line_cleared_when_it_ends() {
    let (server, healthy) = held_server();
    let case = gated_case("progress-live", &server);
    let live = format!(
        "page: gate http {}/health: expected status 200, got 502 Bad Gateway (empty body), 1s of \
         30s",
        server.url()
    );
    let seen = apply_on_a_terminal(&case, &live, move || healthy.store(true, Ordering::SeqCst));
    let drawn = seen
        .find(&live)
        .unwrap_or_else(|| panic!("the live line {live:?} was drawn: {seen:?}"));
    // Redrawn in place: carriage returns and erased lines, never a new line of its own.
    let erase = "\r\x1b[2K";
    assert!(seen.contains(erase), "lines are erased: {seen:?}");
    let verified = seen
        .find("✓ page: verified http")
        .unwrap_or_else(|| panic!("the gate's result is printed: {seen:?}"));
    assert!(drawn < verified, "{seen:?}");
    // Cleared before the result is printed: the last drawing of the line is erased.
    let last_drawn = seen.rfind("page: gate http").unwrap();
    assert!(
        seen[last_drawn..verified].contains(erase),
        "the live line is cleared before what follows: {seen:?}"
    );
    assert!(!seen[verified..].contains("page: gate http"), "{seen:?}");
    assert!(seen.contains("Apply complete: 1 added"), "{seen:?}");
    // What stays on the screen, erased lines taken out, has no trace of the wait.
    let screen = on_screen(&seen);
    assert!(!screen.contains("502"), "{screen}");
}

/// The text a terminal keeps of `seen`: a small screen that knows carriage returns, new
/// lines, erasing a line (`ESC [ 2 K`, `ESC [ K`) and moving up (`ESC [ n A`).
fn on_screen(seen: &str) -> String {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = seen.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                row += 1;
                if row == rows.len() {
                    rows.push(Vec::new());
                }
            }
            '\r' => col = 0,
            '\x1b' => {
                let mut code = String::new();
                for c in chars.by_ref() {
                    code.push(c);
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
                let n: usize = code
                    .trim_start_matches('[')
                    .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                    .parse()
                    .unwrap_or(1);
                match code.chars().last() {
                    Some('A') => row = row.saturating_sub(n),
                    Some('K') if code == "[2K" => rows[row].clear(),
                    Some('K') => rows[row].truncate(col),
                    _ => {}
                }
            }
            c => {
                let line = &mut rows[row];
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.resize(col, ' ');
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    rows.iter()
        .map(|r| r.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}
