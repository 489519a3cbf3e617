//! Carries out a plan: creates, updates and replacements in dependency order with independent
//! resources running in parallel, then the deletes (deferred to the end, so a rollback never has
//! to undo a delete).
//!
//! Crash safety: every provider call is announced in the journal (an intent, fsynced) before it
//! starts, and its outcome is journaled before anything that depends on it starts. The outcomes
//! that arrived together and the intents of the calls they release share one fsync. Resource
//! gates run once a change is recorded and hold back what depends on it. On a failure or an
//! interrupt nothing new starts, the calls in flight finish, and the completed changes are undone
//! newest first, each undo journaled like any other call.
//!
//! Batching: changes that are ready at the same moment and that their provider files under one
//! batch key (the records of one DNS zone) go out as one unit of work, one request where the API
//! allows, while each keeps its own intent, outcome, progress line and undo.
//!
//! The run is split by the question each file answers: `run.rs` what one run holds and how it
//! records, `schedule.rs` what may start next, `step.rs` what a change sends and what its
//! result means, `worker.rs` how a unit of work meets its provider, `rollback.rs` how completed
//! changes are undone, `pause.rs` which monitors are paused while what they watch changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{ApplyFailure, Command, Error};
use crate::plan::{Action, Plan};
use crate::registry::Registry;
use crate::resolve;
use crate::secrets::Secrets;
use crate::spec::Spec;
use crate::state::journal;
use crate::state::{State, StateStore};

use run::Run;
use worker::with_client;

/// Configured provider clients, by provider name.
pub use crate::clients::Clients;

/// What the executor tells whoever shows progress.
pub trait Progress: Sync {
    fn done(&self, name: &str, type_name: &str, verb: Verb, took: Duration);
    /// Something failed for `name`: its change, a pause, an undo (`what`: "failed",
    /// "rollback failed"). `why` is given only when the run's error report will not say it:
    /// a failure's message is printed once, in the report at the end.
    fn failed(&self, name: &str, type_name: &str, what: &str, why: Option<&str>);
    fn rolling_back(&self);
    /// A gate passed; `subject` is the resource, or `stack` for stack-level gates.
    fn verified(&self, subject: &str, gate: &str, took: Duration);
    /// Shows what was held back. Lines may be held until the executor is about to wait for
    /// something (a provider, a gate) or is done: thousands of resources finishing at once are
    /// then one write, not thousands.
    fn flush(&self) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Created,
    /// A create that found its object already there under the resource's marker (a process
    /// still running after the state was lost) and took it over.
    Found,
    Updated,
    Replaced,
    Destroyed,
    /// Renamed in the state (`moved:`); its object left as it is.
    Moved,
    /// An update whose unknown inputs turned out equal to the recorded ones.
    Unchanged,
    /// Undone during rollback.
    RolledBack,
    /// Removed from the stack without deleting the object, which another resource now holds.
    Released,
    /// A [`Verb::Found`] undone during rollback: forgotten, the object left as it was.
    Forgotten,
    /// Paused while what it watches changes (an uptime monitor).
    Paused,
    /// Watching again after a [`Verb::Paused`].
    Resumed,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Created => "created",
            Verb::Found => "found already there, adopted",
            Verb::Updated => "updated",
            Verb::Replaced => "replaced",
            Verb::Destroyed => "destroyed",
            Verb::Moved => "moved, the object left as it is",
            Verb::Unchanged => "unchanged",
            Verb::RolledBack => "rolled back",
            Verb::Released => "released (its object now belongs to another resource)",
            Verb::Forgotten => "rolled back: forgotten, left as it was found",
            Verb::Paused => "paused while what it watches changes",
            Verb::Resumed => "resumed",
        }
    }
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Resources renamed in the state ([`Verb::Moved`]).
    pub moved: usize,
    /// Creates that found their object already there ([`Verb::Found`]).
    pub adopted: usize,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
}

/// What a run is for. Apply and destroy differ in more than whether a spec is at hand: a
/// destroy creates nothing, runs no gates and reads nothing from a spec lying beside the state.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    /// Make the stack what the spec declares: creates, updates and replacements with their
    /// gates, the stack's gates, then the deletes.
    Apply(&'a Spec),
    /// Delete what the state records, working from the state alone.
    Destroy,
}

impl<'a> Operation<'a> {
    /// The spec's declaration of a resource, when applying.
    fn resource(self, name: &str) -> Option<&'a crate::spec::Resource> {
        match self {
            Operation::Apply(spec) => spec.resource(name),
            Operation::Destroy => None,
        }
    }

    fn command(self) -> Command {
        match self {
            Operation::Apply(_) => Command::Apply,
            Operation::Destroy => Command::Destroy,
        }
    }
}

pub struct Executor<'a> {
    pub operation: Operation<'a>,
    pub registry: &'a Registry,
    pub clients: &'a Clients,
    pub store: &'a dyn StateStore,
    pub parallelism: usize,
    pub rollback: bool,
    pub progress: &'a dyn Progress,
    /// Set by SIGINT or SIGTERM: start nothing new, then roll back.
    pub interrupt: &'a AtomicBool,
    /// Where the run happens (gates resolve relative files against its base directory) and
    /// what no resource may touch.
    pub context: &'a fabrik_provider::Context,
    /// Secret values for the calls, and the key that masks them in the journal and state.
    pub secrets: &'a Secrets,
}

