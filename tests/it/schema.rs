//! `fabrik schema`: the committed copy is current, every example and fixture spec fits it, and
//! the schema and `fabrik validate` agree on a sample of good and bad specs.

use std::path::{Path, PathBuf};

use crate::harness::Case;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn schema() -> serde_json::Value {
    let out = Case::new().expect(["schema"], 0);
    serde_json::from_str(&out.stdout).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema())
        .expect("the schema compiles")
}

/// Each problem the schema finds in `yaml`, as `PATH: MESSAGE`.
fn schema_problems(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("the spec is YAML");
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every spec under `examples/` and `fixtures/specs/`.
fn spec_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(ROOT).join("examples"), &mut files);
    walk(&Path::new(ROOT).join("fixtures/specs"), &mut files);
    files.sort();
    assert!(files.len() >= 10, "specs found: {files:?}");
    files
}

#[test]
fn committed_schema_is_the_one_fabrik_prints() {
    let out = Case::new().expect(["schema"], 0);
    let committed = std::fs::read_to_string(Path::new(ROOT).join("schema/fabrik.schema.json"))
        .expect("schema/fabrik.schema.json is committed");
    assert!(
        committed == out.stdout,
        "schema/fabrik.schema.json is stale: run `cargo run -- schema > schema/fabrik.schema.json`"
    );
}

#[test]
fn every_example_points_editors_at_the_schema() {
    for file in spec_files()
        .iter()
        .filter(|f| f.starts_with(Path::new(ROOT).join("examples")))
    {
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=../../schema/fabrik.schema.json"),
            "{}",
            file.display()
        );
    }
}

/// Every example and fixture fits the schema, and `validate` accepts each as well: the schema
/// refuses nothing fabrik takes.
#[test]
fn every_example_and_fixture_spec_fits_the_schema_and_validates() {
    let validator = validator();
    for file in spec_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let problems = schema_problems(&validator, &text);
        assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
        let case = Case::new();
        case.write("fabrik.yaml", &text);
        // The values the specs read from the environment.
        let out = case
            .args(["validate"])
            .env("VERSION", "1.0.0")
            .env("APP_ENV", "test")
            .env("IMAGE_TAG", "1")
            .run();
        assert_eq!(out.code, 0, "{}:\n{out}", file.display());
    }
}

/// A spec using every part of the language the schema describes: accepted by both.
#[test]
fn a_spec_using_every_key_fits_the_schema_and_validates() {
    let spec = r#"
stack: every-key
backend:
  postgres: { url: "${secret.STATE_DB_URL}", schema: fabrik }
providers:
  local: {}
  powerdns: { url: "http://127.0.0.1:8081", api_key: "${secret.PDNS_API_KEY}" }
secrets:
  PDNS_API_KEY: {}
  STATE_DB_URL:
  TOKEN: { generate: { length: 32, alphabet: hex } }
vars:
  PORT: { type: number, default: 8080, description: "The port." }
  NAMES: { type: list, default: [a, b] }
outputs:
  PAGE: { value: "${page.abs_path}", description: "The page." }
  SECRET: { value: "${secret.TOKEN}", sensitive: true }
moved:
  - { from: old, to: page }
resources:
  page:
    type: local.file
    with: { path: out/index.html, content: "port ${var.PORT}", mode: "0644" }
    protect: false
    on_failure: keep
    adopt: true
    ignore_changes: [mode]
  copies:
    type: local.file
    for_each: "${var.NAMES}"
    with: { path: "out/${each.key}.txt", content: "${each.key}" }
    depends_on: page
  zone:
    type: powerdns.zone
    with: { name: example.com, kind: " native " }
  web:
    type: local.process
    with: { command: python3, args: ["-m", "http.server"], stop_timeout: "${var.PORT}" }
    verify:
      - http: "http://127.0.0.1:8080/"
        status: 200
        body_contains: hi
        headers: { Accept: text/html }
        timeout: 10s
        interval: 200ms
      - tls: example.com
        port: 8443
        min_valid_days: 7
      - dns: www.example.com
        type: aaaa
        expect: ["::1"]
        nameserver: "127.0.0.1:5353"
      - tcp: "127.0.0.1:8080"
      - command: ["true", "--quick"]
        env: { A: b }
        dir: out
verify:
  - tcp: "127.0.0.1:8080"
"#;
    let problems = schema_problems(&validator(), spec);
    assert!(problems.is_empty(), "{problems:#?}");
    let case = Case::new();
    case.write("fabrik.yaml", spec);
    case.expect(["validate"], 0);
}

