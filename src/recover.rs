//! Recovery from a run that died mid-call. Every provider call is announced in the journal
//! before it starts; an announcement with no recorded outcome means the run died during that
//! call. Each such object is looked up under its identity: one that exists is adopted into the
//! state, one that does not is forgotten. Nothing is ever created twice. An interrupted
//! `fabrik import` is settled the same way: an object that carries the resource's marker was
//! claimed and goes into the state; one that does not was left as it was.
//!
//! [`recover`] only looks objects up; [`settle`] is what a command runs before it plans: it
//! configures the clients, records the resolution (when the lock is held) and prints it.

use std::collections::BTreeSet;

use fabrik_provider::{Attributes, ErrorKind, Found, Target};

use crate::clients::Clients;
use crate::error::Error;
use crate::hash;
use crate::registry::Registry;
use crate::secrets::Secrets;
use crate::spec::Spec;
use crate::state::journal::{Change, Record};
use crate::state::{Intent, IntentAction, ResourceState, State, StateStore};

/// Where recovery notes go: stdout for commands that print progress, stderr for `plan` (whose
/// stdout may be JSON).
pub enum Notes {
    Stdout,
    Stderr,
}

/// Resolves the provider calls a dead run left pending, looking each object up with clients
/// configured from `spec` (with its secrets) or, without one, from the state. With a store
/// (apply, destroy: the lock is held) the resolution is journaled; without one (plan) it only
/// changes `state` in memory. Returns the resources adopted.
pub fn settle(
    registry: &Registry,
    spec: Option<(&Spec, &Secrets)>,
    state: &mut State,
    context: &fabrik_provider::Context,
    store: Option<&dyn StateStore>,
    notes: Notes,
) -> Result<BTreeSet<String>, Error> {
    if state.pending.is_empty() {
        return Ok(BTreeSet::new());
    }
    let clients = crate::clients::configure(registry, spec, state, context)?;
    let recovery = recover(state, registry, &clients, spec.map(|(_, secrets)| secrets))?;
    // With the lock held, what the interrupted calls left beside their objects (half-written
    // temporary files) goes too; a plan, which holds no lock, leaves it for the next apply.
    if store.is_some() {
        for intent in state.pending.values() {
            if let Some(client) = registry
                .provider_of(&intent.type_name)
                .and_then(|p| clients.get(p))
            {
                let target = Target {
                    stack: &state.stack,
                    name: &intent.name,
                    type_name: &intent.type_name,
                };
                client.clean_up(target, &intent.inputs);
            }
        }
    }
    let mut lines = recovery.lines;
    let mut records = recovery.records;
    for id in &recovery.paused {
        let intent = &state.pending[id];
        match store {
            Some(_) => {
                lines.push(resume(
                    registry,
                    &clients,
                    spec.map(|(s, _)| s),
                    state,
                    intent,
                )?);
                records.push(Change::Settled { intent: *id });
            }
            None => lines.push(format!(
                "{}: may have been left paused by the interrupted run; the next apply resumes it",
                intent.name
            )),
        }
    }
    let records: Vec<Record> = records
        .into_iter()
        .map(|change| Record {
            serial: state.serial + 1,
            change,
        })
        .collect();
    if let Some(store) = store {
        store.record(&records)?;
    }
    for record in records {
        state.apply(record);
    }
    if let Some(store) = store {
        store.commit(state)?;
    }
    let mut text = String::from("Recovered from an interrupted run:\n");
    for line in &lines {
        text.push_str(&format!("  {line}\n"));
    }
    match notes {
        Notes::Stdout => outln!("{text}"),
        Notes::Stderr => eprintln!("{text}"),
    }
    Ok(recovery.adopted)
}

