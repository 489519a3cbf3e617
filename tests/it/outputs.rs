//! Stack outputs (`outputs:`): planned with the resources, recorded by a successful apply,
//! printed by `fabrik output` for people (`NAME = value`), scripts (`--raw`) and tools
//! (`--json`); sensitive ones never in clear in the state, the journal or the output unless
//! asked for.

use crate::harness::Case;

const STACK: &str = r#"
    stack: shop
    vars:
      port: { type: number, default: 8000 }
    resources:
      config:
        type: local.file
        with: { path: app.conf, content: "port = ${var.port}\n" }
    outputs:
      path: { value: "${config.abs_path}", description: where the configuration is }
      size: { value: "${config.size}" }
      port: { value: "${var.port}" }
      both: { value: ["${config.path}", { port: "${var.port}" }] }
    "#;

fn applied() -> Case {
    let case = Case::new().spec(STACK);
    case.expect(["apply", "--yes"], 0);
    case
}

#[test]
fn apply_records_outputs_and_output_prints_them() {
    let case = Case::new().spec(STACK);
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + config (local.file)
          + path    = "app.conf"
          + content = <<EOT
              port = 8000
            EOT

    Outputs:
      + both = ["app.conf",{"port":8000}]
      + path = (known after apply)
      + port = 8000
      + size = (known after apply)

    Plan: 1 to add, 0 to change, 0 to destroy.

      + config (local.file): created [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let state = case.state("shop");
    assert_eq!(state["outputs"]["size"]["value"], 12, "{state}");
    assert_eq!(state["outputs"]["port"]["value"], 8000, "{state}");

    let all = case.run(["output"]);
    fabrik_snapshot!(case, all, @r#"
    exit code: 0
    ----- stdout -----
    both = ["app.conf",{"port":8000}]
    path = "[TEMP]/app.conf"
    port = 8000
    size = 12

    ----- stderr -----
    "#);
    let json = case.expect(["output", "--json"], 0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({
            "both": ["app.conf", { "port": 8000 }],
            "path": case.path("app.conf").display().to_string(),
            "port": 8000,
            "size": 12,
        })
    );
    // One value alone, for a script: a string without quotes, anything else as JSON.
    let raw = case.expect(["output", "path", "--raw"], 0);
    assert_eq!(raw.stdout, format!("{}\n", case.path("app.conf").display()));
    let raw = case.expect(["output", "both", "--raw"], 0);
    assert_eq!(raw.stdout, "[\"app.conf\",{\"port\":8000}]\n");
    let one = case.expect(["output", "size"], 0);
    assert_eq!(one.stdout, "size = 12\n");
    let one = case.expect(["output", "port", "--json"], 0);
    assert_eq!(one.stdout, "8000\n");
    // A resource's attributes are still there by their own names.
    let attr = case.expect(["output", "config.size", "--raw"], 0);
    assert_eq!(attr.stdout, "12\n");
    let resource = case.expect(["output", "config"], 0);
    assert!(resource.stdout.contains("config.size = 12"), "{resource}");
    let all_raw = case.run(["output", "--raw"]);
    fabrik_snapshot!(case, all_raw, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: --raw prints one value: name it as `fabrik output NAME --raw`
    ");
}

#[test]
fn an_unknown_output_name_is_refused_with_the_closest_name() {
    let case = applied();
    let typo = case.run(["output", "sise"]);
    fabrik_snapshot!(case, typo, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `sise` is neither an output nor a resource of stack `shop`; did you mean `size`?
    ");
    let far = case.run(["output", "nothing-like-it"]);
    fabrik_snapshot!(case, far, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `nothing-like-it` is neither an output nor a resource of stack `shop`; its outputs are `both`, `path`, `port`, `size`
    ");
}

/// The plan shows outputs that change after the resources; a plan where only an output changes
/// is a change (exit 2 with `--detailed-exitcode`), and its apply records it without calling a
/// provider.
#[test]
fn plan_shows_outputs_that_change_and_apply_records_them_alone() {
    let case = applied();
    case.set_spec(&STACK.replace(
        "port: { value: \"${var.port}\" }",
        "port: { value: \"${var.port}\" }\n      url: { value: \"http://localhost:${var.port}/\" }",
    ));
    let plan = case.run(["plan", "--var", "port=8080"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~ config (local.file)
          ~ content:
              - port = 8000
              + port = 8080

    Outputs:
      ~ both = ["app.conf",{"port":8000}] → ["app.conf",{"port":8080}]
      ~ path = "[TEMP]/app.conf" → (known after apply)
      ~ port = 8000 → 8080
      ~ size = 12 → (known after apply)
      + url  = "http://localhost:8080/"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    let json = case.expect(["plan", "--json", "--var", "port=8080"], 0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    fabrik_snapshot!(case, serde_json::to_string_pretty(&json["outputs"]).unwrap(), @r#"
    [
      {
        "action": "update",
        "after": [
          "app.conf",
          {
            "port": 8080
          }
        ],
        "before": [
          "app.conf",
          {
            "port": 8000
          }
        ],
        "name": "both"
      },
      {
        "action": "update",
        "after_unknown": true,
        "before": "[TEMP]/app.conf",
        "name": "path"
      },
      {
        "action": "update",
        "after": 8080,
        "before": 8000,
        "name": "port"
      },
      {
        "action": "update",
        "after_unknown": true,
        "before": 12,
        "name": "size"
      },
      {
        "action": "create",
        "after": "http://localhost:8080/",
        "name": "url"
      }
    ]
    "#);

    // Only an output changes: not "No changes", and the file is left alone.
    let before = std::fs::metadata(case.path("app.conf"))
        .unwrap()
        .modified()
        .unwrap();
    let only = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, only, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

    Outputs:
      + url = "http://localhost:8000/"

    Plan: 0 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

    Outputs:
      + url = "http://localhost:8000/"

    Plan: 0 to add, 0 to change, 0 to destroy.


    Apply complete: 0 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let after = std::fs::metadata(case.path("app.conf"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "no provider call for an output");
    let url = case.expect(["output", "url", "--raw"], 0);
    assert_eq!(url.stdout, "http://localhost:8000/\n");
    let again = case.expect(["plan", "--detailed-exitcode"], 0);
    assert!(again.stdout.starts_with("No changes."), "{again}");
}

/// An output whose resource is removed with it goes from the state at the next apply; a
/// destroy clears every output.
#[test]
fn outputs_of_a_removed_resource_go_and_destroy_clears_them() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          config:
            type: local.file
            with: { path: app.conf, content: "a\n" }
          banner:
            type: local.file
            with: { path: banner.txt, content: "hello\n" }
        outputs:
          config_size: { value: "${config.size}" }
          banner_path: { value: "${banner.path}" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    case.set_spec(
        r#"
        stack: shop
        resources:
          config:
            type: local.file
            with: { path: app.conf, content: "a\n" }
        outputs:
          config_size: { value: "${config.size}" }
        "#,
    );
    let plan = case.run(["plan"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      - banner (local.file)

    Outputs:
      - banner_path = "banner.txt"

    Plan: 0 to add, 0 to change, 1 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes"], 0);
    let out = case.run(["output"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 0
    ----- stdout -----
    config_size = 2

    ----- stderr -----
    ");
    let gone = case.run(["output", "banner_path"]);
    fabrik_snapshot!(case, gone, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `banner_path` is neither an output nor a resource of stack `shop`; its outputs are `config_size`
    ");

    let destroy = case.run(["destroy", "--yes"]);
    fabrik_snapshot!(case, destroy, @r"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      - config (local.file)

    Outputs:
      - config_size = 2

    Plan: 0 to add, 0 to change, 1 to destroy.

      - config (local.file): destroyed [TIME]

    Destroy complete: 1 destroyed in [TIME].

    ----- stderr -----
    ");
    assert!(
        case.state("shop").get("outputs").is_none(),
        "{}",
        case.state("shop")
    );
    let none = case.expect(["output"], 0);
    assert_eq!(none.stdout, "", "{none}");
}

const SECRET_VALUE: &str = "pa55-word-never-shown";

const SENSITIVE: &str = r#"
    stack: shop
    secrets:
      DB_PASSWORD: {}
    vars:
      token: { type: string, sensitive: true }
    resources:
      config:
        type: local.file
        with: { path: app.conf, content: "user = app\n" }
    outputs:
      dsn:
        value: "postgres://app:${secret.DB_PASSWORD}@localhost/${config.path}"
        description: the connection string
        sensitive: true
      token: { value: "${var.token}", sensitive: true }
      size: { value: "${config.size}" }
    "#;

#[test]
fn a_sensitive_output_is_never_in_clear_in_state_journal_or_output_unless_asked_for() {
    let case = Case::new()
        .spec(SENSITIVE)
        .env("DB_PASSWORD", SECRET_VALUE)
        .env("FABRIK_VAR_token", "tok-very-secret-123");
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + config (local.file)
          + path    = "app.conf"
          + content = <<EOT
              user = app
            EOT

    Outputs:
      + dsn   = (sensitive)
      + size  = (known after apply)
      + token = (sensitive)

    Plan: 1 to add, 0 to change, 0 to destroy.

      + config (local.file): created [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    for (path, bytes) in case.state_files() {
        let text = String::from_utf8_lossy(&bytes);
        for secret in [SECRET_VALUE, "tok-very-secret-123"] {
            assert!(!text.contains(secret), "{} holds a secret", path.display());
        }
    }
    let state = case.state("shop");
    assert_eq!(
        state["outputs"]["dsn"]["written"],
        "postgres://app:${secret.DB_PASSWORD}@localhost/app.conf",
        "{state}"
    );
    assert!(
        state["outputs"]["token"].get("written").is_none(),
        "{state}"
    );

    for args in [
        &["output"][..],
        &["output", "--json"][..],
        &["output", "dsn"][..],
    ] {
        let out = case.run(args);
        assert_eq!(out.code, 0, "{out}");
        assert!(!out.stdout.contains(SECRET_VALUE), "{out}");
        assert!(out.stdout.contains("(sensitive)"), "{out}");
    }
    let all = case.run(["output"]);
    fabrik_snapshot!(case, all, @r"
    exit code: 0
    ----- stdout -----
    dsn = (sensitive)
    size = 11
    token = (sensitive)

    ----- stderr -----
    ");
    // Asked for, it is worked out again from the secret it uses.
    let shown = case.run(["output", "--show-sensitive", "dsn"]);
    fabrik_snapshot!(case, shown, @r#"
    exit code: 0
    ----- stdout -----
    dsn = "postgres://app:pa55-word-never-shown@localhost/app.conf"

    ----- stderr -----
    "#);
    let raw = case.expect(["output", "dsn", "--raw"], 0);
    assert_eq!(
        raw.stdout,
        format!("postgres://app:{SECRET_VALUE}@localhost/app.conf\n")
    );
    let json = case.expect(["output", "--json", "--show-sensitive"], 0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        json["dsn"],
        format!("postgres://app:{SECRET_VALUE}@localhost/app.conf")
    );
    // A sensitive variable is given per run: nothing is kept to work it out again from.
    let token = case.run(["output", "token", "--raw"]);
    fabrik_snapshot!(case, token, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: output `token` uses a sensitive variable or a sensitive resource attribute: the state keeps only its keyed hash, so there is no value to print
    ");
    // Another value of the secret is not the one applied.
    let changed = case
        .args(["output", "dsn", "--raw"])
        .env("DB_PASSWORD", "another-password-now")
        .run();
    fabrik_snapshot!(case, changed, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: output `dsn` is not what the last apply recorded: a secret or environment variable it uses has another value now; set it as it was, or apply again
    ");

    // The plan masks it too, and a changed secret shows as a changed value.
    let plan = case
        .args(["plan"])
        .env("DB_PASSWORD", "another-password-now")
        .run();
    fabrik_snapshot!(case, plan, @r"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

    Outputs:
      ~ dsn: (sensitive value changed)

    Plan: 0 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    ");
}

/// A saved plan binds the outputs: one edited since is refused.
#[test]
fn a_saved_plan_is_stale_once_an_output_changed() {
    let case = applied();
    case.set_spec(&STACK.replace("${config.size}", "size ${config.size}"));
    case.expect(["plan", "--out", "changes.plan"], 0);
    case.set_spec(&STACK.replace("${config.size}", "bytes ${config.size}"));
    let stale = case.run(["apply", "changes.plan"]);
    fabrik_snapshot!(case, stale, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    case.expect(["plan", "--out", "changes.plan"], 0);
    case.expect(["apply", "changes.plan"], 0);
    let size = case.expect(["output", "size", "--raw"], 0);
    assert_eq!(size.stdout, "bytes 12\n");
}

/// `validate` checks outputs without the variables' values; `plan` needs them.
#[test]
fn validate_checks_outputs_without_variable_values() {
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          region: { type: string }
        resources:
          config:
            type: local.file
            with: { path: app.conf, content: "x\n" }
        outputs:
          where: { value: "${var.region}/${config.path}" }
        "#,
    );
    let validate = case.run(["validate"]);
    assert_eq!(validate.code, 0, "{validate}");
    let plan = case.run(["plan"]);
    assert_eq!(plan.code, 1, "{plan}");
    let plan = case.expect(["plan", "--var", "region=eu"], 0);
    assert!(plan.stdout.contains("+ where = \"eu/app.conf\""), "{plan}");
}

/// In a PostgreSQL state the outputs are kept as in a file: a sensitive one by its keyed hash,
/// worked out again with the key the database shares.
#[test]
fn outputs_are_kept_in_postgres_and_a_sensitive_one_by_its_hash() {
    let server = crate::postgres::Server::start();
    let case = Case::new()
        .spec(
            r#"
            stack: shop
            backend:
              postgres:
                url: "${secret.STATE_DB_URL}"
                schema: fabrik_state
            secrets:
              DB_PASSWORD: {}
            resources:
              web:
                type: local.file
                with: { path: web.txt, content: "hello\n" }
            outputs:
              size: { value: "${web.size}" }
              dsn: { value: "postgres://app:${secret.DB_PASSWORD}@db/app", sensitive: true }
            "#,
        )
        .env("DB_PASSWORD", SECRET_VALUE);
    case.write(".env", format!("STATE_DB_URL={}\n", server.url()));
    case.expect(["apply", "--yes"], 0);
    let kept = server.sql("SELECT state::text FROM fabrik_state.snapshots WHERE stack = 'shop'");
    assert!(kept.contains("\"size\": {\"value\": 6}"), "{kept}");
    assert!(!kept.contains(SECRET_VALUE), "{kept}");
    let all = case.expect(["output"], 0);
    assert_eq!(all.stdout, "dsn = (sensitive)\nsize = 6\n", "{all}");
    let raw = case.expect(["output", "dsn", "--raw"], 0);
    assert_eq!(
        raw.stdout,
        format!("postgres://app:{SECRET_VALUE}@db/app\n")
    );
    case.expect(["destroy", "--yes"], 0);
    let kept = server.sql("SELECT state::text FROM fabrik_state.snapshots WHERE stack = 'shop'");
    assert!(!kept.contains("\"outputs\""), "{kept}");
}

/// A targeted apply works out only the outputs whose resources the state holds afterwards; its
/// plan shows no more than that: an output of an instance left out is not "known after apply".
#[test]
fn a_targeted_plan_shows_only_the_outputs_its_apply_records() {
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          pages: { type: list, default: [home, about] }
        resources:
          pages:
            type: local.file
            for_each: "${var.pages}"
            with: { path: "${each.key}.html", content: "${each.key}\n" }
        outputs:
          home: { value: "${pages[home].abs_path}" }
          about: { value: "${pages[about].size}" }
        "#,
    );
    fabrik_snapshot!(case, case.run(["plan", "--target", "pages[home]"]), @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + pages[home] (local.file)
          + path    = "home.html"
          + content = <<EOT
              home
            EOT

    Outputs:
      + home = (known after apply)

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes", "--target", "pages[home]"], 0);
    fabrik_snapshot!(case, case.run(["output"]), @r#"
    exit code: 0
    ----- stdout -----
    home = "[TEMP]/home.html"

    ----- stderr -----
    "#);
    fabrik_snapshot!(case, case.run(["plan", "--detailed-exitcode"]), @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + pages[about] (local.file)
          + path    = "about.html"
          + content = <<EOT
              about
            EOT

    Outputs:
      + about = (known after apply)

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
}