/// Specs with a mistake the schema can see (an unknown key, a value of the wrong kind, a
/// missing required key): refused by both, so an editor flags what `validate` would.
#[test]
fn bad_specs_are_refused_by_the_schema_and_by_validate() {
    let file = |with: &str| {
        format!(
            "stack: s\nresources:\n  page:\n    type: local.file\n    with: {{ path: a, content: b{with} }}\n"
        )
    };
    let gate = |gate: &str| {
        format!(
            "stack: s\nresources:\n  page:\n    type: local.file\n    with: {{ path: a, content: b }}\n    verify:\n      - {gate}\n"
        )
    };
    let bad = [
        ("no stack", "resources: {}\n".to_string()),
        ("invalid stack name", "stack: \"a b\"\n".to_string()),
        ("unknown top-level key", "stack: s\nresource: {}\n".to_string()),
        ("unknown provider", "stack: s\nproviders: { nope: {} }\n".to_string()),
        ("unknown provider field", "stack: s\nproviders: { powerdns: { url: x, api_key: y, port: 1 } }\n".to_string()),
        ("missing provider field", "stack: s\nproviders: { powerdns: { url: x } }\n".to_string()),
        ("unknown resource type", "stack: s\nresources:\n  page: { type: local.fiel }\n".to_string()),
        ("resource without type", "stack: s\nresources:\n  page: { with: {} }\n".to_string()),
        ("unknown resource key", "stack: s\nresources:\n  page: { type: local.file, with: { path: a, content: b }, protec: true }\n".to_string()),
        ("reserved resource name", "stack: s\nresources:\n  var: { type: local.file, with: { path: a, content: b } }\n".to_string()),
        ("unknown field", file(", size: 3")),
        ("missing required field", "stack: s\nresources:\n  page: { type: local.file, with: { path: a } }\n".to_string()),
        ("string field given an integer", file(", mode: 644")),
        ("integer field given a string", "stack: s\nresources:\n  web: { type: local.process, with: { command: x, stop_timeout: soon } }\n".to_string()),
        ("list field given a string", "stack: s\nresources:\n  web: { type: local.process, with: { command: x, args: \"-v\" } }\n".to_string()),
        ("protect not a boolean", "stack: s\nresources:\n  page: { type: local.file, with: { path: a, content: b }, protect: yes please }\n".to_string()),
        ("bad on_failure", "stack: s\nresources:\n  page: { type: local.file, with: { path: a, content: b }, on_failure: ignore }\n".to_string()),
        ("gate without a kind", gate("{ status: 200 }")),
        ("gate with two kinds", gate("{ http: \"http://a/\", tcp: \"a:1\" }")),
        ("gate option of another kind", gate("{ tcp: \"a:1\", status: 200 }")),
        ("gate status as a string", gate("{ http: \"http://a/\", status: \"200\" }")),
        ("dns gate without nameserver", gate("{ dns: a.example }")),
        ("dns gate of an unknown type", gate("{ dns: a.example, nameserver: \"127.0.0.1\", type: ZZZ }")),
        ("command gate as a string", gate("{ command: \"./check.sh\" }")),
        ("secret with an unknown key", "stack: s\nsecrets: { TOKEN: { generated: {} } }\n".to_string()),
        ("generated secret too short", "stack: s\nsecrets: { TOKEN: { generate: { length: 4 } } }\n".to_string()),
        ("variable of an unknown type", "stack: s\nvars: { PORT: { type: int } }\n".to_string()),
        ("output without a value", "stack: s\noutputs: { URL: { description: x } }\n".to_string()),
        ("moved entry without `to`", "stack: s\nmoved: [{ from: a }]\n".to_string()),
        ("backend of an unknown kind", "stack: s\nbackend: { mysql: { url: x } }\n".to_string()),
        ("value outside a field's list", "stack: s\nproviders: { powerdns: { url: x, api_key: y } }\nresources:\n  r: { type: powerdns.record, with: { zone: example.com, name: www, type: AXFR, records: [a] } }\n".to_string()),
    ];
    let validator = validator();
    for (what, spec) in bad {
        assert!(
            !schema_problems(&validator, &spec).is_empty(),
            "the schema accepts a spec with {what}:\n{spec}"
        );
        let case = Case::new();
        case.write("fabrik.yaml", &spec);
        let out = case.run(["validate"]);
        assert_eq!(
            out.code, 1,
            "validate accepts a spec with {what}:\n{spec}\n{out}"
        );
    }
}
