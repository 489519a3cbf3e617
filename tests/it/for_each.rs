//! `for_each` through the binary: one instance per key, `NAME[KEY]`; adding or removing a key
//! creates or deletes only that instance (the others' files are not even rewritten: their
//! inode and modification time stay), reordering a list changes nothing, a changed map value
//! updates only its instance; keys from a variable, saved plans bound to them; references to
//! instances, `--target`, `state list` and destroy. The refusals are in `bad_inputs.rs`.

use std::fs::Permissions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::harness::Case;

fn files(keys: &str) -> String {
    format!(
        r#"
        stack: shop
        resources:
          pages:
            type: local.file
            for_each: {keys}
            with: {{ path: "pages/${{each.key}}.html", content: "page ${{each.value}}\n" }}
        "#
    )
}

/// What shows that a file was left alone: the same inode, written at the same time.
fn stamp(case: &Case, relative: &str) -> (u64, i64, i64) {
    let meta = std::fs::metadata(case.path(relative)).unwrap();
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

#[test]
fn a_key_added_or_removed_touches_only_its_instance_and_reordering_nothing() {
    let case = Case::new().spec(&files("[home, about]"));
    fabrik_snapshot!(case, case.run(["plan"]), @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + pages[about] (local.file)
          + path    = "pages/about.html"
          + content = <<EOT
              page about
            EOT

      + pages[home] (local.file)
          + path    = "pages/home.html"
          + content = <<EOT
              page home
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("pages/home.html"), "page home\n");
    assert_eq!(case.read("pages/about.html"), "page about\n");
    let home = stamp(&case, "pages/home.html");
    let about = stamp(&case, "pages/about.html");

    case.set_spec(&files("[home, about, contact]"));
    fabrik_snapshot!(case, case.run(["apply", "--yes"]), @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + pages[contact] (local.file)
          + path    = "pages/contact.html"
          + content = <<EOT
              page contact
            EOT

    Plan: 1 to add, 0 to change, 0 to destroy.

      + pages[contact] (local.file): created [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(case.read("pages/contact.html"), "page contact\n");
    assert_eq!(stamp(&case, "pages/home.html"), home);
    assert_eq!(stamp(&case, "pages/about.html"), about);

    case.set_spec(&files("[home, contact]"));
    fabrik_snapshot!(case, case.run(["apply", "--yes"]), @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      - pages[about] (local.file)

    Plan: 0 to add, 0 to change, 1 to destroy.

      - pages[about] (local.file): destroyed [TIME]

    Apply complete: 0 added, 0 changed, 1 destroyed in [TIME].

    ----- stderr -----
    ");
    assert!(!case.exists("pages/about.html"));
    assert_eq!(stamp(&case, "pages/home.html"), home);

    case.set_spec(&files("[contact, home]"));
    fabrik_snapshot!(case, case.run(["plan", "--detailed-exitcode"]), @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `shop` matches the spec.

    ----- stderr -----
    ");
    assert_eq!(
        case.tracked("shop"),
        ["pages[contact]", "pages[home]"].map(String::from)
    );
}

fn sites(beta: &str) -> String {
    format!(
        r#"
        stack: shop
        resources:
          sites:
            type: local.file
            for_each:
              alpha: {{ greeting: hello, port: 8080 }}
              beta: {{ greeting: {beta}, port: 9090 }}
            with:
              path: "sites/${{each.key}}.conf"
              content: "${{each.value.greeting}} on ${{each.value.port}}\n"
          ports:
            type: local.file
            for_each: {{ alpha: 8080, beta: 9090 }}
            with: {{ path: "ports/${{each.key}}", content: "${{each.value}}" }}
        "#
    )
}

/// A map's values are what `${each.value}` stands for; a map of maps is read with
/// `${each.value.NAME}`, and a number given whole to a text field is its text.
#[test]
fn a_changed_map_value_updates_only_its_instance() {
    let case = Case::new().spec(&sites("hi"));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("sites/alpha.conf"), "hello on 8080\n");
    assert_eq!(case.read("sites/beta.conf"), "hi on 9090\n");
    assert_eq!(case.read("ports/beta"), "9090");
    let alpha = stamp(&case, "sites/alpha.conf");

    case.set_spec(&sites("welcome"));
    fabrik_snapshot!(case, case.run(["apply", "--yes"]), @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~ sites[beta] (local.file)
          ~ content:
              - hi on 9090
              + welcome on 9090

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ sites[beta] (local.file): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    assert_eq!(case.read("sites/beta.conf"), "welcome on 9090\n");
    assert_eq!(stamp(&case, "sites/alpha.conf"), alpha);
}

const FROM_VAR: &str = r#"
    stack: shop
    vars:
      pages: { type: list, description: The pages to publish. }
    resources:
      pages:
        type: local.file
        for_each: "${var.pages}"
        with: { path: "pages/${each.key}.html", content: "page ${each.key}\n" }
"#;

#[test]
fn keys_from_a_variable_and_a_saved_plan_bound_to_them() {
    let case = Case::new().spec(FROM_VAR);
    case.expect(["apply", "--yes", "--var", "pages=[home, about]"], 0);
    assert!(case.exists("pages/home.html") && case.exists("pages/about.html"));

    case.write("fabrik.vars.yaml", "pages: [home, about, blog]\n");
    fabrik_snapshot!(case, case.run(["plan"]), @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + pages[blog] (local.file)
          + path    = "pages/blog.html"
          + content = <<EOT
              page blog
            EOT

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);

    case.expect(["plan", "--out", "p.json"], 0);
    let out = case.run(["apply", "p.json", "--var", "pages=[home]"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the value of variable `pages` changed since the plan was made (give the same `--var`, `FABRIK_VAR_…` and vars file as then)
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert!(!case.exists("pages/blog.html"));
    case.expect(["apply", "p.json"], 0);
    assert_eq!(case.read("pages/blog.html"), "page blog\n");
    assert_eq!(
        case.tracked("shop"),
        ["pages[about]", "pages[blog]", "pages[home]"].map(String::from)
    );
}

const LINKED: &str = r#"
    stack: shop
    resources:
      web:
        type: local.file
        for_each: [a, b, example.com]
        with: { path: "web/${each.key}.txt", content: "site ${each.key}\n" }
      sizes:
        type: local.file
        for_each: [a, b]
        with: { path: "size-${each.key}", content: "${web[each.key].size}" }
      index:
        type: local.file
        depends_on: [sizes]
        with: { path: index.txt, content: "${web[example.com].abs_path}" }
"#;

/// `${NAME[KEY].ATTR}` from another resource, `${NAME[each.key].ATTR}` between instances of
/// the same key; `--target NAME[KEY]` one instance, `--target NAME` all of them; `state list`,
/// `state show`, `output` and `plan --json` use the address; destroy removes every instance.
#[test]
fn instances_are_referred_to_targeted_listed_and_destroyed() {
    let case = Case::new().spec(LINKED);
    let json = case.expect(["plan", "--json"], 0);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let names: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"web[example.com]") && names.contains(&"sizes[a]"),
        "{names:?}"
    );

    fabrik_snapshot!(case, case.run(["plan", "--target", "sizes[b]"]), @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + web[b] (local.file)
          + path    = "web/b.txt"
          + content = <<EOT
              site b
            EOT

      + sizes[b] (local.file)
          + path    = "size-b"
          + content = (known after apply)

    Plan: 2 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes", "--target", "web[example.com]"], 0);
    assert!(case.exists("web/example.com.txt") && !case.exists("web/a.txt"));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("size-a"), "7");
    assert_eq!(
        case.read("index.txt"),
        case.path("web/example.com.txt").display().to_string()
    );
    fabrik_snapshot!(case, case.run(["state", "list"]), @"
    exit code: 0
    ----- stdout -----
    index             local.file  [TEMP]/index.txt
    sizes[a]          local.file  [TEMP]/size-a
    sizes[b]          local.file  [TEMP]/size-b
    web[a]            local.file  [TEMP]/web/a.txt
    web[b]            local.file  [TEMP]/web/b.txt
    web[example.com]  local.file  dirs=1:[TEMP]/web/example.com.txt

    ----- stderr -----
    ");
    let shown = case.expect(["state", "show", "index"], 0);
    assert!(
        shown.stdout.contains("sizes[a]") && shown.stdout.contains("sizes[b]"),
        "{shown}"
    );
    let size = case.expect(["output", "web[example.com].size", "--raw"], 0);
    assert_eq!(size.stdout, "17\n");

    // `--target web` covers every instance of `web`, and what needs them.
    let out = case.run(["destroy", "--yes", "--target", "web"]);
    fabrik_snapshot!(case, out.with_parallel_lines_sorted(), @"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      - index (local.file)

      - sizes[a] (local.file)

      - sizes[b] (local.file)

      - web[a] (local.file)

      - web[b] (local.file)

      - web[example.com] (local.file)

    Plan: 0 to add, 0 to change, 6 to destroy.

      - index (local.file): destroyed [TIME]
      - sizes[a] (local.file): destroyed [TIME]
      - sizes[b] (local.file): destroyed [TIME]
      - web[a] (local.file): destroyed [TIME]
      - web[b] (local.file): destroyed [TIME]
      - web[example.com] (local.file): destroyed [TIME]

    Destroy complete: 6 destroyed in [TIME].

    ----- stderr -----
    ");
    assert!(!case.exists("web/a.txt") && !case.exists("size-a") && !case.exists("index.txt"));
    case.expect(["apply", "--yes"], 0);
    case.expect(["destroy", "--yes"], 0);
    assert!(case.tracked("shop").is_empty());
    for gone in [
        "web/a.txt",
        "web/b.txt",
        "web/example.com.txt",
        "size-a",
        "size-b",
    ] {
        assert!(!case.exists(gone), "{gone}");
    }
}

/// The constructs together, as one spec uses them: keys from a variable, `ignore_changes` and a
/// command gate on every instance (the gate given `${each.key}` as one argument), an output
/// naming one instance. A chmod on one instance is no change; a key whose gate fails is rolled
/// back alone, and the others and the output stay as they were.
#[test]
fn instances_from_a_variable_with_ignore_changes_a_command_gate_and_an_output() {
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          sites: { type: list, description: The sites to serve. }
        resources:
          sites:
            type: local.file
            for_each: "${var.sites}"
            with: { path: "sites/${each.key}.conf", content: "site ${each.key}\n", mode: "0644" }
            ignore_changes: [mode]
            verify:
              - command: ["sh", "-c", "test -s \"sites/$0.conf\" && test \"$0\" != broken", "${each.key}"]
                timeout: 1s
        outputs:
          shop: { value: "${sites[shop].path}", description: The shop's configuration. }
        "#,
    );
    let two = ["--var", "sites=[shop, blog]"];
    let out = case.run(["apply", "--yes"].iter().chain(&two));
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("✓ sites[blog]: verified command sh"),
        "{out}"
    );
    assert_eq!(case.read("sites/blog.conf"), "site blog\n");

    std::fs::set_permissions(case.path("sites/blog.conf"), Permissions::from_mode(0o600)).unwrap();
    let plan = case.run(
        ["plan", "--refresh", "--detailed-exitcode"]
            .iter()
            .chain(&two),
    );
    assert_eq!(
        plan.code, 0,
        "an ignored field of an instance is no change:\n{plan}"
    );

    let blog = stamp(&case, "sites/blog.conf");
    let out = case.run(["apply", "--yes", "--var", "sites=[shop, blog, broken]"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stdout.contains("✗ sites[broken] (local.file): failed")
            && out.stderr.contains("sites[broken]: gate command sh"),
        "{out}"
    );
    assert!(
        !case.exists("sites/broken.conf"),
        "the failed instance is rolled back"
    );
    assert_eq!(stamp(&case, "sites/blog.conf"), blog);
    let mode = std::fs::metadata(case.path("sites/blog.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    fabrik_snapshot!(case, case.run(["output"]), @r#"
    exit code: 0
    ----- stdout -----
    shop = "sites/shop.conf"

    ----- stderr -----
    "#);
}
