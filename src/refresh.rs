//! What is really there, asked of the providers around planning: the refresh reads every
//! recorded object before a plan (or, for a large state, on another thread while the spec is
//! parsed: [`read_ahead`]); the obstacle check asks, after it, whether something not ours sits
//! where a create would go. [`plan`] computes a plan with both, as `plan` and `apply` need it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use fabrik_provider::{Attributes, Context, Creation, Read, Target};

use crate::clients::{self, Clients};
use crate::error::Error;
use crate::plan::{self, Action, Observations, Plan};
use crate::registry::Registry;
use crate::spec::Spec;
use crate::stack::Loaded;
use crate::state::{ResourceState, State, StateStore};

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
    let mut failed = Vec::new();
    for (provider, resources) in by_provider {
        let reads: Vec<Read<'_>> = resources
            .iter()
            .map(|(name, r)| Read {
                target: Target {
                    stack: &state.stack,
                    name: r.marker(name),
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
            match observed {
                Ok(observed) => {
                    seen.insert(name.clone(), observed);
                }
                Err(source) => failed.push(Error::Provider {
                    resource: format!("refreshing `{name}`"),
                    source,
                }),
            }
        }
    }
    // Inputs that no longer hold (what a resource stands on was renamed or removed) are
    // each the user's to fix: all are reported at once. Anything else stops at the first.
    let all_inputs = failed.iter().all(|e| {
        matches!(e, Error::Provider { source, .. } if source.kind == fabrik_provider::ErrorKind::InvalidInput)
    });
    match failed.len() {
        0 => Ok(seen),
        n if n > 1 && all_inputs => Err(Error::Several(failed)),
        _ => Err(failed.swap_remove(0)),
    }
}

/// Stops a plan whose creates would meet objects that are not theirs: each provider is asked
/// once for all of its creates, and every object in the way is reported at its resource in the
/// spec, so nothing is changed until the spec or the remote side is fixed.
pub fn obstacles(
    registry: &Registry,
    clients: &Clients,
    spec: &Spec,
    state: &State,
    plan: &Plan,
) -> Result<(), Error> {
    let mut by_provider: BTreeMap<&str, Vec<(&crate::spec::Resource, &Attributes)>> =
        BTreeMap::new();
    for change in plan
        .changes
        .iter()
        // A handover takes over an object the stack holds: nothing foreign is in the way.
        .filter(|c| {
            matches!(c.action, Action::Create | Action::Replace)
                && !c.state_only
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

/// What a plan is asked for, beside the spec and the state.
pub struct Request<'a> {
    pub targets: &'a [String],
    pub refresh: bool,
    /// Ask the providers whether anything not ours is in the way of the creates, so that the
    /// plan stops before anything changes.
    pub obstacles: bool,
    /// Resources adopted by recovery just before, shown as `=`.
    pub adopted: &'a BTreeSet<String>,
    /// A refresh started early, from the state alone: taken instead of reading again if the
    /// spec configures the providers it reads from the same way.
    pub seen: Option<Early>,
}

/// A state read on another thread, as [`read_ahead`] sends it: the stack it was read for, its
/// store, and the state.
pub type Ahead = (String, Box<dyn StateStore>, Result<State, Error>);

/// Reads the state of `stack` from `store` on another thread and, with `refresh`, refreshes it
/// there too from the provider configurations the state records, while the caller parses the
/// spec. The caller uses the state only if the parsed spec names the same stack in the same
/// backend, and the refresh only through [`Request::seen`].
pub fn read_ahead(
    stack: String,
    store: Box<dyn StateStore>,
    context: Context,
    refresh: bool,
) -> (mpsc::Receiver<Ahead>, Early) {
    let (state_tx, state_rx) = mpsc::channel();
    let (configs_tx, configs_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let state = store.load();
        let copy = match &state {
            Ok(state) if refresh => Some(state.clone()),
            _ => None,
        };
        let _ = state_tx.send((stack, store, state));
        if let Some(state) = copy {
            early_refresh(&state, &context, &configs_tx, &seen_tx);
        }
    });
    (
        state_rx,
        Early {
            configs: configs_rx,
            observations: seen_rx,
        },
    )
}

/// A refresh made from the state alone (which records each provider's configuration), on
/// another thread while the spec is parsed. Its configurations come first, so that a plan whose
/// spec configures a provider differently (a new server, say, because the old one is gone)
/// neither waits for it nor uses it.
pub struct Early {
    configs: mpsc::Receiver<BTreeMap<String, Attributes>>,
    observations: mpsc::Receiver<Observations>,
}

impl Early {
    /// What it read, if it read from providers configured exactly as in `configs`.
    fn observations_for(self, configs: &BTreeMap<String, Attributes>) -> Option<Observations> {
        let used = self.configs.recv().ok()?;
        let same = used
            .iter()
            .all(|(name, config)| configs.get(name) == Some(config));
        if same {
            self.observations.recv().ok()
        } else {
            None
        }
    }
}

/// Sends the configurations the refresh uses, then what it read; sends nothing (the plan then
/// refreshes as usual) where it cannot be made from the state alone.
fn early_refresh(
    state: &State,
    context: &Context,
    configs_tx: &mpsc::Sender<BTreeMap<String, Attributes>>,
    seen_tx: &mpsc::Sender<Observations>,
) {
    if !state.pending.is_empty() || state.resources.is_empty() {
        return;
    }
    let registry = Registry::builtin();
    let Ok(configs) = clients::resolved(&registry, None, state, context) else {
        return;
    };
    let Ok(clients) = clients::connect(&registry, &configs, context) else {
        return;
    };
    if configs_tx.send(configs).is_err() {
        return;
    }
    if let Ok(observations) = refresh(&registry, &clients, state, |_| true) {
        let _ = seen_tx.send(observations);
    }
}

/// The plan for a loaded spec, refreshing first when asked; with the provider clients when it
/// needed them (to refresh or to look for obstacles), for an apply to use.
pub fn plan(
    registry: &Registry,
    loaded: &Loaded,
    state: &State,
    context: &Context,
    request: Request<'_>,
) -> Result<(Plan, Option<Clients>), Error> {
    // Planned against the state as the spec's moves leave it; the apply makes them first.
    let moves = plan::moved::pending(&loaded.spec, state)?;
    let state = &*plan::moved::view(state, &moves);
    let targets = request.targets;
    let wanted = |name: &str| {
        targets.is_empty()
            || targets.iter().any(|t| crate::template::covers(t, name))
            || loaded.spec.resource(name).is_some()
    };
    // Outputs derived from secrets are recorded by their hash: what refers to them needs the
    // objects read, even without a refresh.
    let hidden = if request.refresh {
        Default::default()
    } else {
        plan::hidden_outputs_referred_to(&loaded.spec, state)
    };
    let (clients, observed) = if request.refresh || request.obstacles || !hidden.is_empty() {
        let configs = clients::resolved(registry, Some(loaded.configuration()), state, context)?;
        let clients = clients::connect(registry, &configs, context)?;
        let early = match request.seen {
            Some(early) if request.refresh => early.observations_for(&configs),
            _ => None,
        };
        let observed = match early {
            _ if !request.refresh => None,
            // Read with the same configuration of every provider it read from: as good as new.
            Some(mut observations) => {
                for m in &moves {
                    if let Some(seen) = observations.remove(&m.from) {
                        observations.insert(m.to.clone(), seen);
                    }
                }
                observations.retain(|name, _| wanted(name));
                Some(observations)
            }
            None => Some(refresh(registry, &clients, state, wanted)?),
        };
        (Some(clients), observed)
    } else {
        (None, None)
    };
    let read = match &clients {
        Some(clients) if !hidden.is_empty() => {
            let read = refresh(registry, clients, state, |name| hidden.contains(name))?;
            let unreadable =
                plan::unreadable_hidden_outputs(state, &read, &loaded.secrets, &hidden);
            if !unreadable.is_empty() {
                let (was, its, it) = match unreadable.len() {
                    1 => ("was", "its", "it"),
                    _ => ("were", "their", "them"),
                };
                return Err(Error::Usage(format!(
                    "{} {was} changed or deleted outside fabrik, and the spec refers to {its} outputs that derive from secrets, which the state keeps by their hash only; run with --refresh to put {it} back",
                    list(&unreadable),
                )));
            }
            Some(read)
        }
        _ => None,
    };
    let mut plan = plan::plan(&plan::Input {
        spec: &loaded.spec,
        graph: &loaded.graph,
        registry,
        state,
        secrets: &loaded.secrets,
        sensitive: &loaded.sensitive,
        targets,
        observed: observed.as_ref(),
        read: observed.as_ref().or(read.as_ref()),
        adopted: request.adopted,
        context,
    })?;
    plan::moved::refuse_marker_clashes(&loaded.spec, state, registry, &plan)?;
    plan.summary.moved = moves.len();
    plan.moves = moves;
    if let Some(clients) = clients.as_ref().filter(|_| request.obstacles) {
        obstacles(registry, clients, &loaded.spec, state, &plan)?;
    }
    Ok((plan, clients))
}

/// `a`, `a` and `b`, `a`, `b` and `c`: resource names for a message.
fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}
