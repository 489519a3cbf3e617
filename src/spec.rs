//! The spec a user writes: loaded from YAML, checked for shape, with every part keeping its
//! location so later checks (types, references, cycles) can point at it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::source::{Diagnostic, Diagnostics, Loc, SourceFile, closest};
use crate::template::{self, Part, RESERVED_NAMES};
use crate::yaml::{self, Key, Node, Value};

const TOP_LEVEL_KEYS: [&str; 6] = [
    "stack",
    "backend",
    "providers",
    "secrets",
    "resources",
    "verify",
];
const BACKEND_KINDS: [&str; 1] = ["postgres"];
const POSTGRES_KEYS: [&str; 2] = ["url", "schema"];
const RESOURCE_KEYS: [&str; 7] = [
    "type",
    "with",
    "depends_on",
    "protect",
    "on_failure",
    "verify",
    "adopt",
];

#[derive(Debug)]
pub struct Spec {
    pub source: Arc<SourceFile>,
    pub stack: String,
    pub providers: Vec<ProviderBlock>,
    /// In file order.
    pub resources: Vec<Resource>,
    /// Stack-level gates, run after every change is applied.
    pub verify: Vec<Expr>,
    /// Declared secrets, in file order.
    pub secrets: Vec<SecretDecl>,
    /// Where the stack's state is kept, when not in the local directory.
    pub backend: Option<BackendBlock>,
    index: HashMap<String, usize>,
    /// Resources written in the spec but left out of `resources` because their entry could
    /// not be read (it has no usable `type`): what refers to them is not wrong as well.
    unreadable: HashSet<String>,
}

/// `backend: { postgres: { url: "${secret.STATE_DB_URL}", schema: fabrik } }`: the stack's state
/// in a PostgreSQL database shared by a team.
#[derive(Debug)]
pub struct BackendBlock {
    /// Where `postgres:` is written.
    pub loc: Loc,
    /// The connection string; it holds a password, so it is written through `${secret.…}` or
    /// `${env.…}` references, resolved only when the backend is opened.
    pub url: Expr,
    pub schema: Option<String>,
}

/// One entry of `secrets:`.
#[derive(Debug, Clone)]
pub struct SecretDecl {
    pub name: String,
    pub loc: Loc,
    /// How to make a value when none is found; `None`: the secret is required.
    pub generate: Option<Generate>,
}

#[derive(Debug, Clone, Copy)]
pub struct Generate {
    pub length: usize,
    pub alphabet: Alphabet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    Alnum,
    Hex,
    Base64Url,
}

/// Bounds of a generated secret's length: shorter is guessable, longer is a mistake.
pub const SECRET_LENGTHS: std::ops::RangeInclusive<i64> = 8..=4096;

#[derive(Debug)]
pub struct ProviderBlock {
    pub name: String,
    pub loc: Loc,
    pub config: Vec<(Key, Expr)>,
}

#[derive(Debug)]
pub struct Resource {
    pub name: String,
    pub loc: Loc,
    pub type_name: String,
    pub type_loc: Loc,
    pub with: Vec<(Key, Expr)>,
    pub depends_on: Vec<(String, Loc)>,
    pub protect: bool,
    /// `on_failure: keep`: a failed apply leaves this resource's change in place.
    pub keep_on_failure: bool,
    /// Gates run once this resource and what it needs are applied.
    pub verify: Vec<Expr>,
    /// `adopt: true`: an object already there without a fabrik marker is taken over instead of
    /// stopping the apply.
    pub adopt: bool,
}

/// A value in a spec, with the references inside its strings parsed.
#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<Part>),
    List(Vec<Expr>),
    Map(Vec<(Key, Expr)>),
}

impl Expr {
    /// Every reference inside, with where it is written.
    pub fn references(&self, out: &mut Vec<(template::Reference, Loc)>) {
        self.each_reference(&mut |r, loc| out.push((r.clone(), loc)));
    }

