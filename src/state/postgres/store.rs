//! One stack's state in PostgreSQL: reading the snapshot with its journal, and every write as
//! a transaction that compares-and-swaps on what this run last saw.

use std::sync::{Mutex, MutexGuard};

use postgres::Client;

use super::Config;
use super::lock::lock_key;
use crate::error::Error;
use crate::state::journal::{self, Record};
use crate::state::{Broken, JournalWriter, Lock, STATE_VERSION, State, StateStore};

impl Config {
    /// The stacks with a state in the schema, sorted.
    pub fn stacks(&self) -> Result<Vec<String>, Error> {
        let mut client = self.connect()?;
        let s = &self.schema;
        let rows = client
            .query(
                &format!(
                    "SELECT stack FROM {s}.snapshots UNION SELECT stack FROM {s}.journal ORDER BY 1"
                ),
                &[],
            )
            .map_err(|e| self.error("listing the stacks", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn store(&self, stack: &str) -> Result<PgStore, Error> {
        let client = self.connect()?;
        Ok(PgStore {
            config: self.clone(),
            stack: stack.to_string(),
            client: Mutex::new(client),
            seen: Mutex::new(Seen::default()),
        })
    }
}

/// What this run has seen of the stored state: what its writes must still find there.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The serial of the snapshot read (`None`: there was none).
    pub(super) serial: Option<i64>,
    /// The last journal row read or written (0: none); the next write expects it to be the
    /// journal's last.
    pub(super) last_seq: i64,
}

/// One stack's state in PostgreSQL.
pub struct PgStore {
    pub(super) config: Config,
    pub(super) stack: String,
    /// The connection for reads and writes; the lock has one of its own.
    client: Mutex<Client>,
    seen: Mutex<Seen>,
}

impl PgStore {
    pub(super) fn client(&self) -> MutexGuard<'_, Client> {
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn stale(&self, detail: String) -> Error {
        Error::StaleState {
            stack: self.stack.clone(),
            detail,
        }
    }

    /// Inserts the first snapshot of a stack; another writer's first snapshot wins and this
    /// one fails.
    fn insert_snapshot(
        &self,
        tx: &mut postgres::Transaction<'_>,
        state: &State,
    ) -> Result<(), Error> {
        let s = &self.config.schema;
        let json = serde_json::to_string(state).expect("a state always serializes");
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO {s}.snapshots (stack, lineage, serial, state) \
                     VALUES ($1, $2, $3, $4::text::jsonb) ON CONFLICT (stack) DO NOTHING"
                ),
                &[&self.stack, &state.lineage, &(state.serial as i64), &json],
            )
            .map_err(|e| self.config.error("writing the first snapshot", e))?;
        if inserted == 0 {
            return Err(self
                .stale("another writer created the stack's state after this run read it".into()));
        }
        Ok(())
    }

