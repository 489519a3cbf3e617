//! Batching: changes that share a batch key and are ready together reach the provider as one
//! `apply_batch` call, while each keeps its own record, outcome and rollback.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabrik_provider::{
    Applied, Attributes, Call, Change, Client, Context, Error, ErrorKind, Field, FieldKind,
    Observed, Provider, ReplaceStrategy, ResourceType, Result, Target, Value,
};

use super::{Progress, Verb};
use crate::registry::Registry;
use crate::state::StateStore;

/// What the provider saw and holds.
#[derive(Default)]
struct Remote {
    /// The names in each `apply_batch` call, in order.
    batches: Vec<Vec<String>>,
    /// Names created through single calls.
    singles: Vec<String>,
    /// Objects that exist now.
    live: BTreeSet<String>,
    /// Batches still to fail transiently before one succeeds.
    transient_failures: usize,
    /// Those failures come after the provider's own retries (the engine must not add more).
    exhausted: bool,
}

type Shared = Arc<Mutex<Remote>>;

struct Batchy {
    remote: Shared,
}

impl Provider for Batchy {
    fn name(&self) -> &'static str {
        "batchy"
    }
    fn config_fields(&self) -> Vec<Field> {
        Vec::new()
    }
    fn resource_types(&self) -> Vec<ResourceType> {
        vec![ResourceType {
            name: "batchy.item",
            description: "an object that can be written in batches",
            fields: vec![
                Field::optional("group", FieldKind::String, "the batch it joins"),
                Field::optional("fail", FieldKind::Boolean, "refused by the remote side"),
            ],
            outputs: Vec::new(),
            replace: ReplaceStrategy::DestroyBeforeCreate,
        }]
    }
    fn configure(&self, _: &Attributes, _: &Context) -> Result<Box<dyn Client>> {
        Ok(Box::new(BatchyClient {
            remote: self.remote.clone(),
        }))
    }
}

struct BatchyClient {
    remote: Shared,
}

fn refused(inputs: &Attributes) -> bool {
    inputs.get("fail") == Some(&Value::Bool(true))
}

impl Client for BatchyClient {
    fn read(&self, _: Target<'_>, _: &str, _: &Attributes) -> Result<Option<Observed>> {
        Ok(None)
    }
    fn find(&self, _: Target<'_>, _: &Attributes) -> Result<Option<fabrik_provider::Found>> {
        Ok(None)
    }
    fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        if refused(inputs) {
            return Err(Error::new(ErrorKind::InvalidInput, "refused"));
        }
        let mut remote = self.remote.lock().unwrap();
        remote.singles.push(target.name.to_string());
        remote.live.insert(target.name.to_string());
        Ok(Applied {
            id: target.name.to_string(),
            outputs: Attributes::new(),
            found: false,
        })
    }
    fn update(&self, t: Target<'_>, _: &str, _: &Attributes, i: &Attributes) -> Result<Applied> {
        self.create(t, i)
    }
    fn delete(&self, target: Target<'_>, _: &str, _: &Attributes) -> Result<()> {
        self.remote.lock().unwrap().live.remove(target.name);
        Ok(())
    }
    fn batch_key(&self, _: Target<'_>, inputs: &Attributes) -> Option<String> {
        inputs.get("group")?.as_str().map(str::to_string)
    }
    /// Atomic, like a PowerDNS PATCH: one refused change fails every change of the batch.
    fn apply_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Option<Applied>>> {
        let mut remote = self.remote.lock().unwrap();
        remote
            .batches
            .push(calls.iter().map(|c| c.target.name.to_string()).collect());
        let failure = if remote.transient_failures > 0 {
            remote.transient_failures -= 1;
            Some(ErrorKind::Transient)
        } else {
            calls
                .iter()
                .any(|c| matches!(c.change, Change::Create { inputs } if refused(inputs)))
                .then_some(ErrorKind::InvalidInput)
        };
        if let Some(kind) = failure {
            let exhausted = remote.exhausted;
            return calls
                .iter()
                .map(|_| {
                    let error = Error::new(kind, "the batch was refused");
                    Err(if exhausted { error.retried() } else { error })
                })
                .collect();
        }
        calls
            .iter()
            .map(|c| match c.change {
                Change::Delete { .. } => {
                    remote.live.remove(c.target.name);
                    Ok(None)
                }
                Change::Create { .. } | Change::Update { .. } => {
                    remote.live.insert(c.target.name.to_string());
                    Ok(Some(Applied {
                        id: c.target.name.to_string(),
                        outputs: Attributes::new(),
                        found: false,
                    }))
                }
            })
            .collect()
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Progress for Lines {
    fn done(&self, name: &str, _: &str, verb: Verb, _: Duration) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{name} {}", verb.as_str()));
    }
    fn failed(&self, name: &str, _: &str, what: &str, why: Option<&str>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{name} {what}: {}", why.unwrap_or_default()));
    }
    fn rolling_back(&self) {}
    fn verified(&self, _: &str, _: &str, _: Duration) {}
}