    /// Calls `f` with every reference inside and where it is written, copying nothing.
    pub fn each_reference<'a>(&'a self, f: &mut impl FnMut(&'a template::Reference, Loc)) {
        match &self.kind {
            ExprKind::Str(parts) => {
                for part in parts {
                    if let Part::Ref(r) = part {
                        f(r, self.loc);
                    }
                }
            }
            ExprKind::List(items) => items.iter().for_each(|e| e.each_reference(f)),
            ExprKind::Map(entries) => entries.iter().for_each(|(_, e)| e.each_reference(f)),
            ExprKind::Null | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) => {}
        }
    }

    /// A string expression as written, references included (`"${secret.KEY}"`).
    pub fn written(&self) -> Option<String> {
        let ExprKind::Str(parts) = &self.kind else {
            return None;
        };
        Some(
            parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.replace("${", "$${"),
                    Part::Ref(r) => r.written(),
                })
                .collect(),
        )
    }

    /// How the value's kind is named in messages, or `None` while references decide it.
    pub fn literal_kind(&self) -> Option<&'static str> {
        Some(match &self.kind {
            ExprKind::Null => "null",
            ExprKind::Bool(_) => "a boolean",
            ExprKind::Int(_) => "an integer",
            ExprKind::Float(_) => "a number",
            ExprKind::Str(parts) if parts.len() == 1 && matches!(parts[0], Part::Ref(_)) => {
                return None;
            }
            ExprKind::Str(_) => "a string",
            ExprKind::List(_) => "a list",
            ExprKind::Map(_) => "a map",
        })
    }
}

impl Resource {
    /// Every reference in its inputs and its gates, with where it is written.
    pub fn references(&self) -> Vec<(template::Reference, Loc)> {
        let mut refs = Vec::new();
        for (_, expr) in &self.with {
            expr.references(&mut refs);
        }
        for gate in &self.verify {
            gate.references(&mut refs);
        }
        refs
    }
}

impl Spec {
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.index.get(name).map(|&i| &self.resources[i])
    }

    /// The position of a resource in file order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Whether the spec declares a resource of that name, even one whose entry could not be
    /// read (see [`Spec::read`]).
    pub fn declares(&self, name: &str) -> bool {
        self.index.contains_key(name) || self.unreadable.contains(name)
    }

    /// Reads and checks the shape of a spec file.
    ///
    /// # Errors
    /// [`Error::Spec`] with every problem found, each with its location.
    pub fn load(path: &Path) -> Result<Spec, Error> {
        let (spec, problems) = Spec::read(path)?;
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(Error::Spec(Diagnostics::sorted(spec.source, problems)))
        }
    }

    /// Reads a spec file as far as its problems allow, and returns it with those problems:
    /// the later checks (types, fields, references, the graph) then look at what could be
    /// read, so one run reports every problem. A spec returned with problems is for checking
    /// only; a resource missing from it is named by [`Spec::declares`].
    ///
    /// # Errors
    /// [`Error::Spec`] when nothing can be read: the file is too large, not UTF-8, not YAML,
    /// or not a map.
    pub fn read(path: &Path) -> Result<(Spec, Vec<Diagnostic>), Error> {
        let (source, root) = read_yaml(path)?;
        let mut loader = Loader::default();
        match loader.spec(root, source.clone()) {
            Some(spec) => Ok((spec, loader.problems)),
            None => Err(Error::Spec(Diagnostics {
                source,
                items: loader.problems,
            })),
        }
    }
}

/// What a spec says about where its state is kept: its `stack:` and `backend:`. The commands
/// that only read or edit a state (`state`, `output`, `unlock`) need no more, and keep working
/// while the rest of the spec is half edited (a broken reference, an unknown field).
#[derive(Debug)]
pub struct Header {
    pub source: Arc<SourceFile>,
    pub stack: String,
    pub backend: Option<BackendBlock>,
}

