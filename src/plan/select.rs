//! `--target`: which resources a plan covers, the targets and what they need, and the message
//! for a target that names nothing.

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
        match spec.index_of(target) {
            Some(i) => roots.push(i),
            None if state.resources.contains_key(target) => {}
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
