//! `fabrik output [NAME[.ATTR]] [--json | --raw]`: the outputs of applied resources. An output derived from a secret is kept
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
    // Resource names hold no `.` (see `spec::valid_name`), so `NAME.ATTR` splits at the first;
    // an instance's key may (`NAME[example.com].ATTR`), so after its `]`.
    let split = |n: &str| -> (usize, usize) {
        let from = n.find(']').unwrap_or(0);
        n[from..]
            .find('.')
            .map_or((n.len(), n.len()), |i| (from + i, from + i + 1))
    };
    let (name, attr) = match args.name.as_deref().map(|n| {
        let (end, start) = split(n);
        (&n[..end], &n[start..])
    }) {
        Some((name, "")) => (Some(name), None),
        Some((name, attr)) => (Some(name), Some(attr)),
        None => (None, None),
    };
    if args.raw && attr.is_none() {
        return Err(Error::Usage(
            "--raw prints one value: name it as `fabrik output NAME.ATTR --raw`".into(),
        ));
    }
    let outputs: BTreeMap<&str, &Attributes> = match name {
        Some(name) => {
            let r = state
                .resources
                .get(name)
                .ok_or_else(|| crate::state::not_tracked(name, &state.stack))?;
            BTreeMap::from([(name, &r.outputs)])
        }
        None => state
            .resources
            .iter()
            .map(|(n, r)| (n.as_str(), &r.outputs))
            .collect(),
    };
    if let (Some(name), Some(attr)) = (name, attr) {
        let value = outputs[name].get(attr).ok_or_else(|| {
            let known: Vec<String> = outputs[name].keys().map(|k| format!("`{k}`")).collect();
            Error::Usage(format!(
                "`{name}` has no output `{attr}`; its outputs are {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        let sensitive = crate::secrets::is_masked(value);
        if args.raw {
            if sensitive {
                return Err(Error::Usage(format!(
                    "`{name}.{attr}` is derived from a secret: the state keeps only its keyed hash, so there is no value to print"
                )));
            }
            match value {
                Value::String(text) => outln!("{text}"),
                other => outln!("{}", render::value(other)),
            }
        } else if args.json {
            let shown = if sensitive {
                Value::String("(sensitive)".into())
            } else {
                value.clone()
            };
            outln!(
                "{}",
                serde_json::to_string_pretty(&shown).expect("outputs serialize")
            );
        } else if sensitive {
            outln!("{name}.{attr} = (sensitive)");
        } else {
            outln!("{name}.{attr} = {}", render::value(value));
        }
        return Ok(0);
    }
    if args.json {
        let json = match name {
            Some(name) => serde_json::to_string_pretty(&shown(outputs[name])),
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
