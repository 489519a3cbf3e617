//! `fabrik plan`: what apply would change, as text, JSON or a saved plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc;

use super::{
    Globals, Loaded, Notes, clients, load, provider_configs, recover, refresh, write_private,
};
use crate::cli::PlanArgs;
use crate::error::Error;
use crate::executor::Clients;
use crate::plan::{self, Observations, Plan};
use crate::registry::Registry;
use crate::state::State;
use fabrik_provider::{Attributes, Context};

pub fn run(globals: &Globals, args: PlanArgs) -> Result<i32, Error> {
    let registry = Registry::builtin();
    // Reading a large state takes as long as a fifth of the plan: it starts on the other core
    // while the spec is parsed, for the stack the spec's `stack:` line names. Only a state of
    // the stack the parsed spec really names is used.
    // The early read goes to the backend known before parsing; it is used only when the spec
    // names no other. A refresh can start there too, from the state's record of each provider.
    let early = super::stack_line(&args.spec).and_then(|stack| {
        let store = globals.store(&args.spec, None, &stack).ok()?;
        let context = globals.context(&args.spec);
        let refresh = args.refresh;
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
        Some((
            state_rx,
            Early {
                configs: configs_rx,
                observations: seen_rx,
            },
        ))
    });
    let mut loaded = load(&args.spec, &registry)?;
    loaded.resolve_secrets(&globals.state_dir(&args.spec))?;
    let (early_state, early_seen) = match early {
        Some((state_rx, seen)) => (state_rx.recv().ok(), Some(seen)),
        None => (None, None),
    };
    let (store, mut state, early_seen) = match early_state {
        Some((stack, store, state))
            if stack == loaded.spec.stack && !globals.spec_chooses_backend(&loaded.spec) =>
        {
            (store, state?, early_seen)
        }
        _ => {
            let store = globals.store(&args.spec, Some(&loaded.spec), &loaded.spec.stack)?;
            let state = store.load()?;
            (store, state, None)
        }
    };
    super::share_key(&mut loaded, &*store)?;
    let context = globals.context(&args.spec);
    let adopted = recover(
        &registry,
        Some(&loaded),
        &mut state,
        &context,
        None,
        Notes::Stderr,
    )?;
    let request = Request {
        spec_path: &args.spec,
        targets: &args.target,
        refresh: args.refresh,
        obstacles: args.refresh,
        adopted: &adopted,
        // Recovery may have changed the state the early refresh read.
        seen: early_seen.filter(|_| adopted.is_empty() && state.pending.is_empty()),
    };
    let (plan, _) = compute(globals, &registry, &loaded, &state, request)?;
    if let Some(out) = &args.out {
        // The saved plan's hashes were made with this key: the apply must find the same one.
        loaded.secrets.save_key()?;
        let bytes = serde_json::to_vec_pretty(&plan).expect("plans serialize");
        write_private(out, &bytes)?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("plans serialize")
        );
    } else {
        out!("{}", globals.painter.plan(&plan));
        if let Some(out) = &args.out {
            outln!(
                "\nSaved the plan to {}. Apply exactly this plan with `fabrik apply {}`.",
                out.display(),
                out.display()
            );
        }
    }
    let code = if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    };
    // The process ends right after this: freeing a large stack's trees one node at a time
    // would cost more than planning it.
    std::mem::forget((loaded, state, plan));
    Ok(code)
}

/// What a plan is asked for, beside the spec and the state.
pub struct Request<'a> {
    pub spec_path: &'a Path,
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
    let Ok(configs) = provider_configs(&registry, None, state, context) else {
        return;
    };
    let Ok(clients) = clients(&registry, &configs, context) else {
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
pub fn compute(
    globals: &Globals,
    registry: &Registry,
    loaded: &Loaded,
    state: &State,
    request: Request<'_>,
) -> Result<(Plan, Option<Clients>), Error> {
    let targets = request.targets;
    let wanted = |name: &str| {
        targets.is_empty()
            || targets.iter().any(|t| t == name)
            || loaded.spec.resource(name).is_some()
    };
    let context = globals.context(request.spec_path);
    // Outputs derived from secrets are recorded by their hash: what refers to them needs the
    // objects read, even without a refresh.
    let hidden = match request.refresh {
        true => Default::default(),
        false => plan::hidden_outputs_referred_to(&loaded.spec, state),
    };
    let (clients, observed) = if request.refresh || request.obstacles || !hidden.is_empty() {
        let configs = provider_configs(registry, Some(loaded), state, &context)?;
        let clients = clients(registry, &configs, &context)?;
        let early = match request.seen {
            Some(early) if request.refresh => early.observations_for(&configs),
            _ => None,
        };
        let observed = match early {
            _ if !request.refresh => None,
            // Read with the same configuration of every provider it read from: as good as new.
            Some(mut observations) => {
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
    let plan = plan::plan(&plan::Input {
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
        context: &context,
    })?;
    if let Some(clients) = clients.as_ref().filter(|_| request.obstacles) {
        super::obstacles(registry, clients, &loaded.spec, state, &plan)?;
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
