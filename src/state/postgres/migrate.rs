//! The tables of a state schema, one migration per version, and bringing a schema to the
//! version this fabrik writes.

use postgres::Client;

use super::Config;
use super::lock::lock_key;
use crate::error::Error;

/// The tables, one entry per schema version; a database at version N gets entries N+1.. applied.
const MIGRATIONS: &[&str] = &[
    // 1: snapshot, journal and lock holders per stack.
    "CREATE TABLE {s}.snapshots (
         stack text PRIMARY KEY,
         lineage text NOT NULL,
         serial bigint NOT NULL,
         state jsonb NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE TABLE {s}.journal (
         seq bigserial PRIMARY KEY,
         stack text NOT NULL,
         record jsonb NOT NULL,
         written_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE INDEX journal_stack_seq ON {s}.journal (stack, seq);
     CREATE TABLE {s}.locks (
         stack text PRIMARY KEY,
         holder jsonb NOT NULL,
         lock_pid integer NOT NULL,
         data_pid integer NOT NULL
     );",
    // 2: where stacks moved away by `state migrate` went.
    "CREATE TABLE {s}.moved (
         stack text PRIMARY KEY,
         moved_to text NOT NULL,
         moved_at timestamptz NOT NULL DEFAULT now()
     );",
    // 3: the key masking each stack's sensitive inputs, shared by every machine using the stack.
    // A table of its own, never in the snapshot: access to it can be granted apart.
    "CREATE TABLE {s}.keys (
         stack text PRIMARY KEY,
         key bytea NOT NULL CHECK (length(key) = 32)
     );",
];

impl Config {
    /// writes, under a transaction lock so that two first runs do not race.
    pub(super) fn migrate(&self, client: &mut Client) -> Result<(), Error> {
        let s = &self.schema;
        // The common case, a schema already at this version, only reads: a role that may use
        // the schema but not create one (a DBA made it) works, and no lock is taken.
        let exists: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{s}.migrations")],
            )
            .map_err(|e| self.error("reading the schema version", e))?
            .get(0);
        let current: Option<i32> = if exists {
            client
                .query_one(&format!("SELECT max(version) FROM {s}.migrations"), &[])
                .map_err(|e| self.error("reading the schema version", e))?
                .get(0)
        } else {
            None
        };
        if current == Some(MIGRATIONS.len() as i32) {
            return Ok(());
        }
        let mut tx = client
            .transaction()
            .map_err(|e| self.error("starting the schema check", e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&lock_key(s, "\0migrations")],
        )
        .map_err(|e| self.error("locking the schema for its migrations", e))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .map_err(|e| self.error("creating the schema", e))?;
        let at: i32 = tx
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {s}.migrations"),
                &[],
            )
            .map_err(|e| self.error("reading the schema version", e))?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if at > known {
            return Err(Error::State(format!(
                "the state schema in {} is at version {at}; this fabrik knows versions up to {known}: upgrade fabrik",
                self.describe()
            )));
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
            tx.batch_execute(&sql.replace("{s}", s))
                .map_err(|e| self.error(&format!("migrating the schema to {}", version + 1), e))?;
            tx.execute(
                &format!("INSERT INTO {s}.migrations (version) VALUES ($1)"),
                &[&(version as i32 + 1)],
            )
            .map_err(|e| self.error("recording the schema version", e))?;
        }
        tx.commit()
            .map_err(|e| self.error("committing the schema", e))
    }
}
