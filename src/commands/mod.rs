//! One file per subcommand; this module holds what several of them share: loading a spec,
//! finding the state, configuring providers, asking for confirmation.

mod apply;
mod destroy;
mod graph;
mod import;
mod output;
mod plan;
mod secrets;
mod show;
mod state;
mod unlock;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fabrik_provider::{Attributes, Context, Creation, Read, Target};

use crate::check;
use crate::cli::{Cli, Command, StackArgs};
use crate::error::Error;
use crate::executor::Clients;
use crate::graph::Graph;
use crate::plan::Observations;
use crate::registry::Registry;
use crate::render::Painter;
use crate::resolve;
use crate::secrets::Secrets;
use crate::source::SourceFile;
use crate::spec::{BackendBlock, Header, Spec};
use crate::state::journal::Record;
use crate::state::{Backend, ResourceState, State, StateStore};

/// Options every subcommand shares.
pub struct Globals {
    pub state_dir: Option<PathBuf>,
    /// `--backend` or `FABRIK_BACKEND` when it names a database (a directory there is taken as
    /// `--state-dir`).
    pub backend: Option<String>,
    pub painter: Painter,
    /// The command line as typed, for the lock's holder record.
    pub command_line: String,
}

pub fn dispatch(cli: Cli) -> Result<i32, Error> {
    let (backend, state_dir) = match cli.backend {
        Some(url) if crate::state::postgres::is_url(&url) => (Some(url), cli.state_dir),
        Some(dir) if !dir.is_empty() => (None, cli.state_dir.or(Some(PathBuf::from(dir)))),
        _ => (None, cli.state_dir),
    };
    let globals = Globals {
        state_dir,
        backend,
        painter: Painter::for_stdout(cli.no_color),
        // Stored as the lock's holder and shown to others: no password of a `--backend` URL.
        command_line: crate::state::postgres::mask_passwords(
            &std::env::args().collect::<Vec<_>>().join(" "),
        ),
    };
    match cli.command {
        Command::Validate(args) => validate::run(&globals, args),
        Command::Plan(args) => plan::run(&globals, args),
        Command::Apply(args) => apply::run(&globals, args),
        Command::Destroy(args) => destroy::run(&globals, args),
        Command::Show(args) => show::run(&globals, args),
        Command::Graph(args) => graph::run(&globals, args),
        Command::State(cmd) => state::run(&globals, cmd),
        Command::Import(args) => import::run(&globals, args),
        Command::Output(args) => output::run(&globals, args),
        Command::Secrets(args) => secrets::run(&globals, args),
        Command::Unlock(args) => unlock::run(&globals, args),
    }
}

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
        let anything_sensitive =
            !self.spec.secrets.is_empty() || self.sensitive.iter().any(|s| !s.is_empty());
        self.secrets = if anything_sensitive {
            secrets.with_key(crate::secrets::stack_key(state_dir, &self.spec.stack)?)
        } else {
            secrets
        };
        Ok(())
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

