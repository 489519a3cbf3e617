//! The spec a user writes: loaded from YAML, checked for shape, with every part keeping its
//! location so later checks (types, references, cycles) can point at it.
//!
//! This file holds what the rest of the engine sees (the types, [`Spec::load`], [`Header`]);
//! `file.rs` reads the file within its limits, `load.rs` walks the YAML tree, and `backend.rs`,
//! `secrets.rs`, `vars.rs` and `outputs.rs` read the `backend:`, `secrets:`, `vars:` and
//! `outputs:` blocks (`vars.rs` also gives the variables their values for a run), `for_each.rs`
//! makes the instances of a resource with `for_each` once its keys are known, and `moved.rs`
//! reads the `moved:` list, whose addresses (`NAME`, `NAME[key]`) `address.rs` reads.

pub mod address;
mod backend;
mod file;
mod for_each;
mod load;
mod moved;
mod outputs;
mod secrets;
mod vars;

#[cfg(test)]
pub(crate) use load::{RESOURCE_KEYS, TOP_LEVEL_KEYS};
pub use vars::{ENV_PREFIX, VARS_FILE, VarSources, VarType};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::source::{Diagnostic, Diagnostics, Loc, SourceFile};
use crate::template::{self, Part};
use crate::yaml::Key;
use file::{Document, read_yaml};
use load::Loader;

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
    /// Declared variables, in file order.
    pub vars: Vec<VarDecl>,
    /// The variables' values for this run, once [`Spec::resolve_vars`] gave them; a variable
    /// without one is unknown, like an output not produced yet.
    pub var_values: std::collections::BTreeMap<String, serde_json::Value>,
    /// The resources with `for_each` that [`Spec::expand`] replaced by their instances, with
    /// their keys (sorted); a resource with `for_each` whose keys are not known yet (a
    /// variable without a value, in `validate`) stays in `resources` as written.
    pub expanded: std::collections::BTreeMap<String, Vec<String>>,
    /// Resources renamed in the spec whose objects stay (`moved:`), in file order.
    pub moved: Vec<Move>,
    /// Declared stack outputs, in file order.
    pub outputs: Vec<OutputDecl>,
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

/// One entry of `moved:`: the resource the state knows as `from` is `to` in the spec now.
/// Both are addresses in their normal form ([`address::Address`]).
#[derive(Debug, Clone)]
pub struct Move {
    pub from: String,
    pub from_loc: Loc,
    pub to: String,
    pub to_loc: Loc,
}

/// One entry of `secrets:`.
#[derive(Debug, Clone)]
pub struct SecretDecl {
    pub name: String,
    pub loc: Loc,
    /// How to make a value when none is found; `None`: the secret is required.
    pub generate: Option<Generate>,
}

/// One entry of `vars:`.
#[derive(Debug, Clone)]
pub struct VarDecl {
    pub name: String,
    pub loc: Loc,
    pub ty: VarType,
    /// Already of the type: a default that does not fit is a problem of the spec.
    pub default: Option<serde_json::Value>,
    pub description: Option<String>,
    /// Treated as a secret: shown and stored by its keyed hash only.
    pub sensitive: bool,
}

/// One entry of `outputs:`: a value the stack hands out once applied.
#[derive(Debug, Clone)]
pub struct OutputDecl {
    pub name: String,
    pub loc: Loc,
    pub value: Expr,
    pub description: Option<String>,
    /// Kept by its keyed hash and shown as `(sensitive)` unless asked for.
    pub sensitive: bool,
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
    /// `ignore_changes`: fields whose differences (spec against state, state against the
    /// object) are not planned once the object exists (see `plan::ignored`).
    pub ignore_changes: Vec<(String, Loc)>,
    /// `for_each`: the keys (a list of strings, a map, or `${var.X}` of either) whose
    /// instances this resource stands for until [`Spec::expand`] makes them.
    pub for_each: Option<Expr>,
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

    pub fn output(&self, name: &str) -> Option<&OutputDecl> {
        self.outputs.iter().find(|d| d.name == name)
    }

    pub fn var(&self, name: &str) -> Option<&VarDecl> {
        self.vars.iter().find(|d| d.name == name)
    }

    /// The position of a resource in file order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Whether the spec declares a resource of that name, even one whose entry could not be
    /// read (see [`Spec::read`]), or one with `for_each` (all its instances), or an instance
    /// of a resource it declares (`NAME[KEY]`).
    pub fn declares(&self, name: &str) -> bool {
        self.index.contains_key(name)
            || self.unreadable.contains(name)
            || self.expanded.contains_key(name)
            // Whether the key is one of its keys is for `for_each` to say (`Spec::expand`).
            || template::split_address(name).is_some_and(|(base, _)| self.declares(base))
    }

    /// Whether `name` is a resource whose entry could not be read (see [`Spec::read`]).
    pub(crate) fn declares_unreadable(&self, name: &str) -> bool {
        self.unreadable.contains(name)
    }

    /// The resource `name` is about in the graph: itself, or for an instance of a resource
    /// with `for_each` whose keys are not known yet, that resource.
    pub fn index_of_ref(&self, name: &str) -> Option<usize> {
        self.index_of(name).or_else(|| {
            let (base, _) = template::split_address(name)?;
            self.index_of(base)
                .filter(|&i| self.resources[i].for_each.is_some())
        })
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
        let (source, root) = read_yaml(path, Document::Spec)?;
        let mut loader = Loader::of(&source);
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
        let (source, root) = read_yaml(path, Document::Spec)?;
        let mut loader = Loader::of(&source);
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

/// Whether a stack or resource name can be used in references and file names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 128
}
