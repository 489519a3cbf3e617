//! `fabrik secrets`: each declared secret with where its value would come from. A listing only
//! looks: nothing is generated or written (a plan or an apply generates), and values are never
//! shown.

use super::Globals;
use crate::cli::SecretsArgs;
use crate::error::Error;
use crate::registry::Registry;
use crate::secrets::Status;
use crate::stack;

pub fn run(_globals: &Globals, args: SecretsArgs) -> Result<i32, Error> {
    let spec = args.spec.path();
    let loaded = stack::load_without_values(&spec, &Registry::builtin())?;
    if loaded.spec.secrets.is_empty() {
        outln!("{} declares no secrets.", spec.display());
        return Ok(0);
    }
    let mut listed = crate::secrets::survey(&loaded.spec)?;
    listed.sort_by_key(|(name, _)| *name);
    let width = listed.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, status) in &listed {
        outln!("{name:width$}  {}", status.describe());
    }
    let missing: Vec<String> = listed
        .iter()
        .filter(|(_, s)| *s == Status::Missing)
        .map(|(n, _)| format!("`{n}`"))
        .collect();
    if args.check && !missing.is_empty() {
        return Err(Error::Usage(format!(
            "{} {} {} no value; set it in the environment or in {}",
            if missing.len() == 1 {
                "secret"
            } else {
                "secrets"
            },
            missing.join(", "),
            if missing.len() == 1 { "has" } else { "have" },
            crate::secrets::dotenv_path(&spec).display()
        )));
    }
    Ok(0)
}
