//! `ignore_changes`: fields of a resource whose differences are not planned once its object
//! exists. The spec's value gives way to the one the state recorded before anything is hashed
//! or compared, so the planner, a saved plan resolved at apply time and the executor all see
//! one value; a refresh's reading of those fields is left out of the drift ([`super::diff`]).

use std::collections::{BTreeMap, BTreeSet};

use fabrik_provider::{Attributes, Value};

use super::Observations;
use crate::spec::Resource;
use crate::state::ResourceState;

/// The state's record of `resource` when its ignored fields apply: it names some, and the
/// object exists with the same type (a create uses the spec's values).
pub fn prior<'a>(
    resource: &Resource,
    recorded: Option<&'a ResourceState>,
) -> Option<&'a ResourceState> {
    recorded.filter(|p| !resource.ignore_changes.is_empty() && p.type_name == resource.type_name)
}

/// Puts the recorded value of each ignored field of `resource` into `inputs` (removing a field
/// the state does not hold), except those in `skip`.
pub fn keep_recorded<V: From<Value>>(
    resource: &Resource,
    prior: &ResourceState,
    inputs: &mut BTreeMap<String, V>,
    skip: &BTreeSet<String>,
) {
    for (field, _) in &resource.ignore_changes {
        if skip.contains(field) {
            continue;
        }
        match prior.inputs.get(field) {
            Some(v) => inputs.insert(field.clone(), V::from(v.clone())),
            None => inputs.remove(field),
        };
    }
}

/// [`keep_recorded`] for inputs all known (`Attributes` is a JSON map, not a `BTreeMap`).
pub fn keep_recorded_known(
    resource: &Resource,
    prior: &ResourceState,
    inputs: &mut Attributes,
    skip: Option<&BTreeSet<String>>,
) {
    for (field, _) in &resource.ignore_changes {
        if skip.is_some_and(|s| s.contains(field)) {
            continue;
        }
        match prior.inputs.get(field) {
            Some(v) => inputs.insert(field.clone(), v.clone()),
            None => inputs.remove(field),
        };
    }
}

/// The inputs an update of `resource` sends, where they differ from `inputs`: each ignored
/// field as the refresh read it from the object (which so keeps its value), secrets aside (the
/// state holds only their hash, the refresh's reading is not trusted with them).
pub fn as_read(
    resource: &Resource,
    observed: Option<&Observations>,
    inputs: &Attributes,
    skip: &BTreeSet<String>,
) -> Option<Attributes> {
    let now = observed?.get(&resource.name)?.as_ref()?;
    let mut sent = None;
    for (field, _) in &resource.ignore_changes {
        let Some(read) = now.inputs.get(field) else {
            continue;
        };
        if skip.contains(field) || Some(read) == inputs.get(field) {
            continue;
        }
        sent.get_or_insert_with(|| inputs.clone())
            .insert(field.clone(), read.clone());
    }
    sent
}

/// Whether `resource` ignores `field`.
pub fn ignores(resource: &Resource, field: &str) -> bool {
    resource.ignore_changes.iter().any(|(f, _)| f == field)
}
