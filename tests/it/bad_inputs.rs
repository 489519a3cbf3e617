//! Bad inputs: each is refused with exit 1 and a message that points at the file, line and
//! column where there is one, before anything is written (`.fabrik/` is not even created).

use crate::harness::{Case, Output};

/// Runs `apply --yes` (the command with the most to lose) on a bad spec and checks the refusal
/// is clean: exit 1, nothing on stdout, no state directory; `validate` and `plan` refuse too,
/// with one and the same message.
fn refused(case: &Case) -> Output {
    let out = case.run(["apply", "--yes"]);
    assert_eq!(out.code, 1, "a bad spec must exit 1:\n{out}");
    assert!(out.stdout.is_empty(), "nothing may be planned:\n{out}");
    assert!(
        !case.state_dir().exists(),
        "a bad spec must not create the state directory:\n{out}"
    );
    let validate = case.run(["validate"]);
    let plan = case.run(["plan"]);
    assert_eq!(validate.code, 1, "`validate` must refuse too:\n{validate}");
    assert_eq!(plan, validate, "`plan` and `validate` must say the same");
    assert!(!case.state_dir().exists());
    out
}

#[test]
fn malformed_yaml_points_at_the_syntax_error() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web: [unclosed
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: invalid YAML: unclosed bracket '['
      --> fabrik.yaml:3:8
      |
    3 |   web: [unclosed
      |        ^
    ");
}

/// A second document after `---` is named as such, not in the parser's own terms.
#[test]
fn a_second_yaml_document_is_refused_in_plain_words() {
    let case = Case::new().spec(
        r#"
        stack: shop
        ---
        stack: other
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: invalid YAML: the file holds a second YAML document (after `---`); a spec is one document
      --> fabrik.yaml:3:1
      |
    3 | stack: other
      | ^
    "#);
}

/// Billion laughs: ten levels of ten aliases would expand to 10^9 nodes.
fn billion_laughs() -> String {
    let mut yaml = String::from("stack: bomb\n");
    yaml.push_str("lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let alias = format!("*lol{}", level - 1);
        let items = [alias.as_str(); 10].join(", ");
        yaml.push_str(&format!("lol{level}: &lol{level} [{items}]\n"));
    }
    yaml.push_str("resources: {}\n");
    yaml
}

#[test]
fn yaml_bomb_is_refused_with_a_clear_message() {
    let case = Case::new();
    case.write("fabrik.yaml", billion_laughs());
    let out = refused(&case);
    assert_bomb_message(&out);
    // Aliases may add more to a larger document, never what a bomb adds: hidden in a spec of
    // 50,000 resources (6 MB), it is refused the same way.
    let mut large = billion_laughs().replace("resources: {}\n", "");
    large.push_str(&plain_files(50_000));
    case.write("fabrik.yaml", large);
    assert_bomb_message(&refused(&case));
}

fn assert_bomb_message(out: &Output) {
    let message = out.stderr.lines().next().unwrap_or_default();
    assert!(message.starts_with("error: "), "{out}");
    assert!(
        out.stderr.contains("--> fabrik.yaml:"),
        "the message must point into the spec:\n{out}"
    );
    // What the user has to change is the aliases; the message must say so in words, in full.
    let lower = message.to_lowercase();
    assert!(
        lower.contains("alias") || lower.contains("anchor"),
        "the message must say the aliases expand too far:\n{out}"
    );
    assert_eq!(
        message.matches('(').count(),
        message.matches(')').count(),
        "the message is cut short:\n{out}"
    );
    assert!(
        !message.contains(" { "),
        "the message shows the parser's Debug output:\n{out}"
    );
}

/// `resources:` and `count` plain `local.file` resources, about 120 bytes each.
fn plain_files(count: usize) -> String {
    let mut yaml = String::from("resources:\n");
    for i in 0..count {
        yaml.push_str(&format!(
            "  file-{i:05}:\n    type: local.file\n    with:\n      path: out/file-{i:05}.txt\n      content: \"file {i} of a large stack\\n\"\n"
        ));
    }
    yaml
}

/// A large spec holds many nodes, but no alias: it is not taken for a YAML bomb.
#[test]
fn a_large_spec_without_aliases_is_not_a_yaml_bomb() {
    let yaml = format!("stack: big\n{}", plain_files(50_000));
    assert!(yaml.len() > 6_000_000, "{} bytes", yaml.len());
    let case = Case::new();
    case.write("fabrik.yaml", &yaml);
    let out = case.expect(["validate"], 0);
    assert_eq!(
        out.stdout,
        "fabrik.yaml is valid: stack `big`, 50000 resources.\n"
    );
}

#[test]
fn fifty_megabyte_spec_is_refused_unread() {
    // A valid spec, only too large: about 430,000 resources.
    let mut yaml = String::with_capacity(51 * 1024 * 1024);
    yaml.push_str("stack: big\nresources:\n");
    let mut n = 0;
    while yaml.len() < 50 * 1024 * 1024 {
        yaml.push_str(&format!(
            "  f{n}:\n    type: local.file\n    with: {{ path: \"f{n}.txt\", content: \"x\" }}\n"
        ));
        n += 1;
    }
    let case = Case::new();
    case.write("fabrik.yaml", &yaml);
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the spec is 50.0 MiB, more than the 16 MiB fabrik reads
      --> fabrik.yaml
      = help: split the stack into several specs
    ");
}

#[test]
fn invalid_utf8_points_at_the_first_bad_byte() {
    let case = Case::new();
    case.write("fabrik.yaml", b"stack: caf\xe9\nresources: {}\n");
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the spec is not valid UTF-8
      --> fabrik.yaml:1:11
      |
    1 | stack: caf�
      |           ^
      = help: save the file as UTF-8
    ");
}

#[test]
fn empty_file_is_refused() {
    let case = Case::new();
    case.write("fabrik.yaml", "");
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the spec is empty
      --> fabrik.yaml:1:1
      = help: a spec needs at least `stack: NAME` and a `resources:` map
    ");
}

#[test]
fn missing_file_is_refused() {
    let case = Case::new();
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot read spec fabrik.yaml: No such file or directory (os error 2)
    ");
}

#[test]
fn spec_that_is_a_list_is_refused() {
    let case = Case::new().spec(
        r#"
        - stack: shop
        - resources: {}
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the spec must be a map, not a list
      --> fabrik.yaml:1:1
      |
    1 | - stack: shop
      | ^
      = help: a spec is a map with `stack`, `providers` and `resources`
    ");
}

#[test]
fn unknown_top_level_key_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resorces:
          web:
            type: local.file
            with: { path: web.txt, content: hi }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown top-level key `resorces`
      --> fabrik.yaml:2:1
      |
    2 | resorces:
      | ^^^^^^^^
      = help: did you mean `resources`?
    ");
}

#[test]
fn unknown_resource_key_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          db:
            type: local.file
            with: { path: db.txt, content: db }
          web:
            type: local.file
            depend_on: [db]
            with: { path: web.txt, content: hi }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown key `depend_on` in resource `web`
      --> fabrik.yaml:8:5
      |
    8 |     depend_on: [db]
      |     ^^^^^^^^^
      = help: did you mean `depends_on`?
    ");
}

#[test]
fn unknown_field_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with:
              path: web.txt
              content: hi
              mdoe: "0644"
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown field `mdoe` in `web` (local.file)
      --> fabrik.yaml:8:7
      |
    8 |       mdoe: "0644"
      |       ^^^^
      = help: did you mean `mode`?
    "#);
}

#[test]
fn unknown_resource_type_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.fiel
            with: { path: web.txt, content: hi }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown resource type `local.fiel`
      --> fabrik.yaml:4:11
      |
    4 |     type: local.fiel
      |           ^^^^^^^^^^
      = help: did you mean `local.file`?
    ");
}

#[test]
fn unknown_reference_target_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          greeting:
            type: local.file
            with: { path: greeting.txt, content: hi }
          echo:
            type: local.file
            with: { path: echo.txt, content: "size ${greting.size}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: reference to unknown resource `greting`
      --> fabrik.yaml:8:44
      |
    8 |     with: { path: echo.txt, content: "size ${greting.size}" }
      |                                            ^^^^^^^^^^^^^^^
      = help: did you mean `greeting`?
    "#);
}

#[test]
fn unknown_reference_attribute_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          greeting:
            type: local.file
            with: { path: greeting.txt, content: hi }
          echo:
            type: local.file
            with: { path: echo.txt, content: "size ${greeting.sise}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `greeting` (local.file) has no attribute `sise`
      --> fabrik.yaml:8:44
      |
    8 |     with: { path: echo.txt, content: "size ${greeting.sise}" }
      |                                            ^^^^^^^^^^^^^^^^
      = help: did you mean `size`?
    "#);
}

