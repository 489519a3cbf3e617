//! `fabrik validate`: the spec, its references, its graph and the values known without a
//! state or secrets, without calling any provider's API.

use super::Globals;
use crate::cli::SpecArg;
use crate::error::Error;
use crate::registry::Registry;
use crate::stack;

pub fn run(globals: &Globals, args: SpecArg) -> Result<i32, Error> {
    let spec = args.path();
    let registry = Registry::builtin();
    let loaded = stack::load_without_values(&spec, &registry)?;
    // Two resources on one object, or one on fabrik's own files, where the spec spells it out.
    let context = globals.context(&spec);
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
        spec.display(),
        loaded.spec.stack,
        if n == 1 { "" } else { "s" }
    );
    // Values are not read here: a run must give these (see docs/spec.md, "Variables").
    let required: Vec<&str> = loaded
        .spec
        .vars
        .iter()
        .filter(|d| d.default.is_none())
        .map(|d| d.name.as_str())
        .collect();
    if !required.is_empty() {
        let quoted: Vec<String> = required.iter().map(|n| format!("`{n}`")).collect();
        outln!(
            "Variables a run must give a value (--var, {}NAME or {}): {}",
            crate::spec::ENV_PREFIX,
            crate::spec::VARS_FILE,
            quoted.join(", ")
        );
        out!("{}", loaded.spec.described(required.iter().copied()));
    }
    // Environment variables are not needed here either; a run needs these set.
    let unset = crate::resolve::unset_env(&loaded.spec);
    if !unset.is_empty() {
        let quoted: Vec<String> = unset.iter().map(|n| format!("`{n}`")).collect();
        outln!(
            "Environment variables a run needs, not set here: {}",
            quoted.join(", ")
        );
    }
    // Their instances are made once the variable has a value (see docs/spec.md, "for_each").
    let waiting: Vec<String> = loaded
        .spec
        .unexpanded()
        .filter_map(|r| {
            Some(format!(
                "`{}` ({})",
                r.name,
                r.for_each.as_ref()?.written()?
            ))
        })
        .collect();
    if !waiting.is_empty() {
        outln!(
            "Checked as written, made once per key when the variable has a value: {}",
            waiting.join(", ")
        );
    }
    Ok(0)
}
