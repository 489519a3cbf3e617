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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabrik_provider::{Applied, Attributes, Call, Client, ErrorKind, ResourceType, Target, Value};

use crate::error::{ApplyFailure, Error};
use crate::hash;
use crate::plan::{Action, Change, Plan, ReplaceOrder};
use crate::registry::Registry;
use crate::resolve;
use crate::secrets::Secrets;
use crate::spec::Spec;
use crate::state::journal::{self, Record};
use crate::state::{
    Deposed, Intent, IntentAction, JournalWriter, ResourceState, State, StateStore,
};
use crate::template::Reference;

/// Configured provider clients, by provider name.
pub type Clients = BTreeMap<String, Box<dyn Client>>;

/// What the executor tells whoever shows progress.
pub trait Progress: Sync {
    fn done(&self, name: &str, type_name: &str, verb: Verb, took: Duration);
    fn failed(&self, name: &str, type_name: &str, message: &str);
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
    /// An update whose unknown inputs turned out equal to the recorded ones.
    Unchanged,
    /// Undone during rollback.
    RolledBack,
    /// Removed from the stack without deleting the object, which another resource now holds.
    Released,
    /// A [`Verb::Found`] undone during rollback: forgotten, the object left as it was.
    Forgotten,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Created => "created",
            Verb::Found => "found already there, adopted",
            Verb::Updated => "updated",
            Verb::Replaced => "replaced",
            Verb::Destroyed => "destroyed",
            Verb::Unchanged => "unchanged",
            Verb::RolledBack => "rolled back",
            Verb::Released => "released (its object now belongs to another resource)",
            Verb::Forgotten => "rolled back: forgotten, left as it was found",
        }
    }
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Creates that found their object already there ([`Verb::Found`]).
    pub adopted: usize,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
}

pub struct Executor<'a> {
    pub spec: Option<&'a Spec>,
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

/// One unit of work for a worker.
enum Work {
    /// Take over an object already there (`adopt: true`), or create it.
    Adopt {
        inputs: Attributes,
    },
    /// Run a resource's gates after its change, then look the object up again: gates that
    /// passed while it was already gone were answered by something else.
    Verify {
        gates: Vec<crate::verify::Gate>,
        /// The object's id and inputs, as the state records them.
        object: Option<(String, Attributes)>,
    },
    Create {
        inputs: Attributes,
    },
    Update {
        id: String,
        prior: Attributes,
        inputs: Attributes,
    },
    ReplaceBefore {
        inputs: Attributes,
    },
    ReplaceAfter {
        old: ResourceState,
        inputs: Attributes,
    },
    Delete {
        id: String,
        inputs: Attributes,
    },
}

impl Work {
    /// The inputs a create, adoption, update or replacement sends.
    fn into_inputs(self) -> Option<Attributes> {
        match self {
            Work::Create { inputs }
            | Work::Adopt { inputs }
            | Work::ReplaceBefore { inputs }
            | Work::Update { inputs, .. }
            | Work::ReplaceAfter { inputs, .. } => Some(inputs),
            Work::Verify { .. } | Work::Delete { .. } => None,
        }
    }
}

struct Job {
    slot: usize,
    name: String,
    type_name: String,
    work: Work,
}

/// What a worker reports back.
struct Report {
    slot: usize,
    took: Duration,
    result: Result<Option<Applied>, fabrik_provider::Error>,
    /// A destroy-before-create replacement whose delete ran but whose create failed.
    old_deleted: bool,
    /// For an update: the object's inputs read back before it, sensitive values included.
    prior_real: Option<Attributes>,
    /// The inputs the job sent, back from the worker.
    inputs: Option<Attributes>,
    /// The provider's copy of what the call overwrote, for a rollback ([`Client::keep_copy`]).
    copy: Option<String>,
}

/// A completed change that rollback would undo, newest last. What the change made is the
/// resource's record in the state (a resource changes once per run). `Found` is a create that
/// found its object already there ([`Verb::Found`]).
enum Undo {
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
    fn name(&self) -> &str {
        match self {
            Undo::Created { name, .. }
            | Undo::Found { name }
            | Undo::Updated { name, .. }
            | Undo::ReplacedBefore { name, .. }
            | Undo::ReplacedAfter { name } => name,
        }
    }

    fn describe(&self) -> String {
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
    fn copy(&self) -> Option<&str> {
        match self {
            Undo::Created { copy, .. }
            | Undo::Updated { copy, .. }
            | Undo::ReplacedBefore { copy, .. } => copy.as_deref(),
            Undo::Found { .. } | Undo::ReplacedAfter { .. } => None,
        }
    }
}

struct Slot<'c> {
    change: &'c Change,
    /// Indices of slots that must complete first.
    waits_on: Vec<usize>,
    /// The job as dispatched, for recording its result: its inputs as the state records them
    /// where they differ from those the job sends (secrets masked), hash and kind.
    dispatched: Option<(Option<Attributes>, String, Kind)>,
    /// The intents announcing its provider calls, settled with its result.
    intents: Vec<u64>,
    /// Its change is recorded and these gates are running.
    verifying: Option<String>,
    /// Its inputs as the plan resolved them, when they were all known then.
    resolved: Option<crate::plan::Resolved>,
}

/// What a finished job means for the slots that wait on it.
enum Next {
    /// Done: what waits on it may start.
    Release(usize),
    /// Applied; its gates must pass first.
    Verify(usize),
    /// Failed: nothing that waits on it starts.
    Stop,
}

impl<'c> Slot<'c> {
    fn new(change: &'c Change, waits_on: Vec<usize>) -> Self {
        Slot {
            change,
            waits_on,
            dispatched: None,
            intents: Vec::new(),
            verifying: None,
            resolved: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    ReplaceBefore,
    ReplaceAfter,
    Delete,
    DeleteDeposed,
}

impl Executor<'_> {
    /// Which input fields of each spec resource hold secrets.
    fn sensitive(&self, spec: &Spec) -> Vec<std::collections::BTreeSet<String>> {
        let order = crate::graph::Graph::build(spec)
            .map(|g| g.order)
            .unwrap_or_else(|_| (0..spec.resources.len()).collect());
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
            sensitive: self
                .spec
                .map(|spec| self.sensitive(spec))
                .unwrap_or_default(),
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
        };
        if let Some(spec) = self.spec {
            let providers = provider_configs(spec, self.registry, self.secrets);
            if providers != run.state.providers {
                run.record(vec![journal::Change::Providers { providers }])?;
            }
        }
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
                operation: if self.spec.is_some() {
                    "apply"
                } else {
                    "destroy"
                },
                rolled_back: self.rollback,
            }))
        }
    }
}

/// The non-sensitive provider configurations of a spec, as the state keeps them.
/// The provider configurations as the state keeps them, so that `destroy` works with the spec
/// gone: a field that uses a secret is kept as written (`${secret.KEY}`) and resolved again from
/// the environment or `.env` when needed; its value is never stored.
pub(crate) fn provider_configs(
    spec: &Spec,
    registry: &Registry,
    secrets: &Secrets,
) -> BTreeMap<String, Attributes> {
    spec.providers
        .iter()
        .map(|p| {
            let mut config =
                resolve::known(&crate::plan::provider_config(spec, secrets, p)).unwrap_or_default();
            // Fields the provider marks sensitive (an API key) are never kept as values either,
            // however they are written: from the environment, as written; a literal, not at all.
            let sensitive: Vec<&'static str> = registry
                .provider(&p.name)
                .map(|provider| {
                    provider
                        .config_fields()
                        .into_iter()
                        .filter(|f| f.sensitive)
                        .map(|f| f.name)
                        .collect()
                })
                .unwrap_or_default();
            for (key, expr) in &p.config {
                let mut refs = Vec::new();
                expr.references(&mut refs);
                let secret = refs.iter().any(|(r, _)| matches!(r, Reference::Secret(_)));
                let marked = sensitive.contains(&key.name.as_str());
                match expr.written() {
                    Some(template) if secret || (marked && !refs.is_empty()) => {
                        config.insert(key.name.clone(), Value::String(template));
                    }
                    _ if marked => {
                        config.remove(&key.name);
                    }
                    _ => {}
                }
            }
            (p.name.clone(), config)
        })
        .collect()
}