#[test]
fn duplicate_resource_names_name_both_places() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: { path: one.txt, content: one }
          web:
            type: local.file
            with: { path: two.txt, content: two }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: duplicate resource name `web`
      --> fabrik.yaml:6:3
      |
    6 |   web:
      |   ^^^
      = help: `web` is first defined on line 3
    ");
}

#[test]
fn reserved_resource_names_are_refused() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          env:
            type: local.file
            with: { path: env.txt, content: env }
          secret:
            type: local.file
            with: { path: secret.txt, content: secret }
          stack:
            type: local.file
            with: { path: stack.txt, content: stack }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `env` is a reserved name
      --> fabrik.yaml:3:3
      |
    3 |   env:
      |   ^^^
      = help: `env`, `secret`, `stack`, `self`, `var`, `each` are reserved for references; rename the resource

    error: `secret` is a reserved name
      --> fabrik.yaml:6:3
      |
    6 |   secret:
      |   ^^^^^^
      = help: `env`, `secret`, `stack`, `self`, `var`, `each` are reserved for references; rename the resource

    error: `stack` is a reserved name
      --> fabrik.yaml:9:3
      |
    9 |   stack:
      |   ^^^^^
      = help: `env`, `secret`, `stack`, `self`, `var`, `each` are reserved for references; rename the resource

    3 errors in fabrik.yaml
    ");
}

#[test]
fn dependency_cycle_is_reported_with_its_whole_path() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a:
            type: local.file
            with: { path: a.txt, content: "${b.size}" }
          b:
            type: local.file
            with: { path: b.txt, content: "${c.size}" }
          c:
            type: local.file
            with: { path: c.txt, content: c }
            depends_on: [a]
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: dependency cycle: a → b → c → a
      --> fabrik.yaml:3:3
      |
    3 |   a:
      |   ^
      = help: each resource in the cycle needs the next one first; remove one reference or `depends_on`
    ");
}

#[test]
fn depends_on_unknown_resource_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          database:
            type: local.file
            with: { path: db.txt, content: db }
          web:
            type: local.file
            with: { path: web.txt, content: hi }
            depends_on: [databse]
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `depends_on` names unknown resource `databse`
      --> fabrik.yaml:9:18
      |
    9 |     depends_on: [databse]
      |                  ^^^^^^^
      = help: did you mean `database`?
    ");
}

#[test]
fn unset_env_variable_is_refused_where_it_is_used() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: { path: web.txt, content: "image tag ${env.IMAGE_TAG}" }
        "#,
    );
    fabrik_snapshot!(case, refused_value(&case, &[]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: environment variable `IMAGE_TAG` is not set
      --> fabrik.yaml:5:48
      |
    5 |     with: { path: web.txt, content: "image tag ${env.IMAGE_TAG}" }
      |                                                ^^^^^^^^^^^^^^^^
      = help: set it, for example `IMAGE_TAG=… fabrik plan`
    "#);
    // `validate` needs no environment variable: it names the ones a run needs.
    let validate = case.run(["validate"]);
    fabrik_snapshot!(case, validate, @"
    exit code: 0
    ----- stdout -----
    fabrik.yaml is valid: stack `shop`, 1 resource.
    Environment variables a run needs, not set here: `IMAGE_TAG`

    ----- stderr -----
    ");
}

#[test]
fn unquoted_mode_is_the_wrong_kind_of_value() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with:
              path: web.txt
              content: hi
              mode: 0644
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `mode` in `web` (local.file) must be a string, not a number
      --> fabrik.yaml:8:13
      |
    8 |       mode: 0644
      |             ^^^^
      = help: put the value in quotes to make it a string
    ");
}

#[test]
fn missing_required_field_is_named() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with:
              path: web.txt
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `web` (local.file) is missing required field `content`
      --> fabrik.yaml:3:3
      |
    3 |   web:
      |   ^^^
      = help: The file's content.
    ");
}

/// A stack with state, then a spec broken in several ways: no command may touch a byte of the
/// state directory (snapshot, journal or lock).
#[test]
fn bad_spec_leaves_existing_state_byte_identical() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: { path: web.txt, content: "v1\n" }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    let before = case.state_files();
    assert!(
        before.keys().any(|p| p.ends_with("shop.state.json")),
        "the apply wrote a state: {before:?}"
    );
    let plan_and_apply = [&["plan"][..], &["apply", "--yes"], &["plan", "--refresh"]];
    let with_destroy = [
        &["plan"][..],
        &["apply", "--yes"],
        &["plan", "--refresh"],
        &["destroy", "--yes"],
    ];
    // Destroy works from the state and needs no environment variable of the spec, so an unset
    // one stops only the commands that resolve inputs.
    let broken = [
        (
            "stack: shop\nresources:\n  web: [unclosed\n",
            &with_destroy[..],
        ),
        (
            "stack: shop\nresources:\n  web:\n    type: local.file\n    with: { path: web.txt, contnt: v2 }\n",
            &with_destroy,
        ),
        (
            "stack: shop\nresources:\n  web:\n    type: local.file\n    with: { path: web.txt, content: \"${env.UNSET_VAR}\" }\n",
            &plan_and_apply,
        ),
    ];
    for (spec, commands) in broken {
        case.write("fabrik.yaml", spec);
        for args in commands {
            let out = case.run(*args);
            assert_eq!(out.code, 1, "{args:?} on a bad spec:\n{out}");
            assert_eq!(
                case.state_files(),
                before,
                "{args:?} on a bad spec changed the state directory:\n{out}"
            );
        }
    }
    assert_eq!(case.read("web.txt"), "v1\n");
}

/// A spec of `count` one-line `local.file` resources, `line(i)` giving resource `i`'s line
/// (file line `i + 3`).
fn large_spec(count: usize, line: impl Fn(usize) -> String) -> String {
    let mut yaml = String::from("stack: big\nresources:\n");
    for i in 0..count {
        yaml.push_str(&line(i));
        yaml.push('\n');
    }
    yaml
}

#[test]
fn a_large_spec_reports_problems_where_they_are_in_every_part_of_it() {
    // Large enough to be parsed in runs on several cores: what is reported must still point at
    // the file's own lines and columns, early and late in the file.
    let plain = |name: String, i: usize, field: &str| {
        format!("  {name}: {{ type: local.file, with: {{ path: f{i}.txt, {field}: x }} }}")
    };
    let yaml = large_spec(8000, |i| {
        let name = if i == 7000 {
            "r10".into()
        } else {
            format!("r{i}")
        };
        plain(name, i, "content")
    });
    assert!(
        yaml.len() > 256 * 1024,
        "the spec must be large: {}",
        yaml.len()
    );
    let out = refused(&Case::new().spec(&yaml));
    assert!(
        out.stderr.contains("error: duplicate resource name `r10`")
            && out.stderr.contains("--> fabrik.yaml:7003:3"),
        "{out}"
    );
    assert!(out.stderr.contains("first defined on line 13"), "{out}");

    let yaml = large_spec(8000, |i| {
        let field = if i == 100 || i == 6500 {
            "contnet"
        } else {
            "content"
        };
        plain(format!("r{i}"), i, field)
    });
    let out = refused(&Case::new().spec(&yaml));
    for i in [100, 6500] {
        let text = plain(format!("r{i}"), i, "contnet");
        let column = text.find("contnet").unwrap() + 1;
        let at = format!("--> fabrik.yaml:{}:{column}", i + 3);
        assert!(out.stderr.contains(&at), "expected {at}:\n{out}");
    }

    // And a good one is read whole: every resource is planned.
    let yaml = large_spec(8000, |i| plain(format!("r{i}"), i, "content"));
    let case = Case::new().spec(&yaml);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("Plan: 8000 to add, 0 to change, 0 to destroy."),
        "{}",
        &plan.stdout[plan.stdout.len().saturating_sub(300)..]
    );
}

// ---- self-references -------------------------------------------------------------------------

#[test]
fn a_self_reference_is_a_located_error() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a: { type: local.file, with: { path: a.txt, content: "x ${a.content_hash}" } }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` refers to itself
      --> fabrik.yaml:3:59
      |
    3 |   a: { type: local.file, with: { path: a.txt, content: "x ${a.content_hash}" } }
      |                                                           ^^^^^^^^^^^^^^^^^
      = help: its inputs are needed to create it, so they cannot use its own attributes
    "#);
    assert!(!case.exists("a.txt"));
}

#[test]
fn a_self_reference_beside_another_resource_is_a_located_error_not_a_panic() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a: { type: local.file, with: { path: a.txt, content: "x ${a.path}" } }
          b: { type: local.file, with: { path: b.txt, content: "b" } }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` refers to itself
      --> fabrik.yaml:3:59
      |
    3 |   a: { type: local.file, with: { path: a.txt, content: "x ${a.path}" } }
      |                                                           ^^^^^^^^^
      = help: its inputs are needed to create it, so they cannot use its own attributes
    "#);
    assert!(!case.exists("a.txt") && !case.exists("b.txt"));
}