/// Resumes an object a killed run paused while what it watches changed, unless the spec now
/// keeps it paused ([`keeps_paused`]). Returns the line that says what was done.
fn resume(
    registry: &Registry,
    clients: &Clients,
    spec: Option<&Spec>,
    state: &State,
    intent: &Intent,
) -> Result<String, Error> {
    let recorded = state.resources.get(&intent.name);
    let object = intent.object.as_deref().unwrap_or_default();
    let Some(now) = recorded.filter(|r| r.id == object) else {
        return Ok(format!(
            "{}: paused by the interrupted run, and no longer in the state",
            intent.name
        ));
    };
    let client = registry
        .provider_of(&intent.type_name)
        .and_then(|p| clients.get(p));
    let Some(client) = client else {
        return Err(Error::State(format!(
            "an interrupted pause of `{}` needs resource type `{}`, which this fabrik does not know",
            intent.name, intent.type_name
        )));
    };
    let paused_field = registry
        .provider_of(&intent.type_name)
        .and_then(|p| registry.provider(p))
        .and_then(|p| p.paused_field(&intent.type_name));
    if let (Some(spec), Some(field)) = (spec, paused_field)
        && keeps_paused(spec, intent, field)
    {
        return Ok(format!(
            "{}: left paused, as the spec now says (it was paused while what it watches changed)",
            intent.name
        ));
    }
    let target = Target {
        stack: &state.stack,
        name: now.marker(&intent.name),
        type_name: &intent.type_name,
    };
    match client.resume(target, object) {
        Ok(()) => {}
        // It is no longer this resource's to resume (its marker was removed, its type cannot
        // be paused): saying so beats stopping every later run on it.
        Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::InvalidInput) => {
            return Ok(format!(
                "{}: paused by the interrupted run, and could not be resumed: {e}",
                intent.name
            ));
        }
        Err(source) => {
            return Err(Error::Provider {
                resource: format!("resuming `{}` after an interrupted run", intent.name),
                source,
            });
        }
    }
    Ok(format!(
        "{}: resumed (the interrupted run had paused it while what it watches changed)",
        intent.name
    ))
}

/// Whether the spec now writes `true` in the object's `field`, the one its provider keeps an
/// object paused by ([`fabrik_provider::Provider::paused_field`]): then it stays paused.
fn keeps_paused(spec: &Spec, intent: &Intent, field: &str) -> bool {
    spec.resource(&intent.name).is_some_and(|resource| {
        resource.with.iter().any(|(key, expr)| {
            key.name == field && matches!(expr.kind, crate::spec::ExprKind::Bool(true))
        })
    })
}

/// What recovery found and the records that put it in the state.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Resources adopted from an interrupted create or update.
    pub adopted: BTreeSet<String>,
    /// One line per resolved call, for people.
    pub lines: Vec<String>,
    /// Journal records that resolve every pending call but the pauses.
    pub records: Vec<Change>,
    /// Pauses never followed by their resume (intent ids): objects a killed run may have left
    /// paused.
    pub paused: Vec<u64>,
}

