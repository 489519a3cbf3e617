//! `fabrik show PLAN`: a saved plan, as text or JSON.

use std::path::Path;

use super::Globals;
use crate::cli::ShowArgs;
use crate::error::Error;
use crate::plan::{PLAN_FORMAT, PLAN_FORMAT_VERSION, Plan};

pub fn run(globals: &Globals, args: ShowArgs) -> Result<i32, Error> {
    let plan = read_plan(&args.plan)?.ok_or_else(|| {
        Error::Usage(format!(
            "{} is not a plan saved by `fabrik plan --out`",
            args.plan.display()
        ))
    })?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("plans serialize")
        );
    } else {
        out!("{}", globals.painter.plan(&plan));
    }
    Ok(0)
}

/// A saved plan, or `None` when the file is something else (a spec).
pub fn read_plan(path: &Path) -> Result<Option<Plan>, Error> {
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