impl Header {
    /// Reads the spec's `stack:` and `backend:`, checked as [`Spec::load`] checks them; the
    /// other keys are not looked at, nor `stack:` when the command line names the stack.
    ///
    /// # Errors
    /// [`Error::Spec`] for a file that is not YAML, or problems in the keys read.
    pub fn load(path: &Path, stack: Option<&str>) -> Result<Header, Error> {
        let (source, root) = read_yaml(path)?;
        let mut loader = Loader::default();
        let header = loader.header(root, stack);
        match header {
            Some((stack, backend)) if loader.problems.is_empty() => Ok(Header {
                source,
                stack,
                backend,
            }),
            _ => Err(loader.failure(source)),
        }
    }
}

/// A spec file's text and YAML tree, or the error that stops every reader of it: unreadable,
/// too large, not UTF-8, not YAML.
fn read_yaml(path: &Path) -> Result<(Arc<SourceFile>, Node), Error> {
    let bytes = read_limited(path)?;
    let (text, utf8_error) = match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let before = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            let line = before.matches('\n').count() as u32 + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (text, Some(Loc::new(line, column, 1)))
        }
    };
    let source = Arc::new(SourceFile::new(path.to_path_buf(), text));
    let fail = |items: Vec<Diagnostic>| {
        Error::Spec(Diagnostics {
            source: source.clone(),
            items,
        })
    };
    if let Some(loc) = utf8_error {
        return Err(fail(vec![
            Diagnostic::new(loc, "the spec is not valid UTF-8").help("save the file as UTF-8"),
        ]));
    }
    if source.text.len() > yaml::MAX_SPEC_BYTES {
        return Err(fail(vec![too_large(source.text.len())]));
    }
    let root = yaml::parse(&source.text).map_err(|e| {
        fail(vec![Diagnostic::new(
            e.loc,
            format!("invalid YAML: {}", e.message),
        )])
    })?;
    Ok((source, root))
}

fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot read spec {}", path.display()), e))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit: enough to know the file is too large without loading it.
    file.take(yaml::MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read spec {}", path.display()), e))?;
    if bytes.len() > yaml::MAX_SPEC_BYTES {
        let size = std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(bytes.len());
        let source = Arc::new(SourceFile::new(path.to_path_buf(), String::new()));
        return Err(Error::Spec(Diagnostics {
            source,
            items: vec![too_large(size)],
        }));
    }
    Ok(bytes)
}

fn too_large(size: usize) -> Diagnostic {
    Diagnostic::new(
        Loc::default(),
        format!(
            "the spec is {:.1} MiB, more than the {} MiB fabrik reads",
            size as f64 / (1024.0 * 1024.0),
            yaml::MAX_SPEC_BYTES / (1024 * 1024)
        ),
    )
    .help("split the stack into several specs")
}

/// Whether a stack or resource name can be used in references and file names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 128
}

#[derive(Default)]
struct Loader {
    problems: Vec<Diagnostic>,
    /// Resources whose entry could not be read into a [`Resource`].
    unreadable: HashSet<String>,
}

impl Loader {
    fn problem(&mut self, d: Diagnostic) {
        self.problems.push(d);
    }

    /// Every problem found, in file order.
    fn failure(mut self, source: Arc<SourceFile>) -> Error {
        self.problems.sort_by_key(|d| (d.loc.line, d.loc.column));
        Error::Spec(Diagnostics {
            source,
            items: self.problems,
        })
    }

    /// The stack (`named`, else the spec's) and backend of a spec, the other keys unread.
    fn header(
        &mut self,
        root: Node,
        named: Option<&str>,
    ) -> Option<(String, Option<BackendBlock>)> {
        let Value::Map(entries) = root.value else {
            self.problem(
                Diagnostic::new(root.loc, "the spec must be a map")
                    .help("a spec is a map with `stack`, `providers` and `resources`"),
            );
            return None;
        };
        let entries = entries
            .into_iter()
            .filter(|(key, _)| key.name == "backend" || (key.name == "stack" && named.is_none()))
            .collect();
        let mut stack = named.map(str::to_string);
        let mut backend = None;
        for (key, node) in self.unique(entries, "top-level key") {
            if key.name == "stack" {
                stack = self.stack_name(node);
            } else {
                backend = self.backend(key.loc, node);
            }
        }
        if stack.is_none() && self.problems.is_empty() {
            self.problem(
                Diagnostic::new(Loc::new(1, 1, 1), "the spec has no `stack`")
                    .help("add `stack: NAME`, or name the stack with --stack"),
            );
        }
        Some((stack?, backend))
    }