/// Opens the stack of `loaded` (the spec at `spec_path`) for a run that changes it.
pub fn open(
    globals: &Globals,
    registry: &Registry,
    loaded: &mut Loaded,
    spec_path: &Path,
) -> Result<Opened, Error> {
    let store = globals.store(spec_path, Some(&loaded.spec), &loaded.spec.stack)?;
    share_key(loaded, &*store)?;
    let lock = store.lock(&globals.command_line)?;
    let mut state = store.load()?;
    let adopted = recover(
        registry,
        Some(loaded),
        &mut state,
        &globals.context(spec_path),
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

/// Loads and checks a spec: shape, types, references, the graph, environment variables and
/// what providers find wrong with the values known before any state or secret is read (so a
/// bad value stops a command before it opens the state).
///
/// # Errors
/// [`Error::Spec`] with every problem found, at once.
pub fn load(path: &Path, registry: &Registry) -> Result<Loaded, Error> {
    read(path, registry, true)
}

/// Loads and checks a spec without requiring its environment variables: destroy only needs
/// its `protect` flags and provider blocks, and must work when the variables of the last
/// release are gone.
///
/// # Errors
/// [`Error::Spec`] with every problem found, at once.
pub fn load_structure(path: &Path, registry: &Registry) -> Result<Loaded, Error> {
    read(path, registry, false)
}

/// Every check runs on what could be read, so that one run reports every problem; values are
/// judged once nothing else is wrong, since a value is judged by the type and fields around
/// it.
fn read(path: &Path, registry: &Registry, values: bool) -> Result<Loaded, Error> {
    let (spec, mut problems) = Spec::read(path)?;
    problems.extend(check::problems(&spec, registry));
    let (graph, in_graph) = Graph::with_problems(&spec);
    problems.extend(in_graph);
    let sensitive = resolve::sensitive_fields(&spec, registry, &graph.order);
    problems.extend(check::secret_identities(&spec, registry, &sensitive));
    if values {
        problems.extend(resolve::env_problems(&spec));
        if problems.is_empty() {
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

/// The directory that holds a spec (`.` for a bare file name).
fn spec_dir(spec: &Path) -> PathBuf {
    match spec.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Globals {
    /// `--state-dir`, or `.fabrik/` beside the spec.
    pub fn state_dir(&self, spec: &Path) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| spec_dir(spec).join(".fabrik"))
    }

    /// Where the states are kept for this spec: `--backend` (or `FABRIK_BACKEND`), else
    /// `--state-dir`, else the spec's `backend:`, else `.fabrik/` beside the spec.
    pub fn backend(&self, spec_path: &Path, spec: Option<&Spec>) -> Result<Backend, Error> {
        let block = spec.and_then(|spec| Some((&spec.source, spec.backend.as_ref()?)));
        self.backend_of(spec_path, block)
    }

    /// [`Globals::backend`] from a spec's `backend:` block alone (with the file it is written
    /// in, for messages).
    fn backend_of(
        &self,
        spec_path: &Path,
        block: Option<(&Arc<SourceFile>, &BackendBlock)>,
    ) -> Result<Backend, Error> {
        use crate::state::postgres::Config;
        // A run that loses the database keeps its state beside the spec until the next run.
        let local = self.state_dir(spec_path);
        if let Some(url) = &self.backend {
            let config = Config::parse(url, None)?.with_local_dir(local);
            return Ok(Backend::Postgres(Box::new(config)));
        }
        if self.state_dir.is_none()
            && let Some((source, block)) = block
        {
            let url = backend_url(source, &block.url, &spec_dir(spec_path))?;
            let config = Config::parse(&url, block.schema.as_deref())?.with_local_dir(local);
            return Ok(Backend::Postgres(Box::new(config)));
        }
        Ok(Backend::Dir(self.state_dir(spec_path)))
    }

    /// Whether the spec's `backend:` block decides where the state is (no `--backend` or
    /// `--state-dir` given).
    pub fn spec_chooses_backend(&self, spec: &Spec) -> bool {
        self.backend.is_none() && self.state_dir.is_none() && spec.backend.is_some()
    }

    /// The store of one stack of a spec.
    pub fn store(
        &self,
        spec_path: &Path,
        spec: Option<&Spec>,
        stack: &str,
    ) -> Result<Box<dyn StateStore>, Error> {
        self.backend(spec_path, spec)?.store(stack)
    }

    /// The store of the stack a state command is about: `--stack`, else the spec's, else the
    /// only stack in the backend. Of the spec only `stack:` and `backend:` are read (and
    /// nothing when `--stack` and `--backend` or `--state-dir` say it all), so that a spec
    /// being edited does not lock its user out of the state.
    pub fn store_for(&self, args: &StackArgs) -> Result<Box<dyn StateStore>, Error> {
        let placed = self.backend.is_some() || self.state_dir.is_some();
        let header = if args.spec.exists() && !(placed && args.stack.is_some()) {
            Some(Header::load(&args.spec, args.stack.as_deref())?)
        } else {
            None
        };
        let block = header
            .as_ref()
            .and_then(|h| Some((&h.source, h.backend.as_ref()?)));
        let backend = self.backend_of(&args.spec, block)?;
        let stack = match (&args.stack, header) {
            (Some(stack), _) => stack.clone(),
            (None, Some(header)) => header.stack,
            (None, None) => only_stack(&backend, &args.spec)?,
        };
        backend.store(&stack)
    }

    pub fn context(&self, spec: &Path) -> Context {
        // Absolute, so that identities derived from them (file ids, process markers) do not
        // depend on the directory fabrik was started from.
        let absolute = |p: PathBuf| {
            std::fs::canonicalize(&p)
                .or_else(|_| std::path::absolute(&p))
                .unwrap_or(p)
        };
        let base_dir = absolute(spec_dir(spec));
        let state_dir = absolute(self.state_dir(spec));
        // fabrik's own files: no resource may write them.
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
}

/// The connection string of the spec's backend, its secrets looked up in the environment and
/// in the `.env` beside the spec.
fn backend_url(
    source: &Arc<SourceFile>,
    url: &crate::spec::Expr,
    base_dir: &Path,
) -> Result<String, Error> {
    let missing = |what: String| {
        Error::Spec(crate::source::Diagnostics {
            source: source.clone(),
            items: vec![crate::source::Diagnostic::new(url.loc, what)],
        })
    };
    // The spec loader lets only strings through; say so rather than trust it blindly.
    let crate::spec::ExprKind::Str(parts) = &url.kind else {
        return Err(missing("`url` must be a string".into()));
    };
    let dotenv = base_dir.join(".env");
    let mut text = String::new();
    for part in parts {
        match part {
            crate::template::Part::Text(t) => text.push_str(t),
            crate::template::Part::Ref(crate::template::Reference::Secret(name)) => {
                let value = crate::secrets::lookup(name, &dotenv)?.ok_or_else(|| {
                    missing(format!(
                        "the state backend needs secret `{name}`: set the environment variable `{name}` or put it in {}",
                        dotenv.display()
                    ))
                })?;
                text.push_str(value.expose());
            }
            crate::template::Part::Ref(crate::template::Reference::Env(name)) => {
                let value = std::env::var(name).map_err(|_| {
                    missing(format!(
                        "the state backend needs the environment variable `{name}`"
                    ))
                })?;
                text.push_str(&value);
            }
            crate::template::Part::Ref(other) => {
                return Err(missing(format!("`url` cannot use {}", other.written())));
            }
        }
    }
    Ok(text)
}

/// The stack a spec names on a top-level `stack:` line, read without parsing the YAML: a guess
/// that lets work start early, always confirmed against the parsed spec.
pub fn stack_line(spec: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(spec)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().find(|l| l.starts_with("stack:"))?;
    let value = line["stack:".len()..]
        .split(" #")
        .next()?
        .trim()
        .trim_matches(['"', '\'']);
    crate::spec::valid_name(value).then(|| value.to_string())
}

/// The one stack that has a state in the backend.
pub fn only_stack(backend: &Backend, spec: &Path) -> Result<String, Error> {
    let stacks = backend.stacks()?;
    match stacks.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Usage(format!(
            "{} does not exist and there is no state in {}",
            spec.display(),
            backend.describe()
        ))),
        many => Err(Error::Usage(format!(
            "{} holds the state of several stacks ({}); name one with --stack",
            backend.describe(),
            many.join(", ")
        ))),
    }
}

/// Configures every provider the spec or the state needs. Configurations come from the spec
/// when there is one, else from what the state recorded at the last apply.
pub fn configure(
    registry: &Registry,
    loaded: Option<&Loaded>,
    state: &State,
    context: &Context,
) -> Result<Clients, Error> {
    clients(
        registry,
        &provider_configs(registry, loaded, state, context)?,
        context,
    )
}

/// The configuration of every provider the spec or the state needs, resolved (secrets in).
pub fn provider_configs(
    registry: &Registry,
    loaded: Option<&Loaded>,
    state: &State,
    context: &Context,
) -> Result<BTreeMap<String, Attributes>, Error> {
    let mut needed: BTreeSet<&str> = state
        .resources
        .values()
        .filter_map(|r| registry.provider_of(&r.type_name))
        .collect();
    let mut configs: BTreeMap<String, Attributes> = state
        .providers
        .iter()
        .map(|(name, config)| {
            Ok((
                name.clone(),
                recorded_config(name, config, &context.base_dir)?,
            ))
        })
        .collect::<Result<_, Error>>()?;
    if let Some(Loaded { spec, secrets, .. }) = loaded {
        needed.extend(
            spec.resources
                .iter()
                .filter_map(|r| registry.provider_of(&r.type_name)),
        );
        for block in &spec.providers {
            let config =
                resolve::eval_fields(&block.config, &|r| resolve::context_value(spec, secrets, r));
            // A configuration whose variables are unset (destroy after a release is gone)
            // falls back to the one recorded at the last apply.
            if let Some(config) = resolve::known(&config) {
                configs.insert(block.name.clone(), config);
            }
        }
    }
    Ok(needed
        .into_iter()
        .map(|name| {
            let config = configs.remove(name).unwrap_or_default();
            (name.to_string(), config)
        })
        .collect())
}

/// A client for each provider of `configs`.
pub fn clients(
    registry: &Registry,
    configs: &BTreeMap<String, Attributes>,
    context: &Context,
) -> Result<Clients, Error> {
    let mut clients = Clients::new();
    for (name, config) in configs {
        let provider = registry
            .provider(name)
            .expect("provider_of names registered providers");
        let client = provider
            .configure(config, context)
            .map_err(|source| Error::Provider {
                resource: format!("provider `{name}`"),
                source,
            })?;
        clients.insert(name.clone(), client);
    }
    Ok(clients)
}

/// A provider configuration as the state recorded it, with each `${secret.KEY}` looked up again
/// in the environment and in the `.env` beside the spec.
fn recorded_config(
    provider: &str,
    config: &Attributes,
    base_dir: &Path,
) -> Result<Attributes, Error> {
    let mut resolved = Attributes::new();
    for (key, value) in config {
        let value = match value.as_str().map(crate::template::parse) {
            Some(Ok(parts))
                if parts
                    .iter()
                    .any(|p| matches!(p, crate::template::Part::Ref(_))) =>
            {
                let mut text = String::new();
                for part in parts {
                    match part {
                        crate::template::Part::Text(t) => text.push_str(&t),
                        crate::template::Part::Ref(crate::template::Reference::Secret(name)) => {
                            let found = crate::secrets::lookup(&name, &base_dir.join(".env"))?.ok_or_else(|| {
                                Error::Usage(format!(
                                    "provider `{provider}` needs secret `{name}`: set the environment variable `{name}` or put it in {}",
                                    base_dir.join(".env").display()
                                ))
                            })?;
                            text.push_str(found.expose());
                        }
                        crate::template::Part::Ref(crate::template::Reference::Env(name)) => {
                            let found = std::env::var(&name).map_err(|_| {
                                Error::Usage(format!(
                                    "provider `{provider}` needs the environment variable `{name}` (its configuration says `${{env.{name}}}`)"
                                ))
                            })?;
                            text.push_str(&found);
                        }
                        crate::template::Part::Ref(other) => text.push_str(&other.written()),
                    }
                }
                serde_json::Value::String(text)
            }
            _ => value.clone(),
        };
        resolved.insert(key.clone(), value);
    }
    Ok(resolved)
}

/// Reads every resource in the state (those `wanted`), to compare with what was recorded. Each
/// provider gets all of its resources in one `read_many`, so it can read a group of them (the
/// records of a zone) with one request.
pub fn refresh(
    registry: &Registry,
    clients: &Clients,
    state: &State,
    wanted: impl Fn(&str) -> bool,
) -> Result<Observations, Error> {
    let mut by_provider: BTreeMap<&str, Vec<(&String, &ResourceState)>> = BTreeMap::new();
    for (name, r) in state.resources.iter().filter(|(n, _)| wanted(n)) {
        if let Some(provider) = registry
            .provider_of(&r.type_name)
            .filter(|p| clients.contains_key(*p))
        {
            by_provider.entry(provider).or_default().push((name, r));
        }
    }
    let mut seen = Observations::new();
    for (provider, resources) in by_provider {
        let reads: Vec<Read<'_>> = resources
            .iter()
            .map(|(name, r)| Read {
                target: Target {
                    stack: &state.stack,
                    name,
                    type_name: &r.type_name,
                },
                id: &r.id,
                inputs: &r.inputs,
            })
            .collect();
        let results = clients[provider].read_many(&reads);
        if results.len() != reads.len() {
            return Err(Error::Provider {
                resource: format!("refreshing `{provider}` resources"),
                source: fabrik_provider::Error::new(
                    fabrik_provider::ErrorKind::Fatal,
                    format!(
                        "the provider answered {} reads with {} results",
                        reads.len(),
                        results.len()
                    ),
                ),
            });
        }
        for ((name, _), observed) in resources.into_iter().zip(results) {
            let observed = observed.map_err(|source| Error::Provider {
                resource: format!("refreshing `{name}`"),
                source,
            })?;
            seen.insert(name.clone(), observed);
        }
    }
    Ok(seen)
}

/// Stops a plan whose creates would meet objects that are not theirs: each provider is asked
/// once for all of its creates, and every object in the way is reported at its resource in the
/// spec, so nothing is changed until the spec or the remote side is fixed.
pub fn obstacles(
    registry: &Registry,
    clients: &Clients,
    spec: &Spec,
    state: &State,
    plan: &crate::plan::Plan,
) -> Result<(), Error> {
    let mut by_provider: BTreeMap<&str, Vec<(&crate::spec::Resource, &Attributes)>> =
        BTreeMap::new();
    for change in plan
        .changes
        .iter()
        // A handover takes over an object the stack holds: nothing foreign is in the way.
        .filter(|c| {
            matches!(
                c.action,
                crate::plan::Action::Create | crate::plan::Action::Replace
            ) && !c.state_only
                && c.takes_over.is_none()
        })
    {
        let Some(resource) = spec.resource(&change.name).filter(|r| !r.adopt) else {
            continue;
        };
        // Inputs known only once something else is applied are checked as far as they are
        // known (a file's path without its content); the create itself still refuses what is
        // not its own.
        let Some(inputs) = plan
            .resolved
            .get(&change.name)
            .map(|r| &r.inputs)
            .or_else(|| plan.partial.get(&change.name))
        else {
            continue;
        };
        if let Some(provider) = registry
            .provider_of(&change.type_name)
            .filter(|p| clients.contains_key(*p))
        {
            by_provider
                .entry(provider)
                .or_default()
                .push((resource, inputs));
        }
    }
    let mut found = Vec::new();
    for (provider, creations) in by_provider {
        let asked: Vec<Creation<'_>> = creations
            .iter()
            .map(|(resource, inputs)| Creation {
                target: Target {
                    stack: &state.stack,
                    name: &resource.name,
                    type_name: &resource.type_name,
                },
                inputs,
            })
            .collect();
        let answers = clients[provider].obstacles(&asked);
        for ((resource, _), answer) in creations.iter().zip(answers) {
            // With only part of its inputs known, a provider may not be able to tell; the
            // create will.
            let partial = !plan.resolved.contains_key(&resource.name);
            let message = match answer {
                Err(_) if partial => None,
                other => other.map_err(|source| Error::Provider {
                    resource: format!("checking what is in the way of `{}`", resource.name),
                    source,
                })?,
            };
            if let Some(message) = message {
                found.push(crate::source::Diagnostic::new(
                    resource.loc,
                    format!("`{}`: {message}", resource.name),
                ));
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::Spec(crate::source::Diagnostics {
        source: spec.source.clone(),
        items: found,
    }))
}

/// Where recovery notes go: stdout for commands that print progress, stderr for `plan` (whose
/// stdout may be JSON).
pub enum Notes {
    Stdout,
    Stderr,
}

/// Resolves the provider calls a dead run left pending, looking each object up. With a store
/// (apply, destroy: the lock is held) the resolution is journaled; without one (plan) it only
/// changes `state` in memory. Returns the resources adopted.
pub fn recover(
    registry: &Registry,
    spec: Option<&Loaded>,
    state: &mut State,
    context: &Context,
    store: Option<&dyn StateStore>,
    notes: Notes,
) -> Result<BTreeSet<String>, Error> {
    if state.pending.is_empty() {
        return Ok(BTreeSet::new());
    }
    let clients = configure(registry, spec, state, context)?;
    let recovery = crate::recover::recover(state, registry, &clients, spec.map(|l| &l.secrets))?;
    // With the lock held, what the interrupted calls left beside their objects (half-written
    // temporary files) goes too; a plan, which holds no lock, leaves it for the next apply.
    if store.is_some() {
        for intent in state.pending.values() {
            if let Some(client) = registry
                .provider_of(&intent.type_name)
                .and_then(|p| clients.get(p))
            {
                let target = fabrik_provider::Target {
                    stack: &state.stack,
                    name: &intent.name,
                    type_name: &intent.type_name,
                };
                client.clean_up(target, &intent.inputs);
            }
        }
    }
    let records: Vec<Record> = recovery
        .records
        .into_iter()
        .map(|change| Record {
            serial: state.serial + 1,
            change,
        })
        .collect();
    if let Some(store) = store {
        store.record(&records)?;
    }
    for record in records {
        state.apply(record);
    }
    if let Some(store) = store {
        store.commit(state)?;
    }
    let mut text = String::from("Recovered from an interrupted run:\n");
    for line in &recovery.lines {
        text.push_str(&format!("  {line}\n"));
    }
    match notes {
        Notes::Stdout => outln!("{text}"),
        Notes::Stderr => eprintln!("{text}"),
    }
    Ok(recovery.adopted)
}

/// Asks on the terminal; refuses when there is no terminal to ask on.
pub fn confirm(question: &str) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "refusing to continue without confirmation: standard input is not a terminal; pass --yes to go ahead".into(),
        ));
    }
    out!("{question} Only 'yes' is accepted: ");
    std::io::stdout()
        .flush()
        .map_err(|e| Error::io("writing to the terminal", e))?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer", e))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::Usage("cancelled; nothing was changed".into()))
    }
}

