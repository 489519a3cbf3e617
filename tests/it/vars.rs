//! Variables through the real binary: values rise from the default through the vars file and
//! `FABRIK_VAR_<NAME>` to `--var`; a whole-string reference keeps the variable's type where the
//! field's kind matters; a sensitive variable is never shown or stored; a saved plan is stale
//! once a variable's value changes. The refusals of bad values are in `bad_inputs.rs`.

use crate::harness::Case;

const GREETING: &str = r#"
    stack: hello
    vars:
      who:
        description: Whom the file greets.
        default: from the default
    resources:
      greeting:
        type: local.file
        with: { path: greeting.txt, content: "hello ${var.who}" }
"#;

#[test]
fn values_rise_from_default_to_vars_file_to_environment_to_command_line() {
    let case = Case::new().spec(GREETING);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("greeting.txt"), "hello from the default");

    case.write("fabrik.vars.yaml", "who: from the vars file\n");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("greeting.txt"), "hello from the vars file");

    // `--vars-file` replaces the file beside the spec.
    case.write("prod.yaml", "who: from prod.yaml\n");
    case.expect(["apply", "--yes", "--vars-file", "prod.yaml"], 0);
    assert_eq!(case.read("greeting.txt"), "hello from prod.yaml");

    case.args(["apply", "--yes"])
        .env("FABRIK_VAR_who", "from the environment")
        .run();
    assert_eq!(case.read("greeting.txt"), "hello from the environment");

    let out = case
        .args(["apply", "--yes", "--var", "who=from --var"])
        .env("FABRIK_VAR_who", "from the environment")
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(case.read("greeting.txt"), "hello from --var");

    // The vars file beside the spec still counts once the others are gone.
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("greeting.txt"), "hello from the vars file");
}

/// `stop_timeout` is an integer field and `args` a list: a variable of the right type, used
/// alone, arrives as that type; numbers from `--var` are parsed, lists given as JSON.
#[test]
fn a_typed_variable_used_whole_keeps_its_type() {
    let case = Case::new().spec(
        r#"
        stack: typed
        vars:
          args: { type: list, default: ["300"] }
          timeout: { type: number, default: 3 }
          environment: { type: map, default: { MODE: quiet } }
          label: { type: number, default: 7 }
        resources:
          worker:
            type: local.process
            with:
              command: sleep
              args: "${var.args}"
              env: "${var.environment}"
              stop_timeout: "${var.timeout}"
              dir: "run-${var.label}"
        "#,
    );
    let out = case.run([
        "plan",
        "--var",
        r#"args=["60", "extra"]"#,
        "--var",
        "timeout=5",
    ]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `typed`:

      + worker (local.process)
          + command      = "sleep"
          + args         = ["60","extra"]
          + env          = {"MODE":"quiet"}
          + dir          = "run-7"
          + stop_timeout = 5

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);

    // A string where the field wants a whole number is the field's error, where it is used.
    case.set_spec(
        r#"
        stack: typed
        vars:
          timeout: { default: "3" }
        resources:
          worker:
            type: local.process
            with: { command: sleep, stop_timeout: "${var.timeout}" }
        "#,
    );
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `worker` (local.process): `stop_timeout` must be a whole number of seconds
      --> fabrik.yaml:7:43
      |
    7 |     with: { command: sleep, stop_timeout: "${var.timeout}" }
      |                                           ^^^^^^^^^^^^^^^^
    "#);
}

const SENSITIVE: &str = r#"
    stack: quiet
    vars:
      token: { sensitive: true }
    resources:
      config:
        type: local.file
        with: { path: app.conf, content: "token=${var.token}\n" }
"#;