/// Resolves every pending call of `state` by looking its object up. Reads only; the caller
/// records [`Recovery::records`] (apply, destroy) or applies them in memory (plan). `secrets`,
/// when it holds the stack's key, masks the outputs that derive from secrets; without it they
/// are left out of what is recorded.
///
/// # Errors
/// [`Error::Provider`] when a lookup fails: the run stops before planning on a guess.
pub fn recover(
    state: &State,
    registry: &Registry,
    clients: &Clients,
    secrets: Option<&Secrets>,
) -> Result<Recovery, Error> {
    let secrets = secrets.filter(|s| s.key().is_some());
    let mut recovery = Recovery::default();
    // Later calls build on earlier ones (a replacement deletes, then creates): resolve in order
    // against the state as each resolution leaves it.
    let mut now = state.clone();
    for (&id, intent) in &state.pending {
        let client = registry
            .provider_of(&intent.type_name)
            .and_then(|p| clients.get(p))
            .ok_or_else(|| Error::State(format!(
                "an interrupted call on `{}` needs resource type `{}`, which this fabrik does not know",
                intent.name, intent.type_name
            )))?;
        // An object made before its resource was moved still carries the old name.
        let marker = match intent.action {
            IntentAction::Update | IntentAction::Delete | IntentAction::Pause => now
                .resources
                .get(&intent.name)
                .and_then(|r| {
                    let object = intent.object.as_deref()?;
                    if r.id == object {
                        return Some(r.marker(&intent.name));
                    }
                    let deposed = r.deposed.iter().find(|d| d.id == object)?;
                    Some(deposed.marker(&intent.name))
                })
                .unwrap_or(&intent.name)
                .to_string(),
            IntentAction::Create | IntentAction::Import => intent.name.clone(),
        };
        let target = Target {
            stack: &state.stack,
            name: &marker,
            type_name: &intent.type_name,
        };
        let failed = |source| Error::Provider {
            resource: format!("recovering `{}` after an interrupted run", intent.name),
            source,
        };
        let mut changes = Vec::new();
        match intent.action {
            // Resuming is a change: only [`settle`], with the lock held, makes it.
            IntentAction::Pause => {
                recovery.paused.push(id);
                continue;
            }
            IntentAction::Create => match client.find(target, &intent.inputs).map_err(failed)? {
                Some(found) => {
                    let mut deposed = now
                        .resources
                        .get(&intent.name)
                        .map(|r| r.deposed.clone())
                        .unwrap_or_default();
                    deposed.extend(intent.deposes.clone());
                    let resource = adopted(
                        intent,
                        &found.id,
                        &found.observed.inputs,
                        found.observed.outputs,
                        deposed,
                        secrets,
                    );
                    recovery.adopted.insert(intent.name.clone());
                    recovery.lines.push(format!(
                        "{}: adopted {} (its create was interrupted)",
                        intent.name, found.id
                    ));
                    changes.push(Change::Put {
                        name: intent.name.clone(),
                        resource: Box::new(resource),
                    });
                }
                None => recovery.lines.push(format!(
                    "{}: its interrupted create left nothing behind",
                    intent.name
                )),
            },
            IntentAction::Update => {
                let object = intent.object.as_deref().unwrap_or_default();
                match client
                    .read(target, object, &intent.inputs)
                    .map_err(failed)?
                {
                    Some(observed) => {
                        if let Some(prior) =
                            now.resources.get(&intent.name).filter(|r| r.id == object)
                        {
                            let resource = adopted(
                                intent,
                                object,
                                &observed.inputs,
                                observed.outputs,
                                prior.deposed.clone(),
                                secrets,
                            );
                            let resource = ResourceState {
                                dependencies: prior.dependencies.clone(),
                                protect: prior.protect,
                                marked_as: prior.marked_as.clone(),
                                ..resource
                            };
                            recovery.adopted.insert(intent.name.clone());
                            recovery.lines.push(format!(
                                "{}: re-read after an interrupted update",
                                intent.name
                            ));
                            changes.push(Change::Put {
                                name: intent.name.clone(),
                                resource: Box::new(resource),
                            });
                        }
                    }
                    None => {
                        recovery
                            .lines
                            .push(format!("{}: gone after an interrupted update", intent.name));
                        changes.push(Change::Remove {
                            name: intent.name.clone(),
                        });
                    }
                }
            }
            IntentAction::Delete => {
                let object = intent.object.as_deref().unwrap_or_default();
                let exists = client
                    .read(target, object, &intent.inputs)
                    .map_err(failed)?
                    .is_some();
                if let Some(current) = now.resources.get(&intent.name) {
                    if exists {
                        recovery.lines.push(format!(
                            "{}: still there after an interrupted delete",
                            intent.name
                        ));
                    } else if current.id == object {
                        recovery.lines.push(format!(
                            "{}: deleted (its delete was interrupted)",
                            intent.name
                        ));
                        changes.push(Change::Remove {
                            name: intent.name.clone(),
                        });
                    } else if current.deposed.iter().any(|d| d.id == object) {
                        let mut rest = current.clone();
                        rest.deposed.retain(|d| d.id != object);
                        recovery
                            .lines
                            .push(format!("{}: replaced object {object} deleted", intent.name));
                        changes.push(Change::Put {
                            name: intent.name.clone(),
                            resource: Box::new(rest),
                        });
                    }
                }
            }
            IntentAction::Import => {
                let object = intent.object.as_deref().unwrap_or_default();
                // The import was asked for; whether it happened shows in whether the object
                // carries this resource's marker: `find`, given the object's own inputs, says.
                let claimed = match unclaimable_is_none(client.read(target, object, &intent.inputs))
                    .map_err(failed)?
                {
                    // The import refuses an object that is not the one the spec describes; it
                    // may have been killed before it could say so.
                    Some(seen) if !names_another_object(registry, intent, &seen.inputs) => {
                        let mut probe = intent.inputs.clone();
                        probe.extend(seen.inputs);
                        unclaimable_is_none(client.find(target, &probe)).map_err(failed)?
                    }
                    _ => None,
                };
                match claimed {
                    Some(found) if !now.resources.contains_key(&intent.name) => {
                        let resource = imported(registry, intent, found, secrets);
                        recovery.adopted.insert(intent.name.clone());
                        recovery.lines.push(format!(
                            "{}: imported {} (its import was interrupted)",
                            intent.name, resource.id
                        ));
                        changes.push(Change::Put {
                            name: intent.name.clone(),
                            resource: Box::new(resource),
                        });
                    }
                    Some(_) => {}
                    None => recovery.lines.push(format!(
                        "{}: its interrupted import did not claim {object}; run `fabrik import` \
                         again to import it",
                        intent.name
                    )),
                }
            }
        }
        changes.push(Change::Settled { intent: id });
        for change in &changes {
            now.apply(Record {
                serial: now.serial,
                change: change.clone(),
            });
        }
        recovery.records.extend(changes);
    }
    Ok(recovery)
}

