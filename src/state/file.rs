//! The local state backend: files under `.fabrik/` beside the spec.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::journal::{self, Journal, Record};
use super::lock::{self, Broken, Lock};
use super::{JournalWriter, STATE_VERSION, State, StateStore};
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    stack: String,
}

impl FileStore {
    pub fn new(dir: PathBuf, stack: &str) -> Self {
        FileStore {
            dir,
            stack: stack.to_string(),
        }
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join(format!("{}.state.json", self.stack))
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(format!("{}.journal", self.stack))
    }

    /// Says where the state went, after `state migrate` moved it.
    pub fn moved_path(&self) -> PathBuf {
        self.dir.join(format!("{}.moved", self.stack))
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.stack))
    }

    /// The stacks that have a state in `dir`, sorted.
    pub fn stacks_in(dir: &Path) -> Vec<String> {
        let mut stacks: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".state.json")
                    .or_else(|| name.strip_suffix(".journal"))
                    .map(str::to_string)
            })
            .collect();
        stacks.sort();
        stacks.dedup();
        stacks
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))
    }

    fn write_snapshot(&self, state: &State) -> Result<(), Error> {
        self.ensure_dir()?;
        let bytes = serde_json::to_vec(state).expect("a state always serializes");
        write_atomically(&self.snapshot_path(), &bytes)
    }
}

impl StateStore for FileStore {
    fn stack(&self) -> &str {
        &self.stack
    }

    /// The snapshot with the journal replayed on top: the state as of the last recorded change.
    fn load(&self) -> Result<State, Error> {
        let path = self.snapshot_path();
        let mut state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| {
                Error::State(format!("{} is not a valid state file: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Ok(to) = fs::read_to_string(self.moved_path()) {
                    return Err(Error::Moved {
                        stack: self.stack.clone(),
                        to: to.trim().to_string(),
                    });
                }
                State::empty(&self.stack)
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        if state.version != STATE_VERSION {
            return Err(Error::State(format!(
                "{} has state version {}; this fabrik reads version {STATE_VERSION}",
                path.display(),
                state.version
            )));
        }
        if state.stack != self.stack {
            return Err(Error::State(format!(
                "{} belongs to stack `{}`, not `{}`",
                path.display(),
                state.stack,
                self.stack
            )));
        }
        for record in journal::read(&self.journal_path())? {
            state.apply(record);
        }
        Ok(state)
    }

    fn lock(&self, command: &str) -> Result<Lock, Error> {
        self.ensure_dir()?;
        lock::acquire(&self.lock_path(), &self.stack, command)
    }

    /// Opens the journal for a run that will change things. A state that was never written gets
    /// its lineage and a first snapshot now, so the journal always has one to replay onto.
    fn begin(&self, state: &mut State) -> Result<Box<dyn JournalWriter + '_>, Error> {
        self.ensure_dir()?;
        if state.lineage.is_empty() {
            state.lineage = super::new_lineage();
            self.write_snapshot(state)?;
        }
        Ok(Box::new(Journal::open(&self.journal_path())?))
    }

    /// Writes the snapshot and empties the journal it now contains.
    fn commit(&self, state: &State) -> Result<(), Error> {
        self.write_snapshot(state)?;
        // The journal is in the snapshot now; a marker of an earlier move away is obsolete.
        for path in [self.journal_path(), self.moved_path()] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
            }
        }
        Ok(())
    }

    /// Appends one record on its own (for `state rm`).
    fn record(&self, records: &[Record]) -> Result<(), Error> {
        self.ensure_dir()?;
        let lines: Vec<String> = records.iter().map(journal::encode).collect();
        Journal::open(&self.journal_path())?.append(&lines)
    }

    fn force_unlock(&self) -> Result<Broken, Error> {
        lock::force_unlock(&self.lock_path())
    }

    /// Renames the snapshot and the journal with a `.migrated` suffix: out of the way, yet
    /// still there to look at. The lock (held by the caller) means nothing changed them.
    fn retire(&self, moved_to: &str) -> Result<String, Error> {
        write_atomically(&self.moved_path(), format!("{moved_to}\n").as_bytes())?;
        let mut kept = Vec::new();
        for path in [self.snapshot_path(), self.journal_path()] {
            let mut to = path.clone().into_os_string();
            to.push(".migrated");
            let to = PathBuf::from(to);
            match fs::rename(&path, &to) {
                Ok(()) => kept.push(to.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("renaming {}", path.display()), e)),
            }
        }
        Ok(format!("the old copy was kept as {}", kept.join(" and ")))
    }
}

/// [`crate::atomic_file::write`], with the path in the error: a crash leaves the old file or
/// the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::atomic_file::write(path, bytes)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
