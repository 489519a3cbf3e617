//! The emergency state: a run that loses the database keeps what it could not write in
//! `.fabrik/<stack>.emergency.json`, and the next run on that machine pushes it, under the lock,
//! before anything else.

use super::PgStore;
use super::store::Seen;
use crate::error::Error;
use crate::state::State;

/// A run's state kept on local disk because the database went away before it was written.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Emergency {
    /// What the database held when the run last wrote: the push is a compare-and-swap on it.
    base_serial: Option<i64>,
    base_last_seq: i64,
    pub(super) state: State,
}

impl PgStore {
    fn emergency_path(&self) -> Option<std::path::PathBuf> {
        let dir = self.config.local_dir.as_ref()?;
        Some(dir.join(format!("{}.emergency.json", self.stack)))
    }

    /// The state a run could not write because the database went away, if one is waiting.
    pub(super) fn emergency(&self) -> Result<Option<Emergency>, Error> {
        let Some(path) = self.emergency_path() else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::State(format!(
                    "{} is not a valid emergency state: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The database went away before this run's state was written: keep it beside the spec
    /// (atomically, mode 0600) with the serial it builds on, for the next run to push, and say
    /// exactly where the stack stands.
    pub(super) fn keep_locally(&self, state: &State, backend: String, message: String) -> Error {
        let seen = self.seen();
        let in_doubt = state.pending.len();
        let stands = format!(
            "the stack is at serial {} with {} resource{}{}",
            state.serial,
            state.resources.len(),
            if state.resources.len() == 1 { "" } else { "s" },
            match in_doubt {
                0 => String::new(),
                n => format!(
                    " and {n} provider call{} in doubt (the next run looks them up)",
                    if n == 1 { "" } else { "s" }
                ),
            }
        );
        let Some(path) = self.emergency_path() else {
            return Error::BackendLost {
                backend,
                message: format!(
                    "{message}\nthe database went away before this run's state was written: {stands}; the database still holds serial {}, and the calls announced there are recovered by the next run",
                    seen.serial.map_or("none".into(), |n| n.to_string())
                ),
            };
        };
        let emergency = Emergency {
            base_serial: seen.serial,
            base_last_seq: seen.last_seq,
            state: state.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&emergency).expect("a state always serializes");
        let saved = std::fs::DirBuilder::new()
            .recursive(true)
            .create(path.parent().unwrap_or(std::path::Path::new(".")))
            .map_err(|e| Error::io("creating the state directory", e))
            .and_then(|()| crate::state::file::write_atomically(&path, &bytes));
        match saved {
            Ok(()) => Error::BackendLost {
                backend,
                message: format!(
                    "{message}\nthe database went away mid-run: nothing new was started, and {stands}; that state is saved in {} and the next run on this machine pushes it to the database before anything else (until then the database lacks this run's last changes)",
                    path.display(),
                ),
            },
            Err(e) => Error::BackendLost {
                backend,
                message: format!(
                    "{message}\nthe database went away mid-run and the state could not be saved locally either ({e}): {stands}; the calls announced in the database are recovered by the next run"
                ),
            },
        }
    }

    /// Pushes a state saved while the database was away, if it still builds on what the
    /// database holds. Called under the lock, before the run reads the state.
    pub(super) fn push_emergency(&self) -> Result<(), Error> {
        let Some(emergency) = self.emergency()? else {
            return Ok(());
        };
        let path = self
            .emergency_path()
            .expect("an emergency was read from it");
        {
            let mut seen = self.seen();
            *seen = Seen {
                serial: emergency.base_serial,
                last_seq: emergency.base_last_seq,
            };
        }
        self.commit_to_database(&emergency.state).map_err(|e| match e {
            Error::StaleState { stack, detail } => Error::StaleState {
                stack,
                detail: format!(
                    "{detail}; the state this machine saved while the database was away is in {} and was not pushed: compare it with the database's before removing it",
                    path.display()
                ),
            },
            other => other,
        })?;
        std::fs::remove_file(&path)
            .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        eprintln!(
            "Pushed the state saved in {} while the database was away (serial {}) to {}.",
            path.display(),
            emergency.state.serial,
            self.config.describe()
        );
        Ok(())
    }
}