    /// Starts a write: a transaction that holds the stack's write lock (so writes of one stack
    /// never interleave, whoever holds the run lock) and has checked that nobody wrote since
    /// this run last read or wrote: the snapshot's serial and the journal's last row are those
    /// it saw. Each write is a compare-and-swap on both.
    fn write<'c>(
        &self,
        client: &'c mut Client,
        seen: &Seen,
    ) -> Result<postgres::Transaction<'c>, Error> {
        let s = &self.config.schema;
        let mut tx = client
            .transaction()
            .map_err(|e| self.config.error("starting a transaction", e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&lock_key(s, &format!("\0write\0{}", self.stack))],
        )
        .map_err(|e| self.config.error("locking the stack for a write", e))?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT (SELECT serial FROM {s}.snapshots WHERE stack = $1), \
                            (SELECT coalesce(max(seq), 0) FROM {s}.journal WHERE stack = $1)"
                ),
                &[&self.stack],
            )
            .map_err(|e| self.config.error("reading the state's serial", e))?;
        let serial: Option<i64> = row.get(0);
        let head: i64 = row.get(1);
        let show = |n: Option<i64>| n.map_or("none".to_string(), |n| n.to_string());
        if serial != seen.serial {
            return Err(self.stale(format!(
                "its serial is {} in the database, and this run read {}",
                show(serial),
                show(seen.serial),
            )));
        }
        if head != seen.last_seq {
            return Err(self.stale(format!(
                "another writer appended to its journal (up to row {head}) after this run read it (up to row {})",
                seen.last_seq
            )));
        }
        Ok(tx)
    }
    /// Replaces the snapshot (compare-and-swap on the serial) and empties the journal, in one
    /// transaction.
    pub(super) fn commit_to_database(&self, state: &State) -> Result<(), Error> {
        let s = &self.config.schema;
        let mut client = self.client();
        let mut seen = self.seen();
        let mut tx = self.write(&mut client, &seen)?;
        match seen.serial {
            None => self.insert_snapshot(&mut tx, state)?,
            Some(old) => {
                let json = serde_json::to_string(state).expect("a state always serializes");
                let updated = tx
                    .execute(
                        &format!(
                            "UPDATE {s}.snapshots SET lineage = $2, serial = $3, \
                             state = $4::text::jsonb, updated_at = now() \
                             WHERE stack = $1 AND serial = $5"
                        ),
                        &[
                            &self.stack,
                            &state.lineage,
                            &(state.serial as i64),
                            &json,
                            &old,
                        ],
                    )
                    .map_err(|e| self.config.error("writing the snapshot", e))?;
                if updated == 0 {
                    let now: Option<i64> = tx
                        .query_opt(
                            &format!("SELECT serial FROM {s}.snapshots WHERE stack = $1"),
                            &[&self.stack],
                        )
                        .map_err(|e| self.config.error("reading the snapshot's serial", e))?
                        .map(|r| r.get(0));
                    return Err(self.stale(format!(
                        "another writer committed serial {} while this run held serial {old}; this run's snapshot was not written",
                        now.map_or("none".into(), |n| n.to_string())
                    )));
                }
            }
        }
        // `write` checked that every row is one this run read or wrote: all are in the snapshot.
        tx.execute(
            &format!("DELETE FROM {s}.journal WHERE stack = $1"),
            &[&self.stack],
        )
        .map_err(|e| self.config.error("emptying the journal", e))?;
        tx.commit()
            .map_err(|e| self.config.error("committing the snapshot", e))?;
        seen.serial = Some(state.serial as i64);
        seen.last_seq = 0;
        Ok(())
    }

    /// Appends records in one transaction, after the compare-and-swap check of [`Self::write`].
    /// Appends encoded records ([`journal::encode`]) to the journal table in one transaction.
    fn record_lines(&self, lines: &[String]) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let s = &self.config.schema;
        let mut client = self.client();
        let mut seen = self.seen();
        let mut tx = self.write(&mut client, &seen)?;
        // One statement for the whole group, in order: `seq` follows the array's order.
        let last: Option<i64> = tx
            .query_one(
                &format!(
                    "WITH added AS (INSERT INTO {s}.journal (stack, record) \
                     SELECT $1, r::jsonb FROM unnest($2::text[]) WITH ORDINALITY AS t(r, n) \
                     ORDER BY n RETURNING seq) SELECT max(seq) FROM added"
                ),
                &[&self.stack, &lines],
            )
            .map_err(|e| self.config.error("appending to the journal", e))?
            .get(0);
        tx.commit()
            .map_err(|e| self.config.error("committing the journal", e))?;
        seen.last_seq = seen.last_seq.max(last.unwrap_or(0));
        Ok(())
    }

    /// The snapshot with its journal replayed, as the database holds them.
    fn load_from_database(&self) -> Result<State, Error> {
        let s = &self.config.schema;
        let mut client = self.client();
        // One snapshot of the database for both reads: a commit between them cannot show a
        // journal that the snapshot already holds.
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| self.config.error("starting to read the state", e))?;
        let row = tx
            .query_opt(
                &format!("SELECT state::text, serial FROM {s}.snapshots WHERE stack = $1"),
                &[&self.stack],
            )
            .map_err(|e| self.config.error("reading the snapshot", e))?;
        let (mut state, serial) = match row {
            Some(row) => {
                let text: String = row.get(0);
                let serial: i64 = row.get(1);
                let state = serde_json::from_str::<State>(&text).map_err(|e| {
                    Error::State(format!(
                        "the snapshot of stack `{}` in {} is not a valid state: {e}",
                        self.stack,
                        self.config.describe()
                    ))
                })?;
                (state, Some(serial))
            }
            None => (State::empty(&self.stack), None),
        };
        if serial.is_none() {
            let moved = tx
                .query_opt(
                    &format!("SELECT moved_to FROM {s}.moved WHERE stack = $1"),
                    &[&self.stack],
                )
                .map_err(|e| self.config.error("reading the snapshot", e))?;
            if let Some(row) = moved {
                return Err(Error::Moved {
                    stack: self.stack.clone(),
                    to: row.get(0),
                });
            }
        }
        if state.version != STATE_VERSION {
            return Err(Error::State(format!(
                "the state of stack `{}` in {} has version {}; this fabrik reads version {STATE_VERSION}",
                self.stack,
                self.config.describe(),
                state.version
            )));
        }
        if state.stack != self.stack {
            return Err(Error::State(format!(
                "the snapshot stored for stack `{}` in {} belongs to stack `{}`",
                self.stack,
                self.config.describe(),
                state.stack
            )));
        }
        let rows = tx
            .query(
                &format!("SELECT seq, record::text FROM {s}.journal WHERE stack = $1 ORDER BY seq"),
                &[&self.stack],
            )
            .map_err(|e| self.config.error("reading the journal", e))?;
        let mut last_seq = 0;
        for row in rows {
            last_seq = row.get(0);
            let text: String = row.get(1);
            let record: Record = serde_json::from_str(&text).map_err(|e| {
                Error::State(format!(
                    "journal row {last_seq} of stack `{}` in {} is corrupt: {e}",
                    self.stack,
                    self.config.describe()
                ))
            })?;
            state.apply(record);
        }
        tx.commit()
            .map_err(|e| self.config.error("finishing the read", e))?;
        *self.seen() = Seen { serial, last_seq };
        Ok(state)
    }
}

