//! Importing: taking an object that already exists into the state as a resource of the spec,
//! so that fabrik manages it from then on instead of refusing to touch it.
//!
//! The provider claims the object (stamps the resource's marker, changes nothing else) and
//! reports it as it is; the state records exactly that, hashed the way a plan hashes the spec.
//! So the next plan shows how the object differs from the spec, and nothing when it matches.
//! Like any provider call, the claim is announced in the journal first: a run killed during it
//! is settled by the next one (see [`crate::recover`]).

use std::collections::BTreeSet;

use fabrik_provider::{Attributes, Context, ErrorKind, Target, Value};

use crate::error::Error;
use crate::registry::Registry;
use crate::source::{Diagnostic, Diagnostics};
use crate::stack::Loaded;
use crate::state::journal::{self, Change, Record};
use crate::state::{Intent, IntentAction, JournalWriter, State, StateStore};

/// Imports object `id` as resource `index` of `loaded`'s spec into `state`, which `store`
/// holds under the lock. Returns the id the object is recorded under.
///
/// # Errors
/// [`Error::Usage`] when the resource or the object is managed already, [`Error::Spec`] when
/// the provider finds the resource's inputs wrong, [`Error::Provider`] when the claim fails.
pub fn import(
    registry: &Registry,
    loaded: &Loaded,
    state: &mut State,
    store: &dyn StateStore,
    context: &Context,
    index: usize,
    id: &str,
) -> Result<String, Error> {
    let resource = &loaded.spec.resources[index];
    let name = &resource.name;
    if let Some(managed) = state.resources.get(name) {
        return Err(Error::Usage(format!(
            "`{name}` is already managed by stack `{}` (as {}); nothing was imported. To manage \
             another object as `{name}`, forget this one first (`fabrik state rm {name}`; the \
             object stays as it is)",
            loaded.spec.stack, managed.id
        )));
    }
    if let Some(other) = managed_as(state, &resource.type_name, id) {
        return Err(already_managed(id, other, &loaded.spec.stack));
    }

    let ty = registry
        .resource_type(&resource.type_name)
        .expect("checked specs only name known types");
    let provider_name = registry.provider_of(ty.name).expect("typed");
    let provider = registry.provider(provider_name).expect("registered");
    let inputs = crate::plan::desired_inputs(
        &crate::plan::Input {
            spec: &loaded.spec,
            graph: &loaded.graph,
            registry,
            state,
            secrets: &loaded.secrets,
            sensitive: &loaded.sensitive,
            targets: &[],
            observed: None,
            read: None,
            adopted: &BTreeSet::new(),
            context,
        },
        index,
    );
    // Only the known inputs reach the provider: they help it locate the object, and a value
    // known only after an apply cannot.
    let known: Attributes = inputs
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    let target = Target {
        stack: &loaded.spec.stack,
        name,
        type_name: ty.name,
    };
    if let Err(e) = provider.validate(target, &known) {
        return Err(Error::Spec(Diagnostics {
            source: loaded.spec.source.clone(),
            items: vec![Diagnostic::new(
                resource.type_loc,
                format!("`{name}` ({}): {e}", ty.name),
            )],
        }));
    }
    let sensitive = &loaded.sensitive[index];
    // Journaled as the state keeps inputs: secrets by their keyed hash.
    let masked: Attributes = known
        .iter()
        .map(|(k, v)| {
            let v = if sensitive.contains(k) {
                Value::String(loaded.secrets.mask(v))
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let clients =
        crate::clients::configure(registry, Some(loaded.configuration()), state, context)?;
    let client = clients
        .get(provider_name)
        .expect("configure sets up every provider the spec uses");

    let intent = Intent {
        name: name.clone(),
        type_name: ty.name.to_string(),
        action: IntentAction::Import,
        object: Some(id.to_string()),
        inputs: masked,
        dependencies: loaded
            .graph
            .dependencies(index)
            .into_iter()
            .map(|d| loaded.spec.resources[d].name.clone())
            .collect(),
        deposes: None,
        sensitive: sensitive.iter().cloned().collect(),
    };
    // What is stored is hashed with the stack's key: it must exist before anything is.
    loaded.secrets.save_key()?;
    let mut journal = store.begin(state)?;
    let serial = state.serial + 1;
    let intent_id = state.next_intent();
    let mut announce = Vec::new();
    // The provider configurations let `destroy` work with the spec gone, as after an apply.
    let providers = crate::clients::kept(&loaded.spec, registry, &loaded.secrets);
    if providers != state.providers {
        announce.push(Change::Providers { providers });
    }
    announce.push(Change::Intent {
        intent: intent_id,
        call: Box::new(intent.clone()),
    });
    write(&mut *journal, state, serial, announce)?;

    let target = Target {
        stack: &state.stack,
        name,
        type_name: ty.name,
    };
    let result = client.import(target, id, &known);
    let settled = Change::Settled { intent: intent_id };
    match result {
        // Objects without a marker (a zone) cannot refuse a second claim themselves.
        Ok(found) if managed_as(state, ty.name, &found.id).is_some() => {
            write(&mut *journal, state, serial, vec![settled])?;
            store.commit(state)?;
            let other = managed_as(state, ty.name, &found.id).expect("just found");
            Err(already_managed(&found.id, other, &loaded.spec.stack))
        }
        Ok(found) => {
            let mut recorded =
                crate::recover::imported(registry, &intent, found, Some(&loaded.secrets));
            recorded.protect = resource.protect;
            let imported_id = recorded.id.clone();
            let put = Change::Put {
                name: name.clone(),
                resource: Box::new(recorded),
            };
            write(&mut *journal, state, serial, vec![put, settled])?;
            store.commit(state)?;
            Ok(imported_id)
        }
        Err(source) => {
            // A refusal (no such object, another resource's, a bad id) was made before anything
            // was written. Any other failure may have come after the provider acted: the intent
            // stays open, and the next run looks the object up to settle it.
            let refused = matches!(
                source.kind,
                ErrorKind::NotFound
                    | ErrorKind::Conflict
                    | ErrorKind::InvalidInput
                    | ErrorKind::Unauthorized
            );
            if refused {
                write(&mut *journal, state, serial, vec![settled])?;
            }
            store.commit(state)?;
            let resource = if refused {
                format!("cannot import `{name}` ({id})")
            } else {
                format!(
                    "importing `{name}` ({id}) failed, perhaps after the provider acted (the \
                     next fabrik run checks whether it went through)"
                )
            };
            Err(Error::Provider { resource, source })
        }
    }
}

/// The resource of the state that manages object `id` of type `type_name`, if one does.
fn managed_as<'s>(state: &'s State, type_name: &str, id: &str) -> Option<&'s str> {
    state
        .resources
        .iter()
        .find(|(_, r)| r.type_name == type_name && r.id == id)
        .map(|(name, _)| name.as_str())
}

fn already_managed(id: &str, other: &str, stack: &str) -> Error {
    Error::Usage(format!(
        "{id} is already managed by stack `{stack}` as `{other}`; nothing was imported. One \
         object is managed by one resource"
    ))
}

/// Appends `changes` to the journal (one fsync) and applies them to the state in memory.
fn write(
    journal: &mut dyn JournalWriter,
    state: &mut State,
    serial: u64,
    changes: Vec<Change>,
) -> Result<(), Error> {
    let records: Vec<Record> = changes
        .into_iter()
        .map(|change| Record { serial, change })
        .collect();
    let lines: Vec<String> = records.iter().map(journal::encode).collect();
    journal.append(&lines)?;
    for record in records {
        state.apply(record);
    }
    Ok(())
}
