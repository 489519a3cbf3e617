//! `fabrik state list | show | rm | mv`: look at what is tracked, forget a resource, or rename
//! one.

use super::Globals;
use crate::cli::StateCommand;
use crate::error::Error;
use crate::spec::address::Address;
use crate::state::Backend;
use crate::state::backend;
use crate::state::not_tracked;

pub fn run(globals: &Globals, command: StateCommand) -> Result<i32, Error> {
    match command {
        StateCommand::List(stack) => {
            let stack = stack.into_stack();
            let state = globals
                .backend
                .store_for(&stack.spec(), stack.stack.as_deref())?
                .load()?;
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
        StateCommand::Show { name, mut stack } => {
            let name = own_values(name, 1, &mut stack)?.remove(0);
            let state = globals
                .backend
                .store_for(&stack.spec(), stack.stack.as_deref())?
                .load()?;
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
        StateCommand::Rm { name, mut stack } => {
            let name = own_values(name, 1, &mut stack)?.remove(0);
            let store = globals
                .backend
                .store_for(&stack.spec(), stack.stack.as_deref())?;
            let id = crate::state::forget(store.as_ref(), &name, &globals.command_line)?;
            outln!("Forgot `{name}` ({id}); the object itself was left as it is.");
            Ok(0)
        }
        StateCommand::Mv { names, mut stack } => {
            let mut names = own_values(names, 2, &mut stack)?;
            let (to, from) = (names.remove(1), names.remove(0));
            let [from, to] = [&from, &to].map(|text| {
                Address::parse(text)
                    .map(|a| a.to_string())
                    .map_err(Error::Usage)
            });
            let (from, to) = (from?, to?);
            let store = globals
                .backend
                .store_for(&stack.spec(), stack.stack.as_deref())?;
            let type_name =
                crate::state::rename(store.as_ref(), &from, &to, &globals.command_line)?;
            outln!("Moved `{from}` ({type_name}) to `{to}`; the object itself was left as it is.");
            Ok(0)
        }
        StateCommand::Migrate { to, stack } => migrate(globals, &to, &stack.into_stack()),
    }
}

/// The command's own `names` values out of `[SPEC] VALUES…`, the spec, if given, moved into
/// `stack` ([`crate::cli::leading_spec`]).
fn own_values(
    words: Vec<String>,
    names: usize,
    stack: &mut crate::cli::StackArgs,
) -> Result<Vec<String>, Error> {
    let (spec, values) = crate::cli::leading_spec(words, names, false);
    stack.take_spec(spec).map_err(Error::Usage)?;
    Ok(values)
}

/// Moves the stack's state to the backend `to` ([`backend::migrate`]) and says where it went.
fn migrate(globals: &Globals, to: &str, stack: &crate::cli::StackArgs) -> Result<i32, Error> {
    let source = globals
        .backend
        .store_for(&stack.spec(), stack.stack.as_deref())?;
    let local_dir = globals.backend.state_dir(&stack.spec());
    let backend::Migrated { state, to, old } =
        backend::migrate(&*source, to, &globals.command_line, &local_dir)?;
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
        to.describe(),
    );
    outln!(
        "{}",
        match &to {
            Backend::Postgres(_) =>
                "Point the spec at it with `backend: { postgres: { url: \"${secret.STATE_DB_URL}\" } }` (the URL in that secret), or pass --backend / FABRIK_BACKEND.",
            Backend::Dir(_) =>
                "Remove the spec's `backend:` block, or pass --state-dir, to use it.",
        }
    );
    Ok(0)
}
