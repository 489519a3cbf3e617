//! Planning one resource: the inputs it asks for, resolved against what earlier levels
//! planned and put in the provider's normal form; their hash and the digest a saved plan binds;
//! and, through [`super::diff`], its change.

use std::collections::{BTreeMap, BTreeSet};

use fabrik_provider::Value;
use serde::Serialize;

use super::diff::{Wanted, diff_resource, mask_observed};
use super::hidden::real_output;
use super::{Action, Change, Input, ignored, precheck};
use crate::hash;
use crate::resolve::{self, Inputs};
use crate::source::Diagnostic;
use crate::template::Reference;

pub(super) struct Planned {
    pub(super) inputs: Inputs,
    /// No change (or only an adoption, or a change to its record): its recorded outputs stand.
    pub(super) stable: bool,
    /// The spec hash of its inputs (secrets masked).
    pub(super) inputs_hash: String,
    pub(super) digest: String,
    pub(super) change: Option<Change>,
    /// What the provider finds wrong with its inputs, at the values (see [`precheck`]).
    pub(super) problems: Vec<Diagnostic>,
}

/// Plans resource `i`, whose dependencies are all in `planned`.
pub(super) fn plan_one(
    input: &Input<'_>,
    selected: &[bool],
    planned: &[Option<(Inputs, bool)>],
    i: usize,
) -> Planned {
    let Input {
        spec,
        graph,
        registry,
        state,
        secrets,
        sensitive,
        observed,
        adopted,
        ..
    } = *input;
    let resource = &spec.resources[i];
    let ty = registry
        .resource_type(&resource.type_name)
        .expect("checked specs only name known types");
    let (mut inputs, problem) = desired(input, planned, i, selected[i]);
    let mut problems = precheck::judged(spec, registry, i, &inputs, problem.as_ref());
    // Ignored fields as recorded; a secret's record is its keyed hash, put in once masked.
    let prior = ignored::prior(resource, state.resources.get(&resource.name));
    if let Some(prior) = prior {
        ignored::keep_recorded(resource, prior, &mut inputs, &sensitive[i]);
    }
    // What is hashed, diffed, shown and saved: sensitive values by their keyed hash.
    let masked = if sensitive[i].is_empty() {
        std::borrow::Cow::Borrowed(&inputs)
    } else {
        let mut masked = resolve::mask(&inputs, &sensitive[i], secrets);
        if let Some(prior) = prior {
            ignored::keep_recorded(resource, prior, &mut masked, &BTreeSet::new());
        }
        std::borrow::Cow::Owned(masked)
    };
    let inputs_hash = hash::spec_hash(ty.name, &*masked);
    let digest = hash::hash_of(&CanonicalResource {
        name: &resource.name,
        r#type: &resource.type_name,
        inputs: &inputs_hash,
        pending: pending(input, planned, i, &inputs),
        gates: written_gates(input, planned, &resource.verify),
        protect: resource.protect,
        adopt: resource.adopt,
        keep_on_failure: resource.keep_on_failure,
        ignore_changes: resource
            .ignore_changes
            .iter()
            .map(|(n, _)| n.as_str())
            .collect(),
        depends_on: resource
            .depends_on
            .iter()
            .map(|(n, _)| n.as_str())
            .collect(),
    });
    let change = if selected[i] {
        let observed = observed.map(|o| mask_observed(o, &resource.name, &sensitive[i], secrets));
        let wanted = Wanted {
            inputs: &masked,
            hash: &inputs_hash,
            sensitive: &sensitive[i],
        };
        diff_resource(spec, graph, i, ty, wanted, state, observed.as_ref())
    } else {
        None
    };
    // A protected object (as the state records it) is never replaced: the spec's own
    // `protect: false` counts only once an apply has recorded it.
    let replaced = change.as_ref().is_some_and(|c| c.action == Action::Replace);
    let protected = state
        .resources
        .get(&resource.name)
        .is_some_and(|r| r.protect);
    if problems.is_empty() && replaced && protected {
        problems.push(
            Diagnostic::new(
                resource.type_loc,
                format!(
                    "`{}` is protected: this change would replace it (delete the object and create another)",
                    resource.name
                ),
            )
            .help("the state records it as protected: apply `protect: false` alone first, then this change"),
        );
    }
    let change = change.map(|mut c| {
        if c.action == Action::NoOp && adopted.contains(&c.name) {
            c.action = Action::Adopt;
            c.reason = Some("found after an interrupted run".to_string());
        }
        if runs_gates(&c) {
            c.gates = own_gates(input, planned, i, &inputs);
        }
        c
    });
    // A change to fabrik's record only leaves the object, and so its outputs, as they are.
    let stable = change
        .as_ref()
        .is_none_or(|c| matches!(c.action, Action::NoOp | Action::Adopt) || c.state_only);
    drop(masked);
    Planned {
        inputs,
        stable,
        inputs_hash,
        digest,
        change,
        problems,
    }
}

