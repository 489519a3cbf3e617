//! `fabrik completions SHELL`: a completion script generated from the command line's own clap
//! tree, so it never falls behind a new flag. The scripts are static: they complete
//! subcommands, flags and the values clap knows (shells, examples), not the resource names of a
//! spec, which would need the shell to call fabrik back while completing.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Error;

pub fn run(args: CompletionsArgs) -> Result<i32, Error> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "fabrik", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}
