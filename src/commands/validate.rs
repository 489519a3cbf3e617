//! `fabrik validate`: the spec, its references, its graph and the values known without a
//! state or secrets, without calling any provider's API.

use super::Globals;
use crate::cli::SpecArg;
use crate::error::Error;
use crate::registry::Registry;
use crate::stack;

pub fn run(globals: &Globals, args: SpecArg) -> Result<i32, Error> {
    let registry = Registry::builtin();
    let loaded = stack::load(&args.spec, &registry)?;
    // Two resources on one object, or one on fabrik's own files, where the spec spells it out.
    let context = globals.context(&args.spec);
    let problems = crate::place::problems_without_values(&loaded.spec, &registry, &context);
    if !problems.is_empty() {
        return Err(Error::Spec(crate::source::Diagnostics {
            source: loaded.spec.source.clone(),
            items: problems,
        }));
    }
    let n = loaded.spec.resources.len();
    outln!(
        "{} is valid: stack `{}`, {n} resource{}.",
        args.spec.display(),
        loaded.spec.stack,
        if n == 1 { "" } else { "s" }
    );
    Ok(0)
}