/// The inputs of resource `i` known only at apply time, as written with what is known put in
/// (secrets by their keyed hash): the spec hash covers them, so a saved plan is stale once
/// their text, or an environment variable inside them, changes.
fn pending(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    i: usize,
    inputs: &Inputs,
) -> BTreeMap<String, Value> {
    let resource = &input.spec.resources[i];
    resource
        .with
        .iter()
        .filter(|(k, _)| matches!(inputs.get(&k.name), Some(None)))
        .map(|(k, e)| (k.name.clone(), written(input, planned, e)))
        .collect()
}

/// Gates as written, with what is known put in: what a saved plan binds of them.
pub(super) fn written_gates(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    gates: &[crate::spec::Expr],
) -> Vec<Value> {
    gates.iter().map(|g| written(input, planned, g)).collect()
}

/// Whether the apply runs a resource's gates after `change`: after every call that makes or
/// changes its object (and when only they run), never after a change to fabrik's record alone.
pub(super) fn runs_gates(change: &Change) -> bool {
    matches!(
        change.action,
        Action::Create | Action::Update | Action::Replace
    ) && !change.state_only
}

/// Resource `i`'s gates as the plan lists them: its own inputs (`${web.path}` in its gates)
/// put in too, since they are known before its gates run.
fn own_gates(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    i: usize,
    inputs: &Inputs,
) -> Vec<String> {
    let resource = &input.spec.resources[i];
    let own = |r: &Reference| match r {
        Reference::Resource { name, attr } if *name == resource.name => match inputs.get(attr) {
            Some(v) => v.clone(),
            None => lookup(input, planned, r),
        },
        _ => lookup(input, planned, r),
    };
    let written: Vec<Value> = resource
        .verify
        .iter()
        .map(|g| written_with(input, g, &own))
        .collect();
    shown_gates(&resource.verify, &written)
}

/// The gates as the plan lists them, from the entries as written and their [`written_gates`]:
/// one with a secret in it is named by its kind alone.
pub(super) fn shown_gates(entries: &[crate::spec::Expr], written: &[Value]) -> Vec<String> {
    entries
        .iter()
        .zip(written)
        .map(|(entry, value)| {
            let known = (!crate::secrets::is_masked(value)).then_some(value);
            crate::verify::planned(entry, known)
        })
        .collect()
}

/// [`resolve::eval_written`] during planning, replaced by its keyed hash where a secret is in it.
fn written(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    expr: &crate::spec::Expr,
) -> Value {
    written_with(input, expr, &|r| lookup(input, planned, r))
}

/// [`written`], references answered by `lookup`.
fn written_with(
    input: &Input<'_>,
    expr: &crate::spec::Expr,
    lookup: &dyn Fn(&Reference) -> Option<Value>,
) -> Value {
    let Input { spec, secrets, .. } = *input;
    let value = resolve::eval_written(expr, lookup);
    let mut refs = Vec::new();
    expr.references(&mut refs);
    let secret = refs.iter().any(|(r, _)| match r {
        Reference::Secret(_) => true,
        Reference::Var(var) => spec.var(var).is_some_and(|d| d.sensitive),
        Reference::Resource { name, attr } => spec.index_of(name).is_some_and(|j| {
            input
                .sensitive
                .get(j)
                .is_some_and(|fields| fields.contains(attr))
        }),
        _ => false,
    });
    if secret {
        Value::String(secrets.mask(&value))
    } else {
        value
    }
}

