//! What one run holds (the state, the journal, the undo stack, what failed) and how it records:
//! every record is applied in memory and made durable in one append and fsync with the others
//! of its round.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use fabrik_provider::Attributes;

use super::rollback::Undo;
use super::schedule::{apply_slots, delete_slots, old_half};
use super::{Executor, Operation, Outcome, Verb};
use crate::error::{Cause, Error, Failure};
use crate::interrupt::Signal;
use crate::plan::{Action, Change, Plan};
use crate::resolve;
use crate::state::journal::{self, Record};
use crate::state::{JournalWriter, ResourceState, State};

pub(super) struct Run<'e, 's> {
    pub(super) exec: &'e Executor<'e>,
    pub(super) state: &'s mut State,
    pub(super) journal: &'s mut dyn JournalWriter,
    pub(super) serial: u64,
    pub(super) next_intent: u64,
    pub(super) outcome: Outcome,
    pub(super) undo: Vec<Undo>,
    /// What failed, in the order it was met; rollback follows from any.
    pub(super) failures: Vec<Failure>,
    /// Changes that stay although the run failed, and why.
    pub(super) remaining: Vec<String>,
    /// Changes left in place on purpose (`on_failure: keep`).
    pub(super) kept: Vec<String>,
    /// Which input fields of each spec resource (file order) hold secrets.
    pub(super) sensitive: Vec<BTreeSet<String>>,
    /// The real inputs of each resource changed in this run, kept in memory only: the state
    /// holds sensitive ones by their hash, and a rollback needs the values.
    pub(super) real: HashMap<String, Attributes>,
    /// The real prior inputs of each updated resource, read back before the update.
    pub(super) prior_real: HashMap<String, Attributes>,
    /// The real outputs the state holds by their keyed hash only (derived from secrets): as
    /// the plan read them, then as this run's calls report them.
    pub(super) real_outputs: HashMap<String, Attributes>,
    /// Records applied in memory, encoded and waiting for the next fsync.
    pub(super) staged: Vec<String>,
    /// Copies providers kept of what this run overwrote (type, copy), dropped when it is over.
    pub(super) copies: Vec<(String, String)>,
    /// Resources this plan deletes or replaces: their places may pass to another resource.
    pub(super) leaving: HashSet<String>,
    /// Which resource of the state holds each place, worked out when first needed.
    pub(super) holders: Option<HashMap<String, Vec<String>>>,
    /// Updates that turned out at apply time to change nothing ([`Verb::Unchanged`]): their
    /// record still follows the spec (dependencies, `protect`), as a state-only change's does.
    pub(super) unchanged: HashSet<String>,
    /// Objects paused while the changes they watch run ([`crate::plan::Pause`]).
    pub(super) watches: Vec<super::pause::Watch>,
}