/// Each create/update/replace waits for the changes to what it depends on.
fn apply_slots<'c>(changes: &[&'c Change]) -> Vec<Slot<'c>> {
    let index: BTreeMap<&str, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    changes
        .iter()
        .map(|c| {
            Slot::new(
                c,
                c.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect(),
            )
        })
        .collect()
}

/// Each delete waits for the deletes of whatever depends on it.
fn delete_slots<'c>(changes: &[&'c Change]) -> Vec<Slot<'c>> {
    let index: BTreeMap<&str, usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.deposed.is_none())
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut waits: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, c) in changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.deposed.is_none())
    {
        for dep in &c.depends_on {
            if let Some(&j) = index.get(dep.as_str())
                && j != i
            {
                waits[j].push(i);
            }
        }
    }
    changes
        .iter()
        .zip(waits)
        .map(|(c, w)| Slot::new(c, w))
        .collect()
}

/// A delete for the old half of a create-before-destroy replacement made in this run.
fn old_half(name: &str, prior: &ResourceState) -> Change {
    Change::delete_deposed(name, &prior.type_name, &prior.id)
}

struct Run<'e, 's> {
    exec: &'e Executor<'e>,
    state: &'s mut State,
    journal: &'s mut dyn JournalWriter,
    serial: u64,
    next_intent: u64,
    outcome: Outcome,
    undo: Vec<Undo>,
    failures: Vec<String>,
    /// Changes that stay although the run failed, and why.
    remaining: Vec<String>,
    /// Changes left in place on purpose (`on_failure: keep`).
    kept: Vec<String>,
    /// Which input fields of each spec resource (file order) hold secrets.
    sensitive: Vec<std::collections::BTreeSet<String>>,
    /// The real inputs of each resource changed in this run, kept in memory only: the state
    /// holds sensitive ones by their hash, and a rollback needs the values.
    real: std::collections::HashMap<String, Attributes>,
    /// The real prior inputs of each updated resource, read back before the update.
    prior_real: std::collections::HashMap<String, Attributes>,
    /// The real outputs the state holds by their keyed hash only (derived from secrets): as
    /// the plan read them, then as this run's calls report them.
    real_outputs: std::collections::HashMap<String, Attributes>,
    /// Records applied in memory, encoded and waiting for the next fsync.
    staged: Vec<String>,
    /// Copies providers kept of what this run overwrote (type, copy), dropped when it is over.
    copies: Vec<(String, String)>,
    /// Resources this plan deletes or replaces: their places may pass to another resource.
    leaving: HashSet<String>,
    /// Which resource of the state holds each place, worked out when first needed.
    holders: Option<HashMap<String, Vec<String>>>,
}

impl Run<'_, '_> {
    fn execute(
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
        self.phase(&mut slots)?;
        if self.failures.is_empty() {
            self.stack_gates();
        }
        // A signal that cut a gate short shows as that gate's failure; say what caused it.
        if self.exec.interrupted() && !self.failures.iter().any(|f| f.starts_with("interrupted")) {
            let by = crate::interrupt::received().unwrap_or("a signal");
            self.failures.insert(0, format!("interrupted by {by}"));
        }
        if !self.failures.is_empty() {
            if self.exec.rollback {
                self.exec.progress.rolling_back();
                // A signal cut the providers' waits short to stop the run; the undo calls must
                // wait out a rate limit like any other (a second signal ends the process).
                self.exec.context.cancel.resume();
                self.roll_back()?;
            } else {
                self.remaining.extend(self.undo.iter().map(Undo::describe));
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
            self.remaining.extend(self.failures.iter().map(|f| {
                format!(
                    "{} (still recorded in the state; the next apply retries it)",
                    f
                )
            }));
        }
        Ok(())
    }

    /// Changes to fabrik's own record of a resource (`protect`, dependencies), which call no
    /// provider.
    fn record_only(&mut self, plan: &Plan) -> Result<(), Error> {
        let mut records = Vec::new();
        for change in plan.changes.iter().filter(|c| c.state_only) {
            let (Some(spec), Some(now)) = (self.exec.spec, self.state.resources.get(&change.name))
            else {
                continue;
            };
            let protect = spec.resource(&change.name).is_some_and(|r| r.protect);
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
            self.outcome.changed += 1;
            self.exec.progress.done(
                &change.name,
                &change.type_name,
                Verb::Updated,
                Duration::ZERO,
            );
        }
        self.record(records)
    }

    /// Appends records to the journal with one fsync, then applies them to the state.
    fn record(&mut self, changes: Vec<journal::Change>) -> Result<(), Error> {
        self.stage(changes);
        self.flush()
    }

    /// Applies records to the state in memory and queues them for the journal; nothing that
    /// builds on them may start before [`Run::flush`].
    fn stage(&mut self, changes: Vec<journal::Change>) {
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
    fn flush(&mut self) -> Result<(), Error> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.staged);
        self.journal.append(&records)
    }

    fn intent_id(&mut self) -> u64 {
        let id = self.next_intent;
        self.next_intent += 1;
        id
    }

