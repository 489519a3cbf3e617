//! The `powerdns` provider against a real PowerDNS Authoritative server (one per test, started
//! by [`harness::Pdns`]); answers are checked over DNS on the server's port.

mod batches;
mod dns;
mod errors;
mod harness;
mod import;
mod ownership;
mod records;
mod zones;
