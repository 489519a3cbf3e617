//! The team backend: a stack's snapshot and journal in PostgreSQL, for the teams and CI runners
//! that share a stack and cannot keep its state in one machine's `.fabrik/`.
//!
//! ```text
//! <schema>.migrations  version of the tables below, advanced by this module only
//! <schema>.snapshots   one row per stack: lineage, serial, the state as JSON
//! <schema>.journal     records since the snapshot, in `seq` order
//! <schema>.locks       who holds each stack's lock (the lock itself is an advisory lock)
//! <schema>.moved       where stacks moved away by `state migrate` went
//! <schema>.keys        the key masking each stack's sensitive inputs, shared by its machines
//! ```
//!
//! Every write is one transaction, made durable by the server before it returns. A writer
//! remembers the snapshot `serial` and the last journal row it read or wrote; its appends and its
//! commit go through only while both are still those (compare-and-swap), so a run that lost its
//! lock and kept going fails loudly instead of overwriting the newer state. The lock is a
//! session-level advisory lock held on a connection of its own for the whole run: the server
//! drops it the moment that connection or its process dies. A run that loses the database keeps
//! its state in `.fabrik/<stack>.emergency.json` until the next run pushes it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Client, Config as PgConfig, NoTls};

use super::journal::{self, Record};
use super::lock::Holder;
use super::{Broken, JournalWriter, Lock, STATE_VERSION, State, StateStore};
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