/// Writes a file with mode 0600, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::state::file::write_atomically(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_line_is_read_without_parsing_and_only_when_plain() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("fabrik.yaml");
        for (text, want) in [
            ("# a comment\nstack: shop\nresources: {}\n", Some("shop")),
            ("stack: \"shop-2\" # quoted, commented\n", Some("shop-2")),
            ("resources:\n  stack: nested\n", None),
            ("stack: [not, a, name]\n", None),
        ] {
            std::fs::write(&spec, text).unwrap();
            assert_eq!(stack_line(&spec).as_deref(), want, "{text:?}");
        }
        assert_eq!(stack_line(&dir.path().join("missing.yaml")), None);
    }

    #[test]
    fn recorded_provider_configs_get_their_secrets_again_and_never_stored_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "FABRIK_TEST_RECORDED_KEY=from-dotenv-123\n",
        )
        .unwrap();
        let mut config = Attributes::new();
        config.insert("url".into(), "http://127.0.0.1:8081".into());
        config.insert(
            "api_key".into(),
            "${secret.FABRIK_TEST_RECORDED_KEY}".into(),
        );
        let resolved = recorded_config("powerdns", &config, dir.path()).unwrap();
        assert_eq!(resolved["api_key"], "from-dotenv-123");
        assert_eq!(resolved["url"], "http://127.0.0.1:8081");

        config.insert("api_key".into(), "${secret.FABRIK_TEST_NOWHERE}".into());
        let err = recorded_config("powerdns", &config, dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("needs secret `FABRIK_TEST_NOWHERE`"),
            "{err}"
        );
    }
}
