//! The state file and the commands that read it: `state list | show | rm` and `output`.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Case;

const STACK: &str = r#"
    stack: shop
    resources:
      config:
        type: local.file
        with: { path: app.conf, content: "port = 8000\n" }
      banner:
        type: local.file
        with: { path: banner.txt, content: "config is ${config.size} bytes\n" }
"#;

fn applied() -> Case {
    let case = Case::new().spec(STACK);
    case.expect(["apply", "--yes"], 0);
    case
}

#[test]
fn state_file_is_private_and_records_lineage_serial_and_resources() {
    let case = applied();
    let path = case.state_file("shop");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    let state = case.state("shop");
    assert_eq!(state["stack"], "shop");
    let lineage = state["lineage"].as_str().expect("a lineage");
    assert_eq!(lineage.len(), 32, "{lineage}");
    assert!(lineage.bytes().all(|b| b.is_ascii_hexdigit()), "{lineage}");
    assert!(state["serial"].as_u64().expect("a serial") >= 1);
    let config = &state["resources"]["config"];
    assert_eq!(config["type"], "local.file");
    assert_eq!(config["id"], case.path("app.conf").display().to_string());
    assert_eq!(config["inputs"]["content"], "port = 8000\n");
    let bytes = std::fs::read(case.path("app.conf")).unwrap();
    assert_eq!(
        config["outputs"]["content_hash"],
        format!("blake3:{}", blake3::hash(&bytes).to_hex())
    );
    assert_eq!(config["outputs"]["size"], bytes.len());
    assert_eq!(
        state["resources"]["banner"]["dependencies"],
        serde_json::json!(["config"])
    );
    assert_eq!(
        case.read("banner.txt"),
        format!("config is {} bytes\n", bytes.len())
    );

    // The serial advances with every apply that changes something; the lineage stays.
    let serial = state["serial"].as_u64().unwrap();
    case.set_spec(&STACK.replace("8000", "9000"));
    case.expect(["apply", "--yes"], 0);
    let after = case.state("shop");
    assert!(after["serial"].as_u64().unwrap() > serial);
    assert_eq!(after["lineage"], state["lineage"]);
}

