//! Integration tests for fabrik: every case drives the real binary (`CARGO_BIN_EXE_fabrik`) in
//! its own temporary directory with a scrubbed environment, through the builder in [`harness`].
//!
//! One test binary (not one per file) so the suite links once and runs in parallel. Tests are
//! named after what they guard; CLI output is pinned with insta inline snapshots, plan
//! renderings with one file snapshot per spec under `fixtures/specs/`.

#[macro_use]
mod harness;

mod bad_inputs;
mod cancel;
mod cli;
mod cloudflare;
mod coolify;
mod coolify_database;
mod coolify_service;
mod crash;
mod docs;
mod env_defaults;
mod exit_codes;
mod fixtures;
mod for_each;
mod gates;
mod graph;
mod ignore_changes;
mod import;
mod init;
mod layers;
mod lifecycle;
mod live;
mod lock;
mod model;
mod moved;
mod outputs;
mod pausing;
mod plan_gates;
mod plan_json;
mod plan_lists;
mod postgres;
mod powerdns;
mod progress;
mod refresh;
mod rollback;
mod saved_plans;
mod schema;
mod secrets;
mod state;
mod target;
mod trust;
mod uptimekuma;
mod vars;
