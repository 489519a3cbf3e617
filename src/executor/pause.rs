//! Objects paused while what they watch changes (`plan::Pause`: an uptime monitor), so that
//! neither a release nor its rollback pages anyone.
//!
//! A pause is one journaled call: its intent (`action: pause`) is made durable before the
//! provider pauses the object, and it is settled only once the object is active again. A run
//! killed in between leaves the intent pending, and the next apply's recovery resumes the
//! object (`src/recover.rs`). The calls are short and made from the thread that schedules, right
//! before the first watched change is prepared and right after the last one is released (its
//! gates passed); the object's own update, if the plan has one, waits until it is resumed.

use std::collections::BTreeSet;
use std::time::Instant;

use fabrik_provider::Target;
use fabrik_provider::wait::{Wait, on_behalf_of};

use super::Verb;
use super::run::Run;
use super::worker::{retry, with_client};
use crate::error::{Cause, Failure};
use crate::plan::Pause;
use crate::state::journal;
use crate::state::{Intent, IntentAction};

/// One object of the plan's pauses, as the run goes.
pub(super) struct Watch {
    pub(super) pause: Pause,
    /// Watched changes not released yet.
    left: BTreeSet<String>,
    phase: Phase,
    /// Shown to people while it is paused (src/render/waits.rs).
    shown: Option<Wait>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// None of its changes has started.
    Waiting,
    /// Paused by this run under this intent.
    Paused(u64),
    /// Resumed after its changes passed their gates: a rollback pauses it again.
    Resumed,
    /// It was paused already (by hand): the run leaves it so.
    Untouched,
}

impl Watch {
    pub(super) fn new(pause: Pause) -> Self {
        Watch {
            left: pause.watches.iter().cloned().collect(),
            pause,
            phase: Phase::Waiting,
            shown: None,
        }
    }
}

impl Run<'_, '_> {
    /// Pauses what watches `change` before it starts. `false` when a pause did not go
    /// through: its failure is recorded, and the change must not start.
    pub(super) fn pause_before(&mut self, change: &str) -> bool {
        for i in 0..self.watches.len() {
            let watch = &self.watches[i];
            if watch.phase == Phase::Waiting
                && watch.left.contains(change)
                && let Err(failure) = self.pause(i)
            {
                let watch = &self.watches[i].pause;
                self.exec
                    .progress
                    .failed(&watch.name, &watch.type_name, "failed", None);
                self.failures.push(failure);
                return false;
            }
        }
        true
    }

    /// Resumes what watched `change` once every change it watches is released.
    pub(super) fn resume_after(&mut self, change: &str) {
        for i in 0..self.watches.len() {
            if !self.watches[i].left.remove(change) {
                continue;
            }
            // Once something failed, the rollback resumes it after undoing what it watches.
            if self.watches[i].left.is_empty()
                && self.failures.is_empty()
                && matches!(self.watches[i].phase, Phase::Paused(_))
                && let Err(failure) = self.resume(i)
            {
                let watch = &self.watches[i].pause;
                self.exec
                    .progress
                    .failed(&watch.name, &watch.type_name, "failed", None);
                self.failures.push(failure);
            }
        }
    }

    /// Before a rollback: pauses again what was resumed while a change it watches is about
    /// to be undone.
    pub(super) fn pause_for_rollback(&mut self) {
        let undone: BTreeSet<&str> = self.undo.iter().map(super::rollback::Undo::name).collect();
        let again: Vec<usize> = (0..self.watches.len())
            .filter(|&i| {
                self.watches[i].phase == Phase::Resumed
                    && self.watches[i]
                        .pause
                        .watches
                        .iter()
                        .any(|w| undone.contains(w.as_str()))
            })
            .collect();
        // Best effort: the rollback goes ahead either way, and nothing stays because of it.
        for i in again {
            if let Err(failure) = self.pause(i) {
                let watch = &self.watches[i].pause;
                // The report does not list it: the rollback went ahead.
                self.exec.progress.failed(
                    &watch.name,
                    &watch.type_name,
                    "failed",
                    Some(&format!("not paused for the rollback: {}", failure.message)),
                );
            }
        }
    }

