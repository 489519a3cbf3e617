//! One file per subcommand, each parsing its arguments, calling the engine and showing what it
//! did; this module holds what several of them share: the options every subcommand takes and
//! the confirmation prompt.

mod apply;
mod completions;
mod destroy;
mod graph;
mod import;
mod init;
mod man;
mod output;
mod plan;
mod schema;
mod secrets;
mod show;
mod state;
mod unlock;
mod validate;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use fabrik_provider::Context;

pub use completions::complete;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::registry::Registry;
use crate::render::Painter;
use crate::stack::{self, Loaded, Opened};
use crate::state::backend::Choice;

/// Options every subcommand shares.
pub struct Globals {
    /// `--backend` (or `FABRIK_BACKEND`) and `--state-dir`.
    pub backend: Choice,
    pub painter: Painter,
    /// The command line as typed, for the lock's holder record.
    pub command_line: String,
}

pub fn dispatch(cli: Cli) -> Result<i32, Error> {
    let globals = Globals {
        backend: Choice::new(cli.backend, cli.state_dir),
        painter: Painter::for_stdout(cli.no_color),
        // Stored as the lock's holder and shown to others: no password of a `--backend` URL.
        command_line: crate::state::postgres::mask_passwords(
            &std::env::args().collect::<Vec<_>>().join(" "),
        ),
    };
    // Every wait longer than a second is shown while it lasts, whichever command waits.
    let _waits = crate::render::waits::show();
    match cli.command {
        Command::Validate(args) => validate::run(&globals, args),
        Command::Plan(args) => plan::run(&globals, args),
        Command::Apply(args) => apply::run(&globals, args),
        Command::Destroy(args) => destroy::run(&globals, args),
        Command::Show(args) => show::run(&globals, args),
        Command::Graph(args) => graph::run(&globals, args),
        Command::State(cmd) => state::run(&globals, cmd),
        Command::Import(args) => import::run(&globals, args),
        Command::Output(args) => output::run(&globals, args),
        Command::Secrets(args) => secrets::run(&globals, args),
        Command::Unlock(args) => unlock::run(&globals, args),
        Command::Init(args) => init::run(args),
        Command::Schema => schema::run(),
        Command::Completions(args) => completions::run(args),
        Command::Man => man::run(),
    }
}

impl Globals {
    /// Where a run on the spec at `spec` happens ([`stack::context`]).
    pub fn context(&self, spec: &Path) -> Context {
        stack::context(spec, self.backend.state_dir(spec))
    }

    /// Opens the stack of `loaded` (the spec at `spec_path`) for a run that changes it
    /// ([`stack::open`]).
    pub fn open(
        &self,
        registry: &Registry,
        loaded: &mut Loaded,
        spec_path: &Path,
    ) -> Result<Opened, Error> {
        stack::open(
            &self.backend,
            &self.command_line,
            registry,
            loaded,
            spec_path,
        )
    }
}

/// Asks on the terminal; refuses when there is no terminal to ask on.
pub fn confirm(question: &str) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "refusing to continue without confirmation: standard input is not a terminal; pass --yes to go ahead".into(),
        ));
    }
    out!("{question} Only 'yes' is accepted: ");
    std::io::stdout()
        .flush()
        .map_err(|e| Error::io("writing to the terminal", e))?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer", e))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::Usage("cancelled; nothing was changed".into()))
    }
}

/// Where `--var` and `--vars-file` say the spec's variables take their values from.
fn var_sources(args: &crate::cli::VarArgs) -> crate::spec::VarSources<'_> {
    crate::spec::VarSources {
        given: &args.var,
        file: args.vars_file.as_deref(),
    }
}
