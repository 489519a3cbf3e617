//! `fabrik graph`: the dependency graph as Graphviz DOT.

use super::Globals;
use crate::cli::SpecArg;
use crate::error::Error;
use crate::registry::Registry;
use crate::stack;

pub fn run(_globals: &Globals, args: SpecArg) -> Result<i32, Error> {
    let spec = args.path();
    let loaded = stack::load_without_values(&spec, &Registry::builtin())?;
    out!("{}", loaded.graph.to_dot(&loaded.spec));
    Ok(0)
}
