//! `fabrik show PLAN`: a saved plan, as text or JSON.

use super::Globals;
use crate::cli::ShowArgs;
use crate::error::Error;
use crate::plan::saved;

pub fn run(globals: &Globals, args: ShowArgs) -> Result<i32, Error> {
    let plan = saved::read(&args.plan)?.ok_or_else(|| {
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
