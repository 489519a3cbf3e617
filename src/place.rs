//! Places: the object each resource occupies, in its provider's terms (a file's resolved path,
//! a DNS RRset). Two resources of one spec on one place would fight over one object, so they
//! are refused here, and fabrik's own files are no resource's place. The plan
//! (`src/plan/places.rs`) and the executor ask here where an object is and whether its
//! provider can hand it from one resource to another. See `docs/architecture.md`, "Places and
//! handovers".

use std::collections::HashMap;

use fabrik_provider::{Attributes, Context};

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
