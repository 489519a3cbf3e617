//! The run lock: a session-level advisory lock on a connection of its own, so the server drops
//! it when that connection or its process dies; the `locks` table says who holds it.

use std::time::Duration;

use postgres::Client;

use super::PgStore;
use crate::error::Error;
use crate::lock_holder::Holder;
use crate::state::{Broken, Lock};

/// The advisory lock key of a stack: 64 bits of BLAKE3 over the schema and the stack name, so
/// two schemas in one database (or two stacks) never share a lock.
pub(super) fn lock_key(schema: &str, stack: &str) -> i64 {
    let hash = blake3::hash(format!("fabrik-state-lock\0{schema}\0{stack}").as_bytes());
    i64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

impl PgStore {
    /// Takes the advisory lock on a connection of its own, records the holder, and pushes a
    /// state saved while the database was away.
    pub(super) fn lock_and_push(&self, command: &str) -> Result<Lock, Error> {
        let s = &self.config.schema;
        let key = lock_key(s, &self.stack);
        let mut conn = self.config.connect()?;
        let taken: bool = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(|e| self.config.error("taking the stack's lock", e))?
            .get(0);
        if !taken {
            // The holder writes its details just after taking the lock: wait a moment for the
            // row of the connection that really holds it, rather than show a previous holder.
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let holder = loop {
                let pids = lock_pids(&mut conn, key).unwrap_or_default();
                match read_holder(&mut conn, s, &self.stack) {
                    Some((holder, pid)) if pids.contains(&pid) => break Some(holder),
                    found if std::time::Instant::now() > deadline => {
                        break found.map(|(holder, _)| holder);
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            return Err(Error::Locked {
                stack: self.stack.clone(),
                holder: Box::new(holder.unwrap_or_else(Holder::unknown)),
            });
        }
        let holder = serde_json::to_string(&Holder::current(command)).expect("serializes");
        let data_pid: i32 = self
            .client()
            .query_one("SELECT pg_backend_pid()", &[])
            .map_err(|e| self.config.error("asking the server who this run is", e))?
            .get(0);
        conn.execute(
            &format!(
                "INSERT INTO {s}.locks (stack, holder, lock_pid, data_pid) \
                 VALUES ($1, $2::text::jsonb, pg_backend_pid(), $3) \
                 ON CONFLICT (stack) DO UPDATE SET holder = excluded.holder, \
                 lock_pid = excluded.lock_pid, data_pid = excluded.data_pid"
            ),
            &[&self.stack, &holder, &data_pid],
        )
        .map_err(|e| self.config.error("recording who holds the lock", e))?;
        self.push_emergency()?;
        // The connection is the lock: closing it (drop, or the process dying) releases it.
        Ok(Lock::new(conn))
    }

    /// Breaks the lock whoever holds it: ends the holder's connections, so it can write
    /// nothing more, and says who it was.
    pub(super) fn break_lock(&self) -> Result<Broken, Error> {
        let s = &self.config.schema;
        let key = lock_key(s, &self.stack);
        let mut conn = self.config.connect()?;
        let free: bool = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(|e| self.config.error("trying the stack's lock", e))?
            .get(0);
        if free {
            conn.execute("SELECT pg_advisory_unlock($1)", &[&key])
                .map_err(|e| self.config.error("releasing the stack's lock", e))?;
            return Ok(Broken::NotLocked);
        }
        let holder = read_holder(&mut conn, s, &self.stack);
        // The connection that holds the advisory lock, as the server sees it (the locks table
        // may be stale), and the holder's data connection when the table names the same
        // holder: both are ended, so the holder can write nothing more.
        let mut pids = lock_pids(&mut conn, key)
            .map_err(|e| self.config.error("finding the lock's holder", e))?;
        if let Some((_, lock_pid)) = &holder
            && pids.contains(lock_pid)
        {
            let data_pid: Option<i32> = conn
                .query_opt(
                    &format!("SELECT data_pid FROM {s}.locks WHERE stack = $1"),
                    &[&self.stack],
                )
                .map_err(|e| self.config.error("finding the lock's holder", e))?
                .map(|r| r.get(0));
            pids.extend(data_pid);
        }
        let holder = holder.map(|(holder, _)| holder);
        for pid in pids {
            conn.execute("SELECT pg_terminate_backend($1)", &[&pid])
                .map_err(|e| self.config.error("ending the holder's connection", e))?;
        }
        // The server releases the lock as it ends the connection: wait for that, briefly.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let _shown = fabrik_provider::wait::Wait::start(
            "the server to release the lock of the holder it ended",
            Some(Duration::from_secs(10)),
        );
        loop {
            let taken: bool = conn
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(|e| self.config.error("trying the stack's lock", e))?
                .get(0);
            if taken {
                conn.execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .map_err(|e| self.config.error("releasing the stack's lock", e))?;
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Backend {
                    backend: self.config.describe(),
                    message: "the lock's holder was asked to end but still holds it after 10s; does this role have the right to end it (pg_signal_backend)?".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        conn.execute(
            &format!("DELETE FROM {s}.locks WHERE stack = $1"),
            &[&self.stack],
        )
        .map_err(|e| self.config.error("forgetting the lock's holder", e))?;
        Ok(Broken::Broken(holder))
    }
}

/// The holder recorded for a stack, with the server pid of its lock connection.
fn read_holder(conn: &mut Client, schema: &str, stack: &str) -> Option<(Holder, i32)> {
    let row = conn
        .query_opt(
            &format!("SELECT holder::text, lock_pid FROM {schema}.locks WHERE stack = $1"),
            &[&stack],
        )
        .ok()??;
    let holder = serde_json::from_str(&row.get::<_, String>(0)).ok()?;
    Some((holder, row.get(1)))
}

/// The server pids holding the advisory lock `key` in this database (one at most).
fn lock_pids(conn: &mut Client, key: i64) -> Result<Vec<i32>, postgres::Error> {
    // A bigint key shows in pg_locks split in two 32-bit halves, with objsubid 1.
    let rows = conn.query(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND classid = (($1::bigint >> 32) & 4294967295)::oid \
           AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1",
        &[&key],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_schema_and_stack_and_are_stable() {
        assert_eq!(lock_key("fabrik", "shop"), lock_key("fabrik", "shop"));
        assert_ne!(lock_key("fabrik", "shop"), lock_key("fabrik", "shop2"));
        assert_ne!(lock_key("fabrik", "shop"), lock_key("other", "shop"));
    }
}