    /// After a rollback, or when a failed run keeps its changes: resumes everything this run
    /// paused. One that cannot be resumed stays announced in the journal, and the next apply
    /// resumes it.
    pub(super) fn resume_all(&mut self) {
        for i in 0..self.watches.len() {
            if let Phase::Paused(_) = self.watches[i].phase
                && let Err(failure) = self.resume(i)
            {
                let watch = &self.watches[i].pause;
                self.exec
                    .progress
                    .failed(&watch.name, &watch.type_name, "failed", None);
                self.remaining.push(format!(
                    "{}: still paused ({}); the next apply resumes it",
                    watch.name, failure.message
                ));
            }
        }
    }

    fn pause(&mut self, i: usize) -> Result<(), Failure> {
        let Pause {
            name, type_name, ..
        } = self.watches[i].pause.clone();
        let Some(now) = self.state.resources.get(&name).cloned() else {
            // Gone from the state: nothing to pause.
            self.watches[i].phase = Phase::Untouched;
            return Ok(());
        };
        let id = self.intent_id();
        let intent = Intent {
            name: name.clone(),
            type_name: type_name.clone(),
            action: IntentAction::Pause,
            object: Some(now.id.clone()),
            inputs: now.inputs.clone(),
            dependencies: Vec::new(),
            deposes: None,
            sensitive: Vec::new(),
        };
        let failed = |message: String| Failure::of(&name, Cause::State, message);
        self.record(vec![journal::Change::Intent {
            intent: id,
            call: Box::new(intent),
        }])
        .map_err(|e| failed(format!("the pause could not be recorded: {e}")))?;
        self.exec.progress.flush();
        let started = Instant::now();
        let target = Target {
            stack: &self.state.stack,
            name: now.marker(&name),
            type_name: &type_name,
        };
        let result = with_client(self.exec.clients, self.exec.registry, &type_name, |c| {
            retry(|| c.pause(target, &now.id))
        });
        match result {
            Ok(true) => {
                self.watches[i].phase = Phase::Paused(id);
                let what = paused_while(&self.watches[i].pause.watches);
                self.watches[i].shown = Some(on_behalf_of(&name, || Wait::start(what, None)));
                self.exec
                    .progress
                    .done(&name, &type_name, Verb::Paused, started.elapsed());
                Ok(())
            }
            Ok(false) => {
                self.watches[i].phase = Phase::Untouched;
                self.record(vec![journal::Change::Settled { intent: id }])
                    .map_err(|e| failed(e.to_string()))
            }
            Err(e) => {
                if e.kind == fabrik_provider::ErrorKind::Transient {
                    // It may have paused it before the answer was lost: the intent stays, and
                    // the rollback (or the next run) resumes it.
                    self.watches[i].phase = Phase::Paused(id);
                } else {
                    // Refused (not ours, gone): nothing was paused.
                    self.watches[i].phase = Phase::Untouched;
                    self.record(vec![journal::Change::Settled { intent: id }])
                        .map_err(|e| failed(e.to_string()))?;
                }
                Err(Failure::of(
                    &name,
                    Cause::Provider(e.kind),
                    format!("could not pause it while what it watches changes: {e}"),
                ))
            }
        }
    }

    fn resume(&mut self, i: usize) -> Result<(), Failure> {
        let Phase::Paused(intent) = self.watches[i].phase else {
            return Ok(());
        };
        let Pause {
            name, type_name, ..
        } = self.watches[i].pause.clone();
        let failed = |kind, message: String| Failure::of(&name, kind, message);
        let Some(now) = self.state.resources.get(&name).cloned() else {
            return Err(failed(
                Cause::State,
                "it is no longer in the state, so it could not be resumed".into(),
            ));
        };
        self.exec.progress.flush();
        let started = Instant::now();
        let target = Target {
            stack: &self.state.stack,
            name: now.marker(&name),
            type_name: &type_name,
        };
        with_client(self.exec.clients, self.exec.registry, &type_name, |c| {
            retry(|| c.resume(target, &now.id))
        })
        .map_err(|e| failed(Cause::Provider(e.kind), format!("could not resume it: {e}")))?;
        self.record(vec![journal::Change::Settled { intent }])
            .map_err(|e| failed(Cause::State, e.to_string()))?;
        self.watches[i].phase = Phase::Resumed;
        self.watches[i].shown = None;
        self.exec
            .progress
            .done(&name, &type_name, Verb::Resumed, started.elapsed());
        Ok(())
    }
}

/// What a paused object waits for, as its wait is shown: `paused while web changes`.
fn paused_while(watches: &[String]) -> String {
    match watches {
        [one] => format!("paused while {one} changes"),
        [rest @ .., last] => format!("paused while {} and {last} change", rest.join(", ")),
        [] => "paused".to_string(),
    }
}
