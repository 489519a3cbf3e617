//! `fabrik plan`: what apply would change, as text, JSON or a saved plan.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Globals, Loaded, Notes, configure, load, recover, refresh, write_private};
use crate::cli::PlanArgs;
use crate::error::Error;
use crate::plan::{self, Plan};
use crate::registry::Registry;
use crate::state::State;

pub fn run(globals: &Globals, args: PlanArgs) -> Result<i32, Error> {
    let registry = Registry::builtin();
    // Reading a large state takes as long as a fifth of the plan: it starts on the other core
    // while the spec is parsed, for the stack the spec's `stack:` line names. Only a state of
    // the stack the parsed spec really names is used.
    // The early read goes to the backend known before parsing; it is used only when the spec
    // names no other.
    let early = super::stack_line(&args.spec).and_then(|stack| {
        let store = globals.store(&args.spec, None, &stack).ok()?;
        Some(std::thread::spawn(move || {
            let state = store.load();
            (stack, store, state)
        }))
    });
    let mut loaded = load(&args.spec, &registry)?;
    loaded.resolve_secrets(&globals.state_dir(&args.spec))?;
    let (store, mut state) = match early.map(|handle| handle.join()) {
        Some(Ok((stack, store, state)))
            if stack == loaded.spec.stack && !globals.spec_chooses_backend(&loaded.spec) =>
        {
            (store, state?)
        }
        _ => {
            let store = globals.store(&args.spec, Some(&loaded.spec), &loaded.spec.stack)?;
            let state = store.load()?;
            (store, state)
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
    };
    let plan = compute(globals, &registry, &loaded, &state, request)?;
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
}

/// The plan for a loaded spec, refreshing first when asked.
pub fn compute(
    globals: &Globals,
    registry: &Registry,
    loaded: &Loaded,
    state: &State,
    request: Request<'_>,
) -> Result<Plan, Error> {
    let targets = request.targets;
    let clients = if request.refresh || request.obstacles {
        Some(configure(
            registry,
            Some(loaded),
            state,
            &globals.context(request.spec_path),
        )?)
    } else {
        None
    };
    let observed = match &clients {
        Some(clients) if request.refresh => Some(refresh(registry, clients, state, |name| {
            targets.is_empty()
                || targets.iter().any(|t| t == name)
                || loaded.spec.resource(name).is_some()
        })?),
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
        adopted: request.adopted,
    })?;
    if let Some(clients) = clients.as_ref().filter(|_| request.obstacles) {
        super::obstacles(registry, clients, &loaded.spec, state, &plan)?;
    }
    Ok(plan)
}
