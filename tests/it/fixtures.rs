//! Plan renderings, one file snapshot per spec under `fixtures/specs/`.
//!
//! `fixtures/specs/NAME.yaml` is planned (`plan --detailed-exitcode`) in a fresh directory. When
//! `fixtures/specs/before/NAME.yaml` exists it is applied first, so the plan shows updates,
//! replacements and deletes against a real state rather than creates only.

use std::path::{Path, PathBuf};

use crate::harness::{Case, SPEC};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/specs")
}

fn plan_fixture(name: &str, env: &[(&str, &str)]) {
    let dir = specs_dir();
    let spec_path = dir.join(format!("{name}.yaml"));
    let spec = std::fs::read_to_string(&spec_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", spec_path.display()));
    let mut case = Case::new();
    for (key, value) in env {
        case = case.env(key, value);
    }
    let before = dir.join("before").join(format!("{name}.yaml"));
    if before.exists() {
        case.write(SPEC, std::fs::read(&before).unwrap());
        case.expect(["apply", "--yes"], 0);
    }
    case.write(SPEC, &spec);
    let out = case.run(["plan", "--detailed-exitcode"]);
    let mut settings = case.settings();
    settings.set_input_file(&spec_path);
    settings.set_description(format!(
        "fabrik plan --detailed-exitcode on fixtures/specs/{name}.yaml{}",
        if before.exists() {
            format!(", after applying fixtures/specs/before/{name}.yaml")
        } else {
            String::new()
        }
    ));
    settings.bind(|| insta::assert_snapshot!(name, out.to_string()));
    // The same inputs always render the same bytes.
    let again = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(again, out, "a second plan of {name} differs");
}

macro_rules! plan_fixtures {
    ($($name:ident $(($($key:literal = $value:literal),*))?;)*) => {
        const FIXTURES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                plan_fixture(stringify!($name), &[$($(($key, $value)),*)?]);
            }
        )*
    };
}

plan_fixtures! {
    single_file;
    reference_chain;
    depends_on;
    env_reference("APP_ENV" = "staging", "IMAGE_TAG" = "1.4.2");
    multiline_diff;
    mode_change;
    mixed_changes;
    reformatted_no_changes;
}

/// A fixture without a test would never be rendered; a `before/` spec without its fixture would
/// never be applied.
#[test]
fn every_fixture_spec_has_a_test() {
    let names = |dir: PathBuf| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let mut expected: Vec<String> = FIXTURES.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(names(specs_dir()), expected);
    for before in names(specs_dir().join("before")) {
        assert!(
            expected.contains(&before),
            "before/{before}.yaml has no fixture"
        );
    }
}