    /// Runs one phase's slots on a pool of worker threads.
    fn phase(&mut self, slots: &mut [Slot<'_>]) -> Result<(), Error> {
        if slots.is_empty() {
            return Ok(());
        }
        let mut blockers: Vec<usize> = slots.iter().map(|s| s.waits_on.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); slots.len()];
        for (i, s) in slots.iter().enumerate() {
            for &w in &s.waits_on {
                dependents[w].push(i);
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> = (0..slots.len())
            .filter(|&i| blockers[i] == 0)
            .map(Reverse)
            .collect();
        let mut release = |i: usize, ready: &mut BinaryHeap<Reverse<usize>>| {
            for &d in &dependents[i] {
                blockers[d] -= 1;
                if blockers[d] == 0 {
                    ready.push(Reverse(d));
                }
            }
        };
        let workers = self.exec.parallelism.clamp(1, slots.len());
        // A unit of work is one job, or a batch of jobs that go out together.
        let (job_tx, job_rx) = mpsc::channel::<Vec<Job>>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (report_tx, report_rx) = mpsc::channel::<Vec<Report>>();
        let clients = self.exec.clients;
        let registry = self.exec.registry;
        let interrupt = self.exec.interrupt;
        let secrets = self.exec.secrets;
        let stack = self.state.stack.clone();

        std::thread::scope(|scope| -> Result<(), Error> {
            for _ in 0..workers {
                let job_rx = Arc::clone(&job_rx);
                let report_tx = report_tx.clone();
                let stack = stack.as_str();
                scope.spawn(move || {
                    loop {
                        let next = job_rx.lock().expect("job queue").recv();
                        let Ok(unit) = next else { break };
                        let reports = run_unit(clients, registry, secrets, interrupt, stack, unit);
                        if report_tx.send(reports).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(report_tx);
            let mut in_flight = 0;
            let mut outcome: Result<(), Error> = Ok(());
            let mut to_verify: Vec<usize> = Vec::new();
            // A prepared job that found no free worker.
            let mut deferred: Option<Job> = None;
            loop {
                // Gates of changes recorded in the last batch. They make no provider call, so
                // they need no intent; once something failed they are pointless (the change is
                // about to be rolled back) and are not started.
                for i in to_verify.drain(..) {
                    if !self.failures.is_empty() {
                        break;
                    }
                    match self.gate_job(&slots[i], i) {
                        Ok(job) => {
                            if let Work::Verify { gates, .. } = &job.work {
                                let names: Vec<String> =
                                    gates.iter().map(|g| g.describe()).collect();
                                slots[i].verifying = Some(names.join(", "));
                            }
                            job_tx.send(vec![job]).expect("workers outlive the phase");
                            in_flight += 1;
                        }
                        Err(message) => {
                            let c = slots[i].change;
                            self.exec.progress.failed(&c.name, &c.type_name, &message);
                            self.failures.push(format!("{}: {message}", c.name));
                        }
                    }
                }
                // Announce every call of this round with one fsync before any of them starts.
                let mut units: Vec<Vec<Job>> = Vec::new();
                let mut open: HashMap<(&'static str, String), usize> = HashMap::new();
                let mut intents = Vec::new();
                while self.failures.is_empty() && outcome.is_ok() {
                    if self.exec.interrupted() {
                        let by = crate::interrupt::received().unwrap_or("a signal");
                        self.failures
                            .push(format!("interrupted by {by}: no new change was started"));
                        break;
                    }
                    let full = in_flight + units.len() >= workers;
                    let job = match deferred.take() {
                        Some(job) => job,
                        // Only a job that joins an open batch can still go out.
                        None if full && open.is_empty() => break,
                        None => {
                            let Some(Reverse(i)) = ready.pop() else { break };
                            match self.prepare(&mut slots[i], i) {
                                Ok(Some(job)) => job,
                                // Nothing to do after all: release what waits on it.
                                Ok(None) => {
                                    release(i, &mut ready);
                                    continue;
                                }
                                Err(message) => {
                                    let c = slots[i].change;
                                    self.exec.progress.failed(&c.name, &c.type_name, &message);
                                    self.failures.push(format!("{}: {message}", c.name));
                                    continue;
                                }
                            }
                        }
                    };
                    let key = self.batch_of(&job);
                    let unit = match key.as_ref().and_then(|k| open.get(k)) {
                        Some(&unit) => unit,
                        None if !full => {
                            units.push(Vec::new());
                            if let Some(key) = key {
                                open.insert(key, units.len() - 1);
                            }
                            units.len() - 1
                        }
                        // No worker is free for it: it goes first next round.
                        None => {
                            deferred = Some(job);
                            break;
                        }
                    };
                    for (id, call) in self.intents(&slots[job.slot], &job) {
                        slots[job.slot].intents.push(id);
                        intents.push(journal::Change::Intent {
                            intent: id,
                            call: Box::new(call),
                        });
                    }
                    units[unit].push(job);
                }
                // The outcomes of the last batch and the intents of this round share one fsync;
                // nothing that depends on either starts before it.
                self.stage(intents);
                match self.flush() {
                    Ok(()) => {
                        for unit in units {
                            job_tx.send(unit).expect("workers outlive the phase");
                            in_flight += 1;
                        }
                    }
                    // Nothing of this round started.
                    Err(e) => outcome = Err(e),
                }
                if in_flight == 0 {
                    break;
                }
                // Take every report that is already there, so their outcomes share one fsync.
                self.exec.progress.flush();
                let mut units = vec![report_rx.recv().expect("a worker reports every unit")];
                units.extend(report_rx.try_iter());
                in_flight -= units.len();
                let batch = units.into_iter().flatten();
                let mut records = Vec::new();
                let mut done = Vec::new();
                let mut verify = Vec::new();
                for report in batch {
                    match self.complete(&mut slots[report.slot], report, &mut records) {
                        Next::Release(i) => done.push(i),
                        Next::Verify(i) => verify.push(i),
                        Next::Stop => {}
                    }
                }
                // Made durable with the next round's intents, before anything starts.
                self.stage(records);
                for i in done {
                    release(i, &mut ready);
                }
                to_verify = verify;
            }
            drop(job_tx);
            outcome
        })
    }

    /// Resolves a slot's inputs now that what it needs is done, and decides the work.
    /// `Ok(None)`: nothing to do.
    fn prepare(&mut self, slot: &mut Slot<'_>, index: usize) -> Result<Option<Job>, String> {
        let change = slot.change;
        let job = |work| Job {
            slot: index,
            name: change.name.clone(),
            type_name: change.type_name.clone(),
            work,
        };
        let prior = self.state.resources.get(&change.name).cloned();
        if change.action == Action::Delete {
            let prior = prior.ok_or("not in the state any more")?;
            if let Some(id) = &change.deposed {
                let Some(old) = prior.deposed.iter().find(|d| &d.id == id) else {
                    return Ok(None);
                };
                if self
                    .held_by_other(&old.type_name, &old.inputs, None)
                    .is_some()
                {
                    let mut now = prior.clone();
                    now.deposed.retain(|d| &d.id != id);
                    self.release(
                        change,
                        journal::Change::Put {
                            name: change.name.clone(),
                            resource: Box::new(now),
                        },
                    );
                    return Ok(None);
                }
                slot.dispatched = Some((None, String::new(), Kind::DeleteDeposed));
                return Ok(Some(job(Work::Delete {
                    id: old.id.clone(),
                    inputs: old.inputs.clone(),
                })));
            }
            if self
                .held_by_other(&prior.type_name, &prior.inputs, Some(&change.name))
                .is_some()
            {
                self.release(
                    change,
                    journal::Change::Remove {
                        name: change.name.clone(),
                    },
                );
                return Ok(None);
            }
            slot.dispatched = Some((None, String::new(), Kind::Delete));
            return Ok(Some(job(Work::Delete {
                id: prior.id,
                inputs: prior.inputs,
            })));
        }
        if change.reverify {
            let job = self.gate_job(slot, index)?;
            if let Work::Verify { gates, .. } = &job.work {
                let names: Vec<String> = gates.iter().map(|g| g.describe()).collect();
                slot.verifying = Some(names.join(", "));
            }
            return Ok(Some(job));
        }
        let spec = self.exec.spec.ok_or("no spec to apply")?;
        let resource = spec.resource(&change.name).ok_or("not in the spec")?;
        let ty = self
            .exec
            .registry
            .resource_type(&resource.type_name)
            .ok_or("unknown resource type")?;
        let sensitive = spec
            .index_of(&change.name)
            .map(|i| &self.sensitive[i])
            .filter(|fields| !fields.is_empty());
        // `masked`: the inputs as the state records them, where they differ (secrets).
        let (inputs, masked, planned_hash) = match slot.resolved.take() {
            // Resolved by the plan, with nothing unknown: they stand.
            Some(crate::plan::Resolved { inputs, spec_hash }) => {
                let masked =
                    sensitive.map(|fields| resolve::mask_known(&inputs, fields, self.exec.secrets));
                (inputs, masked, Some(spec_hash))
            }
            None => {
                let inputs = self.resolve_now(spec, resource, ty)?;
                let masked =
                    sensitive.map(|fields| resolve::mask_known(&inputs, fields, self.exec.secrets));
                (inputs, masked, None)
            }
        };
        let recorded = masked.as_ref().unwrap_or(&inputs);
        let resolved_now = planned_hash.is_none();
        let spec_hash = planned_hash.unwrap_or_else(|| hash::spec_hash(ty.name, recorded));
        let mut kind = match (change.action, change.replace_order) {
            (Action::Create, _) => Kind::Create,
            (Action::Update, _) => Kind::Update,
            (Action::Replace, Some(ReplaceOrder::CreateBeforeDestroy)) => Kind::ReplaceBefore,
            _ => Kind::ReplaceAfter,
        };
        // An update planned with values unknown until now may turn out to change nothing; a
        // repair of drift always runs.
        if matches!(change.action, Action::Update | Action::Replace)
            && !change.drifted
            && change.has_unknown()
            && let Some(prior) = &prior
            && prior.type_name == ty.name
        {
            if prior.spec_hash == spec_hash {
                self.exec
                    .progress
                    .done(&change.name, ty.name, Verb::Unchanged, Duration::ZERO);
                return Ok(None);
            }
            kind = redecide(ty, &prior.inputs, recorded);
        }
        // The real values where the state holds others (for what refers to them, and for a
        // rollback), and values resolved only now (so that a chain of references to them is
        // one lookup per link). Other inputs are as the state and the spec give them.
        if masked.is_some() || resolved_now {
            self.real.insert(change.name.clone(), inputs.clone());
        }
        // A place another resource holds is taken over only from one this plan removes or
        // moves away, and only where the provider can hand it over.
        let takes_over = match (&change.takes_over, kind) {
            (Some(_), _) => true,
            (None, Kind::Create | Kind::ReplaceBefore) if resolved_now => {
                // A place no resource may take (fabrik's own files), known only now.
                crate::place::place_of(self.exec.registry, self.exec.context, ty.name, recorded)
                    .map_err(|e| e.message)?;
                let holder = self.held_by_other(ty.name, recorded, Some(&change.name));
                let place = self.place_of(ty.name, recorded).unwrap_or_default();
                // Claimed at once: another change of this round may resolve to the same place.
                if let Some(holders) = self.holders.as_mut() {
                    holders
                        .entry(place.clone())
                        .or_default()
                        .push(change.name.clone());
                }
                match holder {
                    None => false,
                    Some(holder)
                        if self.leaving.contains(&holder)
                            && crate::place::hands_over(self.exec.registry, ty.name) =>
                    {
                        true
                    }
                    Some(holder) => {
                        return Err(format!(
                            "{place} is `{holder}`'s too, and this run does not remove `{holder}`: two resources cannot share one object"
                        ));
                    }
                }
            }
            _ => false,
        };
        slot.dispatched = Some((masked, spec_hash, kind));
        let work = match kind {
            Kind::Create | Kind::ReplaceBefore if resource.adopt || takes_over => {
                Work::Adopt { inputs }
            }
            Kind::Create => Work::Create { inputs },
            Kind::Update => {
                let prior = prior.ok_or("not in the state any more")?;
                Work::Update {
                    id: prior.id,
                    prior: prior.inputs,
                    inputs,
                }
            }
            Kind::ReplaceBefore => Work::ReplaceBefore { inputs },
            Kind::ReplaceAfter => Work::ReplaceAfter {
                old: prior.ok_or("not in the state any more")?,
                inputs,
            },
            Kind::Delete | Kind::DeleteDeposed => unreachable!("deletes are prepared above"),
        };
        Ok(Some(job(work)))
    }

    /// The place of an object of `type_name` with `inputs`, as its provider names it.
    fn place_of(&self, type_name: &str, inputs: &Attributes) -> Option<String> {
        crate::place::place_of(self.exec.registry, self.exec.context, type_name, inputs)
            .ok()
            .flatten()
    }

    /// A resource of the state, other than `except`, whose object is at the place of an object
    /// of `type_name` with `inputs`: that object is not to be deleted (it was handed over), nor
    /// claimed by another resource.
    fn held_by_other(
        &mut self,
        type_name: &str,
        inputs: &Attributes,
        except: Option<&str>,
    ) -> Option<String> {
        let place = self.place_of(type_name, inputs)?;
        if self.holders.is_none() {
            let mut holders: HashMap<String, Vec<String>> = HashMap::new();
            for (name, r) in &self.state.resources {
                if let Some(place) = self.place_of(&r.type_name, &r.inputs) {
                    holders.entry(place).or_default().push(name.clone());
                }
            }
            self.holders = Some(holders);
        }
        let holders = self.holders.as_ref().expect("built above");
        holders
            .get(&place)?
            .iter()
            .find(|h| Some(h.as_str()) != except)
            .cloned()
    }

    /// Removes a resource (or one of its replaced objects) from the stack without deleting
    /// its object, which another resource holds now.
    fn release(&mut self, change: &Change, record: journal::Change) {
        self.stage(vec![record]);
        self.outcome.destroyed += 1;
        self.exec.progress.done(
            &change.name,
            &change.type_name,
            Verb::Released,
            Duration::ZERO,
        );
    }

    /// What references resolve to now: the real inputs of what this run changed, the state
    /// for the rest.
    fn values<'v>(&'v self, spec: &'v Spec) -> Values<'v> {
        Values {
            spec,
            state: self.state,
            registry: self.exec.registry,
            secrets: self.exec.secrets,
            real: &self.real,
            real_outputs: &self.real_outputs,
        }
    }

    /// A resource's inputs now that what it refers to is applied, in the provider's normal
    /// form.
    fn resolve_now(
        &self,
        spec: &Spec,
        resource: &crate::spec::Resource,
        ty: &ResourceType,
    ) -> Result<Attributes, String> {
        let values = self.values(spec);
        let mut inputs = resolve::eval_fields(&resource.with, &|r| values.get(r));
        resolve::coerce(ty, &mut inputs);
        // Recorded in the provider's normal form, as the plan compares it.
        if let Some(known) = resolve::known(&inputs) {
            let provider = self
                .exec
                .registry
                .provider(
                    self.exec
                        .registry
                        .provider_of(ty.name)
                        .ok_or("unknown resource type")?,
                )
                .ok_or("unknown provider")?;
            let normal = provider
                .normalize(ty.name, &known)
                .map_err(|e| e.to_string())?;
            inputs = normal.into_iter().map(|(k, v)| (k, Some(v))).collect();
        }
        resolve::known(&inputs).ok_or_else(|| {
            "an input refers to a resource that has not been applied (was it left out by --target?)"
                .to_string()
        })
    }

    /// The intents announcing a job's provider calls, with fresh ids.
    fn intents(&mut self, slot: &Slot<'_>, job: &Job) -> Vec<(u64, Intent)> {
        let change = slot.change;
        // What is journaled: the inputs as the state will hold them, secrets by their hash.
        let masked = slot.dispatched.as_ref().and_then(|(m, _, _)| m.as_ref());
        let sensitive: Vec<String> = self
            .exec
            .spec
            .and_then(|s| s.index_of(&change.name))
            .map(|i| self.sensitive[i].iter().cloned().collect())
            .unwrap_or_default();
        let call = |action, object: Option<&str>, inputs: &Attributes| Intent {
            sensitive: sensitive.clone(),
            name: job.name.clone(),
            type_name: job.type_name.clone(),
            action,
            object: object.map(str::to_string),
            inputs: inputs.clone(),
            dependencies: if action == IntentAction::Create {
                change.depends_on.clone()
            } else {
                Vec::new()
            },
            deposes: None,
        };
        let replacing = matches!(slot.dispatched, Some((_, _, Kind::ReplaceBefore)));
        let calls = match &job.work {
            Work::Verify { .. } => Vec::new(),
            Work::Create { inputs } | Work::Adopt { inputs } if !replacing => {
                vec![call(IntentAction::Create, None, masked.unwrap_or(inputs))]
            }
            Work::Create { inputs } | Work::Adopt { inputs } | Work::ReplaceBefore { inputs } => {
                vec![Intent {
                    deposes: self.state.resources.get(&job.name).map(|old| Deposed {
                        id: old.id.clone(),
                        type_name: old.type_name.clone(),
                        inputs: old.inputs.clone(),
                    }),
                    ..call(IntentAction::Create, None, masked.unwrap_or(inputs))
                }]
            }
            Work::Update { id, inputs, .. } => {
                vec![call(
                    IntentAction::Update,
                    Some(id),
                    masked.unwrap_or(inputs),
                )]
            }
            Work::ReplaceAfter { old, inputs } => vec![
                Intent {
                    type_name: old.type_name.clone(),
                    ..call(IntentAction::Delete, Some(&old.id), &old.inputs)
                },
                call(IntentAction::Create, None, masked.unwrap_or(inputs)),
            ],
            Work::Delete { id, inputs } => vec![call(IntentAction::Delete, Some(id), inputs)],
        };
        calls.into_iter().map(|c| (self.intent_id(), c)).collect()
    }

    /// Turns a finished job into records; returns its slot when what waits on it may start.
    fn complete(
        &mut self,
        slot: &mut Slot<'_>,
        report: Report,
        records: &mut Vec<journal::Change>,
    ) -> Next {
        let change = slot.change;
        if let Some(gates) = slot.verifying.take() {
            return match report.result {
                Ok(_) => {
                    self.exec
                        .progress
                        .verified(&change.name, &gates, report.took);
                    if let Some(now) = self
                        .state
                        .resources
                        .get(&change.name)
                        .filter(|r| r.unverified)
                    {
                        records.push(journal::Change::Put {
                            name: change.name.clone(),
                            resource: Box::new(ResourceState {
                                unverified: false,
                                ..now.clone()
                            }),
                        });
                    }
                    Next::Release(report.slot)
                }
                Err(e) => {
                    self.exec
                        .progress
                        .failed(&change.name, &change.type_name, &e.message);
                    self.failures
                        .push(format!("{}: {}", change.name, e.message));
                    Next::Stop
                }
            };
        }
        let (masked, spec_hash, kind) = slot
            .dispatched
            .take()
            .expect("a reported job was dispatched");
        records.extend(
            slot.intents
                .drain(..)
                .map(|intent| journal::Change::Settled { intent }),
        );
        let name = change.name.clone();
        let prior = self.state.resources.get(&name).cloned();
        if let Some(copy) = &report.copy {
            self.copies.push((change.type_name.clone(), copy.clone()));
        }
        if let Some(prior_real) = report.prior_real {
            self.prior_real.insert(name.clone(), prior_real);
        }
        let applied = match report.result {
            Ok(applied) => applied,
            Err(e) => {
                let message = if e.kind == ErrorKind::Transient && !e.retried {
                    format!("{e} (still failing after {RETRIES} attempts)")
                } else {
                    e.to_string()
                };
                self.exec
                    .progress
                    .failed(&name, &change.type_name, &message);
                self.failures.push(format!("{name}: {message}"));
                if report.old_deleted {
                    records.push(journal::Change::Remove { name: name.clone() });
                    self.remaining.push(format!(
                        "{name}: deleted (its replacement could not be created)"
                    ));
                }
                return Next::Stop;
            }
        };
        let verb = match kind {
            Kind::Delete => {
                records.push(journal::Change::Remove { name: name.clone() });
                self.outcome.destroyed += 1;
                Verb::Destroyed
            }
            Kind::DeleteDeposed => {
                if let Some(mut now) = prior {
                    now.deposed
                        .retain(|d| Some(&d.id) != change.deposed.as_ref());
                    records.push(journal::Change::Put {
                        name: name.clone(),
                        resource: Box::new(now),
                    });
                }
                self.outcome.destroyed += 1;
                Verb::Destroyed
            }
            Kind::Create | Kind::Update | Kind::ReplaceBefore | Kind::ReplaceAfter => {
                let applied = applied.expect("applies return what they made");
                let found = applied.found;
                let protect = self
                    .exec
                    .spec
                    .and_then(|s| s.resource(&name))
                    .is_some_and(|r| r.protect);
                let mut deposed = prior
                    .as_ref()
                    .map(|p| p.deposed.clone())
                    .unwrap_or_default();
                if kind == Kind::ReplaceBefore
                    && let Some(p) = &prior
                {
                    deposed.push(Deposed {
                        id: p.id.clone(),
                        type_name: p.type_name.clone(),
                        inputs: p.inputs.clone(),
                    });
                }
                let gated = self
                    .exec
                    .spec
                    .and_then(|s| s.resource(&name))
                    .is_some_and(|r| !r.verify.is_empty());
                // Outputs derived from secrets are recorded by their hash, and what refers to
                // them in this run gets the real values; a secret a provider echoes in another
                // output is masked.
                let sensitive = self
                    .exec
                    .spec
                    .and_then(|s| s.index_of(&name))
                    .map(|i| &self.sensitive[i]);
                if let Some(fields) = sensitive
                    && applied.outputs.keys().any(|k| fields.contains(k))
                {
                    self.real_outputs
                        .insert(name.clone(), applied.outputs.clone());
                }
                let outputs = resolve::mask_outputs(applied.outputs, sensitive, self.exec.secrets);
                let inputs = masked.or(report.inputs).expect("an apply sends its inputs");
                let now = ResourceState {
                    // Until its gates pass; a rollback removes it, `--no-rollback` keeps it so.
                    unverified: gated,
                    type_name: change.type_name.clone(),
                    id: applied.id,
                    spec_hash,
                    inputs,
                    outputs,
                    dependencies: change.depends_on.clone(),
                    protect,
                    deposed,
                };
                // A place taken in this run is held from now on, for the places that are
                // known only as the run goes.
                if self.holders.is_some()
                    && let Some(place) = self.place_of(&now.type_name, &now.inputs)
                    && let Some(holders) = self.holders.as_mut()
                {
                    holders.entry(place).or_default().push(name.clone());
                }
                records.push(journal::Change::Put {
                    name: name.clone(),
                    resource: Box::new(now),
                });
                let (verb, undo) = match (kind, prior) {
                    (Kind::Create, _) | (_, None) if found => {
                        self.outcome.adopted += 1;
                        (Verb::Found, Undo::Found { name: name.clone() })
                    }
                    (Kind::Create, _) | (_, None) => {
                        self.outcome.added += 1;
                        (
                            Verb::Created,
                            Undo::Created {
                                name: name.clone(),
                                copy: report.copy,
                            },
                        )
                    }
                    (Kind::Update, Some(prior)) => {
                        self.outcome.changed += 1;
                        (
                            Verb::Updated,
                            Undo::Updated {
                                prior,
                                name: name.clone(),
                                copy: report.copy,
                            },
                        )
                    }
                    (Kind::ReplaceBefore, Some(prior)) => {
                        // The old object's delete is counted when it runs.
                        self.outcome.added += 1;
                        (
                            Verb::Replaced,
                            Undo::ReplacedBefore {
                                prior,
                                name: name.clone(),
                                copy: report.copy,
                            },
                        )
                    }
                    (_, Some(_)) => {
                        self.outcome.added += 1;
                        self.outcome.destroyed += 1;
                        (Verb::Replaced, Undo::ReplacedAfter { name: name.clone() })
                    }
                };
                self.undo.push(undo);
                verb
            }
        };
        self.exec
            .progress
            .done(&name, &change.type_name, verb, report.took);
        let gated = matches!(
            kind,
            Kind::Create | Kind::Update | Kind::ReplaceBefore | Kind::ReplaceAfter
        ) && self
            .exec
            .spec
            .and_then(|s| s.resource(&name))
            .is_some_and(|r| !r.verify.is_empty());
        if gated {
            Next::Verify(report.slot)
        } else {
            Next::Release(report.slot)
        }
    }

    /// The batch a job may join: its provider and the provider's batch key. Only plain
    /// creates, updates and deletes are batched; adoptions, replacements that delete first and
    /// gates go alone.
    fn batch_of(&self, job: &Job) -> Option<(&'static str, String)> {
        let inputs = match &job.work {
            Work::Create { inputs }
            | Work::ReplaceBefore { inputs }
            | Work::Update { inputs, .. }
            | Work::Delete { inputs, .. } => inputs,
            Work::Adopt { .. } | Work::Verify { .. } | Work::ReplaceAfter { .. } => return None,
        };
        let provider = self.exec.registry.provider_of(&job.type_name)?;
        let client = self.exec.clients.get(provider)?;
        let target = Target {
            stack: &self.state.stack,
            name: &job.name,
            type_name: &job.type_name,
        };
        client.batch_key(target, inputs).map(|key| (provider, key))
    }

    /// The gates of a resource whose change is recorded, with every reference resolved.
    fn gate_job(&self, slot: &Slot<'_>, index: usize) -> Result<Job, String> {
        let spec = self.exec.spec.ok_or("no spec")?;
        let resource = spec.resource(&slot.change.name).ok_or("not in the spec")?;
        let gates = self.gates(spec, &resource.verify)?;
        let object = self.state.resources.get(&slot.change.name).map(|r| {
            let inputs = self.real.get(&slot.change.name).unwrap_or(&r.inputs);
            (r.id.clone(), inputs.clone())
        });
        Ok(Job {
            slot: index,
            name: slot.change.name.clone(),
            type_name: slot.change.type_name.clone(),
            work: Work::Verify { gates, object },
        })
    }

    /// Builds gates from spec entries against the state as it is now.
    fn gates(
        &self,
        spec: &Spec,
        entries: &[crate::spec::Expr],
    ) -> Result<Vec<crate::verify::Gate>, String> {
        let values = self.values(spec);
        entries
            .iter()
            .map(|entry| {
                let value = resolve::eval(entry, &|r| values.get(r))
                    .ok_or("a gate refers to a value that is not known")?;
                crate::verify::Gate::from_value(&value, &self.exec.context.base_dir)
            })
            .collect()
    }

    /// The stack's own gates, after every change is in; a failure stops the run like any other.
    fn stack_gates(&mut self) {
        let Some(spec) = self.exec.spec else { return };
        if spec.verify.is_empty() || self.undo.is_empty() {
            return;
        }
        let gates = match self.gates(spec, &spec.verify) {
            Ok(gates) => gates,
            Err(message) => {
                self.exec.progress.failed("stack", "verify", &message);
                self.failures.push(format!("stack gate: {message}"));
                return;
            }
        };
        for gate in gates {
            self.exec.progress.flush();
            let started = Instant::now();
            match gate.run(self.exec.interrupt) {
                Ok(()) => self
                    .exec
                    .progress
                    .verified("stack", &gate.describe(), started.elapsed()),
                Err(why) => {
                    let message = format!("gate {} failed: {why}", gate.describe());
                    self.exec.progress.failed("stack", "verify", &message);
                    self.failures.push(format!("stack: {message}"));
                    return;
                }
            }
        }
    }

    /// Undoes the completed changes, newest first, journaling each undo call.
    fn roll_back(&mut self) -> Result<(), Error> {
        while let Some(undo) = self.undo.pop() {
            self.exec.progress.flush();
            let keep = self
                .exec
                .spec
                .and_then(|s| s.resource(undo.name()))
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
                    if self
                        .exec
                        .spec
                        .and_then(|s| s.resource(&name))
                        .is_some_and(|r| r.adopt) =>
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
                name: &name,
                type_name: &now.type_name,
            };
            let result =
                with_client(
                    self.exec.clients,
                    self.exec.registry,
                    &now.type_name,
                    |c| match intent.action {
                        IntentAction::Update => {
                            retry(|| c.update(target, &now.id, &now_real, &prior_real)).map(Some)
                        }
                        _ => retry(|| c.delete(target, &now.id, &now_real)).map(|()| None),
                    },
                );
            let settled = journal::Change::Settled { intent: id };
            match result {
                Ok(applied) => {
                    // An update back gives the object's outputs as they are now.
                    let sensitive = self
                        .exec
                        .spec
                        .and_then(|s| s.index_of(&name))
                        .map(|i| &self.sensitive[i]);
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
                    self.exec.progress.failed(
                        &name,
                        &now.type_name,
                        &format!("rollback failed: {e}"),
                    );
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
            name: &name,
            type_name: &now.type_name,
        };
        let result = with_client(self.exec.clients, self.exec.registry, &now.type_name, |c| {
            retry(|| c.restore(target, copy))
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
                    .failed(&name, &now.type_name, &format!("rollback failed: {e}"));
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

/// Create-before-destroy or an update, once every input is known.
fn redecide(ty: &ResourceType, prior: &Attributes, inputs: &Attributes) -> Kind {
    let forces = ty
        .fields
        .iter()
        .filter(|f| f.force_new)
        .any(|f| prior.get(f.name) != inputs.get(f.name));
    match (forces, ty.replace) {
        (false, _) => Kind::Update,
        (true, fabrik_provider::ReplaceStrategy::CreateBeforeDestroy) => Kind::ReplaceBefore,
        (true, fabrik_provider::ReplaceStrategy::DestroyBeforeCreate) => Kind::ReplaceAfter,
    }
}

/// Answers references during apply: inputs of spec resources are evaluated from the spec (the
/// state holds sensitive ones by their hash only), outputs come from the state as it is now.
struct Values<'v> {
    spec: &'v Spec,
    state: &'v State,
    registry: &'v Registry,
    secrets: &'v Secrets,
    /// Real inputs of the resources this run already changed: a chain of references then costs
    /// one lookup per link instead of evaluating the chain again.
    real: &'v std::collections::HashMap<String, Attributes>,
    /// The real values of outputs the state holds by their hash only.
    real_outputs: &'v std::collections::HashMap<String, Attributes>,
}

impl Values<'_> {
    fn get(&self, reference: &Reference) -> Option<Value> {
        let Reference::Resource { name, attr } = reference else {
            return resolve::context_value(self.spec, self.secrets, reference);
        };
        if let Some(inputs) = self.real.get(name)
            && self
                .spec
                .resource(name)
                .and_then(|r| self.registry.resource_type(&r.type_name))
                .is_some_and(|t| t.field(attr).is_some())
        {
            return Some(inputs.get(attr).cloned().unwrap_or(Value::Null));
        }
        if let Some(resource) = self.spec.resource(name)
            && let Some(ty) = self.registry.resource_type(&resource.type_name)
            && ty.field(attr).is_some()
        {
            // The resource's inputs as the plan saw them: coerced, in the provider's normal
            // form. The graph is acyclic, so this recursion ends.
            let mut inputs = resolve::eval_fields(&resource.with, &|r| self.get(r));
            resolve::coerce(ty, &mut inputs);
            if let Some(known) = resolve::known(&inputs)
                && let Some(provider) = self
                    .registry
                    .provider_of(ty.name)
                    .and_then(|p| self.registry.provider(p))
                && let Ok(normal) = provider.normalize(ty.name, &known)
            {
                return Some(normal.get(attr).cloned().unwrap_or(Value::Null));
            }
            return match inputs.get(attr) {
                Some(value) => value.clone(),
                None => Some(Value::Null),
            };
        }
        let now = self.state.resources.get(name)?;
        let is_input = self
            .registry
            .resource_type(&now.type_name)
            .is_some_and(|t| t.field(attr).is_some());
        if is_input {
            return Some(now.inputs.get(attr).cloned().unwrap_or(Value::Null));
        }
        match now.outputs.get(attr) {
            Some(recorded) if crate::secrets::is_masked(recorded) => {
                self.real_outputs.get(name)?.get(attr).cloned()
            }
            other => other.cloned(),
        }
    }
}

const RETRIES: u32 = 3;

/// Retries transient failures with a short exponential backoff.
fn retry<T>(mut call: impl FnMut() -> fabrik_provider::Result<T>) -> fabrik_provider::Result<T> {
    let mut attempt = 1;
    loop {
        match call() {
            Err(e) if e.kind == ErrorKind::Transient && !e.retried && attempt < RETRIES => {
                std::thread::sleep(Duration::from_millis(100 << attempt));
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn with_client<T>(
    clients: &Clients,
    registry: &Registry,
    type_name: &str,
    call: impl FnOnce(&dyn Client) -> fabrik_provider::Result<T>,
) -> fabrik_provider::Result<T> {
    let provider = registry.provider_of(type_name).ok_or_else(|| {
        fabrik_provider::Error::new(
            ErrorKind::InvalidInput,
            format!("unknown resource type `{type_name}`"),
        )
    })?;
    let client = clients.get(provider).ok_or_else(|| {
        fabrik_provider::Error::new(
            ErrorKind::InvalidInput,
            format!("provider `{provider}` is not configured"),
        )
    })?;
    call(client.as_ref())
}

/// The prior inputs with every sensitive value read back from the object, when the object's
/// values match the hashes the state holds; `None` when there is nothing to unmask or a value
/// cannot be recovered.
fn unmask(
    client: &dyn Client,
    target: Target<'_>,
    id: &str,
    prior: &Attributes,
    secrets: &Secrets,
) -> Option<Attributes> {
    if !prior.values().any(crate::secrets::is_masked) {
        return None;
    }
    let observed = retry(|| client.read(target, id, prior)).ok()??;
    let mut real = prior.clone();
    for (field, value) in real
        .iter_mut()
        .filter(|(_, v)| crate::secrets::is_masked(v))
    {
        let seen = observed.inputs.get(field)?;
        if Value::String(secrets.mask(seen)) != *value {
            return None;
        }
        *value = seen.clone();
    }
    Some(real)
}

/// Runs a resource's gates one after the other; the first failure ends it.
fn verify(
    gates: &[crate::verify::Gate],
    interrupt: &AtomicBool,
) -> Result<Option<Applied>, fabrik_provider::Error> {
    for gate in gates {
        gate.run(interrupt).map_err(|why| {
            fabrik_provider::Error::new(
                ErrorKind::Fatal,
                format!("gate {} failed: {why}", gate.describe()),
            )
        })?;
    }
    Ok(None)
}

/// Runs one unit of work on a worker thread: a job alone, or a batch in one provider call.
fn run_unit(
    clients: &Clients,
    registry: &Registry,
    secrets: &Secrets,
    interrupt: &AtomicBool,
    stack: &str,
    mut unit: Vec<Job>,
) -> Vec<Report> {
    if unit.len() == 1 {
        let job = unit.pop().expect("one job");
        return vec![work(clients, registry, secrets, interrupt, stack, job)];
    }
    let started = Instant::now();
    let type_name = unit[0].type_name.clone();
    let target = |job| target_of(stack, job);
    let outcome = with_client(clients, registry, &type_name, |client| {
        // The state knows sensitive values by hash only: read them back, as a lone update does.
        let prior_real: Vec<Option<Attributes>> = unit
            .iter()
            .map(|job| match &job.work {
                Work::Update { id, prior, .. } => unmask(client, target(job), id, prior, secrets),
                _ => None,
            })
            .collect();
        let calls: Vec<Call<'_>> = unit
            .iter()
            .zip(&prior_real)
            .map(|(job, real)| Call {
                target: target(job),
                change: batched_change(&job.work, real.as_ref()),
            })
            .collect();
        Ok((retry_batch(client, &calls), prior_real))
    });
    let took = started.elapsed();
    let (results, prior_real) = match outcome {
        Ok(done) => done,
        Err(e) => {
            let results = unit.iter().map(|_| Err(e.duplicate())).collect();
            (results, vec![None; unit.len()])
        }
    };
    unit.into_iter()
        .zip(results)
        .zip(prior_real)
        .map(|((job, result), prior_real)| Report {
            slot: job.slot,
            took,
            result,
            old_deleted: false,
            prior_real,
            inputs: job.work.into_inputs(),
            copy: None,
        })
        .collect()
}

fn target_of<'a>(stack: &'a str, job: &'a Job) -> Target<'a> {
    Target {
        stack,
        name: &job.name,
        type_name: &job.type_name,
    }
}

/// The provider call a batched job makes.
fn batched_change<'w>(
    work: &'w Work,
    prior_real: Option<&'w Attributes>,
) -> fabrik_provider::Change<'w> {
    use fabrik_provider::Change;
    match work {
        Work::Create { inputs } | Work::ReplaceBefore { inputs } => Change::Create { inputs },
        Work::Update { id, prior, inputs } => Change::Update {
            id,
            prior: prior_real.unwrap_or(prior),
            inputs,
        },
        Work::Delete { id, inputs } => Change::Delete { id, inputs },
        Work::Adopt { .. } | Work::Verify { .. } | Work::ReplaceAfter { .. } => {
            unreachable!("only creates, updates and deletes are batched (Run::batch_of)")
        }
    }
}

/// Makes a batch of calls, retrying those that failed transiently, like [`retry`] does for one.
fn retry_batch(
    client: &dyn Client,
    calls: &[Call<'_>],
) -> Vec<fabrik_provider::Result<Option<Applied>>> {
    let mut results = checked(client.apply_batch(calls), calls.len());
    for attempt in 1..RETRIES {
        let again: Vec<usize> = (0..calls.len())
            .filter(
                |&i| matches!(&results[i], Err(e) if e.kind == ErrorKind::Transient && !e.retried),
            )
            .collect();
        if again.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100 << attempt));
        let retried: Vec<Call<'_>> = again.iter().map(|&i| calls[i]).collect();
        for (i, result) in again
            .into_iter()
            .zip(checked(client.apply_batch(&retried), retried.len()))
        {
            results[i] = result;
        }
    }
    results
}

/// A provider that answers a batch with the wrong number of results breaks its contract: no
/// call of the batch can be trusted as made.
fn checked(
    results: Vec<fabrik_provider::Result<Option<Applied>>>,
    calls: usize,
) -> Vec<fabrik_provider::Result<Option<Applied>>> {
    if results.len() == calls {
        return results;
    }
    let message = format!(
        "the provider answered a batch of {calls} calls with {} results",
        results.len()
    );
    (0..calls)
        .map(|_| {
            Err(fabrik_provider::Error::new(
                ErrorKind::Fatal,
                message.clone(),
            ))
        })
        .collect()
}

/// Runs one job on a worker thread.
fn work(
    clients: &Clients,
    registry: &Registry,
    secrets: &Secrets,
    interrupt: &AtomicBool,
    stack: &str,
    job: Job,
) -> Report {
    let started = Instant::now();
    let target = Target {
        stack,
        name: &job.name,
        type_name: &job.type_name,
    };
    let mut old_deleted = false;
    let mut prior_real = None;
    let mut copy = None;
    let result = match &job.work {
        Work::Verify { gates, object } => verify(gates, interrupt).and_then(|none| {
            let Some((id, inputs)) = object else {
                return Ok(none);
            };
            // A failed look-up proves nothing either way; only an object found gone counts.
            let gone = with_client(clients, registry, &job.type_name, |c| {
                c.read(target, id, inputs)
            })
            .is_ok_and(|found| found.is_none());
            if gone {
                return Err(fabrik_provider::Error::new(
                    ErrorKind::Fatal,
                    "its gates passed, but it is gone now: something else must have answered them (is another program using its port?)",
                ));
            }
            Ok(none)
        }),
        Work::Create { inputs } | Work::ReplaceBefore { inputs } => {
            with_client(clients, registry, &job.type_name, |c| {
                retry(|| c.create(target, inputs))
            })
            .map(Some)
        }
        // What is overwritten is copied first, so a rollback can put it back exactly.
        Work::Adopt { inputs } => with_client(clients, registry, &job.type_name, |c| {
            copy = c.keep_copy(target, inputs)?;
            retry(|| c.adopt(target, inputs))
        })
        .map(Some),
        Work::Update { id, prior, inputs } => with_client(clients, registry, &job.type_name, |c| {
            // A copy of content that held a secret would put the secret beside the state; such
            // an update is rolled back by updating back to the values read below instead.
            if !prior.values().any(crate::secrets::is_masked) {
                copy = c.keep_copy(target, inputs)?;
            }
            // The state knows sensitive values by hash only: read the object back for them,
            // so the provider sees the real prior inputs and a rollback can restore them.
            prior_real = unmask(c, target, id, prior, secrets);
            let prior = prior_real.as_ref().unwrap_or(prior);
            retry(|| c.update(target, id, prior, inputs))
        })
        .map(Some),
        Work::ReplaceAfter { old, inputs } => {
            let old_target = Target {
                type_name: &old.type_name,
                ..target
            };
            with_client(clients, registry, &old.type_name, |c| {
                retry(|| c.delete(old_target, &old.id, &old.inputs))
            })
            .and_then(|()| {
                old_deleted = true;
                with_client(clients, registry, &job.type_name, |c| {
                    retry(|| c.create(target, inputs))
                })
                .map(Some)
            })
        }
        Work::Delete { id, inputs } => with_client(clients, registry, &job.type_name, |c| {
            retry(|| c.delete(target, id, inputs))
        })
        .map(|()| None),
    };
    Report {
        slot: job.slot,
        took: started.elapsed(),
        old_deleted: old_deleted && result.is_err(),
        result,
        prior_real,
        inputs: job.work.into_inputs(),
        copy,
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
    let loaded = crate::commands::load(&path, registry).unwrap();
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
    let clients = crate::commands::configure(registry, Some(&loaded), &state, &context).unwrap();
    let store = crate::state::FileStore::new(dir.join(".fabrik"), &loaded.spec.stack);
    let outcome = Executor {
        spec: Some(&loaded.spec),
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

#[cfg(test)]
mod tests {
    //! The scheduler's promises, checked with a provider whose calls take time and record when
    //! they ran.

    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use fabrik_provider::{
        Applied, Attributes, Client, Context, Field, FieldKind, Observed, OutputField, Provider,
        ReplaceStrategy, ResourceType, Result, Target, Value,
    };

    use super::{Outcome, Progress, Verb};
    use crate::registry::Registry;
    use crate::state::StateStore;

    type Spans = Arc<Mutex<Vec<(String, Instant, Instant)>>>;

    struct Slow {
        spans: Spans,
    }

    impl Provider for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn config_fields(&self) -> Vec<Field> {
            Vec::new()
        }
        fn resource_types(&self) -> Vec<ResourceType> {
            vec![ResourceType {
                name: "slow.step",
                description: "takes a while",
                fields: vec![Field::optional("after", FieldKind::String, "anything")],
                outputs: vec![OutputField::new("done", "when")],
                replace: ReplaceStrategy::DestroyBeforeCreate,
            }]
        }
        fn configure(&self, _: &Attributes, _: &Context) -> Result<Box<dyn Client>> {
            Ok(Box::new(SlowClient {
                spans: self.spans.clone(),
            }))
        }
    }

    struct SlowClient {
        spans: Spans,
    }

    impl Client for SlowClient {
        fn read(&self, _: Target<'_>, _: &str, _: &Attributes) -> Result<Option<Observed>> {
            Ok(None)
        }
        fn find(&self, _: Target<'_>, _: &Attributes) -> Result<Option<fabrik_provider::Found>> {
            Ok(None)
        }
        fn create(&self, target: Target<'_>, _: &Attributes) -> Result<Applied> {
            let start = Instant::now();
            std::thread::sleep(Duration::from_millis(150));
            self.spans
                .lock()
                .unwrap()
                .push((target.name.to_string(), start, Instant::now()));
            let mut outputs = Attributes::new();
            outputs.insert("done".into(), Value::from(target.name));
            Ok(Applied {
                id: target.name.to_string(),
                outputs,
                found: false,
            })
        }
        fn update(
            &self,
            target: Target<'_>,
            _: &str,
            _: &Attributes,
            i: &Attributes,
        ) -> Result<Applied> {
            self.create(target, i)
        }
        fn delete(&self, _: Target<'_>, _: &str, _: &Attributes) -> Result<()> {
            Ok(())
        }
    }

    struct Quiet;
    impl Progress for Quiet {
        fn done(&self, _: &str, _: &str, _: Verb, _: Duration) {}
        fn failed(&self, _: &str, _: &str, _: &str) {}
        fn rolling_back(&self) {}
        fn verified(&self, _: &str, _: &str, _: Duration) {}
    }

    const SPEC: &str = "stack: timing\nresources:\n  a: { type: slow.step }\n  b: { type: slow.step }\n  c: { type: slow.step }\n  d: { type: slow.step, with: { after: \"${a.done}\" } }\n  e: { type: slow.step, depends_on: [d] }\n";

    fn apply(parallelism: usize) -> (Outcome, Vec<(String, Instant, Instant)>) {
        let dir = tempfile::tempdir().unwrap();
        let spans = Spans::default();
        let registry = Registry::with(vec![Arc::new(Slow {
            spans: spans.clone(),
        })]);
        let (outcome, store) = super::apply_spec(dir.path(), SPEC, &registry, parallelism, &Quiet);
        assert_eq!(
            store.load().unwrap().resources.len(),
            5,
            "every resource is recorded"
        );
        let spans = spans.lock().unwrap().clone();
        (outcome.unwrap(), spans)
    }

    fn span<'a>(
        spans: &'a [(String, Instant, Instant)],
        name: &str,
    ) -> &'a (String, Instant, Instant) {
        spans.iter().find(|s| s.0 == name).unwrap()
    }

    #[test]
    fn independent_resources_overlap_and_dependents_wait() {
        let (outcome, spans) = apply(10);
        assert_eq!(outcome.added, 5);
        let (a, b, c) = (span(&spans, "a"), span(&spans, "b"), span(&spans, "c"));
        let latest_start = a.1.max(b.1).max(c.1);
        let earliest_end = a.2.min(b.2).min(c.2);
        assert!(
            latest_start < earliest_end,
            "a, b and c ran at the same time"
        );
        let d = span(&spans, "d");
        assert!(d.1 >= a.2, "d refers to a, so it starts after a ends");
        let e = span(&spans, "e");
        assert!(e.1 >= d.2, "e depends on d, so it starts after d ends");
    }

    #[test]
    fn transient_failures_are_retried_unless_the_provider_already_did() {
        let mut calls = 0;
        let result: fabrik_provider::Result<()> = super::retry(|| {
            calls += 1;
            Err(fabrik_provider::Error::new(
                fabrik_provider::ErrorKind::Transient,
                "busy",
            ))
        });
        assert!(result.is_err());
        assert_eq!(calls, super::RETRIES);
        let mut calls = 0;
        let result: fabrik_provider::Result<()> = super::retry(|| {
            calls += 1;
            Err(
                fabrik_provider::Error::new(fabrik_provider::ErrorKind::Transient, "busy")
                    .retried(),
            )
        });
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn parallelism_one_runs_one_at_a_time() {
        let (_, mut spans) = apply(1);
        spans.sort_by_key(|s| s.1);
        for pair in spans.windows(2) {
            assert!(
                pair[1].1 >= pair[0].2,
                "{} started before {} ended",
                pair[1].0,
                pair[0].0
            );
        }
    }
}
