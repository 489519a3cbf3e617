//! `fabrik plan`: what apply would change, as text, JSON or a saved plan.

use super::Globals;
use crate::cli::PlanArgs;
use crate::error::Error;
use crate::recover::Notes;
use crate::refresh::{self, Request};
use crate::registry::Registry;
use crate::stack;
use crate::state::backend::stack_line;

pub fn run(globals: &Globals, mut args: PlanArgs) -> Result<i32, Error> {
    if let Some(spec) = args.spec_option.take() {
        args.spec = spec;
    }
    let registry = Registry::builtin();
    // Reading a large state takes as long as a fifth of the plan: it starts on the other core
    // while the spec is parsed, for the stack the spec's `stack:` line names. Only a state of
    // the stack the parsed spec really names is used.
    // The early read goes to the backend known before parsing; it is used only when the spec
    // names no other. A refresh can start there too, from the state's record of each provider.
    let early = stack_line(&args.spec).and_then(|stack| {
        let store = globals.backend.store(&args.spec, None, &stack).ok()?;
        let context = globals.context(&args.spec);
        Some(refresh::read_ahead(stack, store, context, args.refresh))
    });
    let mut loaded = stack::load_given(&args.spec, &registry, super::var_sources(&args.vars))?;
    loaded.resolve_secrets(&globals.backend.state_dir(&args.spec))?;
    let (early_state, early_seen) = match early {
        Some((state_rx, seen)) => (state_rx.recv().ok(), Some(seen)),
        None => (None, None),
    };
    let (store, mut state, early_seen) = match early_state {
        Some((stack, store, state))
            if stack == loaded.spec.stack && !globals.backend.spec_chooses(&loaded.spec) =>
        {
            (store, state?, early_seen)
        }
        _ => {
            let store =
                globals
                    .backend
                    .store(&args.spec, Some(&loaded.spec), &loaded.spec.stack)?;
            let state = store.load()?;
            (store, state, None)
        }
    };
    stack::share_key(&mut loaded, &*store)?;
    let context = globals.context(&args.spec);
    let adopted = crate::recover::settle(
        &registry,
        Some(loaded.configuration()),
        &mut state,
        &context,
        None,
        Notes::Stderr,
    )?;
    let request = Request {
        targets: &args.target,
        refresh: args.refresh,
        obstacles: args.refresh,
        adopted: &adopted,
        // Recovery may have changed the state the early refresh read.
        seen: early_seen.filter(|_| adopted.is_empty() && state.pending.is_empty()),
    };
    let (plan, _) = refresh::plan(&registry, &loaded, &state, &context, request)?;
    if let Some(out) = &args.out {
        // The saved plan's hashes were made with this key: the apply must find the same one.
        loaded.secrets.save_key()?;
        crate::plan::saved::write(out, &plan)?;
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
