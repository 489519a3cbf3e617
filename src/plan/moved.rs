//! The spec's moves (`moved:`) against the state: which are still to be made, and which the
//! state refuses. A plan is made against the state as it will be once they are made
//! ([`view`]), so a renamed resource that changed nothing is planned as no change at all; the
//! executor records them first (`journal::Change::Move`), calling no provider.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Action, Plan};
use crate::error::Error;
use crate::registry::Registry;
use crate::source::{Diagnostic, Diagnostics};
use crate::spec::Spec;
use crate::state::State;

/// A resource the apply renames in the state; its object stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The moves still to be made: those whose `from` the state holds. A `from` the state does
/// not hold is a move made already (the entry may stay in the spec for good) or of a resource
/// never applied: nothing to do.
///
/// # Errors
/// [`Error::Spec`], located at the entry, when the state holds `to` as well (two objects for
/// one address) or the spec gives `to` another type than the state records for `from`.
pub fn pending(spec: &Spec, state: &State) -> Result<Vec<Moved>, Error> {
    let mut moves = Vec::new();
    let mut problems = Vec::new();
    for m in &spec.moved {
        let Some(old) = state.resources.get(&m.from) else {
            continue;
        };
        if let Some(there) = state.resources.get(&m.to) {
            problems.push(
                Diagnostic::new(
                    m.to_loc,
                    format!(
                        "cannot move `{}` to `{}`: the state already tracks `{}` ({}, {})",
                        m.from, m.to, m.to, there.type_name, there.id
                    ),
                )
                .help(format!(
                    "one address holds one object: forget the one not wanted (`fabrik state rm {}` or `fabrik state rm {}`), or remove this entry",
                    m.from, m.to
                )),
            );
            continue;
        }
        let Some(now) = spec.resource(&m.to) else {
            continue;
        };
        if now.type_name != old.type_name {
            problems.push(
                Diagnostic::new(
                    m.to_loc,
                    format!(
                        "`{}` is a `{}` in the state and `{}` a `{}` in the spec: a move keeps the object, and with it its type",
                        m.from, old.type_name, m.to, now.type_name
                    ),
                )
                .help("remove this entry to replace it: the old object is deleted and a new one created"),
            );
            continue;
        }
        moves.push(Moved {
            from: m.from.clone(),
            to: m.to.clone(),
            type_name: old.type_name.clone(),
        });
    }
    if problems.is_empty() {
        Ok(moves)
    } else {
        Err(Error::Spec(Diagnostics::sorted(
            spec.source.clone(),
            problems,
        )))
    }
}

/// The state as it is once `moves` are made; borrowed as it is when there are none.
pub fn view<'s>(state: &'s State, moves: &[Moved]) -> Cow<'s, State> {
    if moves.is_empty() {
        return Cow::Borrowed(state);
    }
    let mut moved = state.clone();
    for m in moves {
        moved.rename(&m.from, &m.to);
    }
    Cow::Owned(moved)
}

/// Refuses a plan that makes a new object under a name whose marker an object of the same
/// type, of another resource, carries since it was moved from that name: the provider would
/// tell the two apart by nothing (a process finds its own by its marker). Types whose objects
/// carry no marker (a file, which is handed over by its path instead) are not concerned.
///
/// # Errors
/// [`Error::Spec`] at each new resource in that position.
pub fn refuse_marker_clashes(
    spec: &Spec,
    state: &State,
    registry: &Registry,
    plan: &Plan,
) -> Result<(), Error> {
    // (the name a marker carries, the resource whose object carries it, the object's type)
    let mut carriers: Vec<(&str, &str, &str)> = Vec::new();
    for (name, r) in &state.resources {
        if let Some(marker) = &r.marked_as {
            carriers.push((marker, name, &r.type_name));
        }
        for d in &r.deposed {
            if let Some(marker) = &d.marked_as {
                carriers.push((marker, name, &d.type_name));
            }
        }
    }
    if carriers.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    for change in plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace) && !c.state_only)
        .filter(|c| !crate::place::hands_over(registry, &c.type_name))
    {
        let Some(&(_, holder, _)) = carriers.iter().find(|(marker, holder, type_name)| {
            *marker == change.name && *holder != change.name && *type_name == change.type_name
        }) else {
            continue;
        };
        let Some(resource) = spec.resource(&change.name) else {
            continue;
        };
        problems.push(
            Diagnostic::new(
                resource.loc,
                format!(
                    "`{}` cannot be made yet: the object of `{holder}`, moved from `{}`, still carries the marker `fabrik:{}/{}`",
                    change.name, change.name, spec.stack, change.name
                ),
            )
            .help(format!(
                "give the new resource another name, or let `{holder}` be replaced first (its new object is marked with its own name)"
            )),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Spec(Diagnostics::sorted(
            spec.source.clone(),
            problems,
        )))
    }
}
