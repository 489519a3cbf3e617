//! `fabrik secrets`: each declared secret with where its value comes from. Resolving them may
//! generate (and save) the ones that may be generated, as a plan would; values are never shown.

use super::Globals;
use crate::cli::SpecArg;
use crate::error::Error;
use crate::registry::Registry;
use crate::stack;

pub fn run(globals: &Globals, args: SpecArg) -> Result<i32, Error> {
    let mut loaded = stack::load_without_values(&args.spec, &Registry::builtin())?;
    if loaded.spec.secrets.is_empty() {
        outln!("{} declares no secrets.", args.spec.display());
        return Ok(0);
    }
    loaded.resolve_secrets(&globals.backend.state_dir(&args.spec))?;
    let width = loaded
        .spec
        .secrets
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0);
    for (name, origin) in loaded.secrets.origins() {
        outln!("{name:width$}  {}", origin.describe());
    }
    Ok(0)
}
