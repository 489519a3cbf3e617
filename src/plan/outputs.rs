//! Stack outputs (`outputs:` in the spec): what a plan shows of them ([`planned`]), what a
//! successful apply records ([`recorded`]) and how `fabrik output` works a sensitive one out
//! again ([`shown_again`]).
//!
//! An output is worked out from the resources as the state records them: an input field's
//! recorded value, or an output the provider reported. At plan time a resource this plan
//! changes gives its input fields as planned and its outputs as unknown (`(known after
//! apply)`). A sensitive output is kept by its keyed hash only, beside its expression with the
//! secrets and environment variables left as references (see [`crate::state::OutputState`]).

use std::cell::Cell;
use std::collections::BTreeMap;

use fabrik_provider::Value;
use serde::{Deserialize, Serialize};

use super::{Action, Input};
use crate::error::Error;
use crate::registry::Registry;
use crate::resolve::{self, Inputs};
use crate::secrets::Secrets;
use crate::spec::{Expr, ExprKind, OutputDecl, Spec};
use crate::state::{OutputState, ResourceState, State};
use crate::template::{Part, Reference};

/// An output that an apply of the plan adds, changes or removes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChange {
    pub name: String,
    /// `create`, `update` or `delete`.
    pub action: Action,
    /// The recorded value (a keyed hash when sensitive); absent for a new output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after the apply (a keyed hash when sensitive); absent when removed or not
    /// known until the apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_unknown: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// A resource attribute as the state records it: an input field's value (absent: null) or an
/// output the provider reported.
fn attribute(registry: &Registry, record: &ResourceState, attr: &str) -> Option<Value> {
    let is_field = registry
        .resource_type(&record.type_name)
        .is_some_and(|ty| ty.field(attr).is_some());
    if is_field {
        Some(record.inputs.get(attr).cloned().unwrap_or(Value::Null))
    } else {
        record.outputs.get(attr).cloned()
    }
}

/// The outputs that change if the plan is applied, in name order, and what a saved plan binds
/// of each (its expression with what is known put in, secrets by their keyed hash).
pub(super) fn planned(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
) -> (Vec<OutputChange>, BTreeMap<String, (Value, bool)>) {
    let Input {
        spec,
        registry,
        state,
        secrets,
        sensitive,
        ..
    } = *input;
    // Set when an output needs a resource this plan leaves as it is and the state does not
    // hold (a `--target` left it out): the apply cannot work the output out, and keeps it.
    let left_out = Cell::new(false);
    let lookup = |reference: &Reference| -> Option<Value> {
        let Reference::Resource { name, attr } = reference else {
            return resolve::context_value(spec, secrets, reference);
        };
        let j = spec.index_of(name)?;
        let (inputs, stable) = planned[j].as_ref()?;
        if *stable {
            let Some(record) = state.resources.get(name) else {
                left_out.set(true);
                return None;
            };
            return attribute(registry, record, attr);
        }
        let ty = registry.resource_type(&spec.resources[j].type_name)?;
        // An output of a resource that changes is known only once it has.
        ty.field(attr)?;
        // As the state will record it: a secret by its keyed hash.
        match inputs.get(attr) {
            Some(Some(v)) if sensitive[j].contains(attr) => Some(Value::String(secrets.mask(v))),
            Some(v) => v.clone(),
            None => Some(Value::Null),
        }
    };
    let mut changes = Vec::new();
    let mut bound = BTreeMap::new();
    let mut declared: Vec<&OutputDecl> = spec.outputs.iter().collect();
    declared.sort_by(|a, b| a.name.cmp(&b.name));
    for output in declared {
        left_out.set(false);
        let after = resolve::eval(&output.value, &lookup).map(|v| stored(output, v, secrets));
        // Reads every reference, where `eval` stops at the first unknown one.
        let written = resolve::eval_written(&output.value, &lookup);
        // As [`recorded`] does at the end of the apply.
        let kept = after.is_none() && left_out.get();
        let written = if output.sensitive {
            Value::String(secrets.mask(&written))
        } else {
            written
        };
        bound.insert(output.name.clone(), (written, output.sensitive));
        if kept {
            continue;
        }
        let before = state.outputs.get(&output.name);
        let action = match (before, &after) {
            (None, _) => Action::Create,
            (Some(b), Some(a)) if b.value == *a && b.sensitive == output.sensitive => continue,
            (Some(_), _) => Action::Update,
        };
        changes.push(OutputChange {
            name: output.name.clone(),
            action,
            before: before.map(|b| b.value.clone()),
            after_unknown: after.is_none(),
            after,
            sensitive: output.sensitive,
        });
    }
    for (name, before) in state
        .outputs
        .iter()
        .filter(|(name, _)| spec.output(name).is_none())
    {
        changes.push(removed(name, before));
    }
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    (changes, bound)
}