#[test]
fn depends_on_itself_is_a_located_error() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a:
            type: local.file
            with: { path: a.txt, content: a }
            depends_on: [b, a]
          b: { type: local.file, with: { path: b.txt, content: "b" } }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` refers to itself
      --> fabrik.yaml:6:21
      |
    6 |     depends_on: [b, a]
      |                     ^
      = help: a resource cannot depend on itself; remove it from its own `depends_on`
    ");
}

/// With a state holding `a` and `b`, making `a` refer to itself must not read as "remove
/// everything" (its plan used to leave `a` out): every command refuses, and nothing changes.
#[test]
fn a_self_reference_in_an_applied_stack_changes_nothing() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a: { type: local.file, with: { path: a.txt, content: "a" } }
          b: { type: local.file, with: { path: b.txt, content: "${a.size}" } }
        "#,
    );
    case.expect(["apply", "--yes"], 0);
    let before = case.state_files();
    case.set_spec(
        r#"
        stack: shop
        resources:
          a: { type: local.file, with: { path: a.txt, content: "${a.size}" } }
          b: { type: local.file, with: { path: b.txt, content: "${a.size}" } }
        "#,
    );
    for args in [
        &["validate"][..],
        &["plan"],
        &["plan", "--refresh"],
        &["apply", "--yes"],
    ] {
        let out = case.run(args);
        assert_eq!(out.code, 1, "{args:?}:\n{out}");
        assert!(out.stdout.is_empty(), "{args:?}:\n{out}");
        assert!(
            out.stderr
                .starts_with("error: `a` refers to itself\n  --> fabrik.yaml:3:57\n"),
            "{args:?}:\n{out}"
        );
        assert_eq!(case.state_files(), before, "{args:?} changed the state");
    }
    assert_eq!(case.read("a.txt"), "a");
    assert_eq!(case.read("b.txt"), "1");
}

// ---- every problem at once -------------------------------------------------------------------

/// A misspelt resource key, gate option, gate kind, field and type name: one run names them
/// all, and nothing that follows from them (no "missing required field `content`" after
/// `contnt`, no "says nothing to check" after `htp`, no unknown reference to `b`, whose entry
/// could not be read).
#[test]
fn every_problem_is_reported_in_one_run() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a:
            type: local.file
            with: { path: a.txt, contnt: "${b.path}" }
            verfy:
              - http: "https://example.com"
          b:
            typ: local.file
            with: { path: b.txt, content: "b" }
          c:
            type: local.fiel
            with: { path: c.txt, content: "c" }
            verify:
              - http: "https://example.com"
                statuss: 200
        verify:
          - htp: "https://example.com"
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown field `contnt` in `a` (local.file)
      --> fabrik.yaml:5:26
      |
    5 |     with: { path: a.txt, contnt: "${b.path}" }
      |                          ^^^^^^
      = help: did you mean `content`?

    error: unknown key `verfy` in resource `a`
      --> fabrik.yaml:6:5
      |
    6 |     verfy:
      |     ^^^^^
      = help: did you mean `verify`?

    error: unknown key `typ` in resource `b`
      --> fabrik.yaml:9:5
      |
    9 |     typ: local.file
      |     ^^^
      = help: did you mean `type`?

    error: unknown resource type `local.fiel`
       --> fabrik.yaml:12:11
       |
    12 |     type: local.fiel
       |           ^^^^^^^^^^
       = help: did you mean `local.file`?

    error: unknown option `statuss` in an `http` gate
       --> fabrik.yaml:16:9
       |
    16 |         statuss: 200
       |         ^^^^^^^
       = help: did you mean `status`?

    error: unknown option `htp` in a verify entry
       --> fabrik.yaml:18:5
       |
    18 |   - htp: "https://example.com"
       |     ^^^
       = help: did you mean `http`?

    6 errors in fabrik.yaml
    "#);
}

#[test]
fn a_long_list_of_problems_is_cut_after_fifty() {
    // 20,000 resources with one typo each: the first fifty are shown, the rest counted.
    let yaml = large_spec(20_000, |i| {
        format!("  r{i}: {{ type: local.file, with: {{ path: f{i}.txt, contnet: x }} }}")
    });
    let case = Case::new().spec(&yaml);
    let out = refused(&case);
    assert_eq!(out.stderr.matches("error: ").count(), 50, "{out}");
    assert!(out.stderr.len() < 20_000, "{} bytes", out.stderr.len());
    let tail: Vec<&str> = out.stderr.lines().rev().take(6).collect();
    fabrik_snapshot!(case, tail.into_iter().rev().collect::<Vec<_>>().join("\n"), @"
       |                                                   ^^^^^^^
       = help: did you mean `content`?

    … and 19950 more problems

    20000 errors in fabrik.yaml
    ");
}

/// "Did you mean" compares a name with every resource's: done for each of 20,000 misspelt
/// names it took minutes. Only the problems shown get one.
#[test]
fn thousands_of_unknown_names_are_reported_promptly() {
    let yaml = large_spec(20_000, |i| {
        format!(
            "  r{i}: {{ type: local.file, with: {{ path: f{i}.txt, content: \"${{rr{i}.size}}\" }} }}"
        )
    });
    let case = Case::new().spec(&yaml);
    let started = std::time::Instant::now();
    let out = case.run(["validate"]);
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{out}");
    assert!(
        took < std::time::Duration::from_secs(60),
        "validate took {took:?}"
    );
    assert!(
        out.stderr
            .starts_with("error: reference to unknown resource `rr0`\n  --> fabrik.yaml:3:59\n"),
        "{out}"
    );
    assert_eq!(
        out.stderr.matches("= help: did you mean").count(),
        50,
        "{out}"
    );
    assert!(
        out.stderr
            .ends_with("… and 19950 more problems\n\n20000 errors in fabrik.yaml\n")
    );
}

// ---- values a provider refuses ---------------------------------------------------------------

/// `validate` asks the provider about the values it knows without a state or secrets (literal
/// values and the inputs of other resources), as `plan` does, and points at each.
#[test]
fn a_value_the_provider_refuses_is_refused_by_validate_where_it_is_written() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a:
            type: local.file
            with: { path: a.txt, content: a, mode: "rwx" }
          b:
            type: local.file
            with: { path: "", content: b, mode: "${a.mode}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` (local.file): `mode` must be octal permission bits such as "0644", not "rwx"
      --> fabrik.yaml:5:44
      |
    5 |     with: { path: a.txt, content: a, mode: "rwx" }
      |                                            ^^^^^

    error: `b` (local.file): `path` must not be empty
      --> fabrik.yaml:8:19
      |
    8 |     with: { path: "", content: b, mode: "${a.mode}" }
      |                   ^^

    error: `b` (local.file): `mode` must be octal permission bits such as "0644", not "rwx"
      --> fabrik.yaml:8:41
      |
    8 |     with: { path: "", content: b, mode: "${a.mode}" }
      |                                         ^^^^^^^^^^^

    3 errors in fabrik.yaml
    "#);
}

