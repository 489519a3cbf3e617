//! One writer per stack: an exclusive flock on `<stack>.lock`, which dies with its process.
//! The file also says who holds it, for whoever is refused.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl Holder {
    pub fn current(command: &str) -> Self {
        Holder {
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            pid: std::process::id(),
            command: command.to_string(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  held by {}@{}, pid {}, since {}\n  command: {}",
            self.user, self.host, self.pid, self.since, self.command
        )
    }
}

/// A held lock, whatever the backend keeps it with (an open file, a database connection);
/// dropping it releases the lock.
pub struct Lock {
    _held: Box<dyn Send>,
}

impl Lock {
    pub fn new(held: impl Send + 'static) -> Self {
        Lock {
            _held: Box::new(held),
        }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lock")
    }
}

fn open(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("opening lock {}", path.display()), e))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Takes the lock or says who has it.
pub fn acquire(path: &Path, stack: &str, command: &str) -> Result<Lock, Error> {
    let mut file = open(path)?;
    match file.try_lock() {
        Ok(()) => {
            let holder = serde_json::to_vec_pretty(&Holder::current(command)).expect("serializes");
            let written = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(&holder))
                .and_then(|()| file.sync_data());
            written.map_err(|e| Error::io(format!("writing lock {}", path.display()), e))?;
            Ok(Lock::new(file))
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            stack: stack.to_string(),
            holder: Box::new(read_holder(&mut file).unwrap_or(Holder {
                user: "unknown".into(),
                host: "unknown".into(),
                pid: 0,
                command: "unknown".into(),
                since: "unknown".into(),
            })),
        }),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("locking {}", path.display()), e))
        }
    }
}

/// What `unlock --force` found.
pub enum Broken {
    NotLocked,
    Broken(Option<Holder>),
}

/// Breaks the lock: removes the lock file, so the next run takes a fresh one even while a hung
/// process still holds the old file.
pub fn force_unlock(path: &Path) -> Result<Broken, Error> {
    if !path.exists() {
        return Ok(Broken::NotLocked);
    }
    let mut file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Broken::NotLocked),
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = read_holder(&mut file);
            std::fs::remove_file(path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            Ok(Broken::Broken(holder))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("locking {}", path.display()), e))
        }
    }
}
