//! A model-based test of the promises fabrik makes about `local.file` and `local.process`.
//!
//! A seeded generator (splitmix64, written here so a seed replays the same sequence anywhere)
//! produces sequences of steps over a small universe: resources `ant`..`elk`, paths `p0.txt`
//! to `p4.txt` (two of them in the subdirectory `d/`), contents with references between files,
//! modes, `depends_on`, `protect`, `adopt`, files a user put in the way, `sleep` processes, an
//! HTTP server with its gate, and gates that fail to force a rollback. Each step writes a spec
//! and runs the real binary (`apply`, `plan`, `plan --out` + `apply PLAN`, a spec edited after
//! `plan --out`, `apply --target`, `destroy`, a resource renamed with a `moved:` entry), and
//! then compares the world (the files on disk,
//! the state, the processes that run, the exit code) with what the model says it must be.
//! The model follows what fabrik promises, not what it happens to do; see [`Invariant`].
//!
//! The suite runs a bounded number of steps over a few seeds. For a longer run:
//!
//! ```sh
//! FABRIK_MODEL_STEPS=2000 cargo test -p fabrik --test it -- model     # every default seed
//! FABRIK_MODEL_SEED=7 FABRIK_MODEL_STEPS=300 cargo test ... -- model   # one seed
//! FABRIK_MODEL_SEEDS=40 cargo test ... -- model                        # seeds 1..=40
//! FABRIK_MODEL_SKIP=target,adopt cargo test ... -- model              # leave features out
//! ```
//!
//! A mismatch stops its seed (the other seeds still run) and fails the test with the seed, the
//! step, the spec, the commands with their output, the steps before, and the variables that
//! replay it (the same steps; only the HTTP servers' free ports differ); the whole history of
//! the seed is written to `target/tmp/fabrik-model-seed-N.log`. With `--nocapture` the test
//! prints how often each kind of step and outcome came up.
//!
//! A second, smaller model (`model_for_each_keys_touch_only_their_instances`, over the same
//! seeds and half the steps) edits one `for_each` resource at random: keys added, removed and
//! reordered, values changed, the keys written as a list, a map or a variable, and another
//! resource referring to one instance; after each apply it checks the plan's exit code, the
//! files on disk, that an unchanged instance's file was not rewritten, and the state.
//!
//! A third model (`model_coolify_databases_match_their_specs`, a fifth of the steps) edits up to
//! three `coolify.database` resources against the Coolify fake: added, removed, a new image, a
//! new engine (a replacement), backups on and off, `delete_volumes` on and off, and images that
//! crash-loop; after each apply it checks the exit code, the databases Coolify holds (engine,
//! image, backups, healthy; after a failure, as they were), that a refresh then plans nothing,
//! and that every delete took the volumes only where the state said `delete_volumes: true`.
//!
//! A fourth model (`model_coolify_services_match_their_specs`, an eighth of the steps) edits up
//! to two Docker Compose `coolify.service` resources: added, removed, a new image, an image that
//! crash-loops (its create undone, its update rolled back with the variable it changed),
//! variables (one a secret) added, changed and removed, a new URL, and a stop in the dashboard;
//! after each apply it checks the exit code, the image, variables and URL each service has in
//! the fake, that every one runs, that a refresh then plans nothing, and that the secret is in
//! no output and no file of the state.
//!
//! A saved plan's `show --json` must list, under each change that calls its provider, the
//! resource's gates (none elsewhere), and the stack's gate when such a change is planned.
//!
//! Specs also declare stack outputs (`o1`..`o3`, each a file's `path` or `size`); after every
//! step `fabrik output --json` must give what the last successful apply worked out from the
//! resources the state records.
//!
//! `FABRIK_MODEL_SKIP` (comma-separated) leaves out step kinds (`plan`, `saved`, `stale`,
//! `target`, `destroy`, `user`, `invalid`, `rename`), features (`outputs`, `process`, `http`, `gate`, `adopt`,
//! `protect`, `alias`: paths spelled `./p0.txt`, `unknown`: references to outputs known only
//! after apply, and the invalid specs `selfref`, `duplicate`, `reserved`, `cycle`, `validate`:
//! the command on them) or the check `emptydir` (destroy removes the directory it created), to
//! look past a known failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use crate::harness::{Case, Output};
use crate::live::{ClosedPort, Reaper, closed_port, cmdline, free_port, processes_of, python};

const STACK: &str = "model";
const DEFAULT_SEEDS: u64 = 6;
const DEFAULT_STEPS: usize = 50;
/// How many earlier steps a failure message shows (the log file has them all).
const SHOWN_HISTORY: usize = 6;

#[test]
fn model_random_spec_sequences_keep_fabriks_promises() {
    let config = Config::from_env();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for &seed in &config.seeds {
        if let Err(failure) = Runner::new(seed, &config).run(&mut seen) {
            failures.push(failure);
        }
    }
    // What the run exercised (shown with --nocapture, or when it fails).
    eprintln!("model: {:.1?}; {seen:?}", started.elapsed());
    if failures.is_empty() {
        return;
    }
    let mut message = format!(
        "the model found {} failing seed(s) of {} ({} steps each, {:.1?}):\n",
        failures.len(),
        config.seeds.len(),
        config.steps,
        started.elapsed()
    );
    for failure in &failures {
        let _ = writeln!(message, "  {}", failure.summary);
    }
    let _ = writeln!(message, "\nthe first one in full:\n{}", failures[0].detail);
    panic!("{message}");
}

// ---------------------------------------------------------------------------------------------
// Configuration and the random source

struct Config {
    seeds: Vec<u64>,
    steps: usize,
    skip: BTreeSet<String>,
}

impl Config {
    fn from_env() -> Config {
        let number = |name: &str| {
            std::env::var(name).ok().map(|v| {
                v.trim()
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}"))
            })
        };
        let seeds = match (number("FABRIK_MODEL_SEED"), number("FABRIK_MODEL_SEEDS")) {
            (Some(seed), _) => vec![seed],
            (None, Some(count)) => (1..=count).collect(),
            (None, None) => (1..=DEFAULT_SEEDS).collect(),
        };
        let steps = number("FABRIK_MODEL_STEPS").map_or(DEFAULT_STEPS, |n| n as usize);
        let skip = std::env::var("FABRIK_MODEL_SKIP")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Config { seeds, steps, skip }
    }
}

/// splitmix64: tiny, seedable, and good enough to spread steps over the universe.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "a choice among nothing");
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The universe and the spec the generator builds

type Name = &'static str;

