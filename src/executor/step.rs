//! One change's way through a run: its inputs resolved now that what it refers to is done,
//! the work and the intents that announce it, and what its result means for the state, the
//! undo stack and what waits on it. Places known only at apply time are claimed here.

use std::collections::HashMap;
use std::time::Duration;

use fabrik_provider::{Attributes, ErrorKind, ResourceType, Value};

use super::rollback::Undo;
use super::run::Run;
use super::schedule::{Next, Slot};
use super::worker::{Job, RETRIES, Report, Work};
use super::{Operation, Verb};
use crate::error::{Cause, Failure};
use crate::hash;
use crate::plan::{Action, Change, ReplaceOrder, ignored};
use crate::registry::Registry;
use crate::resolve;
use crate::secrets::Secrets;
use crate::spec::Spec;
use crate::state::journal;
use crate::state::{Deposed, Intent, IntentAction, ResourceState, State};
use crate::template::Reference;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Create,
    Update,
    ReplaceBefore,
    ReplaceAfter,
    Delete,
    DeleteDeposed,
}

impl Run<'_, '_> {
    /// Resolves a slot's inputs now that what it needs is done, and decides the work.
    /// `Ok(None)`: nothing to do.
    pub(super) fn prepare(
        &mut self,
        slot: &mut Slot<'_>,
        index: usize,
    ) -> Result<Option<Job>, Failure> {
        let change = slot.change;
        let fail = |cause, message: &str| Failure::of(&change.name, cause, message);
        let prior = self.state.resources.get(&change.name).cloned();
        let marked_as = prior.as_ref().and_then(|p| p.marked_as.clone());
        let job = |work, marker: Option<String>| Job {
            slot: index,
            name: change.name.clone(),
            type_name: change.type_name.clone(),
            work,
            marker,
        };
        if change.action == Action::Delete {
            let prior = prior.ok_or_else(|| fail(Cause::State, "not in the state any more"))?;
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
                return Ok(Some(job(
                    Work::Delete {
                        id: old.id.clone(),
                        inputs: old.inputs.clone(),
                    },
                    old.marked_as.clone(),
                )));
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
            return Ok(Some(job(
                Work::Delete {
                    id: prior.id,
                    inputs: prior.inputs,
                },
                marked_as,
            )));
        }
        if change.reverify {
            let job = self.gate_job(slot, index)?;
            if let Work::Verify { gates, .. } = &job.work {
                let names: Vec<String> = gates.iter().map(crate::verify::Gate::describe).collect();
                slot.verifying = Some(names.join(", "));
            }
            return Ok(Some(job));
        }
        let Operation::Apply(spec) = self.exec.operation else {
            return Err(fail(Cause::Prepare, "no spec to apply"));
        };
        let resource = spec
            .resource(&change.name)
            .ok_or_else(|| fail(Cause::Prepare, "not in the spec"))?;
        let ty = self
            .exec
            .registry
            .resource_type(&resource.type_name)
            .ok_or_else(|| fail(Cause::Prepare, "unknown resource type"))?;
        let sensitive = spec
            .index_of(&change.name)
            .map(|i| &self.sensitive[i])
            .filter(|fields| !fields.is_empty());
        // As the plan does (src/plan/ignored.rs): ignored fields as recorded.
        let kept = ignored::prior(resource, prior.as_ref());
        // `masked`: the inputs as the state records them, where they differ (secrets).
        let (inputs, masked, planned_hash) = match slot.resolved.take() {
            // Resolved by the plan, with nothing unknown: they stand.
            Some(crate::plan::Resolved {
                inputs,
                spec_hash,
                recorded,
            }) => {
                let masked = match sensitive {
                    Some(fields) => Some(resolve::mask_known(
                        recorded.as_ref().unwrap_or(&inputs),
                        fields,
                        self.exec.secrets,
                    )),
                    None => recorded,
                };
                (inputs, masked, Some(spec_hash))
            }
            None => {
                let mut inputs = self.resolve_now(spec, resource, ty)?;
                if let Some(prior) = kept {
                    ignored::keep_recorded_known(resource, prior, &mut inputs, sensitive);
                }
                let masked =
                    sensitive.map(|fields| resolve::mask_known(&inputs, fields, self.exec.secrets));
                (inputs, masked, None)
            }
        };
        // An ignored secret stays recorded by its hash.
        let masked = masked.map(|mut masked| {
            if let Some(prior) = kept {
                ignored::keep_recorded_known(resource, prior, &mut masked, None);
            }
            masked
        });
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
                self.unchanged.insert(change.name.clone());
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
                    .map_err(|e| fail(Cause::Place, &e.message))?;
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
                        return Err(fail(
                            Cause::Place,
                            &format!(
                                "{place} is `{holder}`'s too, and this run does not remove `{holder}`: two resources cannot share one object"
                            ),
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
                let prior = prior.ok_or_else(|| fail(Cause::State, "not in the state any more"))?;
                Work::Update {
                    id: prior.id,
                    prior: prior.inputs,
                    inputs,
                }
            }
            Kind::ReplaceBefore => Work::ReplaceBefore { inputs },
            Kind::ReplaceAfter => Work::ReplaceAfter {
                old: prior.ok_or_else(|| fail(Cause::State, "not in the state any more"))?,
                inputs,
            },
            Kind::Delete | Kind::DeleteDeposed => unreachable!("deletes are prepared above"),
        };
        Ok(Some(job(work, marked_as)))
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
    pub(super) fn release(&mut self, change: &Change, record: journal::Change) {
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
    ) -> Result<Attributes, Failure> {
        let fail = |cause, message: &str| Failure::of(&resource.name, cause, message);
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
                        .ok_or_else(|| fail(Cause::Prepare, "unknown resource type"))?,
                )
                .ok_or_else(|| fail(Cause::Prepare, "unknown provider"))?;
            let normal = provider
                .normalize(ty.name, &known)
                .map_err(|e| fail(Cause::Provider(e.kind), &e.to_string()))?;
            inputs = normal.into_iter().map(|(k, v)| (k, Some(v))).collect();
        }
        resolve::known(&inputs).ok_or_else(|| {
            fail(
                Cause::Prepare,
                "an input refers to a resource that has not been applied (was it left out by --target?)",
            )
        })
    }

    /// The intents announcing a job's provider calls, with fresh ids.
    pub(super) fn intents(&mut self, slot: &Slot<'_>, job: &Job) -> Vec<(u64, Intent)> {
        let change = slot.change;
        // What is journaled: the inputs as the state will hold them, secrets by their hash.
        let masked = slot.dispatched.as_ref().and_then(|(m, _, _)| m.as_ref());
        let sensitive: Vec<String> = self
            .sensitive_of(&change.name)
            .map(|fields| fields.iter().cloned().collect())
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
                        marked_as: old.marked_as.clone(),
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
    pub(super) fn complete(
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
                    let message = self.located(Some(&change.name), e.field.as_deref(), e.message);
                    self.failed(change, Failure::of(&change.name, Cause::Gate, message));
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
                } else if e.kind == ErrorKind::InvalidInput {
                    self.located(Some(&name), e.field.as_deref(), e.to_string())
                } else {
                    e.to_string()
                };
                self.failed(change, Failure::of(&name, Cause::Provider(e.kind), message));
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
                    .operation
                    .resource(&name)
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
                        marked_as: p.marked_as.clone(),
                    });
                }
                let gated = self
                    .exec
                    .operation
                    .resource(&name)
                    .is_some_and(|r| !r.verify.is_empty());
                // Outputs derived from secrets are recorded by their hash, and what refers to
                // them in this run gets the real values; a secret a provider echoes in another
                // output is masked.
                let sensitive = self.sensitive_of(&name);
                let real_outputs = sensitive
                    .filter(|fields| applied.outputs.keys().any(|k| fields.contains(k)))
                    .map(|_| applied.outputs.clone());
                let outputs = resolve::mask_outputs(applied.outputs, sensitive, self.exec.secrets);
                if let Some(real) = real_outputs {
                    self.real_outputs.insert(name.clone(), real);
                }
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
                    // An update changes the object in place: it keeps its marker. A new
                    // object carries the resource's own name.
                    marked_as: prior
                        .as_ref()
                        .filter(|_| kind == Kind::Update)
                        .and_then(|p| p.marked_as.clone()),
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
            .operation
            .resource(&name)
            .is_some_and(|r| !r.verify.is_empty());
        if gated {
            Next::Verify(report.slot)
        } else {
            Next::Release(report.slot)
        }
    }

    /// The gates of a resource whose change is recorded, with every reference resolved.
    pub(super) fn gate_job(&self, slot: &Slot<'_>, index: usize) -> Result<Job, Failure> {
        let fail = |message: &str| Failure::of(&slot.change.name, Cause::Prepare, message);
        let Operation::Apply(spec) = self.exec.operation else {
            return Err(fail("no spec"));
        };
        let resource = spec
            .resource(&slot.change.name)
            .ok_or_else(|| fail("not in the spec"))?;
        let gates = self
            .gates(spec, &resource.verify)
            .map_err(|message| fail(&message))?;
        let object = self.state.resources.get(&slot.change.name).map(|r| {
            let inputs = self.real.get(&slot.change.name).unwrap_or(&r.inputs);
            (r.id.clone(), inputs.clone())
        });
        Ok(Job {
            slot: index,
            name: slot.change.name.clone(),
            type_name: slot.change.type_name.clone(),
            work: Work::Verify { gates, object },
            marker: self
                .state
                .resources
                .get(&slot.change.name)
                .and_then(|r| r.marked_as.clone()),
        })
    }

    /// Builds gates from spec entries against the state as it is now.
    pub(super) fn gates(
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
    real: &'v HashMap<String, Attributes>,
    /// The real values of outputs the state holds by their hash only.
    real_outputs: &'v HashMap<String, Attributes>,
}

impl Values<'_> {
    pub(super) fn get(&self, reference: &Reference) -> Option<Value> {
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
