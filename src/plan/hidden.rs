//! Outputs the state holds by their keyed hash only, because they derive from a secret: a plan
//! that refers to them needs their real values, read from the objects and trusted only where
//! they hash to what the state holds.

use std::collections::BTreeSet;

use fabrik_provider::Value;

use super::Observations;
use crate::secrets::Secrets;
use crate::spec::Spec;
use crate::state::State;
use crate::template::Reference;

/// from what was read of the object: only where it hashes to what the state holds (the object
/// is as recorded).
pub(super) fn real_output<'o>(
    state: &State,
    read: Option<&'o Observations>,
    secrets: &Secrets,
    name: &str,
    attr: &str,
) -> Option<&'o Value> {
    let recorded = state.resources.get(name)?.outputs.get(attr)?;
    let seen = read?.get(name)?.as_ref()?.outputs.get(attr)?;
    let matches = secrets.key().is_some() && Value::String(secrets.mask(seen)) == *recorded;
    matches.then_some(seen)
}

/// Every output the state holds by its keyed hash whose real value was read (see
/// [`real_output`]), by resource.
pub(super) fn real_outputs(
    state: &State,
    read: Option<&Observations>,
    secrets: &Secrets,
) -> std::collections::HashMap<String, fabrik_provider::Attributes> {
    let Some(read) = read else {
        return Default::default();
    };
    read.keys()
        .filter_map(|name| {
            let recorded = &state.resources.get(name)?.outputs;
            let real: fabrik_provider::Attributes = recorded
                .iter()
                .filter(|(_, v)| crate::secrets::is_masked(v))
                .filter_map(|(attr, _)| {
                    let seen = real_output(state, Some(read), secrets, name, attr)?;
                    Some((attr.clone(), seen.clone()))
                })
                .collect();
            (!real.is_empty()).then(|| (name.clone(), real))
        })
        .collect()
}

/// Those of `names` (see [`hidden_outputs_referred_to`]) whose hidden outputs were not read as
/// the state records them: the object was changed or deleted outside fabrik, and what refers
/// to those outputs cannot be given their recorded values.
pub fn unreadable_hidden_outputs<'n>(
    state: &State,
    read: &Observations,
    secrets: &Secrets,
    names: &'n BTreeSet<String>,
) -> Vec<&'n str> {
    names
        .iter()
        .filter(|name| {
            state.resources.get(*name).is_some_and(|r| {
                r.outputs.iter().any(|(attr, v)| {
                    crate::secrets::is_masked(v)
                        && real_output(state, Some(read), secrets, name, attr).is_none()
                })
            })
        })
        .map(String::as_str)
        .collect()
}

/// The resources in the state whose outputs it holds by their keyed hash only (they derive
/// from a secret) and that the spec refers to: a plan reads them, refresh or not, so that the
/// references get the real values.
pub fn hidden_outputs_referred_to(spec: &Spec, state: &State) -> BTreeSet<String> {
    let mut refs = Vec::new();
    for resource in &spec.resources {
        refs.extend(resource.references());
    }
    for gate in &spec.verify {
        gate.references(&mut refs);
    }
    refs.into_iter()
        .filter_map(|(r, _)| match r {
            Reference::Resource { name, attr } => state
                .resources
                .get(&name)
                .and_then(|r| r.outputs.get(&attr))
                .is_some_and(crate::secrets::is_masked)
                .then_some(name),
            _ => None,
        })
        .collect()
}