#[test]
fn state_list_names_every_tracked_resource() {
    let case = applied();
    let out = case.run(["state", "list"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    banner  local.file  [TEMP]/banner.txt
    config  local.file  [TEMP]/app.conf

    ----- stderr -----
    ");
}

#[test]
fn state_show_prints_one_resource() {
    let case = applied();
    let out = case.run(["state", "show", "config"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    {
      "type": "local.file",
      "id": "[TEMP]/app.conf",
      "spec_hash": "[HASH]",
      "inputs": {
        "content": "port = 8000\n",
        "path": "app.conf"
      },
      "outputs": {
        "abs_path": "[TEMP]/app.conf",
        "content_hash": "blake3:[HASH]",
        "size": 12
      },
      "dependencies": [],
      "protect": false
    }

    ----- stderr -----
    "#);
    let missing = case.run(["state", "show", "nope"]);
    fabrik_snapshot!(case, missing, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `nope` is not tracked in the state of stack `shop`
    ");
}

#[test]
fn state_rm_forgets_without_deleting() {
    let case = applied();
    let out = case.run(["state", "rm", "banner"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    Forgot `banner` ([TEMP]/banner.txt); the object itself was left as it is.

    ----- stderr -----
    ");
    let size = "port = 8000\n".len();
    assert_eq!(
        case.read("banner.txt"),
        format!("config is {size} bytes\n"),
        "the file stays"
    );
    assert_eq!(case.tracked("shop"), ["config"]);
    let list = case.expect(["state", "list"], 0);
    assert!(!list.stdout.contains("banner"), "{list}");
    // The file left behind is no longer the stack's: the next plan stops at it and says how
    // to take it back.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `banner`: [TEMP]/banner.txt already exists (a file) and this stack did not create it; set `adopt: true` to take it over (its content is kept and put back if the apply is rolled back), or import it with `fabrik import banner [TEMP]/banner.txt`
      --> fabrik.yaml:6:3
      |
    6 |   banner:
      |   ^^^^^^
    "#);
    case.expect(["import", "banner", "banner.txt"], 0);
    case.expect(["plan", "--detailed-exitcode"], 0);
    case.expect(["state", "rm", "banner"], 0);
    let again = case.run(["state", "rm", "banner"]);
    assert_eq!(again.code, 1, "{again}");
}

#[test]
fn state_commands_work_with_the_spec_gone() {
    let case = applied();
    case.remove("fabrik.yaml");
    let list = case.expect(["state", "list"], 0);
    assert!(
        list.stdout.contains("config") && list.stdout.contains("banner"),
        "{list}"
    );
    let output = case.expect(["output", "config", "--json"], 0);
    assert!(output.stdout.contains("content_hash"), "{output}");
}

/// A spec half way through an edit (a reference not closed yet, a misspelt field, even a
/// broken `stack:` line when `--stack` names it) must not lock its user out of the state: these
/// commands read only where the state is.
#[test]
fn state_commands_work_beside_a_spec_being_edited() {
    let case = applied();
    case.set_spec(
        r#"
        stack: shop
        resources:
          config:
            type: local.file
            with: { path: app.conf, content: "port = ${config.size\n" }
          banner:
            type: local.file
            whith: { path: banner.txt }
        "#,
    );
    let plan = case.run(["plan"]);
    assert_eq!(plan.code, 1, "the spec really is broken:\n{plan}");
    assert!(plan.stderr.contains("fabrik.yaml:5:"), "{plan}");

    let out = case.run(["state", "list", "--stack", "shop"]);
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    banner  local.file  [TEMP]/banner.txt
    config  local.file  [TEMP]/app.conf

    ----- stderr -----
    ");
    // The spec's `stack:` is enough to find it.
    assert_eq!(case.run(["state", "list"]), out);
    let shown = case.expect(["state", "show", "config", "--stack", "shop"], 0);
    assert!(shown.stdout.contains("\"port = 8000\\n\""), "{shown}");
    let output = case.expect(["output", "config", "--json"], 0);
    assert!(output.stdout.contains("content_hash"), "{output}");
    let unlock = case.expect(["unlock", "--force", "--stack", "shop"], 0);
    assert!(unlock.stdout.contains("not locked"), "{unlock}");

    // With `stack:` itself broken, the stack must be named; the spec still says where the
    // state is, so an error there is still reported, at its place.
    case.set_spec("stack: [shop\nresources: {}\n");
    let unreadable = case.run(["state", "list", "--stack", "shop"]);
    assert_eq!(unreadable.code, 1, "{unreadable}");
    assert!(unreadable.stderr.contains("invalid YAML"), "{unreadable}");
    case.set_spec("stack: \"not a name\"\nresources: { x: 1 }\n");
    let unnamed = case.run(["state", "list"]);
    assert_eq!(unnamed.code, 1, "{unnamed}");
    assert!(
        unnamed.stderr.contains("invalid stack name `not a name`"),
        "{unnamed}"
    );
    assert!(unnamed.stderr.contains("fabrik.yaml:1:8"), "{unnamed}");
    let named = case.expect(["state", "list", "--stack", "shop"], 0);
    assert!(named.stdout.contains("banner  local.file"), "{named}");
    case.set_spec("stack: shop\nbackend: { postgers: {} }\nresources: {}\n");
    let misplaced = case.run(["state", "list", "--stack", "shop"]);
    assert_eq!(misplaced.code, 1, "{misplaced}");
    assert!(
        misplaced.stderr.contains("unknown backend `postgers`"),
        "{misplaced}"
    );
    // Told where the state is, the spec is not needed at all.
    case.expect(
        ["state", "list", "--stack", "shop", "--state-dir", ".fabrik"],
        0,
    );
}

#[test]
fn output_prints_every_output() {
    let case = applied();
    let out = case.run(["output"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    banner.abs_path = "[TEMP]/banner.txt"
    banner.content_hash = "blake3:[HASH]"
    banner.size = 19
    config.abs_path = "[TEMP]/app.conf"
    config.content_hash = "blake3:[HASH]"
    config.size = 12

    ----- stderr -----
    "#);
}

#[test]
fn output_name_json_is_that_resources_outputs() {
    let case = applied();
    let out = case.expect(["output", "config", "--json"], 0);
    let printed: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        printed,
        case.state("shop")["resources"]["config"]["outputs"]
    );
    let all = case.expect(["output", "--json"], 0);
    let all: serde_json::Value = serde_json::from_str(&all.stdout).expect("JSON");
    assert_eq!(all["config"], printed);
    assert_eq!(
        all["banner"],
        case.state("shop")["resources"]["banner"]["outputs"]
    );
    let missing = case.run(["output", "nope", "--json"]);
    fabrik_snapshot!(case, missing, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `nope` is not tracked in the state of stack `shop`
    ");
}

#[test]
fn state_dir_flag_keeps_the_state_elsewhere() {
    let case = Case::new().spec(STACK);
    case.expect(["--state-dir", "elsewhere", "apply", "--yes"], 0);
    assert!(!case.state_dir().exists(), "no `.fabrik/` with --state-dir");
    assert!(case.path("elsewhere/shop.state.json").exists());
    let plan = case.expect(
        ["plan", "--state-dir", "elsewhere", "--detailed-exitcode"],
        0,
    );
    assert!(plan.stdout.starts_with("No changes."), "{plan}");
    // Without the flag the default directory has no state: everything is still to create,
    // and the files already there are in the way of those creates.
    case.expect(["plan", "--refresh=false", "--detailed-exitcode"], 2);
    let plan = case.expect(["plan"], 1);
    assert!(plan.stderr.contains("already exists"), "{plan}");
}

/// `fabrik apply --yes path/to/fabrik.yaml` from elsewhere: the state goes beside the spec and
/// relative paths in the spec are relative to the spec's directory, not the working directory.
#[test]
fn spec_in_another_directory_keeps_state_and_files_beside_it() {
    let case = Case::new();
    case.write("project/fabrik.yaml", crate::harness::dedent(STACK));
    case.expect(["apply", "--yes", "project/fabrik.yaml"], 0);
    assert!(case.path("project/.fabrik/shop.state.json").exists());
    assert!(!case.state_dir().exists());
    assert_eq!(case.read("project/app.conf"), "port = 8000\n");
    assert!(!case.exists("app.conf"));
    let list = case.expect(["state", "list", "--spec", "project/fabrik.yaml"], 0);
    assert!(list.stdout.contains("config"), "{list}");
    case.expect(["destroy", "--yes", "project/fabrik.yaml"], 0);
    assert!(!case.exists("project/app.conf"));
}

/// `fabrik output NAME.ATTR` names one value; `--raw` prints it alone for a script (a string
/// without quotes); a missing attribute lists the real ones; `--raw` without an attribute says
/// how to name one.
#[test]
fn output_names_one_attribute_and_prints_it_raw_for_scripts() {
    let case = applied();
    let raw = case.expect(["output", "config.abs_path", "--raw"], 0);
    assert_eq!(raw.stdout, format!("{}\n", case.path("app.conf").display()));
    let size = case.expect(["output", "config.size", "--raw"], 0);
    assert_eq!(size.stdout, "12\n");
    let json = case.expect(["output", "config.size", "--json"], 0);
    assert_eq!(json.stdout, "12\n");
    let line = case.expect(["output", "config.size"], 0);
    assert_eq!(line.stdout, "config.size = 12\n");
    let missing = case.run(["output", "config.port"]);
    fabrik_snapshot!(case, missing, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `config` has no output `port`; its outputs are `abs_path`, `content_hash`, `size`
    ");
    let whole = case.run(["output", "config", "--raw"]);
    fabrik_snapshot!(case, whole, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: --raw prints one value: name it as `fabrik output NAME.ATTR --raw`
    ");
}
