//! Saved plans (`plan --out`): written privately, recognised and read back, and refused at
//! apply time when what they were made against has changed since ("reviewed = applied").

use std::path::Path;

use super::{PLAN_FORMAT, PLAN_FORMAT_VERSION, Plan};
use crate::error::Error;

/// Saves `plan` to `path` (mode 0600, atomically).
pub fn write(path: &Path, plan: &Plan) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(plan).expect("plans serialize");
    crate::state::file::write_atomically(path, &bytes)
}

/// A saved plan, or `None` when the file is something else (a spec).
pub fn read(path: &Path) -> Result<Option<Plan>, Error> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    #[derive(serde::Deserialize)]
    struct Header {
        format: String,
        format_version: u32,
    }
    let Ok(header) = serde_json::from_slice::<Header>(&bytes) else {
        return Ok(None);
    };
    if header.format != PLAN_FORMAT {
        return Ok(None);
    }
    if header.format_version != PLAN_FORMAT_VERSION {
        return Err(Error::Usage(format!(
            "{} is a plan of format version {}; this fabrik reads version {PLAN_FORMAT_VERSION}",
            path.display(),
            header.format_version
        )));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Usage(format!("{} is a damaged plan file: {e}", path.display())))
}

/// Why a saved plan no longer applies, if it does not: `now` is the plan computed from the
/// current spec and state with the saved plan's targets and refresh.
pub fn staleness(saved: &Plan, now: &Plan) -> Option<String> {
    if saved.lineage != now.lineage {
        return Some(if saved.lineage.is_empty() {
            "the stack had no state when the plan was made, and now it has one".into()
        } else {
            "the state was replaced by another one since the plan was made (its lineage differs)"
                .into()
        });
    }
    if saved.serial != now.serial {
        return Some(format!(
            "the state changed since the plan was made (serial {} then, {} now)",
            saved.serial, now.serial
        ));
    }
    if saved.vars != now.vars {
        let names: Vec<String> = saved
            .vars
            .keys()
            .chain(now.vars.keys())
            .filter(|name| saved.vars.get(*name) != now.vars.get(*name))
            .map(|name| format!("`{name}`"))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return Some(format!(
            "the value of variable{} {} changed since the plan was made (give the same `--var`, `FABRIK_VAR_…` and vars file as then)",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ));
    }
    if saved.spec_hash != now.spec_hash {
        return Some(
            "the spec (or an environment variable it uses) changed since the plan was made".into(),
        );
    }
    if saved.changes != now.changes || saved.moves != now.moves || saved.pauses != now.pauses {
        return Some("the resources changed outside fabrik since the plan was made".into());
    }
    if saved.outputs != now.outputs {
        return Some("the stack's outputs would change otherwise than the plan shows (the resources they use changed outside fabrik)".into());
    }
    None
}
