//! Who holds a stack's lock: written by whoever takes the lock (a lock file, a database row)
//! and shown to whoever is refused. A leaf, so that the error a refused run gets
//! (`Error::Locked`) can name the holder without depending on the state backends that store it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of this process's user when the environment does not say (cron, systemd units,
/// containers often leave `$USER` unset): from /etc/passwd, else `uid N`.
fn user_of_uid() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?;
                (id.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

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
    /// This process, running `command`.
    pub fn current(command: &str) -> Self {
        Holder {
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| user_of_uid()),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map_or_else(|_| "unknown".into(), |h| h.trim().to_string()),
            pid: std::process::id(),
            command: command.to_string(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    /// A holder whose record could not be read.
    pub fn unknown() -> Self {
        Holder {
            user: "unknown".into(),
            host: "unknown".into(),
            pid: 0,
            command: "unknown".into(),
            since: "unknown".into(),
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
