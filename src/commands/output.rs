//! `fabrik output [NAME[.ATTR]] [--json | --raw] [--show-sensitive]`: the stack's outputs
//! (`outputs:` in the spec, recorded by the last apply), or the outputs of applied resources.
//! `fabrik output` lists the stack's outputs when it has any, else every resource's.
//!
//! A sensitive stack output is kept by its keyed hash; `--show-sensitive` and `--raw` work its
//! value out again from the secrets and environment variables it uses (see
//! `src/plan/outputs.rs`). A resource output derived from a secret is kept by its keyed hash
//! only, and shows as `(sensitive)`.

use std::collections::BTreeMap;

use fabrik_provider::{Attributes, Value};

use super::Globals;
use crate::cli::OutputArgs;
use crate::error::Error;
use crate::render;
use crate::state::{OutputState, State, StateStore};

pub fn run(globals: &Globals, mut args: OutputArgs) -> Result<i32, Error> {
    let (spec, mut name) = crate::cli::leading_spec(std::mem::take(&mut args.words), 1, true);
    args.stack.take_spec(spec).map_err(Error::Usage)?;
    args.name = name.pop();
    let store = globals
        .backend
        .store_for(&args.stack.spec(), args.stack.stack.as_deref())?;
    let state = store.load()?;
    // A state never written (no lineage) means nothing was ever applied; a stack destroyed
    // since keeps its state and lists no outputs, as before.
    if state.lineage.is_empty() && state.resources.is_empty() && state.outputs.is_empty() {
        return Err(Error::Usage(format!(
            "nothing is applied to stack `{}` yet (it has no state), so there are no outputs; run `fabrik apply` first",
            state.stack
        )));
    }
    let stack_output = match args.name.as_deref() {
        None => !state.outputs.is_empty(),
        Some(name) => state.outputs.contains_key(name),
    };
    if stack_output {
        return stack_outputs(globals, &args, &*store, &state);
    }
    // Resource names hold no `.` (see `spec::valid_name`), so `NAME.ATTR` splits at the first;
    // an instance's key may (`NAME[example.com].ATTR`), so after its `]`.
    let split = |n: &str| -> (usize, usize) {
        let from = n.find(']').unwrap_or(0);
        n[from..]
            .find('.')
            .map_or((n.len(), n.len()), |i| (from + i, from + i + 1))
    };
    if let Some(name) = args.name.as_deref() {
        let resource = &name[..split(name).0];
        if !state.resources.contains_key(resource) && !state.outputs.is_empty() {
            return Err(unknown(name, &state));
        }
    }
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

/// A name that is neither an output nor a resource of a stack that has outputs.
fn unknown(name: &str, state: &State) -> Error {
    let names = state
        .outputs
        .keys()
        .chain(state.resources.keys())
        .map(String::as_str);
    let hint = match crate::source::closest(name, names) {
        Some(best) => format!("; did you mean `{best}`?"),
        None => {
            let outputs: Vec<String> = state.outputs.keys().map(|k| format!("`{k}`")).collect();
            format!("; its outputs are {}", outputs.join(", "))
        }
    };
    Error::Usage(format!(
        "`{name}` is neither an output nor a resource of stack `{}`{hint}",
        state.stack
    ))
}

/// The stack's outputs: all of them, or the one `args.name` names.
fn stack_outputs(
    globals: &Globals,
    args: &OutputArgs,
    store: &dyn StateStore,
    state: &State,
) -> Result<i32, Error> {
    if args.raw && args.name.is_none() {
        return Err(Error::Usage(
            "--raw prints one value: name it as `fabrik output NAME --raw`".into(),
        ));
    }
    let chosen: Vec<(&String, &OutputState)> = match args.name.as_deref() {
        Some(name) => vec![
            state
                .outputs
                .get_key_value(name)
                .expect("checked by the caller"),
        ],
        None => state.outputs.iter().collect(),
    };
    // A value is worked out again only when it is to be printed.
    let reveal = args.raw || args.show_sensitive;
    let mut key = None;
    let mut hidden = std::collections::BTreeSet::new();
    let mut shown: Vec<(&str, Value)> = Vec::with_capacity(chosen.len());
    for (name, output) in chosen {
        let value = if output.sensitive && reveal {
            if key.is_none() {
                key = Some(masking_key(globals, args, store, &state.stack)?);
            }
            let dotenv = crate::secrets::dotenv_path(&args.stack.spec());
            match crate::plan::outputs::shown_again(name, output, &dotenv, key.flatten().as_ref()) {
                Ok(value) => value,
                // Listing them all, one that cannot be shown does not hide the others.
                Err(e) if args.name.is_none() => {
                    eprintln!("{}", crate::redact::redact(&format!("note: {e}")));
                    hidden.insert(name.as_str());
                    Value::String("(sensitive)".into())
                }
                Err(e) => return Err(e),
            }
        } else if output.sensitive {
            Value::String("(sensitive)".into())
        } else {
            output.value.clone()
        };
        shown.push((name, value));
    }
    let sensitive_shown =
        |name: &str| reveal && state.outputs[name].sensitive && !hidden.contains(name);
    let text = if args.raw {
        match &shown[0].1 {
            Value::String(text) => format!("{text}\n"),
            other => format!("{}\n", render::value(other)),
        }
    } else if args.json {
        let json = if args.name.is_some() {
            serde_json::to_string_pretty(&shown[0].1)
        } else {
            serde_json::to_string_pretty(&shown.iter().cloned().collect::<BTreeMap<_, _>>())
        };
        format!("{}\n", json.expect("outputs serialize"))
    } else {
        let mut text = String::new();
        for (name, value) in &shown {
            let value = if state.outputs[*name].sensitive && !sensitive_shown(name) {
                "(sensitive)".to_string()
            } else {
                render::value(value)
            };
            text.push_str(&format!("{name} = {value}\n"));
        }
        text
    };
    if shown.iter().any(|(name, _)| sensitive_shown(name)) {
        // Asked for by name, a sensitive value is printed as it is: the redaction every other
        // output passes through would hide the very value the user asked to see.
        use std::io::Write as _;
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    } else {
        out!("{text}");
    }
    Ok(0)
}

/// The stack's masking key, to check a value worked out again is the one recorded: the one the
/// backend shares, else the one beside the spec; `None` when there is none yet.
fn masking_key(
    globals: &Globals,
    args: &OutputArgs,
    store: &dyn StateStore,
    stack: &str,
) -> Result<Option<[u8; 32]>, Error> {
    let local = crate::secrets::stack_key(&globals.backend.state_dir(&args.stack.spec()), stack)?;
    if let Some(shared) = store.shared_key(&local.key)? {
        return Ok(Some(shared));
    }
    Ok(local.unsaved.is_none().then_some(local.key))
}
