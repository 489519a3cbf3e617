//! Carries out a plan: creates, updates and replacements in dependency order with independent
//! resources running in parallel, then the deletes (deferred to the end, so a rollback never has
//! to undo a delete). Every completed change is journaled before anything that depends on it
//! starts; changes that complete together share one fsync. On a failure nothing new is started,
//! the calls in flight finish, and the completed changes are undone in reverse order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabrik_provider::{Applied, Attributes, Client, ErrorKind, ResourceType, Target, Value};

use crate::error::{ApplyFailure, Error};
use crate::hash;
use crate::plan::{Action, Change, Plan, ReplaceOrder};
use crate::registry::Registry;
use crate::resolve;
use crate::spec::Spec;
use crate::state::journal::{self, Journal, Record};
use crate::state::{Deposed, FileStore, ResourceState, State};
use crate::template::Reference;

/// Configured provider clients, by provider name.
pub type Clients = BTreeMap<String, Box<dyn Client>>;

/// What the executor tells whoever shows progress.
pub trait Progress: Sync {
    fn done(&self, name: &str, type_name: &str, verb: Verb, took: Duration);
    fn failed(&self, name: &str, type_name: &str, message: &str);
    fn rolling_back(&self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Created,
    Updated,
    Replaced,
    Destroyed,
    /// An update whose unknown inputs turned out equal to the recorded ones.
    Unchanged,
    /// Undone during rollback.
    RolledBack,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Created => "created",
            Verb::Updated => "updated",
            Verb::Replaced => "replaced",
            Verb::Destroyed => "destroyed",
            Verb::Unchanged => "unchanged",
            Verb::RolledBack => "rolled back",
        }
    }
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
}

pub struct Executor<'a> {
    pub spec: Option<&'a Spec>,
    pub registry: &'a Registry,
    pub clients: &'a Clients,
    pub store: &'a FileStore,
    pub parallelism: usize,
    pub rollback: bool,
    pub progress: &'a dyn Progress,
}

/// One unit of work for a worker.
enum Work {
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
}

/// What rollback has to undo, in completion order.
enum Undo {
    Created {
        name: String,
        type_name: String,
        id: String,
        inputs: Attributes,
    },
    Updated {
        now: ResourceState,
        prior: ResourceState,
        name: String,
    },
    ReplacedBefore {
        name: String,
        new: ResourceState,
        prior: ResourceState,
    },
    ReplacedAfter {
        name: String,
    },
}

struct Slot<'c> {
    change: &'c Change,
    /// Indices of slots that must complete first.
    waits_on: Vec<usize>,
    /// The job as dispatched: inputs and hash, for recording its result.
    dispatched: Option<(Attributes, String, Kind)>,
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
    /// Runs the plan against `state`, recording every completed change.
    ///
    /// # Errors
    /// [`Error::Apply`] when a change failed, after rolling back (unless disabled); other errors
    /// when the state cannot be written.
    pub fn execute(&self, plan: &Plan, state: &mut State) -> Result<Outcome, Error> {
        let mut journal = self.store.begin(state)?;
        let serial = state.serial + 1;
        let mut run = Run {
            exec: self,
            state,
            journal: &mut journal,
            serial,
            outcome: Outcome::default(),
            undo: Vec::new(),
            failures: Vec::new(),
            remaining: Vec::new(),
        };
        if let Some(spec) = self.spec {
            let providers = provider_configs(spec);
            if providers != run.state.providers {
                run.record(vec![journal::Change::Providers { providers }])?;
            }
        }

        let applies: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace))
            .collect();
        let mut slots = apply_slots(&applies);
        run.phase(&mut slots)?;
        if run.failures.is_empty() {
            // The old halves of create-before-destroy replacements go with the other deletes.
            let old_halves: Vec<Change> = run
                .undo
                .iter()
                .filter_map(|u| match u {
                    Undo::ReplacedBefore { name, prior, .. } => Some(Change {
                        name: name.clone(),
                        type_name: prior.type_name.clone(),
                        action: Action::Delete,
                        replace_order: None,
                        reason: None,
                        drifted: false,
                        deposed: Some(prior.id.clone()),
                        attributes: Vec::new(),
                        depends_on: Vec::new(),
                    }),
                    _ => None,
                })
                .collect();
            let deletes: Vec<&Change> = plan
                .changes
                .iter()
                .filter(|c| c.action == Action::Delete)
                .chain(&old_halves)
                .collect();
            let mut slots = delete_slots(&deletes);
            run.phase(&mut slots)?;
        } else if self.rollback {
            self.progress.rolling_back();
            run.roll_back()?;
        } else {
            run.remaining.extend(run.undo.iter().map(describe_kept));
        }
        let Run {
            outcome,
            failures,
            remaining,
            ..
        } = run;
        self.store.commit(state)?;
        if failures.is_empty() {
            Ok(outcome)
        } else {
            Err(Error::Apply(ApplyFailure {
                failures,
                remaining,
                rolled_back: self.rollback,
            }))
        }
    }
}

