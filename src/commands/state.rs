//! `fabrik state list | show | rm`: look at what is tracked, or forget a resource.

use super::Globals;
use crate::cli::StateCommand;
use crate::error::Error;
use crate::state::journal::{Change, Record};
use crate::state::{Backend, StateStore};

pub fn run(globals: &Globals, command: StateCommand) -> Result<i32, Error> {
    match command {
        StateCommand::List(stack) => {
            let state = globals.store_for(&stack)?.load()?;
            let width = state.resources.keys().map(String::len).max().unwrap_or(0);
            let type_width = state
                .resources
                .values()
                .map(|r| r.type_name.len())
                .max()
                .unwrap_or(0);
            for (name, r) in &state.resources {
                outln!("{name:width$}  {:type_width$}  {}", r.type_name, r.id);
            }
            Ok(0)
        }
        StateCommand::Show { name, stack } => {
            let state = globals.store_for(&stack)?.load()?;
            let resource = state
                .resources
                .get(&name)
                .ok_or_else(|| not_tracked(&name, &state.stack))?;
            outln!(
                "{}",
                serde_json::to_string_pretty(resource).expect("resources serialize")
            );
            Ok(0)
        }
        StateCommand::Rm { name, stack } => {
            let store = globals.store_for(&stack)?;
            let _lock = store.lock(&globals.command_line)?;
            let mut state = store.load()?;
            let resource = state
                .resources
                .get(&name)
                .ok_or_else(|| not_tracked(&name, &state.stack))?;
            let id = resource.id.clone();
            let record = Record {
                serial: state.serial + 1,
                change: Change::Remove { name: name.clone() },
            };
            store.record(std::slice::from_ref(&record))?;
            state.apply(record);
            store.commit(&state)?;
            outln!("Forgot `{name}` ({id}); the object itself was left as it is.");
            Ok(0)
        }
        StateCommand::Migrate { to, stack } => migrate(globals, &to, &stack),
    }
}

/// Copies the state to the backend `to`, reads it back and compares, and only then retires the
/// old copy. Both stores are locked throughout, so no run writes either meanwhile.
fn migrate(globals: &Globals, to: &str, stack: &crate::cli::StackArgs) -> Result<i32, Error> {
    let source = globals.store_for(stack)?;
    let _source_lock = source.lock(&globals.command_line)?;
    let state = source.load()?;
    if state.lineage.is_empty() {
        return Err(Error::Usage(format!(
            "stack `{}` has no state to migrate",
            source.stack()
        )));
    }
    let target_backend = if crate::state::postgres::is_url(to) {
        Backend::Postgres(Box::new(crate::state::postgres::Config::parse(to, None)?))
    } else {
        Backend::Dir(to.into())
    };
    let target = target_backend.store(source.stack())?;
    let _target_lock = target.lock(&globals.command_line)?;
    // A stack moved away from the target earlier may come back: its marker is no obstacle.
    let there = match target.load() {
        Err(Error::Moved { .. }) => crate::state::State::empty(source.stack()),
        other => other?,
    };
    if !there.lineage.is_empty() {
        return Err(Error::Usage(format!(
            "{} already holds a state of stack `{}` (serial {}); nothing was moved",
            target_backend.describe(),
            source.stack(),
            there.serial
        )));
    }
    target.commit(&state)?;
    let copy = target.load()?;
    if copy != state {
        return Err(Error::State(format!(
            "the copy of stack `{}` in {} differs from the original, which stays in use; remove the copy before trying again",
            source.stack(),
            target_backend.describe()
        )));
    }
    carry_key(
        &globals.state_dir(&stack.spec),
        &*source,
        &*target,
        &target_backend,
    )?;
    let old = source.retire(&target_backend.describe())?;
    outln!(
        "Moved stack `{}` (serial {}, {} resource{}{}) to {}; {old}.",
        source.stack(),
        state.serial,
        state.resources.len(),
        if state.resources.len() == 1 { "" } else { "s" },
        match state.pending.len() {
            0 => String::new(),
            n => format!(", {n} open intents"),
        },
        target_backend.describe(),
    );
    outln!(
        "{}",
        match &target_backend {
            Backend::Postgres(_) =>
                "Point the spec at it with `backend: { postgres: { url: \"${secret.STATE_DB_URL}\" } }` (the URL in that secret), or pass --backend / FABRIK_BACKEND.",
            Backend::Dir(_) =>
                "Remove the spec's `backend:` block, or pass --state-dir, to use it.",
        }
    );
    Ok(0)
}

/// Takes the key masking the stack's sensitive inputs along, so that their recorded hashes still
/// match: into the database's key table, or beside the state in a directory.
fn carry_key(
    local_dir: &std::path::Path,
    source: &dyn StateStore,
    target: &dyn StateStore,
    target_backend: &Backend,
) -> Result<(), Error> {
    let stack = source.stack();
    let local = crate::secrets::stack_key(local_dir, stack)?;
    let key = match source.shared_key(&local.key)? {
        Some(shared) => shared,
        None if local.unsaved.is_none() => local.key,
        // Nothing sensitive was ever recorded: no key to carry.
        None => return Ok(()),
    };
    match target_backend {
        Backend::Dir(dir) => {
            let path = dir.join(format!("{stack}.key"));
            if !path.exists() {
                crate::state::file::write_atomically(&path, &key)?;
            }
        }
        Backend::Postgres(_) => {
            target.shared_key(&key)?;
        }
    }
    Ok(())
}

fn not_tracked(name: &str, stack: &str) -> Error {
    Error::Usage(format!(
        "`{name}` is not tracked in the state of stack `{stack}`"
    ))
}
