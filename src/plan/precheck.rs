//! The plan's checks of the values known before any state or secret is read: literal values,
//! `${stack}`, environment variables and the inputs of other resources. Every command that
//! loads a spec (all but `destroy`, which works from the state) runs them before it opens the
//! state, so a value a provider refuses (a file `mode` of "rwx") is reported by `validate` as
//! by `plan` and changes nothing, pointed at where it is written. The plan judges what it
//! learns later (outputs, secrets) the same way.

use std::collections::BTreeSet;

use fabrik_provider::{Attributes, Provider, ResourceType, Value};

use super::Input;
use super::resource::desired;
use crate::graph::Graph;
use crate::registry::Registry;
use crate::resolve::Inputs;
use crate::secrets::Secrets;
use crate::source::{Diagnostic, Loc};
use crate::spec::{Resource, Spec};
use crate::state::State;

/// What the providers find wrong with the values known so far, resource by resource in graph
/// order, as [`super::plan`] evaluates them. Resources whose type or fields are wrong (see
/// [`crate::check::sound`]) are left out, their problems being reported already; what refers
/// to them sees unknown values.
pub fn problems(spec: &Spec, graph: &Graph, registry: &Registry) -> Vec<Diagnostic> {
    let state = State::empty(&spec.stack);
    let secrets = Secrets::default();
    let adopted = BTreeSet::new();
    // Places are not looked at here (see `crate::place`): no directory is needed.
    let context = fabrik_provider::Context {
        base_dir: Default::default(),
        state_dir: Default::default(),
        reserved: Vec::new(),
        // Nothing waits here: no provider is asked to make a call.
        cancel: Default::default(),
    };
    let input = Input {
        spec,
        graph,
        registry,
        state: &state,
        secrets: &secrets,
        sensitive: &[],
        targets: &[],
        observed: None,
        adopted: &adopted,
        context: &context,
        read: None,
    };
    let sound: Vec<bool> = spec
        .resources
        .iter()
        .map(|r| crate::check::sound(r, registry))
        .collect();
    // Without a state, nothing planned is stable: outputs stay unknown.
    let mut planned: Vec<Option<(Inputs, bool)>> = vec![None; spec.resources.len()];
    let mut problems = Vec::new();
    for level in graph.levels() {
        let done = crate::parallel::map(&level, 256, |&i| {
            sound[i].then(|| desired(&input, &planned, i, true))
        });
        for (&i, one) in level.iter().zip(done) {
            let Some((inputs, problem)) = one else {
                continue;
            };
            problems.extend(judged(spec, registry, i, &inputs, problem.as_ref()));
            planned[i] = Some((inputs, false));
        }
    }
    problems
}

/// A provider's objections to resource `i`'s inputs, each at the value it is about. The
/// provider's contract allows any subset of the fields (those not known are absent), which
/// tells where: a field refused on its own is reported there, and set aside; an objection to
/// how the others go together is reported at the field (the last written) without which they
/// pass; what is left, and an objection only to the normal form, at the resource's type.
pub(super) fn located(
    spec: &Spec,
    registry: &Registry,
    i: usize,
    inputs: &Inputs,
    error: &fabrik_provider::Error,
) -> Vec<Diagnostic> {
    let resource: &Resource = &spec.resources[i];
    let Some((provider, ty)) = provider_of(registry, &resource.type_name) else {
        return Vec::new();
    };
    let what = format!("`{}` ({})", resource.name, ty.name);
    let at = |loc, e: &fabrik_provider::Error| Diagnostic::new(loc, format!("{what}: {e}"));
    // The known fields, in file order.
    let mut fields: Vec<(&str, Loc, &Value)> = resource
        .with
        .iter()
        .filter_map(|(key, expr)| {
            let value = inputs.get(&key.name)?.as_ref()?;
            Some((key.name.as_str(), expr.loc, value))
        })
        .collect();
    let attributes = |fields: &[(&str, Loc, &Value)], without: Option<usize>| -> Attributes {
        fields
            .iter()
            .enumerate()
            .filter(|(j, _)| Some(*j) != without)
            .map(|(_, (name, _, value))| (name.to_string(), (*value).clone()))
            .collect()
    };
    let target = fabrik_provider::Target {
        stack: &spec.stack,
        name: &resource.name,
        type_name: ty.name,
    };
    let mut found = Vec::new();
    while let Err(e) = provider.validate(target, &attributes(&fields, None)) {
        let alone = fields
            .iter()
            .enumerate()
            .find_map(|(j, (name, loc, value))| {
                let one = Attributes::from_iter([(name.to_string(), (*value).clone())]);
                provider.validate(target, &one).err().map(|e| (j, *loc, e))
            });
        if let Some((j, loc, e)) = alone {
            found.push(at(loc, &e));
            fields.remove(j);
            continue;
        }
        let culprit = (0..fields.len()).rev().find(|&j| {
            provider
                .validate(target, &attributes(&fields, Some(j)))
                .is_ok()
        });
        match culprit {
            Some(j) => {
                found.push(at(fields[j].1, &e));
                fields.remove(j);
            }
            None => {
                found.push(at(resource.type_loc, &e));
                break;
            }
        }
    }
    if found.is_empty() {
        found.push(at(resource.type_loc, error));
    }
    found
}