impl Run<'_, '_> {
    pub(super) fn execute(
        &mut self,
        plan: &Plan,
        mut resolved: HashMap<String, crate::plan::Resolved>,
    ) -> Result<(), Error> {
        let applies: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| !c.state_only)
            .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace))
            .collect();
        let mut slots = apply_slots(&applies);
        for slot in &mut slots {
            slot.resolved = resolved.remove(&slot.change.name);
        }
        // A paused object's own update waits until it is resumed: it then starts from an
        // active object, and it is what leaves it paused or not as the spec says.
        for watch in &self.watches {
            let index = |name: &str| slots.iter().position(|s| s.change.name == name);
            if let Some(own) = index(&watch.pause.name) {
                let waits: Vec<usize> = watch
                    .pause
                    .watches
                    .iter()
                    .filter_map(|w| index(w))
                    .collect();
                slots[own].waits_on.extend(waits);
                slots[own].waits_on.sort_unstable();
                slots[own].waits_on.dedup();
            }
        }
        self.phase(&mut slots)?;
        if self.failures.is_empty() {
            self.stack_gates();
        }
        if self.exec.interrupted() {
            blame_signal(&mut self.failures, crate::interrupt::received());
        }
        if !self.failures.is_empty() {
            if self.exec.rollback {
                self.exec.progress.rolling_back();
                // A signal cut the providers' waits short to stop the run; the undo calls must
                // wait out a rate limit like any other (a second signal ends the process).
                self.exec.context.cancel.resume();
                self.pause_for_rollback();
                self.roll_back()?;
                self.resume_all();
            } else {
                self.remaining.extend(self.undo.iter().map(Undo::describe));
                self.resume_all();
            }
            return Ok(());
        }
        // Every change is in and verified: fabrik's own records change now (a rolled-back run
        // leaves them as they were, `protect` included), then the deletes, including the old
        // halves of create-before-destroy replacements made above.
        self.record_only(plan)?;
        let old_halves: Vec<Change> = self
            .undo
            .iter()
            .filter_map(|u| match u {
                Undo::ReplacedBefore { name, prior, .. } => Some(old_half(name, prior)),
                _ => None,
            })
            .collect();
        // Who holds what changed with the applies above.
        self.holders = None;
        let deletes: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .chain(&old_halves)
            .collect();
        self.phase(&mut delete_slots(&deletes))?;
        if !self.failures.is_empty() {
            // Deletes run after every gate passed: what was applied stays.
            self.remaining.extend(self.undo.iter().map(Undo::describe));
            self.remaining.extend(
                self.failures.iter().map(|f| {
                    format!("{f} (still recorded in the state; the next apply retries it)")
                }),
            );
            return Ok(());
        }
        self.record_outputs()
    }

    /// The stack's outputs, worked out from the resources as recorded once everything went
    /// through; a destroy that leaves no resource leaves no output either.
    fn record_outputs(&mut self) -> Result<(), Error> {
        let outputs = match self.exec.operation {
            Operation::Apply(spec) => crate::plan::outputs::recorded(
                spec,
                self.exec.registry,
                self.state,
                self.exec.secrets,
            ),
            Operation::Destroy if self.state.resources.is_empty() => Default::default(),
            Operation::Destroy => return Ok(()),
        };
        if outputs == self.state.outputs {
            return Ok(());
        }
        self.record(vec![journal::Change::Outputs { outputs }])
    }

    /// Renames resources in the state (`moved:`), before any change that names them by their
    /// new names: one record each, all made durable together. They call no provider, so they
    /// stay even if the run is rolled back; the next plan finds them made.
    pub(super) fn moves(&mut self, moves: &[crate::plan::moved::Moved]) -> Result<(), Error> {
        let records = moves
            .iter()
            .map(|m| journal::Change::Move {
                from: m.from.clone(),
                to: m.to.clone(),
            })
            .collect();
        self.record(records)?;
        for m in moves {
            self.outcome.moved += 1;
            self.exec.progress.done(
                &format!("{} → {}", m.from, m.to),
                &m.type_name,
                Verb::Moved,
                Duration::ZERO,
            );
        }
        Ok(())
    }

    /// Changes to fabrik's own record of a resource (`protect`, dependencies), which call no
    /// provider: the state-only changes, and the updates that turned out to change nothing.
    fn record_only(&mut self, plan: &Plan) -> Result<(), Error> {
        let mut records = Vec::new();
        for change in plan
            .changes
            .iter()
            .filter(|c| c.state_only || self.unchanged.contains(&c.name))
        {
            let Some(now) = self.state.resources.get(&change.name) else {
                continue;
            };
            // Only an apply plans state-only changes; a destroy's plan has none.
            let Operation::Apply(spec) = self.exec.operation else {
                continue;
            };
            let protect = spec.resource(&change.name).is_some_and(|r| r.protect);
            if !change.state_only && now.dependencies == change.depends_on && now.protect == protect
            {
                continue;
            }
            // Outputs derived from secrets that an earlier fabrik recorded in plain are kept by
            // their hash from now on; what refers to them in this run gets the real values.
            let sensitive = spec.index_of(&change.name).map(|i| &self.sensitive[i]);
            if sensitive.is_some_and(|s| now.outputs.keys().any(|k| s.contains(k))) {
                let real = self.real_outputs.entry(change.name.clone()).or_default();
                for (k, v) in now
                    .outputs
                    .iter()
                    .filter(|(_, v)| !crate::secrets::is_masked(v))
                {
                    real.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            let outputs = resolve::mask_outputs(now.outputs.clone(), sensitive, self.exec.secrets);
            records.push(journal::Change::Put {
                name: change.name.clone(),
                resource: Box::new(ResourceState {
                    protect,
                    dependencies: change.depends_on.clone(),
                    outputs,
                    ..now.clone()
                }),
            });
            // An unchanged update was reported as such already.
            if change.state_only {
                self.outcome.changed += 1;
                self.exec.progress.done(
                    &change.name,
                    &change.type_name,
                    Verb::Updated,
                    Duration::ZERO,
                );
            }
        }
        self.record(records)
    }

    /// Appends records to the journal with one fsync, then applies them to the state.
    pub(super) fn record(&mut self, changes: Vec<journal::Change>) -> Result<(), Error> {
        self.stage(changes);
        self.flush()
    }

    /// Applies records to the state in memory and queues them for the journal; nothing that
    /// builds on them may start before [`Run::flush`].
    pub(super) fn stage(&mut self, changes: Vec<journal::Change>) {
        let records: Vec<Record> = changes
            .into_iter()
            .map(|change| Record {
                serial: self.serial,
                change,
            })
            .collect();
        self.staged.extend(journal::encode_all(&records));
        for record in records {
            self.state.apply(record);
        }
    }

    /// Makes the queued records durable: one append, one fsync.
    pub(super) fn flush(&mut self) -> Result<(), Error> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.staged);
        self.journal.append(&records)
    }

    /// Shows a change's failure beside its resource and keeps it for the report.
    pub(super) fn failed(&mut self, change: &Change, failure: Failure) {
        self.exec
            .progress
            .failed(&change.name, &change.type_name, "failed", None);
        self.failures.push(failure);
    }

    /// Which input fields of a resource hold secrets. A destroy sends what the state recorded,
    /// so it knows none.
    pub(super) fn sensitive_of(&self, name: &str) -> Option<&BTreeSet<String>> {
        match self.exec.operation {
            Operation::Apply(spec) => spec.index_of(name).map(|i| &self.sensitive[i]),
            Operation::Destroy => None,
        }
    }

    pub(super) fn intent_id(&mut self) -> u64 {
        let id = self.next_intent;
        self.next_intent += 1;
        id
    }

    /// `message`, about the input `field` of resource `name` (a program not found), with where
    /// the spec gives it: the field's value in `with:`, or the kind's value in the gate entry
    /// `verify[N]` (the stack's own gates without a `name`). As it was when the field is none
    /// of these.
    pub(super) fn located(
        &self,
        name: Option<&str>,
        field: Option<&str>,
        message: String,
    ) -> String {
        let (Operation::Apply(spec), Some(field)) = (self.exec.operation, field) else {
            return message;
        };
        let resource = name.and_then(|name| spec.resource(name));
        if name.is_some() && resource.is_none() {
            return message;
        }
        let gates = resource.map_or(&spec.verify, |r| &r.verify);
        let gate = field
            .strip_prefix("verify[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|i| gates.get(i.parse::<usize>().ok()?));
        let value = match gate.map(|entry| &entry.kind) {
            Some(crate::spec::ExprKind::Map(keys)) => keys
                .iter()
                .find(|(key, _)| crate::verify::gate_options(&key.name).is_some())
                .map(|(_, value)| value),
            Some(_) => None,
            None => resource.and_then(|r| {
                r.with
                    .iter()
                    .find(|(key, _)| key.name == field)
                    .map(|(_, value)| value)
            }),
        };
        match value {
            Some(value) if value.loc.is_known() => format!(
                "{message}\n    --> {}:{}:{}",
                spec.source.path.display(),
                value.loc.line,
                value.loc.column
            ),
            _ => message,
        }
    }

    /// The stack's own gates, after every change is in; a failure stops the run like any other.
    fn stack_gates(&mut self) {
        let Operation::Apply(spec) = self.exec.operation else {
            return;
        };
        if spec.verify.is_empty() || self.undo.is_empty() {
            return;
        }
        let gates = match self.gates(spec, &spec.verify) {
            Ok(gates) => gates,
            Err(message) => {
                self.exec.progress.failed("stack", "verify", "failed", None);
                self.failures.push(Failure::stack(Cause::Prepare, message));
                return;
            }
        };
        for (i, gate) in gates.into_iter().enumerate() {
            self.exec.progress.flush();
            let started = Instant::now();
            // What the spec names and the machine lacks (a program): pointed at in the spec.
            let outcome = match gate.missing() {
                Some(why) => Err((why, Some(format!("verify[{i}]")))),
                None => {
                    fabrik_provider::wait::on_behalf_of("stack", || gate.run(self.exec.interrupt))
                        .map_err(|why| (why, None))
                }
            };
            match outcome {
                Ok(()) => self
                    .exec
                    .progress
                    .verified("stack", &gate.describe(), started.elapsed()),
                Err((why, field)) => {
                    let message = format!("gate {} failed: {why}", gate.describe());
                    let message = self.located(None, field.as_deref(), message);
                    self.exec.progress.failed("stack", "verify", "failed", None);
                    self.failures.push(Failure::stack(Cause::Gate, message));
                    return;
                }
            }
        }
    }
}

