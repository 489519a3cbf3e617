//! Deploy-aware monitoring through the binary, against the Uptime Kuma fake
//! (providers/testkit/src/uptimekuma.rs): a monitor whose dependencies change is paused before
//! the change and resumed once its gates pass, or after the rollback; a run killed while it is
//! paused is healed by the next apply; opted-out and paused monitors are left alone, and a run
//! that changes nothing a monitor watches does not pause it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabrik_testkit::uptimekuma::{FakeKuma, PASSWORD};
use serde_json::Value;

use crate::harness::{Case, dedent};

/// The HTTP endpoint a gate asks: it answers 200 (or 500 while `failing`) and notes, for each
/// request, how many events Uptime Kuma had received and whether the monitor `api up` was
/// active, so a test can place the gate between the pause and the resume.
struct Gate {
    port: u16,
    failing: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(usize, bool)>>>,
}

impl Gate {
    fn start(fake: &Arc<FakeKuma>) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let failing = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (fake, fails, log) = (Arc::clone(fake), Arc::clone(&failing), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let active = fake
                    .monitors()
                    .iter()
                    .find(|m| m["name"] == "api up")
                    .is_some_and(|m| m["active"] == Value::Bool(true));
                log.lock().unwrap().push((fake.events().len(), active));
                let status = if fails.load(Ordering::SeqCst) {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            }
        });
        Gate {
            port,
            failing,
            seen,
        }
    }

    fn seen(&self) -> Vec<(usize, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

/// A file `web` gated by an HTTP check, and monitors that depend on it: `api` (the default),
/// and whatever `extra` adds (resources indented by two spaces).
fn spec(stack: &str, fake: &FakeKuma, gate: &Gate, extra: &str) -> String {
    format!(
        "stack: {stack}\n{}{}",
        dedent(&format!(
            r#"
            providers:
              uptimekuma: {{ url: "{url}", username: admin, password: "${{secret.KUMA_PASSWORD}}" }}
            secrets:
              KUMA_PASSWORD: {{}}
            resources:
              web:
                type: local.file
                with: {{ path: site/version.txt, content: "${{env.VERSION}}" }}
                verify:
                  - http: "http://127.0.0.1:{port}/health"
                    timeout: 1s
                    interval: 100ms
              api:
                type: uptimekuma.monitor
                depends_on: [web]
                with: {{ name: api up, type: http, url: "http://127.0.0.1:{port}/health" }}
            "#,
            url = fake.url(),
            port = gate.port,
        )),
        extra
    )
}

fn case(stack: &str, fake: &FakeKuma, gate: &Gate, extra: &str) -> Case {
    let case = Case::new()
        .spec(&spec(stack, fake, gate, extra))
        .env("KUMA_PASSWORD", PASSWORD)
        .env("VERSION", "v1");
    case.redact(fake.url(), "KUMA");
    case.redact(gate.port, "GATE");
    case
}

fn started() -> (Arc<FakeKuma>, Gate) {
    let fake = Arc::new(FakeKuma::start());
    let gate = Gate::start(&fake);
    (fake, gate)
}

fn active(fake: &FakeKuma, name: &str) -> bool {
    fake.monitors()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("a monitor named {name}"))["active"]
        == Value::Bool(true)
}

/// The pauses and resumes Uptime Kuma received from `from` on.
fn pause_events(fake: &FakeKuma, from: usize) -> Vec<String> {
    fake.events()[from..]
        .iter()
        .filter(|e| matches!(e.as_str(), "pauseMonitor" | "resumeMonitor"))
        .cloned()
        .collect()
}

/// Where `event` is in what Uptime Kuma received, from `from` on.
fn position(events: &[String], event: &str, from: usize) -> Option<usize> {
    events[from..]
        .iter()
        .position(|e| e == event)
        .map(|i| i + from)
}

