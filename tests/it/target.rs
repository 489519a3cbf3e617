//! `--target NAME`: plan and apply only that resource and what it needs.

use crate::harness::Case;

const STACK: &str = r#"
    stack: shop
    resources:
      base:
        type: local.file
        with: { path: base.txt, content: "base\n" }
      mid:
        type: local.file
        with: { path: mid.txt, content: "next to ${base.path}\n" }
      top:
        type: local.file
        with: { path: top.txt, content: "${mid.content_hash}\n" }
      lone:
        type: local.file
        with: { path: lone.txt, content: "lone\n" }
"#;

#[test]
fn target_plans_only_the_resource_and_its_dependencies() {
    let case = Case::new().spec(STACK);
    let out = case.run(["plan", "--target", "mid"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + base (local.file)
          + path    = "base.txt"
          + content = <<EOT
              base
            EOT

      + mid (local.file)
          + path    = "mid.txt"
          + content = <<EOT
              next to base.txt
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
}

#[test]
fn target_applies_only_the_resource_and_its_dependencies() {
    let case = Case::new().spec(STACK);
    case.expect(["apply", "--yes", "--target", "mid"], 0);
    assert_eq!(case.read("base.txt"), "base\n");
    assert_eq!(case.read("mid.txt"), "next to base.txt\n");
    assert!(
        !case.exists("top.txt"),
        "`top` needs `mid`, not the other way round"
    );
    assert!(!case.exists("lone.txt"));
    assert_eq!(case.tracked("shop"), ["base", "mid"]);
    let rest = case.run(["plan"]);
    fabrik_snapshot!(case, rest, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + top (local.file)
          + path    = "top.txt"
          + content = <<EOT
              blake3:[HASH]
            EOT

      + lone (local.file)
          + path    = "lone.txt"
          + content = <<EOT
              lone
            EOT

    Plan: 2 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
    // The rest, applied later, sees what the targeted apply made.
    case.expect(["apply", "--yes"], 0);
    let mid = std::fs::read(case.path("mid.txt")).unwrap();
    assert_eq!(
        case.read("top.txt"),
        format!("blake3:{}\n", blake3::hash(&mid).to_hex())
    );
}

#[test]
fn unknown_target_is_refused() {
    let case = Case::new().spec(STACK);
    let out = case.run(["plan", "--target", "nope"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: --target `nope` is neither in the spec nor in the state
    ");
    assert!(!case.state_dir().exists());
}

/// A typo of a short name is a typo too: `mdi` is `mid` with two letters swapped.
#[test]
fn unknown_target_suggests_the_closest_name() {
    let case = Case::new().spec(STACK);
    let out = case.run(["apply", "--yes", "--target", "mdi"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("did you mean `mid`?"),
        "no suggestion for a transposed short name:\n{out}"
    );
}
