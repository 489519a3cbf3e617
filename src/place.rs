//! Places: the object each resource occupies, in its provider's terms (a file's resolved path,
//! a DNS RRset). Two resources of one spec on one place would fight over one object, so a plan
//! refuses them; a place handed from one resource to another in one apply (the old owner is
//! removed or moves elsewhere) is taken over by the new owner and never deleted by the old one.
//! See `docs/architecture.md`, "Places and handovers".

use std::collections::{BTreeSet, HashMap};

use fabrik_provider::{Attributes, Context};

use crate::plan::{Action, Change, Input};
use crate::registry::Registry;
use crate::resolve::Inputs;
use crate::source::Diagnostic;
use crate::spec::Spec;

/// The place of every spec resource whose inputs are known, and problems with them: places no
/// resource may take (fabrik's own files) and places two resources share. Found problems are
/// reported at the resource; `places[i]` is `None` where the inputs are not all known yet.
pub fn of_spec(
    spec: &Spec,
    registry: &Registry,
    context: &Context,
    inputs: impl Fn(usize) -> Option<Attributes>,
) -> (Vec<Option<String>>, Vec<Diagnostic>) {
    let mut places = vec![None; spec.resources.len()];
    let mut problems = Vec::new();
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, resource) in spec.resources.iter().enumerate() {
        let Some(known) = inputs(i) else { continue };
        let place = match place_of(registry, context, &resource.type_name, &known) {
            Ok(Some(place)) => place,
            Ok(None) => continue,
            Err(e) => {
                problems.push(Diagnostic::new(
                    resource.type_loc,
                    format!(
                        "`{}` ({}): {}",
                        resource.name, resource.type_name, e.message
                    ),
                ));
                continue;
            }
        };
        match first.get(&place) {
            Some(&j) => problems.push(
                Diagnostic::new(
                    resource.loc,
                    format!(
                        "`{}` and `{}` are both at {place}: two resources cannot share one object",
                        resource.name, spec.resources[j].name
                    ),
                )
                .help("give each resource its own (paths are compared once `.` and `..` are resolved)"),
            ),
            None => {
                first.insert(place.clone(), i);
            }
        }
        places[i] = Some(place);
    }
    (places, problems)
}

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

/// The place of an object of `type_name` with `inputs`, as its provider names it.
///
/// # Errors
/// The provider's, for a place no resource may take.
pub fn place_of(
    registry: &Registry,
    context: &Context,
    type_name: &str,
    inputs: &Attributes,
) -> fabrik_provider::Result<Option<String>> {
    match registry
        .provider_of(type_name)
        .and_then(|p| registry.provider(p))
    {
        Some(provider) => provider.place(type_name, inputs, context),
        None => Ok(None),
    }
}

/// Whether objects of `type_name` can pass from one resource to another in one apply.
pub fn hands_over(registry: &Registry, type_name: &str) -> bool {
    registry
        .provider_of(type_name)
        .and_then(|p| registry.provider(p))
        .is_some_and(|p| p.hands_over(type_name))
}

/// The known part of a resource's inputs (all of them, once every one is known): a file's
/// path may be known while its content is not. The planner has put what it could in normal
/// form already (`plan::desired`).
pub fn known_part(inputs: &Inputs) -> Attributes {
    inputs
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect()
}

/// [`of_spec`] for `fabrik validate`, which resolves no secret and knows no output: the places
/// of the resources whose inputs are written out (environment variables and `${stack}` put in).
pub fn problems_without_values(
    spec: &Spec,
    registry: &Registry,
    context: &Context,
) -> Vec<Diagnostic> {
    let no_secrets = crate::secrets::Secrets::default();
    let lookup = |r: &crate::template::Reference| match r {
        crate::template::Reference::Secret(_) => None,
        other => crate::resolve::context_value(spec, &no_secrets, other),
    };
    of_spec(spec, registry, context, |i| {
        let resource = &spec.resources[i];
        let ty = registry.resource_type(&resource.type_name)?;
        let mut inputs = crate::resolve::eval_fields(&resource.with, &lookup);
        crate::resolve::coerce(ty, &mut inputs);
        // Not normalised yet: in normal form where the provider can give one from what is
        // known (all of it, or a file's path alone).
        let provider = registry.provider(registry.provider_of(ty.name)?)?;
        let known = known_part(&inputs);
        match provider.normalize(ty.name, &known) {
            Ok(normal) => Some(normal),
            Err(_) if inputs.values().all(Option::is_some) => None,
            Err(_) => Some(known),
        }
    })
    .1
}