fn describe_kept(undo: &Undo) -> String {
    match undo {
        Undo::Created { name, .. } => format!("{name}: created"),
        Undo::Updated { name, .. } => format!("{name}: updated"),
        Undo::ReplacedBefore { name, .. } | Undo::ReplacedAfter { name } => {
            format!("{name}: replaced")
        }
    }
}

/// The non-sensitive provider configurations of a spec, as the state keeps them.
fn provider_configs(spec: &Spec) -> BTreeMap<String, Attributes> {
    spec.providers
        .iter()
        .map(|p| {
            let config = resolve::eval_fields(&p.config, &|r| resolve::context_value(spec, r));
            (p.name.clone(), resolve::known(&config).unwrap_or_default())
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
        .map(|c| Slot {
            change: c,
            waits_on: c
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect(),
            dispatched: None,
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
    for (i, c) in changes.iter().enumerate() {
        if c.deposed.is_some() {
            continue;
        }
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
        .map(|(c, waits_on)| Slot {
            change: c,
            waits_on,
            dispatched: None,
        })
        .collect()
}

struct Run<'e, 's> {
    exec: &'e Executor<'e>,
    state: &'s mut State,
    journal: &'s mut Journal,
    serial: u64,
    outcome: Outcome,
    undo: Vec<Undo>,
    failures: Vec<String>,
    remaining: Vec<String>,
}

impl Run<'_, '_> {
    fn record(&mut self, changes: Vec<journal::Change>) -> Result<(), Error> {
        let records: Vec<Record> = changes
            .into_iter()
            .map(|change| Record {
                serial: self.serial,
                change,
            })
            .collect();
        self.journal.append(&records)?;
        for r in &records {
            self.state.apply(r);
        }
        Ok(())
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
        let workers = self.exec.parallelism.clamp(1, slots.len());
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (report_tx, report_rx) = mpsc::channel::<Report>();
        let clients = self.exec.clients;
        let registry = self.exec.registry;
        let stack = self.state.stack.clone();

        std::thread::scope(|scope| -> Result<(), Error> {
            for _ in 0..workers {
                let job_rx = Arc::clone(&job_rx);
                let report_tx = report_tx.clone();
                let stack = stack.as_str();
                scope.spawn(move || {
                    loop {
                        let job = match job_rx.lock().expect("job queue").recv() {
                            Ok(job) => job,
                            Err(_) => break,
                        };
                        let report = work(clients, registry, stack, job);
                        if report_tx.send(report).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(report_tx);
            let mut in_flight = 0;
            let mut finished = 0;
            let mut outcome: Result<(), Error> = Ok(());
            loop {
                while self.failures.is_empty() && outcome.is_ok() && in_flight < workers {
                    let Some(Reverse(i)) = ready.pop() else { break };
                    match self.prepare(&mut slots[i], i) {
                        Ok(Some(job)) => {
                            job_tx.send(job).expect("workers are alive");
                            in_flight += 1;
                        }
                        Ok(None) => {
                            // Nothing to do after all: release what waits on it.
                            finished += 1;
                            for &d in &dependents[i] {
                                blockers[d] -= 1;
                                if blockers[d] == 0 {
                                    ready.push(Reverse(d));
                                }
                            }
                        }
                        Err(message) => {
                            let c = slots[i].change;
                            self.exec.progress.failed(&c.name, &c.type_name, &message);
                            self.failures.push(format!("{}: {message}", c.name));
                        }
                    }
                }
                if in_flight == 0 {
                    break;
                }
                // Take every report that is already there, so they share one fsync.
                let mut batch = vec![report_rx.recv().expect("a worker reports every job")];
                batch.extend(report_rx.try_iter());
                in_flight -= batch.len();
                let mut records = Vec::new();
                let mut done_slots = Vec::new();
                for report in batch {
                    if let Some(slot_done) =
                        self.complete(&mut slots[report.slot], report, &mut records)
                    {
                        done_slots.push(slot_done);
                    }
                }
                if outcome.is_ok()
                    && let Err(e) = self.record(records)
                {
                    outcome = Err(e);
                }
                for i in done_slots {
                    finished += 1;
                    for &d in &dependents[i] {
                        blockers[d] -= 1;
                        if blockers[d] == 0 {
                            ready.push(Reverse(d));
                        }
                    }
                }
            }
            drop(job_tx);
            let _ = finished;
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
            let prior = prior.ok_or_else(|| "not in the state any more".to_string())?;
            if let Some(id) = &change.deposed {
                let Some(old) = prior.deposed.iter().find(|d| &d.id == id) else {
                    return Ok(None);
                };
                slot.dispatched = Some((old.inputs.clone(), String::new(), Kind::DeleteDeposed));
                return Ok(Some(job(Work::Delete {
                    id: old.id.clone(),
                    inputs: old.inputs.clone(),
                })));
            }
            slot.dispatched = Some((prior.inputs.clone(), String::new(), Kind::Delete));
            return Ok(Some(job(Work::Delete {
                id: prior.id,
                inputs: prior.inputs,
            })));
        }
        let spec = self.exec.spec.ok_or("no spec to apply")?;
        let resource = spec.resource(&change.name).ok_or("not in the spec")?;
        let ty = self
            .exec
            .registry
            .resource_type(&resource.type_name)
            .ok_or("unknown resource type")?;
        let state = &*self.state;
        let inputs = resolve::eval_fields(&resource.with, &|r| {
            current_value(spec, state, self.exec.registry, r)
        });
        let inputs = resolve::known(&inputs).ok_or_else(|| {
            "an input refers to a resource that has not been applied (was it left out by --target?)".to_string()
        })?;
        let spec_hash = hash::spec_hash(ty.name, &inputs);
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
            // Decide again with every value known.
            if prior.spec_hash == spec_hash {
                self.exec
                    .progress
                    .done(&change.name, ty.name, Verb::Unchanged, Duration::ZERO);
                return Ok(None);
            }
            kind = redecide(ty, &prior.inputs, &inputs);
        }
        slot.dispatched = Some((inputs.clone(), spec_hash, kind));
        let work = match kind {
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

    /// Records a finished job; returns its slot when what waits on it may start.
    fn complete(
        &mut self,
        slot: &mut Slot<'_>,
        report: Report,
        records: &mut Vec<journal::Change>,
    ) -> Option<usize> {
        let change = slot.change;
        let (inputs, spec_hash, kind) = slot
            .dispatched
            .take()
            .expect("a reported job was dispatched");
        let name = change.name.clone();
        let prior = self.state.resources.get(&name).cloned();
        let applied = match report.result {
            Ok(applied) => applied,
            Err(e) => {
                let message = if e.kind == ErrorKind::Transient {
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
                return None;
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
                let now = ResourceState {
                    type_name: change.type_name.clone(),
                    id: applied.id,
                    spec_hash,
                    inputs,
                    outputs: applied.outputs,
                    dependencies: change.depends_on.clone(),
                    protect,
                    deposed,
                };
                records.push(journal::Change::Put {
                    name: name.clone(),
                    resource: Box::new(now.clone()),
                });
                match (kind, prior) {
                    (Kind::Create, _) | (_, None) => {
                        self.outcome.added += 1;
                        self.undo.push(Undo::Created {
                            name: name.clone(),
                            type_name: now.type_name.clone(),
                            id: now.id.clone(),
                            inputs: now.inputs.clone(),
                        });
                        Verb::Created
                    }
                    (Kind::Update, Some(prior)) => {
                        self.outcome.changed += 1;
                        self.undo.push(Undo::Updated {
                            name: name.clone(),
                            now,
                            prior,
                        });
                        Verb::Updated
                    }
                    (Kind::ReplaceBefore, Some(prior)) => {
                        self.outcome.added += 1;
                        // The old object's delete is counted when it runs.
                        self.undo.push(Undo::ReplacedBefore {
                            name: name.clone(),
                            new: now,
                            prior,
                        });
                        Verb::Replaced
                    }
                    (_, Some(_)) => {
                        self.outcome.added += 1;
                        self.outcome.destroyed += 1;
                        self.undo.push(Undo::ReplacedAfter { name: name.clone() });
                        Verb::Replaced
                    }
                }
            }
        };
        self.exec
            .progress
            .done(&name, &change.type_name, verb, report.took);
        Some(report.slot)
    }

    /// Undoes the completed changes, newest first, journaling each undo.
    fn roll_back(&mut self) -> Result<(), Error> {
        let stack = self.state.stack.clone();
        while let Some(undo) = self.undo.pop() {
            let started = Instant::now();
            let (name, type_name, result, record) = match undo {
                Undo::Created {
                    name,
                    type_name,
                    id,
                    inputs,
                } => {
                    let target = Target {
                        stack: &stack,
                        name: &name,
                        type_name: &type_name,
                    };
                    let result =
                        with_client(self.exec.clients, self.exec.registry, &type_name, |c| {
                            retry(|| c.delete(target, &id, &inputs))
                        });
                    let record = journal::Change::Remove { name: name.clone() };
                    (name, type_name, result.map(|_| ()), record)
                }
                Undo::Updated { name, now, prior } => {
                    let target = Target {
                        stack: &stack,
                        name: &name,
                        type_name: &now.type_name,
                    };
                    let result =
                        with_client(self.exec.clients, self.exec.registry, &now.type_name, |c| {
                            retry(|| c.update(target, &now.id, &now.inputs, &prior.inputs))
                        });
                    let restored = result.as_ref().ok().map(|applied| ResourceState {
                        id: applied.id.clone(),
                        outputs: applied.outputs.clone(),
                        ..prior.clone()
                    });
                    let record = journal::Change::Put {
                        name: name.clone(),
                        resource: Box::new(restored.unwrap_or(prior)),
                    };
                    (name, now.type_name, result.map(|_| ()), record)
                }
                Undo::ReplacedBefore { name, new, prior } => {
                    let target = Target {
                        stack: &stack,
                        name: &name,
                        type_name: &new.type_name,
                    };
                    let result =
                        with_client(self.exec.clients, self.exec.registry, &new.type_name, |c| {
                            retry(|| c.delete(target, &new.id, &new.inputs))
                        });
                    let record = journal::Change::Put {
                        name: name.clone(),
                        resource: Box::new(prior),
                    };
                    (name, new.type_name, result, record)
                }
                Undo::ReplacedAfter { name } => {
                    self.remaining.push(format!(
                        "{name}: replaced (its old object was deleted before the new one was created)"
                    ));
                    continue;
                }
            };
            match result {
                Ok(()) => {
                    self.record(vec![record])?;
                    self.exec
                        .progress
                        .done(&name, &type_name, Verb::RolledBack, started.elapsed());
                }
                Err(e) => {
                    self.exec
                        .progress
                        .failed(&name, &type_name, &format!("rollback failed: {e}"));
                    self.remaining
                        .push(format!("{name}: could not be rolled back: {e}"));
                }
            }
        }
        Ok(())
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

/// Answers a reference during apply from the state as it is now.
fn current_value(
    spec: &Spec,
    state: &State,
    registry: &Registry,
    reference: &Reference,
) -> Option<Value> {
    let Reference::Resource { name, attr } = reference else {
        return resolve::context_value(spec, reference);
    };
    let now = state.resources.get(name)?;
    let is_input = registry
        .resource_type(&now.type_name)
        .is_some_and(|t| t.field(attr).is_some());
    if is_input {
        Some(now.inputs.get(attr).cloned().unwrap_or(Value::Null))
    } else {
        now.outputs.get(attr).cloned()
    }
}

const RETRIES: u32 = 3;

/// Retries transient failures with a short exponential backoff.
fn retry<T>(mut call: impl FnMut() -> fabrik_provider::Result<T>) -> fabrik_provider::Result<T> {
    let mut attempt = 1;
    loop {
        match call() {
            Err(e) if e.kind == ErrorKind::Transient && attempt < RETRIES => {
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

/// Runs one job on a worker thread.
fn work(clients: &Clients, registry: &Registry, stack: &str, job: Job) -> Report {
    let started = Instant::now();
    let target = Target {
        stack,
        name: &job.name,
        type_name: &job.type_name,
    };
    let mut old_deleted = false;
    let result = with_client(clients, registry, &job.type_name, |client| {
        match &job.work {
            Work::Create { inputs } | Work::ReplaceBefore { inputs } => {
                retry(|| client.create(target, inputs)).map(Some)
            }
            Work::Update { id, prior, inputs } => {
                retry(|| client.update(target, id, prior, inputs)).map(Some)
            }
            Work::ReplaceAfter { old, inputs } => {
                let old_target = Target {
                    type_name: &old.type_name,
                    ..target
                };
                retry(|| client.delete(old_target, &old.id, &old.inputs))?;
                old_deleted = true;
                retry(|| client.create(target, inputs)).map(Some)
            }
            Work::Delete { id, inputs } => {
                retry(|| client.delete(target, id, inputs)).map(|()| None)
            }
        }
    });
    Report {
        slot: job.slot,
        took: started.elapsed(),
        old_deleted: old_deleted && result.is_err(),
        result,
    }
}

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

    use super::{Executor, Outcome, Progress, Verb};
    use crate::registry::Registry;
    use crate::state::{FileStore, State};

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
                outputs: vec![OutputField {
                    name: "done",
                    description: "when",
                }],
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
    }

    const SPEC: &str = "stack: timing\nresources:\n  a: { type: slow.step }\n  b: { type: slow.step }\n  c: { type: slow.step }\n  d: { type: slow.step, with: { after: \"${a.done}\" } }\n  e: { type: slow.step, depends_on: [d] }\n";

    fn apply(parallelism: usize) -> (Outcome, Vec<(String, Instant, Instant)>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fabrik.yaml");
        std::fs::write(&path, SPEC).unwrap();
        let spans = Spans::default();
        let registry = Registry::with(vec![Arc::new(Slow {
            spans: spans.clone(),
        })]);
        let spec = crate::spec::Spec::load(&path).unwrap();
        crate::check::check(&spec, &registry).unwrap();
        let graph = crate::graph::Graph::build(&spec).unwrap();
        let mut state = State::empty("timing");
        let plan = crate::plan::plan(&spec, &graph, &registry, &state, &[], None).unwrap();
        let context = Context {
            base_dir: dir.path().into(),
            state_dir: dir.path().join(".fabrik"),
        };
        let clients = crate::commands::configure(&registry, Some(&spec), &state, &context).unwrap();
        let store = FileStore::new(dir.path().join(".fabrik"), "timing");
        let outcome = Executor {
            spec: Some(&spec),
            registry: &registry,
            clients: &clients,
            store: &store,
            parallelism,
            rollback: true,
            progress: &Quiet,
        }
        .execute(&plan, &mut state)
        .unwrap();
        assert_eq!(
            store.load().unwrap().resources.len(),
            5,
            "every resource is recorded"
        );
        let spans = spans.lock().unwrap().clone();
        (outcome, spans)
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
