//! The places of a plan's new objects (see `src/place.rs`) checked against each other and
//! against the places the state holds: a place held by a resource this plan removes is handed
//! over where its provider allows; any other meeting stops the plan at the resource. See
//! `docs/architecture.md`, "Places and handovers".

use std::collections::{BTreeSet, HashMap};

use super::{Action, Change, Input};
use crate::place::{hands_over, known_part, of_spec, place_of};
use crate::resolve::Inputs;
use crate::source::Diagnostic;

/// Checks the places of the plan's resources and marks the handovers in `changes`: a create or
/// replacement whose place a resource of the state holds takes it over when that resource
/// leaves it in this plan (and its provider can hand objects over); otherwise the plan stops at
/// the resource, saying who holds the place.
pub fn check(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    changes: &mut [Change],
) -> Vec<Diagnostic> {
    let spec = input.spec;
    // Only new objects can take a place: an unchanged resource holds the place it was given
    // when it was applied, and a new one meeting it there is found below, through the state.
    let new_objects: BTreeSet<usize> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace) && !c.state_only)
        .filter_map(|c| spec.index_of(&c.name))
        .collect();
    if new_objects.is_empty() {
        return Vec::new();
    }
    // A targeted plan leaves most resources out: the whole spec is still looked at, so a spec
    // that could never be applied whole is refused in parts too.
    let everything = !input.targets.is_empty();
    let (places, mut problems) = of_spec(spec, input.registry, input.context, |i| {
        if !everything && !new_objects.contains(&i) {
            return None;
        }
        let (inputs, _) = planned[i].as_ref()?;
        Some(known_part(inputs))
    });
    if !problems.is_empty() {
        return problems;
    }
    // Who holds each place now, replaced objects still waiting for their delete included.
    let mut holders: HashMap<String, Vec<&str>> = HashMap::new();
    for (name, r) in &input.state.resources {
        let objects = std::iter::once((&r.type_name, &r.inputs))
            .chain(r.deposed.iter().map(|d| (&d.type_name, &d.inputs)));
        for (type_name, inputs) in objects {
            if let Ok(Some(place)) = place_of(input.registry, input.context, type_name, inputs) {
                holders.entry(place).or_default().push(name);
            }
        }
    }
    let leaving: BTreeSet<String> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .map(|c| c.name.clone())
        .collect();
    let mut handed: Vec<(String, String, String)> = Vec::new();
    for change in changes
        .iter_mut()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace) && !c.state_only)
    {
        let Some(i) = spec.index_of(&change.name) else {
            continue;
        };
        let Some(place) = &places[i] else { continue };
        let Some(holder) = holders
            .get(place)
            .and_then(|names| names.iter().find(|h| **h != change.name))
        else {
            // A replacement whose new object is where its old one is (a path respelled, a type
            // changed) overwrites it in place: it takes its own object over.
            let own = holders
                .get(place)
                .is_some_and(|names| names.contains(&change.name.as_str()));
            if own
                && change.action == Action::Replace
                && hands_over(input.registry, &change.type_name)
            {
                change.takes_over = Some(change.name.clone());
            }
            continue;
        };
        let resource = &spec.resources[i];
        let same_type = input
            .state
            .resources
            .get(*holder)
            .is_some_and(|h| h.type_name == change.type_name);
        if !leaving.contains(*holder) {
            let help = if input.targets.is_empty() {
                "two resources cannot share one object".to_string()
            } else {
                format!(
                    "add `--target {holder}` so that its change is part of this plan, or apply without --target"
                )
            };
            problems.push(
                Diagnostic::new(
                    resource.loc,
                    format!(
                        "`{}`: {place} is held by `{holder}`, which this plan leaves as it is",
                        change.name
                    ),
                )
                .help(help),
            );
        } else if !same_type || !hands_over(input.registry, &change.type_name) {
            problems.push(
                Diagnostic::new(
                    resource.loc,
                    format!(
                        "`{}` would take {place} over from `{holder}`, which this plan removes; {} objects cannot pass from one resource to another in one apply",
                        change.name, change.type_name
                    ),
                )
                .help(format!(
                    "remove `{holder}` (or move it elsewhere) and apply; then add `{}` and apply again",
                    change.name
                )),
            );
        } else {
            let note = format!("takes over {place} from `{holder}`");
            change.reason = Some(match change.reason.take() {
                Some(reason) => format!("{reason}; {note}"),
                None => note,
            });
            change.takes_over = Some(holder.to_string());
            handed.push((holder.to_string(), change.name.clone(), place.clone()));
        }
    }
    // Say on the old owner's delete that its object stays.
    for (holder, taker, place) in handed {
        if let Some(delete) = changes
            .iter_mut()
            .find(|c| c.action == Action::Delete && c.deposed.is_none() && c.name == holder)
        {
            delete.reason = Some(format!(
                "{place} stays: `{taker}` takes it over (only the record is removed)"
            ));
        }
    }
    problems
}
