//! `fabrik-provider`: the contract between the fabrik engine and its providers.
//!
//! The engine plans and orders changes; a provider only knows how to read, create, update and
//! delete objects of its own resource types. Keeping that contract in a crate of its own keeps the
//! dependency graph one-way:
//!
//! ```text
//!            fabrik (engine, CLI)
//!             │          │
//!             ▼          ▼
//!   fabrik-local   fabrik-powerdns …   (one crate per provider)
//!             │          │
//!             ▼          ▼
//!          fabrik-provider (this crate)
//! ```
//!
//! Providers never depend on the engine or on each other, and the engine names a provider only in
//! its registry. What every HTTP provider needs (one [`http::Endpoint`] per API: timeouts,
//! retries with backoff, `Retry-After` and the `rate_limit_wait` it is waited out for, requests
//! in flight and per window, classifying what did not answer) is written once, in [`http`]; the
//! run's cancel signal and the one sleep every wait goes through, in [`Cancel`]; how a wait
//! is shown to people while it lasts (what it waits for, the last answer), in [`wait`].

// The contract providers are written against: every public item says what it promises. The
// other lints come from the workspace's table (Cargo.toml), which cannot add one for one crate.
#![warn(missing_docs)]

mod cancel;
mod error;
pub mod http;
mod schema;
pub mod wait;

use std::path::PathBuf;
use std::time::Duration;

pub use cancel::{Cancel, Interrupted};
pub use error::{Error, ErrorKind, Result};
pub use schema::{Field, FieldKind, OutputField, ReplaceStrategy, ResourceType};
pub use serde_json::Value;

/// Attribute maps: inputs a resource is given, outputs it reports. Keys are sorted, so the same
/// attributes always serialize to the same bytes.
pub type Attributes = serde_json::Map<String, Value>;

/// A provider as the registry knows it: a name, the resource types it offers and a way to build a
/// configured [`Client`].
pub trait Provider: Send + Sync {
    /// The prefix of its resource types: `local` for `local.file`.
    fn name(&self) -> &'static str;

    /// The fields its `providers:` block accepts in a spec.
    fn config_fields(&self) -> Vec<Field>;

    /// Every resource type, with the fields the engine validates and diffs.
    fn resource_types(&self) -> Vec<ResourceType>;

    /// Builds a client from the spec's `providers.<name>` block (already validated against
    /// [`Provider::config_fields`], references resolved).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a configuration the provider cannot use.
    fn configure(&self, config: &Attributes, context: &Context) -> Result<Box<dyn Client>>;

    /// Checks the known inputs of one resource beyond their kinds (formats, ranges), at plan
    /// time, so a bad value stops the plan instead of failing halfway through an apply. Fields
    /// whose value is not known yet are absent. `target` says which resource of which stack
    /// it is, for limits that what the provider adds counts against (the ownership marker in
    /// a comment of bounded length).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`], with a message naming the field.
    fn validate(&self, target: Target<'_>, inputs: &Attributes) -> Result<()> {
        let _ = (target, inputs);
        Ok(())
    }

    /// The inputs of one resource in the provider's normal form (case, trailing dots, quoting,
    /// defaults filled in), so that two spellings of the same thing hash alike and a plan never
    /// shows a change that is not one. Called with every input known; the engine records and
    /// diffs what this returns.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for inputs that have no normal form.
    fn normalize(&self, type_name: &str, inputs: &Attributes) -> Result<Attributes> {
        let _ = type_name;
        Ok(inputs.clone())
    }

    /// The place the object of a resource with these inputs (all known, in normal form)
    /// occupies, in the provider's own terms: a file's normalised absolute path, a DNS
    /// RRset's zone, name and type. Two resources with one place would fight over one object,
    /// so the engine refuses them; a place handed from one resource to another is never
    /// deleted by its old owner. `Ok(None)`: objects of this type have no place two resources
    /// could share (the default).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a place no resource may take, such as fabrik's own
    /// files ([`Context::reserved`]); the message names the field.
    fn place(
        &self,
        type_name: &str,
        inputs: &Attributes,
        context: &Context,
    ) -> Result<Option<String>> {
        let _ = (type_name, inputs, context);
        Ok(None)
    }

    /// Whether [`Client::adopt`] can take over an object another resource of the same stack
    /// holds, when the spec hands its place from that resource to another in one apply (the
    /// old owner is removed or moves elsewhere). Where it cannot, the engine refuses such a
    /// plan and says to make the change in two applies. The default: it cannot.
    fn hands_over(&self, type_name: &str) -> bool {
        let _ = type_name;
        false
    }

