//! Where fabrik remembers what it made: a snapshot per stack plus an append-only journal of
//! every change since, so that recording one change costs O(change), not O(state).
//!
//! ```text
//! .fabrik/<stack>.state.json   snapshot: lineage, serial, resources (mode 0600, atomic writes)
//! .fabrik/<stack>.journal      JSON lines since the snapshot, fsynced as each change completes
//! .fabrik/<stack>.lock         flock held by the one writer, with who holds it
//! ```
//!
//! The engine sees none of that: it talks to a [`StateStore`], which the file backend
//! implements here and the PostgreSQL backend ([`postgres`]) for teams that share a stack.

pub mod backend;
pub mod file;
pub mod journal;
pub mod lock;
pub mod postgres;

use std::collections::BTreeMap;

use fabrik_provider::Attributes;
use serde::{Deserialize, Serialize};

pub use file::FileStore;
pub use lock::{Broken, Lock};

use crate::error::Error;
use journal::Record;

/// Where one stack's state lives, as the engine sees it.
///
/// # Guarantees
/// - [`StateStore::load`] returns the last committed snapshot with every durable record since
///   replayed on top.
/// - A record passed to [`JournalWriter::append`] or [`StateStore::record`] is durable once the
///   call returns: a crash right after loses nothing.
/// - [`StateStore::commit`] replaces the snapshot and empties the journal it folds in, all or
///   nothing. A backend that can see another writer refuses a commit built on a state that
///   changed since it was read.
/// - [`StateStore::lock`] holds until the returned [`Lock`] is dropped or the process dies.
///
/// # Assumptions
/// The caller holds the lock for every write, and loads before it begins or commits.
pub trait StateStore: Send + Sync {
    /// The stack this store holds.
    fn stack(&self) -> &str;
    fn load(&self) -> Result<State, Error>;
    /// Takes the stack's writer lock, or says who has it ([`Error::Locked`]).
    fn lock(&self, command: &str) -> Result<Lock, Error>;
    /// Opens the journal for a run that will change things. A state never written gets its
    /// lineage and a first snapshot now, so the journal always has one to replay onto.
    fn begin(&self, state: &mut State) -> Result<Box<dyn JournalWriter + '_>, Error>;
    /// Writes the snapshot and empties the journal it now contains.
    fn commit(&self, state: &State) -> Result<(), Error>;
    /// Appends records on their own (`state rm`, recovery), durably.
    fn record(&self, records: &[Record]) -> Result<(), Error>;
    /// Breaks the lock whoever holds it, and says who did.
    fn force_unlock(&self) -> Result<Broken, Error>;
    /// Takes the stack's state out of use once it was copied to the backend described by
    /// `moved_to`: a later load here fails with [`Error::Moved`] (rather than find no state and
    /// plan to create everything again) until a state is committed here again. Refused if the
    /// state changed since it was loaded. Returns what became of the old copy, for the user.
    fn retire(&self, moved_to: &str) -> Result<String, Error>;

    /// The key that masks the stack's sensitive inputs, for a backend that shares it between
    /// the machines using the stack: the one it keeps, or `proposed` (this machine's) kept now
    /// if it has none. `None`: the backend keeps no key, and the one beside the spec is used.
    fn shared_key(&self, _proposed: &[u8; 32]) -> Result<Option<[u8; 32]>, Error> {
        Ok(None)
    }
}

/// The open journal of one run.
pub trait JournalWriter {
    /// Appends records, each encoded by [`journal::encode`], and makes them durable, all of
    /// them with one flush. (Encoded by the caller: it can then move each record into the state
    /// instead of keeping a copy until the flush.)
    fn append(&mut self, lines: &[String]) -> Result<(), Error>;
}

/// The snapshot format's version.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// Names this state's history; a saved plan made against another lineage is refused.
    /// Empty until the state is first written.
    pub lineage: String,
    /// Advances with every recorded change.
    pub serial: u64,
    pub stack: String,
    /// The provider configurations used last (no sensitive values), so that `destroy` works
    /// with the spec gone.
    #[serde(default)]
    pub providers: BTreeMap<String, Attributes>,
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceState>,
    /// The stack's outputs (`outputs:` in the spec) as the last successful apply worked them
    /// out; absent until a spec declares some.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, OutputState>,
    /// Provider calls that were announced but whose outcome was never recorded: a run died
    /// during them. The next run looks each object up before planning.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<u64, Intent>,
}

