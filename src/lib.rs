//! fabrik: declarative plan/apply for self-hosted stacks.
//!
//! The pipeline, one module per step:
//! 1. [`spec`] loads YAML ([`yaml`]) into a located spec; [`check`] validates it against the
//!    [`registry`]; [`secrets`] resolves the secrets it declares.
//! 2. [`graph`] builds the dependency DAG (petgraph) from references and `depends_on`.
//! 3. [`recover`] settles calls a killed run left pending; [`plan`] diffs the resolved inputs
//!    ([`resolve`], hashed by [`hash`]) against the [`state`].
//! 4. [`executor`] applies the plan in topological order, journaling every call, running the
//!    [`verify`] gates, and rolling back on a failure or an [`interrupt`].
//! 5. [`render`] shows plans and progress; [`commands`] ties the steps to each subcommand.
//!
//! # Layers
//!
//! Bottom up: a module uses modules of its own layer or lower ones only, and never in a circle
//! (`tests/it/layers.rs` holds the code to this list).
//!
//! 1. Leaves, which use nothing of the crate: [`source`] (files and diagnostics), [`template`],
//!    [`hash`], [`parallel`], [`interrupt`], [`cli`], [`registry`] (the provider crates),
//!    [`redact`], [`atomic_file`], [`tls_trust`], [`backend_url`], [`lock_holder`].
//! 2. [`yaml`] and [`error`].
//! 3. [`spec`] (what the user wrote).
//! 4. [`secrets`], [`verify`] and [`graph`], each reading the spec.
//! 5. [`check`], [`resolve`], [`schema`] (the spec as a JSON Schema, for editors) and [`state`]
//!    (what fabrik recorded; it reads the spec's `backend:` block and its secrets only to
//!    choose and open where the state is kept).
//! 6. [`plan`], [`place`] and [`clients`] (provider configuration and clients).
//! 7. [`executor`].
//! 8. [`recover`] and [`render`].
//! 9. [`stack`] (loading and opening a stack), [`refresh`] (drift and obstacles) and [`import`].
//! 10. [`commands`], which only `run` calls.

/// `println!` that never panics: a closed pipe (`fabrik plan --json | head`) is not an error of
/// fabrik's, and a run must go on (and record its work) whoever stopped reading. A wait's live
/// line, when one is drawn, is moved out of the way first ([`render::waits::print`]).
macro_rules! outln {
    () => {
        outln!("")
    };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        $crate::render::waits::print(|| {
            let _ = writeln!(std::io::stdout().lock(), "{}", $crate::redact::redact(&text));
        });
    }};
}

/// `print!` that never panics, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        $crate::render::waits::print(|| {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "{}", $crate::redact::redact(&text));
            let _ = stdout.flush();
        });
    }};
}

pub mod atomic_file;
pub mod backend_url;
pub mod check;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod error;
pub mod executor;
pub mod graph;
pub mod hash;
pub mod import;
pub mod interrupt;
pub mod lock_holder;
pub mod parallel;
pub mod place;
pub mod plan;
pub mod recover;
pub mod redact;
pub mod refresh;
pub mod registry;
pub mod render;
pub mod resolve;
pub mod schema;
pub mod secrets;
pub mod source;
pub mod spec;
pub mod stack;
pub mod state;
pub mod template;
pub mod tls_trust;
pub mod verify;
pub mod yaml;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

/// Runs the command line and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    // A shell asking for completions (`FABRIK_COMPLETE`) is answered before anything else.
    if let Some(code) = commands::complete(&args) {
        return code;
    }
    let parsed = cli::Cli::command()
        .long_version(long_version().leak() as &str)
        .try_get_matches_from(args)
        .and_then(|matches| cli::Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own code is 2 for usage errors, which would read as "changes pending".
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors may quote what a provider answered; no secret leaves through them.
            match &e {
                error::Error::Spec(d) => eprint!("{}", redact::redact(&d.to_string())),
                other => eprintln!("{}", redact::redact(&format!("error: {other}"))),
            }
            e.exit_code()
        }
    }
}

/// What `fabrik --version` prints after the name: the version, the commit it was built from
/// (build.rs) and the providers built in (`-V` prints the version alone).
fn long_version() -> String {
    let providers: Vec<&str> = registry::Registry::builtin().provider_names().collect();
    format!(
        "{}\ncommit: {}\nproviders: {}",
        env!("CARGO_PKG_VERSION"),
        env!("FABRIK_COMMIT"),
        providers.join(", ")
    )
}
