//! `plan --json`: valid JSON with the documented fields, and plans (text and JSON) that are the
//! same bytes every time for the same inputs.

use std::process::Stdio;

use serde_json::Value;

use crate::harness::Case;

const CHAIN: &str = r#"
    stack: shop
    resources:
      config:
        type: local.file
        with: { path: app.conf, content: "port = 8000\n", mode: "0600" }
      pointer:
        type: local.file
        with: { path: pointer.txt, content: "config at ${config.path}, ${config.content_hash}\n" }
"#;

fn plan_json(case: &Case) -> Value {
    let out = case.expect(["plan", "--json"], 0);
    assert!(out.stderr.is_empty(), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn is_hex(value: &Value, len: usize) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn plan_json_has_the_documented_fields() {
    let case = Case::new().spec(CHAIN);
    let plan = plan_json(&case);
    assert_eq!(plan["format"], "fabrik-plan");
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["stack"], "shop");
    assert!(is_hex(&plan["spec_hash"], 64), "{plan:#}");
    // No state yet: no lineage, serial 0.
    assert_eq!(plan["lineage"], "");
    assert_eq!(plan["serial"], 0);
    let changes = plan["changes"].as_array().expect("changes is a list");
    let names: Vec<&str> = changes
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["config", "pointer"], "dependency order");
    for change in changes {
        assert_eq!(change["type"], "local.file");
        assert_eq!(change["action"], "create");
        assert!(change["attributes"].is_array(), "{change:#}");
    }
    let pointer = &changes[1];
    let content = pointer["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "content")
        .expect("content is listed");
    assert_eq!(
        content["after_unknown"], true,
        "an output of a resource still to be created"
    );
    assert_eq!(pointer["depends_on"], serde_json::json!(["config"]));
    assert_eq!(
        plan["summary"],
        serde_json::json!({ "add": 2, "change": 0, "destroy": 0 })
    );
    let text = case.run(["plan", "--json"]);
    fabrik_snapshot!(case, text, @r#"
    exit code: 0
    ----- stdout -----
    {
      "format": "fabrik-plan",
      "format_version": 1,
      "stack": "shop",
      "spec": "[TEMP]/fabrik.yaml",
      "spec_hash": "[HASH]",
      "lineage": "",
      "serial": 0,
      "destroy": false,
      "refresh": true,
      "targets": [],
      "changes": [
        {
          "name": "config",
          "type": "local.file",
          "action": "create",
          "attributes": [
            {
              "name": "path",
              "after": "app.conf"
            },
            {
              "name": "content",
              "after": "port = 8000\n"
            },
            {
              "name": "mode",
              "after": "0600"
            }
          ],
          "depends_on": []
        },
        {
          "name": "pointer",
          "type": "local.file",
          "action": "create",
          "attributes": [
            {
              "name": "path",
              "after": "pointer.txt"
            },
            {
              "name": "content",
              "after_unknown": true
            }
          ],
          "depends_on": [
            "config"
          ]
        }
      ],
      "summary": {
        "add": 2,
        "change": 0,
        "destroy": 0
      }
    }

    ----- stderr -----
    "#);
}

#[test]
fn plan_json_binds_the_state_lineage_and_serial() {
    let case = Case::new().spec(CHAIN);
    case.expect(["apply", "--yes"], 0);
    let state = case.state("shop");
    let plan = plan_json(&case);
    assert!(is_hex(&plan["lineage"], 32), "{plan:#}");
    assert_eq!(plan["lineage"], state["lineage"]);
    assert_eq!(plan["serial"], state["serial"]);
    let actions: Vec<&Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["action"])
        .collect();
    assert_eq!(actions, ["no_op", "no_op"]);
    assert_eq!(
        plan["summary"],
        serde_json::json!({ "add": 0, "change": 0, "destroy": 0 })
    );
}

/// README ("Plan JSON"): only `replace_order`, `reason`, `drifted` and `deposed` are optional on
/// a change; `attributes` and `depends_on` are always there, empty or not, so consumers can
/// iterate them (`jq '.changes[].attributes[]'`) without a null check.
#[test]
fn plan_json_changes_always_carry_attributes_and_depends_on() {
    let case = Case::new().spec(CHAIN);
    case.expect(["apply", "--yes"], 0);
    let plan = plan_json(&case);
    for change in plan["changes"].as_array().unwrap() {
        assert_eq!(change["action"], "no_op");
        assert!(
            change["attributes"].is_array(),
            "no `attributes`: {change:#}"
        );
        assert!(
            change["depends_on"].is_array(),
            "no `depends_on`: {change:#}"
        );
    }
}

#[test]
fn same_inputs_render_the_same_bytes() {
    let case = Case::new().spec(CHAIN).env("UNUSED", "1");
    for args in [&["plan"][..], &["plan", "--json"]] {
        let first = case.expect(args, 0);
        let second = case.expect(args, 0);
        assert_eq!(first.stdout, second.stdout, "{args:?} differs between runs");
    }
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&CHAIN.replace("port = 8000", "port = 9000"));
    for args in [&["plan"][..], &["plan", "--json"]] {
        let first = case.expect(args, 0);
        let second = case.expect(args, 0);
        assert_eq!(first.stdout, second.stdout, "{args:?} differs between runs");
    }
}

/// `fabrik plan --json | head` closes the pipe early: fabrik must stop quietly, not panic.
/// The plan is larger than a pipe's buffer, so the write fails whatever the timing.
#[test]
fn closed_stdout_pipe_does_not_panic() {
    let mut yaml = String::from("stack: wide\nresources:\n");
    for i in 0..2000 {
        yaml.push_str(&format!(
            "  f{i}:\n    type: local.file\n    with: {{ path: f{i}.txt, content: \"file {i}\\n\" }}\n"
        ));
    }
    let case = Case::new();
    case.write("fabrik.yaml", yaml);
    let mut child = case
        .args(["plan", "--json"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fabrik binary starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("fabrik finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "fabrik panicked on a closed pipe:\n{stderr}"
    );
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
