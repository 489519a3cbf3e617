//! `fabrik destroy`: deletes what the state records, in reverse dependency order. Works from the
//! state alone, so a deleted spec does not orphan anything.

use std::time::Instant;

use super::{Globals, Notes, configure, confirm, load_structure, only_stack, recover};
use crate::cli::DestroyArgs;
use crate::error::Error;
use crate::executor::{Executor, Operation};
use crate::plan::{self, Action};
use crate::registry::Registry;
use crate::render::Lines;

pub fn run(globals: &Globals, args: DestroyArgs) -> Result<i32, Error> {
    let registry = Registry::builtin();
    let loaded = if args.spec.exists() {
        let mut loaded = load_structure(&args.spec, &registry)?;
        // Secrets configure providers; a destroy must still work when a required one is gone,
        // with the configurations recorded at the last apply.
        if loaded
            .resolve_secrets(&globals.state_dir(&args.spec))
            .is_err()
        {
            loaded.secrets = Default::default();
        }
        Some(loaded)
    } else {
        None
    };
    let backend = globals.backend(&args.spec, loaded.as_ref().map(|l| &l.spec))?;
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
        super::share_key(loaded, &*store)?;
    }
    let spec = loaded.as_ref().map(|l| &l.spec);
    let context = globals.context(&args.spec);
    recover(
        &registry,
        loaded.as_ref(),
        &mut state,
        &context,
        Some(&*store),
        Notes::Stdout,
    )?;
    let mut plan = plan::destroy_plan(&state, &args.target)?;

    let protected: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && c.deposed.is_none())
        // The state's record decides (the spec may be gone, or say `protect: false` that no
        // apply has recorded yet); a spec that asks for protection is heeded too.
        .filter(|c| {
            state.resources.get(&c.name).is_some_and(|r| r.protect)
                || spec
                    .and_then(|s| s.resource(&c.name))
                    .is_some_and(|r| r.protect)
        })
        .map(|c| c.name.as_str())
        .collect();
    if !protected.is_empty() {
        return Err(Error::Usage(format!(
            "refusing to destroy protected resource{} {}: set `protect: false` in the spec and apply that first, or leave {} out with --target",
            if protected.len() == 1 { "" } else { "s" },
            protected
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if protected.len() == 1 { "it" } else { "them" },
        )));
    }
    out!("{}", globals.painter.plan(&plan));
    if !plan.has_changes() {
        return Ok(0);
    }
    if !args.yes {
        confirm("\nDestroy these resources?")?;
    }
    outln!();
    let clients = configure(&registry, loaded.as_ref(), &state, &context)?;
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
