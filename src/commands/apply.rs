//! `fabrik apply`: plan, confirm, execute, summarize. Also applies a saved plan, after checking
//! it still matches the spec and the state.

use std::path::PathBuf;
use std::time::Instant;

use super::{Globals, confirm};
use crate::cli::ApplyArgs;
use crate::error::Error;
use crate::executor::{Executor, Operation};
use crate::plan::saved::{self as saved_plan, staleness};
use crate::refresh::Request;
use crate::registry::Registry;
use crate::render::Lines;
use crate::stack::{self, Opened};

pub fn run(globals: &Globals, mut args: ApplyArgs) -> Result<i32, Error> {
    if let Some(spec) = args.spec_option.take() {
        args.spec = spec;
    }
    // A missing file is reported by the spec loader, in the same words as for `plan`.
    let saved = if args.spec.exists() {
        saved_plan::read(&args.spec)?
    } else {
        None
    };
    if let Some(saved) = &saved {
        if saved.destroy {
            return Err(Error::Usage(format!(
                "{} is a destroy plan; run `fabrik destroy` instead",
                args.spec.display()
            )));
        }
        if !args.target.is_empty() || args.refresh.is_some() {
            return Err(Error::Usage(
                "a saved plan already fixes its targets and refresh; apply it without --target or --refresh".into(),
            ));
        }
    }
    let spec_path = match &saved {
        Some(plan) => PathBuf::from(
            plan.spec
                .as_deref()
                .ok_or_else(|| Error::Usage("the saved plan does not name its spec".into()))?,
        ),
        None => args.spec.clone(),
    };
    let (targets, refresh) = match &saved {
        Some(plan) => (plan.targets.clone(), plan.refresh),
        // Refreshing is the default, as the plan's is.
        None => (args.target.clone(), args.refresh.unwrap_or(true)),
    };

    let registry = Registry::builtin();
    let mut loaded = stack::load_given(&spec_path, &registry, super::var_sources(&args.vars))?;
    loaded.resolve_secrets(&globals.backend.state_dir(&spec_path))?;
    let Opened {
        mut state,
        adopted,
        lock: _lock,
        store,
    } = globals.open(&registry, &mut loaded, &spec_path)?;
    let context = globals.context(&spec_path);
    let request = Request {
        targets: &targets,
        refresh,
        obstacles: true,
        adopted: &adopted,
        seen: None,
    };
    let (mut plan, clients) = crate::refresh::plan(&registry, &loaded, &state, &context, request)?;
    if let Some(reason) = saved.as_ref().and_then(|saved| staleness(saved, &plan)) {
        return Err(Error::StalePlan(reason));
    }
    out!("{}", globals.painter.plan(&plan));
    if !plan.has_changes() {
        return Ok(0);
    }
    if saved.is_none() && !args.yes {
        confirm("\nApply these changes?")?;
    }
    outln!();
    let clients = match clients {
        Some(clients) => clients,
        None => crate::clients::configure(
            &registry,
            Some(loaded.configuration()),
            &state,
            &globals.context(&spec_path),
        )?,
    };
    let progress = Lines::new(globals.painter);
    let interrupt = crate::interrupt::install();
    let started = Instant::now();
    let outcome = Executor {
        operation: Operation::Apply(&loaded.spec),
        registry: &registry,
        clients: &clients,
        store: &*store,
        parallelism: usize::from(args.parallelism),
        rollback: !args.no_rollback,
        progress: &progress,
        interrupt: &interrupt,
        context: &context,
        secrets: &loaded.secrets,
    }
    .execute(&mut plan, &mut state)?;
    outln!(
        "\n{}",
        globals.painter.apply_summary(outcome, started.elapsed())
    );
    // The process ends right after this: freeing a large stack's trees one node at a time
    // would only delay the exit. (The lock and the clients are released as usual.)
    std::mem::forget((loaded, state, plan));
    Ok(0)
}