/// The removal of a recorded output.
pub(super) fn removed(name: &str, before: &OutputState) -> OutputChange {
    OutputChange {
        name: name.to_string(),
        action: Action::Delete,
        before: Some(before.value.clone()),
        after: None,
        after_unknown: false,
        sensitive: before.sensitive,
    }
}

/// A value as the state keeps it: by its keyed hash when the output is sensitive.
fn stored(output: &OutputDecl, value: Value, secrets: &Secrets) -> Value {
    if output.sensitive {
        Value::String(secrets.mask(&value))
    } else {
        let mut value = value;
        // A secret a provider echoed into an attribute is not shown through an output either.
        crate::redact::redact_value(&mut value);
        value
    }
}

/// The outputs as the state is to keep them after a successful apply, worked out from the
/// resources it records. An output that cannot be worked out (it refers to a resource a
/// targeted apply left out) keeps its record, if it has one; outputs gone from the spec go.
pub fn recorded(
    spec: &Spec,
    registry: &Registry,
    state: &State,
    secrets: &Secrets,
) -> BTreeMap<String, OutputState> {
    let lookup = |reference: &Reference| -> Option<Value> {
        match reference {
            Reference::Resource { name, attr } => {
                attribute(registry, state.resources.get(name)?, attr)
            }
            other => resolve::context_value(spec, secrets, other),
        }
    };
    let mut outputs = BTreeMap::new();
    for output in &spec.outputs {
        let kept = match resolve::eval(&output.value, &lookup) {
            Some(value) => OutputState {
                value: stored(output, value, secrets),
                sensitive: output.sensitive,
                written: output
                    .sensitive
                    .then(|| written_again(spec, &output.value, &lookup))
                    .flatten(),
            },
            None => match state.outputs.get(&output.name) {
                Some(before) => before.clone(),
                None => continue,
            },
        };
        outputs.insert(output.name.clone(), kept);
    }
    outputs
}

/// A sensitive output's expression with everything put in but `${secret.X}` and `${env.X}`,
/// which stay as written: no secret value is in it. `None` when it uses a sensitive variable
/// (its value is given per run) or a resource attribute kept by its keyed hash.
fn written_again(
    spec: &Spec,
    expr: &Expr,
    lookup: &dyn Fn(&Reference) -> Option<Value>,
) -> Option<Value> {
    let impossible = Cell::new(false);
    let keep = |reference: &Reference| -> Option<Value> {
        match reference {
            Reference::Secret(_) | Reference::Env(_) => None,
            Reference::Var(name) if spec.var(name).is_some_and(|d| d.sensitive) => {
                impossible.set(true);
                None
            }
            other => {
                let value = lookup(other);
                if value.as_ref().is_none_or(crate::secrets::is_masked) {
                    impossible.set(true);
                }
                value
            }
        }
    };
    let written = written(expr, &keep);
    (!impossible.get()).then_some(written)
}

/// [`resolve::eval_written`], except that a lone reference keeps its value's kind.
fn written(expr: &Expr, lookup: &dyn Fn(&Reference) -> Option<Value>) -> Value {
    match &expr.kind {
        ExprKind::Str(parts) => match parts.as_slice() {
            [Part::Ref(r)] => match lookup(r) {
                Some(Value::String(s)) => Value::String(s.replace("${", "$${")),
                Some(other) => other,
                None => Value::String(r.written()),
            },
            _ => resolve::eval_written(expr, lookup),
        },
        ExprKind::List(items) => Value::Array(items.iter().map(|e| written(e, lookup)).collect()),
        ExprKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, e)| (k.name.clone(), written(e, lookup)))
                .collect(),
        ),
        _ => resolve::eval_written(expr, lookup),
    }
}

