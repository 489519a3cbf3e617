//! Deletes: of resources gone from the spec, of everything in a destroy, and of replaced
//! objects still waiting for theirs, in an order where whatever depends on a resource goes
//! first; and the refusal to destroy what is protected.

use std::collections::{BTreeMap, BTreeSet};

use super::select::unknown_target;
use super::{Action, AttributeChange, Change, PLAN_FORMAT, PLAN_FORMAT_VERSION, Plan, summarize};
use crate::error::Error;
use crate::hash;
use crate::state::State;

pub fn destroy_plan(state: &State, targets: &[String]) -> Result<Plan, Error> {
    let mut selected: BTreeSet<String> = BTreeSet::new();
    for target in targets {
        let covered: Vec<&String> = state
            .resources
            .keys()
            .filter(|n| crate::template::covers(target, n))
            .collect();
        if covered.is_empty() {
            return Err(unknown_target(
                target,
                state.resources.keys().map(String::as_str),
            ));
        }
        selected.extend(covered.into_iter().cloned());
    }
    if !targets.is_empty() {
        // What depends on a destroyed resource cannot stay.
        loop {
            let more: Vec<String> = state
                .resources
                .iter()
                .filter(|(name, r)| {
                    !selected.contains(*name) && r.dependencies.iter().any(|d| selected.contains(d))
                })
                .map(|(name, _)| name.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            selected.extend(more);
        }
    }
    let names: Vec<String> = selected.into_iter().collect();
    let changes = deletes(state, &names, |_| true);
    // A destroy of everything leaves nothing for an output to show.
    let outputs = if targets.is_empty() {
        state
            .outputs
            .iter()
            .map(|(name, before)| super::outputs::removed(name, before))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Plan {
        format: PLAN_FORMAT.to_string(),
        format_version: PLAN_FORMAT_VERSION,
        stack: state.stack.clone(),
        spec: None,
        spec_hash: hash::hash_of(&names),
        lineage: state.lineage.clone(),
        serial: state.serial,
        destroy: true,
        refresh: false,
        targets: targets.to_vec(),
        summary: summarize(&changes),
        vars: BTreeMap::new(),
        moves: Vec::new(),
        changes,
        outputs,
        pauses: Vec::new(),
        gates: Vec::new(),
        resolved: Default::default(),
        partial: Default::default(),
        real_outputs: Default::default(),
    })
}

/// Deletes for resources in the state that `gone` says are no longer wanted (restricted to
/// `targets` when given), plus replaced objects still waiting for their delete. Ordered so that
/// whatever depends on a resource goes before it.
pub(super) fn deletes(
    state: &State,
    targets: &[String],
    gone: impl Fn(&str) -> bool,
) -> Vec<Change> {
    let wanted =
        |name: &str| targets.is_empty() || targets.iter().any(|t| crate::template::covers(t, name));
    let doomed: BTreeSet<&str> = state
        .resources
        .keys()
        .map(String::as_str)
        .filter(|n| wanted(n) && gone(n))
        .collect();
    // Kahn's algorithm on the reversed edges: a resource is ready once nothing doomed that
    // depends on it is left. Ties go by name, so the order is stable.
    let mut blockers: BTreeMap<&str, usize> = doomed.iter().map(|n| (*n, 0)).collect();
    for name in &doomed {
        for dep in &state.resources[*name].dependencies {
            if let Some(count) = blockers.get_mut(dep.as_str())
                && dep != name
            {
                *count += 1;
            }
        }
    }
    let mut ready: BTreeSet<&str> = blockers
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::with_capacity(doomed.len());
    while let Some(name) = ready.pop_first() {
        order.push(name);
        for dep in &state.resources[name].dependencies {
            if let Some(count) = blockers.get_mut(dep.as_str())
                && dep != name
            {
                *count -= 1;
                if *count == 0 {
                    ready.insert(dep.as_str());
                }
            }
        }
    }
    // A cycle cannot be recorded by fabrik, but a hand-edited state must not stall destroy.
    let placed: BTreeSet<&str> = order.iter().copied().collect();
    order.extend(doomed.iter().copied().filter(|n| !placed.contains(n)));
    let mut out = Vec::with_capacity(order.len());
    {
        for name in order {
            let r = &state.resources[name];
            out.push(Change {
                attributes: r
                    .inputs
                    .iter()
                    .map(|(k, v)| AttributeChange {
                        name: k.clone(),
                        before: Some(v.clone()),
                        after: None,
                        after_unknown: false,
                        force_new: false,
                    })
                    .collect(),
                depends_on: r.dependencies.clone(),
                ..Change::new(name, &r.type_name, Action::Delete)
            });
        }
    }
    for (name, r) in &state.resources {
        if !wanted(name) {
            continue;
        }
        for old in &r.deposed {
            out.push(Change {
                reason: Some("replaced earlier; its delete did not complete".to_string()),
                ..Change::delete_deposed(name, &old.type_name, &old.id)
            });
        }
    }
    out
}

/// Refuses a destroy plan that would delete a protected resource. The state's record decides
/// (the spec may be gone, or say `protect: false` that no apply has recorded yet); a spec that
/// asks for protection is heeded too.
pub fn refuse_protected(
    plan: &Plan,
    state: &State,
    spec: Option<&crate::spec::Spec>,
) -> Result<(), Error> {
    let protected: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && c.deposed.is_none())
        .filter(|c| {
            state.resources.get(&c.name).is_some_and(|r| r.protect)
                || spec
                    .and_then(|s| s.resource(&c.name))
                    .is_some_and(|r| r.protect)
        })
        .map(|c| c.name.as_str())
        .collect();
    if protected.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "refusing to destroy protected resource{} {}: set `protect: false` in the spec and apply that first, or leave {} out with --target",
        if protected.len() == 1 { "" } else { "s" },
        protected
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if protected.len() == 1 { "it" } else { "them" },
    )))
}
