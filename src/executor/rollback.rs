//! Undoing what a failed run completed, newest first: each completed change leaves an [`Undo`],
//! and each undo call is journaled like any other call, so a rollback cut short is recovered
//! like an apply.

use std::time::{Duration, Instant};

use fabrik_provider::{Attributes, Target};

use super::Verb;
use super::run::Run;
use super::worker::{retry, with_client};
use crate::error::Error;
use crate::resolve;
use crate::state::journal;
use crate::state::{Intent, IntentAction, ResourceState};
use fabrik_provider::wait::on_behalf_of;

/// A completed change that rollback would undo, newest last. What the change made is the
/// resource's record in the state (a resource changes once per run). `Found` is a create that
/// found its object already there ([`Verb::Found`]).
pub(super) enum Undo {
    Created {
        name: String,
        copy: Option<String>,
    },
    Found {
        name: String,
    },
    Updated {
        prior: ResourceState,
        name: String,
        copy: Option<String>,
    },
    ReplacedBefore {
        prior: ResourceState,
        name: String,
        copy: Option<String>,
    },
    ReplacedAfter {
        name: String,
    },
}

impl Undo {
    pub(super) fn name(&self) -> &str {
        match self {
            Undo::Created { name, .. }
            | Undo::Found { name }
            | Undo::Updated { name, .. }
            | Undo::ReplacedBefore { name, .. }
            | Undo::ReplacedAfter { name } => name,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Undo::Created { name, .. } => format!("{name}: created"),
            Undo::Found { name } => format!("{name}: found already there"),
            Undo::Updated { name, .. } => format!("{name}: updated"),
            Undo::ReplacedBefore { name, .. } | Undo::ReplacedAfter { name } => {
                format!("{name}: replaced")
            }
        }
    }

    /// The copy of what the change overwrote, if the provider kept one.
    pub(super) fn copy(&self) -> Option<&str> {
        match self {
            Undo::Created { copy, .. }
            | Undo::Updated { copy, .. }
            | Undo::ReplacedBefore { copy, .. } => copy.as_deref(),
            Undo::Found { .. } | Undo::ReplacedAfter { .. } => None,
        }
    }
}

