//! What may run next: one slot per change, each waiting on the slots it depends on, taken in
//! the plan's order by a pool of workers. A round's intents and the previous round's outcomes
//! share one fsync before any call of the round starts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use fabrik_provider::Attributes;

use super::run::Run;
use super::step::Kind;
use super::worker::{Job, Report, Work, run_unit};
use crate::error::{Error, Failure};
use crate::plan::Change;
use crate::state::ResourceState;
use crate::state::journal;

pub(super) struct Slot<'c> {
    pub(super) change: &'c Change,
    /// Indices of slots that must complete first.
    pub(super) waits_on: Vec<usize>,
    /// The job as dispatched, for recording its result: its inputs as the state records them
    /// where they differ from those the job sends (secrets masked), hash and kind.
    pub(super) dispatched: Option<(Option<Attributes>, String, Kind)>,
    /// The intents announcing its provider calls, settled with its result.
    pub(super) intents: Vec<u64>,
    /// Its change is recorded and these gates are running.
    pub(super) verifying: Option<String>,
    /// Its inputs as the plan resolved them, when they were all known then.
    pub(super) resolved: Option<crate::plan::Resolved>,
}

/// What a finished job means for the slots that wait on it.
pub(super) enum Next {
    /// Done: what waits on it may start.
    Release(usize),
    /// Applied; its gates must pass first.
    Verify(usize),
    /// Failed: nothing that waits on it starts.
    Stop,
}

impl<'c> Slot<'c> {
    pub(super) fn new(change: &'c Change, waits_on: Vec<usize>) -> Self {
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

/// Each create/update/replace waits for the changes to what it depends on.
pub(super) fn apply_slots<'c>(changes: &[&'c Change]) -> Vec<Slot<'c>> {
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
pub(super) fn delete_slots<'c>(changes: &[&'c Change]) -> Vec<Slot<'c>> {
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
pub(super) fn old_half(name: &str, prior: &ResourceState) -> Change {
    Change::delete_deposed(name, &prior.type_name, &prior.id)
}

impl Run<'_, '_> {
    /// Runs one phase's slots on a pool of worker threads.
    pub(super) fn phase(&mut self, slots: &mut [Slot<'_>]) -> Result<(), Error> {
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
                                    gates.iter().map(crate::verify::Gate::describe).collect();
                                slots[i].verifying = Some(names.join(", "));
                            }
                            job_tx.send(vec![job]).expect("workers outlive the phase");
                            in_flight += 1;
                        }
                        Err(failure) => self.failed(slots[i].change, failure),
                    }
                }
                // Announce every call of this round with one fsync before any of them starts.
                let mut units: Vec<Vec<Job>> = Vec::new();
                let mut open: HashMap<(&'static str, String), usize> = HashMap::new();
                let mut intents = Vec::new();
                while self.failures.is_empty() && outcome.is_ok() {
                    if self.exec.interrupted() {
                        self.failures.push(Failure::interrupted(
                            crate::interrupt::received(),
                            "no new change was started",
                        ));
                        break;
                    }
                    let full = in_flight + units.len() >= workers;
                    let job = match deferred.take() {
                        Some(job) => job,
                        // Only a job that joins an open batch can still go out.
                        None if full && open.is_empty() => break,
                        None => {
                            let Some(Reverse(i)) = ready.pop() else { break };
                            // A monitor that could not be paused holds the change back.
                            if !self.pause_before(&slots[i].change.name) {
                                continue;
                            }
                            match self.prepare(&mut slots[i], i) {
                                Ok(Some(job)) => job,
                                // Nothing to do after all: release what waits on it.
                                Ok(None) => {
                                    self.resume_after(&slots[i].change.name);
                                    release(i, &mut ready);
                                    continue;
                                }
                                Err(failure) => {
                                    self.failed(slots[i].change, failure);
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
                    self.resume_after(&slots[i].change.name);
                    release(i, &mut ready);
                }
                to_verify = verify;
            }
            drop(job_tx);
            outcome
        })
    }

    /// The batch a job may join: its provider and the provider's batch key. Only plain
    /// creates, updates and deletes are batched; adoptions, replacements that delete first and
    /// gates go alone.
    pub(super) fn batch_of(&self, job: &Job) -> Option<(&'static str, String)> {
        let inputs = match &job.work {
            Work::Create { inputs }
            | Work::ReplaceBefore { inputs }
            | Work::Update { inputs, .. }
            | Work::Delete { inputs, .. } => inputs,
            Work::Adopt { .. } | Work::Verify { .. } | Work::ReplaceAfter { .. } => return None,
        };
        let provider = self.exec.registry.provider_of(&job.type_name)?;
        let client = self.exec.clients.get(provider)?;
        client
            .batch_key(job.target(&self.state.stack), inputs)
            .map(|key| (provider, key))
    }
}
