//! Secrets through the real binary: a secret's value never leaves the provider call that needs
//! it (not in any output, saved plan, state, journal or lock, in any encoding fabrik produces);
//! generated secrets are kept in `.env` and stay stable; the environment overrides `.env`; a
//! rollback restores the previous value; bad secret input is refused before anything changes.
//!
//! Processes started here are `sleep`s owned by the case; [`Reaper`] kills whatever a failing
//! test leaves running.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::harness::{Case, Output};
use crate::live::{ClosedPort, closed_port};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Kills, when dropped, every process fabrik started for this case: those whose working
/// directory is the case's directory and whose environment carries fabrik's owner marker.
struct Reaper<'a>(&'a Case);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        for pid in processes_of(self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(std::process::Stdio::null())
                .status();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Pids of live processes started by fabrik in this case's directory.
fn processes_of(case: &Case) -> Vec<i32> {
    let root = std::fs::canonicalize(case.root()).expect("the case directory exists");
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
        if cwd.ok().as_deref() != Some(root.as_path()) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            continue;
        }
        if environ(pid.into())
            .iter()
            .any(|v| v.starts_with("FABRIK_OWNER=fabrik:"))
        {
            pids.push(pid);
        }
    }
    pids
}

/// A process's environment, one `NAME=value` per entry.
fn environ(pid: i64) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// The pid the state records for a `local.process` resource.
fn recorded_pid(case: &Case, stack: &str, name: &str) -> i64 {
    case.state(stack)["resources"][name]["outputs"]["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("the state records a pid for `{name}`"))
}

/// The value of `name` in an environment listing.
fn env_value<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|v| v.strip_prefix(name)?.strip_prefix('='))
}

/// The lines of `.env` as `NAME=value` pairs (comments and blank lines skipped).
fn dotenv_values(case: &Case) -> BTreeMap<String, String> {
    case.read(".env")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn mode_of(case: &Case, relative: &str) -> u32 {
    std::fs::metadata(case.path(relative))
        .unwrap_or_else(|e| panic!("cannot stat {relative}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

/// The attribute `name` of the change to resource `resource` in a plan's JSON.
fn json_attribute<'a>(
    plan: &'a serde_json::Value,
    resource: &str,
    name: &str,
) -> &'a serde_json::Value {
    plan["changes"]
        .as_array()
        .expect("the plan lists changes")
        .iter()
        .find(|c| c["name"] == resource)
        .unwrap_or_else(|| panic!("the plan changes `{resource}`:\n{plan:#}"))["attributes"]
        .as_array()
        .expect("a change lists attributes")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("the change to `{resource}` shows `{name}`:\n{plan:#}"))
}

/// Whether a JSON value is the stored stand-in for a sensitive value (a keyed hash).
fn is_masked(value: &serde_json::Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.starts_with("(sensitive) blake3:"))
}

/// Refused before anything changed: no state directory, no file written.
fn nothing_changed(case: &Case, out: &Output) {
    assert!(
        !case.state_dir().exists(),
        "a refused run must not create .fabrik/:\n{out}"
    );
    assert!(
        !case.exists("out"),
        "a refused run must not write any file:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// The leak test
// ---------------------------------------------------------------------------------------------

/// The secret of the leak test: a quote and a backslash make JSON escaping differ from the
/// plain form.
const PROBE: &str = r#"S3cr3t-Leak-Probe-9f2c"q\w"#;
/// The value the secret is changed to in the runs that fail and roll back.
const PROBE_2: &str = r#"S3cr3t-Leak-Probe-2d7b'x\y"z"#;

/// Every form in which a secret may not appear, with a label for the failure message: plain,
/// JSON-escaped (once and twice), base64 (standard, no-pad, URL-safe with and without padding),
/// base64 of any text that contains the secret at any byte offset (the part of the encoding
/// made of the secret's bytes only), and the secret's longest run of letters, digits and `-`
/// (which survives any escaping a renderer might apply).
fn leak_forms(secret: &str) -> Vec<(String, String)> {
    let json = serde_json::to_string(secret).unwrap();
    let json = json[1..json.len() - 1].to_string();
    let json_twice = serde_json::to_string(&json).unwrap();
    let json_twice = json_twice[1..json_twice.len() - 1].to_string();
    let mut forms = vec![
        ("plain".to_string(), secret.to_string()),
        ("JSON-escaped".to_string(), json),
        ("JSON-escaped twice".to_string(), json_twice),
        ("base64".to_string(), STANDARD.encode(secret)),
        ("base64 no-pad".to_string(), STANDARD_NO_PAD.encode(secret)),
        ("base64 URL-safe".to_string(), URL_SAFE.encode(secret)),
        (
            "base64 URL-safe no-pad".to_string(),
            URL_SAFE_NO_PAD.encode(secret),
        ),
    ];
    for offset in 0..3 {
        let mut bytes = vec![b'.'; offset];
        bytes.extend_from_slice(secret.as_bytes());
        for (name, engine) in [
            ("base64", &STANDARD_NO_PAD),
            ("base64 URL-safe", &URL_SAFE_NO_PAD),
        ] {
            let encoded = engine.encode(&bytes);
            // Drop the group holding the prefix and the last group (shared with what follows).
            let start = if offset == 0 { 0 } else { 4 };
            let core = encoded[start..encoded.len() - 4].to_string();
            forms.push((
                format!("{name} inside a longer text (offset {offset})"),
                core,
            ));
        }
    }
    let core = secret
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .max_by_key(|s| s.len())
        .unwrap()
        .to_string();
    assert!(core.len() >= 12, "a distinctive part: {core}");
    forms.push(("distinctive part".to_string(), core));
    forms
}

/// The first of `forms` that occurs in `bytes`.
fn find_leak<'f>(forms: &'f [(String, String)], bytes: &[u8]) -> Option<&'f (String, String)> {
    forms.iter().find(|(_, form)| {
        bytes
            .windows(form.len())
            .any(|window| window == form.as_bytes())
    })
}

/// The leak check itself finds the secret in every encoding it claims to cover, also when the
/// secret is only part of what was encoded, and finds nothing in text without it.
#[test]
fn the_leak_check_finds_every_form_of_the_secret() {
    let forms = leak_forms(PROBE);
    let json = serde_json::to_string(PROBE).unwrap();
    let mut texts = vec![
        PROBE.to_string(),
        format!("{{\"content\":{json}}}"),
        serde_json::to_string(&format!("{{\"content\":{json}}}")).unwrap(),
        format!("{PROBE:?}"),
        format!("'{}'", PROBE.replace('\\', "\\\\")),
    ];
    for prefix in ["", "p", "pw", "pw=", "password="] {
        let text = format!("{prefix}{PROBE}\n");
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            texts.push(engine.encode(&text));
        }
    }
    for text in &texts {
        assert!(
            find_leak(&forms, text.as_bytes()).is_some(),
            "the check misses the secret in {text:?}"
        );
    }
    let clean = format!(
        "password=(sensitive)\n{}\n{}",
        STANDARD.encode("password=(sensitive)"),
        serde_json::to_string("(sensitive) blake3:00ff").unwrap()
    );
    assert_eq!(find_leak(&forms, clean.as_bytes()), None);
}