/// A signal that cut a gate short shows as that gate's failure: the report opens with the
/// signal, once, whatever else it stopped.
fn blame_signal(failures: &mut Vec<Failure>, by: Option<Signal>) {
    if !failures.iter().any(Failure::is_interruption) {
        failures.insert(0, Failure::interrupted(by, ""));
    }
}

#[cfg(test)]
mod tests {
    use super::blame_signal;
    use crate::error::{Cause, Failure};
    use crate::interrupt::Signal;

    #[test]
    fn a_signal_that_cut_a_gate_short_is_named_first() {
        let mut failures = vec![Failure::of(
            "web",
            Cause::Gate,
            "gate http failed: interrupted",
        )];
        blame_signal(&mut failures, Some(Signal::Sigint));
        let lines: Vec<String> = failures.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "interrupted by SIGINT (Ctrl-C)",
                "web: gate http failed: interrupted"
            ]
        );
    }

    #[test]
    fn an_interruption_already_recorded_is_not_recorded_again() {
        let stopped = Failure::interrupted(Some(Signal::Sigterm), "no new change was started");
        let mut failures = vec![
            Failure::of(
                "a",
                Cause::Provider(fabrik_provider::ErrorKind::Fatal),
                "boom",
            ),
            stopped.clone(),
        ];
        blame_signal(&mut failures, Some(Signal::Sigterm));
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[1], stopped);
        assert_eq!(
            stopped.to_string(),
            "interrupted by SIGTERM: no new change was started"
        );
    }

    #[test]
    fn a_failure_that_reads_like_an_interruption_is_not_one() {
        // Its line starts with "interrupted", as a resource's name may make it: only the cause
        // counts.
        let mut failures = vec![Failure::of(
            "interrupted-jobs",
            Cause::Gate,
            "gate tcp 127.0.0.1:9 failed: interrupted",
        )];
        blame_signal(&mut failures, None);
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0].to_string(), "interrupted by a signal");
    }
}
