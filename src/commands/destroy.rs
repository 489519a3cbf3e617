//! `fabrik destroy`: deletes what the state records, in reverse dependency order. Works from the
//! state alone, so a deleted spec does not orphan anything.

use std::time::Instant;

use super::{Globals, confirm};
use crate::cli::DestroyArgs;
use crate::error::Error;
use crate::executor::{Executor, Operation};
use crate::plan;
use crate::registry::Registry;
use crate::render::Lines;
use crate::stack::{self, Loaded, Opened};

pub fn run(globals: &Globals, mut args: DestroyArgs) -> Result<i32, Error> {
    if let Some(spec) = args.spec_option.take() {
        args.spec = spec;
    }
    let registry = Registry::builtin();
    let loaded = if args.spec.exists() {
        let mut loaded =
            stack::load_structure(&args.spec, &registry, super::var_sources(&args.vars))?;
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
    let (
        Opened {
            mut state,
            lock: _lock,
            store,
            ..
        },
        loaded,
    ) = stack::open_for_destroy(
        &globals.backend,
        &globals.command_line,
        &registry,
        loaded,
        &args.spec,
        args.stack.as_deref(),
    )?;
    let context = globals.context(&args.spec);
    let mut plan = plan::destroy_plan(&state, &args.target)?;
    plan::refuse_protected(&plan, &state, loaded.as_ref().map(|l| &l.spec))?;
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
        operation: Operation::Destroy,
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