/// A sensitive output's value worked out again from what the state keeps of it
/// ([`OutputState::written`]), its secrets looked up in the environment and in `dotenv`, its
/// environment variables read again; `key` is the stack's masking key, to check the value is
/// the one the apply recorded.
///
/// # Errors
/// [`Error::Usage`] when the state keeps only the hash, when a secret or environment variable
/// is missing, or when the value worked out is not the one recorded.
pub fn shown_again(
    name: &str,
    output: &OutputState,
    dotenv: &std::path::Path,
    key: Option<&[u8; 32]>,
) -> Result<Value, Error> {
    let Some(written) = &output.written else {
        return Err(Error::Usage(format!(
            "output `{name}` uses a sensitive variable or a sensitive resource attribute: the state keeps only its keyed hash, so there is no value to print"
        )));
    };
    let value = resolve_written(name, written, dotenv)?;
    let matches = key
        .is_some_and(|key| Value::String(crate::secrets::keyed_hash(key, &value)) == output.value);
    if !matches {
        return Err(Error::Usage(format!(
            "output `{name}` is not what the last apply recorded: a secret or environment variable it uses has another value now; set it as it was, or apply again"
        )));
    }
    Ok(value)
}

fn resolve_written(name: &str, written: &Value, dotenv: &std::path::Path) -> Result<Value, Error> {
    Ok(match written {
        Value::String(text) => {
            let parts = crate::template::parse(text).map_err(|_| {
                Error::State(format!("the state's record of output `{name}` is damaged"))
            })?;
            let mut values = Vec::with_capacity(parts.len());
            for part in &parts {
                values.push(match part {
                    Part::Text(t) => t.clone(),
                    Part::Ref(Reference::Secret(secret)) => crate::secrets::lookup(secret, dotenv)?
                        .ok_or_else(|| {
                            Error::Usage(format!(
                                "output `{name}` needs secret `{secret}`: set the environment variable `{secret}` or put it in {}",
                                dotenv.display()
                            ))
                        })?
                        .expose()
                        .to_string(),
                    Part::Ref(Reference::Env(env)) => env.value().map_err(|_| {
                        Error::Usage(format!(
                            "output `{name}` needs the environment variable `{}`",
                            env.name
                        ))
                    })?,
                    Part::Ref(other) => other.written(),
                });
            }
            Value::String(values.concat())
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_written(name, v, dotenv))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), resolve_written(name, v, dotenv)?)))
                .collect::<Result<_, Error>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensitive_output_is_worked_out_again_and_shown_only_if_it_is_the_one_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "FABRIK_TEST_OUTPUT_PASS=from-dotenv-123\n").unwrap();
        let key = [7u8; 32];
        // A literal `${` is kept escaped, and values of other kinds as they are.
        let real = serde_json::json!(["u:from-dotenv-123@h/${x}", 8080]);
        let mut output = OutputState {
            value: Value::String(crate::secrets::keyed_hash(&key, &real)),
            sensitive: true,
            written: Some(serde_json::json!([
                "u:${secret.FABRIK_TEST_OUTPUT_PASS}@h/$${x}",
                8080
            ])),
        };
        let shown = shown_again("dsn", &output, &dotenv, Some(&key)).unwrap();
        assert_eq!(shown, real);

        let other_key = [8u8; 32];
        let err = shown_again("dsn", &output, &dotenv, Some(&other_key)).unwrap_err();
        assert!(
            err.to_string().contains("not what the last apply recorded"),
            "{err}"
        );
        let err = shown_again("dsn", &output, &dir.path().join("none"), Some(&key)).unwrap_err();
        assert!(
            err.to_string()
                .contains("needs secret `FABRIK_TEST_OUTPUT_PASS`"),
            "{err}"
        );
        output.written = None;
        let err = shown_again("dsn", &output, &dotenv, Some(&key)).unwrap_err();
        assert!(err.to_string().contains("no value to print"), "{err}");
    }
}
