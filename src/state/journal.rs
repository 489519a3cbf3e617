//! The append-only journal: one JSON line per recorded change, fsynced before the run moves on.
//! Several changes that complete together share one fsync (group commit).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ResourceState;

use crate::error::Error;
use fabrik_provider::Attributes;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The serial the state has once this record is applied.
    pub serial: u64,
    #[serde(flatten)]
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Put {
        name: String,
        resource: Box<ResourceState>,
    },
    Remove {
        name: String,
    },
    /// The resource `from` is called `to` from now on (`moved:`, `fabrik state mv`): one
    /// record, so a crash leaves it either moved or not, never both or neither.
    Move {
        from: String,
        to: String,
    },
    Providers {
        providers: std::collections::BTreeMap<String, Attributes>,
    },
    /// The stack's outputs, all of them, as a successful apply worked them out.
    Outputs {
        outputs: std::collections::BTreeMap<String, super::OutputState>,
    },
    /// A provider call is about to start.
    Intent {
        intent: u64,
        call: Box<super::Intent>,
    },
    /// The call announced by `intent` has finished (its effect is in the records beside this one).
    Settled {
        intent: u64,
    },
}

/// Reads every complete record. A last line cut short by a crash is ignored: its change was
/// never acknowledged.
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mut records = Vec::new();
    let mut lines = BufReader::new(file).split(b'\n').peekable();
    let mut number = 0;
    while let Some(line) = lines.next() {
        number += 1;
        let line = line.map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) => records.push(record),
            Err(_) if lines.peek().is_none() => break,
            Err(e) => {
                return Err(Error::State(format!(
                    "{} line {number} is corrupt: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(records)
}

/// A record as one line of the journal (JSON; the newline is the writer's).
pub fn encode(record: &Record) -> String {
    serde_json::to_string(record).expect("a record always serializes")
}

/// Records as journal lines, in order; a large group is encoded on every core.
pub fn encode_all(records: &[Record]) -> Vec<String> {
    crate::parallel::map(records, 1024, encode)
}

pub struct Journal {
    file: File,
    path: std::path::PathBuf,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl super::JournalWriter for Journal {
    /// Appends the lines and makes them durable with one fsync.
    fn append(&mut self, lines: &[String]) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }
}
