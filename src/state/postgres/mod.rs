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
//!
//! `config.rs` parses the URL and connects, `migrate.rs` keeps the tables at this fabrik's
//! version, `store.rs` reads and writes a stack's state, `lock.rs` takes and breaks the run lock,
//! and `emergency.rs` keeps and pushes the state of a run that lost the database.

mod config;
mod emergency;
mod lock;
mod migrate;
mod store;

pub use config::{Config, DEFAULT_SCHEMA};
pub use store::PgStore;

// The URL helpers live in a leaf that the spec uses too; these paths are the ones the commands
// name.
pub use crate::backend_url::{is_url, mask_passwords};
