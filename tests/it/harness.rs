//! The builder every test uses: `Case::new().spec("…").args(["plan"]).run()`.
//!
//! Each `Case` owns a fresh temporary directory holding `fabrik.yaml`; the binary runs there
//! with the environment cleared (so no `FABRIK_*`, provider token or colour setting of the
//! machine running the tests leaks in), stdin closed (so it is never a terminal), and only
//! `PATH`, `HOME` (the case's directory), `USER=tester`, `NO_COLOR=1` and what the test sets.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The spec file name the binary looks for by default.
pub const SPEC: &str = "fabrik.yaml";

pub struct Case {
    dir: TempDir,
    env: Vec<(OsString, OsString)>,
}

impl Case {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fabrik-it-")
            .tempdir()
            .expect("a temporary directory");
        Case {
            dir,
            env: Vec::new(),
        }
    }

    /// Writes `fabrik.yaml` (dedented, see [`dedent`]).
    pub fn spec(self, yaml: &str) -> Self {
        self.set_spec(yaml);
        self
    }

    /// Rewrites `fabrik.yaml` (dedented, see [`dedent`]) in the middle of a test.
    pub fn set_spec(&self, yaml: &str) {
        self.write(SPEC, dedent(yaml));
    }

    /// Sets an environment variable for every run of this case.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Writes a file (relative to the case's directory), creating parent directories.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).expect("write a file into the case");
    }

    pub fn remove(&self, relative: &str) {
        std::fs::remove_file(self.path(relative)).expect("remove a file from the case");
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.path(relative).exists()
    }

    pub fn read(&self, relative: &str) -> String {
        let path = self.path(relative);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// The default state directory, `.fabrik/` beside the spec.
    pub fn state_dir(&self) -> PathBuf {
        self.path(".fabrik")
    }

    pub fn state_file(&self, stack: &str) -> PathBuf {
        self.state_dir().join(format!("{stack}.state.json"))
    }

    /// The stack's state snapshot, parsed.
    pub fn state(&self, stack: &str) -> serde_json::Value {
        let path = self.state_file(stack);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("the state file is JSON")
    }

    /// The names of the resources the stack's state tracks.
    pub fn tracked(&self, stack: &str) -> Vec<String> {
        self.state(stack)["resources"]
            .as_object()
            .expect("the state has a `resources` map")
            .keys()
            .cloned()
            .collect()
    }

    /// Every file under the state directory (its folders included) with its bytes, to prove a
    /// run left them alone.
    pub fn state_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut dirs = vec![self.state_dir()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let bytes = std::fs::read(&path).expect("read a state file");
                files.insert(path, bytes);
            }
        }
        files
    }

    /// Starts building one run of the binary.
    pub fn args<I, S>(&self, args: I) -> Run<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run {
            case: self,
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
        }
    }

    /// Runs the binary with these arguments.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args(args).run()
    }

    /// Like [`Case::run`], and fails the test unless the exit code is `code`.
    pub fn expect<I, S>(&self, args: I, code: i32) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(args);
        assert_eq!(out.code, code, "unexpected exit code:\n{out}");
        out
    }

    /// Regex filters that make output independent of this run: temp paths, durations,
    /// lineages and hashes.
    pub fn filters(&self) -> Vec<(String, String)> {
        let mut filters = Vec::new();
        let raw = self.dir.path().to_path_buf();
        let canonical = std::fs::canonicalize(&raw).unwrap_or_else(|_| raw.clone());
        for path in [canonical, raw] {
            filters.push((regex_escape(&path.display().to_string()), "[TEMP]".into()));
        }
        filters.extend([
            (r"\[\d+(\.\d+)?m?s\]".into(), "[TIME]".into()),
            (r"\bin \d+(\.\d+)?m?s\b".into(), "in [TIME]".into()),
            (r"\b[0-9a-f]{64}\b".into(), "[HASH]".into()),
            (r"\b[0-9a-f]{32}\b".into(), "[LINEAGE]".into()),
        ]);
        filters
    }

    /// insta settings with [`Case::filters`] in place.
    pub fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        for (regex, replacement) in self.filters() {
            settings.add_filter(&regex, replacement);
        }
        settings
    }
}

/// One run of the binary being built.
pub struct Run<'a> {
    case: &'a Case,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Run<'_> {
    /// Sets an environment variable for this run only.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fabrik"));
        command
            .args(&self.args)
            .current_dir(self.case.root())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.case.root())
            .env("USER", "tester")
            .env("NO_COLOR", "1")
            .envs(self.case.env.iter().map(|(k, v)| (k, v)))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    pub fn run(self) -> Output {
        let output = self.command().output().expect("the fabrik binary starts");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

/// What one run produced. Displays as the snapshot format: exit code, stdout, stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Lets specs be written indented inside a test: drops a leading newline and a last line of
/// only spaces, and removes the indentation every other line shares. The result ends with a
/// newline, so line and column numbers in messages are those of the YAML as the test reads.
pub fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(text.len());
    for line in lines {
        out.push_str(line.get(indent..).unwrap_or(""));
        out.push('\n');
    }
    out
}

fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Snapshots a run (`Output`, or anything displayable) with the case's filters, inline.
macro_rules! fabrik_snapshot {
    ($case:expr, $value:expr, @$snapshot:literal) => {{
        let value = $value.to_string();
        $case.settings().bind(|| {
            insta::assert_snapshot!(value, @$snapshot);
        });
    }};
}
