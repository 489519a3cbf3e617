//! `--target`: which resources a plan covers, the targets and what they need, and the message
//! for a target that names nothing. A target naming a resource with `for_each` covers all its
//! instances (`crate::template::covers`); `NAME[KEY]` one of them.

use super::Error;
use crate::graph::Graph;
use crate::source::closest;
use crate::spec::Spec;
use crate::state::State;

pub(super) fn unknown_target<'a>(target: &str, names: impl Iterator<Item = &'a str>) -> Error {
    let names: Vec<&str> = names.collect();
    let hint = match closest(target, names.iter().copied()) {
        Some(best) => format!("; did you mean `{best}`?"),
        None => String::new(),
    };
    Error::Usage(format!(
        "--target `{target}` is neither in the spec nor in the state{hint}"
    ))
}

/// Which spec resources the plan covers: all, or the targets and what they need.
pub(super) fn select(
    spec: &Spec,
    graph: &Graph,
    state: &State,
    targets: &[String],
) -> Result<Vec<bool>, Error> {
    if targets.is_empty() {
        return Ok(vec![true; spec.resources.len()]);
    }
    let mut roots = Vec::new();
    for target in targets {
        // A resource with `for_each` stands for all its instances.
        let instances = spec.expanded.get(target).into_iter().flatten();
        let instances =
            instances.filter_map(|key| spec.index_of(&crate::template::address(target, key)));
        match spec.index_of(target) {
            Some(i) => roots.push(i),
            None if spec.expanded.contains_key(target) => roots.extend(instances),
            None if state
                .resources
                .keys()
                .any(|n| crate::template::covers(target, n)) => {}
            None => {
                return Err(unknown_target(
                    target,
                    spec.resources
                        .iter()
                        .map(|r| r.name.as_str())
                        .chain(state.resources.keys().map(String::as_str)),
                ));
            }
        }
    }
    Ok(graph.with_dependencies(&roots))
}
