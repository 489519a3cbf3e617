//! `fabrik state list | show | rm`: look at what is tracked, or forget a resource.

use super::Globals;
use crate::cli::StateCommand;
use crate::error::Error;
use crate::state::journal::{Change, Record};

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
            state.apply(&record);
            store.commit(&state)?;
            outln!("Forgot `{name}` ({id}); the object itself was left as it is.");
            Ok(0)
        }
    }
}

fn not_tracked(name: &str, stack: &str) -> Error {
    Error::Usage(format!(
        "`{name}` is not tracked in the state of stack `{stack}`"
    ))
}
