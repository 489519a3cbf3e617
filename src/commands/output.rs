//! `fabrik output`: the outputs of applied resources. An output derived from a secret is kept
//! by its keyed hash only, and shows as `(sensitive)`.

use std::collections::BTreeMap;

use fabrik_provider::{Attributes, Value};

use super::Globals;
use crate::cli::OutputArgs;
use crate::error::Error;
use crate::render;

pub fn run(globals: &Globals, args: OutputArgs) -> Result<i32, Error> {
    let state = globals
        .backend
        .store_for(&args.stack.spec, args.stack.stack.as_deref())?
        .load()?;
    let outputs: BTreeMap<&str, &Attributes> = match &args.name {
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
            Some(name) => serde_json::to_string_pretty(&shown(outputs[name.as_str()])),
            None => serde_json::to_string_pretty(
                &outputs
                    .iter()
                    .map(|(name, attrs)| (name, shown(attrs)))
                    .collect::<BTreeMap<_, _>>(),
            ),
        };
        outln!("{}", json.expect("outputs serialize"));
    } else {
        for (name, attrs) in outputs {
            for (attr, value) in attrs {
                if crate::secrets::is_masked(value) {
                    outln!("{name}.{attr} = (sensitive)");
                } else {
                    outln!("{name}.{attr} = {}", render::value(value));
                }
            }
        }
    }
    Ok(0)
}

/// Outputs as `--json` shows them: a keyed hash stands for a value derived from a secret and
/// means nothing to anyone but fabrik, so it shows as `"(sensitive)"`, as in plans.
fn shown(outputs: &Attributes) -> Attributes {
    outputs
        .iter()
        .map(|(k, v)| {
            if crate::secrets::is_masked(v) {
                (k.clone(), Value::String("(sensitive)".into()))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}