impl StateStore for PgStore {
    fn stack(&self) -> &str {
        &self.stack
    }

    fn load(&self) -> Result<State, Error> {
        let from_database = self.load_from_database()?;
        // A run without the lock (plan, state list) shows the state a run saved while the
        // database was away; a run with the lock pushed it already.
        match self.emergency()? {
            Some(emergency) => Ok(emergency.state),
            None => Ok(from_database),
        }
    }

    fn lock(&self, command: &str) -> Result<Lock, Error> {
        self.lock_and_push(command)
    }

    fn begin(&self, state: &mut State) -> Result<Box<dyn JournalWriter + '_>, Error> {
        if state.lineage.is_empty() {
            state.lineage = crate::state::new_lineage();
            let mut client = self.client();
            let mut tx = client
                .transaction()
                .map_err(|e| self.config.error("starting a transaction", e))?;
            {
                let seen = self.seen();
                if seen.serial.is_some() {
                    return Err(
                        self.stale("the stack has a snapshot although this run read none".into())
                    );
                }
            }
            self.insert_snapshot(&mut tx, state)?;
            tx.commit()
                .map_err(|e| self.config.error("writing the first snapshot", e))?;
            self.seen().serial = Some(state.serial as i64);
        }
        Ok(Box::new(PgJournal { store: self }))
    }

    fn commit(&self, state: &State) -> Result<(), Error> {
        let result = self.commit_to_database(state);
        match result {
            Err(Error::Backend { backend, message }) if self.client().is_closed() => {
                Err(self.keep_locally(state, backend, message))
            }
            other => other,
        }
    }

    fn record(&self, records: &[Record]) -> Result<(), Error> {
        let lines: Vec<String> = records.iter().map(journal::encode).collect();
        self.record_lines(&lines)
    }

    fn force_unlock(&self) -> Result<Broken, Error> {
        self.break_lock()
    }

    fn shared_key(&self, proposed: &[u8; 32]) -> Result<Option<[u8; 32]>, Error> {
        let s = &self.config.schema;
        let mut client = self.client();
        // The first machine's key stays; every other one gets it.
        let rows = client
            .query(
                &format!(
                    "WITH added AS (INSERT INTO {s}.keys (stack, key) VALUES ($1, $2) \
                     ON CONFLICT (stack) DO NOTHING RETURNING key) \
                     SELECT key FROM added UNION ALL SELECT key FROM {s}.keys WHERE stack = $1"
                ),
                &[&self.stack, &proposed.as_slice()],
            )
            .map_err(|e| self.config.error("reading the stack's masking key", e))?;
        let row = match rows.into_iter().next() {
            Some(row) => row,
            // Another machine's insert committed after this statement took its snapshot.
            None => client
                .query_one(
                    &format!("SELECT key FROM {s}.keys WHERE stack = $1"),
                    &[&self.stack],
                )
                .map_err(|e| self.config.error("reading the stack's masking key", e))?,
        };
        let key: Vec<u8> = row.get(0);
        let key: [u8; 32] = key.try_into().map_err(|_| {
            Error::State(format!(
                "the masking key of stack `{}` in {} is damaged",
                self.stack,
                self.config.describe()
            ))
        })?;
        Ok(Some(key))
    }

    fn retire(&self, moved_to: &str) -> Result<String, Error> {
        let s = &self.config.schema;
        let mut client = self.client();
        let mut seen = self.seen();
        let mut tx = self.write(&mut client, &seen)?;
        for table in ["snapshots", "journal"] {
            tx.execute(
                &format!("DELETE FROM {s}.{table} WHERE stack = $1"),
                &[&self.stack],
            )
            .map_err(|e| self.config.error("removing the moved state", e))?;
        }
        tx.execute(
            &format!(
                "INSERT INTO {s}.moved (stack, moved_to) VALUES ($1, $2) \
                 ON CONFLICT (stack) DO UPDATE SET moved_to = excluded.moved_to, moved_at = now()"
            ),
            &[&self.stack, &moved_to],
        )
        .map_err(|e| self.config.error("recording where the state went", e))?;
        tx.commit()
            .map_err(|e| self.config.error("removing the moved state", e))?;
        *seen = Seen::default();
        Ok(format!(
            "the old copy was removed from {}",
            self.config.describe()
        ))
    }
}

struct PgJournal<'s> {
    store: &'s PgStore,
}

impl JournalWriter for PgJournal<'_> {
    fn append(&mut self, lines: &[String]) -> Result<(), Error> {
        self.store.record_lines(lines)
    }
}