/// The inputs resource `i` asks for, with the references to those in `planned` resolved, in
/// the provider's normal form when they are all known (two spellings of one thing are one
/// thing; inputs not all known yet are compared once they are, at apply time). With `check`,
/// also what the provider finds wrong with the known ones.
pub(super) fn desired(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    i: usize,
    check: bool,
) -> (Inputs, Option<fabrik_provider::Error>) {
    let Input { spec, registry, .. } = *input;
    let resource = &spec.resources[i];
    let ty = registry
        .resource_type(&resource.type_name)
        .expect("checked specs only name known types");
    let mut inputs = resolve::eval_fields(&resource.with, &|r| lookup(input, planned, r));
    resolve::coerce(ty, &mut inputs);
    let provider = registry
        .provider(registry.provider_of(ty.name).expect("typed"))
        .expect("registered");
    let target = fabrik_provider::Target {
        stack: &spec.stack,
        name: &resource.name,
        type_name: ty.name,
    };
    let mut problem = None;
    if let Some(known) = resolve::known(&inputs) {
        if check && let Err(e) = provider.validate(target, &known) {
            problem = Some(e);
        }
        match provider.normalize(ty.name, &known) {
            Ok(normal) => inputs = normal.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            // Inputs that have no normal form would fail at apply time: say so now.
            Err(e) if check && problem.is_none() => problem = Some(e),
            Err(_) => {}
        }
    } else {
        let known: fabrik_provider::Attributes = inputs
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        if check {
            problem = provider.validate(target, &known).err();
        }
        // The known values in normal form where the provider can give one without the others
        // (a file's path): a path respelled is then no change, even beside unknown content.
        // A default the normal form fills in for a field the spec leaves out is filled in too,
        // so that it does not show as removed (nor, where the field is force-new, as a
        // replacement) while another field waits for a value.
        if let Ok(normal) = provider.normalize(ty.name, &known) {
            for (k, v) in normal {
                match inputs.get_mut(&k) {
                    Some(slot @ Some(_)) => *slot = Some(v),
                    Some(None) => {}
                    None => {
                        inputs.insert(k, Some(v));
                    }
                }
            }
        }
    }
    (inputs, problem)
}

/// The inputs of resource `i` as the spec asks for them now, with the recorded outputs of the
/// resources it refers to (as if nothing else changed): what `fabrik import` claims an object
/// for.
pub fn desired_inputs(input: &Input<'_>, i: usize) -> Inputs {
    let needed = input.graph.with_dependencies(&[i]);
    let mut planned: Vec<Option<(Inputs, bool)>> = vec![None; input.spec.resources.len()];
    for &j in input.graph.order.iter().filter(|&&j| needed[j]) {
        planned[j] = Some((desired(input, &planned, j, false).0, true));
    }
    planned[i]
        .take()
        .map(|(inputs, _)| inputs)
        .unwrap_or_default()
}

#[derive(Serialize)]
struct CanonicalResource<'a> {
    name: &'a str,
    r#type: &'a str,
    /// The spec hash of its inputs.
    inputs: &'a str,
    /// Inputs known only at apply time, as written ([`pending`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pending: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Value>,
    protect: bool,
    adopt: bool,
    keep_on_failure: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ignore_changes: Vec<&'a str>,
    depends_on: Vec<&'a str>,
}

/// Answers a reference during planning: inputs are known once evaluated; outputs are known only
/// for resources this plan leaves alone.
fn lookup(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    reference: &Reference,
) -> Option<Value> {
    let Input {
        spec,
        registry,
        state,
        secrets,
        read,
        ..
    } = *input;
    let Reference::Resource { name, attr } = reference else {
        return resolve::context_value(spec, secrets, reference);
    };
    let j = spec.index_of(name)?;
    let (inputs, stable) = planned[j].as_ref()?;
    let ty = registry.resource_type(&spec.resources[j].type_name)?;
    if ty.field(attr).is_some() {
        return match inputs.get(attr) {
            Some(v) => v.clone(),
            None => Some(Value::Null),
        };
    }
    if !*stable {
        return None;
    }
    let recorded = state.resources.get(name)?.outputs.get(attr)?;
    if crate::secrets::is_masked(recorded) {
        // Derived from a secret, it is recorded by its hash: the value is what was read.
        return real_output(state, read, secrets, name, attr).cloned();
    }
    Some(recorded.clone())
}
