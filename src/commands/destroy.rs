//! `fabrik destroy`: deletes what the state records, in reverse dependency order. Works from the
//! state alone, so a deleted spec does not orphan anything.

use std::time::Instant;

use super::{Globals, confirm};
use crate::cli::DestroyArgs;
use crate::error::Error;
use crate::executor::Executor;
use crate::plan;
use crate::recover::Notes;
use crate::registry::Registry;
use crate::render::Lines;
use crate::stack::{Loaded, load_structure, share_key};
use crate::state::backend::only_stack;

pub fn run(globals: &Globals, args: DestroyArgs) -> Result<i32, Error> {
    let registry = Registry::builtin();
    let loaded = if args.spec.exists() {
        let mut loaded = load_structure(&args.spec, &registry)?;
        // Secrets configure providers; a destroy must still work when a required one is gone,
        // with the configurations recorded at the last apply.
        if loaded
            .resolve_secrets(&globals.backend.state_dir(&args.spec))
            .is_err()
        {
            loaded.secrets = Default::default();
        }
        Some(loaded)
    } else {
        None
    };
    let backend = globals
        .backend
        .backend(&args.spec, loaded.as_ref().map(|l| &l.spec))?;
    let stack = match (&args.stack, &loaded) {
        (Some(stack), _) => stack.clone(),
        (None, Some(l)) => l.spec.stack.clone(),
        (None, None) => only_stack(&backend, &args.spec)?,
    };
    let store = backend.store(&stack)?;
    let _lock = store.lock(&globals.command_line)?;
    let mut state = store.load()?;
    let mut loaded = loaded.filter(|l| l.spec.stack == stack);
    if let Some(loaded) = &mut loaded {
        share_key(loaded, &*store)?;
    }
    let spec = loaded.as_ref().map(|l| &l.spec);
    let context = globals.context(&args.spec);
    crate::recover::settle(
        &registry,
        loaded.as_ref().map(Loaded::configuration),
        &mut state,
        &context,
        Some(&*store),
        Notes::Stdout,
    )?;
    let mut plan = plan::destroy_plan(&state, &args.target)?;

    plan::refuse_protected(&plan, &state, spec)?;
    out!("{}", globals.painter.plan(&plan));
    if !plan.has_changes() {
        return Ok(0);
    }
    if !args.yes {
        confirm("\nDestroy these resources?")?;
    }
    outln!();
    let clients = crate::clients::configure(
        &registry,
        loaded.as_ref().map(Loaded::configuration),
        &state,
        &context,
    )?;
    let progress = Lines::new(globals.painter);
    let no_secrets = crate::secrets::Secrets::default();
    let interrupt = crate::interrupt::install();
    let started = Instant::now();
    let outcome = Executor {
        spec: None,
        registry: &registry,
        clients: &clients,
        store: &*store,
        parallelism: usize::from(args.parallelism),
        rollback: false,
        progress: &progress,
        interrupt: &interrupt,
        context: &context,
        secrets: loaded.as_ref().map_or(&no_secrets, |l| &l.secrets),
    }
    .execute(&mut plan, &mut state)?;
    outln!(
        "\n{}",
        globals.painter.destroy_summary(outcome, started.elapsed())
    );
    Ok(0)
}
