//! `fabrik output`: the outputs of applied resources.

use std::collections::BTreeMap;

use super::Globals;
use crate::cli::OutputArgs;
use crate::error::Error;
use crate::render;

pub fn run(globals: &Globals, args: OutputArgs) -> Result<i32, Error> {
    let state = globals.store_for(&args.stack)?.load()?;
    let outputs: BTreeMap<&str, &fabrik_provider::Attributes> = match &args.name {
        Some(name) => {
            let r = state.resources.get(name).ok_or_else(|| {
                Error::Usage(format!(
                    "`{name}` is not tracked in the state of stack `{}`",
                    state.stack
                ))
            })?;
            BTreeMap::from([(name.as_str(), &r.outputs)])
        }
        None => state
            .resources
            .iter()
            .map(|(n, r)| (n.as_str(), &r.outputs))
            .collect(),
    };
    if args.json {
        let json = match &args.name {
            Some(name) => serde_json::to_string_pretty(outputs[name.as_str()]),
            None => serde_json::to_string_pretty(&outputs),
        };
        outln!("{}", json.expect("outputs serialize"));
    } else {
        for (name, attrs) in outputs {
            for (attr, value) in attrs {
                outln!("{name}.{attr} = {}", render::value(value));
            }
        }
    }
    Ok(0)
}