/// Drives the binary and checks, after every run, that no secret form appears in the run's
/// stdout and stderr, nor in any file of the case's directory except those allowed to hold it
/// (the files it was written to, and the logs of the processes it was given to).
struct LeakCheck<'a> {
    case: &'a Case,
    forms: Vec<(String, String)>,
    allowed: Vec<PathBuf>,
    /// Every file checked, relative to the case's directory.
    checked: std::collections::BTreeSet<PathBuf>,
}

impl<'a> LeakCheck<'a> {
    fn new(case: &'a Case, secrets: &[&str], allowed: &[&str]) -> Self {
        LeakCheck {
            case,
            forms: secrets.iter().flat_map(|s| leak_forms(s)).collect(),
            allowed: allowed.iter().map(PathBuf::from).collect(),
            checked: Default::default(),
        }
    }

    fn text(&self, what: &str, bytes: &[u8]) {
        if let Some((label, form)) = find_leak(&self.forms, bytes) {
            panic!(
                "the secret leaked ({label} form {form:?}) in {what}:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    fn output(&self, what: &str, out: &Output) {
        self.text(&format!("the stdout of `{what}`"), out.stdout.as_bytes());
        self.text(&format!("the stderr of `{what}`"), out.stderr.as_bytes());
    }

    /// Every file under the case's directory, except the allowed ones.
    fn files(&mut self, when: &str) {
        let mut stack = vec![self.case.root().to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let relative = path
                    .strip_prefix(self.case.root())
                    .expect("under the case")
                    .to_path_buf();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                if self.allowed.contains(&relative) {
                    continue;
                }
                // A file may vanish between listing and reading (a journal folded in).
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                self.text(&format!("{} ({when})", relative.display()), &bytes);
                self.checked.insert(relative);
            }
        }
    }

    /// One run: its output and then every file are checked before its exit code.
    fn run(&mut self, args: &[&str], env: &[(&str, &str)], code: i32) -> Output {
        let mut run = self.case.args(args);
        for (k, v) in env {
            run = run.env(k, v);
        }
        let out = run.run();
        let what = args.join(" ");
        self.output(&what, &out);
        self.files(&format!("after `{what}`"));
        for allowed in &self.allowed {
            if allowed.to_string_lossy().ends_with(".fabrik-tmp") {
                assert!(
                    !self.case.root().join(allowed).exists(),
                    "{} is left behind by `{what}`",
                    allowed.display()
                );
            }
        }
        assert_eq!(out.code, code, "unexpected exit code of `{what}`:\n{out}");
        out
    }
}

const LEAK_SPEC: &str = r#"
    stack: leak
    secrets:
      LEAK_PROBE: {}
    resources:
      config:
        type: local.file
        with: { path: out/config.txt, mode: "0600", content: "password=${secret.LEAK_PROBE}\n" }
      copy:
        type: local.file
        with: { path: out/copy.txt, content: "${config.content}" }
      svc:
        type: local.process
        with:
          command: sleep
          args: ["300"]
          stop_timeout: 1
          env: { LEAK_TOKEN: "${secret.LEAK_PROBE}", MODE: plain }
"#;

/// Added to [`LEAK_SPEC`]: a file that cannot be written (`blocker` is a regular file), after
/// `copy`.
const BLOCKED: &str = r#"
      blocked:
        type: local.file
        with: { path: blocker/inner.txt, content: "x\n" }
        depends_on: [copy]
"#;

/// Added to [`LEAK_SPEC`]: a process given the secret that prints its environment (and the
/// secret last, so it is in the lines an error quotes) and exits at once.
const ECHOING: &str = r#"
      bad:
        type: local.process
        with:
          command: sh
          args: ["-c", "env >&2; echo \"probe=$LEAK_TOKEN\" >&2; exit 3"]
          env: { LEAK_TOKEN: "${secret.LEAK_PROBE}" }
"#;

#[test]
fn a_secret_never_appears_in_any_output_or_file_fabrik_writes() {
    let case = Case::new().spec(LEAK_SPEC).env("LEAK_PROBE", PROBE);
    let _reaper = Reaper(&case);
    let mut leak = LeakCheck::new(
        &case,
        &[PROBE, PROBE_2],
        &[
            "out/config.txt",
            "out/copy.txt",
            // Written and renamed over the file; checked to be gone after every run.
            "out/.config.txt.fabrik-tmp",
            "out/.copy.txt.fabrik-tmp",
            ".fabrik/logs/leak.svc.log",
            ".fabrik/logs/leak.bad.log",
        ],
    );

    // Before anything exists.
    leak.run(&["validate"], &[], 0);
    let plan = leak.run(&["plan"], &[], 0);
    assert!(
        plan.stdout.contains("+ content = (sensitive)")
            && plan.stdout.contains("+ env          = (sensitive)"),
        "the plan shows the secret's fields as sensitive:\n{plan}"
    );
    let json = leak.run(&["plan", "--json"], &[], 0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan --json is JSON");
    for (resource, field) in [("config", "content"), ("copy", "content"), ("svc", "env")] {
        let after = &json_attribute(&json, resource, field)["after"];
        assert!(is_masked(after), "{resource}.{field} is masked: {after}");
    }
    leak.run(&["plan", "--out", "p.json"], &[], 0);
    let saved = std::fs::read(case.path("p.json")).expect("the saved plan exists");
    leak.text("the saved plan p.json", &saved);
    leak.run(&["show", "p.json"], &[], 0);
    leak.run(&["show", "p.json", "--json"], &[], 0);
    leak.run(&["graph"], &[], 0);
    let secrets = leak.run(&["secrets"], &[], 0);
    assert!(
        secrets.stdout.contains("LEAK_PROBE") && secrets.stdout.contains("environment"),
        "{secrets}"
    );

    // Apply: the real value reaches the file, the file referring to it, and the process.
    leak.run(&["apply", "--yes"], &[], 0);
    let expected = format!("password={PROBE}\n");
    assert_eq!(case.read("out/config.txt"), expected);
    assert_eq!(case.read("out/copy.txt"), expected);
    let pid = recorded_pid(&case, "leak", "svc");
    assert_eq!(
        env_value(&environ(pid), "LEAK_TOKEN"),
        Some(PROBE),
        "the process was given the real value"
    );
    for file in [
        ".fabrik/leak.state.json",
        ".fabrik/leak.lock",
        ".fabrik/leak.key",
    ] {
        assert!(
            leak.checked.contains(Path::new(file)),
            "{file} was checked; checked: {:?}",
            leak.checked
        );
    }

    leak.run(&["plan", "--detailed-exitcode"], &[], 0);
    leak.run(&["output"], &[], 0);
    leak.run(&["output", "--json"], &[], 0);
    leak.run(&["output", "config"], &[], 0);
    leak.run(&["state", "list"], &[], 0);
    for name in ["config", "copy", "svc"] {
        leak.run(&["state", "show", name], &[], 0);
    }
    leak.run(&["show", "p.json"], &[], 0);

    // A failing apply that rolls back: the secret changes, then a file that cannot be written
    // (its parent is a regular file) fails; the process waits for it and is never touched.
    case.write("blocker", "a regular file\n");
    case.set_spec(&format!(
        "{}{BLOCKED}",
        LEAK_SPEC.replace(
            "MODE: plain }\n",
            "MODE: plain }\n        depends_on: [blocked]\n"
        )
    ));
    let failed = leak.run(&["apply", "--yes"], &[("LEAK_PROBE", PROBE_2)], 3);
    assert!(
        failed.stdout.contains("↩ config (local.file): rolled back"),
        "{failed}"
    );
    assert_eq!(case.read("out/config.txt"), expected, "rolled back");
    case.remove("blocker");

    let leak_gate = closed_port();
    // The journal, while a run is in flight: a stack gate holds the run open for two seconds
    // after the secret's files were updated, and every file is checked as it is then.
    case.set_spec(&format!(
        "{LEAK_SPEC}    verify:\n      - {{ tcp: \"127.0.0.1:{}\", timeout: 2s, interval: 100ms }}\n",
        leak_gate.port
    ));
    let mut child = case
        .args(["apply", "--yes", "--target", "copy"])
        .env("LEAK_PROBE", PROBE_2)
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the fabrik binary starts");
    let journal = case.path(".fabrik/leak.journal");
    let mut journal_seen = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait for the run").is_none() && Instant::now() < deadline {
        if journal.exists() {
            leak.files("while `apply --target copy` waits for its stack gate");
            if let Ok(bytes) = std::fs::read(&journal) {
                journal_seen |= !bytes.is_empty();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let gated = child.wait_with_output().expect("the run ends");
    let gated = Output {
        code: gated.status.code().unwrap_or(-1),
        stdout: String::from_utf8(gated.stdout).unwrap(),
        stderr: String::from_utf8(gated.stderr).unwrap(),
    };
    leak.output("apply --target copy (failing stack gate)", &gated);
    leak.files("after `apply --target copy`");
    assert!(
        journal_seen,
        "the journal was seen (and checked) during the run:\n{gated}"
    );
    assert_eq!(
        gated.code, 3,
        "the gate fails and the run rolls back:\n{gated}"
    );
    assert_eq!(case.read("out/config.txt"), expected, "rolled back");

    // A process given the secret that prints its environment and exits at once: the error
    // quotes its log, which holds the value; fabrik must redact it there.
    case.set_spec(&format!("{LEAK_SPEC}{ECHOING}"));
    let echoed = leak.run(&["apply", "--yes"], &[], 3);
    assert!(
        case.read(".fabrik/logs/leak.bad.log")
            .contains(&format!("probe={PROBE}")),
        "the process printed the secret to its own log"
    );
    assert!(
        echoed.stderr.contains("probe=(sensitive)"),
        "the error quotes the log with the value redacted:\n{echoed}"
    );

    case.set_spec(LEAK_SPEC);
    leak.run(&["plan", "--refresh"], &[], 0);
    leak.run(&["destroy", "--yes"], &[], 0);
    assert!(!case.exists("out/config.txt") && !case.exists("out/copy.txt"));
    leak.run(&["state", "list"], &[], 0);

    // A saved plan applied as saved, and destroyed again.
    leak.run(&["plan", "--out", "p2.json"], &[], 0);
    leak.run(&["apply", "p2.json"], &[], 0);
    assert_eq!(case.read("out/config.txt"), expected);
    assert_eq!(
        env_value(&environ(recorded_pid(&case, "leak", "svc")), "LEAK_TOKEN"),
        Some(PROBE),
        "the saved plan holds hashes; the apply gives the process the real value"
    );
    leak.run(&["destroy", "--yes"], &[], 0);
    assert!(
        leak.checked.contains(Path::new("p.json")),
        "the saved plan was checked as a file too"
    );
}

// ---------------------------------------------------------------------------------------------
// Stability
// ---------------------------------------------------------------------------------------------

const GENERATED: &str = r#"
    stack: gen
    secrets:
      DB_PASSWORD: { generate: { length: 32, alphabet: alnum } }
      HEX_KEY: { generate: { length: 8, alphabet: hex } }
      URL_TOKEN: { generate: { length: 4096, alphabet: base64url } }
    resources:
      config:
        type: local.file
        with:
          path: out/config.txt
          content: "password=${secret.DB_PASSWORD}\nkey=${secret.HEX_KEY}\ntoken=${secret.URL_TOKEN}\n"
"#;

const DOTENV_BEFORE: &str = "# settings of this machine\nOTHER=keep-me\n\n# a comment\n";

#[test]
fn a_generated_secret_is_kept_in_dotenv_and_stays_the_same() {
    let case = Case::new().spec(GENERATED);
    case.write(".env", DOTENV_BEFORE);
    std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();

    let plan = case.expect(["plan"], 0);
    let dotenv = case.read(".env");
    assert!(
        dotenv.starts_with(DOTENV_BEFORE),
        "the existing lines and comments are kept, first:\n{dotenv}"
    );
    assert_eq!(mode_of(&case, ".env"), 0o600, ".env stays private");
    let values = dotenv_values(&case);
    assert_eq!(values["OTHER"], "keep-me");
    for (name, length, alphabet) in [
        (
            "DB_PASSWORD",
            32,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        ),
        ("HEX_KEY", 8, "0123456789abcdef"),
        (
            "URL_TOKEN",
            4096,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        ),
    ] {
        let value = &values[name];
        assert_eq!(value.len(), length, "{name}: {value}");
        assert!(
            value.chars().all(|c| alphabet.contains(c)),
            "{name} uses its alphabet: {value}"
        );
        assert!(
            !plan.stdout.contains(value.as_str()) && !plan.stderr.contains(value.as_str()),
            "the generated {name} is not printed:\n{plan}"
        );
    }
    let saved = case.read(".env");

    let apply = case.expect(["apply", "--yes"], 0);
    assert!(!apply.stdout.contains(&values["DB_PASSWORD"]), "{apply}");
    assert_eq!(
        case.read("out/config.txt"),
        format!(
            "password={}\nkey={}\ntoken={}\n",
            values["DB_PASSWORD"], values["HEX_KEY"], values["URL_TOKEN"]
        )
    );

    // The next runs use the same values: no change, and .env is left alone.
    let again = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, again, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `gen` matches the spec.

    ----- stderr -----
    ");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read(".env"), saved, ".env is unchanged by later runs");

    let secrets = case.run(["secrets"]);
    fabrik_snapshot!(case, secrets, @"
    exit code: 0
    ----- stdout -----
    DB_PASSWORD  generated (kept in .env)
    HEX_KEY      generated (kept in .env)
    URL_TOKEN    generated (kept in .env)

    ----- stderr -----
    ");
    assert_eq!(case.read(".env"), saved);
}

const OVERRIDDEN: &str = r#"
    stack: over
    secrets:
      API_TOKEN: {}
    resources:
      config:
        type: local.file
        with: { path: out/config.txt, content: "token=${secret.API_TOKEN}\n" }
"#;

#[test]
fn the_environment_overrides_dotenv_and_a_change_shows_as_sensitive() {
    let case = Case::new().spec(OVERRIDDEN);
    case.write(".env", "API_TOKEN=from-dotenv-4e1a\n");
    std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let secrets = case.run(["secrets"]);
    fabrik_snapshot!(case, secrets, @"
    exit code: 0
    ----- stdout -----
    API_TOKEN  .env

    ----- stderr -----
    ");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("out/config.txt"), "token=from-dotenv-4e1a\n");

    // The same value from the environment: nothing to do.
    let same = case
        .args(["plan", "--detailed-exitcode"])
        .env("API_TOKEN", "from-dotenv-4e1a")
        .run();
    assert_eq!(same.code, 0, "an unchanged secret is no change:\n{same}");

    // Another value from the environment wins over .env.
    let secrets = case
        .args(["secrets"])
        .env("API_TOKEN", "from-env-77c3")
        .run();
    fabrik_snapshot!(case, secrets, @"
    exit code: 0
    ----- stdout -----
    API_TOKEN  environment

    ----- stderr -----
    ");
    let plan = case
        .args(["plan", "--detailed-exitcode"])
        .env("API_TOKEN", "from-env-77c3")
        .run();
    fabrik_snapshot!(case, plan, @"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `over`:

      ~ config (local.file)
          ~ content: (sensitive value changed)

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    ");
    let json = case
        .args(["plan", "--json"])
        .env("API_TOKEN", "from-env-77c3")
        .run();
    assert_eq!(json.code, 0, "{json}");
    for value in ["from-env-77c3", "from-dotenv-4e1a"] {
        assert!(!json.stdout.contains(value), "no value in --json:\n{json}");
    }
    let plan_json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let content = json_attribute(&plan_json, "config", "content");
    assert!(
        is_masked(&content["before"]) && is_masked(&content["after"]),
        "before and after are keyed hashes, not values: {content}"
    );
    assert_ne!(content["before"], content["after"], "{content}");

    let apply = case
        .args(["apply", "--yes"])
        .env("API_TOKEN", "from-env-77c3")
        .run();
    assert_eq!(apply.code, 0, "{apply}");
    assert_eq!(case.read("out/config.txt"), "token=from-env-77c3\n");
    assert_eq!(
        case.read(".env"),
        "API_TOKEN=from-dotenv-4e1a\n",
        ".env is never rewritten for a value from the environment"
    );
    // Back to .env's value: an update again.
    let back = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(back.code, 2, "{back}");
    assert!(
        back.stdout.contains("~ content: (sensitive value changed)"),
        "{back}"
    );
}

#[test]
fn a_saved_plan_is_stale_once_a_secret_changes_and_applies_the_real_value() {
    let case = Case::new().spec(OVERRIDDEN).env("API_TOKEN", "first-3c9d");
    case.expect(["plan", "--out", "p.json"], 0);
    let saved = case.read("p.json");
    assert!(!saved.contains("first-3c9d"), "{saved}");

    let stale = case
        .args(["apply", "p.json"])
        .env("API_TOKEN", "second-b81f")
        .run();
    assert_eq!(
        stale.code, 1,
        "a changed secret makes the plan stale:\n{stale}"
    );
    assert!(stale.stderr.contains("stale"), "{stale}");
    assert!(!case.exists("out/config.txt"), "nothing was written");

    case.expect(["apply", "p.json"], 0);
    assert_eq!(
        case.read("out/config.txt"),
        "token=first-3c9d\n",
        "the saved plan holds hashes only; the apply writes the real value"
    );
}

const REFRESHED: &str = r#"
    stack: fresh
    secrets:
      TOKEN: {}
    resources:
      config:
        type: local.file
        with: { path: out/config.txt, content: "token=${secret.TOKEN}\n" }
      svc:
        type: local.process
        with:
          command: sleep
          args: ["300"]
          stop_timeout: 1
          env: { TOKEN: "${secret.TOKEN}" }
"#;

#[test]
fn refresh_sees_no_change_in_resources_holding_a_secret() {
    let case = Case::new().spec(REFRESHED).env("TOKEN", "refresh-5a0e");
    let _reaper = Reaper(&case);
    case.expect(["apply", "--yes"], 0);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `fresh` matches the spec.

    ----- stderr -----
    ");
    case.expect(["destroy", "--yes"], 0);
}

#[test]
fn refresh_puts_back_a_secret_file_changed_outside_fabrik() {
    let case = Case::new().spec(OVERRIDDEN).env("API_TOKEN", "kept-0b5d");
    case.expect(["apply", "--yes"], 0);
    case.write("out/config.txt", "token=tampered\n");
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `over`:

      ~ config (local.file)  # changed outside fabrik
          ~ content: (sensitive value changed)

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    ");
    assert!(!plan.stdout.contains("tampered"), "{plan}");
    case.expect(["apply", "--refresh", "--yes"], 0);
    assert_eq!(case.read("out/config.txt"), "token=kept-0b5d\n");
}

/// A secret's value may also be an ordinary word of the spec: here the database user is named
/// like the stack and the file (a value long enough to be accepted as a secret). Masking the
/// value where it is a secret must not rewrite the rest of what fabrik stores, or the stack can
/// no longer be planned or destroyed.
#[test]
fn a_secret_whose_value_also_names_the_stack_keeps_the_stack_usable() {
    let case = Case::new()
        .spec(
            r#"
            stack: shopfront
            secrets:
              DB_USER: {}
            resources:
              db_conf:
                type: local.file
                with: { path: out/shopfront.conf, content: "user=${secret.DB_USER}\n" }
            "#,
        )
        .env("DB_USER", "shopfront");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("out/shopfront.conf"), "user=shopfront\n");
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "an unchanged stack plans no change:\n{plan}");
    let list = case.run(["state", "list"]);
    assert_eq!(list.code, 0, "{list}");
    let destroy = case.run(["destroy", "--yes"]);
    assert_eq!(destroy.code, 0, "{destroy}");
    assert!(
        !case.exists("out/shopfront.conf"),
        "destroy removes the file the stack created:\n{destroy}"
    );
}

/// A secret in a file's path: the object's id and `abs_path` hold it. Either the spec is
/// refused before anything is written, or the state keeps the secret out and destroy still
/// removes the file (the id must not be rewritten into a path that does not exist).
#[test]
fn a_secret_in_a_path_neither_leaks_nor_orphans_the_file() {
    let secret = "PathSecret-5c3e";
    let case = Case::new()
        .spec(
            r#"
            stack: pathy
            secrets:
              NAME: {}
            resources:
              hidden:
                type: local.file
                with: { path: "out/${secret.NAME}.txt", content: "hello\n" }
            "#,
        )
        .env("NAME", secret);
    let mut leak = LeakCheck::new(&case, &[secret], &[]);
    let apply = case.run(["apply", "--yes"]);
    leak.output("apply --yes", &apply);
    if apply.code == 1 {
        nothing_changed(&case, &apply);
        return;
    }
    assert_eq!(apply.code, 0, "{apply}");
    assert!(case.exists(&format!("out/{secret}.txt")));
    // The file's own name holds the secret; everything else is checked.
    leak.allowed
        .push(PathBuf::from(format!("out/{secret}.txt")));
    leak.files("after `apply --yes`");
    leak.run(&["output"], &[], 0);
    leak.run(&["state", "list"], &[], 0);
    leak.run(&["destroy", "--yes"], &[], 0);
    assert!(
        !case.exists(&format!("out/{secret}.txt")),
        "destroy removes the file the stack created"
    );
}

// ---------------------------------------------------------------------------------------------
// Rollback
// ---------------------------------------------------------------------------------------------

/// `resources` (indented for a spec), with a stack gate on `${env.GATE_PORT}`.
fn gated(stack: &str, resources: &str) -> String {
    format!(
        r#"
    stack: {stack}
    secrets:
      TOKEN: {{}}
    resources:
{resources}
    verify:
      - tcp: "127.0.0.1:${{env.GATE_PORT}}"
        timeout: 1s
        interval: 100ms
"#
    )
}

const GATED_FILE: &str = r#"
      config:
        type: local.file
        with: { path: out/config.txt, content: "token=${secret.TOKEN}\n" }
"#;

/// Applies `case`'s spec with TOKEN=`token` while a listener keeps the gate's port open;
/// returns a port where nothing listens, for the next apply, whose gate must then fail.
fn apply_with_open_gate(case: &Case, token: &str) -> ClosedPort {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let out = case
        .args(["apply", "--yes"])
        .env("TOKEN", token)
        .env("GATE_PORT", port.to_string())
        .run();
    assert_eq!(
        out.code, 0,
        "the gate passes while the port listens:\n{out}"
    );
    drop(listener);
    closed_port()
}

#[test]
fn rollback_restores_the_previous_secret_value() {
    let case = Case::new().spec(&gated("roll", GATED_FILE));
    let closed = apply_with_open_gate(&case, "value-A-61f0");
    assert_eq!(case.read("out/config.txt"), "token=value-A-61f0\n");

    // The listener is gone: the gate fails after the file got the new value.
    let failed = case
        .args(["apply", "--yes"])
        .env("TOKEN", "value-B-93c2")
        .env("GATE_PORT", closed.port.to_string())
        .run();
    assert_eq!(failed.code, 3, "every change was rolled back:\n{failed}");
    assert!(
        failed.stdout.contains("~ config (local.file): updated")
            && failed.stdout.contains("↩ config (local.file): rolled back"),
        "{failed}"
    );
    for value in ["value-A-61f0", "value-B-93c2"] {
        assert!(
            !failed.stdout.contains(value) && !failed.stderr.contains(value),
            "{failed}"
        );
    }
    assert_eq!(case.read("out/config.txt"), "token=value-A-61f0\n");

    let plan = case
        .args(["plan", "--detailed-exitcode"])
        .env("TOKEN", "value-A-61f0")
        .env("GATE_PORT", closed.port.to_string())
        .run();
    fabrik_snapshot!(case, plan, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `roll` matches the spec.

    ----- stderr -----
    ");
}

#[test]
fn rollback_restarts_a_process_with_its_previous_secret() {
    let case = Case::new().spec(&gated(
        "rollproc",
        r#"
      svc:
        type: local.process
        with:
          command: sleep
          args: ["300"]
          stop_timeout: 1
          env: { TOKEN: "${secret.TOKEN}" }
"#,
    ));
    let _reaper = Reaper(&case);
    let closed = apply_with_open_gate(&case, "proc-A-2b44");
    let before = recorded_pid(&case, "rollproc", "svc");
    assert_eq!(env_value(&environ(before), "TOKEN"), Some("proc-A-2b44"));

    let failed = case
        .args(["apply", "--yes"])
        .env("TOKEN", "proc-B-c610")
        .env("GATE_PORT", closed.port.to_string())
        .run();
    assert_eq!(
        failed.code, 3,
        "the process is restarted with its previous secret:\n{failed}"
    );
    let pid = recorded_pid(&case, "rollproc", "svc");
    assert_eq!(
        env_value(&environ(pid), "TOKEN"),
        Some("proc-A-2b44"),
        "the running process has the previous value again"
    );
    let plan = case
        .args(["plan", "--detailed-exitcode"])
        .env("TOKEN", "proc-A-2b44")
        .env("GATE_PORT", closed.port.to_string())
        .run();
    assert_eq!(plan.code, 0, "{plan}");
    case.args(["destroy", "--yes"]).env("GATE_PORT", "1").run();
}

#[test]
fn rollback_removes_a_created_resource_holding_a_secret() {
    let case = Case::new().spec(&gated("rollnew", GATED_FILE));
    let closed = apply_with_open_gate(&case, "new-A-7d21");
    case.set_spec(&gated(
        "rollnew",
        &format!(
            "{GATED_FILE}{}",
            r#"
      extra:
        type: local.file
        with: { path: out/extra.txt, content: "also ${secret.TOKEN}\n" }
"#
        ),
    ));
    let failed = case
        .args(["apply", "--yes"])
        .env("TOKEN", "new-A-7d21")
        .env("GATE_PORT", closed.port.to_string())
        .run();
    assert!(
        failed.stdout.contains("+ extra (local.file): created"),
        "{failed}"
    );
    assert_eq!(failed.code, 3, "the new file is deleted again:\n{failed}");
    assert!(!case.exists("out/extra.txt"), "rolled back");
    assert_eq!(case.tracked("rollnew"), ["config"]);
}

#[test]
fn rollback_of_a_replacement_holding_a_secret_keeps_the_old_object() {
    let case = Case::new().spec(&gated("rollrep", GATED_FILE));
    let closed = apply_with_open_gate(&case, "rep-A-40e9");
    // A new path forces a replacement (the new file first, then the old one removed).
    case.set_spec(&gated(
        "rollrep",
        &GATED_FILE.replace("out/config.txt", "out/moved.txt"),
    ));
    let failed = case
        .args(["apply", "--yes"])
        .env("TOKEN", "rep-A-40e9")
        .env("GATE_PORT", closed.port.to_string())
        .run();
    assert_eq!(failed.code, 3, "the replacement is undone:\n{failed}");
    assert!(!case.exists("out/moved.txt"), "the new file is removed");
    assert_eq!(case.read("out/config.txt"), "token=rep-A-40e9\n");
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

const ONE_GENERATED: &str = r#"
    stack: bad
    secrets:
      DB_PASSWORD: { generate: { length: 32 } }
    resources:
      config:
        type: local.file
        with: { path: out/config.txt, content: "password=${secret.DB_PASSWORD}\n" }
"#;

#[test]
fn a_malformed_dotenv_is_refused_naming_the_line_without_its_content() {
    let case = Case::new().spec(ONE_GENERATED);
    let dotenv = "# settings\nOTHER=1\nPASSWORD hunter2-do-not-print\n";
    case.write(".env", dotenv);
    std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: .env:3:10: malformed line (expected NAME=value; quote values with spaces or `#`)
    ");
    assert!(!out.stderr.contains("hunter2"), "{out}");
    nothing_changed(&case, &out);
    assert_eq!(case.read(".env"), dotenv, ".env is left as it was");
}

#[test]
fn a_malformed_dotenv_line_is_located_even_when_a_comment_repeats_it() {
    let case = Case::new().spec(ONE_GENERATED);
    let dotenv = "# PASSWORD hunter2 was the old way\nOTHER=1\nPASSWORD hunter2\n";
    case.write(".env", dotenv);
    std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = case.run(["plan"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.starts_with("error: .env:3:"),
        "the malformed line is line 3, not the comment on line 1:\n{out}"
    );
    assert!(!out.stderr.contains("hunter2"), "{out}");
    nothing_changed(&case, &out);
}

#[test]
fn an_unwritable_dotenv_is_refused_when_a_secret_must_be_generated() {
    let case = Case::new().spec(ONE_GENERATED);
    case.write(".env", "OTHER=1\n");
    std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // Tests run as root: a directory where fabrik writes its temporary file stops the write.
    std::fs::create_dir(case.path(".env.fabrik-tmp")).unwrap();
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot save generated secrets to .env; nothing was changed: Is a directory (os error 21)
    ");
    nothing_changed(&case, &out);
    assert_eq!(case.read(".env"), "OTHER=1\n", ".env is left as it was");
    assert!(case.path(".env.fabrik-tmp").is_dir());
}

#[test]
fn an_unknown_secret_reference_suggests_the_closest_name() {
    let case = Case::new().spec(
        r#"
        stack: bad
        secrets:
          DB_PASSWORD: { generate: { length: 32 } }
          API_TOKEN: {}
        resources:
          config:
            type: local.file
            with: { path: out/config.txt, content: "password=${secret.DB_PASWORD}\n" }
        "#,
    );
    let out = case
        .args(["apply", "--yes"])
        .env("API_TOKEN", "t0k3n")
        .run();
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown secret `DB_PASWORD`
      --> fabrik.yaml:8:54
      |
    8 |     with: { path: out/config.txt, content: "password=${secret.DB_PASWORD}\n" }
      |                                                      ^^^^^^^^^^^^^^^^^^^^
      = help: did you mean `DB_PASSWORD`?
    "#);
    nothing_changed(&case, &out);
    assert!(
        !case.exists(".env"),
        "no secret is generated for a refused spec"
    );
}

#[test]
fn a_generated_length_out_of_range_is_located() {
    for (length, column) in [("0", 38), ("100000", 38)] {
        let case = Case::new().spec(&format!(
            r#"
            stack: bad
            secrets:
              DB_PASSWORD: {{ generate: {{ length: {length} }} }}
            resources:
              config:
                type: local.file
                with: {{ path: out/config.txt, content: "${{secret.DB_PASSWORD}}" }}
            "#
        ));
        let out = case.run(["apply", "--yes"]);
        assert_eq!(out.code, 1, "{out}");
        assert!(
            out.stderr.starts_with(&format!(
                "error: secret `DB_PASSWORD`: a generated length of {length} is out of range\n  --> fabrik.yaml:3:{column}\n"
            )),
            "{out}"
        );
        assert!(out.stderr.contains("use 8 to 4096 characters"), "{out}");
        nothing_changed(&case, &out);
        assert!(!case.exists(".env"));
        if length == "0" {
            fabrik_snapshot!(case, out, @"
            exit code: 1
            ----- stdout -----

            ----- stderr -----
            error: secret `DB_PASSWORD`: a generated length of 0 is out of range
              --> fabrik.yaml:3:38
              |
            3 |   DB_PASSWORD: { generate: { length: 0 } }
              |                                      ^
              = help: use 8 to 4096 characters
            ");
        } else {
            fabrik_snapshot!(case, out, @"
            exit code: 1
            ----- stdout -----

            ----- stderr -----
            error: secret `DB_PASSWORD`: a generated length of 100000 is out of range
              --> fabrik.yaml:3:38
              |
            3 |   DB_PASSWORD: { generate: { length: 100000 } }
              |                                      ^^^^^^
              = help: use 8 to 4096 characters
            ");
        }
    }
}

#[test]
fn a_missing_required_secret_names_every_place_looked_at() {
    let case = Case::new().spec(
        r#"
        stack: bad
        secrets:
          API_TOKEN: {}
        resources:
          config:
            type: local.file
            with: { path: out/config.txt, content: "token=${secret.API_TOKEN}\n" }
        "#,
    );
    case.write(".env", "OTHER=1\n");
    std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: secret `API_TOKEN` has no value
      --> fabrik.yaml:3:3
      |
    3 |   API_TOKEN: {}
      |   ^^^^^^^^^
      = help: looked in the environment variable `API_TOKEN` and in .env; set one of them, or declare it with `generate: { length: 32 }`
    ");
    nothing_changed(&case, &out);
    assert_eq!(case.read(".env"), "OTHER=1\n");
}

#[test]
fn a_missing_secret_names_the_dotenv_beside_a_spec_elsewhere() {
    let case = Case::new();
    case.write(
        "deploy/fabrik.yaml",
        crate::harness::dedent(
            r#"
            stack: bad
            secrets:
              API_TOKEN: {}
            resources:
              config:
                type: local.file
                with: { path: out/config.txt, content: "token=${secret.API_TOKEN}\n" }
            "#,
        ),
    );
    let out = case.run(["plan", "deploy/fabrik.yaml"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("looked in the environment variable `API_TOKEN` and in deploy/.env"),
        "{out}"
    );
    assert!(!case.path("deploy/.fabrik").exists());
}

#[test]
fn an_invalid_secret_name_is_refused() {
    let case = Case::new().spec(
        r#"
        stack: bad
        secrets:
          db-password: {}
          9LIVES: { generate: { length: 16 } }
        resources:
          config:
            type: local.file
            with: { path: out/config.txt, content: "x" }
        "#,
    );
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: invalid secret name `db-password`
      --> fabrik.yaml:3:3
      |
    3 |   db-password: {}
      |   ^^^^^^^^^^^
      = help: a secret is named like an environment variable: letters, digits and `_`, not starting with a digit

    error: invalid secret name `9LIVES`
      --> fabrik.yaml:4:3
      |
    4 |   9LIVES: { generate: { length: 16 } }
      |   ^^^^^^
      = help: a secret is named like an environment variable: letters, digits and `_`, not starting with a digit

    2 errors in fabrik.yaml
    ");
    nothing_changed(&case, &out);
    assert!(!case.exists(".env"));
}

#[test]
fn an_unknown_alphabet_suggests_the_closest() {
    let case = Case::new().spec(
        r#"
        stack: bad
        secrets:
          DB_PASSWORD: { generate: { length: 16, alphabet: base64-url } }
        resources:
          config:
            type: local.file
            with: { path: out/config.txt, content: "${secret.DB_PASSWORD}" }
        "#,
    );
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown alphabet `base64-url`
      --> fabrik.yaml:3:52
      |
    3 |   DB_PASSWORD: { generate: { length: 16, alphabet: base64-url } }
      |                                                    ^^^^^^^^^^
      = help: did you mean `base64url`?
    ");
    nothing_changed(&case, &out);
    assert!(!case.exists(".env"));
}

/// `PDNS_API_KEY=test` once made plans print `example.(sensitive).`: hiding a value that short
/// tells it. Such a value is refused before anything is planned, whether it comes from the
/// environment or from `.env`, and the message says which (never the value or its length).
#[test]
fn a_short_secret_is_refused_at_load() {
    let from_env = Case::new().spec(OVERRIDDEN).env("API_TOKEN", "test");
    let out = from_env.run(["plan"]);
    fabrik_snapshot!(from_env, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: secret `API_TOKEN`, set in the environment, is shorter than 8 characters
      --> fabrik.yaml:3:3
      |
    3 |   API_TOKEN: {}
      |   ^^^^^^^^^
      = help: where fabrik's output hides a value this short would tell it (`test` in `example.test.`); use a longer value, or pass a value that is not secret as `${env.NAME}`
    "#);
    nothing_changed(&from_env, &out);

    let from_dotenv = Case::new().spec(OVERRIDDEN);
    from_dotenv.write(".env", "OTHER=1\nAPI_TOKEN=seven-7\n");
    std::fs::set_permissions(
        from_dotenv.path(".env"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for args in [&["apply", "--yes"][..], &["secrets"][..]] {
        let out = from_dotenv.run(args);
        assert_eq!(out.code, 1, "{out}");
        assert!(
            out.stderr.starts_with(
                "error: secret `API_TOKEN`, set in .env:2, is shorter than 8 characters\n"
            ),
            "{out}"
        );
        assert!(!out.stderr.contains("seven-7"), "{out}");
        nothing_changed(&from_dotenv, &out);
    }

    // Eight characters are enough.
    let long_enough = Case::new().spec(OVERRIDDEN).env("API_TOKEN", "eight-88");
    long_enough.expect(["apply", "--yes"], 0);
    assert_eq!(long_enough.read("out/config.txt"), "token=eight-88\n");
}

/// The case that showed the problem: a PowerDNS key `test` and a zone `example.test`. Masking
/// rewrote the zone to `example.(sensitive).`, which tells the key. Now the key is refused, and
/// a real one leaves every name as it is: a plan shows `(sensitive)` only where a secret is used.
#[test]
fn plans_never_show_where_a_secret_was() {
    let spec = r#"
        stack: dns
        providers:
          powerdns: { url: "http://127.0.0.1:9", api_key: "${secret.PDNS_API_KEY}" }
        secrets:
          PDNS_API_KEY: {}
        resources:
          www:
            type: powerdns.record
            with: { zone: example.test, name: www, type: A, records: ["192.0.2.1"], ttl: 300 }
    "#;
    let short = Case::new().spec(spec).env("PDNS_API_KEY", "test");
    let out = short.run(["plan"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(
        out.stdout, "",
        "nothing is planned with a short key:\n{out}"
    );
    assert!(!out.stderr.contains("(sensitive)"), "{out}");
    assert!(
        out.stderr
            .contains("secret `PDNS_API_KEY`, set in the environment, is shorter than 8"),
        "{out}"
    );

    let real = Case::new()
        .spec(spec)
        .env("PDNS_API_KEY", "pdns-key-7Hq2xV");
    // No server answers here: the plan trusts the (empty) state instead of reading.
    let out = real.run(["plan", "--refresh=false"]);
    fabrik_snapshot!(real, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `dns`:

      + www (powerdns.record)
          + zone    = "example.test."
          + name    = "www.example.test."
          + type    = "A"
          + records = ["192.0.2.1"]
          + ttl     = 300

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
}

/// `content_hash` was a plain BLAKE3 of a file's content, printed by `fabrik output` and kept in
/// the state: anyone could test guesses of the secret in it. Outputs derived from a secret input
/// are kept by their keyed hash and shown as `(sensitive)`, while what refers to them still gets
/// the real values, on the first apply and on later ones that leave the secret's file alone.
#[test]
fn content_hash_of_secret_content_is_not_a_plain_hash() {
    let case = Case::new()
        .spec(
            r#"
            stack: hashes
            secrets:
              API_TOKEN: {}
            resources:
              config:
                type: local.file
                with: { path: out/config.txt, content: "token=${secret.API_TOKEN}\n" }
              other:
                type: local.file
                with: { path: out/other.txt, content: "v=${env.V}\n" }
              stamp:
                type: local.file
                with:
                  path: out/stamp.txt
                  content: "${config.content_hash} ${config.size} ${other.content_hash}\n"
            "#,
        )
        .env("API_TOKEN", "guessable-token")
        .env("V", "1");
    let content = "token=guessable-token\n";
    let plain = blake3::hash(content.as_bytes()).to_hex().to_string();
    let stamp = |v: &str| {
        let other = blake3::hash(format!("v={v}\n").as_bytes()).to_hex();
        format!("blake3:{plain} {} blake3:{other}\n", content.len())
    };
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("out/config.txt"), content);
    assert_eq!(
        case.read("out/stamp.txt"),
        stamp("1"),
        "a reference gets the real values"
    );

    let state = case.state("hashes");
    for attr in ["content_hash", "size"] {
        let stored = &state["resources"]["config"]["outputs"][attr];
        assert!(
            is_masked(stored),
            "{attr} is kept by its keyed hash: {stored}"
        );
    }
    let other = &state["resources"]["other"]["outputs"]["content_hash"];
    assert!(!is_masked(other), "an output of no secret stays as it is");
    for (path, bytes) in case.state_files() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&plain),
            "{} holds the plain hash of the secret content",
            path.display()
        );
    }

    let out = case.run(["output", "config"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    config.abs_path = "[TEMP]/out/config.txt"
    config.content_hash = (sensitive)
    config.size = (sensitive)

    ----- stderr -----
    "#);
    for args in [&["output"][..], &["output", "--json"][..]] {
        let out = case.run(args);
        assert_eq!(out.code, 0, "{out}");
        assert!(!out.stdout.contains(&plain), "{out}");
        assert!(out.stdout.contains("(sensitive)"), "{out}");
    }
    let json = case.run(["output", "config", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(json["content_hash"], "(sensitive)");
    // One sensitive attribute: shown as such, and `--raw` has no value to give a script.
    let one = case.run(["output", "config.content_hash"]);
    assert_eq!(one.stdout, "config.content_hash = (sensitive)\n", "{one}");
    let raw = case.run(["output", "config.content_hash", "--raw"]);
    fabrik_snapshot!(case, raw, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `config.content_hash` is derived from a secret: the state keeps only its keyed hash, so there is no value to print
    ");

    for args in [
        &["plan", "--detailed-exitcode"][..],
        &["plan", "--refresh", "--detailed-exitcode"][..],
    ] {
        let out = case.run(args);
        assert_eq!(out.code, 0, "an unchanged stack plans no change:\n{out}");
        assert!(!out.stdout.contains(&plain), "{out}");
    }

    // `stamp` is resolved after `other` changes, while `config` is left alone: its outputs
    // come from reading the file again.
    let out = case.args(["apply", "--yes"]).env("V", "2").run();
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stdout.contains(&plain), "{out}");
    assert_eq!(case.read("out/stamp.txt"), stamp("2"));
    let out = case
        .args(["plan", "--detailed-exitcode"])
        .env("V", "2")
        .run();
    assert_eq!(out.code, 0, "{out}");

    // Changed outside fabrik, the file no longer gives the values the state holds the hash
    // of: without a refresh, nothing can be planned for what refers to them; with one, the
    // file is put back and they are the same again.
    case.write("out/config.txt", "token=changed-by-hand\n");
    let out = case.args(["plan", "--refresh=false"]).env("V", "2").run();
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .starts_with("error: `config` was changed or deleted outside fabrik"),
        "{out}"
    );
    let out = case
        .args(["apply", "--refresh", "--yes"])
        .env("V", "2")
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(case.read("out/config.txt"), content);
    assert_eq!(case.read("out/stamp.txt"), stamp("2"));
}

/// A state written before outputs derived from secrets were hidden holds them in plain. The
/// next apply keeps them by their hash, a change to fabrik's record only: the file and what
/// refers to it are left alone.
#[test]
fn outputs_of_a_secret_kept_in_plain_by_an_earlier_state_are_hidden_by_the_next_apply() {
    let case = Case::new()
        .spec(
            r#"
            stack: older
            secrets:
              API_TOKEN: {}
            resources:
              config:
                type: local.file
                with: { path: out/config.txt, content: "token=${secret.API_TOKEN}\n" }
              stamp:
                type: local.file
                with: { path: out/stamp.txt, content: "${config.content_hash}\n" }
            "#,
        )
        .env("API_TOKEN", "guessable-token");
    case.expect(["apply", "--yes"], 0);
    let content = "token=guessable-token\n";
    let plain = format!("blake3:{}", blake3::hash(content.as_bytes()).to_hex());
    let mut state = case.state("older");
    state["resources"]["config"]["outputs"]["content_hash"] = plain.clone().into();
    state["resources"]["config"]["outputs"]["size"] = content.len().into();
    std::fs::write(case.state_file("older"), state.to_string()).unwrap();

    let out = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, out, @r"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `older`:

      ~ config (local.file)  # outputs derived from secrets are in the state in plain text

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    ");
    case.expect(["apply", "--yes"], 0);
    let state = case.state("older");
    for attr in ["content_hash", "size"] {
        let stored = &state["resources"]["config"]["outputs"][attr];
        assert!(is_masked(stored), "{attr}: {stored}");
    }
    for (path, bytes) in case.state_files() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&plain),
            "{} still holds the plain hash",
            path.display()
        );
    }
    assert_eq!(case.read("out/stamp.txt"), format!("{plain}\n"));
    case.expect(["plan", "--detailed-exitcode"], 0);
}

// ---------------------------------------------------------------------------------------------
// Permissions of .env
// ---------------------------------------------------------------------------------------------

#[test]
fn a_dotenv_readable_by_others_is_warned_about() {
    let case = Case::new().spec(OVERRIDDEN);
    case.write(".env", "API_TOKEN=perm-check-1\n");
    for (mode, warning) in [
        (
            0o644,
            Some("warning: .env is readable by others (mode 0644); run `chmod 600 .env`\n"),
        ),
        (
            0o640,
            Some("warning: .env is readable by its group (mode 0640); run `chmod 600 .env`\n"),
        ),
        (0o600, None),
    ] {
        std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(mode)).unwrap();
        for args in [&["plan"][..], &["secrets"][..]] {
            let out = case.run(args);
            assert_eq!(out.code, 0, "{out}");
            match warning {
                Some(warning) => assert_eq!(out.stderr, warning, "mode {mode:o}:\n{out}"),
                None => assert_eq!(out.stderr, "", "mode {mode:o}:\n{out}"),
            }
            assert!(!out.stdout.contains("perm-check-1"), "{out}");
        }
    }
}

const LISTED: &str = r#"
    stack: listed
    secrets:
      LISTED_FROM_ENV: {}
      LISTED_FROM_FILE: {}
      LISTED_GENERATED: { generate: { length: 16 } }
      LISTED_MISSING: {}
    resources:
      config:
        type: local.file
        with: { path: out/config.txt, content: "${secret.LISTED_FROM_ENV}" }
"#;

#[test]
fn the_secrets_listing_writes_nothing_and_fails_only_with_check() {
    let case = Case::new().spec(LISTED);
    let listing = case
        .args(["secrets"])
        .env("LISTED_FROM_ENV", "from-env-5a1c9e")
        .run();
    fabrik_snapshot!(case, listing, @"
    exit code: 0
    ----- stdout -----
    LISTED_FROM_ENV   environment
    LISTED_FROM_FILE  missing
    LISTED_GENERATED  will be generated
    LISTED_MISSING    missing

    ----- stderr -----
    ");
    assert!(!case.exists(".env"), "a listing generates nothing");
    assert!(!case.state_dir().exists(), "a listing writes no state");

    case.write(".env", "LISTED_FROM_FILE=from-file-2b7d\n");
    std::fs::set_permissions(case.path(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let check = case
        .args(["secrets", "--check"])
        .env("LISTED_FROM_ENV", "from-env-5a1c9e")
        .run();
    fabrik_snapshot!(case, check, @"
    exit code: 1
    ----- stdout -----
    LISTED_FROM_ENV   environment
    LISTED_FROM_FILE  .env
    LISTED_GENERATED  will be generated
    LISTED_MISSING    missing

    ----- stderr -----
    error: secret `LISTED_MISSING` has no value; set it in the environment or in .env
    ");
    assert_eq!(case.read(".env"), "LISTED_FROM_FILE=from-file-2b7d\n");

    case.write(
        ".env",
        "LISTED_FROM_FILE=from-file-2b7d\nLISTED_MISSING=now-there-9f3e\n",
    );
    let complete = case
        .args(["secrets", "--check", "--spec", "fabrik.yaml"])
        .env("LISTED_FROM_ENV", "from-env-5a1c9e")
        .run();
    assert_eq!(complete.code, 0, "{complete}");
    assert!(
        complete
            .stdout
            .contains("LISTED_GENERATED  will be generated"),
        "{complete}"
    );
    assert!(!case.state_dir().exists(), "a listing writes no state");
}