/// How to reach the database. The connection string holds a password: it is kept here and
/// never printed; messages use [`Config::describe`].
#[derive(Clone)]
pub struct Config {
    pg: PgConfig,
    tls: Tls,
    pub schema: String,
    /// Where a run that lost the database mid-way keeps the state it could not write, until
    /// the next run pushes it (`None`: nowhere, the run only reports).
    local_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tls {
    /// `sslmode=disable`, `allow` or `prefer`, or none: a plain connection (for loopback or a
    /// private network). libpq's `prefer` would take TLS without checking the certificate;
    /// fabrik offers no unverified channel that looks secure.
    Off,
    /// `sslmode=require`, `verify-ca` or `verify-full`: encrypted and verified against the
    /// system roots, or the CA in `sslrootcert`.
    Verified { ca_file: Option<std::path::PathBuf> },
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "fabrik";

/// Whether `url` names a PostgreSQL database (rather than a state directory).
pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `text` with the password of every PostgreSQL URL in it masked: for command lines, which
/// are stored as a lock's holder and shown to others.
pub fn mask_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["postgres://", "postgresql://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme).map(|i| (i, scheme.len())))
        .min()
    {
        let (start, scheme_len) = at;
        let authority_start = start + scheme_len;
        out.push_str(&rest[..authority_start]);
        let tail = &rest[authority_start..];
        let authority_end = tail.find(['/', '?', ' ']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or("");
                out.push_str(&format!("{user}:(sensitive)@{host}"));
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Whether `name` can be a schema: a plain lower-case SQL identifier, so it needs no quoting.
pub fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

impl Config {
    /// Parses `postgres://user:password@host:port/db?sslmode=…&sslrootcert=…&schema=…`.
    /// `schema` in the URL wins over `schema`; errors never quote the URL.
    pub fn parse(url: &str, schema: Option<&str>) -> Result<Config, Error> {
        let bad = |why: String| Error::Usage(format!("the PostgreSQL state URL is invalid: {why}"));
        if !is_url(url) {
            return Err(bad("it must start with postgres:// or postgresql://".into()));
        }
        // The password is a secret: mask it in anything printed from here on, whatever the
        // path it takes (a driver error quoting the URL, a panic message).
        crate::secrets::register([url]);
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut tls = Tls::Off;
        let mut ca_file = None;
        let mut schema = schema.map(str::to_string);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match key {
                // tokio-postgres knows only disable/prefer/require; fabrik checks certificates
                // itself and asks the driver to require TLS.
                "sslmode" => {
                    tls = match value.as_str() {
                        "disable" | "allow" | "prefer" => Tls::Off,
                        "require" | "verify-ca" | "verify-full" => Tls::Verified { ca_file: None },
                        other => {
                            return Err(bad(format!(
                                "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    }
                }
                "sslrootcert" => ca_file = Some(std::path::PathBuf::from(value)),
                "schema" => schema = Some(value),
                _ => kept.push(pair),
            }
        }
        if let (Tls::Verified { ca_file: slot }, Some(path)) = (&mut tls, ca_file.clone()) {
            *slot = Some(path);
        } else if ca_file.is_some() {
            return Err(bad(
                "sslrootcert is given but sslmode does not ask for TLS (use sslmode=verify-full)"
                    .into(),
            ));
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut pg: PgConfig = rest
            .parse()
            .map_err(|e: postgres::Error| bad(e.to_string()))?;
        if let Some(password) = pg.get_password() {
            crate::secrets::register([String::from_utf8_lossy(password).as_ref()]);
        }
        // A database that does not answer must stop the run soon, not hang it: the connection
        // attempt is bounded, and a connection whose peer vanished without closing it (a
        // network partition, a host that died) fails within about half a minute.
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        let named = |key: &str| kept.iter().any(|p| p.split('=').next() == Some(key));
        if !named("keepalives_idle") && !named("keepalives_interval") {
            pg.keepalives_idle(Duration::from_secs(15));
            pg.keepalives_interval(Duration::from_secs(5));
            pg.keepalives_retries(3);
        }
        if !named("tcp_user_timeout") {
            pg.tcp_user_timeout(Duration::from_secs(30));
        }
        pg.application_name("fabrik");
        pg.ssl_mode(match tls {
            Tls::Off => postgres::config::SslMode::Disable,
            Tls::Verified { .. } => postgres::config::SslMode::Require,
        });
        let schema = schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        if !valid_schema(&schema) {
            return Err(bad(format!(
                "schema `{schema}` must be a lower-case identifier (letters, digits, `_`)"
            )));
        }
        Ok(Config {
            pg,
            tls,
            schema,
            local_dir: None,
        })
    }

    /// Keeps the emergency state of runs that lose the database in `dir` (the spec's `.fabrik/`).
    pub fn with_local_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.local_dir = Some(dir);
        self
    }

    /// `postgres://user@host:port/db (schema s)`: where the state is, without the password.
    pub fn describe(&self) -> String {
        let host = self
            .pg
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        let user = self.pg.get_user().unwrap_or("");
        let at = if user.is_empty() { "" } else { "@" };
        let db = self.pg.get_dbname().unwrap_or(user);
        format!(
            "postgres://{user}{at}{host}:{port}/{db} (schema {})",
            self.schema
        )
    }

    fn error(&self, doing: &str, e: postgres::Error) -> Error {
        Error::Backend {
            backend: self.describe(),
            message: format!("{doing}: {}", describe_pg_error(&e)),
        }
    }

    /// A new connection, with the schema ready.
    fn connect(&self) -> Result<Client, Error> {
        let mut client = match &self.tls {
            Tls::Off => self.pg.connect(NoTls),
            Tls::Verified { ca_file } => {
                let roots = crate::verify::trust::load(ca_file.as_deref()).map_err(|why| {
                    Error::Backend {
                        backend: self.describe(),
                        message: why,
                    }
                })?;
                let mut store = rustls::RootCertStore::empty();
                store.add_parsable_certificates(roots.certs.iter().cloned());
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(store)
                .with_no_client_auth();
                self.pg
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(config))
            }
        }
        .map_err(|e| self.error("connecting", e))?;
        self.migrate(&mut client)?;
        Ok(client)
    }

    /// Creates the schema on first use and brings its tables to the version this fabrik
    /// writes, under a transaction lock so that two first runs do not race.
    fn migrate(&self, client: &mut Client) -> Result<(), Error> {
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

/// A driver error in one line: the server's message when there is one (its `Display` says only
/// "db error").
fn describe_pg_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The advisory lock key of a stack: 64 bits of BLAKE3 over the schema and the stack name, so
/// two schemas in one database (or two stacks) never share a lock.
fn lock_key(schema: &str, stack: &str) -> i64 {
    let hash = blake3::hash(format!("fabrik-state-lock\0{schema}\0{stack}").as_bytes());
    i64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// A run's state kept on local disk because the database went away before it was written.
#[derive(serde::Serialize, serde::Deserialize)]
struct Emergency {
    /// What the database held when the run last wrote: the push is a compare-and-swap on it.
    base_serial: Option<i64>,
    base_last_seq: i64,
    state: State,
}

/// What this run has seen of the stored state: what its writes must still find there.
#[derive(Debug, Default)]
struct Seen {
    /// The serial of the snapshot read (`None`: there was none).
    serial: Option<i64>,
    /// The last journal row read or written (0: none); the next write expects it to be the
    /// journal's last.
    last_seq: i64,
}

/// One stack's state in PostgreSQL.
pub struct PgStore {
    config: Config,
    stack: String,
    /// The connection for reads and writes; the lock has one of its own.
    client: Mutex<Client>,
    seen: Mutex<Seen>,
}

impl PgStore {
    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stale(&self, detail: String) -> Error {
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
    fn commit_to_database(&self, state: &State) -> Result<(), Error> {
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

    fn emergency_path(&self) -> Option<std::path::PathBuf> {
        let dir = self.config.local_dir.as_ref()?;
        Some(dir.join(format!("{}.emergency.json", self.stack)))
    }

    /// The state a run could not write because the database went away, if one is waiting.
    fn emergency(&self) -> Result<Option<Emergency>, Error> {
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
    fn keep_locally(&self, state: &State, backend: String, message: String) -> Error {
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
            .and_then(|()| super::file::write_atomically(&path, &bytes));
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
    fn push_emergency(&self) -> Result<(), Error> {
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

    /// Takes the advisory lock on a connection of its own, records the holder, and pushes a
    /// state saved while the database was away.
    fn lock_and_push(&self, command: &str) -> Result<Lock, Error> {
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
                holder: Box::new(holder.unwrap_or_else(unknown)),
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
            state.lineage = super::new_lineage();
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

fn unknown() -> Holder {
    Holder {
        user: "unknown".into(),
        host: "unknown".into(),
        pid: 0,
        command: "unknown".into(),
        since: "unknown".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_described_without_its_password_and_keeps_fabriks_own_parameters() {
        let config = Config::parse(
            "postgres://team:s3cr%40t@db.example:6432/infra?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&schema=ops&application_name=x",
            None,
        )
        .unwrap();
        assert_eq!(
            config.describe(),
            "postgres://team@db.example:6432/infra (schema ops)"
        );
        assert!(!format!("{config:?}").contains("s3cr"));
        assert_eq!(
            config.tls,
            Tls::Verified {
                ca_file: Some("/etc/ca.pem".into())
            }
        );
        // The spec's schema gives way to the URL's.
        let config =
            Config::parse("postgresql://u:p@h/db?sslmode=disable", Some("fabrik_x")).unwrap();
        assert_eq!(config.schema, "fabrik_x");
        assert_eq!(config.tls, Tls::Off);
        assert_eq!(
            config.describe(),
            "postgres://u@h:5432/db (schema fabrik_x)"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for (url, why) in [
            ("mysql://u:hunter2@h/db", "must start with postgres://"),
            (
                "postgres://u:hunter2@h/db?sslmode=sometimes",
                "sslmode `sometimes`",
            ),
            (
                "postgres://u:hunter2@h/db?schema=Bad-Name",
                "schema `Bad-Name`",
            ),
            (
                "postgres://u:hunter2@h/db?sslrootcert=/ca.pem",
                "sslrootcert is given but sslmode",
            ),
        ] {
            let err = Config::parse(url, None).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }

    #[test]
    fn passwords_in_command_lines_are_masked() {
        assert_eq!(
            mask_passwords(
                "fabrik --backend postgres://ci:pa:ss@db:5432/x?schema=s apply --backend=postgresql://u:p@h"
            ),
            "fabrik --backend postgres://ci:(sensitive)@db:5432/x?schema=s apply --backend=postgresql://u:(sensitive)@h"
        );
        assert_eq!(
            mask_passwords("fabrik apply postgres://nopass@h/db"),
            "fabrik apply postgres://nopass@h/db"
        );
    }

    #[test]
    fn lock_keys_differ_by_schema_and_stack_and_are_stable() {
        assert_eq!(lock_key("fabrik", "shop"), lock_key("fabrik", "shop"));
        assert_ne!(lock_key("fabrik", "shop"), lock_key("fabrik", "shop2"));
        assert_ne!(lock_key("fabrik", "shop"), lock_key("other", "shop"));
        assert!(valid_schema("fabrik_2") && !valid_schema("2fabrik") && !valid_schema("a-b"));
    }
}