/// A provider call about to be made, recorded (and fsynced) before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub action: IntentAction,
    /// The object's id, for an update, a delete or an import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The inputs the call is given (for a delete: the object's recorded inputs; for an import:
    /// the spec's inputs known at the time, which only help the provider locate the object).
    pub inputs: Attributes,
    /// For a create or an import: what the resource needs, as the state would record it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// For a create that replaces an object which stays until its deferred delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposes: Option<Deposed>,
    /// Fields whose values are secrets: `inputs` holds their hash, and recovery never stores
    /// what it reads of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentAction {
    Create,
    Update,
    Delete,
    /// `fabrik import`: an existing object is claimed (its marker stamped) for a resource.
    Import,
    /// An object paused while what it watches changes (`src/executor/pause.rs`); settled only
    /// once it is resumed, so a pending one is resumed by recovery.
    Pause,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceState {
    #[serde(rename = "type")]
    pub type_name: String,
    /// The object's identity in its provider.
    pub id: String,
    /// BLAKE3 of the canonical resolved inputs this object was made from.
    pub spec_hash: String,
    pub inputs: Attributes,
    #[serde(default)]
    pub outputs: Attributes,
    /// Resources this one needed when it was applied; destroy goes in reverse of these.
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub protect: bool,
    /// Its last change was kept without its gates passing (`--no-rollback`): the next apply
    /// runs the gates again, and until they pass it is not done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
    /// Objects replaced by this one whose delete has not run yet (create-before-destroy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deposed: Vec<Deposed>,
    /// The resource name the object's ownership marker carries (`fabrik:<stack>/<name>`),
    /// when it is not this resource's own: the resource was moved (`moved:`, `state mv`)
    /// without touching the object, so every call on the object names it as it was made.
    /// A new object (a create, a replacement) carries the resource's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_as: Option<String>,
}

/// One stack output as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputState {
    /// The value; for a sensitive output, its keyed hash (`(sensitive) blake3:…`) only.
    pub value: fabrik_provider::Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// For a sensitive output that can be worked out again without the run that applied it:
    /// its expression with everything but `${secret.X}` and `${env.X}` put in. `fabrik output`
    /// looks those up again (environment, `.env`) and shows the value only where it hashes to
    /// `value`. Absent when a sensitive variable or a sensitive attribute is in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<fabrik_provider::Value>,
}

/// A replaced object waiting for its delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deposed {
    pub id: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub inputs: Attributes,
    /// The resource name its marker carries, when not its resource's (see
    /// [`ResourceState::marked_as`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_as: Option<String>,
}

impl ResourceState {
    /// The name this resource's object is marked with, for the provider calls on it.
    pub fn marker<'a>(&'a self, name: &'a str) -> &'a str {
        self.marked_as.as_deref().unwrap_or(name)
    }
}

impl Deposed {
    /// The name this replaced object is marked with, for its delete.
    pub fn marker<'a>(&'a self, name: &'a str) -> &'a str {
        self.marked_as.as_deref().unwrap_or(name)
    }
}