    /// Whether an existing object of this type with these inputs (in normal form) watches
    /// what it depends on and is to be paused while a run changes any of it, so that a
    /// release or its rollback pages nobody ([`Client::pause`], [`Client::resume`]): an uptime
    /// monitor that is active and not opted out. The default: it is not.
    fn pausable(&self, type_name: &str, inputs: &Attributes) -> bool {
        let _ = (type_name, inputs);
        false
    }

    /// The boolean input by which a spec keeps an object of this type paused for good
    /// (`paused` for an uptime monitor). Recovery reads it after a killed run that paused the
    /// object: a spec that now writes `true` there leaves the object paused instead of resuming
    /// it. The default: the type has no such field.
    fn paused_field(&self, type_name: &str) -> Option<&'static str> {
        let _ = type_name;
        None
    }
}

/// A text field of a provider's configuration block, trimmed; `None` when absent.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a value that is not a non-empty string.
pub fn config_text(config: &Attributes, provider: &str, field: &str) -> Result<Option<String>> {
    match config.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{field}` of provider {provider} must be a non-empty string"),
        )),
    }
}

/// Like [`config_text`], for a field the provider cannot do without.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when it is missing too.
pub fn config_required(config: &Attributes, provider: &str, field: &str) -> Result<String> {
    config_text(config, provider, field)?.ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("provider {provider} needs `{field}`"),
        )
    })
}

/// A duration field of a provider's configuration (`90s`, `5m`, `1h 30m`); `None` when absent.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a value that is not such a duration.
pub fn config_duration(
    config: &Attributes,
    provider: &str,
    field: &str,
) -> Result<Option<Duration>> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_duration(text).map(Some).map_err(|why| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("`{field}` of provider {provider} {why}"),
            )
        }),
        Some(other) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`{field}` of provider {provider} must be a duration such as \"90s\", \"5m\" or \
                 \"1h 30m\", not {other}"
            ),
        )),
    }
}

/// Reads the value of a [`FieldKind::Duration`] field: a number and a unit, as many as
/// wanted (`90s`, `5m`, `1h 30m`, `500ms`). The engine checks literal values with it before
/// anything runs, so a spec gets the same answer from `validate` as from `apply`.
///
/// # Errors
/// Why the text is not a duration, worded to follow the field's name ("must be …").
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    // humantime's own words ("expected number at 0") would only puzzle.
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("must be a duration such as \"90s\", \"5m\" or \"1h 30m\", not {text:?}")
    })
}

/// Where a run happens (relative paths in a spec are relative to the spec's directory), and
/// the signal that ends its waits.
#[derive(Debug, Clone)]
pub struct Context {
    /// The directory that holds the spec file.
    pub base_dir: PathBuf,
    /// The directory where the engine keeps this stack's state (logs may go beside it).
    pub state_dir: PathBuf,
    /// fabrik's own files (the spec, the state directory, the `.env` beside the spec): no
    /// resource may write them or anything under them.
    pub reserved: Vec<PathBuf>,
    /// Set when the run is interrupted: every wait a client makes goes through
    /// [`Cancel::sleep`] of this signal, so that it ends at once (see [`Client`],
    /// "Cancellation").
    pub cancel: Cancel,
}

/// Which resource a call is about: the provider stamps [`Target::marker`] on every object it
/// creates where the remote API has a place for it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The spec's `stack`.
    pub stack: &'a str,
    /// The resource's name in the spec.
    pub name: &'a str,
    /// Its type, such as `local.file`.
    pub type_name: &'a str,
}

impl Target<'_> {
    /// The ownership marker `fabrik:<stack>/<resource>`.
    pub fn marker(&self) -> String {
        format!("fabrik:{}/{}", self.stack, self.name)
    }
}

/// What a create or update produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The object's identity in the provider (a path, a record id, a uuid).
    pub id: String,
    /// Attributes known only after the call (hashes, ids, addresses).
    pub outputs: Attributes,
    /// The create made nothing: it found this resource's object already there, carrying its
    /// ownership marker (a process still running after its state was lost), and took it over.
    /// The engine reports it as found rather than created. Always `false` for an update.
    pub found: bool,
}

/// An object found by its identity, without knowing its id beforehand.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The object's identity in the provider.
    pub id: String,
    /// What it is now.
    pub observed: Observed,
}

/// What a read found.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The inputs as they are now on the remote side, in the same normal form the provider
    /// expects them in: the engine diffs them against the desired inputs to detect drift.
    pub inputs: Attributes,
    /// The attributes only the provider knows (ids, addresses, hashes).
    pub outputs: Attributes,
}

/// One change in a batch handed to [`Client::apply_batch`].
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// [`Client::create`].
    Create {
        /// The inputs to create with.
        inputs: &'a Attributes,
    },
    /// [`Client::update`].
    Update {
        /// The object.
        id: &'a str,
        /// Its inputs as recorded.
        prior: &'a Attributes,
        /// The inputs it is to have.
        inputs: &'a Attributes,
    },
    /// [`Client::delete`].
    Delete {
        /// The object.
        id: &'a str,
        /// The inputs it was created with.
        inputs: &'a Attributes,
    },
}

/// A change and the resource it is for.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The resource.
    pub target: Target<'a>,
    /// What to do to its object.
    pub change: Change<'a>,
}

/// One object to read in [`Client::read_many`].
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// The resource.
    pub target: Target<'a>,
    /// Its object's identity.
    pub id: &'a str,
    /// Its inputs as recorded.
    pub inputs: &'a Attributes,
}

/// A resource about to be created, for [`Client::obstacles`].
#[derive(Debug, Clone, Copy)]
pub struct Creation<'a> {
    /// The resource.
    pub target: Target<'a>,
    /// The inputs it is to be created with.
    pub inputs: &'a Attributes,
}

/// A configured provider.
///
/// # Guarantees
/// Every implementation gives these, for every call:
/// - **Idempotence**: repeating a call converges on the same result; a create whose object
///   already exists under the same identity takes that object over instead of making a second
///   one ([`Client::find`] locates it after a crash).
/// - **Delete of a missing object is `Ok`**: `delete` of an object that is already gone
///   succeeds.
/// - **Create stamps the marker**: `create` stamps [`Target::marker`] where the API allows, and
///   no call modifies or deletes an object that does not carry this stack's marker.
/// - **Cancellation**: every wait (backoff, `Retry-After`, a request budget, an asynchronous
///   operation polled) goes through [`Cancel::sleep`] of the [`Context::cancel`] the client was
///   configured with, and ends as soon as the run is interrupted; the call then reports
///   [`Error::interrupted`]. A request already sent is allowed to finish, and its outcome is
///   what the call reports. No call sleeps any other way, except short local waits that
///   depend on nothing remote (`local.process`: a started process settling, a stopped one
///   exiting within its grace period).
///
/// # Assumptions
/// - Inputs have been validated against the resource type's fields: required fields are present,
///   kinds match, no unknown field is passed.
/// - Calls for different resources may run concurrently from several threads.
/// - The engine starts no new call once the run is interrupted, and clears the signal
///   ([`Cancel::resume`]) before its rollback calls, which then wait as usual.
///
/// # Errors
/// The [`ErrorKind`] says what the engine may do: retry a transient error that was not
/// [`Error::retried`] already, report a conflict, stop on anything fatal. An interrupted wait is
/// transient and retried: the change is not done, and not tried again in this run. The message
/// is for people only; [`Error::field`] names the request field the server refused where it
/// says so.
pub trait Client: Send + Sync {
    /// Looks the object up. `Ok(None)` means it does not exist.
    fn read(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Option<Observed>>;

    /// Finds the object a create of `target` with `inputs` makes, by its ownership marker or
    /// its deterministic identity. The engine asks this after a crash interrupted a create, to
    /// adopt the object instead of creating it twice. `Ok(None)`: no such object.
    fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>>;

    /// Makes the object `inputs` describe, stamped with `target`'s marker.
    fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied>;

    /// Takes over an object that already exists under this resource's identity without any
    /// fabrik marker, because the spec says `adopt: true`: stamps this resource's marker and makes
    /// the object match `inputs`. An object carrying another resource's marker is refused.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] where the provider cannot adopt (the default).
    fn adopt(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let _ = inputs;
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` objects cannot be adopted", target.type_name),
        ))
    }

    /// Changes the object in place from `prior` to `inputs` (no force-new field differs).
    fn update(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied>;

    /// Removes the object created with `inputs`.
    fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()>;

    /// Which batch a change of `target` with `inputs` may join: changes with the same key that
    /// are ready at the same moment reach [`Client::apply_batch`] together (a DNS zone: one
    /// request for all its records). `None`, the default: the change is made on its own.
    fn batch_key(&self, target: Target<'_>, inputs: &Attributes) -> Option<String> {
        let _ = (target, inputs);
        None
    }

    /// Makes several changes that share a [`Client::batch_key`], in as few requests as the API
    /// allows. Returns one result per call, in order: the [`Applied`] of a create or update,
    /// `None` for a delete.
    ///
    /// # Guarantees
    /// - Each result is true of its own call: a call reported `Ok` was made, and one reported
    ///   with an error was not (an atomic batch request fails every call it carried).
    /// - The guarantees of the single calls hold for each call (idempotence, ownership).
    ///
    /// # Errors
    /// Per call, with the kinds of the single calls; the engine retries the calls whose error
    /// is [`ErrorKind::Transient`].
    fn apply_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Option<Applied>>> {
        calls
            .iter()
            .map(|call| match call.change {
                Change::Create { inputs } => self.create(call.target, inputs).map(Some),
                Change::Update { id, prior, inputs } => {
                    self.update(call.target, id, prior, inputs).map(Some)
                }
                Change::Delete { id, inputs } => {
                    self.delete(call.target, id, inputs).map(|()| None)
                }
            })
            .collect()
    }

    /// Reads several objects, one result per item in order. The default reads them one by one;
    /// a provider whose API lists many objects in one request (all RRsets of a zone) reads each
    /// such group once.
    fn read_many(&self, items: &[Read<'_>]) -> Vec<Result<Option<Observed>>> {
        items
            .iter()
            .map(|item| self.read(item.target, item.id, item.inputs))
            .collect()
    }

    /// Looks for objects already in the place of resources about to be created (the same
    /// identity) that are not theirs, so that a plan stops before anything changes instead of
    /// an apply failing halfway. One result per item, in order: `Ok(None)` when the place is
    /// free (or holds the resource's own object), `Ok(Some(message))` when something is in the
    /// way, the message saying what it is and how to take it over. The default finds nothing;
    /// the check at create time stays the guarantee.
    fn obstacles(&self, creations: &[Creation<'_>]) -> Vec<Result<Option<String>>> {
        creations.iter().map(|_| Ok(None)).collect()
    }

    /// Keeps a copy of the object at the place `inputs` name, as it is now, before an adoption
    /// or an update overwrites it, so that a rollback can put it back exactly
    /// ([`Client::restore`]). Returns where the copy is (the engine hands it back as it is),
    /// or `None` when there is nothing there or the provider keeps no copies: then a rollback
    /// updates the object back to its recorded inputs (the default).
    ///
    /// # Errors
    /// When the copy cannot be made: the change must not go ahead without it.
    fn keep_copy(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<String>> {
        let _ = (target, inputs);
        Ok(None)
    }

    /// Puts back the copy [`Client::keep_copy`] made, byte for byte.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] where the provider keeps no copies (the default).
    fn restore(&self, target: Target<'_>, copy: &str) -> Result<()> {
        let _ = copy;
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` objects keep no copies", target.type_name),
        ))
    }

    /// Forgets a copy that is no longer needed (the run is over). Best effort.
    fn drop_copy(&self, copy: &str) {
        let _ = copy;
    }

    /// Clears what an interrupted call may have left beside the object at the place `inputs`
    /// name (a half-written temporary file), once the engine has settled that call. Best
    /// effort; the default has nothing to clear.
    fn clean_up(&self, target: Target<'_>, inputs: &Attributes) {
        let _ = (target, inputs);
    }

    /// Pauses the object `id` of a type [`Provider::pausable`] says yes to, while the run
    /// changes what it watches. Returns whether this call paused it: `false` when it was
    /// paused already (someone paused it by hand), which the engine then leaves paused. An
    /// object without this resource's marker is refused, as for any change.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] where the type cannot be paused (the default).
    fn pause(&self, target: Target<'_>, id: &str) -> Result<bool> {
        let _ = id;
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` objects cannot be paused", target.type_name),
        ))
    }

    /// Undoes [`Client::pause`]: the object watches again. Resuming an object that is active
    /// already, or gone, is `Ok`, so a resume repeated after a crash converges.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] where the type cannot be paused (the default).
    fn resume(&self, target: Target<'_>, id: &str) -> Result<()> {
        let _ = id;
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` objects cannot be paused", target.type_name),
        ))
    }

    /// Claims the existing object `id` for this resource (`fabrik import NAME ID`): refuses an
    /// object that carries another resource's marker, stamps this resource's marker and
    /// changes nothing else. Returns the object as it is now, so the engine can record it and
    /// the next plan shows how it differs from `inputs` (the resource's spec, for providers
    /// that need it to locate the object).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when there is no object `id`; [`ErrorKind::Conflict`] when it
    /// belongs to another resource; [`ErrorKind::InvalidInput`] where the provider cannot
    /// import (the default).
    fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        let _ = (id, inputs);
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` objects cannot be imported", target.type_name),
        ))
    }
}
