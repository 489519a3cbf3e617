//! Plans list the gates that will run after each change, as the apply's progress names them,
//! and the stack's own gates once some object changes; none after a delete, a change to
//! fabrik's record alone or no change at all.

use serde_json::Value;

use crate::harness::Case;

const GATED: &str = r#"
    stack: gated
    secrets:
      TOKEN: {}
    verify:
      - command: ["test", "-f", "${config.path}"]
        timeout: 2m
    resources:
      config:
        type: local.file
        with: { path: app.conf, content: "port = 8000\n" }
        verify:
          - command: ["test", "-f", "${config.path}"]
          - tcp: "127.0.0.1:${var.port}"
            timeout: 5s
      pointer:
        type: local.file
        with: { path: pointer.txt, content: "${config.content_hash}\n" }
        verify:
          - http: "http://127.0.0.1:${var.port}/${pointer.content_hash}"
            status: 204
            body_contains: ok
          - command: ["test", "${secret.TOKEN}"]
          - dns: "x.example"
            type: TXT
            expect: ["a", "b"]
            nameserver: "127.0.0.1:53"
          - tls: "example.com"
            min_valid_days: 14
            timeout: 90s
    vars:
      port: { type: number, default: 8080 }
"#;

#[test]
fn a_plan_lists_the_gates_each_change_runs_and_the_stacks_own() {
    let case = Case::new().spec(GATED).env("TOKEN", "token-value-1");
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `gated`:

      + config (local.file)
          + path    = "app.conf"
          + content = <<EOT
              port = 8000
            EOT
        gate: command test -f app.conf, timeout 30s
        gate: tcp 127.0.0.1:8080, timeout 5s

      + pointer (local.file)
          + path    = "pointer.txt"
          + content = (known after apply)
        gate: http http://127.0.0.1:8080/${pointer.content_hash} expects 204 with "ok", timeout 30s
        gate: command (sensitive)
        gate: dns TXT x.example @127.0.0.1:53 expects a, b, timeout 30s
        gate: tls example.com:443 (valid 14+ days), timeout 1m30s

    Stack gates, once every change is made:
        gate: command test -f app.conf, timeout 2m

    Plan: 2 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
}

#[test]
fn plan_json_lists_the_gates_of_each_change_and_of_the_stack() {
    let case = Case::new().spec(GATED).env("TOKEN", "token-value-1");
    let out = case.expect(["plan", "--json"], 0);
    let plan: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        plan["changes"][0]["gates"],
        serde_json::json!([
            "command test -f app.conf, timeout 30s",
            "tcp 127.0.0.1:8080, timeout 5s"
        ]),
        "{plan:#}"
    );
    assert_eq!(
        plan["changes"][1]["gates"][1], "command (sensitive)",
        "a gate with a secret in it is named by its kind alone: {plan:#}"
    );
    assert_eq!(
        plan["gates"],
        serde_json::json!(["command test -f app.conf, timeout 2m"]),
        "{plan:#}"
    );
    assert!(!out.stdout.contains("token-value-1"), "{out}");
}

/// Gates run after changes to objects: a plan that deletes or changes only fabrik's record
/// lists none, and its JSON has no `gates` key.
#[test]
fn no_gates_are_listed_where_none_run() {
    let spec = r#"
        stack: quiet
        verify:
          - command: ["true"]
        resources:
          kept:
            type: local.file
            with: { path: kept.txt, content: "kept\n" }
            verify:
              - command: ["test", "-f", "${kept.path}"]
          dropped:
            type: local.file
            with: { path: dropped.txt, content: "dropped\n" }
    "#;
    let case = Case::new().spec(spec);
    case.expect(["apply", "--yes"], 0);
    // Only a delete: neither the kept resource's gates nor the stack's run.
    case.set_spec(
        r#"
        stack: quiet
        verify:
          - command: ["true"]
        resources:
          kept:
            type: local.file
            with: { path: kept.txt, content: "kept\n" }
            verify:
              - command: ["test", "-f", "${kept.path}"]
        "#,
    );
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `quiet`:

      - dropped (local.file)

    Plan: 0 to add, 0 to change, 1 to destroy.

    ----- stderr -----
    "#);
    let json: Value =
        serde_json::from_str(&case.expect(["plan", "--json"], 0).stdout).expect("JSON");
    assert!(json.get("gates").is_none(), "{json:#}");
    assert!(json["changes"][0].get("gates").is_none(), "{json:#}");
    case.expect(["apply", "--yes"], 0);
    // `protect` is fabrik's record alone: no provider call, no gate.
    case.set_spec(
        r#"
        stack: quiet
        verify:
          - command: ["true"]
        resources:
          kept:
            type: local.file
            with: { path: kept.txt, content: "kept\n" }
            protect: true
            verify:
              - command: ["test", "-f", "${kept.path}"]
        "#,
    );
    let out = case.expect(["plan"], 0);
    assert!(out.stdout.contains("~ kept"), "{out}");
    assert!(!out.stdout.contains("gate"), "{out}");
}

/// What the plan lists is bound: a saved plan whose gate changed since is refused.
#[test]
fn a_saved_plan_is_refused_once_a_gate_changed() {
    let spec = r#"
        stack: bound
        resources:
          page:
            type: local.file
            with: { path: page.txt, content: "hello\n" }
            verify:
              - command: ["grep", "-q", "hello", "${page.path}"]
    "#;
    let case = Case::new().spec(spec);
    case.expect(["plan", "--out", "p.json"], 0);
    let saved: Value = serde_json::from_str(&case.read("p.json")).expect("JSON");
    assert_eq!(
        saved["changes"][0]["gates"],
        serde_json::json!(["command grep -q hello page.txt, timeout 30s"])
    );
    case.set_spec(&spec.replace("-q\", \"hello", "-q\", \"bye"));
    let out = case.run(["apply", "p.json"]);
    fabrik_snapshot!(case, out.code_and_stderr(), @r#"
    exit code: 1
    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    "#);
    assert!(!case.exists("page.txt"));
}