impl State {
    pub fn empty(stack: &str) -> Self {
        State {
            version: STATE_VERSION,
            lineage: String::new(),
            serial: 0,
            stack: stack.to_string(),
            providers: BTreeMap::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Renames a resource: its entry, and the dependencies of others on it. Its object keeps
    /// the marker it carries, now recorded in `marked_as` (cleared when it moves back to the
    /// name on its marker). Nothing happens when `from` is not recorded.
    pub fn rename(&mut self, from: &str, to: &str) {
        let Some(mut resource) = self.resources.remove(from) else {
            return;
        };
        let marker = resource.marker(from).to_string();
        resource.marked_as = (marker != to).then_some(marker);
        for deposed in &mut resource.deposed {
            let marker = deposed.marker(from).to_string();
            deposed.marked_as = (marker != to).then_some(marker);
        }
        self.resources.insert(to.to_string(), resource);
        for other in self.resources.values_mut() {
            for dependency in &mut other.dependencies {
                if dependency == from {
                    *dependency = to.to_string();
                }
            }
        }
    }

    /// The id the next intent gets: above every one still pending.
    pub fn next_intent(&self) -> u64 {
        self.pending.keys().next_back().map_or(1, |last| last + 1)
    }

    pub fn apply(&mut self, record: Record) {
        match record.change {
            journal::Change::Put { name, resource } => {
                self.resources.insert(name, *resource);
            }
            journal::Change::Remove { name } => {
                self.resources.remove(&name);
            }
            journal::Change::Move { from, to } => self.rename(&from, &to),
            journal::Change::Providers { providers } => {
                self.providers = providers;
            }
            journal::Change::Outputs { outputs } => {
                self.outputs = outputs;
            }
            journal::Change::Intent { intent, call } => {
                self.pending.insert(intent, *call);
            }
            journal::Change::Settled { intent } => {
                self.pending.remove(&intent);
            }
        }
        self.serial = self.serial.max(record.serial);
    }
}

/// A new random lineage: 128 bits from the OS, as hex.
pub fn new_lineage() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the states of a project's stacks are kept: the backend chosen by `--backend`,
/// `FABRIK_BACKEND`, the spec's `backend:` block, or the local directory by default.
#[derive(Debug, Clone)]
pub enum Backend {
    /// JSON files in a directory (`.fabrik/` beside the spec unless `--state-dir` says otherwise).
    Dir(std::path::PathBuf),
    /// A PostgreSQL schema shared by a team.
    Postgres(Box<postgres::Config>),
}

impl Backend {
    /// The store of one stack.
    pub fn store(&self, stack: &str) -> Result<Box<dyn StateStore>, Error> {
        match self {
            Backend::Dir(dir) => Ok(Box::new(FileStore::new(dir.clone(), stack))),
            Backend::Postgres(config) => Ok(Box::new(config.store(stack)?)),
        }
    }

    /// The stacks that have a state here, sorted.
    pub fn stacks(&self) -> Result<Vec<String>, Error> {
        match self {
            Backend::Dir(dir) => Ok(FileStore::stacks_in(dir)),
            Backend::Postgres(config) => config.stacks(),
        }
    }

    /// Where the states are, for messages; never a password.
    pub fn describe(&self) -> String {
        match self {
            Backend::Dir(dir) => dir.display().to_string(),
            Backend::Postgres(config) => config.describe(),
        }
    }
}

/// `fabrik state rm`: forgets the resource `name` (journaled, under the lock) and leaves its
/// object as it is. Returns the object's id, for the message.
///
/// # Errors
/// [`Error::Usage`] when the state does not track `name`; the backend's errors otherwise.
pub fn forget(store: &dyn StateStore, name: &str, command_line: &str) -> Result<String, Error> {
    let _lock = store.lock(command_line)?;
    let mut state = store.load()?;
    let id = state
        .resources
        .get(name)
        .ok_or_else(|| not_tracked(name, &state.stack))?
        .id
        .clone();
    let record = Record {
        serial: state.serial + 1,
        change: journal::Change::Remove {
            name: name.to_string(),
        },
    };
    store.record(std::slice::from_ref(&record))?;
    state.apply(record);
    store.commit(&state)?;
    Ok(id)
}

/// `fabrik state mv`: renames the resource `from` to `to` (journaled, under the lock), as a
/// `moved:` entry would, and leaves its object as it is. Returns its type, for the message.
///
/// # Errors
/// [`Error::Usage`] when the state does not track `from`, already tracks `to`, or holds calls
/// on either that an interrupted run left unsettled; the backend's errors otherwise.
pub fn rename(
    store: &dyn StateStore,
    from: &str,
    to: &str,
    command_line: &str,
) -> Result<String, Error> {
    let _lock = store.lock(command_line)?;
    let mut state = store.load()?;
    let type_name = state
        .resources
        .get(from)
        .ok_or_else(|| not_tracked(from, &state.stack))?
        .type_name
        .clone();
    if from == to {
        return Err(Error::Usage(format!("`{from}` is already called `{to}`")));
    }
    if let Some(there) = state.resources.get(to) {
        return Err(Error::Usage(format!(
            "the state of stack `{}` already tracks `{to}` ({}, {}): a move cannot put two objects at one address\nremove it first (`fabrik state rm {to}`) if it is not wanted",
            state.stack, there.type_name, there.id
        )));
    }
    if state
        .pending
        .values()
        .any(|i| i.name == from || i.name == to)
    {
        return Err(Error::Usage(format!(
            "an interrupted run left calls on `{from}` or `{to}` unsettled; run `fabrik apply` (or `fabrik plan`) to settle them first"
        )));
    }
    let record = Record {
        serial: state.serial + 1,
        change: journal::Change::Move {
            from: from.to_string(),
            to: to.to_string(),
        },
    };
    store.record(std::slice::from_ref(&record))?;
    state.apply(record);
    store.commit(&state)?;
    Ok(type_name)
}

/// The error for a resource the state does not track.
pub fn not_tracked(name: &str, stack: &str) -> Error {
    Error::Usage(format!(
        "`{name}` is not tracked in the state of stack `{stack}`"
    ))
}

#[cfg(test)]
mod tests {
    use super::{ResourceState, State};

    fn resource(dependencies: &[&str]) -> ResourceState {
        ResourceState {
            type_name: "local.process".into(),
            id: "1:1".into(),
            spec_hash: String::new(),
            inputs: Default::default(),
            outputs: Default::default(),
            dependencies: dependencies.iter().map(|d| (*d).to_string()).collect(),
            protect: false,
            unverified: false,
            deposed: Vec::new(),
            marked_as: None,
        }
    }

    #[test]
    fn a_rename_carries_dependencies_along_and_remembers_the_marker() {
        let mut state = State::empty("shop");
        state.resources.insert("web".into(), resource(&[]));
        state.resources.insert("proxy".into(), resource(&["web"]));
        state.rename("web", "api");
        assert!(!state.resources.contains_key("web"));
        assert_eq!(state.resources["api"].marked_as.as_deref(), Some("web"));
        assert_eq!(state.resources["proxy"].dependencies, ["api"]);
        // A second rename keeps the name the object was made under; moving back clears it.
        state.rename("api", "backend");
        assert_eq!(state.resources["backend"].marker("backend"), "web");
        state.rename("backend", "web");
        assert_eq!(state.resources["web"].marked_as, None);
        assert_eq!(state.resources["proxy"].dependencies, ["web"]);
        // Nothing to rename: nothing happens.
        let before = state.clone();
        state.rename("nowhere", "web2");
        assert_eq!(state, before);
    }
}
