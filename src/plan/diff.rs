//! The change of one resource: what it asks for compared with what the state recorded and, after
//! a refresh, with what is really there; attribute by attribute, deciding between no-op,
//! create, update, replacement and a change to fabrik's record alone.

use std::collections::BTreeSet;

use fabrik_provider::{ReplaceStrategy, Value};

use super::{Action, AttributeChange, Change, Observations, ReplaceOrder};
use crate::graph::Graph;
use crate::resolve::Inputs;
use crate::secrets::Secrets;
use crate::spec::Spec;
use crate::state::State;

/// What a resource asks for: its inputs (secrets masked) and their spec hash.
#[derive(Clone, Copy)]
pub(super) struct Wanted<'a> {
    pub(super) inputs: &'a Inputs,
    pub(super) hash: &'a str,
    /// Its attributes that hold secrets.
    pub(super) sensitive: &'a BTreeSet<String>,
}

pub(super) fn diff_resource(
    spec: &Spec,
    graph: &Graph,
    i: usize,
    ty: &fabrik_provider::ResourceType,
    wanted: Wanted<'_>,
    state: &State,
    observed: Option<&Observations>,
) -> Option<Change> {
    let Wanted {
        inputs,
        hash: inputs_hash,
        sensitive,
    } = wanted;
    let resource = &spec.resources[i];
    let depends_on: Vec<String> = graph
        .dependencies(i)
        .into_iter()
        .map(|d| spec.resources[d].name.clone())
        .collect();
    let mut change = Change {
        depends_on,
        ..Change::new(&resource.name, &resource.type_name, Action::NoOp)
    };
    let creating = |change: &mut Change, reason: Option<String>| {
        change.action = Action::Create;
        change.reason = reason;
        change.attributes = attribute_changes(ty, &fabrik_provider::Attributes::new(), inputs);
    };
    let Some(prior) = state.resources.get(&resource.name) else {
        creating(&mut change, None);
        return Some(change);
    };
    if prior.type_name != resource.type_name {
        change.action = Action::Replace;
        change.replace_order = Some(ReplaceOrder::DestroyBeforeCreate);
        change.reason = Some(format!(
            "the type changes from {} to {}",
            prior.type_name, resource.type_name
        ));
        change.attributes = attribute_changes(ty, &prior.inputs, inputs);
        return Some(change);
    }
    let seen = observed.and_then(|o| o.get(&resource.name));
    // What the object is now: the recorded inputs, with what a refresh saw differ put in.
    let mut before = std::borrow::Cow::Borrowed(&prior.inputs);
    match seen {
        Some(None) => {
            creating(&mut change, Some("deleted outside fabrik".to_string()));
            change.drifted = true;
            return Some(change);
        }
        Some(Some(now)) => {
            for (k, v) in &now.inputs {
                // What is ignored may differ on the object: that is not drift.
                if before.get(k) != Some(v) && !super::ignored::ignores(resource, k) {
                    before.to_mut().insert(k.clone(), v.clone());
                }
            }
        }
        None => {}
    }
    let drifted = matches!(before, std::borrow::Cow::Owned(_));
    if !drifted && inputs.values().all(Option::is_some) && inputs_hash == prior.spec_hash {
        // The object is as wanted, but a change kept without its gates passing is not done.
        if prior.unverified && !resource.verify.is_empty() {
            change.action = Action::Update;
            change.reverify = true;
            change.reason = Some("its gates have not passed since its last change".to_string());
            return Some(change);
        }
        // The object is as wanted; only fabrik's record of it may need a change: `protect`
        // and the dependencies, which must be right for a destroy that runs without the spec,
        // and outputs derived from secrets that an earlier fabrik recorded in plain.
        let plain_secrets = prior
            .outputs
            .iter()
            .any(|(k, v)| sensitive.contains(k) && !crate::secrets::is_masked(v));
        if plain_secrets {
            change.action = Action::Update;
            change.state_only = true;
        }
        if prior.protect != resource.protect {
            change.attributes.push(AttributeChange {
                name: "protect".to_string(),
                before: Some(Value::Bool(prior.protect)),
                after: Some(Value::Bool(resource.protect)),
                after_unknown: false,
                force_new: false,
            });
        }
        if let Some(dependencies) = dependencies_change(&prior.dependencies, &change.depends_on) {
            change.attributes.push(dependencies);
        }
        if !change.attributes.is_empty() {
            change.action = Action::Update;
            change.state_only = true;
        }
        if plain_secrets {
            change.reason =
                Some("outputs derived from secrets are in the state in plain text".to_string());
        }
        return Some(change);
    }

    change.attributes = attribute_changes(ty, &before, inputs);
    if change.attributes.is_empty() {
        return Some(change);
    }
    if drifted {
        change.reason = Some("changed outside fabrik".to_string());
        change.drifted = true;
    }
    if change.attributes.iter().any(|a| a.force_new) {
        change.action = Action::Replace;
        change.replace_order = Some(match ty.replace {
            ReplaceStrategy::CreateBeforeDestroy => ReplaceOrder::CreateBeforeDestroy,
            ReplaceStrategy::DestroyBeforeCreate => ReplaceOrder::DestroyBeforeCreate,
        });
    } else {
        change.action = Action::Update;
    }
    Some(change)
}

/// The change of a resource's recorded dependencies, if the spec's differ (order aside).
fn dependencies_change(recorded: &[String], wanted: &[String]) -> Option<AttributeChange> {
    let before: BTreeSet<&String> = recorded.iter().collect();
    let after: BTreeSet<&String> = wanted.iter().collect();
    (before != after).then(|| AttributeChange {
        name: "depends_on".to_string(),
        before: Some(Value::from(recorded.to_vec())),
        after: Some(Value::from(wanted.to_vec())),
        after_unknown: false,
        force_new: false,
    })
}

/// The attributes that differ between `before` and `after`, in field order of the type.
fn attribute_changes(
    ty: &fabrik_provider::ResourceType,
    before: &fabrik_provider::Attributes,
    after: &Inputs,
) -> Vec<AttributeChange> {
    let mut names: Vec<&str> = ty.fields.iter().map(|f| f.name).collect();
    for key in before.keys().chain(after.keys()) {
        if !names.contains(&key.as_str()) {
            names.push(key);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let old = before.get(name);
            let new = after.get(name);
            let (after_value, unknown) = match new {
                Some(Some(v)) => (Some(v.clone()), false),
                Some(None) => (None, true),
                None => (None, false),
            };
            if !unknown && old == after_value.as_ref() {
                return None;
            }
            let force_new = ty.field(name).is_some_and(|f| f.force_new) && old.is_some();
            Some(AttributeChange {
                name: name.to_string(),
                before: old.cloned(),
                after: after_value,
                after_unknown: unknown,
                force_new,
            })
        })
        .collect()
}

/// What a refresh saw of one resource, its sensitive values replaced by their keyed hash so
/// they compare with what the state holds.
pub(super) fn mask_observed(
    observed: &Observations,
    name: &str,
    sensitive: &BTreeSet<String>,
    secrets: &Secrets,
) -> Observations {
    let mut out = Observations::new();
    if let Some(seen) = observed.get(name) {
        let seen = seen.clone().map(|mut o| {
            for field in sensitive {
                if let Some(v) = o
                    .inputs
                    .get_mut(field)
                    .filter(|v| !crate::secrets::is_masked(v))
                {
                    *v = Value::String(secrets.mask(v));
                }
            }
            o
        });
        out.insert(name.to_string(), seen);
    }
    out
}
