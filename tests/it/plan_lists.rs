//! A list-valued attribute's change is shown element by element: what goes, what comes, what
//! stays (a long run of it by its count), through the binary. The shapes of lists of maps and
//! the secrets in them are pinned by `src/render/list.rs`'s tests (no provider takes a list of
//! maps yet).

use crate::harness::Case;

fn sleeper(args: &str) -> String {
    format!(
        r#"
        stack: lists
        resources:
          sleeper:
            type: local.process
            with:
              command: sleep
              args: {args}
        "#
    )
}

#[test]
fn a_list_change_shows_each_element_that_goes_or_comes() {
    let case = Case::new().spec(&sleeper(r#"["300", "1", "2", "3", "4", "5", "6", "7"]"#));
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&sleeper(
        r#"["300", "1", "2", "3", "40", "5", "6", "7", "8"]"#,
    ));
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `lists`:

      ~ sleeper (local.process)
          ~ args:
                … 3 unchanged
                "3"
              - "4"
              + "40"
                "5"
                "6"
                "7"
              + "8"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    // Emptied: every element goes, none is counted.
    case.set_spec(&sleeper(r#"[]"#));
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `lists`:

      ~ sleeper (local.process)
          ~ args:
              - "300"
              - "1"
              - "2"
              - "3"
              - "4"
              - "5"
              - "6"
              - "7"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["destroy", "--yes"], 0);
}

/// A change to the recorded dependencies alone is a list too.
#[test]
fn a_dependency_added_to_the_record_is_one_line() {
    let spec = r#"
        stack: deps
        resources:
          a:
            type: local.file
            with: { path: a.txt, content: "a\n" }
          b:
            type: local.file
            with: { path: b.txt, content: "b\n" }
          c:
            type: local.file
            with: { path: c.txt, content: "c\n" }
            depends_on: [a]
    "#;
    let case = Case::new().spec(spec);
    case.expect(["apply", "--yes"], 0);
    case.set_spec(&spec.replace("depends_on: [a]", "depends_on: [a, b]"));
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `deps`:

      ~ c (local.file)
          ~ depends_on:
                "a"
              + "b"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
}
