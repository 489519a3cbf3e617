//! Which existing objects a plan pauses while it changes what they watch: an uptime monitor
//! whose dependencies (transitively) include a resource this plan creates, updates or
//! replaces would page someone for a release or its rollback. The provider says which types
//! and inputs can be paused (`Provider::pausable`); the executor pauses and resumes them
//! (`src/executor/pause.rs`).

use serde::{Deserialize, Serialize};

use super::{Action, Change, Input};

/// An object paused while the changes it watches run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The changes of this plan it watches, in apply order: it is paused before the first of
    /// them starts and resumed once all of them have passed their gates.
    pub watches: Vec<String>,
}

/// Whether a change calls its provider in the apply phase (what a paused object waits out).
pub fn is_applied(change: &Change) -> bool {
    matches!(
        change.action,
        Action::Create | Action::Update | Action::Replace
    ) && !change.state_only
        && !change.reverify
}

/// Every object of the state that stays (neither created, replaced nor deleted by this plan),
/// whose provider would pause it, and whose dependency closure holds a change of this plan.
pub(super) fn pauses(input: &Input<'_>, changes: &[Change]) -> Vec<Pause> {
    let applied: Vec<&Change> = changes.iter().filter(|c| is_applied(c)).collect();
    if applied.is_empty() {
        return Vec::new();
    }
    let mut pauses = Vec::new();
    for &i in &input.graph.order {
        let resource = &input.spec.resources[i];
        let Some(recorded) = input.state.resources.get(&resource.name) else {
            continue;
        };
        if recorded.type_name != resource.type_name {
            continue;
        }
        let own = changes.iter().find(|c| c.name == resource.name);
        if own
            .is_some_and(|c| matches!(c.action, Action::Create | Action::Replace | Action::Delete))
        {
            continue;
        }
        // Paused as it is and as this plan leaves it: `paused: true` or an opt-out written in
        // the same run counts already.
        let mut inputs = recorded.inputs.clone();
        for attr in own.iter().flat_map(|c| &c.attributes) {
            if let Some(after) = &attr.after {
                inputs.insert(attr.name.clone(), after.clone());
            }
        }
        let pausable = input
            .registry
            .provider_of(&resource.type_name)
            .and_then(|p| input.registry.provider(p))
            .is_some_and(|p| {
                p.pausable(&resource.type_name, &recorded.inputs)
                    && p.pausable(&resource.type_name, &inputs)
            });
        if !pausable {
            continue;
        }
        let closure = input.graph.with_dependencies(&[i]);
        let watches: Vec<String> = applied
            .iter()
            .filter(|c| c.name != resource.name)
            .filter(|c| input.spec.index_of(&c.name).is_some_and(|j| closure[j]))
            .map(|c| c.name.clone())
            .collect();
        if !watches.is_empty() {
            pauses.push(Pause {
                name: resource.name.clone(),
                type_name: resource.type_name.clone(),
                watches,
            });
        }
    }
    pauses
}
