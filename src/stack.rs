//! A stack as a run takes it up: its spec read and checked and its variables given their
//! values ([`load`]), its secrets resolved
//! ([`Loaded::resolve_secrets`]), its state opened under the lock with what a killed run left
//! pending settled ([`open`]), and where the run happens ([`context`]). Every subcommand starts
//! here, so that all of them check a spec and open a state alike.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fabrik_provider::Context;

use crate::check;
use crate::error::Error;
use crate::graph::Graph;
use crate::recover::Notes;
use crate::registry::Registry;
use crate::resolve;
use crate::secrets::Secrets;
use crate::spec::{Spec, VarSources};
use crate::state::backend::{Choice, only_stack, spec_dir};
use crate::state::{State, StateStore};

/// A spec that passed every check, with its graph and, once [`Loaded::resolve_secrets`] ran,
/// its secrets.
pub struct Loaded {
    pub spec: Spec,
    pub graph: Graph,
    pub secrets: Secrets,
    /// For each resource (file order), its input fields that hold secrets.
    pub sensitive: Vec<BTreeSet<String>>,
}

impl Loaded {
    /// Resolves the spec's secrets (environment, `.env`, generated and saved) and loads the
    /// stack's masking key when anything is sensitive. Commands that change or show a stack
    /// need this; `validate` and `graph` do not.
    pub fn resolve_secrets(&mut self, state_dir: &Path) -> Result<(), Error> {
        let secrets = crate::secrets::resolve(&self.spec)?;
        let anything_sensitive = !self.spec.secrets.is_empty()
            || self.spec.vars.iter().any(|d| d.sensitive)
            || self.spec.outputs.iter().any(|o| o.sensitive)
            || self.sensitive.iter().any(|s| !s.is_empty());
        self.secrets = if anything_sensitive {
            secrets.with_key(crate::secrets::stack_key(state_dir, &self.spec.stack)?)
        } else {
            secrets
        };
        Ok(())
    }

    /// The spec with its secrets: what providers are configured from.
    pub fn configuration(&self) -> (&Spec, &Secrets) {
        (&self.spec, &self.secrets)
    }
}

/// Makes the secrets use the masking key the store shares between the machines using the
/// stack, when it keeps one, so that sensitive inputs hash alike on every one of them.
pub fn share_key(loaded: &mut Loaded, store: &dyn StateStore) -> Result<(), Error> {
    if let Some(local) = loaded.secrets.key().copied()
        && let Some(shared) = store.shared_key(&local)?
    {
        loaded.secrets.use_shared_key(shared);
    }
    Ok(())
}

/// A stack opened for a run that changes it: its store, the lock held on it, its state with
/// what a dead run left pending resolved, and the resources that resolution adopted.
pub struct Opened {
    pub state: State,
    pub adopted: BTreeSet<String>,
    /// Held until dropped: bind it for the whole run (`lock: _lock`), since a field left out
    /// of a destructuring pattern is dropped at once.
    pub lock: crate::state::Lock,
    pub store: Box<dyn StateStore>,
}

/// Opens the stack of `loaded` (the spec at `spec_path`) in the backend `backend` chooses, for
/// a run that changes it; the lock names `command_line`.
pub fn open(
    backend: &Choice,
    command_line: &str,
    registry: &Registry,
    loaded: &mut Loaded,
    spec_path: &Path,
) -> Result<Opened, Error> {
    let store = backend.store(spec_path, Some(&loaded.spec), &loaded.spec.stack)?;
    share_key(loaded, &*store)?;
    // A sensitive variable's value given with `--var` is on the command line the lock
    // records and shows to other runs.
    let lock = store.lock(&crate::redact::redact(command_line))?;
    let state = store.load()?;
    let context = context(spec_path, backend.state_dir(spec_path));
    settled(registry, Some(loaded), store, lock, state, &context)
}

/// Opens the stack a destroy is about, for which a spec is not needed: `stack` (`--stack`),
/// else the spec's, else the only one in the backend. `loaded` is the spec at `spec_path` when
/// there is one, given back only if it is of that stack.
pub fn open_for_destroy(
    backend: &Choice,
    command_line: &str,
    registry: &Registry,
    loaded: Option<Loaded>,
    spec_path: &Path,
    stack: Option<&str>,
) -> Result<(Opened, Option<Loaded>), Error> {
    let chosen = backend.backend(spec_path, loaded.as_ref().map(|l| &l.spec))?;
    let stack = match (stack, &loaded) {
        (Some(stack), _) => stack.to_string(),
        (None, Some(l)) => l.spec.stack.clone(),
        (None, None) => only_stack(&chosen, spec_path)?,
    };
    let store = chosen.store(&stack)?;
    // A sensitive variable's value given with `--var` is on the command line the lock
    // records and shows to other runs.
    let lock = store.lock(&crate::redact::redact(command_line))?;
    let state = store.load()?;
    let mut loaded = loaded.filter(|l| l.spec.stack == stack);
    if let Some(loaded) = &mut loaded {
        share_key(loaded, &*store)?;
    }
    let context = context(spec_path, backend.state_dir(spec_path));
    let opened = settled(registry, loaded.as_ref(), store, lock, state, &context)?;
    Ok((opened, loaded))
}

/// The stack opened, once what a dead run left pending is settled and recorded.
fn settled(
    registry: &Registry,
    loaded: Option<&Loaded>,
    store: Box<dyn StateStore>,
    lock: crate::state::Lock,
    mut state: State,
    context: &Context,
) -> Result<Opened, Error> {
    let adopted = crate::recover::settle(
        registry,
        loaded.map(Loaded::configuration),
        &mut state,
        context,
        Some(&*store),
        Notes::Stdout,
    )?;
    Ok(Opened {
        state,
        adopted,
        lock,
        store,
    })
}