struct Run {
    remote: Shared,
    lines: Vec<String>,
    recorded: BTreeSet<String>,
    failed: bool,
}

fn apply(spec: &str, remote: Remote, parallelism: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let remote = Arc::new(Mutex::new(remote));
    let registry = Registry::with(vec![Arc::new(Batchy {
        remote: remote.clone(),
    })]);
    let lines = Lines::default();
    let (result, store) = super::apply_spec(dir.path(), spec, &registry, parallelism, &lines);
    let stored = store.load().unwrap();
    assert!(stored.pending.is_empty(), "every intent is settled");
    Run {
        remote,
        lines: lines.0.into_inner().unwrap(),
        recorded: stored.resources.keys().cloned().collect(),
        failed: result.is_err(),
    }
}

/// `count` items of `group` named `<prefix>0…`, plus what `extra` adds.
fn spec(groups: &[(&str, &str, usize)], extra: &str) -> String {
    let mut spec = String::from("stack: batches\nresources:\n");
    for (prefix, group, count) in groups {
        for i in 0..*count {
            spec.push_str(&format!(
                "  {prefix}{i:02}: {{ type: batchy.item, with: {{ group: {group} }} }}\n"
            ));
        }
    }
    spec.push_str(extra);
    spec
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[test]
fn changes_ready_together_go_out_as_one_batch_per_key() {
    let spec = spec(
        &[("a", "one", 30), ("b", "two", 5)],
        "  solo: { type: batchy.item }\n  after: { type: batchy.item, with: { group: one }, depends_on: [a00] }\n",
    );
    let run = apply(&spec, Remote::default(), 4);
    assert!(!run.failed, "{:?}", run.lines);
    let remote = run.remote.lock().unwrap();
    let batches: Vec<Vec<String>> = remote.batches.iter().cloned().map(sorted).collect();
    let a: Vec<String> = (0..30).map(|i| format!("a{i:02}")).collect();
    let b: Vec<String> = (0..5).map(|i| format!("b{i:02}")).collect();
    assert!(
        batches.contains(&a),
        "the 30 items of `one` in one call: {batches:?}"
    );
    assert!(
        batches.contains(&b),
        "the 5 items of `two` in one call: {batches:?}"
    );
    // `after` waits for a00, so it is ready later: alone, as a single call.
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert_eq!(sorted(remote.singles.clone()), ["after", "solo"]);
    assert_eq!(run.recorded.len(), 37, "each change is recorded on its own");
    assert_eq!(
        run.lines.iter().filter(|l| l.ends_with(" created")).count(),
        37,
        "one progress line per resource: {:?}",
        run.lines
    );
}

#[test]
fn a_refused_batch_fails_each_of_its_changes_and_the_rest_is_rolled_back() {
    let spec = spec(
        &[("a", "one", 10), ("b", "two", 3)],
        "  bad: { type: batchy.item, with: { group: one, fail: true } }\n",
    );
    let run = apply(&spec, Remote::default(), 4);
    assert!(run.failed);
    let failed: Vec<&String> = run
        .lines
        .iter()
        .filter(|l| l.contains(" failed: "))
        .collect();
    assert_eq!(
        failed.len(),
        11,
        "each change of the refused batch fails: {failed:?}"
    );
    let remote = run.remote.lock().unwrap();
    assert!(remote.live.is_empty(), "rolled back: {:?}", remote.live);
    assert!(
        run.recorded.is_empty(),
        "nothing left recorded: {:?}",
        run.recorded
    );
}

#[test]
fn a_transient_batch_failure_is_retried() {
    let spec = spec(&[("a", "one", 6)], "");
    let run = apply(
        &spec,
        Remote {
            transient_failures: 1,
            ..Remote::default()
        },
        2,
    );
    assert!(!run.failed, "{:?}", run.lines);
    let remote = run.remote.lock().unwrap();
    assert_eq!(remote.batches.len(), 2, "refused once, then made");
    assert_eq!(remote.live.len(), 6);
    assert_eq!(run.recorded.len(), 6);
}

#[test]
fn a_failure_the_provider_already_retried_is_not_retried_again() {
    let spec = spec(&[("a", "one", 4)], "");
    let run = apply(
        &spec,
        Remote {
            transient_failures: 1,
            exhausted: true,
            ..Remote::default()
        },
        2,
    );
    assert!(run.failed);
    let remote = run.remote.lock().unwrap();
    assert_eq!(
        remote.batches.len(),
        1,
        "one call, no retry on top of the provider's"
    );
    assert!(remote.live.is_empty());
}
