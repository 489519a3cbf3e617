//! `fabrik validate`: the spec, its references, its graph and the values known without a
//! state or secrets, without calling any provider's API.

use super::{Globals, load};
use crate::cli::SpecArg;
use crate::error::Error;
use crate::registry::Registry;

pub fn run(_globals: &Globals, args: SpecArg) -> Result<i32, Error> {
    let loaded = load(&args.spec, &Registry::builtin())?;
    let n = loaded.spec.resources.len();
    outln!(
        "{} is valid: stack `{}`, {n} resource{}.",
        args.spec.display(),
        loaded.spec.stack,
        if n == 1 { "" } else { "s" }
    );
    Ok(0)
}