    /// The spec as far as it can be read; `None` only when the document is not a map.
    fn spec(&mut self, root: Node, source: Arc<SourceFile>) -> Option<Spec> {
        let entries = match root.value {
            Value::Map(entries) => entries,
            Value::Null => {
                self.problem(
                    Diagnostic::new(Loc::new(1, 1, 1), "the spec is empty")
                        .help("a spec needs at least `stack: NAME` and a `resources:` map"),
                );
                return None;
            }
            other => {
                self.problem(
                    Diagnostic::new(
                        root.loc,
                        format!("the spec must be a map, not {}", other.kind()),
                    )
                    .help("a spec is a map with `stack`, `providers` and `resources`"),
                );
                return None;
            }
        };
        let entries = self.unique(entries, "top-level key");
        let mut stack = None;
        let mut stack_written = false;
        let mut providers = Vec::new();
        let mut resources = Vec::new();
        let mut verify = Vec::new();
        let mut secrets = Vec::new();
        let mut backend = None;
        for (key, node) in entries {
            match key.name.as_str() {
                "secrets" => secrets = self.secrets(node),
                "backend" => backend = self.backend(key.loc, node),
                "stack" => {
                    stack_written = true;
                    stack = self.stack_name(node);
                }
                "providers" => providers = self.providers(node),
                "resources" => resources = self.resources(node),
                "verify" => verify = self.gates(node),
                other => self.problem(
                    Diagnostic::new(key.loc, format!("unknown top-level key `{other}`"))
                        .suggest(other, TOP_LEVEL_KEYS),
                ),
            }
        }
        if !stack_written {
            self.problem(
                Diagnostic::new(Loc::new(1, 1, 1), "the spec has no `stack`")
                    .help("add `stack: NAME`; the stack names the state"),
            );
        }
        // A stack name that is missing or wrong is reported; the rest is still checked.
        let stack = stack.unwrap_or_default();
        let index = resources
            .iter()
            .enumerate()
            .map(|(i, r): (usize, &Resource)| (r.name.clone(), i))
            .collect();
        Some(Spec {
            source,
            stack,
            providers,
            resources,
            verify,
            secrets,
            backend,
            index,
            unreadable: std::mem::take(&mut self.unreadable),
        })
    }

    fn backend(&mut self, key_loc: Loc, node: Node) -> Option<BackendBlock> {
        let entries = self.map(node, "`backend`");
        let entries = self.unique(entries, "backend");
        if entries.is_empty() {
            self.problem(
                Diagnostic::new(key_loc, "`backend` names no backend")
                    .help("write `backend: { postgres: { url: \"${secret.STATE_DB_URL}\" } }`, or remove it to keep the state in `.fabrik/`"),
            );
            return None;
        }
        let mut found = None;
        for (kind, node) in entries {
            if kind.name != "postgres" {
                self.problem(
                    Diagnostic::new(kind.loc, format!("unknown backend `{}`", kind.name))
                        .suggest(&kind.name, BACKEND_KINDS)
                        .help_if_none("the backends are `postgres` (and, without a `backend:` block, the local directory)"),
                );
                continue;
            }
            let fields = self.map(node, "the configuration of backend `postgres`");
            let fields = self.unique(fields, "field");
            let mut url = None;
            let mut url_written = false;
            let mut schema = None;
            for (field, value) in fields {
                match field.name.as_str() {
                    "url" => {
                        url_written = true;
                        url = self.backend_url(value);
                    }
                    "schema" => match value.value {
                        Value::Str(name) if crate::backend_url::valid_schema(&name) => {
                            schema = Some(name)
                        }
                        Value::Str(name) => self.problem(
                            Diagnostic::new(value.loc, format!("invalid schema name `{name}`"))
                                .help("a schema is a lower-case identifier: letters, digits and `_`, at most 63"),
                        ),
                        other => self.problem(Diagnostic::new(
                            value.loc,
                            format!("`schema` must be a string, not {}", other.kind()),
                        )),
                    },
                    other => self.problem(
                        Diagnostic::new(
                            field.loc,
                            format!("unknown key `{other}` in backend `postgres`"),
                        )
                        .suggest(other, POSTGRES_KEYS),
                    ),
                }
            }
            match url {
                Some(url) => {
                    found = Some(BackendBlock {
                        loc: kind.loc,
                        url,
                        schema,
                    })
                }
                None if !url_written => {
                    self.problem(
                        Diagnostic::new(kind.loc, "backend `postgres` has no `url`")
                            .help("add `url: \"${secret.STATE_DB_URL}\"` and put the connection string in that secret"),
                    )
                }
                None => {}
            }
        }
        found
    }