/// A provider's `rate_limit_wait` is a duration: a word or a bare number is refused where it
/// is written, before any provider is configured.
#[test]
fn a_rate_limit_wait_that_is_not_a_duration_is_a_located_error() {
    let case = Case::new().spec(
        r#"
        stack: shop
        providers:
          cloudflare: { token: "t", rate_limit_wait: soon }
          coolify: { url: "https://coolify.example", token: "t", rate_limit_wait: 300 }
        resources: {}
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `rate_limit_wait` in provider `cloudflare` must be a duration such as "90s", "5m" or "1h 30m", not "soon"
      --> fabrik.yaml:3:46
      |
    3 |   cloudflare: { token: "t", rate_limit_wait: soon }
      |                                              ^^^^

    error: `rate_limit_wait` in provider `coolify` must be a duration, not an integer
      --> fabrik.yaml:4:75
      |
    4 |   coolify: { url: "https://coolify.example", token: "t", rate_limit_wait: 300 }
      |                                                                           ^^^
      = help: give it a unit, such as "90s" or "5m"

    2 errors in fabrik.yaml
    "#);
}

/// A malformed `${env.NAME:-default}` is pointed at inside its string.
#[test]
fn malformed_env_defaults_are_located_in_the_string() {
    let mut seen = String::new();
    for written in ["${env.:-x}", "${secret.X:-a}", "${web.size:-1}", "${:-x}"] {
        let case = Case::new().spec(&format!(
            "stack: shop\nresources:\n  web:\n    type: local.file\n    with: {{ path: web.txt, content: \"a {written} b\" }}\n"
        ));
        seen.push_str(&refused(&case).stderr);
    }
    insta::assert_snapshot!(seen, @r#"
    error: `${env.:-x}` is not a reference: names hold letters, digits, `_` and `-`, and one `.` separates the name from the attribute
      --> fabrik.yaml:5:40
      |
    5 |     with: { path: web.txt, content: "a ${env.:-x} b" }
      |                                        ^^^^^^^^^^
    error: `${secret.X:-a}` cannot have a default: only `${env.NAME:-default}` can
      --> fabrik.yaml:5:40
      |
    5 |     with: { path: web.txt, content: "a ${secret.X:-a} b" }
      |                                        ^^^^^^^^^^^^^^
    error: `${web.size:-1}` cannot have a default: only `${env.NAME:-default}` can
      --> fabrik.yaml:5:40
      |
    5 |     with: { path: web.txt, content: "a ${web.size:-1} b" }
      |                                        ^^^^^^^^^^^^^^
    error: `${:-x}` names no variable: write `${env.NAME:-default}`
      --> fabrik.yaml:5:40
      |
    5 |     with: { path: web.txt, content: "a ${:-x} b" }
      |                                        ^^^^^^
    "#);
}

#[test]
fn ignore_changes_names_fields_of_the_type() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: { path: web.txt, content: hi }
            ignore_changes: [mdoe, colour]
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `ignore_changes` names unknown field `mdoe` of `web` (local.file)
      --> fabrik.yaml:6:22
      |
    6 |     ignore_changes: [mdoe, colour]
      |                      ^^^^
      = help: did you mean `mode`?

    error: `ignore_changes` names unknown field `colour` of `web` (local.file)
      --> fabrik.yaml:6:28
      |
    6 |     ignore_changes: [mdoe, colour]
      |                            ^^^^^^
      = help: its fields are `path`, `content`, `mode`

    2 errors in fabrik.yaml
    ");
}

/// A default is written in the spec: a password there is refused as a literal one is.
#[test]
fn a_backend_url_default_holding_a_password_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: shop
        backend:
          postgres:
            url: "${env.STATE_DB_URL:-postgres://fabrik:hunter2@db/fabrik}"
        resources: {}
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `url` holds a password in the spec (in a default)
      --> fabrik.yaml:4:10
      |
    4 |     url: "${env.STATE_DB_URL:-postgres://fabrik:hunter2@db/fabrik}"
      |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
      = help: put the connection string in a secret and write `url: "${secret.STATE_DB_URL}"`
    "#);
}

/// A `command` gate runs without a shell: a command line written as one string is refused where
/// it is written, with the list it means; an empty list, a number among the arguments and a
/// misspelt option are located too.
#[test]
fn a_command_gate_that_is_not_a_list_of_strings_is_a_located_error() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          page:
            type: local.file
            with: { path: page.txt, content: hello }
            verify:
              - command: "./smoke-test.sh --url ${page.path}"
        verify:
          - command: []
          - command: ["sleep", 5]
            dri: checks
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `command` must be a list of strings, not a string
      --> fabrik.yaml:7:18
      |
    7 |       - command: "./smoke-test.sh --url ${page.path}"
      |                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
      = help: write `command: [PROGRAM, ARG, ...]`: the program runs without a shell, each argument its own item

    error: `command` is empty
      --> fabrik.yaml:9:14
      |
    9 |   - command: []
      |              ^
      = help: give the program to run, then its arguments

    error: `command` lists strings, not an integer
       --> fabrik.yaml:10:24
       |
    10 |   - command: ["sleep", 5]
       |                        ^
       = help: write "5" in quotes

    error: unknown option `dri` in a `command` gate
       --> fabrik.yaml:11:5
       |
    11 |     dri: checks
       |     ^^^
       = help: did you mean `dir`?

    4 errors in fabrik.yaml
    "#);
    assert!(!case.exists("page.txt"));
}

// ---------------------------------------------------------------------------------------------
// Variables: what `validate` sees in the spec is refused as above; a value given for a run
// only when the run reads it.
// ---------------------------------------------------------------------------------------------

const VARS: &str = r#"
    stack: shop
    vars:
      port: { type: number, default: 8080 }
      region: { description: Where the shop runs. }
    resources:
      web:
        type: local.file
        with: { path: web.conf, content: "${var.region}:${var.port}" }
"#;

/// Runs `apply --yes` and `plan` with `args` on a spec whose variables' values are bad: both
/// exit 1 with one and the same message, and nothing is planned or written.
fn refused_value(case: &Case, args: &[&str]) -> Output {
    let out = case.run(["apply", "--yes"].iter().chain(args));
    assert_eq!(out.code, 1, "a bad value must exit 1:\n{out}");
    assert!(out.stdout.is_empty(), "nothing may be planned:\n{out}");
    assert!(!case.state_dir().exists(), "{out}");
    let plan = case.run(["plan"].iter().chain(args));
    assert_eq!(plan, out, "`plan` and `apply` must say the same");
    assert!(!case.state_dir().exists());
    out
}