/// Loads and checks a spec: shape, types, references, the graph, environment variables,
/// the variables' values (defaults, the vars file, `FABRIK_VAR_<NAME>`; see
/// [`Spec::resolve_vars`]) and what providers find wrong with the values known before any
/// state or secret is read (so a bad value stops a command before it opens the state).
///
/// # Errors
/// [`Error::Spec`] with every problem found, at once; a variable's value that is wrong or
/// missing.
pub fn load(path: &Path, registry: &Registry) -> Result<Loaded, Error> {
    read(path, registry, true, Vars::Required(VarSources::default()))
}

/// [`load`] with the values the command line gives variables (`--var`, `--vars-file`).
///
/// # Errors
/// As [`load`].
pub fn load_given(path: &Path, registry: &Registry, vars: VarSources<'_>) -> Result<Loaded, Error> {
    read(path, registry, true, Vars::Required(vars))
}

/// Loads and checks a spec without giving its variables values: `validate`, `graph` and
/// `secrets` look at what is written, and a variable without a value is not a problem there.
///
/// # Errors
/// [`Error::Spec`] with every problem found, at once.
pub fn load_without_values(path: &Path, registry: &Registry) -> Result<Loaded, Error> {
    read(path, registry, true, Vars::NotRead)
}

/// Loads and checks a spec without requiring its environment variables or a value for every
/// variable: destroy only needs its `protect` flags and provider blocks, and must work when
/// the variables of the last release are gone.
///
/// # Errors
/// [`Error::Spec`] with every problem found, at once; a variable's value that is wrong.
pub fn load_structure(
    path: &Path,
    registry: &Registry,
    vars: VarSources<'_>,
) -> Result<Loaded, Error> {
    read(path, registry, false, Vars::Optional(vars))
}

/// Whether and how a load gives the spec's variables their values.
enum Vars<'a> {
    /// Every variable must end up with a value.
    Required(VarSources<'a>),
    /// A variable without one stays unknown.
    Optional(VarSources<'a>),
    NotRead,
}

/// Every check runs on what could be read, so that one run reports every problem; values are
/// judged once nothing else is wrong, since a value is judged by the type and fields around
/// it. A resource with `for_each` is checked as written, then once more as its instances, once
/// the variables that may give its keys have values (see `src/spec/for_each.rs`).
fn read(path: &Path, registry: &Registry, values: bool, vars: Vars<'_>) -> Result<Loaded, Error> {
    let (mut spec, mut problems) = Spec::read(path)?;
    // What reads no variable's value (`validate`, `graph`, `secrets`) needs no environment
    // variable either: a run does (see `needed_env`).
    let env = values && !matches!(vars, Vars::NotRead);
    let (mut graph, mut sensitive) = checked(&spec, registry, env, &mut problems);
    if problems.is_empty() {
        let (sources, required) = match vars {
            Vars::Required(sources) => (Some(sources), true),
            Vars::Optional(sources) => (Some(sources), false),
            Vars::NotRead => (None, false),
        };
        if let Some(sources) = sources {
            let missing = spec.resolve_vars(sources)?;
            if required && !missing.is_empty() {
                return Err(spec.missing_vars(&missing));
            }
        }
        if spec.resources.iter().any(|r| r.for_each.is_some()) {
            let text_field = |type_name: &str, field: &str| {
                registry
                    .resource_type(type_name)
                    .and_then(|ty| ty.field(field))
                    .is_some_and(|f| f.kind == fabrik_provider::FieldKind::String)
            };
            problems.extend(spec.expand(&text_field));
            problems.extend(spec.moved_problems());
            if problems.is_empty() {
                (graph, sensitive) = checked(&spec, registry, env, &mut problems);
            }
        }
        if values && problems.is_empty() {
            problems.extend(crate::plan::precheck::problems(&spec, &graph, registry));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Spec(crate::source::Diagnostics::sorted(
            spec.source.clone(),
            problems,
        )));
    }
    Ok(Loaded {
        spec,
        graph,
        secrets: Secrets::default(),
        sensitive,
    })
}

/// The checks of a spec's shape, types, references and graph (and with `values`, of its
/// environment variables), adding to `problems`; the graph and sensitive fields they found.
fn checked(
    spec: &Spec,
    registry: &Registry,
    values: bool,
    problems: &mut Vec<crate::source::Diagnostic>,
) -> (Graph, Vec<BTreeSet<String>>) {
    problems.extend(check::problems(spec, registry));
    let (graph, in_graph) = Graph::with_problems(spec);
    problems.extend(in_graph);
    let sensitive = resolve::sensitive_fields(spec, registry, &graph.order);
    problems.extend(check::secret_identities(spec, registry, &sensitive));
    problems.extend(check::output_secrets(spec, &sensitive));
    if values {
        problems.extend(resolve::env_problems(spec));
    }
    (graph, sensitive)
}

/// Where a run on the spec at `spec` happens, with its state in `state_dir`: the directories
/// providers resolve paths against, and fabrik's own files, which no resource may write.
pub fn context(spec: &Path, state_dir: PathBuf) -> Context {
    // Absolute, so that identities derived from them (file ids, process markers) do not
    // depend on the directory fabrik was started from.
    let absolute = |p: PathBuf| {
        std::fs::canonicalize(&p)
            .or_else(|_| std::path::absolute(&p))
            .unwrap_or(p)
    };
    let base_dir = absolute(spec_dir(spec));
    let state_dir = absolute(state_dir);
    let reserved = vec![
        absolute(spec.to_path_buf()),
        state_dir.clone(),
        base_dir.join(".env"),
    ];
    Context {
        base_dir,
        state_dir,
        reserved,
        cancel: crate::interrupt::cancel(),
    }
}