impl Run<'_, '_> {
    /// Undoes the completed changes, newest first, journaling each undo call.
    pub(super) fn roll_back(&mut self) -> Result<(), Error> {
        while let Some(undo) = self.undo.pop() {
            self.exec.progress.flush();
            let keep = self
                .exec
                .operation
                .resource(undo.name())
                .is_some_and(|r| r.keep_on_failure);
            if keep {
                self.kept
                    .push(format!("{} (on_failure: keep)", undo.describe()));
                continue;
            }
            if let Undo::ReplacedAfter { name } = &undo {
                self.remaining.push(format!(
                    "{name}: replaced (its old object was deleted before the new one was created)"
                ));
                continue;
            }
            let Some(now) = self.state.resources.get(undo.name()).cloned() else {
                // Nothing recorded to undo (cannot happen: a change is recorded before its
                // undo is kept); say so rather than guess.
                self.remaining.push(format!(
                    "{}: not in the state, so not rolled back",
                    undo.describe()
                ));
                continue;
            };
            // A copy of what the change overwrote is put back as it was, byte for byte.
            if let Some(copy) = undo.copy().map(str::to_string) {
                self.restore_copy(undo, &now, &copy)?;
                continue;
            }
            let (intent, restore) = match undo {
                Undo::Created { name, .. }
                    if self.exec.operation.resource(&name).is_some_and(|r| r.adopt) =>
                {
                    // It existed before this stack took it over: deleting it is no undo.
                    self.remaining.push(format!(
                        "{name}: adopted and left as it now is (a rollback never deletes an object fabrik did not create)"
                    ));
                    continue;
                }
                Undo::Found { name } => {
                    // It ran before this apply (started by a run whose state was lost):
                    // stopping it is no undo, forgetting it is. The next apply finds it again.
                    self.record(vec![journal::Change::Remove { name: name.clone() }])?;
                    self.exec
                        .progress
                        .done(&name, &now.type_name, Verb::Forgotten, Duration::ZERO);
                    continue;
                }
                Undo::Created { name, .. } => {
                    let intent = self.undo_intent(&name, &now, IntentAction::Delete, &now.inputs);
                    (intent, journal::Change::Remove { name })
                }
                Undo::Updated { prior, name, .. } => {
                    let intent = self.undo_intent(&name, &now, IntentAction::Update, &prior.inputs);
                    (
                        intent,
                        journal::Change::Put {
                            name,
                            resource: Box::new(prior),
                        },
                    )
                }
                Undo::ReplacedBefore { prior, name, .. } => {
                    let intent = self.undo_intent(&name, &now, IntentAction::Delete, &now.inputs);
                    (
                        intent,
                        journal::Change::Put {
                            name,
                            resource: Box::new(prior),
                        },
                    )
                }
                Undo::ReplacedAfter { .. } => unreachable!("handled above"),
            };
            let name = intent.name.clone();
            // The calls get real values; the state and intents hold sensitive ones by hash.
            let now_real = self
                .real
                .get(&name)
                .cloned()
                .unwrap_or_else(|| now.inputs.clone());
            let prior_real = if intent.action == IntentAction::Update
                && intent.inputs.values().any(crate::secrets::is_masked)
            {
                match self.prior_real.get(&name) {
                    Some(real) => real.clone(),
                    None => {
                        self.remaining.push(format!(
                            "{name}: could not be rolled back: its previous sensitive values could not be read back"
                        ));
                        continue;
                    }
                }
            } else {
                intent.inputs.clone()
            };
            let id = self.intent_id();
            self.record(vec![journal::Change::Intent {
                intent: id,
                call: Box::new(intent.clone()),
            }])?;
            let started = Instant::now();
            let target = Target {
                stack: &self.state.stack,
                name: now.marker(&name),
                type_name: &now.type_name,
            };
            let result =
                on_behalf_of(&name, || {
                    with_client(self.exec.clients, self.exec.registry, &now.type_name, |c| {
                        match intent.action {
                            IntentAction::Update => {
                                retry(|| c.update(target, &now.id, &now_real, &prior_real))
                                    .map(Some)
                            }
                            _ => retry(|| c.delete(target, &now.id, &now_real)).map(|()| None),
                        }
                    })
                });
            let settled = journal::Change::Settled { intent: id };
            match result {
                Ok(applied) => {
                    // An update back gives the object's outputs as they are now.
                    let sensitive = self.sensitive_of(&name);
                    let restore = match (restore, applied) {
                        (journal::Change::Put { name, resource }, Some(applied)) => {
                            journal::Change::Put {
                                name,
                                resource: Box::new(ResourceState {
                                    id: applied.id,
                                    outputs: resolve::mask_outputs(
                                        applied.outputs,
                                        sensitive,
                                        self.exec.secrets,
                                    ),
                                    ..*resource
                                }),
                            }
                        }
                        (restore, _) => restore,
                    };
                    self.record(vec![restore, settled])?;
                    self.exec.progress.done(
                        &name,
                        &now.type_name,
                        Verb::RolledBack,
                        started.elapsed(),
                    );
                }
                Err(e) => {
                    self.record(vec![settled])?;
                    self.exec
                        .progress
                        .failed(&name, &now.type_name, "rollback failed", None);
                    self.remaining
                        .push(format!("{name}: could not be rolled back: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Undoes a change by putting back the provider's copy of what it overwrote: the object
    /// is again what it was before this run (a user's file, another resource's), and the state
    /// goes back to its record from before the change.
    fn restore_copy(&mut self, undo: Undo, now: &ResourceState, copy: &str) -> Result<(), Error> {
        let (name, record, action) = match undo {
            Undo::Created { name, .. } => (
                name.clone(),
                journal::Change::Remove { name },
                IntentAction::Delete,
            ),
            Undo::Updated { prior, name, .. } | Undo::ReplacedBefore { prior, name, .. } => (
                name.clone(),
                journal::Change::Put {
                    name,
                    resource: Box::new(prior),
                },
                IntentAction::Update,
            ),
            Undo::Found { .. } | Undo::ReplacedAfter { .. } => unreachable!("keeps no copy"),
        };
        let intent = self.undo_intent(&name, now, action, &now.inputs);
        let id = self.intent_id();
        self.record(vec![journal::Change::Intent {
            intent: id,
            call: Box::new(intent),
        }])?;
        let started = Instant::now();
        let target = Target {
            stack: &self.state.stack,
            name: now.marker(&name),
            type_name: &now.type_name,
        };
        let result = on_behalf_of(&name, || {
            with_client(self.exec.clients, self.exec.registry, &now.type_name, |c| {
                retry(|| c.restore(target, copy))
            })
        });
        let settled = journal::Change::Settled { intent: id };
        match result {
            Ok(()) => {
                self.record(vec![record, settled])?;
                self.exec
                    .progress
                    .done(&name, &now.type_name, Verb::RolledBack, started.elapsed());
            }
            Err(e) => {
                self.record(vec![settled])?;
                self.exec
                    .progress
                    .failed(&name, &now.type_name, "rollback failed", None);
                self.remaining.push(format!(
                    "{name}: could not be rolled back: {e} (the copy of what it overwrote is kept: {copy})"
                ));
                // The copy is the only trace of what was there: never dropped.
                self.copies.retain(|(_, c)| c != copy);
            }
        }
        Ok(())
    }

    fn undo_intent(
        &self,
        name: &str,
        now: &ResourceState,
        action: IntentAction,
        inputs: &Attributes,
    ) -> Intent {
        Intent {
            name: name.to_string(),
            type_name: now.type_name.clone(),
            action,
            object: Some(now.id.clone()),
            inputs: inputs.clone(),
            dependencies: Vec::new(),
            deposes: None,
            sensitive: Vec::new(),
        }
    }
}