#[test]
fn a_default_that_does_not_fit_its_type_is_a_located_error() {
    let case = Case::new().spec(&VARS.replace("default: 8080", "default: eighty"));
    fabrik_snapshot!(case, refused(&case), @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the default of variable `port` must be a number, not a string
      --> fabrik.yaml:3:34
      |
    3 |   port: { type: number, default: eighty }
      |                                  ^^^^^^
    ");
}

#[test]
fn an_undeclared_variable_is_a_located_error_with_a_suggestion() {
    let case = Case::new().spec(&VARS.replace("${var.port}", "${var.prot}"));
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown variable `prot`
      --> fabrik.yaml:8:53
      |
    8 |     with: { path: web.conf, content: "${var.region}:${var.prot}" }
      |                                                     ^^^^^^^^^^^
      = help: did you mean `port`?
    "#);
}

#[test]
fn a_list_variable_inside_a_longer_string_is_a_located_error() {
    let case = Case::new().spec(&VARS.replace(
        "port: { type: number, default: 8080 }",
        "port: { type: list, default: [80, 443] }",
    ));
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `port` is a list, which cannot be written inside a string
      --> fabrik.yaml:8:53
      |
    8 |     with: { path: web.conf, content: "${var.region}:${var.port}" }
      |                                                     ^^^^^^^^^^^
      = help: write `"${var.port}"` alone to pass the list as it is
    "#);
}

#[test]
fn a_variable_without_a_value_names_the_three_ways_to_give_one() {
    let case = Case::new().spec(VARS);
    fabrik_snapshot!(case, refused_value(&case, &[]), @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `region` has no value and no default
      region: Where the shop runs.
    give one with `--var region=VALUE`, the environment variable `FABRIK_VAR_region`, or a line `region: VALUE` in fabrik.vars.yaml (or the file --vars-file names)
    ");
}

#[test]
fn a_value_that_does_not_fit_its_type_names_the_variable_and_where_it_came_from() {
    let case = Case::new().spec(VARS);
    let out = refused_value(&case, &["--var", "region=eu", "--var", "port=http"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `port` from --var must be a number, not `http`
    ");

    let case = Case::new().spec(VARS).env("FABRIK_VAR_port", "eighty");
    let out = refused_value(&case, &["--var", "region=eu"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `port` from FABRIK_VAR_port must be a number, not `eighty`
    ");

    let case = Case::new().spec(VARS);
    case.write("fabrik.vars.yaml", "region: eu\nport: [80]\n");
    fabrik_snapshot!(case, refused_value(&case, &[]), @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `port` must be a number, not a list
      --> fabrik.vars.yaml:2:7
      |
    2 | port: [80]
      |       ^
    ");
}

#[test]
fn an_unknown_variable_given_a_value_is_refused_with_a_suggestion() {
    let case = Case::new().spec(VARS);
    let out = refused_value(&case, &["--var", "regoin=eu"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: --var names unknown variable `regoin`
    did you mean `region`?
    ");

    let case = Case::new().spec(VARS);
    case.write("staging.yaml", "region: eu\nprot: 80\n");
    let out = refused_value(&case, &["--vars-file", "staging.yaml"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown variable `prot`
      --> staging.yaml:2:1
      |
    2 | prot: 80
      | ^^^^
      = help: did you mean `port`?
    ");
}

/// A vars file is not the spec: what stops reading it is said of the vars file, and a name
/// given twice (YAML would keep the last) is refused where it is repeated.
#[test]
fn a_broken_vars_file_is_named_as_one_and_located_in_it() {
    let case = Case::new().spec(VARS);
    case.write("fabrik.vars.yaml", "region: eu\nport: 80\nregion: us\n");
    fabrik_snapshot!(case, refused_value(&case, &[]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: duplicate variable `region`
      --> fabrik.vars.yaml:3:1
      |
    3 | region: us
      | ^^^^^^
      = help: `region` is first given on line 1
    "#);

    let case = Case::new().spec(VARS);
    case.write("fabrik.vars.yaml", b"region: \xffu\n");
    fabrik_snapshot!(case, refused_value(&case, &[]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the vars file is not valid UTF-8
      --> fabrik.vars.yaml:1:9
      |
    1 | region: �u
      |         ^
      = help: save the file as UTF-8
    "#);

    let case = Case::new().spec(VARS);
    case.write("fabrik.vars.yaml", "region: eu\n---\nregion: us\n");
    fabrik_snapshot!(case, refused_value(&case, &[]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: invalid YAML: the file holds a second YAML document (after `---`); a vars file is one document
      --> fabrik.vars.yaml:3:1
      |
    3 | region: us
      | ^
    "#);

    let case = Case::new().spec(VARS);
    std::fs::create_dir(case.path("staging.yaml")).unwrap();
    fabrik_snapshot!(case, refused_value(&case, &["--vars-file", "staging.yaml"]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot read vars file staging.yaml: Is a directory (os error 21)
    "#);
}

/// Keys someone coming from Terraform writes first are pointed at fabrik's own.
#[test]
fn keys_from_terraform_are_pointed_at_their_fabrik_names() {
    let case = Case::new().spec(
        r#"
        stack: shop
        variables:
          region: { default: eu }
        resources:
          web:
            type: local.file
            count: 2
            lifecycle: { ignore_changes: [mode] }
            with: { path: web.conf, content: hello }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown top-level key `variables`
      --> fabrik.yaml:2:1
      |
    2 | variables:
      | ^^^^^^^^^
      = help: variables are declared under `vars:`

    error: unknown key `count` in resource `web`
      --> fabrik.yaml:7:5
      |
    7 |     count: 2
      |     ^^^^^
      = help: repeat a resource with `for_each: [a, b]`, one instance per key

    error: unknown key `lifecycle` in resource `web`
      --> fabrik.yaml:8:5
      |
    8 |     lifecycle: { ignore_changes: [mode] }
      |     ^^^^^^^^^
      = help: write `ignore_changes:` and `protect:` on the resource itself

    3 errors in fabrik.yaml
    "#);
}

/// `${…}` that is no reference: a bare name is shown with the prefixes it may lack (`var.`
/// forgotten, as in Terraform), a default as an environment variable's; anything else gets the
/// list of every kind of reference, those of `vars:` and `for_each` included.
#[test]
fn a_malformed_reference_lists_every_kind_of_reference() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: { path: "${PORT:-8080}.conf", content: "${region}", mode: "${a b}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `${PORT:-8080}` is not a reference: write `${env.PORT:-8080}`; only an environment variable takes a default
      --> fabrik.yaml:5:20
      |
    5 |     with: { path: "${PORT:-8080}.conf", content: "${region}", mode: "${a b}" }
      |                    ^^^^^^^^^^^^^

    error: `${region}` is not a reference: write `${var.region}` for a variable, `${secret.region}` for a secret, `${env.region}` for an environment variable, or `${region.ATTRIBUTE}` for an attribute of a resource
      --> fabrik.yaml:5:50
      |
    5 |     with: { path: "${PORT:-8080}.conf", content: "${region}", mode: "${a b}" }
      |                                                  ^^^^^^^^^^^

    error: `${a b}` is not a reference: write `${RESOURCE.ATTRIBUTE}`, `${RESOURCE[KEY].ATTRIBUTE}`, `${var.NAME}`, `${env.NAME}`, `${env.NAME:-default}`, `${secret.NAME}`, `${each.key}`, `${each.value}` or `${stack}`
      --> fabrik.yaml:5:69
      |
    5 |     with: { path: "${PORT:-8080}.conf", content: "${region}", mode: "${a b}" }
      |                                                                     ^^^^^^^^

    3 errors in fabrik.yaml
    "#);
}

/// `for_each` as written: its shape, its keys, and `${each.…}` and `NAME[KEY]` where they
/// mean nothing, all reported at once and located.
#[test]
fn for_each_problems_are_located() {
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          port: { type: number, default: 80 }
        resources:
          web:
            type: local.file
            for_each: [a, b, a]
            with: { path: "${each.key}.txt", content: x, mdoe: "0644" }
          keys:
            type: local.file
            for_each: ["a b", c]
            with: { path: "${each.value.port}.txt", content: x }
          count:
            type: local.file
            for_each: 3
            with: { path: n.txt, content: x }
          typed:
            type: local.file
            for_each: "${var.port}"
            with: { path: "${each.key}.port", content: x }
          plain:
            type: local.file
            with: { path: "${each.key}.txt", content: "${web.path}" }
          other:
            type: local.file
            depends_on: ["plain[a]"]
            with: { path: other.txt, content: "${plain[a].path}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: duplicate key `a` in `for_each`
      --> fabrik.yaml:7:22
      |
    7 |     for_each: [a, b, a]
      |                      ^
      = help: `a` is first listed at 7:16; each key names one instance

    error: unknown field `mdoe` in `web` (local.file)
      --> fabrik.yaml:8:50
      |
    8 |     with: { path: "${each.key}.txt", content: x, mdoe: "0644" }
      |                                                  ^^^^
      = help: did you mean `mode`?

    error: `for_each` key `a b` cannot name an instance
       --> fabrik.yaml:11:16
       |
    11 |     for_each: ["a b", c]
       |                ^^^^^
       = help: a key names an instance, `NAME[KEY]`: 1 to 128 letters, digits, `_`, `-` and `.`

    error: `${each.value.port}`: the values of a list are its strings
       --> fabrik.yaml:12:20
       |
    12 |     with: { path: "${each.value.port}.txt", content: x }
       |                    ^^^^^^^^^^^^^^^^^^
       = help: write `${each.value}`, or give `for_each` a map of maps: `{ KEY: { ATTR: … } }`

    error: `for_each` must be a list of strings or a map, not an integer
       --> fabrik.yaml:15:15
       |
    15 |     for_each: 3
       |               ^
       = help: write a list of strings (`for_each: [a, b]`), a map (`for_each: { a: { port: 8080 } }`), or `${var.NAME}` of a list or map variable

    error: variable `port` is a number, and `for_each` takes a list or a map
       --> fabrik.yaml:19:16
       |
    19 |     for_each: "${var.port}"
       |                ^^^^^^^^^^^
       = help: declare it with `type: list` or `type: map`

    error: `${each.key}` is only known in a resource with `for_each`
       --> fabrik.yaml:23:20
       |
    23 |     with: { path: "${each.key}.txt", content: "${web.path}" }
       |                    ^^^^^^^^^^^
       = help: `plain` has no `for_each`: add one, or write the value itself

    error: `web` has `for_each`: a reference names one of its instances
       --> fabrik.yaml:23:48
       |
    23 |     with: { path: "${each.key}.txt", content: "${web.path}" }
       |                                                ^^^^^^^^^^^
       = help: write `${web[KEY].path}`

    error: `plain` has no `for_each`, so it has no instances
       --> fabrik.yaml:26:18
       |
    26 |     depends_on: ["plain[a]"]
       |                  ^^^^^^^^^^
       = help: write `plain`

    error: `plain` has no `for_each`, so it has no instances
       --> fabrik.yaml:27:40
       |
    27 |     with: { path: other.txt, content: "${plain[a].path}" }
       |                                        ^^^^^^^^^^^^^^^^
       = help: write `${plain.path}`

    10 errors in fabrik.yaml
    "#);
}

#[test]
fn a_cycle_through_for_each_references_is_reported() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          a:
            type: local.file
            for_each: [one, two]
            with: { path: "${each.key}.txt", content: "${b.content}" }
          b:
            type: local.file
            with: { path: b.txt, content: "${a[one].content}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: dependency cycle: a → b → a
      --> fabrik.yaml:3:3
      |
    3 |   a:
      |   ^
      = help: each resource in the cycle needs the next one first; remove one reference or `depends_on`
    ");
}

#[test]
fn a_reference_to_a_key_for_each_does_not_have_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            for_each: [alpha, beta]
            with: { path: "${each.key}.txt", content: x }
          index:
            type: local.file
            depends_on: ["web[gamma]"]
            with: { path: index.txt, content: "${web[alhpa].path}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `web` has no key `gamma`
      --> fabrik.yaml:9:18
      |
    9 |     depends_on: ["web[gamma]"]
      |                  ^^^^^^^^^^^^
      = help: its keys are `alpha`, `beta`

    error: `web` has no key `alhpa`
       --> fabrik.yaml:10:40
       |
    10 |     with: { path: index.txt, content: "${web[alhpa].path}" }
       |                                        ^^^^^^^^^^^^^^^^^^
       = help: did you mean `alpha`?

    2 errors in fabrik.yaml
    "#);
}

/// Keys a variable gives are judged once it has a value: `validate`, which reads no value,
/// passes and names the variable; `plan` and `apply` refuse, pointing at the `for_each`.
#[test]
fn keys_from_a_variable_are_judged_with_its_value() {
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          sites: { type: list }
        resources:
          web:
            type: local.file
            for_each: "${var.sites}"
            with: { path: "${each.key}.txt", content: x }
          index:
            type: local.file
            with: { path: index.txt, content: "${web[a].path}" }
        "#,
    );
    fabrik_snapshot!(case, case.run(["validate"]), @r"
    exit code: 0
    ----- stdout -----
    fabrik.yaml is valid: stack `shop`, 2 resources.
    Variables a run must give a value (--var, FABRIK_VAR_NAME or fabrik.vars.yaml): `sites`
    Checked as written, made once per key when the variable has a value: `web` (${var.sites})

    ----- stderr -----
    ");
    for (value, name) in [
        ("[a, b, a]", "duplicate"),
        ("[a, 'x y']", "invalid"),
        ("[a, 1]", "not a string"),
        ("[b]", "missing key"),
    ] {
        let out = case.run(["apply", "--yes", "--var", &format!("sites={value}")]);
        assert_eq!(out.code, 1, "{name}: {out}");
        assert!(out.stdout.is_empty(), "{name}: {out}");
        assert!(!case.state_dir().exists(), "{name}: {out}");
        assert!(out.stderr.contains("--> fabrik.yaml:"), "{name}: {out}");
    }
    fabrik_snapshot!(case, case.run(["plan", "--var", "sites=[a, b, a]"]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `sites` lists `a` twice: each key of `for_each` names one instance
      --> fabrik.yaml:7:16
      |
    7 |     for_each: "${var.sites}"
      |                ^^^^^^^^^^^^
    "#);
    fabrik_snapshot!(case, case.run(["plan", "--var", "sites=[b, 'x y']"]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `sites` gives `for_each` key `x y`, which cannot name an instance
      --> fabrik.yaml:7:16
      |
    7 |     for_each: "${var.sites}"
      |                ^^^^^^^^^^^^
      = help: a key names an instance, `NAME[KEY]`: 1 to 128 letters, digits, `_`, `-` and `.`
    "#);
    fabrik_snapshot!(case, case.run(["plan", "--var", "sites=[b]"]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `web` has no key `a`
       --> fabrik.yaml:11:40
       |
    11 |     with: { path: index.txt, content: "${web[a].path}" }
       |                                        ^^^^^^^^^^^^^^
       = help: its keys are `b`
    "#);
}

#[test]
fn a_sensitive_or_scalar_variable_cannot_give_keys() {
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          token: { type: list, sensitive: true, default: [abcdefghij] }
          name: { type: string, default: a }
        resources:
          web:
            type: local.file
            for_each: "${var.token}"
            with: { path: "${each.key}.txt", content: x }
          one:
            type: local.file
            for_each: "${var.name}"
            with: { path: "${each.key}.one", content: x }
          two:
            type: local.file
            for_each: ["${var.name}"]
            with: { path: "${each.key}.two", content: x }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: variable `token` is sensitive, and the keys of `for_each` name resources in plans and the state
      --> fabrik.yaml:8:16
      |
    8 |     for_each: "${var.token}"
      |                ^^^^^^^^^^^^
      = help: give `for_each` a variable that is not sensitive; a secret belongs in a value

    error: variable `name` is a string, and `for_each` takes a list or a map
       --> fabrik.yaml:12:16
       |
    12 |     for_each: "${var.name}"
       |                ^^^^^^^^^^^
       = help: declare it with `type: list` or `type: map`

    error: the keys of `for_each` must be known before planning: they name its instances
       --> fabrik.yaml:16:15
       |
    16 |     for_each: ["${var.name}"]
       |               ^
       = help: write them out, or give the whole list or map as `${var.NAME}`

    3 errors in fabrik.yaml
    "#);
}

/// What `${each.value}` stands for is judged per instance, pointed at where it is written.
#[test]
fn an_instance_whose_value_does_not_fit_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          sites: { type: list, default: [shop] }
        resources:
          vhosts:
            type: local.file
            for_each:
              shop: { port: 8080 }
              blog: { prot: 8081 }
            with: { path: "${each.key}.conf", content: "listen ${each.value.port}" }
          whole:
            type: local.file
            for_each: { a: { port: 1 } }
            with: { path: "${each.key}.whole", content: "value ${each.value}" }
          logs:
            type: local.file
            for_each: "${var.sites}"
            with: { path: "${each.key}.log", content: "${vhosts[each.key].path}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `${each.value.port}`: the value of key `blog` has no `port`
       --> fabrik.yaml:10:56
       |
    10 |     with: { path: "${each.key}.conf", content: "listen ${each.value.port}" }
       |                                                        ^^^^^^^^^^^^^^^^^^
       = help: did you mean `prot`?

    error: `${each.value}` of `a` is a map, which cannot be written inside a string
       --> fabrik.yaml:14:56
       |
    14 |     with: { path: "${each.key}.whole", content: "value ${each.value}" }
       |                                                        ^^^^^^^^^^^^^
       = help: write `"${each.value}"` alone to pass it as it is, or name one of its entries: `${each.value.NAME}`

    2 errors in fabrik.yaml
    "#);
    let case = Case::new().spec(
        r#"
        stack: shop
        vars:
          sites: { type: list }
        resources:
          vhosts:
            type: local.file
            for_each: [shop, blog]
            with: { path: "${each.key}.conf", content: x }
          logs:
            type: local.file
            for_each: "${var.sites}"
            with: { path: "${each.key}.log", content: "${vhosts[each.key].path}" }
        "#,
    );
    case.expect(["validate"], 0);
    fabrik_snapshot!(case, case.run(["plan", "--var", "sites=[shop, wiki]"]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `vhosts` has no key `wiki`
       --> fabrik.yaml:12:48
       |
    12 |     with: { path: "${each.key}.log", content: "${vhosts[each.key].path}" }
       |                                                ^^^^^^^^^^^^^^^^^^^^^^^^
       = help: its keys are `blog`, `shop`
    "#);
}

#[test]
fn an_instance_referring_to_another_of_its_resource_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            for_each: [a, b]
            with: { path: "${each.key}.txt", content: "${web[b].size}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `web` refers to its own instance `web[b]`
      --> fabrik.yaml:6:48
      |
    6 |     with: { path: "${each.key}.txt", content: "${web[b].size}" }
      |                                                ^^^^^^^^^^^^^^
      = help: the instances of a `for_each` are made from the same fields, so they cannot use each other's attributes
    "#);
}

#[test]
fn moves_pointing_nowhere_chained_repeated_or_malformed_are_located_errors() {
    let case = Case::new().spec(
        r#"
        stack: shop
        moved:
          - { from: old, to: nowhere }
          - { from: web, to: api }
          - { from: a, to: b }
          - { from: b, to: a }
          - { from: x, to: api }
          - { from: gone, to: "api[" }
          - { from: gone }
        resources:
          web:
            type: local.file
            with: { path: web.txt, content: "" }
          api:
            type: local.file
            with: { path: api.txt, content: "" }
          a:
            type: local.file
            with: { path: a.txt, content: "" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `nowhere` is not a resource of the spec
      --> fabrik.yaml:3:22
      |
    3 |   - { from: old, to: nowhere }
      |                      ^^^^^^^
      = help: `to` names the resource as the spec calls it now

    error: `web` is still a resource of the spec: it cannot be moved away
      --> fabrik.yaml:4:13
      |
    4 |   - { from: web, to: api }
      |             ^^^
      = help: rename the resource to `api` in `resources:`, or remove this entry

    error: `a` is moved from here and moved to on line 6: chains and cycles of moves are not followed
      --> fabrik.yaml:5:13
      |
    5 |   - { from: a, to: b }
      |             ^
      = help: move each resource in one entry, from the address the state knows to the one the spec uses now

    error: `b` is moved from here and moved to on line 5: chains and cycles of moves are not followed
      --> fabrik.yaml:6:13
      |
    6 |   - { from: b, to: a }
      |             ^
      = help: move each resource in one entry, from the address the state knows to the one the spec uses now

    error: two entries move to `api`
      --> fabrik.yaml:7:20
      |
    7 |   - { from: x, to: api }
      |                    ^^^
      = help: the first is on line 4; one address holds one object

    error: `api[` is not an address: `[` without a closing `]` at the end
      --> fabrik.yaml:8:23
      |
    8 |   - { from: gone, to: "api[" }
      |                       ^^^^^^

    error: a `moved` entry needs `to`
      --> fabrik.yaml:9:5
      |
    9 |   - { from: gone }
      |     ^
      = help: write it as `- { from: old, to: new }`

    7 errors in fabrik.yaml
    "#);
}

/// An output refers to a resource or attribute that does not exist: located, with the closest
/// name.
#[test]
fn output_referring_to_an_unknown_resource_or_attribute_is_refused_with_a_suggestion() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          config:
            type: local.file
            with: { path: app.conf, content: "x\n" }
        outputs:
          path: { value: "${confg.abs_path}" }
          size: { value: "size ${config.sise}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: reference to unknown resource `confg`
      --> fabrik.yaml:7:19
      |
    7 |   path: { value: "${confg.abs_path}" }
      |                   ^^^^^^^^^^^^^^^^^
      = help: did you mean `config`?

    error: `config` (local.file) has no attribute `sise`
      --> fabrik.yaml:8:24
      |
    8 |   size: { value: "size ${config.sise}" }
      |                        ^^^^^^^^^^^^^^
      = help: did you mean `size`?

    2 errors in fabrik.yaml
    "#);
}

/// An output entry that is not what an output is: an unknown key, no `value`, a name that
/// cannot be used, the name of a resource.
#[test]
fn malformed_output_entries_are_refused_where_they_are_written() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          config:
            type: local.file
            with: { path: app.conf, content: "x\n" }
        outputs:
          url: { value: "${config.path}", sensitve: true }
          size: { description: the size }
          "not a name": { value: 1 }
          config: { value: 2 }
          port: 8080
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown key `sensitve` in output `url`
      --> fabrik.yaml:7:35
      |
    7 |   url: { value: "${config.path}", sensitve: true }
      |                                   ^^^^^^^^
      = help: did you mean `sensitive`?

    error: output `size` has no `value`
      --> fabrik.yaml:8:3
      |
    8 |   size: { description: the size }
      |   ^^^^
      = help: add `value:`, such as `value: "${web.url}"`

    error: invalid output name `not a name`
      --> fabrik.yaml:9:3
      |
    9 |   "not a name": { value: 1 }
      |   ^^^^^^^^^^
      = help: an output name starts with a letter or digit and holds letters, digits, `_` and `-`

    error: output `config` has the name of a resource
       --> fabrik.yaml:10:3
       |
    10 |   config: { value: 2 }
       |   ^^^^^^
       = help: `fabrik output NAME` names an output or a resource: give the output another name

    error: output `port` must be a map, not an integer
       --> fabrik.yaml:11:9
       |
    11 |   port: 8080
       |         ^^^^
       = help: write it as `NAME: { value: "${resource.attribute}" }`

    5 errors in fabrik.yaml
    "#);
}

/// A secret, a sensitive variable or an attribute derived from a secret in an output not
/// marked sensitive would be printed and kept in clear: refused, as Terraform does, with the fix.
#[test]
fn a_secret_in_an_output_not_marked_sensitive_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: shop
        secrets:
          DB_PASSWORD: {}
        vars:
          token: { type: string, sensitive: true }
        resources:
          config:
            type: local.file
            with: { path: app.conf, content: "${secret.DB_PASSWORD}" }
        outputs:
          dsn: { value: "postgres://app:${secret.DB_PASSWORD}@db/app" }
          token: { value: "${var.token}" }
          hash: { value: "${config.content_hash}" }
          path: { value: "${config.path}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: output `dsn` shows secret `DB_PASSWORD`, but it is not marked sensitive
       --> fabrik.yaml:11:33
       |
    11 |   dsn: { value: "postgres://app:${secret.DB_PASSWORD}@db/app" }
       |                                 ^^^^^^^^^^^^^^^^^^^^^
       = help: add `sensitive: true` to output `dsn`: it is then kept by its keyed hash and shown as `(sensitive)` unless asked for with --show-sensitive

    error: output `token` shows sensitive variable `token`, but it is not marked sensitive
       --> fabrik.yaml:12:20
       |
    12 |   token: { value: "${var.token}" }
       |                    ^^^^^^^^^^^^
       = help: add `sensitive: true` to output `token`: it is then kept by its keyed hash and shown as `(sensitive)` unless asked for with --show-sensitive

    error: output `hash` shows `config.content_hash`, which holds a secret, but it is not marked sensitive
       --> fabrik.yaml:13:19
       |
    13 |   hash: { value: "${config.content_hash}" }
       |                   ^^^^^^^^^^^^^^^^^^^^^^
       = help: add `sensitive: true` to output `hash`: it is then kept by its keyed hash and shown as `(sensitive)` unless asked for with --show-sensitive

    3 errors in fabrik.yaml
    "#);
}

/// A stack output names one instance of a resource with `for_each`, and has no `${each.…}`.
#[test]
fn an_output_naming_a_for_each_resource_whole_or_each_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          pages:
            type: local.file
            for_each: [home, about]
            with: { path: "${each.key}.html", content: "${each.key}\n" }
        outputs:
          all: { value: "${pages.path}" }
          key: { value: "${each.key}" }
          one: { value: "${pages[home].path}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `pages` has `for_each`: a reference names one of its instances
      --> fabrik.yaml:8:18
      |
    8 |   all: { value: "${pages.path}" }
      |                  ^^^^^^^^^^^^^
      = help: write `${pages[KEY].path}`

    error: `${each.key}` is only known in a resource with `for_each`
      --> fabrik.yaml:9:18
      |
    9 |   key: { value: "${each.key}" }
      |                  ^^^^^^^^^^^
      = help: each instance of a resource with `for_each` has its own key and value; name one with `NAME[KEY]`

    2 errors in fabrik.yaml
    "#);
    // A key the resource does not have is judged once its instances are made.
    case.set_spec(
        r#"
        stack: shop
        resources:
          pages:
            type: local.file
            for_each: [home, about]
            with: { path: "${each.key}.html", content: "${each.key}\n" }
        outputs:
          gone: { value: "${pages[hmoe].path}" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `pages` has no key `hmoe`
      --> fabrik.yaml:8:19
      |
    8 |   gone: { value: "${pages[hmoe].path}" }
      |                   ^^^^^^^^^^^^^^^^^^^
      = help: did you mean `home`?
    "#);
}

/// An Uptime Kuma monitor of a type fabrik does not manage, or without a field its type needs,
/// or with one its type does not take, is refused at the resource before anything connects.
#[test]
fn uptimekuma_monitors_of_unknown_types_or_missing_fields_are_refused() {
    let case = Case::new().spec(
        r#"
        stack: watch
        providers:
          uptimekuma: { url: "http://127.0.0.1:9", username: admin, password: "p" }
        resources:
          mqtt:
            type: uptimekuma.monitor
            with: { name: broker, type: mqtt, hostname: broker.lan }
          api:
            type: uptimekuma.monitor
            with: { name: api, type: http }
          db:
            type: uptimekuma.monitor
            with: { name: db, type: port, hostname: db.lan, port: 5432, url: "http://db.lan" }
          hook:
            type: uptimekuma.notification
            with: { name: ops, type: webhook, settings: { isDefault: true } }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `mqtt` (uptimekuma.monitor): `type` "mqtt" is not a monitor type fabrik manages; use one of http, keyword, json-query, port, dns, ping, push
      --> fabrik.yaml:7:33
      |
    7 |     with: { name: broker, type: mqtt, hostname: broker.lan }
      |                                 ^^^^

    error: `api` (uptimekuma.monitor): a monitor of type http needs `url`
      --> fabrik.yaml:9:11
      |
    9 |     type: uptimekuma.monitor
      |           ^^^^^^^^^^^^^^^^^^

    error: `db` (uptimekuma.monitor): `url` does not apply to a monitor of type port
       --> fabrik.yaml:13:70
       |
    13 |     with: { name: db, type: port, hostname: db.lan, port: 5432, url: "http://db.lan" }
       |                                                                      ^^^^^^^^^^^^^^^

    error: `hook` (uptimekuma.notification): `settings` may not set `isDefault`: it is the notification's own field (give `default` beside `settings`)
       --> fabrik.yaml:16:49
       |
    16 |     with: { name: ops, type: webhook, settings: { isDefault: true } }
       |                                                 ^

    4 errors in fabrik.yaml
    "#);
}

/// A `coolify.database` is checked before any request: an engine Coolify does not have,
/// backups of an engine Coolify does not back up, a credential the engine does not take (a
/// 422 halfway through an apply otherwise) and a public port below 1024.
#[test]
fn bad_coolify_databases_are_located_errors() {
    let case = Case::new().spec(
        r#"
        stack: shop
        providers:
          coolify: { url: "https://coolify.example", token: "t" }
        resources:
          a:
            type: coolify.database
            with: { engine: oracle, project: p, server: s, password: x }
          b:
            type: coolify.database
            with: { engine: redis, project: p, server: s, password: x, backups: { frequency: daily } }
          c:
            type: coolify.database
            with: { engine: postgresql, project: p, server: s, password: x, root_password: rootpw }
          d:
            type: coolify.database
            with: { engine: mysql, project: p, server: s, password: x, public_port: 80 }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `a` (coolify.database): `engine` must be one of postgresql, mysql, mariadb, redis, keydb, dragonfly, mongodb, clickhouse, not "oracle"
      --> fabrik.yaml:7:21
      |
    7 |     with: { engine: oracle, project: p, server: s, password: x }
      |                     ^^^^^^

    error: `b` (coolify.database): `backups`: Coolify makes scheduled backups of postgresql, mysql, mariadb, mongodb, clickhouse databases only, not redis
       --> fabrik.yaml:10:73
       |
    10 |     with: { engine: redis, project: p, server: s, password: x, backups: { frequency: daily } }
       |                                                                         ^

    error: `c` (coolify.database): `root_password`: a postgresql database takes only `user`, `password`, `database` as credentials
       --> fabrik.yaml:13:84
       |
    13 |     with: { engine: postgresql, project: p, server: s, password: x, root_password: rootpw }
       |                                                                                    ^^^^^^

    error: `d` (coolify.database): `public_port` must be a port from 1024 to 65535, not 80
       --> fabrik.yaml:16:77
       |
    16 |     with: { engine: mysql, project: p, server: s, password: x, public_port: 80 }
       |                                                                             ^^

    4 errors in fabrik.yaml
    "#);
}

/// `pause_during_changes` is a boolean, checked before anything connects.
#[test]
fn uptimekuma_pause_during_changes_that_is_no_boolean_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: watch
        providers:
          uptimekuma: { url: "http://127.0.0.1:9", username: admin, password: "p" }
        resources:
          api:
            type: uptimekuma.monitor
            with: { name: api, type: http, url: "http://a.lan", pause_during_changes: "no" }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `pause_during_changes` in `api` (uptimekuma.monitor) must be a boolean, not a string
      --> fabrik.yaml:7:79
      |
    7 |     with: { name: api, type: http, url: "http://a.lan", pause_during_changes: "no" }
      |                                                                               ^^^^
    "#);
}

/// A `coolify.service` is one-click (`type`) or a Docker Compose stack (`compose`), never both
/// nor neither, and its compose must be YAML with a `services:` map: each is refused at the
/// resource before any request.
#[test]
fn bad_coolify_services_are_located_errors() {
    let case = Case::new().spec(
        r#"
        stack: shop
        providers:
          coolify: { url: "https://coolify.example", token: "t" }
        resources:
          both:
            type: coolify.service
            with: { type: n8n, compose: "services: {web: {image: nginx}}", project: p, server: s }
          neither:
            type: coolify.service
            with: { project: p, server: s }
          not_yaml:
            type: coolify.service
            with: { compose: "services: [web", project: p, server: s }
          no_services:
            type: coolify.service
            with: { compose: "web: {image: nginx}", project: p, server: s }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `both` (coolify.service): `type` and `compose` exclude each other: a service is either one-click or a Docker Compose stack
      --> fabrik.yaml:7:33
      |
    7 |     with: { type: n8n, compose: "services: {web: {image: nginx}}", project: p, server: s }
      |                                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^

    error: `neither` (coolify.service): a service needs `type` (a one-click service) or `compose` (a Docker Compose file)
      --> fabrik.yaml:9:11
      |
    9 |     type: coolify.service
      |           ^^^^^^^^^^^^^^^

    error: `not_yaml` (coolify.service): `compose` is not YAML: line 1 column 11: unclosed bracket '['
       --> fabrik.yaml:13:22
       |
    13 |     with: { compose: "services: [web", project: p, server: s }
       |                      ^^^^^^^^^^^^^^^^

    error: `no_services` (coolify.service): `compose` must be a Docker Compose file with a `services:` map
       --> fabrik.yaml:16:22
       |
    16 |     with: { compose: "web: {image: nginx}", project: p, server: s }
       |                      ^^^^^^^^^^^^^^^^^^^^^

    4 errors in fabrik.yaml
    "#);
}

/// A `coolify.service`'s `env` takes variable names, and its `domains` map the compose's
/// service names to URLs: each mistake is refused at the field before any request.
#[test]
fn bad_coolify_service_variables_and_domains_are_located_errors() {
    let case = Case::new().spec(
        r#"
        stack: shop
        providers:
          coolify: { url: "https://coolify.example", token: "t" }
        resources:
          bad_key:
            type: coolify.service
            with: { type: n8n, project: p, server: s, env: { 1X: v } }
          no_such_container:
            type: coolify.service
            with:
              compose: "services: {web: {image: nginx}}"
              project: p
              server: s
              domains: { api: ["https://api.example"] }
          not_a_url:
            type: coolify.service
            with: { type: n8n, project: p, server: s, domains: { n8n: ["ftp://a.example"] } }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `bad_key` (coolify.service): `env`: "1X" is not a variable name (letters, digits and _, not starting with a digit)
      --> fabrik.yaml:7:52
      |
    7 |     with: { type: n8n, project: p, server: s, env: { 1X: v } }
      |                                                    ^

    error: `no_such_container` (coolify.service): `domains.api`: the compose has no service `api` (it has web)
       --> fabrik.yaml:14:16
       |
    14 |       domains: { api: ["https://api.example"] }
       |                ^

    error: `not_a_url` (coolify.service): `domains.n8n`: "ftp://a.example" is not an http:// or https:// URL such as "https://api.example.com"
       --> fabrik.yaml:17:56
       |
    17 |     with: { type: n8n, project: p, server: s, domains: { n8n: ["ftp://a.example"] } }
       |                                                        ^

    3 errors in fabrik.yaml
    "#);
}

/// A value outside its field's list (`Field::one_of`) is refused where it is written, with the
/// closest value when there is one: in the list's own words where the provider takes any value
/// (a PowerDNS record type, an Uptime Kuma method), the provider's words otherwise; the list
/// is matched in any case.
#[test]
fn values_outside_a_fields_list_are_located_with_the_closest_one() {
    let case = Case::new().spec(
        r#"
        stack: lists
        providers:
          powerdns: { url: "http://127.0.0.1:9", api_key: k }
          cloudflare: { token: t }
          coolify: { url: "https://coolify.example", token: t }
          uptimekuma: { url: "http://127.0.0.1:9", username: admin, password: "p" }
        resources:
          zone:
            type: powerdns.zone
            with: { name: example.com, kind: primary }
          www:
            type: powerdns.record
            with: { zone: example.com, name: www, type: AAA, records: ["::1"] }
          mail:
            type: powerdns.record
            with: { zone: example.com, name: mail, type: mx, records: ["10 mx.example.com."] }
          edge:
            type: cloudflare.record
            with: { zone: example.com, name: edge, type: CNAM, content: www.example.com }
          db:
            type: coolify.database
            with: { engine: postgress, project: p, server: s, password: x }
          ping:
            type: uptimekuma.monitor
            with: { name: api, type: htp, url: "http://api.example" }
          post:
            type: uptimekuma.monitor
            with: { name: api, type: http, url: "http://api.example", method: PSOT }
        "#,
    );
    fabrik_snapshot!(case, refused(&case), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `www` (powerdns.record): `type` "AAA" is not one of the 53 values it takes (`fabrik schema` lists them)
       --> fabrik.yaml:13:49
       |
    13 |     with: { zone: example.com, name: www, type: AAA, records: ["::1"] }
       |                                                 ^^^
       = help: did you mean `AAAA`?

    error: `edge` (cloudflare.record): `type` "CNAM" is not supported: cloudflare.record manages A, AAAA, CNAME, MX, NS, PTR, TXT records
       --> fabrik.yaml:19:50
       |
    19 |     with: { zone: example.com, name: edge, type: CNAM, content: www.example.com }
       |                                                  ^^^^
       = help: did you mean `CNAME`?

    error: `db` (coolify.database): `engine` must be one of postgresql, mysql, mariadb, redis, keydb, dragonfly, mongodb, clickhouse, not "postgress"
       --> fabrik.yaml:22:21
       |
    22 |     with: { engine: postgress, project: p, server: s, password: x }
       |                     ^^^^^^^^^
       = help: did you mean `postgres`?

    error: `ping` (uptimekuma.monitor): `type` "htp" is not a monitor type fabrik manages; use one of http, keyword, json-query, port, dns, ping, push
       --> fabrik.yaml:25:30
       |
    25 |     with: { name: api, type: htp, url: "http://api.example" }
       |                              ^^^
       = help: did you mean `http`?

    error: `post` (uptimekuma.monitor): `method` must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, not "PSOT"
       --> fabrik.yaml:28:71
       |
    28 |     with: { name: api, type: http, url: "http://api.example", method: PSOT }
       |                                                                       ^^^^
       = help: did you mean `POST`?

    5 errors in fabrik.yaml
    "#);
}
