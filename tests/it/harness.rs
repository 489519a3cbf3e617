//! The builder every test uses: `Case::new().spec("…").args(["plan"]).run()`.
//!
//! Each `Case` owns a fresh temporary directory holding `fabrik.yaml`; the binary runs there
//! with the environment cleared (so no `FABRIK_*`, provider token or colour setting of the
//! machine running the tests leaks in), stdin closed (so it is never a terminal), and only
//! `PATH`, `HOME` (the case's directory), `USER=tester`, `NO_COLOR=1` and what the test sets.

use std::cell::RefCell;
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
    /// Filters for values only this case knows (see [`Case::redact`]), applied before the
    /// general ones.
    redactions: RefCell<Vec<(String, String)>>,
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
            redactions: RefCell::new(Vec::new()),
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
    ///
    /// Asked of the binary (`fabrik state list`), which reads the snapshot and replays the
    /// journal after it: a run that found nothing to change does not rewrite the snapshot, so
    /// records a killed run left in the journal are the state's too.
    pub fn tracked(&self, stack: &str) -> Vec<String> {
        let listed = self.run(["state", "list", "--stack", stack]);
        assert_eq!(listed.code, 0, "fabrik state list failed:\n{listed}");
        listed
            .stdout
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_string)
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

    /// Shows `value` as `[NAME]` in this case's snapshots: for what a run cannot know in advance
    /// (a free port, a pid, an id a server chose). The snapshot then still checks that the output
    /// names that very value where it names it, which a general filter would not.
    pub fn redact(&self, value: impl fmt::Display, name: &str) {
        let value = value.to_string();
        assert!(!value.is_empty(), "nothing to redact as [{name}]");
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let edge = |c| if word(c) { r"\b" } else { "" };
        let regex = format!(
            "{}{}{}",
            edge(value.chars().next()),
            regex_escape(&value),
            edge(value.chars().last())
        );
        self.redactions
            .borrow_mut()
            .push((regex, format!("[{name}]")));
    }

    /// Replaces every match of `regex` with `replacement` in this case's snapshots: for values
    /// of a known shape the test cannot learn (the time a lock was taken).
    pub fn redact_matches(&self, regex: &str, replacement: &str) {
        self.redactions
            .borrow_mut()
            .push((regex.to_string(), replacement.to_string()));
    }

    /// A gate's last attempt can start so close to the gate's timeout on a loaded machine that it
    /// is cut short, and the gate then reports that attempt's `timed out` instead of what the
    /// attempts before it saw. Shows both as `SEEN [or timed out at the deadline]` where a gate
    /// gives up, so the snapshot still pins `seen` word for word.
    pub fn redact_deadline_cut(&self, seen: &str) {
        let timed_out = r"no answer from \S+ in time \(timed out\)|timed out";
        self.redactions.borrow_mut().push((
            format!(r"(?:{}|{timed_out}) \(gave up after ", regex_escape(seen)),
            format!("{seen} [or timed out at the deadline] (gave up after "),
        ));
    }

    /// Regex filters that make output independent of this run: the case's own redactions, then
    /// temp paths, durations, lineages and hashes.
    pub fn filters(&self) -> Vec<(String, String)> {
        let mut filters = self.redactions.borrow().clone();
        let raw = self.dir.path().to_path_buf();
        let canonical = std::fs::canonicalize(&raw).unwrap_or_else(|_| raw.clone());
        for path in [canonical, raw] {
            filters.push((regex_escape(&path.display().to_string()), "[TEMP]".into()));
        }
        // The binary's own path, which a lock holder's recorded command starts with.
        filters.push((
            regex_escape(env!("CARGO_BIN_EXE_fabrik")),
            "[FABRIK]".into(),
        ));
        filters.extend([
            (r"\[\d+(\.\d+)?m?s\]".into(), "[TIME]".into()),
            (r"\bin \d+(\.\d+)?m?s\b".into(), "in [TIME]".into()),
            // A gate's timeout is the spec's; how many attempts fit in it depends on the load.
            (
                r"\(gave up after ([^,()]+), \d+ attempts?\)".into(),
                "(gave up after $1, [N] attempts)".into(),
            ),
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
            // No lines about waits, whose number depends on the machine's load; the cases of
            // progress.rs ask for them.
            .env("FABRIK_PROGRESS_INTERVAL_MS", "0")
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

impl Output {
    /// The same output with the lines whose order a parallel run does not fix sorted: on
    /// stdout each block of progress lines (the indented lines after the plan's `Plan: ` line,
    /// up to the next line that is not indented, such as `Rolling back…`), on stderr the list of
    /// changes left in place (the indented lines after `… (recorded in the state):`).
    ///
    /// Independent resources run in parallel, so the order in which their lines arrive varies
    /// from run to run; what each line says, and in which phase it comes, does not. Tests that
    /// snapshot a parallel run this way check the order that matters (a dependency before its
    /// dependent, undo newest first) with separate assertions on the unsorted output.
    pub fn with_parallel_lines_sorted(&self) -> Output {
        Output {
            stdout: sort_blocks(&self.stdout, |l| l.starts_with("Plan: "), true),
            stderr: sort_blocks(
                &self.stderr,
                |l| l.trim_end().ends_with("(recorded in the state):"),
                false,
            ),
            ..self.clone()
        }
    }

    /// The snapshot format without stdout, for runs whose progress cannot be the same twice (an
    /// interrupt lands at a different resource each time); the test says why where it uses it.
    pub fn code_and_stderr(&self) -> String {
        format!(
            "exit code: {}\n----- stderr -----\n{}",
            self.code, self.stderr
        )
    }
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

/// Sorts each block of indented lines that follows a line `starts` accepts; with `from_then_on`,
/// also every later block (up to the end), else only the one right after it.
fn sort_blocks(text: &str, starts: impl Fn(&str) -> bool, from_then_on: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut block: Vec<&str> = Vec::new();
    let mut sorting = false;
    for line in text.split_inclusive('\n') {
        if sorting && line.starts_with("  ") {
            block.push(line);
            continue;
        }
        block.sort_unstable();
        out.extend(block.drain(..));
        out.push_str(line);
        sorting = starts(line) || (from_then_on && sorting);
    }
    block.sort_unstable();
    out.extend(block.drain(..));
    out
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

pub fn regex_escape(text: &str) -> String {
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
