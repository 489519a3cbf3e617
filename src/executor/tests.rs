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
    fn failed(&self, _: &str, _: &str, _: &str, _: Option<&str>) {}
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

fn span<'a>(spans: &'a [(String, Instant, Instant)], name: &str) -> &'a (String, Instant, Instant) {
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
    let result: Result<()> = super::worker::retry(|| {
        calls += 1;
        Err(fabrik_provider::Error::new(
            fabrik_provider::ErrorKind::Transient,
            "busy",
        ))
    });
    assert!(result.is_err());
    assert_eq!(calls, super::worker::RETRIES);
    let mut calls = 0;
    let result: Result<()> = super::worker::retry(|| {
        calls += 1;
        Err(fabrik_provider::Error::new(fabrik_provider::ErrorKind::Transient, "busy").retried())
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
