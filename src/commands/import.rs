//! `fabrik import [SPEC] NAME ID`: takes an object that already exists into the state as
//! resource NAME (see `src/import.rs`), so that fabrik manages it from then on instead of
//! refusing to touch it.

use std::ffi::OsString;
use std::path::PathBuf;

use super::Globals;
use crate::cli::ImportArgs;
use crate::error::Error;
use crate::registry::Registry;
use crate::source::closest;
use crate::stack::{self, Opened};

pub fn run(globals: &Globals, args: ImportArgs) -> Result<i32, Error> {
    let (spec_path, name, id) = parts(args.args)?;
    let spec_path = match (args.spec_option, spec_path) {
        (None, spec) => spec.unwrap_or_else(|| PathBuf::from("fabrik.yaml")),
        (Some(option), None) => option,
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "the spec is given twice: as SPEC and as --spec; give one".into(),
            ));
        }
    };
    let registry = Registry::builtin();
    let mut loaded = stack::load(&spec_path, &registry)?;
    let Some(index) = loaded.spec.index_of(&name) else {
        let hint = match closest(&name, loaded.spec.resources.iter().map(|r| r.name.as_str())) {
            Some(best) => format!("; did you mean `{best}`?"),
            None => String::new(),
        };
        return Err(Error::Usage(format!(
            "{} has no resource `{name}` to import into{hint}",
            spec_path.display()
        )));
    };
    loaded.resolve_secrets(&globals.backend.state_dir(&spec_path))?;
    let Opened {
        mut state,
        lock: _lock,
        store,
        ..
    } = globals.open(&registry, &mut loaded, &spec_path)?;
    let context = globals.context(&spec_path);
    let imported_id = crate::import::import(
        &registry, &loaded, &mut state, &*store, &context, index, &id,
    )?;
    outln!("imported {name} ({imported_id})");
    outln!("Run `fabrik plan` to see how it differs from the spec.");
    Ok(0)
}

/// `[SPEC] NAME ID` as typed: two values are NAME and ID, three start with the spec.
fn parts(args: Vec<OsString>) -> Result<(Option<PathBuf>, String, String), Error> {
    let text = |value: OsString, what: &str| {
        value
            .into_string()
            .map_err(|_| Error::Usage(format!("the {what} given to `fabrik import` is not UTF-8")))
    };
    let count = args.len();
    let mut args = args.into_iter();
    let (spec, name, id) = match (args.next(), args.next(), args.next()) {
        (Some(name), Some(id), None) => (None, name, id),
        (Some(spec), Some(name), Some(id)) if count == 3 => (Some(PathBuf::from(spec)), name, id),
        _ => {
            return Err(Error::Usage(format!(
                "`fabrik import` takes [SPEC] NAME ID (the resource of the spec, then the \
                 object's id), not {count} value{}; see `fabrik import --help`",
                if count == 1 { "" } else { "s" }
            )));
        }
    };
    let (name, id) = (text(name, "resource name")?, text(id, "id")?);
    if id.trim().is_empty() {
        return Err(Error::Usage(
            "the id given to `fabrik import` is empty; give the object's id, as fabrik prints it"
                .into(),
        ));
    }
    Ok((spec, name, id))
}
