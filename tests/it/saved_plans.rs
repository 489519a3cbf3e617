//! Saved plans: `plan --out`, `show`, `apply PLAN`, and the refusal of a plan that no longer
//! matches the state, the spec or the environment it was made from.

use crate::harness::Case;

const V1: &str = r#"
    stack: shop
    resources:
      release:
        type: local.file
        with: { path: release.txt, content: "version 1, tag ${env.TAG}\n" }
"#;

/// A stack applied at version 1 whose spec now says version 2, and a plan for that saved as
/// `./p.json`.
fn applied_then_planned() -> Case {
    let case = Case::new().spec(V1).env("TAG", "a");
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&V1.replace("version 1", "version 2"));
    case.expect(["plan", "--out", "./p.json"], 0);
    case
}

/// `--out p.json` (no directory part) is the most common way to save a plan.
#[test]
fn plan_out_accepts_a_bare_file_name() {
    let case = Case::new().spec(V1).env("TAG", "a");
    let out = case.run(["plan", "--out", "p.json"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + release (local.file)
          + path    = "release.txt"
          + content = <<EOT
              version 1, tag a
            EOT

    Plan: 1 to add, 0 to change, 0 to destroy.

    Saved the plan to p.json. Apply exactly this plan with `fabrik apply p.json`.

    ----- stderr -----
    "#);
    case.expect(["apply", "p.json"], 0);
    assert_eq!(case.read("release.txt"), "version 1, tag a\n");
}

#[test]
fn saved_plan_shows_and_applies() {
    let case = Case::new().spec(V1).env("TAG", "a");
    let saved = case.expect(["plan", "--out", "./p.json"], 0);
    fabrik_snapshot!(case, saved, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + release (local.file)
          + path    = "release.txt"
          + content = <<EOT
              version 1, tag a
            EOT

    Plan: 1 to add, 0 to change, 0 to destroy.

    Saved the plan to ./p.json. Apply exactly this plan with `fabrik apply ./p.json`.

    ----- stderr -----
    "#);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(case.path("p.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "a saved plan is private: {mode:o}");
    assert!(!case.exists("release.txt"), "planning changes nothing");

    let show = case.expect(["show", "p.json"], 0);
    let plan = case.expect(["plan"], 0);
    assert_eq!(
        show.stdout, plan.stdout,
        "show renders the plan as plan did"
    );

    let show_json = case.expect(["show", "p.json", "--json"], 0);
    let file: serde_json::Value =
        serde_json::from_str(&case.read("p.json")).expect("a saved plan is JSON");
    let shown: serde_json::Value = serde_json::from_str(&show_json.stdout).expect("JSON");
    assert_eq!(shown, file);
    let plan_json: serde_json::Value =
        serde_json::from_str(&case.expect(["plan", "--json"], 0).stdout).unwrap();
    assert_eq!(shown, plan_json);

    let apply = case.run(["apply", "p.json"]);
    fabrik_snapshot!(case, apply, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + release (local.file)
          + path    = "release.txt"
          + content = <<EOT
              version 1, tag a
            EOT

    Plan: 1 to add, 0 to change, 0 to destroy.

      + release (local.file): created [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(case.read("release.txt"), "version 1, tag a\n");

    // Applied once, the plan is spent.
    let again = case.run(["apply", "p.json"]);
    assert_eq!(again.code, 1, "{again}");
    assert!(again.stderr.contains("stale"), "{again}");
}

#[test]
fn saved_plan_is_stale_once_the_state_changed() {
    let case = applied_then_planned();
    // Someone else applies the same spec first.
    case.expect(["apply", "--yes"], 0);
    let out = case.run(["apply", "p.json"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the state changed since the plan was made (serial 1 then, 2 now)
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert_eq!(case.read("release.txt"), "version 2, tag a\n");
}

#[test]
fn saved_plan_is_stale_once_the_spec_changed() {
    let case = applied_then_planned();
    let before = std::fs::read(case.state_file("shop")).unwrap();
    case.set_spec(&V1.replace("version 1", "version 3"));
    let out = case.run(["apply", "p.json"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert_eq!(case.read("release.txt"), "version 1, tag a\n");
    assert_eq!(std::fs::read(case.state_file("shop")).unwrap(), before);
}

#[test]
fn saved_plan_is_stale_once_an_env_variable_it_uses_changed() {
    let case = applied_then_planned();
    let out = case.args(["apply", "p.json"]).env("TAG", "b").run();
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert_eq!(case.read("release.txt"), "version 1, tag a\n");
    // With the environment it was made in, the same plan still applies.
    case.expect(["apply", "p.json"], 0);
    assert_eq!(case.read("release.txt"), "version 2, tag a\n");
}

#[test]
fn show_refuses_a_file_that_is_not_a_plan() {
    let case = Case::new().spec(V1);
    let out = case.run(["show", "fabrik.yaml"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: fabrik.yaml is not a plan saved by `fabrik plan --out`
    ");
}
