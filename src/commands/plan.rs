//! `fabrik plan`: what apply would change, as text, JSON or a saved plan.

use super::{Globals, Loaded, configure, load, refresh, write_private};
use crate::cli::PlanArgs;
use crate::error::Error;
use crate::plan::{self, Plan};
use crate::registry::Registry;
use crate::state::State;

pub fn run(globals: &Globals, args: PlanArgs) -> Result<i32, Error> {
    let registry = Registry::builtin();
    let loaded = load(&args.spec, &registry)?;
    let store = globals.store(&args.spec, &loaded.spec.stack);
    let state = store.load()?;
    let plan = compute(
        globals,
        &registry,
        &loaded,
        &state,
        &args.spec,
        &args.target,
        args.refresh,
    )?;
    if let Some(out) = &args.out {
        let bytes = serde_json::to_vec_pretty(&plan).expect("plans serialize");
        write_private(out, &bytes)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("plans serialize")
        );
    } else {
        print!("{}", globals.painter.plan(&plan));
        if let Some(out) = &args.out {
            println!(
                "\nSaved the plan to {}. Apply exactly this plan with `fabrik apply {}`.",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}

/// The plan for a loaded spec, refreshing first when asked.
pub fn compute(
    globals: &Globals,
    registry: &Registry,
    loaded: &Loaded,
    state: &State,
    spec_path: &std::path::Path,
    targets: &[String],
    with_refresh: bool,
) -> Result<Plan, Error> {
    let observed = if with_refresh {
        let clients = configure(
            registry,
            Some(&loaded.spec),
            state,
            &globals.context(spec_path),
        )?;
        Some(refresh(registry, &clients, state, |name| {
            targets.is_empty()
                || targets.iter().any(|t| t == name)
                || loaded.spec.resource(name).is_some()
        })?)
    } else {
        None
    };
    plan::plan(
        &loaded.spec,
        &loaded.graph,
        registry,
        state,
        targets,
        observed.as_ref(),
    )
}