/// The state of an object found again: the intended inputs where they are what is there (the
/// call completed), else what is there, so the next plan repairs the difference.
fn adopted(
    intent: &Intent,
    id: &str,
    observed: &Attributes,
    outputs: Attributes,
    deposed: Vec<crate::state::Deposed>,
    secrets: Option<&Secrets>,
) -> ResourceState {
    let mut inputs = intent.inputs.clone();
    // A sensitive value read back is never stored: the intent's hash stands for it.
    for (k, v) in observed
        .iter()
        .filter(|(k, _)| !intent.sensitive.contains(k))
    {
        inputs.insert(k.clone(), v.clone());
    }
    ResourceState {
        type_name: intent.type_name.clone(),
        id: id.to_string(),
        spec_hash: hash::spec_hash(&intent.type_name, &inputs),
        inputs,
        outputs: stored_outputs(intent, outputs, secrets),
        dependencies: intent.dependencies.clone(),
        protect: false,
        // Its gates, if any, never ran.
        unverified: true,
        deposed,
        marked_as: None,
    }
}

/// Outputs as the state keeps them: those the intent names sensitive (derived from a secret)
/// by their keyed hash, or left out without the stack's key; a secret a provider echoes in
/// another one masked.
fn stored_outputs(intent: &Intent, outputs: Attributes, secrets: Option<&Secrets>) -> Attributes {
    let sensitive: BTreeSet<String> = intent.sensitive.iter().cloned().collect();
    match secrets {
        Some(secrets) => crate::resolve::mask_outputs(outputs, Some(&sensitive), secrets),
        None => outputs
            .into_iter()
            .filter(|(k, _)| !sensitive.contains(k))
            .map(|(k, mut v)| {
                crate::redact::redact_value(&mut v);
                (k, v)
            })
            .collect(),
    }
}

/// A lookup for an interrupted import, where an id the provider cannot look up (malformed, or
/// naming nothing) is an answer: the import could not have claimed anything either. Settling
/// the intent on it, rather than failing, keeps one bad id from stopping every later run.
fn unclaimable_is_none<T>(
    result: fabrik_provider::Result<Option<T>>,
) -> fabrik_provider::Result<Option<T>> {
    match result {
        Err(e) if matches!(e.kind, ErrorKind::InvalidInput | ErrorKind::NotFound) => Ok(None),
        other => other,
    }
}

/// Whether a field that forces a new object differs between what `intent` was given and what
/// the object has (a read gives each field in the spelling it was given where it means the
/// same): then the object is not the one the resource describes.
fn names_another_object(registry: &Registry, intent: &Intent, observed: &Attributes) -> bool {
    let Some(ty) = registry.resource_type(&intent.type_name) else {
        return false;
    };
    ty.fields.iter().filter(|f| f.force_new).any(|f| {
        intent.inputs.get(f.name).is_some_and(|given| {
            !crate::secrets::is_masked(given)
                && observed.get(f.name).is_some_and(|seen| seen != given)
        })
    })
}

/// The state of an object claimed by an import: as the provider sees it now, in normal form
/// and hashed as a plan hashes the spec, so the next plan shows exactly how it differs from the
/// spec. Sensitive values read back (and outputs derived from them) are stored by their keyed
/// hash when `secrets` holds the stack's key; without it (a recovery without the spec) they are
/// left out, and the next apply writes the spec's values.
pub fn imported(
    registry: &Registry,
    intent: &Intent,
    found: Found,
    secrets: Option<&Secrets>,
) -> ResourceState {
    let sensitive = |k: &String| intent.sensitive.contains(k);
    let observed: Attributes = match secrets {
        Some(_) => found.observed.inputs,
        None => found
            .observed
            .inputs
            .into_iter()
            .filter(|(k, _)| !sensitive(k))
            .collect(),
    };
    let mut inputs = registry
        .provider_of(&intent.type_name)
        .and_then(|p| registry.provider(p))
        .and_then(|p| p.normalize(&intent.type_name, &observed).ok())
        .unwrap_or(observed);
    if let Some(secrets) = secrets {
        for (_, value) in inputs.iter_mut().filter(|(k, _)| sensitive(k)) {
            if !crate::secrets::is_masked(value) {
                *value = serde_json::Value::String(secrets.mask(value));
            }
        }
    }
    ResourceState {
        type_name: intent.type_name.clone(),
        id: found.id,
        spec_hash: hash::spec_hash(&intent.type_name, &inputs),
        inputs,
        outputs: stored_outputs(intent, found.observed.outputs, secrets),
        dependencies: intent.dependencies.clone(),
        protect: false,
        // fabrik changed nothing of it, so there is no change of its for gates to check.
        unverified: false,
        deposed: Vec::new(),
        marked_as: None,
    }
}
