//! What a worker thread does with one unit of work: a job alone or a batch of jobs in one
//! provider call, with the retries an error's kind allows. Workers touch no state: they report
//! back, and the run records.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use fabrik_provider::{Applied, Attributes, Call, Client, ErrorKind, Target, Value};

use super::Clients;
use crate::registry::Registry;
use crate::secrets::Secrets;
use crate::state::ResourceState;

/// One unit of work for a worker.
pub(super) enum Work {
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

pub(super) struct Job {
    pub(super) slot: usize,
    pub(super) name: String,
    pub(super) type_name: String,
    pub(super) work: Work,
    /// The name the marker of the object worked on carries, when not `name`: the resource
    /// was moved ([`crate::state::ResourceState::marked_as`]).
    pub(super) marker: Option<String>,
}

impl Job {
    /// How the provider is told which resource a call is for: a new object by the resource's
    /// own name, one that exists by the name its marker carries.
    pub(super) fn target<'a>(&'a self, stack: &'a str) -> Target<'a> {
        let name = match &self.work {
            Work::Create { .. }
            | Work::Adopt { .. }
            | Work::ReplaceBefore { .. }
            | Work::ReplaceAfter { .. } => &self.name,
            Work::Update { .. } | Work::Delete { .. } | Work::Verify { .. } => {
                self.marker.as_deref().unwrap_or(&self.name)
            }
        };
        Target {
            stack,
            name,
            type_name: &self.type_name,
        }
    }
}

/// What a worker reports back.
pub(super) struct Report {
    pub(super) slot: usize,
    pub(super) took: Duration,
    pub(super) result: Result<Option<Applied>, fabrik_provider::Error>,
    /// A destroy-before-create replacement whose delete ran but whose create failed.
    pub(super) old_deleted: bool,
    /// For an update: the object's inputs read back before it, sensitive values included.
    pub(super) prior_real: Option<Attributes>,
    /// The inputs the job sent, back from the worker.
    pub(super) inputs: Option<Attributes>,
    /// The provider's copy of what the call overwrote, for a rollback ([`Client::keep_copy`]).
    pub(super) copy: Option<String>,
}

pub(super) const RETRIES: u32 = 3;

/// Retries transient failures with a short exponential backoff.
pub(super) fn retry<T>(
    mut call: impl FnMut() -> fabrik_provider::Result<T>,
) -> fabrik_provider::Result<T> {
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

pub(super) fn with_client<T>(
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
    for (i, gate) in gates.iter().enumerate() {
        let failed = |why: String| {
            fabrik_provider::Error::new(
                ErrorKind::Fatal,
                format!("gate {} failed: {why}", gate.describe()),
            )
        };
        // What the spec names and the machine lacks (a program): the failure points at the
        // entry (`Run::located`).
        if let Some(why) = gate.missing() {
            return Err(failed(why).with_field(format!("verify[{i}]")));
        }
        gate.run(interrupt).map_err(failed)?;
    }
    Ok(None)
}

/// Runs one unit of work on a worker thread: a job alone, or a batch in one provider call.
pub(super) fn run_unit(
    clients: &Clients,
    registry: &Registry,
    secrets: &Secrets,
    interrupt: &AtomicBool,
    stack: &str,
    unit: Vec<Job>,
) -> Vec<Report> {
    // The waits of its calls and gates are shown as the unit's (src/render/waits.rs).
    let names: Vec<&str> = unit.iter().map(|job| job.name.as_str()).collect();
    let subject = match names.as_slice() {
        [_, _, _, _, ..] => format!("{}, {} and {} more", names[0], names[1], names.len() - 2),
        _ => names.join(", "),
    };
    fabrik_provider::wait::on_behalf_of(&subject, || {
        run_jobs(clients, registry, secrets, interrupt, stack, unit)
    })
}

fn run_jobs(
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
    let outcome = with_client(clients, registry, &type_name, |client| {
        // The state knows sensitive values by hash only: read them back, as a lone update does.
        let prior_real: Vec<Option<Attributes>> = unit
            .iter()
            .map(|job| match &job.work {
                Work::Update { id, prior, .. } => {
                    unmask(client, job.target(stack), id, prior, secrets)
                }
                _ => None,
            })
            .collect();
        let calls: Vec<Call<'_>> = unit
            .iter()
            .zip(&prior_real)
            .map(|(job, real)| Call {
                target: job.target(stack),
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
    let target = job.target(stack);
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
            // The old object carries the name it was made under.
            let old_target = Target {
                name: job.marker.as_deref().unwrap_or(&job.name),
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