#[test]
fn a_monitor_is_paused_while_its_service_changes_and_resumed_once_its_gates_pass() {
    let (fake, gate) = started();
    let case = case("pause-ok", &fake, &gate, "");
    case.expect(["apply", "--yes"], 0);
    assert!(
        !fake.events().iter().any(|e| e == "pauseMonitor"),
        "a monitor created in this run is not paused"
    );

    let case = case.env("VERSION", "v2");
    let plan = case.run(["plan"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `pause-ok`:

      ~ web (local.file)
          ~ content = "v1" → "v2"
        gate: http http://127.0.0.1:[GATE]/health expects 200, timeout 1s

      ‖ api (uptimekuma.monitor): paused while web changes, resumed once its gates pass

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    let json: Value = serde_json::from_str(&case.run(["plan", "--json"]).stdout).unwrap();
    assert_eq!(
        json["pauses"],
        serde_json::json!([{"name": "api", "type": "uptimekuma.monitor", "watches": ["web"]}])
    );

    let before = fake.events().len();
    let asked = gate.seen().len();
    let applied = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, applied, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `pause-ok`:

      ~ web (local.file)
          ~ content = "v1" → "v2"
        gate: http http://127.0.0.1:[GATE]/health expects 200, timeout 1s

      ‖ api (uptimekuma.monitor): paused while web changes, resumed once its gates pass

    Plan: 0 to add, 1 to change, 0 to destroy.

      ‖ api (uptimekuma.monitor): paused while what it watches changes [TIME]
      ~ web (local.file): updated [TIME]
      ✓ web: verified http http://127.0.0.1:[GATE]/health [TIME]
      ▸ api (uptimekuma.monitor): resumed [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let events = fake.events();
    let paused = position(&events, "pauseMonitor", before).expect("the monitor was paused");
    let resumed = position(&events, "resumeMonitor", paused).expect("and resumed");
    let gates = &gate.seen()[asked..];
    assert!(!gates.is_empty(), "the gate was asked");
    for &(at, monitor_active) in gates {
        assert!(
            paused < at && at <= resumed,
            "the gate ran while the monitor was paused: {events:?}, gate at {at}"
        );
        assert!(!monitor_active, "the monitor was paused during the gate");
    }
    assert!(active(&fake, "api up"));
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0,
        "nothing left to do, the monitor active as recorded"
    );
    fake.assert_no_violations();
}

#[test]
fn a_failed_gate_rolls_back_and_resumes_the_monitor() {
    let (fake, gate) = started();
    let case = case("pause-rollback", &fake, &gate, "");
    case.expect(["apply", "--yes"], 0);
    gate.failing.store(true, Ordering::SeqCst);
    let case = case.env("VERSION", "v2");
    let before = fake.events().len();
    let failed = case.run(["apply", "--yes"]);
    case.redact_matches(r"after \d+ attempts", "after N attempts");
    fabrik_snapshot!(case, failed, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `pause-rollback`:

      ~ web (local.file)
          ~ content = "v1" → "v2"
        gate: http http://127.0.0.1:[GATE]/health expects 200, timeout 1s

      ‖ api (uptimekuma.monitor): paused while web changes, resumed once its gates pass

    Plan: 0 to add, 1 to change, 0 to destroy.

      ‖ api (uptimekuma.monitor): paused while what it watches changes [TIME]
      ~ web (local.file): updated [TIME]
      ✗ web (local.file): failed
    Rolling back the changes this run made…
      ↩ web (local.file): rolled back [TIME]
      ▸ api (uptimekuma.monitor): resumed [TIME]

    ----- stderr -----
    error: apply failed:
      web: gate http http://127.0.0.1:[GATE]/health failed: expected status 200, got 500 Internal Server Error (body: "ok") (gave up after 1s, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(failed.code, 3, "rolled back:\n{failed}");
    let events = fake.events();
    let paused = position(&events, "pauseMonitor", before).expect("the monitor was paused");
    position(&events, "resumeMonitor", paused).expect("and resumed by the rollback");
    assert!(active(&fake, "api up"));
    assert_eq!(
        case.read("site/version.txt"),
        "v1",
        "the change was rolled back"
    );
    fake.assert_no_violations();
}

/// A stack applied once, then an apply of `VERSION=v2` killed with SIGKILL while the monitor
/// is paused and the gate of the change is being asked; the gate passes from then on.
fn killed_while_paused(stack: &str) -> (Arc<FakeKuma>, Gate, Case) {
    let (fake, gate) = started();
    // A gate that keeps failing for long enough to kill the run while it waits.
    let case = case(stack, &fake, &gate, "")
        .spec(&spec(stack, &fake, &gate, "").replace("timeout: 1s", "timeout: 60s"));
    case.expect(["apply", "--yes"], 0);
    gate.failing.store(true, Ordering::SeqCst);
    let case = case.env("VERSION", "v2");
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fabrik starts");
    // Killed while its gate is being asked: the change is in, the monitor paused.
    let asked = gate.seen().len();
    let started = Instant::now();
    while active(&fake, "api up") || gate.seen().len() == asked {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the monitor was never paused"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    gate.failing.store(false, Ordering::SeqCst);
    (fake, gate, case)
}

#[test]
fn a_run_killed_while_a_monitor_is_paused_is_healed_by_the_next_apply() {
    let (fake, _gate, case) = killed_while_paused("pause-killed");

    // A plan changes nothing: it says what the next apply will do.
    let planned = case.run(["plan"]);
    fabrik_snapshot!(case, planned.code_and_stderr(), @r"
    exit code: 0
    ----- stderr -----
    Recovered from an interrupted run:
      api: may have been left paused by the interrupted run; the next apply resumes it
    ");
    assert!(!active(&fake, "api up"), "a plan resumes nothing");

    let healed = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, healed, @r"
    exit code: 0
    ----- stdout -----
    Recovered from an interrupted run:
      api: resumed (the interrupted run had paused it while what it watches changed)

    fabrik will make these changes to stack `pause-killed`:

      ~ web (local.file)  # its gates have not passed since its last change
        gate: http http://127.0.0.1:[GATE]/health expects 200, timeout 1m

    Plan: 0 to add, 1 to change, 0 to destroy.

      ✓ web: verified http http://127.0.0.1:[GATE]/health [TIME]

    Apply complete: 0 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    assert!(active(&fake, "api up"));
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0,
        "nothing else is left to do"
    );
    fake.assert_no_violations();
}

#[test]
fn opted_out_paused_and_unrelated_monitors_are_left_alone() {
    let (fake, gate) = started();
    let extra = "  quiet:
    type: uptimekuma.monitor
    depends_on: [web]
    with: { name: quiet, type: http, url: \"https://quiet.example.com\", pause_during_changes: false }
  stopped:
    type: uptimekuma.monitor
    depends_on: [web]
    with: { name: stopped, type: http, url: \"https://stopped.example.com\", paused: true }
  other:
    type: local.file
    with: { path: site/other.txt, content: \"${env.OTHER:-one}\" }
  elsewhere:
    type: uptimekuma.monitor
    depends_on: [other]
    with: { name: elsewhere, type: http, url: \"https://elsewhere.example.com\" }
";
    let case = case("pause-alone", &fake, &gate, extra);
    case.expect(["apply", "--yes"], 0);

    // Only `other` changes: `elsewhere` watches it, the monitors of `web` are not touched.
    let before = fake.events().len();
    let other = case.env("OTHER", "two");
    let applied = other.run(["apply", "--yes"]);
    assert_eq!(applied.code, 0, "{applied}");
    let pauses = pause_events(&fake, before);
    assert_eq!(
        pauses,
        ["pauseMonitor", "resumeMonitor"],
        "only `elsewhere`"
    );
    assert!(
        applied
            .stdout
            .contains("elsewhere (uptimekuma.monitor): paused"),
        "{applied}"
    );

    // `web` changes: only `api` is paused; the opted-out and the paused ones are not.
    let before = fake.events().len();
    let web = other.env("VERSION", "v2");
    let plan = web.run(["plan"]);
    assert!(plan.stdout.contains("‖ api (uptimekuma.monitor)"), "{plan}");
    for name in ["quiet", "stopped", "elsewhere"] {
        assert!(
            !plan.stdout.contains(&format!("‖ {name} ")),
            "{name} is not paused:\n{plan}"
        );
    }
    web.expect(["apply", "--yes"], 0);
    let pauses = pause_events(&fake, before);
    assert_eq!(pauses, ["pauseMonitor", "resumeMonitor"], "only `api`");
    assert!(active(&fake, "quiet") && active(&fake, "api up"));
    assert!(!active(&fake, "stopped"), "a paused monitor stays paused");

    // Nothing a monitor watches changes: nothing is paused.
    let before = fake.events().len();
    let note = "  note:\n    type: local.file\n    with: { path: site/note.txt, content: hi }\n";
    web.set_spec(&spec(
        "pause-alone",
        &fake,
        &gate,
        &format!("{extra}{note}"),
    ));
    let plan = web.run(["plan"]);
    assert!(!plan.stdout.contains('‖'), "{plan}");
    web.expect(["apply", "--yes"], 0);
    assert!(
        !fake.events()[before..].iter().any(|e| e == "pauseMonitor"),
        "nothing was paused"
    );
    fake.assert_no_violations();
}

/// The monitor's own update in the same run comes after its resume: it starts from an active
/// monitor and leaves it as the spec says.
#[test]
fn a_monitor_updated_in_the_same_run_is_resumed_before_its_update() {
    let (fake, gate) = started();
    let case = case("pause-update", &fake, &gate, "");
    case.expect(["apply", "--yes"], 0);
    let changed = spec("pause-update", &fake, &gate, "").replace(
        "name: api up, type: http,",
        "name: api up, type: http, interval: 30s,",
    );
    let case = case.env("VERSION", "v2").spec(&changed);
    let before = fake.events().len();
    let applied = case.run(["apply", "--yes"]);
    assert_eq!(applied.code, 0, "{applied}");
    let order: Vec<String> = fake.events()[before..]
        .iter()
        .filter(|e| matches!(e.as_str(), "pauseMonitor" | "resumeMonitor" | "editMonitor"))
        .cloned()
        .collect();
    assert_eq!(order, ["pauseMonitor", "resumeMonitor", "editMonitor"]);
    let progress = &applied.stdout[applied.stdout.find("Plan:").unwrap()..];
    let resumed = progress.find("▸ api").expect("resumed");
    let updated = progress.find("~ api").expect("updated");
    assert!(resumed < updated, "{applied}");
    assert!(active(&fake, "api up"));
    assert_eq!(
        fake.monitors()
            .iter()
            .find(|m| m["name"] == "api up")
            .unwrap()["interval"],
        30
    );
}

/// A stack gate that fails after the monitor was resumed: the rollback pauses it again while
/// it undoes the change, then resumes it.
#[test]
fn a_rollback_after_the_resume_pauses_the_monitor_again() {
    let (fake, gate) = started();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let stack_gate = format!("verify:\n  - tcp: \"127.0.0.1:{port}\"\n    timeout: 500ms\n");
    let case = case("pause-again", &fake, &gate, "");
    case.expect(["apply", "--yes"], 0);
    let case = case
        .env("VERSION", "v2")
        .spec(&spec("pause-again", &fake, &gate, &stack_gate));
    let before = fake.events().len();
    let failed = case.run(["apply", "--yes"]);
    assert_eq!(failed.code, 3, "{failed}");
    assert_eq!(
        pause_events(&fake, before),
        [
            "pauseMonitor",
            "resumeMonitor",
            "pauseMonitor",
            "resumeMonitor"
        ]
    );
    assert!(active(&fake, "api up"));
    assert_eq!(case.read("site/version.txt"), "v1");
}

/// A saved plan binds its pauses with the rest, and applying it pauses as it shows.
#[test]
fn a_saved_plan_shows_and_makes_its_pauses() {
    let (fake, gate) = started();
    let case = case("pause-saved", &fake, &gate, "");
    case.expect(["apply", "--yes"], 0);
    let case = case.env("VERSION", "v2");
    case.expect(["plan", "--out", "release.plan"], 0);
    let saved: Value = serde_json::from_str(&case.read("release.plan")).unwrap();
    assert_eq!(saved["pauses"][0]["watches"], serde_json::json!(["web"]));
    let before = fake.events().len();
    case.expect(["apply", "release.plan"], 0);
    assert_eq!(
        pause_events(&fake, before),
        ["pauseMonitor", "resumeMonitor"]
    );
}

/// A failed run that keeps its changes (`--no-rollback`) still resumes the monitor.
#[test]
fn a_failed_run_without_rollback_resumes_the_monitor() {
    let (fake, gate) = started();
    let case = case("pause-kept", &fake, &gate, "");
    case.expect(["apply", "--yes"], 0);
    gate.failing.store(true, Ordering::SeqCst);
    let case = case.env("VERSION", "v2");
    let before = fake.events().len();
    let failed = case.run(["apply", "--yes", "--no-rollback"]);
    assert_eq!(failed.code, 4, "{failed}");
    assert_eq!(
        pause_events(&fake, before),
        ["pauseMonitor", "resumeMonitor"]
    );
    assert!(active(&fake, "api up"));
    assert_eq!(case.read("site/version.txt"), "v2", "the change stays");
}

/// A monitor that cannot be paused (its marker was removed in the UI since the last apply, so
/// it is no longer fabrik's to touch) holds back the change it watches: the run fails before
/// that change starts, and changes nothing.
#[test]
fn a_monitor_that_cannot_be_paused_holds_the_change_back() {
    let (fake, gate) = started();
    let case = case("pause-gone", &fake, &gate, "");
    case.expect(["apply", "--yes"], 0);
    let id = fake
        .monitors()
        .iter()
        .find(|m| m["name"] == "api up")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    fake.edit_monitor(id, serde_json::json!({"description": ""}));
    let case = case.env("VERSION", "v2");
    let failed = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, failed, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `pause-gone`:

      ~ web (local.file)
          ~ content = "v1" → "v2"
        gate: http http://127.0.0.1:[GATE]/health expects 200, timeout 1s

      ‖ api (uptimekuma.monitor): paused while web changes, resumed once its gates pass

    Plan: 0 to add, 1 to change, 0 to destroy.

      ✗ api (uptimekuma.monitor): failed
    Rolling back the changes this run made…

    ----- stderr -----
    error: apply failed:
      api: could not pause it while what it watches changes: cannot pause monitor 1: its description no longer carries `fabrik:pause-gone/api`, so fabrik leaves it alone. Put the line back to manage it again, or remove the resource from the state (`fabrik state rm`)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(
        case.read("site/version.txt"),
        "v1",
        "the change never started"
    );
}

/// After a kill while the monitor was paused, a spec that now says `paused: true` keeps it
/// paused: recovery does not resume it, and the apply records it so.
#[test]
fn a_monitor_the_spec_now_pauses_stays_paused_after_a_kill() {
    let (fake, gate, case) = killed_while_paused("pause-kept-paused");
    let paused = spec("pause-kept-paused", &fake, &gate, "")
        .replace("timeout: 1s", "timeout: 60s")
        .replace(
            "name: api up, type: http,",
            "name: api up, type: http, paused: true,",
        );
    case.set_spec(&paused);
    let before = fake.events().len();
    let applied = case.run(["apply", "--yes"]);
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied
            .stdout
            .contains("api: left paused, as the spec now says"),
        "{applied}"
    );
    assert!(
        pause_events(&fake, before).is_empty(),
        "{:?}",
        fake.events()
    );
    assert!(!active(&fake, "api up"));
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0,
        "recorded as paused"
    );
}

/// A small model: random steps over two files (one gated) and two monitors that watch random
/// ones, one maybe kept paused, opted out at random, some runs failing their gate. After each apply: the exit code
/// is what the gate decides, exactly the monitors whose watched files changed were paused and
/// every one of them was resumed, and every monitor is active unless its applied spec says
/// `paused: true`.
#[test]
fn model_pauses_are_balanced_and_leave_every_monitor_as_its_spec_says() {
    #[derive(Clone, Copy, Default)]
    struct Monitor {
        watches: [bool; 2],
        paused: bool,
        opted_out: bool,
    }
    let (fake, gate) = started();
    let stack = "pause-model";
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (rng >> 33) % n
    };
    // What the last successful apply left: file versions, monitors (as applied).
    let mut files: [Option<u64>; 2] = [None, None];
    let mut monitors: [Option<Monitor>; 2] = [None, None];
    // A monitor's own `paused` stays as first written: flipping it is an update that pauses
    // or resumes through the same events, which this model does not count.
    let kept_paused = [false, next(2) == 0];
    // (monitors paused, runs rolled back): the seed must exercise both.
    let mut exercised = (0, 0);
    let case = Case::new().env("KUMA_PASSWORD", PASSWORD);
    case.redact(fake.url(), "KUMA");
    for step in 0..14 {
        let versions = [next(3), next(3)];
        let wanted: [Monitor; 2] = std::array::from_fn(|m| Monitor {
            watches: [next(2) == 0, next(2) == 0],
            paused: kept_paused[m],
            opted_out: next(5) == 0,
        });
        let failing = next(4) == 0;
        gate.failing.store(failing, Ordering::SeqCst);
        let mut yaml = format!(
            "stack: {stack}\nproviders:\n  uptimekuma: {{ url: \"{}\", username: admin, password: \"${{secret.KUMA_PASSWORD}}\" }}\nsecrets:\n  KUMA_PASSWORD: {{}}\nresources:\n",
            fake.url()
        );
        for (i, v) in versions.iter().enumerate() {
            let _ = std::fmt::Write::write_fmt(
                &mut yaml,
                format_args!(
                    "  f{i}:\n    type: local.file\n    with: {{ path: site/f{i}.txt, content: \"v{v}\" }}\n"
                ),
            );
            // Only `f0` has a gate.
            if i == 0 {
                yaml.push_str(&format!(
                    "    verify:\n      - http: \"http://127.0.0.1:{}/health\"\n        timeout: 300ms\n        interval: 100ms\n",
                    gate.port
                ));
            }
        }
        for (m, w) in wanted.iter().enumerate() {
            let deps: Vec<String> = (0..2)
                .filter(|&f| w.watches[f])
                .map(|f| format!("f{f}"))
                .collect();
            let _ = std::fmt::Write::write_fmt(
                &mut yaml,
                format_args!(
                    "  m{m}:\n    type: uptimekuma.monitor\n    depends_on: [{}]\n    with: {{ name: m{m}, type: http, url: \"https://m{m}.example.com\", paused: {}, pause_during_changes: {} }}\n",
                    deps.join(", "),
                    w.paused,
                    !w.opted_out
                ),
            );
        }
        case.set_spec(&yaml);
        let changed: [bool; 2] = std::array::from_fn(|f| files[f] != Some(versions[f]));
        let expected_pauses = (0..2)
            .filter(|&m| {
                monitors[m].is_some_and(|old| {
                    !old.paused
                        && !old.opted_out
                        && !wanted[m].paused
                        && !wanted[m].opted_out
                        && (0..2).any(|f| wanted[m].watches[f] && changed[f])
                })
            })
            .count();
        let expected_code = if failing && changed[0] { 3 } else { 0 };
        let before = fake.events().len();
        let out = case.run(["apply", "--yes"]);
        let context = format!("step {step}:\n{yaml}\n{out}");
        assert_eq!(out.code, expected_code, "{context}");
        let events = pause_events(&fake, before);
        let count = |e: &str| events.iter().filter(|x| *x == e).count();
        assert_eq!(count("pauseMonitor"), expected_pauses, "{context}");
        assert_eq!(count("resumeMonitor"), expected_pauses, "{context}");
        exercised.0 += expected_pauses;
        exercised.1 += usize::from(expected_code == 3);
        if expected_code == 0 {
            files = versions.map(Some);
            monitors = wanted.map(Some);
        }
        for (m, applied) in monitors.iter().enumerate() {
            if let Some(applied) = applied {
                assert_eq!(
                    active(&fake, &format!("m{m}")),
                    !applied.paused,
                    "m{m} after {context}"
                );
            }
        }
    }
    assert!(exercised.0 > 0 && exercised.1 > 0, "{exercised:?}");
    fake.assert_no_violations();
}
