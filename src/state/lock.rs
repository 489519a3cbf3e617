//! One writer per stack: an exclusive flock on `<stack>.lock`, which dies with its process.
//! The file also says who holds it, for whoever is refused.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::lock_holder::Holder;

use crate::error::Error;

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
            holder: Box::new(read_holder(&mut file).unwrap_or_else(Holder::unknown)),
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