/// Resource names long enough to be recognised in a message.
const NAMES: [Name; 5] = ["ant", "bee", "cat", "dog", "elk"];
/// Where resources may put files; `d/` is created by fabrik only (users never write there), so
/// a destroy must leave no `d/` behind.
const PATHS: [&str; 5] = ["p0.txt", "d/p1.txt", "p2.txt", "d/p3.txt", "p4.txt"];
/// Where a user may have put a file of their own.
const USER_SLOTS: [usize; 3] = [0, 2, 4];
/// Paths fabrik must refuse: the spec itself, its state directory, the secrets file.
const RESERVED: [&str; 5] = [
    "fabrik.yaml",
    "./fabrik.yaml",
    ".fabrik/model.state.json",
    ".fabrik/notes.txt",
    ".env",
];
const MODES: [&str; 2] = ["0600", "0644"];
const USER_MODES: [u32; 4] = [0o600, 0o640, 0o644, 0o755];
/// Literal pieces of content: as written in the spec, and as they end up in the file.
const LITS: [(&str, &str); 7] = [
    ("alpha\n", "alpha\n"),
    ("beta ", "beta "),
    ("gamma\ndelta\n", "gamma\ndelta\n"),
    ("size=", "size="),
    (" hash=", " hash="),
    ("tail\n", "tail\n"),
    ("$${not.a.ref}\n", "${not.a.ref}\n"),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FilePath {
    Plain(usize),
    /// The same file as `Plain`, written `./p0.txt`.
    Dotted(usize),
    Reserved(usize),
}

impl FilePath {
    fn text(self) -> String {
        match self {
            FilePath::Plain(i) => PATHS[i].to_string(),
            FilePath::Dotted(i) => format!("./{}", PATHS[i]),
            FilePath::Reserved(i) => RESERVED[i].to_string(),
        }
    }

    /// The file it names, relative to the spec's directory.
    fn key(self) -> String {
        let text = self.text();
        text.strip_prefix("./").map_or(text.clone(), str::to_string)
    }

    fn slot(self) -> Option<usize> {
        match self {
            FilePath::Plain(i) | FilePath::Dotted(i) => Some(i),
            FilePath::Reserved(_) => None,
        }
    }

    fn of_slot(slot: usize, dotted: bool) -> FilePath {
        if dotted {
            FilePath::Dotted(slot)
        } else {
            FilePath::Plain(slot)
        }
    }

    fn parse(text: &str) -> Option<FilePath> {
        (0..PATHS.len())
            .flat_map(|i| [FilePath::Plain(i), FilePath::Dotted(i)])
            .chain((0..RESERVED.len()).map(FilePath::Reserved))
            .find(|p| p.text() == text)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attr {
    Size,
    Hash,
    Path,
}

impl Attr {
    fn name(self) -> &'static str {
        match self {
            Attr::Size => "size",
            Attr::Hash => "content_hash",
            Attr::Path => "path",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Part {
    Lit(usize),
    Ref(Name, Attr),
    /// Text as it must end up in the file (written with `$${` where it has `${`).
    Raw(String),
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct File {
    path: FilePath,
    content: Vec<Part>,
    mode: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proc {
    /// `sleep SECONDS`.
    Sleep(u32),
    /// `python3 -m http.server PORT`, with an HTTP gate on it.
    Http(u16),
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Body {
    File(File),
    Proc(Proc),
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct Res {
    body: Body,
    depends_on: BTreeSet<Name>,
    protect: bool,
    adopt: bool,
    /// A gate on a port nobody listens on: this resource's change fails after being made.
    failing_gate: bool,
}

impl Res {
    fn file(&self) -> Option<&File> {
        match &self.body {
            Body::File(f) => Some(f),
            Body::Proc(_) => None,
        }
    }

    fn file_mut(&mut self) -> Option<&mut File> {
        match &mut self.body {
            Body::File(f) => Some(f),
            Body::Proc(_) => None,
        }
    }

    fn refs(&self) -> BTreeSet<Name> {
        self.file()
            .map(|f| {
                f.content
                    .iter()
                    .filter_map(|p| match p {
                        Part::Ref(n, _) => Some(*n),
                        Part::Lit(_) | Part::Raw(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The graph edges this resource adds: references and `depends_on`.
    fn edges(&self) -> BTreeSet<Name> {
        let mut edges = self.refs();
        edges.extend(self.depends_on.iter().copied());
        edges
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
struct Spec {
    res: BTreeMap<Name, Res>,
    /// A failing stack-level gate.
    failing_gate: bool,
    /// Stack outputs: each names a file resource's attribute. One whose resource is not a file
    /// of the spec (any more) is left out of the YAML ([`Spec::outputs`]).
    outputs: BTreeMap<&'static str, (Name, Attr)>,
}

/// The names stack outputs take.
const OUTPUT_NAMES: [&str; 3] = ["o1", "o2", "o3"];

impl Spec {
    fn files(&self) -> Vec<Name> {
        self.res
            .iter()
            .filter(|(_, r)| r.file().is_some())
            .map(|(n, _)| *n)
            .collect()
    }

    fn procs(&self) -> Vec<Name> {
        self.res
            .iter()
            .filter(|(_, r)| r.file().is_none())
            .map(|(n, _)| *n)
            .collect()
    }

    fn names(&self) -> Vec<Name> {
        self.res.keys().copied().collect()
    }

    /// The outputs the YAML declares: those whose resource is a file of the spec.
    fn outputs(&self) -> impl Iterator<Item = (&'static str, Name, Attr)> + '_ {
        self.outputs
            .iter()
            .filter(|(_, (n, _))| self.res.get(n).is_some_and(|r| r.file().is_some()))
            .map(|(o, (n, a))| (*o, *n, *a))
    }

    /// Whether `from` reaches `to` along graph edges (so an edge `to → from` closes a cycle).
    fn reaches(&self, from: Name, to: Name) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n)
                && let Some(r) = self.res.get(n)
            {
                todo.extend(r.edges());
            }
        }
        false
    }

    /// Slots no file of the spec uses, `except` aside.
    fn free_slots(&self, except: Option<Name>) -> Vec<usize> {
        let used: BTreeSet<usize> = self
            .res
            .iter()
            .filter(|(n, _)| Some(**n) != except)
            .filter_map(|(_, r)| r.file().and_then(|f| f.path.slot()))
            .collect();
        (0..PATHS.len()).filter(|s| !used.contains(s)).collect()
    }

    /// Removes `name`, and every reference to it (a reference becomes a literal).
    fn remove(&mut self, name: Name) {
        self.res.remove(name);
        for r in self.res.values_mut() {
            r.depends_on.remove(name);
            if let Some(f) = r.file_mut() {
                for part in &mut f.content {
                    if matches!(part, Part::Ref(n, _) if *n == name) {
                        *part = Part::Lit(1);
                    }
                }
            }
        }
    }

    fn clear_gates(&mut self) {
        self.failing_gate = false;
        for r in self.res.values_mut() {
            r.failing_gate = false;
        }
    }

    fn has_gates(&self) -> bool {
        self.failing_gate || self.res.values().any(|r| r.failing_gate)
    }
}

// ---------------------------------------------------------------------------------------------
// What the spec means: its problems, and the objects it asks for

/// Which promise a check guards; every mismatch names one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Invariant {
    SelfReference,
    PathHandoff,
    SharedPath,
    SavedPlan,
    DependencyRecorded,
    UserFile,
    ReservedPath,
    TempFiles,
    Protect,
    Idempotent,
    Destroy,
    /// A failed apply leaves the world exactly as it was, and exits 3.
    Rollback,
    /// A resource renamed with a `moved:` entry keeps its object: no file is rewritten, no
    /// process restarted, and the plan shows the rename alone.
    Moved,
    /// Not one of the numbered promises, but what any plan/apply engine must do: a cycle is an
    /// error, a valid spec applies, the state says what is there, processes run as recorded.
    Basic,
    /// The stack outputs are what the last successful apply worked out.
    Outputs,
}

impl std::fmt::Display for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Invariant::SelfReference => "invariant 1 (a self-reference is a located error)",
            Invariant::PathHandoff => {
                "invariant 2 (every resource's file is on disk with its content; nothing else fabrik made is)"
            }
            Invariant::SharedPath => "invariant 3 (two resources on one path are refused)",
            Invariant::SavedPlan => {
                "invariant 4 (a saved plan applies what it showed, or is stale)"
            }
            Invariant::DependencyRecorded => "invariant 5 (dependencies are recorded)",
            Invariant::UserFile => {
                "invariant 6 (a file fabrik did not create is never overwritten; a rollback restores it)"
            }
            Invariant::ReservedPath => "invariant 7 (the spec, .fabrik/ and .env are refused)",
            Invariant::TempFiles => "invariant 8 (no temporary files remain)",
            Invariant::Protect => "invariant 9 (protected resources are never deleted or replaced)",
            Invariant::Idempotent => "invariant 10 (a second apply changes nothing)",
            Invariant::Destroy => "invariant 11 (destroy removes what fabrik made, nothing else)",
            Invariant::Rollback => {
                "rollback (a failed apply exits 3 and leaves the world as it was)"
            }
            Invariant::Moved => "moved (a renamed resource keeps its object untouched)",
            Invariant::Basic => "basic correctness",
            Invariant::Outputs => {
                "outputs (`fabrik output` shows what the last successful apply worked out)"
            }
        };
        f.write_str(text)
    }
}

/// What a spec's problems are, each with the promise that refuses it.
fn problems(spec: &Spec) -> Vec<(Invariant, String)> {
    let mut found = Vec::new();
    for (n, r) in &spec.res {
        for t in r.edges() {
            if t == *n {
                found.push((Invariant::SelfReference, format!("`{n}` refers to itself")));
            } else if !spec.res.contains_key(t) {
                found.push((Invariant::Basic, format!("`{n}` refers to unknown `{t}`")));
            }
        }
        for t in r.refs() {
            if spec.res.get(t).is_some_and(|r| r.file().is_none()) {
                found.push((
                    Invariant::Basic,
                    format!("`{n}` reads a file attribute of process `{t}`"),
                ));
            }
        }
    }
    let mut by_key: BTreeMap<String, Vec<Name>> = BTreeMap::new();
    for (n, r) in &spec.res {
        if let Some(f) = r.file() {
            by_key.entry(f.path.key()).or_default().push(n);
            if matches!(f.path, FilePath::Reserved(_)) {
                found.push((
                    Invariant::ReservedPath,
                    format!("`{n}` writes the reserved path {}", f.path.text()),
                ));
            }
        }
    }
    for (key, names) in by_key {
        if names.len() > 1 {
            found.push((
                Invariant::SharedPath,
                format!("{} share the path {key}", names.join(" and ")),
            ));
        }
    }
    if found.is_empty() && topological(spec).is_none() {
        found.push((Invariant::Basic, "the graph has a cycle".to_string()));
    }
    found
}

/// The names in dependency order, or `None` when the graph has a cycle.
fn topological(spec: &Spec) -> Option<Vec<Name>> {
    let mut order = Vec::new();
    let mut done: BTreeSet<Name> = BTreeSet::new();
    while order.len() < spec.res.len() {
        let ready: Vec<Name> = spec
            .res
            .iter()
            .filter(|(n, r)| {
                !done.contains(*n)
                    && r.edges()
                        .iter()
                        .all(|t| done.contains(t) || !spec.res.contains_key(t))
            })
            .map(|(n, _)| *n)
            .collect();
        if ready.is_empty() {
            return None;
        }
        for n in ready {
            done.insert(n);
            order.push(n);
        }
    }
    Some(order)
}

/// An object as the model knows it once applied.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Obj {
    File {
        path: FilePath,
        content: String,
        mode: Option<&'static str>,
    },
    Proc(Proc),
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct Applied {
    obj: Obj,
    deps: BTreeSet<Name>,
    protect: bool,
}

type Applieds = BTreeMap<Name, Applied>;

/// What a valid spec asks for: each resource's resolved inputs.
fn resolve(spec: &Spec) -> Applieds {
    let order = topological(spec).expect("a valid spec has no cycle");
    let mut out: Applieds = BTreeMap::new();
    for n in order {
        let r = &spec.res[n];
        let obj = match &r.body {
            Body::File(f) => {
                let mut content = String::new();
                for part in &f.content {
                    match part {
                        Part::Lit(i) => content.push_str(LITS[*i].1),
                        Part::Raw(text) => content.push_str(text),
                        Part::Ref(t, attr) => {
                            let Some(Applied {
                                obj:
                                    Obj::File {
                                        path, content: c, ..
                                    },
                                ..
                            }) = out.get(*t)
                            else {
                                panic!("the model resolves `{t}` before `{n}`")
                            };
                            match attr {
                                Attr::Size => content.push_str(&c.len().to_string()),
                                Attr::Hash => content.push_str(&format!(
                                    "blake3:{}",
                                    blake3::hash(c.as_bytes()).to_hex()
                                )),
                                // A path is given in its normal form (`./p0.txt` is `p0.txt`).
                                Attr::Path => content.push_str(&path.key()),
                            }
                        }
                    }
                }
                Obj::File {
                    path: f.path,
                    content,
                    mode: f.mode,
                }
            }
            Body::Proc(p) => Obj::Proc(*p),
        };
        out.insert(
            n,
            Applied {
                obj,
                deps: r.edges(),
                protect: r.protect,
            },
        );
    }
    out
}

/// The stack outputs the state must hold once `spec` was applied and the state records
/// `applied`: each worked out from the resource as recorded; one whose resource is not a file
/// of the state (a targeted apply left it out) keeps what was recorded before, if anything.
fn expected_outputs(
    spec: &Spec,
    applied: &Applieds,
    before: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, serde_json::Value> {
    let mut outputs = BTreeMap::new();
    for (output, name, attr) in spec.outputs() {
        let value = match applied.get(name).map(|a| &a.obj) {
            Some(Obj::File { path, content, .. }) => match attr {
                Attr::Size => serde_json::json!(content.len()),
                Attr::Path => serde_json::json!(path.key()),
                Attr::Hash => serde_json::json!(format!(
                    "blake3:{}",
                    blake3::hash(content.as_bytes()).to_hex()
                )),
            },
            _ => match before.get(output) {
                Some(value) => value.clone(),
                None => continue,
            },
        };
        outputs.insert(output.to_string(), value);
    }
    outputs
}

/// Whether going from `old` to `new` makes fabrik create a new object (a replacement).
fn replaced(old: &Obj, new: &Obj) -> bool {
    match (old, new) {
        (Obj::File { path: a, .. }, Obj::File { path: b, .. }) => a.key() != b.key(),
        (Obj::Proc(_), Obj::Proc(_)) => false,
        _ => true,
    }
}

/// Whether the object must change (a create, update or replacement), leaving aside a path
/// written another way for the same file (`p0.txt` → `./p0.txt`), which fabrik may or may not
/// count as a change.
fn definitely_changed(old: Option<&Applied>, new: &Applied) -> bool {
    let Some(old) = old else { return true };
    match (&old.obj, &new.obj) {
        (
            Obj::File {
                path: pa,
                content: ca,
                mode: ma,
            },
            Obj::File {
                path: pb,
                content: cb,
                mode: mb,
            },
        ) => pa.key() != pb.key() || ca != cb || ma != mb,
        (a, b) => a != b,
    }
}

/// Only the spelling of the path differs.
fn alias_only(old: &Applied, new: &Applied) -> bool {
    match (&old.obj, &new.obj) {
        (Obj::File { path: pa, .. }, Obj::File { path: pb, .. }) => {
            pa.text() != pb.text()
                && !definitely_changed(Some(old), new)
                && old.deps == new.deps
                && old.protect == new.protect
        }
        _ => false,
    }
}

/// The same object, comparing a file's path by the file it names.
fn same_recorded(a: &Applied, b: &Applied) -> bool {
    a.deps == b.deps
        && a.protect == b.protect
        && match (&a.obj, &b.obj) {
            (Obj::File { path: pa, .. }, Obj::File { path: pb, .. }) => {
                pa.key() == pb.key() && !definitely_changed(Some(a), b)
            }
            (x, y) => x == y,
        }
}

/// The file keys two or more resources claim.
fn shared_keys(applieds: &Applieds) -> Vec<String> {
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for a in applieds.values() {
        if let Obj::File { path, .. } = &a.obj {
            *by_key.entry(path.key()).or_default() += 1;
        }
    }
    by_key
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect()
}

/// The resources that may take over a file already there.
fn adopters(spec: &Spec) -> BTreeSet<Name> {
    spec.res
        .iter()
        .filter(|(_, r)| r.adopt)
        .map(|(n, _)| *n)
        .collect()
}

/// `names` and everything they depend on, in `spec`.
fn closure(spec: &Spec, names: &[Name]) -> BTreeSet<Name> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Name> = names.to_vec();
    while let Some(n) = todo.pop() {
        if seen.insert(n)
            && let Some(r) = spec.res.get(n)
        {
            todo.extend(r.edges());
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// The spec as YAML

fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn template(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(i) => LITS[*i].0.to_string(),
            Part::Raw(text) => text.replace("${", "$${"),
            Part::Ref(n, attr) => format!("${{{n}.{}}}", attr.name()),
        })
        .collect()
}

fn failing_gate_yaml(indent: &str, port: u16) -> String {
    format!(
        "{indent}- http: \"http://127.0.0.1:{port}/\"\n{indent}  timeout: 300ms\n{indent}  interval: 100ms\n"
    )
}

fn render(spec: &Spec, closed: u16) -> String {
    let mut y = format!("stack: {STACK}\n");
    if spec.res.is_empty() {
        y.push_str("resources: {}\n");
    } else {
        y.push_str("resources:\n");
    }
    for (n, r) in &spec.res {
        let _ = writeln!(y, "  {n}:");
        let mut gates = Vec::new();
        match &r.body {
            Body::File(f) => {
                y.push_str("    type: local.file\n    with:\n");
                let _ = writeln!(y, "      path: {}", quoted(&f.path.text()));
                let _ = writeln!(y, "      content: {}", quoted(&template(&f.content)));
                if let Some(mode) = f.mode {
                    let _ = writeln!(y, "      mode: \"{mode}\"");
                }
            }
            Body::Proc(Proc::Sleep(seconds)) => {
                y.push_str("    type: local.process\n    with:\n      command: sleep\n");
                let _ = writeln!(y, "      args: [\"{seconds}\"]\n      stop_timeout: 1");
            }
            Body::Proc(Proc::Http(port)) => {
                y.push_str("    type: local.process\n    with:\n");
                let _ = writeln!(y, "      command: {}", quoted(python()));
                let _ = writeln!(
                    y,
                    "      args: [\"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n      stop_timeout: 2"
                );
                gates.push(format!(
                    "      - http: \"http://127.0.0.1:{port}/\"\n        status: 200\n        timeout: 20s\n        interval: 100ms\n"
                ));
            }
        }
        if !r.depends_on.is_empty() {
            let deps: Vec<&str> = r.depends_on.iter().copied().collect();
            let _ = writeln!(y, "    depends_on: [{}]", deps.join(", "));
        }
        if r.protect {
            y.push_str("    protect: true\n");
        }
        if r.adopt {
            y.push_str("    adopt: true\n");
        }
        if r.failing_gate {
            gates.push(failing_gate_yaml("      ", closed));
        }
        if !gates.is_empty() {
            y.push_str("    verify:\n");
            for gate in gates {
                y.push_str(&gate);
            }
        }
    }
    if spec.failing_gate {
        y.push_str("verify:\n");
        y.push_str(&failing_gate_yaml("  ", closed));
    }
    let mut outputs = spec.outputs().peekable();
    if outputs.peek().is_some() {
        y.push_str("outputs:\n");
        for (output, name, attr) in outputs {
            let _ = writeln!(
                y,
                "  {output}: {{ value: \"${{{name}.{}}}\" }}",
                attr.name()
            );
        }
    }
    y
}

// ---------------------------------------------------------------------------------------------
// The world as the model knows it, and as it is

#[derive(Clone, PartialEq, Eq, Debug)]
struct UserFile {
    content: Vec<u8>,
    mode: u32,
}

#[derive(Default)]
struct World {
    /// What the state must record (and so what must be on disk and running).
    applied: Applieds,
    /// Files a user put there, by slot; fabrik must leave them as they are.
    user: BTreeMap<usize, UserFile>,
    /// The pid of each process resource, as last seen.
    pids: BTreeMap<Name, i32>,
    /// The stack outputs the state must hold.
    outputs: BTreeMap<String, serde_json::Value>,
}

/// Every file and directory under the case's directory, with bytes and mode.
type Snapshot = BTreeMap<String, (Vec<u8>, u32)>;

fn walk(root: &Path, rel: &str, skip: &dyn Fn(&str) -> bool, out: &mut Snapshot) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if skip(&path) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.insert(format!("{path}/"), (Vec::new(), mode));
            walk(root, &path, skip, out);
        } else {
            out.insert(
                path,
                (std::fs::read(entry.path()).unwrap_or_default(), mode),
            );
        }
    }
}

/// Parses one resource of the state into what the model compares.
fn recorded_resource(name: &str, v: &serde_json::Value) -> Result<(Applied, Option<i32>), String> {
    let inputs = &v["inputs"];
    let bad = || format!("the state's record of `{name}` is not one the model can read: {v}");
    let (obj, pid) = match v["type"].as_str() {
        Some("local.file") => {
            let path = inputs["path"]
                .as_str()
                .and_then(FilePath::parse)
                .ok_or_else(bad)?;
            let content = inputs["content"].as_str().ok_or_else(bad)?.to_string();
            let mode = match inputs.get("mode").and_then(|m| m.as_str()) {
                None => None,
                Some(m) => Some(*MODES.iter().find(|x| **x == m).ok_or_else(bad)?),
            };
            (
                Obj::File {
                    path,
                    content,
                    mode,
                },
                None,
            )
        }
        Some("local.process") => {
            let args: Vec<&str> = inputs["args"]
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .filter_map(|a| a.as_str())
                .collect();
            let proc = match inputs["command"].as_str() {
                Some("sleep") => {
                    Proc::Sleep(args.first().and_then(|a| a.parse().ok()).ok_or_else(bad)?)
                }
                Some(_) => Proc::Http(args.get(2).and_then(|a| a.parse().ok()).ok_or_else(bad)?),
                None => return Err(bad()),
            };
            let pid = v["outputs"]["pid"].as_i64().map(|p| p as i32);
            (Obj::Proc(proc), pid)
        }
        _ => return Err(bad()),
    };
    let deps = v["dependencies"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|d| {
            d.as_str()
                .and_then(|d| NAMES.iter().copied().find(|n| *n == d))
                .ok_or_else(bad)
        })
        .collect::<Result<BTreeSet<Name>, String>>()?;
    let protect = v["protect"].as_bool().unwrap_or(false);
    Ok((Applied { obj, deps, protect }, pid))
}

/// How a run must end.
#[derive(Clone, Debug)]
enum Outcome {
    /// Exit 1, nothing changed.
    Refused(Invariant, String),
    /// Exit 3, the world as it was.
    RolledBack(Applieds),
    /// Exit 0, the world as the spec says; the resources named took over users' files.
    Applied(Applieds, BTreeSet<Name>),
}

/// One step's record, for the failure message and the log.
struct StepLog {
    number: usize,
    kind: &'static str,
    ops: Vec<String>,
    text: String,
}

struct Failure {
    summary: String,
    detail: String,
}

type Checked = Result<(), (Invariant, String)>;

fn mismatch<T>(invariant: Invariant, message: impl Into<String>) -> Result<T, (Invariant, String)> {
    Err((invariant, message.into()))
}

struct Runner<'c> {
    seed: u64,
    config: &'c Config,
    rng: Rng,
    case: Case,
    closed: ClosedPort,
    /// The spec the steps evolve (never one of the deliberately invalid ones).
    spec: Spec,
    world: World,
    log: Vec<StepLog>,
    /// How many saved plans were written, for their file names.
    plans: usize,
    /// Whether a refusal's message is checked (see [`Runner::only_reason`]).
    message_checked: bool,
    /// How often each kind of step and outcome came up.
    seen: BTreeMap<String, usize>,
    /// The spec last written to `fabrik.yaml`: its outputs are the ones an apply records.
    written: Spec,
    /// Draws the outputs' edits, apart from `rng`: a seed makes the same resource steps with
    /// outputs as without them (`FABRIK_MODEL_SKIP=outputs`).
    outputs_rng: Rng,
}

impl<'c> Runner<'c> {
    fn new(seed: u64, config: &'c Config) -> Runner<'c> {
        let case = Case::new();
        std::fs::create_dir_all(case.path("plans")).expect("a directory for saved plans");
        Runner {
            seed,
            config,
            rng: Rng::new(seed),
            case,
            closed: closed_port(),
            spec: Spec::default(),
            world: World::default(),
            log: Vec::new(),
            plans: 0,
            message_checked: true,
            seen: BTreeMap::new(),
            written: Spec::default(),
            outputs_rng: Rng::new(seed ^ 0x6f75_7470_7574_7300),
        }
    }

    fn allowed(&self, feature: &str) -> bool {
        !self.config.skip.contains(feature)
    }

    fn run(mut self, seen: &mut BTreeMap<String, usize>) -> Result<(), Failure> {
        let reaper = Reaper::new(&self.case);
        let mut result = Ok(());
        for number in 1..=self.config.steps {
            self.log.push(StepLog {
                number,
                kind: "",
                ops: Vec::new(),
                text: String::new(),
            });
            if let Err(e) = self.step() {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            self.log.push(StepLog {
                number: self.config.steps + 1,
                kind: "cleanup",
                ops: Vec::new(),
                text: String::new(),
            });
            result = self.cleanup();
        }
        for (what, n) in std::mem::take(&mut self.seen) {
            *seen.entry(what).or_default() += n;
        }
        let outcome = result.map_err(|(invariant, message)| self.failure(invariant, &message));
        // Whatever happened: nothing this seed started may keep running.
        let _ = self.case.run(["destroy", "--yes", "--stack", STACK]);
        drop(reaper);
        outcome
    }

    fn failure(&self, invariant: Invariant, message: &str) -> Failure {
        let step = self.log.last().map_or(0, |s| s.number);
        let mut history = String::new();
        for s in &self.log {
            let _ = writeln!(
                history,
                "===== step {} ({}): {}\n{}",
                s.number,
                s.kind,
                s.ops.join("; "),
                s.text
            );
        }
        let log_path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fabrik-model-seed-{}.log", self.seed));
        let _ = std::fs::write(&log_path, &history);
        let summary = format!(
            "seed {} step {}: {invariant}: {}",
            self.seed,
            step,
            message.lines().next().unwrap_or("")
        );
        let mut detail = format!(
            "seed {seed}, step {step}: {invariant} failed:\n{message}\n\n\
             replay: {skip}FABRIK_MODEL_SEED={seed} FABRIK_MODEL_STEPS={step} cargo test --locked -p fabrik --test it -- model\n\
             whole history: {}\n",
            log_path.display(),
            seed = self.seed,
            skip = if self.config.skip.is_empty() {
                String::new()
            } else {
                let skip: Vec<&str> = self.config.skip.iter().map(String::as_str).collect();
                format!("FABRIK_MODEL_SKIP={} ", skip.join(","))
            },
        );
        let shown = self.log.len().saturating_sub(SHOWN_HISTORY + 1);
        for s in &self.log[shown..] {
            let _ = writeln!(
                detail,
                "\n===== step {} ({}): {}\n{}",
                s.number,
                s.kind,
                s.ops.join("; "),
                s.text
            );
        }
        Failure { summary, detail }
    }

    fn note(&mut self, text: impl AsRef<str>) {
        let current = self.log.last_mut().expect("a step is running");
        current.text.push_str(text.as_ref());
        if !text.as_ref().ends_with('\n') {
            current.text.push('\n');
        }
    }

    fn op(&mut self, text: String) {
        self.log
            .last_mut()
            .expect("a step is running")
            .ops
            .push(text);
    }

    fn kind(&mut self, kind: &'static str) {
        self.log.last_mut().expect("a step is running").kind = kind;
    }

    fn saw(&mut self, what: impl Into<String>) {
        *self.seen.entry(what.into()).or_default() += 1;
    }

    fn write_spec(&mut self, spec: &Spec) {
        self.message_checked = self.only_reason(spec);
        self.written = spec.clone();
        let yaml = render(spec, self.closed.port);
        self.case.set_spec(&yaml);
        self.note(format!("--- fabrik.yaml\n{yaml}"));
    }

    fn fabrik(&mut self, args: &[&str]) -> Output {
        let out = self.case.run(args);
        self.note(format!("$ fabrik {}\n{out}", args.join(" ")));
        out
    }

    // ---- steps

    fn step(&mut self) -> Checked {
        let roll = self.rng.below(100);
        let kind = match roll {
            0..=33 => "apply",
            34..=39 => "rename",
            40..=46 => "plan",
            47..=54 => "saved",
            55..=59 => "stale",
            60..=67 => "target",
            68..=72 => "destroy",
            73..=81 => "user",
            _ => "invalid",
        };
        let kind = if kind != "apply" && !self.allowed(kind) {
            "apply"
        } else {
            kind
        };
        self.kind(kind);
        self.saw(format!("step: {kind}"));
        match kind {
            "apply" => self.step_apply(),
            "plan" => self.step_plan(),
            "saved" => self.step_saved(),
            "stale" => self.step_stale(),
            "target" => self.step_target(),
            "destroy" => self.step_destroy(),
            "user" => self.step_user(),
            "rename" => self.step_rename(),
            _ => self.step_invalid(),
        }
    }

    fn step_apply(&mut self) -> Checked {
        let mut spec = self.mutate(&self.spec.clone());
        self.maybe_failing_gate(&mut spec);
        self.write_spec(&spec);
        let expected = self.expect_apply(&spec);
        self.attempt(&["apply", "--yes"], &expected)?;
        self.keep(spec, &expected);
        Ok(())
    }

    fn step_plan(&mut self) -> Checked {
        let spec = self.mutate(&self.spec.clone());
        self.write_spec(&spec);
        let expected = self.expect_apply(&spec);
        let (codes, invariant, why) = self.plan_codes(&expected);
        let before = self.snapshot();
        let out = self.fabrik(&["plan", "--detailed-exitcode"]);
        if !codes.contains(&out.code) {
            return mismatch(
                invariant,
                format!(
                    "plan --detailed-exitcode exited {}, expected {codes:?}: {why}",
                    out.code
                ),
            );
        }
        if out.code == 1 {
            self.check_refusal_message(&out, invariant, &why)?;
        }
        self.unchanged(&before, invariant, "a plan changes nothing")?;
        let all = self.proc_names();
        self.check_world(&all)?;
        self.keep(spec, &expected);
        Ok(())
    }

    /// The exit codes `plan --detailed-exitcode` may give for a spec whose apply would end as
    /// `expected`, the promise at stake, and why.
    fn plan_codes(&self, expected: &Outcome) -> (&'static [i32], Invariant, String) {
        match expected {
            Outcome::Refused(invariant, why) => (&[1], *invariant, why.clone()),
            Outcome::RolledBack(new) | Outcome::Applied(new, _) => match self.changes(new) {
                (true, _) => (
                    &[2],
                    Invariant::Basic,
                    "the spec differs from the state".into(),
                ),
                // Only a path spelled another way: either answer is right.
                (false, true) => (
                    &[0, 2],
                    Invariant::Basic,
                    "only a path's spelling differs".into(),
                ),
                (false, false) => (
                    &[0],
                    Invariant::Idempotent,
                    "the spec matches the state".into(),
                ),
            },
        }
    }

    /// `plan --out P`, then `apply P`: the same as applying the spec, and `show P` says so.
    fn step_saved(&mut self) -> Checked {
        let mut spec = self.mutate(&self.spec.clone());
        self.maybe_failing_gate(&mut spec);
        self.write_spec(&spec);
        let expected = self.expect_apply(&spec);
        let plan = self.plan_file();
        let before = self.snapshot();
        let out = self.fabrik(&["plan", "--out", &plan]);
        if let Outcome::Refused(invariant, why) = &expected {
            if out.code != 1 {
                return mismatch(
                    *invariant,
                    format!("plan --out exited {}, expected 1: {why}", out.code),
                );
            }
            self.unchanged(&before, *invariant, "a refused plan changes nothing")?;
            if self.case.exists(&plan) {
                return mismatch(*invariant, format!("a refused plan was saved to {plan}"));
            }
            self.keep(spec, &expected);
            return Ok(());
        }
        if out.code != 0 {
            return mismatch(
                Invariant::SavedPlan,
                format!("plan --out exited {}, expected 0", out.code),
            );
        }
        self.unchanged(&before, Invariant::SavedPlan, "plan --out changes nothing")?;
        let shown = self.fabrik(&["show", &plan, "--json"]);
        if shown.code != 0 {
            return mismatch(
                Invariant::SavedPlan,
                format!("show --json of the saved plan exited {}", shown.code),
            );
        }
        self.check_shown(&shown.stdout, &spec)?;
        self.attempt(&["apply", &plan], &expected)?;
        self.keep(spec, &expected);
        Ok(())
    }

    /// `plan --out P`, then a change (to the spec, or to the state by another apply) makes
    /// `apply P` stale: refused, nothing changed.
    fn step_stale(&mut self) -> Checked {
        let mut spec = self.mutate(&self.spec.clone());
        // A reference to something this plan changes shows as "(known after apply)": an edit
        // there must make the plan stale all the same.
        self.op_add_file(&mut spec, None);
        self.write_spec(&spec);
        let expected = self.expect_apply(&spec);
        if let Outcome::Refused(..) = expected {
            let plan = self.plan_file();
            self.attempt(&["plan", "--out", &plan], &expected)?;
            self.keep(spec, &expected);
            return Ok(());
        }
        let plan = self.plan_file();
        let out = self.fabrik(&["plan", "--out", &plan]);
        if out.code != 0 {
            return mismatch(
                Invariant::SavedPlan,
                format!("plan --out exited {}, expected 0", out.code),
            );
        }
        let new = resolve(&spec);
        let by_state = self.changes(&new).0 && self.rng.chance(35);
        let current = if by_state {
            self.op("the state moves on (apply) before the saved plan is applied".into());
            self.attempt(&["apply", "--yes"], &expected)?;
            self.keep(spec.clone(), &expected);
            spec
        } else {
            let edited = self.stale_edit(&spec, &new);
            self.write_spec(&edited);
            edited
        };
        let before = self.snapshot();
        let out = self.fabrik(&["apply", &plan]);
        if out.code != 1 {
            return mismatch(
                Invariant::SavedPlan,
                format!(
                    "apply of a stale saved plan exited {}, expected 1 (refused as stale)",
                    out.code
                ),
            );
        }
        self.unchanged(
            &before,
            Invariant::SavedPlan,
            "a stale plan changes nothing",
        )?;
        let all = self.proc_names();
        self.check_world(&all)?;
        self.spec = current;
        Ok(())
    }

    /// An edit that changes what the spec asks for: preferably the literal text around a
    /// reference whose value is known only after apply.
    fn stale_edit(&mut self, spec: &Spec, new: &Applieds) -> Spec {
        let mut edited = spec.clone();
        let changing: BTreeSet<Name> = new
            .iter()
            .filter(|(n, a)| definitely_changed(self.world.applied.get(*n), a))
            .map(|(n, _)| *n)
            .collect();
        let unknown: Vec<Name> = spec
            .res
            .iter()
            .filter(|(_, r)| {
                r.file().is_some_and(|f| {
                    f.content.iter().any(|p| {
                        matches!(p, Part::Ref(t, Attr::Size | Attr::Hash) if changing.contains(t))
                    })
                })
            })
            .map(|(n, _)| *n)
            .collect();
        let files = spec.files();
        let target = if !unknown.is_empty() {
            Some((self.rng.pick(&unknown), true))
        } else if !files.is_empty() {
            Some((self.rng.pick(&files), false))
        } else {
            None
        };
        match target {
            Some((name, known_after_apply)) => {
                let f = edited
                    .res
                    .get_mut(name)
                    .and_then(Res::file_mut)
                    .expect("a file");
                // Text put in front: the content (and so the spec) changes.
                f.content.insert(0, Part::Lit(5));
                f.content.insert(0, Part::Lit(1));
                self.op(format!(
                    "edit `{name}`'s text after plan --out{}",
                    if known_after_apply {
                        " (its content is known only after apply)"
                    } else {
                        ""
                    }
                ));
            }
            None => {
                self.op_add_file(&mut edited, None);
                self.op("add a resource after plan --out".into());
            }
        }
        edited
    }

    fn step_target(&mut self) -> Checked {
        let mut spec = self.mutate(&self.spec.clone());
        spec.clear_gates();
        if spec.res.is_empty() {
            self.kind("apply");
            self.write_spec(&spec);
            let expected = self.expect_apply(&spec);
            self.attempt(&["apply", "--yes"], &expected)?;
            self.keep(spec, &expected);
            return Ok(());
        }
        // Prefer a resource that changes, so the target does something.
        let new_if_valid = problems(&spec).is_empty().then(|| resolve(&spec));
        let changing: Vec<Name> = new_if_valid
            .as_ref()
            .map(|new| {
                new.iter()
                    .filter(|(n, a)| definitely_changed(self.world.applied.get(*n), a))
                    .map(|(n, _)| *n)
                    .collect()
            })
            .unwrap_or_default();
        let target = if !changing.is_empty() && self.rng.chance(80) {
            self.rng.pick(&changing)
        } else {
            self.rng.pick(&spec.names())
        };
        self.op(format!("--target {target}"));
        self.write_spec(&spec);
        let args = ["apply", "--yes", "--target", target];
        let Some(new) = new_if_valid else {
            let (invariant, why) = problems(&spec).remove(0);
            let expected = Outcome::Refused(invariant, why);
            self.attempt(&args, &expected)?;
            return Ok(());
        };
        let scope = closure(&spec, &[target]);
        if let Some(expected) = self.refusal(&spec, &new, Some(&scope)) {
            self.attempt(&args, &expected)?;
            self.keep(spec, &expected);
            return Ok(());
        }
        // What the state becomes if exactly the target and what it needs are applied.
        let mut merged = self.world.applied.clone();
        for n in &scope {
            merged.insert(n, new[n].clone());
        }
        let collision = shared_keys(&merged);
        if !collision.is_empty() {
            self.saw("target: takes a path held outside the target");
        }
        let before = self.snapshot();
        let out = self.fabrik(&args);
        match out.code {
            1 if !collision.is_empty() => {
                // Refusing is one right answer when the target takes a path another resource
                // still holds; it must change nothing.
                self.unchanged(
                    &before,
                    Invariant::PathHandoff,
                    "a refused apply changes nothing",
                )?;
                let all = self.proc_names();
                self.check_world(&all)?;
            }
            0 => {
                let old = self.world.applied.clone();
                let derived = self.derive_targeted(&old, &new, &scope)?;
                let stable: BTreeSet<Name> = old
                    .iter()
                    .filter(|(n, a)| {
                        matches!(a.obj, Obj::Proc(_))
                            && derived.get(*n).is_some_and(|d| d.obj == a.obj)
                    })
                    .map(|(n, _)| *n)
                    .collect();
                self.world.outputs = expected_outputs(&self.written, &derived, &self.world.outputs);
                self.world.applied = derived;
                self.take_user_files(&adopters(&spec))?;
                self.check_world(&stable)?;
                let expected = self.expect_apply(&spec);
                let (codes, invariant, why) = self.plan_codes(&expected);
                let out = self.fabrik(&["plan", "--detailed-exitcode"]);
                if !codes.contains(&out.code) {
                    return mismatch(
                        invariant,
                        format!(
                            "after apply --target, plan --detailed-exitcode exited {}, expected {codes:?}: {why}",
                            out.code
                        ),
                    );
                }
            }
            code => {
                return mismatch(
                    self.focus(&new, &adopters(&spec)),
                    format!(
                        "apply --target {target} exited {code}, expected 0{}",
                        if collision.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (or 1: the target would share {} with a resource left as it is)",
                                collision.join(", ")
                            )
                        }
                    ),
                );
            }
        }
        let outcome = Outcome::Applied(Applieds::new(), BTreeSet::new());
        self.keep(spec, &outcome);
        Ok(())
    }

    /// The state after a targeted apply: each resource as it was or as the spec says, every
    /// one in `scope` as the spec says, no path claimed twice.
    fn derive_targeted(
        &mut self,
        old: &Applieds,
        new: &Applieds,
        scope: &BTreeSet<Name>,
    ) -> Result<Applieds, (Invariant, String)> {
        let (recorded, _) = self.recorded()?;
        let names: BTreeSet<Name> = old.keys().chain(new.keys()).copied().collect();
        let mut derived = Applieds::new();
        for n in names {
            let got = recorded.get(n);
            let matches = |want: Option<&Applied>| match (got, want) {
                (None, None) => true,
                (Some(g), Some(w)) => same_recorded(g, w),
                _ => false,
            };
            let as_new = matches(new.get(n));
            if scope.contains(n) && !as_new {
                return mismatch(
                    Invariant::Basic,
                    format!(
                        "apply --target succeeded, but the state records `{n}` (in the target's scope) as {got:?}, not as the spec says: {:?}",
                        new.get(n)
                    ),
                );
            }
            if !as_new && !matches(old.get(n)) {
                return mismatch(
                    Invariant::Basic,
                    format!(
                        "after apply --target the state records `{n}` as {got:?}: neither as it was ({:?}) nor as the spec says ({:?})",
                        old.get(n),
                        new.get(n)
                    ),
                );
            }
            if let Some(g) = got {
                let want = if as_new { new.get(n) } else { old.get(n) };
                derived.insert(n, want.cloned().unwrap_or_else(|| g.clone()));
            }
        }
        let shared = shared_keys(&derived);
        if !shared.is_empty() {
            return mismatch(
                Invariant::PathHandoff,
                format!(
                    "after apply --target the state records two resources on {}",
                    shared.join(", ")
                ),
            );
        }
        Ok(derived)
    }

    fn step_destroy(&mut self) -> Checked {
        let spec_gone = self.rng.chance(33);
        let spec = self.spec.clone();
        self.write_spec(&spec);
        if spec_gone {
            self.op("destroy with the spec gone".into());
            std::fs::create_dir_all(self.case.path("plans")).expect("a plans directory");
            std::fs::rename(
                self.case.path("fabrik.yaml"),
                self.case.path("plans/fabrik.yaml"),
            )
            .expect("move the spec away");
        }
        let recorded_protected: Vec<Name> = self
            .world
            .applied
            .iter()
            .filter(|(_, a)| a.protect)
            .map(|(n, _)| *n)
            .collect();
        let spec_protected = !spec_gone
            && spec
                .res
                .iter()
                .any(|(n, r)| r.protect && self.world.applied.contains_key(n));
        let before = self.snapshot();
        let out = self.fabrik(&["destroy", "--yes", "--stack", STACK]);
        let result = if !recorded_protected.is_empty() || (spec_protected && out.code == 1) {
            // A spec that asks for protection may be heeded too (exit 1), or not (exit 0).
            if out.code == 1 {
                self.unchanged(
                    &before,
                    Invariant::Protect,
                    "a refused destroy changes nothing",
                )
                .and_then(|()| {
                    let all = self.proc_names();
                    self.check_world(&all)
                })
            } else {
                mismatch(
                    Invariant::Protect,
                    format!(
                        "destroy exited {} with {} recorded as protected, expected 1",
                        out.code,
                        recorded_protected.join(", ")
                    ),
                )
            }
        } else if out.code != 0 {
            mismatch(
                Invariant::Destroy,
                format!("destroy exited {}, expected 0", out.code),
            )
        } else {
            let had_subdir =
                self.world.applied.values().any(
                    |a| matches!(&a.obj, Obj::File { path, .. } if path.key().starts_with("d/")),
                );
            self.world.applied.clear();
            self.world.outputs.clear();
            self.check_world(&BTreeSet::new()).and_then(|()| {
                if had_subdir && self.allowed("emptydir") && self.case.exists("d") {
                    mismatch(
                        Invariant::Destroy,
                        "destroy left the directory d/ that fabrik created for its files",
                    )
                } else {
                    Ok(())
                }
            })
        };
        if spec_gone {
            std::fs::rename(
                self.case.path("plans/fabrik.yaml"),
                self.case.path("fabrik.yaml"),
            )
            .expect("put the spec back");
        }
        result
    }

    /// A user puts a file where a resource may later want to write (and then, usually, a
    /// resource wants to), or removes one they put there before.
    fn step_user(&mut self) -> Checked {
        if !self.world.user.is_empty() && self.rng.chance(20) {
            let slots: Vec<usize> = self.world.user.keys().copied().collect();
            let slot = self.rng.pick(&slots);
            self.op(format!("the user removes their {}", PATHS[slot]));
            self.case.remove(PATHS[slot]);
            self.world.user.remove(&slot);
            let all = self.proc_names();
            return self.check_world(&all);
        }
        let taken: BTreeSet<String> = self
            .world
            .applied
            .values()
            .filter_map(|a| match &a.obj {
                Obj::File { path, .. } => Some(path.key()),
                Obj::Proc(_) => None,
            })
            .collect();
        let free: Vec<usize> = USER_SLOTS
            .iter()
            .copied()
            .filter(|s| {
                !taken.contains(PATHS[*s])
                    && !self.world.user.contains_key(s)
                    && !self.case.exists(PATHS[*s])
            })
            .collect();
        if free.is_empty() {
            self.kind("apply");
            return self.step_apply();
        }
        let slot = self.rng.pick(&free);
        let file = UserFile {
            content: format!("the user's own {} (seed {})\n", PATHS[slot], self.seed).into_bytes(),
            mode: self.rng.pick(&USER_MODES),
        };
        self.op(format!(
            "the user writes {} (mode {:o})",
            PATHS[slot], file.mode
        ));
        self.case.write(PATHS[slot], &file.content);
        std::fs::set_permissions(
            self.case.path(PATHS[slot]),
            std::fs::Permissions::from_mode(file.mode),
        )
        .expect("chmod the user's file");
        self.world.user.insert(slot, file);
        if !self.rng.chance(70) {
            let all = self.proc_names();
            return self.check_world(&all);
        }
        // A resource now wants that path: a new one, or one that moves there.
        let mut spec = self.spec.clone();
        let dotted = self.dotted();
        let movable: Vec<Name> = spec.files();
        if !movable.is_empty() && self.rng.chance(40) {
            let name = self.rng.pick(&movable);
            let f = spec
                .res
                .get_mut(name)
                .and_then(Res::file_mut)
                .expect("a file");
            f.path = FilePath::of_slot(slot, dotted);
            let adopt = self.allowed("adopt") && self.rng.chance(50);
            spec.res.get_mut(name).expect("present").adopt |= adopt;
            self.op(format!(
                "`{name}` moves onto the user's {}{}",
                PATHS[slot],
                if adopt { " (adopt)" } else { "" }
            ));
        } else {
            self.op_add_file(&mut spec, Some(FilePath::of_slot(slot, dotted)));
        }
        if spec
            .res
            .values()
            .any(|r| r.adopt && r.file().is_some_and(|f| f.path.slot() == Some(slot)))
            && self.allowed("gate")
            && self.rng.chance(40)
        {
            // Taking the file over, then failing: the rollback must give the user their file
            // back byte for byte, mode included.
            spec.failing_gate = true;
            self.op("a stack gate fails".into());
        }
        self.write_spec(&spec);
        let expected = self.expect_apply(&spec);
        self.attempt(&["apply", "--yes"], &expected)?;
        self.keep(spec, &expected);
        Ok(())
    }

    fn step_invalid(&mut self) -> Checked {
        let base = self.spec.clone();
        let mut spec = base.clone();
        let kinds: Vec<&str> = ["selfref", "duplicate", "reserved", "cycle"]
            .into_iter()
            .filter(|k| self.allowed(k))
            .collect();
        if kinds.is_empty() {
            self.kind("apply");
            return self.step_apply();
        }
        match self.rng.pick(&kinds) {
            "selfref" => self.op_self_reference(&mut spec),
            "duplicate" => self.op_duplicate(&mut spec),
            "reserved" => self.op_reserved(&mut spec),
            _ => self.op_cycle(&mut spec),
        }
        self.write_spec(&spec);
        let expected = match problems(&spec).into_iter().next() {
            Some((invariant, why)) => Outcome::Refused(invariant, why),
            // The generator could not make it invalid (nothing to work with): apply it.
            None => self.expect_apply(&spec),
        };
        let plan = self.plan_file();
        let args: Vec<&str> = match self.rng.below(10) {
            0..=5 => vec!["apply", "--yes"],
            6 | 7 => vec!["plan"],
            8 => vec!["plan", "--out", &plan],
            _ if self.allowed("validate") => vec!["validate"],
            _ => vec!["apply", "--yes"],
        };
        if !problems(&spec).is_empty() {
            self.attempt(&args, &expected)?;
            if self.case.exists(&plan) {
                return mismatch(
                    Invariant::Basic,
                    format!("a refused plan was saved to {plan}"),
                );
            }
            // The invalid spec is not kept: the next step starts from the last valid one.
            return Ok(());
        }
        self.attempt(&["apply", "--yes"], &expected)?;
        self.keep(spec, &expected);
        Ok(())
    }

    /// Renames one applied resource (references, `depends_on` and stack outputs follow) with a `moved:`
    /// entry, from a stack that matches its spec: the apply must only rename, leaving every
    /// file (bytes, mode, inode) and process (pid) as it was, and the entry left in the spec
    /// must then be a no-op.
    fn step_rename(&mut self) -> Checked {
        // The spec the steps evolve, else one written from what the state records (the last
        // step may have kept a refused spec): a move must be the plan's only change.
        let mut spec = self.spec.clone();
        self.write_spec(&spec);
        if self.fabrik(&["plan", "--detailed-exitcode"]).code != 0 {
            spec = self.spec_of_world();
            self.write_spec(&spec);
            if self.fabrik(&["plan", "--detailed-exitcode"]).code != 0 {
                self.kind("apply");
                return self.step_apply();
            }
        }
        let applied = spec.names();
        let free: Vec<Name> = NAMES
            .iter()
            .copied()
            .filter(|n| !spec.res.contains_key(n) && !self.world.applied.contains_key(n))
            .collect();
        if applied.is_empty() || free.is_empty() {
            self.kind("apply");
            return self.step_apply();
        }
        // Processes are few: one is picked half the time there is one.
        let procs = spec.procs();
        let from = if !procs.is_empty() && self.rng.chance(50) {
            self.rng.pick(&procs)
        } else {
            self.rng.pick(&applied)
        };
        let to = self.rng.pick(&free);
        self.op(format!("rename `{from}` to `{to}`"));
        let renamed = renamed(&spec, from, to);
        let yaml = format!(
            "{}moved:\n  - {{ from: {from}, to: {to} }}\n",
            render(&renamed, self.closed.port)
        );
        self.case.set_spec(&yaml);
        self.note(format!("--- fabrik.yaml\n{yaml}"));
        let objects = |runner: &Self| -> BTreeMap<String, (Vec<u8>, u32, u64)> {
            let mut snapshot = Snapshot::new();
            let skip = |p: &str| p == "plans" || p == ".fabrik" || p == "fabrik.yaml";
            walk(runner.case.root(), "", &skip, &mut snapshot);
            snapshot
                .into_iter()
                .map(|(path, (bytes, mode))| {
                    let inode = std::fs::symlink_metadata(runner.case.path(&path))
                        .map_or(0, |m| std::os::unix::fs::MetadataExt::ino(&m));
                    (path, (bytes, mode, inode))
                })
                .collect()
        };
        let before = objects(self);
        let out = self.fabrik(&["apply", "--yes"]);
        self.saw(match spec.res[from].body {
            Body::File(_) => "renamed: a file",
            Body::Proc(_) => "renamed: a process",
        });
        if out.code != 0 || !out.stdout.contains(&format!("~> {from} → {to}")) {
            return mismatch(
                Invariant::Moved,
                format!(
                    "renaming `{from}` to `{to}` exited {}, expected 0 with the rename shown",
                    out.code
                ),
            );
        }
        let shown = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("  ") && !l.trim().is_empty());
        if let Some(other) = shown.clone().find(|l| !l.starts_with("  ~>")) {
            return mismatch(
                Invariant::Moved,
                format!("renaming `{from}` to `{to}` did more than rename: {other:?}"),
            );
        }
        if objects(self) != before {
            return mismatch(
                Invariant::Moved,
                format!("renaming `{from}` to `{to}` rewrote, replaced or removed a file"),
            );
        }
        let rename = |n: Name| if n == from { to } else { n };
        self.world.applied = std::mem::take(&mut self.world.applied)
            .into_iter()
            .map(|(n, mut a)| {
                a.deps = a.deps.into_iter().map(rename).collect();
                (rename(n), a)
            })
            .collect();
        self.world.pids = std::mem::take(&mut self.world.pids)
            .into_iter()
            .map(|(n, pid)| (rename(n), pid))
            .collect();
        let all = self.proc_names();
        self.check_world(&all)
            .map_err(|(_, message)| (Invariant::Moved, format!("after the rename: {message}")))?;
        let again = self.fabrik(&["plan", "--detailed-exitcode"]);
        if again.code != 0 {
            return mismatch(
                Invariant::Moved,
                format!(
                    "with the `moved:` entry left in the spec, plan --detailed-exitcode exited {}",
                    again.code
                ),
            );
        }
        self.spec = renamed;
        Ok(())
    }

    /// A spec asking for exactly what the state records: contents written out, dependencies as
    /// `depends_on`.
    fn spec_of_world(&self) -> Spec {
        let mut spec = Spec::default();
        for (n, a) in &self.world.applied {
            let body = match &a.obj {
                Obj::File {
                    path,
                    content,
                    mode,
                } => Body::File(File {
                    path: *path,
                    content: vec![Part::Raw(content.clone())],
                    mode: *mode,
                }),
                Obj::Proc(p) => Body::Proc(*p),
            };
            let res = Res {
                body,
                depends_on: a.deps.clone(),
                protect: a.protect,
                adopt: false,
                failing_gate: false,
            };
            spec.res.insert(n, res);
        }
        spec
    }

    /// At the end of a seed: unprotect everything, apply, destroy; nothing may remain.
    fn cleanup(&mut self) -> Checked {
        let mut spec = Spec::default();
        for (n, a) in &self.world.applied {
            let body = match &a.obj {
                Obj::File {
                    path,
                    content,
                    mode,
                } => Body::File(File {
                    path: *path,
                    content: vec![Part::Raw(content.clone())],
                    mode: *mode,
                }),
                Obj::Proc(p) => Body::Proc(*p),
            };
            spec.res.insert(
                n,
                Res {
                    body,
                    depends_on: BTreeSet::new(),
                    protect: false,
                    adopt: false,
                    failing_gate: false,
                },
            );
        }
        self.write_spec(&spec);
        let expected = self.expect_apply(&spec);
        self.attempt(&["apply", "--yes"], &expected)?;
        self.keep(spec.clone(), &expected);
        let before_destroy = self.world.applied.clone();
        let out = self.fabrik(&["destroy", "--yes"]);
        if out.code != 0 {
            return mismatch(
                Invariant::Destroy,
                format!("the final destroy exited {}, expected 0", out.code),
            );
        }
        let had_subdir = before_destroy
            .values()
            .any(|a| matches!(&a.obj, Obj::File { path, .. } if path.key().starts_with("d/")));
        self.world.applied.clear();
        self.world.outputs.clear();
        self.check_world(&BTreeSet::new())?;
        if had_subdir && self.allowed("emptydir") && self.case.exists("d") {
            return mismatch(
                Invariant::Destroy,
                "destroy left the directory d/ that fabrik created for its files",
            );
        }
        Ok(())
    }

    // ---- expectations

    /// How a full apply of `spec` must end.
    fn expect_apply(&self, spec: &Spec) -> Outcome {
        if let Some((invariant, why)) = problems(spec).into_iter().next() {
            return Outcome::Refused(invariant, why);
        }
        let new = resolve(spec);
        if let Some(refused) = self.refusal(spec, &new, None) {
            return refused;
        }
        if spec.has_gates()
            && new
                .iter()
                .any(|(n, a)| definitely_changed(self.world.applied.get(n), a))
        {
            return Outcome::RolledBack(new);
        }
        Outcome::Applied(new, adopters(spec))
    }

    /// Why a plan of `spec` must stop before changing anything (within `scope` for a
    /// targeted one): a protected resource deleted or replaced, a user's file in the way.
    fn refusal(
        &self,
        spec: &Spec,
        new: &Applieds,
        scope: Option<&BTreeSet<Name>>,
    ) -> Option<Outcome> {
        let in_scope = |n: &Name| scope.is_none_or(|s| s.contains(n));
        for (n, a) in &self.world.applied {
            if !a.protect || !in_scope(n) {
                continue;
            }
            match new.get(n) {
                None if scope.is_none() => {
                    return Some(Outcome::Refused(
                        Invariant::Protect,
                        format!("`{n}` is recorded as protected and the spec drops it"),
                    ));
                }
                Some(w) if replaced(&a.obj, &w.obj) => {
                    return Some(Outcome::Refused(
                        Invariant::Protect,
                        format!("`{n}` is recorded as protected and the spec replaces it"),
                    ));
                }
                _ => {}
            }
        }
        for (n, w) in new {
            if !in_scope(n) {
                continue;
            }
            let Obj::File { path, .. } = &w.obj else {
                continue;
            };
            let creates_here = match self.world.applied.get(n).map(|a| &a.obj) {
                Some(Obj::File { path: old, .. }) => old.key() != path.key(),
                _ => true,
            };
            let user = path
                .slot()
                .is_some_and(|s| self.world.user.contains_key(&s));
            if creates_here && user && !spec.res[n].adopt {
                return Some(Outcome::Refused(
                    Invariant::UserFile,
                    format!(
                        "`{n}` would write {}, a file fabrik did not create (no `adopt: true`)",
                        path.key()
                    ),
                ));
            }
        }
        None
    }

    /// Whether `new` differs from the state: (definitely, maybe — a path spelled otherwise).
    fn changes(&self, new: &Applieds) -> (bool, bool) {
        let old = &self.world.applied;
        // An output that changes is a change too (of the spec last written).
        let mut definite = old.keys().any(|n| !new.contains_key(n))
            || expected_outputs(&self.written, new, &BTreeMap::new()) != self.world.outputs;
        let mut maybe = false;
        for (n, w) in new {
            match old.get(n) {
                None => definite = true,
                Some(a) if a == w => {}
                Some(a) if alias_only(a, w) => maybe = true,
                Some(_) => definite = true,
            }
        }
        (definite, maybe)
    }

    /// Runs `args` expecting `expected`, then checks the world.
    fn attempt(&mut self, args: &[&str], expected: &Outcome) -> Checked {
        let before = self.snapshot();
        let out = self.fabrik(args);
        match expected {
            Outcome::Refused(invariant, _) => self.saw(format!("refused: {invariant:?}")),
            Outcome::RolledBack(_) => self.saw("rolled back"),
            Outcome::Applied(new, adopts) => {
                let focus = self.focus(new, adopts);
                self.saw(format!("applied: {focus:?}"));
            }
        }
        match expected {
            Outcome::Refused(invariant, why) => {
                if out.code != 1 {
                    return mismatch(
                        *invariant,
                        format!(
                            "`fabrik {}` exited {}, expected 1: {why}",
                            args.join(" "),
                            out.code
                        ),
                    );
                }
                self.check_refusal_message(&out, *invariant, why)?;
                self.unchanged(&before, *invariant, "a refused run changes nothing")?;
                let all = self.proc_names();
                self.check_world(&all)
            }
            Outcome::RolledBack(new) => {
                if out.code != 3 {
                    return mismatch(
                        Invariant::Rollback,
                        format!(
                            "`fabrik {}` exited {}, expected 3: a gate fails and everything is rolled back",
                            args.join(" "),
                            out.code
                        ),
                    );
                }
                let stable = self.untouched_procs(new);
                self.check_world(&stable).map_err(|(invariant, message)| {
                    let invariant = match invariant {
                        Invariant::PathHandoff | Invariant::Basic => Invariant::Rollback,
                        other => other,
                    };
                    (invariant, format!("after the rollback: {message}"))
                })
            }
            Outcome::Applied(new, adopts) => {
                if out.code != 0 {
                    return mismatch(
                        self.focus(new, adopts),
                        format!(
                            "`fabrik {}` exited {}, expected 0: the spec is valid, nothing protected goes, nothing is in the way",
                            args.join(" "),
                            out.code
                        ),
                    );
                }
                let stable = self.untouched_procs(new);
                self.world.applied = new.clone();
                self.world.outputs = expected_outputs(&self.written, new, &self.world.outputs);
                self.take_user_files(adopts)?;
                self.check_world(&stable)?;
                let again = self.fabrik(&["plan", "--detailed-exitcode"]);
                if again.code != 0 {
                    return mismatch(
                        Invariant::Idempotent,
                        format!(
                            "right after a successful apply, plan --detailed-exitcode exited {}",
                            again.code
                        ),
                    );
                }
                Ok(())
            }
        }
    }

    /// Whether a refusal of `spec` can only be for its one problem: no protected resource goes
    /// or moves, and no user's file is in the way (fabrik may report either first).
    fn only_reason(&self, spec: &Spec) -> bool {
        let protected_moves = self.world.applied.iter().any(|(n, a)| {
            a.protect
                && match (&a.obj, spec.res.get(n).map(|r| &r.body)) {
                    (Obj::File { path, .. }, Some(Body::File(f))) => path.text() != f.path.text(),
                    (Obj::Proc(_), Some(Body::Proc(_))) => false,
                    _ => true,
                }
        });
        let user_in_way = spec.res.values().any(|r| {
            r.file()
                .and_then(|f| f.path.slot())
                .is_some_and(|s| self.world.user.contains_key(&s))
        });
        problems(spec).len() == 1 && !protected_moves && !user_in_way
    }

    /// A spec error is located (file:line:column); a shared path names both resources.
    fn check_refusal_message(&self, out: &Output, invariant: Invariant, why: &str) -> Checked {
        if !self.message_checked {
            return Ok(());
        }
        let located = |text: &str| {
            text.match_indices("fabrik.yaml:").any(|(i, m)| {
                text[i + m.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
        };
        match invariant {
            Invariant::SelfReference | Invariant::SharedPath | Invariant::ReservedPath
                if !located(&out.stderr) && !located(&out.stdout) =>
            {
                mismatch(
                    invariant,
                    format!("the error does not point at fabrik.yaml:LINE:COLUMN ({why})"),
                )
            }
            Invariant::SharedPath => {
                let named: Vec<Name> = NAMES
                    .iter()
                    .copied()
                    .filter(|n| why.contains(&format!("{n} ")) || why.contains(&format!(" {n}")))
                    .collect();
                let missing: Vec<Name> = named
                    .into_iter()
                    .filter(|n| !contains_word(&out.stderr, n))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    mismatch(
                        invariant,
                        format!("the error does not name {} ({why})", missing.join(", ")),
                    )
                }
            }
            _ => Ok(()),
        }
    }

    /// The promise an apply of `new` exercises most: taking over a user's file, or taking a
    /// path another resource holds now.
    fn focus(&self, new: &Applieds, adopts: &BTreeSet<Name>) -> Invariant {
        let mut focus = Invariant::Basic;
        for (n, w) in new {
            let Obj::File { path, .. } = &w.obj else {
                continue;
            };
            if adopts.contains(n)
                && path
                    .slot()
                    .is_some_and(|s| self.world.user.contains_key(&s))
            {
                return Invariant::UserFile;
            }
            // A path spelled another way (`x.txt` → `./x.txt`) is the same file handed on.
            let respelled = self.world.applied.get(n).is_some_and(|a| {
                matches!(&a.obj, Obj::File { path: p, .. } if p.key() == path.key() && p.text() != path.text())
            });
            if respelled {
                focus = Invariant::PathHandoff;
            }
            let held_by_other = self.world.applied.iter().any(|(m, a)| {
                m != n && matches!(&a.obj, Obj::File { path: p, .. } if p.key() == path.key())
            });
            if held_by_other {
                focus = Invariant::PathHandoff;
            }
        }
        focus
    }

    /// Processes the plan leaves alone: they must keep their pid.
    fn untouched_procs(&self, new: &Applieds) -> BTreeSet<Name> {
        self.world
            .applied
            .iter()
            .filter(|(n, a)| {
                matches!(a.obj, Obj::Proc(_)) && new.get(*n).is_some_and(|w| w.obj == a.obj)
            })
            .map(|(n, _)| *n)
            .collect()
    }

    fn proc_names(&self) -> BTreeSet<Name> {
        self.world
            .applied
            .iter()
            .filter(|(_, a)| matches!(a.obj, Obj::Proc(_)))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Files now applied over a user's file were taken over with `adopt: true`; they are the
    /// stack's from now on.
    fn take_user_files(&mut self, adopts: &BTreeSet<Name>) -> Checked {
        for (n, a) in &self.world.applied {
            let Obj::File { path, .. } = &a.obj else {
                continue;
            };
            let Some(slot) = path.slot().filter(|s| self.world.user.contains_key(s)) else {
                continue;
            };
            if !adopts.contains(n) {
                return mismatch(
                    Invariant::UserFile,
                    format!(
                        "`{n}` was applied over the user's {} without `adopt: true`",
                        PATHS[slot]
                    ),
                );
            }
            self.world.user.remove(&slot);
        }
        Ok(())
    }

    /// Whatever the spec now says is the spec the next steps evolve; gates are one-shot, and
    /// a plan refused for a protected resource goes back to the last spec half the time (so
    /// sequences do not stay stuck).
    fn keep(&mut self, mut spec: Spec, outcome: &Outcome) {
        spec.clear_gates();
        if let Outcome::Refused(invariant, _) = outcome
            && (*invariant == Invariant::Protect || self.rng.chance(60))
        {
            return;
        }
        // After a targeted apply the world has moved on: a spec now refused for protection
        // would stay refused.
        if let Outcome::Refused(Invariant::Protect, _) = self.expect_apply(&spec) {
            return;
        }
        self.spec = spec;
    }

    fn plan_file(&mut self) -> String {
        self.plans += 1;
        format!("plans/{}.plan", self.plans)
    }

    // ---- checks of the world

    /// Every file of the case (the spec included), with the state's files but not its lock
    /// (which records who ran last) or process logs, and not saved plans.
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new();
        let skip = |p: &str| {
            p == "plans"
                || p == ".fabrik/logs"
                || (p.starts_with(".fabrik/") && p.ends_with(".lock"))
        };
        walk(self.case.root(), "", &skip, &mut snapshot);
        // A first run may create the state directory, empty but for its lock.
        snapshot.remove(".fabrik/");
        snapshot
    }

    fn unchanged(&self, before: &Snapshot, invariant: Invariant, what: &str) -> Checked {
        let after = self.snapshot();
        if &after == before {
            return Ok(());
        }
        let mut diff = Vec::new();
        for (path, value) in &after {
            match before.get(path) {
                None => diff.push(format!("{path} appeared")),
                Some(old) if old.0 != value.0 => diff.push(format!("{path} changed content")),
                Some(old) if old.1 != value.1 => {
                    diff.push(format!("{path} changed mode {:o} → {:o}", old.1, value.1));
                }
                _ => {}
            }
        }
        for path in before.keys() {
            if !after.contains_key(path) {
                diff.push(format!("{path} disappeared"));
            }
        }
        mismatch(invariant, format!("{what}, but: {}", diff.join(", ")))
    }

    /// The names the markers of renamed processes carry (`marked_as` in the state).
    fn carried_markers(&self) -> BTreeSet<String> {
        let Ok(bytes) = std::fs::read(self.case.state_file(STACK)) else {
            return BTreeSet::new();
        };
        let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        state["resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["type"] == "local.process")
            .filter_map(|(_, r)| r["marked_as"].as_str().map(str::to_string))
            .collect()
    }

    /// The state's resources, and the pid recorded for each process.
    fn recorded(&self) -> Result<(Applieds, BTreeMap<Name, i32>), (Invariant, String)> {
        let path = self.case.state_file(STACK);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(Default::default());
        };
        let state: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| (Invariant::Basic, format!("the state is not JSON: {e}")))?;
        let mut applieds = Applieds::new();
        let mut pids = BTreeMap::new();
        for (name, v) in state["resources"].as_object().into_iter().flatten() {
            let Some(n) = NAMES.iter().copied().find(|n| n == name) else {
                return mismatch(
                    Invariant::Basic,
                    format!("the state records `{name}`, which no spec ever had"),
                );
            };
            let (applied, pid) = recorded_resource(name, v).map_err(|e| (Invariant::Basic, e))?;
            applieds.insert(n, applied);
            if let Some(pid) = pid {
                pids.insert(n, pid);
            }
        }
        Ok((applieds, pids))
    }

    /// The state, the files on disk and the running processes are what the model says.
    /// Processes in `stable` must still be the very processes seen before.
    fn check_world(&mut self, stable: &BTreeSet<Name>) -> Checked {
        let (recorded, pids) = self.recorded()?;
        self.check_state(&recorded)?;
        self.check_disk()?;
        self.check_processes(&pids, stable)?;
        self.check_outputs()
    }

    /// `fabrik output --json` gives the stack outputs the model expects (read from the state
    /// alone: the spec may be invalid or moved away).
    fn check_outputs(&mut self) -> Checked {
        let state = std::fs::read(self.case.state_file(STACK))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
        let recorded = state.as_ref().and_then(|s| s.get("outputs"));
        if self.world.outputs.is_empty() {
            return match recorded {
                None => Ok(()),
                Some(outputs) => mismatch(
                    Invariant::Outputs,
                    format!("the state records outputs {outputs}, expected none"),
                ),
            };
        }
        let out = self.fabrik(&[
            "output",
            "--json",
            "--stack",
            STACK,
            "--state-dir",
            ".fabrik",
        ]);
        let shown: Option<BTreeMap<String, serde_json::Value>> =
            serde_json::from_str(&out.stdout).ok();
        if out.code != 0 || shown.as_ref() != Some(&self.world.outputs) {
            return mismatch(
                Invariant::Outputs,
                format!(
                    "`fabrik output --json` exited {} with {}, expected {:?}",
                    out.code, out.stdout, self.world.outputs
                ),
            );
        }
        Ok(())
    }

    fn check_state(&self, recorded: &Applieds) -> Checked {
        let want = &self.world.applied;
        let mut problems = Vec::new();
        let mut invariant = Invariant::Basic;
        for (n, a) in want {
            match recorded.get(n) {
                None => problems.push(format!("`{n}` is not recorded")),
                Some(got) if same_recorded(got, a) => {}
                Some(got) => {
                    if got.deps != a.deps && got.obj == a.obj {
                        invariant = Invariant::DependencyRecorded;
                    }
                    if got.protect != a.protect {
                        invariant = Invariant::Protect;
                    }
                    problems.push(format!("`{n}` is recorded as {got:?}, expected {a:?}"));
                }
            }
        }
        for n in recorded.keys() {
            if !want.contains_key(n) {
                problems.push(format!("`{n}` is recorded but should not be"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            mismatch(invariant, format!("the state: {}", problems.join("; ")))
        }
    }

    fn check_disk(&self) -> Checked {
        let mut want: BTreeMap<String, (Vec<u8>, Option<u32>, String)> = BTreeMap::new();
        for (n, a) in &self.world.applied {
            if let Obj::File {
                path,
                content,
                mode,
            } = &a.obj
            {
                want.insert(
                    path.key(),
                    (
                        content.clone().into_bytes(),
                        mode.map(|m| u32::from_str_radix(m, 8).expect("an octal mode")),
                        format!("resource `{n}`"),
                    ),
                );
            }
        }
        for (slot, u) in &self.world.user {
            want.insert(
                PATHS[*slot].to_string(),
                (u.content.clone(), Some(u.mode), "the user".to_string()),
            );
        }
        let mut actual = Snapshot::new();
        let skip = |p: &str| p == "plans" || p == ".fabrik" || p == "fabrik.yaml";
        walk(self.case.root(), "", &skip, &mut actual);
        let mut problems: Vec<(Invariant, String)> = Vec::new();
        for (path, (bytes, mode)) in &actual {
            if path.ends_with('/') {
                continue;
            }
            match want.get(path) {
                None if path.ends_with(".fabrik-tmp") => {
                    problems.push((Invariant::TempFiles, format!("temporary file {path} is left")));
                }
                None => problems.push((
                    Invariant::PathHandoff,
                    format!(
                        "{path} is on disk, but no recorded resource and no user file is there ({:?})",
                        String::from_utf8_lossy(bytes)
                    ),
                )),
                Some((content, want_mode, whose)) => {
                    let invariant = if whose == "the user" {
                        Invariant::UserFile
                    } else {
                        Invariant::PathHandoff
                    };
                    if content != bytes {
                        problems.push((
                            invariant,
                            format!(
                                "{path} holds {:?}, {whose} wants {:?}",
                                String::from_utf8_lossy(bytes),
                                String::from_utf8_lossy(content)
                            ),
                        ));
                    }
                    if let Some(m) = want_mode
                        && m != mode
                    {
                        problems.push((
                            invariant,
                            format!("{path} has mode {mode:o}, {whose} wants {m:o}"),
                        ));
                    }
                }
            }
        }
        for (path, (_, _, whose)) in &want {
            if !actual.contains_key(path) {
                let invariant = if whose == "the user" {
                    Invariant::UserFile
                } else {
                    Invariant::PathHandoff
                };
                problems.push((invariant, format!("{path} of {whose} is missing")));
            }
        }
        match problems.first() {
            None => Ok(()),
            Some((invariant, _)) => mismatch(
                *invariant,
                format!(
                    "the files on disk: {}",
                    problems
                        .iter()
                        .map(|(_, m)| m.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
        }
    }

    fn check_processes(&mut self, pids: &BTreeMap<Name, i32>, stable: &BTreeSet<Name>) -> Checked {
        let live = processes_of(&self.case.state_dir());
        let mut recorded: Vec<i32> = pids.values().copied().collect();
        recorded.sort_unstable();
        if live != recorded {
            return mismatch(
                Invariant::Basic,
                format!("processes running for this state: {live:?}; the state records {pids:?}"),
            );
        }
        for (n, pid) in pids {
            let Some(Applied {
                obj: Obj::Proc(proc),
                ..
            }) = self.world.applied.get(n)
            else {
                return mismatch(
                    Invariant::Basic,
                    format!("a process runs for `{n}`, which is no process"),
                );
            };
            let args = cmdline(*pid);
            let fine = match proc {
                Proc::Sleep(seconds) => args.last() == Some(&seconds.to_string()),
                Proc::Http(port) => args.iter().any(|a| a == &port.to_string()),
            };
            if !fine {
                return mismatch(
                    Invariant::Basic,
                    format!("process `{n}` (pid {pid}) runs {args:?}, the spec says {proc:?}"),
                );
            }
            if stable.contains(n)
                && let Some(before) = self.world.pids.get(n)
                && before != pid
            {
                return mismatch(
                    Invariant::Idempotent,
                    format!(
                        "process `{n}` was restarted (pid {before} → {pid}) although nothing about it changed"
                    ),
                );
            }
        }
        self.world.pids = pids.clone();
        Ok(())
    }

    fn check_shown(&self, json: &str, spec: &Spec) -> Checked {
        let plan: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            (
                Invariant::SavedPlan,
                format!("show --json is not JSON: {e}"),
            )
        })?;
        let mut shown: BTreeMap<String, String> = BTreeMap::new();
        let mut wrong = Vec::new();
        let mut calls = false;
        for change in plan["changes"].as_array().into_iter().flatten() {
            if let (Some(name), Some(action)) = (change["name"].as_str(), change["action"].as_str())
            {
                shown.insert(name.to_string(), action.to_string());
                // The gates listed are those that run after the change: its resource's, after
                // a call to its provider only.
                let calls_provider = matches!(action, "create" | "update" | "replace")
                    && change["state_only"] != true;
                calls |= calls_provider && change["reverify"] != true;
                let listed = change["gates"].as_array().map_or(0, Vec::len);
                let gates = spec.res.get(name).map_or(0, |r| {
                    usize::from(matches!(r.body, Body::Proc(Proc::Http(_))))
                        + usize::from(r.failing_gate)
                });
                let expected = if calls_provider { gates } else { 0 };
                if listed != expected {
                    wrong.push(format!(
                        "`{name}` ({action}) lists {listed} gates, expected {expected}"
                    ));
                }
            }
        }
        let listed = plan["gates"].as_array().map_or(0, Vec::len);
        let expected = usize::from(spec.failing_gate && calls);
        if listed != expected {
            wrong.push(format!(
                "the plan lists {listed} stack gates, expected {expected}"
            ));
        }
        let new = resolve(spec);
        let old = &self.world.applied;
        let unknown = self.known_after_apply(spec, &new);
        let names: BTreeSet<Name> = old.keys().chain(new.keys()).copied().collect();
        for n in names {
            let got = shown.get(n).map_or("no_op", String::as_str);
            let allowed: &[&str] = match (old.get(n), new.get(n)) {
                (None, Some(_)) if spec.res[n].adopt => &["create", "adopt"],
                (None, Some(_)) => &["create"],
                (Some(_), None) => &["delete"],
                // A value known only after apply may turn out the same: shown as an update.
                (Some(a), Some(w)) if a == w && unknown.contains(n) => &["no_op", "update"],
                (Some(a), Some(w)) if a == w => &["no_op"],
                (Some(a), Some(w)) if alias_only(a, w) => &["no_op", "update", "replace"],
                (Some(a), Some(w)) if a.obj == w.obj => &["no_op", "update"],
                (Some(a), Some(w)) if replaced(&a.obj, &w.obj) => &["replace"],
                (Some(_), Some(_)) => &["update", "replace"],
                (None, None) => &["no_op"],
            };
            if !allowed.contains(&got) {
                wrong.push(format!(
                    "`{n}` is shown as {got}, expected {}",
                    allowed.join(" or ")
                ));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            mismatch(
                Invariant::SavedPlan,
                format!("the saved plan: {}", wrong.join("; ")),
            )
        }
    }

    /// Files whose content reads an output (size, hash) of something this plan changes, and
    /// so shows as "(known after apply)".
    fn known_after_apply(&self, spec: &Spec, new: &Applieds) -> BTreeSet<Name> {
        let mut unknown: BTreeSet<Name> = BTreeSet::new();
        for n in topological(spec).unwrap_or_default() {
            let reads_unknown = spec.res[n].file().is_some_and(|f| {
                f.content.iter().any(|p| match p {
                    Part::Ref(t, Attr::Size | Attr::Hash) => {
                        unknown.contains(t)
                            || new.get(t).is_some_and(|w| {
                                self.world.applied.get(t).is_none_or(|a| a.obj != w.obj)
                            })
                    }
                    _ => false,
                })
            });
            if reads_unknown {
                unknown.insert(n);
            }
        }
        unknown
    }

    // ---- the generator

    fn mutate(&mut self, base: &Spec) -> Spec {
        let mut spec = base.clone();
        spec.clear_gates();
        for _ in 0..=self.rng.below(3) {
            self.random_op(&mut spec);
        }
        if self.allowed("outputs") && self.outputs_rng.chance(30) {
            self.op_output(&mut spec);
        }
        spec
    }

    /// Declares, changes or removes a stack output.
    fn op_output(&mut self, spec: &mut Spec) {
        let rng = &mut self.outputs_rng;
        let output = rng.pick(&OUTPUT_NAMES);
        let files = spec.files();
        if files.is_empty() || rng.chance(25) {
            spec.outputs.remove(output);
            self.op(format!("remove output {output}"));
            return;
        }
        let name = rng.pick(&files);
        let attr = rng.pick(&[Attr::Size, Attr::Path, Attr::Hash]);
        spec.outputs.insert(output, (name, attr));
        self.op(format!("output {output} = {name}.{}", attr.name()));
    }

    fn random_op(&mut self, spec: &mut Spec) {
        match self.rng.below(100) {
            0..=17 => self.op_add_file(spec, None),
            18..=23 => self.op_add_process(spec),
            24..=31 => self.op_remove(spec),
            32..=43 => self.op_edit_content(spec),
            44..=47 => self.op_edit_mode(spec),
            48..=55 => self.op_move(spec),
            56..=62 => self.op_swap(spec),
            63..=71 => self.op_handoff(spec),
            72..=79 => self.op_move_and_take(spec),
            80..=85 => self.op_toggle_protect(spec),
            86..=92 => self.op_toggle_dep(spec),
            93..=95 => self.op_alias(spec),
            _ => self.op_edit_process(spec),
        }
    }

    /// A name the spec does not use and that the state does not hold as another kind; for a
    /// process, not one a renamed process's marker still carries (fabrik refuses to make a
    /// second object with that marker).
    fn free_name(&mut self, spec: &Spec, file: bool) -> Option<Name> {
        let carried = if file {
            BTreeSet::new()
        } else {
            self.carried_markers()
        };
        let free: Vec<Name> = NAMES
            .iter()
            .copied()
            .filter(|n| !spec.res.contains_key(n) && !carried.contains(*n))
            .filter(|n| {
                self.world
                    .applied
                    .get(n)
                    .is_none_or(|a| matches!(a.obj, Obj::File { .. }) == file)
            })
            .collect();
        (!free.is_empty()).then(|| self.rng.pick(&free))
    }

    /// A slot for a file of `spec` (other than `except`'s own), preferring one that another
    /// resource holds now (a handoff) or where a user's file is.
    fn pick_slot(&mut self, spec: &Spec, except: Option<Name>) -> Option<usize> {
        let own = except
            .and_then(|n| spec.res.get(n))
            .and_then(|r| r.file())
            .and_then(|f| f.path.slot());
        let free: Vec<usize> = spec
            .free_slots(except)
            .into_iter()
            .filter(|s| Some(*s) != own)
            .collect();
        if free.is_empty() {
            return None;
        }
        let held: Vec<usize> = free
            .iter()
            .copied()
            .filter(|s| {
                self.world.applied.iter().any(|(n, a)| {
                    Some(*n) != except
                        && matches!(&a.obj, Obj::File { path, .. } if path.slot() == Some(*s))
                }) || self.world.user.contains_key(s)
            })
            .collect();
        Some(if !held.is_empty() && self.rng.chance(50) {
            self.rng.pick(&held)
        } else {
            self.rng.pick(&free)
        })
    }

    fn random_content(&mut self, spec: &Spec, me: Name) -> Vec<Part> {
        let mut parts = vec![Part::Lit(self.rng.below(LITS.len()))];
        for _ in 0..self.rng.below(3) {
            let targets: Vec<Name> = spec
                .files()
                .into_iter()
                .filter(|t| *t != me && !spec.reaches(t, me))
                .collect();
            if !targets.is_empty() && self.rng.chance(45) {
                let attr = if self.allowed("unknown") {
                    self.rng
                        .pick(&[Attr::Size, Attr::Size, Attr::Hash, Attr::Path])
                } else {
                    Attr::Path
                };
                parts.push(Part::Ref(self.rng.pick(&targets), attr));
            } else {
                parts.push(Part::Lit(self.rng.below(LITS.len())));
            }
        }
        parts
    }

    fn random_deps(&mut self, spec: &Spec, me: Name) -> BTreeSet<Name> {
        let mut deps = BTreeSet::new();
        for other in spec.names() {
            if other != me && !spec.reaches(other, me) && self.rng.chance(15) {
                deps.insert(other);
            }
        }
        deps
    }

    fn op_add_file(&mut self, spec: &mut Spec, at: Option<FilePath>) {
        let Some(name) = self.free_name(spec, true) else {
            return;
        };
        let path = match at {
            Some(path) => path,
            None => match self.pick_slot(spec, None) {
                Some(slot) => FilePath::of_slot(slot, self.dotted()),
                None => return,
            },
        };
        let on_user_file = path
            .slot()
            .is_some_and(|s| self.world.user.contains_key(&s));
        let adopt = self.allowed("adopt") && self.rng.chance(if on_user_file { 60 } else { 5 });
        let protect = self.allowed("protect") && self.rng.chance(8);
        let content = self.random_content(spec, name);
        let mode = match self.rng.below(3) {
            0 => None,
            i => Some(MODES[i - 1]),
        };
        let depends_on = self.random_deps(spec, name);
        self.op(format!(
            "add file `{name}` at {}{}{}",
            path.text(),
            if adopt { " (adopt)" } else { "" },
            if protect { " (protect)" } else { "" }
        ));
        spec.res.insert(
            name,
            Res {
                body: Body::File(File {
                    path,
                    content,
                    mode,
                }),
                depends_on,
                protect,
                adopt,
                failing_gate: false,
            },
        );
    }

    fn op_add_process(&mut self, spec: &mut Spec) {
        if !self.allowed("process") || spec.procs().len() >= 2 {
            return self.op_add_file(spec, None);
        }
        let Some(name) = self.free_name(spec, false) else {
            return;
        };
        let has_http = spec
            .res
            .values()
            .any(|r| matches!(r.body, Body::Proc(Proc::Http(_))));
        let proc = if self.allowed("http") && !has_http && self.rng.chance(25) {
            Proc::Http(free_port())
        } else {
            Proc::Sleep(1000 + self.rng.below(3) as u32)
        };
        let depends_on = self.random_deps(spec, name);
        let protect = self.allowed("protect") && self.rng.chance(8);
        self.op(format!("add process `{name}`: {proc:?}"));
        spec.res.insert(
            name,
            Res {
                body: Body::Proc(proc),
                depends_on,
                protect,
                adopt: false,
                failing_gate: false,
            },
        );
    }

    fn op_remove(&mut self, spec: &mut Spec) {
        let names = spec.names();
        if names.is_empty() {
            return self.op_add_file(spec, None);
        }
        let name = self.rng.pick(&names);
        if self.avoid_protected(spec, name) {
            return;
        }
        self.op(format!("remove `{name}`"));
        spec.remove(name);
    }

    fn op_edit_content(&mut self, spec: &mut Spec) {
        let files = spec.files();
        if files.is_empty() {
            return self.op_add_file(spec, None);
        }
        let name = self.rng.pick(&files);
        let content = self.random_content(spec, name);
        self.op(format!("`{name}` gets content {:?}", template(&content)));
        if let Some(f) = spec.res.get_mut(name).and_then(Res::file_mut) {
            f.content = content;
        }
    }

    fn op_edit_mode(&mut self, spec: &mut Spec) {
        let files = spec.files();
        if files.is_empty() {
            return self.op_add_file(spec, None);
        }
        let name = self.rng.pick(&files);
        if let Some(f) = spec.res.get_mut(name).and_then(Res::file_mut) {
            f.mode = match f.mode {
                None => Some(MODES[0]),
                Some(m) if m == MODES[0] => Some(MODES[1]),
                Some(_) => None,
            };
            let mode = f.mode;
            self.op(format!("`{name}` gets mode {mode:?}"));
        }
    }

    /// A protected resource is moved rarely: that plan is refused until it is unprotected.
    fn avoid_protected(&mut self, spec: &Spec, name: Name) -> bool {
        let protected = spec.res.get(name).is_some_and(|r| r.protect)
            || self.world.applied.get(name).is_some_and(|a| a.protect);
        protected && self.rng.chance(70)
    }

    fn op_move(&mut self, spec: &mut Spec) {
        let files = spec.files();
        if files.is_empty() {
            return self.op_add_file(spec, None);
        }
        let name = self.rng.pick(&files);
        if self.avoid_protected(spec, name) {
            return;
        }
        let Some(slot) = self.pick_slot(spec, Some(name)) else {
            return;
        };
        let path = FilePath::of_slot(slot, self.dotted());
        self.op(format!("`{name}` moves to {}", path.text()));
        if let Some(f) = spec.res.get_mut(name).and_then(Res::file_mut) {
            f.path = path;
        }
    }

    fn op_swap(&mut self, spec: &mut Spec) {
        let files = spec.files();
        if files.len() < 2 {
            return self.op_move(spec);
        }
        let a = self.rng.pick(&files);
        let b = self.rng.pick(&files);
        if a == b || self.avoid_protected(spec, a) || self.avoid_protected(spec, b) {
            return;
        }
        let pa = spec.res[a].file().expect("a file").path;
        let pb = spec.res[b].file().expect("a file").path;
        self.op(format!("`{a}` and `{b}` swap paths"));
        spec.res
            .get_mut(a)
            .and_then(Res::file_mut)
            .expect("a file")
            .path = pb;
        spec.res
            .get_mut(b)
            .and_then(Res::file_mut)
            .expect("a file")
            .path = pa;
    }

    /// `a` goes, and `b` (another file, or a new one) takes its path.
    fn op_handoff(&mut self, spec: &mut Spec) {
        let files = spec.files();
        if files.is_empty() {
            return self.op_add_file(spec, None);
        }
        let a = self.rng.pick(&files);
        if self.avoid_protected(spec, a) {
            return;
        }
        let path = spec.res[a].file().expect("a file").path;
        let Some(slot) = path.slot() else { return };
        let path = FilePath::of_slot(slot, self.dotted());
        self.op(format!("`{a}` goes and hands {} on", path.text()));
        spec.remove(a);
        let others = spec.files();
        if !others.is_empty() && self.rng.chance(50) {
            let b = self.rng.pick(&others);
            self.op(format!("`{b}` takes {}", path.text()));
            spec.res
                .get_mut(b)
                .and_then(Res::file_mut)
                .expect("a file")
                .path = path;
        } else {
            self.op_add_file(spec, Some(path));
        }
    }

    /// `a` moves to a free path, and a new file takes the one it left.
    fn op_move_and_take(&mut self, spec: &mut Spec) {
        let files = spec.files();
        if files.is_empty() {
            return self.op_add_file(spec, None);
        }
        let a = self.rng.pick(&files);
        if self.avoid_protected(spec, a) {
            return;
        }
        let old = spec.res[a].file().expect("a file").path;
        let Some(slot) = self.pick_slot(spec, Some(a)) else {
            return;
        };
        if old.slot().is_none() {
            return;
        }
        let path = FilePath::of_slot(slot, self.dotted());
        self.op(format!("`{a}` moves {} → {}", old.text(), path.text()));
        spec.res
            .get_mut(a)
            .and_then(Res::file_mut)
            .expect("a file")
            .path = path;
        self.op_add_file(spec, Some(old));
    }

    fn op_toggle_protect(&mut self, spec: &mut Spec) {
        let names = spec.names();
        if names.is_empty() || !self.allowed("protect") {
            return self.op_add_file(spec, None);
        }
        // Mostly lift protection, so that protected resources do not pile up.
        let protected: Vec<Name> = names
            .iter()
            .copied()
            .filter(|n| spec.res[n].protect || self.world.applied.get(n).is_some_and(|a| a.protect))
            .collect();
        let name = if !protected.is_empty() && self.rng.chance(60) {
            self.rng.pick(&protected)
        } else {
            self.rng.pick(&names)
        };
        let r = spec.res.get_mut(name).expect("present");
        r.protect = !r.protect;
        let now = r.protect;
        self.op(format!("`{name}` protect: {now}"));
    }

    fn op_toggle_dep(&mut self, spec: &mut Spec) {
        let names = spec.names();
        if names.len() < 2 {
            return self.op_add_file(spec, None);
        }
        let x = self.rng.pick(&names);
        let y = self.rng.pick(&names);
        if x == y {
            return;
        }
        if spec.res[x].depends_on.contains(y) {
            self.op(format!("`{x}` no longer depends_on `{y}`"));
            spec.res.get_mut(x).expect("present").depends_on.remove(y);
        } else if !spec.reaches(y, x) {
            self.op(format!("`{x}` depends_on `{y}`"));
            spec.res.get_mut(x).expect("present").depends_on.insert(y);
        }
    }

    /// `p0.txt` ↔ `./p0.txt`: the same file, spelled another way.
    fn op_alias(&mut self, spec: &mut Spec) {
        let files = spec.files();
        if files.is_empty() || !self.allowed("alias") {
            return self.op_edit_content(spec);
        }
        let name = self.rng.pick(&files);
        let protected =
            spec.res[name].protect || self.world.applied.get(name).is_some_and(|a| a.protect);
        if protected {
            return;
        }
        if let Some(f) = spec.res.get_mut(name).and_then(Res::file_mut) {
            f.path = match f.path {
                FilePath::Plain(i) => FilePath::Dotted(i),
                FilePath::Dotted(i) => FilePath::Plain(i),
                other @ FilePath::Reserved(_) => other,
            };
            let text = f.path.text();
            self.op(format!("`{name}` spells its path {text}"));
        }
    }

    fn op_edit_process(&mut self, spec: &mut Spec) {
        let procs = spec.procs();
        if procs.is_empty() {
            return self.op_add_process(spec);
        }
        let name = self.rng.pick(&procs);
        let r = spec.res.get_mut(name).expect("present");
        r.body = match r.body {
            Body::Proc(Proc::Sleep(s)) => Body::Proc(Proc::Sleep(1000 + (s - 999) % 3)),
            Body::Proc(Proc::Http(_)) => Body::Proc(Proc::Http(free_port())),
            ref other => other.clone(),
        };
        let body = r.body.clone();
        self.op(format!("`{name}` now runs {body:?}"));
    }

    /// Sometimes a gate fails: on the stack, or on a file this apply changes.
    fn maybe_failing_gate(&mut self, spec: &mut Spec) {
        if !self.allowed("gate") || !self.rng.chance(12) || !problems(spec).is_empty() {
            return;
        }
        let new = resolve(spec);
        let changed: Vec<Name> = new
            .iter()
            .filter(|(n, a)| definitely_changed(self.world.applied.get(*n), a))
            .map(|(n, _)| *n)
            .collect();
        if changed.is_empty() {
            return;
        }
        let files: Vec<Name> = changed
            .into_iter()
            .filter(|n| spec.res[n].file().is_some())
            .collect();
        if !files.is_empty() && self.rng.chance(50) {
            let name = self.rng.pick(&files);
            spec.res.get_mut(name).expect("present").failing_gate = true;
            self.op(format!("a gate of `{name}` fails"));
        } else {
            spec.failing_gate = true;
            self.op("a stack gate fails".into());
        }
    }

    // ---- invalid specs

    fn some_file(&mut self, spec: &mut Spec) -> Option<Name> {
        if spec.files().is_empty() {
            self.op_add_file(spec, None);
        }
        let files = spec.files();
        (!files.is_empty()).then(|| self.rng.pick(&files))
    }

    /// Whether to spell a path `./p0.txt` rather than `p0.txt`.
    fn dotted(&mut self) -> bool {
        self.allowed("alias") && self.rng.chance(20)
    }

    fn op_self_reference(&mut self, spec: &mut Spec) {
        let Some(name) = self.some_file(spec) else {
            return;
        };
        if self.rng.chance(25) {
            self.op(format!("`{name}` depends_on itself"));
            spec.res
                .get_mut(name)
                .expect("present")
                .depends_on
                .insert(name);
        } else {
            let attr = if self.allowed("unknown") {
                self.rng.pick(&[Attr::Size, Attr::Hash, Attr::Path])
            } else {
                Attr::Path
            };
            self.op(format!("`{name}` refers to its own {}", attr.name()));
            if let Some(f) = spec.res.get_mut(name).and_then(Res::file_mut) {
                f.content.push(Part::Ref(name, attr));
            }
        }
    }

    fn op_duplicate(&mut self, spec: &mut Spec) {
        let Some(a) = self.some_file(spec) else {
            return;
        };
        let Some(slot) = spec.res[a].file().expect("a file").path.slot() else {
            return;
        };
        let path = FilePath::of_slot(slot, self.rng.chance(50));
        let others: Vec<Name> = spec.files().into_iter().filter(|n| *n != a).collect();
        if !others.is_empty() && self.rng.chance(50) {
            let b = self.rng.pick(&others);
            self.op(format!("`{b}` takes `{a}`'s path as {}", path.text()));
            spec.res
                .get_mut(b)
                .and_then(Res::file_mut)
                .expect("a file")
                .path = path;
        } else {
            self.op(format!("a new file on `{a}`'s path as {}", path.text()));
            self.op_add_file(spec, Some(path));
        }
    }

    fn op_reserved(&mut self, spec: &mut Spec) {
        let path = FilePath::Reserved(self.rng.below(RESERVED.len()));
        let files = spec.files();
        if !files.is_empty() && self.rng.chance(50) {
            let name = self.rng.pick(&files);
            self.op(format!("`{name}` moves to {}", path.text()));
            spec.res
                .get_mut(name)
                .and_then(Res::file_mut)
                .expect("a file")
                .path = path;
        } else {
            self.op_add_file(spec, Some(path));
        }
    }

    fn op_cycle(&mut self, spec: &mut Spec) {
        while spec.files().len() < 2 && spec.res.len() < NAMES.len() {
            let before = spec.res.len();
            self.op_add_file(spec, None);
            if spec.res.len() == before {
                break;
            }
        }
        let files = spec.files();
        if files.len() < 2 {
            return;
        }
        let x = self.rng.pick(&files);
        let others: Vec<Name> = files.into_iter().filter(|n| *n != x).collect();
        let y = self.rng.pick(&others);
        self.op(format!("`{x}` refers to `{y}`, which depends on `{x}`"));
        let (first, second) = if self.allowed("unknown") {
            (Attr::Size, Attr::Hash)
        } else {
            (Attr::Path, Attr::Path)
        };
        if let Some(f) = spec.res.get_mut(x).and_then(Res::file_mut) {
            f.content.push(Part::Ref(y, first));
        }
        if self.rng.chance(50) {
            spec.res.get_mut(y).expect("present").depends_on.insert(x);
        } else if let Some(f) = spec.res.get_mut(y).and_then(Res::file_mut) {
            f.content.push(Part::Ref(x, second));
        }
    }
}

/// `spec` with the resource `from` called `to`, what refers to it following.
fn renamed(spec: &Spec, from: Name, to: Name) -> Spec {
    let rename = |n: Name| if n == from { to } else { n };
    let mut out = spec.clone();
    out.res = std::mem::take(&mut out.res)
        .into_iter()
        .map(|(n, mut r)| {
            r.depends_on = r.depends_on.into_iter().map(rename).collect();
            if let Some(f) = r.file_mut() {
                for part in &mut f.content {
                    if let Part::Ref(target, _) = part {
                        *target = rename(*target);
                    }
                }
            }
            (rename(n), r)
        })
        .collect();
    // Stack outputs follow too, and those the YAML leaves out (their resource is no file of
    // the spec) are dropped, lest `to` bring one back: a pure rename changes no output.
    out.outputs = spec
        .outputs()
        .map(|(output, name, attr)| (output, (rename(name), attr)))
        .collect();
    out
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

// ---------------------------------------------------------------------------------------------
// for_each: keys added, removed, reordered and revalued

/// Keys of the `for_each` model: a dotted one (a domain name) and a dashed one among them.
const KEYS: [&str; 6] = ["a", "b", "c-1", "d_2", "example.com", "f"];

/// How the model's `for_each` is written.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Written {
    /// `for_each: [a, b]`: each value is its key.
    List,
    /// `for_each: { a: v1 }`.
    Map,
    /// `for_each: "${var.keys}"`, the list given with `--var`.
    VarList,
}

/// The `for_each` resource `pages` as the model has it: its keys in the order written, the
/// value of each, and whether the resource `index` refers to one instance.
#[derive(Clone, Debug)]
struct Pages {
    written: Written,
    keys: Vec<String>,
    values: BTreeMap<String, String>,
    index_of: Option<String>,
}

impl Pages {
    fn value(&self, key: &str) -> String {
        match self.written {
            Written::Map => self.values[key].clone(),
            Written::List | Written::VarList => key.to_string(),
        }
    }

    /// The files that must be on disk: `pages/KEY.txt` for each key, and `index.txt`.
    fn files(&self) -> BTreeMap<String, String> {
        let mut files: BTreeMap<String, String> = self
            .keys
            .iter()
            .map(|k| (format!("pages/{k}.txt"), format!("v:{}", self.value(k))))
            .collect();
        if let Some(key) = &self.index_of {
            let content = files[&format!("pages/{key}.txt")].clone();
            files.insert("index.txt".into(), format!("index of {content}"));
        }
        files
    }

    fn spec(&self) -> String {
        let mut y = format!("stack: {STACK}\n");
        if self.written == Written::VarList {
            y.push_str("vars:\n  keys: { type: list }\n");
        }
        y.push_str("resources:\n  pages:\n    type: local.file\n");
        let quoted: Vec<String> = self.keys.iter().map(|k| format!("\"{k}\"")).collect();
        match self.written {
            Written::List => {
                let _ = writeln!(y, "    for_each: [{}]", quoted.join(", "));
            }
            Written::Map if self.keys.is_empty() => y.push_str("    for_each: {}\n"),
            Written::Map => {
                y.push_str("    for_each:\n");
                for k in &self.keys {
                    let _ = writeln!(y, "      \"{k}\": \"{}\"", self.values[k]);
                }
            }
            Written::VarList => y.push_str("    for_each: \"${var.keys}\"\n"),
        }
        y.push_str("    with: { path: \"pages/${each.key}.txt\", content: \"v:${each.value}\" }\n");
        if let Some(key) = &self.index_of {
            y.push_str("  index:\n    type: local.file\n    depends_on: [pages]\n");
            let _ = writeln!(
                y,
                "    with: {{ path: index.txt, content: \"index of ${{pages[{key}].content}}\" }}"
            );
        }
        y
    }

    /// The arguments that give the variable its value.
    fn var_args(&self) -> Vec<String> {
        if self.written == Written::VarList {
            let list: Vec<String> = self.keys.iter().map(|k| format!("\"{k}\"")).collect();
            vec!["--var".into(), format!("keys=[{}]", list.join(", "))]
        } else {
            Vec::new()
        }
    }

    /// One random edit: a key added or removed, the keys reordered, a value changed, the
    /// `for_each` written another way, or the reference from `index` moved.
    fn edit(&mut self, rng: &mut Rng) -> String {
        match rng.below(6) {
            0 | 1 => {
                let free: Vec<&str> = KEYS
                    .iter()
                    .copied()
                    .filter(|k| !self.keys.iter().any(|h| h == k))
                    .collect();
                if free.is_empty() {
                    return self.edit(rng);
                }
                let key = rng.pick(&free).to_string();
                let at = rng.below(self.keys.len() + 1);
                self.values
                    .insert(key.clone(), format!("{key}-{}", rng.below(3)));
                self.keys.insert(at, key.clone());
                format!("add {key}")
            }
            2 if !self.keys.is_empty() => {
                let key = self.keys.remove(rng.below(self.keys.len()));
                if self.index_of.as_ref() == Some(&key) {
                    self.index_of = None;
                }
                format!("remove {key}")
            }
            3 => {
                for i in (1..self.keys.len()).rev() {
                    self.keys.swap(i, rng.below(i + 1));
                }
                "reorder".into()
            }
            4 if !self.keys.is_empty() => {
                let key = rng.pick(&self.keys);
                self.values
                    .insert(key.clone(), format!("{key}-{}", rng.below(3)));
                format!("revalue {key}")
            }
            5 => {
                self.written = rng.pick(&[Written::List, Written::Map, Written::VarList]);
                self.index_of = if self.keys.is_empty() || rng.chance(30) {
                    None
                } else {
                    Some(rng.pick(&self.keys))
                };
                format!("{:?}, index of {:?}", self.written, self.index_of)
            }
            _ => self.edit(rng),
        }
    }
}

/// The inode and modification time of each file: a file not rewritten keeps both.
fn stamps(case: &Case) -> BTreeMap<String, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut snapshot = Snapshot::new();
    walk(
        case.root(),
        "",
        &|p| p.starts_with(".fabrik"),
        &mut snapshot,
    );
    snapshot
        .keys()
        .filter(|p| !p.ends_with('/') && p.as_str() != crate::harness::SPEC)
        .map(|p| {
            let meta = std::fs::metadata(case.path(p)).unwrap();
            (p.clone(), (meta.ino(), meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

/// Random sequences of edits to a `for_each` resource, each planned and applied: the plan
/// says "no changes" exactly when no instance's file changes (a reordering, a list written as
/// a map of the same values), the files on disk are exactly the instances', an instance
/// whose value did not change is not rewritten, and the state holds exactly the addresses.
#[test]
fn model_for_each_keys_touch_only_their_instances() {
    let config = Config::from_env();
    let steps = config.steps.div_ceil(2);
    for &seed in &config.seeds {
        let mut rng = Rng::new(seed ^ 0xF0E4);
        let case = Case::new();
        let mut pages = Pages {
            written: Written::List,
            keys: Vec::new(),
            values: BTreeMap::new(),
            index_of: None,
        };
        let mut log = Vec::new();
        for step in 0..steps {
            let before = pages.files();
            let stamps_before = stamps(&case);
            log.push(pages.edit(&mut rng));
            let replay = || format!("seed {seed}, step {step}: {}", log.join("; "));
            case.set_spec(&pages.spec());
            let vars = pages.var_args();
            let after = pages.files();
            let plan = case.run(with_vars(&["plan", "--detailed-exitcode"], &vars));
            let expected = if before == after && step > 0 { 0 } else { 2 };
            // The first step may have nothing to do (no keys), and says so.
            let expected = if step == 0 && after.is_empty() {
                0
            } else {
                expected
            };
            assert_eq!(
                plan.code,
                expected,
                "{}\n{}\n{plan}",
                replay(),
                pages.spec()
            );
            let apply = case.run(with_vars(&["apply", "--yes"], &vars));
            assert_eq!(apply.code, 0, "{}\n{}\n{apply}", replay(), pages.spec());
            let mut on_disk = Snapshot::new();
            walk(case.root(), "", &|p| p.starts_with(".fabrik"), &mut on_disk);
            let files: BTreeMap<String, String> = on_disk
                .into_iter()
                .filter(|(p, _)| !p.ends_with('/') && p.as_str() != crate::harness::SPEC)
                .map(|(p, (bytes, _))| (p, String::from_utf8(bytes).unwrap()))
                .collect();
            assert_eq!(files, after, "{}\n{}", replay(), pages.spec());
            let stamps_after = stamps(&case);
            for (path, content) in &after {
                if before.get(path) == Some(content) {
                    assert_eq!(
                        stamps_after.get(path),
                        stamps_before.get(path),
                        "{path} was rewritten, its content unchanged: {}",
                        replay()
                    );
                }
            }
            let mut tracked: Vec<String> =
                pages.keys.iter().map(|k| format!("pages[{k}]")).collect();
            if pages.index_of.is_some() {
                tracked.push("index".into());
            }
            tracked.sort();
            assert_eq!(case.tracked(STACK), tracked, "{}", replay());
        }
        let destroy = case.run(with_vars(&["destroy", "--yes"], &pages.var_args()));
        assert_eq!(destroy.code, 0, "seed {seed}: {destroy}");
        assert!(case.tracked(STACK).is_empty() && !case.exists("pages/a.txt"));
    }
}

fn with_vars(first: &[&str], vars: &[String]) -> Vec<String> {
    first
        .iter()
        .map(ToString::to_string)
        .chain(vars.iter().cloned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The Coolify databases model.

/// One database as the model writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelDb {
    engine: &'static str,
    tag: &'static str,
    backups: Option<&'static str>,
    delete_volumes: bool,
}

impl ModelDb {
    fn image(&self) -> String {
        let name = match self.engine {
            "postgresql" => "postgres",
            other => other,
        };
        format!("{name}:{}", self.tag)
    }

    fn yaml(&self, name: &str) -> String {
        let mut out = format!(
            "  {name}:\n    type: coolify.database\n    with:\n      engine: {}\n      project: shop\n      \
             server: main\n      image: \"{}\"\n      password: \"${{secret.PW}}\"\n      start_timeout: 5s\n",
            self.engine,
            self.image()
        );
        if let Some(frequency) = self.backups {
            let _ = writeln!(out, "      backups: {{ frequency: \"{frequency}\" }}");
        }
        if self.delete_volumes {
            out.push_str("      delete_volumes: true\n");
        }
        out
    }
}

const DB_NAMES: [&str; 3] = ["db0", "db1", "db2"];
const DB_ENGINES: [&str; 3] = ["postgresql", "mysql", "redis"];
const DB_TAGS: [&str; 3] = ["1", "2", "3"];
const DB_FREQUENCIES: [&str; 3] = ["daily", "hourly", "0 3 * * *"];

fn db_spec(url: &str, dbs: &BTreeMap<&'static str, ModelDb>) -> String {
    let mut out = format!(
        "stack: model-db\nproviders:\n  coolify: {{ url: \"{url}\", token: \"${{secret.COOLIFY_TOKEN}}\", poll_interval: 20ms }}\n\
         secrets:\n  COOLIFY_TOKEN: {{}}\n  PW: {{}}\nresources:\n"
    );
    if dbs.is_empty() {
        out.push_str("  {}\n");
    }
    for (name, db) in dbs {
        out.push_str(&db.yaml(name));
    }
    out.replace("resources:\n  {}\n", "resources: {}\n")
}

/// One random edit of `dbs`; whether it makes a database crash-loop. A replacement (a new
/// engine) never comes with a crash, so that a failed step can be undone whole.
fn db_edit(rng: &mut Rng, dbs: &mut BTreeMap<&'static str, ModelDb>) -> (String, bool) {
    let name = rng.pick(&DB_NAMES);
    let fresh = |rng: &mut Rng| {
        let engine = rng.pick(&DB_ENGINES);
        ModelDb {
            engine,
            tag: rng.pick(&DB_TAGS),
            backups: (engine != "redis" && rng.chance(50)).then(|| rng.pick(&DB_FREQUENCIES)),
            delete_volumes: rng.chance(50),
        }
    };
    let Some(db) = dbs.get_mut(name) else {
        let mut db = fresh(rng);
        let crash = rng.chance(15);
        if crash {
            db.tag = "crash";
        }
        let text = format!("add {name} {db:?}");
        dbs.insert(name, db);
        return (text, crash);
    };
    match rng.below(6) {
        0 => {
            dbs.remove(name);
            (format!("remove {name}"), false)
        }
        1 => {
            db.tag = rng.pick(&DB_TAGS);
            (format!("{name} image {}", db.image()), false)
        }
        2 => {
            db.tag = "crash";
            (format!("{name} image {} (crash-loops)", db.image()), true)
        }
        3 if db.engine != "redis" => {
            db.backups = match db.backups {
                Some(_) => None,
                None => Some(rng.pick(&DB_FREQUENCIES)),
            };
            (format!("{name} backups {:?}", db.backups), false)
        }
        4 => {
            db.delete_volumes = !db.delete_volumes;
            (
                format!("{name} delete_volumes {}", db.delete_volumes),
                false,
            )
        }
        _ => {
            let keep = db.delete_volumes;
            let mut new = fresh(rng);
            new.delete_volumes = keep;
            if new.engine == db.engine {
                new.engine = DB_ENGINES
                    [(DB_ENGINES.iter().position(|e| *e == db.engine).unwrap_or(0) + 1) % 3];
                if new.engine == "redis" {
                    new.backups = None;
                }
            }
            *db = new;
            (format!("{name} replaced by {db:?}"), false)
        }
    }
}

/// The databases of the model's stack in the fake: name → (engine, image, backups' frequency,
/// status, uuid).
fn db_world(
    fake: &fabrik_testkit::coolify::FakeCoolify,
) -> BTreeMap<String, (String, String, Option<String>, String, String)> {
    fake.databases()
        .iter()
        .filter_map(|d| {
            let name = d["description"]
                .as_str()?
                .strip_prefix("fabrik:model-db/")?;
            let uuid = d["uuid"].as_str()?.to_string();
            let engine = d["database_type"]
                .as_str()?
                .trim_start_matches("standalone-")
                .to_string();
            let backups = fake
                .backups(&uuid)
                .first()
                .and_then(|b| b["frequency"].as_str().map(str::to_string));
            Some((
                name.to_string(),
                (
                    engine,
                    d["image"].as_str()?.to_string(),
                    backups,
                    d["status"].as_str()?.to_string(),
                    uuid,
                ),
            ))
        })
        .collect()
}

#[test]
fn model_coolify_databases_match_their_specs() {
    let config = Config::from_env();
    let steps = config.steps.div_ceil(5);
    for &seed in &config.seeds {
        let mut rng = Rng::new(seed ^ 0xDA7A);
        let fake = fabrik_testkit::coolify::FakeCoolify::start();
        fake.set_database_start(std::time::Duration::from_millis(60));
        fake.set_delete_delay(std::time::Duration::from_millis(40));
        fake.add_server("main");
        let case = Case::new()
            .env("COOLIFY_TOKEN", fabrik_testkit::coolify::TOKEN)
            .env("PW", "model-db-password");
        let mut applied: BTreeMap<&'static str, ModelDb> = BTreeMap::new();
        // The recorded `delete_volumes` of each database the state holds, by uuid.
        let mut volumes: BTreeMap<String, bool> = BTreeMap::new();
        let mut log = Vec::new();
        for step in 0..steps {
            let mut wanted = applied.clone();
            let (edit, crash) = db_edit(&mut rng, &mut wanted);
            log.push(edit);
            let spec = db_spec(&fake.url(), &wanted);
            let replay = || format!("seed {seed}, step {step}: {}\n{spec}", log.join("; "));
            case.set_spec(&spec);
            let plan = case.run(["plan", "--detailed-exitcode"]);
            let expected = if wanted == applied { 0 } else { 2 };
            assert_eq!(plan.code, expected, "{}\n{plan}", replay());
            let deleted_before = fake.deleted_databases().len();
            let apply = case.run(["apply", "--yes"]);
            assert_eq!(
                apply.code,
                if crash { 3 } else { 0 },
                "{}\n{apply}",
                replay()
            );
            if !crash {
                applied = wanted;
            }
            let world = db_world(&fake);
            let seen: BTreeMap<&str, (&str, String, Option<&str>)> = world
                .iter()
                .map(|(n, (e, i, b, _, _))| (n.as_str(), (e.as_str(), i.clone(), b.as_deref())))
                .collect();
            let model: BTreeMap<&str, (&str, String, Option<&str>)> = applied
                .iter()
                .map(|(n, d)| (*n, (d.engine, d.image(), d.backups)))
                .collect();
            assert_eq!(seen, model, "{}\n{apply}", replay());
            for (name, (_, _, _, status, _)) in &world {
                assert_eq!(status, "running:healthy", "{name}: {}", replay());
            }
            for (uuid, took_volumes) in &fake.deleted_databases()[deleted_before..] {
                if let Some(recorded) = volumes.get(uuid) {
                    assert_eq!(took_volumes, recorded, "the delete of {uuid}: {}", replay());
                }
            }
            volumes = world
                .values()
                .map(|(_, _, _, _, uuid)| uuid.clone())
                .filter_map(|uuid| {
                    let name = world.iter().find(|(_, w)| w.4 == uuid)?.0.as_str();
                    let db = applied.iter().find(|(n, _)| **n == name)?.1;
                    Some((uuid, db.delete_volumes))
                })
                .collect();
            // After a failure the spec goes back to what is applied: nothing is left to do.
            case.set_spec(&db_spec(&fake.url(), &applied));
            let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
            assert_eq!(refreshed.code, 0, "{}\n{refreshed}", replay());
        }
        let destroy = case.run(["destroy", "--yes"]);
        assert_eq!(destroy.code, 0, "seed {seed}: {destroy}");
        assert!(
            db_world(&fake).is_empty(),
            "seed {seed}: destroy leaves nothing"
        );
        fake.assert_no_violations();
    }
}

// ---------------------------------------------------------------------------------------------
// The Coolify services model.

const SVC_NAMES: [&str; 2] = ["svc0", "svc1"];
const SVC_TAGS: [&str; 3] = ["1", "2", "3"];
const SVC_KEYS: [&str; 3] = ["A", "B", "S"];
const SVC_DOMAINS: [&str; 2] = ["one.example", "two.example"];
const SVC_SECRET: &str = "model-svc-secret";

/// A service's image tag, variables and `web` URL, as the model or the fake has them.
type SvcHeld = (String, BTreeMap<String, String>, String);

/// One Docker Compose service as the model writes it: its `web` image's tag, its variables
/// (`S` is the secret's), and the host of its `web` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelSvc {
    tag: &'static str,
    env: BTreeMap<&'static str, &'static str>,
    domain: &'static str,
}

impl ModelSvc {
    fn yaml(&self, name: &str) -> String {
        let mut out = format!(
            "  {name}:\n    type: coolify.service\n    with:\n      project: shop\n      server: main\n      \
             start_timeout: 1s\n      compose: |\n        services:\n          web:\n            \
             image: \"nginx:{}\"\n      domains: {{ web: [\"https://{}\"] }}\n",
            self.tag, self.domain
        );
        if !self.env.is_empty() {
            let vars: Vec<String> = self
                .env
                .iter()
                .map(|(k, v)| match *k {
                    "S" => "S: \"${secret.PW}\"".to_string(),
                    _ => format!("{k}: \"{v}\""),
                })
                .collect();
            let _ = writeln!(out, "      env: {{ {} }}", vars.join(", "));
        }
        out
    }

    /// What the fake should hold: the tag, the variables with the secret's value, the URL.
    fn world(&self) -> SvcHeld {
        let env = self
            .env
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    if *k == "S" { SVC_SECRET } else { v }.to_string(),
                )
            })
            .collect();
        (
            self.tag.to_string(),
            env,
            format!("https://{}", self.domain),
        )
    }
}

fn svc_spec(url: &str, svcs: &BTreeMap<&'static str, ModelSvc>) -> String {
    let mut out = format!(
        "stack: model-svc\nproviders:\n  coolify: {{ url: \"{url}\", token: \"${{secret.COOLIFY_TOKEN}}\", poll_interval: 20ms }}\n\
         secrets:\n  COOLIFY_TOKEN: {{}}\n  PW: {{}}\nresources:\n"
    );
    if svcs.is_empty() {
        return out.replace("resources:\n", "resources: {}\n");
    }
    for (name, svc) in svcs {
        out.push_str(&svc.yaml(name));
    }
    out
}

/// What one step does beside editing the spec.
enum SvcStep {
    Edit,
    /// The new image crash-loops: the create or update fails and is undone.
    Crash,
    /// The service is stopped in the dashboard; the spec is unchanged.
    Stop(&'static str),
}

fn svc_edit(rng: &mut Rng, svcs: &mut BTreeMap<&'static str, ModelSvc>) -> (String, SvcStep) {
    let name = rng.pick(&SVC_NAMES);
    let Some(svc) = svcs.get_mut(name) else {
        let mut env = BTreeMap::new();
        for key in SVC_KEYS {
            if rng.chance(50) {
                let value = rng.pick(&["1", "2"]);
                env.insert(key, if key == "S" { "1" } else { value });
            }
        }
        let crash = rng.chance(15);
        let svc = ModelSvc {
            tag: if crash { "crash" } else { rng.pick(&SVC_TAGS) },
            env,
            domain: rng.pick(&SVC_DOMAINS),
        };
        let text = format!("add {name} {svc:?}");
        svcs.insert(name, svc);
        return (text, if crash { SvcStep::Crash } else { SvcStep::Edit });
    };
    match rng.below(6) {
        0 => {
            svcs.remove(name);
            (format!("remove {name}"), SvcStep::Edit)
        }
        1 => {
            svc.tag = rng.pick(&SVC_TAGS);
            (format!("{name} tag {}", svc.tag), SvcStep::Edit)
        }
        2 => {
            svc.tag = "crash";
            // A variable changes with it: both must come back.
            svc.env.insert(
                "A",
                if svc.env.get("A") == Some(&"1") {
                    "2"
                } else {
                    "1"
                },
            );
            (
                format!("{name} crashes, A={:?}", svc.env["A"]),
                SvcStep::Crash,
            )
        }
        3 => {
            let key = rng.pick(&SVC_KEYS);
            if svc.env.remove(key).is_none() || rng.chance(30) {
                // `S` is always the secret: its value in the model is the secret's, one.
                let value = rng.pick(&["1", "2"]);
                let value = if key == "S" { "1" } else { value };
                svc.env.insert(key, value);
            }
            (format!("{name} env {:?}", svc.env), SvcStep::Edit)
        }
        4 => {
            svc.domain = if svc.domain == SVC_DOMAINS[0] {
                SVC_DOMAINS[1]
            } else {
                SVC_DOMAINS[0]
            };
            (format!("{name} domain {}", svc.domain), SvcStep::Edit)
        }
        _ => (
            format!("{name} stopped in the dashboard"),
            SvcStep::Stop(name),
        ),
    }
}

/// The services of the model's stack in the fake: name → ((tag, variables, URL), status).
fn svc_world(fake: &fabrik_testkit::coolify::FakeCoolify) -> BTreeMap<String, (SvcHeld, String)> {
    fake.services()
        .iter()
        .filter_map(|s| {
            let description = s["description"].as_str()?;
            let name = description
                .lines()
                .next()?
                .strip_prefix("fabrik:model-svc/")?;
            let compose = s["docker_compose_raw"].as_str()?;
            let tag = compose.split("nginx:").nth(1)?.split(['"', '\n']).next()?;
            let env = fake
                .service_envs(s["uuid"].as_str()?)
                .iter()
                .map(|r| {
                    (
                        r["key"].as_str().unwrap().to_string(),
                        r["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let url = s["applications"][0]["fqdn"]
                .as_str()
                .unwrap_or("")
                .to_string();
            Some((
                name.to_string(),
                (
                    (tag.to_string(), env, url),
                    s["status"].as_str()?.to_string(),
                ),
            ))
        })
        .collect()
}

/// Up to two Docker Compose services edited at random against the Coolify fake: added,
/// removed, a new image, one that crash-loops (its create is undone, its update rolled back
/// with the variables it changed), variables (one a secret) added, changed and removed, a new
/// URL, and a stop in the dashboard; after each apply the fake holds what the last successful
/// apply asked for, every service runs, and a refresh plans nothing.
#[test]
fn model_coolify_services_match_their_specs() {
    let config = Config::from_env();
    let steps = config.steps.div_ceil(8);
    for &seed in &config.seeds {
        let mut rng = Rng::new(seed ^ 0x5E7C);
        let fake = fabrik_testkit::coolify::FakeCoolify::start();
        fake.set_service_start(std::time::Duration::from_millis(60));
        fake.set_delete_delay(std::time::Duration::from_millis(40));
        fake.add_server("main");
        let case = Case::new()
            .env("COOLIFY_TOKEN", fabrik_testkit::coolify::TOKEN)
            .env("PW", SVC_SECRET);
        let mut applied: BTreeMap<&'static str, ModelSvc> = BTreeMap::new();
        let mut log = Vec::new();
        for step in 0..steps {
            let mut wanted = applied.clone();
            let (edit, kind) = svc_edit(&mut rng, &mut wanted);
            log.push(edit);
            let spec = svc_spec(&fake.url(), &wanted);
            let replay = || format!("seed {seed}, step {step}: {}\n{spec}", log.join("; "));
            case.set_spec(&spec);
            if let SvcStep::Stop(name) = kind {
                let world = fake.services();
                let uuid = world
                    .iter()
                    .find(|s| {
                        s["description"].as_str().is_some_and(|d| {
                            d.starts_with(&format!("fabrik:model-svc/{name}\n"))
                                || d == format!("fabrik:model-svc/{name}")
                        })
                    })
                    .and_then(|s| s["uuid"].as_str())
                    .expect("the service to stop")
                    .to_string();
                fake.stop_service(&uuid);
            }
            let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
            let expected = match kind {
                SvcStep::Stop(_) => 2,
                _ if wanted == applied => 0,
                _ => 2,
            };
            assert_eq!(plan.code, expected, "{}\n{plan}", replay());
            let apply = case.run(["apply", "--yes", "--refresh"]);
            let crash = matches!(kind, SvcStep::Crash);
            assert_eq!(
                apply.code,
                if crash { 3 } else { 0 },
                "{}\n{apply}",
                replay()
            );
            if !crash {
                applied = wanted;
            }
            let world = svc_world(&fake);
            let seen: BTreeMap<&str, _> = world
                .iter()
                .map(|(n, (w, _))| (n.as_str(), w.clone()))
                .collect();
            let model: BTreeMap<&str, _> = applied.iter().map(|(n, s)| (*n, s.world())).collect();
            assert_eq!(seen, model, "{}\n{apply}", replay());
            for (name, (_, status)) in &world {
                assert_eq!(status, "running:healthy", "{name}: {}", replay());
            }
            for out in [&plan, &apply] {
                assert!(!out.stdout.contains(SVC_SECRET), "{}", replay());
            }
            case.set_spec(&svc_spec(&fake.url(), &applied));
            let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
            assert_eq!(refreshed.code, 0, "{}\n{refreshed}", replay());
        }
        for (path, bytes) in case.state_files() {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SVC_SECRET),
                "seed {seed}: {} holds the secret",
                path.display()
            );
        }
        let destroy = case.run(["destroy", "--yes"]);
        assert_eq!(destroy.code, 0, "seed {seed}: {destroy}");
        assert!(
            svc_world(&fake).is_empty(),
            "seed {seed}: destroy leaves nothing"
        );
        fake.assert_no_violations();
    }
}