/// Never in the plan, a saved plan, the apply's output, an error, the lock, the state or the
/// journal of a run in flight.
#[test]
fn a_sensitive_variable_is_never_shown_or_stored() {
    const VALUE: &str = "hunter2-variable-value";
    let case = Case::new().spec(SENSITIVE);
    let plan = case.expect(
        [
            "plan",
            "--out",
            "p.json",
            "--var",
            &format!("token={VALUE}"),
        ],
        0,
    );
    let apply = case.expect(["apply", "p.json", "--var", &format!("token={VALUE}")], 0);
    let json = case.expect(["plan", "--json", "--var", &format!("token={VALUE}")], 0);
    let bad = case.run([
        "plan",
        "--var",
        &format!("token={VALUE}"),
        "--var",
        "nope=1",
    ]);
    for out in [&plan, &apply, &json, &bad] {
        assert!(!out.stdout.contains(VALUE), "{out}");
        assert!(!out.stderr.contains(VALUE), "{out}");
    }
    assert!(plan.stdout.contains("(sensitive)"), "{plan}");
    assert_eq!(case.read("app.conf"), format!("token={VALUE}\n"));
    assert!(!case.read("p.json").contains(VALUE));
    let files = case.state_files();
    assert!(!files.is_empty());
    for (path, bytes) in files {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(VALUE),
            "{} holds the value",
            path.display()
        );
    }
    // Changing it is an update, shown by hash only.
    let out = case.run(["plan", "--var", "token=another-value-entirely"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `quiet`:

      ~ config (local.file)
          ~ content: (sensitive value changed)

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    ");

    // The journal, while a run is in flight: a failing stack gate holds the run open after the
    // file was updated with a new value, and every file of the state is checked meanwhile.
    const NEW: &str = "second-variable-value";
    let gate = crate::live::closed_port();
    case.set_spec(&format!(
        "{}verify:\n  - {{ tcp: \"127.0.0.1:{}\", timeout: 2s, interval: 100ms }}\n",
        crate::harness::dedent(SENSITIVE),
        gate.port
    ));
    let mut child = case
        .args(["apply", "--yes", "--var", &format!("token={NEW}")])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the fabrik binary starts");
    let journal = case.path(".fabrik/quiet.journal");
    let mut journal_seen = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait for the run").is_none()
        && std::time::Instant::now() < deadline
    {
        if let Ok(bytes) = std::fs::read(&journal) {
            journal_seen |= !bytes.is_empty();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(NEW),
                "the journal holds it"
            );
        }
        for (path, bytes) in case.state_files() {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(NEW), "{} holds it", path.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let gated = child.wait_with_output().expect("the run ends");
    assert!(journal_seen, "the journal was seen during the run");
    assert_eq!(
        gated.status.code(),
        Some(3),
        "the gate fails and the run rolls back"
    );
    for stream in [&gated.stdout, &gated.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(NEW));
    }
}

#[test]
fn a_saved_plan_is_stale_once_a_variable_changed() {
    let case = Case::new().spec(GREETING);
    case.expect(["plan", "--out", "p.json", "--var", "who=world"], 0);
    let out = case.run(["apply", "p.json", "--var", "who=moon"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the value of variable `who` changed since the plan was made (give the same `--var`, `FABRIK_VAR_…` and vars file as then)
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert!(!case.exists("greeting.txt"));
    // Without the `--var` it was made with, the default differs as well.
    let out = case.run(["apply", "p.json"]);
    assert_eq!(out.code, 1, "{out}");
    case.expect(["apply", "p.json", "--var", "who=world"], 0);
    assert_eq!(case.read("greeting.txt"), "hello world");
}

#[test]
fn validate_names_the_variables_a_run_must_give() {
    let case = Case::new().spec(
        r#"
        stack: open
        vars:
          region: {}
          replicas: { type: number, default: 2 }
          token:
            sensitive: true
            description: >
              The API token,
              from the dashboard.
        resources:
          f:
            type: local.file
            with: { path: "${var.region}.txt", content: "${var.replicas} ${var.token}" }
        "#,
    );
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 0
    ----- stdout -----
    fabrik.yaml is valid: stack `open`, 1 resource.
    Variables a run must give a value (--var, FABRIK_VAR_NAME or fabrik.vars.yaml): `region`, `token`
      token: The API token, from the dashboard.

    ----- stderr -----
    ");
}

/// A sensitive value is hidden from the output by its text, so one too short to hide safely is
/// refused before anything runs, as a short secret is.
#[test]
fn a_short_sensitive_value_is_refused_and_nothing_changes() {
    let case = Case::new().spec(
        r#"
        stack: short
        vars:
          pin: { sensitive: true }
        resources:
          f:
            type: local.file
            with: { path: pin.txt, content: "${var.pin}" }
        "#,
    );
    let out = case.run(["apply", "--yes", "--var", "pin=1234"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `pin` is sensitive, and its value is shorter than 8 characters: fabrik's output could not hide it
    use a longer value, or declare the variable without `sensitive: true` if it is not secret
    ");
    assert!(!case.exists("pin.txt"));
}