/// The most values a message lists; a longer list is for the schema.
const LISTED: usize = 12;

/// Everything wrong with resource `i`'s known inputs: the provider's `error` ([`located`]) and
/// the values outside their field's list ([`Field::one_of`](fabrik_provider::Field)). Where
/// the provider refuses such a value too, its message stays and gains "did you mean";
/// elsewhere the list's own message says what the field takes.
pub(super) fn judged(
    spec: &Spec,
    registry: &Registry,
    i: usize,
    inputs: &Inputs,
    error: Option<&fabrik_provider::Error>,
) -> Vec<Diagnostic> {
    let mut found = error.map_or_else(Vec::new, |e| located(spec, registry, i, inputs, e));
    let resource: &Resource = &spec.resources[i];
    let Some(ty) = registry.resource_type(&resource.type_name) else {
        return found;
    };
    for (key, expr) in &resource.with {
        let Some(field) = ty.field(&key.name) else {
            continue;
        };
        let Some(Some(Value::String(value))) = inputs.get(&key.name) else {
            continue;
        };
        if field.allows(value) {
            continue;
        }
        let suggestion = suggestion(field.one_of, value);
        match found.iter_mut().find(|d| d.loc == expr.loc) {
            Some(d) => {
                if d.help.is_none() {
                    d.help = suggestion;
                }
            }
            None => {
                let what = format!("`{}` ({}): `{}`", resource.name, ty.name, field.name);
                let message = if field.one_of.len() > LISTED {
                    format!(
                        "{what} {value:?} is not one of the {} values it takes (`fabrik schema` lists them)",
                        field.one_of.len()
                    )
                } else {
                    format!(
                        "{what} must be one of {}, not {value:?}",
                        field.one_of.join(", ")
                    )
                };
                let d = Diagnostic::new(expr.loc, message);
                found.push(match suggestion {
                    Some(help) => d.help(help),
                    None => d,
                });
            }
        }
    }
    found
}

/// "did you mean `AAAA`?" for a value close to one of `values`, in either case.
fn suggestion(values: &[&str], wrong: &str) -> Option<String> {
    let lower: Vec<String> = values.iter().map(|v| v.to_ascii_lowercase()).collect();
    let best = crate::source::closest(
        &wrong.trim().to_ascii_lowercase(),
        lower.iter().map(String::as_str),
    )?;
    let at = lower.iter().position(|v| v == best)?;
    Some(format!("did you mean `{}`?", values[at]))
}

fn provider_of<'r>(
    registry: &'r Registry,
    type_name: &str,
) -> Option<(&'r dyn Provider, &'r ResourceType)> {
    let ty = registry.resource_type(type_name)?;
    let provider = registry.provider(registry.provider_of(type_name)?)?;
    Some((provider.as_ref(), ty))
}