    /// The connection string: a string whose references are secrets or environment variables
    /// only (the state is opened before any resource exists).
    fn backend_url(&mut self, node: Node) -> Option<Expr> {
        let expr = self.expr(node);
        let ExprKind::Str(parts) = &expr.kind else {
            self.problem(Diagnostic::new(
                expr.loc,
                format!(
                    "`url` must be a string, not {}",
                    expr.literal_kind().unwrap_or("that")
                ),
            ));
            return None;
        };
        let mut ok = true;
        for part in parts {
            match part {
                Part::Ref(template::Reference::Secret(_) | template::Reference::Env(_))
                | Part::Text(_) => {}
                Part::Ref(other) => {
                    self.problem(
                        Diagnostic::new(expr.loc, format!("`url` cannot use {}", other.written()))
                            .help(
                                "the state's URL may use `${secret.NAME}` and `${env.NAME}` only",
                            ),
                    );
                    ok = false;
                }
            }
        }
        let literal = parts.iter().all(|p| matches!(p, Part::Text(_)));
        if ok && literal {
            let text: String = parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.as_str(),
                    Part::Ref(_) => "",
                })
                .collect();
            if !crate::backend_url::is_url(&text) {
                self.problem(
                    Diagnostic::new(expr.loc, "`url` must start with postgres:// or postgresql://")
                        .help("for example `url: \"${secret.STATE_DB_URL}\"` with STATE_DB_URL=postgres://fabrik:…@db.example/fabrik?sslmode=verify-full"),
                );
                ok = false;
            } else if crate::backend_url::has_password(&text) {
                self.problem(
                    Diagnostic::new(expr.loc, "`url` holds a password in the spec")
                        .help("put the connection string in a secret and write `url: \"${secret.STATE_DB_URL}\"`"),
                );
                ok = false;
            }
        }
        ok.then_some(expr)
    }

    /// Drops repeated keys, reporting each with where it was first written.
    fn unique(&mut self, entries: Vec<(Key, Node)>, what: &str) -> Vec<(Key, Node)> {
        // Borrowed names, so the common case (no duplicate) copies nothing.
        let mut first: HashMap<&str, u32> = HashMap::with_capacity(entries.len());
        let mut repeated = Vec::new();
        for (i, (key, _)) in entries.iter().enumerate() {
            match first.entry(key.name.as_str()) {
                std::collections::hash_map::Entry::Occupied(line) => {
                    repeated.push((i, *line.get()))
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(key.loc.line);
                }
            }
        }
        drop(first);
        if repeated.is_empty() {
            return entries;
        }
        let mut out = Vec::with_capacity(entries.len());
        let mut repeated = repeated.into_iter().peekable();
        for (i, (key, node)) in entries.into_iter().enumerate() {
            if let Some(&(_, line)) = repeated.peek().filter(|(at, _)| *at == i) {
                repeated.next();
                self.problem(
                    Diagnostic::new(key.loc, format!("duplicate {what} `{}`", key.name))
                        .help(format!("`{}` is first defined on line {line}", key.name)),
                );
                continue;
            }
            out.push((key, node));
        }
        out
    }

    fn stack_name(&mut self, node: Node) -> Option<String> {
        match node.value {
            Value::Str(s) if valid_name(&s) => Some(s),
            Value::Str(s) => {
                self.problem(
                    Diagnostic::new(node.loc, format!("invalid stack name `{s}`"))
                        .help("a stack name starts with a letter or digit and holds letters, digits, `_` and `-`"),
                );
                None
            }
            other => {
                self.problem(Diagnostic::new(
                    node.loc,
                    format!("the stack name must be a string, not {}", other.kind()),
                ));
                None
            }
        }
    }

    fn map(&mut self, node: Node, what: &str) -> Vec<(Key, Node)> {
        match node.value {
            Value::Map(entries) => entries,
            Value::Null => Vec::new(),
            other => {
                self.problem(Diagnostic::new(
                    node.loc,
                    format!("{what} must be a map, not {}", other.kind()),
                ));
                Vec::new()
            }
        }
    }

    fn providers(&mut self, node: Node) -> Vec<ProviderBlock> {
        let entries = self.map(node, "`providers`");
        let entries = self.unique(entries, "provider");
        entries
            .into_iter()
            .map(|(key, node)| {
                let config = self.map(
                    node,
                    &format!("the configuration of provider `{}`", key.name),
                );
                let config = self.exprs(config, "field");
                ProviderBlock {
                    name: key.name,
                    loc: key.loc,
                    config,
                }
            })
            .collect()
    }

    fn resources(&mut self, node: Node) -> Vec<Resource> {
        let entries = self.map(node, "`resources`");
        let entries = self.unique(entries, "resource name");
        // Each resource is read on its own: a large map is read on every core, each run with
        // a loader of its own whose problems join this one's.
        let runs = crate::parallel::map_owned_runs(entries, 512, |run| {
            let mut loader = Loader::default();
            let resources: Vec<Resource> = run
                .into_iter()
                .filter_map(|(key, node)| loader.resource(key, node))
                .collect();
            (resources, loader)
        });
        let mut resources = Vec::new();
        for (run, loader) in runs {
            resources.extend(run);
            self.problems.extend(loader.problems);
            self.unreadable.extend(loader.unreadable);
        }
        resources
    }

    /// One entry of `resources:`. Its problems are reported and, where a default serves, it
    /// is still read, so that the checks of its fields and references run as well; only an
    /// entry without a usable `type` is left out (and named in `unreadable`).
    fn resource(&mut self, key: Key, node: Node) -> Option<Resource> {
        if RESERVED_NAMES.contains(&key.name.as_str()) {
            self.problem(
                Diagnostic::new(key.loc, format!("`{}` is a reserved name", key.name)).help(
                    format!(
                        "{} are reserved for references; rename the resource",
                        RESERVED_NAMES.map(|n| format!("`{n}`")).join(", ")
                    ),
                ),
            );
        } else if !valid_name(&key.name) {
            self.problem(
                Diagnostic::new(key.loc, format!("invalid resource name `{}`", key.name))
                    .help("a resource name starts with a letter or digit and holds letters, digits, `_` and `-`"),
            );
        }
        // `type` is reported missing only when nothing else explains it: the entry is a map
        // and no key written there is a misspelt `type`.
        let mut type_explained = !matches!(node.value, Value::Map(_) | Value::Null);
        let entries = self.map(node, &format!("resource `{}`", key.name));
        let entries = self.unique(entries, "key");
        let mut type_name = None;
        let mut with = Vec::new();
        let mut depends_on = Vec::new();
        let mut protect = false;
        let mut keep_on_failure = false;
        let mut adopt = false;
        let mut verify = Vec::new();
        for (k, v) in entries {
            match k.name.as_str() {
                "type" => match v.value {
                    Value::Str(s) => {
                        type_name = Some((s, Loc::new(v.loc.line, v.loc.column, v.loc.len.max(1))))
                    }
                    other => {
                        self.problem(Diagnostic::new(
                            v.loc,
                            format!(
                                "`type` must be a string such as `local.file`, not {}",
                                other.kind()
                            ),
                        ));
                        type_explained = true;
                    }
                },
                "with" => {
                    let fields = self.map(v, "`with`");
                    with = self.exprs(fields, "field");
                }
                "depends_on" => depends_on = self.depends_on(v),
                "protect" => match v.value {
                    Value::Bool(b) => protect = b,
                    other => self.problem(Diagnostic::new(
                        v.loc,
                        format!("`protect` must be true or false, not {}", other.kind()),
                    )),
                },
                "on_failure" => match v.value {
                    Value::Str(s) if s == "keep" || s == "rollback" => {
                        keep_on_failure = s == "keep";
                    }
                    other => {
                        let found = match other {
                            Value::Str(s) => format!("`{s}`"),
                            other => other.kind().to_string(),
                        };
                        self.problem(
                            Diagnostic::new(
                                v.loc,
                                format!("`on_failure` must be `rollback` or `keep`, not {found}"),
                            )
                            .help("`rollback` (the default) undoes this resource's change when the apply fails; `keep` leaves it"),
                        );
                    }
                },
                "verify" => verify = self.gates(v),
                "adopt" => match v.value {
                    Value::Bool(b) => adopt = b,
                    other => self.problem(Diagnostic::new(
                        v.loc,
                        format!("`adopt` must be true or false, not {}", other.kind()),
                    )),
                },
                other => {
                    type_explained |= closest(other, RESOURCE_KEYS) == Some("type");
                    self.problem(
                        Diagnostic::new(
                            k.loc,
                            format!("unknown key `{other}` in resource `{}`", key.name),
                        )
                        .suggest(other, RESOURCE_KEYS),
                    );
                }
            }
        }
        let Some((type_name, type_loc)) = type_name else {
            if !type_explained {
                self.problem(
                    Diagnostic::new(key.loc, format!("resource `{}` has no `type`", key.name))
                        .help("add a `type:` such as `local.file`"),
                );
            }
            self.unreadable.insert(key.name);
            return None;
        };
        Some(Resource {
            name: key.name,
            loc: key.loc,
            type_name,
            type_loc,
            with,
            depends_on,
            protect,
            keep_on_failure,
            verify,
            adopt,
        })
    }

    fn secrets(&mut self, node: Node) -> Vec<SecretDecl> {
        let entries = self.map(node, "`secrets`");
        let entries = self.unique(entries, "secret");
        entries
            .into_iter()
            .filter_map(|(key, node)| self.secret(key, node))
            .collect()
    }

    fn secret(&mut self, key: Key, node: Node) -> Option<SecretDecl> {
        let mut name_chars = key.name.chars();
        let valid = name_chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name_chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.problem(
                Diagnostic::new(key.loc, format!("invalid secret name `{}`", key.name))
                    .help("a secret is named like an environment variable: letters, digits and `_`, not starting with a digit"),
            );
            return None;
        }
        let entries = self.map(node, &format!("secret `{}`", key.name));
        let mut generate = None;
        for (k, v) in entries {
            match k.name.as_str() {
                "generate" => generate = self.generate(v, &key.name),
                other => {
                    self.problem(
                        Diagnostic::new(
                            k.loc,
                            format!("unknown key `{other}` in secret `{}`", key.name),
                        )
                        .suggest(other, ["generate"])
                        .help(
                            "write `{}` for a required secret, or `{ generate: { length: 32 } }`",
                        ),
                    );
                }
            }
        }
        Some(SecretDecl {
            name: key.name,
            loc: key.loc,
            generate,
        })
    }

    /// `None` when the block is bad (every problem in it reported).
    fn generate(&mut self, node: Node, secret: &str) -> Option<Generate> {
        let entries = self.map(node, "`generate`");
        let mut bad = false;
        let mut length = 32usize;
        let mut alphabet = Alphabet::Alnum;
        for (k, v) in entries {
            match (k.name.as_str(), v.value) {
                ("length", Value::Int(n)) if SECRET_LENGTHS.contains(&n) => length = n as usize,
                ("length", Value::Int(n)) => {
                    self.problem(
                        Diagnostic::new(
                            v.loc,
                            format!("secret `{secret}`: a generated length of {n} is out of range"),
                        )
                        .help(format!(
                            "use {} to {} characters",
                            SECRET_LENGTHS.start(),
                            SECRET_LENGTHS.end()
                        )),
                    );
                    bad = true;
                }
                ("alphabet", Value::Str(s)) => match s.as_str() {
                    "alnum" => alphabet = Alphabet::Alnum,
                    "hex" => alphabet = Alphabet::Hex,
                    "base64url" => alphabet = Alphabet::Base64Url,
                    other => {
                        self.problem(
                            Diagnostic::new(v.loc, format!("unknown alphabet `{other}`"))
                                .suggest(other, ["alnum", "hex", "base64url"])
                                .help_if_none("the alphabets are `alnum`, `hex` and `base64url`"),
                        );
                        bad = true;
                    }
                },
                ("length", other) | ("alphabet", other) => {
                    self.problem(Diagnostic::new(
                        v.loc,
                        format!(
                            "`{}` must be {}, not {}",
                            k.name,
                            if k.name == "length" {
                                "a whole number"
                            } else {
                                "a string"
                            },
                            other.kind()
                        ),
                    ));
                    bad = true;
                }
                (other, _) => {
                    self.problem(
                        Diagnostic::new(k.loc, format!("unknown key `{other}` in `generate`"))
                            .suggest(other, ["length", "alphabet"]),
                    );
                    bad = true;
                }
            }
        }
        (!bad).then_some(Generate { length, alphabet })
    }

    /// A `verify:` list; each entry's own shape is checked against the registry of gates later.
    fn gates(&mut self, node: Node) -> Vec<Expr> {
        match node.value {
            Value::Seq(items) => items.into_iter().map(|n| self.expr(n)).collect(),
            Value::Null => Vec::new(),
            other => {
                self.problem(
                    Diagnostic::new(
                        node.loc,
                        format!("`verify` must be a list of gates, not {}", other.kind()),
                    )
                    .help("write each gate as a list item: `- http: \"https://…\"`"),
                );
                Vec::new()
            }
        }
    }

    fn depends_on(&mut self, node: Node) -> Vec<(String, Loc)> {
        let items = match node.value {
            Value::Seq(items) => items,
            Value::Str(s) => return vec![(s, node.loc)],
            other => {
                self.problem(Diagnostic::new(
                    node.loc,
                    format!(
                        "`depends_on` must be a list of resource names, not {}",
                        other.kind()
                    ),
                ));
                return Vec::new();
            }
        };
        items
            .into_iter()
            .filter_map(|item| match item.value {
                Value::Str(s) => Some((s, item.loc)),
                other => {
                    self.problem(Diagnostic::new(
                        item.loc,
                        format!("`depends_on` lists resource names, not {}", other.kind()),
                    ));
                    None
                }
            })
            .collect()
    }

    fn exprs(&mut self, entries: Vec<(Key, Node)>, what: &str) -> Vec<(Key, Expr)> {
        let entries = self.unique(entries, what);
        entries
            .into_iter()
            .map(|(k, v)| {
                let e = self.expr(v);
                (k, e)
            })
            .collect()
    }

    fn expr(&mut self, node: Node) -> Expr {
        let kind = match node.value {
            Value::Null => ExprKind::Null,
            Value::Bool(b) => ExprKind::Bool(b),
            Value::Int(i) => ExprKind::Int(i),
            Value::Float(f) => ExprKind::Float(f),
            Value::Str(s) => match template::parse_owned(s) {
                Ok(parts) => ExprKind::Str(parts),
                Err((message, s)) => {
                    self.problem(Diagnostic::new(node.loc, message));
                    ExprKind::Str(vec![Part::Text(s)])
                }
            },
            Value::Seq(items) => ExprKind::List(items.into_iter().map(|n| self.expr(n)).collect()),
            Value::Map(entries) => ExprKind::Map(self.exprs(entries, "key")),
        };
        Expr {
            kind,
            loc: node.loc,
        }
    }
}
