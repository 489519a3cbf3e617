//! Shell completion. `fabrik completions SHELL` prints a static script generated from the
//! command line's own clap tree, so it never falls behind a new flag; it completes subcommands,
//! flags and their fixed values. Resource names (`--target`) depend on the spec, so only a
//! shell that calls fabrik back while completing can offer them: `FABRIK_COMPLETE=SHELL fabrik`
//! prints that script instead (clap_complete's `CompleteEnv`), and each completion is then
//! answered by [`complete`], reading `fabrik.yaml` in the current directory.

use std::ffi::OsString;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::CompleteEnv;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Error;
use crate::spec::Spec;

/// The environment variable that turns a run into a completion request.
const COMPLETE_VAR: &str = "FABRIK_COMPLETE";

pub fn run(args: CompletionsArgs) -> Result<i32, Error> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "fabrik", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}

/// Answers a completion request when `FABRIK_COMPLETE` names a shell: `Some(exit code)` once
/// answered, `None` for a regular run.
pub fn complete(args: &[OsString]) -> Option<i32> {
    let dir = std::env::current_dir().ok();
    match CompleteEnv::with_factory(command)
        .var(COMPLETE_VAR)
        .try_complete(args.iter().cloned(), dir.as_deref())
    {
        Ok(true) => Some(0),
        Ok(false) => None,
        Err(e) => {
            let _ = e.print();
            Some(1)
        }
    }
}

/// The command line with the spec's resource names offered wherever a resource is named.
fn command() -> clap::Command {
    let targets = |command: clap::Command| {
        command.mut_arg("target", |arg| {
            arg.add(ArgValueCandidates::new(resource_names))
        })
    };
    Cli::command()
        .mut_subcommand("plan", targets)
        .mut_subcommand("apply", targets)
        .mut_subcommand("destroy", targets)
}

/// The resources of `fabrik.yaml` in the current directory, as far as it can be read; none
/// when there is no readable spec (a completion never fails).
fn resource_names() -> Vec<CompletionCandidate> {
    let Ok((spec, _)) = Spec::read(Path::new("fabrik.yaml")) else {
        return Vec::new();
    };
    spec.resources
        .iter()
        .map(|r| CompletionCandidate::new(r.name.as_str()).help(Some(r.type_name.clone().into())))
        .collect()
}