impl Executor<'_> {
    /// Which input fields of each spec resource hold secrets.
    fn sensitive(&self, spec: &Spec) -> Vec<std::collections::BTreeSet<String>> {
        let order = crate::graph::Graph::build(spec)
            .map_or_else(|_| (0..spec.resources.len()).collect(), |g| g.order);
        resolve::sensitive_fields(spec, self.registry, &order)
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Runs the plan against `state`, recording every call and every completed change. The
    /// inputs the plan resolved are moved into the calls (`plan.resolved` is left empty).
    ///
    /// # Errors
    /// [`Error::Apply`] when a change failed or the run was interrupted, after rolling back
    /// (unless disabled); other errors when the state cannot be written.
    pub fn execute(&self, plan: &mut Plan, state: &mut State) -> Result<Outcome, Error> {
        self.secrets.save_key()?;
        let mut journal = self.store.begin(state)?;
        let mut run = Run {
            exec: self,
            serial: state.serial + 1,
            next_intent: state.next_intent(),
            state,
            journal: &mut *journal,
            outcome: Outcome::default(),
            undo: Vec::new(),
            failures: Vec::new(),
            remaining: Vec::new(),
            kept: Vec::new(),
            sensitive: match self.operation {
                Operation::Apply(spec) => self.sensitive(spec),
                Operation::Destroy => Vec::new(),
            },
            real: Default::default(),
            prior_real: Default::default(),
            real_outputs: std::mem::take(&mut plan.real_outputs),
            staged: Vec::new(),
            copies: Vec::new(),
            leaving: plan
                .changes
                .iter()
                .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
                .map(|c| c.name.clone())
                .collect(),
            holders: None,
            unchanged: Default::default(),
            // A destroy pauses nothing: what would watch is going too.
            watches: match self.operation {
                Operation::Apply(_) => plan.pauses.iter().cloned().map(pause::Watch::new).collect(),
                Operation::Destroy => Vec::new(),
            },
        };
        // A destroy keeps the configurations it was given by the last apply.
        if let Operation::Apply(spec) = self.operation {
            let providers = crate::clients::kept(spec, self.registry, self.secrets);
            if providers != run.state.providers {
                run.record(vec![journal::Change::Providers { providers }])?;
            }
        }
        run.moves(&plan.moves)?;
        let resolved = std::mem::take(&mut plan.resolved);
        let result = run.execute(plan, resolved);
        self.progress.flush();
        let Run {
            outcome,
            failures,
            remaining,
            kept,
            copies,
            ..
        } = run;
        // The run is over: what it overwrote stays as it is now (or was put back).
        for (type_name, copy) in copies {
            let _ = with_client(self.clients, self.registry, &type_name, |c| {
                c.drop_copy(&copy);
                Ok(())
            });
        }
        // Compact even after an error: the journal holds everything recorded so far.
        self.store.commit(state)?;
        result?;
        if failures.is_empty() {
            Ok(outcome)
        } else {
            Err(Error::Apply(ApplyFailure {
                failures,
                remaining,
                kept,
                command: self.operation.command(),
                rolled_back: self.rollback,
            }))
        }
    }
}

/// Plans and applies `spec` (written to `dir`) with `registry`, as `apply --yes` would; for the
/// scheduler's tests.
#[cfg(test)]
fn apply_spec(
    dir: &std::path::Path,
    spec: &str,
    registry: &Registry,
    parallelism: usize,
    progress: &dyn Progress,
) -> (Result<Outcome, Error>, crate::state::FileStore) {
    let path = dir.join("fabrik.yaml");
    std::fs::write(&path, spec).unwrap();
    let loaded = crate::stack::load(&path, registry).unwrap();
    let mut state = State::empty(&loaded.spec.stack);
    let context = fabrik_provider::Context {
        base_dir: dir.into(),
        state_dir: dir.join(".fabrik"),
        reserved: vec![path.clone(), dir.join(".fabrik")],
        cancel: fabrik_provider::Cancel::new(),
    };
    let mut plan = crate::plan::plan(&crate::plan::Input {
        spec: &loaded.spec,
        graph: &loaded.graph,
        registry,
        state: &state,
        secrets: &loaded.secrets,
        sensitive: &loaded.sensitive,
        targets: &[],
        observed: None,
        read: None,
        adopted: &Default::default(),
        context: &context,
    })
    .unwrap();
    let clients =
        crate::clients::configure(registry, Some(loaded.configuration()), &state, &context)
            .unwrap();
    let store = crate::state::FileStore::new(dir.join(".fabrik"), &loaded.spec.stack);
    let outcome = Executor {
        operation: Operation::Apply(&loaded.spec),
        registry,
        clients: &clients,
        store: &store,
        parallelism,
        rollback: true,
        progress,
        interrupt: &AtomicBool::new(false),
        context: &context,
        secrets: &loaded.secrets,
    }
    .execute(&mut plan, &mut state);
    (outcome, store)
}

#[cfg(test)]
mod batch_tests;
mod pause;
mod rollback;
mod run;
mod schedule;
mod step;
#[cfg(test)]
mod tests;
mod worker;
